// Table pad: the menu by category, an item page with options and a note,
// the table's shared cart (live: every pad at the table sees every
// change), placing the order, and the live status of the table's orders.
//
// URL: /pad?token=<pad token>   (a staff token also works with &table=T1)
//
// Placing an order: the pad makes one Idempotency-Key per press of
// "Place order" and keeps it, with the request, in localStorage until the
// server acknowledges the order (201) or refuses it for good (a 4xx that
// retrying cannot fix).  With no network the order waits there and is
// sent again, with the same key, when the network is back, when the live
// connection comes back, or when the pad is reopened: the server answers
// a repeated key with the order it already has, so it is placed once.
"use strict";

(() => {
  const { h, $, api, explain, toast, money, clock } = OB;
  const me = OB.requireToken("table pad");
  if (!me) return;
  const table = me.role === "pad" ? me.table : OB.params.get("table") || "";
  if (!table) {
    document.body.replaceChildren(h("main.no-token",
      h("h1", "Which table?"),
      h("p", "This is a staff link: add &table=T1 (the table's label) to it, " +
             "or open the table's own link or QR code.")));
    return;
  }
  const T = encodeURIComponent(table);
  const OPEN = ["placed", "accepted", "preparing", "ready"];
  const STATUS_WORD = { placed: "Placed", accepted: "Accepted",
                        preparing: "Preparing", ready: "Ready",
                        served: "Served", cancelled: "Cancelled" };
  const STATUS_LINE = {
    placed: "Sent to the kitchen",
    accepted: "The kitchen has it",
    preparing: "Being prepared",
    ready: "Ready — on its way",
  };
  const PENDING_KEY = `ob.pad.pending.${table}`;

  // State
  let menu = null;              // the menu document
  let menuTag = null;           // its ETag
  const items = new Map();      // item id -> menu item
  const avail = new Map();      // item id -> available?
  let cart = { version: -1, items: [], subtotal_cents: 0 };
  const orders = new Map();     // id -> open order
  const versions = new Map();   // id -> highest version seen
  let category = null;
  let pendingOrder = loadPending();
  let sending = false;
  let sendAgain = false;        // a reason to try at once came during a try
  let retryTimer = null;
  let retryMs = 1000;
  const busyLines = new Set();  // line ids with a change in flight
  let menuFetching = false;
  // Availability from the live events since the last snapshot.  They are
  // newer than any menu fetched after that snapshot could be (a gateway
  // may serve a menu up to a second old), so they win over it.
  const liveAvail = new Map();

  $("#table").textContent = `Table ${table}`;
  document.title = `Table ${table} — orderbus`;

  // ---------------------------------------------------------------------
  // Menu

  const isAvailable = (id) => avail.get(id) !== false;

  async function loadMenu() {
    if (menuFetching) return;
    menuFetching = true;
    try {
      const res = await api("GET", "/api/v1/menu",
                            { headers: menuTag ? { "If-None-Match": menuTag } : {} });
      if (res.status === 200 && res.data) {
        menu = res.data;
        menuTag = res.headers.get("ETag");
        items.clear();
        avail.clear();
        for (const c of menu.categories || [])
          for (const it of c.items || []) {
            items.set(it.id, it);
            avail.set(it.id, it.available !== false);
          }
        if (!category || !menu.categories.some((c) => c.id === category))
          category = menu.categories.length ? menu.categories[0].id : null;
      }
      for (const [id, ok] of liveAvail) avail.set(id, ok);
      renderMenu();
      renderCart();
    } catch (err) {
      if (!menu) {
        $("#items").replaceChildren(h("p.load-error",
          explain(err, "load the menu"), " ",
          h("button.link", { type: "button", onclick: loadMenu }, "Try again")));
      }
    } finally {
      menuFetching = false;
    }
  }

  function renderMenu() {
    if (!menu) return;
    $("#restaurant").textContent = menu.name || "Menu";
    $("#cats").replaceChildren(...menu.categories.map((c) => h("button.cat", {
      type: "button", "aria-pressed": String(c.id === category),
      dataset: { cat: c.id },
      onclick: () => { category = c.id; renderMenu(); window.scrollTo({ top: 0 }); },
    }, c.name)));
    const cat = menu.categories.find((c) => c.id === category);
    $("#catTitle").textContent = cat ? cat.name : "";
    $("#items").replaceChildren(...(cat ? cat.items : []).map((it) => {
      const ok = isAvailable(it.id);
      return h(`button.item${ok ? "" : ".sold-out"}`, {
        type: "button", dataset: { id: it.id }, disabled: !ok,
        "aria-disabled": String(!ok),
        onclick: () => openItem(it.id),
      },
      h("span.i-name", it.name),
      it.description ? h("span.i-desc", it.description) : null,
      h("span.i-foot",
        h("span.i-price", money(it.price_cents)),
        ok ? h("span.i-add", "Add +") : h("span.i-badge", "Sold out")));
    }));
  }

  // ---------------------------------------------------------------------
  // Item page

  let dlgItem = null;
  let dlgQty = 1;

  function openItem(id) {
    const it = items.get(id);
    if (!it || !isAvailable(id)) return;
    dlgItem = it;
    dlgQty = 1;
    $("#dlgName").textContent = it.name;
    $("#dlgDesc").textContent = it.description || "";
    $("#dlgDesc").hidden = !it.description;
    $("#dlgPrice").textContent = money(it.price_cents);
    $("#dlgNote").value = "";
    $("#dlgError").hidden = true;
    const mods = it.modifiers || [];
    $("#dlgMods").hidden = !mods.length;
    $("#dlgModList").replaceChildren(...mods.map((m) => h("label.mod",
      h("input", { type: "checkbox", value: m.id, onchange: updateDialog }),
      h("span.m-name", m.name),
      h("span.m-price", m.price_cents === 0 ? "" :
        m.price_cents > 0 ? `+${money(m.price_cents)}` : money(m.price_cents)))));
    updateDialog();
    $("#itemDialog").showModal();
  }

  function chosenMods() {
    return [...$("#dlgModList").querySelectorAll("input:checked")].map((x) => x.value);
  }

  function updateDialog() {
    if (!dlgItem) return;
    const mods = chosenMods();
    // The API takes up to 6 options per line.
    for (const box of $("#dlgModList").querySelectorAll("input"))
      box.disabled = !box.checked && mods.length >= 6;
    const unit = dlgItem.price_cents + (dlgItem.modifiers || [])
      .filter((m) => mods.includes(m.id))
      .reduce((s, m) => s + m.price_cents, 0);
    $("#dlgQty").textContent = String(dlgQty);
    const ok = isAvailable(dlgItem.id);
    $("#dlgSoldOut").hidden = ok;
    const add = $("#dlgAdd");
    add.disabled = !ok || !!pendingOrder;
    add.textContent = !ok ? "Sold out"
      : pendingOrder ? "Wait for the order to be sent"
      : `Add ${dlgQty} to order · ${money(unit * dlgQty)}`;
  }

  $("#dlgMinus").addEventListener("click", () => { dlgQty = Math.max(1, dlgQty - 1); updateDialog(); });
  $("#dlgPlus").addEventListener("click", () => { dlgQty = Math.min(99, dlgQty + 1); updateDialog(); });
  $("#dlgClose").addEventListener("click", () => $("#itemDialog").close());
  $("#itemDialog").addEventListener("click", (e) => {
    if (e.target === $("#itemDialog")) $("#itemDialog").close();   // the backdrop
  });
  $("#itemForm").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!dlgItem) return;
    const note = $("#dlgNote").value.trim();
    if (new TextEncoder().encode(note).length > 280) {
      showDlgError("The note is too long: keep it under 280 characters.");
      return;
    }
    const body = { item_id: dlgItem.id, quantity: dlgQty };
    const mods = chosenMods();
    if (mods.length) body.modifiers = mods;
    if (note) body.note = note;
    const add = $("#dlgAdd");
    add.disabled = true;
    add.textContent = "Adding…";
    try {
      const res = await change("POST", `/api/v1/tables/${T}/cart/items`, body);
      setCart(res.data);
      $("#itemDialog").close();
      toast(`Added ${dlgQty} × ${dlgItem.name}`, "ok", 2500);
    } catch (err) {
      showDlgError(err.code === "item_unavailable"
        ? `Sorry — ${dlgItem.name} has just sold out.`
        : explain(err, `add ${dlgItem.name} to the order`));
    } finally {
      updateDialog();
    }
  });

  function showDlgError(text) {
    $("#dlgError").textContent = text;
    $("#dlgError").hidden = false;
  }

  // A change to the cart, retried (same key) on a network blip.
  async function change(method, path, body) {
    const key = OB.newKey(`pad-${table}-c`);
    for (let attempt = 0; ; attempt++) {
      try {
        return await api(method, path, { body, key });
      } catch (err) {
        if (!err.retryable || attempt >= 2) throw err;
        await new Promise((r) => setTimeout(r,
          err.retryAfter ? err.retryAfter * 1000 : 300 * (attempt + 1)));
      }
    }
  }

  // ---------------------------------------------------------------------
  // The cart

  function setCart(c) {
    if (!c || c.version < cart.version) return;
    cart = c;
    renderCart();
  }

  function soldOutLines() {
    return cart.items.filter((l) => !isAvailable(l.item_id));
  }

  async function lineChange(line, quantity) {
    if (busyLines.has(line.line_id) || pendingOrder) return;
    busyLines.add(line.line_id);
    renderCart();
    try {
      const res = quantity === 0
        ? await change("DELETE", `/api/v1/tables/${T}/cart/items/${line.line_id}`)
        : await change("PATCH", `/api/v1/tables/${T}/cart/items/${line.line_id}`,
                       { quantity });
      setCart(res.data);
    } catch (err) {
      if (err.status === 404)
        toast(`${line.name} was already taken off the order on another pad.`, "error");
      else
        toast(explain(err, quantity === 0 ? `remove ${line.name}`
                                          : `change the quantity of ${line.name}`), "error");
    } finally {
      busyLines.delete(line.line_id);
      renderCart();
    }
  }

  function renderCart() {
    const lines = cart.items || [];
    const locked = !!pendingOrder;
    $("#lines").replaceChildren(...lines.map((l) => {
      const ok = isAvailable(l.item_id);
      const busy = busyLines.has(l.line_id);
      return h(`li.line${ok ? "" : ".sold-out"}${busy ? ".busy" : ""}`,
        { dataset: { lineId: l.line_id, item: l.item_id } },
        h("div.l-main",
          h("span.l-name", l.name),
          h("span.l-price", money(l.line_cents))),
        l.modifiers && l.modifiers.length
          ? h("div.l-mods", l.modifiers.map((m) => m.name).join(", ")) : null,
        l.note ? h("div.l-note", `“${l.note}”`) : null,
        ok ? null : h("div.l-soldout", "Sold out — please remove it"),
        h("div.l-actions",
          h("div.stepper",
            h("button", { type: "button", "aria-label": `One fewer ${l.name}`,
                          disabled: busy || locked || l.quantity <= 1,
                          onclick: () => lineChange(l, l.quantity - 1) }, "−"),
            h("output.l-qty", String(l.quantity)),
            h("button", { type: "button", "aria-label": `One more ${l.name}`,
                          disabled: busy || locked || !ok || l.quantity >= 99,
                          onclick: () => lineChange(l, l.quantity + 1) }, "+")),
          h("button.remove", { type: "button", disabled: busy || locked,
                               onclick: () => lineChange(l, 0) }, "Remove")));
    }));
    const n = lines.reduce((s, l) => s + l.quantity, 0);
    $("#cartEmpty").hidden = lines.length > 0;
    $("#cartCount").textContent = n ? `· ${n} item${n > 1 ? "s" : ""}` : "";
    $("#subtotal").textContent = money(cart.subtotal_cents || 0);
    $("#cartBar").hidden = n === 0 && !pendingOrder;
    $("#cartBarCount").textContent = `${n} item${n === 1 ? "" : "s"}`;
    $("#cartBarTotal").textContent = money(cart.subtotal_cents || 0);

    const bad = soldOutLines();
    const place = $("#place");
    const hint = $("#placeHint");
    place.disabled = locked || !lines.length || bad.length > 0;
    place.textContent = locked ? "Sending order…" :
      lines.length ? `Place order · ${money(cart.subtotal_cents || 0)}` : "Place order";
    hint.hidden = !bad.length;
    hint.textContent = bad.length
      ? `${bad.map((l) => l.name).join(", ")} ${bad.length > 1 ? "have" : "has"} ` +
        "sold out: remove it to place the order." : "";
    $("#orderNote").disabled = locked;
    renderPending();
    if ($("#itemDialog").open) updateDialog();
  }

  // ---------------------------------------------------------------------
  // Placing the order, with the offline queue

  function loadPending() {
    try {
      const p = JSON.parse(localStorage.getItem(`ob.pad.pending.${table}`) || "null");
      return p && p.key && p.body ? p : null;
    } catch { return null; }
  }

  function savePending(p) {
    pendingOrder = p;
    try {
      if (p) localStorage.setItem(PENDING_KEY, JSON.stringify(p));
      else localStorage.removeItem(PENDING_KEY);
    } catch { /* private mode: it still works while the page is open */ }
  }

  function renderPending() {
    const box = $("#pending");
    const p = pendingOrder;
    box.hidden = !p;
    if (!p) return;
    box.className = `pending${p.waiting ? " waiting" : ""}`;
    box.replaceChildren(
      h("strong", p.waiting ? "Your order is waiting to be sent" : "Sending your order…"),
      p.waiting ? h("span", p.reason ||
        "No connection right now. It is saved on this pad and will be sent " +
        "automatically as soon as the connection is back.") : null,
      p.waiting ? h("button.link", { type: "button", onclick: () => sendPending(true) },
                    "Try now") : null);
  }

  $("#place").addEventListener("click", () => {
    if (pendingOrder || !cart.items.length || soldOutLines().length) return;
    const note = $("#orderNote").value.trim();
    if (new TextEncoder().encode(note).length > 280) {
      toast("The note for the kitchen is too long: keep it under 280 characters.", "error");
      return;
    }
    // Order exactly the cart this pad shows (its version); one key for
    // this press, kept until the server has answered for good.
    const body = { version: cart.version };
    if (note) body.note = note;
    savePending({ key: OB.newKey(`pad-${table}-o`), body, at: Date.now(),
                  tries: 0, waiting: false });
    renderCart();
    sendPending(true);
  });

  function scheduleRetry(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => sendPending(false), ms);
  }

  async function sendPending(now) {
    const p = pendingOrder;
    if (!p) return;
    if (sending) {
      if (now) sendAgain = true;
      return;
    }
    if (now) retryMs = 1000;
    sendAgain = false;
    sending = true;
    clearTimeout(retryTimer);
    try {
      const res = await api("POST", `/api/v1/tables/${T}/cart/order`,
                            { body: p.body, key: p.key, timeoutMs: 10000 });
      placed(p, res.data);
    } catch (err) {
      if (err.retryable) {
        waitAndRetry(p, err);
      } else if (err.status === 409) {
        // If this very order got through on an earlier try whose answer
        // was lost, it is among the table's orders under its key.  If not:
        // the cart was emptied by another pad's order, or changed.
        try {
          const mine = await findByKey(p.key);
          if (mine) {
            placed(p, mine);
          } else {
            const now = (await api("GET", `/api/v1/tables/${T}/cart`)).data;
            setCart(now);
            if (!now.items.length)
              gaveUp("Nothing was ordered from this pad: the table's order had " +
                     "just been placed from another pad (see “Your orders”).");
            else
              gaveUp("The order changed on another pad before it was sent. " +
                     "Check it and press “Place order” again.");
          }
        } catch (err2) {
          if (err2.retryable) waitAndRetry(p, err2);
          else gaveUp(explain(err2, "check whether the order went through"));
        }
      } else if (err.code === "item_unavailable") {
        const bad = soldOutLines().map((l) => l.name);
        gaveUp(`Not sent: ${bad.length ? bad.join(", ") : "something in the order"} ` +
               "has sold out. Remove it and place the order again.");
      } else {
        gaveUp(explain(err, "place the order"));
      }
    } finally {
      sending = false;
    }
  }

  function waitAndRetry(p, err) {
    p.tries = (p.tries || 0) + 1;
    p.waiting = true;
    p.reason = err.status === 429
      ? "The kitchen is receiving many orders; this one will be sent in a moment."
      : err.status === 503
        ? "The order system is busy or restarting; it will be sent automatically " +
          "in a moment."
        : null;
    savePending(p);
    renderCart();
    // The network or the live connection came back during this try: try
    // again at once (after a 429, when the server says).
    const wait = err.retryAfter ? err.retryAfter * 1000 : sendAgain ? 0 : retryMs;
    if (!sendAgain) retryMs = Math.min(retryMs * 2, 15000);
    sendAgain = false;
    scheduleRetry(wait);
  }

  async function findByKey(key) {
    let cursor = null;
    for (let page = 0; page < 5; page++) {
      const q = `table=${T}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const { data } = await api("GET", `/api/v1/orders?${q}`);
      const hit = (data.orders || []).find((o) => o.idempotency_key === key);
      if (hit) return hit;
      if (!data.next_cursor) return null;
      cursor = data.next_cursor;
    }
    return null;
  }

  function placed(p, order) {
    if (pendingOrder && pendingOrder.key === p.key) savePending(null);
    $("#orderNote").value = "";
    applyOrder(order);
    renderCart();
    renderOrders();
    toast(`Order #${order.id} sent to the kitchen.`, "ok");
  }

  function gaveUp(text) {
    savePending(null);
    renderCart();
    toast(text, "error", 12000);
  }

  window.addEventListener("online", () => sendPending(true));

  // ---------------------------------------------------------------------
  // The table's orders

  function applyOrder(o) {
    const seen = versions.get(o.id);
    if (seen !== undefined && seen >= o.version) return false;
    versions.set(o.id, o.version);
    if (OPEN.includes(o.status)) orders.set(o.id, o);
    else {
      if (orders.has(o.id) && o.status === "cancelled")
        toast(`Order #${o.id} was cancelled by the restaurant. Please ask a member of staff.`,
              "error", 15000);
      orders.delete(o.id);
    }
    return true;
  }

  function renderOrders() {
    const list = [...orders.values()].sort((a, b) => b.id - a.id);
    $("#noOrders").hidden = list.length > 0;
    $("#orderList").replaceChildren(...list.map((o) => {
      const at = OPEN.indexOf(o.status);
      return h(`li.order.st-${o.status}`, { dataset: { id: o.id, status: o.status } },
        h("div.o-head",
          h("span.o-id", `#${o.id}`),
          h("span.o-time", clock(o.created_ms)),
          h("span.status", STATUS_WORD[o.status] || o.status)),
        h("p.o-line", STATUS_LINE[o.status] || ""),
        h("ol.steps", OPEN.map((s, i) => h(`li${i < at ? ".done" : i === at ? ".now" : ""}`,
          STATUS_WORD[s]))),
        h("p.o-items", o.items.map((it) => `${it.quantity} × ${it.name}`).join(", ")),
        h("p.o-total", `Total ${money(o.total_cents)}`));
    }));
  }

  // ---------------------------------------------------------------------
  // Live

  function onSnapshot(msg) {
    orders.clear();
    versions.clear();
    for (const o of msg.orders || []) applyOrder(o);
    if (msg.cart) cart = msg.cart;
    liveAvail.clear();
    renderCart();
    renderOrders();
    loadMenu();          // availability may have changed while away
    sendPending(true);
  }

  function onEvent(msg) {
    if (msg.event === "cart.updated" && msg.cart) setCart(msg.cart);
    else if (msg.event === "menu.item" && msg.item) {
      avail.set(msg.item.id, msg.item.available);
      liveAvail.set(msg.item.id, msg.item.available);
      renderMenu();
      renderCart();
    } else if (msg.order) {
      if (applyOrder(msg.order)) renderOrders();
    }
  }

  const extra = me.role === "pad" ? "" : `&table=${T}`;
  const live = new OB.Live({
    extra, onSnapshot, onEvent,
    onState: (s, detail) => {
      OB.showLink(s, detail, {
        live: "connected", lost: "offline",
        lostBanner: "No connection to the restaurant — reconnecting… " +
          "The order shown may be out of date.",
      });
      if (s === "live") sendPending(true);
    },
  });

  $("#cartBar").addEventListener("click", () =>
    $("#cart").scrollIntoView({ behavior: "smooth", block: "start" }));

  renderCart();
  renderOrders();
  loadMenu();
  live.start();
  if (pendingOrder) sendPending(true);
})();
