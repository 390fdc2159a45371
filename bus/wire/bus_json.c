/*  bus_json.c — the HTTP/WebSocket JSON shapes, built with jansson.

    Request bodies are parsed strictly: only integers where integers are
    meant (2.0, "2" and true are not quantities), no unknown keys, no
    duplicate keys, and every rejection names the JSON path at fault.  */

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"

static const char *const s_order_keys[] = { "table", "note", "items", NULL };
static const char *const s_line_keys[] = { "item_id", "quantity", "note",
                                           "modifiers", NULL };
static const char *const s_status_keys[] = { "status", "version", NULL };
static const char *const s_qty_keys[] = { "quantity", NULL };
static const char *const s_availability_keys[] = { "available", NULL };
static const char *const s_cart_place_keys[] = { "note", "version", NULL };
static const char *const s_bump_keys[] = { "version", NULL };
static const char *const s_unbump_keys[] = { "version", "to", NULL };
static const char *const s_void_keys[] = { "version", "reason", NULL };

/*  A count as far as its array goes: structs arrive decoded from the wire,
    and an element past the capacity must never be read.  */
static uint32_t
s_clamp (uint32_t count, uint32_t capacity)
{
    return count < capacity ? count : capacity;
}

static json_t *
s_mods (const bus_line_t *line)
{
    json_t *mods = json_array ();
    for (uint32_t i = 0; mods && i < s_clamp (line->mod_count, BUS_MODS_MAX);
         i++) {
        const bus_mod_t *mod = &line->mods[i];
        json_t *json =
            json_pack ("{s:s, s:s, s:I}", "id", mod->id, "name", mod->name,
                       "delta_cents", (json_int_t) mod->delta_cents);
        if (json_array_append_new (mods, json)) {
            json_decref (mods);
            return NULL;
        }
    }
    return mods;
}

/*  quantity * unit_cents.  Menu rules keep it far from overflow
    (99 * (10^7 + 6 * 10^5)), but a line need not come from the menu and
    signed overflow is undefined, so it saturates instead.  */
static json_int_t
s_line_cents (const bus_line_t *line)
{
    int64_t cents;
    if (!__builtin_mul_overflow ((int64_t) line->qty, line->unit_cents, &cents))
        return cents;
    return line->unit_cents < 0 ? INT64_MIN : INT64_MAX;
}

/*  A line; an order's (order not NULL) with its state (issue 17):
    "state", "state_ms" and "void_reason" as bus_line_read reads them
    (a line without a state: as its order's status implies).  */
static json_t *
s_line (const bus_line_t *line, const bus_order_t *order)
{
    //  "o" hands modifiers over, or releases it if packing fails
    json_t *json = json_pack ("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}",
                              "line_id", (json_int_t) line->line_id, "item_id",
                              line->item_id, "name", line->name, "station",
                              line->station, "quantity", (json_int_t) line->qty,
                              "unit_cents", (json_int_t) line->unit_cents,
                              "line_cents", s_line_cents (line), "note",
                              line->note, "modifiers", s_mods (line));
    if (json && order) {
        bus_line_state_t state;
        int64_t state_ms;
        const char *reason;
        bus_line_read (line, order, &state, &state_ms, &reason);
        json_t *more = json_pack ("{s:s, s:I, s:s}", "state",
                                  bus_line_state_name (state), "state_ms",
                                  (json_int_t) state_ms, "void_reason", reason);
        if (!more || json_object_update (json, more)) {
            json_decref (json);
            json = NULL;
        }
        json_decref (more);
    }
    return json;
}

/*  The lines as a JSON array, or NULL if any of them could not be built:
    an order that silently lost a line would misstate what was ordered.  */
static json_t *
s_lines (const bus_line_t *lines, uint32_t count, const bus_order_t *order)
{
    json_t *items = json_array ();
    for (uint32_t i = 0; items && i < s_clamp (count, BUS_LINES_MAX); i++)
        if (json_array_append_new (items, s_line (&lines[i], order))) {
            json_decref (items);
            return NULL;
        }
    return items;
}

/*  {"placed": ms, ...}: only the statuses the order has reached.  */
static json_t *
s_status_times (const bus_order_t *order)
{
    json_t *times = json_object ();
    for (int status = BUS_STATUS_PLACED; times && status < BUS_STATUS_COUNT;
         status++) {
        const char *name = bus_status_name ((bus_status_t) status);
        int64_t ms = order->status_ms[status];
        if (name && ms
            && json_object_set_new (times, name, json_integer (ms))) {
            json_decref (times);
            return NULL;
        }
    }
    return times;
}

json_t *
bus_json_order (const bus_order_t *order)
{
    assert (order);
    //  "o" hands each part over to the object, or releases it if packing
    //  fails (a NULL part fails the packing)
    return json_pack (
        "{s:I, s:I, s:I, s:s?, s:s, s:s, s:s, s:s, s:I, s:I,"
        " s:o, s:I, s:I, s:I, s:o}",
        "id", (json_int_t) order->id, "seq", (json_int_t) order->seq, "version",
        (json_int_t) order->version, "status", bus_status_name (order->status),
        "table", order->table, "note", order->note, "idempotency_key",
        order->key, "origin", order->origin, "created_ms",
        (json_int_t) order->created_ms, "updated_ms",
        (json_int_t) order->updated_ms, "status_times", s_status_times (order),
        "subtotal_cents", (json_int_t) order->subtotal_cents, "tax_cents",
        (json_int_t) order->tax_cents, "total_cents",
        (json_int_t) order->total_cents, "items",
        s_lines (order->lines, order->line_count, order));
}

//  ---------------------------------------------------------------------
//  An order's text without a tree.  The gateway answers every order with
//  it, and building and dumping jansson's tree for it was a fifth of the
//  gateway's work per order (bench/notes.md, section 6f).  The text is
//  exactly what bus_json_dump (bus_json_order (order)) gives: the
//  selftest holds the two together, field by field and byte by byte.

typedef struct {
    char *buf;
    size_t cap;
    size_t len;   //  as if cap had no end: what the text needs
    bool bad;     //  a string was not UTF-8, as jansson would refuse
} s_out_t;

static void
s_put (s_out_t *t, const char *data, size_t n)
{
    if (t->len < t->cap)
        memcpy (t->buf + t->len, data,
                n < t->cap - t->len ? n : t->cap - t->len);
    t->len += n;
}

static void
s_put_lit (s_out_t *t, const char *text)
{
    s_put (t, text, strlen (text));
}

static void
s_put_int (s_out_t *t, json_int_t value)
{
    char digits[24], *end = digits + sizeof digits, *p = end;
    uint64_t v = value < 0 ? 0 - (uint64_t) value : (uint64_t) value;
    do
        *--p = (char) ('0' + v % 10);
    while ((v /= 10) > 0);
    if (value < 0)
        *--p = '-';
    s_put (t, p, (size_t) (end - p));
}

//  A quoted string, escaped as jansson escapes (UTF-8 passes as it is)
static void
s_put_str (s_out_t *t, const char *text)
{
    s_put (t, "\"", 1);
    const unsigned char *p = (const unsigned char *) text;
    const unsigned char *plain = p;   //  start of bytes that need no escape
    while (*p) {
        //  jansson's rules, which bus_utf8_char shares
        size_t n = bus_utf8_char ((const char *) p);
        if (n == 0) {
            t->bad = true;
            return;
        }
        if (*p >= 0x20 && *p != '"' && *p != '\\') {
            p += n;
            continue;
        }
        s_put (t, (const char *) plain, (size_t) (p - plain));
        char esc[8];
        const char *short_esc = *p == '"'    ? "\\\""
                                : *p == '\\' ? "\\\\"
                                : *p == '\b' ? "\\b"
                                : *p == '\f' ? "\\f"
                                : *p == '\n' ? "\\n"
                                : *p == '\r' ? "\\r"
                                : *p == '\t' ? "\\t"
                                             : NULL;
        if (!short_esc)
            snprintf (esc, sizeof esc, "\\u%04X", *p);
        s_put_lit (t, short_esc ? short_esc : esc);
        plain = ++p;
    }
    s_put (t, (const char *) plain, (size_t) (p - plain));
    s_put (t, "\"", 1);
}

//  ,"key":  (the first key of an object brings its own '{').  Keys are
//  our own ASCII names: nothing to check or escape.
static void
s_put_key (s_out_t *t, const char *key)
{
    s_put (t, ",\"", 2);
    s_put_lit (t, key);
    s_put (t, "\":", 2);
}

static void
s_put_line (s_out_t *t, const bus_line_t *line, const bus_order_t *order)
{
    s_put_lit (t, "{\"line_id\":");
    s_put_int (t, (json_int_t) line->line_id);
    s_put_key (t, "item_id");
    s_put_str (t, line->item_id);
    s_put_key (t, "name");
    s_put_str (t, line->name);
    s_put_key (t, "station");
    s_put_str (t, line->station);
    s_put_key (t, "quantity");
    s_put_int (t, (json_int_t) line->qty);
    s_put_key (t, "unit_cents");
    s_put_int (t, (json_int_t) line->unit_cents);
    s_put_key (t, "line_cents");
    s_put_int (t, s_line_cents (line));
    s_put_key (t, "note");
    s_put_str (t, line->note);
    s_put_lit (t, ",\"modifiers\":[");
    for (uint32_t i = 0; i < s_clamp (line->mod_count, BUS_MODS_MAX); i++) {
        const bus_mod_t *mod = &line->mods[i];
        s_put_lit (t, i ? ",{\"id\":" : "{\"id\":");
        s_put_str (t, mod->id);
        s_put_key (t, "name");
        s_put_str (t, mod->name);
        s_put_key (t, "delta_cents");
        s_put_int (t, (json_int_t) mod->delta_cents);
        s_put (t, "}", 1);
    }
    bus_line_state_t state;
    int64_t state_ms;
    const char *reason;
    bus_line_read (line, order, &state, &state_ms, &reason);
    s_put_lit (t, "],\"state\":");
    s_put_str (t, bus_line_state_name (state));
    s_put_key (t, "state_ms");
    s_put_int (t, (json_int_t) state_ms);
    s_put_key (t, "void_reason");
    s_put_str (t, reason);
    s_put_lit (t, "}");
}

size_t
bus_json_order_write (const bus_order_t *order, char *buf, size_t cap)
{
    assert (order);
    s_out_t t = { buf, cap, 0, false };
    s_put_lit (&t, "{\"id\":");
    s_put_int (&t, (json_int_t) order->id);
    s_put_key (&t, "seq");
    s_put_int (&t, (json_int_t) order->seq);
    s_put_key (&t, "version");
    s_put_int (&t, (json_int_t) order->version);
    s_put_key (&t, "status");
    const char *status = bus_status_name (order->status);
    if (status)
        s_put_str (&t, status);
    else
        s_put_lit (&t, "null");
    const char *const keys[] = { "table", "note", "idempotency_key", "origin" };
    const char *const values[] = { order->table, order->note, order->key,
                                   order->origin };
    for (size_t i = 0; i < 4; i++) {
        s_put_key (&t, keys[i]);
        s_put_str (&t, values[i]);
    }
    s_put_key (&t, "created_ms");
    s_put_int (&t, (json_int_t) order->created_ms);
    s_put_key (&t, "updated_ms");
    s_put_int (&t, (json_int_t) order->updated_ms);
    s_put_lit (&t, ",\"status_times\":{");
    bool first = true;
    for (int s = BUS_STATUS_PLACED; s < BUS_STATUS_COUNT; s++) {
        const char *name = bus_status_name ((bus_status_t) s);
        if (!name || !order->status_ms[s])
            continue;
        s_put_lit (&t, first ? "" : ",");
        s_put_str (&t, name);
        s_put (&t, ":", 1);
        s_put_int (&t, (json_int_t) order->status_ms[s]);
        first = false;
    }
    s_put_lit (&t, "},\"subtotal_cents\":");
    s_put_int (&t, (json_int_t) order->subtotal_cents);
    s_put_key (&t, "tax_cents");
    s_put_int (&t, (json_int_t) order->tax_cents);
    s_put_key (&t, "total_cents");
    s_put_int (&t, (json_int_t) order->total_cents);
    s_put_lit (&t, ",\"items\":[");
    for (uint32_t i = 0; i < s_clamp (order->line_count, BUS_LINES_MAX); i++) {
        s_put_lit (&t, i ? "," : "");
        s_put_line (&t, &order->lines[i], order);
    }
    s_put_lit (&t, "]}");
    return t.bad ? 0 : t.len;
}

bool
bus_json_depth_ok (const char *text, size_t len, int max)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"')
            in_string = true;
        else if ((c == '[' || c == '{') && ++depth > max)
            return false;
        else if (c == ']' || c == '}')
            depth--;
    }
    return true;
}

json_t *
bus_json_cart (const bus_cart_t *cart)
{
    assert (cart);
    return json_pack ("{s:s, s:I, s:I, s:I, s:o}", "table", cart->table,
                      "version", (json_int_t) cart->version, "updated_ms",
                      (json_int_t) cart->updated_ms, "subtotal_cents",
                      (json_int_t) cart->subtotal_cents, "items",
                      s_lines (cart->lines, cart->line_count, NULL));
}

/*  The part of the event its type makes meaningful, under *key; NULL
    with *key NULL for a type without one.  */
static json_t *
s_event_payload (const bus_event_t *event, const char **key)
{
    switch (event->type) {
        case BUS_EVENT_ORDER_PLACED:
        case BUS_EVENT_ORDER_STATUS:
            *key = "order";
            return bus_json_order (&event->order);
        case BUS_EVENT_CART: *key = "cart"; return bus_json_cart (&event->cart);
        case BUS_EVENT_MENU_ITEM:
            *key = "item";
            return json_pack ("{s:s, s:b}", "id", event->item_id, "available",
                              (int) event->available);
    }
    *key = NULL;
    return NULL;
}

json_t *
bus_json_event (const bus_event_t *event)
{
    assert (event);
    json_t *msg =
        json_pack ("{s:s, s:I, s:I, s:s?}", "type", "event", "seq",
                   (json_int_t) event->seq, "ts_ms", (json_int_t) event->ts_ms,
                   "event", bus_event_type_name (event->type));
    const char *key;
    json_t *payload = s_event_payload (event, &key);
    //  set_new releases the payload if it cannot take it, msg NULL or not
    if (key && json_object_set_new (msg, key, payload)) {
        json_decref (msg);
        return NULL;
    }
    return msg;
}

//  --------------------------------------------------------------------------
//  Request bodies

static int
s_vreject (bus_json_error_t *error, int rc, const char *field,
           const char *format, va_list args)
{
    if (error) {
        snprintf (error->field, sizeof error->field, "%s", field);
        vsnprintf (error->message, sizeof error->message, format, args);
    }
    return rc;
}

/*  Fill in *error and return rc.  */
static int
s_reject (bus_json_error_t *error, int rc, const char *field,
          const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_vreject (error, rc, field, format, args);
    va_end (args);
    return rc;
}

/*  Reject prefix.key as invalid; prefix names the line ("items[2]", or ""
    for a line that is the whole body), key NULL means the line itself.  */
static int
s_reject_at (bus_json_error_t *error, const char *prefix, const char *key,
             const char *format, ...)
{
    char field[sizeof error->field];
    snprintf (field, sizeof field, "%s%s%s", prefix, *prefix && key ? "." : "",
              key ? key : "");
    va_list args;
    va_start (args, format);
    s_vreject (error, BUS_ERR_INVALID, field, format, args);
    va_end (args);
    return BUS_ERR_INVALID;
}

/*  First key of object not in the NULL-terminated list known, or NULL.  */
static const char *
s_unknown_key (json_t *object, const char *const *known)
{
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value)
    {
        size_t i = 0;
        while (known[i] && strcmp (known[i], key) != 0)
            i++;
        if (!known[i])
            return key;
    }
    return NULL;
}

/*  True if value is an integer (not 2.0, not "2") from min to max.  */
static bool
s_int_in (json_t *value, json_int_t min, json_int_t max)
{
    return json_is_integer (value) && json_integer_value (value) >= min
           && json_integer_value (value) <= max;
}

/*  Copy an optional note (absent means "") into dst[BUS_NOTE_MAX].
    Returns 0, or -1 if the value is not an acceptable note.  */
static int
s_note (json_t *value, char *dst)
{
    const char *note = value ? json_string_value (value) : "";
    if (!bus_valid_note (note))
        return -1;
    return bus_strlcpy (dst, note, BUS_NOTE_MAX);
}

/*  Read an optional "version" of root: absent is 0 (the client asks for
    no check).  Returns 0, or -1 if it is not a version.  */
static int
s_version (json_t *root, uint32_t *version)
{
    json_t *value = json_object_get (root, "version");
    if (value && !s_int_in (value, 1, UINT32_MAX))
        return -1;
    *version = value ? (uint32_t) json_integer_value (value) : 0;
    return 0;
}

#define S_VERSION_RULE "must be an integer from 1 to 4294967295"

/*  Read the line's optional list of modifier ids into line.  */
static int
s_parse_mods (json_t *mods, const char *prefix, bus_line_t *line,
              bus_json_error_t *error)
{
    if (!mods)
        return 0;
    if (!json_is_array (mods) || json_array_size (mods) > BUS_MODS_MAX)
        return s_reject_at (error, prefix, "modifiers",
                            "must be an array of "
                            "at most %d modifiers",
                            BUS_MODS_MAX);
    for (size_t i = 0; i < json_array_size (mods); i++) {
        char key[32];
        snprintf (key, sizeof key, "modifiers[%zu]", i);
        const char *id = json_string_value (json_array_get (mods, i));
        if (!bus_valid_item_id (id))
            return s_reject_at (error, prefix, key, "%s", BUS_RULE_ID);
        //  A repeat would be charged twice: the client meant something else
        for (uint32_t j = 0; j < line->mod_count; j++)
            if (streq (line->mods[j].id, id))
                return s_reject_at (error, prefix, key,
                                    "duplicate modifier id '%s'", id);
        bus_strlcpy (line->mods[line->mod_count++].id, id, BUS_ID_MAX);
    }
    return 0;
}

/*  Parse a line request into line (cleared first: name, price and the
    rest are the writer's to fill in).  */
static int
s_parse_line (json_t *obj, const char *prefix, bus_line_t *line,
              bus_json_error_t *error)
{
    if (!json_is_object (obj))
        return s_reject_at (error, prefix, NULL, "must be an object");
    const char *unknown = s_unknown_key (obj, s_line_keys);
    if (unknown)
        return s_reject_at (error, prefix, unknown, "unknown field");

    memset (line, 0, sizeof *line);
    const char *item_id = json_string_value (json_object_get (obj, "item_id"));
    if (!bus_valid_item_id (item_id))
        return s_reject_at (error, prefix, "item_id", "%s", BUS_RULE_ID);
    json_t *quantity = json_object_get (obj, "quantity");
    if (!s_int_in (quantity, 1, BUS_QTY_MAX))
        return s_reject_at (error, prefix, "quantity",
                            "must be an integer from 1 to %d", BUS_QTY_MAX);
    if (s_note (json_object_get (obj, "note"), line->note))
        return s_reject_at (error, prefix, "note", "%s", BUS_RULE_NOTE);
    int rc =
        s_parse_mods (json_object_get (obj, "modifiers"), prefix, line, error);
    if (rc)
        return rc;
    bus_strlcpy (line->item_id, item_id, sizeof line->item_id);
    line->qty = (uint32_t) json_integer_value (quantity);
    return 0;
}

static int
s_parse_place (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    const char *table = json_string_value (json_object_get (root, "table"));
    if (!bus_valid_table (table))
        return s_reject (error, BUS_ERR_INVALID, "table", "%s", BUS_RULE_TABLE);
    if (s_note (json_object_get (root, "note"), cmd->note))
        return s_reject (error, BUS_ERR_INVALID, "note", "%s", BUS_RULE_NOTE);
    json_t *items = json_object_get (root, "items");
    if (!json_is_array (items) || json_array_size (items) == 0
        || json_array_size (items) > BUS_LINES_MAX)
        return s_reject (error, BUS_ERR_INVALID, "items",
                         "must be a "
                         "non-empty array of at most %d items",
                         BUS_LINES_MAX);
    for (size_t i = 0; i < json_array_size (items); i++) {
        char prefix[32];
        snprintf (prefix, sizeof prefix, "items[%zu]", i);
        int rc = s_parse_line (json_array_get (items, i), prefix,
                               &cmd->lines[i], error);
        if (rc)
            return rc;
    }
    cmd->type = BUS_CMD_PLACE;
    bus_strlcpy (cmd->table, table, sizeof cmd->table);
    cmd->line_count = (uint32_t) json_array_size (items);
    return 0;
}

static int
s_parse_cart_line (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    int rc = s_parse_line (root, "", &cmd->lines[0], error);
    if (rc)
        return rc;
    cmd->type = BUS_CMD_CART_ADD;
    cmd->line_count = 1;
    return 0;
}

static int
s_parse_status (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    const char *name = json_string_value (json_object_get (root, "status"));
    bus_status_t status;
    if (bus_status_parse (name, &status)) {
        //  Spelled out from the model, so the list cannot go stale
        char names[128] = "";
        for (int s = BUS_STATUS_PLACED; s <= BUS_STATUS_CANCELLED; s++)
            snprintf (names + strlen (names), sizeof names - strlen (names),
                      "%s%s", s > BUS_STATUS_PLACED ? ", " : "",
                      bus_status_name ((bus_status_t) s));
        return s_reject (error, BUS_ERR_INVALID, "status", "must be one of %s",
                         names);
    }
    uint32_t version;
    if (s_version (root, &version))
        return s_reject (error, BUS_ERR_INVALID, "version", S_VERSION_RULE);
    cmd->type = BUS_CMD_SET_STATUS;
    cmd->status = status;
    cmd->version = version;
    return 0;
}

static int
s_parse_qty (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    json_t *quantity = json_object_get (root, "quantity");
    if (!s_int_in (quantity, 0, BUS_QTY_MAX))
        return s_reject (error, BUS_ERR_INVALID, "quantity",
                         "must be an integer from 0 to %d", BUS_QTY_MAX);
    cmd->type = BUS_CMD_CART_SET_QTY;
    cmd->qty = (uint32_t) json_integer_value (quantity);
    return 0;
}

static int
s_parse_availability (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    json_t *available = json_object_get (root, "available");
    if (!json_is_boolean (available))
        return s_reject (error, BUS_ERR_INVALID, "available",
                         "must be true or false");
    cmd->type = BUS_CMD_AVAILABILITY;
    cmd->available = json_is_true (available);
    return 0;
}

static int
s_parse_cart_place (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    //  Checked into locals, so a bad version leaves cmd->note as it was
    char note[BUS_NOTE_MAX];
    if (s_note (json_object_get (root, "note"), note))
        return s_reject (error, BUS_ERR_INVALID, "note", "%s", BUS_RULE_NOTE);
    uint32_t version;
    if (s_version (root, &version))
        return s_reject (error, BUS_ERR_INVALID, "version", S_VERSION_RULE);
    cmd->type = BUS_CMD_CART_PLACE;
    bus_strlcpy (cmd->note, note, sizeof cmd->note);
    cmd->version = version;
    return 0;
}

/*  A line-state command's version, and its state (issue 17).  */
static int
s_parse_line_state (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error,
                    bus_line_state_t state)
{
    uint32_t version;
    if (s_version (root, &version))
        return s_reject (error, BUS_ERR_INVALID, "version", S_VERSION_RULE);
    cmd->type = BUS_CMD_LINE_STATE;
    cmd->line_state = state;
    cmd->version = version;
    return 0;
}

static int
s_parse_bump (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    return s_parse_line_state (root, cmd, error, BUS_LINE_DONE);
}

//  A recall: back to "cooking" (the default) or "new"
static int
s_parse_unbump (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    json_t *to = json_object_get (root, "to");
    bus_line_state_t state = BUS_LINE_COOKING;
    if (to
        && (bus_line_state_parse (json_string_value (to), &state) != 0
            || (state != BUS_LINE_COOKING && state != BUS_LINE_NEW)))
        return s_reject (error, BUS_ERR_INVALID, "to",
                         "must be \"cooking\" or \"new\"");
    return s_parse_line_state (root, cmd, error, state);
}

//  A void: its reason is required, 1..120 bytes of text
static int
s_parse_void (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    const char *reason = json_string_value (json_object_get (root, "reason"));
    if (!reason || !*reason || strlen (reason) >= BUS_REASON_MAX
        || !bus_valid_text (reason))
        return s_reject (error, BUS_ERR_INVALID, "reason", "%s",
                         BUS_RULE_REASON);
    int rc = s_parse_line_state (root, cmd, error, BUS_LINE_VOIDED);
    if (rc == 0)
        bus_strlcpy (cmd->note, reason, sizeof cmd->note);
    return rc;
}

typedef int (s_shape_fn) (json_t *root, bus_cmd_t *cmd,
                          bus_json_error_t *error);

/*  What every parser shares: the body must be one JSON object without
    duplicate or unknown keys; then parse reads the shape's fields.  */
static int
s_parse_body (const char *body, size_t len, bus_cmd_t *cmd,
              bus_json_error_t *error, const char *const *keys,
              s_shape_fn *parse)
{
    assert (cmd);
    if (error)
        error->field[0] = error->message[0] = '\0';
    if (!bus_json_depth_ok (body, len, BUS_JSON_DEPTH_MAX))
        return s_reject (error, BUS_ERR_MALFORMED, "",
                         "body is nested deeper "
                         "than %d levels",
                         BUS_JSON_DEPTH_MAX);
    //  JSON_DECODE_ANY so that a bare 7 or "x" gets the object message
    json_error_t jerr;
    json_t *root =
        json_loadb (body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return s_reject (error, BUS_ERR_MALFORMED, "",
                         "body is not valid JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
    int rc;
    const char *unknown;
    if (!json_is_object (root))
        rc = s_reject (error, BUS_ERR_MALFORMED, "",
                       "body must be a JSON object");
    else if ((unknown = s_unknown_key (root, keys)))
        rc = s_reject (error, BUS_ERR_INVALID, unknown, "unknown field");
    else
        rc = parse (root, cmd, error);
    json_decref (root);
    return rc;
}

int
bus_json_place_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                    bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_order_keys, s_parse_place);
}

int
bus_json_line_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                   bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_line_keys, s_parse_cart_line);
}

int
bus_json_status_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                     bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_status_keys, s_parse_status);
}

int
bus_json_qty_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                  bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_qty_keys, s_parse_qty);
}

int
bus_json_availability_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                           bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_availability_keys,
                         s_parse_availability);
}

int
bus_json_cart_place_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                         bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_cart_place_keys,
                         s_parse_cart_place);
}

int
bus_json_bump_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                   bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_bump_keys, s_parse_bump);
}

int
bus_json_unbump_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                     bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_unbump_keys, s_parse_unbump);
}

int
bus_json_void_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                   bus_json_error_t *error)
{
    return s_parse_body (body, len, cmd, error, s_void_keys, s_parse_void);
}

//  --------------------------------------------------------------------------
//  Error bodies and serialization

/*  text with each byte that does not start a valid UTF-8 character
    replaced by '?', as a JSON string.  */
static json_t *
s_text_repaired (const char *text, size_t len)
{
    char *clean = malloc (len + 1);
    size_t n = 0;
    for (size_t i = 0; clean && i < len;) {
        size_t c = bus_utf8_char (text + i);
        memcpy (clean + n, c ? text + i : "?", c ? c : 1);
        n += c ? c : 1;
        i += c ? c : 1;
    }
    json_t *string = clean ? json_stringn (clean, n) : NULL;
    free (clean);
    return string;
}

/*  A JSON string for text that may have been cut mid-character by a
    fixed-size buffer (messages quote client keys and jansson's errors):
    drop up to three trailing bytes until it is valid UTF-8 again.  What
    is still not UTF-8 (jansson's error texts quote the bytes of a body
    it could not read) is repaired, so that an error always has a body. */
static json_t *
s_text (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    json_t *string = json_stringn (text ? text : "", len);
    for (size_t cut = 1; !string && cut <= 3 && cut <= len; cut++)
        string = json_stringn (text, len - cut);
    return string ? string : s_text_repaired (text, len);
}

json_t *
bus_json_error (const char *code, const char *message, const char *field)
{
    json_t *detail = json_pack ("{s:o, s:o}", "code", s_text (code), "message",
                                s_text (message));
    if (detail && field && *field)
        json_object_set_new (detail, "field", s_text (field));
    return json_pack ("{s:o}", "error", detail);
}

char *
bus_json_dump (const json_t *json)
{
    return json ? json_dumps (json, JSON_COMPACT) : NULL;
}
