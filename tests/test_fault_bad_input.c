/*  test_fault_bad_input — garbage at every door, and every node keeps
    serving:

      - ZeroMQ: junk frames to the writer's PULL intake (as a PUSH peer)
        and ROUTER sync socket (as a DEALER peer): empty, text, random
        bytes, truncated and trailing-byte MessagePack, a wrong format
        version, wrong types, too many entries, too deep, lengths that
        lie, multipart messages (one of them wrapping a valid order,
        which must not be placed), oversized frames; junk subscription
        frames to the PUB events socket (as an XSUB peer); and raw bytes
        that are not ZMTP at all to all three ports.  The writer's
        "dropped" counter grows by at least the undecodable messages that
        reached it, and each bad sync request is answered with an error.
      - HTTP: malformed JSON, wrong types, out-of-range values, deep
        nesting, bad UTF-8, huge and lying bodies, bad headers, bad query
        parameters, raw junk requests: each a 4xx with a JSON error that
        names it (raw junk: a 4xx or a closed connection), and nothing
        is stored.
      - WebSocket: resume_from that is not a number, text and binary
        messages, protocol violations by hand, bad handshakes, and path
        tricks on the edge's static files.

    Afterwards a normal order still gets its 201 and reaches a new
    WebSocket client, a kitchen connected throughout saw every event once
    in order, and nothing but the good orders is stored.  */

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "orderbus/bus_codec.h"
#include "testkit.h"

#define CHECK TK_CHECK

static int s_gw, s_edge;
static char s_intake[64], s_events[64], s_sync[64];
static tk_ledger_t *s_ledger;
static int s_good;   //  good orders placed so far

//  ---------------------------------------------------------------------
//  Junk for the ZeroMQ sockets

typedef struct {
    const char *name;
    unsigned char *data;
    size_t size;
} s_junk_t;

#define S_JUNK_MAX 24
static s_junk_t s_junk[S_JUNK_MAX];
static int s_junk_count;

static void
s_junk_add (const char *name, const void *data, size_t size)
{
    s_junk_t *j = &s_junk[s_junk_count++];
    j->name = name;
    j->data = malloc (size ? size : 1);
    memcpy (j->data, data, size);
    j->size = size;
}

//  The frame with its format version ("v" => n) set to something else.
static void
s_junk_add_version (const char *name, const zframe_t *frame)
{
    const unsigned char *data = zframe_data ((zframe_t *) frame);
    size_t size = zframe_size ((zframe_t *) frame);
    for (size_t i = 0; i + 2 < size; i++)
        if (data[i] == 0xa1 && data[i + 1] == 'v' && data[i + 2] < 0x7f) {
            s_junk_add (name, data, size);
            s_junk[s_junk_count - 1].data[i + 2] = 0x7f;   //  version 127
            return;
        }
    CHECK (false, "no version field found in an encoded %s", name);
}

//  Undecodable frames, each derived from valid (an encoded message of
//  the socket's own kind) or from nothing.
static void
s_junk_build (zframe_t *valid)
{
    for (int i = 0; i < s_junk_count; i++)
        free (s_junk[i].data);
    s_junk_count = 0;
    const unsigned char *data = zframe_data (valid);
    size_t size = zframe_size (valid);
    unsigned char random[1000];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof random; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        random[i] = (unsigned char) x;
    }
    s_junk_add ("empty frame", "", 0);
    s_junk_add ("text", "this is not msgpack", 19);
    s_junk_add ("random bytes", random, sizeof random);
    s_junk_add ("truncated by one byte", data, size - 1);
    s_junk_add ("truncated to half", data, size / 2);
    unsigned char *trailing = malloc (size + 1);
    memcpy (trailing, data, size);
    trailing[size] = 0xc0;
    s_junk_add ("trailing byte", trailing, size + 1);
    free (trailing);
    s_junk_add_version ("wrong format version", valid);
    s_junk_add ("an integer", "\x05", 1);
    s_junk_add ("nil", "\xc0", 1);
    s_junk_add ("an array", "\x93\x01\x02\x03", 4);
    s_junk_add ("version of the wrong type", "\x81\xa1v\xa1x", 5);
    //  map16 of 65 entries, one more than any decoder accepts
    unsigned char wide[3 + 65 * 2] = { 0xde, 0x00, 65 };
    for (int i = 0; i < 65; i++) {
        wide[3 + 2 * i] = (unsigned char) i;
        wide[4 + 2 * i] = 0xc0;
    }
    s_junk_add ("65 entries", wide, sizeof wide);
    unsigned char deep[41];
    memset (deep, 0x91, 40);   //  40 nested one-element arrays
    deep[40] = 0xc0;
    s_junk_add ("40 levels deep", deep, sizeof deep);
    s_junk_add ("string declaring 4 GB",
                "\xdb\xff\xff\xff\xff"
                "abc",
                8);
    s_junk_add ("map declaring 4 billion entries",
                "\xdf\xff\xff\xff\xff\xa1v\x01", 8);
    s_junk_add ("array declaring 65535 entries", "\xdc\xff\xff\xc0", 4);
}

//  Bytes that are not ZMTP at all, straight to a ZeroMQ port, and gone
//  (libzmq may wait for more rather than close, so do not wait for it).
static void
s_raw_tcp_junk (const char *endpoint)
{
    int port = atoi (strrchr (endpoint, ':') + 1);
    const char junk[] =
        "GET / HTTP/1.0\r\n\r\n\xff\x00\x01\x7f garbage \x00\x00\x00";
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    CHECK (fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0,
           "TCP connection to %s", endpoint);
    CHECK (send (fd, junk, sizeof junk, MSG_NOSIGNAL) == (ssize_t) sizeof junk,
           "junk sent to %s", endpoint);
    usleep (200 * 1000);
    close (fd);
}

static zsock_t *
s_connect (int type, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    CHECK (sock && zsock_connect (sock, "%s", endpoint) == 0, "connect to %s",
           endpoint);
    zsock_set_linger (sock, 5000);   //  deliver everything before closing
    zsock_set_rcvtimeo (sock, 5000);
    return sock;
}

static void
s_send_frames (zsock_t *sock, const char *a, size_t a_size, const char *b,
               size_t b_size)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, a, a_size);
    if (b)
        zmsg_addmem (msg, b, b_size);
    zmsg_send (&msg, sock);
}

static json_int_t
s_writer_stat (const char *name)
{
    char path[64];
    snprintf (path, sizeof path, "writer.%s", name);
    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    json_int_t n = tk_json_int (stats, path);
    json_decref (stats);
    return n;
}

//  A valid order command, as a gateway named "fault-test" would send it.
static zframe_t *
s_valid_cmd (const char *key)
{
    bus_cmd_t *cmd = calloc (1, sizeof *cmd);
    cmd->type = BUS_CMD_PLACE;
    snprintf (cmd->key, sizeof cmd->key, "%s", key);
    snprintf (cmd->origin, sizeof cmd->origin, "fault-test");
    snprintf (cmd->table, sizeof cmd->table, "T1");
    cmd->line_count = 1;
    snprintf (cmd->lines[0].item_id, sizeof cmd->lines[0].item_id, "fries");
    cmd->lines[0].qty = 1;
    zframe_t *frame = bus_cmd_encode (cmd);
    free (cmd);
    CHECK (frame, "encode a command");
    return frame;
}

//  Returns how many undecodable messages reached the intake.
static int
s_junk_intake (void)
{
    zframe_t *valid = s_valid_cmd ("bad-never-placed");
    s_junk_build (valid);
    zsock_t *push = s_connect (ZMQ_PUSH, s_intake);
    for (int i = 0; i < s_junk_count; i++)
        s_send_frames (push, (char *) s_junk[i].data, s_junk[i].size, NULL, 0);
    int sent = s_junk_count;
    //  Multipart is not part of the protocol: dropped whole, even when
    //  its first frame is a valid order
    s_send_frames (push, "junk", 4, "more junk", 9);
    s_send_frames (push, (char *) zframe_data (valid), zframe_size (valid),
                   "tail", 4);
    sent += 2;
    zsock_destroy (&push);
    //  Too big for ZeroMQ itself (ZMQ_MAXMSGSIZE): the connection is
    //  dropped before the writer sees it, so it is not counted
    push = s_connect (ZMQ_PUSH, s_intake);
    zsock_set_linger (push, 1000);   //  it will not be taken: do not wait long
    size_t big = BUS_FRAME_MAX + 1;
    char *huge = calloc (1, big);
    s_send_frames (push, huge, big, NULL, 0);
    free (huge);
    zsock_destroy (&push);
    s_raw_tcp_junk (s_intake);
    zframe_destroy (&valid);
    printf (
        "fault_bad_input: intake: %d undecodable messages, 1 oversized frame, "
        "raw TCP junk\n",
        sent);
    return sent;
}

//  Returns how many undecodable requests reached the sync socket; each
//  must be answered with an error.
static int
s_junk_sync (void)
{
    bus_sync_req_t req = { .op = BUS_SYNC_MENU, .rid = 7 };
    zframe_t *valid = bus_sync_req_encode (&req);
    CHECK (valid, "encode a sync request");
    s_junk_build (valid);
    zframe_destroy (&valid);
    zsock_t *dealer = s_connect (ZMQ_DEALER, s_sync);
    int sent = 0, answered = 0;
    for (int i = 0; i <= s_junk_count; i++) {
        if (i < s_junk_count)
            s_send_frames (dealer, (char *) s_junk[i].data, s_junk[i].size,
                           NULL, 0);
        else
            s_send_frames (dealer, "two", 3, "frames", 6);
        sent++;
        zmsg_t *reply = zmsg_recv (dealer);
        zframe_t *header = reply ? zmsg_first (reply) : NULL;
        bus_sync_reply_t decoded;
        if (header
            && bus_sync_reply_decode (zframe_data (header),
                                      zframe_size (header), &decoded)
                   == 0
            && decoded.status != 0)
            answered++;
        else
            printf ("fault_bad_input: sync: no error reply to %s\n",
                    i < s_junk_count ? s_junk[i].name : "a multipart request");
        zmsg_destroy (&reply);
    }
    zsock_destroy (&dealer);
    CHECK (answered == sent,
           "sync socket answered %d of %d bad requests with "
           "an error",
           answered, sent);
    dealer = s_connect (ZMQ_DEALER, s_sync);
    zsock_set_linger (dealer, 1000);
    size_t big = BUS_FRAME_MAX + 1;
    char *huge = calloc (1, big);
    s_send_frames (dealer, huge, big, NULL, 0);
    free (huge);
    zsock_destroy (&dealer);
    s_raw_tcp_junk (s_sync);
    printf (
        "fault_bad_input: sync: %d undecodable requests, each answered with "
        "an error; 1 oversized frame, raw TCP junk\n",
        sent);
    return sent;
}

//  Subscription frames a SUB would never send, from an XSUB peer.
static void
s_junk_events (void)
{
    zsock_t *xsub = s_connect (ZMQ_XSUB, s_events);
    s_send_frames (xsub, "", 0, NULL, 0);
    s_send_frames (xsub, "\x02junk", 5, NULL, 0);
    s_send_frames (xsub, "\x00", 1, NULL, 0);
    s_send_frames (xsub, "\x01", 1, NULL, 0);         //  everything
    s_send_frames (xsub, "\x01junk", 5, "more", 4);   //  multipart
    char *topic = malloc (100001);
    topic[0] = '\x01';
    memset (topic + 1, 'E', 100000);
    s_send_frames (xsub, topic, 100001, NULL, 0);   //  100 KB topic
    free (topic);
    for (int i = 0; i < 500; i++) {
        char sub[32];
        int n = snprintf (sub, sizeof sub,
                          "\x01"
                          "E/junk-%d/",
                          i);
        s_send_frames (xsub, sub, (size_t) n, NULL, 0);
    }
    zsock_destroy (&xsub);
    s_raw_tcp_junk (s_events);
    printf ("fault_bad_input: events: junk subscription frames from an XSUB, "
            "raw TCP junk\n");
}

//  ---------------------------------------------------------------------
//  HTTP

static int s_http_checked;

static void
s_expect (tk_response_t *r, int status, const char *code, const char *what)
{
    const char *got = json_string_value (
        json_object_get (json_object_get (r->json, "error"), "code"));
    CHECK (r->status == status, "%s: status %d, want %d: %.200s", what,
           r->status, status, r->body ? r->body : "");
    if (code)
        CHECK (got && strcmp (got, code) == 0, "%s: error code %s, want %s",
               what, got ? got : "(none)", code);
    tk_response_free (r);
    s_http_checked++;
}

static void
s_post (const char *body, int status, const char *code, const char *what)
{
    char key[32];
    snprintf (key, sizeof key, "bad-http-%d", s_http_checked);
    tk_response_t r;
    tk_post_order (s_gw, key, body, &r);
    s_expect (&r, status, code, what);
}

//  Raw request: anything but a 5xx is fine, and a closed connection too.
static void
s_raw (int port, const void *bytes, size_t len, const char *what)
{
    tk_response_t r;
    tk_http_raw (port, bytes, len, &r);
    CHECK (r.status == 0 || (r.status >= 400 && r.status < 500),
           "%s: status %d", what, r.status);
    tk_response_free (&r);
    s_http_checked++;
}

static void
s_bad_http (void)
{
    s_post ("{", 400, "malformed", "unterminated JSON");
    s_post ("", 400, "malformed", "empty body");
    s_post ("null", 400, "malformed", "null");
    s_post ("[]", 400, "malformed", "an array");
    s_post ("\"order\"", 400, "malformed", "a string");
    s_post ("{\"table\":12,\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
            400, "invalid_field", "table a number");
    s_post ("{\"table\":\"T1\",\"items\":\"fries\"}", 400, "invalid_field",
            "items a string");
    s_post ("{\"table\":\"T1\",\"items\":[1]}", 400, "invalid_field",
            "a line that is a number");
    s_post ("{\"table\":\"T1\",\"items\":[]}", 400, "invalid_field",
            "no lines");
    s_post (
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":\"2\"}]}",
        400, "invalid_field", "quantity a string");
    s_post (
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":2.5}]}",
        400, "invalid_field", "quantity a fraction");
    s_post (
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1e300}]}",
        400, "invalid_field", "quantity 1e300");
    s_post ("{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\","
            "\"quantity\":99999999999999999999999}]}",
            400, NULL, "quantity beyond 64 bits");
    s_post (
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":-1}]}",
        400, "invalid_field", "negative quantity");
    s_post ("{\"table\":\"T1\",\"items\":[{\"item_id\":null,\"quantity\":1}]}",
            400, "invalid_field", "item_id null");
    s_post (
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1,"
        "\"note\":5}]}",
        400, "invalid_field", "note a number");
    s_post (
        "{\"table\":\"T1\",\"price_cents\":1,\"items\":[{\"item_id\":\"fries\","
        "\"quantity\":1}]}",
        400, "invalid_field", "a field that does not exist");
    s_post (
        "{\"table\":\"T/1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        400, "invalid_field", "table with a slash");
    s_post ("{\"table\":\"T123456789012345678901234567890123\",\"items\":"
            "[{\"item_id\":\"fries\",\"quantity\":1}]}",
            400, "invalid_field", "table of 33 characters");
    s_post (
        "{\"table\":\"T\\u0000\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        400, NULL, "a NUL in the table");
    s_post ("{\"table\":\"T\xff\xfe\",\"items\":"
            "[{\"item_id\":\"fries\",\"quantity\":1}]}",
            400, "malformed", "invalid UTF-8");
    char *many = tk_order_body ("T1", 50, false, 0);
    many[strlen (many) - 2] = '\0';   //  drop "]}" and add a 51st line
    char *body51 = malloc (strlen (many) + 64);
    sprintf (body51, "%s,{\"item_id\":\"fries\",\"quantity\":1}]}", many);
    s_post (body51, 400, "invalid_field", "51 lines");
    free (many);
    free (body51);
    char *deep = malloc (60001);
    memset (deep, '[', 60000);
    deep[60000] = '\0';
    s_post (deep, 400, "malformed", "60000 levels of nesting");
    free (deep);
    char *big = malloc (70001);
    memset (big, ' ', 70000);
    big[0] = '{', big[69999] = '}', big[70000] = '\0';
    s_post (big, 413, "too_big", "a 70 KB body");
    free (big);

    tk_response_t r;
    tk_http (s_gw, "POST", "/api/v1/orders",
             "Content-Type: text/plain\r\nIdempotency-Key: bad-type\r\n", "{}",
             &r);
    s_expect (&r, 415, "unsupported_media_type", "text/plain");
    char headers[400];
    char long_key[201];
    memset (long_key, 'k', 200);
    long_key[200] = '\0';
    snprintf (headers, sizeof headers,
              "Content-Type: application/json\r\nIdempotency-Key: %s\r\n",
              long_key);
    tk_http (
        s_gw, "POST", "/api/v1/orders", headers,
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        &r);
    s_expect (&r, 400, "invalid_field", "a 200-character Idempotency-Key");
    static const char *const queries[] = {
        "/api/v1/orders?limit=abc",
        "/api/v1/orders?limit=99999999999999999999",
        "/api/v1/orders?cursor=-1",
        "/api/v1/orders?status=%00",
        "/api/v1/orders?table=%2F",
        "/api/v1/orders?limit=1&limit=2&colour=red",
        NULL
    };
    for (int i = 0; queries[i]; i++) {
        tk_http (s_gw, "GET", queries[i], NULL, NULL, &r);
        s_expect (&r, 400, "invalid_field", queries[i]);
    }
    tk_http (s_gw, "GET", "/api/v1/orders/abc", NULL, NULL, &r);
    s_expect (&r, 404, "not_found", "order id abc");
    tk_http (s_gw, "GET", "/api/v1/orders/99999999999999999999999", NULL, NULL,
             &r);
    s_expect (&r, 404, "not_found", "order id beyond 64 bits");

    //  Raw requests civetweb or the gateway must refuse
    const char lying[] =
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: bad-lie\r\n"
        "Content-Length: 100000000\r\nConnection: close\r\n\r\n{}";
    tk_http_raw (s_gw, lying, sizeof lying - 1, &r);
    s_expect (&r, 413, "too_big", "Content-Length of 100 MB with 2 bytes sent");
    char binary[300];
    int n = snprintf (
        binary, sizeof binary,
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: bad-bin\r\n"
        "Content-Length: 16\r\nConnection: close\r\n\r\n");
    memcpy (binary + n, "{\"t\x00\x01\x02\xff\xfe\x00\x00\"\x00:}\x00\x00", 16);
    tk_http_raw (s_gw, binary, (size_t) n + 16, &r);
    s_expect (&r, 400, "malformed", "NUL bytes in the body");
    const char control_key[] =
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\n"
        "Idempotency-Key: bad\x01key\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}";
    tk_http_raw (s_gw, control_key, sizeof control_key - 1, &r);
    CHECK (r.status == 400 || r.status == 0,
           "a control character in the key: %d", r.status);
    tk_response_free (&r);
    const char chunked[] =
        "POST /api/v1/orders HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\n"
        "Idempotency-Key: bad-chunk\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "ZZZ\r\n{}\r\n0\r\n\r\n";
    s_raw (s_gw, chunked, sizeof chunked - 1, "a chunked body with a bad size");
    s_raw (s_gw, "GARBAGE\r\n\r\n", 11, "a request line that is not HTTP");
    s_raw (s_gw, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11,
           "a TLS hello");
    char *url = malloc (100100);
    int len = snprintf (url, 100100, "GET /api/v1/orders?table=");
    memset (url + len, 'x', 100000);
    strcpy (url + len + 100000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    s_raw (s_gw, url, strlen (url), "a 100 KB URL");
    free (url);
    char *heads = malloc (20000);
    len = snprintf (heads, 20000, "GET /api/v1/menu HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 300; i++)
        len += snprintf (heads + len, 20000 - (size_t) len, "X-Junk-%d: %d\r\n",
                         i, i);
    len += snprintf (heads + len, 20000 - (size_t) len, "\r\n");
    tk_http_raw (s_gw, heads, (size_t) len, &r);   //  a valid GET, junk aside
    CHECK (r.status < 500, "300 headers: status %d", r.status);
    tk_response_free (&r);
    free (heads);
    printf ("fault_bad_input: gateway: %d bad HTTP requests refused\n",
            s_http_checked);
}

//  ---------------------------------------------------------------------
//  Edge

//  (By hand: civetweb's client takes seconds to close a connection.)
static void
s_expect_snapshot (const char *path)
{
    int fd = tk_ws_raw_open (s_edge, path, 0);
    CHECK (fd >= 0, "WebSocket %s", path);
    static char text[1 << 16];
    size_t len;
    int opcode;
    while ((opcode = tk_ws_raw_read_frame (fd, 5000, text, sizeof text, &len))
           == MG_WEBSOCKET_OPCODE_PING)
        ;
    json_t *msg = json_loads (text, 0, NULL);
    const char *type = json_string_value (json_object_get (msg, "type"));
    CHECK (opcode == MG_WEBSOCKET_OPCODE_TEXT && type
               && strcmp (type, "snapshot") == 0,
           "%s: first message %s", path, type ? type : "(none)");
    json_decref (msg);
    close (fd);
}

//  One hand-made connection that breaks the protocol, then goes away.
static void
s_ws_violation (const char *what, const void *frame, size_t len)
{
    int fd = tk_ws_raw_open (s_edge, "/ws", 0);
    CHECK (fd >= 0, "raw WebSocket for %s", what);
    if (write (fd, frame, len) < 0)
        perror (what);
    tk_ws_raw_end_t end;
    //  civetweb mostly ignores such frames rather than failing the
    //  connection (RFC 6455 says it should); the edge must survive either
    tk_ws_raw_drain (fd, 300, &end);
    close (fd);
}

static void
s_bad_edge (void)
{
    s_expect_snapshot ("/ws?resume_from=abc");
    s_expect_snapshot ("/ws?resume_from=-5");
    s_expect_snapshot ("/ws?resume_from=1e99");
    s_expect_snapshot ("/ws?resume_from=99999999999999999999999");
    s_expect_snapshot ("/ws?resume_from=");
    s_expect_snapshot ("/ws?resume_from=%00");

    //  Messages a browser may send on a socket that only sends
    tk_ws_t *ws = tk_ws_open (s_edge, "/ws");
    CHECK (ws, "WebSocket for client messages");
    json_t *snap = tk_ws_next (ws, 5000);
    CHECK (snap, "snapshot");
    json_decref (snap);
    tk_ws_send (ws, MG_WEBSOCKET_OPCODE_TEXT, "hello", 5);
    json_t *answer = tk_ws_next (ws, 5000);
    const char *type = json_string_value (json_object_get (answer, "type"));
    CHECK (type && strcmp (type, "error") == 0,
           "a text message is answered with "
           "an error: %s",
           type ? type : "(nothing)");
    json_decref (answer);
    tk_ws_send (ws, MG_WEBSOCKET_OPCODE_BINARY, "\x00\x01\x02\xff", 4);
    char *huge = malloc (200000);
    memset (huge, '{', 200000);
    tk_ws_send (ws, MG_WEBSOCKET_OPCODE_TEXT, huge, 200000);
    tk_ws_send (ws, MG_WEBSOCKET_OPCODE_BINARY, huge, 200000);
    free (huge);
    tk_ws_close (&ws);

    //  Protocol violations, each on a connection of its own
    s_ws_violation ("an unmasked frame", "\x81\x05hello", 7);
    s_ws_violation ("a reserved opcode", "\x83\x80\x00\x00\x00\x00", 6);
    s_ws_violation ("RSV bits", "\xf1\x80\x00\x00\x00\x00", 6);
    s_ws_violation ("a continuation with no start", "\x80\x80\x00\x00\x00\x00",
                    6);
    s_ws_violation (
        "a length of 2^62",
        "\x81\xff\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04xyz", 17);
    s_ws_violation ("a 200-byte ping (control frames are 125 at most)",
                    "\x89\xfe\x00\xc8\x00\x00\x00\x00", 8);
    s_ws_violation ("a close frame with code 0",
                    "\x88\x82\x00\x00\x00\x00\x00\x00", 8);
    s_ws_violation ("bytes that are no frame",
                    "\x00\x00\x00\x00\xff\xff\xff\xff", 8);

    //  Bad handshakes and path tricks
    const char no_key[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    s_raw (s_edge, no_key, sizeof no_key - 1, "a handshake without a key");
    const char version[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
        "Sec-WebSocket-Version: 99\r\n\r\n";
    s_raw (s_edge, version, sizeof version - 1, "a handshake of version 99");
    static const char *const paths[] = { "/../../../../etc/passwd",
                                         "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                         "/..%2f..%2f..%2f..%2fetc%2fpasswd",
                                         "/kitchen/../../../etc/passwd", NULL };
    for (int i = 0; paths[i]; i++) {
        tk_response_t r;
        tk_http (s_edge, "GET", paths[i], NULL, NULL, &r);
        CHECK (!r.body || !strstr (r.body, "root:"), "%s served /etc/passwd",
               paths[i]);
        tk_response_free (&r);
    }
    s_raw (s_edge, "GARBAGE\r\n\r\n", 11, "a request line that is not HTTP");
    printf (
        "fault_bad_input: edge: bad resume_from, client messages, 8 protocol "
        "violations, bad handshakes, path tricks\n");
}

//  ---------------------------------------------------------------------

//  A normal order: 201, and the kitchen sees its event.
static void
s_good_order (tk_follower_t *kitchen, const char *why)
{
    char key[32], table[16];
    snprintf (key, sizeof key, "good-%d", s_good);
    snprintf (table, sizeof table, "T%d", s_good + 1);
    char *body = tk_order_body (table, 2, false, s_good);
    //  Taken before: the event is published before the 201 is sent
    tk_follow_stats_t st;
    tk_follower_stats (kitchen, &st);
    int current = 0;
    int status =
        tk_ledger_place (s_ledger, &s_gw, 1, &current, key, table, body, 10000);
    free (body);
    s_good++;
    CHECK (status == 201, "a normal order %s: %d", why, status);
    CHECK (tk_follower_wait (kitchen, st.last + 1, 10000),
           "the kitchen sees the order placed %s", why);
}

//  What the cases share besides the nodes' ports and the ledger: the
//  kitchen, its counts after the last order, and the late browser
static tk_follower_t *s_kitchen, *s_late;
static tk_follow_stats_t s_kitchen_end;

TK_CASE (start)
{
    char data[600], menu[600], web[600], gw_port[16], edge_port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    s_gw = tk_port ();
    s_edge = tk_port ();
    snprintf (gw_port, sizeof gw_port, "%d", s_gw);
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);
    tk_spawn_env ("writer", NULL, "writer", "--data", data, "--menu", menu,
                  "--intake", s_intake, "--events", s_events, "--sync", s_sync,
                  NULL);
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", s_intake, "--events",
                  s_events, "--sync", s_sync, "--http-port", gw_port, NULL);
    tk_spawn_env ("edge", NULL, "edge", "--events", s_events, "--sync", s_sync,
                  "--http-port", edge_port, "--web", web, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    s_ledger = tk_ledger_new ();
    s_kitchen = tk_follower_new (s_edge, "kitchen");
    CHECK (tk_follower_wait (s_kitchen, 0, 10000), "kitchen snapshot");
    s_good_order (s_kitchen, "before any junk");
}

TK_CASE (zeromq_junk)
{
    json_int_t dropped0 = s_writer_stat ("dropped");
    CHECK (dropped0 >= 0, "writer.dropped in /api/v1/stats");
    int undecodable = s_junk_intake ();
    undecodable += s_junk_sync ();
    s_junk_events ();
    json_int_t dropped = dropped0;
    for (int64_t end = tk_now_ms () + 10000;
         (dropped = s_writer_stat ("dropped")) < dropped0 + undecodable
         && tk_now_ms () < end;)
        usleep (100 * 1000);
    printf ("fault_bad_input: writer.dropped %lld -> %lld (+%lld) after %d "
            "undecodable messages\n",
            (long long) dropped0, (long long) dropped,
            (long long) (dropped - dropped0), undecodable);
    CHECK (dropped - dropped0 >= undecodable,
           "writer.dropped grew by %lld, want "
           "at least %d",
           (long long) (dropped - dropped0), undecodable);
    s_good_order (s_kitchen, "after the ZeroMQ junk");
}

TK_CASE (http_junk)
{
    s_bad_http ();
    s_good_order (s_kitchen, "after the HTTP junk");
}

TK_CASE (websocket_junk)
{
    s_bad_edge ();
    s_good_order (s_kitchen, "after the WebSocket junk");
}

//  Every node still serves: a new browser gets a snapshot, then the next
//  order
TK_CASE (still_serving)
{
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 5000), "gateway still healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 5000), "edge still healthy");
    s_late = tk_follower_new (s_edge, "late browser");
    CHECK (tk_follower_wait (s_late, 0, 10000), "a new browser's snapshot");
    s_good_order (s_kitchen, "at the end");
    tk_follower_stats (s_kitchen, &s_kitchen_end);
    CHECK (tk_follower_wait (s_late, s_kitchen_end.last, 10000),
           "the new browser sees it too");
}

TK_CASE (only_good_orders)
{
    const tk_follow_stats_t *st = &s_kitchen_end;   //  after the last order
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_bad_input", &t);
    CHECK (t.stored == (size_t) s_good && t.acked == (size_t) s_good
               && t.unknown == 0 && t.duplicates == 0,
           "stored %zu orders (%zu unknown), want only the %d good ones",
           t.stored, t.unknown, s_good);
    CHECK (t.seq_gaps == 0 && t.seq_dups == 0, "seqs 1..%zu", t.stored);
    tk_follower_print ("fault_bad_input", s_kitchen);
    CHECK (st->gaps == 0 && st->duplicates == 0 && st->snapshots == 0
               && st->errors == 0 && st->reconnects == 0,
           "the kitchen was disturbed: gaps %zu, duplicates %zu, resyncs %zu, "
           "errors %zu, reconnects %zu",
           st->gaps, st->duplicates, st->snapshots, st->errors, st->reconnects);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (zeromq_junk),
                                     TK_CASE_ENTRY (http_junk),
                                     TK_CASE_ENTRY (websocket_junk),
                                     TK_CASE_ENTRY (still_serving),
                                     TK_CASE_ENTRY (only_good_orders),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_bad_input");
    tk_run_cases (s_cases);
    tk_follower_destroy (&s_late);
    tk_follower_destroy (&s_kitchen);
    for (int i = 0; i < s_junk_count; i++)
        free (s_junk[i].data);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
