/*  bus_store_repl_test.c — selftest of the store's side of replication
    (bus_store_repl.h), part of bus_store_test: a writer's store and a
    replica's, both real environments.  Checks that the changes walk
    hands out every entry's bytes, key and fingerprint; that applying
    them makes a log equal byte for byte, with the same keys, orders,
    open index, last order id and menu; that a new replica takes the
    writer's identity, and a promoted one continues its history (parent
    epoch, base seq); and the refusals: a gap, a repeat, bytes that do
    not decode or name another seq, another store's identity, an older
    epoch.  */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_store_repl.h"
#include "bus_store_private.h"

#undef NDEBUG
#include <assert.h>

#define S_EVENTS 300

//  Orders 1..count placed, every other one then served (a status event,
//  which has no key), keys "r-<id>" on the placements.
static void
s_fill (bus_store_t *store, int count)
{
    bus_event_t *event = calloc (1, sizeof *event);
    assert (event && bus_store_begin (store) == 0);
    for (int i = 1; i <= count; i++) {
        memset (event, 0, sizeof *event);
        event->type = BUS_EVENT_ORDER_PLACED;
        event->ts_ms = 1767000000000 + i;
        bus_order_t *order = &event->order;
        order->id = bus_store_order_next_id (store);
        order->version = 1;
        order->status = BUS_STATUS_PLACED;
        strcpy (order->table, "T1");
        snprintf (order->key, sizeof order->key, "r-%d", i);
        strcpy (order->origin, "gw1");
        order->created_ms = order->updated_ms = event->ts_ms;
        order->line_count = 1;
        strcpy (order->lines[0].item_id, "soup");
        strcpy (order->lines[0].name, "Soup");
        order->lines[0].qty = 1;
        assert (bus_store_append (store, event, NULL) == 0);
        assert (bus_store_key_put (store, order->key, 1000 + i, event->seq)
                == 0);
        if (i % 2 == 0) {
            event->type = BUS_EVENT_ORDER_STATUS;
            order->status = BUS_STATUS_SERVED;
            order->version = 2;
            assert (bus_store_append (store, event, NULL) == 0);
        }
    }
    assert (bus_store_menu_set (store, "{\"items\":[]}", 12) == 0);
    assert (bus_store_commit (store) == 0);
    free (event);
}

//  Apply every change handed out to the replica (in its open batch)
static int
s_apply (const bus_store_change_t *change, void *arg)
{
    char why[200];
    int rc = bus_store_apply ((bus_store_t *) arg, change, why, sizeof why);
    if (rc != 0)
        fprintf (stderr, "apply: %s\n", why);
    assert (rc == 0);
    return 0;
}

//  Copy the writer's changes from from on, in batches of limit
static void
s_copy (bus_store_t *writer, bus_store_t *replica, uint64_t from,
        uint32_t limit)
{
    bus_epoch_t epoch;
    bus_store_epoch (writer, &epoch);
    uint64_t last = 0, menu_version;
    char why[200];
    do {
        assert (bus_store_begin (replica) == 0);
        assert (bus_store_follow (replica, &epoch, why, sizeof why) == 0);
        assert (bus_store_changes (writer, from, limit, s_apply, replica, &last,
                                   &menu_version)
                == 0);
        char *json;
        size_t len;
        uint64_t version;
        if (menu_version
            && bus_store_menu_get (writer, &json, &len, &version) == 0) {
            assert (bus_store_menu_adopt (replica, json, len, version) == 0);
            free (json);
        }
        assert (bus_store_commit (replica) == 0);
        from = bus_store_last_seq (replica) + 1;
    } while (from <= last);
}

typedef struct {
    zlistx_t *items;
} s_bytes_t;

static int
s_keep (const void *data, size_t size, void *arg)
{
    zlistx_add_end ((zlistx_t *) arg, zframe_new (data, size));
    return 0;
}

static int
s_keep_change (const bus_store_change_t *change, void *arg)
{
    zlistx_t *list = (zlistx_t *) arg;
    zlistx_add_end (list, zframe_new (change->event, change->size));
    zlistx_add_end (list, zframe_new (change->key, strlen (change->key)));
    zlistx_add_end (list, zframe_new (&change->fingerprint, 8));
    return 0;
}

static void
s_frame_destroy (void **item)
{
    zframe_destroy ((zframe_t **) item);
}

static zlistx_t *
s_list (void)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, s_frame_destroy);
    return list;
}

static void
s_same_lists (zlistx_t *a, zlistx_t *b)
{
    assert (zlistx_size (a) == zlistx_size (b));
    for (zframe_t *x = zlistx_first (a), *y = zlistx_first (b); x;
         x = zlistx_next (a), y = zlistx_next (b))
        assert (zframe_eq (x, y));
}

//  Everything a reader can see of the two stores is the same
static void
s_same (bus_store_t *writer, bus_store_t *replica)
{
    assert (bus_store_last_seq (writer) == bus_store_last_seq (replica));
    zlistx_t *a = s_list (), *b = s_list ();
    uint64_t last, mv_a, mv_b, seq;
    uint32_t orders;
    assert (
        bus_store_changes (writer, 1, 100000, s_keep_change, a, &last, &mv_a)
        == 0);
    assert (
        bus_store_changes (replica, 1, 100000, s_keep_change, b, &last, &mv_b)
        == 0);
    assert (zlistx_size (a) == 3 * bus_store_last_seq (writer));
    s_same_lists (a, b);
    assert (mv_a == mv_b);
    zlistx_purge (a);
    zlistx_purge (b);
    assert (bus_store_snapshot (writer, s_keep, a, &seq, &orders) == 0);
    assert (bus_store_snapshot (replica, s_keep, b, &seq, &orders) == 0);
    s_same_lists (a, b);
    zlistx_purge (a);
    zlistx_purge (b);
    uint64_t next;
    bus_store_filter_t all = { 0 };
    assert (bus_store_list (writer, &all, 0, 100000, s_keep, a, &next) == 0);
    assert (bus_store_list (replica, &all, 0, 100000, s_keep, b, &next) == 0);
    assert (zlistx_size (a) > 0);
    s_same_lists (a, b);
    zlistx_destroy (&a);
    zlistx_destroy (&b);
    uint64_t id_a, id_b;
    assert (bus_store_meta_read (writer, "last_order_id", &id_a) == 0);
    assert (bus_store_meta_read (replica, "last_order_id", &id_b) == 0);
    assert (id_a == id_b && id_a > 0);
}

//  A change whose bytes are those of seq, relabelled
static int
s_first (const bus_store_change_t *change, void *arg)
{
    zframe_t **frame = (zframe_t **) arg;
    *frame = zframe_new (change->event, change->size);
    return 1;
}

static void
s_refusals (bus_store_t *writer, bus_store_t *replica)
{
    char why[200];
    zframe_t *bytes = NULL;
    uint64_t last, mv;
    assert (bus_store_changes (writer, 5, 1, s_first, &bytes, &last, &mv) == 0);
    uint64_t next = bus_store_last_seq (replica) + 1;
    bus_store_change_t change = { next + 1, zframe_data (bytes),
                                  zframe_size (bytes), "", 0 };
    assert (bus_store_begin (replica) == 0);
    //  a gap, a repeat
    assert (bus_store_apply (replica, &change, why, sizeof why)
            == BUS_ERR_INVALID);
    assert (strstr (why, "a gap"));
    change.seq = next - 1;
    assert (bus_store_apply (replica, &change, why, sizeof why)
            == BUS_ERR_INVALID);
    assert (strstr (why, "a repeat"));
    //  the bytes of seq 5 as seq next: another seq inside
    change.seq = next;
    assert (bus_store_apply (replica, &change, why, sizeof why)
            == BUS_ERR_MALFORMED);
    //  bytes that do not decode; a key that is not one
    change.event = "\xc1garbage";
    change.size = 8;
    assert (bus_store_apply (replica, &change, why, sizeof why)
            == BUS_ERR_MALFORMED);
    change.key = "two words\t";
    assert (bus_store_apply (replica, &change, why, sizeof why)
            == BUS_ERR_INVALID);
    assert (bus_store_applied_seq (replica) == next - 1);
    //  fencing: an epoch older than the one followed
    bus_epoch_t epoch;
    bus_store_epoch (replica, &epoch);
    epoch.epoch--;
    assert (bus_store_follow (replica, &epoch, why, sizeof why)
            == BUS_ERR_FORBIDDEN);
    assert (strstr (why, "older"));
    //  another store: refused, saying both
    bus_store_epoch (replica, &epoch);
    memcpy (epoch.id, "ffffffffffffffffffffffffffffffff", 32);
    assert (bus_store_follow (replica, &epoch, why, sizeof why)
            == BUS_ERR_CONFLICT);
    assert (strstr (why, "move it aside"));
    bus_store_abort (replica);
    zframe_destroy (&bytes);
}

void
bus_store_repl_test (const char *root, bool verbose)
{
    char dir[600];
    snprintf (dir, sizeof dir, "%s/repl-writer", root);
    bus_store_t *writer = bus_store_new (dir, 0, NULL);
    assert (writer && bus_store_epoch_next (writer) == 0);
    s_fill (writer, S_EVENTS / 2);
    snprintf (dir, sizeof dir, "%s/repl-replica", root);
    bus_store_t *replica = bus_store_new (dir, 0, NULL);
    assert (replica);
    bus_epoch_t w, r;
    bus_store_epoch (writer, &w);
    bus_store_epoch (replica, &r);
    assert (!streq (w.id, r.id));

    //  An identity adopted in a transaction that is aborted (or fails)
    //  is not taken: the store is still its own, and can begin again
    char why[200];
    bus_epoch_t own = r;
    assert (bus_store_begin (replica) == 0);
    assert (bus_store_follow (replica, &w, why, sizeof why) == 0);
    bus_store_abort (replica);
    bus_store_epoch (replica, &r);
    assert (streq (r.id, own.id) && r.epoch == own.epoch);

    //  Copied in uneven batches: the same history, byte for byte
    s_copy (writer, replica, 1, 37);
    bus_store_epoch (replica, &r);
    assert (streq (w.id, r.id) && r.epoch == w.epoch);
    s_same (writer, replica);
    //  More, after a restart of the writer (a new epoch), then again
    assert (bus_store_epoch_next (writer) == 0);
    s_fill (writer, 40);
    s_copy (writer, replica, bus_store_last_seq (replica) + 1, 512);
    bus_store_epoch (writer, &w);
    bus_store_epoch (replica, &r);
    assert (r.epoch == w.epoch);
    s_same (writer, replica);
    //  A reopened replica is still the same store
    bus_store_destroy (&replica);
    replica = bus_store_open (dir, 0, 0, NULL);
    assert (replica);
    s_same (writer, replica);
    s_refusals (writer, replica);
    s_same (writer, replica);

    //  Promoted: its next epoch continues the writer's history
    uint64_t last = bus_store_last_seq (replica);
    assert (bus_store_epoch_next (replica) == 0);
    bus_store_epoch (replica, &r);
    assert (streq (r.id, w.id) && r.parent == w.epoch && r.base == last
            && r.epoch > w.epoch);
    bus_store_destroy (&replica);
    bus_store_destroy (&writer);
    if (verbose)
        printf ("   replication: same log, keys, state and menu; identity "
                "taken, history continued; gaps, repeats, foreign "
                "stores and older epochs refused: OK\n");
}
