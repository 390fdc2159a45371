/*  bus_writer.h — the writer role: the only process that writes LMDB.

    Binds three sockets (from the config):
      intake  PULL    commands from gateways (one frame, a bus_cmd_t)
      events  PUB     [topic][body]: committed events on "E/<table>/",
                      acks on "A/<origin>/", heartbeats on "H/"
      sync    ROUTER  snapshot / replay / get / list / menu queries
    and, with writer/replicate, a fourth:
      replicate ROUTER  replicas follow the log (docs/replication.md);
                      with writer/sync_replica a batch's events and acks
                      wait until that replica confirms it durable (or,
                      past writer/sync_timeout_ms, its acks are 503s, or
                      with writer/sync_fallback async go out without it)

    Intake runs as group commit: the writer takes whatever commands are
    queued (up to batch_max) into one LMDB write transaction, commits it
    durably, and only then publishes the batch's events (in sequence
    order) and acks.  Between batches the same thread applies retention
    (store/retain_days, store/key_retain_days; docs/retention.md): at
    start, then every minute, a few hundred keys and events per
    transaction; a replay from a pruned seq gets BUS_ERR_PRUNED, "take a
    snapshot instead", with the log's first seq in the reply's next.  Queries run on their own thread with LMDB read
    transactions, so they never wait for the intake loop.

    Storage state (bus_storage_t): every batch's commit sets it, ok,
    failing or full (no space left on the device).  A batch that failed
    is answered 503 in full, and the environment reopened; a change of
    state is logged once, not per batch, and heartbeats carry the state
    (one is sent at once on a change), so gateways and edges answer
    /healthz 503 while it is not ok.  Meanwhile a write that changes
    nothing (bus_store_probe) tries the disk once a heartbeat, so the
    state comes back to ok without waiting for an order.  */

#ifndef BUS_WRITER_H_INCLUDED
#define BUS_WRITER_H_INCLUDED

#include "orderbus/bus_config.h"
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Peers (gateways, edges) the writer keeps track of at once, from their
    pings.  A full table forgets the one gone longest; with none gone, a
    new peer is answered but not tracked.  */
#define BUS_WRITER_PEERS_MAX 1024

typedef struct _bus_writer_t bus_writer_t;

/*  Counters, for logs, /healthz and tests.  */
typedef struct {
    uint64_t commands;         /* commands decoded                           */
    uint64_t committed;        /* events committed                           */
    uint64_t duplicates;       /* commands answered from the idempotency key */
    uint64_t rejected;         /* commands refused (invalid, conflict)       */
    uint64_t dropped;          /* frames dropped as undecodable              */
    uint64_t batches;          /* durable commits                            */
    uint64_t grows;            /* map size doublings                         */
    uint64_t storage_failures; /* batches whose commit failed (nacked)    */
    uint64_t refused;          /* commands read, not applied: the sender's
                                  role or name does not allow them (CURVE
                                  on), or a field rule is broken         */
    uint64_t links_refused;    /* handshakes refused: unknown key, not CURVE */
    uint64_t pruned_events;    /* log entries deleted by retention           */
    uint64_t pruned_keys;      /* idempotency keys deleted by retention      */
    bus_storage_t storage;     /* what the last commit (or probe) found:
                                  while not ok, nothing is committed     */
    bool sync_down;            /* the sync replica is not confirming      */
} bus_writer_stats_t;

/*  Open the store, load config->menu_path into it if set, bind the
    sockets and start the intake and sync threads.  Returns the writer, or
    NULL with the reason in err[err_cap].  */
bus_writer_t *bus_writer_new (const bus_config_t *config, char *err,
                              size_t err_cap);

/*  A writer-group member's leadership (bus_member.c): may_publish(arg),
    called on the intake thread right before a batch is committed and
    before each release of events and acks, says whether the lease still
    holds (bus_leader_is_leader); while it does not, nothing is
    committed and every command is answered 503 "not the primary any
    more".  fence: the leader key's create_revision, the low 32 bits of
    this run's epoch (bus_store_epoch_next_fenced).  */
typedef bool (bus_writer_may_fn) (void *arg);
typedef struct {
    bus_writer_may_fn *may_publish;
    bus_writer_may_fn *may_go_async;   //  sync_fallback async engages only
                                       //  if this returns true (NULL: yes)
    void *arg;
    int64_t fence;
} bus_writer_lead_t;

/*  bus_writer_new for a group member's leadership (lead may be NULL).  */
bus_writer_t *bus_writer_new_led (const bus_config_t *config,
                                  const bus_writer_lead_t *lead, char *err,
                                  size_t err_cap);

/*  Stop the threads after the batch in progress (its transaction is either
    committed or aborted, never half-written) and close the store.
    NULL-safe; nulls *self_p.  */
void bus_writer_destroy (bus_writer_t **self_p);

/*  A copy of the counters so far.  */
bus_writer_stats_t bus_writer_stats (bus_writer_t *self);

/*  For a group member (bus_member.c), from any thread: the sync
    replica's confirmed seq (0 while not heard within link/timeout_ms),
    the log's last seq, and how many times the replica turned confirming
    again after "not confirming" (each such turn follows one may_go_async
    call, and the writer checked confirmed >= last then).  */
typedef struct {
    uint64_t confirmed;
    uint64_t last;
    uint64_t recovered;
} bus_writer_sync_t;
bus_writer_sync_t bus_writer_sync (bus_writer_t *self);

/*  Selftest (bus_writer_test.c): a writer on inproc:// endpoints and a
    temporary store, driven over its own sockets.  */
void bus_writer_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
