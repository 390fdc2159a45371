/*  bus_gateway.h — the gateway role: the pads' HTTP/JSON API.

    Registers its handlers on a civetweb server it is given (its own, or
    the all-in-one's shared one):
      GET  /api/v1/menu          the writer's menu
      POST /api/v1/orders        place an order; 201 only after the
                                 writer's durable commit ack
      GET  /api/v1/orders        list, newest first, filters + cursor
      GET  /api/v1/orders/{id}   one order
      any other /api/...         404 with a JSON error body
    Orders are PUSHed to the writer's intake; acks come back on this
    gateway's own topic "A/<name>/" of the writer's PUB socket.  */

#ifndef BUS_GATEWAY_H_INCLUDED
#define BUS_GATEWAY_H_INCLUDED

#include <civetweb.h>
#include <jansson.h>
#include "orderbus/bus_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_gateway_t bus_gateway_t;

/*  Connect to the writer's endpoints in config and register the handlers
    on http (borrowed: it must outlive the gateway's handlers, so stop the
    server before destroying the gateway).  Returns the gateway or NULL
    with the reason in err[err_cap].  */
bus_gateway_t *bus_gateway_new (const bus_config_t *config,
                                struct mg_context *http, char *err,
                                size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_gateway_destroy (bus_gateway_t **self_p);

/*  New JSON object describing the gateway's link to the writer, for
    /healthz; *ok is set to whether the writer is reachable.  */
json_t *bus_gateway_health (bus_gateway_t *self, bool *ok);

#ifdef __cplusplus
}
#endif
#endif
