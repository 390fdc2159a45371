/*  bus_replica.c — the replica role (bus_replica.h, docs/replication.md).

    Threads:
      actor     the DEALER to the writer, the CURVE watch, the store's
                write side; the loop applies, commits, confirms
      caller    bus_replica_new / _destroy, and any thread the counters
                (atomics) and the failure (set once, before SIGTERM)

    Group commit: every batch waiting on the socket when the actor wakes
    (up to S_DRAIN_MAX) goes into one write transaction, committed
    durably before one CONFIRM of the last seq.  The writer keeps sending
    within its window meanwhile, so a replica far behind catches up in
    large transactions, and one live batch costs one fsync here.  */

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdatomic.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_menu.h"
#include "orderbus/bus_query.h"
#include "orderbus/bus_replica.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_store_repl.h"

#define S_DRAIN_MAX  64     //  batches per transaction, at most
#define S_BEHIND_LOG 5000   //  "behind by N" at most this often, ms

struct _bus_replica_t {
    bus_config_t config;
    bus_store_t *store;
    bus_curve_t *curve;
    zactor_t *actor;
    zactor_t *reads;   //  the read socket's actor, if replica/sync is set
    zsock_t *serve;    //  its ROUTER, reads actor only once running
    //  Actor only
    zsock_t *dealer;
    bus_curve_watch_t *watch;
    int64_t heard_ms;   //  zclock_mono of the writer's last message
    int64_t said_ms;    //  ...of our last message to it
    bool behind;        //  as last logged
    int64_t behind_logged_ms;
    uint64_t epoch_refused;   //  the older epoch last refused (logged once)
    bool map_full;            //  this drain's transaction met a full map
    //  Any thread
    _Atomic uint64_t writer_seq, batches, dropped;
    _Atomic uint64_t queries;          //  read queries answered (replica/sync)
    _Atomic int64_t behind_since_ms;   //  zclock_time; 0: caught up
    _Atomic int64_t heard_at;          //  zclock_mono, 0: never
    atomic_bool failed;
    bool standby;   //  a group member's: a failure stops only the replica
    pthread_mutex_t lock;           //  guards following
    bus_epoch_t following;          //  the history the store follows (epoch 0:
                                    //  none yet), for the read socket's replies
    char why[BUS_ERROR_MAX + 64];   //  written once, before failed is set
};

//  Stop for good: say why, and have the node stop (bus_node's sigwait).
static void
s_fail (bus_replica_t *self, const char *why)
{
    if (atomic_load (&self->failed))
        return;
    snprintf (self->why, sizeof self->why, "%s", why);
    atomic_store (&self->failed, true);
    zsys_error ("replica %s: stopped: %s", self->config.name, why);
    if (self->standby)
        return;   //  its member decides (bus_member.c)
    //  To the process, not this thread (raise): every thread blocks it,
    //  and only main's sigwait takes it
    kill (getpid (), SIGTERM);
}

//  ---------------------------------------------------------------------
//  The link

static void
s_send_up (bus_replica_t *self, const bus_repl_up_t *up)
{
    zframe_t *frame = bus_repl_up_encode (up);
    if (frame && zframe_send (&frame, self->dealer, ZFRAME_DONTWAIT) != 0)
        zframe_destroy (&frame);
    self->said_ms = zclock_mono ();
}

static void
s_hello (bus_replica_t *self)
{
    bus_repl_up_t up = { .op = BUS_REPL_HELLO,
                         .seq = bus_store_last_seq (self->store) };
    bus_strlcpy (up.name, self->config.name, sizeof up.name);
    bus_epoch_t epoch;
    bus_store_epoch (self->store, &epoch);
    bus_strlcpy (up.store, epoch.id, sizeof up.store);
    if (bus_store_log_sum (self->store, up.seq, &up.sum) != 0)
        up.sum = 0;   //  pruned here: the writer's check says
    s_send_up (self, &up);
    zsys_info ("replica %s: hello to %s from seq %" PRIu64, self->config.name,
               self->config.replicate, up.seq);
}

static void
s_confirm (bus_replica_t *self)
{
    bus_repl_up_t up = { .op = BUS_REPL_CONFIRM,
                         .seq = bus_store_last_seq (self->store) };
    s_send_up (self, &up);
}

static void
s_disconnect (bus_replica_t *self)
{
    bus_curve_watch_destroy (&self->watch);
    zsock_destroy (&self->dealer);
}

static int
s_connect (bus_replica_t *self)
{
    s_disconnect (self);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer)
        return -1;
    //  Per frame: an event, a key, or the menu document (the largest)
    zsock_set_maxmsgsize (self->dealer, BUS_MENU_DOC_MAX);
    zsock_set_rcvhwm (self->dealer, 64);
    zsock_set_linger (self->dealer, 0);
    bus_curve_client (self->curve, self->dealer);
    self->watch =
        bus_curve_watch_new (self->curve, self->dealer, self->config.replicate);
    if (bus_link_connect (self->dealer, self->config.replicate) < 0)
        return -1;
    self->heard_ms = zclock_mono ();
    s_hello (self);
    return 0;
}

//  ---------------------------------------------------------------------
//  Applying

//  What one message did: applied (0), to be dropped (1), or the link
//  must start again with a hello (-1).  why says what went wrong.
static int
s_apply_msg (bus_replica_t *self, zmsg_t *msg, bool *changed, char *why,
             size_t why_cap)
{
    bus_repl_batch_t head;
    zframe_t *frame = zmsg_first (msg);
    int rc = frame ? bus_repl_batch_decode (zframe_data (frame),
                                            zframe_size (frame), &head)
                   : BUS_ERR_MALFORMED;
    if (rc != 0) {
        snprintf (why, why_cap, "a batch header that does not decode: %s",
                  bus_strerror (rc));
        return 1;
    }
    atomic_store (&self->writer_seq, head.last);
    if (head.status == BUS_ERR_NOT_FOUND)
        return -1;   //  a restarted writer that does not know us
    if (head.status != 0) {
        s_fail (self, head.error);
        return 1;
    }
    size_t frames = 1 + 2 * (size_t) head.count + (head.menu_version ? 1 : 0);
    if (zmsg_size (msg) != frames) {
        snprintf (why, why_cap, "a batch of %zu frames where %zu were said",
                  zmsg_size (msg), frames);
        return 1;
    }
    bus_epoch_t before;
    bus_store_epoch (self->store, &before);
    rc = bus_store_follow (self->store, &head.writer, why, why_cap);
    if (rc != 0) {
        if (rc == BUS_ERR_CONFLICT)   //  another store's history
            s_fail (self, why);
        else if (self->epoch_refused != head.writer.epoch)
            zsys_error ("replica %s: refused a batch: %s", self->config.name,
                        why);
        self->epoch_refused = head.writer.epoch;
        *why = '\0';   //  said once already
        return 1;
    }
    bus_epoch_t after;
    bus_store_epoch (self->store, &after);
    if (after.epoch != before.epoch || !streq (after.id, before.id)) {
        *changed = true;
        zsys_info ("replica %s: following store %s, epoch %016" PRIx64,
                   self->config.name, after.id, after.epoch);
    }
    for (uint32_t i = 0; i < head.count; i++) {
        zframe_t *event = zmsg_next (msg), *key_frame = zmsg_next (msg);
        bus_repl_key_t key;
        if (bus_repl_key_decode (zframe_data (key_frame),
                                 zframe_size (key_frame), &key)
            != 0) {
            snprintf (why, why_cap,
                      "change %" PRIu64 ": its key frame does "
                      "not decode",
                      head.first + i);
            return -1;
        }
        bus_store_change_t change = { head.first + i, zframe_data (event),
                                      zframe_size (event), key.key,
                                      key.fingerprint };
        //  A repeat (a hello crossed a batch in flight) is already here
        if (change.seq <= bus_store_applied_seq (self->store))
            continue;
        rc = bus_store_apply (self->store, &change, why, why_cap);
        if (rc == BUS_ERR_MAP_FULL)
            self->map_full = true;   //  s_apply_waiting grows it
        if (rc != 0)
            return -1;
        *changed = true;
    }
    if (head.menu_version) {
        zframe_t *menu = zmsg_next (msg);
        rc = bus_store_menu_adopt (self->store, (char *) zframe_data (menu),
                                   zframe_size (menu), head.menu_version);
        if (rc != 0) {
            snprintf (why, why_cap, "menu: %s", bus_strerror (rc));
            return -1;
        }
        *changed = true;
    }
    return 0;
}

//  Say how far behind we are, when that changes (at most every few s).
static void
s_progress (bus_replica_t *self)
{
    uint64_t seq = bus_store_last_seq (self->store),
             writer = atomic_load (&self->writer_seq);
    bool behind = seq < writer;
    int64_t now = zclock_mono ();
    if (behind && !atomic_load (&self->behind_since_ms))
        atomic_store (&self->behind_since_ms, zclock_time ());
    if (!behind)
        atomic_store (&self->behind_since_ms, 0);
    if (!behind && self->behind)
        zsys_info ("replica %s: caught up to %" PRIu64, self->config.name, seq);
    else if (behind && now - self->behind_logged_ms >= S_BEHIND_LOG) {
        zsys_info ("replica %s: at %" PRIu64 ", behind by %" PRIu64,
                   self->config.name, seq, writer - seq);
        self->behind_logged_ms = now;
    }
    self->behind = behind;
}

//  Every batch waiting, in one durable transaction, then one CONFIRM.
static void
s_apply_waiting (bus_replica_t *self)
{
    bool changed = false, again = false;
    char why[BUS_ERROR_MAX + 64] = "";
    int rc = bus_store_begin (self->store);
    for (int n = 0; rc == 0 && n < S_DRAIN_MAX && !again; n++) {
        zmsg_t *msg = NULL;
        if (zsock_events (self->dealer) & ZMQ_POLLIN)
            msg = zmsg_recv (self->dealer);
        if (!msg)
            break;
        self->heard_ms = zclock_mono ();
        atomic_store (&self->heard_at, self->heard_ms);
        int did = s_apply_msg (self, msg, &changed, why, sizeof why);
        zmsg_destroy (&msg);
        if (did == 1 && *why) {
            atomic_fetch_add (&self->dropped, 1);
            zsys_warning ("replica %s: dropped %s", self->config.name, why);
            *why = '\0';
        }
        again = did < 0;
    }
    if (self->map_full) {
        //  LMDB took the transaction down with the full map: drop this
        //  drain, grow the map as the writer does, and say hello from
        //  what is committed, so the writer sends the rest again
        self->map_full = false;
        changed = false;
        bus_store_abort (self->store);
        rc = bus_store_grow (self->store);
        if (rc == 0)
            again = true;
    } else if (rc == 0 && changed)
        rc = bus_store_commit (self->store);
    else if (rc == 0)
        bus_store_abort (self->store);
    if (rc != 0) {
        zsys_error ("replica %s: cannot commit: %s; reopening, then hello "
                    "again",
                    self->config.name, bus_strerror (rc));
        bus_store_reopen (self->store);
        again = true;
    } else if (changed) {
        atomic_fetch_add (&self->batches, 1);
        s_confirm (self);
    }
    bus_epoch_t epoch;
    bus_store_epoch (self->store, &epoch);
    pthread_mutex_lock (&self->lock);
    self->following = epoch;
    pthread_mutex_unlock (&self->lock);
    if (again) {
        if (*why)
            zsys_warning ("replica %s: %s: hello again", self->config.name,
                          why);
        //  What was applied of this drain is committed (or not, after a
        //  failed commit): the hello says where we are
        s_hello (self);
    }
    s_progress (self);
}

//  ---------------------------------------------------------------------
//  The actor

static void
s_actor (zsock_t *pipe, void *args)
{
    bus_replica_t *self = (bus_replica_t *) args;
    int rc = s_connect (self);
    zsock_signal (pipe, rc == 0 ? 0 : -1);
    if (rc != 0)
        return;
    zpoller_t *poller = zpoller_new (pipe, self->dealer, NULL);
    if (self->watch)
        zpoller_add (poller, bus_curve_watch_socket (self->watch));
    zpoller_set_nonstop (poller, true);
    while (!atomic_load (&self->failed)) {
        void *which = zpoller_wait (poller, self->config.heartbeat_ms / 2);
        if (which == pipe)
            break;
        if (self->watch && which == bus_curve_watch_socket (self->watch))
            bus_curve_watch_read (self->watch);
        bus_curve_watch_redial (self->watch, zclock_mono ());
        if (which == self->dealer)
            s_apply_waiting (self);
        int64_t now = zclock_mono ();
        if (now - self->heard_ms > self->config.link_timeout_ms) {
            zsys_warning ("replica %s: the writer was silent for %d ms: "
                          "connecting again",
                          self->config.name, self->config.link_timeout_ms);
            zpoller_destroy (&poller);
            if (s_connect (self) != 0)
                break;
            poller = zpoller_new (pipe, self->dealer, NULL);
            if (self->watch)
                zpoller_add (poller, bus_curve_watch_socket (self->watch));
            zpoller_set_nonstop (poller, true);
        } else if (now - self->said_ms >= self->config.heartbeat_ms)
            s_confirm (self);   //  alive: the writer counts us gone else
    }
    zpoller_destroy (&poller);
    s_disconnect (self);
}

//  ---------------------------------------------------------------------
//  The read socket (replica/sync): the writer's read queries answered
//  from this store (bus_query.h), with how far behind it is

static json_t *
s_stats_json (bus_replica_t *self)
{
    bus_replica_stats_t stats = bus_replica_stats (self);
    json_t *json = json_pack (
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "role", "replica",
        "name", self->config.name, "seq", (json_int_t) stats.seq, "writer_seq",
        (json_int_t) stats.writer_seq, "behind_seqs",
        (json_int_t) (stats.writer_seq > stats.seq
                          ? stats.writer_seq - stats.seq
                          : 0),
        "behind_ms", (json_int_t) stats.behind_ms, "heard_ms_ago",
        (json_int_t) stats.heard_ms_ago, "batches", (json_int_t) stats.batches,
        "dropped", (json_int_t) stats.dropped, "behind",
        stats.writer_seq > stats.seq);
    if (json)
        json_object_set_new (
            json, "queries",
            json_integer ((json_int_t) atomic_load (&self->queries)));
    return json;
}

static void
s_read_handle (bus_replica_t *self, const bus_sync_req_t *req,
               bus_sync_reply_t *reply, zmsg_t *items)
{
    reply->seq = bus_store_last_seq (self->store);
    //  How far behind: the writer's seq as last heard (never below ours)
    uint64_t writer_seq = atomic_load (&self->writer_seq);
    reply->writer_seq = writer_seq > reply->seq ? writer_seq : reply->seq;
    if (bus_query_is_read (req->op)) {
        atomic_fetch_add (&self->queries, 1);
        bus_query_answer (self->store, 0, req, reply, items);
        return;
    }
    if (req->op == BUS_SYNC_STATS) {
        json_t *json = s_stats_json (self);
        char *text = json ? json_dumps (json, JSON_COMPACT) : NULL;
        json_decref (json);
        if (text)
            zmsg_addstr (items, text);
        free (text);
        if (text)
            return;
        reply->status = BUS_ERR_NOMEM;
    } else
        reply->status = BUS_ERR_FORBIDDEN;
    bus_strlcpy (reply->error,
                 reply->status == BUS_ERR_FORBIDDEN
                     ? "a replica answers read queries only: ping the writer"
                     : bus_strerror (reply->status),
                 sizeof reply->error);
}

static void
s_read_serve (bus_replica_t *self)
{
    zmsg_t *msg = zmsg_recv (self->serve);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg), *body = zmsg_pop (msg);
    bus_sync_req_t req;
    bus_sync_reply_t reply;
    memset (&reply, 0, sizeof reply);
    int rc =
        body && zmsg_size (msg) == 0
            ? bus_sync_req_decode (zframe_data (body), zframe_size (body), &req)
            : BUS_ERR_MALFORMED;
    pthread_mutex_lock (&self->lock);
    reply.writer = self->following;
    pthread_mutex_unlock (&self->lock);
    zmsg_t *items = zmsg_new ();
    if (rc == 0)
        reply.rid = req.rid;
    if (rc != 0) {
        atomic_fetch_add (&self->dropped, 1);
        reply.status = rc;
        bus_strlcpy (reply.error, bus_strerror (rc), sizeof reply.error);
    } else if (reply.writer.epoch == 0) {
        reply.status = BUS_ERR_UNAVAILABLE;
        bus_strlcpy (reply.error, "not following a writer yet",
                     sizeof reply.error);
    } else
        s_read_handle (self, &req, &reply, items);
    if (reply.status != 0) {
        zmsg_destroy (&items);
        items = zmsg_new ();
    }
    if (reply.writer.epoch == 0) {   //  a header must name a history
        bus_strlcpy (reply.writer.id, "00000000000000000000000000000000",
                     sizeof reply.writer.id);
        reply.writer.epoch = 1;
    }
    reply.count = (uint32_t) zmsg_size (items);
    zframe_t *header = bus_sync_reply_encode (&reply);
    zmsg_prepend (items, &header);
    zmsg_prepend (items, &identity);
    zmsg_send (&items, self->serve);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
}

static void
s_reads_actor (zsock_t *pipe, void *args)
{
    bus_replica_t *self = (bus_replica_t *) args;
    zpoller_t *poller = zpoller_new (pipe, self->serve, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    while (zpoller_wait (poller, -1) == self->serve)
        s_read_serve (self);
    zpoller_destroy (&poller);
}

//  ---------------------------------------------------------------------
//  Construction

//  The read socket and its actor.  0, or -1 with err set.
static int
s_reads_init (bus_replica_t *self, char *err, size_t err_cap)
{
    //  With CURVE, a server under this replica's own key, admitting the
    //  gateways and edges of its link/allow (bus_curve_new ran zauth)
    if (bus_curve_enabled (self->curve) && !*self->config.allow_dir) {
        snprintf (err, err_cap,
                  "replica/sync with link/cert needs link/allow (--allow "
                  "DIR): the public certificates of the gateways and "
                  "edges that may read from it");
        return -1;
    }
    self->serve = zsock_new (ZMQ_ROUTER);
    if (self->serve) {
        zsock_set_maxmsgsize (self->serve, BUS_FRAME_MAX);
        zsock_set_rcvhwm (self->serve, 1000);
    }
    if (!self->serve
        || bus_curve_server (self->curve, self->serve, "reads") != 0
        || zsock_bind (self->serve, "%s", self->config.replica_sync) < 0) {
        snprintf (err, err_cap, "cannot bind replica/sync %s: %s",
                  self->config.replica_sync, zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->reads = zactor_new (s_reads_actor, self);
    if (!self->reads) {
        snprintf (err, err_cap, "cannot start the read thread");
        return -1;
    }
    return 0;
}

bus_replica_t *
bus_replica_new (const bus_config_t *config, char *err, size_t err_cap)
{
    return bus_replica_new_standby (config, false, err, err_cap);
}

bus_replica_t *
bus_replica_new_standby (const bus_config_t *config, bool standby, char *err,
                         size_t err_cap)
{
    bus_replica_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->standby = standby;
    pthread_mutex_init (&self->lock, NULL);
    self->curve = bus_curve_new (config, err, err_cap);
    if (!self->curve)
        goto fail;
    int rc;
    self->store = bus_store_open (config->data_dir, 0, 0, &rc);
    if (!self->store) {
        snprintf (err, err_cap, "cannot open data directory '%s': %s",
                  config->data_dir, bus_strerror (rc));
        goto fail;
    }
    bus_epoch_t epoch;
    bus_store_epoch (self->store, &epoch);
    self->following = epoch;
    if (*config->replica_sync && s_reads_init (self, err, err_cap) != 0)
        goto fail;
    zsys_info ("replica %s: data %s (store %s, seq %" PRIu64
               "), following %s, links %s",
               config->name, config->data_dir, epoch.id,
               bus_store_last_seq (self->store), config->replicate,
               bus_curve_enabled (self->curve) ? "CURVE" : "plaintext");
    self->actor = zactor_new (s_actor, self);
    if (!self->actor) {
        snprintf (err, err_cap, "cannot connect to %s", config->replicate);
        goto fail;
    }
    return self;
fail:
    bus_replica_destroy (&self);
    return NULL;
}

void
bus_replica_destroy (bus_replica_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_replica_t *self = *self_p;
    zactor_destroy (&self->actor);
    zactor_destroy (&self->reads);
    zsock_destroy (&self->serve);
    if (self->store)
        zsys_info ("replica %s: stopped at seq %" PRIu64, self->config.name,
                   bus_store_last_seq (self->store));
    bus_store_destroy (&self->store);
    bus_curve_destroy (&self->curve);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

bool
bus_replica_failed (bus_replica_t *self, char *why, size_t why_cap)
{
    if (!self || !atomic_load (&self->failed))
        return false;
    snprintf (why, why_cap, "%s", self->why);
    return true;
}

bus_replica_stats_t
bus_replica_stats (bus_replica_t *self)
{
    int64_t since = atomic_load (&self->behind_since_ms),
            heard = atomic_load (&self->heard_at);
    bus_replica_stats_t stats = {
        bus_store_last_seq (self->store),   atomic_load (&self->writer_seq),
        since ? zclock_time () - since : 0, heard ? zclock_mono () - heard : -1,
        atomic_load (&self->batches),       atomic_load (&self->dropped),
    };
    return stats;
}
