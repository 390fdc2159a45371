/*  bus_http.h — the civetweb server: the edge's, and `orderbus up`'s,
    which serves the gateway's routes (bus_req.h) beside the edge.

    bus_http.c is bus_req's civetweb adapter, and the only file that
    serves bus_req routes through civetweb's calls: a thread per
    connection, so every route runs on the thread that took its request,
    those that block too (bus_req_may_block is always true here).  */

#ifndef BUS_HTTP_H_INCLUDED
#define BUS_HTTP_H_INCLUDED

#include <pthread.h>
#include <semaphore.h>
#include <civetweb.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_http_ws.h"
#include "orderbus/bus_req.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  The server, as the rest of the tree holds it.  */
typedef struct mg_context bus_http_t;

/*  Start a civetweb server for an edge (or up) on config's listen
    address, port and thread count: static files under config->web_root
    are served, and config->max_clients more threads are started for the
    WebSockets.  Returns the context, or NULL with the reason in
    err[err_cap] (e.g. the port is in use).  */
struct mg_context *bus_http_start (const bus_config_t *config, char *err,
                                   size_t err_cap);

/*  Stop the server and wait for its threads.  NULL-safe; nulls *ctx_p.  */
void bus_http_stop (struct mg_context **ctx_p);

/*  A request civetweb took, as a bus_req_t (see bus_req.h), on the
    stack of the civetweb thread serving it.  */
typedef struct {
    bus_req_t req;               /*  first: a bus_http_req_t * is a bus_req_t *  */
    struct mg_connection *conn;
    pthread_t thread;            /*  civetweb's thread, which writes answers  */
    sem_t answered;              /*  posted by an answer made on another thread  */
    char *late;                  /*  that answer's text  */
    size_t late_len;
    bool written;                /*  answered on this thread: sent  */
    int status;
} bus_http_req_t;

/*  Wrap conn's request, for handlers civetweb calls directly (the edge's
    WebSocket checks): they answer on this thread, where the answer is
    written at once, and have nothing to release.  */
void bus_http_req_init (bus_http_req_t *self, struct mg_connection *conn);

/*  The routes ctx serves (bus_req.h; owned by ctx, gone at
    bus_http_stop): bus_api, bus_compat and /healthz add theirs.  Each
    request is served on its civetweb thread, which waits for an answer
    left for later.  */
bus_req_router_t *bus_http_router (struct mg_context *ctx);

/*  The edge's endpoints go on ctx through this (bus_http_ws.h); the
    WebSockets' sockets are found and claimed behind it.  */
bus_http_ws_router_t bus_http_ws_router (struct mg_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
