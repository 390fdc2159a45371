/*  testkit.c — process, HTTP and WebSocket helpers for integration tests. */

#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

static pid_t
s_fork_exec (char **args, const char *log)
{
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2 (fd, 1);
        dup2 (fd, 2);
        close (fd);
        execv (args[0], args);
        _exit (127);
    }
    return pid;
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
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
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
