/*  testkit.c — process, HTTP and WebSocket helpers for integration tests. */

#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testkit.h"

#define TK_ARGS_MAX 64
#define TK_PROCS_MAX 32

typedef struct {
    pid_t pid;
    char log[1024];
} tk_proc_t;

int tk_checks;
static const char *s_bin;
static char s_dir[512];
static const char *s_name;
static tk_proc_t s_procs[TK_PROCS_MAX];
static int s_proc_count;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tk_init (int argc, char **argv, const char *test_name)
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s ORDERBUS_BINARY\n", argv[0]);
        exit (2);
    }
    s_bin = argv[1];
    s_name = test_name;
    snprintf (s_dir, sizeof s_dir, "%s/tk-%s-%d", getenv ("TK_TMP") ? getenv ("TK_TMP") : ".",
              test_name, (int) getpid ());
    mkdir (s_dir, 0755);
    signal (SIGPIPE, SIG_IGN);
    mg_init_library (0);
}

const char *tk_bin (void) { return s_bin; }
const char *tk_dir (void) { return s_dir; }
const char *tk_source (void) { return TK_SOURCE_DIR; }

static void
s_print_tail (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, size > 3000 ? size - 3000 : 0, SEEK_SET);
    fprintf (stderr, "---- tail of %s\n", path);
    char buf[512];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, f)) > 0)
        fwrite (buf, 1, n, stderr);
    fclose (f);
}

void
tk_fail (void)
{
    for (int i = 0; i < s_proc_count; i++)
        if (s_procs[i].pid > 0) {
            kill (s_procs[i].pid, SIGKILL);
            waitpid (s_procs[i].pid, NULL, 0);
            s_print_tail (s_procs[i].log);
        }
    fprintf (stderr, "%s: FAILED (logs in %s)\n", s_name, s_dir);
    exit (1);
}

int
tk_done (void)
{
    for (int i = 0; i < s_proc_count; i++)
        if (s_procs[i].pid > 0) {
            int status = tk_kill (s_procs[i].pid, SIGTERM);
            TK_CHECK (status == 0, "%s exited with %d on SIGTERM",
                      s_procs[i].log, status);
        }
    printf ("%s: %d passed, 0 failed\n", s_name, tk_checks);
    return 0;
}

static int
s_collect_args (char **args, const char *first, va_list ap)
{
    int n = 0;
    args[n++] = (char *) s_bin;
    for (const char *a = first; a && n < TK_ARGS_MAX - 1; a = va_arg (ap, const char *))
        args[n++] = (char *) a;
    args[n] = NULL;
    return n;
}

static void
s_close_inherited (void)
{
    if (syscall (SYS_close_range, 3U, ~0U, 0U) != 0)
        for (int fd = 3; fd < 4096; fd++)
            close (fd);
}

static pid_t
s_fork_exec_env (char **args, const char *log, const char *const *env)
{
    pid_t pid = fork ();
    if (pid == 0) {
        //  With an environment (tk_spawn_env), also close every inherited
        //  descriptor: a test's sockets (a proxy's connections, a slow
        //  client's socket) must end when the test closes them, not live
        //  on in a node started later.
        if (env)
            s_close_inherited ();
        for (; env && *env; env++)
            putenv ((char *) *env);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2 (fd, 1);
        dup2 (fd, 2);
        close (fd);
        execv (args[0], args);
        _exit (127);
    }
    return pid;
}

static pid_t
s_fork_exec (char **args, const char *log)
{
    return s_fork_exec_env (args, log, NULL);
}

pid_t
tk_spawn (const char *name, ...)
{
    char *args[TK_ARGS_MAX];
    va_list ap;
    va_start (ap, name);
    s_collect_args (args, va_arg (ap, const char *), ap);
    va_end (ap);
    TK_CHECK (s_proc_count < TK_PROCS_MAX, "too many processes");
    tk_proc_t *proc = &s_procs[s_proc_count++];
    snprintf (proc->log, sizeof proc->log, "%s/%s.log", s_dir, name);
    proc->pid = s_fork_exec (args, proc->log);
    TK_CHECK (proc->pid > 0, "fork failed");
    return proc->pid;
}

int
tk_kill (pid_t pid, int sig)
{
    kill (pid, sig);
    int status;
    for (int64_t end = s_now_ms () + 10000; s_now_ms () < end; usleep (10000)) {
        if (waitpid (pid, &status, WNOHANG) == pid) {
            for (int i = 0; i < s_proc_count; i++)
                if (s_procs[i].pid == pid)
                    s_procs[i].pid = 0;
            return WIFEXITED (status) ? WEXITSTATUS (status)
                                      : 128 + WTERMSIG (status);
        }
    }
    return -1;
}

int
tk_run (char **output, ...)
{
    char *args[TK_ARGS_MAX];
    va_list ap;
    va_start (ap, output);
    s_collect_args (args, va_arg (ap, const char *), ap);
    va_end (ap);
    char log[1024];
    snprintf (log, sizeof log, "%s/run.out", s_dir);
    unlink (log);
    pid_t pid = s_fork_exec (args, log);
    int status;
    waitpid (pid, &status, 0);
    FILE *f = fopen (log, "r");
    *output = calloc (1, 65536);
    if (f) {
        fread (*output, 1, 65535, f);
        fclose (f);
    }
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
tk_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int rc = bind (fd, (struct sockaddr *) &addr, sizeof addr);
    getsockname (fd, (struct sockaddr *) &addr, &len);
    close (fd);
    TK_CHECK (rc == 0, "no free port");
    return ntohs (addr.sin_port);
}

//  ---------------------------------------------------------------------
//  HTTP

static void
s_read_response (struct mg_connection *conn, tk_response_t *resp)
{
    const struct mg_response_info *info = mg_get_response_info (conn);
    resp->status = info->status_code;
    size_t hcap = 4096, hlen = 0;
    resp->headers = calloc (1, hcap);
    for (int i = 0; i < info->num_headers; i++)
        hlen += (size_t) snprintf (resp->headers + hlen, hcap - hlen, "%s: %s\n",
                                   info->http_headers[i].name,
                                   info->http_headers[i].value);
    size_t cap = 4096, len = 0;
    resp->body = malloc (cap);
    int n;
    while ((n = mg_read (conn, resp->body + len, cap - len - 1)) > 0) {
        len += (size_t) n;
        if (cap - len < 2)
            resp->body = realloc (resp->body, cap *= 2);
    }
    resp->body[len] = '\0';
    resp->json = json_loadb (resp->body, len, 0, NULL);
}

void
tk_http (int port, const char *method, const char *path, const char *headers,
         const char *body, tk_response_t *resp)
{
    memset (resp, 0, sizeof *resp);
    char err[256] = "";
    struct mg_connection *conn =
        mg_connect_client ("127.0.0.1", port, 0, err, sizeof err);
    if (!conn)
        return;
    mg_printf (conn,
               "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
               "%s",
               method, path, port, headers ? headers : "");
    if (body)
        mg_printf (conn, "Content-Length: %zu\r\n\r\n", strlen (body)),
            mg_write (conn, body, strlen (body));
    else
        mg_printf (conn, "\r\n");
    if (mg_get_response (conn, err, sizeof err, 15000) >= 0)
        s_read_response (conn, resp);
    mg_close_connection (conn);
}

void
tk_response_free (tk_response_t *resp)
{
    free (resp->body);
    free (resp->headers);
    json_decref (resp->json);
    memset (resp, 0, sizeof *resp);
}

const char *
tk_header (const tk_response_t *resp, const char *name, char *buf, size_t cap)
{
    size_t n = strlen (name);
    for (const char *line = resp->headers; line && *line;) {
        const char *end = strchr (line, '\n');
        if (strncasecmp (line, name, n) == 0 && line[n] == ':') {
            snprintf (buf, cap, "%.*s", (int) (end - line - n - 2), line + n + 2);
            return buf;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

void
tk_post_order (int port, const char *key, const char *body, tk_response_t *resp)
{
    char headers[300];
    snprintf (headers, sizeof headers,
              "Content-Type: application/json\r\nIdempotency-Key: %s\r\n", key);
    tk_http (port, "POST", "/api/v1/orders", headers, body, resp);
}

bool
tk_wait_http (int port, const char *path, int want_status, int timeout_ms)
{
    for (int64_t end = s_now_ms () + timeout_ms; s_now_ms () < end; usleep (50000)) {
        tk_response_t resp;
        tk_http (port, "GET", path, NULL, NULL, &resp);
        int status = resp.status;
        tk_response_free (&resp);
        if (status == want_status)
            return true;
    }
    return false;
}

//  ---------------------------------------------------------------------
//  WebSocket

typedef struct s_text {
    char *text;
    int64_t at;              /* s_now_ms when it arrived */
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
    item->at = s_now_ms ();
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
    char err[256];
    ws->conn = mg_connect_websocket_client ("127.0.0.1", port, 0, err, sizeof err,
                                            path, NULL, s_ws_data, s_ws_close, ws);
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
static void
s_deadline (clockid_t clock, int timeout_ms, struct timespec *ts)
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
    s_deadline (CLOCK_REALTIME, timeout_ms, &ts);
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

//  ---------------------------------------------------------------------
//  Fault-test helpers

int64_t
tk_now_ms (void)
{
    return s_now_ms ();
}

pid_t
tk_spawn_env (const char *name, const char *const *env, ...)
{
    char *args[TK_ARGS_MAX];
    va_list ap;
    va_start (ap, env);
    s_collect_args (args, va_arg (ap, const char *), ap);
    va_end (ap);
    TK_CHECK (s_proc_count < TK_PROCS_MAX, "too many processes");
    tk_proc_t *proc = &s_procs[s_proc_count++];
    snprintf (proc->log, sizeof proc->log, "%s/%s.log", s_dir, name);
    static const char *const none[] = {NULL};
    proc->pid = s_fork_exec_env (args, proc->log, env ? env : none);
    TK_CHECK (proc->pid > 0, "fork failed");
    return proc->pid;
}

long
tk_rss_kb (pid_t pid)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    long kb = -1;
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = strtol (line + 6, NULL, 10);
    if (f)
        fclose (f);
    return kb;
}

json_t *
tk_get_json (int port, const char *path, int want_status)
{
    tk_response_t r;
    tk_http (port, "GET", path, NULL, NULL, &r);
    json_t *json = r.status == want_status && r.json ? json_incref (r.json) : NULL;
    tk_response_free (&r);
    return json;
}

json_int_t
tk_json_int (json_t *json, const char *path)
{
    char name[128];
    while (json && *path) {
        size_t n = strcspn (path, ".");
        snprintf (name, sizeof name, "%.*s", (int) n, path);
        json = json_object_get (json, name);
        path += n + (path[n] == '.');
    }
    return json_is_integer (json) ? json_integer_value (json) : -1;
}

//  A TCP connection to 127.0.0.1:port, -1 on failure.  rcvbuf > 0 sets
//  SO_RCVBUF first (it must be set before connecting to bound the window).
static int
s_tcp_connect (int port, int rcvbuf)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

static int
s_send_all (int fd, const void *data, size_t len)
{
    const char *p = (const char *) data;
    while (len > 0) {
        ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

void
tk_http_raw (int port, const void *bytes, size_t len, tk_response_t *resp)
{
    memset (resp, 0, sizeof *resp);
    resp->body = calloc (1, 1);
    resp->headers = calloc (1, 1);
    int fd = s_tcp_connect (port, 0);
    if (fd < 0)
        return;
    struct timeval tv = {10, 0};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    s_send_all (fd, bytes, len);   //  the server may close before all is sent
    size_t cap = 4096, used = 0;
    char *buf = malloc (cap);
    ssize_t n;
    while ((n = recv (fd, buf + used, cap - used - 1, 0)) > 0) {
        used += (size_t) n;
        if (cap - used < 2)
            buf = realloc (buf, cap *= 2);
        buf[used] = '\0';
        //  A whole response is in: the server may keep the connection
        //  open (waiting for a body it was promised), so stop here
        char *end = strstr (buf, "\r\n\r\n");
        const char *length = NULL;
        for (char *p = buf; end && p < end && !length; p++)
            if (strncasecmp (p, "\r\nContent-Length:", 17) == 0)
                length = p + 17;
        if (length && used >= (size_t) (end + 4 - buf) + strtoul (length, NULL, 10))
            break;
    }
    buf[used] = '\0';
    close (fd);
    int status;
    if (sscanf (buf, "HTTP/1.%*d %d", &status) == 1)
        resp->status = status;
    char *body = strstr (buf, "\r\n\r\n");
    if (body) {
        free (resp->headers);
        resp->headers = strndup (buf, (size_t) (body - buf));
        free (resp->body);
        resp->body = strdup (body + 4);
        resp->json = json_loads (resp->body, 0, NULL);
    }
    free (buf);
}

int
tk_ws_send (tk_ws_t *ws, int opcode, const void *data, size_t len)
{
    return mg_websocket_client_write (ws->conn, opcode, (const char *) data, len)
                   > 0 || len == 0
               ? 0
               : -1;
}

char *
tk_order_body (const char *table, int lines, bool long_notes, int variant)
{
    static const char *const items[] = {"burger", "fries", "caesar", "soup",
                                        "salmon", "chicken", "risotto",
                                        "calamari"};
    char note[272];
    memset (note, 'n', 270);
    note[270] = '\0';
    size_t cap = 512 + (size_t) lines * 400, len = 0;
    char *body = malloc (cap);
    len += (size_t) snprintf (body + len, cap - len,
                              "{\"table\":\"%s\",\"items\":[", table);
    for (int i = 0; i < lines; i++) {
        note[0] = (char) ('a' + (variant + i) % 26);   //  notes differ too
        len += (size_t) snprintf (
            body + len, cap - len,
            "%s{\"item_id\":\"%s\",\"quantity\":%d%s%s%s}", i ? "," : "",
            items[(i + variant) % 8], (variant + i) % 9 + 1,
            long_notes ? ",\"note\":\"" : "", long_notes ? note : "",
            long_notes ? "\"" : "");
    }
    snprintf (body + len, cap - len, "]}");
    return body;
}

//  ---------------------------------------------------------------------
//  Ledger

typedef struct {
    char *key, *table;
    int status;              //  final status, 0 while pending / no answer
    bool replayed;
    json_int_t id, seq;      //  from the 201
    int64_t acked_ms;
    int64_t waited_ms;       //  first attempt to final answer
} s_entry_t;

struct _tk_ledger_t {
    pthread_mutex_t lock;
    s_entry_t **entries;
    size_t count, cap;
    size_t attempts, busy, no_answer, throttled;
    char first_retry[300];   //  the first answer that was retried, to report
    bool sorted;             //  entries sorted by key (after tallying)
};

tk_ledger_t *
tk_ledger_new (void)
{
    tk_ledger_t *self = calloc (1, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
tk_ledger_destroy (tk_ledger_t **ledger_p)
{
    tk_ledger_t *self = *ledger_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->entries[i]->key);
        free (self->entries[i]->table);
        free (self->entries[i]);
    }
    free (self->entries);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *ledger_p = NULL;
}

static s_entry_t *
s_ledger_add (tk_ledger_t *self, const char *key, const char *table)
{
    s_entry_t *entry = calloc (1, sizeof *entry);
    entry->key = strdup (key);
    entry->table = strdup (table);
    entry->acked_ms = -1;
    pthread_mutex_lock (&self->lock);
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 256;
        self->entries = realloc (self->entries, self->cap * sizeof *self->entries);
    }
    self->entries[self->count++] = entry;
    self->sorted = false;
    pthread_mutex_unlock (&self->lock);
    return entry;
}

int
tk_ledger_place (tk_ledger_t *self, const int *ports, int port_count,
                 int *current, const char *key, const char *table,
                 const char *body, int retry_ms)
{
    s_entry_t *entry = s_ledger_add (self, key, table);
    int64_t start = s_now_ms (), end = start + retry_ms;
    int status = 0;
    while (true) {
        tk_response_t r;
        tk_post_order (ports[*current % port_count], key, body, &r);
        status = r.status;
        //  A gateway killed mid-answer can leave a status line without its
        //  body: as a pad would, take that as no answer and retry the key
        if (status == 201 && json_integer_value (json_object_get (r.json, "id")) < 1)
            status = 0;
        char replayed[16];
        pthread_mutex_lock (&self->lock);
        self->attempts++;
        if (status == 201) {
            entry->id = json_integer_value (json_object_get (r.json, "id"));
            entry->seq = json_integer_value (json_object_get (r.json, "seq"));
            entry->replayed = tk_header (&r, "Idempotent-Replayed", replayed,
                                         sizeof replayed)
                              && strcmp (replayed, "true") == 0;
            entry->acked_ms = s_now_ms ();
        }
        else if (status == 0)
            self->no_answer++;
        else if (status >= 500)
            self->busy++;
        else if (status == 429)
            self->throttled++;
        bool retry = status == 0 || status >= 500 || status == 429;
        if (retry && !*self->first_retry)
            snprintf (self->first_retry, sizeof self->first_retry, "%d %s",
                      status, r.body ? r.body : "(no answer)");
        if (!retry)
            entry->status = status;
        pthread_mutex_unlock (&self->lock);
        tk_response_free (&r);
        if (!retry || s_now_ms () >= end) {
            pthread_mutex_lock (&self->lock);
            entry->waited_ms = s_now_ms () - start;
            pthread_mutex_unlock (&self->lock);
            break;
        }
        //  A pad would wait Retry-After (1 s); retrying sooner keeps the
        //  load on while the fault lasts.  A dead gateway: try the next.
        if (port_count > 1)
            *current = (*current + 1) % port_count;
        usleep (50 * 1000);
    }
    return status;
}

static int
s_entry_cmp (const void *a, const void *b)
{
    return strcmp ((*(s_entry_t *const *) a)->key, (*(s_entry_t *const *) b)->key);
}

//  Entry for key in the sorted ledger, or NULL.  Lock held.
static s_entry_t *
s_ledger_find (tk_ledger_t *self, const char *key)
{
    if (!self->sorted) {
        qsort (self->entries, self->count, sizeof *self->entries, s_entry_cmp);
        self->sorted = true;
    }
    s_entry_t probe = {.key = (char *) key}, *pp = &probe;
    s_entry_t **found = bsearch (&pp, self->entries, self->count,
                                 sizeof *self->entries, s_entry_cmp);
    return found ? *found : NULL;
}

int64_t
tk_ledger_acked_ms (tk_ledger_t *self, const char *key)
{
    pthread_mutex_lock (&self->lock);
    s_entry_t *entry = s_ledger_find (self, key);
    int64_t ms = entry ? entry->acked_ms : -1;
    pthread_mutex_unlock (&self->lock);
    return ms;
}

typedef struct {
    char *key, *table;
    json_int_t id, seq;
} s_stored_t;

static int
s_stored_cmp (const void *a, const void *b)
{
    return strcmp (((const s_stored_t *) a)->key, ((const s_stored_t *) b)->key);
}

static int
s_jint_cmp (const void *a, const void *b)
{
    json_int_t x = *(const json_int_t *) a, y = *(const json_int_t *) b;
    return (x > y) - (x < y);
}

//  Every stored order, read page by page; NULL if a page failed.
static s_stored_t *
s_read_store (int port, int page_limit, size_t *count)
{
    size_t cap = 1024;
    s_stored_t *stored = malloc (cap * sizeof *stored);
    *count = 0;
    char path[128];
    snprintf (path, sizeof path, "/api/v1/orders?limit=%d", page_limit);
    while (true) {
        json_t *page = NULL;
        for (int attempt = 0; !page && attempt < 20; attempt++)
            if (!(page = tk_get_json (port, path, 200)))
                usleep (250 * 1000);
        if (!page) {
            free (stored);   //  keys are freed by the caller's loop below
            return NULL;
        }
        size_t i;
        json_t *order;
        json_array_foreach (json_object_get (page, "orders"), i, order) {
            if (*count == cap)
                stored = realloc (stored, (cap *= 2) * sizeof *stored);
            s_stored_t *s = &stored[(*count)++];
            const char *key =
                json_string_value (json_object_get (order, "idempotency_key"));
            const char *table =
                json_string_value (json_object_get (order, "table"));
            s->key = strdup (key ? key : "");
            s->table = strdup (table ? table : "");
            s->id = json_integer_value (json_object_get (order, "id"));
            s->seq = json_integer_value (json_object_get (order, "seq"));
        }
        json_t *next = json_object_get (page, "next_cursor");
        bool more = json_is_string (next);
        if (more)
            snprintf (path, sizeof path, "/api/v1/orders?limit=%d&cursor=%s",
                      page_limit, json_string_value (next));
        json_decref (page);
        if (!more)
            return stored;
    }
}

bool
tk_ledger_tally (tk_ledger_t *self, int port, int page_limit, tk_tally_t *t)
{
    memset (t, 0, sizeof *t);
    size_t count;
    s_stored_t *stored = s_read_store (port, page_limit, &count);
    if (!stored)
        return false;
    t->stored = count;
    qsort (stored, count, sizeof *stored, s_stored_cmp);
    json_int_t *seqs = calloc (count ? count : 1, sizeof *seqs);
    pthread_mutex_lock (&self->lock);
    t->sent = self->count;
    t->attempts = self->attempts;
    t->busy = self->busy;
    t->no_answer = self->no_answer;
    t->throttled = self->throttled;
    snprintf (t->first_retry, sizeof t->first_retry, "%s", self->first_retry);
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *e = self->entries[i];
        t->acked += e->acked_ms >= 0;
        t->replayed += e->acked_ms >= 0 && e->replayed;
        t->refused += e->status >= 400 && e->status < 500 && e->status != 0;
        t->unresolved += e->acked_ms < 0 && (e->status == 0 || e->status == 429);
        if (e->waited_ms > t->slowest_ms)
            t->slowest_ms = e->waited_ms;
    }
    for (size_t i = 0; i < count; i++) {
        s_stored_t *s = &stored[i];
        seqs[i] = s->seq;
        if (i > 0 && strcmp (s->key, stored[i - 1].key) == 0) {
            t->duplicates++;
            continue;
        }
        s_entry_t *e = s_ledger_find (self, s->key);
        if (!e)
            t->unknown++;
        else if (strcmp (e->table, s->table) != 0
                 || (e->acked_ms >= 0 && (e->id != s->id || e->seq != s->seq))) {
            if (t->mismatched++ == 0)
                fprintf (stderr, "mismatch: key %s: the 201 said order %lld seq "
                         "%lld table %s; the store has order %lld seq %lld "
                         "table %s\n", s->key, (long long) e->id,
                         (long long) e->seq, e->table, (long long) s->id,
                         (long long) s->seq, s->table);
        }
    }
    //  Acknowledged keys missing from the store
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *e = self->entries[i];
        s_stored_t probe = {.key = e->key};
        if (e->acked_ms >= 0
            && !bsearch (&probe, stored, count, sizeof *stored, s_stored_cmp))
            t->lost++;
    }
    pthread_mutex_unlock (&self->lock);
    //  Orders are only ever placed, so their seqs must be exactly 1..N
    qsort (seqs, count, sizeof *seqs, s_jint_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && seqs[i] == seqs[i - 1])
            t->seq_dups++;
        else if (seqs[i] >= 1)
            distinct++;
    }
    t->max_seq = count ? seqs[count - 1] : 0;
    t->seq_gaps = (size_t) t->max_seq - distinct;
    for (size_t i = 0; i < count; i++) {
        free (stored[i].key);
        free (stored[i].table);
    }
    free (stored);
    free (seqs);
    return true;
}

void
tk_tally_check_exact (const tk_tally_t *t)
{
    TK_CHECK (t->refused == 0, "%zu orders refused with a 4xx (a retry with "
              "the same key and body must never be refused)", t->refused);
    TK_CHECK (t->unresolved == 0, "%zu orders got no 201 within 30 s of "
              "retrying", t->unresolved);
    TK_CHECK (t->lost == 0, "%zu acknowledged orders are not stored", t->lost);
    TK_CHECK (t->duplicates == 0, "%zu orders stored twice", t->duplicates);
    TK_CHECK (t->unknown == 0, "%zu stored orders with keys nobody sent",
              t->unknown);
    TK_CHECK (t->mismatched == 0, "%zu stored orders differ from their 201",
              t->mismatched);
    TK_CHECK (t->stored == t->acked, "stored %zu, acknowledged %zu", t->stored,
              t->acked);
    TK_CHECK (t->seq_gaps == 0 && t->seq_dups == 0
                  && t->max_seq == (json_int_t) t->stored,
              "order seqs are not exactly 1..%zu: max %lld, gaps %zu, doubled %zu",
              t->stored, (long long) t->max_seq, t->seq_gaps, t->seq_dups);
}

void
tk_tally_print (const char *what, const tk_tally_t *t)
{
    printf ("%s: sent %zu, acknowledged %zu (replayed %zu), refused %zu, "
            "unresolved %zu; attempts %zu (retried after 5xx %zu, after no "
            "answer %zu, after 429 %zu; slowest order %lld ms); stored %zu, "
            "duplicates %zu, unknown %zu, lost %zu, mismatched %zu; seq max "
            "%lld, gaps %zu, doubled %zu\n",
            what, t->sent, t->acked, t->replayed, t->refused, t->unresolved,
            t->attempts, t->busy, t->no_answer, t->throttled,
            (long long) t->slowest_ms, t->stored, t->duplicates,
            t->unknown, t->lost, t->mismatched, (long long) t->max_seq,
            t->seq_gaps, t->seq_dups);
    if (*t->first_retry)
        printf ("%s: the first answer retried was: %s\n", what, t->first_retry);
    fflush (stdout);
}

//  ---------------------------------------------------------------------
//  Load

struct _tk_load_t {
    tk_ledger_t *ledger;
    tk_load_opts_t opts;     //  ports and prefix point into the copies below
    int *ports;
    char *prefix;
    pthread_t *threads;
    atomic_bool stop;
    atomic_int started;      //  orders begun, for max_orders
    atomic_size_t done;
};

typedef struct {
    tk_load_t *load;
    int index;
} s_client_arg_t;

static void *
s_load_client (void *arg_)
{
    s_client_arg_t *arg = (s_client_arg_t *) arg_;
    tk_load_t *load = arg->load;
    const tk_load_opts_t *o = &load->opts;
    int current = 0;   //  every client starts on the first gateway
    for (int n = 0; !atomic_load (&load->stop); n++) {
        if (o->max_orders && atomic_fetch_add (&load->started, 1) >= o->max_orders)
            break;
        char key[128], table[16];
        snprintf (key, sizeof key, "%s-%d-%d", o->prefix, arg->index, n);
        snprintf (table, sizeof table, "T%d", (arg->index * 7 + n) % 40 + 1);
        char *body = tk_order_body (table, o->lines, o->long_notes,
                                    arg->index * 1000 + n);
        tk_ledger_place (load->ledger, o->ports, o->port_count, &current, key,
                         table, body, o->retry_ms);
        free (body);
        atomic_fetch_add (&load->done, 1);
    }
    free (arg);
    return NULL;
}

tk_load_t *
tk_load_start (tk_ledger_t *ledger, const tk_load_opts_t *opts)
{
    tk_load_t *self = calloc (1, sizeof *self);
    self->ledger = ledger;
    self->opts = *opts;
    //  The caller's array and string may not outlive this call
    self->ports = malloc ((size_t) opts->port_count * sizeof (int));
    memcpy (self->ports, opts->ports, (size_t) opts->port_count * sizeof (int));
    self->opts.ports = self->ports;
    self->prefix = strdup (opts->prefix);
    self->opts.prefix = self->prefix;
    self->threads = calloc ((size_t) opts->threads, sizeof (pthread_t));
    for (int i = 0; i < opts->threads; i++) {
        s_client_arg_t *arg = malloc (sizeof *arg);
        arg->load = self;
        arg->index = i;
        pthread_create (&self->threads[i], NULL, s_load_client, arg);
    }
    return self;
}

size_t
tk_load_done (tk_load_t *self)
{
    return atomic_load (&self->done);
}

void
tk_load_stop (tk_load_t **load_p)
{
    if (*load_p)
        atomic_store (&(*load_p)->stop, true);
    tk_load_join (load_p);
}

void
tk_load_join (tk_load_t **load_p)
{
    tk_load_t *self = *load_p;
    if (!self)
        return;
    for (int i = 0; i < self->opts.threads; i++)
        pthread_join (self->threads[i], NULL);
    free (self->threads);
    free (self->ports);
    free (self->prefix);
    free (self);
    *load_p = NULL;
}

//  ---------------------------------------------------------------------
//  Follower

struct _tk_follower_t {
    int port;
    char name[64];
    pthread_t thread;
    atomic_bool stop;
    bool running;
    pthread_mutex_t lock;    //  guards below
    pthread_cond_t cond;
    tk_follow_stats_t stats;
    tk_event_t *events;
    size_t cap;
};

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
static tk_ws_t *
s_ws_try_open (int port, const char *path)
{
    tk_ws_t *ws = calloc (1, sizeof *ws);
    pthread_mutex_init (&ws->lock, NULL);
    pthread_cond_init (&ws->cond, NULL);
    char err[256];
    ws->conn = mg_connect_websocket_client ("127.0.0.1", port, 0, err, sizeof err,
                                            path, NULL, s_ws_data_pong,
                                            s_ws_close, ws);
    if (!ws->conn) {
        pthread_mutex_destroy (&ws->lock);
        pthread_cond_destroy (&ws->cond);
        free (ws);
        return NULL;
    }
    return ws;
}

static void
s_follow_event (tk_follower_t *self, json_t *msg, int64_t at)
{
    tk_follow_stats_t *st = &self->stats;
    json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
    if (st->start < 0) {
        st->errors++;   //  an event before any snapshot: nothing to apply to
        return;
    }
    if (seq <= st->last) {
        st->duplicates++;
        return;
    }
    if (seq > st->last + 1)
        st->gaps += (size_t) (seq - st->last - 1);
    if (st->events == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 1024;
        self->events = realloc (self->events, self->cap * sizeof *self->events);
    }
    json_t *order = json_object_get (msg, "order");
    const char *key = json_string_value (json_object_get (order, "idempotency_key"));
    tk_event_t *e = &self->events[st->events++];
    e->seq = seq;
    e->id = json_integer_value (json_object_get (order, "id"));
    e->key = strdup (key ? key : "");
    e->arrived_ms = at;
    st->last = seq;
}

static void
s_follow_apply (tk_follower_t *self, json_t *msg, int64_t at)
{
    const char *type = json_string_value (json_object_get (msg, "type"));
    tk_follow_stats_t *st = &self->stats;
    pthread_mutex_lock (&self->lock);
    if (type && strcmp (type, "snapshot") == 0) {
        json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
        if (st->start < 0)
            st->start = seq;
        else {
            //  A snapshot after the first: whatever lay between our last
            //  event and it reached this browser as state, not as events
            st->snapshots++;
            if (seq > st->last)
                st->gaps += (size_t) (seq - st->last);
            else
                st->duplicates += (size_t) (st->last - seq);
        }
        st->last = seq;
    }
    else if (type && strcmp (type, "event") == 0)
        s_follow_event (self, msg, at);
    else
        st->errors++;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
}

static void *
s_follower_run (void *arg)
{
    tk_follower_t *self = (tk_follower_t *) arg;
    tk_ws_t *ws = NULL;
    bool connected_once = false;
    while (!atomic_load (&self->stop)) {
        if (!ws) {
            char path[64] = "/ws";
            pthread_mutex_lock (&self->lock);
            if (self->stats.start >= 0)
                snprintf (path, sizeof path, "/ws?resume_from=%lld",
                          (long long) self->stats.last);
            pthread_mutex_unlock (&self->lock);
            ws = s_ws_try_open (self->port, path);
            if (!ws) {
                usleep (200 * 1000);   //  as a browser's reconnect delay
                continue;
            }
            pthread_mutex_lock (&self->lock);
            self->stats.reconnects += connected_once;
            pthread_mutex_unlock (&self->lock);
            connected_once = true;
        }
        int64_t at = 0;
        json_t *msg = tk_ws_next_at (ws, 100, &at);
        if (msg) {
            s_follow_apply (self, msg, at);
            json_decref (msg);
        }
        else if (tk_ws_closed (ws)) {
            tk_ws_close (&ws);
            usleep (200 * 1000);
        }
    }
    tk_ws_close (&ws);
    return NULL;
}

tk_follower_t *
tk_follower_new (int port, const char *name)
{
    tk_follower_t *self = calloc (1, sizeof *self);
    self->port = port;
    snprintf (self->name, sizeof self->name, "%s", name);
    self->stats.start = self->stats.last = -1;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_create (&self->thread, NULL, s_follower_run, self);
    self->running = true;
    return self;
}

void
tk_follower_stats (tk_follower_t *self, tk_follow_stats_t *stats)
{
    pthread_mutex_lock (&self->lock);
    *stats = self->stats;
    pthread_mutex_unlock (&self->lock);
}

bool
tk_follower_wait (tk_follower_t *self, json_int_t seq, int timeout_ms)
{
    struct timespec ts;
    s_deadline (CLOCK_MONOTONIC, timeout_ms, &ts);
    pthread_mutex_lock (&self->lock);
    while (self->stats.last < seq
           && pthread_cond_timedwait (&self->cond, &self->lock, &ts) != ETIMEDOUT)
        ;
    bool reached = self->stats.last >= seq;
    pthread_mutex_unlock (&self->lock);
    return reached;
}

void
tk_follower_print (const char *what, tk_follower_t *self)
{
    tk_follow_stats_t st;
    tk_follower_stats (self, &st);
    printf ("%s: %s: from seq %lld to %lld, events %zu, gaps %zu, "
            "duplicates %zu, snapshots after the first %zu, reconnects %zu, "
            "errors %zu\n",
            what, self->name, (long long) st.start, (long long) st.last,
            st.events, st.gaps, st.duplicates, st.snapshots, st.reconnects,
            st.errors);
    fflush (stdout);
}

void
tk_follower_stop (tk_follower_t *self)
{
    if (!self->running)
        return;
    atomic_store (&self->stop, true);
    pthread_join (self->thread, NULL);
    self->running = false;
}

const tk_event_t *
tk_follower_events (tk_follower_t *self, size_t *count)
{
    *count = self->stats.events;
    return self->events;
}

void
tk_follower_destroy (tk_follower_t **follower_p)
{
    tk_follower_t *self = *follower_p;
    if (!self)
        return;
    tk_follower_stop (self);
    for (size_t i = 0; i < self->stats.events; i++)
        free (self->events[i].key);
    free (self->events);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->cond);
    free (self);
    *follower_p = NULL;
}

//  ---------------------------------------------------------------------
//  WebSocket by hand

int
tk_ws_raw_open (int port, const char *path, int rcvbuf)
{
    int fd = s_tcp_connect (port, rcvbuf);
    if (fd < 0)
        return -1;
    char request[1024];
    int len = snprintf (request, sizeof request,
                        "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n",
                        path, port);
    struct timeval tv = {10, 0};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    //  Byte by byte, so no frame after the headers is consumed here
    char head[4096];
    size_t used = 0;
    if (s_send_all (fd, request, (size_t) len) == 0)
        while (used < sizeof head - 1 && recv (fd, head + used, 1, 0) == 1)
            if (++used >= 4 && memcmp (head + used - 4, "\r\n\r\n", 4) == 0)
                break;
    head[used] = '\0';
    struct timeval none = {0, 0};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    if (strncmp (head, "HTTP/1.1 101", 12) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

int
tk_ws_raw_send (int fd, unsigned char first_byte, const void *data, size_t len,
                bool masked)
{
    unsigned char head[14];
    size_t h = 0;
    head[h++] = first_byte;
    unsigned char mask_bit = masked ? 0x80 : 0;
    if (len < 126)
        head[h++] = mask_bit | (unsigned char) len;
    else if (len < 65536) {
        head[h++] = mask_bit | 126;
        head[h++] = (unsigned char) (len >> 8);
        head[h++] = (unsigned char) len;
    }
    else {
        head[h++] = mask_bit | 127;
        for (int i = 7; i >= 0; i--)
            head[h++] = (unsigned char) ((uint64_t) len >> (8 * i));
    }
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (masked)
        for (int i = 0; i < 4; i++)
            head[h++] = key[i];
    unsigned char *payload = malloc (len ? len : 1);
    for (size_t i = 0; i < len; i++)
        payload[i] = ((const unsigned char *) data)[i] ^ (masked ? key[i % 4] : 0);
    int rc = s_send_all (fd, head, h) == 0 && s_send_all (fd, payload, len) == 0
                 ? 0
                 : -1;
    free (payload);
    return rc;
}

//  Parse one server frame at buf[0..len); its total size, or 0 if it is
//  not all there yet.
static size_t
s_ws_frame (const unsigned char *buf, size_t len, int *opcode,
            const unsigned char **payload, uint64_t *payload_len)
{
    if (len < 2)
        return 0;
    size_t h = 2;
    uint64_t n = buf[1] & 0x7f;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = (uint64_t) buf[2] << 8 | buf[3];
        h = 4;
    }
    else if (n == 127) {
        if (len < 10)
            return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | buf[2 + i];
        h = 10;
    }
    if (buf[1] & 0x80)
        h += 4;   //  servers do not mask, but skip a mask if one came
    if (len < h || len - h < n)
        return 0;
    *opcode = buf[0] & 0x0f;
    *payload = buf + h;
    *payload_len = n;
    return h + (size_t) n;
}

//  Exactly n bytes into buf (NULL: discard), or -1 on EOF/timeout.
static int
s_recv_exact (int fd, unsigned char *buf, size_t n, int64_t deadline)
{
    unsigned char scrap[4096];
    while (n > 0) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - s_now_ms ();
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
    int64_t deadline = s_now_ms () + timeout_ms;
    unsigned char head[8];
    if (s_recv_exact (fd, head, 2, deadline) != 0)
        return -1;
    uint64_t n = head[1] & 0x7f;
    size_t extra = n == 126 ? 2 : n == 127 ? 8 : 0;
    unsigned char ext[8];
    if (extra && s_recv_exact (fd, ext, extra, deadline) != 0)
        return -1;
    if (extra) {
        n = 0;
        for (size_t i = 0; i < extra; i++)
            n = n << 8 | ext[i];
    }
    if ((head[1] & 0x80) && s_recv_exact (fd, NULL, 4, deadline) != 0)
        return -1;
    size_t keep = buf && cap ? (n < cap - 1 ? (size_t) n : cap - 1) : 0;
    if (s_recv_exact (fd, (unsigned char *) buf, keep, deadline) != 0
        || s_recv_exact (fd, NULL, (size_t) n - keep, deadline) != 0)
        return -1;
    if (buf && cap)
        buf[keep] = '\0';
    *len = (size_t) n;
    return head[0] & 0x0f;
}

void
tk_ws_raw_drain (int fd, int timeout_ms, tk_ws_raw_end_t *end)
{
    memset (end, 0, sizeof *end);
    end->close_code = -1;
    size_t cap = 1 << 20, used = 0, pos = 0;
    unsigned char *buf = malloc (cap);
    while (true) {
        struct pollfd p = {fd, POLLIN, 0};
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
        int opcode;
        const unsigned char *payload;
        uint64_t plen;
        size_t flen;
        bool closed = false;
        while ((flen = s_ws_frame (buf + pos, used - pos, &opcode, &payload, &plen))) {
            //  No extension was negotiated, so RSV bits must be 0; our
            //  server only sends JSON objects as text
            bool sane = (buf[pos] & 0x70) == 0
                        && (opcode <= 2 || (opcode >= 8 && opcode <= 10))
                        && (opcode != MG_WEBSOCKET_OPCODE_TEXT
                            || (plen > 0 && payload[0] == '{'));
            if (!sane) {
                end->garbled = true;
                end->garbled_at = end->bytes - (used - pos);
                closed = true;
                break;
            }
            pos += flen;
            end->frames++;
            end->text_frames += opcode == MG_WEBSOCKET_OPCODE_TEXT;
            if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) {
                end->close_code = plen >= 2 ? payload[0] << 8 | payload[1] : 0;
                closed = true;
                break;
            }
        }
        if (closed)
            break;
    }
    free (buf);
}

//  ---------------------------------------------------------------------
//  Proxy

#define S_PROXY_PAIRS 32

struct _tk_proxy_t {
    int listen_fd, target_port, port;
    int wake[2];             //  pipe: commands for the proxy thread
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool frozen, cut, stop;  //  commands; cut is cleared when done
    int pairs[S_PROXY_PAIRS][2];   //  [client, target], proxy thread only
    int pair_count;
};

static void
s_reset_close (int fd)
{
    struct linger lg = {1, 0};   //  RST rather than FIN: the link is gone
    setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close (fd);
}

static void
s_proxy_drop (tk_proxy_t *self, int i, bool reset)
{
    for (int side = 0; side < 2; side++)
        if (reset)
            s_reset_close (self->pairs[i][side]);
        else
            close (self->pairs[i][side]);
    self->pairs[i][0] = self->pairs[self->pair_count - 1][0];
    self->pairs[i][1] = self->pairs[self->pair_count - 1][1];
    self->pair_count--;
}

static void
s_proxy_accept (tk_proxy_t *self)
{
    int client = accept (self->listen_fd, NULL, NULL);
    if (client < 0)
        return;
    fcntl (client, F_SETFD, FD_CLOEXEC);
    int target = s_tcp_connect (self->target_port, 0);
    if (target < 0 || self->pair_count == S_PROXY_PAIRS) {
        s_reset_close (client);
        if (target >= 0)
            close (target);
        return;
    }
    int one = 1;
    setsockopt (client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt (target, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    self->pairs[self->pair_count][0] = client;
    self->pairs[self->pair_count][1] = target;
    self->pair_count++;
}

static void *
s_proxy_run (void *arg)
{
    tk_proxy_t *self = (tk_proxy_t *) arg;
    char *buf = malloc (65536);
    while (true) {
        pthread_mutex_lock (&self->lock);
        bool stop = self->stop, frozen = self->frozen, cut = self->cut;
        pthread_mutex_unlock (&self->lock);
        if (stop)
            break;
        if (cut) {
            while (self->pair_count)
                s_proxy_drop (self, 0, true);
            pthread_mutex_lock (&self->lock);
            self->cut = false;
            pthread_cond_broadcast (&self->cond);
            pthread_mutex_unlock (&self->lock);
        }
        struct pollfd p[2 + 2 * S_PROXY_PAIRS];
        int n = 0;
        p[n++] = (struct pollfd){self->wake[0], POLLIN, 0};
        p[n++] = (struct pollfd){self->listen_fd, POLLIN, 0};
        for (int i = 0; !frozen && i < self->pair_count; i++) {
            p[n++] = (struct pollfd){self->pairs[i][0], POLLIN, 0};
            p[n++] = (struct pollfd){self->pairs[i][1], POLLIN, 0};
        }
        if (poll (p, (nfds_t) n, 1000) <= 0)
            continue;
        if (p[0].revents) {
            char c;
            if (read (self->wake[0], &c, 1) < 0)
                continue;
        }
        if (p[1].revents & POLLIN)
            s_proxy_accept (self);
        //  Forward; the pairs polled are the first ones, in this order
        for (int i = (n - 2) / 2 - 1; i >= 0; i--)
            for (int side = 0; side < 2; side++) {
                if (!(p[2 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t got = recv (self->pairs[i][side], buf, 65536, 0);
                if (got <= 0
                    || s_send_all (self->pairs[i][1 - side], buf, (size_t) got) != 0) {
                    s_proxy_drop (self, i, got < 0);
                    break;
                }
            }
    }
    while (self->pair_count)
        s_proxy_drop (self, 0, true);
    free (buf);
    return NULL;
}

tk_proxy_t *
tk_proxy_new (int target_port)
{
    tk_proxy_t *self = calloc (1, sizeof *self);
    self->target_port = target_port;
    self->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int rc = bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr);
    if (rc == 0)
        rc = listen (self->listen_fd, 16);
    getsockname (self->listen_fd, (struct sockaddr *) &addr, &len);
    self->port = ntohs (addr.sin_port);
    TK_CHECK (rc == 0 && pipe (self->wake) == 0, "proxy: cannot listen");
    fcntl (self->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl (self->wake[1], F_SETFD, FD_CLOEXEC);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->cond, NULL);
    pthread_create (&self->thread, NULL, s_proxy_run, self);
    return self;
}

int
tk_proxy_port (tk_proxy_t *self)
{
    return self->port;
}

static void
s_proxy_wake (tk_proxy_t *self)
{
    if (write (self->wake[1], "w", 1) < 0)
        perror ("proxy wake");
}

void
tk_proxy_freeze (tk_proxy_t *self, bool frozen)
{
    pthread_mutex_lock (&self->lock);
    self->frozen = frozen;
    pthread_mutex_unlock (&self->lock);
    s_proxy_wake (self);
}

void
tk_proxy_cut (tk_proxy_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->cut = true;
    s_proxy_wake (self);
    while (self->cut)
        pthread_cond_wait (&self->cond, &self->lock);
    pthread_mutex_unlock (&self->lock);
}

void
tk_proxy_destroy (tk_proxy_t **proxy_p)
{
    tk_proxy_t *self = *proxy_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_mutex_unlock (&self->lock);
    s_proxy_wake (self);
    pthread_join (self->thread, NULL);
    close (self->listen_fd);
    close (self->wake[0]);
    close (self->wake[1]);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->cond);
    free (self);
    *proxy_p = NULL;
}
