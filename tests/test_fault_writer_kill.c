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

#define CHECK   TK_CHECK
#define KILLS   4
#define CLIENTS 8

static char s_data[600], s_menu[600], s_intake[64], s_events[64], s_sync[64];

static pid_t
s_writer (void)
{
    return tk_spawn_env ("writer", NULL, "writer", "--data", s_data, "--menu",
                         s_menu, "--intake", s_intake, "--events", s_events,
                         "--sync", s_sync, "--heartbeat-ms", "100", NULL);
}

static void
s_endpoints (void)
{
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
}

//  What the cases share: the nodes, the kitchen, the ledger and its load
static int s_gw, s_edge;
static pid_t s_writer_pid;
static tk_follower_t *s_kitchen;
static tk_ledger_t *s_ledger;
static tk_load_t *s_load;
static size_t s_before_kills;
static tk_tally_t s_tally;

TK_CASE (start)
{
    s_endpoints ();
    s_gw = tk_port ();
    s_edge = tk_port ();
    char gw_port[16], edge_port[16], web[600];
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    s_writer_pid = s_writer ();
    //  The per-table rate limit is not what these tests are about
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", s_intake, "--events",
                  s_events, "--sync", s_sync, "--http-port", gw_port, "--name",
                  "patio", "--heartbeat-ms", "100", "--link-timeout-ms", "1000",
                  NULL);
    tk_spawn_env ("edge", NULL, "edge", "--events", s_events, "--sync", s_sync,
                  "--http-port", edge_port, "--web", web, "--heartbeat-ms",
                  "100", "--link-timeout-ms", "1000", NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");

    s_kitchen = tk_follower_new (s_edge, "kitchen");
    CHECK (tk_follower_wait (s_kitchen, 0, 10000), "kitchen got its snapshot");
}

TK_CASE (load_flows)
{
    s_ledger = tk_ledger_new ();
    tk_load_opts_t opts = { .ports = &s_gw,
                            .port_count = 1,
                            .threads = CLIENTS,
                            .prefix = "wk",
                            .lines = 3,
                            .retry_ms = 30000 };
    s_load = tk_load_start (s_ledger, &opts);
    usleep (1500 * 1000);
    s_before_kills = tk_load_done (s_load);
    CHECK (s_before_kills > 0, "orders flow before the first kill");
}

//  Kill at slightly different phases so a kill lands in different moments
//  of the batch cycle (collect, commit, publish, ack)
TK_CASE (writer_killed)
{
    for (int k = 0; k < KILLS; k++) {
        usleep ((useconds_t) (1500 + 170 * k) * 1000);
        size_t done = tk_load_done (s_load);
        CHECK (tk_kill (s_writer_pid, SIGKILL) == 128 + SIGKILL, "kill -9 #%d",
               k + 1);
        printf ("fault_writer_kill: kill -9 #%d after %zu orders finished\n",
                k + 1, done);
        fflush (stdout);
        s_writer_pid = s_writer ();
    }
    usleep (2000 * 1000);   //  the last writer takes load for a while
    tk_load_stop (&s_load);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000),
           "gateway healthy at the end");
}

TK_CASE (store_exact)
{
    tk_tally_t *t = &s_tally;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, t), "orders could be listed");
    tk_tally_print ("fault_writer_kill", t);
    CHECK (t->acked > s_before_kills,
           "orders were acknowledged across the kills: %zu", t->acked);
    tk_tally_check_exact (t);
}

//  The kitchen stayed connected to the edge all along
TK_CASE (kitchen_every_event)
{
    const tk_tally_t *t = &s_tally;
    bool caught_up = tk_follower_wait (s_kitchen, t->max_seq, 20000);
    tk_follower_print ("fault_writer_kill", s_kitchen);
    tk_follow_stats_t ks;
    tk_follower_stats (s_kitchen, &ks);
    CHECK (caught_up, "kitchen reached seq %lld: at %lld",
           (long long) t->max_seq, (long long) ks.last);
    CHECK (ks.gaps == 0 && ks.duplicates == 0,
           "kitchen saw gaps %zu, duplicates %zu", ks.gaps, ks.duplicates);
    CHECK (ks.snapshots == 0,
           "kitchen was resynced %zu times instead of getting "
           "every event",
           ks.snapshots);
    CHECK (ks.errors == 0, "kitchen got %zu error messages", ks.errors);
    CHECK (ks.events == (size_t) (t->max_seq - ks.start),
           "kitchen applied %zu events from seq %lld to %lld", ks.events,
           (long long) ks.start, (long long) t->max_seq);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (load_flows),
                                     TK_CASE_ENTRY (writer_killed),
                                     TK_CASE_ENTRY (store_exact),
                                     TK_CASE_ENTRY (kitchen_every_event),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_writer_kill");
    tk_run_cases (s_cases);
    tk_follower_destroy (&s_kitchen);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
