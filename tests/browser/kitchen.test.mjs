// Real-browser test of the kitchen display (web/kitchen.*), served by
// `orderbus up`, driven through Debian's chromium by playwright-core.
//
//   ORDERBUS_BIN=/path/to/orderbus SCREENSHOT_DIR=/tmp/shots \
//     node --test tests/browser/kitchen.test.mjs
//
// It looks at the page the way a cook does: tickets, what is written on
// them, their colours, the all-day panel, the station filter, the link
// indicator and banner; it bumps with the keyboard (a bump bar is one)
// and by tap, recalls, provokes a 409, and restarts the server under the
// page.  The steps share one server, one data directory and one page.
// Screenshots go to $SCREENSHOT_DIR: kitchen.png (the README's),
// kitchen-phone.png, kitchen-offline.png, and kitchen-failure.png when a
// step fails.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import {
  LIVE_MS, STOP_MS, START_MS, Site, assertNoSideScroll, guard, launch,
  openPage, preflight, shot, sleep, stepper, waitFor,
} from "./lib.mjs";

const VIEW = { width: 1600, height: 900 };
const OFFLINE_MS = 5000;     // server gone until the page says so
const RECOVER_MS = 10000;    // restart until the page is whole again

// What a cook sees on the page.
function kitchenState(page) {
  return page.evaluate(() => {
    const visible = (el) => !!el && !el.hidden &&
      getComputedStyle(el).display !== "none" && el.offsetParent !== null;
    const text = (root, sel) => {
      const el = root.querySelector(sel);
      return el ? el.textContent.trim() : null;
    };
    const banner = document.getElementById("banner");
    return {
      link: text(document, "#link"),
      banner: visible(banner),
      bannerText: banner.innerText.trim(),
      count: text(document, "#count"),
      chimes: Number(document.body.dataset.chimes || 0),
      mute: text(document, "#mute"),
      toasts: [...document.querySelectorAll("#toasts .toast")].map((t) => t.textContent),
      stations: [...document.querySelectorAll("#stations button")]
        .map((b) => `${b.textContent}${b.getAttribute("aria-pressed") === "true" ? "*" : ""}`),
      allday: visible(document.getElementById("allday"))
        ? [...document.querySelectorAll("#alldayList li[data-item]")]
          .map((li) => `${text(li, ".n")} ${text(li, ".name")}`)
        : null,
      tickets: [...document.querySelectorAll("#tickets article.ticket")].map((t) => ({
        id: t.dataset.id,
        status: t.dataset.status,
        age: t.dataset.age,
        selected: t.classList.contains("selected"),
        recalled: t.classList.contains("recalled"),
        key: text(t, ".t-key"),
        title: text(t, ".t-table"),
        ageText: text(t, ".age"),
        statusText: text(t, ".t-sub .status"),
        headBg: getComputedStyle(t.querySelector(".t-head")).backgroundColor,
        items: [...t.querySelectorAll("li.item")].map((li) => ({
          line: `${text(li, ".qty")} × ${text(li, ".name")}`,
          mods: [...li.querySelectorAll(".mods li")].map((m) => m.textContent.trim()),
          note: text(li, ".note"),
        })),
        others: text(t, ".others"),
        orderNote: text(t, ".order-note"),
        bump: text(t, "button.bump"),
        shown: visible(t),
      })),
    };
  });
}

// The orders placed through the API, and what their tickets must say.
const ORDER_1 = {
  table: "T12",
  items: [{ item_id: "burger", quantity: 2, note: "no onions", modifiers: ["cheese"] }],
};
const ORDER_2 = {
  table: "T4",
  note: "birthday: candle on dessert",
  items: [
    { item_id: "steak-frites", quantity: 1, modifiers: ["medium-rare", "peppercorn"] },
    { item_id: "caesar", quantity: 3, note: "dressing on the side" },
    { item_id: "house-red", quantity: 2 },
  ],
};
const ORDER_BAR = {
  table: "T5",
  items: [{ item_id: "negroni", quantity: 2 }, { item_id: "pale-ale", quantity: 1 }],
};
const ORDER_3 = { table: "T9", items: [{ item_id: "salmon", quantity: 1 }] };
const ORDER_4 = { table: "T7", items: [{ item_id: "fish-chips", quantity: 2, modifiers: ["no-peas"] },
                                       { item_id: "fries", quantity: 1 }] };

const EXPECT_1 = {
  title: "Table T12", orderNote: null,
  items: [{ line: "2 × Burger", mods: ["Extra cheese"], note: "no onions" }],
};
const EXPECT_2 = {
  title: "Table T4", orderNote: "birthday: candle on dessert",
  items: [
    { line: "1 × Steak Frites", mods: ["Medium rare", "Peppercorn sauce instead"], note: null },
    { line: "3 × Caesar Salad", mods: [], note: "dressing on the side" },
    { line: "2 × House Red (175 ml)", mods: [], note: null },
  ],
};

function assertTicket(seen, want, order) {
  assert.equal(seen.id, String(order.id), "ticket data-id is the order id");
  assert.equal(seen.title, want.title);
  assert.deepEqual(seen.items, want.items);
  assert.equal(seen.orderNote, want.orderNote);
  assert.ok(seen.shown, `ticket ${seen.id} is visible`);
  assert.match(seen.ageText, /^\d+:\d\d$/, "the age reads m:ss");
}

describe("kitchen display in a real browser", { timeout: 120000 }, () => {
  const site = new Site("kitchen");
  guard(site);
  const { step, failed, fail } = stepper();
  let browser, page, K;
  const errors = [];
  const sockets = [];
  const responses = new Map();
  const placed = [];

  const post = async (order) => {
    const o = await site.call(K, "POST", "/api/v1/orders", order, 201);
    placed.push(o);
    return o;
  };
  const state = () => kitchenState(page);
  const serverOpen = async () => {
    const { orders } = await site.call(K, "GET", "/api/v1/orders?limit=100", undefined, 200);
    return orders.filter((o) => ["placed", "accepted", "preparing", "ready"].includes(o.status))
      .sort((a, b) => a.id - b.id).map((o) => ({ id: String(o.id), status: o.status }));
  };

  before(async () => {
    try {
      preflight("kitchen");
      await site.start();
      K = site.token("--staff", "kitchen");
      browser = await launch();
      page = await openPage(browser, VIEW, errors, sockets, "kitchen");
      page.on("response", (res) => {
        const url = new URL(res.url());
        if (url.port === String(site.port))
          responses.set(url.pathname, {
            status: res.status(),
            type: (res.headers()["content-type"] || "").split(";")[0],
          });
      });
    } catch (err) {
      fail();
      throw err;
    }
  }, { timeout: 40000 });

  after(async () => {
    try {
      if (failed() && page)
        await shot(page, "kitchen-failure.png").catch(() => {});
      if (browser) await browser.close().catch(() => {});
    } finally {
      await site.stop();
      if (failed()) {
        console.error(`--- sockets:\n${JSON.stringify(sockets, null, 1)}`);
        console.error(`--- ${site.server && site.server.label} log:\n` +
                      `${site.server && site.server.log}`);
      }
      site.cleanup();
    }
  }, { timeout: 15000 });

  step("opens live with no tickets, its files served as such", async () => {
    const res = await page.goto(`${site.base}/kitchen?token=${K}`);
    assert.equal(res.status(), 200);
    assert.equal(await page.title(), "orderbus — kitchen");
    await waitFor("live", async () => ({ ok: (await state()).link === "live" }), 5000);
    for (const [p, type] of [["/kitchen.js", "application/javascript"],
                             ["/common.js", "application/javascript"],
                             ["/kitchen.css", "text/css"], ["/common.css", "text/css"]])
      assert.deepEqual(responses.get(p), { status: 200, type }, `GET ${p}`);
    const s = await waitFor("the stations from the menu", async () => {
      const s = await state();
      return { ...s, ok: s.stations.length > 1 };
    }, 3000);
    assert.equal(s.banner, false, "no banner while connected");
    assert.equal(s.tickets.length, 0);
    assert.equal(s.count, "0 open");
    assert.deepEqual(s.stations, ["All*", "Bar", "Cold", "Fry", "Grill", "Kitchen", "Pastry"]);
    assert.match(sockets[0].url, new RegExp(`/ws\\?token=${K.replace(/\./g, "\\.")}$`),
                 "the token goes on the WebSocket URL");
  }, 10000);

  step("an order shows up within 1 s, with a chime", async () => {
    const before = (await state()).chimes;
    const t0 = Date.now();
    const o = await post(ORDER_1);
    const s = await waitFor("the T12 ticket", async () => {
      const s = await state();
      return { ...s, ok: s.tickets.length === 1 && s.tickets[0].items.length === 1 };
    }, LIVE_MS, 20);
    const ms = Date.now() - t0;
    assert.ok(ms <= LIVE_MS, `ticket on screen ${ms} ms after the POST`);
    assertTicket(s.tickets[0], EXPECT_1, o);
    assert.equal(s.tickets[0].statusText, "New");
    assert.equal(s.tickets[0].bump, "Accept ▸");
    assert.equal(s.tickets[0].key, "1");
    assert.equal(s.tickets[0].age, "ok");
    assert.equal(s.tickets[0].headBg, "rgb(47, 191, 91)", "a fresh ticket is green");
    assert.equal(s.count, "1 open");
    await waitFor("a chime", async () => ({ ok: (await state()).chimes === before + 1 }), 1000);
  }, 5000);

  step("more orders: tickets in placement order, modifiers, notes, all day", async () => {
    const o2 = await post(ORDER_2);
    const o3 = await post(ORDER_BAR);
    const s = await waitFor("three tickets", async () => {
      const s = await state();
      return { ...s, ok: s.tickets.length === 3 };
    }, LIVE_MS);
    assert.deepEqual(s.tickets.map((t) => t.id), placed.map((o) => String(o.id)));
    assert.deepEqual(s.tickets.map((t) => t.key), ["1", "2", "3"]);
    assertTicket(s.tickets[1], EXPECT_2, o2);
    assert.equal(s.tickets[2].title, "Table T5");
    assert.equal(o3.table, "T5");
    assert.deepEqual(s.allday, ["3 Caesar Salad", "2 Burger", "2 House Red (175 ml)",
                                "2 Negroni", "1 Pale Ale", "1 Steak Frites"]);
    const boxes = await page.locator("#tickets article.ticket").evaluateAll((els) =>
      els.map((e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y }; }));
    for (let i = 1; i < boxes.length; i++)
      assert.ok(boxes[i - 1].y < boxes[i].y ||
                (boxes[i - 1].y === boxes[i].y && boxes[i - 1].x < boxes[i].x),
                `ticket ${i} before ticket ${i + 1} in reading order: ${JSON.stringify(boxes)}`);
  }, 5000);

  step("station filter by tap and by F: tickets, lines and all day follow", async () => {
    await page.click('#stations button[data-station="bar"]');
    let s = await state();
    assert.deepEqual(s.tickets.map((t) => t.title), ["Table T4", "Table T5"]);
    assert.deepEqual(s.tickets[0].items.map((i) => i.line), ["2 × House Red (175 ml)"]);
    assert.equal(s.tickets[0].others, "+ 2 items for other stations");
    assert.deepEqual(s.allday, ["2 House Red (175 ml)", "2 Negroni", "1 Pale Ale"]);
    assert.equal(s.count, "2 open");
    await page.keyboard.press("f");            // bar -> cold
    s = await state();
    assert.ok(s.stations.includes("Cold*"), JSON.stringify(s.stations));
    assert.deepEqual(s.tickets.map((t) => t.title), ["Table T4"]);
    assert.deepEqual(s.allday, ["3 Caesar Salad"]);
    await page.click('#stations button[data-station=""]');
    s = await state();
    assert.equal(s.tickets.length, 3);
    assert.ok(s.stations.includes("All*"));
  }, 5000);

  step("bump by keys and by tap; the server agrees", async () => {
    await page.keyboard.press("2");
    let s = await state();
    assert.deepEqual(s.tickets.map((t) => t.selected), [false, true, false]);
    await page.keyboard.press("Enter");
    s = await waitFor("T4 accepted", async () => {
      const s = await state();
      return { ...s, ok: s.tickets[1].status === "accepted" };
    }, LIVE_MS);
    assert.equal(s.tickets[1].statusText, "Accepted");
    assert.equal(s.tickets[1].bump, "Start ▸");
    await page.locator('#tickets article[data-id="1"] button.bump').click();
    await waitFor("T12 accepted", async () =>
      ({ ok: (await state()).tickets[0].status === "accepted" }), LIVE_MS);
    await page.keyboard.press(" ");             // T4 still selected
    await waitFor("T4 preparing", async () =>
      ({ ok: (await state()).tickets[1].status === "preparing" }), LIVE_MS);
    assert.deepEqual(await serverOpen(), [{ id: "1", status: "accepted" },
                                          { id: "2", status: "preparing" },
                                          { id: "3", status: "placed" }]);
  }, 8000);

  step("bump a ticket off (served), recall it with R, Esc puts it away", async () => {
    await page.keyboard.press("3");
    for (const want of ["accepted", "preparing", "ready"]) {
      await page.keyboard.press("b");
      await waitFor(`T5 ${want}`, async () =>
        ({ ok: (await state()).tickets[2].status === want }), LIVE_MS);
    }
    await page.keyboard.press("Enter");           // ready -> served: off the screen
    let s = await waitFor("T5 gone", async () => {
      const s = await state();
      return { ...s, ok: s.tickets.length === 2 };
    }, LIVE_MS);
    assert.equal(s.count, "2 open");
    assert.deepEqual(s.allday, ["3 Caesar Salad", "2 Burger", "2 House Red (175 ml)",
                                "1 Steak Frites"], "served items leave the all-day counts");
    await page.keyboard.press("r");
    s = await state();
    assert.equal(s.tickets.length, 3);
    assert.equal(s.tickets[0].title, "Table T5");
    assert.ok(s.tickets[0].recalled && s.tickets[0].selected);
    assert.equal(s.tickets[0].statusText, "Recalled · Served");
    assert.equal(s.tickets[0].bump, "Dismiss");
    assert.equal(s.count, "2 open", "a recalled ticket is not an open one");
    await page.keyboard.press("Escape");
    s = await state();
    assert.deepEqual(s.tickets.map((t) => t.title), ["Table T12", "Table T4"]);
    const open = await serverOpen();
    assert.deepEqual(open, [{ id: "1", status: "accepted" }, { id: "2", status: "preparing" }]);
  }, 10000);

  step("a bump that lost a race: 409 in words, then the live state", async () => {
    // A second screen whose live events the test holds back, so that it
    // still shows T12 as accepted when the first screen has moved it on.
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    try {
      const p2 = await openPage(ctx, null, errors, sockets, "kitchen-2");
      let hold = false;
      const held = [];
      let toPage = null;
      await p2.routeWebSocket(/\/ws\?/, (ws) => {
        const server = ws.connectToServer();
        toPage = ws;
        server.onMessage((m) => { if (hold) held.push(m); else ws.send(m); });
      });
      await p2.goto(`${site.base}/kitchen?token=${K}`);
      await waitFor("screen 2 shows 2 tickets", async () =>
        ({ ok: (await kitchenState(p2)).tickets.length === 2 }), 5000);
      hold = true;
      // Someone else (a manager's screen) moves T12 on.  (Screen 1 making
      // the same step would not do: its key for "T12 from version 2 to
      // preparing" is the one screen 2 sends, and the server answers a
      // repeated key with the first answer, so there is no conflict.)
      await site.call(K, "POST", "/api/v1/orders/1/status",
                      { status: "preparing", version: 2 }, 200);
      await waitFor("screen 1: T12 preparing", async () =>
        ({ ok: (await state()).tickets[0].status === "preparing" }), LIVE_MS);
      const s2 = await kitchenState(p2);
      assert.equal(s2.tickets[0].status, "accepted", "screen 2 is behind");
      await p2.locator('#tickets article[data-id="1"] button.bump').click();
      const t = await waitFor("the 409 toast", async () => {
        const s = await kitchenState(p2);
        return { ...s, ok: s.toasts.some((x) => /not bumped/.test(x)) };
      }, 3000);
      assert.match(t.toasts.join("\n"), /Table T12 \(#1\) was not bumped: .+\./);
      hold = false;
      for (const m of held.splice(0)) toPage.send(m);
      await waitFor("screen 2 catches up", async () =>
        ({ ok: (await kitchenState(p2)).tickets[0].status === "preparing" }), LIVE_MS);
      assert.deepEqual((await serverOpen())[0], { id: "1", status: "preparing" },
                       "one step, not two");
    } finally {
      await ctx.close();
    }
  }, 15000);

  step("ages are coloured by the thresholds; M mutes the chime", async () => {
    // A screen with short thresholds (yellow after 1.2 s, red after 3.6 s)
    const ctx = await browser.newContext({ viewport: VIEW });
    try {
      const p3 = await openPage(ctx, null, errors, sockets, "kitchen-3");
      await p3.goto(`${site.base}/kitchen?token=${K}&yellow=0.02&red=0.06`);
      await waitFor("screen 3 live", async () =>
        ({ ok: (await kitchenState(p3)).tickets.length === 2 }), 5000);
      await page.keyboard.press("m");
      let s = await state();
      assert.equal(s.mute, "Sound off");
      const chimes = s.chimes;
      const o = await post(ORDER_4);
      const seen = new Set();
      await waitFor("the new ticket green, then yellow, then red", async () => {
        const t = (await kitchenState(p3)).tickets.find((x) => x.id === String(o.id));
        if (t) seen.add(`${t.age} ${t.headBg}`);
        return { ok: t && t.age === "late", seen: [...seen] };
      }, 6000, 100);
      assert.deepEqual([...seen], ["ok rgb(47, 191, 91)", "warn rgb(255, 196, 0)",
                                   "late rgb(229, 57, 53)"]);
      s = await state();
      assert.equal(s.tickets.length, 3);
      assert.equal(s.chimes, chimes, "muted: no chime");
      assert.ok(s.tickets.every((t) => t.age === "ok"), "default thresholds: still green");
      await page.keyboard.press("m");
      assert.equal((await state()).mute, "Sound on");
      // The picture for the README: a busy pass, ages in all three colours
      await p3.setViewportSize(VIEW);
      await p3.evaluate(() => localStorage.clear());
      await p3.goto(`${site.base}/kitchen?token=${K}&yellow=0.04&red=0.1`);
      await waitFor("screen 3 again", async () =>
        ({ ok: (await kitchenState(p3)).tickets.length === 3 }), 5000);
      await post({ table: "T3", items: [{ item_id: "risotto", quantity: 1 },
                                        { item_id: "iced-tea", quantity: 2 }] });
      await waitFor("four tickets", async () =>
        ({ ok: (await kitchenState(p3)).tickets.length === 4 }), LIVE_MS);
      await p3.keyboard.press("2");
      await shot(p3, "kitchen.png");
    } finally {
      await ctx.close();
    }
  }, 20000);

  let lastSeq = null;
  step("server stops: the page says offline, keeps the tickets", async (t) => {
    const frames = sockets.filter((x) => x.page === "kitchen").flatMap((x) => x.frames);
    lastSeq = Math.max(...frames.filter((f) => f.seq !== undefined).map((f) => f.seq));
    const how = await site.stop();
    t.diagnostic(`server exit: ${JSON.stringify(how)}`);
    assert.ok(!how.killed, `orderbus did not exit within ${STOP_MS} ms of SIGTERM`);
    const s = await waitFor("offline + banner", async () => {
      const s = await state();
      return { ...s, ok: s.link === "offline" && s.banner };
    }, OFFLINE_MS);
    assert.match(s.bannerText, /Connection lost/);
    assert.equal(s.tickets.length, 4);
    await shot(page, "kitchen-offline.png");
  }, STOP_MS + OFFLINE_MS + 2000);

  step("restart, an order and a bump meanwhile: exactly the right tickets", async (t) => {
    const before = sockets.length;
    await waitFor("2 refused reconnects", async () => ({
      ok: sockets.slice(before).filter((x) => x.closed && !x.frames.length).length >= 2,
    }), 5000);
    await site.start();
    const o3 = await post(ORDER_3);
    // T12 preparing -> ready, by another screen
    const o1 = await site.call(K, "GET", "/api/v1/orders/1", undefined, 200);
    assert.equal(o1.status, "preparing");
    await site.call(K, "POST", "/api/v1/orders/1/status",
                    { status: "ready", version: o1.version }, 200);
    const want = await serverOpen();
    t.diagnostic(`open on the server: ${JSON.stringify(want)}`);
    assert.equal(want.length, 5);
    await waitFor("live with the server's tickets", async () => {
      const s = await state();
      const seen = s.tickets.map((x) => ({ id: x.id, status: x.status }));
      return { ok: s.link === "live" && !s.banner &&
                   JSON.stringify(seen) === JSON.stringify(want), seen };
    }, RECOVER_MS);
    await sleep(1000);                 // anything late: a double, a stale snapshot
    const s = await state();
    assert.deepEqual(s.tickets.map((x) => ({ id: x.id, status: x.status })), want);
    assert.equal(new Set(s.tickets.map((x) => x.id)).size, s.tickets.length, "none doubled");
    assert.equal(s.count, "5 open");
    assert.equal(s.tickets.at(-1).title, "Table T9");
    assert.equal(s.tickets.at(-1).id, String(o3.id));
    assert.equal(s.tickets[0].statusText, "Ready");
    const resumed = sockets.slice(before).filter((x) => x.page === "kitchen" && x.frames.length);
    assert.equal(resumed.length, 1, "one socket got through");
    assert.match(resumed[0].url, new RegExp(`&after_seq=${lastSeq}$`));
    assert.ok(resumed[0].frames.every((f) => f.type === "event"),
              `resumed with events only: ${JSON.stringify(resumed[0].frames)}`);
  }, START_MS + RECOVER_MS + 8000);

  step("on a phone: one column, no sideways scroll", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(200);
    await assertNoSideScroll(page, "kitchen on a phone");
    const boxes = await page.locator("#tickets article.ticket").evaluateAll((els) =>
      els.map((e) => { const r = e.getBoundingClientRect(); return { x: r.x, w: r.width }; }));
    assert.ok(boxes.every((b) => b.x === boxes[0].x && b.w > 300), JSON.stringify(boxes));
    await shot(page, "kitchen-phone.png");
    await page.setViewportSize(VIEW);
  }, 5000);

  step("a wrong or missing token is explained in words", async () => {
    const p = await openPage(browser, VIEW, [], [], "kitchen-bad");
    try {
      await p.goto(`${site.base}/kitchen?token=${K.slice(0, -3)}xyz`);
      const s = await waitFor("no access", async () => {
        const s = await kitchenState(p);
        return { ...s, ok: s.banner && s.link === "no access" };
      }, 5000);
      assert.match(s.bannerText, /access link is not valid/);
      await p.goto(`${site.base}/kitchen`);
      assert.match(await p.locator("main").innerText(), /needs its access link/);
    } finally {
      await p.close();
    }
  }, 10000);

  step("no script errors in the pages", async () => {
    assert.deepEqual(errors, []);
  }, 1000);
});
