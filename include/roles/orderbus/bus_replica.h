/*  bus_replica.h — the replica role (`orderbus replica`,
    docs/replication.md): follows the writer's log into its own LMDB
    environment over the writer's writer/replicate socket, and confirms
    what it holds durable.

    It connects a DEALER to replica/upstream, says HELLO (its name, its
    store's identity, last seq and that entry's checksum), then applies
    every batch it has received in one write transaction of its own
    (group commit), commits it durably and confirms the last seq.  A new,
    empty store takes the writer's identity; a store of another identity,
    a log the writer calls ahead or diverged, or a history that cannot be
    sent (pruned) stop the replica with the reason (bus_replica_failed).
    A batch of an epoch older than the one it follows is refused and
    dropped (fencing).  After a silence of link/timeout_ms (the writer
    sends at least a heartbeat's empty batch), or when a restarted writer
    does not know it, it says HELLO again from its last seq.

    Threads: one actor owns the socket and the store's write side; the
    counters are atomics any thread reads.  */

#ifndef BUS_REPLICA_H_INCLUDED
#define BUS_REPLICA_H_INCLUDED

#include "orderbus/bus_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_replica_t bus_replica_t;

/*  What it holds, and how far behind it is.  */
typedef struct {
    uint64_t seq;         /* its last committed (and confirmed) seq        */
    uint64_t writer_seq;  /* the writer's last seq, as last heard          */
    int64_t behind_ms;    /* how long it has been behind (0: caught up)    */
    int64_t heard_ms_ago; /* since the writer was last heard (-1: never)   */
    uint64_t batches;     /* durable commits                               */
    uint64_t dropped;     /* messages dropped (undecodable, older epoch)   */
} bus_replica_stats_t;

/*  Open config->data_dir and start following config->replicate.  NULL
    with err set if it cannot start.  */
bus_replica_t *bus_replica_new (const bus_config_t *config, char *err,
                                size_t err_cap);

/*  The same for a writer-group member's standby (bus_member.c): with
    standby, a failure stops the replica's thread but does not stop the
    process; its member reads bus_replica_failed and acts.  */
bus_replica_t *bus_replica_new_standby (const bus_config_t *config,
                                        bool standby, char *err,
                                        size_t err_cap);

/*  Stop after the transaction in progress.  NULL-safe; nulls *self_p.  */
void bus_replica_destroy (bus_replica_t **self_p);

/*  True, with the reason in why[why_cap], if the replica stopped for
    good (another store's identity, a diverged log...).  It raised
    SIGTERM in the process then, so that the node stops.  */
bool bus_replica_failed (bus_replica_t *self, char *why, size_t why_cap);

bus_replica_stats_t bus_replica_stats (bus_replica_t *self);

#ifdef __cplusplus
}
#endif
#endif
