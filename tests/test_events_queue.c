/*  test_events_queue — the writer's events socket keeps a bounded queue
    for each subscriber (writer/events_queue, docs/limits.md), so one that
    stops reading costs the writer a bounded amount of memory and never
    holds back the others:

      - stuck: a subscriber that connects and never reads (a czmq SUB
        with the smallest buffers) is sent ORDERS large events (50 lines
        with long notes, ~15 KB each) while a kitchen on an edge follows
        them: the kitchen gets every event in order, and when the stuck
        subscriber finally reads, it finds at most the queue plus what
        the kernel's buffers held, far fewer than were published;
      - stalled_edge: an edge stopped (SIGSTOP) while as many more flow,
        then let go, has lost events past its queue and catches up from
        the writer's log: its kitchen ends with every acknowledged order,
        no gap, no duplicate;
      - peers: the writer's table of peers (pings) holds at most
        BUS_WRITER_PEERS_MAX: 1,100 pings under names never seen are
        each answered, the table stops at its bound, a name that would
        forge a log line is refused, and the kitchen still gets the next
        order.  */

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orderbus/bus_sync.h"
#include "orderbus/bus_writer.h"
#include "testkit.h"

#define CHECK   TK_CHECK
#define QUEUE   200
#define ORDERS  1500
#define CLIENTS 6
//  The stuck subscriber may read the queue and what the kernel held:
//  the writer's send buffer (tcp_wmem's 4 MB at most, ~270 such events)
//  and its own receive buffer (set to the smallest).  Unbounded, it
//  would read all ORDERS.
#define STUCK_MAX (ORDERS * 2 / 3)

static int s_gw, s_edge;
static char s_sync[64];
static pid_t s_writer_pid, s_edge_pid;
static char s_events[64];
static tk_ledger_t *s_ledger;
static tk_follower_t *s_kitchen;

TK_CASE (start)
{
    char data[600], menu[600], web[600], intake[64], *sync = s_sync;
    char gw_port[16], edge_port[16], queue[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    snprintf (queue, sizeof queue, "%d", QUEUE);
    tk_endpoints (intake, s_events, sync);
    s_gw = tk_port ();
    s_edge = tk_port ();
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);
    s_writer_pid = tk_spawn ("writer", "writer", "--data", data, "--menu", menu,
                             "--intake", intake, "--events", s_events, "--sync",
                             sync, "--events-queue", queue, NULL);
    //  The per-table rate limit is not what this test is about
    tk_spawn ("gateway", "gateway", "--table-rate", "1000", "--table-burst",
              "10000", "--intake", intake, "--events", s_events, "--sync", sync,
              "--http-port", gw_port, "--ack-timeout-ms", "10000", NULL);
    s_edge_pid = tk_spawn ("edge", "edge", "--events", s_events, "--sync", sync,
                           "--http-port", edge_port, "--web", web, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    s_kitchen = tk_follower_new (s_edge, "kitchen");
    CHECK (tk_follower_wait (s_kitchen, 0, 10000), "kitchen got its snapshot");
    s_ledger = tk_ledger_new ();
}

static void
s_load (const char *prefix)
{
    tk_load_opts_t opts = { .ports = &s_gw,
                            .port_count = 1,
                            .threads = CLIENTS,
                            .prefix = prefix,
                            .lines = 50,
                            .long_notes = true,
                            .max_orders = ORDERS,
                            .retry_ms = 30000 };
    tk_load_t *load = tk_load_start (s_ledger, &opts);
    tk_load_join (&load);
}

//  The kitchen has applied every order stored, with no gap or duplicate.
static void
s_kitchen_complete (const char *when)
{
    tk_tally_t tally;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 500, &tally), "orders listed");
    tk_tally_check_exact (&tally);
    CHECK (tk_follower_wait (s_kitchen, tally.max_seq, 30000),
           "%s: the kitchen reached seq %lld", when, (long long) tally.max_seq);
    tk_follow_stats_t stats;
    tk_follower_stats (s_kitchen, &stats);
    tk_follower_print (when, s_kitchen);
    CHECK (stats.gaps == 0 && stats.duplicates == 0 && stats.errors == 0,
           "%s: the kitchen saw %zu gaps, %zu duplicates, %zu errors", when,
           stats.gaps, stats.duplicates, stats.errors);
}

//  Read what sub has until it is quiet for quiet_ms; the count.
static size_t
s_drain (zsock_t *sub, int quiet_ms)
{
    size_t count = 0;
    zsock_set_rcvtimeo (sub, quiet_ms);
    zmsg_t *msg;
    while ((msg = zmsg_recv (sub))) {
        count++;
        zmsg_destroy (&msg);
    }
    return count;
}

TK_CASE (stuck)
{
    //  Options before connect: the smallest buffers on its side, so what
    //  it can hold is the writer's queue plus the writer's kernel buffer
    zsock_t *stuck = zsock_new (ZMQ_SUB);
    CHECK (stuck, "a SUB socket");
    zsock_set_rcvhwm (stuck, 1);
    zsock_set_rcvbuf (stuck, 4096);
    zsock_set_linger (stuck, 0);
    zsock_set_subscribe (stuck, "E/");
    CHECK (zsock_connect (stuck, "%s", s_events) == 0, "connected to %s",
           s_events);
    //  A subscription reaches the writer a moment after connect
    usleep (500 * 1000);
    long rss0 = tk_rss_kb (s_writer_pid);
    int64_t started = tk_now_ms ();
    s_load ("stuck");
    long rss1 = tk_rss_kb (s_writer_pid);
    s_kitchen_complete ("while a subscriber was stuck");
    size_t got = s_drain (stuck, 1000);
    printf ("events_queue: %d orders of ~15 KB in %lld ms; the stuck "
            "subscriber then read %zu events (at most %d allowed; queue %d); "
            "writer VmRSS %ld -> %ld kB\n",
            ORDERS, (long long) (tk_now_ms () - started), got, STUCK_MAX, QUEUE,
            rss0, rss1);
    CHECK (got > 0, "the stuck subscriber was subscribed");
    CHECK (got <= STUCK_MAX,
           "the stuck subscriber read %zu of %d events: its queue is not "
           "bounded",
           got, ORDERS);
    zsock_destroy (&stuck);
}

TK_CASE (stalled_edge)
{
    CHECK (kill (s_edge_pid, SIGSTOP) == 0, "edge stopped");
    s_load ("stalled");
    CHECK (kill (s_edge_pid, SIGCONT) == 0, "edge let go");
    s_kitchen_complete ("after the edge was stalled");
    json_t *health = tk_get_json (s_edge, "/healthz", 200);
    json_int_t replayed = tk_json_int (health, "edge.replayed");
    json_decref (health);
    printf ("events_queue: the stalled edge replayed %lld events from the "
            "writer's log\n",
            (long long) replayed);
    //  More flowed than the kernel's buffers and the queue hold together
    CHECK (replayed > 0, "the stalled edge missed events and replayed them");
}

//  One ping under name from role; the writer's answer's status
static int
s_ping (bus_sync_t *sync, const char *role, const char *name)
{
    bus_sync_req_t req = { .op = BUS_SYNC_PING };
    snprintf (req.role, sizeof req.role, "%s", role);
    snprintf (req.name, sizeof req.name, "%s", name);
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int rc = bus_sync_call (sync, &req, &reply, &items);
    zmsg_destroy (&items);
    return rc == 0 ? reply.status : rc;
}

TK_CASE (peers)
{
    bus_sync_t *sync = bus_sync_new (s_sync, 5000, NULL);
    CHECK (sync, "a sync client");
    int answered = 0;
    char name[32];
    for (int i = 0; i < BUS_WRITER_PEERS_MAX + 76; i++) {
        snprintf (name, sizeof name, "flood-%d", i);
        answered += s_ping (sync, "gateway", name) == 0;
    }
    CHECK (answered == BUS_WRITER_PEERS_MAX + 76, "%d of %d pings answered",
           answered, BUS_WRITER_PEERS_MAX + 76);
    CHECK (s_ping (sync, "gateway", "x\nI: writer: forged") != 0,
           "a name that would forge a log line is refused");
    bus_sync_destroy (&sync);
    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    json_t *peers =
        json_object_get (json_object_get (stats, "writer"), "peers");
    CHECK (json_is_array (peers)
               && json_array_size (peers) == BUS_WRITER_PEERS_MAX,
           "the writer keeps %zu peers, not %d", json_array_size (peers),
           BUS_WRITER_PEERS_MAX);
    json_decref (stats);
    //  The kitchen still gets what is ordered
    tk_load_opts_t opts = { .ports = &s_gw,
                            .port_count = 1,
                            .threads = 1,
                            .prefix = "peers",
                            .lines = 1,
                            .max_orders = 1,
                            .retry_ms = 10000 };
    tk_load_t *load = tk_load_start (s_ledger, &opts);
    tk_load_join (&load);
    s_kitchen_complete ("after the peer flood");
    printf ("events_queue: %d pings under new names answered; the writer "
            "keeps %d peers\n",
            answered, BUS_WRITER_PEERS_MAX);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (stuck),
                                     TK_CASE_ENTRY (stalled_edge),
                                     TK_CASE_ENTRY (peers),
                                     { NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "integration_events_queue");
    tk_run_cases (s_cases);
    tk_follower_destroy (&s_kitchen);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
