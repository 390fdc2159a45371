/*  bus_mhd.c — libmicrohttpd serving bus_req.h routes, event-driven.

    Each connection has one record (its socket context), reused by its
    requests: libmicrohttpd serves a connection's requests one after the
    other.  A request's life: its body is gathered, then bus_req finds
    its route and runs the handler (on the event thread, or on a pool
    thread through s_defer when the route blocks); the connection is
    suspended unless the answer is already there, and the answer, from
    whatever thread makes it, resumes it.

    Threads, and what each owns (on a gateway node):

      event threads    http/event_threads of libmicrohttpd's (its epoll
                       thread, or a pool of them): the connections and
                       their records; they read requests, run the quick
                       routes (an order: parse, check, bus_gateway_send)
                       and queue every response
      pool threads     http/threads: the deferred routes, which may wait
                       for the writer (queries, the seed routes, an order
                       the menu copy does not know); they own nothing
                       between requests
      gateway listener (bus_gateway.c) answers each order from its ack
      sweeper          cuts connections that have not sent a whole request
                       within http/request_deadline_ms; owns nothing, reads
                       the connection list under conns_lock
      destroyer        bus_mhd_destroy: quiesces, drains, stops the pool,
                       the sweeper and then the daemon

    Hand-offs: an event thread gives a request to the pool through the
    bounded queue (queue_lock; full: 503); whoever answers, on any
    thread, leaves the response with the request under the request's
    lock and resumes the connection if it was suspended, and its event
    thread queues it.  `pending` counts handlers called whose answer is
    not yet queued, so that stopping waits for them.

    Limits (docs/limits.md): http/max_connections in all,
    http/max_per_ip from one address (libmicrohttpd closes the ones over
    at once), and a deadline for a whole request.  libmicrohttpd's own
    timeout counts idle time, which each byte restarts, so a client
    sending a header a byte at a time would hold its connection for ever:
    the sweeper shuts down any connection that has waited for a request
    longer than the deadline, counted from its start, from its last
    answer, and again from its request line (so the idle time of a
    keep-alive connection is not charged to its next request).  A
    request being served (waiting for the writer) is never cut: the
    sweeper and s_start agree through waiting_since, by compare and swap,
    on which of them has it.  */

#include <assert.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <czmq.h>
#include <microhttpd.h>
#include "bus_mhd_private.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_mhd.h"
#include "orderbus/bus_tls.h"

#define S_FILES_SPARE      128     //  descriptors kept for ZeroMQ and logs
#define S_QUEUE_PER_THREAD 16      //  requests waiting for a pool thread, each
#define S_SWEEP_MS         250     //  how often the sweeper looks
#define S_CUT_LOG_MS       10000   //  cuts are logged this often at most
#define S_CUT              (-1)    //  waiting_since of a connection cut
//  Time for WebSockets to end at a stop: a browser's thread may be in
//  the edge's ready hook, waiting for the writer (a few seconds)
#define S_WS_STOP_MS 15000
#define S_TLS_PRIORITIES                                               \
    "SECURE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:" \
    "+ECDHE-RSA:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"                \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD"

//  A connection's request
typedef struct s_req {
    bus_req_t req;   //  first: a s_req_t * is a bus_req_t *
    bus_mhd_t *server;
    struct MHD_Connection *conn;
    char *query;   //  raw query string, or NULL
    char *body;    //  as gathered
    size_t body_len;
    bool too_big;           //  the body ran past BUS_REQ_BODY_MAX
    bool upgraded;          //  answered 101: a WebSocket's from now on
    uint64_t ws_pending;    //  that WebSocket's number (bus_mhd_site.h)
    const char *version;    //  "HTTP/1.1", libmicrohttpd's
    bool started;           //  the handler has been called
    bool counted;           //  in `pending`: its answer is not queued yet
    pthread_mutex_t lock;   //  guards what follows, with answer threads
    bool suspended;
    bool answered;
    int status;
    struct MHD_Response *response;   //  NULL with answered: out of memory
    //  Deferred to the pool
    bus_req_fn *later_fn;
    void *later_arg;
    struct s_req *next;
    //  The deadline: when it began to wait for a request (monotonic ms),
    //  0 while one is served, S_CUT once the sweeper has it.  Its place
    //  in the list, under conns_lock.
    int fd;
    _Atomic int64_t waiting_since;
    struct s_req *conn_prev, *conn_next;
} s_req_t;

struct _bus_mhd_t {
    bus_config_t config;
    struct MHD_Daemon *daemon;
    MHD_socket listener;   //  ours to close once quiesced
    bus_req_router_t *router;
    bus_mhd_site_t *site;   //  an edge's or up's; NULL on a gateway
    atomic_int pending;     //  handlers called, answers not yet queued
    atomic_bool stopping;
    //  The pool, for handlers that block
    pthread_t *pool;
    int pool_size;
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_ready;
    s_req_t *queue_head, *queue_tail;
    int queue_length;
    bool pool_stop;
    //  Open connections, for the sweeper
    pthread_mutex_t conns_lock;
    pthread_cond_t sweep_wake;
    s_req_t *conns;
    pthread_t sweeper;
    bool sweeper_started, sweep_stop;
    size_t cut_unlogged;   //  the sweeper's
    int64_t cut_logged_ms;
    //  TLS (tls/cert and tls/key set): their PEM texts, which GnuTLS
    //  reads at start; NULL for plain HTTP
    char *tls_cert;
    char *tls_key;
};

//  ---------------------------------------------------------------------
//  Routes: bus_req's router, which bus_mhd_new makes

bus_req_router_t *
bus_mhd_router (bus_mhd_t *self)
{
    return self->router;
}

bus_http_ws_router_t
bus_mhd_ws_router (bus_mhd_t *self)
{
    assert (self->site);   //  an edge's or up's server only
    return bus_mhd_site_router (self->site);
}

//  ---------------------------------------------------------------------
//  Requests

static const char *
s_header (bus_req_t *req, const char *name)
{
    return MHD_lookup_connection_value (((s_req_t *) req)->conn,
                                        MHD_HEADER_KIND, name);
}

static int
s_body (bus_req_t *req, size_t max, char **body, size_t *len)
{
    s_req_t *self = (s_req_t *) req;
    if (self->too_big || self->body_len > max)
        return BUS_ERR_TOO_BIG;
    *body = self->body ? self->body : strdup ("");
    *len = self->body_len;
    self->body = NULL;
    self->body_len = 0;
    return *body ? 0 : BUS_ERR_NOMEM;
}

//  Gather a piece of the body; past the limit it is only counted.
static void
s_body_add (s_req_t *self, const char *data, size_t size)
{
    if (self->too_big || self->body_len + size > BUS_REQ_BODY_MAX) {
        self->too_big = true;
        return;
    }
    char *body = realloc (self->body, self->body_len + size + 1);
    if (!body) {
        self->too_big = true;   //  as good an answer as any: 413
        return;
    }
    memcpy (body + self->body_len, data, size);
    self->body = body;
    self->body_len += size;
    body[self->body_len] = '\0';
}

//  Our extra header lines ("Name: value\r\n"...) onto response.  False if
//  out of memory.
static bool
s_add_headers (struct MHD_Response *response, const char *lines)
{
    while (*lines) {
        size_t line = strcspn (lines, "\r\n");
        const char *colon = memchr (lines, ':', line);
        if (colon) {
            char name[64], value[448];
            snprintf (name, sizeof name, "%.*s", (int) (colon - lines), lines);
            const char *v = colon + 1 + (colon[1] == ' ');
            snprintf (value, sizeof value, "%.*s", (int) (lines + line - v), v);
            if (MHD_add_response_header (response, name, value) != MHD_YES)
                return false;
        }
        lines += line;
        lines += strspn (lines, "\r\n");
    }
    return true;
}

static struct MHD_Response *
s_response (const char *headers, const char *body, size_t len, bool tls)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        len, (void *) body, MHD_RESPMEM_MUST_COPY);
    if (response
        && (MHD_add_response_header (response, "Content-Type",
                                     "application/json")
                != MHD_YES
            || MHD_add_response_header (response, "Cache-Control", "no-store")
                   != MHD_YES
            || !s_add_headers (response, BUS_REQ_SECURITY_HEADERS)
            || (tls && !s_add_headers (response, BUS_REQ_HSTS_HEADER))
            || !s_add_headers (response, headers))) {
        MHD_destroy_response (response);
        response = NULL;
    }
    return response;
}

//  From any thread.  The answer is kept with the request; a suspended
//  connection is resumed, and its event thread queues it.
static void
s_answer (bus_req_t *req, int status, const char *headers, char *body,
          size_t len)
{
    s_req_t *self = (s_req_t *) req;
    struct MHD_Response *response =
        s_response (headers, body, len, self->server->tls_key != NULL);
    if (!response)
        zsys_error ("http: out of memory: %s %s gets no answer",
                    self->req.method, self->req.path);
    pthread_mutex_lock (&self->lock);
    self->response = response;
    self->status = status;
    self->answered = true;
    bool resume = self->suspended;
    self->suspended = false;
    pthread_mutex_unlock (&self->lock);
    if (resume)
        MHD_resume_connection (self->conn);
}

//  Queue the request for a pool thread; past a bound it is refused, so
//  that a flood of queries (each a thread's wait for the writer) cannot
//  pile up without end.  0, or -1: refused.
static int
s_defer (bus_req_t *req, bus_req_fn *fn, void *arg)
{
    s_req_t *self = (s_req_t *) req;
    bus_mhd_t *server = self->server;
    self->later_fn = fn;
    self->later_arg = arg;
    self->next = NULL;
    pthread_mutex_lock (&server->queue_lock);
    bool full = server->queue_length >= S_QUEUE_PER_THREAD * server->pool_size;
    if (!full) {
        if (server->queue_tail)
            server->queue_tail->next = self;
        else
            server->queue_head = self;
        server->queue_tail = self;
        server->queue_length++;
        pthread_cond_signal (&server->queue_ready);
    }
    pthread_mutex_unlock (&server->queue_lock);
    return full ? -1 : 0;
}

static const bus_req_server_t s_server = { s_header, s_body, s_answer,
                                           s_defer };

//  Queue the answer made for self.  MHD_NO (close the connection) when
//  there is none to send.
static enum MHD_Result
s_queue (s_req_t *self)
{
    enum MHD_Result rc =
        self->response ? MHD_queue_response (
            self->conn, (unsigned) self->status, self->response)
                       : MHD_NO;
    if (self->response)
        MHD_destroy_response (self->response);
    self->response = NULL;
    self->counted = false;
    atomic_fetch_sub (&self->server->pending, 1);
    return rc;
}

//  The site's answer to self, if it has one: its endpoints (WebSockets,
//  pages, redirects) go before the routes, and its static files after
//  them, as a path no route takes.  True if answered.
static bool
s_site_serve (s_req_t *self)
{
    bus_mhd_site_t *site = self->server->site;
    if (!site)
        return false;
    struct MHD_Response *response = NULL;
    unsigned status = 0;
    int rc = bus_mhd_site_endpoint (site, self->conn, &self->req, self->version,
                                    &response, &status, &self->ws_pending);
    if (rc == BUS_MHD_SITE_NONE
        && !bus_req_router_find (self->server->router, self->req.method,
                                 self->req.path))
        rc = bus_mhd_site_file (site, self->conn, &self->req, &response,
                                &status);
    if (rc == BUS_MHD_SITE_RESPONSE
        && (!s_add_headers (response, BUS_REQ_SECURITY_HEADERS)
            || (self->server->tls_key
                && !s_add_headers (response, BUS_REQ_HSTS_HEADER))))
        zsys_warning ("http: out of memory: %s sent without its security "
                      "headers",
                      self->req.path);
    if (rc == BUS_MHD_SITE_RESPONSE) {
        //  Never cut once upgraded: the socket is the WebSocket's
        self->upgraded = status == MHD_HTTP_SWITCHING_PROTOCOLS;
        pthread_mutex_lock (&self->lock);
        self->response = response;
        self->status = (int) status;
        self->answered = true;
        pthread_mutex_unlock (&self->lock);
    }
    return rc != BUS_MHD_SITE_NONE;
}

//  Serve the request by its route (bus_req runs one that blocks on the
//  pool, through s_defer); then queue its answer, or wait for it with
//  the connection suspended.
static enum MHD_Result
s_start (s_req_t *self)
{
    //  Too late: the sweeper has cut the connection, and the request must
    //  not reach the writer with no one to answer
    int64_t since = atomic_load (&self->waiting_since);
    do {
        if (since == S_CUT)
            return MHD_NO;
    } while (!atomic_compare_exchange_weak (&self->waiting_since, &since, 0));
    self->started = true;
    self->counted = true;
    atomic_fetch_add (&self->server->pending, 1);
    if (atomic_load (&self->server->stopping))
        bus_req_send_error (&self->req, 503, "unavailable",
                            "the gateway is "
                            "shutting down; retry on another",
                            NULL);
    else if (!s_site_serve (self))
        bus_req_router_serve (self->server->router, &self->req);
    pthread_mutex_lock (&self->lock);
    bool answered = self->answered;
    if (!answered) {
        self->suspended = true;
        MHD_suspend_connection (self->conn);
    }
    pthread_mutex_unlock (&self->lock);
    return answered ? s_queue (self) : MHD_YES;
}

//  libmicrohttpd calls this when the headers are in, for each piece of
//  the body, once the body is in, and again after a resume.
static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_size, void **con_cls)
{
    (void) cls;
    s_req_t *self = (s_req_t *) *con_cls;
    if (!self)
        return MHD_NO;
    if (!self->req.method) {   //  the headers are in
        self->req.method = method;
        self->version = version;
        self->req.path = url;
        //  A body announced too big is refused now, not waited for
        const char *length = MHD_lookup_connection_value (
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        self->too_big =
            length && strtoull (length, NULL, 10) > BUS_REQ_BODY_MAX;
        return self->too_big ? s_start (self) : MHD_YES;
    }
    if (*upload_size) {
        if (!self->started)
            s_body_add (self, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (!self->started)
        return s_start (self);
    return s_queue (self);   //  resumed: the answer is in
}

//  ---------------------------------------------------------------------
//  Connections

//  Start self's deadline again from now, unless the sweeper has cut it.
static void
s_deadline_restart (s_req_t *self)
{
    //  A WebSocket's socket is its thread's: the sweeper must never cut
    //  it.  (libmicrohttpd 0.9.75 reports an upgraded request complete
    //  only once the WebSocket is closed, so this is a guard against a
    //  version that reports it at the 101.)
    if (self->upgraded)
        return;
    int64_t since = atomic_load (&self->waiting_since);
    if (since != S_CUT)
        atomic_compare_exchange_strong (&self->waiting_since, &since,
                                        zclock_mono ());
}

//  A new request on conn: its record, cleared, with the raw query string
//  (libmicrohttpd hands handlers only the decoded parameters; the routes
//  read the query as civetweb gives it).
static void *
s_request_begin (void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void) cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    s_req_t *self = info ? (s_req_t *) info->socket_context : NULL;
    if (!self)
        return NULL;
    free (self->query);
    free (self->body);
    const char *query = strchr (uri, '?');
    self->query = query ? strdup (query + 1) : NULL;
    self->req.query = self->query;
    self->req.method = NULL;
    self->req.path = NULL;
    self->req.may_block = false;
    self->req.data = NULL;
    self->body = NULL;
    self->body_len = 0;
    self->too_big = false;
    s_deadline_restart (self);
    self->started = false;
    self->answered = false;
    self->suspended = false;
    return (query && !self->query) ? NULL : self;
}

//  A new connection joins the sweeper's list, waiting for its first
//  request.  Its socket stays open until it leaves the list
//  (libmicrohttpd notifies the close before it closes the socket), so
//  the sweeper may shut it down while it holds conns_lock.
static void
s_conn_add (bus_mhd_t *server, s_req_t *self)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (self->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    self->fd = info ? info->connect_fd : -1;
    atomic_store (&self->waiting_since, zclock_mono ());
    pthread_mutex_lock (&server->conns_lock);
    self->conn_next = server->conns;
    if (server->conns)
        server->conns->conn_prev = self;
    server->conns = self;
    pthread_mutex_unlock (&server->conns_lock);
}

static void
s_conn_remove (bus_mhd_t *server, s_req_t *self)
{
    pthread_mutex_lock (&server->conns_lock);
    if (self->conn_prev)
        self->conn_prev->conn_next = self->conn_next;
    else
        server->conns = self->conn_next;
    if (self->conn_next)
        self->conn_next->conn_prev = self->conn_prev;
    pthread_mutex_unlock (&server->conns_lock);
}

//  An answer went out (or the request ended): the connection waits for
//  its next request, and the deadline starts again.  A request can also
//  end with its answer never queued: its client closed the connection
//  while it was suspended, which libmicrohttpd sees only once the answer
//  resumes it, and then it closes the connection without asking for the
//  answer.  Such a request leaves `pending` here, or stopping would wait
//  for it until its deadline.
static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode code)
{
    (void) cls, (void) conn, (void) code;
    s_req_t *self = (s_req_t *) *con_cls;
    if (!self)
        return;
    //  A 101 that never went out leaves its WebSocket to be freed here
    if (self->server->site)
        bus_mhd_site_abandon (self->server->site, self->ws_pending);
    self->ws_pending = 0;
    s_deadline_restart (self);
    if (self->counted) {
        pthread_mutex_lock (&self->lock);
        if (self->response)
            MHD_destroy_response (self->response);
        self->response = NULL;
        pthread_mutex_unlock (&self->lock);
        self->counted = false;
        atomic_fetch_sub (&self->server->pending, 1);
    }
}

static void
s_connection (void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
    bus_mhd_t *server = (bus_mhd_t *) cls;
    s_req_t *self = (s_req_t *) *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        self = calloc (1, sizeof *self);
        if (self) {
            self->req.server = &s_server;
            self->server = server;
            self->conn = conn;
            pthread_mutex_init (&self->lock, NULL);
            s_conn_add (server, self);
        }
        *socket_context = self;
    } else if (self) {
        s_conn_remove (server, self);
        free (self->query);
        free (self->body);
        pthread_mutex_destroy (&self->lock);
        free (self);
        *socket_context = NULL;
    }
}

static void
s_log (void *cls, const char *format, va_list args)
{
    (void) cls;
    char text[256];
    vsnprintf (text, sizeof text, format, args);
    text[strcspn (text, "\n")] = '\0';
    zsys_warning ("http: %s", text);
}

//  ---------------------------------------------------------------------
//  The pool

static void *
s_pool_thread (void *arg)
{
    bus_mhd_t *self = (bus_mhd_t *) arg;
    pthread_mutex_lock (&self->queue_lock);
    while (true) {
        while (!self->queue_head && !self->pool_stop)
            pthread_cond_wait (&self->queue_ready, &self->queue_lock);
        s_req_t *req = self->queue_head;
        if (!req)
            break;   //  stopping, and nothing left to run
        self->queue_head = req->next;
        if (!self->queue_head)
            self->queue_tail = NULL;
        self->queue_length--;
        pthread_mutex_unlock (&self->queue_lock);
        req->req.may_block = true;
        req->later_fn (&req->req, req->later_arg);
        pthread_mutex_lock (&self->queue_lock);
    }
    pthread_mutex_unlock (&self->queue_lock);
    return NULL;
}

static void
s_pool_stop (bus_mhd_t *self)
{
    pthread_mutex_lock (&self->queue_lock);
    self->pool_stop = true;
    pthread_cond_broadcast (&self->queue_ready);
    pthread_mutex_unlock (&self->queue_lock);
    for (int i = 0; i < self->pool_size; i++)
        pthread_join (self->pool[i], NULL);
    self->pool_size = 0;
}

static int
s_pool_start (bus_mhd_t *self, char *err, size_t err_cap)
{
    self->pool =
        calloc ((size_t) self->config.http_threads, sizeof *self->pool);
    if (!self->pool) {
        snprintf (err, err_cap, "out of memory");
        return -1;
    }
    for (int i = 0; i < self->config.http_threads; i++) {
        if (pthread_create (&self->pool[i], NULL, s_pool_thread, self) != 0) {
            snprintf (err, err_cap, "cannot start HTTP pool thread %d of %d",
                      i + 1, self->config.http_threads);
            return -1;
        }
        self->pool_size++;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  The sweeper

//  Shut down every connection past its deadline: libmicrohttpd then sees
//  it end and closes it.  conns_lock held.  Returns how many.
static size_t
s_sweep (bus_mhd_t *self, int64_t now)
{
    int64_t deadline = self->config.http_request_deadline_ms;
    size_t cut = 0;
    for (s_req_t *conn = self->conns; conn; conn = conn->conn_next) {
        int64_t since = atomic_load (&conn->waiting_since);
        if (since > 0 && now - since > deadline && conn->fd >= 0
            && atomic_compare_exchange_strong (&conn->waiting_since, &since,
                                               S_CUT)) {
            shutdown (conn->fd, SHUT_RDWR);
            cut++;
        }
    }
    return cut;
}

//  A flood of slow clients is one log line every S_CUT_LOG_MS, not one a
//  connection.
static void
s_log_cuts (bus_mhd_t *self, size_t cut, int64_t now)
{
    self->cut_unlogged += cut;
    if (!self->cut_unlogged || now - self->cut_logged_ms < S_CUT_LOG_MS)
        return;
    zsys_warning ("http: cut %zu connection(s) that sent no whole request "
                  "within %d ms (http/request_deadline_ms)",
                  self->cut_unlogged, self->config.http_request_deadline_ms);
    self->cut_unlogged = 0;
    self->cut_logged_ms = now;
}

static void *
s_sweeper (void *arg)
{
    bus_mhd_t *self = (bus_mhd_t *) arg;
    pthread_mutex_lock (&self->conns_lock);
    while (!self->sweep_stop) {
        struct timespec until;
        clock_gettime (CLOCK_MONOTONIC, &until);
        until.tv_nsec += S_SWEEP_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait (&self->sweep_wake, &self->conns_lock, &until);
        int64_t now = zclock_mono ();
        s_log_cuts (self, s_sweep (self, now), now);
    }
    pthread_mutex_unlock (&self->conns_lock);
    return NULL;
}

static void
s_sweeper_stop (bus_mhd_t *self)
{
    if (!self->sweeper_started)
        return;
    pthread_mutex_lock (&self->conns_lock);
    self->sweep_stop = true;
    pthread_cond_signal (&self->sweep_wake);
    pthread_mutex_unlock (&self->conns_lock);
    pthread_join (self->sweeper, NULL);
    self->sweeper_started = false;
}

//  ---------------------------------------------------------------------
//  The server

bus_mhd_t *
bus_mhd_new (const bus_config_t *config)
{
    bus_mhd_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->router = bus_req_router_new (NULL, NULL);
    //  An edge, or up, also serves WebSockets, pages and files
    bool site = config->role == BUS_ROLE_EDGE || config->role == BUS_ROLE_UP;
    if (site)
        self->site = bus_mhd_site_new (config);
    if (!self->router || (site && !self->site)) {
        bus_req_router_destroy (&self->router);
        bus_mhd_site_destroy (&self->site);
        free (self);
        return NULL;
    }
    //  `orderbus up` served with civetweb once, which matched paths
    //  ignoring case; its users may have /HEALTHZ in a script
    if (config->role == BUS_ROLE_UP)
        bus_req_router_ignore_case (self->router);
    pthread_mutex_init (&self->queue_lock, NULL);
    pthread_cond_init (&self->queue_ready, NULL);
    pthread_mutex_init (&self->conns_lock, NULL);
    //  The sweeper waits on the monotonic clock: a wall clock set back
    //  would stall it, and with it every deadline
    pthread_condattr_t monotonic;
    pthread_condattr_init (&monotonic);
    pthread_condattr_setclock (&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init (&self->sweep_wake, &monotonic);
    pthread_condattr_destroy (&monotonic);
    return self;
}

//  The connections wanted: http/max_connections, and on an edge (or up)
//  its edge/max_clients WebSockets on top.
static rlim_t
s_connections_wanted (const bus_config_t *config)
{
    rlim_t want = (rlim_t) config->http_max_connections;
    if (config->role == BUS_ROLE_EDGE || config->role == BUS_ROLE_UP)
        want += (rlim_t) config->max_clients;
    return want;
}

//  Make room for the connections wanted, raising the soft limit on
//  descriptors up to the hard one if need be (ulimit -n is often 1024).
static void
s_files_raise (const bus_config_t *config)
{
    struct rlimit limit;
    rlim_t want = s_connections_wanted (config) + S_FILES_SPARE;
    if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= want)
        return;
    limit.rlim_cur = limit.rlim_max < want ? limit.rlim_max : want;
    setrlimit (RLIMIT_NOFILE, &limit);
}

//  The connections wanted, or fewer if the process has not the
//  descriptors (libmicrohttpd would accept more and then fail on each).
static unsigned
s_connection_limit (const bus_config_t *config)
{
    struct rlimit limit;
    rlim_t files =
        getrlimit (RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 1024;
    rlim_t room =
        files > 2 * S_FILES_SPARE ? files - S_FILES_SPARE : S_FILES_SPARE;
    rlim_t want = s_connections_wanted (config);
    return room < want ? (unsigned) room : (unsigned) want;
}

//  config's listen address and port.  0, or -1 with err set.
static int
s_address (const bus_config_t *config, struct sockaddr_storage *addr, char *err,
           size_t err_cap)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    char port[8];
    snprintf (port, sizeof port, "%d", config->http_port);
    int rc = getaddrinfo (config->http_listen, port, &hints, &found);
    if (rc != 0 || found->ai_addrlen > sizeof *addr) {
        snprintf (err, err_cap,
                  "cannot listen on %s: not a numeric IP "
                  "address (%s)",
                  config->http_listen, gai_strerror (rc));
        if (found)
            freeaddrinfo (found);
        return -1;
    }
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    freeaddrinfo (found);
    return 0;
}

//  With tls/cert and tls/key set, read both (bus_node checked them) for
//  GnuTLS.  0, or -1 with err set.
static int
s_tls_read (bus_mhd_t *self, char *err, size_t err_cap)
{
    if (!*self->config.tls_cert && !*self->config.tls_key)
        return 0;
    self->tls_cert = bus_tls_read_pem (self->config.tls_cert, err, err_cap);
    self->tls_key = self->tls_cert
                        ? bus_tls_read_pem (self->config.tls_key, err, err_cap)
                        : NULL;
    return self->tls_key ? 0 : -1;
}

//  Move the count options in use (not END) to the front, in order, and
//  end them there
static void
s_options_pack (struct MHD_OptionItem *options, size_t count)
{
    size_t used = 0;
    for (size_t i = 0; i < count; i++)
        if (options[i].option != MHD_OPTION_END)
            options[used++] = options[i];
    options[used] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
}

int
bus_mhd_start (bus_mhd_t *self, char *err, size_t err_cap)
{
    struct sockaddr_storage addr;
    if (s_address (&self->config, &addr, err, err_cap) != 0
        || s_pool_start (self, err, err_cap) != 0)
        return -1;
    if (pthread_create (&self->sweeper, NULL, s_sweeper, self) != 0) {
        snprintf (err, err_cap, "cannot start the HTTP sweeper thread");
        return -1;
    }
    self->sweeper_started = true;
    s_files_raise (&self->config);
    if (s_connection_limit (&self->config)
        < s_connections_wanted (&self->config))
        zsys_warning ("http: room for %u connections only (ulimit -n): past "
                      "them, new ones are closed at once; raise the limit "
                      "(LimitNOFILE= in a systemd unit) or lower "
                      "http/max_connections and edge/max_clients",
                      s_connection_limit (&self->config));
    if (s_tls_read (self, err, err_cap) != 0)
        return -1;
    bool tls = self->tls_key != NULL;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME
                     | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0)
                     | (self->site ? MHD_ALLOW_UPGRADE : 0)
                     | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    //  One event thread is the daemon's own: a pool is for more than one.
    //  With TLS, the port speaks nothing else: GnuTLS's handshake fails
    //  on plain HTTP and the connection is closed without an answer.
    intptr_t events = self->config.http_event_threads;
    struct MHD_OptionItem options[] = {
        { events > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, events,
          NULL },
        { tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, self->tls_cert },
        { tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, self->tls_key },
        //  TLS 1.2 and 1.3 only; on 1.2 only ECDHE (forward secrecy) with
        //  an AEAD cipher: GnuTLS's SECURE alone still offers static RSA
        //  key exchange and CBC with SHA-1
        { tls ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, 0,
          (void *) S_TLS_PRIORITIES },
        { MHD_OPTION_END, 0, NULL },
    };
    //  MHD_OPTION_ARRAY stops at its first END: the ones in use first
    s_options_pack (options, sizeof options / sizeof options[0]);
    errno = 0;   //  libmicrohttpd leaves it set only for some failures
    self->daemon = MHD_start_daemon (
        flags, (uint16_t) self->config.http_port, NULL, NULL, s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_log, self, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *) &addr, MHD_OPTION_ARRAY, options,
        //  a rush of reconnecting pads waits here instead of being dropped
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_CONNECTION_LIMIT,
        s_connection_limit (&self->config), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned) self->config.http_max_per_ip, MHD_OPTION_NOTIFY_COMPLETED,
        s_completed, self,
        //  keep-alive connections idle this long are closed (as civetweb)
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_URI_LOG_CALLBACK,
        s_request_begin, self, MHD_OPTION_NOTIFY_CONNECTION, s_connection, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, err_cap, "cannot start HTTP server on %s:%d: %s",
                  self->config.http_listen, self->config.http_port,
                  errno ? strerror (errno) : "see the warning above");
        return -1;
    }
    zsys_info ("http: libmicrohttpd on %s:%d (%s), %d event thread(s), %d "
               "threads for queries, up to %u connections (%d from one "
               "address), %d ms for a whole request",
               self->config.http_listen, self->config.http_port,
               tls ? "HTTPS only" : "plain HTTP",
               self->config.http_event_threads, self->pool_size,
               s_connection_limit (&self->config), self->config.http_max_per_ip,
               self->config.http_request_deadline_ms);
    return 0;
}

//  Wait until every request handled has its answer with libmicrohttpd,
//  or until end.  True if none is left.
static bool
s_drain (bus_mhd_t *self, int64_t end)
{
    while (atomic_load (&self->pending) > 0 && zclock_mono () < end)
        zclock_sleep (10);
    return atomic_load (&self->pending) == 0;
}

//  Stop taking connections: the listening socket is shut at once, so a
//  client trying to connect is refused (and can try another gateway)
//  instead of waiting in the backlog; it is closed once the daemon is
//  stopped, as libmicrohttpd's threads may still look at it until then.
static void
s_quiesce (bus_mhd_t *self)
{
    atomic_store (&self->stopping, true);
    self->listener =
        self->daemon ? MHD_quiesce_daemon (self->daemon) : MHD_INVALID_SOCKET;
    if (self->listener != MHD_INVALID_SOCKET)
        shutdown (self->listener, SHUT_RDWR);
}

bool
bus_mhd_destroy (bus_mhd_t **self_p, int wait_ms)
{
    if (!self_p || !*self_p)
        return true;
    bus_mhd_t *self = *self_p;
    *self_p = NULL;
    s_quiesce (self);
    //  The WebSockets end first, with their close hooks, while what they
    //  use (the edge) is still there
    if (self->site && !bus_mhd_site_stop (self->site, S_WS_STOP_MS)) {
        //  A WebSocket thread still runs: the daemon would free its
        //  socket's handle under it; the process is on its way out
        zsys_error ("http: not stopping the server: WebSockets still open");
        return false;
    }
    //  A suspended connection must be answered before the daemon stops
    //  (libmicrohttpd aborts the process otherwise); the gateway answers
    //  every command by its deadline, and the pool's last answers are
    //  queued a moment after the pool is done
    bool drained = s_drain (self, zclock_mono () + wait_ms);
    s_pool_stop (self);
    s_sweeper_stop (self);
    drained = drained || s_drain (self, zclock_mono () + 1000);
    if (!drained) {
        //  Not reached while every wait is bounded; if it is, the process
        //  is on its way out: leave the daemon and its threads to it
        zsys_error ("http: %d requests still unanswered after %d ms: not "
                    "stopping the server",
                    atomic_load (&self->pending), wait_ms);
        return false;
    }
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    if (self->listener != MHD_INVALID_SOCKET)
        close (self->listener);
    free (self->pool);
    bus_mhd_site_destroy (&self->site);
    bus_req_router_destroy (&self->router);
    pthread_mutex_destroy (&self->queue_lock);
    pthread_cond_destroy (&self->queue_ready);
    pthread_mutex_destroy (&self->conns_lock);
    pthread_cond_destroy (&self->sweep_wake);
    free (self->tls_cert);
    if (self->tls_key)
        explicit_bzero (self->tls_key, strlen (self->tls_key));
    free (self->tls_key);
    free (self);
    return true;
}
