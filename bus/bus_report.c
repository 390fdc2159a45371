/*  bus_report.c — the summary report of a time range's orders, the CSV
    export rows, and the times both take and give.

    The report keeps running totals and three hash tables (czmq zhashx,
    keyed by item id, table label and hour) whose entries are plain
    structs it owns; only ticket times are kept one per order, because a
    median needs them all.  Sorting waits for bus_report_json, so feeding
    stays O(lines) per order whatever the range.  */

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_report.h"

#define S_HOUR_MS (3600 * (int64_t) 1000)
#define S_DAY_MS (24 * S_HOUR_MS)

typedef struct {
    int64_t hour_ms;            //  start of the UTC hour
    int64_t orders;
    int64_t revenue_cents;
} s_hour_t;

typedef struct {
    char item_id[BUS_ID_MAX];
    char name[BUS_NAME_MAX];    //  as on the newest order that has it
    int64_t name_ms;            //  created_ms of that order
    int64_t quantity;
    int64_t revenue_cents;      //  sum of qty * unit_cents
} s_item_t;

typedef struct {
    char table[BUS_TABLE_MAX];
    int64_t orders;
    int64_t revenue_cents;
} s_table_t;

struct _bus_report_t {
    int64_t from_ms, to_ms;     //  the range, [from_ms, to_ms)
    int64_t orders;             //  not cancelled
    int64_t cancelled;
    int64_t revenue_cents, subtotal_cents, tax_cents;
    zhashx_t *hours;            //  "<hour_ms>" -> s_hour_t
    zhashx_t *items;            //  item id -> s_item_t
    zhashx_t *tables;           //  table label -> s_table_t
    int64_t *tickets;           //  ready - placed, ms, per order that got ready
    size_t ticket_count;
    size_t ticket_cap;
    bool nomem;                 //  an allocation failed: the figures are off
};

//  --------------------------------------------------------------------------
//  Report: constructor, destructor, feeding

static void
s_entry_free (void **entry_p)
{
    free (*entry_p);
    *entry_p = NULL;
}

static zhashx_t *
s_hash_new (void)
{
    zhashx_t *hash = zhashx_new ();
    if (hash)
        zhashx_set_destructor (hash, s_entry_free);
    return hash;
}

bus_report_t *
bus_report_new (int64_t from_ms, int64_t to_ms)
{
    if (from_ms < 0 || from_ms >= to_ms)
        return NULL;
    bus_report_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->from_ms = from_ms;
    self->to_ms = to_ms;
    self->hours = s_hash_new ();
    self->items = s_hash_new ();
    self->tables = s_hash_new ();
    if (!self->hours || !self->items || !self->tables)
        bus_report_destroy (&self);
    return self;
}

void
bus_report_destroy (bus_report_t **self_p)
{
    assert (self_p);
    bus_report_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->hours);
    zhashx_destroy (&self->items);
    zhashx_destroy (&self->tables);
    free (self->tickets);
    free (self);
    *self_p = NULL;
}

//  The entry under key, a zeroed one added if new; NULL (and the report
//  spoilt) if memory ran out.
static void *
s_entry (bus_report_t *self, zhashx_t *hash, const char *key, size_t size)
{
    void *entry = zhashx_lookup (hash, key);
    if (!entry && (entry = calloc (1, size)) != NULL)
        zhashx_insert (hash, key, entry);
    if (!entry)
        self->nomem = true;
    return entry;
}

//  Floor, not truncation, so an hour never starts after its orders.
static int64_t
s_floor (int64_t ms, int64_t unit)
{
    return ms - ((ms % unit) + unit) % unit;
}

static void
s_add_hour (bus_report_t *self, const bus_order_t *order)
{
    int64_t hour_ms = s_floor (order->created_ms, S_HOUR_MS);
    char key[24];
    snprintf (key, sizeof key, "%" PRId64, hour_ms);
    s_hour_t *hour = s_entry (self, self->hours, key, sizeof *hour);
    if (hour) {
        hour->hour_ms = hour_ms;
        hour->orders++;
        hour->revenue_cents += order->total_cents;
    }
}

static void
s_add_table (bus_report_t *self, const bus_order_t *order)
{
    s_table_t *table = s_entry (self, self->tables, order->table,
                                sizeof *table);
    if (table) {
        strcpy (table->table, order->table);
        table->orders++;
        table->revenue_cents += order->total_cents;
    }
}

//  Menus get renamed: an item is shown under its newest name.
static void
s_add_line (bus_report_t *self, const bus_order_t *order,
            const bus_line_t *line)
{
    s_item_t *item = s_entry (self, self->items, line->item_id, sizeof *item);
    if (!item)
        return;
    //  name_ms starts at 0, before any order of a range
    if (order->created_ms >= item->name_ms) {
        strcpy (item->item_id, line->item_id);
        strcpy (item->name, line->name);
        item->name_ms = order->created_ms;
    }
    item->quantity += line->qty;
    item->revenue_cents += (int64_t) line->qty * line->unit_cents;
}

static void
s_add_ticket (bus_report_t *self, const bus_order_t *order)
{
    int64_t placed = order->status_ms[BUS_STATUS_PLACED];
    int64_t ready = order->status_ms[BUS_STATUS_READY];
    if (!placed || !ready)
        return;
    if (self->ticket_count == self->ticket_cap) {
        size_t cap = self->ticket_cap ? self->ticket_cap * 2 : 64;
        int64_t *tickets = realloc (self->tickets, cap * sizeof *tickets);
        if (!tickets) {
            self->nomem = true;
            return;
        }
        self->tickets = tickets;
        self->ticket_cap = cap;
    }
    self->tickets[self->ticket_count++] = ready - placed;
}

void
bus_report_add (bus_report_t *self, const bus_order_t *order)
{
    assert (self && order);
    if (order->created_ms < self->from_ms || order->created_ms >= self->to_ms)
        return;
    if (order->status == BUS_STATUS_CANCELLED) {
        self->cancelled++;
        return;
    }
    self->orders++;
    self->revenue_cents += order->total_cents;
    self->subtotal_cents += order->subtotal_cents;
    self->tax_cents += order->tax_cents;
    s_add_hour (self, order);
    s_add_table (self, order);
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++)
        s_add_line (self, order, &order->lines[i]);
    s_add_ticket (self, order);
}

//  What bus_report_load's list walk carries to each order.
typedef struct {
    bus_report_t *report;
    bus_order_t *order;         //  decode scratch: too big for the stack
    int rc;
} s_loader_t;

static int
s_load_order (const void *data, size_t size, void *arg)
{
    s_loader_t *loader = (s_loader_t *) arg;
    if (bus_order_decode (data, size, loader->order) != 0) {
        loader->rc = BUS_ERR_STORAGE;
        return -1;
    }
    bus_report_add (loader->report, loader->order);
    return 0;
}

int
bus_report_load (bus_report_t *self, bus_store_t *store)
{
    assert (self && store);
    s_loader_t loader = {self, malloc (sizeof (bus_order_t)), 0};
    if (!loader.order)
        return BUS_ERR_NOMEM;
    //  One list call is one read transaction: every order as of one commit
    bus_store_filter_t filter = {0, NULL, self->from_ms, self->to_ms};
    uint64_t next;
    int rc = bus_store_list (store, &filter, 0, UINT32_MAX, s_load_order,
                             &loader, &next);
    free (loader.order);
    if (rc == 0)
        rc = loader.rc;
    return rc == 0 && self->nomem ? BUS_ERR_NOMEM : rc;
}

//  --------------------------------------------------------------------------
//  Report: JSON

//  The entries of hash in a new array (caller frees) sorted by compare,
//  or NULL if memory ran out.
static void **
s_sorted (zhashx_t *hash, int (*compare) (const void *, const void *))
{
    size_t count = zhashx_size (hash), i = 0;
    void **entries = malloc ((count ? count : 1) * sizeof *entries);
    if (!entries)
        return NULL;
    for (void *entry = zhashx_first (hash); entry; entry = zhashx_next (hash))
        entries[i++] = entry;
    qsort (entries, count, sizeof *entries, compare);
    return entries;
}

static int
s_int64_order (int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int
s_hour_compare (const void *a, const void *b)
{
    const s_hour_t *x = *(s_hour_t *const *) a, *y = *(s_hour_t *const *) b;
    return s_int64_order (x->hour_ms, y->hour_ms);
}

//  Most sold first; equal quantities by item id, so the cut at ten is
//  the same every time.
static int
s_item_compare (const void *a, const void *b)
{
    const s_item_t *x = *(s_item_t *const *) a, *y = *(s_item_t *const *) b;
    int order = s_int64_order (y->quantity, x->quantity);
    return order ? order : strcmp (x->item_id, y->item_id);
}

static int
s_table_compare (const void *a, const void *b)
{
    const s_table_t *x = *(s_table_t *const *) a, *y = *(s_table_t *const *) b;
    int order = s_int64_order (y->revenue_cents, x->revenue_cents);
    return order ? order : strcmp (x->table, y->table);
}

static int
s_ticket_compare (const void *a, const void *b)
{
    return s_int64_order (*(const int64_t *) a, *(const int64_t *) b);
}

//  The entries of hash, sorted, as a new JSON array of what object makes
//  of each, at most limit of them; NULL if memory ran out.
static json_t *
s_json_list (zhashx_t *hash, int (*compare) (const void *, const void *),
             json_t *(*object) (const void *), size_t limit)
{
    void **entries = s_sorted (hash, compare);
    json_t *list = entries ? json_array () : NULL;
    size_t count = zhashx_size (hash);
    for (size_t i = 0; list && i < count && i < limit; i++)
        if (json_array_append_new (list, object (entries[i])) != 0) {
            json_decref (list);
            list = NULL;
        }
    free (entries);
    return list;
}

static json_t *
s_hour_json (const void *entry)
{
    const s_hour_t *hour = entry;
    return json_pack ("{s:I, s:I, s:I}", "hour_ms", (json_int_t) hour->hour_ms,
                      "orders", (json_int_t) hour->orders, "revenue_cents",
                      (json_int_t) hour->revenue_cents);
}

static json_t *
s_item_json (const void *entry)
{
    const s_item_t *item = entry;
    return json_pack ("{s:s, s:s, s:I, s:I}", "item_id", item->item_id,
                      "name", item->name, "quantity",
                      (json_int_t) item->quantity, "revenue_cents",
                      (json_int_t) item->revenue_cents);
}

static json_t *
s_table_json (const void *entry)
{
    const s_table_t *table = entry;
    return json_pack ("{s:s, s:I, s:I}", "table", table->table, "orders",
                      (json_int_t) table->orders, "revenue_cents",
                      (json_int_t) table->revenue_cents);
}

//  Nearest rank: the value at rank ceil(p/100 * n), counting from 1, of
//  the n sorted values; for p = 50 the lower median when n is even.
static json_t *
s_percentile (const int64_t *sorted, size_t n, size_t p)
{
    if (n == 0)
        return json_null ();
    size_t rank = (p * n + 99) / 100;
    return json_integer (sorted[rank - 1]);
}

static json_t *
s_tickets_json (bus_report_t *self)
{
    size_t n = self->ticket_count;
    if (n)      //  tickets is NULL until the first one
        qsort (self->tickets, n, sizeof *self->tickets, s_ticket_compare);
    return json_pack ("{s:I, s:o, s:o}", "count", (json_int_t) n, "median",
                      s_percentile (self->tickets, n, 50), "p90",
                      s_percentile (self->tickets, n, 90));
}

json_t *
bus_report_json (bus_report_t *self)
{
    assert (self);
    if (self->nomem)
        return NULL;
    //  "o" hands each part to the object, or releases it if packing fails
    //  (a NULL part fails the packing)
    return json_pack (
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o}",
        "from_ms", (json_int_t) self->from_ms,
        "to_ms", (json_int_t) self->to_ms,
        "orders", (json_int_t) self->orders,
        "cancelled", (json_int_t) self->cancelled,
        "revenue_cents", (json_int_t) self->revenue_cents,
        "subtotal_cents", (json_int_t) self->subtotal_cents,
        "tax_cents", (json_int_t) self->tax_cents,
        "per_hour", s_json_list (self->hours, s_hour_compare, s_hour_json,
                                 SIZE_MAX),
        "top_items", s_json_list (self->items, s_item_compare, s_item_json,
                                  BUS_REPORT_TOP_ITEMS),
        "by_table", s_json_list (self->tables, s_table_compare, s_table_json,
                                 SIZE_MAX),
        "ticket_ms", s_tickets_json (self));
}

//  --------------------------------------------------------------------------
//  CSV export

//  RFC 4180: quoted only when it must be, quotes inside doubled.
static void
s_csv_field (FILE *out, const char *text)
{
    //  A table label or a free-text dish starting like a formula would run
    //  as one in the manager's spreadsheet: quote it, with a leading '
    bool formula = strchr ("=+-@\t\r", text[0]) && text[0];
    if (!formula && !strpbrk (text, ",\"\r\n")) {
        fputs (text, out);
        return;
    }
    fputc ('"', out);
    if (formula)
        fputc ('\'', out);
    for (const char *c = text; *c; c++) {
        if (*c == '"')
            fputc ('"', out);
        fputc (*c, out);
    }
    fputc ('"', out);
}

//  A status time, empty when the order never reached that status.
static void
s_csv_ms (FILE *out, int64_t ms)
{
    if (ms)
        fprintf (out, "%" PRId64, ms);
}

//  "2x Burger [Extra cheese, Bacon] (note: no onions); 1x Fries" as a new
//  string (caller frees), or NULL if memory ran out.
static char *
s_items_text (const bus_order_t *order)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    if (!stream)
        return NULL;
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++) {
        const bus_line_t *line = &order->lines[i];
        fprintf (stream, "%s%" PRIu32 "x %s", i ? "; " : "", line->qty,
                 line->name);
        for (uint32_t m = 0; m < line->mod_count && m < BUS_MODS_MAX; m++)
            fprintf (stream, "%s%s", m ? ", " : " [", line->mods[m].name);
        if (line->mod_count)
            fputc (']', stream);
        if (*line->note)
            fprintf (stream, " (note: %s)", line->note);
    }
    if (fclose (stream) != 0) {
        free (text);
        return NULL;
    }
    return text;
}

void
bus_report_csv_header (FILE *out)
{
    fputs (BUS_REPORT_CSV_HEADER "\r\n", out);
}

int
bus_report_csv_row (FILE *out, const bus_order_t *order)
{
    assert (out && order);
    char *items = s_items_text (order);
    if (!items)
        return BUS_ERR_NOMEM;
    const char *status = bus_status_name (order->status);
    char created[BUS_REPORT_TIME_MAX];
    fprintf (out, "%" PRIu64 ",%s,", order->id,
             bus_report_time_format (order->created_ms, created));
    s_csv_field (out, order->table);
    fprintf (out, ",%s,", status ? status : "");
    s_csv_field (out, items);
    fprintf (out, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",",
             order->subtotal_cents, order->tax_cents, order->total_cents);
    s_csv_ms (out, order->status_ms[BUS_STATUS_PLACED]);
    fputc (',', out);
    s_csv_ms (out, order->status_ms[BUS_STATUS_READY]);
    fputc (',', out);
    s_csv_ms (out, order->status_ms[BUS_STATUS_SERVED]);
    fputc (',', out);
    s_csv_field (out, order->key);
    fputs ("\r\n", out);
    free (items);
    return 0;
}

//  --------------------------------------------------------------------------
//  Times

//  Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
//  days_from_civil), so parsing needs neither timegm nor the time zone.
static int64_t
s_days_from_civil (int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5
                          + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4
                         - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static int
s_days_in_month (int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

//  True if text has exactly the shape of pattern, where 'd' stands for a
//  digit and any other character for itself.
static bool
s_shaped (const char *text, const char *pattern)
{
    for (; *pattern; pattern++, text++)
        if (*pattern == 'd' ? !isdigit ((unsigned char) *text)
                            : *text != *pattern)
            return false;
    return *text == '\0';
}

static int
s_digits (const char *text, int width)
{
    int value = 0;
    while (width--)
        value = value * 10 + *text++ - '0';
    return value;
}

static int
s_parse_iso (const char *text, int64_t *ms)
{
    bool date = s_shaped (text, "dddd-dd-dd");
    bool minutes = s_shaped (text, "dddd-dd-ddTdd:ddZ");
    bool seconds = s_shaped (text, "dddd-dd-ddTdd:dd:ddZ");
    bool millis = s_shaped (text, "dddd-dd-ddTdd:dd:dd.dddZ");
    if (!date && !minutes && !seconds && !millis)
        return BUS_ERR_INVALID;
    int year = s_digits (text, 4), month = s_digits (text + 5, 2);
    int day = s_digits (text + 8, 2);
    int hour = date ? 0 : s_digits (text + 11, 2);
    int minute = date ? 0 : s_digits (text + 14, 2);
    int second = seconds || millis ? s_digits (text + 17, 2) : 0;
    int milli = millis ? s_digits (text + 20, 3) : 0;
    if (year < 1970 || month < 1 || month > 12 || day < 1
        || day > s_days_in_month (year, month) || hour > 23 || minute > 59
        || second > 59)
        return BUS_ERR_INVALID;
    *ms = s_days_from_civil (year, month, day) * S_DAY_MS
          + ((int64_t) hour * 3600 + minute * 60 + second) * 1000 + milli;
    return 0;
}

int
bus_report_time_parse (const char *text, int64_t *ms)
{
    if (!text || !*text)
        return BUS_ERR_INVALID;
    size_t digits = strspn (text, "0123456789");
    if (text[digits] != '\0')
        return s_parse_iso (text, ms);
    //  15 digits reach past the year 9999 and stay far from overflow
    if (digits > 15)
        return BUS_ERR_INVALID;
    *ms = strtoll (text, NULL, 10);
    return 0;
}

char *
bus_report_time_format (int64_t ms, char buf[BUS_REPORT_TIME_MAX])
{
    time_t secs = (time_t) (s_floor (ms, 1000) / 1000);
    //  Cannot fail: any int64 of ms is a year that fits tm_year
    struct tm tm = {0};
    gmtime_r (&secs, &tm);
    size_t size = strftime (buf, BUS_REPORT_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf + size, BUS_REPORT_TIME_MAX - size, ".%03uZ",
              (unsigned) (ms - s_floor (ms, 1000)) % 1000);
    return buf;
}

//  --------------------------------------------------------------------------
//  Selftest

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

#define S_BASE ((int64_t) 1767225600000)    //  2026-01-01T00:00:00.000Z
#define S_MIN ((int64_t) 60000)

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
    int64_t ticket_ms;          //  ready - placed; 0: never got ready
    int64_t tax_cents;
    s_test_line_t lines[2];
} s_test_order_t;

//  The report's range is 10:00 to 13:00 on S_BASE's day; the first seven
//  orders are in it, in three hours and three tables; order 4 was
//  cancelled; 3 and 7 never got ready; fries were renamed (order 5 is the
//  newest to have them); burger and espresso tie on quantity.
static const s_test_order_t s_fixture[] = {
    {1, "T1", BUS_STATUS_SERVED, S_BASE + 600 * S_MIN + 5 * S_MIN,
     10 * S_MIN, 337, {{"burger", "Burger", 2, 1650}, {"fries", "Chips", 1, 550}}},
    {2, "T2", BUS_STATUS_READY, S_BASE + 600 * S_MIN + 20 * S_MIN,
     5 * S_MIN, 206, {{"burger", "Burger", 1, 1650}, {"cola", "Cola", 2, 350}}},
    {3, "T1", BUS_STATUS_PREPARING, S_BASE + 660 * S_MIN, 0, 144,
     {{"fries", "Fries", 3, 550}}},
    {4, "T3", BUS_STATUS_CANCELLED, S_BASE + 660 * S_MIN + 30 * S_MIN, 0,
     722, {{"burger", "Burger", 5, 1650}}},
    {5, "T3", BUS_STATUS_SERVED, S_BASE + 780 * S_MIN - 1, 20 * S_MIN, 96,
     {{"cola", "Cola", 1, 350}, {"fries", "French fries", 1, 750}}},
    {6, "T2", BUS_STATUS_READY, S_BASE + 720 * S_MIN + 10 * S_MIN,
     15 * S_MIN, 123, {{"cola", "Cola", 4, 350}}},
    {7, "T1", BUS_STATUS_PLACED, S_BASE + 720 * S_MIN + 15 * S_MIN, 0, 249,
     {{"burger", "Burger", 1, 1650}, {"espresso", "Espresso", 4, 300}}},
    //  outside: created at the range's end, and just before its start
    {8, "T9", BUS_STATUS_SERVED, S_BASE + 780 * S_MIN, S_MIN, 10,
     {{"cola", "Cola", 1, 350}}},
    {9, "T9", BUS_STATUS_SERVED, S_BASE + 600 * S_MIN - 1, S_MIN, 10,
     {{"cola", "Cola", 1, 350}}},
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
    static const size_t feed[] = {6, 4, 2, 0, 8, 7, 5, 3, 1};
    bus_order_t *order = malloc (sizeof *order);
    bus_report_t *report = bus_report_new (S_BASE + 600 * S_MIN,
                                           S_BASE + 780 * S_MIN);
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
    s_test_order (&s_fixture[0], order);     //  outside [0, 1)
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
        s_test_order_t spec = {(uint64_t) i + 1, i % 2 ? "A" : "B",
                               BUS_STATUS_PLACED, 1000 + i, 0, 0,
                               {{item_id, "Item", 1 + i % 3, 100}}};
        snprintf (item_id, sizeof item_id, "item-%02d", i);
        s_test_order (&spec, order);
        bus_report_add (report, order);
    }
    json_t *json = bus_report_json (report);
    assert (json);
    const char *top[] = {"item-02", "item-05", "item-08", "item-11",
                         "item-01", "item-04", "item-07", "item-10",
                         "item-00", "item-03"};
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
    const int64_t values[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const struct { size_t n, p; int64_t want; } cases[] = {
        {1, 50, 1}, {1, 90, 1}, {2, 50, 1}, {2, 90, 2}, {7, 50, 4},
        {7, 90, 7}, {10, 50, 5}, {10, 90, 9}, {10, 100, 10}, {10, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *value = s_percentile (values, cases[i].n, cases[i].p);
        assert (json_integer_value (value) == cases[i].want);
        json_decref (value);
    }
    json_t *none = s_percentile (values, 0, 50);
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
    bus_report_t *report = bus_report_new (S_BASE + 600 * S_MIN,
                                           S_BASE + 780 * S_MIN);
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
    s_test_order_t spec = {42, "Patio \"A\", 2", BUS_STATUS_READY,
                           S_BASE + 600 * S_MIN + 123, 5 * S_MIN, 363,
                           {{"burger", "Burger", 2, 1800}, {"fries", "Fries", 1, 550}}};
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
    const struct { const char *text; int64_t ms; } good[] = {
        {"2026-01-01", S_BASE},
        {"2026-01-01T10:00Z", S_BASE + 600 * S_MIN},
        {"2026-01-01T10:00:59Z", S_BASE + 600 * S_MIN + 59000},
        {"2026-01-01T10:00:59.120Z", S_BASE + 600 * S_MIN + 59120},
        {"1767225600000", S_BASE},
        {"0", 0},
        {"1970-01-01", 0},
        {"2000-02-29", 951782400000},
        {"2024-12-31T23:59:59Z", 1735689599000},
        {"9999-12-31", 253402214400000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert (bus_report_time_parse (good[i].text, &ms) == 0);
        assert (ms == good[i].ms);
    }
    const char *bad[] = {
        "", "2026-1-01", "2026-01-01T10:00", "2026-01-01T24:00Z",
        "2026-02-29", "2100-02-29", "1969-12-31", "2026-13-01", "2026-00-10",
        "2026-01-32", "2026-01-01T10:60Z", "2026-01-01T10:00:60Z", "-5",
        "12a", "1234567890123456", "2026-01-01Z", "2026-01-01 10:00Z",
        "2026-01-01t10:00z", "2026-01-01T10:00:00.1Z", " 2026-01-01",
        "2026-01-01T10:00+01:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        assert (bus_report_time_parse (bad[i], &ms) == BUS_ERR_INVALID);
        assert (ms == -1);
    }
    assert (bus_report_time_parse (NULL, NULL) == BUS_ERR_INVALID);

    char buf[BUS_REPORT_TIME_MAX];
    assert (streq (bus_report_time_format (0, buf), "1970-01-01T00:00:00.000Z"));
    assert (streq (bus_report_time_format (S_BASE + 600 * S_MIN + 59120, buf),
                   "2026-01-01T10:00:59.120Z"));
    assert (streq (bus_report_time_format (-1, buf), "1969-12-31T23:59:59.999Z"));
    assert (streq (bus_report_time_format (253402300799999, buf),
                   "9999-12-31T23:59:59.999Z"));
    //  What the export writes, --from reads back
    int64_t ms;
    assert (bus_report_time_parse (bus_report_time_format (1735689599042, buf),
                                   &ms) == 0 && ms == 1735689599042);
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
