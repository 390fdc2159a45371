/*  bench_pub.c — the load side: requests at a fixed rate (open loop) or
    with a fixed number in flight (closed loop), over one of the systems'
    write paths, and the e2e / fanout runs that add subscribers.

    Write paths (opts->pub):
      http      POST over keep-alive connections, one request in flight
                per connection; success is the expected status (201)
      intake    orderbus writer: bus_cmd_t frames on PUSH, commit acks on
                SUB "A/<origin>/", matched by idempotency key (the tag)
      xadd      Redis XADD, pipelined; the reply comes after appendfsync
      redis     Redis PUBLISH (fan-out only, nothing stored)
      nats      core NATS PUB (fan-out only, nothing stored, no ack)
      socketio  Socket.IO emit of "add-item" (seed 004; no ack)

    Accounting: a request belongs to the measured window when its tag's
    time (intended send time in open loop, actual send in closed loop)
    falls inside it; its latency and outcome are recorded whenever the
    answer comes, up to the drain deadline.  Throughput is what completed
    inside the window divided by its length.  */

#define _GNU_SOURCE
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_topic.h"
#include "bench_net.h"
#include "bench_sub.h"

#define S_OUT_MAX (1u << 20)   //  queued bytes before a connection is "busy"
#define S_NS      1000000000LL

typedef enum {
    P_HTTP = 1,
    P_INTAKE,
    P_XADD,
    P_REDIS,
    P_NATS,
    P_SOCKETIO
} s_kind_t;

typedef enum { C_CONNECTING = 1, C_OPENING, C_READY, C_DEAD } s_cstate_t;

typedef struct {
    int64_t t;      //  tag time
    int64_t sent;   //  actual send
    uint64_t n;
} s_req_t;

typedef struct {
    bench_conn_t conn;
    s_cstate_t state;
    bool upgraded;
    bench_url_t url;
    s_req_t *fifo;   //  requests awaiting in-order replies
    uint32_t fifo_cap, fifo_head, fifo_count;
    bench_resp_reader_t *reader;
} s_pconn_t;

typedef struct {
    bench_opts_t *opts;
    bench_result_t *res;
    s_kind_t kind;
    int epfd;
    s_pconn_t *conns;
    int nconns;
    int rr;                //  round robin cursor
    zsock_t *push, *sub;   //  intake
    bus_curve_t *curve;    //  intake over CURVE (--cert), else NULL
    void *tls;             //  HTTP over TLS (--tls, --ca), else NULL
    bus_cmd_t *cmd;
    bus_ack_t *ack;
    int64_t t0, win_start, win_end;
    uint64_t next_n;   //  next request number
    uint64_t outstanding, outstanding_win;
    uint64_t *table_ok;       //  window events stored per table
    uint64_t completed_win;   //  successes that arrived in the window
    uint64_t reconnects;
    uint64_t rejected;                        //  answered, but not with success
    uint64_t sends, answers, undecodable;     //  over the whole run
    char first_error[256];                    //  what the first rejection said
    uint64_t bursts, burst_acks, burst_max;   //  intake acks per drain
    char *scratch;                            //  request / payload buffer
    size_t scratch_cap;
} s_pub_t;

//  ---------------------------------------------------------------------
//  Accounting

static bool
s_in_window (const s_pub_t *self, int64_t t)
{
    return t >= self->win_start && t < self->win_end;
}

static int
s_table (const s_pub_t *self, uint64_t n)
{
    int tables = self->opts->tables > 0 ? self->opts->tables : 100;
    return (int) (n % (uint64_t) tables);
}

static void
s_on_sent (s_pub_t *self, uint64_t n, int64_t t)
{
    (void) n;
    self->sends++;
    self->outstanding++;
    if (s_in_window (self, t)) {
        self->res->sent++;
        self->outstanding_win++;
    }
}

//  A request finished: ok or not; latency recorded when timed.
static void
s_on_done (s_pub_t *self, uint64_t n, int64_t t, bool ok, bool timed)
{
    int64_t now = bench_now ();
    if (self->outstanding > 0)
        self->outstanding--;
    if (s_in_window (self, t)) {
        if (self->outstanding_win > 0)
            self->outstanding_win--;
        if (ok) {
            self->res->ok++;
            if (timed)
                bench_hist_record (self->res->lat, now - t);
            if (self->opts->tables > 0)
                self->table_ok[s_table (self, n)]++;
        } else
            self->res->errors++;
    }
    if (ok && s_in_window (self, now))
        self->completed_win++;
}

//  ---------------------------------------------------------------------
//  Request contents

static int
s_scratch (s_pub_t *self, size_t need)
{
    if (need <= self->scratch_cap)
        return 0;
    char *buf = realloc (self->scratch, need);
    if (!buf)
        return -1;
    self->scratch = buf;
    self->scratch_cap = need;
    return 0;
}

static int
s_http_request (s_pub_t *self, s_pconn_t *pc, const bench_vars_t *vars)
{
    bench_opts_t *opts = self->opts;
    char path[512], body[8192], headers[2048] = "";
    int blen = bench_expand (body, sizeof body, opts->body, vars);
    if (bench_expand (path, sizeof path, opts->path, vars) < 0 || blen < 0)
        return -1;
    size_t hlen = 0;
    if (vars->token) {   //  the table's pad places its order
        int n = snprintf (headers, sizeof headers,
                          "Authorization: Bearer %s\r\n", vars->token);
        if (n < 0 || (size_t) n >= sizeof headers)
            return -1;
        hlen = (size_t) n;
    }
    for (int i = 0; i < opts->header_count; i++) {
        char line[512];
        int n = bench_expand (line, sizeof line, opts->headers[i], vars);
        if (n < 0 || hlen + (size_t) n + 3 > sizeof headers)
            return -1;
        memcpy (headers + hlen, line, (size_t) n);
        memcpy (headers + hlen + (size_t) n, "\r\n", 3);
        hlen += (size_t) n + 2;
    }
    if (s_scratch (self, sizeof body + sizeof headers + 1024) != 0)
        return -1;
    int len = snprintf (self->scratch, self->scratch_cap,
                        "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %d\r\n%s\r\n%s",
                        path, pc->url.host, pc->url.port, blen, headers, body);
    return bench_conn_queue (&pc->conn, self->scratch, (size_t) len);
}

static int
s_intake_send (s_pub_t *self, const char *tag, const char *table)
{
    bus_cmd_t *cmd = self->cmd;
    bus_strlcpy (cmd->key, tag, sizeof cmd->key);
    bus_strlcpy (cmd->table, table, sizeof cmd->table);
    zframe_t *frame = bus_cmd_encode (cmd);
    if (!frame)
        return -1;
    if (zframe_send (&frame, self->push, ZFRAME_DONTWAIT) != 0) {
        zframe_destroy (&frame);
        return 1;   //  the intake queue is full: try again later
    }
    return 0;
}

//  Queue one peer message on pc.  0 or -1.
static int
s_peer_request (s_pub_t *self, s_pconn_t *pc, const char *tag,
                const char *table)
{
    char payload[16384], subject[160];
    int len = bench_peer_payload (payload, sizeof payload, self->opts->payload,
                                  tag, table);
    if (len < 0 || s_scratch (self, sizeof payload + 512) != 0)
        return -1;
    bench_vars_t vars = { .table = table };
    if (self->kind == P_SOCKETIO) {
        int n = snprintf (self->scratch, self->scratch_cap,
                          "42[\"add-item\",%s]", payload);
        return bench_ws_send (&pc->conn, 1, self->scratch, (size_t) n);
    }
    const char *room = self->opts->pad_room   ? self->opts->pad_room
                       : self->kind == P_NATS ? "orders.{table}"
                                              : "orders:{table}";
    if (bench_expand (subject, sizeof subject, room, &vars) < 0)
        return -1;
    if (self->kind == P_NATS) {
        int n = snprintf (self->scratch, self->scratch_cap, "PUB %s %d\r\n",
                          subject, len);
        return bench_conn_queue (&pc->conn, self->scratch, (size_t) n) == 0
                       && bench_conn_queue (&pc->conn, payload, (size_t) len)
                              == 0
                       && bench_conn_queue (&pc->conn, "\r\n", 2) == 0
                   ? 0
                   : -1;
    }
    if (self->kind == P_REDIS) {
        const char *argv[] = { "PUBLISH", subject, payload };
        size_t lens[] = { 7, strlen (subject), (size_t) len };
        return bench_resp_command (&pc->conn, 3, argv, lens);
    }
    const char *stream = self->opts->stream ? self->opts->stream : "orders";
    const char *argv[] = { "XADD",  stream, "*",     "key",  tag,
                           "table", table,  "order", payload };
    size_t lens[] = { 4, strlen (stream), 1, 3,           strlen (tag),
                      5, strlen (table),  5, (size_t) len };
    return bench_resp_command (&pc->conn, 9, argv, lens);
}

//  ---------------------------------------------------------------------
//  Connections

static bool
s_acked (const s_pub_t *self)
{
    //  Kinds whose every request gets an answer in order on its connection
    return self->kind == P_HTTP || self->kind == P_XADD
           || self->kind == P_REDIS;
}

static int
s_fifo_push (s_pconn_t *pc, const s_req_t *req)
{
    if (pc->fifo_count == pc->fifo_cap) {
        uint32_t cap = pc->fifo_cap ? pc->fifo_cap * 2 : 64;
        s_req_t *fifo = malloc (cap * sizeof *fifo);
        if (!fifo)
            return -1;
        for (uint32_t i = 0; i < pc->fifo_count; i++)
            fifo[i] = pc->fifo[(pc->fifo_head + i) % pc->fifo_cap];
        free (pc->fifo);
        pc->fifo = fifo;
        pc->fifo_cap = cap;
        pc->fifo_head = 0;
    }
    pc->fifo[(pc->fifo_head + pc->fifo_count) % pc->fifo_cap] = *req;
    pc->fifo_count++;
    return 0;
}

static s_req_t
s_fifo_pop (s_pconn_t *pc)
{
    s_req_t req = pc->fifo[pc->fifo_head];
    pc->fifo_head = (pc->fifo_head + 1) % pc->fifo_cap;
    pc->fifo_count--;
    return req;
}

static void
s_pconn_start (s_pub_t *self, s_pconn_t *pc)
{
    pc->state = C_CONNECTING;
    pc->upgraded = false;
    bool ok = bench_conn_open (&pc->conn, pc->url.host, pc->url.port) == 0;
    if (ok && self->tls)
        ok = bench_conn_tls (&pc->conn, self->tls, pc->url.host) == 0;
    if (ok && self->kind == P_SOCKETIO)
        ok = bench_ws_handshake (&pc->conn, &pc->url) == 0;
    if (ok && (self->kind == P_XADD || self->kind == P_REDIS))
        ok = (pc->reader = bench_resp_reader_new ()) != NULL;
    if (ok)
        ok = bench_epoll_add (self->epfd, &pc->conn, pc) == 0;
    if (!ok) {
        bench_conn_close (&pc->conn);
        pc->state = C_DEAD;
    }
}

//  The connection broke: everything it was waiting for is an error; it
//  is opened again so the load goes on.
static void
s_pconn_lost (s_pub_t *self, s_pconn_t *pc)
{
    while (pc->fifo_count > 0) {
        s_req_t req = s_fifo_pop (pc);
        s_on_done (self, req.n, req.t, false, false);
    }
    bench_conn_close (&pc->conn);
    bench_resp_reader_destroy (&pc->reader);
    pc->state = C_DEAD;
    self->reconnects++;
    s_pconn_start (self, pc);
}

static void
s_pconn_ready_check (s_pub_t *self, s_pconn_t *pc)
{
    //  HTTP and Redis are ready once TCP is; the others wait for a greeting
    if (pc->state == C_CONNECTING
        && (self->kind == P_HTTP || self->kind == P_XADD
            || self->kind == P_REDIS))
        pc->state = C_READY;
}

static int
s_http_input (s_pub_t *self, s_pconn_t *pc)
{
    int status, rc;
    size_t used;
    bool close = false;
    while ((rc = bench_http_response (bench_conn_data (&pc->conn),
                                      bench_conn_size (&pc->conn), &status,
                                      &used, &close))
           == 1) {
        if (status != self->opts->expect && self->rejected++ == 0)
            snprintf (self->first_error, sizeof self->first_error, "%.*s",
                      (int) (used < 250 ? used : 250),
                      bench_conn_data (&pc->conn));
        bench_conn_consume (&pc->conn, used);
        if (pc->fifo_count == 0)
            return -1;   //  an answer nobody asked for
        s_req_t req = s_fifo_pop (pc);
        s_on_done (self, req.n, req.t, status == self->opts->expect, true);
        if (close)
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

static int
s_redis_input (s_pub_t *self, s_pconn_t *pc)
{
    if (bench_resp_feed (pc->reader, bench_conn_data (&pc->conn),
                         bench_conn_size (&pc->conn))
        != 0)
        return -1;
    bench_conn_consume (&pc->conn, bench_conn_size (&pc->conn));
    bench_resp_reply_t reply;
    int rc;
    while ((rc = bench_resp_next (pc->reader, &reply)) == 1) {
        if (pc->fifo_count == 0)
            return -1;
        s_req_t req = s_fifo_pop (pc);
        if (reply.error && self->rejected++ == 0)
            snprintf (self->first_error, sizeof self->first_error,
                      "redis error");
        s_on_done (self, req.n, req.t, !reply.error, true);
    }
    return rc < 0 ? -1 : 0;
}

static int
s_socketio_input (s_pub_t *self, s_pconn_t *pc)
{
    bench_conn_t *conn = &pc->conn;
    size_t used;
    if (!pc->upgraded) {
        int rc = bench_ws_handshake_done (bench_conn_data (conn),
                                          bench_conn_size (conn), &used);
        if (rc <= 0)
            return rc;
        bench_conn_consume (conn, used);
        pc->upgraded = true;
    }
    bench_ws_frame_t f;
    int rc;
    while ((rc = bench_ws_frame (bench_conn_data (conn), bench_conn_size (conn),
                                 1u << 24, &f, &used))
           == 1) {
        if (f.opcode == 8)
            return -1;
        if (f.opcode == 1 && f.len >= 1 && f.payload[0] == '0')
            bench_ws_send (conn, 1, "40", 2);
        else if (f.opcode == 1 && f.len >= 1 && f.payload[0] == '2')
            bench_ws_send (conn, 1, "3", 1);
        else if (f.opcode == 1 && f.len >= 2 && f.payload[0] == '4'
                 && f.payload[1] == '0')
            pc->state = C_READY;
        else if (f.opcode == 9)
            bench_ws_send (conn, 10, f.payload, f.len);
        bench_conn_consume (conn, used);
    }
    return rc < 0 || bench_conn_flush (conn) < 0 ? -1 : 0;
}

static int
s_nats_input (s_pub_t *self, s_pconn_t *pc)
{
    bench_conn_t *conn = &pc->conn;
    bench_nats_msg_t msg;
    size_t used;
    int rc;
    while ((rc = bench_nats_parse (bench_conn_data (conn),
                                   bench_conn_size (conn), &msg, &used))
           == 1) {
        if (msg.op == BENCH_NATS_INFO && pc->state == C_CONNECTING) {
            static const char hello[] =
                "CONNECT {\"verbose\":false,\"pedantic\":false,"
                "\"name\":\"orderbus-bench-pub\"}\r\nPING\r\n";
            bench_conn_queue (conn, hello, sizeof hello - 1);
            pc->state = C_OPENING;
        } else if (msg.op == BENCH_NATS_PONG && pc->state == C_OPENING)
            pc->state = C_READY;
        else if (msg.op == BENCH_NATS_PING)
            bench_conn_queue (conn, "PONG\r\n", 6);
        else if (msg.op == BENCH_NATS_ERR)
            return -1;
        bench_conn_consume (conn, used);
    }
    return rc < 0 || bench_conn_flush (conn) < 0 ? -1 : 0;
}

static void
s_pconn_input (s_pub_t *self, s_pconn_t *pc)
{
    ssize_t n = bench_conn_fill (&pc->conn);
    int rc = n < 0 ? -1 : 0;
    if (rc == 0 && n > 0)
        switch (self->kind) {
            case P_HTTP: rc = s_http_input (self, pc); break;
            case P_XADD:
            case P_REDIS: rc = s_redis_input (self, pc); break;
            case P_SOCKETIO: rc = s_socketio_input (self, pc); break;
            case P_NATS: rc = s_nats_input (self, pc); break;
            default: break;
        }
    if (rc != 0)
        s_pconn_lost (self, pc);
}

//  ---------------------------------------------------------------------
//  Intake acks

static void
s_intake_drain (s_pub_t *self)
{
    void *sock = zsock_resolve (self->sub);
    uint64_t acks = 0;
    while (true) {
        zmq_msg_t topic, body;
        zmq_msg_init (&topic);
        if (zmq_msg_recv (&topic, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&topic);
            break;
        }
        zmq_msg_init (&body);
        bool two = zmq_msg_more (&topic) && zmq_msg_recv (&body, sock, 0) >= 0;
        bool ack = two && zmq_msg_size (&topic) >= 2
                   && memcmp (zmq_msg_data (&topic), BUS_TOPIC_ACKS, 2) == 0;
        uint64_t n;
        int64_t t;
        if (ack)
            self->answers++;
        if (ack
            && bus_ack_decode (zmq_msg_data (&body), zmq_msg_size (&body),
                               self->ack)
                   != 0)
            self->undecodable++;
        if (ack
            && bus_ack_decode (zmq_msg_data (&body), zmq_msg_size (&body),
                               self->ack)
                   == 0
            && bench_tag_find (self->ack->key, strlen (self->ack->key),
                               self->opts->run, &n, &t)
                   == 0) {
            if (self->ack->status != 0 && self->rejected++ == 0)
                snprintf (self->first_error, sizeof self->first_error,
                          "ack status %d: %s", self->ack->status,
                          self->ack->error);
            s_on_done (self, n, t, self->ack->status == 0, true);
            acks++;
        }
        zmq_msg_close (&body);
        zmq_msg_close (&topic);
    }
    if (acks) {
        self->bursts++;
        self->burst_acks += acks;
        if (acks > self->burst_max)
            self->burst_max = acks;
    }
}

//  ---------------------------------------------------------------------
//  Sending

//  A connection that can take request n now, or NULL.
static s_pconn_t *
s_pick (s_pub_t *self)
{
    for (int i = 0; i < self->nconns; i++) {
        s_pconn_t *pc = &self->conns[(self->rr + i) % self->nconns];
        if (pc->state != C_READY)
            continue;
        if (self->kind == P_HTTP && pc->fifo_count > 0)
            continue;   //  HTTP/1.1 without pipelining: one at a time
        if (pc->conn.out_len - pc->conn.out_off > S_OUT_MAX)
            continue;
        self->rr = (self->rr + i + 1) % self->nconns;
        return pc;
    }
    return NULL;
}

//  Send request n with tag time t.  0 sent, 1 no capacity now, -1 error.
static int
s_send (s_pub_t *self, uint64_t n, int64_t t)
{
    char tag[BENCH_TAG_MAX], table[16];
    bench_tag_format (tag, sizeof tag, self->opts->run, n, t);
    bench_table_label (s_table (self, n), table, sizeof table);
    if (self->kind == P_INTAKE) {
        int rc = s_intake_send (self, tag, table);
        if (rc == 0)
            s_on_sent (self, n, t);
        return rc;
    }
    s_pconn_t *pc = s_pick (self);
    if (!pc)
        return 1;
    bench_vars_t vars = { .tag = tag,
                          .table = table,
                          .n = n,
                          .token = bench_auth_token (s_table (self, n)) };
    int rc = self->kind == P_HTTP ? s_http_request (self, pc, &vars)
                                  : s_peer_request (self, pc, tag, table);
    if (rc != 0)
        return -1;
    s_req_t req = { t, bench_now (), n };
    s_on_sent (self, n, t);
    if (s_acked (self))
        s_fifo_push (pc, &req);
    else
        s_on_done (self, n, t, true, false);   //  fire and forget
    int flushed = bench_conn_flush (&pc->conn);
    if (flushed < 0)
        s_pconn_lost (self, pc);
    else
        bench_epoll_want_out (self->epfd, &pc->conn, pc, flushed == 0);
    return 0;
}

static int64_t
s_intended (const s_pub_t *self, uint64_t n)
{
    return self->t0 + (int64_t) ((double) n * 1e9 / self->opts->rate);
}

//  Send whatever is due now.
static void
s_pace (s_pub_t *self, int64_t now)
{
    bench_opts_t *opts = self->opts;
    int guard = 100000;   //  bounded: the loop comes back for the rest
    if (opts->rate > 0) {
        while (guard-- > 0) {
            int64_t t = s_intended (self, self->next_n);
            if (t > now || t >= self->win_end)
                break;
            if (s_send (self, self->next_n, t) != 0)
                break;
            self->next_n++;
        }
    } else {
        while (guard-- > 0 && now < self->win_end
               && self->outstanding < (uint64_t) opts->inflight) {
            if (s_send (self, self->next_n, bench_now ()) != 0)
                break;
            self->next_n++;
        }
    }
    if (self->kind == P_INTAKE)
        s_intake_drain (self);
}

//  Wait for I/O at most until `until`, and handle it.
static void
s_poll (s_pub_t *self, int64_t until)
{
    int64_t wait = until - bench_now ();
    if (wait < 0)
        wait = 0;
    if (wait > 10 * 1000000LL)
        wait = 10 * 1000000LL;
    struct timespec ts = { 0, (long) wait };
    struct epoll_event events[256];
    int n = epoll_pwait2 (self->epfd, events, 256, &ts, NULL);
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == NULL) {   //  the intake SUB socket
            s_intake_drain (self);
            continue;
        }
        s_pconn_t *pc = events[i].data.ptr;
        if (pc->state == C_DEAD)
            continue;
        if (events[i].events & (EPOLLERR | EPOLLHUP)
            && !(events[i].events & EPOLLIN)) {
            s_pconn_lost (self, pc);
            continue;
        }
        if (events[i].events & EPOLLOUT) {
            s_pconn_ready_check (self, pc);
            int rc = bench_conn_flush (&pc->conn);
            if (rc < 0) {
                s_pconn_lost (self, pc);
                continue;
            }
            bench_epoll_want_out (self->epfd, &pc->conn, pc, rc == 0);
        }
        if (events[i].events & EPOLLIN)
            s_pconn_input (self, pc);
    }
    if (self->kind == P_INTAKE)
        s_intake_drain (self);   //  ZMQ_FD is edge-like: always look
}

//  Requests older than the timeout are errors; their connection is
//  replaced (an HTTP connection cannot skip an answer).
static void
s_expire (s_pub_t *self, int64_t now)
{
    int64_t limit = (int64_t) self->opts->timeout_ms * 1000000;
    for (int i = 0; i < self->nconns; i++) {
        s_pconn_t *pc = &self->conns[i];
        if (pc->fifo_count > 0 && now - pc->fifo[pc->fifo_head].sent > limit)
            s_pconn_lost (self, pc);
    }
}

//  ---------------------------------------------------------------------
//  Setup

static int
s_kind (const char *name, s_kind_t *kind)
{
    static const struct {
        const char *name;
        s_kind_t kind;
    } kinds[] = { { "http", P_HTTP }, { "intake", P_INTAKE },
                  { "xadd", P_XADD }, { "redis", P_REDIS },
                  { "nats", P_NATS }, { "socketio", P_SOCKETIO } };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp (name, kinds[i].name) == 0) {
            *kind = kinds[i].kind;
            return 0;
        }
    return -1;
}

//  With --cert, the bench's intake sockets are CURVE clients of the
//  writer, as a gateway named --origin (its certificate's name) is.
static int
s_intake_curve (s_pub_t *self)
{
    bench_opts_t *opts = self->opts;
    if (!opts->cert)
        return 0;
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
    bus_strlcpy (config.name, opts->origin, sizeof config.name);
    bus_strlcpy (config.cert_file, opts->cert, sizeof config.cert_file);
    bus_strlcpy (config.writer_key, opts->writer_key ? opts->writer_key : "",
                 sizeof config.writer_key);
    bus_strlcpy (config.intake, opts->intake_ep, sizeof config.intake);
    bus_strlcpy (config.events, opts->events_ep, sizeof config.events);
    char err[512];
    self->curve = bus_curve_new (&config, err, sizeof err);
    if (!self->curve) {
        fprintf (stderr, "orderbus-bench: %s\n", err);
        return -1;
    }
    bus_curve_client (self->curve, self->push);
    bus_curve_client (self->curve, self->sub);
    return 0;
}

static int
s_intake_open (s_pub_t *self)
{
    bench_opts_t *opts = self->opts;
    self->cmd = calloc (1, sizeof *self->cmd);
    self->ack = calloc (1, sizeof *self->ack);
    self->push = zsock_new (ZMQ_PUSH);
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->cmd || !self->ack || !self->push || !self->sub)
        return -1;
    bus_cmd_t *cmd = self->cmd;
    cmd->type = BUS_CMD_PLACE;
    bus_strlcpy (cmd->origin, opts->origin, sizeof cmd->origin);
    cmd->line_count = 2;
    bus_strlcpy (cmd->lines[0].item_id, "burger", sizeof cmd->lines[0].item_id);
    cmd->lines[0].qty = 2;
    bus_strlcpy (cmd->lines[1].item_id, "soup", sizeof cmd->lines[1].item_id);
    cmd->lines[1].qty = 1;
    char topic[BUS_TOPIC_MAX];
    bus_topic_ack (topic, sizeof topic, opts->origin);
    zsock_set_sndhwm (self->push, 100000);
    zsock_set_rcvhwm (self->sub, 10000000);   //  never drop an ack on our side
    zsock_set_linger (self->push, 0);
    zsock_set_subscribe (self->sub, topic);
    zsock_set_subscribe (self->sub, BUS_TOPIC_HEARTBEAT);
    if (s_intake_curve (self) != 0)
        return -1;
    if (zsock_connect (self->push, "%s", opts->intake_ep) != 0
        || zsock_connect (self->sub, "%s", opts->events_ep) != 0)
        return -1;
    //  A heartbeat proves the subscription is live: no ack can be missed
    zsock_set_rcvtimeo (self->sub, 5000);
    zmsg_t *msg = zmsg_recv (self->sub);
    zsock_set_rcvtimeo (self->sub, -1);
    if (!msg) {
        fprintf (stderr, "orderbus-bench: no heartbeat from the writer at %s\n",
                 opts->events_ep);
        return -1;
    }
    zmsg_destroy (&msg);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    return epoll_ctl (self->epfd, EPOLL_CTL_ADD, zsock_fd (self->sub), &ev);
}

static int
s_conns_open (s_pub_t *self)
{
    bench_opts_t *opts = self->opts;
    self->nconns = opts->clients > 0 ? opts->clients : 1;
    self->conns = calloc ((size_t) self->nconns, sizeof *self->conns);
    if (!self->conns)
        return -1;
    char err[256];
    if (opts->tls && self->kind == P_HTTP
        && !(self->tls = bench_tls_new (opts->ca, err, sizeof err))) {
        fprintf (stderr, "orderbus-bench: %s\n", err);
        return -1;
    }
    for (int i = 0; i < self->nconns; i++) {
        s_pconn_t *pc = &self->conns[i];
        pc->conn.fd = -1;
        const char *url = self->kind == P_HTTP ? opts->urls[i % opts->url_count]
                                               : opts->pub_url;
        int port = self->kind == P_NATS   ? 4222
                   : self->kind == P_HTTP ? 80
                                          : 6379;
        if (!url || bench_url_parse (url, port, &pc->url) != 0) {
            fprintf (stderr, "orderbus-bench: bad URL '%s'\n", url ? url : "");
            return -1;
        }
        s_pconn_start (self, pc);
    }
    //  Wait (bounded) until every connection has said hello
    int64_t deadline = bench_now () + 10 * S_NS;
    while (bench_now () < deadline) {
        int ready = 0;
        for (int i = 0; i < self->nconns; i++)
            ready += self->conns[i].state == C_READY;
        if (ready == self->nconns)
            return 0;
        s_poll (self, bench_now () + 10000000);
    }
    fprintf (stderr,
             "orderbus-bench: could not open the %d publisher "
             "connection(s)\n",
             self->nconns);
    return -1;
}

static void
s_pub_close (s_pub_t *self)
{
    for (int i = 0; self->conns && i < self->nconns; i++) {
        bench_conn_close (&self->conns[i].conn);
        free (self->conns[i].fifo);
        bench_resp_reader_destroy (&self->conns[i].reader);
    }
    free (self->conns);
    bench_tls_free (self->tls);
    zsock_destroy (&self->push);
    zsock_destroy (&self->sub);
    bus_curve_destroy (&self->curve);
    free (self->cmd);
    free (self->ack);
    free (self->table_ok);
    free (self->scratch);
    if (self->epfd >= 0)
        close (self->epfd);
}

//  ---------------------------------------------------------------------
//  The run

static void
s_run_load (s_pub_t *self, bench_sub_shared_t *shared)
{
    bench_opts_t *opts = self->opts;
    bench_watch_arm (&opts->watches);
    self->t0 = bench_now ();
    self->win_start = self->t0 + (int64_t) (opts->warmup * 1e9);
    self->win_end = self->win_start + (int64_t) (opts->duration * 1e9);
    if (shared) {
        atomic_store (&shared->win_start, self->win_start);
        atomic_store (&shared->win_end, self->win_end);
        atomic_store (&shared->phase, 1);
    }
    bool started = false;
    int64_t next_tick = self->t0;
    int64_t now;
    while ((now = bench_now ()) < self->win_end) {
        if (!started && now >= self->win_start) {
            bench_watch_start (&opts->watches);
            started = true;
        }
        s_pace (self, now);
        if (now >= next_tick) {
            s_expire (self, now);
            if (started)
                bench_watch_sample (&opts->watches);
            next_tick = now + 100000000;
        }
        int64_t until =
            opts->rate > 0 ? s_intended (self, self->next_n) : now + 10000000;
        s_poll (self, until < self->win_end ? until : self->win_end);
    }
    if (!started)
        bench_watch_start (&opts->watches);
    bench_watch_stop (&opts->watches);
    //  What was due in the window but never sent: the system fell behind
    if (opts->rate > 0) {
        uint64_t due = (uint64_t) ceil ((double) (self->win_end - self->t0)
                                        / 1e9 * opts->rate);
        uint64_t first = (uint64_t) ceil ((double) (self->win_start - self->t0)
                                          / 1e9 * opts->rate);
        uint64_t from = self->next_n > first ? self->next_n : first;
        self->res->backlog = due > from ? due - from : 0;
    }
    //  Drain: late answers still count, up to the timeout
    int64_t deadline = self->win_end + (int64_t) opts->timeout_ms * 1000000;
    while (self->outstanding_win > 0 && (now = bench_now ()) < deadline) {
        s_expire (self, now);
        s_poll (self, now + 10000000);
    }
    self->res->errors += self->outstanding_win;
    self->res->seconds = opts->duration;
}

static void
s_report_extra (s_pub_t *self)
{
    json_t *extra = self->res->extra_json;
    json_object_set_new (
        extra, "throughput_per_s",
        json_real ((double) self->completed_win / self->opts->duration));
    json_object_set_new (extra, "reconnects",
                         json_integer ((json_int_t) self->reconnects));
    json_object_set_new (extra, "rejected",
                         json_integer ((json_int_t) self->rejected));
    if (self->kind == P_INTAKE)   //  over the whole run, warmup included:
        json_object_set_new (     //  acks lost on the way show here
            extra, "intake_totals",
            json_pack ("{s:I, s:I, s:I, s:I}", "sent", (json_int_t) self->sends,
                       "acks", (json_int_t) self->answers, "undecodable",
                       (json_int_t) self->undecodable, "unanswered",
                       (json_int_t) self->outstanding));
    if (self->rejected) {
        json_object_set_new (extra, "first_error",
                             json_string (self->first_error));
        bench_log (self->opts, "%" PRIu64 " rejected; first: %s",
                   self->rejected, self->first_error);
    }
    if (self->kind == P_INTAKE && self->bursts)
        json_object_set_new (
            extra, "ack_bursts",
            json_pack ("{s:I, s:f, s:I}", "count", (json_int_t) self->bursts,
                       "mean",
                       (double) self->burst_acks / (double) self->bursts, "max",
                       (json_int_t) self->burst_max));
}

static int
s_pub_init (s_pub_t *self, bench_opts_t *opts, bench_result_t *result)
{
    memset (self, 0, sizeof *self);
    self->opts = opts;
    self->res = result;
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (s_kind (opts->pub, &self->kind) != 0) {
        fprintf (stderr, "orderbus-bench: unknown publisher '%s'\n", opts->pub);
        return -1;
    }
    if (opts->rate <= 0 && opts->inflight <= 0)
        opts->inflight =
            self->kind == P_HTTP ? (opts->clients > 0 ? opts->clients : 1) : 1;
    if (self->kind == P_HTTP && opts->rate <= 0
        && opts->inflight > opts->clients)
        opts->clients = opts->inflight;   //  one request per connection
    self->table_ok = calloc ((size_t) (opts->tables > 0 ? opts->tables : 1),
                             sizeof *self->table_ok);
    if (self->epfd < 0 || !self->table_ok)
        return -1;
    return self->kind == P_INTAKE ? s_intake_open (self) : s_conns_open (self);
}

static bench_sub_kind_t
s_sub_kind (const char *name)
{
    if (strcmp (name, "ws") == 0)
        return BENCH_SUB_WS;
    if (strcmp (name, "socketio") == 0)
        return BENCH_SUB_SOCKETIO;
    if (strcmp (name, "nats") == 0)
        return BENCH_SUB_NATS;
    if (strcmp (name, "redis") == 0)
        return BENCH_SUB_REDIS;
    return 0;
}

//  Start the subscriber threads and wait until they have connected.
static int
s_subs_start (bench_opts_t *opts, bench_sub_shared_t *shared,
              bench_sub_thread_t **threads, int nthreads)
{
    for (int i = 0; i < nthreads; i++)
        if (!(threads[i] = bench_sub_thread_start (shared, i, nthreads)))
            return -1;
    int64_t start = bench_now ();
    int64_t last = start;
    int shown = -1;
    while (atomic_load (&shared->threads_ready) < nthreads) {
        usleep (50000);
        int connected = atomic_load (&shared->connected);
        if (bench_now () - last > 2 * S_NS && connected != shown) {
            bench_log (opts, "%d of %d clients connected", connected,
                       shared->total);
            last = bench_now ();
            shown = connected;
        }
    }
    return 0;
}

int
bench_pubsub_run (bench_opts_t *opts, bench_result_t *result)
{
    s_pub_t pub;
    bench_sub_shared_t shared = { .opts = opts };
    bench_sub_thread_t *threads[64] = { NULL };
    int nthreads = opts->threads > 0 ? opts->threads : 1;
    if (nthreads > 64)
        nthreads = 64;
    shared.total = opts->kitchens + opts->tables * opts->pads;
    if (shared.total > 0 && !(shared.kind = s_sub_kind (opts->sub))) {
        fprintf (stderr, "orderbus-bench: unknown subscriber kind '%s'\n",
                 opts->sub);
        return -1;
    }
    if (nthreads > shared.total)
        nthreads = shared.total > 0 ? shared.total : 1;
    bench_watch_idle (&opts->watches);
    int rc = 0;
    if (shared.total > 0) {
        rc = s_subs_start (opts, &shared, threads, nthreads);
        bench_watch_connected (&opts->watches);
        bench_log (opts, "%d of %d clients connected",
                   atomic_load (&shared.connected), shared.total);
    }
    if (rc == 0)
        rc = s_pub_init (&pub, opts, result);
    else
        memset (&pub, 0, sizeof pub), pub.epfd = -1;
    if (rc == 0) {
        usleep ((useconds_t) (opts->settle * 1e6));
        s_run_load (&pub, shared.total > 0 ? &shared : NULL);
        if (shared.total > 0)
            usleep ((useconds_t) (opts->drain * 1e6));
        s_report_extra (&pub);
    }
    atomic_store (&shared.phase, 2);
    uint64_t all = result->ok;
    for (int i = 0; i < nthreads; i++)
        if (threads[i])
            bench_sub_thread_join (&threads[i], result, all, pub.table_ok);
    if (shared.total > 0)
        json_object_set_new (result->extra_json, "clients",
                             json_integer (shared.total));
    s_pub_close (&pub);
    return rc;
}
