// Kitchen display: the open orders as tickets in the order they were
// placed, live over the WebSocket (snapshot, then every event; it
// reconnects with after_seq so no ticket is missed or shown twice).
// Bump a ticket to its next status by tap or key, recall the last bumped
// one, filter by station, see the all-day counts, hear new tickets.
//
// URL: /kitchen?token=<kitchen or manager token>
//      [&station=grill] [&yellow=5] [&red=10]   (minutes, the age colours)
// Keys: 1-9 select, arrows move, Enter/Space/B bump, R recall,
//       F next station, A all-day panel, M mute, Esc clear.
"use strict";

(() => {
  const { h, $, api, explain, toast, duration, clock } = OB;
  const me = OB.requireToken("kitchen");
  if (!me) return;
  if (me.role !== "kitchen" && me.role !== "manager") {
    document.body.replaceChildren(h("main.no-token",
      h("h1", "This is not a kitchen link"),
      h("p", `This link is for table ${me.table}'s pad. The kitchen display ` +
             "needs a kitchen or manager link.")));
    return;
  }

  const NEXT = { placed: "accepted", accepted: "preparing",
                 preparing: "ready", ready: "served" };
  const STATUS_WORD = { placed: "New", accepted: "Accepted",
                        preparing: "Preparing", ready: "Ready",
                        served: "Served", cancelled: "Cancelled" };
  const ACTION = { placed: "Accept", accepted: "Start", preparing: "Ready",
                   ready: "Served" };
  const OPEN = new Set(["placed", "accepted", "preparing", "ready"]);
  const DEFAULT_STATION = "kitchen";

  // Settings: the URL wins, then what this screen last used.
  const store = {
    get: (k, d) => { try { return localStorage.getItem(`ob.kitchen.${k}`) ?? d; } catch { return d; } },
    set: (k, v) => { try { localStorage.setItem(`ob.kitchen.${k}`, v); } catch { /* private mode */ } },
  };
  const minutes = (name, dflt) => {
    const v = Number(OB.params.get(name) ?? store.get(name, dflt));
    return Number.isFinite(v) && v > 0 ? v : dflt;
  };
  const yellowMs = minutes("yellow", 5) * 60000;
  const redMs = Math.max(minutes("red", 10) * 60000, yellowMs);
  if (OB.params.has("yellow")) store.set("yellow", String(yellowMs / 60000));
  if (OB.params.has("red")) store.set("red", String(redMs / 60000));
  let station = OB.params.get("station") ?? store.get("station", "");
  let muted = store.get("muted", "0") === "1";
  let showAllDay = store.get("allday", "1") === "1";

  // State
  const orders = new Map();     // id -> open order
  const versions = new Map();   // id -> highest version seen (open or not)
  const pending = new Map();    // id -> {next, from}: a bump in flight
  const bumped = [];            // ids this screen bumped, latest last (20)
  const gone = new Map();       // id -> order as it left the screen (50)
  let recallDepth = 0;          // how far back R has gone
  let recalled = null;          // {order}: a bumped-off ticket shown again
  let selected = null;          // selected order id
  const stations = new Set();
  let visible = [];             // tickets on screen, in order

  const stationOf = (item) => item.station || DEFAULT_STATION;

  // ---------------------------------------------------------------------
  // Applying what the server says

  function applyOrder(o) {
    const seen = versions.get(o.id);
    if (seen !== undefined && seen >= o.version) return false;
    versions.set(o.id, o.version);
    // The step a bump asked for has happened (its event can come before
    // its answer): the ticket is free for the next bump.
    const p = pending.get(o.id);
    if (p && o.version > p.from) pending.delete(o.id);
    if (OPEN.has(o.status)) orders.set(o.id, o);
    else {
      orders.delete(o.id);
      gone.set(o.id, o);
      if (gone.size > 50) gone.delete(gone.keys().next().value);
    }
    for (const it of o.items) stations.add(stationOf(it));
    return true;
  }

  let snapshots = 0;
  function onSnapshot(msg) {
    // A fresh snapshot after a long gap may hold tickets this screen has
    // never shown: chime for them as for live ones.
    const known = new Set(versions.keys());
    orders.clear();
    versions.clear();
    for (const o of msg.orders) applyOrder(o);
    if (snapshots++ > 0 && msg.orders.some((o) => !known.has(o.id) && matches(o)))
      chimeSoon();
    loadStations();
    render();
  }

  let chimeTimer = null;
  function chimeSoon() {
    clearTimeout(chimeTimer);         // one chime for a burst
    chimeTimer = setTimeout(chime, 150);
  }

  function onEvent(msg) {
    if (!msg.order) return;
    const isNew = msg.event === "order.placed" && !versions.has(msg.order.id);
    if (!applyOrder(msg.order)) return;
    if (isNew && matches(msg.order)) chimeSoon();
    render();
  }

  async function loadStations() {
    try {
      const { data } = await api("GET", "/api/v1/menu");
      for (const c of data.categories || [])
        for (const it of c.items || []) stations.add(stationOf(it));
      renderStations();
    } catch { /* the orders' stations are enough */ }
  }

  // ---------------------------------------------------------------------
  // Station filter

  function matches(o) {
    return !station || o.items.some((it) => stationOf(it) === station);
  }

  function setStation(s) {
    station = s;
    store.set("station", s);
    selected = null;
    render();
  }

  function renderStations() {
    const list = ["", ...[...stations].sort()];
    $("#stations").replaceChildren(...list.map((s) => h("button.station", {
      type: "button", "aria-pressed": String(s === station),
      dataset: { station: s }, onclick: () => setStation(s),
    }, s ? s[0].toUpperCase() + s.slice(1) : "All")));
  }

  // ---------------------------------------------------------------------
  // Rendering

  function ageClass(ms) {
    return ms < yellowMs ? "ok" : ms < redMs ? "warn" : "late";
  }

  function itemsOf(o) {
    return o.items.filter((it) => !station || stationOf(it) === station);
  }

  function ticket(o, pos, isRecalled) {
    const age = Date.now() - o.created_ms;
    const busy = pending.get(o.id);
    const items = itemsOf(o);
    const hidden = o.items.length - items.length;
    const el = h(`article.ticket.status-${o.status}`, {
      dataset: { id: o.id, status: o.status, age: ageClass(age) },
      tabindex: "-1",
      onclick: (e) => {
        if (e.target.closest("button")) return;
        select(o.id);
      },
    },
    h("header.t-head",
      pos <= 9 ? h("span.t-key", { "aria-label": `key ${pos}` }, String(pos)) : null,
      h("h2.t-table", `Table ${o.table}`),
      h("span.age", { dataset: { created: o.created_ms } }, duration(age))),
    h("div.t-sub",
      h("span.t-id", `#${o.id}`),
      h("span.t-time", clock(o.created_ms)),
      h(`span.status.s-${o.status}`, isRecalled
        ? `Recalled · ${STATUS_WORD[o.status] || o.status}`
        : STATUS_WORD[o.status] || o.status)),
    h("ul.items", items.map((it) => h("li.item", { dataset: { station: stationOf(it) } },
      h("div.line", h("span.qty", String(it.quantity)), h("span.x", "×"),
        h("span.name", it.name),
        station ? null : h("span.st", stationOf(it))),
      it.modifiers && it.modifiers.length
        ? h("ul.mods", it.modifiers.map((m) => h("li.mod", m.name))) : null,
      it.note ? h("p.note", it.note) : null))),
    hidden ? h("p.others", `+ ${hidden} item${hidden > 1 ? "s" : ""} for other stations`) : null,
    o.note ? h("p.order-note", o.note) : null,
    h("button.bump", {
      type: "button", disabled: !!busy,
      onclick: () => bump(o.id),
    }, isRecalled ? "Dismiss" : busy ? "Sending…" : `${ACTION[o.status]} ▸`));
    if (isRecalled) el.classList.add("recalled");
    if (busy) el.classList.add("busy");
    return el;
  }

  function render() {
    const list = [...orders.values()].filter(matches)
      .sort((a, b) => a.id - b.id);
    visible = recalled ? [recalled.order, ...list] : list;
    if (selected !== null && !visible.some((o) => o.id === selected))
      selected = null;
    const els = visible.map((o, i) => ticket(o, i + 1, recalled && i === 0));
    const sel = selected ?? (visible[0] && visible[0].id);
    for (const el of els)
      if (Number(el.dataset.id) === sel) el.classList.add("selected");
    $("#tickets").replaceChildren(...els);
    if (!list.length && !recalled)
      $("#tickets").append(h("p.empty", station
        ? `No open tickets for ${station}.` : "No open tickets."));
    $("#count").textContent = `${list.length} open`;
    renderStations();
    renderAllDay(list);
  }

  function renderAllDay(list) {
    const counts = new Map();
    for (const o of list)
      for (const it of itemsOf(o)) {
        const id = it.item_id || it.name;
        const c = counts.get(id) || { name: it.name, n: 0 };
        c.n += it.quantity;
        counts.set(id, c);
      }
    const rows = [...counts.entries()]
      .sort((a, b) => b[1].n - a[1].n || a[1].name.localeCompare(b[1].name));
    $("#alldayList").replaceChildren(...rows.map(([id, c]) =>
      h("li", { dataset: { item: id } }, h("span.n", String(c.n)), h("span.name", c.name))));
    if (!rows.length) $("#alldayList").append(h("li.none", "—"));
    $("#allday").hidden = !showAllDay;
    $("#alldayToggle").setAttribute("aria-pressed", String(showAllDay));
    document.body.classList.toggle("with-allday", showAllDay);
  }

  // Once a second: the ages and their colours, without rebuilding.
  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("#tickets .ticket")) {
      const age = el.querySelector(".age");
      if (!age) continue;
      const ms = now - Number(age.dataset.created);
      age.textContent = duration(ms);
      el.dataset.age = ageClass(ms);
    }
  }

  // ---------------------------------------------------------------------
  // Selecting, bumping, recalling

  function select(id, keepRecall) {
    selected = id;
    if (!keepRecall) recallDepth = 0;
    for (const el of document.querySelectorAll("#tickets .ticket"))
      el.classList.toggle("selected", Number(el.dataset.id) === id);
    const el = document.querySelector(`#tickets .ticket[data-id="${id}"]`);
    if (el) el.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function currentSelection() {
    if (selected !== null) return selected;
    return visible.length ? visible[0].id : null;
  }

  function move(delta) {
    if (!visible.length) return;
    const i = visible.findIndex((o) => o.id === currentSelection());
    const j = Math.min(visible.length - 1, Math.max(0, (i < 0 ? 0 : i) + delta));
    select(visible[j].id);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function bump(id) {
    recallDepth = 0;
    if (recalled && recalled.order.id === id) {   // a recalled ticket: put it away
      recalled = null;
      render();
      return;
    }
    const o = orders.get(id);
    if (!o || pending.has(id)) return;
    const next = NEXT[o.status];
    if (!next) return;
    const mine = { next, from: o.version };
    pending.set(id, mine);
    const at = bumped.indexOf(id);
    if (at >= 0) bumped.splice(at, 1);
    bumped.push(id);
    if (bumped.length > 20) bumped.shift();
    render();
    // One key per step of one order: a double tap, a retry or a second
    // screen making the same step get the same answer, never two steps.
    const key = `bump-${o.id}-v${o.version}-${next}`;
    try {
      let res;
      for (let attempt = 0; ; attempt++) {
        try {
          res = await api("POST", `/api/v1/orders/${o.id}/status`,
                          { body: { status: next, version: o.version }, key });
          break;
        } catch (err) {
          if (!err.retryable || attempt >= 2) throw err;
          await sleep(err.retryAfter ? err.retryAfter * 1000 : 400 * (attempt + 1));
        }
      }
      const done = res.data;
      if (pending.get(id) === mine) pending.delete(id);
      applyOrder(done);
      // Keep the cursor where the cook is working.  The answer can come
      // after the ticket's event, and after the cook recalled it (R): the
      // recalled ticket keeps the cursor then.
      const isRecalled = recalled && recalled.order.id === id;
      if (!OPEN.has(done.status) && selected === id && !isRecalled) {
        const i = visible.findIndex((x) => x.id === id);
        const rest = visible.filter((x) => x.id !== id && (!recalled || x !== recalled.order));
        selected = rest.length ? rest[Math.min(Math.max(0, i - (recalled ? 1 : 0)), rest.length - 1)].id : null;
      }
    } catch (err) {
      if (pending.get(id) === mine) pending.delete(id);
      if (err.status === 409)
        toast(`Table ${o.table} (#${o.id}) was not bumped: ` +
              (err.serverMessage ||
               "someone else moved this ticket first") +
              ". The ticket shows the latest state.", "error");
      else
        toast(explain(err, `bump table ${o.table}'s ticket (#${o.id})`), "error");
    }
    render();
  }

  // R: bring back the last bumped ticket.  Still open (it moved a step):
  // select it.  Gone (served): show it again, marked recalled, until it
  // is dismissed (bump or Esc).  R again goes one further back.
  function recall() {
    if (!bumped.length) {
      toast("Nothing bumped yet on this screen.");
      return;
    }
    const id = bumped[bumped.length - 1 - (recallDepth % bumped.length)];
    recallDepth++;
    const live = orders.get(id);
    if (live) {
      recalled = null;
      render();
      select(live.id, true);
      flash(live.id);
      return;
    }
    const last = gone.get(id);
    if (!last) return;
    recalled = { order: last };
    selected = id;
    render();
    flash(id);
  }

  function flash(id) {
    const el = document.querySelector(`#tickets .ticket[data-id="${id}"]`);
    if (!el) return;
    el.classList.remove("flash");
    void el.offsetWidth;
    el.classList.add("flash");
  }

  // ---------------------------------------------------------------------
  // Sound

  let audio = null;
  function unlockAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch { audio = null; }
  }

  function chime() {
    if (muted) return;
    unlockAudio();
    document.body.dataset.chimes = String((Number(document.body.dataset.chimes) || 0) + 1);
    if (!audio) return;
    const t = audio.currentTime + 0.01;
    for (const [dt, f] of [[0, 880], [0.2, 1318.5]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "triangle";
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, t + dt);
      gain.gain.exponentialRampToValueAtTime(0.6, t + dt + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + dt + 0.45);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + dt);
      osc.stop(t + dt + 0.5);
    }
  }

  function setMuted(m) {
    muted = m;
    store.set("muted", m ? "1" : "0");
    const b = $("#mute");
    b.textContent = m ? "Sound off" : "Sound on";
    b.setAttribute("aria-pressed", String(m));
    b.classList.toggle("off", m);
  }

  // ---------------------------------------------------------------------
  // Keys (a bump bar is a keyboard)

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest && e.target.closest("input, textarea, select")) return;
    unlockAudio();
    const k = e.key;
    if (/^[1-9]$/.test(k)) {
      const o = visible[Number(k) - 1];
      if (o) select(o.id);
    } else if (k === "Enter" || k === " " || k === "b" || k === "B") {
      if (e.target.closest && e.target.closest("button") && k !== "b" && k !== "B")
        return;   // a focused button handles its own Enter/Space
      const id = currentSelection();
      if (id !== null) bump(id);
    } else if (k === "ArrowRight" || k === "ArrowDown") move(1);
    else if (k === "ArrowLeft" || k === "ArrowUp") move(-1);
    else if (k === "r" || k === "R") recall();
    else if (k === "f" || k === "F") {
      const list = ["", ...[...stations].sort()];
      setStation(list[(list.indexOf(station) + 1) % list.length]);
    } else if (k === "a" || k === "A") {
      showAllDay = !showAllDay;
      store.set("allday", showAllDay ? "1" : "0");
      render();
    } else if (k === "m" || k === "M") setMuted(!muted);
    else if (k === "Escape") {
      recalled = null;
      selected = null;
      recallDepth = 0;
      render();
    } else return;
    e.preventDefault();
  });
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  // A tapped button must not keep the focus: the bump bar's Enter would
  // press it again instead of bumping the selected ticket.
  document.addEventListener("click", (e) => {
    if (e.detail > 0 && e.target.closest) {
      const b = e.target.closest("button");
      if (b) b.blur();
    }
  });

  $("#mute").addEventListener("click", () => { setMuted(!muted); unlockAudio(); });
  $("#alldayToggle").addEventListener("click", () => {
    showAllDay = !showAllDay;
    store.set("allday", showAllDay ? "1" : "0");
    render();
  });

  // ---------------------------------------------------------------------

  const live = new OB.Live({
    onSnapshot, onEvent,
    onState: (s, detail) => {
      OB.showLink(s, detail, {
        lostBanner: "Connection lost — reconnecting. Tickets shown may be " +
          "out of date; bumps will not go through until it is back.",
      });
      document.body.classList.toggle("stale", s !== "live");
    },
  });
  setMuted(muted);
  if (station) stations.add(station);
  render();
  setInterval(tick, 1000);
  live.start();
})();
