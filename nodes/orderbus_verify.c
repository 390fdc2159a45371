/*  orderbus_verify.c — `orderbus verify`: read every record of a data
    directory and check it against the others (bus_store_verify).

      orderbus verify --data DIR

    Read-only, so it may run beside the writer, or on a backup before it
    is restored.  Prints a summary, and the first bad record if any.
    Exit status: 0 sound, 1 damaged or older than the directory last
    committed, 2 bad arguments, 3 not an orderbus data directory or not
    readable.  */

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <czmq.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store.h"
#include "orderbus_args.h"

int orderbus_verify_main (int argc, char **argv);

typedef struct {
    const char *data;
} s_args_t;

static const orderbus_option_t s_options[] = {
    { "--data", "DIR", offsetof (s_args_t, data),
      "the data directory to check (required); only read" },
};

#define S_OPTIONS (sizeof s_options / sizeof s_options[0])

static void
s_usage (void)
{
    printf ("orderbus verify - check every record of a data directory\n\n"
            "Usage: orderbus verify --data DIR\n\nOptions:\n");
    orderbus_args_usage (s_options, S_OPTIONS, 12);
    printf ("\nReads the LMDB environment in DIR read-only (safe while the "
            "writer runs, or on\na backup before it is restored) and checks: "
            "every event of the log and every\norder passes its checksum "
            "(records from before checksums are counted as\nunchecked) and "
            "decodes; the log has no hole between the pruned and the last\n"
            "seq; every order's event is logged and the open index agrees with "
            "its status;\nevery Idempotency-Key names a logged event; every "
            "cart decodes.  A damaged page\nthat stops LMDB itself is "
            "reported where it was read.  And that data.mdb is\nnot older "
            "than, nor another than, what the directory last committed\n"
            "(DIR/committed).\n\n"
            "Prints what it counted and the first bad record, if any.\n\n"
            "Exit status: 0 sound, 1 damaged or rolled back (restore from a "
            "backup), 2 bad\narguments, 3 not an orderbus data directory, or "
            "not readable.\n\n"
            "See docs/delivery.md.\n");
}

static void
s_print (const char *dir, const bus_store_report_t *r)
{
    printf ("data:          %s\n"
            "identity:      %s\n"
            "last seq:      %" PRIu64 " (pruned to %" PRIu64 ")\n"
            "records:       %" PRIu64 " events in the log\n"
            "orders:        %" PRIu64 " (%" PRIu64 " open, last id %" PRIu64
            ")\n"
            "keys:          %" PRIu64 "\n"
            "carts:         %" PRIu64 "\n"
            "unchecked:     %" PRIu64 " (written before checksums)\n"
            "problems:      %" PRIu64 "\n",
            dir, *r->identity ? r->identity : "(none)", r->last_seq,
            r->pruned_seq, r->records, r->orders, r->open, r->last_order_id,
            r->keys, r->carts, r->unchecked, r->bad);
    if (r->bad)
        printf ("first bad:     %s\n", r->first_bad);
}

int
orderbus_verify_main (int argc, char **argv)
{
    if (bus_config_help_wanted (argc, argv)) {
        s_usage ();
        return 0;
    }
    zsys_set_logstream (stderr);
    zsys_handler_reset ();
    s_args_t args = { 0 };
    char err[600];
    if (orderbus_args_parse (s_options, S_OPTIONS, argc, argv, &args, err,
                             sizeof err)
            != 0
        || (!args.data
            && bus_error_set (err, sizeof err, -1, "--data: required"))) {
        fprintf (stderr,
                 "orderbus verify: %s\n(try 'orderbus verify --help')\n", err);
        return 2;
    }
    bus_store_report_t report;
    int rc = bus_store_verify (args.data, &report);
    if (rc == BUS_ERR_NOT_FOUND) {
        fprintf (stderr,
                 "orderbus verify: '%s' is not an orderbus data directory "
                 "(no orderbus LMDB environment in it)\n",
                 args.data);
        return 3;
    }
    if (rc != 0 && rc != BUS_ERR_DAMAGED && rc != BUS_ERR_ROLLED_BACK) {
        fprintf (stderr, "orderbus verify: cannot read '%s': %s\n", args.data,
                 bus_strerror (rc));
        return 3;
    }
    s_print (args.data, &report);
    printf ("%s\n", rc == 0 ? "sound"
                    : rc == BUS_ERR_DAMAGED
                        ? "DAMAGED: restore from a backup"
                        : "ROLLED BACK: restore the newest backup, or start "
                          "the writer once with --accept-restore");
    return rc == 0 ? 0 : 1;
}
