/*  orderbus_tls.c — `orderbus tls`: a certificate for a test install.

      orderbus tls new --cert FILE --key FILE [--name HOST-OR-IP ...]
                       [--days N] [--force]

    `new` writes a self-signed EC P-256 pair: the key (mode 0600: a
    server's tls/key) and the certificate (a server's tls/cert, and what
    browsers and clients are told to trust), for every --name given
    (default: localhost 127.0.0.1 ::1).  Never over an existing file
    without --force, never through a symlink.  A real site uses a
    certificate from its own authority instead (docs/security.md, TLS).
    Exit status: 0 done, 1 the files could not be made, 2 bad
    arguments.  */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_tls.h"
#include "orderbus_args.h"

#define S_ERR_MAX 1024

int orderbus_tls_main (int argc, char **argv);

typedef struct {
    const char *cert;
    const char *key;
    const char *days;
    bool force;
    const char *name;   //  only for --help: names are taken out first
} s_args_t;

static const orderbus_option_t s_options[] = {
    { "--cert", "FILE", offsetof (s_args_t, cert),
      "the certificate to write (a server's tls/cert) (required)" },
    { "--key", "FILE", offsetof (s_args_t, key),
      "its private key, written mode 0600 (tls/key) (required)" },
    { "--name", "HOST", offsetof (s_args_t, name),
      "a host name or IP address clients use; repeat for more\n"
      "                    (default: localhost 127.0.0.1 ::1)" },
    { "--days", "N", offsetof (s_args_t, days),
      "days it is valid (default 365, at most 825)" },
    { "--force", NULL, offsetof (s_args_t, force),
      "replace existing files (never through a symlink)" },
};

#define S_OPTIONS (sizeof s_options / sizeof s_options[0])

static void
s_usage (FILE *out)
{
    fprintf (out, "orderbus tls - certificates for HTTPS and WSS\n\n"
                  "Usage:\n"
                  "  orderbus tls new --cert FILE --key FILE [--name HOST ...] "
                  "[--days N] [--force]\n"
                  "                   make a self-signed pair for a test "
                  "install\n\n"
                  "'orderbus tls new --help' shows its options.  A gateway, "
                  "edge or up then\nruns with --tls-cert FILE --tls-key FILE; "
                  "docs/security.md (TLS) says more.\n");
}

//  Take every --name out of argv (in place) into names; the count, or -1
//  with err set
static int
s_take_names (int *argc, char **argv, const char **names, char *err)
{
    int count = 0, kept = 1;
    for (int i = 1; i < *argc; i++) {
        const char *value = NULL;
        if (streq (argv[i], "--name")) {
            if (i + 1 >= *argc || !*argv[i + 1])
                return bus_error_set (err, S_ERR_MAX, -1,
                                      "--name: needs a value");
            value = argv[++i];
        } else if (strncmp (argv[i], "--name=", 7) == 0)
            value = argv[i] + 7;
        else {
            argv[kept++] = argv[i];
            continue;
        }
        if (count == BUS_TLS_NAMES_MAX)
            return bus_error_set (err, S_ERR_MAX, -1,
                                  "--name: at most %d names",
                                  BUS_TLS_NAMES_MAX);
        names[count++] = value;
    }
    *argc = kept;
    return count;
}

//  Read new's arguments into args, names and days; 0, or -1 with err set
static int
s_new_args (int argc, char **argv, s_args_t *args, const char **names,
            size_t *count, int *days, char *err)
{
    int taken = s_take_names (&argc, argv, names, err);
    if (taken < 0
        || orderbus_args_parse (s_options, S_OPTIONS, argc, argv, args, err,
                                S_ERR_MAX)
               != 0)
        return -1;
    if (!args->cert || !args->key)
        return bus_error_set (err, S_ERR_MAX, -1,
                              "--cert and --key are required");
    char *end = NULL;
    //  Read as a long and checked before it is an int: 4294967297 days
    //  would wrap to 1
    long asked = args->days && isdigit ((unsigned char) *args->days)
                     ? strtol (args->days, &end, 10)
                 : args->days ? -1
                              : BUS_TLS_DAYS_DEFAULT;
    *days = asked >= 1 && asked <= BUS_TLS_DAYS_MAX ? (int) asked : -1;
    if (*days < 1 || (end && *end))
        return bus_error_set (err, S_ERR_MAX, -1,
                              "--days: a number of days, 1 to %d (got '%s')",
                              BUS_TLS_DAYS_MAX, args->days);
    *count = (size_t) taken;
    if (*count == 0) {
        names[(*count)++] = "localhost";
        names[(*count)++] = "127.0.0.1";
        names[(*count)++] = "::1";
    }
    return 0;
}

static int
s_new (int argc, char **argv)
{
    const char *names[BUS_TLS_NAMES_MAX];
    s_args_t args = { 0 };
    size_t count = 0;
    int days = 0;
    char err[S_ERR_MAX];
    if (s_new_args (argc, argv, &args, names, &count, &days, err) != 0) {
        fprintf (stderr,
                 "orderbus tls new: %s\n(try 'orderbus tls new --help')\n",
                 err);
        return 2;
    }
    if (bus_tls_self_signed (args.cert, args.key, names, count, days,
                             args.force, err, sizeof err)
        != 0) {
        fprintf (stderr, "orderbus tls new: %s\n", err);
        return 1;
    }
    fprintf (stderr,
             "orderbus tls: wrote %s (certificate, self-signed, %d days) and "
             "%s (key, mode 0600) for",
             args.cert, days, args.key);
    for (size_t i = 0; i < count; i++)
        fprintf (stderr, " %s", names[i]);
    fprintf (stderr,
             "\n  run a server with --tls-cert %s --tls-key %s, and have "
             "clients trust %s\n",
             args.cert, args.key, args.cert);
    return 0;
}

int
orderbus_tls_main (int argc, char **argv)
{
    zsys_set_logstream (stderr);
    if (argc < 2 || streq (argv[1], "-h") || streq (argv[1], "--help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!streq (argv[1], "new")) {
        fprintf (stderr,
                 "orderbus tls: unknown command '%s' (try 'orderbus tls "
                 "--help')\n",
                 argv[1]);
        return 2;
    }
    if (bus_config_help_wanted (argc - 1, argv + 1)) {
        printf ("orderbus tls new - a self-signed certificate and key for a "
                "test install\n\nUsage: orderbus tls new --cert FILE --key "
                "FILE [options]\n\nOptions:\n");
        orderbus_args_usage (s_options, S_OPTIONS, 17);
        printf ("\nEach option also takes the form --option=VALUE.\n");
        return 0;
    }
    return s_new (argc - 1, argv + 1);
}
