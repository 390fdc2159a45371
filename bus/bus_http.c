/*  bus_http.c — civetweb server setup and request/response helpers.  */

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <czmq.h>
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_http.h"
#include "orderbus/bus_json.h"

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
                     ? threads_max : pid_max;
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
              "raise the limit", connections, (unsigned long) want,
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

struct mg_context *
bus_http_start (const bus_config_t *config, bool edge, char *err,
                size_t err_cap)
{
    int thread_count =
        config->http_threads + (edge ? config->max_clients : 0);
    if (s_threads_check (thread_count, err, err_cap) != 0
        || s_files_check (thread_count, err, err_cap) != 0)
        return NULL;
    char ports[128], threads[16], ping[16];
    snprintf (ports, sizeof ports, "%s:%d", config->http_listen,
              config->http_port);
    //  civetweb serves a WebSocket on a worker thread for its whole life:
    //  the edge's browsers get threads of their own, http/threads stay
    //  for requests
    snprintf (threads, sizeof threads, "%d", thread_count);
    snprintf (ping, sizeof ping, "%d", config->ws_ping_ms);
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", threads,
        //  a rush of connections (every screen reconnecting after an edge
        //  restart) waits in these queues instead of having its SYNs
        //  dropped and retried a second later: civetweb's defaults are
        //  small (overflows measured in the bench)
        "listen_backlog", "4096",
        "connection_queue", "256",
        "enable_keep_alive", "yes",
        "keep_alive_timeout_ms", "30000",
        //  also bounds a write to a peer that stopped reading
        "request_timeout_ms", "10000",
        //  a WebSocket quiet for this long is pinged; civetweb closes it
        //  after five unanswered pings, so dead browsers do not linger
        "enable_websocket_ping_pong", "yes",
        "websocket_timeout_ms", ping,
        //  small responses go out at once: with Nagle on, a keep-alive
        //  client's delayed ACK held each one back ~40 ms
        "tcp_nodelay", "1",
        "enable_directory_listing", "no",
        //  screens run all shift: after an upgrade they must fetch the
        //  new pages, so revalidate (civetweb sends ETags) every time
        "static_file_max_age", "0",
        "document_root", edge ? config->web_root : NULL,
        NULL, NULL,
    };
    if (!edge)
        //  no document_root: end the list where that pair (the last) is
        options[sizeof options / sizeof options[0] - 4] = NULL;
    struct mg_callbacks callbacks;
    memset (&callbacks, 0, sizeof callbacks);
    callbacks.log_message = s_log_message;
    if (config->role == BUS_ROLE_EDGE)
        callbacks.init_thread = s_init_thread;
    struct mg_init_data init = {&callbacks, NULL, options};
    char text[256] = "";
    unsigned code = 0;
    struct mg_error_data error = {&code, text, sizeof text};
    struct mg_context *ctx = mg_start2 (&init, &error);
    if (!ctx)
        snprintf (err, err_cap, "cannot start HTTP server on %s: %s", ports,
                  text[0] ? text : "unknown error");
    return ctx;
}

void
bus_http_stop (struct mg_context **ctx_p)
{
    if (ctx_p && *ctx_p) {
        mg_stop (*ctx_p);
        *ctx_p = NULL;
    }
}

//  Room kept in front of a response's body for its status line and
//  headers; extra headers are a few short lines (Location, Retry-After)
#define S_HEAD_MAX 512

//  Reals (only the seed-compatible API has any) get 15 digits, so that a
//  price of 18.99 reads 18.99 and not 18.989999999999998
#define S_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION (15))

static int
s_head (char head[S_HEAD_MAX], struct mg_connection *conn, int status,
        size_t len, const char *extra_headers)
{
    return snprintf (head, S_HEAD_MAX,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s\r\n",
                     status, mg_get_response_code_text (conn, status), len,
                     extra_headers ? extra_headers : "");
}

int
bus_http_send_body (struct mg_connection *conn, int status,
                    bus_http_body_fn *body_fn, const void *arg,
                    const char *extra_headers)
{
    //  The body is written behind room for the headers, which are then
    //  put in front of it, so the response goes out in one write with no
    //  copy of the body: and a process killed in between cannot leave a
    //  status line without its body.  Most bodies fit on the stack.
    char stack[8192], *heap = NULL;
    char *text = stack + S_HEAD_MAX;
    size_t room = sizeof stack - S_HEAD_MAX;
    size_t len = body_fn (arg, text, room);
    if (len > room) {
        heap = malloc (S_HEAD_MAX + len);
        text = heap ? heap + S_HEAD_MAX : text;
        len = heap ? body_fn (arg, text, len) : 0;
    }
    char head[S_HEAD_MAX];
    int head_len = s_head (head, conn, status, len, extra_headers);
    if (head_len < 0 || head_len >= S_HEAD_MAX) {
        zsys_error ("http: extra headers too long, not sent: %.60s",
                    extra_headers);
        head_len = s_head (head, conn, status, len, "");
    }
    memcpy (text - head_len, head, (size_t) head_len);
    mg_write (conn, text - head_len, (size_t) head_len + len);
    free (heap);
    return status;
}

static size_t
s_dump (const void *body, char *buf, size_t cap)
{
    return body ? json_dumpb ((const json_t *) body, buf, cap, S_DUMP_FLAGS)
                : 0;
}

int
bus_http_send_json (struct mg_connection *conn, int status,
                    const json_t *body, const char *extra_headers)
{
    return bus_http_send_body (conn, status, s_dump, body, extra_headers);
}

int
bus_http_send_error (struct mg_connection *conn, int status,
                     const char *code, const char *message,
                     const char *field)
{
    json_t *body = bus_json_error (code, message, field);
    bus_http_send_json (conn, status, body, NULL);
    json_decref (body);
    return status;
}

int
bus_http_read_body (struct mg_connection *conn, size_t max, char **body,
                    size_t *len)
{
    const struct mg_request_info *info = mg_get_request_info (conn);
    if (info->content_length > (long long) max)
        return BUS_ERR_TOO_BIG;
    //  A body of known length gets a buffer its size (an order is a few
    //  hundred bytes: a 64 KiB one per request cost the gateway malloc
    //  work it could see in its profile); a chunked one is read one byte
    //  past max so that one too big is caught
    size_t want = info->content_length >= 0 ? (size_t) info->content_length
                                            : max + 1;
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

bool
bus_http_is_json (struct mg_connection *conn)
{
    const char *type = mg_get_header (conn, "Content-Type");
    if (!type)
        return false;
    size_t n = strlen ("application/json");
    return strncasecmp (type, "application/json", n) == 0
           && (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

int
bus_http_query (struct mg_connection *conn, const char *name, char *buf,
                size_t cap)
{
    const char *query = mg_get_request_info (conn)->query_string;
    if (!query)
        return -1;
    return mg_get_var (query, strlen (query), name, buf, cap);
}

int
bus_http_parse_u64 (const char *text, uint64_t min, uint64_t max,
                    uint64_t *value)
{
    if (!text || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

static bool
s_allowed (const char *name, size_t len, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strlen (*allowed) == len && memcmp (*allowed, name, len) == 0)
            return true;
    return false;
}

int
bus_http_query_check (struct mg_connection *conn, const char *const *allowed,
                      char *bad, size_t bad_cap)
{
    const char *query = mg_get_request_info (conn)->query_string;
    while (query && *query) {
        size_t len = strcspn (query, "=&");
        if (!s_allowed (query, len, allowed)) {
            snprintf (bad, bad_cap, "%.*s", (int) len, query);
            return -1;
        }
        query += strcspn (query, "&");
        if (*query == '&')
            query++;
    }
    return 0;
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

//  Descriptors bus_http_socket handed out and that were not given back:
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
        size = limit.rlim_cur < (rlim_t) INT_MAX ? (int) limit.rlim_cur : INT_MAX;
    return size;
}

//  The kernel gives a new socket the lowest free number, so the search
//  goes up from 3 and usually ends after the few descriptors (ZeroMQ's,
//  HTTP keep-alive connections) that are not claimed.
int
bus_http_socket (const struct mg_connection *conn)
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

void
bus_http_socket_release (int fd)
{
    pthread_mutex_lock (&s_claimed_lock);
    if (fd >= 0 && s_is_claimed (fd))
        s_claimed[fd / 64] &= ~((uint64_t) 1 << (fd % 64));
    pthread_mutex_unlock (&s_claimed_lock);
}
