/*  bus_gateway_test.c — the gateway's selftest, the way czmq tests an
    actor: start it, talk to it over sockets, stop it.

    The writer here is a fake made of sockets in the test, bound on
    inproc:// endpoints: a PULL that reads the gateway's commands, a PUB
    for heartbeats and acks, and a ROUTER (on a thread of its own) that
    answers every sync request with an empty reply, as the gateway's
    pings need.  So the test decides when, and whether, each ack comes.  */

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_topic.h"

#define S_NAME           "gw-selftest"
#define S_ACK_TIMEOUT_MS 1000   //  gateway/ack_timeout_ms in this test
#define S_TEST_WRITER_ID "0123456789abcdef0123456789abcdef"
#define S_WAIT_MS        5000   //  longest wait for anything expected
#define S_RACE_THREADS   8      //  threads sending the same key at once
#define S_RACE_SENDS     250    //  sends per thread and round
#define S_RACE_ROUNDS    3

//  How one command ended: filled by its done function
typedef struct {
    atomic_int calls;   //  times done was called: must end at 1
    int rc;
    int status;   //  the ack's
    bool duplicate;
    uint64_t seq;   //  the ack's event's
    char key[BUS_KEY_MAX];
} s_answer_t;

//  The fake writer
typedef struct {
    zsock_t *pull;        //  intake: the gateway's commands
    zsock_t *pub;         //  events: heartbeats and acks
    zactor_t *sync;       //  answers the gateway's sync requests
    bus_cmd_t *cmd;       //  scratch
    bus_ack_t *ack;       //  scratch
    bus_epoch_t epoch;    //  the history its heartbeats carry
    uint64_t ack_epoch;   //  ...and its acks (0: none, an older writer)
} s_writer_t;

//  The epoch the fake writer's sync replies carry
static atomic_uint_fast64_t s_sync_epoch = 1;

static void
s_done (void *arg, int rc, const bus_ack_t *ack)
{
    s_answer_t *answer = (s_answer_t *) arg;
    answer->rc = rc;
    if (ack) {
        answer->status = ack->status;
        answer->duplicate = ack->duplicate;
        answer->seq = ack->event.seq;
        memcpy (answer->key, ack->key, sizeof answer->key);
    }
    atomic_fetch_add (&answer->calls, 1);
}

//  Wait until answer has been called at least once; false if it was
//  not within ms.
static bool
s_answered (s_answer_t *answer, int ms)
{
    int64_t end = zclock_mono () + ms;
    while (atomic_load (&answer->calls) == 0 && zclock_mono () < end)
        zclock_sleep (1);
    return atomic_load (&answer->calls) > 0;
}

//  ---------------------------------------------------------------------
//  The fake writer

//  Every sync request gets an empty, successful reply
static void
s_sync_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ((const char *) args);
    assert (router);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zsock_signal (pipe, 0);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = msg ? zmsg_pop (msg) : NULL;
        zframe_t *body = msg ? zmsg_pop (msg) : NULL;
        bus_sync_req_t req;
        if (identity && body
            && bus_sync_req_decode (zframe_data (body), zframe_size (body),
                                    &req)
                   == 0) {
            bus_sync_reply_t reply = { .rid = req.rid,
                                       .writer = { S_TEST_WRITER_ID,
                                                   atomic_load (&s_sync_epoch),
                                                   0, 0 } };
            zmsg_t *out = zmsg_new ();
            zmsg_append (out, &identity);
            zframe_t *header = bus_sync_reply_encode (&reply);
            zmsg_append (out, &header);
            zmsg_send (&out, router);
        }
        zframe_destroy (&identity);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
s_writer_init (s_writer_t *writer, const bus_config_t *config)
{
    writer->pull = zsock_new_pull (config->intake);
    writer->pub = zsock_new_pub (config->events);
    assert (writer->pull && writer->pub);
    zsock_set_rcvtimeo (writer->pull, S_WAIT_MS);
    writer->sync = zactor_new (s_sync_actor, (void *) config->sync);
    writer->cmd = calloc (1, sizeof *writer->cmd);
    writer->ack = calloc (1, sizeof *writer->ack);
    assert (writer->sync && writer->cmd && writer->ack);
    writer->epoch = (bus_epoch_t){ S_TEST_WRITER_ID, 1, 0, 0 };
    writer->ack_epoch = 1;
}

static void
s_writer_fini (s_writer_t *writer)
{
    zactor_destroy (&writer->sync);
    zsock_destroy (&writer->pull);
    zsock_destroy (&writer->pub);
    free (writer->cmd);
    free (writer->ack);
}

static void
s_heartbeat (s_writer_t *writer)
{
    bus_heartbeat_t hb = { 0, zclock_time (), writer->epoch, BUS_STORAGE_OK,
                           false };
    zframe_t *body = bus_heartbeat_encode (&hb);
    zstr_sendm (writer->pub, BUS_TOPIC_HEARTBEAT);
    zframe_send (&body, writer->pub, 0);
}

//  The next command the gateway sent, decoded into writer->cmd; its
//  frame is returned (caller destroys).  Asserts that one came.
static zframe_t *
s_take_cmd (s_writer_t *writer)
{
    zframe_t *frame = zframe_recv (writer->pull);
    assert (frame);
    int rc =
        bus_cmd_decode (zframe_data (frame), zframe_size (frame), writer->cmd);
    assert (rc == 0);
    assert (streq (writer->cmd->origin, S_NAME));
    return frame;
}

//  Commands waiting on the intake now, at most max, each checked to be
//  whole: byte for byte the expected frame.
static int
s_drain (s_writer_t *writer, zframe_t *expected, int max)
{
    int count = 0;
    zframe_t *frame;
    while (count < max && (frame = zframe_recv_nowait (writer->pull))) {
        assert (zframe_eq (frame, expected));
        zframe_destroy (&frame);
        count++;
    }
    return count;
}

//  Publish an ack for key and fingerprint on the gateway's ack topic.
//  status 0 carries an order.placed event of seq.
static void
s_send_ack (s_writer_t *writer, const char *key, uint64_t fingerprint,
            int status, bool duplicate, uint64_t seq)
{
    bus_ack_t *ack = writer->ack;
    memset (ack, 0, sizeof *ack);
    bus_strlcpy (ack->key, key, sizeof ack->key);
    ack->fingerprint = fingerprint;
    ack->status = status;
    ack->duplicate = duplicate;
    if (writer->ack_epoch)
        ack->writer = (bus_epoch_t){ S_TEST_WRITER_ID, writer->ack_epoch,
                                     writer->ack_epoch - 1, 0 };
    if (status == 0) {
        bus_event_t *event = &ack->event;
        event->seq = seq;
        event->ts_ms = zclock_time ();
        event->type = BUS_EVENT_ORDER_PLACED;
        bus_order_t *order = &event->order;
        order->id = seq;
        order->seq = seq;
        order->version = 1;
        order->status = BUS_STATUS_PLACED;
        bus_strlcpy (order->table, "T1", sizeof order->table);
        bus_strlcpy (order->key, key, sizeof order->key);
        bus_strlcpy (order->origin, S_NAME, sizeof order->origin);
        order->created_ms = order->updated_ms = event->ts_ms;
        order->status_ms[BUS_STATUS_PLACED] = event->ts_ms;
        order->line_count = 1;
        order->lines[0].line_id = 1;
        bus_strlcpy (order->lines[0].item_id, "fries",
                     sizeof order->lines[0].item_id);
        bus_strlcpy (order->lines[0].name, "Fries",
                     sizeof order->lines[0].name);
        order->lines[0].qty = 1;
    } else
        bus_strlcpy (ack->error, bus_strerror (status), sizeof ack->error);
    char topic[BUS_TOPIC_MAX];
    int rc = bus_topic_ack (topic, sizeof topic, S_NAME);
    assert (rc == 0);
    zframe_t *body = bus_ack_encode (ack);
    assert (body);
    zstr_sendm (writer->pub, topic);
    zframe_send (&body, writer->pub, 0);
}

//  ---------------------------------------------------------------------
//  The gateway's side

static void
s_cmd (bus_cmd_t *cmd, const char *key, uint32_t qty)
{
    memset (cmd, 0, sizeof *cmd);
    cmd->type = BUS_CMD_PLACE;
    bus_strlcpy (cmd->key, key, sizeof cmd->key);
    bus_strlcpy (cmd->table, "T1", sizeof cmd->table);
    cmd->line_count = 1;
    bus_strlcpy (cmd->lines[0].item_id, "fries", sizeof cmd->lines[0].item_id);
    cmd->lines[0].qty = qty;
}

static json_int_t
s_stat (bus_gateway_t *gateway, const char *name)
{
    json_t *stats = bus_gateway_stats (gateway);
    json_int_t value = json_integer_value (
        json_object_get (json_object_get (stats, "gateway"), name));
    json_decref (stats);
    return value;
}

//  Publish an unreadable ack and wait until the gateway has counted it:
//  then its listener has handled everything published before (one PUB,
//  one SUB: in order), done calls included.
static void
s_flush (bus_gateway_t *gateway, s_writer_t *writer)
{
    json_int_t dropped = s_stat (gateway, "dropped");
    zstr_sendm (writer->pub, "A/" S_NAME "/");
    zstr_send (writer->pub, "not msgpack");
    int64_t end = zclock_mono () + S_WAIT_MS;
    while (s_stat (gateway, "dropped") == dropped) {
        assert (zclock_mono () < end);
        zclock_sleep (1);
    }
    assert (s_stat (gateway, "dropped") == dropped + 1);
}

//  Threads that send one key's command over and over, each send a
//  retry of a command still in flight, while the test's main thread
//  keeps publishing its ack: every retry's frame must be whole when it
//  is sent, whenever the ack that ends it arrives.
typedef struct {
    bus_gateway_t *gateway;
    s_answer_t *answers;   //  S_RACE_SENDS of them
} s_race_t;

//  The race's command: as large as a command gets (every line with a
//  full note), so that a send takes long enough to be overtaken.
static void
s_race_cmd (bus_cmd_t *cmd)
{
    s_cmd (cmd, "gw-race", 1);
    cmd->line_count = BUS_LINES_MAX;
    for (uint32_t i = 0; i < BUS_LINES_MAX; i++) {
        bus_line_t *line = &cmd->lines[i];
        bus_strlcpy (line->item_id, "fries", sizeof line->item_id);
        line->qty = 1 + i % BUS_QTY_MAX;
        memset (line->note, 'n', BUS_NOTE_MAX - 1);
        line->note[BUS_NOTE_MAX - 1] = 0;
        line->mod_count = BUS_MODS_MAX;
        for (uint32_t m = 0; m < BUS_MODS_MAX; m++)
            snprintf (line->mods[m].id, sizeof line->mods[m].id,
                      "modifier-%u-of-line-%u", m, i);
    }
}

static void *
s_race_sender (void *args)
{
    s_race_t *race = (s_race_t *) args;
    bus_cmd_t *cmd = malloc (sizeof *cmd);
    assert (cmd);
    for (int i = 0; i < S_RACE_SENDS; i++) {
        s_race_cmd (cmd);
        int rc;
        while ((rc = bus_gateway_send (race->gateway, cmd, s_done,
                                       &race->answers[i]))
               == BUS_ERR_OVERLOADED)
            zclock_sleep (1);
        assert (rc == 0);
    }
    free (cmd);
    return NULL;
}

static void
s_test_race (bus_gateway_t *gateway, s_writer_t *writer, bus_cmd_t *cmd)
{
    s_answer_t *answers =
        calloc (S_RACE_THREADS * S_RACE_SENDS, sizeof *answers);
    assert (answers);
    s_race_t races[S_RACE_THREADS];
    pthread_t threads[S_RACE_THREADS];
    s_race_cmd (cmd);
    uint64_t fingerprint = bus_cmd_fingerprint (cmd);
    bus_strlcpy (cmd->origin, S_NAME, sizeof cmd->origin);
    zframe_t *expected = bus_cmd_encode (cmd);
    assert (expected);
    int rc = bus_cmd_decode (zframe_data (expected), zframe_size (expected),
                             writer->cmd);
    assert (rc == 0);
    for (int t = 0; t < S_RACE_THREADS; t++) {
        races[t].gateway = gateway;
        races[t].answers = answers + t * S_RACE_SENDS;
        rc = pthread_create (&threads[t], NULL, s_race_sender, &races[t]);
        assert (rc == 0);
    }
    int total = S_RACE_THREADS * S_RACE_SENDS;
    int sent = 0, answered = 0;
    int64_t end = zclock_mono () + 10 * S_WAIT_MS;
    while (answered < total) {
        assert (zclock_mono () < end);
        s_send_ack (writer, "gw-race", fingerprint, 0, true, 77);
        sent += s_drain (writer, expected, 4);
        answered = 0;
        for (int i = 0; i < total; i++)
            answered += atomic_load (&answers[i].calls) > 0;
        zclock_sleep (0);
    }
    for (int t = 0; t < S_RACE_THREADS; t++)
        pthread_join (threads[t], NULL);
    for (int i = 0; i < total; i++) {
        if (answers[i].rc != 0)
            zsys_error ("race: send %d ended with %s", i,
                        bus_strerror (answers[i].rc));
        assert (atomic_load (&answers[i].calls) == 1);
        assert (answers[i].rc == 0 && answers[i].status == 0);
        assert (answers[i].seq == 77 && answers[i].duplicate);
    }
    s_flush (gateway, writer);   //  the acks still on the way find nobody
    sent += s_drain (writer, expected, INT_MAX);
    assert (sent >= total);   //  every send's frame, whole
    for (int i = 0; i < total; i++)
        assert (atomic_load (&answers[i].calls) == 1);
    zframe_destroy (&expected);
    free (answers);
}

static json_int_t
s_health_int (bus_gateway_t *gateway, const char *name)
{
    bool ok;
    json_t *health = bus_gateway_health (gateway, &ok);
    json_int_t value = json_integer_value (json_object_get (health, name));
    json_decref (health);
    return value;
}

//  A failover: epoch 2's heartbeats heard, the deposed epoch 1 still
//  answering.  Its ack is no answer (the command is resent, and the new
//  primary's ack ends it); its sync replies are refused; an ack without
//  an epoch (a writer before acks carried one) is taken.
static void
s_test_older (bus_gateway_t *gateway, s_writer_t *writer, bus_cmd_t *cmd)
{
    writer->epoch = (bus_epoch_t){ S_TEST_WRITER_ID, 2, 1, 0 };
    atomic_store (&s_sync_epoch, 2);   //  the stats s_flush asks for
    int64_t end = zclock_mono () + S_WAIT_MS;
    bool ok;
    json_t *health = NULL;
    do {
        s_heartbeat (writer);
        zclock_sleep (10);
        json_decref (health);
        health = bus_gateway_health (gateway, &ok);
        assert (zclock_mono () < end);
    } while (
        !streq (json_string_value (json_object_get (health, "writer_epoch")),
                "0000000000000002"));
    json_decref (health);
    json_int_t ignored = s_health_int (gateway, "older_epoch_ignored");

    s_answer_t answer = { 0 };
    s_cmd (cmd, "gw-older", 1);
    int rc = bus_gateway_send (gateway, cmd, s_done, &answer);
    assert (rc == 0);
    zframe_t *frame = s_take_cmd (writer);
    uint64_t fp = bus_cmd_fingerprint (writer->cmd);
    writer->ack_epoch = 1;   //  the deposed writer's ack, and its 503
    s_send_ack (writer, "gw-older", fp, 0, false, 9);
    s_send_ack (writer, "gw-older", fp, BUS_ERR_UNAVAILABLE, false, 0);
    s_flush (gateway, writer);
    assert (atomic_load (&answer.calls) == 0);
    assert (s_health_int (gateway, "older_epoch_ignored") == ignored + 2);
    zframe_t *again = zframe_recv (writer->pull);   //  resent, whole
    assert (again && zframe_eq (again, frame));
    zframe_destroy (&again);
    zframe_destroy (&frame);
    writer->ack_epoch = 2;
    s_send_ack (writer, "gw-older", fp, 0, true, 10);
    assert (s_answered (&answer, S_WAIT_MS));
    assert (answer.rc == 0 && answer.status == 0 && answer.seq == 10);
    s_flush (gateway, writer);
    assert (atomic_load (&answer.calls) == 1);

    s_answer_t plain = { 0 };
    s_cmd (cmd, "gw-plain", 1);
    rc = bus_gateway_send (gateway, cmd, s_done, &plain);
    assert (rc == 0);
    frame = s_take_cmd (writer);
    zframe_destroy (&frame);
    writer->ack_epoch = 0;
    s_send_ack (writer, "gw-plain", bus_cmd_fingerprint (writer->cmd), 0, false,
                11);
    assert (s_answered (&plain, S_WAIT_MS) && plain.seq == 11);
    writer->ack_epoch = 2;

    //  A query answered under epoch 1: refused; under 2: taken
    bus_sync_req_t req = { .op = BUS_SYNC_GET, .id = 1 };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    atomic_store (&s_sync_epoch, 1);
    rc = bus_gateway_query (gateway, &req, &reply, &items);
    assert (rc == 0 && reply.status == BUS_ERR_UNAVAILABLE);
    assert (strstr (reply.error, "older than the newest heard"));
    assert (items && zmsg_size (items) == 0);
    zmsg_destroy (&items);
    assert (s_health_int (gateway, "older_epoch_ignored") == ignored + 3);
    atomic_store (&s_sync_epoch, 2);
    rc = bus_gateway_query (gateway, &req, &reply, &items);
    assert (rc == 0 && reply.status == 0 && reply.writer.epoch == 2);
    zmsg_destroy (&items);
}

static void
s_config (bus_config_t *config)
{
    bus_config_defaults (config, BUS_ROLE_GATEWAY, NULL);
    bus_strlcpy (config->name, S_NAME, sizeof config->name);
    //  inproc names are per process: a pid keeps parallel runs apart
    int pid = (int) getpid ();
    snprintf (config->intake, sizeof config->intake,
              "inproc://gateway-test-intake-%d", pid);
    snprintf (config->events, sizeof config->events,
              "inproc://gateway-test-events-%d", pid);
    snprintf (config->sync, sizeof config->sync,
              "inproc://gateway-test-sync-%d", pid);
    config->heartbeat_ms = 50;
    config->link_timeout_ms = 600000;   //  one heartbeat keeps it up
    config->ack_timeout_ms = S_ACK_TIMEOUT_MS;
    config->max_inflight = 100000;
}

void
bus_gateway_test (bool verbose)
{
    printf (" * bus_gateway: ");
    bus_config_t config;
    s_config (&config);
    s_writer_t writer;
    s_writer_init (&writer, &config);
    char err[256] = "";
    bus_gateway_t *gateway = bus_gateway_new (&config, err, sizeof err);
    assert (gateway);
    assert (bus_gateway_config (gateway)->ack_timeout_ms == S_ACK_TIMEOUT_MS);
    bus_cmd_t *cmd = malloc (sizeof *cmd);
    assert (cmd);

    //  No heartbeat heard yet: refused at once, done never called
    s_answer_t refused = { 0 };
    s_cmd (cmd, "gw-early", 1);
    int rc = bus_gateway_send (gateway, cmd, s_done, &refused);
    assert (rc == BUS_ERR_UNAVAILABLE);
    //  Heartbeats until the gateway hears one (its SUB is joined)
    bool ok = false;
    for (int i = 0; !ok && i < S_WAIT_MS / 10; i++) {
        s_heartbeat (&writer);
        zclock_sleep (10);
        json_decref (bus_gateway_health (gateway, &ok));
    }
    assert (ok);
    assert (atomic_load (&refused.calls) == 0);

    //  A command is answered once, from its ack; a second copy of the
    //  ack (a late one) finds nobody
    s_answer_t placed = { 0 };
    s_cmd (cmd, "gw-1", 1);
    rc = bus_gateway_send (gateway, cmd, s_done, &placed);
    assert (rc == 0);
    zframe_t *frame = s_take_cmd (&writer);
    zframe_destroy (&frame);
    assert (streq (writer.cmd->key, "gw-1"));
    uint64_t fp_1 = bus_cmd_fingerprint (writer.cmd);
    assert (fp_1 == bus_cmd_fingerprint (cmd));
    s_send_ack (&writer, "gw-1", fp_1, 0, false, 1);
    assert (s_answered (&placed, S_WAIT_MS));
    assert (placed.rc == 0 && placed.status == 0 && !placed.duplicate);
    assert (placed.seq == 1 && streq (placed.key, "gw-1"));
    s_send_ack (&writer, "gw-1", fp_1, 0, false, 1);
    s_flush (gateway, &writer);
    assert (atomic_load (&placed.calls) == 1);

    //  Acks for nobody: an unknown key, and a known key whose fingerprint
    //  is another command's, are ignored; an unreadable ack is counted
    s_answer_t matched = { 0 };
    s_cmd (cmd, "gw-2", 2);
    rc = bus_gateway_send (gateway, cmd, s_done, &matched);
    assert (rc == 0);
    frame = s_take_cmd (&writer);
    zframe_destroy (&frame);
    uint64_t fp_2 = bus_cmd_fingerprint (writer.cmd);
    s_send_ack (&writer, "gw-nobody", fp_2, 0, false, 2);
    s_send_ack (&writer, "gw-2", fp_1, 0, false, 2);
    s_flush (gateway, &writer);
    assert (atomic_load (&matched.calls) == 0);
    assert (atomic_load (&placed.calls) == 1);
    s_send_ack (&writer, "gw-2", fp_2, 0, false, 2);
    assert (s_answered (&matched, S_WAIT_MS));
    assert (matched.rc == 0 && matched.seq == 2);

    //  A retry sent while the first send is in flight: one ack answers
    //  both, each once.  A same-key command with another body is not
    //  answered by that ack, only by its own (the writer's 409).
    s_answer_t first = { 0 }, retry = { 0 }, other = { 0 };
    s_cmd (cmd, "gw-3", 1);
    rc = bus_gateway_send (gateway, cmd, s_done, &first);
    assert (rc == 0);
    frame = s_take_cmd (&writer);
    uint64_t fp_3 = bus_cmd_fingerprint (writer.cmd);
    s_cmd (cmd, "gw-3", 1);
    rc = bus_gateway_send (gateway, cmd, s_done, &retry);
    assert (rc == 0);
    zframe_t *again = s_take_cmd (&writer);
    assert (zframe_eq (frame, again));
    zframe_destroy (&frame);
    zframe_destroy (&again);
    s_cmd (cmd, "gw-3", 5);
    rc = bus_gateway_send (gateway, cmd, s_done, &other);
    assert (rc == 0);
    frame = s_take_cmd (&writer);
    zframe_destroy (&frame);
    uint64_t fp_other = bus_cmd_fingerprint (writer.cmd);
    assert (fp_other != fp_3);
    s_send_ack (&writer, "gw-3", fp_3, 0, false, 3);
    assert (s_answered (&first, S_WAIT_MS) && s_answered (&retry, S_WAIT_MS));
    assert (first.rc == 0 && first.seq == 3);
    assert (retry.rc == 0 && retry.seq == 3);
    s_flush (gateway, &writer);
    assert (atomic_load (&other.calls) == 0);
    s_send_ack (&writer, "gw-3", fp_other, BUS_ERR_CONFLICT, false, 0);
    assert (s_answered (&other, S_WAIT_MS));
    assert (other.rc == 0 && other.status == BUS_ERR_CONFLICT);
    s_flush (gateway, &writer);
    assert (atomic_load (&first.calls) == 1);
    assert (atomic_load (&retry.calls) == 1);
    assert (atomic_load (&other.calls) == 1);

    //  Retries racing their own acks, from several threads: a few rounds,
    //  since a send overtaken by its ack is a matter of scheduling
    for (int round = 0; round < S_RACE_ROUNDS; round++)
        s_test_race (gateway, &writer, cmd);

    //  No ack: resent on the doubling schedule (250, 750 ms), then
    //  answered once, with a timeout, at gateway/ack_timeout_ms; its late
    //  ack finds nobody
    s_answer_t lost = { 0 };
    s_cmd (cmd, "gw-lost", 1);
    int64_t sent_ms = zclock_mono ();
    rc = bus_gateway_send (gateway, cmd, s_done, &lost);
    assert (rc == 0);
    frame = s_take_cmd (&writer);
    uint64_t fp_lost = bus_cmd_fingerprint (writer.cmd);
    int copies = 1;
    while (!s_answered (&lost, 10)) {
        zframe_t *copy = zframe_recv_nowait (writer.pull);
        if (copy) {
            assert (zframe_eq (copy, frame));
            copies++;
        }
        zframe_destroy (&copy);
        assert (zclock_mono () - sent_ms < S_WAIT_MS);
    }
    int64_t took_ms = zclock_mono () - sent_ms;
    zframe_destroy (&frame);
    assert (lost.rc == BUS_ERR_TIMEOUT);
    assert (took_ms >= S_ACK_TIMEOUT_MS);
    assert (copies >= 2 && copies <= 3);
    assert (s_stat (gateway, "timeouts") == 1);
    s_send_ack (&writer, "gw-lost", fp_lost, 0, false, 4);
    s_flush (gateway, &writer);
    assert (atomic_load (&lost.calls) == 1);

    s_test_older (gateway, &writer, cmd);

    //  Destroy with commands in flight: each answered once (a timeout)
    s_answer_t pending[3] = { { 0 } };
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf (key, sizeof key, "gw-end-%d", i);
        s_cmd (cmd, key, 1);
        rc = bus_gateway_send (gateway, cmd, s_done, &pending[i]);
        assert (rc == 0);
        frame = s_take_cmd (&writer);
        zframe_destroy (&frame);
    }
    assert (s_stat (gateway, "inflight") == 3);
    bus_gateway_destroy (&gateway);
    assert (gateway == NULL);
    bus_gateway_destroy (&gateway);
    for (int i = 0; i < 3; i++) {
        assert (atomic_load (&pending[i].calls) == 1);
        assert (pending[i].rc == BUS_ERR_TIMEOUT);
    }
    assert (atomic_load (&placed.calls) == 1);
    assert (atomic_load (&lost.calls) == 1);

    free (cmd);
    s_writer_fini (&writer);
    if (verbose)
        printf ("(lost command sent %d times, answered in %" PRId64 " ms) ",
                copies, took_ms);
    printf ("OK\n");
}
