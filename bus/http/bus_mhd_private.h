/*  bus_mhd_private.h — the pieces of the libmicrohttpd server, between
    its three files, which alone include this:

      bus_mhd.c       requests: bus_req routes, the pool, the sweeper
      bus_mhd_site.c  what an edge (or up) serves beside routes: its
                      WebSocket endpoints, pages, redirects, static files
      bus_mhd_ws.c    WebSocket connections: the handshake, a thread per
                      connection reading the browser's frames, pings

    All three run the requests' parts on libmicrohttpd's event threads;
    a WebSocket, once upgraded, is its own thread's (bus_http_ws.h).  */

#ifndef BUS_MHD_PRIVATE_H_INCLUDED
#define BUS_MHD_PRIVATE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <microhttpd.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_http_ws.h"
#include "orderbus/bus_req.h"

//  ---------------------------------------------------------------------
//  The site (bus_mhd_site.c)

typedef struct _bus_mhd_site_t bus_mhd_site_t;

/*  A site for config's web root and WebSocket settings: nothing on it
    until the edge puts its endpoints there.  NULL if out of memory.  */
bus_mhd_site_t *bus_mhd_site_new (const bus_config_t *config);

/*  After bus_mhd_site_stop.  NULL-safe; nulls *self_p.  */
void bus_mhd_site_destroy (bus_mhd_site_t **self_p);

/*  Where the edge puts its endpoints (before the server starts).  */
bus_http_ws_router_t bus_mhd_site_router (bus_mhd_site_t *self);

//  What the site did with a request
#define BUS_MHD_SITE_NONE     0   //  not the site's
#define BUS_MHD_SITE_RESPONSE 1   //  *response and *status are its answer
#define BUS_MHD_SITE_ANSWERED 2   //  answered through bus_req (req->server)

/*  req (on conn, its headers in, of HTTP version) if it is one of the
    endpoints put on the site: a WebSocket upgrade (101, or its connect
    hook's refusal), a page or a redirect.  On an event thread.  A 101
    sets *pending to the WebSocket's number, to be given to
    bus_mhd_site_abandon when the request ends.  */
int bus_mhd_site_endpoint (bus_mhd_site_t *self, struct MHD_Connection *conn,
                           bus_req_t *req, const char *version,
                           struct MHD_Response **response, unsigned *status,
                           uint64_t *pending);

/*  The request that answered WebSocket `pending` 101 has ended: if its
    upgrade never happened (the browser left first, libmicrohttpd
    refused it), the WebSocket is freed.  0 is ignored.  */
void bus_mhd_site_abandon (bus_mhd_site_t *self, uint64_t pending);

/*  req if it is a GET or HEAD of a file under the web root.  */
int bus_mhd_site_file (bus_mhd_site_t *self, struct MHD_Connection *conn,
                       bus_req_t *req, struct MHD_Response **response,
                       unsigned *status);

/*  End every WebSocket (a close frame 1001 if its socket takes it, then
    a hang-up; their close hooks run) and wait for their threads, at most
    wait_ms.  New upgrades are refused from now on.  False if a thread
    is still running: then nothing it uses may be freed (the daemon, the
    edge).  */
bool bus_mhd_site_stop (bus_mhd_site_t *self, int wait_ms);

//  ---------------------------------------------------------------------
//  WebSocket connections (bus_mhd_ws.c)

typedef struct _bus_mhd_ws_hub_t bus_mhd_ws_hub_t;

/*  The connections of one server, pinged every ws_ping_ms of silence.
    NULL if out of memory.  */
bus_mhd_ws_hub_t *bus_mhd_ws_hub_new (const bus_config_t *config);

/*  After bus_mhd_ws_hub_stop.  NULL-safe; nulls *self_p.  */
void bus_mhd_ws_hub_destroy (bus_mhd_ws_hub_t **self_p);

/*  Check req's handshake (RFC 6455 4.2.1) and answer it: BUS_MHD_SITE_
    RESPONSE with the 101 that hands conn to handler once sent (and the
    WebSocket's number in *pending), or BUS_MHD_SITE_ANSWERED with the
    refusal (400, 426, 503, or the connect hook's).  */
int bus_mhd_ws_upgrade (bus_mhd_ws_hub_t *self, struct MHD_Connection *conn,
                        bus_req_t *req, const char *version,
                        const bus_http_ws_handler_t *handler,
                        struct MHD_Response **response, unsigned *status,
                        uint64_t *pending);

/*  As bus_mhd_site_abandon.  */
void bus_mhd_ws_abandon (bus_mhd_ws_hub_t *self, uint64_t pending);

/*  As bus_mhd_site_stop.  */
bool bus_mhd_ws_hub_stop (bus_mhd_ws_hub_t *self, int wait_ms);

#endif
