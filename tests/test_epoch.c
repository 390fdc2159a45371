/*  test_epoch — an edge never keeps serving a history the writer no
    longer has.  A writer, a gateway, an edge and a kitchen on the edge's
    WebSocket; orders; then the writer is stopped and started again three
    ways:

      restart   on the same data: the new run goes on from the edge's
                history, so the kitchen gets every event, no snapshot
      restore   on a copy of data.mdb taken earlier (refused, then started
                with --accept-restore): the orders placed
                after the copy are gone from the kitchen, /healthz says
                the epoch changed, and new orders, whose sequence numbers
                are below what the edge had seen, reach the kitchen
      empty     on an emptied data directory (a new store): the same

    Each start is a new epoch; only the first continues the history the
    edge has.  What the test checks is what the kitchen shows.  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK   TK_CHECK
#define MAX_IDS 64      //  order ids the kitchen can hold
#define WAIT_MS 10000   //  longest the edge may take to show a change

static char s_data[600], s_menu[600], s_backup[600];
static char s_intake[64], s_events[64], s_sync[64];
static int s_gw, s_edge;
static pid_t s_writer_pid, s_edge_pid;
static char s_edge_port[16], s_web[600];

//  ---------------------------------------------------------------------
//  The kitchen: what a staff screen shows, from the snapshot and events
//  it is sent, by order id (the key of the order on that id)

typedef struct {
    tk_ws_t *ws;
    char keys[MAX_IDS][64];   //  "" = no order of that id on screen
    size_t snapshots;         //  snapshots received
    size_t doubles;           //  order.placed for an id already shown
    json_int_t seq;           //  of the last snapshot or event
} s_kitchen_t;

static s_kitchen_t s_kitchen;

static void
s_kitchen_show (json_t *order, bool from_event)
{
    json_int_t id = json_integer_value (json_object_get (order, "id"));
    const char *key =
        json_string_value (json_object_get (order, "idempotency_key"));
    CHECK (id > 0 && id < MAX_IDS && key, "an order the kitchen can show");
    if (from_event && *s_kitchen.keys[id])
        s_kitchen.doubles++;
    snprintf (s_kitchen.keys[id], sizeof s_kitchen.keys[id], "%s", key);
}

static void
s_kitchen_apply (json_t *msg)
{
    const char *type = json_string_value (json_object_get (msg, "type"));
    if (!type)
        return;
    s_kitchen.seq = json_integer_value (json_object_get (msg, "seq"));
    if (strcmp (type, "snapshot") == 0) {
        memset (s_kitchen.keys, 0, sizeof s_kitchen.keys);
        s_kitchen.snapshots++;
        size_t i;
        json_t *order;
        json_array_foreach (json_object_get (msg, "orders"), i, order)
            s_kitchen_show (order, false);
    } else if (strcmp (type, "event") == 0
               && strcmp (json_string_value (json_object_get (msg, "event")),
                          "order.placed")
                      == 0)
        s_kitchen_show (json_object_get (msg, "order"), true);
}

//  The keys on screen, in id order, as "k1,k2,..."
static void
s_kitchen_keys (char *buf, size_t cap)
{
    *buf = '\0';
    for (int id = 0; id < MAX_IDS; id++)
        if (*s_kitchen.keys[id]) {
            size_t len = strlen (buf);
            snprintf (buf + len, cap - len, "%s%s", len ? "," : "",
                      s_kitchen.keys[id]);
        }
}

//  Read the kitchen's messages until it shows exactly want, or WAIT_MS.
static bool
s_kitchen_shows (const char *want)
{
    int64_t until = tk_now_ms () + WAIT_MS;
    char got[2048];
    s_kitchen_keys (got, sizeof got);
    while (strcmp (got, want) != 0 && tk_now_ms () < until) {
        json_t *msg = tk_ws_next (s_kitchen.ws, 100);
        if (msg)
            s_kitchen_apply (msg);
        json_decref (msg);
        s_kitchen_keys (got, sizeof got);
    }
    if (strcmp (got, want) != 0)
        fprintf (stderr, "kitchen shows [%s], want [%s]\n", got, want);
    return strcmp (got, want) == 0;
}

//  ---------------------------------------------------------------------
//  Nodes and orders

//  With one more flag, or NULL
static void
s_writer_start_with (const char *flag)
{
    s_writer_pid =
        tk_spawn ("writer", "writer", "--data", s_data, "--menu", s_menu,
                  "--intake", s_intake, "--events", s_events, "--sync", s_sync,
                  "--heartbeat-ms", "100", flag, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "writer up");
}

static void
s_writer_start (void)
{
    s_writer_start_with (NULL);
}

static void
s_writer_stop (void)
{
    CHECK (tk_kill (s_writer_pid, SIGTERM) == 0, "writer exits 0");
    CHECK (tk_wait_http (s_gw, "/healthz", 503, 5000),
           "the gateway notices the writer is gone");
}

static void
s_edge_start (void)
{
    s_edge_pid =
        tk_spawn ("edge", "edge", "--events", s_events, "--sync", s_sync,
                  "--http-port", s_edge_port, "--web", s_web, NULL);
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge in sync");
}

//  Place an order under key; its seq.
static json_int_t
s_order (const char *key)
{
    tk_response_t r;
    tk_post_order (
        s_gw, key,
        "{\"table\":\"T4\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        &r);
    CHECK (r.status == 201, "order %s: %d %s", key, r.status, r.body);
    json_int_t seq = json_integer_value (json_object_get (r.json, "seq"));
    tk_response_free (&r);
    return seq;
}

static void
s_cp (const char *from, const char *to)
{
    char cmd[1400];
    snprintf (cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    CHECK (system (cmd) == 0, "%s", cmd);
}

//  The edge's /healthz once it is in sync after epoch change number
//  `changes`: 200 (synced), with why.  Caller decrefs.
static json_t *
s_edge_resynced (json_int_t changes)
{
    int64_t until = tk_now_ms () + WAIT_MS;
    json_t *health = NULL;
    do {
        json_decref (health);
        health = tk_get_json (s_edge, "/healthz", 200);
        if (health && tk_json_int (health, "edge.epoch_changes") >= changes)
            return health;
        usleep (50 * 1000);
    } while (tk_now_ms () < until);
    CHECK (false, "the edge did not resync after epoch change %lld",
           (long long) changes);
    return NULL;
}

//  A string of a node's part ("edge", "gateway") of its /healthz, or ""
static const char *
s_part_str (json_t *health, const char *part, const char *key)
{
    json_t *node = json_object_get (health, part);
    const char *s = json_string_value (json_object_get (node, key));
    return s ? s : "";
}

//  A string of the edge's part of its /healthz
static const char *
s_str (json_t *health, const char *key)
{
    return s_part_str (health, "edge", key);
}

//  ---------------------------------------------------------------------
//  Cases

static char s_epoch0[32];   //  the state's epoch before the first restart

TK_CASE (start)
{
    s_writer_start ();
    s_edge_start ();
    s_kitchen.ws = tk_ws_open (s_edge, "/ws");
    CHECK (s_kitchen.ws, "kitchen connected");
    CHECK (s_kitchen_shows (""), "an empty kitchen");
    for (int i = 1; i <= 3; i++) {
        char key[16];
        snprintf (key, sizeof key, "a%d", i);
        s_order (key);
    }
    CHECK (s_kitchen_shows ("a1,a2,a3"), "the kitchen shows the orders");
    json_t *health = tk_get_json (s_edge, "/healthz", 200);
    CHECK (health && strlen (s_str (health, "state_epoch")) == 16
               && strcmp (s_str (health, "state_epoch"),
                          s_str (health, "writer_epoch"))
                      == 0
               && strlen (s_str (health, "state_identity")) == 32,
           "the edge's /healthz names the state's identity and epoch");
    snprintf (s_epoch0, sizeof s_epoch0, "%s", s_str (health, "state_epoch"));
    json_decref (health);
    //  The gateway shows the writer's history too
    health = tk_get_json (s_gw, "/healthz", 200);
    CHECK (
        strcmp (s_part_str (health, "gateway", "writer_epoch"), s_epoch0) == 0
            && strlen (s_part_str (health, "gateway", "writer_identity")) == 32,
        "the gateway's /healthz names the writer's identity and epoch");
    json_decref (health);
    //  The copy a restore will bring back: taken while the writer is
    //  stopped, so it is a clean state
    s_writer_stop ();
    char file[700];
    snprintf (file, sizeof file, "%s/data.mdb", s_data);
    s_cp (file, s_backup);
}

TK_CASE (restart)
{
    size_t snapshots = s_kitchen.snapshots;
    s_writer_start ();
    json_t *health = s_edge_resynced (1);
    CHECK (strstr (s_str (health, "epoch_change"), "writer epoch changed from")
               && !*s_str (health, "resync"),
           "/healthz names the change, and no resync: %s; %s",
           s_str (health, "epoch_change"), s_str (health, "resync"));
    CHECK (strcmp (s_str (health, "state_epoch"), s_epoch0) != 0,
           "a new epoch after a restart");
    json_decref (health);
    for (int i = 4; i <= 8; i++) {
        char key[16];
        snprintf (key, sizeof key, "a%d", i);
        s_order (key);
    }
    CHECK (s_kitchen_shows ("a1,a2,a3,a4,a5,a6,a7,a8"),
           "after a restart the kitchen has every order");
    CHECK (s_kitchen.doubles == 0, "no order shown twice: %zu",
           s_kitchen.doubles);
    CHECK (s_kitchen.snapshots == snapshots,
           "the kitchen got every event, no snapshot");
}

//  The first message a browser resuming from seq `after` of epoch gets:
//  its type ("event", "snapshot") and seq.
static const char *
s_resume (int after, const char *epoch, json_int_t *seq)
{
    char path[128];
    snprintf (path, sizeof path, "/ws?resume_from=%d%s%s", after,
              epoch ? "&epoch=" : "", epoch ? epoch : "");
    tk_ws_t *ws = tk_ws_open (s_edge, path);
    CHECK (ws, "%s", path);
    json_t *msg = tk_ws_next (ws, WAIT_MS);
    CHECK (msg, "%s: a first message", path);
    static char type[16];
    snprintf (type, sizeof type, "%s",
              json_string_value (json_object_get (msg, "type")));
    *seq = json_integer_value (json_object_get (msg, "seq"));
    json_decref (msg);
    tk_ws_close (&ws);
    return type;
}

//  A browser resumes within the history of its snapshot only: in its
//  epoch, or in the one before the restart up to where the restart went
//  on from (seq 3); past that, or from an epoch the edge did not go on
//  from, its seq means another history, and it gets a fresh snapshot
TK_CASE (resume)
{
    json_t *health = tk_get_json (s_edge, "/healthz", 200);
    CHECK (health, "edge in sync");
    char now[32];
    snprintf (now, sizeof now, "%s", s_str (health, "state_epoch"));
    json_decref (health);
    json_int_t seq;
    CHECK (strcmp (s_resume (5, now, &seq), "event") == 0 && seq == 6,
           "resumed in its epoch: the events after 5");
    CHECK (strcmp (s_resume (5, NULL, &seq), "event") == 0 && seq == 6,
           "a client that names no epoch resumes as before");
    CHECK (strcmp (s_resume (2, s_epoch0, &seq), "event") == 0 && seq == 3,
           "from the epoch before the restart, at seq 2: the events after");
    CHECK (strcmp (s_resume (5, s_epoch0, &seq), "snapshot") == 0 && seq == 8,
           "from the epoch before, past where the restart went on: a "
           "snapshot");
    CHECK (strcmp (s_resume (2, "1234", &seq), "snapshot") == 0,
           "from an epoch the edge never went on from: a snapshot");
    CHECK (strcmp (s_resume (2, "zz", &seq), "snapshot") == 0,
           "an epoch that is not one: a snapshot");
}

//  An edge started after the writer's restart knows, from its first
//  snapshot, which run the writer went on from and where: a browser of
//  that run resumes there too, with the events the edge fetches from the
//  writer's log
TK_CASE (edge_restart)
{
    CHECK (tk_kill (s_edge_pid, SIGTERM) == 0, "edge exits 0");
    tk_ws_close (&s_kitchen.ws);
    s_edge_start ();
    json_int_t seq;
    CHECK (strcmp (s_resume (2, s_epoch0, &seq), "event") == 0 && seq == 3,
           "from the epoch before the restart, at seq 2: the events after");
    CHECK (strcmp (s_resume (5, s_epoch0, &seq), "snapshot") == 0 && seq == 8,
           "past where the restart went on: a snapshot");
    s_kitchen.ws = tk_ws_open (s_edge, "/ws");
    CHECK (s_kitchen.ws, "kitchen connected again");
    CHECK (s_kitchen_shows ("a1,a2,a3,a4,a5,a6,a7,a8"),
           "the kitchen's snapshot from the new edge");
}

TK_CASE (restore)
{
    json_int_t seen = s_kitchen.seq;
    s_writer_stop ();
    char file[700];
    snprintf (file, sizeof file, "%s/data.mdb", s_data);
    s_cp (s_backup, file);
    //  An older copy starts only when the operator says so
    pid_t refused = tk_spawn ("refused", "writer", "--data", s_data, "--menu",
                              s_menu, "--intake", s_intake, "--events",
                              s_events, "--sync", s_sync, NULL);
    CHECK (tk_kill (refused, 0) == 1, "the older copy is refused");
    s_writer_start_with ("--accept-restore");
    //  The orders placed after the copy are gone from the screen
    CHECK (s_kitchen_shows ("a1,a2,a3"),
           "the kitchen shows the restored state");
    json_t *health = s_edge_resynced (1);   //  counted by the new edge
    CHECK (strstr (s_str (health, "resync"), "writer epoch changed from"),
           "/healthz says the epoch changed: %s", s_str (health, "resync"));
    json_decref (health);
    //  New orders are numbered from the restored log, below what the
    //  edge had seen, and reach the kitchen
    json_int_t seq = s_order ("r1");
    CHECK (seq < seen, "seq %lld is below the %lld the edge had seen",
           (long long) seq, (long long) seen);
    s_order ("r2");
    CHECK (s_kitchen_shows ("a1,a2,a3,r1,r2"),
           "new orders after a restore reach the kitchen");
    CHECK (s_kitchen.doubles == 0, "no order shown twice");
}

TK_CASE (empty)
{
    s_writer_stop ();
    char cmd[700];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_data);
    CHECK (system (cmd) == 0, "%s", cmd);
    s_writer_start ();
    CHECK (s_kitchen_shows (""), "an emptied store empties the kitchen");
    json_t *health = s_edge_resynced (2);
    CHECK (strstr (s_str (health, "resync"), "a new store"),
           "/healthz says it is a new store: %s", s_str (health, "resync"));
    json_decref (health);
    CHECK (s_order ("e1") == 1, "a new store's first order is seq 1");
    CHECK (s_kitchen_shows ("e1"), "the new store's order reaches the kitchen");
    tk_ws_close (&s_kitchen.ws);
}

static const tk_case_t s_cases[] = {
    TK_CASE_ENTRY (start),
    TK_CASE_ENTRY (restart),
    TK_CASE_ENTRY (resume),
    TK_CASE_ENTRY (edge_restart),
    TK_CASE_ENTRY (restore),
    TK_CASE_ENTRY (empty),
    { 0 },
};

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "epoch");
    s_gw = tk_port ();
    s_edge = tk_port ();
    char gw[16];
    snprintf (gw, sizeof gw, "%d", s_gw);
    snprintf (s_edge_port, sizeof s_edge_port, "%d", s_edge);
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_backup, sizeof s_backup, "%s/backup.mdb", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (s_web, sizeof s_web, "%s/web", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", gw, NULL);
    tk_run_cases (s_cases);
    return tk_done ();
}
