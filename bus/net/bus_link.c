/*  bus_link.c — heartbeats in, pings out, and the writer's liveness.  */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_sync.h"

struct _bus_link_t {
    int heartbeat_ms;   //  ping period
    int timeout_ms;     //  silence that means "gone"
    char role[16];
    char name[BUS_NAME_MAX];
    bus_sync_t *sync;   //  pings only; times out after a period
    zactor_t *pinger;
    atomic_int_fast64_t
        beat_ms;   //  zclock_mono of the last heartbeat, 0 = none
    atomic_uint_fast64_t writer_seq;
    atomic_int storage;      //  bus_storage_t of the last heartbeat
    atomic_bool refusing;    //  ...and its "refusing" (synchronous mode)
    pthread_mutex_t lock;    //  guards writer
    bus_epoch_t writer;      //  of the last heartbeat; epoch 0 = none yet
    bus_epoch_t highest;     //  the newest epoch heard of writer's identity
    int64_t highest_ms;      //  ...zclock_mono of its last heartbeat
    uint64_t older_logged;   //  the older epoch last logged (once each)
    atomic_uint_fast64_t older;   //  messages of an older epoch ignored
};

static int64_t
s_age (bus_link_t *self)
{
    int64_t beat = atomic_load (&self->beat_ms);
    return beat ? zclock_mono () - beat : -1;
}

bool
bus_link_up (bus_link_t *self)
{
    int64_t age = s_age (self);
    return age >= 0 && age <= self->timeout_ms;
}

//  Note the writer's storage state; log a change, once (the writer's own
//  log says why).
static void
s_storage_heard (bus_link_t *self, bus_storage_t storage)
{
    bus_storage_t was =
        (bus_storage_t) atomic_exchange (&self->storage, (int) storage);
    if (storage == was)
        return;
    if (storage == BUS_STORAGE_OK)
        zsys_info ("%s: writer storage ok again: orders are committed",
                   self->role);
    else
        zsys_warning ("%s: writer storage %s: nothing is committed, "
                      "/healthz answers 503 until it is ok again",
                      self->role, bus_storage_name (storage));
}

bus_storage_t
bus_link_writer_storage (bus_link_t *self)
{
    return (bus_storage_t) atomic_load (&self->storage);
}

//  The newest epoch's writer has sent no heartbeat for timeout_ms: it
//  led briefly and died, or its host's clock ran ahead.  Epochs order by
//  each leader's wall clock, so a later leader's may be lower: were the
//  silent one kept, that leader would be ignored for ever.  Under lock.
static bool
s_highest_silent (bus_link_t *self)
{
    return zclock_mono () - self->highest_ms > self->timeout_ms;
}

bool
bus_link_older (bus_link_t *self, const bus_epoch_t *writer, const char *what)
{
    pthread_mutex_lock (&self->lock);
    bool older = self->highest.epoch && !s_highest_silent (self)
                 && streq (writer->id, self->highest.id)
                 && writer->epoch < self->highest.epoch;
    bool log = older && writer->epoch != self->older_logged;
    if (log)
        self->older_logged = writer->epoch;
    uint64_t highest = self->highest.epoch;
    pthread_mutex_unlock (&self->lock);
    if (!older)
        return false;
    atomic_fetch_add (&self->older, 1);
    if (log)
        zsys_warning ("%s: ignoring %s of epoch %016" PRIx64 ", older than "
                      "%016" PRIx64 ": a writer that is not the primary any "
                      "more (logged once per epoch)",
                      self->role, what, writer->epoch, highest);
    return true;
}

bool
bus_link_older_reply (void *self, const bus_epoch_t *writer)
{
    return bus_link_older ((bus_link_t *) self, writer, "a sync reply");
}

bool
bus_link_heard (bus_link_t *self, const bus_heartbeat_t *hb, bus_epoch_t *was)
{
    pthread_mutex_lock (&self->lock);
    //  Another identity is another store (restored, replaced): its own
    //  epochs count from there
    if (!streq (hb->writer.id, self->highest.id)
        || hb->writer.epoch >= self->highest.epoch || s_highest_silent (self)) {
        self->highest = hb->writer;
        self->highest_ms = zclock_mono ();
    }
    bool changed =
        self->writer.epoch && !bus_epoch_same (&self->writer, &hb->writer);
    if (was)
        *was = self->writer;
    self->writer = hb->writer;
    pthread_mutex_unlock (&self->lock);
    atomic_store (&self->writer_seq, hb->seq);
    atomic_store (&self->beat_ms, zclock_mono ());
    s_storage_heard (self, hb->storage);
    atomic_store (&self->refusing, hb->refusing);
    return changed;
}

void
bus_link_writer (bus_link_t *self, bus_epoch_t *writer)
{
    pthread_mutex_lock (&self->lock);
    *writer = self->writer;
    pthread_mutex_unlock (&self->lock);
}

uint64_t
bus_link_writer_seq (bus_link_t *self)
{
    return atomic_load (&self->writer_seq);
}

bool
bus_link_health (bus_link_t *self, json_t *health)
{
    bool up = bus_link_up (self);
    bus_storage_t storage = bus_link_writer_storage (self);
    json_object_set_new (health, "writer_storage",
                         json_string (bus_storage_name (storage)));
    //  Why not ok, in words for an operator or a kitchen screen
    if (!up)
        json_object_set_new (health, "reason",
                             json_string ("writer unreachable"));
    else if (storage == BUS_STORAGE_FULL)
        json_object_set_new (
            health, "reason",
            json_string ("writer storage full: nothing is committed "
                         "until space is freed"));
    else if (storage != BUS_STORAGE_OK)
        json_object_set_new (
            health, "reason",
            json_string ("writer storage failing: nothing is committed"));
    json_object_set_new (health, "writer_reachable", json_boolean (up));
    json_object_set_new (
        health, "older_epoch_ignored",
        json_integer ((json_int_t) atomic_load (&self->older)));
    json_object_set_new (health, "writer_heartbeat_age_ms",
                         json_integer (s_age (self)));
    json_object_set_new (
        health, "writer_seq",
        json_integer ((json_int_t) bus_link_writer_seq (self)));
    pthread_mutex_lock (&self->lock);
    bus_epoch_t writer = self->writer;
    pthread_mutex_unlock (&self->lock);
    char epoch[24];
    snprintf (epoch, sizeof epoch, "%016" PRIx64, writer.epoch);
    json_object_set_new (health, "writer_identity", json_string (writer.id));
    json_object_set_new (health, "writer_epoch",
                         json_string (writer.epoch ? epoch : ""));
    return up && storage == BUS_STORAGE_OK;
}

bool
bus_link_writer_refusing (bus_link_t *self, json_t *health)
{
    bool refusing = bus_link_up (self) && atomic_load (&self->refusing);
    json_object_set_new (health, "writer_refusing", json_boolean (refusing));
    if (refusing && !json_object_get (health, "reason"))
        json_object_set_new (
            health, "reason",
            json_string ("the writer's synchronous replica is not "
                         "confirming: orders get 503 until it does"));
    return refusing;
}

//  Ping, then log the writer's coming or going if it changed.
static void
s_tick (bus_link_t *self, bool *was_up)
{
    bus_sync_req_t req = { .op = BUS_SYNC_PING };
    snprintf (req.role, sizeof req.role, "%s", self->role);
    snprintf (req.name, sizeof req.name, "%s", self->name);
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    bus_sync_call (self->sync, &req, &reply, &items);
    zmsg_destroy (&items);
    bool up = bus_link_up (self);
    if (up && !*was_up)
        zsys_info ("%s: writer reachable at seq %" PRIu64, self->role,
                   bus_link_writer_seq (self));
    else if (!up && *was_up)
        zsys_warning ("%s: writer unreachable: no heartbeat for %" PRId64 " ms",
                      self->role, s_age (self));
    *was_up = up;
}

static void
s_pinger (zsock_t *pipe, void *args)
{
    bus_link_t *self = (bus_link_t *) args;
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    bool was_up = false;
    while (zpoller_wait (poller, self->heartbeat_ms) != pipe)
        s_tick (self, &was_up);
    zpoller_destroy (&poller);
}

bus_link_t *
bus_link_new (const bus_config_t *config, const bus_curve_t *curve,
              const char *role, const char *name)
{
    bus_link_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->heartbeat_ms = config->heartbeat_ms;
    self->timeout_ms = config->link_timeout_ms;
    snprintf (self->role, sizeof self->role, "%s", role);
    snprintf (self->name, sizeof self->name, "%s", name);
    pthread_mutex_init (&self->lock, NULL);
    self->sync = bus_sync_new (config->sync, config->heartbeat_ms, curve);
    self->pinger = self->sync ? zactor_new (s_pinger, self) : NULL;
    if (!self->pinger)
        bus_link_destroy (&self);
    return self;
}

void
bus_link_destroy (bus_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy (&(*self_p)->pinger);
    bus_sync_destroy (&(*self_p)->sync);
    pthread_mutex_destroy (&(*self_p)->lock);
    free (*self_p);
    *self_p = NULL;
}

int
bus_link_connect (zsock_t *sock, const char *endpoints,
                  const bus_curve_t *curve)
{
    bus_curve_client (curve, sock);
    if (!strchr (endpoints, ','))
        return zsock_connect (sock, "%s", endpoints) == 0 ? 0 : -1;
    int type = zsock_type (sock);
    if (type == ZMQ_PUSH || type == ZMQ_DEALER)
        zsock_set_immediate (sock, 1);
    //  A frozen (SIGSTOP) deposed leader keeps its TCP connections, and
    //  PUSH/DEALER would go on sending it their share: ZMTP heartbeats
    //  drop a peer that stops answering them
    zsock_set_heartbeat_ivl (sock, BUS_LINK_ZMTP_IVL_MS);
    zsock_set_heartbeat_timeout (sock, BUS_LINK_ZMTP_TIMEOUT_MS);
    char list[BUS_ENDPOINT_MAX];
    bus_strlcpy (list, endpoints, sizeof list);
    char *save = NULL;
    int index = 0;
    //  libzmq copies the server key into each connection as it is made:
    //  each member's, right before its connect
    for (char *one = strtok_r (list, ",", &save); one;
         one = strtok_r (NULL, ",", &save)) {
        bus_curve_client_at (curve, sock, index++);
        if (zsock_connect (sock, "%s", one) != 0)
            return -1;
    }
    return 0;
}
