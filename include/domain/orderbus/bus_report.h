/*  bus_report.h — what a manager asks of the orders of a time range: the
    summary report (orders and revenue per hour, top items, revenue by
    table, ticket times) and the CSV export of the orders themselves.

    Report JSON (docs/reports.md explains every field):
      {"from_ms": F, "to_ms": T, "orders": 41, "cancelled": 2,
       "revenue_cents": 123456, "subtotal_cents": 113500, "tax_cents": 9956,
       "per_hour": [{"hour_ms": H, "orders": 12, "revenue_cents": 40100}],
       "top_items": [{"item_id": "burger", "name": "Burger", "quantity": 30,
                      "revenue_cents": 52500}],
       "by_table": [{"table": "T12", "orders": 5, "revenue_cents": 20300}],
       "ticket_ms": {"count": 35, "median": 540000, "p90": 900000}}
    Cancelled orders count only in "cancelled"; every other figure is of
    the orders that were not cancelled.  Times are ms since the epoch, UTC.

    Cost: bus_report_add is O(lines of the order) (hash tables keyed by
    item, table and hour); memory is O(distinct items + tables + hours)
    plus 8 bytes per order that reached ready; bus_report_json sorts, in
    O(n log n) of each of those.  */

#ifndef BUS_REPORT_H_INCLUDED
#define BUS_REPORT_H_INCLUDED

#include <stdio.h>
#include <jansson.h>
#include "orderbus/bus_model.h"
#include "orderbus/bus_store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_REPORT_TOP_ITEMS 10 /* entries in "top_items"              */
#define BUS_REPORT_TIME_MAX  32 /* bus_report_time_format's buffer     */

typedef struct _bus_report_t bus_report_t;

/*  New, empty report of the orders created in [from_ms, to_ms).  Returns
    NULL if the range is empty or negative (0 <= from_ms < to_ms is
    required) or memory ran out.  */
bus_report_t *bus_report_new (int64_t from_ms, int64_t to_ms);

/*  Destroy the report.  NULL-safe; sets *self_p to NULL.  */
void bus_report_destroy (bus_report_t **self_p);

/*  Count one order.  Orders created outside the range are ignored, so a
    caller may feed more than the range.  Feed each order once, in any
    order.  If memory runs out the report is spoilt and bus_report_json
    returns NULL.  */
void bus_report_add (bus_report_t *self, const bus_order_t *order);

/*  Add every order of store created in the range, all read in one read
    transaction (one consistent state).  0, or a bus_err_t of the store;
    BUS_ERR_NOMEM if memory ran out.  */
int bus_report_load (bus_report_t *self, bus_store_t *store);

/*  New JSON object with the report as above.  Caller owns (json_decref).
    NULL if memory ran out, now or in an earlier bus_report_add.  */
json_t *bus_report_json (bus_report_t *self);

/*  ---- CSV export (RFC 4180: CRLF line ends; a field with a comma, a
    quote, CR or LF is quoted, its quotes doubled) --------------------- */

/*  The header row, without its CRLF.  */
#define BUS_REPORT_CSV_HEADER                                           \
    "order_id,created_utc,table,status,items,subtotal_cents,tax_cents," \
    "total_cents,placed_ms,ready_ms,served_ms,idempotency_key"

/*  Write the header row, then one row per order, to out.  A row's items
    read "2x Burger [Extra cheese, Bacon] (note: no onions); 1x Fries";
    placed_ms, ready_ms and served_ms are empty for a status the order has
    not reached.  Write errors are left in out for ferror.  The row
    returns 0, or BUS_ERR_NOMEM (nothing was written).  */
void bus_report_csv_header (FILE *out);
int bus_report_csv_row (FILE *out, const bus_order_t *order);

/*  ---- Times ---------------------------------------------------------- */

/*  Parse a time given on a command line or in a query: milliseconds since
    the epoch (digits only), or UTC as YYYY-MM-DD (midnight),
    YYYY-MM-DDTHH:MMZ, YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DDTHH:MM:SS.mmmZ
    (as bus_report_time_format writes it), years 1970..9999.  0 and *ms
    set, or BUS_ERR_INVALID.  */
int bus_report_time_parse (const char *text, int64_t *ms);

/*  Write ms as ISO 8601 UTC with milliseconds, "2026-01-05T12:34:56.789Z",
    into buf and return buf.  */
char *bus_report_time_format (int64_t ms, char buf[BUS_REPORT_TIME_MAX]);

/*  Selftest.  */
void bus_report_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
