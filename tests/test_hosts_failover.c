/*  test_hosts_failover — a writer group failing over in the multi-host
    rig (issue 16; docs/failover.md, docs/testing.md).  Every node on a
    host of its own (tests/tk_netns.h): etcd; members w1 (primary) and w2
    (its synchronous standby, and it w2's); a read replica "rr" (an
    `orderbus replica` following the group, asynchronous, serving reads:
    --serve); gateways gw1..3 and edges edge1..2 given both members'
    endpoints, gw3 reading from rr (--reads); the clients.  Under
    load from the client host (each order retried with its key until 201,
    every operation in the kit's ledger), kitchens following both edges:

      kill9     w1's link to w2 cut until w1's store is past w2's (so w1
                holds batches w2 never got: its unacknowledged tail, also
                checked against w2's epoch base), then w1 killed -9 and
                its host's link cut: w2 takes over.  Takeover time (the last
                201 of w1 to the first of w2; target < 3 s, fails only
                above 10 s), the history check, kitchens gap-free with no
                resync, one leadership per epoch from both members' logs
                and w2's store; a list through gw3 answered by rr
                (X-Orderbus-Behind-Seqs present) after the takeover
      rejoin    w1's host healed and w1 started again: it follows w2, its
                tail moved aside; w1, w2 and rr agree byte for byte up to
                the last seq
      partition w2 (leading) cut from etcd's host only, not from the
                gateways: it stops acknowledging before its lease can
                expire, w1 takes over, nothing acknowledged lost, rr
                answers gw3's list again
      join      a gateway host and an edge host added at run time: orders
                through the new gateway, the new kitchen sees the same
                events as edge1's

    Every link is CURVE (docs/failover.md, "Keys of a group"): each node
    its own certificate (tk_keys_new, s_make_keys), each member's allow
    directory the other member's writer certificate and every gateway's,
    edge's and rr's; gateways, edges and rr pin one key per member, in
    the order of the endpoint lists, a member the other's.  The members
    reach etcd over TLS with client certificates (s_etcd_tls; a CA made
    with the openssl command).  No --insecure-* flag anywhere: the start
    case checks every node's log says CURVE (s_check_curve), and rr's
    following of the group across the takeover is checked under it
    (rejoin: rr attached to w2 and its log equal to the members').
    Every node of a role starts in one function (s_start_*).  Skips (77)
    without root, namespaces, an etcd binary or the openssl command.  */

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_etcd.h"
#include "testkit.h"
#include "tk_etcd.h"
#include "tk_netns.h"
#include "tk_store.h"

#define CHECK    TK_CHECK
#define RETRY_MS 30000   //  per order: a client retries its key this long
#define PAGE     1000
#define TTL_S    "2"   //  the leader lease, as integration_failover's

//  Every member's ports on its host
#define INTAKE_PORT 5551
#define EVENTS_PORT 5552
#define SYNC_PORT   5553
#define REPL_PORT   5554
#define SERVE_PORT  5555   //  the read replica's replica/sync

//  Link timing: the group's, so nodes notice a dead member as it does
#define S_TIMING_ARGS "--heartbeat-ms", "100", "--link-timeout-ms", "1000"

typedef struct {
    const char *name;
    tk_host_t *host;
    pid_t pid;
    char intake[TK_ENDPOINT_LEN], events[TK_ENDPOINT_LEN],
        sync[TK_ENDPOINT_LEN], repl[TK_ENDPOINT_LEN], data[600];
    char cert[700], pub[700], allow[700];   //  its keys (s_make_keys)
    char etcd_cert[700], etcd_key[700];     //  its client cert for etcd
} s_member_t;

static const char *const s_gateway_names[] = { "gw1", "gw2", "gw3", "gw4" };
static const char *const s_edge_names[] = { "edge1", "edge2", "edge3" };

static tk_etcd_t s_etcd;
static tk_host_t *s_etcd_host, *s_clients;
static s_member_t s_w1 = { .name = "w1" }, s_w2 = { .name = "w2" };
static tk_node_t s_rr;   //  the read replica (no HTTP)
static char s_rr_data[600], s_menu[600], s_rr_serve[TK_ENDPOINT_LEN];
//  Both members' endpoints, for gateways, edges and the replica
static char s_intakes[200], s_eventses[200], s_syncs[200], s_repls[200];
//  Every node's keys (NAME.cert, NAME.cert_secret), the members' public
//  certificates in the order of those lists, etcd's CA
static char s_keys[600], s_group_keys[1500], s_etcd_ca[700], s_rr_allow[700];
static char s_etcd_cert[700], s_etcd_key[700];
static tk_node_t s_gw[4], s_edge[3];
//  The gateway that reads from rr (lists, orders by id, reports); gw1,
//  which the history checks read through, reads from the leader
#define S_READER 2
static int s_gw_count, s_edge_count;
static tk_follower_t *s_kitchen[3];
static tk_ledger_t *s_ledger;

//  ---------------------------------------------------------------------
//  Nodes: one function per role

static s_member_t *
s_other (const s_member_t *m)
{
    return m == &s_w1 ? &s_w2 : &s_w1;
}

//  out[700] = the keys dir's name + suffix (".cert", ".cert_secret")
static char *
s_key (char *out, const char *name, const char *suffix)
{
    snprintf (out, 700, "%s/%s%s", s_keys, name, suffix);
    return out;
}

//  Every node's keypair, made before any node starts (keys are read at
//  start: gw4 and edge3, added at run time, are in the allow directories
//  from the first); each member's allow directory the other member's
//  public certificate and every gateway's, edge's and rr's, never its own
static void
s_make_keys (void)
{
    snprintf (s_keys, sizeof s_keys, "%s/keys", tk_dir ());
    tk_keys_new (s_keys, "w1", "writer");
    tk_keys_new (s_keys, "w2", "writer");
    tk_keys_new (s_keys, "rr", "replica");
    for (int i = 0; i < 4; i++)
        tk_keys_new (s_keys, s_gateway_names[i], "gateway");
    for (int i = 0; i < 3; i++)
        tk_keys_new (s_keys, s_edge_names[i], "edge");
    s_member_t *ms[2] = { &s_w1, &s_w2 };
    for (int i = 0; i < 2; i++) {
        s_member_t *m = ms[i];
        s_key (m->cert, m->name, ".cert_secret");
        s_key (m->pub, m->name, ".cert");
        snprintf (m->allow, sizeof m->allow, "%s/%s-allow", tk_dir (), m->name);
        CHECK (mkdir (m->allow, 0700) == 0, "mkdir %s", m->allow);
        const char *names[] = { ms[1 - i]->name, "rr",    "gw1",
                                "gw2",           "gw3",   "gw4",
                                "edge1",         "edge2", "edge3" };
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
            char from[700], to[800];
            snprintf (to, sizeof to, "%s/%s.cert", m->allow, names[j]);
            tk_copy_file (s_key (from, names[j], ".cert"), to);
        }
    }
    //  rr's read socket lets in the gateways and edges
    snprintf (s_rr_allow, sizeof s_rr_allow, "%s/rr-allow", tk_dir ());
    CHECK (mkdir (s_rr_allow, 0700) == 0, "mkdir %s", s_rr_allow);
    const char *readers[] = { "gw1",   "gw2",   "gw3",  "gw4",
                              "edge1", "edge2", "edge3" };
    for (size_t j = 0; j < sizeof readers / sizeof readers[0]; j++) {
        char from[700], to[800];
        snprintf (to, sizeof to, "%s/%s.cert", s_rr_allow, readers[j]);
        tk_copy_file (s_key (from, readers[j], ".cert"), to);
    }
    //  One key per member, in the order of s_intakes, s_eventses, ...
    snprintf (s_group_keys, sizeof s_group_keys, "%s,%s", s_w1.pub, s_w2.pub);
}

//  etcd on TLS at ip, asking for client certificates: a CA, etcd's
//  certificate for ip (good for clientAuth too: etcd 3.4's JSON gateway
//  calls its own gRPC port with it, and the kit's readiness check shows
//  it), and a client certificate per member, by the openssl command
static void
s_etcd_tls (const char *ip)
{
    char dir[600];
    snprintf (dir, sizeof dir, "%s/etcd-tls", tk_dir ());
    CHECK (mkdir (dir, 0700) == 0, "mkdir %s", dir);
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    char command[4096];
    int n = snprintf (
        command, sizeof command,
        "cd %s && umask 077 && ( "
        "printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,"
        "clientAuth\n' > server.ext && "
        "printf 'extendedKeyUsage=clientAuth\n' > client.ext && "
        "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=tk-ca && "
        "openssl req %s -keyout etcd.key -out etcd.csr -subj /CN=etcd && "
        "openssl x509 -req -in etcd.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out etcd.pem -days 2 -extfile server.ext && "
        "for m in w1 w2; do openssl req %s -keyout $m.key -out $m.csr "
        "-subj /CN=$m && openssl x509 -req -in $m.csr -CA ca.pem -CAkey "
        "ca.key -CAcreateserial -out $m.pem -days 2 -extfile client.ext "
        "|| exit 1; done ) > openssl.log 2>&1",
        dir, ip, ec, ec, ec);
    CHECK (n > 0 && (size_t) n < sizeof command && system (command) == 0,
           "etcd's certificates made (see %s/openssl.log)", dir);
    snprintf (s_etcd_ca, sizeof s_etcd_ca, "%s/ca.pem", dir);
    snprintf (s_etcd_cert, sizeof s_etcd_cert, "%s/etcd.pem", dir);
    snprintf (s_etcd_key, sizeof s_etcd_key, "%s/etcd.key", dir);
    s_etcd.cert = s_etcd_cert;
    s_etcd.key = s_etcd_key;
    s_etcd.client_ca = s_etcd_ca;
    s_etcd.ca = s_etcd_ca;
    s_member_t *ms[2] = { &s_w1, &s_w2 };
    for (int i = 0; i < 2; i++) {
        snprintf (ms[i]->etcd_cert, sizeof ms[i]->etcd_cert, "%s/%s.pem", dir,
                  ms[i]->name);
        snprintf (ms[i]->etcd_key, sizeof ms[i]->etcd_key, "%s/%s.key", dir,
                  ms[i]->name);
    }
}

static void
s_member_init (s_member_t *m)
{
    m->host = tk_host_add (m->name);
    tk_host_endpoint (m->host, INTAKE_PORT, m->intake);
    tk_host_endpoint (m->host, EVENTS_PORT, m->events);
    tk_host_endpoint (m->host, SYNC_PORT, m->sync);
    tk_host_endpoint (m->host, REPL_PORT, m->repl);
    snprintf (m->data, sizeof m->data, "%s/%s-data", tk_dir (), m->name);
}

//  A member: the other is its synchronous standby and its peer
static void
s_start_member (s_member_t *m)
{
    const s_member_t *peer = s_other (m);
    m->pid = tk_host_spawn (
        m->host, m->name, "writer", "--data", m->data, "--menu", s_menu,
        "--intake", m->intake, "--events", m->events, "--sync", m->sync,
        "--replicate", m->repl, "--sync-replica", peer->name,
        "--sync-timeout-ms", "500", "--sync-fallback", "async", S_TIMING_ARGS,
        "--leader-etcd", s_etcd.url, "--leader-etcd-ca", s_etcd_ca,
        "--leader-etcd-cert", m->etcd_cert, "--leader-etcd-key", m->etcd_key,
        "--leader-group", "g", "--leader-name", m->name, "--leader-peers",
        peer->repl, "--leader-ttl-s", TTL_S, "--cert", m->cert, "--allow",
        m->allow, "--writer-key", peer->pub, NULL);
}

static void
s_start_replica (void)
{
    s_rr.host = tk_host_add ("rr");
    snprintf (s_rr_data, sizeof s_rr_data, "%s/rr-data", tk_dir ());
    tk_host_endpoint (s_rr.host, SERVE_PORT, s_rr_serve);
    char cert[700];
    s_rr.pid = tk_host_spawn (
        s_rr.host, "rr", "replica", "--data", s_rr_data, "--upstream", s_repls,
        "--replica-name", "rr", "--serve", s_rr_serve, S_TIMING_ARGS, "--cert",
        s_key (cert, "rr", ".cert_secret"), "--writer-key", s_group_keys,
        "--allow", s_rr_allow, NULL);
}

//  A new host called name with a gateway or an edge on it, healthy as
//  seen from the client host; reads: its endpoints/reads (NULL: none)
static tk_node_t
s_start_node (const char *role, const char *name, int port, const char *reads)
{
    tk_node_t node = { .host = tk_host_add (name), .port = port };
    char http[16], web[600], cert[700], rr_pub[700];
    snprintf (http, sizeof http, "%d", port);
    s_key (cert, name, ".cert_secret");
    snprintf (web, sizeof web, "%s/web", tk_source ());
    const char *addr = tk_host_addr (node.host);
    if (strcmp (role, "gateway") == 0)
        node.pid = tk_host_spawn (
            node.host, name, "gateway", "--intake", s_intakes, "--events",
            s_eventses, "--sync", s_syncs, "--listen", addr, "--http-port",
            http, "--name", name, "--table-rate", "1000", "--table-burst",
            "10000", "--ack-timeout-ms", "2000", S_TIMING_ARGS, "--cert", cert,
            "--writer-key", s_group_keys,
            //  without reads, the list ends here
            reads ? "--reads" : NULL, reads, "--reads-key",
            s_key (rr_pub, "rr", ".cert"), NULL);
    else
        node.pid = tk_host_spawn (
            node.host, name, "edge", "--events", s_eventses, "--sync", s_syncs,
            "--listen", addr, "--http-port", http, "--web", web, S_TIMING_ARGS,
            "--cert", cert, "--writer-key", s_group_keys, NULL);
    tk_node_wait (&node, name);
    return node;
}

static void
s_add_gateway (void)
{
    int i = s_gw_count++;
    s_gw[i] = s_start_node ("gateway", s_gateway_names[i], 8081 + i,
                            i == S_READER ? s_rr_serve : NULL);
}

static void
s_add_edge (void)
{
    int i = s_edge_count++;
    s_edge[i] = s_start_node ("edge", s_edge_names[i], 8181 + i, NULL);
    s_kitchen[i] = tk_kitchen_new (s_edge[i].port, s_edge_names[i]);
}

//  ---------------------------------------------------------------------
//  Load and checks

//  threads clients per gateway of gws[count], each load starting on its
//  own gateway and failing over to the next; max_orders per load (0:
//  until tk_load_stop)
static void
s_loads_start (tk_load_t **loads, const tk_node_t *gws, int count, int threads,
               int max_orders)
{
    int ports[4];
    for (int i = 0; i < count; i++)
        ports[i] = gws[i].port;
    tk_load_opts_t o = { .threads = threads,
                         .prefix = "f",
                         .lines = 2,
                         .max_orders = max_orders,
                         .retry_ms = RETRY_MS };
    tk_loads_start (s_ledger, loads, ports, count, &o);
}

static void
s_loads_stop (tk_load_t **loads)
{
    for (int i = 0; i < s_gw_count; i++)
        tk_load_stop (&loads[i]);
}

//  The history against the store (through gw1), and every kitchen at the
//  last seq with no gap, no duplicate and no resync; the last seq
static json_int_t
s_check_all (const char *what)
{
    tk_tally_t t;
    tk_ledger_check (s_ledger, s_gw[0].port, PAGE, what, &t);
    for (int i = 0; i < s_edge_count; i++)
        tk_kitchen_check (what, s_kitchen[i], t.max_seq);
    return t.max_seq;
}

//  Every edge followed the group across its takeovers without a resync
static void
s_check_edges (const char *what, json_int_t changes)
{
    for (int i = 0; i < s_edge_count; i++) {
        json_t *health = tk_get_json (s_edge[i].port, "/healthz", 200);
        CHECK (health, "%s's /healthz", s_edge_names[i]);
        json_int_t got = tk_json_int (health, "edge.epoch_changes");
        const char *resync = json_string_value (
            json_object_get (json_object_get (health, "edge"), "resync"));
        printf ("%s: %s epoch_changes %lld, resync '%s'\n", what,
                s_edge_names[i], (long long) got, resync ? resync : "?");
        CHECK (got == changes && resync && !*resync,
               "%s continued across %lld takeover(s) without a resync",
               s_edge_names[i], (long long) changes);
        json_decref (health);
    }
}

//  A list read through gw3 is answered by rr (not the leader instead):
//  X-Orderbus-Behind-Seqs present, gateway.reads.replica up by one.
//  Right after a takeover rr may still be re-attaching (unavailable:
//  the leader answers), so it is asked again for a while.
static void
s_check_replica_reads (const char *what)
{
    int port = s_gw[S_READER].port;
    char behind[32] = "";
    json_int_t before = 0, after = 0;
    for (int64_t end = tk_now_ms () + 15000; !*behind && tk_now_ms () < end;
         usleep (200 * 1000)) {
        json_t *stats = tk_get_json (port, "/api/v1/stats", 200);
        before = tk_json_int (stats, "gateway.reads.replica");
        json_decref (stats);
        tk_response_t r;
        tk_http (port, "GET", "/api/v1/orders?limit=10", NULL, NULL, &r);
        CHECK (r.status == 200, "%s: a list through %s: %d", what,
               s_gateway_names[S_READER], r.status);
        tk_header (&r, "X-Orderbus-Behind-Seqs", behind, sizeof behind);
        tk_response_free (&r);
        stats = tk_get_json (port, "/api/v1/stats", 200);
        after = tk_json_int (stats, "gateway.reads.replica");
        json_decref (stats);
    }
    printf ("%s: a list through %s answered by rr: Behind-Seqs '%s', "
            "gateway.reads.replica %lld -> %lld\n",
            what, s_gateway_names[S_READER], behind, (long long) before,
            (long long) after);
    CHECK (*behind && after == before + 1,
           "%s: rr answered %s's list (Behind-Seqs '%s', reads.replica "
           "%lld -> %lld)",
           what, s_gateway_names[S_READER], behind, (long long) before,
           (long long) after);
}

//  The epochs a member's log says it led in ("leading group g as epoch")
static size_t
s_epochs (const char *name, uint64_t *epochs, size_t cap)
{
    static const char *const text = "leading group g as epoch ";
    char *log = tk_log_text (name);
    size_t n = 0;
    for (const char *at = log; n < cap && (at = strstr (at, text));) {
        at += strlen (text);
        epochs[n++] = strtoull (at, NULL, 16);
    }
    free (log);
    return n;
}

//  No two leaderships in one epoch, from both members' logs; leads: how
//  many times each led so far
static void
s_check_epochs (const char *what, size_t w1_leads, size_t w2_leads)
{
    uint64_t e[2][8];
    size_t n[2] = { s_epochs ("w1", e[0], 8), s_epochs ("w2", e[1], 8) };
    printf ("%s: epochs: w1 led %zu time(s), w2 %zu:", what, n[0], n[1]);
    for (int m = 0; m < 2; m++)
        for (size_t i = 0; i < n[m]; i++)
            printf (" w%d %016" PRIx64, m + 1, e[m][i]);
    printf ("\n");
    CHECK (n[0] == w1_leads && n[1] == w2_leads,
           "w1 led %zu time(s) (want %zu), w2 %zu (want %zu)", n[0], w1_leads,
           n[1], w2_leads);
    for (int a = 0; a < 2; a++)
        for (size_t i = 0; i < n[a]; i++)
            for (int b = 0; b < 2; b++)
                for (size_t j = 0; j < n[b]; j++)
                    CHECK ((a == b && i == j) || e[a][i] != e[b][j],
                           "epoch %016" PRIx64 " led twice", e[a][i]);
}

//  The member that leads, by a log line past from (its size when the
//  case began)
static void
s_wait_lead (const s_member_t *m, size_t from, int timeout_ms)
{
    CHECK (tk_log_wait (m->name, "leading group g as epoch", from, timeout_ms),
           "%s leads", m->name);
}

//  2.5 s more of load with m leading, then the loads stopped: m's store
//  epoch, and the clients' last 201 before its base seq and first after
static bus_epoch_t
s_took_over (const s_member_t *m, tk_load_t **loads, int64_t *last_old,
             int64_t *first_new)
{
    usleep (2500 * 1000);
    s_loads_stop (loads);
    bus_epoch_t epoch;
    uint64_t last;
    CHECK (tk_store_epoch (m->data, &epoch, &last), "%s's store opens",
           m->name);
    tk_ledger_takeover (s_ledger, (json_int_t) epoch.base, last_old, first_new);
    return epoch;
}

//  Every node so far runs CURVE: the members' writers and rr say so in
//  their start lines, w1 let in its 9 peers' keys, and no node's log
//  warns of a plaintext link (a gateway or an edge with --cert dials
//  every member under CURVE, pinned to that member's key)
static void
s_check_curve (const char *what)
{
    const char *curve[] = { "w1", "rr" };
    for (int i = 0; i < 2; i++)
        CHECK (tk_log_wait (curve[i], "links CURVE", 0, 0),
               "%s: %s's links are CURVE", what, curve[i]);
    CHECK (tk_log_wait ("w1", "writer: CURVE on, 9 peers allowed", 0, 0),
           "%s: w1 lets in w2, rr, 4 gateways and 3 edges", what);
    const char *nodes[3 + 4 + 3] = { "w1", "w2", "rr" };
    int count = 3;
    for (int i = 0; i < s_gw_count; i++)
        nodes[count++] = s_gateway_names[i];
    for (int i = 0; i < s_edge_count; i++)
        nodes[count++] = s_edge_names[i];
    for (int i = 0; i < count; i++)
        CHECK (!tk_log_wait (nodes[i], "plaintext", 0, 0),
               "%s: %s's log says nothing of plaintext", what, nodes[i]);
}

//  rr followed the group across the takeover under CURVE: w2, leading
//  with CURVE links, let rr's key in and took its hello as rr's (the
//  writer checks the name against the certificate); rr's handshakes were
//  never refused.  That it continued is s_check_logs' (byte for byte).
static void
s_check_rr_curve (const char *what)
{
    CHECK (tk_log_wait ("w2", "links CURVE", 0, 0)
               && tk_log_wait ("w2", "writer: CURVE on, 9 peers allowed", 0, 0),
           "%s: w2 leads with CURVE links", what);
    CHECK (tk_log_wait ("w2", "replica rr attached", 0, 10000),
           "%s: rr follows w2 (under its replica key)", what);
    CHECK (!tk_log_wait ("rr", "refused", 0, 0),
           "%s: no handshake of rr's refused", what);
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (start)
{
    s_etcd_host = tk_host_add ("etcd");
    s_etcd_tls (tk_host_addr (s_etcd_host));
    tk_etcd_start_on (&s_etcd, "etcd", s_etcd_host);
    s_member_init (&s_w1);
    s_member_init (&s_w2);
    s_make_keys ();
    snprintf (s_intakes, sizeof s_intakes, "%s,%s", s_w1.intake, s_w2.intake);
    snprintf (s_eventses, sizeof s_eventses, "%s,%s", s_w1.events, s_w2.events);
    snprintf (s_syncs, sizeof s_syncs, "%s,%s", s_w1.sync, s_w2.sync);
    snprintf (s_repls, sizeof s_repls, "%s,%s", s_w1.repl, s_w2.repl);
    s_start_member (&s_w1);
    s_wait_lead (&s_w1, 0, 15000);
    s_start_member (&s_w2);
    CHECK (tk_log_wait ("w1", "replica w2 attached", 0, 15000),
           "w2 follows w1 as its synchronous standby");
    CHECK (tk_log_wait ("w1", "/sync names w2", 0, 10000),
           "w1 names w2 in /sync");
    s_start_replica ();
    CHECK (tk_log_wait ("w1", "replica rr attached", 0, 15000),
           "the read replica follows w1");
    s_clients = tk_host_add ("clients");
    //  This thread is a client from here on: load, followers and checks
    tk_host_enter (s_clients);
    for (int i = 0; i < 3; i++)
        s_add_gateway ();
    for (int i = 0; i < 2; i++)
        s_add_edge ();
    s_check_curve ("start");
    printf ("hosts: etcd %s (%s, TLS with client certificates), w1 %s, w2 "
            "%s, rr %s, gateways %s %s %s, edges %s %s, clients %s; every "
            "link CURVE\n",
            tk_host_addr (s_etcd_host), s_etcd.url, tk_host_addr (s_w1.host),
            tk_host_addr (s_w2.host), tk_host_addr (s_rr.host),
            tk_host_addr (s_gw[0].host), tk_host_addr (s_gw[1].host),
            tk_host_addr (s_gw[2].host), tk_host_addr (s_edge[0].host),
            tk_host_addr (s_edge[1].host), tk_host_addr (s_clients));
}

TK_CASE (kill9)
{
    size_t w2_from = tk_log_size ("w2");
    tk_load_t *loads[4];
    s_loads_start (loads, s_gw, s_gw_count, 2, 0);
    usleep (1500 * 1000);
    size_t before = 0;
    for (int i = 0; i < s_gw_count; i++)
        before += tk_load_done (loads[i]);
    //  w1 goes on committing what w2 no longer gets: its unacknowledged
    //  tail (held, under the 500 ms sync timeout, so never acknowledged)
    tk_host_pair (s_w1.host, s_w2.host, false);
    int64_t cut = tk_now_ms ();
    //  ... but only once the sync timeout released the held batch and
    //  the clients sent more: wait for it, or w1 may have no tail
    tk_store_check_tail ("kill9", "w1", s_w1.data, "w2", s_w2.data, cut);
    int64_t t0 = tk_now_ms ();
    CHECK (tk_kill (s_w1.pid, SIGKILL) == 128 + SIGKILL, "kill -9 w1");
    tk_host_link (s_w1.host, false);
    s_wait_lead (&s_w2, w2_from, 20000);
    int64_t led = tk_now_ms () - t0;
    int64_t last_old, first_new;
    bus_epoch_t epoch = s_took_over (&s_w2, loads, &last_old, &first_new);
    CHECK (last_old > 0 && first_new > 0,
           "201s from both sides of the takeover (w2's base seq %" PRIu64 ")",
           epoch.base);
    int64_t took = first_new - last_old;
    bus_epoch_t w1_epoch;
    uint64_t w1_last = 0;
    CHECK (tk_store_epoch (s_w1.data, &w1_epoch, &w1_last)
               && w1_last > epoch.base,
           "w1 has a tail w2 never got: w1 died at seq %" PRIu64
           ", w2 leads from seq %" PRIu64,
           w1_last, epoch.base);
    printf ("kill9: %zu orders before the cut; w1 killed -9 and cut off: w2 "
            "led %lld ms after the kill; its first 201 %lld ms after the "
            "kill, %lld ms after w1's last 201 (the takeover; target < 3000 "
            "ms: %s); w2's epoch %016" PRIx64 " from seq %" PRIu64 "\n",
            before, (long long) led, (long long) (first_new - t0),
            (long long) took, took < 3000 ? "met" : "MISSED", epoch.epoch,
            epoch.base);
    CHECK (took < 10000, "takeover %lld ms within the 10 s bound",
           (long long) took);
    s_check_all ("kill9");
    s_check_replica_reads ("kill9");
    s_check_edges ("kill9", 1);
    s_check_epochs ("kill9", 1, 1);
    uint64_t e1[1];
    CHECK (s_epochs ("w1", e1, 1) == 1 && epoch.parent == e1[0],
           "w2's store epoch's parent %016" PRIx64 " is w1's", epoch.parent);
}

//  Wait until every dir's store is at the same last seq, then compare
//  their logs byte for byte
static void
s_check_logs (const char *what, const char *const *names,
              const char *const *dirs, int count)
{
    uint64_t last[3] = { 0 };
    bool same = false;
    for (int64_t end = tk_now_ms () + 15000; !same && tk_now_ms () < end;
         usleep (100 * 1000)) {
        bus_epoch_t epoch;
        same = true;
        for (int i = 0; i < count; i++)
            same = tk_store_epoch (dirs[i], &epoch, &last[i]) && same
                   && last[i] == last[0];
    }
    CHECK (same,
           "%s: all at one last seq: %s %" PRIu64 ", %s %" PRIu64
           ", %s %" PRIu64,
           what, names[0], last[0], names[1], last[1], names[2], last[2]);
    char *bytes[3] = { 0 };
    size_t size[3] = { 0 };
    for (int i = 0; i < count; i++)
        CHECK (tk_store_log (dirs[i], &last[i], &bytes[i], &size[i]),
               "%s's log reads", names[i]);
    for (int i = 1; i < count; i++)
        CHECK (last[i] == last[0] && size[i] == size[0]
                   && memcmp (bytes[i], bytes[0], size[0]) == 0,
               "%s's log (to seq %" PRIu64 ", %zu bytes) is %s's (to seq "
               "%" PRIu64 ", %zu bytes) byte for byte",
               names[i], last[i], size[i], names[0], last[0], size[0]);
    printf ("%s: %s, %s and %s agree byte for byte: seq 1..%" PRIu64
            ", %zu bytes of log\n",
            what, names[0], names[1], names[2], last[0], size[0]);
    for (int i = 0; i < count; i++)
        free (bytes[i]);
}

TK_CASE (rejoin)
{
    size_t w1_from = tk_log_size ("w1"), w2_from = tk_log_size ("w2");
    tk_host_link (s_w1.host, true);
    tk_host_pair (s_w1.host, s_w2.host, true);
    s_start_member (&s_w1);
    CHECK (tk_log_wait ("w1", "DISCARDED", w1_from, 20000),
           "w1 moves its unacknowledged tail aside");
    CHECK (tk_log_wait ("w2", "replica w1 attached", w2_from, 15000),
           "w1 follows w2");
    CHECK (tk_log_wait ("w1", "caught up at seq", w1_from, 20000),
           "w1 caught up after its resync");
    CHECK (tk_log_wait ("w2", "/sync names w1", w2_from, 15000),
           "w2 names w1 in /sync once w1 has its log");
    char *discarded = tk_log_text ("w1");
    const char *line = strstr (discarded + w1_from, "DISCARDED");
    const char *eol = line ? strchr (line, '\n') : NULL;
    printf ("rejoin: w1: %.*s\n", line ? (int) (eol ? eol - line : 200) : 0,
            line ? line : "");
    free (discarded);
    //  An order with w1 back, through each gateway
    for (int i = 0; i < s_gw_count; i++) {
        char key[32];
        snprintf (key, sizeof key, "rejoin-%d", i);
        char *body = tk_order_body ("T4", 1, false, i);
        int current = 0;
        int status = tk_ledger_place (s_ledger, &s_gw[i].port, 1, &current, key,
                                      "T4", body, RETRY_MS);
        free (body);
        CHECK (status == 201, "an order through %s after the rejoin: %d",
               s_gateway_names[i], status);
    }
    s_check_all ("rejoin");
    s_check_rr_curve ("rejoin");
    const char *names[] = { "w2", "w1", "rr" };
    const char *dirs[] = { s_w2.data, s_w1.data, s_rr_data };
    s_check_logs ("rejoin", names, dirs, 3);
}

TK_CASE (partition)
{
    size_t w1_from = tk_log_size ("w1"), w2_from = tk_log_size ("w2");
    tk_load_t *loads[4];
    s_loads_start (loads, s_gw, s_gw_count, 2, 0);
    usleep (1000 * 1000);
    int64_t t0 = tk_now_ms ();
    //  w2 cut from etcd's host only: the gateways, edges, w1 and rr
    //  still reach it
    tk_host_pair (s_w2.host, s_etcd_host, false);
    CHECK (tk_log_wait ("w2", "lost the lease", w2_from, 5000),
           "w2 steps down");
    int64_t down = tk_now_ms () - t0;
    CHECK (!tk_log_wait ("w1", "leading group g as epoch", w1_from, 0),
           "w1 did not lead before w2 stepped down");
    s_wait_lead (&s_w1, w1_from, 15000);
    int64_t took = tk_now_ms () - t0;
    int64_t last_old, first_new;
    bus_epoch_t epoch = s_took_over (&s_w1, loads, &last_old, &first_new);
    printf ("partition: w2 cut from etcd: stepped down %lld ms after the "
            "cut (its lease lives %s s after its last renewal), w1 led "
            "%lld ms after the cut; w2's last 201 %lld ms, w1's first %lld "
            "ms after the cut\n",
            (long long) down, TTL_S, (long long) took,
            (long long) (last_old - t0), (long long) (first_new - t0));
    CHECK (down < 2000, "w2 stopped before its lease could expire");
    CHECK (last_old < t0 + down + 100 && last_old < first_new,
           "w2 acknowledged nothing after it stepped down, nor once w1 did");
    tk_host_pair (s_w2.host, s_etcd_host, true);
    s_check_all ("partition");
    s_check_replica_reads ("partition");
    s_check_edges ("partition", 2);
    s_check_epochs ("partition", 2, 1);
    //  w1's store continues w2's epoch with its second
    uint64_t e1[2], e2[1];
    CHECK (s_epochs ("w1", e1, 2) == 2 && s_epochs ("w2", e2, 1) == 1
               && epoch.epoch == e1[1] && epoch.parent == e2[0],
           "w1's store epoch %016" PRIx64 " (parent %016" PRIx64
           ") is its second leadership's, after w2's",
           epoch.epoch, epoch.parent);
}

TK_CASE (join)
{
    s_add_gateway ();
    s_add_edge ();
    printf ("join: gw4 on %s and edge3 on %s started at run time\n",
            tk_host_addr (s_gw[3].host), tk_host_addr (s_edge[2].host));
    tk_load_t *loads[4];
    //  Orders through the new gateway alone, then load on all four
    s_loads_start (loads, &s_gw[3], 1, 2, 60);
    tk_load_join (&loads[0]);
    s_loads_start (loads, s_gw, s_gw_count, 2, 30);
    for (int i = 0; i < s_gw_count; i++)
        tk_load_join (&loads[i]);
    s_check_all ("join");
    s_check_curve ("join");
    //  The new kitchen saw exactly edge1's events from its snapshot on
    for (int i = 0; i < s_edge_count; i++)
        tk_follower_stop (s_kitchen[i]);
    tk_follow_stats_t st;
    size_t ref_count, count_k;
    const tk_event_t *ref = tk_follower_events (s_kitchen[0], &ref_count);
    for (int k = 1; k < s_edge_count; k++) {
        tk_follower_stats (s_kitchen[k], &st);
        const tk_event_t *ev = tk_follower_events (s_kitchen[k], &count_k);
        size_t from = 0;
        while (from < ref_count && ref[from].seq <= st.start)
            from++;
        CHECK (count_k == ref_count - from,
               "kitchen on %s has %zu events from seq %lld, edge1's %zu",
               s_edge_names[k], count_k, (long long) st.start,
               ref_count - from);
        size_t i = 0;
        while (i < count_k && ev[i].seq == ref[from + i].seq
               && ev[i].id == ref[from + i].id
               && strcmp (ev[i].key, ref[from + i].key) == 0)
            i++;
        CHECK (i == count_k, "kitchen on %s differs from edge1's at event %zu",
               s_edge_names[k], i);
        printf ("join: kitchen on %s: %zu events from seq %lld, the same as "
                "edge1's\n",
                s_edge_names[k], count_k, (long long) st.start);
    }
    //  After two takeovers (w2 back as w1's standby, its tail moved
    //  aside), every node's log is still one history
    const char *names[] = { "w1", "w2", "rr" };
    const char *dirs[] = { s_w1.data, s_w2.data, s_rr_data };
    s_check_logs ("join", names, dirs, 3);
}

//  Nodes first, then the members, then etcd: a gateway whose members
//  are all gone is slow to stop (docs/failover.md)
static void
s_stop_all (void)
{
    for (int i = 0; i < s_gw_count; i++)
        CHECK (tk_kill (s_gw[i].pid, SIGTERM) == 0, "%s stops",
               s_gateway_names[i]);
    for (int i = 0; i < s_edge_count; i++)
        CHECK (tk_kill (s_edge[i].pid, SIGTERM) == 0, "%s stops",
               s_edge_names[i]);
    CHECK (tk_kill (s_rr.pid, SIGTERM) == 0, "rr stops");
    CHECK (tk_kill (s_w2.pid, SIGTERM) == 0, "w2 stops");
    CHECK (tk_kill (s_w1.pid, SIGTERM) == 0, "w1 stops");
    tk_etcd_stop (&s_etcd);
}

int
main (int argc, char **argv)
{
    if (!tk_etcd_binary ()) {
        printf ("SKIP integration_hosts_failover: no etcd binary "
                "(/usr/bin/etcd; apt-get install etcd-server, or set "
                "ETCD)\n");
        return 77;
    }
    if (access ("/usr/bin/openssl", X_OK) != 0) {
        printf ("SKIP integration_hosts_failover: no openssl command (etcd's "
                "TLS certificates; apt-get install openssl)\n");
        return 77;
    }
    tk_init (argc, argv, "hosts_failover");
    tk_rig_init ();
    bus_etcd_global_init ();
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    s_ledger = tk_ledger_new ();
    static const tk_case_t cases[] = {
        TK_CASE_ENTRY (start),  TK_CASE_ENTRY (kill9),
        TK_CASE_ENTRY (rejoin), TK_CASE_ENTRY (partition),
        TK_CASE_ENTRY (join),   { 0 },
    };
    tk_run_cases (cases);
    for (int i = 0; i < s_edge_count; i++)
        tk_follower_destroy (&s_kitchen[i]);
    s_stop_all ();
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
