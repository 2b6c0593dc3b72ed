// casebridge messenger widget: embed with <script src="https://support.example/messenger.js" defer></script>
// Optional attributes on that tag: data-title, data-name, data-email and data-user-hash
// (identity verification: the hex HMAC-SHA256 of the email under the messenger's identity secret).
(function () {
  "use strict";
  var tag = document.currentScript;
  if (!tag || window.__casebridgeMessenger) return;
  window.__casebridgeMessenger = true;
  var base = new URL(tag.src, document.baseURI).origin;
  var api = base + "/messenger/v1/conversations";
  var storeKey = "casebridge-messenger:" + base;
  var saved = null;
  try { saved = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { saved = null; }
  var state = { id: saved && saved.id, token: saved && saved.token, read: (saved && saved.read) || 0, seq: 0, source: null, seen: {} };
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify({ id: state.id, token: state.token, read: state.read })); } catch (e) { /* private mode */ }
  }

  function el(name, props, style) {
    var node = document.createElement(name);
    Object.keys(props || {}).forEach(function (k) {
      if (k === "text") node.textContent = props[k];
      else node.setAttribute(k, props[k]);
    });
    Object.assign(node.style, style || {});
    return node;
  }

  // The texts: English, or the configured ones of the visitor's language (messenger.texts).
  var english = {
    title: "Chat with us", message_label: "Your message", messages: "Messages", placeholder: "Type your question", send: "Send",
    close: "Close chat", typing: "Assistant is typing\u2026", you: "You", assistant: "Assistant", support: "Support",
    unread: "unread", suggestions_question: "Did one of them answer your question?",
    suggestions_yes: "Yes, that answered it", suggestions_no: "No, talk to a person",
    conversation_closed: "That conversation was closed. Send your message again to start a new one.",
    rating_label: "How would you rate this conversation?", rating_comment: "Anything to add? (optional)",
    rating_send: "Send rating", rating_thanks: "Thank you for your rating.", rating_pick: "Pick a rating from 1 to 5 first.",
    email_label: "Your email, so we can reach you if you leave", email_send: "Send email",
    email_thanks: "Thanks: we will also reply to", email_invalid: "That is not an email address."
  };
  var configured = /*TEXTS*/{};
  function pickLanguage() {
    var wanted = [tag.getAttribute("data-lang")].concat(navigator.languages || [navigator.language]).filter(Boolean);
    for (var i = 0; i < wanted.length; i++) {
      var exact = Object.keys(configured).find(function (k) { return k.toLowerCase() === wanted[i].toLowerCase(); });
      if (exact) return exact;
      var primary = wanted[i].split("-")[0].toLowerCase();
      if (configured[primary]) return primary;
    }
    return null;
  }
  var language = pickLanguage();
  var t = Object.assign({}, english, language ? configured[language] : {});
  var title = tag.getAttribute("data-title") || t.title;
  var root = el("div", { "data-casebridge": "messenger", lang: language || "en" },
    { position: "fixed", right: "1rem", bottom: "1rem", zIndex: 2147483000, font: "15px/1.45 system-ui, sans-serif" });
  var toggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": "casebridge-panel" },
    { background: "#1f4fd6", color: "#fff", border: "0", borderRadius: "1.5rem", padding: ".7rem 1.2rem", cursor: "pointer", fontSize: "15px" });
  var toggleText = el("span", { text: title });
  toggle.append(toggleText);
  var panel = el("section", { id: "casebridge-panel", role: "dialog", "aria-label": title, hidden: "" },
    { width: "min(22rem, calc(100vw - 2rem))", height: "min(30rem, calc(100vh - 6rem))", background: "#fff", color: "#1d2330",
      border: "1px solid #c9d1e0", borderRadius: ".75rem", boxShadow: "0 8px 30px rgba(0,0,0,.18)", marginBottom: ".5rem",
      display: "none", flexDirection: "column", overflow: "hidden", boxSizing: "border-box" });
  var header = el("div", {}, { display: "flex", alignItems: "center", background: "#f3f5fa", borderBottom: "1px solid #e1e6ef" });
  var heading = el("h2", { text: title }, { margin: "0", padding: ".75rem 1rem", fontSize: "16px", flex: "1" });
  var closer = el("button", { type: "button", "aria-label": t.close, "data-close": "", text: "\u00d7" },
    { background: "transparent", color: "#1d2330", border: "0", fontSize: "22px", lineHeight: "1", padding: ".4rem .8rem", cursor: "pointer" });
  header.append(heading, closer);
  var typing = el("p", { "data-typing": "", hidden: "" }, { margin: "0 .75rem .25rem", fontSize: "13px", color: "#4a5568", fontStyle: "italic" });
  typing.textContent = t.typing;
  var badge = el("span", { "data-unread": "", "aria-hidden": "true", hidden: "" },
    { marginLeft: ".5rem", background: "#b42318", color: "#fff", borderRadius: "1rem", padding: "0 .45rem", fontSize: "12px", fontWeight: "700" });
  toggle.append(badge);
  // The messages: a list, inside a live region screen readers announce new ones from.
  var logBox = el("div", { role: "log", "aria-live": "polite", "aria-label": t.messages, tabindex: "0" },
    { flex: "1", overflowY: "auto", padding: ".75rem" });
  var log = el("ol", { "aria-label": t.messages }, { listStyle: "none", margin: "0", padding: "0" });
  logBox.append(log);
  var form = el("form", {}, { display: "flex", gap: ".5rem", padding: ".5rem", borderTop: "1px solid #e1e6ef" });
  var label = el("label", { for: "casebridge-input", text: t.message_label },
    { position: "absolute", width: "1px", height: "1px", overflow: "hidden", clip: "rect(0 0 0 0)" });
  var input = el("textarea", { id: "casebridge-input", rows: "2", placeholder: t.placeholder, "aria-describedby": "casebridge-status" },
    { flex: "1", resize: "none", font: "inherit", padding: ".4rem", border: "1px solid #c9d1e0", borderRadius: ".4rem" });
  var send = el("button", { type: "submit", text: t.send },
    { background: "#1f4fd6", color: "#fff", border: "0", borderRadius: ".4rem", padding: "0 1rem", cursor: "pointer" });
  var status = el("p", { id: "casebridge-status", role: "status" }, { margin: "0", padding: "0 .75rem .5rem", fontSize: "13px", color: "#9b1c1c", minHeight: "1em" });
  form.append(label, input, send);
  panel.append(header, logBox, typing, form, status);
  root.append(panel, toggle);
  document.body.append(root);

  // On a narrow screen the open panel takes the whole screen.
  var narrow = window.matchMedia ? window.matchMedia("(max-width: 480px)") : { matches: false };
  function fit() {
    var full = narrow.matches;
    Object.assign(panel.style, full
      ? { position: "fixed", inset: "0", width: "100vw", height: "100dvh", borderRadius: "0", marginBottom: "0" }
      : { position: "static", inset: "auto", width: "min(22rem, calc(100vw - 2rem))", height: "min(30rem, calc(100vh - 6rem))", borderRadius: ".75rem", marginBottom: ".5rem" });
  }
  if (narrow.addEventListener) narrow.addEventListener("change", fit);
  fit();

  // The agent at work: shown until its reply (or a person's) arrives, or the server's bound.
  var typingTimer = null;
  function showTyping(seconds) {
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, Math.min(Math.max(seconds, 1), 120) * 1000);
  }
  function hideTyping() { typing.hidden = true; clearTimeout(typingTimer); }

  // Replies that arrive while the panel is closed, counted on the launcher.
  var unread = 0;
  function relabel() {
    toggleText.textContent = panel.hidden ? title : t.close;
    badge.textContent = String(unread);
    badge.hidden = !(panel.hidden && unread > 0);
    toggle.setAttribute("aria-label", panel.hidden && unread > 0 ? title + " (" + unread + " " + t.unread + ")" : toggleText.textContent);
  }
  function markRead() {
    unread = 0;
    state.read = state.seq;
    save();
    relabel();
  }

  var choices = null;

  // A link the server named or the text holds: only http(s), opening in a new tab.
  function safeLink(url, text) {
    var href;
    try { href = new URL(url); } catch (e) { href = null; }
    if (!href || (href.protocol !== "https:" && href.protocol !== "http:")) return document.createTextNode(text);
    return el("a", { href: href.href, target: "_blank", rel: "noopener noreferrer", text: text }, { color: "inherit", fontWeight: "600" });
  }

  // A line's text with its links: `"Title": URL` of a source becomes the title linked, a
  // bare http(s) URL a link. Text nodes only: nothing from the server is parsed as HTML.
  function inline(node, text, titles) {
    var re = /(?:"([^"\n]{1,200})":\s*)?(https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'])/g;
    var at = 0, m;
    while ((m = re.exec(text)) !== null) {
      node.append(document.createTextNode(text.slice(at, m.index)));
      var title = titles[m[2]] || m[1];
      if (m[1] && titles[m[2]]) node.append(document.createTextNode("\u201c"));
      node.append(safeLink(m[2], title || m[2]));
      if (m[1] && titles[m[2]]) node.append(document.createTextNode("\u201d"));
      at = re.lastIndex;
    }
    node.append(document.createTextNode(text.slice(at)));
  }

  // Plain text as paragraphs, bulleted and numbered lists, and links, built as DOM nodes.
  function richText(body, sources) {
    var titles = {};
    (sources || []).forEach(function (s) { titles[s.url] = s.title; });
    var holder = el("div", { "data-body": "" }, { whiteSpace: "normal" });
    body.split(/\n\s*\n/).forEach(function (block) {
      var list = null, para = null;
      block.split("\n").forEach(function (line) {
        var bullet = /^\s*[-*\u2022]\s+(.*)$/.exec(line), number = /^\s*\d{1,3}[.)]\s+(.*)$/.exec(line);
        var kind = bullet ? "ul" : number ? "ol" : null;
        if (kind) {
          if (!list || list.tagName.toLowerCase() !== kind) {
            list = el(kind, {}, { margin: ".3rem 0", paddingLeft: "1.3rem" });
            holder.append(list);
          }
          para = null;
          var item = el("li", {}, { margin: ".15rem 0" });
          inline(item, (bullet || number)[1], titles);
          list.append(item);
        } else if (line.trim()) {
          list = null;
          if (para) para.append(el("br"));
          else { para = el("p", {}, { margin: ".3rem 0" }); holder.append(para); }
          inline(para, line, titles);
        }
      });
    });
    return holder;
  }

  // A link to an article the server named: only http(s), opening in a new tab.
  function articleLink(s) {
    var href;
    try { href = new URL(s.url); } catch (e) { href = null; }
    if (!href || (href.protocol !== "https:" && href.protocol !== "http:")) return el("span", { text: s.title });
    return el("a", { href: href.href, target: "_blank", rel: "noopener noreferrer", text: s.title }, { color: "#1f4fd6", fontWeight: "600" });
  }

  // Articles offered to confirm: links with their first lines, and two buttons.
  function suggestions(item, m) {
    item.append(document.createTextNode(m.body.split("\n")[0]));
    var list = el("ul", { "aria-label": "Suggested articles" }, { margin: ".35rem 0", paddingLeft: "1.1rem" });
    m.suggestions.forEach(function (s) {
      var entry = el("li", {}, { margin: ".3rem 0" });
      entry.append(articleLink(s), el("div", { text: s.excerpt }, { fontSize: "13px", color: "#4a5568" }));
      list.append(entry);
    });
    item.append(list);
    choices = el("div", { role: "group", "aria-label": t.suggestions_question, "data-choices": "" },
      { display: "flex", gap: ".4rem", flexWrap: "wrap", marginTop: ".3rem" });
    [[t.suggestions_yes, "yes"], [t.suggestions_no, "no"]].forEach(function (c) {
      var b = el("button", { type: "button", text: c[0], "data-choice": c[1] },
        { background: "#fff", color: "#1f4fd6", border: "1px solid #1f4fd6", borderRadius: "1rem", padding: ".3rem .8rem", cursor: "pointer", font: "inherit" });
      // One answer: the buttons go at the first click (a second would send it twice).
      b.addEventListener("click", function () {
        if (choices) { choices.remove(); choices = null; }
        post(c[0]);
      });
      choices.append(b);
    });
    item.append(choices);
  }

  function show(m) {
    if (state.seen[m.seq]) return;
    state.seen[m.seq] = true;
    state.seq = Math.max(state.seq, m.seq);
    // Choices answer only the latest message.
    if (choices) { choices.remove(); choices = null; }
    var mine = m.author === "visitor";
    if (!mine) {
      hideTyping();
      if (panel.hidden && m.seq > (state.read || 0)) { unread += 1; relabel(); }
    }
    // Seen as it arrives while the panel is open: not counted again after a reload.
    if (!panel.hidden && m.seq > (state.read || 0)) { state.read = m.seq; save(); }
    var who = mine ? t.you : (m.name || (m.author === "human" ? t.support : t.assistant));
    var item = el("li", { "data-author": m.author },
      { margin: ".35rem 0", padding: ".45rem .65rem", borderRadius: ".6rem", maxWidth: "85%", whiteSpace: "pre-wrap", wordBreak: "break-word",
        background: mine ? "#1f4fd6" : "#eef1f6", color: mine ? "#fff" : "#1d2330", marginLeft: mine ? "auto" : "0" });
    item.append(el("span", { text: who + ": " }, { fontWeight: "600" }));
    if (m.suggestions && m.suggestions.length) suggestions(item, m);
    else item.append(richText(m.body, m.sources));
    if (m.asks_rating && state.id) ratingForm(item);
    if (m.asks_email && state.id) emailForm(item);
    log.append(item);
    logBox.scrollTop = logBox.scrollHeight;
  }

  function fail(text) { status.textContent = text; }

  // An anonymous visitor's email, asked for on a handover: the reply can reach them if they
  // leave. Checked by the browser and the server.
  function emailForm(item) {
    ratingForms += 1;
    // Checked in the handler (novalidate), so the message shows in the widget's own words.
    var form = el("form", { "data-email": "", "aria-label": t.email_label, novalidate: "" }, { marginTop: ".4rem" });
    var inputId = "casebridge-email-" + ratingForms;
    var emailLabel = el("label", { for: inputId, text: t.email_label }, { display: "block", fontSize: "13px" });
    var address = el("input", { id: inputId, type: "email", required: "", autocomplete: "email", maxlength: "80" },
      { width: "100%", boxSizing: "border-box", font: "inherit", padding: ".3rem", border: "1px solid #c9d1e0", borderRadius: ".4rem" });
    var submit = el("button", { type: "submit", text: t.email_send },
      { marginTop: ".3rem", background: "#1f4fd6", color: "#fff", border: "0", borderRadius: ".4rem", padding: ".3rem .8rem", cursor: "pointer", font: "inherit" });
    form.append(emailLabel, address, submit);
    address.addEventListener("input", function () { fail(""); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!address.checkValidity()) { fail(address.validationMessage || t.email_invalid); address.focus(); return; }
      submit.disabled = true;
      fail("");
      call("POST", api + "/" + encodeURIComponent(state.id) + "/email", { email: address.value.trim() }).then(function (data) {
        form.replaceChildren(el("p", { role: "status", text: t.email_thanks + " " + data.email }, { margin: ".3rem 0", fontWeight: "600" }));
      }).catch(function (err) { submit.disabled = false; fail(err.message); });
    });
    item.append(form);
  }

  // The rating a closing message asks for (CSAT): 1 to 5, an optional comment, sent once
  // (sending again replaces it).
  var ratingForms = 0;
  function ratingForm(item) {
    ratingForms += 1;
    var form = el("form", { "data-rating": "", "aria-label": t.rating_label }, { marginTop: ".4rem" });
    var scores = el("div", { role: "group", "aria-label": t.rating_label }, { display: "flex", gap: ".3rem", flexWrap: "wrap" });
    var chosen = 0;
    var buttons = [1, 2, 3, 4, 5].map(function (n) {
      var b = el("button", { type: "button", text: String(n), "aria-label": n + " / 5", "aria-pressed": "false", "data-score": String(n) },
        { background: "#fff", color: "#1f4fd6", border: "1px solid #1f4fd6", borderRadius: ".4rem", width: "2.2rem", height: "2.2rem", cursor: "pointer", font: "inherit" });
      b.addEventListener("click", function () {
        chosen = n;
        fail("");
        buttons.forEach(function (x, i) {
          var on = i + 1 <= n;
          x.setAttribute("aria-pressed", String(i + 1 === n));
          x.style.background = on ? "#1f4fd6" : "#fff";
          x.style.color = on ? "#fff" : "#1f4fd6";
        });
      });
      scores.append(b);
      return b;
    });
    var commentId = "casebridge-rating-comment-" + ratingForms;
    var commentLabel = el("label", { for: commentId, text: t.rating_comment }, { display: "block", fontSize: "13px", marginTop: ".35rem" });
    var comment = el("textarea", { id: commentId, rows: "2", maxlength: "1000" },
      { width: "100%", boxSizing: "border-box", font: "inherit", resize: "vertical", border: "1px solid #c9d1e0", borderRadius: ".4rem" });
    var submit = el("button", { type: "submit", text: t.rating_send },
      { marginTop: ".3rem", background: "#1f4fd6", color: "#fff", border: "0", borderRadius: ".4rem", padding: ".3rem .8rem", cursor: "pointer", font: "inherit" });
    form.append(scores, commentLabel, comment, submit);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (!chosen) { fail(t.rating_pick); return; }
      submit.disabled = true;
      fail("");
      var body = { rating: chosen };
      if (comment.value.trim()) body.comment = comment.value.trim();
      call("POST", api + "/" + encodeURIComponent(state.id) + "/rating", body).then(function () {
        form.replaceChildren(el("p", { role: "status", text: t.rating_thanks }, { margin: ".3rem 0", fontWeight: "600" }));
      }).catch(function (err) { submit.disabled = false; fail(err.message); });
    });
    item.append(form);
  }

  function call(method, url, body) {
    var headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(url, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { var err = new Error(data.message || ("HTTP " + r.status)); err.code = data.error; throw err; }
        return data;
      });
    });
  }

  // A refused or dropped stream is opened again, less often each time (a visitor with many
  // tabs open meets the per-conversation limit).
  var retryDelay = 3000;
  function listen() {
    if (!state.id || state.source) return;
    var url = api + "/" + encodeURIComponent(state.id) + "/events?after=" + state.seq + "&token=" + encodeURIComponent(state.token);
    var source = new EventSource(url);
    state.source = source;
    source.addEventListener("message", function (e) { try { show(JSON.parse(e.data)); } catch (err) { /* ignore a bad event */ } });
    source.addEventListener("resync", function () { load(); });
    source.addEventListener("typing", function (e) {
      var seconds = 30;
      try { seconds = Number(JSON.parse(e.data).seconds) || 30; } catch (err) { /* the default bound */ }
      showTyping(seconds);
    });
    source.addEventListener("open", function () { retryDelay = 3000; });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        state.source = null;
        setTimeout(listen, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 60000);
      }
    };
  }

  function forget() {
    if (state.source) { state.source.close(); state.source = null; }
    state.id = null; state.token = null; state.seq = 0; state.read = 0; state.seen = {};
    try { localStorage.removeItem(storeKey); } catch (e) { /* private mode */ }
  }

  function load() {
    if (!state.id) return Promise.resolve();
    return call("GET", api + "/" + encodeURIComponent(state.id) + "/messages?after=" + state.seq).then(function (data) {
      data.messages.forEach(show);
    }).catch(function (e) {
      if (/token|not_found/.test(e.code || "")) forget();
    });
  }

  // Sends a message: the first starts the conversation.
  function post(text) {
    send.disabled = true;
    fail("");
    var done;
    if (!state.id) {
      var first = { message: text };
      ["name", "email"].forEach(function (k) { var v = tag.getAttribute("data-" + k); if (v) first[k] = v; });
      var hash = tag.getAttribute("data-user-hash");
      if (hash) first.user_hash = hash;
      done = call("POST", api, first).then(function (data) {
        state.id = data.conversation_id;
        state.token = data.visitor_token;
        state.read = 0;
        save();
        data.messages.forEach(show);
        listen();
      });
    } else {
      done = call("POST", api + "/" + encodeURIComponent(state.id) + "/messages", { body: text }).then(show, function (err) {
        if (err.code !== "conversation_closed" && err.code !== "conversation_not_found") throw err;
        // That conversation is over: the next message starts a new one.
        forget();
        throw new Error(t.conversation_closed);
      });
    }
    return done.then(function () { return true; }).catch(function (err) { fail(err.message); return false; })
      .then(function (sent) { send.disabled = false; input.focus(); return sent; });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    post(text).then(function (sent) { if (sent) input.value = ""; });
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });

  function open(yes) {
    panel.hidden = !yes;
    // An inline display would override the hidden attribute: set both.
    panel.style.display = yes ? "flex" : "none";
    toggle.setAttribute("aria-expanded", String(yes));
    if (yes) { markRead(); input.focus(); load().then(function () { markRead(); listen(); }); } else { relabel(); toggle.focus(); }
  }
  toggle.addEventListener("click", function () { open(panel.hidden); });
  closer.addEventListener("click", function () { open(false); });
  // A conversation from an earlier visit: its replies since are counted on the launcher (one
  // read; the stream opens with the panel).
  if (state.id) load();
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") open(false); });
})();
