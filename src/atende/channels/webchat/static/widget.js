/* atende web chat widget. Embed with:
 *   <script src="https://YOUR-ATENDE/widget.js" data-widget-key="wk_..." defer></script>
 * Optional attributes: data-open="true" (start open), data-lang="pt|en|es".
 * No dependencies; talks to the atende server the script was loaded from. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var key = script.getAttribute("data-widget-key");
  var base = new URL(script.src, window.location.href).origin;
  var lang = (script.getAttribute("data-lang") || navigator.language || "pt").slice(0, 2);
  var TEXT = {
    pt: { title: "Atendimento", open: "Abrir chat", close: "Fechar chat", placeholder: "Escreva sua mensagem…",
          label: "Sua mensagem", send: "Enviar", typing: "Digitando…", sources: "Fontes", error: "Não foi possível enviar. Tente de novo.",
          tooFast: "Você está enviando mensagens rápido demais — aguarde alguns segundos e envie de novo." },
    en: { title: "Support", open: "Open chat", close: "Close chat", placeholder: "Type your message…",
          label: "Your message", send: "Send", typing: "Typing…", sources: "Sources", error: "Could not send. Please try again.",
          tooFast: "You're sending messages too fast — please wait a few seconds and send again." },
    es: { title: "Atención", open: "Abrir chat", close: "Cerrar chat", placeholder: "Escribe tu mensaje…",
          label: "Tu mensaje", send: "Enviar", typing: "Escribiendo…", sources: "Fuentes", error: "No se pudo enviar. Inténtalo de nuevo.",
          tooFast: "Estás enviando mensajes demasiado rápido: espera unos segundos y vuelve a enviarlo." }
  };
  var t = TEXT[lang] || TEXT.pt;
  var storeKey = "atende:" + key;
  var state = load();
  var seen = {};  // message id -> true once shown
  var answered = {};  // customer message id -> true once its reply is shown
  var lastId = "";  // the last message of the history: the stream starts after it
  var source = null;

  function load() {
    try { return JSON.parse(window.localStorage.getItem(storeKey)) || null; } catch (e) { return null; }
  }
  function save() { window.localStorage.setItem(storeKey, JSON.stringify(state)); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }

  var css = el("link", { rel: "stylesheet", href: base + "/widget.css" });
  document.head.appendChild(css);

  // a speech bubble drawn inline: an emoji would show as an empty box where no emoji font is
  // installed; the button's name is its aria-label (TEXT), the drawing is hidden from screen readers
  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    var attrs = { viewBox: "0 0 24 24", width: "28", height: "28", fill: "currentColor",
                  "aria-hidden": "true", focusable: "false" };
    Object.keys(attrs).forEach(function (k) { svg.setAttribute(k, attrs[k]); });
    var bubble = document.createElementNS(ns, "path");
    bubble.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z" +
                             "M7 10.5a1.5 1.5 0 1 0 3 0 1.5 1.5 0 1 0-3 0zm3.5 0a1.5 1.5 0 1 0 3 0 1.5 1.5 0 1 0-3 0z" +
                             "m3.5 0a1.5 1.5 0 1 0 3 0 1.5 1.5 0 1 0-3 0z");
    bubble.setAttribute("fill-rule", "evenodd");
    svg.appendChild(bubble);
    return svg;
  }

  var root = el("div", { "class": "atende-widget" });
  var launcher = el("button", { type: "button", "class": "atende-launcher", "aria-expanded": "false",
                               "aria-controls": "atende-panel", "aria-label": t.open });
  launcher.appendChild(chatIcon());
  var panel = el("section", { id: "atende-panel", "class": "atende-panel", role: "dialog",
                              "aria-label": t.title, hidden: "" });
  var header = el("header", { "class": "atende-header" });
  header.appendChild(el("h2", {}, t.title));
  var closeBtn = el("button", { type: "button", "class": "atende-close", "aria-label": t.close }, "×");
  header.appendChild(closeBtn);
  var log = el("ol", { "class": "atende-log", role: "log", "aria-live": "polite", "aria-label": t.title });
  var typing = el("p", { "class": "atende-typing", "aria-live": "polite", hidden: "" }, t.typing);
  var form = el("form", { "class": "atende-form" });
  var input = el("textarea", { "class": "atende-input", rows: "2", placeholder: t.placeholder,
                               "aria-label": t.label, maxlength: "4000" });
  var send = el("button", { type: "submit", "class": "atende-send" }, t.send);
  var errorBox = el("p", { "class": "atende-error", role: "alert", hidden: "" });
  form.appendChild(input); form.appendChild(send);
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(typing);
  panel.appendChild(errorBox); panel.appendChild(form);
  root.appendChild(panel); root.appendChild(launcher);

  function setOpen(open) {
    if (open) { panel.removeAttribute("hidden"); input.focus(); } else { panel.setAttribute("hidden", ""); launcher.focus(); }
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? t.close : t.open);
  }
  launcher.addEventListener("click", function () { setOpen(panel.hasAttribute("hidden")); });
  closeBtn.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { setOpen(false); } });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });

  function citationLabel(c) {
    // a section is the heading path, which usually starts with the document's title already
    if (!c.section || c.section === c.title) { return c.title; }
    return c.section.indexOf(c.title + " › ") === 0 ? c.section : c.title + " › " + c.section;
  }

  function render(m) {
    if (seen[m.id]) { return; }
    seen[m.id] = true;
    var at = Date.parse(m.created_at) || 0;
    var item = el("li", { "class": "atende-msg atende-" + m.author, "data-id": m.id, "data-at": String(at) });
    item.appendChild(el("p", { "class": "atende-text" }, m.text));
    var cites = (m.meta && m.meta.citations) || [];
    if (cites.length) {
      var src = el("p", { "class": "atende-sources" });
      src.textContent = t.sources + ": " + cites.map(citationLabel).join("; ");
      item.appendChild(src);
    }
    // the server sends messages in order; one shown out of band (the visitor's own, as
    // posted) goes before any later one already shown
    var after = null;
    Array.prototype.forEach.call(log.children, function (child) {
      var time = child.getAttribute("data-at");
      if (!after && time !== null && Number(time) > at) { after = child; }
    });
    log.insertBefore(item, after);
    if (m.reply_to_id) { answered[m.reply_to_id] = true; dropDraft(m.reply_to_id); }
    if (m.author !== "customer") { typing.setAttribute("hidden", ""); }
    log.scrollTop = log.scrollHeight;
  }

  // a streaming answer as it is written; the stored (checked) reply replaces it
  var drafts = {};
  function dropDraft(messageId) {
    if (drafts[messageId]) { drafts[messageId].remove(); delete drafts[messageId]; }
  }
  function showDraft(data) {
    if (!data.message_id || answered[data.message_id]) { return; }
    var item = drafts[data.message_id];
    if (!item) {
      item = el("li", { "class": "atende-msg atende-bot atende-draft", "aria-busy": "true" });
      item.appendChild(el("p", { "class": "atende-text" }, ""));
      drafts[data.message_id] = item;
      log.appendChild(item);
    }
    item.firstChild.textContent = data.text || "";
    typing.setAttribute("hidden", "");
    log.scrollTop = log.scrollHeight;
  }

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
    if (state) { options.headers["X-Visitor-Token"] = state.token; }
    return fetch(base + "/widget/v1/" + encodeURIComponent(key) + path, options).then(function (r) {
      if (!r.ok) {
        var err = new Error("HTTP " + r.status); err.status = r.status;
        // 429: how long to wait (the body says it too: Retry-After is not readable cross-origin)
        return r.json().catch(function () { return {}; }).then(function (body) {
          err.retryAfter = Number(body.retry_after) || 0;
          throw err;
        });
      }
      return r.json();
    });
  }

  function listen() {
    if (source || !state) { return; }
    var url = base + "/widget/v1/" + encodeURIComponent(key) + "/conversations/" + state.conversation_id +
      "/events?token=" + encodeURIComponent(state.token) + (lastId ? "&after=" + encodeURIComponent(lastId) : "");
    source = new EventSource(url);
    source.addEventListener("message", function (e) { render(JSON.parse(e.data)); });
    source.addEventListener("typing", function (e) {
      var data = {};
      try { data = JSON.parse(e.data); } catch (err) { data = {}; }
      if (!answered[data.message_id]) { typing.removeAttribute("hidden"); }
    });
    source.addEventListener("idle", function (e) {
      // the bot leaves this message for people: nobody is typing
      var data = {};
      try { data = JSON.parse(e.data); } catch (err) { data = {}; }
      if (data.message_id) { answered[data.message_id] = true; }
      typing.setAttribute("hidden", "");
    });
    source.addEventListener("draft", function (e) {
      try { showDraft(JSON.parse(e.data)); } catch (err) { /* a malformed draft is skipped */ }
    });
    source.onerror = function () {
      // EventSource reconnects by itself with Last-Event-ID; nothing to do
    };
  }

  function history() {
    return api("/conversations/" + state.conversation_id + "/messages").then(function (items) {
      items.forEach(render);
      if (items.length) { lastId = items[items.length - 1].id; }
      listen();
    }).catch(function (err) {
      // forget the conversation only when the server says it is gone, not on a network blip
      if (err.status === 401 || err.status === 404) { state = null; window.localStorage.removeItem(storeKey); }
      else { listen(); }  // the stream (no after) replays what the history could not load
    });
  }

  function ensureConversation() {
    if (state) { return Promise.resolve(state); }
    return api("/conversations", { method: "POST", body: "{}" }).then(function (data) {
      state = { conversation_id: data.conversation_id, token: data.token };
      save();
      listen();
      return state;
    });
  }

  // after "too fast", Send comes back once the server accepts messages again (at most 30 s)
  function pause(seconds) {
    var ms = Math.min(Math.max(seconds || 1, 1), 30) * 1000;
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || send.disabled) { return; }  // Enter while sending, or while told to wait
    send.disabled = true;
    errorBox.setAttribute("hidden", "");
    var clientId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now() + Math.random());
    ensureConversation().then(function () {
      return api("/conversations/" + state.conversation_id + "/messages", {
        method: "POST", body: JSON.stringify({ text: text, client_id: clientId })
      });
    }).then(function (m) {
      input.value = "";
      render(m);
      // the server says whether the bot will answer (not when a person owns the chat);
      // its "typing" event may be missed while a new stream is still connecting
      if (m.awaiting_reply && !answered[m.id]) { typing.removeAttribute("hidden"); }
    }).catch(function (err) {
      // the typed text stays in the box, to send again
      errorBox.textContent = err && err.status === 429 ? t.tooFast : t.error;
      errorBox.removeAttribute("hidden");
      return err && err.status === 429 ? pause(err.retryAfter) : null;
    }).then(function () { send.disabled = false; input.focus(); });
  });

  function start() {
    document.body.appendChild(root);
    if (script.getAttribute("data-open") === "true") { setOpen(true); }
    if (state) { history(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
