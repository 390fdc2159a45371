/*  bus_json_test.c — selftest of the JSON shapes (bus_json.h),
    kept apart from bus_json.c so the module reads as what it does: every
    shape written field by field and byte by byte, and every request body
    parsed, accepted or refused with the path at fault.  */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

static void
s_test_fill_order (bus_order_t *order)
{
    *order = (bus_order_t){ .id = 12,
                            .seq = 40,
                            .version = 3,
                            .status = BUS_STATUS_ACCEPTED,
                            .created_ms = 1767000000000,
                            .updated_ms = 1767000000500,
                            .subtotal_cents = 4800,
                            .tax_cents = 420,
                            .total_cents = 5220,
                            .line_count = 2 };
    order->status_ms[BUS_STATUS_PLACED] = 1767000000000;
    order->status_ms[BUS_STATUS_ACCEPTED] = 1767000000500;
    bus_strlcpy (order->table, "T12", sizeof order->table);
    bus_strlcpy (order->key, "pad-7-0001", sizeof order->key);
    bus_strlcpy (order->origin, "patio", sizeof order->origin);
    bus_strlcpy (order->note, "anniversary", sizeof order->note);
    order->lines[0] = (bus_line_t){ .line_id = 1,
                                    .item_id = "burger",
                                    .qty = 2,
                                    .note = "no onions",
                                    .mod_count = 2,
                                    .name = "Burger",
                                    .station = "grill",
                                    .unit_cents = 2050 };
    order->lines[0].mods[0] = (bus_mod_t){ "cheese", "Extra cheese", 150 };
    order->lines[0].mods[1] = (bus_mod_t){ "bacon", "Bacon", 250 };
    order->lines[1] = (bus_line_t){ .line_id = 2,
                                    .item_id = "ice-cream",
                                    .qty = 1,
                                    .name = "Ice Cream",
                                    .station = "pastry",
                                    .unit_cents = 700 };
}

#define S_ORDER_JSON                                                          \
    "{\"id\":12,\"seq\":40,\"version\":3,\"status\":\"accepted\","            \
    "\"table\":\"T12\",\"note\":\"anniversary\","                             \
    "\"idempotency_key\":\"pad-7-0001\",\"origin\":\"patio\","                \
    "\"created_ms\":1767000000000,\"updated_ms\":1767000000500,"              \
    "\"status_times\":{\"placed\":1767000000000,\"accepted\":1767000000500}," \
    "\"subtotal_cents\":4800,\"tax_cents\":420,\"total_cents\":5220,"         \
    "\"items\":[{\"line_id\":1,\"item_id\":\"burger\",\"name\":\"Burger\","   \
    "\"station\":\"grill\",\"quantity\":2,\"unit_cents\":2050,"               \
    "\"line_cents\":4100,\"note\":\"no onions\",\"modifiers\":["              \
    "{\"id\":\"cheese\",\"name\":\"Extra cheese\",\"delta_cents\":150},"      \
    "{\"id\":\"bacon\",\"name\":\"Bacon\",\"delta_cents\":250}],"             \
    "\"state\":\"new\",\"state_ms\":1767000000000,\"void_reason\":\"\"},"     \
    "{\"line_id\":2,\"item_id\":\"ice-cream\",\"name\":\"Ice Cream\","        \
    "\"station\":\"pastry\",\"quantity\":1,\"unit_cents\":700,"               \
    "\"line_cents\":700,\"note\":\"\",\"modifiers\":[],\"state\":\"new\","    \
    "\"state_ms\":1767000000000,\"void_reason\":\"\"}]}"

static void
s_test_fill_cart (bus_cart_t *cart)
{
    *cart = (bus_cart_t){ .table = "T12",
                          .version = 3,
                          .next_line_id = 5,
                          .updated_ms = 1767000000900,
                          .subtotal_cents = 3800,
                          .line_count = 2 };
    cart->lines[0] = (bus_line_t){ .line_id = 2,
                                   .item_id = "fries",
                                   .qty = 3,
                                   .mod_count = 1,
                                   .name = "Fries",
                                   .station = "fry",
                                   .unit_cents = 750 };
    cart->lines[0].mods[0] = (bus_mod_t){ "large", "Large", 200 };
    cart->lines[1] = (bus_line_t){ .line_id = 4,
                                   .item_id = "fish-chips",
                                   .qty = 1,
                                   .mod_count = 1,
                                   .name = "Fish & Chips",
                                   .station = "fry",
                                   .unit_cents = 1550 };
    cart->lines[1].mods[0] = (bus_mod_t){ "small", "Small portion", -400 };
}

#define S_CART_JSON                                                        \
    "{\"table\":\"T12\",\"version\":3,\"updated_ms\":1767000000900,"       \
    "\"subtotal_cents\":3800,\"items\":[{\"line_id\":2,\"item_id\":"       \
    "\"fries\",\"name\":\"Fries\",\"station\":\"fry\",\"quantity\":3,"     \
    "\"unit_cents\":750,\"line_cents\":2250,\"note\":\"\",\"modifiers\":[" \
    "{\"id\":\"large\",\"name\":\"Large\",\"delta_cents\":200}]},"         \
    "{\"line_id\":4,\"item_id\":\"fish-chips\",\"name\":\"Fish & Chips\"," \
    "\"station\":\"fry\",\"quantity\":1,\"unit_cents\":1550,"              \
    "\"line_cents\":1550,\"note\":\"\",\"modifiers\":[{\"id\":\"small\","  \
    "\"name\":\"Small portion\",\"delta_cents\":-400}]}]}"

/*  Assert that json serializes to expect, and release it.  */
static void
s_test_dump (json_t *json, const char *expect, bool verbose)
{
    assert (json);
    char *text = bus_json_dump (json);
    if (verbose)
        printf ("   %s\n", text);
    if (!streq (text, expect))
        fprintf (stderr, "got:    %s\nexpect: %s\n", text, expect);
    assert (streq (text, expect));
    free (text);
    json_decref (json);
}

static void
s_test_order (bool verbose)
{
    bus_order_t *order = calloc (1, sizeof *order);
    assert (order);
    s_test_fill_order (order);
    s_test_dump (bus_json_order (order), S_ORDER_JSON, verbose);

    //  No status reached yet, an invalid status, a cancelled order
    memset (order->status_ms, 0, sizeof order->status_ms);
    order->status = 0;
    json_t *json = bus_json_order (order);
    assert (json_is_null (json_object_get (json, "status")));
    assert (json_object_size (json_object_get (json, "status_times")) == 0);
    json_decref (json);
    order->status = BUS_STATUS_CANCELLED;
    order->status_ms[BUS_STATUS_PLACED] = 1;
    order->status_ms[BUS_STATUS_CANCELLED] = 2;
    json = bus_json_order (order);
    s_test_dump (json_incref (json_object_get (json, "status_times")),
                 "{\"placed\":1,\"cancelled\":2}", verbose);
    json_decref (json);

    //  Counts past the arrays are not followed; line_cents saturates
    order->line_count = BUS_LINES_MAX + 7;
    order->lines[0].mod_count = BUS_MODS_MAX + 1;
    order->lines[1].qty = BUS_QTY_MAX;
    order->lines[1].unit_cents = INT64_MAX / 2;
    json = bus_json_order (order);
    json_t *items = json_object_get (json, "items");
    assert (json_array_size (items) == BUS_LINES_MAX);
    assert (json_array_size (
                json_object_get (json_array_get (items, 0), "modifiers"))
            == BUS_MODS_MAX);
    assert (json_integer_value (
                json_object_get (json_array_get (items, 1), "line_cents"))
            == INT64_MAX);
    json_decref (json);
    free (order);
}

/*  Assert that bus_json_order_write gives what the tree gives, byte for
    byte, for any buffer size; or nothing, where the tree is NULL.  */
static void
s_test_write_same (const bus_order_t *order)
{
    json_t *json = bus_json_order (order);
    char *expect = json ? bus_json_dump (json) : NULL;
    char buf[16384];
    size_t len = bus_json_order_write (order, buf, sizeof buf);
    if (!expect) {
        assert (len == 0);
        json_decref (json);
        return;
    }
    if (len != strlen (expect) || memcmp (buf, expect, len) != 0)
        fprintf (stderr, "got:    %.*s\nexpect: %s\n", (int) len, buf, expect);
    assert (len == strlen (expect) && memcmp (buf, expect, len) == 0);
    //  Too small a buffer: the length it needs, and the start of the text
    char small[40];
    memset (small, '#', sizeof small);
    assert (bus_json_order_write (order, small, 30) == len);
    assert (memcmp (small, expect, 30) == 0 && small[30] == '#');
    free (expect);
    json_decref (json);
}

static void
s_test_order_write (void)
{
    bus_order_t *order = calloc (1, sizeof *order);
    assert (order);
    s_test_fill_order (order);
    char buf[1024];
    size_t len = bus_json_order_write (order, buf, sizeof buf);
    assert (len == strlen (S_ORDER_JSON)
            && memcmp (buf, S_ORDER_JSON, len) == 0);
    s_test_write_same (order);

    //  Every byte jansson escapes, and UTF-8 it passes through as it is
    for (int c = 1; c < 0x20; c++) {
        char note[] = { 'a', (char) c, 'b', '\0' };
        bus_strlcpy (order->note, note, sizeof order->note);
        s_test_write_same (order);
    }
    const char *const texts[] = {
        "say \"hi\"",
        "back\\slash",
        "a/b",
        "del\x7f",
        "caf\xc3\xa9",
        "\xe2\x82\xac 5",
        "\xf0\x9f\x98\x80",
        "\xe2\x80\xa8 \xe2\x80\xa9",
        "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf",
        //  not UTF-8: a lone lead byte, overlong, surrogate, too high,
        //  a stray continuation byte, a cut-off sequence at the end
        "\xc3",
        "\xc0\x80",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80",
        "a\x80",
        "\xe2\x82",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        bus_strlcpy (order->lines[1].mods[0].name, texts[i],
                     sizeof order->lines[1].mods[0].name);
        order->lines[1].mod_count = 1;
        s_test_write_same (order);
        bus_strlcpy (order->origin, texts[i], sizeof order->origin);
        s_test_write_same (order);
        bus_strlcpy (order->origin, "patio", sizeof order->origin);
    }
    bus_strlcpy (order->lines[1].mods[0].name, "x",
                 sizeof order->lines[1].mods[0].name);

    //  No status, a cancelled order, numbers at their ends, counts past
    //  the arrays, no lines
    order->status = 0;
    memset (order->status_ms, 0, sizeof order->status_ms);
    s_test_write_same (order);
    order->status = BUS_STATUS_CANCELLED;
    order->status_ms[BUS_STATUS_PLACED] = 1;
    order->status_ms[BUS_STATUS_CANCELLED] = 2;
    order->id = UINT64_MAX;
    order->tax_cents = INT64_MIN;
    order->total_cents = INT64_MAX;
    order->lines[0].mods[0].delta_cents = -1;
    order->lines[0].unit_cents = -5;
    s_test_write_same (order);
    order->line_count = BUS_LINES_MAX + 7;
    order->lines[0].mod_count = BUS_MODS_MAX + 1;
    order->lines[1].qty = BUS_QTY_MAX;
    order->lines[1].unit_cents = INT64_MAX / 2;
    s_test_write_same (order);
    order->line_count = 0;
    s_test_write_same (order);
    free (order);
}

static void
s_test_cart (bool verbose)
{
    bus_cart_t *cart = calloc (1, sizeof *cart);
    assert (cart);
    s_test_fill_cart (cart);
    s_test_dump (bus_json_cart (cart), S_CART_JSON, verbose);
    *cart = (bus_cart_t){ .table = "T3" };
    s_test_dump (bus_json_cart (cart),
                 "{\"table\":\"T3\",\"version\":0,"
                 "\"updated_ms\":0,\"subtotal_cents\":0,\"items\":[]}",
                 verbose);
    free (cart);
}

#define S_EVENT_HEAD(name)            \
    "{\"type\":\"event\",\"seq\":41," \
    "\"ts_ms\":1767000000999,\"event\":\"" name "\","

static void
s_test_event (bool verbose)
{
    bus_event_t *event = calloc (1, sizeof *event);
    assert (event);
    //  Every part is filled in: only the type's part may show
    event->seq = 41;
    event->ts_ms = 1767000000999;
    s_test_fill_order (&event->order);
    s_test_fill_cart (&event->cart);
    bus_strlcpy (event->item_id, "fries", sizeof event->item_id);

    event->type = BUS_EVENT_ORDER_PLACED;
    s_test_dump (bus_json_event (event),
                 S_EVENT_HEAD ("order.placed") "\"order\":" S_ORDER_JSON "}",
                 verbose);
    event->type = BUS_EVENT_ORDER_STATUS;
    s_test_dump (bus_json_event (event),
                 S_EVENT_HEAD ("order.status") "\"order\":" S_ORDER_JSON "}",
                 verbose);
    event->type = BUS_EVENT_CART;
    s_test_dump (bus_json_event (event),
                 S_EVENT_HEAD ("cart.updated") "\"cart\":" S_CART_JSON "}",
                 verbose);
    event->type = BUS_EVENT_MENU_ITEM;
    s_test_dump (
        bus_json_event (event),
        S_EVENT_HEAD (
            "menu.item") "\"item\":{\"id\":\"fries\",\"available\":false}}",
        verbose);
    event->available = true;
    s_test_dump (
        bus_json_event (event),
        S_EVENT_HEAD (
            "menu.item") "\"item\":{\"id\":\"fries\",\"available\":true}}",
        verbose);
    event->type = (bus_event_type_t) 99;
    s_test_dump (bus_json_event (event),
                 "{\"type\":\"event\",\"seq\":41,"
                 "\"ts_ms\":1767000000999,\"event\":null}",
                 verbose);
    free (event);
}

static void
s_test_place_valid (void)
{
    bus_cmd_t cmd = { .key = "k-1", .origin = "patio" };
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
    assert (cmd.lines[0].mod_count == 0);

    //  Modifier ids, up to six, in the order given; [] is no modifiers
    const char *modded =
        "{\"table\": \"T12\", \"items\": [{\"item_id\": "
        "\"burger\", \"quantity\": 1, \"modifiers\": ["
        "\"cheese\", \"bacon\", \"no-onions\", \"a\", \"b\", "
        "\"c.d_e\"]}, {\"item_id\": \"fries\", \"quantity\": 1,"
        " \"modifiers\": []}]}";
    assert (bus_json_place_cmd (modded, strlen (modded), &cmd, &error) == 0);
    assert (cmd.line_count == 2);
    assert (cmd.lines[0].mod_count == BUS_MODS_MAX);
    assert (streq (cmd.lines[0].mods[0].id, "cheese"));
    assert (streq (cmd.lines[0].mods[2].id, "no-onions"));
    assert (streq (cmd.lines[0].mods[5].id, "c.d_e"));
    assert (streq (cmd.lines[0].mods[0].name, ""));
    assert (cmd.lines[0].mods[0].delta_cents == 0);
    assert (cmd.lines[1].mod_count == 0);

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
    { "{\"table\": \"T1\", \"items\": [", BUS_ERR_MALFORMED, "" },
    { "", BUS_ERR_MALFORMED, "" },
    { "{\"table\": \"T1\"} x", BUS_ERR_MALFORMED, "" },
    { "{\"table\": \"a\", \"table\": \"b\", \"items\": []}", BUS_ERR_MALFORMED,
      "" },
    { "{\"table\": \"a\\u0000b\"}", BUS_ERR_MALFORMED, "" },
    { "[{\"item_id\": \"burger\", \"quantity\": 1}]", BUS_ERR_MALFORMED, "" },
    { "\"T1\"", BUS_ERR_MALFORMED, "" },
    { "null", BUS_ERR_MALFORMED, "" },
    { "{\"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
      BUS_ERR_INVALID, "table" },
    { "{\"table\": 12, \"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
      BUS_ERR_INVALID, "table" },
    { "{\"table\": \"T/1\", \"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
      BUS_ERR_INVALID, "table" },
    { "{\"table\": \"\", \"items\": [{\"item_id\": \"burger\", \"quantity\": 1}]}",
      BUS_ERR_INVALID, "table" },
    { "{\"table\": \"T1\", \"tabel\": \"T1\", \"items\": []}", BUS_ERR_INVALID,
      "tabel" },
    { "{\"table\": \"T1\", \"note\": 5, \"items\": []}", BUS_ERR_INVALID,
      "note" },
    { "{\"table\": \"T1\", \"note\": \"a\\u0007b\", \"items\": []}",
      BUS_ERR_INVALID, "note" },
    { "{\"table\": \"T1\"}", BUS_ERR_INVALID, "items" },
    { "{\"table\": \"T1\", \"items\": []}", BUS_ERR_INVALID, "items" },
    { "{\"table\": \"T1\", \"items\": {}}", BUS_ERR_INVALID, "items" },
    { S_ITEM ("\"burger\""), BUS_ERR_INVALID, "items[0]" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 0}"), BUS_ERR_INVALID,
      "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 100}"), BUS_ERR_INVALID,
      "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": -1}"), BUS_ERR_INVALID,
      "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 4294967298}"),
      BUS_ERR_INVALID, "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 2.5}"), BUS_ERR_INVALID,
      "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1}, "
              "{\"item_id\": \"fries\", \"quantity\": 2.0}"),
      BUS_ERR_INVALID, "items[1].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": \"2\"}"),
      BUS_ERR_INVALID, "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": true}"), BUS_ERR_INVALID,
      "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\"}"), BUS_ERR_INVALID,
      "items[0].quantity" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantiy\": 2}"), BUS_ERR_INVALID,
      "items[0].quantiy" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"name\": \"Free\"}"),
      BUS_ERR_INVALID, "items[0].name" },
    { S_ITEM ("{\"item_id\": \"bur ger\", \"quantity\": 1}"), BUS_ERR_INVALID,
      "items[0].item_id" },
    { S_ITEM ("{\"quantity\": 1}"), BUS_ERR_INVALID, "items[0].item_id" },
    { S_ITEM (
          "{\"item_id\": \"burger\", \"quantity\": 1, \"note\": \"a\\nb\"}"),
      BUS_ERR_INVALID, "items[0].note" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"note\": null}"),
      BUS_ERR_INVALID, "items[0].note" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "\"cheese\"}"),
      BUS_ERR_INVALID, "items[0].modifiers" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "null}"),
      BUS_ERR_INVALID, "items[0].modifiers" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]}"),
      BUS_ERR_INVALID, "items[0].modifiers" },
    { S_ITEM ("{\"item_id\": \"a\", \"quantity\": 1}, "
              "{\"item_id\": \"b\", \"quantity\": 1}, "
              "{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "[\"cheese\", 7]}"),
      BUS_ERR_INVALID, "items[2].modifiers[1]" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "[\"\"]}"),
      BUS_ERR_INVALID, "items[0].modifiers[0]" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "[\"extra cheese\"]}"),
      BUS_ERR_INVALID, "items[0].modifiers[0]" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "[{\"id\": \"cheese\"}]}"),
      BUS_ERR_INVALID, "items[0].modifiers[0]" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifiers\": "
              "[\"cheese\", \"bacon\", \"cheese\"]}"),
      BUS_ERR_INVALID, "items[0].modifiers[2]" },
    { S_ITEM ("{\"item_id\": \"burger\", \"quantity\": 1, \"modifier\": "
              "[]}"),
      BUS_ERR_INVALID, "items[0].modifier" },
};

static void
s_test_place_invalid (bool verbose)
{
    for (size_t i = 0; i < sizeof s_bad_bodies / sizeof s_bad_bodies[0]; i++) {
        const s_bad_body_t *bad = &s_bad_bodies[i];
        bus_cmd_t cmd = { .key = "k-1", .origin = "patio" };
        bus_json_error_t error;
        int rc =
            bus_json_place_cmd (bad->body, strlen (bad->body), &cmd, &error);
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
    assert (strstr (error.message, "body is not valid JSON: ")
            == error.message);
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

    //  The messages of the modifier rules
    body = S_ITEM ("{\"item_id\": \"x\", \"quantity\": 1, \"modifiers\": "
                   "[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]}");
    bus_json_place_cmd (body, strlen (body), &cmd, &error);
    assert (streq (error.message, "must be an array of at most 6 modifiers"));
    body = S_ITEM ("{\"item_id\": \"x\", \"quantity\": 1}, {\"item_id\": "
                   "\"y\", \"quantity\": 1, \"modifiers\": [\"a\", \"a\"]}");
    bus_json_place_cmd (body, strlen (body), &cmd, &error);
    assert (streq (error.field, "items[1].modifiers[1]"));
    assert (streq (error.message, "duplicate modifier id 'a'"));
    body = S_ITEM ("{\"item_id\": \"x\", \"quantity\": 1, \"modifiers\": "
                   "[\"a/b\"]}");
    bus_json_place_cmd (body, strlen (body), &cmd, &error);
    assert (streq (error.message, "must be a string of 1 to 32 characters "
                                  "from A-Z, a-z, 0-9, '_', '.' and '-'"));
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
    assert (
        streq (error.message, "must be a non-empty array of at most 50 items"));
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

typedef int (s_parse_fn) (const char *body, size_t len, bus_cmd_t *cmd,
                          bus_json_error_t *error);

/*  A command with every field set to something no parser writes, so a
    test can tell exactly which fields a parser changed.  */
static void
s_test_sentinel_cmd (bus_cmd_t *cmd)
{
    memset (cmd, 0, sizeof *cmd);
    *cmd = (bus_cmd_t){ .type = BUS_CMD_CART_CLEAR,
                        .key = "k-1",
                        .origin = "patio",
                        .table = "T9",
                        .note = "old",
                        .order_id = 77,
                        .status = BUS_STATUS_READY,
                        .version = 55,
                        .line_id = 66,
                        .qty = 44,
                        .item_id = "fries",
                        .available = true,
                        .line_count = 3 };
    for (size_t i = 0; i < BUS_LINES_MAX; i++) {
        bus_strlcpy (cmd->lines[i].item_id, "old", BUS_ID_MAX);
        cmd->lines[i].qty = 9;
        cmd->lines[i].unit_cents = 123;
    }
}

/*  Parse body into a sentinel command, which must succeed; return the
    command, and in *expect a copy of the sentinel for the caller to set
    the fields the parser may change before s_test_only.  */
static bus_cmd_t *
s_test_parse (s_parse_fn *parse, const char *body, bus_cmd_t **expect)
{
    bus_cmd_t *cmd = malloc (sizeof *cmd);
    *expect = malloc (sizeof **expect);
    assert (cmd && *expect);
    s_test_sentinel_cmd (cmd);
    memcpy (*expect, cmd, sizeof *cmd);
    bus_json_error_t error;
    int rc = parse (body, strlen (body), cmd, &error);
    if (rc)
        fprintf (stderr, "%s -> %s: %s\n", body, error.field, error.message);
    assert (rc == 0);
    assert (streq (error.field, "") && streq (error.message, ""));
    return cmd;
}

/*  Assert that cmd is expect, field for field, and free both.  */
static void
s_test_only (bus_cmd_t *cmd, bus_cmd_t *expect)
{
    assert (memcmp (cmd, expect, sizeof *cmd) == 0);
    free (cmd);
    free (expect);
}

static void
s_test_line_valid (void)
{
    bus_cmd_t *expect;
    bus_cmd_t *cmd = s_test_parse (bus_json_line_cmd,
                                   "{\"item_id\": \"burger\", \"quantity\": 2, "
                                   "\"note\": \"no onions\", \"modifiers\": "
                                   "[\"cheese\", \"bacon\"]}",
                                   &expect);
    assert (cmd->type == BUS_CMD_CART_ADD);
    assert (cmd->line_count == 1);
    assert (streq (cmd->lines[0].item_id, "burger"));
    assert (cmd->lines[0].qty == 2);
    assert (streq (cmd->lines[0].note, "no onions"));
    assert (cmd->lines[0].mod_count == 2);
    assert (streq (cmd->lines[0].mods[1].id, "bacon"));
    //  The rest of lines[0] is the writer's to fill in, so it is cleared
    assert (cmd->lines[0].unit_cents == 0 && cmd->lines[0].line_id == 0);
    expect->type = BUS_CMD_CART_ADD;
    expect->line_count = 1;
    memcpy (&expect->lines[0], &cmd->lines[0], sizeof cmd->lines[0]);
    s_test_only (cmd, expect);

    cmd = s_test_parse (bus_json_line_cmd,
                        "{\"quantity\": 99, \"item_id\": "
                        "\"ice-cream\"}",
                        &expect);
    assert (cmd->lines[0].qty == 99 && cmd->lines[0].mod_count == 0);
    assert (streq (cmd->lines[0].note, ""));
    free (cmd);
    free (expect);
}

static void
s_test_status_valid (void)
{
    const char *names[] = { "placed", "accepted", "preparing",
                            "ready",  "served",   "cancelled" };
    for (int i = 0; i < 6; i++) {
        char body[64];
        snprintf (body, sizeof body, "{\"status\": \"%s\"}", names[i]);
        bus_cmd_t *expect;
        bus_cmd_t *cmd = s_test_parse (bus_json_status_cmd, body, &expect);
        expect->type = BUS_CMD_SET_STATUS;
        expect->status = (uint32_t) (BUS_STATUS_PLACED + i);
        expect->version = 0;   //  absent: no check
        s_test_only (cmd, expect);
    }
    bus_cmd_t *expect;
    bus_cmd_t *cmd = s_test_parse (bus_json_status_cmd,
                                   "{\"version\": 3, "
                                   "\"status\": \"ready\"}",
                                   &expect);
    expect->type = BUS_CMD_SET_STATUS;
    expect->status = BUS_STATUS_READY;
    expect->version = 3;
    s_test_only (cmd, expect);
    cmd = s_test_parse (bus_json_status_cmd,
                        "{\"status\": \"served\", "
                        "\"version\": 4294967295}",
                        &expect);
    assert (cmd->version == UINT32_MAX);
    free (cmd);
    free (expect);
}

//  Issue 17: bump, recall and void set the type, the state, the version
//  and (a void) the reason in note, and nothing else
static void
s_test_line_state_valid (void)
{
    bus_cmd_t *expect;
    bus_cmd_t *cmd = s_test_parse (bus_json_bump_cmd, "{}", &expect);
    expect->type = BUS_CMD_LINE_STATE;
    expect->line_state = BUS_LINE_DONE;
    expect->version = 0;
    s_test_only (cmd, expect);
    cmd = s_test_parse (bus_json_unbump_cmd, "{\"version\": 4}", &expect);
    expect->type = BUS_CMD_LINE_STATE;
    expect->line_state = BUS_LINE_COOKING;
    expect->version = 4;
    s_test_only (cmd, expect);
    cmd = s_test_parse (bus_json_unbump_cmd, "{\"to\": \"new\"}", &expect);
    assert (cmd->line_state == BUS_LINE_NEW);
    free (cmd);
    free (expect);
    cmd = s_test_parse (bus_json_void_cmd, "{\"reason\": \"86'd\"}", &expect);
    expect->type = BUS_CMD_LINE_STATE;
    expect->line_state = BUS_LINE_VOIDED;
    expect->version = 0;
    strcpy (expect->note, "86'd");
    s_test_only (cmd, expect);
}

static void
s_test_small_valid (void)
{
    bus_cmd_t *expect;
    bus_cmd_t *cmd =
        s_test_parse (bus_json_qty_cmd, "{\"quantity\": 0}", &expect);
    expect->type = BUS_CMD_CART_SET_QTY;
    expect->qty = 0;
    s_test_only (cmd, expect);
    cmd = s_test_parse (bus_json_qty_cmd, "{\"quantity\": 99}", &expect);
    expect->type = BUS_CMD_CART_SET_QTY;
    expect->qty = 99;
    s_test_only (cmd, expect);

    cmd = s_test_parse (bus_json_availability_cmd, "{\"available\": false}",
                        &expect);
    expect->type = BUS_CMD_AVAILABILITY;
    expect->available = false;
    s_test_only (cmd, expect);
    cmd = s_test_parse (bus_json_availability_cmd, "{\"available\": true}",
                        &expect);
    expect->type = BUS_CMD_AVAILABILITY;
    s_test_only (cmd, expect);

    cmd = s_test_parse (bus_json_cart_place_cmd, "{}", &expect);
    expect->type = BUS_CMD_CART_PLACE;
    bus_strlcpy (expect->note, "", sizeof expect->note);
    expect->version = 0;
    s_test_only (cmd, expect);
    cmd = s_test_parse (bus_json_cart_place_cmd,
                        "{\"note\": \"all at once\", "
                        "\"version\": 12}",
                        &expect);
    expect->type = BUS_CMD_CART_PLACE;
    bus_strlcpy (expect->note, "all at once", sizeof expect->note);
    expect->version = 12;
    s_test_only (cmd, expect);
}

typedef struct {
    s_parse_fn *parse;
    const char *body;
    int rc;
    const char *field;
    const char *message; /* exact, or NULL for any */
} s_bad_request_t;

#define S_QTY_RULE "must be an integer from 0 to 99"
#define S_STATUS_RULE                                     \
    "must be one of placed, accepted, preparing, ready, " \
    "served, cancelled"
#define S_VERSION_MSG "must be an integer from 1 to 4294967295"

static const s_bad_request_t s_bad_requests[] = {
    //  Line bodies: the paths have no "items[i]." in front
    { bus_json_line_cmd, "[]", BUS_ERR_MALFORMED, "",
      "body must be a JSON object" },
    { bus_json_line_cmd, "{\"item_id\": \"burger\"", BUS_ERR_MALFORMED, "",
      NULL },
    { bus_json_line_cmd, "{\"item_id\": \"burger\", \"quantity\": 0}",
      BUS_ERR_INVALID, "quantity", "must be an integer from 1 to 99" },
    { bus_json_line_cmd, "{\"quantity\": 1}", BUS_ERR_INVALID, "item_id",
      NULL },
    { bus_json_line_cmd,
      "{\"item_id\": \"burger\", \"quantity\": 1, "
      "\"note\": 3}",
      BUS_ERR_INVALID, "note", NULL },
    { bus_json_line_cmd, "{\"item_id\": \"burger\", \"qty\": 1}",
      BUS_ERR_INVALID, "qty", "unknown field" },
    { bus_json_line_cmd,
      "{\"item_id\": \"burger\", \"quantity\": 1, "
      "\"table\": \"T1\"}",
      BUS_ERR_INVALID, "table", "unknown field" },
    { bus_json_line_cmd,
      "{\"item_id\": \"burger\", \"quantity\": 1, "
      "\"modifiers\": {}}",
      BUS_ERR_INVALID, "modifiers", "must be an array of at most 6 modifiers" },
    { bus_json_line_cmd,
      "{\"item_id\": \"burger\", \"quantity\": 1, "
      "\"modifiers\": [\"cheese\", \"\"]}",
      BUS_ERR_INVALID, "modifiers[1]", NULL },
    { bus_json_line_cmd,
      "{\"item_id\": \"burger\", \"quantity\": 1, "
      "\"modifiers\": [\"cheese\", \"cheese\"]}",
      BUS_ERR_INVALID, "modifiers[1]", "duplicate modifier id 'cheese'" },
    //  Status bodies
    { bus_json_status_cmd, "\"ready\"", BUS_ERR_MALFORMED, "", NULL },
    { bus_json_status_cmd, "{}", BUS_ERR_INVALID, "status", S_STATUS_RULE },
    { bus_json_status_cmd, "{\"status\": \"done\"}", BUS_ERR_INVALID, "status",
      S_STATUS_RULE },
    { bus_json_status_cmd, "{\"status\": \"Ready\"}", BUS_ERR_INVALID, "status",
      NULL },
    { bus_json_status_cmd, "{\"status\": 4}", BUS_ERR_INVALID, "status", NULL },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"version\": 0}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"version\": -1}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"version\": 2.0}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"version\": \"2\"}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"version\": null}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"version\": 4294967296}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_status_cmd, "{\"status\": \"ready\", \"order_id\": 3}",
      BUS_ERR_INVALID, "order_id", "unknown field" },
    //  Quantity bodies: 0 is allowed here (it removes the line)
    { bus_json_qty_cmd, "7", BUS_ERR_MALFORMED, "", NULL },
    { bus_json_qty_cmd, "{}", BUS_ERR_INVALID, "quantity", S_QTY_RULE },
    { bus_json_qty_cmd, "{\"quantity\": 100}", BUS_ERR_INVALID, "quantity",
      S_QTY_RULE },
    { bus_json_qty_cmd, "{\"quantity\": -1}", BUS_ERR_INVALID, "quantity",
      S_QTY_RULE },
    { bus_json_qty_cmd, "{\"quantity\": 1.0}", BUS_ERR_INVALID, "quantity",
      S_QTY_RULE },
    { bus_json_qty_cmd, "{\"quantity\": \"1\"}", BUS_ERR_INVALID, "quantity",
      S_QTY_RULE },
    { bus_json_qty_cmd, "{\"quantity\": 1, \"line_id\": 2}", BUS_ERR_INVALID,
      "line_id", "unknown field" },
    //  Availability bodies
    { bus_json_availability_cmd, "false", BUS_ERR_MALFORMED, "", NULL },
    { bus_json_availability_cmd, "{}", BUS_ERR_INVALID, "available",
      "must be true or false" },
    { bus_json_availability_cmd, "{\"available\": 0}", BUS_ERR_INVALID,
      "available", "must be true or false" },
    { bus_json_availability_cmd, "{\"available\": \"false\"}", BUS_ERR_INVALID,
      "available", "must be true or false" },
    { bus_json_availability_cmd, "{\"available\": null}", BUS_ERR_INVALID,
      "available", "must be true or false" },
    { bus_json_availability_cmd, "{\"available\": true, \"item_id\": \"x\"}",
      BUS_ERR_INVALID, "item_id", "unknown field" },
    //  Cart order bodies
    { bus_json_cart_place_cmd, "[]", BUS_ERR_MALFORMED, "", NULL },
    { bus_json_cart_place_cmd, "{\"note\": \"a\\u0001\"}", BUS_ERR_INVALID,
      "note", NULL },
    { bus_json_cart_place_cmd, "{\"note\": \"ok\", \"version\": 0}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_cart_place_cmd, "{\"version\": 1, \"table\": \"T1\"}",
      BUS_ERR_INVALID, "table", "unknown field" },
    { bus_json_cart_place_cmd, "{\"version\": 1, \"version\": 2}",
      BUS_ERR_MALFORMED, "", NULL },
    //  Line-state bodies (issue 17)
    { bus_json_bump_cmd, "[]", BUS_ERR_MALFORMED, "", NULL },
    { bus_json_bump_cmd, "{\"version\": 0}", BUS_ERR_INVALID, "version",
      S_VERSION_MSG },
    { bus_json_bump_cmd, "{\"reason\": \"x\"}", BUS_ERR_INVALID, "reason",
      "unknown field" },
    { bus_json_unbump_cmd, "{\"to\": \"done\"}", BUS_ERR_INVALID, "to", NULL },
    { bus_json_unbump_cmd, "{\"to\": \"voided\"}", BUS_ERR_INVALID, "to",
      NULL },
    { bus_json_unbump_cmd, "{\"to\": 2}", BUS_ERR_INVALID, "to", NULL },
    { bus_json_void_cmd, "{}", BUS_ERR_INVALID, "reason", BUS_RULE_REASON },
    { bus_json_void_cmd, "{\"reason\": \"\"}", BUS_ERR_INVALID, "reason",
      BUS_RULE_REASON },
    { bus_json_void_cmd, "{\"reason\": \"a\\u0007\"}", BUS_ERR_INVALID,
      "reason", BUS_RULE_REASON },
    { bus_json_void_cmd,
      "{\"reason\": \"1234567890123456789012345678901234567890123456789012"
      "345678901234567890123456789012345678901234567890123456789012345678901"
      "\"}",
      BUS_ERR_INVALID, "reason", BUS_RULE_REASON },
    { bus_json_void_cmd, "{\"reason\": \"x\", \"version\": -1}",
      BUS_ERR_INVALID, "version", S_VERSION_MSG },
    { bus_json_void_cmd, "{\"reason\": \"x\", \"to\": \"new\"}",
      BUS_ERR_INVALID, "to", "unknown field" },
};

static void
s_test_requests_invalid (bool verbose)
{
    bus_cmd_t *cmd = malloc (sizeof *cmd);
    bus_cmd_t *before = malloc (sizeof *before);
    assert (cmd && before);
    for (size_t i = 0; i < sizeof s_bad_requests / sizeof s_bad_requests[0];
         i++) {
        const s_bad_request_t *bad = &s_bad_requests[i];
        s_test_sentinel_cmd (cmd);
        memcpy (before, cmd, sizeof *cmd);
        bus_json_error_t error;
        int rc = bad->parse (bad->body, strlen (bad->body), cmd, &error);
        if (verbose)
            printf ("   %s -> %s: %s\n", bad->body, error.field, error.message);
        assert (rc == bad->rc);
        assert (streq (error.field, bad->field));
        assert (bad->message ? streq (error.message, bad->message)
                             : strlen (error.message) > 0);
        //  A rejected body is not a command of any type
        assert (cmd->type == before->type);
        assert (cmd->line_count == before->line_count);
    }
    free (cmd);
    free (before);
}

static void
s_test_error_body (void)
{
    json_t *json =
        bus_json_error ("invalid_field", "must be an integer from 1 to 99",
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
    assert (streq (text,
                   "{\"error\":{\"code\":\"not_found\",\"message\":\"caf\"}}"));
    free (text);
    json_decref (json);
    //  ... and one holding bytes that are not UTF-8, as jansson's error
    //  texts quote a body that is not (found by fuzz_json)
    json = bus_json_error ("malformed", "near '\xcc\x9c\xa3x' \xff!", "a\xc3");
    text = bus_json_dump (json);
    assert (streq (text, "{\"error\":{\"code\":\"malformed\",\"message\":"
                         "\"near '\xcc\x9c?x' ?!\",\"field\":\"a\"}}"));
    free (text);
    json_decref (json);
    assert (bus_json_dump (NULL) == NULL);
}

//  Depth is counted outside strings only, escapes included
static void
s_test_depth (void)
{
    char deep[200];
    memset (deep, '[', 40);
    assert (bus_json_depth_ok (deep, 32, 32));
    assert (!bus_json_depth_ok (deep, 33, 32));
    const char *quoted = "{\"a\":\"[[[[[[\\\"[[[[\"}";
    assert (bus_json_depth_ok (quoted, strlen (quoted), 1));
    const char *nested = "{\"a\":[{\"b\":[]}]}";
    assert (bus_json_depth_ok (nested, strlen (nested), 4));
    assert (!bus_json_depth_ok (nested, strlen (nested), 3));
    bus_cmd_t *cmd = calloc (1, sizeof *cmd);
    bus_json_error_t error;
    memset (deep, '{', 100);
    assert (bus_json_place_cmd (deep, 100, cmd, &error) == BUS_ERR_MALFORMED);
    assert (strstr (error.message, "nested deeper"));
    free (cmd);
}

void
bus_json_test (bool verbose)
{
    s_test_depth ();
    if (verbose)
        printf (" * bus_json:\n");
    s_test_order (verbose);
    s_test_order_write ();
    s_test_cart (verbose);
    s_test_event (verbose);
    s_test_place_valid ();
    s_test_place_invalid (verbose);
    s_test_place_limits ();
    s_test_line_valid ();
    s_test_status_valid ();
    s_test_line_state_valid ();
    s_test_small_valid ();
    s_test_requests_invalid (verbose);
    s_test_error_body ();
    if (verbose)
        printf ("OK\n");
}
