/*  tk_netns.h — the multi-host rig: hosts in network namespaces of their
    own, joined by veth pairs to one Linux bridge, which lives in a
    namespace of the rig's own, so nothing touches this machine's network.

        tk_rig_init ();                       // or exit 77: SKIP
        tk_host_t *w = tk_host_add ("writer");  // one call per host
        tk_host_spawn (w, "writer", "writer", "--intake", ...);
        tk_host_enter (clients);              // this thread's network
        tk_host_link (w, false);              // cut its link ... heal

    Every host has 10.77.0.<n>/24 on its eth0 and loopback up; every
    name carries the prefix "tkr<pid>-" so parallel and stale runs never
    meet.  Namespaces are made with iproute2's `ip` (as root); the
    network namespace is per thread on Linux, so a thread entered into a
    host (and the threads it starts afterwards: load, followers,
    proxies) speak from there.  Cleanup always happens: at exit, in
    tk_fail, on SIGINT/SIGTERM/SIGHUP; and tk_rig_init first deletes the
    namespaces of earlier runs whose process is gone (a SIGKILL leaves
    them).  Before a namespace is deleted, every process still in it
    (but the test's own) is killed with SIGKILL: a crashed run's etcd
    would go on running in it.  */

#ifndef TK_NETNS_H_INCLUDED
#define TK_NETNS_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

typedef struct _tk_host_t tk_host_t;

/*  A node of a test's rig: its host, its process, and its HTTP port
    (0: it has none), as the tests keep their gateways and edges.  */
typedef struct {
    tk_host_t *host;
    pid_t pid;
    int port;
} tk_node_t;

/*  Call after tk_init.  Sweeps stale runs' namespaces, makes the bridge.
    Not root, no `ip`, or no namespaces: prints "SKIP: <why>" and exits
    77 (ctest's SKIP_RETURN_CODE).  */
void tk_rig_init (void);

/*  A new host called name (at most 8 characters: [a-z0-9]) with the next
    address, its link up.  At most 60 hosts.  */
tk_host_t *tk_host_add (const char *name);

const char *tk_host_name (const tk_host_t *host);

/*  Its address, "10.77.0.<n>".  */
const char *tk_host_addr (const tk_host_t *host);

/*  The kit's clients reach node's port at its host's address from now
    on (tk_port_addr), and it answers /healthz 200 within 20 s, or the
    test fails naming name.  */
void tk_node_wait (const tk_node_t *node, const char *name);

/*  "tcp://<its address>:<port>" into buf (TK_ENDPOINT_LEN), returned.  */
char *tk_host_endpoint (const tk_host_t *host, int port, char *buf);

/*  Move the calling thread into host's network (NULL: back to the one
    the test started in).  Threads it starts afterwards begin there.  */
void tk_host_enter (const tk_host_t *host);

/*  Start `orderbus <args...>` (NULL-terminated) in host, output to
    <dir>/<name>.log, as tk_spawn_env (no descriptor inherited; the kit's
    secret for a gateway or an edge; killed by tk_fail and tk_done).  */
pid_t tk_host_spawn (tk_host_t *host, const char *name, ...);

/*  Cut (up false) or heal host's link: its veth's end on the bridge goes
    down or up.  Packets are dropped silently, as a pulled cable.  */
void tk_host_link (tk_host_t *host, bool up);

/*  Cut (connected false) or heal the pair a, b alone: a blackhole route
    to the other in each, both ways.  Packets between them are dropped
    where they are sent (a local sender's new connection fails at once
    with EINVAL; an established one retransmits into nothing); every
    other pair still talks.  */
void tk_host_pair (tk_host_t *a, tk_host_t *b, bool connected);

/*  What the rig did, one `ip` command a line: <dir>/rig.log.  */
const char *tk_rig_log (void);

#endif
