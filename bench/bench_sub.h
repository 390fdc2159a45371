/*  bench_sub.h — subscriber clients for the e2e and fanout modes.

    Each thread owns an epoll set and a share of the clients.  A client is
    a kitchen screen (every event is meant for it) or a table pad (only its
    table's events are).  The thread connects its clients at a bounded
    rate, then records, for every delivery that carries a tag of the
    measured window, the time since the tag's intended send time.  */

#ifndef BENCH_SUB_H_INCLUDED
#define BENCH_SUB_H_INCLUDED

#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"

typedef enum {
    BENCH_SUB_WS = 1,     //  plain WebSocket (orderbus edge, seed 002)
    BENCH_SUB_SOCKETIO,   //  Engine.IO v4 / Socket.IO v5 over WebSocket
    BENCH_SUB_NATS,       //  core NATS subscription
    BENCH_SUB_REDIS       //  Redis SUBSCRIBE / PSUBSCRIBE
} bench_sub_kind_t;

/*  What the subscriber threads share with the publisher.  */
typedef struct {
    const bench_opts_t *opts;
    bench_sub_kind_t kind;
    int total;                  //  clients over all threads
    atomic_llong win_start;     //  the measured window, set before the
    atomic_llong win_end;       //  first tagged event is published
    atomic_int phase;           //  0 connecting, 1 running, 2 stop
    atomic_int threads_ready;   //  threads done connecting
    atomic_int connected;       //  clients ready so far
} bench_sub_shared_t;

typedef struct _bench_sub_thread_t bench_sub_thread_t;

/*  Start thread index of count over shared.  NULL on failure.  */
bench_sub_thread_t *bench_sub_thread_start (bench_sub_shared_t *shared,
                                            int index, int count);
/*  Wait for the thread (after phase 2) and add its results to result;
    expected_all is the number of window events every kitchen should get,
    per_table[k] the number table k's pads should get.  Frees the thread
    and nulls *self_p.  */
void bench_sub_thread_join (bench_sub_thread_t **self_p, bench_result_t *result,
                            uint64_t expected_all, const uint64_t *per_table);

/*  The room (ws: {room} in the URL; socketio: the joined room; nats: the
    subject; redis: the channel or pattern) of a pad of table label /
    of a kitchen.  */
void bench_sub_room (const bench_opts_t *opts, bench_sub_kind_t kind,
                     const char *table, char *buf, size_t cap);

/*  Table label of table index k: "T<k>".  */
void bench_table_label (int k, char *buf, size_t cap);

#endif
