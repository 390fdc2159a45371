/*  bus_auth.h — who is asking: the token of an HTTP or WebSocket request,
    checked against the site's secret (bus_token.h).

    The token comes from "Authorization: Bearer <token>" or, for pages and
    WebSockets (a browser cannot set headers on those), "?token=<token>".
    Without a secret file the node runs open: every request counts as a
    manager's.  A gateway or edge does that only when started with
    --insecure-no-auth (bus_node.c refuses otherwise), and it is logged
    loudly at start; `orderbus up` always makes and uses a secret.  */

#ifndef BUS_AUTH_H_INCLUDED
#define BUS_AUTH_H_INCLUDED

#include "orderbus/bus_req.h"
#include "orderbus/bus_token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_auth_t bus_auth_t;

/*  Load the secret at secret_file ("" or NULL: run open).  NULL with the
    reason in err[err_cap] if the file cannot be read.  */
bus_auth_t *bus_auth_new (const char *secret_file, char *err, size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_auth_destroy (bus_auth_t **self_p);

/*  Does it run open (no secret: every request may do anything)?  */
bool bus_auth_is_open (const bus_auth_t *self);

/*  The claims of req's token: 0, or BUS_ERR_UNAUTHORIZED (missing or
    not ours) or BUS_ERR_EXPIRED.  */
int bus_auth_check (bus_auth_t *self, bus_req_t *req, bus_claims_t *claims);

/*  The claims of token (NULL: none given), a token found somewhere
    other than where bus_auth_check looks (a path prefix: bus_compat.h).
    0, or BUS_ERR_UNAUTHORIZED or BUS_ERR_EXPIRED, as bus_auth_check.  */
int bus_auth_verify (bus_auth_t *self, const char *token, bus_claims_t *claims);

/*  Send the 401 or 403 for rc (from bus_auth_check or a bus_token_allows_*)
    with a JSON body that says what to do.  Returns the status.  */
int bus_auth_refuse (bus_req_t *req, int rc, const char *why);

#ifdef __cplusplus
}
#endif
#endif
