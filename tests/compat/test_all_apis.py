#!/usr/bin/python3
"""Seed-compatible API test suite (issue 5), in the style of the seed
systems' own test_all_apis.py: requests and websockets, the exact request
bodies of the seed documents, a line per check and a report at the end.

    /usr/bin/python3 tests/compat/test_all_apis.py build/orderbus

The orderbus binary is the first argument, else $ORDERBUS_BIN.  The suite
starts its own `orderbus up` nodes on free ports (data under $TK_TMP, else
a temporary directory) and stops them with SIGTERM, which must end them
with status 0 (under ASan that also means no leaks).

The seed routes are off unless enabled (--compat 1) and need a token like
the native API.  A seed 000/002 client sends no headers, so it is given a
base URL with the token in it, http://HOST:PORT/compat/<token>: that is the
only change such a client needs (Node.seed_url, Node.seed_ws).  Seed 001's
POST /orders sent `Authorization: Bearer` already, and still does.

Needs Debian's python3-requests and python3-websockets.
"""

import asyncio
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests
import websockets

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simple_ws_client import FrameLog, connect  # noqa: E402

ORDERBUS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ORDERBUS_BIN", "")
TIMEOUT = 10          # seconds for any one HTTP call
QUIET = 0.8           # seconds a socket must stay silent to count as "nothing sent"

# The seed documents' own request bodies
SEED002_ORDER = {"table": "Table 1",
                 "items": [{"name": "Burger", "quantity": 3},
                           {"name": "Ice Cream", "quantity": 1}]}
SEED000_ORDER = {"table": "Table 5",
                 "items": [{"name": "Burger", "quantity": 2},
                           {"name": "Fries", "quantity": 1}]}
# Seed 001's, with one of our menu ids for its "m1"
SEED001_ORDER = {"table_number": "T12",
                 "items": [{"menu_item_id": "burger", "quantity": 2}],
                 "version": 5, "order_id": "id-1234"}
SEED001_LITERAL = {"table_number": "T12",
                   "items": [{"menu_item_id": "m1", "quantity": 2}],
                   "version": 5, "order_id": "id-1234-m1"}

CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"✅ {name}")
    else:
        failed += 1
        print(f"❌ {name}" + (f": {detail}" if detail else ""))
    return condition


def is_seed_order(order):
    """The shape of seeds 000/002: exactly id, table, items, created_at."""
    return (isinstance(order, dict)
            and set(order) == {"id", "table", "items", "created_at"}
            and type(order["id"]) is int and isinstance(order["table"], str)
            and isinstance(order["items"], list)
            and all(isinstance(i, dict) and set(i) == {"name", "quantity"}
                    and isinstance(i["name"], str) and type(i["quantity"]) is int
                    for i in order["items"])
            and isinstance(order["created_at"], str)
            and CREATED_AT.match(order["created_at"]) is not None)


def is_fastapi_422(response, loc=None):
    """422 {"detail": [{"loc", "msg", "type"}, ...]}, the first at loc."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    return (response.status_code == 422 and isinstance(detail, list) and detail
            and all(set(d) >= {"loc", "msg", "type"} and isinstance(d["loc"], list)
                    and isinstance(d["msg"], str) and isinstance(d["type"], str)
                    for d in detail)
            and (loc is None or detail[0]["loc"] == loc))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `orderbus up`, started with flags, on a free port.  seed_base
    is the base URL a seed client is given: with a kitchen token in it."""

    def __init__(self, root, name, *flags):
        self.dir = os.path.join(root, name)
        self.log_path = self.dir + ".log"
        for _ in range(3):
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [ORDERBUS, "up", "--http-port", str(self.port), "--data",
                 self.dir, *flags], stdout=self.log, stderr=subprocess.STDOUT)
            if self._wait_healthy():
                self.kitchen = self.token("--staff", "kitchen")
                self.seed_base = f"{self.base}/compat/{self.kitchen}"
                return
            self.stop()
        raise RuntimeError(f"orderbus up did not start; see {self.log_path}")

    def _wait_healthy(self):
        end = time.time() + 20
        while time.time() < end and self.proc.poll() is None:
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.1)
        return False

    def token(self, *args):
        """A token from `orderbus token` (printed alone on stdout's first line)."""
        out = subprocess.run([ORDERBUS, "token", "--secret-file",
                              os.path.join(self.dir, "secret"), *args],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.split("\n", 1)[0].strip()

    def url(self, path):
        return self.base + path

    def seed_url(self, path, base=None):
        """A seed route as a seed client reaches it: its base URL + path."""
        return (base or self.seed_base) + path

    def ws(self, path="/ws/orders"):
        return f"ws://127.0.0.1:{self.port}{path}"

    def seed_ws(self, path="/ws/orders"):
        return "ws" + self.seed_base[len("http"):] + path

    def stop(self):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


def post(url, body, **kwargs):
    return requests.post(url, json=body, timeout=TIMEOUT, **kwargs)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def native_order(node, order_id, kitchen):
    return requests.get(node.url(f"/api/v1/orders/{order_id}"),
                        headers=bearer(kitchen), timeout=TIMEOUT).json()


# ---------------------------------------------------------------------------
# Seeds 000/002: POST /api/order, GET /api/orders

def test_create_order(node, body, label):
    response = post(node.seed_url("/api/order"), body)
    check(f"{label}: POST /api/order is 201", response.status_code == 201,
          f"{response.status_code} {response.text}")
    order = response.json()
    check(f"{label}: the order has the seed shape", is_seed_order(order), order)
    check(f"{label}: table and items as sent",
          order.get("table") == body["table"] and order.get("items") == body["items"],
          order)
    created = datetime.datetime.strptime(order["created_at"], "%Y-%m-%dT%H:%M:%S")
    now = datetime.datetime.utcnow()
    check(f"{label}: created_at is now (UTC, seconds)",
          abs((now - created).total_seconds()) < 120, order["created_at"])
    return order


def test_get_orders(node, placed):
    response = requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT)
    orders = response.json()
    check("GET /api/orders is 200 with a plain JSON array",
          response.status_code == 200 and isinstance(orders, list))
    check("every order has the seed shape", all(is_seed_order(o) for o in orders))
    ids = [o["id"] for o in orders]
    check("newest first", ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids),
          ids)
    check("the orders just placed, newest first, as POST answered them",
          orders[:len(placed)] == list(reversed(placed)), orders[:len(placed)])
    return orders


def test_open_menu_lines(node, kitchen):
    body = {"table": "Table 8", "items": [{"name": "Chef's special", "quantity": 1},
                                          {"name": "burger", "quantity": 2}]}
    response = post(node.seed_url("/api/order"), body)
    order = response.json()
    check("open menu: any name is taken (201)", response.status_code == 201,
          response.text)
    check("open menu: a free-text name kept, a dish named as the menu names it",
          order.get("items") == [{"name": "Chef's special", "quantity": 1},
                                 {"name": "Burger", "quantity": 2}], order)
    menu = {i["id"]: i for i in requests.get(node.seed_url("/menu_items"),
                                             timeout=TIMEOUT).json()}
    native = native_order(node, order["id"], kitchen)
    lines = native.get("items", [])
    check("open menu: 'Chef's special' is a free-text line at 0",
          len(lines) == 2 and lines[0]["item_id"] == "custom"
          and lines[0]["unit_cents"] == 0 and lines[0]["line_cents"] == 0, lines)
    burger = round(menu["burger"]["price"] * 100)
    check("open menu: 'burger' is priced as the menu's Burger",
          len(lines) == 2 and lines[1]["item_id"] == "burger"
          and lines[1]["unit_cents"] == burger
          and native["subtotal_cents"] == 2 * burger, native)
    response = post(node.seed_url("/api/order"),
                    {"table": "Table 8", "items": [{"name": "Grilled Asparagus",
                                                    "quantity": 1}]})
    check("open menu: a dish that is 86'd is refused with 422",
          is_fastapi_422(response) and response.json()["detail"][0]["loc"][0] == "body",
          f"{response.status_code} {response.text}")


def test_validation(node):
    before = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    cases = [
        ("quantity 0", {"table": "Table 2", "items": [{"name": "Burger", "quantity": 0}]},
         ["body", "items", 0, "quantity"]),
        ("no table", {"items": [{"name": "Burger", "quantity": 1}]}, ["body", "table"]),
        ("a '/' in the table", {"table": "A/B", "items": [{"name": "Burger",
                                                           "quantity": 1}]},
         ["body", "table"]),
        ("no items", {"table": "Table 2", "items": []}, ["body", "items"]),
        ("a name that is not a string",
         {"table": "Table 2", "items": [{"name": ["Burger"], "quantity": 1}]},
         ["body", "items", 0, "name"]),
    ]
    for label, body, loc in cases:
        response = post(node.seed_url("/api/order"), body)
        check(f"422 for {label}, at {loc}", is_fastapi_422(response, loc),
              f"{response.status_code} {response.text}")
    response = requests.post(node.seed_url("/api/order"), data='{"table": "Table 2", ',
                             headers={"Content-Type": "application/json"},
                             timeout=TIMEOUT)
    check("422 for a body that is not JSON", is_fastapi_422(response)
          and response.json()["detail"][0]["type"] == "value_error.jsondecode",
          response.text)
    after = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    check("refused orders are not stored", after == before, f"{before} -> {after}")


def test_idempotency_key(node):
    before = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    key = {"Idempotency-Key": "pos-7-0001"}
    first = post(node.seed_url("/api/order"), SEED000_ORDER, headers=key)
    again = post(node.seed_url("/api/order"), SEED000_ORDER, headers=key)
    check("with an Idempotency-Key a retry is the same order",
          first.status_code == again.status_code == 201
          and first.json() == again.json()
          and again.headers.get("Idempotent-Replayed") == "true",
          f"{first.text} / {again.text}")
    other = post(node.seed_url("/api/order"), SEED002_ORDER, headers=key)
    check("the same key with another body is 409 {\"detail\": ...}",
          other.status_code == 409 and isinstance(other.json().get("detail"), str),
          other.text)
    after = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    check("one order stored for the key", after == before + 1, f"{before} -> {after}")


def test_concurrent_orders(node, count=20):
    def place(i):
        return post(node.seed_url("/api/order"),
                    {"table": f"Table {i % 5 + 1}",
                     "items": [{"name": "Burger", "quantity": i % 3 + 1}]})
    start = time.time()
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(place, range(count)))
    took = time.time() - start
    ok = [r for r in responses if r.status_code == 201]
    ids = {r.json()["id"] for r in ok}
    check(f"concurrency: {len(ok)}/{count} orders created in {took:.2f} s",
          len(ok) == count and len(ids) == count)
    listed = {o["id"] for o in requests.get(node.seed_url("/api/orders"),
                                            timeout=TIMEOUT).json()}
    check("concurrency: every one is in GET /api/orders", ids <= listed)


# ---------------------------------------------------------------------------
# /ws/orders

async def recv_json(websocket, timeout=5):
    return json.loads(await asyncio.wait_for(websocket.recv(), timeout))


async def silent(websocket, seconds=QUIET):
    """True if nothing arrives for seconds."""
    try:
        message = await asyncio.wait_for(websocket.recv(), seconds)
    except asyncio.TimeoutError:
        return True
    print(f"   unexpected message: {message}")
    return False


async def test_websocket(node, kitchen, pad12):
    frames = FrameLog()
    async with connect(node.seed_ws(), frames) as websocket:
        initial = await recv_json(websocket)
        listed = await asyncio.to_thread(
            lambda: requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
        check("ws: first message is {\"type\": \"initial\", \"orders\": [...]}",
              set(initial) == {"type", "orders"} and initial["type"] == "initial")
        check("ws: initial holds every order, newest first, in the seed shape",
              initial["orders"] == listed, f"{len(initial['orders'])} vs {len(listed)}")

        response = await asyncio.to_thread(post, node.seed_url("/api/order"), SEED002_ORDER)
        message = await recv_json(websocket)
        check("ws: POST /api/order gives {\"type\": \"new_order\", \"order\": ...}",
              message == {"type": "new_order", "order": response.json()}, message)

        body = dict(SEED001_ORDER, order_id="ws-seed001", table_number="T12")
        response = await asyncio.to_thread(post, node.url("/orders"), body,
                                           headers=bearer(pad12))
        message = await recv_json(websocket)
        check("ws: POST /orders gives new_order too",
              message.get("type") == "new_order" and is_seed_order(message.get("order"))
              and str(message["order"]["id"]) == response.json().get("order_id"),
              message)

        # Changes that are not new orders send nothing on this socket
        cart = await asyncio.to_thread(
            post, node.url("/api/v1/tables/T12/cart/items"),
            {"item_id": "fries", "quantity": 1},
            headers={**bearer(kitchen), "Idempotency-Key": "ws-cart-1"})
        check("ws: a cart change (native API) is made", cart.status_code == 200,
              cart.text)
        check("ws: ... and sends nothing", await silent(websocket))
        status = await asyncio.to_thread(
            post, node.url(f"/api/v1/orders/{message['order']['id']}/status"),
            {"status": "accepted"},
            headers={**bearer(kitchen), "Idempotency-Key": "ws-status-1"})
        check("ws: a status change (native API) is made", status.status_code == 200,
              status.text)
        check("ws: ... and sends nothing", await silent(websocket))

        # A client's text gets no answer, and the socket stays
        await websocket.send("hello from a seed client")
        check("ws: a text from the client gets no reply", await silent(websocket))
        await asyncio.sleep(1.0)   # quiet: the server pings (--ws-ping-ms 300)
        check("ws: keep-alives are ping frames", frames.count("PING") >= 1,
              frames.frames)
        check("ws: the socket is still open", websocket.open)

        response = await asyncio.to_thread(post, node.seed_url("/api/order"), SEED000_ORDER)
        message = await recv_json(websocket)
        check("ws: the next message is the next new order",
              message == {"type": "new_order", "order": response.json()}, message)
        check("ws: nothing else came (text frames: initial + 3 new orders)",
              frames.count("TEXT") == 4
              and set(frames.frames) <= {"TEXT", "PING"}, frames.frames)


# ---------------------------------------------------------------------------
# Seed 001: GET /menu_items, POST /orders

def test_menu_items(node):
    response = requests.get(node.seed_url("/menu_items"), timeout=TIMEOUT)
    items = response.json()
    check("GET /menu_items is 200 with a JSON array",
          response.status_code == 200 and isinstance(items, list) and items)
    check("each item is exactly {id, name, price}",
          all(set(i) == {"id", "name", "price"} and isinstance(i["id"], str)
              and isinstance(i["name"], str)
              and isinstance(i["price"], (int, float)) for i in items))
    by_id = {i["id"]: i for i in items}
    check("price is in dollars (Burger 16.5)",
          by_id.get("burger", {}).get("price") == 16.5, by_id.get("burger"))
    check("an 86'd item is not listed", "asparagus" not in by_id)
    return by_id


def test_seed001_orders(node, kitchen, pad12):
    url = node.url("/orders")
    response = post(url, SEED001_ORDER)
    check("POST /orders without a token is 401 {\"error\": ...}",
          response.status_code == 401 and isinstance(response.json().get("error"), str),
          response.text)
    response = post(url, SEED001_ORDER, headers=bearer(pad12))
    body = response.json()
    check("POST /orders is 201 {\"order_id\": \"<id>\", \"status\": \"received\"}",
          response.status_code == 201 and set(body) == {"order_id", "status"}
          and isinstance(body["order_id"], str) and body["order_id"].isdigit()
          and body["status"] == "received", response.text)
    again = post(url, SEED001_ORDER, headers=bearer(pad12))
    check("a retry with the same order_id is the same order (201)",
          again.status_code == 201 and again.json() == body, again.text)
    conflict = post(url, dict(SEED001_ORDER, version=6), headers=bearer(pad12))
    check("the same order_id with another version is 409 Version conflict",
          conflict.status_code == 409
          and conflict.json() == {"error": "Version conflict"}, conflict.text)
    conflict = post(url, dict(SEED001_ORDER, items=[{"menu_item_id": "fries",
                                                    "quantity": 1}]),
                    headers=bearer(pad12))
    check("the same order_id with other items is 409 Version conflict",
          conflict.status_code == 409
          and conflict.json() == {"error": "Version conflict"}, conflict.text)
    for label, changed in [("'m1' (not our id)", SEED001_LITERAL),
                           ("an 86'd item", dict(SEED001_ORDER, order_id="id-86",
                                                 items=[{"menu_item_id": "asparagus",
                                                         "quantity": 1}])),
                           ("quantity 0", dict(SEED001_ORDER, order_id="id-q0",
                                               items=[{"menu_item_id": "burger",
                                                       "quantity": 0}]))]:
        response = post(url, changed, headers=bearer(pad12))
        check(f"{label} is 400 Invalid item", response.status_code == 400
              and response.json() == {"error": "Invalid item"}, response.text)
    for version in (-1, "5", 1.5):
        response = post(url, dict(SEED001_ORDER, order_id="id-v", version=version),
                        headers=bearer(pad12))
        check(f"version {version!r} is 400 Invalid version",
              response.status_code == 400
              and response.json() == {"error": "Invalid version"}, response.text)
    other = dict(SEED001_ORDER, table_number="T13", order_id="id-t13")
    response = post(url, other, headers=bearer(pad12))
    check("a pad token for another table is 403 {\"error\": ...}",
          response.status_code == 403 and "error" in response.json(), response.text)
    response = post(url, other, headers=bearer(kitchen))
    check("a kitchen token may order for any table (201)", response.status_code == 201,
          response.text)
    orders = requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json()
    mine = [o for o in orders if str(o["id"]) == body.get("order_id")]
    check("the order is in GET /api/orders in the seed shape",
          len(mine) == 1 and mine[0]["table"] == "T12"
          and mine[0]["items"] == [{"name": "Burger", "quantity": 2}], mine)


def test_rate_limit(node):
    """--table-rate 1 --table-burst 2: the third order of a table at once
    is refused; the refused one does not count; other tables go on."""
    pad = node.token("--table", "T40")
    url = node.url("/orders")

    def order(n, table="T40", token=pad):
        body = {"table_number": table, "items": [{"menu_item_id": "fries",
                                                  "quantity": 1}],
                "version": 1, "order_id": f"rate-{table}-{n}"}
        return post(url, body, headers=bearer(token))

    codes = [order(n).status_code for n in range(2)]
    limited = order(2)
    check("a table's first two orders are taken", codes == [201, 201], codes)
    check("the third at once is 429 {\"error\": \"Rate limit\"}",
          limited.status_code == 429 and limited.json() == {"error": "Rate limit"},
          limited.text)
    retry = limited.headers.get("Retry-After", "")
    check("with a Retry-After in whole seconds", retry.isdigit() and int(retry) >= 1,
          retry)
    check("another table is not held back",
          order(0, "T41", node.token("--table", "T41")).status_code == 201)
    # POST /api/order goes through the native limit: a pad's orders count
    # against its table (in the same bucket as /orders), staff's do not
    pad_base = f"{node.base}/compat/{pad}"
    seed = post(node.seed_url("/api/order", pad_base),
                {"table": "T40", "items": [{"name": "Fries", "quantity": 1}]})
    check("POST /api/order from the table's pad is rate-limited too (429)",
          seed.status_code == 429 and isinstance(seed.json().get("detail"), str)
          and seed.headers.get("Retry-After", "").isdigit(),
          f"{seed.status_code} {seed.text}")
    staff = [post(node.seed_url("/api/order"), {"table": "T40", "items": [
        {"name": "Fries", "quantity": 1}]}).status_code for _ in range(3)]
    check("POST /api/order with a kitchen token is not (as on the native API)",
          staff == [201, 201, 201], staff)
    time.sleep(int(retry) if retry.isdigit() else 1)
    check("after Retry-After the table may order again", order(3).status_code == 201)


def test_open_menu_off(node, kitchen):
    before = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    response = post(node.seed_url("/api/order"),
                    {"table": "Table 3", "items": [{"name": "Burger", "quantity": 1},
                                                   {"name": "Unicorn Steak",
                                                    "quantity": 1}]})
    check("open menu off: an unknown name is 422 at its line",
          is_fastapi_422(response, ["body", "items", 1, "name"]), response.text)
    check("open menu off: ... naming the item",
          "Unicorn Steak" in response.json()["detail"][0]["msg"], response.text)
    after = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    check("open menu off: nothing stored", after == before, f"{before} -> {after}")
    response = post(node.seed_url("/api/order"),
                    {"table": "Table 3", "items": [{"name": "burger", "quantity": 1}]})
    check("open menu off: a menu name in any case is taken (201)",
          response.status_code == 201
          and response.json()["items"] == [{"name": "Burger", "quantity": 1}],
          response.text)
    lines = native_order(node, response.json()["id"], kitchen).get("items", [])
    check("open menu off: ... as an ordinary line of that dish",
          len(lines) == 1 and lines[0]["item_id"] == "burger"
          and lines[0]["unit_cents"] > 0, lines)


async def test_compat_off(node):
    response = post(node.seed_url("/api/order"), SEED002_ORDER)
    check("compat off (the default): POST /api/order is 404", response.status_code == 404,
          response.status_code)
    response = post(node.url("/api/order"), SEED002_ORDER)
    check("compat off (the default): ... at its own path too", response.status_code == 404,
          response.status_code)
    check("compat off (the default): GET /menu_items is 404",
          requests.get(node.seed_url("/menu_items"), timeout=TIMEOUT).status_code == 404)
    for ws in (node.ws(), node.seed_ws()):
        try:
            async with connect(ws):
                refused = False
        except Exception:   # websockets' InvalidStatusCode: refused
            refused = True
        check("compat off (the default): /ws/orders is not served", refused)


# ---------------------------------------------------------------------------
# Tokens: the seed routes are behind them like the native API

async def ws_refused(uri):
    """The HTTP status the upgrade was refused with, or None if it was not."""
    try:
        async with connect(uri):
            return None
    except websockets.exceptions.InvalidStatusCode as error:
        return error.status_code


def test_tokens(node):
    pad = node.token("--table", "T7")
    before = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    for label, url in [("no token", node.url("/api/order")),
                       ("a token that is not ours",
                        node.seed_url("/api/order", node.base + "/compat/garbage"))]:
        response = post(url, SEED002_ORDER)
        check(f"POST /api/order with {label} is 401 {{\"detail\": ...}}",
              response.status_code == 401
              and "/compat/<token>" in response.json().get("detail", ""),
              f"{response.status_code} {response.text}")
    after = len(requests.get(node.seed_url("/api/orders"), timeout=TIMEOUT).json())
    check("... and no order is stored", after == before, f"{before} -> {after}")
    for path in ("/api/orders", "/menu_items"):
        response = requests.get(node.url(path), timeout=TIMEOUT)
        check(f"GET {path} without a token is 401", response.status_code == 401,
              response.status_code)
    pad_base = f"{node.base}/compat/{pad}"
    response = requests.get(node.seed_url("/api/orders", pad_base), timeout=TIMEOUT)
    check("GET /api/orders with a pad token is 403 (every table's orders)",
          response.status_code == 403, f"{response.status_code} {response.text}")
    response = post(node.seed_url("/api/order", pad_base),
                    {"table": "T8", "items": [{"name": "Burger", "quantity": 1}]})
    check("a pad token ordering for another table is 403",
          response.status_code == 403, f"{response.status_code} {response.text}")
    response = post(node.seed_url("/api/order", pad_base),
                    {"table": "T7", "items": [{"name": "Burger", "quantity": 1}]})
    check("a pad token orders for its own table through its base URL (201)",
          response.status_code == 201 and response.json().get("table") == "T7",
          f"{response.status_code} {response.text}")
    response = requests.get(node.seed_url("/menu_items", pad_base), timeout=TIMEOUT)
    check("a pad token reads /menu_items (200)", response.status_code == 200,
          response.status_code)
    response = post(node.url("/api/order"), {"table": "T7", "items": [
        {"name": "Burger", "quantity": 1}]}, headers=bearer(pad))
    check("a client that can send Authorization: Bearer needs no prefix (201)",
          response.status_code == 201, f"{response.status_code} {response.text}")
    for label, uri in [("without a token", node.ws()),
                       ("with a token that is not ours",
                        f"ws://127.0.0.1:{node.port}/compat/garbage/ws/orders")]:
        status = asyncio.run(ws_refused(uri))
        check(f"/ws/orders {label} is refused with 401", status == 401, status)
    status = asyncio.run(ws_refused(
        f"ws://127.0.0.1:{node.port}/compat/{pad}/ws/orders"))
    check("/ws/orders with a pad token is refused with 403", status == 403, status)


# ---------------------------------------------------------------------------

def stopped(node, label):
    status = node.stop()
    check(f"{label}: SIGTERM stops it with status 0", status == 0,
          f"status {status}; see {node.log_path}")


def main():
    if not ORDERBUS or not os.access(ORDERBUS, os.X_OK):
        print("usage: test_all_apis.py <path to orderbus> (or set ORDERBUS_BIN)")
        return 2
    parent = os.environ.get("TK_TMP") or None
    root = tempfile.mkdtemp(prefix="compat-", dir=parent)
    start = time.time()
    nodes = []
    try:
        print("🚀 orderbus up --compat 1 --open-menu 1")
        main_node = Node(root, "main", "--compat", "1", "--open-menu", "1",
                         "--ws-ping-ms", "300")
        nodes.append(main_node)
        kitchen = main_node.token("--staff", "kitchen")
        pad12 = main_node.token("--table", "T12")

        print("\n📝 seeds 000/002: POST /api/order, GET /api/orders")
        placed = [test_create_order(main_node, SEED002_ORDER, "seed 002 body"),
                  test_create_order(main_node, SEED000_ORDER, "seed 000 body")]
        test_get_orders(main_node, placed)
        test_open_menu_lines(main_node, kitchen)
        test_validation(main_node)
        test_idempotency_key(main_node)
        test_concurrent_orders(main_node)

        print("\n📡 /ws/orders")
        asyncio.run(test_websocket(main_node, kitchen, pad12))

        print("\n🍽  seed 001: GET /menu_items, POST /orders")
        test_menu_items(main_node)
        test_seed001_orders(main_node, kitchen, pad12)

        print("\n🔑 tokens")
        test_tokens(main_node)
        stopped(nodes.pop(), "main node")

        print("\n🔒 orderbus up --compat 1 --open-menu 0 --table-rate 1 "
              "--table-burst 2")
        strict = Node(root, "strict", "--compat", "1", "--open-menu", "0",
                      "--table-rate", "1", "--table-burst", "2")
        nodes.append(strict)
        test_open_menu_off(strict, strict.token("--staff", "kitchen"))
        test_rate_limit(strict)
        stopped(nodes.pop(), "strict node")

        print("\n⛔ orderbus up (compat is off unless enabled)")
        off = Node(root, "off")
        nodes.append(off)
        asyncio.run(test_compat_off(off))
        stopped(nodes.pop(), "compat-off node")
    except Exception as error:   # a crash is a failure, not a traceback only
        check("the suite ran to the end", False, repr(error))
        import traceback
        traceback.print_exc()
    finally:
        for node in nodes:
            node.stop()
    print(f"\n📊 {passed} passed, {failed} failed in {time.time() - start:.1f} s")
    if failed == 0:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"   logs and data kept in {root}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
