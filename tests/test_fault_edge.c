/*  test_fault_edge — a browser loses its edge or its link and comes back
    with resume_from, under a steady stream of orders:

      - edge A is killed with kill -9 and restarted on its port: its
        browser reconnects with resume_from=<last seq> and is served what
        it missed (from the writer's log: the new edge's ring is empty);
      - a browser on edge B behind a TCP proxy has its link go silent
        (the proxy stops forwarding, as dead Wi-Fi does): edge B's
        pings go unanswered and it drops the connection (its client
        count falls), then the link is reset and the browser resumes;
      - the same browser's link is reset abruptly once more.

    Each ends with exactly the event sequence (seq and order, one by one)
    of a browser on edge B that never disconnected: no gap, no duplicate,
    no resync snapshot in between.  */

#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK          TK_CHECK
#define CLIENTS        4
#define INSTANT_ROUNDS 3
#define INSTANT_BACK   3   //  events the instant browser missed

static char s_events[64], s_sync[64], s_web[600];

static pid_t
s_edge (const char *name, int port)
{
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    //  Quick pings so a silent browser is found out in seconds.  The load
    //  runs as fast as the machine lets it, so the events a browser misses
    //  while edge A restarts (~2 s) go from ~2,000 to over 4,096 (the
    //  default queue, past which a browser gets a snapshot by design)
    //  with the build and the machine: a bigger queue keeps this test
    //  about resuming, whatever the speed
    return tk_spawn_env (name, NULL, "edge", "--events", s_events, "--sync",
                         s_sync, "--http-port", http, "--web", s_web,
                         "--heartbeat-ms", "100", "--link-timeout-ms", "1000",
                         "--ws-ping-ms", "300", "--client-queue", "65536",
                         NULL);
}

static json_int_t
s_edge_clients (int port)
{
    json_t *health = tk_get_json (port, "/healthz", 200);
    json_int_t clients = tk_json_int (health, "edge.clients");
    json_decref (health);
    return clients;
}

//  follower saw every event from its start to last once, with no resync,
//  and the same event at every seq as the reference browser.
static void
s_same_sequence (tk_follower_t *follower, const char *name,
                 const tk_event_t *ref, size_t ref_count, json_int_t ref_start,
                 json_int_t last)
{
    tk_follow_stats_t st;
    tk_follower_stats (follower, &st);
    CHECK (st.last == last, "%s ended at seq %lld, want %lld", name,
           (long long) st.last, (long long) last);
    CHECK (st.gaps == 0 && st.duplicates == 0, "%s: gaps %zu, duplicates %zu",
           name, st.gaps, st.duplicates);
    CHECK (st.snapshots == 0,
           "%s was sent %zu snapshots after reconnecting "
           "instead of the events it missed",
           name, st.snapshots);
    CHECK (st.errors == 0, "%s: %zu error messages", name, st.errors);
    CHECK (st.start == ref_start,
           "%s started at seq %lld, the reference at %lld", name,
           (long long) st.start, (long long) ref_start);
    size_t count;
    const tk_event_t *ev = tk_follower_events (follower, &count);
    CHECK (count == ref_count, "%s has %zu events, the reference %zu", name,
           count, ref_count);
    size_t i = 0;
    while (i < count && ev[i].seq == ref[i].seq && ev[i].id == ref[i].id)
        i++;
    CHECK (i == count,
           "%s event %zu is seq %lld order %lld, the reference's "
           "seq %lld order %lld",
           name, i, (long long) ev[i].seq, (long long) ev[i].id,
           (long long) ref[i].seq, (long long) ref[i].id);
}

//  kill -9 the edge, start it again and reconnect the moment it takes
//  WebSockets, before it can have synced (with the writer frozen for
//  writer_pause_ms meanwhile, so that it cannot): the browser still gets
//  exactly the events after resume_from, not a snapshot.  Returns the new
//  edge.
static pid_t
s_instant_resume (pid_t edge_pid, int port, json_int_t last, int round,
                  pid_t writer, int writer_pause_ms)
{
    CHECK (tk_kill (edge_pid, SIGKILL) == 128 + SIGKILL, "kill -9 edge A");
    if (writer_pause_ms)
        CHECK (kill (writer, SIGSTOP) == 0, "SIGSTOP writer");
    pid_t pid = s_edge ("edge-a", port);
    char path[64];
    json_int_t from = last - INSTANT_BACK;
    snprintf (path, sizeof path, "/ws?resume_from=%lld", (long long) from);
    int fd = -1;
    int64_t started = tk_now_ms ();
    while (fd < 0 && tk_now_ms () - started < 15000)
        if ((fd = tk_ws_raw_open (port, path, 0)) < 0)
            usleep (5 * 1000);
    CHECK (fd >= 0, "reconnect to the restarted edge");
    int64_t connected = tk_now_ms () - started;
    if (writer_pause_ms) {
        usleep ((useconds_t) writer_pause_ms * 1000);
        CHECK (kill (writer, SIGCONT) == 0, "SIGCONT writer");
    }
    static char text[1 << 16];
    for (json_int_t want = from + 1; want <= last; want++) {
        size_t len;
        int opcode;
        while (
            (opcode = tk_ws_raw_read_frame (fd, 10000, text, sizeof text, &len))
            == MG_WEBSOCKET_OPCODE_PING)
            ;
        json_t *msg = json_loads (text, 0, NULL);
        const char *type = json_string_value (json_object_get (msg, "type"));
        json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
        len = opcode < 0 ? 0 : len;
        CHECK (opcode == MG_WEBSOCKET_OPCODE_TEXT && type
                   && strcmp (type, "event") == 0 && seq == want,
               "round %d: a browser back %lld ms after the restart with "
               "resume_from=%lld got opcode %d, %zu bytes: %.60s..., want "
               "event %lld",
               round, (long long) connected, (long long) from, opcode, len,
               opcode < 0 ? "(nothing)" : text, (long long) want);
        json_decref (msg);
    }
    close (fd);
    printf ("fault_edge: round %d: reconnected %lld ms after the restart "
            "(writer frozen for %d ms), got events %lld..%lld\n",
            round, (long long) connected, writer_pause_ms,
            (long long) (from + 1), (long long) last);
    return pid;
}

//  What the cases share: the nodes, the proxy, the three browsers, the
//  ledger and the load feeding it
static int s_gw, s_edge_a, s_edge_b;
static pid_t s_writer, s_pid_a;
static tk_proxy_t *s_proxy;
static tk_follower_t *s_steady, *s_on_a, *s_dropped;
static tk_ledger_t *s_ledger;
static tk_load_t *s_load;
static tk_tally_t s_tally;

TK_CASE (start)
{
    char data[600], menu[600], intake[64], gw_port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (s_web, sizeof s_web, "%s/web", tk_source ());
    tk_endpoints (intake, s_events, s_sync);
    s_gw = tk_port ();
    s_edge_a = tk_port ();
    s_edge_b = tk_port ();
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    s_writer = tk_spawn_env ("writer", NULL, "writer", "--data", data, "--menu",
                             menu, "--intake", intake, "--events", s_events,
                             "--sync", s_sync, "--heartbeat-ms", "100", NULL);
    //  The per-table rate limit is not what these tests are about
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", intake, "--events",
                  s_events, "--sync", s_sync, "--http-port", gw_port, NULL);
    s_pid_a = s_edge ("edge-a", s_edge_a);
    s_edge ("edge-b", s_edge_b);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge_a, "/healthz", 200, 15000), "edge A healthy");
    CHECK (tk_wait_http (s_edge_b, "/healthz", 200, 15000), "edge B healthy");
}

TK_CASE (browsers_connect)
{
    s_proxy = tk_proxy_new (s_edge_b);
    s_steady = tk_follower_new (s_edge_b, "steady (edge B)");
    s_on_a = tk_follower_new (s_edge_a, "edge-killed (edge A)");
    s_dropped = tk_follower_new (tk_proxy_port (s_proxy),
                                 "link-dropped (edge B via proxy)");
    CHECK (tk_follower_wait (s_steady, 0, 10000), "steady browser's snapshot");
    CHECK (tk_follower_wait (s_on_a, 0, 10000), "edge A browser's snapshot");
    CHECK (tk_follower_wait (s_dropped, 0, 10000),
           "proxied browser's snapshot");
}

//  1. kill -9 edge A (under load); its browser retries until the new one
//  answers
TK_CASE (edge_killed)
{
    s_ledger = tk_ledger_new ();
    tk_load_opts_t opts = { .ports = &s_gw,
                            .port_count = 1,
                            .threads = CLIENTS,
                            .prefix = "edge",
                            .lines = 2,
                            .retry_ms = 30000 };
    s_load = tk_load_start (s_ledger, &opts);
    usleep (1000 * 1000);

    CHECK (tk_kill (s_pid_a, SIGKILL) == 128 + SIGKILL, "kill -9 edge A");
    usleep (1000 * 1000);
    s_pid_a = s_edge ("edge-a", s_edge_a);
    CHECK (tk_wait_http (s_edge_a, "/healthz", 200, 15000), "edge A back");
    usleep (1000 * 1000);
}

//  2. the proxied browser's link goes silent: edge B must notice by itself
//  (unanswered pings) and let the connection go
TK_CASE (link_silent)
{
    CHECK (s_edge_clients (s_edge_b) == 2, "edge B has 2 browsers: %lld",
           (long long) s_edge_clients (s_edge_b));
    tk_proxy_freeze (s_proxy, true);
    int64_t frozen_at = tk_now_ms ();
    json_int_t clients = -1;
    while (tk_now_ms () - frozen_at < 20000
           && (clients = s_edge_clients (s_edge_b)) != 1)
        usleep (100 * 1000);
    CHECK (clients == 1,
           "edge B still counts %lld browsers 20 s after one went "
           "silent (ws ping every 300 ms)",
           (long long) clients);
    printf ("fault_edge: edge B let the silent browser go after %lld ms\n",
            (long long) (tk_now_ms () - frozen_at));
    //  The browser learns of it when the link comes back as a reset
    tk_proxy_cut (s_proxy);
    tk_proxy_freeze (s_proxy, false);
    usleep (1000 * 1000);
}

//  3. an abrupt reset of the same browser's link
TK_CASE (link_reset)
{
    tk_proxy_cut (s_proxy);
    usleep (1000 * 1000);
    tk_load_stop (&s_load);
}

TK_CASE (store_matches)
{
    tk_tally_t *t = &s_tally;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, t), "orders could be listed");
    tk_tally_print ("fault_edge", t);
    CHECK (t->refused == 0 && t->unresolved == 0 && t->lost == 0
               && t->duplicates == 0 && t->unknown == 0 && t->mismatched == 0
               && t->stored == t->acked,
           "store does not match the 201s");
    CHECK (t->seq_gaps == 0 && t->seq_dups == 0
               && t->max_seq == (json_int_t) t->stored,
           "order seqs are not 1..%zu", t->stored);
}

TK_CASE (browsers_resumed)
{
    tk_follower_t *all[] = { s_steady, s_on_a, s_dropped };
    for (int i = 0; i < 3; i++) {
        tk_follower_wait (all[i], s_tally.max_seq, 20000);
        tk_follower_stop (all[i]);
        tk_follower_print ("fault_edge", all[i]);
    }
    tk_follow_stats_t st;
    tk_follower_stats (s_steady, &st);
    CHECK (st.reconnects == 0, "the steady browser reconnected %zu times",
           st.reconnects);
    tk_follower_stats (s_on_a, &st);
    CHECK (st.reconnects >= 1, "edge A's browser never reconnected");
    tk_follower_stats (s_dropped, &st);
    CHECK (st.reconnects >= 2,
           "the proxied browser reconnected %zu times, want 2", st.reconnects);

    size_t ref_count;
    const tk_event_t *ref = tk_follower_events (s_steady, &ref_count);
    tk_follower_stats (s_steady, &st);
    s_same_sequence (s_steady, "steady", ref, ref_count, st.start,
                     s_tally.max_seq);
    s_same_sequence (s_on_a, "edge A's browser", ref, ref_count, st.start,
                     s_tally.max_seq);
    s_same_sequence (s_dropped, "the proxied browser", ref, ref_count, st.start,
                     s_tally.max_seq);
    printf ("fault_edge: %zu events, identical on all three browsers\n",
            ref_count);
}

//  A browser that reconnects the instant the edge is back
TK_CASE (instant_resume)
{
    for (int round = 1; round <= INSTANT_ROUNDS; round++)
        s_pid_a =
            s_instant_resume (s_pid_a, s_edge_a, s_tally.max_seq, round,
                              s_writer, round == 1 ? 0 : 500 * (round - 1));
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (browsers_connect),
                                     TK_CASE_ENTRY (edge_killed),
                                     TK_CASE_ENTRY (link_silent),
                                     TK_CASE_ENTRY (link_reset),
                                     TK_CASE_ENTRY (store_matches),
                                     TK_CASE_ENTRY (browsers_resumed),
                                     TK_CASE_ENTRY (instant_resume),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_edge");
    tk_run_cases (s_cases);
    tk_follower_destroy (&s_steady);
    tk_follower_destroy (&s_on_a);
    tk_follower_destroy (&s_dropped);
    tk_proxy_destroy (&s_proxy);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
