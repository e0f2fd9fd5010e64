// The Allmine web chat page: plain JavaScript, no framework, no build step.
//
// It is a client of the public API like any other:
// - history: GET .../chat/messages?limit=&before= (newest page first, then
//   older pages on scroll-back, by the page's `nextCursor`);
// - live: an EventSource on .../chat/events?access_token=&after=; the
//   browser resumes by itself with Last-Event-ID when the connection drops;
// - send: POST .../chat/messages with an Idempotency-Key, so that a retry
//   after a network failure never posts twice.
//
// The stream id and the token come from the URL fragment
// (#stream=<id>&token=<jwt>), which the browser never sends to a server.
// Message text is only ever set with textContent: a message cannot inject
// markup (and the edge's Content-Security-Policy forbids inline scripts).
"use strict";

(() => {
  const PAGE_SIZE = 30;
  const MAX_RECONNECT_DELAY_MS = 30000;
  // Within this many pixels of the bottom, new messages keep the view
  // pinned to the bottom; further up, the reader is reading history.
  const STICKY_BOTTOM_PX = 48;

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    join: $("join"),
    chat: $("chat"),
    scroller: $("scroller"),
    older: $("older"),
    start: $("start"),
    messages: $("messages"),
    jump: $("jump"),
    composer: $("composer"),
    notice: $("notice"),
    content: $("content"),
    send: $("send"),
    count: $("count"),
  };

  const apiMeta = document.querySelector('meta[name="allmine-chat-api"]');
  const API = ((apiMeta && apiMeta.content) || "").replace(/\/+$/, "");

  const state = {
    stream: "",
    token: "",
    me: null, // the token's claims, for display only (the server checks the token)
    rendered: new Map(), // message id -> <li>
    deleted: new Set(), // ids deleted before or while their history page loaded
    olderCursor: null, // `before` of the next older page; null: the oldest was reached
    loadingOlder: false,
    source: null,
    lastEventId: null,
    reconnectDelay: 1000,
    chatState: "open",
    blockedUntil: 0, // ms timestamp: sending is refused until then (slow mode, burst limit)
    countdown: null,
    pendingKey: null, // the Idempotency-Key of the text in the box, reused on retries
    pendingText: null,
  };

  // ---------------------------------------------------------------- start

  function readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    return { stream: params.get("stream") || "", token: params.get("token") || "" };
  }

  function start() {
    const { stream, token } = readFragment();
    if (!stream || !token) {
      showJoinForm(stream);
      return;
    }
    state.stream = stream;
    state.token = token;
    state.me = claimsOf(token);
    ui.join.hidden = true;
    ui.chat.hidden = false;
    document.title = `Live chat · ${stream}`;
    loadNewest().then(openLive, (error) => {
      setStatus("error", describeFailure(error, "load the chat"));
    });
  }

  function showJoinForm(stream) {
    ui.join.hidden = false;
    ui.chat.hidden = true;
    $("join-stream").value = stream;
    ui.join.addEventListener("submit", (event) => {
      event.preventDefault();
      const params = new URLSearchParams({
        stream: $("join-stream").value.trim(),
        token: $("join-token").value.trim(),
      });
      location.hash = params.toString();
      location.reload();
    });
    $("join-stream").focus();
  }

  // A JWT's payload, decoded without verification: only to know which
  // messages are the viewer's own and whether a ban is about them.
  function claimsOf(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(
        Array.from(atob(payload), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
      );
      return JSON.parse(json);
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------------ API

  function streamPath(suffix) {
    return `${API}/api/v1/live-stream/${encodeURIComponent(state.stream)}/chat/${suffix}`;
  }

  // A refused request: the envelope's errors, the status, the
  // machine-readable reason when the edge sends one, and Retry-After.
  class Refusal extends Error {
    constructor(status, errors, reason, retryAfterSeconds) {
      super(errors.join(": "));
      this.status = status;
      this.errors = errors;
      this.reason = reason;
      this.retryAfterSeconds = retryAfterSeconds;
    }
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    headers.set("Authorization", `Bearer ${state.token}`);
    const response = await fetch(path, { ...options, headers, credentials: "omit", cache: "no-store" });
    if (response.ok) {
      return response.status === 204 ? null : response.json();
    }
    let errors = [];
    try {
      const body = await response.json();
      if (body && Array.isArray(body.errors)) errors = body.errors.map(String);
    } catch {
      // Not the envelope (a proxy's page, say): the status speaks for it.
    }
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new Refusal(
      response.status,
      errors,
      response.headers.get("Allmine-Error-Reason"),
      Number.isFinite(retryAfter) ? retryAfter : null,
    );
  }

  // ------------------------------------------------------------- history

  // The newest page; resolves to the cursor the live stream starts after
  // (null when the page cannot tell).
  async function loadNewest() {
    setStatus("connecting", "Loading the chat…");
    const page = await api(`${streamPath("messages")}?limit=${PAGE_SIZE}`);
    const items = page.items || [];
    state.olderCursor = page.nextCursor || null;
    // Newest first in the page; shown oldest first. Busy while it fills, so
    // that screen readers do not read a whole page of history aloud.
    ui.messages.setAttribute("aria-busy", "true");
    for (const message of items.slice().reverse()) render(message, { announce: false });
    ui.messages.setAttribute("aria-busy", "false");
    updateOlderControls();
    scrollToBottom();
    return newestCursorOf(page);
  }

  // Where the live stream should start: a page-level `newestCursor`, else
  // the newest item's own `cursor`, else unknown.
  function newestCursorOf(page) {
    if (page.newestCursor) return page.newestCursor;
    const first = (page.items || [])[0];
    return (first && first.cursor) || null;
  }

  async function loadOlder() {
    if (state.loadingOlder || !state.olderCursor) return;
    state.loadingOlder = true;
    ui.older.disabled = true;
    ui.older.textContent = "Loading older messages…";
    try {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE), before: state.olderCursor });
      const page = await api(`${streamPath("messages")}?${query}`);
      // Keep what the reader is looking at in place while rows go above it.
      const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
      ui.messages.setAttribute("aria-busy", "true");
      for (const message of page.items || []) render(message, { announce: false });
      ui.messages.setAttribute("aria-busy", "false");
      ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
      state.olderCursor = page.nextCursor || null;
    } catch (error) {
      showNotice(describeFailure(error, "load older messages"));
    } finally {
      state.loadingOlder = false;
      ui.older.disabled = false;
      ui.older.textContent = "Load older messages";
      updateOlderControls();
    }
  }

  function updateOlderControls() {
    ui.older.hidden = !state.olderCursor;
    ui.start.hidden = Boolean(state.olderCursor);
  }

  // ----------------------------------------------------------------- live

  function openLive(afterCursor) {
    const query = new URLSearchParams({ access_token: state.token });
    // A reconnecting EventSource sends Last-Event-ID, which the edge prefers
    // over `after`; `after` only places the first connection.
    const after = state.lastEventId || afterCursor;
    if (after) query.set("after", after);
    const source = new EventSource(`${streamPath("events")}?${query}`);
    state.source = source;

    source.addEventListener("open", () => {
      state.reconnectDelay = 1000;
      setStatus("live", "Live");
      // Without a cursor (none from the history page, no event seen yet) the
      // stream starts "from now": read the newest page again once it is
      // open, so that nothing sent in between is missed (duplicates are
      // dropped by id). Once an event was seen, the browser resumes by
      // itself with Last-Event-ID.
      if (!afterCursor && !state.lastEventId) {
        api(`${streamPath("messages")}?limit=${PAGE_SIZE}`).then(
          (page) => (page.items || []).slice().reverse().forEach((m) => render(m, { announce: false })),
          () => {},
        );
      }
    });
    source.addEventListener("message", (event) => {
      remember(event);
      render(JSON.parse(event.data), { announce: true });
    });
    source.addEventListener("messageDeleted", (event) => {
      remember(event);
      removeMessage(JSON.parse(event.data).messageId);
    });
    source.addEventListener("userBanned", (event) => {
      remember(event);
      const ban = JSON.parse(event.data);
      if (state.me && ban.userId === state.me.sub) {
        showNotice(banSentence(ban.expiresAt));
      }
    });
    source.addEventListener("chatStateChanged", (event) => {
      remember(event);
      applyChatState(JSON.parse(event.data).state);
    });
    source.addEventListener("gap", (event) => {
      // The edge ends the stream after a gap; the browser reconnects with
      // the gap's id as Last-Event-ID and misses nothing.
      remember(event);
    });
    source.addEventListener("error", (event) => {
      if (event.data) {
        // The server's own `error` event: the stream failed and ends.
        let errors = [];
        try {
          errors = JSON.parse(event.data).errors || [];
        } catch {
          // keep the generic sentence
        }
        setStatus("reconnecting", `The live chat stopped (${errors.join(": ") || "error"}); reconnecting…`);
        return;
      }
      if (source.readyState === EventSource.CONNECTING) {
        setStatus("reconnecting", "Connection lost; reconnecting…");
        return;
      }
      // CLOSED: the edge refused the stream (an expired token, say) or the
      // browser gave up. Try again later from the last event seen.
      source.close();
      const delay = state.reconnectDelay;
      state.reconnectDelay = Math.min(delay * 2, MAX_RECONNECT_DELAY_MS);
      setStatus("offline", `Offline; trying again in ${Math.round(delay / 1000)} s…`);
      setTimeout(() => diagnoseAndReopen(afterCursor), delay);
    });
  }

  function remember(event) {
    if (event.lastEventId) state.lastEventId = event.lastEventId;
  }

  // Before reopening a refused stream, one history call says why it was
  // refused (EventSource cannot read a refusal's status or body).
  async function diagnoseAndReopen(afterCursor) {
    try {
      await api(`${streamPath("messages")}?limit=1`);
      openLive(afterCursor);
    } catch (error) {
      if (error instanceof Refusal && (error.status === 401 || error.status === 404)) {
        setStatus("error", describeFailure(error, "follow the chat"));
        return;
      }
      setStatus("offline", describeFailure(error, "follow the chat"));
      setTimeout(() => diagnoseAndReopen(afterCursor), state.reconnectDelay);
    }
  }

  // ------------------------------------------------------------ messages

  function displayName(sender) {
    if (!sender) return "Someone";
    const full = [sender.name, sender.surname].filter(Boolean).join(" ");
    return full || sender.username || "Someone";
  }

  // The smallest variant at least 40 px wide, else the original.
  function photoUrl(sender) {
    const photo = sender && sender.profilePhoto;
    if (!photo) return null;
    const sizes = Object.keys(photo.variants || {})
      .map(Number)
      .filter((size) => Number.isFinite(size))
      .sort((a, b) => a - b);
    const size = sizes.find((s) => s >= 40);
    return (size !== undefined ? photo.variants[String(size)] : null) || photo.url || null;
  }

  function initials(name) {
    return name
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((part) => part[0].toUpperCase())
      .join("");
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  // The order key: creation time, then id (the server's order).
  function keyOf(message) {
    return `${message.createdAt || ""}|${message._id}`;
  }

  function render(message, { announce }) {
    if (!message || !message._id) return;
    if (state.rendered.has(message._id) || state.deleted.has(message._id)) return;
    const wasAtBottom = isAtBottom();
    const item = buildItem(message);
    insertInOrder(item);
    state.rendered.set(message._id, item);
    if (announce) {
      if (wasAtBottom || isMine(message)) scrollToBottom();
      else ui.jump.hidden = false;
    }
  }

  function isMine(message) {
    return Boolean(state.me && message.sender && message.sender._id === state.me.sub);
  }

  function buildItem(message) {
    const name = displayName(message.sender);
    const item = document.createElement("li");
    item.className = isMine(message) ? "message mine" : "message";
    item.id = `m-${message._id}`;
    item.dataset.id = message._id;
    item.dataset.key = keyOf(message);

    const url = photoUrl(message.sender);
    if (url) {
      const img = document.createElement("img");
      img.className = "avatar";
      img.src = url;
      img.alt = ""; // the name is next to it
      img.width = 36;
      img.height = 36;
      img.loading = "lazy";
      img.decoding = "async";
      img.referrerPolicy = "no-referrer";
      item.append(img);
    } else {
      const badge = document.createElement("span");
      badge.className = "avatar initials";
      badge.setAttribute("aria-hidden", "true");
      badge.textContent = initials(name) || "?";
      item.append(badge);
    }

    const body = document.createElement("div");
    body.className = "body";
    const meta = document.createElement("p");
    meta.className = "meta";
    const who = document.createElement("span");
    who.className = "name";
    who.textContent = name;
    meta.append(who);
    if (message.sender && message.sender.username) {
      const handle = document.createElement("span");
      handle.className = "handle";
      handle.textContent = `@${message.sender.username}`;
      meta.append(" ", handle);
    }
    if (message.createdAt) {
      const created = new Date(message.createdAt);
      const time = document.createElement("time");
      time.dateTime = message.createdAt;
      time.title = dateTimeFormat.format(created);
      time.textContent = timeFormat.format(created);
      meta.append(" ", time);
    }
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.content;
    body.append(meta, text);
    item.append(body);
    if (isMine(message)) {
      // A sender may delete their own messages (moderators use their tools).
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "delete";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", `Delete your message “${message.content.slice(0, 40)}”`);
      remove.addEventListener("click", () => deleteMessage(message._id, remove));
      item.append(remove);
    }
    return item;
  }

  async function deleteMessage(id, button) {
    button.disabled = true;
    try {
      await api(streamPath(`messages/${encodeURIComponent(id)}`), { method: "DELETE" });
      removeMessage(id);
      ui.content.focus();
    } catch (error) {
      button.disabled = false;
      showNotice(describeFailure(error, "delete the message"));
    }
  }

  // Live messages arrive in order and go last: the loop usually stops at
  // once. History pages go above, and a message seen twice is dropped
  // before this.
  function insertInOrder(item) {
    const key = item.dataset.key;
    let after = ui.messages.lastElementChild;
    while (after && after.dataset.key > key) after = after.previousElementSibling;
    if (after) after.after(item);
    else ui.messages.prepend(item);
  }

  function removeMessage(id) {
    state.deleted.add(id);
    const item = state.rendered.get(id);
    if (!item) return;
    state.rendered.delete(id);
    item.remove();
  }

  // --------------------------------------------------------------- scroll

  function isAtBottom() {
    const s = ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= STICKY_BOTTOM_PX;
  }

  function scrollToBottom() {
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
    ui.jump.hidden = true;
  }

  ui.scroller.addEventListener(
    "scroll",
    () => {
      if (ui.scroller.scrollTop < 40) loadOlder();
      if (isAtBottom()) ui.jump.hidden = true;
    },
    { passive: true },
  );
  ui.older.addEventListener("click", loadOlder);
  ui.jump.addEventListener("click", () => {
    scrollToBottom();
    ui.content.focus();
  });

  // ----------------------------------------------------------------- send

  // A random UUID for Idempotency-Key; crypto.randomUUID needs a secure
  // context (https or localhost), getRandomValues does not.
  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  async function send() {
    const content = ui.content.value.trim();
    if (!content || ui.send.disabled) return;
    // The same text retried (after a network failure) keeps its key, so
    // that the server replays the first send instead of posting twice.
    if (state.pendingText !== content) {
      state.pendingText = content;
      state.pendingKey = newKey();
    }
    ui.send.disabled = true;
    try {
      const message = await api(streamPath("messages"), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": state.pendingKey },
        body: JSON.stringify({ content }),
      });
      state.pendingText = null;
      state.pendingKey = null;
      ui.content.value = "";
      updateCount();
      hideNotice();
      render(message, { announce: false });
      scrollToBottom();
    } catch (error) {
      showRefusal(error);
    } finally {
      updateSendButton();
      ui.content.focus();
    }
  }

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  ui.content.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  ui.content.addEventListener("input", updateCount);

  function updateCount() {
    ui.count.textContent = String([...ui.content.value].length);
  }

  function updateSendButton() {
    const closed = state.chatState !== "open";
    ui.send.disabled = closed || Date.now() < state.blockedUntil;
  }

  // ------------------------------------------------------------ refusals

  // The reasons this page words on its own; any other (a status-level
  // reason such as TOO_MANY_REQUESTS, given when chat-service named none)
  // leaves the English text to tell.
  const SPECIFIC_REASONS = new Set(["SLOW_MODE", "BURST_LIMIT", "BANNED", "CHAT_CLOSED", "STREAM_ENDED"]);

  function reasonOf(error) {
    if (!(error instanceof Refusal)) return "NETWORK";
    if (SPECIFIC_REASONS.has(error.reason)) return error.reason;
    // No specific Allmine-Error-Reason (an older edge or chat-service): the
    // reason is only in the English text.
    const text = error.errors.join(" ").toLowerCase();
    if (error.status === 429 && text.includes("slow mode")) return "SLOW_MODE";
    if (error.status === 429) return "BURST_LIMIT";
    if (error.status === 403 && text.includes("banned")) return "BANNED";
    if (error.status === 409 && text.includes("ended")) return "STREAM_ENDED";
    if (error.status === 409 && text.includes("closed")) return "CHAT_CLOSED";
    return null;
  }

  // "until 2026-01-15T10:30:00.000Z" or "permanently", as the ban refusal
  // words it; or the `banned_until` a newer edge may send.
  function banUntilOf(error) {
    const match = error.errors.join(" ").match(/until (\d{4}-\d\d-\d\dT[\d:.]+Z)/);
    return match ? match[1] : null;
  }

  function banSentence(until) {
    if (!until) return "You are banned from this chat.";
    const at = new Date(until);
    const sameDay = at.toDateString() === new Date().toDateString();
    return `You are timed out of this chat until ${sameDay ? timeFormat.format(at) : dateTimeFormat.format(at)}.`;
  }

  function showRefusal(error) {
    const reason = reasonOf(error);
    switch (reason) {
      case "SLOW_MODE":
        return startCountdown(error.retryAfterSeconds, "Slow mode is on. You can send again in");
      case "BURST_LIMIT":
        return startCountdown(error.retryAfterSeconds, "You are sending too fast. You can send again in");
      case "BANNED":
        return showNotice(banSentence(banUntilOf(error)));
      case "CHAT_CLOSED":
        applyChatState("closed");
        return showNotice("The chat is closed right now.");
      case "STREAM_ENDED":
        applyChatState("ended");
        return showNotice("This stream has ended, so its chat is closed.");
      default:
        return showNotice(describeFailure(error, "send your message"));
    }
  }

  function describeFailure(error, what) {
    if (!(error instanceof Refusal)) return `Could not ${what}: the chat is unreachable. Check your connection and try again.`;
    const detail = error.errors.slice(1).join(" ");
    switch (error.status) {
      case 400:
        return `Could not ${what}: ${detail || "the request was not valid"}.`;
      case 401:
        return `Could not ${what}: your sign-in has expired or is not valid. Open the chat with a new link.`;
      case 403:
        return `Could not ${what}: you are not allowed to. ${detail}`.trim();
      case 404:
        return `Could not ${what}: this stream's chat does not exist.`;
      case 413:
        return `Could not ${what}: the message is too long.`;
      case 429:
      case 503:
      case 504:
        return `Could not ${what}: the chat is busy. Try again in a moment.`;
      default:
        return `Could not ${what} (error ${error.status}). ${detail}`.trim();
    }
  }

  function startCountdown(seconds, sentence) {
    const wait = Math.max(1, seconds || 1);
    state.blockedUntil = Date.now() + wait * 1000;
    clearInterval(state.countdown);
    // Announced once (role=alert); the ticking number is not re-announced.
    ui.notice.textContent = `${sentence} `;
    const remaining = document.createElement("span");
    remaining.className = "countdown";
    remaining.setAttribute("aria-live", "off");
    ui.notice.append(remaining, " s.");
    ui.notice.dataset.kind = "countdown";
    ui.notice.hidden = false;
    const tick = () => {
      const left = Math.ceil((state.blockedUntil - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(state.countdown);
        state.countdown = null;
        hideNotice();
        updateSendButton();
        return;
      }
      remaining.textContent = String(left);
    };
    tick();
    state.countdown = setInterval(tick, 250);
    updateSendButton();
  }

  function showNotice(text) {
    clearInterval(state.countdown);
    state.countdown = null;
    ui.notice.textContent = text;
    ui.notice.dataset.kind = "message";
    ui.notice.hidden = false;
  }

  function hideNotice() {
    ui.notice.hidden = true;
    ui.notice.textContent = "";
    delete ui.notice.dataset.kind;
  }

  function applyChatState(chatState) {
    if (!chatState) return;
    state.chatState = chatState;
    if (chatState === "open") {
      if (ui.notice.dataset.kind === "message") hideNotice();
    } else if (chatState === "closed") {
      showNotice("The chat is closed right now.");
    } else if (chatState === "ended") {
      showNotice("This stream has ended, so its chat is closed.");
    }
    updateSendButton();
  }

  function setStatus(kind, text) {
    ui.status.dataset.state = kind;
    ui.status.textContent = text;
  }

  window.addEventListener("hashchange", () => location.reload());
  start();
})();
