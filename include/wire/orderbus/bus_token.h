/*  bus_token.h — signed access tokens and the server secret that signs them.

    A token names who may do what, until when, and is signed with the
    site's secret (HMAC-SHA512-256, libsodium's crypto_auth), so a server
    checks it with no lookup and nothing stored:

      ob1.<payload>.<mac>

    "ob1" is the format version.  <payload> is the base64url (no padding)
    of the claims as one line of text, four fields joined by '/':

      <role>/<site>/<table>/<expires_ms>      e.g. pad/main/T12/1767225600000
                                                   kitchen/main//1767225600000

    role is pad, kitchen or manager; site is 1..80 of [A-Za-z0-9_.-];
    table is a bus_valid_table label for a pad and empty for staff (neither
    may contain '/', so the split is unambiguous); expires_ms is wall-clock
    milliseconds since the epoch, decimal, no sign or leading zero.
    <mac> is the base64url of crypto_auth over the bytes "ob1.<payload>",
    i.e. over the token text as sent, so there is exactly one valid
    spelling of each token.

    The secret is 32 random bytes kept in a file as 64 hex characters and
    a newline, mode 0600 (a looser one is refused).  Anyone who can read
    it can mint any token.  */

#ifndef BUS_TOKEN_H_INCLUDED
#define BUS_TOKEN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_TOKEN_MAX 512 /* longest token accepted, chars without NUL */

/*  Roles in increasing power: each may do what the ones before may.
    (Not BUS_ROLE_*: those are the node roles of bus_config.h.)  */
typedef enum {
    BUS_TOKEN_PAD = 1, /* a table pad: the menu, its table's cart and orders */
    BUS_TOKEN_KITCHEN, /* all orders, status changes, 86-ing items    */
    BUS_TOKEN_MANAGER  /* also reports                                */
} bus_token_role_t;

typedef struct {
    bus_token_role_t role;
    char site[BUS_NAME_MAX];   /* 1..80 of [A-Za-z0-9_.-]                 */
    char table[BUS_TABLE_MAX]; /* pad: its table; staff: ""               */
    int64_t expires_ms;        /* wall clock, ms since the epoch          */
} bus_claims_t;

typedef struct _bus_secret_t bus_secret_t;

/*  Read the secret file at path: exactly 64 hex characters, optionally
    followed by one newline.  A file that group or others may access in
    any way (any of mode 077) is refused: chmod 600 it.  Returns a new
    secret, or NULL with the reason (prefixed by the path) in
    err[err_cap].  Caller owns it.  */
bus_secret_t *bus_secret_load (const char *path, char *err, size_t err_cap);

/*  Create a secret file at path with 32 fresh random bytes, mode 0600.
    Never overwrites: an existing file is an error.  Returns 0, or
    BUS_ERR_CONFIG with the reason in err[err_cap].  */
int bus_secret_create (const char *path, char *err, size_t err_cap);

/*  Wipe and free.  NULL-safe; sets *self_p to NULL.  */
void bus_secret_destroy (bus_secret_t **self_p);

/*  Sign claims into a token.  Returns a new string (caller frees), or
    NULL if the claims break a rule above (a pad without a valid table,
    staff with a table, a bad site, expires_ms <= 0) or out of memory.  */
char *bus_token_mint (const bus_secret_t *secret, const bus_claims_t *claims);

/*  Check token (may be NULL) against secret at wall-clock time now_ms.
    Returns 0 and fills *claims, or BUS_ERR_UNAUTHORIZED (missing, too
    long, malformed, not signed by this secret), or BUS_ERR_EXPIRED (valid
    signature, expires_ms <= now_ms); *claims is then zeroed.  The MAC is
    compared in constant time before the payload is even decoded.  */
int bus_token_verify (const bus_secret_t *secret, const char *token,
                      int64_t now_ms, bus_claims_t *claims);

/*  The claims token says it carries, WITHOUT checking its signature or
    expiry: for choosing which site's secret to verify it with (a node
    serving several sites), never for trusting it.  0, or
    BUS_ERR_UNAUTHORIZED if it is not shaped as a token (*claims zeroed).  */
int bus_token_peek (const char *token, bus_claims_t *claims);

/*  0 if claims may act on table's cart and orders (a pad only on its own
    table, staff on any), else BUS_ERR_FORBIDDEN.  */
int bus_token_allows_table (const bus_claims_t *claims, const char *table);

/*  0 if claims' role is role or a more powerful one, else
    BUS_ERR_FORBIDDEN.  E.g. status changes need BUS_TOKEN_KITCHEN.  */
int bus_token_allows_role (const bus_claims_t *claims, bus_token_role_t role);

/*  True for kitchen and manager tokens, which see every table.  */
bool bus_token_is_staff (const bus_claims_t *claims);

/*  "pad", "kitchen", "manager"; NULL if role is not one of them.  */
const char *bus_token_role_name (bus_token_role_t role);

/*  Parse a role name; 0 and *role, or BUS_ERR_INVALID.  */
int bus_token_role_parse (const char *name, bus_token_role_t *role);

/*  True if site is 1..80 of [A-Za-z0-9_.-].  */
bool bus_token_valid_site (const char *site);

/*  Selftest.  */
void bus_token_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
