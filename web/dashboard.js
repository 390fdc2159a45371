// Manager dashboard: live counters (open orders, orders and revenue
// today, median ticket time), orders per hour, top items, and the 86
// board.  Today's orders come from GET /api/v1/orders?from_ms=<midnight>
// (every page) and are kept current by the live events; the counters and
// charts are computed from them in the page, so they move the moment an
// order does.  When the server answers GET /api/v1/report (manager;
// docs/reports.md) the page takes the charts and the ticket times from it
// instead, fetched again shortly after every change; the local figures
// follow the report's rules (cancelled orders left out, tax included,
// nearest-rank percentiles, top items by quantity then item id), so the
// two agree.
//
// URL: /dashboard?token=<manager token>   (a kitchen token shows it too,
//      without reports)
"use strict";

(() => {
  const { h, $, api, explain, toast, money, duration } = OB;
  const me = OB.requireToken("manager");
  if (!me) return;
  if (me.role === "pad") {
    document.body.replaceChildren(h("main.no-token",
      h("h1", "This is not a manager link"),
      h("p", `This link is for table ${me.table}'s pad. The dashboard needs a manager link.`)));
    return;
  }

  const OPEN = ["placed", "accepted", "preparing", "ready"];
  const WORD = { placed: "new", accepted: "accepted", preparing: "preparing", ready: "ready" };

  let dayStart = startOfDay(Date.now());
  const today = new Map();      // id -> order created today (any status)
  const open = new Map();       // id -> open order (any day)
  const versions = new Map();
  let menu = null;
  const avail = new Map();
  const toggling = new Set();
  const liveAvail = new Map();  // from events since the snapshot: newer than a fetched menu
  let report = null;            // the last GET /api/v1/report answer
  let reportsMissing = false;   // the server has no reports route
  let listing = false;

  function startOfDay(ms) {
    const d = new Date(ms);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }

  // ---------------------------------------------------------------------
  // Data

  function applyOrder(o) {
    const seen = versions.get(o.id);
    if (seen !== undefined && seen >= o.version) return false;
    versions.set(o.id, o.version);
    if (OPEN.includes(o.status)) open.set(o.id, o);
    else open.delete(o.id);
    if (o.created_ms >= dayStart) today.set(o.id, o);
    return true;
  }

  // Every order created today, newest first, page by page.  Merged by
  // version with what the events have already brought.
  async function loadToday() {
    if (listing) return;
    listing = true;
    try {
      let cursor = null;
      for (let page = 0; page < 50; page++) {
        let q = `from_ms=${dayStart}&limit=1000`;
        if (cursor) q += `&cursor=${encodeURIComponent(cursor)}`;
        const { data } = await api("GET", `/api/v1/orders?${q}`, { timeoutMs: 15000 });
        for (const o of data.orders || []) applyOrder(o);
        if (!data.next_cursor) break;
        cursor = data.next_cursor;
      }
      scheduleRender();
    } catch (err) {
      toast(explain(err, "load today's orders"), "error");
    } finally {
      listing = false;
    }
  }

  async function loadReport() {
    if (reportsMissing || me.role !== "manager") return;
    try {
      const { data } = await api("GET",
        `/api/v1/report?from=${dayStart}&to=${dayStart + 86400000}`);
      report = data;
    } catch (err) {
      // No such route on this server (or not for this token): compute.
      if ([403, 404, 405].includes(err.status)) reportsMissing = true;
      report = null;
    }
    scheduleRender();
  }

  // Fetch the report again soon after a change: a quarter of a second
  // after it, at most once a second, one request at a time, and once more
  // after a request if something changed while it ran.
  let reportTimer = null;
  let reportBusy = false;
  let reportDirty = false;
  let reportStarted = 0;
  function reportSoon() {
    if (reportsMissing) return;
    if (reportBusy) { reportDirty = true; return; }
    if (reportTimer) return;
    const wait = Math.max(250, reportStarted + 1000 - Date.now());
    reportTimer = setTimeout(async () => {
      reportTimer = null;
      reportBusy = true;
      reportStarted = Date.now();
      try { await loadReport(); } finally { reportBusy = false; }
      if (reportDirty) { reportDirty = false; reportSoon(); }
    }, wait);
  }

  async function loadMenu() {
    try {
      const { data } = await api("GET", "/api/v1/menu");
      menu = data;
      for (const c of menu.categories || [])
        for (const it of c.items || [])
          if (!toggling.has(it.id)) avail.set(it.id, it.available !== false);
      for (const [id, ok] of liveAvail) if (!toggling.has(id)) avail.set(id, ok);
      renderBoard();
      $("#restaurant").textContent = menu.name || "Dashboard";
    } catch (err) {
      $("#menuBoard").replaceChildren(h("p.error", explain(err, "load the menu")));
    }
  }

  // ---------------------------------------------------------------------
  // Numbers

  // Nearest rank, as the report: the value at rank ceil(q * count).
  function quantile(sorted, q) {
    if (!sorted.length) return null;
    return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
  }

  function computed() {
    const orders = [...today.values()];
    const kept = orders.filter((o) => o.status !== "cancelled");
    const revenue = kept.reduce((s, o) => s + o.total_cents, 0);
    const net = kept.reduce((s, o) => s + o.subtotal_cents, 0);
    // Ticket time: placed until ready.
    const times = kept
      .filter((o) => o.status_times && o.status_times.ready)
      .map((o) => o.status_times.ready - (o.status_times.placed || o.created_ms))
      .sort((a, b) => a - b);
    const hours = new Map();
    for (const o of kept) {
      const hr = new Date(o.created_ms).getHours();
      hours.set(hr, (hours.get(hr) || 0) + 1);
    }
    const items = new Map();
    for (const o of kept.sort((a, b) => a.created_ms - b.created_ms || a.id - b.id))
      for (const it of o.items) {
        const id = it.item_id || it.name;
        const c = items.get(id) || { id, name: it.name, n: 0 };
        c.n += it.quantity;
        c.name = it.name;            // the newest order's name for it
        items.set(id, c);
      }
    return {
      count: kept.length, cancelled: orders.length - kept.length, revenue, net,
      median: quantile(times, 0.5), p90: quantile(times, 0.9), timed: times.length,
      hours,
      top: [...items.values()]
        .sort((a, b) => b.n - a.n || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, 10),
    };
  }

  // The charts and ticket times from the report, when there is one
  // (docs/reports.md); the counters stay live from the orders.  Whatever
  // the answer lacks comes from the computation.
  function fromReport(c) {
    const r = report;
    if (!r || r.from_ms !== dayStart) return c;
    const out = { ...c };
    if (Array.isArray(r.per_hour)) {
      out.hours = new Map();
      for (const b of r.per_hour) {
        const hr = new Date(b.hour_ms).getHours();
        out.hours.set(hr, (out.hours.get(hr) || 0) + b.orders);
      }
    }
    if (Array.isArray(r.top_items))
      out.top = r.top_items.map((t) => ({ id: t.item_id, name: t.name || t.item_id,
                                          n: t.quantity }));
    if (r.ticket_ms && typeof r.ticket_ms.count === "number") {
      out.median = r.ticket_ms.median;
      out.p90 = r.ticket_ms.p90;
      out.timed = r.ticket_ms.count;
    }
    return out;
  }

  // ---------------------------------------------------------------------
  // Rendering

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  function counter(id, value, sub) {
    $(`#${id} .value`).textContent = value;
    $(`#${id} .sub`).textContent = sub;
  }

  function render() {
    const c = fromReport(computed());
    const byStatus = OPEN.map((s) => [s, [...open.values()].filter((o) => o.status === s).length])
      .filter(([, n]) => n > 0).map(([s, n]) => `${n} ${WORD[s]}`);
    counter("cOpen", String(open.size), byStatus.join(" · ") || "none waiting");
    counter("cOrders", String(c.count), c.cancelled ? `${c.cancelled} cancelled` : "none cancelled");
    counter("cRevenue", money(c.revenue), `${money(c.net)} before tax`);
    counter("cTicket", c.median === null ? "–" : duration(c.median),
            c.median === null ? "no order ready yet today"
              : `placed → ready · p90 ${duration(c.p90)} · ${c.timed} order${c.timed === 1 ? "" : "s"}`);
    $("#source").textContent = report ? "charts from the day's report" : "";
    renderHours(c.hours);
    renderTop(c.top);
  }

  function renderHours(hours) {
    const now = new Date().getHours();
    const used = [...hours.keys()];
    const first = Math.max(0, Math.min(now - 11, ...used));
    const last = Math.max(now, ...used);
    const max = Math.max(1, ...hours.values());
    const bars = [];
    for (let hr = first; hr <= last; hr++) {
      const n = hours.get(hr) || 0;
      bars.push(h(`div.vbar${hr === now ? ".now" : ""}`, { dataset: { hour: hr, n } },
        h("span.v", n ? String(n) : ""),
        h("span.bar", { style: `height:${(n / max) * 100}%` }),
        h("span.k", String(hr).padStart(2, "0"))));
    }
    $("#hourBars").replaceChildren(...bars);
  }

  function renderTop(top) {
    const max = Math.max(1, ...top.map((t) => t.n));
    $("#topBars").replaceChildren(...top.map((t) => h("li", { dataset: { n: t.n } },
      h("span.name", t.name),
      h("span.track", h("span.bar", { style: `width:${(t.n / max) * 100}%` })),
      h("span.n", String(t.n)))));
    if (!top.length) $("#topBars").append(h("li.none", "No orders yet today."));
  }

  function renderBoard() {
    if (!menu) return;
    $("#menuBoard").replaceChildren(...(menu.categories || []).map((c) => h("div.cat",
      h("h3", c.name),
      h("div.toggles", (c.items || []).map((it) => {
        const on = avail.get(it.id) !== false;
        const busy = toggling.has(it.id);
        return h(`button.toggle${on ? ".on" : ".off"}${busy ? ".busy" : ""}`, {
          type: "button", dataset: { id: it.id }, "aria-pressed": String(!on),
          disabled: busy, title: on ? `86 ${it.name}` : `Bring back ${it.name}`,
          onclick: () => toggle(it),
        }, h("span.t-name", it.name), h("span.t-state", busy ? "…" : on ? "on" : "86'd"));
      })))));
  }

  async function toggle(it) {
    if (toggling.has(it.id)) return;
    const want = avail.get(it.id) === false;   // 86'd -> bring back
    toggling.add(it.id);
    renderBoard();
    try {
      const { data } = await api("POST", `/api/v1/menu/items/${encodeURIComponent(it.id)}/availability`,
                                 { body: { available: want }, key: OB.newKey(`86-${it.id}`) });
      const now = data && data.item ? data.item.available !== false : want;
      avail.set(it.id, now);
      liveAvail.set(it.id, now);
      toast(want ? `${it.name} is back on the menu.` : `${it.name} is 86'd: pads show it as sold out.`, "ok");
    } catch (err) {
      toast(explain(err, want ? `bring back ${it.name}` : `86 ${it.name}`), "error");
    } finally {
      toggling.delete(it.id);
      renderBoard();
    }
  }

  // ---------------------------------------------------------------------
  // Live

  function onSnapshot(msg) {
    liveAvail.clear();
    open.clear();
    for (const o of msg.orders || []) {
      versions.delete(o.id);
      applyOrder(o);
    }
    scheduleRender();
    loadToday();
    loadMenu();
    reportSoon();
  }

  function onEvent(msg) {
    if (msg.event === "menu.item" && msg.item) {
      liveAvail.set(msg.item.id, msg.item.available);
      if (!toggling.has(msg.item.id)) avail.set(msg.item.id, msg.item.available);
      renderBoard();
    } else if (msg.order) {
      if (applyOrder(msg.order)) {
        scheduleRender();
        reportSoon();
      }
    }
  }

  const live = new OB.Live({
    onSnapshot, onEvent,
    onState: (s, detail) => {
      OB.showLink(s, detail, {
        lostBanner: "Connection lost — reconnecting. The numbers shown may be out of date.",
      });
      document.body.classList.toggle("stale", s !== "live");
    },
  });

  function showDay() {
    $("#today").textContent = new Date(dayStart).toLocaleDateString(undefined,
      { weekday: "long", day: "numeric", month: "long" });
  }

  // A new day starts from zero.
  setInterval(() => {
    const d = startOfDay(Date.now());
    if (d !== dayStart) {
      dayStart = d;
      today.clear();
      report = null;
      showDay();
      loadToday();
      reportSoon();
    }
    scheduleRender();
  }, 30000);

  showDay();
  render();
  live.start();
})();
