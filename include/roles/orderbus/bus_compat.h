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

    Access: POST /orders takes the token the native API takes (a pad for
    its table_number, or staff; none when the node has no secret) and is
    rate-limited per table_number, whoever sends it.  The seed 000/002
    routes and /menu_items take no token: those systems had none.  With
    compat/open_menu set, POST /api/order takes any dish name (a name on
    the menu is priced as that dish, any other becomes a free-text line at
    no price); without it, every name must be on the menu.  */

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

/*  Add the routes to router (bus_req.h), served by gateway, with callers
    of POST /orders checked by auth (all borrowed: stop the server before
    destroying any of them).  Settings (open_menu, table_rate_per_s,
    table_burst) come from the gateway's config.  NULL if out of memory.  */
bus_compat_t *bus_compat_new (bus_gateway_t *gateway, bus_auth_t *auth,
                              bus_req_router_t *router);

/*  NULL-safe; nulls *self_p.  */
void bus_compat_destroy (bus_compat_t **self_p);

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
    No token: those clients never had one (docs/compat.md).  Static.  */
const bus_edge_feed_t *bus_compat_ws_feed (void);

/*  Selftest of the feed, with a fake writer (inproc); bus_compat_test
    runs it.  */
void bus_compat_ws_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
