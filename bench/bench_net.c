/*  bench_net.c — connections and framing for the load generators.  */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#ifdef BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif
#include "bench.h"
#include "bench_net.h"

#define S_READ_CHUNK 16384                  //  free space kept for one read
#define S_IN_MAX     (512u * 1024 * 1024)   //  a bigger message is an error

int
bench_url_parse (const char *text, int default_port, bench_url_t *url)
{
    memset (url, 0, sizeof *url);
    const char *p = strstr (text, "://");
    p = p ? p + 3 : text;
    const char *slash = strchr (p, '/');
    const char *host_end = slash ? slash : p + strlen (p);
    const char *colon = memchr (p, ':', (size_t) (host_end - p));
    const char *name_end = colon ? colon : host_end;
    if (name_end == p || (size_t) (name_end - p) >= sizeof url->host)
        return -1;
    memcpy (url->host, p, (size_t) (name_end - p));
    url->port = colon ? atoi (colon + 1) : default_port;
    snprintf (url->path, sizeof url->path, "%s", slash ? slash : "/");
    return url->port > 0 && url->port < 65536 ? 0 : -1;
}

//  ---------------------------------------------------------------------
//  Connections

int
bench_conn_open (bench_conn_t *conn, const char *host, int port)
{
    memset (conn, 0, sizeof *conn);
    conn->fd = -1;
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons (port) };
    if (inet_pton (AF_INET, host, &addr.sin_addr) != 1) {
        struct hostent *he = gethostbyname (host);   //  "localhost"
        if (!he || he->h_addrtype != AF_INET)
            return -1;
        memcpy (&addr.sin_addr, he->h_addr_list[0], sizeof addr.sin_addr);
    }
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0
        && errno != EINPROGRESS) {
        close (fd);
        return -1;
    }
    conn->fd = fd;
    return 0;
}

void *
bench_tls_new (const char *ca, char *err, size_t err_cap)
{
    SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
    if (ctx && ca && SSL_CTX_load_verify_locations (ctx, ca, NULL) != 1) {
        SSL_CTX_free (ctx);
        ctx = NULL;
    }
    if (!ctx) {
        snprintf (err, err_cap, "TLS: cannot use %s as the CA",
                  ca ? ca : "(none)");
        ERR_clear_error ();
        return NULL;
    }
    SSL_CTX_set_verify (ctx, ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    //  bench_conn_queue may move the bytes a write was waiting with, and
    //  add to them
    SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                               | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

void
bench_tls_free (void *ctx)
{
    SSL_CTX_free ((SSL_CTX *) ctx);
}

int
bench_conn_tls (bench_conn_t *conn, void *ctx, const char *host)
{
    SSL *ssl = SSL_new ((SSL_CTX *) ctx);
    if (!ssl || SSL_set_fd (ssl, conn->fd) != 1) {
        SSL_free (ssl);
        return -1;
    }
    //  the name the certificate must have: an address, or a host name
    //  (also sent as SNI)
    X509_VERIFY_PARAM *param = SSL_get0_param (ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc (param, host) != 1) {
        X509_VERIFY_PARAM_set1_host (param, host, 0);
        SSL_set_tlsext_host_name (ssl, host);
    }
    SSL_set_connect_state (ssl);
    conn->tls = ssl;
    return 0;
}

//  bench_conn_flush on TLS
static int
s_tls_flush (bench_conn_t *conn)
{
    while (conn->out_off < conn->out_len) {
        int n = SSL_write ((SSL *) conn->tls, conn->out + conn->out_off,
                           (int) (conn->out_len - conn->out_off));
        if (n > 0) {
            conn->out_off += (size_t) n;
            continue;
        }
        int why = SSL_get_error ((SSL *) conn->tls, n);
        ERR_clear_error ();
        return why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE ? 0
                                                                         : -1;
    }
    conn->out_off = conn->out_len = 0;
    return 1;
}

static int s_in_room (bench_conn_t *conn);

//  bench_conn_fill on TLS: all OpenSSL has, since epoll cannot see what
//  it holds already decrypted
static ssize_t
s_tls_fill (bench_conn_t *conn)
{
    ssize_t total = 0;
    for (;;) {
        if (s_in_room (conn) != 0)
            return -1;
        int n = SSL_read ((SSL *) conn->tls, conn->in + conn->in_len,
                          (int) (conn->in_cap - conn->in_len));
        if (n > 0) {
            conn->in_len += (size_t) n;
            total += n;
            continue;
        }
        int why = SSL_get_error ((SSL *) conn->tls, n);
        ERR_clear_error ();
        if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE)
            return total;
        return total > 0 ? total : -1;
    }
}

void
bench_conn_close (bench_conn_t *conn)
{
    SSL_free ((SSL *) conn->tls);
    conn->tls = NULL;
    if (conn->fd >= 0)
        close (conn->fd);
    conn->fd = -1;
    free (conn->in);
    free (conn->out);
    conn->in = conn->out = NULL;
    conn->in_off = conn->in_len = conn->in_cap = 0;
    conn->out_off = conn->out_len = conn->out_cap = 0;
    conn->want_out = false;
}

int
bench_conn_queue (bench_conn_t *conn, const void *data, size_t len)
{
    if (conn->out_off == conn->out_len)
        conn->out_off = conn->out_len = 0;
    if (conn->out_len + len > conn->out_cap) {
        if (conn->out_off > 0) {   //  reuse the space already sent
            memmove (conn->out, conn->out + conn->out_off,
                     conn->out_len - conn->out_off);
            conn->out_len -= conn->out_off;
            conn->out_off = 0;
        }
        size_t cap = conn->out_cap ? conn->out_cap : 4096;
        while (cap < conn->out_len + len)
            cap *= 2;
        if (cap != conn->out_cap) {
            char *out = realloc (conn->out, cap);
            if (!out)
                return -1;
            conn->out = out;
            conn->out_cap = cap;
        }
    }
    memcpy (conn->out + conn->out_len, data, len);
    conn->out_len += len;
    return 0;
}

int
bench_conn_flush (bench_conn_t *conn)
{
    if (conn->tls)
        return s_tls_flush (conn);
    while (conn->out_off < conn->out_len) {
        ssize_t n = send (conn->fd, conn->out + conn->out_off,
                          conn->out_len - conn->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        conn->out_off += (size_t) n;
    }
    conn->out_off = conn->out_len = 0;
    return 1;
}

//  Make room for one more read: compact, then grow.  0 or -1.
static int
s_in_room (bench_conn_t *conn)
{
    if (conn->in_off == conn->in_len)
        conn->in_off = conn->in_len = 0;
    if (conn->in_cap - conn->in_len >= S_READ_CHUNK / 4 && conn->in)
        return 0;
    if (conn->in_off > 0) {
        memmove (conn->in, conn->in + conn->in_off,
                 conn->in_len - conn->in_off);
        conn->in_len -= conn->in_off;
        conn->in_off = 0;
        if (conn->in_cap - conn->in_len >= S_READ_CHUNK / 4)
            return 0;
    }
    size_t cap = conn->in_cap ? conn->in_cap * 2 : 4096;
    if (cap > S_IN_MAX)
        return -1;
    char *in = realloc (conn->in, cap);
    if (!in)
        return -1;
    conn->in = in;
    conn->in_cap = cap;
    return 0;
}

ssize_t
bench_conn_fill (bench_conn_t *conn)
{
    if (conn->tls)
        return s_tls_fill (conn);
    if (s_in_room (conn) != 0)
        return -1;
    ssize_t n = recv (conn->fd, conn->in + conn->in_len,
                      conn->in_cap - conn->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    conn->in_len += (size_t) n;
    return n;
}

void
bench_conn_consume (bench_conn_t *conn, size_t n)
{
    conn->in_off += n;
    if (conn->in_off >= conn->in_len)
        conn->in_off = conn->in_len = 0;
}

int
bench_epoll_add (int epfd, bench_conn_t *conn, void *ptr)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = ptr };
    conn->want_out = true;   //  EPOLLOUT tells us the connect finished
    return epoll_ctl (epfd, EPOLL_CTL_ADD, conn->fd, &ev);
}

void
bench_epoll_want_out (int epfd, bench_conn_t *conn, void *ptr, bool want)
{
    if (conn->want_out == want || conn->fd < 0)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
                              .data.ptr = ptr };
    epoll_ctl (epfd, EPOLL_CTL_MOD, conn->fd, &ev);
    conn->want_out = want;
}

//  ---------------------------------------------------------------------
//  HTTP/1.1 responses

//  Does the header block [p, end) have "name: ...value..." (case-blind)?
static const char *
s_header (const char *p, const char *end, const char *name)
{
    size_t nlen = strlen (name);
    while (p < end) {
        const char *eol = memmem (p, (size_t) (end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t) (eol - p) > nlen && strncasecmp (p, name, nlen) == 0
            && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

//  Size of a chunked body at data[len]: 1 with *size, 0 incomplete, -1 bad.
static int
s_chunked (const char *data, size_t len, size_t *size)
{
    size_t at = 0;
    while (true) {
        const char *eol = memmem (data + at, len - at, "\r\n", 2);
        if (!eol)
            return 0;
        char *end;
        unsigned long chunk = strtoul (data + at, &end, 16);
        if (end == data + at)
            return -1;
        at = (size_t) (eol - data) + 2;
        if (chunk == 0) {   //  no trailers from the servers we measure
            if (len - at < 2)
                return 0;
            *size = at + 2;
            return 1;
        }
        if (len - at < chunk + 2)
            return 0;
        at += chunk + 2;
    }
}

int
bench_http_response (const char *data, size_t len, int *status,
                     size_t *consumed, bool *close)
{
    if (len >= 5 && memcmp (data, "HTTP/", 5) != 0)
        return -1;
    const char *end = memmem (data, len, "\r\n\r\n", 4);
    if (!end)
        return len > 65536 ? -1 : 0;
    const char *sp = memchr (data, ' ', (size_t) (end - data));
    if (!sp)
        return -1;
    *status = atoi (sp + 1);
    const char *headers = memmem (data, (size_t) (end - data), "\r\n", 2);
    headers = headers ? headers + 2 : end;
    size_t head = (size_t) (end - data) + 4;
    const char *conn = s_header (headers, end, "Connection");
    *close = conn && strncasecmp (conn, "close", 5) == 0;
    const char *te = s_header (headers, end, "Transfer-Encoding");
    if (te && strncasecmp (te, "chunked", 7) == 0) {
        size_t body;
        int rc = s_chunked (data + head, len - head, &body);
        if (rc == 1)
            *consumed = head + body;
        return rc;
    }
    const char *cl = s_header (headers, end, "Content-Length");
    size_t body = cl ? (size_t) strtoull (cl, NULL, 10) : 0;
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200))
        body = 0;
    if (len - head < body)
        return 0;
    *consumed = head + body;
    return 1;
}

//  ---------------------------------------------------------------------
//  WebSocket

static uint64_t s_rng = 0x9E3779B97F4A7C15ULL;

static uint32_t
s_random (void)
{
    //  xorshift64*: masking keys only need to vary, not to be secret
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (uint32_t) ((s_rng * 0x2545F4914F6CDD1DULL) >> 32);
}

int
bench_ws_handshake (bench_conn_t *conn, const bench_url_t *url)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[25];
    for (int i = 0; i < 21; i++)
        key[i] = b64[s_random () % 64];
    key[21] = b64[(s_random () % 4) * 16];   //  16 bytes encode to 22 chars
    key[22] = key[23] = '=';
    key[24] = '\0';
    char req[1024];
    int len = ws_client_request (req, sizeof req, url->host, url->port,
                                 url->path, key);
    if (len < 0)
        return -1;
    return bench_conn_queue (conn, req, (size_t) len);
}

int
bench_ws_handshake_done (const char *data, size_t len, size_t *consumed)
{
    return ws_client_response (data, len, consumed);
}

int
bench_ws_frame (const char *data, size_t len, size_t max,
                bench_ws_frame_t *frame, size_t *consumed)
{
    if (len >= 2 && (data[1] & 0x80))
        return -1;   //  servers never mask
    return ws_client_frame (data, len, max, frame, consumed);
}

int
bench_ws_send (bench_conn_t *conn, int opcode, const void *payload, size_t len)
{
    unsigned char head[WS_CLIENT_HEAD_MAX];
    uint32_t mask = s_random ();
    size_t hlen = ws_client_head_encode (
        head, (unsigned char) (WS_CLIENT_FIN | (opcode & 0x0f)), len,
        (const unsigned char *) &mask);
    const unsigned char *key = head + hlen - 4;
    if (bench_conn_queue (conn, head, hlen) != 0)
        return -1;
    char masked[4096];
    const unsigned char *in = payload;
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof masked ? len - done : sizeof masked;
        ws_client_mask (masked, in + done, n, key, done);
        if (bench_conn_queue (conn, masked, n) != 0)
            return -1;
        done += n;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  NATS

int
bench_nats_parse (const char *data, size_t len, bench_nats_msg_t *msg,
                  size_t *consumed)
{
    const char *eol = memmem (data, len, "\r\n", 2);
    if (!eol)
        return len > 65536 ? -1 : 0;
    size_t line = (size_t) (eol - data);
    memset (msg, 0, sizeof *msg);
    msg->payload = data;
    msg->len = line;
    *consumed = line + 2;
    if (line >= 4 && strncasecmp (data, "MSG ", 4) == 0) {
        //  MSG <subject> <sid> [reply-to] <#bytes>
        const char *subject = data + 4;
        const char *sp = memchr (subject, ' ', (size_t) (eol - subject));
        const char *last = memrchr (data, ' ', line);
        if (!sp || !last || last < sp)
            return -1;
        size_t bytes = (size_t) strtoull (last + 1, NULL, 10);
        if (len - *consumed < bytes + 2)
            return 0;
        msg->op = BENCH_NATS_MSG;
        msg->subject = subject;
        msg->subject_len = (size_t) (sp - subject);
        msg->payload = data + *consumed;
        msg->len = bytes;
        *consumed += bytes + 2;
        return 1;
    }
    if (line >= 4 && strncasecmp (data, "PING", 4) == 0)
        msg->op = BENCH_NATS_PING;
    else if (line >= 4 && strncasecmp (data, "PONG", 4) == 0)
        msg->op = BENCH_NATS_PONG;
    else if (line >= 3 && strncasecmp (data, "+OK", 3) == 0)
        msg->op = BENCH_NATS_OK;
    else if (line >= 4 && strncasecmp (data, "-ERR", 4) == 0)
        msg->op = BENCH_NATS_ERR;
    else if (line >= 4 && strncasecmp (data, "INFO", 4) == 0)
        msg->op = BENCH_NATS_INFO;
    else
        return -1;
    return 1;
}

//  ---------------------------------------------------------------------
//  RESP

int
bench_resp_command (bench_conn_t *conn, int argc, const char **argv,
                    const size_t *lens)
{
    char head[32];
    int n = snprintf (head, sizeof head, "*%d\r\n", argc);
    if (bench_conn_queue (conn, head, (size_t) n) != 0)
        return -1;
    for (int i = 0; i < argc; i++) {
        n = snprintf (head, sizeof head, "$%zu\r\n", lens[i]);
        if (bench_conn_queue (conn, head, (size_t) n) != 0
            || bench_conn_queue (conn, argv[i], lens[i]) != 0
            || bench_conn_queue (conn, "\r\n", 2) != 0)
            return -1;
    }
    return 0;
}

#ifdef BENCH_HAVE_HIREDIS

struct _bench_resp_reader_t {
    redisReader *reader;
    redisReply *reply;   //  the last reply handed out
};

bench_resp_reader_t *
bench_resp_reader_new (void)
{
    bench_resp_reader_t *self = calloc (1, sizeof *self);
    if (self && !(self->reader = redisReaderCreate ())) {
        free (self);
        self = NULL;
    }
    return self;
}

void
bench_resp_reader_destroy (bench_resp_reader_t **self_p)
{
    bench_resp_reader_t *self = *self_p;
    if (!self)
        return;
    if (self->reply)
        freeReplyObject (self->reply);
    redisReaderFree (self->reader);
    free (self);
    *self_p = NULL;
}

int
bench_resp_feed (bench_resp_reader_t *self, const char *data, size_t len)
{
    return redisReaderFeed (self->reader, data, len) == REDIS_OK ? 0 : -1;
}

int
bench_resp_next (bench_resp_reader_t *self, bench_resp_reply_t *out)
{
    if (self->reply)
        freeReplyObject (self->reply);
    self->reply = NULL;
    void *reply = NULL;
    if (redisReaderGetReply (self->reader, &reply) != REDIS_OK)
        return -1;
    if (!reply)
        return 0;
    redisReply *r = self->reply = reply;
    memset (out, 0, sizeof *out);
    out->error = r->type == REDIS_REPLY_ERROR;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1
        && r->element[0]->type == REDIS_REPLY_STRING) {
        redisReply *last = r->element[r->elements - 1];
        out->kind = r->element[0]->str;
        out->kind_len = r->element[0]->len;
        out->last = last->type == REDIS_REPLY_STRING ? last->str : NULL;
        out->last_len = last->type == REDIS_REPLY_STRING ? last->len : 0;
    }
    return 1;
}

#else

bench_resp_reader_t *
bench_resp_reader_new (void)
{
    fprintf (stderr, "orderbus-bench: built without hiredis: no Redis\n");
    return NULL;
}

void
bench_resp_reader_destroy (bench_resp_reader_t **self_p)
{
    *self_p = NULL;
}

int
bench_resp_feed (bench_resp_reader_t *self, const char *data, size_t len)
{
    return -1;
}

int
bench_resp_next (bench_resp_reader_t *self, bench_resp_reply_t *reply)
{
    return -1;
}

#endif
