/*  bus_edge.c — events to browsers: Clone-pattern state, gap filling,
    WebSocket fan-out.

    Threads, what each owns, and how work passes between them:

    thread               owns                      hands on by
    -------------------  ------------------------  -------------------------
    actor (s_actor, 1)   sub (SUB: events and      applying each event under
                         heartbeats), event (its   the edge lock: the state,
                         scratch); calls sync for  the ring, and a frame
                         snapshot and replay       queued per browser of its
                                                   room (bus_fanout_push,
                                                   which never blocks)
    seats (the server's  one browser each, from    its client on the list and
    WebSocket threads,   handshake to close: its   its first messages queued
    edge/max_clients)    s_client_t, its reads;    in one critical section;
                         calls sync (the log, the  then writes those messages
                         feed's welcome) outside   itself (bus_fanout_start)
                         lock
    server's request     nothing of the edge       /healthz reads the state
    threads              (pages, /healthz)         under the lock
    fan-out senders      nothing of the edge:      writev of queued frames
    (edge/senders)       peers' queues (their own  to each browser's socket
                         locks, bus_fanout.c)      under its connection lock
    link pinger (1)      its own sync client       heartbeats reach it from
                                                   the actor (atomics)

    The edge lock guards seq, orders, carts, the ring, the snapshot cache
    and the client list; synced is written under it and read by the
    actor without (an atomic).  A new browser is added to the list in the
    same critical section that queues its snapshot, so no event can fall
    between the two or be sent twice.  A seat resuming a browser waits
    on synced_cond, which the actor signals when it gets in sync.  Locks
    are taken in this order only: the edge lock, then a peer's lock, then
    the fan-out's.

    A browser's socket is the one thing shared by threads for writing:
    the server writes its handshake, pings and the answer to a close; the
    seat writes close frames and the first messages; the senders write
    events.  Each holds the connection's lock (bus_http_ws_lock) around a
    write so frames never interleave.  It is shared rather than owned by
    the seat because a few senders, not a thread per browser, must write
    the events: a browser that stops reading is skipped, then cut off
    with 4001 and hung up on (bus_fanout.h), so it never stalls the
    others, and its memory is bounded by edge/client_queue messages.
    Nothing is written to a browser under the edge lock.  The seats hold
    a server thread per WebSocket, waiting for what the browser sends:
    edge/max_clients bounds them, and http/threads more stay free for
    pages and /healthz.  */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_auth.h"
#include "orderbus/bus_cart.h"
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_fanout.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_reads.h"
#include "orderbus/bus_sync.h"
#include "orderbus/bus_topic.h"

#define S_REPLAY_PAGE      1000   //  events per replay request
#define S_RESYNC_RETRY_MS  500    //  between snapshot attempts, at first
#define S_RESYNC_RETRY_MAX 4000   //  ...doubling up to this while they fail
#define S_CLOSE_POLICY     1008   //  WebSocket close codes: policy violation,
#define S_CLOSE_ERROR      1011   //  ...server error,
#define S_CLOSE_FULL       1013   //  ...try again later
//  A resuming browser waits this long for a (re)starting edge to get in sync
#define S_RESUME_WAIT_MS 5000
//  Fetches of what a full ring let go while a resume read the log
#define S_RESUME_REFETCH 3
//  Earlier epochs the state's history went on from (a writer restarted on
//  its data), remembered for browsers that resume with one of them
#define S_LINEAGE 8

//  What a message is about, for the rooms: a pad sees its own table's
//  orders and cart, the kitchen every order but no cart, both the menu.
typedef enum {
    S_FOR_ONE = 1,   //  addressed to one browser (a snapshot, an error)
    S_ORDER,
    S_CART,
    S_MENU,
    S_FEED   //  for the feed's browsers (the seeds' /ws/orders)
} s_kind_t;

//  A message for browsers: its frame, and whom it concerns
typedef struct {
    s_kind_t kind;
    char table[BUS_TABLE_MAX];   //  S_ORDER, S_CART: whose
    uint64_t key;                //  S_FEED: its place (bus_edge_feed_t)
    bus_wsframe_t *frame;        //  shared with the queues it is in
} s_msg_t;

//  A room's snapshot, serialized, and the seq it was taken at
typedef struct {
    uint64_t seq;
    bus_wsframe_t *frame;
} s_snapshot_t;

typedef struct s_client {
    bus_http_ws_t *ws;           //  its connection, the server's
    char table[BUS_TABLE_MAX];   //  a pad's table, "" for staff
    bool feed;                   //  a browser of the feed (self->feed)
    bool guest;                  //  on a guest seat: no staff token
    uint64_t after;              //  ...whose welcome held keys up to this
    bus_fanout_peer_t *peer;     //  its queue
    struct s_client *next;       //  in the edge's list, under its lock
} s_client_t;

struct _bus_edge_t {
    bus_config_t config;
    bus_auth_t *auth;               //  borrowed: who may watch what
    bus_curve_t *curve;             //  CURVE client keys; outlives the sockets
    bus_sync_t *sync;               //  the writer's sync client
    bus_reads_t *reads;             //  snapshots and replays: a replica's
                                    //  (endpoints/reads) or the writer's
    bus_link_t *link;               //  is the writer there?
    bus_fanout_t *fanout;           //  writes the browsers' queues out
    zsock_t *sub;                   //  events + heartbeats, actor only
    bus_curve_watch_t *sub_watch;   //  its handshakes, actor only
    zactor_t *actor;
    bus_event_t event;   //  actor's scratch
    bus_epoch_t left;    //  actor: the history we last resynced away from
    uint64_t heard;      //  actor: highest seq heard on sub from writer
    atomic_uint_fast64_t cut, dropped, replayed, stale,
        epoch_changes;             //  counters
    atomic_uint_fast64_t pruned;   //  replays answered "snapshot instead"
    pthread_mutex_t lock;          //  guards everything below
    pthread_cond_t synced_cond;    //  signalled when synced turns true
    atomic_bool synced;            //  state is a snapshot + updates (the
                                   //  actor reads it without the lock)
    uint64_t seq;                  //  last event applied to the state
    bus_epoch_t writer;            //  the history the state came from
    struct {
        uint64_t epoch, base;   //  an earlier epoch, and up to which seq
    } lineage[S_LINEAGE];       //  ...the state's history is that one's
    size_t lineage_len;
    char resync[192];                 //  why the last resync, "" if none
    char epoch_change[192];           //  the last change of history, "" if none
    json_t *orders;                   //  open orders by id ("12": {...})
    json_t *carts;                    //  carts by table
    zhashx_t *snapshots;              //  room ("" = staff) -> s_snapshot_t
    const bus_edge_feed_t *feed;      //  another protocol on the seats, or NULL
    bus_http_ws_handler_t ws_hooks;   //  /ws, and the feed's path: the
    bus_http_ws_handler_t feed_hooks;   //  server borrows them
    s_client_t *clients;                //  connected browsers
    size_t client_count;
    size_t feed_count;    //  ...of which the feed's
    size_t guest_count;   //  ...of which on guest seats (s_seat_take)
    s_msg_t **ring;       //  the last ring_cap event messages,
    size_t ring_cap;      //  for after_seq; contiguous up to seq
    size_t ring_len;
    size_t ring_next;   //  slot the next event goes into
};

//  ---------------------------------------------------------------------
//  Messages

//  New message holding the compact JSON of msg, about table, or NULL.
static s_msg_t *
s_msg_new (const json_t *msg, s_kind_t kind, const char *table)
{
    char *text = bus_json_dump (msg);
    s_msg_t *self = text ? calloc (1, sizeof *self) : NULL;
    if (self) {
        self->kind = kind;
        bus_strlcpy (self->table, table ? table : "", sizeof self->table);
        self->frame = bus_wsframe_new (BUS_WSFRAME_TEXT, text, strlen (text));
        if (!self->frame) {
            free (self);
            self = NULL;
        }
    }
    free (text);
    return self;
}

static void
s_msg_destroy (s_msg_t **self_p)
{
    if (*self_p) {
        bus_wsframe_unref (&(*self_p)->frame);
        free (*self_p);
    }
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Browsers

static s_client_t *
s_client_new (bus_edge_t *self, bus_http_ws_t *ws, const char *table)
{
    s_client_t *client = calloc (1, sizeof *client);
    if (!client)
        return NULL;
    int fd = bus_http_ws_socket (ws);
    if (fd >= 0)
        client->peer = bus_fanout_join (self->fanout, ws, fd);
    if (!client->peer) {
        zsys_error ("edge: cannot serve a new browser: %s",
                    fd < 0 ? "its socket was not found" : "out of memory");
        free (client);
        return NULL;
    }
    client->ws = ws;
    bus_strlcpy (client->table, table, sizeof client->table);
    return client;
}

//  Wait for a write to it in progress, drop its queue, free.
static void
s_client_destroy (bus_edge_t *self, s_client_t **client_p)
{
    bus_fanout_leave (self->fanout, &(*client_p)->peer);
    free (*client_p);
    *client_p = NULL;
}

//  Is msg for client's room?
static bool
s_wants (const s_client_t *client, const s_msg_t *msg)
{
    if (client->feed)
        return msg->kind == S_FOR_ONE
               || (msg->kind == S_FEED && msg->key > client->after);
    if (msg->kind == S_FOR_ONE || msg->kind == S_MENU)
        return true;
    if (msg->kind == S_FEED)
        return false;
    if (!*client->table)
        return msg->kind == S_ORDER;
    return streq (msg->table, client->table);
}

//  Queue frame for client, counting a cut.  Edge lock held.
static void
s_deliver_frame (bus_edge_t *self, s_client_t *client, bus_wsframe_t *frame)
{
    if (bus_fanout_push (self->fanout, client->peer, frame)) {
        atomic_fetch_add (&self->cut, 1);
        zsys_warning ("edge: a browser fell %d messages behind at seq %" PRIu64
                      "; cut off to resync",
                      self->config.client_queue, self->seq);
    }
}

//  Queue msg for client if it is for its room.  Edge lock held.
static void
s_deliver (bus_edge_t *self, s_client_t *client, s_msg_t *msg)
{
    if (s_wants (client, msg))
        s_deliver_frame (self, client, msg->frame);
}

//  Queue a one-off message (a snapshot) for client.  Edge lock held.
static void
s_deliver_json (bus_edge_t *self, s_client_t *client, const json_t *json)
{
    s_msg_t *msg = s_msg_new (json, S_FOR_ONE, NULL);
    if (msg)
        s_deliver (self, client, msg);
    s_msg_destroy (&msg);
}

//  New JSON of table's cart, an empty one if it never had one.
static json_t *
s_cart_json (bus_edge_t *self, const char *table)
{
    json_t *cart = json_object_get (self->carts, table);
    if (cart)
        return json_incref (cart);
    bus_cart_t *empty = malloc (sizeof *empty);
    if (!empty)
        return json_null ();
    bus_cart_init (empty, table);
    cart = bus_json_cart (empty);
    free (empty);
    return cart;
}

static int
s_by_id (const void *a, const void *b)
{
    json_int_t x = json_integer_value (json_object_get (*(json_t **) a, "id"));
    json_int_t y = json_integer_value (json_object_get (*(json_t **) b, "id"));
    return (x > y) - (x < y);
}

//  New snapshot message for a room: the open orders (of table, or all
//  when table is ""), oldest first, their seq, and for a table its cart.
static json_t *
s_snapshot_msg (bus_edge_t *self, const char *table)
{
    size_t n = json_object_size (self->orders), i = 0;
    json_t **list = calloc (n ? n : 1, sizeof *list);
    if (!list)
        return NULL;
    const char *id;
    json_t *order;
    json_object_foreach (
        self->orders, id,
        order) if (!*table
                   || streq (
                       json_string_value (json_object_get (order, "table")),
                       table)) list[i++] = order;
    qsort (list, i, sizeof *list, s_by_id);
    json_t *orders = json_array ();
    for (size_t k = 0; k < i; k++)
        json_array_append (orders, list[k]);
    free (list);
    char epoch[24];
    snprintf (epoch, sizeof epoch, "%016" PRIx64, self->writer.epoch);
    json_t *msg =
        json_pack ("{s:s, s:I, s:s, s:o}", "type", "snapshot", "seq",
                   (json_int_t) self->seq, "epoch", epoch, "orders", orders);
    if (*table)
        json_object_set_new (msg, "cart", s_cart_json (self, table));
    return msg;
}

static void
s_snapshot_destroy (void **item)
{
    s_snapshot_t *snapshot = (s_snapshot_t *) *item;
    bus_wsframe_unref (&snapshot->frame);
    free (snapshot);
    *item = NULL;
}

//  Queue its room's snapshot for client.  A room's snapshot is built and
//  serialized once per seq, then shared by every browser of the room that
//  connects meanwhile: a rush of screens (after an edge restart, say)
//  costs one snapshot, not one each, under the lock.  Edge lock held.
static void
s_deliver_snapshot (bus_edge_t *self, s_client_t *client)
{
    s_snapshot_t *snapshot =
        (s_snapshot_t *) zhashx_lookup (self->snapshots, client->table);
    if (!snapshot || snapshot->seq != self->seq) {
        json_t *json = s_snapshot_msg (self, client->table);
        char *text = json ? bus_json_dump (json) : NULL;
        bus_wsframe_t *frame =
            text ? bus_wsframe_new (BUS_WSFRAME_TEXT, text, strlen (text))
                 : NULL;
        json_decref (json);
        free (text);
        if (!snapshot && frame && (snapshot = calloc (1, sizeof *snapshot)))
            zhashx_insert (self->snapshots, client->table, snapshot);
        if (!snapshot || !frame) {
            bus_wsframe_unref (&frame);
            zsys_error ("edge: out of memory for a snapshot; the browser "
                        "gets it with the next resync");
            self->synced = false;
            return;
        }
        bus_wsframe_unref (&snapshot->frame);
        snapshot->frame = frame;
        snapshot->seq = self->seq;
    }
    s_deliver_frame (self, client, snapshot->frame);
}

//  Oldest seq the ring holds (seq + 1 when it is empty).
static uint64_t
s_ring_oldest (bus_edge_t *self)
{
    return self->seq - self->ring_len + 1;
}

//  Queue the ring's events after seq `after` for client, if the ring
//  still holds them all.  true if it did.  Edge lock held.
static bool
s_deliver_ring (bus_edge_t *self, s_client_t *client, uint64_t after)
{
    if (after > self->seq || after + 1 < s_ring_oldest (self))
        return false;
    size_t skip = (size_t) (after + 1 - s_ring_oldest (self));
    size_t first =
        (self->ring_next + self->ring_cap - self->ring_len) % self->ring_cap;
    for (size_t i = skip; i < self->ring_len; i++)
        s_deliver (self, client, self->ring[(first + i) % self->ring_cap]);
    return true;
}

//  ---------------------------------------------------------------------
//  Applying events (actor thread)

//  Keep msg (taken) as the newest event message.
static void
s_ring_push (bus_edge_t *self, s_msg_t *msg)
{
    s_msg_destroy (&self->ring[self->ring_next]);
    self->ring[self->ring_next] = msg;
    self->ring_next = (self->ring_next + 1) % self->ring_cap;
    if (self->ring_len < self->ring_cap)
        self->ring_len++;
}

static void
s_ring_clear (bus_edge_t *self)
{
    for (size_t i = 0; i < self->ring_cap; i++)
        s_msg_destroy (&self->ring[i]);
    self->ring_len = self->ring_next = 0;
}

//  What event is about, for the rooms, and whose table.
static s_kind_t
s_room (const bus_event_t *event, const char **table)
{
    *table = event->type == BUS_EVENT_CART        ? event->cart.table
             : event->type == BUS_EVENT_MENU_ITEM ? NULL
                                                  : event->order.table;
    return event->type == BUS_EVENT_CART        ? S_CART
           : event->type == BUS_EVENT_MENU_ITEM ? S_MENU
                                                : S_ORDER;
}

//  Fold the event (and its JSON) into the state.  Edge lock held.
static void
s_fold (bus_edge_t *self, const bus_event_t *event, json_t *json)
{
    if (event->type == BUS_EVENT_CART)
        json_object_set (self->carts, event->cart.table,
                         json_object_get (json, "cart"));
    else if (event->type != BUS_EVENT_MENU_ITEM) {
        char id[24];
        snprintf (id, sizeof id, "%" PRIu64, event->order.id);
        if (bus_status_is_open (event->order.status))
            json_object_set (self->orders, id, json_object_get (json, "order"));
        else
            json_object_del (self->orders, id);
    }
}

//  The event, for the feed's browsers if it has a message for them.
//  Edge lock held.
static void
s_apply_feed (bus_edge_t *self, const bus_event_t *event)
{
    uint64_t key = 0;
    json_t *json = self->feed->event (event, &key);
    s_msg_t *msg = json ? s_msg_new (json, S_FEED, NULL) : NULL;
    if (msg) {
        msg->key = key;
        for (s_client_t *c = self->clients; c; c = c->next)
            s_deliver (self, c, msg);
    }
    s_msg_destroy (&msg);
    json_decref (json);
}

//  Apply the next event in sequence and queue it for every browser whose
//  room it concerns.
static void
s_apply (bus_edge_t *self, const bus_event_t *event)
{
    json_t *json = bus_json_event (event);
    const char *table;
    s_kind_t kind = s_room (event, &table);
    s_msg_t *msg = json ? s_msg_new (json, kind, table) : NULL;
    pthread_mutex_lock (&self->lock);
    if (json)
        s_fold (self, event, json);
    self->seq = event->seq;
    if (msg) {
        for (s_client_t *c = self->clients; c; c = c->next)
            s_deliver (self, c, msg);
        s_ring_push (self, msg);
    } else   //  out of memory: browsers would miss this event, so resync
        self->synced = false;
    if (self->feed_count)
        s_apply_feed (self, event);
    pthread_mutex_unlock (&self->lock);
    json_decref (json);
}

//  Remember that the state's history is epoch's up to seq base.  Edge
//  lock held.
static void
s_lineage_push (bus_edge_t *self, uint64_t epoch, uint64_t base)
{
    if (self->lineage_len == S_LINEAGE) {
        memmove (&self->lineage[0], &self->lineage[1],
                 (S_LINEAGE - 1) * sizeof self->lineage[0]);
        self->lineage_len--;
    }
    self->lineage[self->lineage_len].epoch = epoch;
    self->lineage[self->lineage_len].base = base;
    self->lineage_len++;
}

//  May a browser whose seq `after` is of epoch resume from the state?
//  Its epoch is the state's, or one the state went on from, with after
//  at or below where that history and ours part.  Edge lock held.
static bool
s_lineage_has (bus_edge_t *self, uint64_t epoch, uint64_t after)
{
    if (epoch == self->writer.epoch)
        return true;
    for (size_t i = 0; i < self->lineage_len; i++)
        if (self->lineage[i].epoch == epoch && after <= self->lineage[i].base)
            return true;
    return false;
}

static void s_resync_because (bus_edge_t *self, const char *why);

//  Replace the state with a fresh snapshot from the writer and send it to
//  every browser.  0, or -1 if the writer did not answer.
static int
s_resync (bus_edge_t *self)
{
    bus_sync_req_t req = { .op = BUS_SYNC_SNAPSHOT };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    //  A replica answers only from the history the heartbeats say is
    //  current (else the state's); a snapshot older than the newest
    //  heartbeat's (a deposed writer's, a stale replica's) is not taken
    //  (the sync clients refuse it: bus_sync_set_older), it would make
    //  every later message of the current one a straggler.  A newer one
    //  is (an event of a new history may come first).
    bus_epoch_t beat;
    bus_link_writer (self->link, &beat);
    const bus_epoch_t *follows = beat.epoch ? &beat : &self->writer;
    int rc = bus_reads_call (self->reads, &req, &reply, &items, follows);
    if (rc != 0 || reply.status) {
        zmsg_destroy (&items);
        if (rc == 0) {   //  refused (a synchronous replica not confirming):
            char why[sizeof self->resync];   //  /healthz says so
            snprintf (why, sizeof why, "snapshot refused: %.150s", reply.error);
            s_resync_because (self, why);
        }
        return -1;
    }
    json_t *orders = json_object (), *carts = json_object ();
    bus_order_t *order = &self->event.order;
    bus_cart_t *cart = &self->event.cart;
    uint64_t index = 0;
    bool whole = true;
    for (zframe_t *f = zmsg_first (items); f && whole;
         f = zmsg_next (items), index++)
        if (index < reply.next
            && bus_order_decode (zframe_data (f), zframe_size (f), order)
                   == 0) {
            char id[24];
            snprintf (id, sizeof id, "%" PRIu64, order->id);
            json_object_set_new (orders, id, bus_json_order (order));
        } else if (index >= reply.next
                   && bus_cart_decode (zframe_data (f), zframe_size (f), cart)
                          == 0)
            json_object_set_new (carts, cart->table, bus_json_cart (cart));
        else
            whole = false;
    zmsg_destroy (&items);
    //  A snapshot with an order left out would show a kitchen less than
    //  there is, as if it were all: not taken (the edge stays unsynced)
    if (!whole) {
        zsys_error ("edge: the writer's snapshot holds an item that does "
                    "not decode: not taken");
        json_decref (orders);
        json_decref (carts);
        return -1;
    }
    pthread_mutex_lock (&self->lock);
    json_decref (self->orders);
    json_decref (self->carts);
    self->orders = orders;
    self->carts = carts;
    self->seq = reply.seq;
    if (!bus_epoch_same (&self->writer, &reply.writer)) {
        self->heard = 0;   //  another stream: nothing heard on it yet
        //  What the old history still has on its way is a straggler,
        //  not another change (a snapshot may adopt a history no event
        //  or heartbeat showed first)
        if (self->writer.epoch)
            self->left = self->writer;
        //  Its order ids may start below what the feed's browsers were
        //  welcomed with: from now on they get every new order (the feed
        //  has no way to take back the ones their welcome listed)
        for (s_client_t *c = self->clients; c; c = c->next)
            c->after = 0;
        //  What is known of the new history: its parent's, up to its base
        self->lineage_len = 0;
        if (reply.writer.parent)
            s_lineage_push (self, reply.writer.parent, reply.writer.base);
    }
    self->writer = reply.writer;
    self->synced = true;
    pthread_cond_broadcast (&self->synced_cond);
    s_ring_clear (self);
    zhashx_purge (self->snapshots);
    for (s_client_t *c = self->clients; c; c = c->next)
        if (!c->feed)   //  a feed has no snapshot message
            s_deliver_snapshot (self, c);
    pthread_mutex_unlock (&self->lock);
    zsys_info ("edge: in sync at seq %" PRIu64 " of epoch %016" PRIx64
               " with %zu open orders",
               reply.seq, reply.writer.epoch, json_object_size (orders));
    return 0;
}

//  Mark the state out of sync, saying why (for the log and /healthz).
//  Actor thread.
static void
s_resync_because (bus_edge_t *self, const char *why)
{
    zsys_warning ("edge: %s: resyncing", why);
    pthread_mutex_lock (&self->lock);
    self->synced = false;
    bus_strlcpy (self->resync, why, sizeof self->resync);
    pthread_mutex_unlock (&self->lock);
}

//  The writer's retention has pruned the events from seq `from` on (its
//  log now starts at seq `first`): they will never come, so the state is
//  marked out of sync and a snapshot replaces it, and every browser's.
//  Actor thread.
static void
s_snapshot_instead (bus_edge_t *self, uint64_t from, uint64_t first)
{
    atomic_fetch_add (&self->pruned, 1);
    char why[sizeof self->resync];
    snprintf (why, sizeof why,
              "the events from seq %" PRIu64 " on were pruned by the "
              "writer's retention (its log starts at seq %" PRIu64
              "): a snapshot instead",
              from, first);
    s_resync_because (self, why);
}

//  Is a message of history `writer` (what) one the state may take?  A
//  writer restarted on its data continues the state's history (its
//  parent is the state's epoch, its base at or above the state's seq):
//  the state goes on under the new epoch, replaying whatever it lacks.
//  Any other history (a restored or new data directory, or a run the
//  state never saw) means the log the state came from may not be the
//  writer's now: the state is dropped for a fresh snapshot, never
//  replayed into.  Stragglers of the history just left are ignored.
//  Actor thread.
static bool
s_same_history (bus_edge_t *self, const bus_epoch_t *writer, const char *what)
{
    if (bus_epoch_same (writer, &self->writer))
        return true;
    if (bus_epoch_same (writer, &self->left)) {
        atomic_fetch_add (&self->stale, 1);
        return false;
    }
    atomic_fetch_add (&self->epoch_changes, 1);
    bool goes_on = bus_epoch_continues (writer, &self->writer, self->seq);
    char why[sizeof self->resync];
    snprintf (why, sizeof why,
              "writer epoch changed from %016" PRIx64 " to %016" PRIx64
              " (identity %s%s), seen in %s",
              self->writer.epoch, writer->epoch, writer->id,
              streq (writer->id, self->writer.id) ? "" : ", a new store", what);
    self->left = self->writer;
    self->heard = 0;   //  another stream: nothing heard on it yet
    pthread_mutex_lock (&self->lock);
    bus_strlcpy (self->epoch_change, why, sizeof self->epoch_change);
    if (goes_on) {
        s_lineage_push (self, writer->parent, writer->base);
        self->writer = *writer;
    }
    pthread_mutex_unlock (&self->lock);
    if (!goes_on) {
        s_resync_because (self, why);
        return false;
    }
    zsys_info ("edge: %s: it goes on from our history (we are at seq %" PRIu64
               ", it from %" PRIu64 "): no resync",
               why, self->seq, writer->base);
    return true;
}

//  Within one history the writer's stream only goes forward: each event
//  above the last, each heartbeat (the writer's last committed seq) at
//  or above every event before it.  An event at or below one heard
//  before is a repeat the state already holds, and is skipped; a
//  heartbeat below one means the writer's log is not the one the state
//  came from.  False then, and a resync is on its way.  Actor thread.
static bool
s_forward (bus_edge_t *self, uint64_t seq, bool event)
{
    if (event || seq >= self->heard) {
        self->heard = seq > self->heard ? seq : self->heard;
        return true;
    }
    char why[sizeof self->resync];
    snprintf (why, sizeof why,
              "writer sequence went back from %" PRIu64 " to %" PRIu64
              " in epoch %016" PRIx64 ", seen in a heartbeat",
              self->heard, seq, self->writer.epoch);
    self->heard = 0;
    s_resync_because (self, why);
    return false;
}

//  Fill the gap up to seq `target` from the writer's log.  If it cannot
//  be filled, the state is marked out of sync so that a fresh snapshot
//  replaces it: never deliver past a hole.
static void
s_catch_up (bus_edge_t *self, uint64_t target)
{
    while (self->seq < target) {
        uint64_t need = target - self->seq;
        bus_sync_req_t req = { .op = BUS_SYNC_REPLAY,
                               .from = self->seq + 1,
                               .limit = need < S_REPLAY_PAGE ? (uint32_t) need
                                                             : S_REPLAY_PAGE };
        bus_sync_reply_t reply;
        zmsg_t *items = NULL;
        //  Whose answer it is first: "snapshot instead" from another
        //  history is that history's change, not only a pruned range.  A
        //  refused one (an older epoch's among them) names no history.
        bool same =
            bus_reads_call (self->reads, &req, &reply, &items, &self->writer)
                == 0
            && reply.status != BUS_ERR_UNAVAILABLE
            && s_same_history (self, &reply.writer, "a replay");
        if (same && reply.status == BUS_ERR_PRUNED) {
            zmsg_destroy (&items);
            s_snapshot_instead (self, req.from, reply.next);
            return;
        }
        bool ok = same && reply.status == 0 && zmsg_size (items) > 0;
        for (zframe_t *f = ok ? zmsg_first (items) : NULL; f && ok;
             f = zmsg_next (items)) {
            ok = bus_event_decode (zframe_data (f), zframe_size (f),
                                   &self->event)
                     == 0
                 && self->event.seq == self->seq + 1;
            if (ok) {
                s_apply (self, &self->event);
                atomic_fetch_add (&self->replayed, 1);
            }
        }
        zmsg_destroy (&items);
        if (!ok) {
            if (self->synced) {
                char why[64];
                snprintf (why, sizeof why, "could not replay from seq %" PRIu64,
                          req.from);
                s_resync_because (self, why);
            }
            return;
        }
    }
}

static void
s_on_event (bus_edge_t *self, zframe_t *body, zframe_t *stamp)
{
    bus_epoch_t writer;
    if (bus_event_decode (zframe_data (body), zframe_size (body), &self->event)
            != 0
        || !stamp
        || bus_epoch_decode (zframe_data (stamp), zframe_size (stamp), &writer)
               != 0) {
        atomic_fetch_add (&self->dropped, 1);
        zsys_warning ("edge: dropped unreadable event (%zu bytes)",
                      zframe_size (body));
        return;
    }
    if (bus_link_older (self->link, &writer, "an event"))
        return;   //  a deposed writer's: never another history
    if (!self->synced)
        return;   //  covered by the snapshot to come
    if (!s_same_history (self, &writer, "an event"))
        return;
    s_forward (self, self->event.seq, true);
    if (self->event.seq <= self->seq)
        return;   //  already applied (from the snapshot or a replay)
    if (self->event.seq > self->seq + 1) {
        uint64_t seq = self->event.seq;
        zframe_t *copy = zframe_dup (body);   //  replay reuses the scratch
        s_catch_up (self, seq - 1);
        if (self->synced)
            bus_event_decode (zframe_data (copy), zframe_size (copy),
                              &self->event);
        zframe_destroy (&copy);
        if (!self->synced)
            return;
    }
    s_apply (self, &self->event);
}

static void
s_on_heartbeat (bus_edge_t *self, zframe_t *body)
{
    bus_heartbeat_t hb;
    if (bus_heartbeat_decode (zframe_data (body), zframe_size (body), &hb) != 0)
        return;
    if (bus_link_older (self->link, &hb.writer, "a heartbeat"))
        return;
    bus_link_heard (self->link, &hb, NULL);
    if (!self->synced || !s_same_history (self, &hb.writer, "a heartbeat")
        || !s_forward (self, hb.seq, false))
        return;
    //  Events after our last one were lost on the way: nothing else would
    //  tell us until the next order arrives.
    if (hb.seq > self->seq)
        s_catch_up (self, hb.seq);
}

static void
s_on_message (bus_edge_t *self)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    char *topic = msg ? zmsg_popstr (msg) : NULL;
    zframe_t *body = msg ? zmsg_pop (msg) : NULL;
    //  [topic][event][epoch]: the frame after an event is its history
    zframe_t *stamp = msg ? zmsg_pop (msg) : NULL;
    if (topic && body && !stamp && streq (topic, BUS_TOPIC_HEARTBEAT))
        s_on_heartbeat (self, body);
    else if (topic && body && zmsg_size (msg) == 0
             && strncmp (topic, BUS_TOPIC_EVENTS, strlen (BUS_TOPIC_EVENTS))
                    == 0)
        s_on_event (self, body, stamp);
    else {
        atomic_fetch_add (&self->dropped, 1);
        zsys_warning ("edge: dropped unreadable message");
    }
    free (topic);
    zframe_destroy (&body);
    zframe_destroy (&stamp);
    zmsg_destroy (&msg);
}

static void
s_actor (zsock_t *pipe, void *args)
{
    bus_edge_t *self = (bus_edge_t *) args;
    zpoller_t *poller = zpoller_new (pipe, self->sub, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_t *watch = bus_curve_watch_socket (self->sub_watch);
    if (watch)
        zpoller_add (poller, watch);
    zsock_signal (pipe, 0);
    int64_t resync_at = 0;
    int retry_ms = S_RESYNC_RETRY_MS;
    while (true) {
        //  Subscribed already, so events queue while the snapshot is taken
        //  A failed snapshot (the writer away, or a damaged record in
        //  it) is tried again later and later, not on every message:
        //  each try costs the writer a walk of its open orders
        if (!self->synced && zclock_mono () >= resync_at) {
            bool ok = s_resync (self) == 0 && self->synced;
            retry_ms = ok                                  ? S_RESYNC_RETRY_MS
                       : retry_ms * 2 > S_RESYNC_RETRY_MAX ? S_RESYNC_RETRY_MAX
                                                           : retry_ms * 2;
            resync_at = ok ? 0 : zclock_mono () + retry_ms / 2;
        }
        void *which = zpoller_wait (poller, S_RESYNC_RETRY_MS);
        if (which == pipe)
            break;   //  $TERM
        if (which == self->sub)
            s_on_message (self);
        if (which && which == watch)
            bus_curve_watch_read (self->sub_watch);
        bus_curve_watch_redial (self->sub_watch, zclock_mono ());
    }
    zpoller_destroy (&poller);
}

//  ---------------------------------------------------------------------
//  WebSocket hooks (bus_http_ws.h: on each browser's seat)

//  The room a browser may watch: a pad token's table; for staff, all
//  tables, or one if it asks with ?table=.  0 with table set and *staff
//  whether the token is staff's, or an error code for bus_auth_refuse.
static int
s_ws_room (bus_edge_t *self, bus_req_t *req, bus_claims_t *claims, char *table,
           bool *staff)
{
    int rc = bus_auth_check (self->auth, req, claims);
    if (rc != 0)
        return rc;
    *staff = bus_token_is_staff (claims);
    int len = bus_req_query (req, "table", table, BUS_TABLE_MAX);
    if (len == -2 || (len >= 0 && !bus_valid_table (table)))
        return BUS_ERR_FORBIDDEN;
    if (len < 0)
        bus_strlcpy (table, claims->table, BUS_TABLE_MAX);
    return bus_token_allows_table (claims, table);
}

//  ---------------------------------------------------------------------
//  Seats: edge/max_clients browsers at once, each holding a server
//  worker thread; the http/threads others stay for pages and /healthz.
//  edge/staff_seats of them only staff tokens may take: a guest's phone
//  opening socket after socket (or a pad gone wrong) fills the guest
//  seats and no more, and the kitchen still gets its screens.

//  Is there no seat for a browser of this kind?  Edge lock held.
static bool
s_no_seat (bus_edge_t *self, bool staff)
{
    size_t seats = (size_t) self->config.max_clients;
    size_t staff_seats = (size_t) self->config.staff_seats;
    size_t guest_seats = staff_seats < seats ? seats - staff_seats : 0;
    return self->client_count >= seats
           || (!staff && self->guest_count >= guest_seats);
}

static bool
s_full (bus_edge_t *self, bool staff)
{
    pthread_mutex_lock (&self->lock);
    bool full = s_no_seat (self, staff);
    pthread_mutex_unlock (&self->lock);
    return full;
}

//  A full edge answers the upgrade with 503, before the handshake.
static int
s_refuse_full (bus_req_t *req, bus_edge_t *self, bool staff)
{
    char why[192];
    if (staff)
        snprintf (why, sizeof why,
                  "this edge serves %d browsers at once (edge/max_clients): "
                  "try again later or another edge",
                  self->config.max_clients);
    else
        snprintf (why, sizeof why,
                  "this edge's %d guest seats are taken (edge/max_clients "
                  "%d less edge/staff_seats %d, kept for the kitchen): "
                  "try again later or another edge",
                  self->config.max_clients - self->config.staff_seats,
                  self->config.max_clients, self->config.staff_seats);
    bus_req_send_error (req, 503, "edge_full", why, NULL);
    return 1;
}

//  Take a seat for a browser that has completed its handshake.  Checked
//  again here since browsers pass the check before the handshake side by
//  side.  Without a seat it gets close code 1013 (try again later) and
//  is hung up on, so the thread is free at once.
static bool
s_seat_take (bus_edge_t *self, bus_http_ws_t *ws, bool staff)
{
    pthread_mutex_lock (&self->lock);
    bool ok = !s_no_seat (self, staff);
    self->client_count += ok;
    self->guest_count += ok && !staff;
    pthread_mutex_unlock (&self->lock);
    if (!ok) {
        bus_http_ws_close (ws, S_CLOSE_FULL, "edge full: try again later");
        bus_http_ws_hang_up (ws);
    }
    return ok;
}

static void
s_seat_give (bus_edge_t *self, bool staff)
{
    pthread_mutex_lock (&self->lock);
    self->client_count--;
    self->guest_count -= !staff;
    pthread_mutex_unlock (&self->lock);
}

//  The last seq a resuming browser has, from after_seq=N or from
//  resume_from=N, its old name (which means the same: the last seq it
//  has, not the first it wants; a client that took it for the latter
//  lost an event per reconnect).  0 with *after set; -1 if neither is
//  there or the one there is not a number (such a client simply gets a
//  snapshot); -2 if both are there and differ.
static int
s_after_seq (bus_req_t *req, uint64_t *after)
{
    char value[32], old[32];
    int len = bus_req_query (req, "after_seq", value, sizeof value);
    int old_len = bus_req_query (req, "resume_from", old, sizeof old);
    if (len != -1 && old_len != -1
        && (len < 0 || old_len < 0 || !streq (value, old)))
        return -2;
    const char *text = len >= 0 ? value : old_len >= 0 ? old : NULL;
    return text && bus_req_parse_u64 (text, 0, UINT64_MAX, after) == 0 ? 0 : -1;
}

//  Refused browsers get the HTTP error before the handshake completes.
static int
s_ws_connect (bus_req_t *req, void *arg)
{
    bus_edge_t *self = (bus_edge_t *) arg;
    char table[BUS_TABLE_MAX], why[256];
    bool staff = false;
    bus_claims_t claims;
    int rc = s_ws_room (self, req, &claims, table, &staff);
    if (rc != 0) {
        const char *site =
            bus_auth_why (self->auth, rc, &claims, why, sizeof why);
        bus_auth_refuse (req, rc,
                         site ? site : "this token may not watch that table");
        return 1;
    }
    uint64_t after;
    if (s_after_seq (req, &after) == -2) {
        bus_req_send_error (req, 400, bus_errname (BUS_ERR_INVALID),
                            "after_seq and resume_from (its old name) "
                            "differ: send after_seq only",
                            "after_seq");
        return 1;
    }
    return s_full (self, staff) ? s_refuse_full (req, self, staff) : 0;
}

//  A feed's browsers are checked by the feed, which knows its clients'
//  way of sending a token (the seeds': in the path).
static int
s_feed_connect (bus_req_t *req, void *arg)
{
    bus_edge_t *self = (bus_edge_t *) arg;
    if (self->feed->connect && self->feed->connect (self->auth, req) != 0)
        return 1;
    //  The feed takes staff tokens only (its hook checks): staff seats
    return s_full (self, true) ? s_refuse_full (req, self, true) : 0;
}

//  after_seq (or resume_from) and, with epoch=E (the epoch of the
//  browser's last snapshot) too, E in *epoch, else 0 there.  0, or -1:
//  a snapshot.
static int
s_resume_from (bus_http_ws_t *ws, uint64_t *after, uint64_t *epoch)
{
    char value[32];
    *epoch = 0;
    bus_req_t *req = bus_http_ws_request (ws);
    if (s_after_seq (req, after) != 0)
        return -1;
    if (bus_req_query (req, "epoch", value, sizeof value) < 0)
        return 0;
    char *end;
    errno = 0;
    *epoch = strtoull (value, &end, 16);
    //  Not one of ours: the same as another history's
    return *value && !*end && !errno && *epoch ? 0 : -1;
}

static void
s_msg_destructor (void **item)
{
    s_msg_destroy ((s_msg_t **) item);
}

//  The event messages after seq `after` up to `upto`, from the writer's
//  log; NULL if the writer did not give them all.  Caller owns.
static zlistx_t *
s_fetch_log (bus_edge_t *self, const bus_epoch_t *writer, uint64_t after,
             uint64_t upto)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_msg_destructor);
    bus_event_t *event = malloc (sizeof *event);
    uint64_t next = after + 1;
    while (event && next <= upto) {
        uint64_t want = upto - next + 1;
        bus_sync_req_t req = { .op = BUS_SYNC_REPLAY,
                               .from = next,
                               .limit = want < S_REPLAY_PAGE ? (uint32_t) want
                                                             : S_REPLAY_PAGE };
        bus_sync_reply_t reply;
        zmsg_t *items = NULL;
        int rc = bus_reads_call (self->reads, &req, &reply, &items, writer);
        if (rc != 0 || reply.status != 0 || zmsg_size (items) == 0
            || !bus_epoch_same (&reply.writer, writer)) {
            //  pruned by retention: the browser gets a snapshot
            if (rc == 0 && reply.status == BUS_ERR_PRUNED)
                atomic_fetch_add (&self->pruned, 1);
            zmsg_destroy (&items);
            break;
        }
        for (zframe_t *f = zmsg_first (items); f; f = zmsg_next (items)) {
            if (bus_event_decode (zframe_data (f), zframe_size (f), event) != 0
                || event->seq != next)
                break;
            json_t *json = bus_json_event (event);
            const char *table;
            s_kind_t kind = s_room (event, &table);
            s_msg_t *msg = json ? s_msg_new (json, kind, table) : NULL;
            json_decref (json);
            if (!msg)
                break;
            zlistx_add_end (list, msg);
            next++;
        }
        zmsg_destroy (&items);
        if (next <= req.from)
            break;   //  no progress: the log does not have them
    }
    free (event);
    if (next <= upto)
        zlistx_destroy (&list);
    return list;
}

//  The log's events after `from` up to `upto` added at the end of
//  *older; if they cannot all be had, *older is destroyed (a snapshot).
static void
s_fetch_more (bus_edge_t *self, const bus_epoch_t *writer, zlistx_t **older,
              uint64_t from, uint64_t upto)
{
    zlistx_t *more = s_fetch_log (self, writer, from, upto);
    void *msg;
    while (more && (msg = zlistx_detach (more, NULL)))
        zlistx_add_end (*older, msg);
    if (!more)
        zlistx_destroy (older);
    zlistx_destroy (&more);
}

//  Did the ring let go of events after upto while the log was read (once
//  it is full, each event in pushes its oldest out), events a browser
//  resuming after `after` can still be given (its queue holds them all)?
//  Edge lock held.
static bool
s_ring_passed (bus_edge_t *self, const bus_epoch_t *writer, uint64_t after,
               uint64_t upto)
{
    return self->synced && bus_epoch_same (writer, &self->writer)
           && upto + 1 < s_ring_oldest (self)
           && self->seq - after < (uint64_t) self->config.client_queue;
}

//  First messages for a new browser: what it missed after `after` (from
//  older, fetched from the log, then the ring), or a snapshot.  Edge lock
//  held.  Not yet in sync: the snapshot reaches everyone once it is.
static void
s_welcome (bus_edge_t *self, s_client_t *client, bool resume, uint64_t after,
           zlistx_t *older, uint64_t upto)
{
    if (!self->synced)
        return;
    if (resume && older && upto + 1 >= s_ring_oldest (self)
        && upto <= self->seq) {
        for (s_msg_t *msg = (s_msg_t *) zlistx_first (older); msg;
             msg = (s_msg_t *) zlistx_next (older))
            s_deliver (self, client, msg);
        s_deliver_ring (self, client, upto);
        return;
    }
    if (resume && s_deliver_ring (self, client, after))
        return;
    s_deliver_snapshot (self, client);
}

//  A browser that resumes must not be handed a snapshot just because this
//  edge (re)started a moment ago: wait a little for it to get in sync.
//  Edge lock held.
static void
s_wait_synced (bus_edge_t *self)
{
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += S_RESUME_WAIT_MS / 1000;
    while (!self->synced
           && pthread_cond_timedwait (&self->synced_cond, &self->lock, &until)
                  == 0)
        ;
}

//  Takes a seat and gives the browser its client, or closes it and
//  returns NULL: the start both the rooms and the feed share.  The
//  feed's browsers (staff tokens only) may sit on staff seats.
static s_client_t *
s_seat_client (bus_edge_t *self, bus_http_ws_t *ws, const char *table,
               bool feed, bool staff)
{
    if (!s_seat_take (self, ws, staff))
        return NULL;
    s_client_t *client = s_client_new (self, ws, table);
    if (!client) {
        s_seat_give (self, staff);
        bus_http_ws_close (ws, S_CLOSE_ERROR,
                           "edge cannot serve this browser now: reconnect");
        return NULL;
    }
    client->feed = feed;
    client->guest = !staff;
    bus_http_ws_set_user (ws, client);
    return client;
}

static void
s_ws_ready (bus_http_ws_t *ws, void *arg)
{
    bus_edge_t *self = (bus_edge_t *) arg;
    bus_alloc_thread_cache (false);   //  the seat's life: see bus_alloc.h
    char table[BUS_TABLE_MAX] = "";
    bool staff = false;
    bus_claims_t claims;
    if (s_ws_room (self, bus_http_ws_request (ws), &claims, table, &staff)
        != 0) {
        //  It passed s_ws_connect a moment ago: it expired since
        bus_http_ws_close (ws, S_CLOSE_POLICY,
                           "token no longer valid: get a new one");
        return;
    }
    s_client_t *client = s_seat_client (self, ws, table, false, staff);
    if (!client)
        return;
    uint64_t after = 0, upto = 0, epoch = 0;
    bool resume = s_resume_from (ws, &after, &epoch) == 0;
    bool from_log = false;
    bus_epoch_t writer = { "", 0, 0, 0 };
    if (resume) {   //  older than the ring, yet few enough to queue?
        pthread_mutex_lock (&self->lock);
        s_wait_synced (self);
        upto = s_ring_oldest (self) - 1;
        //  Its seq is of another history (the writer was restored, or
        //  runs on new data, since its snapshot): what it has may not be
        //  the log's, and a snapshot is all it can have
        if (epoch && !s_lineage_has (self, epoch, after))
            resume = false;
        from_log = resume && self->synced && after < upto
                   && self->seq - after < (uint64_t) self->config.client_queue;
        writer = self->writer;
        pthread_mutex_unlock (&self->lock);
    }
    //  A trip to the writer, so outside the lock
    zlistx_t *older =
        from_log ? s_fetch_log (self, &writer, after, upto) : NULL;
    pthread_mutex_lock (&self->lock);
    //  Events came in meanwhile and the ring let go of those just after
    //  upto: without them the browser would get a snapshot.  They are
    //  fetched too, up to the state's seq this time, so that a whole
    //  ring's worth may come in during that fetch
    for (int i = 0; older && i < S_RESUME_REFETCH
                    && s_ring_passed (self, &writer, after, upto);
         i++) {
        uint64_t seq = self->seq;
        pthread_mutex_unlock (&self->lock);
        s_fetch_more (self, &writer, &older, upto, seq);
        upto = seq;
        pthread_mutex_lock (&self->lock);
    }
    //  ...checked again: the history may have changed meanwhile
    if (resume && epoch && !s_lineage_has (self, epoch, after))
        resume = false;
    //  The edge resynced to another history while the log was fetched
    if (older && !bus_epoch_same (&writer, &self->writer))
        zlistx_destroy (&older);
    s_welcome (self, client, resume, after, older, upto);
    client->next = self->clients;
    self->clients = client;
    pthread_mutex_unlock (&self->lock);
    zlistx_destroy (&older);
    bus_fanout_start (self->fanout, client->peer);
}

static void
s_ws_data (bus_http_ws_t *ws, int opcode, const char *data, size_t len,
           void *arg)
{
    s_client_t *client = (s_client_t *) bus_http_ws_user (ws);
    //  A feed's browsers are ignored, as the seeds ignored theirs
    if (opcode == BUS_WSFRAME_TEXT && client && !client->feed) {
        json_t *msg = json_pack ("{s:s, s:s}", "type", "error", "message",
                                 "this socket only sends: use the HTTP API "
                                 "to change orders");
        bus_edge_t *self = (bus_edge_t *) arg;
        pthread_mutex_lock (&self->lock);
        s_deliver_json (self, client, msg);
        pthread_mutex_unlock (&self->lock);
        json_decref (msg);
    }
}

static void
s_ws_close (bus_http_ws_t *ws, void *arg)
{
    bus_edge_t *self = (bus_edge_t *) arg;
    s_client_t *client = (s_client_t *) bus_http_ws_user (ws);
    if (!client)
        return;
    pthread_mutex_lock (&self->lock);
    for (s_client_t **p = &self->clients; *p; p = &(*p)->next)
        if (*p == client) {
            *p = client->next;
            self->client_count--;
            self->feed_count -= client->feed;
            self->guest_count -= client->guest;
            break;
        }
    pthread_mutex_unlock (&self->lock);
    s_client_destroy (self, &client);
}

//  ---------------------------------------------------------------------
//  The feed (bus_edge_feed_t): another protocol on the same seats

//  The welcome is read outside the lock; if events were applied meanwhile
//  that it may not hold, it is read again (three times at most).  The
//  browser then gets only the feed's messages with keys above the last
//  its welcome held.
static void
s_feed_ready (bus_http_ws_t *ws, void *arg)
{
    bus_edge_t *self = (bus_edge_t *) arg;
    bus_alloc_thread_cache (false);   //  the seat's life: see bus_alloc.h
    s_client_t *client = s_seat_client (self, ws, "", true, true);
    if (!client)
        return;
    for (int attempt = 0; attempt < 3; attempt++) {
        uint64_t seq = 0, key = 0;
        json_t *welcome = NULL;
        int rc = self->feed->welcome (self->sync, &welcome, &seq, &key);
        pthread_mutex_lock (&self->lock);
        if (rc != 0 || seq >= self->seq || attempt == 2) {
            client->after = key;
            s_deliver_json (self, client, welcome);
            json_decref (welcome);
            client->next = self->clients;
            self->clients = client;
            self->feed_count++;
            pthread_mutex_unlock (&self->lock);
            bus_fanout_start (self->fanout, client->peer);
            return;
        }
        pthread_mutex_unlock (&self->lock);
        json_decref (welcome);
    }
}

json_t *
bus_edge_snapshot (bus_edge_t *self, const char *table)
{
    pthread_mutex_lock (&self->lock);
    json_t *snapshot = s_snapshot_msg (self, table);
    pthread_mutex_unlock (&self->lock);
    return snapshot;
}

json_t *
bus_edge_health (bus_edge_t *self, bool *ok)
{
    pthread_mutex_lock (&self->lock);
    json_t *health = json_pack (
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "synced",
        (int) atomic_load (&self->synced), "seq", (json_int_t) self->seq,
        "clients", (json_int_t) self->client_count, "max_clients",
        (json_int_t) self->config.max_clients, "guests",
        (json_int_t) self->guest_count, "staff_seats",
        (json_int_t) self->config.staff_seats, "cut",
        (json_int_t) atomic_load (&self->cut), "hung_up",
        (json_int_t) bus_fanout_hung_up (self->fanout), "dropped",
        (json_int_t) atomic_load (&self->dropped), "replayed",
        (json_int_t) atomic_load (&self->replayed), "snapshots_instead",
        (json_int_t) atomic_load (&self->pruned));
    char epoch[24];
    snprintf (epoch, sizeof epoch, "%016" PRIx64, self->writer.epoch);
    //  The history the state came from (the link adds the one heard
    //  last), and why the last resync was, while it runs and after
    json_object_set_new (health, "state_identity",
                         json_string (self->writer.id));
    json_object_set_new (health, "state_epoch",
                         json_string (self->writer.epoch ? epoch : ""));
    json_object_set_new (health, "resync", json_string (self->resync));
    bus_reads_stats_t reads = bus_reads_stats (self->reads);
    json_object_set_new (health, "reads",
                         json_pack ("{s:i, s:I, s:I}", "replicas",
                                    reads.replicas, "replica",
                                    (json_int_t) reads.replica, "writer",
                                    (json_int_t) reads.writer));
    json_object_set_new (health, "epoch_change",
                         json_string (self->epoch_change));
    json_object_set_new (
        health, "epoch_changes",
        json_integer ((json_int_t) atomic_load (&self->epoch_changes)));
    json_object_set_new (
        health, "stale",
        json_integer ((json_int_t) atomic_load (&self->stale)));
    bool synced = self->synced;
    pthread_mutex_unlock (&self->lock);
    bool link_ok = bus_link_health (self->link, health);
    if (link_ok && !synced)   //  resync says why
        json_object_set_new (health, "reason",
                             json_string ("not in sync with the writer"));
    *ok = link_ok && synced;
    return health;
}

//  ---------------------------------------------------------------------
//  Construction

static int
s_subscribe (bus_edge_t *self, char *err, size_t err_cap)
{
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->sub) {
        snprintf (err, err_cap, "out of memory");
        return -1;
    }
    zsock_set_rcvhwm (self->sub, 100000);
    zsock_set_maxmsgsize (self->sub, BUS_FRAME_MAX + BUS_TOPIC_MAX);
    zsock_set_subscribe (self->sub, BUS_TOPIC_EVENTS);
    zsock_set_subscribe (self->sub, BUS_TOPIC_HEARTBEAT);
    self->sub_watch =
        bus_curve_watch_new (self->curve, self->sub, self->config.events);
    if (bus_curve_enabled (self->curve) && !self->sub_watch) {
        snprintf (err, err_cap,
                  "cannot watch the link to the writer's "
                  "events at %s (see the log)",
                  self->config.events);
        return -1;
    }
    if (bus_link_connect (self->sub, self->config.events, self->curve) == 0)
        return 0;
    snprintf (err, err_cap, "cannot connect to the writer's events at %s: %s",
              self->config.events, zmq_strerror (zmq_errno ()));
    return -1;
}

bus_edge_t *
bus_edge_new (const bus_config_t *config, bus_auth_t *auth,
              bus_http_ws_router_t http, const bus_edge_feed_t *feed, char *err,
              size_t err_cap)
{
    bus_edge_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->config.staff_seats = bus_config_staff_seats (config);   //  auto
    self->auth = auth;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->synced_cond, NULL);
    char name[BUS_NAME_MAX], host[64] = "localhost";
    gethostname (host, sizeof host - 1);
    snprintf (name, sizeof name, "%s:%d", host, config->http_port);
    self->orders = json_object ();
    self->carts = json_object ();
    self->snapshots = zhashx_new ();
    if (self->snapshots)
        zhashx_set_destructor (self->snapshots, s_snapshot_destroy);
    self->ring_cap = (size_t) config->ring;
    self->ring = calloc (self->ring_cap, sizeof *self->ring);
    self->curve = bus_curve_new (config, err, err_cap);
    if (!self->curve)
        goto fail;
    self->sync =
        bus_sync_new (config->sync, config->ack_timeout_ms, self->curve);
    self->link = bus_link_new (config, self->curve, "edge", name);
    self->reads = self->sync ? bus_reads_new (config, self->sync, self->curve,
                                              err, err_cap)
                             : NULL;
    if (self->sync && !self->reads)
        goto fail;
    self->fanout = bus_fanout_new ((size_t) config->senders,
                                   (size_t) config->client_queue);
    if (!self->orders || !self->carts || !self->snapshots || !self->ring
        || !self->sync || !self->link || !self->fanout) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    //  A deposed writer's answer, or a stale replica's, is not taken
    bus_sync_set_older (self->sync, bus_link_older_reply, self->link);
    bus_reads_set_older (self->reads, bus_link_older_reply, self->link);
    if (s_subscribe (self, err, err_cap) != 0)
        goto fail;
    self->actor = zactor_new (s_actor, self);
    if (!self->actor) {
        snprintf (err, err_cap, "cannot start the edge's thread");
        goto fail;
    }
    self->ws_hooks = (bus_http_ws_handler_t){ s_ws_connect, s_ws_ready,
                                              s_ws_data, s_ws_close, self };
    http.websocket (http.server, "/ws", &self->ws_hooks);
    self->feed = feed;
    if (self->feed) {
        self->feed_hooks =
            (bus_http_ws_handler_t){ s_feed_connect, s_feed_ready, s_ws_data,
                                     s_ws_close, self };
        http.websocket (http.server, self->feed->path, &self->feed_hooks);
        if (self->feed->other_path)
            http.websocket (http.server, self->feed->other_path,
                            &self->feed_hooks);
    }
    //  web/<page>.html; exact paths, so /kitchen.js reaches the static files
    http.page (http.server, "/kitchen", self->config.web_root);
    http.page (http.server, "/pad", self->config.web_root);
    http.page (http.server, "/dashboard", self->config.web_root);
    http.redirect (http.server, "/", "/kitchen");
    zsys_info ("edge %s: writer events %s, sync %s%s, pages from %s", name,
               config->events, config->sync,
               bus_curve_enabled (self->curve) ? " (CURVE)" : "",
               config->web_root);
    return self;
fail:
    bus_edge_destroy (&self);
    return NULL;
}

void
bus_edge_destroy (bus_edge_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_edge_t *self = *self_p;
    zactor_destroy (&self->actor);
    bus_link_destroy (&self->link);
    bus_curve_watch_destroy (&self->sub_watch);
    zsock_destroy (&self->sub);
    bus_reads_destroy (&self->reads);
    bus_sync_destroy (&self->sync);
    bus_curve_destroy (&self->curve);
    if (self->ring)
        s_ring_clear (self);
    free (self->ring);
    json_decref (self->orders);
    json_decref (self->carts);
    zhashx_destroy (&self->snapshots);
    //  The server is stopped first, and it closes every WebSocket
    while (self->clients) {
        s_client_t *client = self->clients;
        self->clients = client->next;
        s_client_destroy (self, &client);
    }
    bus_fanout_destroy (&self->fanout);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->synced_cond);
    free (self);
    *self_p = NULL;
}
