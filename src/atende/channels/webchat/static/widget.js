/* atende web chat widget. Embed with:
 *   <script src="https://YOUR-ATENDE/widget.js" data-widget-key="wk_..." defer></script>
 * Optional attributes: data-open="true" (start open), data-lang="pt|en|es", data-product="..."
 * (the product this page is about). The page's path and that product go with each message:
 * the company's knowledge rules may limit answers by them (e.g. pages under /pro/ → product pro).
 * Under each answer of the bot, "Helpful" / "Not helpful" (a thumbs-down asks what was missing
 * and may offer a person). Its colours, title, greeting, "Talk to a person" button and offline contact form are the
 * web chat account's settings, read from /widget/v1/KEY/config (the dashboard's preview
 * passes unsaved ones in data-config, with data-preview="true": nothing is sent or kept).
 * No dependencies; talks to the atende server the script was loaded from. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var key = script.getAttribute("data-widget-key");
  var base = new URL(script.src, window.location.href).origin;
  var lang = (script.getAttribute("data-lang") || navigator.language || "pt").slice(0, 2).toLowerCase();
  var preview = script.getAttribute("data-preview") === "true";
  var product = script.getAttribute("data-product");
  function context() {
    var where = { page: window.location.pathname };
    if (product) { where.product = product; }
    return where;
  }
  var TEXT = {
    pt: { title: "Atendimento", open: "Abrir chat", close: "Fechar chat", placeholder: "Escreva sua mensagem…",
          label: "Sua mensagem", send: "Enviar", typing: "Digitando…", sources: "Fontes", error: "Não foi possível enviar. Tente de novo.",
          tooFast: "Você está enviando mensagens rápido demais — aguarde alguns segundos e envie de novo.",
          talk: "Falar com uma pessoa", asks: "Quero falar com uma pessoa, por favor.", leave: "Deixar uma mensagem",
          away: "Nossa equipe não está disponível agora. Deixe sua mensagem e responderemos por e-mail {back}.",
          soon: "assim que possível", name: "Seu nome", email: "Seu e-mail", message: "Mensagem",
          submit: "Enviar mensagem", back: "Voltar ao chat", offline: "Deixe uma mensagem",
          thanks: "Obrigado, {name}! Recebemos sua mensagem e vamos responder em {email} {back}.",
          preview: "Pré-visualização: nada é enviado.",
          rateAsk: "Esta resposta ajudou?", helpful: "Útil", notHelpful: "Não ajudou",
          rateComment: "O que faltou? (opcional)", rateSend: "Enviar comentário", rateThanks: "Obrigado pela avaliação!",
          scores: ["Muito ruim", "Ruim", "Regular", "Bom", "Excelente"], rating: "Sua avaliação",
          star: "{n} de 5: {label}", comment: "Comentário (opcional)", sendComment: "Enviar comentário",
          rated: "Obrigado pela avaliação! Você pode mudá-la até {until}.", commented: "Obrigado pelo comentário!",
          closed: "Esta pesquisa já foi encerrada." },
    en: { title: "Support", open: "Open chat", close: "Close chat", placeholder: "Type your message…",
          label: "Your message", send: "Send", typing: "Typing…", sources: "Sources", error: "Could not send. Please try again.",
          tooFast: "You're sending messages too fast — please wait a few seconds and send again.",
          talk: "Talk to a person", asks: "I'd like to talk to a person, please.", leave: "Leave a message",
          away: "Our team is not available right now. Leave your message and we will answer by e-mail {back}.",
          soon: "as soon as possible", name: "Your name", email: "Your e-mail", message: "Message",
          submit: "Send message", back: "Back to the chat", offline: "Leave a message",
          thanks: "Thank you, {name}! We received your message and will answer at {email} {back}.",
          preview: "Preview: nothing is sent.",
          rateAsk: "Was this answer helpful?", helpful: "Helpful", notHelpful: "Not helpful",
          rateComment: "What was missing? (optional)", rateSend: "Send comment", rateThanks: "Thank you for your feedback!",
          scores: ["Very poor", "Poor", "Fair", "Good", "Excellent"], rating: "Your rating",
          star: "{n} of 5: {label}", comment: "Comment (optional)", sendComment: "Send comment",
          rated: "Thank you for your rating! You can change it until {until}.", commented: "Thank you for your comment!",
          closed: "This survey has closed." },
    es: { title: "Atención", open: "Abrir chat", close: "Cerrar chat", placeholder: "Escribe tu mensaje…",
          label: "Tu mensaje", send: "Enviar", typing: "Escribiendo…", sources: "Fuentes", error: "No se pudo enviar. Inténtalo de nuevo.",
          tooFast: "Estás enviando mensajes demasiado rápido: espera unos segundos y vuelve a enviarlo.",
          talk: "Hablar con una persona", asks: "Quiero hablar con una persona, por favor.", leave: "Dejar un mensaje",
          away: "Nuestro equipo no está disponible ahora. Deja tu mensaje y te responderemos por correo {back}.",
          soon: "lo antes posible", name: "Tu nombre", email: "Tu correo electrónico", message: "Mensaje",
          submit: "Enviar mensaje", back: "Volver al chat", offline: "Deja un mensaje",
          thanks: "¡Gracias, {name}! Recibimos tu mensaje y te responderemos en {email} {back}.",
          preview: "Vista previa: no se envía nada.",
          rateAsk: "¿Te sirvió esta respuesta?", helpful: "Útil", notHelpful: "No me sirvió",
          rateComment: "¿Qué faltó? (opcional)", rateSend: "Enviar comentario", rateThanks: "¡Gracias por tu opinión!",
          scores: ["Muy mala", "Mala", "Regular", "Buena", "Excelente"], rating: "Tu calificación",
          star: "{n} de 5: {label}", comment: "Comentario (opcional)", sendComment: "Enviar comentario",
          rated: "¡Gracias por tu calificación! Puedes cambiarla hasta el {until}.", commented: "¡Gracias por tu comentario!",
          closed: "Esta encuesta ya se cerró." }
  };
  var t = TEXT[lang] || TEXT.pt;
  if (!TEXT[lang]) { lang = "pt"; }
  var storeKey = "atende:" + key;
  var state = preview ? null : load();
  // the account's settings (until read: the widget as it always looked, no button offered)
  var config = { title: "", greeting: null, handoff_button: false, offline_form: false, team_available: true, back: null,
                 offer_person_on_thumbs_down: false };
  var seen = {};  // message id -> true once shown
  var answered = {};  // customer message id -> true once its reply is shown
  var lastId = "";  // the last message of the history: the stream starts after it
  var source = null;

  function load() {
    try { return JSON.parse(window.localStorage.getItem(storeKey)) || null; } catch (e) { return null; }
  }
  function save() { if (!preview) { window.localStorage.setItem(storeKey, JSON.stringify(state)); } }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) { return values[name] === undefined ? all : values[name]; });
  }
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
  var heading = el("h2", {}, t.title);
  header.appendChild(heading);
  var closeBtn = el("button", { type: "button", "class": "atende-close", "aria-label": t.close }, "×");
  header.appendChild(closeBtn);
  // the log is a region of its own holding a list (a list given role="log" would stop being one)
  var logBox = el("div", { "class": "atende-log", role: "log", "aria-live": "polite", "aria-label": t.title });
  var log = el("ol", { "class": "atende-list" });
  logBox.appendChild(log);
  var typing = el("p", { "class": "atende-typing", "aria-live": "polite", hidden: "" }, t.typing);
  var form = el("form", { "class": "atende-form" });
  var input = el("textarea", { "class": "atende-input", rows: "2", placeholder: t.placeholder,
                               "aria-label": t.label, maxlength: "4000" });
  var send = el("button", { type: "submit", "class": "atende-send" }, t.send);
  var errorBox = el("p", { "class": "atende-error", role: "alert", hidden: "" });
  form.appendChild(input); form.appendChild(send);
  // "Talk to a person" (or, with the team away, the offline contact form), shown per the settings
  var actions = el("div", { "class": "atende-actions", hidden: "" });
  var talk = el("button", { type: "button", "class": "atende-talk" }, t.talk);
  actions.appendChild(talk);
  var offline = el("form", { "class": "atende-offline", hidden: "", "aria-labelledby": "atende-offline-title" });
  offline.appendChild(el("h3", { id: "atende-offline-title" }, t.offline));
  var away = el("p", { "class": "atende-away" });
  offline.appendChild(away);
  function offlineField(id, labelText, control) {
    var wrap = el("div", { "class": "atende-field" });
    wrap.appendChild(el("label", { "for": id }, labelText));
    control.id = id;
    wrap.appendChild(control);
    offline.appendChild(wrap);
    return control;
  }
  var nameInput = offlineField("atende-offline-name", t.name,
    el("input", { type: "text", name: "name", autocomplete: "name", required: "", maxlength: "200" }));
  var emailInput = offlineField("atende-offline-email", t.email,
    el("input", { type: "email", name: "email", autocomplete: "email", required: "", maxlength: "320" }));
  var messageInput = offlineField("atende-offline-message", t.message,
    el("textarea", { name: "message", rows: "3", required: "", maxlength: "4000" }));
  var offlineButtons = el("div", { "class": "atende-offline-buttons" });
  var offlineSend = el("button", { type: "submit", "class": "atende-send" }, t.submit);
  var offlineBack = el("button", { type: "button", "class": "atende-talk" }, t.back);
  offlineButtons.appendChild(offlineSend); offlineButtons.appendChild(offlineBack);
  offline.appendChild(offlineButtons);
  panel.appendChild(header); panel.appendChild(logBox); panel.appendChild(typing);
  panel.appendChild(errorBox); panel.appendChild(actions); panel.appendChild(offline); panel.appendChild(form);
  root.appendChild(panel); root.appendChild(launcher);

  // the chat is with the team (handed off, or a message left): nothing more to ask for
  var withTeam = false;
  function offlineOffered() { return config.offline_form && !config.team_available; }
  function applyConfig(settings) {
    config = Object.assign(config, settings || {});
    var colours = { "--atende-primary": config.primary_color, "--atende-on-primary": config.primary_text_color,
                    "--atende-accent": config.accent_color };
    Object.keys(colours).forEach(function (name) {
      // CSSOM, not a style attribute: a page's Content-Security-Policy may forbid those
      if (colours[name]) { root.style.setProperty(name, colours[name]); }
    });
    var title = config.title || t.title;
    heading.textContent = title;
    panel.setAttribute("aria-label", title);
    logBox.setAttribute("aria-label", title);
    var greeting = log.querySelector(".atende-greeting");
    if (config.greeting) {
      if (!greeting) {
        greeting = el("li", { "class": "atende-msg atende-bot atende-greeting", "data-at": "0" });
        greeting.appendChild(el("p", { "class": "atende-text" }));
        log.insertBefore(greeting, log.firstChild);
      }
      greeting.firstChild.textContent = config.greeting;
    } else if (greeting) { greeting.remove(); }
    if (!withTeam && (config.handoff_button || offlineOffered())) {
      talk.textContent = config.handoff_button ? t.talk : t.leave;
      actions.removeAttribute("hidden");
    } else { actions.setAttribute("hidden", ""); }
    // a person offered after a thumbs-down: not once the chat is with the team
    Array.prototype.forEach.call(log.querySelectorAll(".atende-offer-person"), function (button) {
      if (withTeam) { button.setAttribute("hidden", ""); } else { button.removeAttribute("hidden"); }
      button.textContent = offlineOffered() ? t.leave : t.talk;
    });
    away.textContent = fill(t.away, { back: config.back || t.soon });
  }
  function showOffline(show) {
    errorBox.setAttribute("hidden", "");
    if (show) {
      offline.removeAttribute("hidden"); form.setAttribute("hidden", ""); actions.setAttribute("hidden", "");
      nameInput.focus();
    } else {
      offline.setAttribute("hidden", ""); form.removeAttribute("hidden"); applyConfig(); input.focus();
    }
  }
  function notify(text) { errorBox.textContent = text; errorBox.removeAttribute("hidden"); }
  function askForPerson() {
    if (offlineOffered()) { showOffline(true); return; }
    // the same path as typing it: the bot hands the chat to the team under the company's rules
    // (its hours, who is online), and says what happens next
    sendText(t.asks);
  }
  talk.addEventListener("click", askForPerson);
  offlineBack.addEventListener("click", function () { showOffline(false); });

  function setOpen(open, quietly) {
    // quietly: opened by the page (a preview in a frame must not take the keyboard from its page)
    if (open) { panel.removeAttribute("hidden"); if (!quietly) { input.focus(); } }
    else { panel.setAttribute("hidden", ""); launcher.focus(); }
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

  // "Helpful" / "Not helpful" under a bot answer (a new rating replaces the last); after "Not
  // helpful", a comment box and, per the account's settings, "Talk to a person"
  function rating(item, m) {
    var ask = el("span", { "class": "atende-rate-ask", id: "atende-rate-" + m.id }, t.rateAsk);
    var box = el("div", { "class": "atende-rate", role: "group", "aria-labelledby": ask.id });
    var up = el("button", { type: "button", "aria-pressed": String(m.meta.rating === "helpful") }, t.helpful);
    var down = el("button", { type: "button", "aria-pressed": String(m.meta.rating === "not_helpful") }, t.notHelpful);
    var said = el("p", { "class": "atende-rate-said", role: "status" });
    var more = null;
    box.appendChild(ask); box.appendChild(up); box.appendChild(down); box.appendChild(said);
    item.appendChild(box);
    function rate(helpful, comment) {
      if (preview) { notify(t.preview); return Promise.resolve(false); }
      var body = { helpful: helpful };
      if (comment) { body.comment = comment; }
      errorBox.setAttribute("hidden", "");
      return api("/conversations/" + state.conversation_id + "/messages/" + m.id + "/rating",
                 { method: "PUT", body: JSON.stringify(body) }).then(function () {
        up.setAttribute("aria-pressed", String(helpful));
        down.setAttribute("aria-pressed", String(!helpful));
        return true;
      }).catch(function (err) { notify(err && err.status === 429 ? t.tooFast : t.error); return false; });
    }
    function done() {
      if (more) { more.remove(); more = null; }
      said.textContent = t.rateThanks;
    }
    function askMore() {
      said.textContent = "";
      if (more) { more.querySelector("textarea").focus(); return; }
      more = el("form", { "class": "atende-rate-more" });
      var field = el("textarea", { id: "atende-comment-" + m.id, rows: "2", maxlength: "1000" });
      more.appendChild(el("label", { "for": field.id }, t.rateComment));
      more.appendChild(field);
      var buttons = el("div", { "class": "atende-rate-buttons" });
      buttons.appendChild(el("button", { type: "submit", "class": "atende-send" }, t.rateSend));
      if (config.offer_person_on_thumbs_down) {
        var person = el("button", { type: "button", "class": "atende-talk atende-offer-person" },
                        offlineOffered() ? t.leave : t.talk);
        if (withTeam) { person.setAttribute("hidden", ""); }
        person.addEventListener("click", askForPerson);
        buttons.appendChild(person);
      }
      more.appendChild(buttons);
      more.addEventListener("submit", function (e) {
        e.preventDefault();
        rate(false, field.value.trim()).then(function (ok) { if (ok) { done(); down.focus(); } });
      });
      field.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); more.requestSubmit(); }
      });
      box.appendChild(more);
      field.focus();
    }
    function pressed(button) { return button.getAttribute("aria-pressed") === "true"; }
    // pressed again: nothing to change (a thumbs-down's comment is kept)
    up.addEventListener("click", function () {
      (pressed(up) ? Promise.resolve(true) : rate(true)).then(function (ok) { if (ok) { done(); } });
    });
    down.addEventListener("click", function () {
      (pressed(down) ? Promise.resolve(true) : rate(false)).then(function (ok) { if (ok) { askMore(); } });
    });
  }

  // a satisfaction survey: five stars (one click rates; another click changes it) and an
  // optional comment, posted to /csat (no message: the conversation stays resolved)
  function survey(s) {
    var box = el("form", { "class": "atende-csat" });
    var group = el("fieldset", { "class": "atende-stars" });
    group.appendChild(el("legend", {}, t.rating));
    var note = el("p", { "class": "atende-csat-note", "role": "status" });
    var stars = [];
    var comment = el("textarea", { id: "atende-csat-" + s.survey_id, rows: "2", maxlength: "2000" });
    var commentField = el("div", { "class": "atende-field", hidden: "" });
    commentField.appendChild(el("label", { "for": comment.id }, t.comment));
    commentField.appendChild(comment);
    var sendComment = el("button", { type: "submit", "class": "atende-send" }, t.sendComment);
    commentField.appendChild(sendComment);
    function post(body) {
      body.survey_id = s.survey_id;
      return api("/conversations/" + state.conversation_id + "/csat", { method: "POST", body: JSON.stringify(body) })
        .catch(function (err) {
          note.textContent = err.status === 409 ? t.closed : t.error;
          throw err;
        });
    }
    function until() { return new Date(s.closes_at).toLocaleString(lang); }
    for (var n = 1; n <= 5; n++) {
      (function (score) {
        var label = fill(t.star, { n: score, label: t.scores[score - 1] });
        var star = el("button", { type: "button", "class": "atende-star", "aria-label": label, "aria-pressed": "false", title: label }, "★");
        star.addEventListener("click", function () {
          post({ score: score }).then(function (answer) {
            stars.forEach(function (b, i) {
              b.setAttribute("aria-pressed", String(i + 1 === answer.score));
              b.classList.toggle("atende-lit", i < answer.score);
            });
            note.textContent = fill(t.rated, { until: until() });
            commentField.removeAttribute("hidden");
          }).catch(function () {});
        });
        stars.push(star);
        group.appendChild(star);
      })(n);
    }
    box.appendChild(group);
    box.appendChild(commentField);
    box.appendChild(note);
    box.addEventListener("submit", function (e) {
      e.preventDefault();
      sendComment.disabled = true;
      post({ comment: comment.value }).then(function () { note.textContent = t.commented; })
        .catch(function () {}).then(function () { sendComment.disabled = false; });
    });
    return box;
  }

  function render(m) {
    if (seen[m.id]) { return; }
    seen[m.id] = true;
    var at = Date.parse(m.created_at) || 0;
    var item = el("li", { "class": "atende-msg atende-" + m.author, "data-id": m.id, "data-at": String(at) });
    item.appendChild(el("p", { "class": "atende-text" }, m.text));
    if (m.meta && m.meta.csat && !preview) { item.appendChild(survey(m.meta.csat)); }
    var cites = (m.meta && m.meta.citations) || [];
    if (cites.length) {
      var src = el("p", { "class": "atende-sources" });
      src.textContent = t.sources + ": " + cites.map(citationLabel).join("; ");
      item.appendChild(src);
    }
    if (m.author === "bot" && m.meta && m.meta.decision === "answer") { rating(item, m); }
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
    if (m.author === "bot" && m.meta && m.meta.decision === "handoff" && !withTeam) { withTeam = true; applyConfig(); }
    logBox.scrollTop = logBox.scrollHeight;
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
    logBox.scrollTop = logBox.scrollHeight;
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
    source.addEventListener("state", function (e) {
      var data = {};
      try { data = JSON.parse(e.data); } catch (err) { data = {}; }
      withTeam = data.state === "waiting_human" || data.state === "human";
      applyConfig();
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
    return api("/conversations", { method: "POST", body: JSON.stringify({ context: context() }) }).then(function (data) {
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

  function sendText(text) {
    if (!text || send.disabled) { return Promise.resolve(); }  // Enter while sending, or while told to wait
    if (preview) { notify(t.preview); return Promise.resolve(); }
    send.disabled = true; talk.disabled = true;
    errorBox.setAttribute("hidden", "");
    var clientId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now() + Math.random());
    return ensureConversation().then(function () {
      return api("/conversations/" + state.conversation_id + "/messages", {
        method: "POST", body: JSON.stringify({ text: text, client_id: clientId, context: context() })
      });
    }).then(function (m) {
      if (input.value.trim() === text) { input.value = ""; }
      render(m);
      // the server says whether the bot will answer (not when a person owns the chat);
      // its "typing" event may be missed while a new stream is still connecting
      if (m.awaiting_reply && !answered[m.id]) { typing.removeAttribute("hidden"); }
    }).catch(function (err) {
      // the typed text stays in the box, to send again
      notify(err && err.status === 429 ? t.tooFast : t.error);
      return err && err.status === 429 ? pause(err.retryAfter) : null;
    }).then(function () { send.disabled = false; talk.disabled = false; input.focus(); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    sendText(input.value.trim());
  });

  offline.addEventListener("submit", function (e) {
    e.preventDefault();
    var values = { name: nameInput.value.trim(), email: emailInput.value.trim(), message: messageInput.value.trim() };
    var thanks = fill(t.thanks, { name: values.name, email: values.email, back: config.back || t.soon });
    if (preview) { notify(t.preview); return; }
    if (offlineSend.disabled) { return; }
    offlineSend.disabled = true;
    errorBox.setAttribute("hidden", "");
    values.lang = lang;
    state = null;  // the message starts a conversation of its own
    api("/offline-messages", { method: "POST", body: JSON.stringify(values) }).then(function (data) {
      if (source) { source.close(); source = null; }
      state = { conversation_id: data.conversation_id, token: data.token };
      save();
      Array.prototype.slice.call(log.querySelectorAll(".atende-msg:not(.atende-greeting)")).forEach(function (item) { item.remove(); });
      seen = {}; answered = {}; lastId = data.message.id;
      render(data.message);
      var note = el("li", { "class": "atende-msg atende-system atende-thanks", "data-at": String(Date.now() + 1) });
      note.appendChild(el("p", { "class": "atende-text" }, thanks));
      log.appendChild(note);
      offline.reset();
      showOffline(false);
      withTeam = true;  // the message is with the team: the chat goes on as usual
      applyConfig();
      listen();
    }).catch(function (err) {
      state = load();
      notify(err && err.status === 429 ? t.tooFast : t.error);
    }).then(function () { offlineSend.disabled = false; });
  });

  function loadConfig() {
    var given = script.getAttribute("data-config");
    if (given) {
      try { applyConfig(JSON.parse(given)); } catch (err) { /* a malformed preview keeps the defaults */ }
      return;
    }
    fetch(base + "/widget/v1/" + encodeURIComponent(key) + "/config?lang=" + lang).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (settings) { if (settings) { applyConfig(settings); } }).catch(function () {});
  }

  function start() {
    document.body.appendChild(root);
    loadConfig();
    if (script.getAttribute("data-open") === "true") { setOpen(true, preview); }
    if (state) { history(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
