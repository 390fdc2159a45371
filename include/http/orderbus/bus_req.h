/*  bus_req.h — one HTTP request and its answer, whichever server took it.

    The gateway's routes (bus_api, bus_compat, /healthz) are written
    against this, and see nothing else: libmicrohttpd serves them in a
    gateway node and in `orderbus up` (bus_mhd.c, event-driven; it is the
    only place that server's types and calls appear), a fake server in
    unit_api; query decoding, route matching and where a route may run
    are here, once.

    A handler reads the request and answers it exactly once, either
    before it returns or later from any thread: a gateway answers an
    order from the writer's ack on its listener thread, so no thread
    sleeps while the order is committed.  The request may be gone as soon
    as it is answered: nothing may touch it after.  */

#ifndef BUS_REQ_H_INCLUDED
#define BUS_REQ_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_REQ_BODY_MAX (64 * 1024) /* larger request bodies get 413 */

typedef struct _bus_req_t bus_req_t;

/*  A route's handler.  Returns the status it answered with, or 0 when
    the answer comes later (bus_req_defer, or an ack).  */
typedef int (bus_req_fn) (bus_req_t *req, void *arg);

/*  Writes a response body into buf[cap] and returns its length; a length
    over cap means "call me again with that much room" (as json_dumpb).  */
typedef size_t (bus_req_body_fn) (const void *arg, char *buf, size_t cap);

/*  ---------------------------------------------------------------------
    Reading the request (on the thread running the handler)  */

const char *bus_req_method (const bus_req_t *self);

/*  The path, percent-decoded, without the query string.  */
const char *bus_req_path (const bus_req_t *self);

/*  A header's value, or NULL.  Names are case-insensitive.  */
const char *bus_req_header (bus_req_t *self, const char *name);

/*  True if the Content-Type is application/json (parameters such as
    charset allowed).  */
bool bus_req_is_json (bus_req_t *self);

/*  The body (at most max bytes).  Returns 0 and a new NUL-terminated
    buffer in *body (caller frees) with its length, or BUS_ERR_TOO_BIG
    (Content-Length or the data exceed max), BUS_ERR_MALFORMED (the body
    ended early) or BUS_ERR_NOMEM.  Once per request.  */
int bus_req_body (bus_req_t *self, size_t max, char **body, size_t *len);

/*  Query parameter name's first value, decoded, into buf[cap] (always
    NUL-terminated when cap > 0).  Returns its length, -1 if absent, -2 if
    it does not fit.  The rules are civetweb's (what the routes used before
    bus_req had its own), kept byte for byte whichever server took the
    request: parameters are split at '&'
    only; a name matches case-insensitively and undecoded, and only when
    followed by '='; the value runs to the next '&'; "%hh" (two hex
    digits, either case) is that byte, '+' is a space; a malformed escape
    ('%' not followed by two hex digits, as in "%zz" or a trailing "%4")
    is kept as it is, not refused.  */
int bus_req_query (bus_req_t *self, const char *name, char *buf, size_t cap);

/*  Check that every query parameter's name is in allowed (a NULL-ended
    list), as written (undecoded, case-sensitive).  0, or -1 with the
    first unknown name in bad[bad_cap].  */
int bus_req_query_check (bus_req_t *self, const char *const *allowed, char *bad,
                         size_t bad_cap);

/*  ---------------------------------------------------------------------
    Answering (exactly once, from any thread)  */

/*  Answer with a JSON body body_fn (arg, ...) writes.  extra_headers is
    NULL or CRLF-terminated header lines (at most 352 bytes; longer ones
    are logged and left out).  Returns status.  */
int bus_req_send_body (bus_req_t *self, int status, bus_req_body_fn *body_fn,
                       const void *arg, const char *extra_headers);

/*  Answer with body (borrowed) as JSON, reals with 15 digits.  */
int bus_req_send_json (bus_req_t *self, int status, const json_t *body,
                       const char *extra_headers);

/*  Answer {"error": {"code", "message", "field"}}.  */
int bus_req_send_error (bus_req_t *self, int status, const char *code,
                        const char *message, const char *field);

/*  Answer 503 {"error": {"code", "message"}} with Retry-After: 1, for a
    client that should try again shortly.  */
int bus_req_send_busy (bus_req_t *self, const char *code, const char *message);

/*  ---------------------------------------------------------------------
    Blocking work

    The rule: a handler may block (wait for the writer) only when
    bus_req_may_block says so.  libmicrohttpd runs a handler on its event
    thread, where waiting would hold up every other connection, unless
    the route was declared to block (bus_req_route_t.blocks): then it
    runs on the server's pool.  A handler that blocks only sometimes
    (a command that may have to fetch the menu first) is declared not to
    block and hands that part to bus_req_defer.  */

/*  May the handler block (wait for the writer's reply to a query)?  */
bool bus_req_may_block (const bus_req_t *self);

/*  Have fn (self, arg) run where it may block (at once, where the
    handler already may) and answer from there: returns 0.  If the server
    has too many such requests waiting, it answers 503 "overloaded" and
    returns 503: fn does not run, and arg stays the caller's.  */
int bus_req_defer (bus_req_t *self, bus_req_fn *fn, void *arg);

/*  The handler's own pointer, kept with the request until it answers
    (for an answer made later, on another thread).  */
void bus_req_set_data (bus_req_t *self, void *data);
void *bus_req_data (const bus_req_t *self);

/*  Parse an unsigned decimal (full string, no sign) into *value, which
    must be in [min, max].  0 or -1.  */
int bus_req_parse_u64 (const char *text, uint64_t min, uint64_t max,
                       uint64_t *value);

/*  ---------------------------------------------------------------------
    Routes

    A route is declared with the method it serves (NULL: any), its uri,
    whether it blocks, and its handler:
      "/x"        serves /x and every path under it, /x/...
      "/x$"       serves /x only
    and in either a '*' segment stands for any one non-empty segment
    ("/api/v1/orders/ * /status$", without the spaces).
    The one matching rule, for every server: among the routes whose
    method fits, the first added that matches the whole path (a "/x"
    equal to it, or a "/x$" uri), else the first added "/x" the path
    continues with '/'.  No route: 404 not_found.
    Why this rule: it gives every answer `orderbus up` gave when civetweb
    matched its own handlers, and is simpler to state.  civetweb tries
    plain paths equal to the path, then plain prefixes, and only then
    "$" and '*' patterns, each in the order added; for today's routes
    that is the same choice (unit_api checks each route's path).
    "Longest prefix wins" would not be: with --compat on,
    /api/orders/5 is the native API's 404 (its "/api" is added before the
    seed "/api/orders"), and it would become the seed list's answer.
    Whole-path matches go before prefixes, so a declared route is never
    shadowed by a catch-all added before it ("/api" before
    "/api/v1/orders$").  Order of adding therefore matters between
    prefixes only: put a catch-all before the narrower prefixes it must
    win over, and after nothing it must lose to.  */

typedef struct {
    const char *method; /*  "GET", ...; NULL: any method  */
    const char *uri;    /*  as above, under 96 bytes  */
    bool blocks;        /*  waits for the writer: run where it may block  */
    bus_req_fn *fn;
    void *arg;
} bus_req_route_t;

/*  The routes a server serves.  The server makes it; routes are added
    before the server takes requests for them, and never removed.  */
typedef struct _bus_req_router_t bus_req_router_t;

/*  Add route (copied).  0, or -1 if the router is full (64 routes) or the
    uri is too long (logged).  Adds must not run concurrently; finds may
    run while one is made.  */
int bus_req_router_add (bus_req_router_t *self, const bus_req_route_t *route);

/*  ---------------------------------------------------------------------
    For the servers (their adapters: bus_mhd.c, unit_api's fake one)  */

/*  A router; added (server, uri), if not NULL, is called after each add,
    so that a server that dispatches by uri itself can send the
    route's requests to bus_req_router_serve.  NULL if out of memory.  */
bus_req_router_t *bus_req_router_new (void (*added) (void *server,
                                                     const char *uri),
                                      void *server);

/*  Compare paths ignoring ASCII case from now on, as civetweb did:
    `orderbus up`, first served by civetweb, has always answered /HEALTHZ
    as /healthz, and keeps that; a gateway never did.  Call before the
    first add.  */
void bus_req_router_ignore_case (bus_req_router_t *self);

/*  NULL-safe; nulls *self_p.  Only once no request can reach it.  */
void bus_req_router_destroy (bus_req_router_t **self_p);

/*  The route for method and path by the rule above, or NULL.  */
const bus_req_route_t *bus_req_router_find (const bus_req_router_t *self,
                                            const char *method,
                                            const char *path);

/*  Serve req by its route: 404 not_found if there is none; a route that
    blocks, on a request that may not, goes to bus_req_defer; any other
    runs here.  Returns the status answered, or 0 if the answer comes
    later.  */
int bus_req_router_serve (const bus_req_router_t *self, bus_req_t *req);

/*  What a request needs from the server that took it.  */
typedef struct {
    const char *(*header) (bus_req_t *req, const char *name);
    int (*body) (bus_req_t *req, size_t max, char **body, size_t *len);
    /*  Send the answer.  body[len] has BUS_REQ_HEAD_MAX bytes of room in
        front of it the server may use (to put the head there).  */
    void (*answer) (bus_req_t *req, int status, const char *headers, char *body,
                    size_t len);
    /*  Run fn where it may block; 0, or -1 if too many wait already.  */
    int (*defer) (bus_req_t *req, bus_req_fn *fn, void *arg);
} bus_req_server_t;

#define BUS_REQ_HEAD_MAX 1024

/*  What every answer of every server carries, API answers, pages and
    static files alike (docs/security.md, "Security headers"): pages run
    only the scripts and styles they load from their own origin (none
    inline), reach only it (its WebSocket too: CSP 3's 'self' covers ws:
    and wss: on the page's host), and are never framed; no answer is
    sniffed as another type; no URL (a token in a query) leaks to another
    site as a referrer.  */
#define BUS_REQ_SECURITY_HEADERS                                       \
    "X-Content-Type-Options: nosniff\r\n"                              \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; " \
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "     \
    "object-src 'none'; base-uri 'none'; form-action 'self'; "         \
    "frame-ancestors 'none'\r\n"                                       \
    "X-Frame-Options: DENY\r\n"                                        \
    "Referrer-Policy: no-referrer\r\n"

/*  ...and, on a server speaking TLS only: browsers that saw it once use
    https for a year, so a guest's network cannot talk them down to
    http.  */
#define BUS_REQ_HSTS_HEADER "Strict-Transport-Security: max-age=31536000\r\n"

/*  Every server's request starts with this; the server fills it in.  */
struct _bus_req_t {
    const bus_req_server_t *server;
    const char *method;
    const char *path;
    const char *query; /*  raw, NULL if none  */
    bool may_block;
    void *data; /*  the handler's  */
};

#ifdef __cplusplus
}
#endif
#endif
