/*  fuzz_token.c — the token verifier (bus_token_verify), which every
    request and WebSocket of the gateway and the edge goes through.

    The first byte picks how the rest is used: as a token as it comes
    (the MAC is checked before anything is decoded, so this reaches the
    framing and base64 only), or as the claims text of a token signed with
    the target's own secret, which takes the input to the claims parser.
    A token that verifies names valid claims, and minting those claims
    again gives the very same text: one spelling per token.  */

#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include <sodium.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_token.h"
#include "fuzz.h"

#define S_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

//  The secret every token here is signed with: 32 bytes, 0x00..0x1f
static bus_secret_t *s_secret;
static unsigned char s_key[crypto_auth_KEYBYTES];

static void
s_setup (void)
{
    char path[] = "/tmp/fuzz-token-secret-XXXXXX";
    int fd = mkstemp (path);
    FUZZ_CHECK (fd >= 0);
    char hex[2 * sizeof s_key + 2];
    for (size_t i = 0; i < sizeof s_key; i++)
        s_key[i] = (unsigned char) i;
    sodium_bin2hex (hex, sizeof hex, s_key, sizeof s_key);
    strcat (hex, "\n");
    FUZZ_CHECK (write (fd, hex, strlen (hex)) == (ssize_t) strlen (hex));
    close (fd);
    char err[256];
    s_secret = bus_secret_load (path, err, sizeof err);
    unlink (path);
    FUZZ_CHECK (s_secret);
}

//  "ob1.<payload>.<mac>" over size bytes of claims, into token[cap]
static void
s_sign (const uint8_t *claims, size_t size, char *token, size_t cap)
{
    strcpy (token, "ob1.");
    sodium_bin2base64 (token + 4, cap - 4, claims, size, S_VARIANT);
    size_t signed_len = strlen (token);
    unsigned char mac[crypto_auth_BYTES];
    crypto_auth (mac, (const unsigned char *) token, signed_len, s_key);
    token[signed_len] = '.';
    sodium_bin2base64 (token + signed_len + 1, cap - signed_len - 1, mac,
                       sizeof mac, S_VARIANT);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_secret)
        s_setup ();
    if (size < 1 || size > 4 * BUS_TOKEN_MAX)
        return 0;
    char *token = malloc (8 * BUS_TOKEN_MAX);
    FUZZ_CHECK (token);
    if (data[0] & 1)
        s_sign (data + 1, size - 1, token, 8 * BUS_TOKEN_MAX);
    else {
        memcpy (token, data + 1, size - 1);
        token[size - 1] = '\0';
    }
    bus_claims_t claims;
    int rc = bus_token_verify (s_secret, token, 1, &claims);
    FUZZ_CHECK (rc == 0 || rc == BUS_ERR_UNAUTHORIZED || rc == BUS_ERR_EXPIRED);
    if (rc == 0) {
        FUZZ_CHECK (bus_token_role_name (claims.role)
                    && bus_token_valid_site (claims.site));
        FUZZ_CHECK (claims.role == BUS_TOKEN_PAD
                        ? bus_valid_table (claims.table)
                        : claims.table[0] == '\0');
        char *again = bus_token_mint (s_secret, &claims);
        FUZZ_CHECK (again && strcmp (again, token) == 0);
        free (again);
    }
    free (token);
    return 0;
}
