/*  bus_fanout.c — a few sender threads writing browsers' queues out.

    Locks, in the order they may be taken: a peer's connection lock
    (civetweb's), then the peer's lock, then the fan-out's lock.  Pushers
    take the peer's lock and, to schedule a peer, the fan-out's; senders
    take the connection lock only around a write.  */

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "orderbus/bus_fanout.h"

#define S_BATCH 64               //  frames per write, at most...
#define S_BATCH_BYTES 65536      //  ...and about this many bytes
#define S_QUEUE_START 16         //  a queue grows to its cap when needed
#define S_RETRY_MS 10            //  a blocked peer is tried this often
#define S_FINISH_MS 2000         //  a write once begun must end in time

typedef enum { S_NOWHERE, S_READY, S_BLOCKED } s_where_t;
typedef enum { S_DONE, S_MORE, S_STUCK, S_GONE } s_outcome_t;

struct _bus_fanout_peer_t {
    struct mg_connection *conn;   //  borrowed; NULL: nobody else writes fd
    int fd;
    int sndbuf;                   //  socket's send buffer, last we looked
    pthread_mutex_t lock;         //  guards the queue and flags below
    bus_wsframe_t **queue;          //  ring of size frames
    size_t size, head, count;
    bool scheduled;               //  listed or being written: a push
                                  //  need not schedule it again
    bool cut;                     //  fell too far behind: close, hang up
    bool gone;                    //  hung up on: takes nothing more
    //  Guarded by the fan-out's lock
    int busy;                     //  senders holding it (0, or 1 while
                                  //  another picks it up just after)
    bool leaving;                 //  bus_fanout_leave is waiting
    s_where_t where;
    struct _bus_fanout_peer_t *prev, *next;
};

typedef struct {
    bus_fanout_peer_t *head, *tail;
} s_list_t;

struct _bus_fanout_t {
    size_t cap;                   //  frames a peer may queue
    size_t thread_count;
    pthread_t *threads;
    bus_wsframe_t *close_slow;      //  what a cut-off peer is told
    pthread_mutex_t lock;         //  guards everything below
    pthread_cond_t work;          //  a peer is ready, or stop
    pthread_cond_t idle;          //  a leaving peer's write ended
    s_list_t ready;               //  peers with frames to write
    s_list_t blocked;             //  ...whose sockets were full
    int64_t retry_at;             //  monotonic ms: try the blocked again
    size_t sleepers;              //  senders waiting for work
    bool stop;
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
//  (or memory ran out: the peer then falls behind like a slow one).
static bool
s_queue_grow (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    if (peer->count < peer->size)
        return true;
    size_t size = peer->size * 2 < self->cap ? peer->size * 2 : self->cap;
    bus_wsframe_t **queue = size > peer->size ? malloc (size * sizeof *queue)
                                            : NULL;
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
    if (peer->conn)
        mg_lock_connection (peer->conn);
}

static void
s_conn_unlock (bus_fanout_peer_t *peer)
{
    if (peer->conn)
        mg_unlock_connection (peer->conn);
}

//  Can the socket take bytes more without blocking?  SO_SNDBUF counts the
//  kernel's bookkeeping as well as the data, so only half of it is taken
//  to be room for data.  An empty socket takes any one batch: a snapshot
//  may be bigger than the whole buffer.
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

//  Write all of iov.  Whole frames only may be left for later, since
//  another writer (civetweb's pings) may come next: so once a write has
//  begun it is finished here, waiting for the socket up to S_FINISH_MS.
//  The room check makes that wait rare.  0, or -1 if the connection is
//  broken or stuck.
static int
s_write (int fd, struct iovec *iov, int iovcnt)
{
    int64_t deadline = 0;
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t) iovcnt};
        ssize_t n = sendmsg (fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
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
            deadline = s_now_ms () + S_FINISH_MS;
        int64_t left = deadline - s_now_ms ();
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (left <= 0 || poll (&pfd, 1, (int) left) < 0)
            return -1;
    }
    return 0;
}

//  Mark the peer gone, dropping its queue, and shut its socket down: the
//  server's reader sees the end and closes the connection.
static s_outcome_t
s_hang_up (bus_fanout_peer_t *peer)
{
    pthread_mutex_lock (&peer->lock);
    s_queue_drop (peer);
    peer->gone = true;
    pthread_mutex_unlock (&peer->lock);
    shutdown (peer->fd, SHUT_RDWR);
    return S_GONE;
}

//  A cut-off peer: the close frame if its socket can take it, then hang up.
static s_outcome_t
s_cut_off (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    size_t size = bus_wsframe_size (self->close_slow);
    s_conn_lock (peer);
    if (s_has_room (peer, size)) {
        struct iovec iov = {(void *) bus_wsframe_data (self->close_slow), size};
        s_write (peer->fd, &iov, 1);
    }
    s_conn_unlock (peer);
    return s_hang_up (peer);
}

//  Write a batch of what the peer has queued.  The sizes are read first,
//  the frames taken off the queue only once the socket has room for them.
static s_outcome_t
s_flush (bus_fanout_t *self, bus_fanout_peer_t *peer)
{
    pthread_mutex_lock (&peer->lock);
    bool cut = peer->cut;
    size_t n = 0, bytes = 0;
    for (; !cut && n < peer->count && n < S_BATCH && bytes < S_BATCH_BYTES; n++)
        bytes += bus_wsframe_size (peer->queue[(peer->head + n) % peer->size]);
    pthread_mutex_unlock (&peer->lock);
    if (cut)
        return s_cut_off (self, peer);

    s_conn_lock (peer);
    if (n && !s_has_room (peer, bytes)) {
        s_conn_unlock (peer);
        return S_STUCK;
    }
    bus_wsframe_t *frames[S_BATCH];
    struct iovec iov[S_BATCH];
    pthread_mutex_lock (&peer->lock);
    cut = peer->cut;   //  a push may have cut it meanwhile
    for (size_t i = 0; !cut && i < n; i++) {
        frames[i] = peer->queue[peer->head];
        peer->head = (peer->head + 1) % peer->size;
        peer->count--;
        iov[i].iov_base = (void *) bus_wsframe_data (frames[i]);
        iov[i].iov_len = bus_wsframe_size (frames[i]);
    }
    pthread_mutex_unlock (&peer->lock);
    int rc = cut || n == 0 ? 0 : s_write (peer->fd, iov, (int) n);
    s_conn_unlock (peer);
    for (size_t i = 0; !cut && i < n; i++)
        bus_wsframe_unref (&frames[i]);
    if (cut)
        return s_cut_off (self, peer);
    if (rc != 0)   //  half a frame may be out: nothing can follow it
        return s_hang_up (peer);

    pthread_mutex_lock (&peer->lock);
    bool more = peer->count > 0 || peer->cut;
    if (!more)
        peer->scheduled = false;
    pthread_mutex_unlock (&peer->lock);
    return more ? S_MORE : S_DONE;
}

//  Put the peer back where its outcome says.  Fan-out lock held.
static void
s_file (bus_fanout_t *self, bus_fanout_peer_t *peer, s_outcome_t outcome)
{
    peer->busy--;
    if (peer->leaving) {
        if (peer->busy == 0)
            pthread_cond_broadcast (&self->idle);
    }
    else if (outcome == S_MORE)
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
            struct timespec until = {self->retry_at / 1000,
                                     (self->retry_at % 1000) * 1000000};
            pthread_cond_timedwait (&self->work, &self->lock, &until);
        }
        else
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
        BUS_FANOUT_CLOSE_SLOW, "slow consumer: reconnect with resume_from");
    self->threads = calloc (threads, sizeof *self->threads);
    if (!self->close_slow || !self->threads) {
        bus_fanout_destroy (&self);
        return NULL;
    }
    for (; self->thread_count < threads; self->thread_count++)
        if (pthread_create (&self->threads[self->thread_count], NULL, s_sender,
                            self) != 0) {
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
bus_fanout_join (bus_fanout_t *self, struct mg_connection *conn, int fd)
{
    bus_fanout_peer_t *peer = calloc (1, sizeof *peer);
    size_t size = self->cap < S_QUEUE_START ? self->cap : S_QUEUE_START;
    if (peer)
        peer->queue = calloc (size, sizeof *peer->queue);
    if (!peer || !peer->queue) {
        free (peer);
        return NULL;
    }
    peer->conn = conn;
    peer->fd = fd;
    peer->size = size;
    socklen_t len = sizeof peer->sndbuf;
    getsockopt (fd, SOL_SOCKET, SO_SNDBUF, &peer->sndbuf, &len);
    pthread_mutex_init (&peer->lock, NULL);
    return peer;
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
    if (schedule) {
        pthread_mutex_lock (&self->lock);
        s_list_append (&self->ready, peer, S_READY);
        if (self->sleepers)
            pthread_cond_signal (&self->work);
        pthread_mutex_unlock (&self->lock);
    }
    return cut_now;
}

//  ---------------------------------------------------------------------
//  Selftest: real sockets (socket pairs), no civetweb

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
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll (&pfd, 1, timeout_ms) != 1)
            return -1;
        ssize_t n = read (fd, header + have, want - have);
        if (n <= 0)
            return 0;
        have += (size_t) n;
        if (have == 2)
            want = (header[1] & 0x7f) == 126 ? 4 : (header[1] & 0x7f) == 127 ? 10 : 2;
    }
    size_t size = header[1] & 0x7f;
    if (size == 126)
        size = (size_t) header[2] << 8 | header[3];
    else if (size == 127)
        for (int i = 0; i < 8; i++)
            size = i ? size << 8 | header[2 + i] : header[2];
    assert (size <= cap);
    for (have = 0; have < size;) {
        struct pollfd pfd = {fd, POLLIN, 0};
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
    int count;        //  frames expected
    int got;          //  frames read in order
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
        readers[p] = (s_test_reader_t) {pairs[p][1], count, 0};
        assert (pthread_create (&threads[p], NULL, s_test_reader, &readers[p]) == 0);
    }
    for (int i = 0; i < count; i++) {
        bus_wsframe_t *frame = s_test_frame (i, (size_t) (i % 7) * (i % 5 ? 20 : 9000));
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
    static char payload[70000];
    bool cut = false;
    int i = 0;
    for (; i < 10000 && !cut; i++) {
        bus_wsframe_t *frame = s_test_frame (i, 60000);
        cut = bus_fanout_push (fanout, slow_peer, frame);
        assert (!bus_fanout_push (fanout, fast_peer, frame));
        bus_wsframe_unref (&frame);
        size_t len;   //  the fast one reads each frame as it comes
        assert (s_test_read_frame (fast[1], payload, sizeof payload, &len,
                                   5000) == BUS_WSFRAME_TEXT);
        assert (atoi (payload) == i);
    }
    assert (cut);
    //  Cut: takes nothing more, and its reader sees the stream end
    bus_wsframe_t *frame = s_test_frame (0, 0);
    assert (!bus_fanout_push (fanout, slow_peer, frame));
    bus_wsframe_unref (&frame);
    size_t len;
    int opcode, frames = 0;
    while ((opcode = s_test_read_frame (slow[1], payload, sizeof payload,
                                        &len, 5000)) == BUS_WSFRAME_TEXT)
        assert (atoi (payload) == frames++);
    assert (opcode == 0 || opcode == BUS_WSFRAME_CLOSE);
    if (opcode == BUS_WSFRAME_CLOSE)   //  then the end
        assert (s_test_read_frame (slow[1], payload, sizeof payload, &len,
                                   5000) == 0);
    assert (frames < i);
    bus_fanout_leave (fanout, &slow_peer);
    bus_fanout_leave (fanout, &fast_peer);
    close (slow[0]);
    close (slow[1]);
    close (fast[0]);
    close (fast[1]);
    bus_fanout_destroy (&fanout);
    if (verbose)
        printf ("   slow peer cut after %d frames (%d written): OK\n", i, frames);
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

void
bus_fanout_test (bool verbose)
{
    if (verbose)
        printf (" * bus_fanout:\n");
    s_test_order (verbose);
    s_test_slow (verbose);
    s_test_leave (verbose);
}
