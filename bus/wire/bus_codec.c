/*  bus_codec.c — MessagePack encoding of the bus's messages.

    Encoding packs each struct with msgpack-c into a growing buffer, keys in
    a fixed order, so the same struct always gives the same bytes.  Each
    message's scalar fields are a table (key, type, offset, presence,
    limits; see "The scalar fields of each message map") that drives both
    the encoder and the decoder; lines, times and nested maps have their
    own code.

    Decoding happens in three stages, each with its own error:
      1. the frame: size, then msgpack-c unpacks exactly one object
         (BUS_ERR_TOO_BIG, BUS_ERR_MALFORMED);
      2. the shape of the object tree: depth and container sizes
         (BUS_ERR_TOO_DEEP, BUS_ERR_TOO_BIG);
      3. the schema: a map with string keys (BUS_ERR_MALFORMED) whose
         fields have the documented types, ranges and sizes
         (BUS_ERR_INVALID).  */

#include <assert.h>
#include <limits.h>
#include <string.h>
#include <msgpack.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "bus_codec_private.h"

/*  --------------------------------------------------------------------
    The scalar fields of each message map, as data.  A table lists a
    map's scalar fields in wire order, one row each; the encoder writes
    the rows in that order and the decoder reads them in that order, so
    the first bad field decides the error as it always did.  What is not
    a scalar (lines, sms, an event's order or cart, an ack's event) is
    not a row: each message's own code packs and reads it after its rows
    ("lines" always last: bus_codec_test.c relies on it).  */

typedef enum {
    S_VERSION, /* "v": written as BUS_CODEC_VERSION, read as exactly it  */
    S_U64,     /* uint64_t: a positive integer                          */
    S_U32,     /* uint32_t: an integer 0..UINT32_MAX                    */
    S_I64,     /* int64_t                                               */
    S_ENUM,    /* one of our enums (unsigned int to the compiler, which
                  the row's type check makes sure of) in [min, max],
                  written as a signed integer                          */
    S_INT,     /* an int in [min, max], written as a signed integer     */
    S_BOOL,    /* bool                                                  */
    S_STR      /* char[size]: a string that fits, holds no NUL, and
                  passes valid, or is text (bus_valid_text) when the
                  row names no rule                                    */
} s_type_t;

typedef enum {
    S_REQUIRED, /* absent is refused like a value of the wrong type    */
    S_OPTIONAL, /* absent leaves the field zero                        */
    S_IF_TRUE,  /* a bool: optional, and written only when true        */
    S_IF_SET,   /* a uint64_t, uint32_t or string: optional, and written
                   only when not 0 (or empty)                          */
    S_NEEDED_BY /* optional, but required in a message of the type
                    needed_by (where its zero is a real request)       */
} s_need_t;

typedef struct {
    const char *key;
    size_t key_size; /* strlen (key)                        */
    s_type_t type;
    s_need_t need;
    size_t offset;                /* of the field in its struct          */
    size_t size;                  /* S_STR: the field's capacity         */
    int64_t min, max;             /* S_ENUM, S_INT: the accepted values  */
    bool (*valid) (const char *); /* S_STR: a bus_model rule, or NULL
                                     for bus_valid_text                  */
    int needed_by;                /* S_NEEDED_BY: the message type       */
} s_field_t;

/*  A table and its row count, as the functions below take them.  */
#define S_COUNT(table)  (sizeof (table) / sizeof (table)[0])
#define S_FIELDS(table) (table), S_COUNT (table)

/*  The offset of member m of struct st, which must be of C type t: a
    _Generic with one association does not build otherwise, so a row
    cannot read a field as the wrong type.  */
#define S_AT(st, m, t) _Generic(((st *) 0)->m, t : offsetof (st, m))

#define S_ROW(k, ty, nd, st, m, t)                              \
    .key = k, .key_size = sizeof k - 1, .type = ty, .need = nd, \
    .offset = S_AT (st, m, t)
#define S_VERSION_ROW \
    .key = "v", .key_size = 1, .type = S_VERSION, .need = S_REQUIRED
#define S_U64_ROW(k, nd, st, m)  S_ROW (k, S_U64, nd, st, m, uint64_t)
#define S_U32_ROW(k, nd, st, m)  S_ROW (k, S_U32, nd, st, m, uint32_t)
#define S_I64_ROW(k, nd, st, m)  S_ROW (k, S_I64, nd, st, m, int64_t)
#define S_BOOL_ROW(k, nd, st, m) S_ROW (k, S_BOOL, nd, st, m, bool)
#define S_ENUM_ROW(k, nd, st, m, lo, hi) \
    S_ROW (k, S_ENUM, nd, st, m, unsigned int), .min = lo, .max = hi
#define S_INT_ROW(k, nd, st, m, lo, hi) \
    S_ROW (k, S_INT, nd, st, m, int), .min = lo, .max = hi
#define S_STR_ROW(k, nd, st, m) \
    S_ROW (k, S_STR, nd, st, m, char *), .size = sizeof ((st *) 0)->m

/*  A command's strings are read as they are (fit, no NUL) and checked
    after, all rules at once, by bus_cmd_check: so a command that breaks a
    rule is still read whole, and the writer can tell its sender why.  */
static bool
s_unchecked (const char *s)
{
    return true;
}

/*  Rules of the strings of the writer's own messages (orders, carts,
    events, acks, sync), beyond being text: each as the command it came
    from was checked, or empty where a field may be.  */
static bool
s_table_or_any (const char *s)
{
    return *s == '\0' || bus_valid_table (s);
}

//  A pinging node's name: printable ASCII without spaces (an edge names
//  itself host:port), as the writer's peer table and its log take it
static bool
s_peer_name_or_any (const char *s)
{
    for (const char *c = s; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            return false;
    return true;
}

static bool
s_id_or_none (const char *s)
{
    return *s == '\0' || bus_valid_item_id (s);
}

/*  cmd: {v, type, key, origin, table, note, order, st, ver, line, qty,
    item, avail, open, lines}.  The head is read first: the rest is read
    knowing the type.  The fields a type does not use stay zero when
    absent, and a type that needs one then fails its rule (an order id of
    0, an empty table...), except qty and avail: there 0 and false are
    real requests (remove the line, 86 the item) that a lost field must
    not turn into, so the types that use them need them present.  "open"
    is written only when set, so every other command keeps its encoding;
    so are "stn" and "ls", which only LINE_STATE uses (issue 17).
    Strings: see s_unchecked.  */
static const s_field_t s_cmd_head[] = {
    { S_VERSION_ROW },
    { S_ENUM_ROW ("type", S_REQUIRED, bus_cmd_t, type, BUS_CMD_PLACE,
                  BUS_CMD_LINE_STATE) },
    { S_STR_ROW ("key", S_REQUIRED, bus_cmd_t, key), .valid = s_unchecked },
    { S_STR_ROW ("origin", S_REQUIRED, bus_cmd_t, origin),
      .valid = s_unchecked },
};

static const s_field_t s_cmd_fields[] = {
    { S_STR_ROW ("table", S_OPTIONAL, bus_cmd_t, table), .valid = s_unchecked },
    { S_STR_ROW ("note", S_OPTIONAL, bus_cmd_t, note), .valid = s_unchecked },
    { S_U64_ROW ("order", S_OPTIONAL, bus_cmd_t, order_id) },
    { S_U32_ROW ("st", S_OPTIONAL, bus_cmd_t, status) },
    { S_U32_ROW ("ver", S_OPTIONAL, bus_cmd_t, version) },
    { S_U32_ROW ("line", S_OPTIONAL, bus_cmd_t, line_id) },
    { S_U32_ROW ("qty", S_NEEDED_BY, bus_cmd_t, qty),
      .needed_by = BUS_CMD_CART_SET_QTY },
    { S_STR_ROW ("item", S_OPTIONAL, bus_cmd_t, item_id),
      .valid = s_unchecked },
    { S_BOOL_ROW ("avail", S_NEEDED_BY, bus_cmd_t, available),
      .needed_by = BUS_CMD_AVAILABILITY },
    { S_BOOL_ROW ("open", S_IF_TRUE, bus_cmd_t, open_menu) },
    { S_STR_ROW ("stn", S_IF_SET, bus_cmd_t, station), .valid = s_unchecked },
    { S_U32_ROW ("ls", S_IF_SET, bus_cmd_t, line_state) },
};

/*  order: {id, seq, ver, st, table, key, origin, note, cms, ums} (the
    head), sms, {sub, tax, total} (the tail), lines.  Orders come from the
    writer: types, sizes and the rules of the strings the command brought
    are checked (so that every reader can render what it accepts),
    business rules are not.  */
static const s_field_t s_order_head[] = {
    { S_U64_ROW ("id", S_REQUIRED, bus_order_t, id) },
    { S_U64_ROW ("seq", S_REQUIRED, bus_order_t, seq) },
    { S_U32_ROW ("ver", S_REQUIRED, bus_order_t, version) },
    { S_ENUM_ROW ("st", S_REQUIRED, bus_order_t, status, BUS_STATUS_PLACED,
                  BUS_STATUS_CANCELLED) },
    { S_STR_ROW ("table", S_REQUIRED, bus_order_t, table),
      .valid = bus_valid_table },
    { S_STR_ROW ("key", S_REQUIRED, bus_order_t, key), .valid = bus_valid_key },
    { S_STR_ROW ("origin", S_REQUIRED, bus_order_t, origin),
      .valid = bus_valid_node },
    { S_STR_ROW ("note", S_REQUIRED, bus_order_t, note),
      .valid = bus_valid_note },
    { S_I64_ROW ("cms", S_REQUIRED, bus_order_t, created_ms) },
    { S_I64_ROW ("ums", S_REQUIRED, bus_order_t, updated_ms) },
};

static const s_field_t s_order_tail[] = {
    { S_I64_ROW ("sub", S_REQUIRED, bus_order_t, subtotal_cents) },
    { S_I64_ROW ("tax", S_REQUIRED, bus_order_t, tax_cents) },
    { S_I64_ROW ("total", S_REQUIRED, bus_order_t, total_cents) },
};

_Static_assert(BUS_CODEC_ORDER_FIELDS
                   == S_COUNT (s_order_head) + 1 + S_COUNT (s_order_tail) + 1,
               "an order's map is its head, sms, its tail and lines");

/*  cart: {table, ver, next, ums, sub}, lines.  Carts, like orders, come
    from the writer.  */
static const s_field_t s_cart_fields[] = {
    { S_STR_ROW ("table", S_REQUIRED, bus_cart_t, table),
      .valid = bus_valid_table },
    { S_U32_ROW ("ver", S_REQUIRED, bus_cart_t, version) },
    { S_U32_ROW ("next", S_REQUIRED, bus_cart_t, next_line_id) },
    { S_I64_ROW ("ums", S_REQUIRED, bus_cart_t, updated_ms) },
    { S_I64_ROW ("sub", S_REQUIRED, bus_cart_t, subtotal_cents) },
};

/*  event: {v, seq, ts, type}, then the part its type names: an order, a
    cart, or the item's {item, avail}.  */
static const s_field_t s_event_fields[] = {
    { S_VERSION_ROW },
    { S_U64_ROW ("seq", S_REQUIRED, bus_event_t, seq) },
    { S_I64_ROW ("ts", S_REQUIRED, bus_event_t, ts_ms) },
    { S_ENUM_ROW ("type", S_REQUIRED, bus_event_t, type, BUS_EVENT_ORDER_PLACED,
                  BUS_EVENT_MENU_ITEM) },
};

static const s_field_t s_event_item[] = {
    { S_STR_ROW ("item", S_REQUIRED, bus_event_t, item_id),
      .valid = bus_valid_item_id },
    { S_BOOL_ROW ("avail", S_REQUIRED, bus_event_t, available) },
};

/*  The writer's history (bus_epoch_t) in a message of type st, as member
    m: all required, the epoch at least 1.  */
#define S_EPOCH_ROWS(st, m)                                                    \
    { S_STR_ROW ("wid", S_REQUIRED, st, m.id), .valid = bus_valid_writer_id }, \
        { S_U64_ROW ("ep", S_REQUIRED, st, m.epoch), .min = 1 },               \
        { S_U64_ROW ("pep", S_REQUIRED, st, m.parent) },                       \
    {                                                                          \
        S_U64_ROW ("base", S_REQUIRED, st, m.base)                             \
    }

/*  ack: {v, key, fp, st, dup, err}, then the writer's history (wid, ep,
    pep, base) when it has one, then the event on success.  */
static const s_field_t s_ack_fields[] = {
    { S_VERSION_ROW },
    { S_STR_ROW ("key", S_REQUIRED, bus_ack_t, key), .valid = bus_valid_key },
    { S_U64_ROW ("fp", S_OPTIONAL, bus_ack_t, fingerprint) },
    { S_INT_ROW ("st", S_REQUIRED, bus_ack_t, status, INT_MIN, 0) },
    { S_BOOL_ROW ("dup", S_OPTIONAL, bus_ack_t, duplicate) },
    { S_STR_ROW ("err", S_OPTIONAL, bus_ack_t, error) },
};

/*  The writer's history in an ack: written by a writer that has one (every
    writer since acks carried it), all four or none; an ack without them
    (an older writer's) is read with epoch 0.  */
static const s_field_t s_ack_epoch_fields[] = { S_EPOCH_ROWS (bus_ack_t,
                                                              writer) };

static const s_field_t s_heartbeat_fields[] = {
    { S_VERSION_ROW },
    { S_U64_ROW ("seq", S_REQUIRED, bus_heartbeat_t, seq) },
    { S_I64_ROW ("ts", S_REQUIRED, bus_heartbeat_t, ts_ms) },
    S_EPOCH_ROWS (bus_heartbeat_t, writer),
    //  optional: a writer from before it is taken as ok
    { S_ENUM_ROW ("storage", S_OPTIONAL, bus_heartbeat_t, storage,
                  BUS_STORAGE_OK, BUS_STORAGE_FULL) },
    //  only when true, so every other heartbeat keeps its encoding
    { S_BOOL_ROW ("refusing", S_IF_TRUE, bus_heartbeat_t, refusing) },
};

/*  The frame after each event on the events socket.  */
static const s_field_t s_epoch_fields[] = {
    { S_VERSION_ROW },
    { S_STR_ROW ("wid", S_REQUIRED, bus_epoch_t, id),
      .valid = bus_valid_writer_id },
    { S_U64_ROW ("ep", S_REQUIRED, bus_epoch_t, epoch), .min = 1 },
    { S_U64_ROW ("pep", S_REQUIRED, bus_epoch_t, parent) },
    { S_U64_ROW ("base", S_REQUIRED, bus_epoch_t, base) },
};

/*  A request: what to do, then the arguments and filters an op may use. */
static const s_field_t s_sync_req_fields[] = {
    { S_VERSION_ROW },
    { S_ENUM_ROW ("op", S_REQUIRED, bus_sync_req_t, op, BUS_SYNC_SNAPSHOT,
                  BUS_SYNC_REPORT) },
    { S_U64_ROW ("rid", S_REQUIRED, bus_sync_req_t, rid) },
    { S_U64_ROW ("from", S_OPTIONAL, bus_sync_req_t, from) },
    { S_U32_ROW ("limit", S_OPTIONAL, bus_sync_req_t, limit) },
    { S_U64_ROW ("id", S_OPTIONAL, bus_sync_req_t, id) },
    { S_U32_ROW ("status", S_OPTIONAL, bus_sync_req_t, status) },
    { S_STR_ROW ("table", S_OPTIONAL, bus_sync_req_t, table),
      .valid = s_table_or_any },
    { S_STR_ROW ("role", S_OPTIONAL, bus_sync_req_t, role),
      .valid = s_id_or_none },
    { S_STR_ROW ("name", S_OPTIONAL, bus_sync_req_t, name),
      .valid = s_peer_name_or_any },
    { S_I64_ROW ("from_ms", S_OPTIONAL, bus_sync_req_t, from_ms) },
    { S_I64_ROW ("to_ms", S_OPTIONAL, bus_sync_req_t, to_ms) },
};

static const s_field_t s_sync_reply_fields[] = {
    { S_VERSION_ROW },
    { S_U64_ROW ("rid", S_REQUIRED, bus_sync_reply_t, rid) },
    //  strictly one of ours: "snapshot instead" (BUS_ERR_PRUNED) must never
    //  be mistaken for another answer
    { S_INT_ROW ("st", S_REQUIRED, bus_sync_reply_t, status, BUS_ERR_MIN, 0) },
    { S_STR_ROW ("err", S_OPTIONAL, bus_sync_reply_t, error) },
    { S_U64_ROW ("seq", S_OPTIONAL, bus_sync_reply_t, seq) },
    { S_U64_ROW ("next", S_OPTIONAL, bus_sync_reply_t, next) },
    { S_U32_ROW ("n", S_OPTIONAL, bus_sync_reply_t, count) },
    S_EPOCH_ROWS (bus_sync_reply_t, writer),
    //  a replica's answers only: the writer's own stay as they were
    { S_U64_ROW ("wseq", S_IF_SET, bus_sync_reply_t, writer_seq) },
    { S_U64_ROW ("hms", S_IF_SET, bus_sync_reply_t, heard_ms) },
};

/*  Replication (bus_codec.h): up, batch header, a change's key.  */
static bool
s_writer_id_or_none (const char *s)
{
    return *s == '\0' || bus_valid_writer_id (s);
}

static bool
s_key_or_none (const char *s)
{
    return *s == '\0' || bus_valid_key (s);
}

static const s_field_t s_repl_up_fields[] = {
    { S_VERSION_ROW },
    { S_ENUM_ROW ("op", S_REQUIRED, bus_repl_up_t, op, BUS_REPL_HELLO,
                  BUS_REPL_CONFIRM) },
    { S_STR_ROW ("name", S_OPTIONAL, bus_repl_up_t, name),
      .valid = s_peer_name_or_any },
    { S_STR_ROW ("store", S_OPTIONAL, bus_repl_up_t, store),
      .valid = s_writer_id_or_none },
    { S_U64_ROW ("seq", S_REQUIRED, bus_repl_up_t, seq) },
    { S_U64_ROW ("sum", S_OPTIONAL, bus_repl_up_t, sum) },
};

static const s_field_t s_repl_batch_fields[] = {
    { S_VERSION_ROW },
    { S_INT_ROW ("st", S_REQUIRED, bus_repl_batch_t, status, BUS_ERR_MIN, 0) },
    { S_STR_ROW ("err", S_OPTIONAL, bus_repl_batch_t, error) },
    S_EPOCH_ROWS (bus_repl_batch_t, writer),
    { S_U64_ROW ("first", S_REQUIRED, bus_repl_batch_t, first) },
    { S_U32_ROW ("n", S_REQUIRED, bus_repl_batch_t, count) },
    { S_U64_ROW ("last", S_REQUIRED, bus_repl_batch_t, last) },
    { S_I64_ROW ("ts", S_REQUIRED, bus_repl_batch_t, ts_ms) },
    { S_U64_ROW ("mver", S_OPTIONAL, bus_repl_batch_t, menu_version) },
};

static const s_field_t s_repl_key_fields[] = {
    { S_STR_ROW ("key", S_REQUIRED, bus_repl_key_t, key),
      .valid = s_key_or_none },
    { S_U64_ROW ("fp", S_REQUIRED, bus_repl_key_t, fingerprint) },
};

/*  --------------------------------------------------------------------
    Encoding  */

int
bus_codec__write (void *data, const char *buf, size_t len)
{
    bus_codec__writer_t *self = (bus_codec__writer_t *) data;
    if (msgpack_sbuffer_write (&self->buffer, buf, len))
        self->failed = true;
    return self->failed ? -1 : 0;
}

void
bus_codec__writer_init (bus_codec__writer_t *self)
{
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer_init (&self->packer, self, bus_codec__write);
    self->failed = false;
}

/*  Returns the written bytes as a new frame, or NULL if a write failed;
    frees the buffer either way.  */
zframe_t *
bus_codec__writer_frame (bus_codec__writer_t *self)
{
    zframe_t *frame =
        self->failed ? NULL : zframe_new (self->buffer.data, self->buffer.size);
    msgpack_sbuffer_destroy (&self->buffer);
    return frame;
}

/*  Packs a struct's string field.  strnlen keeps us inside the field even
    if a caller forgot the NUL; the decoder then rejects the full-length
    string instead of us reading past the struct.  */
void
bus_codec__pack_str (msgpack_packer *pk, const char *s, size_t cap)
{
    msgpack_pack_str_with_body (pk, s, strnlen (s, cap));
}

void
bus_codec__pack_key (msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body (pk, key, strlen (key));
}

void
bus_codec__put_uint (msgpack_packer *pk, const char *key, uint64_t value)
{
    bus_codec__pack_key (pk, key);
    msgpack_pack_uint64 (pk, value);
}

void
bus_codec__put_int (msgpack_packer *pk, const char *key, int64_t value)
{
    bus_codec__pack_key (pk, key);
    msgpack_pack_int64 (pk, value);
}

void
bus_codec__put_str (msgpack_packer *pk, const char *key, const char *s,
                    size_t cap)
{
    bus_codec__pack_key (pk, key);
    bus_codec__pack_str (pk, s, cap);
}

void
bus_codec__put_bool (msgpack_packer *pk, const char *key, bool value)
{
    bus_codec__pack_key (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

/*  Packs one row: its key, and its field of the struct at base.  */
static void
s_pack_field (msgpack_packer *pk, const s_field_t *field, const void *base)
{
    const char *at = (const char *) base + field->offset;
    msgpack_pack_str_with_body (pk, field->key, field->key_size);
    switch (field->type) {
        case S_VERSION: msgpack_pack_uint64 (pk, BUS_CODEC_VERSION); break;
        case S_U64: msgpack_pack_uint64 (pk, *(const uint64_t *) at); break;
        case S_U32: msgpack_pack_uint64 (pk, *(const uint32_t *) at); break;
        case S_I64: msgpack_pack_int64 (pk, *(const int64_t *) at); break;
        case S_ENUM: msgpack_pack_int64 (pk, *(const unsigned int *) at); break;
        case S_INT: msgpack_pack_int64 (pk, *(const int *) at); break;
        case S_BOOL:
            if (*(const bool *) at)
                msgpack_pack_true (pk);
            else
                msgpack_pack_false (pk);
            break;
        case S_STR: bus_codec__pack_str (pk, at, field->size); break;
    }
}

/*  True if a row is written for the struct at base: all are but an
    S_IF_TRUE row whose bool is false and an S_IF_SET row whose value
    is 0.  */
static bool
s_field_written (const s_field_t *field, const void *base)
{
    const char *at = (const char *) base + field->offset;
    if (field->need == S_IF_TRUE)
        return *(const bool *) at;
    if (field->need == S_IF_SET && field->type == S_U32)
        return *(const uint32_t *) at != 0;
    if (field->need == S_IF_SET && field->type == S_STR)
        return *at != '\0';
    if (field->need == S_IF_SET)
        return *(const uint64_t *) at != 0;
    return true;
}

/*  How many of count rows are written for the struct at base, for the
    map's header.  */
static uint32_t
s_fields_written (const s_field_t *fields, size_t count, const void *base)
{
    uint32_t written = 0;
    for (size_t i = 0; i < count; i++)
        written += s_field_written (&fields[i], base);
    return written;
}

/*  Packs count rows, in order, from the struct at base.  */
static void
s_pack_fields (msgpack_packer *pk, const s_field_t *fields, size_t count,
               const void *base)
{
    for (size_t i = 0; i < count; i++)
        if (s_field_written (&fields[i], base))
            s_pack_field (pk, &fields[i], base);
}

/*  [mod_id, ...]: a client names its modifiers by id only.  */
static void
s_pack_cmd_mods (msgpack_packer *pk, const bus_line_t *line)
{
    assert (line->mod_count <= BUS_MODS_MAX);
    msgpack_pack_array (pk, line->mod_count);
    for (uint32_t i = 0; i < line->mod_count; i++)
        bus_codec__pack_str (pk, line->mods[i].id, sizeof line->mods[i].id);
}

/*  [item_id, qty, note, [mod_id, ...]], and the free-text name of an
    open-menu line when it has one.  The decoder lets note and the
    modifiers be left off, but we always write the four elements (the
    fifth only when there is a name) so one command has one encoding.  */
static void
s_pack_cmd_line (msgpack_packer *pk, const bus_line_t *line,
                 const bus_order_t *order)
{
    (void) order;
    msgpack_pack_array (pk, *line->name ? 5 : 4);
    bus_codec__pack_str (pk, line->item_id, sizeof line->item_id);
    msgpack_pack_uint64 (pk, line->qty);
    bus_codec__pack_str (pk, line->note, sizeof line->note);
    s_pack_cmd_mods (pk, line);
    if (*line->name)
        bus_codec__pack_str (pk, line->name, sizeof line->name);
}

/*  [[mod_id, mod_name, delta_cents], ...], as the writer priced them.  */
static void
s_pack_mods (msgpack_packer *pk, const bus_line_t *line)
{
    assert (line->mod_count <= BUS_MODS_MAX);
    msgpack_pack_array (pk, line->mod_count);
    for (uint32_t i = 0; i < line->mod_count; i++) {
        const bus_mod_t *mod = &line->mods[i];
        msgpack_pack_array (pk, 3);
        bus_codec__pack_str (pk, mod->id, sizeof mod->id);
        bus_codec__pack_str (pk, mod->name, sizeof mod->name);
        msgpack_pack_int64 (pk, mod->delta_cents);
    }
}

/*  [line_id, item_id, qty, note, name, station, unit_cents, mods], a line
    of an order (order) or a cart (NULL), then [state, state_ms, reason]
    only when the line's state says something its order's status does not
    (bus_line_is_implied; in practice, once a line route moved it): so a
    cart, and an order no line route touched, keep the bytes every older
    release reads (issue 17, docs/deployment.md "Upgrading").  */
static void
s_pack_line (msgpack_packer *pk, const bus_line_t *line,
             const bus_order_t *order)
{
    bool stated = order ? !bus_line_is_implied (line, order) : line->state;
    msgpack_pack_array (pk, stated ? 11 : 8);
    msgpack_pack_uint64 (pk, line->line_id);
    bus_codec__pack_str (pk, line->item_id, sizeof line->item_id);
    msgpack_pack_uint64 (pk, line->qty);
    bus_codec__pack_str (pk, line->note, sizeof line->note);
    bus_codec__pack_str (pk, line->name, sizeof line->name);
    bus_codec__pack_str (pk, line->station, sizeof line->station);
    msgpack_pack_int64 (pk, line->unit_cents);
    s_pack_mods (pk, line);
    if (!stated)
        return;
    msgpack_pack_uint64 (pk, line->state);
    msgpack_pack_int64 (pk, line->state_ms);
    bus_codec__pack_str (pk, line->reason, sizeof line->reason);
}

/*  The "lines" field, of order (NULL: a cart's).  Every message that has
    one packs it last: the selftest relies on that to put lines of its
    own in their place.  */
typedef void (s_pack_line_fn) (msgpack_packer *pk, const bus_line_t *line,
                               const bus_order_t *order);

static void
s_put_lines (msgpack_packer *pk, const bus_line_t *lines, uint32_t count,
             s_pack_line_fn *pack, const bus_order_t *order)
{
    assert (count <= BUS_LINES_MAX);
    bus_codec__pack_key (pk, "lines");
    msgpack_pack_array (pk, count);
    for (uint32_t i = 0; i < count; i++)
        pack (pk, &lines[i], order);
}

/*  An order's first ten fields, id to ums.  */
void
bus_codec__pack_order_head (msgpack_packer *pk, const bus_order_t *order)
{
    s_pack_fields (pk, S_FIELDS (s_order_head), order);
}

/*  sms: one time per bus_status_t value, index 0 unused, so that a
    reader can index it by status.  */
static void
s_put_times (msgpack_packer *pk, const int64_t *times)
{
    bus_codec__pack_key (pk, "sms");
    msgpack_pack_array (pk, BUS_STATUS_COUNT);
    for (int i = 0; i < BUS_STATUS_COUNT; i++)
        msgpack_pack_int64 (pk, times[i]);
}

/*  An order's last four fields, sub to lines.  */
void
bus_codec__pack_order_tail (msgpack_packer *pk, const bus_order_t *order)
{
    s_pack_fields (pk, S_FIELDS (s_order_tail), order);
    s_put_lines (pk, order->lines, order->line_count, s_pack_line, order);
}

void
bus_codec__pack_order (msgpack_packer *pk, const bus_order_t *order)
{
    msgpack_pack_map (pk, BUS_CODEC_ORDER_FIELDS);
    bus_codec__pack_order_head (pk, order);
    s_put_times (pk, order->status_ms);
    bus_codec__pack_order_tail (pk, order);
}

void
bus_codec__pack_cart (msgpack_packer *pk, const bus_cart_t *cart)
{
    msgpack_pack_map (pk, S_COUNT (s_cart_fields) + 1);
    s_pack_fields (pk, S_FIELDS (s_cart_fields), cart);
    s_put_lines (pk, cart->lines, cart->line_count, s_pack_line, NULL);
}

bool
bus_codec__event_has_order (bus_event_type_t type)
{
    return type == BUS_EVENT_ORDER_PLACED || type == BUS_EVENT_ORDER_STATUS;
}

/*  Only the part the type names goes on the wire; an event of a type we
    do not know gets none, and no decoder accepts it.  */
static void
s_pack_event (msgpack_packer *pk, const bus_event_t *event)
{
    bool has_order = bus_codec__event_has_order (event->type);
    bool has_cart = event->type == BUS_EVENT_CART;
    bool has_item = event->type == BUS_EVENT_MENU_ITEM;
    msgpack_pack_map (pk, S_COUNT (s_event_fields) + (has_order || has_cart)
                              + S_COUNT (s_event_item) * has_item);
    s_pack_fields (pk, S_FIELDS (s_event_fields), event);
    if (has_order) {
        bus_codec__pack_key (pk, "order");
        bus_codec__pack_order (pk, &event->order);
    }
    if (has_cart) {
        bus_codec__pack_key (pk, "cart");
        bus_codec__pack_cart (pk, &event->cart);
    }
    if (has_item)
        s_pack_fields (pk, S_FIELDS (s_event_item), event);
}

/*  Every field whatever the type, so the shape never depends on it
    ("open" aside, see s_cmd_fields).  */
zframe_t *
bus_cmd_encode (const bus_cmd_t *cmd)
{
    bus_codec__writer_t w;
    bus_codec__writer_init (&w);
    msgpack_packer *pk = &w.packer;
    msgpack_pack_map (pk, S_COUNT (s_cmd_head)
                              + s_fields_written (S_FIELDS (s_cmd_fields), cmd)
                              + 1);
    s_pack_fields (pk, S_FIELDS (s_cmd_head), cmd);
    s_pack_fields (pk, S_FIELDS (s_cmd_fields), cmd);
    s_put_lines (pk, cmd->lines, cmd->line_count, s_pack_cmd_line, NULL);
    return bus_codec__writer_frame (&w);
}

zframe_t *
bus_order_encode (const bus_order_t *order)
{
    bus_codec__writer_t w;
    bus_codec__writer_init (&w);
    bus_codec__pack_order (&w.packer, order);
    return bus_codec__writer_frame (&w);
}

zframe_t *
bus_cart_encode (const bus_cart_t *cart)
{
    bus_codec__writer_t w;
    bus_codec__writer_init (&w);
    bus_codec__pack_cart (&w.packer, cart);
    return bus_codec__writer_frame (&w);
}

zframe_t *
bus_event_encode (const bus_event_t *event)
{
    bus_codec__writer_t w;
    bus_codec__writer_init (&w);
    s_pack_event (&w.packer, event);
    return bus_codec__writer_frame (&w);
}

zframe_t *
bus_ack_encode (const bus_ack_t *ack)
{
    bus_codec__writer_t w;
    bus_codec__writer_init (&w);
    bool epoch = ack->writer.epoch != 0;
    msgpack_pack_map (&w.packer,
                      S_COUNT (s_ack_fields) + (ack->status == 0)
                          + (epoch ? S_COUNT (s_ack_epoch_fields) : 0));
    s_pack_fields (&w.packer, S_FIELDS (s_ack_fields), ack);
    if (epoch)
        s_pack_fields (&w.packer, S_FIELDS (s_ack_epoch_fields), ack);
    if (ack->status == 0) {
        bus_codec__pack_key (&w.packer, "event");
        s_pack_event (&w.packer, &ack->event);
    }
    return bus_codec__writer_frame (&w);
}

/*  A map of scalars only, from a table.  */
static zframe_t *
s_encode_fields (const s_field_t *fields, size_t count, const void *base)
{
    bus_codec__writer_t w;
    bus_codec__writer_init (&w);
    msgpack_pack_map (&w.packer, s_fields_written (fields, count, base));
    s_pack_fields (&w.packer, fields, count, base);
    return bus_codec__writer_frame (&w);
}

zframe_t *
bus_heartbeat_encode (const bus_heartbeat_t *hb)
{
    return s_encode_fields (S_FIELDS (s_heartbeat_fields), hb);
}

zframe_t *
bus_epoch_encode (const bus_epoch_t *epoch)
{
    return s_encode_fields (S_FIELDS (s_epoch_fields), epoch);
}

zframe_t *
bus_sync_req_encode (const bus_sync_req_t *req)
{
    return s_encode_fields (S_FIELDS (s_sync_req_fields), req);
}

zframe_t *
bus_sync_reply_encode (const bus_sync_reply_t *reply)
{
    return s_encode_fields (S_FIELDS (s_sync_reply_fields), reply);
}

zframe_t *
bus_repl_up_encode (const bus_repl_up_t *up)
{
    return s_encode_fields (S_FIELDS (s_repl_up_fields), up);
}

zframe_t *
bus_repl_batch_encode (const bus_repl_batch_t *batch)
{
    return s_encode_fields (S_FIELDS (s_repl_batch_fields), batch);
}

zframe_t *
bus_repl_key_encode (const bus_repl_key_t *key)
{
    return s_encode_fields (S_FIELDS (s_repl_key_fields), key);
}

/*  --------------------------------------------------------------------
    Decoding, stages 1 and 2: the frame and the shape of its object  */

/*  How a msgpack header byte declares what follows it: a width-byte
    big-endian length field, plus fixed bytes, counting data bytes or
    container elements.  */
typedef enum { S_BAD, S_DATA, S_ITEMS, S_PAIRS } s_kind_t;

typedef struct {
    s_kind_t kind;
    uint8_t width;
    uint8_t fixed;
} s_head_t;

/*  Header bytes 0xc0..0xdf, from the MessagePack specification.  */
static const s_head_t s_heads[32] = {
    /* nil, (never used), false, true */
    { S_DATA, 0, 0 },
    { S_BAD, 0, 0 },
    { S_DATA, 0, 0 },
    { S_DATA, 0, 0 },
    /* bin 8/16/32, ext 8/16/32 (a length, then a type byte) */
    { S_DATA, 1, 0 },
    { S_DATA, 2, 0 },
    { S_DATA, 4, 0 },
    { S_DATA, 1, 1 },
    { S_DATA, 2, 1 },
    { S_DATA, 4, 1 },
    /* float 32/64, uint 8..64, int 8..64 */
    { S_DATA, 0, 4 },
    { S_DATA, 0, 8 },
    { S_DATA, 0, 1 },
    { S_DATA, 0, 2 },
    { S_DATA, 0, 4 },
    { S_DATA, 0, 8 },
    { S_DATA, 0, 1 },
    { S_DATA, 0, 2 },
    { S_DATA, 0, 4 },
    { S_DATA, 0, 8 },
    /* fixext 1/2/4/8/16 (a type byte, then the data) */
    { S_DATA, 0, 2 },
    { S_DATA, 0, 3 },
    { S_DATA, 0, 5 },
    { S_DATA, 0, 9 },
    { S_DATA, 0, 17 },
    /* str 8/16/32, array 16/32, map 16/32 */
    { S_DATA, 1, 0 },
    { S_DATA, 2, 0 },
    { S_DATA, 4, 0 },
    { S_ITEMS, 2, 0 },
    { S_ITEMS, 4, 0 },
    { S_PAIRS, 2, 0 },
    { S_PAIRS, 4, 0 },
};

static s_head_t
s_head (uint8_t byte)
{
    if (byte >= 0xc0 && byte <= 0xdf)
        return s_heads[byte - 0xc0];
    if (byte >= 0x80 && byte <= 0x8f)
        return (s_head_t){ S_PAIRS, 0, byte & 0x0f }; /* fixmap   */
    if (byte >= 0x90 && byte <= 0x9f)
        return (s_head_t){ S_ITEMS, 0, byte & 0x0f }; /* fixarray */
    if (byte >= 0xa0 && byte <= 0xbf)
        return (s_head_t){ S_DATA, 0, byte & 0x1f }; /* fixstr   */
    return (s_head_t){ S_DATA, 0, 0 };               /* fixint   */
}

/*  msgpack-c allocates a container's elements as soon as it reads the
    header, before it knows whether they follow: the five bytes
    df ff ff ff ff make it ask for 256 GB.  So before unpacking, we walk
    the headers and reject any length that cannot fit in the bytes left
    (each element takes at least one byte).  Such input is truncated, so
    this gives the answer msgpack-c would, minus the allocation.  This
    only measures; msgpack-c does the decoding.  */
static int
s_check_lengths (const uint8_t *p, size_t size)
{
    const uint8_t *end = p + size;
    while (p < end) {
        s_head_t head = s_head (*p++);
        if (head.kind == S_BAD || (size_t) (end - p) < head.width)
            return BUS_ERR_MALFORMED;
        uint64_t length = 0;
        for (int i = 0; i < head.width; i++)
            length = length << 8 | *p++;
        //  After the length field: an ext's type byte is not part of it
        //  (taken as its top byte, an ext8 of 0 bytes measured 256 and
        //  hid a container header behind it from this check)
        length += head.fixed;
        if (head.kind == S_PAIRS)
            length *= 2;
        if (length > (uint64_t) (end - p))
            return BUS_ERR_MALFORMED;
        if (head.kind == S_DATA)
            p += length;
    }
    return 0;
}

/*  Depth counts containers: a cmd's {"lines": [[...]]} is three deep.  */
static int
s_check_tree (const msgpack_object *obj, int depth)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY && obj->type != MSGPACK_OBJECT_MAP)
        return 0;
    if (depth > BUS_DEPTH_MAX)
        return BUS_ERR_TOO_DEEP;
    bool is_map = obj->type == MSGPACK_OBJECT_MAP;
    uint32_t size = is_map ? obj->via.map.size : obj->via.array.size;
    if (size > BUS_COUNT_MAX)
        return BUS_ERR_TOO_BIG;
    int rc = 0;
    for (uint32_t i = 0; i < size && !rc; i++) {
        if (is_map) {
            rc = s_check_tree (&obj->via.map.ptr[i].key, depth + 1);
            if (!rc)
                rc = s_check_tree (&obj->via.map.ptr[i].val, depth + 1);
        } else
            rc = s_check_tree (&obj->via.array.ptr[i], depth + 1);
    }
    return rc;
}

/*  Unpacks exactly one object of acceptable size and shape into msg.  */
static int
s_unpack (const void *data, size_t size, msgpack_unpacked *msg)
{
    if (size > BUS_FRAME_MAX)
        return BUS_ERR_TOO_BIG;
    if (!data || size == 0)
        return BUS_ERR_MALFORMED;
    int rc = s_check_lengths ((const uint8_t *) data, size);
    if (rc)
        return rc;
    size_t offset = 0;
    msgpack_unpack_return ret =
        msgpack_unpack_next (msg, (const char *) data, size, &offset);
    /* s_check_lengths bounds what msgpack-c allocates, so NOMEM here is
       its fixed 32-level parse stack overflowing: the input nests too
       deep (we accept BUS_DEPTH_MAX), whatever follows.  */
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return BUS_ERR_TOO_DEEP;
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != size)
        return BUS_ERR_MALFORMED;
    return s_check_tree (&msg->data, 1);
}

/*  --------------------------------------------------------------------
    Decoding, stage 3: the schema.  Each reader fills its output from a
    map and returns 0 or a bus_err_t; s_decode resets the output before
    and on error.

    A reset zeroes every field but the line arrays: orders, carts and
    commands are 60 KB, events and acks twice that, nearly all of it line
    slots past the line count that nothing reads.  Zeroing them would cost
    more than the decoding itself; s_read_lines clears each line it fills. */

typedef int (s_read_fn) (const msgpack_object *obj, void *out);
typedef void (s_reset_fn) (void *out);

/*  An event's part of every type; the order's and the cart's lines are
    left as they are.  */
static void
s_reset_event (void *out)
{
    bus_event_t *event = (bus_event_t *) out;
    event->seq = 0;
    event->ts_ms = 0;
    event->type = (bus_event_type_t) 0;
    memset (&event->order, 0, offsetof (bus_order_t, lines));
    memset (&event->cart, 0, offsetof (bus_cart_t, lines));
    memset (event->item_id, 0, sizeof event->item_id);
    event->available = false;
}

static void
s_reset_ack (void *out)
{
    bus_ack_t *ack = (bus_ack_t *) out;
    memset (ack, 0, offsetof (bus_ack_t, event));
    s_reset_event (&ack->event);
}

/*  True if the string object str holds the size bytes at text.  */
static bool
s_str_is (const msgpack_object *str, const char *text, size_t size)
{
    //  (msgpack-c gives an empty string no pointer: memcmp may not have
    //  NULL, even for no bytes)
    return str->via.str.size == size
           && (size == 0 || memcmp (str->via.str.ptr, text, size) == 0);
}

/*  A message map: string keys, each at most once.  A repeated key would
    let two readers of the same bytes see different values.  */
static int
s_check_map (const msgpack_object *obj)
{
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return BUS_ERR_INVALID;
    const msgpack_object_kv *kv = obj->via.map.ptr;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        if (kv[i].key.type != MSGPACK_OBJECT_STR)
            return BUS_ERR_MALFORMED;
        for (uint32_t j = 0; j < i; j++)
            if (s_str_is (&kv[j].key, kv[i].key.via.str.ptr,
                          kv[i].key.via.str.size))
                return BUS_ERR_MALFORMED;
    }
    return 0;
}

/*  Returns the value under the size bytes at key in a checked map, or
    NULL if absent.  Our keys are a few bytes long: compared in a loop,
    not by a call to memcmp, which (with the size known only at run time)
    would cost more than the rest of the scan.  */
static const msgpack_object *
s_find (const msgpack_object *map, const char *key, size_t size)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *name = &map->via.map.ptr[i].key;
        if (name->via.str.size != size)
            continue;
        size_t same = 0;
        while (same < size && name->via.str.ptr[same] == key[same])
            same++;
        if (same == size)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static const msgpack_object *
s_get (const msgpack_object *map, const char *name)
{
    return s_find (map, name, strlen (name));
}

/*  The readers below take a value that may be NULL (a missing field) and
    reject it like a value of the wrong type.  */

static int
s_int (const msgpack_object *obj, int64_t min, int64_t max, int64_t *out)
{
    int64_t value;
    if (obj && obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER
        && obj->via.u64 <= INT64_MAX)
        value = (int64_t) obj->via.u64;
    else if (obj && obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        value = obj->via.i64;
    else
        return BUS_ERR_INVALID;
    if (value < min || value > max)
        return BUS_ERR_INVALID;
    *out = value;
    return 0;
}

static int
s_u64 (const msgpack_object *obj, uint64_t *out)
{
    if (!obj || obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return BUS_ERR_INVALID;
    *out = obj->via.u64;
    return 0;
}

static int
s_u32 (const msgpack_object *obj, uint32_t *out)
{
    int64_t value = 0;
    int rc = s_int (obj, 0, UINT32_MAX, &value);
    *out = (uint32_t) value;
    return rc;
}

static int
s_i64 (const msgpack_object *obj, int64_t *out)
{
    return s_int (obj, INT64_MIN, INT64_MAX, out);
}

static int
s_bool (const msgpack_object *obj, bool *out)
{
    if (!obj || obj->type != MSGPACK_OBJECT_BOOLEAN)
        return BUS_ERR_INVALID;
    *out = obj->via.boolean;
    return 0;
}

/*  Copies a string into dst[cap].  A value that does not fit is rejected,
    never cut, and so is one holding a NUL, which C would silently cut.  */
static int
s_str (const msgpack_object *obj, char *dst, size_t cap)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR || obj->via.str.size >= cap
        || memchr (obj->via.str.ptr, '\0', obj->via.str.size))
        return BUS_ERR_INVALID;
    memcpy (dst, obj->via.str.ptr, obj->via.str.size);
    dst[obj->via.str.size] = '\0';
    return 0;
}

/*  A string that must also pass one of bus_model's validators.  */
static int
s_valid_str (const msgpack_object *obj, char *dst, size_t cap,
             bool (*valid) (const char *))
{
    int rc = s_str (obj, dst, cap);
    return rc ? rc : valid (dst) ? 0 : BUS_ERR_INVALID;
}

/*  True if obj is an array of min..max elements.  */
static bool
s_is_array (const msgpack_object *obj, uint32_t min, uint32_t max)
{
    return obj && obj->type == MSGPACK_OBJECT_ARRAY
           && obj->via.array.size >= min && obj->via.array.size <= max;
}

/*  Reads one row's value, obj (NULL if absent), into its field of the
    struct at base.  */
static int
s_read_field (const msgpack_object *obj, const s_field_t *field, void *base)
{
    char *at = (char *) base + field->offset;
    int64_t value = 0;
    int rc = BUS_ERR_INVALID;
    switch (field->type) {
        case S_VERSION:
            return s_int (obj, BUS_CODEC_VERSION, BUS_CODEC_VERSION, &value);
        case S_U64:
            rc = s_u64 (obj, (uint64_t *) at);
            return rc == 0 && *(uint64_t *) at < (uint64_t) field->min
                       ? BUS_ERR_INVALID
                       : rc;
        case S_U32: return s_u32 (obj, (uint32_t *) at);
        case S_I64: return s_i64 (obj, (int64_t *) at);
        case S_ENUM:
            rc = s_int (obj, field->min, field->max, &value);
            *(unsigned int *) at = (unsigned int) value;
            return rc;
        case S_INT:
            rc = s_int (obj, field->min, field->max, &value);
            *(int *) at = (int) value;
            return rc;
        case S_BOOL: return s_bool (obj, (bool *) at);
        case S_STR:
            return s_valid_str (obj, at, field->size,
                                field->valid ? field->valid : bus_valid_text);
    }
    return rc;
}

/*  Reads count rows, in order, from a checked map into the struct at
    base; type is the message's type, for S_NEEDED_BY rows (0 if it has
    none).  Returns 0 or the error of the first bad field.  */
static int
s_read_fields (const msgpack_object *map, const s_field_t *fields, size_t count,
               void *base, int type)
{
    for (size_t i = 0; i < count; i++) {
        const s_field_t *field = &fields[i];
        const msgpack_object *obj = s_find (map, field->key, field->key_size);
        bool needed =
            field->need == S_REQUIRED
            || (field->need == S_NEEDED_BY && field->needed_by == type);
        int rc = obj || needed ? s_read_field (obj, field, base) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

typedef int (s_line_fn) (const msgpack_object *obj, bus_line_t *line);

/*  Up to BUS_LINES_MAX lines; how many a message needs is its own rule. */
static int
s_read_lines (const msgpack_object *obj, bus_line_t *lines, uint32_t *count,
              s_line_fn *read)
{
    if (!s_is_array (obj, 0, BUS_LINES_MAX))
        return BUS_ERR_INVALID;
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        memset (&lines[i], 0, sizeof lines[i]);
        int rc = read (&obj->via.array.ptr[i], &lines[i]);
        if (rc)
            return rc;
    }
    *count = obj->via.array.size;
    return 0;
}

/*  [mod_id, ...]: at most BUS_MODS_MAX ids (bus_cmd_check checks them:
    valid and all different).  */
static int
s_read_cmd_mods (const msgpack_object *obj, bus_line_t *line)
{
    if (!s_is_array (obj, 0, BUS_MODS_MAX))
        return BUS_ERR_INVALID;
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        bus_mod_t *mod = &line->mods[i];
        int rc = s_str (&obj->via.array.ptr[i], mod->id, sizeof mod->id);
        if (rc)
            return rc;
    }
    line->mod_count = obj->via.array.size;
    return 0;
}

/*  [item_id, qty], optionally followed by note, then by the modifier
    ids, then by a free-text name; read as they are, checked as client
    input by bus_cmd_check.  */
static int
s_read_cmd_line (const msgpack_object *obj, bus_line_t *line)
{
    if (!s_is_array (obj, 2, 5))
        return BUS_ERR_INVALID;
    const msgpack_object *item = obj->via.array.ptr;
    uint32_t size = obj->via.array.size;
    int rc = s_str (&item[0], line->item_id, sizeof line->item_id);
    if (!rc)
        rc = s_u32 (&item[1], &line->qty);
    if (!rc && size >= 3)
        rc = s_str (&item[2], line->note, sizeof line->note);
    if (!rc && size >= 4)
        rc = s_read_cmd_mods (&item[3], line);
    if (!rc && size == 5)
        rc = s_str (&item[4], line->name, sizeof line->name);
    return rc;
}

/*  [mod_id, mod_name, delta_cents], as the writer priced it.  */
static int
s_read_mod (const msgpack_object *obj, bus_mod_t *mod)
{
    if (!s_is_array (obj, 3, 3))
        return BUS_ERR_INVALID;
    const msgpack_object *item = obj->via.array.ptr;
    int rc = s_valid_str (&item[0], mod->id, sizeof mod->id, bus_valid_item_id);
    if (!rc)
        rc =
            s_valid_str (&item[1], mod->name, sizeof mod->name, bus_valid_text);
    if (!rc)
        rc = s_i64 (&item[2], &mod->delta_cents);
    return rc;
}

static int
s_read_mods (const msgpack_object *obj, bus_line_t *line)
{
    if (!s_is_array (obj, 0, BUS_MODS_MAX))
        return BUS_ERR_INVALID;
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        int rc = s_read_mod (&obj->via.array.ptr[i], &line->mods[i]);
        if (rc)
            return rc;
    }
    line->mod_count = obj->via.array.size;
    return 0;
}

/*  The line state a writer stored: 1..4, a time, and a reason that is
    text of 0..120 bytes (bus_line_t).  */
static int
s_read_line_state (const msgpack_object *item, bus_line_t *line)
{
    int64_t state = 0;
    int rc = s_int (&item[0], BUS_LINE_NEW, BUS_LINE_VOIDED, &state);
    if (!rc)
        rc = s_i64 (&item[1], &line->state_ms);
    if (!rc)
        rc = s_valid_str (&item[2], line->reason, sizeof line->reason,
                          bus_valid_text);
    line->state = (uint32_t) state;
    return rc;
}

/*  [line_id, item_id, qty, note, name, station, unit_cents, mods], a line
    of an order or a cart as the writer stored it: the strings a client
    brings by their rules, the menu's as text; then, for a line with a
    state, [state, state_ms, reason].  A line stored before lines had
    states has 8 elements, and reads with state 0.  */
static int
s_read_line (const msgpack_object *obj, bus_line_t *line)
{
    if (!s_is_array (obj, 8, 11) || obj->via.array.size == 9
        || obj->via.array.size == 10)
        return BUS_ERR_INVALID;
    const msgpack_object *item = obj->via.array.ptr;
    int rc = s_u32 (&item[0], &line->line_id);
    if (!rc)
        rc = s_valid_str (&item[1], line->item_id, sizeof line->item_id,
                          bus_valid_item_id);
    if (!rc)
        rc = s_u32 (&item[2], &line->qty);
    if (!rc)
        rc = s_valid_str (&item[3], line->note, sizeof line->note,
                          bus_valid_note);
    if (!rc)
        rc = s_valid_str (&item[4], line->name, sizeof line->name,
                          bus_valid_text);
    if (!rc)
        rc = s_valid_str (&item[5], line->station, sizeof line->station,
                          s_id_or_none);
    if (!rc)
        rc = s_i64 (&item[6], &line->unit_cents);
    if (!rc)
        rc = s_read_mods (&item[7], line);
    if (!rc && obj->via.array.size == 11)
        rc = s_read_line_state (&item[8], line);
    return rc;
}

/*  The head, the fields the type may use (see s_cmd_fields), then the
    lines: types and capacities only (bus_cmd_read).  */
static int
s_read_cmd (const msgpack_object *map, void *out)
{
    bus_cmd_t *cmd = (bus_cmd_t *) out;
    const msgpack_object *obj;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_cmd_head), cmd, 0);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_cmd_fields), cmd, (int) cmd->type);
    if (!rc && (obj = s_get (map, "lines")))
        rc = s_read_lines (obj, cmd->lines, &cmd->line_count, s_read_cmd_line);
    return rc;
}

/*  ... then every rule of a command (bus_cmd_decode).  */
static int
s_read_checked_cmd (const msgpack_object *map, void *out)
{
    int rc = s_read_cmd (map, out);
    return rc ? rc : bus_cmd_check ((const bus_cmd_t *) out, NULL, 0);
}

/*  sms: exactly one time per bus_status_t value, so that every index a
    reader may use by status is there.  */
static int
s_read_times (const msgpack_object *obj, int64_t *times)
{
    if (!s_is_array (obj, BUS_STATUS_COUNT, BUS_STATUS_COUNT))
        return BUS_ERR_INVALID;
    int rc = 0;
    for (int i = 0; i < BUS_STATUS_COUNT && !rc; i++)
        rc = s_i64 (&obj->via.array.ptr[i], &times[i]);
    return rc;
}

static int
s_read_order (const msgpack_object *map, bus_order_t *order)
{
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_order_head), order, 0);
    if (!rc)
        rc = s_read_times (s_get (map, "sms"), order->status_ms);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_order_tail), order, 0);
    if (!rc)
        rc = s_read_lines (s_get (map, "lines"), order->lines,
                           &order->line_count, s_read_line);
    return rc;
}

static int
s_read_order_msg (const msgpack_object *map, void *out)
{
    return s_read_order (map, (bus_order_t *) out);
}

static int
s_read_cart (const msgpack_object *map, bus_cart_t *cart)
{
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_cart_fields), cart, 0);
    if (!rc)
        rc = s_read_lines (s_get (map, "lines"), cart->lines, &cart->line_count,
                           s_read_line);
    return rc;
}

static int
s_read_cart_msg (const msgpack_object *map, void *out)
{
    return s_read_cart (map, (bus_cart_t *) out);
}

/*  Each part is there if and only if the type names it.  A part of
    another type means writer and reader disagree about what the event is:
    better refused than half-read as an empty order or cart.  */
static int
s_read_event_part (const msgpack_object *map, bus_event_t *event)
{
    const msgpack_object *order = s_get (map, "order");
    const msgpack_object *cart = s_get (map, "cart");
    const msgpack_object *item = s_get (map, "item");
    const msgpack_object *avail = s_get (map, "avail");
    bool has_order = bus_codec__event_has_order (event->type);
    bool has_cart = event->type == BUS_EVENT_CART;
    bool has_item = event->type == BUS_EVENT_MENU_ITEM;
    if ((order != NULL) != has_order || (cart != NULL) != has_cart
        || (item || avail) != has_item)
        return BUS_ERR_INVALID;
    if (has_order)
        return s_read_order (order, &event->order);
    if (has_cart)
        return s_read_cart (cart, &event->cart);
    return s_read_fields (map, S_FIELDS (s_event_item), event, 0);
}

static int
s_read_event (const msgpack_object *map, void *out)
{
    bus_event_t *event = (bus_event_t *) out;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_event_fields), event, 0);
    if (!rc)
        rc = s_read_event_part (map, event);
    return rc;
}

/*  An ack carries an event only on success; a failed ack's event, if a
    writer sent one, is ignored like any unknown field.  */
static int
s_read_ack (const msgpack_object *map, void *out)
{
    bus_ack_t *ack = (bus_ack_t *) out;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_fields (map, S_FIELDS (s_ack_fields), ack, 0);
    //  Any of the history's keys: all four, as wherever they appear
    bool epoch = false;
    for (size_t i = 0; !rc && i < S_COUNT (s_ack_epoch_fields); i++)
        epoch |= s_find (map, s_ack_epoch_fields[i].key,
                         s_ack_epoch_fields[i].key_size)
                 != NULL;
    if (!rc && epoch)
        rc = s_read_fields (map, S_FIELDS (s_ack_epoch_fields), ack, 0);
    if (!rc && ack->status == 0)
        rc = s_read_event (s_get (map, "event"), &ack->event);
    return rc;
}

/*  A map of scalars only, from a table.  */
static int
s_read_map (const msgpack_object *map, const s_field_t *fields, size_t count,
            void *out)
{
    int rc = s_check_map (map);
    return rc ? rc : s_read_fields (map, fields, count, out, 0);
}

/*  How to decode one kind of message: what to zero, and how to read it. */
typedef struct {
    size_t zero_size;  /* bytes zeroed from the start of the output */
    s_reset_fn *reset; /* or, if set, what zeroes it instead        */
    s_read_fn *read;   /* the reader; NULL for a map of scalars
                                  only, read from fields                    */
    const s_field_t *fields;
    size_t field_count;
} s_message_t;

static void
s_reset (const s_message_t *message, void *out)
{
    if (message->reset)
        message->reset (out);
    else
        memset (out, 0, message->zero_size);
}

static int
s_decode (const void *data, size_t size, void *out, const s_message_t *message)
{
    s_reset (message, out);
    msgpack_unpacked msg;
    msgpack_unpacked_init (&msg);
    int rc = s_unpack (data, size, &msg);
    if (!rc && msg.data.type != MSGPACK_OBJECT_MAP)
        rc = BUS_ERR_MALFORMED;
    if (!rc)
        rc = message->read ? message->read (&msg.data, out)
                           : s_read_map (&msg.data, message->fields,
                                         message->field_count, out);
    msgpack_unpacked_destroy (&msg);
    if (rc)
        s_reset (message, out);
    return rc;
}

/*  The eight kinds.  Commands, orders and carts keep their line slots
    (see above); the scalar-only maps are read from their tables.  */
static const s_message_t s_cmd_message = { .zero_size =
                                               offsetof (bus_cmd_t, lines),
                                           .read = s_read_checked_cmd };
static const s_message_t s_cmd_read_message = { .zero_size =
                                                    offsetof (bus_cmd_t, lines),
                                                .read = s_read_cmd };
static const s_message_t s_order_message = { .zero_size =
                                                 offsetof (bus_order_t, lines),
                                             .read = s_read_order_msg };
static const s_message_t s_cart_message = { .zero_size =
                                                offsetof (bus_cart_t, lines),
                                            .read = s_read_cart_msg };
static const s_message_t s_event_message = { .reset = s_reset_event,
                                             .read = s_read_event };
static const s_message_t s_ack_message = { .reset = s_reset_ack,
                                           .read = s_read_ack };
static const s_message_t s_heartbeat_message = {
    .zero_size = sizeof (bus_heartbeat_t),
    .fields = s_heartbeat_fields,
    .field_count = S_COUNT (s_heartbeat_fields)
};
static const s_message_t s_epoch_message = { .zero_size = sizeof (bus_epoch_t),
                                             .fields = s_epoch_fields,
                                             .field_count =
                                                 S_COUNT (s_epoch_fields) };
static const s_message_t s_sync_req_message = {
    .zero_size = sizeof (bus_sync_req_t),
    .fields = s_sync_req_fields,
    .field_count = S_COUNT (s_sync_req_fields)
};
static const s_message_t s_sync_reply_message = {
    .zero_size = sizeof (bus_sync_reply_t),
    .fields = s_sync_reply_fields,
    .field_count = S_COUNT (s_sync_reply_fields)
};

static const s_message_t s_repl_up_message = { .zero_size =
                                                   sizeof (bus_repl_up_t),
                                               .fields = s_repl_up_fields,
                                               .field_count =
                                                   S_COUNT (s_repl_up_fields) };
static const s_message_t s_repl_batch_message = {
    .zero_size = sizeof (bus_repl_batch_t),
    .fields = s_repl_batch_fields,
    .field_count = S_COUNT (s_repl_batch_fields)
};
static const s_message_t s_repl_key_message = {
    .zero_size = sizeof (bus_repl_key_t),
    .fields = s_repl_key_fields,
    .field_count = S_COUNT (s_repl_key_fields)
};

int
bus_repl_up_decode (const void *data, size_t size, bus_repl_up_t *out)
{
    return s_decode (data, size, out, &s_repl_up_message);
}

int
bus_repl_batch_decode (const void *data, size_t size, bus_repl_batch_t *out)
{
    int rc = s_decode (data, size, out, &s_repl_batch_message);
    //  A batch is bounded: the receiver sizes nothing by a count above it
    if (rc == 0 && out->count > BUS_REPL_BATCH_MAX) {
        memset (out, 0, sizeof *out);
        rc = BUS_ERR_TOO_BIG;
    }
    return rc;
}

int
bus_repl_key_decode (const void *data, size_t size, bus_repl_key_t *out)
{
    return s_decode (data, size, out, &s_repl_key_message);
}

int
bus_cmd_decode (const void *data, size_t size, bus_cmd_t *out)
{
    return s_decode (data, size, out, &s_cmd_message);
}

int
bus_cmd_read (const void *data, size_t size, bus_cmd_t *out)
{
    return s_decode (data, size, out, &s_cmd_read_message);
}

int
bus_order_decode (const void *data, size_t size, bus_order_t *out)
{
    return s_decode (data, size, out, &s_order_message);
}

int
bus_cart_decode (const void *data, size_t size, bus_cart_t *out)
{
    return s_decode (data, size, out, &s_cart_message);
}

int
bus_event_decode (const void *data, size_t size, bus_event_t *out)
{
    return s_decode (data, size, out, &s_event_message);
}

int
bus_ack_decode (const void *data, size_t size, bus_ack_t *out)
{
    return s_decode (data, size, out, &s_ack_message);
}

int
bus_heartbeat_decode (const void *data, size_t size, bus_heartbeat_t *out)
{
    return s_decode (data, size, out, &s_heartbeat_message);
}

int
bus_epoch_decode (const void *data, size_t size, bus_epoch_t *out)
{
    return s_decode (data, size, out, &s_epoch_message);
}

int
bus_sync_req_decode (const void *data, size_t size, bus_sync_req_t *out)
{
    return s_decode (data, size, out, &s_sync_req_message);
}

int
bus_sync_reply_decode (const void *data, size_t size, bus_sync_reply_t *out)
{
    return s_decode (data, size, out, &s_sync_reply_message);
}

/*  --------------------------------------------------------------------
    Fingerprint: FNV-1a 64 over a canonical byte sequence.  Numbers go in
    as 4 (8 for 64-bit ones) little-endian bytes, so the value (which is
    stored) does not depend on the host; strings go in length first, so
    ("ab", "c") and ("a", "bc") differ.  Counts go in before what they
    count, and nothing past a count does, so leftovers in unused slots
    never matter.  */

#define S_FNV_OFFSET 0xcbf29ce484222325ULL
#define S_FNV_PRIME  0x100000001b3ULL

static uint64_t
s_fnv_bytes (uint64_t hash, const void *data, size_t size)
{
    const uint8_t *byte = (const uint8_t *) data;
    for (size_t i = 0; i < size; i++) {
        hash ^= byte[i];
        hash *= S_FNV_PRIME;
    }
    return hash;
}

static uint64_t
s_fnv_u32 (uint64_t hash, uint32_t value)
{
    uint8_t bytes[4] = { (uint8_t) value, (uint8_t) (value >> 8),
                         (uint8_t) (value >> 16), (uint8_t) (value >> 24) };
    return s_fnv_bytes (hash, bytes, sizeof bytes);
}

static uint64_t
s_fnv_u64 (uint64_t hash, uint64_t value)
{
    hash = s_fnv_u32 (hash, (uint32_t) value);
    return s_fnv_u32 (hash, (uint32_t) (value >> 32));
}

static uint64_t
s_fnv_str (uint64_t hash, const char *s, size_t cap)
{
    size_t len = strnlen (s, cap);
    return s_fnv_bytes (s_fnv_u32 (hash, (uint32_t) len), s, len);
}

/*  A line as a command can state it, which is all a command asks for:
    line ids, names, stations and prices are the writer's, from the menu,
    and never travel in a command.  */
static uint64_t
s_fnv_line (uint64_t hash, const bus_line_t *line)
{
    assert (line->mod_count <= BUS_MODS_MAX);
    hash = s_fnv_str (hash, line->item_id, sizeof line->item_id);
    hash = s_fnv_u32 (hash, line->qty);
    hash = s_fnv_str (hash, line->note, sizeof line->note);
    hash = s_fnv_u32 (hash, line->mod_count);
    for (uint32_t i = 0; i < line->mod_count; i++)
        hash = s_fnv_str (hash, line->mods[i].id, sizeof line->mods[i].id);
    //  only when present, so stored fingerprints of named-less lines stand
    if (*line->name)
        hash = s_fnv_str (hash, line->name, sizeof line->name);
    return hash;
}

uint64_t
bus_cmd_fingerprint (const bus_cmd_t *cmd)
{
    assert (cmd->line_count <= BUS_LINES_MAX);
    uint64_t hash = S_FNV_OFFSET;
    hash = s_fnv_u32 (hash, (uint32_t) cmd->type);
    hash = s_fnv_str (hash, cmd->table, sizeof cmd->table);
    hash = s_fnv_str (hash, cmd->note, sizeof cmd->note);
    hash = s_fnv_u64 (hash, cmd->order_id);
    hash = s_fnv_u32 (hash, cmd->status);
    hash = s_fnv_u32 (hash, cmd->version);
    hash = s_fnv_u32 (hash, cmd->line_id);
    hash = s_fnv_u32 (hash, cmd->qty);
    hash = s_fnv_str (hash, cmd->item_id, sizeof cmd->item_id);
    hash = s_fnv_u32 (hash, cmd->available);
    if (cmd->open_menu)   //  as for names: only when set
        hash = s_fnv_u32 (hash, 0x6f70656e);
    //  Only LINE_STATE sets these: every other command keeps the
    //  fingerprint its key was stored with
    if (*cmd->station)
        hash = s_fnv_str (hash, cmd->station, sizeof cmd->station);
    if (cmd->line_state)
        hash = s_fnv_u32 (hash, 0x6c730000 | cmd->line_state);
    hash = s_fnv_u32 (hash, cmd->line_count);
    for (uint32_t i = 0; i < cmd->line_count; i++)
        hash = s_fnv_line (hash, &cmd->lines[i]);
    return hash;
}
