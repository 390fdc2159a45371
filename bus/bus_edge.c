/*  bus_edge.c — events to browsers: Clone-pattern state, gap filling,
    WebSocket fan-out.

    One thread (the actor) reads the writer's PUB socket and applies each
    event; civetweb's threads run the WebSocket handlers.  Both take the
    edge's lock around the state and the client list, and every message to
    a browser is written under it.  That is what makes "snapshot, then
    every later event" exact: a client is added to the list in the same
    critical section that sends its snapshot, so no event can fall
    between the two or be sent twice.  */

#include <pthread.h>
#include <stdatomic.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_http.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_sync.h"
#include "orderbus/bus_topic.h"
#include "orderbus/bus_writer.h"

#define S_REPLAY_PAGE 1000       //  events per replay request
#define S_RESYNC_RETRY_MS 500    //  between snapshot attempts

typedef struct s_client {
    struct mg_connection *conn;
    struct s_client *next;
} s_client_t;

struct _bus_edge_t {
    bus_config_t config;
    bus_sync_t *sync;             //  snapshot and replay queries
    zsock_t *sub;                 //  events + heartbeats, actor only
    zactor_t *actor;
    bus_event_t event;            //  actor's scratch
    atomic_int_fast64_t beat_ms;  //  monotonic time of the last heartbeat
    atomic_uint_fast64_t writer_seq;
    pthread_mutex_t lock;         //  guards everything below
    bool synced;                  //  state is a snapshot + updates
    uint64_t seq;                 //  last event applied to the state
    json_t *orders;               //  open orders by id ("12": {...})
    s_client_t *clients;          //  connected browsers
    size_t client_count;
    char **ring;                  //  the last ring_cap event messages sent,
    size_t ring_cap;              //  for resume_from; contiguous up to seq
    size_t ring_len;
    size_t ring_next;             //  slot the next event goes into
};

//  ---------------------------------------------------------------------
//  Sending to browsers (edge lock held)

static void
s_send (struct mg_connection *conn, const char *text, size_t len)
{
    mg_websocket_write (conn, MG_WEBSOCKET_OPCODE_TEXT, text, len);
}

static void
s_send_json (struct mg_connection *conn, json_t *msg)
{
    char *text = bus_json_dump (msg);
    if (text)
        s_send (conn, text, strlen (text));
    free (text);
}

static int
s_by_id (const void *a, const void *b)
{
    json_int_t x = json_integer_value (json_object_get (*(json_t **) a, "id"));
    json_int_t y = json_integer_value (json_object_get (*(json_t **) b, "id"));
    return (x > y) - (x < y);
}

//  New snapshot message: the open orders, oldest first, and their seq.
static json_t *
s_snapshot_msg (bus_edge_t *self)
{
    size_t n = json_object_size (self->orders);
    json_t **list = calloc (n ? n : 1, sizeof *list);
    const char *id;
    json_t *order;
    size_t i = 0;
    json_object_foreach (self->orders, id, order)
        list[i++] = order;
    qsort (list, n, sizeof *list, s_by_id);
    json_t *orders = json_array ();
    for (i = 0; i < n; i++)
        json_array_append (orders, list[i]);
    free (list);
    return json_pack ("{s:s, s:I, s:o}", "type", "snapshot", "seq",
                      (json_int_t) self->seq, "orders", orders);
}

//  Send the events after seq `after` from the ring, if it still holds
//  them all.  true if it did.
static bool
s_send_resume (bus_edge_t *self, struct mg_connection *conn, uint64_t after)
{
    uint64_t oldest = self->seq - self->ring_len + 1;
    if (after > self->seq || after + 1 < oldest)
        return false;
    size_t skip = (size_t) (after + 1 - oldest);
    size_t first = (self->ring_next + self->ring_cap - self->ring_len) % self->ring_cap;
    for (size_t i = skip; i < self->ring_len; i++) {
        const char *text = self->ring[(first + i) % self->ring_cap];
        s_send (conn, text, strlen (text));
    }
    return true;
}

//  ---------------------------------------------------------------------
//  Applying events (actor thread)

//  Keep text (taken) as the newest event message.
static void
s_ring_push (bus_edge_t *self, char *text)
{
    free (self->ring[self->ring_next]);
    self->ring[self->ring_next] = text;
    self->ring_next = (self->ring_next + 1) % self->ring_cap;
    if (self->ring_len < self->ring_cap)
        self->ring_len++;
}

static void
s_ring_clear (bus_edge_t *self)
{
    for (size_t i = 0; i < self->ring_cap; i++) {
        free (self->ring[i]);
        self->ring[i] = NULL;
    }
    self->ring_len = self->ring_next = 0;
}

//  Apply the next event in sequence and send it to every browser.
static void
s_apply (bus_edge_t *self, const bus_event_t *event)
{
    char id[24];
    snprintf (id, sizeof id, "%" PRIu64, event->order.id);
    json_t *msg = bus_json_event (event);
    char *text = bus_json_dump (msg);
    pthread_mutex_lock (&self->lock);
    if (bus_status_is_open (event->order.status))
        json_object_set (self->orders, id, json_object_get (msg, "order"));
    else
        json_object_del (self->orders, id);
    self->seq = event->seq;
    if (text) {
        size_t len = strlen (text);
        for (s_client_t *c = self->clients; c; c = c->next)
            s_send (c->conn, text, len);
        s_ring_push (self, text);
    }
    pthread_mutex_unlock (&self->lock);
    json_decref (msg);
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
    json_t *orders = json_object ();
    bus_order_t *order = &self->event.order;
    for (zframe_t *f = zmsg_first (items); f; f = zmsg_next (items))
        if (bus_order_decode (zframe_data (f), zframe_size (f), order) == 0) {
            char id[24];
            snprintf (id, sizeof id, "%" PRIu64, order->id);
            json_object_set_new (orders, id, bus_json_order (order));
        }
    zmsg_destroy (&items);
    pthread_mutex_lock (&self->lock);
    json_decref (self->orders);
    self->orders = orders;
    self->seq = reply.seq;
    self->synced = true;
    s_ring_clear (self);
    json_t *msg = s_snapshot_msg (self);
    for (s_client_t *c = self->clients; c; c = c->next)
        s_send_json (c->conn, msg);
    json_decref (msg);
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
            if (ok)
                s_apply (self, &self->event);
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
    atomic_store (&self->beat_ms, zclock_mono ());
    atomic_store (&self->writer_seq, hb.seq);
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
    else
        zsys_warning ("edge: dropped unreadable message");
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

static int
s_ws_connect (const struct mg_connection *conn, void *cbdata)
{
    return 0;   //  anyone may watch; roles come with tokens (docs/api.md)
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
s_ws_ready (struct mg_connection *conn, void *cbdata)
{
    bus_edge_t *self = (bus_edge_t *) cbdata;
    s_client_t *client = calloc (1, sizeof *client);
    if (!client)
        return;
    client->conn = conn;
    mg_set_user_connection_data (conn, client);
    uint64_t after;
    bool resume = s_resume_from (conn, &after) == 0;
    pthread_mutex_lock (&self->lock);
    //  Not yet in sync: the snapshot is sent to everyone once it is
    if (self->synced && !(resume && s_send_resume (self, conn, after))) {
        json_t *msg = s_snapshot_msg (self);
        s_send_json (conn, msg);
        json_decref (msg);
    }
    client->next = self->clients;
    self->clients = client;
    self->client_count++;
    pthread_mutex_unlock (&self->lock);
}

static int
s_ws_data (struct mg_connection *conn, int opcode, char *data, size_t len,
           void *cbdata)
{
    if ((opcode & 0xf) == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    if ((opcode & 0xf) == MG_WEBSOCKET_OPCODE_TEXT) {
        json_t *msg = json_pack ("{s:s, s:s}", "type", "error", "message",
                                 "this socket only sends: use the HTTP API "
                                 "to change orders");
        bus_edge_t *self = (bus_edge_t *) cbdata;
        pthread_mutex_lock (&self->lock);   //  writes to a browser are
        s_send_json (conn, msg);             //  serialized by the lock
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
            break;
        }
    pthread_mutex_unlock (&self->lock);
    free (client);
}

//  ---------------------------------------------------------------------
//  Pages

static int
s_handle_kitchen (struct mg_connection *conn, void *cbdata)
{
    bus_edge_t *self = (bus_edge_t *) cbdata;
    char path[BUS_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/kitchen.html", self->config.web_root);
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
    int64_t age;
    bool alive = bus_writer_heard (atomic_load (&self->beat_ms),
                                   self->config.heartbeat_ms, &age);
    pthread_mutex_lock (&self->lock);
    *ok = alive && self->synced;
    json_t *health = json_pack (
        "{s:b, s:I, s:I, s:b, s:I, s:I}", "synced", self->synced, "seq",
        (json_int_t) self->seq, "clients", (json_int_t) self->client_count,
        "writer_reachable", alive, "writer_heartbeat_age_ms", (json_int_t) age,
        "writer_seq", (json_int_t) atomic_load (&self->writer_seq));
    pthread_mutex_unlock (&self->lock);
    return health;
}

//  ---------------------------------------------------------------------
//  Construction

bus_edge_t *
bus_edge_new (const bus_config_t *config, struct mg_context *http, char *err,
              size_t err_cap)
{
    bus_edge_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    pthread_mutex_init (&self->lock, NULL);
    self->orders = json_object ();
    self->ring_cap = (size_t) config->ring;
    self->ring = calloc (self->ring_cap, sizeof *self->ring);
    self->sync = bus_sync_new (config->sync, config->ack_timeout_ms);
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->orders || !self->ring || !self->sync || !self->sub) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    zsock_set_rcvhwm (self->sub, 100000);
    zsock_set_maxmsgsize (self->sub, BUS_FRAME_MAX + BUS_TOPIC_MAX);
    zsock_set_subscribe (self->sub, BUS_TOPIC_EVENTS);
    zsock_set_subscribe (self->sub, BUS_TOPIC_HEARTBEAT);
    if (zsock_connect (self->sub, "%s", config->events) != 0) {
        snprintf (err, err_cap, "cannot connect to the writer's events at %s: %s",
                  config->events, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->actor = zactor_new (s_actor, self);
    if (!self->actor) {
        snprintf (err, err_cap, "cannot start the edge's thread");
        goto fail;
    }
    mg_set_websocket_handler (http, "/ws", s_ws_connect, s_ws_ready, s_ws_data,
                              s_ws_close, self);
    mg_set_request_handler (http, "/kitchen", s_handle_kitchen, self);
    mg_set_request_handler (http, "/", s_handle_root, self);
    zsys_info ("edge: writer events %s, sync %s, pages from %s", config->events,
               config->sync, config->web_root);
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
    zsock_destroy (&self->sub);
    bus_sync_destroy (&self->sync);
    if (self->ring)
        s_ring_clear (self);
    free (self->ring);
    json_decref (self->orders);
    //  The server is stopped before us, so no client is left but memory
    s_client_t *client = self->clients;
    while (client) {
        s_client_t *next = client->next;
        free (client);
        client = next;
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}
