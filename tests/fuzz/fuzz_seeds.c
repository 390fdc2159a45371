/*  fuzz_seeds.c — writes the seed corpora of the fuzz targets:
    `fuzz_seeds DIR` fills DIR/<target>/ with one small valid input per
    shape each target reads (scripts/fuzz.sh --seeds runs it into
    tests/fuzz/corpus/, which is committed).  libFuzzer mutates from
    these, so each kind of message, body and frame is there from the
    first run, UTF-8 of every length included.  */

#include <string.h>
#include <sys/stat.h>
#include <czmq.h>
#include <sodium.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_wsframe.h"
#include "fuzz.h"

static const char *s_root;

static void
s_write (const char *target, const char *name, const void *data, size_t size)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", s_root, target);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/%s/%s", s_root, target, name);
    FILE *file = fopen (path, "wb");
    FUZZ_CHECK (file && fwrite (data, 1, size, file) == size);
    fclose (file);
}

static void
s_write_frame (const char *target, const char *name, zframe_t *frame)
{
    FUZZ_CHECK (frame);
    s_write (target, name, zframe_data (frame), zframe_size (frame));
    zframe_destroy (&frame);
}

//  The first byte picks what a target does with the rest
static void
s_write_tagged (const char *target, const char *name, uint8_t tag,
                const void *data, size_t size)
{
    uint8_t *buf = malloc (size + 1);
    FUZZ_CHECK (buf);
    buf[0] = tag;
    memcpy (buf + 1, data, size);
    s_write (target, name, buf, size + 1);
    free (buf);
}

static void
s_line (bus_line_t *line, const char *item, const char *note)
{
    memset (line, 0, sizeof *line);
    strcpy (line->item_id, item);
    line->qty = 2;
    strcpy (line->note, note);
    strcpy (line->name, "Cr\xc3\xa8me \xe2\x82\xac \xf0\x9f\x8d\x94");
    strcpy (line->station, "grill");
    line->unit_cents = 1250;
    line->mod_count = 1;
    strcpy (line->mods[0].id, "cheese");
    strcpy (line->mods[0].name, "Cheese");
}

static void
s_commands (void)
{
    static bus_cmd_t cmd;
    memset (&cmd, 0, sizeof cmd);
    strcpy (cmd.key, "pad-7-0001");
    strcpy (cmd.origin, "gw-1");
    strcpy (cmd.table, "T12");
    cmd.type = BUS_CMD_PLACE;
    strcpy (cmd.note, "no onions \xc3\xa9\xe2\x82\xac\xf0\x9f\x8e\x82");
    cmd.line_count = 2;
    s_line (&cmd.lines[0], "burger", "medium");
    cmd.lines[0].name[0] = '\0';
    s_line (&cmd.lines[1], "custom", "");
    cmd.open_menu = true;
    s_write_frame ("cmd", "place", bus_cmd_encode (&cmd));
    cmd.open_menu = false;
    cmd.type = BUS_CMD_CART_ADD;
    cmd.line_count = 1;
    s_write_frame ("cmd", "cart-add", bus_cmd_encode (&cmd));
    cmd.line_count = 0;
    cmd.type = BUS_CMD_CART_SET_QTY;
    cmd.line_id = 2;
    cmd.qty = 0;
    s_write_frame ("cmd", "cart-qty", bus_cmd_encode (&cmd));
    cmd.type = BUS_CMD_CART_PLACE;
    cmd.version = 3;
    s_write_frame ("cmd", "cart-place", bus_cmd_encode (&cmd));
    cmd.type = BUS_CMD_CART_CLEAR;
    s_write_frame ("cmd", "cart-clear", bus_cmd_encode (&cmd));
    cmd.type = BUS_CMD_SET_STATUS;
    cmd.table[0] = '\0';
    cmd.order_id = 12;
    cmd.status = BUS_STATUS_READY;
    s_write_frame ("cmd", "status", bus_cmd_encode (&cmd));
    cmd.type = BUS_CMD_AVAILABILITY;
    strcpy (cmd.item_id, "fries");
    s_write_frame ("cmd", "availability", bus_cmd_encode (&cmd));
}

static void
s_events (void)
{
    static bus_event_t event;
    static bus_ack_t ack;
    memset (&event, 0, sizeof event);
    event.seq = 40;
    event.ts_ms = 1767225600000;
    bus_order_t *order = &event.order;
    order->id = 12;
    order->seq = 40;
    order->version = 2;
    order->status = BUS_STATUS_ACCEPTED;
    strcpy (order->table, "T12");
    strcpy (order->key, "pad-7-0001");
    strcpy (order->origin, "gw-1");
    strcpy (order->note, "\xf0\x9f\x8e\x82 birthday");
    order->created_ms = order->updated_ms = 1767225600000;
    order->status_ms[BUS_STATUS_PLACED] = 1767225600000;
    order->line_count = 1;
    s_line (&order->lines[0], "burger", "medium \xe2\x82\xac");
    s_write_frame ("event", "order", bus_order_encode (order));
    event.type = BUS_EVENT_ORDER_STATUS;
    s_write_frame ("event", "event-order", bus_event_encode (&event));
    bus_cart_t *cart = &event.cart;
    strcpy (cart->table, "T12");
    cart->version = 3;
    cart->next_line_id = 2;
    cart->line_count = 1;
    s_line (&cart->lines[0], "burger", "");
    s_write_frame ("event", "cart", bus_cart_encode (cart));
    event.type = BUS_EVENT_CART;
    s_write_frame ("event", "event-cart", bus_event_encode (&event));
    event.type = BUS_EVENT_MENU_ITEM;
    strcpy (event.item_id, "fries");
    s_write_frame ("event", "event-item", bus_event_encode (&event));
    strcpy (ack.key, "pad-7-0001");
    ack.fingerprint = 42;
    ack.event = event;
    s_write_frame ("event", "ack", bus_ack_encode (&ack));
    ack.status = -3;
    strcpy (ack.error, "items[0].item_id: unknown menu item 'x'");
    s_write_frame ("event", "ack-refused", bus_ack_encode (&ack));
}

static void
s_sync (void)
{
    bus_sync_req_t req = { .op = BUS_SYNC_LIST,
                           .rid = 7,
                           .limit = 50,
                           .table = "T12",
                           .from_ms = 1,
                           .to_ms = 2 };
    s_write_frame ("sync", "list", bus_sync_req_encode (&req));
    bus_sync_req_t ping = {
        .op = BUS_SYNC_PING, .rid = 8, .role = "gateway", .name = "gw-1"
    };
    s_write_frame ("sync", "ping", bus_sync_req_encode (&ping));
    const bus_epoch_t writer = { "00112233445566778899aabbccddeeff",
                                 0x6955b90012345678ULL, 0x6955b80087654321ULL,
                                 39 };
    bus_sync_reply_t reply = { .rid = 7,
                               .status = -3,
                               .error = "no",
                               .seq = 40,
                               .next = 3,
                               .count = 2,
                               .writer = writer };
    s_write_frame ("sync", "reply", bus_sync_reply_encode (&reply));
    bus_heartbeat_t hb = { 40, 1767225600000, writer, BUS_STORAGE_FULL, true };
    s_write_frame ("sync", "heartbeat", bus_heartbeat_encode (&hb));
    s_write_frame ("sync", "epoch", bus_epoch_encode (&writer));
}

//  Replication: a hello, a confirmation, a batch header, an error, a key
static void
s_repl (void)
{
    bus_repl_up_t hello = { BUS_REPL_HELLO, "r1",
                            "0123456789abcdef0123456789abcdef", 41, 99 };
    s_write_frame ("repl", "hello", bus_repl_up_encode (&hello));
    bus_repl_up_t confirm = { .op = BUS_REPL_CONFIRM, .seq = 42 };
    s_write_frame ("repl", "confirm", bus_repl_up_encode (&confirm));
    bus_epoch_t writer = { "0123456789abcdef0123456789abcdef", 7, 6, 40 };
    bus_repl_batch_t batch = { .writer = writer,
                               .first = 42,
                               .count = 2,
                               .last = 43,
                               .ts_ms = 1767225600000,
                               .menu_version = 3 };
    s_write_frame ("repl", "batch", bus_repl_batch_encode (&batch));
    bus_repl_batch_t error = { .status = -7,
                               .error = "data dir holds store x",
                               .writer = writer };
    s_write_frame ("repl", "error", bus_repl_batch_encode (&error));
    bus_repl_key_t key = { "pad-7-1", 12345 };
    s_write_frame ("repl", "key", bus_repl_key_encode (&key));
}

static void
s_json (void)
{
    const char *bodies[] = {
        "{\"table\":\"T12\",\"note\":\"\\u00e9 \xf0\x9f\x8e\x82\",\"items\":"
        "[{\"item_id\":\"burger\",\"quantity\":2,\"note\":\"medium\","
        "\"modifiers\":[\"cheese\",\"bacon\"]}]}",
        "{\"item_id\":\"burger\",\"quantity\":1,\"note\":\"\\ud83c\\udf54\"}",
        "{\"status\":\"accepted\",\"version\":3}",
        "{\"quantity\":0}",
        "{\"available\":false}",
        "{\"note\":\"all at once\",\"version\":9}",
    };
    for (uint8_t i = 0; i < 6; i++) {
        char name[16];
        snprintf (name, sizeof name, "body-%u", i);
        s_write_tagged ("json", name, i, bodies[i], strlen (bodies[i]));
    }
}

static void
s_tokens (void)
{
    const char *claims[] = { "pad/main/T12/1767225600000",
                             "kitchen/main//1767225600000",
                             "manager/site-2.x//9223372036854775807" };
    for (size_t i = 0; i < 3; i++) {
        char name[16];
        snprintf (name, sizeof name, "claims-%zu", i);
        s_write_tagged ("token", name, 1, claims[i], strlen (claims[i]));
    }
    const char *token = "ob1.cGFkL21haW4vVDEyLzE3NjcyMjU2MDAwMDA."
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    s_write_tagged ("token", "unsigned", 0, token, strlen (token));
}

static void
s_wsframes (void)
{
    s_write_tagged ("wsframe", "build-text", 0x11, "{\"type\":\"event\"}", 16);
    s_write_tagged ("wsframe", "build-close", 0x10, "\x0f\xa1slow", 6);
    //  Frames as a server and a client send them: short, 16-bit and
    //  64-bit lengths, masked and not, then an upgrade answer
    const uint8_t wire[] = { 0x81, 0x02, 'h',  'i',  0x89, 0x80, 1,   2,
                             3,    4,    0x82, 0x7e, 0x00, 0x02, 'a', 'b',
                             0x01, 0x01, 'x',  0x80, 0x01, 'y' };
    s_write_tagged ("wsframe", "wire", 0x00, wire, sizeof wire);
    const char *answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
                         "websocket\r\nConnection: Upgrade\r\n\r\n";
    s_write_tagged ("wsframe", "upgrade", 0x02, answer, strlen (answer));
}

static void
s_menus (void)
{
    const char *menu =
        "{\"name\":\"Bistro\",\"categories\":[{\"id\":\"mains\",\"name\":"
        "\"Mains\",\"items\":[{\"id\":\"burger\",\"name\":\"Burger "
        "\xf0\x9f\x8d\x94\",\"price_cents\":1250,\"station\":\"grill\","
        "\"available\":true,\"modifiers\":[{\"id\":\"cheese\",\"name\":"
        "\"Fromage \\u00e9\",\"price_cents\":150}]},{\"id\":\"fries\","
        "\"name\":\"Fries\",\"description\":\"crisp\",\"price_cents\":0}]}]}";
    s_write ("menu", "small", menu, strlen (menu));
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: fuzz_seeds DIR\n");
        return 1;
    }
    s_root = argv[1];
    mkdir (s_root, 0755);
    s_commands ();
    s_events ();
    s_sync ();
    s_repl ();
    s_json ();
    s_tokens ();
    s_wsframes ();
    s_menus ();
    return 0;
}
