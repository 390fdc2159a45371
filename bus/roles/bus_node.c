/*  bus_node.c — start a role, wait for a signal, stop it.

    Threads of a node (each part's own file has its table):

      main      owns every part (s_node_t): starts them, waits in
                sigwait, stops them in order (s_stop)
      writer    intake and sync actors (bus_writer.c)
      gateway   listener actor and link pinger (bus_gateway.c); on a
                gateway node, libmicrohttpd's event thread(s) and
                http/threads pool threads (bus_mhd.c)
      edge      its actor, edge/senders fan-out threads and link pinger
                (bus_edge.c); libmicrohttpd's event thread(s), the
                http/threads pool and a thread per WebSocket (bus_mhd.c,
                bus_mhd_ws.c)
      up        all of these in one process; one libmicrohttpd server
                serves the gateway's routes and the edge's endpoints
      ZeroMQ    czmq's I/O thread

    Roles hand each other work only as ZeroMQ messages (PUSH to PULL, PUB
    to SUB, DEALER to ROUTER), over inproc:// in `up` with the code that
    talks tcp:// between hosts.  Inside a node the HTTP server's threads
    call into the gateway and the edge.  SIGINT and SIGTERM are blocked
    before any thread starts, so only main's sigwait takes them.  */

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <czmq.h>
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_api.h"
#include "orderbus/bus_auth.h"
#include "orderbus/bus_compat.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_member.h"
#include "orderbus/bus_mhd.h"
#include "orderbus/bus_sites.h"
#include "orderbus/bus_tls.h"
#include "orderbus/bus_node.h"
#include "orderbus/bus_replica.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_writer.h"

typedef struct {
    const bus_config_t *config;
    bus_writer_t *writer;
    bus_member_t *member;     //  a writer with leader/etcd: its writer is
                              //  the member's, while it leads
    bus_replica_t *replica;   //  a replica node's only part
    bus_sites_t *sites;       //  its secrets, and each site's gateway or edge
    bus_mhd_t *mhd;           //  libmicrohttpd: every node's but a writer's
    bus_api_t *api;
    bus_compat_t *compat;   //  the seed systems' routes, when compat is on
} s_node_t;

static bool
s_has (const s_node_t *node, bus_role_t role)
{
    return node->config->role == role || node->config->role == BUS_ROLE_UP;
}

//  The gateway's routes on router's server (up has them too).  0, or -1
//  with err set.
static int
s_routes (s_node_t *node, bus_req_router_t *router, char *err, size_t err_cap)
{
    const bus_config_t *config = node->config;
    if (s_has (node, BUS_ROLE_GATEWAY)) {
        if (bus_sites_start_gateways (node->sites, err, err_cap) != 0)
            return -1;
        bus_gateway_t **gateways = bus_sites_gateways (node->sites);
        bus_auth_t *auth = bus_sites_auth (node->sites);
        node->api = bus_api_new (gateways, auth, router);
        if (config->compat)
            node->compat = bus_compat_new (gateways, auth, router);
        if (!node->api || (config->compat && !node->compat)) {
            snprintf (err, err_cap, "out of memory");
            return -1;
        }
    }
    return 0;
}

//  A gateway, an edge or up serves with libmicrohttpd, its routes (and an
//  edge's endpoints) in place before the first connection.
static int
s_start_server (s_node_t *node, char *err, size_t err_cap)
{
    const bus_config_t *config = node->config;
    node->mhd = bus_mhd_new (config);
    if (!node->mhd) {
        snprintf (err, err_cap, "out of memory");
        return -1;
    }
    bus_req_router_t *router = bus_mhd_router (node->mhd);
    if (s_routes (node, router, err, err_cap) != 0)
        return -1;
    if (s_has (node, BUS_ROLE_EDGE)
        && bus_sites_start_edges (node->sites, bus_mhd_ws_router (node->mhd),
                                  //  the seeds' /ws/orders
                                  config->compat ? bus_compat_ws_feed () : NULL,
                                  err, err_cap)
               != 0)
        return -1;
    bus_req_route_t health = { NULL, "/healthz", false, bus_sites_health,
                               node->sites };
    bus_req_router_add (router, &health);
    return bus_mhd_start (node->mhd, err, err_cap);
}

//  Read every page of the writer's data before serving it: LMDB aborts
//  on a damaged page it reads (an assertion) rather than failing, and a
//  writer that starts on one would die at the first query that touches
//  it, again after each restart.  bus_store_verify reads in a child
//  process, which is why it runs here, before this process has a thread.
//  0, or -1 with err set.
static int
s_verify (const bus_config_t *config, char *err, size_t err_cap)
{
    bus_store_report_t report;
    int64_t start = zclock_mono ();
    int rc = bus_store_verify (config->data_dir, &report);
    //  A new directory has nothing to read; whether an older or missing
    //  data.mdb may start is bus_store_open's to say (--accept-restore)
    if (rc == BUS_ERR_NOT_FOUND || rc == BUS_ERR_ROLLED_BACK)
        return 0;
    if (rc == 0) {
        zsys_info ("writer: %s verified in %" PRId64 " ms: %" PRIu64
                   " events, %" PRIu64 " orders, %" PRIu64 " keys",
                   config->data_dir, zclock_mono () - start, report.records,
                   report.orders, report.keys);
        return 0;
    }
    //  (bus_error_set: the path may be long, and what is cut is the end)
    if (rc != BUS_ERR_DAMAGED)
        return bus_error_set (err, err_cap, -1,
                              "cannot read data directory '%s': %s",
                              config->data_dir, bus_strerror (rc));
    return bus_error_set (
        err, err_cap, -1,
        "%s/data.mdb is damaged: %s.  Restore the data directory from a "
        "backup ('orderbus verify --data DIR' checks one)",
        config->data_dir,
        *report.first_bad ? report.first_bad : bus_strerror (rc));
}

static int
s_start (s_node_t *node, char *err, size_t err_cap)
{
    const bus_config_t *config = node->config;
    if (config->role == BUS_ROLE_REPLICA)
        return (node->replica = bus_replica_new (config, err, err_cap)) ? 0
                                                                        : -1;
    //  A writer group's member (docs/failover.md); a lone writer: NULL
    if (config->role == BUS_ROLE_WRITER && *config->leader_etcd)
        return (node->member = bus_member_new (config, err, err_cap)) ? 0 : -1;
    if (s_has (node, BUS_ROLE_WRITER)
        && !(node->writer = bus_writer_new (config, err, err_cap)))
        return -1;
    if (config->role == BUS_ROLE_WRITER)
        return 0;
    //  ZeroMQ's 1,024 sockets are ~120 sites' worth: before the first
    if (*config->sites_file)
        zsys_set_max_sockets (0);   //  the most the system allows
    node->sites = bus_sites_new (config, err, err_cap);
    if (!node->sites)
        return -1;
    return s_start_server (node, err, err_cap);
}

//  The server goes first: its handlers use the gateway and the edge.  A
//  gateway node's waits for the answers to commands still out, which the
//  gateway gives by their deadline.  The gateway goes before the routes:
//  a command it still holds is answered through them.
static void
s_stop (s_node_t *node)
{
    bus_replica_destroy (&node->replica);
    bus_member_destroy (&node->member);
    //  A request on a query thread may wait for the writer twice (a menu
    //  fetch, then its command), each at most ack_timeout_ms
    if (!bus_mhd_destroy (&node->mhd,
                          2 * node->config->ack_timeout_ms + 1000)) {
        //  Its threads may still call the gateway or the edge: leave
        //  them all to the process's end, the writer too (the store is
        //  safe: what was acknowledged is on disk)
        zsys_error ("node: stopped without freeing what the HTTP server "
                    "still uses");
        return;
    }
    bus_sites_destroy (&node->sites);   //  edges, gateways, then secrets
    bus_compat_destroy (&node->compat);
    bus_api_destroy (&node->api);
    bus_writer_destroy (&node->writer);
}

//  A token for the demo's URLs (caller frees), or NULL.
static char *
s_demo_token (const bus_config_t *config, bus_token_role_t role,
              const char *table)
{
    char err[256];
    bus_secret_t *secret =
        bus_secret_load (config->secret_file, err, sizeof err);
    bus_claims_t claims = { role, "", "", zclock_time () + 12 * 3600 * 1000LL };
    bus_strlcpy (claims.site, config->site, sizeof claims.site);
    bus_strlcpy (claims.table, table, sizeof claims.table);
    char *token = secret ? bus_token_mint (secret, &claims) : NULL;
    bus_secret_destroy (&secret);
    return token;
}

static void
s_print_urls (const bus_config_t *config)
{
    char base[128];
    bool tls = *config->tls_cert != '\0';
    snprintf (base, sizeof base, "%s://%s:%d", tls ? "https" : "http",
              config->http_listen, config->http_port);
    char *kitchen = s_demo_token (config, BUS_TOKEN_KITCHEN, "");
    char *pad = s_demo_token (config, BUS_TOKEN_PAD, "T1");
    char *manager = s_demo_token (config, BUS_TOKEN_MANAGER, "");
    printf ("orderbus is up.  Open (tokens valid 12 h; mint more with "
            "`orderbus token`):\n"
            "  kitchen display   %s/kitchen?token=%s\n"
            "  table T1 pad      %s/pad?token=%s\n"
            "  dashboard         %s/dashboard?token=%s\n"
            "  API               %s/api/v1/  (Authorization: Bearer <token>)\n"
            "  live events       %s://%s:%d/ws?token=<token>\n"
            "  health            %s/healthz\n"
            "Data in %s, secret in %s.  Ctrl-C stops.\n",
            base, kitchen ? kitchen : "?", base, pad ? pad : "?", base,
            manager ? manager : "?", base, tls ? "wss" : "ws",
            config->http_listen, config->http_port, base, config->data_dir,
            config->secret_file);
    //  A seed client cannot send a header: its token goes in its base URL
    if (config->compat)
        printf ("  seed clients      %s/compat/%s  (base URL: every table; "
                "docs/compat.md)\n",
                base, kitchen ? kitchen : "?");
    fflush (stdout);
    free (kitchen);
    free (pad);
    free (manager);
}

//  `up` always runs with a secret: its own, in the data directory, made
//  on first start.  A data directory made here is the owner's alone
//  (0700), as the store makes it.  0, or -1 with err set.
static int
s_up_secret (bus_config_t *config, char *err, size_t err_cap)
{
    if (*config->secret_file)
        return 0;
    int n = snprintf (config->secret_file, sizeof config->secret_file,
                      "%.1000s/secret", config->data_dir);
    if (n >= (int) sizeof config->secret_file) {
        snprintf (err, err_cap, "data directory path is too long");
        return -1;
    }
    if (zsys_file_exists (config->secret_file))
        return 0;
    struct stat st;
    if (stat (config->data_dir, &st) != 0
        && (zsys_dir_create ("%s", config->data_dir) != 0
            || chmod (config->data_dir, 0700) != 0)) {
        snprintf (err, err_cap, "cannot create data directory '%.400s'",
                  config->data_dir);
        return -1;
    }
    return bus_secret_create (config->secret_file, err, err_cap) == 0 ? 0 : -1;
}

//  A gateway or an edge without a secret would let anyone do anything:
//  it refuses to start unless told to run open by the flag named for the
//  risk, and then says so loudly.  0, or -1 with err set.
static int
s_auth_policy (const bus_config_t *config, char *err, size_t err_cap)
{
    if (config->role != BUS_ROLE_GATEWAY && config->role != BUS_ROLE_EDGE)
        return 0;
    bool secret = *config->secret_file != '\0';
    if (*config->sites_file)   //  a secret per site (bus_sites_new checks)
        return 0;
    if (!secret && !config->insecure_no_auth) {
        snprintf (err, err_cap,
                  "no secret to check tokens with: set auth/secret_file "
                  "(--secret-file FILE; create one with 'orderbus token "
                  "--secret-file FILE --create-secret'), or run open to "
                  "anyone on the network with --insecure-no-auth "
                  "(auth/insecure_no_auth = 1; never on a real site)");
        return -1;
    }
    if (secret && config->insecure_no_auth) {
        snprintf (err, err_cap,
                  "auth/secret_file (--secret-file) and "
                  "auth/insecure_no_auth (--insecure-no-auth) contradict "
                  "each other: give one");
        return -1;
    }
    if (!secret)
        zsys_warning ("%s: INSECURE: --insecure-no-auth: running OPEN, with "
                      "no secret: anyone who reaches this port may do "
                      "anything a manager may (orders, 86, reports); never "
                      "run this way where guests or strangers reach it",
                      bus_role_name (config->role));
    return 0;
}

//  A server on TLS checks its certificate and key before anything
//  starts: a bad file is named, and nothing is left half started.  0, or
//  -1 with err set.
static int
s_tls_policy (const bus_config_t *config, char *err, size_t err_cap)
{
    if (!*config->tls_cert && !*config->tls_key)
        return 0;
    if (bus_tls_check (config->tls_cert, config->tls_key, err, err_cap) != 0)
        return -1;
    zsys_info ("%s: %s only on port %d (tls/cert %s)",
               bus_role_name (config->role),
               config->role == BUS_ROLE_GATEWAY ? "HTTPS" : "HTTPS and WSS",
               config->http_port, config->tls_cert);
    return 0;
}

int
bus_node_run (const bus_config_t *settings)
{
    bus_config_t copy = *settings;
    bus_config_t *config = &copy;
    s_node_t node = { .config = config };
    char err[512] = "";
    if (s_tls_policy (config, err, sizeof err) != 0
        || (config->role == BUS_ROLE_UP
            && s_up_secret (config, err, sizeof err))
        || s_auth_policy (config, err, sizeof err) != 0
        || ((s_has (&node, BUS_ROLE_WRITER) || config->role == BUS_ROLE_REPLICA)
            && s_verify (config, err, sizeof err) != 0)
        || s_start (&node, err, sizeof err) != 0) {
        fprintf (stderr, "orderbus %s: %s\n", bus_role_name (config->role),
                 err);
        s_stop (&node);
        return 1;
    }
    if (config->role == BUS_ROLE_UP)
        s_print_urls (config);
    zsys_info ("%s: running (memory allocator: %s)",
               bus_role_name (config->role), bus_alloc_name ());
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    int sig = 0;
    sigwait (&signals, &sig);
    //  A replica that cannot follow raised the signal itself
    bool failed = bus_replica_failed (node.replica, err, sizeof err)
                  || bus_member_failed (node.member, err, sizeof err);
    if (!failed)
        zsys_info ("%s: %s received, stopping", bus_role_name (config->role),
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
    s_stop (&node);
    if (failed)
        fprintf (stderr, "orderbus %s: %s\n", bus_role_name (config->role),
                 err);
    return failed ? 1 : 0;
}
