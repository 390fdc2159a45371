/*  bus_node.h — runs one role (or all of them, for `orderbus up`) until
    SIGINT or SIGTERM.

    `up` starts the writer, one HTTP server, a gateway and an edge in one
    process; they talk over inproc:// with the same code that talks
    tcp:// between hosts.  Every role with an HTTP server also answers
    GET /healthz: 200 when its link to the writer is up, else 503 (a
    gateway or edge of several sites: per site, bus_sites.h).  */

#ifndef BUS_NODE_H_INCLUDED
#define BUS_NODE_H_INCLUDED

#include "orderbus/bus_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Start config's role and serve until SIGINT or SIGTERM, then stop
    cleanly.  SIGINT and SIGTERM must be blocked in the calling thread
    before anything starts a thread, so that only this call receives them.
    Returns the process exit status: 0 after a clean stop, 1 if the role
    could not start (the reason is printed on stderr).  */
int bus_node_run (const bus_config_t *config);

#ifdef __cplusplus
}
#endif
#endif
