/*  bus_compat_ws.c — the seeds' WebSocket, /ws/orders, as a feed the
    edge serves on its seats (bus_edge_feed_t in bus_edge.h).

    What the seed systems sent, and nothing more: {"type": "initial",
    "orders": [every order, newest first]} on connect, then
    {"type": "new_order", "order": {...}} for each order placed, every
    order in bus_compat_order's shape.  A new order's key is its id, so a
    client gets only orders newer than the newest of its initial list.  */

#include <assert.h>
#include <czmq.h>
#include "orderbus/bus_compat.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"

//  Every order, newest first, in the seeds' shape, and the newest's id
typedef struct {
    json_t *orders;
    uint64_t top;
} s_list_t;

static void
s_list_add (const bus_order_t *order, void *arg)
{
    s_list_t *list = (s_list_t *) arg;
    list->top = order->id > list->top ? order->id : list->top;
    json_array_append_new (list->orders, bus_compat_order (order));
}

//  {"type": "initial", "orders": [...]}: every order the writer holds,
//  newest first, or none if it did not answer.
static int
s_welcome (bus_sync_t *sync, json_t **welcome, uint64_t *seq, uint64_t *key)
{
    s_list_t list = { json_array (), 0 };
    int rc = 0;
    if (!list.orders || bus_sync_orders (sync, s_list_add, &list, seq)) {
        json_decref (list.orders);
        list.orders = NULL;
        rc = -1;
    }
    *key = rc == 0 ? list.top : 0;
    *welcome = json_pack ("{s:s, s:o}", "type", "initial", "orders",
                          list.orders ? list.orders : json_array ());
    return rc;
}

//  {"type": "new_order", "order": {...}} for an order placed; the seeds
//  said nothing of anything else.
static json_t *
s_event (const bus_event_t *event, uint64_t *key)
{
    if (event->type != BUS_EVENT_ORDER_PLACED)
        return NULL;
    *key = event->order.id;
    return json_pack ("{s:s, s:o}", "type", "new_order", "order",
                      bus_compat_order (&event->order));
}

//  Every table's orders: a kitchen or manager token, in the path
//  (/compat/<token>/ws/orders: the seeds' clients send no headers) or
//  where the native /ws takes it.  401 or 403 before the handshake.
static int
s_connect (bus_auth_t *auth, bus_req_t *req)
{
    bus_claims_t claims;
    int rc = bus_compat_claims (auth, req, &claims);
    if (rc == 0 && bus_token_allows_role (&claims, BUS_TOKEN_KITCHEN) == 0)
        return 0;
    char why[256];
    if (rc == 0)
        bus_req_send_error (req, 403, "forbidden",
                            "/ws/orders shows every table's orders: it "
                            "needs a kitchen or manager token",
                            NULL);
    else if (rc == BUS_ERR_WRONG_SITE)
        bus_auth_refuse (req, rc,
                         bus_auth_why (auth, rc, &claims, why, sizeof why));
    else
        bus_req_send_error (req, 401, bus_errname (rc),
                            rc == BUS_ERR_EXPIRED
                                ? "the token has expired: ask for a new one"
                                : "a valid kitchen or manager token is "
                                  "needed: connect to "
                                  "/compat/<token>/ws/orders "
                                  "(docs/compat.md)",
                            NULL);
    return 1;
}

static const bus_edge_feed_t s_feed = { "/ws/orders", s_event,
                                        s_welcome,    "/compat/*/ws/orders",
                                        s_connect,    bus_compat_site };

const bus_edge_feed_t *
bus_compat_ws_feed (void)
{
    return &s_feed;
}

//  ---------------------------------------------------------------------
//  Selftest

static bus_order_t *
s_test_order (uint64_t id, const char *table)
{
    bus_order_t *order = (bus_order_t *) calloc (1, sizeof *order);
    assert (order);
    order->id = id;
    order->status = BUS_STATUS_PLACED;
    snprintf (order->table, sizeof order->table, "%s", table);
    //  What every stored order has, or the sync client refuses it
    snprintf (order->key, sizeof order->key, "key-%" PRIu64, id);
    snprintf (order->origin, sizeof order->origin, "gw");
    order->created_ms = 1745739020123;   //  2025-04-27T07:30:20.123Z
    order->line_count = 1;
    snprintf (order->lines[0].item_id, sizeof order->lines[0].item_id,
              "burger");
    snprintf (order->lines[0].name, sizeof order->lines[0].name, "Burger");
    order->lines[0].qty = 2;
    return order;
}

static void
s_test_expect (json_t *json, const char *text)
{
    char *got = bus_json_dump (json);
    if (!got || strcmp (got, text) != 0)
        fprintf (stderr, "compat ws test: got %s\nexpected %s\n",
                 got ? got : "(nothing)", text);
    assert (got && strcmp (got, text) == 0);
    free (got);
}

//  A fake writer answering one LIST request on the sync socket with two
//  orders, newest first, at seq 41; then it is done.
static void
s_test_writer (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ("@inproc://compat-ws-test-sync");
    assert (router);
    zsock_signal (pipe, 0);
    zmsg_t *msg = zmsg_recv (router);
    assert (msg && zmsg_size (msg) == 2);
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *body = zmsg_first (msg);
    bus_sync_req_t req;
    assert (bus_sync_req_decode (zframe_data (body), zframe_size (body), &req)
            == 0);
    assert (req.op == BUS_SYNC_LIST && req.from == 0);
    zmsg_destroy (&msg);
    bus_sync_reply_t reply = { .rid = req.rid,
                               .seq = 41,
                               .count = 2,
                               .writer = { "0123456789abcdef0123456789abcdef",
                                           1 } };
    zmsg_t *answer = zmsg_new ();
    zmsg_append (answer, &identity);
    zframe_t *header = bus_sync_reply_encode (&reply);
    zmsg_append (answer, &header);
    for (uint64_t id = 7; id >= 6; id--) {
        bus_order_t *order = s_test_order (id, id == 7 ? "T2" : "T1");
        zframe_t *frame = bus_order_encode (order);
        zmsg_append (answer, &frame);
        free (order);
    }
    assert (zmsg_send (&answer, router) == 0);
    free (zstr_recv (pipe));   //  $TERM
    zsock_destroy (&router);
}

void
bus_compat_ws_test (bool verbose)
{
    const bus_edge_feed_t *feed = bus_compat_ws_feed ();
    assert (feed && streq (feed->path, "/ws/orders"));
    assert (streq (feed->other_path, "/compat/*/ws/orders") && feed->connect);

    //  An order placed is a new_order, keyed by its id; nothing else is
    bus_event_t *event = (bus_event_t *) calloc (1, sizeof *event);
    assert (event);
    bus_order_t *order = s_test_order (12, "Table 1");
    event->seq = 30;
    event->type = BUS_EVENT_ORDER_PLACED;
    event->order = *order;
    free (order);
    uint64_t key = 0;
    json_t *json = feed->event (event, &key);
    assert (key == 12);
    s_test_expect (json, "{\"type\":\"new_order\",\"order\":{\"id\":12,"
                         "\"table\":\"Table 1\",\"items\":[{\"name\":"
                         "\"Burger\",\"quantity\":2}],\"created_at\":"
                         "\"2025-04-27T07:30:20\"}}");
    json_decref (json);
    event->type = BUS_EVENT_ORDER_STATUS;
    event->order.status = BUS_STATUS_READY;
    assert (feed->event (event, &key) == NULL);
    event->type = BUS_EVENT_CART;
    assert (feed->event (event, &key) == NULL);
    event->type = BUS_EVENT_MENU_ITEM;
    assert (feed->event (event, &key) == NULL);
    free (event);

    //  The welcome: every order the writer lists, newest first, the
    //  newest's id as the key and the writer's seq
    zactor_t *writer = zactor_new (s_test_writer, NULL);
    assert (writer);
    bus_sync_t *sync =
        bus_sync_new ("inproc://compat-ws-test-sync", 5000, NULL);
    json_t *welcome = NULL;
    uint64_t seq = 0;
    assert (feed->welcome (sync, &welcome, &seq, &key) == 0);
    assert (seq == 41 && key == 7);
    s_test_expect (
        welcome, "{\"type\":\"initial\",\"orders\":[{\"id\":7,\"table\":"
                 "\"T2\",\"items\":[{\"name\":\"Burger\",\"quantity\":2}],"
                 "\"created_at\":\"2025-04-27T07:30:20\"},{\"id\":6,"
                 "\"table\":\"T1\",\"items\":[{\"name\":\"Burger\","
                 "\"quantity\":2}],\"created_at\":\"2025-04-27T07:30:20\"}]}");
    json_decref (welcome);
    bus_sync_destroy (&sync);
    zactor_destroy (&writer);

    //  A writer that does not answer: an empty list all the same
    sync = bus_sync_new ("inproc://compat-ws-test-nobody", 100, NULL);
    key = 99;
    assert (feed->welcome (sync, &welcome, &seq, &key) == -1);
    assert (key == 0);
    s_test_expect (welcome, "{\"type\":\"initial\",\"orders\":[]}");
    json_decref (welcome);
    bus_sync_destroy (&sync);
    if (verbose)
        printf (" * bus_compat_ws: new_order, initial list, no writer\n");
}
