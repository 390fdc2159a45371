/*  bus_link.c — heartbeats in, pings out, and the writer's liveness.  */

#include <stdatomic.h>
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

void
bus_link_heard (bus_link_t *self, uint64_t writer_seq)
{
    atomic_store (&self->writer_seq, writer_seq);
    atomic_store (&self->beat_ms, zclock_mono ());
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
    json_object_set_new (health, "writer_reachable", json_boolean (up));
    json_object_set_new (health, "writer_heartbeat_age_ms",
                         json_integer (s_age (self)));
    json_object_set_new (
        health, "writer_seq",
        json_integer ((json_int_t) bus_link_writer_seq (self)));
    return up;
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
    free (*self_p);
    *self_p = NULL;
}
