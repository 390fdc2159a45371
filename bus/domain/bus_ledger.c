/*  bus_ledger.c — the rules of intake, applied in the writer's batch.

    Every handler below either appends the events its command produces and
    leaves ack->status at 0, or refuses the command by filling ack with a
    status and a message (field path first, "items[0].item_id: ...") and
    changes nothing.  Only storage errors are returned: they fail the
    whole batch.  Events are built in place (in the ack, or in the
    ledger's scratch event) because they are large and a copy per command
    would cost more than the rest of the work.  */

#include <stdarg.h>
#include <stdatomic.h>
#include <czmq.h>
#include "orderbus/bus_cart.h"
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_ledger.h"
#include "orderbus/bus_menu.h"
#include "orderbus/bus_order.h"
#include "bus_ledger_private.h"

#define S_REFUSED_MS  BUS_LEDGER_REFUSED_MS
#define S_REFUSED_MAX BUS_LEDGER_REFUSED_MAX

//  A refused request, remembered so that its copies still in flight (a
//  gateway resends until it hears back) get the same answer: were a copy
//  applied after the state changed, a pad told "no" would get an order.
typedef struct {
    uint64_t fingerprint;
    int status;
    char error[BUS_ERROR_MAX];
    int64_t at_ms;
} s_refusal_t;

struct _bus_ledger_t {
    bus_store_t *store;   //  borrowed
    zhashx_t *refused;    //  key -> s_refusal_t, recent refusals
    bus_menu_t *menu;     //  authoritative menu, NULL if none stored
    int tax_bp;
    bus_event_t scratch;   //  a command's second event (cart.updated)
    bus_line_t line;       //  a priced cart line
    atomic_uint_fast64_t applied, duplicates, rejected;
};

//  One command being applied
typedef struct {
    bus_ledger_t *self;
    const bus_cmd_t *cmd;
    int64_t now;
    bus_ack_t *ack;
    bus_ledger_emit_fn *emit;
    void *arg;
} s_apply_t;

static int
s_reject (s_apply_t *a, int status, const char *fmt, ...)
{
    a->ack->status = status;
    va_list args;
    va_start (args, fmt);
    vsnprintf (a->ack->error, sizeof a->ack->error, fmt, args);
    va_end (args);
    atomic_fetch_add (&a->self->rejected, 1);
    return 0;
}

//  Remember the refusal in a->ack for the command's key.
static void
s_remember_refusal (s_apply_t *a)
{
    zhashx_t *refused = a->self->refused;
    if (zhashx_size (refused) >= S_REFUSED_MAX)
        zhashx_purge (refused);   //  a flood of refusals: start over
    s_refusal_t *refusal = malloc (sizeof *refusal);
    if (!refusal)
        return;
    refusal->fingerprint = a->ack->fingerprint;
    refusal->status = a->ack->status;
    memcpy (refusal->error, a->ack->error, sizeof refusal->error);
    refusal->at_ms = a->now;
    zhashx_update (refused, a->cmd->key, refusal);
}

//  The recent refusal of this very request, if there is one.
static const s_refusal_t *
s_refused_before (s_apply_t *a)
{
    s_refusal_t *refusal =
        (s_refusal_t *) zhashx_lookup (a->self->refused, a->cmd->key);
    if (refusal && a->now - refusal->at_ms > S_REFUSED_MS) {
        zhashx_delete (a->self->refused, a->cmd->key);
        return NULL;
    }
    return refusal && refusal->fingerprint == a->ack->fingerprint ? refusal
                                                                  : NULL;
}

//  Refuse the command with the reason a rule already wrote into the ack.
static int
s_refuse (s_apply_t *a, int status)
{
    a->ack->status = status;
    atomic_fetch_add (&a->self->rejected, 1);
    return 0;
}

//  Append event (of type) and hand it to the caller's emit.
static int
s_emit (s_apply_t *a, bus_event_t *event, bus_event_type_t type)
{
    event->type = type;
    event->ts_ms = a->now;
    zframe_t *body = NULL;
    int rc = bus_store_append (a->self->store, event, &body);
    if (rc == 0)
        a->emit (event, &body, a->arg);
    return rc;
}

//  ---------------------------------------------------------------------
//  Orders

//  Fill a new order's header from the command; its lines are priced.
static void
s_order_start (s_apply_t *a, bus_order_t *order, uint32_t lines)
{
    const bus_cmd_t *cmd = a->cmd;
    order->id = bus_store_order_next_id (a->self->store);
    order->version = 1;
    order->status = BUS_STATUS_PLACED;
    memcpy (order->table, cmd->table, sizeof order->table);
    memcpy (order->key, cmd->key, sizeof order->key);
    memcpy (order->origin, cmd->origin, sizeof order->origin);
    memcpy (order->note, cmd->note, sizeof order->note);
    order->created_ms = order->updated_ms = a->now;
    memset (order->status_ms, 0, sizeof order->status_ms);
    order->status_ms[BUS_STATUS_PLACED] = a->now;
    order->line_count = lines;
    //  Each line starts new, at its station (issue 17)
    for (uint32_t i = 0; i < lines; i++) {
        order->lines[i].state = BUS_LINE_NEW;
        order->lines[i].state_ms = a->now;
        order->lines[i].reason[0] = '\0';
    }
    bus_order_total (order, a->self->tax_bp);
}

static int
s_place (s_apply_t *a)
{
    bus_order_t *order = &a->ack->event.order;
    int rc = (a->cmd->open_menu ? bus_order_price_open : bus_order_price) (
        a->self->menu, a->cmd->lines, a->cmd->line_count, order->lines,
        a->ack->error, sizeof a->ack->error);
    if (rc != 0)
        return s_refuse (a, rc);
    s_order_start (a, order, a->cmd->line_count);
    return s_emit (a, &a->ack->event, BUS_EVENT_ORDER_PLACED);
}

static int
s_set_status (s_apply_t *a)
{
    bus_order_t *order = &a->ack->event.order;
    int rc = bus_store_order_lookup (a->self->store, a->cmd->order_id, order);
    if (rc == BUS_ERR_NOT_FOUND)
        return s_reject (a, rc, "order_id: there is no order %" PRIu64,
                         a->cmd->order_id);
    if (rc != 0)
        return rc;
    rc = bus_order_move (order, (bus_status_t) a->cmd->status, a->cmd->version,
                         a->now, a->ack->error, sizeof a->ack->error);
    if (rc != 0)
        return s_refuse (a, rc);
    //  a cancel voids every line: zero totals, as voiding them one by one
    if (order->status == BUS_STATUS_CANCELLED)
        bus_order_retotal (order);
    return s_emit (a, &a->ack->event, BUS_EVENT_ORDER_STATUS);
}

//  A line's or a station's lines' new state (issue 17): the order's
//  status follows its lines, and a void takes the line off the bill.
static int
s_line_state (s_apply_t *a)
{
    const bus_cmd_t *cmd = a->cmd;
    bus_order_t *order = &a->ack->event.order;
    int rc = bus_store_order_lookup (a->self->store, cmd->order_id, order);
    if (rc == BUS_ERR_NOT_FOUND)
        return s_reject (a, rc, "order_id: there is no order %" PRIu64,
                         cmd->order_id);
    if (rc != 0)
        return rc;
    rc = bus_order_lines_move (
        order, cmd->line_id, cmd->station, (bus_line_state_t) cmd->line_state,
        cmd->note, cmd->version, a->now, a->ack->error, sizeof a->ack->error);
    if (rc != 0)
        return s_refuse (a, rc);
    //  at the order's own rate: a restart may have changed tax_bp since
    if (cmd->line_state == BUS_LINE_VOIDED)
        bus_order_retotal (order);
    return s_emit (a, &a->ack->event, BUS_EVENT_ORDER_STATUS);
}

//  ---------------------------------------------------------------------
//  Carts

//  Load the command's table's cart into cart, a fresh one if it has none.
static int
s_cart_load (s_apply_t *a, bus_cart_t *cart)
{
    int rc = bus_store_cart_lookup (a->self->store, a->cmd->table, cart);
    if (rc == BUS_ERR_NOT_FOUND) {
        bus_cart_init (cart, a->cmd->table);
        rc = 0;
    }
    return rc;
}

static int
s_cart_add (s_apply_t *a)
{
    bus_cart_t *cart = &a->ack->event.cart;
    bus_line_t *line = &a->self->line;
    char *err = a->ack->error;
    int rc = bus_order_price (a->self->menu, a->cmd->lines, 1, line, err,
                              sizeof a->ack->error);
    if (rc != 0) {   //  the cart body has no items[]: name its own field
        if (strncmp (err, "items[0].", 9) == 0)
            memmove (err, err + 9, strlen (err + 9) + 1);
        return s_refuse (a, rc);
    }
    if ((rc = s_cart_load (a, cart)) != 0)
        return rc;
    rc = bus_cart_add (cart, line, a->now, err, sizeof a->ack->error);
    if (rc != 0)
        return s_refuse (a, rc);
    return s_emit (a, &a->ack->event, BUS_EVENT_CART);
}

static int
s_cart_set_qty (s_apply_t *a)
{
    bus_cart_t *cart = &a->ack->event.cart;
    int rc = s_cart_load (a, cart);
    if (rc != 0)
        return rc;
    rc = bus_cart_set_qty (cart, a->cmd->line_id, a->cmd->qty, a->now,
                           a->ack->error, sizeof a->ack->error);
    if (rc != 0)
        return s_refuse (a, rc);
    return s_emit (a, &a->ack->event, BUS_EVENT_CART);
}

static int
s_cart_clear (s_apply_t *a)
{
    bus_cart_t *cart = &a->ack->event.cart;
    int rc = s_cart_load (a, cart);
    if (rc != 0)
        return rc;
    bus_cart_clear (cart, a->now);
    return s_emit (a, &a->ack->event, BUS_EVENT_CART);
}

//  The cart becomes an order and is emptied in the same transaction, so
//  two pads pressing "order" at once place it once: the second finds it
//  empty.  Its lines are priced again: the menu may have changed (an 86)
//  since they went in.
static int
s_cart_place (s_apply_t *a)
{
    bus_cart_t *cart = &a->self->scratch.cart;
    int rc = s_cart_load (a, cart);
    if (rc != 0)
        return rc;
    if (cart->line_count == 0)
        return s_reject (a, BUS_ERR_CONFLICT,
                         "items: the cart of table %s is "
                         "empty (already ordered?)",
                         cart->table);
    if (a->cmd->version && a->cmd->version != cart->version)
        return s_reject (a, BUS_ERR_CONFLICT,
                         "version: the cart is at version "
                         "%u, not %u; reload it and try again",
                         cart->version, a->cmd->version);
    bus_order_t *order = &a->ack->event.order;
    rc = bus_order_price (a->self->menu, cart->lines, cart->line_count,
                          order->lines, a->ack->error, sizeof a->ack->error);
    if (rc != 0)
        return s_refuse (a, rc);
    s_order_start (a, order, cart->line_count);
    rc = s_emit (a, &a->ack->event, BUS_EVENT_ORDER_PLACED);
    if (rc != 0)
        return rc;
    bus_cart_clear (cart, a->now);
    return s_emit (a, &a->self->scratch, BUS_EVENT_CART);
}

//  ---------------------------------------------------------------------
//  Menu

static int
s_availability (s_apply_t *a)
{
    bus_ledger_t *self = a->self;
    int rc = self->menu ? bus_menu_set_available (self->menu, a->cmd->item_id,
                                                  a->cmd->available)
                        : BUS_ERR_NOT_FOUND;
    if (rc == BUS_ERR_TOO_BIG)
        return s_reject (a, BUS_ERR_TOO_BIG,
                         "item_id '%s': the menu document would grow past "
                         "%d bytes; nothing changed",
                         a->cmd->item_id, BUS_MENU_DOC_MAX);
    if (rc != 0)
        return s_reject (a, BUS_ERR_UNKNOWN_ITEM,
                         "item_id: unknown menu item '%s'", a->cmd->item_id);
    rc = bus_store_menu_set (self->store, bus_menu_json (self->menu),
                             bus_menu_json_len (self->menu));
    if (rc != 0)
        return rc;
    bus_event_t *event = &a->ack->event;
    memcpy (event->item_id, a->cmd->item_id, sizeof event->item_id);
    event->available = a->cmd->available;
    return s_emit (a, event, BUS_EVENT_MENU_ITEM);
}

//  ---------------------------------------------------------------------
//  Applying a command

static int
s_dispatch (s_apply_t *a)
{
    switch (a->cmd->type) {
        case BUS_CMD_PLACE: return s_place (a);
        case BUS_CMD_SET_STATUS: return s_set_status (a);
        case BUS_CMD_CART_ADD: return s_cart_add (a);
        case BUS_CMD_CART_SET_QTY: return s_cart_set_qty (a);
        case BUS_CMD_CART_CLEAR: return s_cart_clear (a);
        case BUS_CMD_CART_PLACE: return s_cart_place (a);
        case BUS_CMD_AVAILABILITY: return s_availability (a);
        case BUS_CMD_LINE_STATE: return s_line_state (a);
    }
    return s_reject (a, BUS_ERR_INVALID, "type: unknown command");
}

//  A key seen before: the original event, or a conflict.
static int
s_known (s_apply_t *a, uint64_t fingerprint, uint64_t seq)
{
    if (fingerprint != a->ack->fingerprint)
        return s_reject (a, BUS_ERR_CONFLICT,
                         "Idempotency-Key: '%s' was "
                         "already used for a different request",
                         a->cmd->key);
    int rc = bus_store_event_lookup (a->self->store, seq, &a->ack->event);
    if (rc == 0) {
        a->ack->duplicate = true;
        atomic_fetch_add (&a->self->duplicates, 1);
    }
    return rc;
}

int
bus_ledger_apply (bus_ledger_t *self, const bus_cmd_t *cmd, int64_t now,
                  bus_ack_t *ack, bus_ledger_emit_fn *emit, void *arg)
{
    s_apply_t a = { self, cmd, now, ack, emit, arg };
    memcpy (ack->key, cmd->key, sizeof ack->key);
    ack->fingerprint = bus_cmd_fingerprint (cmd);
    ack->status = 0;
    ack->duplicate = false;
    ack->error[0] = '\0';
    uint64_t fingerprint, seq;
    int rc = bus_store_key_get (self->store, cmd->key, &fingerprint, &seq);
    if (rc == 0) {
        rc = s_known (&a, fingerprint, seq);
        if (rc != BUS_ERR_NOT_FOUND)
            return rc;
        //  A key whose event is gone (retention deletes keys first, so
        //  never, unless the file was edited) is forgotten rather than
        //  failing every batch it comes in: applied as a new request
        zsys_warning ("ledger: key '%s' has lost its event %" PRIu64
                      ": applied as a new request",
                      cmd->key, seq);
    } else if (rc != BUS_ERR_NOT_FOUND)
        return rc;
    const s_refusal_t *refusal = s_refused_before (&a);
    if (refusal) {   //  a copy of a request refused a moment ago
        memcpy (ack->error, refusal->error, sizeof ack->error);
        return s_refuse (&a, refusal->status);
    }
    rc = s_dispatch (&a);
    //  A refused command records no key: nothing was done, so the pad may
    //  fix the request and send it again under the same key (a different
    //  request, so its refusal is not remembered for it)
    if (rc == 0 && ack->status != 0)
        s_remember_refusal (&a);
    if (rc == 0 && ack->status == 0) {
        rc = bus_store_key_put (self->store, cmd->key, ack->fingerprint,
                                ack->event.seq);
        atomic_fetch_add (&self->applied, 1);
    }
    return rc;
}

//  ---------------------------------------------------------------------
//  Construction

void
bus_ledger_reload (bus_ledger_t *self)
{
    char *json;
    size_t len;
    uint64_t version;
    if (bus_store_menu_get (self->store, &json, &len, &version) != 0)
        return;
    char err[256];
    bus_menu_t *menu = bus_menu_new (json, len, err, sizeof err);
    free (json);
    if (!menu) {
        zsys_error ("ledger: the stored menu does not load: %s", err);
        return;
    }
    bus_menu_destroy (&self->menu);
    self->menu = menu;
}

static void
s_refusal_destructor (void **item)
{
    free (*item);
    *item = NULL;
}

bus_ledger_t *
bus_ledger_new (bus_store_t *store, int tax_bp)
{
    bus_ledger_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->tax_bp = tax_bp;
    self->refused = zhashx_new ();
    if (!self->refused) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->refused, s_refusal_destructor);
    bus_ledger_reload (self);
    if (!self->menu)
        zsys_warning ("ledger: no menu stored: every order will be refused "
                      "until one is loaded with --menu FILE");
    return self;
}

void
bus_ledger_destroy (bus_ledger_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_menu_destroy (&(*self_p)->menu);
    zhashx_destroy (&(*self_p)->refused);
    free (*self_p);
    *self_p = NULL;
}

bus_ledger_stats_t
bus_ledger_stats (bus_ledger_t *self)
{
    bus_ledger_stats_t stats = { atomic_load (&self->applied),
                                 atomic_load (&self->duplicates),
                                 atomic_load (&self->rejected) };
    return stats;
}
