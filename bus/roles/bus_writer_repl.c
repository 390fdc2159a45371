/*  bus_writer_repl.c — the writer's side of replication (bus_writer_repl.h,
    docs/replication.md): the replicate ROUTER, hellos, confirmations, and
    sending each replica the log it lacks.

    Threads: the intake thread owns all of it; the summary (for stats on
    the sync thread) is a JSON text under a mutex, and the counters are
    atomics.

    Why the changes are read back from the log rather than kept from the
    batch in memory: one code path serves catch-up and live, the bytes
    sent are exactly the bytes logged (the byte-for-byte promise needs no
    second source), and the entries just committed are in LMDB's page
    cache, so the read is a memory walk in one read transaction.  */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store_repl.h"
#include "bus_writer_repl.h"

//  Unconfirmed changes a replica may have on the wire at once: enough for
//  a few batches in flight (a round trip each), bounded so a replica
//  that stops reading does not fill the writer's memory
#define S_WINDOW       (4 * BUS_REPL_BATCH_MAX)
#define S_REPLICAS_MAX 16   //  attached at once
#define S_LOG_FIRST    10   //  refusals logged one by one, then 1/1000

typedef struct {
    zframe_t *id;                      //  its routing id on the ROUTER
    char name[BUS_NAME_MAX];           //  its hello's name (its certificate's)
    char key[BUS_CURVE_KEY_LEN + 1];   //  its hello's key (CURVE; "" off)
    uint64_t sent;                     //  changes sent up to this seq
    uint64_t confirmed;                //  ...confirmed durable up to this seq
    uint64_t menu_sent;                //  menu version sent
    int64_t heard_ms;                  //  zclock_mono of its last message
    int64_t sent_ms;                   //  ...of the last batch sent to it
    int64_t behind_ms;                 //  zclock_time of the oldest unconfirmed
                                       //  send, 0 when caught up
} s_replica_t;

struct _bus_writer_repl_t {
    const bus_config_t *config;
    bus_store_t *store;
    bus_curve_t *curve;
    const bus_epoch_t *epoch;
    zsock_t *sock;
    zlistx_t *replicas;   //  s_replica_t, attach order
    atomic_uint_fast64_t dropped, refused;
    pthread_mutex_t lock;   //  guards summary
    char *summary;          //  JSON array text, NULL before the first
};

static void
s_replica_destroy (void **item)
{
    s_replica_t *replica = (s_replica_t *) *item;
    zframe_destroy (&replica->id);
    free (replica);
    *item = NULL;
}

bus_writer_repl_t *
bus_writer_repl_new (const bus_config_t *config, bus_store_t *store,
                     bus_curve_t *curve, const bus_epoch_t *epoch, char *err,
                     size_t err_cap)
{
    bus_writer_repl_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = config;
    self->store = store;
    self->curve = curve;
    self->epoch = epoch;
    pthread_mutex_init (&self->lock, NULL);
    self->replicas = zlistx_new ();
    self->sock = zsock_new (ZMQ_ROUTER);
    if (!self->replicas || !self->sock) {
        snprintf (err, err_cap, "out of memory");
        bus_writer_repl_destroy (&self);
        return NULL;
    }
    zlistx_set_destructor (self->replicas, s_replica_destroy);
    zsock_set_maxmsgsize (self->sock, BUS_FRAME_MAX);
    zsock_set_sndhwm (self->sock, 2 * S_WINDOW);
    zsock_set_router_mandatory (self->sock, 1);   //  a gone peer: an error
    //  A replica's routing id is its name and its process's nonce: the
    //  same replica on a new connection (its old one not yet seen gone)
    //  takes the id over, rather than be refused as its own twin
    zsock_set_router_handover (self->sock, 1);
    //  ...and a full one too, at once: the intake thread never waits for
    //  a replica (what was not sent is sent again from `sent` later)
    zsock_set_sndtimeo (self->sock, 0);
    if (bus_curve_server (curve, self->sock, "replicate") != 0
        || zsock_bind (self->sock, "%s", config->replicate) < 0) {
        snprintf (err, err_cap, "cannot bind writer/replicate %s: %s",
                  config->replicate, zmq_strerror (zmq_errno ()));
        bus_writer_repl_destroy (&self);
        return NULL;
    }
    return self;
}

void
bus_writer_repl_destroy (bus_writer_repl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_writer_repl_t *self = *self_p;
    zsock_destroy (&self->sock);
    zlistx_destroy (&self->replicas);
    pthread_mutex_destroy (&self->lock);
    free (self->summary);
    free (self);
    *self_p = NULL;
}

zsock_t *
bus_writer_repl_socket (bus_writer_repl_t *self)
{
    return self->sock;
}

//  ---------------------------------------------------------------------
//  Sending

//  An ERROR to peer id: status and words, no changes.
static void
s_send_error (bus_writer_repl_t *self, zframe_t *id, int status,
              const char *why)
{
    bus_repl_batch_t head = { .status = status,
                              .writer = *self->epoch,
                              .last = bus_store_last_seq (self->store),
                              .ts_ms = zclock_time () };
    bus_strlcpy (head.error, why, sizeof head.error);
    zmsg_t *msg = zmsg_new ();
    zframe_t *body = bus_repl_batch_encode (&head);
    zmsg_append (msg, &(zframe_t *){ zframe_dup (id) });
    if (body)
        zmsg_append (msg, &body);
    zmsg_send (&msg, self->sock);
    zmsg_destroy (&msg);   //  not sent (a peer gone, or full): dropped
}

typedef struct {
    zmsg_t *msg;
    uint32_t count;
    uint64_t first, last;
} s_fill_t;

static int
s_add_change (const bus_store_change_t *change, void *arg)
{
    s_fill_t *fill = (s_fill_t *) arg;
    bus_repl_key_t key = { "", change->fingerprint };
    bus_strlcpy (key.key, change->key, sizeof key.key);
    zframe_t *frame = bus_repl_key_encode (&key);
    if (!frame)
        return -1;
    if (fill->count == 0)
        fill->first = change->seq;
    fill->last = change->seq;
    fill->count++;
    zmsg_addmem (fill->msg, change->event, change->size);
    zmsg_append (fill->msg, &frame);
    return 0;
}

//  Send replica the next changes it lacks up to seq upto (at most a
//  batch, within its window), the menu if its version moved and is at
//  most menu_upto, or an empty batch (a heartbeat) if force.  True if it
//  is still behind with room left.
static bool
s_send_batch (bus_writer_repl_t *self, s_replica_t *replica, bool force,
              uint64_t upto, uint64_t menu_upto)
{
    uint64_t last = bus_store_last_seq (self->store);
    if (last > upto)
        last = upto;
    uint64_t room = S_WINDOW - (replica->sent - replica->confirmed);
    if (replica->sent - replica->confirmed >= S_WINDOW)
        room = 0;
    if (replica->sent < last && last - replica->sent < room)
        room = last - replica->sent;
    uint32_t limit =
        room < BUS_REPL_BATCH_MAX ? (uint32_t) room : BUS_REPL_BATCH_MAX;
    if ((replica->sent >= last || limit == 0) && !force)
        return false;
    s_fill_t fill = { zmsg_new (), 0, 0, 0 };
    uint64_t menu_version = 0;
    //  A heartbeat reads nothing, from past the store's own last seq: not
    //  from past `upto`, which may be at or below the pruned seq (a lone
    //  writer's start hold releases nothing, 0, until its synchronous
    //  replica confirms), and the store answers a read from a pruned seq
    //  BUS_ERR_PRUNED, which stops the replica for good
    int rc = limit && replica->sent < last
                 ? bus_store_changes (self->store, replica->sent + 1, limit,
                                      s_add_change, &fill, &last, &menu_version)
                 : bus_store_changes (
                     self->store, bus_store_last_seq (self->store) + 1, 0,
                     s_add_change, &fill, &last, &menu_version);
    if (last > upto)   //  what it was sent up to, not the store's last
        last = upto;
    if (rc != 0) {
        zmsg_destroy (&fill.msg);
        char why[BUS_ERROR_MAX];
        snprintf (why, sizeof why,
                  "cannot read the log from seq %" PRIu64 ": %s",
                  replica->sent + 1, bus_strerror (rc));
        zsys_error ("writer: replica %s: %s", replica->name, why);
        s_send_error (self, replica->id, rc, why);
        replica->sent = UINT64_MAX;   //  detached below
        return false;
    }
    char *menu = NULL;
    size_t menu_len = 0;
    uint64_t version = 0;
    //  The store holds the newest menu only: one not released yet (an 86
    //  in a batch the synchronous replica has not confirmed) waits until
    //  it is
    if (menu_version > replica->menu_sent && menu_version <= menu_upto
        && bus_store_menu_get (self->store, &menu, &menu_len, &version) != 0)
        menu = NULL;
    bus_repl_batch_t head = { .writer = *self->epoch,
                              .first =
                                  fill.count ? fill.first : replica->sent + 1,
                              .count = fill.count,
                              .last = last,
                              .ts_ms = zclock_time (),
                              .menu_version = menu ? version : 0 };
    zframe_t *body = bus_repl_batch_encode (&head);
    if (menu)
        zmsg_addmem (fill.msg, menu, menu_len);
    free (menu);
    if (!body) {
        zmsg_destroy (&fill.msg);
        return false;
    }
    zmsg_prepend (fill.msg, &body);
    zmsg_prepend (fill.msg, &(zframe_t *){ zframe_dup (replica->id) });
    if (zmsg_send (&fill.msg, self->sock) != 0) {
        zmsg_destroy (&fill.msg);   //  gone, or full: sent again later
        return false;
    }
    if (head.menu_version)   //  only once it went: a full queue retries
        replica->menu_sent = head.menu_version;
    if (fill.count) {
        if (replica->sent == replica->confirmed)
            replica->behind_ms = zclock_time ();
        replica->sent = fill.last;
    }
    replica->sent_ms = zclock_mono ();
    return replica->sent < last
           && replica->sent - replica->confirmed < S_WINDOW;
}

//  ---------------------------------------------------------------------
//  Receiving

static s_replica_t *
s_find (bus_writer_repl_t *self, zframe_t *id)
{
    for (s_replica_t *replica = zlistx_first (self->replicas); replica;
         replica = zlistx_next (self->replicas))
        if (zframe_eq (replica->id, id))
            return replica;
    return NULL;
}

static void
s_refuse (bus_writer_repl_t *self, zframe_t *id, int status, const char *name,
          const char *why)
{
    uint64_t n = atomic_fetch_add (&self->refused, 1) + 1;
    if (n <= S_LOG_FIRST || n % 1000 == 0)
        zsys_warning ("writer: refused replica '%s': %s [%" PRIu64
                      " refused so far]",
                      name, why, n);
    s_send_error (self, id, status, why);
}

static void
s_drop (bus_writer_repl_t *self, const char *why, size_t size)
{
    uint64_t n = atomic_fetch_add (&self->dropped, 1) + 1;
    if (n <= S_LOG_FIRST || n % 1000 == 0)
        zsys_warning ("writer: dropped replicate frame (%zu bytes): %s "
                      "[%" PRIu64 " dropped so far]",
                      size, why, n);
}

//  Whether the replica's log may continue from up->seq: the same store,
//  not ahead, the same entry at that seq, not pruned past it.  0, or a
//  bus_err_t with why set.
static int
s_hello_check (bus_writer_repl_t *self, const bus_repl_up_t *up, char *why,
               size_t why_cap)
{
    uint64_t last = bus_store_last_seq (self->store), sum = 0;
    if (up->seq > 0 && !streq (up->store, self->epoch->id)) {
        snprintf (why, why_cap,
                  "data dir holds store %s, writer is %s; move it aside",
                  *up->store ? up->store : "(none)", self->epoch->id);
        return BUS_ERR_CONFLICT;
    }
    if (up->seq > last) {
        snprintf (why, why_cap,
                  "its log is ahead of the writer's (seq %" PRIu64 " > %" PRIu64
                  "): it followed another history; move its "
                  "data dir aside",
                  up->seq, last);
        return BUS_ERR_CONFLICT;
    }
    if (up->seq + 1 < bus_store_first_seq (self->store)) {
        snprintf (why, why_cap,
                  "the writer's log starts at seq %" PRIu64
                  " (retention), the replica's ends at %" PRIu64
                  ": copy the writer's data dir to start it",
                  bus_store_first_seq (self->store), up->seq);
        return BUS_ERR_PRUNED;
    }
    int rc = up->seq >= bus_store_first_seq (self->store)
                 ? bus_store_log_sum (self->store, up->seq, &sum)
                 : 0;
    if (rc == 0 && up->seq >= bus_store_first_seq (self->store)
        && sum != up->sum) {
        snprintf (why, why_cap,
                  "its log diverged from the writer's: entry %" PRIu64
                  " differs; move its data dir aside",
                  up->seq);
        return BUS_ERR_CONFLICT;
    }
    if (rc != 0)
        snprintf (why, why_cap, "cannot read entry %" PRIu64 ": %s", up->seq,
                  bus_strerror (rc));
    return rc;
}

static void
s_hello (bus_writer_repl_t *self, zframe_t *id, const bus_repl_up_t *up,
         const bus_curve_peer_t *peer)
{
    char why[BUS_ERROR_MAX];
    //  A writer's key is in the allow-list only on a group member (the
    //  other members: bus_curve_allow_read), and replicating as a
    //  standby is all it may do here
    if (bus_curve_enabled (self->curve)
        && (!peer
            || (peer->role != BUS_CURVE_REPLICA
                && peer->role != BUS_CURVE_WRITER))) {
        snprintf (why, sizeof why,
                  "the %s key of '%s' may not replicate: only replica "
                  "certificates (and a group's other members')",
                  peer ? bus_curve_role_name (peer->role) : "unknown",
                  peer ? peer->name : "?");
        s_refuse (self, id, BUS_ERR_FORBIDDEN, up->name, why);
        return;
    }
    if (peer && !streq (peer->name, up->name)) {
        snprintf (why, sizeof why, "its certificate is replica '%s''s",
                  peer->name);
        s_refuse (self, id, BUS_ERR_FORBIDDEN, up->name, why);
        return;
    }
    int rc = s_hello_check (self, up, why, sizeof why);
    if (rc != 0) {
        s_refuse (self, id, rc, up->name, why);
        return;
    }
    //  One entry per name: a replica that comes back (a new connection
    //  after its link timeout, or at once under its own routing id: see
    //  bus_replica.c's s_routing_id) replaces its old one; but a name heard
    //  from another routing id within the link timeout is two replicas
    //  under one name, and confirmations must not follow whichever said
    //  hello last: refused, transient (the replica tries again later)
    int64_t now = zclock_mono ();
    for (s_replica_t *old = zlistx_first (self->replicas); old;
         old = zlistx_next (self->replicas))
        if (streq (old->name, up->name) && !zframe_eq (old->id, id)
            && now - old->heard_ms <= self->config->link_timeout_ms) {
            snprintf (why, sizeof why,
                      "replica %s is attached from another connection "
                      "(heard %" PRId64 " ms ago): two replicas under one "
                      "name?",
                      up->name, now - old->heard_ms);
            s_refuse (self, id, BUS_ERR_UNAVAILABLE, up->name, why);
            return;
        }
    //  ...and every entry of this name or this connection goes
    s_replica_t *old = zlistx_first (self->replicas);
    while (old)
        if (streq (old->name, up->name) || zframe_eq (old->id, id)) {
            zlistx_delete (self->replicas, zlistx_cursor (self->replicas));
            old = zlistx_first (self->replicas);
        } else
            old = zlistx_next (self->replicas);
    if (zlistx_size (self->replicas) >= S_REPLICAS_MAX) {
        s_refuse (self, id, BUS_ERR_OVERLOADED, up->name,
                  "too many replicas attached");
        return;
    }
    s_replica_t *replica = calloc (1, sizeof *replica);
    if (!replica)
        return;
    replica->id = zframe_dup (id);
    bus_strlcpy (replica->name, up->name, sizeof replica->name);
    if (peer)
        bus_strlcpy (replica->key, peer->key, sizeof replica->key);
    replica->sent = replica->confirmed = up->seq;
    replica->heard_ms = zclock_mono ();
    zlistx_add_end (self->replicas, replica);
    zsys_info ("writer: replica %s attached at seq %" PRIu64
               " (writer at %" PRIu64 ")",
               replica->name, up->seq, bus_store_last_seq (self->store));
    //  A misspelt writer/sync_replica holds every batch for a replica that
    //  never comes: say which one is awaited
    if (*self->config->sync_replica
        && !streq (replica->name, self->config->sync_replica))
        zsys_warning ("writer: replica %s attached; the synchronous replica "
                      "is %s (writer/sync_replica)",
                      replica->name, self->config->sync_replica);
    //  At once, even with nothing to send: a new replica takes the
    //  history's identity from it (the changes follow with the pump,
    //  which knows what this replica may be sent)
    s_send_batch (self, replica, true, replica->sent, 0);
}

static void
s_confirm (bus_writer_repl_t *self, zframe_t *id, const bus_repl_up_t *up,
           const bus_curve_peer_t *peer)
{
    s_replica_t *replica = s_find (self, id);
    if (!replica) {   //  a writer restarted under it: hello again
        s_send_error (self, id, BUS_ERR_NOT_FOUND,
                      "unknown replica: say hello");
        return;
    }
    //  The routing id is the replica's to choose, and the ROUTER hands it
    //  over to whichever connection shows it last: under CURVE a
    //  confirmation counts only from the key that said hello (another
    //  replica's key, say, must not release the synchronous replica's
    //  batches)
    if (bus_curve_enabled (self->curve)
        && (!peer || !streq (peer->key, replica->key))) {
        s_drop (self, "a confirmation from another key than its hello's", 0);
        return;
    }
    replica->heard_ms = zclock_mono ();
    if (up->seq > bus_store_last_seq (self->store)) {
        s_drop (self, "a confirmation past the writer's log", 0);
        return;
    }
    //  Past what was sent on this entry (a confirm that crossed a hello
    //  on the same connection): the replica holds it, so it counts
    if (up->seq > replica->sent)
        replica->sent = up->seq;
    if (up->seq > replica->confirmed) {
        replica->confirmed = up->seq;
        replica->behind_ms =
            replica->confirmed < replica->sent ? replica->behind_ms : 0;
    }
}

void
bus_writer_repl_recv (bus_writer_repl_t *self)
{
    void *sock = zsock_resolve (self->sock);
    for (int i = 0; i < 1000; i++) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            return;
        }
        zframe_t *id = zframe_new (zmq_msg_data (&part), zmq_msg_size (&part));
        zmq_msg_close (&part);
        //  The body: one frame, carrying the sender's key (User-Id)
        zmq_msg_init (&part);
        bool one = zmq_msg_recv (&part, sock, 0) >= 0 && !zmq_msg_more (&part);
        bus_repl_up_t up;
        int rc = one ? bus_repl_up_decode (zmq_msg_data (&part),
                                           zmq_msg_size (&part), &up)
                     : BUS_ERR_MALFORMED;
        const bus_curve_peer_t *peer =
            one && bus_curve_enabled (self->curve)
                //  the token tells a key the ZAP handler let in from one
                //  a client wrote into its own metadata (bus_curve_sender)
                ? bus_curve_sender (self->curve,
                                    zmq_msg_gets (&part, "User-Id"),
                                    zmq_msg_gets (&part, BUS_CURVE_ZAP_TOKEN))
                : NULL;
        size_t size = zmq_msg_size (&part);
        while (zmq_msg_more (&part) && zmq_msg_recv (&part, sock, 0) >= 0)
            ;
        zmq_msg_close (&part);
        if (rc != 0)
            s_drop (self, one ? bus_strerror (rc) : "not one frame", size);
        else if (up.op == BUS_REPL_HELLO)
            s_hello (self, id, &up, peer);
        else
            s_confirm (self, id, &up, peer);
        zframe_destroy (&id);
    }
}

bool
bus_writer_repl_pump (bus_writer_repl_t *self, uint64_t released,
                      uint64_t menu_released)
{
    bool more = false;
    int64_t now = zclock_mono ();
    s_replica_t *replica = zlistx_first (self->replicas);
    while (replica) {
        bool gone = now - replica->heard_ms > self->config->link_timeout_ms;
        if (gone) {
            zsys_warning ("writer: replica %s silent for %d ms: detached at "
                          "seq %" PRIu64 " confirmed",
                          replica->name, self->config->link_timeout_ms,
                          replica->confirmed);
            zlistx_delete (self->replicas, zlistx_cursor (self->replicas));
            replica = zlistx_first (self->replicas);   //  restart the walk
            continue;
        }
        bool beat = now - replica->sent_ms >= self->config->heartbeat_ms;
        //  Only the synchronous replica gets what is not released yet
        bool sync = streq (replica->name, self->config->sync_replica);
        if (s_send_batch (self, replica, beat, sync ? UINT64_MAX : released,
                          sync ? UINT64_MAX : menu_released))
            more = true;
        if (replica->sent == UINT64_MAX) {   //  cannot be served
            zlistx_delete (self->replicas, zlistx_cursor (self->replicas));
            replica = zlistx_first (self->replicas);
            continue;
        }
        replica = zlistx_next (self->replicas);
    }
    return more;
}

bool
bus_writer_repl_confirmed (bus_writer_repl_t *self, const char *name,
                           uint64_t *seq)
{
    *seq = 0;
    int64_t now = zclock_mono ();
    for (s_replica_t *replica = zlistx_first (self->replicas); replica;
         replica = zlistx_next (self->replicas))
        if (streq (replica->name, name)) {
            *seq = replica->confirmed;
            return now - replica->heard_ms <= self->config->link_timeout_ms;
        }
    return false;
}

uint64_t
bus_writer_repl_dropped (bus_writer_repl_t *self)
{
    return self ? atomic_load (&self->dropped) : 0;
}

uint64_t
bus_writer_repl_refused (bus_writer_repl_t *self)
{
    return self ? atomic_load (&self->refused) : 0;
}

void
bus_writer_repl_summarize (bus_writer_repl_t *self)
{
    json_t *list = json_array ();
    uint64_t last = bus_store_last_seq (self->store);
    int64_t now = zclock_mono (), wall = zclock_time ();
    for (s_replica_t *replica = zlistx_first (self->replicas); replica;
         replica = zlistx_next (self->replicas))
        json_array_append_new (
            list,
            json_pack ("{s:s, s:I, s:I, s:I, s:I, s:I}", "name", replica->name,
                       "sent", (json_int_t) replica->sent, "confirmed",
                       (json_int_t) replica->confirmed, "lag_seqs",
                       (json_int_t) (last - replica->confirmed), "lag_ms",
                       (json_int_t) (replica->behind_ms
                                         ? wall - replica->behind_ms
                                         : 0),
                       "heard_ms_ago", (json_int_t) (now - replica->heard_ms)));
    char *text = json_dumps (list, JSON_COMPACT);
    json_decref (list);
    pthread_mutex_lock (&self->lock);
    free (self->summary);
    self->summary = text;
    pthread_mutex_unlock (&self->lock);
}

json_t *
bus_writer_repl_json (bus_writer_repl_t *self)
{
    if (!self)
        return json_array ();
    pthread_mutex_lock (&self->lock);
    json_t *list = self->summary ? json_loads (self->summary, 0, NULL) : NULL;
    pthread_mutex_unlock (&self->lock);
    return list ? list : json_array ();
}
