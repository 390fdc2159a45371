/*  bus_store_verify.c — every record of an environment read and checked
    against the others (bus_store_verify in bus_store.h; `orderbus verify`
    and the writer's start use it).

    The walk runs in a child process.  LMDB reads its pages in place and
    trusts them: a damaged branch or leaf page trips one of its
    assertions, which aborts the process (its assert callback may not
    return into it), and a page past the file's end is a SIGBUS.  So a
    forked child walks, writing its findings, and where it is reading,
    into memory shared with the parent (an anonymous shared map); if it
    dies, the parent reports that place as the first bad record.  The
    child only reads: the environment is opened read-only, as an export
    opens it, so a writer may be running.  */

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store.h"
#include "bus_store_private.h"

//  What the child writes and the parent reads.  where_db points at a
//  string literal: the same address in both, the image being the same.
typedef struct {
    bus_store_report_t report;
    const char *where_db;   //  the database being read, or NULL
    uint64_t where_key;     //  the key last read in it (8-byte keys)
    int rc;                 //  the walk's result
    bool done;              //  the child got to the end
} s_shared_t;

//  One walk, in the child.
typedef struct {
    s_shared_t *shared;
    bus_store_report_t *report;
    MDB_txn *txn;
    MDB_dbi log, orders, open, keys, carts, meta, menu, kseq;
    bool has_kseq;   //  an environment from before retention has none
    uint64_t sealed_seq, sealed_order;   //  meta: sealed from (0: none)
    bus_event_t *event;
    bus_order_t *order;
    bus_cart_t *cart;
} s_walk_t;

//  Count a problem; the first one is kept in words.
static void s_bad (s_walk_t *w, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_bad (s_walk_t *w, const char *format, ...)
{
    if (w->report->bad++ > 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (w->report->first_bad, sizeof w->report->first_bad, format, args);
    va_end (args);
}

static void
s_at (s_walk_t *w, const char *db, const MDB_val *key)
{
    w->shared->where_db = db;
    w->shared->where_key =
        key && key->mv_size == 8 ? bus_store_u64_get (key->mv_data) : 0;
}

static bool
s_has (s_walk_t *w, MDB_dbi dbi, uint64_t id)
{
    unsigned char buf[8];
    MDB_val key = bus_store_u64_val (buf, id), val;
    return mdb_get (w->txn, dbi, &key, &val) == 0;
}

static void
s_meta (s_walk_t *w, const char *name, uint64_t *value)
{
    MDB_val key = { strlen (name), (void *) name }, val;
    *value = 0;
    if (mdb_get (w->txn, w->meta, &key, &val) != 0)
        return;
    if (val.mv_size == 8)
        *value = bus_store_u64_get (val.mv_data);
    else
        s_bad (w, "meta: %s has %zu bytes, not 8", name, val.mv_size);
}

static void
s_read_meta (s_walk_t *w)
{
    bus_store_report_t *r = w->report;
    s_meta (w, "last_seq", &r->last_seq);
    s_meta (w, "pruned_seq", &r->pruned_seq);
    s_meta (w, "last_order_id", &r->last_order_id);
    s_meta (w, "sealed_seq", &w->sealed_seq);
    s_meta (w, "sealed_order", &w->sealed_order);
    MDB_val key = { 8, (void *) "identity" }, val;
    if (mdb_get (w->txn, w->meta, &key, &val) == 0
        && val.mv_size == BUS_WRITER_ID_MAX - 1)
        memcpy (r->identity, val.mv_data, val.mv_size);
    if (r->pruned_seq > r->last_seq)
        s_bad (w, "meta: pruned_seq %" PRIu64 " is past last_seq %" PRIu64,
               r->pruned_seq, r->last_seq);
}

//  Call check for every entry of dbi, in key order.
static void
s_each (s_walk_t *w, MDB_dbi dbi, const char *db,
        void (*check) (s_walk_t *, const MDB_val *, const MDB_val *))
{
    MDB_cursor *cursor;
    MDB_val key, val;
    int rc = mdb_cursor_open (w->txn, dbi, &cursor);
    if (rc != 0) {
        s_bad (w, "%s: %s", db, mdb_strerror (rc));
        return;
    }
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get (cursor, &key, &val, op)) == 0) {
        op = MDB_NEXT;
        s_at (w, db, &key);
        check (w, &key, &val);
    }
    if (rc != MDB_NOTFOUND)
        s_bad (w, "%s: reading after key %" PRIu64 ": %s", db,
               w->shared->where_key, mdb_strerror (rc));
    mdb_cursor_close (cursor);
}

//  The record's bytes into *bytes, checked against its checksum; an old
//  record without one is counted.  False if it fails.
static bool
s_unsealed (s_walk_t *w, uint64_t id, uint64_t sealed_from, const MDB_val *val,
            MDB_val *bytes)
{
    *bytes = *val;
    int rc = bus_store_unseal (id, sealed_from && id >= sealed_from, bytes);
    if (rc == 1)
        w->report->unchecked++;
    return rc >= 0;
}

static void
s_check_event (s_walk_t *w, const MDB_val *key, const MDB_val *stored)
{
    MDB_val bytes, *val = &bytes;
    bus_store_report_t *r = w->report;
    if (key->mv_size != 8) {
        s_bad (w, "log: a key of %zu bytes", key->mv_size);
        return;
    }
    uint64_t seq = bus_store_u64_get (key->mv_data);
    uint64_t expect = r->pruned_seq + 1 + r->records;
    r->records++;
    if (!s_unsealed (w, seq, w->sealed_seq, stored, &bytes))
        s_bad (w, "log: the event of seq %" PRIu64 " fails its checksum", seq);
    else if (seq != expect)
        s_bad (w, "log: seq %" PRIu64 " where %" PRIu64 " should be (a hole)",
               seq, expect);
    else if (bus_event_decode (val->mv_data, val->mv_size, w->event) != 0
             || w->event->seq != seq)
        s_bad (w, "log: the event of seq %" PRIu64 " does not decode", seq);
    else if (seq > r->last_seq)
        s_bad (w, "log: seq %" PRIu64 " is past last_seq %" PRIu64, seq,
               r->last_seq);
}

static void
s_check_order (s_walk_t *w, const MDB_val *key, const MDB_val *stored)
{
    bus_store_report_t *r = w->report;
    r->orders++;
    uint64_t id = key->mv_size == 8 ? bus_store_u64_get (key->mv_data) : 0;
    bus_order_t *order = w->order;
    MDB_val bytes, *val = &bytes;
    if (key->mv_size != 8)
        s_bad (w, "orders: a key of %zu bytes", key->mv_size);
    else if (!s_unsealed (w, id, w->sealed_order, stored, &bytes))
        s_bad (w, "orders: order %" PRIu64 " fails its checksum", id);
    else if (bus_order_decode (val->mv_data, val->mv_size, order) != 0
             || order->id != id)
        s_bad (w, "orders: order %" PRIu64 " does not decode", id);
    else if (id > r->last_order_id)
        s_bad (w, "orders: order %" PRIu64 " is past last_order_id %" PRIu64,
               id, r->last_order_id);
    else if (order->seq > r->last_seq)
        s_bad (w,
               "orders: order %" PRIu64 " is at seq %" PRIu64
               ", past last_seq %" PRIu64,
               id, order->seq, r->last_seq);
    else if (order->seq > r->pruned_seq && !s_has (w, w->log, order->seq))
        s_bad (w,
               "orders: order %" PRIu64 "'s event, seq %" PRIu64
               ", is not in the log",
               id, order->seq);
    else if (bus_status_is_open (order->status) != s_has (w, w->open, id))
        s_bad (w, "open: order %" PRIu64 " is %s but %s the open index", id,
               bus_status_is_open (order->status) ? "open" : "closed",
               bus_status_is_open (order->status) ? "not in" : "in");
}

static void
s_check_open (s_walk_t *w, const MDB_val *key, const MDB_val *val)
{
    (void) val;
    w->report->open++;
    uint64_t id = key->mv_size == 8 ? bus_store_u64_get (key->mv_data) : 0;
    if (!s_has (w, w->orders, id))
        s_bad (w,
               "open: order %" PRIu64 " is in the open index but not "
               "stored",
               id);
}

static void
s_check_key (s_walk_t *w, const MDB_val *key, const MDB_val *val)
{
    bus_store_report_t *r = w->report;
    r->keys++;
    uint64_t seq = val->mv_size == 16
                       ? bus_store_u64_get ((const char *) val->mv_data + 8)
                       : 0;
    if (val->mv_size != 16)
        s_bad (w, "keys: key '%.*s' has %zu bytes, not 16",
               (int) (key->mv_size < 64 ? key->mv_size : 64),
               (const char *) key->mv_data, val->mv_size);
    else if (seq > r->last_seq
             || (seq > r->pruned_seq && !s_has (w, w->log, seq)))
        s_bad (w,
               "keys: key '%.*s' names seq %" PRIu64
               ", which is not in the log",
               (int) (key->mv_size < 64 ? key->mv_size : 64),
               (const char *) key->mv_data, seq);
}

static void
s_check_cart (s_walk_t *w, const MDB_val *key, const MDB_val *val)
{
    w->report->carts++;
    if (bus_cart_decode (val->mv_data, val->mv_size, w->cart) != 0)
        s_bad (w, "carts: the cart of table '%.*s' does not decode",
               (int) (key->mv_size < 64 ? key->mv_size : 64),
               (const char *) key->mv_data);
}

//  Entries that are only read, so that a damaged page among them is
//  found: the free list, the names of the databases, the menu, the
//  retention index.
static void
s_check_none (s_walk_t *w, const MDB_val *key, const MDB_val *val)
{
    (void) w, (void) key, (void) val;
}

static int
s_walk (s_walk_t *w)
{
    s_read_meta (w);
    s_each (w, w->log, "log", s_check_event);
    bus_store_report_t *r = w->report;
    if (r->records == 0 && r->last_seq > r->pruned_seq)
        s_bad (w, "log: empty, but last_seq is %" PRIu64, r->last_seq);
    else if (r->records && r->pruned_seq + r->records != r->last_seq)
        s_bad (w, "log: ends at seq %" PRIu64 ", but last_seq is %" PRIu64,
               r->pruned_seq + r->records, r->last_seq);
    s_each (w, w->orders, "orders", s_check_order);
    s_each (w, w->open, "open", s_check_open);
    s_each (w, w->keys, "keys", s_check_key);
    s_each (w, w->carts, "carts", s_check_cart);
    s_each (w, w->menu, "menu", s_check_none);
    if (w->has_kseq)
        s_each (w, w->kseq, "kseq", s_check_none);
    s_each (w, 0, "free pages", s_check_none);       //  LMDB's FREE_DBI
    s_each (w, 1, "database names", s_check_none);   //  LMDB's MAIN_DBI
    w->shared->where_db = NULL;
    return 0;
}

static int
s_dbi (s_walk_t *w, const char *name, MDB_dbi *dbi)
{
    int rc = mdb_dbi_open (w->txn, name, 0, dbi);
    if (rc != 0)
        s_bad (w, "the '%s' database cannot be opened: %s", name,
               mdb_strerror (rc));
    return rc;
}

//  In the child: open, walk, record; never returns.
static void
s_child (const char *dir, s_shared_t *shared)
{
    s_walk_t w = { .shared = shared, .report = &shared->report };
    int rc;
    bus_store_t *store = bus_store_open_readonly (dir, &rc);
    if (!store) {
        shared->rc = rc;
        if (rc == BUS_ERR_DAMAGED)
            s_bad (&w, "%s",
                   *bus_store_last_damage ()
                       ? bus_store_last_damage ()
                       : "data.mdb fails the checks at open");
        _exit (0);
    }
    w.event = malloc (sizeof *w.event);
    w.order = malloc (sizeof *w.order);
    w.cart = malloc (sizeof *w.cart);
    rc = w.event && w.order && w.cart ? 0 : BUS_ERR_NOMEM;
    if (rc == 0
        && mdb_txn_begin (bus_store_env (store), NULL, MDB_RDONLY, &w.txn) != 0)
        rc = BUS_ERR_STORAGE;
    if (rc == 0
        && (s_dbi (&w, "log", &w.log) || s_dbi (&w, "orders", &w.orders)
            || s_dbi (&w, "open", &w.open) || s_dbi (&w, "keys", &w.keys)
            || s_dbi (&w, "carts", &w.carts) || s_dbi (&w, "meta", &w.meta)
            || s_dbi (&w, "menu", &w.menu)))
        rc = BUS_ERR_DAMAGED;
    w.has_kseq = rc == 0 && mdb_dbi_open (w.txn, "kseq", 0, &w.kseq) == 0;
    if (rc == 0)
        s_walk (&w);
    shared->rc = rc;
    shared->done = true;
    _exit (0);
}

//  What a child killed by signal sig was doing, as the first bad record.
static void
s_died (s_shared_t *shared, int sig)
{
    bus_store_report_t *r = &shared->report;
    char where[120] = "opening it";
    if (shared->where_db)
        snprintf (where, sizeof where, "reading '%s' after key %" PRIu64,
                  shared->where_db, shared->where_key);
    if (r->bad++ == 0)
        snprintf (r->first_bad, sizeof r->first_bad,
                  "LMDB stopped (%s) %s: a damaged page",
                  sig == SIGBUS    ? "SIGBUS, a page past the file's end"
                  : sig == SIGABRT ? "an assertion failed, see above"
                  : sig            ? strsignal (sig)
                                   : "its reader died, see above",
                  where);
}

//  Compare the store with what its directory last committed (read before
//  the walk, so a writer running meanwhile can only be ahead of it).
static int
s_seen_compare (const char *dir, bus_store_report_t *r, bool seen,
                const char *id, uint64_t seq, int rc)
{
    if (!seen || (rc != 0 && rc != BUS_ERR_NOT_FOUND))
        return rc;
    const char *what = NULL;
    char file[64];
    if (rc == BUS_ERR_NOT_FOUND) {
        struct stat st;
        char path[4200];
        snprintf (path, sizeof path, "%s/data.mdb", dir);
        snprintf (file, sizeof file, "%s",
                  stat (path, &st) != 0 ? "is missing"
                  : st.st_size == 0     ? "is empty (0 bytes)"
                                        : "holds no orderbus store");
        what = file;
    } else if (!streq (r->identity, id))
        what = "is another store";
    else if (r->last_seq < seq)
        what = "is older";
    if (!what)
        return 0;
    if (r->bad++ == 0)
        snprintf (r->first_bad, sizeof r->first_bad,
                  "data.mdb %s (store %s at seq %" PRIu64
                  "), but this directory last committed seq %" PRIu64
                  " of store %s: restored from an older copy, replaced, or "
                  "its newest meta page lost",
                  what, *r->identity ? r->identity : "-", r->last_seq, seq, id);
    return BUS_ERR_ROLLED_BACK;
}

int
bus_store_verify (const char *dir, bus_store_report_t *report)
{
    memset (report, 0, sizeof *report);
    char seen_id[BUS_WRITER_ID_MAX];
    uint64_t seen_seq;
    bool seen = bus_store_seen_read (dir, seen_id, &seen_seq);
    //  No file, or an empty one (which LMDB would make a new store of)
    struct stat st;
    char path[4200];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    if (stat (path, &st) != 0 || st.st_size == 0) {
        if (seen || stat (path, &st) != 0)
            return s_seen_compare (dir, report, seen, seen_id, seen_seq,
                                   BUS_ERR_NOT_FOUND);
        report->bad = 1;
        snprintf (report->first_bad, sizeof report->first_bad,
                  "data.mdb is empty (0 bytes)");
        return BUS_ERR_DAMAGED;
    }
    s_shared_t *shared = mmap (NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return BUS_ERR_NOMEM;
    memset (shared, 0, sizeof *shared);
    fflush (NULL);   //  nothing buffered is written twice
    pid_t pid = fork ();
    if (pid == 0) {
        //  The node blocks SIGINT and SIGTERM for its sigwait; a long walk
        //  must still stop when asked
        sigset_t stop;
        sigemptyset (&stop);
        sigaddset (&stop, SIGINT);
        sigaddset (&stop, SIGTERM);
        sigprocmask (SIG_UNBLOCK, &stop, NULL);
        s_child (dir, shared);
    }
    int status = 0, rc = BUS_ERR_STORAGE;
    while (pid > 0 && waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0)
        zsys_error ("store: verify: cannot fork: %s", strerror (errno));
    //  A child that neither finished nor failed an open died on a page:
    //  by a signal, or by exit when a sanitizer caught the signal first
    else if (WIFSIGNALED (status)
             && (WTERMSIG (status) == SIGKILL || WTERMSIG (status) == SIGTERM
                 || WTERMSIG (status) == SIGINT)) {
        //  Stopped from outside (the OOM killer, an operator): that says
        //  nothing of the file
        zsys_error ("store: verify of %s was stopped by signal %d before "
                    "it ended: the data was not checked",
                    dir, WTERMSIG (status));
        rc = BUS_ERR_STORAGE;
    } else if (WIFSIGNALED (status) || (!shared->done && shared->rc == 0)) {
        s_died (shared, WIFSIGNALED (status) ? WTERMSIG (status) : 0);
        rc = BUS_ERR_DAMAGED;
    } else if (shared->done || shared->rc != 0)
        rc = shared->rc ? shared->rc
                        : (shared->report.bad ? BUS_ERR_DAMAGED : 0);
    *report = shared->report;
    munmap (shared, sizeof *shared);
    return s_seen_compare (dir, report, seen, seen_id, seen_seq, rc);
}
