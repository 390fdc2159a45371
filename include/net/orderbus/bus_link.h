/*  bus_link.h — a gateway's or edge's view of the writer.

    The writer publishes a heartbeat with its last sequence every
    link/heartbeat_ms; the node's subscriber thread reports each one here.
    A thread of the link's own pings the writer's sync socket at the same
    period (so the writer knows who is attached) and watches the silence:
    after link/timeout_ms without a heartbeat the writer counts as gone.
    Both transitions are logged once, and so is each change of the
    writer's storage state, which heartbeats carry too.  */

#ifndef BUS_LINK_H_INCLUDED
#define BUS_LINK_H_INCLUDED

#include <jansson.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_link_t bus_link_t;

/*  New link for a node of role ("gateway", "edge") named name, pinging
    config's sync endpoint on a client of its own (a ping must not wait
    behind a slow query), a CURVE client of curve (NULL: plaintext), which
    must outlive the link.  NULL if out of memory.  */
bus_link_t *bus_link_new (const bus_config_t *config, const bus_curve_t *curve,
                          const char *role, const char *name);

/*  Stop the ping thread.  NULL-safe; nulls *self_p.  */
void bus_link_destroy (bus_link_t **self_p);

/*  A heartbeat announcing the writer's last sequence, and its history
    (identity and epoch), was heard.  Returns true if that history is not
    the one of the heartbeat before (never for the first), and then sets
    *was (if not NULL) to the one before.  */
bool bus_link_heard (bus_link_t *self, const bus_heartbeat_t *hb,
                     bus_epoch_t *was);

/*  True if writer is of the identity of the newest epoch heard in a
    heartbeat, and an older epoch: a writer that is not the primary any
    more (docs/failover.md).  The newest is forgotten once its writer has
    sent no heartbeat for link/timeout_ms (it led briefly and died, or
    its clock ran ahead): then the next heartbeat's epoch is the newest.
    Such a message (what: "a heartbeat", "an event", "an ack", "a sync
    reply") must be ignored; it is counted (older_epoch_ignored in
    /healthz) and logged once per epoch.  Call before bus_link_heard.  */
bool bus_link_older (bus_link_t *self, const bus_epoch_t *writer,
                     const char *what);

/*  bus_link_older (self, writer, "a sync reply"), as a bus_sync_older_fn
    (self is the link): what a gateway's and an edge's sync clients, the
    writer's and the replicas', refuse (bus_sync_set_older).  */
bool bus_link_older_reply (void *self, const bus_epoch_t *writer);

/*  The history of the last heartbeat into *writer (epoch 0: none yet).  */
void bus_link_writer (bus_link_t *self, bus_epoch_t *writer);

/*  True while heartbeats keep coming.  */
bool bus_link_up (bus_link_t *self);

/*  The last sequence the writer announced.  */
uint64_t bus_link_writer_seq (bus_link_t *self);

/*  The writer's storage state, as its last heartbeat said (ok before the
    first).  A change is logged once.  */
bus_storage_t bus_link_writer_storage (bus_link_t *self);

/*  Add writer_reachable, writer_heartbeat_age_ms, writer_seq,
    writer_identity and writer_epoch (16 hex digits; both "" before the
    first heartbeat) and writer_storage ("ok", "failing", "full") to the
    JSON object health, and, when not ok, a reason ("writer unreachable",
    "writer storage full: ...", "writer storage failing: ...").  Returns
    true if the link is up and the writer's storage ok: what /healthz
    calls ok.  */
bool bus_link_health (bus_link_t *self, json_t *health);

/*  True if the writer's last heartbeat said it refuses orders: its
    synchronous replica is not confirming (bus_writer.h).  Adds
    writer_refusing to health, and then a reason if it has none.  What a
    gateway's /healthz adds; an edge's reads go on.  */
bool bus_link_writer_refusing (bus_link_t *self, json_t *health);

#define BUS_LINK_ZMTP_IVL_MS     500  /* ZMTP PING, with several endpoints */
#define BUS_LINK_ZMTP_TIMEOUT_MS 1500 /* ...no traffic after: pipe dropped */

/*  Connect sock to each of endpoints, comma-separated: one per member of
    a writer group (docs/failover.md), of which only the leader binds.
    With more than one, a PUSH or DEALER sends only on completed
    connections (ZMQ_IMMEDIATE): to the member that is bound, and every
    connection sends ZMTP heartbeats (BUS_LINK_ZMTP_*), so that a peer
    that stops answering them (a frozen, deposed leader) is dropped.
    One endpoint: a plain connect, as a single box has always done.
    With curve (NULL: plaintext) sock is made its CURVE client, and each
    endpoint is connected pinning its own key of link/writer_key
    (bus_curve_client_at): the i-th, or the only one.  0, or -1 (errno
    from libzmq) if one cannot be connected.  */
int bus_link_connect (zsock_t *sock, const char *endpoints,
                      const bus_curve_t *curve);

/*  Selftest.  */
void bus_link_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
