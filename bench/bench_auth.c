/*  bench_auth.c — tokens for the systems that ask for them (orderbus).

    With --secret-file the bench mints its own tokens from the site's
    secret with the project's bus_token_mint, the way `orderbus token`
    does: one pad token per table, so each order is placed by its table's
    pad and each pad's WebSocket joins its table's room, and one kitchen
    token for the kitchen screens.  With --token the one given token is
    used for everything.  All are minted before any thread starts, so the
    lookups need no lock.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "orderbus/bus_token.h"
#include "bench.h"
#include "bench_sub.h"

#define S_TTL_MS (12LL * 3600 * 1000)

static char *s_kitchen;   //  kitchen token, or the --token
static char **s_pads;     //  pad token of table k
static int s_pad_count;

static int64_t
s_wall_ms (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

//  Mint one token; NULL on failure (reported).
static char *
s_mint (const bus_secret_t *secret, bus_token_role_t role, const char *table)
{
    bus_claims_t claims;
    memset (&claims, 0, sizeof claims);
    claims.role = role;
    snprintf (claims.site, sizeof claims.site, "main");
    snprintf (claims.table, sizeof claims.table, "%s", table ? table : "");
    claims.expires_ms = s_wall_ms () + S_TTL_MS;
    char *token = bus_token_mint (secret, &claims);
    if (!token)
        fprintf (stderr, "orderbus-bench: cannot mint a %s token\n",
                 table ? table : "kitchen");
    return token;
}

int
bench_auth_init (const bench_opts_t *opts, int tables)
{
    if (opts->token) {
        s_kitchen = strdup (opts->token);
        return s_kitchen ? 0 : -1;
    }
    if (!opts->secret_file)
        return 0;
    char err[512];
    bus_secret_t *secret = bus_secret_load (opts->secret_file, err, sizeof err);
    if (!secret) {
        fprintf (stderr, "orderbus-bench: %s\n", err);
        return -1;
    }
    s_pad_count = tables;
    s_pads = calloc ((size_t) (tables ? tables : 1), sizeof *s_pads);
    s_kitchen = s_mint (secret, BUS_TOKEN_KITCHEN, NULL);
    int rc = s_pads && s_kitchen ? 0 : -1;
    for (int k = 0; rc == 0 && k < tables; k++) {
        char label[16];
        bench_table_label (k, label, sizeof label);
        if (!(s_pads[k] = s_mint (secret, BUS_TOKEN_PAD, label)))
            rc = -1;
    }
    bus_secret_destroy (&secret);
    return rc;
}

const char *
bench_auth_token (int table)
{
    if (table >= 0 && table < s_pad_count && s_pads[table])
        return s_pads[table];
    return s_kitchen;
}

void
bench_auth_destroy (void)
{
    for (int k = 0; k < s_pad_count; k++)
        free (s_pads[k]);
    free (s_pads);
    free (s_kitchen);
    s_pads = NULL;
    s_kitchen = NULL;
    s_pad_count = 0;
}
