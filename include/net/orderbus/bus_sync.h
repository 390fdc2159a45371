/*  bus_sync.h — client of the writer's sync socket (snapshot, replay, get,
    list, menu).  Thread-safe: the HTTP server's pool threads call it
    concurrently; each call borrows a DEALER socket from a small pool.  */

#ifndef BUS_SYNC_H_INCLUDED
#define BUS_SYNC_H_INCLUDED

#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_sync_t bus_sync_t;

/*  New client for the writer's sync endpoint; calls give up after
    timeout_ms.  Connects lazily, each socket as a CURVE client of curve
    (NULL or plaintext: none), which must outlive the client.  Caller
    owns.  */
bus_sync_t *bus_sync_new (const char *endpoint, int timeout_ms,
                          const bus_curve_t *curve);

/*  NULL-safe; nulls *self_p.  */
void bus_sync_destroy (bus_sync_t **self_p);

/*  Send req (its rid is assigned here) and wait for the reply.  Returns 0
    with the reply header in *reply and its item frames in a new *items
    (caller owns; one frame per item), or BUS_ERR_TIMEOUT when the writer
    did not answer in time, or BUS_ERR_MALFORMED for an unreadable reply.
    A reply whose header carries an error (reply->status != 0) still
    returns 0: the call itself worked.  */
int bus_sync_call (bus_sync_t *self, bus_sync_req_t *req,
                   bus_sync_reply_t *reply, zmsg_t **items);

/*  True if a reply of history writer must not be taken: one of an epoch
    older than the newest heard (bus_link_older_reply).  */
typedef bool (bus_sync_older_fn) (void *arg, const bus_epoch_t *writer);

/*  From now on every reply whose history fn says is older is refused:
    bus_sync_call returns 0 with no items and, in its header, status
    BUS_ERR_UNAVAILABLE, an error that says why, and the writer it came
    from, as a writer that refuses (docs/failover.md).  Set before the
    client is used from other threads.  */
void bus_sync_set_older (bus_sync_t *self, bus_sync_older_fn *fn, void *arg);

/*  Called with each order of bus_sync_orders, borrowed for the call.  */
typedef void (bus_sync_order_fn) (const bus_order_t *order, void *arg);

/*  Call fn for every order the writer holds, newest first, a page of
    BUS_SYNC_LIST at a time; *seq (if not NULL) is set to the writer's
    last sequence when the first page was read.  0, or the error of the
    call or reply that failed (fn may have been called for some orders).  */
int bus_sync_orders (bus_sync_t *self, bus_sync_order_fn *fn, void *arg,
                     uint64_t *seq);

#ifdef __cplusplus
}
#endif
#endif
