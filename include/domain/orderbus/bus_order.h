/*  bus_order.h — the rules of an order: pricing from the menu, tax, and
    the lifecycle placed -> accepted -> preparing -> ready -> served (or
    cancelled from placed/accepted).  Pure functions: the writer applies
    them inside its transaction, the tests apply them to plain structs.  */

#ifndef BUS_ORDER_H_INCLUDED
#define BUS_ORDER_H_INCLUDED

#include "orderbus/bus_menu.h"
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Price count client lines (item_id, qty, note, modifier ids) from the
    menu into out[]: names, stations, modifier names and deltas, unit
    prices (item + modifiers), line ids 1..count.  Returns 0, or
    BUS_ERR_UNKNOWN_ITEM / BUS_ERR_UNAVAILABLE_ITEM / BUS_ERR_INVALID (a
    modifier the item does not offer) with a message in err[err_cap] that
    starts with the field path, as "items[1].modifiers[0]: ...".  menu may
    be NULL (every item is then unknown).  in and out may be the same.  */
int bus_order_price (const bus_menu_t *menu, const bus_line_t *in,
                     uint32_t count, bus_line_t *out, char *err,
                     size_t err_cap);

/*  The same for an open-menu order: a line whose item_id is
    BUS_CUSTOM_ITEM names its item by name; it is priced as the menu item
    of that name if there is one (and it is available), and otherwise kept
    as a free-text line at no price.  */
int bus_order_price_open (const bus_menu_t *menu, const bus_line_t *in,
                          uint32_t count, bus_line_t *out, char *err,
                          size_t err_cap);

/*  Sum of qty * unit_cents over lines, voided lines left out.  */
int64_t bus_order_subtotal (const bus_line_t *lines, uint32_t count);

/*  Set order's subtotal, tax (tax_bp basis points of the subtotal, rounded
    half up) and total from its lines.  */
void bus_order_total (bus_order_t *order, int tax_bp);

/*  Set order's totals again after lines left the bill (a void, a
    cancel), at the rate the order was taxed at when placed, not
    today's: orders do not store their rate, so it is the whole basis
    points its subtotal and tax imply (exact for a subtotal of 100.00 or
    more), or, when none does, its tax scaled by the new subtotal.  */
void bus_order_retotal (bus_order_t *order);

/*  Move order to status `to` at time now, if version is 0 or the order's
    current version, and the lifecycle allows it; bumps version and records
    the time of the new status.  Its lines follow: preparing starts the
    new ones cooking, ready and served make every line that is not voided
    done, cancelled voids them ("order cancelled").  0, or BUS_ERR_CONFLICT with a message
    that names the current version or status.  */
int bus_order_move (bus_order_t *order, bus_status_t to, uint32_t version,
                    int64_t now, char *err, size_t err_cap);

/*  Line states (issue 17).  Each line of an order has its own state
    (bus_line_state_t) and the order's status follows its lines:
      - a line goes new -> cooking -> done, is recalled (done or cooking
        -> cooking or new), or is voided from any of them, for good;
      - when every line that is not voided is done, the order is ready;
      - a recall (to cooking or new) moves only lines past that state;
      - when a line is cooking or done but not all are done, the order is
        preparing (a recall takes a ready order back to preparing);
      - when every line is voided, the order is cancelled, from any open
        status (a void is the kitchen's tool), with zero totals;
      - a voided line is not charged: the caller recomputes the totals
        (bus_order_retotal);
      - the lines of a served or cancelled order do not change.
    The order-level moves (bus_order_move) apply to every line.  */

/*  Give every line of order without a state (0) the one its status
    implies (bus_line_state_in), so that the rules below see states (an order stored before
    issue 17).  */
void bus_order_lines_settle (bus_order_t *order);

/*  Move the lines of order to state `to` at time now: the line line_id
    when it is not 0, else every line of station (that is not voided).
    version: as for bus_order_move.  reason: a void's, 1..120 bytes.
    Then the order's status follows its lines, as above; bumps version.
    0, or BUS_ERR_NOT_FOUND (no such line, no line of that station),
    BUS_ERR_INVALID (a void without a reason, or of a whole station) or
    BUS_ERR_CONFLICT (version, a served or cancelled order, a voided
    line, a line already in that state, a station with nothing to
    move), with a message in err that starts with the field path.  */
int bus_order_lines_move (bus_order_t *order, uint32_t line_id,
                          const char *station, bus_line_state_t to,
                          const char *reason, uint32_t version, int64_t now,
                          char *err, size_t err_cap);

/*  Selftest.  */
void bus_order_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
