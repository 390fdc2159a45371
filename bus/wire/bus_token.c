/*  bus_token.c — signed access tokens and the server secret that signs them.

    All cryptography is libsodium's: crypto_auth (HMAC-SHA512-256) to sign,
    crypto_auth_verify (constant time) to check, its base64 and hex codecs,
    randombytes for the secret and sodium_memzero to wipe it.  Verification
    checks the MAC over the token text before decoding anything else, so a
    forged token never reaches the claims parser.  */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include <sodium.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_token.h"

#define S_PREFIX           "ob1."
#define S_PREFIX_LEN       (sizeof S_PREFIX - 1)
#define S_VARIANT          sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define S_B64_LEN(bin_len) (sodium_base64_ENCODED_LEN (bin_len, S_VARIANT) - 1)
//  Longest claims text: "manager/" + site + "/" + table + "/" + 19 digits
#define S_PAYLOAD_MAX 160
#define S_SECRET_HEX  (2 * crypto_auth_KEYBYTES)

//  Every token mint can write must pass verify's length check
_Static_assert(sizeof "manager" + BUS_NAME_MAX + BUS_TABLE_MAX + 19
                   <= S_PAYLOAD_MAX,
               "claims text fits S_PAYLOAD_MAX");
_Static_assert(S_PREFIX_LEN + S_B64_LEN (S_PAYLOAD_MAX) + 1
                       + S_B64_LEN (crypto_auth_BYTES)
                   <= BUS_TOKEN_MAX,
               "a minted token fits BUS_TOKEN_MAX");

struct _bus_secret_t {
    unsigned char key[crypto_auth_KEYBYTES]; /* wiped on destroy */
};

static const char *s_role_names[] = { NULL, "pad", "kitchen", "manager" };

//  --------------------------------------------------------------------------
//  Roles and claims

const char *
bus_token_role_name (bus_token_role_t role)
{
    return role >= BUS_TOKEN_PAD && role <= BUS_TOKEN_MANAGER
               ? s_role_names[role]
               : NULL;
}

int
bus_token_role_parse (const char *name, bus_token_role_t *role)
{
    for (int r = BUS_TOKEN_PAD; r <= BUS_TOKEN_MANAGER; r++)
        if (name && streq (name, s_role_names[r])) {
            *role = (bus_token_role_t) r;
            return 0;
        }
    return BUS_ERR_INVALID;
}

bool
bus_token_valid_site (const char *site)
{
    size_t length = site ? strlen (site) : 0;
    if (length == 0 || length >= BUS_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = site[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool
s_claims_valid (const bus_claims_t *claims)
{
    if (!bus_token_role_name (claims->role)
        || !bus_token_valid_site (claims->site) || claims->expires_ms <= 0)
        return false;
    //  A pad is bound to exactly one table, staff to none
    return claims->role == BUS_TOKEN_PAD ? bus_valid_table (claims->table)
                                         : claims->table[0] == '\0';
}

bool
bus_token_is_staff (const bus_claims_t *claims)
{
    return claims->role == BUS_TOKEN_KITCHEN
           || claims->role == BUS_TOKEN_MANAGER;
}

int
bus_token_allows_table (const bus_claims_t *claims, const char *table)
{
    if (bus_token_is_staff (claims))
        return 0;
    bool own =
        claims->role == BUS_TOKEN_PAD && table && streq (claims->table, table);
    return own ? 0 : BUS_ERR_FORBIDDEN;
}

int
bus_token_allows_role (const bus_claims_t *claims, bus_token_role_t role)
{
    bool ok = bus_token_role_name (claims->role) && claims->role >= role;
    return ok ? 0 : BUS_ERR_FORBIDDEN;
}

//  --------------------------------------------------------------------------
//  Minting

//  "ob1.<base64url payload>.<base64url mac>" over length bytes of payload,
//  as a new string
static char *
s_sign (const bus_secret_t *secret, const char *payload, size_t length)
{
    assert (length <= S_PAYLOAD_MAX);
    char token[BUS_TOKEN_MAX + 1] = S_PREFIX;
    sodium_bin2base64 (token + S_PREFIX_LEN, sizeof token - S_PREFIX_LEN,
                       (const unsigned char *) payload, length, S_VARIANT);
    size_t signed_len = strlen (token);
    unsigned char mac[crypto_auth_BYTES];
    crypto_auth (mac, (const unsigned char *) token, signed_len, secret->key);
    token[signed_len] = '.';
    sodium_bin2base64 (token + signed_len + 1, sizeof token - signed_len - 1,
                       mac, sizeof mac, S_VARIANT);
    return strdup (token);
}

char *
bus_token_mint (const bus_secret_t *secret, const bus_claims_t *claims)
{
    assert (secret && claims);
    if (!s_claims_valid (claims))
        return NULL;
    char payload[S_PAYLOAD_MAX + 1];
    int length = snprintf (payload, sizeof payload, "%s/%s/%s/%" PRId64,
                           bus_token_role_name (claims->role), claims->site,
                           claims->table, claims->expires_ms);
    assert (length > 0 && length <= S_PAYLOAD_MAX);
    return s_sign (secret, payload, (size_t) length);
}

//  --------------------------------------------------------------------------
//  Verification

//  Decode base64url text[begin, end) into bin[cap], all of it or nothing.
//  Returns the decoded length, or -1.
static long
s_decode (const char *begin, const char *end, unsigned char *bin, size_t cap)
{
    size_t bin_len;
    const char *stop;
    if (sodium_base642bin (bin, cap, begin, (size_t) (end - begin), NULL,
                           &bin_len, &stop, S_VARIANT)
            != 0
        || stop != end)
        return -1;
    return (long) bin_len;
}

//  Milliseconds as mint writes them: 1..19 digits, no sign, no leading 0
static bool
s_parse_ms (const char *text, int64_t *ms)
{
    size_t length = strlen (text);
    if (length == 0 || length > 19 || text[0] == '0'
        || strspn (text, "0123456789") != length)
        return false;
    errno = 0;
    long long value = strtoll (text, NULL, 10);
    *ms = value;
    return errno == 0;
}

//  Parse "<role>/<site>/<table>/<expires_ms>" (NUL-terminated, cut in
//  place).  A signed payload that does not parse is still refused: it can
//  only come from another format version or a bug, never be guessed at.
static int
s_parse_claims (char *text, bus_claims_t *claims)
{
    char *fields[4];
    char *field = text;
    for (size_t i = 0; i < 4; i++) {
        fields[i] = field;
        char *slash = strchr (field, '/');
        if ((slash != NULL) != (i < 3))
            return BUS_ERR_UNAUTHORIZED;
        if (slash) {
            *slash = '\0';
            field = slash + 1;
        }
    }
    if (bus_token_role_parse (fields[0], &claims->role) != 0
        || bus_strlcpy (claims->site, fields[1], sizeof claims->site) != 0
        || bus_strlcpy (claims->table, fields[2], sizeof claims->table) != 0
        || !s_parse_ms (fields[3], &claims->expires_ms)
        || !s_claims_valid (claims))
        return BUS_ERR_UNAUTHORIZED;
    return 0;
}

//  The '.' before token's MAC, or NULL if token is not shaped as one
static const char *
s_shape (const char *token)
{
    size_t length = token ? strnlen (token, BUS_TOKEN_MAX + 1) : 0;
    if (length == 0 || length > BUS_TOKEN_MAX
        || strncmp (token, S_PREFIX, S_PREFIX_LEN) != 0)
        return NULL;
    return memchr (token + S_PREFIX_LEN, '.', length - S_PREFIX_LEN);
}

//  The claims of the payload before dot, signed or not
static int
s_payload_claims (const char *token, const char *dot, bus_claims_t *claims)
{
    unsigned char payload[S_PAYLOAD_MAX + 1];
    long payload_len =
        s_decode (token + S_PREFIX_LEN, dot, payload, S_PAYLOAD_MAX);
    if (payload_len <= 0 || memchr (payload, '\0', (size_t) payload_len))
        return BUS_ERR_UNAUTHORIZED;
    payload[payload_len] = '\0';
    return s_parse_claims ((char *) payload, claims);
}

//  Everything but the expiry: shape, MAC, then claims
static int
s_verify (const bus_secret_t *secret, const char *token, bus_claims_t *claims)
{
    const char *dot = s_shape (token);
    unsigned char mac[crypto_auth_BYTES];
    if (!dot
        || s_decode (dot + 1, dot + strlen (dot), mac, sizeof mac)
               != crypto_auth_BYTES
        || crypto_auth_verify (mac, (const unsigned char *) token,
                               (size_t) (dot - token), secret->key)
               != 0)
        return BUS_ERR_UNAUTHORIZED;
    return s_payload_claims (token, dot, claims);
}

int
bus_token_peek (const char *token, bus_claims_t *claims)
{
    const char *dot = s_shape (token);
    int rc = dot ? s_payload_claims (token, dot, claims) : BUS_ERR_UNAUTHORIZED;
    if (rc != 0)
        *claims = (bus_claims_t){ 0 };
    return rc;
}

int
bus_token_verify (const bus_secret_t *secret, const char *token, int64_t now_ms,
                  bus_claims_t *claims)
{
    assert (secret && claims);
    bus_claims_t parsed = { 0 };
    int rc = s_verify (secret, token, &parsed);
    if (rc == 0 && parsed.expires_ms <= now_ms)
        rc = BUS_ERR_EXPIRED;
    *claims = rc == 0 ? parsed : (bus_claims_t){ 0 };
    return rc;
}

//  --------------------------------------------------------------------------
//  The secret file

//  Read up to cap bytes; the count read (short only at end of file) or -1
static ssize_t
s_read_all (int fd, char *buf, size_t cap)
{
    size_t done = 0;
    while (done < cap) {
        ssize_t n = read (fd, buf + done, cap - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (size_t) n;
    }
    return (ssize_t) done;
}

static int
s_write_all (int fd, const char *buf, size_t length)
{
    while (length > 0) {
        ssize_t n = write (fd, buf, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        length -= (size_t) n;
    }
    return 0;
}

//  Read the file's text into text[S_SECRET_HEX + 2]; its length or -1
static ssize_t
s_read_secret (const char *path, char *text, char *err, size_t err_cap)
{
    //  O_NONBLOCK: a FIFO in its place must fail the check below, not hang
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "%s: cannot read secret file: %s", path,
                       strerror (errno));
        return -1;
    }
    struct stat st;
    ssize_t length = -1;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "%s: secret file is not a regular file", path);
    //  Whoever can read it can mint any token, whoever can write it can
    //  swap it: a file others may touch is refused, not used with a warning
    //  (a warning in a log nobody reads left sites open for good)
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "%s: secret file has mode %04o: group or others may "
                       "access it, and anyone who can read it can mint "
                       "tokens; refused: chmod 600 it",
                       path, (unsigned) (st.st_mode & 07777));
    else if ((length = s_read_all (fd, text, S_SECRET_HEX + 2)) < 0)
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "%s: cannot read secret file: %s", path,
                       strerror (errno));
    close (fd);
    return length;
}

bus_secret_t *
bus_secret_load (const char *path, char *err, size_t err_cap)
{
    if (sodium_init () < 0) {
        bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                       "%s: cannot initialise libsodium", path);
        return NULL;
    }
    char text[S_SECRET_HEX + 2];
    ssize_t length = s_read_secret (path, text, err, err_cap);
    if (length < 0)
        return NULL;
    bus_secret_t *self = calloc (1, sizeof *self);
    size_t key_len = 0;
    const char *stop = NULL;
    bool shaped = length == S_SECRET_HEX
                  || (length == S_SECRET_HEX + 1 && text[S_SECRET_HEX] == '\n');
    bool decoded = self && shaped
                   && sodium_hex2bin (self->key, sizeof self->key, text,
                                      S_SECRET_HEX, NULL, &key_len, &stop)
                          == 0
                   && key_len == sizeof self->key
                   && stop == text + S_SECRET_HEX;
    sodium_memzero (text, sizeof text);
    if (!decoded) {
        if (self)
            bus_error_set (
                err, err_cap, BUS_ERR_CONFIG,
                "%s: a secret file holds exactly %d hex characters and a "
                "newline (create one with 'orderbus token "
                "--create-secret')",
                path, S_SECRET_HEX);
        else
            bus_error_set (err, err_cap, BUS_ERR_CONFIG, "%s: out of memory",
                           path);
        bus_secret_destroy (&self);
    }
    return self;
}

int
bus_secret_create (const char *path, char *err, size_t err_cap)
{
    if (sodium_init () < 0)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "%s: cannot initialise libsodium", path);
    //  O_EXCL: rotating the secret revokes every token, so it must never
    //  happen by accident
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "%s: already exists, not overwritten", path);
    if (fd < 0)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "%s: cannot create secret file: %s", path,
                              strerror (errno));
    unsigned char key[crypto_auth_KEYBYTES];
    char text[S_SECRET_HEX + 1];
    crypto_auth_keygen (key);
    sodium_bin2hex (text, sizeof text, key, sizeof key);
    text[S_SECRET_HEX] = '\n';
    int rc =
        s_write_all (fd, text, sizeof text) == 0 && fsync (fd) == 0 ? 0 : errno;
    sodium_memzero (key, sizeof key);
    sodium_memzero (text, sizeof text);
    if (close (fd) != 0 && rc == 0)
        rc = errno;
    if (rc == 0)
        return 0;
    unlink (path);
    return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                          "%s: cannot write secret file: %s", path,
                          strerror (rc));
}

void
bus_secret_destroy (bus_secret_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sodium_memzero ((*self_p)->key, sizeof (*self_p)->key);
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_NOW           1750000000000LL   //  June 2025, in ms
#define S_TEST_PATH_MAX 256

static void
s_test_write (const char *dir, const char *name, const char *text, char *path,
              size_t cap)
{
    snprintf (path, cap, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fputs (text, file) >= 0);
    assert (fclose (file) == 0);
    assert (chmod (path, 0600) == 0);
}

//  Load must fail with a message holding why
static void
s_test_bad_secret (const char *path, const char *why, bool verbose)
{
    char err[BUS_ERROR_MAX] = "";
    bus_secret_t *secret = bus_secret_load (path, err, sizeof err);
    assert (secret == NULL);
    if (verbose || !strstr (err, why))
        printf ("    %s\n", err);
    assert (strstr (err, why));
}

static void
s_test_secret_files (const char *dir, bool verbose)
{
    static const char *hex = "00112233445566778899aabbccddeeff"
                             "00112233445566778899AABBCCDDEEFF";
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        { "", "exactly 64 hex" },
        { "0011\n", "exactly 64 hex" },
        { "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n",
          "exactly 64 hex" },
        { "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0\n",
          "exactly 64 hex" },
        { "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n",
          "exactly 64 hex" },
        { "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n",
          "exactly 64 hex" },
        { "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\n",
          "exactly 64 hex" },
        { " 00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n",
          "exactly 64 hex" },
    };
    char path[S_TEST_PATH_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_test_write (dir, "bad.key", bad[i].text, path, sizeof path);
        s_test_bad_secret (path, bad[i].why, verbose);
    }
    //  with or without the newline; upper or lower case
    char text[80];
    snprintf (text, sizeof text, "%s\n", hex);
    s_test_write (dir, "bad.key", text, path, sizeof path);
    bus_secret_t *secret = bus_secret_load (path, NULL, 0);
    assert (secret);
    bus_secret_destroy (&secret);
    s_test_write (dir, "bad.key", hex, path, sizeof path);
    secret = bus_secret_load (path, NULL, 0);
    assert (secret);
    bus_secret_destroy (&secret);
    bus_secret_destroy (&secret);
    //  too open, by group or others, for reading or writing: refused
    static const mode_t open_modes[] = { 0644, 0640, 0604, 0620, 0602, 0660 };
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        assert (chmod (path, open_modes[i]) == 0);
        s_test_bad_secret (path, "group or others may access it", verbose);
        s_test_bad_secret (path, "chmod 600", verbose);
    }
    //  the owner's alone: loads, read-only too
    assert (chmod (path, 0400) == 0);
    secret = bus_secret_load (path, NULL, 0);
    assert (secret);
    bus_secret_destroy (&secret);
    assert (chmod (path, 0600) == 0);
    assert (unlink (path) == 0);

    s_test_bad_secret (path, "No such file", verbose);
    s_test_bad_secret (dir, "not a regular file", verbose);
    char err[BUS_ERROR_MAX];
    snprintf (path, sizeof path, "%s/no/such/dir.key", dir);
    assert (bus_secret_create (path, err, sizeof err) == BUS_ERR_CONFIG);
    assert (strstr (err, "cannot create secret file"));
}

//  Create, refuse to overwrite, load: the file is 64 hex + '\n', mode 0600
static bus_secret_t *
s_test_secret_create (const char *dir, const char *name)
{
    char path[S_TEST_PATH_MAX], err[BUS_ERROR_MAX], text[80];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    assert (bus_secret_create (path, err, sizeof err) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    FILE *file = fopen (path, "r");
    assert (file && fgets (text, sizeof text, file));
    fclose (file);
    assert (strlen (text) == S_SECRET_HEX + 1 && text[S_SECRET_HEX] == '\n');
    assert (strspn (text, "0123456789abcdef") == S_SECRET_HEX);

    assert (bus_secret_create (path, err, sizeof err) == BUS_ERR_CONFIG);
    assert (strstr (err, "already exists"));
    char again[80];
    file = fopen (path, "r");
    assert (file && fgets (again, sizeof again, file));
    fclose (file);
    assert (streq (text, again));

    bus_secret_t *secret = bus_secret_load (path, err, sizeof err);
    assert (secret);
    assert (unlink (path) == 0);
    return secret;
}

static bus_claims_t
s_claims (bus_token_role_t role, const char *site, const char *table,
          int64_t expires_ms)
{
    bus_claims_t claims = { 0 };
    claims.role = role;
    assert (bus_strlcpy (claims.site, site, sizeof claims.site) == 0);
    assert (bus_strlcpy (claims.table, table, sizeof claims.table) == 0);
    claims.expires_ms = expires_ms;
    return claims;
}

static void
s_test_round_trip (const bus_secret_t *secret, const bus_secret_t *other,
                   bool verbose)
{
    bus_claims_t cases[] = {
        s_claims (BUS_TOKEN_PAD, "main", "T12", S_NOW + 1),
        s_claims (BUS_TOKEN_PAD, "bistro-92.terrace_2",
                  "Patio 3 (by the \"big\" tree)", INT64_MAX),
        s_claims (BUS_TOKEN_KITCHEN, "main", "", S_NOW + 3600000),
        s_claims (BUS_TOKEN_MANAGER, "m", "", 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *token = bus_token_mint (secret, &cases[i]);
        assert (token && strlen (token) <= BUS_TOKEN_MAX);
        assert (strncmp (token, S_PREFIX, S_PREFIX_LEN) == 0);
        if (verbose)
            printf ("    %s\n", token);
        bus_claims_t claims;
        int64_t before = cases[i].expires_ms - 1;
        assert (bus_token_verify (secret, token, before, &claims) == 0);
        assert (memcmp (&claims, &cases[i], sizeof claims) == 0);
        assert (bus_token_verify (secret, token, cases[i].expires_ms, &claims)
                == BUS_ERR_EXPIRED);
        assert (claims.role == 0 && claims.site[0] == '\0');
        assert (bus_token_verify (other, token, before, &claims)
                == BUS_ERR_UNAUTHORIZED);
        //  peek reads the claims whoever signed it, expired or not
        assert (bus_token_peek (token, &claims) == 0);
        assert (memcmp (&claims, &cases[i], sizeof claims) == 0);
        //  the same claims always give the same token
        char *again = bus_token_mint (secret, &cases[i]);
        assert (streq (token, again));
        free (again);
        free (token);
    }
}

//  Every single-character change, deletion and addition is refused
static void
s_test_tampering (const bus_secret_t *secret)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                   "qrstuvwxyz0123456789-_.=+/ \n";
    bus_claims_t claims = s_claims (BUS_TOKEN_PAD, "main", "T12", S_NOW + 1);
    char *token = bus_token_mint (secret, &claims);
    size_t length = strlen (token);
    bus_claims_t peeked;
    assert (bus_token_peek (NULL, &peeked) == BUS_ERR_UNAUTHORIZED);
    assert (bus_token_peek ("ob1.e30", &peeked) == BUS_ERR_UNAUTHORIZED);
    assert (bus_token_peek ("ob1.!.x", &peeked) == BUS_ERR_UNAUTHORIZED);
    assert (peeked.site[0] == '\0');
    char copy[BUS_TOKEN_MAX + 2];
    for (size_t i = 0; i < length; i++) {
        for (const char *c = alphabet; *c; c++) {
            if (*c == token[i])
                continue;
            memcpy (copy, token, length + 1);
            copy[i] = *c;
            assert (bus_token_verify (secret, copy, S_NOW, &claims)
                    == BUS_ERR_UNAUTHORIZED);
        }
        memcpy (copy, token, i);
        memcpy (copy + i, token + i + 1, length - i);
        assert (bus_token_verify (secret, copy, S_NOW, &claims)
                == BUS_ERR_UNAUTHORIZED);
    }
    for (const char *c = alphabet; *c; c++) {
        snprintf (copy, sizeof copy, "%s%c", token, *c);
        assert (bus_token_verify (secret, copy, S_NOW, &claims)
                == BUS_ERR_UNAUTHORIZED);
    }
    assert (bus_token_verify (secret, token, S_NOW, &claims) == 0);
    free (token);
}

static void
s_test_garbage (const bus_secret_t *secret)
{
    bus_claims_t claims = s_claims (BUS_TOKEN_KITCHEN, "main", "", S_NOW + 1);
    char *token = bus_token_mint (secret, &claims);
    const char *mac = strrchr (token, '.');
    char text[2 * BUS_TOKEN_MAX];
    const char *cases[] = {
        "",      "ob1",      "ob1.",
        "ob1..", "ob1...",   "ob1.x.y",
        ".",     "Bearer x", "ob1.a2l0Y2hlbi9tYWluLy8xNzUwMDAwMDAwMDAx",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert (bus_token_verify (secret, cases[i], S_NOW, &claims)
                == BUS_ERR_UNAUTHORIZED);
    assert (bus_token_verify (secret, NULL, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    //  parts missing, doubled, or wrapped
    snprintf (text, sizeof text, "%.*s", (int) (mac - token), token);
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    snprintf (text, sizeof text, "ob1%s", mac);
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    snprintf (text, sizeof text, "%s%s", token, mac);
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    snprintf (text, sizeof text, "ob2%s", token + 3);
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    snprintf (text, sizeof text, "Bearer %s", token);
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    //  too long, even when it starts with a valid token
    memset (text, 'A', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    memcpy (text, token, strlen (token));
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    text[BUS_TOKEN_MAX + 1] = '\0';
    assert (bus_token_verify (secret, text, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    free (token);
}

//  Payloads that carry a valid MAC but break the format: still refused
static void
s_test_signed_garbage (const bus_secret_t *secret)
{
    static const char *payloads[] = {
        "pad/main/T12",
        "pad/main/T12/1/x",
        "chef/main//1750000000001",
        "pad/main//1750000000001",
        "kitchen/main/T1/1750000000001",
        "pad/ma in/T1/1750000000001",
        "pad//T1/1750000000001",
        "pad/main/T1/01750000000001",
        "pad/main/T1/-1750000000001",
        "pad/main/T1/+1750000000001",
        "pad/main/T1/ 1750000000001",
        "pad/main/T1/99999999999999999999",
        "pad/main/T1/9999999999999999999",
        "pad/main/T1/",
        "pad/main/T1/0",
        "PAD/main/T1/1750000000001",
        "pad/main/T\x01/1750000000001",
        "",
    };
    bus_claims_t claims;
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *token = s_sign (secret, payloads[i], strlen (payloads[i]));
        assert (bus_token_verify (secret, token, S_NOW, &claims)
                == BUS_ERR_UNAUTHORIZED);
        free (token);
    }
    //  a NUL inside the payload
    static const char nul[] = "pad/main/T1\0/1750000000001";
    char *token = s_sign (secret, nul, sizeof nul - 1);
    assert (bus_token_verify (secret, token, S_NOW, &claims)
            == BUS_ERR_UNAUTHORIZED);
    free (token);
    //  and the well-formed control case
    static const char good[] = "pad/main/T1/1750000000001";
    token = s_sign (secret, good, sizeof good - 1);
    assert (bus_token_verify (secret, token, S_NOW, &claims) == 0);
    assert (claims.role == BUS_TOKEN_PAD && streq (claims.table, "T1"));
    free (token);
}

static void
s_test_mint_refuses (const bus_secret_t *secret)
{
    bus_claims_t cases[] = {
        s_claims (BUS_TOKEN_PAD, "main", "", S_NOW),
        s_claims (BUS_TOKEN_PAD, "main", "T/1", S_NOW),
        s_claims (BUS_TOKEN_PAD, "main", "T\t1", S_NOW),
        s_claims (BUS_TOKEN_KITCHEN, "main", "T1", S_NOW),
        s_claims (BUS_TOKEN_MANAGER, "ma/in", "", S_NOW),
        s_claims (BUS_TOKEN_MANAGER, "ma in", "", S_NOW),
        s_claims (BUS_TOKEN_MANAGER, "", "", S_NOW),
        s_claims (BUS_TOKEN_MANAGER, "main", "", 0),
        s_claims (BUS_TOKEN_MANAGER, "main", "", -5),
        s_claims ((bus_token_role_t) 0, "main", "", S_NOW),
        s_claims ((bus_token_role_t) 4, "main", "", S_NOW),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert (bus_token_mint (secret, &cases[i]) == NULL);
    char site[BUS_NAME_MAX];
    memset (site, 's', sizeof site - 1);
    site[sizeof site - 1] = '\0';
    assert (bus_token_valid_site (site));
    assert (!bus_token_valid_site (NULL));
}

static void
s_test_permissions (void)
{
    bus_claims_t pad = s_claims (BUS_TOKEN_PAD, "main", "T12", S_NOW);
    bus_claims_t kitchen = s_claims (BUS_TOKEN_KITCHEN, "main", "", S_NOW);
    bus_claims_t manager = s_claims (BUS_TOKEN_MANAGER, "main", "", S_NOW);
    bus_claims_t none = { 0 };
    assert (bus_token_allows_table (&pad, "T12") == 0);
    assert (bus_token_allows_table (&pad, "T1") == BUS_ERR_FORBIDDEN);
    assert (bus_token_allows_table (&pad, "T120") == BUS_ERR_FORBIDDEN);
    assert (bus_token_allows_table (&pad, "t12") == BUS_ERR_FORBIDDEN);
    assert (bus_token_allows_table (&pad, NULL) == BUS_ERR_FORBIDDEN);
    assert (bus_token_allows_table (&kitchen, "T1") == 0);
    assert (bus_token_allows_table (&manager, "T99") == 0);
    assert (bus_token_allows_table (&none, "") == BUS_ERR_FORBIDDEN);
    assert (!bus_token_is_staff (&pad) && !bus_token_is_staff (&none));
    assert (bus_token_is_staff (&kitchen) && bus_token_is_staff (&manager));

    assert (bus_token_allows_role (&pad, BUS_TOKEN_PAD) == 0);
    assert (bus_token_allows_role (&pad, BUS_TOKEN_KITCHEN)
            == BUS_ERR_FORBIDDEN);
    assert (bus_token_allows_role (&kitchen, BUS_TOKEN_KITCHEN) == 0);
    assert (bus_token_allows_role (&kitchen, BUS_TOKEN_MANAGER)
            == BUS_ERR_FORBIDDEN);
    assert (bus_token_allows_role (&manager, BUS_TOKEN_KITCHEN) == 0);
    assert (bus_token_allows_role (&manager, BUS_TOKEN_MANAGER) == 0);
    assert (bus_token_allows_role (&none, BUS_TOKEN_PAD) == BUS_ERR_FORBIDDEN);

    bus_token_role_t role;
    assert (bus_token_role_parse ("manager", &role) == 0
            && role == BUS_TOKEN_MANAGER);
    assert (bus_token_role_parse ("Manager", &role) == BUS_ERR_INVALID);
    assert (bus_token_role_parse (NULL, &role) == BUS_ERR_INVALID);
    assert (streq (bus_token_role_name (BUS_TOKEN_KITCHEN), "kitchen"));
    assert (bus_token_role_name ((bus_token_role_t) 0) == NULL);
}

void
bus_token_test (bool verbose)
{
    printf (" * bus_token: ");
    if (verbose)
        printf ("\n");
    char dir[] = "/tmp/orderbus-token-XXXXXX";
    assert (mkdtemp (dir));
    s_test_secret_files (dir, verbose);
    bus_secret_t *secret = s_test_secret_create (dir, "a.key");
    bus_secret_t *other = s_test_secret_create (dir, "b.key");
    s_test_round_trip (secret, other, verbose);
    s_test_tampering (secret);
    s_test_garbage (secret);
    s_test_signed_garbage (secret);
    s_test_mint_refuses (secret);
    s_test_permissions ();
    bus_secret_destroy (&secret);
    bus_secret_destroy (&other);
    assert (other == NULL);
    assert (rmdir (dir) == 0);
    printf ("OK\n");
}
