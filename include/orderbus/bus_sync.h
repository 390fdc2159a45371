/*  bus_sync.h — client of the writer's sync socket (snapshot, replay, get,
    list, menu).  Thread-safe: civetweb's worker threads call it
    concurrently; each call borrows a DEALER socket from a small pool.  */

#ifndef BUS_SYNC_H_INCLUDED
#define BUS_SYNC_H_INCLUDED

#include <czmq.h>
#include "orderbus/bus_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_sync_t bus_sync_t;

/*  New client for the writer's sync endpoint; calls give up after
    timeout_ms.  Connects lazily.  Caller owns.  */
bus_sync_t *bus_sync_new (const char *endpoint, int timeout_ms);

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

#ifdef __cplusplus
}
#endif
#endif
