/*  bus_api.h — the native HTTP/JSON API, under /api/v1/ (docs/api.md).

    Routes (a '*' is one path segment):
      GET    menu                         the menu, with an ETag
      POST   menu/items/ * /availability  86 an item, or bring it back
      GET    orders                       list: status, table, time range,
                                          cursor pages, newest first
      POST   orders                       place an order: 201 when durable
      GET    orders/ *                    one order
      POST   orders/ * /status            move it along its lifecycle
      GET    tables/ *                    a table's open orders and cart
      GET    tables/ * /cart              its cart
      DELETE tables/ * /cart              empty the cart
      POST   tables/ * /cart/items        add a line to the cart
      PATCH  tables/ * /cart/items/ *     change a line's quantity
      DELETE tables/ * /cart/items/ *     remove a line
      POST   tables/ * /cart/order        order what is in the cart
      GET    stats                        counters
      GET    report                       the report of ?from=&to= (manager)
    and GET /api/openapi.json, the API's OpenAPI 3 description (public).
    Any other path under /api is a 404, a known path with another method
    a 405 with Allow.  Every command carries an Idempotency-Key header.
    Access (docs/auth.md): a pad token may read the menu and use its own
    table's cart and orders; status changes, 86-ing and stats need a
    kitchen or manager token.  Missing, invalid or expired token: 401;
    wrong table or role: 403; a table placing orders faster than
    limits/table_rate_per_s (bursts of limits/table_burst): 429 with
    Retry-After.  */

#ifndef BUS_API_H_INCLUDED
#define BUS_API_H_INCLUDED

#include "orderbus/bus_auth.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_api_t bus_api_t;

/*  Add the routes to router (bus_req.h; before bus_compat's), with
    callers checked by auth and each request served by its token's site's
    gateway: gateways[i] serves auth's site i (bus_auth_site_name), one
    for each site (all borrowed: stop the server before destroying any).
    NULL if out of memory.  */
bus_api_t *bus_api_new (bus_gateway_t **gateways, bus_auth_t *auth,
                        bus_req_router_t *router);

/*  NULL-safe; nulls *self_p.  */
void bus_api_destroy (bus_api_t **self_p);

/*  Selftest (bus_api_test.c): bus_req's query decoding and route
    matching, and the API's and seed routes driven in-process through a
    fake server, with a real writer and gateway behind them.  */
void bus_api_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
