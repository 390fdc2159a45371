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

/*  Why a replica stopped for good, for a program to decide on (a group
    member moves its data dir aside for DIVERGED only); the words are
    for people.  Values are not on the wire.  */
typedef enum {
    BUS_REPLICA_RUNNING = 0, /* not stopped                              */
    BUS_REPLICA_DIVERGED,    /* its log is ahead of the writer's, or an
                                entry differs: it followed another run of
                                the same store (copy it again)           */
    BUS_REPLICA_OTHER_STORE, /* its data dir holds another store         */
    BUS_REPLICA_PRUNED,      /* the writer's log starts past its end     */
    BUS_REPLICA_REFUSED,     /* the writer refused it (not allowed)      */
    BUS_REPLICA_BROKEN       /* the same batch failed again and again    */
} bus_replica_failure_t;

/*  Its failure (BUS_REPLICA_RUNNING, 0, if it has not stopped), with the
    reason in words in why[why_cap] if it has.  A replica that is not a
    standby raised SIGTERM in the process then, so that the node stops.
    NULL-safe (RUNNING).  */
bus_replica_failure_t bus_replica_failed (bus_replica_t *self, char *why,
                                          size_t why_cap);

/*  The failure's name ("diverged", "other_store"...; "running").  */
const char *bus_replica_failure_name (bus_replica_failure_t failure);

bus_replica_stats_t bus_replica_stats (bus_replica_t *self);

#ifdef __cplusplus
}
#endif
#endif
