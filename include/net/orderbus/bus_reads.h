/*  bus_reads.h — where a gateway's or edge's reads go: the replicas of
    endpoints/reads (docs/replication.md, "What a replica serves"), or
    the writer.

    Moved to a replica: SNAPSHOT, REPLAY, LIST, GET and REPORT, the reads
    that only show what is stored.  Everything else (PING, MENU, TABLE,
    STATS), and every read when endpoints/reads is empty, goes to the
    writer's sync client, unchanged.  Each call goes to one replica, the
    next in turn (round robin) among those not resting; the writer
    answers instead, for that call, when the replica:

      - did not answer in time (it then rests S_REST_MS: no call tries
        it before, so a stopped replica costs one timeout, not one each);
      - is not following a writer yet (unavailable);
      - has not got an order asked by id (not_found: read-your-writes,
        the order may just have been acknowledged);
      - holds fewer events than a replay asked for (it is behind: fewer
        events is not "no more events");
      - answers from another history than follows, the one the caller
        follows (a replica not yet re-attached to a new leader after a
        failover, still on the old epoch): its answer would take the
        caller back to a history it left;
      - answers from an epoch older than the newest heard in a heartbeat
        (bus_reads_set_older: its client turns it into unavailable).

    A replica's answer carries reply->writer_seq (how far behind it is:
    writer_seq - seq); the writer's has 0 there.

    Thread-safe: bus_reads_call may be called from many threads at once
    (each bus_sync_t has its pool).  */

#ifndef BUS_READS_H_INCLUDED
#define BUS_READS_H_INCLUDED

#include "orderbus/bus_config.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_READS_MAX 16 /* replicas in endpoints/reads, at most */

typedef struct _bus_reads_t bus_reads_t;

typedef struct {
    uint64_t replica; /* calls a replica answered                    */
    uint64_t writer;  /* movable calls the writer answered instead   */
    int replicas;     /* replicas in endpoints/reads                 */
} bus_reads_stats_t;

/*  The reads of config (endpoints/reads, link/reads_key), falling back
    on writer (borrowed: it must outlive the object).  curve is the
    node's links (borrowed): with CURVE on, each replica is pinned by its
    link/reads_key; without it, every replica endpoint must be local
    unless --insecure-plaintext-links.  Returns the object (with no
    replicas when endpoints/reads is empty), or NULL with err set, naming
    the setting at fault.  Caller owns.  */
bus_reads_t *bus_reads_new (const bus_config_t *config, bus_sync_t *writer,
                            const bus_curve_t *curve, char *err,
                            size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_reads_destroy (bus_reads_t **self_p);

/*  As bus_sync_call, answered by a replica or the writer (above).
    follows: the history the caller follows (NULL, or epoch 0: any).  */
int bus_reads_call (bus_reads_t *self, bus_sync_req_t *req,
                    bus_sync_reply_t *reply, zmsg_t **items,
                    const bus_epoch_t *follows);

/*  bus_sync_set_older on each replica's client (the writer's is its
    owner's to set).  */
void bus_reads_set_older (bus_reads_t *self, bus_sync_older_fn *fn, void *arg);

/*  Counters so far.  */
bus_reads_stats_t bus_reads_stats (bus_reads_t *self);

/*  Selftest.  */
void bus_reads_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
