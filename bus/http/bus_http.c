/*  bus_http.c — the civetweb server: setup, routes, requests as bus_req_t.  */

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <assert.h>
#include <czmq.h>
#include <civetweb.h>
#include <openssl/ssl.h>
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_http.h"
#include "orderbus/bus_wsframe.h"

//  The server (civetweb's user data): its routes, and the context they
//  go on
struct _bus_http_t {
    bus_req_router_t *router;
    struct mg_context *ctx;
    bool tls;                      //  the port speaks only TLS
    char tls_cert[BUS_PATH_MAX];   //  its files, which s_init_ssl loads
    char tls_key[BUS_PATH_MAX];
    char headers[512];          //  on every answer (bus_req.h)
    char headers_option[512];   //  ...as civetweb's additional_header
};

//  A request civetweb took, as a bus_req_t (see bus_req.h), on the stack
//  of the civetweb thread serving it.
typedef struct {
    bus_req_t req;   //  first: a bus_http_req_t * is a bus_req_t *
    struct mg_connection *conn;
    pthread_t thread;   //  civetweb's thread, which writes answers
    sem_t answered;     //  posted by an answer made on another thread
    char *late;         //  that answer's text
    size_t late_len;
    bool written;   //  answered on this thread: sent
    int status;
} bus_http_req_t;

static void s_route_added (void *server, const char *uri);

/*  civetweb reports its own problems here; route them into our log.  */
static int
s_log_message (const struct mg_connection *conn, const char *message)
{
    zsys_warning ("http: %s", message);
    return 1;
}

//  The first integer in file, or -1.
static long
s_read_long (const char *file)
{
    FILE *f = fopen (file, "r");
    long value = -1;
    if (f && fscanf (f, "%ld", &value) != 1)
        value = -1;
    if (f)
        fclose (f);
    return value;
}

//  Can the system start `threads` more threads?  civetweb starts all of
//  its workers at once and only logs the ones it cannot start, and the
//  next thread anyone needs (ZeroMQ's) then aborts the process: say so
//  before starting, with the limits that apply.  0, or -1 with err set.
static int
s_threads_check (int threads, char *err, size_t err_cap)
{
    long pid_max = s_read_long ("/proc/sys/kernel/pid_max");
    long threads_max = s_read_long ("/proc/sys/kernel/threads-max");
    long limit = pid_max < 0 || (threads_max >= 0 && threads_max < pid_max)
                     ? threads_max
                     : pid_max;
    //  /proc/loadavg's fourth field is running/total threads right now
    FILE *f = fopen ("/proc/loadavg", "r");
    long running = 0, total = -1;
    if (f && fscanf (f, "%*s %*s %*s %ld/%ld", &running, &total) != 2)
        total = -1;
    if (f)
        fclose (f);
    if (limit < 0 || total < 0 || threads + 64 <= limit - total)
        return 0;
    snprintf (err, err_cap,
              "cannot start %d HTTP threads (http/threads + edge/max_clients): "
              "this system runs %ld threads and allows %ld "
              "(kernel.pid_max %ld, kernel.threads-max %ld); lower "
              "edge/max_clients or raise those limits",
              threads, total, limit, pid_max, threads_max);
    return -1;
}

//  Every connection is a descriptor: make sure the process may open
//  connections of them (and some for ZeroMQ and LMDB), raising the soft
//  limit up to the hard one if need be.  0, or -1 with err set.
static int
s_files_check (int connections, char *err, size_t err_cap)
{
    struct rlimit limit;
    rlim_t want = (rlim_t) connections + 256;
    if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= want)
        return 0;
    if (limit.rlim_max >= want) {
        limit.rlim_cur = want;
        if (setrlimit (RLIMIT_NOFILE, &limit) == 0)
            return 0;
    }
    snprintf (err, err_cap,
              "%d connections (http/threads + edge/max_clients) need about %lu "
              "open files, and this process may open %lu (ulimit -n, "
              "LimitNOFILE= in a systemd unit): lower edge/max_clients or "
              "raise the limit",
              connections, (unsigned long) want,
              (unsigned long) limit.rlim_max);
    return -1;
}

//  An edge's threads are nearly all seats for browsers: none keeps a
//  malloc cache, from the start (see bus_alloc.h; with one created at
//  start, 10,100 idle seats took 76 MB more)
static void *
s_init_thread (const struct mg_context *ctx, int thread_type)
{
    (void) ctx;
    if (thread_type == 1)
        bus_alloc_thread_cache (false);
    return NULL;
}

//  ---------------------------------------------------------------------
//  TLS
//
//  Debian's civetweb 1.15 loads OpenSSL itself, at run time, with
//  dlopen ("libssl.so") and dlopen ("libcrypto.so"), and takes 60
//  functions from them by name.  OpenSSL 3 lacks one of those names
//  (SSL_get_peer_certificate is a macro there), civetweb keeps a NULL
//  pointer for it and the first TLS connection calls it; and the two
//  unversioned names exist only where libssl-dev is installed.  So two
//  shims are built with us (bus/http/tls_shim/), whose SONAMEs are those
//  names, which need libssl.so.3 and libcrypto.so.3, and the first of
//  which defines the missing function.  They are loaded here by full
//  path before civetweb starts TLS: glibc's dlopen matches a name
//  without a slash against the SONAMEs of what is loaded, so civetweb
//  gets the shims, and its dlsym finds the rest in OpenSSL 3 through
//  their dependencies.  Loaded once per process, never unloaded.

static pthread_mutex_t s_tls_lock = PTHREAD_MUTEX_INITIALIZER;
static bool s_tls_ready;   //  shims loaded and civetweb's TLS up

//  Where the shims are when tls/shim_dir is not set: beside the program
//  (its directory's tls-shim/, where a build puts them next to
//  orderbus), else where this build put them.
static void
s_shim_dir_default (char *dir, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr (exe, '/');
        if (slash)
            *slash = '\0';
        char probe[PATH_MAX + 32];
        snprintf (probe, sizeof probe, "%s/tls-shim/orderbus-ssl-shim.so", exe);
        if (access (probe, R_OK) == 0
            && snprintf (dir, cap, "%s/tls-shim", exe) < (int) cap)
            return;
    }
    snprintf (dir, cap, "%s", ORDERBUS_TLS_SHIM_DIR);
}

//  dlopen dir's shim of lib for good; 0, or -1 with err set
static int
s_shim_load (const char *dir, const char *lib, char *err, size_t err_cap)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/orderbus-%s-shim.so", dir, lib);
    void *handle = dlopen (path, RTLD_NOW | RTLD_GLOBAL);
    if (!handle)
        return bus_error_set (
            err, err_cap, -1,
            "TLS on this server needs the OpenSSL shims civetweb loads "
            "(docs/security.md, TLS): %s; set tls/shim_dir "
            "(--tls-shim-dir) to the directory holding "
            "orderbus-ssl-shim.so and orderbus-crypto-shim.so",
            dlerror ());
    return 0;
}

int
bus_http_tls_init (const char *shim_dir, char *err, size_t err_cap)
{
    pthread_mutex_lock (&s_tls_lock);
    int rc = 0;
    if (!s_tls_ready) {
        char dir[PATH_MAX];
        if (shim_dir && *shim_dir)
            snprintf (dir, sizeof dir, "%s", shim_dir);
        else
            s_shim_dir_default (dir, sizeof dir);
        //  libcrypto first: the ssl shim's libssl.so.3 needs it
        rc = s_shim_load (dir, "crypto", err, err_cap);
        if (rc == 0)
            rc = s_shim_load (dir, "ssl", err, err_cap);
        if (rc == 0 && !(mg_init_library (MG_FEATURES_TLS) & MG_FEATURES_TLS))
            rc = bus_error_set (err, err_cap, -1,
                                "civetweb could not load OpenSSL through the "
                                "shims in %s",
                                dir);
        if (rc == 0)
            zsys_info ("http: civetweb's TLS on OpenSSL 3 through the shims "
                       "in %s",
                       dir);
        s_tls_ready = rc == 0;
    }
    pthread_mutex_unlock (&s_tls_lock);
    return rc;
}

//  civetweb made the server's SSL_CTX: our certificate (and chain) and
//  key go into it from their two files (civetweb's own option wants one
//  file with both), TLS 1.2 at least, and no renegotiation: a client
//  could make a connection's reading thread write in the middle of a
//  fan-out sender's write (bus_http_ws_write), and cost the server a
//  handshake each time.  1: done, -1: refused.
static int
s_init_ssl (void *ssl_ctx, void *user_data)
{
    bus_http_t *self = (bus_http_t *) user_data;
    SSL_CTX *ctx = (SSL_CTX *) ssl_ctx;
    if (SSL_CTX_use_certificate_chain_file (ctx, self->tls_cert) != 1
        || SSL_CTX_use_PrivateKey_file (ctx, self->tls_key, SSL_FILETYPE_PEM)
               != 1
        || SSL_CTX_check_private_key (ctx) != 1
        || SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION) != 1
        || !(SSL_CTX_set_options (ctx, SSL_OP_NO_RENEGOTIATION)
             & SSL_OP_NO_RENEGOTIATION)) {
        zsys_error ("http: cannot use tls/cert %s with tls/key %s",
                    self->tls_cert, self->tls_key);
        return -1;
    }
    return 1;
}

bus_http_t *
bus_http_start (const bus_config_t *config, char *err, size_t err_cap)
{
    int thread_count = config->http_threads + config->max_clients;
    if (s_threads_check (thread_count, err, err_cap) != 0
        || s_files_check (thread_count, err, err_cap) != 0)
        return NULL;
    bool tls = *config->tls_cert || *config->tls_key;
    if (tls && bus_http_tls_init (config->tls_shim_dir, err, err_cap) != 0)
        return NULL;
    char ports[128], threads[16], ping[16];
    //  "s": this port speaks TLS only; plain HTTP fails its handshake
    snprintf (ports, sizeof ports, "%s:%d%s", config->http_listen,
              config->http_port, tls ? "s" : "");
    //  civetweb serves a WebSocket on a worker thread for its whole life:
    //  the edge's browsers get threads of their own, http/threads stay
    //  for requests
    snprintf (threads, sizeof threads, "%d", thread_count);
    snprintf (ping, sizeof ping, "%d", config->ws_ping_ms);
    const char *options[] = {
        "listening_ports",
        ports,
        "num_threads",
        threads,
        //  a rush of connections (every screen reconnecting after an edge
        //  restart) waits in these queues instead of having its SYNs
        //  dropped and retried a second later: civetweb's defaults are
        //  small (overflows measured in the bench)
        "listen_backlog",
        "4096",
        "connection_queue",
        "256",
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        "30000",
        //  also bounds a write to a peer that stopped reading
        "request_timeout_ms",
        "10000",
        //  a WebSocket quiet for this long is pinged; civetweb closes it
        //  after five unanswered pings, so dead browsers do not linger
        "enable_websocket_ping_pong",
        "yes",
        "websocket_timeout_ms",
        ping,
        //  small responses go out at once: with Nagle on, a keep-alive
        //  client's delayed ACK held each one back ~40 ms
        "tcp_nodelay",
        "1",
        "enable_directory_listing",
        "no",
        //  screens run all shift: after an upgrade they must fetch the
        //  new pages, so revalidate (civetweb sends ETags) every time
        "static_file_max_age",
        "0",
        "document_root",
        config->web_root,
        //  pages and files get the security headers too (civetweb adds
        //  a line break after the last)
        "additional_header",
        NULL,
        NULL,
        NULL,
    };
    struct mg_callbacks callbacks;
    memset (&callbacks, 0, sizeof callbacks);
    callbacks.log_message = s_log_message;
    if (config->role == BUS_ROLE_EDGE)
        callbacks.init_thread = s_init_thread;
    if (tls)
        callbacks.init_ssl = s_init_ssl;
    bus_http_t *self = calloc (1, sizeof *self);
    if (self) {
        self->router = bus_req_router_new (s_route_added, self);
        self->tls = tls;
        snprintf (self->tls_cert, sizeof self->tls_cert, "%s",
                  config->tls_cert);
        snprintf (self->tls_key, sizeof self->tls_key, "%s", config->tls_key);
        snprintf (self->headers, sizeof self->headers, "%s%s",
                  BUS_REQ_SECURITY_HEADERS, tls ? BUS_REQ_HSTS_HEADER : "");
        //  the option's text, without the last CRLF
        snprintf (self->headers_option, sizeof self->headers_option, "%.*s",
                  (int) strlen (self->headers) - 2, self->headers);
        options[sizeof options / sizeof options[0] - 3] = self->headers_option;
    }
    if (!self || !self->router) {
        snprintf (err, err_cap, "out of memory");
        free (self);
        return NULL;
    }
    //  civetweb finds its handlers ignoring case; the router must agree
    bus_req_router_ignore_case (self->router);
    struct mg_init_data init = { &callbacks, self, options };
    char text[256] = "";
    unsigned code = 0;
    struct mg_error_data error = { &code, text, sizeof text };
    struct mg_context *ctx = mg_start2 (&init, &error);
    if (!ctx) {
        snprintf (err, err_cap, "cannot start HTTP server on %s: %s", ports,
                  text[0] ? text : "unknown error");
        bus_req_router_destroy (&self->router);
        free (self);
        return NULL;
    }
    self->ctx = ctx;
    return self;
}

void
bus_http_stop (bus_http_t **self_p)
{
    if (self_p && *self_p) {
        bus_http_t *self = *self_p;
        mg_stop (self->ctx);
        bus_req_router_destroy (&self->router);
        free (self);
        *self_p = NULL;
    }
}

//  ---------------------------------------------------------------------
//  Requests: a civetweb connection as a bus_req_t

static const char *
s_header (bus_req_t *req, const char *name)
{
    return mg_get_header (((bus_http_req_t *) req)->conn, name);
}

static int
s_body (bus_req_t *req, size_t max, char **body, size_t *len)
{
    struct mg_connection *conn = ((bus_http_req_t *) req)->conn;
    const struct mg_request_info *info = mg_get_request_info (conn);
    if (info->content_length > (long long) max)
        return BUS_ERR_TOO_BIG;
    //  A body of known length gets a buffer its size (an order is a few
    //  hundred bytes: a 64 KiB one per request cost the gateway malloc
    //  work it could see in its profile); a chunked one is read one byte
    //  past max so that one too big is caught
    size_t want =
        info->content_length >= 0 ? (size_t) info->content_length : max + 1;
    char *buf = malloc (want + 1);
    if (!buf)
        return BUS_ERR_NOMEM;
    size_t used = 0;
    while (used < want) {
        int n = mg_read (conn, buf + used, want - used);
        if (n <= 0)
            break;
        used += (size_t) n;
    }
    if (used > max) {
        free (buf);
        return BUS_ERR_TOO_BIG;
    }
    if (info->content_length > 0 && used != (size_t) info->content_length) {
        free (buf);
        return BUS_ERR_MALFORMED;
    }
    buf[used] = '\0';
    *body = buf;
    *len = used;
    return 0;
}

//  The head goes in the room in front of the body, and the response out
//  in one write: a process killed in between cannot leave a status line
//  without its body.  An answer made on another thread (from an ack) is
//  copied and handed to the connection's own thread, which writes it:
//  a client that does not read must not hold up the thread that answers.
static void
s_answer (bus_req_t *req, int status, const char *headers, char *body,
          size_t len)
{
    bus_http_req_t *self = (bus_http_req_t *) req;
    const bus_http_t *server =
        (const bus_http_t *) mg_get_user_data (mg_get_context (self->conn));
    char *head = body - BUS_REQ_HEAD_MAX;
    int head_len =
        snprintf (head, BUS_REQ_HEAD_MAX,
                  "HTTP/1.1 %d %s\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: %zu\r\n"
                  "Cache-Control: no-store\r\n"
                  "%s%s\r\n",
                  status, mg_get_response_code_text (self->conn, status), len,
                  server->headers, headers);
    assert (head_len > 0 && head_len < BUS_REQ_HEAD_MAX);   //  bus_req bounds
    char *text = body - head_len;
    memmove (text, head, (size_t) head_len);
    size_t size = (size_t) head_len + len;
    self->status = status;
    if (pthread_equal (pthread_self (), self->thread)) {
        mg_write (self->conn, text, size);
        self->written = true;
        return;
    }
    self->late = malloc (size);
    if (self->late)
        memcpy (self->late, text, size);
    self->late_len = self->late ? size : 0;
    sem_post (&self->answered);   //  the last touch: *self may go after
}

static int
s_defer (bus_req_t *req, bus_req_fn *fn, void *arg)
{
    fn (req, arg);   //  not reached: a civetweb thread may always block
    return 0;
}

static const bus_req_server_t s_server = { s_header, s_body, s_answer,
                                           s_defer };

//  Wrap conn's request, for handlers civetweb calls directly (the edge's
//  WebSocket checks): they answer on this thread, where the answer is
//  written at once, and have nothing to release.
static void
s_req_init (bus_http_req_t *self, struct mg_connection *conn)
{
    const struct mg_request_info *info = mg_get_request_info (conn);
    memset (self, 0, sizeof *self);
    self->req.server = &s_server;
    self->req.method = info->request_method;
    self->req.path = info->local_uri;
    self->req.query = info->query_string;
    self->req.may_block = true;
    self->conn = conn;
    self->thread = pthread_self ();
}

//  ---------------------------------------------------------------------
//  Routes

//  A request for a route, served by the one rule (bus_req.h), and the
//  wait for an answer it leaves for later.  Every civetweb thread may
//  block, so a route that blocks runs here too.  If the answer never
//  comes (out of memory), the client gets none; civetweb then closes the
//  connection.
static int
s_serve (struct mg_connection *conn, void *cbdata)
{
    const bus_req_router_t *router = (const bus_req_router_t *) cbdata;
    bus_http_req_t req;
    s_req_init (&req, conn);
    sem_init (&req.answered, 0, 0);
    if (bus_req_router_serve (router, &req.req) == 0 && !req.written) {
        while (sem_wait (&req.answered) != 0 && errno == EINTR)
            ;
        if (req.late)
            mg_write (conn, req.late, req.late_len);
        free (req.late);
    }
    sem_destroy (&req.answered);
    return req.status ? req.status : 500;
}

//  civetweb picks the handler for a request among ours and the edge's
//  (pages, WebSockets), so each route's uri is registered with it, as
//  written: "/x" and "/x$" mean to civetweb what they mean to bus_req,
//  and its '*' takes any run of characters but '/', a superset of ours.
//  Every path one of our routes matches thus reaches s_serve, which
//  picks the route by bus_req's rule; which of our uris civetweb picked
//  does not matter.
static void
s_route_added (void *server, const char *uri)
{
    bus_http_t *self = (bus_http_t *) server;
    mg_set_request_handler (self->ctx, uri, s_serve, self->router);
}

bus_req_router_t *
bus_http_router (bus_http_t *self)
{
    return self->router;
}

//  The port and printable address of a socket address, 0 if not IP.
static int
s_endpoint (const struct sockaddr_storage *addr, char *host, size_t cap)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        inet_ntop (AF_INET, &in->sin_addr, host, (socklen_t) cap);
        return ntohs (in->sin_port);
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
        inet_ntop (AF_INET6, &in6->sin6_addr, host, (socklen_t) cap);
        return ntohs (in6->sin6_port);
    }
    return 0;
}

//  Is fd the TCP connection from remote_addr:remote_port to our port?
static bool
s_is_connection (int fd, const struct mg_request_info *info)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    char host[64];
    if (getsockname (fd, (struct sockaddr *) &addr, &len) != 0
        || s_endpoint (&addr, host, sizeof host) != info->server_port)
        return false;
    len = sizeof addr;
    return getpeername (fd, (struct sockaddr *) &addr, &len) == 0
           && s_endpoint (&addr, host, sizeof host) == info->remote_port
           && streq (host, info->remote_addr);
}

//  Descriptors s_socket_claim handed out and that were not given back:
//  the search for a new connection's socket skips them, so it costs a
//  few system calls however many WebSockets are open (testing each of
//  10,000 descriptors made every new browser ~10 ms slower than the last
//  thousand).  One process, one table of descriptors: hence a global.
static pthread_mutex_t s_claimed_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *s_claimed;
static size_t s_claimed_bits;

static bool
s_is_claimed (int fd)
{
    return (size_t) fd < s_claimed_bits
           && (s_claimed[fd / 64] >> (fd % 64) & 1);
}

//  Mark fd claimed; false if out of memory.  Claimed lock held.
static bool
s_claim (int fd)
{
    if ((size_t) fd >= s_claimed_bits) {
        size_t bits = ((size_t) fd / 4096 + 1) * 4096;
        uint64_t *claimed = realloc (s_claimed, bits / 8);
        if (!claimed)
            return false;
        memset (claimed + s_claimed_bits / 64, 0, (bits - s_claimed_bits) / 8);
        s_claimed = claimed;
        s_claimed_bits = bits;
    }
    s_claimed[fd / 64] |= (uint64_t) 1 << (fd % 64);
    return true;
}

//  How many descriptors the process's table has room for (FDSize in
//  /proc/self/status): every open one is below it.
static int
s_fd_table_size (void)
{
    FILE *status = fopen ("/proc/self/status", "r");
    char line[128];
    int size = 0;
    while (status && !size && fgets (line, sizeof line, status))
        if (sscanf (line, "FDSize: %d", &size) != 1)
            size = 0;
    if (status)
        fclose (status);
    struct rlimit limit;
    if (size <= 0 && getrlimit (RLIMIT_NOFILE, &limit) == 0)
        size =
            limit.rlim_cur < (rlim_t) INT_MAX ? (int) limit.rlim_cur : INT_MAX;
    return size;
}

//  The socket of server connection conn, found by its two ends, or -1.
//  civetweb 1.15 does not hand a connection's socket out, and the fan-out
//  writes frames to it directly (and shuts it down to hang up): so the
//  descriptor table is searched for the TCP connection whose ends are
//  the request's.  The socket stays claimed, and skipped by later
//  searches, until s_socket_release, which the close of the WebSocket
//  calls before civetweb closes it.  The kernel gives a new socket the
//  lowest free number, so the search goes up from 3 and usually ends
//  after the few descriptors (ZeroMQ's, HTTP keep-alive connections)
//  that are not claimed.
static int
s_socket_claim (const struct mg_connection *conn)
{
    const struct mg_request_info *info = mg_get_request_info (conn);
    int top = s_fd_table_size ();
    pthread_mutex_lock (&s_claimed_lock);
    int found = -1;
    for (int fd = 3; found < 0 && fd < top; fd++)
        if (!s_is_claimed (fd) && s_is_connection (fd, info) && s_claim (fd))
            found = fd;
    pthread_mutex_unlock (&s_claimed_lock);
    return found;
}

//  Give back a socket s_socket_claim found.  -1 is ignored.
static void
s_socket_release (int fd)
{
    pthread_mutex_lock (&s_claimed_lock);
    if (fd >= 0 && s_is_claimed (fd))
        s_claimed[fd / 64] &= ~((uint64_t) 1 << (fd % 64));
    pthread_mutex_unlock (&s_claimed_lock);
}

//  ---------------------------------------------------------------------
//  WebSockets: civetweb's connections as bus_http_ws_t (bus_http_ws.h)
//
//  civetweb serves a WebSocket on one worker thread from its handshake to
//  its end, and calls the connect, ready, data and close handlers there,
//  in that order (close only if ready was called): so a bus_http_ws_t is
//  made in ready and freed after the close hook, and is reached through
//  civetweb's connection user data meanwhile.

struct _bus_http_ws_t {
    struct mg_connection *conn;   //  civetweb's, until its close handler
    bus_http_req_t req;           //  the upgrade request, for reading
    int fd;                       //  its socket once claimed, else -1
    void *user;                   //  the hooks' own
};

bus_req_t *
bus_http_ws_request (bus_http_ws_t *self)
{
    return &self->req.req;
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

//  Found on first use and kept: the search is a few system calls, and
//  a WebSocket that needs it once (the edge's browsers all do) does not
//  pay it again.
int
bus_http_ws_socket (bus_http_ws_t *self)
{
    if (self->fd < 0)
        self->fd = s_socket_claim (self->conn);
    return self->fd;
}

bool
bus_http_ws_tls (bus_http_ws_t *self)
{
    return mg_get_request_info (self->conn)->is_ssl != 0;
}

//  civetweb's mg_write is SSL_write on a TLS connection.  The connection's
//  own thread may be in SSL_read meanwhile: civetweb's clients and servers
//  write WebSockets from other threads the same way (docs/security.md,
//  TLS, says what that leaves).
int
bus_http_ws_write (bus_http_ws_t *self, const void *data, size_t len)
{
    return mg_write (self->conn, data, len) == (int) len ? 0 : -1;
}

//  civetweb's own connection lock: it takes it around its pings and
//  pongs too, so nothing of theirs lands inside a frame written here.
void
bus_http_ws_lock (bus_http_ws_t *self)
{
    mg_lock_connection (self->conn);
}

void
bus_http_ws_unlock (bus_http_ws_t *self)
{
    mg_unlock_connection (self->conn);
}

//  civetweb's mg_write writes through TLS where the connection has it
static void
s_ws_close_frame (struct mg_connection *conn, int code, const char *reason)
{
    bus_wsframe_t *close = bus_wsframe_new_close (code, reason);
    if (close) {
        mg_lock_connection (conn);
        mg_write (conn, bus_wsframe_data (close), bus_wsframe_size (close));
        mg_unlock_connection (conn);
    }
    bus_wsframe_unref (&close);
}

void
bus_http_ws_close (bus_http_ws_t *self, int code, const char *reason)
{
    s_ws_close_frame (self->conn, code, reason);
}

void
bus_http_ws_hang_up (bus_http_ws_t *self)
{
    int fd = bus_http_ws_socket (self);
    if (fd >= 0)
        shutdown (fd, SHUT_RDWR);
}

static int
s_ws_connect (const struct mg_connection *conn, void *cbdata)
{
    const bus_http_ws_handler_t *handler =
        (const bus_http_ws_handler_t *) cbdata;
    if (!handler->connect)
        return 0;
    bus_http_req_t req;
    s_req_init (&req, (struct mg_connection *) conn);
    return handler->connect (&req.req, handler->arg);
}

static void
s_ws_ready (struct mg_connection *conn, void *cbdata)
{
    const bus_http_ws_handler_t *handler =
        (const bus_http_ws_handler_t *) cbdata;
    bus_http_ws_t *self = (bus_http_ws_t *) calloc (1, sizeof *self);
    if (!self) {
        zsys_error ("http: out of memory: a WebSocket is closed");
        s_ws_close_frame (conn, 1011,
                          "cannot serve this browser now: reconnect");
        return;
    }
    self->conn = conn;
    self->fd = -1;
    s_req_init (&self->req, conn);
    mg_set_user_connection_data (conn, self);
    if (handler->ready)
        handler->ready (self, handler->arg);
}

//  0 ends the connection: civetweb answers a close frame itself.
static int
s_ws_data (struct mg_connection *conn, int opcode, char *data, size_t len,
           void *cbdata)
{
    const bus_http_ws_handler_t *handler =
        (const bus_http_ws_handler_t *) cbdata;
    if ((opcode & 0xf) == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    bus_http_ws_t *self = (bus_http_ws_t *) mg_get_user_connection_data (conn);
    if (self && handler->data)
        handler->data (self, opcode & 0xf, data, len, handler->arg);
    return 1;
}

//  The socket is given back after the hook, which waits for any write to
//  it in progress (bus_fanout_leave), and before civetweb closes it.  The
//  user data is cleared: civetweb keeps a worker's connection record for
//  the next connection it serves.
static void
s_ws_closed (const struct mg_connection *conn, void *cbdata)
{
    const bus_http_ws_handler_t *handler =
        (const bus_http_ws_handler_t *) cbdata;
    bus_http_ws_t *self = (bus_http_ws_t *) mg_get_user_connection_data (conn);
    if (!self)
        return;
    if (handler->close)
        handler->close (self, handler->arg);
    s_socket_release (self->fd);
    mg_set_user_connection_data (conn, NULL);
    free (self);
}

//  civetweb matches a handler's URI as a prefix too: anchor it.
static void
s_anchored (char *pattern, size_t cap, const char *path)
{
    int len = snprintf (pattern, cap, "%s$", path);
    assert (len > 0 && (size_t) len < cap);   //  paths are the edge's own
}

static void
s_ws_add (void *server, const char *path, const bus_http_ws_handler_t *handler)
{
    char pattern[256];
    s_anchored (pattern, sizeof pattern, path);
    mg_set_websocket_handler ((struct mg_context *) server, pattern,
                              s_ws_connect, s_ws_ready, s_ws_data, s_ws_closed,
                              (void *) handler);
}

//  A page's root is its cbdata; the request's path is one the page was
//  registered for, exactly.
static int
s_page_serve (struct mg_connection *conn, void *cbdata)
{
    char path[BUS_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s%.20s.html", (const char *) cbdata,
              mg_get_request_info (conn)->local_uri);
    mg_send_file (conn, path);
    return 200;
}

static void
s_page_add (void *server, const char *path, const char *root)
{
    char pattern[256];
    s_anchored (pattern, sizeof pattern, path);
    mg_set_request_handler ((struct mg_context *) server, pattern, s_page_serve,
                            (void *) root);
}

//  Written out here, not with mg_send_http_redirect: that one leaves out
//  the security headers
static int
s_redirect_serve (struct mg_connection *conn, void *cbdata)
{
    const bus_http_t *server =
        (const bus_http_t *) mg_get_user_data (mg_get_context (conn));
    mg_printf (conn,
               "HTTP/1.1 302 Found\r\n"
               "Location: %s\r\n"
               "Content-Length: 0\r\n"
               "Cache-Control: no-store\r\n"
               "%s\r\n",
               (const char *) cbdata, server->headers);
    return 302;
}

static void
s_redirect_add (void *server, const char *path, const char *location)
{
    char pattern[256];
    s_anchored (pattern, sizeof pattern, path);
    mg_set_request_handler ((struct mg_context *) server, pattern,
                            s_redirect_serve, (void *) location);
}

bus_http_ws_router_t
bus_http_ws_router (bus_http_t *self)
{
    return (bus_http_ws_router_t){ s_ws_add, s_page_add, s_redirect_add,
                                   self->ctx };
}
