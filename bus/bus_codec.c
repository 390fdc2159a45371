/*  bus_codec.c — MessagePack encoding of the bus's messages.

    Encoding packs each struct with msgpack-c into a growing buffer, keys in
    a fixed order, so the same struct always gives the same bytes.

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

#define S_VERSION 1

/*  --------------------------------------------------------------------
    Encoding  */

/*  A packer writing into a growing buffer.  Every write goes through
    s_write, which remembers an out-of-memory failure, so the pack calls
    themselves need no checks.  */
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    bool failed;
} s_writer_t;

static int
s_write (void *data, const char *buf, size_t len)
{
    s_writer_t *self = (s_writer_t *) data;
    if (msgpack_sbuffer_write (&self->buffer, buf, len))
        self->failed = true;
    return self->failed ? -1 : 0;
}

static void
s_writer_init (s_writer_t *self)
{
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer_init (&self->packer, self, s_write);
    self->failed = false;
}

/*  Returns the written bytes as a new frame, or NULL if a write failed;
    frees the buffer either way.  */
static zframe_t *
s_writer_frame (s_writer_t *self)
{
    zframe_t *frame = self->failed
                      ? NULL
                      : zframe_new (self->buffer.data, self->buffer.size);
    msgpack_sbuffer_destroy (&self->buffer);
    return frame;
}

/*  Packs a struct's string field.  strnlen keeps us inside the field even
    if a caller forgot the NUL; the decoder then rejects the full-length
    string instead of us reading past the struct.  */
static void
s_pack_str (msgpack_packer *pk, const char *s, size_t cap)
{
    msgpack_pack_str_with_body (pk, s, strnlen (s, cap));
}

static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body (pk, key, strlen (key));
}

static void
s_put_uint (msgpack_packer *pk, const char *key, uint64_t value)
{
    s_pack_key (pk, key);
    msgpack_pack_uint64 (pk, value);
}

static void
s_put_int (msgpack_packer *pk, const char *key, int64_t value)
{
    s_pack_key (pk, key);
    msgpack_pack_int64 (pk, value);
}

static void
s_put_str (msgpack_packer *pk, const char *key, const char *s, size_t cap)
{
    s_pack_key (pk, key);
    s_pack_str (pk, s, cap);
}

static void
s_put_bool (msgpack_packer *pk, const char *key, bool value)
{
    s_pack_key (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

static void
s_pack_cmd_line (msgpack_packer *pk, const bus_line_t *line)
{
    msgpack_pack_array (pk, 3);
    s_pack_str (pk, line->item_id, sizeof line->item_id);
    msgpack_pack_uint64 (pk, line->qty);
    s_pack_str (pk, line->note, sizeof line->note);
}

static void
s_pack_order_line (msgpack_packer *pk, const bus_line_t *line)
{
    msgpack_pack_array (pk, 5);
    s_pack_str (pk, line->item_id, sizeof line->item_id);
    msgpack_pack_uint64 (pk, line->qty);
    s_pack_str (pk, line->note, sizeof line->note);
    s_pack_str (pk, line->name, sizeof line->name);
    msgpack_pack_int64 (pk, line->unit_cents);
}

static void
s_pack_order (msgpack_packer *pk, const bus_order_t *order)
{
    assert (order->line_count <= BUS_LINES_MAX);
    msgpack_pack_map (pk, 12);
    s_put_uint (pk, "id", order->id);
    s_put_uint (pk, "seq", order->seq);
    s_put_uint (pk, "ver", order->version);
    s_put_int (pk, "st", order->status);
    s_put_str (pk, "table", order->table, sizeof order->table);
    s_put_str (pk, "key", order->key, sizeof order->key);
    s_put_str (pk, "origin", order->origin, sizeof order->origin);
    s_put_str (pk, "note", order->note, sizeof order->note);
    s_put_int (pk, "cms", order->created_ms);
    s_put_int (pk, "ums", order->updated_ms);
    s_put_int (pk, "total", order->total_cents);
    s_pack_key (pk, "lines");
    msgpack_pack_array (pk, order->line_count);
    for (uint32_t i = 0; i < order->line_count; i++)
        s_pack_order_line (pk, &order->lines[i]);
}

zframe_t *
bus_cmd_encode (const bus_cmd_t *cmd)
{
    assert (cmd->line_count <= BUS_LINES_MAX);
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 7);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_int (&w.packer, "type", cmd->type);
    s_put_str (&w.packer, "key", cmd->key, sizeof cmd->key);
    s_put_str (&w.packer, "origin", cmd->origin, sizeof cmd->origin);
    s_put_str (&w.packer, "table", cmd->table, sizeof cmd->table);
    s_put_str (&w.packer, "note", cmd->note, sizeof cmd->note);
    s_pack_key (&w.packer, "lines");
    msgpack_pack_array (&w.packer, cmd->line_count);
    for (uint32_t i = 0; i < cmd->line_count; i++)
        s_pack_cmd_line (&w.packer, &cmd->lines[i]);
    return s_writer_frame (&w);
}

zframe_t *
bus_order_encode (const bus_order_t *order)
{
    s_writer_t w;
    s_writer_init (&w);
    s_pack_order (&w.packer, order);
    return s_writer_frame (&w);
}

zframe_t *
bus_event_encode (const bus_event_t *event)
{
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 5);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "seq", event->seq);
    s_put_int (&w.packer, "ts", event->ts_ms);
    s_put_int (&w.packer, "type", event->type);
    s_pack_key (&w.packer, "order");
    s_pack_order (&w.packer, &event->order);
    return s_writer_frame (&w);
}

zframe_t *
bus_ack_encode (const bus_ack_t *ack)
{
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, ack->status == 0 ? 6 : 5);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_str (&w.packer, "key", ack->key, sizeof ack->key);
    s_put_int (&w.packer, "st", ack->status);
    s_put_bool (&w.packer, "dup", ack->duplicate);
    s_put_str (&w.packer, "err", ack->error, sizeof ack->error);
    if (ack->status == 0) {
        s_pack_key (&w.packer, "order");
        s_pack_order (&w.packer, &ack->order);
    }
    return s_writer_frame (&w);
}

zframe_t *
bus_heartbeat_encode (const bus_heartbeat_t *hb)
{
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 3);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "seq", hb->seq);
    s_put_int (&w.packer, "ts", hb->ts_ms);
    return s_writer_frame (&w);
}

zframe_t *
bus_sync_req_encode (const bus_sync_req_t *req)
{
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 10);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_int (&w.packer, "op", req->op);
    s_put_uint (&w.packer, "rid", req->rid);
    s_put_uint (&w.packer, "from", req->from);
    s_put_uint (&w.packer, "limit", req->limit);
    s_put_uint (&w.packer, "id", req->id);
    s_put_uint (&w.packer, "status", req->status);
    s_put_str (&w.packer, "table", req->table, sizeof req->table);
    s_put_str (&w.packer, "role", req->role, sizeof req->role);
    s_put_str (&w.packer, "name", req->name, sizeof req->name);
    return s_writer_frame (&w);
}

zframe_t *
bus_sync_reply_encode (const bus_sync_reply_t *reply)
{
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 7);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "rid", reply->rid);
    s_put_int (&w.packer, "st", reply->status);
    s_put_str (&w.packer, "err", reply->error, sizeof reply->error);
    s_put_uint (&w.packer, "seq", reply->seq);
    s_put_uint (&w.packer, "next", reply->next);
    s_put_uint (&w.packer, "n", reply->count);
    return s_writer_frame (&w);
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
    {S_DATA, 0, 0}, {S_BAD, 0, 0}, {S_DATA, 0, 0}, {S_DATA, 0, 0},
    /* bin 8/16/32, ext 8/16/32 (a length, then a type byte) */
    {S_DATA, 1, 0}, {S_DATA, 2, 0}, {S_DATA, 4, 0},
    {S_DATA, 1, 1}, {S_DATA, 2, 1}, {S_DATA, 4, 1},
    /* float 32/64, uint 8..64, int 8..64 */
    {S_DATA, 0, 4}, {S_DATA, 0, 8},
    {S_DATA, 0, 1}, {S_DATA, 0, 2}, {S_DATA, 0, 4}, {S_DATA, 0, 8},
    {S_DATA, 0, 1}, {S_DATA, 0, 2}, {S_DATA, 0, 4}, {S_DATA, 0, 8},
    /* fixext 1/2/4/8/16 (a type byte, then the data) */
    {S_DATA, 0, 2}, {S_DATA, 0, 3}, {S_DATA, 0, 5}, {S_DATA, 0, 9},
    {S_DATA, 0, 17},
    /* str 8/16/32, array 16/32, map 16/32 */
    {S_DATA, 1, 0}, {S_DATA, 2, 0}, {S_DATA, 4, 0},
    {S_ITEMS, 2, 0}, {S_ITEMS, 4, 0},
    {S_PAIRS, 2, 0}, {S_PAIRS, 4, 0},
};

static s_head_t
s_head (uint8_t byte)
{
    if (byte >= 0xc0 && byte <= 0xdf)
        return s_heads[byte - 0xc0];
    if (byte >= 0x80 && byte <= 0x8f)
        return (s_head_t) {S_PAIRS, 0, byte & 0x0f};        /* fixmap   */
    if (byte >= 0x90 && byte <= 0x9f)
        return (s_head_t) {S_ITEMS, 0, byte & 0x0f};        /* fixarray */
    if (byte >= 0xa0 && byte <= 0xbf)
        return (s_head_t) {S_DATA, 0, byte & 0x1f};         /* fixstr   */
    return (s_head_t) {S_DATA, 0, 0};                       /* fixint   */
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
        uint64_t length = head.fixed;
        for (int i = 0; i < head.width; i++)
            length = length << 8 | *p++;
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
        }
        else
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
    msgpack_unpack_return ret
        = msgpack_unpack_next (msg, (const char *) data, size, &offset);
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
    map and returns 0 or a bus_err_t; s_decode zeroes the output on error. */

typedef int (s_read_fn) (const msgpack_object *obj, void *out);

static int
s_decode (const void *data, size_t size, void *out, size_t out_size,
          s_read_fn *read)
{
    memset (out, 0, out_size);
    msgpack_unpacked msg;
    msgpack_unpacked_init (&msg);
    int rc = s_unpack (data, size, &msg);
    if (!rc && msg.data.type != MSGPACK_OBJECT_MAP)
        rc = BUS_ERR_MALFORMED;
    if (!rc)
        rc = read (&msg.data, out);
    msgpack_unpacked_destroy (&msg);
    if (rc)
        memset (out, 0, out_size);
    return rc;
}

/*  True if the string object str holds the size bytes at text.  */
static bool
s_str_is (const msgpack_object *str, const char *text, size_t size)
{
    return str->via.str.size == size
           && memcmp (str->via.str.ptr, text, size) == 0;
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

/*  Returns the value under name in a checked map, or NULL if absent.  */
static const msgpack_object *
s_get (const msgpack_object *map, const char *name)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (s_str_is (&map->via.map.ptr[i].key, name, strlen (name)))
            return &map->via.map.ptr[i].val;
    return NULL;
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

/*  For enums and status codes: an int in [min, max].  */
static int
s_enum (const msgpack_object *obj, int min, int max, int *out)
{
    int64_t value = 0;
    int rc = s_int (obj, min, max, &value);
    *out = (int) value;
    return rc;
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

static bool
s_nonempty (const char *s)
{
    return *s != '\0';
}

static int
s_read_version (const msgpack_object *map)
{
    int64_t version = 0;
    return s_int (s_get (map, "v"), S_VERSION, S_VERSION, &version);
}

typedef int (s_line_fn) (const msgpack_object *obj, bus_line_t *line);

static int
s_read_lines (const msgpack_object *obj, uint32_t min, bus_line_t *lines,
              uint32_t *count, s_line_fn *read)
{
    if (!obj || obj->type != MSGPACK_OBJECT_ARRAY
        || obj->via.array.size < min || obj->via.array.size > BUS_LINES_MAX)
        return BUS_ERR_INVALID;
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        int rc = read (&obj->via.array.ptr[i], &lines[i]);
        if (rc)
            return rc;
    }
    *count = obj->via.array.size;
    return 0;
}

/*  [item_id, qty] or [item_id, qty, note], checked as client input.  */
static int
s_read_cmd_line (const msgpack_object *obj, bus_line_t *line)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size < 2
        || obj->via.array.size > 3)
        return BUS_ERR_INVALID;
    const msgpack_object *item = obj->via.array.ptr;
    int64_t qty = 0;
    int rc = s_valid_str (&item[0], line->item_id, sizeof line->item_id,
                          bus_valid_item_id);
    if (!rc)
        rc = s_int (&item[1], 1, BUS_QTY_MAX, &qty);
    line->qty = (uint32_t) qty;
    if (!rc && obj->via.array.size == 3)
        rc = s_valid_str (&item[2], line->note, sizeof line->note,
                          bus_valid_note);
    return rc;
}

/*  [item_id, qty, note, name, unit_cents], as the writer stored it.  */
static int
s_read_order_line (const msgpack_object *obj, bus_line_t *line)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size != 5)
        return BUS_ERR_INVALID;
    const msgpack_object *item = obj->via.array.ptr;
    int rc = s_str (&item[0], line->item_id, sizeof line->item_id);
    if (!rc)
        rc = s_u32 (&item[1], &line->qty);
    if (!rc)
        rc = s_str (&item[2], line->note, sizeof line->note);
    if (!rc)
        rc = s_str (&item[3], line->name, sizeof line->name);
    if (!rc)
        rc = s_i64 (&item[4], &line->unit_cents);
    return rc;
}

static int
s_read_cmd (const msgpack_object *map, void *out)
{
    bus_cmd_t *cmd = (bus_cmd_t *) out;
    const msgpack_object *obj;
    int type = 0;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_version (map);
    if (!rc)
        rc = s_enum (s_get (map, "type"), BUS_CMD_PLACE, BUS_CMD_PLACE, &type);
    cmd->type = (bus_cmd_type_t) type;
    if (!rc)
        rc = s_valid_str (s_get (map, "key"), cmd->key, sizeof cmd->key,
                          bus_valid_key);
    if (!rc)
        rc = s_valid_str (s_get (map, "origin"), cmd->origin,
                          sizeof cmd->origin, s_nonempty);
    if (!rc)
        rc = s_valid_str (s_get (map, "table"), cmd->table, sizeof cmd->table,
                          bus_valid_table);
    if (!rc && (obj = s_get (map, "note")))
        rc = s_valid_str (obj, cmd->note, sizeof cmd->note, bus_valid_note);
    if (!rc)
        rc = s_read_lines (s_get (map, "lines"), 1, cmd->lines,
                           &cmd->line_count, s_read_cmd_line);
    return rc;
}

/*  Orders come from the writer: types and sizes are checked, business
    rules are not.  */
static int
s_read_order (const msgpack_object *map, bus_order_t *order)
{
    int status = 0;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_u64 (s_get (map, "id"), &order->id);
    if (!rc)
        rc = s_u64 (s_get (map, "seq"), &order->seq);
    if (!rc)
        rc = s_u32 (s_get (map, "ver"), &order->version);
    if (!rc)
        rc = s_enum (s_get (map, "st"), BUS_STATUS_PLACED,
                     BUS_STATUS_CANCELLED, &status);
    order->status = (bus_status_t) status;
    if (!rc)
        rc = s_str (s_get (map, "table"), order->table, sizeof order->table);
    if (!rc)
        rc = s_str (s_get (map, "key"), order->key, sizeof order->key);
    if (!rc)
        rc = s_str (s_get (map, "origin"), order->origin, sizeof order->origin);
    if (!rc)
        rc = s_str (s_get (map, "note"), order->note, sizeof order->note);
    if (!rc)
        rc = s_i64 (s_get (map, "cms"), &order->created_ms);
    if (!rc)
        rc = s_i64 (s_get (map, "ums"), &order->updated_ms);
    if (!rc)
        rc = s_i64 (s_get (map, "total"), &order->total_cents);
    if (!rc)
        rc = s_read_lines (s_get (map, "lines"), 0, order->lines,
                           &order->line_count, s_read_order_line);
    return rc;
}

static int
s_read_order_msg (const msgpack_object *map, void *out)
{
    return s_read_order (map, (bus_order_t *) out);
}

static int
s_read_event (const msgpack_object *map, void *out)
{
    bus_event_t *event = (bus_event_t *) out;
    int type = 0;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_version (map);
    if (!rc)
        rc = s_u64 (s_get (map, "seq"), &event->seq);
    if (!rc)
        rc = s_i64 (s_get (map, "ts"), &event->ts_ms);
    if (!rc)
        rc = s_enum (s_get (map, "type"), BUS_EVENT_ORDER_PLACED,
                     BUS_EVENT_ORDER_PLACED, &type);
    event->type = (bus_event_type_t) type;
    if (!rc)
        rc = s_read_order (s_get (map, "order"), &event->order);
    return rc;
}

/*  An ack carries an order only on success; a failed ack's order, if a
    writer sent one, is ignored like any unknown field.  */
static int
s_read_ack (const msgpack_object *map, void *out)
{
    bus_ack_t *ack = (bus_ack_t *) out;
    const msgpack_object *obj;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_version (map);
    if (!rc)
        rc = s_str (s_get (map, "key"), ack->key, sizeof ack->key);
    if (!rc)
        rc = s_enum (s_get (map, "st"), INT_MIN, 0, &ack->status);
    if (!rc && (obj = s_get (map, "dup")))
        rc = s_bool (obj, &ack->duplicate);
    if (!rc && (obj = s_get (map, "err")))
        rc = s_str (obj, ack->error, sizeof ack->error);
    if (!rc && ack->status == 0)
        rc = s_read_order (s_get (map, "order"), &ack->order);
    return rc;
}

static int
s_read_heartbeat (const msgpack_object *map, void *out)
{
    bus_heartbeat_t *hb = (bus_heartbeat_t *) out;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_version (map);
    if (!rc)
        rc = s_u64 (s_get (map, "seq"), &hb->seq);
    if (!rc)
        rc = s_i64 (s_get (map, "ts"), &hb->ts_ms);
    return rc;
}

static int
s_read_sync_req (const msgpack_object *map, void *out)
{
    bus_sync_req_t *req = (bus_sync_req_t *) out;
    const msgpack_object *obj;
    int op = 0;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_version (map);
    if (!rc)
        rc = s_enum (s_get (map, "op"), BUS_SYNC_SNAPSHOT, BUS_SYNC_STATS, &op);
    req->op = (bus_sync_op_t) op;
    if (!rc)
        rc = s_u64 (s_get (map, "rid"), &req->rid);
    if (!rc && (obj = s_get (map, "from")))
        rc = s_u64 (obj, &req->from);
    if (!rc && (obj = s_get (map, "limit")))
        rc = s_u32 (obj, &req->limit);
    if (!rc && (obj = s_get (map, "id")))
        rc = s_u64 (obj, &req->id);
    if (!rc && (obj = s_get (map, "status")))
        rc = s_u32 (obj, &req->status);
    if (!rc && (obj = s_get (map, "table")))
        rc = s_str (obj, req->table, sizeof req->table);
    if (!rc && (obj = s_get (map, "role")))
        rc = s_str (obj, req->role, sizeof req->role);
    if (!rc && (obj = s_get (map, "name")))
        rc = s_str (obj, req->name, sizeof req->name);
    return rc;
}

static int
s_read_sync_reply (const msgpack_object *map, void *out)
{
    bus_sync_reply_t *reply = (bus_sync_reply_t *) out;
    const msgpack_object *obj;
    int rc = s_check_map (map);
    if (!rc)
        rc = s_read_version (map);
    if (!rc)
        rc = s_u64 (s_get (map, "rid"), &reply->rid);
    if (!rc)
        rc = s_enum (s_get (map, "st"), INT_MIN, 0, &reply->status);
    if (!rc && (obj = s_get (map, "err")))
        rc = s_str (obj, reply->error, sizeof reply->error);
    if (!rc && (obj = s_get (map, "seq")))
        rc = s_u64 (obj, &reply->seq);
    if (!rc && (obj = s_get (map, "next")))
        rc = s_u64 (obj, &reply->next);
    if (!rc && (obj = s_get (map, "n")))
        rc = s_u32 (obj, &reply->count);
    return rc;
}

int
bus_cmd_decode (const void *data, size_t size, bus_cmd_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_cmd);
}

int
bus_order_decode (const void *data, size_t size, bus_order_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_order_msg);
}

int
bus_event_decode (const void *data, size_t size, bus_event_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_event);
}

int
bus_ack_decode (const void *data, size_t size, bus_ack_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_ack);
}

int
bus_heartbeat_decode (const void *data, size_t size, bus_heartbeat_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_heartbeat);
}

int
bus_sync_req_decode (const void *data, size_t size, bus_sync_req_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_sync_req);
}

int
bus_sync_reply_decode (const void *data, size_t size, bus_sync_reply_t *out)
{
    return s_decode (data, size, out, sizeof *out, s_read_sync_reply);
}

/*  --------------------------------------------------------------------
    Fingerprint: FNV-1a 64 over a canonical byte sequence.  Numbers go in
    as 4 little-endian bytes, so the value (which is stored) does not
    depend on the host; strings go in length first, so ("ab", "c") and
    ("a", "bc") differ.  */

#define S_FNV_OFFSET 0xcbf29ce484222325ULL
#define S_FNV_PRIME 0x100000001b3ULL

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
    uint8_t bytes[4] = {(uint8_t) value, (uint8_t) (value >> 8),
                        (uint8_t) (value >> 16), (uint8_t) (value >> 24)};
    return s_fnv_bytes (hash, bytes, sizeof bytes);
}

static uint64_t
s_fnv_str (uint64_t hash, const char *s, size_t cap)
{
    size_t len = strnlen (s, cap);
    return s_fnv_bytes (s_fnv_u32 (hash, (uint32_t) len), s, len);
}

uint64_t
bus_cmd_fingerprint (const bus_cmd_t *cmd)
{
    assert (cmd->line_count <= BUS_LINES_MAX);
    uint64_t hash = S_FNV_OFFSET;
    hash = s_fnv_u32 (hash, (uint32_t) cmd->type);
    hash = s_fnv_str (hash, cmd->table, sizeof cmd->table);
    hash = s_fnv_str (hash, cmd->note, sizeof cmd->note);
    hash = s_fnv_u32 (hash, cmd->line_count);
    for (uint32_t i = 0; i < cmd->line_count; i++) {
        const bus_line_t *line = &cmd->lines[i];
        hash = s_fnv_str (hash, line->item_id, sizeof line->item_id);
        hash = s_fnv_u32 (hash, line->qty);
        hash = s_fnv_str (hash, line->note, sizeof line->note);
    }
    return hash;
}

/*  --------------------------------------------------------------------
    Selftest  */

/*  Sets dst to len copies of c.  */
static void
s_test_fill (char *dst, size_t len, char c)
{
    memset (dst, c, len);
    dst[len] = '\0';
}

/*  A 280-byte note of two-byte UTF-8 characters.  */
static void
s_test_long_note (char *dst)
{
    for (size_t i = 0; i < BUS_NOTE_MAX - 1; i += 2)
        memcpy (dst + i, "\xc3\xa9", 2);
    dst[BUS_NOTE_MAX - 1] = '\0';
}

static void
s_test_cmd (bus_cmd_t *cmd)
{
    memset (cmd, 0, sizeof *cmd);
    cmd->type = BUS_CMD_PLACE;
    strcpy (cmd->key, "pad-7-0001");
    strcpy (cmd->origin, "patio");
    strcpy (cmd->table, "T12");
    strcpy (cmd->note, "birthday, bring candles");
    cmd->line_count = 2;
    strcpy (cmd->lines[0].item_id, "burger");
    cmd->lines[0].qty = 2;
    strcpy (cmd->lines[0].note, "no onions");
    strcpy (cmd->lines[1].item_id, "fries.large");
    cmd->lines[1].qty = 1;
}

/*  Every string at its longest, and the most lines.  */
static void
s_test_cmd_max (bus_cmd_t *cmd)
{
    memset (cmd, 0, sizeof *cmd);
    cmd->type = BUS_CMD_PLACE;
    s_test_fill (cmd->key, BUS_KEY_MAX - 1, 'k');
    s_test_fill (cmd->origin, BUS_NAME_MAX - 1, 'o');
    s_test_fill (cmd->table, BUS_TABLE_MAX - 1, 'T');
    s_test_long_note (cmd->note);
    cmd->line_count = BUS_LINES_MAX;
    for (uint32_t i = 0; i < BUS_LINES_MAX; i++) {
        bus_line_t *line = &cmd->lines[i];
        s_test_fill (line->item_id, BUS_ID_MAX - 1, 'x');
        line->item_id[0] = (char) ('A' + i % 26);
        line->item_id[1] = (char) ('0' + i / 26);
        line->qty = BUS_QTY_MAX - i;
        s_test_long_note (line->note);
    }
}

static void
s_test_order (bus_order_t *order, bool max)
{
    memset (order, 0, sizeof *order);
    order->id = 12;
    order->seq = 40;
    order->version = 3;
    order->status = BUS_STATUS_PREPARING;
    order->created_ms = 1767000000000;
    order->updated_ms = 1767000042000;
    strcpy (order->table, "T12");
    strcpy (order->key, "pad-7-0001");
    strcpy (order->origin, "patio");
    order->line_count = 1;
    strcpy (order->lines[0].item_id, "burger");
    order->lines[0].qty = 2;
    strcpy (order->lines[0].name, "Classic Burger");
    order->lines[0].unit_cents = 1250;
    order->total_cents = 2500;
    if (max) {
        order->id = UINT64_MAX;
        order->seq = UINT64_MAX - 1;
        order->version = UINT32_MAX;
        order->status = BUS_STATUS_CANCELLED;
        order->created_ms = INT64_MIN;
        order->updated_ms = INT64_MAX;
        order->total_cents = -1;
        s_test_fill (order->table, BUS_TABLE_MAX - 1, 'T');
        s_test_fill (order->key, BUS_KEY_MAX - 1, 'k');
        s_test_fill (order->origin, BUS_NAME_MAX - 1, 'o');
        s_test_long_note (order->note);
        order->line_count = BUS_LINES_MAX;
        for (uint32_t i = 0; i < BUS_LINES_MAX; i++) {
            bus_line_t *line = &order->lines[i];
            s_test_fill (line->item_id, BUS_ID_MAX - 1, (char) ('a' + i % 26));
            line->qty = UINT32_MAX - i;
            s_test_long_note (line->note);
            s_test_fill (line->name, BUS_NAME_MAX - 1, 'n');
            line->unit_cents = (int64_t) i * 1000 - 20000;
        }
    }
}

static bool
s_test_line_eq (const bus_line_t *a, const bus_line_t *b)
{
    return streq (a->item_id, b->item_id) && a->qty == b->qty
           && streq (a->note, b->note) && streq (a->name, b->name)
           && a->unit_cents == b->unit_cents;
}

static bool
s_test_order_eq (const bus_order_t *a, const bus_order_t *b)
{
    bool eq = a->id == b->id && a->seq == b->seq && a->version == b->version
              && a->status == b->status && streq (a->table, b->table)
              && streq (a->key, b->key) && streq (a->origin, b->origin)
              && streq (a->note, b->note) && a->created_ms == b->created_ms
              && a->updated_ms == b->updated_ms
              && a->total_cents == b->total_cents
              && a->line_count == b->line_count;
    for (uint32_t i = 0; eq && i < a->line_count; i++)
        eq = s_test_line_eq (&a->lines[i], &b->lines[i]);
    return eq;
}

static bool
s_test_cmd_eq (const bus_cmd_t *a, const bus_cmd_t *b)
{
    bool eq = a->type == b->type && streq (a->key, b->key)
              && streq (a->origin, b->origin) && streq (a->table, b->table)
              && streq (a->note, b->note) && a->line_count == b->line_count;
    for (uint32_t i = 0; eq && i < a->line_count; i++)
        eq = s_test_line_eq (&a->lines[i], &b->lines[i]);
    return eq;
}

static bool
s_test_frame_eq (zframe_t *a, zframe_t *b)
{
    return zframe_size (a) == zframe_size (b)
           && memcmp (zframe_data (a), zframe_data (b), zframe_size (a)) == 0;
}

static bool
s_test_zeroed (const void *data, size_t size)
{
    const uint8_t *byte = (const uint8_t *) data;
    for (size_t i = 0; i < size; i++)
        if (byte[i])
            return false;
    return true;
}

/*  Decodes a cmd, asserts the result, and that a failure zeroed it.  */
static void
s_test_cmd_rc (zframe_t *frame, int expect)
{
    bus_cmd_t cmd;
    int rc = bus_cmd_decode (zframe_data (frame), zframe_size (frame), &cmd);
    assert (rc == expect);
    assert (rc == 0 || s_test_zeroed (&cmd, sizeof cmd));
}

/*  Returns where text first occurs in the frame; it must.  */
static char *
s_test_find (zframe_t *frame, const char *text)
{
    char *data = (char *) zframe_data (frame);
    size_t len = strlen (text);
    for (size_t i = 0; i + len <= zframe_size (frame); i++)
        if (memcmp (data + i, text, len) == 0)
            return data + i;
    assert (false);
    return NULL;
}

static int
s_test_hb_rc (zframe_t *frame)
{
    bus_heartbeat_t hb;
    return bus_heartbeat_decode (zframe_data (frame), zframe_size (frame), &hb);
}

/*  Packs a place command by hand, so a test can go past what the struct
    (and so the encoder) can hold.  */
static zframe_t *
s_test_pack_cmd (const char *key, const char *table, uint32_t lines,
                 int64_t qty)
{
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 6);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "type", BUS_CMD_PLACE);
    s_put_str (&w.packer, "key", key, SIZE_MAX);
    s_put_str (&w.packer, "origin", "patio", SIZE_MAX);
    s_put_str (&w.packer, "table", table, SIZE_MAX);
    s_pack_key (&w.packer, "lines");
    msgpack_pack_array (&w.packer, lines);
    for (uint32_t i = 0; i < lines; i++) {
        msgpack_pack_array (&w.packer, 2);
        s_pack_str (&w.packer, "burger", SIZE_MAX);
        msgpack_pack_int64 (&w.packer, qty);
    }
    return s_writer_frame (&w);
}

/*  Starts a heartbeat {v, seq, ts} with extra fields "x00".."xNN", all
    nil but the last, whose value the caller packs next.  */
static void
s_test_pack_hb (s_writer_t *w, uint32_t extra)
{
    s_writer_init (w);
    msgpack_pack_map (&w->packer, 3 + extra);
    s_put_uint (&w->packer, "v", S_VERSION);
    s_put_uint (&w->packer, "seq", 7);
    s_put_int (&w->packer, "ts", 1767000000000);
    for (uint32_t i = 0; i < extra; i++) {
        char key[16];
        snprintf (key, sizeof key, "x%02u", i);
        s_pack_key (&w->packer, key);
        if (i + 1 < extra)
            msgpack_pack_nil (&w->packer);
    }
}

static void
s_test_round_trips (void)
{
    bus_cmd_t cmd, cmd2;
    for (int max = 0; max < 2; max++) {
        if (max)
            s_test_cmd_max (&cmd);
        else
            s_test_cmd (&cmd);
        zframe_t *frame = bus_cmd_encode (&cmd);
        zframe_t *again = bus_cmd_encode (&cmd);
        assert (frame && again && s_test_frame_eq (frame, again));
        assert (zframe_size (frame) <= BUS_FRAME_MAX);
        assert (bus_cmd_decode (zframe_data (frame), zframe_size (frame),
                                &cmd2) == 0);
        assert (s_test_cmd_eq (&cmd, &cmd2));
        zframe_destroy (&frame);
        zframe_destroy (&again);
    }
    bus_event_t event, event2;
    bus_ack_t ack, ack2;
    for (int max = 0; max < 2; max++) {
        memset (&event, 0, sizeof event);
        event.seq = max ? UINT64_MAX : 40;
        event.ts_ms = max ? INT64_MAX : 1767000042000;
        event.type = BUS_EVENT_ORDER_PLACED;
        s_test_order (&event.order, max);

        zframe_t *frame = bus_order_encode (&event.order);
        zframe_t *again = bus_order_encode (&event.order);
        assert (frame && again && s_test_frame_eq (frame, again));
        assert (bus_order_decode (zframe_data (frame), zframe_size (frame),
                                  &event2.order) == 0);
        assert (s_test_order_eq (&event.order, &event2.order));
        zframe_destroy (&frame);
        zframe_destroy (&again);

        frame = bus_event_encode (&event);
        again = bus_event_encode (&event);
        assert (frame && again && s_test_frame_eq (frame, again));
        assert (zframe_size (frame) <= BUS_FRAME_MAX);
        assert (bus_event_decode (zframe_data (frame), zframe_size (frame),
                                  &event2) == 0);
        assert (event2.seq == event.seq && event2.ts_ms == event.ts_ms);
        assert (event2.type == event.type);
        assert (s_test_order_eq (&event.order, &event2.order));
        zframe_destroy (&frame);
        zframe_destroy (&again);

        memset (&ack, 0, sizeof ack);
        ack.duplicate = max;
        ack.order = event.order;
        if (max)
            s_test_fill (ack.key, BUS_KEY_MAX - 1, 'k');
        else
            strcpy (ack.key, "pad-7-0001");
        frame = bus_ack_encode (&ack);
        again = bus_ack_encode (&ack);
        assert (frame && again && s_test_frame_eq (frame, again));
        assert (bus_ack_decode (zframe_data (frame), zframe_size (frame),
                                &ack2) == 0);
        assert (streq (ack2.key, ack.key) && ack2.status == 0);
        assert (ack2.duplicate == ack.duplicate && streq (ack2.error, ""));
        assert (s_test_order_eq (&ack.order, &ack2.order));
        zframe_destroy (&frame);
        zframe_destroy (&again);
    }
    /* A failed ack carries no order  */
    memset (&ack, 0, sizeof ack);
    strcpy (ack.key, "pad-7-0002");
    ack.status = BUS_ERR_UNKNOWN_ITEM;
    s_test_fill (ack.error, BUS_ERROR_MAX - 1, 'e');
    s_test_order (&ack.order, false);
    zframe_t *frame = bus_ack_encode (&ack);
    assert (bus_ack_decode (zframe_data (frame), zframe_size (frame), &ack2)
            == 0);
    assert (ack2.status == BUS_ERR_UNKNOWN_ITEM);
    assert (streq (ack2.error, ack.error));
    assert (ack2.order.id == 0 && ack2.order.line_count == 0);
    zframe_destroy (&frame);

    bus_heartbeat_t hb = {UINT64_MAX, INT64_MIN}, hb2;
    frame = bus_heartbeat_encode (&hb);
    assert (bus_heartbeat_decode (zframe_data (frame), zframe_size (frame),
                                  &hb2) == 0);
    assert (hb2.seq == hb.seq && hb2.ts_ms == hb.ts_ms);
    zframe_destroy (&frame);

    bus_sync_req_t req = {BUS_SYNC_LIST, 99, 1234, 1000, 12, BUS_STATUS_READY,
                          "", "gateway", ""}, req2;
    s_test_fill (req.table, BUS_TABLE_MAX - 1, 'T');
    s_test_fill (req.name, BUS_NAME_MAX - 1, 'n');
    frame = bus_sync_req_encode (&req);
    assert (bus_sync_req_decode (zframe_data (frame), zframe_size (frame),
                                 &req2) == 0);
    assert (req2.op == req.op && req2.rid == req.rid && req2.from == req.from);
    assert (req2.limit == req.limit && req2.id == req.id);
    assert (req2.status == req.status && streq (req2.table, req.table));
    assert (streq (req2.role, "gateway") && streq (req2.name, req.name));
    zframe_destroy (&frame);

    bus_sync_reply_t reply = {99, BUS_ERR_NOT_FOUND, "", 40, 41, UINT32_MAX},
                     reply2;
    s_test_fill (reply.error, BUS_ERROR_MAX - 1, 'e');
    frame = bus_sync_reply_encode (&reply);
    assert (bus_sync_reply_decode (zframe_data (frame), zframe_size (frame),
                                   &reply2) == 0);
    assert (reply2.rid == reply.rid && reply2.status == reply.status);
    assert (streq (reply2.error, reply.error) && reply2.seq == reply.seq);
    assert (reply2.next == reply.next && reply2.count == reply.count);
    zframe_destroy (&frame);
}

/*  Optional fields may be left out.  */
static void
s_test_defaults (void)
{
    zframe_t *frame = s_test_pack_cmd ("pad-1", "T1", 1, 3);
    bus_cmd_t cmd;
    assert (bus_cmd_decode (zframe_data (frame), zframe_size (frame), &cmd)
            == 0);
    assert (streq (cmd.note, "") && cmd.line_count == 1);
    assert (cmd.lines[0].qty == 3 && streq (cmd.lines[0].note, ""));
    zframe_destroy (&frame);

    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 3);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "op", BUS_SYNC_SNAPSHOT);
    s_put_uint (&w.packer, "rid", 5);
    frame = s_writer_frame (&w);
    bus_sync_req_t req;
    assert (bus_sync_req_decode (zframe_data (frame), zframe_size (frame),
                                 &req) == 0);
    assert (req.op == BUS_SYNC_SNAPSHOT && req.rid == 5 && req.limit == 0);
    assert (streq (req.table, ""));
    zframe_destroy (&frame);

    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 3);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "rid", 5);
    s_put_int (&w.packer, "st", 0);
    frame = s_writer_frame (&w);
    bus_sync_reply_t reply;
    assert (bus_sync_reply_decode (zframe_data (frame), zframe_size (frame),
                                   &reply) == 0);
    assert (reply.rid == 5 && reply.status == 0 && reply.count == 0);
    zframe_destroy (&frame);
}

static void
s_test_fingerprint (void)
{
    bus_cmd_t a, b;
    s_test_cmd (&a);
    uint64_t base = bus_cmd_fingerprint (&a);
    /* fingerprints are stored, so the value itself must never change  */
    assert (base == 0xd1a72a65627dd1ffULL);
    s_test_cmd (&b);
    assert (bus_cmd_fingerprint (&b) == base);

    /* key, origin and writer-only line fields do not count  */
    strcpy (b.key, "pad-9-9999");
    strcpy (b.origin, "bar");
    strcpy (b.lines[0].name, "Classic Burger");
    b.lines[0].unit_cents = 1250;
    assert (bus_cmd_fingerprint (&b) == base);

    /* each asked-for field does  */
    for (int change = 0; change < 9; change++) {
        s_test_cmd (&b);
        switch (change) {
        case 0: b.type = (bus_cmd_type_t) 2; break;
        case 1: strcpy (b.table, "T13"); break;
        case 2: strcpy (b.note, ""); break;
        case 3: strcpy (b.lines[0].item_id, "burgers"); break;
        case 4: b.lines[0].qty = 3; break;
        case 5: strcpy (b.lines[1].note, "crispy"); break;
        case 6: b.line_count = 1; break;
        case 7: b.lines[0] = a.lines[1]; b.lines[1] = a.lines[0]; break;
        case 8: b.line_count = 3; b.lines[2] = a.lines[1]; break;
        }
        assert (bus_cmd_fingerprint (&b) != base);
    }
    /* field boundaries are part of the input  */
    s_test_cmd (&a);
    s_test_cmd (&b);
    strcpy (a.table, "ab");
    strcpy (a.note, "c");
    strcpy (b.table, "a");
    strcpy (b.note, "bc");
    assert (bus_cmd_fingerprint (&a) != bus_cmd_fingerprint (&b));
}

static void
s_test_frame_limits (void)
{
    bus_cmd_t cmd;
    assert (bus_cmd_decode (NULL, 0, &cmd) == BUS_ERR_MALFORMED);
    assert (bus_cmd_decode ("", 0, &cmd) == BUS_ERR_MALFORMED);

    /* every proper prefix of a valid command is truncated  */
    s_test_cmd (&cmd);
    zframe_t *frame = bus_cmd_encode (&cmd);
    for (size_t len = 0; len < zframe_size (frame); len++) {
        bus_cmd_t out;
        assert (bus_cmd_decode (zframe_data (frame), len, &out)
                == BUS_ERR_MALFORMED);
        assert (s_test_zeroed (&out, sizeof out));
    }
    /* ... and one byte more is trailing garbage  */
    size_t size = zframe_size (frame);
    uint8_t *longer = (uint8_t *) zmalloc (size + 1);
    memcpy (longer, zframe_data (frame), size);
    longer[size] = 0xc0;
    assert (bus_cmd_decode (longer, size + 1, &cmd) == BUS_ERR_MALFORMED);
    free (longer);
    zframe_destroy (&frame);

    /* a frame of exactly BUS_FRAME_MAX bytes is fine, one more is not */
    for (size_t extra = 0; extra < 2; extra++) {
        s_writer_t w;
        s_test_pack_hb (&w, 1);
        size_t fill = BUS_FRAME_MAX - w.buffer.size - 3 + extra;
        char *pad = (char *) zmalloc (fill);
        memset (pad, 'p', fill);
        msgpack_pack_str_with_body (&w.packer, pad, fill);
        free (pad);
        frame = s_writer_frame (&w);
        assert (zframe_size (frame) == BUS_FRAME_MAX + extra);
        assert (s_test_hb_rc (frame) == (extra ? BUS_ERR_TOO_BIG : 0));
        zframe_destroy (&frame);
    }

    /* 64 entries are fine, 65 are not  */
    for (uint32_t entries = 64; entries <= 65; entries++) {
        s_writer_t w;
        s_test_pack_hb (&w, entries - 3);
        msgpack_pack_nil (&w.packer);
        frame = s_writer_frame (&w);
        assert (s_test_hb_rc (frame) == (entries == 65 ? BUS_ERR_TOO_BIG : 0));
        zframe_destroy (&frame);
    }
    /* nesting: the heartbeat map plus 3 arrays is 4 deep and fine; 4
       arrays is too deep; 40 is beyond msgpack-c's own stack  */
    uint32_t depths[] = {3, 4, 40};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        s_writer_t w;
        s_test_pack_hb (&w, 1);
        for (uint32_t level = 0; level < depths[i]; level++)
            msgpack_pack_array (&w.packer, 1);
        msgpack_pack_uint64 (&w.packer, 1);
        frame = s_writer_frame (&w);
        assert (s_test_hb_rc (frame) == (i == 0 ? 0 : BUS_ERR_TOO_DEEP));
        zframe_destroy (&frame);
    }
    /* containers that claim more elements than the frame can hold  */
    const char *huge[] = {"\xdf\xff\xff\xff\xff", "\xdd\xff\xff\xff\xff",
                          "\x81\xa1v\xdc\x00\x10", "\xdb\x00\x00\x00\x05"};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
        assert (bus_cmd_decode (huge[i], strlen (huge[i]), &cmd)
                == BUS_ERR_MALFORMED);
    /* 0xc1 is never used  */
    assert (bus_cmd_decode ("\xc1", 1, &cmd) == BUS_ERR_MALFORMED);
}

static void
s_test_schema (void)
{
    /* not a map, non-string keys, repeated keys  */
    s_writer_t w;
    s_writer_init (&w);
    msgpack_pack_array (&w.packer, 0);
    zframe_t *frame = s_writer_frame (&w);
    assert (s_test_hb_rc (frame) == BUS_ERR_MALFORMED);
    zframe_destroy (&frame);

    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 4);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_uint (&w.packer, "seq", 1);
    s_put_int (&w.packer, "ts", 1);
    msgpack_pack_uint64 (&w.packer, 3);
    msgpack_pack_nil (&w.packer);
    frame = s_writer_frame (&w);
    assert (s_test_hb_rc (frame) == BUS_ERR_MALFORMED);
    zframe_destroy (&frame);

    s_test_pack_hb (&w, 1);
    msgpack_pack_nil (&w.packer);
    frame = s_writer_frame (&w);
    memcpy (s_test_find (frame, "x00"), "seq", 3);
    assert (s_test_hb_rc (frame) == BUS_ERR_MALFORMED);
    zframe_destroy (&frame);

    /* wrong version, missing field, wrong types  */
    for (int variant = 0; variant < 6; variant++) {
        s_writer_init (&w);
        msgpack_pack_map (&w.packer, variant == 1 ? 2 : 3);
        s_put_uint (&w.packer, "v", variant == 0 ? 2 : S_VERSION);
        s_put_int (&w.packer, "ts", 1);
        if (variant != 1)
            s_pack_key (&w.packer, "seq");
        switch (variant) {
        case 0: msgpack_pack_uint64 (&w.packer, 7); break;
        case 2: msgpack_pack_str_with_body (&w.packer, "7", 1); break;
        case 3: msgpack_pack_int64 (&w.packer, -7); break;
        case 4: msgpack_pack_double (&w.packer, 7.0); break;
        case 5: msgpack_pack_true (&w.packer); break;
        }
        frame = s_writer_frame (&w);
        assert (s_test_hb_rc (frame) == BUS_ERR_INVALID);
        zframe_destroy (&frame);
    }

    /* command rules  */
    char key128[BUS_KEY_MAX], key129[BUS_KEY_MAX + 1];
    s_test_fill (key128, BUS_KEY_MAX - 1, 'k');
    s_test_fill (key129, BUS_KEY_MAX, 'k');
    const struct {
        const char *key, *table;
        uint32_t lines;
        int64_t qty;
        int rc;
    } cases[] = {
        {key128, "T1", 1, 1, 0},
        {key129, "T1", 1, 1, BUS_ERR_INVALID},
        {"pad-1", "T1", BUS_LINES_MAX, BUS_QTY_MAX, 0},
        {"pad-1", "T1", 0, 1, BUS_ERR_INVALID},
        {"pad-1", "T1", BUS_LINES_MAX + 1, 1, BUS_ERR_INVALID},
        {"pad-1", "T1", 1, 0, BUS_ERR_INVALID},
        {"pad-1", "T1", 1, BUS_QTY_MAX + 1, BUS_ERR_INVALID},
        {"pad-1", "T1", 1, -1, BUS_ERR_INVALID},
        {"pad-1", "T/1", 1, 1, BUS_ERR_INVALID},
        {"pad-1", "", 1, 1, BUS_ERR_INVALID},
        {"", "T1", 1, 1, BUS_ERR_INVALID},
        {"pad 1\n", "T1", 1, 1, BUS_ERR_INVALID},
        {"pad-1", "TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT", 1, 1, 0},
        {"pad-1", "TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT", 1, 1, BUS_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        frame = s_test_pack_cmd (cases[i].key, cases[i].table, cases[i].lines,
                                 cases[i].qty);
        s_test_cmd_rc (frame, cases[i].rc);
        zframe_destroy (&frame);
    }

    /* fields the encoder packs as given but the decoder refuses  */
    bus_cmd_t cmd;
    for (int variant = 0; variant < 6; variant++) {
        s_test_cmd (&cmd);
        switch (variant) {
        case 0: cmd.type = (bus_cmd_type_t) 2; break;
        case 1: strcpy (cmd.origin, ""); break;
        case 2: strcpy (cmd.lines[1].item_id, "fries large"); break;
        case 3: strcpy (cmd.lines[1].note, "bad\x01"); break;
        case 4: strcpy (cmd.note, "\xff"); break;
        case 5: memset (cmd.table, 'T', sizeof cmd.table); break;
        }
        frame = bus_cmd_encode (&cmd);
        s_test_cmd_rc (frame, BUS_ERR_INVALID);
        zframe_destroy (&frame);
    }
    /* a NUL inside a string  */
    s_test_cmd (&cmd);
    strcpy (cmd.note, "a-b");
    frame = bus_cmd_encode (&cmd);
    s_test_cmd_rc (frame, 0);
    s_test_find (frame, "a-b")[1] = '\0';
    s_test_cmd_rc (frame, BUS_ERR_INVALID);
    zframe_destroy (&frame);

    /* enums of writer messages  */
    bus_order_t order;
    s_test_order (&order, false);
    for (int st = 0; st <= 7; st++) {
        order.status = (bus_status_t) st;
        frame = bus_order_encode (&order);
        bus_order_t out;
        int rc = bus_order_decode (zframe_data (frame), zframe_size (frame),
                                   &out);
        assert (rc == (bus_status_name (order.status) ? 0 : BUS_ERR_INVALID));
        zframe_destroy (&frame);
    }
    bus_event_t event;
    memset (&event, 0, sizeof event);
    event.type = (bus_event_type_t) 2;
    s_test_order (&event.order, false);
    frame = bus_event_encode (&event);
    assert (bus_event_decode (zframe_data (frame), zframe_size (frame), &event)
            == BUS_ERR_INVALID);
    zframe_destroy (&frame);

    bus_sync_req_t req = {.op = BUS_SYNC_GET, .rid = 1, .id = 7};
    for (int op = 0; op <= BUS_SYNC_STATS + 1; op++) {
        req.op = (bus_sync_op_t) op;
        frame = bus_sync_req_encode (&req);
        bus_sync_req_t out;
        int rc = bus_sync_req_decode (zframe_data (frame), zframe_size (frame),
                                      &out);
        assert (rc == (op >= BUS_SYNC_SNAPSHOT && op <= BUS_SYNC_STATS
                           ? 0 : BUS_ERR_INVALID));
        zframe_destroy (&frame);
    }
    /* acks: a status is 0 or negative; success needs the order  */
    bus_ack_t ack;
    memset (&ack, 0, sizeof ack);
    strcpy (ack.key, "pad-1");
    ack.status = 1;
    frame = bus_ack_encode (&ack);
    assert (bus_ack_decode (zframe_data (frame), zframe_size (frame), &ack)
            == BUS_ERR_INVALID);
    zframe_destroy (&frame);
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 3);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_str (&w.packer, "key", "pad-1", SIZE_MAX);
    s_put_int (&w.packer, "st", 0);
    frame = s_writer_frame (&w);
    assert (bus_ack_decode (zframe_data (frame), zframe_size (frame), &ack)
            == BUS_ERR_INVALID);
    zframe_destroy (&frame);
    s_writer_init (&w);
    msgpack_pack_map (&w.packer, 4);
    s_put_uint (&w.packer, "v", S_VERSION);
    s_put_str (&w.packer, "key", "pad-1", SIZE_MAX);
    s_put_int (&w.packer, "st", BUS_ERR_CONFLICT);
    s_put_uint (&w.packer, "dup", 1);
    frame = s_writer_frame (&w);
    assert (bus_ack_decode (zframe_data (frame), zframe_size (frame), &ack)
            == BUS_ERR_INVALID);
    zframe_destroy (&frame);
}

/*  Lines of the wrong shape.  Each frame is a valid message without lines
    (the encoder packs them last) followed by a lines array we pack.  */
static void
s_test_line_shapes (void)
{
    bus_cmd_t cmd;
    s_test_cmd (&cmd);
    cmd.line_count = 0;
    zframe_t *no_lines = bus_cmd_encode (&cmd);
    for (uint32_t items = 0; items < 6; items++) {
        s_writer_t w;
        s_writer_init (&w);
        s_write (&w, (char *) zframe_data (no_lines),
                 zframe_size (no_lines) - 1);
        msgpack_pack_array (&w.packer, 1);
        msgpack_pack_array (&w.packer, items);
        for (uint32_t i = 0; i < items; i++)
            if (i == 1)
                msgpack_pack_uint64 (&w.packer, 1);
            else
                s_pack_str (&w.packer, "burger", SIZE_MAX);
        zframe_t *frame = s_writer_frame (&w);
        s_test_cmd_rc (frame, items == 2 || items == 3 ? 0 : BUS_ERR_INVALID);
        zframe_destroy (&frame);
    }
    zframe_destroy (&no_lines);

    bus_order_t order;
    s_test_order (&order, false);
    order.line_count = 0;
    no_lines = bus_order_encode (&order);
    for (uint32_t items = 4; items <= 6; items++) {
        s_writer_t w;
        s_writer_init (&w);
        s_write (&w, (char *) zframe_data (no_lines),
                 zframe_size (no_lines) - 1);
        msgpack_pack_array (&w.packer, 1);
        msgpack_pack_array (&w.packer, items);
        s_pack_str (&w.packer, "burger", SIZE_MAX);
        msgpack_pack_uint64 (&w.packer, 2);
        s_pack_str (&w.packer, "", SIZE_MAX);
        s_pack_str (&w.packer, "Classic Burger", SIZE_MAX);
        for (uint32_t i = 4; i < items; i++)
            msgpack_pack_int64 (&w.packer, 1250);
        zframe_t *frame = s_writer_frame (&w);
        bus_order_t out;
        int rc = bus_order_decode (zframe_data (frame), zframe_size (frame),
                                   &out);
        assert (rc == (items == 5 ? 0 : BUS_ERR_INVALID));
        assert (items != 5 || out.lines[0].unit_cents == 1250);
        zframe_destroy (&frame);
    }

    /* an order with no lines is the writer's business, not the codec's */
    bus_order_t out;
    assert (bus_order_decode (zframe_data (no_lines), zframe_size (no_lines),
                              &out) == 0);
    assert (out.line_count == 0);
    zframe_destroy (&no_lines);
}

/*  Decodes data as every message type: each must fail cleanly or succeed.
    Returns how many succeeded.  */
static int
s_test_decode_any (const void *data, size_t size)
{
    union {
        bus_cmd_t cmd;
        bus_order_t order;
        bus_event_t event;
        bus_ack_t ack;
        bus_heartbeat_t hb;
        bus_sync_req_t req;
        bus_sync_reply_t reply;
    } out;
    int decoded = 0;
    for (int type = 0; type < 7; type++) {
        int rc = 0;
        size_t out_size = 0;
        switch (type) {
        case 0:
            rc = bus_cmd_decode (data, size, &out.cmd);
            out_size = sizeof out.cmd;
            break;
        case 1:
            rc = bus_order_decode (data, size, &out.order);
            out_size = sizeof out.order;
            break;
        case 2:
            rc = bus_event_decode (data, size, &out.event);
            out_size = sizeof out.event;
            break;
        case 3:
            rc = bus_ack_decode (data, size, &out.ack);
            out_size = sizeof out.ack;
            break;
        case 4:
            rc = bus_heartbeat_decode (data, size, &out.hb);
            out_size = sizeof out.hb;
            break;
        case 5:
            rc = bus_sync_req_decode (data, size, &out.req);
            out_size = sizeof out.req;
            break;
        case 6:
            rc = bus_sync_reply_decode (data, size, &out.reply);
            out_size = sizeof out.reply;
            break;
        }
        assert (rc == 0 || rc == BUS_ERR_MALFORMED || rc == BUS_ERR_TOO_BIG
                || rc == BUS_ERR_TOO_DEEP || rc == BUS_ERR_INVALID);
        assert (rc == 0 || s_test_zeroed (&out, out_size));
        decoded += rc == 0;
    }
    return decoded;
}

/*  Random bytes, and valid frames with a few random bytes changed.  */
static void
s_test_garbage (bool verbose)
{
    uint64_t state = 20260101;
    uint8_t buffer[512];
    bus_event_t event;
    memset (&event, 0, sizeof event);
    event.type = BUS_EVENT_ORDER_PLACED;
    s_test_order (&event.order, false);
    zframe_t *valid = bus_event_encode (&event);
    int decoded = 0;
    assert (zframe_size (valid) <= sizeof buffer);
    for (int round = 0; round < 4000; round++) {
        size_t size;
        bool mutate = round % 2;
        if (mutate) {
            size = zframe_size (valid);
            memcpy (buffer, zframe_data (valid), size);
        }
        else {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            size = (size_t) (state >> 33) % sizeof buffer;
        }
        for (size_t i = 0; i < (mutate ? 3 : size); i++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            buffer[mutate ? (state >> 20) % size : i] = (uint8_t) (state >> 56);
        }
        decoded += s_test_decode_any (buffer, size);
    }
    zframe_destroy (&valid);
    if (verbose)
        printf ("    4000 garbage frames: %d decodes succeeded, the rest "
                "failed cleanly\n", decoded);
}

void
bus_codec_test (bool verbose)
{
    printf (" * bus_codec: ");
    if (verbose)
        printf ("\n");
    s_test_round_trips ();
    s_test_defaults ();
    s_test_fingerprint ();
    s_test_frame_limits ();
    s_test_schema ();
    s_test_line_shapes ();
    s_test_garbage (verbose);
    printf ("OK\n");
}
