// Real-browser test of the table pad (web/pad.*) with the kitchen display
// beside it, against `orderbus up`, through Debian's chromium.
//
//   ORDERBUS_BIN=/path/to/orderbus SCREENSHOT_DIR=/tmp/shots \
//     node --test tests/browser/pad.test.mjs
//
// Two pads at table T1 (two browser contexts: two devices, each with its
// own local storage) and a kitchen screen.  The pads share the cart live;
// one places the order and the kitchen shows it within a second; the
// kitchen bumps it and the pads show each status; an 86'd dish greys out;
// the server restarts under all three pages, which end exact; and the
// offline queue delivers each order once: with the network off, with an
// answer lost on the way back, and across closing the pad.
// Screenshots: pad.png (the README's), pad-phone.png, pad-item.png,
// pad-offline.png.

import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import {
  LIVE_MS, START_MS, Site, assertNoSideScroll, guard, launch, openPage,
  preflight, shot, sleep, stepper, waitFor,
} from "./lib.mjs";

const TABLET = { width: 1366, height: 1024 };   // a tablet, landscape
const PHONE = { width: 390, height: 844 };
const RECOVER_MS = 10000;

function padState(page) {
  return page.evaluate(() => {
    const visible = (el) => !!el && !el.hidden &&
      getComputedStyle(el).display !== "none" && el.offsetParent !== null;
    const text = (root, sel) => {
      const el = root.querySelector(sel);
      return el ? el.textContent.trim() : null;
    };
    const banner = document.getElementById("banner");
    const place = document.getElementById("place");
    let stored = null;
    try { stored = JSON.parse(localStorage.getItem("ob.pad.pending.T1")); } catch { /* none */ }
    return {
      link: text(document, "#link"),
      banner: visible(banner),
      bannerText: banner.innerText.trim(),
      table: text(document, "#table"),
      restaurant: text(document, "#restaurant"),
      cats: [...document.querySelectorAll("#cats button")]
        .map((b) => `${b.textContent}${b.getAttribute("aria-pressed") === "true" ? "*" : ""}`),
      items: [...document.querySelectorAll("#items .item")].map((b) => ({
        id: b.dataset.id, name: text(b, ".i-name"), price: text(b, ".i-price"),
        soldOut: b.classList.contains("sold-out"), disabled: b.disabled,
      })),
      lines: [...document.querySelectorAll("#lines li.line")].map((li) => ({
        item: li.dataset.item, name: text(li, ".l-name"), qty: text(li, ".l-qty"),
        price: text(li, ".l-price"), mods: text(li, ".l-mods"), note: text(li, ".l-note"),
        soldOut: li.classList.contains("sold-out"),
      })),
      subtotal: text(document, "#subtotal"),
      place: { text: place.textContent.trim(), disabled: place.disabled },
      placeHint: visible(document.getElementById("placeHint"))
        ? text(document, "#placeHint") : null,
      pending: visible(document.getElementById("pending"))
        ? document.getElementById("pending").innerText.trim() : null,
      orders: [...document.querySelectorAll("#orderList li.order")].map((li) => ({
        id: li.dataset.id, status: li.dataset.status, statusText: text(li, ".status"),
        items: text(li, ".o-items"),
      })),
      toasts: [...document.querySelectorAll("#toasts .toast")].map((t) => t.textContent),
      dialog: document.getElementById("itemDialog").open ? {
        name: text(document, "#dlgName"), add: text(document, "#dlgAdd"),
        addDisabled: document.getElementById("dlgAdd").disabled,
        soldOut: visible(document.getElementById("dlgSoldOut")),
        error: visible(document.getElementById("dlgError")) ? text(document, "#dlgError") : null,
      } : null,
      stored,
    };
  });
}

function ticketsOf(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#tickets article.ticket")].map((t) => ({
      id: t.dataset.id, status: t.dataset.status,
      title: t.querySelector(".t-table").textContent.trim(),
    })));
}

const linesBrief = (s) => s.lines.map((l) => `${l.qty} ${l.name}`);
const ordersBrief = (s) => s.orders.map((o) => `${o.id} ${o.status}`);

describe("table pads and the kitchen in a real browser", { timeout: 150000 }, () => {
  const site = new Site("pad");
  guard(site);
  const { step, failed, fail } = stepper();
  let browser, ctxA, ctxB, ctxK, A, B, kitchen, P, K;
  const errors = [];
  const sockets = [];
  const orderPosts = [];      // {page, key, status} of every POST .../cart/order

  const sA = () => padState(A);
  const sB = () => padState(B);
  const padUrl = () => `${site.base}/pad?token=${P}`;

  const tOrders = async () => {
    const { orders } = await site.call(K, "GET", "/api/v1/orders?table=T1&limit=100", undefined, 200);
    return orders.sort((a, b) => a.id - b.id);
  };

  // Open the item page of a dish, choose options, add it.
  async function addItem(page, cat, id, { mods = [], qty = 1, note } = {}) {
    await page.click(`#cats button[data-cat="${cat}"]`);
    await page.click(`#items .item[data-id="${id}"]`);
    for (const m of mods) await page.check(`#dlgModList input[value="${m}"]`);
    for (let i = 1; i < qty; i++) await page.click("#dlgPlus");
    if (note) await page.fill("#dlgNote", note);
    await page.click("#dlgAdd");
    await waitFor(`${id} added`, async () => {
      const s = await padState(page);
      return { ok: !s.dialog, dialog: s.dialog };
    }, 3000);
  }

  const watchOrderPosts = (page, label) => page.on("request", (req) => {
    if (req.method() === "POST" && req.url().endsWith("/cart/order"))
      orderPosts.push({ page: label, key: req.headers()["idempotency-key"] });
  });

  before(async () => {
    try {
      preflight("pad");
      await site.start();
      P = site.token("--table", "T1");
      K = site.token("--staff", "kitchen");
      browser = await launch();
      ctxA = await browser.newContext({ viewport: TABLET });
      ctxB = await browser.newContext({ viewport: PHONE, hasTouch: true, isMobile: true });
      ctxK = await browser.newContext({ viewport: TABLET });
      A = await openPage(ctxA, null, errors, sockets, "padA");
      B = await openPage(ctxB, null, errors, sockets, "padB");
      kitchen = await openPage(ctxK, null, errors, sockets, "kitchen");
      watchOrderPosts(A, "padA");
    } catch (err) {
      fail();
      throw err;
    }
  }, { timeout: 40000 });

  after(async () => {
    try {
      if (failed()) {
        for (const [p, n] of [[A, "pad-failure-a.png"], [B, "pad-failure-b.png"],
                              [kitchen, "pad-failure-kitchen.png"]])
          if (p && !p.isClosed()) await shot(p, n).catch(() => {});
      }
      if (browser) await browser.close().catch(() => {});
    } finally {
      await site.stop();
      if (failed()) {
        console.error(`--- order POSTs: ${JSON.stringify(orderPosts)}`);
        console.error(`--- sockets:\n${JSON.stringify(sockets.map((s) =>
          ({ ...s, frames: s.frames.map((f) => `${f.type}:${f.seq}:${f.event || ""}`) })))}`);
        console.error(`--- ${site.server && site.server.label} log:\n` +
                      `${site.server && site.server.log}`);
      }
      site.cleanup();
    }
  }, { timeout: 15000 });

  step("two pads at T1 and the kitchen open live; the menu has prices", async () => {
    for (const p of [A, B]) {
      const res = await p.goto(padUrl());
      assert.equal(res.status(), 200, "GET /pad");
    }
    await kitchen.goto(`${site.base}/kitchen?token=${K}`);
    for (const [p, what] of [[A, "pad A"], [B, "pad B"]]) {
      const s = await waitFor(`${what} live with the menu`, async () => {
        const s = await padState(p);
        return { ...s, ok: s.link === "connected" && s.items.length > 0 };
      }, 5000);
      assert.equal(s.table, "Table T1");
      assert.equal(s.restaurant, "Bistro 92");
      assert.deepEqual(s.cats, ["Starters*", "Mains", "Sides", "Desserts",
                                "Soft Drinks & Coffee", "Wine & Beer"]);
      assert.deepEqual(s.items[0], { id: "soup", name: "French Onion Soup", price: "9.50",
                                     soldOut: false, disabled: false });
      assert.equal(s.lines.length, 0);
      assert.equal(s.place.disabled, true);
      assert.equal(s.banner, false);
    }
    await A.click('#cats button[data-cat="sides"]');
    const s = await sA();
    const asparagus = s.items.find((i) => i.id === "asparagus");
    assert.ok(asparagus.soldOut && asparagus.disabled, "an item the menu has off is greyed");
    await waitFor("kitchen live", async () =>
      ({ ok: (await kitchen.locator("#link").textContent()) === "live" }), 5000);
  }, 15000);

  step("pad A adds a burger with options and a note; pad B sees it within 1 s", async () => {
    await A.click('#cats button[data-cat="mains"]');
    await A.click('#items .item[data-id="burger"]');
    await A.check('#dlgModList input[value="cheese"]');
    await A.check('#dlgModList input[value="bacon"]');
    await A.click("#dlgPlus");
    await A.fill("#dlgNote", "no pickles");
    let s = await sA();
    assert.deepEqual(s.dialog, { name: "Burger", add: "Add 2 to order · 41.00",
                                 addDisabled: false, soldOut: false, error: null });
    const t0 = Date.now();
    await A.click("#dlgAdd");
    const want = [{ item: "burger", name: "Burger", qty: "2", price: "41.00",
                    mods: "Extra cheese, Bacon", note: "“no pickles”", soldOut: false }];
    s = await waitFor("pad B shows the burger", async () => {
      const s = await sB();
      return { ...s, ok: s.lines.length === 1 };
    }, LIVE_MS, 20);
    assert.ok(Date.now() - t0 <= LIVE_MS, `on pad B ${Date.now() - t0} ms after the tap`);
    assert.deepEqual(s.lines, want);
    assert.equal(s.subtotal, "41.00");
    assert.deepEqual((await sA()).lines, want);
  }, 8000);

  step("pad B changes the quantity and adds a drink, pad A removes it: both follow", async () => {
    await B.locator("#lines li.line").first().getByRole("button", { name: "One more Burger" }).click();
    await waitFor("pad A: 3 burgers", async () =>
      ({ ok: linesBrief(await sA()).join() === "3 Burger" }), LIVE_MS);
    await addItem(B, "drinks", "cola", { mods: ["no-ice"] });
    let s = await waitFor("pad A: the cola", async () => {
      const s = await sA();
      return { ...s, ok: linesBrief(s).join() === "3 Burger,1 Cola" };
    }, LIVE_MS);
    assert.equal(s.subtotal, "65.00");
    await A.locator('#lines li.line[data-item="cola"] button.remove').click();
    s = await waitFor("pad B: cola gone", async () => {
      const s = await sB();
      return { ...s, ok: linesBrief(s).join() === "3 Burger" };
    }, LIVE_MS);
    assert.equal(s.subtotal, "61.50");
    assert.equal((await sA()).subtotal, "61.50");
  }, 10000);

  let first;
  step("pad A places the order: the kitchen shows it within 1 s, the pads show it placed", async () => {
    await A.fill("#orderNote", "birthday");
    const t0 = Date.now();
    await A.click("#place");
    const tickets = await waitFor("the ticket in the kitchen", async () => {
      const t = await ticketsOf(kitchen);
      return t.length === 1 ? t : null;
    }, LIVE_MS, 20);
    const ms = Date.now() - t0;
    assert.ok(ms <= LIVE_MS, `ticket in the kitchen ${ms} ms after the tap`);
    assert.equal(tickets[0].title, "Table T1");
    const orders = await tOrders();
    assert.equal(orders.length, 1, "one order");
    first = orders[0];
    assert.equal(first.note, "birthday");
    assert.equal(first.total_cents, 6150 + first.tax_cents);
    for (const [get, what] of [[sA, "A"], [sB, "B"]]) {
      const s = await waitFor(`pad ${what}: placed, cart empty`, async () => {
        const s = await get();
        return { ...s, ok: s.orders.length === 1 && s.lines.length === 0 };
      }, LIVE_MS);
      assert.deepEqual(s.orders, [{ id: String(first.id), status: "placed",
                                    statusText: "Placed", items: "3 × Burger" }]);
      assert.equal(s.pending, null);
      assert.equal(s.stored, null, "nothing left in local storage");
    }
    assert.equal(orderPosts.length, 1);
  }, 8000);

  step("the kitchen bumps it: both pads show accepted, then preparing", async () => {
    for (const [want, word] of [["accepted", "Accepted"], ["preparing", "Preparing"]]) {
      const t0 = Date.now();
      await kitchen.keyboard.press("Enter");
      for (const [get, what] of [[sA, "A"], [sB, "B"]]) {
        const s = await waitFor(`pad ${what}: ${want}`, async () => {
          const s = await get();
          return { ...s, ok: s.orders[0] && s.orders[0].status === want };
        }, LIVE_MS);
        assert.equal(s.orders[0].statusText, word);
      }
      assert.ok(Date.now() - t0 <= 2 * LIVE_MS);
    }
  }, 8000);

  step("an 86'd dish greys out on both pads, in the menu and in the cart", async () => {
    await addItem(B, "sides", "fries");
    await waitFor("pad A: fries in the cart", async () =>
      ({ ok: linesBrief(await sA()).join() === "1 Fries" }), LIVE_MS);
    await A.click('#cats button[data-cat="sides"]');
    await B.click('#cats button[data-cat="sides"]');
    const t0 = Date.now();
    await site.call(K, "POST", "/api/v1/menu/items/fries/availability", { available: false }, 200);
    for (const [get, what] of [[sA, "A"], [sB, "B"]]) {
      const s = await waitFor(`pad ${what}: fries sold out`, async () => {
        const s = await get();
        const f = s.items.find((i) => i.id === "fries");
        return { ...s, ok: f && f.soldOut && f.disabled && s.lines[0].soldOut };
      }, LIVE_MS);
      assert.ok(Date.now() - t0 <= LIVE_MS);
      assert.equal(s.place.disabled, true, "no ordering a sold-out dish");
      assert.equal(s.placeHint, "Fries has sold out: remove it to place the order.");
    }
    const looks = await A.locator('#items .item[data-id="fries"]').evaluate((el) => ({
      filter: getComputedStyle(el).filter, badge: el.querySelector(".i-badge").textContent,
    }));
    assert.deepEqual(looks, { filter: "grayscale(1)", badge: "Sold out" });
    await B.locator('#lines li.line[data-item="fries"] button.remove').click();
    await waitFor("cart empty on A", async () => ({ ok: (await sA()).lines.length === 0 }), LIVE_MS);
    await site.call(K, "POST", "/api/v1/menu/items/fries/availability", { available: true }, 200);
    await waitFor("fries back on A", async () =>
      ({ ok: !(await sA()).items.find((i) => i.id === "fries").soldOut }), LIVE_MS);
  }, 10000);

  step("the server restarts: a waiting order goes once, all pages end exact", async (t) => {
    await addItem(A, "drinks", "espresso", { mods: ["double"] });
    await waitFor("espresso on B", async () =>
      ({ ok: linesBrief(await sB()).join() === "1 Espresso" }), LIVE_MS);
    const before = sockets.length;
    const how = await site.stop();
    assert.ok(!how.killed, "orderbus exits on SIGTERM");
    for (const [get, what] of [[sA, "A"], [sB, "B"]]) {
      const s = await waitFor(`pad ${what} offline`, async () => {
        const s = await get();
        return { ...s, ok: s.link === "offline" && s.banner };
      }, 5000);
      assert.match(s.bannerText, /No connection to the restaurant/);
    }
    await A.click("#place");
    const s = await waitFor("the order waits", async () => {
      const s = await sA();
      return { ...s, ok: s.pending && /waiting to be sent/.test(s.pending) };
    }, 5000);
    assert.match(s.pending, /will be sent\s+automatically/);
    assert.ok(s.stored && s.stored.key, "the order is in local storage");
    const key = s.stored.key;
    await shot(A, "pad-offline.png");
    await site.start();
    // Meanwhile the kitchen (another screen) marks the first order ready.
    const o1 = await site.call(K, "GET", `/api/v1/orders/${first.id}`, undefined, 200);
    await site.call(K, "POST", `/api/v1/orders/${first.id}/status`,
                    { status: "ready", version: o1.version }, 200);
    const want = await waitFor("two orders on the server", async () => {
      const o = await tOrders();
      return o.length === 2 ? o : null;
    }, RECOVER_MS);
    assert.equal(want[1].idempotency_key, key, "the waiting order, with its key");
    const wantBrief = [`${want[1].id} placed`, `${want[0].id} ready`];
    for (const [get, what] of [[sA, "A"], [sB, "B"]])
      await waitFor(`pad ${what} exact`, async () => {
        const s = await get();
        return { ...s, ok: s.link === "connected" && !s.banner && !s.pending &&
                     ordersBrief(s).join() === wantBrief.join() && s.lines.length === 0 };
      }, RECOVER_MS);
    await waitFor("kitchen exact", async () => {
      const k = await ticketsOf(kitchen);
      return { ok: k.map((x) => `${x.id} ${x.status}`).join() ===
        [`${want[0].id} ready`, `${want[1].id} placed`].join(), k };
    }, RECOVER_MS);
    await sleep(1200);               // anything late: a double, a stale snapshot
    for (const get of [sA, sB]) {
      const s = await get();
      assert.deepEqual(ordersBrief(s), wantBrief);
      assert.equal(s.stored, null);
    }
    assert.equal((await ticketsOf(kitchen)).length, 2);
    assert.equal((await tOrders()).length, 2, "placed once");
    for (const label of ["padA", "padB", "kitchen"]) {
      const got = sockets.slice(before).filter((x) => x.page === label && x.frames.length);
      t.diagnostic(`${label}: ${got.map((x) => x.url.replace(/token=[^&]+/, "token=…"))}`);
      assert.equal(got.length, 1, `${label}: one socket got through`);
      assert.match(got[0].url, /&after_seq=\d+$/, `${label} resumed`);
    }
  }, 5000 + START_MS + 3 * RECOVER_MS);

  step("network off: the order waits, goes once when the network is back", async () => {
    await addItem(A, "drinks", "lemonade");
    await waitFor("lemonade on B", async () =>
      ({ ok: linesBrief(await sB()).join() === "1 House Lemonade" }), LIVE_MS);
    const posts = orderPosts.length;
    await ctxA.setOffline(true);
    await waitFor("pad A offline", async () => ({ ok: (await sA()).link === "offline" }), 3000);
    await A.click("#place");
    const s = await waitFor("waiting", async () => {
      const s = await sA();
      return { ...s, ok: s.pending && /waiting/.test(s.pending) };
    }, 3000);
    const key = s.stored.key;
    await sleep(1500);
    assert.equal((await tOrders()).length, 2, "nothing went while offline");
    await ctxA.setOffline(false);
    const orders = await waitFor("the order on the server", async () => {
      const o = await tOrders();
      return o.length >= 3 ? o : null;
    }, 5000);
    await waitFor("pad A shows it", async () => {
      const s = await sA();
      return { ok: !s.pending && s.orders.length === 3 && s.link === "connected" };
    }, 5000);
    await sleep(800);
    assert.equal((await tOrders()).length, 3, "one order, not two");
    assert.equal(orders[2].idempotency_key, key);
    assert.ok(orderPosts.slice(posts).every((p) => p.key === key), "every try had the one key");
    assert.equal((await sB()).orders.length, 3);
  }, 20000);

  step("the answer is lost on the way back: the retry gets the same order", async () => {
    await addItem(A, "desserts", "ice-cream", { mods: ["sauce"] });
    await waitFor("ice cream on B", async () =>
      ({ ok: linesBrief(await sB()).join() === "1 Ice Cream" }), LIVE_MS);
    const posts = orderPosts.length;
    let dropped = 0;
    // The first try reaches the server, which places the order; the page
    // never hears back.
    await A.route("**/cart/order", async (route) => {
      if (dropped++ === 0) {
        await route.fetch();
        await route.abort("connectionreset");
      } else {
        await route.continue();
      }
    });
    try {
      await A.click("#place");
      await waitFor("placed after a retry", async () => {
        const s = await sA();
        return { ok: !s.pending && s.orders.length === 4 && s.stored === null, s };
      }, 6000);
    } finally {
      await A.unroute("**/cart/order");
    }
    await sleep(500);
    const orders = await tOrders();
    assert.equal(orders.length, 4, "one order, not two");
    const tries = orderPosts.slice(posts);
    assert.ok(tries.length >= 2, `retried: ${JSON.stringify(tries)}`);
    assert.ok(tries.every((p) => p.key === orders[3].idempotency_key), "with the same key");
  }, 15000);

  step("a 409 on a retry whose first try got through: the pad finds its order", async () => {
    // The server answers a repeated key with the order (above), so this
    // 409 is made up here: the page must not take it for a failure while
    // its order is in fact placed.
    await addItem(A, "desserts", "tarte-tatin");
    await waitFor("tarte tatin on B", async () =>
      ({ ok: linesBrief(await sB()).join() === "1 Tarte Tatin" }), LIVE_MS);
    let n = 0;
    await A.route("**/cart/order", async (route) => {
      if (n++ === 0) {
        await route.fetch();
        await route.abort("connectionreset");
      } else {
        await route.fulfill({
          status: 409, contentType: "application/json",
          body: JSON.stringify({ error: { code: "conflict", field: "items",
            message: "the cart of table T1 is empty (already ordered?)" } }),
        });
      }
    });
    try {
      await A.click("#place");
      const s = await waitFor("placed, found by its key", async () => {
        const s = await sA();
        return { ...s, ok: !s.pending && s.stored === null && s.orders.length === 5 };
      }, 6000);
      assert.ok(s.toasts.some((x) => /^Order #\d+ sent to the kitchen\.$/.test(x)),
                s.toasts.join("|"));
      assert.ok(!s.toasts.some((x) => /another pad/.test(x)), s.toasts.join("|"));
    } finally {
      await A.unroute("**/cart/order");
    }
    assert.equal((await tOrders()).length, 5);
  }, 15000);

  step("both pads press Place order at once: one order, the other pad says so", async (t) => {
    await addItem(B, "desserts", "creme-brulee");
    await waitFor("crème brûlée on A", async () =>
      ({ ok: linesBrief(await sA()).join() === "1 Crème Brûlée" }), LIVE_MS);
    const bPosts = [];
    B.on("request", (req) => {
      if (req.method() === "POST" && req.url().endsWith("/cart/order")) bPosts.push(req);
    });
    const aPosts = orderPosts.length;
    await Promise.all([A.evaluate(() => document.getElementById("place").click()),
                       B.evaluate(() => document.getElementById("place").click())]);
    const orders = await waitFor("one more order", async () => {
      const o = await tOrders();
      return o.length === 6 ? o : null;
    }, 5000);
    for (const [get, what] of [[sA, "A"], [sB, "B"]])
      await waitFor(`pad ${what} settles`, async () => {
        const s = await get();
        return { ok: !s.pending && s.stored === null && s.orders.length === 6 &&
                     s.lines.length === 0, s };
      }, 5000);
    await sleep(500);
    assert.equal((await tOrders()).length, 6, "one order");
    const sent = { A: orderPosts.length - aPosts, B: bPosts.length };
    t.diagnostic(`order requests sent: ${JSON.stringify(sent)}`);
    if (sent.A && sent.B) {
      // Both went: the one that lost says the other pad ordered
      const loser = orders[5].idempotency_key === orderPosts.at(-1).key ? sB : sA;
      const s = await loser();
      assert.ok(s.toasts.some((x) => /just been placed from another pad/.test(x)),
                `${JSON.stringify(sent)}: ${s.toasts.join("|")}`);
    }
  }, 15000);

  step("the pad is closed while the order waits: reopened, it sends it once", async () => {
    await addItem(A, "bar", "spritz");
    await waitFor("spritz on B", async () =>
      ({ ok: linesBrief(await sB()).join() === "1 Aperol Spritz" }), LIVE_MS);
    await A.route("**/cart/order", (route) => route.abort("internetdisconnected"));
    await A.click("#place");
    const s = await waitFor("waiting", async () => {
      const s = await sA();
      return { ...s, ok: s.pending && /waiting/.test(s.pending) };
    }, 3000);
    const key = s.stored.key;
    await A.close();
    assert.equal((await tOrders()).length, 6);
    A = await openPage(ctxA, null, errors, sockets, "padA");
    watchOrderPosts(A, "padA");
    await A.goto(padUrl());
    await waitFor("sent on reopening", async () => {
      const s = await sA();
      return { ok: !s.pending && s.stored === null && s.orders.length === 7, s };
    }, 5000);
    await sleep(500);
    const orders = await tOrders();
    assert.equal(orders.length, 7);
    assert.equal(orders[6].idempotency_key, key);
  }, 15000);

  step("errors in words: a dish sold out while open, no network", async () => {
    await A.click('#cats button[data-cat="mains"]');
    await A.click('#items .item[data-id="salmon"]');
    await site.call(K, "POST", "/api/v1/menu/items/salmon/availability", { available: false }, 200);
    let s = await waitFor("the item page says sold out", async () => {
      const s = await sA();
      return { ...s, ok: s.dialog && s.dialog.soldOut };
    }, LIVE_MS);
    assert.equal(s.dialog.addDisabled, true);
    assert.equal(s.dialog.add, "Sold out");
    await A.click("#dlgClose");
    await site.call(K, "POST", "/api/v1/menu/items/salmon/availability", { available: true }, 200);
    await waitFor("salmon back", async () =>
      ({ ok: !(await sA()).items.find((i) => i.id === "salmon").soldOut }), LIVE_MS);
    await A.route("**/cart/items", (route) => route.abort("internetdisconnected"));
    try {
      await A.click('#items .item[data-id="salmon"]');
      await A.click("#dlgAdd");
      s = await waitFor("an error on the item page", async () => {
        const s = await sA();
        return { ...s, ok: s.dialog && s.dialog.error };
      }, 5000);
      assert.equal(s.dialog.error, "Couldn't add Seared Salmon to the order: no connection " +
                   "to the restaurant's server. Check the Wi-Fi and try again.");
      await A.click("#dlgClose");
    } finally {
      await A.unroute("**/cart/items");
    }
  }, 15000);

  step("screenshots: a tablet and a phone, cart and orders", async () => {
    await addItem(B, "starters", "caesar", { mods: ["chicken"], note: "dressing on the side" });
    await addItem(B, "drinks", "lemonade", { qty: 2 });
    // Orders at several stages, newest first on the pad
    const o = await tOrders();
    const move = async (x, ...steps) => {
      let v = x.version;
      for (const status of steps)
        v = (await site.call(K, "POST", `/api/v1/orders/${x.id}/status`,
                             { status, version: v }, 200)).version;
    };
    await move(o.at(-1), "accepted", "preparing");
    await move(o.at(-2), "accepted", "preparing", "ready");
    await move(o.at(-3), "accepted");
    await waitFor("A shows the statuses", async () =>
      ({ ok: ordersBrief(await sA()).slice(0, 2).join() ===
        `${o.at(-1).id} preparing,${o.at(-2).id} ready` }), LIVE_MS);
    await waitFor("A shows the cart", async () => ({ ok: (await sA()).lines.length === 2 }), LIVE_MS);
    await A.click('#cats button[data-cat="mains"]');
    await A.evaluate(() => window.scrollTo(0, 0));
    await sleep(300);
    for (const p of [A, B])
      await p.evaluate(() => document.getElementById("toasts")?.replaceChildren());
    await shot(A, "pad.png");
    await assertNoSideScroll(B, "pad on a phone");
    assert.ok(await B.locator("#cartBar").isVisible(), "the cart bar on a phone");
    assert.match(await B.locator("#cartBar").innerText(), /3 items/);
    await B.click('#cats button[data-cat="mains"]');
    await B.evaluate(() => window.scrollTo(0, 0));
    await shot(B, "pad-phone.png");
    // The item page, on the phone
    await B.click('#items .item[data-id="steak-frites"]');
    await B.check('#dlgModList input[value="medium-rare"]');
    await B.check('#dlgModList input[value="peppercorn"]');
    await B.fill("#dlgNote", "sauce on the side");
    await shot(B, "pad-item.png");
    await B.click("#dlgClose");
    await assertNoSideScroll(A, "pad on a tablet");
  }, 15000);

  step("no script errors in the pages", async () => {
    assert.deepEqual(errors, []);
  }, 1000);
});
