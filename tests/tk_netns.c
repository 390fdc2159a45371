/*  tk_netns.c — the multi-host rig: a bridge and hosts in network
    namespaces, processes and threads in them, links cut and healed
    (tk_netns.h).  */

#define _GNU_SOURCE   //  setns
#include "tk_netns.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tk_internal.h"

#define S_HOSTS_MAX 60
#define S_NETNS_DIR "/run/netns"
#define S_PREFIX    "tkr"   //  + pid + "-": every name the rig makes
#define S_SUBNET    "10.77.0."
#define S_IP_MS     10000   //  bound on one `ip` command

struct _tk_host_t {
    char name[16];
    char ns[48];     //  its namespace: tkr<pid>-<name>
    char veth[16];   //  its veth's end on the bridge (in the bridge's ns)
    char addr[24];
    int fd;   //  the namespace, for setns
};

static char s_prefix[32];   //  tkr<pid>-
static char s_bridge_ns[48];
static char s_log[700];
static tk_host_t s_hosts[S_HOSTS_MAX];
static volatile int s_host_count;
static int s_home_fd = -1;   //  the test's own network namespace
static volatile sig_atomic_t s_bridge_made;

//  ---------------------------------------------------------------------
//  Cleanup: what `ip netns del` does (unmount the namespace's bind mount,
//  remove the file), in system calls only, so that a signal handler may
//  do it too.  The namespace goes once no process is left in it.

//  a, b and c joined into out[cap]; false if they do not fit
static bool
s_join (char *out, size_t cap, const char *a, const char *b, const char *c)
{
    size_t la = strlen (a), lb = strlen (b), lc = strlen (c);
    if (la + lb + lc >= cap)
        return false;
    memcpy (out, a, la);
    memcpy (out + la, b, lb);
    memcpy (out + la + lb, c, lc + 1);
    return true;
}

//  What getdents64 returns, one entry
struct s_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

//  The pid a /proc entry names, 0 if it names none
static pid_t
s_pid (const char *name)
{
    long pid = 0;
    for (const char *c = name; *c; c++)
        if (*c < '0' || *c > '9' || pid > 1L << 30)
            return 0;
        else
            pid = pid * 10 + (*c - '0');
    return (pid_t) pid;
}

//  Whether /proc/<name> is a process (not this one) in the namespace
//  whose inode is want
static bool
s_in_ns (const char *name, const struct stat *want)
{
    pid_t pid = s_pid (name);
    char net[64];
    struct stat got;
    return pid > 0 && pid != getpid ()
           && s_join (net, sizeof net, "/proc/", name, "/ns/net")
           && stat (net, &got) == 0 && got.st_ino == want->st_ino
           && got.st_dev == want->st_dev;
}

//  Every process in namespace ns (but this one, which may have entered
//  it) killed with SIGKILL; how many.  A namespace outlives its mount
//  while a process is in it, and a crashed run's processes (its etcd, a
//  member) would go on running there.  What `ip netns pids` finds, by
//  the inode of each /proc/<pid>/ns/net, in system calls only.
static size_t
s_ns_kill (const char *ns)
{
    char path[128];
    struct stat want;
    if (!s_join (path, sizeof path, S_NETNS_DIR "/", ns, "")
        || stat (path, &want) != 0)
        return 0;
    int dir = open ("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return 0;
    size_t killed = 0;
    char buf[8192] __attribute__ ((aligned (8)));
    long n;
    while ((n = syscall (SYS_getdents64, dir, buf, sizeof buf)) > 0)
        for (long at = 0; at < n;) {
            const struct s_dirent64 *d = (const void *) (buf + at);
            at += d->reclen;
            if (s_in_ns (d->name, &want)
                && kill (s_pid (d->name), SIGKILL) == 0)
                killed++;
        }
    close (dir);
    return killed;
}

static void
s_ns_delete (const char *ns)
{
    char path[128];
    if (!s_join (path, sizeof path, S_NETNS_DIR "/", ns, ""))
        return;
    umount2 (path, MNT_DETACH);
    unlink (path);
}

static void
s_cleanup (void)
{
    tk__kill_all ();
    //  What the kit did not start itself (a helper's child) goes too
    for (int i = 0; i < s_host_count; i++) {
        s_ns_kill (s_hosts[i].ns);
        s_ns_delete (s_hosts[i].ns);
    }
    if (s_bridge_made) {
        s_ns_kill (s_bridge_ns);
        s_ns_delete (s_bridge_ns);
    }
    s_host_count = 0;
    s_bridge_made = 0;
}

static void
s_on_signal (int sig)
{
    s_cleanup ();
    signal (sig, SIG_DFL);
    raise (sig);
}

//  Namespaces of earlier runs whose process is gone, and the processes
//  left in them
static void
s_sweep (void)
{
    DIR *dir = opendir (S_NETNS_DIR);
    if (!dir)
        return;
    size_t swept = 0, killed = 0;
    struct dirent *d;
    while ((d = readdir (dir))) {
        if (strncmp (d->d_name, S_PREFIX, strlen (S_PREFIX)) != 0)
            continue;
        char *end;
        long pid = strtol (d->d_name + strlen (S_PREFIX), &end, 10);
        if (*end != '-' || pid <= 0
            || (kill ((pid_t) pid, 0) != 0 && errno == ESRCH)) {
            killed += s_ns_kill (d->d_name);
            s_ns_delete (d->d_name);
            swept++;
        }
    }
    closedir (dir);
    if (swept)
        printf ("rig: deleted %zu namespaces of earlier runs, killed %zu "
                "processes left in them\n",
                swept, killed);
}

//  ---------------------------------------------------------------------
//  iproute2

//  Run `ip <args>` (NULL-terminated), its output appended to the rig's
//  log; its exit status (-1 if it could not run or took over S_IP_MS).
static int
s_ip (const char *first, ...)
{
    const char *args[32] = { "ip" };
    int n = 1;
    va_list ap;
    va_start (ap, first);
    for (const char *a = first; a && n < 31; a = va_arg (ap, const char *))
        args[n++] = a;
    va_end (ap);
    args[n] = NULL;
    FILE *log = fopen (s_log, "a");
    if (log) {
        for (int i = 0; i < n; i++)
            fprintf (log, "%s%s", i ? " " : "$ ", args[i]);
        fputc ('\n', log);
        fclose (log);
    }
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open (s_log, O_WRONLY | O_APPEND | O_CREAT, 0644);
        dup2 (fd, 1);
        dup2 (fd, 2);
        const char *paths[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip",
                                "/bin/ip" };
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
            execv (paths[i], (char **) args);
        _exit (127);
    }
    if (pid < 0)
        return -1;
    int status;
    for (int64_t end = tk_now_ms () + S_IP_MS; tk_now_ms () < end;
         usleep (2000))
        if (waitpid (pid, &status, WNOHANG) == pid)
            return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    return -1;
}

#define S_IP(...)                                                          \
    TK_CHECK (s_ip (__VA_ARGS__, NULL) == 0, "ip command failed (see %s)", \
              s_log)

static void
s_skip (const char *why)
{
    printf ("SKIP: the multi-host rig cannot run here: %s\n", why);
    fflush (stdout);
    exit (77);
}

//  ---------------------------------------------------------------------
//  The rig

void
tk_rig_init (void)
{
    snprintf (s_log, sizeof s_log, "%s/rig.log", tk_dir ());
    if (geteuid () != 0)
        s_skip ("it makes network namespaces, which needs root");
    snprintf (s_prefix, sizeof s_prefix, S_PREFIX "%d-", (int) getpid ());
    snprintf (s_bridge_ns, sizeof s_bridge_ns, "%sbridge", s_prefix);
    s_sweep ();
    s_home_fd = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (s_home_fd < 0)
        s_skip ("no /proc/self/ns/net");
    atexit (s_cleanup);
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);
    int rc = s_ip ("netns", "add", s_bridge_ns, NULL);
    if (rc != 0) {
        char why[900];
        snprintf (why, sizeof why,
                  "`ip netns add` failed (%s; iproute2 installed? see %s)",
                  rc == 127 ? "no ip command" : "no namespaces", s_log);
        s_skip (why);
    }
    s_bridge_made = 1;
    S_IP ("-n", s_bridge_ns, "link", "set", "lo", "up");
    if (s_ip ("-n", s_bridge_ns, "link", "add", "br0", "type", "bridge", NULL)
        != 0)
        s_skip ("the kernel has no bridge (CONFIG_BRIDGE)");
    S_IP ("-n", s_bridge_ns, "link", "set", "br0", "up");
    printf ("rig: bridge in namespace %s, hosts on " S_SUBNET "0/24 (log %s)\n",
            s_bridge_ns, s_log);
}

tk_host_t *
tk_host_add (const char *name)
{
    TK_CHECK (s_bridge_made, "tk_rig_init first");
    TK_CHECK (s_host_count < S_HOSTS_MAX, "too many hosts");
    TK_CHECK (strlen (name) >= 1 && strlen (name) <= 8
                  && strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789")
                         == strlen (name),
              "host name '%s': 1 to 8 of [a-z0-9]", name);
    int index = s_host_count;
    tk_host_t *host = &s_hosts[index];
    snprintf (host->name, sizeof host->name, "%s", name);
    snprintf (host->ns, sizeof host->ns, "%s%s", s_prefix, name);
    snprintf (host->veth, sizeof host->veth, "v%s", name);
    snprintf (host->addr, sizeof host->addr, S_SUBNET "%d", index + 2);
    host->fd = -1;
    //  Published before the namespace exists, so cleanup deletes it
    s_host_count = index + 1;
    char cidr[32];
    snprintf (cidr, sizeof cidr, "%s/24", host->addr);
    S_IP ("netns", "add", host->ns);
    //  The pair is made in the bridge's namespace, its far end moved
    S_IP ("-n", s_bridge_ns, "link", "add", host->veth, "type", "veth", "peer",
          "name", "eth0", "netns", host->ns);
    S_IP ("-n", s_bridge_ns, "link", "set", host->veth, "master", "br0", "up");
    S_IP ("-n", host->ns, "link", "set", "lo", "up");
    S_IP ("-n", host->ns, "addr", "add", cidr, "dev", "eth0");
    S_IP ("-n", host->ns, "link", "set", "eth0", "up");
    char path[128];
    snprintf (path, sizeof path, S_NETNS_DIR "/%s", host->ns);
    host->fd = open (path, O_RDONLY | O_CLOEXEC);
    TK_CHECK (host->fd >= 0, "open %s", path);
    return host;
}

const char *
tk_host_name (const tk_host_t *host)
{
    return host->name;
}

const char *
tk_host_addr (const tk_host_t *host)
{
    return host->addr;
}

char *
tk_host_endpoint (const tk_host_t *host, int port, char *buf)
{
    snprintf (buf, TK_ENDPOINT_LEN, "tcp://%s:%d", host->addr, port);
    return buf;
}

void
tk_host_enter (const tk_host_t *host)
{
    int fd = host ? host->fd : s_home_fd;
    TK_CHECK (fd >= 0 && setns (fd, CLONE_NEWNET) == 0, "setns into %s: %s",
              host ? host->name : "the test's network", strerror (errno));
}

pid_t
tk_host_spawn (tk_host_t *host, const char *name, ...)
{
    static const char *const same_env[] = { NULL };
    va_list ap;
    va_start (ap, name);
    const char *first = va_arg (ap, const char *);
    pid_t pid = tk__vspawn (host->fd, name, same_env, first, ap);
    va_end (ap);
    return pid;
}

void
tk_host_link (tk_host_t *host, bool up)
{
    S_IP ("-n", s_bridge_ns, "link", "set", host->veth, up ? "up" : "down");
}

void
tk_host_pair (tk_host_t *a, tk_host_t *b, bool connected)
{
    tk_host_t *ends[2][2] = { { a, b }, { b, a } };
    for (int i = 0; i < 2; i++) {
        char to[32];
        snprintf (to, sizeof to, "%s/32", ends[i][1]->addr);
        S_IP ("-n", ends[i][0]->ns, "route", connected ? "del" : "add",
              "blackhole", to);
    }
}

const char *
tk_rig_log (void)
{
    return s_log;
}

void
tk_node_wait (const tk_node_t *node, const char *name)
{
    const char *addr = tk_host_addr (node->host);
    tk_port_addr (node->port, addr);
    TK_CHECK (tk_wait_http (node->port, "/healthz", 200, 20000),
              "%s on %s:%d healthy, seen from this thread's host", name, addr,
              node->port);
}
