/*  bus_fanout.c — a few sender threads writing browsers' queues out.

    Locks, in the order they may be taken: a peer's connection lock
    (bus_http_ws_lock, the server's own), then the peer's lock, then the
    fan-out's lock.  Pushers take the peer's lock and, to schedule a
    peer, the fan-out's; senders take the connection lock only around a
    write.  */

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_fanout.h"

#define S_BATCH       64      //  frames per write, at most...
#define S_BATCH_BYTES 65536   //  ...and about this many bytes
#define S_QUEUE_START 16      //  a queue grows to its cap when needed
#define S_RETRY_MS    10      //  a blocked peer is tried this often
#define S_FINISH_MS   2000    //  a sender's write once begun must end
#define S_START_MS    30000   //  ...and a browser's first messages

typedef enum { S_NOWHERE, S_READY, S_BLOCKED } s_where_t;
typedef enum { S_DONE, S_MORE, S_STUCK, S_GONE } s_outcome_t;

struct _bus_fanout_peer_t {
    bus_http_ws_t *ws;   //  borrowed; NULL: nobody else writes fd
    int fd;
    int sndbuf;              //  socket's send buffer, last we looked
    pthread_mutex_t lock;    //  guards the queue and flags below
    bus_wsframe_t **queue;   //  ring of size frames
    size_t size, head, count;
    bool scheduled;   //  listed or being written: a push
                      //  need not schedule it again
    bool held;        //  bus_fanout_start has not finished:
                      //  its queue is not capped
    bool cut;         //  fell too far behind: close, hang up
    bool gone;        //  hung up on: takes nothing more
    //  Guarded by the fan-out's lock
    int busy;       //  senders holding it (0, or 1 while
                    //  another picks it up just after)
    bool leaving;   //  bus_fanout_leave is waiting
    s_where_t where;
    struct _bus_fanout_peer_t *prev, *next;
};

typedef struct {
    bus_fanout_peer_t *head, *tail;
} s_list_t;

struct _bus_fanout_t {
    size_t cap;   //  frames a peer may queue
    size_t thread_count;
    pthread_t *threads;
    bus_wsframe_t *close_slow;   //  what a cut-off peer is told
    pthread_mutex_t lock;        //  guards everything below
    pthread_cond_t work;         //  a peer is ready, or stop
    pthread_cond_t idle;         //  a leaving peer's write ended
    s_list_t ready;              //  peers with frames to write
    s_list_t blocked;            //  ...whose sockets were full
    int64_t retry_at;            //  monotonic ms: try the blocked again
    size_t sleepers;             //  senders waiting for work
    bool stop;
    atomic_size_t hung_up;   //  peers hung up on after a failed write
};

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  ---------------------------------------------------------------------
//  Lists of peers (fan-out lock held)

static void
s_list_append (s_list_t *list, bus_fanout_peer_t *peer, s_where_t where)
{
    peer->where = where;
    peer->next = NULL;
    peer->prev = list->tail;
    if (list->tail)
        list->tail->next = peer;
    else
        list->head = peer;
    list->tail = peer;
}

static void
s_list_remove (s_list_t *list, bus_fanout_peer_t *peer)
{
    if (peer->prev)
        peer->prev->next = peer->next;
    else
        list->head = peer->next;
    if (peer->next)
        peer->next->prev = peer->prev;
    else
        list->tail = peer->prev;
    peer->prev = peer->next = NULL;
    peer->where = S_NOWHERE;
}

//  Move every peer of from to the end of to.
static void
s_list_splice (s_list_t *to, s_list_t *from, s_where_t where)
{
    while (from->head) {
        bus_fanout_peer_t *peer = from->head;
        s_list_remove (from, peer);
        s_list_append (to, peer, where);
    }
}

//  ---------------------------------------------------------------------
//  A peer's queue (peer lock held)

static void
s_queue_drop (bus_fanout_peer_t *peer)
{
    for (; peer->count; peer->count--) {
        bus_wsframe_unref (&peer->queue[peer->head]);
        peer->head = (peer->head + 1) % peer->size;
    }
    peer->head = 0;
}

//  Make room for one more frame if the cap allows.  false if it does not
//  (or memory ran out: the peer then falls behind like a slow one).  A
//  held peer has no cap: its first messages (what a resuming browser
//  missed, up to the edge's ring) may be more than the cap, and are
//  written by bus_fanout_start before the cap applies.
static bool
s_queue_grow (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    size_t cap = peer->held ? SIZE_MAX / 2 : self->cap;
    if (peer->count >= cap)
        return false;
    if (peer->count < peer->size)
        return true;
    size_t size = peer->size * 2 < cap ? peer->size * 2 : cap;
    bus_wsframe_t **queue =
        size > peer->size ? malloc (size * sizeof *queue) : NULL;
    if (!queue)
        return false;
    for (size_t i = 0; i < peer->count; i++)
        queue[i] = peer->queue[(peer->head + i) % peer->size];
    free (peer->queue);
    peer->queue = queue;
    peer->size = size;
    peer->head = 0;
    return true;
}

//  ---------------------------------------------------------------------
//  Writing (sender threads)

static void
s_conn_lock (bus_fanout_peer_t *peer)
{
    if (peer->ws)
        bus_http_ws_lock (peer->ws);
}

static void
s_conn_unlock (bus_fanout_peer_t *peer)
{
    if (peer->ws)
        bus_http_ws_unlock (peer->ws);
}

//  Can the socket take bytes more without blocking?  SO_SNDBUF counts the
//  kernel's bookkeeping as well as the data, so only half of it is taken
//  to be room for data.  An empty socket takes any one batch: a frame may
//  be bigger than the whole buffer.  Needs no connection lock.
static bool
s_has_room (bus_fanout_peer_t *peer, size_t bytes)
{
    int queued = 0;
    if (ioctl (peer->fd, SIOCOUTQ, &queued) != 0 || queued <= 0)
        return true;
    if ((size_t) queued + bytes <= (size_t) peer->sndbuf / 2)
        return true;
    //  The kernel grows the buffer as the connection goes: look again
    socklen_t len = sizeof peer->sndbuf;
    if (getsockopt (peer->fd, SOL_SOCKET, SO_SNDBUF, &peer->sndbuf, &len) != 0)
        return false;
    return (size_t) queued + bytes <= (size_t) peer->sndbuf / 2;
}

//  Write all of iov within finish_ms.  Whole frames only may be left for
//  later, since another writer (the server's pings) may come next: so once
//  a write has begun it is finished here.  The room check makes waiting
//  rare for a sender; a browser's first messages (a snapshot may be
//  bigger than the socket buffer) are written by its own thread, which
//  may wait longer.  0, or errno (ETIMEDOUT if the socket took too long).
static int
s_write (int fd, struct iovec *iov, int iovcnt, int finish_ms)
{
    int64_t deadline = 0;
    while (iovcnt > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t) iovcnt };
        ssize_t n = sendmsg (fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno;
        for (; n > 0 && iovcnt > 0; iov++, iovcnt--) {   //  skip what went
            if ((size_t) n < iov->iov_len) {
                iov->iov_base = (char *) iov->iov_base + n;
                iov->iov_len -= (size_t) n;
                break;
            }
            n -= (ssize_t) iov->iov_len;
        }
        if (iovcnt == 0)
            return 0;
        if (deadline == 0)
            deadline = s_now_ms () + finish_ms;
        int64_t left = deadline - s_now_ms ();
        struct pollfd pfd = { fd, POLLOUT, 0 };
        if (left <= 0)
            return ETIMEDOUT;
        if (poll (&pfd, 1, (int) left) < 0 && errno != EINTR)
            return errno;
    }
    return 0;
}

//  Mark the peer gone, dropping what it still has queued, and shut its
//  socket down: the server's reader sees the end and closes the
//  connection.  Connection lock held, so that nothing (a ping) follows a
//  frame written in part.
static s_outcome_t
s_shut (bus_fanout_peer_t *peer)
{
    pthread_mutex_lock (&peer->lock);
    s_queue_drop (peer);
    peer->gone = true;
    pthread_mutex_unlock (&peer->lock);
    shutdown (peer->fd, SHUT_RDWR);
    return S_GONE;
}

//  A write to the peer failed: hang up, and say so.  Connection lock held.
static s_outcome_t
s_hang_up (bus_fanout_t *self, bus_fanout_peer_t *peer, int error)
{
    atomic_fetch_add (&self->hung_up, 1);
    zsys_warning ("fanout: hung up on a browser (socket %d): %s", peer->fd,
                  error == ETIMEDOUT ? "its socket took nothing for a while"
                                     : strerror (error));
    return s_shut (peer);
}

//  A cut-off peer: the close frame if its socket can take it, then hang
//  up.  Cut-offs are counted and logged by the caller of bus_fanout_push.
static s_outcome_t
s_cut_off (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    size_t size = bus_wsframe_size (self->close_slow);
    s_conn_lock (peer);
    if (s_has_room (peer, size)) {
        struct iovec iov = { (void *) bus_wsframe_data (self->close_slow),
                             size };
        s_write (peer->fd, &iov, 1, S_FINISH_MS);
    }
    s_shut (peer);
    s_conn_unlock (peer);
    return S_GONE;
}

//  How many frames the peer's next batch has, and their bytes.  Peer
//  lock held.
static size_t
s_batch (bus_fanout_peer_t *peer, size_t *bytes)
{
    size_t n = 0;
    for (*bytes = 0; n < peer->count && n < S_BATCH && *bytes < S_BATCH_BYTES;
         n++)
        *bytes += bus_wsframe_size (peer->queue[(peer->head + n) % peer->size]);
    return n;
}

//  Take a batch of frames off the peer's queue; their number.  The caller
//  owns the frames taken.  *cut tells whether the peer was cut.
static size_t
s_take (bus_fanout_peer_t *peer, bus_wsframe_t **frames, struct iovec *iov,
        bool *cut)
{
    pthread_mutex_lock (&peer->lock);
    size_t bytes;
    *cut = peer->cut;
    size_t n = *cut ? 0 : s_batch (peer, &bytes);
    for (size_t i = 0; i < n; i++) {
        frames[i] = peer->queue[peer->head];
        peer->head = (peer->head + 1) % peer->size;
        peer->count--;
        iov[i].iov_base = (void *) bus_wsframe_data (frames[i]);
        iov[i].iov_len = bus_wsframe_size (frames[i]);
    }
    pthread_mutex_unlock (&peer->lock);
    return n;
}

//  The bytes the peer's next batch would have.
static size_t
s_next_bytes (bus_fanout_peer_t *peer)
{
    size_t bytes;
    pthread_mutex_lock (&peer->lock);
    s_batch (peer, &bytes);
    pthread_mutex_unlock (&peer->lock);
    return bytes;
}

//  Write one batch of what the peer has queued, under its connection
//  lock, within finish_ms, adding the frames written to *written.
//  S_DONE, S_MORE, or S_GONE if it was cut or the write failed.
static s_outcome_t
s_write_batch (bus_fanout_t *self, bus_fanout_peer_t *peer, int finish_ms,
               size_t *written)
{
    bus_wsframe_t *frames[S_BATCH];
    struct iovec iov[S_BATCH];
    bool cut;
    s_conn_lock (peer);
    size_t n = s_take (peer, frames, iov, &cut);
    *written += n;
    int rc = n ? s_write (peer->fd, iov, (int) n, finish_ms) : 0;
    //  Half a frame may be out: nothing can follow it
    s_outcome_t outcome = rc ? s_hang_up (self, peer, rc) : S_DONE;
    s_conn_unlock (peer);
    for (size_t i = 0; i < n; i++)
        bus_wsframe_unref (&frames[i]);
    if (cut)
        return s_cut_off (self, peer);
    if (outcome == S_GONE)
        return S_GONE;
    pthread_mutex_lock (&peer->lock);
    bool more = peer->count > 0 || peer->cut;
    if (!more)
        peer->scheduled = false;
    pthread_mutex_unlock (&peer->lock);
    return more ? S_MORE : S_DONE;
}

//  A sender's turn on a peer: a batch if its socket has room for it now.
static s_outcome_t
s_flush (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    size_t written = 0;
    if (!s_has_room (peer, s_next_bytes (peer)))
        return S_STUCK;
    return s_write_batch (self, peer, S_FINISH_MS, &written);
}

//  Put the peer back where its outcome says.  Fan-out lock held.
static void
s_file (bus_fanout_t *self, bus_fanout_peer_t *peer, s_outcome_t outcome)
{
    peer->busy--;
    if (peer->leaving) {
        if (peer->busy == 0)
            pthread_cond_broadcast (&self->idle);
    } else if (outcome == S_MORE)
        s_list_append (&self->ready, peer, S_READY);
    else if (outcome == S_STUCK)
        s_list_append (&self->blocked, peer, S_BLOCKED);
}

static void *
s_sender (void *arg)
{
    bus_fanout_t *self = (bus_fanout_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stop) {
        int64_t now = s_now_ms ();
        if (self->blocked.head && now >= self->retry_at) {
            s_list_splice (&self->ready, &self->blocked, S_READY);
            self->retry_at = now + S_RETRY_MS;
        }
        bus_fanout_peer_t *peer = self->ready.head;
        if (peer) {
            s_list_remove (&self->ready, peer);
            peer->busy++;
            pthread_mutex_unlock (&self->lock);
            s_outcome_t outcome = s_flush (self, peer);
            pthread_mutex_lock (&self->lock);
            s_file (self, peer, outcome);
            continue;
        }
        self->sleepers++;
        if (self->blocked.head) {
            struct timespec until = { self->retry_at / 1000,
                                      (self->retry_at % 1000) * 1000000 };
            pthread_cond_timedwait (&self->work, &self->lock, &until);
        } else
            pthread_cond_wait (&self->work, &self->lock);
        self->sleepers--;
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Public API

bus_fanout_t *
bus_fanout_new (size_t threads, size_t queue_cap)
{
    bus_fanout_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = queue_cap;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->work, &attr);
    pthread_condattr_destroy (&attr);
    pthread_cond_init (&self->idle, NULL);
    self->close_slow = bus_wsframe_new_close (
        BUS_FANOUT_CLOSE_SLOW, "slow consumer: reconnect with after_seq");
    self->threads = calloc (threads, sizeof *self->threads);
    if (!self->close_slow || !self->threads) {
        bus_fanout_destroy (&self);
        return NULL;
    }
    for (; self->thread_count < threads; self->thread_count++)
        if (pthread_create (&self->threads[self->thread_count], NULL, s_sender,
                            self)
            != 0) {
            bus_fanout_destroy (&self);
            return NULL;
        }
    return self;
}

void
bus_fanout_destroy (bus_fanout_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_fanout_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_broadcast (&self->work);
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; i < self->thread_count; i++)
        pthread_join (self->threads[i], NULL);
    free (self->threads);
    bus_wsframe_unref (&self->close_slow);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->work);
    pthread_cond_destroy (&self->idle);
    free (self);
    *self_p = NULL;
}

bus_fanout_peer_t *
bus_fanout_join (bus_fanout_t *self, bus_http_ws_t *ws, int fd)
{
    bus_fanout_peer_t *peer = calloc (1, sizeof *peer);
    size_t size = self->cap < S_QUEUE_START ? self->cap : S_QUEUE_START;
    if (peer)
        peer->queue = calloc (size, sizeof *peer->queue);
    if (!peer || !peer->queue) {
        free (peer);
        return NULL;
    }
    peer->ws = ws;
    peer->fd = fd;
    peer->size = size;
    peer->scheduled = peer->held = true;   //  until bus_fanout_start
    socklen_t len = sizeof peer->sndbuf;
    getsockopt (fd, SOL_SOCKET, SO_SNDBUF, &peer->sndbuf, &len);
    pthread_mutex_init (&peer->lock, NULL);
    return peer;
}

//  Put a peer with frames queued on the ready list.
static void
s_schedule (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    pthread_mutex_lock (&self->lock);
    s_list_append (&self->ready, peer, S_READY);
    if (self->sleepers)
        pthread_cond_signal (&self->work);
    pthread_mutex_unlock (&self->lock);
}

void
bus_fanout_start (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    pthread_mutex_lock (&peer->lock);
    size_t welcome = peer->count;
    pthread_mutex_unlock (&peer->lock);
    size_t written = 0;
    s_outcome_t outcome = S_MORE;
    while (outcome == S_MORE && written < welcome)
        outcome = s_write_batch (self, peer, S_START_MS, &written);
    //  From here the cap holds: a peer still over it is cut at its next
    //  push, as one that fell behind
    pthread_mutex_lock (&peer->lock);
    peer->held = false;
    pthread_mutex_unlock (&peer->lock);
    if (outcome == S_MORE)   //  events that came meanwhile
        s_schedule (self, peer);
}

size_t
bus_fanout_hung_up (bus_fanout_t *self)
{
    return atomic_load (&self->hung_up);
}

void
bus_fanout_leave (bus_fanout_t *self, bus_fanout_peer_t **peer_p)
{
    bus_fanout_peer_t *peer = *peer_p;
    pthread_mutex_lock (&self->lock);
    peer->leaving = true;
    while (peer->busy)
        pthread_cond_wait (&self->idle, &self->lock);
    if (peer->where == S_READY)
        s_list_remove (&self->ready, peer);
    else if (peer->where == S_BLOCKED)
        s_list_remove (&self->blocked, peer);
    pthread_mutex_unlock (&self->lock);
    s_queue_drop (peer);
    pthread_mutex_destroy (&peer->lock);
    free (peer->queue);
    free (peer);
    *peer_p = NULL;
}

bool
bus_fanout_push (bus_fanout_t *self, bus_fanout_peer_t *peer,
                 bus_wsframe_t *frame)
{
    bool cut_now = false, schedule = false;
    pthread_mutex_lock (&peer->lock);
    if (!peer->cut && !peer->gone) {
        if (s_queue_grow (self, peer))
            peer->queue[(peer->head + peer->count++) % peer->size] =
                bus_wsframe_ref (frame);
        else {
            s_queue_drop (peer);
            peer->cut = cut_now = true;
        }
        schedule = !peer->scheduled;
        peer->scheduled = true;
    }
    pthread_mutex_unlock (&peer->lock);
    if (schedule)
        s_schedule (self, peer);
    return cut_now;
}

//  ---------------------------------------------------------------------
//  Selftest: real sockets (socket pairs), no HTTP server

#include <assert.h>
#include <fcntl.h>

//  Read one frame from fd into payload (cap bytes), waiting up to
//  timeout_ms.  Its opcode, 0 at the end of the stream, -1 on timeout.
static int
s_test_read_frame (int fd, char *payload, size_t cap, size_t *len,
                   int timeout_ms)
{
    unsigned char header[10];
    size_t want = 2, have = 0;
    while (have < want) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll (&pfd, 1, timeout_ms) != 1)
            return -1;
        ssize_t n = read (fd, header + have, want - have);
        if (n <= 0)
            return 0;
        have += (size_t) n;
        if (have == 2)
            want = (header[1] & 0x7f) == 126   ? 4
                   : (header[1] & 0x7f) == 127 ? 10
                                               : 2;
    }
    size_t size = header[1] & 0x7f;
    if (size == 126)
        size = (size_t) header[2] << 8 | header[3];
    else if (size == 127)
        for (int i = 0; i < 8; i++)
            size = i ? size << 8 | header[2 + i] : header[2];
    assert (size <= cap);
    for (have = 0; have < size;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll (&pfd, 1, timeout_ms) != 1)
            return -1;
        ssize_t n = read (fd, payload + have, size - have);
        if (n <= 0)
            return 0;
        have += (size_t) n;
    }
    *len = size;
    return header[0] & 0x0f;
}

static bus_wsframe_t *
s_test_frame (int i, size_t pad)
{
    char text[70000];
    int len = snprintf (text, sizeof text, "%d:", i);
    memset (text + len, 'p', pad);
    return bus_wsframe_new (BUS_WSFRAME_TEXT, text, (size_t) len + pad);
}

typedef struct {
    int fd;
    int count;   //  frames expected
    int got;     //  frames read in order
} s_test_reader_t;

static void *
s_test_reader (void *arg)
{
    s_test_reader_t *reader = (s_test_reader_t *) arg;
    char *payload = malloc (70000);
    assert (payload);
    for (; reader->got < reader->count; reader->got++) {
        size_t len = 0;
        if (s_test_read_frame (reader->fd, payload, 69999, &len, 5000)
            != BUS_WSFRAME_TEXT)
            break;
        payload[len] = 0;
        if (atoi (payload) != reader->got || len != strlen (payload))
            break;
    }
    free (payload);
    return NULL;
}

//  Every peer gets every frame, in order, whatever their sizes.
static void
s_test_order (bool verbose)
{
    bus_fanout_t *fanout = bus_fanout_new (3, 4096);
    assert (fanout);
    const int count = 2000;
    int pairs[4][2];
    bus_fanout_peer_t *peers[4];
    s_test_reader_t readers[4];
    pthread_t threads[4];
    for (int p = 0; p < 4; p++) {
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pairs[p]) == 0);
        peers[p] = bus_fanout_join (fanout, NULL, pairs[p][0]);
        assert (peers[p]);
        bus_fanout_start (fanout, peers[p]);
        readers[p] = (s_test_reader_t){ pairs[p][1], count, 0 };
        assert (pthread_create (&threads[p], NULL, s_test_reader, &readers[p])
                == 0);
    }
    for (int i = 0; i < count; i++) {
        bus_wsframe_t *frame =
            s_test_frame (i, (size_t) (i % 7) * (i % 5 ? 20 : 9000));
        for (int p = 0; p < 4; p++)
            assert (!bus_fanout_push (fanout, peers[p], frame));
        bus_wsframe_unref (&frame);
    }
    for (int p = 0; p < 4; p++) {
        pthread_join (threads[p], NULL);
        assert (readers[p].got == count);
        bus_fanout_leave (fanout, &peers[p]);
        assert (peers[p] == NULL);
        close (pairs[p][0]);
        close (pairs[p][1]);
    }
    bus_fanout_destroy (&fanout);
    if (verbose)
        printf ("   ordered delivery to 4 peers: OK\n");
}

//  A peer that does not read holds no thread and does not delay another;
//  when its queue is full it is cut off and its socket shut down.
static void
s_test_slow (bool verbose)
{
    bus_fanout_t *fanout = bus_fanout_new (1, 16);
    int slow[2], fast[2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, slow) == 0);
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, fast) == 0);
    bus_fanout_peer_t *slow_peer = bus_fanout_join (fanout, NULL, slow[0]);
    bus_fanout_peer_t *fast_peer = bus_fanout_join (fanout, NULL, fast[0]);
    bus_fanout_start (fanout, slow_peer);
    bus_fanout_start (fanout, fast_peer);
    static char payload[70000];
    bool cut = false;
    int i = 0;
    for (; i < 10000 && !cut; i++) {
        bus_wsframe_t *frame = s_test_frame (i, 60000);
        cut = bus_fanout_push (fanout, slow_peer, frame);
        assert (!bus_fanout_push (fanout, fast_peer, frame));
        bus_wsframe_unref (&frame);
        size_t len;   //  the fast one reads each frame as it comes
        assert (s_test_read_frame (fast[1], payload, sizeof payload, &len, 5000)
                == BUS_WSFRAME_TEXT);
        assert (atoi (payload) == i);
    }
    assert (cut);
    //  Cut: takes nothing more, and its reader sees the stream end
    bus_wsframe_t *frame = s_test_frame (0, 0);
    assert (!bus_fanout_push (fanout, slow_peer, frame));
    bus_wsframe_unref (&frame);
    size_t len;
    int opcode, frames = 0;
    while ((opcode = s_test_read_frame (slow[1], payload, sizeof payload, &len,
                                        5000))
           == BUS_WSFRAME_TEXT)
        assert (atoi (payload) == frames++);
    assert (opcode == 0 || opcode == BUS_WSFRAME_CLOSE);
    if (opcode == BUS_WSFRAME_CLOSE)   //  then the end
        assert (s_test_read_frame (slow[1], payload, sizeof payload, &len, 5000)
                == 0);
    assert (frames < i);
    bus_fanout_leave (fanout, &slow_peer);
    bus_fanout_leave (fanout, &fast_peer);
    close (slow[0]);
    close (slow[1]);
    close (fast[0]);
    close (fast[1]);
    bus_fanout_destroy (&fanout);
    if (verbose)
        printf ("   slow peer cut after %d frames (%d written): OK\n", i,
                frames);
}

//  Leaving with frames queued, while a sender may be writing them.
static void
s_test_leave (bool verbose)
{
    bus_fanout_t *fanout = bus_fanout_new (2, 1024);
    for (int round = 0; round < 50; round++) {
        int pair[2];
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
        bus_fanout_peer_t *peer = bus_fanout_join (fanout, NULL, pair[0]);
        bus_fanout_start (fanout, peer);
        for (int i = 0; i < 100; i++) {
            bus_wsframe_t *frame = s_test_frame (i, 1000);
            bus_fanout_push (fanout, peer, frame);
            bus_wsframe_unref (&frame);
        }
        bus_fanout_leave (fanout, &peer);
        close (pair[0]);
        close (pair[1]);
    }
    bus_fanout_destroy (&fanout);
    bus_fanout_destroy (&fanout);
    if (verbose)
        printf ("   leave with frames queued: OK\n");
}

typedef struct {
    bus_fanout_t *fanout;
    bus_fanout_peer_t *peer;
} s_test_starter_t;

static void *
s_test_start (void *arg)
{
    s_test_starter_t *starter = (s_test_starter_t *) arg;
    bus_fanout_start (starter->fanout, starter->peer);
    return NULL;
}

//  A browser's first messages (a snapshot bigger than its socket buffer)
//  are written by the thread that starts it, however long its reader
//  takes, while the sender threads keep serving the others.
static void
s_test_start_big (bool verbose)
{
    bus_fanout_t *fanout = bus_fanout_new (1, 64);
    int big[2], fast[2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, big) == 0);
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, fast) == 0);
    bus_fanout_peer_t *fast_peer = bus_fanout_join (fanout, NULL, fast[0]);
    bus_fanout_start (fanout, fast_peer);
    bus_fanout_peer_t *big_peer = bus_fanout_join (fanout, NULL, big[0]);
    size_t big_len = 4 * 1024 * 1024;
    char *text = malloc (big_len);
    assert (text);
    memset (text, 's', big_len);
    bus_wsframe_t *snapshot = bus_wsframe_new (BUS_WSFRAME_TEXT, text, big_len);
    assert (!bus_fanout_push (fanout, big_peer, snapshot));
    bus_wsframe_unref (&snapshot);
    s_test_starter_t starter = { fanout, big_peer };
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_start, &starter) == 0);
    //  Its reader is away; the other browser still gets each event at once
    static char payload[70000];
    for (int i = 0; i < 20; i++) {
        bus_wsframe_t *frame = s_test_frame (i, 100);
        assert (!bus_fanout_push (fanout, fast_peer, frame));
        assert (!bus_fanout_push (fanout, big_peer, frame));   //  queued behind
        bus_wsframe_unref (&frame);
        size_t len;
        int64_t sent = s_now_ms ();
        assert (s_test_read_frame (fast[1], payload, sizeof payload, &len, 1000)
                == BUS_WSFRAME_TEXT);
        assert (atoi (payload) == i && s_now_ms () - sent < 1000);
        usleep (50 * 1000);
    }
    //  Then the big reader reads: the snapshot whole, then the 20 events
    size_t len;
    char *got = malloc (big_len);
    assert (s_test_read_frame (big[1], got, big_len, &len, 5000)
            == BUS_WSFRAME_TEXT);
    assert (len == big_len && memcmp (got, text, big_len) == 0);
    pthread_join (thread, NULL);
    for (int i = 0; i < 20; i++) {
        assert (s_test_read_frame (big[1], payload, sizeof payload, &len, 5000)
                == BUS_WSFRAME_TEXT);
        assert (atoi (payload) == i);
    }
    assert (bus_fanout_hung_up (fanout) == 0);
    free (got);
    free (text);
    bus_fanout_leave (fanout, &big_peer);
    bus_fanout_leave (fanout, &fast_peer);
    close (big[0]);
    close (big[1]);
    close (fast[0]);
    close (fast[1]);
    bus_fanout_destroy (&fanout);
    if (verbose)
        printf ("   a 4 MiB first message to a reader away for 1 s, others "
                "served meanwhile: OK\n");
}

//  A resuming browser's first messages may be more than the cap (what it
//  missed): a held peer takes them all and gets them all, in order; once
//  started, the cap holds again.
static void
s_test_welcome (bool verbose)
{
    bus_fanout_t *fanout = bus_fanout_new (1, 64);
    int pair[2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    bus_fanout_peer_t *peer = bus_fanout_join (fanout, NULL, pair[0]);
    for (int i = 0; i < 300; i++) {
        bus_wsframe_t *frame = s_test_frame (i, 10);
        assert (!bus_fanout_push (fanout, peer, frame));
        bus_wsframe_unref (&frame);
    }
    s_test_reader_t reader = { pair[1], 300, 0 };
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_test_reader, &reader) == 0);
    bus_fanout_start (fanout, peer);
    pthread_join (thread, NULL);
    assert (reader.got == 300);
    //  Nobody reads now: the 65th frame over the cap cuts it off
    bool cut = false;
    int i = 0;
    for (; i < 1000 && !cut; i++) {
        bus_wsframe_t *frame = s_test_frame (i, 60000);
        cut = bus_fanout_push (fanout, peer, frame);
        bus_wsframe_unref (&frame);
    }
    assert (cut && i <= 64 + 1 + 64);   //  the cap, plus what was written
    bus_fanout_leave (fanout, &peer);
    close (pair[0]);
    close (pair[1]);
    bus_fanout_destroy (&fanout);
    if (verbose)
        printf ("   300 first messages with a cap of 64 delivered in order, "
                "then cut after %d: OK\n",
                i);
}

void
bus_fanout_test (bool verbose)
{
    if (verbose)
        printf (" * bus_fanout:\n");
    s_test_order (verbose);
    s_test_slow (verbose);
    s_test_leave (verbose);
    s_test_start_big (verbose);
    s_test_welcome (verbose);
}
