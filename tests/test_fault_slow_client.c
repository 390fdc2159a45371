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

#define CHECK TK_CHECK
#define FAST 3
#define SLOW 4
#define CLIENTS 8
#define WARMUP_ORDERS 100
#define ORDERS 800            //  after the warm-up
#define LATENCY_MAX_MS 2000
#define CUT_RELEASE_MS 10000       //  a cut browser's connection is gone
#define STALL_ORDERS 180           //  more than the kernel buffers hold
                                   //  (~140 such frames), fewer than they
                                   //  and the queue (64) hold together
#define STALL_MS 13000             //  longer than the edge's 10 s write timeout
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
    tk_load_opts_t opts = {.ports = &gw, .port_count = 1, .threads = CLIENTS,
                           .prefix = prefix, .lines = 50, .long_notes = true,
                           .max_orders = orders, .retry_ms = 30000};
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

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_slow_client");
    char data[600], menu[600], web[600], intake[64], events[64], sync[64];
    char gw_port[16], edge_port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_endpoints (intake, events, sync);
    int gw = tk_port (), edge = tk_port (), control = tk_port ();
    char control_port[16];
    snprintf (gw_port, sizeof gw_port, "%d", gw);
    snprintf (edge_port, sizeof edge_port, "%d", edge);
    snprintf (control_port, sizeof control_port, "%d", control);
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
    const char *edge_env[] = {asan, NULL};
    pid_t edge_pid = tk_spawn_env ("edge", edge_env, "edge", "--events", events,
                                   "--sync", sync, "--http-port", edge_port,
                                   "--web", web, "--client-queue", "64",
                                   "--ring", "64", NULL);
    pid_t control_pid = tk_spawn_env ("control-edge", edge_env, "edge",
                                      "--events", events, "--sync", sync,
                                      "--http-port", control_port, "--web", web,
                                      "--client-queue", "64", "--ring", "64",
                                      NULL);
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (edge, "/healthz", 200, 15000), "edge healthy");
    CHECK (tk_wait_http (control, "/healthz", 200, 15000), "control edge healthy");

    tk_follower_t *fast[FAST], *twin[FAST];
    for (int i = 0; i < FAST; i++) {
        char name[32];
        snprintf (name, sizeof name, "fast-%d", i + 1);
        fast[i] = tk_follower_new (edge, name);
        CHECK (tk_follower_wait (fast[i], 0, 10000), "%s got its snapshot", name);
        snprintf (name, sizeof name, "control-%d", i + 1);
        twin[i] = tk_follower_new (control, name);
        CHECK (tk_follower_wait (twin[i], 0, 10000), "%s got its snapshot", name);
    }
    int slow[SLOW];
    for (int i = 0; i < SLOW; i++) {
        slow[i] = tk_ws_raw_open (edge, "/ws", 4096);
        CHECK (slow[i] >= 0, "slow browser %d connected", i + 1);
    }
    //  The edge registers a browser just after its handshake answer
    for (int64_t end = tk_now_ms () + 5000;
         s_edge_count (edge, "edge.clients") != FAST + SLOW && tk_now_ms () < end;)
        usleep (50 * 1000);
    json_t *health = s_edge_health (edge);
    CHECK (tk_json_int (health, "edge.clients") == FAST + SLOW,
           "edge counts %lld browsers, want %d",
           (long long) tk_json_int (health, "edge.clients"), FAST + SLOW);
    json_int_t cut0 = tk_json_int (health, "edge.cut");
    CHECK (cut0 >= 0, "edge /healthz has edge.cut: %s",
           json_dumps (health, JSON_COMPACT));
    json_decref (health);

    tk_ledger_t *ledger = tk_ledger_new ();
    s_run_load (ledger, gw, "warm", WARMUP_ORDERS);
    long rss0 = tk_rss_kb (edge_pid), control0 = tk_rss_kb (control_pid);
    int64_t started = tk_now_ms (), cut_at = -1;
    tk_load_t *load = s_start_load (ledger, gw, "big", ORDERS);
    //  When did the edge count the slow browsers as cut?
    while (tk_load_done (load) < ORDERS && cut_at < 0) {
        if (s_edge_count (edge, "edge.cut") - cut0 >= SLOW)
            cut_at = tk_now_ms ();
        usleep (100 * 1000);
    }
    tk_load_join (&load);
    int64_t load_ms = tk_now_ms () - started;
    if (cut_at < 0 && s_edge_count (edge, "edge.cut") - cut0 >= SLOW)
        cut_at = tk_now_ms ();
    tk_tally_t t;
    CHECK (tk_ledger_tally (ledger, gw, 100, &t), "orders could be listed");
    tk_tally_print ("fault_slow_client", &t);
    CHECK (t.acked == t.sent && t.stored == t.acked && t.duplicates == 0,
           "every large order placed once");

    //  Everything delivered to the fast browsers before looking at the edge
    for (int i = 0; i < FAST; i++) {
        tk_follower_wait (fast[i], t.max_seq, 20000);
        tk_follower_wait (twin[i], t.max_seq, 20000);
    }
    long rss1 = tk_rss_kb (edge_pid), control1 = tk_rss_kb (control_pid);
    //  The slow browsers were cut and let go, the fast ones still there:
    //  a cut browser is one the edge has given up on, so its connection
    //  (a worker thread and a socket) should go with it, not linger
    json_int_t cut = s_edge_count (edge, "edge.cut");
    printf ("fault_slow_client: edge cut %lld browsers %lld ms into a %lld ms "
            "load\n", (long long) (cut - cut0),
            (long long) (cut_at < 0 ? -1 : cut_at - started), (long long) load_ms);
    CHECK (cut_at >= 0 && cut - cut0 >= SLOW, "edge cut %lld slow browsers, want %d",
           (long long) (cut - cut0), SLOW);
    json_int_t clients = -1;
    while ((clients = s_edge_count (edge, "edge.clients")) != FAST
           && tk_now_ms () - cut_at < CUT_RELEASE_MS)
        usleep (200 * 1000);
    printf ("fault_slow_client: %lld browsers connected %lld ms after the cut\n",
            (long long) clients, (long long) (tk_now_ms () - cut_at));
    CHECK (clients == FAST, "edge still counts %lld browsers %lld ms after it cut "
           "the slow ones, want %d", (long long) clients,
           (long long) (tk_now_ms () - cut_at), FAST);

    //  The fast browsers: every event, in order, promptly
    for (int i = 0; i < FAST; i++) {
        tk_follower_stop (fast[i]);
        tk_follower_print ("fault_slow_client", fast[i]);
        tk_follow_stats_t st;
        tk_follower_stats (fast[i], &st);
        CHECK (st.last == t.max_seq && st.gaps == 0 && st.duplicates == 0
                   && st.snapshots == 0 && st.reconnects == 0,
               "fast browser %d: last %lld of %lld, gaps %zu, duplicates %zu, "
               "resyncs %zu, reconnects %zu", i + 1, (long long) st.last,
               (long long) t.max_seq, st.gaps, st.duplicates, st.snapshots,
               st.reconnects);
        size_t measured;
        int64_t worst = s_worst_latency (fast[i], ledger, &measured);
        printf ("fault_slow_client: fast-%d: %zu events timed, slowest arrived "
                "%lld ms after its 201\n", i + 1, measured, (long long) worst);
        CHECK (measured == t.acked, "fast browser %d timed %zu events of %zu",
               i + 1, measured, t.acked);
        CHECK (worst <= LATENCY_MAX_MS, "fast browser %d got an event %lld ms "
               "after its 201 (bound %d ms): slow browsers stall the fan-out",
               i + 1, (long long) worst, LATENCY_MAX_MS);
    }

    //  What a slow browser finds when it finally reads
    for (int i = 0; i < SLOW; i++) {
        tk_ws_raw_end_t end;
        tk_ws_raw_drain (slow[i], 10000, &end);
        printf ("fault_slow_client: slow-%d read %zu frames (%zu bytes), then %s "
                "(close code %d)\n", i + 1, end.frames, end.bytes,
                end.garbled         ? "a broken frame"
                : end.close_code >= 0 ? "a close frame"
                : end.reset         ? "a reset"
                : end.eof           ? "EOF"
                                    : "nothing more",
                end.close_code);
        CHECK (!end.garbled, "slow browser %d: the WebSocket stream lost its "
               "framing at byte %zu, after %zu good frames (a frame written in "
               "part, then more frames after it)", i + 1, end.garbled_at,
               end.frames);
        CHECK (end.close_code == 4001 || (end.close_code < 0 && end.eof),
               "slow browser %d: close code %d, eof %d, timeout %d", i + 1,
               end.close_code, end.eof, end.timeout);
        CHECK (end.text_frames < (size_t) t.max_seq, "slow browser %d got all "
               "%zu events: it was never cut", i + 1, end.text_frames);
        close (slow[i]);
    }

    //  A browser that reads its snapshot and then stalls without ever
    //  overflowing its queue: the edge's write to it blocks, then times
    //  out part way through a frame.  Whatever the edge does next (wait,
    //  close, ping), what the browser reads must still be whole frames.
    int stalled = tk_ws_raw_open (edge, "/ws", 4096);
    CHECK (stalled >= 0, "stalled browser connected");
    size_t len;
    int opcode;
    while ((opcode = tk_ws_raw_read_frame (stalled, 20000, NULL, 0, &len))
           == MG_WEBSOCKET_OPCODE_PING)
        ;   //  a quiet socket may be pinged before its snapshot is read
    CHECK (opcode == MG_WEBSOCKET_OPCODE_TEXT, "stalled browser's snapshot: "
           "opcode %d", opcode);
    s_run_load (ledger, gw, "stall", STALL_ORDERS);
    usleep (STALL_MS * 1000);
    tk_ws_raw_end_t stall_end;
    tk_ws_raw_drain (stalled, 5000, &stall_end);
    close (stalled);
    printf ("fault_slow_client: stalled browser read %zu frames (%zu bytes) "
            "after %d ms, then %s (close code %d)\n", stall_end.frames,
            stall_end.bytes, STALL_MS,
            stall_end.garbled ? "a broken frame" : stall_end.eof ? "EOF" : "nothing more",
            stall_end.close_code);
    CHECK (!stall_end.garbled, "stalled browser: the WebSocket stream lost its "
           "framing at byte %zu, after %zu good frames (a frame written in part, "
           "then more frames after it)", stall_end.garbled_at, stall_end.frames);

    //  Memory: what the slow browsers cost is bounded, while several
    //  times the bound of event data was meant for each of them
    size_t event_kb = s_order_kb (gw, t.max_seq);
    printf ("fault_slow_client: %d large events (%zu KiB of JSON each) in %lld "
            "ms; VmRSS of the edge with slow browsers %ld -> %ld KiB (+%ld), "
            "of the control edge %ld -> %ld KiB (+%ld)\n", ORDERS, event_kb,
            (long long) load_ms, rss0, rss1, rss1 - rss0, control0, control1,
            control1 - control0);
    CHECK (rss0 > 0 && rss1 > 0 && control0 > 0 && control1 > 0,
           "VmRSS of the edges readable");
    CHECK ((size_t) ORDERS * event_kb > 2 * RSS_EXTRA_MAX_KB,
           "the test sends too little to tell a bounded queue from an "
           "unbounded one: %zu KiB", (size_t) ORDERS * event_kb);
    CHECK ((rss1 - rss0) - (control1 - control0) < RSS_EXTRA_MAX_KB,
           "the edge with slow browsers grew %ld KiB more than the control "
           "edge (bound %d KiB)", (rss1 - rss0) - (control1 - control0),
           RSS_EXTRA_MAX_KB);

    for (int i = 0; i < FAST; i++) {
        tk_follower_destroy (&fast[i]);
        tk_follower_destroy (&twin[i]);
    }
    tk_ledger_destroy (&ledger);
    return tk_done ();
}
