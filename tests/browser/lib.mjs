// Shared by the browser tests: a real `orderbus up` (with its secret and
// tokens), Debian's chromium through playwright-core, polling with a
// useful failure message, and steps that stop at the first failure.

import { it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const BIN = process.env.ORDERBUS_BIN;
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
export const SHOTS = process.env.SCREENSHOT_DIR ||
  path.join(os.tmpdir(), "orderbus-screenshots");
export const HOST = "127.0.0.1";

export const START_MS = 15000;   // orderbus up until /healthz says 200
export const STOP_MS = 5000;     // SIGTERM until the process has exited
export const LIVE_MS = 1000;     // a change must be on screen this fast

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A port nobody listens on right now.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Poll fn until it returns a truthy value (an object with an `ok` field:
// one whose ok is truthy) or timeoutMs passes; then throw with what the
// last poll saw.
export async function waitFor(what, fn, timeoutMs, everyMs = 40) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last && (typeof last !== "object" || !("ok" in last) || last.ok))
        return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message
        : JSON.stringify(last, null, 1);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ` +
                      `last seen: ${seen}`);
    }
    await sleep(everyMs);
  }
}

// An HTTP request: fetch for http://, node's https with `ca` as the only
// trusted certificate for https:// (it checks the certificate names the
// host).  Returns {status, text}.
export function request(url, { method = "GET", headers = {}, body, ca,
                               timeoutMs = 8000 } = {}) {
  if (!url.startsWith("https:"))
    return fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) })
      .then(async (res) => ({ status: res.status, text: await res.text() }));
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => { text += chunk; });
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: timed out`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// One `orderbus up` process, its output kept for diagnostics.  With tls
// ({cert, key}: PEM files) it serves https and wss only.
export class Server {
  constructor(port, dataDir, label, tls = null) {
    this.label = label;
    this.port = port;
    this.tls = tls;
    this.base = `${tls ? "https" : "http"}://${HOST}:${port}`;
    this.log = "";
    this.exited = null;
    const args = ["up", "--http-port", String(port), "--data", dataDir];
    if (tls) args.push("--tls-cert", tls.cert, "--tls-key", tls.key);
    this.proc = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk) => {
      this.log += chunk.toString();
      if (this.log.length > 200000) this.log = this.log.slice(-100000);
    };
    this.proc.stdout.on("data", keep);
    this.proc.stderr.on("data", keep);
    this.done = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
      this.proc.on("error", (err) => {
        this.log += `spawn error: ${err.message}\n`;
        this.exited = { code: null, signal: null, error: err.message };
        resolve(this.exited);
      });
    });
  }

  async waitHealthy() {
    await waitFor(`${this.label}: GET /healthz 200`, async () => {
      if (this.exited)
        throw new Error(`${this.label} exited early ` +
                        `${JSON.stringify(this.exited)}:\n${this.log}`);
      const res = await request(`${this.base}/healthz`, {
        ca: this.tls && fs.readFileSync(this.tls.cert), timeoutMs: 1000 });
      return { ok: res.status === 200, status: res.status, body: res.text };
    }, START_MS, 100);
  }

  // SIGTERM, then SIGKILL if it will not go.  Returns how it exited.
  async stop(graceMs = STOP_MS) {
    if (this.exited) return this.exited;
    this.proc.kill("SIGTERM");
    const timer = sleep(graceMs).then(() => null);
    const how = await Promise.race([this.done, timer]);
    if (how) return how;
    this.proc.kill("SIGKILL");
    await this.done;
    return { ...this.exited, killed: true };
  }
}

// A site: a data directory, one `up` at a time on one port, and tokens
// signed with the secret `up` keeps in the data directory.
// With { tls: true }, `up` serves https and wss only, with a pair
// `orderbus tls new` made in the data directory's parent's temp dir
// (this.tls: {cert, key}), which the site's own requests trust.
export class Site {
  constructor(name, { tls = false } = {}) {
    this.name = name;
    this.server = null;
    this.count = 0;
    this.dataDir = null;
    this.port = null;
    this.wantTls = tls;
    this.tls = null;
  }

  get base() { return `${this.tls ? "https" : "http"}://${HOST}:${this.port}`; }

  async start() {
    if (!this.dataDir) {
      this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `orderbus-${this.name}-`));
      this.port = await freePort();
    }
    if (this.wantTls && !this.tls) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `orderbus-${this.name}-tls-`));
      this.tls = { dir, cert: path.join(dir, "tls.crt"), key: path.join(dir, "tls.key") };
      execFileSync(BIN, ["tls", "new", "--cert", this.tls.cert, "--key", this.tls.key],
                   { stdio: ["ignore", "pipe", "pipe"] });
    }
    this.server = new Server(this.port, this.dataDir, `server #${++this.count}`, this.tls);
    await this.server.waitHealthy();
  }

  async stop() {
    return this.server ? this.server.stop() : null;
  }

  token(...args) {
    const out = execFileSync(BIN, ["token", "--secret-file",
                                   path.join(this.dataDir, "secret"), ...args],
                             { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return out.split("\n")[0].trim();
  }

  // An API call as `tok`; returns {status, body}.
  async api(tok, method, p, body, key) {
    const headers = { Authorization: `Bearer ${tok}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["Idempotency-Key"] = key || `test-${randomUUID()}`;
    const res = await request(`${this.base}${p}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      ca: this.tls && fs.readFileSync(this.tls.cert),
    });
    const text = res.text;
    let json = null;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: res.status, body: json };
  }

  // ... and insist on the status.
  async call(tok, method, p, body, want, key) {
    const r = await this.api(tok, method, p, body, key);
    assert.equal(r.status, want, `${method} ${p} ${JSON.stringify(body ?? "")}: ` +
                                 JSON.stringify(r.body));
    return r.body;
  }

  cleanup() {
    if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    if (this.tls) fs.rmSync(this.tls.dir, { recursive: true, force: true });
  }
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync",
           "--autoplay-policy=no-user-gesture-required"],
  });
}

// A page that records its uncaught errors and its WebSockets (URL, the
// type and seq of every message, whether it closed).
export async function openPage(browserOrContext, viewport, errors, sockets, label) {
  const page = await browserOrContext.newPage(viewport ? { viewport } : undefined);
  page.setDefaultTimeout(10000);
  page.on("pageerror", (err) => errors.push(`${label}: ${err}`));
  // What the Content-Security-Policy refuses (an inline script, style or
  // handler, a connection elsewhere) counts as an error of the page too:
  // chromium logs "Refused to ..." on the console, and the page hears a
  // securitypolicyviolation event, which is logged the same way.
  page.on("console", (msg) => {
    const text = msg.text();
    if (msg.type() === "error" && /Refused to|Content Security Policy/.test(text))
      errors.push(`${label}: CSP: ${text}`);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`Refused to ... (securitypolicyviolation: ${e.violatedDirective} ` +
                    `${e.blockedURI || "inline"})`);
    });
  });
  page.on("websocket", (ws) => {
    const rec = { page: label, url: ws.url(), frames: [], closed: false };
    sockets.push(rec);
    ws.on("close", () => { rec.closed = true; });
    ws.on("framereceived", (f) => {
      try {
        const m = JSON.parse(f.payload);
        rec.frames.push({ type: m.type, seq: m.seq, event: m.event });
      } catch {
        rec.frames.push({ raw: String(f.payload).slice(0, 80) });
      }
    });
  });
  return page;
}

// Steps that build on each other: after a failure the rest skip, and
// onFail (screenshots, logs) runs once.
export function stepper() {
  let failed = false;
  let n = 0;
  const step = (name, fn, timeout) =>
    it(`${++n}. ${name}`, { timeout }, async (t) => {
      if (failed) return t.skip("an earlier step failed");
      try {
        await fn(t);
      } catch (err) {
        failed = true;
        throw err;
      }
    });
  return { step, failed: () => failed, fail: () => { failed = true; } };
}

// Nothing wider than the viewport (a phone must not scroll sideways).
export async function assertNoSideScroll(page, what) {
  const r = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, view: window.innerWidth,
  }));
  assert.ok(r.scroll <= r.view + 1,
            `${what}: the page is ${r.scroll} px wide in a ${r.view} px viewport`);
}

export function shot(page, name, opts = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  return page.screenshot({ path: path.join(SHOTS, name), ...opts });
}

// Check the tools; remove this test's screenshots of an earlier run
// (those whose names start with `prefix`), so none is taken for new.
export function preflight(prefix) {
  assert.ok(BIN, "set ORDERBUS_BIN to the orderbus binary");
  assert.ok(fs.existsSync(BIN), `ORDERBUS_BIN ${BIN} does not exist`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} does not exist`);
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS))
    if (f.startsWith(prefix) && f.endsWith(".png")) fs.rmSync(path.join(SHOTS, f));
}

// Kill a server left running if the test process dies before after().
export function guard(site) {
  process.on("exit", () => {
    const s = site.server;
    if (s && !s.exited) s.proc.kill("SIGKILL");
  });
}

