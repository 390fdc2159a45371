/*  ssl_shim.c — the libssl that civetweb 1.15 asks for.

    Debian's civetweb loads OpenSSL at run time, dlopen ("libssl.so"),
    and looks up 44 functions there.  OpenSSL 3 has all of them but one:
    SSL_get_peer_certificate became a macro for SSL_get1_peer_certificate
    (same meaning: the caller owns a reference), so civetweb's pointer to
    it stays NULL and the first TLS connection calls NULL.  This library,
    whose SONAME is "libssl.so" and which needs libssl.so.3, defines that
    one function; the test kit (tk_http.c) loads it by its full path
    before civetweb looks, glibc then hands civetweb this library for
    "libssl.so", and civetweb's dlsym finds the other 43 in libssl.so.3
    through it.  Only the kit's civetweb client needs it: the nodes
    serve TLS with libmicrohttpd.  */

#include <openssl/ssl.h>

//  ssl.h defines the name as a macro: the function needs it gone
#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate (const SSL *ssl);

X509 *
SSL_get_peer_certificate (const SSL *ssl)
{
    return SSL_get1_peer_certificate (ssl);
}
