/*  bus_ledger.h — applies intake commands to the store, inside the
    writer's open batch transaction: dedupes by idempotency key, checks
    each command against the authoritative state (menu, order versions and
    lifecycle, carts), appends the events it produces and records the key.

    A refused command records no key (nothing was done), but the refusal
    is remembered for a minute for that exact request (key and
    fingerprint): a gateway resends until it hears back, and a copy still
    in flight must get the same "no", not an order made after the state
    changed.  A corrected request (another fingerprint) is applied.

    The writer owns the batching, the commit and the publishing; the
    ledger owns the rules.  It keeps the authoritative menu in memory (86-ing
    changes it), so after a batch that did not commit the writer calls
    bus_ledger_reload to drop changes that never reached the disk.  */

#ifndef BUS_LEDGER_H_INCLUDED
#define BUS_LEDGER_H_INCLUDED

#include "orderbus/bus_model.h"
#include "orderbus/bus_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_ledger_t bus_ledger_t;

/*  Called for each event a command appends, in sequence order, right
    after the append, with its encoding as logged in *body (the callee
    takes it).  The event is not committed yet: publish only after the
    commit.  */
typedef void (bus_ledger_emit_fn) (const bus_event_t *event, zframe_t **body,
                                   void *arg);

/*  Counters.  */
typedef struct {
    uint64_t applied;    /* commands that committed an event           */
    uint64_t duplicates; /* answered from the idempotency key          */
    uint64_t rejected;   /* refused: invalid, unknown, conflict        */
} bus_ledger_stats_t;

/*  New ledger over store (borrowed), loading the menu stored in it; tax_bp
    is the tax rate in basis points.  NULL if out of memory.  */
bus_ledger_t *bus_ledger_new (bus_store_t *store, int tax_bp);

/*  NULL-safe; nulls *self_p.  */
void bus_ledger_destroy (bus_ledger_t **self_p);

/*  Apply cmd at time now in the store's open transaction.  *ack is
    filled: status 0 with the committed (or, for a known key, the
    original) event, or a rejection with its reason.  Returns 0, or a
    storage error (BUS_ERR_MAP_FULL, BUS_ERR_STORAGE, BUS_ERR_NOMEM) that
    fails the whole batch.  */
int bus_ledger_apply (bus_ledger_t *self, const bus_cmd_t *cmd, int64_t now,
                      bus_ack_t *ack, bus_ledger_emit_fn *emit, void *arg);

/*  Reload the menu from the store's committed state.  */
void bus_ledger_reload (bus_ledger_t *self);

/*  A copy of the counters.  */
bus_ledger_stats_t bus_ledger_stats (bus_ledger_t *self);

/*  Selftest (bus/domain/bus_ledger_test.c).  */
void bus_ledger_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
