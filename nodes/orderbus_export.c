/*  orderbus_export.c — `orderbus export`: the orders of a time range as
    CSV, read straight from the writer's LMDB environment.

      orderbus export --data DIR [--from TIME] [--to TIME]
                      [--output FILE [--force]]

    The environment is opened read-only, so the export may run while the
    writer does: an LMDB reader never blocks the writer.  Every order is
    read in one read transaction, so the file is the state of one commit.
    The store lists newest first; rows are spooled to a temporary file as
    they come and then written oldest first, so memory stays at a few
    bytes per order whatever the range.  --output makes a new file, mode
    0600 (it holds every order of the range), and never writes through a
    symbolic link: an attacker's link in a shared directory cannot turn
    an export into an overwrite of another file.  An existing file is
    replaced only with --force.  Exit status: 0 written, 1 the data
    directory or the output failed (nothing written), 2 bad arguments.  */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_report.h"
#include "orderbus/bus_store.h"
#include "orderbus_args.h"

#define S_ERR_MAX 1200

int orderbus_export_main (int argc, char **argv);

typedef struct {
    const char *data;
    const char *from;
    const char *to;
    const char *output;
    bool force;
} s_args_t;

static const orderbus_option_t s_options[] = {
    { "--data", "DIR", offsetof (s_args_t, data),
      "the writer's data directory (required); only read" },
    { "--from", "TIME", offsetof (s_args_t, from),
      "orders created at or after TIME (default: the first)" },
    { "--to", "TIME", offsetof (s_args_t, to),
      "orders created before TIME (default: the last)" },
    { "--output", "FILE", offsetof (s_args_t, output),
      "write to FILE (new, mode 0600) instead of standard output" },
    { "--force", NULL, offsetof (s_args_t, force),
      "--output may replace an existing file (never through a symlink)" },
};

#define S_OPTIONS (sizeof s_options / sizeof s_options[0])

static void
s_usage (void)
{
    printf ("orderbus export - write the orders of a time range as CSV\n\n"
            "Usage: orderbus export --data DIR [--from TIME] [--to TIME] "
            "[--output FILE [--force]]\n\nOptions:\n");
    orderbus_args_usage (s_options, S_OPTIONS, 15);
    printf (
        "\nTIME is UTC: YYYY-MM-DD, YYYY-MM-DDTHH:MMZ, "
        "YYYY-MM-DDTHH:MM:SSZ,\nYYYY-MM-DDTHH:MM:SS.mmmZ, or milliseconds "
        "since the epoch.  Each option also\ntakes the form "
        "--option=VALUE.\n\n"
        "One row per order, oldest first, after the header row:\n  " BUS_REPORT_CSV_HEADER
        "\n\n"
        "Safe while the writer runs: the data directory is opened "
        "read-only and read\nin one transaction.  For example, the orders "
        "of 5 January 2026:\n\n"
        "  orderbus export --data /var/lib/orderbus --from 2026-01-05 "
        "--to 2026-01-06 \\\n      --output orders-2026-01-05.csv\n\n"
        "See docs/reports.md.\n");
}

//  --------------------------------------------------------------------------
//  Arguments

static int
s_time (const char *flag, const char *text, int64_t *ms, char *err)
{
    if (!text || bus_report_time_parse (text, ms) == 0)
        return 0;
    return bus_error_set (err, S_ERR_MAX, -1,
                          "%s: must be a UTC time as YYYY-MM-DD, "
                          "YYYY-MM-DDTHH:MM[:SS]Z or milliseconds since the "
                          "epoch (got '%s')",
                          flag, text);
}

//  [from_ms, to_ms), 0 for a bound not given (the store's "any")
static int
s_range (const s_args_t *args, int64_t *from_ms, int64_t *to_ms, char *err)
{
    *from_ms = *to_ms = 0;
    if (s_time ("--from", args->from, from_ms, err) != 0
        || s_time ("--to", args->to, to_ms, err) != 0)
        return -1;
    if (args->to && *to_ms <= *from_ms)
        return bus_error_set (err, S_ERR_MAX, -1,
                              "--to: must be after --from (got '%s' and '%s')",
                              args->from ? args->from : "0", args->to);
    return 0;
}

//  --------------------------------------------------------------------------
//  Reading: every order of the range, newest first, spooled as CSV rows

//  Where one order's row is in the spool, and what sorts it.
typedef struct {
    int64_t created_ms;
    uint64_t id;
    long offset;
    size_t size;
} s_row_t;

typedef struct {
    FILE *spool;   //  rows in the order the store gave them
    s_row_t *rows;
    size_t count;
    size_t cap;
    bus_order_t *order;   //  decode scratch: too big for the stack
    int rc;               //  why the walk stopped early, or 0
} s_spool_t;

static s_row_t *
s_row_new (s_spool_t *spool)
{
    if (spool->count == spool->cap) {
        size_t cap = spool->cap ? spool->cap * 2 : 1024;
        s_row_t *rows = realloc (spool->rows, cap * sizeof *rows);
        if (!rows)
            return NULL;
        spool->rows = rows;
        spool->cap = cap;
    }
    return &spool->rows[spool->count++];
}

static int
s_spool_order (const void *data, size_t size, void *arg)
{
    s_spool_t *spool = (s_spool_t *) arg;
    s_row_t *row = s_row_new (spool);
    if (!row)
        spool->rc = BUS_ERR_NOMEM;
    else if (bus_order_decode (data, size, spool->order) != 0)
        spool->rc = BUS_ERR_STORAGE;
    else {
        row->created_ms = spool->order->created_ms;
        row->id = spool->order->id;
        row->offset = ftell (spool->spool);
        spool->rc = bus_report_csv_row (spool->spool, spool->order);
        row->size = (size_t) (ftell (spool->spool) - row->offset);
    }
    return spool->rc != 0 || ferror (spool->spool);
}

static int
s_read_store (bus_store_t *store, int64_t from_ms, int64_t to_ms,
              s_spool_t *spool, char *err)
{
    //  One list call is one read transaction: the file is one commit's state
    bus_store_filter_t filter = { 0, NULL, from_ms, to_ms };
    uint64_t next;
    int rc = bus_store_list (store, &filter, 0, UINT32_MAX, s_spool_order,
                             spool, &next);
    if (rc == 0)
        rc = spool->rc;
    if (rc != 0)
        return bus_error_set (err, S_ERR_MAX, -1, "cannot read the orders: %s",
                              bus_strerror (rc));
    if (ferror (spool->spool) || fflush (spool->spool) != 0)
        return bus_error_set (err, S_ERR_MAX, -1,
                              "cannot write a temporary file: %s",
                              strerror (errno));
    return 0;
}

static int
s_read (const s_args_t *args, int64_t from_ms, int64_t to_ms, s_spool_t *spool,
        char *err)
{
    //  Every page first, in a child process: LMDB aborts on a damaged
    //  page rather than failing, and an export must not die halfway
    bus_store_report_t report;
    int rc = bus_store_verify (args->data, &report);
    if (rc == BUS_ERR_DAMAGED)
        return bus_error_set (err, S_ERR_MAX, -1,
                              "%s/data.mdb is damaged: %s.  Nothing was "
                              "written; restore the data directory from a "
                              "backup ('orderbus verify --data DIR')",
                              args->data, report.first_bad);
    bus_store_t *store = bus_store_open_readonly (args->data, &rc);
    if (!store)
        return rc == BUS_ERR_NOT_FOUND
                   ? bus_error_set (err, S_ERR_MAX, -1,
                                    "'%s' is not an orderbus data directory "
                                    "(no orderbus LMDB environment in it)",
                                    args->data)
                   : bus_error_set (err, S_ERR_MAX, -1,
                                    "cannot open the data directory '%s': %s",
                                    args->data, bus_strerror (rc));
    spool->spool = tmpfile ();
    spool->order = malloc (sizeof *spool->order);
    if (!spool->spool || !spool->order)
        rc = bus_error_set (err, S_ERR_MAX, -1,
                            "cannot make a temporary file: %s",
                            strerror (errno));
    else
        rc = s_read_store (store, from_ms, to_ms, spool, err);
    bus_store_destroy (&store);
    return rc;
}

//  --------------------------------------------------------------------------
//  Writing: the rows oldest first

//  Ascending created time; the id (the order of commit) within one ms and
//  should the writer's clock ever have stepped back.
static int
s_row_compare (const void *a, const void *b)
{
    const s_row_t *x = a, *y = b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int
s_copy_row (FILE *spool, const s_row_t *row, FILE *out)
{
    char buf[16384];
    if (fseek (spool, row->offset, SEEK_SET) != 0)
        return -1;
    for (size_t left = row->size; left > 0;) {
        size_t chunk = left < sizeof buf ? left : sizeof buf;
        if (fread (buf, 1, chunk, spool) != chunk
            || fwrite (buf, 1, chunk, out) != chunk)
            return -1;
        left -= chunk;
    }
    return 0;
}

static int
s_write_rows (s_spool_t *spool, FILE *out)
{
    if (spool->count)   //  rows is NULL until the first one
        qsort (spool->rows, spool->count, sizeof *spool->rows, s_row_compare);
    bus_report_csv_header (out);
    for (size_t i = 0; i < spool->count && !ferror (out); i++)
        if (s_copy_row (spool->spool, &spool->rows[i], out) != 0)
            return -1;
    return ferror (out) ? -1 : 0;
}

//  Open --output for writing: a new file (O_EXCL), or with --force an
//  existing regular file, truncated; never through a symbolic link
//  (O_NOFOLLOW), and never a FIFO or device (O_NONBLOCK keeps a FIFO
//  from hanging the open).  The stream, or NULL with err set.
static FILE *
s_open_output (const s_args_t *args, const char *name, char *err)
{
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                | (args->force ? O_TRUNC : O_EXCL);
    struct stat st;
    //  Named first, so the message says why; the flags refuse it anyway,
    //  should a link appear between this look and the open
    bool is_link = lstat (args->output, &st) == 0 && S_ISLNK (st.st_mode);
    int fd = is_link ? -1 : open (args->output, flags, 0600);
    if (is_link || (fd < 0 && errno == ELOOP))
        bus_error_set (err, S_ERR_MAX, -1,
                       "--output: %s is a symbolic link: not followed "
                       "(name the file itself)",
                       name);
    else if (fd < 0 && errno == EEXIST)
        bus_error_set (err, S_ERR_MAX, -1,
                       "--output: %s exists: not overwritten (give --force "
                       "to replace it)",
                       name);
    else if (fd < 0)
        bus_error_set (err, S_ERR_MAX, -1, "--output: cannot write %s: %s",
                       name, strerror (errno));
    else if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
        bus_error_set (err, S_ERR_MAX, -1,
                       "--output: %s is not a regular file: not written", name);
        close (fd);
        fd = -1;
    }
    FILE *out = fd >= 0 ? fdopen (fd, "w") : NULL;
    if (fd >= 0 && !out) {
        bus_error_set (err, S_ERR_MAX, -1, "--output: cannot write %s: %s",
                       name, strerror (errno));
        close (fd);
    }
    return out;
}

//  Write to FILE, or stdout; a FILE that could not be finished is removed
//  rather than left looking like a complete export.
static int
s_write (const s_args_t *args, s_spool_t *spool, char *err)
{
    char name[1024];
    snprintf (name, sizeof name, args->output ? "'%s'" : "%s",
              args->output ? args->output : "standard output");
    FILE *out = args->output ? s_open_output (args, name, err) : stdout;
    if (!out)
        return -1;
    int rc = s_write_rows (spool, out);
    int error = errno;
    if (ferror (spool->spool))
        rc = bus_error_set (err, S_ERR_MAX, -1,
                            "cannot read back a temporary file: %s",
                            strerror (error));
    else if (rc != 0)
        rc = bus_error_set (err, S_ERR_MAX, -1, "cannot write %s: %s", name,
                            strerror (error));
    if ((args->output ? fclose (out) : fflush (out)) != 0 && rc == 0)
        rc = bus_error_set (err, S_ERR_MAX, -1, "cannot write %s: %s", name,
                            strerror (errno));
    if (rc != 0 && args->output)
        remove (args->output);
    return rc;
}

static void
s_spool_destroy (s_spool_t *spool)
{
    if (spool->spool)
        fclose (spool->spool);
    free (spool->rows);
    free (spool->order);
}

int
orderbus_export_main (int argc, char **argv)
{
    if (bus_config_help_wanted (argc, argv)) {
        s_usage ();
        return 0;
    }
    //  stdout may be the CSV, so logs go to stderr; czmq then catches
    //  SIGINT and SIGTERM to set a flag nobody here reads: give them back
    //  their default, so Ctrl-C stops a long export
    zsys_set_logstream (stderr);
    zsys_handler_reset ();
    s_args_t args = { 0 };
    int64_t from_ms, to_ms;
    char err[S_ERR_MAX];
    if (orderbus_args_parse (s_options, S_OPTIONS, argc, argv, &args, err,
                             sizeof err)
            != 0
        || (!args.data
            && bus_error_set (err, S_ERR_MAX, -1, "--data: required"))
        || (args.force && !args.output
            && bus_error_set (err, S_ERR_MAX, -1,
                              "--force: only with --output FILE"))
        || s_range (&args, &from_ms, &to_ms, err) != 0) {
        fprintf (stderr,
                 "orderbus export: %s\n(try 'orderbus export --help')\n", err);
        return 2;
    }
    s_spool_t spool = { 0 };
    int rc = s_read (&args, from_ms, to_ms, &spool, err);
    if (rc == 0)
        rc = s_write (&args, &spool, err);
    s_spool_destroy (&spool);
    if (rc != 0) {
        fprintf (stderr, "orderbus export: %s\n", err);
        return 1;
    }
    return 0;
}
