/*  bus_tls.h — the certificate and key an HTTP server speaks TLS with,
    checked before anything starts, and a self-signed pair for a test
    install (`orderbus tls new`).

    Both servers take the same two PEM files, tls/cert (the certificate,
    then any chain) and tls/key (its private key, unencrypted); the key
    must be mode 0600 or stricter, as secrets are.  This module only
    reads and writes files with OpenSSL's libcrypto: each server's adapter
    (bus_mhd.c) hands the files to its own TLS library (GnuTLS).  */

#ifndef BUS_TLS_H_INCLUDED
#define BUS_TLS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_TLS_DAYS_DEFAULT 365
//  Apple's devices refuse a server certificate valid for longer
//  (support.apple.com HT210176), and kitchens run on iPads
#define BUS_TLS_DAYS_MAX  825
#define BUS_TLS_NAMES_MAX 16   //  names in one certificate

/*  Check the pair a server will use: the key file is a regular file of
    mode 0600 or stricter, the certificate file holds a PEM certificate,
    the key file a PEM private key, and the key is the certificate's.
    0, or -1 with a message in err[err_cap] that names the setting
    (tls/cert or tls/key, with its flag) and the file.  An expired
    certificate is logged, not refused (a clock may be wrong).  */
int bus_tls_check (const char *cert_path, const char *key_path, char *err,
                   size_t err_cap);

/*  A file's whole text (a PEM file), NUL-terminated; caller frees.  NULL
    with err set if it cannot be read or is over 1 MiB.  */
char *bus_tls_read_pem (const char *path, char *err, size_t err_cap);

/*  Write a new self-signed pair: an EC P-256 key to key_path (mode 0600)
    and a certificate for it to cert_path (0644), valid for days days,
    with each of names (a host name, or an IPv4 or IPv6 address) in its
    subjectAltName and the first as its common name.  Neither file is
    written through a symlink, nor over an existing file unless force
    (then the old one is removed first).  0, or -1 with err set and
    neither file left behind.  */
int bus_tls_self_signed (const char *cert_path, const char *key_path,
                         const char *const *names, size_t name_count, int days,
                         bool force, char *err, size_t err_cap);

/*  Selftest.  */
void bus_tls_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
