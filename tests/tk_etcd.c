/*  tk_etcd.c — a real etcd and a fake one for the leadership tests.  */

#define _GNU_SOURCE   //  strcasestr

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_etcd.h"
#include "testkit.h"
#include "tk_etcd.h"

const char *
tk_etcd_binary (void)
{
    const char *path = getenv ("ETCD") ? getenv ("ETCD") : "/usr/bin/etcd";
    return access (path, X_OK) == 0 ? path : NULL;
}

static bool
s_etcd_answers (const tk_etcd_t *etcd)
{
    bus_etcd_tls_t tls = { etcd->ca, etcd->client_ca ? etcd->cert : NULL,
                           etcd->client_ca ? etcd->key : NULL };
    //  Plain http:// off loopback (a rig host's address) is insecure
    bus_etcd_t *client =
        bus_etcd_new (etcd->url, etcd->addr && !etcd->cert, &tls, NULL, 0);
    if (!client)
        return false;
    bus_etcd_result_t result;
    int rc = bus_etcd_get (client, "/tk/ping", 500, &result, NULL, 0);
    bus_etcd_destroy (&client);
    return rc == 0;
}

void
tk_etcd_start (tk_etcd_t *etcd, const char *name)
{
    if (etcd->client_port == 0) {
        snprintf (etcd->name, sizeof etcd->name, "%s", name);
        etcd->client_port = tk_port ();
        etcd->peer_port = tk_port ();
        snprintf (etcd->url, sizeof etcd->url, "%s://%s:%d",
                  etcd->cert ? "https" : "http",
                  etcd->addr ? etcd->addr : "127.0.0.1", etcd->client_port);
    }
    char data[1024], peer[64], cluster[128];
    snprintf (data, sizeof data, "%s/%s.etcd", tk_dir (), etcd->name);
    snprintf (peer, sizeof peer, "http://%s:%d",
              etcd->addr ? etcd->addr : "127.0.0.1", etcd->peer_port);
    snprintf (cluster, sizeof cluster, "%s=%s", etcd->name, peer);
    char *argv[32] = { (char *) tk_etcd_binary (),
                       "--name",
                       etcd->name,
                       "--data-dir",
                       data,
                       "--listen-client-urls",
                       etcd->url,
                       "--advertise-client-urls",
                       etcd->url,
                       "--listen-peer-urls",
                       peer,
                       "--initial-advertise-peer-urls",
                       peer,
                       "--initial-cluster",
                       cluster,
                       "--log-level",
                       "warn" };
    int n = 0;
    while (argv[n])
        n++;
    if (etcd->cert) {   //  TLS on the client port
        argv[n++] = "--cert-file";
        argv[n++] = (char *) etcd->cert;
        argv[n++] = "--key-file";
        argv[n++] = (char *) etcd->key;
    }
    if (etcd->client_ca) {   //  and clients must show a certificate
        argv[n++] = "--client-cert-auth";
        argv[n++] = "--trusted-ca-file";
        argv[n++] = (char *) etcd->client_ca;
    }
    etcd->pid = tk_spawn_prog (etcd->name, argv);
    int64_t end = tk_now_ms () + 10000;
    while (!s_etcd_answers (etcd) && tk_now_ms () < end)
        usleep (50000);
    TK_CHECK (s_etcd_answers (etcd), "etcd %s did not start (see %s/%s.log)",
              etcd->name, tk_dir (), etcd->name);
}

void
tk_etcd_start_on (tk_etcd_t *etcd, const char *name, tk_host_t *host)
{
    //  A child begins in its parent thread's network namespace
    int home = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    TK_CHECK (home >= 0, "open this thread's network namespace");
    etcd->addr = tk_host_addr (host);
    tk_host_enter (host);
    tk_etcd_start (etcd, name);
    TK_CHECK (setns (home, CLONE_NEWNET) == 0, "back to this thread's network");
    close (home);
}

//  The state letter of pid in /proc/PID/stat ('T': stopped), or '?'
static char
s_proc_state (pid_t pid)
{
    char path[64], line[512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    char state = '?';
    if (file && fgets (line, sizeof line, file)) {
        const char *paren = strrchr (line, ')');   //  after "pid (comm)"
        if (paren && paren[1] == ' ')
            state = paren[2];
    }
    if (file)
        fclose (file);
    return state;
}

void
tk_etcd_freeze (tk_etcd_t *etcd, bool frozen)
{
    kill (etcd->pid, frozen ? SIGSTOP : SIGCONT);
    int64_t end = tk_now_ms () + 5000;
    while ((s_proc_state (etcd->pid) == 'T') != frozen && tk_now_ms () < end)
        usleep (1000);
    TK_CHECK ((s_proc_state (etcd->pid) == 'T') == frozen, "etcd %s not %s",
              etcd->name, frozen ? "stopped" : "running");
}

void
tk_etcd_stop (tk_etcd_t *etcd)
{
    if (etcd->pid <= 0)
        return;
    kill (etcd->pid, SIGCONT);
    int status = tk_kill (etcd->pid, SIGTERM);
    //  etcd (Go) ends by the signal once it has shut down cleanly
    TK_CHECK (status == 0 || status == 128 + SIGTERM,
              "etcd exited with %d on SIGTERM", status);
    etcd->pid = 0;
}

//  --------------------------------------------------------------------------
//  Fake

struct _tk_fake_t {
    int listen_fd, port;
    int wake[2];
    pthread_t thread;
    tk_fake_fn *handler;
    void *arg;
};

char *
tk_fake_answer (int status, const char *body)
{
    size_t cap = strlen (body) + 128;
    char *raw = malloc (cap);
    snprintf (raw, cap,
              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
              status, strlen (body), body);
    return raw;
}

//  Read one request (headers, then Content-Length bytes); false on EOF
static bool
s_read_request (int fd, char *buf, size_t cap, char **path, char **body)
{
    size_t size = 0;
    char *end = NULL;
    while (!end) {
        ssize_t got = recv (fd, buf + size, cap - 1 - size, 0);
        if (got <= 0)
            return false;
        size += (size_t) got;
        buf[size] = '\0';
        end = strstr (buf, "\r\n\r\n");
        if (!end && size == cap - 1)
            return false;
    }
    const char *length_at = strcasestr (buf, "Content-Length:");
    size_t length = length_at ? strtoul (length_at + 15, NULL, 10) : 0;
    size_t head = (size_t) (end + 4 - buf);
    while (size < head + length && size < cap - 1) {
        ssize_t got = recv (fd, buf + size, cap - 1 - size, 0);
        if (got <= 0)
            return false;
        size += (size_t) got;
    }
    buf[size] = '\0';
    *end = '\0';
    *path = strchr (buf, ' ');
    if (!*path)
        return false;
    (*path)++;
    (*path)[strcspn (*path, " ")] = '\0';
    *body = end + 4;
    return true;
}

static void *
s_fake_run (void *arg)
{
    tk_fake_t *self = arg;
    char *buf = malloc (65536);
    while (true) {
        struct pollfd p[2] = { { self->wake[0], POLLIN, 0 },
                               { self->listen_fd, POLLIN, 0 } };
        if (poll (p, 2, 1000) <= 0)
            continue;
        if (p[0].revents)
            break;
        int fd = accept (self->listen_fd, NULL, NULL);
        char *path, *body;
        if (fd >= 0 && s_read_request (fd, buf, 65536, &path, &body)) {
            char *answer = self->handler (self->arg, path, body);
            if (answer)
                send (fd, answer, strlen (answer), MSG_NOSIGNAL);
            free (answer);
        }
        if (fd >= 0)
            close (fd);
    }
    free (buf);
    return NULL;
}

tk_fake_t *
tk_fake_new (tk_fake_fn *handler, void *arg)
{
    tk_fake_t *self = calloc (1, sizeof *self);
    self->handler = handler;
    self->arg = arg;
    self->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int rc = bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr);
    if (rc == 0)
        rc = listen (self->listen_fd, 16);
    getsockname (self->listen_fd, (struct sockaddr *) &addr, &len);
    self->port = ntohs (addr.sin_port);
    TK_CHECK (rc == 0 && pipe (self->wake) == 0, "fake: cannot listen");
    pthread_create (&self->thread, NULL, s_fake_run, self);
    return self;
}

int
tk_fake_port (tk_fake_t *self)
{
    return self->port;
}

void
tk_fake_destroy (tk_fake_t **fake_p)
{
    tk_fake_t *self = *fake_p;
    if (!self)
        return;
    if (write (self->wake[1], "x", 1) < 0)
        perror ("fake wake");
    pthread_join (self->thread, NULL);
    close (self->listen_fd);
    close (self->wake[0]);
    close (self->wake[1]);
    free (self);
    *fake_p = NULL;
}
