/*  bus_leader.c — the leader lease of a writer group (bus_leader.h).

    Two threads: the owner's (campaign, set_sync, resign, wait), and, while
    leader, the keeper's, which renews the lease every TTL/3 and moves
    the step-down deadline forward from the time it SENT each renewal
    that etcd answered.  Each has its own etcd client (one curl handle
    each).  The deadline is one atomic: 0 = not leader; is_leader
    compares it with the monotonic clock, so it turns false on time even
    while the keeper is stuck in a call.  */

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_leader.h"

#define S_KEY_MAX (BUS_ETCD_VALUE_MAX)

struct _bus_leader_t {
    bus_etcd_t *etcd;             //  owner's thread
    bus_etcd_t *keeper_etcd;      //  keeper's thread
    char leader_key[S_KEY_MAX];   //  /orderbus/<group>/leader
    char sync_key[S_KEY_MAX];     //  /orderbus/<group>/sync
    char name[BUS_LEADER_NAME_MAX + 1];
    int ttl_s;                    //  asked
    int ttl_ms;                   //  granted
    int64_t lease;                //  0: none
    int64_t seen;                 //  revision of the last read
    _Atomic int64_t deadline;     //  mono ms; 0: not leader
    _Atomic int64_t fence;        //  0: not leader
    _Atomic int64_t renewed_at;   //  mono ms of the last renewal's send
    bus_leader_lost_fn *lost_fn;
    void *lost_arg;
    pthread_t keeper;
    bool keeper_running;    //  joined when false
    pthread_mutex_t lock;   //  guards stop, for cond
    pthread_cond_t cond;    //  wakes the keeper to stop
    bool stop;
};

static bool
s_valid_name (const char *text)
{
    size_t length = text ? strlen (text) : 0;
    if (length == 0 || length > BUS_LEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum ((unsigned char) text[i]) && !strchr ("_.-", text[i]))
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Lifecycle

bus_leader_t *
bus_leader_new (const bus_leader_config_t *config, char *err, size_t err_cap)
{
    if (!s_valid_name (config->group) || !s_valid_name (config->name)) {
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "leader: group and name must be 1 to %d characters of "
                       "A-Z a-z 0-9 _ . -",
                       BUS_LEADER_NAME_MAX);
        return NULL;
    }
    if (config->ttl_s < 1 || config->ttl_s > 3600) {
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "leader: TTL %d s is not in 1..3600", config->ttl_s);
        return NULL;
    }
    bus_leader_t *self = calloc (1, sizeof *self);
    if (!self) {
        bus_error_set (err, err_cap, BUS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf (self->leader_key, S_KEY_MAX, "/orderbus/%s/leader",
              config->group);
    snprintf (self->sync_key, S_KEY_MAX, "/orderbus/%s/sync", config->group);
    strcpy (self->name, config->name);
    self->ttl_s = config->ttl_s;
    self->etcd = bus_etcd_new (config->endpoints, config->insecure, config->tls,
                               err, err_cap);
    if (self->etcd)
        self->keeper_etcd = bus_etcd_new (config->endpoints, config->insecure,
                                          config->tls, err, err_cap);
    if (!self->keeper_etcd) {
        bus_etcd_destroy (&self->etcd);
        free (self);
        return NULL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
bus_leader_destroy (bus_leader_t **self_p)
{
    assert (self_p);
    bus_leader_t *self = *self_p;
    if (!self)
        return;
    bus_leader_resign (self, 1000, NULL, 0);
    bus_etcd_destroy (&self->etcd);
    bus_etcd_destroy (&self->keeper_etcd);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
bus_leader_on_lost (bus_leader_t *self, bus_leader_lost_fn *fn, void *arg)
{
    assert (!self->keeper_running);
    self->lost_fn = fn;
    self->lost_arg = arg;
}

//  --------------------------------------------------------------------------
//  State that any thread reads

bool
bus_leader_is_leader (bus_leader_t *self)
{
    int64_t deadline = atomic_load (&self->deadline);
    return deadline != 0 && zclock_mono () < deadline;
}

int64_t
bus_leader_fence (bus_leader_t *self)
{
    return bus_leader_is_leader (self) ? atomic_load (&self->fence) : 0;
}

int64_t
bus_leader_renewed_at (bus_leader_t *self)
{
    return bus_leader_is_leader (self) ? atomic_load (&self->renewed_at) : 0;
}

int
bus_leader_ttl_ms (bus_leader_t *self)
{
    return self->ttl_ms;
}

//  The deadline a renewal sent at sent (mono ms) gives, for a lease of
//  ttl_ms: see bus_leader.h for why from the send and why the margin
static int64_t
s_deadline (int64_t sent, int ttl_ms)
{
    return sent + ttl_ms - BUS_LEADER_MARGIN (ttl_ms);
}

//  --------------------------------------------------------------------------
//  The keeper thread

//  Sleep until mono ms at, or until told to stop; true if told to stop
static bool
s_keeper_sleep (bus_leader_t *self, int64_t at)
{
    struct timespec until = { (time_t) (at / 1000),
                              (long) (at % 1000) * 1000000L };
    pthread_mutex_lock (&self->lock);
    while (!self->stop && zclock_mono () < at)
        if (pthread_cond_timedwait (&self->cond, &self->lock, &until) != 0)
            break;
    bool stop = self->stop;
    pthread_mutex_unlock (&self->lock);
    return stop;
}

//  One keepalive; moves the deadline forward if etcd renewed the lease.
//  Returns the call's result.
static int
s_renew (bus_leader_t *self, int period)
{
    int64_t deadline = atomic_load (&self->deadline);
    int64_t sent = zclock_mono ();
    int64_t left = deadline - sent;
    int timeout = (int) (left < period ? left : period);
    bus_etcd_result_t result;
    int rc =
        bus_etcd_lease_keepalive (self->keeper_etcd, self->lease,
                                  timeout > 1 ? timeout : 1, &result, NULL, 0);
    if (rc == 0) {
        int ttl_ms = (int) result.ttl * 1000;
        if (ttl_ms > self->ttl_ms)
            ttl_ms = self->ttl_ms;
        //  Only forward, never over a resign (deadline 0), and never
        //  once the deadline has passed: a step-down is final, even if a
        //  late answer says the lease lived on
        int64_t next = s_deadline (sent, ttl_ms);
        if (next > deadline && zclock_mono () < deadline
            && atomic_compare_exchange_strong (&self->deadline, &deadline,
                                               next))
            atomic_store (&self->renewed_at, sent);
    }
    return rc;
}

static void *
s_keeper_run (void *arg)
{
    bus_leader_t *self = arg;
    int period = self->ttl_ms / 3;
    int64_t next = atomic_load (&self->renewed_at) + period;
    bool lost = false;
    while (!lost) {
        //  Wake for the next renewal, or at the deadline to step down
        int64_t deadline = atomic_load (&self->deadline);
        if (s_keeper_sleep (self, next < deadline ? next : deadline))
            return NULL;   //  resigned
        if (!bus_leader_is_leader (self))
            lost = true;
        else {
            next = zclock_mono () + period;
            lost = s_renew (self, period) == BUS_ERR_NOT_FOUND;
        }
    }
    //  Step down: is_leader is false by the clock already (or the lease is
    //  gone); make it so for good, say so, and free the key if etcd hears
    atomic_store (&self->deadline, 0);
    zsys_warning ("leader: lost the lease of %s, stepped down",
                  self->leader_key);
    if (self->lost_fn)
        self->lost_fn (self->lost_arg);
    bus_etcd_result_t result;
    bus_etcd_lease_revoke (self->keeper_etcd, self->lease, period, &result,
                           NULL, 0);
    return NULL;
}

static void
s_keeper_stop (bus_leader_t *self)
{
    if (!self->keeper_running)
        return;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->keeper, NULL);
    self->keeper_running = false;
    self->stop = false;
}

//  --------------------------------------------------------------------------
//  Campaign

//  Fill state with who holds the key (result of a read of it)
static void
s_holder (bus_leader_state_t *state, const bus_etcd_result_t *leader)
{
    if (leader->found) {
        snprintf (state->holder, sizeof state->holder, "%.80s", leader->value);
        state->fence = leader->create_revision;
    }
}

//  Write the leader key under a new lease if it and the sync key are as
//  read (sync: what the sync key held); 0 with state filled
static int
s_take (bus_leader_t *self, const bus_etcd_result_t *sync, int64_t deadline,
        bus_leader_state_t *state, char *err, size_t err_cap)
{
    bus_etcd_result_t lease, txn;
    int64_t sent = zclock_mono ();
    int rc = bus_etcd_lease_grant (
        self->etcd, self->ttl_s, (int) (deadline - sent), &lease, err, err_cap);
    if (rc)
        return rc;
    bus_etcd_compare_t compares[] = {
        { self->leader_key, false, 0 },   //  nobody leads
        //  the sync key is as read: the same version, or still absent
        { self->sync_key, sync->found, sync->found ? sync->mod_revision : 0 },
    };
    int64_t left = deadline - zclock_mono ();
    rc = bus_etcd_txn_put (self->etcd, compares, 2, self->leader_key,
                           self->name, lease.lease, left > 1 ? (int) left : 1,
                           &txn, err, err_cap);
    if (rc || !txn.succeeded) {
        bus_etcd_result_t ignored;
        bus_etcd_lease_revoke (self->etcd, lease.lease, 500, &ignored, NULL, 0);
        self->seen = txn.revision;
        s_holder (state, &txn);
        return rc;
    }
    self->lease = lease.lease;
    self->ttl_ms = (int) lease.ttl * 1000;
    self->seen = txn.revision;
    atomic_store (&self->fence, txn.revision);
    atomic_store (&self->renewed_at, sent);
    atomic_store (&self->deadline, s_deadline (sent, self->ttl_ms));
    state->leader = true;
    state->fence = txn.revision;
    snprintf (state->holder, sizeof state->holder, "%s", self->name);
    if (pthread_create (&self->keeper, NULL, s_keeper_run, self) != 0) {
        bus_leader_resign (self, 500, NULL, 0);
        memset (state, 0, sizeof *state);
        return bus_error_set (err, err_cap, BUS_ERR_NOMEM,
                              "leader: cannot start the keepalive thread");
    }
    self->keeper_running = true;
    return 0;
}

int
bus_leader_campaign (bus_leader_t *self, int timeout_ms,
                     bus_leader_state_t *state, char *err, size_t err_cap)
{
    memset (state, 0, sizeof *state);
    if (bus_leader_is_leader (self)) {
        state->leader = true;
        state->fence = atomic_load (&self->fence);
        snprintf (state->holder, sizeof state->holder, "%s", self->name);
        return 0;
    }
    //  A leadership lost earlier: its keeper has ended, or ends now
    s_keeper_stop (self);
    atomic_store (&self->deadline, 0);
    int64_t deadline = zclock_mono () + timeout_ms;
    bus_etcd_result_t sync, leader;
    int rc = bus_etcd_get (self->etcd, self->sync_key, timeout_ms, &sync, err,
                           err_cap);
    int64_t left = deadline - zclock_mono ();
    if (rc == 0)
        rc = bus_etcd_get (self->etcd, self->leader_key,
                           left > 1 ? (int) left : 1, &leader, err, err_cap);
    if (rc)
        return rc;
    snprintf (state->sync, sizeof state->sync, "%.80s", sync.value);
    self->seen = leader.revision;
    s_holder (state, &leader);
    if (leader.found)
        return 0;
    //  Only the synchronous standby holds every acknowledged commit
    if (sync.found && strcmp (sync.value, self->name) != 0) {
        state->refused = true;
        return 0;
    }
    return s_take (self, &sync, deadline, state, err, err_cap);
}

int
bus_leader_wait (bus_leader_t *self, int timeout_ms, char *err, size_t err_cap)
{
    bus_etcd_result_t result;
    return bus_etcd_wait (self->etcd, self->leader_key, self->seen, timeout_ms,
                          &result, err, err_cap);
}

//  --------------------------------------------------------------------------
//  The sync standby, resigning

int
bus_leader_set_sync (bus_leader_t *self, const char *name, int timeout_ms,
                     char *err, size_t err_cap)
{
    if (!s_valid_name (name))
        return bus_error_set (err, err_cap, BUS_ERR_INVALID,
                              "leader: sync name must be 1 to %d characters "
                              "of A-Z a-z 0-9 _ . -",
                              BUS_LEADER_NAME_MAX);
    int64_t fence = bus_leader_fence (self);
    if (fence == 0)
        return bus_error_set (err, err_cap, BUS_ERR_FORBIDDEN,
                              "leader: %s is not leader", self->name);
    //  Only while the leader key is still the one this node created
    bus_etcd_compare_t mine = { self->leader_key, false, fence };
    bus_etcd_result_t result;
    int rc = bus_etcd_txn_put (self->etcd, &mine, 1, self->sync_key, name, 0,
                               timeout_ms, &result, err, err_cap);
    if (rc == 0 && !result.succeeded)
        rc = bus_error_set (err, err_cap, BUS_ERR_FORBIDDEN,
                            "leader: %s no longer holds %s", self->name,
                            self->leader_key);
    return rc;
}

int
bus_leader_sync_name (bus_leader_t *self, char *name, size_t cap,
                      int timeout_ms, char *err, size_t err_cap)
{
    bus_etcd_result_t result;
    int rc = bus_etcd_get (self->etcd, self->sync_key, timeout_ms, &result, err,
                           err_cap);
    if (cap)
        snprintf (name, cap, "%s", rc == 0 ? result.value : "");
    return rc;
}

int
bus_leader_resign (bus_leader_t *self, int timeout_ms, char *err,
                   size_t err_cap)
{
    //  Not leader from this instant, before etcd hears of it
    atomic_store (&self->deadline, 0);
    s_keeper_stop (self);
    atomic_store (&self->fence, 0);
    if (self->lease == 0)
        return 0;
    bus_etcd_result_t result;
    int rc = bus_etcd_lease_revoke (self->etcd, self->lease, timeout_ms,
                                    &result, err, err_cap);
    self->lease = 0;
    return rc == BUS_ERR_NOT_FOUND ? 0 : rc;
}
