/*  bus_req.c — reading a request and answering it, for any server.  */

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_req.h"

//  Extra header lines longer than this are left out: the head, with the
//  status line, our own headers (under 160 bytes) and the security
//  headers, must fit in BUS_REQ_HEAD_MAX
#define S_EXTRA_MAX 352
_Static_assert(S_EXTRA_MAX + 160 + sizeof BUS_REQ_SECURITY_HEADERS
                       + sizeof BUS_REQ_HSTS_HEADER
                   < BUS_REQ_HEAD_MAX,
               "BUS_REQ_HEAD_MAX has room for every header");

//  Reals (only the seed-compatible API has any) get 15 digits, so that a
//  price of 18.99 reads 18.99 and not 18.989999999999998
#define S_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION (15))

#define S_ROUTES_MAX 64
#define S_URI_MAX    96
#define S_METHOD_MAX 16

//  A route as added: its strings copied, its uri without the '$'
typedef struct {
    bus_req_route_t route;   //  method and uri point at the copies below
    char method[S_METHOD_MAX];
    char uri[S_URI_MAX];
    bool whole;   //  the uri ended in '$': no /... below it
} s_route_t;

struct _bus_req_router_t {
    s_route_t routes[S_ROUTES_MAX];   //  never moved: finds run during adds
    atomic_size_t count;              //  published after the route is written
    void (*added) (void *server, const char *uri);
    void *server;
    bool nocase;   //  paths compared ignoring ASCII case
};

const char *
bus_req_method (const bus_req_t *self)
{
    return self->method;
}

const char *
bus_req_path (const bus_req_t *self)
{
    return self->path;
}

const char *
bus_req_header (bus_req_t *self, const char *name)
{
    return self->server->header (self, name);
}

bool
bus_req_is_json (bus_req_t *self)
{
    const char *type = bus_req_header (self, "Content-Type");
    if (!type)
        return false;
    size_t n = strlen ("application/json");
    return strncasecmp (type, "application/json", n) == 0
           && (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

int
bus_req_body (bus_req_t *self, size_t max, char **body, size_t *len)
{
    return self->server->body (self, max, body, len);
}

//  One hex digit's value, or -1.  ASCII only, as civetweb's isxdigit is
//  in the C locale the process runs in.
static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Decode the form-encoded value[len] into buf[cap] (cap > 0).  Returns
//  the decoded length, or -2 if it does not fit; buf is NUL-terminated
//  either way.  An escape needs both digits inside the value: a trailing
//  "%4" or a "%zz" stays as written.
static int
s_decode (const char *value, size_t len, char *buf, size_t cap)
{
    size_t i = 0, j = 0;
    for (; i < len && j < cap - 1; i++, j++) {
        int high, low;
        if (value[i] == '%' && i + 2 < len && (high = s_hex (value[i + 1])) >= 0
            && (low = s_hex (value[i + 2])) >= 0) {
            buf[j] = (char) (high << 4 | low);
            i += 2;
        } else
            buf[j] = value[i] == '+' ? ' ' : value[i];
    }
    buf[j] = '\0';
    return i >= len ? (int) j : -2;
}

int
bus_req_query (bus_req_t *self, const char *name, char *buf, size_t cap)
{
    if (cap == 0)
        return -2;
    buf[0] = '\0';
    const char *query = self->query;
    size_t name_len = strlen (name);
    if (!query || !*query)
        return -1;
    //  The first parameter whose name (before '=') is name: at the start
    //  or after a '&', as civetweb looked for it
    const char *end = query + strlen (query);
    for (const char *p = query; p + name_len < end; p++)
        if ((p == query || p[-1] == '&') && p[name_len] == '='
            && strncasecmp (name, p, name_len) == 0) {
            const char *value = p + name_len + 1;
            size_t len = strcspn (value, "&");
            return s_decode (value, len, buf, cap);
        }
    return -1;
}

static bool
s_allowed (const char *name, size_t len, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strlen (*allowed) == len && memcmp (*allowed, name, len) == 0)
            return true;
    return false;
}

int
bus_req_query_check (bus_req_t *self, const char *const *allowed, char *bad,
                     size_t bad_cap)
{
    const char *query = self->query;
    while (query && *query) {
        size_t len = strcspn (query, "=&");
        if (!s_allowed (query, len, allowed)) {
            snprintf (bad, bad_cap, "%.*s", (int) len, query);
            return -1;
        }
        query += strcspn (query, "&");
        if (*query == '&')
            query++;
    }
    return 0;
}

int
bus_req_send_body (bus_req_t *self, int status, bus_req_body_fn *body_fn,
                   const void *arg, const char *extra_headers)
{
    if (extra_headers && strlen (extra_headers) > S_EXTRA_MAX) {
        zsys_error ("http: extra headers too long, not sent: %.60s",
                    extra_headers);
        extra_headers = NULL;
    }
    //  The body is written behind room for the head, so a server can put
    //  the head in front of it and send the response in one write with
    //  no copy of the body.  Most bodies fit on the stack.
    char stack[8192], *heap = NULL;
    char *text = stack + BUS_REQ_HEAD_MAX;
    size_t room = sizeof stack - BUS_REQ_HEAD_MAX;
    size_t len = body_fn (arg, text, room);
    if (len > room) {
        heap = malloc (BUS_REQ_HEAD_MAX + len);
        text = heap ? heap + BUS_REQ_HEAD_MAX : text;
        len = heap ? body_fn (arg, text, len) : 0;
    }
    self->server->answer (self, status, extra_headers ? extra_headers : "",
                          text, len);
    free (heap);
    return status;
}

static size_t
s_dump (const void *body, char *buf, size_t cap)
{
    return body ? json_dumpb ((const json_t *) body, buf, cap, S_DUMP_FLAGS)
                : 0;
}

int
bus_req_send_json (bus_req_t *self, int status, const json_t *body,
                   const char *extra_headers)
{
    return bus_req_send_body (self, status, s_dump, body, extra_headers);
}

int
bus_req_send_error (bus_req_t *self, int status, const char *code,
                    const char *message, const char *field)
{
    json_t *body = bus_json_error (code, message, field);
    bus_req_send_json (self, status, body, NULL);
    json_decref (body);
    return status;
}

int
bus_req_send_busy (bus_req_t *self, const char *code, const char *message)
{
    json_t *body = bus_json_error (code, message, NULL);
    bus_req_send_json (self, 503, body, "Retry-After: 1\r\n");
    json_decref (body);
    return 503;
}

bool
bus_req_may_block (const bus_req_t *self)
{
    return self->may_block;
}

int
bus_req_defer (bus_req_t *self, bus_req_fn *fn, void *arg)
{
    if (self->may_block) {
        fn (self, arg);
        return 0;
    }
    if (self->server->defer (self, fn, arg) == 0)
        return 0;
    return bus_req_send_busy (self, "overloaded",
                              "too many requests are "
                              "waiting for the writer; retry shortly");
}

void
bus_req_set_data (bus_req_t *self, void *data)
{
    self->data = data;
}

void *
bus_req_data (const bus_req_t *self)
{
    return self->data;
}

int
bus_req_parse_u64 (const char *text, uint64_t min, uint64_t max,
                   uint64_t *value)
{
    if (!text || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

//  ---------------------------------------------------------------------
//  Routes

bus_req_router_t *
bus_req_router_new (void (*added) (void *server, const char *uri), void *server)
{
    bus_req_router_t *self = calloc (1, sizeof *self);
    if (self) {
        self->added = added;
        self->server = server;
    }
    return self;
}

void
bus_req_router_ignore_case (bus_req_router_t *self)
{
    self->nocase = true;
}

void
bus_req_router_destroy (bus_req_router_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

int
bus_req_router_add (bus_req_router_t *self, const bus_req_route_t *route)
{
    size_t count = atomic_load_explicit (&self->count, memory_order_relaxed);
    size_t len = strlen (route->uri);
    if (count == S_ROUTES_MAX || len >= S_URI_MAX || len == 0
        || (route->method && strlen (route->method) >= S_METHOD_MAX)) {
        zsys_error ("http: cannot add route %s %s",
                    route->method ? route->method : "*", route->uri);
        return -1;
    }
    s_route_t *added = &self->routes[count];
    added->route = *route;
    added->whole = route->uri[len - 1] == '$';
    snprintf (added->uri, sizeof added->uri, "%.*s", (int) (len - added->whole),
              route->uri);
    added->route.uri = added->uri;
    if (route->method) {
        snprintf (added->method, sizeof added->method, "%s", route->method);
        added->route.method = added->method;
    }
    //  A find on a server thread sees the route only once it is written
    atomic_store_explicit (&self->count, count + 1, memory_order_release);
    if (self->added)
        self->added (self->server, route->uri);
    return 0;
}

//  How uri (without its '$') matches path: 2 the whole path, 1 a prefix
//  the path continues with '/', 0 not at all.  A '*' segment of the uri
//  takes one non-empty segment of the path.
static int
s_match (const char *uri, const char *path, bool nocase)
{
    char last = '\0';
    while (*uri) {
        if (last == '/' && uri[0] == '*' && (uri[1] == '/' || !uri[1])) {
            size_t len = strcspn (path, "/");
            if (len == 0)
                return 0;
            path += len;
        } else if (nocase ? tolower ((unsigned char) *uri)
                                != tolower ((unsigned char) *path)
                          : *uri != *path)
            return 0;
        else
            path++;
        last = *uri++;
    }
    return *path == '\0' ? 2 : *path == '/' ? 1 : 0;
}

const bus_req_route_t *
bus_req_router_find (const bus_req_router_t *self, const char *method,
                     const char *path)
{
    size_t count = atomic_load_explicit (&self->count, memory_order_acquire);
    const bus_req_route_t *prefix = NULL;
    for (size_t i = 0; i < count; i++) {
        const s_route_t *route = &self->routes[i];
        if (route->route.method && !streq (route->route.method, method))
            continue;
        int match = s_match (route->uri, path, self->nocase);
        if (match == 2)
            return &route->route;
        if (match == 1 && !route->whole && !prefix)
            prefix = &route->route;
    }
    return prefix;
}

int
bus_req_router_serve (const bus_req_router_t *self, bus_req_t *req)
{
    const bus_req_route_t *route =
        bus_req_router_find (self, req->method, req->path);
    if (!route)
        return bus_req_send_error (req, 404, "not_found",
                                   "no such route; see docs/api.md", NULL);
    if (route->blocks && !req->may_block)
        return bus_req_defer (req, route->fn, route->arg);
    return route->fn (req, route->arg);
}
