/*  bus_reads.c — a gateway's or edge's reads, to replicas or the writer
    (the contract is in bus_reads.h).  */

#include <stdatomic.h>
#include "orderbus/bus_reads.h"
#include "orderbus/bus_error.h"

#define S_REST_MS 3000   //  a replica that did not answer is left alone

typedef struct {
    char endpoint[BUS_ENDPOINT_MAX];
    bus_curve_t *pin;             //  CURVE client pinning its key, or NULL
    bus_sync_t *sync;             //  its client
    _Atomic int64_t rest_until;   //  zclock_mono; tried again after it
} s_replica_t;

struct _bus_reads_t {
    bus_sync_t *writer;   //  borrowed
    s_replica_t replicas[BUS_READS_MAX];
    int count;
    atomic_uint_fast64_t turn;   //  round robin
    atomic_uint_fast64_t by_replica, by_writer;
};

//  The i-th comma-separated item of list into item[cap], trimmed of
//  spaces.  The number of items, or -1 for an empty or too long item.
static int
s_item (const char *list, int i, char *item, size_t cap)
{
    int count = 0;
    for (const char *p = list; *p; count++) {
        const char *end = strchr (p, ',');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 0 || len >= cap)
            return -1;
        if (count == i)
            memcpy (item, p, len), item[len] = '\0';
        p = end ? end + 1 : p + strlen (p);
        if (end && !*p)
            return -1;   //  a trailing comma
    }
    return count;
}

//  Replica i: its endpoint, its pin, its client.  0, or -1 with err set.
static int
s_replica_init (bus_reads_t *self, const bus_config_t *config,
                const bus_curve_t *curve, int i, int keys, char *err,
                size_t err_cap)
{
    s_replica_t *replica = &self->replicas[i];
    s_item (config->reads, i, replica->endpoint, sizeof replica->endpoint);
    if (strncmp (replica->endpoint, "tcp://", 6)
        && strncmp (replica->endpoint, "ipc://", 6)
        && strncmp (replica->endpoint, "inproc://", 9))
        return bus_error_set (err, err_cap, -1,
                              "endpoints/reads: '%s' is not a tcp://, "
                              "ipc:// or inproc:// endpoint",
                              replica->endpoint);
    if (bus_curve_enabled (curve)) {
        char key[BUS_PATH_MAX];
        s_item (config->reads_key, keys == 1 ? 0 : i, key, sizeof key);
        replica->pin = bus_curve_pin (curve, key, err, err_cap);
        if (!replica->pin)
            return -1;
    } else if (!bus_curve_endpoint_local (replica->endpoint)
               && !config->insecure_links)
        return bus_error_set (err, err_cap, -1,
                              "endpoints/reads %s can be reached from other "
                              "hosts, but link/cert (--cert) is not set: "
                              "reads would be neither encrypted nor "
                              "authenticated (docs/security.md)",
                              replica->endpoint);
    replica->sync =
        bus_sync_new (replica->endpoint, config->ack_timeout_ms, replica->pin);
    return replica->sync ? 0
                         : bus_error_set (err, err_cap, -1, "out of memory");
}

bus_reads_t *
bus_reads_new (const bus_config_t *config, bus_sync_t *writer,
               const bus_curve_t *curve, char *err, size_t err_cap)
{
    bus_reads_t *self = calloc (1, sizeof *self);
    if (!self) {
        bus_error_set (err, err_cap, -1, "out of memory");
        return NULL;
    }
    self->writer = writer;
    char item[BUS_PATH_MAX];
    int count =
        *config->reads ? s_item (config->reads, 0, item, sizeof item) : 0;
    int keys = *config->reads_key
                   ? s_item (config->reads_key, 0, item, sizeof item)
                   : 0;
    int rc = 0;
    if (count < 0 || count > BUS_READS_MAX)
        rc = bus_error_set (err, err_cap, -1,
                            "endpoints/reads: 1 to %d endpoints, "
                            "comma-separated, none empty",
                            BUS_READS_MAX);
    else if (bus_curve_enabled (curve) && count
             && !(keys == 1 || keys == count))
        rc = bus_error_set (err, err_cap, -1,
                            "link/reads_key: give one key (or .cert file) "
                            "for all of endpoints/reads' %d replicas, or "
                            "one each, comma-separated, in the same order",
                            count);
    else if (keys && !bus_curve_enabled (curve))
        rc = bus_error_set (err, err_cap, -1,
                            "link/reads_key is set but link/cert (--cert) "
                            "is not: give this node its secret certificate");
    for (int i = 0; rc == 0 && i < count; i++, self->count++)
        rc = s_replica_init (self, config, curve, i, keys, err, err_cap);
    if (rc != 0)
        bus_reads_destroy (&self);
    return self;
}

void
bus_reads_destroy (bus_reads_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_reads_t *self = *self_p;
    for (int i = 0; i < BUS_READS_MAX; i++) {
        bus_sync_destroy (&self->replicas[i].sync);
        bus_curve_destroy (&self->replicas[i].pin);
    }
    free (self);
    *self_p = NULL;
}

static bool
s_movable (bus_sync_op_t op)
{
    return op == BUS_SYNC_SNAPSHOT || op == BUS_SYNC_REPLAY
           || op == BUS_SYNC_LIST || op == BUS_SYNC_GET
           || op == BUS_SYNC_REPORT;
}

//  The next replica in turn that is not resting, or NULL
static s_replica_t *
s_pick (bus_reads_t *self)
{
    int64_t now = zclock_mono ();
    uint64_t turn = atomic_fetch_add (&self->turn, 1);
    for (int i = 0; i < self->count; i++) {
        s_replica_t *replica = &self->replicas[(turn + i) % self->count];
        if (atomic_load (&replica->rest_until) <= now)
            return replica;
    }
    return NULL;
}

//  True if the replica's answer to req stands, false if the writer
//  should answer it (bus_reads.h says when).
static bool
s_stands (const bus_sync_req_t *req, const bus_sync_reply_t *reply,
          const bus_epoch_t *follows)
{
    if (reply->status == BUS_ERR_UNAVAILABLE)
        return false;
    //  A replica still on the history the caller left (not re-attached
    //  after a failover) would take the caller back to it
    if (follows && follows->epoch && !bus_epoch_same (&reply->writer, follows))
        return false;
    if (req->op == BUS_SYNC_GET && reply->status == BUS_ERR_NOT_FOUND)
        return false;
    //  A replay short of what was asked, ending at the replica's last
    //  seq: the rest may well exist on the writer
    if (req->op == BUS_SYNC_REPLAY && reply->status == 0
        && reply->count < req->limit && reply->seq < req->from + req->limit - 1)
        return false;
    return true;
}

int
bus_reads_call (bus_reads_t *self, bus_sync_req_t *req, bus_sync_reply_t *reply,
                zmsg_t **items, const bus_epoch_t *follows)
{
    s_replica_t *replica =
        self->count && s_movable (req->op) ? s_pick (self) : NULL;
    if (replica) {
        int rc = bus_sync_call (replica->sync, req, reply, items);
        if (rc == 0 && s_stands (req, reply, follows)) {
            atomic_fetch_add (&self->by_replica, 1);
            return 0;
        }
        if (rc == 0)
            zmsg_destroy (items);
        else {
            //  Picked, so it was not resting: one line per rest
            atomic_store (&replica->rest_until, zclock_mono () + S_REST_MS);
            zsys_warning ("reads: replica %s did not answer (%s): the "
                          "writer answers for %d ms",
                          replica->endpoint, bus_strerror (rc), S_REST_MS);
        }
    }
    if (self->count && s_movable (req->op))
        atomic_fetch_add (&self->by_writer, 1);
    int rc = bus_sync_call (self->writer, req, reply, items);
    if (rc == 0)
        reply->writer_seq = reply->heard_ms = 0;
    return rc;
}

void
bus_reads_set_older (bus_reads_t *self, bus_sync_older_fn *fn, void *arg)
{
    for (int i = 0; i < self->count; i++)
        bus_sync_set_older (self->replicas[i].sync, fn, arg);
}

bus_reads_stats_t
bus_reads_stats (bus_reads_t *self)
{
    return (bus_reads_stats_t){ .replica = atomic_load (&self->by_replica),
                                .writer = atomic_load (&self->by_writer),
                                .replicas = self->count };
}
