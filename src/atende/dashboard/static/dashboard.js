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
    var live = event.detail.requestConfig && event.detail.requestConfig.headers["X-Live"];
    if (live) {
      // a live refresh: the person did nothing here. Focus goes back only if the element
      // they were on was replaced (focus fell to the page); never away from where they went.
      var lost = !document.activeElement || document.activeElement === document.body;
      var kept = focusedId ? document.getElementById(focusedId) : null;
      if (kept && lost) {
        kept.focus();
      }
      return;
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
  // Live updates (GET /app/live, Server-Sent Events): the inbox's list and the open
  // conversation's thread and status are asked for again when the server says they changed;
  // who else is viewing or typing is shown in #presence.
  function setupLive() {
    var results = document.getElementById("inbox-results");
    var conversation = document.getElementById("conversation");
    if (!results && !conversation) {
      return;
    }
    var cid = conversation ? conversation.getAttribute("data-conversation") : null;
    var url = "/app/live" + (cid ? "?conversation=" + encodeURIComponent(cid) : "");
    var source = new EventSource(url);
    var pending = {};
    function refresh(name, target, address) {
      if (pending[name]) {
        return;
      }
      pending[name] = true;
      window.setTimeout(function () {
        pending[name] = false;
        var where = document.getElementById(target);
        if (!where) {
          return;
        }
        var active = document.activeElement;
        if (active && where.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
          refresh(name, target, address); // the person is filling a field here: later
          return;
        }
        focusedId = active && active.id ? active.id : null;
        htmx.ajax("GET", address(), { target: "#" + target, swap: "outerHTML", headers: { "X-Live": "1" } });
      }, 300);
    }
    source.addEventListener("inbox", function () {
      var list = document.getElementById("inbox-results");
      if (list) {
        refresh("inbox", "inbox-results", function () { return list.getAttribute("data-url"); });
      }
    });
    source.addEventListener("thread", function () {
      refresh("thread", "thread", function () { return "/app/conversations/" + cid + "?part=thread"; });
    });
    source.addEventListener("status", function () {
      refresh("status", "conversation-status", function () {
        return "/app/conversations/" + cid + "?part=status";
      });
    });
    source.addEventListener("signed_out", function () {
      source.close();
      window.location.reload();
    });
    setupPresence(source, conversation);
  }

  function setupPresence(source, conversation) {
    var shown = document.getElementById("presence");
    if (!shown || !conversation) {
      return;
    }
    var me = conversation.getAttribute("data-me");
    var people = {};
    function render() {
      var now = Date.now();
      var lines = [];
      Object.keys(people).forEach(function (id) {
        var p = people[id];
        if (p.until < now) {
          delete people[id];
          return;
        }
        var typing = p.typingUntil > now;
        var template = shown.getAttribute(typing ? "data-typing" : "data-viewing");
        lines.push(template.replace("%(name)s", p.name));
      });
      var text = lines.join(" ");
      if (shown.textContent !== text) {
        shown.textContent = text;
      }
    }
    source.addEventListener("presence", function (event) {
      var data = JSON.parse(event.data);
      if (!data.user_id || data.user_id === me) {
        return;
      }
      if (data.doing === "left") {
        delete people[data.user_id];
      } else {
        var p = people[data.user_id] || { typingUntil: 0 };
        p.name = data.name;
        p.until = Date.now() + 40000;
        if (data.doing === "typing") {
          p.typingUntil = Date.now() + 6000;
        }
        people[data.user_id] = p;
      }
      render();
    });
    window.setInterval(render, 1000);
    var typingUrl = shown.getAttribute("data-typing-url");
    var said = 0;
    ["reply-text", "note-text"].forEach(function (id) {
      var box = document.getElementById(id);
      if (!box || !typingUrl) {
        return;
      }
      box.addEventListener("input", function () {
        if (Date.now() - said < 3000) {
          return;
        }
        said = Date.now();
        var meta = document.querySelector('meta[name="csrf-token"]');
        fetch(typingUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": meta ? meta.getAttribute("content") : "" }
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", setupLive);
  // Keyboard shortcuts (listed under "?"): they work when the person is not typing in a field.
  function setupShortcuts() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog) {
      return;
    }
    var opener = document.getElementById("show-shortcuts");
    function show() {
      if (!dialog.open) {
        dialog.showModal();
        document.getElementById("close-shortcuts").focus();
      }
    }
    if (opener) {
      opener.addEventListener("click", show);
      dialog.addEventListener("close", function () { opener.focus(); });
    }
    function rowLinks() {
      return Array.prototype.slice.call(document.querySelectorAll("#inbox-results a.row-link"));
    }
    function move(step) {
      var links = rowLinks();
      if (!links.length) {
        return;
      }
      var at = links.indexOf(document.activeElement);
      var next = at === -1 ? (step > 0 ? 0 : links.length - 1) : Math.min(Math.max(at + step, 0), links.length - 1);
      links[next].focus();
    }
    function press(id) {
      var button = document.getElementById(id);
      if (button) {
        button.click();
      }
    }
    function focusField(id) {
      var field = document.getElementById(id);
      if (field) {
        field.focus();
      }
    }
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      var target = event.target;
      if (target && (/^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName) || target.isContentEditable)) {
        return;
      }
      if (dialog.open && event.key !== "?") {
        return;
      }
      var actions = {
        "?": show,
        "j": function () { move(1); },
        "k": function () { move(-1); },
        "s": function () { focusField("search"); },
        "r": function () { focusField("reply-text"); },
        "n": function () { focusField("note-text"); },
        "a": function () { press("assign-me"); },
        "e": function () { press("resolve"); },
        "u": function () {
          if (document.getElementById("conversation")) {
            window.location.assign("/app/inbox");
          }
        }
      };
      var action = actions[event.key];
      if (action) {
        event.preventDefault();
        action();
      }
    });
  }
  document.addEventListener("DOMContentLoaded", setupShortcuts);
})();

// a secret shown once (a new API key, a webhook's signing secret): focusing its field
// selects it whole, ready to copy (without JavaScript it is a plain read-only field)
(function () {
  "use strict";
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field && field.hasAttribute && field.hasAttribute("data-select-on-focus")) {
      field.select();
    }
  });
})();

// Settings → E-mail: the connect form shows the groups of fields the chosen way of receiving
// mail uses (IMAP, POP3 or a provider's webhook; SMTP always). Without JavaScript every group
// shows, each saying when it is needed.
(function () {
  "use strict";
  function setupArrival() {
    var choice = document.querySelector("select[data-arrival]");
    if (!choice) return;
    function show() {
      var value = choice.value;
      document.querySelectorAll("fieldset[data-arrivals]").forEach(function (group) {
        var uses = group.getAttribute("data-arrivals").split(" ");
        group.hidden = uses.indexOf(value) < 0;
      });
    }
    choice.addEventListener("change", show);
    show();
  }
  document.addEventListener("DOMContentLoaded", setupArrival);
})();
