/*  test_reads — gateways and edges read from a replica (issue 16, "Read
    replicas"; docs/replication.md), real processes over loopback tcp,
    CURVE on every link.

    A writer; a replica r1 serving replica/sync with its own link/allow
    (gw and e1, not gwx); a gateway gw and an edge e1 with endpoints/reads
    on r1 (link/reads_key its certificate); a gateway gw2 reading from the
    writer only, to compare with.

      replica_answers   under load, a kitchen on e1 stays gap-free; once
                        caught up, lists, an order and a report through
                        gw are answered by r1 (its query count grows by
                        them, the writer's does not move; the answers say
                        X-Orderbus-Behind-Seqs) and equal gw2's (the
                        writer's)
      edge_replays      a browser resuming from far behind e1's ring gets
                        the missed events from r1's log, gap-free, and e1
                        counts the replica's answers
      read_your_write   an order just acknowledged is found through gw even
                        if r1 does not hold it yet (not_found falls back to
                        the writer)
      replica_behind    r1 cut off (its upstream frozen): replays and an
                        order it lacks come from the writer; its own
                        answer says Behind-Seqs 0 but Behind-Ms at least
                        the time cut off; heard again, a recent time
      ring_moves_on     r1 stopped, a resume's log read waits out a
                        timeout while orders push e1's full ring on past
                        what it fetched: the rest is fetched, no snapshot
      replica_stopped   r1 SIGSTOPped: gw's reads are answered (by the
                        writer, after one timeout) and the kitchen stays
                        gap-free under load; SIGCONT: r1 answers again
      key_refused       a gateway key not in r1's allow dir gets no answer
                        from its read socket, and r1 logs the refusal  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"
#include "testkit.h"
#include "tk_curve.h"

#define CHECK   TK_CHECK
#define CLIENTS 6

static char s_keys[600], s_r1serve[64];
static int s_gw, s_gw2, s_edge;
static pid_t s_r1_pid;
static tk_follower_t *s_kitchen;
static tk_proxy_t *s_upstream;   //  r1 -> the writer's replicate socket

static void
s_path (char *out, size_t cap, const char *name)
{
    snprintf (out, cap, "%s/%s", tk_dir (), name);
}

static void
s_key (char *out, size_t cap, const char *name, const char *ext)
{
    snprintf (out, cap, "%s/%s.%s", s_keys, name, ext);
}

static void
s_keys_new (const char *name, const char *role)
{
    tk_keys_new (s_keys, name, role);
}

static void
s_allow (const char *dir, const char *name)
{
    char from[700], to[700];
    s_key (from, sizeof from, name, "cert");
    snprintf (to, sizeof to, "%s/%s.cert", dir, name);
    tk_copy_file (from, to);
}

static bool
s_log_has (const char *name, const char *text)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s.log", tk_dir (), name);
    FILE *file = fopen (path, "r");
    char line[2048];
    bool found = false;
    while (file && !found && fgets (line, sizeof line, file))
        found = strstr (line, text) != NULL;
    if (file)
        fclose (file);
    return found;
}

//  STATS asked of r1's read socket directly, as node `as` (its secret
//  certificate); the JSON, or NULL if no answer came in timeout_ms.
static json_t *
s_replica_stats (const char *as, int timeout_ms)
{
    char mine[700], r1[700];
    s_key (mine, sizeof mine, as, "cert_secret");
    s_key (r1, sizeof r1, "r1", "cert");
    zsock_t *sock =
        tk_curve_socket (ZMQ_DEALER, mine, r1, s_r1serve, timeout_ms, NULL);
    bus_sync_req_t req = { .op = BUS_SYNC_STATS, .rid = 7 };
    zframe_t *frame = bus_sync_req_encode (&req);
    zframe_send (&frame, sock, 0);
    zmsg_t *msg = zmsg_recv (sock);
    zsock_destroy (&sock);
    zframe_t *item = msg && zmsg_size (msg) == 2 ? zmsg_last (msg) : NULL;
    json_t *json = item ? json_loadb ((const char *) zframe_data (item),
                                      zframe_size (item), 0, NULL)
                        : NULL;
    zmsg_destroy (&msg);
    return json;
}

static json_int_t
s_replica_int (const char *field)
{
    json_t *stats = s_replica_stats ("gw", 5000);
    json_int_t value = tk_json_int (stats, field);
    json_decref (stats);
    return value;
}

//  A number from a gateway's /api/v1/stats
static json_int_t
s_stat (int port, const char *field)
{
    json_t *stats = tk_get_json (port, "/api/v1/stats", 200);
    json_int_t value = tk_json_int (stats, field);
    json_decref (stats);
    return value;
}

//  Wait until r1 holds the writer's last seq
static bool
s_caught_up (int timeout_ms)
{
    for (int64_t end = tk_now_ms () + timeout_ms; tk_now_ms () < end;
         usleep (50 * 1000)) {
        json_int_t writer = s_stat (s_gw2, "writer.seq");
        if (writer > 0 && s_replica_int ("seq") == writer)
            return true;
    }
    return false;
}

static tk_load_t *
s_load (tk_ledger_t *ledger, int *port, const char *prefix, int max)
{
    tk_load_opts_t opts = { .ports = port,
                            .port_count = 1,
                            .threads = CLIENTS,
                            .prefix = prefix,
                            .lines = 2,
                            .max_orders = max,
                            .retry_ms = 30000 };
    return tk_load_start (ledger, &opts);
}

static void
s_kitchen_check (const char *what)
{
    json_int_t seq = s_stat (s_gw2, "writer.seq");
    CHECK (tk_follower_wait (s_kitchen, seq, 15000), "%s: kitchen at %lld",
           what, (long long) seq);
    tk_follow_stats_t stats;
    tk_follower_stats (s_kitchen, &stats);
    tk_follower_print (what, s_kitchen);
    CHECK (stats.gaps == 0 && stats.duplicates == 0 && stats.errors == 0,
           "%s: kitchen gap-free (gaps %zu, duplicates %zu, errors %zu)", what,
           stats.gaps, stats.duplicates, stats.errors);
}

//  ---------------------------------------------------------------------

static pid_t
s_gateway (const char *name, int port, const char *intake, const char *events,
           const char *sync, bool reads)
{
    char http[16], cert[700], wkey[700], rkey[700];
    snprintf (http, sizeof http, "%d", port);
    s_key (cert, sizeof cert, name, "cert_secret");
    s_key (wkey, sizeof wkey, "writer", "cert");
    s_key (rkey, sizeof rkey, "r1", "cert");
    return tk_spawn_env (
        name, NULL, "gateway", "--table-rate", "1000", "--table-burst", "10000",
        "--intake", intake, "--events", events, "--sync", sync, "--http-port",
        http, "--name", name, "--cert", cert, "--writer-key", wkey,
        "--ack-timeout-ms", "1500", "--heartbeat-ms", "100",
        "--link-timeout-ms", "1000", reads ? "--reads" : NULL, s_r1serve,
        "--reads-key", rkey, NULL);
}

TK_CASE (start)
{
    char menu[600], intake[64], events[64], sync[64], repl[64], wdata[600],
        rdata[600], wallow[600], rallow[600], cert[700], wkey[700], rkey[700],
        http[16];
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    s_path (s_keys, sizeof s_keys, "keys");
    s_path (wallow, sizeof wallow, "writer-allow");
    s_path (rallow, sizeof rallow, "r1-allow");
    s_path (wdata, sizeof wdata, "writer-data");
    s_path (rdata, sizeof rdata, "r1-data");
    mkdir (s_keys, 0700);
    mkdir (wallow, 0700);
    mkdir (rallow, 0700);
    s_keys_new ("writer", "writer");
    s_keys_new ("r1", "replica");
    s_keys_new ("gw", "gateway");
    s_keys_new ("gw2", "gateway");
    s_keys_new ("gwx", "gateway");
    s_keys_new ("e1", "edge");
    const char *writer_allows[] = { "r1", "gw", "gw2", "gwx", "e1" };
    for (int i = 0; i < 5; i++)
        s_allow (wallow, writer_allows[i]);
    s_allow (rallow, "gw");   //  r1 lets in gw and e1 only
    s_allow (rallow, "e1");
    tk_endpoints (intake, events, sync);
    int repl_port = tk_port ();
    snprintf (repl, sizeof repl, "tcp://127.0.0.1:%d", repl_port);
    snprintf (s_r1serve, sizeof s_r1serve, "tcp://127.0.0.1:%d", tk_port ());
    s_key (cert, sizeof cert, "writer", "cert_secret");
    tk_spawn_env ("writer", NULL, "writer", "--data", wdata, "--menu", menu,
                  "--intake", intake, "--events", events, "--sync", sync,
                  "--replicate", repl, "--cert", cert, "--allow", wallow,
                  "--heartbeat-ms", "100", NULL);
    s_key (cert, sizeof cert, "r1", "cert_secret");
    s_key (wkey, sizeof wkey, "writer", "cert");
    s_upstream = tk_proxy_new (repl_port);
    char upstream[64];
    snprintf (upstream, sizeof upstream, "tcp://127.0.0.1:%d",
              tk_proxy_port (s_upstream));
    s_r1_pid = tk_spawn_env (
        "r1", NULL, "replica", "--data", rdata, "--upstream", upstream,
        "--replica-name", "r1", "--serve", s_r1serve, "--cert", cert,
        "--writer-key", wkey, "--allow", rallow, "--heartbeat-ms", "100",
        "--link-timeout-ms", "1000", NULL);
    s_gw = tk_port ();
    s_gw2 = tk_port ();
    s_gateway ("gw", s_gw, intake, events, sync, true);
    s_gateway ("gw2", s_gw2, intake, events, sync, false);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gw healthy");
    CHECK (tk_wait_http (s_gw2, "/healthz", 200, 15000), "gw2 healthy");
    //  r1 follows before the edge takes its first snapshot, so that
    //  snapshot is r1's
    tk_response_t r;
    char *body = tk_order_body ("T1", 1, false, 0);
    tk_post_order (s_gw2, "first", body, &r);
    free (body);
    CHECK (r.status == 201, "first order: %d %s", r.status, r.body);
    tk_response_free (&r);
    CHECK (s_caught_up (15000), "r1 follows the writer over CURVE");
    s_edge = tk_port ();
    snprintf (http, sizeof http, "%d", s_edge);
    s_key (cert, sizeof cert, "e1", "cert_secret");
    s_key (rkey, sizeof rkey, "r1", "cert");
    tk_spawn_env ("e1", NULL, "edge", "--events", events, "--sync", sync,
                  "--http-port", http, "--cert", cert, "--writer-key", wkey,
                  "--reads", s_r1serve, "--reads-key", rkey, "--ring", "16",
                  "--heartbeat-ms", "100", "--link-timeout-ms", "1000", NULL);
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "e1 healthy");
    s_kitchen = tk_follower_new (s_edge, "kitchen");
    CHECK (tk_follower_wait (s_kitchen, 0, 10000), "kitchen snapshot");
}

//  GET path on port: status 200, its body in *body (caller frees), its
//  X-Orderbus-Behind-Seqs in behind ("" if none)
static void
s_get (int port, const char *path, char **body, char *behind, size_t cap)
{
    tk_response_t r;
    tk_http (port, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 200, "GET %s: %d %s", path, r.status, r.body);
    *behind = '\0';
    tk_header (&r, "X-Orderbus-Behind-Seqs", behind, cap);
    *body = strdup (r.body ? r.body : "");
    tk_response_free (&r);
}

TK_CASE (replica_answers)
{
    tk_ledger_t *ledger = tk_ledger_new ();
    tk_load_t *load = s_load (ledger, &s_gw, "ra", 0);
    usleep (2000 * 1000);
    printf ("test_reads: replica_answers: %zu orders in 2 s under load\n",
            tk_load_done (load));
    tk_load_stop (&load);
    s_kitchen_check ("replica_answers");
    CHECK (s_caught_up (15000), "r1 caught up");
    json_int_t writer_before = s_stat (s_gw2, "writer.queries"),
               replica_before = s_replica_int ("queries"),
               moved_before = s_stat (s_gw, "gateway.reads.replica");
    //  A report of a fixed range: "to" is now by default
    char report[96];
    int64_t to = zclock_time () + 3600 * 1000;
    snprintf (report, sizeof report, "/api/v1/report?from=%lld&to=%lld",
              (long long) (to - 2 * 86400 * 1000LL), (long long) to);
    const char *paths[] = { "/api/v1/orders?limit=1000",
                            "/api/v1/orders?status=placed&limit=50",
                            "/api/v1/orders/1", report };
    for (int i = 0; i < 4; i++) {
        char *mine, *writers, behind[32], none[32];
        s_get (s_gw, paths[i], &mine, behind, sizeof behind);
        s_get (s_gw2, paths[i], &writers, none, sizeof none);
        CHECK (streq (behind, "0") && *none == '\0',
               "%s: r1 says it is 0 behind ('%s'), the writer says nothing "
               "('%s')",
               paths[i], behind, none);
        CHECK (streq (mine, writers), "%s: r1's answer is the writer's",
               paths[i]);
        free (mine);
        free (writers);
    }
    json_int_t writer_after = s_stat (s_gw2, "writer.queries"),
               replica_after = s_replica_int ("queries"),
               moved_after = s_stat (s_gw, "gateway.reads.replica");
    printf ("test_reads: replica_answers: r1 queries %lld -> %lld, writer "
            "queries %lld -> %lld (gw2's 4 reads)\n",
            (long long) replica_before, (long long) replica_after,
            (long long) writer_before, (long long) writer_after);
    CHECK (replica_after == replica_before + 4
               && moved_after == moved_before + 4,
           "r1 answered gw's 4 reads: %lld -> %lld", (long long) replica_before,
           (long long) replica_after);
    CHECK (writer_after == writer_before + 4,
           "the writer answered gw2's 4 only: %lld -> %lld",
           (long long) writer_before, (long long) writer_after);
    tk_ledger_destroy (&ledger);
}

TK_CASE (edge_replays)
{
    json_int_t from = s_stat (s_gw2, "writer.seq");
    tk_ledger_t *ledger = tk_ledger_new ();
    tk_load_t *load = s_load (ledger, &s_gw, "er", 100);
    tk_load_join (&load);
    s_kitchen_check ("edge_replays");
    CHECK (s_caught_up (15000), "r1 caught up");
    json_t *health = tk_get_json (s_edge, "/healthz", 200);
    json_int_t replica_before = tk_json_int (health, "edge.reads.replica");
    json_decref (health);
    //  100 orders are 100+ events: far past a ring of 16
    char path[64];
    snprintf (path, sizeof path, "/ws?resume_from=%lld", (long long) from);
    tk_ws_t *ws = tk_ws_open (s_edge, path);
    CHECK (ws, "resume from %lld", (long long) from);
    json_int_t next = from + 1;
    for (json_t *msg; ws && next <= from + 100 && (msg = tk_ws_next (ws, 5000));
         json_decref (msg)) {
        json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
        CHECK (seq == next, "resumed event %lld, expected %lld",
               (long long) seq, (long long) next);
        next = seq + 1;
    }
    tk_ws_close (&ws);
    CHECK (next > from + 100, "100 events resumed gap-free from %lld",
           (long long) from);
    health = tk_get_json (s_edge, "/healthz", 200);
    json_int_t replica_after = tk_json_int (health, "edge.reads.replica");
    json_decref (health);
    CHECK (replica_after > replica_before,
           "r1 answered e1's replays: %lld -> %lld", (long long) replica_before,
           (long long) replica_after);
    tk_ledger_destroy (&ledger);
}

TK_CASE (read_your_write)
{
    //  Right after its 201, the order is there through gw: r1's, or the
    //  writer's when r1 has not got it yet
    for (int i = 0; i < 20; i++) {
        char key[32], path[64];
        snprintf (key, sizeof key, "ryw-%d", i);
        char *body = tk_order_body ("T2", 1, false, i);
        tk_response_t r;
        tk_post_order (s_gw, key, body, &r);
        free (body);
        CHECK (r.status == 201, "%s: %d %s", key, r.status, r.body);
        snprintf (path, sizeof path, "/api/v1/orders/%lld",
                  (long long) tk_json_int (r.json, "id"));
        tk_response_free (&r);
        tk_http (s_gw, "GET", path, NULL, NULL, &r);
        CHECK (r.status == 200, "GET %s just after: %d %s", path, r.status,
               r.body);
        tk_response_free (&r);
    }
}

TK_CASE (replica_behind)
{
    //  r1 hears nothing more from the writer but still answers: it holds
    //  none of what follows
    CHECK (s_caught_up (15000), "r1 caught up");
    tk_proxy_freeze (s_upstream, true);
    int64_t frozen_ms = tk_now_ms ();
    json_int_t from = s_stat (s_gw2, "writer.seq");
    tk_ledger_t *ledger = tk_ledger_new ();
    tk_load_t *load = s_load (ledger, &s_gw2, "rb", 60);
    tk_load_join (&load);
    json_int_t upto = s_stat (s_gw2, "writer.seq");
    CHECK (upto >= from + 60, "60 orders placed: %lld -> %lld",
           (long long) from, (long long) upto);
    //  A replay r1 cannot fill is not "no more events": e1 asks the writer
    char path[64];
    snprintf (path, sizeof path, "/ws?resume_from=%lld", (long long) from);
    tk_ws_t *ws = tk_ws_open (s_edge, path);
    json_int_t next = from + 1;
    for (json_t *msg; ws && next <= upto && (msg = tk_ws_next (ws, 5000));
         json_decref (msg)) {
        json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
        CHECK (seq == next, "resumed event %lld, expected %lld (%s)",
               (long long) seq, (long long) next,
               json_string_value (json_object_get (msg, "type")));
        next = seq + 1;
    }
    tk_ws_close (&ws);
    CHECK (next > upto, "events %lld..%lld resumed gap-free past r1's log",
           (long long) from + 1, (long long) upto);
    //  An order r1 has not got is found, the writer's
    json_t *list = tk_get_json (s_gw2, "/api/v1/orders?limit=1", 200);
    json_int_t id = tk_json_int (
        json_array_get (json_object_get (list, "orders"), 0), "id");
    json_decref (list);
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) id);
    tk_response_t r;
    tk_http (s_gw, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 200, "GET %s r1 lacks: %d %s", path, r.status, r.body);
    tk_response_free (&r);
    //  A list r1 answers: it knows of nothing it lacks (behind 0 events),
    //  but says how long it has not heard the writer
    usleep (500 * 1000);
    char behind[32] = "", behind_ms[32] = "";
    tk_http (s_gw, "GET", "/api/v1/orders?limit=1", NULL, NULL, &r);
    tk_header (&r, "X-Orderbus-Behind-Seqs", behind, sizeof behind);
    tk_header (&r, "X-Orderbus-Behind-Ms", behind_ms, sizeof behind_ms);
    int64_t cut_ms = tk_now_ms () - frozen_ms;
    CHECK (r.status == 200 && streq (behind, "0") && atoll (behind_ms) >= 500
               && atoll (behind_ms) <= cut_ms + 1000,
           "r1 cut off for %lld ms: Behind-Seqs '%s', Behind-Ms '%s'",
           (long long) cut_ms, behind, behind_ms);
    tk_response_free (&r);
    printf ("test_reads: replica_behind: cut off for %lld ms, r1 says "
            "Behind-Seqs %s, Behind-Ms %s\n",
            (long long) cut_ms, behind, behind_ms);
    tk_proxy_freeze (s_upstream, false);
    CHECK (s_caught_up (15000), "r1 catches up once it hears the writer");
    //  ...and once it hears again, a recent time
    usleep (300 * 1000);
    tk_http (s_gw, "GET", "/api/v1/orders?limit=1", NULL, NULL, &r);
    tk_header (&r, "X-Orderbus-Behind-Ms", behind_ms, sizeof behind_ms);
    CHECK (r.status == 200 && *behind_ms && atoll (behind_ms) < 500,
           "r1 hears the writer again: Behind-Ms '%s'", behind_ms);
    tk_response_free (&r);
    s_kitchen_check ("replica_behind");
    tk_ledger_destroy (&ledger);
}

TK_CASE (ring_moves_on)
{
    //  A resume from past e1's full ring (16) reads the log first: with r1
    //  stopped that waits out e1's sync timeout (3 s), then the writer
    //  answers.  Orders placed meanwhile push the ring on past what was
    //  fetched: e1 fetches what it let go too, no snapshot.  (An event or
    //  two still on its way to e1 while the log is read did the same in
    //  replica_behind, now and then.)
    json_int_t seq = s_stat (s_gw2, "writer.seq");
    CHECK (tk_follower_wait (s_kitchen, seq, 15000), "e1 at %lld",
           (long long) seq);
    json_int_t from = seq - 40;
    kill (s_r1_pid, SIGSTOP);
    char path[64];
    snprintf (path, sizeof path, "/ws?resume_from=%lld", (long long) from);
    tk_ws_t *ws = tk_ws_open (s_edge, path);
    CHECK (ws, "resume from %lld", (long long) from);
    usleep (300 * 1000);   //  e1 is reading the log (r1 silent 3 s)
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf (key, sizeof key, "rm-%d", i);
        char *body = tk_order_body ("T1", 1, false, i);
        tk_response_t r;
        tk_post_order (s_gw2, key, body, &r);
        free (body);
        CHECK (r.status == 201, "%s: %d %s", key, r.status, r.body);
        tk_response_free (&r);
    }
    json_int_t upto = s_stat (s_gw2, "writer.seq");
    CHECK (tk_follower_wait (s_kitchen, upto, 2000),
           "e1 at %lld while its log read waits on r1", (long long) upto);
    json_int_t next = from + 1;
    for (json_t *msg; ws && next <= upto && (msg = tk_ws_next (ws, 10000));
         json_decref (msg)) {
        json_int_t got = json_integer_value (json_object_get (msg, "seq"));
        CHECK (got == next, "resumed event %lld, expected %lld (%s)",
               (long long) got, (long long) next,
               json_string_value (json_object_get (msg, "type")));
        next = got + 1;
    }
    tk_ws_close (&ws);
    CHECK (next > upto,
           "events %lld..%lld resumed gap-free while the ring moved on",
           (long long) from + 1, (long long) upto);
    kill (s_r1_pid, SIGCONT);
    CHECK (s_caught_up (15000), "r1 caught up after SIGCONT");
}

TK_CASE (replica_stopped)
{
    kill (s_r1_pid, SIGSTOP);
    tk_ledger_t *ledger = tk_ledger_new ();
    tk_load_t *load = s_load (ledger, &s_gw, "rs", 0);
    int64_t t0 = tk_now_ms ();
    for (int i = 0; i < 5; i++) {
        tk_response_t r;
        tk_http (s_gw, "GET", "/api/v1/orders?limit=10", NULL, NULL, &r);
        char behind[32] = "";
        tk_header (&r, "X-Orderbus-Behind-Seqs", behind, sizeof behind);
        CHECK (r.status == 200 && !*behind,
               "list %d with r1 stopped: %d, from the writer ('%s')", i,
               r.status, behind);
        tk_response_free (&r);
    }
    printf ("test_reads: replica_stopped: 5 lists in %lld ms (one timeout "
            "of 1500 ms, then the writer)\n",
            (long long) (tk_now_ms () - t0));
    CHECK (tk_now_ms () - t0 < 4000, "one timeout, not one per read");
    usleep (1500 * 1000);
    tk_load_stop (&load);
    s_kitchen_check ("replica_stopped");
    kill (s_r1_pid, SIGCONT);
    CHECK (s_caught_up (15000), "r1 caught up after SIGCONT");
    usleep (3100 * 1000);   //  its rest ends
    json_int_t before = s_replica_int ("queries");
    tk_response_t r;
    tk_http (s_gw, "GET", "/api/v1/orders?limit=10", NULL, NULL, &r);
    CHECK (r.status == 200, "list: %d", r.status);
    tk_response_free (&r);
    CHECK (s_replica_int ("queries") == before + 1, "r1 answers again");
    CHECK (s_log_has ("gw", "did not answer"), "gw logged r1's silence");
    tk_ledger_destroy (&ledger);
}

TK_CASE (key_refused)
{
    json_t *stats = s_replica_stats ("gwx", 2000);
    CHECK (!stats, "a key not in r1's allow dir gets no answer");
    json_decref (stats);
    stats = s_replica_stats ("e1", 2000);
    CHECK (stats, "e1's key does");
    json_decref (stats);
    usleep (300 * 1000);
    CHECK (s_log_has ("r1", "replica: reads: refused a peer"),
           "r1 logs the refused handshake");
}

TK_CASE (stop)
{
    tk_follower_stop (s_kitchen);
    tk_follower_destroy (&s_kitchen);
    tk_proxy_destroy (&s_upstream);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (replica_answers),
                                     TK_CASE_ENTRY (edge_replays),
                                     TK_CASE_ENTRY (read_your_write),
                                     TK_CASE_ENTRY (replica_behind),
                                     TK_CASE_ENTRY (ring_moves_on),
                                     TK_CASE_ENTRY (replica_stopped),
                                     TK_CASE_ENTRY (key_refused),
                                     TK_CASE_ENTRY (stop),
                                     { 0 } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "reads");
    tk_run_cases (s_cases);
    return tk_done ();
}
