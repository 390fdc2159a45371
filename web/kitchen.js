// Minimal live kitchen list: snapshot, then every event in sequence.
// Reconnects with resume_from so no ticket is missed or shown twice.
"use strict";

const orders = new Map();   // id -> order, open orders only
let lastSeq = null;         // last sequence applied
let retryMs = 250;

const $ = (id) => document.getElementById(id);

function isOpen(order) {
  return ["placed", "accepted", "preparing", "ready"].includes(order.status);
}

function ticket(order) {
  const el = document.createElement("article");
  el.className = "ticket";
  el.dataset.id = order.id;
  const h = document.createElement("h2");
  h.textContent = `Table ${order.table}`;
  const age = document.createElement("span");
  age.className = "age";
  age.dataset.created = order.created_ms;
  h.append(age);
  const ul = document.createElement("ul");
  for (const item of order.items) {
    const li = document.createElement("li");
    li.textContent = `${item.quantity} × ${item.name}`;
    if (item.note) {
      const note = document.createElement("div");
      note.className = "note";
      note.textContent = item.note;
      li.append(note);
    }
    ul.append(li);
  }
  el.append(h, ul);
  if (order.note) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = order.note;
    el.append(note);
  }
  return el;
}

function render() {
  const list = [...orders.values()].sort((a, b) => a.id - b.id);
  $("tickets").replaceChildren(...list.map(ticket));
  $("count").textContent = `${list.length} open`;
  tick();
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll(".age")) {
    const s = Math.max(0, Math.floor((now - Number(el.dataset.created)) / 1000));
    el.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
}

function apply(msg) {
  if (msg.type === "snapshot") {
    orders.clear();
    for (const o of msg.orders) orders.set(o.id, o);
    lastSeq = msg.seq;
  } else if (msg.type === "event") {
    if (lastSeq !== null && msg.seq <= lastSeq) return;   // already have it
    if (isOpen(msg.order)) orders.set(msg.order.id, msg.order);
    else orders.delete(msg.order.id);
    lastSeq = msg.seq;
  } else {
    return;
  }
  render();
}

function setLink(up) {
  $("link").textContent = up ? "live" : "offline";
  $("link").className = up ? "up" : "down";
  $("banner").hidden = up;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const resume = lastSeq === null ? "" : `?resume_from=${lastSeq}`;
  const ws = new WebSocket(`${scheme}://${location.host}/ws${resume}`);
  ws.onopen = () => { setLink(true); retryMs = 250; };
  ws.onmessage = (e) => apply(JSON.parse(e.data));
  ws.onclose = () => {
    setLink(false);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

setInterval(tick, 1000);
connect();
