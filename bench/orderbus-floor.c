/*  orderbus-floor — the floor under orderbus's HTTP numbers: an HTTP server
    answering POST /api/v1/orders with a fixed 201 the size of a real one
    and doing nothing else.

    --server civetweb (the default) is civetweb set up as the gateway sets
    it up: a thread per keep-alive connection, TCP_NODELAY.  --server mhd
    is GNU libmicrohttpd in epoll mode, a few threads each serving many
    connections: what an event-driven gateway would pay instead.

    With --handoff each request is handed to a second thread and answered
    only when that thread says so, as a gateway answers only when the
    writer's ack arrives: civetweb's connection thread sleeps on a
    semaphore meanwhile; libmicrohttpd suspends the connection and serves
    the others.  bench/run.sh measures each with the same load as the
    gateway, so the report shows what the HTTP server and the waiting
    cost on this machine, apart from orderbus's own work.  */

#include <arpa/inet.h>
#include <civetweb.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_usage =
    "usage: orderbus-floor --port N [--server civetweb|mhd] [--handoff]\n"
    "                      [--threads N]\n"
    "\n"
    "An HTTP server that answers POST /api/v1/orders with a fixed 201 (the\n"
    "size of orderbus's) and does no other work: the floor under the\n"
    "gateway's numbers in bench/RESULTS.md.  Runs until killed.\n"
    "\n"
    "  --port N      TCP port on 127.0.0.1 (required)\n"
    "  --server S    civetweb: a thread per connection, as the gateway runs\n"
    "                (default); mhd: libmicrohttpd, epoll, a few threads\n"
    "  --handoff     answer each request only when a second thread says so,\n"
    "                as a gateway waits for the writer's ack\n"
    "  --threads N   civetweb: worker threads, one per connection (64);\n"
    "                mhd: event threads (1)\n"
    "  -h, --help    show this help and exit\n";

//  The 201 of a two-line order, as a gateway sends it
static const char s_body[] =
    "{\"id\":1,\"seq\":1,\"version\":1,\"status\":\"placed\",\"table\":\"T1\","
    "\"note\":\"\",\"idempotency_key\":\"k1\",\"origin\":\"gw1\","
    "\"created_ms\":1795294930889,\"updated_ms\":1795294930889,"
    "\"status_times\":{\"placed\":1795294930889},\"subtotal_cents\":4250,"
    "\"tax_cents\":0,\"total_cents\":4250,\"items\":[{\"line_id\":1,"
    "\"item_id\":\"burger\",\"name\":\"Burger\",\"station\":\"grill\","
    "\"quantity\":2,\"unit_cents\":1650,\"line_cents\":3300,\"note\":\"\","
    "\"modifiers\":[]},{\"line_id\":2,\"item_id\":\"soup\",\"name\":"
    "\"French Onion Soup\",\"station\":\"kitchen\",\"quantity\":1,"
    "\"unit_cents\":950,\"line_cents\":950,\"note\":\"\",\"modifiers\":[]}]}";

//  ---------------------------------------------------------------------
//  The hand-off: requests queued for the answering thread, which takes
//  them all at once and answers each, as the gateway's ack listener does
//  with a batch of acks

typedef void (s_answer_fn) (void *request);

#define S_QUEUE_MAX 4096   //  more than the bench ever has in flight

static struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    void *items[S_QUEUE_MAX];
    size_t count;
    s_answer_fn *answer;
} s_queue = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { NULL }, 0, NULL
};

static void
s_queue_push (void *request)
{
    pthread_mutex_lock (&s_queue.lock);
    if (s_queue.count == S_QUEUE_MAX) {
        fprintf (stderr, "orderbus-floor: more than %d requests waiting\n",
                 S_QUEUE_MAX);
        abort ();
    }
    s_queue.items[s_queue.count++] = request;
    pthread_cond_signal (&s_queue.ready);
    pthread_mutex_unlock (&s_queue.lock);
}

static void *
s_answerer (void *arg)
{
    (void) arg;
    void *taken[S_QUEUE_MAX];
    for (;;) {
        pthread_mutex_lock (&s_queue.lock);
        while (s_queue.count == 0)
            pthread_cond_wait (&s_queue.ready, &s_queue.lock);
        size_t count = s_queue.count;
        memcpy (taken, s_queue.items, count * sizeof taken[0]);
        s_queue.count = 0;
        pthread_mutex_unlock (&s_queue.lock);
        for (size_t i = 0; i < count; i++)
            s_queue.answer (taken[i]);
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  civetweb: the connection's thread sleeps until it is answered

static char s_civetweb_response[2048];
static size_t s_civetweb_response_len;

static void
s_civetweb_answer (void *request)
{
    sem_post ((sem_t *) request);
}

static int
s_civetweb_order (struct mg_connection *conn, void *handoff)
{
    char body[8192];
    while (mg_read (conn, body, sizeof body) > 0)
        ;
    if (handoff) {
        sem_t answered;
        sem_init (&answered, 0, 0);
        s_queue_push (&answered);
        while (sem_wait (&answered) != 0)
            ;   //  EINTR
        sem_destroy (&answered);
    }
    mg_write (conn, s_civetweb_response, s_civetweb_response_len);
    return 201;
}

static int
s_civetweb_run (long port, long threads, bool handoff)
{
    s_civetweb_response_len =
        (size_t) snprintf (s_civetweb_response, sizeof s_civetweb_response,
                           "HTTP/1.1 201 Created\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: %zu\r\n"
                           "Cache-Control: no-store\r\n"
                           "Location: /api/v1/orders/1\r\n\r\n%s",
                           strlen (s_body), s_body);
    char ports[32], workers[16];
    snprintf (ports, sizeof ports, "127.0.0.1:%ld", port);
    snprintf (workers, sizeof workers, "%ld", threads);
    const char *options[] = { "listening_ports",
                              ports,
                              "num_threads",
                              workers,
                              "enable_keep_alive",
                              "yes",
                              "keep_alive_timeout_ms",
                              "30000",
                              "request_timeout_ms",
                              "10000",
                              "tcp_nodelay",
                              "1",
                              "listen_backlog",
                              "4096",
                              NULL };
    mg_init_library (0);
    struct mg_context *ctx = mg_start (NULL, NULL, options);
    if (!ctx) {
        fprintf (stderr, "orderbus-floor: civetweb cannot listen on %s\n",
                 ports);
        return 1;
    }
    mg_set_request_handler (ctx, "/api/v1/orders", s_civetweb_order,
                            handoff ? &s_queue : NULL);
    return 0;
}

//  ---------------------------------------------------------------------
//  libmicrohttpd: the connection is suspended until it is answered; the
//  request's state is one of these addresses in its *con_cls

static struct MHD_Response *s_mhd_response;
static bool s_mhd_handoff;
static char s_started, s_waiting;

static void
s_mhd_answer (void *request)
{
    MHD_resume_connection ((struct MHD_Connection *) request);
}

static enum MHD_Result
s_mhd_order (void *cls, struct MHD_Connection *conn, const char *url,
             const char *method, const char *version, const char *data,
             size_t *data_size, void **state)
{
    (void) cls, (void) version, (void) data;
    if (strcmp (url, "/api/v1/orders") || strcmp (method, "POST"))
        return MHD_NO;   //  closes the connection: only orders are served
    if (!*state) {
        *state = &s_started;   //  headers read; the body comes next
        return MHD_YES;
    }
    if (*data_size) {
        *data_size = 0;   //  body read and ignored
        return MHD_YES;
    }
    if (*state == &s_started && s_mhd_handoff) {
        *state = &s_waiting;
        MHD_suspend_connection (conn);
        s_queue_push (conn);
        return MHD_YES;
    }
    return MHD_queue_response (conn, 201, s_mhd_response);
}

static int
s_mhd_run (long port, long threads, bool handoff)
{
    s_mhd_handoff = handoff;
    s_mhd_response = MHD_create_response_from_buffer (
        strlen (s_body), (void *) s_body, MHD_RESPMEM_PERSISTENT);
    if (!s_mhd_response
        || MHD_add_response_header (s_mhd_response, "Content-Type",
                                    "application/json")
               != MHD_YES
        || MHD_add_response_header (s_mhd_response, "Cache-Control", "no-store")
               != MHD_YES
        || MHD_add_response_header (s_mhd_response, "Location",
                                    "/api/v1/orders/1")
               != MHD_YES) {
        fprintf (stderr, "orderbus-floor: cannot build the response\n");
        return 1;
    }
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *daemon =
        MHD_start_daemon (flags, (uint16_t) port, NULL, NULL, s_mhd_order, NULL,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                          MHD_OPTION_THREAD_POOL_SIZE, (unsigned) threads,
                          MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
                          MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!daemon) {
        fprintf (stderr,
                 "orderbus-floor: libmicrohttpd cannot listen on "
                 "127.0.0.1:%ld\n",
                 port);
        return 1;
    }
    return 0;
}

//  ---------------------------------------------------------------------

//  A whole decimal in [min, max], or -1
static long
s_number (const char *text, long min, long max)
{
    char *end;
    long value = strtol (text, &end, 10);
    return *text && !*end && value >= min && value <= max ? value : -1;
}

int
main (int argc, char *argv[])
{
    long port = -1, threads = -1;
    bool handoff = false, mhd = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool is_port = !strcmp (arg, "--port");
        if (!strcmp (arg, "-h") || !strcmp (arg, "--help")) {
            fputs (s_usage, stdout);
            return 0;
        } else if (!strcmp (arg, "--handoff"))
            handoff = true;
        else if (is_port || !strcmp (arg, "--threads")
                 || !strcmp (arg, "--server")) {
            if (i + 1 == argc) {
                fprintf (stderr, "orderbus-floor: %s needs a value\n", arg);
                return 2;
            }
            const char *value = argv[++i];
            if (!strcmp (arg, "--server")) {
                mhd = !strcmp (value, "mhd");
                if (!mhd && strcmp (value, "civetweb")) {
                    fprintf (stderr,
                             "orderbus-floor: --server: '%s' is "
                             "neither civetweb nor mhd\n",
                             value);
                    return 2;
                }
                continue;
            }
            long number = s_number (value, 1, is_port ? 65535 : 1024);
            if (number < 0) {
                fprintf (stderr,
                         "orderbus-floor: %s: '%s' is not a number "
                         "from 1 to %d\n",
                         arg, value, is_port ? 65535 : 1024);
                return 2;
            }
            *(is_port ? &port : &threads) = number;
        } else {
            fprintf (stderr, "orderbus-floor: unknown option '%s'\n%s", arg,
                     s_usage);
            return 2;
        }
    }
    if (port < 0) {
        fprintf (stderr, "orderbus-floor: --port is required\n%s", s_usage);
        return 2;
    }
    if (threads < 0)
        threads = mhd ? 1 : 64;
    signal (SIGPIPE, SIG_IGN);
    s_queue.answer = mhd ? s_mhd_answer : s_civetweb_answer;
    pthread_t answerer;
    if (handoff && pthread_create (&answerer, NULL, s_answerer, NULL) != 0) {
        fprintf (stderr, "orderbus-floor: cannot start a thread\n");
        return 1;
    }
    if ((mhd ? s_mhd_run : s_civetweb_run) (port, threads, handoff) != 0)
        return 1;
    fprintf (stderr, "orderbus-floor: %s on 127.0.0.1:%ld, %ld thread(s)%s\n",
             mhd ? "libmicrohttpd" : "civetweb", port, threads,
             handoff ? ", handoff" : "");
    pause ();
    return 0;
}
