/*  bus_json.h — the HTTP/WebSocket JSON shapes, built with jansson.

    Order JSON (native API, WebSocket):
      {"id": 12, "seq": 40, "version": 1, "status": "placed",
       "table": "T12", "note": "", "idempotency_key": "pad-7-0001",
       "origin": "patio", "created_ms": 1767000000000, "updated_ms": ...,
       "total_cents": 2500,
       "items": [{"item_id": "burger", "name": "Classic Burger",
                  "quantity": 2, "unit_cents": 1250, "line_cents": 2500,
                  "note": "no onions"}]}

    Order request body (POST /api/v1/orders):
      {"table": "T12", "note": "optional",
       "items": [{"item_id": "burger", "quantity": 2, "note": "optional"}]}
    Unknown keys are rejected, so a typo ("quantiy") is an error that names
    the field rather than a silently ignored one.  */

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

/*  New WebSocket event message:
      {"type": "event", "seq": N, "ts_ms": T, "event": "order.placed",
       "order": {...}}
    Caller owns.  */
json_t *bus_json_event (const bus_event_t *event);

/*  Parse an order request body of len bytes into cmd (type, table, note,
    lines; key and origin are left as they were).  Returns 0, or
    BUS_ERR_MALFORMED (not JSON / not an object) or BUS_ERR_INVALID (a field
    is missing, of the wrong type, out of range or unknown), with *error
    filled in.  Item ids are checked for form here, not against a menu.  */
int bus_json_place_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                        bus_json_error_t *error);

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
