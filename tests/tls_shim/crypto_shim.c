/*  crypto_shim.c — the libcrypto that civetweb 1.15 asks for.

    civetweb also dlopen()s "libcrypto.so", a name only libssl-dev's
    symlink gives.  This empty library has that SONAME and needs
    libcrypto.so.3, so a host without libssl-dev runs TLS too
    (ssl_shim.c says how the pair is used).  */

int orderbus_crypto_shim;
