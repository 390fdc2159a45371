/*  test_retention — the event log and the idempotency keys are pruned by
    age (docs/retention.md), with real processes on loopback tcp:

      old_data        a store whose events are dated 45 days ago, made
                      with the writer's own ledger by this test (no writer
                      running: a tool of the test's, not of the binary)
      edge_synced     a writer that keeps everything (--retain-days 0), a
                      gateway, an edge and a kitchen's WebSocket: the
                      kitchen gets every open order
      older_data      the writer stopped; more events, dated 40 days ago,
                      appended the same way
      pruned          the writer back with the default retention (30
                      days): it prunes every event and key at start,
                      counts them, logs one line, and a replay from any
                      pruned seq is answered "snapshot instead"
                      (BUS_ERR_PRUNED, with the log's first seq) on the
                      sync socket
      edge_recovers   the edge, behind by events that are gone, takes a
                      snapshot instead of looping or failing, and the
                      kitchen gets a snapshot with every open order
      resume_pruned   a browser resuming from a pruned seq gets a snapshot
                      with every open order
      after           a new order reaches both kitchens; the same request
                      under a pruned key is a new order, as documented
      sync_start_hold the writer restarted with writer/sync_replica
                      (never there): a read replica started from a copy
                      of its data dir gets heartbeats, not a false
                      "pruned" that stops it; a command (an 86, held,
                      503) does not cancel the start hold: a replay shows
                      nothing, and the read replica is not sent its menu

    To make data 45 days old without waiting, the test commits through
    bus_ledger_apply with `now` in the past: the real rules and the real
    LMDB file, only the clock is the test's.  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_ledger.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_sync.h"
#include "testkit.h"

#define CHECK  TK_CHECK
#define DAY_MS 86400000LL

static char s_intake[TK_ENDPOINT_LEN], s_events[TK_ENDPOINT_LEN],
    s_sync[TK_ENDPOINT_LEN];
static char s_data[600], s_menu[600];
static pid_t s_writer;
static int s_gw, s_edge;
static tk_ws_t *s_kitchen;     //  connected before the pruning
static uint64_t s_last_old;    //  the last seq committed in the past
static json_int_t s_pruned0;   //  the edge's snapshots_instead before

//  ---------------------------------------------------------------------
//  The test's tool: commands applied in the past, no writer running

typedef struct {
    bus_store_t *store;
    bus_ledger_t *ledger;
    bus_cmd_t cmd;
    bus_ack_t ack;
    int64_t now;
    uint64_t commands;   //  applied, each with its key
} s_past_t;

static void
s_past_emit (const bus_event_t *event, zframe_t **body, void *arg)
{
    (void) event;
    (void) arg;
    zframe_destroy (body);
}

static s_past_t *
s_past_open (int days_ago)
{
    s_past_t *past = calloc (1, sizeof *past);
    CHECK (past, "memory");
    int rc;
    past->store = bus_store_new (s_data, 0, &rc);
    CHECK (past->store, "open %s: %s", s_data, bus_strerror (rc));
    char *menu = NULL;
    size_t len;
    uint64_t version;
    if (bus_store_menu_get (past->store, &menu, &len, &version) != 0) {
        zchunk_t *chunk = zchunk_slurp (s_menu, 0);
        CHECK (chunk, "read %s", s_menu);
        CHECK (bus_store_menu_put (past->store,
                                   (const char *) zchunk_data (chunk),
                                   zchunk_size (chunk))
                   == 0,
               "menu stored");
        zchunk_destroy (&chunk);
    }
    free (menu);
    past->ledger = bus_ledger_new (past->store, 875);
    past->now = tk_now_ms () - days_ago * DAY_MS;
    return past;
}

//  Apply the command being built, in a batch of its own; must be applied
static void
s_past_apply (s_past_t *past)
{
    CHECK (bus_store_begin (past->store) == 0, "begin");
    CHECK (bus_ledger_apply (past->ledger, &past->cmd, past->now, &past->ack,
                             s_past_emit, NULL)
               == 0,
           "apply");
    CHECK (past->ack.status == 0, "%s: %s", past->cmd.key, past->ack.error);
    CHECK (bus_store_commit (past->store) == 0, "commit");
    past->commands++;
    past->now += 60000;   //  a minute later
}

static void
s_past_cmd (s_past_t *past, bus_cmd_type_t type, const char *key,
            const char *table)
{
    memset (&past->cmd, 0, sizeof past->cmd);
    past->cmd.type = type;
    snprintf (past->cmd.key, sizeof past->cmd.key, "%s", key);
    snprintf (past->cmd.origin, sizeof past->cmd.origin, "gw-past");
    snprintf (past->cmd.table, sizeof past->cmd.table, "%s", table);
}

//  Order n: key old-n, table T<n % 3 + 1>, n fries
static uint64_t
s_past_place (s_past_t *past, int n)
{
    char key[32], table[8];
    snprintf (key, sizeof key, "old-%d", n);
    snprintf (table, sizeof table, "T%d", n % 3 + 1);
    s_past_cmd (past, BUS_CMD_PLACE, key, table);
    past->cmd.line_count = 1;
    snprintf (past->cmd.lines[0].item_id, sizeof past->cmd.lines[0].item_id,
              "fries");
    past->cmd.lines[0].qty = (uint32_t) n;
    s_past_apply (past);
    return past->ack.event.order.id;
}

static void
s_past_status (s_past_t *past, uint64_t id, bus_status_t status)
{
    char key[32];
    snprintf (key, sizeof key, "old-status-%llu-%d", (unsigned long long) id,
              (int) status);
    s_past_cmd (past, BUS_CMD_SET_STATUS, key, "");
    past->cmd.order_id = id;
    past->cmd.status = status;
    s_past_apply (past);
}

static void
s_past_close (s_past_t **past_p)
{
    s_past_t *past = *past_p;
    s_last_old = bus_store_last_seq (past->store);
    bus_ledger_destroy (&past->ledger);
    bus_store_destroy (&past->store);
    free (past);
    *past_p = NULL;
}

//  ---------------------------------------------------------------------
//  Helpers

static pid_t
s_start_writer (const char *name, const char *retain_days,
                const char *key_retain_days)
{
    return tk_spawn (name, "writer", "--data", s_data, "--menu", s_menu,
                     "--intake", s_intake, "--events", s_events, "--sync",
                     s_sync, "--heartbeat-ms", "100", "--retain-days",
                     retain_days, "--key-retain-days", key_retain_days, NULL);
}

//  The ids of the open orders the writer holds, as a sorted string
static void
s_open_ids (char *out, size_t cap)
{
    json_t *list = tk_get_json (s_gw, "/api/v1/orders?limit=1000", 200);
    CHECK (list, "list orders");
    json_t *orders = json_object_get (list, "orders");
    bool seen[1000] = { false };
    size_t i;
    json_t *order;
    json_array_foreach (orders, i, order)
    {
        const char *status =
            json_string_value (json_object_get (order, "status"));
        json_int_t id = json_integer_value (json_object_get (order, "id"));
        if (id > 0 && id < 1000 && strcmp (status, "served") != 0
            && strcmp (status, "cancelled") != 0)
            seen[id] = true;
    }
    json_decref (list);
    out[0] = '\0';
    for (int id = 1; id < 1000; id++)
        if (seen[id])
            snprintf (out + strlen (out), cap - strlen (out), "%d,", id);
}

//  The ids in a snapshot message, as a sorted string
static void
s_snapshot_ids (json_t *snapshot, char *out, size_t cap)
{
    bool seen[1000] = { false };
    size_t i;
    json_t *order;
    json_array_foreach (json_object_get (snapshot, "orders"), i, order)
    {
        json_int_t id = json_integer_value (json_object_get (order, "id"));
        if (id > 0 && id < 1000)
            seen[id] = true;
    }
    out[0] = '\0';
    for (int id = 1; id < 1000; id++)
        if (seen[id])
            snprintf (out + strlen (out), cap - strlen (out), "%d,", id);
}

//  The next message of type on ws within timeout_ms (caller decrefs)
static json_t *
s_next_of (tk_ws_t *ws, const char *type, int timeout_ms)
{
    int64_t until = tk_now_ms () + timeout_ms;
    while (tk_now_ms () < until) {
        json_t *msg = tk_ws_next (ws, (int) (until - tk_now_ms ()));
        if (!msg)
            return NULL;
        const char *t = json_string_value (json_object_get (msg, "type"));
        if (t && strcmp (t, type) == 0)
            return msg;
        json_decref (msg);
    }
    return NULL;
}

static json_int_t
s_health (const char *path)
{
    json_t *health = tk_get_json (s_edge, "/healthz", 200);
    json_int_t value = health ? tk_json_int (health, path) : -1;
    json_decref (health);
    return value;
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (old_data)
{
    s_past_t *past = s_past_open (45);
    for (int n = 1; n <= 6; n++)
        s_past_place (past, n);
    s_past_status (past, 1, BUS_STATUS_ACCEPTED);
    s_past_status (past, 2, BUS_STATUS_CANCELLED);
    s_past_close (&past);
    CHECK (s_last_old == 8, "8 events in the past, seq %llu",
           (unsigned long long) s_last_old);
}

TK_CASE (edge_synced)
{
    s_writer = s_start_writer ("writer", "0", "0");
    char gw[16], edge[16];
    snprintf (gw, sizeof gw, "%d", s_gw);
    snprintf (edge, sizeof edge, "%d", s_edge);
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", gw, NULL);
    tk_spawn ("edge", "edge", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", edge, "--heartbeat-ms", "100",
              NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    s_kitchen = tk_ws_open (s_edge, "/ws");
    CHECK (s_kitchen, "kitchen WebSocket");
    json_t *snapshot = s_next_of (s_kitchen, "snapshot", 5000);
    CHECK (snapshot, "kitchen's snapshot");
    char got[4000], want[4000];
    s_snapshot_ids (snapshot, got, sizeof got);
    s_open_ids (want, sizeof want);
    CHECK (strcmp (got, want) == 0 && strcmp (want, "1,3,4,5,6,") == 0,
           "kitchen has the open orders: %s, writer %s", got, want);
    CHECK (tk_json_int (snapshot, "seq") == 8, "at seq 8");
    json_decref (snapshot);
    s_pruned0 = s_health ("edge.snapshots_instead");
    CHECK (s_pruned0 == 0, "no snapshot instead yet: %lld",
           (long long) s_pruned0);
}

TK_CASE (older_data)
{
    CHECK (tk_kill (s_writer, SIGTERM) == 0, "writer stops");
    s_past_t *past = s_past_open (40);
    for (int n = 7; n <= 10; n++)
        s_past_place (past, n);
    s_past_status (past, 3, BUS_STATUS_CANCELLED);
    s_past_status (past, 4, BUS_STATUS_ACCEPTED);
    s_past_close (&past);
    CHECK (s_last_old == 14, "14 events in the past, seq %llu",
           (unsigned long long) s_last_old);
}

TK_CASE (pruned)
{
    s_writer = s_start_writer ("writer-retained", "30", "30");
    bus_sync_t *sync = bus_sync_new (s_sync, 2000, NULL);
    CHECK (sync, "sync client");
    bus_sync_req_t req = { .op = BUS_SYNC_REPLAY, .from = 1, .limit = 10 };
    bus_sync_reply_t reply = { 0 };
    zmsg_t *items = NULL;
    //  Pruning runs at start, on the writer's own thread: wait for it
    int64_t until = tk_now_ms () + 10000;
    while (tk_now_ms () < until) {
        zmsg_destroy (&items);
        if (bus_sync_call (sync, &req, &reply, &items) == 0
            && reply.status == BUS_ERR_PRUNED)
            break;
        usleep (100 * 1000);
    }
    CHECK (reply.status == BUS_ERR_PRUNED && zmsg_size (items) == 0,
           "replay from 1: status %d (%s), %zu items", reply.status,
           reply.error, items ? zmsg_size (items) : 0);
    CHECK (reply.next == s_last_old + 1, "the log starts at seq %llu",
           (unsigned long long) reply.next);
    CHECK (strstr (reply.error, "take a snapshot instead"), "says why: %s",
           reply.error);
    zmsg_destroy (&items);
    //  Every pruned seq answers so; the first kept one replays (nothing
    //  yet)
    for (uint64_t from = 0; from <= s_last_old + 1; from++) {
        req.from = from;
        CHECK (bus_sync_call (sync, &req, &reply, &items) == 0, "replay");
        CHECK (from <= s_last_old ? reply.status == BUS_ERR_PRUNED
                                  : reply.status == 0 && reply.count == 0,
               "replay from %llu: %d", (unsigned long long) from, reply.status);
        zmsg_destroy (&items);
    }
    bus_sync_destroy (&sync);

    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    CHECK (stats, "stats");
    CHECK (tk_json_int (stats, "writer.pruned_events") == 14
               && tk_json_int (stats, "writer.pruned_keys") == 10 + 4
               && tk_json_int (stats, "writer.first_seq") == 15,
           "writer's counts: events %lld, keys %lld, first seq %lld",
           (long long) tk_json_int (stats, "writer.pruned_events"),
           (long long) tk_json_int (stats, "writer.pruned_keys"),
           (long long) tk_json_int (stats, "writer.first_seq"));
    json_decref (stats);

    char path[700], *log = NULL;
    snprintf (path, sizeof path, "%s/writer-retained.log", tk_dir ());
    zchunk_t *chunk = zchunk_slurp (path, 0);
    if (chunk)
        log = zchunk_strdup (chunk);
    zchunk_destroy (&chunk);
    CHECK (log
               && strstr (log, "retention pruned 14 events older than 30 "
                               "days (the log now starts at seq 15) and 14 "
                               "idempotency keys"),
           "one line says what was pruned");
    free (log);
}

TK_CASE (edge_recovers)
{
    //  The edge was at seq 8; 9..14 are gone.  It is told so, takes a
    //  snapshot and sends it to its browsers.
    json_t *snapshot = s_next_of (s_kitchen, "snapshot", 10000);
    CHECK (snapshot, "the kitchen gets a new snapshot");
    char got[4000], want[4000];
    s_snapshot_ids (snapshot, got, sizeof got);
    s_open_ids (want, sizeof want);
    CHECK (strcmp (got, want) == 0 && strcmp (want, "1,4,5,6,7,8,9,10,") == 0,
           "every open order: kitchen %s, writer %s", got, want);
    CHECK (tk_json_int (snapshot, "seq") == 14, "at seq %lld",
           (long long) tk_json_int (snapshot, "seq"));
    json_decref (snapshot);
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 5000), "edge healthy");
    CHECK (s_health ("edge.seq") == 14, "edge at seq 14");
    CHECK (s_health ("edge.snapshots_instead") >= 1,
           "counted: %lld snapshots instead",
           (long long) s_health ("edge.snapshots_instead"));
    //  Told once, it does not ask again (no loop): the count stays
    json_int_t count = s_health ("edge.snapshots_instead");
    usleep (1000 * 1000);
    CHECK (s_health ("edge.snapshots_instead") == count,
           "no more replays of pruned seqs");
}

TK_CASE (resume_pruned)
{
    json_int_t before = s_health ("edge.snapshots_instead");
    tk_ws_t *ws = tk_ws_open (s_edge, "/ws?resume_from=3");
    CHECK (ws, "resuming WebSocket");
    json_t *first = tk_ws_next (ws, 5000);
    const char *type =
        first ? json_string_value (json_object_get (first, "type")) : NULL;
    CHECK (type && strcmp (type, "snapshot") == 0, "a snapshot first: %s",
           type ? type : "nothing");
    char got[4000], want[4000];
    s_snapshot_ids (first, got, sizeof got);
    s_open_ids (want, sizeof want);
    CHECK (strcmp (got, want) == 0, "every open order: %s, writer %s", got,
           want);
    json_decref (first);
    CHECK (s_health ("edge.snapshots_instead") == before + 1,
           "the edge asked the writer and was told: %lld",
           (long long) s_health ("edge.snapshots_instead"));
    tk_ws_close (&ws);
}

TK_CASE (after)
{
    tk_ws_t *resumed = tk_ws_open (s_edge, "/ws?resume_from=14");
    CHECK (resumed, "a browser resuming from the last seq");
    tk_response_t r;
    tk_post_order (
        s_gw, "new-1",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
        &r);
    CHECK (r.status == 201, "new order: %d %s", r.status, r.body);
    json_int_t id = tk_json_int (r.json, "id");
    CHECK (tk_json_int (r.json, "seq") == 15, "seq 15");
    tk_response_free (&r);
    tk_ws_t *both[] = { s_kitchen, resumed };
    for (int i = 0; i < 2; i++) {
        json_t *event = s_next_of (both[i], "event", 5000);
        CHECK (event && tk_json_int (event, "seq") == 15
                   && tk_json_int (event, "order.id") == id,
               "kitchen %d gets the new order", i);
        json_decref (event);
    }
    tk_ws_close (&resumed);

    //  old-5 was pruned: the same request under it is a new order
    tk_post_order (
        s_gw, "old-5",
        "{\"table\":\"T3\",\"items\":[{\"item_id\":\"fries\",\"quantity\":5}]}",
        &r);
    CHECK (r.status == 201 && tk_json_int (r.json, "id") == id + 1,
           "a pruned key is a new request: %d %s", r.status, r.body);
    tk_response_free (&r);
    //  new-1 is not: the original answer
    tk_post_order (
        s_gw, "new-1",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
        &r);
    CHECK (r.status == 201 && tk_json_int (r.json, "id") == id,
           "a kept key answers with its order: %d %s", r.status, r.body);
    tk_response_free (&r);
    tk_ws_close (&s_kitchen);
}

//  Whether name's log holds text
static bool
s_log_has (const char *name, const char *text)
{
    char *log = tk_log_text (name);
    bool has = log && strstr (log, text);
    free (log);
    return has;
}

//  The menu version of the store in dir (0 if none)
static uint64_t
s_menu_version (const char *dir)
{
    int rc;
    bus_store_t *store = bus_store_open_readonly (dir, &rc);
    char *menu = NULL;
    size_t len = 0;
    uint64_t version = 0;
    if (store && bus_store_menu_get (store, &menu, &len, &version) != 0)
        version = 0;
    free (menu);
    bus_store_destroy (&store);
    return version;
}

//  A lone writer in synchronous mode whose retention pruned its log
//  start, its synchronous replica absent: it holds everything of its
//  last run (released seq 0) until that replica confirms.  A read
//  replica started from a copy of its data dir is sent heartbeats, not
//  a false "pruned" that would stop it for good (its heartbeat read
//  started past the released seq, at or below the pruned one); and a
//  command does not cancel the start hold: a replay shows nothing
TK_CASE (sync_start_hold)
{
    CHECK (tk_kill (s_writer, SIGTERM) == 0, "the writer stops");
    char rdata[600], from[700], to[700], repl[64];
    snprintf (rdata, sizeof rdata, "%s/read-replica-data", tk_dir ());
    CHECK (mkdir (rdata, 0700) == 0, "mkdir %s", rdata);
    snprintf (from, sizeof from, "%s/data.mdb", s_data);
    snprintf (to, sizeof to, "%s/data.mdb", rdata);
    tk_copy_file (from, to);
    snprintf (repl, sizeof repl, "tcp://127.0.0.1:%d", tk_port ());
    s_writer =
        tk_spawn ("writer-sync", "writer", "--data", s_data, "--menu", s_menu,
                  "--intake", s_intake, "--events", s_events, "--sync", s_sync,
                  "--replicate", repl, "--sync-replica", "absent",
                  "--sync-timeout-ms", "5000", "--heartbeat-ms", "100",
                  "--retain-days", "30", "--key-retain-days", "30", NULL);
    pid_t reader =
        tk_spawn ("read-replica", "replica", "--data", rdata, "--upstream",
                  repl, "--replica-name", "ro", "--heartbeat-ms", "100",
                  "--link-timeout-ms", "1000", NULL);
    bool attached = false;
    for (int64_t end = tk_now_ms () + 10000; !attached && tk_now_ms () < end;
         usleep (50 * 1000))
        attached = s_log_has ("writer-sync", "replica ro attached");
    CHECK (attached, "the read replica attached");
    usleep (1500 * 1000);   //  15 heartbeats, no command
    CHECK (!s_log_has ("writer-sync", "cannot read the log"),
           "the writer read its log for every heartbeat");
    CHECK (!s_log_has ("read-replica", "cannot read the log"),
           "the read replica was not told 'pruned'");

    //  A command, committed and held (an 86, within the sync timeout):
    //  the start hold stays, and the read replica is not sent the menu
    //  it made (nor the start's, not released either)
    uint64_t menu_before = s_menu_version (rdata);
    tk_response_t r;
    tk_http (s_gw, "POST", "/api/v1/menu/items/cola/availability",
             "Content-Type: application/json\r\nIdempotency-Key: 86-cola\r\n",
             "{\"available\":false}", &r);
    CHECK (r.status == 503, "no synchronous replica: 503 (%d %s)", r.status,
           r.body ? r.body : "");
    tk_response_free (&r);
    CHECK (s_menu_version (s_data) > menu_before,
           "the 86 was committed: the writer's menu version %llu, was %llu",
           (unsigned long long) s_menu_version (s_data),
           (unsigned long long) menu_before);
    usleep (500 * 1000);   //  5 heartbeats
    CHECK (s_menu_version (rdata) == menu_before,
           "the read replica's menu is as it was: version %llu, was %llu",
           (unsigned long long) s_menu_version (rdata),
           (unsigned long long) menu_before);
    CHECK (tk_kill (reader, SIGTERM) == 0,
           "the read replica ran until told to stop");
    bus_sync_t *sync = bus_sync_new (s_sync, 2000, NULL);
    CHECK (sync, "sync client");
    bus_sync_req_t req = { .op = BUS_SYNC_REPLAY,
                           .from = s_last_old + 1,
                           .limit = 10 };
    bus_sync_reply_t reply = { 0 };
    zmsg_t *items = NULL;
    CHECK (bus_sync_call (sync, &req, &reply, &items) == 0, "replay");
    CHECK (reply.status == 0 && reply.count == 0 && reply.seq == 0,
           "the last run's log is still held: status %d, %u events, seq %llu",
           reply.status, (unsigned) reply.count,
           (unsigned long long) reply.seq);
    zmsg_destroy (&items);
    bus_sync_destroy (&sync);
    CHECK (tk_kill (s_writer, SIGTERM) == 0, "the writer stops");
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "retention");
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    s_gw = tk_port ();
    s_edge = tk_port ();
    static const tk_case_t cases[] = { TK_CASE_ENTRY (old_data),
                                       TK_CASE_ENTRY (edge_synced),
                                       TK_CASE_ENTRY (older_data),
                                       TK_CASE_ENTRY (pruned),
                                       TK_CASE_ENTRY (edge_recovers),
                                       TK_CASE_ENTRY (resume_pruned),
                                       TK_CASE_ENTRY (after),
                                       TK_CASE_ENTRY (sync_start_hold),
                                       { 0 } };
    tk_run_cases (cases);
    printf ("retention: %llu events and 14 keys pruned; the edge and a "
            "resuming browser took snapshots instead\n",
            (unsigned long long) s_last_old);
    return tk_done ();
}
