// atende dashboard: the few lines of behaviour of our own (htmx does the rest).
(function () {
  "use strict";

  // Every HTMX request carries the page's CSRF token, as every form does in a hidden field.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) {
      event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
    }
  });

  // After a part of the page is replaced, keyboard focus stays where the person was: on the
  // control they used (found again by its id), else the replaced part's first control, or on
  // the notice when one says what happened.
  var focusedId = null;
  document.addEventListener("htmx:beforeRequest", function () {
    var active = document.activeElement;
    focusedId = active && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.requestConfig && event.detail.requestConfig.headers["X-Live"]) {
      return; // a live refresh: the person did nothing, their focus stays
    }
    var replaced = target && target.id ? document.getElementById(target.id) : target;
    if (!replaced) {
      return;
    }
    if (replaced.id === "notice") {
      replaced.setAttribute("tabindex", "-1");
      replaced.focus();
      return;
    }
    var again = focusedId ? document.getElementById(focusedId) : null;
    if (again && again !== document.body) {
      again.focus();
      return;
    }
    if (replaced.id === "suggestion") {
      return;
    }
    var control = replaced.querySelector("select, button, input:not([type=hidden]), a[href]");
    if (control) {
      control.focus();
    }
  });

  // A composer that sent its text empties; a suggested reply fills the reply box.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form && form.classList && form.classList.contains("composer")) {
      form.reset();
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "suggestion") {
      return;
    }
    var draft = event.detail.target.querySelector("[data-draft]");
    var box = document.getElementById("reply-text");
    if (draft && box) {
      box.value = draft.getAttribute("data-draft");
      box.focus();
    }
  });

  // Snooze times are read in the browser's timezone.
  function fillZones() {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      zone = "";
    }
    document.querySelectorAll("input.browser-zone").forEach(function (input) {
      input.value = zone;
    });
  }
  document.addEventListener("DOMContentLoaded", fillZones);
  document.addEventListener("htmx:afterSettle", fillZones);

  // Canned responses: "/" and a code at the start of the reply box lists them; arrows move,
  // Enter or a click inserts the chosen one, filled for this conversation; Escape closes.
  function setupCanned() {
    var box = document.getElementById("reply-text");
    var list = document.getElementById("canned-list");
    var said = document.getElementById("canned-missing");
    if (!box || !list) {
      return;
    }
    var base = box.getAttribute("data-canned");
    var active = -1;
    var asked = 0;

    function options() {
      return Array.prototype.slice.call(list.querySelectorAll("[data-code]"));
    }
    function close() {
      list.hidden = true;
      list.innerHTML = "";
      box.setAttribute("aria-expanded", "false");
      box.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function mark(index) {
      var all = options();
      all.forEach(function (o, i) {
        o.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      active = index;
      if (all[index]) {
        box.setAttribute("aria-activedescendant", all[index].id);
        all[index].scrollIntoView({ block: "nearest" });
      }
    }
    function choose(option) {
      var code = option.getAttribute("data-code");
      fetch(base + "/render?code=" + encodeURIComponent(code), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          close();
          if (body.text !== undefined) {
            box.value = body.text;
            said.textContent = body.missing || "";
          } else {
            said.textContent = body.error || "";
          }
          box.focus();
        });
    }
    box.addEventListener("input", function () {
      var match = /^\/(\S{0,40})$/.exec(box.value);
      if (!match) {
        close();
        return;
      }
      var mine = ++asked;
      fetch(base + "?q=" + encodeURIComponent(match[1]), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          if (mine !== asked) {
            return;
          }
          list.innerHTML = html;
          list.hidden = false;
          box.setAttribute("aria-expanded", "true");
          mark(options().length ? 0 : -1);
        });
    });
    box.addEventListener("keydown", function (event) {
      if (list.hidden) {
        return;
      }
      var all = options();
      if (event.key === "ArrowDown" && all.length) {
        event.preventDefault();
        mark((active + 1) % all.length);
      } else if (event.key === "ArrowUp" && all.length) {
        event.preventDefault();
        mark((active - 1 + all.length) % all.length);
      } else if (event.key === "Enter" && all[active]) {
        event.preventDefault();
        choose(all[active]);
      } else if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    list.addEventListener("click", function (event) {
      var option = event.target.closest("[data-code]");
      if (option) {
        choose(option);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", setupCanned);
})();
