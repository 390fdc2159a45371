/*  bus_fanout.h — writes queued WebSocket frames out to many browsers
    with a few threads.

    Each browser (a peer) has a bounded queue of shared frames.  Queuing
    never blocks and never writes: it marks the peer ready, and one of the
    fan-out's sender threads later writes what the peer has queued, up to
    64 frames or 64 KiB, in one system call (writev), then moves on to the
    next peer.  A peer is served by one thread at a time, so its frames go
    out in order, and a batch is written only if its socket can take it
    at once: a browser that stops reading keeps its frames queued (it is
    looked at again every 10 ms) instead of holding a thread.  When its queue is full it is cut off: the queue
    is dropped, it gets a close frame (4001, "slow consumer: reconnect
    with after_seq") if its socket can still take one, and its socket is
    shut down so that the server's reader ends the connection at once.  A
    write that fails is the end of the connection too.

    The peer's connection lock (bus_http_ws_lock, the server's own) is
    held around each write, so the server's own pings never land inside
    one of our frames.  A write that begins but cannot finish within 2 s
    (the room check makes that rare) ends the connection: it is logged and
    counted (bus_fanout_hung_up).  A new peer's first messages (its
    snapshot, which can be bigger than a socket buffer) are written by
    the connection's own thread instead (bus_fanout_start), so a slow
    browser's snapshot holds up nobody else.  */

#ifndef BUS_FANOUT_H_INCLUDED
#define BUS_FANOUT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "orderbus/bus_http_ws.h"
#include "orderbus/bus_wsframe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_fanout_t bus_fanout_t;
typedef struct _bus_fanout_peer_t bus_fanout_peer_t;

#define BUS_FANOUT_CLOSE_SLOW 4001   //  close code of a cut-off browser

/*  New fan-out with threads sender threads; each peer may queue up to
    queue_cap frames before it is cut off.  NULL if out of memory or a
    thread cannot start.  */
bus_fanout_t *bus_fanout_new (size_t threads, size_t queue_cap);

/*  Stop the threads and free.  Every peer must have left.  NULL-safe;
    nulls *self_p.  */
void bus_fanout_destroy (bus_fanout_t **self_p);

/*  New peer writing to socket fd of ws (bus_http_ws_socket).  ws may be
    NULL when nothing else ever writes to fd (the selftest).  The peer is
    held: what is pushed to it waits until bus_fanout_start, and its
    queue has no cap until that returns (a resuming browser's first
    messages, what it missed, may be more than queue_cap: the caller
    bounds them; events pushed while they are written add at most 30 s
    worth).  NULL if out of memory.  */
bus_fanout_peer_t *bus_fanout_join (bus_fanout_t *self, bus_http_ws_t *ws,
                                    int fd);

/*  Write what was pushed to the held peer so far (its snapshot) from the
    calling thread, which should be the connection's own: a snapshot
    bigger than the socket buffer may take its reader a while, and only
    this thread waits for it (up to 30 s, then the peer is hung up on).
    Then the cap applies and the sender threads take over.  */
void bus_fanout_start (bus_fanout_t *self, bus_fanout_peer_t *peer);

/*  Remove the peer: waits for a write to it in progress, drops what it
    still has queued, frees it.  Call it before ws goes away, and push
    nothing to it from then on.  Nulls *peer_p.  */
void bus_fanout_leave (bus_fanout_t *self, bus_fanout_peer_t **peer_p);

/*  Queue frame (the peer takes its own reference) for peer.  Never
    blocks.  Returns true if this call cut the peer off because its queue
    was full; a peer cut off or hung up on takes nothing more.  */
bool bus_fanout_push (bus_fanout_t *self, bus_fanout_peer_t *peer,
                      bus_wsframe_t *frame);

/*  How many peers were hung up on because a write to them failed or
    their socket took nothing for 2 s with a frame begun (each is logged);
    cut-offs for a full queue are not counted here.  */
size_t bus_fanout_hung_up (bus_fanout_t *self);

void bus_fanout_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
