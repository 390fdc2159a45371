/*  test_roundtrip.c — whatever the writer's command decoder accepts can be
    committed, read back and shown by every reader (issue 14: a note of
    invalid UTF-8 was committed, then answered 500 on the API, never
    reached a kitchen and sent every edge into a resync).

    Each command goes the way the writer takes it: bus_cmd_decode, then
    bus_ledger_apply in a batch's transaction and one commit.  Every event
    it commits, and every order and cart it leaves, must then:
      - decode as logged (the writer publishes those very bytes) and as
        its ack (the gateway's reader);
      - render as the API's order JSON: bus_json_order_write, which must
        agree byte for byte with jansson's tree (bus_json_order), and
        parse back with its text intact;
      - render as the WebSocket message the edge sends (bus_json_event in
        a bus_wsframe frame), read back with the tests' client codec;
      - be read back from the store (by id, replay and snapshot) and
        decode and render again.
    The commands: generated ones (every type, random and edge values: the
    longest strings, every UTF-8 length up to 4-byte characters at the
    limit, all 50 lines of 6 modifiers; each must also come out of the
    JSON layer's parsers unchanged), then random byte mutations of their
    encodings, of which whatever the decoder accepts must pass the same.

    `test_roundtrip [seed [commands [mutations]]]`; prints what it
    checked.  */

#include <czmq.h>
#include <jansson.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_ledger.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_wsframe.h"
#include "ws_client.h"

#define S_CHECK(cond, ...)                                                   \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf (stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf (stderr, __VA_ARGS__);                                   \
            fprintf (stderr, " (seed %" PRIu64 ")\n", s_seed);               \
            exit (1);                                                        \
        }                                                                    \
    } while (0)

#define S_BATCH  200   //  commands per transaction, as a busy writer's
#define S_TABLES 4     //  tables most commands go to, so carts fill

//  Items with the longest ids and names, in every UTF-8 length; "burger"
//  offers six modifiers, so a line can carry the most
static const char *s_menu =
    "{\"categories\": [{\"id\": \"mains\", \"name\": \"Mains\", \"items\": ["
    "{\"id\": \"burger\", \"name\": \"Burger\", \"price_cents\": 1250,"
    " \"station\": \"grill\", \"modifiers\": ["
    "  {\"id\": \"cheese\", \"name\": \"Fromage r\\u00e2p\\u00e9\","
    "   \"price_cents\": 150},"
    "  {\"id\": \"bacon\", \"name\": \"\\ud83e\\udd53 bacon\","
    "   \"price_cents\": 200},"
    "  {\"id\": \"m3\", \"name\": \"\\u0800\\uffff\", \"price_cents\": -50},"
    "  {\"id\": \"m4\", \"name\": \"\\ud7ff\\ue000\", \"price_cents\": 0},"
    "  {\"id\": \"m5\", \"name\": \"\\u07ff\\u0080\", \"price_cents\": 1},"
    "  {\"id\": \"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm\","
    "   \"name\": \"\\udbff\\udfff\", \"price_cents\": 100000}]},"
    "{\"id\": \"iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii\","
    " \"name\": \"\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54"
    "\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54"
    "\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54"
    "\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54\\ud83c\\udf54"
    "\\ud83c\\udf54\", \"price_cents\": 10000000,"
    " \"station\": \"ssssssssssssssssssssssssssssssss\"},"
    "{\"id\": \"fries\", \"name\": \"Fries\", \"price_cents\": 0}]}]}";

static const char *s_items[] = { "burger", "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii",
                                 "fries" };
static const char *s_mods[] = { "cheese", "bacon",
                                "m3",     "m4",
                                "m5",     "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm" };

static uint64_t s_seed;
static uint64_t s_state;

//  What was checked, for the summary line
static struct {
    uint64_t generated, mutated, accepted, applied, events, orders, carts,
        replayed, snapshot, json_bodies;
} s_count;

//  ---------------------------------------------------------------------
//  Random values

static uint64_t
s_rand (void)
{
    //  xorshift64*: reproducible from the seed the test prints
    s_state ^= s_state >> 12;
    s_state ^= s_state << 25;
    s_state ^= s_state >> 27;
    return s_state * 0x2545F4914F6CDD1DULL;
}

//  0..n-1
static uint32_t
s_below (uint32_t n)
{
    return (uint32_t) (s_rand () % n);
}

static bool
s_chance (uint32_t percent)
{
    return s_below (100) < percent;
}

//  One code point of a random UTF-8 length (edges of each range often)
static uint32_t
s_code_point (int bytes)
{
    static const uint32_t lo[] = { 0, 0x20, 0x80, 0x800, 0x10000 };
    static const uint32_t hi[] = { 0, 0x7E, 0x7FF, 0xFFFF, 0x10FFFF };
    uint32_t cp = s_chance (20) ? (s_chance (50) ? lo[bytes] : hi[bytes])
                  : bytes == 1
                      ? lo[1] + s_below (hi[1] - lo[1] + 1)
                      : lo[bytes] + s_below (hi[bytes] - lo[bytes] + 1);
    if (cp >= 0xD800 && cp <= 0xDFFF)   //  surrogates are not characters
        cp = s_chance (50) ? 0xD7FF : 0xE000;
    return cp;
}

static size_t
s_put_utf8 (char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xC0 | cp >> 6);
        out[1] = (char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xE0 | cp >> 12);
        out[1] = (char) (0x80 | (cp >> 6 & 0x3F));
        out[2] = (char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char) (0xF0 | cp >> 18);
    out[1] = (char) (0x80 | (cp >> 12 & 0x3F));
    out[2] = (char) (0x80 | (cp >> 6 & 0x3F));
    out[3] = (char) (0x80 | (cp & 0x3F));
    return 4;
}

//  Text of min..cap-1 bytes into dst[cap]: mostly short, often filled to
//  the last byte with characters of one length (so a 4-byte one ends
//  right at the limit), otherwise of every length mixed.
static void
s_text (char *dst, size_t cap, size_t min)
{
    size_t want = s_chance (25) ? cap - 1 : min + s_below (cap > 40 ? 40 : cap);
    int only = s_chance (30) ? 1 + (int) s_below (4) : 0;
    size_t len = 0;
    while (len < want) {
        int bytes = only ? only : 1 + (int) s_below (4);
        if (len + (size_t) bytes > cap - 1)
            bytes = 1;   //  an ASCII character still fits
        len += s_put_utf8 (dst + len, s_code_point (bytes));
    }
    dst[len] = '\0';
    if (len < min)
        s_text (dst, cap, min);
}

//  n..cap-1 characters of the alphabet into dst[cap]; n >= 1
static void
s_chars (char *dst, size_t cap, const char *alphabet)
{
    size_t len = s_chance (20) ? cap - 1 : 1 + s_below ((uint32_t) cap - 1);
    size_t size = strlen (alphabet);
    for (size_t i = 0; i < len; i++)
        dst[i] = alphabet[s_below ((uint32_t) size)];
    dst[len] = '\0';
}

static const char *s_id_chars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

//  Printable ASCII but '/': what a table label may hold (keys may hold
//  '/' too, but this will do for them)
static const char *s_printable =
    " !\"#$%&'()*+,-.0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
    "abcdefghijklmnopqrstuvwxyz{|}~";

//  A table label; mostly one of a few, so carts grow and orders pile up
static void
s_table (char *dst)
{
    if (s_chance (80))
        snprintf (dst, BUS_TABLE_MAX, "T%u \"%c\\", s_below (S_TABLES),
                  "<&>'"[s_below (4)]);
    else
        s_chars (dst, BUS_TABLE_MAX, s_printable);
}

//  ---------------------------------------------------------------------
//  Commands

static void
s_line (bus_line_t *line, bool open_menu)
{
    memset (line, 0, sizeof *line);
    if (open_menu && s_chance (50)) {
        strcpy (line->item_id, BUS_CUSTOM_ITEM);
        s_text (line->name, sizeof line->name, 1);
    } else
        strcpy (line->item_id, s_items[s_below (3)]);
    line->qty = s_chance (10) ? BUS_QTY_MAX : 1 + s_below (BUS_QTY_MAX);
    if (s_chance (60))
        s_text (line->note, sizeof line->note, 0);
    if (streq (line->item_id, "burger")) {
        //  a random subset, in a random order
        uint32_t mods = s_chance (20) ? BUS_MODS_MAX : s_below (BUS_MODS_MAX);
        uint32_t first = s_below (BUS_MODS_MAX);
        for (uint32_t m = 0; m < mods; m++)
            strcpy (line->mods[m].id, s_mods[(first + m) % BUS_MODS_MAX]);
        line->mod_count = mods;
    }
}

//  A random, valid command of a random type; orders names an order id
//  that may exist.
static void
s_command (bus_cmd_t *cmd, uint64_t orders)
{
    memset (cmd, 0, sizeof *cmd);
    cmd->type = (bus_cmd_type_t) (1 + s_below (BUS_CMD_LINE_STATE));
    //  Keys of any printable character (the JSON escapes some), most
    //  of them unique: a random head where there is room
    s_chars (cmd->key, BUS_KEY_MAX, s_printable);
    if (strlen (cmd->key) >= 16) {
        char head[17];
        snprintf (head, sizeof head, "%016" PRIx64, s_rand ());
        memcpy (cmd->key, head, 16);
    }
    s_chars (cmd->origin, BUS_NAME_MAX, s_id_chars);
    switch (cmd->type) {
        case BUS_CMD_PLACE:
            cmd->open_menu = s_chance (30);
            cmd->line_count = s_chance (5) ? BUS_LINES_MAX : 1 + s_below (6);
            for (uint32_t i = 0; i < cmd->line_count; i++)
                s_line (&cmd->lines[i], cmd->open_menu);
            s_text (cmd->note, sizeof cmd->note, 0);
            break;
        case BUS_CMD_CART_ADD:
            cmd->line_count = 1;
            s_line (&cmd->lines[0], false);
            break;
        case BUS_CMD_CART_SET_QTY:
            cmd->line_id = 1 + s_below (8);
            cmd->qty = s_below (BUS_QTY_MAX + 1);
            break;
        case BUS_CMD_CART_PLACE: s_text (cmd->note, sizeof cmd->note, 0); break;
        case BUS_CMD_SET_STATUS:
            cmd->order_id = 1 + s_below ((uint32_t) orders + 1);
            cmd->status = 1 + s_below (BUS_STATUS_CANCELLED);
            break;
        case BUS_CMD_AVAILABILITY:
            strcpy (cmd->item_id, s_items[s_below (3)]);
            cmd->available = s_chance (70);
            break;
        case BUS_CMD_LINE_STATE:
            cmd->order_id = 1 + s_below ((uint32_t) orders + 1);
            cmd->line_state = 1 + s_below (BUS_LINE_VOIDED);
            if (cmd->line_state == BUS_LINE_VOIDED || s_chance (50))
                cmd->line_id = 1 + s_below (4);
            else
                strcpy (cmd->station, s_chance (50) ? "grill" : "kitchen");
            if (cmd->line_state == BUS_LINE_VOIDED)
                s_text (cmd->note, BUS_REASON_MAX, 1);
            break;
        case BUS_CMD_CART_CLEAR: break;
    }
    if (cmd->type != BUS_CMD_SET_STATUS && cmd->type != BUS_CMD_AVAILABILITY
        && cmd->type != BUS_CMD_LINE_STATE)
        s_table (cmd->table);
}

//  ---------------------------------------------------------------------
//  Readers

//  A string of a JSON object, which must be there
static const char *
s_member (json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    S_CHECK (value, "no string \"%s\"", key);
    return value;
}

//  The API's order JSON: the writer without a tree and jansson's agree,
//  and every text comes back as it went in.
static void
s_render_order (const bus_order_t *order)
{
    json_t *json = bus_json_order (order);
    S_CHECK (json, "order %" PRIu64 " has no JSON", order->id);
    char *text = bus_json_dump (json);
    S_CHECK (text, "order %" PRIu64 " does not dump", order->id);
    size_t len = bus_json_order_write (order, NULL, 0);
    S_CHECK (len == strlen (text), "order %" PRIu64 ": %zu bytes, not %zu",
             order->id, len, strlen (text));
    char *buf = malloc (len);
    S_CHECK (buf && bus_json_order_write (order, buf, len) == len
                 && memcmp (buf, text, len) == 0,
             "order %" PRIu64 ": the two writers differ", order->id);
    json_t *back = json_loads (text, 0, NULL);
    S_CHECK (back, "order %" PRIu64 ": its JSON does not parse", order->id);
    S_CHECK (streq (s_member (back, "note"), order->note)
                 && streq (s_member (back, "table"), order->table)
                 && streq (s_member (back, "idempotency_key"), order->key)
                 && streq (s_member (back, "origin"), order->origin),
             "order %" PRIu64 ": a text changed", order->id);
    json_t *items = json_object_get (back, "items");
    S_CHECK (json_array_size (items) == order->line_count, "lines");
    for (uint32_t i = 0; i < order->line_count; i++) {
        json_t *line = json_array_get (items, i);
        S_CHECK (streq (s_member (line, "note"), order->lines[i].note)
                     && streq (s_member (line, "name"), order->lines[i].name),
                 "order %" PRIu64 " line %u: a text changed", order->id, i);
    }
    json_decref (back);
    free (buf);
    free (text);
    json_decref (json);
    s_count.orders++;
}

static void
s_render_cart (const bus_cart_t *cart)
{
    json_t *json = bus_json_cart (cart);
    char *text = json ? bus_json_dump (json) : NULL;
    S_CHECK (text, "the cart of table '%s' has no JSON", cart->table);
    free (text);
    json_decref (json);
    s_count.carts++;
}

//  The edge's WebSocket message of an event: one text frame whose
//  payload is the event's JSON, as a browser reads it.
static void
s_render_event (const bus_event_t *event)
{
    json_t *json = bus_json_event (event);
    char *text = json ? bus_json_dump (json) : NULL;
    S_CHECK (text, "event %" PRIu64 " has no JSON", event->seq);
    bus_wsframe_t *frame =
        bus_wsframe_new (BUS_WSFRAME_TEXT, text, strlen (text));
    S_CHECK (frame, "no frame");
    ws_client_frame_t read;
    size_t consumed = 0;
    int rc =
        ws_client_frame (bus_wsframe_data (frame), bus_wsframe_size (frame),
                         UINT64_MAX, &read, &consumed);
    S_CHECK (rc == 1 && consumed == bus_wsframe_size (frame) && read.fin
                 && read.opcode == WS_CLIENT_TEXT && !read.masked
                 && read.len == strlen (text)
                 && memcmp (read.payload, text, read.len) == 0,
             "event %" PRIu64 ": the frame does not read back", event->seq);
    json_t *back = json_loadb (read.payload, read.len, 0, NULL);
    S_CHECK (back
                 && json_integer_value (json_object_get (back, "seq"))
                        == (json_int_t) event->seq,
             "event %" PRIu64 ": the message does not parse", event->seq);
    json_decref (back);
    bus_wsframe_unref (&frame);
    free (text);
    json_decref (json);
    if (event->type == BUS_EVENT_ORDER_PLACED
        || event->type == BUS_EVENT_ORDER_STATUS)
        s_render_order (&event->order);
    else if (event->type == BUS_EVENT_CART)
        s_render_cart (&event->cart);
    s_count.events++;
}

//  ---------------------------------------------------------------------
//  The JSON layer: a generated command, sent as a pad would, must come
//  out of the gateway's parser as it went in (and so be accepted by the
//  decoder, above).  The path's parts (table, ids) and the key and
//  origin are the gateway's own, copied as bus_api does.

static json_t *
s_line_json (const bus_line_t *line)
{
    json_t *mods = json_array ();
    for (uint32_t m = 0; m < line->mod_count; m++)
        json_array_append_new (mods, json_string (line->mods[m].id));
    return json_pack ("{s:s, s:i, s:s, s:o}", "item_id", line->item_id,
                      "quantity", (int) line->qty, "note", line->note,
                      "modifiers", mods);
}

//  The body a pad sends for cmd, or NULL for a command that has none
//  (or that only the seed routes make: open-menu lines)
static json_t *
s_body (const bus_cmd_t *cmd)
{
    json_t *items;
    switch (cmd->type) {
        case BUS_CMD_PLACE:
            if (cmd->open_menu)
                return NULL;
            items = json_array ();
            for (uint32_t i = 0; i < cmd->line_count; i++)
                json_array_append_new (items, s_line_json (&cmd->lines[i]));
            return json_pack ("{s:s, s:s, s:o}", "table", cmd->table, "note",
                              cmd->note, "items", items);
        case BUS_CMD_CART_ADD: return s_line_json (&cmd->lines[0]);
        case BUS_CMD_CART_SET_QTY:
            return json_pack ("{s:i}", "quantity", (int) cmd->qty);
        case BUS_CMD_SET_STATUS:
            return json_pack ("{s:s}", "status",
                              bus_status_name ((bus_status_t) cmd->status));
        case BUS_CMD_AVAILABILITY:
            return json_pack ("{s:b}", "available", (int) cmd->available);
        case BUS_CMD_CART_PLACE: return json_pack ("{s:s}", "note", cmd->note);
        case BUS_CMD_LINE_STATE:   //  the route's action names the state
        case BUS_CMD_CART_CLEAR: break;
    }
    return NULL;
}

typedef int (s_parse_fn) (const char *body, size_t len, bus_cmd_t *cmd,
                          bus_json_error_t *error);

static void
s_check_json_body (const bus_cmd_t *cmd, bus_cmd_t *parsed)
{
    static s_parse_fn *parsers[] = {
        NULL,
        bus_json_place_cmd,
        bus_json_status_cmd,
        bus_json_line_cmd,
        bus_json_qty_cmd,
        NULL,
        bus_json_cart_place_cmd,
        bus_json_availability_cmd,
        NULL,
    };
    json_t *body = s_body (cmd);
    if (!body)
        return;
    char *text = bus_json_dump (body);
    S_CHECK (text, "no body");
    memset (parsed, 0, sizeof *parsed);
    bus_json_error_t error;
    int rc = parsers[cmd->type](text, strlen (text), parsed, &error);
    S_CHECK (rc == 0, "the JSON layer refused %s: %s: %s", text, error.field,
             error.message);
    //  What the route adds from the path, the request and the gateway
    memcpy (parsed->key, cmd->key, sizeof parsed->key);
    memcpy (parsed->origin, cmd->origin, sizeof parsed->origin);
    memcpy (parsed->table, cmd->table, sizeof parsed->table);
    parsed->order_id = cmd->order_id;
    parsed->line_id = cmd->line_id;
    memcpy (parsed->item_id, cmd->item_id, sizeof parsed->item_id);
    S_CHECK (bus_cmd_fingerprint (parsed) == bus_cmd_fingerprint (cmd)
                 && bus_cmd_check (parsed, NULL, 0) == 0,
             "the JSON layer read %s as another command", text);
    free (text);
    json_decref (body);
    s_count.json_bodies++;
}

//  ---------------------------------------------------------------------
//  The writer's way: decode, apply in a batch, commit; then every reader

typedef struct {
    bus_store_t *store;
    bus_ledger_t *ledger;
    bus_cmd_t *cmd;
    bus_ack_t *ack, *ack_read;
    bus_event_t *event;
    bus_order_t *order;
    uint64_t orders;                 //  highest order id so far
    uint64_t touched[S_BATCH * 2];   //  order ids the batch changed
    size_t touched_count;
    int64_t now;
} s_writer_t;

//  Each event as logged: the bytes subscribers get
static void
s_emit (const bus_event_t *event, zframe_t **body, void *arg)
{
    s_writer_t *w = (s_writer_t *) arg;
    int rc =
        bus_event_decode (zframe_data (*body), zframe_size (*body), w->event);
    S_CHECK (rc == 0, "event %" PRIu64 " as logged does not decode: %s",
             event->seq, bus_strerror (rc));
    s_render_event (w->event);
    if (w->event->type == BUS_EVENT_ORDER_PLACED
        || w->event->type == BUS_EVENT_ORDER_STATUS) {
        uint64_t id = w->event->order.id;
        if (id > w->orders)
            w->orders = id;
        if (w->touched_count < S_BATCH * 2)
            w->touched[w->touched_count++] = id;
    }
    zframe_destroy (body);
}

//  Apply the encoded command at data, if the decoder accepts it.  True if
//  it did.
static bool
s_apply (s_writer_t *w, const void *data, size_t size)
{
    if (bus_cmd_decode (data, size, w->cmd) != 0)
        return false;
    S_CHECK (bus_cmd_check (w->cmd, NULL, 0) == 0, "decoded, not valid");
    int rc = bus_ledger_apply (w->ledger, w->cmd, w->now++, w->ack, s_emit, w);
    S_CHECK (rc == 0, "storage: %s", bus_strerror (rc));
    //  The gateway reads the ack
    zframe_t *ack = bus_ack_encode (w->ack);
    rc = bus_ack_decode (zframe_data (ack), zframe_size (ack), w->ack_read);
    S_CHECK (rc == 0, "the ack does not decode: %s", bus_strerror (rc));
    zframe_destroy (&ack);
    if (w->ack->status == 0)
        s_count.applied++;
    return true;
}

static void
s_begin (s_writer_t *w)
{
    S_CHECK (bus_store_begin (w->store) == 0, "begin");
    w->touched_count = 0;
}

//  Commit, then read back by id every order the batch changed
static void
s_commit (s_writer_t *w)
{
    S_CHECK (bus_store_commit (w->store) == 0, "commit");
    for (size_t i = 0; i < w->touched_count; i++) {
        int rc = bus_store_get_order (w->store, w->touched[i], w->order);
        S_CHECK (rc == 0, "order %" PRIu64 " does not read back: %s",
                 w->touched[i], bus_strerror (rc));
        s_render_order (w->order);
    }
}

//  Generated commands, each also sent through the JSON layer
static void
s_generated (s_writer_t *w, uint64_t count)
{
    bus_cmd_t *decoded = calloc (1, sizeof *decoded);
    bus_cmd_t *made = calloc (1, sizeof *made);
    for (uint64_t n = 0; n < count; n++) {
        if (n % S_BATCH == 0)
            s_begin (w);
        s_command (made, w->orders);
        zframe_t *frame = bus_cmd_encode (made);
        int rc =
            bus_cmd_decode (zframe_data (frame), zframe_size (frame), decoded);
        S_CHECK (rc == 0
                     && bus_cmd_fingerprint (decoded)
                            == bus_cmd_fingerprint (made),
                 "a valid command of type %d was refused: %s", made->type,
                 bus_strerror (rc));
        s_check_json_body (made, decoded);
        S_CHECK (s_apply (w, zframe_data (frame), zframe_size (frame)),
                 "refused");
        zframe_destroy (&frame);
        s_count.generated++;
        if (n % S_BATCH == S_BATCH - 1 || n == count - 1)
            s_commit (w);
    }
    free (decoded);
    free (made);
}

//  Sequences at the edges of UTF-8, valid and not (as in
//  tests/fuzz/utf8.dict): put into a string, each must be refused or
//  rendered
static const char *s_edges[] = {
    "\xC0\xAF",
    "\xC1\xBF",
    "\xE0\x80\xAF",
    "\xE0\x9F\xBF",
    "\xF0\x80\x80\xAF",
    "\xF0\x8F\xBF\xBF",
    "\xED\xA0\x80",
    "\xED\xBF\xBF",
    "\xF4\x90\x80\x80",
    "\xF5\x80\x80\x80",
    "\xFF",
    "\x80",
    "\xC3",
    "\xE2\x82",
    "\xF0\x9F\x98",
    "\x01",
    "\x0A",
    "\x7F",
    "\xC2\x80",
    "\xED\x9F\xBF",
    "\xEE\x80\x80",
    "\xEF\xBF\xBF",
    "\xF4\x8F\xBF\xBF",
    "/",
};

//  One random change to data[*size] (of capacity cap): a byte set to a
//  value UTF-8 and msgpack care about, or any value, or inserted, or
//  removed, or the end cut off, or an edge of UTF-8 written over what is
//  there (in a string, mostly: the encoding is mostly strings)
static void
s_mutate (uint8_t *data, size_t *size, size_t cap)
{
    if (*size > 8 && s_chance (30)) {
        const char *edge = s_edges[s_below (sizeof s_edges / sizeof *s_edges)];
        size_t len = strlen (edge) ? strlen (edge) : 1;
        size_t at = s_below ((uint32_t) (*size - len));
        memcpy (data + at, edge, len);
        return;
    }
    static const uint8_t hot[] = { 0x00, 0x01, 0x1F, 0x2F, 0x7F, 0x80,
                                   0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                   0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
                                   0xA0, 0xD9, 0x90, 0xC3, 0xC2, 0x63 };
    size_t at = *size ? s_below ((uint32_t) *size) : 0;
    uint8_t value =
        s_chance (60) ? hot[s_below (sizeof hot)] : (uint8_t) s_below (256);
    switch (s_below (5)) {
        case 0:
        case 1:
            if (*size)
                data[at] = value;
            break;
        case 2:
            if (*size < cap) {
                memmove (data + at + 1, data + at, *size - at);
                data[at] = value;
                (*size)++;
            }
            break;
        case 3:
            if (*size) {
                memmove (data + at, data + at + 1, *size - at - 1);
                (*size)--;
            }
            break;
        default: *size = at; break;
    }
}

//  Mutations of generated commands' encodings: whatever the decoder
//  accepts goes the writer's way
static void
s_mutated (s_writer_t *w, uint64_t count)
{
    bus_cmd_t *made = calloc (1, sizeof *made);
    size_t cap = 2 * BUS_FRAME_MAX;
    uint8_t *data = malloc (cap);
    s_begin (w);
    uint64_t in_batch = 0;
    for (uint64_t n = 0; n < count; n++) {
        s_command (made, w->orders);
        zframe_t *frame = bus_cmd_encode (made);
        size_t size = zframe_size (frame);
        memcpy (data, zframe_data (frame), size);
        zframe_destroy (&frame);
        for (uint32_t m = 1 + s_below (4); m > 0; m--)
            s_mutate (data, &size, cap);
        s_count.mutated++;
        if (s_apply (w, data, size)) {
            s_count.accepted++;
            if (++in_batch == S_BATCH) {
                s_commit (w);
                s_begin (w);
                in_batch = 0;
            }
        }
    }
    s_commit (w);
    free (data);
    free (made);
}

//  ---------------------------------------------------------------------
//  Reading the store back as the edge and the API do

static int
s_replayed (const void *data, size_t size, void *arg)
{
    bus_event_t *event = (bus_event_t *) arg;
    int rc = bus_event_decode (data, size, event);
    S_CHECK (rc == 0, "a logged event does not decode: %s", bus_strerror (rc));
    s_render_event (event);
    s_count.replayed++;
    return 0;
}

typedef struct {
    bus_order_t *order;
    bus_cart_t *cart;
} s_snapshot_t;

static int
s_snapshot_item (const void *data, size_t size, void *arg)
{
    s_snapshot_t *snap = (s_snapshot_t *) arg;
    //  Orders come first, then carts: try each
    if (bus_order_decode (data, size, snap->order) == 0)
        s_render_order (snap->order);
    else {
        int rc = bus_cart_decode (data, size, snap->cart);
        S_CHECK (rc == 0, "a snapshot item does not decode: %s",
                 bus_strerror (rc));
        s_render_cart (snap->cart);
    }
    s_count.snapshot++;
    return 0;
}

static void
s_read_back (s_writer_t *w)
{
    uint64_t last = 0, from = 1;
    do {
        int rc = bus_store_replay (w->store, from, 1000, s_replayed, w->event,
                                   &last);
        S_CHECK (rc == 0, "replay: %s", bus_strerror (rc));
        from += 1000;
    } while (from <= last);
    s_snapshot_t snap = { w->order, calloc (1, sizeof (bus_cart_t)) };
    uint64_t seq;
    uint32_t orders;
    S_CHECK (
        bus_store_snapshot (w->store, s_snapshot_item, &snap, &seq, &orders)
            == 0,
        "snapshot");
    free (snap.cart);
}

int
main (int argc, char **argv)
{
    s_seed = argc > 1 ? strtoull (argv[1], NULL, 10) : (uint64_t) time (NULL);
    uint64_t generated = argc > 2 ? strtoull (argv[2], NULL, 10) : 4000;
    uint64_t mutated = argc > 3 ? strtoull (argv[3], NULL, 10) : 40000;
    s_state = s_seed * 0x9E3779B97F4A7C15ULL + 1;
    zsys_init ();

    char dir[512];
    snprintf (dir, sizeof dir, "%s/roundtrip-XXXXXX",
              getenv ("TK_TMP") ? getenv ("TK_TMP") : "/tmp");
    S_CHECK (mkdtemp (dir), "mkdtemp %s", dir);
    s_writer_t w = { .now = 1767225600000 };
    //  A map big enough for every run: the writer grows a full one,
    //  which is not what this tests
    w.store = bus_store_new (dir, (size_t) 4 << 30, NULL);
    S_CHECK (w.store, "store");
    S_CHECK (bus_store_menu_put (w.store, s_menu, strlen (s_menu)) == 0,
             "the test menu does not load");
    w.ledger = bus_ledger_new (w.store, 825);
    w.cmd = calloc (1, sizeof *w.cmd);
    w.ack = calloc (1, sizeof *w.ack);
    w.ack_read = calloc (1, sizeof *w.ack_read);
    w.event = calloc (1, sizeof *w.event);
    w.order = calloc (1, sizeof *w.order);
    S_CHECK (w.ledger && w.cmd && w.ack && w.ack_read && w.event && w.order,
             "out of memory");

    s_generated (&w, generated);
    s_mutated (&w, mutated);
    s_read_back (&w);
    printf ("roundtrip (seed %" PRIu64 "): %" PRIu64
            " generated commands (%" PRIu64 " through the JSON layer), %" PRIu64
            " mutated encodings of which the decoder accepted %" PRIu64
            "; %" PRIu64 " applied; %" PRIu64 " events, %" PRIu64
            " orders, %" PRIu64 " carts rendered; %" PRIu64
            " replayed, %" PRIu64 " snapshot items\n",
            s_seed, s_count.generated, s_count.json_bodies, s_count.mutated,
            s_count.accepted, s_count.applied, s_count.events, s_count.orders,
            s_count.carts, s_count.replayed, s_count.snapshot);
    S_CHECK (s_count.accepted > 0 && s_count.applied > generated / 10,
             "too little got through to prove anything");

    free (w.cmd);
    free (w.ack);
    free (w.ack_read);
    free (w.event);
    free (w.order);
    bus_ledger_destroy (&w.ledger);
    bus_store_destroy (&w.store);
    const char *files[] = { "data.mdb", "lock.mdb", "committed" };
    for (size_t i = 0; i < 3; i++) {
        char path[600];
        snprintf (path, sizeof path, "%s/%s", dir, files[i]);
        zsys_file_delete (path);
    }
    zsys_dir_delete ("%s", dir);
    return 0;
}
