/*  bench_net.h — non-blocking client connections and the wire formats the
    bench speaks: HTTP/1.1 (keep-alive), WebSocket (RFC 6455, client side),
    Engine.IO v4 / Socket.IO v5 text packets, the NATS text protocol and
    Redis RESP (replies parsed with hiredis' reader).

    These are framing codecs for a load generator, not general clients:
    each one understands exactly what the bench sends and receives, and
    treats payloads as opaque bytes.  */

#ifndef BENCH_NET_H_INCLUDED
#define BENCH_NET_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ws_client.h"

typedef struct {
    char host[128];
    int port;
    char path[512];   //  "/..." including any query, "/" if none
} bench_url_t;

/*  Parse "scheme://host:port/path" (scheme optional, "host:port" alone is
    fine); default_port when the URL names none.  0 or -1.  */
int bench_url_parse (const char *text, int default_port, bench_url_t *url);

//  ---------------------------------------------------------------------
//  A buffered non-blocking TCP connection

typedef struct {
    int fd;
    char *in;   //  received bytes [in_off, in_len)
    size_t in_off, in_len, in_cap;
    char *out;   //  bytes to send [out_off, out_len)
    size_t out_off, out_len, out_cap;
    bool want_out;   //  registered for EPOLLOUT
    void *tls;       //  OpenSSL's SSL *, NULL for plain TCP
} bench_conn_t;

/*  Start connecting to host:port (non-blocking, TCP_NODELAY).  0 or -1.  */
int bench_conn_open (bench_conn_t *conn, const char *host, int port);

/*  TLS for the HTTP client (--tls, --ca): a client context, trusting only
    the PEM certificate ca and checking it names the host, or with ca NULL
    checking nothing.  NULL with err set on failure; bench_tls_free frees.  */
void *bench_tls_new (const char *ca, char *err, size_t err_cap);
void bench_tls_free (void *ctx);

/*  Speak TLS on conn, just opened, to host: the handshake runs inside
    the first flushes and fills (a flush waiting for the server's half of
    it returns 0, so the caller keeps EPOLLOUT and spins until it comes:
    once per connection).  0 or -1.  */
int bench_conn_tls (bench_conn_t *conn, void *ctx, const char *host);
void bench_conn_close (bench_conn_t *conn);
/*  Queue bytes; 0 or -1 (out of memory).  */
int bench_conn_queue (bench_conn_t *conn, const void *data, size_t len);
/*  Write queued bytes.  Returns 1 if all are written, 0 if some remain
    (wait for EPOLLOUT), -1 on error.  */
int bench_conn_flush (bench_conn_t *conn);
/*  Read what the socket has (at most cap_hint more bytes per call).
    Returns bytes read, 0 if nothing was ready, -1 on EOF or error.  */
ssize_t bench_conn_fill (bench_conn_t *conn);
/*  Drop n bytes from the front of the input.  */
void bench_conn_consume (bench_conn_t *conn, size_t n);
static inline const char *
bench_conn_data (const bench_conn_t *conn)
{
    return conn->in + conn->in_off;
}
static inline size_t
bench_conn_size (const bench_conn_t *conn)
{
    return conn->in_len - conn->in_off;
}

/*  epoll: register (EPOLLIN) / update EPOLLOUT interest to match
    want_out.  ptr is returned in events.  */
int bench_epoll_add (int epfd, bench_conn_t *conn, void *ptr);
void bench_epoll_want_out (int epfd, bench_conn_t *conn, void *ptr, bool want);

//  ---------------------------------------------------------------------
//  HTTP/1.1

/*  Parse one response at data[len].  Returns 1 with *status and *consumed
    (header + body) when complete, 0 if more bytes are needed, -1 if it is
    not HTTP.  *close is set if the server said Connection: close.  */
int bench_http_response (const char *data, size_t len, int *status,
                         size_t *consumed, bool *close);

//  ---------------------------------------------------------------------
//  WebSocket: the codec is ws_client.h, shared with the tests

/*  Queue the upgrade request for url.  */
int bench_ws_handshake (bench_conn_t *conn, const bench_url_t *url);
/*  Parse the upgrade response: 1 (101, *consumed set), 0 need more,
    -1 refused.  */
int bench_ws_handshake_done (const char *data, size_t len, size_t *consumed);

/*  A server frame: ws_client.h's (fin, opcode, payload and len are what
    the bench reads).  */
typedef ws_client_frame_t bench_ws_frame_t;

/*  Parse one server frame: 1 with *frame and *consumed, 0 need more,
    -1 malformed (masked, or a length over max).  */
int bench_ws_frame (const char *data, size_t len, size_t max,
                    bench_ws_frame_t *frame, size_t *consumed);
/*  Queue a masked client frame.  */
int bench_ws_send (bench_conn_t *conn, int opcode, const void *payload,
                   size_t len);

//  ---------------------------------------------------------------------
//  NATS text protocol (server -> client)

typedef enum {
    BENCH_NATS_INFO = 1,
    BENCH_NATS_MSG,
    BENCH_NATS_PING,
    BENCH_NATS_PONG,
    BENCH_NATS_OK,
    BENCH_NATS_ERR
} bench_nats_op_t;

typedef struct {
    bench_nats_op_t op;
    const char *subject;   //  MSG: subject (not NUL-terminated)
    size_t subject_len;
    const char *payload;   //  MSG: payload; ERR/INFO: the line
    size_t len;
} bench_nats_msg_t;

/*  1 with *msg and *consumed, 0 need more, -1 malformed.  */
int bench_nats_parse (const char *data, size_t len, bench_nats_msg_t *msg,
                      size_t *consumed);

//  ---------------------------------------------------------------------
//  Redis RESP: commands out (arrays of bulk strings)

int bench_resp_command (bench_conn_t *conn, int argc, const char **argv,
                        const size_t *lens);

/*  Replies in: hiredis' reader does the parsing.  Without hiredis at
    build time, bench_resp_reader_new returns NULL.  */
typedef struct _bench_resp_reader_t bench_resp_reader_t;

typedef struct {
    bool error;         //  an error reply
    const char *kind;   //  array reply: its first element, else NULL
    size_t kind_len;
    const char *last;   //  array reply: its last element
    size_t last_len;
} bench_resp_reply_t;

bench_resp_reader_t *bench_resp_reader_new (void);
void bench_resp_reader_destroy (bench_resp_reader_t **self_p);
/*  Take received bytes.  0 or -1.  */
int bench_resp_feed (bench_resp_reader_t *self, const char *data, size_t len);
/*  The next complete reply: 1 (valid until the next call), 0 none yet,
    -1 protocol error.  */
int bench_resp_next (bench_resp_reader_t *self, bench_resp_reply_t *reply);

#endif
