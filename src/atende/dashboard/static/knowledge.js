// atende dashboard, knowledge base: send the files picked or dropped one request each, with a
// progress bar, then follow each document's status until it is ready or failed. Without this
// script the form posts everything at once and the page lists the outcome.
(function () {
  "use strict";

  var FINAL = { ready: true, failed: true };

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function setup() {
    var form = document.getElementById("upload-form");
    var list = document.getElementById("upload-list");
    var zone = document.getElementById("drop-zone");
    var input = document.getElementById("files");
    var urls = document.getElementById("urls");
    if (!form || !list || !window.FormData || !window.XMLHttpRequest) {
      return;
    }
    var words = list.dataset;
    var following = {}; // document id -> its list item

    function item(name) {
      var li = document.createElement("li");
      var title = document.createElement("strong");
      title.textContent = name;
      var progress = document.createElement("progress");
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", words.uploading + " " + name);
      var status = document.createElement("span");
      status.className = "doc-status uploading";
      status.textContent = words.uploading;
      var reason = document.createElement("span");
      reason.className = "field-error";
      li.appendChild(title);
      li.appendChild(progress);
      li.appendChild(status);
      li.appendChild(reason);
      list.appendChild(li);
      return li;
    }

    function show(li, state) {
      var progress = li.querySelector("progress");
      if (progress) {
        li.removeChild(progress);
      }
      var status = li.querySelector(".doc-status");
      status.className = "doc-status " + (state.status || "failed");
      status.textContent = state.label || words.refused;
      li.querySelector(".field-error").textContent = state.error || "";
      if (state.url && !li.querySelector("a")) {
        var link = document.createElement("a");
        link.href = state.url;
        link.textContent = words.open;
        link.setAttribute("aria-label", words.open + " " + li.querySelector("strong").textContent);
        li.appendChild(link);
      }
      if (state.id) {
        if (FINAL[state.status]) {
          delete following[state.id];
        } else {
          following[state.id] = li;
        }
      }
    }

    function send(name, fill) {
      var li = item(name);
      var body = new FormData();
      body.append("csrf_token", csrfToken());
      fill(body);
      var request = new XMLHttpRequest();
      request.open("POST", form.getAttribute("action"));
      request.setRequestHeader("X-Upload", "one");
      request.setRequestHeader("X-CSRF-Token", csrfToken());
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          li.querySelector("progress").value = Math.round((100 * event.loaded) / event.total);
        }
      });
      request.addEventListener("load", function () {
        var state;
        try {
          state = JSON.parse(request.responseText);
        } catch (e) {
          state = { status: "failed", label: words.refused, error: words.lost };
        }
        if (!state.status) {
          state.status = "failed";
          state.label = words.refused;
        }
        show(li, state);
        refreshTable();
        poll();
      });
      request.addEventListener("error", function () {
        show(li, { status: "failed", label: words.refused, error: words.lost });
      });
      request.send(body);
    }

    function upload(files) {
      Array.prototype.forEach.call(files, function (file) {
        send(file.name, function (body) { body.append("files", file, file.name); });
      });
    }

    var polling = null;
    function poll() {
      if (polling) {
        return;
      }
      polling = window.setTimeout(function () {
        polling = null;
        var ids = Object.keys(following);
        if (!ids.length) {
          return;
        }
        var query = ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
        fetch("/app/knowledge/status?" + query, { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (states) {
            states.forEach(function (state) {
              if (following[state.id]) {
                show(following[state.id], state);
              }
            });
            refreshTable();
            poll();
          })
          .catch(function () { poll(); });
      }, 1000);
    }

    function refreshTable() {
      var rows = document.getElementById("document-rows");
      if (rows && window.htmx) {
        window.htmx.ajax("GET", "/app/knowledge?part=rows", { target: "#document-rows", swap: "outerHTML", headers: { "X-Live": "1" } });
      }
    }

    form.addEventListener("submit", function (event) {
      var lines = urls ? urls.value.split("\n").map(function (u) { return u.trim(); }).filter(Boolean) : [];
      if (!input.files.length && !lines.length) {
        return; // the server says what is missing
      }
      event.preventDefault();
      upload(input.files);
      lines.forEach(function (url) {
        send(url, function (body) { body.append("urls", url); });
      });
      input.value = "";
      if (urls) {
        urls.value = "";
      }
    });

    if (zone) {
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (event) {
          event.preventDefault();
          zone.classList.add("over");
        });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.remove("over"); });
      });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        if (event.dataTransfer && event.dataTransfer.files.length) {
          upload(event.dataTransfer.files);
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
