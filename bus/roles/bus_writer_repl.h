/*  bus_writer_repl.h — the writer's side of replication: the
    writer/replicate ROUTER and the replicas attached to it
    (docs/replication.md).  Private to bus_writer.c.

    Everything here belongs to the writer's INTAKE thread: the socket, the
    replicas' table, the sends.  Replication state is intake state, so
    nothing crosses threads but the counters (atomics).

    Per attached replica: its name, the seq sent up to, the seq it
    confirmed durable, when it was last heard.  bus_writer_repl_pump
    sends each one what it lacks, read back from the log
    (bus_store_changes), at most BUS_REPL_BATCH_MAX changes per replica
    per call and at most S_WINDOW unconfirmed changes per replica, so a
    replica far behind never stalls intake: the intake loop calls it once
    a turn, after its batch.  */

#ifndef BUS_WRITER_REPL_H_INCLUDED
#define BUS_WRITER_REPL_H_INCLUDED

#include <jansson.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_store.h"

typedef struct _bus_writer_repl_t bus_writer_repl_t;

/*  Bind config->replicate (a CURVE server in domain "replicate" when
    curve is on: only certificates of role replica may attach).  NULL
    with err set if it cannot be bound.  store, curve and epoch are
    borrowed for the object's life.  */
bus_writer_repl_t *bus_writer_repl_new (const bus_config_t *config,
                                        bus_store_t *store, bus_curve_t *curve,
                                        const bus_epoch_t *epoch, char *err,
                                        size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_writer_repl_destroy (bus_writer_repl_t **self_p);

/*  The socket to poll.  */
zsock_t *bus_writer_repl_socket (bus_writer_repl_t *self);

/*  Read every message waiting: hellos, confirmations.  */
void bus_writer_repl_recv (bus_writer_repl_t *self);

/*  Send each attached replica what it lacks (bounded, see above), and an
    empty batch to one that was sent nothing for a heartbeat.  Replicas
    other than writer/sync_replica are sent the log only up to released
    (UINT64_MAX: all of it): in synchronous mode, what the synchronous
    replica confirmed, so that a read replica never holds a batch that
    was never acknowledged (a deposed or killed leader's tail, which a
    new leader does not have: the replica could not follow it).  True if
    some replica is still behind with room in its window: call again
    without waiting.  The menu likewise: they are sent it only while its
    version is at most menu_released (the store holds the newest menu
    only: a newer one waits until it is released).  */
bool bus_writer_repl_pump (bus_writer_repl_t *self, uint64_t released,
                           uint64_t menu_released);

/*  The seq the replica named name has confirmed durable, and true if it
    is attached and was heard within the link timeout; false (and 0)
    otherwise.  */
bool bus_writer_repl_confirmed (bus_writer_repl_t *self, const char *name,
                                uint64_t *seq);

/*  Counters: frames dropped as undecodable, hellos refused.  */
uint64_t bus_writer_repl_dropped (bus_writer_repl_t *self);
uint64_t bus_writer_repl_refused (bus_writer_repl_t *self);

/*  Take a summary of the replicas for bus_writer_repl_json: intake
    thread, once a heartbeat.  */
void bus_writer_repl_summarize (bus_writer_repl_t *self);

/*  The last summary: [{name, sent, confirmed, lag_seqs, lag_ms,
    heard_ms_ago}] (a new reference; [] for NULL).  Any thread.  */
json_t *bus_writer_repl_json (bus_writer_repl_t *self);

#endif
