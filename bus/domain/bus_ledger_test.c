/*  bus_ledger_test.c — selftest of the ledger, the exactly-once core.

    Drives bus_ledger_apply the way the writer does (bus_store_begin,
    apply, bus_store_commit) against a real LMDB environment in a
    temporary directory, with the clock passed in as `now`, so each rule
    can be checked without a process, a socket or a sleep: a command
    applied twice has one effect, a key reused for another request is a
    conflict, refusals are remembered for a while and then forgotten, and
    a batch committed but never acked is answered as a duplicate after a
    restart.  */

#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_ledger.h"
#include "orderbus/bus_store.h"
#include "bus_ledger_private.h"

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

#define S_NOW    1700000000000   //  the tests' clock starts here (ms)
#define S_TAX_BP 1000            //  10%, so totals are easy to check
#define S_EMITS  8               //  events recorded per apply

//  Two dishes; the cola's station shows that the menu priced the line
static const char *s_menu =
    "{\"categories\": [{\"id\": \"main\", \"name\": \"Mains\", \"items\": ["
    "{\"id\": \"soup\", \"name\": \"Soup\", \"price_cents\": 950},"
    "{\"id\": \"cola\", \"name\": \"Cola\", \"price_cents\": 300,"
    " \"station\": \"bar\"}]}]}";

//  What the emit callback saw during one apply (or one batch)
typedef struct {
    size_t count;
    bus_event_type_t types[S_EMITS];
    uint64_t seqs[S_EMITS];
} s_emitted_t;

//  One ledger over one store, with a command and an ack to work with
//  (both are tens of KB: on the heap, not the stack)
typedef struct {
    char dir[256];
    bus_store_t *store;
    bus_ledger_t *ledger;
    bus_cmd_t *cmd;
    bus_ack_t *ack;
    bus_order_t *order;
    bus_event_t *logged;
    s_emitted_t emitted;
} s_test_t;

//  The emit callback: checks that the body handed over is the event as
//  logged, records it and frees it (the callee owns it)
static void
s_test_emit (const bus_event_t *event, zframe_t **body, void *arg)
{
    s_test_t *t = (s_test_t *) arg;
    assert (body && *body);
    assert (
        bus_event_decode (zframe_data (*body), zframe_size (*body), t->logged)
        == 0);
    assert (t->logged->seq == event->seq);
    assert (t->logged->type == event->type);
    zframe_destroy (body);
    s_emitted_t *emitted = &t->emitted;
    assert (emitted->count < S_EMITS);
    if (emitted->count > 0)   //  seqs are gap-free, in order
        assert (event->seq == emitted->seqs[emitted->count - 1] + 1);
    emitted->types[emitted->count] = event->type;
    emitted->seqs[emitted->count] = event->seq;
    emitted->count++;
}

//  Open the store in root/name, with the test menu stored in it when
//  put_menu, and a ledger over it.
static void
s_test_open (s_test_t *t, const char *root, const char *name, bool put_menu)
{
    snprintf (t->dir, sizeof t->dir, "%s/%s", root, name);
    t->store = bus_store_new (t->dir, 0, NULL);
    assert (t->store);
    if (put_menu)
        assert (bus_store_menu_put (t->store, s_menu, strlen (s_menu)) == 0);
    t->ledger = bus_ledger_new (t->store, S_TAX_BP);
    assert (t->ledger);
}

//  Close ledger and store as a dying process would leave them: any open
//  transaction is aborted, nothing else is said to anyone.
static void
s_test_close (s_test_t *t)
{
    bus_ledger_destroy (&t->ledger);
    bus_store_destroy (&t->store);
    assert (!t->ledger && !t->store);
}

//  A fresh command of type under key for table, from gateway "gw-1"
static void
s_test_cmd (s_test_t *t, bus_cmd_type_t type, const char *key,
            const char *table)
{
    memset (t->cmd, 0, sizeof *t->cmd);
    t->cmd->type = type;
    assert (bus_strlcpy (t->cmd->key, key, sizeof t->cmd->key) == 0);
    assert (bus_strlcpy (t->cmd->origin, "gw-1", sizeof t->cmd->origin) == 0);
    assert (bus_strlcpy (t->cmd->table, table, sizeof t->cmd->table) == 0);
}

//  Add a line of qty item to the command
static void
s_test_line (s_test_t *t, const char *item, uint32_t qty)
{
    assert (t->cmd->line_count < BUS_LINES_MAX);
    bus_line_t *line = &t->cmd->lines[t->cmd->line_count++];
    assert (bus_strlcpy (line->item_id, item, sizeof line->item_id) == 0);
    line->qty = qty;
}

//  A PLACE command for qty item at table
static void
s_test_place_cmd (s_test_t *t, const char *key, const char *table,
                  const char *item, uint32_t qty)
{
    s_test_cmd (t, BUS_CMD_PLACE, key, table);
    s_test_line (t, item, qty);
}

//  An AVAILABILITY command for item
static void
s_test_avail_cmd (s_test_t *t, const char *key, const char *item,
                  bool available)
{
    s_test_cmd (t, BUS_CMD_AVAILABILITY, key, "");
    assert (bus_strlcpy (t->cmd->item_id, item, sizeof t->cmd->item_id) == 0);
    t->cmd->available = available;
}

//  Apply the command inside the batch already open; returns the ack's
//  status (the apply itself must not fail: no storage error here).
static int
s_test_apply_in (s_test_t *t, int64_t now)
{
    assert (bus_ledger_apply (t->ledger, t->cmd, now, t->ack, s_test_emit, t)
            == 0);
    assert (streq (t->ack->key, t->cmd->key));
    assert (t->ack->fingerprint == bus_cmd_fingerprint (t->cmd));
    if (t->ack->status != 0)   //  a refusal says why
        assert (t->ack->error[0] && !t->ack->duplicate);
    return t->ack->status;
}

//  Apply the command in a batch of its own, committed; returns the ack's
//  status.  t->emitted holds what it emitted.
static int
s_test_apply (s_test_t *t, int64_t now)
{
    t->emitted.count = 0;
    assert (bus_store_begin (t->store) == 0);
    int status = s_test_apply_in (t, now);
    assert (bus_store_commit (t->store) == 0);
    return status;
}

static void
s_test_stats (s_test_t *t, uint64_t applied, uint64_t duplicates,
              uint64_t rejected)
{
    bus_ledger_stats_t stats = bus_ledger_stats (t->ledger);
    assert (stats.applied == applied);
    assert (stats.duplicates == duplicates);
    assert (stats.rejected == rejected);
}

//  --------------------------------------------------------------------------
//  Exactly once

//  The same command twice (a gateway's retry) has one effect; the second
//  ack is the first's answer, marked duplicate.
static void
s_test_dedupe (s_test_t *t, const char *root)
{
    s_test_open (t, root, "dedupe", true);
    s_test_place_cmd (t, "k-dedupe", "T1", "soup", 2);
    assert (s_test_apply (t, S_NOW) == 0);
    assert (!t->ack->duplicate);
    assert (t->emitted.count == 1);
    assert (t->emitted.types[0] == BUS_EVENT_ORDER_PLACED);
    bus_order_t *order = &t->ack->event.order;
    assert (t->ack->event.type == BUS_EVENT_ORDER_PLACED);
    assert (t->ack->event.seq == 1 && order->seq == 1);
    assert (order->id == 1 && order->version == 1);
    assert (order->status == BUS_STATUS_PLACED);
    assert (streq (order->table, "T1") && streq (order->key, "k-dedupe"));
    assert (order->line_count == 1 && order->lines[0].qty == 2);
    assert (streq (order->lines[0].name, "Soup"));
    assert (order->subtotal_cents == 1900 && order->tax_cents == 190);
    assert (order->total_cents == 2090);
    assert (order->created_ms == S_NOW);

    //  Its copy, later and through another gateway (origin is not part
    //  of the request): the same answer, nothing new
    assert (bus_strlcpy (t->cmd->origin, "gw-2", sizeof t->cmd->origin) == 0);
    assert (s_test_apply (t, S_NOW + 5000) == 0);
    assert (t->ack->duplicate);
    assert (t->emitted.count == 0);
    assert (t->ack->event.seq == 1 && order->id == 1);
    assert (order->created_ms == S_NOW && order->total_cents == 2090);
    assert (bus_store_last_seq (t->store) == 1);
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    assert (t->order->version == 1 && t->order->lines[0].qty == 2);
    assert (bus_store_get_order (t->store, 2, t->order) == BUS_ERR_NOT_FOUND);

    //  Twice in one batch: the copy finds the key the first wrote in the
    //  batch's own, not yet committed, transaction
    s_test_place_cmd (t, "k-batch", "T1", "cola", 1);
    t->emitted.count = 0;
    assert (bus_store_begin (t->store) == 0);
    assert (s_test_apply_in (t, S_NOW + 6000) == 0);
    assert (!t->ack->duplicate && order->id == 2);
    assert (streq (order->lines[0].station, "bar"));
    assert (s_test_apply_in (t, S_NOW + 6000) == 0);
    assert (t->ack->duplicate && order->id == 2 && t->ack->event.seq == 2);
    assert (bus_store_commit (t->store) == 0);
    assert (t->emitted.count == 1);
    assert (bus_store_last_seq (t->store) == 2);
    assert (bus_store_get_order (t->store, 3, t->order) == BUS_ERR_NOT_FOUND);

    s_test_stats (t, 2, 2, 0);
    s_test_close (t);
}

//  A key reused for a different request is refused and changes nothing;
//  the key still answers its own request.
static void
s_test_conflict (s_test_t *t, const char *root)
{
    s_test_open (t, root, "conflict", true);
    s_test_place_cmd (t, "k-conflict", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW) == 0);
    assert (t->ack->event.order.id == 1);

    t->cmd->lines[0].qty = 3;   //  same key, another body
    assert (s_test_apply (t, S_NOW + 1) == BUS_ERR_CONFLICT);
    assert (strstr (t->ack->error, "Idempotency-Key"));
    assert (strstr (t->ack->error, "k-conflict"));
    assert (t->emitted.count == 0);
    assert (bus_store_last_seq (t->store) == 1);
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    assert (t->order->version == 1 && t->order->lines[0].qty == 1);

    //  Other fields count too: the table
    t->cmd->lines[0].qty = 1;
    assert (bus_strlcpy (t->cmd->table, "T2", sizeof t->cmd->table) == 0);
    assert (s_test_apply (t, S_NOW + 2) == BUS_ERR_CONFLICT);

    //  The original request is still answered from the key
    assert (bus_strlcpy (t->cmd->table, "T1", sizeof t->cmd->table) == 0);
    assert (s_test_apply (t, S_NOW + 3) == 0);
    assert (t->ack->duplicate && t->ack->event.order.id == 1);

    //  A conflict took no order id: the next order gets 2
    s_test_place_cmd (t, "k-next", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW + 4) == 0);
    assert (t->ack->event.order.id == 2 && t->ack->event.seq == 2);

    s_test_stats (t, 2, 1, 2);
    s_test_close (t);
}

//  A refused request is remembered: its copy gets the same refusal even
//  once the state would let it through, until the window has passed.  A
//  corrected request under the same key is another request.
static void
s_test_refused (s_test_t *t, const char *root)
{
    s_test_open (t, root, "refused", true);
    s_test_avail_cmd (t, "k-86", "soup", false);
    assert (s_test_apply (t, S_NOW) == 0);
    assert (t->emitted.count == 1);

    char error[BUS_ERROR_MAX];
    s_test_place_cmd (t, "k-a", "T2", "soup", 1);
    assert (s_test_apply (t, S_NOW) == BUS_ERR_UNAVAILABLE_ITEM);
    assert (strstr (t->ack->error, "items[0].item_id: 'soup'"));
    memcpy (error, t->ack->error, sizeof error);
    s_test_place_cmd (t, "k-b", "T2", "soup", 2);
    assert (s_test_apply (t, S_NOW) == BUS_ERR_UNAVAILABLE_ITEM);
    assert (t->emitted.count == 0);

    s_test_avail_cmd (t, "k-86-back", "soup", true);
    assert (s_test_apply (t, S_NOW + 1) == 0);
    assert (bus_store_last_seq (t->store) == 2);

    //  A copy of k-a at the last moment of its window: the same no,
    //  although the soup is back
    s_test_place_cmd (t, "k-a", "T2", "soup", 1);
    assert (s_test_apply (t, S_NOW + BUS_LEDGER_REFUSED_MS)
            == BUS_ERR_UNAVAILABLE_ITEM);
    assert (streq (t->ack->error, error));
    assert (t->emitted.count == 0);
    assert (bus_store_last_seq (t->store) == 2);

    //  One ms later the refusal is forgotten (the window counts from the
    //  refusal, not from its copies): applied
    assert (s_test_apply (t, S_NOW + BUS_LEDGER_REFUSED_MS + 1) == 0);
    assert (!t->ack->duplicate && t->emitted.count == 1);
    assert (t->ack->event.order.id == 1);

    //  k-b corrected (another body) inside the window: applied
    s_test_place_cmd (t, "k-b", "T2", "soup", 1);
    assert (bus_strlcpy (t->cmd->note, "no bread", sizeof t->cmd->note) == 0);
    assert (s_test_apply (t, S_NOW + 2) == 0);
    assert (t->ack->event.order.id == 2);
    //  ... and now the key is the corrected request's: a late copy of
    //  the refused one is a conflict, not an order
    s_test_place_cmd (t, "k-b", "T2", "soup", 2);
    assert (s_test_apply (t, S_NOW + 3) == BUS_ERR_CONFLICT);
    assert (bus_store_last_seq (t->store) == 4);

    s_test_stats (t, 4, 0, 4);
    s_test_close (t);
}

//  The refusal table is bounded: when it is full, the next refusal
//  empties it, and the refusals it held are forgotten.
static void
s_test_refused_full (s_test_t *t, const char *root, bool verbose)
{
    s_test_open (t, root, "full", true);
    s_test_avail_cmd (t, "k-86", "cola", false);
    assert (s_test_apply (t, S_NOW) == 0);
    s_test_place_cmd (t, "k-victim", "T3", "cola", 1);
    assert (s_test_apply (t, S_NOW) == BUS_ERR_UNAVAILABLE_ITEM);

    //  Fill the table: k-victim and BUS_LEDGER_REFUSED_MAX - 1 others
    assert (bus_store_begin (t->store) == 0);
    for (int i = 0; i < BUS_LEDGER_REFUSED_MAX - 1; i++) {
        char key[32];
        snprintf (key, sizeof key, "k-flood-%d", i);
        s_test_place_cmd (t, key, "T3", "nothing", 1);
        assert (s_test_apply_in (t, S_NOW + 1) == BUS_ERR_UNKNOWN_ITEM);
    }
    assert (bus_store_commit (t->store) == 0);
    s_test_avail_cmd (t, "k-86-back", "cola", true);
    assert (s_test_apply (t, S_NOW + 2) == 0);

    //  Full, but still holding it: the same no
    s_test_place_cmd (t, "k-victim", "T3", "cola", 1);
    assert (s_test_apply (t, S_NOW + 3) == BUS_ERR_UNAVAILABLE_ITEM);

    //  One refusal more starts the table over
    s_test_place_cmd (t, "k-flood-last", "T3", "nothing", 1);
    assert (s_test_apply (t, S_NOW + 4) == BUS_ERR_UNKNOWN_ITEM);
    s_test_place_cmd (t, "k-victim", "T3", "cola", 1);
    assert (s_test_apply (t, S_NOW + 5) == 0);
    assert (t->emitted.count == 1 && t->ack->event.order.id == 1);
    if (verbose)
        printf ("   %d refusals filled the table\n", BUS_LEDGER_REFUSED_MAX);

    s_test_stats (t, 3, 0, BUS_LEDGER_REFUSED_MAX + 2);
    s_test_close (t);
}

//  The process dies after the commit, before the ack leaves: on restart
//  the resent command is answered as a duplicate of what was committed.
//  It dies before the commit: nothing of the batch happened.
static void
s_test_crash (s_test_t *t, const char *root)
{
    s_test_open (t, root, "crash", true);
    t->emitted.count = 0;
    assert (bus_store_begin (t->store) == 0);
    s_test_place_cmd (t, "k-crash", "T4", "soup", 1);
    assert (s_test_apply_in (t, S_NOW) == 0);
    assert (t->ack->event.order.id == 1);
    s_test_cmd (t, BUS_CMD_CART_ADD, "k-crash-cart", "T5");
    s_test_line (t, "cola", 2);
    assert (s_test_apply_in (t, S_NOW) == 0);
    assert (bus_store_commit (t->store) == 0);
    assert (t->emitted.count == 2);
    s_test_close (t);   //  no ack was sent

    s_test_open (t, root, "crash", false);
    s_test_place_cmd (t, "k-crash", "T4", "soup", 1);
    assert (s_test_apply (t, S_NOW + 1000) == 0);
    assert (t->ack->duplicate && t->emitted.count == 0);
    bus_order_t *order = &t->ack->event.order;
    assert (order->id == 1 && t->ack->event.seq == 1);
    assert (order->created_ms == S_NOW && order->total_cents == 1045);
    s_test_cmd (t, BUS_CMD_CART_ADD, "k-crash-cart", "T5");
    s_test_line (t, "cola", 2);
    assert (s_test_apply (t, S_NOW + 1000) == 0);
    assert (t->ack->duplicate && t->emitted.count == 0);
    assert (t->ack->event.type == BUS_EVENT_CART);
    assert (t->ack->event.seq == 2 && t->ack->event.cart.version == 1);
    assert (bus_store_last_seq (t->store) == 2);
    assert (bus_store_get_order (t->store, 2, t->order) == BUS_ERR_NOT_FOUND);
    s_test_stats (t, 0, 2, 0);

    //  Now it dies with the batch applied but not committed
    assert (bus_store_begin (t->store) == 0);
    s_test_place_cmd (t, "k-lost", "T4", "cola", 1);
    assert (s_test_apply_in (t, S_NOW + 2000) == 0);
    assert (order->id == 2);
    s_test_close (t);

    s_test_open (t, root, "crash", false);
    assert (bus_store_last_seq (t->store) == 2);
    s_test_place_cmd (t, "k-lost", "T4", "cola", 1);
    assert (s_test_apply (t, S_NOW + 3000) == 0);
    assert (!t->ack->duplicate && t->emitted.count == 1);
    assert (order->id == 2 && t->ack->event.seq == 3);
    s_test_stats (t, 1, 0, 0);
    s_test_close (t);
}

//  --------------------------------------------------------------------------
//  The other rules

//  Status changes check the version the client saw and the lifecycle; a
//  duplicate answers with the event its key committed, not the order's
//  present state.
static void
s_test_status (s_test_t *t, const char *root)
{
    s_test_open (t, root, "status", true);
    s_test_place_cmd (t, "k-order", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW) == 0);

    s_test_cmd (t, BUS_CMD_SET_STATUS, "k-accept", "");
    t->cmd->order_id = 1;
    t->cmd->status = BUS_STATUS_ACCEPTED;
    t->cmd->version = 1;
    assert (s_test_apply (t, S_NOW + 10) == 0);
    assert (t->emitted.count == 1);
    assert (t->emitted.types[0] == BUS_EVENT_ORDER_STATUS);
    bus_order_t *order = &t->ack->event.order;
    assert (order->status == BUS_STATUS_ACCEPTED && order->version == 2);
    assert (order->status_ms[BUS_STATUS_ACCEPTED] == S_NOW + 10);
    assert (order->updated_ms == S_NOW + 10 && order->created_ms == S_NOW);

    //  A client that saw version 1 is behind
    s_test_cmd (t, BUS_CMD_SET_STATUS, "k-stale", "");
    t->cmd->order_id = 1;
    t->cmd->status = BUS_STATUS_PREPARING;
    t->cmd->version = 1;
    assert (s_test_apply (t, S_NOW + 11) == BUS_ERR_CONFLICT);
    assert (strstr (t->ack->error, "version"));

    //  One step at a time
    s_test_cmd (t, BUS_CMD_SET_STATUS, "k-skip", "");
    t->cmd->order_id = 1;
    t->cmd->status = BUS_STATUS_SERVED;
    assert (s_test_apply (t, S_NOW + 12) == BUS_ERR_CONFLICT);
    assert (strstr (t->ack->error, "status"));

    s_test_cmd (t, BUS_CMD_SET_STATUS, "k-ghost", "");
    t->cmd->order_id = 99;
    t->cmd->status = BUS_STATUS_ACCEPTED;
    assert (s_test_apply (t, S_NOW + 13) == BUS_ERR_NOT_FOUND);
    assert (strstr (t->ack->error, "order_id"));
    assert (t->emitted.count == 0);

    s_test_cmd (t, BUS_CMD_SET_STATUS, "k-prepare", "");
    t->cmd->order_id = 1;
    t->cmd->status = BUS_STATUS_PREPARING;
    t->cmd->version = 2;
    assert (s_test_apply (t, S_NOW + 14) == 0);
    assert (order->version == 3);

    s_test_cmd (t, BUS_CMD_SET_STATUS, "k-accept", "");
    t->cmd->order_id = 1;
    t->cmd->status = BUS_STATUS_ACCEPTED;
    t->cmd->version = 1;
    assert (s_test_apply (t, S_NOW + 15) == 0);
    assert (t->ack->duplicate && t->emitted.count == 0);
    assert (t->ack->event.type == BUS_EVENT_ORDER_STATUS);
    assert (order->status == BUS_STATUS_ACCEPTED && order->version == 2);
    assert (t->ack->event.seq == 2);
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    assert (t->order->status == BUS_STATUS_PREPARING);
    assert (t->order->version == 3);

    s_test_stats (t, 3, 1, 3);
    s_test_close (t);
}

//  A LINE_STATE command on order 1
static void
s_test_line_cmd (s_test_t *t, const char *key, uint32_t line_id,
                 const char *station, bus_line_state_t state,
                 const char *reason)
{
    s_test_cmd (t, BUS_CMD_LINE_STATE, key, "");
    t->cmd->order_id = 1;
    t->cmd->line_id = line_id;
    assert (bus_strlcpy (t->cmd->station, station, sizeof t->cmd->station)
            == 0);
    t->cmd->line_state = state;
    assert (bus_strlcpy (t->cmd->note, reason, sizeof t->cmd->note) == 0);
}

//  Issue 17: a station's bump, a void that takes the line off the bill,
//  the order's status following its lines, stored and deduplicated.
static void
s_test_line_states (s_test_t *t, const char *root)
{
    s_test_open (t, root, "lines", true);
    s_test_cmd (t, BUS_CMD_PLACE, "k-order", "T1");
    s_test_line (t, "soup", 1);   //  station "kitchen", 950
    s_test_line (t, "cola", 2);   //  station "bar", 2 x 300
    assert (s_test_apply (t, S_NOW) == 0);
    bus_order_t *order = &t->ack->event.order;
    assert (order->lines[0].state == BUS_LINE_NEW);

    s_test_line_cmd (t, "k-bar", 0, "bar", BUS_LINE_DONE, "");
    assert (s_test_apply (t, S_NOW + 10) == 0);
    assert (t->emitted.count == 1
            && t->emitted.types[0] == BUS_EVENT_ORDER_STATUS);
    assert (order->lines[0].state == BUS_LINE_NEW
            && order->lines[1].state == BUS_LINE_DONE);
    assert (order->status == BUS_STATUS_PREPARING && order->version == 2);

    s_test_line_cmd (t, "k-void", 1, "", BUS_LINE_VOIDED, "spilled");
    assert (s_test_apply (t, S_NOW + 20) == 0);
    assert (order->status == BUS_STATUS_READY);
    assert (order->subtotal_cents == 600 && order->tax_cents == 60);
    assert (order->total_cents == 660);

    //  Stored as committed; the key answers again with the same event
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    assert (t->order->lines[0].state == BUS_LINE_VOIDED);
    assert (streq (t->order->lines[0].reason, "spilled"));
    assert (t->order->lines[1].state_ms == S_NOW + 10);
    assert (s_test_apply (t, S_NOW + 30) == 0);
    assert (t->ack->duplicate && t->emitted.count == 0);

    //  Refused: nothing emitted, nothing stored
    s_test_line_cmd (t, "k-again", 0, "bar", BUS_LINE_DONE, "");
    assert (s_test_apply (t, S_NOW + 40) == BUS_ERR_CONFLICT);
    s_test_line_cmd (t, "k-nowhere", 0, "grill", BUS_LINE_DONE, "");
    assert (s_test_apply (t, S_NOW + 41) == BUS_ERR_NOT_FOUND);
    assert (strstr (t->ack->error, "station"));
    assert (t->emitted.count == 0);
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    assert (t->order->version == 3);

    //  An order stored before lines had states (state 0: the 8-element
    //  lines of the codec's old format), preparing: its lines read as
    //  cooking, and a station's bump moves only that station's
    s_test_cmd (t, BUS_CMD_PLACE, "k-old", "T2");
    s_test_line (t, "soup", 1);
    s_test_line (t, "cola", 1);
    assert (s_test_apply (t, S_NOW + 50) == 0);
    bus_event_t *old = t->logged;
    memset (old, 0, sizeof *old);
    old->type = BUS_EVENT_ORDER_STATUS;
    old->ts_ms = S_NOW + 51;
    assert (bus_store_get_order (t->store, 2, &old->order) == 0);
    old->order.status = BUS_STATUS_PREPARING;
    for (uint32_t i = 0; i < old->order.line_count; i++)
        old->order.lines[i].state = 0, old->order.lines[i].state_ms = 0;
    assert (bus_store_begin (t->store) == 0);
    assert (bus_store_append (t->store, old, NULL) == 0);
    assert (bus_store_commit (t->store) == 0);
    s_test_line_cmd (t, "k-old-bar", 0, "bar", BUS_LINE_DONE, "");
    t->cmd->order_id = 2;
    assert (s_test_apply (t, S_NOW + 60) == 0);
    assert (order->lines[0].state == BUS_LINE_COOKING);
    assert (order->lines[1].state == BUS_LINE_DONE);
    assert (order->status == BUS_STATUS_PREPARING);
    s_test_close (t);
}

//  A SET_STATUS command on order id
static void
s_test_status_cmd (s_test_t *t, const char *key, uint64_t id, bus_status_t to)
{
    s_test_cmd (t, BUS_CMD_SET_STATUS, key, "");
    t->cmd->order_id = id;
    t->cmd->status = to;
}

//  The review of issue 17: a void taxes at the order's own rate (the
//  writer restarted with another since), a recall never moves a line
//  forward, and an order cancelled by voids or by the order route has
//  zero totals either way.
static void
s_test_line_review (s_test_t *t, const char *root)
{
    s_test_open (t, root, "line-review", true);
    bus_ledger_destroy (&t->ledger);
    t->ledger = bus_ledger_new (t->store, 800);   //  8% when placed
    assert (t->ledger);
    s_test_cmd (t, BUS_CMD_PLACE, "k-order", "T1");
    s_test_line (t, "soup", 1);   //  950, station "kitchen"
    s_test_line (t, "cola", 2);   //  2 x 300, station "bar"
    assert (s_test_apply (t, S_NOW) == 0);
    bus_order_t *order = &t->ack->event.order;
    assert (order->subtotal_cents == 1550 && order->tax_cents == 124);

    bus_ledger_destroy (&t->ledger);   //  restarted at 10%
    t->ledger = bus_ledger_new (t->store, S_TAX_BP);
    assert (t->ledger);
    s_test_line_cmd (t, "k-void-cola", 2, "", BUS_LINE_VOIDED, "spilled");
    assert (s_test_apply (t, S_NOW + 10) == 0);
    assert (order->subtotal_cents == 950 && order->tax_cents == 76);
    assert (order->total_cents == 1026);

    //  Line 1 is new: a recall to cooking would move it forward
    s_test_line_cmd (t, "k-unbump-new", 1, "", BUS_LINE_COOKING, "");
    assert (s_test_apply (t, S_NOW + 20) == BUS_ERR_CONFLICT);
    assert (strstr (t->ack->error, "recall"));
    s_test_line_cmd (t, "k-unbump-stn", 0, "kitchen", BUS_LINE_COOKING, "");
    assert (s_test_apply (t, S_NOW + 21) == BUS_ERR_CONFLICT);
    assert (t->emitted.count == 0);
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    //  (an implied state is stored as none: bus_codec.c's s_pack_line)
    assert (bus_line_state_in (&t->order->lines[0], t->order->status)
            == BUS_LINE_NEW);
    assert (t->order->version == 2);
    //  ... a line past it goes back
    s_test_line_cmd (t, "k-bump", 1, "", BUS_LINE_DONE, "");
    assert (s_test_apply (t, S_NOW + 30) == 0);
    assert (order->status == BUS_STATUS_READY);
    s_test_line_cmd (t, "k-recall", 0, "kitchen", BUS_LINE_COOKING, "");
    assert (s_test_apply (t, S_NOW + 31) == 0);
    assert (order->lines[0].state == BUS_LINE_COOKING);
    assert (order->status == BUS_STATUS_PREPARING);

    //  Voiding the last live line of a preparing order cancels it
    s_test_line_cmd (t, "k-void-soup", 1, "", BUS_LINE_VOIDED, "sent back");
    assert (s_test_apply (t, S_NOW + 40) == 0);
    assert (order->status == BUS_STATUS_CANCELLED);
    assert (order->subtotal_cents == 0 && order->tax_cents == 0);
    assert (order->total_cents == 0);

    //  The order route's cancel: the same zero totals
    s_test_place_cmd (t, "k-order-2", "T2", "soup", 2);
    assert (s_test_apply (t, S_NOW + 50) == 0);
    assert (order->id == 2 && order->tax_cents == 190);
    s_test_status_cmd (t, "k-cancel-2", 2, BUS_STATUS_CANCELLED);
    assert (s_test_apply (t, S_NOW + 51) == 0);
    assert (order->status == BUS_STATUS_CANCELLED);
    assert (order->subtotal_cents == 0 && order->tax_cents == 0);
    assert (order->total_cents == 0);
    assert (bus_store_get_order (t->store, 2, t->order) == 0);
    assert (t->order->total_cents == 0);
    assert (bus_line_state_in (&t->order->lines[0], t->order->status)
            == BUS_LINE_VOIDED);
    s_test_close (t);
}

//  A table's cart: lines added, changed and removed, then placed as one
//  order and emptied in the same transaction.
static void
s_test_carts (s_test_t *t, const char *root)
{
    s_test_open (t, root, "carts", true);
    s_test_cmd (t, BUS_CMD_CART_ADD, "k-add-1", "T5");
    s_test_line (t, "soup", 1);
    assert (s_test_apply (t, S_NOW) == 0);
    assert (t->emitted.count == 1 && t->emitted.types[0] == BUS_EVENT_CART);
    bus_cart_t *cart = &t->ack->event.cart;
    assert (t->ack->event.type == BUS_EVENT_CART);
    assert (streq (cart->table, "T5") && cart->version == 1);
    assert (cart->line_count == 1 && cart->lines[0].line_id == 1);
    assert (cart->subtotal_cents == 950);

    s_test_cmd (t, BUS_CMD_CART_ADD, "k-add-2", "T5");
    s_test_line (t, "cola", 2);
    assert (s_test_apply (t, S_NOW + 1) == 0);
    assert (cart->version == 2 && cart->line_count == 2);
    assert (cart->lines[1].line_id == 2 && cart->subtotal_cents == 1550);

    //  The cart body has no items[]: the error names the line's own field
    s_test_cmd (t, BUS_CMD_CART_ADD, "k-add-bad", "T5");
    s_test_line (t, "nothing", 1);
    assert (s_test_apply (t, S_NOW + 2) == BUS_ERR_UNKNOWN_ITEM);
    assert (strncmp (t->ack->error, "item_id: ", 9) == 0);

    s_test_cmd (t, BUS_CMD_CART_SET_QTY, "k-qty", "T5");
    t->cmd->line_id = 1;
    t->cmd->qty = 3;
    assert (s_test_apply (t, S_NOW + 3) == 0);
    assert (cart->version == 3 && cart->lines[0].qty == 3);

    s_test_cmd (t, BUS_CMD_CART_SET_QTY, "k-qty-bad", "T5");
    t->cmd->line_id = 9;
    t->cmd->qty = 1;
    assert (s_test_apply (t, S_NOW + 4) == BUS_ERR_NOT_FOUND);

    s_test_cmd (t, BUS_CMD_CART_SET_QTY, "k-qty-0", "T5");
    t->cmd->line_id = 2;
    assert (s_test_apply (t, S_NOW + 5) == 0);   //  qty 0 removes it
    assert (cart->version == 4 && cart->line_count == 1);

    s_test_cmd (t, BUS_CMD_CART_PLACE, "k-place-stale", "T5");
    t->cmd->version = 3;
    assert (s_test_apply (t, S_NOW + 6) == BUS_ERR_CONFLICT);
    assert (strstr (t->ack->error, "version"));

    s_test_cmd (t, BUS_CMD_CART_PLACE, "k-place", "T5");
    t->cmd->version = 4;
    assert (s_test_apply (t, S_NOW + 7) == 0);
    assert (t->emitted.count == 2);
    assert (t->emitted.types[0] == BUS_EVENT_ORDER_PLACED);
    assert (t->emitted.types[1] == BUS_EVENT_CART);
    assert (t->ack->event.type == BUS_EVENT_ORDER_PLACED);
    bus_order_t *order = &t->ack->event.order;
    assert (order->id == 1 && streq (order->table, "T5"));
    assert (order->line_count == 1 && order->lines[0].qty == 3);
    assert (order->total_cents == 2850 + 285);
    uint64_t seq = t->ack->event.seq;

    assert (s_test_apply (t, S_NOW + 8) == 0);
    assert (t->ack->duplicate && t->emitted.count == 0);
    assert (order->id == 1 && t->ack->event.seq == seq);

    //  Placed once: the cart is empty now
    s_test_cmd (t, BUS_CMD_CART_PLACE, "k-place-again", "T5");
    assert (s_test_apply (t, S_NOW + 9) == BUS_ERR_CONFLICT);
    assert (strstr (t->ack->error, "empty"));

    //  Two pads press "order" in the same batch: one order
    s_test_cmd (t, BUS_CMD_CART_ADD, "k-add-3", "T6");
    s_test_line (t, "cola", 1);
    assert (s_test_apply (t, S_NOW + 10) == 0);
    t->emitted.count = 0;
    assert (bus_store_begin (t->store) == 0);
    s_test_cmd (t, BUS_CMD_CART_PLACE, "k-pad-a", "T6");
    assert (s_test_apply_in (t, S_NOW + 11) == 0);
    assert (order->id == 2);
    s_test_cmd (t, BUS_CMD_CART_PLACE, "k-pad-b", "T6");
    assert (s_test_apply_in (t, S_NOW + 11) == BUS_ERR_CONFLICT);
    assert (bus_store_commit (t->store) == 0);
    assert (t->emitted.count == 2);

    //  Clearing a cart never used makes one, empty
    s_test_cmd (t, BUS_CMD_CART_CLEAR, "k-clear", "T7");
    assert (s_test_apply (t, S_NOW + 12) == 0);
    assert (t->ack->event.type == BUS_EVENT_CART);
    assert (streq (cart->table, "T7") && cart->line_count == 0);
    assert (cart->version == 1);

    s_test_stats (t, 8, 1, 5);
    s_test_close (t);
}

//  86-ing an item changes the ledger's menu and the stored one; an 86 in
//  a batch that did not commit is dropped by bus_ledger_reload.
static void
s_test_availability (s_test_t *t, const char *root)
{
    s_test_open (t, root, "menu", true);
    s_test_avail_cmd (t, "k-86-unknown", "nothing", false);
    assert (s_test_apply (t, S_NOW) == BUS_ERR_UNKNOWN_ITEM);
    assert (strstr (t->ack->error, "item_id"));

    assert (bus_store_begin (t->store) == 0);
    s_test_avail_cmd (t, "k-86-lost", "cola", false);
    assert (s_test_apply_in (t, S_NOW + 1) == 0);
    bus_store_abort (t->store);
    bus_ledger_reload (t->ledger);
    s_test_place_cmd (t, "k-cola", "T1", "cola", 1);
    assert (s_test_apply (t, S_NOW + 2) == 0);

    s_test_avail_cmd (t, "k-86", "cola", false);
    assert (s_test_apply (t, S_NOW + 3) == 0);
    assert (t->emitted.count == 1);
    assert (t->emitted.types[0] == BUS_EVENT_MENU_ITEM);
    assert (t->ack->event.type == BUS_EVENT_MENU_ITEM);
    assert (streq (t->ack->event.item_id, "cola"));
    assert (!t->ack->event.available);

    //  The 86 is in the store: a new ledger starts with it
    bus_ledger_destroy (&t->ledger);
    t->ledger = bus_ledger_new (t->store, S_TAX_BP);
    assert (t->ledger);
    s_test_place_cmd (t, "k-cola-2", "T1", "cola", 1);
    assert (s_test_apply (t, S_NOW + 4) == BUS_ERR_UNAVAILABLE_ITEM);

    s_test_cmd (t, (bus_cmd_type_t) 99, "k-what", "T1");
    assert (s_test_apply (t, S_NOW + 5) == BUS_ERR_INVALID);
    assert (strstr (t->ack->error, "type"));
    s_test_stats (t, 0, 0, 2);
    s_test_close (t);
}

//  With no menu stored every order is refused, and the ledger still runs
static void
s_test_no_menu (s_test_t *t, const char *root)
{
    s_test_open (t, root, "no-menu", false);
    s_test_place_cmd (t, "k-place", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW) == BUS_ERR_UNKNOWN_ITEM);
    s_test_avail_cmd (t, "k-86", "soup", false);
    assert (s_test_apply (t, S_NOW) == BUS_ERR_UNKNOWN_ITEM);
    assert (bus_store_last_seq (t->store) == 0);
    s_test_stats (t, 0, 0, 2);
    s_test_close (t);
}

//  --------------------------------------------------------------------------
//  Retention

#define S_DAY 86400000LL

//  Once retention has pruned a key (store/key_retain_days after its
//  order), a request with it is a new request: a new order, as
//  docs/retention.md says.  A key not yet pruned still answers with the
//  original order, even after its neighbours' events are gone.
static void
s_test_pruned_key (s_test_t *t, const char *root)
{
    s_test_open (t, root, "retention", true);
    s_test_place_cmd (t, "k-old", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW) == 0 && t->ack->event.order.id == 1);
    s_test_place_cmd (t, "k-new", "T1", "cola", 1);
    assert (s_test_apply (t, S_NOW + 3 * S_DAY) == 0);
    assert (t->ack->event.order.id == 2);

    //  Two days on, both keys are known
    s_test_place_cmd (t, "k-old", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW + 2 * S_DAY) == 0 && t->ack->duplicate);

    //  Retention at two days, on the fourth: k-old and its event go
    bus_store_pruned_t pruned;
    assert (bus_store_begin (t->store) == 0);
    assert (bus_store_prune (t->store, S_NOW + 2 * S_DAY, S_NOW + 2 * S_DAY,
                             256, &pruned)
            == 0);
    assert (bus_store_commit (t->store) == 0);
    assert (pruned.events == 1 && pruned.keys == 1 && pruned.first_seq == 2);

    //  The same request under k-old: a new order, not the old one
    s_test_place_cmd (t, "k-old", "T1", "soup", 1);
    assert (s_test_apply (t, S_NOW + 4 * S_DAY) == 0);
    assert (!t->ack->duplicate && t->ack->event.order.id == 3);
    assert (t->emitted.count == 1);
    //  k-new answers as before, and the old order is still stored
    s_test_place_cmd (t, "k-new", "T1", "cola", 1);
    assert (s_test_apply (t, S_NOW + 4 * S_DAY) == 0 && t->ack->duplicate);
    assert (t->ack->event.order.id == 2);
    assert (bus_store_get_order (t->store, 1, t->order) == 0);
    s_test_stats (t, 3, 2, 0);
    s_test_close (t);
}

void
bus_ledger_test (bool verbose)
{
    if (verbose)
        printf (" * bus_ledger:\n");
    char root[] = "/tmp/bus_ledger_test.XXXXXX";
    assert (mkdtemp (root));
    s_test_t t;
    memset (&t, 0, sizeof t);
    t.cmd = (bus_cmd_t *) calloc (1, sizeof *t.cmd);
    t.ack = (bus_ack_t *) calloc (1, sizeof *t.ack);
    t.order = (bus_order_t *) calloc (1, sizeof *t.order);
    t.logged = (bus_event_t *) calloc (1, sizeof *t.logged);
    assert (t.cmd && t.ack && t.order && t.logged);

    s_test_dedupe (&t, root);
    s_test_conflict (&t, root);
    s_test_refused (&t, root);
    s_test_refused_full (&t, root, verbose);
    s_test_crash (&t, root);
    s_test_status (&t, root);
    s_test_line_states (&t, root);
    s_test_line_review (&t, root);
    s_test_carts (&t, root);
    s_test_availability (&t, root);
    s_test_no_menu (&t, root);
    s_test_pruned_key (&t, root);

    free (t.cmd);
    free (t.ack);
    free (t.order);
    free (t.logged);
    zdir_t *tree = zdir_new (root, NULL);
    assert (tree);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    assert (!zsys_file_exists (root));
}
