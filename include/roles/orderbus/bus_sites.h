/*  bus_sites.h — the sites a gateway or edge node serves, each on its own
    writer, and which part serves a request (docs/deployment.md).

    A node serves one site (site/name, "main" by default: the node's own
    endpoints, link/writer_key and auth/secret_file) or, with site/file,
    several: the file is ZPL with one section per site, named as the
    site, holding that site's writer and secret:

      bistro-a
          endpoints
              intake = tcp://10.0.1.5:5555   (a gateway's; an edge's may omit)
              events = tcp://10.0.1.5:5556
              sync = tcp://10.0.1.5:5557
          link
              writer_key = /etc/orderbus/bistro-a/writer.cert  (with link/cert)
          auth
              secret_file = /etc/orderbus/bistro-a/secret

    Every other setting (link/cert, http, gateway, edge, limits) is the
    node's and applies to every site.  At most BUS_AUTH_SITES_MAX sites.
    Each site gets its own gateway (its link, acks and menu copy) or edge
    (its state, ring, fan-out threads and browsers), and a token is
    verified with its own site's secret and served by its own site's part.

    Threads: bus_sites_new and the starts and destroy on the node's main
    thread; the lookups and the WebSocket hooks on any (read-only after
    the start).  */

#ifndef BUS_SITES_H_INCLUDED
#define BUS_SITES_H_INCLUDED

#include "orderbus/bus_auth.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_http_ws.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_sites_t bus_sites_t;

/*  Read config's sites (site/file, or the one site) and their secrets.
    NULL with the reason in err[err_cap], naming the file, the site and
    the key at fault.  Starts nothing.  */
bus_sites_t *bus_sites_new (const bus_config_t *config, char *err,
                            size_t err_cap);

/*  Destroys the edges, then the gateways, then the secrets (stop the HTTP
    server first).  NULL-safe; nulls *self_p.  */
void bus_sites_destroy (bus_sites_t **self_p);

/*  How many sites; the settings of site index (the node's, with the
    site's section applied: its site, endpoints, writer_key, secret).  */
size_t bus_sites_count (const bus_sites_t *self);
const bus_config_t *bus_sites_config (const bus_sites_t *self, size_t index);

/*  Who is asking, for every site: bus_auth_site_name (auth, i) is site i.  */
bus_auth_t *bus_sites_auth (bus_sites_t *self);

/*  Start a gateway per site.  0, or -1 with err naming the site (when
    there are several).  Then bus_sites_gateways is the array of them,
    site i's at [i] (for bus_api_new).  */
int bus_sites_start_gateways (bus_sites_t *self, char *err, size_t err_cap);
bus_gateway_t **bus_sites_gateways (bus_sites_t *self);

/*  Start an edge per site on http's server.  One site: its edge owns the
    endpoints, as a lone edge does.  Several: each WebSocket path is
    served by a dispatcher that checks the token and hands the browser to
    its site's edge (a feed's by its site hook); pages are served once.
    feed: as bus_edge_new.  0, or -1 with err.  */
int bus_sites_start_edges (bus_sites_t *self, bus_http_ws_router_t http,
                           const bus_edge_feed_t *feed, char *err,
                           size_t err_cap);

/*  GET /healthz of a node whose role is role_name.  One site: as ever,
    200 when its gateway and edge are linked to its writer, else 503 with
    the reason.  Several: a part per site under "sites", 200 while any
    site is served ("status" "ok" when all are, else "degraded" with the
    first failing site's reason), 503 when none is; ?site=NAME answers
    for that site alone (404 if not served).  For bus_req_router_add.  */
int bus_sites_health (bus_req_t *req, void *self);

/*  Selftest: the sites file, every refusal (bus_sites.c).  */
void bus_sites_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
