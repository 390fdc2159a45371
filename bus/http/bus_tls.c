/*  bus_tls.c — a server's certificate and key: checked, read, and a
    self-signed pair made (bus_tls.h).  OpenSSL's libcrypto only.  */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_file.h"
#include "orderbus/bus_tls.h"

#define S_PEM_MAX (1024 * 1024)   //  a certificate chain is a few KiB

#define S_CERT "tls/cert (--tls-cert)"
#define S_KEY  "tls/key (--tls-key)"

//  OpenSSL's latest error as text, or "not PEM" if it has none
static const char *
s_ssl_error (char *buf, size_t cap)
{
    unsigned long code = ERR_get_error ();
    ERR_clear_error ();
    if (!code)
        return "no PEM data in it";
    ERR_error_string_n (code, buf, cap);
    return buf;
}

char *
bus_tls_read_pem (const char *path, char *err, size_t err_cap)
{
    struct stat info;
    if (stat (path, &info) != 0) {
        bus_error_set (err, err_cap, -1, "%s: %s", path, strerror (errno));
        return NULL;
    }
    if (!S_ISREG (info.st_mode) || info.st_size > S_PEM_MAX) {
        bus_error_set (err, err_cap, -1,
                       "%s: not a PEM file (a regular file under 1 MiB)", path);
        return NULL;
    }
    zchunk_t *chunk = zchunk_slurp (path, S_PEM_MAX);
    char *text = NULL;
    if (chunk)
        text =
            strndup ((const char *) zchunk_data (chunk), zchunk_size (chunk));
    zchunk_destroy (&chunk);
    if (!text)
        bus_error_set (err, err_cap, -1, "%s: %s", path,
                       access (path, R_OK) ? strerror (errno)
                                           : "out of memory");
    return text;
}

//  The key file's mode: the owner's alone.  0, or -1 with err set.
static int
s_key_mode (const char *key_path, char *err, size_t err_cap)
{
    struct stat info;
    if (stat (key_path, &info) != 0)
        return bus_error_set (err, err_cap, -1, S_KEY " %s: %s", key_path,
                              strerror (errno));
    if (!S_ISREG (info.st_mode))
        return bus_error_set (err, err_cap, -1, S_KEY " %s: not a file",
                              key_path);
    if (info.st_mode & (S_IRWXG | S_IRWXO))
        return bus_error_set (err, err_cap, -1,
                              S_KEY " %s: a private key must be mode 0600 or "
                                    "stricter, not %04o (chmod 600 it)",
                              key_path, (unsigned) (info.st_mode & 07777));
    //  Another user's file, even 0600, is that user's to change
    if (info.st_uid != geteuid () && info.st_uid != 0)
        return bus_error_set (err, err_cap, -1,
                              S_KEY " %s: belongs to uid %u, not to the user "
                                    "running orderbus (uid %u) or root",
                              key_path, (unsigned) info.st_uid,
                              (unsigned) geteuid ());
    return 0;
}

//  OpenSSL's passphrase callback: there is none to give.  Without it an
//  empty passphrase would open a key encrypted with one.
static int
s_no_passphrase (char *buf, int size, int rwflag, void *arg)
{
    (void) buf, (void) size, (void) rwflag, (void) arg;
    return -1;
}

//  Read the certificate and the key; 0, or -1 with err set
static int
s_load (const char *cert_path, const char *key_path, X509 **cert,
        EVP_PKEY **key, char *err, size_t err_cap)
{
    char why[256], read_err[512];
    char *cert_pem = bus_tls_read_pem (cert_path, read_err, sizeof read_err);
    if (!cert_pem)
        return bus_error_set (err, err_cap, -1, S_CERT " %s", read_err);
    //  A key pasted into the certificate's file (a "bundle") would be
    //  readable by anyone who may read the certificate
    if (strstr (cert_pem, "PRIVATE KEY-----")) {
        OPENSSL_cleanse (cert_pem, strlen (cert_pem));
        free (cert_pem);
        return bus_error_set (err, err_cap, -1,
                              S_CERT " %s holds a private key: keep the key "
                                     "in " S_KEY " alone, mode 0600",
                              cert_path);
    }
    BIO *bio = BIO_new_mem_buf (cert_pem, -1);
    *cert = bio ? PEM_read_bio_X509 (bio, NULL, NULL, NULL) : NULL;
    BIO_free (bio);
    free (cert_pem);
    if (!*cert)
        return bus_error_set (err, err_cap, -1,
                              S_CERT " %s: not a PEM certificate (%s)",
                              cert_path, s_ssl_error (why, sizeof why));
    char *key_pem = bus_tls_read_pem (key_path, read_err, sizeof read_err);
    if (!key_pem)
        return bus_error_set (err, err_cap, -1, S_KEY " %s", read_err);
    bio = BIO_new_mem_buf (key_pem, -1);
    //  no passphrase callback: a key that needs one fails here, since
    //  no one is there to type it when a node restarts
    *key =
        bio ? PEM_read_bio_PrivateKey (bio, NULL, s_no_passphrase, NULL) : NULL;
    BIO_free (bio);
    OPENSSL_cleanse (key_pem, strlen (key_pem));
    free (key_pem);
    if (!*key)
        return bus_error_set (err, err_cap, -1,
                              S_KEY " %s: not an unencrypted PEM private key "
                                    "(%s)",
                              key_path, s_ssl_error (why, sizeof why));
    return 0;
}

int
bus_tls_check (const char *cert_path, const char *key_path, char *err,
               size_t err_cap)
{
    if (!*cert_path || !*key_path)
        return bus_error_set (err, err_cap, -1,
                              "TLS needs both " S_CERT " and " S_KEY
                              " (make a test pair with 'orderbus tls new')");
    if (s_key_mode (key_path, err, err_cap) != 0)
        return -1;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = s_load (cert_path, key_path, &cert, &key, err, err_cap);
    if (rc == 0 && X509_check_private_key (cert, key) != 1) {
        ERR_clear_error ();
        rc = bus_error_set (err, err_cap, -1,
                            S_KEY " %s is not the key of " S_CERT " %s",
                            key_path, cert_path);
    }
    if (rc == 0 && X509_cmp_current_time (X509_get0_notAfter (cert)) < 0)
        zsys_warning ("tls: " S_CERT " %s has expired: browsers will refuse "
                      "it",
                      cert_path);
    if (rc == 0 && X509_cmp_current_time (X509_get0_notBefore (cert)) > 0)
        zsys_warning ("tls: " S_CERT " %s is not valid yet (is this host's "
                      "clock right?): browsers will refuse it",
                      cert_path);
    X509_free (cert);
    EVP_PKEY_free (key);
    return rc;
}

//  ---------------------------------------------------------------------
//  A self-signed pair

//  Add extension nid with value (OpenSSL's config syntax) to cert
static bool
s_add_ext (X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb (&ctx);
    X509V3_set_ctx (&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
    bool ok = ext && X509_add_ext (cert, ext, -1) == 1;
    X509_EXTENSION_free (ext);
    return ok;
}

//  A host name of labels of letters, digits and '-' (not first or last),
//  1 to 63 each, 253 in all; a wildcard only as a whole first label of a
//  name with two more ("*.site.local")
static bool
s_host_valid (const char *name)
{
    size_t len = strlen (name), labels = 0;
    if (len == 0 || len > 253)
        return false;
    bool wild = strncmp (name, "*.", 2) == 0;
    for (const char *p = wild ? name + 2 : name; *p; labels++) {
        size_t label = strspn (p, "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
        if (label == 0 || label > 63 || p[0] == '-' || p[label - 1] == '-'
            || (p[label] && p[label] != '.')
            || (p[label] == '.' && !p[label + 1]))
            return false;
        p += label + (p[label] == '.');
    }
    return !wild || labels >= 2;
}

//  "DNS:a,IP:127.0.0.1,..." for names; 0, or -1 with err set for a name
//  that is neither an address nor a host name
static int
s_alt_names (const char *const *names, size_t count, char *buf, size_t cap,
             char *err, size_t err_cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        const char *name = names[i];
        unsigned char addr[16];
        bool ip = inet_pton (AF_INET, name, addr) == 1
                  || inet_pton (AF_INET6, name, addr) == 1;
        bool host = !ip && s_host_valid (name);
        if (!ip && !host)
            return bus_error_set (err, err_cap, -1,
                                  "--name '%s': not a host name or an IP "
                                  "address",
                                  name);
        int n = snprintf (buf + used, cap - used, "%s%s:%s", i ? "," : "",
                          ip ? "IP" : "DNS", name);
        if (n < 0 || (size_t) n >= cap - used)
            return bus_error_set (err, err_cap, -1, "too many names");
        used += (size_t) n;
    }
    return 0;
}

//  The certificate for key, signed by it; NULL on failure
static X509 *
s_cert_new (EVP_PKEY *key, const char *alt_names, const char *common_name,
            int days)
{
    X509 *cert = X509_new ();
    unsigned char serial[16];
    BIGNUM *number = NULL;
    bool ok = cert && RAND_bytes (serial, sizeof serial) == 1;
    if (ok) {
        serial[0] &= 0x7f;   //  positive, as RFC 5280 asks
        number = BN_bin2bn (serial, sizeof serial, NULL);
    }
    X509_NAME *name = cert ? X509_get_subject_name (cert) : NULL;
    ok = ok && number && X509_set_version (cert, 2) == 1
         && BN_to_ASN1_INTEGER (number, X509_get_serialNumber (cert))
         //  an hour back: a client whose clock is a little behind
         && X509_gmtime_adj (X509_getm_notBefore (cert), -3600)
         && X509_gmtime_adj (X509_getm_notAfter (cert), (long) days * 86400)
         && X509_set_pubkey (cert, key) == 1
         && X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8,
                                        (const unsigned char *) "orderbus test",
                                        -1, -1, 0)
                == 1
         && X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8,
                                        (const unsigned char *) common_name, -1,
                                        -1, 0)
                == 1
         && X509_set_issuer_name (cert, name) == 1
         && s_add_ext (cert, NID_basic_constraints, "critical,CA:FALSE")
         && s_add_ext (cert, NID_key_usage, "critical,digitalSignature")
         && s_add_ext (cert, NID_ext_key_usage, "serverAuth")
         && s_add_ext (cert, NID_subject_key_identifier, "hash")
         && s_add_ext (cert, NID_subject_alt_name, alt_names)
         && X509_sign (cert, key, EVP_sha256 ()) > 0;
    BN_free (number);
    if (!ok) {
        X509_free (cert);
        cert = NULL;
    }
    return cert;
}

//  May a new file go to path?  Refused if it is a symlink, if it exists
//  and not force, or if it exists and is not a file.  Nothing is removed
//  here: the new file replaces the old by rename once it is whole.  0,
//  or -1 with err set.
static int
s_check_room (const char *path, bool force, char *err, size_t err_cap)
{
    struct stat info;
    if (lstat (path, &info) != 0)
        return errno == ENOENT ? 0
                               : bus_error_set (err, err_cap, -1, "%s: %s",
                                                path, strerror (errno));
    if (S_ISLNK (info.st_mode))
        return bus_error_set (err, err_cap, -1,
                              "%s is a symbolic link: not written through it",
                              path);
    if (!force)
        return bus_error_set (err, err_cap, -1,
                              "%s exists: not overwritten (--force replaces "
                              "it)",
                              path);
    if (!S_ISREG (info.st_mode))
        return bus_error_set (err, err_cap, -1,
                              "%s: cannot replace it: not a "
                              "file",
                              path);
    return 0;
}

//  Write bio's bytes to a new file of exactly mode (bus_file.h); 0, or
//  -1 with err set
static int
s_write_new (const char *path, BIO *bio, mode_t mode, char *err, size_t err_cap)
{
    char *data = NULL;
    long length = BIO_get_mem_data (bio, &data);
    if (length <= 0)
        return bus_error_set (err, err_cap, -1,
                              "cannot write %s: nothing to "
                              "write",
                              path);
    return bus_file_write_new (path, data, (size_t) length, mode, err, err_cap);
}

//  Both files written whole beside their places (path + ".new"), then
//  moved there: an old pair (--force) is replaced only once the new one
//  is on disk, and a failure leaves the old pair as it was.  0, or -1
//  with err set.
static int
s_write_pair (const char *cert_path, BIO *cert_bio, const char *key_path,
              BIO *key_bio, bool force, char *err, size_t err_cap)
{
    char cert_new[PATH_MAX], key_new[PATH_MAX];
    if (snprintf (cert_new, sizeof cert_new, "%s.new", cert_path)
            >= (int) sizeof cert_new
        || snprintf (key_new, sizeof key_new, "%s.new", key_path)
               >= (int) sizeof key_new)
        return bus_error_set (err, err_cap, -1, "path too long");
    if (s_write_new (key_new, key_bio, 0600, err, err_cap) != 0)
        return -1;
    if (s_write_new (cert_new, cert_bio, 0644, err, err_cap) != 0) {
        unlink (key_new);
        return -1;
    }
    //  Without force nothing may be there now: link() never replaces
    bool moved = force ? rename (key_new, key_path) == 0
                             && rename (cert_new, cert_path) == 0
                       : link (key_new, key_path) == 0
                             && (link (cert_new, cert_path) == 0
                                 || (unlink (key_path), false));
    int saved = errno;
    unlink (key_new);
    unlink (cert_new);
    if (!moved)
        return bus_error_set (err, err_cap, -1,
                              "cannot put the pair in place: "
                              "%s",
                              strerror (saved));
    return 0;
}

int
bus_tls_self_signed (const char *cert_path, const char *key_path,
                     const char *const *names, size_t name_count, int days,
                     bool force, char *err, size_t err_cap)
{
    char alt_names[BUS_TLS_NAMES_MAX * 270];
    if (name_count == 0 || name_count > BUS_TLS_NAMES_MAX)
        return bus_error_set (err, err_cap, -1, "give 1 to %d names",
                              BUS_TLS_NAMES_MAX);
    if (days < 1 || days > BUS_TLS_DAYS_MAX)
        return bus_error_set (err, err_cap, -1, "--days: 1 to %d, not %d",
                              BUS_TLS_DAYS_MAX, days);
    if (streq (cert_path, key_path))
        return bus_error_set (err, err_cap, -1,
                              "--cert and --key must be two files");
    if (s_alt_names (names, name_count, alt_names, sizeof alt_names, err,
                     err_cap)
            != 0
        || s_check_room (key_path, force, err, err_cap) != 0
        || s_check_room (cert_path, force, err, err_cap) != 0)
        return -1;
    //  The subject's CN may hold 64 characters; the names are in the
    //  subjectAltName, which is what clients check
    const char *common_name = "orderbus";
    for (size_t i = name_count; i-- > 0;)
        if (strlen (names[i]) <= 64)
            common_name = names[i];
    EVP_PKEY *key = EVP_EC_gen ("P-256");
    X509 *cert = key ? s_cert_new (key, alt_names, common_name, days) : NULL;
    BIO *key_bio = BIO_new (BIO_s_secmem ());
    BIO *cert_bio = BIO_new (BIO_s_mem ());
    int rc = -1;
    char why[256];
    if (!cert || !key_bio || !cert_bio
        || PEM_write_bio_PrivateKey (key_bio, key, NULL, NULL, 0, NULL, NULL)
               != 1
        || PEM_write_bio_X509 (cert_bio, cert) != 1)
        bus_error_set (err, err_cap, -1, "cannot make the pair: %s",
                       s_ssl_error (why, sizeof why));
    else
        rc = s_write_pair (cert_path, cert_bio, key_path, key_bio, force, err,
                           err_cap);
    BIO_free (key_bio);
    BIO_free (cert_bio);
    X509_free (cert);
    EVP_PKEY_free (key);
    return rc;
}

//  ---------------------------------------------------------------------
//  Selftest

static void
s_expect (int rc, const char *err, const char *want, bool verbose)
{
    if (verbose)
        printf ("  refused: %s\n", err);
    assert (rc == -1);
    if (!strstr (err, want)) {
        fprintf (stderr, "expected '%s' in '%s'\n", want, err);
        assert (false);
    }
}

void
bus_tls_test (bool verbose)
{
    printf (" * bus_tls: ");
    if (verbose)
        printf ("\n");
    char dir[] = "/tmp/bus_tls_test.XXXXXX";
    assert (mkdtemp (dir));
    char cert[128], key[128], cert2[128], key2[128], link[128], err[1024];
    snprintf (cert, sizeof cert, "%s/server.crt", dir);
    snprintf (key, sizeof key, "%s/server.key", dir);
    snprintf (cert2, sizeof cert2, "%s/other.crt", dir);
    snprintf (key2, sizeof key2, "%s/other.key", dir);
    snprintf (link, sizeof link, "%s/link.key", dir);
    const char *names[] = { "localhost", "127.0.0.1", "::1", "pos.example" };

    //  A new pair: key 0600, cert 0644, and it checks out
    assert (
        bus_tls_self_signed (cert, key, names, 4, 30, false, err, sizeof err)
        == 0);
    struct stat info;
    assert (stat (key, &info) == 0 && (info.st_mode & 07777) == 0600);
    assert (stat (cert, &info) == 0 && (info.st_mode & 07777) == 0644);
    assert (bus_tls_check (cert, key, err, sizeof err) == 0);
    //  Its names, in the certificate's subjectAltName
    char *pem = bus_tls_read_pem (cert, err, sizeof err);
    assert (pem);
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *x509 = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    assert (x509);
    assert (X509_check_host (x509, "localhost", 0, 0, NULL) == 1);
    assert (X509_check_host (x509, "pos.example", 0, 0, NULL) == 1);
    assert (X509_check_ip_asc (x509, "127.0.0.1", 0) == 1);
    assert (X509_check_ip_asc (x509, "::1", 0) == 1);
    assert (X509_check_host (x509, "example.com", 0, 0, NULL) != 1);
    assert (X509_check_ip_asc (x509, "10.0.0.1", 0) != 1);
    X509_free (x509);
    BIO_free (bio);
    free (pem);

    //  Never over a file without force, never through a symlink
    int rc =
        bus_tls_self_signed (cert, key, names, 1, 30, false, err, sizeof err);
    s_expect (rc, err, "exists: not overwritten", verbose);
    assert (symlink (key2, link) == 0);
    rc = bus_tls_self_signed (cert2, link, names, 1, 30, true, err, sizeof err);
    s_expect (rc, err, "symbolic link", verbose);
    assert (access (key2, F_OK) != 0 && access (cert2, F_OK) != 0);
    rc = bus_tls_self_signed (cert2, key2, names, 1, 0, false, err, sizeof err);
    s_expect (rc, err, "--days", verbose);
    const char *bad[] = { "bad name!" };
    rc = bus_tls_self_signed (cert2, key2, bad, 1, 30, false, err, sizeof err);
    s_expect (rc, err, "not a host name", verbose);
    assert (access (key2, F_OK) != 0);

    //  A second pair: each key is refused with the other's certificate
    assert (
        bus_tls_self_signed (cert2, key2, names, 1, 30, false, err, sizeof err)
        == 0);
    s_expect (bus_tls_check (cert, key2, err, sizeof err), err,
              "is not the key of tls/cert", verbose);
    //  force replaces a pair
    assert (
        bus_tls_self_signed (cert2, key2, names, 2, 30, true, err, sizeof err)
        == 0);
    //  ...but only once the new one is whole: refused for its certificate,
    //  the old pair is still there and still a pair
    assert (unlink (link) == 0 && symlink (cert, link) == 0);
    rc = bus_tls_self_signed (link, key2, names, 1, 30, true, err, sizeof err);
    s_expect (rc, err, "symbolic link", verbose);
    assert (bus_tls_check (cert2, key2, err, sizeof err) == 0);
    //  Host names: labels of letters, digits and inner '-'; a wildcard
    //  only as the whole first label of a name with two more
    const char *wild[] = { "*.site.local" };
    assert (
        bus_tls_self_signed (cert2, key2, wild, 1, 30, true, err, sizeof err)
        == 0);
    const char *hosts[] = { "a*b.local", "-x.local", "x-.local", "*.local",
                            "a..b",      "a.",       "*",        "" };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        rc = bus_tls_self_signed (cert2, key2, hosts + i, 1, 30, true, err,
                                  sizeof err);
        s_expect (rc, err, "not a host name", verbose);
    }
    rc = bus_tls_self_signed (cert2, key2, names, 1, BUS_TLS_DAYS_MAX + 1, true,
                              err, sizeof err);
    s_expect (rc, err, "--days", verbose);

    //  A key others may read; a missing file; a key given as the cert
    assert (chmod (key, 0640) == 0);
    s_expect (bus_tls_check (cert, key, err, sizeof err), err,
              "tls/key (--tls-key)", verbose);
    s_expect (bus_tls_check (cert, key, err, sizeof err), err,
              "mode 0600 or stricter, not 0640", verbose);
    assert (chmod (key, 0600) == 0);
    s_expect (bus_tls_check ("/nonexistent.crt", key, err, sizeof err), err,
              "tls/cert (--tls-cert) /nonexistent.crt", verbose);
    s_expect (bus_tls_check (key, key, err, sizeof err), err,
              "holds a private key", verbose);
    s_expect (bus_tls_check (cert, "", err, sizeof err), err, "TLS needs both",
              verbose);
    assert (chmod (cert, 0600) == 0);
    s_expect (bus_tls_check (cert, cert, err, sizeof err), err,
              "not an unencrypted PEM private key", verbose);

    unlink (link);
    unlink (cert);
    unlink (key);
    unlink (cert2);
    unlink (key2);
    rmdir (dir);
    printf ("OK\n");
}
