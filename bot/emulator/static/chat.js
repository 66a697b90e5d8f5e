// Web chat for the Telegram Bot API emulator. No dependencies, no network beyond this server.
// Bot text is rendered from (text, entities) into DOM nodes: text only ever becomes text
// nodes, and only Telegram's formatting kinds become elements, so nothing can inject markup.
"use strict";

(function () {
  const query = new URLSearchParams(location.search);
  const scope = {};
  if (query.get("chat_id")) scope.chat_id = Number(query.get("chat_id"));
  if (query.get("bot")) scope.bot = query.get("bot");

  const $ = (id) => document.getElementById(id);
  const list = $("messages");
  const rows = new Map(); // message_id -> row element
  const seenAnswers = new Set();
  let rev = 0;
  let epoch = null;
  let socket = null;
  let polling = false;
  let actionTimer = null;
  let botName = "Bot";

  function scopedQuery(extra) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...scope, ...extra })) params.set(k, String(v));
    return params.toString();
  }

  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify({ ...scope, ...body });
    }
    const response = await fetch(path, options);
    const data = await response.json();
    if (!data.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  // --- formatting --------------------------------------------------------------------------

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return ["http:", "https:", "tg:"].includes(parsed.protocol) ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function elementFor(entity, text) {
    const slice = text.slice(entity.offset, entity.offset + entity.length);
    const make = (tag, cls) => {
      const el = document.createElement(tag);
      if (cls) el.className = cls;
      return [el, el];
    };
    switch (entity.type) {
      case "bold": return make("b");
      case "italic": return make("i");
      case "underline": return make("u");
      case "strikethrough": return make("s");
      case "code": return make("code");
      case "blockquote": return make("blockquote");
      case "expandable_blockquote": return make("blockquote", "expandable");
      case "spoiler": {
        const [el] = make("span", "spoiler");
        el.title = "Spoiler";
        el.addEventListener("click", () => el.classList.add("revealed"));
        return [el, el];
      }
      case "pre": {
        const pre = document.createElement("pre");
        const code = document.createElement("code");
        if (entity.language) code.className = "language-" + entity.language;
        pre.append(code);
        return [pre, code];
      }
      case "text_link":
      case "url": {
        const href = safeUrl(entity.type === "url" ? slice : entity.url);
        if (!href) return make("span");
        const [a] = make("a");
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        return [a, a];
      }
      case "bot_command": {
        const [el] = make("span", "cmd");
        el.addEventListener("click", () => sendText(slice));
        return [el, el];
      }
      case "mention": case "hashtag": case "cashtag": return make("span", entity.type);
      default: return make("span");
    }
  }

  function formatted(text, entities) {
    const fragment = document.createDocumentFragment();
    const sorted = (entities || [])
      .filter((e) => e.length > 0)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    const root = { start: 0, end: text.length, children: [] };
    const stack = [root];
    for (const entity of sorted) {
      while (stack.length > 1 && stack[stack.length - 1].end <= entity.offset) stack.pop();
      const parent = stack[stack.length - 1];
      const start = Math.max(entity.offset, parent.start);
      const end = Math.min(entity.offset + entity.length, parent.end);
      if (end <= start) continue;
      const node = { start, end, entity, children: [] };
      parent.children.push(node);
      stack.push(node);
    }
    (function emit(node, into) {
      let cursor = node.start;
      for (const child of node.children) {
        if (child.start > cursor) into.append(text.slice(cursor, child.start));
        const [outer, inner] = elementFor(child.entity, text);
        into.append(outer);
        emit(child, inner);
        cursor = child.end;
      }
      if (cursor < node.end) into.append(text.slice(cursor, node.end));
    })(root, fragment);
    return fragment;
  }

  // --- rendering ---------------------------------------------------------------------------

  function clock(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fileSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function meta(m) {
    const span = document.createElement("span");
    span.className = "meta";
    span.textContent = (m.edited ? "edited " : "") + clock(m.date);
    if (m.from === "user") {
      const check = document.createElement("span");
      check.className = "check";
      check.textContent = "✓✓";
      span.append(check);
    }
    return span;
  }

  function keyboard(m) {
    const box = document.createElement("div");
    box.className = "keyboard";
    for (const row of m.keyboard) {
      const line = document.createElement("div");
      line.className = "kb-row";
      for (const button of row) {
        let el;
        const href = button.url ? safeUrl(button.url) : null;
        if (href) {
          el = document.createElement("a");
          el.href = href;
          el.target = "_blank";
          el.rel = "noopener noreferrer";
          el.className = "kb-btn link";
        } else {
          el = document.createElement("button");
          el.type = "button";
          el.className = "kb-btn";
          if (button.callback_data !== undefined) {
            el.dataset.callback = button.callback_data;
            el.addEventListener("click", () => press(m.message_id, button.callback_data, el));
          } else {
            el.disabled = true;
          }
        }
        el.textContent = button.text;
        el.title = button.text;
        line.append(el);
      }
      box.append(line);
    }
    return box;
  }

  function bubble(m) {
    const box = document.createElement("div");
    box.className = "bubble";
    const hasText = m.text !== null && m.text !== undefined;
    if (m.photo) {
      box.classList.add("media");
      const img = document.createElement("img");
      img.className = "photo";
      img.src = m.photo.url;
      img.alt = m.caption || "photo";
      if (m.photo.width && m.photo.height) {
        img.width = m.photo.width;
        img.height = m.photo.height;
      }
      box.append(img);
    }
    if (m.document) {
      box.classList.add("media");
      const doc = document.createElement("a");
      doc.className = "doc";
      doc.href = m.document.url;
      doc.target = "_blank";
      doc.download = m.document.file_name || "";
      const icon = document.createElement("div");
      icon.className = "doc-icon";
      const ext = (m.document.file_name || "").split(".").pop();
      icon.textContent = ext && ext.length <= 4 ? ext.toUpperCase() : "FILE";
      const info = document.createElement("div");
      const name = document.createElement("div");
      name.className = "doc-name";
      name.textContent = m.document.file_name || "document";
      const size = document.createElement("div");
      size.className = "doc-size";
      size.textContent = fileSize(m.document.file_size);
      info.append(name, size);
      doc.append(icon, info);
      box.append(doc);
      if (!hasText && !m.caption) {
        size.append(meta(m));
        return box;
      }
    }
    if (hasText) {
      const text = document.createElement("div");
      text.className = "text";
      text.append(formatted(m.text, m.entities));
      text.append(meta(m));
      box.append(text);
    } else if (m.caption) {
      const caption = document.createElement("div");
      caption.className = "caption text";
      caption.append(formatted(m.caption, m.caption_entities));
      caption.append(meta(m));
      box.append(caption);
    } else {
      box.classList.add("bare");
      box.append(meta(m));
    }
    return box;
  }

  function render(m) {
    const row = document.createElement("div");
    row.className = "row " + m.from;
    row.dataset.messageId = String(m.message_id);
    row.dataset.editCount = String(m.edit_count);
    row.append(bubble(m));
    if (m.keyboard && m.keyboard.length) {
      row.classList.add("has-kb");
      row.append(keyboard(m));
    }
    return row;
  }

  function upsert(m, initial) {
    const old = rows.get(m.message_id);
    for (const answer of m.callback_answers || []) {
      if (!answer.answered || seenAnswers.has(answer.id)) continue;
      seenAnswers.add(answer.id);
      if (!initial && answer.text) notify(answer.text, answer.show_alert);
    }
    if (m.deleted) {
      if (old) old.remove();
      rows.delete(m.message_id);
      return;
    }
    const row = render(m);
    if (old) {
      if (old.dataset.editCount !== row.dataset.editCount && !initial) row.classList.add("flash");
      old.replaceWith(row);
    } else {
      const after = [...rows.entries()].filter(([id]) => id > m.message_id).sort((a, b) => a[0] - b[0]);
      list.insertBefore(row, after.length ? after[0][1] : null);
    }
    rows.set(m.message_id, row);
  }

  function setAction(action) {
    const status = $("bot-status");
    clearTimeout(actionTimer);
    if (action) {
      const words = { typing: "typing…", upload_photo: "sending a photo…", upload_document: "sending a file…" };
      status.textContent = words[action] || action.replace(/_/g, " ") + "…";
      status.classList.add("typing");
      actionTimer = setTimeout(() => setAction(null), 5000);
    } else {
      status.textContent = "bot";
      status.classList.remove("typing");
    }
  }

  function apply(sync) {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const initial = sync.reset || epoch === null;
    if (sync.reset) {
      for (const row of rows.values()) row.remove();
      rows.clear();
    }
    let added = false;
    for (const m of sync.messages) {
      added = added || !rows.has(m.message_id);
      upsert(m, initial);
    }
    rev = sync.rev;
    epoch = sync.epoch;
    setAction(sync.chat_action);
    $("empty").hidden = rows.size > 0;
    if (initial || added || nearBottom) list.scrollTop = list.scrollHeight;
    document.body.dataset.rev = String(rev);
  }

  // --- user actions ------------------------------------------------------------------------

  let toastTimer = null;
  function notify(text, alert) {
    if (alert) {
      $("modal-title").textContent = botName;
      $("modal-text").textContent = text;
      $("modal").hidden = false;
      $("modal-ok").focus();
      return;
    }
    const toast = $("toast");
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, 2600);
  }

  async function press(messageId, data, el) {
    el.classList.add("pending");
    try {
      await api("POST", "/api/press", { message_id: messageId, callback_data: data });
    } catch (err) {
      el.classList.remove("pending");
      notify(String(err.message || err), false);
    }
  }

  async function sendText(text) {
    text = text.trim();
    if (!text) return;
    try {
      await api("POST", "/api/send", { text });
    } catch (err) {
      notify(String(err.message || err), false);
    }
  }

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("input");
    const text = input.value;
    input.value = "";
    $("commands").hidden = true;
    await sendText(text);
    input.focus();
  });

  $("modal-ok").addEventListener("click", () => { $("modal").hidden = true; });

  $("menu-btn").addEventListener("click", async () => {
    const box = $("commands");
    if (!box.hidden) { box.hidden = true; return; }
    const info = await loadInfo();
    box.replaceChildren();
    if (!info.commands.length) {
      const none = document.createElement("div");
      none.className = "c-none";
      none.textContent = "This bot has no commands set.";
      box.append(none);
    }
    for (const c of info.commands) {
      const item = document.createElement("button");
      item.type = "button";
      const name = document.createElement("span");
      name.className = "c-name";
      name.textContent = "/" + c.command;
      const desc = document.createElement("span");
      desc.className = "c-desc";
      desc.textContent = c.description;
      item.append(name, desc);
      item.addEventListener("click", () => { box.hidden = true; sendText("/" + c.command); });
      box.append(item);
    }
    box.hidden = false;
  });

  async function loadInfo() {
    const info = await api("GET", "/api/info?" + scopedQuery({}));
    botName = info.bot.first_name;
    $("bot-name").textContent = botName;
    $("bot-avatar").textContent = botName.slice(0, 1).toUpperCase();
    document.title = botName + " · Telegram emulator";
    return info;
  }

  // --- live updates: WebSocket, with long polling as the fallback --------------------------

  function setConn(kind) {
    const dot = $("conn");
    dot.className = "conn " + kind;
    dot.title = { live: "Live (WebSocket)", polling: "Live (polling)", "": "Disconnected" }[kind];
    document.body.dataset.conn = kind;
  }

  function connect() {
    if (!("WebSocket" in window)) return startPolling();
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + "/api/ws?" + scopedQuery({}));
    socket.onopen = () => { polling = false; setConn("live"); };
    socket.onmessage = (event) => apply(JSON.parse(event.data));
    socket.onclose = () => {
      socket = null;
      startPolling();
      setTimeout(connect, 4000);
    };
  }

  async function startPolling() {
    if (polling) return;
    polling = true;
    setConn("polling");
    while (polling && !socket) {
      try {
        const q = { since: rev, timeout: 20 };
        if (epoch !== null) q.epoch = epoch;
        apply(await api("GET", "/api/updates?" + scopedQuery(q)));
      } catch (_) {
        setConn("");
        await new Promise((resolve) => setTimeout(resolve, 1500));
      }
    }
    polling = false;
  }

  loadInfo().catch(() => {});
  if (query.get("transport") === "poll") startPolling(); // the fallback, on demand
  else connect();
})();
