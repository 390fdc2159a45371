/*  bus_store.c — the LMDB environment: event log, orders, open index,
    idempotency keys, meta counters and the menu.

    One MDB_env opened with MDB_NOTLS: a reader slot belongs to its read
    transaction rather than to a thread, so any thread may read, and the
    writer thread may read while its batch is open.  No NOSYNC-like flag
    is ever set (but by a Debug build's test switch, s_debug_nosync):
    mdb_txn_commit returns after an fdatasync of the new pages and an
    O_DSYNC write of the meta page, which is what makes an ack durable
    (fault_power cuts the power to check it).

    The rwlock exists for one LMDB rule: mdb_env_set_mapsize needs no
    transaction active anywhere in the process.  Every transaction (reads,
    the writer's batch, menu_put) holds the lock for reading while it
    lives; bus_store_grow takes it for writing.

    last_seq, last_order_id and pruned_seq are cached: the committed
    values, and the pending ones of the open batch, published on commit
    and dropped on abort.  The meta database gets the pending values once
    per batch, in bus_store_commit, still inside the batch's transaction.

    Retention (bus_store_prune) deletes the oldest log entries and
    idempotency keys.  The keys are found by the seq of their event in
    the kseq index (seq -> key, written with each key), so pruning reads
    only what it deletes; a key always goes before (or with) its event,
    so a key that is found always has its original event to answer with.
    meta "pruned_seq" is the last seq deleted: a replay from at or below
    it is refused with BUS_ERR_PRUNED rather than served with a hole.

    Integrity on open (bus_store.h has the promises): LMDB reads its file
    in place through a map, so a page past a file cut short is a SIGBUS
    and a damaged tree trips one of its assertions (abort).  Neither can
    be caught as an error, so they are kept from happening: the file's
    size is checked against the newest meta page before any other page
    is read, the newest records against the meta counters, and
    bus_store_verify walks every page in a child process.  What LMDB
    cannot tell (a file emptied, replaced or older than what it had) is
    told by dir/committed, written beside data.mdb after every commit.  */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <czmq.h>
#include <sodium.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store.h"
#include "bus_store_private.h"

#define S_MAP_DEFAULT BUS_STORE_MAP_DEFAULT
#define S_PATH_MAX    4096
#define S_SEEN_FILE   "committed"

struct _bus_store_t {
    char *dir;      //  environment directory, for reopening
    MDB_env *env;   //  NULL after a failed reopen
    MDB_dbi log, orders, open, keys, meta, menu, carts;
    MDB_dbi kseq;                  //  seq -> key; 0 if it has none
    pthread_rwlock_t lock;         //  read: any txn; write: map resize
    bool readonly;                 //  bus_store_open_readonly: reads only
    MDB_txn *txn;                  //  the writer's open batch, or NULL
    _Atomic uint64_t last_seq;     //  committed, readable from any thread
    uint64_t last_order_id;        //  committed, writer thread only
    _Atomic uint64_t pruned_seq;   //  committed: last seq pruned, 0 none
    uint64_t pending_seq;          //  as of the open batch
    uint64_t pending_order_id;
    uint64_t pending_pruned;
    bus_epoch_t epoch;   //  identity and epoch as last committed; set at
                         //  open and by bus_store_epoch_next, read by
                         //  bus_store_epoch (see bus_store.h)
    bus_epoch_t pending_epoch;   //  as of the open batch (a replica's
                                 //  adopted one), taken at its commit
    int write_rc;                //  LMDB's (or the system's) code for the last
                                 //  begin or commit of a batch, 0 if it went
                                 //  through: bus_store_storage reads it
    bool fresh;            //  LMDB made the file at this open (no txn yet)
    bool reopen_refused;   //  the last reopen found another file (logged)
    int seen_fd;           //  dir/committed, writer only; -1 if none
    bool seen;             //  dir/committed named a store at open:
    char seen_id[BUS_WRITER_ID_MAX];   //  ...its identity
    uint64_t seen_seq;                 //  ...and its last committed seq
    bool seen_failed;   //  a write of dir/committed failed (logged once)
    _Atomic uint64_t damaged;   //  records that failed their checks on read
    uint64_t sealed_seq;        //  events from this seq on are all sealed
    uint64_t sealed_order;      //  orders from this id on (UINT64_MAX: none)
};

//  ---- Encoding and error helpers ---------------------------------------

static MDB_val
s_str_val (const char *s)
{
    return (MDB_val){ strlen (s), (void *) s };
}

//  Map an LMDB (or errno) code to a bus_err_t.
static int
s_code (int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_MAP_FULL)
        return BUS_ERR_MAP_FULL;
    return rc == ENOMEM ? BUS_ERR_NOMEM : BUS_ERR_STORAGE;
}

//  The same, logging the reason.  A full map is not logged here: it is
//  routine, and bus_store_grow reports it.
static int
s_check (int rc, const char *what)
{
    if (rc != 0 && rc != MDB_MAP_FULL)
        zsys_error ("store: %s: %s", what, mdb_strerror (rc));
    return s_code (rc);
}

//  mdb_get with a miss as BUS_ERR_NOT_FOUND.
static int
s_get (MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val, const char *what)
{
    int rc = mdb_get (txn, dbi, key, val);
    return rc == MDB_NOTFOUND ? BUS_ERR_NOT_FOUND : s_check (rc, what);
}

//  A stored value of the wrong size means a damaged or foreign file.
static int
s_check_size (const MDB_val *val, size_t size, const char *what)
{
    if (val->mv_size == size)
        return 0;
    zsys_error ("store: %s: stored value has %zu bytes, expected %zu", what,
                val->mv_size, size);
    return BUS_ERR_STORAGE;
}

//  Report damage in self's data.mdb, saying what to do, and return
//  BUS_ERR_DAMAGED.
static int s_damaged (bus_store_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  The last damage s_damaged reported in this process, for
//  bus_store_verify's child to hand its parent (one thread opens there)
static char s_last_damage[512];

static int
s_damaged (bus_store_t *self, const char *format, ...)
{
    char what[512];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    memcpy (s_last_damage, what, sizeof s_last_damage);
    zsys_error ("store: %s/data.mdb is damaged: %s.  Restore the data "
                "directory from a backup; 'orderbus verify --data %s' "
                "checks a copy before it is used",
                self->dir, what, self->dir);
    return BUS_ERR_DAMAGED;
}

//  A record that fails its checks on read: logged, counted, and an
//  error for the caller (the API answers 500 storage_damaged), never a
//  record skipped.
static int
s_damaged_read (bus_store_t *self, const char *what, uint64_t key,
                const char *why)
{
    atomic_fetch_add (&self->damaged, 1);
    zsys_error ("store: %s/data.mdb: %s %" PRIu64 " %s: the file is "
                "damaged; 'orderbus verify --data %s' lists what, restore "
                "it from a backup",
                self->dir, what, key, why, self->dir);
    return BUS_ERR_DAMAGED;
}

//  ---- Record checksums -------------------------------------------------
//
//  Log entries and orders are stored sealed: a first byte no MessagePack
//  begins with (0xc1, "never used" in its spec), the record's 8-byte
//  checksum, then its bytes.  The checksum is SipHash-2-4 (libsodium's
//  crypto_shorthash, already linked) keyed with the record's own key
//  (seq or id) and "orderbus": a record moved under another key fails
//  too.  It finds damage, not forgery: its key is no secret.  Records
//  written before checksums begin with their MessagePack and are read as
//  they are, unchecked (bus_store_verify counts them).

#define S_SEAL_MARK 0xc1
#define S_SEAL_SIZE (1 + crypto_shorthash_BYTES)

static void
s_seal_hash (uint64_t id, const void *data, size_t size,
             unsigned char out[crypto_shorthash_BYTES])
{
    unsigned char k[crypto_shorthash_KEYBYTES];
    bus_store_u64_put (k, id);
    memcpy (k + 8, "orderbus", 8);
    crypto_shorthash (out, data, size, k);
}

//  Put data under id in dbi, sealed.
static int
s_put_sealed (MDB_txn *txn, MDB_dbi dbi, uint64_t id, const void *data,
              size_t size, unsigned flags, const char *what)
{
    unsigned char buf[8];
    MDB_val key = bus_store_u64_val (buf, id),
            val = { S_SEAL_SIZE + size, NULL };
    int rc = mdb_put (txn, dbi, &key, &val, flags | MDB_RESERVE);
    if (rc == 0) {
        unsigned char *p = val.mv_data;
        p[0] = S_SEAL_MARK;
        s_seal_hash (id, data, size, p + 1);
        memcpy (p + S_SEAL_SIZE, data, size);
    }
    return s_check (rc, what);
}

int
bus_store_unseal (uint64_t id, bool must, MDB_val *val)
{
    const unsigned char *p = val->mv_data;
    if (val->mv_size == 0 || p[0] != S_SEAL_MARK)
        return must ? -1 : 1;
    unsigned char hash[crypto_shorthash_BYTES];
    if (val->mv_size < S_SEAL_SIZE)
        return -1;
    s_seal_hash (id, p + S_SEAL_SIZE, val->mv_size - S_SEAL_SIZE, hash);
    if (memcmp (hash, p + 1, sizeof hash) != 0)
        return -1;
    val->mv_data = (void *) (p + S_SEAL_SIZE);
    val->mv_size -= S_SEAL_SIZE;
    return 0;
}

//  A stored event's (or order's) bytes, checked, in place of val.
static int
s_unseal (bus_store_t *self, bool event, uint64_t id, MDB_val *val)
{
    bool must = id >= (event ? self->sealed_seq : self->sealed_order);
    return bus_store_unseal (id, must, val) < 0 ? s_damaged_read (
               self, event ? "event" : "order", id, "fails its checksum")
                                                : 0;
}

static int
s_order_decode (bus_store_t *self, const MDB_val *key, const MDB_val *val,
                bus_order_t *order)
{
    if (bus_order_decode (val->mv_data, val->mv_size, order) == 0)
        return 0;
    return s_damaged_read (
        self, "order", key->mv_size == 8 ? bus_store_u64_get (key->mv_data) : 0,
        "does not decode");
}

//  Put an encoded frame (NULL if encoding ran out of memory) and free it.
static int
s_put_frame (MDB_txn *txn, MDB_dbi dbi, MDB_val *key, zframe_t *frame,
             unsigned flags, const char *what)
{
    if (!frame)
        return s_check (ENOMEM, what);
    MDB_val val = { zframe_size (frame), zframe_data (frame) };
    int rc = mdb_put (txn, dbi, key, &val, flags);
    zframe_destroy (&frame);
    return s_check (rc, what);
}

//  ---- Meta counters ----------------------------------------------------

//  A missing counter reads as 0: a fresh environment.
static int
s_meta_get (bus_store_t *self, MDB_txn *txn, const char *name, uint64_t *value)
{
    MDB_val key = s_str_val (name), val;
    int rc = s_get (txn, self->meta, &key, &val, name);
    *value = 0;
    if (rc == BUS_ERR_NOT_FOUND)
        return 0;
    if (rc == 0)
        rc = s_check_size (&val, 8, name);
    if (rc == 0)
        *value = bus_store_u64_get (val.mv_data);
    return rc;
}

static int
s_meta_put (bus_store_t *self, MDB_txn *txn, const char *name, uint64_t value)
{
    unsigned char buf[8];
    MDB_val key = s_str_val (name), val = bus_store_u64_val (buf, value);
    return s_check (mdb_put (txn, self->meta, &key, &val, 0), name);
}

//  Write the batch's counters, if it moved them, into its transaction.
static int
s_meta_flush (bus_store_t *self)
{
    int rc = 0;
    if (self->pending_seq != atomic_load (&self->last_seq))
        rc = s_meta_put (self, self->txn, "last_seq", self->pending_seq);
    if (rc == 0 && self->pending_order_id != self->last_order_id)
        rc = s_meta_put (self, self->txn, "last_order_id",
                         self->pending_order_id);
    if (rc == 0 && self->pending_pruned != atomic_load (&self->pruned_seq))
        rc = s_meta_put (self, self->txn, "pruned_seq", self->pending_pruned);
    return rc;
}

//  ---- Identity and epoch -----------------------------------------------

//  Read the store's identity and epoch into self->epoch.  A writable store
//  without an identity (a new environment, or one from before identities)
//  gets one in txn; a read-only one is left with "" then.
static int
s_identity_load (bus_store_t *self, MDB_txn *txn)
{
    MDB_val key = s_str_val ("identity"), val;
    memset (&self->epoch, 0, sizeof self->epoch);
    int rc = s_get (txn, self->meta, &key, &val, "identity");
    if (rc == BUS_ERR_NOT_FOUND && !self->readonly) {
        unsigned char bytes[16];
        if (sodium_init () < 0)
            return BUS_ERR_STORAGE;
        randombytes_buf (bytes, sizeof bytes);
        sodium_bin2hex (self->epoch.id, sizeof self->epoch.id, bytes,
                        sizeof bytes);
        val = s_str_val (self->epoch.id);
        rc = s_check (mdb_put (txn, self->meta, &key, &val, 0), "identity");
    } else if (rc == 0) {
        rc = s_check_size (&val, BUS_WRITER_ID_MAX - 1, "identity");
        if (rc == 0)
            memcpy (self->epoch.id, val.mv_data, val.mv_size);
        if (rc == 0 && !bus_valid_writer_id (self->epoch.id)) {
            zsys_error ("store: identity: not 32 hex digits");
            rc = BUS_ERR_STORAGE;
        }
    } else if (rc == BUS_ERR_NOT_FOUND)
        rc = 0;
    if (rc == 0)
        rc = s_meta_get (self, txn, "epoch", &self->epoch.epoch);
    if (rc == 0)
        rc = s_meta_get (self, txn, "epoch_parent", &self->epoch.parent);
    if (rc == 0)
        rc = s_meta_get (self, txn, "epoch_base", &self->epoch.base);
    return rc;
}

//  The epoch after prev: the start time in seconds in the high 32 bits,
//  32 random bits below, and never less than prev + 1.  Ordered, so that
//  a later start has a greater epoch (what a fencing token needs); the
//  clock and the random bits make it new after a restore too, whose file
//  holds an older prev than the epochs since issued.
static uint64_t
s_epoch_after (uint64_t prev)
{
    uint64_t next = (uint64_t) time (NULL) << 32 | randombytes_random ();
    return next > prev ? next : prev + 1;
}

void
bus_store_epoch (bus_store_t *self, bus_epoch_t *epoch)
{
    *epoch = self->epoch;
}

//  A led epoch: the start time's seconds above, the fencing token's low
//  32 bits below; a later second than the stored epoch's if need be, so
//  it still grows (docs/failover.md).
static uint64_t
s_epoch_fenced (uint64_t prev, uint32_t token)
{
    uint64_t next = (uint64_t) time (NULL) << 32 | token;
    if (next > prev)
        return next;
    return (((prev >> 32) + 1) << 32) | token;
}

int
bus_store_epoch_next (bus_store_t *self)
{
    return bus_store_epoch_next_fenced (self, 0);
}

int
bus_store_epoch_next_fenced (bus_store_t *self, int64_t token)
{
    assert (!self->readonly && self->txn == NULL);
    if (sodium_init () < 0)
        return BUS_ERR_STORAGE;
    if (self->epoch.epoch >= (token ? 0xFFFFFFFF00000000ULL : UINT64_MAX)) {
        zsys_error ("store: %s: no epoch is left after %016" PRIx64, self->dir,
                    self->epoch.epoch);
        return BUS_ERR_STORAGE;
    }
    bus_epoch_t next = self->epoch;
    next.epoch = token ? s_epoch_fenced (self->epoch.epoch, (uint32_t) token)
                       : s_epoch_after (self->epoch.epoch);
    next.parent = self->epoch.epoch;
    next.base = atomic_load (&self->last_seq);
    MDB_txn *txn = NULL;
    pthread_rwlock_rdlock (&self->lock);
    int rc = s_check (
        self->env ? mdb_txn_begin (self->env, NULL, 0, &txn) : EIO, "epoch");
    if (rc == 0)
        rc = s_meta_put (self, txn, "epoch", next.epoch);
    if (rc == 0)
        rc = s_meta_put (self, txn, "epoch_parent", next.parent);
    if (rc == 0)
        rc = s_meta_put (self, txn, "epoch_base", next.base);
    if (rc == 0)
        rc = s_check (mdb_txn_commit (txn), "epoch commit");
    else if (txn)
        mdb_txn_abort (txn);
    pthread_rwlock_unlock (&self->lock);
    if (rc == 0)
        self->epoch = next;
    return rc;
}

//  ---- Constructor and destructor ---------------------------------------

static bus_store_t *
s_alloc (void)
{
    bus_store_t *self = calloc (1, sizeof *self);
    if (self && pthread_rwlock_init (&self->lock, NULL) != 0) {
        free (self);
        self = NULL;
    }
    if (self)
        self->seen_fd = -1;
    return self;
}

//  Directories made here are the owner's alone: the data directory holds
//  every order, and a parent made for it is no one else's business either.
static int
s_mkdir (const char *path)
{
    if (mkdir (path, 0700) == 0 || errno == EEXIST)
        return 0;
    zsys_error ("store: cannot create %s: %s", path, strerror (errno));
    return BUS_ERR_STORAGE;
}

//  mkdir -p: create dir and any missing parents.
static int
s_mkdir_p (const char *dir)
{
    if (!dir || !*dir) {
        zsys_error ("store: no directory given");
        return BUS_ERR_CONFIG;
    }
    char *path = strdup (dir);
    if (!path)
        return BUS_ERR_NOMEM;
    int rc = 0;
    for (char *p = strchr (path + 1, '/'); p && rc == 0;
         p = strchr (p + 1, '/')) {
        *p = '\0';
        rc = s_mkdir (path);
        *p = '/';
    }
    if (rc == 0)
        rc = s_mkdir (path);
    free (path);
    return rc;
}

//  Take group and others' access away from path, logging what it was:
//  an existing data directory (or file) from an older install, or made
//  by hand, may be readable by every local user.  Tightened rather than
//  refused, so an upgrade keeps running; one we may not chmod (not ours)
//  is refused.  0 or BUS_ERR_STORAGE.
static int
s_private (const char *path, const char *what)
{
    struct stat st;
    if (stat (path, &st) != 0)
        return errno == ENOENT ? 0 : BUS_ERR_STORAGE;
    mode_t mode = st.st_mode & 07777;
    if ((mode & 077) == 0)
        return 0;
    if (chmod (path, mode & 07700) != 0) {
        zsys_error ("store: %s %s has mode %04o (other local users may read "
                    "it) and cannot be made private: %s; chmod go-rwx it",
                    what, path, (unsigned) mode, strerror (errno));
        return BUS_ERR_STORAGE;
    }
    zsys_warning ("store: %s %s had mode %04o, open to other local users: "
                  "now %04o",
                  what, path, (unsigned) mode, (unsigned) (mode & 07700));
    return 0;
}

//  The writer's environment is private: the directory 0700, LMDB's files
//  0600 (new ones are made so; older ones are tightened).
static int
s_private_env (const char *dir)
{
    char data[S_PATH_MAX], lock[S_PATH_MAX];
    snprintf (data, sizeof data, "%s/data.mdb", dir);
    snprintf (lock, sizeof lock, "%s/lock.mdb", dir);
    int rc = s_private (dir, "data directory");
    if (rc == 0)
        rc = s_private (data, "data file");
    if (rc == 0)
        rc = s_private (lock, "lock file");
    return rc;
}

//  MDB_NOSYNC never, but in a Debug build given ORDERBUS_DEBUG_NOSYNC=1:
//  fault_power_nosync shows with it that the power-loss test can see a
//  missing sync (docs/delivery.md).  Other builds do not compile it in
//  (bus/CMakeLists.txt defines ORDERBUS_DEBUG_NOSYNC for Debug only).
static unsigned
s_debug_nosync (void)
{
#ifdef ORDERBUS_DEBUG_NOSYNC
    const char *off = getenv ("ORDERBUS_DEBUG_NOSYNC");
    if (off && strcmp (off, "1") == 0) {
        zsys_warning ("store: ORDERBUS_DEBUG_NOSYNC=1 (a Debug build's test "
                      "switch): commits are not synced, acks are not durable");
        return MDB_NOSYNC;
    }
#endif
    return 0;
}

//  The map a store opens with when its caller names none: the default,
//  or in a Debug build ORDERBUS_DEBUG_MAP_SIZE=BYTES (64 KiB up to the
//  default), so that integration_replica fills a map in a few hundred
//  orders (bus/CMakeLists.txt defines it for Debug only).
static size_t
s_default_map_size (void)
{
#ifdef ORDERBUS_DEBUG_MAP_SIZE
    const char *text = getenv ("ORDERBUS_DEBUG_MAP_SIZE");
    char *end = NULL;
    unsigned long long size = text ? strtoull (text, &end, 10) : 0;
    if (text && *text && *end == '\0' && size >= 65536
        && size <= S_MAP_DEFAULT) {
        zsys_warning ("store: ORDERBUS_DEBUG_MAP_SIZE=%llu (a Debug build's "
                      "test switch)",
                      size);
        return (size_t) size;
    }
#endif
    return S_MAP_DEFAULT;
}

//  LMDB reads pages in place through its map, where a page past the
//  file's end is a SIGBUS rather than an error.  The newest meta page
//  names the last page in use: a file shorter than that was cut short,
//  and is refused before any page but the meta pages is read.
static int
s_size_check (bus_store_t *self, const MDB_envinfo *info)
{
    MDB_stat ms;
    struct stat st;
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "%s/data.mdb", self->dir);
    int rc = mdb_env_stat (self->env, &ms);
    if (rc != 0)
        return s_check (rc, path);
    if (stat (path, &st) != 0)
        return s_check (errno, path);
    uint64_t need = ((uint64_t) info->me_last_pgno + 1) * ms.ms_psize;
    if ((uint64_t) st.st_size >= need)
        return 0;
    return s_damaged (self,
                      "the file has %lld bytes, but its newest meta page "
                      "says its pages fill %" PRIu64
                      " (the file was cut short)",
                      (long long) st.st_size, need);
}

//  A new environment gets the requested map size; an existing one the
//  larger of that and the size recorded in its file, so that a map grown
//  in an earlier run stays grown.
static int
s_env_open (bus_store_t *self, const char *dir, size_t map_size)
{
    MDB_envinfo info;
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 10);
    if (rc == 0)
        rc = mdb_env_set_maxreaders (self->env, 126);
    //  0 before open: LMDB takes the size recorded in an existing file
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, 0);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir,
                           MDB_NOTLS | (self->readonly ? MDB_RDONLY : 0)
                               | s_debug_nosync (),
                           0600);
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        return s_damaged (self, "its meta pages are not LMDB's (%s)",
                          mdb_strerror (rc));
    if (rc == 0)
        rc = mdb_env_info (self->env, &info);
    //  no transaction ever committed: the file is new
    self->fresh = rc == 0 && info.me_last_txnid == 0;
    if (rc == 0 && !self->fresh && (rc = s_size_check (self, &info)) != 0)
        return rc;
    if (rc == 0 && (self->fresh || info.me_mapsize < map_size))
        rc = mdb_env_set_mapsize (self->env, map_size);
    return s_check (rc, dir);
}

//  From which seq and which order id every record is sealed: the first
//  writable open by a version with checksums records them (1 and 1 for
//  a new store), so that a record past them without a seal is damage
//  (its first byte lost), not a record from before checksums.  A store
//  never opened so has none: every record may be unsealed.
static int
s_sealed_load (bus_store_t *self, MDB_txn *txn, uint64_t seq)
{
    int rc = s_meta_get (self, txn, "sealed_seq", &self->sealed_seq);
    if (rc == 0)
        rc = s_meta_get (self, txn, "sealed_order", &self->sealed_order);
    if (rc == 0 && self->sealed_seq == 0 && !self->readonly) {
        self->sealed_seq = seq + 1;
        self->sealed_order = self->last_order_id + 1;
        rc = s_meta_put (self, txn, "sealed_seq", self->sealed_seq);
        if (rc == 0)
            rc = s_meta_put (self, txn, "sealed_order", self->sealed_order);
    }
    if (self->sealed_seq == 0)
        self->sealed_seq = self->sealed_order = UINT64_MAX;
    return rc;
}

//  The key of the last entry of dbi, 0 if it is empty.
static int
s_last_key (MDB_txn *txn, MDB_dbi dbi, uint64_t *last, const char *what)
{
    MDB_cursor *cursor;
    MDB_val key, val;
    int rc = mdb_cursor_open (txn, dbi, &cursor);
    if (rc == 0) {
        rc = mdb_cursor_get (cursor, &key, &val, MDB_LAST);
        mdb_cursor_close (cursor);
    }
    *last = 0;
    if (rc == 0 && key.mv_size != 8)
        return BUS_ERR_DAMAGED;
    if (rc == 0)
        *last = bus_store_u64_get (key.mv_data);
    return s_check (rc == MDB_NOTFOUND ? 0 : rc, what);
}

//  The newest records are where the meta counters say, and decode: the
//  log ends at last_seq (or is empty, all of it pruned), no order is
//  above last_order_id.  A meta page older than the pages it points to,
//  or a damaged newest page, shows here first.
static int
s_newest_check (bus_store_t *self, MDB_txn *txn, uint64_t seq, uint64_t pruned)
{
    uint64_t last_event, last_order;
    int rc = s_last_key (txn, self->log, &last_event, "log");
    if (rc == 0)
        rc = s_last_key (txn, self->orders, &last_order, "orders");
    if (rc == BUS_ERR_DAMAGED)
        return s_damaged (self, "a log or order key is not 8 bytes");
    if (rc != 0)
        return rc;
    if (last_event != (seq > pruned ? seq : 0))
        return s_damaged (self,
                          "its log ends at seq %" PRIu64
                          ", its meta page says %" PRIu64 " (pruned to %" PRIu64
                          ")",
                          last_event, seq, pruned);
    if (last_order > self->last_order_id)
        return s_damaged (self,
                          "its newest order is %" PRIu64
                          ", its meta page says %" PRIu64,
                          last_order, self->last_order_id);
    bus_event_t *event = malloc (sizeof *event);
    bus_order_t *order = malloc (sizeof *order);
    unsigned char buf[8];
    MDB_val key, val;
    if (!event || !order)
        rc = BUS_ERR_NOMEM;
    key = bus_store_u64_val (buf, last_event);
    if (rc == 0 && last_event && mdb_get (txn, self->log, &key, &val) == 0
        && (bus_store_unseal (last_event, last_event >= self->sealed_seq, &val)
                < 0
            || bus_event_decode (val.mv_data, val.mv_size, event) != 0
            || event->seq != last_event))
        rc = s_damaged (self,
                        "its newest event (seq %" PRIu64
                        ") fails its checksum or does not decode",
                        last_event);
    key = bus_store_u64_val (buf, last_order);
    if (rc == 0 && last_order && mdb_get (txn, self->orders, &key, &val) == 0
        && (bus_store_unseal (last_order, last_order >= self->sealed_order,
                              &val)
                < 0
            || bus_order_decode (val.mv_data, val.mv_size, order) != 0
            || order->id != last_order))
        rc = s_damaged (self,
                        "its newest order (%" PRIu64
                        ") fails its checksum or does not decode",
                        last_order);
    free (event);
    free (order);
    return rc;
}

//  Open (creating) the databases and load the counters, in one txn.  A
//  read-only store opens them in a read txn, whose commit keeps the
//  handles; a missing one means the environment is not orderbus's.
static int
s_dbs_open (bus_store_t *self)
{
    const struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {
        { "log", &self->log },     { "orders", &self->orders },
        { "open", &self->open },   { "keys", &self->keys },
        { "meta", &self->meta },   { "menu", &self->menu },
        { "carts", &self->carts },
    };
    MDB_txn *txn;
    int rc =
        mdb_txn_begin (self->env, NULL, self->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return s_check (rc, "open databases");
    for (size_t i = 0; rc == 0 && i < sizeof dbs / sizeof dbs[0]; i++)
        rc = mdb_dbi_open (txn, dbs[i].name, self->readonly ? 0 : MDB_CREATE,
                           dbs[i].dbi);
    //  An environment made before retention has no key index: a reader
    //  (replication's walk, a test comparing two stores) goes without
    if (rc == 0 && !self->readonly)
        rc = mdb_dbi_open (txn, "kseq", MDB_CREATE, &self->kseq);
    else if (rc == 0
             && mdb_dbi_open (txn, "kseq", 0, &self->kseq) == MDB_NOTFOUND)
        self->kseq = 0;
    rc =
        rc == MDB_NOTFOUND ? BUS_ERR_NOT_FOUND : s_check (rc, "open databases");
    uint64_t seq = 0, pruned = 0;
    if (rc == 0)
        rc = s_meta_get (self, txn, "last_seq", &seq);
    if (rc == 0)
        rc = s_meta_get (self, txn, "last_order_id", &self->last_order_id);
    if (rc == 0)
        rc = s_meta_get (self, txn, "pruned_seq", &pruned);
    if (rc == 0)
        rc = s_identity_load (self, txn);
    if (rc == 0)
        rc = s_sealed_load (self, txn, seq);
    if (rc == 0)
        rc = s_newest_check (self, txn, seq, pruned);
    if (rc == 0)
        rc = s_check (mdb_txn_commit (txn), "open databases");
    else
        mdb_txn_abort (txn);
    atomic_store (&self->last_seq, seq);
    atomic_store (&self->pruned_seq, pruned);
    self->pending_seq = seq;
    self->pending_order_id = self->last_order_id;
    self->pending_pruned = pruned;
    return rc;
}

//  An environment made before retention has keys but no index of them:
//  index them all, once, in one transaction (a second or so per million
//  keys), so that retention can find them by age.
static int
s_kseq_build (bus_store_t *self)
{
    MDB_txn *txn;
    MDB_stat keys, kseq;
    int rc = s_check (mdb_txn_begin (self->env, NULL, 0, &txn), "index keys");
    if (rc != 0)
        return rc;
    rc = mdb_stat (txn, self->keys, &keys);
    if (rc == 0)
        rc = mdb_stat (txn, self->kseq, &kseq);
    if (rc != 0 || kseq.ms_entries > 0 || keys.ms_entries == 0) {
        mdb_txn_abort (txn);
        return s_check (rc, "index keys");
    }
    MDB_cursor *cursor;
    rc = mdb_cursor_open (txn, self->keys, &cursor);
    if (rc == 0) {
        MDB_val key, val;
        MDB_cursor_op op = MDB_FIRST;
        while ((rc = mdb_cursor_get (cursor, &key, &val, op)) == 0) {
            op = MDB_NEXT;
            unsigned char buf[8];
            uint64_t seq =
                val.mv_size == 16
                    ? bus_store_u64_get ((const char *) val.mv_data + 8)
                    : 0;
            MDB_val by_seq = bus_store_u64_val (buf, seq);
            if ((rc = mdb_put (txn, self->kseq, &by_seq, &key, 0)) != 0)
                break;
        }
        mdb_cursor_close (cursor);
    }
    if (rc == MDB_NOTFOUND)   //  all indexed; commit frees txn in any case
        rc = mdb_txn_commit (txn);
    else
        mdb_txn_abort (txn);
    if (rc == 0)
        zsys_info ("store: indexed %zu idempotency keys for retention",
                   keys.ms_entries);
    return s_check (rc, "index keys");
}

//  ---- What the directory last committed (dir/committed) -----------------

//  Record the store's identity and last committed seq in dir/committed:
//  one line, always the same length, overwritten in place.  Not synced,
//  and written after the commit it records has been: whatever survives a
//  crash records a seq the synced data.mdb has, so it never runs ahead.
static void
s_seen_write (bus_store_t *self)
{
    char line[80];
    int len = snprintf (line, sizeof line, "%s %020" PRIu64 "\n",
                        self->epoch.id, atomic_load (&self->last_seq));
    if (self->seen_fd < 0 || pwrite (self->seen_fd, line, len, 0) == len)
        return;
    if (!self->seen_failed)
        zsys_warning ("store: cannot write %s/" S_SEEN_FILE ": %s", self->dir,
                      strerror (errno));
    self->seen_failed = true;
}

static bool
s_seen_parse (const char *text, char id[BUS_WRITER_ID_MAX], uint64_t *seq)
{
    return sscanf (text, "%32s %" SCNu64, id, seq) == 2
           && bus_valid_writer_id (id);
}

bool
bus_store_seen_read (const char *dir, char id[BUS_WRITER_ID_MAX], uint64_t *seq)
{
    char path[S_PATH_MAX], text[128];
    snprintf (path, sizeof path, "%s/" S_SEEN_FILE, dir);
    FILE *file = fopen (path, "r");
    size_t got = file ? fread (text, 1, sizeof text - 1, file) : 0;
    text[got] = '\0';
    if (file)
        fclose (file);
    return got > 0 && s_seen_parse (text, id, seq);
}

//  Open dir/committed and read what it records into self->seen*.  A line
//  that does not read is ignored (and rewritten later), with a warning:
//  this file guards against an older data.mdb, it is not data itself.
static int
s_seen_read (bus_store_t *self)
{
    char path[S_PATH_MAX], text[128];
    snprintf (path, sizeof path, "%s/" S_SEEN_FILE, self->dir);
    self->seen_fd =
        open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (self->seen_fd < 0) {
        zsys_error ("store: cannot open %s: %s", path, strerror (errno));
        return BUS_ERR_STORAGE;
    }
    ssize_t got = pread (self->seen_fd, text, sizeof text - 1, 0);
    text[got > 0 ? got : 0] = '\0';
    if (got <= 0)
        return 0;   //  a directory new to this check
    self->seen = s_seen_parse (text, self->seen_id, &self->seen_seq);
    if (!self->seen)
        zsys_warning ("store: %s does not read as '<identity> <seq>': "
                      "ignored, and rewritten",
                      path);
    return 0;
}

//  Compare the store with what its directory last committed: a new
//  (empty) store, another store or a lower seq is refused, unless
//  accepted (after a deliberate restore).
static int
s_seen_check (bus_store_t *self, bool accept)
{
    if (!self->seen)
        return 0;
    char what[400];
    uint64_t now = atomic_load (&self->last_seq);
    if (self->fresh)
        snprintf (what, sizeof what,
                  "is empty (a new store), but this directory last committed "
                  "seq %" PRIu64 " of store %s: the file was lost, emptied "
                  "or cut to nothing",
                  self->seen_seq, self->seen_id);
    else if (!streq (self->seen_id, self->epoch.id))
        snprintf (what, sizeof what,
                  "is store %s at seq %" PRIu64 ", but this directory last "
                  "committed seq %" PRIu64 " of store %s: another store's "
                  "file was put in its place",
                  self->epoch.id, now, self->seen_seq, self->seen_id);
    else if (now < self->seen_seq)
        snprintf (what, sizeof what,
                  "is at seq %" PRIu64 ", but this directory last committed "
                  "seq %" PRIu64 ": the file is older than what was "
                  "acknowledged (a restored copy, or a damaged newest meta "
                  "page), and the events after seq %" PRIu64 " are missing",
                  now, self->seen_seq, now);
    else
        return 0;
    if (accept) {
        zsys_warning ("store: %s/data.mdb %s; accepted (--accept-restore)",
                      self->dir, what);
        return 0;
    }
    zsys_error ("store: %s/data.mdb %s.  Restore the newest backup of the "
                "data directory; to go on with this file as it is, losing "
                "what it lacks, start once with --accept-restore",
                self->dir, what);
    return BUS_ERR_ROLLED_BACK;
}

bus_store_t *
bus_store_new (const char *dir, size_t map_size, int *err)
{
    return bus_store_open (dir, map_size, 0, err);
}

//  The checks of a used directory's file go before LMDB is given the
//  file to write (s_dbs_open makes a new store's databases).
bus_store_t *
bus_store_open (const char *dir, size_t map_size, unsigned flags, int *err)
{
    int rc = BUS_ERR_NOMEM;
    bool accept = flags & BUS_STORE_ACCEPT_RESTORE;
    bus_store_t *self = s_alloc ();
    if (!self)
        goto fail;
    self->dir = strdup (dir ? dir : "");
    rc = self->dir ? s_mkdir_p (dir) : BUS_ERR_NOMEM;
    if (rc == 0)
        rc =
            s_env_open (self, dir, map_size ? map_size : s_default_map_size ());
    if (rc == 0)
        rc = s_private_env (dir);
    if (rc == 0)
        rc = s_seen_read (self);
    if (rc == 0 && self->fresh)
        rc = s_seen_check (self, accept);
    if (rc == 0)
        rc = s_dbs_open (self);
    if (rc == 0 && !self->fresh)
        rc = s_seen_check (self, accept);
    if (rc == 0)
        rc = s_kseq_build (self);
    if (rc != 0)
        goto fail;
    s_seen_write (self);
    return self;

fail:
    bus_store_destroy (&self);
    if (err)
        *err = rc;
    return NULL;
}

//  Touch nothing unless dir holds an LMDB data file: opening a directory
//  without one would leave LMDB's lock file behind in it.
bus_store_t *
bus_store_open_readonly (const char *dir, int *err)
{
    int rc = BUS_ERR_NOMEM;
    bus_store_t *self = s_alloc ();
    if (!self)
        goto fail;
    self->readonly = true;
    self->dir = strdup (dir ? dir : "");
    char *data = self->dir ? zsys_sprintf ("%s/data.mdb", self->dir) : NULL;
    if (data)
        rc = zsys_file_exists (data) ? 0 : BUS_ERR_NOT_FOUND;
    zstr_free (&data);
    //  map size 0: whatever the writer has recorded in the file
    if (rc == 0)
        rc = s_env_open (self, self->dir, 0);
    //  A reader killed mid-read (an export stopped with Ctrl-C) leaves its
    //  slot taken, and the pages it saw pinned, until someone clears it
    int dead;
    if (rc == 0)
        rc = s_check (mdb_reader_check (self->env, &dead), "reader check");
    if (rc == 0)
        rc = s_dbs_open (self);
    if (rc != 0)
        goto fail;
    return self;

fail:
    bus_store_destroy (&self);
    if (err)
        *err = rc;
    return NULL;
}

void
bus_store_destroy (bus_store_t **self_p)
{
    assert (self_p);
    bus_store_t *self = *self_p;
    if (!self)
        return;
    bus_store_abort (self);
    if (self->env)
        mdb_env_close (self->env);
    if (self->seen_fd >= 0)
        close (self->seen_fd);
    pthread_rwlock_destroy (&self->lock);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

size_t
bus_store_map_size (bus_store_t *self)
{
    MDB_envinfo info;
    pthread_rwlock_rdlock (&self->lock);
    int rc = self->env ? mdb_env_info (self->env, &info) : EIO;
    pthread_rwlock_unlock (&self->lock);
    return rc == 0 ? info.me_mapsize : 0;
}

//  ---- Write side -------------------------------------------------------

int
bus_store_begin (bus_store_t *self)
{
    assert (!self->readonly && self->txn == NULL);
    pthread_rwlock_rdlock (&self->lock);
    int rc = self->env ? mdb_txn_begin (self->env, NULL, 0, &self->txn) : EIO;
    //  What the batch meets from here on is its own to report
    self->write_rc = rc;
    self->pending_epoch = self->epoch;
    if (rc != 0) {
        self->txn = NULL;
        pthread_rwlock_unlock (&self->lock);
    }
    //  Without an environment (a reopen failed, and said why) this is
    //  what every batch meets until one works: not logged again
    return self->env ? s_check (rc, "begin") : s_code (rc);
}

//  The batch's txn is gone (committed or aborted): publish its counters
//  if it committed, else roll them back to the committed values.
static void
s_batch_end (bus_store_t *self, bool committed)
{
    if (committed) {
        atomic_store (&self->last_seq, self->pending_seq);
        atomic_store (&self->pruned_seq, self->pending_pruned);
        self->last_order_id = self->pending_order_id;
        self->epoch = self->pending_epoch;
    } else {
        self->pending_seq = atomic_load (&self->last_seq);
        self->pending_pruned = atomic_load (&self->pruned_seq);
        self->pending_order_id = self->last_order_id;
    }
    self->txn = NULL;
    pthread_rwlock_unlock (&self->lock);
}

int
bus_store_key_get (bus_store_t *self, const char *key, uint64_t *fingerprint,
                   uint64_t *seq)
{
    assert (self->txn);
    if (!bus_valid_key (key))
        return BUS_ERR_INVALID;
    MDB_val k = s_str_val (key), val;
    int rc = s_get (self->txn, self->keys, &k, &val, "key get");
    if (rc == 0)
        rc = s_check_size (&val, 16, "key get");
    if (rc == 0) {
        *fingerprint = bus_store_u64_get (val.mv_data);
        *seq = bus_store_u64_get ((const char *) val.mv_data + 8);
    }
    return rc;
}

int
bus_store_key_put (bus_store_t *self, const char *key, uint64_t fingerprint,
                   uint64_t seq)
{
    assert (self->txn);
    if (!bus_valid_key (key))
        return BUS_ERR_INVALID;
    unsigned char buf[16], seq_buf[8];
    bus_store_u64_put (buf, fingerprint);
    bus_store_u64_put (buf + 8, seq);
    MDB_val k = s_str_val (key), val = { sizeof buf, buf };
    MDB_val by_seq = bus_store_u64_val (seq_buf, seq);
    int rc = s_check (mdb_put (self->txn, self->keys, &k, &val, 0), "key put");
    //  the index retention finds it by
    return rc ? rc
              : s_check (mdb_put (self->txn, self->kseq, &by_seq, &k, 0),
                         "key put");
}

static int
s_order_read (bus_store_t *self, MDB_txn *txn, uint64_t id, bus_order_t *order)
{
    unsigned char buf[8];
    MDB_val key = bus_store_u64_val (buf, id), val;
    int rc = s_get (txn, self->orders, &key, &val, "get order");
    if (rc == 0)
        rc = s_unseal (self, false, id, &val);
    return rc ? rc : s_order_decode (self, &key, &val, order);
}

int
bus_store_order_lookup (bus_store_t *self, uint64_t id, bus_order_t *order)
{
    assert (self->txn);
    return s_order_read (self, self->txn, id, order);
}

uint64_t
bus_store_order_next_id (bus_store_t *self)
{
    assert (self->txn);
    return ++self->pending_order_id;
}

//  Keep the open index in step with an order's status.
static int
s_index_update (bus_store_t *self, MDB_val *key, bus_status_t status)
{
    MDB_val empty = { 0, "" };
    int rc = bus_status_is_open (status)
                 ? mdb_put (self->txn, self->open, key, &empty, 0)
                 : mdb_del (self->txn, self->open, key, NULL);
    return s_check (rc == MDB_NOTFOUND ? 0 : rc, "open index");
}

int
bus_store_event_lookup (bus_store_t *self, uint64_t seq, bus_event_t *event)
{
    assert (self->txn);
    unsigned char buf[8];
    MDB_val key = bus_store_u64_val (buf, seq), val;
    int rc = s_get (self->txn, self->log, &key, &val, "get event");
    if (rc == 0)
        rc = s_unseal (self, true, seq, &val);
    if (rc == 0 && bus_event_decode (val.mv_data, val.mv_size, event) != 0)
        rc = s_damaged_read (self, "event", seq, "does not decode");
    return rc;
}

int
bus_store_cart_lookup (bus_store_t *self, const char *table, bus_cart_t *cart)
{
    assert (self->txn);
    MDB_val key = s_str_val (table), val;
    int rc = s_get (self->txn, self->carts, &key, &val, "get cart");
    if (rc == 0 && bus_cart_decode (val.mv_data, val.mv_size, cart) != 0) {
        zsys_error ("store: cart of table '%s' does not decode", table);
        rc = BUS_ERR_STORAGE;
    }
    return rc;
}

//  Store the state an event leaves behind: the order (and the open
//  index), or the cart.  A menu event's state is the menu document,
//  written by bus_store_menu_set.
static int
s_put_state (bus_store_t *self, bus_event_t *event)
{
    if (event->type == BUS_EVENT_CART) {
        MDB_val key = s_str_val (event->cart.table);
        return s_put_frame (self->txn, self->carts, &key,
                            bus_cart_encode (&event->cart), 0, "put cart");
    }
    if (event->type != BUS_EVENT_ORDER_PLACED
        && event->type != BUS_EVENT_ORDER_STATUS)
        return 0;
    assert (event->order.id > 0);
    unsigned char buf[8];
    MDB_val key = bus_store_u64_val (buf, event->order.id);
    zframe_t *frame = bus_order_encode (&event->order);
    int rc = frame ? s_put_sealed (self->txn, self->orders, event->order.id,
                                   zframe_data (frame), zframe_size (frame), 0,
                                   "put order")
                   : s_check (ENOMEM, "put order");
    zframe_destroy (&frame);
    return rc ? rc : s_index_update (self, &key, event->order.status);
}

int
bus_store_append (bus_store_t *self, bus_event_t *event, zframe_t **logged)
{
    assert (self->txn);
    uint64_t seq = self->pending_seq + 1;
    event->seq = seq;
    event->order.seq = seq;
    zframe_t *frame = bus_event_encode (event);
    if (!frame)
        return s_check (ENOMEM, "append log");
    //  seqs only grow: MDB_APPEND fills pages fully and refuses to
    //  overwrite an entry should meta and log ever disagree
    int rc = s_put_sealed (self->txn, self->log, seq, zframe_data (frame),
                           zframe_size (frame), MDB_APPEND, "append log");
    if (rc == 0)
        rc = s_put_state (self, event);
    if (rc == 0)
        self->pending_seq = seq;
    if (rc == 0 && logged)
        *logged = frame;
    else
        zframe_destroy (&frame);
    return rc;
}

//  ---- Retention --------------------------------------------------------

//  The time of logged event seq; BUS_ERR_NOT_FOUND past the log's end.
static int
s_event_time (bus_store_t *self, uint64_t seq, bus_event_t *event,
              int64_t *ts_ms)
{
    int rc = bus_store_event_lookup (self, seq, event);
    if (rc == 0)
        *ts_ms = event->ts_ms;
    return rc;
}

//  The first seq in [first, end) whose event is not older than before_ms,
//  or end if all are: a binary search, since the log is in time order
//  (as far as the writer's clock went forward).  before_ms 0: first.
static int
s_cut_seq (bus_store_t *self, uint64_t first, uint64_t end, int64_t before_ms,
           bus_event_t *event, uint64_t *cut)
{
    uint64_t low = first, high = before_ms ? end : first;
    while (low < high) {
        uint64_t mid = low + (high - low) / 2;
        int64_t ts;
        int rc = s_event_time (self, mid, event, &ts);
        if (rc != 0)
            return rc == BUS_ERR_NOT_FOUND ? BUS_ERR_STORAGE : rc;
        if (ts < before_ms)
            low = mid + 1;
        else
            high = mid;
    }
    *cut = low;
    return 0;
}

//  Delete at most max keys whose event's seq is below cut, oldest first.
static int
s_prune_keys (bus_store_t *self, uint64_t cut, uint32_t max, uint32_t *count)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (self->txn, self->kseq, &cursor);
    if (rc != 0)
        return s_check (rc, "prune keys");
    MDB_val by_seq, key, val;
    while (*count < max
           && (rc = mdb_cursor_get (cursor, &by_seq, &key, MDB_FIRST)) == 0
           && bus_store_u64_get (by_seq.mv_data) < cut) {
        //  the key itself, unless it was put again for a later event
        rc = mdb_get (self->txn, self->keys, &key, &val);
        if (rc == 0 && val.mv_size == 16
            && bus_store_u64_get ((const char *) val.mv_data + 8)
                   == bus_store_u64_get (by_seq.mv_data))
            rc = mdb_del (self->txn, self->keys, &key, NULL);
        if (rc == 0 || rc == MDB_NOTFOUND)
            rc = mdb_cursor_del (cursor, 0);
        if (rc != 0)
            break;
        (*count)++;
    }
    mdb_cursor_close (cursor);
    return s_check (rc == MDB_NOTFOUND ? 0 : rc, "prune keys");
}

//  The seq of the oldest indexed key, or UINT64_MAX if there is none.
static int
s_oldest_key_seq (bus_store_t *self, uint64_t *seq)
{
    MDB_cursor *cursor;
    MDB_val by_seq, key;
    int rc = mdb_cursor_open (self->txn, self->kseq, &cursor);
    if (rc != 0)
        return s_check (rc, "prune");
    rc = mdb_cursor_get (cursor, &by_seq, &key, MDB_FIRST);
    *seq = rc == 0 ? bus_store_u64_get (by_seq.mv_data) : UINT64_MAX;
    mdb_cursor_close (cursor);
    return s_check (rc == MDB_NOTFOUND ? 0 : rc, "prune");
}

//  Delete the log's entries from its oldest up to (not including) seq
//  end, at most max.
static int
s_prune_log (bus_store_t *self, uint64_t end, uint32_t max, uint32_t *count)
{
    unsigned char buf[8];
    while (*count < max && self->pending_pruned + 1 < end) {
        MDB_val key = bus_store_u64_val (buf, self->pending_pruned + 1);
        int rc = mdb_del (self->txn, self->log, &key, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return s_check (rc, "prune log");
        self->pending_pruned++;
        (*count)++;
    }
    return 0;
}

int
bus_store_prune (bus_store_t *self, int64_t log_before_ms,
                 int64_t keys_before_ms, uint32_t max,
                 bus_store_pruned_t *pruned)
{
    assert (self->txn);
    memset (pruned, 0, sizeof *pruned);
    //  A key goes with its event at the latest
    if (log_before_ms && keys_before_ms < log_before_ms)
        keys_before_ms = log_before_ms;
    bus_event_t *event = malloc (sizeof *event);
    if (!event)
        return BUS_ERR_NOMEM;
    uint64_t first = self->pending_pruned + 1, end = self->pending_seq + 1;
    uint64_t log_cut, key_cut, oldest_key;
    int rc = s_cut_seq (self, first, end, log_before_ms, event, &log_cut);
    if (rc == 0)
        rc = s_cut_seq (self, log_cut, end, keys_before_ms, event, &key_cut);
    free (event);
    if (rc == 0)
        rc = s_prune_keys (self, key_cut, max, &pruned->keys);
    //  Never an event whose key is still there.  It cannot happen today
    //  (at most one key per seq, and the same max for both), so this is a
    //  guard: a change to either must not break the rule silently
    if (rc == 0)
        rc = s_oldest_key_seq (self, &oldest_key);
    if (rc == 0)
        rc = s_prune_log (self, log_cut < oldest_key ? log_cut : oldest_key,
                          max, &pruned->events);
    pruned->first_seq = self->pending_pruned + 1;
    pruned->more = pruned->keys == max || pruned->events == max;
    return rc;
}

int
bus_store_commit (bus_store_t *self)
{
    assert (self->txn);
    int rc = s_meta_flush (self);
    if (rc == 0) {   //  mdb_txn_commit frees the txn even when it fails
        //  Not logged: a full or failing disk fails every batch alike,
        //  and the writer says so once (bus_store_storage)
        self->write_rc = mdb_txn_commit (self->txn);
        rc = s_code (self->write_rc);
    } else
        mdb_txn_abort (self->txn);
    s_batch_end (self, rc == 0);
    if (rc == 0)
        s_seen_write (self);
    return rc;
}

bus_storage_t
bus_store_storage (bus_store_t *self, char *why, size_t why_cap)
{
    int rc = self->write_rc;
    if (why && why_cap)
        snprintf (why, why_cap, "%s", rc ? mdb_strerror (rc) : "");
    if (rc == 0)
        return BUS_STORAGE_OK;
    return rc == ENOSPC || rc == EDQUOT ? BUS_STORAGE_FULL
                                        : BUS_STORAGE_FAILING;
}

//  A full disk is not over until it has room a batch could use: a probe
//  rewrites one page, which LMDB may take from its own free pages inside
//  the file while the next batch still needs the file to grow, and the
//  state would flap full, ok, full with each heartbeat
#define S_FULL_UNTIL_FREE (16 * 1024 * 1024)

int
bus_store_probe (bus_store_t *self)
{
    struct statvfs fs;
    if ((self->write_rc == ENOSPC || self->write_rc == EDQUOT)
        && statvfs (self->dir, &fs) == 0
        && (uint64_t) fs.f_bavail * fs.f_frsize < S_FULL_UNTIL_FREE)
        return s_code (self->write_rc);   //  still full: nothing written
    int rc = bus_store_begin (self);
    if (rc != 0)
        return rc;
    //  The committed value again: a page written and synced, nothing
    //  changed
    rc =
        s_meta_put (self, self->txn, "last_seq", atomic_load (&self->last_seq));
    if (rc != 0) {
        bus_store_abort (self);
        return rc;
    }
    return bus_store_commit (self);
}

void
bus_store_abort (bus_store_t *self)
{
    if (!self->txn)
        return;
    mdb_txn_abort (self->txn);
    s_batch_end (self, false);
}

int
bus_store_grow (bus_store_t *self)
{
    assert (!self->readonly && self->txn == NULL);
    MDB_envinfo info;
    pthread_rwlock_wrlock (&self->lock);
    int rc = mdb_env_info (self->env, &info);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, info.me_mapsize * 2);
    pthread_rwlock_unlock (&self->lock);
    if (rc != 0) {
        s_check (rc, "grow");
        return BUS_ERR_STORAGE;
    }
    zsys_info ("store: map grown from %zu to %zu bytes", info.me_mapsize,
               info.me_mapsize * 2);
    return 0;
}

int
bus_store_reopen (bus_store_t *self)
{
    assert (!self->readonly && self->txn == NULL);
    MDB_envinfo info;
    pthread_rwlock_wrlock (&self->lock);
    size_t size = self->env && mdb_env_info (self->env, &info) == 0
                      ? info.me_mapsize
                      : S_MAP_DEFAULT;
    if (self->env)
        mdb_env_close (self->env);
    self->env = NULL;
    //  What the store was before: the file found now must be it, at the
    //  same sequence or later, as at start (s_seen_check).  A file put
    //  in its place while the disk failed (a restore during an incident)
    //  is refused here too, and the counters stay as they were.
    bus_epoch_t was = self->epoch;
    uint64_t seq = atomic_load (&self->last_seq);
    uint64_t pruned = atomic_load (&self->pruned_seq);
    uint64_t order_id = self->last_order_id;
    int rc = s_env_open (self, self->dir, size);
    if (rc == 0)
        rc = s_dbs_open (self);
    if (rc == 0
        && (self->fresh || !streq (was.id, self->epoch.id)
            || atomic_load (&self->last_seq) < seq)) {
        if (!self->reopen_refused)
            zsys_error ("store: %s/data.mdb is not the store that was open "
                        "(store %s at seq %" PRIu64 " then; now %s%s at seq "
                        "%" PRIu64 "): not used.  Put the data directory "
                        "back, or restart with --accept-restore",
                        self->dir, was.id, seq,
                        self->fresh ? "an empty file, " : "", self->epoch.id,
                        atomic_load (&self->last_seq));
        self->reopen_refused = true;
        rc = BUS_ERR_ROLLED_BACK;
    }
    if (rc != 0) {
        if (self->env)
            mdb_env_close (self->env);
        self->env = NULL;
        self->epoch = was;
        atomic_store (&self->last_seq, seq);
        atomic_store (&self->pruned_seq, pruned);
        self->last_order_id = order_id;
        self->pending_seq = seq;
        self->pending_order_id = order_id;
        self->pending_pruned = pruned;
    } else
        self->reopen_refused = false;
    pthread_rwlock_unlock (&self->lock);
    //  Not logged when it works: a writer whose disk is full reopens
    //  after every batch, and says once what that means
    return rc;
}

//  Write the current menu document; with as_source also remember it as
//  the file it came from, so that a restart with the same file keeps the
//  86s made since.
static int
s_menu_write (bus_store_t *self, MDB_txn *txn, const char *json, size_t len,
              bool as_source)
{
    MDB_val key = s_str_val ("current"), val = { len, (void *) json };
    MDB_val source = s_str_val ("source");
    uint64_t version;
    int rc = s_check (mdb_put (txn, self->menu, &key, &val, 0), "menu put");
    if (rc == 0 && as_source)
        rc = s_check (mdb_put (txn, self->menu, &source, &val, 0), "menu put");
    if (rc == 0)
        rc = s_meta_get (self, txn, "menu_version", &version);
    if (rc == 0)
        rc = s_meta_put (self, txn, "menu_version", version + 1);
    return rc;
}

int
bus_store_menu_set (bus_store_t *self, const char *json, size_t len)
{
    assert (self->txn);
    return s_menu_write (self, self->txn, json, len, false);
}

int
bus_store_menu_put (bus_store_t *self, const char *json, size_t len)
{
    assert (!self->readonly && self->txn == NULL);
    MDB_txn *txn;
    pthread_rwlock_rdlock (&self->lock);
    int rc = s_check (mdb_txn_begin (self->env, NULL, 0, &txn), "menu put");
    if (rc == 0) {
        rc = s_menu_write (self, txn, json, len, true);
        if (rc == 0)
            rc = s_check (mdb_txn_commit (txn), "menu commit");
        else
            mdb_txn_abort (txn);
    }
    pthread_rwlock_unlock (&self->lock);
    return rc;
}

//  ---- Read side --------------------------------------------------------

static int
s_read_begin (bus_store_t *self, MDB_txn **txn)
{
    pthread_rwlock_rdlock (&self->lock);
    int rc = self->env ? mdb_txn_begin (self->env, NULL, MDB_RDONLY, txn) : EIO;
    if (rc != 0)
        pthread_rwlock_unlock (&self->lock);
    return s_check (rc, "read");
}

static void
s_read_end (bus_store_t *self, MDB_txn *txn)
{
    mdb_txn_abort (txn);
    pthread_rwlock_unlock (&self->lock);
}

uint64_t
bus_store_last_seq (bus_store_t *self)
{
    return atomic_load (&self->last_seq);
}

uint64_t
bus_store_damaged (bus_store_t *self)
{
    return atomic_load (&self->damaged);
}

uint64_t
bus_store_first_seq (bus_store_t *self)
{
    return atomic_load (&self->pruned_seq) + 1;
}

int
bus_store_get_order (bus_store_t *self, uint64_t id, bus_order_t *order)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    rc = s_order_read (self, txn, id, order);
    s_read_end (self, txn);
    return rc;
}

//  Pass every open order to fn, ascending id.
static int
s_walk_open (bus_store_t *self, MDB_txn *txn, bus_store_item_fn *fn, void *arg)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->open, &cursor);
    if (rc != 0)
        return s_check (rc, "snapshot");
    MDB_cursor_op op = MDB_FIRST;
    MDB_val key, val;
    int err = 0;
    while (err == 0 && (rc = mdb_cursor_get (cursor, &key, &val, op)) == 0) {
        op = MDB_NEXT;
        //  the index holds only ids (same keys as orders)
        err = s_get (txn, self->orders, &key, &val, "snapshot");
        if (err == BUS_ERR_NOT_FOUND)
            err =
                s_damaged_read (self, "open order",
                                bus_store_u64_get (key.mv_data), "is missing");
        if (err == 0)
            err = s_unseal (self, false, bus_store_u64_get (key.mv_data), &val);
        if (err == 0 && fn (val.mv_data, val.mv_size, arg) != 0)
            break;
    }
    mdb_cursor_close (cursor);
    return err ? err : s_check (rc == MDB_NOTFOUND ? 0 : rc, "snapshot");
}

//  Pass every cart that has lines to fn.
static int
s_walk_carts (bus_store_t *self, MDB_txn *txn, bus_store_item_fn *fn, void *arg)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->carts, &cursor);
    if (rc != 0)
        return s_check (rc, "carts");
    bus_cart_t *cart = malloc (sizeof *cart);
    MDB_val key, val;
    MDB_cursor_op op = MDB_FIRST;
    int err = 0;
    while (cart && (rc = mdb_cursor_get (cursor, &key, &val, op)) == 0) {
        op = MDB_NEXT;
        //  a cart that does not decode is an error, never left out
        if (bus_cart_decode (val.mv_data, val.mv_size, cart) != 0) {
            atomic_fetch_add (&self->damaged, 1);
            zsys_error ("store: %s/data.mdb: the cart of table '%.*s' does "
                        "not decode: the file is damaged; restore it from a "
                        "backup",
                        self->dir, (int) (key.mv_size < 64 ? key.mv_size : 64),
                        (const char *) key.mv_data);
            err = BUS_ERR_DAMAGED;
            break;
        }
        if (cart->line_count > 0 && fn (val.mv_data, val.mv_size, arg) != 0)
            break;
    }
    mdb_cursor_close (cursor);
    free (cart);
    if (!cart)
        return BUS_ERR_NOMEM;
    return err ? err : s_check (rc == MDB_NOTFOUND ? 0 : rc, "carts");
}

//  Counts what passes through to the caller's fn.
typedef struct {
    bus_store_item_fn *fn;
    void *arg;
    uint32_t count;
} s_counter_t;

static int
s_count_item (const void *data, size_t size, void *arg)
{
    s_counter_t *counter = (s_counter_t *) arg;
    counter->count++;
    return counter->fn (data, size, counter->arg);
}

int
bus_store_snapshot (bus_store_t *self, bus_store_item_fn *fn, void *arg,
                    uint64_t *seq, uint32_t *orders)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    s_counter_t counter = { fn, arg, 0 };
    rc = s_meta_get (self, txn, "last_seq", seq);
    if (rc == 0)
        rc = s_walk_open (self, txn, s_count_item, &counter);
    *orders = counter.count;
    if (rc == 0)
        rc = s_walk_carts (self, txn, fn, arg);
    s_read_end (self, txn);
    return rc;
}

//  Pass the open orders of table to fn.
typedef struct {
    const char *table;
    bus_order_t *order;
    bus_store_item_fn *fn;
    void *arg;
} s_table_filter_t;

static int
s_table_item (const void *data, size_t size, void *arg)
{
    s_table_filter_t *filter = (s_table_filter_t *) arg;
    if (bus_order_decode (data, size, filter->order) != 0
        || !streq (filter->order->table, filter->table))
        return 0;
    return filter->fn (data, size, filter->arg);
}

//  Pass table's cart to fn, an empty one if it never had one.
static int
s_table_cart (bus_store_t *self, MDB_txn *txn, const char *table,
              bus_store_item_fn *fn, void *arg)
{
    MDB_val key = s_str_val (table), val;
    int rc = s_get (txn, self->carts, &key, &val, "get cart");
    if (rc == 0) {
        fn (val.mv_data, val.mv_size, arg);
        return 0;
    }
    if (rc != BUS_ERR_NOT_FOUND)
        return rc;
    bus_cart_t *cart = calloc (1, sizeof *cart);
    if (!cart)
        return BUS_ERR_NOMEM;
    bus_strlcpy (cart->table, table, sizeof cart->table);
    zframe_t *frame = bus_cart_encode (cart);
    free (cart);
    if (!frame)
        return BUS_ERR_NOMEM;
    fn (zframe_data (frame), zframe_size (frame), arg);
    zframe_destroy (&frame);
    return 0;
}

int
bus_store_table (bus_store_t *self, const char *table, bus_store_item_fn *fn,
                 void *arg)
{
    s_table_filter_t filter = { table, malloc (sizeof (bus_order_t)), fn, arg };
    if (!filter.order)
        return BUS_ERR_NOMEM;
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc == 0) {
        rc = s_walk_open (self, txn, s_table_item, &filter);
        if (rc == 0)
            rc = s_table_cart (self, txn, table, fn, arg);
        s_read_end (self, txn);
    }
    free (filter.order);
    return rc;
}

static int
s_walk_log (bus_store_t *self, MDB_txn *txn, uint64_t from, uint32_t limit,
            bus_store_item_fn *fn, void *arg)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->log, &cursor);
    if (rc != 0)
        return s_check (rc, "replay");
    unsigned char buf[8];
    MDB_val key = bus_store_u64_val (buf, from), val;
    MDB_cursor_op op = MDB_SET_RANGE;
    int err = 0;
    for (uint32_t n = 0; n < limit && err == 0; n++, op = MDB_NEXT) {
        rc = mdb_cursor_get (cursor, &key, &val, op);
        if (rc == 0)
            err = s_unseal (self, true, bus_store_u64_get (key.mv_data), &val);
        if (rc != 0 || err != 0 || fn (val.mv_data, val.mv_size, arg) != 0)
            break;
    }
    mdb_cursor_close (cursor);
    return err ? err : s_check (rc == MDB_NOTFOUND ? 0 : rc, "replay");
}

int
bus_store_replay (bus_store_t *self, uint64_t from, uint32_t limit,
                  bus_store_item_fn *fn, void *arg, uint64_t *last_seq)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    uint64_t pruned = 0;
    rc = s_meta_get (self, txn, "last_seq", last_seq);
    if (rc == 0)
        rc = s_meta_get (self, txn, "pruned_seq", &pruned);
    //  the log starts at seq 1, so from 0 reads from 1 as well
    if (rc == 0 && (from ? from : 1) <= pruned)
        rc = BUS_ERR_PRUNED;
    if (rc == 0)
        rc = s_walk_log (self, txn, from, limit, fn, arg);
    s_read_end (self, txn);
    return rc;
}

//  List filter; order is scratch space, NULL when nothing is filtered.
typedef struct {
    const bus_store_filter_t *want;
    bus_order_t *order;
} s_filter_t;

static bool
s_filtering (const bus_store_filter_t *want)
{
    return want->status || (want->table && *want->table) || want->from_ms
           || want->to_ms;
}

static int
s_filter_match (bus_store_t *self, s_filter_t *filter, const MDB_val *key,
                const MDB_val *val, bool *match)
{
    *match = true;
    if (!filter->order)
        return 0;
    int rc = s_order_decode (self, key, val, filter->order);
    const bus_store_filter_t *want = filter->want;
    const bus_order_t *order = filter->order;
    if (rc == 0 && want->status)
        *match = order->status == (bus_status_t) want->status;
    if (rc == 0 && want->table && *want->table)
        *match = *match && streq (order->table, want->table);
    if (rc == 0 && want->from_ms)
        *match = *match && order->created_ms >= want->from_ms;
    if (rc == 0 && want->to_ms)
        *match = *match && order->created_ms < want->to_ms;
    return rc;
}

//  Put the cursor on the newest order with id < from (any id if from 0).
static int
s_list_start (MDB_cursor *cursor, uint64_t from, MDB_val *key, MDB_val *val)
{
    if (from == 0)
        return mdb_cursor_get (cursor, key, val, MDB_LAST);
    unsigned char buf[8];
    *key = bus_store_u64_val (buf, from);
    int rc = mdb_cursor_get (cursor, key, val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)   //  every id is below from
        return mdb_cursor_get (cursor, key, val, MDB_LAST);
    //  SET_RANGE lands on the first id >= from: the one before is < from
    return rc ? rc : mdb_cursor_get (cursor, key, val, MDB_PREV);
}

//  Walk orders newest first; one match past the page proves a next page.
static int
s_walk_orders (bus_store_t *self, MDB_txn *txn, s_filter_t *filter,
               uint64_t from, uint32_t limit, bus_store_item_fn *fn, void *arg,
               uint64_t *next)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->orders, &cursor);
    if (rc != 0)
        return s_check (rc, "list");
    MDB_val key, val;
    uint32_t passed = 0;
    uint64_t last = 0;
    int err = 0;
    for (rc = s_list_start (cursor, from, &key, &val); rc == 0;
         rc = mdb_cursor_get (cursor, &key, &val, MDB_PREV)) {
        bool match;
        if ((err =
                 s_unseal (self, false, bus_store_u64_get (key.mv_data), &val))
                != 0
            || (err = s_filter_match (self, filter, &key, &val, &match)) != 0)
            break;
        if (!match)
            continue;
        if (passed == limit)
            break;
        last = bus_store_u64_get (key.mv_data);
        passed++;
        //  stopped by fn: whether more exist is unknown, offer the cursor
        if (fn (val.mv_data, val.mv_size, arg) != 0)
            break;
    }
    mdb_cursor_close (cursor);
    *next = rc == 0 && err == 0 ? last : 0;
    return err ? err : s_check (rc == MDB_NOTFOUND ? 0 : rc, "list");
}

int
bus_store_list (bus_store_t *self, const bus_store_filter_t *want,
                uint64_t cursor, uint32_t limit, bus_store_item_fn *fn,
                void *arg, uint64_t *next)
{
    s_filter_t filter = { want, NULL };
    if (s_filtering (want)) {
        filter.order = malloc (sizeof *filter.order);
        if (!filter.order)
            return BUS_ERR_NOMEM;
    }
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc == 0) {
        rc = s_walk_orders (self, txn, &filter, cursor, limit, fn, arg, next);
        s_read_end (self, txn);
    }
    free (filter.order);
    return rc;
}

//  Read the menu document named name ("current" or "source").
static int
s_menu_read (bus_store_t *self, const char *name, char **json, size_t *len,
             uint64_t *version)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    MDB_val key = s_str_val (name), val;
    rc = s_meta_get (self, txn, "menu_version", version);
    if (rc == 0)
        rc = s_get (txn, self->menu, &key, &val, "menu get");
    if (rc == 0 && !(*json = malloc (val.mv_size + 1)))
        rc = BUS_ERR_NOMEM;
    if (rc == 0) {
        memcpy (*json, val.mv_data, val.mv_size);
        (*json)[val.mv_size] = '\0';
        *len = val.mv_size;
    }
    s_read_end (self, txn);
    return rc;
}

int
bus_store_menu_get (bus_store_t *self, char **json, size_t *len,
                    uint64_t *version)
{
    return s_menu_read (self, "current", json, len, version);
}

bool
bus_store_menu_is_source (bus_store_t *self, const char *json, size_t len)
{
    char *source;
    size_t source_len;
    uint64_t version;
    if (s_menu_read (self, "source", &source, &source_len, &version) != 0)
        return false;
    bool same = source_len == len && memcmp (source, json, len) == 0;
    free (source);
    return same;
}

//  ---- Private hooks (bus_store_private.h) -------------------------------

int
bus_store_meta_read (bus_store_t *self, const char *name, uint64_t *value)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    rc = s_meta_get (self, txn, name, value);
    s_read_end (self, txn);
    return rc;
}

int
bus_store_meta_write (bus_store_t *self, const char *name, uint64_t value)
{
    assert (!self->readonly && self->txn == NULL);
    MDB_txn *txn;
    int rc = s_check (mdb_txn_begin (self->env, NULL, 0, &txn), name);
    if (rc == 0)
        rc = s_meta_put (self, txn, name, value);
    if (rc == 0)
        rc = s_check (mdb_txn_commit (txn), name);
    else
        mdb_txn_abort (txn);
    return rc;
}

const char *
bus_store_last_damage (void)
{
    return s_last_damage;
}

MDB_env *
bus_store_env (bus_store_t *self)
{
    return self->env;
}

//  ---- Replication's hooks (bus_store_private.h, bus_store_repl.c) ------

bool
bus_store__empty (bus_store_t *self)
{
    assert (self->txn);
    return self->pending_seq == 0 && self->pending_pruned == 0;
}

uint64_t
bus_store__pending_seq (bus_store_t *self)
{
    assert (self->txn);
    return self->pending_seq;
}

int
bus_store__log_put (bus_store_t *self, const void *data, size_t size,
                    const bus_event_t *event)
{
    assert (self->txn && event->seq == self->pending_seq + 1);
    int rc = s_put_sealed (self->txn, self->log, event->seq, data, size,
                           MDB_APPEND, "replicate log");
    //  s_put_state takes a mutable event; it changes nothing in it
    if (rc == 0)
        rc = s_put_state (self, (bus_event_t *) event);
    if (rc != 0)
        return rc;
    self->pending_seq = event->seq;
    //  The writer reserved the id with the order (bus_store_order_next_id)
    if ((event->type == BUS_EVENT_ORDER_PLACED
         || event->type == BUS_EVENT_ORDER_STATUS)
        && event->order.id > self->pending_order_id)
        self->pending_order_id = event->order.id;
    return 0;
}

int
bus_store__menu_adopt (bus_store_t *self, const char *json, size_t len,
                       uint64_t version)
{
    assert (self->txn);
    MDB_val key = s_str_val ("current"), val = { len, (void *) json };
    int rc = s_check (mdb_put (self->txn, self->menu, &key, &val, 0),
                      "replicate menu");
    return rc ? rc : s_meta_put (self, self->txn, "menu_version", version);
}

int
bus_store__epoch_adopt (bus_store_t *self, const bus_epoch_t *epoch)
{
    assert (self->txn);
    MDB_val key = s_str_val ("identity"), val = s_str_val (epoch->id);
    int rc = s_check (mdb_put (self->txn, self->meta, &key, &val, 0),
                      "replicate identity");
    if (rc == 0)
        rc = s_meta_put (self, self->txn, "epoch", epoch->epoch);
    if (rc == 0)
        rc = s_meta_put (self, self->txn, "epoch_parent", epoch->parent);
    if (rc == 0)
        rc = s_meta_put (self, self->txn, "epoch_base", epoch->base);
    //  Taken by the commit (s_batch_end): a batch that fails or is
    //  aborted leaves the store following what it followed
    if (rc == 0)
        self->pending_epoch = *epoch;
    return rc;
}

void
bus_store__pending_epoch (bus_store_t *self, bus_epoch_t *epoch)
{
    *epoch = self->txn ? self->pending_epoch : self->epoch;
}

int
bus_store__walk_log (bus_store_t *self, uint64_t from, uint32_t limit,
                     bus_store__log_fn *fn, void *arg, uint64_t *last_seq,
                     uint64_t *menu_version)
{
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    uint64_t pruned;
    rc = s_meta_get (self, txn, "last_seq", last_seq);
    if (rc == 0)
        rc = s_meta_get (self, txn, "menu_version", menu_version);
    if (rc == 0)
        rc = s_meta_get (self, txn, "pruned_seq", &pruned);
    if (rc == 0 && from <= pruned)
        rc = BUS_ERR_PRUNED;
    for (uint64_t seq = from; rc == 0 && seq <= *last_seq && seq < from + limit;
         seq++) {
        unsigned char buf[8];
        MDB_val key = bus_store_u64_val (buf, seq), val, name, fp;
        char text[BUS_KEY_MAX] = "";
        uint64_t fingerprint = 0;
        rc = s_get (txn, self->log, &key, &val, "replicate read");
        if (rc == 0)
            rc = s_unseal (self, true, seq, &val);
        //  A key is optional (a status move of the kitchen has one too,
        //  but the log does not need it); the keys database says its
        //  fingerprint
        int found = self->kseq
                        ? s_get (txn, self->kseq, &key, &name, "replicate kseq")
                        : BUS_ERR_NOT_FOUND;
        if (rc == 0 && found == 0 && name.mv_size < sizeof text) {
            memcpy (text, name.mv_data, name.mv_size);
            text[name.mv_size] = '\0';
            if (s_get (txn, self->keys, &name, &fp, "replicate key") == 0
                && fp.mv_size == 16)
                fingerprint = bus_store_u64_get (fp.mv_data);
        } else if (rc == 0 && found != BUS_ERR_NOT_FOUND)
            rc = found ? found : BUS_ERR_DAMAGED;
        if (rc == 0
            && fn (seq, val.mv_data, val.mv_size, text, fingerprint, arg) != 0)
            break;
    }
    s_read_end (self, txn);
    return rc;
}

int
bus_store__log_sum (bus_store_t *self, uint64_t seq, uint64_t *sum)
{
    *sum = 0;
    if (seq == 0)
        return 0;
    MDB_txn *txn;
    int rc = s_read_begin (self, &txn);
    if (rc != 0)
        return rc;
    unsigned char buf[8], hash[crypto_shorthash_BYTES];
    MDB_val key = bus_store_u64_val (buf, seq), val;
    rc = s_get (txn, self->log, &key, &val, "replicate sum");
    if (rc == 0)
        rc = s_unseal (self, true, seq, &val);
    if (rc == 0) {
        s_seal_hash (seq, val.mv_data, val.mv_size, hash);
        *sum = bus_store_u64_get (hash);
    }
    s_read_end (self, txn);
    return rc;
}
