/*  bus_store_test.c — selftest of the LMDB store (bus_store.h), kept
    apart from bus_store.c so the module reads as what it does: a real
    environment in a temporary directory, batches, aborts, the open index,
    listing, the menu, carts, reopening, read-only openers, a full map and
    concurrent readers.  What it checks inside the store (the default map
    size, a meta counter, LMDB's reader table) it reaches through
    bus_store_private.h.  */

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store.h"
#include "bus_store_private.h"

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

#define S_TEST_ORDERS 12   //  placed by s_test_batch
#define S_TEST_IDS    64   //  ids scanned when counting list matches

//  What a callback saw: ids of orders or seqs of events, in call order.
typedef struct {
    size_t count;
    uint64_t ids[S_TEST_IDS];
    size_t stop_after;   //  return non-zero after this many; 0 = never
} s_test_seen_t;

//  The list and snapshot calls the tests make most, in short form
static int
s_list (bus_store_t *store, uint32_t status, const char *table, uint64_t cursor,
        uint32_t limit, bus_store_item_fn *fn, void *arg, uint64_t *next)
{
    bus_store_filter_t filter = { status, table, 0, 0 };
    return bus_store_list (store, &filter, cursor, limit, fn, arg, next);
}

static int
s_snapshot (bus_store_t *store, bus_store_item_fn *fn, void *arg, uint64_t *seq)
{
    uint32_t orders;
    return bus_store_snapshot (store, fn, arg, seq, &orders);
}

static int
s_test_seen (s_test_seen_t *seen, uint64_t id)
{
    if (seen->count < S_TEST_IDS)
        seen->ids[seen->count] = id;
    seen->count++;
    return seen->stop_after && seen->count == seen->stop_after;
}

static int
s_test_order_fn (const void *data, size_t size, void *arg)
{
    bus_order_t order;
    assert (bus_order_decode (data, size, &order) == 0);
    return s_test_seen (arg, order.id);
}

static int
s_test_event_fn (const void *data, size_t size, void *arg)
{
    bus_event_t event;
    assert (bus_event_decode (data, size, &event) == 0);
    assert (event.order.seq == event.seq);
    return s_test_seen (arg, event.seq);
}

static void
s_test_order (bus_order_t *order, uint64_t id, bus_status_t status,
              uint32_t lines, size_t note_len)
{
    memset (order, 0, sizeof *order);
    order->id = id;
    order->version = 1;
    order->status = status;
    snprintf (order->table, sizeof order->table, "T%" PRIu64, id % 3);
    snprintf (order->key, sizeof order->key, "key-%" PRIu64, id);
    strcpy (order->origin, "gw1");
    order->created_ms = order->updated_ms = 1767000000000 + (int64_t) id;
    order->line_count = lines;
    for (uint32_t i = 0; i < lines; i++) {
        bus_line_t *line = &order->lines[i];
        snprintf (line->item_id, sizeof line->item_id, "item-%u", i);
        line->qty = 1 + i % 9;
        memset (line->note, 'n', note_len);
        strcpy (line->name, "Item");
        line->unit_cents = 100 + i;
        order->total_cents += line->unit_cents * line->qty;
    }
}

//  Append an event carrying order; *seq (if not NULL) gets its seq.
static int
s_test_append (bus_store_t *store, const bus_order_t *order, uint64_t *seq)
{
    bus_event_t event = { .ts_ms = order->updated_ms,
                          .type = BUS_EVENT_ORDER_PLACED,
                          .order = *order };
    int rc = bus_store_append (store, &event, NULL);
    assert (event.order.seq == event.seq);
    if (seq)
        *seq = event.seq;
    return rc;
}

//  One batch placing count new open orders with their keys.
static int
s_test_place (bus_store_t *store, uint32_t count, uint32_t lines,
              size_t note_len)
{
    bus_order_t order;
    int rc = bus_store_begin (store);
    for (uint32_t i = 0; rc == 0 && i < count; i++) {
        uint64_t id = bus_store_order_next_id (store);
        s_test_order (&order, id, BUS_STATUS_PLACED + id % 4, lines, note_len);
        rc = s_test_append (store, &order, NULL);
        if (rc == 0)
            rc = bus_store_key_put (store, order.key, id * 1000, id);
    }
    if (rc == 0)
        rc = bus_store_commit (store);
    else
        bus_store_abort (store);
    return rc;
}

static void
s_test_new_fails (const char *root)
{
    char path[256];
    snprintf (path, sizeof path, "%s/file", root);
    FILE *file = fopen (path, "w");
    assert (file);
    fclose (file);
    snprintf (path, sizeof path, "%s/file/db", root);
    int err = 0;
    assert (!bus_store_new (path, 0, &err));
    assert (err == BUS_ERR_STORAGE);
    assert (!bus_store_new (path, 0, NULL));
    assert (!bus_store_new ("", 0, &err));
    assert (err == BUS_ERR_CONFIG);
}

static void
s_test_empty (bus_store_t *store)
{
    s_test_seen_t seen = { 0 };
    uint64_t seq = 99, next = 99;
    bus_order_t order;
    char *json;
    size_t len;
    uint64_t version;
    assert (bus_store_map_size (store) == BUS_STORE_MAP_DEFAULT);
    assert (bus_store_last_seq (store) == 0);
    assert (s_snapshot (store, s_test_order_fn, &seen, &seq) == 0);
    assert (seq == 0 && seen.count == 0);
    assert (bus_store_replay (store, 1, 10, s_test_event_fn, &seen, &seq) == 0);
    assert (seq == 0 && seen.count == 0);
    assert (s_list (store, 0, NULL, 0, 10, s_test_order_fn, &seen, &next) == 0);
    assert (next == 0 && seen.count == 0);
    assert (bus_store_get_order (store, 1, &order) == BUS_ERR_NOT_FOUND);
    assert (bus_store_menu_get (store, &json, &len, &version)
            == BUS_ERR_NOT_FOUND);
}

//  Replay [from, from + limit) and check exactly expect events came back.
static void
s_test_replay (bus_store_t *store, uint64_t from, uint32_t limit, size_t expect)
{
    s_test_seen_t seen = { 0 };
    uint64_t last;
    assert (bus_store_replay (store, from, limit, s_test_event_fn, &seen, &last)
            == 0);
    assert (last == bus_store_last_seq (store));
    assert (seen.count == expect);
    for (size_t i = 0; i < seen.count; i++)
        assert (seen.ids[i] == (from ? from : 1) + i);
}

static void
s_test_batch (bus_store_t *store)
{
    bus_order_t order;
    uint64_t fingerprint, id, seq;
    assert (bus_store_begin (store) == 0);
    for (uint64_t i = 1; i <= S_TEST_ORDERS; i++) {
        assert (bus_store_order_next_id (store) == i);
        s_test_order (&order, i, BUS_STATUS_PLACED + i % 4, 2, 10);
        assert (s_test_append (store, &order, &seq) == 0 && seq == i);
        assert (bus_store_key_put (store, order.key, i * 1000, i) == 0);
    }
    //  The batch sees its own writes; readers see none until commit
    assert (bus_store_key_get (store, "key-1", &fingerprint, &id) == 0);
    assert (fingerprint == 1000 && id == 1);
    assert (bus_store_order_lookup (store, 3, &order) == 0 && order.seq == 3);
    assert (bus_store_last_seq (store) == 0);
    assert (bus_store_get_order (store, 3, &order) == BUS_ERR_NOT_FOUND);
    assert (bus_store_commit (store) == 0);

    assert (bus_store_last_seq (store) == S_TEST_ORDERS);
    assert (bus_store_get_order (store, 5, &order) == 0);
    assert (order.id == 5 && order.seq == 5 && order.line_count == 2);
    assert (streq (order.table, "T2") && streq (order.key, "key-5"));
    assert (streq (order.lines[1].item_id, "item-1"));
    s_test_replay (store, 1, 100, S_TEST_ORDERS);
    s_test_replay (store, 5, 3, 3);
    s_test_replay (store, 0, 2, 2);
    s_test_replay (store, 10, 100, S_TEST_ORDERS - 9);
    s_test_replay (store, S_TEST_ORDERS + 1, 10, 0);
    s_test_replay (store, 1, 0, 0);

    //  A later batch finds the committed keys, and its own new one
    assert (bus_store_begin (store) == 0);
    assert (bus_store_key_get (store, "key-7", &fingerprint, &id) == 0);
    assert (fingerprint == 7000 && id == 7);
    assert (bus_store_key_get (store, "key-none", &fingerprint, &id)
            == BUS_ERR_NOT_FOUND);
    assert (bus_store_key_put (store, "key-late", 1, 2) == 0);
    assert (bus_store_key_get (store, "key-late", &fingerprint, &id) == 0);
    assert (fingerprint == 1 && id == 2);
    assert (bus_store_key_get (store, "", &fingerprint, &id)
            == BUS_ERR_INVALID);
    assert (bus_store_order_lookup (store, 99, &order) == BUS_ERR_NOT_FOUND);
    assert (bus_store_commit (store) == 0);
    assert (bus_store_last_seq (store) == S_TEST_ORDERS);
}

static void
s_test_abort (bus_store_t *store)
{
    uint64_t last = bus_store_last_seq (store);
    uint64_t fingerprint, id, seq;
    bus_order_t order;
    assert (bus_store_begin (store) == 0);
    id = bus_store_order_next_id (store);
    assert (id == S_TEST_ORDERS + 1);
    s_test_order (&order, id, BUS_STATUS_PLACED, 1, 0);
    assert (s_test_append (store, &order, &seq) == 0 && seq == last + 1);
    assert (bus_store_key_put (store, "key-aborted", 1, id) == 0);
    bus_store_abort (store);
    bus_store_abort (store);   //  none open: nothing to do

    assert (bus_store_last_seq (store) == last);
    assert (bus_store_get_order (store, id, &order) == BUS_ERR_NOT_FOUND);
    s_test_replay (store, last + 1, 10, 0);
    assert (bus_store_begin (store) == 0);
    assert (bus_store_order_next_id (store) == id);
    assert (bus_store_key_get (store, "key-aborted", &fingerprint, &id)
            == BUS_ERR_NOT_FOUND);
    s_test_order (&order, S_TEST_ORDERS + 1, BUS_STATUS_PLACED, 1, 0);
    assert (s_test_append (store, &order, &seq) == 0 && seq == last + 1);
    bus_store_abort (store);
}

static void
s_test_open_index (bus_store_t *store)
{
    s_test_seen_t seen = { 0 };
    uint64_t seq;
    bus_order_t order;
    assert (s_snapshot (store, s_test_order_fn, &seen, &seq) == 0);
    assert (seq == S_TEST_ORDERS && seen.count == S_TEST_ORDERS);
    for (size_t i = 0; i < seen.count; i++)
        assert (seen.ids[i] == i + 1);

    //  Serving order 2 takes it off the kitchen screens
    assert (bus_store_get_order (store, 2, &order) == 0);
    order.status = BUS_STATUS_SERVED;
    order.version++;
    assert (bus_store_begin (store) == 0);
    assert (s_test_append (store, &order, NULL) == 0);
    assert (bus_store_commit (store) == 0);
    memset (&seen, 0, sizeof seen);
    assert (s_snapshot (store, s_test_order_fn, &seen, &seq) == 0);
    assert (seq == S_TEST_ORDERS + 1 && seen.count == S_TEST_ORDERS - 1);
    assert (seen.ids[0] == 1 && seen.ids[1] == 3);
    assert (bus_store_get_order (store, 2, &order) == 0);
    assert (order.status == BUS_STATUS_SERVED && order.version == 2);
    assert (order.seq == S_TEST_ORDERS + 1);

    //  fn may stop the walk early
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 3;
    assert (s_snapshot (store, s_test_order_fn, &seen, &seq) == 0);
    assert (seen.count == 3);
}

static bool
s_test_matches (bus_store_t *store, uint64_t id, uint32_t status,
                const char *table)
{
    bus_order_t order;
    if (bus_store_get_order (store, id, &order) != 0)
        return false;
    return (!status || order.status == (bus_status_t) status)
           && (!table || !*table || streq (order.table, table));
}

//  Walk every page of a list: newest first, only matches, no repeats, no
//  skips (the total equals a scan of every order), no empty pages.
static void
s_test_list_walk (bus_store_t *store, uint32_t status, const char *table,
                  uint32_t limit)
{
    uint64_t cursor = 0, prev = UINT64_MAX;
    size_t total = 0, expect = 0;
    do {
        s_test_seen_t seen = { 0 };
        uint64_t next;
        assert (s_list (store, status, table, cursor, limit, s_test_order_fn,
                        &seen, &next)
                == 0);
        assert (seen.count <= limit && (seen.count > 0 || cursor == 0));
        assert (next == 0 || next == seen.ids[limit - 1]);
        for (size_t i = 0; i < seen.count; i++) {
            assert (seen.ids[i] < prev);
            assert (s_test_matches (store, seen.ids[i], status, table));
            prev = seen.ids[i];
        }
        total += seen.count;
        cursor = next;
    } while (cursor);
    for (uint64_t id = 1; id <= S_TEST_IDS; id++)
        expect += s_test_matches (store, id, status, table);
    assert (total == expect);
}

static void
s_test_list (bus_store_t *store)
{
    const struct {
        uint32_t status;
        const char *table;
    } filters[] = {
        { 0, NULL },
        { 0, "" },
        { BUS_STATUS_PLACED, NULL },
        { 0, "T1" },
        { BUS_STATUS_ACCEPTED, "T2" },
        { BUS_STATUS_SERVED, NULL },
        { 0, "nope" },
    };
    const uint32_t limits[] = { 1, 2, 5, S_TEST_ORDERS, 50 };
    for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++)
        for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++)
            s_test_list_walk (store, filters[f].status, filters[f].table,
                              limits[l]);

    s_test_seen_t seen = { 0 };
    uint64_t next;
    assert (s_list (store, 0, NULL, 5, 50, s_test_order_fn, &seen, &next) == 0);
    assert (seen.count == 4 && seen.ids[0] == 4 && next == 0);
    memset (&seen, 0, sizeof seen);
    assert (s_list (store, 0, NULL, 1000, 50, s_test_order_fn, &seen, &next)
            == 0);
    assert (seen.count == S_TEST_ORDERS && seen.ids[0] == S_TEST_ORDERS);
    memset (&seen, 0, sizeof seen);
    assert (s_list (store, 0, NULL, 1, 50, s_test_order_fn, &seen, &next) == 0);
    assert (seen.count == 0 && next == 0);
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 2;
    assert (s_list (store, 0, "T1", 0, 5, s_test_order_fn, &seen, &next) == 0);
    assert (seen.count == 2 && seen.ids[0] == 10 && next == 7);
}

static uint64_t
s_test_menu_version (bus_store_t *store)
{
    uint64_t version;
    assert (bus_store_meta_read (store, "menu_version", &version) == 0);
    return version;
}

static void
s_test_menu (bus_store_t *store)
{
    const char *doc = "{\"categories\":[]}";
    char *json;
    size_t len;
    uint64_t version;
    assert (s_test_menu_version (store) == 0);
    assert (bus_store_menu_put (store, doc, strlen (doc)) == 0);
    assert (bus_store_menu_get (store, &json, &len, &version) == 0);
    assert (len == strlen (doc) && streq (json, doc));
    free (json);
    assert (s_test_menu_version (store) == 1);

    //  The text need not be NUL-terminated; the copy always is
    assert (bus_store_menu_put (store, "{}trailing", 2) == 0);
    assert (bus_store_menu_get (store, &json, &len, &version) == 0);
    assert (len == 2 && streq (json, "{}"));
    free (json);
    assert (s_test_menu_version (store) == 2);
    assert (bus_store_menu_is_source (store, "{}", 2));
    assert (!bus_store_menu_is_source (store, "{}x", 3));
}

//  Append a cart event for table with n lines, inside the open txn.
static void
s_test_cart_event (bus_store_t *store, const char *table, uint32_t n,
                   bus_event_t *event)
{
    memset (event, 0, sizeof *event);
    event->type = BUS_EVENT_CART;
    event->ts_ms = 1767000000000;
    strcpy (event->cart.table, table);
    event->cart.version = n + 1;
    event->cart.next_line_id = n + 1;
    event->cart.line_count = n;
    for (uint32_t i = 0; i < n; i++) {
        event->cart.lines[i].line_id = i + 1;
        strcpy (event->cart.lines[i].item_id, "fries");
        event->cart.lines[i].qty = 1;
    }
    assert (bus_store_append (store, event, NULL) == 0);
}

//  Counts the items that decode as carts (a snapshot also holds orders)
static int
s_test_cart_fn (const void *data, size_t size, void *arg)
{
    static bus_cart_t cart;
    if (bus_cart_decode (data, size, &cart) == 0)
        (*(size_t *) arg)++;
    return 0;
}

//  Carts are state, logged like orders; a snapshot carries the carts that
//  have lines after the open orders; a table read gets its orders + cart.
static void
s_test_carts (bus_store_t *store)
{
    bus_event_t *event = malloc (sizeof *event);
    bus_cart_t *cart = malloc (sizeof *cart);
    assert (bus_store_begin (store) == 0);
    assert (bus_store_cart_lookup (store, "T9", cart) == BUS_ERR_NOT_FOUND);
    s_test_cart_event (store, "T9", 2, event);
    uint64_t seq = event->seq;
    assert (bus_store_cart_lookup (store, "T9", cart) == 0);
    assert (cart->line_count == 2 && cart->version == 3);
    s_test_cart_event (store, "T8", 0, event);   //  emptied: not in snapshots
    assert (bus_store_event_lookup (store, seq, event) == 0);
    assert (event->type == BUS_EVENT_CART && streq (event->cart.table, "T9"));
    assert (bus_store_event_lookup (store, seq + 100, event)
            == BUS_ERR_NOT_FOUND);
    assert (bus_store_menu_set (store, "{}", 2) == 0);
    assert (bus_store_commit (store) == 0);

    size_t carts = 0;
    uint64_t at;
    uint32_t orders;
    assert (bus_store_snapshot (store, s_test_cart_fn, &carts, &at, &orders)
            == 0);
    assert (at == seq + 1 && orders == 4 && carts == 1);   //  T8's is empty
    carts = 0;
    assert (bus_store_table (store, "T8", s_test_cart_fn, &carts) == 0);
    assert (carts >= 1);
    carts = 0;
    assert (bus_store_table (store, "never", s_test_cart_fn, &carts) == 0);
    assert (carts == 1);   //  an empty cart of version 0
    free (event);
    free (cart);
}

//  The time range filter is on created_ms, from inclusive, to exclusive.
static void
s_test_time_filter (bus_store_t *store)
{
    bus_store_filter_t filter = { 0, NULL, 1767000000000 + 3,
                                  1767000000000 + 6 };
    s_test_seen_t seen = { 0 };
    uint64_t next;
    assert (
        bus_store_list (store, &filter, 0, 50, s_test_order_fn, &seen, &next)
        == 0);
    assert (seen.count == 3 && seen.ids[0] == 5 && seen.ids[2] == 3);
}

//  Counters continue where they were; the map never shrinks on reopen.
//  Copy the file src over dst, byte for byte
static void
s_test_copy (const char *src, const char *dst)
{
    zchunk_t *chunk = zchunk_slurp (src, 0);
    assert (chunk);
    FILE *out = fopen (dst, "w");
    assert (out
            && fwrite (zchunk_data (chunk), 1, zchunk_size (chunk), out)
                   == zchunk_size (chunk));
    fclose (out);
    zchunk_destroy (&chunk);
}

static void
s_test_reopen (const char *dir)
{
    uint64_t last = S_TEST_ORDERS + 1;
    bus_order_t order;
    char *json;
    size_t len;
    uint64_t version;
    int err = -1;
    bus_store_t *store = bus_store_new (dir, 1 << 20, &err);
    assert (store && err == -1);
    assert (bus_store_map_size (store) == BUS_STORE_MAP_DEFAULT);
    assert (bus_store_last_seq (store) == last);
    assert (bus_store_get_order (store, 2, &order) == 0);
    assert (order.status == BUS_STATUS_SERVED);
    assert (bus_store_menu_get (store, &json, &len, &version) == 0);
    assert (len == 2 && version == 2);
    free (json);
    assert (s_test_menu_version (store) == 2);
    assert (s_test_place (store, 1, 1, 0) == 0);
    assert (bus_store_last_seq (store) == last + 1);
    assert (bus_store_get_order (store, S_TEST_ORDERS + 1, &order) == 0);
    assert (order.seq == last + 1);
    bus_store_destroy (&store);

    store = bus_store_new (dir, 2 * BUS_STORE_MAP_DEFAULT, NULL);
    assert (store && bus_store_map_size (store) == 2 * BUS_STORE_MAP_DEFAULT);
    assert (bus_store_last_seq (store) == last + 1);
    //  In place, as after a failed commit: committed state, same map size
    assert (bus_store_begin (store) == 0);
    bus_store_abort (store);
    assert (bus_store_reopen (store) == 0);
    assert (bus_store_map_size (store) == 2 * BUS_STORE_MAP_DEFAULT);
    assert (bus_store_last_seq (store) == last + 1);
    assert (bus_store_get_order (store, S_TEST_ORDERS + 1, &order) == 0);
    assert (s_test_place (store, 1, 1, 0) == 0);
    assert (bus_store_last_seq (store) == last + 2);
    //  A probe writes and changes nothing; storage ok all along
    char why[64] = "x";
    assert (bus_store_storage (store, why, sizeof why) == BUS_STORAGE_OK
            && *why == '\0');
    assert (bus_store_probe (store) == 0);
    assert (bus_store_storage (store, NULL, 0) == BUS_STORAGE_OK);
    assert (bus_store_last_seq (store) == last + 2);
    //  A reopen finds an older data.mdb put in its place (a restore while
    //  the disk failed): refused, and the store stays what it was
    char file[512], older[512], newer[512];
    snprintf (file, sizeof file, "%s/data.mdb", dir);
    snprintf (older, sizeof older, "%s/older.mdb", dir);
    snprintf (newer, sizeof newer, "%s/newer.mdb", dir);
    s_test_copy (file, older);
    assert (s_test_place (store, 1, 1, 0) == 0);
    s_test_copy (file, newer);
    s_test_copy (older, file);
    assert (bus_store_reopen (store) == BUS_ERR_ROLLED_BACK);
    assert (bus_store_last_seq (store) == last + 3);
    s_test_copy (newer, file);
    assert (bus_store_reopen (store) == 0);
    assert (bus_store_last_seq (store) == last + 3);
    unlink (older);
    unlink (newer);
    bus_store_destroy (&store);
    store = bus_store_new (dir, 0, NULL);
    assert (store && bus_store_last_seq (store) == last + 3);
    bus_store_destroy (&store);
}

//  The mode bits of path
static mode_t
s_test_mode (const char *dir, const char *name)
{
    char path[256];
    int n = snprintf (path, sizeof path, "%s%s%s", dir, *name ? "/" : "", name);
    assert (n > 0 && (size_t) n < sizeof path);
    struct stat st;
    assert (stat (path, &st) == 0);
    return st.st_mode & 07777;
}

//  A new environment is its owner's alone; an older, looser one is
//  tightened when the writer opens it.
static void
s_test_modes (const char *root)
{
    char dir[256];
    snprintf (dir, sizeof dir, "%s/private/data", root);
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    bus_store_destroy (&store);
    char parent[256];
    snprintf (parent, sizeof parent, "%s/private", root);
    assert (s_test_mode (parent, "") == 0700);
    assert (s_test_mode (dir, "") == 0700);
    assert (s_test_mode (dir, "data.mdb") == 0600);
    assert (s_test_mode (dir, "lock.mdb") == 0600);

    char path[300];
    assert (chmod (dir, 0755) == 0);
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    assert (chmod (path, 0644) == 0);
    snprintf (path, sizeof path, "%s/lock.mdb", dir);
    assert (chmod (path, 0664) == 0);
    store = bus_store_new (dir, 0, NULL);
    assert (store);
    assert (s_test_mode (dir, "") == 0700);
    assert (s_test_mode (dir, "data.mdb") == 0600);
    assert (s_test_mode (dir, "lock.mdb") == 0600);
    bus_store_destroy (&store);

    //  A reader (export) changes nothing
    assert (chmod (dir, 0750) == 0);
    store = bus_store_open_readonly (dir, NULL);
    assert (store);
    bus_store_destroy (&store);
    assert (s_test_mode (dir, "") == 0750);
    assert (chmod (dir, 0700) == 0);
}

//  A plain LMDB environment, without orderbus's databases, in dir.
static void
s_test_foreign_env (const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    assert (mkdir (dir, 0755) == 0);
    assert (mdb_env_create (&env) == 0);
    assert (mdb_env_open (env, dir, 0, 0644) == 0);
    assert (mdb_txn_begin (env, NULL, 0, &txn) == 0);
    assert (mdb_txn_commit (txn) == 0);
    mdb_env_close (env);
}

static int
s_test_die (const void *data, size_t size, void *arg)
{
    _exit (0);
}

static int
s_test_reader_line (const char *line, void *arg)
{
    (*(int *) arg)++;
    return 0;
}

//  Readers LMDB lists in store's lock file (it adds a header line).
static int
s_test_readers (bus_store_t *store)
{
    int lines = 0;
    assert (mdb_reader_list (bus_store_env (store), s_test_reader_line, &lines)
            >= 0);
    return lines - 1;
}

//  Run fn (dir) in a child process, which must exit 0.
static void
s_test_child (void (*fn) (const char *), const char *dir)
{
    fflush (NULL);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        fn (dir);
        _exit (0);
    }
    int status;
    assert (waitpid (pid, &status, 0) == pid);
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

static void
s_test_die_reading (const char *dir)
{
    bus_store_t *store = bus_store_open_readonly (dir, NULL);
    bus_store_filter_t filter = { 0 };
    uint64_t next;
    bus_store_list (store, &filter, 0, 10, s_test_die, NULL, &next);
    _exit (1);
}

static void
s_test_open_close (const char *dir)
{
    bus_store_t *store = bus_store_open_readonly (dir, NULL);
    assert (store);
    bus_store_destroy (&store);
}

//  While the writer has the environment open, a reader that dies inside
//  its read transaction leaves its slot taken (LMDB resets the table only
//  when nobody has it open); the next read-only open clears it.
static void
s_test_dead_reader (const char *dir)
{
    bus_store_t *writer = bus_store_new (dir, 0, NULL);
    assert (writer && s_test_readers (writer) == 0);
    s_test_child (s_test_die_reading, dir);
    assert (s_test_readers (writer) == 1);
    s_test_child (s_test_open_close, dir);
    assert (s_test_readers (writer) == 0);
    bus_store_destroy (&writer);
}

//  dir (left by s_test_reopen) read as another process would: every
//  read-side call works, nothing is created where there is no store.
static void
s_test_readonly (const char *root, const char *dir)
{
    int err = 0;
    bus_store_t *store = bus_store_open_readonly (dir, &err);
    assert (store);
    uint64_t last = bus_store_last_seq (store);
    assert (last == S_TEST_ORDERS + 4);
    bus_order_t order;
    assert (bus_store_get_order (store, 2, &order) == 0);
    assert (order.status == BUS_STATUS_SERVED);
    s_test_replay (store, 1, 1000, last);
    s_test_list_walk (store, 0, NULL, 5);
    s_test_time_filter (store);
    s_test_seen_t seen = { 0 };
    uint64_t seq;
    assert (s_snapshot (store, s_test_order_fn, &seen, &seq) == 0);
    assert (seq == last && seen.count > 0);
    char *json;
    size_t len;
    uint64_t version;
    assert (bus_store_menu_get (store, &json, &len, &version) == 0);
    assert (len == 2 && version == 2);
    free (json);
    assert (bus_store_menu_is_source (store, "{}", 2));
    bus_store_destroy (&store);
    s_test_dead_reader (dir);

    char path[256];
    snprintf (path, sizeof path, "%s/none", root);
    assert (!bus_store_open_readonly (path, &err) && err == BUS_ERR_NOT_FOUND);
    assert (!zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/empty", root);
    assert (mkdir (path, 0755) == 0);
    assert (!bus_store_open_readonly (path, &err) && err == BUS_ERR_NOT_FOUND);
    snprintf (path, sizeof path, "%s/empty/lock.mdb", root);
    assert (!zsys_file_exists (path));
    snprintf (path, sizeof path, "%s/foreign", root);
    s_test_foreign_env (path);
    assert (!bus_store_open_readonly (path, &err) && err == BUS_ERR_NOT_FOUND);
    snprintf (path, sizeof path, "%s/file", root);   //  a file, not a dir
    assert (!bus_store_open_readonly (path, NULL));
}

//  A full map fails the batch, which is aborted, then redone after a grow.
static void
s_test_map_full (const char *dir, bool verbose)
{
    const size_t small = 256 * 1024;
    const uint64_t orders = 40;
    bus_store_t *store = bus_store_new (dir, small, NULL);
    assert (store && bus_store_map_size (store) == small);
    size_t grows = 0;
    while (bus_store_last_seq (store) < orders) {
        uint64_t before = bus_store_last_seq (store);
        int rc = s_test_place (store, 4, BUS_LINES_MAX, BUS_NOTE_MAX - 1);
        if (rc == BUS_ERR_MAP_FULL) {
            size_t size = bus_store_map_size (store);
            assert (bus_store_last_seq (store) == before);
            assert (bus_store_grow (store) == 0);
            assert (bus_store_map_size (store) == 2 * size);
            grows++;
        } else
            assert (rc == 0 && bus_store_last_seq (store) == before + 4);
    }
    assert (grows > 0);
    if (verbose)
        printf ("   %zu grows to place %" PRIu64 " large orders\n", grows,
                orders);
    //  Failed batches left no gaps: ids and seqs still match
    bus_order_t order;
    for (uint64_t id = 1; id <= orders; id++) {
        assert (bus_store_get_order (store, id, &order) == 0);
        assert (order.seq == id && order.line_count == BUS_LINES_MAX);
        assert (strlen (order.lines[BUS_LINES_MAX - 1].note)
                == BUS_NOTE_MAX - 1);
    }
    s_test_replay (store, 1, 1000, orders);
    size_t size = bus_store_map_size (store);
    bus_store_destroy (&store);
    store = bus_store_new (dir, small, NULL);
    assert (store && bus_store_map_size (store) == size);
    bus_store_destroy (&store);
}

typedef struct {
    bus_store_t *store;
    atomic_bool stop;
    atomic_size_t rounds;
    size_t errors;
} s_test_reader_t;

//  One consistent read: the snapshot holds every order (all are open and
//  each seq placed one), and the log's tail is gap-free up to last_seq.
static bool
s_test_read_once (bus_store_t *store, uint64_t *prev)
{
    s_test_seen_t orders = { 0 }, events = { 0 };
    uint64_t seq, last, floor = bus_store_last_seq (store);
    if (s_snapshot (store, s_test_order_fn, &orders, &seq) != 0 || seq < floor
        || seq < *prev || orders.count != seq)
        return false;
    uint64_t from = seq > 3 ? seq - 3 : 1;
    if (bus_store_replay (store, from, 10, s_test_event_fn, &events, &last) != 0
        || last < seq)
        return false;
    *prev = last;
    uint64_t tail = last >= from ? last - from + 1 : 0;
    return events.count == (tail < 10 ? tail : 10)
           && (events.count == 0 || events.ids[0] == from);
}

static void *
s_test_reader (void *arg)
{
    s_test_reader_t *reader = arg;
    uint64_t prev = 0;
    while (!atomic_load (&reader->stop)) {
        reader->errors += !s_test_read_once (reader->store, &prev);
        atomic_fetch_add (&reader->rounds, 1);
    }
    return NULL;
}

static void
s_test_concurrent (const char *dir, bool verbose)
{
    s_test_reader_t reader = { .store = bus_store_new (dir, 256 * 1024, NULL) };
    assert (reader.store);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_reader, &reader) == 0);
    size_t grows = 0;
    for (int batch = 0; batch < 30; batch++) {
        int rc;
        while ((rc = s_test_place (reader.store, 2, BUS_LINES_MAX, 100))
               == BUS_ERR_MAP_FULL) {
            assert (bus_store_grow (reader.store) == 0);
            grows++;
        }
        assert (rc == 0);
        if (batch % 10 == 5) {
            assert (bus_store_grow (reader.store) == 0);
            grows++;
        }
    }
    while (atomic_load (&reader.rounds) == 0)
        zclock_sleep (1);
    atomic_store (&reader.stop, true);
    assert (pthread_join (thread, NULL) == 0);
    assert (reader.errors == 0);
    assert (bus_store_last_seq (reader.store) == 60);
    if (verbose)
        printf ("   %zu reader rounds across 30 batches and %zu grows\n",
                atomic_load (&reader.rounds), grows);
    bus_store_destroy (&reader.store);
}

//  A store's identity is made with it and kept across reopens (a read-only
//  open sees it too); every epoch is new and greater than the last, and
//  committed; another directory is another identity.
static void
s_test_epochs (const char *root)
{
    char dir[256], other[256];
    snprintf (dir, sizeof dir, "%s/epochs", root);
    snprintf (other, sizeof other, "%s/epochs-other", root);
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    bus_epoch_t first, next, again;
    bus_store_epoch (store, &first);
    assert (bus_valid_writer_id (first.id) && first.epoch == 0);
    assert (bus_store_epoch_next (store) == 0);
    bus_store_epoch (store, &next);
    assert (streq (next.id, first.id) && next.epoch > 0);
    //  ordered after the time, and never the same twice
    assert (next.epoch >> 32 >= (uint64_t) time (NULL) - 1);
    assert (next.parent == 0 && next.base == 0);
    uint64_t last = next.epoch;
    for (int i = 0; i < 5; i++) {
        //  each run continues the one before, from the seq it left
        assert (s_test_place (store, 2, 1, 0) == 0);
        assert (bus_store_epoch_next (store) == 0);
        bus_store_epoch (store, &next);
        assert (next.epoch > last && next.parent == last);
        assert (next.base == bus_store_last_seq (store) && next.base > 0);
        last = next.epoch;
    }
    bus_epoch_t kept = next;
    bus_store_destroy (&store);
    store = bus_store_open_readonly (dir, NULL);
    assert (store);
    bus_store_epoch (store, &again);
    assert (streq (again.id, first.id) && again.epoch == last);
    assert (again.parent == kept.parent && again.base == kept.base);
    bus_store_destroy (&store);
    store = bus_store_new (dir, 0, NULL);
    assert (store);
    bus_store_epoch (store, &again);
    assert (bus_epoch_same (&again, &kept) && again.parent == kept.parent
            && again.base == kept.base);
    //  an epoch stored ahead of the clock still goes up by one
    assert (bus_store_meta_write (store, "epoch", UINT64_MAX - 1) == 0);
    assert (bus_store_reopen (store) == 0);
    assert (bus_store_epoch_next (store) == 0);
    bus_store_epoch (store, &again);
    assert (again.epoch == UINT64_MAX);
    bus_store_destroy (&store);
    store = bus_store_new (other, 0, NULL);
    assert (store);
    bus_store_epoch (store, &again);
    assert (bus_valid_writer_id (again.id) && !streq (again.id, first.id));
    bus_store_destroy (&store);
}

//  data.mdb's bytes into *bytes (caller frees); its size.
static size_t
s_test_file_read (const char *dir, char **bytes)
{
    char path[400];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    FILE *file = fopen (path, "r");
    assert (file && fseek (file, 0, SEEK_END) == 0);
    size_t size = (size_t) ftell (file);
    *bytes = malloc (size);
    rewind (file);
    assert (*bytes && fread (*bytes, 1, size, file) == size);
    fclose (file);
    return size;
}

static void
s_test_file_write (const char *dir, const char *bytes, size_t size)
{
    char path[400];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    FILE *file = fopen (path, "w");
    assert (file && fwrite (bytes, 1, size, file) == size);
    fclose (file);
}

static int
s_test_count_fn (const void *data, size_t size, void *arg)
{
    (void) data, (void) size;
    (*(int *) arg)++;
    return 0;
}

//  A letter of order 2's table changed (it still decodes): every read of
//  it fails, is counted, and no list leaves it out; verify names it.
static void
s_test_checksum (const char *dir)
{
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    MDB_env *env = bus_store_env (store);
    MDB_txn *txn;
    MDB_dbi orders;
    unsigned char id[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
    MDB_val key = { 8, id }, val;
    assert (mdb_txn_begin (env, NULL, 0, &txn) == 0);
    assert (mdb_dbi_open (txn, "orders", 0, &orders) == 0);
    assert (mdb_get (txn, orders, &key, &val) == 0);
    unsigned char *copy = malloc (val.mv_size);
    memcpy (copy, val.mv_data, val.mv_size);
    assert (copy[0] == 0xc1);   //  sealed
    //  Its table, "T2" (a MessagePack fixstr: 0xa2 'T' '2'), made "T0":
    //  the order still decodes, only its checksum tells
    size_t at = 1;
    while (at + 3 <= val.mv_size && memcmp (copy + at, "\xa2T2", 3) != 0)
        at++;
    assert (at + 3 <= val.mv_size);
    copy[at + 2] = '0';
    MDB_val changed = { val.mv_size, copy };
    assert (mdb_put (txn, orders, &key, &changed, 0) == 0);
    assert (mdb_txn_commit (txn) == 0);
    free (copy);

    bus_order_t order;
    assert (bus_store_get_order (store, 1, &order) == 0);
    assert (bus_store_get_order (store, 2, &order) == BUS_ERR_DAMAGED);
    assert (bus_store_damaged (store) == 1);
    bus_store_filter_t any = { 0 };
    int count = 0;
    uint64_t next;
    assert (bus_store_list (store, &any, 0, 100, s_test_count_fn, &count, &next)
            == BUS_ERR_DAMAGED);
    assert (bus_store_damaged (store) == 2);
    bus_store_destroy (&store);
    bus_store_report_t report;
    assert (bus_store_verify (dir, &report) == BUS_ERR_DAMAGED);
    assert (strstr (report.first_bad, "order 2 fails its checksum"));
}

//  Order 1 stored without its seal, in store's environment directly; with
//  as_old, the store is made one from before checksums (no sealed_* in
//  its meta).
static void
s_test_unseal_raw (bus_store_t *store, bool as_old)
{
    MDB_txn *txn;
    MDB_dbi orders, meta;
    unsigned char id[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    MDB_val key = { 8, id }, val;
    assert (mdb_txn_begin (bus_store_env (store), NULL, 0, &txn) == 0);
    assert (mdb_dbi_open (txn, "orders", 0, &orders) == 0);
    assert (mdb_dbi_open (txn, "meta", 0, &meta) == 0);
    assert (mdb_get (txn, orders, &key, &val) == 0);
    unsigned char *p = val.mv_data;
    if (p[0] == 0xc1) {
        size_t size = val.mv_size - 9;
        unsigned char *bytes = malloc (size);
        memcpy (bytes, p + 9, size);
        MDB_val bare = { size, bytes };
        assert (mdb_put (txn, orders, &key, &bare, 0) == 0);
        free (bytes);
    }
    const char *names[] = { "sealed_seq", "sealed_order" };
    for (size_t i = 0; as_old && i < 2; i++) {
        MDB_val name = { strlen (names[i]), (void *) names[i] };
        assert (mdb_del (txn, meta, &name, NULL) == 0);
    }
    assert (mdb_txn_commit (txn) == 0);
}

//  A record without a seal: damage in a store made with checksums (its
//  first byte lost looks just so), read unchecked in one from before.
static void
s_test_unsealed (const char *root)
{
    char dir[300];
    snprintf (dir, sizeof dir, "%s/unsealed", root);
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store && s_test_place (store, 2, 1, 0) == 0);
    s_test_unseal_raw (store, false);
    bus_order_t order;
    assert (bus_store_get_order (store, 1, &order) == BUS_ERR_DAMAGED);
    assert (bus_store_get_order (store, 2, &order) == 0);
    s_test_unseal_raw (store, true);
    bus_store_destroy (&store);
    int rc;
    store = bus_store_open_readonly (dir, &rc);
    assert (store && bus_store_get_order (store, 1, &order) == 0);
    assert (order.id == 1);
    bus_store_destroy (&store);
    bus_store_report_t report;
    assert (bus_store_verify (dir, &report) == 0);
    assert (report.unchecked == 1 && report.orders == 2);
    //  The first writable open seals from now on; the old order stays
    //  readable
    store = bus_store_new (dir, 0, NULL);
    assert (store && bus_store_get_order (store, 1, &order) == 0);
    assert (s_test_place (store, 1, 1, 0) == 0);
    bus_store_destroy (&store);
    assert (bus_store_verify (dir, &report) == 0 && report.unchecked == 1);
}

//  Integrity on open (bus_store_open) and bus_store_verify: an older
//  copy, a file cut short, one emptied; a record's checksum.
static void
s_test_integrity (const char *root, bool verbose)
{
    char dir[300];
    snprintf (dir, sizeof dir, "%s/integrity", root);
    int rc;
    bus_store_report_t report;
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store && s_test_place (store, 3, 2, 100) == 0);
    bus_store_destroy (&store);
    assert (bus_store_verify (dir, &report) == 0);
    assert (report.records == 3 && report.orders == 3 && report.keys == 3);
    assert (report.last_seq == 3 && report.bad == 0 && !*report.first_bad);

    //  An older copy: refused, unless accepted
    char *older;
    size_t older_size = s_test_file_read (dir, &older);
    store = bus_store_new (dir, 0, NULL);
    assert (store && s_test_place (store, 2, 2, 100) == 0);
    bus_store_destroy (&store);
    s_test_file_write (dir, older, older_size);
    free (older);
    assert (!bus_store_new (dir, 0, &rc) && rc == BUS_ERR_ROLLED_BACK);
    assert (bus_store_verify (dir, &report) == BUS_ERR_ROLLED_BACK);
    assert (report.bad == 1 && strstr (report.first_bad, "last committed"));
    store = bus_store_open (dir, 0, BUS_STORE_ACCEPT_RESTORE, &rc);
    assert (store && bus_store_last_seq (store) == 3);
    bus_store_destroy (&store);
    assert (bus_store_verify (dir, &report) == 0);   //  accepted for good
    store = bus_store_new (dir, 0, NULL);
    assert (store);
    bus_store_destroy (&store);

    //  A record that fails its checksum on read, or has none
    s_test_checksum (dir);
    s_test_unsealed (root);

    //  Cut short: refused before a page past the end is read (SIGBUS)
    char path[400];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    assert (stat (path, &st) == 0 && truncate (path, st.st_size / 2) == 0);
    assert (!bus_store_new (dir, 0, &rc) && rc == BUS_ERR_DAMAGED);
    assert (!bus_store_open_readonly (dir, &rc) && rc == BUS_ERR_DAMAGED);
    assert (bus_store_verify (dir, &report) == BUS_ERR_DAMAGED);
    assert (report.bad == 1);

    //  Emptied: a new store where one was
    assert (truncate (path, 0) == 0);
    assert (!bus_store_new (dir, 0, &rc) && rc == BUS_ERR_ROLLED_BACK);
    assert (bus_store_verify (dir, &report) != 0);
    if (verbose)
        printf ("   an older copy, a file cut short or emptied: refused, "
                "and found by verify; a record failing its checksum: "
                "an error on every read: OK\n");
}

void
bus_store_test (bool verbose)
{
    if (verbose)
        printf (" * bus_store:\n");
    char root[] = "/tmp/bus_store_test.XXXXXX";
    assert (mkdtemp (root));
    char dir[sizeof root + 16];
    s_test_new_fails (root);

    snprintf (dir, sizeof dir, "%s/a/b", root);   //  parents are missing
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    assert (store);
    s_test_empty (store);
    s_test_batch (store);
    s_test_abort (store);
    s_test_open_index (store);
    s_test_list (store);
    s_test_time_filter (store);
    s_test_menu (store);
    bus_store_destroy (&store);
    bus_store_destroy (&store);
    s_test_reopen (dir);
    s_test_readonly (root, dir);

    s_test_modes (root);
    s_test_integrity (root, verbose);
    s_test_epochs (root);
    if (verbose)
        printf ("   identity kept across reopens, epochs new and growing: "
                "OK\n");

    snprintf (dir, sizeof dir, "%s/carts", root);
    store = bus_store_new (dir, 0, NULL);
    assert (store && s_test_place (store, 4, 1, 0) == 0);
    s_test_carts (store);
    bus_store_destroy (&store);

    bus_store_retention_test (root, verbose);
    bus_store_repl_test (root, verbose);

    snprintf (dir, sizeof dir, "%s/full", root);
    s_test_map_full (dir, verbose);
    snprintf (dir, sizeof dir, "%s/concurrent", root);
    s_test_concurrent (dir, verbose);

    zdir_t *tree = zdir_new (root, NULL);
    assert (tree);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    assert (!zsys_file_exists (root));
}
