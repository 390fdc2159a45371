/*  bus_writer.c — the writer role: group-committed intake, publishing,
    and the sync query server.

    Threads, and what each owns:

      intake actor   the intake PULL and events PUB sockets, the ledger,
                     the batch (raw frames, queued events and acks), the
                     store's one write transaction, which between
                     batches is also retention's (s_prune) and the
                     storage probe's, and the storage state it sets;
                     with writer/replicate the replicate ROUTER and the
                     replicas (bus_writer_repl.c), and in synchronous
                     mode the held batches (s_held_t)
      sync actor     the sync ROUTER socket and the peers table; read
                     transactions of its own (MDB_NOTLS)
      caller         the actors' pipes: bus_writer_new binds the sockets
                     before the actors start, bus_writer_destroy closes
                     them after both have stopped; bus_writer_stats
      ZeroMQ I/O     the wire: it frees each published message
      CURVE          the ZAP handler and the refusal watcher (bus_curve.c); the
                     peer table both actors read (never written after
                     start)

    The two actors hand each other nothing: they meet only in the store,
    whose rwlock is held for reading by every transaction (taken for
    writing only to grow the map) and whose readers never wait for the
    batch.  Work comes in on the PULL and leaves on the PUB, events before
    acks, after the commit; each actor stops on $TERM from its pipe, the
    intake actor only between batches.  Counters are atomics, read by any
    thread (bus_writer_stats, the sync actor's STATS).

    With CURVE on (link/cert), a peer gets past the handshake only with a
    key in link/allow, and what it sends is judged by who that key is
    (s_sender): commands only from gateways, each under its own name as
    origin; sync requests from any allowed peer, which the peer table
    knows by its certificate's name.  */

#include <ctype.h>
#include <jansson.h>
#include <stdatomic.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_ledger.h"
#include "orderbus/bus_menu.h"
#include "orderbus/bus_query.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_store_repl.h"
#include "orderbus/bus_topic.h"
#include "orderbus/bus_writer.h"
#include "bus_writer_repl.h"

#define S_PEERS_FULL_LOG_MS 10000   //  a full peer table is logged this often
#define S_PRUNE_MAX         256     //  keys, and events, per prune transaction
#define S_PRUNE_EVERY_MS    60000   //  retention looks again this often
#define S_PRUNE_LOG_MS      60000   //  and says what it did this often
#define S_DAY_MS            86400000LL

struct _bus_writer_t {
    bus_config_t config;       //  our copy of the settings
    bus_store_t *store;        //  the LMDB environment
    bus_ledger_t *ledger;      //  the rules, intake thread only
    bus_curve_t *curve;        //  keys, ZAP, who each peer is; or plaintext
    zsock_t *intake;           //  PULL, owned by the intake thread once running
    zsock_t *events;           //  PUB, intake thread only
    zsock_t *sync;             //  ROUTER, sync thread only
    bus_writer_repl_t *repl;   //  writer/replicate, intake thread only;
                               //  NULL without replicas
    //  Synchronous mode (writer/sync_replica), intake thread only: the
    //  committed batches whose events and acks wait for the replica's
    //  confirmation, oldest first (s_held_t), and whether it is "not
    //  confirming" (past writer/sync_timeout_ms)
    zlistx_t *held;
    bool sync_down;
    int64_t async_asked_ms;   //  when may_go_async was last asked
    bool async_named;         //  sync_fallback async, and the member named this
                              //  node the sync standby first (may_go_async)
    uint64_t async_from;      //  the last seq when acks went on without it
    uint64_t published_seq;   //  events published up to (heartbeats)
    uint64_t released_menu;   //  the menu version released with it (sync
                              //  mode: read replicas get no newer menu)
    _Atomic uint64_t released_seq;   //  ...the same, for the sync thread:
                                     //  reads show nothing past it (sync
                                     //  mode; 0 after a start until the
                                     //  replica confirms what is there)
    zactor_t *intake_actor;
    zactor_t *sync_actor;
    bus_writer_lead_t lead;   //  a group member's leadership; may_publish
                              //  NULL on a lone writer
    bus_epoch_t epoch;        //  this run's history, set before the actors
    zframe_t *epoch_frame;    //  ...encoded, sent after every event
    zhashx_t *peers;          //  "role name" -> s_peer_t, sync thread only
    int64_t peers_full_logged_ms;   //  sync thread only
    uint64_t queries;               //  read queries answered (sync thread only)
    //  Retention, intake thread only: what was pruned since the last line
    int64_t prune_logged_ms;
    uint64_t prune_events, prune_keys;
    //  Counters (see bus_writer_stats_t), written by the threads
    atomic_uint_fast64_t commands, committed, dropped, batches, grows,
        storage_failures, refused,   //  refused: read, not applied
        pruned_events, pruned_keys,
        sync_refused;   //  acks turned 503: the sync replica was not there
    atomic_bool sync_down_now;   //  sync_down, for stats on any thread
    //  bus_writer_sync, for a member on any thread: the sync replica's
    //  confirmed seq (0 while not heard), and sync_down's ends
    atomic_uint_fast64_t sync_confirmed, sync_recovered;
    //  The storage state (bus_storage_t): written by the intake thread,
    //  which alone commits, read by any (stats, heartbeats)
    atomic_int storage;
    uint64_t failures_then;   //  storage_failures when it was last ok,
                              //  intake thread only
};

//  A gateway or edge that pings the sync socket
typedef struct {
    int64_t last_ms;   //  zclock_mono of its last ping
    bool gone;         //  silent for longer than the link timeout
} s_peer_t;

//  ---------------------------------------------------------------------
//  One batch: the raw frames taken off the intake socket, and what the
//  commit will publish.

typedef struct {
    zmq_msg_t *raw;              //  batch_max received frames
    size_t count;                //  frames in raw
    zlistx_t *events;            //  zmsg_t [topic][event][epoch], in seq order
    zframe_t *epoch;             //  the writer's epoch_frame, borrowed
    const bus_epoch_t *writer;   //  ...and the epoch itself, for acks
    zlistx_t *acks;              //  zmsg_t [topic][ack]
    bus_cmd_t cmd;               //  scratch: the command being applied
    bus_ack_t ack;               //  scratch: its answer
} s_batch_t;

static void
s_msg_destructor (void **item)
{
    zmsg_destroy ((zmsg_t **) item);
}

static s_batch_t *
s_batch_new (size_t batch_max)
{
    s_batch_t *batch = calloc (1, sizeof *batch);
    if (!batch)
        return NULL;
    batch->raw = calloc (batch_max, sizeof (zmq_msg_t));
    batch->events = zlistx_new ();
    batch->acks = zlistx_new ();
    if (!batch->raw || !batch->events || !batch->acks) {
        free (batch->raw);
        zlistx_destroy (&batch->events);
        zlistx_destroy (&batch->acks);
        free (batch);
        return NULL;
    }
    zlistx_set_destructor (batch->events, s_msg_destructor);
    zlistx_set_destructor (batch->acks, s_msg_destructor);
    return batch;
}

static void
s_batch_destroy (s_batch_t **batch_p)
{
    s_batch_t *batch = *batch_p;
    if (!batch)
        return;
    free (batch->raw);
    zlistx_destroy (&batch->events);
    zlistx_destroy (&batch->acks);
    free (batch);
    *batch_p = NULL;
}

//  Drop a frame nobody can be answered for, logging the first few and then
//  every thousandth so a flood of garbage cannot flood the log too.
static void
s_drop (bus_writer_t *self, const char *why, size_t size)
{
    uint64_t n = atomic_fetch_add (&self->dropped, 1) + 1;
    if (n <= 10 || n % 1000 == 0)
        zsys_warning ("writer: dropped intake frame (%zu bytes): %s "
                      "[%" PRIu64 " dropped so far]",
                      size, why, n);
}

//  Take every queued frame, up to batch_max, without waiting.  Multipart
//  messages are not part of the protocol and are dropped whole.
static void
s_batch_collect (bus_writer_t *self, s_batch_t *batch)
{
    void *sock = zsock_resolve (self->intake);
    batch->count = 0;
    while (batch->count < (size_t) self->config.batch_max) {
        zmq_msg_t *msg = &batch->raw[batch->count];
        zmq_msg_init (msg);
        if (zmq_msg_recv (msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (msg);
            break;
        }
        if (!zmq_msg_more (msg)) {
            batch->count++;
            continue;
        }
        size_t size = zmq_msg_size (msg);
        while (zmq_msg_more (msg))
            if (zmq_msg_recv (msg, sock, 0) < 0)
                break;
        zmq_msg_close (msg);
        s_drop (self, "multipart message", size);
    }
}

static void
s_batch_release (s_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++)
        zmq_msg_close (&batch->raw[i]);
    batch->count = 0;
    zlistx_purge (batch->events);
    zlistx_purge (batch->acks);
}

//  ---------------------------------------------------------------------
//  Applying one command inside the batch's write transaction

//  Queue a committed-to-be event for publishing on its table's topic.
static void
s_queue_event (const bus_event_t *event, zframe_t **body, void *arg)
{
    s_batch_t *batch = (s_batch_t *) arg;
    char topic[BUS_TOPIC_MAX];
    if (event->type == BUS_EVENT_MENU_ITEM)
        snprintf (topic, sizeof topic, "%s", BUS_TOPIC_MENU);
    else
        bus_topic_event (topic, sizeof topic,
                         event->type == BUS_EVENT_CART ? event->cart.table
                                                       : event->order.table);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    zmsg_append (msg, body);   //  the bytes the log holds: encoded once
    //  The history it is published under, which the log's bytes cannot
    //  say: they were written once, under the epoch of their day
    zmsg_addmem (msg, zframe_data (batch->epoch), zframe_size (batch->epoch));
    zlistx_add_end (batch->events, msg);
}

static void
s_queue_ack (s_batch_t *batch, const char *origin)
{
    char topic[BUS_TOPIC_MAX];
    if (bus_topic_ack (topic, sizeof topic, origin) != 0)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, topic);
    //  Whose answer it is: a gateway refuses one of an epoch older than
    //  the newest it heard (a deposed writer's), and the order is retried
    batch->ack.writer = *batch->writer;
    zframe_t *body = bus_ack_encode (&batch->ack);
    zmsg_append (msg, &body);
    zlistx_add_end (batch->acks, msg);
}

//  ---------------------------------------------------------------------
//  Who sent it: with CURVE on, every message carries its sender's key
//  (the ZAP handler set it as the User-Id), and the allow-list says whose it is.

//  printable ASCII as it is, anything else as \xNN, cut at 64 bytes: what
//  a peer sent goes into a log line only this way
static const char *
s_escape (const char *text, char *out, size_t cap)
{
    size_t at = 0;
    for (size_t i = 0; text[i] && at + 8 < cap && i < 64; i++) {
        unsigned char c = (unsigned char) text[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[at++] = (char) c;
        else
            at += (size_t) snprintf (out + at, cap - at, "\\x%02x", c);
    }
    out[at] = '\0';
    return out;
}

//  The sender of a message with CURVE on, NULL if unknown (never, past
//  the ZAP handler, unless the link is inproc, where there is no
//  handshake, or no handler answered: the token tells, bus_curve_sender)
static const bus_curve_peer_t *
s_sender (bus_writer_t *self, const zmq_msg_t *raw)
{
    return bus_curve_sender (self->curve, zmq_msg_gets (raw, "User-Id"),
                             zmq_msg_gets (raw, BUS_CURVE_ZAP_TOKEN));
}

//  True if sender may have the writer apply cmd: a gateway's key, under
//  its own name.  Plaintext links have no senders to check.
static bool
s_may_command (bus_writer_t *self, const bus_curve_peer_t *sender,
               const bus_cmd_t *cmd)
{
    return !bus_curve_enabled (self->curve)
           || (sender && sender->role == BUS_CURVE_GATEWAY
               && streq (sender->name, cmd->origin));
}

//  Count and log a refused command (the first few, then every 1000th);
//  a gateway that claimed another's origin is told on its own topic.
static void
s_refuse_sender (bus_writer_t *self, s_batch_t *batch,
                 const bus_curve_peer_t *sender, const bus_cmd_t *cmd)
{
    char origin[300];
    s_escape (cmd->origin, origin, sizeof origin);
    uint64_t n = atomic_fetch_add (&self->refused, 1) + 1;
    if (n <= 10 || n % 1000 == 0)
        zsys_warning ("writer: refused a command with origin '%s' from %s "
                      "'%s': %s [%" PRIu64 " refused so far]",
                      origin,
                      sender ? bus_curve_role_name (sender->role) : "peer",
                      sender ? sender->name : "unknown",
                      sender && sender->role == BUS_CURVE_GATEWAY
                          ? "a gateway commands under its own name only"
                          : "only gateways send commands",
                      n);
    if (!sender || sender->role != BUS_CURVE_GATEWAY)
        return;   //  nobody to tell: acks go to gateways
    memset (&batch->ack, 0, sizeof batch->ack);
    memcpy (batch->ack.key, cmd->key, sizeof batch->ack.key);
    batch->ack.fingerprint = bus_cmd_fingerprint (cmd);
    batch->ack.status = BUS_ERR_FORBIDDEN;
    bus_error_set (batch->ack.error, sizeof batch->ack.error, 0,
                   "origin '%s' is not this gateway's name '%s' (its "
                   "certificate); nothing was committed",
                   origin, sender->name);
    s_queue_ack (batch, sender->name);
}

//  A command that reads (bus_cmd_read) but breaks a rule of
//  bus_cmd_check (why): nothing of it is applied.  Its sender is told why
//  in an ack, as for any refusal, when it named a key and an origin an
//  ack can carry; otherwise it is dropped like an unreadable frame.  A
//  gateway never sends one (its JSON layer checks the same rules): this
//  is a peer that does not speak for a pad, so the log is kept short.
static void
s_refuse_invalid (bus_writer_t *self, s_batch_t *batch, const char *why,
                  size_t size)
{
    const bus_cmd_t *cmd = &batch->cmd;
    if (!bus_valid_key (cmd->key) || !bus_valid_node (cmd->origin)) {
        s_drop (self, why, size);
        return;
    }
    uint64_t n = atomic_fetch_add (&self->refused, 1) + 1;
    if (n <= 10 || n % 1000 == 0)
        zsys_warning ("writer: refused an intake command from '%s': %s "
                      "[%" PRIu64 " refused so far]",
                      cmd->origin, why, n);
    bus_ack_t *ack = &batch->ack;
    memcpy (ack->key, cmd->key, sizeof ack->key);
    ack->fingerprint = bus_cmd_fingerprint (cmd);
    ack->status = BUS_ERR_INVALID;
    ack->duplicate = false;
    snprintf (ack->error, sizeof ack->error, "%s", why);
    s_queue_ack (batch, cmd->origin);
}

static bool s_sync_mode (bus_writer_t *self);

//  True while the synchronous replica is not confirming and acks are
//  refused for it: under sync_fallback refuse, and under async too while
//  the member has not yet named this node the standby in etcd (it may
//  not acknowledge without its standby before that: may_go_async is
//  tried again each sync timeout, s_sync_release)
static bool
s_sync_refusing (bus_writer_t *self)
{
    return self->sync_down
           && !(streq (self->config.sync_fallback, "async")
                && self->async_named);
}

//  While the synchronous replica is not confirming under refuse, a new
//  command is not applied (a client that retries with a fresh key, as
//  the seed-compatible routes do, would commit an order per retry, all
//  reaching the kitchen once the replica is back): only a command whose
//  key is known goes on, to get its held duplicate answer.  True if
//  refused, its 503 queued.
static bool
s_sync_refuses_new (bus_writer_t *self, s_batch_t *batch)
{
    const bus_cmd_t *cmd = &batch->cmd;
    uint64_t fingerprint, seq;
    if (!s_sync_refusing (self)
        || bus_store_key_get (self->store, cmd->key, &fingerprint, &seq) == 0)
        return false;
    bus_ack_t *ack = &batch->ack;
    memset (ack, 0, sizeof *ack);
    memcpy (ack->key, cmd->key, sizeof ack->key);
    ack->fingerprint = bus_cmd_fingerprint (cmd);
    ack->status = BUS_ERR_UNAVAILABLE;
    snprintf (ack->error, sizeof ack->error,
              "synchronous replica %s not confirming; nothing was committed: "
              "retry",
              self->config.sync_replica);
    atomic_fetch_add (&self->sync_refused, 1);
    s_queue_ack (batch, cmd->origin);
    return true;
}

//  Apply frame i; returns 0 or a storage error that fails the batch.
static int
s_apply (bus_writer_t *self, s_batch_t *batch, size_t i, int64_t now)
{
    zmq_msg_t *raw = &batch->raw[i];
    bus_cmd_t *cmd = &batch->cmd;
    char why[BUS_ERROR_MAX];
    int rc = bus_cmd_read (zmq_msg_data (raw), zmq_msg_size (raw), cmd);
    if (rc != 0) {
        s_drop (self, bus_strerror (rc), zmq_msg_size (raw));
        return 0;
    }
    if (bus_curve_enabled (self->curve)) {
        const bus_curve_peer_t *sender = s_sender (self, raw);
        if (!s_may_command (self, sender, cmd)) {
            s_refuse_sender (self, batch, sender, cmd);
            return 0;
        }
    }
    if (bus_cmd_check (cmd, why, sizeof why) != 0) {
        s_refuse_invalid (self, batch, why, zmq_msg_size (raw));
        return 0;
    }
    atomic_fetch_add (&self->commands, 1);
    if (s_sync_mode (self) && s_sync_refuses_new (self, batch))
        return 0;
    rc = bus_ledger_apply (self->ledger, cmd, now, &batch->ack, s_queue_event,
                           batch);
    if (rc == 0)
        s_queue_ack (batch, cmd->origin);
    return rc;
}

static bool s_may_publish (bus_writer_t *self);

//  Tell every decodable command of a failed batch that nothing was
//  committed, so its gateway answers 503 and the pad retries.
static void
s_batch_nack (bus_writer_t *self, s_batch_t *batch, int status)
{
    zlistx_purge (batch->events);
    zlistx_purge (batch->acks);
    for (size_t i = 0; i < batch->count; i++) {
        zmq_msg_t *raw = &batch->raw[i];
        if (bus_cmd_decode (zmq_msg_data (raw), zmq_msg_size (raw), &batch->cmd)
                != 0
            || !s_may_command (self, s_sender (self, raw), &batch->cmd))
            continue;   //  a refused command was answered (or not) already
        memcpy (batch->ack.key, batch->cmd.key, sizeof batch->ack.key);
        batch->ack.fingerprint = bus_cmd_fingerprint (&batch->cmd);
        batch->ack.status = status;
        batch->ack.duplicate = false;
        if (!s_may_publish (self))
            snprintf (batch->ack.error, sizeof batch->ack.error,
                      "not the primary any more; nothing was committed, "
                      "retry with the same key");
        else
            snprintf (batch->ack.error, sizeof batch->ack.error,
                      "the request could not be stored; nothing was "
                      "committed, retry with the same key");
        s_queue_ack (batch, batch->cmd.origin);
    }
}

//  One write transaction over the whole batch.  A full map is grown and
//  the batch redone from scratch; any other storage failure nacks it.
static int
s_batch_commit (bus_writer_t *self, s_batch_t *batch)
{
    int64_t now = zclock_time ();
    int rc = bus_store_begin (self->store);
    for (size_t i = 0; rc == 0 && i < batch->count; i++)
        rc = s_apply (self, batch, i, now);
    if (rc == 0)
        rc = bus_store_commit (self->store);
    else
        bus_store_abort (self->store);
    return rc;
}

//  ---------------------------------------------------------------------
//  The storage state: set from every batch's commit (and, while it is not
//  ok, from a probe each heartbeat), logged once per change rather than
//  per batch, carried on every heartbeat, so that gateways and edges
//  answer /healthz 503 while nothing can be committed.

static void s_heartbeat (bus_writer_t *self);

//  What a commit's rc says of the storage; on a change, log it and tell
//  the nodes at once.  batch: a batch's commit (counted in
//  storage_failures when it failed), not a probe.
static void
s_storage_note (bus_writer_t *self, int rc, bool batch)
{
    char why[128] = "";
    bus_storage_t now = BUS_STORAGE_OK;
    if (rc != 0) {
        now = bus_store_storage (self->store, why, sizeof why);
        if (now == BUS_STORAGE_OK) {   //  failed before its commit
            now = BUS_STORAGE_FAILING;
            bus_strlcpy (why, bus_strerror (rc), sizeof why);
        }
        why[0] = (char) tolower ((unsigned char) why[0]);   //  mid-sentence
    }
    bus_storage_t was = (bus_storage_t) atomic_load (&self->storage);
    if (now == was)
        return;
    atomic_store (&self->storage, (int) now);
    uint64_t failures = atomic_load (&self->storage_failures);
    if (now == BUS_STORAGE_OK)
        zsys_info ("writer: storage ok again after %" PRIu64 " failed commits",
                   failures - self->failures_then);
    else if (now == BUS_STORAGE_FULL)
        zsys_error ("writer: storage full (%s): nothing is committed until "
                    "space is freed; orders get 503",
                    why);
    else
        zsys_error ("writer: storage failing (%s): nothing is committed "
                    "until it works again; orders get 503",
                    why);
    if (was == BUS_STORAGE_OK)
        self->failures_then = failures - (batch ? 1 : 0);
    s_heartbeat (self);
}

//  While the storage is not ok, try it once a heartbeat with a write
//  that changes nothing: /healthz comes back with the disk, not only
//  with the next order (which a load balancer that believed /healthz
//  would never send).
static void
s_storage_probe (bus_writer_t *self)
{
    if (atomic_load (&self->storage) == BUS_STORAGE_OK)
        return;
    int rc = bus_store_probe (self->store);
    if (rc != 0)
        bus_store_reopen (self->store);
    s_storage_note (self, rc, false);
}

//  Synchronous mode, below
static bool s_sync_mode (bus_writer_t *self);
static void s_refuse_acks (bus_writer_t *self, zlistx_t *list);
static void s_sync_hold (bus_writer_t *self, s_batch_t *batch);
static void s_send_list (bus_writer_t *self, zlistx_t *list);

static void
s_batch_run (bus_writer_t *self, s_batch_t *batch)
{
    s_batch_collect (self, batch);
    if (batch->count == 0)
        return;
    if (!s_may_publish (self)) {
        //  Deposed: nothing new is committed, every command gets 503
        s_batch_nack (self, batch, BUS_ERR_UNAVAILABLE);
        s_send_list (self, batch->acks);
        s_batch_release (batch);
        return;
    }
    int rc = s_batch_commit (self, batch);
    while (rc == BUS_ERR_MAP_FULL) {
        zlistx_purge (batch->events);
        zlistx_purge (batch->acks);
        bus_ledger_reload (self->ledger);
        if (bus_store_grow (self->store) != 0)
            break;
        atomic_fetch_add (&self->grows, 1);
        rc = s_batch_commit (self, batch);
    }
    if (rc != 0) {
        atomic_fetch_add (&self->storage_failures, 1);
        s_batch_nack (self, batch, BUS_ERR_UNAVAILABLE);
        //  After a failed write LMDB may refuse every later transaction
        //  (MDB_PANIC); what is on disk is the last good commit, and the
        //  menu in memory may hold an 86 that never reached it.
        bus_store_reopen (self->store);
        bus_ledger_reload (self->ledger);
    } else {
        atomic_fetch_add (&self->batches, 1);
        atomic_fetch_add (&self->committed, zlistx_size (batch->events));
    }
    s_storage_note (self, rc, true);
    //  Events before acks: a gateway's client may look for its order on a
    //  subscriber as soon as it has the ack.  A failed batch's nacks go
    //  at once: nothing of it was committed
    if (rc == 0 && s_sync_mode (self))
        s_sync_hold (self, batch);
    else if (rc == 0 && !s_may_publish (self)) {
        //  The lease went during the commit: the batch is this node's
        //  unacknowledged tail, discarded when it rejoins
        zlistx_purge (batch->events);
        s_refuse_acks (self, batch->acks);
    } else {
        s_send_list (self, batch->events);
        s_send_list (self, batch->acks);
        if (rc == 0)
            self->published_seq = bus_store_last_seq (self->store);
    }
    //  In synchronous mode only s_sync_release releases: a lone writer's
    //  start hold (released 0, published its last seq) must stay until
    //  the replica confirms, whatever batch comes first (even a refused
    //  one), or reads and read replicas get the last run's unconfirmed
    //  tail
    if (!s_sync_mode (self))
        atomic_store (&self->released_seq, self->published_seq);
    s_batch_release (batch);
}

//  ---------------------------------------------------------------------
//  Synchronous mode (writer/sync_replica; docs/replication.md): a batch's
//  events and acks go out only once the named replica has confirmed its
//  last seq durable.  Batches keep being committed meanwhile (both sides
//  group-commit: one round trip per batch, not per order), and are
//  released in commit order.  Past writer/sync_timeout_ms without the
//  confirmation the replica is "not confirming": with sync_fallback
//  refuse, every held and new ack is turned into a 503 (the commands ARE
//  committed here: a retry with the same key finds its key, and its ack,
//  a duplicate carrying the original event, is held like any other until
//  the replica confirms, so it is acknowledged exactly once); the events
//  stay held until confirmed, so no subscriber sees what the replica may
//  not have.  With sync_fallback async, everything goes out without it.

typedef struct {
    uint64_t need;           //  the store's last seq after this batch: every
                             //  event and ack in it refers to one at or below
    uint64_t menu_version;   //  the store's menu version after it
    int64_t committed_ms;    //  zclock_mono at its commit
    zlistx_t *events, *acks;
} s_held_t;

static void
s_held_destroy (void **item)
{
    s_held_t *held = (s_held_t *) *item;
    zlistx_destroy (&held->events);
    zlistx_destroy (&held->acks);
    free (held);
    *item = NULL;
}

static bool
s_sync_mode (bus_writer_t *self)
{
    return self->repl && *self->config.sync_replica;
}

static void
s_send_list (bus_writer_t *self, zlistx_t *list)
{
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlistx_detach (list, NULL)))
        zmsg_send (&msg, self->events);
}

//  Turn every ack of list into a 503 and send it.
static void
s_refuse_acks (bus_writer_t *self, zlistx_t *list)
{
    bus_ack_t *ack = malloc (sizeof *ack);
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlistx_detach (list, NULL))) {
        char *topic = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        bool decoded =
            ack && topic && body
            && bus_ack_decode (zframe_data (body), zframe_size (body), ack)
                   == 0;
        if (decoded && ack->status != 0) {   //  a refusal already: as it is
            zmsg_t *out = zmsg_new ();
            zmsg_addstr (out, topic);
            zmsg_append (out, &body);
            zmsg_send (&out, self->events);
        } else if (decoded) {
            ack->status = BUS_ERR_UNAVAILABLE;
            ack->duplicate = false;
            if (!s_may_publish (self))
                snprintf (ack->error, sizeof ack->error,
                          "not the primary any more: retry with the same "
                          "key");
            else
                snprintf (ack->error, sizeof ack->error,
                          "synchronous replica %s not confirming; nothing "
                          "is acknowledged without it: retry with the same "
                          "key",
                          self->config.sync_replica);
            zframe_t *refusal = bus_ack_encode (ack);
            zmsg_t *out = zmsg_new ();
            zmsg_addstr (out, topic);
            zmsg_append (out, &refusal);
            zmsg_send (&out, self->events);
            atomic_fetch_add (&self->sync_refused, 1);
        }
        free (topic);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    free (ack);
}

//  A lone writer always may; a group member only while its lease holds
//  (bus_leader_is_leader: checked right before what it guards goes out).
static bool
s_may_publish (bus_writer_t *self)
{
    return !self->lead.may_publish || self->lead.may_publish (self->lead.arg);
}

static int
s_no_change (const bus_store_change_t *change, void *arg)
{
    (void) change;
    (void) arg;
    return 0;
}

//  The store's menu version now (read from its meta page, not the
//  document); 0 if it cannot be read: the menu is then held until a later
//  batch's release.
static uint64_t
s_menu_version (bus_writer_t *self)
{
    uint64_t last = 0, version = 0;
    if (bus_store_changes (self->store, bus_store_last_seq (self->store) + 1, 0,
                           s_no_change, NULL, &last, &version)
        != 0)
        return 0;
    return version;
}

//  Keep a committed batch's events and acks until the replica confirms.
static void
s_sync_hold (bus_writer_t *self, s_batch_t *batch)
{
    s_held_t *held = calloc (1, sizeof *held);
    if (held) {
        held->events = zlistx_new ();
        held->acks = zlistx_new ();
    }
    if (!held || !held->events || !held->acks) {
        //  nothing acknowledged without the replica: not even when out
        //  of memory (the events go out when the next batch's do not)
        s_refuse_acks (self, batch->acks);
        if (held)
            s_held_destroy ((void **) &held);
        return;
    }
    zlistx_set_destructor (held->events, s_msg_destructor);
    zlistx_set_destructor (held->acks, s_msg_destructor);
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlistx_detach (batch->events, NULL)))
        zlistx_add_end (held->events, msg);
    while ((msg = (zmsg_t *) zlistx_detach (batch->acks, NULL)))
        zlistx_add_end (held->acks, msg);
    held->need = bus_store_last_seq (self->store);
    held->menu_version = s_menu_version (self);
    held->committed_ms = zclock_mono ();
    if (s_sync_refusing (self))
        s_refuse_acks (self, held->acks);
    //  Nothing left to hold (refusing: every ack sent, nothing new
    //  committed): no entry, so refusing adds none
    if (zlistx_size (held->events) == 0 && zlistx_size (held->acks) == 0)
        s_held_destroy ((void **) &held);
    else
        zlistx_add_end (self->held, held);
}

static void
s_sync_state (bus_writer_t *self, bool down, uint64_t confirmed)
{
    if (down == self->sync_down)
        return;
    self->sync_down = down;
    atomic_store (&self->sync_down_now, down);
    if (down)
        self->async_from = bus_store_last_seq (self->store);
    if (!down)
        atomic_fetch_add (&self->sync_recovered, 1);
    if (!down)
        zsys_info ("writer: synchronous replica %s confirming again at seq "
                   "%" PRIu64,
                   self->config.sync_replica, confirmed);
    else if (streq (self->config.sync_fallback, "async"))
        zsys_error ("writer: SYNCHRONOUS REPLICA %s NOT CONFIRMING for %d ms: "
                    "acknowledging WITHOUT it (writer/sync_fallback = async); "
                    "an acknowledged order may be lost with this host's disk "
                    "until it catches up",
                    self->config.sync_replica, self->config.sync_timeout_ms);
    else
        zsys_error ("writer: synchronous replica %s not confirming for %d ms: "
                    "orders get 503 until it does (writer/sync_fallback = "
                    "refuse)",
                    self->config.sync_replica, self->config.sync_timeout_ms);
}

//  Release what the replica confirmed, in order; past the timeout, turn
//  the replica "not confirming" and act on writer/sync_fallback.
static void
s_sync_release (bus_writer_t *self)
{
    uint64_t confirmed;
    bool heard = bus_writer_repl_confirmed (
        self->repl, self->config.sync_replica, &confirmed);
    atomic_store (&self->sync_confirmed, heard ? confirmed : 0);
    bool async =
        streq (self->config.sync_fallback, "async") && self->async_named;
    s_held_t *held;
    //  One check per release: a deposed writer lets nothing out (its
    //  member stops it soon; the held batches are its unacknowledged tail)
    if (zlistx_first (self->held) && !s_may_publish (self))
        return;
    while ((held = (s_held_t *) zlistx_first (self->held))
           && (held->need <= confirmed || (self->sync_down && async))) {
        s_send_list (self, held->events);
        s_send_list (self, held->acks);
        self->published_seq = held->need;
        atomic_store (&self->released_seq, held->need);
        if (held->menu_version > self->released_menu)
            self->released_menu = held->menu_version;
        zlistx_delete (self->held, zlistx_cursor (self->held));
        if (self->sync_down && !async)
            s_sync_state (self, false, confirmed);
    }
    //  Back once it holds the first batch acknowledged without it (under
    //  steady intake it may never reach the last seq at a check): held
    //  again from the next batch on
    if (self->sync_down && async && confirmed > self->async_from) {
        zsys_info ("writer: synchronous replica %s holds seq %" PRIu64
                   ", past where acks went on without it (%" PRIu64
                   "): holding acks for it again",
                   self->config.sync_replica, confirmed, self->async_from);
        s_sync_state (self, false, confirmed);
    }
    //  Under async, a member that could not name itself the standby
    //  (etcd slow or away) refuses meanwhile, and asks again each timeout
    if (self->sync_down && !self->async_named && self->lead.may_go_async
        && streq (self->config.sync_fallback, "async")
        && zclock_mono () - self->async_asked_ms
               > self->config.sync_timeout_ms) {
        self->async_asked_ms = zclock_mono ();
        self->async_named = self->lead.may_go_async (self->lead.arg);
        if (self->async_named) {
            s_sync_release (self);
            return;
        }
    }
    held = (s_held_t *) zlistx_first (self->held);
    if (held && !self->sync_down
        && zclock_mono () - held->committed_ms > self->config.sync_timeout_ms) {
        //  A member acknowledges without its standby only once etcd no
        //  longer names that standby, which lacks what is acked next
        self->async_asked_ms = zclock_mono ();
        self->async_named = !self->lead.may_go_async
                            || self->lead.may_go_async (self->lead.arg);
        async =
            streq (self->config.sync_fallback, "async") && self->async_named;
        s_sync_state (self, true, confirmed);
        if (async) {
            s_sync_release (self);
            return;
        }
        for (held = zlistx_first (self->held); held;
             held = zlistx_next (self->held))
            s_refuse_acks (self, held->acks);
    }
}

//  ---------------------------------------------------------------------
//  Retention: on the intake thread, the store's one writer, between
//  batches, one small transaction at a time (S_PRUNE_MAX keys and as
//  many events), so no batch waits for more than one of them.

//  One line a minute at most, with what was pruned since the last.
static void
s_prune_report (bus_writer_t *self, const bus_store_pruned_t *pruned)
{
    self->prune_events += pruned->events;
    self->prune_keys += pruned->keys;
    int64_t now = zclock_mono ();
    if ((self->prune_events == 0 && self->prune_keys == 0)
        || (self->prune_logged_ms
            && now - self->prune_logged_ms < S_PRUNE_LOG_MS))
        return;
    //  keys go with their events at the latest: with a log kept for ever
    //  there are no events to say anything of
    if (self->config.retain_days)
        zsys_info ("writer: retention pruned %" PRIu64 " events older than "
                   "%d days (the log now starts at seq %" PRIu64
                   ") and %" PRIu64 " idempotency keys older than %d days",
                   self->prune_events, self->config.retain_days,
                   pruned->first_seq, self->prune_keys,
                   self->config.key_retain_days);
    else
        zsys_info ("writer: retention pruned %" PRIu64 " idempotency keys "
                   "older than %d days (the log is kept for ever)",
                   self->prune_keys, self->config.key_retain_days);
    self->prune_events = self->prune_keys = 0;
    self->prune_logged_ms = now;
}

//  One prune transaction.  True if more is left to prune at once.
static bool
s_prune (bus_writer_t *self)
{
    const bus_config_t *config = &self->config;
    if (!config->retain_days && !config->key_retain_days)
        return false;
    int64_t now = zclock_time ();
    int64_t log_before =
        config->retain_days ? now - config->retain_days * S_DAY_MS : 0;
    int64_t keys_before =
        config->key_retain_days ? now - config->key_retain_days * S_DAY_MS : 0;
    bus_store_pruned_t pruned;
    int rc = bus_store_begin (self->store);
    if (rc == 0) {
        rc = bus_store_prune (self->store, log_before, keys_before, S_PRUNE_MAX,
                              &pruned);
        if (rc == 0)
            rc = bus_store_commit (self->store);
        else
            bus_store_abort (self->store);
    }
    if (rc == BUS_ERR_MAP_FULL && bus_store_grow (self->store) == 0) {
        atomic_fetch_add (&self->grows, 1);
        return true;
    }
    if (rc != 0) {   //  tried again in a minute
        zsys_error ("writer: retention could not prune: %s", bus_strerror (rc));
        bus_store_reopen (self->store);
        return false;
    }
    atomic_fetch_add (&self->pruned_events, pruned.events);
    atomic_fetch_add (&self->pruned_keys, pruned.keys);
    s_prune_report (self, &pruned);
    return pruned.more;
}

//  ---------------------------------------------------------------------
//  Intake thread

static void
s_heartbeat (bus_writer_t *self)
{
    if (!s_may_publish (self))
        return;   //  a deposed member's writer says nothing any more
    //  In synchronous mode, what was published: the seq of a batch held
    //  for the replica is not yet one that subscribers may ask for
    uint64_t seq = s_sync_mode (self) ? self->published_seq
                                      : bus_store_last_seq (self->store);
    bus_heartbeat_t hb = { seq, zclock_time (), self->epoch,
                           (bus_storage_t) atomic_load (&self->storage),
                           s_sync_refusing (self) };
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, BUS_TOPIC_HEARTBEAT);
    zframe_t *body = bus_heartbeat_encode (&hb);
    zmsg_append (msg, &body);
    zmsg_send (&msg, self->events);
}

static bool
s_pipe_says_term (zsock_t *pipe)
{
    zmsg_t *msg = zmsg_recv (pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    bool term = !command || streq (command, "$TERM");
    free (command);
    zmsg_destroy (&msg);
    return term;
}

static void
s_intake_actor (zsock_t *pipe, void *args)
{
    bus_writer_t *self = (bus_writer_t *) args;
    s_batch_t *batch = s_batch_new ((size_t) self->config.batch_max);
    if (batch) {
        batch->epoch = self->epoch_frame;
        batch->writer = &self->epoch;
    }
    zpoller_t *poller = zpoller_new (pipe, self->intake, NULL);
    zsock_t *repl = self->repl ? bus_writer_repl_socket (self->repl) : NULL;
    if (poller && repl)
        zpoller_add (poller, repl);
    zpoller_set_nonstop (poller, true);   //  stop on $TERM only
    zsock_signal (pipe, batch ? 0 : -1);
    int64_t next_beat = zclock_mono (), next_prune = next_beat;
    bool more = false;   //  a replica is behind: turn again at once
    while (batch) {
        int64_t until = next_beat < next_prune ? next_beat : next_prune;
        int64_t wait = more ? 0 : until - zclock_mono ();
        //  held batches time out: look at them often enough
        if (self->held && zlistx_size (self->held) && wait > 10)
            wait = 10;
        void *which = zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe && s_pipe_says_term (pipe))
            break;
        if (which == self->intake)
            s_batch_run (self, batch);
        if (repl) {
            bus_writer_repl_recv (self->repl);
            //  Released first: other replicas get only what is released
            if (s_sync_mode (self))
                s_sync_release (self);
            more = bus_writer_repl_pump (
                self->repl,
                s_sync_mode (self) ? atomic_load (&self->released_seq)
                                   : UINT64_MAX,
                s_sync_mode (self) ? self->released_menu : UINT64_MAX);
        }
        //  A backlog goes one transaction per turn, each after a batch
        if (zclock_mono () >= next_prune)
            next_prune =
                zclock_mono () + (s_prune (self) ? 0 : S_PRUNE_EVERY_MS);
        if (zclock_mono () >= next_beat) {
            s_storage_probe (self);
            s_heartbeat (self);
            if (repl)
                bus_writer_repl_summarize (self->repl);
            next_beat = zclock_mono () + self->config.heartbeat_ms;
        }
    }
    zpoller_destroy (&poller);
    s_batch_destroy (&batch);
}

//  ---------------------------------------------------------------------
//  Sync thread: answers queries from read transactions

static void
s_peer_destructor (void **item)
{
    free (*item);
    *item = NULL;
}

//  A ping's role and name go into the peer table and the log: a known
//  role and a name of printable ASCII without spaces, or the ping is
//  refused (a name with a newline would forge a log line).
static bool
s_peer_valid (const bus_sync_req_t *req)
{
    if (!streq (req->role, "gateway") && !streq (req->role, "edge")
        && !streq (req->role, "replica"))
        return false;
    for (const char *c = req->name; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            return false;
    return *req->name != '\0';
}

//  Room for one more peer?  A full table forgets the peer gone longest;
//  with none gone, the new one is not tracked (it is still answered).
static bool
s_peer_room (bus_writer_t *self)
{
    if (zhashx_size (self->peers) < BUS_WRITER_PEERS_MAX)
        return true;
    const char *oldest = NULL;
    int64_t oldest_ms = INT64_MAX;
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (peer->gone && peer->last_ms < oldest_ms) {
            oldest = (const char *) zhashx_cursor (self->peers);
            oldest_ms = peer->last_ms;
        }
    if (oldest) {
        zhashx_delete (self->peers, oldest);
        return true;
    }
    int64_t now = zclock_mono ();
    if (now - self->peers_full_logged_ms >= S_PEERS_FULL_LOG_MS) {
        zsys_warning ("writer: %d peers are live already: pings from new "
                      "ones are answered but not tracked",
                      BUS_WRITER_PEERS_MAX);
        self->peers_full_logged_ms = now;
    }
    return false;
}

//  A peer pinged: with CURVE on it is known by its certificate's role and
//  name, whatever the ping claims, so the table holds at most one entry
//  per allowed key; without, by what the ping says, checked.
static int
s_sync_ping (bus_writer_t *self, const bus_sync_req_t *req,
             const bus_curve_peer_t *sender)
{
    if (!sender && !s_peer_valid (req))
        return BUS_ERR_INVALID;
    char id[BUS_NAME_MAX + 20];
    if (sender)
        snprintf (id, sizeof id, "%s %s", bus_curve_role_name (sender->role),
                  sender->name);
    else
        snprintf (id, sizeof id, "%s %s", req->role, req->name);
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, id);
    if (!peer) {
        peer = s_peer_room (self) ? calloc (1, sizeof *peer) : NULL;
        if (!peer)
            return 0;
        zhashx_insert (self->peers, id, peer);
        zsys_info ("writer: %s attached", id);
    } else if (peer->gone)
        zsys_info ("writer: %s is back", id);
    peer->last_ms = zclock_mono ();
    peer->gone = false;
    return 0;
}

//  Log every peer that has gone silent since the last look.
static void
s_peers_check (bus_writer_t *self)
{
    int64_t now = zclock_mono ();
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (!peer->gone && now - peer->last_ms > self->config.link_timeout_ms) {
            peer->gone = true;
            zsys_warning ("writer: %s silent for %" PRId64 " ms: gone",
                          (const char *) zhashx_cursor (self->peers),
                          now - peer->last_ms);
        }
}

static json_t *
s_stats_json (bus_writer_t *self)
{
    bus_writer_stats_t stats = bus_writer_stats (self);
    json_t *peers = json_array ();
    int64_t now = zclock_mono ();
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers)) {
        const char *id = (const char *) zhashx_cursor (self->peers);
        const char *space = strchr (id, ' ');
        json_array_append_new (
            peers,
            json_pack ("{s:s%, s:s, s:I, s:b}", "role", id,
                       (size_t) (space - id), "name", space + 1, "age_ms",
                       (json_int_t) (now - peer->last_ms), "gone", peer->gone));
    }
    json_t *json = json_pack (
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "commands",
        (json_int_t) stats.commands, "committed", (json_int_t) stats.committed,
        "duplicates", (json_int_t) stats.duplicates, "rejected",
        (json_int_t) stats.rejected, "dropped", (json_int_t) stats.dropped,
        "batches", (json_int_t) stats.batches, "grows",
        (json_int_t) stats.grows, "storage_failures",
        (json_int_t) stats.storage_failures, "seq",
        (json_int_t) bus_store_last_seq (self->store), "peers", peers);
    //  Retention: what is gone, and where replay can start
    //  Read queries (snapshots, replays, lists...): a replica's take
    //  them off this count (docs/replication.md)
    json_object_set_new (json, "queries",
                         json_integer ((json_int_t) self->queries));
    json_object_set_new (json, "pruned_events",
                         json_integer ((json_int_t) stats.pruned_events));
    json_object_set_new (json, "pruned_keys",
                         json_integer ((json_int_t) stats.pruned_keys));
    json_object_set_new (
        json, "first_seq",
        json_integer ((json_int_t) bus_store_first_seq (self->store)));
    //  Records that failed their checks on read (each answered 500)
    json_object_set_new (
        json, "damaged_reads",
        json_integer ((json_int_t) bus_store_damaged (self->store)));
    //  Who was kept out: messages from allowed keys that their role does
    //  not allow, and handshakes refused (unknown key, not CURVE)
    json_object_set_new (json, "refused",
                         json_integer ((json_int_t) stats.refused));
    json_object_set_new (json, "links_refused",
                         json_integer ((json_int_t) stats.links_refused));
    json_object_set_new (json, "curve",
                         json_boolean (bus_curve_enabled (self->curve)));
    //  ok, failing or full: what the last commit found
    json_object_set_new (json, "storage",
                         json_string (bus_storage_name (stats.storage)));
    //  Replication: the replicas, their lag, the synchronous one's state
    if (self->repl) {
        json_t *repl = json_pack (
            "{s:o, s:I, s:I}", "replicas", bus_writer_repl_json (self->repl),
            "dropped", (json_int_t) bus_writer_repl_dropped (self->repl),
            "refused", (json_int_t) bus_writer_repl_refused (self->repl));
        if (*self->config.sync_replica)
            json_object_set_new (
                repl, "sync",
                json_pack ("{s:s, s:s, s:s, s:I}", "replica",
                           self->config.sync_replica, "state",
                           atomic_load (&self->sync_down_now) ? "not confirming"
                                                              : "confirming",
                           "fallback", self->config.sync_fallback, "refused",
                           (json_int_t) atomic_load (&self->sync_refused)));
        json_object_set_new (json, "replication", repl);
    }
    return json;
}

static int
s_sync_stats (bus_writer_t *self, zmsg_t *items)
{
    json_t *stats = s_stats_json (self);
    char *text = stats ? json_dumps (stats, JSON_COMPACT) : NULL;
    json_decref (stats);
    if (!text)
        return BUS_ERR_NOMEM;
    zmsg_addstr (items, text);
    free (text);
    return 0;
}

//  In synchronous mode a read shows only what was released (confirmed
//  by the replica): a replay stops at the released seq; any other answer
//  (read at the store's last seq) waits a moment for its seq's release,
//  else is refused (an edge retries its snapshot), and nothing held is
//  shown that a promoted replica would not have.
#define S_RELEASE_WAIT_MS 200

static void
s_sync_read (bus_writer_t *self, const bus_sync_req_t *req,
             bus_sync_reply_t *reply, zmsg_t *items)
{
    uint64_t released = atomic_load (&self->released_seq);
    bus_sync_req_t capped = *req;
    if (req->op == BUS_SYNC_REPLAY) {
        uint64_t from = req->from ? req->from : 1;
        uint64_t room = released >= from ? released - from + 1 : 0;
        capped.limit = room < req->limit ? (uint32_t) room : req->limit;
        if (capped.limit == 0) {   //  nothing released past from yet
            reply->seq = released;
            reply->next = from;
            return;
        }
    }
    bus_query_answer (self->store, self->config.retain_days, &capped, reply,
                      items);
    if (req->op == BUS_SYNC_REPLAY || reply->status != 0) {
        reply->seq = released < reply->seq ? released : reply->seq;
        return;
    }
    uint64_t need = bus_store_last_seq (self->store);
    int64_t end = zclock_mono () + S_RELEASE_WAIT_MS;
    while (atomic_load (&self->released_seq) < need
           && !atomic_load (&self->sync_down_now) && zclock_mono () < end)
        zclock_sleep (2);
    if (atomic_load (&self->released_seq) >= need)
        return;
    reply->status = BUS_ERR_UNAVAILABLE;
    snprintf (reply->error, sizeof reply->error,
              "synchronous replica %s not confirming: seq %" PRIu64
              " is not released yet; retry",
              self->config.sync_replica, need);
}

//  Run one decoded request from sender (NULL: plaintext); fills reply and
//  items.
static void
s_sync_handle (bus_writer_t *self, const bus_sync_req_t *req,
               const bus_curve_peer_t *sender, bus_sync_reply_t *reply,
               zmsg_t *items)
{
    int rc = 0;
    reply->seq = bus_store_last_seq (self->store);
    if (req->op == BUS_SYNC_PING)
        rc = s_sync_ping (self, req, sender);
    else if (req->op == BUS_SYNC_STATS)
        rc = s_sync_stats (self, items);
    else if (s_sync_mode (self))
        s_sync_read (self, req, reply, items);
    else {
        self->queries++;
        bus_query_answer (self->store, self->config.retain_days, req, reply,
                          items);
        return;
    }
    if (rc != 0) {
        reply->status = rc;
        bus_strlcpy (reply->error, bus_strerror (rc), sizeof reply->error);
    }
}

static void
s_sync_serve (bus_writer_t *self)
{
    zmsg_t *msg = zmsg_recv (self->sync);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *body = zmsg_pop (msg);
    bus_sync_req_t req;
    bus_sync_reply_t reply;
    memset (&reply, 0, sizeof reply);
    int rc =
        body && zmsg_size (msg) == 0
            ? bus_sync_req_decode (zframe_data (body), zframe_size (body), &req)
            : BUS_ERR_MALFORMED;
    zmsg_t *items = zmsg_new ();
    //  Past ZAP every peer is an allowed one; a request without a known
    //  key (an inproc link has no handshake) is answered with nothing
    bool curve = bus_curve_enabled (self->curve);
    const bus_curve_peer_t *sender =
        curve && body
            ? bus_curve_sender (self->curve, zframe_meta (body, "User-Id"),
                                zframe_meta (body, BUS_CURVE_ZAP_TOKEN))
            : NULL;
    //  Another member of a writer group is let in to replicate, not to
    //  query (its standby reads through the replicate socket): the ZAP
    //  handler refuses its key here already; this is the second lock
    if (rc == 0 && curve && (!sender || sender->role == BUS_CURVE_WRITER)) {
        atomic_fetch_add (&self->refused, 1);
        reply.rid = req.rid;
        reply.status = BUS_ERR_FORBIDDEN;
        bus_strlcpy (reply.error,
                     sender ? "a writer member only replicates"
                            : "unknown sender",
                     sizeof reply.error);
    } else if (rc == 0) {
        reply.rid = req.rid;
        s_sync_handle (self, &req, sender, &reply, items);
    } else {
        s_drop (self, "unreadable sync request", body ? zframe_size (body) : 0);
        reply.status = rc;
        bus_strlcpy (reply.error, bus_strerror (rc), sizeof reply.error);
    }
    reply.writer = self->epoch;
    bus_query_send (self->sync, &identity, &reply, &items);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
}

static void
s_sync_actor (zsock_t *pipe, void *args)
{
    bus_writer_t *self = (bus_writer_t *) args;
    zpoller_t *poller = zpoller_new (pipe, self->sync, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    while (true) {
        void *which = zpoller_wait (poller, self->config.heartbeat_ms);
        if (which == pipe && s_pipe_says_term (pipe))
            break;
        if (which == self->sync)
            s_sync_serve (self);
        s_peers_check (self);
    }
    zpoller_destroy (&poller);
}

//  ---------------------------------------------------------------------
//  Construction

//  Make the stored menu the one in config->menu_path, if set and changed
//  since it was last loaded.  0, or -1 with err set.
static int
s_menu_init (bus_writer_t *self, char *err, size_t err_cap)
{
    if (!*self->config.menu_path)
        return 0;
    bus_menu_t *menu = bus_menu_load (self->config.menu_path, err, err_cap);
    if (!menu)
        return -1;
    //  The same file as last time: keep the stored menu and its 86s
    bool same = bus_store_menu_is_source (self->store, bus_menu_json (menu),
                                          bus_menu_json_len (menu));
    int rc = same ? 0
                  : bus_store_menu_put (self->store, bus_menu_json (menu),
                                        bus_menu_json_len (menu));
    bus_menu_destroy (&menu);
    if (rc != 0) {
        snprintf (err, err_cap, "cannot store menu: %s", bus_strerror (rc));
        return -1;
    }
    if (!same)
        zsys_info ("writer: menu loaded from %s", self->config.menu_path);
    return 0;
}

//  Start this run's epoch, durably, before any socket is bound: nothing
//  this writer publishes or answers can be taken for an earlier run's
//  (bus_model.h's bus_epoch_t).  0, or -1 with err set.
static int
s_epoch_init (bus_writer_t *self, char *err, size_t err_cap)
{
    bus_epoch_t was;
    bus_store_epoch (self->store, &was);
    int rc = bus_store_epoch_next_fenced (self->store, self->lead.fence);
    if (rc == 0) {
        bus_store_epoch (self->store, &self->epoch);
        self->epoch_frame = bus_epoch_encode (&self->epoch);
        rc = self->epoch_frame ? 0 : BUS_ERR_NOMEM;
    }
    if (rc != 0) {
        snprintf (err, err_cap, "cannot start a new epoch: %s",
                  bus_strerror (rc));
        return -1;
    }
    zsys_info ("writer: epoch %016" PRIx64 " (was %016" PRIx64
               ") of store identity %s",
               self->epoch.epoch, was.epoch, self->epoch.id);
    if (self->lead.fence)
        zsys_info ("writer: leading group %s as epoch %016" PRIx64
                   ", fencing token %" PRId64,
                   self->config.leader_group, self->epoch.epoch,
                   self->lead.fence);
    return 0;
}

static zsock_t *
s_bind (bus_writer_t *self, int type, int maxmsgsize, int hwm,
        const char *endpoint, const char *name, char *err, size_t err_cap)
{
    //  Options first: libzmq copies them into the listener at bind, and
    //  connections accepted later get that copy, not what is set after
    zsock_t *sock = zsock_new (type);
    if (sock) {
        if (maxmsgsize)
            zsock_set_maxmsgsize (sock, maxmsgsize);
        if (type == ZMQ_PUB)
            zsock_set_sndhwm (sock, hwm);
        else
            zsock_set_rcvhwm (sock, hwm);
        if (bus_curve_server (self->curve, sock, name) != 0) {
            snprintf (err, err_cap, "cannot watch the %s socket", name);
            zsock_destroy (&sock);
            return NULL;
        }
    }
    if (sock && zsock_bind (sock, "%s", endpoint) >= 0)
        return sock;
    snprintf (err, err_cap, "cannot bind %s: %s", endpoint,
              zmq_strerror (zmq_errno ()));
    zsock_destroy (&sock);
    return NULL;
}

//  Socket options chosen on purpose: oversized frames are refused by
//  ZeroMQ itself, and the queues are deep enough to absorb a rush-hour
//  burst while still bounded.  The events socket's is per subscriber
//  (writer/events_queue): past it, libzmq drops that subscriber's
//  messages, never blocks the writer or the others, and the subscriber
//  finds the gap by its sequence numbers and catches up over sync.
static int
s_sockets_init (bus_writer_t *self, char *err, size_t err_cap)
{
    self->intake = s_bind (self, ZMQ_PULL, BUS_FRAME_MAX, 100000,
                           self->config.intake, "intake", err, err_cap);
    self->events = self->intake
                       ? s_bind (self, ZMQ_PUB, 0, self->config.events_queue,
                                 self->config.events, "events", err, err_cap)
                       : NULL;
    self->sync = self->events ? s_bind (self, ZMQ_ROUTER, BUS_FRAME_MAX, 1000,
                                        self->config.sync, "sync", err, err_cap)
                              : NULL;
    if (self->sync && *self->config.replicate)
        self->repl =
            bus_writer_repl_new (&self->config, self->store, self->curve,
                                 &self->epoch, err, err_cap);
    return self->sync && (self->repl || !*self->config.replicate) ? 0 : -1;
}

bus_writer_t *
bus_writer_new (const bus_config_t *config, char *err, size_t err_cap)
{
    return bus_writer_new_led (config, NULL, err, err_cap);
}

bus_writer_t *
bus_writer_new_led (const bus_config_t *config, const bus_writer_lead_t *lead,
                    char *err, size_t err_cap)
{
    bus_writer_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    if (lead)
        self->lead = *lead;
    self->peers = zhashx_new ();
    if (!self->peers) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    zhashx_set_destructor (self->peers, s_peer_destructor);
    //  First: a writer that must not run touches no file, and ZAP must
    //  be there to answer the first peer
    self->curve = bus_curve_new (config, err, err_cap);
    if (!self->curve)
        goto fail;
    int rc;
    self->store = bus_store_open (
        config->data_dir, 0,
        config->accept_restore ? BUS_STORE_ACCEPT_RESTORE : 0, &rc);
    if (!self->store) {
        snprintf (err, err_cap, "cannot open data directory '%s': %s",
                  config->data_dir, bus_strerror (rc));
        goto fail;
    }
    if (s_epoch_init (self, err, err_cap) != 0
        || s_menu_init (self, err, err_cap) != 0
        || s_sockets_init (self, err, err_cap) != 0)
        goto fail;
    self->published_seq = bus_store_last_seq (self->store);
    atomic_store (&self->released_seq, self->published_seq);
    self->released_menu = s_menu_version (self);
    if (*config->sync_replica) {
        self->held = zlistx_new ();
        s_held_t *start = calloc (1, sizeof *start);
        if (start) {
            start->events = zlistx_new ();
            start->acks = zlistx_new ();
        }
        if (!self->held || !start || !start->events || !start->acks) {
            if (start)
                s_held_destroy ((void **) &start);
            snprintf (err, err_cap, "out of memory");
            goto fail;
        }
        zlistx_set_destructor (self->held, s_held_destroy);
        //  What the last run committed may not be on the replica: reads
        //  show none of it until the replica confirms it (its hello).
        //  Not so for a group's leader: its store is the history it won
        //  (a promoted standby's holds what the last leader released, and
        //  more), and /sync names this node until its standby has all of
        //  it (bus_member.c), so no member lacking it can take over; held,
        //  the edges' replays from before the takeover would stop short
        //  with the standby gone
        start->need = self->published_seq;
        start->menu_version = self->released_menu;
        start->committed_ms = zclock_mono ();
        if (self->lead.may_go_async)
            s_held_destroy ((void **) &start);
        else {
            zlistx_add_end (self->held, start);
            atomic_store (&self->released_seq, 0);
            self->released_menu = 0;
        }
        zsys_info ("writer: synchronous replica %s: a batch is acknowledged "
                   "once it confirms it durable (else, after %d ms: %s)",
                   config->sync_replica, config->sync_timeout_ms,
                   streq (config->sync_fallback, "async")
                       ? "ACKNOWLEDGED WITHOUT IT (sync_fallback async)"
                       : "503");
    }
    self->ledger = bus_ledger_new (self->store, config->tax_bp);
    if (!self->ledger) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    self->sync_actor = zactor_new (s_sync_actor, self);
    self->intake_actor = zactor_new (s_intake_actor, self);
    if (!self->sync_actor || !self->intake_actor) {
        snprintf (err, err_cap, "cannot start writer threads");
        goto fail;
    }
    zsys_info ("writer: data %s, last seq %" PRIu64 ", intake %s, events %s, "
               "sync %s, links %s",
               config->data_dir, bus_store_last_seq (self->store),
               config->intake, config->events, config->sync,
               bus_curve_enabled (self->curve) ? "CURVE" : "plaintext");
    return self;
fail:
    bus_writer_destroy (&self);
    return NULL;
}

void
bus_writer_destroy (bus_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_writer_t *self = *self_p;
    //  The intake thread handles $TERM between batches, so no transaction
    //  is open once zactor_destroy returns.
    zactor_destroy (&self->intake_actor);
    zactor_destroy (&self->sync_actor);
    zsock_destroy (&self->intake);
    zsock_destroy (&self->events);
    zsock_destroy (&self->sync);
    bus_writer_repl_destroy (&self->repl);
    zlistx_destroy (&self->held);
    bus_curve_destroy (&self->curve);   //  after its sockets
    bus_ledger_destroy (&self->ledger);
    if (self->store)
        zsys_info ("writer: stopped at seq %" PRIu64,
                   bus_store_last_seq (self->store));
    bus_store_destroy (&self->store);
    zframe_destroy (&self->epoch_frame);
    zhashx_destroy (&self->peers);
    free (self);
    *self_p = NULL;
}

bus_writer_sync_t
bus_writer_sync (bus_writer_t *self)
{
    bus_writer_sync_t sync = { atomic_load (&self->sync_confirmed),
                               bus_store_last_seq (self->store),
                               atomic_load (&self->sync_recovered) };
    return sync;
}

bus_writer_stats_t
bus_writer_stats (bus_writer_t *self)
{
    bus_ledger_stats_t ledger = { 0, 0, 0 };
    if (self->ledger)
        ledger = bus_ledger_stats (self->ledger);
    bus_writer_stats_t stats = {
        atomic_load (&self->commands),
        atomic_load (&self->committed),
        ledger.duplicates,
        ledger.rejected,
        atomic_load (&self->dropped),
        atomic_load (&self->batches),
        atomic_load (&self->grows),
        atomic_load (&self->storage_failures),
        atomic_load (&self->refused),
        bus_curve_refused (self->curve),
        atomic_load (&self->pruned_events),
        atomic_load (&self->pruned_keys),
        (bus_storage_t) atomic_load (&self->storage),
        atomic_load (&self->sync_down_now),
    };
    return stats;
}
