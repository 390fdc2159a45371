/*  test_export — `orderbus export` and GET /api/v1/report against a
    running `orderbus up`: orders with commas, quotes and modifiers placed
    and moved along through the real HTTP API, then exported while the
    writer keeps running.  The CSV is read back with an RFC 4180 reader of
    its own and every field of every row compared with
    GET /api/v1/orders/{id}; time ranges in both forms select exactly the
    orders created inside them; bad flags and a directory that holds no
    orderbus data fail with the documented exit status and a message
    naming the problem.  The report is worked out here again from the
    orders the API gives and compared whole.  */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK        TK_CHECK
#define S_COLUMNS    12
#define S_ORDERS_MAX 16

static const char *s_header[S_COLUMNS] = {
    "order_id",  "created_utc",    "table",     "status",
    "items",     "subtotal_cents", "tax_cents", "total_cents",
    "placed_ms", "ready_ms",       "served_ms", "idempotency_key"
};

static int s_port;
static char s_data[600];
static char *s_token;   //  manager
static char *s_kitchen;
static int s_requests;

//  What was placed: the key and table sent, the id and created_ms given.
typedef struct {
    const char *key;
    const char *table;
    json_int_t id;
    json_int_t created_ms;
} s_placed_t;

static s_placed_t s_placed[S_ORDERS_MAX];
static size_t s_placed_count;

//  Counts for the closing line
static size_t s_rows_checked, s_fields_checked, s_ranges_checked,
    s_errors_checked, s_reports_checked;

//  --------------------------------------------------------------------------
//  HTTP

static char *
s_mint (const char *role)
{
    char secret[700], *out;
    snprintf (secret, sizeof secret, "%s/secret", s_data);
    int rc =
        tk_run (&out, "token", "--secret-file", secret, "--staff", role, NULL);
    CHECK (rc == 0, "orderbus token: %d %s", rc, out);
    //  stdout and stderr share the output: find the token itself
    char *token = strstr (out, "ob1.");
    CHECK (token, "no token in: %s", out);
    token = strndup (token, strcspn (token, "\n"));
    free (out);
    return token;
}

//  A request with the manager token; a change (a body) carries key, or a
//  fresh one when key is NULL.
static void
s_call (const char *method, const char *path, const char *key, const char *body,
        tk_response_t *resp)
{
    char fresh[32], headers[1024];
    if (!key) {
        snprintf (fresh, sizeof fresh, "export-%d", ++s_requests);
        key = fresh;
    }
    int n = snprintf (headers, sizeof headers, "Authorization: Bearer %s\r\n",
                      s_token);
    if (body)
        snprintf (headers + n, sizeof headers - n,
                  "Content-Type: application/json\r\n"
                  "Idempotency-Key: %s\r\n",
                  key);
    tk_http (s_port, method, path, headers, body, resp);
}

static void
s_place (const char *key, const char *table, const char *body)
{
    CHECK (s_placed_count < S_ORDERS_MAX, "too many orders");
    tk_response_t r;
    s_call ("POST", "/api/v1/orders", key, body, &r);
    CHECK (r.status == 201, "order %s: %d %s", key, r.status, r.body);
    s_placed_t *placed = &s_placed[s_placed_count++];
    placed->key = key;
    placed->table = table;
    placed->id = json_integer_value (json_object_get (r.json, "id"));
    placed->created_ms =
        json_integer_value (json_object_get (r.json, "created_ms"));
    CHECK (placed->id > 0 && placed->created_ms > 0, "id and time: %s", r.body);
    tk_response_free (&r);
}

//  Move order number index (0-based) through each status in turn.
static void
s_move (size_t index, const char *const *statuses)
{
    for (; *statuses; statuses++) {
        char path[64], body[64];
        snprintf (path, sizeof path, "/api/v1/orders/%lld/status",
                  (long long) s_placed[index].id);
        snprintf (body, sizeof body, "{\"status\":\"%s\"}", *statuses);
        tk_response_t r;
        s_call ("POST", path, NULL, body, &r);
        CHECK (r.status == 200, "%s -> %s: %d %s", path, *statuses, r.status,
               r.body);
        tk_response_free (&r);
    }
}

static json_t *
s_get_order (json_int_t id)
{
    char path[64];
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) id);
    tk_response_t r;
    s_call ("GET", path, NULL, NULL, &r);
    CHECK (r.status == 200 && r.json, "GET %s: %d %s", path, r.status, r.body);
    json_t *order = json_incref (r.json);
    tk_response_free (&r);
    return order;
}

//  --------------------------------------------------------------------------
//  An RFC 4180 reader: records end in CRLF, a quoted field may hold
//  commas, CR, LF and doubled quotes.  Returns an array of arrays of
//  strings, or NULL (and *error) if text is not well-formed CSV.

static const char *
s_csv_field (const char *p, json_t *record, const char **error)
{
    char *field = malloc (strlen (p) + 1);
    size_t n = 0;
    if (*p == '"') {
        for (p++;; p++) {
            if (*p == '\0') {
                *error = "unterminated quoted field";
                free (field);
                return NULL;
            }
            if (*p == '"' && p[1] != '"')
                break;
            field[n++] = *p;
            p += *p == '"';   //  a doubled quote is one quote
        }
        p++;
    } else
        for (; *p && *p != ',' && *p != '\r' && *p != '\n'; p++) {
            if (*p == '"') {
                *error = "quote inside an unquoted field";
                free (field);
                return NULL;
            }
            field[n++] = *p;
        }
    field[n] = '\0';
    json_array_append_new (record, json_string (field));
    free (field);
    return p;
}

static json_t *
s_csv_parse (const char *text, const char **error)
{
    json_t *records = json_array ();
    const char *p = text;
    *error = NULL;
    while (*p && !*error) {
        json_t *record = json_array ();
        json_array_append_new (records, record);
        for (;;) {
            p = s_csv_field (p, record, error);
            if (!p || *p != ',')
                break;
            p++;
        }
        if (p && strncmp (p, "\r\n", 2) == 0)
            p += 2;
        else if (!*error)
            *error = "a record does not end in CRLF";
    }
    if (*error) {
        json_decref (records);
        return NULL;
    }
    return records;
}

//  --------------------------------------------------------------------------
//  Running the export

static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    CHECK (file, "cannot open %s", path);
    char *text = calloc (1, 1 << 20);
    size_t n = fread (text, 1, (1 << 20) - 1, file);
    fclose (file);
    text[n] = '\0';
    return text;
}

//  Export the range (from, to: NULL for none) into a file; returns the
//  parsed CSV, its header row checked.
static json_t *
s_export (const char *what, const char *from, const char *to)
{
    char path[700], *out;
    snprintf (path, sizeof path, "%s/export.csv", tk_dir ());
    unlink (path);   //  export never replaces a file without --force
    //  tk_run's arguments end at the first NULL: left-align those given
    const char *range[4] = { NULL };
    size_t n = 0;
    if (from)
        range[n++] = "--from", range[n++] = from;
    if (to)
        range[n++] = "--to", range[n++] = to;
    int rc = tk_run (&out, "export", "--data", s_data, "--output", path,
                     range[0], range[1], range[2], range[3], NULL);
    CHECK (rc == 0 && *out == '\0', "export %s: %d %s", what, rc, out);
    free (out);
    char *text = s_read_file (path);
    const char *error;
    json_t *csv = s_csv_parse (text, &error);
    CHECK (csv, "export %s is not RFC 4180 CSV: %s\n%s", what, error, text);
    free (text);
    json_t *header = json_array_get (csv, 0);
    CHECK (json_array_size (header) == S_COLUMNS, "header has %zu fields",
           json_array_size (header));
    for (size_t i = 0; i < S_COLUMNS; i++)
        CHECK (
            strcmp (json_string_value (json_array_get (header, i)), s_header[i])
                == 0,
            "header field %zu", i);
    return csv;
}

//  The ids of an export's rows, in file order, as "1,2,3".
static void
s_row_ids (json_t *csv, char *ids, size_t cap)
{
    size_t n = 0, i;
    json_t *row;
    ids[0] = '\0';
    json_array_foreach (csv, i, row) if (i > 0) n +=
        snprintf (ids + n, cap - n, "%s%s", i > 1 ? "," : "",
                  json_string_value (json_array_get (row, 0)));
}

//  The ids of the placed orders created in [from_ms, to_ms), 0 = open.
static void
s_expected_ids (json_int_t from_ms, json_int_t to_ms, char *ids, size_t cap)
{
    size_t n = 0;
    ids[0] = '\0';
    for (size_t i = 0; i < s_placed_count; i++) {
        json_int_t ms = s_placed[i].created_ms;
        if (ms >= from_ms && (to_ms == 0 || ms < to_ms))
            n += snprintf (ids + n, cap - n, "%s%lld", n ? "," : "",
                           (long long) s_placed[i].id);
    }
}

//  --------------------------------------------------------------------------
//  What each field must be, from the order's JSON

static void
s_iso (json_int_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf + n, cap - n, ".%03dZ", (int) (ms % 1000));
}

//  "2x Burger [Extra cheese, Bacon] (note: ...); 1x Fries"
static void
s_items_text (json_t *items, char *buf, size_t cap)
{
    size_t n = 0, i, m;
    json_t *line, *mod;
    buf[0] = '\0';
    json_array_foreach (items, i, line)
    {
        n += snprintf (
            buf + n, cap - n, "%s%lldx %s", i ? "; " : "",
            (long long) json_integer_value (json_object_get (line, "quantity")),
            json_string_value (json_object_get (line, "name")));
        json_t *mods = json_object_get (line, "modifiers");
        json_array_foreach (mods, m, mod) n +=
            snprintf (buf + n, cap - n, "%s%s", m ? ", " : " [",
                      json_string_value (json_object_get (mod, "name")));
        if (json_array_size (mods))
            n += snprintf (buf + n, cap - n, "]");
        const char *note = json_string_value (json_object_get (line, "note"));
        if (note && *note)
            n += snprintf (buf + n, cap - n, " (note: %s)", note);
    }
}

static void
s_int_text (json_t *value, char *buf, size_t cap)
{
    if (value)
        snprintf (buf, cap, "%lld", (long long) json_integer_value (value));
    else
        buf[0] = '\0';
}

static void
s_check_field (json_t *row, size_t column, const char *want, json_int_t id)
{
    const char *got = json_string_value (json_array_get (row, column));
    CHECK (got && strcmp (got, want) == 0, "order %lld %s: got [%s], want [%s]",
           (long long) id, s_header[column], got ? got : "(none)", want);
    s_fields_checked++;
}

//  Every field of row against GET /api/v1/orders/{id}, and against what
//  was sent for placed.
static void
s_check_row (json_t *row, const s_placed_t *placed)
{
    CHECK (json_array_size (row) == S_COLUMNS, "order %lld: %zu fields",
           (long long) placed->id, json_array_size (row));
    json_t *order = s_get_order (placed->id);
    json_t *times = json_object_get (order, "status_times");
    char want[S_COLUMNS][4096];
    s_int_text (json_object_get (order, "id"), want[0], sizeof want[0]);
    s_iso (json_integer_value (json_object_get (order, "created_ms")), want[1],
           sizeof want[1]);
    snprintf (want[2], sizeof want[2], "%s",
              json_string_value (json_object_get (order, "table")));
    snprintf (want[3], sizeof want[3], "%s",
              json_string_value (json_object_get (order, "status")));
    s_items_text (json_object_get (order, "items"), want[4], sizeof want[4]);
    s_int_text (json_object_get (order, "subtotal_cents"), want[5],
                sizeof want[5]);
    s_int_text (json_object_get (order, "tax_cents"), want[6], sizeof want[6]);
    s_int_text (json_object_get (order, "total_cents"), want[7],
                sizeof want[7]);
    s_int_text (json_object_get (times, "placed"), want[8], sizeof want[8]);
    s_int_text (json_object_get (times, "ready"), want[9], sizeof want[9]);
    s_int_text (json_object_get (times, "served"), want[10], sizeof want[10]);
    snprintf (want[11], sizeof want[11], "%s",
              json_string_value (json_object_get (order, "idempotency_key")));
    for (size_t column = 0; column < S_COLUMNS; column++)
        s_check_field (row, column, want[column], placed->id);
    //  and what the pad sent, in case the API and the export agree wrongly
    s_check_field (row, 2, placed->table, placed->id);
    s_check_field (row, 11, placed->key, placed->id);
    json_decref (order);
    s_rows_checked++;
}

//  The whole export: one row per order, oldest first, every field right.
static void
s_check_all (void)
{
    json_t *csv = s_export ("all", NULL, NULL);
    CHECK (json_array_size (csv) == s_placed_count + 1,
           "%zu rows for %zu "
           "orders",
           json_array_size (csv) - 1, s_placed_count);
    for (size_t i = 0; i < s_placed_count; i++)
        s_check_row (json_array_get (csv, i + 1), &s_placed[i]);
    //  the same bytes on standard output (nothing else is written there)
    char path[700], *out;
    snprintf (path, sizeof path, "%s/export.csv", tk_dir ());
    char *file = s_read_file (path);
    int rc = tk_run (&out, "export", "--data", s_data, NULL);
    CHECK (rc == 0 && strcmp (out, file) == 0, "stdout export differs: %d\n%s",
           rc, out);
    free (out);
    free (file);
    json_decref (csv);
}

static void
s_check_range (const char *what, const char *from, json_int_t from_ms,
               const char *to, json_int_t to_ms, const char *want_ids)
{
    json_t *csv = s_export (what, from, to);
    char got[512], want[512];
    s_row_ids (csv, got, sizeof got);
    s_expected_ids (from_ms, to_ms, want, sizeof want);
    CHECK (strcmp (got, want) == 0, "%s: rows %s, want %s", what, got, want);
    if (want_ids)
        CHECK (strcmp (got, want_ids) == 0, "%s: rows %s, want %s", what, got,
               want_ids);
    s_ranges_checked++;
    json_decref (csv);
}

static void
s_check_ranges (size_t first_batch)
{
    char from[32], to[32], iso[32], ids[128];
    //  milliseconds: from order 2's creation up to order 5's
    snprintf (from, sizeof from, "%lld", (long long) s_placed[1].created_ms);
    snprintf (to, sizeof to, "%lld", (long long) s_placed[4].created_ms);
    s_check_range ("ms range", from, s_placed[1].created_ms, to,
                   s_placed[4].created_ms, NULL);
    //  the second the first batch ended in is over before the second
    //  batch began: ISO seconds split the two exactly
    json_int_t split = (s_placed[first_batch - 1].created_ms / 1000 + 1) * 1000;
    time_t secs = (time_t) (split / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    strftime (iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    s_expected_ids (0, split, ids, sizeof ids);
    CHECK (strlen (ids) > 0, "first batch before %s", iso);
    char first[128];
    snprintf (first, sizeof first, "%lld", (long long) s_placed[0].id);
    for (size_t i = 1; i < first_batch; i++)
        snprintf (first + strlen (first), sizeof first - strlen (first),
                  ",%lld", (long long) s_placed[i].id);
    s_check_range ("before the split", NULL, 0, iso, split, first);
    s_check_range ("after the split", iso, split, NULL, 0, NULL);
    //  minutes and days: no orders in 2000; everything since 2001
    s_check_range ("in 2000", "2000-01-01", 946684800000, "2001-01-01T00:00Z",
                   978307200000, "");
    s_check_range ("since 2001", "2001-01-01T00:00Z", 978307200000, NULL, 0,
                   NULL);
}

//  --------------------------------------------------------------------------
//  The report, worked out again from the orders the API gives

//  The entry under key in map; fresh (a new reference) is added if none.
static json_t *
s_entry (json_t *map, const char *key, json_t *fresh)
{
    json_t *entry = json_object_get (map, key);
    if (entry) {
        json_decref (fresh);
        return entry;
    }
    json_object_set_new (map, key, fresh);
    return fresh;
}

static void
s_add (json_t *object, const char *key, json_int_t n)
{
    json_int_t was = json_integer_value (json_object_get (object, key));
    json_object_set_new (object, key, json_integer (was + n));
}

static json_int_t
s_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

static int
s_by_hour (const void *a, const void *b)
{
    json_int_t x = s_int (*(json_t *const *) a, "hour_ms");
    json_int_t y = s_int (*(json_t *const *) b, "hour_ms");
    return (x > y) - (x < y);
}

//  Descending number, then ascending label.
static int
s_ranked (json_t *a, json_t *b, const char *number, const char *label)
{
    json_int_t x = s_int (a, number), y = s_int (b, number);
    if (x != y)
        return x > y ? -1 : 1;
    return strcmp (json_string_value (json_object_get (a, label)),
                   json_string_value (json_object_get (b, label)));
}

static int
s_by_quantity (const void *a, const void *b)
{
    return s_ranked (*(json_t *const *) a, *(json_t *const *) b, "quantity",
                     "item_id");
}

static int
s_by_revenue (const void *a, const void *b)
{
    return s_ranked (*(json_t *const *) a, *(json_t *const *) b,
                     "revenue_cents", "table");
}

//  The values of map (which is released), sorted, at most limit of them.
static json_t *
s_sorted (json_t *map, int (*compare) (const void *, const void *),
          size_t limit)
{
    size_t n = json_object_size (map), i = 0;
    json_t **entries = calloc (n + 1, sizeof *entries);
    const char *key;
    json_t *value, *list = json_array ();
    json_object_foreach (map, key, value) entries[i++] = value;
    qsort (entries, n, sizeof *entries, compare);
    for (i = 0; i < n && i < limit; i++)
        json_array_append (list, entries[i]);
    free (entries);
    json_decref (map);
    return list;
}

static int
s_by_value (const void *a, const void *b)
{
    json_int_t x = *(const json_int_t *) a, y = *(const json_int_t *) b;
    return (x > y) - (x < y);
}

//  Nearest rank, as docs/reports.md defines it.
static json_t *
s_rank (const json_int_t *sorted, size_t n, size_t p)
{
    return n ? json_integer (sorted[(p * n + 99) / 100 - 1]) : json_null ();
}

//  Count one order that was not cancelled into the hours, tables and items
static void
s_count (json_t *order, json_t *hours, json_t *tables, json_t *items)
{
    json_int_t total = s_int (order, "total_cents");
    json_int_t hour_ms = s_int (order, "created_ms") / 3600000 * 3600000;
    const char *table = json_string_value (json_object_get (order, "table"));
    char hour[32];
    snprintf (hour, sizeof hour, "%lld", (long long) hour_ms);
    json_t *entry = s_entry (
        hours, hour, json_pack ("{s:I}", "hour_ms", (json_int_t) hour_ms));
    s_add (entry, "orders", 1);
    s_add (entry, "revenue_cents", total);
    entry = s_entry (tables, table, json_pack ("{s:s}", "table", table));
    s_add (entry, "orders", 1);
    s_add (entry, "revenue_cents", total);
    size_t i;
    json_t *line;
    json_array_foreach (json_object_get (order, "items"), i, line)
    {
        const char *id = json_string_value (json_object_get (line, "item_id"));
        entry = s_entry (items, id,
                         json_pack ("{s:s, s:O}", "item_id", id, "name",
                                    json_object_get (line, "name")));
        s_add (entry, "quantity", s_int (line, "quantity"));
        s_add (entry, "revenue_cents",
               s_int (line, "quantity") * s_int (line, "unit_cents"));
    }
}

static json_t *
s_expected_report (json_int_t from_ms, json_int_t to_ms)
{
    json_t *hours = json_object (), *tables = json_object ();
    json_t *items = json_object ();
    json_int_t sums[5] = { 0 };   //  orders, cancelled, revenue, subtotal, tax
    json_int_t tickets[S_ORDERS_MAX];
    size_t ready = 0;
    for (size_t i = 0; i < s_placed_count; i++) {
        json_t *order = s_get_order (s_placed[i].id);
        json_t *times = json_object_get (order, "status_times");
        json_int_t created = s_int (order, "created_ms");
        bool cancelled =
            strcmp (json_string_value (json_object_get (order, "status")),
                    "cancelled")
            == 0;
        if (created >= from_ms && created < to_ms && cancelled)
            sums[1]++;
        if (created >= from_ms && created < to_ms && !cancelled) {
            sums[0]++;
            sums[2] += s_int (order, "total_cents");
            sums[3] += s_int (order, "subtotal_cents");
            sums[4] += s_int (order, "tax_cents");
            s_count (order, hours, tables, items);
            if (json_object_get (times, "ready"))
                tickets[ready++] =
                    s_int (times, "ready") - s_int (times, "placed");
        }
        json_decref (order);
    }
    qsort (tickets, ready, sizeof tickets[0], s_by_value);
    return json_pack (
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o,"
        " s:{s:I, s:o, s:o}}",
        "from_ms", from_ms, "to_ms", to_ms, "orders", sums[0], "cancelled",
        sums[1], "revenue_cents", sums[2], "subtotal_cents", sums[3],
        "tax_cents", sums[4], "per_hour", s_sorted (hours, s_by_hour, SIZE_MAX),
        "top_items", s_sorted (items, s_by_quantity, 10), "by_table",
        s_sorted (tables, s_by_revenue, SIZE_MAX), "ticket_ms", "count",
        (json_int_t) ready, "median", s_rank (tickets, ready, 50), "p90",
        s_rank (tickets, ready, 90));
}

//  GET /api/v1/report?query with token; the response (caller frees).
static void
s_get_report (const char *token, const char *query, tk_response_t *resp)
{
    char path[256], headers[1024];
    snprintf (path, sizeof path, "/api/v1/report%s", query);
    snprintf (headers, sizeof headers, "Authorization: Bearer %s\r\n", token);
    tk_http (s_port, "GET", path, headers, NULL, resp);
}

static void
s_check_report (const char *what, json_int_t from_ms, json_int_t to_ms,
                const char *query)
{
    json_t *want = s_expected_report (from_ms, to_ms);
    tk_response_t r;
    s_get_report (s_token, query, &r);
    CHECK (r.status == 200 && r.json, "report %s: %d %s", what, r.status,
           r.body);
    if (!json_equal (r.json, want)) {
        char *text = json_dumps (want, JSON_COMPACT);
        CHECK (false, "report %s:\n got %s\nwant %s", what, r.body, text);
    }
    s_reports_checked++;
    tk_response_free (&r);
    json_decref (want);
}

static void
s_expect_report_error (const char *token, const char *query, int status,
                       const char *field)
{
    tk_response_t r;
    s_get_report (token, query, &r);
    json_t *error = json_object_get (r.json, "error");
    const char *named = json_string_value (json_object_get (error, "field"));
    CHECK (r.status == status
               && (!field || (named && strcmp (named, field) == 0)),
           "report%s: %d %s, want %d naming %s", query, r.status, r.body,
           status, field ? field : "-");
    s_errors_checked++;
    tk_response_free (&r);
}

static void
s_check_reports (size_t first_batch)
{
    char query[128], iso[32];
    json_int_t first = s_placed[0].created_ms;
    json_int_t last = s_placed[s_placed_count - 1].created_ms;
    snprintf (query, sizeof query, "?from=%lld&to=%lld", (long long) first,
              (long long) last + 1);
    s_check_report ("of every order", first, last + 1, query);
    json_int_t split = (s_placed[first_batch - 1].created_ms / 1000 + 1) * 1000;
    time_t secs = (time_t) (split / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    strftime (iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf (query, sizeof query, "?from=%lld&to=%s", (long long) first, iso);
    s_check_report ("of the first batch", first, split, query);
    //  the default range is the last 24 hours: every order so far
    tk_response_t r;
    s_get_report (s_token, "", &r);
    json_t *all = s_expected_report (0, last + 1);
    CHECK (r.status == 200 && s_int (r.json, "orders") == s_int (all, "orders")
               && s_int (r.json, "cancelled") == s_int (all, "cancelled")
               && s_int (r.json, "to_ms") - s_int (r.json, "from_ms")
                      == 86400000,
           "default report: %d %s", r.status, r.body);
    json_decref (all);
    tk_response_free (&r);

    s_expect_report_error (s_kitchen, "", 403, NULL);
    s_expect_report_error (s_token, "?from=yesterday", 400, "from");
    s_expect_report_error (s_token, "?to=2026-02-30", 400, "to");
    s_expect_report_error (s_token, "?from=2026-01-02&to=2026-01-01", 400,
                           "from");
    s_expect_report_error (s_token, "?from=2024-01-01&to=2026-01-01", 400,
                           "from");
    s_expect_report_error (s_token, "?since=2026-01-01", 400, "since");
}

//  --------------------------------------------------------------------------
//  Failures

//  Run export with args; expect status and mention in its output.
static void
s_expect_failure (int status, const char *mention, ...)
{
    const char *args[12] = { "export" };
    size_t n = 1;
    va_list ap;
    va_start (ap, mention);
    for (const char *arg; n < 11 && (arg = va_arg (ap, const char *));)
        args[n++] = arg;
    va_end (ap);
    char *out;
    int rc = tk_run (&out, args[0], args[1], args[2], args[3], args[4], args[5],
                     args[6], args[7], args[8], args[9], args[10], NULL);
    CHECK (rc == status && strstr (out, mention),
           "export %s %s %s: exit %d, want %d with '%s': %s", args[1],
           args[2] ? args[2] : "", args[3] ? args[3] : "", rc, status, mention,
           out);
    free (out);
    s_errors_checked++;
}

static void
s_check_failures (void)
{
    char empty[700], missing[700], lock[720], output[720];
    snprintf (empty, sizeof empty, "%s/empty", tk_dir ());
    snprintf (missing, sizeof missing, "%s/missing", tk_dir ());
    snprintf (lock, sizeof lock, "%s/lock.mdb", empty);
    snprintf (output, sizeof output, "%s/nodir/out.csv", tk_dir ());
    mkdir (empty, 0755);

    s_expect_failure (2, "--data: required", NULL);
    s_expect_failure (2, "unknown option '--frm'", "--data", s_data, "--frm",
                      "2026-01-01", NULL);
    s_expect_failure (2, "--from: must be a UTC time", "--data", s_data,
                      "--from", "yesterday", NULL);
    s_expect_failure (2, "--to: must be a UTC time", "--data", s_data, "--to",
                      "2026-02-30", NULL);
    s_expect_failure (2, "--to: must be after --from", "--data", s_data,
                      "--from", "2026-01-02", "--to", "2026-01-01", NULL);
    s_expect_failure (2, "--output: missing value", "--data", s_data,
                      "--output", NULL);
    s_expect_failure (2, "--data: given twice", "--data", s_data, "--data",
                      s_data, NULL);
    s_expect_failure (2, "unexpected argument 'orders'", "--data", s_data,
                      "orders", NULL);
    s_expect_failure (2, "--from: must not be empty", "--data", s_data,
                      "--from=", NULL);
    s_expect_failure (1, "is not an orderbus data directory", "--data", empty,
                      NULL);
    s_expect_failure (1, "is not an orderbus data directory", "--data", missing,
                      NULL);
    CHECK (access (lock, F_OK) != 0 && access (missing, F_OK) != 0,
           "export created nothing where there is no store");
    s_expect_failure (1, "--output: cannot write", "--data", s_data, "--output",
                      output, NULL);
    s_expect_failure (0, "Usage: orderbus export", "--help", NULL);
}

//  --------------------------------------------------------------------------

static void
s_place_orders (void)
{
    static const char *const done[] = { "accepted", "preparing", "ready",
                                        "served", NULL };
    static const char *const ready[] = { "accepted", "preparing", "ready",
                                         NULL };
    static const char *const cancelled[] = { "cancelled", NULL };
    s_place (
        "exp-1", "T1",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"burger\",\"quantity\":2,"
        "\"note\":\"no onions, \\\"well done\\\"\",\"modifiers\":[\"cheese\","
        "\"bacon\"]},{\"item_id\":\"fries\",\"quantity\":1}]}");
    s_place ("exp,2 \"quoted\"", "Patio \"A\", 2",
             "{\"table\":\"Patio \\\"A\\\", 2\",\"note\":\"birthday, window\","
             "\"items\":[{\"item_id\":\"cola\",\"quantity\":3}]}");
    s_place (
        "exp-3", "T3",
        "{\"table\":\"T3\",\"items\":[{\"item_id\":\"salmon\",\"quantity\":1,"
        "\"note\":\"allergy: nuts; \\\"severe\\\"\"},{\"item_id\":\"espresso\","
        "\"quantity\":2,\"modifiers\":[\"double\"]}]}");
    s_move (0, done);
    s_move (1, cancelled);
    s_move (2, ready);
}

static void
s_place_more (void)
{
    static const char *const accepted[] = { "accepted", NULL };
    s_place (
        "exp-4", "T1",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"steak-frites\","
        "\"quantity\":1,\"modifiers\":[\"medium-rare\",\"peppercorn\"]}]}");
    s_place ("exp-5", "Bar, left",
             "{\"table\":\"Bar, left\",\"items\":[{\"item_id\":\"negroni\","
             "\"quantity\":2}]}");
    s_place (
        "exp-6", "T3",
        "{\"table\":\"T3\",\"items\":[{\"item_id\":\"ice-cream\",\"quantity\":1,"
        "\"note\":\"two spoons\",\"modifiers\":[\"cone\",\"sauce\"]}]}");
    s_move (3, accepted);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "export");
    s_port = tk_port ();
    char http[16];
    snprintf (http, sizeof http, "%d", s_port);
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    tk_spawn ("up", "up", "--http-port", http, "--data", s_data, "--tax-bp",
              "875", NULL);
    CHECK (tk_wait_http (s_port, "/healthz", 200, 15000), "up is healthy");
    s_token = s_mint ("manager");
    s_kitchen = s_mint ("kitchen");

    s_place_orders ();
    size_t first_batch = s_placed_count;
    usleep (1100 * 1000);
    s_place_more ();

    //  Everything below runs while `up` (the writer) keeps running
    s_check_all ();
    s_check_ranges (first_batch);
    s_check_failures ();
    s_check_reports (first_batch);
    //  the writer was not held up: it takes an order, the next export has it
    s_place ("exp-7", "T7",
             "{\"table\":\"T7\",\"items\":[{\"item_id\":\"espresso\","
             "\"quantity\":1}]}");
    s_check_all ();

    printf ("export: %zu rows and %zu fields compared with the API, %zu "
            "ranges, %zu reports, %zu failures\n",
            s_rows_checked, s_fields_checked, s_ranges_checked,
            s_reports_checked, s_errors_checked);
    free (s_token);
    free (s_kitchen);
    return tk_done ();
}
