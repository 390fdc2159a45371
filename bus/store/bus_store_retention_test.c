/*  bus_store_retention_test.c — selftest of retention (bus_store_prune),
    part of bus_store_test: a real environment whose events are dated by
    the test (the clock is the events' ts_ms and the prune's cut-offs),
    so days pass without waiting.  Checks that what is newer is kept and
    what is older deleted, oldest first and at most max per transaction;
    that keys go before (or with) their events, never after; that a replay
    from a pruned seq answers BUS_ERR_PRUNED; that orders and the open
    index are untouched; that an abort undoes a prune and a reopen keeps
    it; and that an environment made before retention gets its keys
    indexed; and that pages freed by pruning are used again.  */

#include <inttypes.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store.h"
#include "bus_store_private.h"

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

#define S_T0     1767000000000   //  the first event's time (ms)
#define S_MINUTE 60000           //  events are a minute apart
#define S_EVENTS 600             //  seqs 1..600, order ids the same

//  Time of event seq
static int64_t
s_at (uint64_t seq)
{
    return S_T0 + (int64_t) seq * S_MINUTE;
}

//  Every third event has no key, as a status change's first event would
//  not if its key were put on another: keys and events do not line up
static bool
s_keyed (uint64_t seq)
{
    return seq % 3 != 0;
}

//  Append events first..last (their order ids the same), dated s_at,
//  with keys "k-<seq>" on the keyed ones, in one batch.
static void
s_fill (bus_store_t *store, uint64_t first, uint64_t last)
{
    bus_event_t *event = calloc (1, sizeof *event);
    assert (event);
    assert (bus_store_begin (store) == 0);
    for (uint64_t seq = first; seq <= last; seq++) {
        memset (event, 0, sizeof *event);
        event->type = BUS_EVENT_ORDER_PLACED;
        event->ts_ms = s_at (seq);
        bus_order_t *order = &event->order;
        order->id = bus_store_order_next_id (store);
        order->version = 1;
        order->status = BUS_STATUS_PLACED;
        strcpy (order->table, "T1");
        snprintf (order->key, sizeof order->key, "k-%" PRIu64, seq);
        strcpy (order->origin, "gw1");
        order->created_ms = order->updated_ms = event->ts_ms;
        order->status_ms[BUS_STATUS_PLACED] = event->ts_ms;
        order->line_count = 1;
        strcpy (order->lines[0].item_id, "soup");
        strcpy (order->lines[0].name, "Soup");
        order->lines[0].qty = 1;
        order->lines[0].unit_cents = 950;
        assert (bus_store_append (store, event, NULL) == 0);
        assert (event->seq == seq && order->id == seq);
        if (s_keyed (seq))
            assert (bus_store_key_put (store, order->key, seq * 7, seq) == 0);
    }
    assert (bus_store_commit (store) == 0);
    free (event);
}

//  One prune in a transaction of its own, committed
static bus_store_pruned_t
s_prune (bus_store_t *store, int64_t log_before, int64_t keys_before,
         uint32_t max)
{
    bus_store_pruned_t pruned;
    assert (bus_store_begin (store) == 0);
    assert (bus_store_prune (store, log_before, keys_before, max, &pruned)
            == 0);
    assert (bus_store_commit (store) == 0);
    return pruned;
}

//  Is key "k-<seq>" known (and then with its own event)?
static bool
s_key_known (bus_store_t *store, uint64_t seq)
{
    char key[32];
    snprintf (key, sizeof key, "k-%" PRIu64, seq);
    uint64_t fingerprint, at;
    assert (bus_store_begin (store) == 0);
    int rc = bus_store_key_get (store, key, &fingerprint, &at);
    bus_event_t *event = calloc (1, sizeof *event);
    assert (event);
    if (rc == 0) {   //  a known key always has its event
        assert (fingerprint == seq * 7 && at == seq);
        assert (bus_store_event_lookup (store, at, event) == 0);
        assert (event->seq == seq);
    }
    free (event);
    bus_store_abort (store);
    assert (rc == 0 || rc == BUS_ERR_NOT_FOUND);
    return rc == 0;
}

static int
s_count_fn (const void *data, size_t size, void *arg)
{
    (void) data;
    (void) size;
    (*(size_t *) arg)++;
    return 0;
}

//  Replay from `from`: BUS_ERR_PRUNED, or 0 with events from..last.
static int
s_replay (bus_store_t *store, uint64_t from, size_t *count)
{
    uint64_t last;
    *count = 0;
    int rc = bus_store_replay (store, from, 1000, s_count_fn, count, &last);
    assert (last == bus_store_last_seq (store));
    if (rc == BUS_ERR_PRUNED)
        assert (*count == 0);
    return rc;
}

//  Keys with a seq in [1, upto]
static uint32_t
s_keys_upto (uint64_t upto)
{
    uint32_t count = 0;
    for (uint64_t seq = 1; seq <= upto; seq++)
        count += s_keyed (seq);
    return count;
}

//  Prune the log before event 301 and keys before event 401, 100 at a
//  time: each transaction deletes at most 100 of each, keys first.
static void
s_test_bounded (bus_store_t *store)
{
    size_t count;
    assert (bus_store_first_seq (store) == 1);
    assert (s_replay (store, 1, &count) == 0 && count == S_EVENTS);

    bus_store_pruned_t p = s_prune (store, s_at (301), s_at (401), 100);
    //  100 keys (the keyed seqs up to 149), then the events below the
    //  oldest key left (151): 100 of those 150
    assert (p.keys == 100 && p.events == 100 && p.more);
    assert (p.first_seq == 101 && bus_store_first_seq (store) == 101);
    assert (s_replay (store, 1, &count) == BUS_ERR_PRUNED);
    assert (s_replay (store, 0, &count) == BUS_ERR_PRUNED);
    assert (s_replay (store, 100, &count) == BUS_ERR_PRUNED);
    assert (s_replay (store, 101, &count) == 0 && count == S_EVENTS - 100);
    assert (!s_key_known (store, 149) && s_key_known (store, 151));

    uint32_t keys = p.keys, events = p.events, runs = 1;
    while (p.more) {
        p = s_prune (store, s_at (301), s_at (401), 100);
        assert (p.keys <= 100 && p.events <= 100);
        keys += p.keys;
        events += p.events;
        runs++;
    }
    //  Older than event 301 gone, the rest kept; keys to 400 gone
    assert (events == 300 && p.first_seq == 301);
    assert (keys == s_keys_upto (400));
    //  the third deleted exactly 100 events, so it could not tell it was
    //  done: a fourth found nothing
    assert (runs == 4 && !p.more && p.events == 0 && p.keys == 0);
    assert (s_replay (store, 300, &count) == BUS_ERR_PRUNED);
    assert (s_replay (store, 301, &count) == 0 && count == S_EVENTS - 300);
    assert (!s_key_known (store, 400) && !s_key_known (store, 302));
    assert (s_key_known (store, 401) && s_key_known (store, 599));

    //  Nothing more to do at the same cut-offs
    p = s_prune (store, s_at (301), s_at (401), 100);
    assert (p.keys == 0 && p.events == 0 && !p.more && p.first_seq == 301);

    //  The orders the pruned events made are all still there, open
    bus_order_t *order = malloc (sizeof *order);
    assert (order);
    assert (bus_store_get_order (store, 1, order) == 0 && order->id == 1);
    free (order);
    uint64_t seq;
    uint32_t open;
    count = 0;
    assert (bus_store_snapshot (store, s_count_fn, &count, &seq, &open) == 0);
    assert (open == S_EVENTS && seq == S_EVENTS);
}

//  Keys kept for ever (0) go with their events; a log kept for ever (0)
//  loses none while keys go by their own age.
static void
s_test_forever (bus_store_t *store)
{
    bus_store_pruned_t p = s_prune (store, 0, s_at (451), 1000);
    assert (p.events == 0 && p.first_seq == 301);
    assert (p.keys == s_keys_upto (450) - s_keys_upto (400));
    assert (!s_key_known (store, 449) && s_key_known (store, 451));

    p = s_prune (store, s_at (501), 0, 1000);
    assert (p.events == 200 && p.first_seq == 501 && !p.more);
    assert (p.keys == s_keys_upto (500) - s_keys_upto (450));
    assert (!s_key_known (store, 500) && s_key_known (store, 502));

    //  Both 0: nothing at all
    p = s_prune (store, 0, 0, 1000);
    assert (p.events == 0 && p.keys == 0 && p.first_seq == 501);
}

//  An aborted prune changes nothing, on disk or in the cached first seq.
static void
s_test_abort (bus_store_t *store)
{
    bus_store_pruned_t p;
    size_t count;
    assert (bus_store_begin (store) == 0);
    assert (bus_store_prune (store, s_at (551), s_at (551), 1000, &p) == 0);
    assert (p.events == 50 && p.first_seq == 551);
    bus_store_abort (store);
    assert (bus_store_first_seq (store) == 501);
    assert (s_replay (store, 501, &count) == 0 && count == 100);
    assert (s_key_known (store, 502));
}

//  Everything older than the last event, then all of it: the log may be
//  empty; the next event still follows the last seq, and replays from it.
static void
s_test_all (bus_store_t *store)
{
    size_t count;
    bus_store_pruned_t p =
        s_prune (store, s_at (S_EVENTS + 1), s_at (S_EVENTS + 1), 1000);
    assert (p.events == 100 && p.first_seq == S_EVENTS + 1);
    assert (s_replay (store, S_EVENTS, &count) == BUS_ERR_PRUNED);
    assert (s_replay (store, S_EVENTS + 1, &count) == 0 && count == 0);
    s_fill (store, S_EVENTS + 1, S_EVENTS + 2);
    assert (s_replay (store, S_EVENTS + 1, &count) == 0 && count == 2);
    assert (s_key_known (store, S_EVENTS + 1));
}

//  An environment from before retention: keys, no index.  Opened by this
//  version, its keys are indexed and pruned like any.
static void
s_test_legacy (const char *dir)
{
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    s_fill (store, 1, 30);
    MDB_txn *txn;
    MDB_dbi kseq;
    assert (mdb_txn_begin (bus_store_env (store), NULL, 0, &txn) == 0);
    assert (mdb_dbi_open (txn, "kseq", 0, &kseq) == 0);
    assert (mdb_drop (txn, kseq, 0) == 0);   //  emptied, as if never made
    assert (mdb_txn_commit (txn) == 0);
    bus_store_destroy (&store);

    store = bus_store_new (dir, 0, NULL);
    assert (store);
    bus_store_pruned_t p = s_prune (store, s_at (21), s_at (21), 1000);
    assert (p.events == 20 && p.keys == s_keys_upto (20));
    assert (!s_key_known (store, 20) && s_key_known (store, 22));
    bus_store_destroy (&store);
}

//  The last page LMDB has used in the file: data.mdb's size in pages
static size_t
s_last_page (bus_store_t *store)
{
    MDB_envinfo info;
    assert (mdb_env_info (bus_store_env (store), &info) == 0);
    return info.me_last_pgno;
}

//  Pages of the databases retention prunes: the log, the keys, their index
static size_t
s_pruned_dbs_pages (bus_store_t *store)
{
    const char *names[] = { "log", "keys", "kseq" };
    size_t pages = 0;
    MDB_txn *txn;
    assert (mdb_txn_begin (bus_store_env (store), NULL, MDB_RDONLY, &txn) == 0);
    for (size_t i = 0; i < 3; i++) {
        MDB_dbi dbi;
        MDB_stat stat;
        assert (mdb_dbi_open (txn, names[i], 0, &dbi) == 0);
        assert (mdb_stat (txn, dbi, &stat) == 0);
        pages +=
            stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages;
    }
    mdb_txn_abort (txn);
    return pages;
}

//  Pages freed by pruning are reused: the next events go into them, and
//  the file grows only by what is kept for ever (the orders).  The file
//  never shrinks, so this is what keeps it from growing
//  (docs/retention.md).  Against a store that keeps all 4000 events, the
//  pruned one is smaller by about what 2000 events and keys took.
static void
s_test_reuse (const char *root, bool verbose)
{
    char dir[512];
    snprintf (dir, sizeof dir, "%s/kept", root);
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    for (uint64_t first = 1; first <= 4000; first += 500)
        s_fill (store, first, first + 499);
    size_t kept = s_last_page (store);
    bus_store_destroy (&store);

    snprintf (dir, sizeof dir, "%s/reuse", root);
    store = bus_store_new (dir, 0, NULL);
    assert (store);
    for (uint64_t first = 1; first <= 2000; first += 500)
        s_fill (store, first, first + 499);
    size_t pruned_dbs = s_pruned_dbs_pages (store);
    bus_store_pruned_t p;
    do
        p = s_prune (store, s_at (2001), s_at (2001), 256);
    while (p.more);
    for (uint64_t first = 2001; first <= 4000; first += 500)
        s_fill (store, first, first + 499);
    size_t reused = s_last_page (store);
    if (verbose)
        printf ("   4000 events kept: %zu pages; 2000 (log and keys %zu "
                "pages) pruned before 2000 more: %zu\n",
                kept, pruned_dbs, reused);
    assert (reused + pruned_dbs * 8 / 10 <= kept);
    bus_store_destroy (&store);
}

void
bus_store_retention_test (const char *root, bool verbose)
{
    if (verbose)
        printf ("   retention\n");
    char dir[512];
    snprintf (dir, sizeof dir, "%s/retention", root);
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    s_fill (store, 1, S_EVENTS);
    s_test_bounded (store);
    s_test_forever (store);
    s_test_abort (store);
    //  What was pruned stays pruned across a reopen
    bus_store_destroy (&store);
    store = bus_store_new (dir, 0, NULL);
    assert (store && bus_store_first_seq (store) == 501);
    size_t count;
    assert (s_replay (store, 500, &count) == BUS_ERR_PRUNED);
    s_test_all (store);
    bus_store_destroy (&store);

    snprintf (dir, sizeof dir, "%s/legacy", root);
    s_test_legacy (dir);
    s_test_reuse (root, verbose);
}
