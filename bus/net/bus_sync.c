/*  bus_sync.c — pooled DEALER client of the writer's sync ROUTER.

    Sockets are not thread-safe, so each call takes a socket out of the
    pool under the mutex and puts it back afterwards; handing a socket
    between threads under a mutex is allowed by ZeroMQ (full barrier).
    A socket whose call timed out is destroyed rather than returned, so a
    late reply can never be read as the answer to a later request.

    A pooled socket sits idle between calls, and libzmq gives up its
    connection for good when a handshake fails on a protocol or auth
    error (bus_curve.h: a plaintext process on the writer's port, say):
    the next request on it would go into a connection being torn down
    and be lost, a whole timeout for nothing (an edge's catch-up then
    timed out and every browser was resynced).  So each pooled socket's
    handshakes are watched, and one whose connection was given up is
    replaced when a call takes it.  */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_sync.h"

//  A DEALER and the watch of its handshakes (NULL on plaintext)
typedef struct {
    zsock_t *sock;
    bus_curve_watch_t *watch;
} s_conn_t;

struct _bus_sync_t {
    char *endpoint;             //  writer's sync endpoint
    int timeout_ms;             //  per-call deadline
    const bus_curve_t *curve;   //  CURVE client keys, or NULL; not ours
    pthread_mutex_t lock;       //  guards pool
    zlist_t *pool;              //  idle s_conn_t
    atomic_uint_fast64_t rid;   //  last request id handed out
    bus_sync_older_fn *older;   //  refuses a deposed writer's reply
    void *older_arg;
};

static void
s_conn_destroy (s_conn_t **conn_p)
{
    s_conn_t *conn = *conn_p;
    if (!conn)
        return;
    bus_curve_watch_destroy (&conn->watch);   //  before its socket
    zsock_destroy (&conn->sock);
    free (conn);
    *conn_p = NULL;
}

//  A new DEALER connected to endpoint, or NULL
static s_conn_t *
s_conn_new (bus_sync_t *self)
{
    s_conn_t *conn = calloc (1, sizeof *conn);
    if (!conn || !(conn->sock = zsock_new (ZMQ_DEALER))) {
        free (conn);
        return NULL;
    }
    zsock_set_linger (conn->sock, 0);
    //  A send waits while the socket has no connection to queue on (a
    //  failover group's list queues on connected peers only): never
    //  past the call's deadline
    zsock_set_sndtimeo (conn->sock, self->timeout_ms);
    conn->watch = bus_curve_watch_new (self->curve, conn->sock, self->endpoint);
    if (bus_curve_enabled (self->curve) && !conn->watch)
        s_conn_destroy (&conn);   //  out of memory
    else if (bus_link_connect (conn->sock, self->endpoint, self->curve) != 0)
        s_conn_destroy (&conn);
    return conn;
}

bus_sync_t *
bus_sync_new (const char *endpoint, int timeout_ms, const bus_curve_t *curve)
{
    bus_sync_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    self->timeout_ms = timeout_ms;
    self->curve = curve;
    self->pool = zlist_new ();
    pthread_mutex_init (&self->lock, NULL);
    if (!self->endpoint || !self->pool)
        bus_sync_destroy (&self);
    return self;
}

void
bus_sync_destroy (bus_sync_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_sync_t *self = *self_p;
    s_conn_t *conn;
    while (self->pool && (conn = (s_conn_t *) zlist_pop (self->pool)))
        s_conn_destroy (&conn);
    zlist_destroy (&self->pool);
    pthread_mutex_destroy (&self->lock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  An idle socket from the pool, or a new one; NULL if none can be made
static s_conn_t *
s_take (bus_sync_t *self)
{
    pthread_mutex_lock (&self->lock);
    s_conn_t *conn = (s_conn_t *) zlist_pop (self->pool);
    pthread_mutex_unlock (&self->lock);
    if (conn && bus_curve_watch_refused (conn->watch)) {
        zsys_info ("link to %s: an idle connection's handshake was "
                   "refused (not CURVE, or not the writer's key, or ours "
                   "not allowed): a new one is made",
                   self->endpoint);
        s_conn_destroy (&conn);
    }
    return conn ? conn : s_conn_new (self);
}

static void
s_give_back (bus_sync_t *self, s_conn_t *conn)
{
    pthread_mutex_lock (&self->lock);
    zlist_append (self->pool, conn);
    pthread_mutex_unlock (&self->lock);
}

/*  Wait for the reply to rid on sock, skipping none: a pooled socket only
    ever has the reply of its own last request outstanding.  */
static int
s_receive (zsock_t *sock, uint64_t rid, int wait_ms, bus_sync_reply_t *reply,
           zmsg_t **items)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zpoller_set_nonstop (poller, true);
    void *which = zpoller_wait (poller, wait_ms);
    zpoller_destroy (&poller);
    if (!which)
        return BUS_ERR_TIMEOUT;
    zmsg_t *msg = zmsg_recv (sock);
    zframe_t *header = msg ? zmsg_pop (msg) : NULL;
    int rc = header ? bus_sync_reply_decode (zframe_data (header),
                                             zframe_size (header), reply)
                    : BUS_ERR_MALFORMED;
    zframe_destroy (&header);
    if (rc == 0 && (reply->rid != rid || zmsg_size (msg) != reply->count))
        rc = BUS_ERR_MALFORMED;
    if (rc == 0)
        *items = msg;
    else
        zmsg_destroy (&msg);
    return rc;
}

void
bus_sync_set_older (bus_sync_t *self, bus_sync_older_fn *fn, void *arg)
{
    self->older = fn;
    self->older_arg = arg;
}

//  A reply of an epoch older than the newest heard (a deposed writer's
//  still bound, a replica not re-attached after a failover) is refused
//  as such a writer would: unavailable, retry
static void
s_refuse_older (bus_sync_t *self, bus_sync_reply_t *reply, zmsg_t **items)
{
    if (!self->older || !self->older (self->older_arg, &reply->writer))
        return;
    zmsg_destroy (items);
    *items = zmsg_new ();
    reply->status = BUS_ERR_UNAVAILABLE;
    reply->count = 0;
    snprintf (reply->error, sizeof reply->error,
              "an answer of epoch %016" PRIx64 ", older than the newest "
              "heard: not the primary any more, retry",
              reply->writer.epoch);
}

int
bus_sync_call (bus_sync_t *self, bus_sync_req_t *req, bus_sync_reply_t *reply,
               zmsg_t **items)
{
    s_conn_t *conn = s_take (self);
    if (!conn)
        return BUS_ERR_UNAVAILABLE;
    int64_t deadline = zclock_mono () + self->timeout_ms;
    req->rid = atomic_fetch_add (&self->rid, 1) + 1;
    zframe_t *frame = bus_sync_req_encode (req);
    if (!frame || zframe_send (&frame, conn->sock, 0) != 0) {
        zframe_destroy (&frame);
        s_conn_destroy (&conn);
        return BUS_ERR_UNAVAILABLE;
    }
    int64_t left = deadline - zclock_mono ();
    int rc = s_receive (conn->sock, req->rid, left > 0 ? (int) left : 0, reply,
                        items);
    if (rc == 0)
        s_refuse_older (self, reply, items);
    if (rc == 0)
        s_give_back (self, conn);
    else
        s_conn_destroy (&conn);
    return rc;
}

int
bus_sync_orders (bus_sync_t *self, bus_sync_order_fn *fn, void *arg,
                 uint64_t *seq)
{
    bus_order_t *order = malloc (sizeof *order);
    bus_sync_req_t req = { .op = BUS_SYNC_LIST, .limit = 1000 };
    int rc = order ? 0 : BUS_ERR_NOMEM;
    while (rc == 0) {
        bus_sync_reply_t reply;
        zmsg_t *items = NULL;
        rc = bus_sync_call (self, &req, &reply, &items);
        if (rc == 0 && reply.status != 0)
            rc = reply.status;
        if (rc == 0 && !req.from && seq)
            *seq = reply.seq;
        for (zframe_t *f = rc ? NULL : zmsg_first (items); f;
             f = zmsg_next (items))
            if (bus_order_decode (zframe_data (f), zframe_size (f), order) == 0)
                fn (order, arg);
        zmsg_destroy (&items);
        if (rc != 0 || reply.next == 0)
            break;
        req.from = reply.next;
    }
    free (order);
    return rc;
}
