/*  bus_http_ws.h — a browser's WebSocket as the edge and the fan-out see
    it, without the HTTP server's own types.

    The server's adapter implements it: bus_http.c, for civetweb, the only
    file that knows civetweb.  The edge puts its endpoints on a server
    through a bus_http_ws_router_t the adapter makes (the way bus_req.h's
    router puts the API's routes), and is then called on its hooks with a
    bus_http_ws_t for each connection.

    Threads: the server serves each WebSocket on one thread of its own
    from connect to close, and calls every hook of that connection there.
    Other threads (the fan-out's senders) may write to its socket, under
    bus_http_ws_lock, until the close hook has returned.  */

#ifndef BUS_HTTP_WS_H_INCLUDED
#define BUS_HTTP_WS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "orderbus/bus_req.h"

#ifdef __cplusplus
extern "C" {
#endif

//  One WebSocket connection, from its handshake until its close hook
//  returns; the adapter owns it.
typedef struct _bus_http_ws_t bus_http_ws_t;

//  What an endpoint does with its connections.  Every hook runs on the
//  connection's own thread, and may block.
typedef struct {
    //  Before the handshake: 0 to go on with it, or non-zero once the
    //  hook has answered req itself (refused).  NULL: every one goes on.
    int (*connect) (bus_req_t *req, void *arg);
    //  After the handshake.
    void (*ready) (bus_http_ws_t *ws, void *arg);
    //  A message from the browser; opcode as RFC 6455 numbers it
    //  (BUS_WSFRAME_TEXT...).  A close frame ends the connection and is
    //  not passed on.  NULL: what browsers send is dropped.
    void (*data) (bus_http_ws_t *ws, int opcode, const char *data, size_t len,
                  void *arg);
    //  The connection is ending: after this returns, ws and its socket
    //  are gone.  Called for every connection ready was called for.
    void (*close) (bus_http_ws_t *ws, void *arg);
    void *arg;   //  passed to every hook
} bus_http_ws_handler_t;

//  Where the edge puts its endpoints, each for one exact path (never a
//  prefix: /kitchen.js must still reach the static files); a WebSocket's
//  path may hold '*' segments, each one non-empty segment of the
//  request's ("/compat/ * /ws/orders", without the spaces).  What is
//  passed by pointer is borrowed until the server stops.
typedef struct {
    //  WebSockets on path, served by handler.
    void (*websocket) (void *server, const char *path,
                       const bus_http_ws_handler_t *handler);
    //  The page root + path + ".html" (/kitchen: <root>/kitchen.html).
    void (*page) (void *server, const char *path, const char *root);
    //  A 302 redirect from path to location.
    void (*redirect) (void *server, const char *path, const char *location);
    void *server;   //  the server's own handle
} bus_http_ws_router_t;

/*  The upgrade request (its headers and query string), for reading on
    the connection's own thread; nothing can be answered on it any more.
    Valid until the close hook returns.  */
bus_req_t *bus_http_ws_request (bus_http_ws_t *self);

/*  The hooks' own pointer for this connection, NULL until set.  */
void bus_http_ws_set_user (bus_http_ws_t *self, void *user);
void *bus_http_ws_user (bus_http_ws_t *self);

/*  The connection's socket, or -1 if it cannot be found.  Anyone may
    write WebSocket frames to it, whole and under bus_http_ws_lock, until
    the close hook returns, unless it speaks TLS (bus_http_ws_tls); it is
    closed after that.  */
int bus_http_ws_socket (bus_http_ws_t *self);

/*  True if the connection speaks TLS: its socket then carries TLS
    records, and frames go through bus_http_ws_write, never to the
    socket itself (which is still for the room check and for shutdown).  */
bool bus_http_ws_tls (bus_http_ws_t *self);

/*  Write len bytes (whole frames) through the server, encrypted; under
    bus_http_ws_lock.  Blocks until all is written, or for as long as the
    server lets a write take (civetweb's request_timeout_ms).  0, or -1
    if the connection failed.  */
int bus_http_ws_write (bus_http_ws_t *self, const void *data, size_t len);

/*  Held around every write to the socket, so that frames the server
    writes itself (pings, pongs) never land inside another's.  Not
    recursive.  */
void bus_http_ws_lock (bus_http_ws_t *self);
void bus_http_ws_unlock (bus_http_ws_t *self);

/*  Send a close frame with code and reason (under the lock): the browser
    answers it and the connection ends, instead of staying open with
    nothing on it.  */
void bus_http_ws_close (bus_http_ws_t *self, int code, const char *reason);

/*  Shut the socket down: a write blocked on it fails, and the server's
    reader sees the end and closes the connection as usual (its close
    hook is still called).  */
void bus_http_ws_hang_up (bus_http_ws_t *self);

#ifdef __cplusplus
}
#endif
#endif
