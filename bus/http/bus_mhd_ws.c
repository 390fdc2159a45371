/*  bus_mhd_ws.c — WebSocket connections on libmicrohttpd (bus_http_ws.h).

    libmicrohttpd answers the handshake with our 101 and then hands the
    connection's socket over (on TLS, one end of a socket pair whose
    other end it encrypts): from there the connection is ours.  Each gets
    a thread of its own, which calls the edge's hooks (ready, data,
    close) as bus_http_ws.h promises, reads the browser's frames through
    bus_wsread (a message past BUS_MHD_WS_MESSAGE_MAX is answered 1009
    on its header alone), answers pings, and pings a browser that has
    been silent for edge/ws_ping_ms: S_PINGS_MAX unanswered and it is
    gone.  Other threads (the fan-out's senders) write frames to the
    socket under the connection's lock, which the thread's own pongs,
    pings and close frames take too.

    Threads: libmicrohttpd's event thread makes a connection (upgrade)
    and starts its thread (s_upgraded); the connection's thread frees it.
    A connection whose 101 never goes out (the browser left first, or
    libmicrohttpd refused to upgrade) is freed on the event thread when
    its request ends (bus_mhd_ws_abandon).  The hub's lock guards its two
    lists, the connections waiting for their 101 and those upgraded,
    which bus_mhd_ws_hub_stop walks to say goodbye and hang them up.  */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <czmq.h>
#include <gnutls/crypto.h>
#include <sodium.h>
#include "bus_mhd_private.h"
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_wsframe.h"
#include "orderbus/bus_wsread.h"

#define S_PINGS_MAX        5       //  unanswered, and it is gone
#define S_WRITE_MS         10000   //  a control frame's write
#define S_LINGER_MS        1000    //  for the browser's answer to a close
#define S_STACK            (512 * 1024)   //  a connection thread's stack
#define S_HEADERS_MAX      64             //  headers kept for the hooks
#define S_HEADERS_MAX_TEXT "64"
#define S_GUID             "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

//  What browsers may send in one message: the edge takes nothing from
//  them but pongs and close frames, and answers a text message with an
//  error; a few KiB would do, this leaves room for a seed client's.
#define BUS_MHD_WS_MESSAGE_MAX (16 * 1024)

//  The upgrade request, kept for the hooks until the close hook returns
typedef struct {
    bus_req_t req;   //  first: its bus_req_t * is this
    char *path, *query;
    char *names[S_HEADERS_MAX], *values[S_HEADERS_MAX];
    int headers;
} s_request_t;

struct _bus_http_ws_t {
    s_request_t request;   //  first: the bus_req_t the hooks read
    uint64_t id;           //  the hub's number for it, never reused
    bus_mhd_ws_hub_t *hub;
    const bus_http_ws_handler_t *handler;
    struct MHD_UpgradeResponseHandle *urh;   //  NULL until upgraded
    int fd;                 //  -1 until upgraded; set under the hub lock
    pthread_mutex_t lock;   //  around every write
    bool close_sent;        //  under lock
    bus_wsread_t *reader;   //  made once upgraded
    void *user;
    struct _bus_http_ws_t *prev, *next;   //  in one of the hub's lists
};

struct _bus_mhd_ws_hub_t {
    int ping_ms;
    bool edge;   //  an edge's connection threads keep no malloc cache
    pthread_mutex_t lock;
    pthread_cond_t ended;     //  a connection's thread ended
    bus_http_ws_t *pending;   //  answered 101, not upgraded yet
    bus_http_ws_t *conns;     //  upgraded, not freed yet
    uint64_t last_id;
    int threads;   //  connection threads running
    bool stopping;
    int debug_delay_ms;   //  s_debug_delay_ms: a Debug build's test switch
};

//  Into, or out of, one of the hub's lists.  Hub lock held.
static void
s_link (bus_http_ws_t **list, bus_http_ws_t *self)
{
    self->prev = NULL;
    self->next = *list;
    if (*list)
        (*list)->prev = self;
    *list = self;
}

static void
s_unlink (bus_http_ws_t **list, bus_http_ws_t *self)
{
    if (self->prev)
        self->prev->next = self->next;
    else
        *list = self->next;
    if (self->next)
        self->next->prev = self->prev;
    self->prev = self->next = NULL;
}

//  ---------------------------------------------------------------------
//  The upgrade request, for the hooks (bus_req_t)

static const char *
s_req_header (bus_req_t *req, const char *name)
{
    s_request_t *self = (s_request_t *) req;
    for (int i = 0; i < self->headers; i++)
        if (strcasecmp (self->names[i], name) == 0)
            return self->values[i];
    return NULL;
}

static int
s_req_body (bus_req_t *req, size_t max, char **body, size_t *len)
{
    (void) req, (void) max, (void) body, (void) len;
    return BUS_ERR_MALFORMED;   //  an upgrade has none
}

static void
s_req_answer (bus_req_t *req, int status, const char *headers, char *body,
              size_t len)
{
    (void) headers, (void) body, (void) len;
    zsys_error ("http: a WebSocket's hook answered %s with %d after the "
                "handshake: ignored",
                req->path, status);
}

static int
s_req_defer (bus_req_t *req, bus_req_fn *fn, void *arg)
{
    (void) req, (void) fn, (void) arg;
    return -1;
}

static const bus_req_server_t s_req_server = { s_req_header, s_req_body,
                                               s_req_answer, s_req_defer };

static enum MHD_Result
s_copy_header (void *cls, enum MHD_ValueKind kind, const char *name,
               const char *value)
{
    (void) kind;
    s_request_t *self = (s_request_t *) cls;
    if (self->headers == S_HEADERS_MAX || !value)
        return MHD_YES;
    self->names[self->headers] = strdup (name);
    self->values[self->headers] = strdup (value);
    if (!self->names[self->headers] || !self->values[self->headers]) {
        free (self->names[self->headers]);
        free (self->values[self->headers]);
        return MHD_NO;
    }
    self->headers++;
    return MHD_YES;
}

//  Copy what the hooks may read of req.  0, or -1 if out of memory.
static int
s_request_copy (s_request_t *self, struct MHD_Connection *conn,
                const bus_req_t *req)
{
    self->req.server = &s_req_server;
    self->req.method = "GET";
    self->path = strdup (req->path);
    self->query = req->query ? strdup (req->query) : NULL;
    self->req.path = self->path;
    self->req.query = self->query;
    self->req.may_block = true;   //  the hooks run on the connection's thread
    int all = MHD_get_connection_values (conn, MHD_HEADER_KIND, NULL, NULL);
    MHD_get_connection_values (conn, MHD_HEADER_KIND, s_copy_header, self);
    bool whole = self->headers == all;   //  bus_mhd_ws_upgrade checked it fits
    return whole && self->path && (self->query || !req->query) ? 0 : -1;
}

static void
s_request_free (s_request_t *self)
{
    free (self->path);
    free (self->query);
    for (int i = 0; i < self->headers; i++) {
        free (self->names[i]);
        free (self->values[i]);
    }
}

//  ---------------------------------------------------------------------
//  A connection (bus_http_ws.h)

bus_req_t *
bus_http_ws_request (bus_http_ws_t *self)
{
    return &self->request.req;
}

void
bus_http_ws_set_user (bus_http_ws_t *self, void *user)
{
    self->user = user;
}

void *
bus_http_ws_user (bus_http_ws_t *self)
{
    return self->user;
}

int
bus_http_ws_socket (bus_http_ws_t *self)
{
    return self->fd;
}

void
bus_http_ws_lock (bus_http_ws_t *self)
{
    pthread_mutex_lock (&self->lock);
}

void
bus_http_ws_unlock (bus_http_ws_t *self)
{
    pthread_mutex_unlock (&self->lock);
}

//  Write all of data within wait_ms.  Lock held.  0, or -1 (the socket
//  is then shut down: a frame half written cannot be followed).
static int
s_write (bus_http_ws_t *self, const void *data, size_t len, int wait_ms)
{
    int64_t deadline = zclock_mono () + wait_ms;
    while (len > 0) {
        ssize_t n = send (self->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            data = (const char *) data + n;
            len -= (size_t) n;
            continue;
        }
        int64_t left = deadline - zclock_mono ();
        if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            || left <= 0)
            break;
        struct pollfd p = { .fd = self->fd, .events = POLLOUT };
        poll (&p, 1, (int) left);
    }
    if (len > 0)
        shutdown (self->fd, SHUT_RDWR);
    return len > 0 ? -1 : 0;
}

//  A frame the connection writes itself (a pong, a ping, a close), with
//  the lock taken.  Nothing goes after a close frame (RFC 6455 5.5.1).
static void
s_send_locked (bus_http_ws_t *self, bus_wsframe_t *frame, int wait_ms)
{
    bool closing =
        (((const unsigned char *) bus_wsframe_data (frame))[0] & 0x0f)
        == BUS_WSFRAME_CLOSE;
    if (!self->close_sent)
        s_write (self, bus_wsframe_data (frame), bus_wsframe_size (frame),
                 wait_ms);
    self->close_sent = self->close_sent || closing;
}

static void
s_send (bus_http_ws_t *self, bus_wsframe_t *frame)
{
    if (!frame)
        return;
    pthread_mutex_lock (&self->lock);
    s_send_locked (self, frame, S_WRITE_MS);
    pthread_mutex_unlock (&self->lock);
    bus_wsframe_unref (&frame);
}

void
bus_http_ws_close (bus_http_ws_t *self, int code, const char *reason)
{
    s_send (self, bus_wsframe_new_close (code, reason));
}

void
bus_http_ws_hang_up (bus_http_ws_t *self)
{
    shutdown (self->fd, SHUT_RDWR);
}

//  ---------------------------------------------------------------------
//  The connection's thread

//  May a browser close with code (RFC 6455 7.4)?
static bool
s_close_code_valid (int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011)
           || (code >= 3000 && code <= 4999);
}

//  One message or control frame from the browser.  False once the
//  connection is to end.
static bool
s_on_frame (bus_http_ws_t *self, int opcode, const char *data, size_t len)
{
    int code =
        len >= 2 ? (unsigned char) data[0] << 8 | (unsigned char) data[1] : 0;
    switch (opcode) {
        case BUS_WSFRAME_CLOSE:
            //  Answered with its own code, as the RFC asks (5.5.1), unless
            //  that code is not one a browser may send
            if (len == 0)
                s_send (self, bus_wsframe_new (BUS_WSFRAME_CLOSE, "", 0));
            else if (len >= 2 && s_close_code_valid (code))
                s_send (self, bus_wsframe_new_close (code, ""));
            else
                bus_http_ws_close (self, BUS_WSREAD_PROTOCOL, "bad close code");
            return false;
        case 0x9:   //  ping: the same payload back
            s_send (self, bus_wsframe_new (0xA, data, len));
            return true;
        case 0xA:   //  pong
            return true;
        default:
            if (self->handler->data)
                self->handler->data (self, opcode, data, len,
                                     self->handler->arg);
            return true;
    }
}

//  Everything the reader has whole.  False once the connection is to end.
static bool
s_take_frames (bus_http_ws_t *self)
{
    int opcode;
    const char *data;
    size_t len;
    int rc;
    while ((rc = bus_wsread_next (self->reader, &opcode, &data, &len)) == 1)
        if (!s_on_frame (self, opcode, data, len))
            return false;
    if (rc == 0)
        return true;
    bus_http_ws_close (self, rc,
                       rc == BUS_WSREAD_TOO_BIG ? "message too big"
                       : rc == BUS_WSREAD_NOMEM ? "out of memory"
                                                : "protocol error");
    return false;
}

//  Read until the browser goes, is hung up on, or stops answering pings.
static void
s_serve (bus_http_ws_t *self)
{
    int unanswered = 0;
    char buf[4096];
    if (!s_take_frames (self))   //  what came with the handshake
        return;
    while (true) {
        struct pollfd p = { .fd = self->fd, .events = POLLIN };
        int rc = poll (&p, 1, self->hub->ping_ms);
        if (rc == 0) {
            if (++unanswered > S_PINGS_MAX)
                return;
            s_send (self, bus_wsframe_new (0x9, "", 0));
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        ssize_t n = rc < 0 ? -1 : recv (self->fd, buf, sizeof buf, 0);
        if (n < 0
            && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0)
            return;
        unanswered = 0;
        if (bus_wsread_feed (self->reader, buf, (size_t) n) != 0) {
            bus_http_ws_close (self, BUS_WSREAD_NOMEM, "out of memory");
            return;
        }
        if (!s_take_frames (self))
            return;
    }
}

//  After a close frame of ours: no more writes, and what the browser
//  still sends (the rest of a frame too big, its own close) is read and
//  dropped for a moment, so that the close is not lost to a reset (a
//  socket closed with unread data sends RST, and a browser that gets it
//  may drop what came before).
static void
s_linger (bus_http_ws_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool closing = self->close_sent;
    pthread_mutex_unlock (&self->lock);
    if (!closing)
        return;
    shutdown (self->fd, SHUT_WR);
    char buf[4096];
    for (int64_t end = zclock_mono () + S_LINGER_MS;;) {
        int64_t left = end - zclock_mono ();
        struct pollfd p = { .fd = self->fd, .events = POLLIN };
        if (left <= 0 || poll (&p, 1, (int) left) <= 0
            || recv (self->fd, buf, sizeof buf, 0) <= 0)
            break;
    }
}

static void
s_free (bus_http_ws_t *self)
{
    bus_wsread_destroy (&self->reader);
    s_request_free (&self->request);
    pthread_mutex_destroy (&self->lock);
    free (self);
}

static void *
s_thread (void *arg)
{
    bus_http_ws_t *self = (bus_http_ws_t *) arg;
    bus_mhd_ws_hub_t *hub = self->hub;
    //  An edge's browser threads are many and mostly idle: see bus_alloc.h
    if (hub->edge)
        bus_alloc_thread_cache (false);
    if (self->handler->ready)
        self->handler->ready (self, self->handler->arg);
    s_serve (self);
    s_linger (self);
    if (self->handler->close)
        self->handler->close (self, self->handler->arg);
    pthread_mutex_lock (&hub->lock);
    s_unlink (&hub->conns, self);
    pthread_mutex_unlock (&hub->lock);
    //  Closes the socket; no one writes to it any more (the close hook
    //  waited for the fan-out's last write)
    MHD_upgrade_action (self->urh, MHD_UPGRADE_ACTION_CLOSE);
    s_free (self);
    pthread_mutex_lock (&hub->lock);
    hub->threads--;
    pthread_cond_broadcast (&hub->ended);
    pthread_mutex_unlock (&hub->lock);
    return NULL;
}

//  In a Debug build, ORDERBUS_DEBUG_UPGRADE_DELAY_MS=MS (1 to 5000): each
//  upgrade waits that long after its 101 went out, before the socket is
//  taken on, so that integration_site stops an edge in that window every
//  time (bus/CMakeLists.txt defines it for Debug only).  0 otherwise.
static int
s_debug_delay_ms (void)
{
#ifdef ORDERBUS_DEBUG_UPGRADE_DELAY_MS
    const char *text = getenv ("ORDERBUS_DEBUG_UPGRADE_DELAY_MS");
    int ms = text ? atoi (text) : 0;
    if (ms >= 1 && ms <= 5000) {
        zsys_warning ("http: ORDERBUS_DEBUG_UPGRADE_DELAY_MS=%d (a Debug "
                      "build's test switch): each WebSocket upgrade waits "
                      "that long after its 101",
                      ms);
        return ms;
    }
#endif
    return 0;
}

//  Tell a browser the server is going away (1001), if its socket can
//  take the frame now, and hang up: its thread (if it has one yet) sees
//  the end, runs its close hook and goes.
static void
s_goodbye (bus_http_ws_t *ws)
{
    if (pthread_mutex_trylock (&ws->lock) == 0) {
        bus_wsframe_t *frame = bus_wsframe_new_close (1001, "server stopping");
        if (frame)
            s_send_locked (ws, frame, 0);
        bus_wsframe_unref (&frame);
        pthread_mutex_unlock (&ws->lock);
    }
    shutdown (ws->fd, SHUT_RDWR);
}

//  libmicrohttpd turns Nagle's algorithm back on for an upgraded socket;
//  with it, each small event waited for the browser's delayed ACK (~40
//  ms).  On TLS, the socket handed over is one end of a socket pair: the
//  TCP connection is the one libmicrohttpd holds.
static void
s_no_delay (struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int on = 1;
    if (info)
        setsockopt (info->connect_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

//  The 101 went out: the socket is ours.  On the event thread.
static void
s_upgraded (void *cls, struct MHD_Connection *conn, void *req_cls,
            const char *extra_in, size_t extra_in_size, MHD_socket sock,
            struct MHD_UpgradeResponseHandle *urh)
{
    (void) req_cls;
    bus_http_ws_t *self = (bus_http_ws_t *) cls;
    bus_mhd_ws_hub_t *hub = self->hub;
    if (hub->debug_delay_ms)
        zclock_sleep (hub->debug_delay_ms);
    s_no_delay (conn);
    self->urh = urh;
    self->reader = bus_wsread_new (BUS_MHD_WS_MESSAGE_MAX);
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, S_STACK);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    pthread_mutex_lock (&hub->lock);
    s_unlink (&hub->pending, self);
    s_link (&hub->conns, self);
    self->fd = sock;
    int rc =
        hub->stopping ? ECANCELED
        : !self->reader
                || bus_wsread_feed (self->reader, extra_in, extra_in_size) != 0
            ? ENOMEM
            : pthread_create (&thread, &attr, s_thread, self);
    hub->threads += rc == 0;
    if (rc != 0)
        s_unlink (&hub->conns, self);
    pthread_mutex_unlock (&hub->lock);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        //  The stop came between our 101 and this call: the browser has
        //  its 101, so it gets the goodbye the others got
        if (rc == ECANCELED)
            s_goodbye (self);
        else
            zsys_warning ("http: cannot start a thread for a WebSocket (%s): "
                          "closed; see edge/max_clients in "
                          "docs/configuration.md",
                          strerror (rc));
        MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
        s_free (self);
    }
}

//  ---------------------------------------------------------------------
//  The handshake

//  Does header name's value hold token (a comma-separated list, any case)?
static bool
s_has_token (bus_req_t *req, const char *name, const char *token)
{
    const char *value = bus_req_header (req, name);
    size_t len = strlen (token);
    while (value && *value) {
        value += strspn (value, " \t,");
        size_t item = strcspn (value, ",");
        size_t end = item;
        while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end == len && strncasecmp (value, token, len) == 0)
            return true;
        value += item;
    }
    return false;
}

//  The Sec-WebSocket-Accept for key into accept[cap].  False if the key
//  is not 16 bytes in base64.
static bool
s_accept (const char *key, char *accept, size_t cap)
{
    unsigned char raw[32];
    size_t raw_len = 0;
    if (!key || strlen (key) != 24
        || sodium_base642bin (raw, sizeof raw, key, 24, NULL, &raw_len, NULL,
                              sodium_base64_VARIANT_ORIGINAL)
               != 0
        || raw_len != 16)
        return false;
    char joined[24 + sizeof S_GUID];
    snprintf (joined, sizeof joined, "%s%s", key, S_GUID);
    unsigned char digest[20];
    if (gnutls_hash_fast (GNUTLS_DIG_SHA1, joined, strlen (joined), digest)
        != 0)
        return false;
    sodium_bin2base64 (accept, cap, digest, sizeof digest,
                       sodium_base64_VARIANT_ORIGINAL);
    return true;
}

//  A new connection for req, in the hub's pending list; NULL if out of
//  memory.
static bus_http_ws_t *
s_new (bus_mhd_ws_hub_t *hub, struct MHD_Connection *conn, bus_req_t *req,
       const bus_http_ws_handler_t *handler)
{
    bus_http_ws_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    self->hub = hub;
    self->handler = handler;
    self->fd = -1;
    if (s_request_copy (&self->request, conn, req) != 0) {
        s_free (self);
        return NULL;
    }
    pthread_mutex_lock (&hub->lock);
    self->id = ++hub->last_id;
    s_link (&hub->pending, self);
    pthread_mutex_unlock (&hub->lock);
    return self;
}

void
bus_mhd_ws_abandon (bus_mhd_ws_hub_t *self, uint64_t id)
{
    pthread_mutex_lock (&self->lock);
    bus_http_ws_t *ws = self->pending;
    while (ws && ws->id != id)
        ws = ws->next;
    if (ws)
        s_unlink (&self->pending, ws);
    pthread_mutex_unlock (&self->lock);
    if (ws)
        s_free (ws);
}

int
bus_mhd_ws_upgrade (bus_mhd_ws_hub_t *self, struct MHD_Connection *conn,
                    bus_req_t *req, const char *version,
                    const bus_http_ws_handler_t *handler,
                    struct MHD_Response **response, unsigned *status,
                    uint64_t *pending)
{
    char accept[64];
    //  libmicrohttpd upgrades HTTP/1.1 requests only (RFC 6455 4.1)
    if (!streq (req->method, "GET") || !version || !streq (version, "HTTP/1.1")
        || !s_has_token (req, "Upgrade", "websocket")
        || !s_has_token (req, "Connection", "upgrade")
        || !s_accept (bus_req_header (req, "Sec-WebSocket-Key"), accept,
                      sizeof accept)) {
        bus_req_send_error (req, 400, "bad_request",
                            "a WebSocket endpoint: connect with a WebSocket "
                            "client (RFC 6455, over HTTP/1.1)",
                            NULL);
        return BUS_MHD_SITE_ANSWERED;
    }
    const char *ws_version = bus_req_header (req, "Sec-WebSocket-Version");
    if (!ws_version || !streq (ws_version, "13")) {
        bus_req_send_error (req, 426, "bad_request",
                            "WebSocket version 13 only", NULL);
        return BUS_MHD_SITE_ANSWERED;
    }
    //  The hooks after the handshake read a copy of the request (s_new):
    //  it must be the request connect judged, header for header, or a
    //  token past the copy's end could be judged at connect and another
    //  found later (a multi-site node finds a browser's site again)
    if (MHD_get_connection_values (conn, MHD_HEADER_KIND, NULL, NULL)
        > S_HEADERS_MAX) {
        bus_req_send_error (req, 431, "bad_request",
                            "too many headers for a WebSocket upgrade (at "
                            "most " S_HEADERS_MAX_TEXT ")",
                            NULL);
        return BUS_MHD_SITE_ANSWERED;
    }
    if (handler->connect && handler->connect (req, handler->arg) != 0)
        return BUS_MHD_SITE_ANSWERED;
    bus_http_ws_t *ws = s_new (self, conn, req, handler);
    *response = ws ? MHD_create_response_for_upgrade (s_upgraded, ws) : NULL;
    if (*response
        && (MHD_add_response_header (*response, "Upgrade", "websocket")
                != MHD_YES
            || MHD_add_response_header (*response, "Sec-WebSocket-Accept",
                                        accept)
                   != MHD_YES)) {
        MHD_destroy_response (*response);
        *response = NULL;
    }
    if (!*response) {
        if (ws)
            bus_mhd_ws_abandon (self, ws->id);
        bus_req_send_busy (req, "overloaded",
                           "out of memory: try again in a moment");
        return BUS_MHD_SITE_ANSWERED;
    }
    *pending = ws->id;
    *status = MHD_HTTP_SWITCHING_PROTOCOLS;
    return BUS_MHD_SITE_RESPONSE;
}

//  ---------------------------------------------------------------------
//  The hub

bus_mhd_ws_hub_t *
bus_mhd_ws_hub_new (const bus_config_t *config)
{
    bus_mhd_ws_hub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ping_ms = config->ws_ping_ms;
    self->edge = config->role == BUS_ROLE_EDGE;
    self->debug_delay_ms = s_debug_delay_ms ();
    pthread_mutex_init (&self->lock, NULL);
    //  Waited on by the monotonic clock: a wall clock set back would
    //  stall a stop
    pthread_condattr_t monotonic;
    pthread_condattr_init (&monotonic);
    pthread_condattr_setclock (&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init (&self->ended, &monotonic);
    pthread_condattr_destroy (&monotonic);
    return self;
}

bool
bus_mhd_ws_hub_stop (bus_mhd_ws_hub_t *self, int wait_ms)
{
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    for (bus_http_ws_t *ws = self->conns; ws; ws = ws->next)
        s_goodbye (ws);
    int rc = 0;
    while (self->threads > 0 && rc == 0)
        rc = pthread_cond_timedwait (&self->ended, &self->lock, &until);
    int left = self->threads;
    pthread_mutex_unlock (&self->lock);
    if (left > 0)
        zsys_error ("http: %d WebSocket thread(s) still running after %d ms",
                    left, wait_ms);
    return left == 0;
}

void
bus_mhd_ws_hub_destroy (bus_mhd_ws_hub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_mhd_ws_hub_t *self = *self_p;
    *self_p = NULL;
    if (self->threads > 0)
        return;   //  left to the process's end rather than freed under them
    //  Upgrades answered whose request has not ended yet
    while (self->pending) {
        bus_http_ws_t *ws = self->pending;
        s_unlink (&self->pending, ws);
        s_free (ws);
    }
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->ended);
    free (self);
}
