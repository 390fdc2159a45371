/*  bus_edge.c — events to browsers: Clone-pattern state, gap filling,
    WebSocket fan-out.

    One thread (the actor) reads the writer's PUB socket and applies each
    event; civetweb's threads run the WebSocket handlers.  Both take the
    edge's lock around the state and the client list.  A new browser is
    added to the list in the same critical section that queues its
    snapshot, so no event can fall between the two or be sent twice.

    Nothing is written to a browser under that lock.  Each browser has a
    bounded queue of shared, reference-counted messages and a thread of
    its own that writes them out, so a browser that stops reading costs
    only its own thread.  When its queue is full it is cut off: the queue
    is dropped; if its socket can still take data it gets a close frame
    (4001, "slow consumer: reconnect with resume_from"), and either way
    the edge hangs up (shutdown of its socket) so the connection and its
    threads go at once.  A write that fails or goes out in part is the
    end of the connection too: another frame after half a frame would be
    garbage to the browser.  Memory per browser is bounded by
    edge/client_queue messages.  */

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include "orderbus/bus_auth.h"
#include "orderbus/bus_cart.h"
#include "orderbus/bus_codec.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_http.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_sync.h"
#include "orderbus/bus_topic.h"

#define S_REPLAY_PAGE 1000       //  events per replay request
#define S_RESYNC_RETRY_MS 500    //  between snapshot attempts
#define S_SENDER_STACK (256 * 1024)
#define S_CLOSE_SLOW 4001        //  WebSocket close code: too slow, resync
#define S_RESUME_WAIT_MS 5000    //  a resuming browser waits this long for
                                 //  a (re)starting edge to get in sync

//  What a message is about, for the rooms: a pad sees its own table's
//  orders and cart, the kitchen every order but no cart, both the menu.
typedef enum {
    S_FOR_ONE = 1,   //  addressed to one browser (a snapshot, an error)
    S_ORDER,
    S_CART,
    S_MENU,
    S_SEED           //  a new order in the seed systems' shape (/ws/orders)
} s_kind_t;

//  A message for browsers, shared by every queue it is in
typedef struct {
    atomic_int refs;
    s_kind_t kind;
    char table[BUS_TABLE_MAX];   //  S_ORDER, S_CART: whose
    uint64_t order_id;           //  S_SEED: which
    size_t len;
    char text[];
} s_msg_t;

typedef struct s_client {
    struct mg_connection *conn;
    char table[BUS_TABLE_MAX];    //  a pad's table, "" for staff
    bool seed;                    //  a seed systems' client on /ws/orders
    uint64_t seed_after;          //  ...that has every order up to this id
    int fd;                       //  its socket, to hang up on it; -1 unknown
    pthread_t sender;             //  writes the queue out
    pthread_mutex_t lock;         //  guards the fields below
    pthread_cond_t cond;
    s_msg_t **queue;              //  ring of cap messages
    size_t cap, head, count;
    bool cut;                     //  too slow or broken: nothing more but
                                  //  maybe the close frame, then hang up
    bool stop;                    //  the connection is closing
    struct s_client *next;        //  in the edge's list, under its lock
} s_client_t;

struct _bus_edge_t {
    bus_config_t config;
    bus_auth_t *auth;             //  borrowed: who may watch what
    bus_sync_t *sync;             //  snapshot and replay queries
    bus_link_t *link;             //  is the writer there?
    zsock_t *sub;                 //  events + heartbeats, actor only
    zactor_t *actor;
    bus_event_t event;            //  actor's scratch
    atomic_uint_fast64_t cut, dropped, replayed;   //  counters
    pthread_mutex_t lock;         //  guards everything below
    pthread_cond_t synced_cond;   //  signalled when synced turns true
    bool synced;                  //  state is a snapshot + updates
    uint64_t seq;                 //  last event applied to the state
    json_t *orders;               //  open orders by id ("12": {...})
    json_t *carts;                //  carts by table
    s_client_t *clients;          //  connected browsers
    size_t client_count;
    size_t seed_count;            //  ...of which on /ws/orders
    s_msg_t **ring;               //  the last ring_cap event messages,
    size_t ring_cap;              //  for resume_from; contiguous up to seq
    size_t ring_len;
    size_t ring_next;             //  slot the next event goes into
};

//  ---------------------------------------------------------------------
//  Messages

//  New message holding the compact JSON of msg, about table, or NULL.
static s_msg_t *
s_msg_new (const json_t *msg, s_kind_t kind, const char *table)
{
    char *text = bus_json_dump (msg);
    size_t len = text ? strlen (text) : 0;
    s_msg_t *self = text ? malloc (sizeof *self + len + 1) : NULL;
    if (self) {
        atomic_init (&self->refs, 1);
        self->kind = kind;
        bus_strlcpy (self->table, table ? table : "", sizeof self->table);
        self->len = len;
        memcpy (self->text, text, len + 1);
    }
    free (text);
    return self;
}

static s_msg_t *
s_msg_ref (s_msg_t *self)
{
    atomic_fetch_add (&self->refs, 1);
    return self;
}

static void
s_msg_unref (s_msg_t **self_p)
{
    if (*self_p && atomic_fetch_sub (&(*self_p)->refs, 1) == 1)
        free (*self_p);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  A browser and its sender thread

//  Drop what is queued and send nothing more.  Client lock held.
static void
s_client_cut (s_client_t *client)
{
    for (; client->count; client->count--) {
        s_msg_unref (&client->queue[client->head]);
        client->head = (client->head + 1) % client->cap;
    }
    client->cut = true;
}

//  Queue msg for the client.  Never blocks: a full queue cuts the client.
//  Returns true if the client was cut by this call.
static bool
s_client_push (s_client_t *client, s_msg_t *msg)
{
    bool cut_now = false;
    pthread_mutex_lock (&client->lock);
    if (!client->cut && !client->stop) {
        if (client->count == client->cap) {
            s_client_cut (client);
            cut_now = true;
        }
        else
            client->queue[(client->head + client->count++) % client->cap] =
                s_msg_ref (msg);
        pthread_cond_signal (&client->cond);
    }
    pthread_mutex_unlock (&client->lock);
    return cut_now;
}

static void
s_send_close (struct mg_connection *conn, int code, const char *reason)
{
    char frame[128];
    frame[0] = (char) (code >> 8);
    frame[1] = (char) (code & 0xff);
    size_t len = strlen (reason) < sizeof frame - 2 ? strlen (reason)
                                                    : sizeof frame - 2;
    memcpy (frame + 2, reason, len);
    mg_websocket_write (conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, frame,
                        len + 2);
}

//  End the connection: civetweb's reader sees the end and closes it, and
//  a write blocked on it fails at once.
static void
s_hang_up (s_client_t *client)
{
    if (client->fd >= 0)
        shutdown (client->fd, SHUT_RDWR);
}

//  Can the client's socket take more data right now?
static bool
s_writable (const s_client_t *client)
{
    struct pollfd pfd = {client->fd, POLLOUT, 0};
    return client->fd >= 0 && poll (&pfd, 1, 0) == 1
           && (pfd.revents & POLLOUT);
}

//  Write one message; on failure the client is cut and hung up on.
static void
s_send_one (s_client_t *client, s_msg_t *msg)
{
    int rc = mg_websocket_write (client->conn, MG_WEBSOCKET_OPCODE_TEXT,
                                 msg->text, msg->len);
    if (rc >= (int) msg->len)
        return;
    pthread_mutex_lock (&client->lock);
    s_client_cut (client);
    pthread_mutex_unlock (&client->lock);
    s_hang_up (client);
}

static void *
s_sender (void *arg)
{
    s_client_t *client = (s_client_t *) arg;
    bool closed = false;
    pthread_mutex_lock (&client->lock);
    while (!client->stop) {
        if (client->count) {
            s_msg_t *msg = client->queue[client->head];
            client->head = (client->head + 1) % client->cap;
            client->count--;
            pthread_mutex_unlock (&client->lock);
            s_send_one (client, msg);
            s_msg_unref (&msg);
            pthread_mutex_lock (&client->lock);
        }
        else if (client->cut && !closed) {
            pthread_mutex_unlock (&client->lock);
            if (s_writable (client))
                s_send_close (client->conn, S_CLOSE_SLOW,
                              "slow consumer: reconnect with resume_from");
            s_hang_up (client);
            closed = true;
            pthread_mutex_lock (&client->lock);
        }
        else
            pthread_cond_wait (&client->cond, &client->lock);
    }
    pthread_mutex_unlock (&client->lock);
    return NULL;
}

static s_client_t *
s_client_new (struct mg_connection *conn, const char *table, size_t cap)
{
    s_client_t *client = calloc (1, sizeof *client);
    if (!client)
        return NULL;
    client->conn = conn;
    client->fd = bus_http_socket (conn);
    bus_strlcpy (client->table, table, sizeof client->table);
    client->cap = cap;
    client->queue = calloc (cap, sizeof *client->queue);
    pthread_mutex_init (&client->lock, NULL);
    pthread_cond_init (&client->cond, NULL);
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, S_SENDER_STACK);
    if (!client->queue
        || pthread_create (&client->sender, &attr, s_sender, client) != 0) {
        free (client->queue);
        free (client);
        client = NULL;
    }
    pthread_attr_destroy (&attr);
    return client;
}

//  Stop the sender (it finishes the write in progress) and free.
static void
s_client_destroy (s_client_t **client_p)
{
    s_client_t *client = *client_p;
    pthread_mutex_lock (&client->lock);
    client->stop = true;
    pthread_cond_signal (&client->cond);
    pthread_mutex_unlock (&client->lock);
    pthread_join (client->sender, NULL);
    for (; client->count; client->count--) {
        s_msg_unref (&client->queue[client->head]);
        client->head = (client->head + 1) % client->cap;
    }
    pthread_mutex_destroy (&client->lock);
    pthread_cond_destroy (&client->cond);
    free (client->queue);
    free (client);
    *client_p = NULL;
}

//  Is msg for client's room?
static bool
s_wants (const s_client_t *client, const s_msg_t *msg)
{
    if (client->seed)
        return msg->kind == S_FOR_ONE
               || (msg->kind == S_SEED && msg->order_id > client->seed_after);
    if (msg->kind == S_FOR_ONE || msg->kind == S_MENU)
        return true;
    if (msg->kind == S_SEED)
        return false;
    if (!*client->table)
        return msg->kind == S_ORDER;
    return streq (msg->table, client->table);
}

//  Queue msg for client if it is for its room, counting a cut.  Edge lock
//  held.
static void
s_deliver (bus_edge_t *self, s_client_t *client, s_msg_t *msg)
{
    if (s_wants (client, msg) && s_client_push (client, msg)) {
        //  Its sender may be stuck in a write that will not finish: when
        //  the socket takes nothing, hang up now rather than wait for it
        if (!s_writable (client))
            s_hang_up (client);
        atomic_fetch_add (&self->cut, 1);
        zsys_warning ("edge: a browser fell %zu messages behind at seq %" PRIu64
                      "; cut off to resync", client->cap, self->seq);
    }
}

//  Queue a one-off message (a snapshot) for client.  Edge lock held.
static void
s_deliver_json (bus_edge_t *self, s_client_t *client, const json_t *json)
{
    s_msg_t *msg = s_msg_new (json, S_FOR_ONE, NULL);
    if (msg)
        s_deliver (self, client, msg);
    s_msg_unref (&msg);
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
    json_object_foreach (self->orders, id, order)
        if (!*table || streq (json_string_value (json_object_get (order, "table")),
                              table))
            list[i++] = order;
    qsort (list, i, sizeof *list, s_by_id);
    json_t *orders = json_array ();
    for (size_t k = 0; k < i; k++)
        json_array_append (orders, list[k]);
    free (list);
    json_t *msg = json_pack ("{s:s, s:I, s:o}", "type", "snapshot", "seq",
                             (json_int_t) self->seq, "orders", orders);
    if (*table)
        json_object_set_new (msg, "cart", s_cart_json (self, table));
    return msg;
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
    s_msg_unref (&self->ring[self->ring_next]);
    self->ring[self->ring_next] = msg;
    self->ring_next = (self->ring_next + 1) % self->ring_cap;
    if (self->ring_len < self->ring_cap)
        self->ring_len++;
}

static void
s_ring_clear (bus_edge_t *self)
{
    for (size_t i = 0; i < self->ring_cap; i++)
        s_msg_unref (&self->ring[i]);
    self->ring_len = self->ring_next = 0;
}

//  What event is about, for the rooms, and whose table.
static s_kind_t
s_room (const bus_event_t *event, const char **table)
{
    *table = event->type == BUS_EVENT_CART ? event->cart.table
           : event->type == BUS_EVENT_MENU_ITEM ? NULL : event->order.table;
    return event->type == BUS_EVENT_CART ? S_CART
         : event->type == BUS_EVENT_MENU_ITEM ? S_MENU : S_ORDER;
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

//  A new order, for the seed systems' clients.  Edge lock held.
static void
s_apply_seed (bus_edge_t *self, const bus_order_t *order)
{
    json_t *json = json_pack ("{s:s, s:o}", "type", "new_order", "order",
                              bus_json_seed_order (order));
    s_msg_t *msg = json ? s_msg_new (json, S_SEED, order->table) : NULL;
    if (msg) {
        msg->order_id = order->id;
        for (s_client_t *c = self->clients; c; c = c->next)
            s_deliver (self, c, msg);
    }
    s_msg_unref (&msg);
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
    }
    else   //  out of memory: browsers would miss this event, so resync
        self->synced = false;
    if (self->seed_count && event->type == BUS_EVENT_ORDER_PLACED)
        s_apply_seed (self, &event->order);
    pthread_mutex_unlock (&self->lock);
    json_decref (json);
}

//  Replace the state with a fresh snapshot from the writer and send it to
//  every browser.  0, or -1 if the writer did not answer.
static int
s_resync (bus_edge_t *self)
{
    bus_sync_req_t req = {.op = BUS_SYNC_SNAPSHOT};
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    if (bus_sync_call (self->sync, &req, &reply, &items) != 0 || reply.status) {
        zmsg_destroy (&items);
        return -1;
    }
    json_t *orders = json_object (), *carts = json_object ();
    bus_order_t *order = &self->event.order;
    bus_cart_t *cart = &self->event.cart;
    uint64_t index = 0;
    for (zframe_t *f = zmsg_first (items); f; f = zmsg_next (items), index++)
        if (index < reply.next
            && bus_order_decode (zframe_data (f), zframe_size (f), order) == 0) {
            char id[24];
            snprintf (id, sizeof id, "%" PRIu64, order->id);
            json_object_set_new (orders, id, bus_json_order (order));
        }
        else if (index >= reply.next
                 && bus_cart_decode (zframe_data (f), zframe_size (f), cart) == 0)
            json_object_set_new (carts, cart->table, bus_json_cart (cart));
    zmsg_destroy (&items);
    pthread_mutex_lock (&self->lock);
    json_decref (self->orders);
    json_decref (self->carts);
    self->orders = orders;
    self->carts = carts;
    self->seq = reply.seq;
    self->synced = true;
    pthread_cond_broadcast (&self->synced_cond);
    s_ring_clear (self);
    for (s_client_t *c = self->clients; c; c = c->next) {
        json_t *msg = s_snapshot_msg (self, c->table);
        s_deliver_json (self, c, msg);
        json_decref (msg);
    }
    pthread_mutex_unlock (&self->lock);
    zsys_info ("edge: in sync at seq %" PRIu64 " with %zu open orders",
               reply.seq, json_object_size (orders));
    return 0;
}

//  Fill the gap up to seq `target` from the writer's log.  If it cannot
//  be filled, the state is marked out of sync so that a fresh snapshot
//  replaces it: never deliver past a hole.
static void
s_catch_up (bus_edge_t *self, uint64_t target)
{
    while (self->seq < target) {
        uint64_t need = target - self->seq;
        bus_sync_req_t req = {.op = BUS_SYNC_REPLAY, .from = self->seq + 1,
                              .limit = need < S_REPLAY_PAGE ? (uint32_t) need
                                                            : S_REPLAY_PAGE};
        bus_sync_reply_t reply;
        zmsg_t *items = NULL;
        bool ok = bus_sync_call (self->sync, &req, &reply, &items) == 0
                  && reply.status == 0 && zmsg_size (items) > 0;
        for (zframe_t *f = ok ? zmsg_first (items) : NULL; f && ok;
             f = zmsg_next (items)) {
            ok = bus_event_decode (zframe_data (f), zframe_size (f),
                                   &self->event) == 0
                 && self->event.seq == self->seq + 1;
            if (ok) {
                s_apply (self, &self->event);
                atomic_fetch_add (&self->replayed, 1);
            }
        }
        zmsg_destroy (&items);
        if (!ok) {
            zsys_warning ("edge: could not replay from seq %" PRIu64
                          "; resyncing", req.from);
            pthread_mutex_lock (&self->lock);
            self->synced = false;
            pthread_mutex_unlock (&self->lock);
            return;
        }
    }
}

static void
s_on_event (bus_edge_t *self, zframe_t *body)
{
    if (bus_event_decode (zframe_data (body), zframe_size (body), &self->event)
        != 0) {
        atomic_fetch_add (&self->dropped, 1);
        zsys_warning ("edge: dropped unreadable event (%zu bytes)",
                      zframe_size (body));
        return;
    }
    if (!self->synced || self->event.seq <= self->seq)
        return;   //  covered by the snapshot to come, or already applied
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
    bus_link_heard (self->link, hb.seq);
    //  Events after our last one were lost on the way: nothing else would
    //  tell us until the next order arrives.
    if (self->synced && hb.seq > self->seq)
        s_catch_up (self, hb.seq);
}

static void
s_on_message (bus_edge_t *self)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    char *topic = msg ? zmsg_popstr (msg) : NULL;
    zframe_t *body = msg ? zmsg_pop (msg) : NULL;
    if (topic && body && streq (topic, BUS_TOPIC_HEARTBEAT))
        s_on_heartbeat (self, body);
    else if (topic && body && strncmp (topic, BUS_TOPIC_EVENTS,
                                       strlen (BUS_TOPIC_EVENTS)) == 0)
        s_on_event (self, body);
    else {
        atomic_fetch_add (&self->dropped, 1);
        zsys_warning ("edge: dropped unreadable message");
    }
    free (topic);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
}

static void
s_actor (zsock_t *pipe, void *args)
{
    bus_edge_t *self = (bus_edge_t *) args;
    zpoller_t *poller = zpoller_new (pipe, self->sub, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    while (true) {
        //  Subscribed already, so events queue while the snapshot is taken
        if (!self->synced)
            s_resync (self);
        void *which = zpoller_wait (poller, S_RESYNC_RETRY_MS);
        if (which == pipe)
            break;   //  $TERM
        if (which == self->sub)
            s_on_message (self);
    }
    zpoller_destroy (&poller);
}

//  ---------------------------------------------------------------------
//  WebSocket handlers (civetweb threads)

//  The room a browser may watch: a pad token's table; for staff, all
//  tables, or one if it asks with ?table=.  0 with table set, or an error
//  code for bus_auth_refuse.
static int
s_ws_room (bus_edge_t *self, const struct mg_connection *conn, char *table)
{
    bus_claims_t claims;
    int rc = bus_auth_check (self->auth, conn, &claims);
    if (rc != 0)
        return rc;
    int len = bus_http_query ((struct mg_connection *) conn, "table", table,
                              BUS_TABLE_MAX);
    if (len == -2 || (len >= 0 && !bus_valid_table (table)))
        return BUS_ERR_FORBIDDEN;
    if (len < 0)
        bus_strlcpy (table, claims.table, BUS_TABLE_MAX);
    return bus_token_allows_table (&claims, table);
}

//  Refused browsers get the HTTP error before the handshake completes.
static int
s_ws_connect (const struct mg_connection *conn, void *cbdata)
{
    char table[BUS_TABLE_MAX];
    int rc = s_ws_room ((bus_edge_t *) cbdata, conn, table);
    if (rc != 0)
        bus_auth_refuse ((struct mg_connection *) conn, rc,
                         "this token may not watch that table");
    return rc != 0;
}

//  resume_from=N from the query string, or -1 if absent or not a number
//  (such a client simply gets a snapshot).
static int
s_resume_from (struct mg_connection *conn, uint64_t *after)
{
    char value[32];
    if (bus_http_query (conn, "resume_from", value, sizeof value) < 0)
        return -1;
    return bus_http_parse_u64 (value, 0, UINT64_MAX, after);
}

static void
s_msg_destructor (void **item)
{
    s_msg_unref ((s_msg_t **) item);
}

//  The event messages after seq `after` up to `upto`, from the writer's
//  log; NULL if the writer did not give them all.  Caller owns.
static zlistx_t *
s_fetch_log (bus_edge_t *self, uint64_t after, uint64_t upto)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_msg_destructor);
    bus_event_t *event = malloc (sizeof *event);
    uint64_t next = after + 1;
    while (event && next <= upto) {
        uint64_t want = upto - next + 1;
        bus_sync_req_t req = {.op = BUS_SYNC_REPLAY, .from = next,
                              .limit = want < S_REPLAY_PAGE ? (uint32_t) want
                                                            : S_REPLAY_PAGE};
        bus_sync_reply_t reply;
        zmsg_t *items = NULL;
        if (bus_sync_call (self->sync, &req, &reply, &items) != 0
            || reply.status != 0 || zmsg_size (items) == 0) {
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

//  First messages for a new browser: what it missed after `after` (from
//  older, fetched from the log, then the ring), or a snapshot.  Edge lock
//  held.  Not yet in sync: the snapshot reaches everyone once it is.
static void
s_welcome (bus_edge_t *self, s_client_t *client, bool resume, uint64_t after,
           zlistx_t *older, uint64_t upto)
{
    if (!self->synced)
        return;
    if (resume && older && upto + 1 >= s_ring_oldest (self) && upto <= self->seq) {
        for (s_msg_t *msg = (s_msg_t *) zlistx_first (older); msg;
             msg = (s_msg_t *) zlistx_next (older))
            s_deliver (self, client, msg);
        s_deliver_ring (self, client, upto);
        return;
    }
    if (resume && s_deliver_ring (self, client, after))
        return;
    json_t *snapshot = s_snapshot_msg (self, client->table);
    s_deliver_json (self, client, snapshot);
    json_decref (snapshot);
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
           && pthread_cond_timedwait (&self->synced_cond, &self->lock, &until) == 0)
        ;
}

static void
s_ws_ready (struct mg_connection *conn, void *cbdata)
{
    bus_edge_t *self = (bus_edge_t *) cbdata;
    char table[BUS_TABLE_MAX] = "";
    if (s_ws_room (self, conn, table) != 0)
        return;   //  refused in s_ws_connect: a token cannot change since
    s_client_t *client = s_client_new (conn, table,
                                       (size_t) self->config.client_queue);
    if (!client) {
        zsys_error ("edge: cannot serve a new browser: out of memory");
        return;
    }
    mg_set_user_connection_data (conn, client);
    uint64_t after = 0, upto = 0;
    bool resume = s_resume_from (conn, &after) == 0;
    bool from_log = false;
    if (resume) {   //  older than the ring, yet few enough to queue?
        pthread_mutex_lock (&self->lock);
        s_wait_synced (self);
        upto = s_ring_oldest (self) - 1;
        from_log = self->synced && after < upto
                   && self->seq - after < (uint64_t) self->config.client_queue;
        pthread_mutex_unlock (&self->lock);
    }
    //  A trip to the writer, so outside the lock
    zlistx_t *older = from_log ? s_fetch_log (self, after, upto) : NULL;
    pthread_mutex_lock (&self->lock);
    s_welcome (self, client, resume, after, older, upto);
    client->next = self->clients;
    self->clients = client;
    self->client_count++;
    pthread_mutex_unlock (&self->lock);
    zlistx_destroy (&older);
}

static int
s_ws_data (struct mg_connection *conn, int opcode, char *data, size_t len,
           void *cbdata)
{
    if ((opcode & 0xf) == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    s_client_t *client = (s_client_t *) mg_get_user_connection_data (conn);
    //  The seed systems read what their clients sent and ignored it
    if ((opcode & 0xf) == MG_WEBSOCKET_OPCODE_TEXT && client && !client->seed) {
        json_t *msg = json_pack ("{s:s, s:s}", "type", "error", "message",
                                 "this socket only sends: use the HTTP API "
                                 "to change orders");
        bus_edge_t *self = (bus_edge_t *) cbdata;
        pthread_mutex_lock (&self->lock);
        s_deliver_json (self, client, msg);
        pthread_mutex_unlock (&self->lock);
        json_decref (msg);
    }
    return 1;
}

static void
s_ws_close (const struct mg_connection *conn, void *cbdata)
{
    bus_edge_t *self = (bus_edge_t *) cbdata;
    s_client_t *client =
        (s_client_t *) mg_get_user_connection_data (conn);
    if (!client)
        return;
    pthread_mutex_lock (&self->lock);
    for (s_client_t **p = &self->clients; *p; p = &(*p)->next)
        if (*p == client) {
            *p = client->next;
            self->client_count--;
            self->seed_count -= client->seed;
            break;
        }
    pthread_mutex_unlock (&self->lock);
    s_client_destroy (&client);
}

//  ---------------------------------------------------------------------
//  /ws/orders, as the seed systems served it: {"type": "initial",
//  "orders": [every order, newest first]}, then {"type": "new_order"} for
//  each order placed, nothing else.  No token: those clients never had
//  one (docs/compat.md).

//  Every order, newest first, in the seed shape, and the newest's id.
typedef struct {
    json_t *orders;
    uint64_t top;
} s_seed_list_t;

static void
s_seed_add (const bus_order_t *order, void *arg)
{
    s_seed_list_t *list = (s_seed_list_t *) arg;
    list->top = order->id > list->top ? order->id : list->top;
    json_array_append_new (list->orders, bus_json_seed_order (order));
}

//  Every order, newest first, in the seed shape; *seq is the writer's
//  sequence the list is consistent with, *top the newest id.  NULL if the
//  writer did not answer.
static json_t *
s_seed_all (bus_edge_t *self, uint64_t *seq, uint64_t *top)
{
    s_seed_list_t list = {json_array (), 0};
    if (!list.orders || bus_sync_orders (self->sync, s_seed_add, &list, seq)) {
        json_decref (list.orders);
        return NULL;
    }
    *top = list.top;
    return list.orders;
}

//  The list is read outside the lock; if events were applied meanwhile
//  that it may not hold, read it again.  The client then gets only the
//  orders newer than the newest it was given.
static void
s_seed_ready (struct mg_connection *conn, void *cbdata)
{
    bus_edge_t *self = (bus_edge_t *) cbdata;
    s_client_t *client = s_client_new (conn, "", (size_t) self->config.client_queue);
    if (!client)
        return;
    client->seed = true;
    mg_set_user_connection_data (conn, client);
    for (int attempt = 0; attempt < 3; attempt++) {
        uint64_t seq = 0, top = 0;
        json_t *orders = s_seed_all (self, &seq, &top);
        pthread_mutex_lock (&self->lock);
        if (!orders || seq >= self->seq || attempt == 2) {
            client->seed_after = top;
            json_t *initial = json_pack ("{s:s, s:o}", "type", "initial", "orders",
                                         orders ? orders : json_array ());
            s_deliver_json (self, client, initial);
            json_decref (initial);
            client->next = self->clients;
            self->clients = client;
            self->client_count++;
            self->seed_count++;
            pthread_mutex_unlock (&self->lock);
            return;
        }
        pthread_mutex_unlock (&self->lock);
        json_decref (orders);
    }
}

//  ---------------------------------------------------------------------
//  Pages

//  /kitchen, /pad, /dashboard: web/<page>.html.  Registered for those
//  exact paths only, so the URI is always one of them.
static int
s_handle_page (struct mg_connection *conn, void *cbdata)
{
    bus_edge_t *self = (bus_edge_t *) cbdata;
    char path[BUS_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s%.20s.html", self->config.web_root,
              mg_get_request_info (conn)->local_uri);
    mg_send_file (conn, path);
    return 200;
}

static int
s_handle_root (struct mg_connection *conn, void *cbdata)
{
    return mg_send_http_redirect (conn, "/kitchen", 302);
}

json_t *
bus_edge_health (bus_edge_t *self, bool *ok)
{
    pthread_mutex_lock (&self->lock);
    json_t *health = json_pack (
        "{s:b, s:I, s:I, s:I, s:I, s:I}", "synced", self->synced, "seq",
        (json_int_t) self->seq, "clients", (json_int_t) self->client_count,
        "cut", (json_int_t) atomic_load (&self->cut), "dropped",
        (json_int_t) atomic_load (&self->dropped), "replayed",
        (json_int_t) atomic_load (&self->replayed));
    bool synced = self->synced;
    pthread_mutex_unlock (&self->lock);
    *ok = bus_link_health (self->link, health) && synced;
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
    if (zsock_connect (self->sub, "%s", self->config.events) == 0)
        return 0;
    snprintf (err, err_cap, "cannot connect to the writer's events at %s: %s",
              self->config.events, zmq_strerror (zmq_errno ()));
    return -1;
}

bus_edge_t *
bus_edge_new (const bus_config_t *config, bus_auth_t *auth,
              struct mg_context *http, char *err, size_t err_cap)
{
    bus_edge_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->auth = auth;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->synced_cond, NULL);
    char name[BUS_NAME_MAX], host[64] = "localhost";
    gethostname (host, sizeof host - 1);
    snprintf (name, sizeof name, "%s:%d", host, config->http_port);
    self->orders = json_object ();
    self->carts = json_object ();
    self->ring_cap = (size_t) config->ring;
    self->ring = calloc (self->ring_cap, sizeof *self->ring);
    self->sync = bus_sync_new (config->sync, config->ack_timeout_ms);
    self->link = bus_link_new (config, "edge", name);
    if (!self->orders || !self->carts || !self->ring || !self->sync
        || !self->link) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    if (s_subscribe (self, err, err_cap) != 0)
        goto fail;
    self->actor = zactor_new (s_actor, self);
    if (!self->actor) {
        snprintf (err, err_cap, "cannot start the edge's thread");
        goto fail;
    }
    mg_set_websocket_handler (http, "/ws$", s_ws_connect, s_ws_ready, s_ws_data,
                              s_ws_close, self);
    if (config->compat)
        mg_set_websocket_handler (http, "/ws/orders$", NULL, s_seed_ready,
                                  s_ws_data, s_ws_close, self);
    //  Anchored: civetweb also matches a handler's URI as a prefix, and
    //  /kitchen.js must reach the static files, not the page
    mg_set_request_handler (http, "/kitchen$", s_handle_page, self);
    mg_set_request_handler (http, "/pad$", s_handle_page, self);
    mg_set_request_handler (http, "/dashboard$", s_handle_page, self);
    mg_set_request_handler (http, "/$", s_handle_root, self);
    zsys_info ("edge %s: writer events %s, sync %s, pages from %s", name,
               config->events, config->sync, config->web_root);
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
    zsock_destroy (&self->sub);
    bus_sync_destroy (&self->sync);
    if (self->ring)
        s_ring_clear (self);
    free (self->ring);
    json_decref (self->orders);
    json_decref (self->carts);
    //  The server is stopped first, and it closes every WebSocket
    while (self->clients) {
        s_client_t *client = self->clients;
        self->clients = client->next;
        s_client_destroy (&client);
    }
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->synced_cond);
    free (self);
    *self_p = NULL;
}
