/*  bus_http.h — the civetweb server: the edge's, and `orderbus up`'s,
    which serves the gateway's routes (bus_req.h) beside the edge.

    bus_http.c is bus_req's civetweb adapter, and the only file that
    serves bus_req routes through civetweb's calls: a thread per
    connection, so every route runs on the thread that took its request,
    those that block too (bus_req_may_block is always true here).  */

#ifndef BUS_HTTP_H_INCLUDED
#define BUS_HTTP_H_INCLUDED

#include "orderbus/bus_config.h"
#include "orderbus/bus_http_ws.h"
#include "orderbus/bus_req.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  The server, opaque: civetweb's types stay in bus_http.c.  */
typedef struct _bus_http_t bus_http_t;

/*  Start a civetweb server for an edge (or up) on config's listen
    address, port and thread count, on TLS only if config->tls_cert is
    set (with config->tls_key, checked by bus_tls_check): static files under config->web_root
    are served, and config->max_clients more threads are started for the
    WebSockets.  Returns the server, or NULL with the reason in
    err[err_cap] (e.g. the port is in use).  */
bus_http_t *bus_http_start (const bus_config_t *config, char *err,
                            size_t err_cap);

/*  Make civetweb able to speak TLS in this process: load the OpenSSL
    shims it needs (bus_http.c says why) from shim_dir, or when that is
    NULL or "" from the program's directory's tls-shim/ or else where
    the build put them, and start civetweb's TLS.  Once per process;
    later calls return the first one's success at once.  0, or -1 with
    err set naming the shim and tls/shim_dir.  bus_http_start calls it
    for a server with tls/cert; a civetweb client (the test kit's) must
    call it before its first TLS connection.  */
int bus_http_tls_init (const char *shim_dir, char *err, size_t err_cap);

/*  Stop the server and wait for its threads.  NULL-safe; nulls *self_p.  */
void bus_http_stop (bus_http_t **self_p);

/*  The routes self serves (bus_req.h; owned by self, gone at
    bus_http_stop): bus_api, bus_compat and /healthz add theirs.  Each
    request is served on its civetweb thread, which waits for an answer
    left for later.  */
bus_req_router_t *bus_http_router (bus_http_t *self);

/*  The edge's endpoints go on self through this (bus_http_ws.h); the
    WebSockets' sockets are found and claimed behind it.  */
bus_http_ws_router_t bus_http_ws_router (bus_http_t *self);

#ifdef __cplusplus
}
#endif
#endif
