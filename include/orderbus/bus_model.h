/*  bus_model.h — the order bus's nouns: lines, orders, commands, events, acks.

    Plain structs with fixed-size fields.  The bounds below are product
    rules (a pad cannot send a 10 KB note) and they make every decoder's
    limits explicit: a value that does not fit is rejected, never cut.  */

#ifndef BUS_MODEL_H_INCLUDED
#define BUS_MODEL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Capacities include the terminating NUL.  */
#define BUS_ID_MAX 33      /* menu item id: 1..32 chars [A-Za-z0-9_.-]      */
#define BUS_NAME_MAX 81    /* menu item display name, node names            */
#define BUS_TABLE_MAX 33   /* table label: 1..32 printable chars            */
#define BUS_KEY_MAX 129    /* idempotency key: 1..128 printable ASCII chars */
#define BUS_NOTE_MAX 281   /* free-text note: 0..280 bytes of UTF-8         */
#define BUS_ERROR_MAX 200  /* error detail carried in an ack                */
#define BUS_LINES_MAX 50   /* lines per order                               */
#define BUS_QTY_MAX 99     /* quantity per line                             */

typedef enum {
    BUS_STATUS_PLACED = 1,
    BUS_STATUS_ACCEPTED,
    BUS_STATUS_PREPARING,
    BUS_STATUS_READY,
    BUS_STATUS_SERVED,
    BUS_STATUS_CANCELLED
} bus_status_t;

/*  One line of an order.  item_id, qty and note come from the client;
    name and unit_cents are filled in by the writer from the menu.  */
typedef struct {
    char item_id[BUS_ID_MAX];
    uint32_t qty;
    char note[BUS_NOTE_MAX];
    char name[BUS_NAME_MAX];
    int64_t unit_cents;
} bus_line_t;

/*  An order as stored and published.  */
typedef struct {
    uint64_t id;            /* assigned by the writer, 1, 2, 3, ...      */
    uint64_t seq;           /* sequence of the event that last changed it */
    uint32_t version;       /* 1 at placement, +1 per change             */
    bus_status_t status;
    char table[BUS_TABLE_MAX];
    char key[BUS_KEY_MAX];  /* idempotency key that placed it            */
    char origin[BUS_NAME_MAX]; /* gateway that took it                   */
    char note[BUS_NOTE_MAX];
    int64_t created_ms;     /* writer's commit time                      */
    int64_t updated_ms;
    int64_t total_cents;    /* computed by the writer from the menu      */
    uint32_t line_count;
    bus_line_t lines[BUS_LINES_MAX];
} bus_order_t;

typedef enum { BUS_CMD_PLACE = 1 } bus_cmd_type_t;

/*  An intake command, gateway -> writer.  For BUS_CMD_PLACE the lines carry
    only item_id, qty and note; any name/price a client sent is ignored.  */
typedef struct {
    bus_cmd_type_t type;
    char key[BUS_KEY_MAX];
    char origin[BUS_NAME_MAX]; /* gateway name: the ack goes to its topic */
    char table[BUS_TABLE_MAX];
    char note[BUS_NOTE_MAX];
    uint32_t line_count;
    bus_line_t lines[BUS_LINES_MAX];
} bus_cmd_t;

typedef enum { BUS_EVENT_ORDER_PLACED = 1 } bus_event_type_t;

/*  A committed event, writer -> everyone.  seq is global and gap-free.  */
typedef struct {
    uint64_t seq;
    int64_t ts_ms;
    bus_event_type_t type;
    bus_order_t order;      /* the order's state after the event */
} bus_event_t;

/*  The writer's answer to one command, on the origin gateway's ack topic.
    status is 0 or a bus_err_t; order is meaningful only when status is 0.
    duplicate is true when the key had been used before and this is the
    original result sent again.  */
typedef struct {
    char key[BUS_KEY_MAX];
    int status;
    bool duplicate;
    char error[BUS_ERROR_MAX];
    bus_order_t order;
} bus_ack_t;

/*  Return the lower-case name of a status ("placed"), or NULL if invalid. */
const char *bus_status_name (bus_status_t status);

/*  Parse a status name; return 0 and set *status, or BUS_ERR_INVALID.  */
int bus_status_parse (const char *name, bus_status_t *status);

/*  True for statuses that still belong on a kitchen screen.  */
bool bus_status_is_open (bus_status_t status);

/*  Return the lower-case event type name ("order.placed") or NULL.  */
const char *bus_event_type_name (bus_event_type_t type);

/*  Validation of client-supplied strings.  Each returns true if the value
    is acceptable for its field as documented above.  */
bool bus_valid_item_id (const char *s);
bool bus_valid_table (const char *s);
bool bus_valid_key (const char *s);
bool bus_valid_note (const char *s);   /* valid UTF-8, no control chars */

/*  Copy src into dst[cap]; return 0, or BUS_ERR_INVALID if it does not fit
    (dst is then set to the empty string).  */
int bus_strlcpy (char *dst, const char *src, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
