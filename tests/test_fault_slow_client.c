/*  test_fault_slow_client — browsers that never read, among fast ones,
    while many large events flow (orders of 50 lines with long notes,
    ~15 KB of JSON each) through an edge with a small per-browser queue
    (--client-queue 64):

      - the fast browsers get every event, in order, each within 2 s of
        its POST's 201 (the slow ones never stall the fan-out);
      - each slow browser is cut off: the edge counts them in "cut", its
        "clients" falls back to the fast ones, and when a slow socket
        finally reads it finds a close frame with code 4001 (or EOF);
      - the edge's memory stays bounded: its VmRSS grows by less than a
        fixed bound more than that of a control edge with the same fast
        browsers and no slow ones, while several times that bound of
        event data flows.  (Orders are only placed, never closed, so
        every edge legitimately grows by the open orders it holds; the
        control edge measures exactly that.)

    The slow browsers are raw TCP sockets with a small SO_RCVBUF that
    complete the WebSocket handshake by hand and then never read.  */

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK          TK_CHECK
#define FAST           3
#define SLOW           4
#define CLIENTS        8
#define WARMUP_ORDERS  100
#define ORDERS         800   //  after the warm-up
#define LATENCY_MAX_MS 2000
#define CUT_RELEASE_MS 10000   //  a cut browser's connection is gone
//  More than the kernel buffers hold (~140 such frames), fewer than they
//  and the queue (64) hold together
#define STALL_ORDERS     180
#define STALL_MS         13000   //  longer than the edge's 10 s write timeout
#define RSS_EXTRA_MAX_KB (6 * 1024)   //  over the control edge's growth

static json_t *
s_edge_health (int port)
{
    json_t *health = tk_get_json (port, "/healthz", 200);
    CHECK (health, "edge /healthz answers 200");
    return health;
}

static tk_load_t *
s_start_load (tk_ledger_t *ledger, int gw, const char *prefix, int orders)
{
    tk_load_opts_t opts = { .ports = &gw,
                            .port_count = 1,
                            .threads = CLIENTS,
                            .prefix = prefix,
                            .lines = 50,
                            .long_notes = true,
                            .max_orders = orders,
                            .retry_ms = 30000 };
    return tk_load_start (ledger, &opts);
}

static void
s_run_load (tk_ledger_t *ledger, int gw, const char *prefix, int orders)
{
    tk_load_t *load = s_start_load (ledger, gw, prefix, orders);
    tk_load_join (&load);
}

static json_int_t
s_edge_count (int port, const char *what)
{
    json_t *health = s_edge_health (port);
    json_int_t n = tk_json_int (health, what);
    json_decref (health);
    return n;
}

//  Size of one large order's JSON, about what each of its events weighs.
static size_t
s_order_kb (int gw, json_int_t id)
{
    char path[64];
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) id);
    tk_response_t r;
    tk_http (gw, "GET", path, NULL, NULL, &r);
    size_t kb = r.status == 200 ? strlen (r.body) / 1024 : 0;
    tk_response_free (&r);
    return kb;
}

//  Every event a fast browser got, measured against its order's 201.
static int64_t
s_worst_latency (tk_follower_t *follower, tk_ledger_t *ledger, size_t *measured)
{
    size_t count;
    const tk_event_t *events = tk_follower_events (follower, &count);
    int64_t worst = 0;
    *measured = 0;
    for (size_t i = 0; i < count; i++) {
        int64_t acked = tk_ledger_acked_ms (ledger, events[i].key);
        if (acked < 0)
            continue;
        (*measured)++;
        //  Events are published before acks, so this is often negative
        if (events[i].arrived_ms - acked > worst)
            worst = events[i].arrived_ms - acked;
    }
    return worst;
}

//  What the cases share: the nodes, the browsers, the ledger and what was
//  measured under load
static int s_gw, s_edge, s_control;
static pid_t s_edge_pid, s_control_pid;
static tk_follower_t *s_fast[FAST], *s_twin[FAST];
static int s_slow[SLOW];
static json_int_t s_cut0;
static tk_ledger_t *s_ledger;
static tk_tally_t s_tally;
static long s_rss0, s_control0, s_rss1, s_control1;
static int64_t s_started, s_cut_at = -1, s_load_ms;

TK_CASE (start)
{
    char data[600], menu[600], web[600], intake[64], events[64], sync[64];
    char gw_port[16], edge_port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_endpoints (intake, events, sync);
    s_gw = tk_port ();
    s_edge = tk_port ();
    s_control = tk_port ();
    char control_port[16];
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);
    snprintf (control_port, sizeof control_port, "%d", s_control);
    tk_spawn_env ("writer", NULL, "writer", "--data", data, "--menu", menu,
                  "--intake", intake, "--events", events, "--sync", sync, NULL);
    //  The per-table rate limit is not what these tests are about
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", intake, "--events",
                  events, "--sync", sync, "--http-port", gw_port, NULL);
    //  A small ring too, so that what the edge legitimately keeps is small
    //  next to the bound and the bound measures the browsers' queues.
    //  Under ASan, freed memory sits in a quarantine (256 MB by default)
    //  before reuse, which would grow VmRSS with churn alone: keep it
    //  small for this one process (harmless without ASan).
    static char asan[1200];
    const char *inherited = getenv ("ASAN_OPTIONS");
    snprintf (asan, sizeof asan, "ASAN_OPTIONS=%s%squarantine_size_mb=4",
              inherited ? inherited : "", inherited && *inherited ? ":" : "");
    const char *edge_env[] = { asan, NULL };
    s_edge_pid =
        tk_spawn_env ("edge", edge_env, "edge", "--events", events, "--sync",
                      sync, "--http-port", edge_port, "--web", web,
                      "--client-queue", "64", "--ring", "64", NULL);
    s_control_pid =
        tk_spawn_env ("control-edge", edge_env, "edge", "--events", events,
                      "--sync", sync, "--http-port", control_port, "--web", web,
                      "--client-queue", "64", "--ring", "64", NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    CHECK (tk_wait_http (s_control, "/healthz", 200, 15000),
           "control edge healthy");
}

TK_CASE (browsers_connect)
{
    for (int i = 0; i < FAST; i++) {
        char name[32];
        snprintf (name, sizeof name, "fast-%d", i + 1);
        s_fast[i] = tk_follower_new (s_edge, name);
        CHECK (tk_follower_wait (s_fast[i], 0, 10000), "%s got its snapshot",
               name);
        snprintf (name, sizeof name, "control-%d", i + 1);
        s_twin[i] = tk_follower_new (s_control, name);
        CHECK (tk_follower_wait (s_twin[i], 0, 10000), "%s got its snapshot",
               name);
    }
    for (int i = 0; i < SLOW; i++) {
        s_slow[i] = tk_ws_raw_open (s_edge, "/ws", 4096);
        CHECK (s_slow[i] >= 0, "slow browser %d connected", i + 1);
    }
    //  The edge registers a browser just after its handshake answer
    for (int64_t end = tk_now_ms () + 5000;
         s_edge_count (s_edge, "edge.clients") != FAST + SLOW
         && tk_now_ms () < end;)
        usleep (50 * 1000);
    json_t *health = s_edge_health (s_edge);
    CHECK (tk_json_int (health, "edge.clients") == FAST + SLOW,
           "edge counts %lld browsers, want %d",
           (long long) tk_json_int (health, "edge.clients"), FAST + SLOW);
    s_cut0 = tk_json_int (health, "edge.cut");
    CHECK (s_cut0 >= 0, "edge /healthz has edge.cut: %s",
           json_dumps (health, JSON_COMPACT));
    json_decref (health);
}

TK_CASE (large_orders)
{
    s_ledger = tk_ledger_new ();
    s_run_load (s_ledger, s_gw, "warm", WARMUP_ORDERS);
    s_rss0 = tk_rss_kb (s_edge_pid);
    s_control0 = tk_rss_kb (s_control_pid);
    s_started = tk_now_ms ();
    tk_load_t *load = s_start_load (s_ledger, s_gw, "big", ORDERS);
    //  When did the edge count the slow browsers as cut?
    while (tk_load_done (load) < ORDERS && s_cut_at < 0) {
        if (s_edge_count (s_edge, "edge.cut") - s_cut0 >= SLOW)
            s_cut_at = tk_now_ms ();
        usleep (100 * 1000);
    }
    tk_load_join (&load);
    s_load_ms = tk_now_ms () - s_started;
    if (s_cut_at < 0 && s_edge_count (s_edge, "edge.cut") - s_cut0 >= SLOW)
        s_cut_at = tk_now_ms ();
    tk_tally_t *t = &s_tally;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 100, t), "orders could be listed");
    tk_tally_print ("fault_slow_client", t);
    CHECK (t->acked == t->sent && t->stored == t->acked && t->duplicates == 0,
           "every large order placed once");

    //  Everything delivered to the fast browsers before looking at the edge
    for (int i = 0; i < FAST; i++) {
        tk_follower_wait (s_fast[i], t->max_seq, 20000);
        tk_follower_wait (s_twin[i], t->max_seq, 20000);
    }
    s_rss1 = tk_rss_kb (s_edge_pid);
    s_control1 = tk_rss_kb (s_control_pid);
}

//  The slow browsers were cut and let go, the fast ones still there: a
//  cut browser is one the edge has given up on, so its connection (a
//  worker thread and a socket) should go with it, not linger
TK_CASE (slow_cut_and_released)
{
    json_int_t cut = s_edge_count (s_edge, "edge.cut");
    printf ("fault_slow_client: edge cut %lld browsers %lld ms into a %lld ms "
            "load\n",
            (long long) (cut - s_cut0),
            (long long) (s_cut_at < 0 ? -1 : s_cut_at - s_started),
            (long long) s_load_ms);
    CHECK (s_cut_at >= 0 && cut - s_cut0 >= SLOW,
           "edge cut %lld slow browsers, want %d", (long long) (cut - s_cut0),
           SLOW);
    json_int_t clients = -1;
    while ((clients = s_edge_count (s_edge, "edge.clients")) != FAST
           && tk_now_ms () - s_cut_at < CUT_RELEASE_MS)
        usleep (200 * 1000);
    printf (
        "fault_slow_client: %lld browsers connected %lld ms after the cut\n",
        (long long) clients, (long long) (tk_now_ms () - s_cut_at));
    CHECK (clients == FAST,
           "edge still counts %lld browsers %lld ms after it cut "
           "the slow ones, want %d",
           (long long) clients, (long long) (tk_now_ms () - s_cut_at), FAST);
}

//  The fast browsers: every event, in order, promptly
TK_CASE (fast_browsers)
{
    const tk_tally_t *t = &s_tally;
    for (int i = 0; i < FAST; i++) {
        tk_follower_stop (s_fast[i]);
        tk_follower_print ("fault_slow_client", s_fast[i]);
        tk_follow_stats_t st;
        tk_follower_stats (s_fast[i], &st);
        CHECK (st.last == t->max_seq && st.gaps == 0 && st.duplicates == 0
                   && st.snapshots == 0 && st.reconnects == 0,
               "fast browser %d: last %lld of %lld, gaps %zu, duplicates %zu, "
               "resyncs %zu, reconnects %zu",
               i + 1, (long long) st.last, (long long) t->max_seq, st.gaps,
               st.duplicates, st.snapshots, st.reconnects);
        size_t measured;
        int64_t worst = s_worst_latency (s_fast[i], s_ledger, &measured);
        printf ("fault_slow_client: fast-%d: %zu events timed, slowest arrived "
                "%lld ms after its 201\n",
                i + 1, measured, (long long) worst);
        CHECK (measured == t->acked, "fast browser %d timed %zu events of %zu",
               i + 1, measured, t->acked);
        CHECK (worst <= LATENCY_MAX_MS,
               "fast browser %d got an event %lld ms "
               "after its 201 (bound %d ms): slow browsers stall the fan-out",
               i + 1, (long long) worst, LATENCY_MAX_MS);
    }
}

//  What a slow browser finds when it finally reads
TK_CASE (slow_browsers_read)
{
    for (int i = 0; i < SLOW; i++) {
        tk_ws_raw_end_t end;
        tk_ws_raw_drain (s_slow[i], 10000, &end);
        printf (
            "fault_slow_client: slow-%d read %zu frames (%zu bytes), then %s "
            "(close code %d)\n",
            i + 1, end.frames, end.bytes,
            end.garbled           ? "a broken frame"
            : end.close_code >= 0 ? "a close frame"
            : end.reset           ? "a reset"
            : end.eof             ? "EOF"
                                  : "nothing more",
            end.close_code);
        CHECK (!end.garbled,
               "slow browser %d: the WebSocket stream lost its "
               "framing at byte %zu, after %zu good frames (a frame written in "
               "part, then more frames after it)",
               i + 1, end.garbled_at, end.frames);
        CHECK (end.close_code == 4001 || (end.close_code < 0 && end.eof),
               "slow browser %d: close code %d, eof %d, timeout %d", i + 1,
               end.close_code, end.eof, end.timeout);
        CHECK (end.text_frames < (size_t) s_tally.max_seq,
               "slow browser %d got all "
               "%zu events: it was never cut",
               i + 1, end.text_frames);
        close (s_slow[i]);
    }
}

//  A browser that reads its snapshot and then stalls without ever
//  overflowing its queue: the edge's write to it blocks, then times out
//  part way through a frame.  Whatever the edge does next (wait, close,
//  ping), what the browser reads must still be whole frames.
TK_CASE (stalled_browser)
{
    int stalled = tk_ws_raw_open (s_edge, "/ws", 4096);
    CHECK (stalled >= 0, "stalled browser connected");
    size_t len;
    int opcode;
    while ((opcode = tk_ws_raw_read_frame (stalled, 20000, NULL, 0, &len))
           == MG_WEBSOCKET_OPCODE_PING)
        ;   //  a quiet socket may be pinged before its snapshot is read
    CHECK (opcode == MG_WEBSOCKET_OPCODE_TEXT,
           "stalled browser's snapshot: "
           "opcode %d",
           opcode);
    s_run_load (s_ledger, s_gw, "stall", STALL_ORDERS);
    usleep (STALL_MS * 1000);
    tk_ws_raw_end_t stall_end;
    tk_ws_raw_drain (stalled, 5000, &stall_end);
    close (stalled);
    printf ("fault_slow_client: stalled browser read %zu frames (%zu bytes) "
            "after %d ms, then %s (close code %d)\n",
            stall_end.frames, stall_end.bytes, STALL_MS,
            stall_end.garbled ? "a broken frame"
            : stall_end.eof   ? "EOF"
                              : "nothing more",
            stall_end.close_code);
    CHECK (
        !stall_end.garbled,
        "stalled browser: the WebSocket stream lost its "
        "framing at byte %zu, after %zu good frames (a frame written in part, "
        "then more frames after it)",
        stall_end.garbled_at, stall_end.frames);
}

//  Memory: what the slow browsers cost is bounded, while several times
//  the bound of event data was meant for each of them
TK_CASE (memory_bounded)
{
    size_t event_kb = s_order_kb (s_gw, s_tally.max_seq);
    printf ("fault_slow_client: %d large events (%zu KiB of JSON each) in %lld "
            "ms; VmRSS of the edge with slow browsers %ld -> %ld KiB (+%ld), "
            "of the control edge %ld -> %ld KiB (+%ld)\n",
            ORDERS, event_kb, (long long) s_load_ms, s_rss0, s_rss1,
            s_rss1 - s_rss0, s_control0, s_control1, s_control1 - s_control0);
    CHECK (s_rss0 > 0 && s_rss1 > 0 && s_control0 > 0 && s_control1 > 0,
           "VmRSS of the edges readable");
    CHECK ((size_t) ORDERS * event_kb > 2 * RSS_EXTRA_MAX_KB,
           "the test sends too little to tell a bounded queue from an "
           "unbounded one: %zu KiB",
           (size_t) ORDERS * event_kb);
    CHECK ((s_rss1 - s_rss0) - (s_control1 - s_control0) < RSS_EXTRA_MAX_KB,
           "the edge with slow browsers grew %ld KiB more than the control "
           "edge (bound %d KiB)",
           (s_rss1 - s_rss0) - (s_control1 - s_control0), RSS_EXTRA_MAX_KB);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (browsers_connect),
                                     TK_CASE_ENTRY (large_orders),
                                     TK_CASE_ENTRY (slow_cut_and_released),
                                     TK_CASE_ENTRY (fast_browsers),
                                     TK_CASE_ENTRY (slow_browsers_read),
                                     TK_CASE_ENTRY (stalled_browser),
                                     TK_CASE_ENTRY (memory_bounded),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_slow_client");
    tk_run_cases (s_cases);
    for (int i = 0; i < FAST; i++) {
        tk_follower_destroy (&s_fast[i]);
        tk_follower_destroy (&s_twin[i]);
    }
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
