/*  bus_compat.h — the HTTP routes of the systems orderbus replaces (the
    seed documents 000, 001 and 002), served beside the native /api/v1/
    so that their clients keep working unchanged (docs/compat.md).

    Routes, each in its seed's own request and response shapes:
      POST /api/order    seeds 000/002: {"table", "items": [{"name",
                         "quantity"}]} -> 201 with the order as
                         bus_compat_order shows it; errors as FastAPI
                         sends them, {"detail": [{"loc", "msg", "type"}]}
                         (422) or {"detail": "..."}
      GET  /api/orders   seeds 000/002: every order, newest first, a plain
                         JSON array of seed-shaped orders
      GET  /menu_items   seed 001: [{"id", "name", "price": dollars}] of
                         the available items; 500 {"error": "Fetch failed"}
      POST /orders       seed 001: {"table_number", "items":
                         [{"menu_item_id", "quantity"}], "version",
                         "order_id"} -> 201 {"order_id", "status":
                         "received"}; 400 {"error": "Invalid item"},
                         409 {"error": "Version conflict"}, 429
                         {"error": "Rate limit"} with Retry-After
    (/ws/orders, the seeds' WebSocket, is a feed the edge serves:
    bus_compat_ws.c, below.)

    Access: every route needs a token, as the native API does.  Clients
    that cannot send a header (the seeds' 000 and 002 had no tokens) get
    each route under a path prefix too, so that only their base URL
    changes: /compat/<token>/api/order, /compat/<token>/api/orders,
    /compat/<token>/menu_items, /compat/<token>/orders (and the edge's
    /compat/<token>/ws/orders).  Without a prefix the token is read where
    the native API reads it (Authorization: Bearer, or ?token=).  Roles
    as the native routes': POST /api/order and POST /orders a pad for its
    own table or staff, GET /menu_items any token, GET /api/orders and
    /ws/orders (every table's orders) a kitchen or manager token.  A
    missing, foreign or expired token is a 401, any other path under
    /compat/ with one too; a role too weak a 403, in the seed's shape.
    Rate limits: a pad's POST /api/order is limited per table as a native
    order is (limits/table_rate_per_s, limits/table_burst; staff are not);
    POST /orders per table_number whoever sends it (seed 001 did so); both
    in one bucket per table of this gateway's.  With compat/open_menu
    set, POST /api/order takes any dish name (a name on the menu is priced
    as that dish, any other becomes a free-text line at no price);
    without it, every name must be on the menu.  */

#ifndef BUS_COMPAT_H_INCLUDED
#define BUS_COMPAT_H_INCLUDED

#include "orderbus/bus_req.h"
#include "orderbus/bus_auth.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_gateway.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_compat_t bus_compat_t;

/*  Add the routes to router (bus_req.h), with callers checked by auth and
    each request served by its token's site's gateway: gateways[i] serves
    auth's site i, one for each site, as bus_api_new's (all borrowed: stop
    the server before destroying any of them).  Settings (open_menu,
    table_rate_per_s, table_burst) come from the first gateway's config
    (the node's).  NULL if out of memory.  */
bus_compat_t *bus_compat_new (bus_gateway_t **gateways, bus_auth_t *auth,
                              bus_req_router_t *router);

/*  NULL-safe; nulls *self_p.  */
void bus_compat_destroy (bus_compat_t **self_p);

/*  The claims of a seed-compatible request's token: the one in its path's
    /compat/<token>/ prefix if it has one, else where bus_auth_check
    looks.  0, or BUS_ERR_UNAUTHORIZED (missing, malformed, not ours) or
    BUS_ERR_EXPIRED.  */
int bus_compat_claims (bus_auth_t *auth, bus_req_t *req, bus_claims_t *claims);

/*  The index among auth's sites of the site such a request's token names,
    read WITHOUT verifying it (bus_auth_site_of): to hand the request to
    its site's part on a node of several, which then checks it.  -1 if
    there is no token or its site is not served.  */
int bus_compat_site (bus_auth_t *auth, bus_req_t *req);

/*  Selftest of the request readers (no sockets), the order shape and
    the WebSocket feed.  */
void bus_compat_test (bool verbose);

//  ---------------------------------------------------------------------
//  The seeds' order, and their WebSocket (bus_compat_ws.c)

/*  New JSON object for an order in the shape the seed systems (000, 002)
    used, for the seed-compatible routes and /ws/orders:
      {"id": 12, "table": "Table 1",
       "items": [{"name": "Burger", "quantity": 3}],
       "created_at": "2025-04-27T07:30:20"}      (UTC, seconds)
    Caller owns.  */
json_t *bus_compat_order (const bus_order_t *order);

/*  /ws/orders as the seeds served it, a feed of the edge's (bus_edge.h):
    {"type": "initial", "orders": [every order, newest first]} on
    connect, then {"type": "new_order", "order": {...}} for each order
    placed after those, nothing else; what the client sends is ignored.
    Also at /compat/<token>/ws/orders.  A kitchen or manager token is
    needed (bus_compat_claims): 401 or 403 before the handshake.  Static.  */
const bus_edge_feed_t *bus_compat_ws_feed (void);

/*  Selftest of the feed, with a fake writer (inproc); bus_compat_test
    runs it.  */
void bus_compat_ws_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
