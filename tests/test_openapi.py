#!/usr/bin/python3
"""test_openapi — docs/openapi.json is true to the server.

    /usr/bin/python3 tests/test_openapi.py BUILD/orderbus SOURCE_DIR

Starts `orderbus up` on a free port with a fresh data directory, mints a
manager token and pad tokens, and then:

  - GET /api/openapi.json answers 200 with exactly docs/openapi.json;
  - the document holds together: OpenAPI 3.0.3, every $ref resolves, every
    operation has an operationId, tags and responses, every /api/v1/
    operation needs bearerAuth and every change an Idempotency-Key, every
    429/503 documents Retry-After, every example fits its schema;
  - every route the server's source registers (the s_routes table of
    bus/roles/bus_api.c, every mg_set_request_handler /
    mg_set_websocket_handler in bus/*.c, and the edge's pages and
    WebSockets put on through bus_http_ws.h's router) is in the document;
  - every path and method in the document answers: a valid request (path
    fields from objects made first, the request body's example with real
    ids, a fresh Idempotency-Key, the manager token where the operation has
    security) gets a documented 2xx/3xx whose body fits the documented
    schema and whose required headers are there; then variants (no token,
    another table's pad, no Idempotency-Key, a body that is not JSON, the
    wrong Content-Type, a body over 64 KiB, an unknown key, each documented
    limit broken by one, path fields that are not ids, an unknown query
    parameter) each get a status the document lists for that operation,
    with the documented body;
  - another method on each path gets the 405 (with Allow listing exactly the
    documented methods) that the document describes;
  - ETag/304, idempotent replay, the pad rate limit (429 + Retry-After) and
    both WebSockets (handshake and first messages against x-websockets).

Standard library only.  Prints "N passed, M failed"; exits 1 on failure.
"""

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TABLE = "T-oa"          # the table the test's carts and orders use
OTHER = "T-other"       # a pad of this table may not touch TABLE
RATE_TABLE = "T-rate"   # a pad of this table is driven into its rate limit
BIG_BODY = 70 * 1024    # over the 64 KiB limit


# ---------------------------------------------------------------------------
#  Results

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    verbose = bool(os.environ.get("TEST_OPENAPI_VERBOSE"))

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""), flush=True)
        return ok


R = Results()


# ---------------------------------------------------------------------------
#  A tiny JSON Schema (OpenAPI 3.0 dialect) validator: $ref, type, nullable,
#  required, properties, additionalProperties, items, enum, oneOf/anyOf,
#  minimum/maximum, minLength/maxLength, pattern, minItems/maxItems,
#  uniqueItems.

class Doc:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise KeyError(f"external $ref {ref}")
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 20:
                raise KeyError(f"$ref loop at {ref}")
        return node

    def errors(self, schema, value, where="$"):
        """The ways value breaks schema, as a list of strings."""
        schema = self.resolve(schema)
        out = []
        if value is None:
            if schema.get("nullable") or ("type" not in schema and "oneOf" not in schema
                                          and "anyOf" not in schema):
                return out
            return [f"{where}: null where {schema.get('type', 'a value')} is required"]
        for key in ("oneOf", "anyOf"):
            if key in schema:
                fits = [not self.errors(s, value, where) for s in schema[key]]
                if (key == "oneOf" and fits.count(True) != 1) or not any(fits):
                    out.append(f"{where}: fits {fits.count(True)} of the {key} schemas")
        kind = schema.get("type")
        type_ok = {
            None: True,
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "array": isinstance(value, list),
            "object": isinstance(value, dict),
        }.get(kind, False)
        if not type_ok:
            return out + [f"{where}: {json.dumps(value)[:60]} is not of type {kind}"]
        if "enum" in schema and value not in schema["enum"]:
            out.append(f"{where}: {value!r} not in {schema['enum']}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{where}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{where}: {value} > maximum {schema['maximum']}")
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                out.append(f"{where}: shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append(f"{where}: longer than {schema['maxLength']}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                out.append(f"{where}: {value[:40]!r} does not match {schema['pattern']}")
        if isinstance(value, list):
            if len(value) < schema.get("minItems", 0):
                out.append(f"{where}: fewer than {schema['minItems']} items")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(f"{where}: more than {schema['maxItems']} items")
            if schema.get("uniqueItems"):
                dumped = [json.dumps(v, sort_keys=True) for v in value]
                if len(set(dumped)) != len(dumped):
                    out.append(f"{where}: items are not unique")
            if "items" in schema:
                for i, item in enumerate(value):
                    out += self.errors(schema["items"], item, f"{where}[{i}]")
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append(f"{where}: required property '{name}' is missing")
            extra = schema.get("additionalProperties", True)
            for name, item in value.items():
                if name in props:
                    out += self.errors(props[name], item, f"{where}.{name}")
                elif extra is False:
                    out.append(f"{where}: property '{name}' is not in the schema")
                elif isinstance(extra, dict):
                    out += self.errors(extra, item, f"{where}.{name}")
        return out


# ---------------------------------------------------------------------------
#  HTTP

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # an email.message.Message
        self.body = body
        try:
            self.json = json.loads(body) if body else None
            self.is_json = bool(body)
        except ValueError:
            self.json = None
            self.is_json = False

    def __repr__(self):
        return f"{self.status} {self.body[:160]!r}"


class Server:
    def __init__(self, port):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method, path, body=None, headers=None, token=None,
                content_type="application/json"):
        """body: bytes, or anything JSON-serializable (None: no body)."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if content_type:
                hdrs["Content-Type"] = content_type
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, headers=hdrs,
                                     method=method.upper())
        if data is not None and not content_type:
            # urllib would add a form Content-Type of its own
            req.remove_header("Content-type")
        try:
            with OPENER.open(req, timeout=15) as resp:
                return Answer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())


# ---------------------------------------------------------------------------
#  WebSocket, just enough to read a handshake and a few frames

class WebSocket:
    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        status_line = self.file.readline().decode("latin-1")
        self.status = int(status_line.split()[1])
        self.headers = {}
        while True:
            line = self.file.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = b""
        if self.status != 101:
            self.body = self.file.read(int(self.headers.get("content-length", "0")))
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.accept_ok = self.headers.get("sec-websocket-accept") == accept

    def _exact(self, n):
        data = self.file.read(n)
        if len(data) != n:
            raise EOFError("WebSocket closed")
        return data

    def recv_json(self):
        """The next text message, parsed; control frames are skipped."""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._exact(2), "big")
            elif n == 127:
                n = int.from_bytes(self._exact(8), "big")
            mask = self._exact(4) if b1 & 0x80 else None
            payload = self._exact(n)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise EOFError(f"closed by the server: {payload[:2].hex()}")
            if opcode == 0x1:
                return json.loads(payload)

    def send_text(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                          + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def close(self):
        try:
            mask = os.urandom(4)
            self.sock.sendall(bytes([0x88, 0x80]) + mask)
        except OSError:
            pass
        self.file.close()
        self.sock.close()


# ---------------------------------------------------------------------------
#  The document

def operations(doc):
    """(path, method, operation, path item) for every operation."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method], item


def op_parameters(d, item, op):
    """The operation's parameters, path-level ones included, resolved."""
    params = {}
    for p in item.get("parameters", []) + op.get("parameters", []):
        p = d.resolve(p)
        params[(p["name"], p["in"])] = p
    return list(params.values())


def template_key(path):
    """/api/v1/orders/{order_id} and orders/* both become /api/v1/orders/*."""
    return re.sub(r"\{[^}]+\}", "*", path)


def walk_refs(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                found.append(v)
            else:
                walk_refs(v, found)
    elif isinstance(node, list):
        for v in node:
            walk_refs(v, found)


def check_document(d):
    doc = d.doc
    R.check(doc.get("openapi") == "3.0.3", "openapi is 3.0.3", doc.get("openapi"))
    R.check(doc.get("info", {}).get("title") == "orderbus"
            and doc["info"].get("version") == "0.1.0", "info title and version")
    R.check(doc.get("servers") == [{"url": "/"}], "servers is [{url: /}]")
    scheme = doc.get("components", {}).get("securitySchemes", {}).get("bearerAuth", {})
    R.check(scheme.get("type") == "http" and scheme.get("scheme") == "bearer",
            "securitySchemes.bearerAuth is http bearer")
    refs = []
    walk_refs(doc, refs)
    bad = []
    for ref in set(refs):
        try:
            d.resolve({"$ref": ref})
        except (KeyError, TypeError) as e:
            bad.append(f"{ref} ({e})")
    R.check(not bad, f"every $ref resolves ({len(set(refs))} distinct)", ", ".join(bad))
    ids = []
    for path, method, op, item in operations(doc):
        name = f"{method.upper()} {path}"
        ids.append(op.get("operationId"))
        R.check(op.get("tags") and op.get("responses"), f"{name} has tags and responses")
        params = op_parameters(d, item, op)
        for p in params:
            if p["in"] == "path":
                R.check("{" + p["name"] + "}" in path, f"{name}: path parameter "
                        f"{p['name']} is in the path")
        for field in re.findall(r"\{([^}]+)\}", path):
            R.check(any(p["in"] == "path" and p["name"] == field for p in params),
                    f"{name}: {{{field}}} has a parameter")
        if path.startswith("/api/v1/"):
            R.check(op.get("security") == [{"bearerAuth": []}],
                    f"{name} needs bearerAuth", op.get("security"))
            if method != "get":
                R.check(any(p["name"] == "Idempotency-Key" and p["in"] == "header"
                            and p.get("required") for p in params),
                        f"{name} needs an Idempotency-Key header")
        for status, resp in op["responses"].items():
            resp = d.resolve(resp)
            schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
            # a refusal says when to retry; /healthz's 503 is a status report
            if status in ("429", "503") and schema.get("$ref", "").split("/")[-1] in (
                    "Error", "DetailMessage", "Seed001Error"):
                R.check("Retry-After" in resp.get("headers", {}),
                        f"{name} {status} documents Retry-After")
        for p in params:
            if "example" in p:
                errs = d.errors(p["schema"], p["example"])
                R.check(not errs, f"{name}: example of parameter {p['name']} fits", errs)
        body = op.get("requestBody")
        if body:
            media = d.resolve(body)["content"]["application/json"]
            R.check("example" in media, f"{name}: the request body has an example")
            errs = d.errors(media["schema"], media.get("example"))
            R.check(not errs, f"{name}: the request body example fits its schema", errs)
    R.check(len(ids) == len(set(ids)) and None not in ids, "operationIds are unique")
    for name, schema in doc["components"]["schemas"].items():
        if "example" in schema:
            errs = d.errors(schema, schema["example"])
            R.check(not errs, f"components.schemas.{name}: its example fits", errs)
    ws = doc.get("x-websockets", {})
    for path in ("/ws", "/ws/orders"):
        R.check(path in ws and "first_message" in ws[path],
                f"x-websockets describes {path}")


# ---------------------------------------------------------------------------
#  Routes in the source

def source_routes(src):
    """(native routes as {(METHOD, /api/v1/pattern)}, other HTTP paths,
    WebSocket paths), read from the C sources."""
    api = open(os.path.join(src, "bus", "roles", "bus_api.c")).read()
    table = re.search(r"s_routes\[\]\s*=\s*\{(.*?)\n\};", api, re.S)
    native = set()
    if table:
        for method, pattern in re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]*)"', table.group(1)):
            native.add((method, "/api/v1/" + pattern))
    http, ws = set(), set()
    bus = os.path.join(src, "bus")
    sources = sorted(os.path.join(layer, name)
                     for layer in os.listdir(bus)
                     if os.path.isdir(os.path.join(bus, layer))
                     for name in os.listdir(os.path.join(bus, layer)))
    for name in sources:
        if not name.endswith(".c") or name.endswith("_test.c"):
            continue
        text = open(os.path.join(bus, name)).read()
        for path in re.findall(r'mg_set_request_handler\s*\(\s*[^,]+,\s*"([^"]+)"', text):
            if path != "/api":     # the native dispatcher: its routes are s_routes
                http.add((name, path.rstrip("$")))
        for path in re.findall(r'mg_set_websocket_handler\s*\(\s*[^,]+,\s*"([^"]+)"', text):
            ws.add((name, path.rstrip("$")))
        # the edge's, through its server-neutral router (bus_http_ws.h)
        for path in re.findall(r'\.(?:page|redirect)\s*\(\s*[^,]+,\s*"([^"]+)"', text):
            http.add((name, path))
        for path in re.findall(r'\.websocket\s*\(\s*[^,]+,\s*"([^"]+)"', text):
            ws.add((name, path))
        # a feed the edge serves on its seats (bus_edge_feed_t in bus_edge.h)
        for path in re.findall(r'bus_edge_feed_t\s+\w+\s*=\s*\{\s*"([^"]+)"', text):
            ws.add((name, path))
    return native, http, ws


def check_source_routes(d, src):
    doc = d.doc
    native, http, ws = source_routes(src)
    R.check(len(native) >= 10, f"found the s_routes table in bus/roles/bus_api.c ({len(native)} routes)")
    documented = {(m.upper(), template_key(p)) for p, m, _, _ in operations(doc)}
    for method, pattern in sorted(native):
        R.check((method, pattern) in documented,
                f"route {method} {pattern} (bus/roles/bus_api.c s_routes) is in the document")
    for method, pattern in sorted(documented):
        if pattern.startswith("/api/v1/"):
            R.check((method, pattern) in native, f"documented {method} {pattern} is "
                    "in s_routes of bus/roles/bus_api.c")
    paths = {template_key(p) for p in doc["paths"]}
    for file, path in sorted(http):
        R.check(path in paths, f"handler {path} (bus/{file}) is in the document")
    for file, path in sorted(ws):
        R.check(path in doc.get("x-websockets", {}),
                f"WebSocket {path} (bus/{file}) is in x-websockets")


# ---------------------------------------------------------------------------
#  Requests built from the document

class World:
    """The server, the tokens and the objects the requests need."""

    def __init__(self, server, d, tokens):
        self.server = server
        self.d = d
        self.manager = tokens["manager"]
        self.pad = tokens["pad"]
        self.pad_other = tokens["pad_other"]
        menu = server.request("GET", "/api/v1/menu", token=self.manager).json
        items = [i for c in menu["categories"] for i in c["items"]
                 if i.get("available", True)]
        with_mods = [i for i in items if i.get("modifiers")]
        self.item = (with_mods or items)[0]
        self.spare = [i for i in items if i["id"] != self.item["id"]][-1]
        self.place_order()      # so that lists have an order to check

    def key(self):
        return "oa-" + uuid.uuid4().hex

    def place_order(self):
        a = self.server.request("POST", "/api/v1/orders", token=self.manager,
                                headers={"Idempotency-Key": self.key()},
                                body={"table": TABLE, "items": [
                                    {"item_id": self.item["id"], "quantity": 1}]})
        assert a.status == 201, f"placing a fixture order: {a}"
        return a.json["id"]

    def add_line(self):
        a = self.server.request("POST", f"/api/v1/tables/{TABLE}/cart/items",
                                token=self.manager,
                                headers={"Idempotency-Key": self.key()},
                                body={"item_id": self.item["id"], "quantity": 1})
        assert a.status == 200, f"adding a fixture cart line: {a}"
        return max(line["line_id"] for line in a.json["items"])

    def bump_line(self, order_id):
        a = self.server.request("POST", f"/api/v1/orders/{order_id}/lines/1/bump",
                                token=self.manager,
                                headers={"Idempotency-Key": self.key()}, body={})
        assert a.status == 200, f"bumping a fixture order's line: {a}"

    def path_value(self, name):
        if name == "order_id":
            return str(self.place_order())
        if name == "line_id":
            return str(self.add_line())
        if name == "order_line_id":     # a fresh order's one line
            return "1"
        if name == "station":     # the menu's default station when none
            return self.item.get("station", "kitchen")
        if name == "item_id":
            return self.spare["id"]
        if name == "table":
            return TABLE
        raise KeyError(f"no value for path parameter {name}")

    def fill(self, value, key=None):
        """The example body with this server's ids and the test's table."""
        if isinstance(value, dict):
            return {k: self.fill(v, k) for k, v in value.items()}
        if key == "modifiers":
            return [m["id"] for m in self.item.get("modifiers", [])[:1]]
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if key in ("item_id", "menu_item_id"):
            return self.item["id"]
        if key in ("table", "table_number"):
            return TABLE
        if key == "name":
            return self.item["name"]
        if key == "order_id":
            return self.key()
        return value


def invalid_path_value(schema):
    """A value the path parameter's schema refuses."""
    if schema.get("type") == "integer":
        return "0"
    return "x" * (schema.get("maxLength", 32) + 8)


def mutations(d, schema, body, prefix=""):
    """(label, body) pairs that each break one documented rule of schema:
    a number past its limits, a string past maxLength or outside its
    pattern, an array with too few or too many items, one level into the
    first element of arrays of objects."""
    schema = d.resolve(schema)
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = d.resolve(prop)
        where = f"{prefix}{name}"

        def put(value, label):
            b = copy.deepcopy(body)
            b[name] = value
            out.append((f"{where} {label}", b))
        kind = prop.get("type")
        if "oneOf" in prop:     # e.g. a string, or an integer taken as its digits
            strings = [d.resolve(s) for s in prop["oneOf"]
                       if d.resolve(s).get("type") == "string" and "maxLength" in d.resolve(s)]
            if strings:
                put("x" * (strings[0]["maxLength"] + 1),
                    f"{strings[0]['maxLength'] + 1} characters")
        if kind == "integer":
            if "maximum" in prop:
                put(prop["maximum"] + 1, f"= {prop['maximum'] + 1} (maximum {prop['maximum']})")
            if "minimum" in prop:
                put(prop["minimum"] - 1, f"= {prop['minimum'] - 1} (minimum {prop['minimum']})")
            put("1", "a string")
        elif kind == "string":
            if "maxLength" in prop:
                put("x" * (prop["maxLength"] + 1), f"{prop['maxLength'] + 1} characters")
            if "enum" in prop:
                put("not-a-" + name, "not in the enum")
        elif kind == "boolean":
            put("yes", "a string")
        elif kind == "array":
            if prop.get("minItems", 0) > 0:
                put([], "empty")
            if "maxItems" in prop and name in body and body[name]:
                put(body[name][:1] * (prop["maxItems"] + 1),
                    f"{prop['maxItems'] + 1} items")
            inner = d.resolve(prop.get("items", {}))
            if inner.get("type") == "object" and isinstance(body.get(name), list) \
                    and body[name] and isinstance(body[name][0], dict):
                for label, sub in mutations(d, inner, body[name][0], f"{where}[0]."):
                    b = copy.deepcopy(body)
                    b[name] = [sub] + b[name][1:]
                    out.append((label, b))
        if name in schema.get("required", []) and prefix == "":
            b = copy.deepcopy(body)
            b.pop(name, None)
            out.append((f"{where} missing", b))
    return out


def check_answer(d, op, name, answer, want_success=False, want=None):
    """The status is documented for op (and a success, or want, if asked);
    a JSON body fits the documented schema; required headers are there."""
    status = str(answer.status)
    documented = op["responses"]
    if not R.check(status in documented, f"{name}: status {status} is documented",
                   f"documented {sorted(documented)}; got {answer}"):
        return False
    ok = True
    if want_success:
        ok = R.check(answer.status < 400, f"{name}: succeeds", repr(answer))
    if want is not None:
        ok = R.check(answer.status == want, f"{name}: answers {want}", repr(answer)) and ok
    resp = d.resolve(documented[status])
    content = resp.get("content", {})
    ctype = (answer.headers.get("Content-Type") or "").split(";")[0].strip()
    if content:
        ok = R.check(ctype in content, f"{name}: Content-Type {ctype} is documented",
                     f"documented {list(content)}") and ok
        media = content.get(ctype, {})
        if ctype == "application/json" and "schema" in media:
            errs = d.errors(media["schema"], answer.json) if answer.is_json \
                else ["not JSON"]
            ok = R.check(not errs, f"{name}: {status} body fits the schema",
                         "; ".join(errs[:5])) and ok
    for header, spec in resp.get("headers", {}).items():
        spec = d.resolve(spec)
        value = answer.headers.get(header)
        if value is None:
            if spec.get("required"):
                ok = R.check(False, f"{name}: {status} has header {header}") and ok
            continue
        schema = d.resolve(spec.get("schema", {}))
        if schema.get("type") == "integer":
            value = int(value) if value.isdigit() else value
        errs = d.errors(schema, value)
        ok = R.check(not errs, f"{name}: header {header} fits", errs) and ok
    return ok


def exercise(world, path, method, op, item):
    """Send the valid request and its variants for one operation."""
    d, server = world.d, world.server
    name = f"{method.upper()} {path}"
    params = op_parameters(d, item, op)
    secured = bool(op.get("security"))
    needs_key = any(p["name"] == "Idempotency-Key" and p["in"] == "header"
                    and p.get("required") for p in params)
    values = {p["name"]: world.path_value(p["name"])
              for p in params if p["in"] == "path"}
    if path.endswith("/cart/order"):
        world.add_line()            # something to order
    if path.endswith("/unbump"):    # a recall moves only a line past it
        world.bump_line(values["order_id"])
    url = path
    for k, v in values.items():
        url = url.replace("{" + k + "}", urllib.parse.quote(v, safe=""))
    query = {p["name"]: p["schema"].get("default", p.get("example"))
             for p in params if p["in"] == "query" and p.get("required")}
    body_spec = d.resolve(op["requestBody"]) if "requestBody" in op else None
    media = body_spec["content"]["application/json"] if body_spec else None
    body = world.fill(media["example"]) if media else None

    def send(url=url, body=body, token="manager", key=True, query=query,
             content_type="application/json", extra=None):
        headers = dict(extra or {})
        if key:
            headers["Idempotency-Key"] = world.key()
        tok = {"manager": world.manager, "pad_other": world.pad_other,
               None: None}[token] if secured else None
        q = ("?" + urllib.parse.urlencode(query)) if query else ""
        return server.request(method, url + q, body=body, headers=headers,
                              token=tok, content_type=content_type)

    # Variants first: none of them may change anything
    if secured:
        check_answer(d, op, f"{name} without a token", send(token=None), want=401)
        check_answer(d, op, f"{name} with another table's pad token",
                     send(token="pad_other"))
    if needs_key:
        check_answer(d, op, f"{name} without Idempotency-Key", send(key=False), want=400)
    if media:
        schema = d.resolve(media["schema"])
        check_answer(d, op, f"{name} with a body that is not JSON", send(body=b'{"x":'))
        a = send(content_type="text/plain")
        check_answer(d, op, f"{name} with Content-Type text/plain", a)
        R.check(a.status >= 400, f"{name} with Content-Type text/plain is refused", repr(a))
        check_answer(d, op, f"{name} with a {BIG_BODY}-byte body",
                     send(body=json.dumps({"x": "y" * BIG_BODY}).encode()), want=413)
        for label, bad in mutations(d, schema, body):
            a = send(body=bad)
            check_answer(d, op, f"{name} with {label}", a)
            R.check(400 <= a.status < 500, f"{name} refuses {label}", repr(a))
        unknown = dict(body, zz_unknown_key=1)
        a = send(body=unknown)
        if schema.get("additionalProperties") is False:
            check_answer(d, op, f"{name} with an unknown key", a)
            R.check(400 <= a.status < 500, f"{name} refuses an unknown key "
                    "(additionalProperties: false)", repr(a))
        else:
            check_answer(d, op, f"{name} with an unknown key (ignored)", a,
                         want_success=True)
    for p in params:
        if p["in"] == "path":
            bad_url = path
            for k, v in values.items():
                v = invalid_path_value(d.resolve(p["schema"])) if k == p["name"] else v
                bad_url = bad_url.replace("{" + k + "}", urllib.parse.quote(v, safe=""))
            check_answer(d, op, f"{name} with {p['name']} not valid",
                         send(url=bad_url), want=404)
    if method == "get":     # a change with an ignored parameter would be done
        check_answer(d, op, f"{name} with an unknown query parameter",
                     send(query=dict(query, zz_unknown=1)))
    examples = {p["name"]: p["example"] for p in params
                if p["in"] == "query" and "example" in p}
    if examples and method == "get":
        check_answer(d, op, f"{name} with every documented query parameter",
                     send(query=dict(query, **examples)), want_success=True)
    # The valid request, last
    a = send()
    check_answer(d, op, f"{name} (valid request)", a, want_success=True)
    return a, send, values


def check_other_methods(world, path, item):
    """Another method on path: the 405 the document describes."""
    d, server = world.d, world.server
    methods = {m.upper() for m in METHODS if m in item}
    url = path
    for p in [d.resolve(p) for p in item.get("parameters", [])]:
        url = url.replace("{" + p["name"] + "}", world.path_value(p["name"]))
    for op in [item[m] for m in METHODS if m in item]:
        for p in [d.resolve(p) for p in op.get("parameters", [])]:
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", world.path_value(p["name"]))
    declared = [d.resolve(item[m]["responses"]["405"]) for m in METHODS
                if m in item and "405" in item[m]["responses"]]
    a = server.request("PUT", url, token=world.manager)
    if declared or path.startswith("/api/v1/"):
        R.check(a.status == 405, f"PUT {path}: 405", repr(a))
        if declared:
            allow_documented = "Allow" in declared[0].get("headers", {})
        else:
            allow_documented = True     # info.description: every /api/v1/ 405
            err = d.errors({"$ref": "#/components/schemas/Error"}, a.json)
            R.check(a.is_json and not err, f"PUT {path}: 405 body is an Error", err)
        if allow_documented:
            allow = {m.strip() for m in (a.headers.get("Allow") or "").split(",") if m.strip()}
            R.check(allow == methods, f"PUT {path}: Allow lists the documented methods",
                    f"Allow {sorted(allow)}, documented {sorted(methods)}")
    else:
        # documented as "any method is answered as GET"
        get = item.get("get", {})
        R.check(str(a.status) in get.get("responses", {}),
                f"PUT {path}: answered as GET, with a documented status", repr(a))


# ---------------------------------------------------------------------------
#  Specific behaviours

def check_specifics(world, results):
    d, server = world.d, world.server
    doc = d.doc
    # ETag and 304
    menu_op = doc["paths"]["/api/v1/menu"]["get"]
    a = server.request("GET", "/api/v1/menu", token=world.manager)
    etag = a.headers.get("ETag")
    b = server.request("GET", "/api/v1/menu", token=world.manager,
                       headers={"If-None-Match": etag or ""})
    check_answer(d, menu_op, "GET /api/v1/menu with If-None-Match", b, want=304)

    # Idempotent replay of the valid POST /api/v1/orders
    place = doc["paths"]["/api/v1/orders"]["post"]
    key = world.key()
    body = world.fill(place["requestBody"]["content"]["application/json"]["example"])
    first = server.request("POST", "/api/v1/orders", body=body, token=world.manager,
                           headers={"Idempotency-Key": key})
    again = server.request("POST", "/api/v1/orders", body=body, token=world.manager,
                           headers={"Idempotency-Key": key})
    check_answer(d, place, "POST /api/v1/orders replayed", again, want=201)
    R.check(again.headers.get("Idempotent-Replayed") == "true"
            and again.json and first.json and again.json["id"] == first.json["id"],
            "POST /api/v1/orders replayed: same order, Idempotent-Replayed: true",
            repr(again))
    body2 = dict(body, items=body["items"][:1])
    other = server.request("POST", "/api/v1/orders", body=body2, token=world.manager,
                           headers={"Idempotency-Key": key})
    check_answer(d, place, "POST /api/v1/orders, same key, other body", other, want=409)

    # A pad's table beyond its rate: 429 with Retry-After
    statuses = []
    for _ in range(14):
        a = server.request("POST", "/api/v1/orders", token=world.pad_rate,
                           headers={"Idempotency-Key": world.key()},
                           body={"table": RATE_TABLE, "items": [
                               {"item_id": world.item["id"], "quantity": 1}]})
        statuses.append(a.status)
        if a.status == 429:
            check_answer(d, place, "POST /api/v1/orders past the pad's rate", a)
            break
    R.check(429 in statuses, "a pad's table is rate-limited (429)", statuses)

    # An order fits the Order schema field by field (already checked on
    # every answer); here: a fresh one read back equals what was placed.
    oid = world.place_order()
    a = server.request("GET", f"/api/v1/orders/{oid}", token=world.manager)
    check_answer(d, doc["paths"]["/api/v1/orders/{order_id}"]["get"],
                 "GET /api/v1/orders/{order_id} of a fresh order", a, want=200)

    # The report: a manager's; a bad range names its parameter
    report = doc["paths"]["/api/v1/report"]["get"]
    a = server.request("GET", "/api/v1/report", token=world.kitchen)
    check_answer(d, report, "GET /api/v1/report with a kitchen token", a, want=403)
    a = server.request("GET", "/api/v1/report?from=2026-01-06&to=2026-01-05",
                       token=world.manager)
    check_answer(d, report, "GET /api/v1/report with from after to", a, want=400)
    R.check(a.json and a.json["error"].get("field") == "from",
            "GET /api/v1/report with from after to names from", repr(a))

    # The WebSockets
    ws_doc = doc["x-websockets"]
    ws = WebSocket(server.port, "/ws")
    R.check(ws.status == 401, "WS /ws without a token: 401", ws.status)
    R.check(not d.errors({"$ref": "#/components/schemas/Error"},
                         json.loads(ws.body or b"null")), "WS /ws 401 body is an Error")
    ws.close()
    ws = WebSocket(server.port, f"/ws?token={world.pad}&table={OTHER}")
    R.check(ws.status == 403, "WS /ws with a pad token for another table: 403", ws.status)
    ws.close()
    ws = WebSocket(server.port, f"/ws?token={world.manager}")
    if R.check(ws.status == 101 and ws.accept_ok, "WS /ws with a token: 101", ws.status):
        first = ws.recv_json()
        errs = d.errors(ws_doc["/ws"]["first_message"], first)
        R.check(not errs, "WS /ws: the first message is a WsSnapshot", errs)
        world.place_order()
        event = ws.recv_json()
        errs = d.errors({"$ref": "#/components/schemas/WsEvent"}, event)
        R.check(not errs and event.get("event") == "order.placed",
                "WS /ws: a new order arrives as a WsEvent", errs or event)
        ws.send_text("hello")
        reply = ws.recv_json()
        errs = d.errors({"$ref": "#/components/schemas/WsError"}, reply)
        R.check(not errs, "WS /ws: a client message is answered with a WsError", errs)
    ws.close()
    ws = WebSocket(server.port, "/ws/orders")
    R.check(ws.status == 401, "WS /ws/orders without a token: 401", ws.status)
    R.check(not d.errors({"$ref": "#/components/schemas/Error"},
                         json.loads(ws.body or b"null")),
            "WS /ws/orders 401 body is an Error")
    ws.close()
    ws = WebSocket(server.port, f"/compat/{world.pad}/ws/orders")
    R.check(ws.status == 403, "WS /ws/orders with a pad token: 403", ws.status)
    ws.close()
    ws = WebSocket(server.port, f"/compat/{world.kitchen}/ws/orders")
    if R.check(ws.status == 101 and ws.accept_ok, "WS /ws/orders: 101", ws.status):
        first = ws.recv_json()
        errs = d.errors(ws_doc["/ws/orders"]["first_message"], first)
        R.check(not errs, "WS /ws/orders: the first message is a WsInitial", errs)
        world.place_order()
        msg = ws.recv_json()
        errs = d.errors({"$ref": "#/components/schemas/WsNewOrder"}, msg)
        R.check(not errs, "WS /ws/orders: a new order arrives as a WsNewOrder", errs)
    ws.close()


# ---------------------------------------------------------------------------
#  Running the server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mint(binary, secret, *args):
    out = subprocess.run([binary, "token", "--secret-file", secret, *args],
                         capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        raise RuntimeError(f"orderbus token {' '.join(args)}: {out.stderr}")
    return out.stdout.splitlines()[0].strip()


def main():
    if len(sys.argv) != 3:
        print("usage: test_openapi.py ORDERBUS_BINARY SOURCE_DIR", file=sys.stderr)
        return 2
    binary, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    started = time.monotonic()
    with open(os.path.join(src, "docs", "openapi.json"), "rb") as f:
        source_doc = json.loads(f.read())
    d = Doc(source_doc)
    check_document(d)
    check_source_routes(d, src)

    tmp = tempfile.mkdtemp(prefix="openapi-", dir=os.environ.get("TK_TMP") or None)
    data = os.path.join(tmp, "data")
    port = free_port()
    log = open(os.path.join(tmp, "up.log"), "w")
    proc = subprocess.Popen([binary, "up", "--http-port", str(port), "--data", data,
                             "--web", os.path.join(src, "web"),
                             "--menu", os.path.join(src, "config", "demo-menu.json"),
                             # the seed routes are documented too: on, as
                             # a site with seed clients runs them
                             "--compat", "1", "--open-menu", "1",
                             # the test makes several hundred changes with
                             # one manager token in a few seconds: more than
                             # the default burst (60) once the line routes
                             # came (issue 17); the pad's order rate, which
                             # it does check, is another limit
                             "--change-burst", "2000"],
                            stdout=log, stderr=subprocess.STDOUT)
    server = Server(port)
    try:
        deadline = time.monotonic() + 20
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.request("GET", "/healthz").status == 200:
                    healthy = True
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if not R.check(healthy, "orderbus up is healthy", f"see {tmp}/up.log"):
            return 1
        secret = os.path.join(data, "secret")
        tokens = {"manager": mint(binary, secret, "--staff", "manager"),
                  "pad": mint(binary, secret, "--table", TABLE),
                  "pad_other": mint(binary, secret, "--table", OTHER),
                  "pad_rate": mint(binary, secret, "--table", RATE_TABLE),
                  "kitchen": mint(binary, secret, "--staff", "kitchen")}

        served = server.request("GET", "/api/openapi.json")
        R.check(served.status == 200, "GET /api/openapi.json: 200", repr(served))
        R.check(served.is_json and served.json == source_doc,
                "GET /api/openapi.json is docs/openapi.json",
                "the binary embeds another document: rebuild")

        world = World(server, d, tokens)
        world.pad_rate = tokens["pad_rate"]
        world.kitchen = tokens["kitchen"]
        count = 0
        for path, method, op, item in operations(source_doc):
            count += 1
            try:
                exercise(world, path, method, op, item)
            except (AssertionError, KeyError, OSError) as e:
                R.check(False, f"{method.upper()} {path}: exercised", repr(e))
        R.check(count == sum(1 for _ in operations(source_doc)), f"{count} operations exercised")
        for path, item in source_doc["paths"].items():
            try:
                check_other_methods(world, path, item)
            except (AssertionError, KeyError, OSError) as e:
                R.check(False, f"PUT {path}: exercised", repr(e))
        try:
            check_specifics(world, R)
        except (AssertionError, KeyError, OSError, EOFError, ValueError) as e:
            R.check(False, "specific checks ran", repr(e))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if R.failed == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"server log and data kept in {tmp}")
    elapsed = time.monotonic() - started
    R.check(elapsed < 60, f"finished within 60 s ({elapsed:.1f} s)")
    print(f"{R.passed} passed, {R.failed} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
