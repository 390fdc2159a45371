/*  bus_api_test.c — the routes driven in-process, without sockets.

    A fake server (a bus_req_server_t of its own) takes a request as
    method, path, query, headers and body, serves it through a bus_req
    router as both real servers do, and hands back the answer's status,
    header lines and body.  Behind the routes are a real writer (inproc
    endpoints, a data directory under /tmp) and a real gateway, so an
    order goes the whole way: parse, send, group commit, ack.  It can
    refuse to run blocking work (as libmicrohttpd's event thread) or
    allow it (as civetweb's threads), and its "pool" can be full.  */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_api.h"
#include "orderbus/bus_auth.h"
#include "orderbus/bus_compat.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_req.h"
#include "orderbus/bus_token.h"
#include "orderbus/bus_writer.h"

#define S_HEADERS_MAX  6
#define S_WAIT_MS      10000   //  an answer made later comes in this time
#define S_CHANGE_BURST 3       //  changes a token may make at once, here

static bool s_verbose;   //  print each exchange

//  A request on the fake server, and its answer
typedef struct {
    bus_req_t req;   //  first: a s_fake_t * is a bus_req_t *
    const char *headers[S_HEADERS_MAX][2];
    const char *body;
    bool pool_full;   //  defer refuses, as a full pool
    //  Deferred work, run by s_drive as a pool thread would
    bus_req_fn *later_fn;
    void *later_arg;
    int deferred;   //  times bus_req_defer reached the server
    //  The answer, from whichever thread makes it
    pthread_mutex_t lock;
    pthread_cond_t done;
    int answers;
    int status;
    char head[BUS_REQ_HEAD_MAX];
    char *text;
    size_t len;
} s_fake_t;

static const char *
s_fake_header (bus_req_t *req, const char *name)
{
    s_fake_t *self = (s_fake_t *) req;
    for (int i = 0; i < S_HEADERS_MAX && self->headers[i][0]; i++)
        if (strcasecmp (self->headers[i][0], name) == 0)
            return self->headers[i][1];
    return NULL;
}

static int
s_fake_body (bus_req_t *req, size_t max, char **body, size_t *len)
{
    s_fake_t *self = (s_fake_t *) req;
    const char *text = self->body ? self->body : "";
    if (strlen (text) > max)
        return BUS_ERR_TOO_BIG;
    *body = strdup (text);
    *len = strlen (text);
    return *body ? 0 : BUS_ERR_NOMEM;
}

static void
s_fake_answer (bus_req_t *req, int status, const char *headers, char *body,
               size_t len)
{
    s_fake_t *self = (s_fake_t *) req;
    pthread_mutex_lock (&self->lock);
    self->answers++;
    self->status = status;
    snprintf (self->head, sizeof self->head, "%s", headers);
    self->text = malloc (len + 1);
    assert (self->text);
    memcpy (self->text, body, len);
    self->text[len] = '\0';
    self->len = len;
    pthread_cond_signal (&self->done);
    pthread_mutex_unlock (&self->lock);
}

static int
s_fake_defer (bus_req_t *req, bus_req_fn *fn, void *arg)
{
    s_fake_t *self = (s_fake_t *) req;
    self->deferred++;
    if (self->pool_full)
        return -1;
    assert (!self->later_fn);   //  one piece of deferred work at a time
    self->later_fn = fn;
    self->later_arg = arg;
    return 0;
}

static const bus_req_server_t s_fake_server = { s_fake_header, s_fake_body,
                                                s_fake_answer, s_fake_defer };

//  A request for target ("/path?query") with headers (name, value pairs,
//  NULL-ended) and body.  may_block: as civetweb (true) or as
//  libmicrohttpd's event thread (false).
static void
s_fake_init (s_fake_t *self, const char *method, const char *target,
             bool may_block, const char *body, const char *const *headers)
{
    memset (self, 0, sizeof *self);
    self->req.server = &s_fake_server;
    self->req.method = method;
    char *path = strdup (target);
    assert (path);
    char *query = strchr (path, '?');
    if (query)
        *query++ = '\0';
    self->req.path = path;
    self->req.query = query;
    self->req.may_block = may_block;
    self->body = body;
    for (int i = 0; headers && headers[2 * i]; i++) {
        assert (i < S_HEADERS_MAX);
        self->headers[i][0] = headers[2 * i];
        self->headers[i][1] = headers[2 * i + 1];
    }
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->done, NULL);
}

static void
s_fake_fini (s_fake_t *self)
{
    free ((char *) self->req.path);   //  the query is in the same block
    free (self->text);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->done);
}

//  Serve the request as a server would: through the router, deferred
//  work run "on the pool" (here, where it may block), then wait for the
//  answer, which may come from the gateway's listener thread.  Returns
//  its status; checks it was answered exactly once.
static int
s_drive (bus_req_router_t *router, s_fake_t *self)
{
    bus_req_router_serve (router, &self->req);
    while (self->later_fn) {
        bus_req_fn *fn = self->later_fn;
        self->later_fn = NULL;
        self->req.may_block = true;
        fn (&self->req, self->later_arg);
    }
    struct timespec end;
    clock_gettime (CLOCK_REALTIME, &end);
    end.tv_sec += S_WAIT_MS / 1000;
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (self->answers == 0 && rc == 0)
        rc = pthread_cond_timedwait (&self->done, &self->lock, &end);
    int answers = self->answers, status = self->status;
    pthread_mutex_unlock (&self->lock);
    assert (answers == 1);
    return status;
}

//  The answer's body as JSON (caller decrefs).
static json_t *
s_json_of (const s_fake_t *self)
{
    json_t *json = json_loadb (self->text, self->len, 0, NULL);
    assert (json);
    return json;
}

//  The error body's code and field ("" if none) are these.
static void
s_assert_error (const s_fake_t *self, const char *code, const char *field)
{
    json_t *json = s_json_of (self);
    json_t *error = json_object_get (json, "error");
    assert (error);
    const char *got = json_string_value (json_object_get (error, "code"));
    assert (got && streq (got, code));
    if (field) {
        got = json_string_value (json_object_get (error, "field"));
        assert (got && streq (got, field));
    }
    json_decref (json);
}

//  One request, start to end: its status.  The answer stays in *fake for
//  the caller to look at; s_fake_fini it.
static int
s_call (bus_req_router_t *router, s_fake_t *fake, const char *method,
        const char *target, bool may_block, const char *body,
        const char *const *headers)
{
    s_fake_init (fake, method, target, may_block, body, headers);
    int status = s_drive (router, fake);
    if (s_verbose)
        fprintf (stderr, "   %s %s -> %d %.100s\n", method, target, status,
                 fake->text);
    return status;
}

//  ---------------------------------------------------------------------
//  bus_req on its own: query decoding and the matching rule

static int
s_query (const char *query, const char *name, char *buf, size_t cap)
{
    bus_req_t req = { .server = &s_fake_server, .query = query };
    return bus_req_query (&req, name, buf, cap);
}

//  The results civetweb's own query lookup (1.15) gave for these, which
//  bus_req keeps: checked against it, on two million random queries, when
//  bus_req took decoding over
static void
s_test_query (void)
{
    char buf[16];
    assert (s_query (NULL, "a", buf, sizeof buf) == -1 && !*buf);
    assert (s_query ("", "a", buf, sizeof buf) == -1);
    assert (s_query ("a=1", "a", buf, sizeof buf) == 1 && streq (buf, "1"));
    assert (s_query ("ba=1&a=2", "a", buf, sizeof buf) == 1
            && streq (buf, "2"));
    assert (s_query ("a=1&a=2", "a", buf, sizeof buf) == 1 && streq (buf, "1"));
    assert (s_query ("A=3", "a", buf, sizeof buf) == 1 && streq (buf, "3"));
    assert (s_query ("a", "a", buf, sizeof buf) == -1);
    assert (s_query ("a&a=4", "a", buf, sizeof buf) == 1 && streq (buf, "4"));
    assert (s_query ("a=", "a", buf, sizeof buf) == 0 && streq (buf, ""));
    assert (s_query ("a=x+y%20z", "a", buf, sizeof buf) == 5
            && streq (buf, "x y z"));
    assert (s_query ("a=%41%6a%4A", "a", buf, sizeof buf) == 3
            && streq (buf, "AjJ"));
    assert (s_query ("a=%2B%26", "a", buf, sizeof buf) == 2
            && streq (buf, "+&"));
    //  Names are compared as written, not decoded
    assert (s_query ("%61=1", "a", buf, sizeof buf) == -1);
    //  Malformed escapes stay as written
    assert (s_query ("a=%zz", "a", buf, sizeof buf) == 3 && streq (buf, "%zz"));
    assert (s_query ("a=%4", "a", buf, sizeof buf) == 2 && streq (buf, "%4"));
    assert (s_query ("a=%", "a", buf, sizeof buf) == 1 && streq (buf, "%"));
    assert (s_query ("a=%41%4&b", "a", buf, sizeof buf) == 3
            && streq (buf, "A%4"));
    //  A value that does not fit: -2, what fits kept
    assert (s_query ("a=123456789", "a", buf, 4) == -2 && streq (buf, "123"));
    assert (s_query ("a=123", "a", buf, 4) == 3);
    assert (s_query ("a=%41%41%41%41", "a", buf, 4) == -2);
    //  Unknown names are found by bus_req_query_check, undecoded
    bus_req_t req = { .server = &s_fake_server, .query = "status=x&Tab%6ce=1" };
    const char *allowed[] = { "status", "table", NULL };
    char bad[32];
    assert (bus_req_query_check (&req, allowed, bad, sizeof bad) == -1
            && streq (bad, "Tab%6ce"));
}

static int
s_nop (bus_req_t *req, void *arg)
{
    (void) req, (void) arg;
    return 0;
}

//  The route the rule picks for method and path, by its arg's number
static int
s_pick (bus_req_router_t *router, const char *method, const char *path)
{
    const bus_req_route_t *route = bus_req_router_find (router, method, path);
    return route ? (int) (intptr_t) route->arg : 0;
}

static void
s_test_match (void)
{
    bus_req_router_t *router = bus_req_router_new (NULL, NULL);
    assert (router);
    //  As the gateway adds them: API catch-all and rows, then seed routes
    bus_req_route_t routes[] = {
        { NULL, "/api", false, s_nop, (void *) 1 },
        { NULL, "/api/openapi.json", false, s_nop, (void *) 2 },
        { "GET", "/api/v1/orders$", true, s_nop, (void *) 3 },
        { "POST", "/api/v1/orders$", false, s_nop, (void *) 4 },
        { "GET", "/api/v1/orders/*$", true, s_nop, (void *) 5 },
        { NULL, "/api/order", true, s_nop, (void *) 6 },
        { NULL, "/api/orders", true, s_nop, (void *) 7 },
        { NULL, "/orders$", true, s_nop, (void *) 8 },
        { NULL, "/healthz", false, s_nop, (void *) 9 },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        assert (bus_req_router_add (router, &routes[i]) == 0);
    assert (s_pick (router, "GET", "/api") == 1);
    assert (s_pick (router, "GET", "/api/openapi.json") == 2);
    assert (s_pick (router, "GET", "/api/openapi.json/x") == 1);
    assert (s_pick (router, "GET", "/api/v1/orders") == 3);
    assert (s_pick (router, "POST", "/api/v1/orders") == 4);
    assert (s_pick (router, "PUT", "/api/v1/orders") == 1);
    assert (s_pick (router, "GET", "/api/v1/orders/42") == 5);
    assert (s_pick (router, "GET", "/api/v1/orders/42/x") == 1);
    assert (s_pick (router, "GET", "/api/v1/orders/") == 1);
    assert (s_pick (router, "GET", "/api/v1//orders") == 1);
    //  Whole paths first, then the first prefix added: the seed routes
    //  have their own paths, the API keeps everything under them
    assert (s_pick (router, "POST", "/api/order") == 6);
    assert (s_pick (router, "GET", "/api/orders") == 7);
    assert (s_pick (router, "GET", "/api/orders/5") == 1);
    assert (s_pick (router, "GET", "/api/ordersx") == 1);
    assert (s_pick (router, "POST", "/orders") == 8);
    assert (s_pick (router, "POST", "/orders/1") == 0);
    assert (s_pick (router, "GET", "/healthz") == 9);
    assert (s_pick (router, "GET", "/healthz/x") == 9);
    assert (s_pick (router, "GET", "/healthzx") == 0);
    assert (s_pick (router, "GET", "/") == 0);
    //  Case counts, but for a router told to ignore it (civetweb's)
    assert (s_pick (router, "GET", "/HEALTHZ") == 0);
    assert (s_pick (router, "GET", "/API/v1/orders") == 0);
    bus_req_router_ignore_case (router);
    assert (s_pick (router, "GET", "/HEALTHZ") == 9);
    assert (s_pick (router, "GET", "/Healthz/x") == 9);
    assert (s_pick (router, "GET", "/API/V1/Orders/42") == 5);
    assert (s_pick (router, "GET", "/API/v1/menu") == 1);
    assert (s_pick (router, "GET", "/healthzX") == 0);
    //  No route: the router's own 404
    s_fake_t fake;
    assert (s_call (router, &fake, "GET", "/nowhere", false, NULL, NULL)
            == 404);
    s_assert_error (&fake, "not_found", NULL);
    s_fake_fini (&fake);
    bus_req_router_destroy (&router);
    assert (!router);
    bus_req_router_destroy (&router);
}

//  ---------------------------------------------------------------------
//  The routes, with a writer and a gateway behind them

//  A token for role (and table), signed with the secret at path
static char *
s_token (const char *path, bus_token_role_t role, const char *table)
{
    char err[256];
    bus_secret_t *secret = bus_secret_load (path, err, sizeof err);
    assert (secret);
    bus_claims_t claims = { role, "main", "", zclock_time () + 3600 * 1000LL };
    snprintf (claims.table, sizeof claims.table, "%s", table);
    char *token = bus_token_mint (secret, &claims);
    assert (token);
    bus_secret_destroy (&secret);
    return token;
}

//  The seed routes need a token as the native ones do: in a header, or
//  in the /compat/<token>/ prefix of the path; every table's orders need
//  staff.  A refusal says how to send one, in the seed's shape.
static void
s_test_seed_access (bus_req_router_t *router, const char *pad,
                    const char *kitchen)
{
    s_fake_t fake;
    char path[700];
    static const char *const no_token[] = { "/menu_items", "/api/orders",
                                            "/compat/x/api/orders",
                                            "/compat//menu_items", NULL };
    for (size_t i = 0; no_token[i]; i++) {
        assert (s_call (router, &fake, "GET", no_token[i], false, NULL, NULL)
                == 401);
        assert (strstr (fake.text, "/compat/<token>"));
        s_fake_fini (&fake);
    }
    assert (s_call (router, &fake, "POST", "/api/order", false,
                    "{\"table\":\"T1\",\"items\":[{\"name\":\"Soup\","
                    "\"quantity\":1}]}",
                    NULL)
            == 401);
    json_t *json = s_json_of (&fake);
    assert (json_is_string (json_object_get (json, "detail")));
    json_decref (json);
    s_fake_fini (&fake);
    //  A pad may not read every table's orders
    snprintf (path, sizeof path, "/compat/%s/api/orders", pad);
    assert (s_call (router, &fake, "GET", path, false, NULL, NULL) == 403);
    s_fake_fini (&fake);
    //  The prefix carries the token for every route
    snprintf (path, sizeof path, "/compat/%s/menu_items", pad);
    assert (s_call (router, &fake, "GET", path, false, NULL, NULL) == 200);
    s_fake_fini (&fake);
    snprintf (path, sizeof path, "/compat/%s/api/orders", kitchen);
    assert (s_call (router, &fake, "GET", path, false, NULL, NULL) == 200);
    json = s_json_of (&fake);
    assert (json_is_array (json));
    json_decref (json);
    s_fake_fini (&fake);
    //  Elsewhere under /compat/: 401 without a token, 404 with one
    assert (
        s_call (router, &fake, "GET", "/compat/bad/nowhere", false, NULL, NULL)
        == 401);
    s_fake_fini (&fake);
    snprintf (path, sizeof path, "/compat/%s/nowhere", kitchen);
    assert (s_call (router, &fake, "GET", path, false, NULL, NULL) == 404);
    s_fake_fini (&fake);
    snprintf (path, sizeof path, "/compat/%s/api/orders/5", kitchen);
    assert (s_call (router, &fake, "GET", path, false, NULL, NULL) == 404);
    s_fake_fini (&fake);
    //  The method is checked first, as on the native API
    snprintf (path, sizeof path, "/compat/%s/api/orders", kitchen);
    assert (s_call (router, &fake, "POST", path, false, "{}", NULL) == 405);
    s_fake_fini (&fake);
}

static void
s_test_routes (bus_req_router_t *router, const char *secret_file, bool verbose)
{
    char *pad = s_token (secret_file, BUS_TOKEN_PAD, "T1");
    char *kitchen = s_token (secret_file, BUS_TOKEN_KITCHEN, "");
    char pad_auth[600], kitchen_auth[600];
    snprintf (pad_auth, sizeof pad_auth, "Bearer %s", pad);
    snprintf (kitchen_auth, sizeof kitchen_auth, "Bearer %s", kitchen);
    const char *order = "{\"table\": \"T1\", \"items\": "
                        "[{\"item_id\": \"soup\", \"quantity\": 2}]}";
    const char *other = "{\"table\": \"T1\", \"items\": "
                        "[{\"item_id\": \"soup\", \"quantity\": 3}]}";
    const char *headers[] = { "Authorization",
                              pad_auth,
                              "Content-Type",
                              "application/json",
                              "Idempotency-Key",
                              "k-1",
                              NULL };
    s_fake_t fake;

    //  An order, on a request that may not block (libmicrohttpd's event
    //  thread): 201 with its Location, answered from the ack
    assert (
        s_call (router, &fake, "POST", "/api/v1/orders", false, order, headers)
        == 201);
    assert (strstr (fake.head, "Location: /api/v1/orders/"));
    assert (!strstr (fake.head, "Idempotent-Replayed"));
    json_t *json = s_json_of (&fake);
    uint64_t id = (uint64_t) json_integer_value (json_object_get (json, "id"));
    assert (id > 0);
    json_decref (json);
    char location[64];
    snprintf (location, sizeof location,
              "Location: /api/v1/orders/%" PRIu64 "\r\n", id);
    assert (strstr (fake.head, location));
    char *first = strdup (fake.text);
    s_fake_fini (&fake);

    //  The same key and body again, where it may block (civetweb): the
    //  same order, replayed
    assert (
        s_call (router, &fake, "POST", "/api/v1/orders", true, order, headers)
        == 201);
    assert (strstr (fake.head, "Idempotent-Replayed: true\r\n"));
    assert (strstr (fake.head, location));
    assert (streq (fake.text, first));
    s_fake_fini (&fake);
    free (first);

    //  The key again with another body: 409
    assert (
        s_call (router, &fake, "POST", "/api/v1/orders", false, other, headers)
        == 409);
    s_assert_error (&fake, "conflict", "Idempotency-Key");
    s_fake_fini (&fake);

    //  Bad JSON: 400 naming the field
    const char *bad_headers[] = { "Authorization",
                                  pad_auth,
                                  "Content-Type",
                                  "application/json",
                                  "Idempotency-Key",
                                  "k-2",
                                  NULL };
    assert (s_call (router, &fake, "POST", "/api/v1/orders", false,
                    "{\"table\": \"T1\", \"items\": [{\"item_id\": \"soup\", "
                    "\"quantity\": 0}]}",
                    bad_headers)
            == 400);
    s_assert_error (&fake, "invalid_field", "items[0].quantity");
    s_fake_fini (&fake);
    assert (s_call (router, &fake, "POST", "/api/v1/orders", false, "{nope",
                    bad_headers)
            == 400);
    s_fake_fini (&fake);

    //  A query, on a request that may not block: its route blocks, so it
    //  is deferred (once) and answered from there
    const char *kitchen_headers[] = { "Authorization", kitchen_auth, NULL };
    char target[64];
    snprintf (target, sizeof target, "/api/v1/orders/%" PRIu64, id);
    assert (s_call (router, &fake, "GET", target, false, NULL, kitchen_headers)
            == 200);
    assert (fake.deferred == 1);
    json = s_json_of (&fake);
    assert ((uint64_t) json_integer_value (json_object_get (json, "id")) == id);
    json_decref (json);
    s_fake_fini (&fake);
    //  ... and run where it is, where it may
    assert (s_call (router, &fake, "GET", target, true, NULL, kitchen_headers)
            == 200);
    assert (fake.deferred == 0);
    s_fake_fini (&fake);
    //  ... and a full pool: 503 overloaded, with Retry-After
    s_fake_init (&fake, "GET", target, false, NULL, kitchen_headers);
    fake.pool_full = true;
    assert (s_drive (router, &fake) == 503);
    assert (strstr (fake.head, "Retry-After: 1\r\n"));
    s_assert_error (&fake, "overloaded", NULL);
    s_fake_fini (&fake);
    //  A command does not block: never deferred
    const char *status_headers[] = { "Authorization",
                                     kitchen_auth,
                                     "Content-Type",
                                     "application/json",
                                     "Idempotency-Key",
                                     "k-3",
                                     NULL };
    snprintf (target, sizeof target, "/api/v1/orders/%" PRIu64 "/status", id);
    assert (s_call (router, &fake, "POST", target, false,
                    "{\"status\": \"accepted\"}", status_headers)
            == 200);
    assert (fake.deferred == 0);
    s_fake_fini (&fake);

    //  A list with a query: a known parameter, then an unknown one
    assert (s_call (router, &fake, "GET",
                    "/api/v1/orders?status=accepted"
                    "&table=T1",
                    false, NULL, kitchen_headers)
            == 200);
    json = s_json_of (&fake);
    assert (json_array_size (json_object_get (json, "orders")) == 1);
    json_decref (json);
    s_fake_fini (&fake);
    assert (s_call (router, &fake, "GET", "/api/v1/orders?colour=red", false,
                    NULL, kitchen_headers)
            == 400);
    s_assert_error (&fake, "invalid_field", "colour");
    s_fake_fini (&fake);

    //  404s and a 405
    assert (s_call (router, &fake, "GET", "/api/v1/nothing", false, NULL,
                    kitchen_headers)
            == 404);
    s_assert_error (&fake, "not_found", NULL);
    s_fake_fini (&fake);
    assert (s_call (router, &fake, "GET", "/api/v1/orders/999999", true, NULL,
                    kitchen_headers)
            == 404);
    s_fake_fini (&fake);
    assert (s_call (router, &fake, "PUT", "/api/v1/orders", false, NULL,
                    kitchen_headers)
            == 405);
    assert (strstr (fake.head, "Allow: GET, POST\r\n"));
    s_fake_fini (&fake);
    //  The API's lenient split: /api/v1//orders is /api/v1/orders
    assert (s_call (router, &fake, "GET", "/api/v1//orders", false, NULL,
                    kitchen_headers)
            == 200);
    s_fake_fini (&fake);

    //  Refused callers: no token 401, a pad on a staff route 403
    assert (s_call (router, &fake, "GET", "/api/v1/menu", false, NULL, NULL)
            == 401);
    s_fake_fini (&fake);
    const char *pad_only[] = { "Authorization", pad_auth, NULL };
    assert (
        s_call (router, &fake, "GET", "/api/v1/stats", false, NULL, pad_only)
        == 403);
    s_assert_error (&fake, "forbidden", NULL);
    s_fake_fini (&fake);
    assert (s_call (router, &fake, "GET", "/api/v1/menu", false, NULL, pad_only)
            == 200);
    s_fake_fini (&fake);

    //  The API's description, and the seed routes beside it
    assert (
        s_call (router, &fake, "GET", "/api/openapi.json", false, NULL, NULL)
        == 200);
    s_fake_fini (&fake);
    assert (s_call (router, &fake, "GET", "/menu_items", false, NULL, pad_only)
            == 200);
    assert (fake.deferred == 1);   //  a seed route blocks
    json = s_json_of (&fake);
    assert (json_is_array (json) && json_array_size (json) > 0);
    json_decref (json);
    s_fake_fini (&fake);
    const char *kitchen_only[] = { "Authorization", kitchen_auth, NULL };
    assert (
        s_call (router, &fake, "GET", "/api/orders", false, NULL, kitchen_only)
        == 200);
    json = s_json_of (&fake);
    assert (json_is_array (json));
    json_decref (json);
    s_fake_fini (&fake);
    s_test_seed_access (router, pad, kitchen);
    //  Under a seed route's path, the API's catch-all answers (added first)
    assert (s_call (router, &fake, "GET", "/api/orders/5", false, NULL, NULL)
            == 404);
    assert (strstr (fake.text, "no such API route"));
    s_fake_fini (&fake);
    //  Nor does "/menu_items$" take what is under it
    assert (s_call (router, &fake, "GET", "/menu_items/1", false, NULL, NULL)
            == 404);
    assert (strstr (fake.text, "no such route"));
    s_fake_fini (&fake);

    free (pad);
    free (kitchen);
    if (verbose)
        printf (" * bus_api: orders, replays, conflicts, queries deferred, "
                "refusals, seed routes, in-process\n");
}

//  A cart change by token for table, under key: its status
static int
s_cart_add (bus_req_router_t *router, const char *token, const char *table,
            const char *key, s_fake_t *fake)
{
    char auth[700], target[96];
    snprintf (auth, sizeof auth, "Bearer %s", token);
    snprintf (target, sizeof target, "/api/v1/tables/%s/cart/items", table);
    const char *headers[] = { "Authorization",
                              auth,
                              "Content-Type",
                              "application/json",
                              "Idempotency-Key",
                              key,
                              NULL };
    return s_call (router, fake, "POST", target, false,
                   "{\"item_id\": \"burger\", \"quantity\": 1}", headers);
}

//  limits/changes_per_s: each token has its own bucket of changes
//  (S_CHANGE_BURST here), orders do not take from it, and past it the
//  answer is 429 with Retry-After.
static void
s_test_changes (bus_req_router_t *router, const char *secret_file)
{
    char *pad2 = s_token (secret_file, BUS_TOKEN_PAD, "T2");
    char *pad3 = s_token (secret_file, BUS_TOKEN_PAD, "T3");
    s_fake_t fake;
    char key[32];
    for (int i = 0; i < S_CHANGE_BURST; i++) {
        snprintf (key, sizeof key, "change-%d", i);
        assert (s_cart_add (router, pad2, "T2", key, &fake) == 200);
        s_fake_fini (&fake);
    }
    assert (s_cart_add (router, pad2, "T2", "change-over", &fake) == 429);
    s_assert_error (&fake, "rate_limited", NULL);
    assert (strstr (fake.text, "this token is making changes too fast"));
    assert (strstr (fake.head, "Retry-After: 1"));
    s_fake_fini (&fake);
    //  Another token has its own bucket
    assert (s_cart_add (router, pad3, "T3", "change-t3", &fake) == 200);
    s_fake_fini (&fake);
    //  Ordering the cart is an order, limited per table, not a change
    char auth[700];
    snprintf (auth, sizeof auth, "Bearer %s", pad2);
    const char *headers[] = { "Authorization",
                              auth,
                              "Content-Type",
                              "application/json",
                              "Idempotency-Key",
                              "change-order",
                              NULL };
    assert (s_call (router, &fake, "POST", "/api/v1/tables/T2/cart/order",
                    false, "{}", headers)
            == 201);
    s_fake_fini (&fake);
    free (pad2);
    free (pad3);
    if (s_verbose)
        printf (" * bus_api: %d changes per token, the next 429\n",
                S_CHANGE_BURST);
}

//  Every route that changes something but is not an order takes from
//  its token's bucket; orders do not.  Each route gets a token of its
//  own (minted a few ms apart: a token's bucket is its claims, expiry
//  included).
static void
s_test_change_routes (bus_req_router_t *router, const char *secret_file)
{
    struct {
        const char *method, *target, *body;
        bus_token_role_t role;
        const char *table;
        bool limited;
    } routes[] = {
        { "POST", "/api/v1/menu/items/burger/availability",
          "{\"available\": true}", BUS_TOKEN_KITCHEN, "", true },
        { "POST", "/api/v1/orders/1/status", "{\"status\": \"accepted\"}",
          BUS_TOKEN_MANAGER, "", true },
        { "DELETE", "/api/v1/tables/T4/cart", NULL, BUS_TOKEN_PAD, "T4", true },
        { "POST", "/api/v1/tables/T5/cart/items",
          "{\"item_id\": \"burger\", \"quantity\": 1}", BUS_TOKEN_PAD, "T5",
          true },
        { "PATCH", "/api/v1/tables/T6/cart/items/1", "{\"quantity\": 2}",
          BUS_TOKEN_PAD, "T6", true },
        { "DELETE", "/api/v1/tables/T7/cart/items/1", NULL, BUS_TOKEN_PAD, "T7",
          true },
        { "POST", "/api/v1/orders", NULL, BUS_TOKEN_PAD, "T8", false },
    };
    const char *order = "{\"table\": \"T8\", \"items\": "
                        "[{\"item_id\": \"soup\", \"quantity\": 1}]}";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        zclock_sleep (2);
        char *token = s_token (secret_file, routes[i].role, routes[i].table);
        char auth[700], key[48];
        snprintf (auth, sizeof auth, "Bearer %s", token);
        const char *headers[] = { "Authorization",
                                  auth,
                                  "Content-Type",
                                  "application/json",
                                  "Idempotency-Key",
                                  key,
                                  NULL };
        int last = 0;
        for (int n = 0; n <= S_CHANGE_BURST; n++) {
            snprintf (key, sizeof key, "route-%zu-%d", i, n);
            s_fake_t fake;
            last = s_call (router, &fake, routes[i].method, routes[i].target,
                           false, routes[i].body ? routes[i].body : order,
                           headers);
            s_fake_fini (&fake);
            assert (n == S_CHANGE_BURST || last != 429);
        }
        if ((last == 429) != routes[i].limited)
            fprintf (stderr, "bus_api_test: %s %s: %d after %d changes\n",
                     routes[i].method, routes[i].target, last,
                     S_CHANGE_BURST + 1);
        assert ((last == 429) == routes[i].limited);
        free (token);
    }
}

void
bus_api_test (bool verbose)
{
    s_verbose = verbose;
    s_test_query ();
    s_test_match ();

    char dir[] = "/tmp/orderbus-api-test-XXXXXX";
    assert (mkdtemp (dir));
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_UP, ORDERBUS_SHARE_DIR);
    snprintf (config.data_dir, sizeof config.data_dir, "%s/data", dir);
    snprintf (config.secret_file, sizeof config.secret_file, "%s/secret", dir);
    snprintf (config.intake, sizeof config.intake, "inproc://api-test-intake");
    snprintf (config.events, sizeof config.events, "inproc://api-test-events");
    snprintf (config.sync, sizeof config.sync, "inproc://api-test-sync");
    snprintf (config.name, sizeof config.name, "api-test");
    config.table_burst = 100;
    config.changes_per_s = 1;
    config.change_burst = S_CHANGE_BURST;
    char err[512];
    assert (bus_secret_create (config.secret_file, err, sizeof err) == 0);
    bus_writer_t *writer = bus_writer_new (&config, err, sizeof err);
    if (!writer)
        fprintf (stderr, "bus_api_test: %s\n", err);
    assert (writer);
    bus_gateway_t *gateway = bus_gateway_new (&config, err, sizeof err);
    assert (gateway);
    //  The gateway takes commands once it has heard the writer
    bool ok = false;
    for (int64_t end = zclock_mono () + S_WAIT_MS; !ok && zclock_mono () < end;
         zclock_sleep (ok ? 0 : 20))
        json_decref (bus_gateway_health (gateway, &ok));
    assert (ok);
    bus_auth_t *auth =
        bus_auth_new (config.site, config.secret_file, err, sizeof err);
    assert (auth);
    bus_req_router_t *router = bus_req_router_new (NULL, NULL);
    assert (router);
    bus_api_t *api = bus_api_new (&gateway, auth, router);
    bus_compat_t *compat = bus_compat_new (&gateway, auth, router);
    assert (api && compat);

    s_test_routes (router, config.secret_file, verbose);
    s_test_changes (router, config.secret_file);
    s_test_change_routes (router, config.secret_file);

    bus_gateway_destroy (&gateway);
    bus_compat_destroy (&compat);
    bus_api_destroy (&api);
    bus_req_router_destroy (&router);
    bus_auth_destroy (&auth);
    bus_writer_destroy (&writer);
    zdir_t *tree = zdir_new (dir, NULL);
    assert (tree);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
}
