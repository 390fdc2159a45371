/*  bus_http.h — the civetweb server shared by the gateway and the edge,
    and the few helpers every handler uses to read and answer requests.  */

#ifndef BUS_HTTP_H_INCLUDED
#define BUS_HTTP_H_INCLUDED

#include <civetweb.h>
#include <jansson.h>
#include "orderbus/bus_config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_HTTP_BODY_MAX (64 * 1024)  /* larger request bodies get 413 */

/*  Start a civetweb server on config's listen address, port and thread
    count.  When it serves an edge, static files under config->web_root
    are served and config->max_clients more threads are started for the
    WebSockets.  Returns the context, or NULL with the reason in
    err[err_cap] (e.g. the port is in use).  */
struct mg_context *bus_http_start (const bus_config_t *config, bool edge,
                                   char *err, size_t err_cap);

/*  Stop the server and wait for its threads.  NULL-safe; nulls *ctx_p.  */
void bus_http_stop (struct mg_context **ctx_p);

/*  Send a complete JSON response, in one write (reals with 15 digits).
    body is borrowed; extra_headers is NULL or CRLF-terminated header
    lines (under ~400 bytes; longer ones are logged and left out).
    Returns the status code, which is what civetweb handlers return.  */
int bus_http_send_json (struct mg_connection *conn, int status,
                        const json_t *body, const char *extra_headers);

/*  Writes a response body into buf[cap] and returns its length; a length
    over cap means "call me again with that much room" (as json_dumpb).  */
typedef size_t (bus_http_body_fn) (const void *arg, char *buf, size_t cap);

/*  Send a complete JSON response whose body body_fn (arg, ...) makes, in
    one write, as bus_http_send_json.  */
int bus_http_send_body (struct mg_connection *conn, int status,
                        bus_http_body_fn *body_fn, const void *arg,
                        const char *extra_headers);

/*  Send {"error": {"code", "message", "field"}} with the given status. */
int bus_http_send_error (struct mg_connection *conn, int status,
                         const char *code, const char *message,
                         const char *field);

/*  Read the request body (at most max bytes).  Returns 0 and a new
    NUL-terminated buffer in *body (caller frees) with its length, or
    BUS_ERR_TOO_BIG (Content-Length or the data exceed max) or
    BUS_ERR_MALFORMED (body ended early).  */
int bus_http_read_body (struct mg_connection *conn, size_t max,
                        char **body, size_t *len);

/*  True if the request's Content-Type is application/json (parameters
    such as charset allowed).  */
bool bus_http_is_json (struct mg_connection *conn);

/*  Query parameter name of the request into buf[cap].  Returns its length,
    -1 if absent, -2 if it does not fit.  */
int bus_http_query (struct mg_connection *conn, const char *name,
                    char *buf, size_t cap);

/*  Check that every query parameter's name is in allowed (a NULL-ended
    list).  0, or -1 with the first unknown name in bad[bad_cap].  */
int bus_http_query_check (struct mg_connection *conn,
                          const char *const *allowed, char *bad,
                          size_t bad_cap);

/*  The socket of server connection conn, found by its two ends (civetweb
    does not hand it out), or -1.  The edge writes WebSocket frames to it
    and, to hang up on a browser, shuts it down: a blocked write fails, the
    connection's reader sees the end, and civetweb closes it as usual.
    The socket stays claimed, and skipped by later searches, until
    bus_http_socket_release: call that before the connection is closed
    (in its close handler).  */
int bus_http_socket (const struct mg_connection *conn);

/*  Give back a socket bus_http_socket found.  -1 is ignored.  */
void bus_http_socket_release (int fd);

/*  Parse an unsigned decimal (full string, no sign) into *value, which
    must be in [min, max].  0 or -1.  */
int bus_http_parse_u64 (const char *text, uint64_t min, uint64_t max,
                        uint64_t *value);

#ifdef __cplusplus
}
#endif
#endif
