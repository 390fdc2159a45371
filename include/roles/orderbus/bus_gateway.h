/*  bus_gateway.h — the gateway role's link to the writer: commands out,
    commit acks back, queries, and a cached copy of the menu.

    Commands are PUSHed to the writer's intake; acks come back on this
    gateway's own topic "A/<name>/" of the writer's PUB socket.  Every
    function here is safe to call from many threads at once (the HTTP
    server's threads): the HTTP routes (bus_api, bus_compat) are built on
    it.  */

#ifndef BUS_GATEWAY_H_INCLUDED
#define BUS_GATEWAY_H_INCLUDED

#include <jansson.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_gateway_t bus_gateway_t;

/*  Connect to the writer's endpoints in config.  Returns the gateway or
    NULL with the reason in err[err_cap].  */
bus_gateway_t *bus_gateway_new (const bus_config_t *config, char *err,
                                size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_gateway_destroy (bus_gateway_t **self_p);

/*  This gateway's settings.  */
const bus_config_t *bus_gateway_config (bus_gateway_t *self);

/*  How a command sent with bus_gateway_send ended: rc 0 with the
    writer's ack (which may itself be a refusal), or BUS_ERR_TIMEOUT with
    ack NULL when none came by gateway/ack_timeout_ms.  Called once, on
    the gateway's listener thread (for a command still waiting when the
    gateway is destroyed: on the destroying thread, with BUS_ERR_TIMEOUT);
    ack is only valid during the call, and the function must not block.  */
typedef void (bus_gateway_done_fn) (void *arg, int rc, const bus_ack_t *ack);

/*  Send cmd (its origin is set here; the gateway keeps its own encoded
    copy) and return: the listener resends it on a doubling schedule
    until its ack comes or gateway/ack_timeout_ms pass, then calls
    done (arg, ...).  Returns 0 (done will be called), or at once, with
    done never called: BUS_ERR_UNAVAILABLE when the writer is known to be
    gone, BUS_ERR_OVERLOADED when gateway/max_inflight commands already
    wait, BUS_ERR_NOMEM.  */
int bus_gateway_send (bus_gateway_t *self, bus_cmd_t *cmd,
                      bus_gateway_done_fn *done, void *arg);

/*  bus_gateway_send, then wait for its end: 0 with *ack filled, or the
    error bus_gateway_send or done gave.  */
int bus_gateway_submit (bus_gateway_t *self, bus_cmd_t *cmd, bus_ack_t *ack);

/*  A query on the writer's sync socket (see bus_sync_call), or on a
    replica's with endpoints/reads for the reads bus_reads.h moves
    (LIST, GET, REPORT here; reply->writer_seq says how far behind).  */
int bus_gateway_query (bus_gateway_t *self, bus_sync_req_t *req,
                       bus_sync_reply_t *reply, zmsg_t **items);

/*  Every order the writer holds, newest first (see bus_sync_orders).  */
int bus_gateway_orders (bus_gateway_t *self, bus_sync_order_fn *fn, void *arg);

/*  The writer's menu document (refetched when older than a second), a
    new reference (caller decrefs), with its version; NULL if the writer
    has none or cannot be reached and no copy was fetched before.  */
json_t *bus_gateway_menu (bus_gateway_t *self, uint64_t *version);

/*  Check the lines' item and modifier ids against the gateway's copy of
    the menu, so an unknown one costs no trip to the writer (which checks
    again: the copy may be stale).  The copy is refetched only when it
    does not know an id, and only if may_fetch (else that is
    BUS_ERR_UNAVAILABLE: ask again where the caller may wait).  0, or
    BUS_ERR_UNKNOWN_ITEM / BUS_ERR_INVALID with *error naming the field
    (paths as "items[i]..." when with_items, else the line's own fields).
    Without any menu the check is left to the writer.  */
int bus_gateway_check_lines (bus_gateway_t *self, const bus_line_t *lines,
                             uint32_t count, bool with_items, bool may_fetch,
                             bus_json_error_t *error);

/*  New JSON object with the gateway's and the writer's counters
    ("writer": null when it does not answer).  Caller owns.  */
json_t *bus_gateway_stats (bus_gateway_t *self);

/*  New JSON object describing the gateway's link to the writer, for
    /healthz; *ok is set to whether the writer is reachable.  */
json_t *bus_gateway_health (bus_gateway_t *self, bool *ok);

/*  Selftest (bus_gateway_test.c): a gateway against a fake writer made of
    sockets in the test, which decides when each ack comes.  */
void bus_gateway_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
