// Real-browser test of the manager dashboard (web/dashboard.*) against
// `orderbus up`, through Debian's chromium.
//
//   ORDERBUS_BIN=/path/to/orderbus SCREENSHOT_DIR=/tmp/shots \
//     node --test tests/browser/dashboard.test.mjs
//
// Orders placed and moved through the API; the dashboard's counters and
// charts must say what the orders say, move live, survive a server
// restart without counting anything twice; its 86 toggles reach a pad at
// once.  Screenshots: dashboard.png (the README's), dashboard-phone.png.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import {
  LIVE_MS, START_MS, Site, assertNoSideScroll, guard, launch, openPage,
  preflight, shot, sleep, stepper, waitFor,
} from "./lib.mjs";

const VIEW = { width: 1600, height: 900 };
const RECOVER_MS = 10000;

function dashState(page) {
  return page.evaluate(() => {
    const visible = (el) => !!el && !el.hidden &&
      getComputedStyle(el).display !== "none" && el.offsetParent !== null;
    const text = (root, sel) => {
      const el = root.querySelector(sel);
      return el ? el.textContent.trim() : null;
    };
    const counter = (id) => ({
      value: text(document, `#${id} .value`), sub: text(document, `#${id} .sub`),
    });
    const banner = document.getElementById("banner");
    return {
      link: text(document, "#link"),
      source: text(document, "#source"),
      banner: visible(banner),
      bannerText: banner.innerText.trim(),
      open: counter("cOpen"),
      orders: counter("cOrders"),
      revenue: counter("cRevenue"),
      ticket: counter("cTicket"),
      hours: Object.fromEntries([...document.querySelectorAll("#hourBars .vbar")]
        .map((b) => [b.dataset.hour, Number(b.dataset.n)])),
      top: [...document.querySelectorAll("#topBars li[data-n]")]
        .map((li) => `${text(li, ".n")} ${text(li, ".name")}`),
      toggles: Object.fromEntries([...document.querySelectorAll("#menuBoard .toggle")]
        .map((b) => [b.dataset.id, text(b, ".t-state")])),
      toasts: [...document.querySelectorAll("#toasts .toast")].map((t) => t.textContent),
    };
  });
}

// The page's formats
function money(cents) {
  const a = Math.abs(cents);
  const s = `${Math.floor(a / 100).toLocaleString("en")}.${String(a % 100).padStart(2, "0")}`;
  return cents < 0 ? `−${s}` : s;
}
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const ss = String(s % 60).padStart(2, "0");
  return m < 60 ? `${m}:${ss}` : `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${ss}`;
}
// Nearest rank, as docs/reports.md: the value at rank ceil(q * count).
function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

// What the dashboard must show, from the orders as the server has them.
function expected(all) {
  const kept = all.filter((o) => o.status !== "cancelled");
  const open = all.filter((o) => ["placed", "accepted", "preparing", "ready"].includes(o.status));
  const times = kept.filter((o) => o.status_times.ready)
    .map((o) => o.status_times.ready - o.status_times.placed).sort((a, b) => a - b);
  const items = new Map();      // item id -> [name, quantity]
  for (const o of kept)
    for (const it of o.items) {
      const c = items.get(it.item_id) || [it.name, 0];
      c[1] += it.quantity;
      items.set(it.item_id, c);
    }
  const words = { placed: "new", accepted: "accepted", preparing: "preparing", ready: "ready" };
  const byStatus = Object.keys(words)
    .map((s) => [s, open.filter((o) => o.status === s).length])
    .filter(([, n]) => n).map(([s, n]) => `${n} ${words[s]}`).join(" · ");
  const hours = {};
  for (const o of kept) {
    const hr = new Date(o.created_ms).getHours();
    hours[hr] = (hours[hr] || 0) + 1;
  }
  const cancelled = all.length - kept.length;
  const median = quantile(times, 0.5);
  return {
    open: { value: String(open.length), sub: byStatus || "none waiting" },
    orders: { value: String(kept.length),
              sub: cancelled ? `${cancelled} cancelled` : "none cancelled" },
    revenue: { value: money(kept.reduce((s, o) => s + o.total_cents, 0)),
               sub: `${money(kept.reduce((s, o) => s + o.subtotal_cents, 0))} before tax` },
    ticket: median === null ? { value: "–", sub: "no order ready yet today" }
      : { value: duration(median),
          sub: `placed → ready · p90 ${duration(quantile(times, 0.9))} · ` +
               `${times.length} order${times.length === 1 ? "" : "s"}` },
    // by quantity, then item id; ten of them
    top: [...items.entries()].sort((a, b) => b[1][1] - a[1][1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 10).map(([, [name, n]]) => `${n} ${name}`),
    hours,
  };
}

describe("manager dashboard in a real browser", { timeout: 120000 }, () => {
  const site = new Site("dashboard");
  guard(site);
  const { step, failed, fail } = stepper();
  let browser, page, pad, M, K, P;
  const errors = [];
  const sockets = [];

  const state = () => dashState(page);
  const all = async () => (await site.call(K, "GET", "/api/v1/orders?limit=1000",
                                           undefined, 200)).orders;
  const order = (table, items) =>
    site.call(K, "POST", "/api/v1/orders", { table, items }, 201);
  const move = async (o, ...steps) => {
    let cur = o;
    for (const status of steps)
      cur = await site.call(K, "POST", `/api/v1/orders/${o.id}/status`,
                            { status, version: cur.version }, 200);
    return cur;
  };
  // The page agrees with the server (all but the per-hour bars the page
  // pads with empty hours).
  const agrees = async (what, ms = LIVE_MS) => {
    const want = expected(await all());
    return waitFor(what, async () => {
      const s = await state();
      const hoursOk = Object.entries(want.hours).every(([h, n]) => s.hours[h] === n);
      const seen = { open: s.open, orders: s.orders, revenue: s.revenue, ticket: s.ticket,
                     top: s.top };
      const exp = { open: want.open, orders: want.orders, revenue: want.revenue,
                    ticket: want.ticket, top: want.top };
      return { ok: hoursOk && JSON.stringify(seen) === JSON.stringify(exp), seen, exp,
               hours: s.hours, wantHours: want.hours };
    }, ms);
  };

  before(async () => {
    try {
      preflight("dashboard");
      await site.start();
      M = site.token("--staff", "manager");
      K = site.token("--staff", "kitchen");
      P = site.token("--table", "T9");
      browser = await launch();
      page = await openPage(browser, VIEW, errors, sockets, "dashboard");
      pad = await openPage(browser, { width: 1024, height: 700 }, errors, sockets, "pad");
    } catch (err) {
      fail();
      throw err;
    }
  }, { timeout: 40000 });

  after(async () => {
    try {
      if (failed() && page) await shot(page, "dashboard-failure.png").catch(() => {});
      if (browser) await browser.close().catch(() => {});
    } finally {
      await site.stop();
      if (failed())
        console.error(`--- ${site.server && site.server.label} log:\n` +
                      `${site.server && site.server.log}`);
      site.cleanup();
    }
  }, { timeout: 15000 });

  step("today's orders: the counters and charts say what the orders say", async (t) => {
    const o1 = await order("T1", [{ item_id: "burger", quantity: 2, modifiers: ["cheese"] },
                                  { item_id: "fries", quantity: 1 }]);
    const o2 = await order("T2", [{ item_id: "steak-frites", quantity: 1 },
                                  { item_id: "house-red", quantity: 2 }]);
    const o3 = await order("T3", [{ item_id: "caesar", quantity: 1 },
                                  { item_id: "cola", quantity: 2 }]);
    await order("T4", [{ item_id: "burger", quantity: 1 }]);
    const o5 = await order("T5", [{ item_id: "negroni", quantity: 2 }]);
    await move(o1, "accepted", "preparing", "ready", "served");
    await sleep(30);
    await move(o2, "accepted", "preparing", "ready");
    await move(o3, "accepted");
    await move(o5, "cancelled");
    const res = await page.goto(`${site.base}/dashboard?token=${M}`);
    assert.equal(res.status(), 200, "GET /dashboard");
    await waitFor("live", async () => ({ ok: (await state()).link === "live" }), 5000);
    await agrees("the seeded numbers", 3000);
    const s = await state();
    assert.deepEqual(s.open, { value: "3", sub: "1 new · 1 accepted · 1 ready" });
    assert.deepEqual(s.orders, { value: "4", sub: "1 cancelled" });
    // equal quantities in item id order: cola before house-red
    assert.deepEqual(s.top.slice(0, 3), ["3 Burger", "2 Cola", "2 House Red (175 ml)"]);
    assert.equal(s.hours[new Date().getHours()], 4);
    assert.match(s.ticket.sub, /^placed → ready · p90 \d+:\d\d · 2 orders$/);
    // The charts come from GET /api/v1/report when the server has it (it
    // does: docs/reports.md); the figures above hold either way.
    const r = await site.api(M, "GET", `/api/v1/report?from=${Date.now() - 3600000}`);
    t.diagnostic(`GET /api/v1/report: ${r.status}`);
    if (r.status === 200)
      await waitFor("the report in use", async () =>
        ({ ok: (await state()).source === "charts from the day's report" }), 2000);
    else
      assert.equal(s.source, "");
    await agrees("the numbers with the report");
  }, 15000);

  step("a new order and a bump move the numbers within 1 s", async () => {
    const t0 = Date.now();
    const o = await order("T6", [{ item_id: "burger", quantity: 1 },
                                 { item_id: "pale-ale", quantity: 3 }]);
    await agrees("a sixth order");
    assert.ok(Date.now() - t0 <= 2 * LIVE_MS);
    await move(o, "accepted", "preparing", "ready");
    await agrees("its ticket time");
    const s = await state();
    assert.match(s.ticket.sub, /· 3 orders$/);
    assert.equal(s.top[0], "4 Burger");
  }, 8000);

  step("86 toggles: a pad greys the dish out at once, and back", async () => {
    await pad.goto(`${site.base}/pad?token=${P}`);
    await pad.click('#cats button[data-cat="sides"]');
    const fries = () => pad.locator('#items .item[data-id="fries"]').evaluate((el) =>
      el.classList.contains("sold-out") && el.disabled);
    await waitFor("pad ready", async () => ({ ok: (await fries()) === false }), 5000);
    let s = await state();
    assert.equal(s.toggles.fries, "on");
    assert.equal(s.toggles.asparagus, "86'd", "the menu's own 86 shows");
    const t0 = Date.now();
    await page.click('#menuBoard .toggle[data-id="fries"]');
    await waitFor("fries greyed on the pad", async () => ({ ok: await fries() }), LIVE_MS);
    assert.ok(Date.now() - t0 <= LIVE_MS);
    s = await waitFor("the toggle says 86'd", async () => {
      const s = await state();
      return { ...s, ok: s.toggles.fries === "86'd" };
    }, LIVE_MS);
    // The server's menu says so too (a gateway serves a menu up to 1 s old)
    await waitFor("GET /api/v1/menu: fries unavailable", async () => {
      const menu = await site.call(M, "GET", "/api/v1/menu", undefined, 200);
      const item = menu.categories.flatMap((c) => c.items).find((i) => i.id === "fries");
      return { ok: item.available === false, item };
    }, 2000, 100);
    await page.click('#menuBoard .toggle[data-id="fries"]');
    await waitFor("fries back on the pad", async () => ({ ok: (await fries()) === false }), LIVE_MS);
    assert.equal((await state()).toggles.fries, "on");
  }, 12000);

  step("a toggle that cannot reach the server says so in words", async () => {
    await page.route("**/availability", (route) => route.abort("internetdisconnected"));
    try {
      await page.click('#menuBoard .toggle[data-id="cola"]');
      const s = await waitFor("the error", async () => {
        const s = await state();
        return { ...s, ok: s.toasts.some((x) => /Couldn't 86 Cola/.test(x)) };
      }, 3000);
      assert.ok(s.toasts.includes("Couldn't 86 Cola: no connection to the restaurant's " +
                                  "server. Check the Wi-Fi and try again."), s.toasts.join("|"));
      assert.equal(s.toggles.cola, "on", "nothing changed");
    } finally {
      await page.unroute("**/availability");
    }
  }, 8000);

  step("the server restarts: nothing counted twice, nothing missed", async (t) => {
    const before = sockets.length;
    await site.stop();
    const s = await waitFor("offline", async () => {
      const s = await state();
      return { ...s, ok: s.link === "offline" && s.banner };
    }, 5000);
    assert.match(s.bannerText, /Connection lost/);
    await site.start();
    await order("T7", [{ item_id: "salmon", quantity: 2 }]);
    const o2 = (await all()).find((o) => o.table === "T2");
    await move(o2, "served");
    await waitFor("live again", async () => ({ ok: (await state()).link === "live" }), RECOVER_MS);
    await agrees("the numbers after the restart", RECOVER_MS);
    await sleep(1000);
    await agrees("still the same a moment later");
    const got = sockets.slice(before).filter((x) => x.page === "dashboard" && x.frames.length);
    t.diagnostic(got.map((x) => x.url.replace(/token=[^&]+/, "token=…")).join(" "));
    assert.equal(got.length, 1);
    assert.match(got[0].url, /&after_seq=\d+$/);
  }, START_MS + 2 * RECOVER_MS + 5000);

  step("screenshots; on a phone: two counters a row, no sideways scroll", async () => {
    // A fuller day for the picture: an 86'd dish and a few more orders
    await site.call(M, "POST", "/api/v1/menu/items/chocolate-fondant/availability",
                    { available: false }, 200);
    for (const [table, items] of [
      ["T8", [{ item_id: "fish-chips", quantity: 2 }, { item_id: "lemonade", quantity: 2 }]],
      ["T10", [{ item_id: "burger", quantity: 3 }, { item_id: "fries", quantity: 3 }]],
      ["T11", [{ item_id: "risotto", quantity: 1 }, { item_id: "house-white", quantity: 1 }]],
    ]) await order(table, items);
    await agrees("the fuller day");
    await page.evaluate(() => document.getElementById("toasts")?.replaceChildren());
    await shot(page, "dashboard.png", { fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(200);
    await assertNoSideScroll(page, "dashboard on a phone");
    const boxes = await page.locator(".counter").evaluateAll((els) =>
      els.map((e) => Math.round(e.getBoundingClientRect().y)));
    assert.equal(boxes[0], boxes[1]);
    assert.ok(boxes[2] > boxes[0]);
    await shot(page, "dashboard-phone.png");
  }, 10000);

  // The pages run under a CSP with no inline script or style: what it
  // refuses must show up in `errors` (lib.mjs's openPage), or the step
  // below would pass over a page the policy broke.
  step("a violation of the CSP is caught", async () => {
    const before = errors.length;
    await page.evaluate(() => {
      const s = document.createElement("script");
      s.textContent = "window.inlineRan = true";
      document.body.append(s);
    });
    await waitFor("the inline script refused and recorded",
                  () => errors.length > before, 3000);
    assert.equal(await page.evaluate(() => window.inlineRan), undefined);
    assert.match(errors.slice(before).join("\n"), /CSP: Refused to/);
    errors.splice(before);
  }, 5000);

  step("no script errors in the pages", async () => {
    assert.deepEqual(errors, []);
  }, 1000);
});
