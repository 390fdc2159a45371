/*  bus_query.h — the sync socket's read queries, answered from a store:
    SNAPSHOT, REPLAY, GET, LIST, MENU, TABLE and REPORT (bus_codec.h's
    bus_sync_op_t).  The writer's sync thread and a replica's read socket
    (bus_replica.h) answer them with the same code, each from its own
    store; PING and STATS are each node's own.

    Thread-safe as the store's read side is: each query reads in its own
    read transaction (bus_store.h).  */

#ifndef BUS_QUERY_H_INCLUDED
#define BUS_QUERY_H_INCLUDED

#include "orderbus/bus_codec.h"
#include "orderbus/bus_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Items per REPLAY or LIST page, at most.  */
#define BUS_QUERY_LIMIT_MAX 1000

/*  True if op is one bus_query_answer answers.  */
bool bus_query_is_read (bus_sync_op_t op);

/*  Answer req (a read query) from store: reply's seq, next, status and
    error are set, the items appended to items (none if it failed).
    retain_days is only said in a "snapshot instead" answer.  */
void bus_query_answer (bus_store_t *store, int retain_days,
                       const bus_sync_req_t *req, bus_sync_reply_t *reply,
                       zmsg_t *items);

/*  Send the answer to the peer of a ROUTER socket: [identity][header]
    [item]...  A failed query (reply->status != 0) carries no items;
    reply->count is set here.  Takes *identity and *items (both nulled). */
void bus_query_send (zsock_t *sock, zframe_t **identity,
                     bus_sync_reply_t *reply, zmsg_t **items);

#ifdef __cplusplus
}
#endif
#endif
