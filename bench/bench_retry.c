/*  bench_retry.c — `orderbus-bench retry`: orders at a constant rate,
    each retried with its own Idempotency-Key until it is answered 201,
    as a pad does while its writer group fails over (run.sh's failover
    phase, bench/failover.sh).

      orderbus-bench retry --url URL --rate R --clients N --log FILE
                           [--secret-file F] [--tables T] [--duration S]
                           [--retry-for S] [--timeout MS]

    Order n is due at start + n/R; one of N client threads (each with its
    own keep-alive connection, a blocking one: a few hundred orders a
    second need no event loop) takes it when it is due, or as soon as it
    is free after a stall, and POSTs it with key <run>-<n> until a 201,
    pausing S_PAUSE_MS after each other answer (503 while no member
    leads), timeout or refused connection.  New orders stop after
    --duration or at SIGTERM/SIGINT; an order begun is retried until
    --retry-for seconds after its first send.

    --log FILE gets one line per order as it resolves, flushed at once
    (failover.sh reads it while the load runs):

      key due_us first_send_us ack_us attempts status seq created_ms replayed

    times in microseconds of the wall clock (CLOCK_REALTIME, the clock of
    `date +%s%N` and of the writer's created_ms), ack_us -1 when it never
    got its 201 (status: the last answer, 0 none), seq and created_ms
    from the 201's order, replayed 1 when the 201 said
    Idempotent-Replayed.  The result's latency is due to 201.  */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "bench_net.h"
#include "bench_sub.h"

#define S_PAUSE_MS    20   //  between attempts of one order
#define S_CLIENTS_MAX 256

typedef struct {
    bench_opts_t *opts;
    bench_url_t url;
    FILE *log;
    pthread_mutex_t lock;   //  log, hist, counts
    bench_hist_t *lat;
    int64_t start_us;             //  wall clock of order 0's due time
    int64_t stop_us;              //  no order is due at or after this
    atomic_uint_least64_t next;   //  the next order to take
    uint64_t orders, acked, replayed, attempts, refused, unresolved;
    uint64_t status_503, status_other, no_answer;
} s_retry_t;

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static int64_t
s_wall_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  A blocking connection to the gateway, -1 if it cannot be made now
static int
s_connect (const s_retry_t *self)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) self->url.port) };
    struct timeval tv = { .tv_sec = self->opts->timeout_ms / 1000,
                          .tv_usec = (self->opts->timeout_ms % 1000) * 1000 };
    int one = 1;
    if (inet_pton (AF_INET, self->url.host, &addr.sin_addr) != 1
        || setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
        || setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0
        || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

//  What a 201 said about its order
typedef struct {
    int64_t seq, created_ms;
    bool replayed;
} s_answer_t;

static void
s_parse_201 (const char *data, size_t len, s_answer_t *answer)
{
    const char *end = memmem (data, len, "\r\n\r\n", 4);
    *answer = (s_answer_t){ -1, -1, false };
    if (!end)
        return;
    answer->replayed =
        memmem (data, (size_t) (end - data), "Idempotent-Replayed: true", 25)
        != NULL;
    json_t *order =
        json_loadb (end + 4, len - (size_t) (end + 4 - data), 0, NULL);
    answer->seq = json_integer_value (json_object_get (order, "seq"));
    answer->created_ms =
        json_integer_value (json_object_get (order, "created_ms"));
    json_decref (order);
}

//  One POST of request[len] on *fd (connected first if -1): the status,
//  or 0 for no answer (the connection is then closed).
static int
s_post (const s_retry_t *self, int *fd, const char *request, size_t len,
        s_answer_t *answer)
{
    if (*fd < 0 && (*fd = s_connect (self)) < 0)
        return 0;
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send (*fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            goto lost;
        sent += (size_t) n;
    }
    char in[16384];
    size_t have = 0;
    while (true) {
        int status;
        size_t consumed;
        bool close_after;
        int rc =
            bench_http_response (in, have, &status, &consumed, &close_after);
        if (rc < 0)
            goto lost;
        if (rc == 1) {
            if (status == 201)
                s_parse_201 (in, consumed, answer);
            if (close_after || consumed != have) {   //  nothing is pipelined
                close (*fd);
                *fd = -1;
            }
            return status;
        }
        if (have == sizeof in)
            goto lost;
        ssize_t n = recv (*fd, in + have, sizeof in - have, 0);
        if (n <= 0)
            goto lost;   //  closed, or --timeout passed
        have += (size_t) n;
    }
lost:
    close (*fd);
    *fd = -1;
    return 0;
}

//  The request of order n, or -1 if it does not fit
static int
s_request (const s_retry_t *self, uint64_t n, char *key, size_t key_cap,
           char *out, size_t cap)
{
    bench_opts_t *opts = self->opts;
    int tables = opts->tables > 0 ? opts->tables : 100;
    char table[16], body[4096], auth[1200] = "";
    bench_table_label ((int) (n % (uint64_t) tables), table, sizeof table);
    int k = snprintf (key, key_cap, "fo%08" PRIx32 "-%" PRIu64, opts->run, n);
    bench_vars_t vars = { .tag = key,
                          .table = table,
                          .n = n,
                          .token = bench_auth_token (
                              (int) (n % (uint64_t) tables)) };
    int blen = bench_expand (body, sizeof body, opts->body, &vars);
    if (vars.token) {
        int a = snprintf (auth, sizeof auth, "Authorization: Bearer %s\r\n",
                          vars.token);
        if (a < 0 || (size_t) a >= sizeof auth)
            return -1;
    }
    if (k < 0 || (size_t) k >= key_cap || blen < 0)
        return -1;
    int len = snprintf (out, cap,
                        "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                        "Content-Type: application/json\r\n"
                        "Idempotency-Key: %s\r\n%s"
                        "Content-Length: %d\r\n\r\n%s",
                        opts->path, self->url.host, self->url.port, key, auth,
                        blen, body);
    return len < 0 || (size_t) len >= cap ? -1 : len;
}

//  Place order n: POST until 201, a refusal (4xx other than 409 and
//  429), or --retry-for after its first send; log it.
static void
s_place (s_retry_t *self, int *fd, uint64_t n, int64_t due_us)
{
    char key[64], request[8192];
    int len = s_request (self, n, key, sizeof key, request, sizeof request);
    if (len < 0) {
        fprintf (stderr,
                 "orderbus-bench retry: order %" PRIu64
                 " does not fit a request\n",
                 n);
        s_stop = 1;
        return;
    }
    int64_t first_us = s_wall_us (), ack_us = -1;
    int64_t give_up_us = first_us + (int64_t) (self->opts->retry_for * 1e6);
    int status = 0, attempts = 0;
    uint64_t busy = 0, other = 0, silent = 0;
    s_answer_t answer = { -1, -1, false };
    while (true) {
        attempts++;
        status = s_post (self, fd, request, (size_t) len, &answer);
        if (status == 201) {
            ack_us = s_wall_us ();
            break;
        }
        busy += status == 503;
        silent += status == 0;
        other += status != 0 && status != 503;
        bool again =
            status == 0 || status == 409 || status == 429 || status >= 500;
        if (!again || s_wall_us () >= give_up_us)
            break;
        usleep (S_PAUSE_MS * 1000);
    }
    pthread_mutex_lock (&self->lock);
    self->orders++;
    self->attempts += (uint64_t) attempts;
    self->status_503 += busy;
    self->status_other += other;
    self->no_answer += silent;
    if (ack_us >= 0) {
        self->acked++;
        self->replayed += answer.replayed;
        bench_hist_record (self->lat, (ack_us - due_us) * 1000);
    } else if (status >= 400 && status < 500)
        self->refused++;
    else
        self->unresolved++;
    fprintf (self->log,
             "%s %" PRId64 " %" PRId64 " %" PRId64 " %d %d %" PRId64 " %" PRId64
             " %d\n",
             key, due_us, first_us, ack_us, attempts, status, answer.seq,
             answer.created_ms, answer.replayed ? 1 : 0);
    fflush (self->log);
    pthread_mutex_unlock (&self->lock);
}

static void *
s_client (void *arg)
{
    s_retry_t *self = (s_retry_t *) arg;
    int fd = -1;
    double rate = self->opts->rate;
    while (!s_stop) {
        uint64_t n = atomic_fetch_add (&self->next, 1);
        int64_t due = self->start_us + (int64_t) ((double) n * 1e6 / rate);
        if (due >= self->stop_us)
            break;
        for (int64_t now; !s_stop && (now = s_wall_us ()) < due;)
            usleep ((useconds_t) (due - now < 100000 ? due - now : 100000));
        if (s_stop)
            break;
        s_place (self, &fd, n, due);
    }
    if (fd >= 0)
        close (fd);
    return NULL;
}

int
bench_retry_run (bench_opts_t *opts, bench_result_t *result)
{
    s_retry_t self = { .opts = opts };
    if (bench_url_parse (opts->urls[0], 80, &self.url) != 0) {
        fprintf (stderr, "orderbus-bench retry: bad --url '%s'\n",
                 opts->urls[0]);
        return -1;
    }
    if (!(self.log = fopen (opts->log_path, "w"))) {
        fprintf (stderr, "orderbus-bench retry: cannot write %s: %s\n",
                 opts->log_path, strerror (errno));
        return -1;
    }
    pthread_mutex_init (&self.lock, NULL);
    self.lat = bench_hist_new ();
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    int clients = opts->clients < S_CLIENTS_MAX ? opts->clients : S_CLIENTS_MAX;
    pthread_t threads[S_CLIENTS_MAX];
    self.start_us = s_wall_us () + 100000;
    self.stop_us = self.start_us + (int64_t) (opts->duration * 1e6);
    bench_log (opts, "retry: %.0f orders/s over %d clients to %s, log %s",
               opts->rate, clients, opts->urls[0], opts->log_path);
    int64_t t0 = bench_now ();
    for (int i = 0; i < clients; i++)
        pthread_create (&threads[i], NULL, s_client, &self);
    for (int i = 0; i < clients; i++)
        pthread_join (threads[i], NULL);
    result->seconds = (double) (bench_now () - t0) / 1e9;
    fclose (self.log);
    bench_hist_merge (result->lat, self.lat);
    bench_hist_destroy (&self.lat);
    result->sent = self.orders;
    result->ok = self.acked;
    result->errors = self.refused + self.unresolved;
    json_object_set_new (
        result->extra_json, "retry",
        json_pack (
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "attempts",
            (json_int_t) self.attempts, "replayed", (json_int_t) self.replayed,
            "refused", (json_int_t) self.refused, "unresolved",
            (json_int_t) self.unresolved, "answered_503",
            (json_int_t) self.status_503, "answered_other",
            (json_int_t) self.status_other, "no_answer",
            (json_int_t) self.no_answer, "retry_for_s", opts->retry_for));
    json_object_set_new (result->extra_json, "throughput_per_s",
                         json_real (result->seconds > 0
                                        ? (double) self.acked / result->seconds
                                        : 0));
    pthread_mutex_destroy (&self.lock);
    return 0;
}
