/*  bus_edge.h — the edge role: live events to browsers over WebSocket.

    Keeps the open orders and the last sequence it applied (the zguide
    Clone pattern: subscribe first, then take a snapshot from the writer,
    then apply only updates above the snapshot's sequence), fills any gap
    in the sequence by replay from the writer's log before going on, and
    fans every event out to the connected browsers.  The state belongs to
    one history of the writer (bus_epoch_t): a writer run that goes on
    from it is followed, any other is a fresh snapshot for the state and
    every browser.

    WebSocket endpoint /ws (text frames, JSON), token in ?token=:
      on connect   {"type": "snapshot", "seq": S, "epoch": E, "orders":
                   [...]} (and "cart": {...} in a table's room), or with
                   /ws?after_seq=N[&epoch=E] the events after N instead,
                   N being the last seq the browser has (when E, if
                   given, is the state's history); resume_from=N is the
                   old name of after_seq, still taken; both, differing,
                   are a 400 before the handshake
      then         {"type": "event", "seq": S+1, ...} for every event of
                   its room: a pad token watches its table (orders, cart,
                   menu); staff every order and the menu, or one table's
                   room with ?table=T
    Also serves web/ as static files, the pages /kitchen, /pad and
    /dashboard (web/<page>.html), and a redirect from / to /kitchen.  */

#ifndef BUS_EDGE_H_INCLUDED
#define BUS_EDGE_H_INCLUDED

#include <jansson.h>
#include "orderbus/bus_auth.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_http_ws.h"
#include "orderbus/bus_model.h"
#include "orderbus/bus_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_edge_t bus_edge_t;

/*  A feed: another protocol on the edge's WebSocket seats, for browsers
    of a system orderbus replaces (the seeds' /ws/orders: bus_compat.h).
    Its browsers are let in by the feed's own check, take a seat like any
    other, and get no snapshot and none of the native messages: their
    welcome, then the feed's message for each event that has one and
    whose key is above the last key their welcome held.  Every hook may
    be called on several threads at once.  */
typedef struct {
    const char *path;   //  its WebSocket's path
    //  New message for the feed's browsers about event, with its key in
    //  *key, or NULL if the feed says nothing of it.  Called on the
    //  edge's actor, under its lock, while the feed has browsers.
    json_t *(*event) (const bus_event_t *event, uint64_t *key);
    //  A new browser's first message, read from the writer through sync,
    //  in *welcome (caller owns; NULL if out of memory), holding keys up
    //  to *key, consistent with the writer's sequence *seq.  0, or -1 if
    //  the writer did not answer: *welcome is then what the browser gets
    //  anyway (*key 0).  Called on the browser's seat.
    int (*welcome) (bus_sync_t *sync, json_t **welcome, uint64_t *seq,
                    uint64_t *key);
    //  Its WebSocket's path too, with '*' segments as bus_req's routes
    //  ("/compat/ * /ws/orders", without the spaces), or NULL.
    const char *other_path;
    //  Before the handshake: 0 to let the browser in, or non-zero once it
    //  has answered req itself (refused), checking who it is with auth.
    //  NULL: everyone.  Called on the browser's seat.
    int (*connect) (bus_auth_t *auth, bus_req_t *req);
    //  The index among auth's sites of the site the browser's token names,
    //  unverified (connect checks it), so that a node of several sites
    //  hands it to that site's edge (bus_sites.h); -1 if none.  NULL:
    //  where /ws takes its token (bus_auth_site_of).
    int (*site) (bus_auth_t *auth, bus_req_t *req);
} bus_edge_feed_t;

/*  Subscribe to the writer's events and put the WebSocket endpoints and
    pages on http's server (bus_http_ws_router), with browsers checked by
    auth (both borrowed; stop the server before destroying the edge).
    feed, if not NULL, is served beside /ws (static; the seeds' /ws/orders
    from bus_compat_ws_feed when compat is on: the node chooses, so the
    edge knows no compat code).  Returns the edge or NULL with the reason
    in err[err_cap].  */
bus_edge_t *bus_edge_new (const bus_config_t *config, bus_auth_t *auth,
                          bus_http_ws_router_t http,
                          const bus_edge_feed_t *feed, char *err,
                          size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_edge_destroy (bus_edge_t **self_p);

/*  New JSON object describing the edge's state for /healthz; *ok is set
    to whether it is in sync with a reachable writer.  */
json_t *bus_edge_health (bus_edge_t *self, bool *ok);

/*  New JSON of the snapshot a browser of table's room ("" for staff)
    would be sent now: {"type": "snapshot", "seq", "orders": [...]} (and
    "cart" for a table), or NULL if out of memory.  Caller owns.  For
    diagnostics and the selftest: browsers get theirs by themselves.  */
json_t *bus_edge_snapshot (bus_edge_t *self, const char *table);

/*  Selftest of the edge's actor against a fake writer (inproc sockets,
    no HTTP server): bus/roles/bus_edge_test.c.  */
void bus_edge_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
