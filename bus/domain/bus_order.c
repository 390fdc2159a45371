/*  bus_order.c — pricing, tax and lifecycle of an order.  */

#include <assert.h>
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

int
bus_order_move (bus_order_t *order, bus_status_t to, uint32_t version,
                int64_t now, char *err, size_t err_cap)
{
    if (version && version != order->version) {
        snprintf (err, err_cap,
                  "version: the order is at version %u, not %u; "
                  "reload it and try again",
                  order->version, version);
        return BUS_ERR_CONFLICT;
    }
    if (!bus_status_can_move (order->status, to)) {
        snprintf (err, err_cap, "status: the order is %s and cannot become %s",
                  bus_status_name (order->status),
                  bus_status_name (to) ? bus_status_name (to) : "that");
        return BUS_ERR_CONFLICT;
    }
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
    bus_menu_destroy (&menu);
    if (verbose)
        printf (" * bus_order: pricing, tax, lifecycle\n");
}
