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
#define S_RETRY_MIN  100    //  a hello after a failure waits this long...
#define S_RETRY_MAX  5000   //  ...doubling up to this, ms
//  The same failure at the same seq this many times in a row: stop, it
//  will not pass by itself
#define S_SAME_MAX 10

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
    int64_t hello_at;         //  zclock_mono of a hello put off, 0: none
    int retry_ms;             //  the next put-off hello waits this long
    uint64_t failed_seq;      //  the last failure's seq, and
    char failed_why[BUS_ERROR_MAX + 64];   //  ...its words,
    int failed_times;                      //  ...how often in a row
    //  Any thread
    _Atomic uint64_t writer_seq, batches, dropped;
    _Atomic uint64_t queries;          //  read queries answered (replica/sync)
    _Atomic int64_t behind_since_ms;   //  zclock_time; 0: caught up
    _Atomic int64_t heard_at;          //  zclock_mono, 0: never
    int64_t started_at;                //  zclock_mono
    atomic_bool failed;
    bus_replica_failure_t failure;   //  written once, before failed is set
    bool standby;   //  a group member's: a failure stops only the replica
    pthread_mutex_t lock;           //  guards following
    bus_epoch_t following;          //  the history the store follows (epoch 0:
                                    //  none yet), for the read socket's replies
    char why[BUS_ERROR_MAX + 64];   //  written once, before failed is set
};

//  Stop for good: say why, and have the node stop (bus_node's sigwait).
static void
s_fail (bus_replica_t *self, bus_replica_failure_t failure, const char *why)
{
    if (atomic_load (&self->failed))
        return;
    snprintf (self->why, sizeof self->why, "%s", why);
    self->failure = failure;
    atomic_store (&self->failed, true);
    zsys_error ("replica %s: stopped (%s): %s", self->config.name,
                bus_replica_failure_name (failure), why);
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

//  Say hello again later, not now: after a failure the writer or this
//  store may need a moment (a disk incident, a reopen, too many
//  replicas); waits from S_RETRY_MIN doubling up to S_RETRY_MAX, so a
//  failure that recurs does not loop hello, resend, fail on both hosts
static void
s_hello_later (bus_replica_t *self, const char *why)
{
    if (self->retry_ms < S_RETRY_MIN)
        self->retry_ms = S_RETRY_MIN;
    zsys_warning ("replica %s: %s: hello again in %d ms", self->config.name,
                  why, self->retry_ms);
    self->hello_at = zclock_mono () + self->retry_ms;
    self->retry_ms =
        self->retry_ms * 2 > S_RETRY_MAX ? S_RETRY_MAX : self->retry_ms * 2;
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

//  This process's own 128 random bits, made once
static char s_nonce[40];
static pthread_once_t s_nonce_once = PTHREAD_ONCE_INIT;

static void
s_nonce_make (void)
{
    zuuid_t *uuid = zuuid_new ();
    bus_strlcpy (s_nonce, uuid ? zuuid_str (uuid) : "0", sizeof s_nonce);
    zuuid_destroy (&uuid);
}

//  The connection's routing id: the name, and the process's nonce.  Every
//  connection this process makes under the name (a reconnect after a
//  drop or a silence, a member's new standby) has the same one, which
//  the writer's ROUTER hands over to the newest (ZMQ_ROUTER_HANDOVER) and
//  its twin check takes for the same replica; another process under the
//  name has another nonce, and is still refused as a twin.
static int
s_routing_id (bus_replica_t *self)
{
    pthread_once (&s_nonce_once, s_nonce_make);
    char id[BUS_NAME_MAX + sizeof s_nonce + 8];
    int len =
        snprintf (id, sizeof id, "replica/%s/%s", self->config.name, s_nonce);
    if (len < 0 || (size_t) len >= sizeof id)
        return -1;
    return zmq_setsockopt (zsock_resolve (self->dealer), ZMQ_ROUTING_ID, id,
                           (size_t) len);
}

static int
s_connect (bus_replica_t *self)
{
    s_disconnect (self);
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer || s_routing_id (self) != 0)
        return -1;
    //  Per frame: an event, a key, or the menu document (the largest)
    zsock_set_maxmsgsize (self->dealer, BUS_MENU_DOC_MAX);
    zsock_set_rcvhwm (self->dealer, 64);
    zsock_set_linger (self->dealer, 0);
    self->watch =
        bus_curve_watch_new (self->curve, self->dealer, self->config.replicate);
    if (bus_curve_enabled (self->curve) && !self->watch)
        return -1;   //  logged by bus_curve_watch_new
    if (bus_link_connect (self->dealer, self->config.replicate, self->curve)
        < 0)
        return -1;
    self->heard_ms = zclock_mono ();
    self->hello_at = 0;
    s_hello (self);
    return 0;
}

//  ---------------------------------------------------------------------
//  Applying

//  A writer's conflict with our hello, by what we know rather than its
//  words: our store is another store than the writer's, or it is the
//  same store and our log is not a prefix of the writer's (ahead of it,
//  or an entry differs: bus_writer_repl's s_hello_check)
static bus_replica_failure_t
s_conflict (bus_replica_t *self, const bus_epoch_t *writer)
{
    bus_epoch_t ours;
    bus_store_epoch (self->store, &ours);
    bool other =
        bus_store_last_seq (self->store) > 0 && !streq (ours.id, writer->id);
    return other ? BUS_REPLICA_OTHER_STORE : BUS_REPLICA_DIVERGED;
}

//  The writer's ERROR: stop on the permanent ones (another history,
//  refused, pruned past this store); a writer that does not know us gets
//  a hello at once; any other (too many replicas, a log read failing
//  while its store reopens) is transient: hello again later.
static void
s_writer_error (bus_replica_t *self, const bus_repl_batch_t *head)
{
    bus_epoch_t ours;
    bus_store_epoch (self->store, &ours);
    bus_replica_failure_t conflict = head->status == BUS_ERR_CONFLICT
                                         ? s_conflict (self, &head->writer)
                                         : BUS_REPLICA_RUNNING;
    //  Our history, but at an older epoch than the one our store follows:
    //  a deposed writer still bound for a moment.  Our log may be "ahead"
    //  of its only because it is stale: not a divergence (a member would
    //  move acknowledged orders aside), as a batch of its is refused as
    //  fencing (bus_store_follow): hello again later, to the new one
    if (conflict == BUS_REPLICA_DIVERGED && head->writer.epoch < ours.epoch) {
        char why[BUS_ERROR_MAX + 128];
        snprintf (why, sizeof why,
                  "a writer of an older epoch (%016" PRIx64 " < %016" PRIx64
                  ") refused us: %s",
                  head->writer.epoch, ours.epoch, head->error);
        s_hello_later (self, why);
    } else if (conflict)
        s_fail (self, conflict, head->error);
    else if (head->status == BUS_ERR_FORBIDDEN)
        s_fail (self, BUS_REPLICA_REFUSED, head->error);
    else if (head->status == BUS_ERR_PRUNED)
        s_fail (self, BUS_REPLICA_PRUNED, head->error);
    else if (head->status == BUS_ERR_NOT_FOUND) {
        if (!self->hello_at)   //  else one is due anyway
            s_hello (self);
    } else {
        char why[BUS_ERROR_MAX + 64];
        snprintf (why, sizeof why, "the writer refused (%s): %s",
                  bus_strerror (head->status), head->error);
        s_hello_later (self, why);
    }
}

//  What one message did: applied (0), to be dropped (1), the link must
//  start again with a hello (-1), or the map is full (2: grow, and apply
//  the drain again).  why says what went wrong.
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
    if (head.status != 0) {
        s_writer_error (self, &head);
        return 1;
    }
    size_t frames = 1 + 2 * (size_t) head.count + (head.menu_version ? 1 : 0);
    if (zmsg_size (msg) != frames) {
        snprintf (why, why_cap, "a batch of %zu frames where %zu were said",
                  zmsg_size (msg), frames);
        return 1;
    }
    rc = bus_store_follow (self->store, &head.writer, why, why_cap);
    if (rc == BUS_ERR_MAP_FULL)
        return 2;
    if (rc != 0) {
        if (rc == BUS_ERR_CONFLICT)   //  another store's history
            s_fail (self, BUS_REPLICA_OTHER_STORE, why);
        else if (self->epoch_refused != head.writer.epoch)
            zsys_error ("replica %s: refused a batch: %s", self->config.name,
                        why);
        self->epoch_refused = head.writer.epoch;
        *why = '\0';   //  said once already
        return 1;
    }
    //  A history or epoch taken in this transaction (by this batch or an
    //  earlier one) is the commit's to record
    bus_epoch_t committed;
    bus_store_epoch (self->store, &committed);
    if (committed.epoch != head.writer.epoch
        || !streq (committed.id, head.writer.id))
        *changed = true;
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
            return 2;
        if (rc != 0) {
            if (!*why)
                snprintf (why, why_cap, "change %" PRIu64 ": %s", change.seq,
                          bus_strerror (rc));
            return -1;
        }
        *changed = true;
    }
    if (head.menu_version) {
        zframe_t *menu = zmsg_next (msg);
        rc = bus_store_menu_adopt (self->store, (char *) zframe_data (menu),
                                   zframe_size (menu), head.menu_version);
        if (rc == BUS_ERR_MAP_FULL)
            return 2;
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

//  The drain in one write transaction: 0 (committed, or nothing to
//  commit), or the store's error.  *again: the link must start again
//  with a hello, why says why.
static int
s_apply_drain (bus_replica_t *self, zmsg_t **drain, int count, bool *changed,
               bool *again, char *why, size_t why_cap)
{
    *changed = *again = false;
    *why = '\0';
    int rc = bus_store_begin (self->store);
    for (int i = 0; rc == 0 && i < count && !*again; i++) {
        int did = s_apply_msg (self, drain[i], changed, why, why_cap);
        if (did == 2)
            rc = BUS_ERR_MAP_FULL;
        if (did == 1 && *why) {
            atomic_fetch_add (&self->dropped, 1);
            zsys_warning ("replica %s: dropped %s", self->config.name, why);
            *why = '\0';
        }
        *again = did < 0;
    }
    if (rc == 0 && *changed)
        return bus_store_commit (self->store);
    bus_store_abort (self->store);   //  nothing changed, or it failed
    return rc;
}

//  A failure that will not pass by itself (an event this binary cannot
//  decode, say) recurs at the same seq with the same words: after
//  S_SAME_MAX in a row, stop and say it rather than loop for ever.
static bool
s_same_failure (bus_replica_t *self, const char *why)
{
    uint64_t seq = bus_store_last_seq (self->store);
    if (seq == self->failed_seq && streq (why, self->failed_why))
        self->failed_times++;
    else
        self->failed_times = 1;
    self->failed_seq = seq;
    bus_strlcpy (self->failed_why, why, sizeof self->failed_why);
    if (self->failed_times < S_SAME_MAX)
        return false;
    char text[BUS_ERROR_MAX + 128];
    snprintf (text, sizeof text, "%d times in a row after seq %" PRIu64 ": %s",
              self->failed_times, seq, why);
    s_fail (self, BUS_REPLICA_BROKEN, text);
    return true;
}

//  Every batch waiting (up to S_DRAIN_MAX), in one durable transaction,
//  then one CONFIRM.  A full map is grown and the drain applied again,
//  as the writer does with a batch; the messages are kept until then.
static void
s_apply_waiting (bus_replica_t *self)
{
    zmsg_t *drain[S_DRAIN_MAX];
    int count = 0;
    while (count < S_DRAIN_MAX && (zsock_events (self->dealer) & ZMQ_POLLIN)
           && (drain[count] = zmsg_recv (self->dealer)))
        count++;
    if (count == 0)
        return;
    self->heard_ms = zclock_mono ();
    atomic_store (&self->heard_at, self->heard_ms);
    bus_epoch_t before;
    bus_store_epoch (self->store, &before);
    bool changed, again;
    char why[BUS_ERROR_MAX + 64];
    int rc =
        s_apply_drain (self, drain, count, &changed, &again, why, sizeof why);
    while (rc == BUS_ERR_MAP_FULL) {
        size_t was = bus_store_map_size (self->store);
        if (bus_store_grow (self->store) != 0)
            break;
        zsys_info ("replica %s: map full at seq %" PRIu64 ": grown from %zu "
                   "to %zu bytes, applying again",
                   self->config.name, bus_store_last_seq (self->store), was,
                   bus_store_map_size (self->store));
        rc = s_apply_drain (self, drain, count, &changed, &again, why,
                            sizeof why);
    }
    for (int i = 0; i < count; i++)
        zmsg_destroy (&drain[i]);
    if (rc != 0) {
        snprintf (why, sizeof why, "cannot commit: %s; reopened",
                  bus_strerror (rc));
        zsys_error ("replica %s: %s", self->config.name, why);
        bus_store_reopen (self->store);
        again = true;
    } else {
        if (changed) {
            atomic_fetch_add (&self->batches, 1);
            self->retry_ms = S_RETRY_MIN;
        }
        //  After every drain, even of repeats only: the writer's entry
        //  may have been reset by a hello and waits for this
        s_confirm (self);
    }
    bus_epoch_t epoch;
    bus_store_epoch (self->store, &epoch);
    if (epoch.epoch != before.epoch || !streq (epoch.id, before.id))
        zsys_info ("replica %s: following store %s, epoch %016" PRIx64,
                   self->config.name, epoch.id, epoch.epoch);
    pthread_mutex_lock (&self->lock);
    self->following = epoch;
    pthread_mutex_unlock (&self->lock);
    //  What was applied of this drain is committed (or not, after a
    //  failed commit): the hello says where we are
    if (again && !s_same_failure (self, *why ? why : "a batch failed")) {
        if (self->failed_times > 1 || rc != 0)
            s_hello_later (self, *why ? why : "a batch failed");
        else {
            if (*why)
                zsys_warning ("replica %s: %s: hello again", self->config.name,
                              why);
            s_hello (self);
        }
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
        if (self->hello_at && now >= self->hello_at) {
            self->hello_at = 0;
            self->heard_ms = now;   //  the timeout counts from the hello
            s_hello (self);
        } else if (!self->hello_at
                   && now - self->heard_ms > self->config.link_timeout_ms) {
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
        } else if (!self->hello_at
                   && now - self->said_ms >= self->config.heartbeat_ms)
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
    //  ...as of when: cut off, it still counts itself caught up
    int64_t heard = atomic_load (&self->heard_at);
    int64_t ago = zclock_mono () - (heard ? heard : self->started_at);
    reply->heard_ms = ago > 1 ? (uint64_t) ago : 1;
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
    if (reply.writer.epoch == 0) {   //  a header must name a history
        bus_strlcpy (reply.writer.id, "00000000000000000000000000000000",
                     sizeof reply.writer.id);
        reply.writer.epoch = 1;
    }
    bus_query_send (self->serve, &identity, &reply, &items);
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
    //  gateways and edges of its link/allow (bus_curve_new ran the ZAP handler)
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
    self->started_at = zclock_mono ();
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

bus_replica_failure_t
bus_replica_failed (bus_replica_t *self, char *why, size_t why_cap)
{
    if (!self || !atomic_load (&self->failed))
        return BUS_REPLICA_RUNNING;
    snprintf (why, why_cap, "%s", self->why);
    return self->failure;
}

const char *
bus_replica_failure_name (bus_replica_failure_t failure)
{
    switch (failure) {
        case BUS_REPLICA_RUNNING: return "running";
        case BUS_REPLICA_DIVERGED: return "diverged";
        case BUS_REPLICA_OTHER_STORE: return "other_store";
        case BUS_REPLICA_PRUNED: return "pruned";
        case BUS_REPLICA_REFUSED: return "refused";
        case BUS_REPLICA_BROKEN: return "broken";
    }
    return "unknown";
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
