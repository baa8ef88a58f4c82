/* hubbub browser page. Plain JS, no dependencies; the protocol (the connection, refs,
 * reconnecting, resuming rooms) is hubbub.js's, this file only draws the page.
 *
 * Security rule for this file: every piece of data that came from the network or
 * from the user is put into the DOM with textContent / createTextNode only.
 * innerHTML is never used.
 */
import { Hubbub } from "./hubbub.js";

(function () {
  // ---------------------------------------------------------------- constants

  var NAME_KEY = "hubbub.name";
  var MAX_LOG_LINES = 1000;        // per room
  var WHO_PAGE = 100;              // members one "show more" asks for (the server allows 1..1000)
  var ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
  var REASON_TEXT = {
    leave: "left",
    disconnect: "disconnected",
    timeout: "timed out",
    slow: "was dropped (slow)"
  };
  var RESYNC_TEXT = {
    epoch: " started over on the server: the messages above are from before.",
    gap: ": some messages missed meanwhile could not be recovered.",
    server: ": the server lost its history, some messages may be missing."
  };

  // ---------------------------------------------------------------- elements

  function $(id) { return document.getElementById(id); }

  var el = {
    connectForm: $("connect-form"),
    name: $("name"),
    tokenRow: $("token-row"),
    token: $("token"),
    tokenStatus: $("token-status"),
    connect: $("connect"),
    disconnect: $("disconnect"),
    connState: $("conn-state"),
    identity: $("identity"),
    errorBar: $("error-bar"),
    error: $("error"),
    errorDismiss: $("error-dismiss"),
    joinForm: $("join-form"),
    roomInput: $("room-input"),
    join: $("join"),
    rooms: $("rooms"),
    roomsEmpty: $("rooms-empty"),
    leave: $("leave"),
    roomTitle: $("room-title"),
    roomMeta: $("room-meta"),
    log: $("log"),
    whisperTarget: $("whisper-target"),
    whisperLabel: $("whisper-label"),
    whisperCancel: $("whisper-cancel"),
    composer: $("composer"),
    messageInput: $("message-input"),
    send: $("send"),
    echoForm: $("echo-form"),
    echoInput: $("echo-input"),
    echoSend: $("echo-send"),
    echoResult: $("echo-result"),
    renameForm: $("rename-form"),
    renameInput: $("rename-input"),
    rename: $("rename"),
    members: $("members"),
    memberCount: $("member-count"),
    membersMore: $("members-more"),
    membersMoreText: $("members-more-text"),
    showMore: $("members-show-more"),
    roomsRefresh: $("rooms-refresh"),
    serverRooms: $("server-rooms")
  };

  // ---------------------------------------------------------------- state

  var hub = new Hubbub();

  var state = {
    status: "disconnected",   // disconnected | connecting | connected | reconnecting | refused
    me: null,                 // {id, name, user} from welcome
    token: "",                // the token to connect with ("" for none)
    tokenBad: false,          // the server refused `token`: get another before reconnecting
    refreshUrl: null,         // where a fresh token can be had (#refresh_url=...), if anywhere
    diagnosis: 0,             // counts failed connects, so a late answer about an old one is dropped
    name: "",                 // name to connect with
    countdownTimer: null,
    reconnectAt: 0,
    rooms: new Map(),         // room name -> Room
    roomOrder: [],            // joined order for the tab list
    active: null,             // active room name
    lobby: [],                // log lines shown when no room is active
    whisperTo: null,          // {id, name}
    echoToken: null,          // the echo whose answer the echo box waits for
    pendingRename: null       // {prevName, ...} until confirmed or refused
  };

  function newRoom(name) {
    return {
      name: name,
      members: new Map(),   // id -> member; in a big room only the ones listed so far
      memberCount: 0,       // everyone in the room (joined.member_count, then events)
      membersAfter: null,   // `after` for the next `who` page; null starts from the first
      moreToken: null,      // the `who` page being loaded, if any
      lines: [],            // log entries (see addLine)
      unread: 0,
      joined: false         // true while the server says we're in it
    };
  }

  // ---------------------------------------------------------------- helpers

  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }

  function parseTime(at) {
    var d = at ? new Date(at) : new Date();
    return isNaN(d.getTime()) ? new Date() : d;
  }

  function fmtTime(d) {
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function memberName(m) {
    if (!m) return "?";
    if (typeof m === "string") return lookupName(m) || m;
    return m.name != null ? String(m.name) : String(m.id);
  }

  function memberId(m) {
    if (!m) return null;
    return typeof m === "string" ? m : (m.id != null ? String(m.id) : null);
  }

  function lookupName(id) {
    var found = null;
    state.rooms.forEach(function (room) {
      if (!found && room.members.has(id)) found = room.members.get(id).name;
    });
    return found;
  }

  function isMe(idOrMember) {
    var id = typeof idOrMember === "string" ? idOrMember : memberId(idOrMember);
    return !!(state.me && id && id === state.me.id);
  }

  var countFormat = window.Intl && Intl.NumberFormat ? new Intl.NumberFormat("en") : null;

  // A count with a thousands separator, as the page's English text wants: 7900 -> "7,900".
  function fmtCount(n) {
    return countFormat ? countFormat.format(n) : String(n);
  }

  function h(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  // ---------------------------------------------------------------- errors

  var errorFadeTimer = null;

  function showError(code, message) {
    var text = (code ? code + ": " : "") + (message || "");
    el.error.textContent = text;
    el.error.setAttribute("data-code", code || "");
    el.errorBar.hidden = false;
    el.errorBar.classList.remove("stale");
    // restart the flash animation
    void el.errorBar.offsetWidth;
    el.errorBar.classList.add("flash");
    if (errorFadeTimer) clearTimeout(errorFadeTimer);
    errorFadeTimer = setTimeout(function () {
      el.errorBar.classList.remove("flash");
      el.errorBar.classList.add("stale");
    }, 8000);
  }

  el.errorDismiss.addEventListener("click", function () {
    el.errorBar.hidden = true;
  });

  // ---------------------------------------------------------------- connection state UI

  function setStatus(status, text) {
    state.status = status;
    el.connState.setAttribute("data-state", status);
    el.connState.textContent = text || status;
    updateControls();
  }

  function updateControls() {
    var connected = state.status === "connected";
    var idle = state.status === "disconnected";
    el.connect.textContent = state.status === "reconnecting" ? "Reconnect now" : "Connect";
    var stopped = idle || state.status === "refused";
    el.connect.disabled = !(stopped || state.status === "reconnecting");
    el.disconnect.disabled = stopped;
    el.name.disabled = !stopped && state.status !== "reconnecting";
    el.token.disabled = el.name.disabled;

    var canChat = connected && (!!state.active || !!state.whisperTo);
    el.messageInput.disabled = !canChat;
    el.send.disabled = !canChat;
    el.messageInput.placeholder = !connected
      ? "Not connected"
      : state.whisperTo
        ? "Whisper to " + state.whisperTo.name
        : state.active
          ? "Message #" + state.active
          : "Join a room to chat";

    el.echoInput.disabled = !connected;
    el.echoSend.disabled = !connected;
    el.renameInput.disabled = !connected;
    el.rename.disabled = !connected;
    el.roomsRefresh.disabled = !connected;
    el.leave.disabled = !(connected && state.active);
  }

  function showIdentity() {
    if (state.me) {
      el.identity.hidden = false;
      el.identity.textContent = "you are " + state.me.name + (state.me.user ? " (user " + state.me.user + ")" : "");
      el.identity.title = "connection id " + state.me.id;
      el.identity.setAttribute("data-user", state.me.user || "");
    } else {
      el.identity.hidden = true;
      el.identity.textContent = "";
      el.identity.removeAttribute("data-user");
    }
    showTokenStatus();
  }

  // When the connection's token expires, and whether the page will refresh it.
  function showTokenStatus() {
    var expires = state.me ? hub.expiresAt : null;
    if (!expires) {
      el.tokenStatus.hidden = true;
      el.tokenStatus.textContent = "";
      el.tokenStatus.removeAttribute("data-expires-at");
      return;
    }
    el.tokenStatus.hidden = false;
    el.tokenStatus.textContent = "token expires at " + fmtTime(expires) +
      (state.refreshUrl ? ", refreshed before then" : "");
    el.tokenStatus.title = expires.toLocaleString();
    el.tokenStatus.setAttribute("data-expires-at", expires.toISOString());
  }

  // A refused or failed request, shown in the error bar. A lost connection says so in
  // the log already, and what it interrupted is redone on the way back.
  function failed(err) {
    if (err && (err.code === "disconnected" || err.code === "closed")) return;
    showError(err && err.code, err && err.message);
  }

  // ---------------------------------------------------------------- connection

  function clearCountdown() {
    if (state.countdownTimer) { clearInterval(state.countdownTimer); state.countdownTimer = null; }
  }

  function connect() {
    hub.name = state.name;
    hub.token = tokenForConnect;
    hub.refreshToken = state.refreshUrl ? fetchToken : null;
    hub.connect().catch(function () { /* disconnected before it opened */ });
  }

  // ---------------------------------------------------------------- tokens

  // What hubbub.js connects with, asked on every connect: the token given, or with a
  // refresh_url a fresh one when there is none yet or the server refused the last.
  function tokenForConnect() {
    if (state.refreshUrl && (!state.token || state.tokenBad)) {
      return fetchToken().then(function (token) {
        state.token = token;
        el.token.value = token;
        return token;
      });
    }
    return state.token || null;
  }

  // A new token from refresh_url: its body is the token, or JSON with a `token` field.
  function fetchToken() {
    return fetch(state.refreshUrl, { cache: "no-store", credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("refresh_url answered " + response.status);
      return response.text();
    }).then(function (body) {
      var text = body.trim();
      if (text.charAt(0) === "{") {
        try { text = String(JSON.parse(text).token || ""); } catch (e) { text = ""; }
      }
      if (!text) throw new Error("refresh_url gave no token");
      state.tokenBad = false;
      return text;
    });
  }

  // A browser sees a refused upgrade only as a connection that failed before welcome.
  // Ask the server over plain HTTP what it makes of our token: a 401 means refused (say
  // so, and stop unless a new token can be had); anything else was not the token.
  function diagnoseFailedConnect() {
    var attempt = ++state.diagnosis;
    hub.diagnose().then(function (answer) {
      if (attempt !== state.diagnosis || state.status === "connected" || state.status === "disconnected") return;
      if (answer.status !== 401) return;
      state.tokenBad = true;
      el.tokenRow.hidden = false;
      var reason = answer.message ? " (" + answer.message + ")" : "";
      if (state.refreshUrl) {
        showError("unauthorized", "refused: token invalid or expired; getting a new one" + reason);
        return;
      }
      hub.close();
      setStatus("refused", state.token ? "refused: token invalid or expired" : "refused: a token is needed");
      showError("unauthorized", (state.token ? "refused: token invalid or expired" : "refused: this server needs a token") + reason);
      el.token.focus();
    });
  }

  function disconnect() {
    hub.close();
  }

  hub.on("connecting", function () {
    clearCountdown();
    setStatus("connecting");
  });

  hub.on("reconnecting", function (retry) {
    clearCountdown();
    state.reconnectAt = retry.at;
    var tick = function () {
      var left = Math.max(0, state.reconnectAt - Date.now());
      setStatus("reconnecting", "reconnecting in " + Math.ceil(left / 1000) + "s");
    };
    tick();
    state.countdownTimer = setInterval(tick, 250);
  });

  hub.on("close", function (ev) {
    clearCountdown();
    // The server closes with 4001 when the token expired: a new one is needed.
    if (ev.code === 4001) state.tokenBad = true;
    if (!ev.wasOpen && ev.willReconnect) {
      if (ev.code === 0 && ev.reason) showError("cannot_connect", ev.reason);
      else diagnoseFailedConnect();
    }
    state.rooms.forEach(function (room) { room.joined = false; room.moreToken = null; });
    if (!ev.willReconnect) {
      // The user's own Disconnect.
      if (ev.wasOpen) broadcastSystem("Disconnected.", "conn");
      state.me = null;
      showIdentity();
      setStatus("disconnected");
    } else {
      if (ev.wasOpen) {
        var why = "Connection lost" + (ev.code ? " (code " + ev.code + (ev.reason ? ", " + ev.reason : "") + ")" : "") + ".";
        broadcastSystem(why, "conn");
      }
      if (ev.code && ev.code !== 1000 && ev.code !== 1001 && ev.code !== 1005 && ev.code !== 1006) {
        showError("closed_" + ev.code, closeText(ev.code) + (ev.reason ? " (" + ev.reason + ")" : ""));
      }
    }
    renderRooms();
    renderMembers();
  });

  function closeText(code) {
    switch (code) {
      case 1008: return "Closed by the server: policy violation.";
      case 1009: return "Closed by the server: message too big.";
      case 1011: return "Closed by the server: internal error.";
      case 1013: return "Closed by the server: try again later (server busy or connection too slow).";
      case 4001: return "Closed by the server: the token expired.";
      default: return "Connection closed with code " + code + ".";
    }
  }

  // ---------------------------------------------------------------- incoming events

  hub.on("open", onWelcome);
  hub.on("joined", onJoined);
  hub.on("left", onLeft);
  hub.on("resync", onResync);
  hub.on("member_joined", onMemberJoined);
  hub.on("member_left", onMemberLeft);
  hub.on("member_renamed", onMemberRenamed);
  hub.on("member_count", onMemberCount);
  hub.on("message", onMessage);
  hub.on("whisper", onWhisper);
  hub.on("error", function (err) { showError(err.code, err.message); });
  hub.on("refreshed", function () {
    showTokenStatus();
    broadcastSystem("Token refreshed: it now expires at " + fmtTime(hub.expiresAt) + ".", "conn");
  });

  function onWelcome() {
    state.me = hub.me;
    state.me.user = hub.user;
    state.tokenBad = false;
    if (state.status === "refused" || el.error.getAttribute("data-code") === "unauthorized") el.errorBar.hidden = true;
    // hubbub.js reconnects with the name the server settled on (trimmed etc.), unless
    // none was given: a generated guest-<n> name is not sticky.
    state.name = hub.name;
    showIdentity();
    setStatus("connected");
    // Connecting from the keyboard disables the focused Connect button; move focus on
    // to where the next step happens instead of letting it fall to <body>.
    if (document.activeElement === document.body || document.activeElement === el.connect) {
      el.roomInput.focus();
    }
    // hubbub.js joins every room we were in again by itself.
    refreshServerRooms();
  }

  function refreshServerRooms() {
    if (state.status === "connected") hub.rooms().then(onRooms, failed);
  }

  function showEcho(reply, ms) {
    el.echoResult.textContent = "";
    el.echoResult.appendChild(h("span", "echo-text", reply.text != null ? reply.text : ""));
    if (ms != null) {
      ms = Math.round(ms);
      el.echoResult.appendChild(document.createTextNode(" "));
      el.echoResult.appendChild(h("span", "echo-rtt", ms + " ms"));
      el.echoResult.setAttribute("data-rtt", String(ms));
    } else {
      el.echoResult.removeAttribute("data-rtt");
    }
  }

  function ensureRoom(name) {
    var room = state.rooms.get(name);
    if (!room) {
      room = newRoom(name);
      state.rooms.set(name, room);
      state.roomOrder.push(name);
    }
    return room;
  }

  // Members and count from `joined`; its history follows as `message` events.
  function onJoined(msg) {
    var name = String(msg.room);
    var room = ensureRoom(name);
    room.joined = true;

    room.members = new Map();
    var listed = [];
    (msg.members || []).forEach(function (m) {
      if (m && m.id != null) {
        room.members.set(String(m.id), normMember(m));
        listed.push(String(m.id));
      }
    });
    room.memberCount = typeof msg.member_count === "number" ? msg.member_count : room.members.size;
    room.membersAfter = pagingStart(listed);
    room.moreToken = null;

    if (msg.rejoin) {
      var missed = msg.replay.length;
      addSystem(room, "Rejoined #" + name + (missed ? " (" + missed + " missed message" + (missed === 1 ? "" : "s") + ")" : "") + ".", "conn");
    }
    if (!state.active || !state.rooms.has(state.active)) {
      setActive(name);
    } else {
      renderRooms();
      if (state.active === name) renderMembers();
    }
  }

  // The room's history was lost, or the room started over: say so where it happened.
  function onResync(ev) {
    var room = state.rooms.get(String(ev.room));
    if (!room) return;
    addSystem(room, "#" + room.name + (RESYNC_TEXT[ev.reason] || RESYNC_TEXT.gap), "resync");
  }

  // Where "show more" starts after `joined`. Its list is the first members in id order,
  // except that the joiner (us) is put last when it was not among them: paging after our
  // own id would skip everyone between, so page after the member before us (seeing
  // ourselves again is harmless, pages merge by id).
  function pagingStart(listedIds) {
    var n = listedIds.length;
    if (n && isMe(listedIds[n - 1])) n -= 1;
    return n ? listedIds[n - 1] : null;
  }

  function normMember(m) {
    return { id: String(m.id), name: m.name != null ? String(m.name) : String(m.id), joined_at: m.joined_at || null };
  }

  function onLeft(msg) {
    removeRoom(String(msg.room));
  }

  function removeRoom(name) {
    if (!state.rooms.has(name)) return;
    state.rooms.delete(name);
    var idx = state.roomOrder.indexOf(name);
    state.roomOrder.splice(idx, 1);
    if (state.active === name) {
      var next = state.roomOrder[Math.min(idx, state.roomOrder.length - 1)] || null;
      setActive(next);
    } else {
      renderRooms();
    }
    refreshServerRooms();
  }

  function onMemberJoined(msg) {
    var room = state.rooms.get(String(msg.room));
    if (!room || !msg.member) return;
    var m = normMember(msg.member);
    room.members.set(m.id, m);
    room.memberCount += 1;
    addSystem(room, m.name + " joined.", "join");
    if (state.active === room.name) renderMembers();
    updateServerRoomCount(room.name, room.memberCount);
  }

  // Keeps the "All rooms" count of a room we are in current without asking the server.
  function updateServerRoomCount(name, count) {
    var buttons = el.serverRooms.querySelectorAll("button.server-room");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getAttribute("data-room") === name) {
        var badge = buttons[i].querySelector(".count");
        if (badge) badge.textContent = String(count);
      }
    }
  }

  function onMemberLeft(msg) {
    var room = state.rooms.get(String(msg.room));
    if (!room || !msg.member) return;
    var id = memberId(msg.member);
    var known = room.members.get(id);
    var name = known ? known.name : memberName(msg.member);
    room.members.delete(id);
    room.memberCount = Math.max(0, room.memberCount - 1);
    var verb = REASON_TEXT[msg.reason] || "left";
    addSystem(room, name + " " + verb + ".", "leave reason-" + (msg.reason || "leave"));
    if (state.active === room.name) renderMembers();
    updateServerRoomCount(room.name, room.memberCount);
  }

  // A big room says how many are in it instead of who came and went: no log line.
  function onMemberCount(msg) {
    var room = state.rooms.get(String(msg.room));
    if (!room || typeof msg.count !== "number") return;
    room.memberCount = msg.count;
    if (state.active === room.name) renderMembers();
    updateServerRoomCount(room.name, room.memberCount);
  }

  function onMemberRenamed(msg) {
    var room = state.rooms.get(String(msg.room));
    if (!msg.member) return;
    var m = normMember(msg.member);
    if (isMe(m.id)) {
      state.pendingRename = null;
      applyMyName(m.name);
    }
    if (state.whisperTo && state.whisperTo.id === m.id) {
      state.whisperTo.name = m.name;
      renderWhisperTarget();
    }
    if (!room) return;
    var prev = room.members.get(m.id);
    if (prev && prev.joined_at && !m.joined_at) m.joined_at = prev.joined_at;
    room.members.set(m.id, m);
    var oldName = msg.old_name != null ? String(msg.old_name) : (prev ? prev.name : "?");
    addSystem(room, (isMe(m.id) ? "You are now known as " : oldName + " is now known as ") + m.name + ".", "rename");
    if (state.active === room.name) renderMembers();
  }

  // hubbub.js delivers each message once and in order, history (`joined`) included.
  function onMessage(msg) {
    var room = state.rooms.get(String(msg.room));
    if (!room) return;
    addMessageLine(room, msg, !!msg.history);
  }

  function onWhisper(msg) {
    var target = state.active ? state.rooms.get(state.active) : null;
    var entry = {
      kind: "whisper",
      at: parseTime(msg.at),
      fromName: memberName(msg.from),
      fromId: memberId(msg.from),
      toName: memberName(msg.to),
      toId: memberId(msg.to),
      own: isMe(memberId(msg.from)),
      text: msg.text != null ? String(msg.text) : ""
    };
    if (target) {
      pushLine(target, entry);
    } else {
      pushLobby(entry);
    }
  }

  // One page of a room's members, the answer to "show more": added to the list.
  function addMembersPage(room, msg) {
    if (state.rooms.get(room.name) !== room) return;
    var added = [];
    (msg.members || []).forEach(function (m) {
      if (!m || m.id == null) return;
      var member = normMember(m);
      if (!room.members.has(member.id)) added.push(member.id);
      room.members.set(member.id, member);
    });
    if (typeof msg.member_count === "number") room.memberCount = msg.member_count;
    // After the last page the next "show more" starts over, picking up whoever joined
    // since (a big room sends no member_joined).
    room.membersAfter = msg.next != null ? String(msg.next) : null;
    updateServerRoomCount(room.name, room.memberCount);
    if (state.active !== room.name) return;
    var hadFocus = document.activeElement === el.showMore;
    renderMembers();
    if (hadFocus && el.membersMore.hidden) focusMember(added);
  }

  // Keeps the keyboard focus in the member list when "show more" goes away under it: on
  // the first member just added, or the last one listed.
  function focusMember(ids) {
    var buttons = el.members.querySelectorAll("button.member-btn");
    var target = null;
    for (var i = 0; i < buttons.length && !target; i++) {
      if (ids.indexOf(buttons[i].getAttribute("data-id")) >= 0) target = buttons[i];
    }
    target = target || buttons[buttons.length - 1];
    if (target) target.focus();
  }

  function onRooms(msg) {
    var list = Array.isArray(msg.rooms) ? msg.rooms.slice() : [];
    list.sort(function (a, b) { return String(a.name).localeCompare(String(b.name)); });
    el.serverRooms.textContent = "";
    if (!list.length) {
      el.serverRooms.appendChild(h("li", "muted small", "No rooms on the server."));
      return;
    }
    list.forEach(function (r) {
      var li = h("li");
      var btn = h("button", "btn link server-room");
      btn.type = "button";
      btn.setAttribute("data-room", String(r.name));
      btn.appendChild(h("span", "server-room-name", "#" + r.name));
      btn.appendChild(h("span", "count", r.members));
      btn.title = state.rooms.has(String(r.name)) ? "Open #" + r.name : "Join #" + r.name;
      li.appendChild(btn);
      el.serverRooms.appendChild(li);
    });
  }

  function applyMyName(name) {
    if (!state.me) return;
    state.me.name = name;
    state.name = name;
    storageSet(NAME_KEY, name);
    el.name.value = name;
    showIdentity();
    if (state.active) renderMembers();
  }

  // ---------------------------------------------------------------- log model

  function addMessageLine(room, m, fromHistory) {
    var entry = {
      kind: "msg",
      at: parseTime(m.at),
      fromName: memberName(m.from),
      fromId: memberId(m.from),
      text: m.text != null ? String(m.text) : "",
      seq: m.seq,
      own: isMe(memberId(m.from)),
      history: !!fromHistory
    };
    pushLine(room, entry, fromHistory);
  }

  function addSystem(room, text, variant) {
    pushLine(room, { kind: "system", at: new Date(), text: text, variant: variant || "" }, true);
  }

  function broadcastSystem(text, variant) {
    state.rooms.forEach(function (room) { addSystem(room, text, variant); });
    if (!state.rooms.size) pushLobby({ kind: "system", at: new Date(), text: text, variant: variant || "" });
  }

  function pushLine(room, entry, quiet) {
    room.lines.push(entry);
    var trimmed = false;
    if (room.lines.length > MAX_LOG_LINES) {
      room.lines.splice(0, room.lines.length - MAX_LOG_LINES);
      trimmed = true;
    }
    if (state.active === room.name) {
      if (trimmed) renderLog(); else appendLineNode(entry);
    } else if (!quiet && entry.kind !== "system") {
      room.unread += 1;
      renderRooms();
    }
  }

  function pushLobby(entry) {
    state.lobby.push(entry);
    if (state.lobby.length > MAX_LOG_LINES) state.lobby.shift();
    if (!state.active) appendLineNode(entry);
  }

  // ---------------------------------------------------------------- rendering

  function lineNode(entry) {
    var row = h("div", "line");
    var time = h("time", "time", fmtTime(entry.at));
    time.dateTime = entry.at.toISOString();
    time.title = entry.at.toLocaleString();

    if (entry.kind === "system") {
      row.classList.add("system");
      if (entry.variant) entry.variant.split(" ").forEach(function (v) { if (v) row.classList.add("system-" + v); });
      row.appendChild(time);
      row.appendChild(h("span", "text", entry.text));
      return row;
    }

    if (entry.kind === "whisper") {
      row.classList.add("whisper");
      if (entry.own) row.classList.add("own");
      row.appendChild(time);
      var who = h("span", "who");
      who.appendChild(h("span", "from", entry.fromName));
      who.appendChild(h("span", "arrow", " \u2192 "));
      who.appendChild(h("span", "to", entry.toName));
      row.appendChild(who);
      row.appendChild(h("span", "text", entry.text));
      return row;
    }

    row.classList.add("msg");
    if (entry.own) row.classList.add("own");
    if (entry.fromId === "server") row.classList.add("from-server");
    if (entry.history) row.classList.add("history");
    if (entry.seq != null) row.setAttribute("data-seq", String(entry.seq));
    row.appendChild(time);
    var from = h("span", "from", entry.fromName);
    if (entry.fromId) from.setAttribute("data-id", entry.fromId);
    row.appendChild(from);
    row.appendChild(h("span", "text", entry.text));
    return row;
  }

  function nearBottom() {
    return el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 60;
  }

  function appendLineNode(entry) {
    var stick = nearBottom();
    var placeholder = el.log.querySelector(".placeholder");
    if (placeholder) placeholder.remove();
    el.log.appendChild(lineNode(entry));
    if (stick || entry.own) el.log.scrollTop = el.log.scrollHeight;
  }

  function renderLog() {
    el.log.textContent = "";
    var lines = state.active && state.rooms.has(state.active) ? state.rooms.get(state.active).lines : state.lobby;
    if (!lines.length) {
      el.log.appendChild(h("p", "placeholder muted",
        state.active ? "No messages yet." : "Connect, then join a room to start chatting."));
    }
    var frag = document.createDocumentFragment();
    lines.forEach(function (entry) { frag.appendChild(lineNode(entry)); });
    el.log.appendChild(frag);
    el.log.scrollTop = el.log.scrollHeight;
  }

  function renderRooms() {
    var focusedRoom = document.activeElement && document.activeElement.classList &&
      document.activeElement.classList.contains("room-tab") ? document.activeElement.getAttribute("data-room") : null;
    el.rooms.textContent = "";
    state.roomOrder.forEach(function (name) {
      var room = state.rooms.get(name);
      var li = h("li");
      var btn = h("button", "room-tab");
      btn.type = "button";
      btn.setAttribute("data-room", name);
      var active = name === state.active;
      if (active) {
        btn.classList.add("active");
        btn.setAttribute("aria-current", "true");
      }
      if (!room.joined) btn.classList.add("offline");
      btn.appendChild(h("span", "room-name", "#" + name));
      if (room.unread > 0 && !active) {
        var badge = h("span", "unread", room.unread > 99 ? "99+" : room.unread);
        badge.setAttribute("aria-label", room.unread + " unread");
        btn.appendChild(badge);
      }
      li.appendChild(btn);
      el.rooms.appendChild(li);
      if (focusedRoom === name) btn.focus();
    });
    el.roomsEmpty.hidden = state.roomOrder.length > 0;
    updateControls();
  }

  function renderMembers() {
    el.members.textContent = "";
    var room = state.active ? state.rooms.get(state.active) : null;
    if (!room) {
      el.memberCount.textContent = "";
      el.roomMeta.textContent = "";
      el.membersMore.hidden = true;
      return;
    }
    var list = Array.from(room.members.values());
    list.sort(function (a, b) {
      if (isMe(a.id) !== isMe(b.id)) return isMe(a.id) ? -1 : 1;
      return a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || (a.id < b.id ? -1 : 1);
    });
    list.forEach(function (m) {
      var li = h("li", "member");
      li.setAttribute("data-id", m.id);
      if (isMe(m.id)) {
        li.classList.add("self");
        var self = h("span", "member-self");
        self.appendChild(h("span", "member-name", m.name));
        self.appendChild(h("span", "you", "you"));
        li.appendChild(self);
      } else {
        var btn = h("button", "member-btn");
        btn.type = "button";
        btn.setAttribute("data-id", m.id);
        btn.setAttribute("aria-label", "Whisper to " + m.name);
        btn.appendChild(h("span", "member-name", m.name));
        if (state.whisperTo && state.whisperTo.id === m.id) {
          li.classList.add("targeted");
          btn.setAttribute("aria-pressed", "true");
        }
        li.appendChild(btn);
      }
      if (m.joined_at) li.title = "joined " + parseTime(m.joined_at).toLocaleString();
      el.members.appendChild(li);
    });
    var count = Math.max(room.memberCount, list.length);
    el.memberCount.textContent = fmtCount(count);
    el.roomMeta.textContent = room.joined
      ? fmtCount(count) + " member" + (count === 1 ? "" : "s")
      : "not connected";
    renderMoreMembers(room, count - list.length);
  }

  // "and N more" under a partial list, with "show more" while we can ask for them.
  function renderMoreMembers(room, unlisted) {
    el.membersMore.hidden = unlisted <= 0;
    el.membersMoreText.textContent = "and " + fmtCount(unlisted) + " more";
    el.showMore.hidden = !(room.joined && state.status === "connected");
    var loading = !!room.moreToken;
    el.showMore.textContent = loading ? "loading\u2026" : "show more";
    if (loading) el.showMore.setAttribute("aria-busy", "true");
    else el.showMore.removeAttribute("aria-busy");
  }

  function setActive(name) {
    state.active = name && state.rooms.has(name) ? name : null;
    if (state.active) state.rooms.get(state.active).unread = 0;
    el.roomTitle.textContent = state.active ? "#" + state.active : "No room selected";
    renderRooms();
    renderLog();
    renderMembers();
    updateControls();
  }

  // ---------------------------------------------------------------- whisper mode

  function setWhisper(target) {
    state.whisperTo = target;
    renderWhisperTarget();
    renderMembers();
    updateControls();
  }

  function renderWhisperTarget() {
    if (state.whisperTo) {
      el.whisperLabel.textContent = "";
      el.whisperLabel.appendChild(document.createTextNode("Whisper to "));
      el.whisperLabel.appendChild(h("strong", "whisper-name", state.whisperTo.name));
      el.whisperTarget.setAttribute("data-id", state.whisperTo.id);
      el.whisperTarget.hidden = false;
      el.composer.classList.add("whispering");
    } else {
      el.whisperLabel.textContent = "";
      el.whisperTarget.removeAttribute("data-id");
      el.whisperTarget.hidden = true;
      el.composer.classList.remove("whispering");
    }
  }

  // ---------------------------------------------------------------- user actions

  el.connectForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = el.name.value.trim();
    if (name.length > 32) {
      showError("invalid_name", "Display names are 1 to 32 characters.");
      return;
    }
    state.name = name;
    if (name) storageSet(NAME_KEY, name);
    var token = el.token.value.trim();
    if (token !== state.token) state.tokenBad = false;
    state.token = token;
    connect();
  });

  el.disconnect.addEventListener("click", function () {
    disconnect();
    el.connect.focus();
  });

  el.joinForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var room = el.roomInput.value.trim().replace(/^#/, "");
    if (!room) { el.roomInput.focus(); return; }
    if (!ROOM_RE.test(room)) {
      showError("invalid_room", "Room names are 1 to 64 letters, digits, '-', '_' or '.'.");
      return;
    }
    el.roomInput.value = "";
    joinRoom(room);
  });

  function joinRoom(room) {
    var existing = state.rooms.get(room);
    if (existing && existing.joined) {
      setActive(room);
      return;
    }
    if (state.status !== "connected") {
      showError("not_connected", "Connect first, then join a room.");
      return;
    }
    hub.join(room).then(function (joined) {
      var r = state.rooms.get(room);
      if (!r) return;
      // After the history, which came as `message` events before this.
      if (!joined.rejoin) addSystem(r, "You joined #" + room + ".", "join");
      setActive(room);
      refreshServerRooms();
    }, failed);
  }

  el.rooms.addEventListener("click", function (ev) {
    var btn = ev.target.closest(".room-tab");
    if (!btn) return;
    setActive(btn.getAttribute("data-room"));
  });

  // Not connected, hubbub.js just forgets the room (it is not joined again).
  el.leave.addEventListener("click", function () {
    var room = state.active;
    if (!room) return;
    hub.leave(room).then(function () { removeRoom(room); }, failed);
  });

  el.serverRooms.addEventListener("click", function (ev) {
    var btn = ev.target.closest(".server-room");
    if (!btn) return;
    joinRoom(btn.getAttribute("data-room"));
  });

  el.roomsRefresh.addEventListener("click", refreshServerRooms);

  el.members.addEventListener("click", function (ev) {
    var li = ev.target.closest(".member");
    if (!li || li.classList.contains("self")) return;
    var id = li.getAttribute("data-id");
    var room = state.active ? state.rooms.get(state.active) : null;
    var m = room && room.members.get(id);
    if (!m) return;
    if (state.whisperTo && state.whisperTo.id === id) {
      setWhisper(null);
    } else {
      setWhisper({ id: m.id, name: m.name });
    }
    el.messageInput.focus();
  });

  el.showMore.addEventListener("click", function () {
    var room = state.active ? state.rooms.get(state.active) : null;
    if (!room || room.moreToken || state.status !== "connected") return;
    var token = {};
    var page = { limit: WHO_PAGE };
    if (room.membersAfter != null) page.after = room.membersAfter;
    room.moreToken = token;
    renderMembers();
    hub.who(room.name, page).then(function (presence) {
      if (room.moreToken !== token) return;
      room.moreToken = null;
      addMembersPage(room, presence);
    }, function (err) {
      if (room.moreToken === token) {
        room.moreToken = null;
        if (state.active === room.name) renderMembers();
      }
      failed(err);
    });
  });

  el.whisperCancel.addEventListener("click", function () {
    setWhisper(null);
    el.messageInput.focus();
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && state.whisperTo) {
      setWhisper(null);
      if (!el.messageInput.disabled) el.messageInput.focus();
    }
  });

  el.composer.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = el.messageInput.value;
    if (!text.trim()) return;
    var sent = null;
    if (state.whisperTo) {
      sent = hub.whisper(state.whisperTo.id, text);
    } else if (state.active) {
      sent = hub.say(state.active, text);
    }
    if (sent) {
      el.messageInput.value = "";
      sent.catch(function (err) {
        // Refused before it left (too long, not connected): give the text back.
        if ((err.code === "too_long" || err.code === "not_connected") && !el.messageInput.value) {
          el.messageInput.value = text;
        }
        failed(err);
      });
    }
    el.messageInput.focus();
  });

  el.echoForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (state.status !== "connected") return;
    var token = {};
    var t0 = performance.now();
    state.echoToken = token;
    el.echoResult.textContent = "waiting\u2026";
    el.echoResult.removeAttribute("data-rtt");
    hub.echo(el.echoInput.value).then(function (reply) {
      showEcho(reply, state.echoToken === token ? performance.now() - t0 : null);
    }, function (err) {
      if (state.echoToken === token) el.echoResult.textContent = "error: " + err.code;
      failed(err);
    });
  });

  el.renameForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = el.renameInput.value.trim();
    if (!name || name.length > 32) {
      showError("invalid_name", "Display names are 1 to 32 characters.");
      return;
    }
    if (state.status !== "connected") return;
    // Applied at once; put back if the server refuses it, corrected by our own
    // member_renamed otherwise.
    var pending = {
      prevName: state.me ? state.me.name : state.name,
      prevConnectName: state.name,
      prevStored: storageGet(NAME_KEY)
    };
    state.pendingRename = pending;
    el.renameInput.value = "";
    applyMyName(name);
    hub.rename(name).catch(function (err) {
      if (state.pendingRename === pending) {
        state.pendingRename = null;
        if (state.me) state.me.name = pending.prevName;
        state.name = pending.prevConnectName;
        el.name.value = pending.prevConnectName;
        if (pending.prevStored != null) storageSet(NAME_KEY, pending.prevStored);
        showIdentity();
        if (state.active) renderMembers();
      }
      failed(err);
    });
  });

  // Reconnect right away when the browser comes back online.
  window.addEventListener("online", function () {
    if (state.status === "reconnecting") connect();
  });

  // ---------------------------------------------------------------- start

  var saved = storageGet(NAME_KEY);
  if (saved) el.name.value = saved;
  renderWhisperTarget();
  setActive(null);
  setStatus("disconnected");

  // A token in the URL fragment (never sent to a server by the browser):
  // #token=<JWT> and/or #refresh_url=<URL that answers a fresh token>. The page
  // connects with it at once, and takes it out of the address bar so it is not copied
  // along with the link.
  var fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  if (fragment.get("token") || fragment.get("refresh_url")) {
    state.token = (fragment.get("token") || "").trim();
    state.refreshUrl = fragment.get("refresh_url") || null;
    el.token.value = state.token;
    el.tokenRow.hidden = false;
    try { window.history.replaceState(null, "", window.location.pathname + window.location.search); } catch (e) { /* file: */ }
    state.name = el.name.value.trim();
    connect();
  }
})();
