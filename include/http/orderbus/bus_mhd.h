/*  bus_mhd.h — every node's HTTP server but the writer's: libmicrohttpd,
    event-driven.  An edge's (or up's) also serves its WebSockets, pages
    and files (bus_mhd_site.c, bus_mhd_ws.c).

    A thread per connection (civetweb's model) puts each order's thread
    to sleep twice, once for the next request and once for the ack; on a
    small box those switches were most of a gateway's CPU (bench/notes.md,
    section 1).  Here a few event threads serve every connection: a route
    that never blocks (an order: parse, check, send) runs on the event
    thread, the connection is suspended until the writer's ack answers it,
    and a route declared to block (bus_req_route_t.blocks: a query) runs
    on a pool of http/threads threads.  Routes are bus_req.h routes, the
    same ones `orderbus up` serves, matched by bus_req's rule; bus_mhd.c
    is bus_req's libmicrohttpd adapter, and it and its two companions
    are the only files that use libmicrohttpd.  */

#ifndef BUS_MHD_H_INCLUDED
#define BUS_MHD_H_INCLUDED

#include "orderbus/bus_config.h"
#include "orderbus/bus_http_ws.h"
#include "orderbus/bus_req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_mhd_t bus_mhd_t;

/*  A server for config's listen address and port, http/threads pool
    threads and http/event_threads event threads; it takes no connection
    until bus_mhd_start.  NULL if out of memory.  */
bus_mhd_t *bus_mhd_new (const bus_config_t *config);

/*  The routes the server serves (owned by it): add them before
    bus_mhd_start.  */
bus_req_router_t *bus_mhd_router (bus_mhd_t *self);

/*  Where an edge puts its WebSockets, pages and redirects (bus_http_ws.h),
    before bus_mhd_start; a server made for an edge or up only.  */
bus_http_ws_router_t bus_mhd_ws_router (bus_mhd_t *self);

/*  Listen and serve.  0, or -1 with the reason in err[err_cap] (e.g. the
    port is in use).  */
int bus_mhd_start (bus_mhd_t *self, char *err, size_t err_cap);

/*  Stop taking connections, end the WebSockets, answer new requests on
    open ones 503, wait for the answers still to come (at most wait_ms),
    then stop.  True when stopped; false when a request or a WebSocket
    thread was still at work: the server is then left running, and
    nothing its handlers use (the gateway, the edge) may be freed.
    NULL-safe; nulls *self_p.  */
bool bus_mhd_destroy (bus_mhd_t **self_p, int wait_ms);

#ifdef __cplusplus
}
#endif
#endif
