/*  bus_gateway.c — commands to the writer and acks back, queries, menu.

    Threads, and what each owns:

      listener actor  the SUB socket (acks, heartbeats, menu news), the
                      waiters' clock, and every done call
      senders         whoever calls bus_gateway_send/_submit: the
                      libmicrohttpd event thread (orders) and pool
                      threads (seed routes, an order the menu copy does
                      not know), of a gateway node or of `up`
      query callers   any thread: a DEALER borrowed from bus_sync's pool
                      (the writer's, or a replica's: bus_reads.h)
      link pinger     bus_link's own thread and sync client
      destroyer       bus_gateway_destroy, once the listener has stopped:
                      it ends every waiter left, as timed out

    Locks: wait_lock guards the waiter table and the PUSH socket: every
    send, first or resend, is made under it, by a sender or the listener.
    menu_lock guards the menu copy (fetched outside it, one fetch at a
    time).  Counters are atomics.

    Work is handed over as a waiter.  A sender registers it for its key
    and PUSHes its frame, under wait_lock; no thread waits for it.  The
    listener reads acks, takes the waiters whose key and fingerprint
    match out of the table and, with the table unlocked, calls each one's
    done function, which answers through bus_req (a suspended connection
    is resumed; bus_gateway_submit is woken by a semaphore).  The listener also keeps the clock: an unanswered command
    is resent on a doubling schedule, so a command lost with a writer
    restart is still committed (once: the writer dedupes by key) before
    the deadline, and a waiter past its deadline is told so.  Every
    waiter ends in exactly one done call.

    Why the PUSH socket is shared under a lock rather than owned by one
    thread: a single owner would need each command handed to it and its
    thread woken, one more thread hand-off per order, which is what the
    event-driven gateway was built to avoid (bench/notes.md, section 1:
    libmicrohttpd's floor is 4.6 us an order on one thread, 10.1 us when
    a second thread answers; on civetweb, with two sleeps per order, two
    thirds of the gateway's profile was the kernel switching threads).
    Under the lock the thread that parsed the order sends it, and the
    send never blocks; lock waiting was 1.4% of the gateway's time when
    the waiter table came in (section 6c; the send then had a lock of its
    own).  One lock is also what makes a retry safe: registered and sent
    in one critical section, a waiter cannot be answered by its same-key
    twin's ack, and its frame freed, before its own send (72bd3b5, then
    83d79a5 dropped the socket's own lock; unit_gateway races the two).  */

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_menu.h"
#include "orderbus/bus_reads.h"
#include "orderbus/bus_sync.h"
#include "orderbus/bus_topic.h"

#define S_RESEND_FIRST_MS 250    //  first resend of an unacked command
#define S_MENU_FRESH_MS   1000   //  reuse a fetched menu for this long
#define S_WAIT_BUCKETS    1024   //  waiter table size, a power of two
#define S_LISTEN_BATCH    256    //  messages the listener reads per poll
#define S_TICK_MS         25     //  the listener's clock, at most

typedef struct s_waiter {
    char key[BUS_KEY_MAX];
    uint64_t fingerprint;    //  of the command: the ack must answer it
    zframe_t *frame;         //  the command, encoded once for every send
    int64_t resend_ms;       //  next resend, monotonic
    int64_t resend_gap_ms;   //  doubles at each resend
    int64_t end_ms;          //  deadline, monotonic
    bus_gateway_done_fn *done;
    void *arg;
    struct s_waiter *next;
} s_waiter_t;

struct _bus_gateway_t {
    bus_config_t config;
    bus_curve_t *curve;   //  CURVE client keys; outlives the sockets
    bus_sync_t *sync;     //  queries to the writer
    bus_reads_t *reads;   //  ...or the reads that may go to replicas
    zsock_t *push;        //  intake, sent on under wait_lock
    zsock_t *sub;         //  acks + heartbeats, listener thread only
    //  Their handshakes, read by the listener; a redial of push is made
    //  under wait_lock (bus_curve.h says why they are watched)
    bus_curve_watch_t *push_watch, *sub_watch;
    zactor_t *listener;
    pthread_mutex_t wait_lock;             //  guards waiters
    s_waiter_t *waiters[S_WAIT_BUCKETS];   //  by hash of the key
    bus_link_t *link;                      //  is the writer there?
    //  Counters for /api/v1/stats
    atomic_int inflight;   //  POSTs waiting for an ack now
    atomic_uint_fast64_t placed, replayed, rejected, timeouts, overloaded,
        unreachable, dropped;
    pthread_mutex_t menu_lock;   //  guards the menu cache
    bus_menu_t *menu;
    json_t *menu_json;
    uint64_t menu_version;
    atomic_int_fast64_t menu_fetched_ms;   //  0: stale (an 86 was heard)
    atomic_bool menu_fetching;             //  one refresh at a time
};

//  ---------------------------------------------------------------------
//  Waiters

//  The waiter table's bucket for key (FNV-1a).
static s_waiter_t **
s_bucket (bus_gateway_t *self, const char *key)
{
    uint32_t hash = 2166136261u;
    for (const char *c = key; *c; c++)
        hash = (hash ^ (uint8_t) *c) * 16777619u;
    return &self->waiters[hash & (S_WAIT_BUCKETS - 1)];
}

//  Count how the command ended, call its done function, free the waiter.
static void
s_waiter_finish (bus_gateway_t *self, s_waiter_t *waiter, int rc,
                 const bus_ack_t *ack)
{
    atomic_fetch_sub (&self->inflight, 1);
    if (rc != 0)
        atomic_fetch_add (&self->timeouts, 1);
    else if (ack->status != 0)
        atomic_fetch_add (&self->rejected, 1);
    else
        atomic_fetch_add (ack->duplicate ? &self->replayed : &self->placed, 1);
    waiter->done (waiter->arg, rc, ack);
    zframe_destroy (&waiter->frame);
    free (waiter);
}

//  Send the encoded command; the frame is kept for resends.  Called with
//  wait_lock held, which is also what keeps the socket to one thread at
//  a time.
static void
s_push (bus_gateway_t *self, zframe_t *frame, const char *key)
{
    if (zframe_send (&frame, self->push, ZFRAME_REUSE | ZFRAME_DONTWAIT) != 0)
        zsys_warning ("gateway: intake queue full, command '%s' not sent", key);
}

//  Put the waiter in the table and send its command, both under the
//  table's lock: registered first, so no ack can arrive unseen; sent
//  before the lock goes, since from then on an ack (for an earlier send
//  of the same key and body, a retry's) may end the waiter and free its
//  frame.  The send never blocks.
static void
s_waiter_send (bus_gateway_t *self, s_waiter_t *waiter)
{
    pthread_mutex_lock (&self->wait_lock);
    s_waiter_t **bucket = s_bucket (self, waiter->key);
    waiter->next = *bucket;
    *bucket = waiter;
    s_push (self, waiter->frame, waiter->key);
    pthread_mutex_unlock (&self->wait_lock);
}

//  ---------------------------------------------------------------------
//  Listener thread: acks, heartbeats and the waiters' clock

//  Take every waiter the ack answers out of the table, then hand each
//  the ack.
static void
s_deliver (bus_gateway_t *self, const bus_ack_t *ack)
{
    s_waiter_t *taken = NULL;
    pthread_mutex_lock (&self->wait_lock);
    s_waiter_t **p = s_bucket (self, ack->key);
    while (*p) {
        s_waiter_t *w = *p;
        if (w->fingerprint == ack->fingerprint && streq (w->key, ack->key)) {
            *p = w->next;
            w->next = taken;
            taken = w;
        } else
            p = &w->next;
    }
    pthread_mutex_unlock (&self->wait_lock);
    while (taken) {
        s_waiter_t *next = taken->next;
        s_waiter_finish (self, taken, 0, ack);
        taken = next;
    }
}

//  Resend what is due and take out the waiters past their deadline;
//  those are told after the table is unlocked.
static void
s_tick (bus_gateway_t *self, int64_t now)
{
    s_waiter_t *expired = NULL;
    pthread_mutex_lock (&self->wait_lock);
    for (int b = 0; b < S_WAIT_BUCKETS; b++)
        for (s_waiter_t **p = &self->waiters[b]; *p;) {
            s_waiter_t *w = *p;
            if (now >= w->end_ms) {
                *p = w->next;
                w->next = expired;
                expired = w;
                continue;
            }
            if (now >= w->resend_ms) {
                s_push (self, w->frame, w->key);
                w->resend_gap_ms *= 2;
                w->resend_ms = now + w->resend_gap_ms;
            }
            p = &w->next;
        }
    pthread_mutex_unlock (&self->wait_lock);
    while (expired) {
        s_waiter_t *next = expired->next;
        s_waiter_finish (self, expired, BUS_ERR_TIMEOUT, NULL);
        expired = next;
    }
}

//  Read and handle one message.  False if none was waiting: the socket
//  does not block (see s_sockets_init).
static bool
s_listen_once (bus_gateway_t *self, bus_ack_t *ack)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    if (!msg)
        return false;
    char *topic = zmsg_popstr (msg);
    zframe_t *body = zmsg_pop (msg);
    if (topic && body && streq (topic, BUS_TOPIC_HEARTBEAT)) {
        bus_heartbeat_t hb;
        bus_epoch_t was;
        if (bus_heartbeat_decode (zframe_data (body), zframe_size (body), &hb)
                == 0
            && !bus_link_older (self->link, &hb.writer, "a heartbeat")
            && bus_link_heard (self->link, &hb, &was))
            //  Acks are matched by key and fingerprint, and the writer's
            //  dedupe is in its store: only an older epoch's are refused
            zsys_info ("gateway: writer epoch changed from %016" PRIx64
                       " to %016" PRIx64 " (identity %s%s)",
                       was.epoch, hb.writer.epoch, hb.writer.id,
                       streq (was.id, hb.writer.id) ? "" : ", a new store");
    } else if (topic && streq (topic, BUS_TOPIC_MENU)) {
        //  An 86 anywhere: our copy of the menu is out of date
        atomic_store (&self->menu_fetched_ms, 0);
    } else if (topic && body
               && bus_ack_decode (zframe_data (body), zframe_size (body), ack)
                      == 0) {
        //  A deposed writer's answer is no answer: its waiters stay, and
        //  their resends reach the primary, which dedupes by key.  (An
        //  ack from a writer before acks carried their epoch has none.)
        if (!ack->writer.epoch
            || !bus_link_older (self->link, &ack->writer, "an ack"))
            s_deliver (self, ack);
    } else {
        atomic_fetch_add (&self->dropped, 1);
        zsys_warning ("gateway: dropped unreadable message on topic '%s'",
                      topic ? topic : "(none)");
    }
    free (topic);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    return true;
}

//  Every message that came in together, for one poll; at most a batch,
//  so that $TERM and the clock are still heard under any load.
static void
s_listen_batch (bus_gateway_t *self, bus_ack_t *ack)
{
    for (int i = 0; i < S_LISTEN_BATCH; i++)
        if (!s_listen_once (self, ack))
            break;
}

//  How often the listener looks at the clock: often enough for the
//  shortest deadline allowed, rarely enough to cost nothing when idle.
static int
s_tick_ms (const bus_gateway_t *self)
{
    int ms = self->config.ack_timeout_ms / 10;
    return ms < 1 ? 1 : ms > S_TICK_MS ? S_TICK_MS : ms;
}

//  Dial the writer again where a handshake was refused for good
static void
s_redial (bus_gateway_t *self, int64_t now)
{
    bus_curve_watch_redial (self->sub_watch, now);
    pthread_mutex_lock (&self->wait_lock);
    bus_curve_watch_redial (self->push_watch, now);
    pthread_mutex_unlock (&self->wait_lock);
}

static void
s_listener_actor (zsock_t *pipe, void *args)
{
    bus_gateway_t *self = (bus_gateway_t *) args;
    bus_ack_t *ack = malloc (sizeof *ack);
    zpoller_t *poller = zpoller_new (pipe, self->sub, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_t *watches[] = { bus_curve_watch_socket (self->push_watch),
                           bus_curve_watch_socket (self->sub_watch) };
    for (int i = 0; i < 2; i++)
        if (watches[i])
            zpoller_add (poller, watches[i]);
    zsock_signal (pipe, ack ? 0 : -1);
    int tick_ms = s_tick_ms (self);
    int64_t next_tick = zclock_mono () + tick_ms;
    while (ack) {
        int64_t wait = next_tick - zclock_mono ();
        void *which = zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe)
            break;   //  $TERM is the only command we get
        if (which == self->sub)
            s_listen_batch (self, ack);
        if (which && which == watches[0])
            bus_curve_watch_read (self->push_watch);
        if (which && which == watches[1])
            bus_curve_watch_read (self->sub_watch);
        int64_t now = zclock_mono ();
        if (now >= next_tick) {
            s_tick (self, now);
            s_redial (self, now);
            next_tick = now + tick_ms;
        }
    }
    zpoller_destroy (&poller);
    free (ack);
}

//  ---------------------------------------------------------------------
//  Submitting a command

int
bus_gateway_send (bus_gateway_t *self, bus_cmd_t *cmd,
                  bus_gateway_done_fn *done, void *arg)
{
    bus_strlcpy (cmd->origin, self->config.name, sizeof cmd->origin);
    //  Fail fast: a queue that only grows helps nobody in a rush
    if (!bus_link_up (self->link)) {
        atomic_fetch_add (&self->unreachable, 1);
        return BUS_ERR_UNAVAILABLE;
    }
    if (atomic_fetch_add (&self->inflight, 1) >= self->config.max_inflight) {
        atomic_fetch_sub (&self->inflight, 1);
        atomic_fetch_add (&self->overloaded, 1);
        return BUS_ERR_OVERLOADED;
    }
    s_waiter_t *waiter = calloc (1, sizeof *waiter);
    zframe_t *frame = waiter ? bus_cmd_encode (cmd) : NULL;
    if (!frame) {
        atomic_fetch_sub (&self->inflight, 1);
        free (waiter);
        return BUS_ERR_NOMEM;
    }
    bus_strlcpy (waiter->key, cmd->key, sizeof waiter->key);
    waiter->fingerprint = bus_cmd_fingerprint (cmd);
    waiter->frame = frame;
    int64_t now = zclock_mono ();
    waiter->resend_gap_ms = S_RESEND_FIRST_MS;
    waiter->resend_ms = now + S_RESEND_FIRST_MS;
    waiter->end_ms = now + self->config.ack_timeout_ms;
    waiter->done = done;
    waiter->arg = arg;
    s_waiter_send (self, waiter);   //  which may be answered and gone at once
    return 0;
}

//  bus_gateway_submit's wait for its one command
typedef struct {
    sem_t answered;
    int rc;
    bus_ack_t *ack;
} s_wait_t;

//  Copy what an ack carries: its event is large, and only the part its
//  type uses (and only the lines it has) means anything.
static void
s_ack_copy (bus_ack_t *dst, const bus_ack_t *src)
{
    memcpy (dst->key, src->key, sizeof dst->key);
    dst->fingerprint = src->fingerprint;
    dst->status = src->status;
    dst->duplicate = src->duplicate;
    memcpy (dst->error, src->error, sizeof dst->error);
    const bus_event_t *from = &src->event;
    bus_event_t *to = &dst->event;
    to->seq = from->seq;
    to->ts_ms = from->ts_ms;
    to->type = from->type;
    memcpy (to->item_id, from->item_id, sizeof to->item_id);
    to->available = from->available;
    if (from->type == BUS_EVENT_CART) {
        size_t head = offsetof (bus_cart_t, lines);
        memcpy (&to->cart, &from->cart, head);
        memcpy (to->cart.lines, from->cart.lines,
                from->cart.line_count * sizeof from->cart.lines[0]);
    } else {
        size_t head = offsetof (bus_order_t, lines);
        memcpy (&to->order, &from->order, head);
        memcpy (to->order.lines, from->order.lines,
                from->order.line_count * sizeof from->order.lines[0]);
    }
}

static void
s_wait_done (void *arg, int rc, const bus_ack_t *ack)
{
    s_wait_t *wait = (s_wait_t *) arg;
    wait->rc = rc;
    if (ack)
        s_ack_copy (wait->ack, ack);
    sem_post (&wait->answered);   //  the last touch: *wait is gone after
}

int
bus_gateway_submit (bus_gateway_t *self, bus_cmd_t *cmd, bus_ack_t *ack)
{
    s_wait_t wait = { .ack = ack };
    sem_init (&wait.answered, 0, 0);
    int rc = bus_gateway_send (self, cmd, s_wait_done, &wait);
    if (rc == 0) {
        while (sem_wait (&wait.answered) != 0 && errno == EINTR)
            ;
        rc = wait.rc;
    }
    sem_destroy (&wait.answered);
    return rc;
}

int
bus_gateway_query (bus_gateway_t *self, bus_sync_req_t *req,
                   bus_sync_reply_t *reply, zmsg_t **items)
{
    return bus_reads_call (self->reads, req, reply, items, NULL);
}

int
bus_gateway_orders (bus_gateway_t *self, bus_sync_order_fn *fn, void *arg)
{
    return bus_sync_orders (self->sync, fn, arg, NULL);
}

//  ---------------------------------------------------------------------
//  Menu cache: the writer's menu, refetched when older than a second

//  Refresh the cache if it is stale.  The trip to the writer is made
//  outside menu_lock: a slow or gone writer must not hold up every request
//  that reads the copy, nor the listener thread.  One refresh at a time;
//  the others use the copy there is.  Call without menu_lock.
static void
s_menu_refresh (bus_gateway_t *self)
{
    int64_t fetched = atomic_load (&self->menu_fetched_ms);
    if ((fetched && zclock_mono () - fetched < S_MENU_FRESH_MS)
        || atomic_exchange (&self->menu_fetching, true))
        return;
    bus_sync_req_t req = { .op = BUS_SYNC_MENU };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    zframe_t *doc = bus_sync_call (self->sync, &req, &reply, &items) == 0
                            && reply.status == 0
                        ? zmsg_first (items)
                        : NULL;
    char err[256];
    bus_menu_t *menu = doc ? bus_menu_new ((const char *) zframe_data (doc),
                                           zframe_size (doc), err, sizeof err)
                           : NULL;
    json_t *json = menu ? json_loadb (bus_menu_json (menu),
                                      bus_menu_json_len (menu), 0, NULL)
                        : NULL;
    zmsg_destroy (&items);
    if (json) {   //  else keep the copy we have, stale or not
        pthread_mutex_lock (&self->menu_lock);
        bus_menu_t *old_menu = self->menu;
        json_t *old_json = self->menu_json;
        self->menu = menu;
        self->menu_json = json;
        self->menu_version = reply.next;
        pthread_mutex_unlock (&self->menu_lock);
        atomic_store (&self->menu_fetched_ms, zclock_mono ());
        bus_menu_destroy (&old_menu);
        json_decref (old_json);
    } else
        bus_menu_destroy (&menu);
    atomic_store (&self->menu_fetching, false);
}

json_t *
bus_gateway_menu (bus_gateway_t *self, uint64_t *version)
{
    s_menu_refresh (self);
    pthread_mutex_lock (&self->menu_lock);
    json_t *json = json_incref (self->menu_json);
    *version = self->menu_version;
    pthread_mutex_unlock (&self->menu_lock);
    return json;
}

//  The first id in lines our copy of the menu does not know: 0 if all
//  are known, else BUS_ERR_UNKNOWN_ITEM / BUS_ERR_INVALID with error set.
static int
s_menu_unknown (bus_gateway_t *self, const bus_line_t *lines, uint32_t count,
                const char *prefix, bus_json_error_t *error)
{
    for (uint32_t i = 0; i < count; i++) {
        const bus_menu_item_t *item =
            bus_menu_find (self->menu, lines[i].item_id);
        char at[24] = "";
        if (*prefix)
            snprintf (at, sizeof at, "%s[%u].", prefix, i);
        if (!item) {
            snprintf (error->field, sizeof error->field, "%sitem_id", at);
            snprintf (error->message, sizeof error->message,
                      "unknown menu item '%s'", lines[i].item_id);
            return BUS_ERR_UNKNOWN_ITEM;
        }
        for (uint32_t m = 0; m < lines[i].mod_count; m++)
            if (!bus_menu_find_mod (item, lines[i].mods[m].id)) {
                snprintf (error->field, sizeof error->field, "%smodifiers[%u]",
                          at, m);
                snprintf (error->message, sizeof error->message,
                          "'%s' does not offer '%s'", item->id,
                          lines[i].mods[m].id);
                return BUS_ERR_INVALID;
            }
    }
    return 0;
}

int
bus_gateway_check_lines (bus_gateway_t *self, const bus_line_t *lines,
                         uint32_t count, bool with_items, bool may_fetch,
                         bus_json_error_t *error)
{
    const char *prefix = with_items ? "items" : "";
    pthread_mutex_lock (&self->menu_lock);
    int rc = self->menu ? s_menu_unknown (self, lines, count, prefix, error)
                        : BUS_ERR_UNKNOWN_ITEM;
    pthread_mutex_unlock (&self->menu_lock);
    if (rc == 0)
        return 0;
    if (!may_fetch)
        return BUS_ERR_UNAVAILABLE;
    s_menu_refresh (self);
    pthread_mutex_lock (&self->menu_lock);
    rc = self->menu ? s_menu_unknown (self, lines, count, prefix, error) : 0;
    pthread_mutex_unlock (&self->menu_lock);
    return rc;
}

//  ---------------------------------------------------------------------
//  Counters and health

json_t *
bus_gateway_health (bus_gateway_t *self, bool *ok)
{
    json_t *health = json_pack ("{s:s}", "name", self->config.name);
    *ok = bus_link_health (self->link, health);
    //  Orders get 503 while the writer's synchronous replica is gone
    if (bus_link_writer_refusing (self->link, health))
        *ok = false;
    return health;
}

//  The writer's counters, or null if it does not answer.
static json_t *
s_writer_stats (bus_gateway_t *self)
{
    bus_sync_req_t req = { .op = BUS_SYNC_STATS };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    json_t *stats = NULL;
    if (bus_sync_call (self->sync, &req, &reply, &items) == 0
        && reply.status == 0 && zmsg_size (items) == 1) {
        zframe_t *frame = zmsg_first (items);
        stats = json_loadb ((const char *) zframe_data (frame),
                            zframe_size (frame), 0, NULL);
    }
    zmsg_destroy (&items);
    return stats ? stats : json_null ();
}

json_t *
bus_gateway_stats (bus_gateway_t *self)
{
    bus_reads_stats_t reads = bus_reads_stats (self->reads);
    json_t *stats = json_pack (
        "{s:{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}", "gateway",
        "name", self->config.name, "inflight", atomic_load (&self->inflight),
        "placed", (json_int_t) atomic_load (&self->placed), "replayed",
        (json_int_t) atomic_load (&self->replayed), "rejected",
        (json_int_t) atomic_load (&self->rejected), "timeouts",
        (json_int_t) atomic_load (&self->timeouts), "overloaded",
        (json_int_t) atomic_load (&self->overloaded), "unreachable",
        (json_int_t) atomic_load (&self->unreachable), "dropped",
        (json_int_t) atomic_load (&self->dropped), "writer",
        s_writer_stats (self));
    //  Where the reads went (endpoints/reads): replicas, or the writer
    json_object_set_new (json_object_get (stats, "gateway"), "reads",
                         json_pack ("{s:i, s:I, s:I}", "replicas",
                                    reads.replicas, "replica",
                                    (json_int_t) reads.replica, "writer",
                                    (json_int_t) reads.writer));
    return stats;
}

const bus_config_t *
bus_gateway_config (bus_gateway_t *self)
{
    return &self->config;
}

//  ---------------------------------------------------------------------
//  Construction

static int
s_sockets_init (bus_gateway_t *self, char *err, size_t err_cap)
{
    char topic[BUS_TOPIC_MAX];
    self->push = zsock_new (ZMQ_PUSH);
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->push || !self->sub
        || bus_topic_ack (topic, sizeof topic, self->config.name) != 0)
        goto fail;
    //  Unacked commands are resent, so a bounded queue that refuses when
    //  full is safer than one that blocks a worker thread.
    zsock_set_sndhwm (self->push, 10000);
    zsock_set_linger (self->push, 0);
    zsock_set_maxmsgsize (self->sub, BUS_FRAME_MAX + BUS_TOPIC_MAX);
    zsock_set_rcvtimeo (self->sub, 0);   //  the listener polls, then drains
    zsock_set_subscribe (self->sub, topic);
    zsock_set_subscribe (self->sub, BUS_TOPIC_HEARTBEAT);
    zsock_set_subscribe (self->sub, BUS_TOPIC_MENU);
    self->push_watch =
        bus_curve_watch_new (self->curve, self->push, self->config.intake);
    self->sub_watch =
        bus_curve_watch_new (self->curve, self->sub, self->config.events);
    if (bus_curve_enabled (self->curve)
        && (!self->push_watch || !self->sub_watch)) {
        snprintf (err, err_cap,
                  "cannot watch the links to the writer at "
                  "%s / %s (see the log)",
                  self->config.intake, self->config.events);
        return -1;
    }
    if (bus_link_connect (self->push, self->config.intake, self->curve) != 0
        || bus_link_connect (self->sub, self->config.events, self->curve) != 0)
        goto fail;
    return 0;
fail:
    snprintf (err, err_cap, "cannot connect to the writer at %s / %s: %s",
              self->config.intake, self->config.events,
              zmq_strerror (zmq_errno ()));
    return -1;
}

bus_gateway_t *
bus_gateway_new (const bus_config_t *config, char *err, size_t err_cap)
{
    bus_gateway_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    self->config = *config;
    pthread_mutex_init (&self->wait_lock, NULL);
    pthread_mutex_init (&self->menu_lock, NULL);
    self->curve = bus_curve_new (config, err, err_cap);
    if (!self->curve)
        goto fail;
    self->sync =
        bus_sync_new (config->sync, config->ack_timeout_ms, self->curve);
    self->link = bus_link_new (config, self->curve, "gateway", config->name);
    if (!self->sync || !self->link) {
        snprintf (err, err_cap, "out of memory");
        goto fail;
    }
    self->reads = bus_reads_new (config, self->sync, self->curve, err, err_cap);
    if (!self->reads)
        goto fail;
    //  A deposed writer's answer, or a stale replica's, is not taken
    bus_sync_set_older (self->sync, bus_link_older_reply, self->link);
    bus_reads_set_older (self->reads, bus_link_older_reply, self->link);
    if (s_sockets_init (self, err, err_cap) != 0)
        goto fail;
    self->listener = zactor_new (s_listener_actor, self);
    if (!self->listener) {
        snprintf (err, err_cap, "cannot start the gateway's listener thread");
        goto fail;
    }
    zsys_info ("gateway %s: writer intake %s, events %s, sync %s%s%s%s",
               config->name, config->intake, config->events, config->sync,
               bus_curve_enabled (self->curve) ? " (CURVE)" : "",
               *config->reads ? ", reads " : "", config->reads);
    return self;
fail:
    bus_gateway_destroy (&self);
    return NULL;
}

void
bus_gateway_destroy (bus_gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_gateway_t *self = *self_p;
    zactor_destroy (&self->listener);
    s_tick (self, INT64_MAX);   //  no ack can come now: end every waiter
    bus_link_destroy (&self->link);
    bus_curve_watch_destroy (&self->push_watch);
    bus_curve_watch_destroy (&self->sub_watch);
    zsock_destroy (&self->push);
    zsock_destroy (&self->sub);
    bus_reads_destroy (&self->reads);
    bus_sync_destroy (&self->sync);
    bus_curve_destroy (&self->curve);
    bus_menu_destroy (&self->menu);
    json_decref (self->menu_json);
    pthread_mutex_destroy (&self->wait_lock);
    pthread_mutex_destroy (&self->menu_lock);
    free (self);
    *self_p = NULL;
}
