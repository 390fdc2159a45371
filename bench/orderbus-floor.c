/*  orderbus-floor — the floor under orderbus's HTTP numbers: civetweb, set
    up as the gateway sets it up (a thread per keep-alive connection,
    TCP_NODELAY), answering POST /api/v1/orders with a fixed 201 the size
    of a real one and doing nothing else.  With --handoff each request is
    handed to a second thread and the connection's thread sleeps on a
    semaphore until that thread posts it, as a gateway's thread sleeps
    until the writer's ack arrives.  bench/run.sh measures it with the same
    load as the gateway, so the report shows what the HTTP server and the
    thread switches cost on this machine, apart from orderbus's own work.  */

#include <civetweb.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_usage =
"usage: orderbus-floor --port N [--handoff] [--threads N]\n"
"\n"
"A civetweb server that answers POST /api/v1/orders with a fixed 201\n"
"(the size of orderbus's) and does no other work: the floor under the\n"
"gateway's numbers in bench/RESULTS.md.  Runs until killed.\n"
"\n"
"  --port N      TCP port on 127.0.0.1 (required)\n"
"  --handoff     hand each request to a second thread and sleep until it\n"
"                answers, as a gateway waits for the writer's ack\n"
"  --threads N   civetweb worker threads, one per connection (64)\n"
"  -h, --help    show this help and exit\n";

//  The 201 of a two-line order, as a gateway sends it
static const char s_response[] =
    "HTTP/1.1 201 Created\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 557\r\n"
    "Cache-Control: no-store\r\n"
    "Location: /api/v1/orders/1\r\n\r\n"
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

//  A request waiting for the answering thread, on a stack-allocated list
typedef struct waiter {
    sem_t answered;
    struct waiter *next;
} waiter_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    waiter_t *head;
} s_queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL};

//  The other side of --handoff: takes every waiting request at once and
//  wakes each, as the gateway's ack listener does with a batch of acks
static void *
s_answerer (void *arg)
{
    (void) arg;
    for (;;) {
        pthread_mutex_lock (&s_queue.lock);
        while (!s_queue.head)
            pthread_cond_wait (&s_queue.ready, &s_queue.lock);
        waiter_t *list = s_queue.head;
        s_queue.head = NULL;
        pthread_mutex_unlock (&s_queue.lock);
        while (list) {
            waiter_t *next = list->next;   //  list is gone once posted
            sem_post (&list->answered);
            list = next;
        }
    }
    return NULL;
}

static void
s_handoff (void)
{
    waiter_t waiter = {.next = NULL};
    sem_init (&waiter.answered, 0, 0);
    pthread_mutex_lock (&s_queue.lock);
    waiter.next = s_queue.head;
    s_queue.head = &waiter;
    pthread_cond_signal (&s_queue.ready);
    pthread_mutex_unlock (&s_queue.lock);
    while (sem_wait (&waiter.answered) != 0)
        ;   //  EINTR
    sem_destroy (&waiter.answered);
}

static int
s_order (struct mg_connection *conn, void *handoff)
{
    char body[8192];
    while (mg_read (conn, body, sizeof body) > 0)
        ;
    if (handoff)
        s_handoff ();
    mg_write (conn, s_response, sizeof s_response - 1);
    return 201;
}

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
    long port = -1, threads = 64;
    bool handoff = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool is_port = !strcmp (arg, "--port");
        if (!strcmp (arg, "-h") || !strcmp (arg, "--help")) {
            fputs (s_usage, stdout);
            return 0;
        }
        else if (!strcmp (arg, "--handoff"))
            handoff = true;
        else if (is_port || !strcmp (arg, "--threads")) {
            if (i + 1 == argc) {
                fprintf (stderr, "orderbus-floor: %s needs a value\n", arg);
                return 2;
            }
            const char *value = argv[++i];
            long number = s_number (value, 1, is_port ? 65535 : 1024);
            if (number < 0) {
                fprintf (stderr, "orderbus-floor: %s: '%s' is not a number "
                         "from 1 to %d\n", arg, value, is_port ? 65535 : 1024);
                return 2;
            }
            *(is_port ? &port : &threads) = number;
        }
        else {
            fprintf (stderr, "orderbus-floor: unknown option '%s'\n%s", arg,
                     s_usage);
            return 2;
        }
    }
    if (port < 0) {
        fprintf (stderr, "orderbus-floor: --port is required\n%s", s_usage);
        return 2;
    }
    char ports[32], workers[16];
    snprintf (ports, sizeof ports, "127.0.0.1:%ld", port);
    snprintf (workers, sizeof workers, "%ld", threads);
    const char *options[] = {
        "listening_ports", ports, "num_threads", workers,
        "enable_keep_alive", "yes", "keep_alive_timeout_ms", "30000",
        "request_timeout_ms", "10000", "tcp_nodelay", "1",
        "listen_backlog", "4096", NULL
    };
    signal (SIGPIPE, SIG_IGN);
    pthread_t answerer;
    if (handoff && pthread_create (&answerer, NULL, s_answerer, NULL) != 0) {
        fprintf (stderr, "orderbus-floor: cannot start a thread\n");
        return 1;
    }
    mg_init_library (0);
    struct mg_context *ctx = mg_start (NULL, NULL, options);
    if (!ctx) {
        fprintf (stderr, "orderbus-floor: cannot listen on %s\n", ports);
        return 1;
    }
    mg_set_request_handler (ctx, "/api/v1/orders", s_order,
                            handoff ? &answerer : NULL);
    fprintf (stderr, "orderbus-floor: listening on %s%s\n", ports,
             handoff ? " (handoff)" : "");
    pause ();
    return 0;
}
