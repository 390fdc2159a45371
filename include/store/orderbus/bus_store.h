/*  bus_store.h — the LMDB environment: event log, orders, idempotency keys,
    menu.  Only the writer node writes it.

    Log entries and orders are stored with a checksum (bus_store.c,
    "Record checksums"); one that fails it on read is logged, counted
    (bus_store_damaged) and answered BUS_ERR_DAMAGED, never skipped.

    Databases (named LMDB sub-databases in one environment directory):
      log    seq (8-byte big-endian) -> encoded bus_event_t (bus_codec.h),
                                        sealed (0xc1, checksum, bytes)
      orders id  (8-byte big-endian) -> encoded bus_order_t, sealed
      open   id  (8-byte big-endian) -> "" for orders whose status is open
      keys   idempotency key         -> {fingerprint, seq} (16 bytes): the
                                        event the command committed
      kseq   seq (8-byte big-endian) -> idempotency key: the keys by age,
                                        for retention
      carts  table label             -> encoded bus_cart_t
      meta   "last_seq", "last_order_id", "menu_version", "pruned_seq",
             "epoch", "epoch_parent", "epoch_base", "sealed_seq",
             "sealed_order" -> u64 big-endian
             "identity"              -> 32 lower-case hex digits
      menu   "current"               -> menu JSON text

    Write side: one thread brackets a batch of calls with bus_store_begin
    and bus_store_commit.  bus_store_commit returns only after LMDB has
    synced the transaction to disk (the environment never uses MDB_NOSYNC):
    that is what makes an ack durable.

    Read side: bus_store_get_order, _snapshot, _replay, _list, _menu_get and
    _last_seq may be called from any thread at any time, concurrently with
    the writer; each opens its own read-only transaction, so it sees one
    consistent committed state and never blocks the writer.

    Beside LMDB's files, the writer keeps dir/committed: one line, the
    store's identity and the last seq it committed, rewritten after every
    commit (bus_store_open says what it is for).

    Map growth: a put that hits MDB_MAP_FULL returns BUS_ERR_MAP_FULL.  The
    caller aborts, calls bus_store_grow, and redoes the batch.  Growth waits
    for in-flight reads (an internal rwlock), since LMDB only allows
    mdb_env_set_mapsize with no transaction active in the process.  */

#ifndef BUS_STORE_H_INCLUDED
#define BUS_STORE_H_INCLUDED

#include <czmq.h>
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_store_t bus_store_t;

/*  Open (creating if needed) the environment in directory dir, which is
    created if missing.  Returns the store, or NULL and sets *err to a
    bus_err_t (and logs the LMDB reason).  map_size is the initial map size
    in bytes; 0 means 64 MiB.  The environment is private to its owner:
    directories made here are 0700 and LMDB's files 0600; an existing
    directory or file that group or others may access is tightened to
    that, with a logged warning, or refused (BUS_ERR_STORAGE) if it
    cannot be.  */
bus_store_t *bus_store_new (const char *dir, size_t map_size, int *err);

/*  bus_store_open's flags.  ACCEPT_RESTORE: open a data file that is
    older than, or another than, what its directory last committed.  */
#define BUS_STORE_ACCEPT_RESTORE 1u

/*  bus_store_new, with the checks of a damaged or replaced file spelled
    out (bus_store_new is this with flags 0).  Each refusal is logged with
    the file, what is wrong and what to do, and changes nothing:
    - BUS_ERR_DAMAGED: data.mdb is shorter than its newest meta page says
      (a page past the end would be a SIGBUS), its meta pages are not
      LMDB's, or its newest log entry or order is not where the meta
      counters say or does not decode.  Pages in the middle are not read
      here: bus_store_verify reads them all.
    - BUS_ERR_ROLLED_BACK, unless flags has BUS_STORE_ACCEPT_RESTORE (then
      it is a logged warning): dir/committed names the store and the seq
      the directory last committed, and data.mdb is a new empty store,
      another store, or that store at a lower seq (an older copy, or a
      newest meta page lost: LMDB falls back to the one before).  A
      directory emptied of both files is a new store: nothing is left to
      tell.
    Other errors are bus_store_new's.  */
bus_store_t *bus_store_open (const char *dir, size_t map_size, unsigned flags,
                             int *err);

/*  Open an existing environment in directory dir for reading only
    (MDB_RDONLY), as a process other than the writer does, safely while the
    writer runs: LMDB readers never block it, and each read-side call sees
    one committed state.  Nothing is created: no directory, no database.
    Only the read-side functions below may be called on the store (the
    write side asserts); bus_store_last_seq gives the seq at open time.
    LMDB still records readers in dir/lock.mdb, so that file must be
    writable.  A reader opened before the writer grows the map may fail
    its later reads (BUS_ERR_STORAGE): reopen it.
    Returns the store, or NULL and sets *err to BUS_ERR_NOT_FOUND if dir
    holds no orderbus environment (no data.mdb, or not one of orderbus's
    databases), else BUS_ERR_STORAGE (logged) or BUS_ERR_NOMEM.  */
bus_store_t *bus_store_open_readonly (const char *dir, int *err);

/*  Close the environment, aborting any open write transaction.
    NULL-safe; sets *self_p to NULL.  */
void bus_store_destroy (bus_store_t **self_p);

/*  Current map size in bytes.  */
size_t bus_store_map_size (bus_store_t *self);

/*  ---- Write side (one thread only) ------------------------------------ */

/*  Open the write transaction for a batch.  0 or BUS_ERR_STORAGE.  */
int bus_store_begin (bus_store_t *self);

/*  Look up an idempotency key in the open transaction (sees this batch's
    own writes).  Returns 0 and fills fingerprint and the seq of the event
    its command committed, or BUS_ERR_NOT_FOUND.  */
int bus_store_key_get (bus_store_t *self, const char *key,
                       uint64_t *fingerprint, uint64_t *seq);

/*  Record key -> {fingerprint, seq} in the open transaction.  */
int bus_store_key_put (bus_store_t *self, const char *key, uint64_t fingerprint,
                       uint64_t seq);

/*  Read the logged event seq in the open transaction.  0,
    BUS_ERR_NOT_FOUND or BUS_ERR_STORAGE.  */
int bus_store_event_lookup (bus_store_t *self, uint64_t seq,
                            bus_event_t *event);

/*  Read table's cart in the open transaction.  0, or BUS_ERR_NOT_FOUND
    for a table whose cart was never used.  */
int bus_store_cart_lookup (bus_store_t *self, const char *table,
                           bus_cart_t *cart);

/*  Read an order in the open transaction.  0 or BUS_ERR_NOT_FOUND.  */
int bus_store_order_lookup (bus_store_t *self, uint64_t id, bus_order_t *order);

/*  Reserve the next order id (1, 2, ...) in the open transaction.  */
uint64_t bus_store_order_next_id (bus_store_t *self);

/*  Append an event in the open transaction: assigns event->seq (last + 1)
    and sets event->order.seq to it, writes the log entry and stores the
    state it leaves: an order event's order (and the open index), a cart
    event's cart.  When logged is not NULL, the event's encoding as logged
    is handed to the caller in *logged (caller owns), to be published as
    it is rather than encoded again.  0, BUS_ERR_MAP_FULL, BUS_ERR_NOMEM or
    BUS_ERR_STORAGE.  */
int bus_store_append (bus_store_t *self, bus_event_t *event, zframe_t **logged);

/*  What one bus_store_prune call did.  */
typedef struct {
    uint32_t events;    /* log entries deleted                            */
    uint32_t keys;      /* idempotency keys deleted                       */
    uint64_t first_seq; /* the oldest seq the log keeps (or will keep, once
                           committed) from now on                       */
    bool more;          /* stopped at max: older ones are left; call again
                           in another transaction                        */
} bus_store_pruned_t;

/*  Retention, in the open transaction: delete, oldest first, at most max
    idempotency keys whose event is older than keys_before_ms, then at
    most max log entries older than log_before_ms (0: keep them all).
    "Older" is by the event's ts_ms, walking the log in seq order (a
    binary search: the log is in time order as far as the writer's clock
    is).  A key always goes with its event at the latest, whatever
    keys_before_ms says, and an event is never deleted while its key is
    kept, so a known key always finds its original event.  Orders, the
    open index, carts and the menu are never pruned: they are the state
    the deleted events left.  Once committed, bus_store_replay from a
    deleted seq answers BUS_ERR_PRUNED.  Keep max small (a few hundred):
    it is the transaction's size.  0, BUS_ERR_MAP_FULL (deleting also
    needs pages), BUS_ERR_NOMEM or BUS_ERR_STORAGE; *pruned is filled.  */
int bus_store_prune (bus_store_t *self, int64_t log_before_ms,
                     int64_t keys_before_ms, uint32_t max,
                     bus_store_pruned_t *pruned);

/*  Commit the open transaction durably.  0, BUS_ERR_MAP_FULL or
    BUS_ERR_STORAGE.  On error the transaction is aborted and nothing of
    it is visible.  A failed commit is not logged: bus_store_storage
    says what it was, and the caller says it once per change.  */
int bus_store_commit (bus_store_t *self);

/*  What the last bus_store_begin or bus_store_commit (or probe) found of
    the disk: BUS_STORAGE_OK if it went through (or none has failed),
    BUS_STORAGE_FULL if it failed for want of space (ENOSPC or EDQUOT),
    BUS_STORAGE_FAILING if it failed otherwise (EIO, a map that could
    not grow...).  why[why_cap] (if not NULL) gets the system's words for
    it ("No space left on device"), "" when ok.  A batch that failed
    before its commit, in the ledger's own puts, leaves it as it was.  */
bus_storage_t bus_store_storage (bus_store_t *self, char *why, size_t why_cap);

/*  Write the last committed seq over itself in a durable transaction of
    its own: a write that reaches the disk, pages and sync, and changes
    nothing, to learn whether a failing disk works again without waiting
    for an order.  No write transaction may be open.  0 or as
    bus_store_begin and bus_store_commit; bus_store_storage says what it
    found.  After a failure, reopen as after a failed commit.  */
int bus_store_probe (bus_store_t *self);

/*  Abort the open transaction, if any.  */
void bus_store_abort (bus_store_t *self);

/*  Double the map size.  No write transaction may be open.  0 or
    BUS_ERR_STORAGE.  */
int bus_store_grow (bus_store_t *self);

/*  Close and reopen the environment, as after a failed commit: LMDB may
    have marked it unusable (MDB_PANIC), and what is on disk is the last
    committed state.  Waits for in-flight reads.  No write transaction may
    be open.  0 or BUS_ERR_STORAGE (a failure is logged, a success is
    not); after a failure every call fails with BUS_ERR_STORAGE until a
    reopen succeeds.  */
int bus_store_reopen (bus_store_t *self);

/*  Replace the menu document (JSON text, not NUL-terminated) in its own
    durable transaction, bumping menu_version.  No write transaction may be
    open.  0 or a bus_err_t.  */
int bus_store_menu_put (bus_store_t *self, const char *json, size_t len);

/*  The same inside the open transaction (an 86 is committed with its
    event); the document last put with bus_store_menu_put stays its
    source.  */
int bus_store_menu_set (bus_store_t *self, const char *json, size_t len);

/*  True if json is the document last put with bus_store_menu_put: the
    menu file has not changed since, so the stored menu (86s and all)
    stands.  */
bool bus_store_menu_is_source (bus_store_t *self, const char *json, size_t len);

/*  The store's history (bus_model.h's bus_epoch_t): its identity, made
    with the environment (a writable open of one without an identity
    gives it one; a read-only open leaves "" then), and the epoch last
    committed by bus_store_epoch_next with its parent and base (all 0 if
    none ever was).  Writer thread, or before it starts.  */
void bus_store_epoch (bus_store_t *self, bus_epoch_t *epoch);

/*  Start a new epoch, committed durably in its own transaction: the start
    time in seconds in the high 32 bits, 32 random bits below, and at
    least the stored epoch + 1; its parent is the stored epoch and its
    base the last committed seq.  So epochs of a store only grow, and a
    copy restored from an older backup, whose stored epoch is an old
    one, still comes back under one no node has seen (unless the clock
    went back and the 32 random bits matched too).  A writer calls it
    once at start, before it binds its sockets.  No write transaction
    may be open.  0 or BUS_ERR_STORAGE.  */
int bus_store_epoch_next (bus_store_t *self);

/*  The same for a leadership won in etcd (docs/failover.md): the low 32
    bits are the fencing token's (the leader key's create_revision), the
    high 32 the start time's seconds, or one more than the stored
    epoch's when that is not later, so the rule above still holds.
    token 0: as bus_store_epoch_next.  */
int bus_store_epoch_next_fenced (bus_store_t *self, int64_t token);

/*  ---- Read side (any thread) ------------------------------------------ */

/*  Called once per item with its encoded bytes (valid only during the
    call).  Return 0 to go on, non-zero to stop early.  */
typedef int (bus_store_item_fn) (const void *data, size_t size, void *arg);

/*  Sequence of the last committed event, 0 for an empty log.  */
uint64_t bus_store_last_seq (bus_store_t *self);

/*  Records that failed their checks on read since open (each logged,
    and answered BUS_ERR_DAMAGED by the call that read it: a record is
    never skipped).  */
uint64_t bus_store_damaged (bus_store_t *self);

/*  Read one committed order.  0, BUS_ERR_NOT_FOUND, BUS_ERR_DAMAGED or
    BUS_ERR_STORAGE.  */
int bus_store_get_order (bus_store_t *self, uint64_t id, bus_order_t *order);

/*  Call fn for every open order (ascending id), then for every cart that
    has lines, all read in one transaction; *seq is set to the last seq
    that state includes and *orders to how many of the items were orders. */
int bus_store_snapshot (bus_store_t *self, bus_store_item_fn *fn, void *arg,
                        uint64_t *seq, uint32_t *orders);

/*  Call fn for each open order of table, then once for its cart (an empty
    cart of version 0 if it never had one), read in one transaction.  */
int bus_store_table (bus_store_t *self, const char *table,
                     bus_store_item_fn *fn, void *arg);

/*  The oldest seq the log still holds (or will hold next): 1 until
    something is pruned, then the seq after the last one pruned.  */
uint64_t bus_store_first_seq (bus_store_t *self);

/*  Call fn for each logged event with seq >= from, ascending, at most
    limit of them.  *last_seq is set to the last committed seq.  If
    retention has deleted seq from (from 0 counts as 1), nothing is
    passed and BUS_ERR_PRUNED is returned: the caller needs a snapshot,
    the events cannot be replayed.  */
int bus_store_replay (bus_store_t *self, uint64_t from, uint32_t limit,
                      bus_store_item_fn *fn, void *arg, uint64_t *last_seq);

/*  Which orders to list: each field 0 / NULL / "" means "any".  The time
    range is on created_ms: from_ms <= created_ms < to_ms.  */
typedef struct {
    uint32_t status;
    const char *table;
    int64_t from_ms;
    int64_t to_ms;
} bus_store_filter_t;

/*  List the orders filter matches, newest first (descending id).  cursor 0
    starts at the newest; otherwise only ids < cursor are listed.  At most
    limit orders are passed to fn; *next is the cursor for the following
    page, or 0 if there is none.  */
int bus_store_list (bus_store_t *self, const bus_store_filter_t *filter,
                    uint64_t cursor, uint32_t limit, bus_store_item_fn *fn,
                    void *arg, uint64_t *next);

/*  Read the menu document.  0 and a new NUL-terminated copy in *json
    (caller frees) with its length and its version (1, 2, ... per change),
    or BUS_ERR_NOT_FOUND.  */
int bus_store_menu_get (bus_store_t *self, char **json, size_t *len,
                        uint64_t *version);

/*  ---- Verification (any process, even beside a running writer) -------- */

/*  What bus_store_verify found.  */
typedef struct {
    uint64_t records;   /* log entries                                 */
    uint64_t orders;    /* orders                                      */
    uint64_t open;      /* entries of the open index                   */
    uint64_t keys;      /* idempotency keys                            */
    uint64_t carts;     /* carts                                       */
    uint64_t unchecked; /* log entries and orders written before
                               checksums: decoded, no checksum to check   */
    uint64_t last_seq;  /* the meta counters                           */
    uint64_t pruned_seq;
    uint64_t last_order_id;
    char identity[BUS_WRITER_ID_MAX]; /* "" if it has none              */
    uint64_t bad;        /* problems found; 0: sound                    */
    char first_bad[400]; /* the first one, in words ("" if none)        */
} bus_store_report_t;

/*  Read every record of the environment in dir, read-only, and check it
    against the others: every log entry and order passes its checksum (or
    is counted unchecked, from before checksums); every log entry decodes
    as the event of its seq and the log has no hole between pruned_seq
    and last_seq; every order
    decodes as its id, is at most last_order_id and its seq at most
    last_seq, is in the open index exactly when its status is open, and
    its event is logged (unless pruned); every open index entry is an open
    order; every key is 16 bytes naming a logged (or pruned) seq; every
    cart decodes.  The walk runs in a child process (fork): a damaged
    page that trips one of LMDB's assertions, or a SIGBUS, ends the child
    and is reported as the first bad record, where it was reading.  Call
    it before the process starts threads.  Then, if dir/committed names
    what the directory last committed, data.mdb must be that store at
    that seq or later.  Returns 0 if sound, BUS_ERR_DAMAGED if not
    (report says what first), BUS_ERR_ROLLED_BACK if sound but missing,
    empty, another store or older than dir/committed says,
    BUS_ERR_NOT_FOUND if dir holds no orderbus environment (and no
    dir/committed), else BUS_ERR_STORAGE or BUS_ERR_NOMEM; report is
    filled as far as the walk went.  */
int bus_store_verify (const char *dir, bus_store_report_t *report);

/*  Selftest.  */
void bus_store_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
