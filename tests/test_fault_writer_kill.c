/*  test_fault_writer_kill — kill -9 the writer every couple of seconds,
    several times, under sustained load from many concurrent pads that
    retry with their idempotency keys; restart it each time on the same
    data.  Then: every order that got a 201 is stored exactly once, under
    the id and seq its 201 named; nothing is stored that no pad sent; the
    orders' seqs are exactly 1..N (no gap in the event log); and a kitchen
    WebSocket connected to an edge throughout saw every seq once, in
    order, with no resync.  */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK TK_CHECK
#define KILLS 4
#define CLIENTS 8

static char s_data[600], s_menu[600], s_intake[64], s_events[64], s_sync[64];

static pid_t
s_writer (void)
{
    return tk_spawn_env ("writer", NULL, "writer", "--data", s_data, "--menu", s_menu,
                     "--intake", s_intake, "--events", s_events, "--sync",
                     s_sync, "--heartbeat-ms", "100", NULL);
}

static void
s_endpoints (void)
{
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_writer_kill");
    s_endpoints ();
    int gw = tk_port (), edge = tk_port ();
    char gw_port[16], edge_port[16], web[600];
    snprintf (gw_port, sizeof gw_port, "%d", gw);
    snprintf (edge_port, sizeof edge_port, "%d", edge);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    pid_t writer = s_writer ();
    //  The per-table rate limit is not what these tests are about
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", s_intake, "--events",
                  s_events, "--sync", s_sync, "--http-port", gw_port, "--name",
                  "patio", "--heartbeat-ms", "100", "--link-timeout-ms", "1000",
                  NULL);
    tk_spawn_env ("edge", NULL, "edge", "--events", s_events, "--sync", s_sync,
              "--http-port", edge_port, "--web", web, "--heartbeat-ms", "100",
              "--link-timeout-ms", "1000", NULL);
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (edge, "/healthz", 200, 15000), "edge healthy");

    tk_follower_t *kitchen = tk_follower_new (edge, "kitchen");
    CHECK (tk_follower_wait (kitchen, 0, 10000), "kitchen got its snapshot");

    tk_ledger_t *ledger = tk_ledger_new ();
    tk_load_opts_t opts = {.ports = &gw, .port_count = 1, .threads = CLIENTS,
                           .prefix = "wk", .lines = 3, .retry_ms = 30000};
    tk_load_t *load = tk_load_start (ledger, &opts);
    usleep (1500 * 1000);
    size_t before_kills = tk_load_done (load);
    CHECK (before_kills > 0, "orders flow before the first kill");

    //  Kill at slightly different phases so a kill lands in different
    //  moments of the batch cycle (collect, commit, publish, ack)
    for (int k = 0; k < KILLS; k++) {
        usleep ((useconds_t) (1500 + 170 * k) * 1000);
        size_t done = tk_load_done (load);
        CHECK (tk_kill (writer, SIGKILL) == 128 + SIGKILL, "kill -9 #%d", k + 1);
        printf ("fault_writer_kill: kill -9 #%d after %zu orders finished\n",
                k + 1, done);
        fflush (stdout);
        writer = s_writer ();
    }
    usleep (2000 * 1000);   //  the last writer takes load for a while
    tk_load_stop (&load);
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "gateway healthy at the end");

    tk_tally_t t;
    CHECK (tk_ledger_tally (ledger, gw, 1000, &t), "orders could be listed");
    tk_tally_print ("fault_writer_kill", &t);
    CHECK (t.acked > before_kills, "orders were acknowledged across the kills: %zu",
           t.acked);
    tk_tally_check_exact (&t);

    //  The kitchen stayed connected to the edge all along
    bool caught_up = tk_follower_wait (kitchen, t.max_seq, 20000);
    tk_follower_print ("fault_writer_kill", kitchen);
    tk_follow_stats_t ks;
    tk_follower_stats (kitchen, &ks);
    CHECK (caught_up, "kitchen reached seq %lld: at %lld", (long long) t.max_seq,
           (long long) ks.last);
    CHECK (ks.gaps == 0 && ks.duplicates == 0,
           "kitchen saw gaps %zu, duplicates %zu", ks.gaps, ks.duplicates);
    CHECK (ks.snapshots == 0, "kitchen was resynced %zu times instead of getting "
           "every event", ks.snapshots);
    CHECK (ks.errors == 0, "kitchen got %zu error messages", ks.errors);
    CHECK (ks.events == (size_t) (t.max_seq - ks.start),
           "kitchen applied %zu events from seq %lld to %lld", ks.events,
           (long long) ks.start, (long long) t.max_seq);
    tk_follower_destroy (&kitchen);
    tk_ledger_destroy (&ledger);
    return tk_done ();
}
