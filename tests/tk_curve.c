/*  tk_curve.c — a test's own CURVE client (tk_curve.h).  */

#include "tk_curve.h"
#include "testkit.h"

zsock_t *
tk_curve_socket (int type, const char *cert_secret, const char *server_cert,
                 const char *endpoint, int timeout_ms, bus_curve_peer_t *me)
{
    bus_curve_peer_t mine, server;
    zcert_t *cert = NULL;
    char err[2048];
    TK_CHECK (
        bus_curve_cert_read (cert_secret, true, &mine, &cert, err, sizeof err)
                == 0
            && bus_curve_cert_read (server_cert, false, &server, NULL, err,
                                    sizeof err)
                   == 0,
        "%s", err);
    zsock_t *sock = zsock_new (type);
    TK_CHECK (sock, "a socket of type %d", type);
    zsock_set_linger (sock, 0);
    zcert_apply (cert, sock);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sock, server.key);
    zsock_set_rcvtimeo (sock, timeout_ms);
    TK_CHECK (zsock_connect (sock, "%s", endpoint) == 0, "connect %s",
              endpoint);
    if (me)
        *me = mine;
    return sock;
}
