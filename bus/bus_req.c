/*  bus_req.c — reading a request and answering it, for any server.  */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <civetweb.h>   //  mg_get_var: its query decoding, whoever serves
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_req.h"

//  Extra header lines longer than this are left out: the head, with the
//  status line and our own headers (under 160 bytes), must fit in
//  BUS_REQ_HEAD_MAX
#define S_EXTRA_MAX (BUS_REQ_HEAD_MAX - 160)

//  Reals (only the seed-compatible API has any) get 15 digits, so that a
//  price of 18.99 reads 18.99 and not 18.989999999999998
#define S_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION (15))

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

int
bus_req_query (bus_req_t *self, const char *name, char *buf, size_t cap)
{
    if (!self->query)
        return -1;
    return mg_get_var (self->query, strlen (self->query), name, buf, cap);
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
    return bus_req_send_busy (self, "overloaded", "too many requests are "
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
