/*  bus_json.h — the HTTP/WebSocket JSON shapes, built with jansson.

    Line JSON (in orders and carts):
      {"line_id": 1, "item_id": "burger", "name": "Burger", "station": "grill",
       "quantity": 2, "unit_cents": 1800, "line_cents": 3600,
       "note": "no onions",
       "modifiers": [{"id": "cheese", "name": "Extra cheese",
                      "delta_cents": 150}]}
    unit_cents is the item's price plus its modifiers' deltas.

    Order JSON (native API, WebSocket):
      {"id": 12, "seq": 40, "version": 1, "status": "placed",
       "table": "T12", "note": "", "idempotency_key": "pad-7-0001",
       "origin": "patio", "created_ms": 1767000000000, "updated_ms": ...,
       "status_times": {"placed": 1767000000000, ...only statuses reached},
       "subtotal_cents": 3600, "tax_cents": 315, "total_cents": 3915,
       "items": [<line>, ...]}

    Cart JSON:
      {"table": "T12", "version": 3, "updated_ms": ..., "subtotal_cents": 3600,
       "items": [<line>, ...]}

    Request bodies (unknown keys are rejected, so a typo such as "quantiy"
    is an error that names the field rather than a silently ignored one):
      order:        {"table": "T12", "note": "optional",
                     "items": [<line request>, ...1..50]}
      line request: {"item_id": "burger", "quantity": 2, "note": "optional",
                     "modifiers": ["cheese", ...0..6 distinct ids, optional]}
      status:       {"status": "accepted", "version": 3 (optional)}
      quantity:     {"quantity": 0..99}          (0 removes the line)
      availability: {"available": false}
      cart order:   {"note": "optional", "version": 3 (optional)}  */

#ifndef BUS_JSON_H_INCLUDED
#define BUS_JSON_H_INCLUDED

#include <jansson.h>
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Where and why a request body was rejected.  field is a JSON path such as
    "items[1].quantity" ("" for the document itself); message is a sentence
    for a person.  */
typedef struct {
    char field[64];
    char message[BUS_ERROR_MAX];
} bus_json_error_t;

/*  New JSON object for an order.  Caller owns (json_decref).  */
json_t *bus_json_order (const bus_order_t *order);

/*  Write an order's JSON text into buf[cap], without a trailing NUL: the
    same text as bus_json_dump (bus_json_order (order)), made without a
    tree.  Returns the text's length; if that is more than cap, buf holds
    only its start: call again with a buffer that size.  0 if a string of
    the order is not UTF-8 (bus_json_order gives NULL then).  */
size_t bus_json_order_write (const bus_order_t *order, char *buf, size_t cap);

/*  New JSON object for a cart.  Caller owns.  */
json_t *bus_json_cart (const bus_cart_t *cart);

/*  New WebSocket event message:
      {"type": "event", "seq": N, "ts_ms": T, "event": "order.placed",
       "order": {...}}                       order.placed, order.status
      {..., "event": "cart.updated", "cart": {...}}
      {..., "event": "menu.item", "item": {"id": "fries", "available": false}}
    Caller owns.  */
json_t *bus_json_event (const bus_event_t *event);

/*  Each parser reads a request body of len bytes (not necessarily
    NUL-terminated) into the fields of cmd its shape carries (above); it
    sets cmd->type and leaves every other field as it was.  Returns 0, or
    BUS_ERR_MALFORMED (not JSON / not an object) or BUS_ERR_INVALID (a
    field is missing, of the wrong type, out of range or unknown), with
    *error filled in.  Item and modifier ids are checked for form here, not
    against a menu.  */
int
bus_json_place_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                    bus_json_error_t *error); /* PLACE: table, note, lines */
int bus_json_line_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                       bus_json_error_t *error); /* CART_ADD: lines[0] */
int
bus_json_status_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                     bus_json_error_t *error); /* SET_STATUS: status, version */
int bus_json_qty_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                      bus_json_error_t *error); /* CART_SET_QTY: qty */
int bus_json_availability_cmd (
    const char *body, size_t len, bus_cmd_t *cmd,
    bus_json_error_t *error); /* AVAILABILITY: available */
int bus_json_cart_place_cmd (
    const char *body, size_t len, bus_cmd_t *cmd,
    bus_json_error_t *error); /* CART_PLACE: note, version */
/*  LINE_STATE (issue 17); the path names the order and the line or the
    station.  bump: {version?} -> done; unbump: {version?, to?: "cooking"
    (default) or "new"}; void: {reason: 1..120 bytes, version?} ->
    voided, the reason in cmd->note.  */
int bus_json_bump_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                       bus_json_error_t *error);
int bus_json_unbump_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                         bus_json_error_t *error);
int bus_json_void_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                       bus_json_error_t *error);

#define BUS_JSON_DEPTH_MAX 32 /* deepest request body accepted */

/*  True if the JSON text of len bytes nests arrays and objects at most
    max deep.  jansson parses by recursion and accepts 2048 levels, which
    a worker thread's stack does not survive, so every request body is
    measured first.  This only counts brackets outside strings; it is not
    a parser, and says nothing else about the text.  */
bool bus_json_depth_ok (const char *text, size_t len, int max);

/*  New error body {"error": {"code": code, "message": message,
    "field": field}}; field is omitted when NULL or "".  Caller owns.  */
json_t *bus_json_error (const char *code, const char *message,
                        const char *field);

/*  Serialize compactly; returns a new string (caller frees) or NULL.  */
char *bus_json_dump (const json_t *json);

/*  Selftest.  */
void bus_json_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
