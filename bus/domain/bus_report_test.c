/*  bus_report_test.c — selftest of the summary report and the
    CSV export (bus_report.h), kept apart from bus_report.c so the module
    reads as what it does: a fixture of orders and its expected report,
    ties, percentiles, CSV rows and times.  */

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_report.h"
#include "bus_report_private.h"

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

#define S_BASE ((int64_t) 1767225600000)   //  2026-01-01T00:00:00.000Z
#define S_MIN  ((int64_t) 60000)

typedef struct {
    const char *item_id, *name;
    uint32_t qty;
    int64_t unit_cents;
} s_test_line_t;

typedef struct {
    uint64_t id;
    const char *table;
    bus_status_t status;
    int64_t created_ms;
    int64_t ticket_ms;   //  ready - placed; 0: never got ready
    int64_t tax_cents;
    s_test_line_t lines[2];
} s_test_order_t;

//  The report's range is 10:00 to 13:00 on S_BASE's day; the first seven
//  orders are in it, in three hours and three tables; order 4 was
//  cancelled; 3 and 7 never got ready; fries were renamed (order 5 is the
//  newest to have them); burger and espresso tie on quantity.
static const s_test_order_t s_fixture[] = {
    { 1,
      "T1",
      BUS_STATUS_SERVED,
      S_BASE + 600 * S_MIN + 5 * S_MIN,
      10 * S_MIN,
      337,
      { { "burger", "Burger", 2, 1650 }, { "fries", "Chips", 1, 550 } } },
    { 2,
      "T2",
      BUS_STATUS_READY,
      S_BASE + 600 * S_MIN + 20 * S_MIN,
      5 * S_MIN,
      206,
      { { "burger", "Burger", 1, 1650 }, { "cola", "Cola", 2, 350 } } },
    { 3,
      "T1",
      BUS_STATUS_PREPARING,
      S_BASE + 660 * S_MIN,
      0,
      144,
      { { "fries", "Fries", 3, 550 } } },
    { 4,
      "T3",
      BUS_STATUS_CANCELLED,
      S_BASE + 660 * S_MIN + 30 * S_MIN,
      0,
      722,
      { { "burger", "Burger", 5, 1650 } } },
    { 5,
      "T3",
      BUS_STATUS_SERVED,
      S_BASE + 780 * S_MIN - 1,
      20 * S_MIN,
      96,
      { { "cola", "Cola", 1, 350 }, { "fries", "French fries", 1, 750 } } },
    { 6,
      "T2",
      BUS_STATUS_READY,
      S_BASE + 720 * S_MIN + 10 * S_MIN,
      15 * S_MIN,
      123,
      { { "cola", "Cola", 4, 350 } } },
    { 7,
      "T1",
      BUS_STATUS_PLACED,
      S_BASE + 720 * S_MIN + 15 * S_MIN,
      0,
      249,
      { { "burger", "Burger", 1, 1650 }, { "espresso", "Espresso", 4, 300 } } },
    //  outside: created at the range's end, and just before its start
    { 8,
      "T9",
      BUS_STATUS_SERVED,
      S_BASE + 780 * S_MIN,
      S_MIN,
      10,
      { { "cola", "Cola", 1, 350 } } },
    { 9,
      "T9",
      BUS_STATUS_SERVED,
      S_BASE + 600 * S_MIN - 1,
      S_MIN,
      10,
      { { "cola", "Cola", 1, 350 } } },
};

#define S_FIXTURE (sizeof s_fixture / sizeof s_fixture[0])

//  Worked out by hand from s_fixture (e.g. revenue: 4187 + 2556 + 1794 +
//  1196 + 1523 + 3099; 10:00 holds orders 1 and 2: 4187 + 2556).
static const char *s_expected =
    "{\"from_ms\": 1767261600000, \"to_ms\": 1767272400000,"
    " \"orders\": 6, \"cancelled\": 1, \"revenue_cents\": 14355,"
    " \"subtotal_cents\": 13200, \"tax_cents\": 1155,"
    " \"per_hour\": ["
    "  {\"hour_ms\": 1767261600000, \"orders\": 2, \"revenue_cents\": 6743},"
    "  {\"hour_ms\": 1767265200000, \"orders\": 1, \"revenue_cents\": 1794},"
    "  {\"hour_ms\": 1767268800000, \"orders\": 3, \"revenue_cents\": 5818}],"
    " \"top_items\": ["
    "  {\"item_id\": \"cola\", \"name\": \"Cola\", \"quantity\": 7,"
    "   \"revenue_cents\": 2450},"
    "  {\"item_id\": \"fries\", \"name\": \"French fries\", \"quantity\": 5,"
    "   \"revenue_cents\": 2950},"
    "  {\"item_id\": \"burger\", \"name\": \"Burger\", \"quantity\": 4,"
    "   \"revenue_cents\": 6600},"
    "  {\"item_id\": \"espresso\", \"name\": \"Espresso\", \"quantity\": 4,"
    "   \"revenue_cents\": 1200}],"
    " \"by_table\": ["
    "  {\"table\": \"T1\", \"orders\": 3, \"revenue_cents\": 9080},"
    "  {\"table\": \"T2\", \"orders\": 2, \"revenue_cents\": 4079},"
    "  {\"table\": \"T3\", \"orders\": 1, \"revenue_cents\": 1196}],"
    " \"ticket_ms\": {\"count\": 4, \"median\": 600000, \"p90\": 1200000}}";

static void
s_test_order (const s_test_order_t *spec, bus_order_t *order)
{
    memset (order, 0, sizeof *order);
    order->id = spec->id;
    order->version = 1;
    order->status = spec->status;
    strcpy (order->table, spec->table);
    snprintf (order->key, sizeof order->key, "key-%" PRIu64, spec->id);
    strcpy (order->origin, "gw");
    order->created_ms = order->updated_ms = spec->created_ms;
    order->status_ms[BUS_STATUS_PLACED] = spec->created_ms;
    if (spec->ticket_ms)
        order->status_ms[BUS_STATUS_READY] = spec->created_ms + spec->ticket_ms;
    for (uint32_t i = 0; i < 2 && spec->lines[i].item_id; i++) {
        bus_line_t *line = &order->lines[order->line_count++];
        line->line_id = i + 1;
        strcpy (line->item_id, spec->lines[i].item_id);
        strcpy (line->name, spec->lines[i].name);
        line->qty = spec->lines[i].qty;
        line->unit_cents = spec->lines[i].unit_cents;
        order->subtotal_cents += line->qty * line->unit_cents;
    }
    order->tax_cents = spec->tax_cents;
    order->total_cents = order->subtotal_cents + order->tax_cents;
}

static void
s_test_equal (bus_report_t *report, const char *expected, bool verbose)
{
    json_t *json = bus_report_json (report);
    json_t *want = json_loads (expected, 0, NULL);
    assert (json && want);
    if (verbose || !json_equal (json, want)) {
        char *text = json_dumps (json, JSON_INDENT (1));
        printf ("%s\n", text);
        free (text);
    }
    assert (json_equal (json, want));
    json_decref (json);
    json_decref (want);
}

//  Fed newest first, as a list walk does, then the rest: the result may
//  not depend on the order orders come in.
static void
s_test_fixture (bool verbose)
{
    static const size_t feed[] = { 6, 4, 2, 0, 8, 7, 5, 3, 1 };
    bus_order_t *order = malloc (sizeof *order);
    bus_report_t *report =
        bus_report_new (S_BASE + 600 * S_MIN, S_BASE + 780 * S_MIN);
    assert (order && report);
    for (size_t i = 0; i < S_FIXTURE; i++) {
        s_test_order (&s_fixture[feed[i]], order);
        bus_report_add (report, order);
    }
    s_test_equal (report, s_expected, verbose);
    //  json is repeatable: nothing is consumed
    s_test_equal (report, s_expected, false);
    bus_report_destroy (&report);
    bus_report_destroy (&report);
    free (order);
}

static void
s_test_empty (void)
{
    const char *expected =
        "{\"from_ms\": 0, \"to_ms\": 1, \"orders\": 0, \"cancelled\": 0,"
        " \"revenue_cents\": 0, \"subtotal_cents\": 0, \"tax_cents\": 0,"
        " \"per_hour\": [], \"top_items\": [], \"by_table\": [],"
        " \"ticket_ms\": {\"count\": 0, \"median\": null, \"p90\": null}}";
    bus_report_t *report = bus_report_new (0, 1);
    assert (report);
    bus_order_t *order = malloc (sizeof *order);
    assert (order);
    s_test_order (&s_fixture[0], order);   //  outside [0, 1)
    bus_report_add (report, order);
    s_test_equal (report, expected, false);
    bus_report_destroy (&report);
    free (order);
    assert (!bus_report_new (5, 5));
    assert (!bus_report_new (6, 5));
    assert (!bus_report_new (-1, 5));
}

//  Twelve items sold 1, 2, 3, 1, 2, 3, ... : the cut at ten falls inside
//  the ones sold once, ties go by item id; the two tables tie on revenue
//  and go by label.
static void
s_test_ties (void)
{
    bus_report_t *report = bus_report_new (0, S_BASE);
    bus_order_t *order = malloc (sizeof *order);
    assert (report && order);
    char item_id[BUS_ID_MAX];
    for (int i = 11; i >= 0; i--) {
        s_test_order_t spec = { (uint64_t) i + 1,
                                i % 2 ? "A" : "B",
                                BUS_STATUS_PLACED,
                                1000 + i,
                                0,
                                0,
                                { { item_id, "Item", 1 + i % 3, 100 } } };
        snprintf (item_id, sizeof item_id, "item-%02d", i);
        s_test_order (&spec, order);
        bus_report_add (report, order);
    }
    json_t *json = bus_report_json (report);
    assert (json);
    const char *top[] = {
        "item-02", "item-05", "item-08", "item-11", "item-01",
        "item-04", "item-07", "item-10", "item-00", "item-03"
    };
    json_t *items = json_object_get (json, "top_items");
    assert (json_array_size (items) == BUS_REPORT_TOP_ITEMS);
    for (size_t i = 0; i < BUS_REPORT_TOP_ITEMS; i++)
        assert (streq (json_string_value (json_object_get (
                           json_array_get (items, i), "item_id")),
                       top[i]));
    json_t *tables = json_object_get (json, "by_table");
    assert (json_array_size (tables) == 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *table = json_array_get (tables, i);
        assert (streq (json_string_value (json_object_get (table, "table")),
                       i ? "B" : "A"));
        assert (json_integer_value (json_object_get (table, "revenue_cents"))
                == 1200);
    }
    json_decref (json);
    bus_report_destroy (&report);
    free (order);
}

static void
s_test_percentiles (void)
{
    const int64_t values[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    const struct {
        size_t n, p;
        int64_t want;
    } cases[] = {
        { 1, 50, 1 },    { 1, 90, 1 }, { 2, 50, 1 },  { 2, 90, 2 },
        { 7, 50, 4 },    { 7, 90, 7 }, { 10, 50, 5 }, { 10, 90, 9 },
        { 10, 100, 10 }, { 10, 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *value = bus_report_percentile (values, cases[i].n, cases[i].p);
        assert (json_integer_value (value) == cases[i].want);
        json_decref (value);
    }
    json_t *none = bus_report_percentile (values, 0, 50);
    assert (json_is_null (none));
    json_decref (none);
}

//  The fixture stored, then loaded in one read: the same report, the
//  orders outside the range left out by the store's time filter.
static void
s_test_load (void)
{
    char dir[] = "/tmp/bus_report_test.XXXXXX";
    assert (mkdtemp (dir));
    bus_store_t *store = bus_store_new (dir, 0, NULL);
    bus_event_t *event = calloc (1, sizeof *event);
    assert (store && event);
    assert (bus_store_begin (store) == 0);
    for (size_t i = 0; i < S_FIXTURE; i++) {
        memset (event, 0, sizeof *event);
        event->type = BUS_EVENT_ORDER_PLACED;
        s_test_order (&s_fixture[i], &event->order);
        event->ts_ms = event->order.created_ms;
        assert (bus_store_append (store, event, NULL) == 0);
    }
    assert (bus_store_commit (store) == 0);
    bus_report_t *report =
        bus_report_new (S_BASE + 600 * S_MIN, S_BASE + 780 * S_MIN);
    assert (report && bus_report_load (report, store) == 0);
    s_test_equal (report, s_expected, false);
    bus_report_destroy (&report);
    bus_store_destroy (&store);
    free (event);
    zdir_t *tree = zdir_new (dir, NULL);
    assert (tree);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
}

//  The CSV of order, as a new string (caller frees).
static char *
s_test_csv (const bus_order_t *order)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    if (order)
        assert (bus_report_csv_row (out, order) == 0);
    else
        bus_report_csv_header (out);
    assert (fclose (out) == 0);
    return text;
}

static void
s_test_csv_rows (void)
{
    char *text = s_test_csv (NULL);
    assert (streq (text, "order_id,created_utc,table,status,items,"
                         "subtotal_cents,tax_cents,total_cents,placed_ms,"
                         "ready_ms,served_ms,idempotency_key\r\n"));
    free (text);

    bus_order_t *order = malloc (sizeof *order);
    assert (order);
    s_test_order_t spec = { 42,
                            "Patio \"A\", 2",
                            BUS_STATUS_READY,
                            S_BASE + 600 * S_MIN + 123,
                            5 * S_MIN,
                            363,
                            { { "burger", "Burger", 2, 1800 },
                              { "fries", "Fries", 1, 550 } } };
    s_test_order (&spec, order);
    strcpy (order->key, "k,1\"x");
    strcpy (order->lines[0].note, "no onions, \"well done\"");
    order->lines[0].mod_count = 2;
    strcpy (order->lines[0].mods[0].name, "Extra cheese");
    strcpy (order->lines[0].mods[1].name, "Bacon");
    text = s_test_csv (order);
    assert (streq (text,
                   "42,2026-01-01T10:00:00.123Z,\"Patio \"\"A\"\", 2\",ready,"
                   "\"2x Burger [Extra cheese, Bacon] (note: no onions, "
                   "\"\"well done\"\"); 1x Fries\",4150,363,4513,"
                   "1767261600123,1767261900123,,\"k,1\"\"x\"\r\n"));
    free (text);

    //  Issue 17: a line voided on its own is marked, with its reason
    order->lines[1].state = BUS_LINE_VOIDED;
    order->lines[1].state_ms = S_BASE + 601 * S_MIN;
    strcpy (order->lines[1].reason, "86'd");
    text = s_test_csv (order);
    assert (strstr (text, "; VOID: 1x Fries (void: 86'd)\","));
    free (text);
    //  ... and left out of the items sold
    bus_report_t *report =
        bus_report_new (S_BASE + 600 * S_MIN, S_BASE + 780 * S_MIN);
    assert (report);
    order->subtotal_cents = 3600;
    order->total_cents = 3600 + order->tax_cents;
    bus_report_add (report, order);
    json_t *json = bus_report_json (report);
    json_t *items = json_object_get (json, "top_items");
    assert (json_array_size (items) == 1);
    json_t *item = json_array_get (items, 0);
    assert (streq (json_string_value (json_object_get (item, "item_id")),
                   "burger"));
    assert (json_integer_value (json_object_get (item, "revenue_cents"))
            == 3600);
    json_decref (json);
    bus_report_destroy (&report);
    //  the order route's cancel does not mark its lines
    order->status = BUS_STATUS_CANCELLED;
    order->lines[1].state = 0;
    text = s_test_csv (order);
    assert (!strstr (text, "VOID"));
    free (text);
    order->status = BUS_STATUS_READY;

    //  A field that a spreadsheet would run as a formula is defused
    strcpy (order->table, "=HYPERLINK(\"x\")");
    order->line_count = 0;
    strcpy (order->key, "-1");
    text = s_test_csv (order);
    assert (strstr (text, ",\"'=HYPERLINK(\"\"x\"\")\",")
            && strstr (text, ",\"'-1\"\r\n"));
    free (text);

    //  No lines, a served order, line breaks in a field
    s_test_order (&s_fixture[7], order);
    order->line_count = 0;
    order->status_ms[BUS_STATUS_SERVED] = 1767272520000;
    strcpy (order->table, "T\r\n9");
    text = s_test_csv (order);
    assert (streq (text, "8,2026-01-01T13:00:00.000Z,\"T\r\n9\",served,,350,10,"
                         "360,1767272400000,1767272460000,1767272520000,"
                         "key-8\r\n"));
    free (text);
    free (order);
}

static void
s_test_times (void)
{
    const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        { "2026-01-01", S_BASE },
        { "2026-01-01T10:00Z", S_BASE + 600 * S_MIN },
        { "2026-01-01T10:00:59Z", S_BASE + 600 * S_MIN + 59000 },
        { "2026-01-01T10:00:59.120Z", S_BASE + 600 * S_MIN + 59120 },
        { "1767225600000", S_BASE },
        { "0", 0 },
        { "1970-01-01", 0 },
        { "2000-02-29", 951782400000 },
        { "2024-12-31T23:59:59Z", 1735689599000 },
        { "9999-12-31", 253402214400000 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert (bus_report_time_parse (good[i].text, &ms) == 0);
        assert (ms == good[i].ms);
    }
    const char *bad[] = {
        "",
        "2026-1-01",
        "2026-01-01T10:00",
        "2026-01-01T24:00Z",
        "2026-02-29",
        "2100-02-29",
        "1969-12-31",
        "2026-13-01",
        "2026-00-10",
        "2026-01-32",
        "2026-01-01T10:60Z",
        "2026-01-01T10:00:60Z",
        "-5",
        "12a",
        "1234567890123456",
        "2026-01-01Z",
        "2026-01-01 10:00Z",
        "2026-01-01t10:00z",
        "2026-01-01T10:00:00.1Z",
        " 2026-01-01",
        "2026-01-01T10:00+01:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        assert (bus_report_time_parse (bad[i], &ms) == BUS_ERR_INVALID);
        assert (ms == -1);
    }
    assert (bus_report_time_parse (NULL, NULL) == BUS_ERR_INVALID);

    char buf[BUS_REPORT_TIME_MAX];
    assert (
        streq (bus_report_time_format (0, buf), "1970-01-01T00:00:00.000Z"));
    assert (streq (bus_report_time_format (S_BASE + 600 * S_MIN + 59120, buf),
                   "2026-01-01T10:00:59.120Z"));
    assert (
        streq (bus_report_time_format (-1, buf), "1969-12-31T23:59:59.999Z"));
    assert (streq (bus_report_time_format (253402300799999, buf),
                   "9999-12-31T23:59:59.999Z"));
    //  The ends of int64 time: the floor of the first second is below
    //  INT64_MIN ms (it overflowed, which UBSan reports)
    assert (streq (bus_report_time_format (INT64_MIN, buf),
                   "-292275055-05-16T16:47:04.192Z"));
    assert (streq (bus_report_time_format (INT64_MIN + 1, buf),
                   "-292275055-05-16T16:47:04.193Z"));
    assert (streq (bus_report_time_format (INT64_MIN + 808, buf),
                   "-292275055-05-16T16:47:05.000Z"));
    assert (streq (bus_report_time_format (INT64_MAX, buf),
                   "292278994-08-17T07:12:55.807Z"));
    //  What the export writes, --from reads back
    int64_t ms;
    assert (
        bus_report_time_parse (bus_report_time_format (1735689599042, buf), &ms)
            == 0
        && ms == 1735689599042);
}

void
bus_report_test (bool verbose)
{
    if (verbose)
        printf (" * bus_report:\n");
    s_test_fixture (verbose);
    s_test_empty ();
    s_test_ties ();
    s_test_percentiles ();
    s_test_load ();
    s_test_csv_rows ();
    s_test_times ();
}
