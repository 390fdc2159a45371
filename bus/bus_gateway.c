/*  bus_gateway.c — the pads' HTTP/JSON API in front of the writer.

    civetweb runs each request on one of its worker threads.  A POST
    registers a waiter for its idempotency key, PUSHes the command and
    sleeps on the waiter's condition variable; the listener thread reads
    acks off the SUB socket and wakes the waiters whose key matches.  While
    it waits the request resends the same command on a doubling schedule,
    so a command lost with a writer restart is still committed (once: the
    writer dedupes by key) before the deadline.  */

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_http.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_menu.h"
#include "orderbus/bus_sync.h"
#include "orderbus/bus_topic.h"

#define S_RESEND_FIRST_MS 250    //  first resend of an unacked command
#define S_MENU_FRESH_MS 1000     //  reuse a fetched menu for this long
#define S_LIST_DEFAULT 50

typedef struct s_waiter {
    const char *key;         //  borrowed from the request's command
    bus_ack_t *ack;          //  filled by the listener
    bool done;
    pthread_cond_t cond;
    struct s_waiter *next;
} s_waiter_t;

struct _bus_gateway_t {
    bus_config_t config;
    bus_sync_t *sync;             //  queries to the writer
    zsock_t *push;                //  intake, shared under push_lock
    pthread_mutex_t push_lock;
    zsock_t *sub;                 //  acks + heartbeats, listener thread only
    zactor_t *listener;
    pthread_mutex_t wait_lock;    //  guards waiters
    s_waiter_t *waiters;
    bus_link_t *link;             //  is the writer there?
    //  Counters for /api/v1/stats
    atomic_int inflight;          //  POSTs waiting for an ack now
    atomic_uint_fast64_t placed, replayed, rejected, timeouts, overloaded,
        unreachable, dropped;
    pthread_mutex_t menu_lock;    //  guards the menu cache
    bus_menu_t *menu;
    json_t *menu_json;
    int64_t menu_fetched_ms;
};

//  ---------------------------------------------------------------------
//  Listener thread: acks and heartbeats

static void
s_deliver (bus_gateway_t *self, const bus_ack_t *ack)
{
    pthread_mutex_lock (&self->wait_lock);
    for (s_waiter_t *w = self->waiters; w; w = w->next)
        if (!w->done && streq (w->key, ack->key)) {
            *w->ack = *ack;
            w->done = true;
            pthread_cond_signal (&w->cond);
        }
    pthread_mutex_unlock (&self->wait_lock);
}

static void
s_listen_once (bus_gateway_t *self, bus_ack_t *ack)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    char *topic = msg ? zmsg_popstr (msg) : NULL;
    zframe_t *body = msg ? zmsg_pop (msg) : NULL;
    if (topic && body && streq (topic, BUS_TOPIC_HEARTBEAT)) {
        bus_heartbeat_t hb;
        if (bus_heartbeat_decode (zframe_data (body), zframe_size (body), &hb) == 0)
            bus_link_heard (self->link, hb.seq);
    }
    else if (topic && body
             && bus_ack_decode (zframe_data (body), zframe_size (body), ack) == 0)
        s_deliver (self, ack);
    else {
        atomic_fetch_add (&self->dropped, 1);
        zsys_warning ("gateway: dropped unreadable message on topic '%s'",
                      topic ? topic : "(none)");
    }
    free (topic);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
}

static void
s_listener_actor (zsock_t *pipe, void *args)
{
    bus_gateway_t *self = (bus_gateway_t *) args;
    bus_ack_t *ack = malloc (sizeof *ack);
    zpoller_t *poller = zpoller_new (pipe, self->sub, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, ack ? 0 : -1);
    while (ack) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe)
            break;   //  $TERM is the only command we get
        if (which == self->sub)
            s_listen_once (self, ack);
    }
    zpoller_destroy (&poller);
    free (ack);
}

//  ---------------------------------------------------------------------
//  Intake: send a command and wait for its ack

static void
s_push (bus_gateway_t *self, const bus_cmd_t *cmd)
{
    zframe_t *frame = bus_cmd_encode (cmd);
    pthread_mutex_lock (&self->push_lock);
    if (frame && zframe_send (&frame, self->push, ZFRAME_DONTWAIT) != 0)
        zsys_warning ("gateway: intake queue full, command '%s' not sent",
                      cmd->key);
    pthread_mutex_unlock (&self->push_lock);
    zframe_destroy (&frame);
}

static void
s_deadline (struct timespec *ts, int64_t ms)
{
    clock_gettime (CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void
s_waiter_unlink (bus_gateway_t *self, s_waiter_t *waiter)
{
    for (s_waiter_t **p = &self->waiters; *p; p = &(*p)->next)
        if (*p == waiter) {
            *p = waiter->next;
            break;
        }
}

//  Send cmd and wait for its ack until the configured deadline.  0 with
//  *ack filled, or BUS_ERR_TIMEOUT.
static int
s_submit (bus_gateway_t *self, const bus_cmd_t *cmd, bus_ack_t *ack)
{
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    s_waiter_t waiter = {cmd->key, ack, false, PTHREAD_COND_INITIALIZER, NULL};
    pthread_cond_init (&waiter.cond, &attr);
    pthread_condattr_destroy (&attr);

    pthread_mutex_lock (&self->wait_lock);
    waiter.next = self->waiters;   //  registered before sending, so no ack
    self->waiters = &waiter;       //  can arrive unseen
    pthread_mutex_unlock (&self->wait_lock);

    int64_t end = zclock_mono () + self->config.ack_timeout_ms;
    int64_t resend = S_RESEND_FIRST_MS;
    s_push (self, cmd);
    pthread_mutex_lock (&self->wait_lock);
    while (!waiter.done && zclock_mono () < end) {
        int64_t left = end - zclock_mono ();
        struct timespec ts;
        s_deadline (&ts, resend < left ? resend : left);
        if (pthread_cond_timedwait (&waiter.cond, &self->wait_lock, &ts) != 0
            && !waiter.done && zclock_mono () < end) {
            pthread_mutex_unlock (&self->wait_lock);
            s_push (self, cmd);
            pthread_mutex_lock (&self->wait_lock);
            resend *= 2;
        }
    }
    s_waiter_unlink (self, &waiter);
    pthread_mutex_unlock (&self->wait_lock);
    pthread_cond_destroy (&waiter.cond);
    return waiter.done ? 0 : BUS_ERR_TIMEOUT;
}

//  ---------------------------------------------------------------------
//  Menu cache: the writer's menu, refetched when older than a second

//  Refresh the cache if it is stale.  Call with menu_lock held.
static void
s_menu_refresh (bus_gateway_t *self)
{
    if (self->menu && zclock_mono () - self->menu_fetched_ms < S_MENU_FRESH_MS)
        return;
    bus_sync_req_t req = {.op = BUS_SYNC_MENU};
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    if (bus_sync_call (self->sync, &req, &reply, &items) != 0)
        return;   //  keep the copy we have, stale or not
    zframe_t *doc = reply.status == 0 ? zmsg_first (items) : NULL;
    char err[256];
    bus_menu_t *menu = doc ? bus_menu_new ((const char *) zframe_data (doc),
                                           zframe_size (doc), err, sizeof err)
                           : NULL;
    if (menu) {
        bus_menu_destroy (&self->menu);
        json_decref (self->menu_json);
        self->menu = menu;
        self->menu_json = json_loadb (bus_menu_json (menu),
                                      bus_menu_json_len (menu), 0, NULL);
        self->menu_fetched_ms = zclock_mono ();
    }
    zmsg_destroy (&items);
}

static int
s_handle_menu (struct mg_connection *conn, void *cbdata)
{
    bus_gateway_t *self = (bus_gateway_t *) cbdata;
    if (!streq (mg_get_request_info (conn)->request_method, "GET"))
        return bus_http_send_error (conn, 405, "method_not_allowed",
                                    "use GET", NULL);
    pthread_mutex_lock (&self->menu_lock);
    s_menu_refresh (self);
    int status = self->menu_json
                     ? bus_http_send_json (conn, 200, self->menu_json, NULL)
                     : bus_http_send_error (conn, 503, "unavailable",
                                            "the menu is not available: the "
                                            "writer is unreachable or has no menu",
                                            NULL);
    pthread_mutex_unlock (&self->menu_lock);
    return status;
}

//  Index of the first line our copy of the menu does not know, or -1.
static int
s_menu_unknown (bus_gateway_t *self, const bus_cmd_t *cmd)
{
    for (uint32_t i = 0; i < cmd->line_count; i++)
        if (!self->menu || !bus_menu_find (self->menu, cmd->lines[i].item_id))
            return (int) i;
    return -1;
}

//  Early check against our copy of the menu, so an unknown item costs no
//  trip to the writer.  The copy is refetched only when it does not know
//  an item, so an unreachable writer does not slow every order down.  The
//  writer checks again: our copy may be stale.  Without any menu the
//  check is left to the writer.
static bool
s_menu_check (bus_gateway_t *self, const bus_cmd_t *cmd,
              bus_json_error_t *error)
{
    pthread_mutex_lock (&self->menu_lock);
    int i = s_menu_unknown (self, cmd);
    if (i >= 0) {
        s_menu_refresh (self);
        i = self->menu ? s_menu_unknown (self, cmd) : -1;
    }
    if (i >= 0) {
        snprintf (error->field, sizeof error->field, "items[%d].item_id", i);
        snprintf (error->message, sizeof error->message,
                  "unknown menu item '%s'", cmd->lines[i].item_id);
    }
    pthread_mutex_unlock (&self->menu_lock);
    return i < 0;
}

//  ---------------------------------------------------------------------
//  POST /api/v1/orders

//  The writer names the field in front of its message ("items[0].item_id:
//  unknown menu item 'x'"); split it back out for the error body.
static int
s_send_rejection (struct mg_connection *conn, int status, const bus_ack_t *ack,
                  const char *headers)
{
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
    bus_http_send_json (conn, status, body, headers);
    json_decref (body);
    return status;
}

static int
s_send_ack (bus_gateway_t *self, struct mg_connection *conn,
            const bus_ack_t *ack)
{
    if (ack->status == 0)
        atomic_fetch_add (ack->duplicate ? &self->replayed : &self->placed, 1);
    else
        atomic_fetch_add (&self->rejected, 1);
    switch (ack->status) {
    case 0: {
        char headers[160];
        snprintf (headers, sizeof headers,
                  "Location: /api/v1/orders/%" PRIu64 "\r\n%s", ack->order.id,
                  ack->duplicate ? "Idempotent-Replayed: true\r\n" : "");
        json_t *body = bus_json_order (&ack->order);
        int status = bus_http_send_json (conn, 201, body, headers);
        json_decref (body);
        return status;
    }
    case BUS_ERR_CONFLICT:
        return s_send_rejection (conn, 409, ack, NULL);
    case BUS_ERR_UNAVAILABLE:
        return s_send_rejection (conn, 503, ack, "Retry-After: 1\r\n");
    default:
        return s_send_rejection (conn, 400, ack, NULL);
    }
}

//  Read and check everything the pad sent; on failure the error response
//  has been sent and the status is returned, else 0.
static int
s_read_order (bus_gateway_t *self, struct mg_connection *conn, bus_cmd_t *cmd)
{
    if (!bus_http_is_json (conn))
        return bus_http_send_error (conn, 415, "unsupported_media_type",
                                    "Content-Type must be application/json",
                                    NULL);
    const char *key = mg_get_header (conn, "Idempotency-Key");
    if (!key)
        return bus_http_send_error (conn, 400, "invalid_field",
                                    "missing header: every order needs a "
                                    "unique Idempotency-Key",
                                    "Idempotency-Key");
    if (!bus_valid_key (key))
        return bus_http_send_error (conn, 400, "invalid_field",
                                    "must be 1 to 128 printable ASCII characters",
                                    "Idempotency-Key");
    char *body;
    size_t len;
    int rc = bus_http_read_body (conn, BUS_HTTP_BODY_MAX, &body, &len);
    if (rc == BUS_ERR_TOO_BIG)
        return bus_http_send_error (conn, 413, "too_big",
                                    "request body is larger than 65536 bytes",
                                    NULL);
    if (rc != 0)
        return bus_http_send_error (conn, 400, "malformed",
                                    "request body ended early", NULL);
    bus_json_error_t error;
    rc = bus_json_place_cmd (body, len, cmd, &error);
    free (body);
    if (rc == 0 && !s_menu_check (self, cmd, &error))
        rc = BUS_ERR_UNKNOWN_ITEM;
    if (rc != 0)
        return bus_http_send_error (conn, 400, bus_errname (rc), error.message,
                                    error.field);
    bus_strlcpy (cmd->key, key, sizeof cmd->key);
    bus_strlcpy (cmd->origin, self->config.name, sizeof cmd->origin);
    return 0;
}

static int
s_send_busy (struct mg_connection *conn, const char *code, const char *message)
{
    json_t *body = bus_json_error (code, message, NULL);
    int status = bus_http_send_json (conn, 503, body, "Retry-After: 1\r\n");
    json_decref (body);
    return status;
}

//  Submit a checked order and answer the pad.  Fails fast, before any
//  waiting, when the writer is known to be gone or too many orders are
//  already waiting: a queue that only grows helps nobody in a rush.
static int
s_submit_and_answer (bus_gateway_t *self, struct mg_connection *conn,
                     const bus_cmd_t *cmd, bus_ack_t *ack)
{
    if (!bus_link_up (self->link)) {
        atomic_fetch_add (&self->unreachable, 1);
        return s_send_busy (conn, "unavailable", "the writer is unreachable; "
                            "retry with the same Idempotency-Key");
    }
    if (atomic_fetch_add (&self->inflight, 1) >= self->config.max_inflight) {
        atomic_fetch_sub (&self->inflight, 1);
        atomic_fetch_add (&self->overloaded, 1);
        return s_send_busy (conn, "overloaded", "too many orders are waiting "
                            "for the writer; retry with the same Idempotency-Key");
    }
    int rc = s_submit (self, cmd, ack);
    atomic_fetch_sub (&self->inflight, 1);
    if (rc == 0)
        return s_send_ack (self, conn, ack);
    atomic_fetch_add (&self->timeouts, 1);
    char message[200];
    snprintf (message, sizeof message,
              "the writer did not confirm the order within %d ms; retry "
              "with the same Idempotency-Key (it will not be doubled)",
              self->config.ack_timeout_ms);
    return s_send_busy (conn, "unavailable", message);
}

static int
s_place_order (bus_gateway_t *self, struct mg_connection *conn)
{
    bus_cmd_t *cmd = calloc (1, sizeof *cmd);
    bus_ack_t *ack = calloc (1, sizeof *ack);
    int status = cmd && ack ? s_read_order (self, conn, cmd)
                            : bus_http_send_error (conn, 500, "nomem",
                                                   "out of memory", NULL);
    if (status == 0)
        status = s_submit_and_answer (self, conn, cmd, ack);
    free (cmd);
    free (ack);
    return status;
}

//  ---------------------------------------------------------------------
//  Queries through the writer's sync socket

//  Make a sync call; on failure the 503 has been sent and its status is
//  returned, else 0.
static int
s_query (bus_gateway_t *self, struct mg_connection *conn, bus_sync_req_t *req,
         bus_sync_reply_t *reply, zmsg_t **items)
{
    if (bus_sync_call (self->sync, req, reply, items) == 0)
        return 0;
    json_t *body = bus_json_error ("unavailable", "the writer did not answer; "
                                   "try again shortly", NULL);
    bus_http_send_json (conn, 503, body, "Retry-After: 1\r\n");
    json_decref (body);
    return 503;
}

//  Parse the list filters into req.  0, or the 400 has been sent.
static int
s_list_params (struct mg_connection *conn, bus_sync_req_t *req)
{
    static const char *const allowed[] = {"status", "table", "cursor",
                                          "limit", NULL};
    char value[64];
    uint64_t n;
    if (bus_http_query_check (conn, allowed, value, sizeof value) != 0)
        return bus_http_send_error (conn, 400, "invalid_field",
                                    "unknown query parameter", value);
    bus_status_t status;
    if (bus_http_query (conn, "status", value, sizeof value) >= 0) {
        if (bus_status_parse (value, &status) != 0)
            return bus_http_send_error (conn, 400, "invalid_field",
                                        "must be one of placed, accepted, "
                                        "preparing, ready, served, cancelled",
                                        "status");
        req->status = status;
    }
    int len = bus_http_query (conn, "table", req->table, sizeof req->table);
    if (len == -2 || (len >= 0 && !bus_valid_table (req->table)))
        return bus_http_send_error (conn, 400, "invalid_field",
                                    "must be 1 to 32 printable characters "
                                    "without '/'", "table");
    if (bus_http_query (conn, "cursor", value, sizeof value) >= 0) {
        if (bus_http_parse_u64 (value, 1, UINT64_MAX, &n) != 0)
            return bus_http_send_error (conn, 400, "invalid_field",
                                        "must be a cursor returned as "
                                        "next_cursor", "cursor");
        req->from = n;
    }
    req->limit = S_LIST_DEFAULT;
    if (bus_http_query (conn, "limit", value, sizeof value) >= 0) {
        if (bus_http_parse_u64 (value, 1, 1000, &n) != 0)
            return bus_http_send_error (conn, 400, "invalid_field",
                                        "must be an integer from 1 to 1000",
                                        "limit");
        req->limit = (uint32_t) n;
    }
    return 0;
}

//  Decode each item frame as an order and append its JSON to array.
static void
s_orders_to_json (zmsg_t *items, json_t *array, bus_order_t *order)
{
    for (zframe_t *f = zmsg_first (items); f; f = zmsg_next (items))
        if (bus_order_decode (zframe_data (f), zframe_size (f), order) == 0)
            json_array_append_new (array, bus_json_order (order));
}

static int
s_list_orders (bus_gateway_t *self, struct mg_connection *conn)
{
    bus_sync_req_t req = {.op = BUS_SYNC_LIST};
    int status = s_list_params (conn, &req);
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    if (status || (status = s_query (self, conn, &req, &reply, &items)))
        return status;
    bus_order_t *order = malloc (sizeof *order);
    json_t *orders = json_array ();
    if (order)
        s_orders_to_json (items, orders, order);
    json_t *body = json_pack ("{s:o, s:o}", "orders", orders, "next_cursor",
                              reply.next ? json_sprintf ("%" PRIu64, reply.next)
                                         : json_null ());
    status = bus_http_send_json (conn, 200, body, NULL);
    json_decref (body);
    free (order);
    zmsg_destroy (&items);
    return status;
}

static int
s_get_order (bus_gateway_t *self, struct mg_connection *conn, const char *id)
{
    bus_sync_req_t req = {.op = BUS_SYNC_GET};
    if (bus_http_parse_u64 (id, 1, UINT64_MAX, &req.id) != 0)
        return bus_http_send_error (conn, 404, "not_found",
                                    "no such order: order ids are positive "
                                    "integers", NULL);
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int status = s_query (self, conn, &req, &reply, &items);
    if (status)
        return status;
    bus_order_t *order = malloc (sizeof *order);
    zframe_t *frame = zmsg_first (items);
    if (reply.status == 0 && frame && order
        && bus_order_decode (zframe_data (frame), zframe_size (frame), order) == 0) {
        json_t *body = bus_json_order (order);
        status = bus_http_send_json (conn, 200, body, NULL);
        json_decref (body);
    }
    else if (reply.status == BUS_ERR_NOT_FOUND)
        status = bus_http_send_error (conn, 404, "not_found", "no such order",
                                      NULL);
    else
        status = bus_http_send_error (conn, 500, "storage", reply.error, NULL);
    free (order);
    zmsg_destroy (&items);
    return status;
}

static int
s_handle_orders (struct mg_connection *conn, void *cbdata)
{
    bus_gateway_t *self = (bus_gateway_t *) cbdata;
    const struct mg_request_info *info = mg_get_request_info (conn);
    const char *rest = info->local_uri + strlen ("/api/v1/orders");
    bool get = streq (info->request_method, "GET");
    if (*rest == '\0' && get)
        return s_list_orders (self, conn);
    if (*rest == '\0' && streq (info->request_method, "POST"))
        return s_place_order (self, conn);
    if (*rest == '/' && get)
        return s_get_order (self, conn, rest + 1);
    json_t *body = bus_json_error ("method_not_allowed",
                                   *rest ? "use GET" : "use GET or POST", NULL);
    int status = bus_http_send_json (conn, 405, body,
                                     *rest ? "Allow: GET\r\n"
                                           : "Allow: GET, POST\r\n");
    json_decref (body);
    return status;
}

//  ---------------------------------------------------------------------
//  Health, and everything else under /api

json_t *
bus_gateway_health (bus_gateway_t *self, bool *ok)
{
    json_t *health = json_pack ("{s:s}", "name", self->config.name);
    *ok = bus_link_health (self->link, health);
    return health;
}

//  The writer's counters, or null if it does not answer.
static json_t *
s_writer_stats (bus_gateway_t *self)
{
    bus_sync_req_t req = {.op = BUS_SYNC_STATS};
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    json_t *stats = NULL;
    if (bus_sync_call (self->sync, &req, &reply, &items) == 0 && reply.status == 0
        && zmsg_size (items) == 1) {
        zframe_t *frame = zmsg_first (items);
        stats = json_loadb ((const char *) zframe_data (frame),
                            zframe_size (frame), 0, NULL);
    }
    zmsg_destroy (&items);
    return stats ? stats : json_null ();
}

static int
s_handle_stats (struct mg_connection *conn, void *cbdata)
{
    bus_gateway_t *self = (bus_gateway_t *) cbdata;
    if (!streq (mg_get_request_info (conn)->request_method, "GET"))
        return bus_http_send_error (conn, 405, "method_not_allowed", "use GET",
                                    NULL);
    json_t *body = json_pack (
        "{s:{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}", "gateway",
        "name",
        self->config.name, "inflight", atomic_load (&self->inflight), "placed",
        (json_int_t) atomic_load (&self->placed), "replayed",
        (json_int_t) atomic_load (&self->replayed), "rejected",
        (json_int_t) atomic_load (&self->rejected), "timeouts",
        (json_int_t) atomic_load (&self->timeouts), "overloaded",
        (json_int_t) atomic_load (&self->overloaded), "unreachable",
        (json_int_t) atomic_load (&self->unreachable), "dropped",
        (json_int_t) atomic_load (&self->dropped), "writer",
        s_writer_stats (self));
    int status = bus_http_send_json (conn, 200, body, NULL);
    json_decref (body);
    return status;
}

static int
s_handle_unknown (struct mg_connection *conn, void *cbdata)
{
    return bus_http_send_error (conn, 404, "not_found",
                                "no such API route; see the README", NULL);
}

//  ---------------------------------------------------------------------
//  Construction

static int
s_sockets_init (bus_gateway_t *self, char *err, size_t err_cap)
{
    char topic[BUS_TOPIC_MAX];
    self->push = zsock_new (ZMQ_PUSH);
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->push || !self->sub
        || bus_topic_ack (topic, sizeof topic, self->config.name) != 0)
        goto fail;
    //  Unacked commands are resent, so a bounded queue that refuses when
    //  full is safer than one that blocks a worker thread.
    zsock_set_sndhwm (self->push, 10000);
    zsock_set_linger (self->push, 0);
    zsock_set_maxmsgsize (self->sub, BUS_FRAME_MAX + BUS_TOPIC_MAX);
    zsock_set_subscribe (self->sub, topic);
    zsock_set_subscribe (self->sub, BUS_TOPIC_HEARTBEAT);
    if (zsock_connect (self->push, "%s", self->config.intake) != 0
        || zsock_connect (self->sub, "%s", self->config.events) != 0)
        goto fail;
    return 0;
fail:
    snprintf (err, err_cap, "cannot connect to the writer at %s / %s: %s",
              self->config.intake, self->config.events,
              zmq_strerror (zmq_errno ()));
    return -1;
}

bus_gateway_t *
bus_gateway_new (const bus_config_t *config, struct mg_context *http,
                 char *err, size_t err_cap)
{
    bus_gateway_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    pthread_mutex_init (&self->push_lock, NULL);
    pthread_mutex_init (&self->wait_lock, NULL);
    pthread_mutex_init (&self->menu_lock, NULL);
    self->sync = bus_sync_new (config->sync, config->ack_timeout_ms);
    self->link = bus_link_new (config, "gateway", config->name);
    if (!self->sync || !self->link) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    if (s_sockets_init (self, err, err_cap) != 0)
        goto fail;
    self->listener = zactor_new (s_listener_actor, self);
    if (!self->listener) {
        snprintf (err, err_cap, "cannot start the gateway's listener thread");
        goto fail;
    }
    mg_set_request_handler (http, "/api/v1/menu", s_handle_menu, self);
    mg_set_request_handler (http, "/api/v1/orders", s_handle_orders, self);
    mg_set_request_handler (http, "/api/v1/stats", s_handle_stats, self);
    mg_set_request_handler (http, "/api", s_handle_unknown, self);
    zsys_info ("gateway %s: writer intake %s, events %s, sync %s",
               config->name, config->intake, config->events, config->sync);
    return self;
fail:
    bus_gateway_destroy (&self);
    return NULL;
}

void
bus_gateway_destroy (bus_gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_gateway_t *self = *self_p;
    zactor_destroy (&self->listener);
    bus_link_destroy (&self->link);
    zsock_destroy (&self->push);
    zsock_destroy (&self->sub);
    bus_sync_destroy (&self->sync);
    bus_menu_destroy (&self->menu);
    json_decref (self->menu_json);
    pthread_mutex_destroy (&self->push_lock);
    pthread_mutex_destroy (&self->wait_lock);
    pthread_mutex_destroy (&self->menu_lock);
    free (self);
    *self_p = NULL;
}
