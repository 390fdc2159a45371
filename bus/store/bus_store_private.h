/*  bus_store_private.h — what the store's selftest (bus_store_test.c)
    checks inside the store, which the public API rightly hides.  Not part
    of the public API: it lives next to the sources, not in include/.  */

#ifndef BUS_STORE_PRIVATE_H_INCLUDED
#define BUS_STORE_PRIVATE_H_INCLUDED

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include "orderbus/bus_store.h"

/*  Numbers as LMDB keys and meta values: 8 bytes big-endian, so that
    LMDB's memcmp order is numeric order.  Shared by bus_store.c and
    bus_store_verify.c, which read the same records.  */
static inline void
bus_store_u64_put (unsigned char *p, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        p[i] = (unsigned char) value;
}

static inline uint64_t
bus_store_u64_get (const void *data)
{
    const unsigned char *p = (const unsigned char *) data;
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = value << 8 | p[i];
    return value;
}

static inline MDB_val
bus_store_u64_val (unsigned char buf[8], uint64_t value)
{
    bus_store_u64_put (buf, value);
    return (MDB_val){ 8, buf };
}

//  The map size bus_store_new uses when asked for 0
#define BUS_STORE_MAP_DEFAULT ((size_t) 64 << 20)

/*  Read the committed value of meta counter name ("last_seq",
    "last_order_id", "menu_version") in a read transaction of its own; a
    counter never written reads 0.  0 or BUS_ERR_STORAGE.  */
int bus_store_meta_read (bus_store_t *self, const char *name, uint64_t *value);

/*  Write meta counter name durably in a write transaction of its own.
    No write transaction may be open.  0 or BUS_ERR_STORAGE.  */
int bus_store_meta_write (bus_store_t *self, const char *name, uint64_t value);

/*  What dir/committed records: the identity and last seq the directory
    last committed.  False if it has no such file, or one that does not
    read.  */
bool bus_store_seen_read (const char *dir, char id[BUS_WRITER_ID_MAX],
                          uint64_t *seq);

/*  A stored log entry or order (under key id) checked against its
    checksum, and val set to its bytes: 0.  -1 if it fails, or has no
    checksum though it must (val is left alone); 1 for a record from
    before checksums, which has none (val is its bytes as they are).  */
int bus_store_unseal (uint64_t id, bool must, MDB_val *val);

/*  What the last open refused as damaged in this process said ("" if
    none).  Not thread-safe: for bus_store_verify's child, which opens
    one store on one thread.  */
const char *bus_store_last_damage (void);

/*  The store's LMDB environment (borrowed), NULL after a failed reopen.  */
MDB_env *bus_store_env (bus_store_t *self);

/*  Retention's part of bus_store_test (bus_store_retention_test.c), in
    directories under root.  */
void bus_store_retention_test (const char *root, bool verbose);

/*  Replication's part of bus_store_test (bus_store_repl_test.c).  */
void bus_store_repl_test (const char *root, bool verbose);

/*  ---- Replication's hooks (bus_store_repl.c) ----------------------------
    The raw records bus_store_repl.h's calls are made of; they check
    nothing that the caller must (the seq order, the identity).  */

/*  In the open write transaction: nothing logged and nothing pruned.  */
bool bus_store__empty (bus_store_t *self);

/*  The last seq as of the open write transaction.  */
uint64_t bus_store__pending_seq (bus_store_t *self);

/*  In the open write transaction: put data, the encoding of event, as
    log entry event->seq (which must be the pending seq + 1), sealed, and
    the state it leaves (bus_store_append's); an order's id raises
    last_order_id.  0 or a bus_err_t.  */
int bus_store__log_put (bus_store_t *self, const void *data, size_t size,
                        const bus_event_t *event);

/*  In the open write transaction: the menu document json is the current
    one, at version.  */
int bus_store__menu_adopt (bus_store_t *self, const char *json, size_t len,
                           uint64_t version);

/*  In the open write transaction: the store's identity and epoch are
    epoch's, from the commit on (bus_store_epoch reads them then; an
    aborted or failed transaction leaves the epoch followed before).  */
int bus_store__epoch_adopt (bus_store_t *self, const bus_epoch_t *epoch);
//  The epoch the open batch follows (an adopted one, until its commit),
//  else the committed one
void bus_store__pending_epoch (bus_store_t *self, bus_epoch_t *epoch);

/*  Called for each log entry: its seq, its bytes as logged, its
    idempotency key ("" if none) and that key's fingerprint.  Non-zero
    stops the walk.  */
typedef int (bus_store__log_fn) (uint64_t seq, const void *data, size_t size,
                                 const char *key, uint64_t fingerprint,
                                 void *arg);

/*  In one read transaction: *last_seq and *menu_version, then fn for
    each log entry from seq from on, at most limit.  BUS_ERR_PRUNED if
    from was pruned.  */
int bus_store__walk_log (bus_store_t *self, uint64_t from, uint32_t limit,
                         bus_store__log_fn *fn, void *arg, uint64_t *last_seq,
                         uint64_t *menu_version);

/*  The checksum of log entry seq's bytes (its seal's), 0 for seq 0.  0,
    BUS_ERR_NOT_FOUND, BUS_ERR_DAMAGED or BUS_ERR_STORAGE.  */
int bus_store__log_sum (bus_store_t *self, uint64_t seq, uint64_t *sum);

#endif