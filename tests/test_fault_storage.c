/*  test_fault_storage — the disk fails under the writer.  tests/faultfs.c,
    preloaded into the writer, makes every write and sync of LMDB's
    data.mdb fail while a trigger file exists: with EIO, or with ENOSPC
    (a full disk) when the file says so.

      - While the disk fails, orders get 503 with Retry-After (the batch
        failed, nothing was committed) and nothing is published: a
        kitchen on the edge sees no event; reads still work; the
        writer's storage_failures counter grows.  The gateway's and the
        edge's /healthz answer 503 "writer storage failing", and the
        writer logs that once, not once per batch.
      - Once the disk works again, both /healthz are 200 before any
        order is sent (the writer probes its disk), the writer logs
        "storage ok again" once, and the same keys and bodies get 201,
        each exactly once and not as replays (nothing of the failed
        batches was kept), with consecutive seqs that the kitchen sees.
      - The disk is full (ENOSPC): the same, reported as "storage full
        (no space left on device)": in the writer's log exactly once
        however many batches fail, in both /healthz's reason and
        writer_storage, and in the writer's stats; freed, both /healthz
        are 200 again and the next orders get 201.
      - The same again under concurrent load with the disk failing for a
        second in the middle: every acknowledged order stored once, seqs
        1..N, the kitchen gap-free.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK         TK_CHECK
#define FAILED_ORDERS 5

static int s_gw, s_edge;
static char s_trigger[700];

static json_int_t
s_writer_stat (const char *name)
{
    char path[64];
    snprintf (path, sizeof path, "writer.%s", name);
    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    json_int_t n = tk_json_int (stats, path);
    json_decref (stats);
    return n;
}

//  The writer's storage state in its stats ("ok", "failing", "full"), or
//  "" if the stats have none
static void
s_writer_storage (char *out, size_t cap)
{
    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    const char *state = json_string_value (
        json_object_get (json_object_get (stats, "writer"), "storage"));
    snprintf (out, cap, "%s", state ? state : "");
    json_decref (stats);
}

//  The disk fails with errno_name's errno ("EIO", "ENOSPC") from now on,
//  or works again (NULL).  The trigger appears whole, by a rename, so the
//  shim never reads it half-written.
static void
s_disk (const char *errno_name)
{
    if (!errno_name) {
        CHECK (unlink (s_trigger) == 0, "remove %s", s_trigger);
        return;
    }
    char next[720];
    snprintf (next, sizeof next, "%s.next", s_trigger);
    FILE *f = fopen (next, "w");
    CHECK (f, "create %s", next);
    fputs (errno_name, f);
    fclose (f);
    CHECK (rename (next, s_trigger) == 0, "rename to %s", s_trigger);
}

static void
s_disk_fails (bool fails)
{
    s_disk (fails ? "EIO" : NULL);
}

//  Lines of the writer's log that hold text.
static int
s_log_count (const char *text)
{
    char path[700], line[4096];
    snprintf (path, sizeof path, "%s/writer.log", tk_dir ());
    FILE *f = fopen (path, "r");
    CHECK (f, "open %s", path);
    int n = 0;
    while (fgets (line, sizeof line, f))
        n += strstr (line, text) != NULL;
    fclose (f);
    return n;
}

//  Poll port's /healthz until it answers status with part.writer_storage
//  storage and a reason holding reason (NULL: none); false after 10 s.
//  On success *last_out (if not NULL) gets the last body (caller decrefs).
static bool
s_health_is (int port, const char *part, int status, const char *storage,
             const char *reason, json_t **last_out)
{
    for (int tries = 0; tries < 200; tries++) {
        tk_response_t r;
        tk_http (port, "GET", "/healthz", NULL, NULL, &r);
        const char *got = json_string_value (
            json_object_get (json_object_get (r.json, part), "writer_storage"));
        const char *why =
            json_string_value (json_object_get (r.json, "reason"));
        const char *part_why = json_string_value (
            json_object_get (json_object_get (r.json, part), "reason"));
        bool match = r.status == status && got && strcmp (got, storage) == 0
                     && (reason ? why && strstr (why, reason) && part_why
                                      && strstr (part_why, reason)
                                : !why && !part_why);
        if (match && last_out)
            *last_out = json_incref (r.json);
        tk_response_free (&r);
        if (match)
            return true;
        usleep (50 * 1000);
    }
    return false;
}

static void
s_key (char *key, size_t cap, char *table, size_t table_cap, int i)
{
    snprintf (key, cap, "disk-%d", i);
    snprintf (table, table_cap, "T%d", i + 10);
}

//  What the cases share besides s_gw: the edge's kitchen, the ledger and
//  the pad's gateway, the failures counted before the first failure
static tk_follower_t *s_kitchen;
static tk_ledger_t *s_ledger;
static int s_current;
static json_int_t s_failures0, s_failures;

TK_CASE (start)
{
    char data[600], menu[600], web[600], intake[64], events[64], sync[64];
    char gw_port[16], edge_port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_endpoints (intake, events, sync);
    snprintf (s_trigger, sizeof s_trigger, "%s/disk-fails", tk_dir ());
    s_gw = tk_port ();
    s_edge = tk_port ();
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);

    //  The writer is an ASan build and the shim is not: ASan must be told
    //  that it is not first in the library list on purpose
    static char preload[800], trigger[800], asan[1200];
    snprintf (preload, sizeof preload, "LD_PRELOAD=%s", FAULTFS_LIBRARY);
    snprintf (trigger, sizeof trigger, "FAULTFS_TRIGGER=%s", s_trigger);
    const char *inherited = getenv ("ASAN_OPTIONS");
    snprintf (asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
              inherited ? inherited : "", inherited && *inherited ? ":" : "");
    const char *env[] = { preload, trigger, asan, NULL };
    tk_spawn_env ("writer", env, "writer", "--data", data, "--menu", menu,
                  "--intake", intake, "--events", events, "--sync", sync, NULL);
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", intake, "--events",
                  events, "--sync", sync, "--http-port", gw_port, NULL);
    tk_spawn_env ("edge", NULL, "edge", "--events", events, "--sync", sync,
                  "--http-port", edge_port, "--web", web, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    s_kitchen = tk_follower_new (s_edge, "kitchen");
    CHECK (tk_follower_wait (s_kitchen, 0, 10000), "kitchen snapshot");
}

TK_CASE (orders_before)
{
    s_ledger = tk_ledger_new ();
    for (int i = 0; i < 2; i++) {
        char key[16];
        snprintf (key, sizeof key, "before-%d", i);
        char *body = tk_order_body ("T1", 2, false, i);
        CHECK (tk_ledger_place (s_ledger, &s_gw, 1, &s_current, key, "T1", body,
                                10000)
                   == 201,
               "order %s before the disk fails", key);
        free (body);
    }
    CHECK (tk_follower_wait (s_kitchen, 2, 10000), "kitchen sees the first 2");
    s_failures0 = s_writer_stat ("storage_failures");
    CHECK (s_failures0 >= 0, "writer.storage_failures in /api/v1/stats");
}

//  1. The disk fails: 503s, nothing committed, nothing published
TK_CASE (disk_fails)
{
    s_disk_fails (true);
    for (int i = 0; i < FAILED_ORDERS; i++) {
        char key[16], table[16], retry[16];
        s_key (key, sizeof key, table, sizeof table, i);
        char *body = tk_order_body (table, 3, false, i);
        tk_response_t r;
        tk_post_order (s_gw, key, body, &r);
        const char *code = json_string_value (
            json_object_get (json_object_get (r.json, "error"), "code"));
        CHECK (r.status == 503 && code && strcmp (code, "unavailable") == 0
                   && tk_header (&r, "Retry-After", retry, sizeof retry),
               "order %s while the disk fails: %d %s", key, r.status,
               r.body ? r.body : "");
        tk_response_free (&r);
        free (body);
    }
    s_failures = s_writer_stat ("storage_failures");
    printf ("fault_storage: %d orders refused with 503 while the disk failed; "
            "writer.storage_failures %lld -> %lld\n",
            FAILED_ORDERS, (long long) s_failures0, (long long) s_failures);
    CHECK (s_failures > s_failures0, "writer.storage_failures did not grow");
    CHECK (s_health_is (s_gw, "gateway", 503, "failing",
                        "writer storage failing", NULL),
           "gateway /healthz is not 503 'writer storage failing'");
    CHECK (s_health_is (s_edge, "edge", 503, "failing",
                        "writer storage failing", NULL),
           "edge /healthz is not 503 'writer storage failing'");
    CHECK (!tk_follower_wait (s_kitchen, 3, 1500),
           "an event was published for a "
           "batch that failed");
    json_t *list = tk_get_json (s_gw, "/api/v1/orders?limit=1000", 200);
    CHECK (list, "orders can still be read while the disk fails");
    CHECK (json_array_size (json_object_get (list, "orders")) == 2,
           "%zu orders stored, want the 2 from before",
           json_array_size (json_object_get (list, "orders")));
    json_decref (list);
    int lines = s_log_count ("writer: storage failing (input/output error)");
    CHECK (lines == 1,
           "the writer logged 'storage failing' %d times for %lld failed "
           "batches, want once",
           lines, (long long) (s_failures - s_failures0));
}

//  2. The disk works again: the same keys and bodies, 201 once each
TK_CASE (disk_works_again)
{
    s_disk_fails (false);
    //  Before any order: the writer found out by itself
    CHECK (s_health_is (s_gw, "gateway", 200, "ok", NULL, NULL),
           "gateway /healthz is not 200 again once the disk works");
    CHECK (s_health_is (s_edge, "edge", 200, "ok", NULL, NULL),
           "edge /healthz is not 200 again once the disk works");
    CHECK (s_log_count ("writer: storage ok again after") == 1,
           "the writer did not log 'storage ok again' once");
    for (int i = 0; i < FAILED_ORDERS; i++) {
        char key[16], table[16];
        s_key (key, sizeof key, table, sizeof table, i);
        char *body = tk_order_body (table, 3, false, i);
        CHECK (tk_ledger_place (s_ledger, &s_gw, 1, &s_current, key, table,
                                body, 15000)
                   == 201,
               "order %s once the disk works", key);
        free (body);
    }
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_storage: after the first failure", &t);
    CHECK (t.replayed == 0,
           "%zu retried orders came back as replays: part of a "
           "failed batch was kept",
           t.replayed);
    CHECK (t.stored == 2 + FAILED_ORDERS && t.duplicates == 0 && t.lost == 0
               && t.unknown == 0 && t.mismatched == 0,
           "want %d orders stored once", 2 + FAILED_ORDERS);
    CHECK (t.seq_gaps == 0 && t.seq_dups == 0 && t.max_seq == 2 + FAILED_ORDERS,
           "seqs are not 1..%d", 2 + FAILED_ORDERS);
    CHECK (tk_follower_wait (s_kitchen, t.max_seq, 10000), "kitchen sees them");
}

//  3. The disk is full: the same refusals, said as such, and said once
TK_CASE (disk_full)
{
    json_int_t failures0 = s_writer_stat ("storage_failures");
    int failing0 = s_log_count ("writer: storage failing");
    s_disk ("ENOSPC");
    for (int i = 0; i < FAILED_ORDERS; i++) {
        char key[16], table[16];
        snprintf (key, sizeof key, "full-%d", i);
        snprintf (table, sizeof table, "T%d", i + 20);
        char *body = tk_order_body (table, 1, false, i);
        tk_response_t r;
        tk_post_order (s_gw, key, body, &r);
        CHECK (r.status == 503, "order %s on a full disk: %d %s", key, r.status,
               r.body ? r.body : "");
        tk_response_free (&r);
        free (body);
    }
    json_int_t failures = s_writer_stat ("storage_failures");
    CHECK (failures >= failures0 + FAILED_ORDERS,
           "writer.storage_failures %lld -> %lld, want %d more",
           (long long) failures0, (long long) failures, FAILED_ORDERS);
    json_t *health = NULL;
    CHECK (s_health_is (s_gw, "gateway", 503, "full", "writer storage full",
                        &health),
           "gateway /healthz is not 503 'writer storage full'");
    printf ("fault_storage: gateway /healthz on a full disk: %s\n",
            json_string_value (json_object_get (health, "reason")));
    json_decref (health);
    CHECK (
        s_health_is (s_edge, "edge", 503, "full", "writer storage full", NULL),
        "edge /healthz is not 503 'writer storage full'");
    char storage[16];
    s_writer_storage (storage, sizeof storage);
    CHECK (strcmp (storage, "full") == 0, "writer.storage is '%s', want full",
           storage);
    //  Nothing committed, nothing published
    json_t *list = tk_get_json (s_gw, "/api/v1/orders?limit=1000", 200);
    size_t stored = json_array_size (json_object_get (list, "orders"));
    json_decref (list);
    CHECK (stored == 2 + FAILED_ORDERS, "%zu orders stored, want %d", stored,
           2 + FAILED_ORDERS);
    CHECK (!tk_follower_wait (s_kitchen, 3 + FAILED_ORDERS, 1000),
           "an event was published on a full disk");
    //  A few heartbeats' probes more, then the log: one line for it all
    usleep (1500 * 1000);
    int full = s_log_count ("writer: storage full (no space left on device)");
    int commit = s_log_count ("store: commit");
    int failing = s_log_count ("writer: storage failing") - failing0;
    printf ("fault_storage: %lld failed batches on a full disk, %d 'storage "
            "full' lines in the writer's log\n",
            (long long) (failures - failures0), full);
    CHECK (full == 1 && commit == 0 && failing == 0,
           "the writer's log has %d 'storage full (no space left on "
           "device)' lines, %d 'store: commit' and %d new 'storage failing' "
           "for %lld failed batches; want 1, 0, 0",
           full, commit, failing, (long long) (failures - failures0));
}

//  4. Space is freed: healthy again, and the next orders are 201
TK_CASE (disk_freed)
{
    s_disk (NULL);
    CHECK (s_health_is (s_gw, "gateway", 200, "ok", NULL, NULL),
           "gateway /healthz is not 200 again once space is freed");
    CHECK (s_health_is (s_edge, "edge", 200, "ok", NULL, NULL),
           "edge /healthz is not 200 again once space is freed");
    char storage[16];
    s_writer_storage (storage, sizeof storage);
    CHECK (strcmp (storage, "ok") == 0, "writer.storage is '%s', want ok",
           storage);
    CHECK (s_log_count ("writer: storage ok again after") == 2,
           "the writer did not log 'storage ok again' once more");
    for (int i = 0; i < FAILED_ORDERS; i++) {
        char key[16], table[16];
        snprintf (key, sizeof key, "full-%d", i);
        snprintf (table, sizeof table, "T%d", i + 20);
        char *body = tk_order_body (table, 1, false, i);
        CHECK (tk_ledger_place (s_ledger, &s_gw, 1, &s_current, key, table,
                                body, 10000)
                   == 201,
               "order %s once space is freed", key);
        free (body);
    }
    CHECK (tk_follower_wait (s_kitchen, 2 + 2 * FAILED_ORDERS, 10000),
           "kitchen sees the orders placed once space was freed");
}

//  5. Under load, the disk fails for a second
TK_CASE (fails_under_load)
{
    tk_load_opts_t opts = { .ports = &s_gw,
                            .port_count = 1,
                            .threads = 4,
                            .prefix = "load",
                            .lines = 2,
                            .retry_ms = 30000 };
    tk_load_t *load = tk_load_start (s_ledger, &opts);
    usleep (700 * 1000);
    s_disk_fails (true);
    usleep (1000 * 1000);
    s_disk_fails (false);
    usleep (1000 * 1000);
    tk_load_stop (&load);
    CHECK (s_writer_stat ("storage_failures") > s_failures,
           "no batch failed under load");
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_storage: under load", &t);
    CHECK (t.busy > 0, "no pad saw a 503 while the disk failed under load");
    CHECK (t.refused == 0 && t.unresolved == 0, "refused %zu, unresolved %zu",
           t.refused, t.unresolved);
    CHECK (t.stored == t.acked && t.acked == t.sent && t.duplicates == 0
               && t.lost == 0 && t.unknown == 0 && t.mismatched == 0,
           "the store does not match the 201s");
    CHECK (t.seq_gaps == 0 && t.seq_dups == 0
               && t.max_seq == (json_int_t) t.stored,
           "seqs are not 1..%zu", t.stored);
    bool all = tk_follower_wait (s_kitchen, t.max_seq, 20000);
    tk_follower_print ("fault_storage", s_kitchen);
    tk_follow_stats_t st;
    tk_follower_stats (s_kitchen, &st);
    CHECK (all && st.gaps == 0 && st.duplicates == 0 && st.snapshots == 0,
           "kitchen: last %lld of %lld, gaps %zu, duplicates %zu, resyncs %zu",
           (long long) st.last, (long long) t.max_seq, st.gaps, st.duplicates,
           st.snapshots);
    printf ("fault_storage: writer.storage_failures %lld in all\n",
            (long long) s_writer_stat ("storage_failures"));
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (orders_before),
                                     TK_CASE_ENTRY (disk_fails),
                                     TK_CASE_ENTRY (disk_works_again),
                                     TK_CASE_ENTRY (disk_full),
                                     TK_CASE_ENTRY (disk_freed),
                                     TK_CASE_ENTRY (fails_under_load),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_storage");
    tk_run_cases (s_cases);
    tk_follower_destroy (&s_kitchen);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
