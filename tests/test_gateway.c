/*  test_gateway — the gateway node's event-driven HTTP server:

      - orders waiting for the writer hold no thread: with the writer
        frozen (SIGSTOP), 40 orders in flight and only 4 threads
        (--http-threads 4), the gateway still answers /healthz and
        /api/openapi.json at once (a thread per waiting order would have
        none left for them);
      - once the writer goes on (SIGCONT), each of the 40 gets its 201;
      - a gateway stopped (SIGTERM) with orders in flight answers each
        (503 when the writer does not confirm by the deadline) and then
        exits cleanly, within the deadline and a little; meanwhile a new
        connection is refused at once (the client can try another);
      - clients that gave up on their orders (closed the connection)
        while the writer was frozen leave nothing behind: once the writer
        goes on, a SIGTERM stops the gateway at once, with no answer it
        still waits for.  */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK        TK_CHECK
#define WAITING      40     //  orders in flight at once
#define STOPPING     5      //  orders in flight when a gateway stops
#define GAVE_UP      40     //  orders whose clients close before the ack
#define SHORT_ACK_MS 1500   //  the stopping gateway's deadline
#define FAST_MS      1000   //  "at once", generously, on a busy machine
#define REFUSED_MS   400    //  a refused connect, on a busy machine

static char s_intake[64], s_events[64], s_sync[64];

typedef struct {
    int port;
    char key[32];
    int status;
    char message[160];
    pthread_t thread;
} s_post_t;

static void *
s_post (void *arg)
{
    s_post_t *post = (s_post_t *) arg;
    char table[16];
    snprintf (table, sizeof table, "T%s", post->key + strlen (post->key) - 2);
    char *body = tk_order_body (table, 1, false, 0);
    tk_response_t r;
    tk_post_order (post->port, post->key, body, &r);
    post->status = r.status;
    const char *message = json_string_value (
        json_object_get (json_object_get (r.json, "error"), "message"));
    snprintf (post->message, sizeof post->message, "%s",
              message ? message : "");
    tk_response_free (&r);
    free (body);
    return NULL;
}

static void
s_start (s_post_t *posts, int count, int port, const char *prefix)
{
    for (int i = 0; i < count; i++) {
        posts[i].port = port;
        snprintf (posts[i].key, sizeof posts[i].key, "%s-%02d", prefix, i);
        pthread_create (&posts[i].thread, NULL, s_post, &posts[i]);
    }
}

static pid_t
s_gateway (const char *name, int port, const char *ack_timeout_ms)
{
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    //  The link timeout outlasts every freeze here: the gateway must take
    //  the orders, not refuse them as "writer unreachable"
    pid_t pid =
        tk_spawn (name, "gateway", "--intake", s_intake, "--events", s_events,
                  "--sync", s_sync, "--http-port", http, "--name", name,
                  "--http-threads", "4", "--ack-timeout-ms", ack_timeout_ms,
                  "--link-timeout-ms", "20000", "--table-rate", "1000", NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "%s healthy", name);
    //  One order first: the gateway fetches the menu for it, and checks
    //  the orders below against its copy
    char key[48];
    snprintf (key, sizeof key, "%s-first", name);
    char *body = tk_order_body ("T1", 1, false, 0);
    tk_response_t r;
    tk_post_order (port, key, body, &r);
    CHECK (r.status == 201, "%s: first order %d, want 201", name, r.status);
    tk_response_free (&r);
    free (body);
    return pid;
}

//  GET path answers want within FAST_MS.
static void
s_answers_fast (int port, const char *path, int want)
{
    int64_t start = tk_now_ms ();
    tk_response_t r;
    tk_http (port, "GET", path, NULL, NULL, &r);
    int64_t took = tk_now_ms () - start;
    CHECK (r.status == want && took < FAST_MS,
           "GET %s with %d orders waiting: "
           "%d in %lld ms, want %d at once",
           path, WAITING, r.status, (long long) took, want);
    tk_response_free (&r);
}

static void
s_waiting_hold_no_thread (pid_t writer)
{
    int port = tk_port ();
    s_gateway ("gw-wait", port, "20000");
    s_post_t posts[WAITING];
    kill (writer, SIGSTOP);
    s_start (posts, WAITING, port, "wait");
    usleep (500 * 1000);   //  all sent, all waiting
    s_answers_fast (port, "/healthz", 200);
    s_answers_fast (port, "/api/openapi.json", 200);
    kill (writer, SIGCONT);
    int placed = 0;
    for (int i = 0; i < WAITING; i++) {
        pthread_join (posts[i].thread, NULL);
        placed += posts[i].status == 201;
        CHECK (posts[i].status == 201, "order %s: %d, want 201", posts[i].key,
               posts[i].status);
    }
    printf ("test_gateway: %d orders waited for a frozen writer on 4 threads "
            "while the gateway kept answering; %d placed after it went on\n",
            WAITING, placed);
}

static void
s_stop_answers_all (pid_t writer)
{
    int port = tk_port ();
    char ack[16];
    snprintf (ack, sizeof ack, "%d", SHORT_ACK_MS);
    pid_t gateway = s_gateway ("gw-stop", port, ack);
    s_post_t posts[STOPPING];
    kill (writer, SIGSTOP);
    s_start (posts, STOPPING, port, "stop");
    usleep (300 * 1000);
    int64_t start = tk_now_ms ();
    kill (gateway, SIGTERM);
    usleep (300 * 1000);
    //  A new client is turned away at once (not held until the gateway
    //  has answered the others, ~1 s here), to try another gateway
    int64_t asked = tk_now_ms ();
    tk_response_t r;
    tk_http (port, "GET", "/healthz", NULL, NULL, &r);
    int64_t refused = tk_now_ms () - asked;
    CHECK (r.status == 0 && refused < REFUSED_MS,
           "a new connection to a "
           "stopping gateway: %d after %lld ms, want refused within %d ms",
           r.status, (long long) refused, REFUSED_MS);
    tk_response_free (&r);
    int status = tk_kill (gateway, SIGTERM);   //  reaps it
    int64_t took = tk_now_ms () - start;
    CHECK (status == 0 && took < SHORT_ACK_MS + 2000,
           "gateway stopped with "
           "orders in flight: exit %d after %lld ms, want 0 within ~%d ms",
           status, (long long) took, SHORT_ACK_MS);
    for (int i = 0; i < STOPPING; i++) {
        pthread_join (posts[i].thread, NULL);
        CHECK (posts[i].status == 503
                   && strstr (posts[i].message, "did not "
                                                "confirm"),
               "order %s at shutdown: %d '%s', want 503 'did not confirm'",
               posts[i].key, posts[i].status, posts[i].message);
    }
    kill (writer, SIGCONT);
    printf ("test_gateway: stopped with %d orders in flight: each answered "
            "503, exit %d after %lld ms\n",
            STOPPING, status, (long long) took);
}

//  Send an order on a connection of its own and return the socket, the
//  answer unread.
static int
s_send_raw_order (int port, const char *key)
{
    //  Raw requests bring their own token: the kit adds one only to its
    //  own requests
    static char *token;
    if (!token)
        token = tk_mint (tk_kit_secret_file (), "--staff", "manager");
    char *body = tk_order_body ("T1", 1, false, 0);
    char request[2048];
    int len = snprintf (request, sizeof request,
                        "POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\n"
                        "Authorization: Bearer %s\r\n"
                        "Content-Type: application/json\r\n"
                        "Idempotency-Key: %s\r\nContent-Length: %zu\r\n\r\n%s",
                        token, key, strlen (body), body);
    free (body);
    int fd = tk_tcp_connect (NULL, port);
    CHECK (fd >= 0 && send (fd, request, (size_t) len, MSG_NOSIGNAL) == len,
           "order %s sent", key);
    return fd;
}

static void
s_gave_up_leave_nothing (pid_t writer)
{
    int port = tk_port ();
    pid_t gateway = s_gateway ("gw-gone", port, "20000");
    kill (writer, SIGSTOP);
    int fds[GAVE_UP];
    char key[32];
    for (int i = 0; i < GAVE_UP; i++) {
        snprintf (key, sizeof key, "gone-%02d", i);
        fds[i] = s_send_raw_order (port, key);
    }
    usleep (300 * 1000);   //  all waiting for the writer
    //  The pads give up, with a reset: libmicrohttpd then ends each
    //  request without asking for its answer every time (a plain close
    //  lets it read the end first only some of the time)
    struct linger reset = { .l_onoff = 1, .l_linger = 0 };
    for (int i = 0; i < GAVE_UP; i++) {
        setsockopt (fds[i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close (fds[i]);
    }
    kill (writer, SIGCONT);
    usleep (1000 * 1000);   //  the acks come, for clients long gone
    int64_t start = tk_now_ms ();
    int status = tk_kill (gateway, SIGTERM);
    int64_t took = tk_now_ms () - start;
    CHECK (status == 0 && took < FAST_MS,
           "a gateway whose clients gave up: exit %d after %lld ms, want 0 "
           "at once",
           status, (long long) took);
    char path[700];
    snprintf (path, sizeof path, "%s/gw-gone.log", tk_dir ());
    char *log = NULL;
    size_t size = 0;
    FILE *file = fopen (path, "r");
    CHECK (file && getdelim (&log, &size, '\0', file) >= 0, "read %s", path);
    CHECK (!strstr (log, "still unanswered"),
           "the gateway waited for answers nobody wants:\n%s", log);
    free (log);
    fclose (file);
    printf ("test_gateway: %d clients gave up on their orders; the gateway "
            "then stopped in %lld ms\n",
            GAVE_UP, (long long) took);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "gateway");
    char data[600], menu[600];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    pid_t writer = tk_spawn ("writer", "writer", "--data", data, "--menu", menu,
                             "--intake", s_intake, "--events", s_events,
                             "--sync", s_sync, NULL);
    s_waiting_hold_no_thread (writer);
    s_stop_answers_all (writer);
    s_gave_up_leave_nothing (writer);
    return tk_done ();
}
