/*  tk_curve.h — a test's own CURVE client of a node's ZeroMQ socket
    (bus_curve.h): to ask a writer or a replica something under a key
    of the test's choosing, and see what the node's ZAP handler lets in.
    Built into the tests that link the bus library (tests/CMakeLists.txt),
    like tk_store.c.  */

#ifndef TK_CURVE_H_INCLUDED
#define TK_CURVE_H_INCLUDED

#include <czmq.h>
#include "orderbus/bus_curve.h"

/*  A socket of type (ZMQ_DEALER, ZMQ_SUB, ...) under the secret
    certificate at cert_secret, the server's public certificate at
    server_cert pinned, connected to endpoint, receiving with a timeout
    of timeout_ms (linger 0).  A certificate that does not read, or a
    connect that fails, fails the test.  *me (unless NULL): the secret
    certificate's peer (its name and role).  */
zsock_t *tk_curve_socket (int type, const char *cert_secret,
                          const char *server_cert, const char *endpoint,
                          int timeout_ms, bus_curve_peer_t *me);

#endif
