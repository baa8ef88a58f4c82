/**
 * hubbub.js: a client for the hubbub WebSocket protocol, version 1 (PROTOCOL.md).
 * One ES module, no dependencies, no build step:
 *
 *     import { Hubbub } from "/hubbub.js";
 *     const hub = new Hubbub({ name: "ann" });
 *     hub.on("message", (m) => console.log(m.room, m.from.name, m.text));
 *     await hub.connect();
 *     await hub.join("lobby");
 *     await hub.say("lobby", "hello");
 *
 * What it owns: the socket, `ref`s (every command is a promise settled by its reply),
 * reconnecting with capped exponential backoff and jitter, and resuming: on every
 * reconnect each joined room is joined again with `since` (the last `seq` and `epoch`
 * it saw), so the application sees each room's messages once and in `seq` order.
 * What it does not own: anything on screen.
 *
 * Resuming, exactly:
 * - Every room the library saw `joined` for is tracked with its `epoch` and last `seq`
 *   until `left` (or `leave()`); `close()` keeps them, so a later `connect()` resumes.
 * - A `message` whose `seq` is not above the room's last seen one is a duplicate and is
 *   dropped. History in `joined` is delivered as `message` events (`history: true`),
 *   after the `joined` event and filtered the same way.
 * - A re-join answered `recovered: true` delivers just what was missed. Anything else
 *   (`recovered: false` or absent, another `epoch`) first emits `resync`: the app's view
 *   of the room is stale. The library then goes on from the new `joined`: with the same
 *   `epoch` it delivers the history after the last seen `seq` (new, though some before
 *   it are lost); with another `epoch` (the room started over) all of its history, as
 *   fresh. What was delivered before stays valid; the app may keep it or drop it.
 * - A server `resync` frame, or a gap in a room's `seq`, emits `resync` as well.
 *
 * Tokens (a server with authentication): `token` is sent as `?token=` on every connect
 * (a function is asked each time, so it can hand out a fresh one). `user` and
 * `expiresAt` come from `welcome`. `refresh(token)` replaces the connection's token;
 * with the `refreshToken` option (a function giving a new token) the library does so by
 * itself before the token expires (`refreshLeadMs` ahead), as the server closes a
 * connection whose token expired with 4001. A refused upgrade reaches a browser only as
 * a connection that failed before `welcome` (`close` with `wasOpen: false`);
 * `diagnose()` asks the server why.
 */

const DEFAULT_BACKOFF = {
  /** First reconnect delay, ms; doubled for each failed attempt. */
  baseMs: 500,
  /** The doubling stops here, ms (before jitter). */
  maxMs: 10000,
  /** Up to this fraction is added at random, so clients do not return in lockstep. */
  jitter: 0.2,
  /** A connection open this long resets the backoff, ms. */
  stableMs: 5000,
};

/** A refused or failed request: `code` is the server's error code, or one of the
 *  library's own: `not_connected`, `disconnected`, `timeout`, `too_long`, `closed`. */
export class HubbubError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   * @param {object} [frame] the server's `error` frame, when there is one
   */
  constructor(code, message, frame) {
    super(message || code);
    this.name = "HubbubError";
    this.code = code;
    this.frame = frame || null;
  }
}

/**
 * A connection to a hubbub server that comes back by itself.
 *
 * Events (an EventTarget: listen with `on(type, fn)`, which passes `event.detail`, or
 * `addEventListener`): every server frame by its `type` (`member_joined`, `member_left`,
 * `member_count`, `member_renamed`, `whisper`, `presence`, `rooms`, `left`, `echo`, ...),
 * the frame being the detail, and:
 * - `connecting` `{attempt}`; `open` (the `welcome` frame); `close` `{code, reason,
 *   wasOpen, willReconnect}`; `reconnecting` `{attempt, delayMs, at}` (`at`: Date.now()
 *   of the next try).
 * - `joined`: the frame plus `rejoin` (the room was joined before: a resume) and `replay`
 *   (the history messages that follow as `message` events).
 * - `message`: once per message, in `seq` order per room; `history: true` if from a
 *   `joined`.
 * - `resync` `{room, reason, epoch, seq, previous}`: the view of `room` is stale;
 *   `reason` is `epoch` (the room started over), `gap` (messages were lost) or `server`.
 * - `refreshed` `{expires_at}`: the connection holds a new token (`refresh()`, or the
 *   automatic refresh of the `refreshToken` option).
 * - `error`: an `error` frame no request was waiting for (or a re-join's, with `room`;
 *   or a failed automatic refresh, `bad_token` or `refresh_failed`).
 */
export class Hubbub extends EventTarget {
  /** Display name to connect with; follows the server's answer and your renames. */
  name;
  /** The `/ws` URL; defaults to this page's host. */
  url;
  /** `?token=`: a string, or a function returning one (or a promise of one), asked on
   *  every connect so a fresh token can be had after close code 4001. */
  token;
  /** A function returning a new token (or a promise of one) for `refresh` before the
   *  connection's token expires; null: no automatic refresh. */
  refreshToken;
  /** How long before the token's expiry the automatic refresh starts, ms (at most half
   *  of the time left). */
  refreshLeadMs;
  /** How long a request waits for its reply, ms. */
  requestTimeoutMs;
  /** Reconnect timing, see DEFAULT_BACKOFF. */
  backoff;

  #state = "idle";
  #ws = null;
  #welcome = null;
  #want = false;
  #attempt = 0;
  #retryTimer = null;
  #stableTimer = null;
  #refs = 0;
  #pending = new Map(); // ref -> {resolve, reject, timer}
  #waiting = []; // connect() callers: {resolve, reject}
  #rooms = new Map(); // room -> {epoch, seq}: what this client last saw
  #refreshTimer = null;
  #lastToken = null; // the token the current connection was opened with

  /**
   * @param {object} [options]
   * @param {string} [options.name]
   * @param {string} [options.url]
   * @param {string | (() => string | Promise<string>)} [options.token]
   * @param {() => string | Promise<string>} [options.refreshToken]
   * @param {number} [options.refreshLeadMs] default 60000
   * @param {number} [options.requestTimeoutMs] default 10000
   * @param {Partial<typeof DEFAULT_BACKOFF>} [options.backoff]
   */
  constructor(options = {}) {
    super();
    this.name = options.name || "";
    this.url = options.url || defaultUrl();
    this.token = options.token ?? null;
    this.refreshToken = options.refreshToken ?? null;
    this.refreshLeadMs = options.refreshLeadMs ?? 60000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  }

  /** `idle`, `connecting`, `open` (after `welcome`) or `reconnecting`. */
  get state() { return this.#state; }
  /** `{id, name}` of this connection, from `welcome`; null before. */
  get me() { return this.#welcome && { id: String(this.#welcome.id), name: this.#welcome.name }; }
  /** The server's `limits` from `welcome`. */
  get limits() { return (this.#welcome && this.#welcome.limits) || {}; }
  /** The user the server took this connection's token for (`welcome.user`); null
   *  without authentication or before `welcome`. */
  get user() { return (this.#welcome && this.#welcome.user != null) ? String(this.#welcome.user) : null; }
  /** When the connection's token expires (a Date, from `welcome` or the last
   *  `refreshed`); null without authentication. */
  get expiresAt() {
    const at = this.#welcome && this.#welcome.expires_at;
    return at ? new Date(at) : null;
  }

  /** The last `{epoch, seq}` seen in `room`, or null if the room is not tracked. */
  cursor(room) {
    const seen = this.#rooms.get(room);
    return seen ? { ...seen } : null;
  }

  /**
   * Listens for `type`; `fn` gets the event's detail.
   * @returns {() => void} stops listening
   */
  on(type, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /**
   * Connects now (also cutting a reconnect wait short) and keeps reconnecting until
   * `close()`. Resolves with `welcome`; rejects if `close()` comes first.
   * @returns {Promise<object>}
   */
  connect() {
    this.#want = true;
    if (this.#state === "open") return Promise.resolve(this.#welcome);
    const opened = new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
    if (this.#state !== "connecting") {
      this.#attempt = 0;
      this.#open();
    }
    return opened;
  }

  /** Closes the connection and stops reconnecting. Joined rooms stay tracked: a later
   *  `connect()` resumes them. */
  close() {
    this.#want = false;
    const wasOpen = this.#state === "open";
    const had = this.#state !== "idle";
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000);
    this.#dropConnection(new HubbubError("closed", "closed by the client"));
    this.#waiting.splice(0).forEach((w) => w.reject(new HubbubError("closed", "closed by the client")));
    this.#state = "idle";
    if (had) this.#emit("close", { code: 1000, reason: "", wasOpen, willReconnect: false });
  }

  /**
   * Sends `frame` with a fresh `ref`; resolves with the first frame carrying that ref
   * (rejects with a HubbubError on `error`, a timeout or a lost connection). A rejected
   * `say` may still have been said: it then comes as a message after the resume.
   * @param {object} frame
   * @param {number} [timeoutMs]
   * @returns {Promise<object>}
   */
  request(frame, timeoutMs = this.requestTimeoutMs) {
    if (this.#state !== "open") {
      return Promise.reject(new HubbubError("not_connected", "not connected to the server"));
    }
    const ref = "h" + (++this.#refs).toString(36);
    const text = JSON.stringify({ ...frame, ref });
    const max = this.limits.max_message_bytes;
    if (max && new TextEncoder().encode(text).length > max) {
      return Promise.reject(new HubbubError("too_long", `larger than the server's limit of ${max} bytes`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new HubbubError("timeout", `no answer to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(ref, { resolve, reject, timer });
      this.#ws.send(text);
    });
  }

  /** Joins `room` (with `since` if it was joined before). Resolves with the `joined`
   *  event's detail once it and the history's `message` events were dispatched. */
  join(room) {
    const seen = this.#rooms.get(room);
    const frame = { type: "join", room };
    if (seen && seen.epoch != null) frame.since = { seq: seen.seq, epoch: seen.epoch };
    return this.request(frame);
  }

  /** Leaves `room` and stops tracking it; while not connected, just stops tracking. */
  leave(room) {
    if (this.#state !== "open") {
      this.#rooms.delete(room);
      return Promise.resolve({ type: "left", room });
    }
    return this.request({ type: "leave", room }).catch((err) => {
      if (err.code !== "not_in_room") throw err;
      this.#rooms.delete(room);
      return { type: "left", room };
    });
  }

  /** Says `text` in `room`; resolves with your own `message`. */
  say(room, text) { return this.request({ type: "say", room, text }); }
  /** Whispers `text` to the member with id `to`; resolves with your copy. */
  whisper(to, text) { return this.request({ type: "whisper", to, text }); }
  /** Changes your display name; resolves with the first `member_renamed`. */
  rename(name) { return this.request({ type: "rename", name }); }
  /** One page of `room`'s members: `{after, limit}`; resolves with `presence`. */
  who(room, page = {}) { return this.request({ type: "who", room, ...page }); }
  /** One page of the server's rooms: `{after, limit}`; resolves with `rooms`. */
  rooms(page = {}) { return this.request({ type: "rooms", ...page }); }
  /** Resolves with the server's `echo` of `text`. */
  echo(text) { return this.request({ type: "echo", text }); }

  /** Replaces the connection's token with `token` (for the same user); resolves with
   *  `refreshed` (`expires_at`), rejects with `bad_token`. A string `token` option is
   *  replaced too, so reconnects use the new token. */
  refresh(token) {
    return this.request({ type: "refresh", token }).then((refreshed) => {
      if (typeof this.token !== "function") this.token = token;
      this.#lastToken = token;
      return refreshed;
    });
  }

  /** Why the server would refuse this connection's upgrade, asked over plain HTTP (a
   *  browser cannot read a refused upgrade's answer): resolves with `{status, error,
   *  message}`, `status` 0 when the server cannot be reached. A 401 is the token's
   *  fault; any other status says the token was not the problem. */
  async diagnose() {
    const query = this.#lastToken ? "?token=" + encodeURIComponent(this.#lastToken) : "";
    const url = this.url.replace(/^ws/, "http").split("?")[0] + query;
    try {
      const response = await fetch(url, { cache: "no-store" });
      let body = {};
      try { body = await response.json(); } catch (err) { /* not JSON */ }
      return { status: response.status, error: body.error || null, message: body.message || null };
    } catch (err) {
      return { status: 0, error: "unreachable", message: String((err && err.message) || err) };
    }
  }

  // ------------------------------------------------------------------ connection

  async #open() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#state = "connecting";
    this.#emit("connecting", { attempt: this.#attempt });
    let ws;
    try {
      const token = typeof this.token === "function" ? await this.token() : this.token;
      if (!this.#want || this.#state !== "connecting" || this.#ws) return;
      this.#lastToken = token || null;
      const query = new URLSearchParams();
      if (this.name) query.set("name", this.name);
      if (token) query.set("token", token);
      const search = query.toString();
      ws = new WebSocket(search ? this.url + (this.url.includes("?") ? "&" : "?") + search : this.url);
    } catch (err) {
      this.#lost(0, String((err && err.message) || err));
      return;
    }
    this.#ws = ws;
    ws.onmessage = (event) => { if (this.#ws === ws) this.#receive(event.data); };
    ws.onclose = (event) => { if (this.#ws === ws) this.#lost(event.code, event.reason); };
  }

  #lost(code, reason) {
    const wasOpen = this.#state === "open";
    this.#ws = null;
    this.#dropConnection(new HubbubError("disconnected", "the connection closed"));
    const willReconnect = this.#want;
    this.#emit("close", { code, reason, wasOpen, willReconnect });
    if (!willReconnect) {
      this.#state = "idle";
      return;
    }
    const { baseMs, maxMs, jitter } = this.backoff;
    const delayMs = Math.round(Math.min(maxMs, baseMs * 2 ** this.#attempt) * (1 + Math.random() * jitter));
    this.#attempt += 1;
    this.#state = "reconnecting";
    this.#retryTimer = setTimeout(() => this.#open(), delayMs);
    this.#emit("reconnecting", { attempt: this.#attempt, delayMs, at: Date.now() + delayMs });
  }

  /** Forgets the connection's state: its pending requests fail with `err`. */
  #dropConnection(err) {
    clearTimeout(this.#stableTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    this.#stableTimer = this.#retryTimer = this.#refreshTimer = null;
    this.#welcome = null;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    pending.forEach((p) => { clearTimeout(p.timer); p.reject(err); });
  }

  // ------------------------------------------------------------------ frames

  #receive(data) {
    let frame;
    try { frame = JSON.parse(data); } catch (err) { frame = null; }
    if (!frame || typeof frame !== "object") {
      this.#emit("error", { code: "bad_frame", message: "the server sent a frame that is not a JSON object" });
      return;
    }
    const ref = frame.ref != null ? String(frame.ref) : null;
    const pending = ref !== null ? this.#pending.get(ref) : undefined;
    if (pending) {
      this.#pending.delete(ref);
      clearTimeout(pending.timer);
    }
    if (frame.type === "error" && pending) {
      pending.reject(new HubbubError(String(frame.code), frame.message, frame));
      return;
    }
    const detail = this.#handle(frame);
    if (pending) pending.resolve(detail);
  }

  /** Dispatches `frame`'s events; returns what a request waiting for it resolves with. */
  #handle(frame) {
    switch (frame.type) {
      case "welcome": return this.#welcomed(frame);
      case "joined": return this.#joined(frame);
      case "message": return this.#message(frame);
      case "resync": {
        const room = String(frame.room);
        const previous = this.cursor(room);
        if (previous) this.#rooms.set(room, { epoch: frame.epoch, seq: frame.seq });
        this.#emit("resync", { room, reason: "server", epoch: frame.epoch, seq: frame.seq, previous });
        return frame;
      }
      case "left":
        this.#rooms.delete(String(frame.room));
        break;
      case "refreshed":
        if (this.#welcome) this.#welcome.expires_at = frame.expires_at;
        this.#scheduleRefresh();
        break;
      case "member_renamed":
        if (this.#welcome && frame.member && String(frame.member.id) === String(this.#welcome.id)) {
          this.#welcome.name = this.name = String(frame.member.name);
        }
        break;
    }
    this.#emit(String(frame.type), frame);
    return frame;
  }

  #welcomed(frame) {
    this.#welcome = frame;
    this.#state = "open";
    if (this.name) this.name = String(frame.name);
    this.#stableTimer = setTimeout(() => { this.#attempt = 0; }, this.backoff.stableMs);
    this.#scheduleRefresh();
    this.#waiting.splice(0).forEach((w) => w.resolve(frame));
    this.#emit("open", frame);
    for (const room of this.#rooms.keys()) {
      this.join(room).catch((err) => {
        if (err.code !== "disconnected") this.#emit("error", { code: err.code, message: err.message, room });
      });
    }
    return frame;
  }

  #joined(frame) {
    const room = String(frame.room);
    const previous = this.cursor(room);
    let last = 0;
    let stale = null;
    if (previous && frame.epoch !== previous.epoch) {
      stale = "epoch";
    } else if (previous) {
      last = previous.seq;
      if (frame.recovered !== true) stale = "gap";
    }
    const replay = [];
    for (const message of Array.isArray(frame.history) ? frame.history : []) {
      if (typeof message.seq === "number") {
        if (message.seq <= last) continue;
        last = message.seq;
      }
      replay.push({ ...message, history: true });
    }
    this.#rooms.set(room, { epoch: frame.epoch, seq: typeof frame.seq === "number" ? frame.seq : last });
    if (stale) this.#emit("resync", { room, reason: stale, epoch: frame.epoch, seq: frame.seq, previous });
    const detail = { ...frame, rejoin: !!previous, replay };
    this.#emit("joined", detail);
    replay.forEach((message) => this.#emit("message", message));
    return detail;
  }

  #message(frame) {
    const room = String(frame.room);
    const seen = this.#rooms.get(room);
    if (seen && typeof frame.seq === "number") {
      if (frame.seq <= seen.seq) return frame; // delivered already
      if (frame.seq > seen.seq + 1) {
        this.#emit("resync", { room, reason: "gap", epoch: seen.epoch, seq: frame.seq - 1, previous: { ...seen } });
      }
      seen.seq = frame.seq;
    }
    this.#emit("message", frame);
    return frame;
  }

  /** With `refreshToken`, arranges the next automatic `refresh`: `refreshLeadMs` before
   *  the token expires, or at half the time left if that is sooner. */
  #scheduleRefresh() {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const expires = this.expiresAt;
    if (!this.refreshToken || !expires || this.#state !== "open") return;
    const left = expires.getTime() - Date.now();
    const lead = Math.min(this.refreshLeadMs, left / 2);
    this.#refreshTimer = setTimeout(() => this.#autoRefresh(), Math.max(0, left - lead));
  }

  async #autoRefresh() {
    this.#refreshTimer = null;
    try {
      await this.refresh(await this.refreshToken());
    } catch (err) {
      if (this.#state !== "open") return;
      this.#emit("error", { code: (err && err.code) || "refresh_failed", message: "could not refresh the token: " + ((err && err.message) || err) });
      // Try again while there is time: the server closes with 4001 once it is gone.
      const expires = this.expiresAt;
      const left = expires ? expires.getTime() - Date.now() : 0;
      if (left > 2000) this.#refreshTimer = setTimeout(() => this.#autoRefresh(), Math.min(5000, left / 2));
    }
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** `/ws` on the host this page came from. */
function defaultUrl() {
  const { protocol, host } = globalThis.location;
  return (protocol === "https:" ? "wss://" : "ws://") + host + "/ws";
}
