/*  test_http_limits — a gateway's connection limits hold against slow
    and greedy clients while pads keep ordering (docs/limits.md):

      - per_ip: one address (127.0.0.2) opening 20 connections keeps
        http/max_per_ip (8) of them, the rest are closed at once, and a
        pad on another address (127.0.0.1) still orders, 201;
      - deadline: connections that send their headers a byte at a time
        (each byte restarts libmicrohttpd's idle timeout) are cut once
        http/request_deadline_ms (2 s) has passed, and the address may
        connect again;
      - keepalive: a keep-alive connection idle for most of the deadline,
        whose next request then takes most of the deadline to arrive, is
        served: idle time is not charged to the request;
      - served: an order that waits for a stopped writer longer than the
        deadline is not cut: it gets its 201 when the writer goes on.  */

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK       TK_CHECK
#define PER_IP      8
#define GREEDY      20
#define DEADLINE_MS 2000
#define SLOW_HEADER "GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: "

static char s_secret[700];
static char *s_pad;
static int s_gw;
static pid_t s_writer;

static void
s_start_nodes (void)
{
    char data[600], menu[600], port[16], per_ip[16], deadline[16];
    char intake[64], events[64], sync[64];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (port, sizeof port, "%d", s_gw);
    snprintf (per_ip, sizeof per_ip, "%d", PER_IP);
    snprintf (deadline, sizeof deadline, "%d", DEADLINE_MS);
    tk_endpoints (intake, events, sync);
    s_writer =
        tk_spawn ("writer", "writer", "--data", data, "--menu", menu,
                  "--intake", intake, "--events", events, "--sync", sync, NULL);
    tk_spawn ("gateway", "gateway", "--intake", intake, "--events", events,
              "--sync", sync, "--http-port", port, "--secret-file", s_secret,
              "--max-per-ip", per_ip, "--request-deadline-ms", deadline,
              "--ack-timeout-ms", "10000", NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway not healthy");
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

//  A pad's order from 127.0.0.1: its status.
static int
s_order (const char *key)
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
    free (body);
    tk_response_free (&r);
    return status;
}

static int s_slow[GREEDY];   //  -1 once closed
static int64_t s_opened_ms;

static void
s_per_ip (void)
{
    for (int i = 0; i < GREEDY; i++) {
        s_slow[i] = tk_tcp_connect ("127.0.0.2", s_gw);
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
    CHECK (s_order ("limits-1") == 201, "a pad orders while 127.0.0.2 is at "
                                        "its cap");
    printf ("  %d connections from one address: %d kept (http/max_per_ip), "
            "the rest closed; a pad still orders\n",
            GREEDY, open);
}

static void
s_deadline (void)
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
    int fd = tk_tcp_connect ("127.0.0.2", s_gw);
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
    printf ("  headers sent a byte at a time: cut after %lld ms "
            "(http/request_deadline_ms %d)\n",
            (long long) took, DEADLINE_MS);
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
    status = s_order ("limits-2");
    int64_t took = tk_now_ms () - start;
    kill (s_writer, SIGCONT);
    waitpid (waker, NULL, 0);
    CHECK (status == 201 && took >= 2 * DEADLINE_MS - 200,
           "an order served past the deadline: %d after %lld ms", status,
           (long long) took);
    printf ("  an order that waited %lld ms for the writer: %d, not cut\n",
            (long long) took, status);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "integration_http_limits");
    snprintf (s_secret, sizeof s_secret, "%s/secret", tk_dir ());
    s_pad = tk_mint (s_secret, "--table", "T1");
    s_gw = tk_port ();
    s_start_nodes ();
    s_per_ip ();
    s_deadline ();
    s_keepalive ();
    s_served ();
    free (s_pad);
    return tk_done ();
}
