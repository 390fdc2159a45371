/*  tk_ws.c — the testkit's two WebSocket clients: civetweb's (a browser
    that gets JSON messages) and one by hand on a plain socket, for
    clients civetweb's would not be.  */

#include <civetweb.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>
#include "tk_internal.h"
#include "ws_client.h"

//  ---------------------------------------------------------------------
//  WebSocket

typedef struct s_text {
    char *text;
    int64_t at; /* tk_now_ms when it arrived */
    struct s_text *next;
} s_text_t;

struct _tk_ws_t {
    struct mg_connection *conn;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    s_text_t *head, *tail;
    bool closed;
};

static int
s_ws_data (struct mg_connection *conn, int flags, char *data, size_t len,
           void *arg)
{
    tk_ws_t *ws = (tk_ws_t *) arg;
    if ((flags & 0xf) != MG_WEBSOCKET_OPCODE_TEXT)
        return 1;
    s_text_t *item = calloc (1, sizeof *item);
    item->text = strndup (data, len);
    item->at = tk_now_ms ();
    pthread_mutex_lock (&ws->lock);
    if (ws->tail)
        ws->tail->next = item;
    else
        ws->head = item;
    ws->tail = item;
    pthread_cond_signal (&ws->cond);
    pthread_mutex_unlock (&ws->lock);
    return 1;
}

static void
s_ws_close (const struct mg_connection *conn, void *arg)
{
    tk_ws_t *ws = (tk_ws_t *) arg;
    pthread_mutex_lock (&ws->lock);
    ws->closed = true;
    pthread_cond_signal (&ws->cond);
    pthread_mutex_unlock (&ws->lock);
}

tk_ws_t *
tk_ws_open (int port, const char *path)
{
    tk_ws_t *ws = calloc (1, sizeof *ws);
    pthread_mutex_init (&ws->lock, NULL);
    pthread_cond_init (&ws->cond, NULL);
    char err[256], signed_path[1024];
    ws->conn = mg_connect_websocket_client (
        tk__port_addr (port), port, tk__tls (), err, sizeof err,
        tk__auth_path (port, path, signed_path, sizeof signed_path), NULL,
        s_ws_data, s_ws_close, ws);
    if (!ws->conn) {
        fprintf (stderr, "websocket to port %d%s: %s\n", port, path, err);
        free (ws);
        return NULL;
    }
    return ws;
}

json_t *
tk_ws_next (tk_ws_t *ws, int timeout_ms)
{
    return tk_ws_next_at (ws, timeout_ms, NULL);
}

//  The time timeout_ms from now on clock, for pthread_cond_timedwait.
void
tk__deadline (clockid_t clock, int timeout_ms, struct timespec *ts)
{
    clock_gettime (clock, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

json_t *
tk_ws_next_at (tk_ws_t *ws, int timeout_ms, int64_t *arrived_ms)
{
    struct timespec ts;
    tk__deadline (CLOCK_REALTIME, timeout_ms, &ts);
    pthread_mutex_lock (&ws->lock);
    while (!ws->head && !ws->closed)
        if (pthread_cond_timedwait (&ws->cond, &ws->lock, &ts) == ETIMEDOUT)
            break;
    s_text_t *item = ws->head;
    if (item) {
        ws->head = item->next;
        if (!ws->head)
            ws->tail = NULL;
    }
    pthread_mutex_unlock (&ws->lock);
    if (!item)
        return NULL;
    if (arrived_ms)
        *arrived_ms = item->at;
    json_t *json = json_loads (item->text, 0, NULL);
    free (item->text);
    free (item);
    return json;
}

bool
tk_ws_closed (tk_ws_t *ws)
{
    pthread_mutex_lock (&ws->lock);
    bool closed = ws->closed;
    pthread_mutex_unlock (&ws->lock);
    return closed;
}

void
tk_ws_close (tk_ws_t **ws_p)
{
    tk_ws_t *ws = *ws_p;
    if (!ws)
        return;
    mg_close_connection (ws->conn);
    for (s_text_t *item = ws->head, *next; item; item = next) {
        next = item->next;
        free (item->text);
        free (item);
    }
    pthread_mutex_destroy (&ws->lock);
    pthread_cond_destroy (&ws->cond);
    free (ws);
    *ws_p = NULL;
}

int
tk_ws_send (tk_ws_t *ws, int opcode, const void *data, size_t len)
{
    return mg_websocket_client_write (ws->conn, opcode, (const char *) data,
                                      len)
                       > 0
                   || len == 0
               ? 0
               : -1;
}
//  civetweb's client leaves pings to the data handler and does not answer
//  them itself; a browser always does, and an edge drops a browser whose
//  pings go unanswered.  So a follower answers them, as a browser would.
static int
s_ws_data_pong (struct mg_connection *conn, int flags, char *data, size_t len,
                void *arg)
{
    if ((flags & 0xf) == MG_WEBSOCKET_OPCODE_PING)
        mg_websocket_client_write (conn, MG_WEBSOCKET_OPCODE_PONG, data, len);
    return s_ws_data (conn, flags, data, len, arg);
}

//  tk_ws_open without the complaint (a follower retries quietly while its
//  edge is down), and answering pings.
tk_ws_t *
tk__ws_try_open (int port, const char *path)
{
    tk_ws_t *ws = calloc (1, sizeof *ws);
    pthread_mutex_init (&ws->lock, NULL);
    pthread_cond_init (&ws->cond, NULL);
    char err[256], signed_path[1024];
    ws->conn = mg_connect_websocket_client (
        tk__port_addr (port), port, tk__tls (), err, sizeof err,
        tk__auth_path (port, path, signed_path, sizeof signed_path), NULL,
        s_ws_data_pong, s_ws_close, ws);
    if (!ws->conn) {
        pthread_mutex_destroy (&ws->lock);
        pthread_cond_destroy (&ws->cond);
        free (ws);
        return NULL;
    }
    return ws;
}
//  ---------------------------------------------------------------------
//  WebSocket by hand

int
tk_ws_raw_open (int port, const char *path, int rcvbuf)
{
    int fd = tk__tcp_connect (port, rcvbuf);
    if (fd < 0)
        return -1;
    char request[2048], signed_path[1024];
    int len = ws_client_request (
        request, sizeof request, tk__port_addr (port), port,
        tk__auth_path (port, path, signed_path, sizeof signed_path),
        WS_CLIENT_SAMPLE_KEY);
    struct timeval tv = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    //  Byte by byte, so no frame after the headers is consumed here
    char head[4096];
    size_t used = 0;
    if (len > 0 && tk__send_all (fd, request, (size_t) len) == 0)
        while (used < sizeof head - 1 && recv (fd, head + used, 1, 0) == 1)
            if (++used >= 4 && memcmp (head + used - 4, "\r\n\r\n", 4) == 0)
                break;
    head[used] = '\0';
    struct timeval none = { 0, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    size_t consumed;
    if (ws_client_response (head, used, &consumed) != 1) {
        close (fd);
        return -1;
    }
    return fd;
}

int
tk_ws_raw_send (int fd, unsigned char first_byte, const void *data, size_t len,
                bool masked)
{
    static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    unsigned char head[WS_CLIENT_HEAD_MAX];
    size_t h =
        ws_client_head_encode (head, first_byte, len, masked ? key : NULL);
    unsigned char *payload = malloc (len ? len : 1);
    if (masked)
        ws_client_mask (payload, data, len, key, 0);
    else if (len)
        memcpy (payload, data, len);
    int rc =
        tk__send_all (fd, head, h) == 0 && tk__send_all (fd, payload, len) == 0
            ? 0
            : -1;
    free (payload);
    return rc;
}

//  Exactly n bytes into buf (NULL: discard), or -1 on EOF/timeout.
static int
s_recv_exact (int fd, unsigned char *buf, size_t n, int64_t deadline)
{
    unsigned char scrap[4096];
    while (n > 0) {
        struct pollfd p = { fd, POLLIN, 0 };
        int64_t left = deadline - tk_now_ms ();
        if (left <= 0 || poll (&p, 1, (int) left) <= 0)
            return -1;
        size_t want = buf ? n : (n < sizeof scrap ? n : sizeof scrap);
        ssize_t got = recv (fd, buf ? buf : scrap, want, 0);
        if (got <= 0)
            return -1;
        n -= (size_t) got;
        if (buf)
            buf += got;
    }
    return 0;
}

int
tk_ws_raw_read_frame (int fd, int timeout_ms, char *buf, size_t cap,
                      size_t *len)
{
    int64_t deadline = tk_now_ms () + timeout_ms;
    unsigned char head[WS_CLIENT_HEAD_MAX];
    if (s_recv_exact (fd, head, 2, deadline) != 0)
        return -1;
    //  The rest of the header (length, any mask key) before the payload
    size_t h = ws_client_head_size (head[1]);
    if (s_recv_exact (fd, head + 2, h - 2, deadline) != 0)
        return -1;
    ws_client_frame_t frame;
    uint64_t n;
    if (ws_client_head (head, h, &frame, &n) != h)
        return -1;   //  cannot be: h is the size this header said it has
    size_t keep = buf && cap ? (n < cap - 1 ? (size_t) n : cap - 1) : 0;
    if (s_recv_exact (fd, (unsigned char *) buf, keep, deadline) != 0
        || s_recv_exact (fd, NULL, (size_t) n - keep, deadline) != 0)
        return -1;
    if (buf && cap)
        buf[keep] = '\0';
    *len = (size_t) n;
    return frame.opcode;
}

void
tk_ws_raw_drain (int fd, int timeout_ms, tk_ws_raw_end_t *end)
{
    memset (end, 0, sizeof *end);
    end->close_code = -1;
    size_t cap = 1 << 20, used = 0, pos = 0;
    unsigned char *buf = malloc (cap);
    while (true) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll (&p, 1, timeout_ms) <= 0) {
            end->timeout = true;
            break;
        }
        if (cap - used < 65536) {
            memmove (buf, buf + pos, used - pos);   //  keep the unparsed tail
            used -= pos;
            pos = 0;
            if (cap - used < 65536)
                buf = realloc (buf, cap *= 2);
        }
        ssize_t n = recv (fd, buf + used, cap - used, 0);
        if (n <= 0) {
            end->eof = true;
            end->reset = n < 0 && errno == ECONNRESET;
            break;
        }
        used += (size_t) n;
        end->bytes += (size_t) n;
        ws_client_frame_t f;
        size_t flen;
        bool closed = false;
        while (ws_client_frame (buf + pos, used - pos, UINT64_MAX, &f, &flen)
               == 1) {
            //  No extension was negotiated, so RSV bits must be 0; our
            //  server only sends JSON objects as text
            bool sane = f.rsv == 0
                        && (f.opcode <= 2 || (f.opcode >= 8 && f.opcode <= 10))
                        && (f.opcode != WS_CLIENT_TEXT
                            || (f.len > 0 && f.payload[0] == '{'));
            if (!sane) {
                end->garbled = true;
                end->garbled_at = end->bytes - (used - pos);
                closed = true;
                break;
            }
            pos += flen;
            end->frames++;
            end->text_frames += f.opcode == WS_CLIENT_TEXT;
            if (f.opcode == WS_CLIENT_CLOSE) {
                const unsigned char *code = (const unsigned char *) f.payload;
                end->close_code = f.len >= 2 ? code[0] << 8 | code[1] : 0;
                closed = true;
                break;
            }
        }
        if (closed)
            break;
    }
    free (buf);
}
