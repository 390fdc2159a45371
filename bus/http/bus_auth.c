/*  bus_auth.c — the token of a request, checked with its site's secret.

    A node serves one site (site/name) or several (site/file: bus_sites.h
    in roles/), each with its own secret.  A token names its site, so the
    site is read from the token first (unverified) only to choose the
    secret that must have signed it: a token of site A signed with B's
    secret fails A's MAC like any forgery.  */

#include <czmq.h>
#include "orderbus/bus_auth.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_req.h"

typedef struct {
    char name[BUS_NAME_MAX];
    bus_secret_t *secret;   //  NULL: open, everyone is a manager
} s_site_t;

struct _bus_auth_t {
    s_site_t sites[BUS_AUTH_SITES_MAX];
    size_t count;
    zhashx_t *index;   //  site name -> index + 1, once there are two
};

//  Add site with secret_file ("" or NULL: open, the only site).  0, or -1
//  with err set.
static int
s_add (bus_auth_t *self, const char *site, const char *secret_file, char *err,
       size_t err_cap)
{
    if (!bus_token_valid_site (site))
        return bus_error_set (err, err_cap, -1,
                              "site '%.100s': a site name is 1 to 80 of "
                              "A-Z a-z 0-9 _ . -",
                              site);
    if (self->count == BUS_AUTH_SITES_MAX)
        return bus_error_set (err, err_cap, -1,
                              "site '%s': more than %d sites on one node", site,
                              BUS_AUTH_SITES_MAX);
    if (bus_auth_site_index (self, site) >= 0)
        return bus_error_set (err, err_cap, -1, "site '%s': given twice", site);
    bool open = !secret_file || !*secret_file;
    if (open && self->count > 0)
        return bus_error_set (err, err_cap, -1,
                              "site '%s': auth/secret_file: missing (every "
                              "site of a node with several has its own)",
                              site);
    s_site_t *entry = &self->sites[self->count];
    bus_strlcpy (entry->name, site, sizeof entry->name);
    if (!open && !(entry->secret = bus_secret_load (secret_file, err, err_cap)))
        return -1;
    if (self->count == 1 && !self->index) {
        self->index = zhashx_new ();
        if (!self->index) {
            bus_secret_destroy (&entry->secret);
            return bus_error_set (err, err_cap, -1, "out of memory");
        }
        zhashx_insert (self->index, self->sites[0].name, (void *) 1);
    }
    if (self->index)
        zhashx_insert (self->index, entry->name,
                       (void *) (uintptr_t) (self->count + 1));
    self->count++;
    return 0;
}

bus_auth_t *
bus_auth_new (const char *site, const char *secret_file, char *err,
              size_t err_cap)
{
    bus_auth_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    //  Only a node told to run open gets here without a file (bus_node.c)
    if (!secret_file || !*secret_file)
        zsys_warning ("auth: no secret file: running OPEN, every request may "
                      "do anything; set auth/secret_file (--secret-file) for "
                      "a real site");
    if (s_add (self, site, secret_file, err, err_cap) != 0)
        bus_auth_destroy (&self);
    return self;
}

int
bus_auth_add (bus_auth_t *self, const char *site, const char *secret_file,
              char *err, size_t err_cap)
{
    if (bus_auth_is_open (self))
        return bus_error_set (err, err_cap, -1,
                              "site '%s': a node running open serves one site",
                              site);
    return s_add (self, site, secret_file, err, err_cap);
}

void
bus_auth_destroy (bus_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_auth_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        bus_secret_destroy (&self->sites[i].secret);
    zhashx_destroy (&self->index);
    free (self);
    *self_p = NULL;
}

bool
bus_auth_is_open (const bus_auth_t *self)
{
    return !self->sites[0].secret;
}

int
bus_auth_site_index (const bus_auth_t *self, const char *site)
{
    if (self->index)
        return (int) (uintptr_t) zhashx_lookup (self->index, site) - 1;
    return self->count == 1 && streq (self->sites[0].name, site) ? 0 : -1;
}

size_t
bus_auth_site_count (const bus_auth_t *self)
{
    return self->count;
}

const char *
bus_auth_site_name (const bus_auth_t *self, size_t index)
{
    return index < self->count ? self->sites[index].name : NULL;
}

int
bus_auth_verify (bus_auth_t *self, const char *token, bus_claims_t *claims)
{
    if (bus_auth_is_open (self)) {
        memset (claims, 0, sizeof *claims);
        claims->role = BUS_TOKEN_MANAGER;
        bus_strlcpy (claims->site, self->sites[0].name, sizeof claims->site);
        return 0;
    }
    bus_claims_t said;
    if (bus_token_peek (token, &said) != 0) {
        memset (claims, 0, sizeof *claims);
        return BUS_ERR_UNAUTHORIZED;
    }
    int index = bus_auth_site_index (self, said.site);
    if (index < 0) {
        //  Its site only, unverified, for the refusal to name
        memset (claims, 0, sizeof *claims);
        bus_strlcpy (claims->site, said.site, sizeof claims->site);
        return BUS_ERR_WRONG_SITE;
    }
    return bus_token_verify (self->sites[index].secret, token, zclock_time (),
                             claims);
}

//  req's token: the header's, or ?token= copied into buf[BUS_TOKEN_MAX +
//  2]; NULL if none
static const char *
s_token (bus_req_t *req, char *buf)
{
    const char *header = bus_req_header (req, "Authorization");
    if (header && strncmp (header, "Bearer ", 7) == 0)
        return header + 7;
    if (bus_req_query (req, "token", buf, BUS_TOKEN_MAX + 2) < 0)
        buf[0] = '\0';
    return *buf ? buf : NULL;
}

int
bus_auth_check (bus_auth_t *self, bus_req_t *req, bus_claims_t *claims)
{
    char buf[BUS_TOKEN_MAX + 2];
    return bus_auth_verify (self, s_token (req, buf), claims);
}

int
bus_auth_site_of (const bus_auth_t *self, bus_req_t *req)
{
    if (bus_auth_is_open (self))
        return 0;
    char buf[BUS_TOKEN_MAX + 2];
    bus_claims_t said;
    if (bus_token_peek (s_token (req, buf), &said) != 0)
        return -1;
    return bus_auth_site_index (self, said.site);
}

const char *
bus_auth_why (const bus_auth_t *self, int rc, const bus_claims_t *claims,
              char *buf, size_t cap)
{
    if (rc != BUS_ERR_WRONG_SITE)
        return NULL;
    //  One site is named; many are not listed to whoever asks
    if (self->count == 1)
        snprintf (buf, cap,
                  "this token is for site '%s'; this node serves site '%s' "
                  "only: ask for a token of site '%s'",
                  claims->site, self->sites[0].name, self->sites[0].name);
    else
        snprintf (buf, cap,
                  "this token is for site '%s', which this node does not "
                  "serve (it serves %zu sites, those of its site/file)",
                  claims->site, self->count);
    return buf;
}

int
bus_auth_refuse (bus_req_t *req, int rc, const char *why)
{
    if (rc == BUS_ERR_FORBIDDEN || rc == BUS_ERR_WRONG_SITE)
        return bus_req_send_error (req, 403, bus_errname (rc), why, NULL);
    const char *message =
        rc == BUS_ERR_EXPIRED
            ? "the token has expired: ask for a new one"
            : "a valid token is needed: send \"Authorization: Bearer <token>\" "
              "or ?token=<token>";
    return bus_req_send_error (req, 401, bus_errname (rc), message, NULL);
}
