/*  bus_member.h — a writer-group member: `orderbus writer` with
    leader/etcd (docs/failover.md).

    The member campaigns for the group's leader key (bus_leader).  While
    it leads, it runs the writer (bus_writer) on its data directory,
    stamped with an epoch that carries the fencing token, and names its
    synchronous standby in etcd; the writer checks the lease before every
    commit and every release of acks (bus_writer_lead_t).  While it does
    not lead, it follows the leader as a standby replica (bus_replica) on
    the same data directory through leader/peers, watches the leader key,
    and campaigns when it goes; winning, it promotes: the replica stops
    after its last commit, and the writer starts on the same store.

    A leader that loses its lease stops its writer (its sockets close, so
    gateways and edges stop talking to it) and becomes a standby.  If the
    new leader calls its log ahead or diverged (its unacknowledged tail),
    the data directory is moved aside to <dir>.discarded-<epoch>-<time>,
    kept and logged, and the standby follows from scratch.

    Threads: one actor (the member's) owns the leader, the writer and the
    replica; the writer's intake thread calls the lease check (atomic)
    and, once, the sync naming (under a mutex with the actor).  */

#ifndef BUS_MEMBER_H_INCLUDED
#define BUS_MEMBER_H_INCLUDED

#include "orderbus/bus_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_member_t bus_member_t;

/*  Start the member (config->leader_etcd set).  NULL with err set if
    etcd's settings are refused (bus_leader_new).  */
bus_member_t *bus_member_new (const bus_config_t *config, char *err,
                              size_t err_cap);

/*  Stop: the writer or the replica, then resign.  NULL-safe.  */
void bus_member_destroy (bus_member_t **self_p);

/*  True, with why, if the member stopped for good (it raised SIGTERM).  */
bool bus_member_failed (bus_member_t *self, char *why, size_t why_cap);

#ifdef __cplusplus
}
#endif
#endif
