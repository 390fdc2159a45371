/*  test_fault_power — power cuts under load.  kill -9 cannot test the
    sync (the page cache outlives the process); this does.  The writer
    runs with tests/powerfs.c preloaded, which logs what every write to
    data.mdb overwrote until a sync makes it durable, on a disk that takes
    2 ms to sync (so cuts land while writes wait for their sync).  Pads
    place orders all along, retrying with their keys.  At random moments
    the power goes: the writer is killed with SIGKILL and data.mdb made
    what the disk would hold (tk_power_cut): the writes not yet synced are
    thrown away, or on every other cut a random subset of their 4 KiB
    pages is kept (torn).  The writer is restarted on it.  Then:

      - after every cut the environment opens cleanly: `orderbus export`
        reads every order in it, then the writer runs on it and serves;
      - every order whose 201 a pad got is stored exactly once, under the
        id and seq its 201 named; nothing else is stored; seqs are 1..N;
      - a late retry of acknowledged keys answers the same order, as a
        replay.

    Cuts: 20 (about 25 s under the sanitizers); ORDERBUS_POWER_CUTS=n
    runs n (the long mode, docs/delivery.md); POWER_SEED=s repeats a run's
    moments and tears (each run prints its seed).

    With the argument "nosync" (fault_power_nosync, Debug builds only) the
    writer runs with ORDERBUS_DEBUG_NOSYNC=1, its commits not synced, and
    the test checks the opposite: the cuts lose acknowledged orders.  So
    the test is seen to fail when the sync is missing.  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include "testkit.h"

#define CHECK         TK_CHECK
#define CUTS          20
#define NOSYNC_CUTS   3
#define CLIENTS       4
#define LINES         2
#define SYNC_DELAY_US "2000"

static bool s_nosync;
static int s_gw;
static char s_data[600], s_file[700], s_undo[700], s_menu[600];
static char s_intake[64], s_events[64], s_sync[64];
static pid_t s_writer_pid;
static unsigned s_seed;
static tk_ledger_t *s_ledger;
static tk_load_t *s_load;

//  The writer on the store, with powerfs between it and its disk (or
//  without, to make the store first)
static pid_t
s_writer (bool powerfs)
{
    static char preload[800], file[800], undo[800], asan[1200];
    snprintf (preload, sizeof preload, "LD_PRELOAD=%s", POWERFS_LIBRARY);
    snprintf (file, sizeof file, "POWERFS_FILE=%s", s_file);
    snprintf (undo, sizeof undo, "POWERFS_UNDO=%s", s_undo);
    //  The writer is an ASan build and the shim is not: ASan must be told
    //  that it is not first in the library list on purpose
    const char *inherited = getenv ("ASAN_OPTIONS");
    snprintf (asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
              inherited ? inherited : "", inherited && *inherited ? ":" : "");
    const char *env[] = { preload,
                          file,
                          undo,
                          asan,
                          "POWERFS_SYNC_DELAY_US=" SYNC_DELAY_US,
                          s_nosync ? "ORDERBUS_DEBUG_NOSYNC=1" : NULL,
                          NULL };
    return tk_spawn_env ("writer", powerfs ? env : NULL, "writer", "--data",
                         s_data, "--menu", s_menu, "--intake", s_intake,
                         "--events", s_events, "--sync", s_sync,
                         "--heartbeat-ms", "100",
                         //  Without syncs a cut leaves data.mdb older than
                         //  what dir/committed says was acknowledged, and
                         //  the writer refuses it (integration_corruption):
                         //  here it is told to go on, so the loss is counted
                         s_nosync ? "--accept-restore" : NULL, NULL);
}

//  The writer opened its environment: it runs and serves reads from it
static void
s_writer_serves (int cut)
{
    json_t *list = NULL;
    for (int64_t end = tk_now_ms () + 20000; !list && tk_now_ms () < end;) {
        int status;
        CHECK (waitpid (s_writer_pid, &status, WNOHANG) == 0,
               "the writer exited after power cut %d: its environment did "
               "not open cleanly (writer.log)",
               cut);
        if (!(list = tk_get_json (s_gw, "/api/v1/orders?limit=1", 200)))
            usleep (100 * 1000);
    }
    CHECK (list, "the writer serves no read 20 s after power cut %d", cut);
    json_decref (list);
}

//  Another reader opens what the cut left, read-only, and reads every
//  order in it: `orderbus export` (one CSV row an order, after a header)
static size_t
s_export_reads (int cut)
{
    char path[700], *out = NULL;
    snprintf (path, sizeof path, "%s/export.csv", tk_dir ());
    int rc = tk_run (&out, "export", "--data", s_data, "--output", path,
                     "--force", NULL);
    CHECK (rc == 0, "orderbus export after power cut %d: exit %d: %.300s", cut,
           rc, out ? out : "");
    free (out);
    FILE *csv = fopen (path, "r");
    CHECK (csv, "orderbus export wrote no %s", path);
    size_t rows = 0;
    for (int c; (c = fgetc (csv)) != EOF;)
        rows += c == '\n';
    fclose (csv);
    printf ("fault_power: cut %d: orderbus export read %zu orders\n", cut,
            rows ? rows - 1 : 0);
    return rows ? rows - 1 : 0;
}

TK_CASE (start)
{
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_file, sizeof s_file, "%s/data.mdb", s_data);
    snprintf (s_undo, sizeof s_undo, "%s/powerfs.undo", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    s_gw = tk_port ();
    char gw_port[16];
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    const char *seed = getenv ("POWER_SEED");
    s_seed = seed ? (unsigned) strtoul (seed, NULL, 10)
                  : (unsigned) time (NULL) ^ (unsigned) getpid ();
    printf ("fault_power: seed %u (POWER_SEED=%u repeats it)\n", s_seed,
            s_seed);

    //  The store is made by a writer of its own, stopped cleanly: what
    //  the cuts can lose is what the writer under powerfs wrote
    s_writer_pid = s_writer (false);
    //  The per-table rate limit is not what this test is about
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", s_intake, "--events",
                  s_events, "--sync", s_sync, "--http-port", gw_port, "--name",
                  "patio", "--heartbeat-ms", "100", "--link-timeout-ms", "1000",
                  NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_kill (s_writer_pid, SIGTERM) == 0, "the first writer stops");
    s_writer_pid = s_writer (true);
    s_writer_serves (0);
}

//  Power cuts at random moments under load, each followed by a restart
//  on what the disk kept
TK_CASE (power_cuts)
{
    const char *long_mode = getenv ("ORDERBUS_POWER_CUTS");
    int cuts = s_nosync ? NOSYNC_CUTS : long_mode ? atoi (long_mode) : CUTS;
    CHECK (cuts > 0,
           "ORDERBUS_POWER_CUTS must be a number of cuts, 1 or "
           "more (got '%s')",
           long_mode);
    s_ledger = tk_ledger_new ();
    tk_load_opts_t opts = { .ports = &s_gw,
                            .port_count = 1,
                            .threads = CLIENTS,
                            .prefix = "pw",
                            .lines = LINES,
                            .retry_ms = 30000 };
    s_load = tk_load_start (s_ledger, &opts);
    int hit = 0;
    size_t lost_pages = 0;
    for (int k = 1; k <= cuts; k++) {
        usleep ((useconds_t) (300 + rand_r (&s_seed) % 1200) * 1000);
        size_t done = tk_load_done (s_load);
        CHECK (tk_kill (s_writer_pid, SIGKILL) == 128 + SIGKILL,
               "kill -9 at power cut %d", k);
        //  Without syncs (nosync) a torn file would be damaged past what
        //  that run is about: it undoes every write, to show the loss
        bool torn = !s_nosync && k % 2 == 0;
        tk_power_cut_t cut;
        CHECK (tk_power_cut (s_file, s_undo, torn, &s_seed, &cut),
               "power cut %d made", k);
        printf ("fault_power: cut %d after %zu orders: %zu unsynced writes "
                "(%zu pages), %zu pages lost%s, %zu durable writes kept\n",
                k, done, cut.writes, cut.pages, cut.lost,
                torn ? " (torn: the others kept)" : "", cut.durable);
        fflush (stdout);
        hit += cut.writes > 0;
        lost_pages += cut.lost;
        //  Every order finished before the kill got its 201 (checked at
        //  the end): they must all be there (nosync: see the tally)
        size_t stored = s_export_reads (k);
        CHECK (s_nosync || stored >= done,
               "power cut %d lost acknowledged orders: %zu stored, %zu "
               "acknowledged before it",
               k, stored, done);
        s_writer_pid = s_writer (true);
        s_writer_serves (k);
    }
    printf ("fault_power: %d of %d cuts found writes waiting for a sync; "
            "%zu pages lost in all\n",
            hit, cuts, lost_pages);
    CHECK (hit > 0, "no cut found a write waiting for its sync: the cuts "
                    "missed what they are about");
    usleep (1500 * 1000);   //  the last writer takes load for a while
    tk_load_stop (&s_load);
}

TK_CASE (acked_orders_kept)
{
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_power", &t);
    CHECK (t.acked > 0, "orders were acknowledged");
    tk_tally_check_exact (&t);
    size_t retried,
        differ =
            tk_ledger_retry_acked (s_ledger, s_gw, t.acked / 400 + 1, &retried);
    printf ("fault_power: %zu acknowledged keys retried, %zu answered "
            "otherwise\n",
            retried, differ);
    CHECK (retried > 0 && differ == 0,
           "%zu of %zu late retries did not answer their first 201", differ,
           retried);
}

//  fault_power_nosync: without the sync, the same cuts lose acked orders
TK_CASE (acked_orders_lost)
{
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_power_nosync", &t);
    printf ("fault_power_nosync: with syncs off the cuts lost %zu of %zu "
            "acknowledged orders\n",
            t.lost, t.acked);
    CHECK (t.lost > 0,
           "with syncs off no acknowledged order was lost: the test "
           "cannot see a missing sync");
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (power_cuts),
                                     TK_CASE_ENTRY (acked_orders_kept),
                                     { NULL, NULL } };

static const tk_case_t s_nosync_cases[] = { TK_CASE_ENTRY (start),
                                            TK_CASE_ENTRY (power_cuts),
                                            TK_CASE_ENTRY (acked_orders_lost),
                                            { NULL, NULL } };

int
main (int argc, char **argv)
{
    s_nosync = argc > 2 && strcmp (argv[2], "nosync") == 0;
    tk_init (argc, argv, s_nosync ? "fault_power_nosync" : "fault_power");
    tk_run_cases (s_nosync ? s_nosync_cases : s_cases);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
