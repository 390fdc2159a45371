/*  test_http_limits — a gateway's and an edge's limits hold against
    slow, greedy and fast clients while pads keep ordering and a kitchen
    on the edge keeps receiving every order's event (docs/limits.md):

      - per_ip, on the gateway and on the edge: one address (127.0.0.2)
        opening 20 connections keeps http/max_per_ip (8) of them, the
        rest are closed at once, and a pad on another address
        (127.0.0.1) still orders, 201;
      - deadline: connections that send their headers a byte at a time
        (each byte restarts libmicrohttpd's idle timeout) are cut once
        http/request_deadline_ms (2 s) has passed, and the address may
        connect again;
      - ws_too_big: a WebSocket frame announcing 512 MiB is answered
        close 1009 on its header, and the connection ends; the kitchen's
        own WebSocket, open for far longer than the deadline, is never
        cut by it;
      - keepalive: a keep-alive connection idle for most of the deadline,
        whose next request then takes most of the deadline to arrive, is
        served: idle time is not charged to the request;
      - served: an order that waits for a stopped writer longer than the
        deadline is not cut: it gets its 201 when the writer goes on;
      - too_big: a body over 64 KiB is 413 too_big;
      - table_rate: a table ordering past limits/table_burst gets 429
        rate_limited with Retry-After;
      - change_rate: a token changing its cart past limits/change_burst
        (3) gets 429 rate_limited with Retry-After.

    After each, a pad's order reaches the kitchen, which was connected
    throughout and ends with every order placed, in sequence.  */

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK        TK_CHECK
#define PER_IP       8
#define GREEDY       20
#define DEADLINE_MS  2000
#define SLOW_HEADER  "GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: "
#define CHANGE_BURST 3

static char s_secret[700];
static char *s_pad;
static int s_gw, s_edge;
static pid_t s_writer;
static tk_ws_t *s_kitchen;
static json_int_t s_kitchen_seq;   //  the last event's seq it got
static int s_kitchen_orders;       //  events it got
static int s_placed;               //  orders answered 201

static void
s_start_nodes (void)
{
    char data[600], menu[600], web[600], port[16], per_ip[16], deadline[16];
    char intake[64], events[64], sync[64], edge_port[16], burst[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (port, sizeof port, "%d", s_gw);
    snprintf (per_ip, sizeof per_ip, "%d", PER_IP);
    snprintf (deadline, sizeof deadline, "%d", DEADLINE_MS);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    snprintf (edge_port, sizeof edge_port, "%d", s_edge);
    snprintf (burst, sizeof burst, "%d", CHANGE_BURST);
    tk_endpoints (intake, events, sync);
    s_writer =
        tk_spawn ("writer", "writer", "--data", data, "--menu", menu,
                  "--intake", intake, "--events", events, "--sync", sync, NULL);
    tk_spawn ("gateway", "gateway", "--intake", intake, "--events", events,
              "--sync", sync, "--http-port", port, "--secret-file", s_secret,
              "--max-per-ip", per_ip, "--request-deadline-ms", deadline,
              "--ack-timeout-ms", "10000", "--change-burst", burst, NULL);
    tk_spawn ("edge", "edge", "--events", events, "--sync", sync, "--http-port",
              edge_port, "--web", web, "--secret-file", s_secret,
              "--max-per-ip", per_ip, "--request-deadline-ms", deadline, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway not healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge not healthy");
}

//  The kitchen, connected for the whole test, given its snapshot.
static void
s_kitchen_connect (void)
{
    char *token = tk_mint (s_secret, "--staff", "kitchen");
    char path[1024];
    snprintf (path, sizeof path, "/ws?token=%s", token);
    free (token);
    s_kitchen = tk_ws_open (s_edge, path);
    CHECK (s_kitchen, "a kitchen connects to the edge");
    json_t *snapshot = tk_ws_next (s_kitchen, 5000);
    const char *type = json_string_value (json_object_get (snapshot, "type"));
    CHECK (type && strcmp (type, "snapshot") == 0, "the kitchen's snapshot");
    s_kitchen_seq = tk_json_int (snapshot, "seq");
    json_decref (snapshot);
}

//  The kitchen gets order id's event, after those of every order placed
//  before it, in sequence (cart changes are not the kitchen's: their seqs
//  are skipped).
static void
s_kitchen_gets (json_int_t id, const char *when)
{
    for (int64_t end = tk_now_ms () + 5000; tk_now_ms () < end;) {
        json_t *event = tk_ws_next (s_kitchen, 1000);
        if (!event)
            continue;
        json_int_t seq = tk_json_int (event, "seq");
        json_int_t got = tk_json_int (event, "order.id");
        json_decref (event);
        CHECK (seq > s_kitchen_seq, "%s: the kitchen got seq %lld after %lld",
               when, (long long) seq, (long long) s_kitchen_seq);
        s_kitchen_seq = seq;
        s_kitchen_orders++;
        if (got == id)
            break;
    }
    CHECK (s_kitchen_orders == s_placed,
           "%s: the kitchen got %d orders' events, %d were placed", when,
           s_kitchen_orders, s_placed);
}

//  Has the server ended the connection (EOF or reset) within wait_ms?
//  Reads and drops whatever else it sent.
static bool
s_closed (int fd, int wait_ms)
{
    int64_t end = tk_now_ms () + wait_ms;
    while (true) {
        int64_t left = end - tk_now_ms ();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll (&p, 1, left > 0 ? (int) left : 0) <= 0)
            return false;
        char buf[512];
        ssize_t n = recv (fd, buf, sizeof buf, 0);
        if (n <= 0)
            return true;
    }
}

//  A pad's order from 127.0.0.1: its status; its id in *id if 201.
static int
s_order (const char *key, json_int_t *id)
{
    char headers[1024];
    snprintf (headers, sizeof headers,
              "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
              "Idempotency-Key: %s\r\n",
              s_pad, key);
    char *body = tk_order_body ("T1", 1, false, 0);
    tk_response_t r;
    tk_http (s_gw, "POST", "/api/v1/orders", headers, body, &r);
    int status = r.status;
    if (id)
        *id = status == 201 ? tk_json_int (r.json, "id") : -1;
    s_placed += status == 201;
    free (body);
    tk_response_free (&r);
    return status;
}

//  A pad orders and the kitchen gets it: the limit just hit kept neither
//  from working.
static void
s_still_served (const char *key, const char *when)
{
    json_int_t id;
    CHECK (s_order (key, &id) == 201, "%s: a pad orders", when);
    s_kitchen_gets (id, when);
}

static int s_slow[GREEDY];   //  -1 once closed
static int64_t s_opened_ms;

static void
s_per_ip (int port, const char *node)
{
    for (int i = 0; i < GREEDY; i++) {
        s_slow[i] = tk_tcp_connect ("127.0.0.2", port);
        CHECK (s_slow[i] >= 0, "connection %d from 127.0.0.2", i);
        //  a write to a connection closed a moment ago may fail: no matter
        (void) !send (s_slow[i], SLOW_HEADER, strlen (SLOW_HEADER),
                      MSG_NOSIGNAL);
    }
    s_opened_ms = tk_now_ms ();
    usleep (300 * 1000);
    int open = 0;
    for (int i = 0; i < GREEDY; i++) {
        if (s_closed (s_slow[i], 0)) {
            close (s_slow[i]);
            s_slow[i] = -1;
        } else
            open++;
    }
    CHECK (open == PER_IP, "%d of %d greedy connections kept, not %d", open,
           GREEDY, PER_IP);
    char key[64];
    snprintf (key, sizeof key, "limits-ip-%s", node);
    s_still_served (key, "while 127.0.0.2 is at its cap");
    printf ("  %s: %d connections from one address: %d kept "
            "(http/max_per_ip), the rest closed; a pad still orders\n",
            node, GREEDY, open);
}

static void
s_deadline (int port, const char *node)
{
    //  A byte every 200 ms to the kept ones: never idle, never done
    int alive = 0;
    for (int64_t end = s_opened_ms + DEADLINE_MS + 3000; tk_now_ms () < end;) {
        alive = 0;
        for (int i = 0; i < GREEDY; i++) {
            if (s_slow[i] < 0)
                continue;
            if (s_closed (s_slow[i], 0)) {
                close (s_slow[i]);
                s_slow[i] = -1;
            } else
                alive += send (s_slow[i], "x", 1, MSG_NOSIGNAL) == 1;
        }
        if (alive == 0)
            break;
        usleep (200 * 1000);
    }
    int64_t took = tk_now_ms () - s_opened_ms;
    CHECK (alive == 0, "%d slow connections still open after %lld ms", alive,
           (long long) took);
    CHECK (took >= DEADLINE_MS - 300, "cut after %lld ms, before the deadline",
           (long long) took);
    //  The address may connect again, and a whole request is served
    int fd = tk_tcp_connect ("127.0.0.2", port);
    const char *get = "GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n";
    CHECK (fd >= 0 && send (fd, get, strlen (get), MSG_NOSIGNAL) > 0,
           "127.0.0.2 connects again");
    char reply[64] = "";
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll (&p, 1, 5000) == 1)
        (void) !recv (fd, reply, sizeof reply - 1, 0);
    CHECK (strncmp (reply, "HTTP/1.1 200", 12) == 0, "its request: %.20s",
           reply);
    close (fd);
    char key[64];
    snprintf (key, sizeof key, "limits-deadline-%s", node);
    s_still_served (key, "after the slow ones were cut");
    printf ("  %s: headers sent a byte at a time: cut after %lld ms "
            "(http/request_deadline_ms %d)\n",
            node, (long long) took, DEADLINE_MS);
}

//  The answer on fd to a GET /healthz sent in pieces over spread_ms
static bool
s_slow_healthz (int fd, int spread_ms)
{
    const char *pieces[] = { "GET /healthz HTTP/1.1\r\n", "Host: gateway\r\n",
                             "X-Pad: idle\r\n", "\r\n" };
    for (int i = 0; i < 4; i++) {
        if (send (fd, pieces[i], strlen (pieces[i]), MSG_NOSIGNAL) <= 0)
            return false;
        if (i < 3)
            usleep ((useconds_t) spread_ms * 1000 / 3);
    }
    char reply[4096] = "";
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll (&p, 1, 5000) == 1)
        (void) !recv (fd, reply, sizeof reply - 1, 0);
    return strncmp (reply, "HTTP/1.1 200", 12) == 0;
}

static void
s_keepalive (void)
{
    int fd = tk_tcp_connect ("127.0.0.3", s_gw);
    CHECK (fd >= 0 && s_slow_healthz (fd, 0), "a first request");
    usleep (DEADLINE_MS * 3 / 4 * 1000);
    CHECK (s_slow_healthz (fd, DEADLINE_MS * 3 / 4),
           "a request after %d ms idle, sent over %d ms: served on the same "
           "connection",
           DEADLINE_MS * 3 / 4, DEADLINE_MS * 3 / 4);
    close (fd);
    s_still_served ("limits-keepalive", "after the keep-alive requests");
    printf ("  a keep-alive connection idle %d ms, then a request sent over "
            "%d ms: served\n",
            DEADLINE_MS * 3 / 4, DEADLINE_MS * 3 / 4);
}

static void
s_served (void)
{
    kill (s_writer, SIGSTOP);
    int64_t start = tk_now_ms ();
    int status = -1;
    //  The writer goes on after twice the deadline, from a child: the
    //  order's answer waits for it
    pid_t waker = fork ();
    if (waker == 0) {
        usleep (2 * DEADLINE_MS * 1000);
        kill (s_writer, SIGCONT);
        _exit (0);
    }
    json_int_t id = -1;
    status = s_order ("limits-2", &id);
    int64_t took = tk_now_ms () - start;
    kill (s_writer, SIGCONT);
    waitpid (waker, NULL, 0);
    CHECK (status == 201 && took >= 2 * DEADLINE_MS - 200,
           "an order served past the deadline: %d after %lld ms", status,
           (long long) took);
    s_kitchen_gets (id, "the order that waited for the writer");
    printf ("  an order that waited %lld ms for the writer: %d, not cut\n",
            (long long) took, status);
}

//  A request's status, and whether its answer names code and has a
//  Retry-After header.
static int
s_request (const char *method, const char *path, const char *token,
           const char *body, const char *code, bool *named, bool *retry_after)
{
    char headers[1024];
    snprintf (headers, sizeof headers,
              "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
              "Idempotency-Key: limits-%lld\r\n",
              token, (long long) tk_now_ms ());
    tk_response_t r;
    tk_http (s_gw, method, path, headers, body, &r);
    char value[64];
    *named = r.body && strstr (r.body, code);
    *retry_after = tk_header (&r, "Retry-After", value, sizeof value) != NULL;
    int status = r.status;
    tk_response_free (&r);
    return status;
}

static void
s_too_big (void)
{
    size_t len = 70 * 1024;
    char *body = malloc (len + 1);
    CHECK (body, "memory");
    memset (body, ' ', len);
    body[0] = '{';
    body[len - 1] = '}';
    body[len] = 0;
    bool named, retry;
    int status = s_request ("POST", "/api/v1/orders", s_pad, body, "too_big",
                            &named, &retry);
    free (body);
    CHECK (status == 413 && named, "a 70 KiB body: %d, not 413 too_big",
           status);
    s_still_served ("limits-big", "after a body too big");
    printf ("  a 70 KiB body: 413 too_big\n");
}

static void
s_table_rate (void)
{
    char *pad = tk_mint (s_secret, "--table", "T2");
    char *body = tk_order_body ("T2", 1, false, 0);
    int placed = 0, status = 0;
    bool named = false, retry = false;
    //  As fast as it can: the burst (10) is gone long before a token
    //  comes back at 2 a second
    for (int i = 0; i < 30 && status != 429; i++) {
        status = s_request ("POST", "/api/v1/orders", pad, body, "rate_limited",
                            &named, &retry);
        placed += status == 201;
        s_placed += status == 201;
    }
    free (body);
    free (pad);
    CHECK (status == 429 && named && retry,
           "table T2 past its burst: %d (rate_limited named: %d, Retry-After: "
           "%d)",
           status, named, retry);
    //  The kitchen gets T2's orders' events first, then this one's
    s_still_served ("limits-table", "while T2 is throttled");
    printf ("  table T2: %d orders, then 429 rate_limited with Retry-After; "
            "T1 still orders\n",
            placed);
}

static void
s_change_rate (void)
{
    char *pad = tk_mint (s_secret, "--table", "T3");
    int statuses[CHANGE_BURST + 1];
    bool named = false, retry = false;
    for (int i = 0; i <= CHANGE_BURST; i++)
        statuses[i] = s_request ("DELETE", "/api/v1/tables/T3/cart", pad, NULL,
                                 "rate_limited", &named, &retry);
    free (pad);
    for (int i = 0; i < CHANGE_BURST; i++)
        CHECK (statuses[i] != 429, "change %d of the burst: 429", i + 1);
    CHECK (statuses[CHANGE_BURST] == 429 && named && retry,
           "the change past limits/change_burst (%d): %d (rate_limited "
           "named: %d, Retry-After: %d)",
           CHANGE_BURST, statuses[CHANGE_BURST], named, retry);
    s_still_served ("limits-change", "while T3's pad is throttled");
    printf ("  %d cart changes from one pad, then 429 rate_limited with "
            "Retry-After\n",
            CHANGE_BURST);
}

//  A browser announcing a message past the edge's cap (16 KiB) is
//  answered close 1009 on the frame's header alone, and its connection
//  ends; the payload is never sent.
static void
s_ws_too_big (void)
{
    char *token = tk_mint (s_secret, "--table", "T1");
    char path[1024];
    snprintf (path, sizeof path, "/ws?token=%s", token);
    free (token);
    int fd = tk_ws_raw_open (s_edge, path, 0);
    CHECK (fd >= 0, "a pad's WebSocket");
    //  Binary, final, masked, 64-bit length: 512 MiB; then the mask
    const unsigned char header[] = { 0x82, 0x80 | 127, 0, 0, 0, 0, 0x20,
                                     0,    0,          0, 1, 2, 3, 4 };
    CHECK (send (fd, header, sizeof header, MSG_NOSIGNAL)
               == (ssize_t) sizeof header,
           "the frame's header sent");
    tk_ws_raw_end_t end, after;
    tk_ws_raw_drain (fd, 5000, &end);
    tk_ws_raw_drain (fd, 5000, &after);   //  then the edge hangs up
    close (fd);
    CHECK (end.close_code == 1009 && after.eof,
           "a 512 MiB frame: close %d (want 1009), then ended %d",
           end.close_code, after.eof);
    s_still_served ("limits-ws-big", "after a WebSocket message too big");
    printf ("  edge: a WebSocket frame announcing 512 MiB: close 1009 on its "
            "header\n");
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "integration_http_limits");
    snprintf (s_secret, sizeof s_secret, "%s/secret", tk_dir ());
    s_pad = tk_mint (s_secret, "--table", "T1");
    s_gw = tk_port ();
    s_edge = tk_port ();
    s_start_nodes ();
    s_kitchen_connect ();
    s_per_ip (s_gw, "gateway");
    s_deadline (s_gw, "gateway");
    s_per_ip (s_edge, "edge");
    s_deadline (s_edge, "edge");
    s_ws_too_big ();
    s_keepalive ();
    s_served ();
    s_too_big ();
    s_table_rate ();
    s_change_rate ();
    printf ("  the kitchen got every order's event, %d, up to seq %lld, in "
            "order\n",
            s_kitchen_orders, (long long) s_kitchen_seq);
    tk_ws_close (&s_kitchen);
    free (s_pad);
    return tk_done ();
}
