/*  bus_cart.h — the rules of a table's shared cart.  Pure functions on a
    bus_cart_t; every change bumps the version and the time, and keeps the
    subtotal true.  Lines are priced by bus_order_price before they go in.  */

#ifndef BUS_CART_H_INCLUDED
#define BUS_CART_H_INCLUDED

#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Make cart the empty, never-used cart of table.  */
void bus_cart_init (bus_cart_t *cart, const char *table);

/*  Add a priced line; it gets the next line id.  0, or BUS_ERR_INVALID
    with a message if the cart already holds BUS_LINES_MAX lines.  */
int bus_cart_add (bus_cart_t *cart, const bus_line_t *line, int64_t now,
                  char *err, size_t err_cap);

/*  Set line line_id's quantity; 0 removes the line.  0, or
    BUS_ERR_NOT_FOUND with a message if the cart has no such line.  */
int bus_cart_set_qty (bus_cart_t *cart, uint32_t line_id, uint32_t qty,
                      int64_t now, char *err, size_t err_cap);

/*  Remove every line.  */
void bus_cart_clear (bus_cart_t *cart, int64_t now);

/*  Selftest.  */
void bus_cart_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
