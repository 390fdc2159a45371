/*  bus_api.c — the native HTTP/JSON API: one route table, one dispatcher,
    a handler per route.

    A handler either reads a command (body, Idempotency-Key, path fields),
    hands it to the gateway and turns the writer's ack into a response, or
    asks the writer a question through the gateway and turns the answer
    into JSON.  Every refusal is a JSON error body naming the field.

    Written for any server (bus_req.h).  A command never blocks: it is
    sent, and the ack is answered from the gateway's listener thread.  A
    query waits for the writer: its route is declared to block (the table's
    blocks), so an event-driven server runs it off its event thread.  */

#include <czmq.h>
#include "orderbus/bus_api.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_req.h"
#include "orderbus/bus_limit.h"
#include "orderbus/bus_report.h"

#define S_PARTS_MAX 8   //  path segments after /api/v1/

//  docs/openapi.json, embedded at build time (cmake/embed.cmake)
extern const char bus_openapi_doc[];
extern const size_t bus_openapi_doc_len;
#define S_LIST_DEFAULT 50

#define S_LIMIT_TABLES    4096   //  tables the rate limiter tracks at once
#define S_LIMIT_TOKENS    4096   //  tokens the change limiter tracks at once
#define S_DAY_MS          (24 * 3600 * (int64_t) 1000)
#define S_REPORT_DAYS_MAX 366   //  a report's range: bounds the writer's work
#define S_API_ROUTES      20    //  rows in s_routes (checked there)

typedef struct _s_route_t s_route_t;

//  A route of the table, as handed to bus_req: the API, and which row
typedef struct {
    bus_api_t *self;
    const s_route_t *route;
} s_binding_t;

struct _bus_api_t {
    bus_gateway_t **gateways;   //  one per site, as auth's sites (borrowed)
    bus_auth_t *auth;           //  borrowed
    bus_limit_t *limit;         //  orders per table
    bus_limit_t *changes;       //  changes per token
    s_binding_t bindings[S_API_ROUTES];
};

//  One request being served
typedef struct {
    bus_api_t *self;
    bus_req_t *req;
    char *parts[S_PARTS_MAX];   //  the path's segments
    int count;
    const char *arg[2];       //  the segments the route's '*'s matched
    bus_claims_t claims;      //  who is asking
    bus_gateway_t *gateway;   //  of the token's site
} s_request_t;

typedef int (s_handler_fn) (s_request_t *r);

//  Who may use a route; a handler may check more (a pad's table)
typedef enum {
    S_ANYONE = 1,   //  any valid token
    S_TABLE,        //  a pad of the table in the path, or staff
    S_STAFF,        //  kitchen or manager
} s_access_t;

//  A row is a bus_req route of its own (bus_api_new): bus_req matches
//  method and pattern, and runs a route that blocks where it may
struct _s_route_t {
    const char *method;
    const char *pattern;   //  segments, '*' matches any one
    s_access_t access;
    s_handler_fn *handler;
    bool blocks;   //  waits for the writer (a query)
    bool change;   //  a change but not an order: limits/changes_per_s
};

//  A thread reads one command at a time (the gateway encodes it before
//  the next), so it keeps one (tens of KiB) for all of its requests: a
//  malloc, memset and free per request cost more than the request's own
//  work, and glibc gives such blocks back with madvise, which flushes
//  the TLB of every core the process runs on.
static pthread_key_t s_scratch_key;
static pthread_once_t s_scratch_once = PTHREAD_ONCE_INIT;

static void
s_scratch_key_new (void)
{
    int rc = pthread_key_create (&s_scratch_key, free);
    assert (rc == 0);
}

//  This thread's command, made on its first request, cleared: only its
//  head, since a parser clears each line it fills and nothing reads past
//  line_count.  NULL if out of memory.
static bus_cmd_t *
s_scratch_cmd (void)
{
    pthread_once (&s_scratch_once, s_scratch_key_new);
    bus_cmd_t *cmd = pthread_getspecific (s_scratch_key);
    if (!cmd && (cmd = malloc (sizeof *cmd))
        && pthread_setspecific (s_scratch_key, cmd) != 0) {
        free (cmd);
        cmd = NULL;
    }
    if (cmd)
        memset (cmd, 0, offsetof (bus_cmd_t, lines));
    return cmd;
}

//  ---------------------------------------------------------------------
//  Answers

static int
s_error (bus_req_t *req, int status, int code, const char *message,
         const char *field)
{
    return bus_req_send_error (req, status, bus_errname (code), message, field);
}

static int
s_busy (bus_req_t *req, int code, const char *message)
{
    return bus_req_send_busy (req, bus_errname (code), message);
}

//  Answer with body (taken).
static int
s_json (bus_req_t *req, int status, json_t *body, const char *headers)
{
    bus_req_send_json (req, status, body, headers);
    json_decref (body);
    return status;
}

//  429 rate_limited for who ("table T1 is ordering"), with Retry-After
static int
s_too_fast (s_request_t *r, const char *who, int64_t wait_ms)
{
    int64_t wait_s = (wait_ms + 999) / 1000;
    char headers[48], message[160];
    snprintf (headers, sizeof headers, "Retry-After: %" PRId64 "\r\n", wait_s);
    snprintf (message, sizeof message, "%s too fast; retry in %" PRId64 " s",
              who, wait_s);
    json_t *body =
        bus_json_error (bus_errname (BUS_ERR_RATE_LIMITED), message, NULL);
    return s_json (r->req, 429, body, headers);
}

//  May the caller act on table?  And, for an order (intake) from a pad,
//  is the table within its rate?  The limit is there to stop a pad gone
//  wrong (or a guest tapping away); staff and integrators with staff
//  tokens are not throttled per table.  0, or the 403 or 429 sent.
static int
s_guard_table (s_request_t *r, const char *table, bool intake)
{
    if (bus_token_allows_table (&r->claims, table) != 0) {
        char why[96];
        snprintf (why, sizeof why, "this token is for table %s only",
                  r->claims.table);
        return bus_auth_refuse (r->req, BUS_ERR_FORBIDDEN, why);
    }
    int64_t wait_ms;
    if (!intake || bus_token_is_staff (&r->claims))
        return 0;
    //  Each site has its own table T1: on a node of several, the key
    //  names the site too
    char key[BUS_LIMIT_KEY_MAX];
    if (bus_auth_site_count (r->self->auth) > 1)
        snprintf (key, sizeof key, "%s/%s", r->claims.site, table);
    if (bus_limit_take (r->self->limit,
                        bus_auth_site_count (r->self->auth) > 1 ? key : table,
                        zclock_mono (), &wait_ms)
        == 0)
        return 0;
    char who[96];
    snprintf (who, sizeof who, "table %s is ordering", table);
    return s_too_fast (r, who, wait_ms);
}

//  A change that is not an order (a cart edit, a status move, an 86):
//  within its token's rate?  A pad gone wrong, or a guest who kept its
//  token, would otherwise commit as fast as the writer syncs, each
//  change a write to disk and an event to every screen.  Open (no
//  secret): nothing tells clients apart, so nothing is limited.  0, or
//  the 429 sent.
static int
s_guard_changes (s_request_t *r)
{
    if (bus_auth_is_open (r->self->auth))
        return 0;
    const bus_claims_t *c = &r->claims;
    char key[BUS_LIMIT_KEY_MAX];
    snprintf (key, sizeof key, "%d/%s/%s/%" PRId64, (int) c->role, c->site,
              c->table, c->expires_ms);
    int64_t wait_ms;
    if (bus_limit_take (r->self->changes, key, zclock_mono (), &wait_ms) == 0)
        return 0;
    return s_too_fast (r, "this token is making changes", wait_ms);
}

//  The writer names the field in front of its message ("items[0].item_id:
//  unknown menu item 'x'"); split it back out for the error body.
static int
s_refusal (bus_req_t *req, const bus_ack_t *ack)
{
    int status = ack->status == BUS_ERR_CONFLICT      ? 409
                 : ack->status == BUS_ERR_NOT_FOUND   ? 404
                 : ack->status == BUS_ERR_UNAVAILABLE ? 503
                                                      : 400;
    char field[64] = "";
    const char *message = ack->error;
    const char *colon = strstr (ack->error, ": ");
    size_t n = colon ? (size_t) (colon - ack->error) : 0;
    if (colon && n < sizeof field && !memchr (ack->error, ' ', n)) {
        memcpy (field, ack->error, n);
        field[n] = '\0';
        message = colon + 2;
    }
    json_t *body = bus_json_error (bus_errname (ack->status), message, field);
    return s_json (req, status, body,
                   status == 503 ? "Retry-After: 1\r\n" : NULL);
}

static size_t
s_order_body (const void *order, char *buf, size_t cap)
{
    return bus_json_order_write ((const bus_order_t *) order, buf, cap);
}

//  What a committed command answers: the order (201 when placed), the
//  cart, or the menu item.  An order's text is written without a tree:
//  every order placed is answered with one.
static int
s_accepted (bus_req_t *req, const bus_ack_t *ack)
{
    const bus_event_t *event = &ack->event;
    const char *replayed =
        ack->duplicate ? "Idempotent-Replayed: true\r\n" : "";
    char headers[200];
    snprintf (headers, sizeof headers, "%s", replayed);
    switch (event->type) {
        case BUS_EVENT_ORDER_PLACED:
            snprintf (headers, sizeof headers,
                      "Location: /api/v1/orders/%" PRIu64 "\r\n%s",
                      event->order.id, replayed);
            return bus_req_send_body (req, 201, s_order_body, &event->order,
                                      headers);
        case BUS_EVENT_ORDER_STATUS:
            return bus_req_send_body (req, 200, s_order_body, &event->order,
                                      headers);
        case BUS_EVENT_CART:
            return s_json (req, 200, bus_json_cart (&event->cart), headers);
        case BUS_EVENT_MENU_ITEM:
            return s_json (req, 200,
                           json_pack ("{s:{s:s, s:b}}", "item", "id",
                                      event->item_id, "available",
                                      event->available),
                           headers);
    }
    return s_error (req, 500, BUS_ERR_STORAGE, "unexpected answer", NULL);
}

//  The writer's answer to a command, on the gateway's listener thread.
static void
s_on_ack (void *arg, int rc, const bus_ack_t *ack)
{
    bus_req_t *req = (bus_req_t *) arg;
    bus_gateway_t *gateway = (bus_gateway_t *) bus_req_data (req);
    if (rc != 0) {
        char message[200];
        snprintf (message, sizeof message,
                  "the writer did not confirm within %d ms; retry with the "
                  "same Idempotency-Key (it will not be done twice)",
                  bus_gateway_config (gateway)->ack_timeout_ms);
        s_busy (req, BUS_ERR_UNAVAILABLE, message);
    } else if (ack->status)
        s_refusal (req, ack);
    else
        s_accepted (req, ack);
}

//  Hand cmd to the writer; its ack is answered when it comes.  0, or the
//  status of the refusal sent now.
static int
s_submit (s_request_t *r, bus_cmd_t *cmd)
{
    bus_req_set_data (r->req, r->gateway);
    int rc = bus_gateway_send (r->gateway, cmd, s_on_ack, r->req);
    if (rc == 0)
        return 0;
    if (rc == BUS_ERR_OVERLOADED)
        return s_busy (r->req, rc,
                       "too many requests are waiting for the "
                       "writer; retry with the same Idempotency-Key");
    if (rc == BUS_ERR_UNAVAILABLE)
        return s_busy (r->req, rc,
                       "the writer is unreachable; retry with the "
                       "same Idempotency-Key");
    return s_error (r->req, 500, rc, "out of memory", NULL);
}

//  ---------------------------------------------------------------------
//  Reading a command

typedef int (s_parse_fn) (const char *body, size_t len, bus_cmd_t *cmd,
                          bus_json_error_t *error);

//  The Idempotency-Key header, and the body through parse (if any).  0,
//  or the status of the error response sent.
static int
s_read (s_request_t *r, bus_cmd_t *cmd, s_parse_fn *parse)
{
    const char *key = bus_req_header (r->req, "Idempotency-Key");
    if (!key)
        return s_error (r->req, 400, BUS_ERR_INVALID,
                        "missing header: every "
                        "change needs a unique Idempotency-Key",
                        "Idempotency-Key");
    if (bus_strlcpy (cmd->key, key, sizeof cmd->key) != 0
        || !bus_valid_key (key))
        return s_error (r->req, 400, BUS_ERR_INVALID,
                        "must be 1 to 128 printable "
                        "ASCII characters",
                        "Idempotency-Key");
    if (!parse)
        return 0;
    if (!bus_req_is_json (r->req))
        return bus_req_send_error (r->req, 415, "unsupported_media_type",
                                   "Content-Type must be application/json",
                                   NULL);
    char *body;
    size_t len;
    int rc = bus_req_body (r->req, BUS_REQ_BODY_MAX, &body, &len);
    if (rc == BUS_ERR_TOO_BIG)
        return bus_req_send_error (r->req, 413, "too_big",
                                   "request body is "
                                   "larger than 65536 bytes",
                                   NULL);
    if (rc != 0)
        return s_error (r->req, 400, BUS_ERR_MALFORMED,
                        "request body ended early", NULL);
    bus_json_error_t error;
    rc = parse (body, len, cmd, &error);
    free (body);
    return rc ? s_error (r->req, 400, rc, error.message, error.field) : 0;
}

//  A table label from the path, into cmd->table.  0 or the 404 sent.
static int
s_path_table (s_request_t *r, const char *label, char *table, size_t cap)
{
    if (bus_strlcpy (table, label, cap) == 0 && bus_valid_table (table))
        return 0;
    return s_error (r->req, 404, BUS_ERR_NOT_FOUND,
                    "no such table: table labels "
                    "are 1 to 32 printable characters",
                    NULL);
}

//  A positive integer up to max from the path.  0 or the 404 sent.
static int
s_path_id (s_request_t *r, const char *text, const char *what, uint64_t max,
           uint64_t *id)
{
    if (bus_req_parse_u64 (text, 1, max, id) == 0)
        return 0;
    char message[80];
    snprintf (message, sizeof message,
              "no such %s: %s ids are positive "
              "integers",
              what, what);
    return s_error (r->req, 404, BUS_ERR_NOT_FOUND, message, NULL);
}

//  A command whose lines the gateway's copy of the menu could not vouch
//  for, taken where the menu may be fetched again
typedef struct {
    bus_api_t *self;
    bus_gateway_t *gateway;   //  of the token's site
    bus_cmd_t cmd;
} s_later_t;

static int s_check_lines (s_request_t *r, bus_cmd_t *cmd);

static int
s_check_later (bus_req_t *req, void *arg)
{
    s_later_t *later = (s_later_t *) arg;
    s_request_t r = { .self = later->self,
                      .req = req,
                      .gateway = later->gateway };
    int status = s_check_lines (&r, &later->cmd);
    free (later);
    return status;
}

//  Check cmd's lines against the menu, then submit it.  Where the menu
//  may not be fetched (an event thread), a line the copy does not know
//  sends the command where it may.  0 or the status sent.
static int
s_check_lines (s_request_t *r, bus_cmd_t *cmd)
{
    bus_json_error_t error;
    bool may_fetch = bus_req_may_block (r->req);
    int rc =
        bus_gateway_check_lines (r->gateway, cmd->lines, cmd->line_count,
                                 cmd->type == BUS_CMD_PLACE, may_fetch, &error);
    if (rc == BUS_ERR_UNAVAILABLE && !may_fetch) {
        s_later_t *later = malloc (sizeof *later);
        if (!later)
            return s_error (r->req, 500, BUS_ERR_NOMEM, "out of memory", NULL);
        later->self = r->self;
        later->gateway = r->gateway;
        memcpy (&later->cmd, cmd, sizeof *cmd);
        int status = bus_req_defer (r->req, s_check_later, later);
        if (status)
            free (later);   //  refused: s_check_later will not run
        return status;
    }
    if (rc != 0)
        return s_error (r->req, 400, rc, error.message, error.field);
    return s_submit (r, cmd);
}

//  Run a command with fields from the path and the body.
static int
s_command (s_request_t *r, bus_cmd_type_t type, s_parse_fn *parse,
           const char *table, uint64_t id)
{
    bus_cmd_t *cmd = s_scratch_cmd ();
    if (!cmd)
        return s_error (r->req, 500, BUS_ERR_NOMEM, "out of memory", NULL);
    int status = s_read (r, cmd, parse);
    cmd->type = type;
    if (table)
        bus_strlcpy (cmd->table, table, sizeof cmd->table);
    if (type == BUS_CMD_SET_STATUS)
        cmd->order_id = id;
    else if (type == BUS_CMD_CART_SET_QTY)
        cmd->line_id = (uint32_t) id;
    bool intake = type == BUS_CMD_PLACE || type == BUS_CMD_CART_PLACE;
    if (status == 0 && intake)
        status = s_guard_table (r, cmd->table, true);
    bool lines = type == BUS_CMD_PLACE || type == BUS_CMD_CART_ADD;
    return status ? status : lines ? s_check_lines (r, cmd) : s_submit (r, cmd);
}

//  ---------------------------------------------------------------------
//  Commands

static int
s_place_order (s_request_t *r)
{
    return s_command (r, BUS_CMD_PLACE, bus_json_place_cmd, NULL, 0);
}

static int
s_move_order (s_request_t *r)
{
    uint64_t id;
    int status = s_path_id (r, r->arg[0], "order", UINT64_MAX, &id);
    return status ? status
                  : s_command (r, BUS_CMD_SET_STATUS, bus_json_status_cmd, NULL,
                               id);
}

static int
s_cart_add (s_request_t *r)
{
    char table[BUS_TABLE_MAX];
    int status = s_path_table (r, r->arg[0], table, sizeof table);
    return status
               ? status
               : s_command (r, BUS_CMD_CART_ADD, bus_json_line_cmd, table, 0);
}

//  PATCH with a quantity, or DELETE: quantity 0
static int
s_cart_line (s_request_t *r)
{
    char table[BUS_TABLE_MAX];
    uint64_t line;
    int status = s_path_table (r, r->arg[0], table, sizeof table);
    if (!status)
        status = s_path_id (r, r->arg[1], "line", UINT32_MAX, &line);
    bool patch = streq (bus_req_method (r->req), "PATCH");
    return status ? status
                  : s_command (r, BUS_CMD_CART_SET_QTY,
                               patch ? bus_json_qty_cmd : NULL, table, line);
}

static int
s_cart_clear (s_request_t *r)
{
    char table[BUS_TABLE_MAX];
    int status = s_path_table (r, r->arg[0], table, sizeof table);
    return status ? status : s_command (r, BUS_CMD_CART_CLEAR, NULL, table, 0);
}

static int
s_cart_order (s_request_t *r)
{
    char table[BUS_TABLE_MAX];
    int status = s_path_table (r, r->arg[0], table, sizeof table);
    return status ? status
                  : s_command (r, BUS_CMD_CART_PLACE, bus_json_cart_place_cmd,
                               table, 0);
}

static int
s_availability (s_request_t *r)
{
    bus_cmd_t *cmd = s_scratch_cmd ();
    if (!cmd)
        return s_error (r->req, 500, BUS_ERR_NOMEM, "out of memory", NULL);
    int status = s_read (r, cmd, bus_json_availability_cmd);
    if (status == 0
        && (bus_strlcpy (cmd->item_id, r->arg[0], sizeof cmd->item_id)
            || !bus_valid_item_id (cmd->item_id)))
        status =
            s_error (r->req, 404, BUS_ERR_NOT_FOUND, "no such menu item", NULL);
    return status ? status : s_submit (r, cmd);
}

//  POST orders/{id}/lines/{line_id}/{bump,unbump,void} and
//  orders/{id}/stations/{station}/{bump,unbump} (issue 17): the path
//  names the order and the line or the station, its last segment the
//  action, the body the version (and a recall's state, a void's reason).
static int
s_line_state (s_request_t *r)
{
    static const struct {
        const char *action;
        s_parse_fn *parse;
    } actions[] = { { "bump", bus_json_bump_cmd },
                    { "unbump", bus_json_unbump_cmd },
                    { "void", bus_json_void_cmd } };
    s_parse_fn *parse = NULL;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (streq (r->parts[4], actions[i].action))
            parse = actions[i].parse;
    assert (parse);   //  the routes name no other action
    bool by_line = streq (r->parts[2], "lines");
    uint64_t id, line = 0;
    int status = s_path_id (r, r->arg[0], "order", UINT64_MAX, &id);
    if (!status && by_line)
        status = s_path_id (r, r->arg[1], "line", UINT32_MAX, &line);
    if (!status && !by_line && !bus_valid_item_id (r->arg[1]))
        status = s_error (r->req, 404, BUS_ERR_NOT_FOUND,
                          "no such station: station ids are 1 to 32 "
                          "characters of A-Z a-z 0-9 _ . -",
                          "station");
    bus_cmd_t *cmd = status ? NULL : s_scratch_cmd ();
    if (!status && !cmd)
        return s_error (r->req, 500, BUS_ERR_NOMEM, "out of memory", NULL);
    if (!status)
        status = s_read (r, cmd, parse);
    if (status)
        return status;
    cmd->order_id = id;
    cmd->line_id = (uint32_t) line;
    if (!by_line)
        bus_strlcpy (cmd->station, r->arg[1], sizeof cmd->station);
    return s_submit (r, cmd);
}

//  ---------------------------------------------------------------------
//  Queries

//  Ask the writer; on failure the 503 has been sent and is returned.
static int
s_query (s_request_t *r, bus_sync_req_t *req, bus_sync_reply_t *reply,
         zmsg_t **items)
{
    if (bus_gateway_query (r->gateway, req, reply, items) == 0)
        return 0;
    return s_busy (r->req, BUS_ERR_UNAVAILABLE,
                   "the writer did not answer; try "
                   "again shortly");
}

//  A replica's answer says how far behind the writer it is (docs/api.md),
//  in events and in time since it last heard the writer: the headers
//  into headers[cap], or "" for the writer's own answer.
static const char *
s_behind (const bus_sync_reply_t *reply, char *headers, size_t cap)
{
    *headers = '\0';
    int len = 0;
    if (reply->writer_seq)
        len = snprintf (headers, cap, "X-Orderbus-Behind-Seqs: %" PRIu64 "\r\n",
                        reply->writer_seq > reply->seq
                            ? reply->writer_seq - reply->seq
                            : 0);
    if (reply->writer_seq && reply->heard_ms && len > 0 && (size_t) len < cap)
        snprintf (headers + len, cap - (size_t) len,
                  "X-Orderbus-Behind-Ms: %" PRIu64 "\r\n", reply->heard_ms);
    return headers;
}

//  A numeric query parameter in [min, max] into *value (left alone when
//  absent).  0, or the 400 sent.
static int
s_param (s_request_t *r, const char *name, uint64_t min, uint64_t max,
         uint64_t *value)
{
    char text[32];
    int len = bus_req_query (r->req, name, text, sizeof text);
    if (len == -1
        || (len >= 0 && bus_req_parse_u64 (text, min, max, value) == 0))
        return 0;
    char message[80];
    snprintf (message, sizeof message,
              "must be an integer from %" PRIu64 " to %" PRIu64, min, max);
    return s_error (r->req, 400, BUS_ERR_INVALID, message, name);
}

//  The list filters into req.  0, or the 400 sent.
static int
s_list_params (s_request_t *r, bus_sync_req_t *req)
{
    static const char *const allowed[] = { "status", "table",   "cursor",
                                           "limit",  "from_ms", "to_ms",
                                           "token",  NULL };
    char value[64];
    if (bus_req_query_check (r->req, allowed, value, sizeof value) != 0)
        return s_error (r->req, 400, BUS_ERR_INVALID, "unknown query parameter",
                        value);
    bus_status_t status;
    if (bus_req_query (r->req, "status", value, sizeof value) >= 0) {
        if (bus_status_parse (value, &status) != 0)
            return s_error (r->req, 400, BUS_ERR_INVALID,
                            "must be one of placed, "
                            "accepted, preparing, ready, served, cancelled",
                            "status");
        req->status = status;
    }
    int len = bus_req_query (r->req, "table", req->table, sizeof req->table);
    if (len == -2 || (len >= 0 && !bus_valid_table (req->table)))
        return s_error (r->req, 400, BUS_ERR_INVALID,
                        "must be 1 to 32 printable "
                        "characters without '/'",
                        "table");
    uint64_t limit = S_LIST_DEFAULT, from_ms = 0, to_ms = 0;
    int rc = s_param (r, "cursor", 1, UINT64_MAX, &req->from);
    if (!rc)
        rc = s_param (r, "limit", 1, 1000, &limit);
    if (!rc)
        rc = s_param (r, "from_ms", 0, INT64_MAX, &from_ms);
    if (!rc)
        rc = s_param (r, "to_ms", 0, INT64_MAX, &to_ms);
    req->limit = (uint32_t) limit;
    req->from_ms = (int64_t) from_ms;
    req->to_ms = (int64_t) to_ms;
    if (rc == 0 && !bus_token_is_staff (&r->claims)
        && !streq (req->table, r->claims.table))
        rc = bus_auth_refuse (r->req, BUS_ERR_FORBIDDEN,
                              "a pad lists its own "
                              "table's orders only: add ?table=<its table>");
    return rc;
}

//  Decode each item frame as an order and append its JSON to array.
//  The first count items as orders into array.  An item that does not
//  decode fails the whole answer: a list with an order missing would be
//  a wrong answer given as a right one.  0, or -1.
static int
s_orders_json (zmsg_t *items, json_t *array, size_t count)
{
    bus_order_t *order = malloc (sizeof *order);
    zframe_t *f = zmsg_first (items);
    int rc = order ? 0 : -1;
    for (size_t i = 0; rc == 0 && f && i < count; i++, f = zmsg_next (items))
        if (bus_order_decode (zframe_data (f), zframe_size (f), order) == 0)
            json_array_append_new (array, bus_json_order (order));
        else
            rc = -1;
    free (order);
    return rc;
}

//  A query the writer could not answer from its store: 500, with the
//  code of what it said (storage_damaged for a record that fails its
//  checks), or storage_damaged for an answer that does not decode.
static int
s_store_error (s_request_t *r, const bus_sync_reply_t *reply)
{
    if (reply->status == 0 || reply->status == BUS_ERR_DAMAGED) {
        zsys_error ("api: the writer's answer holds a record that does not "
                    "read: %s",
                    reply->status ? reply->error : "it does not decode");
        return s_error (r->req, 500, BUS_ERR_DAMAGED,
                        "a stored record is damaged: see the writer's log",
                        NULL);
    }
    return s_error (r->req, 500, BUS_ERR_STORAGE, reply->error, NULL);
}

static int
s_list_orders (s_request_t *r)
{
    bus_sync_req_t req = { .op = BUS_SYNC_LIST };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int status = s_list_params (r, &req);
    if (status || (status = s_query (r, &req, &reply, &items)))
        return status;
    json_t *orders = json_array ();
    if (reply.status != 0
        || s_orders_json (items, orders, zmsg_size (items)) != 0) {
        zmsg_destroy (&items);
        json_decref (orders);
        return s_store_error (r, &reply);
    }
    zmsg_destroy (&items);
    char behind[128];
    return s_json (r->req, 200,
                   json_pack ("{s:o, s:o}", "orders", orders, "next_cursor",
                              reply.next ? json_sprintf ("%" PRIu64, reply.next)
                                         : json_null ()),
                   s_behind (&reply, behind, sizeof behind));
}

static int
s_get_order (s_request_t *r)
{
    bus_sync_req_t req = { .op = BUS_SYNC_GET };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int status = s_path_id (r, r->arg[0], "order", UINT64_MAX, &req.id);
    if (status || (status = s_query (r, &req, &reply, &items)))
        return status;
    json_t *orders = json_array ();
    int decoded = s_orders_json (items, orders, 1);
    zmsg_destroy (&items);
    json_t *order = json_array_get (orders, 0);
    const char *table = json_string_value (json_object_get (order, "table"));
    if (!order)
        status = reply.status == BUS_ERR_NOT_FOUND && decoded == 0
                     ? s_error (r->req, 404, BUS_ERR_NOT_FOUND, "no such order",
                                NULL)
                     : s_store_error (r, &reply);
    else if ((status = s_guard_table (r, table, false)) == 0) {
        char behind[128];
        status = s_json (r->req, 200, json_incref (order),
                         s_behind (&reply, behind, sizeof behind));
    }
    json_decref (orders);
    return status;
}

//  A table's open orders and cart: {"table", "orders", "cart"}, or just
//  the cart when cart_only.
static int
s_table (s_request_t *r, bool cart_only)
{
    bus_sync_req_t req = { .op = BUS_SYNC_TABLE };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int status = s_path_table (r, r->arg[0], req.table, sizeof req.table);
    if (status || (status = s_query (r, &req, &reply, &items)))
        return status;
    bus_cart_t *cart = malloc (sizeof *cart);
    zframe_t *last = zmsg_last (items);
    bool ok =
        reply.status == 0 && cart && last
        && bus_cart_decode (zframe_data (last), zframe_size (last), cart) == 0;
    json_t *body = NULL;
    if (ok && cart_only)
        body = bus_json_cart (cart);
    else if (ok) {
        json_t *orders = json_array ();
        if (s_orders_json (items, orders, zmsg_size (items) - 1) == 0)
            body = json_pack ("{s:s, s:o, s:o}", "table", req.table, "orders",
                              orders, "cart", bus_json_cart (cart));
        else
            json_decref (orders);
    }
    free (cart);
    zmsg_destroy (&items);
    return body ? s_json (r->req, 200, body, NULL) : s_store_error (r, &reply);
}

static int
s_get_table (s_request_t *r)
{
    return s_table (r, false);
}

static int
s_get_cart (s_request_t *r)
{
    return s_table (r, true);
}

static size_t
s_no_body (const void *arg, char *buf, size_t cap)
{
    (void) arg, (void) buf, (void) cap;
    return 0;
}

//  The menu, with an ETag so a pad can poll it cheaply.
static int
s_get_menu (s_request_t *r)
{
    uint64_t version;
    json_t *menu = bus_gateway_menu (r->gateway, &version);
    if (!menu)
        return s_busy (r->req, BUS_ERR_UNAVAILABLE,
                       "the menu is not available: the "
                       "writer is unreachable or has no menu");
    char etag[40], headers[80];
    snprintf (etag, sizeof etag, "\"menu-%" PRIu64 "\"", version);
    snprintf (headers, sizeof headers, "ETag: %s\r\n", etag);
    const char *match = bus_req_header (r->req, "If-None-Match");
    if (match && streq (match, etag)) {
        json_decref (menu);
        return bus_req_send_body (r->req, 304, s_no_body, NULL, headers);
    }
    return s_json (r->req, 200, menu, headers);
}

//  One end of a report's range, when given.  0, or the 400 sent.
static int
s_report_time (s_request_t *r, const char *name, int64_t *ms)
{
    char text[64];
    int len = bus_req_query (r->req, name, text, sizeof text);
    if (len == -1 || (len >= 0 && bus_report_time_parse (text, ms) == 0))
        return 0;
    return s_error (r->req, 400, BUS_ERR_INVALID,
                    "must be a UTC time as "
                    "YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z or milliseconds since "
                    "the epoch",
                    name);
}

//  ?from=&to=: to defaults to now, from to a day before to.  0, or the
//  400 sent.
static int
s_report_params (s_request_t *r, bus_sync_req_t *req)
{
    static const char *const allowed[] = { "from", "to", "token", NULL };
    char value[64];
    if (bus_req_query_check (r->req, allowed, value, sizeof value) != 0)
        return s_error (r->req, 400, BUS_ERR_INVALID, "unknown query parameter",
                        value);
    req->to_ms = zclock_time ();
    int status = s_report_time (r, "to", &req->to_ms);
    req->from_ms = req->to_ms - S_DAY_MS;
    if (status || (status = s_report_time (r, "from", &req->from_ms)))
        return status;
    if (req->from_ms < 0 || req->from_ms >= req->to_ms
        || req->to_ms - req->from_ms > S_REPORT_DAYS_MAX * S_DAY_MS)
        return s_error (r->req, 400, BUS_ERR_INVALID,
                        "must be before to, and at "
                        "most 366 days before it",
                        "from");
    return 0;
}

static int
s_get_report (s_request_t *r)
{
    if (bus_token_allows_role (&r->claims, BUS_TOKEN_MANAGER) != 0)
        return bus_auth_refuse (r->req, BUS_ERR_FORBIDDEN,
                                "reports need a manager token");
    bus_sync_req_t req = { .op = BUS_SYNC_REPORT };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int status = s_report_params (r, &req);
    if (status || (status = s_query (r, &req, &reply, &items)))
        return status;
    zframe_t *frame = reply.status == 0 ? zmsg_first (items) : NULL;
    json_t *report = frame ? json_loadb ((const char *) zframe_data (frame),
                                         zframe_size (frame), 0, NULL)
                           : NULL;
    zmsg_destroy (&items);
    char behind[128];
    return report ? s_json (r->req, 200, report,
                            s_behind (&reply, behind, sizeof behind))
                  : s_error (r->req, 500, BUS_ERR_STORAGE, reply.error, NULL);
}

static int
s_get_stats (s_request_t *r)
{
    return s_json (r->req, 200, bus_gateway_stats (r->gateway), NULL);
}

//  ---------------------------------------------------------------------
//  Routing

static const s_route_t s_routes[] = {
    //  method, pattern, who, handler, blocks, change (not an order)
    { "GET", "menu", S_ANYONE, s_get_menu, true, false },
    { "POST", "menu/items/*/availability", S_STAFF, s_availability, false,
      true },
    { "GET", "orders", S_ANYONE, s_list_orders, true, false },
    { "POST", "orders", S_ANYONE, s_place_order, false, false },
    { "GET", "orders/*", S_ANYONE, s_get_order, true, false },
    { "POST", "orders/*/status", S_STAFF, s_move_order, false, true },
    { "POST", "orders/*/lines/*/bump", S_STAFF, s_line_state, false, true },
    { "POST", "orders/*/lines/*/unbump", S_STAFF, s_line_state, false, true },
    { "POST", "orders/*/lines/*/void", S_STAFF, s_line_state, false, true },
    { "POST", "orders/*/stations/*/bump", S_STAFF, s_line_state, false, true },
    { "POST", "orders/*/stations/*/unbump", S_STAFF, s_line_state, false,
      true },
    { "GET", "tables/*", S_TABLE, s_get_table, true, false },
    { "GET", "tables/*/cart", S_TABLE, s_get_cart, true, false },
    { "DELETE", "tables/*/cart", S_TABLE, s_cart_clear, false, true },
    { "POST", "tables/*/cart/items", S_TABLE, s_cart_add, false, true },
    { "PATCH", "tables/*/cart/items/*", S_TABLE, s_cart_line, false, true },
    { "DELETE", "tables/*/cart/items/*", S_TABLE, s_cart_line, false, true },
    { "POST", "tables/*/cart/order", S_TABLE, s_cart_order, false, false },
    { "GET", "stats", S_STAFF, s_get_stats, true, false },
    { "GET", "report", S_STAFF, s_get_report, true, false },
};
#define S_ROUTES (sizeof s_routes / sizeof s_routes[0])
_Static_assert(S_ROUTES == S_API_ROUTES, "S_API_ROUTES is s_routes' size");

//  Does the path match pattern?  Fills r->arg with the '*' segments.
static bool
s_matches (s_request_t *r, const char *pattern)
{
    char copy[64];
    snprintf (copy, sizeof copy, "%s", pattern);
    int i = 0, args = 0;
    char *save = NULL;
    for (char *seg = strtok_r (copy, "/", &save); seg;
         seg = strtok_r (NULL, "/", &save), i++) {
        if (i >= r->count || (!streq (seg, "*") && !streq (seg, r->parts[i])))
            return false;
        if (streq (seg, "*"))
            r->arg[args++] = r->parts[i];
    }
    return i == r->count;
}

//  Split the path after /api/v1/ into segments, in place.  -1 if there are
//  too many, or an empty one.
static int
s_split (s_request_t *r, char *path)
{
    r->count = 0;
    char *save = NULL;
    if (!*path || path[strlen (path) - 1] == '/' || strstr (path, "//"))
        return -1;
    for (char *seg = strtok_r (path, "/", &save); seg;
         seg = strtok_r (NULL, "/", &save)) {
        if (r->count == S_PARTS_MAX)
            return -1;
        r->parts[r->count++] = seg;
    }
    return 0;
}

//  A path that matches routes for other methods: 405 with their list.
static int
s_not_allowed (s_request_t *r)
{
    char allow[64] = "";
    for (size_t i = 0; i < S_ROUTES; i++)
        if (s_matches (r, s_routes[i].pattern)
            && !strstr (allow, s_routes[i].method))
            snprintf (allow + strlen (allow), sizeof allow - strlen (allow),
                      "%s%s", *allow ? ", " : "", s_routes[i].method);
    if (!*allow)
        return s_error (r->req, 404, BUS_ERR_NOT_FOUND,
                        "no such API route; see "
                        "docs/api.md",
                        NULL);
    char headers[96], message[96];
    snprintf (headers, sizeof headers, "Allow: %s\r\n", allow);
    snprintf (message, sizeof message, "use %s", allow);
    json_t *body = bus_json_error ("method_not_allowed", message, NULL);
    return s_json (r->req, 405, body, headers);
}

//  Check who is asking against the route's access, then serve.
static int
s_serve (s_request_t *r, const s_route_t *route)
{
    int rc = bus_auth_check (r->self->auth, r->req, &r->claims);
    char why[256];
    if (rc != 0)
        return bus_auth_refuse (
            r->req, rc,
            bus_auth_why (r->self->auth, rc, &r->claims, why, sizeof why));
    //  The token's site is served (bus_auth_check): its gateway
    r->gateway =
        r->self->gateways[bus_auth_site_index (r->self->auth, r->claims.site)];
    if (route->access == S_STAFF && !bus_token_is_staff (&r->claims))
        return bus_auth_refuse (r->req, BUS_ERR_FORBIDDEN,
                                "this needs a kitchen or manager token");
    if (route->access == S_TABLE) {
        int status = s_guard_table (r, r->arg[0], false);
        if (status)
            return status;
    }
    if (route->change) {
        int status = s_guard_changes (r);
        if (status)
            return status;
    }
    return route->handler (r);
}

//  Split the path after /api/v1/ into r's segments.  -1 (no API route)
//  if it is not under /api/v1/, too long, or split badly.
static int
s_parse (s_request_t *r, char *path, size_t cap)
{
    const char *prefix = "/api/v1/";
    const char *uri = bus_req_path (r->req);
    if (strncmp (uri, prefix, strlen (prefix)) != 0
        || snprintf (path, cap, "%s", uri + strlen (prefix)) >= (int) cap
        || s_split (r, path) != 0)
        return -1;
    return 0;
}

//  Every path under /api that no row's own bus_req route took: a 404 or
//  405, or a path the API splits more leniently than bus_req matches
//  (one empty segment first: /api/v1//orders is /api/v1/orders, as it
//  always was).  Such a path is matched here, and a row that blocks is
//  run again from the top where it may wait (r is on this stack).
static int
s_dispatch (bus_req_t *req, void *arg)
{
    s_request_t r = { .self = (bus_api_t *) arg, .req = req };
    char path[512];
    if (s_parse (&r, path, sizeof path) != 0)
        return s_error (req, 404, BUS_ERR_NOT_FOUND,
                        "no such API route; see "
                        "docs/api.md",
                        NULL);
    for (size_t i = 0; i < S_ROUTES; i++)
        if (streq (bus_req_method (req), s_routes[i].method)
            && s_matches (&r, s_routes[i].pattern)) {
            if (s_routes[i].blocks && !bus_req_may_block (req))
                return bus_req_defer (req, s_dispatch, arg);
            return s_serve (&r, &s_routes[i]);
        }
    return s_not_allowed (&r);
}

//  A row's own route: bus_req matched its method and pattern, and runs
//  it where it may block if it does.  The path is split as s_dispatch
//  splits it, with the same 404 for one too long to split.
static int
s_route (bus_req_t *req, void *arg)
{
    s_binding_t *binding = (s_binding_t *) arg;
    s_request_t r = { .self = binding->self, .req = req };
    char path[512];
    if (s_parse (&r, path, sizeof path) != 0)
        return s_error (req, 404, BUS_ERR_NOT_FOUND,
                        "no such API route; see "
                        "docs/api.md",
                        NULL);
    if (!s_matches (&r, binding->route->pattern))
        return s_dispatch (req, binding->self);   //  not reached
    return s_serve (&r, binding->route);
}

static size_t
s_openapi_body (const void *arg, char *buf, size_t cap)
{
    (void) arg;
    if (bus_openapi_doc_len <= cap)
        memcpy (buf, bus_openapi_doc, bus_openapi_doc_len);
    return bus_openapi_doc_len;
}

//  GET /api/openapi.json: the API's description; anyone may read it.
static int
s_openapi (bus_req_t *req, void *arg)
{
    (void) arg;
    if (!streq (bus_req_method (req), "GET")) {
        json_t *body = bus_json_error ("method_not_allowed", "use GET", NULL);
        return s_json (req, 405, body, "Allow: GET\r\n");
    }
    return bus_req_send_body (req, 200, s_openapi_body, NULL, NULL);
}

bus_api_t *
bus_api_new (bus_gateway_t **gateways, bus_auth_t *auth,
             bus_req_router_t *router)
{
    bus_api_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    const bus_config_t *config = bus_gateway_config (gateways[0]);
    self->gateways = gateways;
    self->auth = auth;
    self->limit = bus_limit_new (config->table_rate_per_s, config->table_burst,
                                 S_LIMIT_TABLES);
    self->changes = bus_limit_new (config->changes_per_s, config->change_burst,
                                   S_LIMIT_TOKENS);
    if (!self->limit || !self->changes) {
        bus_limit_destroy (&self->limit);
        bus_limit_destroy (&self->changes);
        free (self);
        return NULL;
    }
    //  "/api" first: the catch-all must win over the seed routes'
    //  "/api/order" and "/api/orders" for paths under them (bus_req.h);
    //  the rows are whole paths, which go before any prefix
    bus_req_route_t any = { NULL, "/api", false, s_dispatch, self };
    bus_req_route_t openapi = { NULL, "/api/openapi.json", false, s_openapi,
                                self };
    bus_req_router_add (router, &any);
    bus_req_router_add (router, &openapi);
    for (size_t i = 0; i < S_ROUTES; i++) {
        char uri[96];
        snprintf (uri, sizeof uri, "/api/v1/%s$", s_routes[i].pattern);
        self->bindings[i] = (s_binding_t){ self, &s_routes[i] };
        bus_req_route_t row = { s_routes[i].method, uri, s_routes[i].blocks,
                                s_route, &self->bindings[i] };
        bus_req_router_add (router, &row);
    }
    return self;
}

void
bus_api_destroy (bus_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_limit_destroy (&(*self_p)->limit);
    bus_limit_destroy (&(*self_p)->changes);
    free (*self_p);
    *self_p = NULL;
}
