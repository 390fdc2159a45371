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
#include "bus_report_private.h"

#define S_HOUR_MS (3600 * (int64_t) 1000)
#define S_DAY_MS  (24 * S_HOUR_MS)

typedef struct {
    int64_t hour_ms;   //  start of the UTC hour
    int64_t orders;
    int64_t revenue_cents;
} s_hour_t;

typedef struct {
    char item_id[BUS_ID_MAX];
    char name[BUS_NAME_MAX];   //  as on the newest order that has it
    int64_t name_ms;           //  created_ms of that order
    int64_t quantity;
    int64_t revenue_cents;   //  sum of qty * unit_cents
} s_item_t;

typedef struct {
    char table[BUS_TABLE_MAX];
    int64_t orders;
    int64_t revenue_cents;
} s_table_t;

struct _bus_report_t {
    int64_t from_ms, to_ms;   //  the range, [from_ms, to_ms)
    int64_t orders;           //  not cancelled
    int64_t cancelled;
    int64_t revenue_cents, subtotal_cents, tax_cents;
    zhashx_t *hours;    //  "<hour_ms>" -> s_hour_t
    zhashx_t *items;    //  item id -> s_item_t
    zhashx_t *tables;   //  table label -> s_table_t
    int64_t *tickets;   //  ready - placed, ms, per order that got ready
    size_t ticket_count;
    size_t ticket_cap;
    bool nomem;   //  an allocation failed: the figures are off
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

//  ms / unit rounded down, not toward zero.  Never overflows (unit > 1).
static int64_t
s_floor_div (int64_t ms, int64_t unit)
{
    return ms / unit - (ms % unit < 0);
}

//  Floor, not truncation, so an hour never starts after its orders.  The
//  quotient is floored, not the remainder taken off ms: that overflowed
//  for times less than a unit above INT64_MIN, whose unit begins before
//  the first time an int64 holds; such a unit starts at INT64_MIN.
//  (Stored times are the writer's clock, but the export formats whatever
//  a store holds.)
static int64_t
s_floor (int64_t ms, int64_t unit)
{
    int64_t floor;
    if (__builtin_mul_overflow (s_floor_div (ms, unit), unit, &floor))
        return INT64_MIN;
    return floor;
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
    s_table_t *table =
        s_entry (self, self->tables, order->table, sizeof *table);
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
    //  a voided line was not sold: it is off the bill (issue 17)
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++)
        if (bus_line_state_in (&order->lines[i], order->status)
            != BUS_LINE_VOIDED)
            s_add_line (self, order, &order->lines[i]);
    s_add_ticket (self, order);
}

//  What bus_report_load's list walk carries to each order.
typedef struct {
    bus_report_t *report;
    bus_order_t *order;   //  decode scratch: too big for the stack
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
    s_loader_t loader = { self, malloc (sizeof (bus_order_t)), 0 };
    if (!loader.order)
        return BUS_ERR_NOMEM;
    //  One list call is one read transaction: every order as of one commit
    bus_store_filter_t filter = { 0, NULL, self->from_ms, self->to_ms };
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
    return json_pack ("{s:s, s:s, s:I, s:I}", "item_id", item->item_id, "name",
                      item->name, "quantity", (json_int_t) item->quantity,
                      "revenue_cents", (json_int_t) item->revenue_cents);
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
    if (n)   //  tickets is NULL until the first one
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
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "from_ms",
        (json_int_t) self->from_ms, "to_ms", (json_int_t) self->to_ms, "orders",
        (json_int_t) self->orders, "cancelled", (json_int_t) self->cancelled,
        "revenue_cents", (json_int_t) self->revenue_cents, "subtotal_cents",
        (json_int_t) self->subtotal_cents, "tax_cents",
        (json_int_t) self->tax_cents, "per_hour",
        s_json_list (self->hours, s_hour_compare, s_hour_json, SIZE_MAX),
        "top_items",
        s_json_list (self->items, s_item_compare, s_item_json,
                     BUS_REPORT_TOP_ITEMS),
        "by_table",
        s_json_list (self->tables, s_table_compare, s_table_json, SIZE_MAX),
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
//  string (caller frees), or NULL if memory ran out.  A line voided on its
//  own (issue 17) reads "VOID: 1x Soup (void: spilled)"; the lines of an
//  order the order route cancelled are not marked: its status says so.
static void
s_line_text (FILE *stream, const bus_order_t *order, const bus_line_t *line)
{
    bus_line_state_t state;
    int64_t state_ms;
    const char *reason;
    bus_line_read (line, order, &state, &state_ms, &reason);
    bool voided =
        state == BUS_LINE_VOIDED && strcmp (reason, BUS_REASON_CANCELLED) != 0;
    fprintf (stream, "%s%" PRIu32 "x %s", voided ? "VOID: " : "", line->qty,
             line->name);
    for (uint32_t m = 0; m < line->mod_count && m < BUS_MODS_MAX; m++)
        fprintf (stream, "%s%s", m ? ", " : " [", line->mods[m].name);
    if (line->mod_count)
        fputc (']', stream);
    if (*line->note)
        fprintf (stream, " (note: %s)", line->note);
    if (voided)
        fprintf (stream, " (void: %s)", reason);
}

static char *
s_items_text (const bus_order_t *order)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    if (!stream)
        return NULL;
    for (uint32_t i = 0; i < order->line_count && i < BUS_LINES_MAX; i++) {
        if (i)
            fputs ("; ", stream);
        s_line_text (stream, order, &order->lines[i]);
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
    int64_t day_of_year =
        (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era =
        year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static int
s_days_in_month (int year, int month)
{
    static const int days[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };
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
    time_t secs = (time_t) s_floor_div (ms, 1000);
    //  Cannot fail: any int64 of ms is a year that fits tm_year
    struct tm tm = { 0 };
    gmtime_r (&secs, &tm);
    size_t size = strftime (buf, BUS_REPORT_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf + size, BUS_REPORT_TIME_MAX - size, ".%03uZ",
              (unsigned) ((ms % 1000 + 1000) % 1000));
    return buf;
}

//  --------------------------------------------------------------------------
//  Private hooks (bus_report_private.h)

json_t *
bus_report_percentile (const int64_t *sorted, size_t n, size_t p)
{
    return s_percentile (sorted, n, p);
}
