/*  orderbus_token.c — `orderbus token`: mint an access token for a table
    pad or a staff screen, and print the URL a QR code should open.

      orderbus token --secret-file FILE (--table T | --staff ROLE) [options]

    The token is alone on the first line of stdout and the URL, with --url,
    on the second, so scripts can take either with `sed -n 1p` / `2p`.
    Everything else (notes, errors) goes to stderr.  Exit status: 0 minted,
    1 the secret file could not be created or read, 2 bad arguments.  */

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <czmq.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_token.h"
#include "orderbus_args.h"

#define S_ERR_MAX    512
#define S_HOUR_MS    (3600LL * 1000)
#define S_TTL_MAX_MS (3650 * 24 * S_HOUR_MS)   //  ten years

int orderbus_token_main (int argc, char **argv, const char *share_dir);

typedef struct {
    const char *secret_file;
    bool create_secret;
    const char *table;
    const char *staff;
    const char *site;
    const char *ttl;
    const char *url;
} s_args_t;

//  One option: a text field if arg names its value, else a switch
static const orderbus_option_t s_options[] = {
    { "--secret-file", "FILE", offsetof (s_args_t, secret_file),
      "the site's secret: 64 hex characters, mode 0600 (required)" },
    { "--create-secret", NULL, offsetof (s_args_t, create_secret),
      "create FILE with a new random secret if it does not exist" },
    { "--table", "TABLE", offsetof (s_args_t, table),
      "a pad token for this table (1..32 printable chars, no '/')" },
    { "--staff", "ROLE", offsetof (s_args_t, staff),
      "a staff token: kitchen or manager" },
    { "--site", "NAME", offsetof (s_args_t, site),
      "site named in the token, [A-Za-z0-9_.-] (default main)" },
    { "--ttl", "DURATION", offsetof (s_args_t, ttl),
      "lifetime: a number and s, m, h or d, e.g. 30m, 12h, 7d\n"
      "                      (default 24h for pads, 12h for staff; at most "
      "3650d)" },
    { "--url", "BASE", offsetof (s_args_t, url),
      "also print the page to open, e.g. BASE http://10.0.0.5:8080\n"
      "                      gives http://10.0.0.5:8080/pad?token=..." },
};

#define S_OPTIONS (sizeof s_options / sizeof s_options[0])

static void
s_usage (void)
{
    printf ("orderbus token - mint an access token for a table pad or a staff "
            "screen\n\n"
            "Usage: orderbus token --secret-file FILE (--table TABLE | "
            "--staff ROLE) [options]\n\nOptions:\n");
    orderbus_args_usage (s_options, S_OPTIONS, 19);
    printf ("\nEach option also takes the form --option=VALUE, which a value "
            "starting with\n'-' needs.\n");
    printf (
        "\nThe token is printed alone on the first line, the URL (--url) "
        "on the second.\nThe pages are BASE/pad (pads), BASE/kitchen (kitchen) "
        "and BASE/dashboard (manager).\nA QR code for a table, with "
        "Debian's qrencode package:\n\n"
        "  orderbus token --secret-file /etc/orderbus/secret --table T12 "
        "\\\n      --ttl 30d --url http://10.0.0.5:8080 | sed -n 2p | "
        "qrencode -t ansiutf8\n\nSee docs/auth.md.\n");
}

//  "<n><unit>", unit s, m, h or d, n >= 1, at most S_TTL_MAX_MS in all
static bool
s_parse_ttl (const char *text, int64_t *ms)
{
    static const struct {
        char unit;
        int64_t ms;
    } units[] = { { 's', 1000 },
                  { 'm', 60000 },
                  { 'h', S_HOUR_MS },
                  { 'd', 24 * S_HOUR_MS } };
    size_t digits = strspn (text, "0123456789");
    char unit = text[digits];
    if (digits == 0 || digits > 9 || unit == '\0' || text[digits + 1])
        return false;
    long long count = strtoll (text, NULL, 10);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (unit == units[i].unit) {
            *ms = count * units[i].ms;
            return count > 0 && *ms <= S_TTL_MAX_MS;
        }
    return false;
}

//  "http://host..." or "https://host...", printable, no spaces
static bool
s_valid_url (const char *url)
{
    size_t scheme = strncmp (url, "http://", 7) == 0    ? 7
                    : strncmp (url, "https://", 8) == 0 ? 8
                                                        : 0;
    if (scheme == 0 || url[scheme] == '\0' || url[scheme] == '/')
        return false;
    for (const char *c = url; *c; c++)
        if (*c <= ' ' || *c > '~')
            return false;
    return true;
}

//  Turn the flags into claims; BUS_ERR_CONFIG naming the flag at fault
static int
s_claims (const s_args_t *args, int64_t now_ms, bus_claims_t *claims, char *err)
{
    memset (claims, 0, sizeof *claims);
    if (!args->secret_file)
        return bus_error_set (err, S_ERR_MAX, BUS_ERR_CONFIG,
                              "--secret-file: required");
    if (!args->table == !args->staff)
        return bus_error_set (err, S_ERR_MAX, BUS_ERR_CONFIG,
                              "give one of --table TABLE (a pad) or --staff "
                              "ROLE (kitchen or manager)");
    if (args->table && !bus_valid_table (args->table))
        return bus_error_set (err, S_ERR_MAX, BUS_ERR_CONFIG,
                              "--table: must be 1 to 32 printable ASCII "
                              "characters without '/' (got '%s')",
                              args->table);
    if (args->table)
        claims->role = BUS_TOKEN_PAD;
    else if (bus_token_role_parse (args->staff, &claims->role) != 0
             || claims->role == BUS_TOKEN_PAD)
        return bus_error_set (err, S_ERR_MAX, BUS_ERR_CONFIG,
                              "--staff: must be kitchen or manager (got '%s')",
                              args->staff);
    const char *site = args->site ? args->site : "main";
    if (!bus_token_valid_site (site))
        return bus_error_set (err, S_ERR_MAX, BUS_ERR_CONFIG,
                              "--site: must be 1 to 80 of A-Z a-z 0-9 _ . - "
                              "(got '%s')",
                              site);
    int64_t ttl_ms =
        claims->role == BUS_TOKEN_PAD ? 24 * S_HOUR_MS : 12 * S_HOUR_MS;
    if (args->ttl && !s_parse_ttl (args->ttl, &ttl_ms))
        return bus_error_set (err, S_ERR_MAX, BUS_ERR_CONFIG,
                              "--ttl: must be a number and s, m, h or d, from "
                              "1s to 3650d, e.g. 12h (got '%s')",
                              args->ttl);
    if (args->url && !s_valid_url (args->url))
        return bus_error_set (
            err, S_ERR_MAX, BUS_ERR_CONFIG,
            "--url: must start with http:// or https:// and a "
            "host, without spaces (got '%s')",
            args->url);
    strcpy (claims->site, site);
    if (args->table)
        strcpy (claims->table, args->table);
    claims->expires_ms = now_ms + ttl_ms;
    return 0;
}

//  The secret, created first if asked and missing; NULL with a message
static bus_secret_t *
s_secret (const s_args_t *args, char *err)
{
    struct stat st;
    bool missing = stat (args->secret_file, &st) != 0 && errno == ENOENT;
    if (args->create_secret && missing) {
        if (bus_secret_create (args->secret_file, err, S_ERR_MAX) != 0)
            return NULL;
        fprintf (stderr,
                 "orderbus token: created secret file %s; keep it safe, "
                 "give the same file to every gateway and edge of the site\n",
                 args->secret_file);
    }
    return bus_secret_load (args->secret_file, err, S_ERR_MAX);
}

//  The page that role's screen opens
static const char *
s_page (bus_token_role_t role)
{
    return role == BUS_TOKEN_PAD       ? "pad"
           : role == BUS_TOKEN_KITCHEN ? "kitchen"
                                       : "dashboard";
}

static void
s_print (const s_args_t *args, const bus_claims_t *claims, const char *token)
{
    printf ("%s\n", token);
    if (args->url) {
        size_t length = strlen (args->url);
        while (length > 0 && args->url[length - 1] == '/')
            length--;
        printf ("%.*s/%s?token=%s\n", (int) length, args->url,
                s_page (claims->role), token);
    }
    time_t expires = (time_t) (claims->expires_ms / 1000);
    char when[64];
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime (&expires));
    fprintf (stderr, "orderbus token: %s token%s%s at site %s, expires %s\n",
             bus_token_role_name (claims->role),
             *claims->table ? " for table " : "", claims->table, claims->site,
             when);
}

int
orderbus_token_main (int argc, char **argv, const char *share_dir)
{
    if (bus_config_help_wanted (argc, argv)) {
        s_usage ();
        return 0;
    }
    //  stdout carries only the token and the URL
    zsys_set_logstream (stderr);
    s_args_t args = { 0 };
    bus_claims_t claims;
    char err[S_ERR_MAX];
    if (orderbus_args_parse (s_options, S_OPTIONS, argc, argv, &args, err,
                             sizeof err)
            != 0
        || s_claims (&args, zclock_time (), &claims, err) != 0) {
        fprintf (stderr, "orderbus token: %s\n(try 'orderbus token --help')\n",
                 err);
        return 2;
    }
    bus_secret_t *secret = s_secret (&args, err);
    if (!secret) {
        fprintf (stderr, "orderbus token: %s\n", err);
        return 1;
    }
    char *token = bus_token_mint (secret, &claims);
    bus_secret_destroy (&secret);
    if (!token) {
        fprintf (stderr, "orderbus token: out of memory\n");
        return 1;
    }
    s_print (&args, &claims, token);
    free (token);
    return 0;
}
