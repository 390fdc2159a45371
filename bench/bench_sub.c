/*  bench_sub.c — subscriber threads: many clients, one epoll per thread.  */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench_net.h"
#include "bench_sub.h"

#define S_PENDING_MAX        128   //  handshakes in progress per thread
#define S_CONNECT_TIMEOUT_NS (10 * 1000000000LL)
#define S_MESSAGE_MAX        (256u * 1024 * 1024)

typedef enum {
    S_CONNECTING = 1,   //  TCP connect + protocol handshake in progress
    S_OPENING,          //  WebSocket up; Socket.IO / NATS / Redis greeting
    S_READY,            //  subscribed: deliveries count from here
    S_DEAD
} s_state_t;

typedef struct {
    bench_conn_t conn;
    s_state_t state;
    bool was_ready;
    bool upgraded;     //  ws, socketio: 101 received
    int table;         //  -1 for a kitchen screen
    int64_t started;   //  connect started
    uint64_t got;      //  relevant deliveries of window events
    char *frag;        //  WebSocket message being reassembled
    size_t frag_len, frag_cap;
    bench_resp_reader_t *reader;   //  redis only
} s_sub_t;

struct _bench_sub_thread_t {
    bench_sub_shared_t *shared;
    const bench_opts_t *opts;
    pthread_t thread;
    int index, count;
    int epfd;
    s_sub_t *subs;
    int nsubs;
    int pending;   //  subs connecting
    int started;   //  subs whose connect has begun
    bench_url_t url;
    bench_hist_t *hist;
    uint64_t in_window;   //  relevant deliveries arriving in the window
    uint64_t extra;       //  deliveries the client did not need
    uint64_t failed, disconnected, ready;
    uint64_t not_tried;   //  never attempted: the connect deadline passed
    int64_t connect_ns;   //  time this thread took to connect its subs
};

void
bench_table_label (int k, char *buf, size_t cap)
{
    snprintf (buf, cap, "T%d", k);
}

void
bench_sub_room (const bench_opts_t *opts, bench_sub_kind_t kind,
                const char *table, char *buf, size_t cap)
{
    const char *tmpl = table ? opts->pad_room : opts->kitchen_room;
    if (!tmpl)   //  defaults per protocol: kitchens see every table
        switch (kind) {
            case BENCH_SUB_NATS:
                tmpl = table ? "orders.{table}" : "orders.>";
                break;
            case BENCH_SUB_REDIS:
                tmpl = table ? "orders:{table}" : "orders:*";
                break;
            default: tmpl = table ? "{table}" : "kitchen";
        }
    bench_vars_t vars = { .table = table };
    if (bench_expand (buf, cap, tmpl, &vars) < 0)
        snprintf (buf, cap, "%s", "room");
}

//  ---------------------------------------------------------------------
//  Connecting

static void
s_sub_fail (bench_sub_thread_t *self, s_sub_t *sub)
{
    if (sub->state == S_CONNECTING || sub->state == S_OPENING) {
        self->pending--;
        self->failed++;
    } else if (sub->state == S_READY)
        self->disconnected++;
    sub->state = S_DEAD;
    bench_conn_close (&sub->conn);
    free (sub->frag);
    sub->frag = NULL;
    sub->frag_len = sub->frag_cap = 0;
    bench_resp_reader_destroy (&sub->reader);
}

static void
s_sub_ready (bench_sub_thread_t *self, s_sub_t *sub)
{
    sub->state = S_READY;
    sub->was_ready = true;
    self->pending--;
    self->ready++;
    atomic_fetch_add (&self->shared->connected, 1);
}

static void
s_room (bench_sub_thread_t *self, s_sub_t *sub, char *buf, size_t cap)
{
    char table[16];
    if (sub->table >= 0)
        bench_table_label (sub->table, table, sizeof table);
    bench_sub_room (self->opts, self->shared->kind,
                    sub->table >= 0 ? table : NULL, buf, cap);
}

//  Queue what the protocol sends first.  0 or -1.
static int
s_greet (bench_sub_thread_t *self, s_sub_t *sub)
{
    char room[128];
    s_room (self, sub, room, sizeof room);
    bench_sub_kind_t kind = self->shared->kind;
    if (kind == BENCH_SUB_WS || kind == BENCH_SUB_SOCKETIO) {
        bench_url_t url = self->url;
        bench_vars_t vars = { .room = room,
                              .token = bench_auth_token (sub->table) };
        char path[sizeof url.path];
        int len = bench_expand (path, sizeof path, self->url.path, &vars);
        if (len < 0)
            return -1;
        //  A token goes in the query string: browsers cannot set headers
        //  on a WebSocket, so that is where servers look for it
        if (vars.token && !strstr (self->url.path, "{token}")
            && snprintf (path + len, sizeof path - (size_t) len, "%stoken=%s",
                         strchr (path, '?') ? "&" : "?", vars.token)
                   >= (int) (sizeof path - (size_t) len))
            return -1;
        snprintf (url.path, sizeof url.path, "%s", path);
        return bench_ws_handshake (&sub->conn, &url);
    }
    if (kind == BENCH_SUB_REDIS) {
        bool pattern = strchr (room, '*') != NULL;
        const char *argv[] = { pattern ? "PSUBSCRIBE" : "SUBSCRIBE", room };
        size_t lens[] = { strlen (argv[0]), strlen (room) };
        sub->reader = bench_resp_reader_new ();
        return sub->reader ? bench_resp_command (&sub->conn, 2, argv, lens)
                           : -1;
    }
    return 0;   //  NATS: the server speaks first (INFO)
}

static void
s_sub_connect (bench_sub_thread_t *self, s_sub_t *sub)
{
    sub->started = bench_now ();
    sub->state = S_CONNECTING;
    self->pending++;
    self->started++;
    if (bench_conn_open (&sub->conn, self->url.host, self->url.port) != 0
        || s_greet (self, sub) != 0
        || bench_epoll_add (self->epfd, &sub->conn, sub) != 0)
        s_sub_fail (self, sub);
}

//  ---------------------------------------------------------------------
//  Deliveries

static void
s_deliver (bench_sub_thread_t *self, s_sub_t *sub, const char *data, size_t len)
{
    uint64_t n;
    int64_t t;
    if (sub->state != S_READY
        || bench_tag_find (data, len, self->opts->run, &n, &t) != 0)
        return;
    int tables = self->opts->tables;
    bool relevant =
        sub->table < 0
        || (tables > 0 && (int) (n % (uint64_t) tables) == sub->table);
    if (!relevant) {
        self->extra++;
        return;
    }
    int64_t now = bench_now ();
    int64_t win_start = atomic_load (&self->shared->win_start);
    int64_t win_end = atomic_load (&self->shared->win_end);
    if (t >= win_start && t < win_end) {
        bench_hist_record (self->hist, now - t);
        sub->got++;
    }
    if (now >= win_start && now < win_end)
        self->in_window++;
}

static int
s_send_text (bench_sub_thread_t *self, s_sub_t *sub, const char *text)
{
    if (bench_ws_send (&sub->conn, 1, text, strlen (text)) != 0)
        return -1;
    return bench_conn_flush (&sub->conn) < 0 ? -1 : 0;
}

//  One Engine.IO packet.  0, or -1 to drop the client.
static int
s_socketio_packet (bench_sub_thread_t *self, s_sub_t *sub, const char *data,
                   size_t len)
{
    if (len == 0)
        return 0;
    switch (data[0]) {
        case '0':   //  Engine.IO open: connect to the default namespace
            return s_send_text (self, sub, "40");
        case '2':   //  ping
            return s_send_text (self, sub, "3");
        case '4':
            if (len >= 2 && data[1] == '0' && sub->state == S_OPENING) {
                char room[128], join[192];
                s_room (self, sub, room, sizeof room);
                snprintf (join, sizeof join, "42[\"join\",\"%s\"]", room);
                if (s_send_text (self, sub, join) != 0)
                    return -1;
                s_sub_ready (self, sub);
                return 0;
            }
            if (len >= 2 && data[1] == '2') {
                s_deliver (self, sub, data, len);
                return 0;
            }
            if (len >= 2 && (data[1] == '1' || data[1] == '4'))
                return -1;   //  disconnected or refused by the server
            return 0;
        case '1':   //  Engine.IO close
            return -1;
        default: return 0;
    }
}

static int
s_ws_message (bench_sub_thread_t *self, s_sub_t *sub, const char *data,
              size_t len)
{
    if (self->shared->kind == BENCH_SUB_SOCKETIO)
        return s_socketio_packet (self, sub, data, len);
    s_deliver (self, sub, data, len);
    return 0;
}

//  Reassemble fragmented messages; deliver complete ones.  0 or -1.
static int
s_ws_frame (bench_sub_thread_t *self, s_sub_t *sub, const bench_ws_frame_t *f)
{
    if (f->opcode == 8)
        return -1;
    if (f->opcode == 9) {   //  ping: answer in kind
        if (bench_ws_send (&sub->conn, 10, f->payload, f->len) != 0)
            return -1;
        return bench_conn_flush (&sub->conn) < 0 ? -1 : 0;
    }
    if (f->opcode == 10)
        return 0;
    if (f->fin && f->opcode != 0 && sub->frag_len == 0)
        return s_ws_message (self, sub, f->payload, f->len);
    if (sub->frag_len + f->len > sub->frag_cap) {
        size_t cap = sub->frag_cap ? sub->frag_cap : 4096;
        while (cap < sub->frag_len + f->len)
            cap *= 2;
        char *frag = realloc (sub->frag, cap);
        if (!frag)
            return -1;
        sub->frag = frag;
        sub->frag_cap = cap;
    }
    memcpy (sub->frag + sub->frag_len, f->payload, f->len);
    sub->frag_len += f->len;
    if (!f->fin)
        return 0;
    int rc = s_ws_message (self, sub, sub->frag, sub->frag_len);
    sub->frag_len = 0;
    return rc;
}

static int
s_ws_input (bench_sub_thread_t *self, s_sub_t *sub)
{
    bench_conn_t *conn = &sub->conn;
    size_t used;
    if (!sub->upgraded) {
        int rc = bench_ws_handshake_done (bench_conn_data (conn),
                                          bench_conn_size (conn), &used);
        if (rc <= 0)
            return rc;
        bench_conn_consume (conn, used);
        sub->upgraded = true;
        if (self->shared->kind == BENCH_SUB_WS)
            s_sub_ready (self, sub);
        else
            sub->state = S_OPENING;
    }
    bench_ws_frame_t frame;
    int rc;
    while ((rc = bench_ws_frame (bench_conn_data (conn), bench_conn_size (conn),
                                 S_MESSAGE_MAX, &frame, &used))
           == 1) {
        if (s_ws_frame (self, sub, &frame) != 0)
            return -1;
        bench_conn_consume (conn, used);
    }
    return rc < 0 ? -1 : 0;
}

static int
s_nats_input (bench_sub_thread_t *self, s_sub_t *sub)
{
    bench_conn_t *conn = &sub->conn;
    bench_nats_msg_t msg;
    size_t used;
    int rc;
    while ((rc = bench_nats_parse (bench_conn_data (conn),
                                   bench_conn_size (conn), &msg, &used))
           == 1) {
        if (msg.op == BENCH_NATS_MSG)
            s_deliver (self, sub, msg.payload, msg.len);
        else if (msg.op == BENCH_NATS_PING)
            bench_conn_queue (conn, "PONG\r\n", 6);
        else if (msg.op == BENCH_NATS_PONG && sub->state == S_OPENING)
            s_sub_ready (self, sub);
        else if (msg.op == BENCH_NATS_ERR)
            return -1;
        else if (msg.op == BENCH_NATS_INFO && sub->state == S_CONNECTING) {
            char room[128], hello[256];
            s_room (self, sub, room, sizeof room);
            int n = snprintf (
                hello, sizeof hello,
                "CONNECT {\"verbose\":false,\"pedantic\":false,"
                "\"name\":\"orderbus-bench\"}\r\nSUB %s 1\r\nPING\r\n",
                room);
            bench_conn_queue (conn, hello, (size_t) n);
            sub->state = S_OPENING;
        }
        bench_conn_consume (conn, used);
    }
    return rc < 0 || bench_conn_flush (conn) < 0 ? -1 : 0;
}

static int
s_redis_input (bench_sub_thread_t *self, s_sub_t *sub)
{
    bench_conn_t *conn = &sub->conn;
    if (bench_resp_feed (sub->reader, bench_conn_data (conn),
                         bench_conn_size (conn))
        != 0)
        return -1;
    bench_conn_consume (conn, bench_conn_size (conn));
    bench_resp_reply_t reply;
    int rc;
    while ((rc = bench_resp_next (sub->reader, &reply)) == 1) {
        if (!reply.kind)
            continue;
        bool message =
            (reply.kind_len == 7 && memcmp (reply.kind, "message", 7) == 0)
            || (reply.kind_len == 8 && memcmp (reply.kind, "pmessage", 8) == 0);
        if (message && reply.last)
            s_deliver (self, sub, reply.last, reply.last_len);
        else if (!message && sub->state == S_CONNECTING)
            s_sub_ready (self, sub);   //  subscribe / psubscribe confirmed
    }
    return rc < 0 ? -1 : 0;
}

static void
s_sub_input (bench_sub_thread_t *self, s_sub_t *sub)
{
    ssize_t n = bench_conn_fill (&sub->conn);
    int rc = n < 0 ? -1 : 0;
    if (rc == 0 && n > 0)
        switch (self->shared->kind) {
            case BENCH_SUB_WS:
            case BENCH_SUB_SOCKETIO: rc = s_ws_input (self, sub); break;
            case BENCH_SUB_NATS: rc = s_nats_input (self, sub); break;
            case BENCH_SUB_REDIS: rc = s_redis_input (self, sub); break;
        }
    if (rc != 0)
        s_sub_fail (self, sub);
}

//  ---------------------------------------------------------------------
//  Thread

static void
s_check_timeouts (bench_sub_thread_t *self, int64_t now)
{
    for (int i = 0; i < self->started; i++) {
        s_sub_t *sub = &self->subs[i];
        if ((sub->state == S_CONNECTING || sub->state == S_OPENING)
            && now - sub->started > S_CONNECT_TIMEOUT_NS)
            s_sub_fail (self, sub);
    }
}

//  Start as many connects as the rate and the pending cap allow.
static void
s_connect_more (bench_sub_thread_t *self, int64_t t0, int64_t now)
{
    double rate = (double) self->opts->connect_rate / self->count;
    int64_t allowed = (int64_t) ((double) (now - t0) / 1e9 * rate) + 1;
    while (self->started < self->nsubs && self->started < allowed
           && self->pending < S_PENDING_MAX)
        s_sub_connect (self, &self->subs[self->started]);
}

static void
s_poll (bench_sub_thread_t *self, int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait (self->epfd, events, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        s_sub_t *sub = events[i].data.ptr;
        if (sub->state == S_DEAD)
            continue;
        if (events[i].events & (EPOLLERR | EPOLLHUP)
            && !(events[i].events & EPOLLIN)) {
            s_sub_fail (self, sub);
            continue;
        }
        if (events[i].events & EPOLLOUT) {
            int rc = bench_conn_flush (&sub->conn);
            if (rc < 0) {
                s_sub_fail (self, sub);
                continue;
            }
            bench_epoll_want_out (self->epfd, &sub->conn, sub, rc == 0);
        }
        if (events[i].events & EPOLLIN)
            s_sub_input (self, sub);
    }
}

//  No connect starts after this: a server that has stopped accepting
//  (civetweb with every worker thread taken) would otherwise make the
//  remaining clients queue behind one timeout after another.
static int64_t
s_connect_deadline (bench_sub_thread_t *self, int64_t t0)
{
    double spread =
        (double) self->nsubs * self->count / self->opts->connect_rate;
    return t0 + (int64_t) (spread * 1e9) + S_CONNECT_TIMEOUT_NS;
}

static void *
s_thread (void *args)
{
    bench_sub_thread_t *self = args;
    int64_t t0 = bench_now ();
    int64_t next_check = t0;
    int64_t deadline = s_connect_deadline (self, t0);
    while (self->started < self->nsubs || self->pending > 0) {
        int64_t now = bench_now ();
        if (now > deadline && self->started < self->nsubs) {
            self->failed += (uint64_t) (self->nsubs - self->started);
            self->not_tried += (uint64_t) (self->nsubs - self->started);
            self->started = self->nsubs;
        }
        s_connect_more (self, t0, now);
        if (now >= next_check) {
            s_check_timeouts (self, now);
            next_check = now + 100000000;
        }
        s_poll (self, 5);
    }
    self->connect_ns = bench_now () - t0;
    atomic_fetch_add (&self->shared->threads_ready, 1);
    while (atomic_load (&self->shared->phase) < 2)
        s_poll (self, 50);
    return NULL;
}

bench_sub_thread_t *
bench_sub_thread_start (bench_sub_shared_t *shared, int index, int count)
{
    bench_sub_thread_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->shared = shared;
    self->opts = shared->opts;
    self->index = index;
    self->count = count;
    self->hist = bench_hist_new ();
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (bench_url_parse (self->opts->sub_url, 80, &self->url) != 0) {
        fprintf (stderr, "orderbus-bench: bad --sub-url '%s'\n",
                 self->opts->sub_url);
        goto fail;
    }
    //  Client i of the whole run is ours if i % count == index; the first
    //  `kitchens` clients are kitchens, the rest pads spread over tables.
    for (int i = index; i < shared->total; i += count)
        self->nsubs++;
    self->subs =
        calloc ((size_t) (self->nsubs ? self->nsubs : 1), sizeof *self->subs);
    if (!self->hist || self->epfd < 0 || !self->subs)
        goto fail;
    int k = 0;
    for (int i = index; i < shared->total; i += count, k++) {
        s_sub_t *sub = &self->subs[k];
        sub->conn.fd = -1;
        int pad = i - self->opts->kitchens;
        sub->table =
            pad < 0 ? -1
                    : pad % (self->opts->tables > 0 ? self->opts->tables : 1);
    }
    if (pthread_create (&self->thread, NULL, s_thread, self) != 0)
        goto fail;
    return self;
fail:
    if (self->epfd >= 0)
        close (self->epfd);
    bench_hist_destroy (&self->hist);
    free (self->subs);
    free (self);
    return NULL;
}

void
bench_sub_thread_join (bench_sub_thread_t **self_p, bench_result_t *result,
                       uint64_t expected_all, const uint64_t *per_table)
{
    bench_sub_thread_t *self = *self_p;
    pthread_join (self->thread, NULL);
    bench_hist_merge (result->delivery, self->hist);
    result->deliveries += self->in_window;
    result->extra += self->extra;
    result->connected += self->ready;
    result->connect_failed += self->failed;
    result->not_tried += self->not_tried;
    result->disconnected += self->disconnected;
    double connect_s = (double) self->connect_ns / 1e9;
    if (connect_s > result->connect_s)
        result->connect_s = connect_s;
    for (int i = 0; i < self->nsubs; i++) {
        s_sub_t *sub = &self->subs[i];
        if (sub->was_ready) {
            uint64_t want = sub->table < 0 ? expected_all
                            : per_table    ? per_table[sub->table]
                                           : 0;
            if (sub->got < want)
                result->missing += want - sub->got;
            else
                result->dups += sub->got - want;
        }
        if (sub->state != S_DEAD) {
            sub->state = S_DEAD;   //  not a failure: the run is over
            bench_conn_close (&sub->conn);
            free (sub->frag);
            bench_resp_reader_destroy (&sub->reader);
        }
    }
    close (self->epfd);
    bench_hist_destroy (&self->hist);
    free (self->subs);
    free (self);
    *self_p = NULL;
}
