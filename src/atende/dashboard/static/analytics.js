// The analytics page: draws each chart from its JSON (the vendored Chart.js), readable without
// colour alone: every series has its own dash pattern and point shape (lines) or fill pattern
// (bars), and bars carry their values. The table view stays one click away; without
// JavaScript it is all there is.
(function () {
  "use strict";
  var COLOURS = ["#1f5fa8", "#b3541e", "#2e7d32", "#6a3d9a", "#8a6d00", "#00727a", "#a01850"];
  var DASHES = [[], [8, 4], [2, 3], [12, 4, 2, 4], [4, 8], [1, 1], [16, 6]];
  var POINTS = ["circle", "triangle", "rect", "rectRot", "star", "crossRot", "cross"];
  var lang = document.documentElement.lang || "en";

  function pattern(index, colour) {
    var size = 10;
    var tile = document.createElement("canvas");
    tile.width = tile.height = size;
    var c = tile.getContext("2d");
    c.fillStyle = colour;
    c.globalAlpha = 0.35;
    c.fillRect(0, 0, size, size);
    c.globalAlpha = 1;
    c.strokeStyle = colour;
    c.fillStyle = colour;
    c.lineWidth = 2;
    var kind = index % 4;
    c.beginPath();
    if (kind === 1) { c.moveTo(0, size); c.lineTo(size, 0); }
    else if (kind === 2) { c.arc(size / 2, size / 2, 2, 0, 2 * Math.PI); c.fill(); }
    else if (kind === 3) { c.moveTo(0, size / 2); c.lineTo(size, size / 2); c.moveTo(size / 2, 0); c.lineTo(size / 2, size); }
    c.stroke();
    return c.createPattern(tile, "repeat");
  }

  function formatter(unit, minutes) {
    var number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    if (unit === "rate") {
      var percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });
      return function (v) { return v === null || v === undefined ? "" : percent.format(v); };
    }
    if (unit === "seconds") {
      return function (v) { return v === null || v === undefined ? "" : number.format(v / 60) + " " + minutes; };
    }
    return function (v) { return v === null || v === undefined ? "" : number.format(v); };
  }

  // the bars' values, written above each bar (a plugin per chart: it keeps the chart's format;
  // a function among Chart.js's options would be called as a scriptable option)
  function barValues(format) {
    return {
      id: "barValues",
      afterDatasetsDraw: function (chart) {
        if (chart.config.type !== "bar") return;
        var ctx = chart.ctx;
        ctx.save();
        ctx.fillStyle = "#1a1a1a";
        ctx.font = "12px sans-serif";
        ctx.textAlign = "center";
        chart.data.datasets.forEach(function (dataset, i) {
          chart.getDatasetMeta(i).data.forEach(function (bar, j) {
            var value = dataset.data[j];
            if (value !== null && value !== undefined) ctx.fillText(format(value), bar.x, bar.y - 4);
          });
        });
        ctx.restore();
      }
    };
  }

  function draw(section) {
    var source = section.querySelector("script.chart-data");
    var holder = section.querySelector(".chart-canvas");
    if (!source || !holder || typeof Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    if (!spec.labels || !spec.labels.length) return;
    var format = formatter(spec.unit, spec.minutes || "min");
    var datasets = spec.series.map(function (series, i) {
      var colour = COLOURS[i % COLOURS.length];
      var set = { label: series.label, data: series.data, borderColor: colour, spanGaps: true };
      if (spec.type === "line") {
        set.borderDash = DASHES[i % DASHES.length];
        set.pointStyle = POINTS[i % POINTS.length];
        set.pointRadius = 3;
        set.backgroundColor = colour;
        set.borderWidth = 2;
      } else {
        set.backgroundColor = pattern(i, colour);
        set.borderWidth = 2;
      }
      return set;
    });
    holder.hidden = false;
    var chart = new Chart(holder.querySelector("canvas"), {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      plugins: [barValues(format)],
      options: {
        animation: false,
        maintainAspectRatio: false,
        layout: { padding: { top: 18 } },
        scales: { y: { beginAtZero: true, suggestedMax: spec.unit === "rate" ? 1 : undefined, ticks: { callback: format, precision: spec.unit === "count" ? 0 : undefined } } },
        plugins: {
          legend: { labels: { usePointStyle: spec.type === "line" } },
          tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + format(item.raw); } } }
        }
      }
    });
    section.dataset.drawn = String(chart.data.datasets.length);
    // the chart shows it now: the table folds away, one click (or Enter) to open
    var details = section.querySelector("details.table-view");
    if (details) details.open = false;
  }

  function start() {
    document.querySelectorAll("section.chart").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
