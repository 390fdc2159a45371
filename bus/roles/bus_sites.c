/*  bus_sites.c — the sites of a gateway or edge node, a part per site.

    Owns, per site: its settings (the node's with its section applied),
    its gateway or edge; for all: the secrets (one bus_auth_t) and, on an
    edge of several sites, the WebSocket dispatchers that hand a browser
    to its token's site's edge.

      main      reads the file, starts and destroys every part
      any       bus_sites_health; the dispatchers, on the HTTP server's
                threads (the tables are read-only once started)  */

#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_sites.h"

#define S_PATHS_MAX 4   //  WebSocket paths of an edge: /ws and a feed's two

//  The keys a site's section may hold; the rest are the node's
static const char *s_site_keys[] = { "endpoints/intake", "endpoints/events",
                                     "endpoints/sync", "link/writer_key",
                                     "auth/secret_file" };
#define S_SITE_KEYS (sizeof s_site_keys / sizeof s_site_keys[0])

//  Which site's edge an edge's router call comes from
typedef struct {
    bus_sites_t *sites;
    size_t index;
} s_slot_t;

//  A WebSocket path of several edges: each site's hooks, and the
//  dispatcher's, which the server calls
typedef struct {
    bus_sites_t *sites;
    char path[64];
    const bus_edge_feed_t *feed;           //  the feed's path, or NULL: /ws
    const bus_http_ws_handler_t **hooks;   //  [site]
    bus_http_ws_handler_t dispatcher;
} s_path_t;

struct _bus_sites_t {
    bus_role_t role;
    size_t count;
    bus_config_t *configs;      //  [site]
    bus_auth_t *auth;           //  every site's secret
    bus_gateway_t **gateways;   //  [site], once started
    bus_edge_t **edges;         //  [site], once started
    s_slot_t *slots;            //  [site]: the edges' routers' server
    s_path_t paths[S_PATHS_MAX];
    size_t path_count;
    bus_http_ws_router_t http;     //  the server's own
    const bus_edge_feed_t *feed;   //  served beside /ws, or NULL
};

//  ---------------------------------------------------------------------
//  The sites file

//  Is key one a site's section may hold?  Its index, or -1.
static int
s_site_key (const char *key)
{
    for (size_t i = 0; i < S_SITE_KEYS; i++)
        if (streq (s_site_keys[i], key))
            return (int) i;
    return -1;
}

//  Apply node (and its siblings) under prefix of site's section to
//  config; seen has a bit per key set.  0 or -1 with err.
static int
s_load_keys (bus_config_t *config, zconfig_t *node, const char *prefix,
             unsigned *seen, const char *where, char *err, size_t err_cap)
{
    for (; node; node = zconfig_next (node)) {
        char key[256], at[BUS_PATH_MAX + 400];
        snprintf (key, sizeof key, "%s%s%s", prefix, *prefix ? "/" : "",
                  zconfig_name (node));
        snprintf (at, sizeof at, "%s: %s", where, key);
        int index = s_site_key (key);
        if (index < 0 && *zconfig_value (node) && zconfig_child (node))
            return bus_error_set (err, err_cap, -1,
                                  "%s: is a section and takes no value", at);
        if (index < 0 && !zconfig_child (node))
            return bus_error_set (
                err, err_cap, -1,
                "%s: not a key of a site (a site's section holds "
                "endpoints/intake, events, sync, link/writer_key and "
                "auth/secret_file; other settings are the node's)",
                at);
        if (index >= 0 && (*seen & (1u << index)))
            return bus_error_set (err, err_cap, -1, "%s: set twice", at);
        if (index >= 0) {
            *seen |= 1u << index;
            if (bus_config_set (config, key, zconfig_value (node), at, err,
                                err_cap)
                != 0)
                return -1;
        } else if (s_load_keys (config, zconfig_child (node), key, seen, where,
                                err, err_cap)
                   != 0)
            return -1;
    }
    return 0;
}

//  A site's section: its settings in config (a copy of the node's, its
//  own writer and secret given here, none inherited).  0 or -1 with err.
static int
s_load_site (const bus_config_t *base, zconfig_t *section, const char *file,
             bus_config_t *config, char *err, size_t err_cap)
{
    const char *name = zconfig_name (section);
    char where[BUS_PATH_MAX + 128];
    snprintf (where, sizeof where, "%s: site '%.100s'", file, name);
    if (!bus_token_valid_site (name))
        return bus_error_set (err, err_cap, -1,
                              "%s: a site's name is 1 to 80 of A-Z a-z 0-9 "
                              "_ . - (as in its tokens)",
                              where);
    if (*zconfig_value (section))
        return bus_error_set (err, err_cap, -1,
                              "%s: is a section (its writer's endpoints, "
                              "writer_key and secret_file) and takes no value",
                              where);
    *config = *base;
    bus_strlcpy (config->site, name, sizeof config->site);
    config->secret_file[0] = config->writer_key[0] = '\0';
    unsigned seen = 0;
    if (s_load_keys (config, zconfig_child (section), "", &seen, where, err,
                     err_cap)
        != 0)
        return -1;
    //  Never another site's writer by default: each names its own
    for (size_t i = 0; i < S_SITE_KEYS; i++) {
        bool needed = !streq (s_site_keys[i], "link/writer_key")
                      && (base->role == BUS_ROLE_GATEWAY
                          || !streq (s_site_keys[i], "endpoints/intake"));
        if (needed && !(seen & (1u << i)))
            return bus_error_set (err, err_cap, -1, "%s: %s: missing", where,
                                  s_site_keys[i]);
    }
    return 0;
}

//  Read config->sites_file into self's configs and auth.  0 or -1.
static int
s_load_file (bus_sites_t *self, const bus_config_t *base, char *err,
             size_t err_cap)
{
    const char *file = base->sites_file;
    if (*base->secret_file || base->insecure_no_auth)
        return bus_error_set (err, err_cap, -1,
                              "site/file (--sites) and %s contradict each "
                              "other: each site has its own secret, in its "
                              "section of %s",
                              *base->secret_file ? "auth/secret_file"
                                                 : "auth/insecure_no_auth",
                              file);
    zchunk_t *chunk = zsys_file_exists (file) ? zchunk_slurp (file, 0) : NULL;
    zconfig_t *root = chunk ? zconfig_chunk_load (chunk) : NULL;
    zchunk_destroy (&chunk);
    if (!root)
        return bus_error_set (err, err_cap, -1,
                              "site/file: cannot read '%s' as ZPL (a missing "
                              "file, or a bad indent: 4 spaces a level)",
                              file);
    size_t count = 0;
    for (zconfig_t *site = zconfig_child (root); site;
         site = zconfig_next (site))
        count++;
    int rc = 0;
    if (count == 0 || count > BUS_AUTH_SITES_MAX)
        rc = bus_error_set (err, err_cap, -1,
                            "site/file: %s: %zu sites; a node serves 1 to %d",
                            file, count, BUS_AUTH_SITES_MAX);
    self->configs = rc ? NULL : calloc (count, sizeof *self->configs);
    if (!rc && !self->configs)
        rc = bus_error_set (err, err_cap, -1, "out of memory");
    zconfig_t *site = zconfig_child (root);
    for (; rc == 0 && site; site = zconfig_next (site)) {
        bus_config_t *config = &self->configs[self->count];
        if (self->auth
            && bus_auth_site_index (self->auth, zconfig_name (site)) >= 0)
            rc = bus_error_set (err, err_cap, -1, "%s: site '%s': given twice",
                                file, zconfig_name (site));
        else
            rc = s_load_site (base, site, file, config, err, err_cap);
        if (rc == 0 && self->count == 0
            && !(self->auth = bus_auth_new (config->site, config->secret_file,
                                            err, err_cap)))
            rc = -1;
        else if (rc == 0 && self->count > 0)
            rc = bus_auth_add (self->auth, config->site, config->secret_file,
                               err, err_cap);
        if (rc != 0 && !strstr (err, "site '")) {   //  the secret's
            char reason[512];
            bus_strlcpy (reason, err, sizeof reason);
            snprintf (err, err_cap, "%s: site '%s': auth/secret_file: %s", file,
                      config->site, reason);
        }
        self->count += rc == 0;
    }
    zconfig_destroy (&root);
    if (rc == 0)
        zsys_info ("sites: %zu from %s, the first '%s', the last '%s'",
                   self->count, file, self->configs[0].site,
                   self->configs[self->count - 1].site);
    return rc;
}

bus_sites_t *
bus_sites_new (const bus_config_t *config, char *err, size_t err_cap)
{
    bus_sites_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->role = config->role;
    int rc = 0;
    if (*config->sites_file)
        rc = s_load_file (self, config, err, err_cap);
    else if (!(self->configs = malloc (sizeof *self->configs)))
        rc = bus_error_set (err, err_cap, -1, "out of memory");
    else {
        self->configs[0] = *config;
        self->count = 1;
        self->auth =
            bus_auth_new (config->site, config->secret_file, err, err_cap);
        rc = self->auth ? 0 : -1;
    }
    if (rc == 0) {
        self->gateways = calloc (self->count, sizeof *self->gateways);
        self->edges = calloc (self->count, sizeof *self->edges);
        self->slots = calloc (self->count, sizeof *self->slots);
        if (!self->gateways || !self->edges || !self->slots)
            rc = bus_error_set (err, err_cap, -1, "out of memory");
    }
    if (rc != 0)
        bus_sites_destroy (&self);
    return self;
}

void
bus_sites_destroy (bus_sites_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_sites_t *self = *self_p;
    for (size_t i = 0; self->edges && i < self->count; i++)
        bus_edge_destroy (&self->edges[i]);
    for (size_t i = 0; self->gateways && i < self->count; i++)
        bus_gateway_destroy (&self->gateways[i]);
    for (size_t i = 0; i < self->path_count; i++)
        free (self->paths[i].hooks);
    bus_auth_destroy (&self->auth);
    free (self->edges);
    free (self->gateways);
    free (self->slots);
    free (self->configs);
    free (self);
    *self_p = NULL;
}

size_t
bus_sites_count (const bus_sites_t *self)
{
    return self->count;
}

const bus_config_t *
bus_sites_config (const bus_sites_t *self, size_t index)
{
    return index < self->count ? &self->configs[index] : NULL;
}

bus_auth_t *
bus_sites_auth (bus_sites_t *self)
{
    return self->auth;
}

//  With several sites, a part's refusal names its site: "site 'b': ..."
static void
s_name_site (const bus_sites_t *self, size_t index, char *err, size_t err_cap)
{
    if (self->count < 2)
        return;
    char reason[512];
    bus_strlcpy (reason, err, sizeof reason);
    snprintf (err, err_cap, "site '%s': %s", self->configs[index].site, reason);
}

//  With several sites, which site the part about to start (and its log
//  lines just after) is for
static void
s_log_site (const bus_sites_t *self, size_t index, const char *part)
{
    if (self->count > 1)
        zsys_info ("sites: site '%s' (%zu of %zu): its %s",
                   self->configs[index].site, index + 1, self->count, part);
}

int
bus_sites_start_gateways (bus_sites_t *self, char *err, size_t err_cap)
{
    for (size_t i = 0; i < self->count; i++) {
        s_log_site (self, i, "gateway");
        if (!(self->gateways[i] =
                  bus_gateway_new (&self->configs[i], err, err_cap))) {
            s_name_site (self, i, err, err_cap);
            return -1;
        }
    }
    return 0;
}

bus_gateway_t **
bus_sites_gateways (bus_sites_t *self)
{
    return self->gateways;
}

//  ---------------------------------------------------------------------
//  WebSockets of several edges on one server

//  The edge's hooks for the site of ws's token (checked at its upgrade)
static const bus_http_ws_handler_t *
s_hooks_of (s_path_t *path, bus_req_t *req)
{
    bus_auth_t *auth = path->sites->auth;
    int index = path->feed && path->feed->site ? path->feed->site (auth, req)
                                               : bus_auth_site_of (auth, req);
    return index >= 0 ? path->hooks[index] : NULL;
}

//  Before the handshake: the token's site's edge decides, after the token
//  itself is checked here (a token of a site not served, or not signed
//  by its site's secret, reaches no edge).  A feed's token may be where
//  only the feed looks (a path): the feed's own check refuses one of no
//  site served.
static int
s_ws_connect (bus_req_t *req, void *arg)
{
    s_path_t *path = (s_path_t *) arg;
    if (path->feed) {
        const bus_http_ws_handler_t *hooks = s_hooks_of (path, req);
        if (hooks)
            return hooks->connect ? hooks->connect (req, hooks->arg) : 0;
        if (path->feed->connect
            && path->feed->connect (path->sites->auth, req) != 0)
            return 1;
        bus_req_send_error (req, 403, bus_errname (BUS_ERR_WRONG_SITE),
                            bus_strerror (BUS_ERR_WRONG_SITE), NULL);
        return 1;
    }
    bus_claims_t claims;
    char why[256];
    int rc = bus_auth_check (path->sites->auth, req, &claims);
    if (rc != 0) {
        bus_auth_refuse (
            req, rc,
            bus_auth_why (path->sites->auth, rc, &claims, why, sizeof why));
        return 1;
    }
    const bus_http_ws_handler_t *hooks = s_hooks_of (path, req);
    return hooks->connect ? hooks->connect (req, hooks->arg) : 0;
}

static void
s_ws_ready (bus_http_ws_t *ws, void *arg)
{
    const bus_http_ws_handler_t *hooks =
        s_hooks_of ((s_path_t *) arg, bus_http_ws_request (ws));
    if (hooks && hooks->ready)
        hooks->ready (ws, hooks->arg);
}

static void
s_ws_data (bus_http_ws_t *ws, int opcode, const char *data, size_t len,
           void *arg)
{
    const bus_http_ws_handler_t *hooks =
        s_hooks_of ((s_path_t *) arg, bus_http_ws_request (ws));
    if (hooks && hooks->data)
        hooks->data (ws, opcode, data, len, hooks->arg);
}

static void
s_ws_close (bus_http_ws_t *ws, void *arg)
{
    const bus_http_ws_handler_t *hooks =
        s_hooks_of ((s_path_t *) arg, bus_http_ws_request (ws));
    if (hooks && hooks->close)
        hooks->close (ws, hooks->arg);
}

//  An edge's router: its WebSocket paths are noted for the dispatcher,
//  its pages (the same for every site) reach the server from the first
static void
s_route_ws (void *server, const char *where, const bus_http_ws_handler_t *hooks)
{
    s_slot_t *slot = (s_slot_t *) server;
    bus_sites_t *self = slot->sites;
    s_path_t *path = NULL;
    for (size_t i = 0; i < self->path_count && !path; i++)
        if (streq (self->paths[i].path, where))
            path = &self->paths[i];
    if (!path) {
        assert (self->path_count < S_PATHS_MAX);
        path = &self->paths[self->path_count++];
        path->sites = self;
        bus_strlcpy (path->path, where, sizeof path->path);
        path->hooks = calloc (self->count, sizeof *path->hooks);
        bool feed = self->feed
                    && (streq (where, self->feed->path)
                        || (self->feed->other_path
                            && streq (where, self->feed->other_path)));
        path->feed = feed ? self->feed : NULL;
        assert (path->hooks);
        path->dispatcher =
            (bus_http_ws_handler_t){ s_ws_connect, s_ws_ready, s_ws_data,
                                     s_ws_close, path };
    }
    path->hooks[slot->index] = hooks;
}

static void
s_route_page (void *server, const char *where, const char *root)
{
    s_slot_t *slot = (s_slot_t *) server;
    if (slot->index == 0)
        slot->sites->http.page (slot->sites->http.server, where, root);
}

static void
s_route_redirect (void *server, const char *where, const char *location)
{
    s_slot_t *slot = (s_slot_t *) server;
    if (slot->index == 0)
        slot->sites->http.redirect (slot->sites->http.server, where, location);
}

int
bus_sites_start_edges (bus_sites_t *self, bus_http_ws_router_t http,
                       const bus_edge_feed_t *feed, char *err, size_t err_cap)
{
    if (self->count == 1) {   //  as a lone edge, at no cost
        self->edges[0] = bus_edge_new (&self->configs[0], self->auth, http,
                                       feed, err, err_cap);
        return self->edges[0] ? 0 : -1;
    }
    self->http = http;
    self->feed = feed;
    for (size_t i = 0; i < self->count; i++) {
        self->slots[i] = (s_slot_t){ self, i };
        bus_http_ws_router_t mine = { s_route_ws, s_route_page,
                                      s_route_redirect, &self->slots[i] };
        s_log_site (self, i, "edge");
        self->edges[i] = bus_edge_new (&self->configs[i], self->auth, mine,
                                       feed, err, err_cap);
        if (!self->edges[i]) {
            s_name_site (self, i, err, err_cap);
            return -1;
        }
    }
    for (size_t i = 0; i < self->path_count; i++)
        http.websocket (http.server, self->paths[i].path,
                        &self->paths[i].dispatcher);
    return 0;
}

//  ---------------------------------------------------------------------
//  Health

//  Site index's parts into body; whether all are well
static bool
s_site_health (bus_sites_t *self, size_t index, json_t *body)
{
    bool ok = true, part_ok;
    const char *parts[] = { "gateway", "edge" };
    if (self->gateways[index]) {
        json_object_set_new (
            body, "gateway",
            bus_gateway_health (self->gateways[index], &part_ok));
        ok = ok && part_ok;
    }
    if (self->edges[index]) {
        json_object_set_new (body, "edge",
                             bus_edge_health (self->edges[index], &part_ok));
        ok = ok && part_ok;
    }
    json_object_set_new (body, "status",
                         json_string (ok ? "ok" : "unavailable"));
    //  The first part's reason, for whoever reads only the top
    const char *reason = NULL;
    for (size_t i = 0; !ok && !reason && i < 2; i++)
        reason = json_string_value (
            json_object_get (json_object_get (body, parts[i]), "reason"));
    if (reason)
        json_object_set_new (body, "reason", json_string (reason));
    return ok;
}

//  Every site's part under "sites"; 200 while any is served
static int
s_health_all (bus_sites_t *self, bus_req_t *req, json_t *body)
{
    json_t *sites = json_object ();
    size_t good = 0;
    const char *failing = NULL;
    json_t *first_bad = NULL;
    for (size_t i = 0; i < self->count; i++) {
        json_t *site = json_object ();
        if (s_site_health (self, i, site))
            good++;
        else if (!failing) {
            failing = self->configs[i].site;
            first_bad = site;
        }
        json_object_set_new (sites, self->configs[i].site, site);
    }
    json_object_set_new (body, "sites", sites);
    json_object_set_new (body, "sites_ok", json_integer ((json_int_t) good));
    json_object_set_new (body, "status",
                         json_string (good == self->count ? "ok"
                                      : good              ? "degraded"
                                                          : "unavailable"));
    if (failing) {
        const char *why =
            json_string_value (json_object_get (first_bad, "reason"));
        char reason[512];
        snprintf (reason, sizeof reason, "site '%s': %s", failing,
                  why ? why : "unavailable");
        json_object_set_new (body, "reason", json_string (reason));
    }
    return bus_req_send_json (req, good ? 200 : 503, body, NULL);
}

int
bus_sites_health (bus_req_t *req, void *arg)
{
    bus_sites_t *self = (bus_sites_t *) arg;
    json_t *body = json_pack ("{s:s}", "role", bus_role_name (self->role));
    char name[BUS_NAME_MAX + 1];
    int status;
    if (self->count == 1)
        status = bus_req_send_json (
            req, s_site_health (self, 0, body) ? 200 : 503, body, NULL);
    else if (bus_req_query (req, "site", name, sizeof name) < 0)
        status = s_health_all (self, req, body);
    else {
        int index = bus_auth_site_index (self->auth, name);
        if (index < 0)
            status = bus_req_send_error (req, 404, "not_found",
                                         "this node does not serve that site",
                                         "site");
        else {
            json_object_set_new (body, "site", json_string (name));
            status = bus_req_send_json (
                req, s_site_health (self, (size_t) index, body) ? 200 : 503,
                body, NULL);
        }
    }
    json_decref (body);
    return status;
}
