/*  bus_model.h — the order bus's nouns: lines, orders, carts, commands,
    events, acks.

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
#define BUS_ID_MAX \
    33 /* ids (menu items, modifiers, stations): 1..32 chars [A-Za-z0-9_.-] */
#define BUS_NAME_MAX    81  /* display names, node names                     */
#define BUS_TABLE_MAX   33  /* table label: 1..32 printable chars, no '/'    */
#define BUS_KEY_MAX     129 /* idempotency key: 1..128 printable ASCII chars */
#define BUS_NOTE_MAX    281 /* free-text note: 0..280 bytes of UTF-8         */
#define BUS_ERROR_MAX   200 /* error detail carried in an ack                */
#define BUS_LINES_MAX   50  /* lines per order or cart                       */
#define BUS_QTY_MAX     99  /* quantity per line                             */
#define BUS_MODS_MAX    6   /* modifiers chosen per line                     */
#define BUS_CUSTOM_ITEM "custom" /* item_id of a free-text line          */
#define BUS_REASON_MAX  121      /* a line's void reason: 1..120 bytes text */

typedef enum {
    BUS_STATUS_PLACED = 1,
    BUS_STATUS_ACCEPTED,
    BUS_STATUS_PREPARING,
    BUS_STATUS_READY,
    BUS_STATUS_SERVED,
    BUS_STATUS_CANCELLED
} bus_status_t;

#define BUS_STATUS_COUNT 7 /* size of arrays indexed by bus_status_t */

/*  A line's own state in the kitchen (issue 17): its station cooks it
    (new -> cooking -> done, and back on a recall), or it is voided, for
    good.  0 is "not stated": a cart's lines, and the lines of an order
    stored before lines had states, which read as their order's status
    implies (bus_order_line_state).  Values travel on the wire: keep
    them.  */
typedef enum {
    BUS_LINE_NEW = 1,
    BUS_LINE_COOKING,
    BUS_LINE_DONE,
    BUS_LINE_VOIDED
} bus_line_state_t;

/*  A modifier chosen on a line ("extra cheese").  The client names the
    id; the writer fills name and delta_cents from the menu.  */
typedef struct {
    char id[BUS_ID_MAX];
    char name[BUS_NAME_MAX];
    int64_t delta_cents;
} bus_mod_t;

/*  One line of an order or a cart.  item_id, qty, note and the modifier
    ids come from the client (and the name, for a free-text line of an
    open-menu order); everything else is filled in by the writer from the
    menu.  line_id numbers a cart's lines (stable while the cart
    lives) and an order's lines 1..n.  */
typedef struct {
    uint32_t line_id;
    char item_id[BUS_ID_MAX];
    uint32_t qty;
    char note[BUS_NOTE_MAX];
    uint32_t mod_count;
    bus_mod_t mods[BUS_MODS_MAX];
    char name[BUS_NAME_MAX];
    char station[BUS_ID_MAX];    /* kitchen station that makes it          */
    int64_t unit_cents;          /* item price + modifier deltas           */
    uint32_t state;              /* bus_line_state_t of an order's line, 0 in
                                 a cart or a command                    */
    int64_t state_ms;            /* when the line reached its state        */
    char reason[BUS_REASON_MAX]; /* why it was voided, "" otherwise     */
} bus_line_t;

/*  An order as stored and published.  */
typedef struct {
    uint64_t id;      /* assigned by the writer, 1, 2, 3, ...      */
    uint64_t seq;     /* sequence of the event that last changed it */
    uint32_t version; /* 1 at placement, +1 per change             */
    bus_status_t status;
    char table[BUS_TABLE_MAX];
    char key[BUS_KEY_MAX];     /* idempotency key that placed it            */
    char origin[BUS_NAME_MAX]; /* gateway that took it                   */
    char note[BUS_NOTE_MAX];
    int64_t created_ms; /* writer's commit time                      */
    int64_t updated_ms;
    int64_t
        status_ms[BUS_STATUS_COUNT]; /* when each status was reached, 0 = not */
    int64_t subtotal_cents; /* sum of lines, from the menu               */
    int64_t tax_cents;      /* subtotal * tax rate, rounded half up      */
    int64_t total_cents;    /* subtotal + tax                            */
    uint32_t line_count;
    bus_line_t lines[BUS_LINES_MAX];
} bus_order_t;

/*  A table's shared cart: what the pads at that table are putting
    together before they order.  */
typedef struct {
    char table[BUS_TABLE_MAX];
    uint32_t version;      /* 0 = never used, +1 per change              */
    uint32_t next_line_id; /* line_id of the next line added             */
    int64_t updated_ms;
    int64_t subtotal_cents;
    uint32_t line_count;
    bus_line_t lines[BUS_LINES_MAX];
} bus_cart_t;

typedef enum {
    BUS_CMD_PLACE = 1,    /* table, note, lines -> order.placed              */
    BUS_CMD_SET_STATUS,   /* order_id, status, version -> order.status       */
    BUS_CMD_CART_ADD,     /* table, lines[0] -> cart.updated                 */
    BUS_CMD_CART_SET_QTY, /* table, line_id, qty (0 removes) -> cart.updated */
    BUS_CMD_CART_CLEAR,   /* table -> cart.updated                           */
    BUS_CMD_CART_PLACE,   /* table, note, version -> order.placed and
                               cart.updated (emptied), in one transaction      */
    BUS_CMD_AVAILABILITY, /* item_id, available -> menu.item                 */
    BUS_CMD_LINE_STATE    /* order_id, version, line_state, and either
                             line_id or station; note is the reason of a
                             void -> order.status (its lines' new states) */
} bus_cmd_type_t;

/*  An intake command, gateway -> writer.  Which fields count depends on
    type, as listed above; the rest are zero.  version, when not 0, is the
    version the client last saw (of the order, or of the cart): a command
    naming an older one is a conflict (optimistic concurrency).  */
typedef struct {
    bus_cmd_type_t type;
    char key[BUS_KEY_MAX];
    char origin[BUS_NAME_MAX]; /* gateway name: the ack goes to its topic */
    char table[BUS_TABLE_MAX];
    char note[BUS_NOTE_MAX];
    uint64_t order_id;
    uint32_t status; /* bus_status_t */
    uint32_t version;
    uint32_t line_id;
    uint32_t qty;
    char item_id[BUS_ID_MAX];
    char station[BUS_ID_MAX]; /* LINE_STATE: every line of this station  */
    uint32_t line_state;      /* LINE_STATE: bus_line_state_t to reach   */
    bool available;
    bool open_menu; /* PLACE: a line whose item_id is not on the
                                  menu is kept as a free-text line named by
                                  its name, at no price (seed-compatible
                                  routes in open-menu mode)              */
    uint32_t line_count;
    bus_line_t lines[BUS_LINES_MAX];
} bus_cmd_t;

typedef enum {
    BUS_EVENT_ORDER_PLACED = 1, /* order */
    BUS_EVENT_ORDER_STATUS,     /* order (its new state) */
    BUS_EVENT_CART,             /* cart (its new state) */
    BUS_EVENT_MENU_ITEM         /* item_id, available */
} bus_event_type_t;

/*  A committed event, writer -> everyone.  seq is global and gap-free.
    Which part is meaningful depends on type.  */
typedef struct {
    uint64_t seq;
    int64_t ts_ms;
    bus_event_type_t type;
    bus_order_t order;
    bus_cart_t cart;
    char item_id[BUS_ID_MAX];
    bool available;
} bus_event_t;

/*  Whose history a message comes from: the writer's store and its run.
    id is the store's identity, 128 random bits (32 lower-case hex
    digits) made when its data directory is created: a new (or emptied)
    data directory is another history.  epoch changes, durably, at every
    writer start, before the writer binds its sockets, so a copy restored
    from an older backup comes back under an epoch no node has seen
    (bus_store_epoch_next says how it is chosen).  Epochs of one store
    only grow, so that a later fencing scheme can refuse an older one.

    A run continues the history of the run before it on the same store:
    parent is that run's epoch (0 for a store's first), base the store's
    last seq when this run started.  Up to base, this history is
    parent's, which is what a plain restart is; a node whose state is
    parent's at a seq <= base may go on (replaying what it lacks), while
    any other state is another history: a fresh snapshot, never a
    replay.  A restored copy names, as parent, the run it was copied
    from, and as base the seq it was copied at, so a node that has seen
    more of that run than the copy holds does not go on.  Every event (a
    frame of its own after the event), heartbeat, sync reply and ack carries
    it.  */
#define BUS_WRITER_ID_MAX 33 /* 32 lower-case hex digits + NUL */
typedef struct {
    char id[BUS_WRITER_ID_MAX];
    uint64_t epoch;  /* >= 1 */
    uint64_t parent; /* the epoch before on this store, 0 if none */
    uint64_t base;   /* the store's last seq when epoch started   */
} bus_epoch_t;

/*  The writer's answer to one command, on the origin gateway's ack topic.
    status is 0 or a bus_err_t.  When it is 0, event is what the command
    committed (for CART_PLACE: the order.placed event); duplicate is true
    when the key had been used before and this is that original event sent
    again.  */
typedef struct {
    char key[BUS_KEY_MAX];
    uint64_t fingerprint; /* of the command this answers: two requests
                               under one key but asking different things
                               must not take each other's answer */
    int status;
    bool duplicate;
    char error[BUS_ERROR_MAX];
    bus_epoch_t writer; /* the history of the writer that answered; epoch
                           0 from a writer before acks carried it.  A
                           gateway refuses an ack of an epoch older than
                           the newest it heard (docs/failover.md) */
    bus_event_t event;
} bus_ack_t;

/*  The writer's storage, as its last write found it, and as heartbeats
    carry it to gateways and edges (whose /healthz answers 503 while it
    is not ok): OK when the last commit went through (or none failed),
    FULL when it failed for want of space (ENOSPC, or EDQUOT: over the
    volume's quota), FAILING when it failed otherwise (EIO...).  Nothing
    is committed while it is not OK.  Values travel on the wire: keep
    them.  */
typedef enum {
    BUS_STORAGE_OK = 0,
    BUS_STORAGE_FAILING = 1,
    BUS_STORAGE_FULL = 2
} bus_storage_t;

/*  "ok", "failing", "full"; NULL if invalid.  */
const char *bus_storage_name (bus_storage_t storage);

/*  True if a and b are the same history (id and epoch).  */
bool bus_epoch_same (const bus_epoch_t *a, const bus_epoch_t *b);

/*  True if next continues the history of `from` at seq: next is a later
    run on the same store, right after from's run, which had reached no
    further than seq when it started (seq <= next->base).  */
bool bus_epoch_continues (const bus_epoch_t *next, const bus_epoch_t *from,
                          uint64_t seq);

/*  Return the lower-case name of a status ("placed"), or NULL if invalid. */
const char *bus_status_name (bus_status_t status);

/*  Parse a status name; return 0 and set *status, or BUS_ERR_INVALID.  */
int bus_status_parse (const char *name, bus_status_t *status);

/*  "new", "cooking", "done", "voided"; NULL if invalid.  */
const char *bus_line_state_name (bus_line_state_t state);

/*  The state of line, of an order whose status is status: its own, or,
    for a line stored before lines had states (0), the one the status
    implies (placed, accepted: new; preparing: cooking; ready, served:
    done; cancelled: voided).  */
bus_line_state_t bus_line_state_in (const bus_line_t *line,
                                    bus_status_t status);

/*  The reason of the lines the order route's cancel voids.  */
#define BUS_REASON_CANCELLED "order cancelled"

/*  How line of order reads: its own state, time and reason, or, for a
    line without a state (0), the ones order's status implies (the state
    of bus_line_state_in, the time order reached the status that implies
    it, the reason of a cancel).  */
void bus_line_read (const bus_line_t *line, const bus_order_t *order,
                    bus_line_state_t *state, int64_t *state_ms,
                    const char **reason);

/*  True when line of order says nothing its status does not: no state,
    or the state, time and reason bus_line_read implies for it.  Such a
    line travels in the 8-element form every release reads.  */
bool bus_line_is_implied (const bus_line_t *line, const bus_order_t *order);

/*  Parse a line state name; return 0 and set *state, or BUS_ERR_INVALID.  */
int bus_line_state_parse (const char *name, bus_line_state_t *state);

/*  True for statuses that still belong on a kitchen screen.  */
bool bus_status_is_open (bus_status_t status);

/*  True if an order may go from status from to status to:
    placed -> accepted -> preparing -> ready -> served, one step at a
    time, and placed or accepted -> cancelled.  */
bool bus_status_can_move (bus_status_t from, bus_status_t to);

/*  Return the event type's name ("order.placed") or NULL.  */
const char *bus_event_type_name (bus_event_type_t type);

/*  Validation of strings that come from outside: the JSON layer checks
    request bodies with these, the codec every string it decodes, the menu
    loader its names.  One set of rules, so that whatever one reader
    accepts every other reader (the store, the API's JSON, the WebSocket
    messages, the logs) can carry.  Each returns true if s (NULL is never
    valid) is acceptable for its field as documented above.  */
bool bus_valid_item_id (const char *s); /* ids, stations, modifier ids  */
bool bus_valid_table (const char *s);
bool bus_valid_key (const char *s);
bool bus_valid_note (const char *s);      /* text of 0..280 bytes           */
bool bus_valid_name (const char *s);      /* display name: text, 1..80 bytes */
bool bus_valid_node (const char *s);      /* node name: 1..80 of
                                        [A-Za-z0-9_.-] (an ack topic)   */
bool bus_valid_writer_id (const char *s); /* 32 lower-case hex digits */

/*  True if s is text: valid UTF-8 (RFC 3629: no overlong forms, no
    surrogates, nothing past U+10FFFF, no truncated sequence: the rules
    jansson applies to every string it reads or writes) without control
    characters (U+0000..U+001F, U+007F), so that any JSON text or log line
    can carry it as it is.  Any length.  */
bool bus_valid_text (const char *s);

/*  Length of the UTF-8 character starting at s (1..4 bytes) if it is a
    valid one as above, else 0.  s is NUL-terminated: a NUL ends any
    sequence early, so nothing past it is read.  */
size_t bus_utf8_char (const char *s);

/*  The rules above as a person reads them, for error messages (the JSON
    layer's, the menu loader's, bus_cmd_check's).  */
#define BUS_RULE_ID                                          \
    "must be a string of 1 to 32 characters from A-Z, a-z, " \
    "0-9, '_', '.' and '-'"
#define BUS_RULE_TABLE \
    "must be a string of 1 to 32 printable characters without '/'"
#define BUS_RULE_KEY "must be a string of 1 to 128 printable ASCII characters"
#define BUS_RULE_NOTE                                      \
    "must be a string of at most 280 bytes of UTF-8 text " \
    "without control characters"
#define BUS_RULE_NAME                                  \
    "must be a string of 1 to 80 bytes of UTF-8 text " \
    "without control characters"
#define BUS_RULE_NODE \
    "must be a string of 1 to 80 characters of A-Z a-z 0-9 _ . -"
#define BUS_RULE_TEXT "must be UTF-8 text without control characters"
#define BUS_RULE_REASON                                 \
    "must be a string of 1 to 120 bytes of UTF-8 text " \
    "without control characters"

/*  Check a command as the writer must find it before applying it: every
    string is text (above) and fits; key, origin and the fields its type
    uses follow their rules (see bus_cmd_type_t, bus_codec.h's "Command
    rules"); every line has a valid item id, a quantity of 1..99, a note,
    0..6 distinct valid modifier ids, and no name or a display name.
    The codec's decoder applies it to every command it reads, and the
    gateway's JSON layer checks request bodies by the same validators.
    Returns 0, or BUS_ERR_INVALID with "<field>: <rule>" in why[why_cap]
    (field as the codec names it: "lines[2].note"); why may be NULL.  */
int bus_cmd_check (const bus_cmd_t *cmd, char *why, size_t why_cap);

/*  Copy src into dst[cap]; return 0, or BUS_ERR_INVALID if it does not fit
    (dst is then set to the empty string).  */
int bus_strlcpy (char *dst, const char *src, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
