/*  bus_reads_test.c — selftest of bus_reads: the settings it refuses, and
    which calls a replica answers and which the writer does, against two
    fake sync servers on inproc://.  */

#include <assert.h>
#include <stdatomic.h>
#include "orderbus/bus_reads.h"
#include "orderbus/bus_error.h"

//  A fake sync server: answers every request with seq 8, writer_seq
//  `wseq` (0: the writer), no items, and for GET on a replica not_found;
//  counts the requests it answers in calls; silent while mute.
typedef struct {
    const char *endpoint;
    uint64_t wseq;
    _Atomic int calls;
    atomic_bool mute;
} s_fake_t;

static void
s_fake_actor (zsock_t *pipe, void *args)
{
    s_fake_t *fake = (s_fake_t *) args;
    zsock_t *router = zsock_new_router (fake->endpoint);
    assert (router);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zsock_signal (pipe, 0);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *id = zmsg_pop (msg), *body = zmsg_pop (msg);
        if (atomic_load (&fake->mute)) {
            zframe_destroy (&id);
            zframe_destroy (&body);
            zmsg_destroy (&msg);
            continue;
        }
        bus_sync_req_t req;
        assert (
            bus_sync_req_decode (zframe_data (body), zframe_size (body), &req)
            == 0);
        bus_sync_reply_t reply = { .rid = req.rid,
                                   .seq = 8,
                                   .writer_seq = fake->wseq,
                                   .writer = { .id = "0123456789abcdef0123"
                                                     "456789abcdef",
                                               .epoch = 1 } };
        if (req.op == BUS_SYNC_GET && fake->wseq)
            reply.status = BUS_ERR_NOT_FOUND;
        fake->calls++;
        zmsg_t *out = zmsg_new ();
        zmsg_append (out, &id);
        zframe_t *header = bus_sync_reply_encode (&reply);
        zmsg_append (out, &header);
        zmsg_send (&out, router);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_expect (bus_reads_t *reads, const char *err, const char *want, bool verbose)
{
    if (verbose)
        printf ("    refused: %s\n", err);
    assert (!reads && strstr (err, want));
}

static void
s_test_refusals (bool verbose)
{
    char err[BUS_ERROR_MAX * 2];
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
    strcpy (config.reads, "tcp://127.0.0.1:1,");
    s_expect (bus_reads_new (&config, NULL, NULL, err, sizeof err), err,
              "none empty", verbose);
    strcpy (config.reads, "tcp://127.0.0.1:1, ,tcp://127.0.0.1:2");
    s_expect (bus_reads_new (&config, NULL, NULL, err, sizeof err), err,
              "none empty", verbose);
    strcpy (config.reads, "http://127.0.0.1:1");
    s_expect (bus_reads_new (&config, NULL, NULL, err, sizeof err), err,
              "is not a tcp://", verbose);
    strcpy (config.reads, "tcp://10.0.0.5:5560");
    s_expect (bus_reads_new (&config, NULL, NULL, err, sizeof err), err,
              "can be reached from other hosts", verbose);
    strcpy (config.reads, "tcp://127.0.0.1:1");
    strcpy (config.reads_key, "k.cert");
    s_expect (bus_reads_new (&config, NULL, NULL, err, sizeof err), err,
              "link/reads_key is set but link/cert", verbose);
    *config.reads_key = '\0';
    *config.reads = '\0';
    for (int i = 0; i < BUS_READS_MAX + 1; i++)
        strcat (config.reads, i ? ",inproc://r" : "inproc://r");
    s_expect (bus_reads_new (&config, NULL, NULL, err, sizeof err), err,
              "1 to 16 endpoints", verbose);
}

static void
s_test_routes (bool verbose)
{
    (void) verbose;
    s_fake_t writer = { .endpoint = "inproc://reads-test-writer" },
             replica = { .endpoint = "inproc://reads-test-replica",
                         .wseq = 10 };
    zactor_t *writer_actor = zactor_new (s_fake_actor, &writer),
             *replica_actor = zactor_new (s_fake_actor, &replica);
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
    config.ack_timeout_ms = 300;
    strcpy (config.reads, replica.endpoint);
    char err[BUS_ERROR_MAX * 2];
    bus_sync_t *sync = bus_sync_new (writer.endpoint, 300, NULL);
    bus_reads_t *reads = bus_reads_new (&config, sync, NULL, err, sizeof err);
    assert (reads);
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    //  A list is the replica's, with how far behind it is
    bus_sync_req_t req = { .op = BUS_SYNC_LIST, .limit = 10 };
    bus_epoch_t follows = { .id = "0123456789abcdef0123456789abcdef",
                            .epoch = 1 };
    assert (bus_reads_call (reads, &req, &reply, &items, &follows) == 0);
    assert (reply.writer_seq == 10 && replica.calls == 1 && writer.calls == 0);
    zmsg_destroy (&items);
    //  The caller follows a newer history (a failover the replica has not
    //  followed yet): the writer answers
    follows.epoch = 2;
    assert (bus_reads_call (reads, &req, &reply, &items, &follows) == 0);
    assert (reply.writer_seq == 0 && replica.calls == 2 && writer.calls == 1);
    zmsg_destroy (&items);
    replica.calls = 1;
    writer.calls = 0;
    //  An order the replica has not got: the writer's
    req = (bus_sync_req_t){ .op = BUS_SYNC_GET, .id = 5 };
    assert (bus_reads_call (reads, &req, &reply, &items, NULL) == 0);
    assert (reply.status == 0 && reply.writer_seq == 0 && replica.calls == 2
            && writer.calls == 1);
    zmsg_destroy (&items);
    //  A replay it holds nothing of (seq 8 < 9): the writer's
    req = (bus_sync_req_t){ .op = BUS_SYNC_REPLAY, .from = 9, .limit = 5 };
    assert (bus_reads_call (reads, &req, &reply, &items, NULL) == 0);
    assert (reply.writer_seq == 0 && replica.calls == 3 && writer.calls == 2);
    zmsg_destroy (&items);
    //  What must be current never goes to the replica
    req = (bus_sync_req_t){ .op = BUS_SYNC_TABLE, .table = "T1" };
    assert (bus_reads_call (reads, &req, &reply, &items, NULL) == 0);
    zmsg_destroy (&items);
    req = (bus_sync_req_t){ .op = BUS_SYNC_MENU };
    assert (bus_reads_call (reads, &req, &reply, &items, NULL) == 0);
    zmsg_destroy (&items);
    assert (replica.calls == 3 && writer.calls == 4);
    //  The replica silent (stopped): one timeout, then it rests and the
    //  writer answers
    atomic_store (&replica.mute, true);
    req = (bus_sync_req_t){ .op = BUS_SYNC_LIST, .limit = 10 };
    int64_t start = zclock_mono ();
    assert (bus_reads_call (reads, &req, &reply, &items, NULL) == 0);
    zmsg_destroy (&items);
    assert (zclock_mono () - start >= 300 && writer.calls == 5);
    start = zclock_mono ();
    assert (bus_reads_call (reads, &req, &reply, &items, NULL) == 0);
    zmsg_destroy (&items);
    assert (zclock_mono () - start < 250 && writer.calls == 6);
    bus_reads_stats_t stats = bus_reads_stats (reads);
    assert (stats.replicas == 1 && stats.replica == 1 && stats.writer == 5);
    bus_reads_destroy (&reads);
    bus_reads_destroy (&reads);
    bus_sync_destroy (&sync);
    zactor_destroy (&replica_actor);
    zactor_destroy (&writer_actor);
}

//  A call whose socket has nowhere to queue (a failover group's list of
//  endpoints, none up: such sockets queue on connected peers only) gives
//  up by its deadline, as bus_sync.h says, and does not wait for a peer
static void
s_test_deadline (bool verbose)
{
    bus_sync_t *sync =
        bus_sync_new ("tcp://127.0.0.1:1,tcp://127.0.0.1:2", 300, NULL);
    bus_sync_req_t req = { .op = BUS_SYNC_STATS };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    int64_t start = zclock_mono ();
    int rc = bus_sync_call (sync, &req, &reply, &items);
    int64_t took = zclock_mono () - start;
    if (verbose)
        printf ("    no writer up: %s after %" PRId64 " ms\n",
                bus_strerror (rc), took);
    assert (rc != 0 && took < 1000);
    bus_sync_destroy (&sync);
}

void
bus_reads_test (bool verbose)
{
    printf (" * bus_reads: ");
    if (verbose)
        printf ("\n");
    s_test_refusals (verbose);
    s_test_routes (verbose);
    s_test_deadline (verbose);
    printf ("OK\n");
}
