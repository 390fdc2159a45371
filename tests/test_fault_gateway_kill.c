/*  test_fault_gateway_kill — kill -9 a gateway while many pads are
    placing orders through it.  The pads fail over to a second gateway
    and retry with the same keys and bodies: every order that got a 201
    is stored exactly once (an order the dead gateway had pushed and the
    writer committed comes back from the second one as the same order,
    Idempotent-Replayed), nothing unknown is stored, the seqs are exactly
    1..N, and a kitchen on the edge saw every event once, in order.  The
    killed gateway, restarted, serves again.  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK   TK_CHECK
#define CLIENTS 8

static char s_intake[64], s_events[64], s_sync[64];

static pid_t
s_gateway (int port, const char *name)
{
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    //  The per-table rate limit is not what these tests are about
    return tk_spawn_env (name, NULL, "gateway", "--table-rate", "1000",
                         "--table-burst", "10000", "--intake", s_intake,
                         "--events", s_events, "--sync", s_sync, "--http-port",
                         http, "--name", name, "--heartbeat-ms", "100",
                         "--link-timeout-ms", "1000", NULL);
}

//  What the cases share: the gateways (terrace first), the edge's
//  kitchen, the ledger
static int s_gw[2], s_edge;
static pid_t s_primary;
static tk_follower_t *s_kitchen;
static tk_ledger_t *s_ledger;

TK_CASE (start)
{
    char data[600], menu[600], web[600], edge_port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    s_gw[0] = tk_port ();
    s_gw[1] = tk_port ();
    s_edge = tk_port ();
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);
    tk_spawn_env ("writer", NULL, "writer", "--data", data, "--menu", menu,
                  "--intake", s_intake, "--events", s_events, "--sync", s_sync,
                  "--heartbeat-ms", "100", NULL);
    s_primary = s_gateway (s_gw[0], "terrace");
    s_gateway (s_gw[1], "bar");
    tk_spawn_env ("edge", NULL, "edge", "--events", s_events, "--sync", s_sync,
                  "--http-port", edge_port, "--web", web, NULL);
    CHECK (tk_wait_http (s_gw[0], "/healthz", 200, 15000),
           "gateway terrace healthy");
    CHECK (tk_wait_http (s_gw[1], "/healthz", 200, 15000),
           "gateway bar healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    s_kitchen = tk_follower_new (s_edge, "kitchen");
    CHECK (tk_follower_wait (s_kitchen, 0, 10000), "kitchen got its snapshot");
}

//  Every pad starts on terrace and moves to bar when terrace fails it
TK_CASE (terrace_killed)
{
    s_ledger = tk_ledger_new ();
    tk_load_opts_t opts = { .ports = s_gw,
                            .port_count = 2,
                            .threads = CLIENTS,
                            .prefix = "gk",
                            .lines = 2,
                            .retry_ms = 30000 };
    tk_load_t *load = tk_load_start (s_ledger, &opts);
    usleep (1500 * 1000);
    size_t before = tk_load_done (load);
    CHECK (before > 0, "orders flow through terrace");
    CHECK (tk_kill (s_primary, SIGKILL) == 128 + SIGKILL, "kill -9 terrace");
    printf ("fault_gateway_kill: kill -9 of terrace after %zu orders\n",
            before);
    usleep (2000 * 1000);
    size_t after = tk_load_done (load);
    tk_load_stop (&load);
    CHECK (after > before, "orders go on through bar: %zu after %zu", after,
           before);
}

TK_CASE (store_and_kitchen_exact)
{
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw[1], 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_gateway_kill", &t);
    CHECK (t.no_answer > 0,
           "no pad noticed terrace die (no failed connection)");
    tk_tally_check_exact (&t);

    bool caught_up = tk_follower_wait (s_kitchen, t.max_seq, 20000);
    tk_follower_print ("fault_gateway_kill", s_kitchen);
    tk_follow_stats_t ks;
    tk_follower_stats (s_kitchen, &ks);
    CHECK (caught_up, "kitchen reached seq %lld: at %lld",
           (long long) t.max_seq, (long long) ks.last);
    CHECK (ks.gaps == 0 && ks.duplicates == 0 && ks.snapshots == 0
               && ks.errors == 0,
           "kitchen saw gaps %zu, duplicates %zu, resyncs %zu, errors %zu",
           ks.gaps, ks.duplicates, ks.snapshots, ks.errors);
}

//  terrace comes back on its port and takes orders again
TK_CASE (terrace_back)
{
    s_gateway (s_gw[0], "terrace");
    CHECK (tk_wait_http (s_gw[0], "/healthz", 200, 15000), "terrace back");
    int current = 0;
    char *body = tk_order_body ("T9", 1, false, 0);
    int status = tk_ledger_place (s_ledger, s_gw, 1, &current, "gk-after", "T9",
                                  body, 10000);
    free (body);
    CHECK (status == 201, "order through the restarted terrace: %d", status);
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw[0], 1000, &t),
           "orders could be listed");
    CHECK (t.stored == t.acked && t.duplicates == 0 && t.lost == 0,
           "after terrace's restart: stored %zu, acknowledged %zu", t.stored,
           t.acked);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (terrace_killed),
                                     TK_CASE_ENTRY (store_and_kitchen_exact),
                                     TK_CASE_ENTRY (terrace_back),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_gateway_kill");
    tk_run_cases (s_cases);
    tk_follower_destroy (&s_kitchen);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
