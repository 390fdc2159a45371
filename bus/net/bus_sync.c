/*  bus_sync.c — pooled DEALER client of the writer's sync ROUTER.

    Sockets are not thread-safe, so each call takes a socket out of the
    pool under the mutex and puts it back afterwards; handing a socket
    between threads under a mutex is allowed by ZeroMQ (full barrier).
    A socket whose call timed out is destroyed rather than returned, so a
    late reply can never be read as the answer to a later request.  */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_link.h"
#include "orderbus/bus_sync.h"

struct _bus_sync_t {
    char *endpoint;             //  writer's sync endpoint
    int timeout_ms;             //  per-call deadline
    const bus_curve_t *curve;   //  CURVE client keys, or NULL; not ours
    pthread_mutex_t lock;       //  guards pool
    zlist_t *pool;              //  idle zsock_t DEALER sockets
    atomic_uint_fast64_t rid;   //  last request id handed out
    bus_sync_older_fn *older;   //  refuses a deposed writer's reply
    void *older_arg;
};

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
    zsock_t *sock;
    while (self->pool && (sock = (zsock_t *) zlist_pop (self->pool)))
        zsock_destroy (&sock);
    zlist_destroy (&self->pool);
    pthread_mutex_destroy (&self->lock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static zsock_t *
s_take (bus_sync_t *self)
{
    pthread_mutex_lock (&self->lock);
    zsock_t *sock = (zsock_t *) zlist_pop (self->pool);
    pthread_mutex_unlock (&self->lock);
    if (!sock) {
        sock = zsock_new (ZMQ_DEALER);
        if (sock) {
            zsock_set_linger (sock, 0);
            if (bus_link_connect (sock, self->endpoint, self->curve) != 0)
                zsock_destroy (&sock);
        }
    }
    return sock;
}

static void
s_give_back (bus_sync_t *self, zsock_t *sock)
{
    pthread_mutex_lock (&self->lock);
    zlist_append (self->pool, sock);
    pthread_mutex_unlock (&self->lock);
}

/*  Wait for the reply to rid on sock, skipping none: a pooled socket only
    ever has the reply of its own last request outstanding.  */
static int
s_receive (bus_sync_t *self, zsock_t *sock, uint64_t rid,
           bus_sync_reply_t *reply, zmsg_t **items)
{
    zpoller_t *poller = zpoller_new (sock, NULL);
    zpoller_set_nonstop (poller, true);
    void *which = zpoller_wait (poller, self->timeout_ms);
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
    zsock_t *sock = s_take (self);
    if (!sock)
        return BUS_ERR_UNAVAILABLE;
    req->rid = atomic_fetch_add (&self->rid, 1) + 1;
    zframe_t *frame = bus_sync_req_encode (req);
    if (!frame || zframe_send (&frame, sock, 0) != 0) {
        zframe_destroy (&frame);
        zsock_destroy (&sock);
        return BUS_ERR_UNAVAILABLE;
    }
    int rc = s_receive (self, sock, req->rid, reply, items);
    if (rc == 0)
        s_refuse_older (self, reply, items);
    if (rc == 0)
        s_give_back (self, sock);
    else
        zsock_destroy (&sock);
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
