/*  tk_proxy.c — a TCP proxy, to freeze, cut or slow down a link.  */

#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tk_internal.h"

//  ---------------------------------------------------------------------
//  Proxy

#define S_PROXY_PAIRS 32
#define S_STALL_MS    200   //  a lost segment's cost: Linux's minimum RTO

//  Bytes read from one side, held until due (tk_proxy_impair)
typedef struct _s_chunk_t {
    struct _s_chunk_t *next;
    int64_t due_ms;
    size_t len;
    char data[];
} s_chunk_t;

//  A chunk of length 0 is the end of the stream: the pair is closed when
//  it is due, after everything read before it
typedef struct {
    int fd[2];                      //  client, target
    s_chunk_t *head[2], *tail[2];   //  to send to fd[side], in order
    bool ended[2];                  //  fd[side] said EOF (read no more)
} s_pair_t;

struct _tk_proxy_t {
    int listen_fd, target_port, port;
    int wake[2];   //  pipe: commands for the proxy thread
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool frozen, cut, stop;   //  commands; cut is cleared when done
    int delay_ms, loss_pct;   //  tk_proxy_impair
    size_t stalls;            //  chunks held S_STALL_MS more ("lost")
    unsigned seed;
    s_pair_t pairs[S_PROXY_PAIRS];   //  proxy thread only
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
    s_pair_t *pair = &self->pairs[i];
    for (int side = 0; side < 2; side++) {
        if (reset)
            s_reset_close (pair->fd[side]);
        else
            close (pair->fd[side]);
        while (pair->head[side]) {
            s_chunk_t *next = pair->head[side]->next;
            free (pair->head[side]);
            pair->head[side] = next;
        }
    }
    *pair = self->pairs[--self->pair_count];
}

//  Forward got bytes to side to of pair: now, or queued behind what is
//  held (never overtaking it) until the delay, and for a "lost" chunk
//  S_STALL_MS more, have passed.  0, or -1 if the send failed.
static int
s_proxy_forward (tk_proxy_t *self, s_pair_t *pair, int to, const char *buf,
                 size_t got)
{
    pthread_mutex_lock (&self->lock);
    int delay = self->delay_ms;
    bool lost = self->loss_pct > 0
                && (int) (rand_r (&self->seed) % 100) < self->loss_pct;
    self->stalls += lost;
    pthread_mutex_unlock (&self->lock);
    if (!delay && !lost && !pair->head[to])
        return got ? tk__send_all (pair->fd[to], buf, got) : -1;
    s_chunk_t *chunk = malloc (sizeof *chunk + got);
    chunk->next = NULL;
    chunk->due_ms = tk_now_ms () + delay + (lost ? S_STALL_MS : 0);
    if (pair->tail[to] && pair->tail[to]->due_ms > chunk->due_ms)
        chunk->due_ms = pair->tail[to]->due_ms;
    chunk->len = got;
    memcpy (chunk->data, buf, got);
    if (pair->tail[to])
        pair->tail[to]->next = chunk;
    else
        pair->head[to] = chunk;
    pair->tail[to] = chunk;
    return 0;
}

//  Send the held chunks that are due; the ms until the next one is (at
//  most 1000), or -1 if a send failed (pair *i is dropped).
static int
s_proxy_flush (tk_proxy_t *self, int i)
{
    s_pair_t *pair = &self->pairs[i];
    int wait = 1000;
    for (int to = 0; to < 2; to++)
        while (pair->head[to]) {
            s_chunk_t *chunk = pair->head[to];
            int64_t left = chunk->due_ms - tk_now_ms ();
            if (left > 0) {
                wait = left < wait ? (int) left : wait;
                break;
            }
            if (!chunk->len
                || tk__send_all (pair->fd[to], chunk->data, chunk->len) != 0) {
                s_proxy_drop (self, i, chunk->len != 0);
                return -1;
            }
            pair->head[to] = chunk->next;
            if (!pair->head[to])
                pair->tail[to] = NULL;
            free (chunk);
        }
    return wait;
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
    self->pairs[self->pair_count++] = (s_pair_t){ .fd = { client, target } };
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
        int wait = 1000;
        for (int i = self->pair_count - 1; !frozen && i >= 0; i--) {
            int due = s_proxy_flush (self, i);
            wait = due >= 0 && due < wait ? due : wait;
        }
        struct pollfd p[2 + 2 * S_PROXY_PAIRS];
        int n = 0;
        p[n++] = (struct pollfd){ self->wake[0], POLLIN, 0 };
        p[n++] = (struct pollfd){ self->listen_fd, POLLIN, 0 };
        for (int i = 0; !frozen && i < self->pair_count; i++) {
            for (int side = 0; side < 2; side++)
                p[n++] =
                    (struct pollfd){ self->pairs[i].fd[side],
                                     self->pairs[i].ended[side] ? 0 : POLLIN,
                                     0 };
        }
        if (poll (p, (nfds_t) n, wait) <= 0)
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
                s_pair_t *pair = &self->pairs[i];
                if (pair->ended[side]
                    || !(p[2 + 2 * i + side].revents
                         & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t got = recv (pair->fd[side], buf, 65536, 0);
                //  An EOF goes the way of the data before it (queued
                //  behind it when the link is slowed down)
                pair->ended[side] = got == 0;
                if (got < 0
                    || s_proxy_forward (self, pair, 1 - side, buf, (size_t) got)
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

static void s_proxy_wake (tk_proxy_t *self);

tk_proxy_t *
tk_proxy_new (int target_port)
{
    return tk_proxy_new_on ("127.0.0.1", target_port);
}

tk_proxy_t *
tk_proxy_new_on (const char *addr_text, int target_port)
{
    tk_proxy_t *self = calloc (1, sizeof *self);
    self->target_port = target_port;
    self->seed = (unsigned) getpid () ^ (unsigned) target_port;
    self->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    socklen_t len = sizeof addr;
    int rc = inet_pton (AF_INET, addr_text, &addr.sin_addr) == 1 ? 0 : -1;
    if (rc == 0)
        rc = bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr);
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
    if (strcmp (addr_text, "127.0.0.1") != 0)
        tk_port_addr (self->port, addr_text);
    return self;
}

void
tk_proxy_impair (tk_proxy_t *self, int delay_ms, int loss_pct)
{
    pthread_mutex_lock (&self->lock);
    self->delay_ms = delay_ms;
    self->loss_pct = loss_pct;
    pthread_mutex_unlock (&self->lock);
    s_proxy_wake (self);
}

size_t
tk_proxy_stalls (tk_proxy_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t stalls = self->stalls;
    pthread_mutex_unlock (&self->lock);
    return stalls;
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
