/*  bus_writer_test.c — the writer's selftest, the way czmq tests an
    actor: start it, talk to it over its own sockets, stop it.

    The test plays a gateway over inproc:// in the same process: it
    PUSHes encoded commands to the intake, SUBscribes to events, acks
    and heartbeats, and asks the sync socket.  The store lives in a
    fresh temporary directory, removed at the end.  */

#include <dirent.h>
#include <stdatomic.h>
#include <unistd.h>
#include <jansson.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_topic.h"
#include "orderbus/bus_writer.h"

#define S_WAIT_MS 5000   //  longest wait for anything the writer sends
#define S_ORIGIN  "writer-test"

static const char s_menu[] =
    "{\"name\": \"Test\", \"categories\": [{\"id\": \"mains\", \"name\": "
    "\"Mains\", \"items\": [{\"id\": \"fries\", \"name\": \"Fries\", "
    "\"price_cents\": 450}]}]}";

//  The gateway the test plays
typedef struct {
    zsock_t *push;        //  to the writer's intake
    zsock_t *sub;         //  its events, our acks, heartbeats
    zsock_t *sync;        //  DEALER to its sync ROUTER
    bus_cmd_t *cmd;       //  scratch
    bus_ack_t *ack;       //  scratch
    bus_event_t *event;   //  scratch
    uint64_t rid;         //  last sync request id
} s_peer_t;

static void
s_remove_tree (const char *path)
{
    DIR *dir = opendir (path);
    assert (dir);
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
        if (unlink (child) != 0)
            s_remove_tree (child);
        zstr_free (&child);
    }
    closedir (dir);
    int rc = rmdir (path);
    assert (rc == 0);
}

static void
s_peer_init (s_peer_t *peer, const bus_config_t *config)
{
    char topic[BUS_TOPIC_MAX];
    int rc = bus_topic_ack (topic, sizeof topic, S_ORIGIN);
    assert (rc == 0);
    peer->push = zsock_new_push (config->intake);
    peer->sub = zsock_new_sub (config->events, BUS_TOPIC_EVENTS);
    peer->sync = zsock_new_dealer (config->sync);
    assert (peer->push && peer->sub && peer->sync);
    zsock_set_subscribe (peer->sub, topic);
    zsock_set_subscribe (peer->sub, BUS_TOPIC_HEARTBEAT);
    zsock_set_rcvtimeo (peer->sub, S_WAIT_MS);
    zsock_set_rcvtimeo (peer->sync, S_WAIT_MS);
    peer->cmd = calloc (1, sizeof *peer->cmd);
    peer->ack = calloc (1, sizeof *peer->ack);
    peer->event = calloc (1, sizeof *peer->event);
    assert (peer->cmd && peer->ack && peer->event);
}

static void
s_peer_fini (s_peer_t *peer)
{
    zsock_destroy (&peer->push);
    zsock_destroy (&peer->sub);
    zsock_destroy (&peer->sync);
    free (peer->cmd);
    free (peer->ack);
    free (peer->event);
}

//  Send a one-line order for table T1 under key, with a note.
static void
s_place_note (s_peer_t *peer, const char *key, uint32_t qty, const char *note)
{
    bus_cmd_t *cmd = peer->cmd;
    memset (cmd, 0, sizeof *cmd);
    cmd->type = BUS_CMD_PLACE;
    bus_strlcpy (cmd->key, key, sizeof cmd->key);
    bus_strlcpy (cmd->origin, S_ORIGIN, sizeof cmd->origin);
    bus_strlcpy (cmd->table, "T1", sizeof cmd->table);
    bus_strlcpy (cmd->note, note, sizeof cmd->note);
    cmd->line_count = 1;
    bus_strlcpy (cmd->lines[0].item_id, "fries", sizeof cmd->lines[0].item_id);
    cmd->lines[0].qty = qty;
    zframe_t *frame = bus_cmd_encode (cmd);
    assert (frame);
    int rc = zframe_send (&frame, peer->push, 0);
    assert (rc == 0);
}

static void
s_place (s_peer_t *peer, const char *key, uint32_t qty)
{
    s_place_note (peer, key, qty, "");
}

//  The next message that is not a heartbeat: its topic (caller frees)
//  and body, decoded as an event or an ack by the topic.
static char *
s_next (s_peer_t *peer)
{
    while (true) {
        zmsg_t *msg = zmsg_recv (peer->sub);
        assert (msg);   //  else nothing came within S_WAIT_MS
        char *topic = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        //  An event is followed by the writer's history
        if (topic
            && strncmp (topic, BUS_TOPIC_EVENTS, strlen (BUS_TOPIC_EVENTS))
                   == 0) {
            zframe_t *stamp = zmsg_pop (msg);
            bus_epoch_t epoch;
            assert (stamp
                    && bus_epoch_decode (zframe_data (stamp),
                                         zframe_size (stamp), &epoch)
                           == 0);
            assert (bus_valid_writer_id (epoch.id) && epoch.epoch > 0);
            zframe_destroy (&stamp);
        }
        assert (topic && body && zmsg_size (msg) == 0);
        int rc = 0;
        if (streq (topic, BUS_TOPIC_HEARTBEAT))
            zstr_free (&topic);
        else if (strncmp (topic, BUS_TOPIC_ACKS, strlen (BUS_TOPIC_ACKS))
                 == 0) {
            rc = bus_ack_decode (zframe_data (body), zframe_size (body),
                                 peer->ack);
            //  ...and so is an ack: a gateway refuses a deposed one's
            assert (rc != 0
                    || (bus_valid_writer_id (peer->ack->writer.id)
                        && peer->ack->writer.epoch > 0));
        } else
            rc = bus_event_decode (zframe_data (body), zframe_size (body),
                                   peer->event);
        assert (rc == 0);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
        if (topic)
            return topic;
    }
}

//  Expect the event of seq on table T1's topic, then its ack.
static void
s_expect_placed (s_peer_t *peer, const char *key, uint64_t seq)
{
    char *topic = s_next (peer);
    assert (streq (topic, "E/T1/"));
    assert (peer->event->seq == seq);
    assert (peer->event->type == BUS_EVENT_ORDER_PLACED);
    assert (streq (peer->event->order.key, key));
    zstr_free (&topic);
    topic = s_next (peer);
    assert (streq (topic, "A/" S_ORIGIN "/"));
    assert (streq (peer->ack->key, key));
    assert (peer->ack->status == 0);
    assert (!peer->ack->duplicate);
    assert (peer->ack->event.seq == seq);
    assert (peer->ack->fingerprint == bus_cmd_fingerprint (peer->cmd));
    zstr_free (&topic);
}

//  Wait for a heartbeat: then the subscription is live.  Returns its seq,
//  and the writer's history in *writer.
static uint64_t
s_heartbeat (s_peer_t *peer, bus_epoch_t *writer)
{
    while (true) {
        zmsg_t *msg = zmsg_recv (peer->sub);
        assert (msg);
        char *topic = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        bus_heartbeat_t hb;
        bool beat = topic && body && streq (topic, BUS_TOPIC_HEARTBEAT)
                    && bus_heartbeat_decode (zframe_data (body),
                                             zframe_size (body), &hb)
                           == 0;
        zstr_free (&topic);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
        if (beat)
            *writer = hb.writer;
        if (beat)
            return hb.seq;
    }
}

//  One sync request; returns the reply's items (caller destroys).
static zmsg_t *
s_query (s_peer_t *peer, bus_sync_req_t *req, bus_sync_reply_t *reply)
{
    req->rid = ++peer->rid;
    zframe_t *frame = bus_sync_req_encode (req);
    assert (frame);
    int rc = zframe_send (&frame, peer->sync, 0);
    assert (rc == 0);
    zmsg_t *msg = zmsg_recv (peer->sync);
    assert (msg);
    zframe_t *header = zmsg_pop (msg);
    assert (header);
    rc = bus_sync_reply_decode (zframe_data (header), zframe_size (header),
                                reply);
    assert (rc == 0);
    assert (reply->count == zmsg_size (msg));
    zframe_destroy (&header);
    return msg;
}

//  Endpoints of the writer's generation gen.  A restarted writer binds
//  new names: ZeroMQ frees an inproc name only once its reaper thread has
//  closed the old socket, which may be after bus_writer_destroy returns.
static void
s_endpoints (bus_config_t *config, int gen)
{
    int pid = (int) getpid ();
    snprintf (config->intake, sizeof config->intake,
              "inproc://writer-test-intake-%d-%d", pid, gen);
    snprintf (config->events, sizeof config->events,
              "inproc://writer-test-events-%d-%d", pid, gen);
    snprintf (config->sync, sizeof config->sync,
              "inproc://writer-test-sync-%d-%d", pid, gen);
}

static void
s_config (bus_config_t *config, const char *dir)
{
    bus_config_defaults (config, BUS_ROLE_WRITER, NULL);
    snprintf (config->data_dir, sizeof config->data_dir, "%s/data", dir);
    snprintf (config->menu_path, sizeof config->menu_path, "%s/menu.json", dir);
    s_endpoints (config, 1);
    config->heartbeat_ms = 50;
    //  Longer than filling the peer table takes on a loaded machine: none
    //  of them may be gone before s_test_peers has them all
    config->link_timeout_ms = 3000;
}

static bool
s_leading (void *arg)
{
    return atomic_load ((atomic_bool *) arg);
}

//  A ping as role and name: the reply's status
static int
s_ping (s_peer_t *peer, const char *role, const char *name)
{
    bus_sync_req_t req = { .op = BUS_SYNC_PING };
    snprintf (req.role, sizeof req.role, "%s", role);
    snprintf (req.name, sizeof req.name, "%s", name);
    bus_sync_reply_t reply;
    zmsg_t *items = s_query (peer, &req, &reply);
    zmsg_destroy (&items);
    return reply.status;
}

//  The writer's peers, "role name" each, from its stats (caller frees)
static json_t *
s_peers (s_peer_t *peer)
{
    bus_sync_req_t req = { .op = BUS_SYNC_STATS };
    bus_sync_reply_t reply;
    zmsg_t *items = s_query (peer, &req, &reply);
    char *text = zmsg_popstr (items);
    json_t *stats = text ? json_loads (text, 0, NULL) : NULL;
    json_t *peers = json_incref (json_object_get (stats, "peers"));
    assert (json_is_array (peers));
    json_decref (stats);
    zstr_free (&text);
    zmsg_destroy (&items);
    return peers;
}

static bool
s_has_peer (json_t *peers, const char *role, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach (peers, i, p)
    {
        if (streq (json_string_value (json_object_get (p, "role")), role)
            && streq (json_string_value (json_object_get (p, "name")), name))
            return true;
    }
    return false;
}

//  Pings a peer sends go into a bounded table: a name that would forge a
//  log line, or a role the writer does not know, is refused; past
//  BUS_WRITER_PEERS_MAX live peers a new one is answered but not kept,
//  and once some are gone a new one takes the place of one of them.
static void
s_test_peers (s_peer_t *peer, const bus_config_t *config)
{
    assert (s_ping (peer, "gateway", "forged\nI: writer: hello")
            == BUS_ERR_INVALID);
    assert (s_ping (peer, "gateway", "two words") == BUS_ERR_INVALID);
    assert (s_ping (peer, "admin", "gw-1") == BUS_ERR_INVALID);
    assert (s_ping (peer, "gateway", "") == BUS_ERR_INVALID);
    json_t *peers = s_peers (peer);
    assert (json_array_size (peers) == 0);
    json_decref (peers);
    char name[32];
    for (int i = 0; i < BUS_WRITER_PEERS_MAX + 10; i++) {
        snprintf (name, sizeof name, "gw-%d", i);
        assert (s_ping (peer, "gateway", name) == 0);
    }
    peers = s_peers (peer);
    assert (json_array_size (peers) == BUS_WRITER_PEERS_MAX);
    assert (!s_has_peer (peers, "gateway", "gw-1033"));
    json_decref (peers);
    //  Once they are gone, a new peer is kept again
    zclock_sleep (config->link_timeout_ms + 4 * config->heartbeat_ms);
    assert (s_ping (peer, "edge", "vm:4242") == 0);
    peers = s_peers (peer);
    assert (json_array_size (peers) == BUS_WRITER_PEERS_MAX);
    assert (s_has_peer (peers, "edge", "vm:4242"));
    json_decref (peers);
}

void
bus_writer_test (bool verbose)
{
    printf (" * bus_writer: ");
    char dir[] = "/tmp/bus_writer_test-XXXXXX";
    char *made = mkdtemp (dir);
    assert (made);
    char *path = zsys_sprintf ("%s/menu.json", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (s_menu, file);
    fclose (file);
    zstr_free (&path);

    bus_config_t config;
    s_config (&config, dir);
    char err[256] = "";
    bus_writer_t *writer = bus_writer_new (&config, err, sizeof err);
    if (!writer)
        zsys_error ("writer test: %s", err);
    assert (writer);
    s_peer_t peer = { 0 };
    s_peer_init (&peer, &config);
    //  A fresh store: the heartbeat says seq 0, in the store's first run
    bus_epoch_t first, again;
    assert (s_heartbeat (&peer, &first) == 0);
    assert (bus_valid_writer_id (first.id) && first.epoch > 0);
    assert (first.parent == 0 && first.base == 0);

    //  An order is committed, published as event 1, then acked; the next
    //  one is event 2
    s_place (&peer, "wt-1", 1);
    s_expect_placed (&peer, "wt-1", 1);
    uint64_t order_1 = peer.event->order.id;
    s_place (&peer, "wt-2", 2);
    s_expect_placed (&peer, "wt-2", 2);

    //  The same key and body again: acked as a duplicate with the original
    //  event, and nothing new is published (the next event is 3)
    s_place (&peer, "wt-1", 1);
    char *topic = s_next (&peer);
    assert (streq (topic, "A/" S_ORIGIN "/"));
    assert (peer.ack->status == 0 && peer.ack->duplicate);
    assert (peer.ack->event.seq == 1);
    assert (peer.ack->event.order.id == order_1);
    zstr_free (&topic);

    //  The same key with another body: a conflict, nothing published
    s_place (&peer, "wt-1", 3);
    topic = s_next (&peer);
    assert (streq (topic, "A/" S_ORIGIN "/"));
    assert (peer.ack->status == BUS_ERR_CONFLICT);
    assert (!peer.ack->duplicate);
    zstr_free (&topic);

    //  Garbage on the intake: a frame that is not msgpack, a valid
    //  command cut short, and a multipart message.  Each is dropped and
    //  counted; none is answered, none changes the store.
    bus_writer_stats_t before = bus_writer_stats (writer);
    zframe_t *garbage = zframe_new ("\xc1\xff\x00junk", 7);
    int rc = zframe_send (&garbage, peer.push, 0);
    assert (rc == 0);
    zframe_t *valid = bus_cmd_encode (peer.cmd);
    zframe_t *cut = zframe_new (zframe_data (valid), zframe_size (valid) / 2);
    rc = zframe_send (&cut, peer.push, 0);
    assert (rc == 0);
    zframe_t *copy = zframe_dup (valid);
    rc = zframe_send (&valid, peer.push, ZFRAME_MORE);
    assert (rc == 0);
    rc = zframe_send (&copy, peer.push, 0);
    assert (rc == 0);
    s_place (&peer, "wt-3", 1);
    s_expect_placed (&peer, "wt-3", 3);
    bus_writer_stats_t stats = bus_writer_stats (writer);
    assert (stats.dropped == before.dropped + 3);
    assert (stats.commands == before.commands + 1);
    assert (stats.committed == 3);
    assert (stats.duplicates == 1);
    assert (stats.rejected == 1);
    assert (stats.commands == 5);
    assert (stats.batches >= 5 && stats.batches <= 7);
    assert (stats.storage_failures == 0);

    //  The sync socket replays the log: exactly events 1..3
    bus_sync_req_t req = { .op = BUS_SYNC_REPLAY, .from = 1, .limit = 10 };
    bus_sync_reply_t reply;
    zmsg_t *items = s_query (&peer, &req, &reply);
    assert (reply.rid == peer.rid && reply.status == 0);
    assert (reply.seq == 3 && reply.count == 3 && reply.next == 4);
    uint64_t seq = 1;
    for (zframe_t *f = zmsg_first (items); f; f = zmsg_next (items), seq++) {
        rc = bus_event_decode (zframe_data (f), zframe_size (f), peer.event);
        assert (rc == 0 && peer.event->seq == seq);
    }
    zmsg_destroy (&items);
    //  ... and a request it cannot read is answered with the error
    zframe_t *junk = zframe_new ("\x93\x01", 2);
    rc = zframe_send (&junk, peer.sync, 0);
    assert (rc == 0);
    zmsg_t *msg = zmsg_recv (peer.sync);
    assert (msg && zmsg_size (msg) == 1);
    zframe_t *header = zmsg_first (msg);
    rc = bus_sync_reply_decode (zframe_data (header), zframe_size (header),
                                &reply);
    assert (rc == 0 && reply.status != 0 && reply.count == 0);
    zmsg_destroy (&msg);
    assert (bus_writer_stats (writer).dropped == before.dropped + 4);
    s_test_peers (&peer, &config);

    //  A command that reads but breaks a rule, here a note that is not
    //  UTF-8 (a surrogate: issue 14's poison order), is refused with an
    //  ack its gateway can match and that names the field; nothing is
    //  committed (the log still ends at 3), nothing dropped unanswered
    before = bus_writer_stats (writer);
    s_place_note (&peer, "wt-poison", 1, "ok \xed\xa0\x80");
    topic = s_next (&peer);
    assert (streq (topic, "A/" S_ORIGIN "/"));
    assert (streq (peer.ack->key, "wt-poison"));
    assert (peer.ack->status == BUS_ERR_INVALID && !peer.ack->duplicate);
    assert (peer.ack->fingerprint == bus_cmd_fingerprint (peer.cmd));
    assert (streq (peer.ack->error, "note: " BUS_RULE_NOTE));
    zstr_free (&topic);
    req = (bus_sync_req_t){ .op = BUS_SYNC_REPLAY, .from = 4, .limit = 10 };
    items = s_query (&peer, &req, &reply);
    assert (reply.status == 0 && reply.seq == 3 && reply.count == 0);
    //  A sync reply names the same history as the heartbeats
    assert (bus_epoch_same (&reply.writer, &first));
    zmsg_destroy (&items);
    stats = bus_writer_stats (writer);
    assert (stats.dropped == before.dropped && stats.committed == 3);

    //  Destroy is clean and NULL-safe; what was committed is still there
    s_peer_fini (&peer);
    bus_writer_destroy (&writer);
    assert (writer == NULL);
    bus_writer_destroy (&writer);
    s_endpoints (&config, 2);
    writer = bus_writer_new (&config, err, sizeof err);
    if (!writer)
        fprintf (stderr, "bus_writer_test: restart: %s\n", err);
    assert (writer);
    s_peer_init (&peer, &config);
    //  A new run, which goes on from the first at seq 3
    assert (s_heartbeat (&peer, &again) == 3);
    assert (streq (again.id, first.id) && again.epoch > first.epoch);
    assert (again.parent == first.epoch && again.base == 3);
    assert (bus_epoch_continues (&again, &first, 3));
    s_place (&peer, "wt-4", 1);
    s_expect_placed (&peer, "wt-4", 4);
    s_peer_fini (&peer);
    bus_writer_destroy (&writer);

    //  A group member's writer (bus_member.c): its epoch carries the
    //  fencing token; while its lease holds it commits, once it is gone
    //  nothing is committed and every command gets 503
    atomic_bool leading = true;
    bus_writer_lead_t lead = { s_leading, NULL, &leading, 0x1234 };
    s_endpoints (&config, 3);
    writer = bus_writer_new_led (&config, &lead, err, sizeof err);
    assert (writer);
    s_peer_init (&peer, &config);
    bus_epoch_t led;
    assert (s_heartbeat (&peer, &led) == 4);
    assert ((led.epoch & 0xFFFFFFFF) == 0x1234 && led.epoch > again.epoch);
    assert (led.parent == again.epoch && led.base == 4);
    s_place (&peer, "wt-5", 1);
    s_expect_placed (&peer, "wt-5", 5);
    atomic_store (&leading, false);
    s_place (&peer, "wt-6", 1);
    topic = s_next (&peer);
    assert (streq (topic, "A/" S_ORIGIN "/"));
    assert (peer.ack->status == BUS_ERR_UNAVAILABLE && !peer.ack->duplicate);
    assert (strstr (peer.ack->error, "not the primary any more"));
    zstr_free (&topic);
    stats = bus_writer_stats (writer);
    assert (stats.committed == 1);
    s_peer_fini (&peer);
    bus_writer_destroy (&writer);

    s_remove_tree (dir);
    if (verbose)
        printf ("(3 placed, 1 duplicate, 1 conflict, 4 dropped, restarted, "
                "led and deposed) ");
    printf ("OK\n");
}
