/*  bus_auth.c — the token of a request.  */

#include <czmq.h>
#include "orderbus/bus_auth.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_req.h"

struct _bus_auth_t {
    bus_secret_t *secret;   //  NULL: open, everyone is a manager
};

bus_auth_t *
bus_auth_new (const char *secret_file, char *err, size_t err_cap)
{
    bus_auth_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    //  Only a node told to run open gets here without a file (bus_node.c)
    if (!secret_file || !*secret_file) {
        zsys_warning ("auth: no secret file: running OPEN, every request may "
                      "do anything; set auth/secret_file (--secret-file) for "
                      "a real site");
        return self;
    }
    self->secret = bus_secret_load (secret_file, err, err_cap);
    if (!self->secret)
        bus_auth_destroy (&self);
    return self;
}

void
bus_auth_destroy (bus_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_secret_destroy (&(*self_p)->secret);
    free (*self_p);
    *self_p = NULL;
}

bool
bus_auth_is_open (const bus_auth_t *self)
{
    return !self->secret;
}

int
bus_auth_check (bus_auth_t *self, bus_req_t *req, bus_claims_t *claims)
{
    if (!self->secret) {
        memset (claims, 0, sizeof *claims);
        claims->role = BUS_TOKEN_MANAGER;
        return 0;
    }
    const char *header = bus_req_header (req, "Authorization");
    char token[BUS_TOKEN_MAX + 2];
    if (header && strncmp (header, "Bearer ", 7) == 0)
        return bus_token_verify (self->secret, header + 7, zclock_time (),
                                 claims);
    if (bus_req_query (req, "token", token, sizeof token) < 0)
        token[0] = '\0';
    return bus_token_verify (self->secret, *token ? token : NULL,
                             zclock_time (), claims);
}

int
bus_auth_verify (bus_auth_t *self, const char *token, bus_claims_t *claims)
{
    if (!self->secret) {
        memset (claims, 0, sizeof *claims);
        claims->role = BUS_TOKEN_MANAGER;
        return 0;
    }
    return bus_token_verify (self->secret, token, zclock_time (), claims);
}

int
bus_auth_refuse (bus_req_t *req, int rc, const char *why)
{
    if (rc == BUS_ERR_FORBIDDEN)
        return bus_req_send_error (req, 403, "forbidden", why, NULL);
    const char *message =
        rc == BUS_ERR_EXPIRED
            ? "the token has expired: ask for a new one"
            : "a valid token is needed: send \"Authorization: Bearer <token>\" "
              "or ?token=<token>";
    return bus_req_send_error (req, 401, bus_errname (rc), message, NULL);
}
