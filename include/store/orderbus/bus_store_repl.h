/*  bus_store_repl.h — the store's side of replication (docs/replication.md):
    reading the writer's history as changes, and applying them to a
    replica's store so that its log is the writer's, byte for byte.

    A change is one log entry as the writer holds it: its seq, the event's
    encoding exactly as logged, and the idempotency key that committed it
    with that key's fingerprint ("" and 0 if none).  The log alone cannot
    rebuild the keys; everything else a replica holds (orders, the open
    index, carts, last_order_id) it rebuilds from each event as the writer
    did (bus_store_append's state), so a promoted replica's state is the
    writer's.  The menu document travels beside the changes with its
    version.

    Identity: a replica's store IS the writer's history.  A new, empty
    store takes the writer's identity (bus_epoch_t.id) and records the
    epoch it follows; once promoted, bus_store_epoch_next starts an epoch
    whose parent is the writer's last and whose base is its last seq, so
    edges continue that history rather than start over.  */

#ifndef BUS_STORE_REPL_H_INCLUDED
#define BUS_STORE_REPL_H_INCLUDED

#include "orderbus/bus_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seq;
    const void *event; /* the log entry's bytes (an encoded bus_event_t) */
    size_t size;
    const char *key; /* its idempotency key, "" if none               */
    uint64_t fingerprint;
} bus_store_change_t;

/*  Called once per change (valid only during the call).  Non-zero stops.  */
typedef int (bus_store_change_fn) (const bus_store_change_t *change, void *arg);

/*  Read side (any thread): call fn for each change with seq >= from
    (from 0 counts as 1), ascending, at most limit, read in one
    transaction with *last_seq (the last committed seq) and *menu_version
    (0: no menu).  BUS_ERR_PRUNED if retention deleted seq from: the
    history before it cannot be sent.  */
int bus_store_changes (bus_store_t *self, uint64_t from, uint32_t limit,
                       bus_store_change_fn *fn, void *arg, uint64_t *last_seq,
                       uint64_t *menu_version);

/*  The checksum of log entry seq (0 for seq 0): a replica says it in its
    hello, and the writer compares it with its own entry at that seq to
    tell a replica whose log diverged.  0, BUS_ERR_NOT_FOUND (no such
    entry), BUS_ERR_DAMAGED or BUS_ERR_STORAGE.  */
int bus_store_log_sum (bus_store_t *self, uint64_t seq, uint64_t *sum);

/*  Write side, in the open write transaction (bus_store_begin): follow
    the writer's history writer.  An empty store (nothing logged or
    pruned) takes writer's identity; a store of another identity is
    refused (BUS_ERR_CONFLICT), and an epoch older than the one the
    store last followed (BUS_ERR_FORBIDDEN: fencing); a newer epoch is
    recorded, and bus_store_epoch says it once the transaction commits
    (an aborted one leaves the store following what it followed).
    why[why_cap] says what was refused, in words.  */
int bus_store_follow (bus_store_t *self, const bus_epoch_t *writer, char *why,
                      size_t why_cap);

/*  Write side, in the open write transaction: its last seq so far.  */
uint64_t bus_store_applied_seq (bus_store_t *self);

/*  Write side, in the open write transaction: append one change.  Its
    seq must be the last + 1 (else BUS_ERR_INVALID: a gap or a repeat);
    its bytes must decode as the event of that seq (else
    BUS_ERR_MALFORMED); its key, if any, must be a valid key.  The log
    entry is stored as the writer stored it, its state rebuilt and its
    key recorded.  why[why_cap] says what was refused.  0, those, or
    bus_store_append's errors.  */
int bus_store_apply (bus_store_t *self, const bus_store_change_t *change,
                     char *why, size_t why_cap);

/*  Write side, in the open write transaction: the menu document json
    (len bytes, JSON text) is current at version (>= 1).  */
int bus_store_menu_adopt (bus_store_t *self, const char *json, size_t len,
                          uint64_t version);

#ifdef __cplusplus
}
#endif
#endif
