/*  bus_cart.c — a table's shared cart.  */

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "orderbus/bus_cart.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_order.h"

void
bus_cart_init (bus_cart_t *cart, const char *table)
{
    bus_strlcpy (cart->table, table, sizeof cart->table);
    cart->version = 0;
    cart->next_line_id = 1;
    cart->updated_ms = 0;
    cart->subtotal_cents = 0;
    cart->line_count = 0;
}

static void
s_changed (bus_cart_t *cart, int64_t now)
{
    cart->version++;
    cart->updated_ms = now;
    cart->subtotal_cents = bus_order_subtotal (cart->lines, cart->line_count);
}

int
bus_cart_add (bus_cart_t *cart, const bus_line_t *line, int64_t now, char *err,
              size_t err_cap)
{
    if (cart->line_count == BUS_LINES_MAX) {
        snprintf (err, err_cap,
                  "items: the cart is full (%d lines); order "
                  "or remove some first",
                  BUS_LINES_MAX);
        return BUS_ERR_INVALID;
    }
    bus_line_t *slot = &cart->lines[cart->line_count++];
    *slot = *line;
    slot->line_id = cart->next_line_id++;
    s_changed (cart, now);
    return 0;
}

int
bus_cart_set_qty (bus_cart_t *cart, uint32_t line_id, uint32_t qty, int64_t now,
                  char *err, size_t err_cap)
{
    for (uint32_t i = 0; i < cart->line_count; i++) {
        if (cart->lines[i].line_id != line_id)
            continue;
        if (qty)
            cart->lines[i].qty = qty;
        else {   //  keep the others in the order they were added
            memmove (&cart->lines[i], &cart->lines[i + 1],
                     (cart->line_count - i - 1) * sizeof cart->lines[0]);
            cart->line_count--;
        }
        s_changed (cart, now);
        return 0;
    }
    snprintf (err, err_cap, "line_id: the cart of table %s has no line %u",
              cart->table, line_id);
    return BUS_ERR_NOT_FOUND;
}

void
bus_cart_clear (bus_cart_t *cart, int64_t now)
{
    cart->line_count = 0;
    s_changed (cart, now);
}

//  --------------------------------------------------------------------------
//  Selftest

static bus_line_t
s_test_line (const char *item, uint32_t qty, int64_t cents)
{
    bus_line_t line;
    memset (&line, 0, sizeof line);
    strcpy (line.item_id, item);
    line.qty = qty;
    line.unit_cents = cents;
    return line;
}

void
bus_cart_test (bool verbose)
{
    static bus_cart_t cart;
    char err[200];
    bus_cart_init (&cart, "T7");
    assert (strcmp (cart.table, "T7") == 0 && cart.version == 0
            && !cart.line_count);
    bus_line_t fries = s_test_line ("fries", 2, 550);
    bus_line_t cola = s_test_line ("cola", 1, 300);
    assert (bus_cart_add (&cart, &fries, 10, err, sizeof err) == 0);
    assert (bus_cart_add (&cart, &cola, 20, err, sizeof err) == 0);
    assert (cart.version == 2 && cart.updated_ms == 20);
    assert (cart.lines[0].line_id == 1 && cart.lines[1].line_id == 2);
    assert (cart.subtotal_cents == 1400);

    assert (bus_cart_set_qty (&cart, 2, 3, 30, err, sizeof err) == 0);
    assert (cart.subtotal_cents == 1100 + 900 && cart.version == 3);
    assert (bus_cart_set_qty (&cart, 9, 1, 40, err, sizeof err)
            == BUS_ERR_NOT_FOUND);
    assert (strstr (err, "no line 9") && cart.version == 3);
    assert (bus_cart_set_qty (&cart, 1, 0, 50, err, sizeof err) == 0);
    assert (cart.line_count == 1 && cart.lines[0].line_id == 2);
    //  line ids are never reused while the cart lives
    assert (bus_cart_add (&cart, &fries, 60, err, sizeof err) == 0);
    assert (cart.lines[1].line_id == 3);

    bus_cart_clear (&cart, 70);
    assert (cart.line_count == 0 && cart.subtotal_cents == 0);
    assert (cart.version == 6);
    for (int i = 0; i < BUS_LINES_MAX; i++)
        assert (bus_cart_add (&cart, &cola, 80, err, sizeof err) == 0);
    assert (bus_cart_add (&cart, &cola, 90, err, sizeof err)
            == BUS_ERR_INVALID);
    assert (strstr (err, "full"));
    if (verbose)
        printf (" * bus_cart: add, quantity, remove, clear, full\n");
}
