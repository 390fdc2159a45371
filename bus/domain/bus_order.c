/*  bus_order.c — pricing, tax and lifecycle of an order.  */

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_order.h"

//  Fill line's modifiers from item's options.  0 or BUS_ERR_INVALID.
static int
s_price_mods (const bus_menu_item_t *item, bus_line_t *line, uint32_t index,
              char *err, size_t err_cap)
{
    for (uint32_t m = 0; m < line->mod_count; m++) {
        bus_mod_t *mod = &line->mods[m];
        const bus_mod_t *option = bus_menu_find_mod (item, mod->id);
        if (!option) {
            snprintf (err, err_cap,
                      "items[%u].modifiers[%u]: '%s' does not "
                      "offer '%s'",
                      index, m, item->id, mod->id);
            return BUS_ERR_INVALID;
        }
        *mod = *option;
        line->unit_cents += option->delta_cents;
    }
    return 0;
}

int
bus_order_price (const bus_menu_t *menu, const bus_line_t *in, uint32_t count,
                 bus_line_t *out, char *err, size_t err_cap)
{
    for (uint32_t i = 0; i < count; i++) {
        const bus_menu_item_t *item =
            menu ? bus_menu_find (menu, in[i].item_id) : NULL;
        if (!item) {
            snprintf (err, err_cap, "items[%u].item_id: unknown menu item '%s'",
                      i, in[i].item_id);
            return BUS_ERR_UNKNOWN_ITEM;
        }
        if (!item->available) {
            snprintf (err, err_cap, "items[%u].item_id: '%s' is not available",
                      i, in[i].item_id);
            return BUS_ERR_UNAVAILABLE_ITEM;
        }
        if (&out[i] != &in[i])
            out[i] = in[i];
        out[i].line_id = i + 1;
        bus_strlcpy (out[i].name, item->name, sizeof out[i].name);
        bus_strlcpy (out[i].station, item->station, sizeof out[i].station);
        out[i].unit_cents = item->price_cents;
        int rc = s_price_mods (item, &out[i], i, err, err_cap);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
bus_order_price_open (const bus_menu_t *menu, const bus_line_t *in,
                      uint32_t count, bus_line_t *out, char *err,
                      size_t err_cap)
{
    for (uint32_t i = 0; i < count; i++) {
        const bus_menu_item_t *item = NULL;
        if (&out[i] != &in[i])
            out[i] = in[i];
        if (strcmp (in[i].item_id, BUS_CUSTOM_ITEM) == 0 && menu)
            item = bus_menu_find_name (menu, in[i].name);
        if (item)   //  a known dish after all: price it as such
            bus_strlcpy (out[i].item_id, item->id, sizeof out[i].item_id);
        if (item || strcmp (in[i].item_id, BUS_CUSTOM_ITEM) != 0) {
            int rc = bus_order_price (menu, &out[i], 1, &out[i], err, err_cap);
            if (rc != 0)
                return rc;
        } else {
            out[i].mod_count = 0;
            bus_strlcpy (out[i].station, "kitchen", sizeof out[i].station);
            out[i].unit_cents = 0;
        }
        out[i].line_id = i + 1;
    }
    return 0;
}

int64_t
bus_order_subtotal (const bus_line_t *lines, uint32_t count)
{
    int64_t sum = 0;
    for (uint32_t i = 0; i < count; i++)
        if (lines[i].state != BUS_LINE_VOIDED)   //  not charged
            sum += lines[i].unit_cents * (int64_t) lines[i].qty;
    return sum;
}

void
bus_order_total (bus_order_t *order, int tax_bp)
{
    order->subtotal_cents =
        bus_order_subtotal (order->lines, order->line_count);
    //  half up, in integers: money never touches floating point
    order->tax_cents = (order->subtotal_cents * tax_bp + 5000) / 10000;
    order->total_cents = order->subtotal_cents + order->tax_cents;
}

//  The whole basis points that give tax on sub (rounded half up), or -1
static int
s_rate_of (int64_t sub, int64_t tax)
{
    int64_t scaled;
    if (sub <= 0 || tax < 0 || __builtin_mul_overflow (tax, 10000, &scaled))
        return -1;
    int64_t bp = (scaled + sub / 2) / sub, back;
    if (bp > 100000 || __builtin_mul_overflow (sub, bp, &back)
        || (back + 5000) / 10000 != tax)
        return -1;
    return (int) bp;
}

void
bus_order_retotal (bus_order_t *order)
{
    int64_t sub_old = order->subtotal_cents, tax_old = order->tax_cents;
    int bp = s_rate_of (sub_old, tax_old);
    if (bp >= 0) {
        bus_order_total (order, bp);
        return;
    }
    int64_t sub = bus_order_subtotal (order->lines, order->line_count);
    int64_t scaled = 0;
    if (sub_old > 0 && sub >= 0
        && !__builtin_mul_overflow (tax_old, sub, &scaled))
        order->tax_cents = (scaled + sub_old / 2) / sub_old;
    else if (sub_old <= 0 || sub <= 0)
        order->tax_cents = 0;   //  nothing left to tax, or no rate to take
    order->subtotal_cents = sub;
    order->total_cents = sub + order->tax_cents;
}

//  --------------------------------------------------------------------------
//  Line states

void
bus_order_lines_settle (bus_order_t *order)
{
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++) {
        bus_line_t *line = &order->lines[i];
        if (line->state == 0) {
            bus_line_state_t state;
            const char *reason;
            bus_line_read (line, order, &state, &line->state_ms, &reason);
            bus_strlcpy (line->reason, reason, sizeof line->reason);
            line->state = state;
        }
    }
}

static void
s_line_set (bus_line_t *line, bus_line_state_t to, const char *reason,
            int64_t now)
{
    line->state = to;
    line->state_ms = now;
    bus_strlcpy (line->reason, to == BUS_LINE_VOIDED ? reason : "",
                 sizeof line->reason);
}

//  An order-level move, applied to every line that it moves
static void
s_lines_follow_status (bus_order_t *order, bus_status_t to, int64_t now)
{
    bus_order_lines_settle (order);
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++) {
        bus_line_t *line = &order->lines[i];
        if (line->state == BUS_LINE_VOIDED)
            continue;
        if (to == BUS_STATUS_CANCELLED)
            s_line_set (line, BUS_LINE_VOIDED, BUS_REASON_CANCELLED, now);
        else if ((to == BUS_STATUS_READY || to == BUS_STATUS_SERVED)
                 && line->state != BUS_LINE_DONE)
            s_line_set (line, BUS_LINE_DONE, NULL, now);
        else if (to == BUS_STATUS_PREPARING && line->state == BUS_LINE_NEW)
            s_line_set (line, BUS_LINE_COOKING, NULL, now);
    }
}

//  The order's status from its lines, after a line moved
static void
s_status_follow_lines (bus_order_t *order, int64_t now)
{
    uint32_t live = 0, done = 0, started = 0;
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++) {
        bus_line_state_t state = (bus_line_state_t) order->lines[i].state;
        live += state != BUS_LINE_VOIDED;
        done += state == BUS_LINE_DONE;
        started += state == BUS_LINE_COOKING || state == BUS_LINE_DONE;
    }
    bus_status_t to = order->status;
    if (live == 0)
        to = BUS_STATUS_CANCELLED;
    else if (done == live)
        to = BUS_STATUS_READY;
    else if (started || order->status == BUS_STATUS_READY)
        to = BUS_STATUS_PREPARING;
    if (to == order->status)
        return;
    if (order->status == BUS_STATUS_READY)   //  recalled: not ready now
        order->status_ms[BUS_STATUS_READY] = 0;
    //  a recall keeps the time the kitchen first started it (its timer)
    if (to != BUS_STATUS_PREPARING || !order->status_ms[to])
        order->status_ms[to] = now;
    order->status = to;
}

static int
s_version_check (const bus_order_t *order, uint32_t version, char *err,
                 size_t err_cap)
{
    if (!version || version == order->version)
        return 0;
    snprintf (err, err_cap,
              "version: the order is at version %u, not %u; "
              "reload it and try again",
              order->version, version);
    return BUS_ERR_CONFLICT;
}

//  Whether `to` moves line: a bump (done) or a void moves any line not
//  voided and not there; a recall (cooking, new) only one past it, so
//  that an unbump never moves a line forward.
static bool
s_moves (const bus_line_t *line, bus_line_state_t to)
{
    if (line->state == BUS_LINE_VOIDED || line->state == (uint32_t) to)
        return false;
    if (to == BUS_LINE_NEW || to == BUS_LINE_COOKING)
        return line->state > (uint32_t) to;
    return true;
}

//  Move one line (line_id) to `to`.  0, or the error in err.
static int
s_line_move (bus_order_t *order, uint32_t line_id, bus_line_state_t to,
             const char *reason, int64_t now, char *err, size_t err_cap)
{
    bus_line_t *line = NULL;
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++)
        if (order->lines[i].line_id == line_id)
            line = &order->lines[i];
    if (!line) {
        snprintf (err, err_cap, "line_id: order %" PRIu64 " has no line %u",
                  order->id, line_id);
        return BUS_ERR_NOT_FOUND;
    }
    if (line->state == BUS_LINE_VOIDED || line->state == (uint32_t) to) {
        snprintf (err, err_cap, "line_id: line %u is already %s", line_id,
                  bus_line_state_name ((bus_line_state_t) line->state));
        return BUS_ERR_CONFLICT;
    }
    if (!s_moves (line, to)) {
        snprintf (err, err_cap,
                  "line_id: line %u is %s; a recall to %s moves only a line "
                  "past it",
                  line_id, bus_line_state_name ((bus_line_state_t) line->state),
                  bus_line_state_name (to));
        return BUS_ERR_CONFLICT;
    }
    s_line_set (line, to, reason, now);
    return 0;
}

//  Move every line of station that is not voided to `to`.
static int
s_station_move (bus_order_t *order, const char *station, bus_line_state_t to,
                int64_t now, char *err, size_t err_cap)
{
    uint32_t lines = 0, moved = 0;
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++) {
        bus_line_t *line = &order->lines[i];
        if (strcmp (line->station, station) != 0)
            continue;
        lines++;
        if (s_moves (line, to)) {
            s_line_set (line, to, NULL, now);
            moved++;
        }
    }
    if (lines == 0) {
        snprintf (err, err_cap,
                  "station: order %" PRIu64 " has no line of station '%s'",
                  order->id, station);
        return BUS_ERR_NOT_FOUND;
    }
    if (moved == 0) {
        snprintf (err, err_cap,
                  "station: no line of '%s' can become %s (already there, "
                  "voided, or, for a recall, not past it)",
                  station, bus_line_state_name (to));
        return BUS_ERR_CONFLICT;
    }
    return 0;
}

int
bus_order_lines_move (bus_order_t *order, uint32_t line_id, const char *station,
                      bus_line_state_t to, const char *reason, uint32_t version,
                      int64_t now, char *err, size_t err_cap)
{
    int rc = s_version_check (order, version, err, err_cap);
    if (rc)
        return rc;
    if (!bus_line_state_name (to)) {
        snprintf (err, err_cap, "state: must be new, cooking, done or voided");
        return BUS_ERR_INVALID;
    }
    if (to == BUS_LINE_VOIDED && !line_id) {
        snprintf (err, err_cap, "station: a void names one line");
        return BUS_ERR_INVALID;
    }
    if (to == BUS_LINE_VOIDED
        && (!reason || !*reason || strlen (reason) >= BUS_REASON_MAX
            || !bus_valid_text (reason))) {
        snprintf (err, err_cap, "reason: %s", BUS_RULE_REASON);
        return BUS_ERR_INVALID;
    }
    if (!bus_status_is_open (order->status)) {
        snprintf (err, err_cap,
                  "status: the order is %s; its lines cannot "
                  "change",
                  bus_status_name (order->status));
        return BUS_ERR_CONFLICT;
    }
    //  Every refusal below comes before any line changes
    bus_order_lines_settle (order);
    rc = line_id ? s_line_move (order, line_id, to, reason, now, err, err_cap)
                 : s_station_move (order, station ? station : "", to, now, err,
                                   err_cap);
    if (rc)
        return rc;
    s_status_follow_lines (order, now);
    order->version++;
    order->updated_ms = now;
    return 0;
}

int
bus_order_move (bus_order_t *order, bus_status_t to, uint32_t version,
                int64_t now, char *err, size_t err_cap)
{
    int rc = s_version_check (order, version, err, err_cap);
    if (rc)
        return rc;
    if (!bus_status_can_move (order->status, to)) {
        snprintf (err, err_cap, "status: the order is %s and cannot become %s",
                  bus_status_name (order->status),
                  bus_status_name (to) ? bus_status_name (to) : "that");
        return BUS_ERR_CONFLICT;
    }
    s_lines_follow_status (order, to, now);
    order->status = to;
    order->version++;
    order->updated_ms = now;
    order->status_ms[to] = now;
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

static const char *s_test_menu =
    "{\"categories\":[{\"id\":\"mains\",\"name\":\"Mains\",\"items\":["
    "{\"id\":\"burger\",\"name\":\"Burger\",\"price_cents\":1650,"
    "\"station\":\"grill\",\"modifiers\":["
    "{\"id\":\"cheese\",\"name\":\"Extra cheese\",\"price_cents\":150},"
    "{\"id\":\"no-bun\",\"name\":\"No bun\",\"price_cents\":-200}]},"
    "{\"id\":\"soup\",\"name\":\"Soup\",\"price_cents\":950,"
    "\"available\":false}]}]}";

static void
s_test_pricing (bus_menu_t *menu)
{
    bus_line_t lines[2];
    memset (lines, 0, sizeof lines);
    strcpy (lines[0].item_id, "burger");
    lines[0].qty = 2;
    lines[0].mod_count = 2;
    strcpy (lines[0].mods[0].id, "cheese");
    strcpy (lines[0].mods[1].id, "no-bun");
    strcpy (lines[1].item_id, "burger");
    lines[1].qty = 1;
    char err[200];
    assert (bus_order_price (menu, lines, 2, lines, err, sizeof err) == 0);
    assert (lines[0].unit_cents == 1650 + 150 - 200 && lines[0].line_id == 1);
    assert (strcmp (lines[0].mods[0].name, "Extra cheese") == 0);
    assert (strcmp (lines[0].station, "grill") == 0 && lines[1].line_id == 2);
    assert (bus_order_subtotal (lines, 2) == 2 * 1600 + 1650);

    strcpy (lines[1].mods[0].id, "bacon");
    lines[1].mod_count = 1;
    assert (bus_order_price (menu, lines, 2, lines, err, sizeof err)
            == BUS_ERR_INVALID);
    assert (strstr (err, "items[1].modifiers[0]"));
    strcpy (lines[1].item_id, "soup");
    assert (bus_order_price (menu, lines, 2, lines, err, sizeof err)
            == BUS_ERR_UNAVAILABLE_ITEM);
    strcpy (lines[1].item_id, "unicorn");
    assert (bus_order_price (menu, lines, 2, lines, err, sizeof err)
            == BUS_ERR_UNKNOWN_ITEM);
    assert (strstr (err, "items[1].item_id"));
    assert (bus_order_price (NULL, lines, 1, lines, err, sizeof err)
            == BUS_ERR_UNKNOWN_ITEM);

    //  Open menu: by name when it is a dish, free text when it is not
    memset (lines, 0, sizeof lines);
    strcpy (lines[0].item_id, BUS_CUSTOM_ITEM);
    strcpy (lines[0].name, "BURGER");
    lines[0].qty = 3;
    strcpy (lines[1].item_id, BUS_CUSTOM_ITEM);
    strcpy (lines[1].name, "Ice Cream Sundae");
    lines[1].qty = 1;
    assert (bus_order_price_open (menu, lines, 2, lines, err, sizeof err) == 0);
    assert (strcmp (lines[0].item_id, "burger") == 0
            && lines[0].unit_cents == 1650);
    assert (strcmp (lines[0].name, "Burger") == 0 && lines[0].line_id == 1);
    assert (strcmp (lines[1].item_id, BUS_CUSTOM_ITEM) == 0);
    assert (strcmp (lines[1].name, "Ice Cream Sundae") == 0);
    assert (lines[1].unit_cents == 0 && lines[1].line_id == 2);
    strcpy (lines[0].item_id, BUS_CUSTOM_ITEM);
    strcpy (lines[0].name, "soup");   //  a dish, but 86'd
    assert (bus_order_price_open (menu, lines, 1, lines, err, sizeof err)
            == BUS_ERR_UNAVAILABLE_ITEM);
}

static void
s_test_tax (void)
{
    bus_order_t order;
    memset (&order, 0, sizeof order);
    order.line_count = 1;
    order.lines[0].qty = 3;
    order.lines[0].unit_cents = 1000;
    bus_order_total (&order, 875);   //  8.75% of 30.00 = 2.625
    assert (order.subtotal_cents == 3000 && order.tax_cents == 263);
    assert (order.total_cents == 3263);
    order.lines[0].unit_cents = 20;   //  8.75% of 0.60 = 0.0525
    bus_order_total (&order, 875);
    assert (order.tax_cents == 5 && order.total_cents == 65);
    bus_order_total (&order, 0);
    assert (order.tax_cents == 0 && order.total_cents == 60);
}

static void
s_test_lifecycle (void)
{
    bus_order_t order;
    memset (&order, 0, sizeof order);
    order.status = BUS_STATUS_PLACED;
    order.version = 1;
    char err[200];
    assert (bus_order_move (&order, BUS_STATUS_READY, 0, 5, err, sizeof err)
            == BUS_ERR_CONFLICT);
    assert (strstr (err, "is placed"));
    assert (bus_order_move (&order, BUS_STATUS_ACCEPTED, 2, 5, err, sizeof err)
            == BUS_ERR_CONFLICT);
    assert (strstr (err, "version 1"));
    assert (bus_order_move (&order, BUS_STATUS_ACCEPTED, 1, 10, err, sizeof err)
            == 0);
    assert (order.version == 2 && order.status_ms[BUS_STATUS_ACCEPTED] == 10);
    assert (
        bus_order_move (&order, BUS_STATUS_PREPARING, 0, 20, err, sizeof err)
        == 0);
    assert (
        bus_order_move (&order, BUS_STATUS_CANCELLED, 0, 30, err, sizeof err)
        == BUS_ERR_CONFLICT);
    assert (bus_order_move (&order, BUS_STATUS_READY, 3, 40, err, sizeof err)
            == 0);
    assert (bus_order_move (&order, BUS_STATUS_SERVED, 0, 50, err, sizeof err)
            == 0);
    assert (bus_order_move (&order, BUS_STATUS_SERVED, 0, 60, err, sizeof err)
            == BUS_ERR_CONFLICT);
    assert (order.version == 5 && order.updated_ms == 50);
    for (int from = BUS_STATUS_PLACED; from <= BUS_STATUS_CANCELLED; from++)
        for (int to = BUS_STATUS_PLACED; to <= BUS_STATUS_CANCELLED; to++) {
            bool legal =
                (to == from + 1 && to <= BUS_STATUS_SERVED)
                || (to == BUS_STATUS_CANCELLED && from <= BUS_STATUS_ACCEPTED);
            assert (bus_status_can_move ((bus_status_t) from, (bus_status_t) to)
                    == legal);
        }
}

//  An order of four lines: 1 and 2 on grill, 3 on fry, 4 on cold
static void
s_test_lines_order (bus_order_t *order)
{
    memset (order, 0, sizeof *order);
    order->id = 7;
    order->status = BUS_STATUS_PLACED;
    order->version = 1;
    order->line_count = 4;
    const char *stations[] = { "grill", "grill", "fry", "cold" };
    for (uint32_t i = 0; i < 4; i++) {
        order->lines[i].line_id = i + 1;
        order->lines[i].qty = 1;
        order->lines[i].unit_cents = 100 * (i + 1);
        strcpy (order->lines[i].station, stations[i]);
    }
}

static bus_line_state_t
s_state (const bus_order_t *order, uint32_t line_id)
{
    return bus_line_state_in (&order->lines[line_id - 1], order->status);
}

static void
s_test_lines (void)
{
    bus_order_t order;
    char err[200];
    s_test_lines_order (&order);
    //  Stored before lines had states: they read as the status implies
    assert (s_state (&order, 1) == BUS_LINE_NEW);
    order.status = BUS_STATUS_READY;
    assert (s_state (&order, 1) == BUS_LINE_DONE);
    order.status = BUS_STATUS_PLACED;

    //  A station bump marks only its lines; the order is preparing
    assert (bus_order_lines_move (&order, 0, "grill", BUS_LINE_DONE, NULL, 1,
                                  10, err, sizeof err)
            == 0);
    assert (s_state (&order, 1) == BUS_LINE_DONE
            && s_state (&order, 2) == BUS_LINE_DONE);
    assert (s_state (&order, 3) == BUS_LINE_NEW
            && s_state (&order, 4) == BUS_LINE_NEW);
    assert (order.status == BUS_STATUS_PREPARING && order.version == 2);
    assert (order.lines[0].state_ms == 10
            && order.status_ms[BUS_STATUS_PREPARING] == 10);
    //  Again: nothing to bump; a stale version; no such station or line
    assert (bus_order_lines_move (&order, 0, "grill", BUS_LINE_DONE, NULL, 0,
                                  11, err, sizeof err)
            == BUS_ERR_CONFLICT);
    assert (strstr (err, "station: "));
    assert (bus_order_lines_move (&order, 0, "fry", BUS_LINE_DONE, NULL, 1, 11,
                                  err, sizeof err)
            == BUS_ERR_CONFLICT);
    assert (strstr (err, "version: "));
    assert (bus_order_lines_move (&order, 0, "pastry", BUS_LINE_DONE, NULL, 0,
                                  11, err, sizeof err)
            == BUS_ERR_NOT_FOUND);
    assert (strstr (err, "station: "));
    assert (bus_order_lines_move (&order, 9, NULL, BUS_LINE_DONE, NULL, 0, 11,
                                  err, sizeof err)
            == BUS_ERR_NOT_FOUND);
    assert (strstr (err, "line_id: "));
    assert (order.version == 2);

    //  Ready only when every line is done
    assert (bus_order_lines_move (&order, 3, NULL, BUS_LINE_DONE, NULL, 0, 20,
                                  err, sizeof err)
            == 0);
    assert (order.status == BUS_STATUS_PREPARING);
    assert (bus_order_lines_move (&order, 0, "cold", BUS_LINE_DONE, NULL, 0, 30,
                                  err, sizeof err)
            == 0);
    assert (order.status == BUS_STATUS_READY
            && order.status_ms[BUS_STATUS_READY] == 30);
    //  A recall takes it back to preparing, keeping its first start
    assert (bus_order_lines_move (&order, 0, "grill", BUS_LINE_COOKING, NULL, 0,
                                  40, err, sizeof err)
            == 0);
    assert (order.status == BUS_STATUS_PREPARING
            && order.status_ms[BUS_STATUS_READY] == 0
            && order.status_ms[BUS_STATUS_PREPARING] == 10);
    assert (s_state (&order, 1) == BUS_LINE_COOKING
            && s_state (&order, 3) == BUS_LINE_DONE);

    //  A void needs a reason, names one line, takes it off the bill
    assert (bus_order_lines_move (&order, 1, NULL, BUS_LINE_VOIDED, "", 0, 50,
                                  err, sizeof err)
            == BUS_ERR_INVALID);
    assert (strstr (err, "reason: "));
    char long_reason[BUS_REASON_MAX + 1];
    memset (long_reason, 'x', BUS_REASON_MAX);
    long_reason[BUS_REASON_MAX] = '\0';
    assert (bus_order_lines_move (&order, 1, NULL, BUS_LINE_VOIDED, long_reason,
                                  0, 50, err, sizeof err)
            == BUS_ERR_INVALID);
    assert (bus_order_lines_move (&order, 0, "grill", BUS_LINE_VOIDED, "86", 0,
                                  50, err, sizeof err)
            == BUS_ERR_INVALID);
    assert (s_state (&order, 1) == BUS_LINE_COOKING);
    assert (bus_order_lines_move (&order, 1, NULL, BUS_LINE_VOIDED,
                                  "guest left", 0, 50, err, sizeof err)
            == 0);
    assert (strcmp (order.lines[0].reason, "guest left") == 0);
    assert (bus_order_subtotal (order.lines, 4) == 200 + 300 + 400);
    assert (bus_order_lines_move (&order, 1, NULL, BUS_LINE_DONE, NULL, 0, 55,
                                  err, sizeof err)
            == BUS_ERR_CONFLICT);
    //  The last live line done: ready, voided lines aside
    assert (bus_order_lines_move (&order, 2, NULL, BUS_LINE_DONE, NULL, 0, 60,
                                  err, sizeof err)
            == 0);
    assert (order.status == BUS_STATUS_READY);
    //  Served: its lines no longer change
    assert (bus_order_move (&order, BUS_STATUS_SERVED, 0, 70, err, sizeof err)
            == 0);
    assert (bus_order_lines_move (&order, 2, NULL, BUS_LINE_COOKING, NULL, 0,
                                  80, err, sizeof err)
            == BUS_ERR_CONFLICT);
    assert (strstr (err, "status: "));

    //  Every line voided: the order is cancelled
    s_test_lines_order (&order);
    for (uint32_t id = 1; id <= 4; id++)
        assert (bus_order_lines_move (&order, id, NULL, BUS_LINE_VOIDED, "x", 0,
                                      90, err, sizeof err)
                == 0);
    assert (order.status == BUS_STATUS_CANCELLED && order.version == 5);
    assert (bus_order_subtotal (order.lines, 4) == 0);

    //  Order-level moves apply to every line
    s_test_lines_order (&order);
    assert (bus_order_move (&order, BUS_STATUS_ACCEPTED, 0, 1, err, sizeof err)
            == 0);
    assert (s_state (&order, 1) == BUS_LINE_NEW);
    assert (bus_order_move (&order, BUS_STATUS_PREPARING, 0, 2, err, sizeof err)
            == 0);
    for (uint32_t id = 1; id <= 4; id++)
        assert (s_state (&order, id) == BUS_LINE_COOKING);
    assert (bus_order_move (&order, BUS_STATUS_READY, 0, 3, err, sizeof err)
            == 0);
    for (uint32_t id = 1; id <= 4; id++)
        assert (s_state (&order, id) == BUS_LINE_DONE
                && order.lines[id - 1].state_ms == 3);
    s_test_lines_order (&order);
    assert (bus_order_move (&order, BUS_STATUS_CANCELLED, 0, 4, err, sizeof err)
            == 0);
    for (uint32_t id = 1; id <= 4; id++)
        assert (s_state (&order, id) == BUS_LINE_VOIDED);
}

void
bus_order_test (bool verbose)
{
    char err[200];
    bus_menu_t *menu =
        bus_menu_new (s_test_menu, strlen (s_test_menu), err, sizeof err);
    assert (menu);
    s_test_pricing (menu);
    s_test_tax ();
    s_test_lifecycle ();
    s_test_lines ();
    bus_menu_destroy (&menu);
    if (verbose)
        printf (" * bus_order: pricing, tax, lifecycle, line states\n");
}
