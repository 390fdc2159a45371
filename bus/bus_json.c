/*  bus_json.c — the HTTP/WebSocket JSON shapes, built with jansson.

    Request bodies are parsed strictly: only integers where integers are
    meant (2.0, "2" and true are not quantities), no unknown keys, no
    duplicate keys, and every rejection names the JSON path at fault.  */

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"

static const char *const s_order_keys[] = {"table", "note", "items", NULL};
static const char *const s_line_keys[] = {"item_id", "quantity", "note", NULL};

static json_t *
s_line (const bus_line_t *line)
{
    //  qty <= 99 and menu prices <= 10^7, so the product cannot overflow
    return json_pack ("{s:s, s:s, s:I, s:I, s:I, s:s}",
                      "item_id", line->item_id, "name", line->name,
                      "quantity", (json_int_t) line->qty,
                      "unit_cents", (json_int_t) line->unit_cents,
                      "line_cents", (json_int_t) line->qty * line->unit_cents,
                      "note", line->note);
}

json_t *
bus_json_order (const bus_order_t *order)
{
    assert (order);
    json_t *items = json_array ();
    uint32_t count = order->line_count < BUS_LINES_MAX ? order->line_count
                                                       : BUS_LINES_MAX;
    for (uint32_t i = 0; items && i < count; i++)
        json_array_append_new (items, s_line (&order->lines[i]));

    //  "o" hands items over to the object, or releases it if packing fails
    return json_pack ("{s:I, s:I, s:I, s:s?, s:s, s:s, s:s, s:s, s:I, s:I,"
                      " s:I, s:o}",
                      "id", (json_int_t) order->id,
                      "seq", (json_int_t) order->seq,
                      "version", (json_int_t) order->version,
                      "status", bus_status_name (order->status),
                      "table", order->table, "note", order->note,
                      "idempotency_key", order->key, "origin", order->origin,
                      "created_ms", (json_int_t) order->created_ms,
                      "updated_ms", (json_int_t) order->updated_ms,
                      "total_cents", (json_int_t) order->total_cents,
                      "items", items);
}

json_t *
bus_json_event (const bus_event_t *event)
{
    assert (event);
    return json_pack ("{s:s, s:I, s:I, s:s?, s:o}", "type", "event",
                      "seq", (json_int_t) event->seq,
                      "ts_ms", (json_int_t) event->ts_ms,
                      "event", bus_event_type_name (event->type),
                      "order", bus_json_order (&event->order));
}

//  --------------------------------------------------------------------------
//  Order request bodies

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

/*  Reject items[index] (key NULL) or items[index].key as invalid.  */
static int
s_reject_line (bus_json_error_t *error, size_t index, const char *key,
               const char *format, ...)
{
    char field[sizeof error->field];
    if (key)
        snprintf (field, sizeof field, "items[%zu].%s", index, key);
    else
        snprintf (field, sizeof field, "items[%zu]", index);
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
    json_object_foreach (object, key, value) {
        size_t i = 0;
        while (known[i] && strcmp (known[i], key) != 0)
            i++;
        if (!known[i])
            return key;
    }
    return NULL;
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

#define S_NOTE_RULE "must be a string of at most %d bytes of UTF-8 text " \
                    "without control characters"

static int
s_parse_line (json_t *obj, size_t index, bus_line_t *line,
              bus_json_error_t *error)
{
    if (!json_is_object (obj))
        return s_reject_line (error, index, NULL, "must be an object");
    const char *unknown = s_unknown_key (obj, s_line_keys);
    if (unknown)
        return s_reject_line (error, index, unknown, "unknown field");

    memset (line, 0, sizeof *line);
    const char *item_id = json_string_value (json_object_get (obj, "item_id"));
    if (!bus_valid_item_id (item_id))
        return s_reject_line (error, index, "item_id", "must be a string of 1 "
                              "to %d characters from A-Z, a-z, 0-9, '_', '.' "
                              "and '-'", BUS_ID_MAX - 1);
    json_t *quantity = json_object_get (obj, "quantity");
    if (!json_is_integer (quantity) || json_integer_value (quantity) < 1
        || json_integer_value (quantity) > BUS_QTY_MAX)
        return s_reject_line (error, index, "quantity",
                              "must be an integer from 1 to %d", BUS_QTY_MAX);
    if (s_note (json_object_get (obj, "note"), line->note))
        return s_reject_line (error, index, "note", S_NOTE_RULE,
                              BUS_NOTE_MAX - 1);
    bus_strlcpy (line->item_id, item_id, sizeof line->item_id);
    line->qty = (uint32_t) json_integer_value (quantity);
    return 0;
}

static int
s_parse_place (json_t *root, bus_cmd_t *cmd, bus_json_error_t *error)
{
    const char *unknown = s_unknown_key (root, s_order_keys);
    if (unknown)
        return s_reject (error, BUS_ERR_INVALID, unknown, "unknown field");

    const char *table = json_string_value (json_object_get (root, "table"));
    if (!bus_valid_table (table))
        return s_reject (error, BUS_ERR_INVALID, "table", "must be a string "
                         "of 1 to %d printable characters without '/'",
                         BUS_TABLE_MAX - 1);
    if (s_note (json_object_get (root, "note"), cmd->note))
        return s_reject (error, BUS_ERR_INVALID, "note", S_NOTE_RULE,
                         BUS_NOTE_MAX - 1);
    json_t *items = json_object_get (root, "items");
    if (!json_is_array (items) || json_array_size (items) == 0
        || json_array_size (items) > BUS_LINES_MAX)
        return s_reject (error, BUS_ERR_INVALID, "items", "must be a "
                         "non-empty array of at most %d items", BUS_LINES_MAX);
    for (size_t i = 0; i < json_array_size (items); i++) {
        int rc = s_parse_line (json_array_get (items, i), i, &cmd->lines[i],
                               error);
        if (rc)
            return rc;
    }
    cmd->type = BUS_CMD_PLACE;
    bus_strlcpy (cmd->table, table, sizeof cmd->table);
    cmd->line_count = (uint32_t) json_array_size (items);
    return 0;
}

int
bus_json_place_cmd (const char *body, size_t len, bus_cmd_t *cmd,
                    bus_json_error_t *error)
{
    assert (cmd);
    if (error)
        error->field[0] = error->message[0] = '\0';
    //  JSON_DECODE_ANY so that a bare 7 or "x" gets the object message
    json_error_t jerr;
    json_t *root = json_loadb (body, len,
                               JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return s_reject (error, BUS_ERR_MALFORMED, "",
                         "body is not valid JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
    int rc = json_is_object (root)
             ? s_parse_place (root, cmd, error)
             : s_reject (error, BUS_ERR_MALFORMED, "",
                         "body must be a JSON object");
    json_decref (root);
    return rc;
}

//  --------------------------------------------------------------------------
//  Error bodies and serialization

/*  A JSON string for text that may have been cut mid-character by a
    fixed-size buffer (messages quote client keys and jansson's errors):
    drop up to three trailing bytes until it is valid UTF-8 again.  */
static json_t *
s_text (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    json_t *string = json_stringn (text ? text : "", len);
    for (size_t cut = 1; !string && cut <= 3 && cut <= len; cut++)
        string = json_stringn (text, len - cut);
    return string;
}

json_t *
bus_json_error (const char *code, const char *message, const char *field)
{
    json_t *detail = json_pack ("{s:o, s:o}", "code", s_text (code),
                                "message", s_text (message));
    if (detail && field && *field)
        json_object_set_new (detail, "field", s_text (field));
    return json_pack ("{s:o}", "error", detail);
}

char *
bus_json_dump (const json_t *json)
{
    return json ? json_dumps (json, JSON_COMPACT) : NULL;
}

//  --------------------------------------------------------------------------
//  Selftest

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

static void
s_test_order (bool verbose)
{
    bus_event_t event = {.seq = 40, .ts_ms = 1767000000123,
                         .type = BUS_EVENT_ORDER_PLACED};
    bus_order_t *order = &event.order;
    *order = (bus_order_t) {.id = 12, .seq = 40, .version = 1,
                            .status = BUS_STATUS_PLACED,
                            .created_ms = 1767000000000,
                            .updated_ms = 1767000000001,
                            .total_cents = 3200, .line_count = 2};
    bus_strlcpy (order->table, "T12", sizeof order->table);
    bus_strlcpy (order->key, "pad-7-0001", sizeof order->key);
    bus_strlcpy (order->origin, "patio", sizeof order->origin);
    bus_strlcpy (order->note, "anniversary", sizeof order->note);
    order->lines[0] = (bus_line_t) {.item_id = "burger", .qty = 2,
                                    .note = "no onions", .name = "Burger",
                                    .unit_cents = 1250};
    order->lines[1] = (bus_line_t) {.item_id = "ice-cream", .qty = 1,
                                    .name = "Ice Cream", .unit_cents = 700};

    json_t *json = bus_json_order (order);
    assert (json);
    assert (json_integer_value (json_object_get (json, "id")) == 12);
    assert (json_integer_value (json_object_get (json, "created_ms"))
            == 1767000000000);
    assert (streq (json_string_value (json_object_get (json, "status")),
                   "placed"));
    assert (streq (json_string_value (json_object_get (json,
                                                       "idempotency_key")),
                   "pad-7-0001"));
    json_t *items = json_object_get (json, "items");
    assert (json_array_size (items) == 2);
    json_t *line = json_array_get (items, 0);
    assert (json_integer_value (json_object_get (line, "line_cents")) == 2500);
    assert (streq (json_string_value (json_object_get (line, "name")), "Burger"));
    char *text = bus_json_dump (json);
    if (verbose)
        printf ("   %s\n", text);
    assert (streq (text,
        "{\"id\":12,\"seq\":40,\"version\":1,\"status\":\"placed\","
        "\"table\":\"T12\",\"note\":\"anniversary\","
        "\"idempotency_key\":\"pad-7-0001\",\"origin\":\"patio\","
        "\"created_ms\":1767000000000,\"updated_ms\":1767000000001,"
        "\"total_cents\":3200,\"items\":[{\"item_id\":\"burger\","
        "\"name\":\"Burger\",\"quantity\":2,\"unit_cents\":1250,"
        "\"line_cents\":2500,\"note\":\"no onions\"},{\"item_id\":"
        "\"ice-cream\",\"name\":\"Ice Cream\",\"quantity\":1,"
        "\"unit_cents\":700,\"line_cents\":700,\"note\":\"\"}]}"));
    free (text);
    json_decref (json);

    json = bus_json_event (&event);
    assert (json);
    assert (streq (json_string_value (json_object_get (json, "type")), "event"));
    assert (streq (json_string_value (json_object_get (json, "event")),
                   "order.placed"));
    assert (json_integer_value (json_object_get (json, "seq")) == 40);
    assert (json_integer_value (json_object_get (json, "ts_ms"))
            == 1767000000123);
    json_t *inner = json_object_get (json, "order");
    assert (json_integer_value (json_object_get (inner, "id")) == 12);
    assert (json_array_size (json_object_get (inner, "items")) == 2);
    json_decref (json);
}

static void
s_test_place_valid (void)
{
    bus_cmd_t cmd = {.key = "k-1", .origin = "patio"};
    bus_json_error_t error;
    const char *body = "{\"table\": \"T12\", \"items\": [{\"item_id\": "
                       "\"burger\", \"quantity\": 2}]}";
    assert (bus_json_place_cmd (body, strlen (body), &cmd, &error) == 0);
    assert (cmd.type == BUS_CMD_PLACE);
    assert (streq (cmd.table, "T12"));
    assert (streq (cmd.note, ""));
    assert (streq (cmd.key, "k-1") && streq (cmd.origin, "patio"));
    assert (cmd.line_count == 1);
    assert (streq (cmd.lines[0].item_id, "burger"));
    assert (cmd.lines[0].qty == 2);
    assert (streq (cmd.lines[0].note, "") && streq (cmd.lines[0].name, ""));
    assert (cmd.lines[0].unit_cents == 0);

    //  Notes, UTF-8, and a body that is not NUL-terminated
    const char *noted = "{\"note\": \"birthday \xf0\x9f\x8e\x82\", \"table\": "
                        "\"Patio 3\", \"items\": [{\"item_id\": \"fries\", "
                        "\"quantity\": 1, \"note\": \"extra crispy\"}, "
                        "{\"quantity\": 99, \"item_id\": \"ice-cream\"}]}{{{";
    assert (bus_json_place_cmd (noted, strlen (noted) - 3, &cmd, &error) == 0);
    assert (streq (cmd.table, "Patio 3"));
    assert (streq (cmd.note, "birthday \xf0\x9f\x8e\x82"));
    assert (cmd.line_count == 2);
    assert (streq (cmd.lines[0].note, "extra crispy"));
    assert (streq (cmd.lines[1].item_id, "ice-cream"));
    assert (cmd.lines[1].qty == 99);
    assert (streq (cmd.lines[1].note, ""));
    assert (streq (error.field, "") && streq (error.message, ""));
}

/*  A body with count lines; caller frees.  */
static char *
s_test_lines_body (size_t count)
{
    char *body = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&body, &size);
    assert (stream);
    fprintf (stream, "{\"table\": \"T1\", \"items\": [");
    for (size_t i = 0; i < count; i++)
        fprintf (stream, "%s{\"item_id\": \"item-%zu\", \"quantity\": %zu}",
                 i ? ", " : "", i, i % BUS_QTY_MAX + 1);
    fprintf (stream, "]}");
    fclose (stream);
    return body;
}

typedef struct {
    const char *body;
    int rc;
    const char *field;
} s_bad_body_t;

#define S_ITEM(line) "{\"table\": \"T1\", \"items\": [" line "]}"

static const s_bad_body_t s_bad_bodies[] = {
    {"{\"table\": \"T1\", \"items\": [", BUS_ERR_MALFORMED, ""},
    {"", BUS_ERR_MALFORMED, ""},
    {"{\"table\": \"T1\"} x", BUS_ERR_MALFORMED, ""},
    {"{\"table\": \"a\", \"table\": \"b\", \"items\": []}", BUS_ERR_MALFORMED, ""},
    {"{\"table\": \"a\\u0000b\"}", BUS_ERR_MALFORMED, ""},
    {"[{\"item_id\": \"burger\", \"quantity\": 1}]", BUS_ERR_MALFORMED, ""},
    {"\"T1\"", BUS_ERR_MALFORMED, ""},
    {"null", BUS_ERR_MALFORMED, ""},
    {"{\"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
     BUS_ERR_INVALID, "table"},
    {"{\"table\": 12, \"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
     BUS_ERR_INVALID, "table"},
    {"{\"table\": \"T/1\", \"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
     BUS_ERR_INVALID, "table"},
    {"{\"table\": \"\", \"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
     BUS_ERR_INVALID, "table"},
    {"{\"table\": \"T1\", \"tabel\": \"T1\", \"items\": []}", BUS_ERR_INVALID,
     "tabel"},
    {"{\"table\": \"T1\", \"note\": 5, \"items\": []}", BUS_ERR_INVALID, "note"},
    {"{\"table\": \"T1\", \"note\": \"a\\u0007b\", \"items\": []}",
     BUS_ERR_INVALID, "note"},
    {"{\"table\": \"T1\"}", BUS_ERR_INVALID, "items"},
    {"{\"table\": \"T1\", \"items\": []}", BUS_ERR_INVALID, "items"},
    {"{\"table\": \"T1\", \"items\": {}}", BUS_ERR_INVALID, "items"},
    {S_ITEM ("\"burger\""), BUS_ERR_INVALID, "items[0]"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 0}"), BUS_ERR_INVALID,
     "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 100}"), BUS_ERR_INVALID,
     "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": -1}"), BUS_ERR_INVALID,
     "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 4294967298}"),
     BUS_ERR_INVALID, "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 2.5}"), BUS_ERR_INVALID,
     "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1}, "
             "{\"item_id\": \"fries\", \"quantity\": 2.0}"), BUS_ERR_INVALID,
     "items[1].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": \"2\"}"), BUS_ERR_INVALID,
     "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": true}"), BUS_ERR_INVALID,
     "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\"}"), BUS_ERR_INVALID, "items[0].quantity"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantiy\": 2}"), BUS_ERR_INVALID,
     "items[0].quantiy"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"name\": \"Free\"}"),
     BUS_ERR_INVALID, "items[0].name"},
    {S_ITEM ("{\"item_id\": \"bur ger\", \"quantity\": 1}"), BUS_ERR_INVALID,
     "items[0].item_id"},
    {S_ITEM ("{\"quantity\": 1}"), BUS_ERR_INVALID, "items[0].item_id"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"note\": \"a\\nb\"}"),
     BUS_ERR_INVALID, "items[0].note"},
    {S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"note\": null}"),
     BUS_ERR_INVALID, "items[0].note"},
};

static void
s_test_place_invalid (bool verbose)
{
    for (size_t i = 0; i < sizeof s_bad_bodies / sizeof s_bad_bodies[0]; i++) {
        const s_bad_body_t *bad = &s_bad_bodies[i];
        bus_cmd_t cmd = {.key = "k-1", .origin = "patio"};
        bus_json_error_t error;
        int rc = bus_json_place_cmd (bad->body, strlen (bad->body), &cmd, &error);
        if (verbose)
            printf ("   %s -> %s: %s\n", bad->body, error.field, error.message);
        assert (rc == bad->rc);
        assert (streq (error.field, bad->field));
        assert (strlen (error.message) > 0);
        assert (streq (cmd.key, "k-1") && streq (cmd.origin, "patio"));
    }
    bus_json_error_t error;
    bus_cmd_t cmd;
    assert (bus_json_place_cmd ("{", 1, &cmd, &error) == BUS_ERR_MALFORMED);
    assert (strstr (error.message, "body is not valid JSON: ") == error.message);
    assert (strstr (error.message, "(line 1, column 1)"));
    assert (bus_json_place_cmd ("[]", 2, &cmd, &error) == BUS_ERR_MALFORMED);
    assert (streq (error.message, "body must be a JSON object"));
    const char *body = S_ITEM ("{\"item_id\": \"x\", \"quantity\": 100}");
    assert (bus_json_place_cmd (body, strlen (body), &cmd, &error)
            == BUS_ERR_INVALID);
    assert (streq (error.message, "must be an integer from 1 to 99"));
    body = "{\"table\": \"T/1\"}";
    bus_json_place_cmd (body, strlen (body), &cmd, &error);
    assert (streq (error.message, "must be a string of 1 to 32 printable "
                                  "characters without '/'"));
}

static void
s_test_place_limits (void)
{
    bus_cmd_t cmd;
    bus_json_error_t error;
    char *body = s_test_lines_body (BUS_LINES_MAX);
    assert (bus_json_place_cmd (body, strlen (body), &cmd, &error) == 0);
    assert (cmd.line_count == BUS_LINES_MAX);
    assert (streq (cmd.lines[49].item_id, "item-49"));
    assert (cmd.lines[49].qty == 50);
    free (body);

    body = s_test_lines_body (BUS_LINES_MAX + 1);
    assert (bus_json_place_cmd (body, strlen (body), &cmd, &error)
            == BUS_ERR_INVALID);
    assert (streq (error.field, "items"));
    assert (streq (error.message, "must be a non-empty array of at most 50 items"));
    free (body);

    //  An unknown key too long for the field is cut, not overflowed
    char key[200];
    memset (key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    char *long_key = zsys_sprintf ("{\"%s\": 1}", key);
    assert (bus_json_place_cmd (long_key, strlen (long_key), &cmd, &error)
            == BUS_ERR_INVALID);
    assert (strlen (error.field) == sizeof error.field - 1);
    zstr_free (&long_key);
}

static void
s_test_error_body (void)
{
    json_t *json = bus_json_error ("invalid_field",
                                   "must be an integer from 1 to 99",
                                   "items[0].quantity");
    char *text = bus_json_dump (json);
    assert (streq (text, "{\"error\":{\"code\":\"invalid_field\",\"message\":"
                         "\"must be an integer from 1 to 99\",\"field\":"
                         "\"items[0].quantity\"}}"));
    free (text);
    json_decref (json);

    json = bus_json_error ("malformed", "body must be a JSON object", "");
    text = bus_json_dump (json);
    assert (streq (text, "{\"error\":{\"code\":\"malformed\",\"message\":"
                         "\"body must be a JSON object\"}}"));
    free (text);
    json_decref (json);

    //  No field, and a message cut inside a UTF-8 sequence ("é" = c3 a9)
    json = bus_json_error ("not_found", "caf\xc3", NULL);
    text = bus_json_dump (json);
    assert (streq (text, "{\"error\":{\"code\":\"not_found\",\"message\":\"caf\"}}"));
    free (text);
    json_decref (json);
    assert (bus_json_dump (NULL) == NULL);
}

void
bus_json_test (bool verbose)
{
    if (verbose)
        printf (" * bus_json:\n");
    s_test_order (verbose);
    s_test_place_valid ();
    s_test_place_invalid (verbose);
    s_test_place_limits ();
    s_test_error_body ();
    if (verbose)
        printf ("OK\n");
}
