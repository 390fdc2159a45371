/*  test_sites — two sites on separate writers (A and B, their own data,
    CURVE with their own writer keys, their own secrets) behind one gateway
    and one edge that serve both (site/file), and a single-site gateway's
    check of the site (site/name): each token reaches its own site's
    writer and no other; a site not served, or a token signed with another
    site's secret, is refused on HTTP and on the WebSocket; one writer
    killed leaves the other site taking orders; a bad sites file keeps the
    node from starting (docs/deployment.md).  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "testkit.h"

#define CHECK  TK_CHECK
#define ORDERS 12   //  per site

typedef struct {
    const char *name;
    char intake[TK_ENDPOINT_LEN], events[TK_ENDPOINT_LEN],
        sync[TK_ENDPOINT_LEN];
    char secret[600], data[600];
    char *kitchen, *manager;   //  tokens of this site, its own secret
    pid_t writer;
} s_site_t;

static s_site_t s_a = { .name = "A" }, s_b = { .name = "B" };
static char s_keys[600], s_menu[600], s_web[600], s_sites_file[600];
static char s_c_secret[600];
static int s_gw, s_edge;

//  ---------------------------------------------------------------------
//  Helpers

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    CHECK (file, "cannot write %s", path);
    fputs (text, file);
    fclose (file);
}

//  A token of site, signed with the secret at secret (made if missing)
static char *
s_mint (const char *secret, const char *site, const char *flag, const char *who)
{
    char *out;
    int rc = tk_run (&out, "token", "--secret-file", secret, "--create-secret",
                     "--site", site, flag, who, NULL);
    char *token = rc == 0 ? strstr (out, "ob1.") : NULL;
    CHECK (token, "token for site %s: %d %s", site, rc, out);
    token = strndup (token, strcspn (token, "\n"));
    free (out);
    return token;
}

static void
s_keys_new (const char *name, const char *role)
{
    tk_keys_new (s_keys, name, role);
}

//  The public certificate name.cert of the keys into dir (an allow-list)
static void
s_allow (const char *dir, const char *name)
{
    char from[700], to[700], *out;
    snprintf (from, sizeof from, "%s/%s.cert", s_keys, name);
    snprintf (to, sizeof to, "%s/%s.cert", dir, name);
    mkdir (dir, 0700);
    int rc = tk_run (&out, "keys", "public", "--cert", from, NULL);
    free (out);
    CHECK (rc == 0, "keys public %s", from);
    tk_copy_file (from, to);
}

static void
s_start_writer (s_site_t *site)
{
    char name[32], cert[700], allow[700];
    snprintf (name, sizeof name, "writer-%s", site->name);
    snprintf (cert, sizeof cert, "%s/writer-%s.cert_secret", s_keys,
              site->name);
    snprintf (allow, sizeof allow, "%s/allow-%s", tk_dir (), site->name);
    site->writer =
        tk_spawn (name, "writer", "--data", site->data, "--menu", s_menu,
                  "--intake", site->intake, "--events", site->events, "--sync",
                  site->sync, "--cert", cert, "--allow", allow, NULL);
}

//  POST an order to the gateway with token; the status, body in *resp
static int
s_order (int port, const char *token, const char *key, const char *table,
         tk_response_t *resp)
{
    char headers[900], body[200];
    snprintf (headers, sizeof headers,
              "Authorization: Bearer %s\r\nIdempotency-Key: %s\r\n"
              "Content-Type: application/json\r\n",
              token, key);
    snprintf (body, sizeof body,
              "{\"table\":\"%s\",\"items\":[{\"item_id\":\"caesar\","
              "\"quantity\":1}]}",
              table);
    tk_http (port, "POST", "/api/v1/orders", headers, body, resp);
    return resp->status;
}

static int
s_get (int port, const char *token, const char *path, tk_response_t *resp)
{
    char headers[700];
    snprintf (headers, sizeof headers, "Authorization: Bearer %s\r\n", token);
    tk_http (port, "GET", path, headers, NULL, resp);
    return resp->status;
}

//  The WebSocket upgrade of /ws with token, raw: its HTTP answer
static void
s_upgrade (int port, const char *token, tk_response_t *resp)
{
    char request[1200];
    int n = snprintf (request, sizeof request,
                      "GET /ws?token=%s HTTP/1.1\r\nHost: x\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      token);
    tk_http_raw (port, request, (size_t) n, resp);
}

//  /healthz until its status is want ("ok", "degraded"), or false
static bool
s_health_is (int port, const char *want, int timeout_ms)
{
    int64_t end = tk_now_ms () + timeout_ms;
    while (tk_now_ms () < end) {
        tk_response_t r;
        tk_http (port, "GET", "/healthz", NULL, NULL, &r);
        const char *status =
            json_string_value (json_object_get (r.json, "status"));
        bool done = status && strcmp (status, want) == 0;
        tk_response_free (&r);
        if (done)
            return true;
        struct timespec pause = { 0, 100 * 1000000L };
        nanosleep (&pause, NULL);
    }
    return false;
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (start)
{
    snprintf (s_keys, sizeof s_keys, "%s/keys", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (s_web, sizeof s_web, "%s/web", tk_source ());
    mkdir (s_keys, 0700);
    s_keys_new ("writer-A", "writer");
    s_keys_new ("writer-B", "writer");
    s_keys_new ("gw", "gateway");
    s_keys_new ("gw2", "gateway");   //  single_site's, on A's writer
    s_keys_new ("e1", "edge");
    s_site_t *sites[] = { &s_a, &s_b };
    for (int i = 0; i < 2; i++) {
        s_site_t *site = sites[i];
        char allow[700];
        snprintf (allow, sizeof allow, "%s/allow-%s", tk_dir (), site->name);
        s_allow (allow, "gw");
        s_allow (allow, "gw2");
        s_allow (allow, "e1");
        tk_endpoints (site->intake, site->events, site->sync);
        snprintf (site->data, sizeof site->data, "%s/data-%s", tk_dir (),
                  site->name);
        snprintf (site->secret, sizeof site->secret, "%s/secret-%s", tk_dir (),
                  site->name);
        site->kitchen = s_mint (site->secret, site->name, "--staff", "kitchen");
        site->manager = s_mint (site->secret, site->name, "--staff", "manager");
        s_start_writer (site);
    }
    snprintf (s_c_secret, sizeof s_c_secret, "%s/secret-C", tk_dir ());

    //  One section per site: its writer, its writer's key, its secret
    char text[4096];
    snprintf (text, sizeof text,
              "A\n    endpoints\n        intake = %s\n        events = %s\n"
              "        sync = %s\n    link/writer_key = %s/writer-A.cert\n"
              "    auth/secret_file = %s\n"
              "B\n    endpoints\n        intake = %s\n        events = %s\n"
              "        sync = %s\n    link/writer_key = %s/writer-B.cert\n"
              "    auth/secret_file = %s\n",
              s_a.intake, s_a.events, s_a.sync, s_keys, s_a.secret, s_b.intake,
              s_b.events, s_b.sync, s_keys, s_b.secret);
    snprintf (s_sites_file, sizeof s_sites_file, "%s/sites.cfg", tk_dir ());
    s_write (s_sites_file, text);
    //  --config: the kit gives no secret of its own to such a node
    char node_cfg[700], http[16], cert[700];
    snprintf (node_cfg, sizeof node_cfg, "%s/node.cfg", tk_dir ());
    snprintf (text, sizeof text,
              "site\n    file = %s\ncompat\n    enabled = 1\n", s_sites_file);
    s_write (node_cfg, text);
    s_gw = tk_port ();
    snprintf (http, sizeof http, "%d", s_gw);
    snprintf (cert, sizeof cert, "%s/gw.cert_secret", s_keys);
    tk_spawn ("gateway", "gateway", "--config", node_cfg, "--http-port", http,
              "--name", "gw", "--cert", cert, "--ack-timeout-ms", "1500", NULL);
    s_edge = tk_port ();
    snprintf (http, sizeof http, "%d", s_edge);
    snprintf (cert, sizeof cert, "%s/e1.cert_secret", s_keys);
    tk_spawn ("edge", "edge", "--config", node_cfg, "--http-port", http,
              "--web", s_web, "--cert", cert, NULL);
    CHECK (s_health_is (s_gw, "ok", 20000), "gateway: both sites ok");
    CHECK (s_health_is (s_edge, "ok", 20000), "edge: both sites ok");
    json_t *health = tk_get_json (s_gw, "/healthz", 200);
    CHECK (tk_json_int (health, "sites_ok") == 2, "sites_ok 2");
    json_decref (health);
}

//  A kitchen on the edge per site; orders for each site through the one
//  gateway: each lands in its own writer's store, each kitchen sees its
//  own site's alone, every sequence number once, in order
TK_CASE (orders_by_site)
{
    char path[700];
    snprintf (path, sizeof path, "/ws?token=%s", s_a.kitchen);
    tk_ws_t *ws_a = tk_ws_open (s_edge, path);
    snprintf (path, sizeof path, "/ws?token=%s", s_b.kitchen);
    tk_ws_t *ws_b = tk_ws_open (s_edge, path);
    CHECK (ws_a && ws_b, "a kitchen of each site on the edge");
    tk_ws_t *ws[2] = { ws_a, ws_b };
    json_int_t last[2];
    for (int s = 0; s < 2; s++) {
        json_t *snap = tk_ws_next (ws[s], 5000);
        CHECK (
            snap
                && strcmp (json_string_value (json_object_get (snap, "type")),
                           "snapshot")
                       == 0,
            "snapshot first");
        last[s] = json_integer_value (json_object_get (snap, "seq"));
        json_decref (snap);
    }
    s_site_t *sites[] = { &s_a, &s_b };
    for (int i = 0; i < ORDERS; i++)
        for (int s = 0; s < 2; s++) {
            char key[32], table[16];
            snprintf (key, sizeof key, "k-%d",
                      i);   //  the same keys: two stores
            snprintf (table, sizeof table, "%s%d", sites[s]->name, i);
            tk_response_t r;
            int status = s_order (s_gw, sites[s]->kitchen, key, table, &r);
            CHECK (status == 201, "order %d of site %s: %d %s", i,
                   sites[s]->name, status, r.body);
            tk_response_free (&r);
        }
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < ORDERS; i++) {
            json_t *msg = tk_ws_next (ws[s], 5000);
            CHECK (msg, "site %s: event %d", sites[s]->name, i);
            json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
            const char *table = json_string_value (
                json_object_get (json_object_get (msg, "order"), "table"));
            CHECK (seq == last[s] + 1, "site %s: seq %lld after %lld",
                   sites[s]->name, (long long) seq, (long long) last[s]);
            CHECK (table && table[0] == sites[s]->name[0],
                   "site %s's kitchen got table %s", sites[s]->name,
                   table ? table : "?");
            last[s] = seq;
            json_decref (msg);
        }
        CHECK (tk_ws_next (ws[s], 300) == NULL, "site %s: nothing more",
               sites[s]->name);
    }
    //  Each writer's store holds its own site's orders only
    for (int s = 0; s < 2; s++) {
        tk_response_t r;
        int status =
            s_get (s_gw, sites[s]->manager, "/api/v1/orders?limit=200", &r);
        json_t *orders = json_object_get (r.json, "orders");
        CHECK (status == 200 && json_array_size (orders) == ORDERS,
               "site %s lists %zu orders: %d %s", sites[s]->name,
               json_array_size (orders), status, r.body);
        for (size_t i = 0; i < json_array_size (orders); i++) {
            const char *table = json_string_value (
                json_object_get (json_array_get (orders, i), "table"));
            CHECK (table && table[0] == sites[s]->name[0],
                   "site %s's store holds table %s", sites[s]->name, table);
        }
        tk_response_free (&r);
    }
    tk_ws_close (&ws_a);
    tk_ws_close (&ws_b);
    printf ("orders_by_site: %d orders each to A and B through one gateway; "
            "each store holds its own %d, each kitchen on the one edge saw "
            "its site's %d in order, gaps 0, other site's 0\n",
            ORDERS, ORDERS, ORDERS);
}

//  A site not served (C, with its own secret): 403 naming it, on the
//  API and on the WebSocket, and nothing done
TK_CASE (site_not_served)
{
    char *c_kitchen = s_mint (s_c_secret, "C", "--staff", "kitchen");
    tk_response_t r;
    int status = s_order (s_gw, c_kitchen, "c-1", "C1", &r);
    CHECK (status == 403 && strstr (r.body, "wrong_site")
               && strstr (r.body, "'C'"),
           "an order of site C: %d %s", status, r.body);
    tk_response_free (&r);
    status = s_get (s_gw, c_kitchen, "/api/v1/menu", &r);
    CHECK (status == 403, "site C's menu: %d", status);
    tk_response_free (&r);
    s_upgrade (s_edge, c_kitchen, &r);
    CHECK (r.status == 403 && strstr (r.body, "'C'"),
           "site C's kitchen on the edge: %d %s", r.status, r.body);
    tk_response_free (&r);
    free (c_kitchen);
    //  nothing reached either store
    s_site_t *sites[] = { &s_a, &s_b };
    for (int s = 0; s < 2; s++) {
        s_get (s_gw, sites[s]->manager, "/api/v1/orders?limit=200", &r);
        CHECK (json_array_size (json_object_get (r.json, "orders")) == ORDERS,
               "site %s still %d orders", sites[s]->name, ORDERS);
        tk_response_free (&r);
    }
    printf ("site_not_served: site C's token: 403 on the API and on /ws\n");
}

//  A WebSocket's site is found again after the handshake, from a copy
//  of its request: a request whose headers would not all fit the copy
//  (a valid site A token past 64 headers, a forged site B one in the
//  query) is refused before any site is chosen
TK_CASE (headers_past_copy)
{
    char *a_kitchen = s_mint (s_a.secret, "A", "--staff", "kitchen");
    char *b_forged = s_mint (s_a.secret, "B", "--staff", "kitchen");
    size_t cap = 16384, n = 0;
    char *request = malloc (cap);
    n += (size_t) snprintf (request + n, cap - n,
                            "GET /ws?token=%s HTTP/1.1\r\nHost: x\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n",
                            b_forged);
    for (int i = 0; i < 64; i++)
        n += (size_t) snprintf (request + n, cap - n, "X-Pad-%d: %d\r\n", i, i);
    n += (size_t) snprintf (request + n, cap - n,
                            "Authorization: Bearer %s\r\n\r\n", a_kitchen);
    tk_response_t r;
    tk_http_raw (s_edge, request, n, &r);
    CHECK (r.status == 431, "an upgrade of 70 headers: %d %s", r.status,
           r.body);
    tk_response_free (&r);
    free (request);
    free (a_kitchen);
    free (b_forged);
    printf ("headers_past_copy: an upgrade with more headers than its copy "
            "keeps: 431, no site chosen\n");
}

//  A token that says site A, signed with B's secret: B's secret cannot
//  speak for A
TK_CASE (other_sites_secret)
{
    char *forged = s_mint (s_b.secret, "A", "--staff", "manager");
    tk_response_t r;
    int status = s_order (s_gw, forged, "forged-1", "A99", &r);
    CHECK (status == 401, "site A's token signed by B: %d %s", status, r.body);
    tk_response_free (&r);
    s_upgrade (s_edge, forged, &r);
    CHECK (r.status == 401, "...on the edge: %d %s", r.status, r.body);
    tk_response_free (&r);
    free (forged);
    s_get (s_gw, s_a.manager, "/api/v1/orders?table=A99", &r);
    CHECK (json_array_size (json_object_get (r.json, "orders")) == 0,
           "no order A99: %s", r.body);
    tk_response_free (&r);
    printf ("other_sites_secret: a token of A signed with B's secret: 401 "
            "on the API and on /ws\n");
}

//  A node of one site (today's config) checks the site too: site/name
//  main by default refuses site A's token, naming both; --site A serves it
TK_CASE (single_site)
{
    int port = tk_port ();
    char http[16], cert[700], key[700];
    snprintf (http, sizeof http, "%d", port);
    snprintf (cert, sizeof cert, "%s/gw2.cert_secret", s_keys);
    snprintf (key, sizeof key, "%s/writer-A.cert", s_keys);
    pid_t gw =
        tk_spawn ("gw-main", "gateway", "--intake", s_a.intake, "--events",
                  s_a.events, "--sync", s_a.sync, "--http-port", http, "--name",
                  "gw2", "--cert", cert, "--writer-key", key, "--secret-file",
                  s_a.secret, "--compat", "1", NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "gw-main healthy");
    tk_response_t r;
    int status = s_order (port, s_a.kitchen, "single-1", "A50", &r);
    CHECK (status == 403 && strstr (r.body, "'A'") && strstr (r.body, "'main'"),
           "site A's token on a node of site main: %d %s", status, r.body);
    tk_response_free (&r);
    //  the seed routes too, with the token in the header or in the path
    status = s_get (port, s_a.kitchen, "/api/orders", &r);
    CHECK (status == 403 && strstr (r.body, "'main'"),
           "a seed route, site A's token: %d %s", status, r.body);
    tk_response_free (&r);
    char path[700];
    snprintf (path, sizeof path, "/compat/%s/api/orders", s_a.kitchen);
    tk_http (port, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 403 && strstr (r.body, "'A'"),
           "a seed route, site A's token in the path: %d %s", r.status, r.body);
    tk_response_free (&r);
    CHECK (tk_kill (gw, 15) == 0, "gw-main stops");
    port = tk_port ();
    snprintf (http, sizeof http, "%d", port);
    gw = tk_spawn ("gw-a", "gateway", "--intake", s_a.intake, "--events",
                   s_a.events, "--sync", s_a.sync, "--http-port", http,
                   "--name", "gw2", "--cert", cert, "--writer-key", key,
                   "--secret-file", s_a.secret, "--site", "A", NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "gw-a healthy");
    status = s_order (port, s_a.kitchen, "single-1", "A50", &r);
    CHECK (status == 201, "site A's token on a node of site A: %d %s", status,
           r.body);
    tk_response_free (&r);
    CHECK (tk_kill (gw, 15) == 0, "gw-a stops");
    printf ("single_site: site A's token on a site-main gateway: 403 naming "
            "both (API and seed routes); with --site A: 201\n");
}

//  The seed routes, their token in the path: each order to its own site's
//  writer, each /ws/orders feed its own site's orders; site C's refused
TK_CASE (seed_routes_by_site)
{
    s_site_t *sites[] = { &s_a, &s_b };
    tk_ws_t *feeds[2];
    char path[900];
    for (int s = 0; s < 2; s++) {
        snprintf (path, sizeof path, "/compat/%s/ws/orders", sites[s]->kitchen);
        feeds[s] = tk_ws_open (s_edge, path);
        CHECK (feeds[s], "site %s's /ws/orders", sites[s]->name);
        json_t *initial = tk_ws_next (feeds[s], 5000);
        const char *type =
            json_string_value (json_object_get (initial, "type"));
        CHECK (type && strcmp (type, "initial") == 0, "initial first");
        json_decref (initial);
    }
    for (int s = 0; s < 2; s++) {
        char body[200];
        snprintf (body, sizeof body,
                  "{\"table\":\"S%s1\",\"items\":[{\"name\":"
                  "\"French Onion Soup\",\"quantity\":1}]}",
                  sites[s]->name);
        snprintf (path, sizeof path, "/compat/%s/api/order", sites[s]->kitchen);
        tk_response_t r;
        tk_http (s_gw, "POST", path, "Content-Type: application/json\r\n", body,
                 &r);
        CHECK (r.status == 201, "site %s's seed order: %d %s", sites[s]->name,
               r.status, r.body);
        tk_response_free (&r);
    }
    for (int s = 0; s < 2; s++) {
        char table[8];
        snprintf (table, sizeof table, "S%s1", sites[s]->name);
        json_t *msg = tk_ws_next (feeds[s], 5000);
        const char *got = json_string_value (
            json_object_get (json_object_get (msg, "order"), "table"));
        CHECK (got && strcmp (got, table) == 0,
               "site %s's feed: its own order %s, got %s", sites[s]->name,
               table, got ? got : "none");
        json_decref (msg);
        CHECK (tk_ws_next (feeds[s], 300) == NULL, "site %s's feed: no more",
               sites[s]->name);
        tk_ws_close (&feeds[s]);
        //  its list, from its own writer
        snprintf (path, sizeof path, "/compat/%s/api/orders",
                  sites[s]->kitchen);
        tk_response_t r;
        tk_http (s_gw, "GET", path, NULL, NULL, &r);
        CHECK (r.status == 200 && strstr (r.body, table)
                   && !strstr (r.body, s == 0 ? "SB1" : "SA1"),
               "site %s's seed list: %d %s", sites[s]->name, r.status, r.body);
        tk_response_free (&r);
    }
    char *c_kitchen = s_mint (s_c_secret, "C", "--staff", "kitchen");
    snprintf (path, sizeof path, "/compat/%s/api/orders", c_kitchen);
    tk_response_t r;
    tk_http (s_gw, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 403 && strstr (r.body, "'C'"),
           "site C on a seed route: %d %s", r.status, r.body);
    tk_response_free (&r);
    snprintf (path, sizeof path, "/compat/%s/ws/orders", c_kitchen);
    CHECK (tk_ws_open (s_edge, path) == NULL, "site C's /ws/orders refused");
    free (c_kitchen);
    printf ("seed_routes_by_site: a seed order each to A and B, token in the "
            "path: each in its own store and on its own site's /ws/orders "
            "only; site C refused\n");
}

//  B's writer killed: A goes on (201), B's orders get 503, /healthz says
//  which site is down
TK_CASE (one_writer_down)
{
    CHECK (tk_kill (s_b.writer, 9) == 128 + 9, "writer B killed");
    s_b.writer = 0;
    CHECK (s_health_is (s_gw, "degraded", 15000), "gateway: degraded");
    CHECK (s_health_is (s_edge, "degraded", 15000), "edge: degraded");
    json_t *health = tk_get_json (s_gw, "/healthz", 200);
    const char *reason = json_string_value (json_object_get (health, "reason"));
    CHECK (reason && strstr (reason, "site 'B'"), "reason names B: %s",
           reason ? reason : "none");
    CHECK (tk_json_int (health, "sites_ok") == 1, "sites_ok 1");
    json_decref (health);
    health = tk_get_json (s_gw, "/healthz?site=B", 503);
    CHECK (health, "/healthz?site=B: 503");
    json_decref (health);
    health = tk_get_json (s_gw, "/healthz?site=A", 200);
    CHECK (health, "/healthz?site=A: 200");
    json_decref (health);
    int ok = 0, unavailable = 0;
    for (int i = 0; i < 5; i++) {
        char key[32], table[16];
        tk_response_t r;
        snprintf (key, sizeof key, "down-%d", i);
        snprintf (table, sizeof table, "A%d", 60 + i);
        ok += s_order (s_gw, s_a.kitchen, key, table, &r) == 201;
        tk_response_free (&r);
        snprintf (table, sizeof table, "B%d", 60 + i);
        int status = s_order (s_gw, s_b.kitchen, key, table, &r);
        unavailable += status == 503;
        CHECK (status == 503, "site B without its writer: %d %s", status,
               r.body);
        tk_response_free (&r);
    }
    CHECK (ok == 5, "site A took %d of 5", ok);
    printf ("one_writer_down: writer B killed: A 5 of 5 orders 201, B %d of "
            "5 503, /healthz degraded naming site 'B'\n",
            unavailable);
}

//  A bad sites file: the node names the site and the key, and does not
//  start
TK_CASE (bad_sites_file)
{
    static const struct {
        const char *text, *words[2];
    } cases[] = {
        { "A\n    endpoints/intake = tcp://127.0.0.1:1\n"
          "    endpoints/events = tcp://127.0.0.1:2\n"
          "    auth/secret_file = /x\n",
          { "site 'A'", "endpoints/sync: missing" } },
        { "A\n    http/port = 1\n", { "site 'A'", "http/port" } },
        { "A\n    endpoints/sync = http://x\n",
          { "site 'A': endpoints/sync", "tcp://" } },
    };
    char path[700];
    snprintf (path, sizeof path, "%s/bad-sites.cfg", tk_dir ());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_write (path, cases[i].text);
        char *out;
        int rc = tk_run (&out, "gateway", "--sites", path, "--secret-file", "",
                         "--http-port", "1", NULL);
        CHECK (rc == 1 && strstr (out, cases[i].words[0])
                   && strstr (out, cases[i].words[1]),
               "bad sites file %zu: %d %s", i, rc, out);
        free (out);
    }
    printf ("bad_sites_file: %zu bad files refused, each naming the site "
            "and the key\n",
            sizeof cases / sizeof cases[0]);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (orders_by_site),
                                     TK_CASE_ENTRY (site_not_served),
                                     TK_CASE_ENTRY (headers_past_copy),
                                     TK_CASE_ENTRY (other_sites_secret),
                                     TK_CASE_ENTRY (single_site),
                                     TK_CASE_ENTRY (seed_routes_by_site),
                                     TK_CASE_ENTRY (one_writer_down),
                                     TK_CASE_ENTRY (bad_sites_file),
                                     { 0 } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "sites");
    tk_run_cases (s_cases);
    free (s_a.kitchen);
    free (s_a.manager);
    free (s_b.kitchen);
    free (s_b.manager);
    return tk_done ();
}
