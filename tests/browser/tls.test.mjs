// Real-browser test of the pages over HTTPS and WSS: `orderbus up` with a
// pair from `orderbus tls new`, through Debian's chromium.
//
//   ORDERBUS_BIN=/path/to/orderbus node --test tests/browser/tls.test.mjs
//
// The kitchen display loads over https, opens its WebSocket over wss
// (what the CSP's connect-src 'self' must allow), and shows an order
// placed over https within a second; the pages' CSP refuses nothing;
// plain http to the port is refused.  Chromium is told to accept the
// self-signed certificate (it has no trust store of ours); the site's
// own requests (lib.mjs's request) trust only that certificate and check
// it names 127.0.0.1.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import {
  LIVE_MS, Site, guard, launch, openPage, preflight, request, shot, stepper,
  waitFor,
} from "./lib.mjs";

const VIEW = { width: 1280, height: 800 };

describe("the pages over https and wss", { timeout: 90000 }, () => {
  const site = new Site("tls", { tls: true });
  guard(site);
  const { step, failed, fail } = stepper();
  let browser, page, K;
  const errors = [];
  const sockets = [];

  before(async () => {
    try {
      preflight("tls");
      await site.start();
      K = site.token("--staff", "kitchen");
      browser = await launch();
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEW });
      page = await openPage(ctx, null, errors, sockets, "kitchen");
    } catch (err) {
      fail();
      throw err;
    }
  }, { timeout: 40000 });

  after(async () => {
    try {
      if (failed() && page) await shot(page, "tls-failure.png").catch(() => {});
      if (browser) await browser.close().catch(() => {});
    } finally {
      await site.stop();
      if (failed()) {
        console.error(`--- sockets:\n${JSON.stringify(sockets, null, 1)}`);
        console.error(`--- server log:\n${site.server && site.server.log}`);
      }
      site.cleanup();
    }
  });

  step("the kitchen over https, its WebSocket over wss", async () => {
    assert.match(site.base, /^https:/);
    const res = await page.goto(`${site.base}/kitchen?token=${K}`);
    assert.equal(res.status(), 200);
    const headers = res.headers();
    assert.match(headers["strict-transport-security"] || "", /max-age=/);
    assert.match(headers["content-security-policy"] || "", /connect-src 'self'/);
    await waitFor("a snapshot over wss", () => {
      const ws = sockets.find((s) => s.url.startsWith("wss://"));
      return ws && ws.frames.some((f) => f.type === "snapshot");
    }, 10000);
  }, 20000);

  step("an order placed over https is on screen within a second", async () => {
    const t0 = Date.now();
    const order = await site.call(K, "POST", "/api/v1/orders",
                                  { table: "T5", items: [{ item_id: "burger", quantity: 1 }] },
                                  201);
    await waitFor(`ticket ${order.id} on screen`, () => page.evaluate(
      (id) => !!document.querySelector(`#tickets .ticket[data-id="${id}"]`),
      String(order.id)), 5000, 20);
    const ms = Date.now() - t0;
    assert.ok(ms <= LIVE_MS, `ticket on screen ${ms} ms after the POST`);
  }, 10000);

  step("plain http to the port gets no answer", async () => {
    await assert.rejects(request(`http://127.0.0.1:${site.port}/healthz`,
                                 { timeoutMs: 3000 }));
  }, 5000);

  step("no script errors or CSP refusals in the page", async () => {
    assert.deepEqual(errors, []);
  }, 1000);
});
