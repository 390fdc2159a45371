/*  bus_edge_test.c — selftest of the edge's actor against a fake writer.

    The test is the writer: it binds a PUB socket (events and heartbeats)
    and a ROUTER (the sync socket) on inproc endpoints, and answers every
    snapshot and replay the edge asks for itself, so it decides exactly
    what the edge sees and in what order.  No HTTP server: the edge's
    endpoints go on a fake router that only records their paths.  What
    the edge holds is read back through bus_edge_health and
    bus_edge_snapshot.  */

#include <assert.h>
#include <czmq.h>
#include "orderbus/bus_cart.h"
#include "orderbus/bus_codec.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_topic.h"

#define S_WAIT_MS 5000   //  longest the edge may take to do anything

//  The fake writer, and the paths the edge put on the fake router
typedef struct {
    zsock_t *pub;
    zsock_t *router;
    bus_epoch_t epoch;   //  the history it publishes and answers under
    char paths[8][32];
    size_t path_count;
} s_writer_t;

static void
s_path (s_writer_t *writer, const char *path)
{
    assert (writer->path_count < 8);
    snprintf (writer->paths[writer->path_count++], 32, "%s", path);
}

static void
s_fake_websocket (void *server, const char *path,
                  const bus_http_ws_handler_t *handler)
{
    assert (handler && handler->ready && handler->close);
    s_path ((s_writer_t *) server, path);
}

static void
s_fake_page (void *server, const char *path, const char *root)
{
    s_path ((s_writer_t *) server, path);
}

static void
s_fake_redirect (void *server, const char *path, const char *location)
{
    assert (streq (location, "/kitchen"));
    s_path ((s_writer_t *) server, path);
}

static bool
s_has_path (s_writer_t *writer, const char *path)
{
    for (size_t i = 0; i < writer->path_count; i++)
        if (streq (writer->paths[i], path))
            return true;
    return false;
}

//  An order of table, open or not.  Caller frees.
static bus_order_t *
s_order (uint64_t id, const char *table, bus_status_t status, uint64_t seq)
{
    bus_order_t *order = (bus_order_t *) calloc (1, sizeof *order);
    assert (order);
    order->id = id;
    order->seq = seq;
    order->version = 1;
    order->status = status;
    snprintf (order->table, sizeof order->table, "%s", table);
    snprintf (order->key, sizeof order->key, "key-%" PRIu64, id);
    snprintf (order->origin, sizeof order->origin, "gw");
    order->created_ms = order->updated_ms = 1700000000000 + (int64_t) id;
    order->status_ms[BUS_STATUS_PLACED] = order->created_ms;
    order->line_count = 1;
    bus_line_t *line = &order->lines[0];
    line->line_id = 1;
    snprintf (line->item_id, sizeof line->item_id, "burger");
    snprintf (line->name, sizeof line->name, "Burger");
    snprintf (line->station, sizeof line->station, "grill");
    line->qty = 1;
    line->unit_cents = 900;
    order->subtotal_cents = order->total_cents = 900;
    return order;
}

//  The event at seq that places order id at table (or, if status is not
//  PLACED, moves it to status).  Caller destroys.
static zframe_t *
s_event (uint64_t seq, uint64_t id, const char *table, bus_status_t status)
{
    bus_event_t *event = (bus_event_t *) calloc (1, sizeof *event);
    assert (event);
    event->seq = seq;
    event->ts_ms = 1700000000000 + (int64_t) seq;
    event->type = status == BUS_STATUS_PLACED ? BUS_EVENT_ORDER_PLACED
                                              : BUS_EVENT_ORDER_STATUS;
    bus_order_t *order = s_order (id, table, status, seq);
    event->order = *order;
    free (order);
    zframe_t *frame = bus_event_encode (event);
    assert (frame);
    free (event);
    return frame;
}

static void
s_publish (s_writer_t *writer, const char *topic, zframe_t **body_p)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_append (msg, body_p);
    if (!streq (topic, BUS_TOPIC_HEARTBEAT)) {   //  an event's history
        zframe_t *epoch = bus_epoch_encode (&writer->epoch);
        zmsg_append (msg, &epoch);
    }
    assert (zmsg_send (&msg, writer->pub) == 0);
}

static void
s_publish_event (s_writer_t *writer, uint64_t seq, uint64_t id,
                 const char *table, bus_status_t status)
{
    char topic[BUS_TOPIC_MAX];
    assert (bus_topic_event (topic, sizeof topic, table) == 0);
    zframe_t *body = s_event (seq, id, table, status);
    s_publish (writer, topic, &body);
}

static void
s_publish_heartbeat (s_writer_t *writer, uint64_t seq)
{
    bus_heartbeat_t hb = { seq, zclock_time (), writer->epoch, BUS_STORAGE_OK,
                           false };
    zframe_t *body = bus_heartbeat_encode (&hb);
    s_publish (writer, BUS_TOPIC_HEARTBEAT, &body);
}

//  The next request the edge sends on the sync socket, its sender's
//  identity in *identity (caller destroys).  The link's pings are
//  answered on the way and skipped.  false if none came in time.
static bool
s_request (s_writer_t *writer, bus_sync_req_t *req, zframe_t **identity)
{
    zpoller_t *poller = zpoller_new (writer->router, NULL);
    int64_t until = zclock_mono () + S_WAIT_MS;
    bool got = false;
    while (!got && zclock_mono () < until
           && zpoller_wait (poller, (int) (until - zclock_mono ()))) {
        zmsg_t *msg = zmsg_recv (writer->router);
        assert (msg && zmsg_size (msg) == 2);
        *identity = zmsg_pop (msg);
        zframe_t *body = zmsg_first (msg);
        assert (
            bus_sync_req_decode (zframe_data (body), zframe_size (body), req)
            == 0);
        zmsg_destroy (&msg);
        if (req->op != BUS_SYNC_PING) {
            got = true;
            break;
        }
        bus_sync_reply_t pong = { .rid = req->rid, .writer = writer->epoch };
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, identity);
        zframe_t *header = bus_sync_reply_encode (&pong);
        zmsg_append (reply, &header);
        zmsg_send (&reply, writer->router);
    }
    zpoller_destroy (&poller);
    return got;
}

//  Answer req with header fields status, seq, next and the items (taken).
static void
s_reply (s_writer_t *writer, zframe_t **identity, const bus_sync_req_t *req,
         int status, uint64_t seq, uint64_t next, zmsg_t **items_p)
{
    zmsg_t *items = items_p && *items_p ? *items_p : zmsg_new ();
    bus_sync_reply_t reply = { .rid = req->rid,
                               .status = status,
                               .seq = seq,
                               .next = next,
                               .count = (uint32_t) zmsg_size (items),
                               .writer = writer->epoch };
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, identity);
    zframe_t *header = bus_sync_reply_encode (&reply);
    zmsg_append (msg, &header);
    zframe_t *item;
    while ((item = zmsg_pop (items)))
        zmsg_append (msg, &item);
    zmsg_destroy (&items);
    if (items_p)
        *items_p = NULL;
    assert (zmsg_send (&msg, writer->router) == 0);
}

//  Answer the edge's snapshot request: at seq, the open orders
//  ids[0..count-1] (table T<id % 2 + 1>) and table T1's cart.
static void
s_answer_snapshot (s_writer_t *writer, zframe_t **identity,
                   const bus_sync_req_t *req, uint64_t seq, const uint64_t *ids,
                   size_t count)
{
    assert (req->op == BUS_SYNC_SNAPSHOT);
    zmsg_t *items = zmsg_new ();
    for (size_t i = 0; i < count; i++) {
        bus_order_t *order =
            s_order (ids[i], ids[i] % 2 ? "T2" : "T1", BUS_STATUS_PLACED, seq);
        zframe_t *frame = bus_order_encode (order);
        zmsg_append (items, &frame);
        free (order);
    }
    bus_cart_t *cart = (bus_cart_t *) calloc (1, sizeof *cart);
    bus_cart_init (cart, "T1");
    cart->version = 3;
    zframe_t *frame = bus_cart_encode (cart);
    zmsg_append (items, &frame);
    free (cart);
    s_reply (writer, identity, req, 0, seq, count, &items);
}

//  Wait for the edge's snapshot request and answer it.
static void
s_serve_snapshot (s_writer_t *writer, uint64_t seq, const uint64_t *ids,
                  size_t count)
{
    bus_sync_req_t req;
    zframe_t *identity = NULL;
    assert (s_request (writer, &req, &identity));
    s_answer_snapshot (writer, &identity, &req, seq, ids, count);
}

//  Wait for the edge's replay request from `from`, expecting limit, and
//  answer with placed orders for seqs from.. (id = seq) up to `give`
//  events (0: an empty answer, as from a writer whose log lost them).
static void
s_serve_replay (s_writer_t *writer, uint64_t from, uint32_t limit,
                uint32_t give)
{
    bus_sync_req_t req;
    zframe_t *identity = NULL;
    assert (s_request (writer, &req, &identity));
    assert (req.op == BUS_SYNC_REPLAY);
    assert (req.from == from && req.limit == limit);
    zmsg_t *items = zmsg_new ();
    for (uint32_t i = 0; i < give; i++) {
        zframe_t *frame = s_event (from + i, from + i, "T1", BUS_STATUS_PLACED);
        zmsg_append (items, &frame);
    }
    s_reply (writer, &identity, &req, 0, from + give - 1, from + give, &items);
}

//  The edge's health, until check says it is as expected or time is up.
static json_t *
s_health_when (bus_edge_t *edge, bool (*check) (json_t *, uint64_t),
               uint64_t arg, bool *ok)
{
    int64_t until = zclock_mono () + S_WAIT_MS;
    json_t *health = bus_edge_health (edge, ok);
    while (!check (health, arg) && zclock_mono () < until) {
        json_decref (health);
        zclock_sleep (5);
        health = bus_edge_health (edge, ok);
    }
    return health;
}

static uint64_t
s_int (json_t *json, const char *key)
{
    return (uint64_t) json_integer_value (json_object_get (json, key));
}

static bool
s_at_seq (json_t *health, uint64_t seq)
{
    return json_is_true (json_object_get (health, "synced"))
           && s_int (health, "seq") == seq;
}

static bool
s_heard (json_t *health, uint64_t writer_seq)
{
    return json_is_true (json_object_get (health, "writer_reachable"))
           && s_int (health, "writer_seq") == writer_seq;
}

static bool
s_dropped (json_t *health, uint64_t dropped)
{
    return s_int (health, "dropped") == dropped;
}

//  The ids of the open orders in the edge's snapshot of table's room,
//  oldest first, as "1,2,3"; asserts its seq.
static void
s_expect_orders (bus_edge_t *edge, const char *table, uint64_t seq,
                 const char *ids)
{
    json_t *snapshot = bus_edge_snapshot (edge, table);
    assert (snapshot);
    assert (streq (json_string_value (json_object_get (snapshot, "type")),
                   "snapshot"));
    assert (s_int (snapshot, "seq") == seq);
    char got[256] = "";
    size_t index;
    json_t *order;
    json_array_foreach (json_object_get (snapshot, "orders"), index, order)
    {
        size_t len = strlen (got);
        snprintf (got + len, sizeof got - len, "%s%" PRIu64, len ? "," : "",
                  s_int (order, "id"));
    }
    if (!streq (got, ids))
        fprintf (stderr,
                 "edge test: room '%s' holds orders [%s], expected [%s]\n",
                 table, got, ids);
    assert (streq (got, ids));
    json_decref (snapshot);
}

static bool
s_resyncing (json_t *health, uint64_t epoch_changes)
{
    return json_is_false (json_object_get (health, "synced"))
           && s_int (health, "epoch_changes") == epoch_changes;
}

static bool
s_stale (json_t *health, uint64_t stale)
{
    return s_int (health, "stale") == stale;
}

//  Wait until the edge asks for a snapshot while /healthz says it is out
//  of sync because of why; answer it at seq with orders ids.
static void
s_expect_resync (s_writer_t *writer, bus_edge_t *edge, const char *why,
                 uint64_t seq, const uint64_t *ids, size_t count)
{
    bus_sync_req_t req;
    zframe_t *identity = NULL;
    assert (s_request (writer, &req, &identity));
    assert (req.op == BUS_SYNC_SNAPSHOT);
    bool ok = true;
    json_t *health = bus_edge_health (edge, &ok);
    const char *resync = json_string_value (json_object_get (health, "resync"));
    if (!resync || !strstr (resync, why))
        fprintf (stderr, "edge test: resync '%s', expected '%s'\n",
                 resync ? resync : "(none)", why);
    assert (!ok && json_is_false (json_object_get (health, "synced")));
    assert (resync && strstr (resync, why));
    json_decref (health);
    s_answer_snapshot (writer, &identity, &req, seq, ids, count);
    health = s_health_when (edge, s_at_seq, seq, &ok);
    assert (s_at_seq (health, seq));
    json_decref (health);
}

static bool
s_epoch_is (json_t *health, uint64_t epoch)
{
    char hex[24];
    snprintf (hex, sizeof hex, "%016" PRIx64, epoch);
    const char *got =
        json_string_value (json_object_get (health, "state_epoch"));
    return got && streq (got, hex);
}

//  Runs of the writer: one restarted on its data goes on from the
//  edge's history (no snapshot); a restored copy that holds less than
//  the edge has seen, a lower seq from a new epoch, a new identity and
//  a seq that goes back within one epoch are other histories, each a
//  resync from a snapshot, never a replay; the history left behind is
//  ignored.  The edge is at seq 21 of epoch 1.
static void
s_test_epochs (s_writer_t *writer, bus_edge_t *edge, bool verbose)
{
    bool ok = true;
    //  Restarted at seq 21: event 22 is applied as any other
    bus_epoch_t first = writer->epoch;
    writer->epoch.epoch = 2;
    writer->epoch.parent = 1;
    writer->epoch.base = 21;
    s_publish_event (writer, 22, 22, "T1", BUS_STATUS_PLACED);
    json_t *health = s_health_when (edge, s_at_seq, 22, &ok);
    assert (s_at_seq (health, 22) && s_int (health, "epoch_changes") == 1);
    assert (s_epoch_is (health, 2));
    assert (strstr (json_string_value (json_object_get (health, "resync")),
                    "could not replay"));   //  the last resync, from before
    json_decref (health);
    s_expect_orders (edge, "T2", 22, "3,21");
    s_expect_orders (edge, "T1", 22, "14,16,22");
    //  ...and the events of the run before, still on their way, ignored
    bus_epoch_t second = writer->epoch;
    writer->epoch = first;
    s_publish_event (writer, 23, 23, "T1", BUS_STATUS_PLACED);
    writer->epoch = second;
    health = s_health_when (edge, s_stale, 1, &ok);
    assert (s_int (health, "stale") == 1 && s_at_seq (health, 22));
    json_decref (health);
    if (verbose)
        printf ("   a writer restarted on its data: gone on from, no "
                "resync; its old run's stragglers ignored: OK\n");

    //  A copy of run 2 taken at seq 20, restored: the edge has seen 22 of
    //  it, so its next event (21, a lower seq) is another history
    writer->epoch.epoch = 3;
    writer->epoch.parent = 2;
    writer->epoch.base = 20;
    s_publish_event (writer, 21, 21, "T1", BUS_STATUS_PLACED);
    const uint64_t restored[] = { 1, 3 };
    s_expect_resync (writer, edge,
                     "writer epoch changed from "
                     "0000000000000002 to 0000000000000003",
                     21, restored, 2);
    health = bus_edge_health (edge, &ok);
    assert (ok && s_int (health, "epoch_changes") == 2
            && s_epoch_is (health, 3));
    json_decref (health);
    s_expect_orders (edge, "", 21, "1,3");
    json_t *snapshot = bus_edge_snapshot (edge, "");
    assert (streq (json_string_value (json_object_get (snapshot, "epoch")),
                   "0000000000000003"));
    json_decref (snapshot);
    //  A straggler of run 2 is ignored; run 3's next event is applied
    writer->epoch = second;
    s_publish_event (writer, 24, 24, "T1", BUS_STATUS_PLACED);
    writer->epoch.epoch = 3;
    writer->epoch.parent = 2;
    writer->epoch.base = 20;
    health = s_health_when (edge, s_stale, 2, &ok);
    assert (s_int (health, "stale") == 2);
    json_decref (health);
    s_publish_event (writer, 22, 4, "T2", BUS_STATUS_PLACED);
    health = s_health_when (edge, s_at_seq, 22, &ok);
    assert (s_at_seq (health, 22) && s_int (health, "epoch_changes") == 2);
    json_decref (health);
    s_expect_orders (edge, "", 22, "1,3,4");
    if (verbose)
        printf ("   a restored copy holding less than the edge saw: resynced "
                "from a snapshot, the old run's stragglers ignored: OK\n");

    //  Within the epoch a heartbeat below the last event heard
    s_publish_heartbeat (writer, 2);
    const uint64_t back[] = { 2 };
    s_expect_resync (writer, edge, "writer sequence went back from 22 to 2", 2,
                     back, 1);
    s_expect_orders (edge, "", 2, "2");
    //  A new store: its heartbeat alone is enough
    strcpy (writer->epoch.id, "fedcba9876543210fedcba9876543210");
    writer->epoch.epoch = 1;
    writer->epoch.parent = writer->epoch.base = 0;
    s_publish_heartbeat (writer, 1);
    health = s_health_when (edge, s_resyncing, 3, &ok);
    json_decref (health);
    s_expect_resync (writer, edge, "a new store", 1, NULL, 0);
    s_expect_orders (edge, "", 1, "");
    if (verbose)
        printf ("   a seq gone back within an epoch, a new store: "
                "resynced: OK\n");

    //  A failover (epoch 2 goes on from 1), then a resync: a snapshot of
    //  epoch 1 (a replica not re-attached yet, a deposed writer) is not
    //  taken, else every later epoch-2 message would be a straggler
    bus_epoch_t left = writer->epoch;
    writer->epoch.epoch = 2;
    writer->epoch.parent = 1;
    writer->epoch.base = 1;
    s_publish_heartbeat (writer, 1);
    s_publish_event (writer, 2, 2, "T1", BUS_STATUS_PLACED);
    health = s_health_when (edge, s_at_seq, 2, &ok);
    assert (s_at_seq (health, 2) && s_epoch_is (health, 2));
    json_decref (health);
    s_publish_heartbeat (writer, 1);   //  back from 2: resync
    bus_sync_req_t req;
    zframe_t *identity = NULL;
    assert (s_request (writer, &req, &identity));
    assert (req.op == BUS_SYNC_SNAPSHOT);
    bus_epoch_t current = writer->epoch;
    writer->epoch = left;
    const uint64_t stale_ids[] = { 7 };
    s_answer_snapshot (writer, &identity, &req, 1, stale_ids, 1);
    writer->epoch = current;
    //  ...refused by the sync client, /healthz says why, asked again,
    //  and the current one taken
    s_expect_resync (writer, edge,
                     "snapshot refused: an answer of epoch "
                     "0000000000000001, older than the newest heard",
                     1, back, 1);
    health = bus_edge_health (edge, &ok);
    assert (s_epoch_is (health, 2));
    json_decref (health);
    s_expect_orders (edge, "", 1, "2");
    if (verbose)
        printf ("   a snapshot of an epoch older than the heartbeats': not "
                "taken: OK\n");
}

//  A feed the test only registers: no browser of its ever connects
static const bus_edge_feed_t s_feed = {
    "/ws/feed", NULL, NULL, NULL, NULL, NULL
};

void
bus_edge_test (bool verbose)
{
    if (verbose)
        printf (" * bus_edge:\n");
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_EDGE, NULL);
    snprintf (config.events, sizeof config.events, "inproc://edge-test-events");
    snprintf (config.sync, sizeof config.sync, "inproc://edge-test-sync");
    snprintf (config.web_root, sizeof config.web_root, "/nonexistent/");
    config.heartbeat_ms = 100;   //  the link's pings: answered by s_request
    config.link_timeout_ms = 5000;
    config.ack_timeout_ms = S_WAIT_MS;
    s_writer_t writer = { NULL,
                          NULL,
                          { "0123456789abcdef0123456789abcdef", 1, 0, 0 },
                          { { 0 } },
                          0 };
    writer.pub = zsock_new_pub ("@inproc://edge-test-events");
    writer.router = zsock_new_router ("@inproc://edge-test-sync");
    assert (writer.pub && writer.router);
    bus_http_ws_router_t router = { s_fake_websocket, s_fake_page,
                                    s_fake_redirect, &writer };
    char err[256] = "";
    bus_edge_t *edge =
        bus_edge_new (&config, NULL, router, &s_feed, err, sizeof err);
    assert (edge);
    assert (s_has_path (&writer, "/ws") && s_has_path (&writer, "/ws/feed")
            && s_has_path (&writer, "/kitchen") && s_has_path (&writer, "/pad")
            && s_has_path (&writer, "/dashboard") && s_has_path (&writer, "/"));

    //  Not in sync until the writer answers: /healthz says not ok
    bool ok = true;
    json_t *health = bus_edge_health (edge, &ok);
    assert (!ok && json_is_false (json_object_get (health, "synced")));
    json_decref (health);

    //  A snapshot with an item that does not decode (a damaged record) is
    //  not taken, never shown as all there is less one: the edge stays
    //  unsynced and asks again
    bus_sync_req_t damaged_req;
    zframe_t *damaged_from = NULL;
    assert (s_request (&writer, &damaged_req, &damaged_from));
    assert (damaged_req.op == BUS_SYNC_SNAPSHOT);
    zmsg_t *damaged = zmsg_new ();
    bus_order_t *order = s_order (2, "T1", BUS_STATUS_PLACED, 5);
    zframe_t *frame = bus_order_encode (order);
    free (order);
    zmsg_append (damaged, &frame);
    zmsg_addstr (damaged, "not an order");
    s_reply (&writer, &damaged_from, &damaged_req, 0, 5, 2, &damaged);

    //  The snapshot it asks for again: orders 2 (T1) and 3 (T2) open at
    //  seq 5, T1's cart
    const uint64_t first[] = { 3, 2 };
    s_serve_snapshot (&writer, 5, first, 2);
    health = s_health_when (edge, s_at_seq, 5, &ok);
    assert (s_at_seq (health, 5));
    json_decref (health);
    s_expect_orders (edge, "", 5, "2,3");
    s_expect_orders (edge, "T1", 5, "2");
    json_t *snapshot = bus_edge_snapshot (edge, "T1");
    assert (s_int (json_object_get (snapshot, "cart"), "version") == 3);
    json_decref (snapshot);
    //  Heartbeats until one is heard: the subscription is through, and
    //  the writer counts as reachable
    int64_t until = zclock_mono () + S_WAIT_MS;
    do {
        s_publish_heartbeat (&writer, 5);
        health = s_health_when (edge, s_heard, 5, &ok);
        json_decref (health);
    } while (!ok && zclock_mono () < until);
    assert (ok);
    if (verbose)
        printf ("   synced from the snapshot at seq 5: OK\n");

    //  Events in order: 6 places order 6 (T1), 7 serves order 2; an old
    //  event (4) and a repeated one (7) change nothing
    s_publish_event (&writer, 6, 6, "T1", BUS_STATUS_PLACED);
    s_publish_event (&writer, 7, 2, "T1", BUS_STATUS_SERVED);
    s_publish_event (&writer, 4, 4, "T1", BUS_STATUS_PLACED);
    s_publish_event (&writer, 7, 7, "T1", BUS_STATUS_PLACED);
    s_publish_heartbeat (&writer, 7);
    health = s_health_when (edge, s_heard, 7, &ok);
    json_decref (health);
    health = s_health_when (edge, s_at_seq, 7, &ok);
    assert (s_at_seq (health, 7) && s_int (health, "replayed") == 0);
    json_decref (health);
    s_expect_orders (edge, "", 7, "3,6");
    s_expect_orders (edge, "T1", 7, "6");
    if (verbose)
        printf (
            "   events applied in order, old and repeated ones skipped: OK\n");

    //  A gap: 10 comes after 7.  The edge asks for 8 and 9 before it
    //  applies 10
    s_publish_event (&writer, 10, 10, "T2", BUS_STATUS_PLACED);
    s_serve_replay (&writer, 8, 2, 2);
    health = s_health_when (edge, s_at_seq, 10, &ok);
    assert (s_at_seq (health, 10) && s_int (health, "replayed") == 2);
    json_decref (health);
    s_expect_orders (edge, "", 10, "3,6,8,9,10");
    //  A heartbeat ahead of the last event: the events between were lost
    //  on the way, and are replayed without waiting for the next one
    s_publish_heartbeat (&writer, 12);
    s_serve_replay (&writer, 11, 2, 2);
    health = s_health_when (edge, s_at_seq, 12, &ok);
    assert (s_at_seq (health, 12) && s_int (health, "replayed") == 4);
    json_decref (health);
    s_expect_orders (edge, "", 12, "3,6,8,9,10,11,12");
    if (verbose)
        printf ("   gaps filled by replay (after an event, after a "
                "heartbeat): OK\n");

    //  A gap the writer's log cannot fill: never deliver past a hole, so
    //  out of sync (not ok) until a fresh snapshot replaces the state
    s_publish_event (&writer, 15, 15, "T1", BUS_STATUS_PLACED);
    s_serve_replay (&writer, 13, 2, 0);
    bus_sync_req_t req;
    zframe_t *identity = NULL;
    assert (s_request (&writer, &req, &identity));
    assert (req.op == BUS_SYNC_SNAPSHOT);   //  a resync
    health = bus_edge_health (edge, &ok);
    assert (!ok && json_is_false (json_object_get (health, "synced"))
            && s_int (health, "seq") == 12);
    json_decref (health);
    const uint64_t second[] = { 3, 14, 16 };
    s_answer_snapshot (&writer, &identity, &req, 20, second, 3);
    health = s_health_when (edge, s_at_seq, 20, &ok);
    assert (s_at_seq (health, 20));
    json_decref (health);
    s_expect_orders (edge, "", 20, "3,14,16");
    s_expect_orders (edge, "T2", 20, "3");
    s_publish_event (&writer, 21, 21, "T2", BUS_STATUS_PLACED);
    health = s_health_when (edge, s_at_seq, 21, &ok);
    assert (s_at_seq (health, 21) && s_int (health, "replayed") == 4);
    json_decref (health);
    s_expect_orders (edge, "T2", 21, "3,21");
    if (verbose)
        printf ("   an unfillable gap: out of sync, resynced from a new "
                "snapshot: OK\n");

    //  Garbage on the events topic is counted and dropped
    zframe_t *junk = zframe_new ("junk", 4);
    s_publish (&writer, "E/T1/", &junk);
    health = s_health_when (edge, s_dropped, 1, &ok);
    assert (s_int (health, "dropped") == 1 && s_at_seq (health, 21));
    assert (s_int (health, "clients") == 0 && s_int (health, "cut") == 0
            && s_int (health, "hung_up") == 0
            && s_int (health, "max_clients") == (uint64_t) config.max_clients);
    json_decref (health);
    if (verbose)
        printf ("   an unreadable event dropped and counted: OK\n");

    s_test_epochs (&writer, edge, verbose);

    bus_edge_destroy (&edge);
    bus_edge_destroy (&edge);
    assert (edge == NULL);
    zsock_destroy (&writer.pub);
    zsock_destroy (&writer.router);
}
