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

#define BUS_AUTH_SITES_MAX 256 /* sites one node serves (bus_sites.h) */

/*  Check tokens of site with the secret at secret_file ("" or NULL: run
    open, every request a manager's of that site).  NULL with the reason
    in err[err_cap] if the file cannot be read or site is not a site name.  */
bus_auth_t *bus_auth_new (const char *site, const char *secret_file, char *err,
                          size_t err_cap);

/*  Also serve site, its tokens checked with the secret at secret_file
    (required: an open node serves one site).  At most BUS_AUTH_SITES_MAX
    sites, each once.  0, or -1 with the reason (naming the site) in err.
    Before any request.  */
int bus_auth_add (bus_auth_t *self, const char *site, const char *secret_file,
                  char *err, size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_auth_destroy (bus_auth_t **self_p);

/*  Does it run open (no secret: every request may do anything)?  */
bool bus_auth_is_open (const bus_auth_t *self);

/*  The sites served, in the order added: how many, the name of one, and
    the index of site's name (-1: not served).  */
size_t bus_auth_site_count (const bus_auth_t *self);
const char *bus_auth_site_name (const bus_auth_t *self, size_t index);
int bus_auth_site_index (const bus_auth_t *self, const char *site);

/*  The claims of req's token, verified with the secret of the site it
    names: 0, or BUS_ERR_UNAUTHORIZED (missing or not signed by that
    site's secret), BUS_ERR_EXPIRED, or BUS_ERR_WRONG_SITE (a site not
    served; claims->site is then the site the token says, unverified,
    for bus_auth_why).  Any thread.  */
int bus_auth_check (bus_auth_t *self, bus_req_t *req, bus_claims_t *claims);

/*  The index of the site req's token names, read WITHOUT verifying it
    (bus_token_peek): only to route a request whose token was checked
    already (a WebSocket's hooks after its upgrade).  -1 if none.  */
int bus_auth_site_of (const bus_auth_t *self, bus_req_t *req);

/*  The claims of token (NULL: none given), a token found somewhere
    other than where bus_auth_check looks (a path prefix: bus_compat.h).
    Returns as bus_auth_check.  */
int bus_auth_verify (bus_auth_t *self, const char *token, bus_claims_t *claims);

/*  The words for a refusal of rc with claims (from bus_auth_check): for
    BUS_ERR_WRONG_SITE, which site the token is for and which this node
    serves, in buf[cap], returned; NULL for any other rc.  */
const char *bus_auth_why (const bus_auth_t *self, int rc,
                          const bus_claims_t *claims, char *buf, size_t cap);

/*  Send the 401 or 403 for rc (from bus_auth_check or a bus_token_allows_*)
    with a JSON body that says what to do.  Returns the status.  */
int bus_auth_refuse (bus_req_t *req, int rc, const char *why);

#ifdef __cplusplus
}
#endif
#endif
