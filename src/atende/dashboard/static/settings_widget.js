/* The web chat widget's settings page: the preview follows the form as it changes (the form's
 * fields, but not its CSRF token, as the preview's query), and "Copy snippet" copies the embed
 * line. Without JavaScript, "Update preview" loads the same preview into the frame. */
(function () {
  "use strict";
  function start() {
    var form = document.getElementById("widget-settings");
    var frame = document.getElementById("widget-preview");
    if (!form || !frame) { return; }
    var timer = null;
    function previewUrl() {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, name) {
        if (name !== "csrf_token") { params.append(name, value); }
      });
      return form.getAttribute("data-preview") + "?" + params.toString();
    }
    function refresh() {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { frame.src = previewUrl(); }, 250);
    }
    form.addEventListener("input", refresh);
    form.addEventListener("change", refresh);

    var copy = document.getElementById("copy-snippet");
    var snippet = document.getElementById("widget-snippet");
    var status = document.getElementById("copy-status");
    if (copy && snippet && navigator.clipboard) {
      copy.hidden = false;
      copy.addEventListener("click", function () {
        navigator.clipboard.writeText(snippet.textContent).then(function () {
          status.textContent = copy.getAttribute("data-copied");
        });
      });
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
