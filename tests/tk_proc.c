/*  tk_proc.c — the testkit's processes: the work dir, spawning and
    killing orderbus nodes, a failed check's exit, free ports.  */

#define _GNU_SOURCE   //  setns
#include <civetweb.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tk_internal.h"

#define TK_ARGS_MAX  64
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
static const char *s_case;   //  the case running, for tk_fail

//  The kit's site secret, and a manager token minted from it
static char s_secret[600];
static char s_token[600];

//  Ports whose requests carry s_token: the HTTP ports of the gateways and
//  edges started with s_secret (target 0), and proxies in front of them
//  (target: the port behind).  Written by the main thread before the
//  count that publishes a row; read from any thread.
#define TK_AUTH_PORTS 128
static struct {
    int port, target;
} s_auth_ports[TK_AUTH_PORTS];
static _Atomic int s_auth_count;
static bool s_auth_off;   //  tk_kit_secret (false)

int64_t
tk_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_auth_init (void);

void
tk_init (int argc, char **argv, const char *test_name)
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s ORDERBUS_BINARY\n", argv[0]);
        exit (2);
    }
    s_bin = argv[1];
    s_name = test_name;
    snprintf (s_dir, sizeof s_dir, "%s/tk-%s-%d",
              getenv ("TK_TMP") ? getenv ("TK_TMP") : ".", test_name,
              (int) getpid ());
    mkdir (s_dir, 0755);
    signal (SIGPIPE, SIG_IGN);
    mg_init_library (0);
    s_auth_init ();
}

const char *
tk_bin (void)
{
    return s_bin;
}
const char *
tk_dir (void)
{
    return s_dir;
}
const char *
tk_source (void)
{
    return TK_SOURCE_DIR;
}

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
    if (s_case)
        fprintf (stderr, "case %s FAILED\n", s_case);
    for (int i = 0; i < s_proc_count; i++)
        if (s_procs[i].pid > 0) {
            kill (s_procs[i].pid, SIGKILL);
            waitpid (s_procs[i].pid, NULL, 0);
            s_procs[i].pid = 0;   //  the rig's exit handler kills the rest
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

//  A slot for a new process: one whose process tk_kill reaped, so that a
//  test may restart a node any number of times, else a new one.
static tk_proc_t *
s_proc_slot (void)
{
    for (int i = 0; i < s_proc_count; i++)
        if (s_procs[i].pid == 0)
            return &s_procs[i];
    TK_CHECK (s_proc_count < TK_PROCS_MAX, "too many processes");
    return &s_procs[s_proc_count++];
}

static void s_auth_args (char **args, int *count);

//  The binary, then first and the rest of ap up to a NULL: a gateway or
//  an edge also gets the kit's secret (s_auth_args).
static int
s_collect_args (char **args, const char *first, va_list ap)
{
    int n = 0;
    args[n++] = (char *) s_bin;
    for (const char *a = first; a && n < TK_ARGS_MAX - 3;
         a = va_arg (ap, const char *))
        args[n++] = (char *) a;
    args[n] = NULL;
    s_auth_args (args, &n);
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
s_fork_exec_in (int netns_fd, char **args, const char *log,
                const char *const *env)
{
    pid_t pid = fork ();
    if (pid == 0) {
        //  Into its host first (the rig, tk_netns.c): a node that cannot
        //  get there must not run in the wrong network
        if (netns_fd >= 0 && setns (netns_fd, CLONE_NEWNET) != 0)
            _exit (126);
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
s_fork_exec_env (char **args, const char *log, const char *const *env)
{
    return s_fork_exec_in (-1, args, log, env);
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
    tk_proc_t *proc = s_proc_slot ();
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
    for (int64_t end = tk_now_ms () + 10000; tk_now_ms () < end;
         usleep (10000)) {
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
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int rc = bind (fd, (struct sockaddr *) &addr, sizeof addr);
    getsockname (fd, (struct sockaddr *) &addr, &len);
    close (fd);
    TK_CHECK (rc == 0, "no free port");
    return ntohs (addr.sin_port);
}

pid_t
tk_spawn_env (const char *name, const char *const *env, ...)
{
    char *args[TK_ARGS_MAX];
    va_list ap;
    va_start (ap, env);
    s_collect_args (args, va_arg (ap, const char *), ap);
    va_end (ap);
    tk_proc_t *proc = s_proc_slot ();
    snprintf (proc->log, sizeof proc->log, "%s/%s.log", s_dir, name);
    static const char *const none[] = { NULL };
    proc->pid = s_fork_exec_env (args, proc->log, env ? env : none);
    TK_CHECK (proc->pid > 0, "fork failed");
    return proc->pid;
}

pid_t
tk__vspawn (int netns_fd, const char *name, const char *const *env,
            const char *first, va_list ap)
{
    char *args[TK_ARGS_MAX];
    s_collect_args (args, first, ap);
    tk_proc_t *proc = s_proc_slot ();
    snprintf (proc->log, sizeof proc->log, "%s/%s.log", s_dir, name);
    proc->pid = s_fork_exec_in (netns_fd, args, proc->log, env);
    TK_CHECK (proc->pid > 0, "fork failed");
    return proc->pid;
}

pid_t
tk_spawn_prog (const char *name, char *const *argv)
{
    char *args[TK_ARGS_MAX];
    int n = 0;
    for (; argv[n] && n < TK_ARGS_MAX - 1; n++)
        args[n] = argv[n];
    args[n] = NULL;
    tk_proc_t *proc = s_proc_slot ();
    snprintf (proc->log, sizeof proc->log, "%s/%s.log", s_dir, name);
    proc->pid = s_fork_exec_env (args, proc->log, NULL);
    TK_CHECK (proc->pid > 0, "fork failed");
    return proc->pid;
}

void
tk__kill_all (void)
{
    for (int i = 0; i < s_proc_count; i++)
        if (s_procs[i].pid > 0)
            kill (s_procs[i].pid, SIGKILL);
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

void
tk_endpoints (char intake[TK_ENDPOINT_LEN], char events[TK_ENDPOINT_LEN],
              char sync[TK_ENDPOINT_LEN])
{
    snprintf (intake, TK_ENDPOINT_LEN, "tcp://127.0.0.1:%d", tk_port ());
    snprintf (events, TK_ENDPOINT_LEN, "tcp://127.0.0.1:%d", tk_port ());
    snprintf (sync, TK_ENDPOINT_LEN, "tcp://127.0.0.1:%d", tk_port ());
}

void
tk_run_cases (const tk_case_t *cases)
{
    for (const tk_case_t *c = cases; c->name; c++) {
        s_case = c->name;
        printf ("case %s ...\n", c->name);
        fflush (stdout);
        c->fn ();
        printf ("case %s OK\n", c->name);
        fflush (stdout);
    }
    s_case = NULL;
}

char *
tk_mint (const char *secret, const char *flag, const char *who)
{
    char *out;
    int rc = tk_run (&out, "token", "--secret-file", secret, "--create-secret",
                     flag, who, NULL);
    TK_CHECK (rc == 0, "orderbus token %s %s: %d %s", flag, who, rc, out);
    //  stdout and stderr share the output: find the token itself
    char *token = strstr (out, "ob1.");
    TK_CHECK (token, "no token in: %s", out);
    token = strndup (token, strcspn (token, "\n"));
    free (out);
    return token;
}

//  ---------------------------------------------------------------------
//  The kit's secret: gateways and edges never run open by default, so the
//  nodes a test starts get one, and its requests a token from it.

static void
s_auth_init (void)
{
    snprintf (s_secret, sizeof s_secret, "%s/tk-secret", s_dir);
    char *out;
    int rc = tk_run (&out, "token", "--secret-file", s_secret,
                     "--create-secret", "--staff", "manager", NULL);
    const char *token = strstr (out, "ob1.");
    TK_CHECK (rc == 0 && token, "cannot make the kit's secret: %d %s", rc, out);
    snprintf (s_token, sizeof s_token, "%.*s", (int) strcspn (token, "\n"),
              token);
    free (out);
}

static void
s_auth_add (int port, int target)
{
    int count = atomic_load (&s_auth_count);
    for (int i = 0; i < count; i++)
        if (s_auth_ports[i].port == port) {
            s_auth_ports[i].target = target;
            return;
        }
    TK_CHECK (count < TK_AUTH_PORTS, "too many ports");
    s_auth_ports[count].port = port;
    s_auth_ports[count].target = target;
    atomic_store (&s_auth_count, count + 1);
}

//  Does the node started with args (its role in args[1]) check tokens
//  by a setting of the test's own?
static bool
s_has_auth (char **args)
{
    static const char *const own[] = { "--secret-file", "--insecure-no-auth",
                                       "--config" };
    for (int i = 2; args[i]; i++)
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
            if (strncmp (args[i], own[k], strlen (own[k])) == 0)
                return true;
    return false;
}

//  The value of --http-port in args, or 0
static int
s_http_port (char **args)
{
    for (int i = 2; args[i]; i++) {
        if (strcmp (args[i], "--http-port") == 0 && args[i + 1])
            return atoi (args[i + 1]);
        if (strncmp (args[i], "--http-port=", 12) == 0)
            return atoi (args[i] + 12);
    }
    return 0;
}

//  A gateway or edge without auth of the test's own gets the kit's
//  secret, right after its role (so the test's flags still come last),
//  and its port is noted.  args has room for two more.
static void
s_auth_args (char **args, int *count)
{
    if (s_auth_off || !args[1]
        || (strcmp (args[1], "gateway") != 0 && strcmp (args[1], "edge") != 0)
        || s_has_auth (args) || *count + 2 >= TK_ARGS_MAX)
        return;
    memmove (args + 4, args + 2, (size_t) (*count - 1) * sizeof *args);
    args[2] = "--secret-file";
    args[3] = s_secret;
    *count += 2;
    int port = s_http_port (args);
    if (port > 0)
        s_auth_add (port, 0);
}

void
tk_kit_secret (bool on)
{
    s_auth_off = !on;
}

const char *
tk_kit_secret_file (void)
{
    return s_secret;
}

const char *
tk__auth_token (int port)
{
    int count = atomic_load (&s_auth_count);
    for (int hops = 0; hops < 2; hops++) {
        int i = 0;
        while (i < count && s_auth_ports[i].port != port)
            i++;
        if (i == count)
            return NULL;
        if (!s_auth_ports[i].target)
            return s_token;
        port = s_auth_ports[i].target;
    }
    return NULL;
}

void
tk__auth_alias (int port, int target_port)
{
    s_auth_add (port, target_port);
}

const char *
tk__auth_path (int port, const char *path, char *buf, size_t cap)
{
    const char *token = tk__auth_token (port);
    if (!token || strstr (path, "token="))
        return path;
    int n = snprintf (buf, cap, "%s%stoken=%s", path,
                      strchr (path, '?') ? "&" : "?", token);
    return n > 0 && (size_t) n < cap ? buf : path;
}

void
tk_keys_new (const char *dir, const char *name, const char *role)
{
    char *out;
    mkdir (dir, 0700);
    int rc = tk_run (&out, "keys", "new", "--name", name, "--role", role,
                     "--out", dir, NULL);
    TK_CHECK (rc == 0, "keys new %s: %d %s", name, rc, out);
    free (out);
}

void
tk_copy_file (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    TK_CHECK (in && out, "copy %s to %s", from, to);
    char buf[4096];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, in)) > 0)
        TK_CHECK (fwrite (buf, 1, n, out) == n, "write %s", to);
    fclose (in);
    TK_CHECK (fclose (out) == 0, "write %s", to);
}

char *
tk_log_text (const char *name)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s.log", s_dir, name);
    FILE *file = fopen (path, "r");
    if (!file)
        return strdup ("");
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    rewind (file);
    char *text = calloc (1, size > 0 ? (size_t) size + 1 : 1);
    if (size > 0 && fread (text, 1, (size_t) size, file) != (size_t) size)
        text[0] = '\0';
    fclose (file);
    return text;
}

size_t
tk_log_size (const char *name)
{
    char *log = tk_log_text (name);
    size_t size = strlen (log);
    free (log);
    return size;
}

bool
tk_log_wait (const char *name, const char *text, size_t from, int timeout_ms)
{
    for (int64_t end = tk_now_ms () + timeout_ms;; usleep (20 * 1000)) {
        char *log = tk_log_text (name);
        bool found = strlen (log) >= from && strstr (log + from, text) != NULL;
        free (log);
        if (found)
            return true;
        if (tk_now_ms () >= end)
            return false;
    }
}
