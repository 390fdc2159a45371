/*  bus_compat.c — the seed systems' routes (docs/compat.md), built on the
    gateway as the native API is (bus_api.c), answering in those systems'
    own shapes:

      seeds 000/002 (FastAPI)  POST /api/order, GET /api/orders
                               refusals {"detail": [...]} or {"detail": "..."}
      seed 001 (Express)       GET /menu_items, POST /orders
                               refusals {"error": "..."}

    A handler reads the seed's body into the same bus_cmd_t a native
    request makes, hands it to the writer through the gateway, and turns
    the ack back into the seed's shape.  Nothing here bypasses the writer's
    checks: the seed routes only read differently.  */

#include <sodium.h>
#include <czmq.h>
#include "orderbus/bus_compat.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_req.h"
#include "orderbus/bus_limit.h"

#define S_LIMIT_TABLES 4096   //  tables the rate limiter tracks at once

//  Keys the clients give live in namespaces of their own, so that a seed
//  client's "id-1234" never meets a pad's "id-1234" as a conflict
#define S_KEY_SEED     "api-order:"   //  Idempotency-Key of POST /api/order
#define S_KEY_ORDER_ID "orders:"      //  order_id of POST /orders
#define S_KEY_FRESH    "compat-"      //  made here when the client gives none

typedef struct _s_route_t s_route_t;

//  A route's binding to this instance, the router's argument
typedef struct {
    bus_compat_t *self;
    const s_route_t *route;
} s_binding_t;

#define S_ROUTES 4   //  s_routes' size (checked where it is defined)

struct _bus_compat_t {
    bus_gateway_t **gateways;   //  one per site, as auth's (borrowed)
    bus_auth_t *auth;           //  borrowed
    bus_limit_t *limit;         //  orders per table, both order routes
    bool open_menu;             //  names off the menu become free-text lines
    s_binding_t bindings[S_ROUTES];
};

//  The gateway of claims' site (checked by bus_auth: it is served)
static bus_gateway_t *
s_gateway (bus_compat_t *self, const bus_claims_t *claims)
{
    return self->gateways[bus_auth_site_index (self->auth, claims->site)];
}

//  A table's key in the order limiter: on a node of several sites each
//  has its own table T1.  Returns key.
static const char *
s_table_key (bus_compat_t *self, const bus_claims_t *claims, const char *table,
             char *key, size_t cap)
{
    if (bus_auth_site_count (self->auth) == 1)
        return table;
    snprintf (key, cap, "%s/%s", claims->site, table);
    return key;
}

//  ---------------------------------------------------------------------
//  Answers

//  Send body (taken) as JSON.  Returns status.
static int
s_send (bus_req_t *req, int status, json_t *body, const char *headers)
{
    bus_req_send_json (req, status, body, headers);
    json_decref (body);
    return status;
}

//  FastAPI's answer to anything but a validation error: {"detail": "..."}
static int
s_detail (bus_req_t *req, int status, const char *message, const char *headers)
{
    return s_send (req, status, json_pack ("{s:s}", "detail", message),
                   headers);
}

//  Seed 001's answer to every refusal: {"error": "..."}
static int
s_error (bus_req_t *req, int status, const char *message, const char *headers)
{
    return s_send (req, status, json_pack ("{s:s}", "error", message), headers);
}

//  Append one of pydantic's validation errors to detail.  loc (taken) is
//  the path as FastAPI gives it: ["body", "items", 0, "quantity"].
static void
s_invalid (json_t *detail, json_t *loc, const char *msg, const char *type)
{
    json_array_append_new (detail, json_pack ("{s:o, s:s, s:s}", "loc", loc,
                                              "msg", msg, "type", type));
}

//  A wrong method: FastAPI says 405 with Allow; so do we for seed 001,
//  where Express would have said 404 in HTML.
static int
s_not_allowed (bus_req_t *req, const char *allow, bool fastapi)
{
    char headers[48];
    snprintf (headers, sizeof headers, "Allow: %s\r\n", allow);
    return fastapi ? s_detail (req, 405, "Method Not Allowed", headers)
                   : s_error (req, 405, "Method not allowed", headers);
}

static bool
s_method_is (bus_req_t *req, const char *method)
{
    return streq (bus_req_method (req), method);
}

//  ---------------------------------------------------------------------
//  Reading a body

//  The request body as JSON into *doc (caller decrefs): an empty body is
//  JSON null, one that does not parse leaves *doc NULL with the reason in
//  *error.  Returns 0, or BUS_ERR_INVALID (Content-Type set, and not
//  JSON), BUS_ERR_TOO_BIG or BUS_ERR_MALFORMED (the body ended early).
static int
s_read_json (bus_req_t *req, json_t **doc, json_error_t *error)
{
    *doc = NULL;
    //  Both seeds' servers read a body that came without a Content-Type
    if (bus_req_header (req, "Content-Type") && !bus_req_is_json (req))
        return BUS_ERR_INVALID;
    char *body;
    size_t len;
    int rc = bus_req_body (req, BUS_REQ_BODY_MAX, &body, &len);
    if (rc != 0)
        return rc == BUS_ERR_TOO_BIG ? rc : BUS_ERR_MALFORMED;
    if (!bus_json_depth_ok (body, len, BUS_JSON_DEPTH_MAX)) {
        memset (error, 0, sizeof *error);
        snprintf (error->text, sizeof error->text,
                  "nested deeper than %d "
                  "levels",
                  BUS_JSON_DEPTH_MAX);
    } else
        *doc =
            len ? json_loadb (body, len, JSON_DECODE_ANY, error) : json_null ();
    free (body);
    return 0;
}

//  A string field's text, or a number's where pydantic (v1) took a number
//  for a string; NULL for anything else.  A number's digits go in buf.
static const char *
s_text (const json_t *value, char *buf, size_t cap)
{
    if (json_is_integer (value)) {
        snprintf (buf, cap, "%" JSON_INTEGER_FORMAT,
                  json_integer_value (value));
        return buf;
    }
    return json_string_value (value);
}

//  ---------------------------------------------------------------------
//  Seeds 000/002: {"table": "Table 1", "items": [{"name", "quantity"}]}

//  A problem in pydantic's (v1) words, which FastAPI passes on
typedef struct {
    const char *msg;
    const char *type;
} s_problem_t;

static const s_problem_t
    s_missing = { "field required", "value_error.missing" },
    s_not_str = { "str type expected", "type_error.str" },
    s_not_int = { "value is not a valid integer", "type_error.integer" },
    s_not_list = { "value is not a valid list", "type_error.list" },
    s_not_dict = { "value is not a valid dict", "type_error.dict" },
    s_too_few = { "ensure this value is greater than 0",
                  "value_error.number.not_gt" },
    s_too_many = { "ensure this value is less than or equal to 99",
                   "value_error.number.not_le" },
    s_no_lines = { "ensure this value has at least 1 items",
                   "value_error.list.min_items" },
    s_many_lines = { "ensure this value has at most 50 items",
                     "value_error.list.max_items" },
    s_empty = { "ensure this value has at least 1 characters",
                "value_error.any_str.min_length" },
    s_long_table = { "ensure this value has at most 32 characters",
                     "value_error.any_str.max_length" },
    s_long_name = { "ensure this value has at most 80 characters (bytes of "
                    "UTF-8)",
                    "value_error.any_str.max_length" },
    //  and orderbus's own rules
    s_bad_table = { "a table is 1 to 32 printable ASCII characters, without "
                    "'/'",
                    "value_error" },
    s_bad_name = { "a name may not hold control characters", "value_error" };

static void
s_report (json_t *detail, json_t *loc, const s_problem_t *problem)
{
    s_invalid (detail, loc, problem->msg, problem->type);
}

static void
s_seed_table (const json_t *doc, bus_cmd_t *cmd, json_t *detail)
{
    const json_t *value = json_object_get (doc, "table");
    char digits[32];
    const char *text = s_text (value, digits, sizeof digits);
    const s_problem_t *problem = NULL;
    if (!value)
        problem = &s_missing;
    else if (!text)
        problem = &s_not_str;
    else if (bus_strlcpy (cmd->table, text, sizeof cmd->table) != 0)
        problem = &s_long_table;
    else if (!bus_valid_table (text))
        problem = &s_bad_table;
    if (problem)
        s_report (detail, json_pack ("[s,s]", "body", "table"), problem);
}

//  The dish's name of items[i] into line->name (priced by name later).
static void
s_seed_name (const json_t *item, int i, bus_line_t *line, json_t *detail)
{
    const json_t *value = json_object_get (item, "name");
    char digits[32];
    const char *text = s_text (value, digits, sizeof digits);
    const s_problem_t *problem = NULL;
    if (!value)
        problem = &s_missing;
    else if (!text)
        problem = &s_not_str;
    else if (!*text)
        problem = &s_empty;
    else if (bus_strlcpy (line->name, text, sizeof line->name) != 0)
        problem = &s_long_name;
    else if (!bus_valid_note (text))
        problem = &s_bad_name;
    if (problem)
        s_report (detail, json_pack ("[s,s,i,s]", "body", "items", i, "name"),
                  problem);
}

static void
s_seed_quantity (const json_t *item, int i, bus_line_t *line, json_t *detail)
{
    const json_t *value = json_object_get (item, "quantity");
    json_int_t qty = json_integer_value (value);
    const s_problem_t *problem = NULL;
    if (!value)
        problem = &s_missing;
    else if (!json_is_integer (value))
        problem = &s_not_int;
    else if (qty < 1)
        problem = &s_too_few;
    else if (qty > BUS_QTY_MAX)
        problem = &s_too_many;
    if (problem)
        s_report (detail,
                  json_pack ("[s,s,i,s]", "body", "items", i, "quantity"),
                  problem);
    else
        line->qty = (uint32_t) qty;
}

//  The lines of items (count of them, already checked) into cmd.
static void
s_seed_lines (const json_t *items, bus_cmd_t *cmd, json_t *detail)
{
    for (uint32_t i = 0; i < cmd->line_count; i++) {
        const json_t *item = json_array_get (items, i);
        bus_line_t *line = &cmd->lines[i];
        bus_strlcpy (line->item_id, BUS_CUSTOM_ITEM, sizeof line->item_id);
        if (!json_is_object (item))
            s_report (detail, json_pack ("[s,s,i]", "body", "items", (int) i),
                      &s_not_dict);
        else {
            s_seed_name (item, (int) i, line, detail);
            s_seed_quantity (item, (int) i, line, detail);
        }
    }
}

//  Read seed 002's order body into cmd: the table, and lines that name
//  their dish (item_id BUS_CUSTOM_ITEM).  Each problem is appended to
//  detail, as FastAPI lists them all; unknown keys are ignored, as
//  pydantic ignores them.
static void
s_seed_parse (const json_t *doc, bus_cmd_t *cmd, json_t *detail)
{
    cmd->type = BUS_CMD_PLACE;
    if (!json_is_object (doc)) {
        s_report (detail, json_pack ("[s]", "body"),
                  json_is_null (doc) ? &s_missing : &s_not_dict);
        return;
    }
    s_seed_table (doc, cmd, detail);
    const json_t *items = json_object_get (doc, "items");
    size_t count = json_array_size (items);
    const s_problem_t *problem = NULL;
    if (!items)
        problem = &s_missing;
    else if (!json_is_array (items))
        problem = &s_not_list;
    else if (count < 1)
        problem = &s_no_lines;
    else if (count > BUS_LINES_MAX)
        problem = &s_many_lines;
    if (problem)
        s_report (detail, json_pack ("[s,s]", "body", "items"), problem);
    else {
        cmd->line_count = (uint32_t) count;
        s_seed_lines (items, cmd, detail);
    }
}

//  The id of the menu item called name, in any case; NULL if none is.
//  Borrowed from menu.
static const char *
s_menu_id (const json_t *menu, const char *name)
{
    size_t c, i;
    json_t *category, *item;
    json_array_foreach (json_object_get (menu, "categories"), c, category)
        json_array_foreach (json_object_get (category, "items"), i, item)
    {
        const char *dish = json_string_value (json_object_get (item, "name"));
        if (dish && strcasecmp (dish, name) == 0)
            return json_string_value (json_object_get (item, "id"));
    }
    return NULL;
}

//  Without open-menu mode every name must be a dish on the menu: each line
//  becomes an ordinary line for that dish's id, priced by id as a native
//  order is.  Names not on the menu are appended to detail.
static void
s_seed_close (const json_t *menu, bus_cmd_t *cmd, json_t *detail)
{
    for (uint32_t i = 0; i < cmd->line_count; i++) {
        bus_line_t *line = &cmd->lines[i];
        const char *id = s_menu_id (menu, line->name);
        if (id && bus_strlcpy (line->item_id, id, sizeof line->item_id) == 0) {
            line->name[0] = '\0';
            continue;
        }
        char msg[BUS_NAME_MAX + 96];
        snprintf (msg, sizeof msg,
                  "'%s' is not on the menu (open-menu mode is "
                  "off: every name must be a dish on the menu)",
                  line->name);
        s_invalid (detail,
                   json_pack ("[s,s,i,s]", "body", "items", (int) i, "name"),
                   msg, "value_error");
    }
}

//  What the writer said of a refusal, or the code's own words when it
//  said nothing.
static const char *
s_ack_message (const bus_ack_t *ack)
{
    return *ack->error ? ack->error : bus_strerror (ack->status);
}

//  The writer's refusal as FastAPI would list it.  Its message names the
//  field first ("items[1].item_id: 'fries' is not available"); the seed
//  client named that line's dish, so the loc points at the name.
static json_t *
s_seed_refusal (const bus_ack_t *ack)
{
    unsigned line;
    const char *message = s_ack_message (ack);
    const char *colon = strstr (message, ": ");
    json_t *loc =
        sscanf (message, "items[%u]", &line) == 1
            ? json_pack ("[s,s,i,s]", "body", "items", (int) line, "name")
            : json_pack ("[s]", "body");
    json_t *detail = json_array ();
    s_invalid (detail, loc, colon ? colon + 2 : message, "value_error");
    return json_pack ("{s:o}", "detail", detail);
}

//  A key of our own for a client that gave none: that request is a new
//  order, whatever came before it.
static void
s_fresh_key (char *key, size_t cap)
{
    unsigned char bytes[8];
    char hex[2 * sizeof bytes + 1];
    randombytes_buf (bytes, sizeof bytes);
    sodium_bin2hex (hex, sizeof hex, bytes, sizeof bytes);
    snprintf (key, cap, S_KEY_FRESH "%s", hex);
}

//  The client's key, given, in namespace (prefix).  0, or -1 if it is
//  empty, too long or not printable ASCII.
static int
s_given_key (const char *prefix, const char *given, char *key, size_t cap)
{
    int n = snprintf (key, cap, "%s%s", prefix, given);
    return *given && n < (int) cap && bus_valid_key (key) ? 0 : -1;
}

//  The command's key: the client's Idempotency-Key, or a fresh one (the
//  seed clients send none).  0, or -1 if the header is not a usable key.
static int
s_seed_key (bus_req_t *req, char *key, size_t cap)
{
    const char *given = bus_req_header (req, "Idempotency-Key");
    if (given)
        return s_given_key (S_KEY_SEED, given, key, cap);
    s_fresh_key (key, cap);
    return 0;
}

//  Without open-menu mode, every name becomes its dish's id (from the
//  gateway's copy of the menu), or a problem in detail.  0, or the status
//  of the 503 sent when there is no menu to read.
static int
s_seed_names (bus_gateway_t *gateway, bus_req_t *req, bus_cmd_t *cmd,
              json_t *detail)
{
    uint64_t version;
    json_t *menu = bus_gateway_menu (gateway, &version);
    if (!menu)
        return s_detail (req, 503,
                         "the menu is not available: the writer "
                         "is unreachable or has no menu",
                         "Retry-After: 1\r\n");
    s_seed_close (menu, cmd, detail);
    json_decref (menu);
    return 0;
}

//  Headers and body into cmd.  0, or the status of the refusal sent.
static int
s_seed_read (bus_compat_t *self, bus_gateway_t *gateway, bus_req_t *req,
             bus_cmd_t *cmd)
{
    if (s_seed_key (req, cmd->key, sizeof cmd->key) != 0) {
        json_t *detail = json_array ();
        s_invalid (detail, json_pack ("[s,s]", "header", "idempotency-key"),
                   "an Idempotency-Key is 1 to 118 printable ASCII characters",
                   "value_error");
        return s_send (req, 422, json_pack ("{s:o}", "detail", detail), NULL);
    }
    json_t *doc;
    json_error_t error;
    int rc = s_read_json (req, &doc, &error);
    if (rc == BUS_ERR_TOO_BIG)
        return s_detail (req, 413, "Request body is larger than 65536 bytes",
                         NULL);
    if (rc == BUS_ERR_MALFORMED)
        return s_detail (req, 400, "There was an error parsing the body", NULL);
    json_t *detail = json_array ();
    if (rc == BUS_ERR_INVALID)   //  FastAPI then validates the raw bytes
        s_report (detail, json_pack ("[s]", "body"), &s_not_dict);
    else if (!doc)
        s_invalid (detail, json_pack ("[s,i]", "body", error.position),
                   error.text, "value_error.jsondecode");
    else
        s_seed_parse (doc, cmd, detail);
    json_decref (doc);
    int status = 0;
    if (json_array_size (detail) == 0 && !self->open_menu)
        status = s_seed_names (gateway, req, cmd, detail);
    cmd->open_menu = self->open_menu;
    if (status == 0 && json_array_size (detail) > 0)
        status = s_send (req, 422, json_pack ("{s:o}", "detail", detail), NULL);
    else
        json_decref (detail);
    return status;
}

//  The gateway could not get an answer: 503, in FastAPI's or seed 001's
//  words.  A request without a key may still have been stored.
static int
s_busy (bus_req_t *req, int rc, bool fastapi)
{
    const char *message =
        rc == BUS_ERR_OVERLOADED    ? "too many orders are waiting for the "
                                      "writer; try again shortly"
        : rc == BUS_ERR_UNAVAILABLE ? "the writer is unreachable; try again "
                                      "shortly"
                                    : "the writer did not confirm in time; the "
                                      "order may or may not have been taken";
    return fastapi ? s_detail (req, 503, message, "Retry-After: 1\r\n")
                   : s_error (req, 503, message, "Retry-After: 1\r\n");
}

static bool
s_writer_failed (int status)
{
    return status == BUS_ERR_UNAVAILABLE || status == BUS_ERR_STORAGE
           || status == BUS_ERR_MAP_FULL;
}

//  Hand cmd to the writer and answer in seed 002's shapes.
static int
s_seed_submit (bus_gateway_t *gateway, bus_req_t *req, bus_cmd_t *cmd)
{
    bus_ack_t *ack = malloc (sizeof *ack);
    if (!ack)
        return s_detail (req, 500, "out of memory", NULL);
    int rc = bus_gateway_submit (gateway, cmd, ack);
    int status;
    if (rc != 0)
        status = s_busy (req, rc, true);
    else if (ack->status == BUS_ERR_CONFLICT)   //  only with a client's key
        status = s_detail (req, 409, s_ack_message (ack), NULL);
    else if (s_writer_failed (ack->status))
        status = s_detail (req, 503, s_ack_message (ack), "Retry-After: 1\r\n");
    else if (ack->status != 0)
        status = s_send (req, 422, s_seed_refusal (ack), NULL);
    else
        status =
            s_send (req, 201, bus_compat_order (&ack->event.order),
                    ack->duplicate ? "Idempotent-Replayed: true\r\n" : NULL);
    free (ack);
    return status;
}

//  May the caller order for table, and is the table within its rate?
//  The native API's rules (bus_api.c): a pad orders for its own table
//  only, and a pad's orders are limited per table; staff are not.  0, or
//  the 403 or 429 sent, in FastAPI's shape.
static int
s_seed_guard (bus_compat_t *self, bus_req_t *req, const bus_claims_t *claims,
              const char *table)
{
    char message[160];
    if (bus_token_allows_table (claims, table) != 0) {
        snprintf (message, sizeof message,
                  "Forbidden: this token is for table %s only", claims->table);
        return s_detail (req, 403, message, NULL);
    }
    int64_t wait_ms;
    char key[BUS_LIMIT_KEY_MAX];
    if (bus_token_is_staff (claims)
        || bus_limit_take (self->limit,
                           s_table_key (self, claims, table, key, sizeof key),
                           zclock_mono (), &wait_ms)
               == 0)
        return 0;
    int64_t wait_s = (wait_ms + 999) / 1000;
    char headers[48];
    snprintf (headers, sizeof headers, "Retry-After: %" PRId64 "\r\n", wait_s);
    snprintf (message, sizeof message,
              "table %s is ordering too fast; retry in %" PRId64 " s", table,
              wait_s);
    return s_detail (req, 429, message, headers);
}

//  POST /api/order
static int
s_seed_place (bus_compat_t *self, bus_req_t *req, const bus_claims_t *claims)
{
    bus_cmd_t *cmd = calloc (1, sizeof *cmd);
    if (!cmd)
        return s_detail (req, 500, "out of memory", NULL);
    bus_gateway_t *gateway = s_gateway (self, claims);
    int status = s_seed_read (self, gateway, req, cmd);
    if (status == 0)
        status = s_seed_guard (self, req, claims, cmd->table);
    if (status == 0)
        status = s_seed_submit (gateway, req, cmd);
    free (cmd);
    return status;
}

static void
s_append_seed (const bus_order_t *order, void *arg)
{
    json_array_append_new ((json_t *) arg, bus_compat_order (order));
}

//  GET /api/orders (staff: the route says so)
static int
s_seed_list (bus_compat_t *self, bus_req_t *req, const bus_claims_t *claims)
{
    json_t *orders = json_array ();
    if (!orders
        || bus_gateway_orders (s_gateway (self, claims), s_append_seed, orders)
               != 0) {
        json_decref (orders);
        return s_detail (req, 503,
                         "the writer did not answer; try again "
                         "shortly",
                         "Retry-After: 1\r\n");
    }
    return s_send (req, 200, orders, NULL);
}

//  ---------------------------------------------------------------------
//  Seed 001: GET /menu_items, POST /orders with {"table_number", "items":
//  [{"menu_item_id", "quantity"}], "version", "order_id"}

//  GET /menu_items: the available items, priced in dollars
static int
s_menu_items (bus_compat_t *self, bus_req_t *req, const bus_claims_t *claims)
{
    uint64_t version;
    json_t *menu = bus_gateway_menu (s_gateway (self, claims), &version);
    if (!menu)
        return s_error (req, 500, "Fetch failed", NULL);
    json_t *list = json_array ();
    size_t c, i;
    json_t *category, *item;
    json_array_foreach (json_object_get (menu, "categories"), c, category)
        json_array_foreach (json_object_get (category, "items"), i, item)
    {
        if (json_is_false (json_object_get (item, "available")))
            continue;
        json_int_t cents =
            json_integer_value (json_object_get (item, "price_cents"));
        json_array_append_new (list,
                               json_pack ("{s:O, s:O, s:f}", "id",
                                          json_object_get (item, "id"), "name",
                                          json_object_get (item, "name"),
                                          "price", (double) cents / 100.0));
    }
    json_decref (menu);
    return s_send (req, 200, list, NULL);
}

//  The line of items[i].  0, or -1 if it is not one.
static int
s_order_line (const json_t *item, bus_line_t *line)
{
    const char *id = json_string_value (json_object_get (item, "menu_item_id"));
    const json_t *qty = json_object_get (item, "quantity");
    if (!id || bus_strlcpy (line->item_id, id, sizeof line->item_id) != 0
        || !bus_valid_item_id (id) || !json_is_integer (qty)
        || json_integer_value (qty) < 1
        || json_integer_value (qty) > BUS_QTY_MAX)
        return -1;
    line->qty = (uint32_t) json_integer_value (qty);
    return 0;
}

//  Read seed 001's order body into cmd.  0, or -1 with the refusal in
//  why[cap]: "Invalid item" (the seed's own words) for anything wrong in a
//  line, "Invalid version", or "Invalid request: ..." naming the field.
//  version has no meaning of ours; it takes part in what order_id stands
//  for (docs/compat.md), so it rides in the command's fingerprint.
static int
s_order_parse (const json_t *doc, bus_cmd_t *cmd, char *why, size_t cap)
{
    cmd->type = BUS_CMD_PLACE;
    const char *table =
        json_string_value (json_object_get (doc, "table_number"));
    const json_t *items = json_object_get (doc, "items");
    const json_t *version = json_object_get (doc, "version");
    const json_t *order_id = json_object_get (doc, "order_id");
    const char *problem = NULL;
    if (!json_is_object (doc))
        problem = "Invalid request: the body must be a JSON object";
    else if (!table || bus_strlcpy (cmd->table, table, sizeof cmd->table) != 0
             || !bus_valid_table (table))
        problem = "Invalid request: table_number must be 1 to 32 printable "
                  "ASCII characters, without '/'";
    else if (json_array_size (items) < 1
             || json_array_size (items) > BUS_LINES_MAX)
        problem = "Invalid request: items must be a list of 1 to 50 lines";
    else if (version
             && (!json_is_integer (version) || json_integer_value (version) < 0
                 || json_integer_value (version) > UINT32_MAX))
        problem = "Invalid version";
    else if (order_id && !json_is_string (order_id))
        problem = "Invalid request: order_id must be a string";
    cmd->line_count = problem ? 0 : (uint32_t) json_array_size (items);
    for (uint32_t i = 0; i < cmd->line_count && !problem; i++)
        if (s_order_line (json_array_get (items, i), &cmd->lines[i]) != 0)
            problem = "Invalid item";
    cmd->version = (uint32_t) json_integer_value (version);
    snprintf (why, cap, "%s", problem ? problem : "");
    return problem ? -1 : 0;
}

//  The key: order_id in its namespace, or a fresh one.  0 or -1.
static int
s_order_key (const json_t *doc, char *key, size_t cap)
{
    const char *order_id =
        json_string_value (json_object_get (doc, "order_id"));
    if (order_id)
        return s_given_key (S_KEY_ORDER_ID, order_id, key, cap);
    s_fresh_key (key, cap);
    return 0;
}

//  Body into cmd.  0, or the status of the 400 sent.
static int
s_order_read (bus_req_t *req, bus_cmd_t *cmd)
{
    json_t *doc;
    json_error_t error;
    int rc = s_read_json (req, &doc, &error);
    if (rc == BUS_ERR_TOO_BIG)
        return s_error (req, 413, "Request body is larger than 65536 bytes",
                        NULL);
    if (rc != 0 || !doc) {
        char why[BUS_ERROR_MAX];
        snprintf (why, sizeof why, "Invalid request: %s",
                  rc == BUS_ERR_INVALID
                      ? "Content-Type must be application/json"
                  : rc != 0 ? "the body ended early"
                            : error.text);
        return s_error (req, 400, why, NULL);
    }
    char why[BUS_ERROR_MAX];
    int status = 0;
    if (s_order_parse (doc, cmd, why, sizeof why) != 0)
        status = s_error (req, 400, why, NULL);
    else if (s_order_key (doc, cmd->key, sizeof cmd->key) != 0)
        status = s_error (req, 400,
                          "Invalid request: order_id must be 1 to "
                          "121 printable ASCII characters",
                          NULL);
    json_decref (doc);
    return status;
}

//  May the caller order for this table, and is the table within its rate?
//  The rate holds for every caller: seed 001 limited tables, not tokens,
//  and a node run open has no tokens to tell callers apart.  0, or the
//  403 or 429 sent.
static int
s_order_guard (bus_compat_t *self, bus_req_t *req, const bus_claims_t *claims,
               const char *table)
{
    if (bus_token_allows_table (claims, table) != 0)
        return s_error (req, 403, "Forbidden: this token is for another table",
                        NULL);
    int64_t wait_ms;
    char key[BUS_LIMIT_KEY_MAX];
    if (bus_limit_take (self->limit,
                        s_table_key (self, claims, table, key, sizeof key),
                        zclock_mono (), &wait_ms)
        == 0)
        return 0;
    char headers[48];
    snprintf (headers, sizeof headers, "Retry-After: %" PRId64 "\r\n",
              (wait_ms + 999) / 1000);
    return s_error (req, 429, "Rate limit", headers);
}

//  Hand cmd to the writer and answer in seed 001's shapes.
static int
s_order_submit (bus_gateway_t *gateway, bus_req_t *req, bus_cmd_t *cmd)
{
    bus_ack_t *ack = malloc (sizeof *ack);
    if (!ack)
        return s_error (req, 500, "Out of memory", NULL);
    int rc = bus_gateway_submit (gateway, cmd, ack);
    int status;
    if (rc != 0)
        status = s_busy (req, rc, false);
    else if (ack->status == BUS_ERR_CONFLICT)
        status = s_error (req, 409, "Version conflict", NULL);
    else if (ack->status == BUS_ERR_UNKNOWN_ITEM
             || ack->status == BUS_ERR_UNAVAILABLE_ITEM)
        status = s_error (req, 400, "Invalid item", NULL);
    else if (s_writer_failed (ack->status))
        status = s_error (req, 503, s_ack_message (ack), "Retry-After: 1\r\n");
    else if (ack->status != 0) {
        char why[BUS_ERROR_MAX + 32];
        snprintf (why, sizeof why, "Invalid request: %s", s_ack_message (ack));
        status = s_error (req, 400, why, NULL);
    } else
        status =
            s_send (req, 201,
                    json_pack ("{s:o, s:s}", "order_id",
                               json_sprintf ("%" PRIu64, ack->event.order.id),
                               "status", "received"),
                    ack->duplicate ? "Idempotent-Replayed: true\r\n" : NULL);
    free (ack);
    return status;
}

//  POST /orders
static int
s_order_place (bus_compat_t *self, bus_req_t *req, const bus_claims_t *claims)
{
    bus_cmd_t *cmd = calloc (1, sizeof *cmd);
    if (!cmd)
        return s_error (req, 500, "Out of memory", NULL);
    bus_gateway_t *gateway = s_gateway (self, claims);
    int status = s_order_read (req, cmd);
    if (status == 0)
        status = s_order_guard (self, req, claims, cmd->table);
    //  An unknown id costs no trip to the writer (which checks again)
    bus_json_error_t error;
    if (status == 0
        && bus_gateway_check_lines (gateway, cmd->lines, cmd->line_count, true,
                                    true, &error)
               != 0)
        status = s_error (req, 400, "Invalid item", NULL);
    if (status == 0)
        status = s_order_submit (gateway, req, cmd);
    free (cmd);
    return status;
}

//  ---------------------------------------------------------------------
//  Access: every route needs a token, like the native API.  Clients that
//  cannot send a header put it in their base URL: /compat/<token>/api/order

typedef int (s_handler_fn) (bus_compat_t *self, bus_req_t *req,
                            const bus_claims_t *claims);

struct _s_route_t {
    const char *path;        //  the seed's own path
    const char *uri;         //  as added at that path (bus_req.h)
    const char *method;      //  the one it serves; others get 405
    bus_token_role_t role;   //  the least role that may use it
    bool fastapi;            //  FastAPI's shapes (seeds 000/002), or 001's
    s_handler_fn *fn;
};

//  Whole paths for the two under /api: bus_req tries those before
//  "<uri>/..." prefixes, where the native "/api", added first, wins
//  (bus_req.h).  Roles as the native routes': ordering and the menu for
//  any token (a pad for its own table), every table's orders for staff.
static const s_route_t s_routes[] = {
    { "/api/order", "/api/order", "POST", BUS_TOKEN_PAD, true, s_seed_place },
    { "/api/orders", "/api/orders", "GET", BUS_TOKEN_KITCHEN, true,
      s_seed_list },
    { "/menu_items", "/menu_items$", "GET", BUS_TOKEN_PAD, false,
      s_menu_items },
    { "/orders", "/orders$", "POST", BUS_TOKEN_PAD, false, s_order_place },
};
_Static_assert(sizeof s_routes / sizeof s_routes[0] == S_ROUTES,
               "S_ROUTES is s_routes' size");

#define S_PREFIX     "/compat/"
#define S_PREFIX_LEN (sizeof S_PREFIX - 1)

//  The token in path's "/compat/<token>/" prefix into token[cap]: 1, 0
//  if path has no such prefix, -1 if its token is empty or too long.
static int
s_path_token (const char *path, char *token, size_t cap)
{
    if (strncmp (path, S_PREFIX, S_PREFIX_LEN) != 0)
        return 0;
    const char *start = path + S_PREFIX_LEN;
    size_t len = strcspn (start, "/");
    if (len == 0 || len >= cap)
        return -1;
    memcpy (token, start, len);
    token[len] = '\0';
    return 1;
}

int
bus_compat_site (bus_auth_t *auth, bus_req_t *req)
{
    char token[BUS_TOKEN_MAX + 2];
    int found = s_path_token (bus_req_path (req), token, sizeof token);
    if (found == 0)
        return bus_auth_site_of (auth, req);
    bus_claims_t said;
    if (found < 0 || bus_token_peek (token, &said) != 0)
        return -1;
    return bus_auth_site_index (auth, said.site);
}

//  path without its "/compat/<token>" prefix ("" if nothing follows it)
static const char *
s_route_path (const char *path)
{
    if (strncmp (path, S_PREFIX, S_PREFIX_LEN) != 0)
        return path;
    const char *rest = strchr (path + S_PREFIX_LEN, '/');
    return rest ? rest : "";
}

int
bus_compat_claims (bus_auth_t *auth, bus_req_t *req, bus_claims_t *claims)
{
    char token[BUS_TOKEN_MAX + 2];
    int found = s_path_token (bus_req_path (req), token, sizeof token);
    if (found > 0)
        return bus_auth_verify (auth, token, claims);
    if (found < 0) {
        memset (claims, 0, sizeof *claims);
        return BUS_ERR_UNAUTHORIZED;
    }
    return bus_auth_check (auth, req, claims);
}

//  401 (no token, not ours, expired) or 403 (a role too weak) for route,
//  in its seed's shape, saying how to send a token.
static int
s_refuse (bus_req_t *req, int rc, const s_route_t *route, const char *why)
{
    char message[300];
    if (why)   //  a token of a site not served
        snprintf (message, sizeof message, "Forbidden: %s", why);
    else if (rc == BUS_ERR_FORBIDDEN)
        snprintf (message, sizeof message,
                  "Forbidden: %s %s needs a kitchen or manager token",
                  route->method, route->path);
    else
        snprintf (message, sizeof message,
                  "%s: %s: put a token in the base URL, %s<token>%s, or "
                  "send Authorization: Bearer <token> (docs/compat.md)",
                  route->fastapi ? "Not authenticated" : "Unauthorized",
                  rc == BUS_ERR_EXPIRED ? "the token has expired"
                                        : "a valid token is needed",
                  "/compat/", route->path);
    int status = rc == BUS_ERR_FORBIDDEN || why ? 403 : 401;
    return route->fastapi ? s_detail (req, status, message, NULL)
                          : s_error (req, status, message, NULL);
}

//  Every route, at its own path and under /compat/<token>: the method,
//  then who is asking, then the handler.
static int
s_serve (bus_req_t *req, void *arg)
{
    s_binding_t *binding = (s_binding_t *) arg;
    const s_route_t *route = binding->route;
    if (!streq (s_route_path (bus_req_path (req)), route->path))
        return route->fastapi ? s_detail (req, 404, "Not Found", NULL)
                              : s_error (req, 404, "Not found", NULL);
    if (!s_method_is (req, route->method))
        return s_not_allowed (req, route->method, route->fastapi);
    bus_claims_t claims;
    int rc = bus_compat_claims (binding->self->auth, req, &claims);
    if (rc == 0)
        rc = bus_token_allows_role (&claims, route->role);
    char why[256];
    if (rc != 0)
        return s_refuse (
            req, rc, route,
            bus_auth_why (binding->self->auth, rc, &claims, why, sizeof why));
    return route->fn (binding->self, req, &claims);
}

//  Any other path under /compat/: a bad token is a 401 whatever follows
//  it (nothing is told to a caller without one), a good one a 404.
static int
s_serve_other (bus_req_t *req, void *arg)
{
    bus_compat_t *self = (bus_compat_t *) arg;
    bus_claims_t claims;
    int rc = bus_compat_claims (self->auth, req, &claims);
    char why[256];
    if (rc == BUS_ERR_WRONG_SITE)
        return s_detail (
            req, 403, bus_auth_why (self->auth, rc, &claims, why, sizeof why),
            NULL);
    if (rc != 0)
        return s_detail (req, 401,
                         "Not authenticated: a valid token is needed in "
                         "the path, /compat/<token>/... (docs/compat.md)",
                         NULL);
    return s_detail (req, 404, "Not Found", NULL);
}

//  ---------------------------------------------------------------------
//  Construction

bus_compat_t *
bus_compat_new (bus_gateway_t **gateways, bus_auth_t *auth,
                bus_req_router_t *router)
{
    if (sodium_init () < 0)   //  for randombytes_buf; idempotent
        return NULL;
    bus_compat_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    const bus_config_t *config = bus_gateway_config (gateways[0]);
    self->gateways = gateways;
    self->auth = auth;
    self->open_menu = config->open_menu != 0;
    self->limit = bus_limit_new (config->table_rate_per_s, config->table_burst,
                                 S_LIMIT_TABLES);
    if (!self->limit) {
        free (self);
        return NULL;
    }
    //  Every route waits for the writer: it blocks.  Its whole path under
    //  /compat/<token>/ is added too; other paths there get s_serve_other.
    for (size_t i = 0; i < S_ROUTES; i++) {
        self->bindings[i] = (s_binding_t){ self, &s_routes[i] };
        char uri[96];
        snprintf (uri, sizeof uri, S_PREFIX "*%s$", s_routes[i].path);
        bus_req_route_t plain = { NULL, s_routes[i].uri, true, s_serve,
                                  &self->bindings[i] };
        bus_req_route_t prefixed = { NULL, uri, true, s_serve,
                                     &self->bindings[i] };
        bus_req_router_add (router, &plain);
        bus_req_router_add (router, &prefixed);
    }
    bus_req_route_t other = { NULL, "/compat", false, s_serve_other, self };
    bus_req_router_add (router, &other);
    zsys_info ("compat: seed routes /api/order, /api/orders, /menu_items, "
               "/orders (open menu %s), each with a token, also under "
               "/compat/<token>/ (docs/compat.md)",
               self->open_menu ? "on" : "off");
    return self;
}

void
bus_compat_destroy (bus_compat_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_limit_destroy (&(*self_p)->limit);
    free (*self_p);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Selftest

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

static json_t *
s_test_json (const char *text)
{
    json_t *doc = json_loads (text, JSON_DECODE_ANY, NULL);
    assert (doc);
    return doc;
}

//  The loc of detail[i] as compact JSON text, for comparison.  Caller frees.
static char *
s_test_loc (const json_t *detail, size_t i)
{
    return json_dumps (json_object_get (json_array_get (detail, i), "loc"),
                       JSON_COMPACT);
}

static void
s_test_seed_valid (bus_cmd_t *cmd)
{
    json_t *detail = json_array ();
    json_t *doc = s_test_json ("{\"table\":\"Table 1\",\"items\":[{\"name\":"
                               "\"Burger\",\"quantity\":3},{\"name\":\"Ice "
                               "Cream\",\"quantity\":1,\"extra\":true}],"
                               "\"waiter\":\"Sam\"}");
    memset (cmd, 0, sizeof *cmd);
    s_seed_parse (doc, cmd, detail);
    assert (json_array_size (detail) == 0);
    assert (cmd->type == BUS_CMD_PLACE && streq (cmd->table, "Table 1"));
    assert (cmd->line_count == 2 && cmd->lines[1].qty == 1);
    assert (streq (cmd->lines[0].item_id, BUS_CUSTOM_ITEM));
    assert (streq (cmd->lines[1].name, "Ice Cream"));
    json_decref (doc);

    //  Closed menu: names become ids, in any case; unknown ones are named
    json_t *menu =
        s_test_json ("{\"categories\":[{\"id\":\"mains\",\"items\":["
                     "{\"id\":\"burger\",\"name\":\"Burger\"},"
                     "{\"id\":\"ice-cream\",\"name\":\"Ice Cream\"}]}]}");
    strcpy (cmd->lines[0].name, "BURGER");
    s_seed_close (menu, cmd, detail);
    assert (json_array_size (detail) == 0);
    assert (streq (cmd->lines[0].item_id, "burger") && !*cmd->lines[0].name);
    assert (streq (cmd->lines[1].item_id, "ice-cream"));
    strcpy (cmd->lines[0].name, "burger");
    strcpy (cmd->lines[1].item_id, BUS_CUSTOM_ITEM);
    strcpy (cmd->lines[1].name, "Unicorn Steak");
    s_seed_close (menu, cmd, detail);
    assert (json_array_size (detail) == 1);
    char *loc = s_test_loc (detail, 0);
    assert (streq (loc, "[\"body\",\"items\",1,\"name\"]"));
    free (loc);
    const char *msg =
        json_string_value (json_object_get (json_array_get (detail, 0), "msg"));
    assert (msg && strstr (msg, "'Unicorn Steak' is not on the menu"));
    json_decref (menu);
    json_decref (detail);
}

//  One bad body: the first error's loc and type
static void
s_test_seed_bad (bus_cmd_t *cmd, const char *body, const char *loc,
                 const char *type, size_t errors)
{
    json_t *detail = json_array ();
    json_t *doc = s_test_json (body);
    memset (cmd, 0, sizeof *cmd);
    s_seed_parse (doc, cmd, detail);
    char *got = s_test_loc (detail, 0);
    const char *got_type = json_string_value (
        json_object_get (json_array_get (detail, 0), "type"));
    bool ok = got && got_type && streq (got, loc) && streq (got_type, type);
    if (!ok || json_array_size (detail) != errors)
        fprintf (stderr, "%s: got %s %s (%zu errors)\n", body,
                 got ? got : "no loc", got_type ? got_type : "no type",
                 json_array_size (detail));
    assert (ok);
    assert (json_array_size (detail) == errors);
    free (got);
    json_decref (doc);
    json_decref (detail);
}

static void
s_test_seed_invalid (bus_cmd_t *cmd)
{
    s_test_seed_bad (cmd, "[]", "[\"body\"]", "type_error.dict", 1);
    s_test_seed_bad (cmd, "null", "[\"body\"]", "value_error.missing", 1);
    s_test_seed_bad (cmd, "{}", "[\"body\",\"table\"]", "value_error.missing",
                     2);
    s_test_seed_bad (cmd, "{\"table\":[],\"items\":{}}", "[\"body\",\"table\"]",
                     "type_error.str", 2);
    s_test_seed_bad (cmd, "{\"table\":\"a/b\",\"items\":[]}",
                     "[\"body\",\"table\"]", "value_error", 2);
    s_test_seed_bad (cmd, "{\"table\":\"T\",\"items\":[]}",
                     "[\"body\",\"items\"]", "value_error.list.min_items", 1);
    s_test_seed_bad (cmd,
                     "{\"table\":\"T\",\"items\":[{\"name\":\"x\","
                     "\"quantity\":0}]}",
                     "[\"body\",\"items\",0,\"quantity\"]",
                     "value_error.number.not_gt", 1);
    s_test_seed_bad (cmd,
                     "{\"table\":\"T\",\"items\":[{\"name\":\"x\","
                     "\"quantity\":100}]}",
                     "[\"body\",\"items\",0,\"quantity\"]",
                     "value_error.number.not_le", 1);
    s_test_seed_bad (cmd,
                     "{\"table\":\"T\",\"items\":[{\"name\":\"x\","
                     "\"quantity\":\"2\"}]}",
                     "[\"body\",\"items\",0,\"quantity\"]",
                     "type_error.integer", 1);
    s_test_seed_bad (cmd,
                     "{\"table\":\"T\",\"items\":[{\"quantity\":1},"
                     "{\"name\":\"\",\"quantity\":1}]}",
                     "[\"body\",\"items\",0,\"name\"]", "value_error.missing",
                     2);
    s_test_seed_bad (cmd, "{\"table\":\"T\",\"items\":[7]}",
                     "[\"body\",\"items\",0]", "type_error.dict", 1);
    //  pydantic (v1) took a number for a string; so do we
    json_t *detail = json_array ();
    json_t *doc =
        s_test_json ("{\"table\":5,\"items\":[{\"name\":7,\"quantity\":1}]}");
    s_seed_parse (doc, cmd, detail);
    assert (json_array_size (detail) == 0 && streq (cmd->table, "5"));
    assert (streq (cmd->lines[0].name, "7"));
    json_decref (doc);
    json_decref (detail);
}

static void
s_test_refusal (void)
{
    static bus_ack_t ack;
    snprintf (ack.error, sizeof ack.error,
              "items[1].item_id: 'fries' is not "
              "available");
    json_t *body = s_seed_refusal (&ack);
    char *text = json_dumps (body, JSON_COMPACT);
    assert (text
            && streq (text, "{\"detail\":[{\"loc\":[\"body\",\"items\",1,"
                            "\"name\"],\"msg\":\"'fries' is not available\","
                            "\"type\":\"value_error\"}]}"));
    free (text);
    json_decref (body);
    ack.error[0] = '\0';   //  a refusal the writer did not put in words
    ack.status = BUS_ERR_UNAVAILABLE_ITEM;
    body = s_seed_refusal (&ack);
    text = json_dumps (body, JSON_COMPACT);
    assert (text
            && strstr (text, "\"loc\":[\"body\"],\"msg\":\"menu item "
                             "unavailable\""));
    free (text);
    json_decref (body);
}

//  A seed 001 body: 0, or the refusal it gets
static void
s_test_order (bus_cmd_t *cmd, const char *body, const char *expect)
{
    char why[BUS_ERROR_MAX];
    json_t *doc = s_test_json (body);
    memset (cmd, 0, sizeof *cmd);
    int rc = s_order_parse (doc, cmd, why, sizeof why);
    if (!streq (why, expect))
        fprintf (stderr, "%s: got '%s'\n", body, why);
    assert (streq (why, expect) && (rc == 0) == (*expect == '\0'));
    json_decref (doc);
}

static void
s_test_orders (bus_cmd_t *cmd)
{
    s_test_order (cmd,
                  "{\"table_number\":\"T12\",\"items\":[{\"menu_item_id\":"
                  "\"burger\",\"quantity\":2}],\"version\":5,\"order_id\":"
                  "\"id-1234\"}",
                  "");
    assert (streq (cmd->table, "T12") && cmd->line_count == 1);
    assert (streq (cmd->lines[0].item_id, "burger") && cmd->lines[0].qty == 2);
    assert (cmd->version == 5 && !cmd->open_menu);
    json_t *doc = s_test_json ("{\"order_id\":\"id-1234\"}");
    assert (s_order_key (doc, cmd->key, sizeof cmd->key) == 0);
    assert (streq (cmd->key, "orders:id-1234"));
    json_decref (doc);
    doc = s_test_json ("{}");
    assert (s_order_key (doc, cmd->key, sizeof cmd->key) == 0);
    assert (strlen (cmd->key) == strlen (S_KEY_FRESH) + 16);
    json_decref (doc);
    doc = s_test_json ("{\"order_id\":\"bad\\tkey\"}");
    assert (s_order_key (doc, cmd->key, sizeof cmd->key) == -1);
    json_decref (doc);

    const char *items =
        "\"items\":[{\"menu_item_id\":\"burger\",\"quantity\":2}]";
    char body[256];
    snprintf (body, sizeof body, "{\"table_number\":\"T1\",%s,\"version\":-1}",
              items);
    s_test_order (cmd, body, "Invalid version");
    snprintf (body, sizeof body,
              "{\"table_number\":\"T1\",%s,\"version\":\"5\"}", items);
    s_test_order (cmd, body, "Invalid version");
    snprintf (body, sizeof body, "{\"table_number\":\"T1\",%s}", items);
    s_test_order (cmd, body, "");
    assert (cmd->version == 0);
    s_test_order (cmd,
                  "{\"table_number\":\"T1\",\"items\":[{\"menu_item_id\":"
                  "\"no such\",\"quantity\":2}]}",
                  "Invalid item");
    s_test_order (cmd,
                  "{\"table_number\":\"T1\",\"items\":[{\"menu_item_id\":"
                  "\"burger\",\"quantity\":0}]}",
                  "Invalid item");
    s_test_order (cmd, "{\"table_number\":\"T1\",\"items\":[3]}",
                  "Invalid item");
    s_test_order (cmd, "{\"table_number\":\"T1\",\"items\":[]}",
                  "Invalid request: items must be a list of 1 to 50 lines");
    snprintf (body, sizeof body, "{\"table_number\":\"a/b\",%s}", items);
    s_test_order (cmd, body,
                  "Invalid request: table_number must be 1 to 32 "
                  "printable ASCII characters, without '/'");
    s_test_order (cmd, "[]", "Invalid request: the body must be a JSON object");
}

static void s_test_order_shape (void);

void
bus_compat_test (bool verbose)
{
    bus_cmd_t *cmd = malloc (sizeof *cmd);
    assert (cmd);
    s_test_seed_valid (cmd);
    s_test_seed_invalid (cmd);
    s_test_refusal ();
    s_test_orders (cmd);
    free (cmd);
    s_test_order_shape ();
    bus_compat_ws_test (verbose);
    if (verbose)
        printf (" * bus_compat: seed request bodies, refusals, keys\n");
}

//  ---------------------------------------------------------------------
//  The seeds' order shape (moved here from bus_json.c: only the
//  seed-compatible routes and /ws/orders speak it)

json_t *
bus_compat_order (const bus_order_t *order)
{
    json_t *items = json_array ();
    for (uint32_t i = 0; items && i < order->line_count; i++)
        json_array_append_new (
            items, json_pack ("{s:s, s:I}", "name", order->lines[i].name,
                              "quantity", (json_int_t) order->lines[i].qty));
    time_t secs = (time_t) (order->created_ms / 1000);
    struct tm tm;
    char created[32] = "";
    if (gmtime_r (&secs, &tm))
        strftime (created, sizeof created, "%Y-%m-%dT%H:%M:%S", &tm);
    return json_pack ("{s:I, s:s, s:o, s:s}", "id", (json_int_t) order->id,
                      "table", order->table, "items", items, "created_at",
                      created);
}

//  Names and quantities, a UTC timestamp to the second
static void
s_test_order_shape (void)
{
    static bus_order_t order;
    memset (&order, 0, sizeof order);
    order.id = 12;
    strcpy (order.table, "Table 1");
    order.created_ms = 1745739020123;   //  2025-04-27T07:30:20.123Z
    order.line_count = 2;
    strcpy (order.lines[0].name, "Burger");
    order.lines[0].qty = 3;
    strcpy (order.lines[1].name, "Ice Cream");
    order.lines[1].qty = 1;
    json_t *json = bus_compat_order (&order);
    char *text = bus_json_dump (json);
    assert (
        text
        && strcmp (
               text,
               "{\"id\":12,\"table\":\"Table 1\",\"items\":["
               "{\"name\":\"Burger\",\"quantity\":3},{\"name\":\"Ice Cream\","
               "\"quantity\":1}],\"created_at\":\"2025-04-27T07:30:20\"}")
               == 0);
    free (text);
    json_decref (json);
}
