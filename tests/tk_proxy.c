/*  tk_proxy.c — a TCP proxy on loopback, to freeze or cut a link.  */

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tk_internal.h"

//  ---------------------------------------------------------------------
//  Proxy

#define S_PROXY_PAIRS 32

struct _tk_proxy_t {
    int listen_fd, target_port, port;
    int wake[2];   //  pipe: commands for the proxy thread
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool frozen, cut, stop;        //  commands; cut is cleared when done
    int pairs[S_PROXY_PAIRS][2];   //  [client, target], proxy thread only
    int pair_count;
};

static void
s_reset_close (int fd)
{
    struct linger lg = { 1, 0 };   //  RST rather than FIN: the link is gone
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
    int target = tk__tcp_connect (self->target_port, 0);
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
        p[n++] = (struct pollfd){ self->wake[0], POLLIN, 0 };
        p[n++] = (struct pollfd){ self->listen_fd, POLLIN, 0 };
        for (int i = 0; !frozen && i < self->pair_count; i++) {
            p[n++] = (struct pollfd){ self->pairs[i][0], POLLIN, 0 };
            p[n++] = (struct pollfd){ self->pairs[i][1], POLLIN, 0 };
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
                if (!(p[2 + 2 * i + side].revents
                      & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t got = recv (self->pairs[i][side], buf, 65536, 0);
                if (got <= 0
                    || tk__send_all (self->pairs[i][1 - side], buf,
                                     (size_t) got)
                           != 0) {
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
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
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
    tk__auth_alias (self->port, target_port);   //  its target's token
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
