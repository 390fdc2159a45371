// Shared by the kitchen display, the table pad and the manager dashboard:
// the token from the page's URL, API calls with errors in plain words, the
// live WebSocket (snapshot, then events, reconnecting with after_seq),
// small DOM helpers and toasts.  Plain script, no build step: it defines
// one global, OB.
"use strict";

const OB = (() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";

  // -------------------------------------------------------------------
  // The token: "ob1.<base64url of role/site/table/expires_ms>.<mac>".
  // The claims are readable (signed, not encrypted); the server checks
  // them, the page only uses them to know its table and its expiry.
  function claims(tok) {
    const parts = String(tok).split(".");
    if (parts.length !== 3 || parts[0] !== "ob1") return null;
    try {
      let b = parts[1].replace(/-/g, "+").replace(/_/g, "/");
      while (b.length % 4) b += "=";
      const bytes = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
      const text = new TextDecoder().decode(bytes);
      const f = text.split("/");
      if (f.length !== 4) return null;
      return { role: f[0], site: f[1], table: f[2], expires: Number(f[3]) };
    } catch {
      return null;
    }
  }

  // A fresh Idempotency-Key.  crypto.randomUUID needs a secure context
  // (https or localhost); a pad on http://10.0.0.5 has only
  // getRandomValues.
  function newKey(prefix) {
    const b = crypto.getRandomValues(new Uint8Array(12));
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${prefix}-${Date.now().toString(36)}-${hex}`;
  }

  // -------------------------------------------------------------------
  // HTTP

  class ApiError extends Error {
    constructor({ status = 0, code = "", field = "", message = "",
                  retryAfter = 0, network = false }) {
      super(message || code || (network ? "network error" : `HTTP ${status}`));
      this.status = status;
      this.code = code;
      this.field = field;
      this.serverMessage = message;
      this.retryAfter = retryAfter;
      this.network = network;
    }
    // Worth sending again with the same Idempotency-Key?
    get retryable() {
      return this.network || this.status === 503 || this.status === 429 ||
        this.status === 502 || this.status === 504;
    }
  }

  const netListeners = [];

  // fetch with the token, a JSON body, an Idempotency-Key and a timeout.
  // Resolves {status, data, headers} for 2xx and 304; throws ApiError
  // for anything else, with network=true when no answer came back.
  async function api(method, path, { body, key, timeoutMs = 8000,
                                     headers = {} } = {}) {
    const h = { Authorization: `Bearer ${token}`, ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (key) h["Idempotency-Key"] = key;
    let res, text;
    try {
      res = await fetch(path, {
        method, headers: h, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      netListeners.forEach((fn) => fn(false));
      throw new ApiError({ network: true, message: String(err.message || err) });
    }
    netListeners.forEach((fn) => fn(true));
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if ((res.status >= 200 && res.status < 300) || res.status === 304)
      return { status: res.status, data, headers: res.headers };
    const e = (data && data.error) || {};
    throw new ApiError({
      status: res.status, code: e.code || "", field: e.field || "",
      message: e.message || "",
      retryAfter: Number(res.headers.get("Retry-After")) || 0,
    });
  }

  // An API error in words a person at a table or at the pass understands.
  // `what` completes "Couldn't ...", e.g. "add that to the cart".
  function explain(err, what) {
    if (!(err instanceof ApiError))
      return `Couldn't ${what}: ${err && err.message ? err.message : err}.`;
    const said = err.serverMessage ? `: ${err.serverMessage}` : "";
    if (err.network)
      return `Couldn't ${what}: no connection to the restaurant's server. ` +
        "Check the Wi-Fi and try again.";
    switch (err.status) {
      case 400:
        if (err.code === "item_unavailable")
          return `Couldn't ${what}: ${err.serverMessage ||
            "something in it has just sold out"}.`;
        if (err.code === "unknown_item")
          return `Couldn't ${what}: that dish is no longer on the menu.`;
        return `Couldn't ${what}: the server refused it` +
          (err.field ? ` (${err.field}${said})` : said) + ".";
      case 401:
        return err.code === "token_expired"
          ? "This screen's access link has expired. Ask a manager for a new link or QR code."
          : "This screen's access link is not valid. Ask a manager for a new link or QR code.";
      case 403:
        return `This screen is not allowed to ${what}. Ask a manager to check its link.`;
      case 404:
        return `Couldn't ${what}: it no longer exists${said}.`;
      case 409:
        return `Couldn't ${what}: ${err.serverMessage ||
          "someone else changed it first"}.`;
      case 413:
        return `Couldn't ${what}: it is too long.`;
      case 429:
        return `Too many requests from this screen. Waiting ${err.retryAfter || 1} s ` +
          "before trying again.";
      case 503:
        return `Couldn't ${what}: the order system is busy or restarting. ` +
          "Try again in a moment.";
      default:
        return `Couldn't ${what}: the server answered ${err.status}${said}.`;
    }
  }

  // -------------------------------------------------------------------
  // The live socket.  The first connection gets a snapshot of the room
  // and its sequence number; every event after it carries the next
  // number of the room.  On a drop it reconnects with after_seq=<last
  // applied> and gets exactly the events it missed (or a fresh snapshot),
  // so the page neither misses nor doubles anything.  Events at or below
  // the last applied number are ignored.
  //
  // States: "connecting" (first time), "live", "lost" (was live, trying
  // again), "denied" (the token was refused: retrying will not help).
  class Live {
    constructor({ extra = "", onSnapshot, onEvent, onState }) {
      this.extra = extra;
      this.onSnapshot = onSnapshot;
      this.onEvent = onEvent;
      this.onState = onState || (() => {});
      this.seq = null;
      this.epoch = null;
      this.ws = null;
      this.state = "connecting";
      this.retryMs = 250;
      this.fails = 0;
      this.timer = null;
      this.lastMessage = 0;
      this.denied = null;
      window.addEventListener("offline", () => this.kick("offline"));
      window.addEventListener("online", () => this.reconnectNow());
    }

    url() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      let q = `token=${encodeURIComponent(token)}${this.extra}`;
      // The writer's epoch of that seq: a seq of another history (the
      // writer restored from an older copy since) gets a fresh snapshot
      if (this.seq !== null && this.epoch) q += `&epoch=${this.epoch}`;
      if (this.seq !== null) q += `&after_seq=${this.seq}`;
      return `${scheme}://${location.host}/ws?${q}`;
    }

    setState(s, detail) {
      this.state = s;
      this.onState(s, detail);
    }

    start() { this.connect(); }

    connect() {
      clearTimeout(this.timer);
      this.timer = null;
      let ws;
      try {
        ws = new WebSocket(this.url());
      } catch (err) {
        this.scheduleRetry();
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        if (this.ws !== ws) return;
        this.retryMs = 250;
        this.fails = 0;
        this.denied = null;
        this.setState("live");
      };
      ws.onmessage = (e) => {
        if (this.ws !== ws) return;
        this.lastMessage = Date.now();
        let msg;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg.type === "snapshot") {
          this.seq = msg.seq;
          this.epoch = msg.epoch || null;
          this.onSnapshot(msg);
        } else if (msg.type === "event") {
          if (this.seq !== null && msg.seq <= this.seq) return;  // have it
          this.seq = msg.seq;
          this.onEvent(msg);
        }
      };
      ws.onclose = () => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.fails++;
        if (this.state !== "denied")
          this.setState(this.state === "connecting" && this.seq === null
                        ? "connecting" : "lost");
        if (this.fails >= 2) this.checkToken();
        this.scheduleRetry();
      };
    }

    scheduleRetry() {
      clearTimeout(this.timer);
      const wait = this.state === "denied" ? 30000 : this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, 3000);
      this.timer = setTimeout(() => this.connect(), wait);
    }

    // A refused upgrade looks like any other failure to the page; ask the
    // API whether it is the token, so the screen can say so.
    async checkToken() {
      try {
        await api("GET", "/api/v1/menu", { timeoutMs: 3000 });
      } catch (err) {
        if (err.status === 401 || err.status === 403) {
          this.denied = err;
          this.setState("denied", explain(err, "connect"));
        }
      }
    }

    // The network went away (the browser says so): drop the socket now
    // rather than wait for TCP to notice, and retry.
    kick() {
      if (this.ws) {
        const ws = this.ws;
        this.ws = null;
        try { ws.close(); } catch { /* closing anyway */ }
        this.setState("lost");
        this.scheduleRetry();
      }
    }

    reconnectNow() {
      if (this.ws) return;
      this.retryMs = 250;
      clearTimeout(this.timer);
      this.connect();
    }
  }

  // -------------------------------------------------------------------
  // DOM helpers

  // h("div.a.b", {attr: value, onclick: fn}, child, "text", ...)
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split(".");
    const el = document.createElement(tag || "div");
    if (classes.length) el.className = classes.join(" ");
    if (attrs && (typeof attrs !== "object" || attrs instanceof Node ||
                  Array.isArray(attrs))) {
      children.unshift(attrs);
      attrs = null;
    }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "text") el.textContent = v;
      // through the CSSOM: the CSP refuses style attributes
      else if (k === "style") el.style.cssText = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  const $ = (sel, root = document) => root.querySelector(sel);

  // Money is integer cents; the menu names no currency, so none is shown.
  function money(cents) {
    const neg = cents < 0;
    const a = Math.abs(cents);
    const s = `${Math.floor(a / 100).toLocaleString("en")}.` +
      String(a % 100).padStart(2, "0");
    return neg ? `−${s}` : s;
  }

  // 83 s -> "1:23"; 3723 s -> "1:02:03"
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const m = Math.floor(s / 60);
    const ss = String(s % 60).padStart(2, "0");
    if (m < 60) return `${m}:${ss}`;
    return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${ss}`;
  }

  function clock(ms) {
    const d = new Date(ms);
    return `${String(d.getHours()).padStart(2, "0")}:` +
      String(d.getMinutes()).padStart(2, "0");
  }

  // Toasts: short messages in the corner; errors stay longer and can be
  // dismissed by a tap.
  function toast(text, kind = "info", ms) {
    let box = document.getElementById("toasts");
    if (!box) {
      box = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
      document.body.append(box);
    }
    const t = h(`div.toast.${kind}`, { onclick: () => t.remove() }, text);
    box.append(t);
    while (box.children.length > 4) box.firstChild.remove();
    setTimeout(() => t.remove(), ms || (kind === "error" ? 9000 : 4000));
    return t;
  }

  // The connection pill and banner every page has: #link and #banner.
  function showLink(state, detail, words = {}) {
    const link = document.getElementById("link");
    const banner = document.getElementById("banner");
    const text = {
      connecting: "connecting…", live: "live", lost: "offline",
      denied: "no access", ...words,
    }[state] || state;
    if (link) {
      link.textContent = text;
      link.className = `pill link-${state}`;
    }
    if (banner) {
      const msg = state === "lost" ? (words.lostBanner ||
        "Connection lost — reconnecting… What is on screen may be out of date.")
        : state === "denied" ? detail
        : state === "connecting" && words.connectingBanner
          ? words.connectingBanner : "";
      banner.textContent = msg || "";
      banner.hidden = !msg;
      banner.className = state === "denied" ? "banner denied" : "banner";
    }
  }

  // A page opened without its token says how to get one.
  function requireToken(role) {
    const c = claims(token);
    if (token && c) return c;
    document.body.replaceChildren(h("main.no-token",
      h("h1", "This page needs its access link"),
      h("p", token
        ? "The access code in this link is not valid."
        : "Open it with the link or QR code a manager gave you: it ends with ?token=…"),
      h("p.small", `(a ${role} link, from \`orderbus token\`)`)));
    return null;
  }

  return {
    token, params, claims, newKey, api, ApiError, explain, Live, h, $,
    money, duration, clock, toast, showLink, requireToken,
    onNetwork: (fn) => netListeners.push(fn),
  };
})();
