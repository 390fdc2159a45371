/*  bus_leader.h — leadership of a writer group, held in etcd.

    The model is Patroni's synchronous mode (docs/leadership.md): the
    leader holds /orderbus/<group>/leader, written only if absent, under
    a lease of the group's TTL that it keeps alive every TTL/3 from a
    thread of its own.  /orderbus/<group>/sync names the synchronous
    standby: once set, only the node it names may take over.

    The promise: a leader that cannot renew its lease stops being leader
    before etcd can let the lease expire.  etcd restarts a lease's TTL
    when it receives a keepalive, which is after this node sent it; so
    the lease lives at least until (send time + TTL) by etcd's clock.
    bus_leader_is_leader turns false at (send time of the last renewed
    keepalive + TTL - BUS_LEADER_MARGIN), by this node's monotonic
    clock, whatever its keepalive thread is doing.  The margin covers
    the drift of the two monotonic clocks over one TTL (NTP keeps rates
    within 500 ppm, a millisecond over 2 s) and the time between a
    caller's check and its act (an acknowledgement leaving), with room.

    Fencing: the leader key's create_revision, i.e. the revision of the
    transaction that made this node leader, is the epoch of this
    leadership.  etcd's revision only grows, so every takeover gets a
    higher one.

    Threads: bus_leader_is_leader and bus_leader_fence may be called from
    any thread; every other call from the owner's thread only.  The lost
    callback runs on the keepalive thread.  */

#ifndef BUS_LEADER_H_INCLUDED
#define BUS_LEADER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "orderbus/bus_etcd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_leader_t bus_leader_t;

/*  The margin, in ms, by which a leader steps down before its lease can
    expire: a quarter of the TTL (500 ms of the default 2 s).  */
#define BUS_LEADER_MARGIN(ttl_ms) ((ttl_ms) / 4)

#define BUS_LEADER_NAME_MAX 80   //  as a node name (BUS_NAME_MAX - 1)

typedef struct {
    const char *endpoints;     /* etcd, as bus_etcd_new takes them   */
    bool insecure;             /* plain http:// off loopback allowed */
    const bus_etcd_tls_t *tls; /* NULL: none                         */
    const char *group;         /* writer group: the keys' folder     */
    const char *name;          /* this node, unique in the group     */
    int ttl_s;                 /* lease TTL asked, 1..3600; etcd may
                                   raise it, the one granted counts   */
} bus_leader_config_t;

/*  What a campaign found.  */
typedef struct {
    bool leader;                          /* this node leads now             */
    bool refused;                         /* sync names another node         */
    char holder[BUS_LEADER_NAME_MAX + 1]; /* who leads ("" if nobody)  */
    int64_t fence;                        /* the holder's epoch (0 if none)  */
    char sync[BUS_LEADER_NAME_MAX + 1];   /* the sync standby, or ""   */
} bus_leader_state_t;

/*  Called once when this node stops being leader without resigning
    (lease lost, etcd unreachable past the deadline), on the keepalive
    thread.  bus_leader_is_leader is already false then.  */
typedef void (bus_leader_lost_fn) (void *arg);

/*  New candidate; campaigns only when told.  NULL with words in err for
    a bad config (names of [A-Za-z0-9_.-], bad endpoints).  Caller owns. */
bus_leader_t *bus_leader_new (const bus_leader_config_t *config, char *err,
                              size_t err_cap);

/*  Resigns if leader (the revoke waits up to 1 s for etcd); NULL-safe;
    nulls *self_p.  */
void bus_leader_destroy (bus_leader_t **self_p);

/*  Set the lost callback (before campaigning).  */
void bus_leader_on_lost (bus_leader_t *self, bus_leader_lost_fn *fn, void *arg);

/*  Try once to become leader: if the leader key is absent and the sync
    key is absent or names this node, write it under a new lease, in one
    transaction that also checks the sync key is as read.  0 with the
    outcome in *state (leader, or who holds it, or refused), or the
    error of the etcd call.  Already leader: 0 and leader at once.  The
    holder may be this node's own name, from an earlier run whose lease
    has not expired yet: wait for it like any other.  */
int bus_leader_campaign (bus_leader_t *self, int timeout_ms,
                         bus_leader_state_t *state, char *err, size_t err_cap);

/*  Wait until the leader key changes from what the last campaign saw
    (e.g. deleted: time to campaign again), up to timeout_ms.  0 on a
    change, BUS_ERR_TIMEOUT, or an etcd error.  */
int bus_leader_wait (bus_leader_t *self, int timeout_ms, char *err,
                     size_t err_cap);

/*  True while this node leads and its lease cannot have expired: any
    thread; a clock read and an atomic load.  */
bool bus_leader_is_leader (bus_leader_t *self);

/*  The epoch of this leadership (see above), 0 when not leader.  Any
    thread.  */
int64_t bus_leader_fence (bus_leader_t *self);

/*  Monotonic ms (zclock_mono) at which the last renewed keepalive (or
    the lease grant) was sent; 0 when not leader.  For tests and logs.  */
int64_t bus_leader_renewed_at (bus_leader_t *self);

/*  The lease TTL etcd granted, in ms (0 before a campaign won).  */
int bus_leader_ttl_ms (bus_leader_t *self);

/*  Leader only: name the synchronous standby (1..80 of [A-Za-z0-9_.-]),
    in a transaction that holds only while this node's leader key is
    the one it created, so a deposed leader cannot.  Once set, the key
    is replaced, never deleted (docs/leadership.md says why).
    BUS_ERR_FORBIDDEN when not (or no longer) leader.  */
int bus_leader_set_sync (bus_leader_t *self, const char *name, int timeout_ms,
                         char *err, size_t err_cap);

/*  Read the sync standby's name into name[cap] ("" if none set).  */
int bus_leader_sync_name (bus_leader_t *self, char *name, size_t cap,
                          int timeout_ms, char *err, size_t err_cap);

/*  Stop leading: is_leader turns false first, then the lease is revoked
    so that the leader key goes at once and a successor need not wait
    for the TTL.  0 (also when not leader), or the revoke's error: the
    lease then expires by itself.  */
int bus_leader_resign (bus_leader_t *self, int timeout_ms, char *err,
                       size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
