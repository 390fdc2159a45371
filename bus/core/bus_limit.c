/*  bus_limit.c — per-key rate limiter (a token bucket per key).

    A bucket is kept as one number, the time at which it will be full again
    (the "virtual scheduling" form of a token bucket, also known as GCRA):
    a bucket full at full_at holds burst - (full_at - now) / interval tokens
    at now.  So a request is allowed while full_at - now <= span - interval
    (at least one token left), and taking a token moves full_at one interval
    later.  One integer per key, no refill loop, and the bucket to evict is
    simply the one with the earliest full_at.  Times are in microseconds so
    that any rate up to 1e6/s is exact enough without floating point.  */

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_limit.h"

typedef struct {
    int64_t full_at_us; /* when all burst tokens are back          */
} s_bucket_t;

struct _bus_limit_t {
    pthread_mutex_t mutex; /* guards buckets                          */
    zhashx_t *buckets;     /* key -> s_bucket_t, at most max_keys     */
    size_t max_keys;
    int64_t interval_us; /* time to get one token back              */
    int64_t span_us;     /* time to get all burst tokens back       */
};

static void
s_bucket_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

bus_limit_t *
bus_limit_new (double rate_per_s, double burst, size_t max_keys)
{
    assert (rate_per_s > 0 && rate_per_s <= 1e6);
    assert (burst >= 1 && burst <= 1e9 && max_keys >= 1);
    bus_limit_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->buckets = zhashx_new ();
    self->max_keys = max_keys;
    self->interval_us = llround (1e6 / rate_per_s);
    self->span_us = llround (burst * 1e6 / rate_per_s);
    zhashx_set_destructor (self->buckets, s_bucket_destroy);
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
bus_limit_destroy (bus_limit_t **self_p)
{
    assert (self_p);
    bus_limit_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->buckets);
        pthread_mutex_destroy (&self->mutex);
        free (self);
        *self_p = NULL;
    }
}

//  Forget the bucket that is full soonest (or already full, which loses
//  nothing).  Linear, but only when a new key arrives at a full table.
static void
s_evict_fullest (bus_limit_t *self)
{
    const void *fullest_key = NULL;
    int64_t fullest_at = INT64_MAX;
    for (s_bucket_t *bucket = zhashx_first (self->buckets); bucket;
         bucket = zhashx_next (self->buckets))
        if (bucket->full_at_us <= fullest_at) {
            fullest_at = bucket->full_at_us;
            fullest_key = zhashx_cursor (self->buckets);
        }
    assert (fullest_key);
    zhashx_delete (self->buckets, fullest_key);
}

//  Track a new key; czmq's allocations abort when memory runs out, and so
//  does this one
static void
s_insert (bus_limit_t *self, const char *key, int64_t full_at_us)
{
    if (zhashx_size (self->buckets) >= self->max_keys)
        s_evict_fullest (self);
    s_bucket_t *bucket = (s_bucket_t *) zmalloc (sizeof *bucket);
    bucket->full_at_us = full_at_us;
    int rc = zhashx_insert (self->buckets, key, bucket);
    assert (rc == 0);
}

int
bus_limit_take (bus_limit_t *self, const char *key, int64_t now_ms,
                int64_t *retry_after_ms)
{
    assert (self);
    if (retry_after_ms)
        *retry_after_ms = 0;
    size_t length = key ? strnlen (key, BUS_LIMIT_KEY_MAX) : 0;
    if (length == 0 || length == BUS_LIMIT_KEY_MAX)
        return BUS_ERR_INVALID;
    int64_t now_us = now_ms * 1000;
    int rc = 0;
    pthread_mutex_lock (&self->mutex);
    s_bucket_t *bucket = zhashx_lookup (self->buckets, key);
    int64_t full_at =
        bucket && bucket->full_at_us > now_us ? bucket->full_at_us : now_us;
    int64_t wait_us = full_at + self->interval_us - self->span_us - now_us;
    if (wait_us > 0) {
        rc = BUS_ERR_RATE_LIMITED;
        if (retry_after_ms)
            *retry_after_ms = (wait_us + 999) / 1000;
    } else if (bucket)
        bucket->full_at_us = full_at + self->interval_us;
    else
        s_insert (self, key, full_at + self->interval_us);
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

size_t
bus_limit_size (bus_limit_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t size = zhashx_size (self->buckets);
    pthread_mutex_unlock (&self->mutex);
    return size;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Take n tokens from key at now_ms; all must be allowed
static void
s_test_take (bus_limit_t *limit, const char *key, int64_t now_ms, int n)
{
    for (int i = 0; i < n; i++)
        assert (bus_limit_take (limit, key, now_ms, NULL) == 0);
}

//  The next take of key at now_ms must be refused with exactly wait_ms
static void
s_test_refused (bus_limit_t *limit, const char *key, int64_t now_ms,
                int64_t wait_ms)
{
    int64_t retry_after = -1;
    assert (bus_limit_take (limit, key, now_ms, &retry_after)
            == BUS_ERR_RATE_LIMITED);
    assert (retry_after == wait_ms);
}

static void
s_test_bucket (void)
{
    //  2 per second, bursts of 10: the default per-table limit
    bus_limit_t *limit = bus_limit_new (2, 10, 64);
    int64_t t = 1000000;
    s_test_take (limit, "T1", t, 10);
    s_test_refused (limit, "T1", t, 500);
    s_test_refused (limit, "T1", t + 1, 499);
    s_test_refused (limit, "T1", t + 499, 1);
    //  refused requests took nothing: the token is back on time
    s_test_take (limit, "T1", t + 500, 1);
    s_test_refused (limit, "T1", t + 500, 500);
    //  1.5 s later, three tokens are back, not more
    s_test_take (limit, "T1", t + 2000, 3);
    s_test_refused (limit, "T1", t + 2000, 500);
    //  idle long enough, the bucket is full, never fuller
    s_test_take (limit, "T1", t + 60000, 10);
    s_test_refused (limit, "T1", t + 60000, 500);
    //  keys do not share buckets
    s_test_take (limit, "T2", t + 60000, 10);
    s_test_refused (limit, "T2", t + 60000, 500);
    assert (bus_limit_size (limit) == 2);
    //  time going backwards only delays refill
    s_test_refused (limit, "T2", t, 60500);
    s_test_take (limit, "T2", t + 60500, 1);

    int64_t retry_after = 7;
    assert (bus_limit_take (limit, "", t, &retry_after) == BUS_ERR_INVALID);
    assert (bus_limit_take (limit, NULL, t, &retry_after) == BUS_ERR_INVALID);
    char key[BUS_LIMIT_KEY_MAX + 1];
    memset (key, 'k', sizeof key);
    key[BUS_LIMIT_KEY_MAX] = '\0';
    assert (bus_limit_take (limit, key, t, NULL) == BUS_ERR_INVALID);
    key[BUS_LIMIT_KEY_MAX - 1] = '\0';
    assert (bus_limit_take (limit, key, t, &retry_after) == 0);
    assert (retry_after == 0);
    bus_limit_destroy (&limit);
    bus_limit_destroy (&limit);
    assert (limit == NULL);
}

static void
s_test_rates (void)
{
    //  slower than one per second
    bus_limit_t *limit = bus_limit_new (0.5, 1, 4);
    s_test_take (limit, "T1", 0, 1);
    s_test_refused (limit, "T1", 0, 2000);
    s_test_take (limit, "T1", 2000, 1);
    bus_limit_destroy (&limit);
    //  an interval that is not a whole number of ms rounds the wait up
    limit = bus_limit_new (3, 1, 4);
    s_test_take (limit, "T1", 0, 1);
    s_test_refused (limit, "T1", 0, 334);
    s_test_refused (limit, "T1", 333, 1);
    s_test_take (limit, "T1", 334, 1);
    bus_limit_destroy (&limit);
    //  a fractional burst: 2.5 tokens, the half comes back in 250 ms
    limit = bus_limit_new (2, 2.5, 4);
    s_test_take (limit, "T1", 0, 2);
    s_test_refused (limit, "T1", 0, 250);
    s_test_take (limit, "T1", 250, 1);
    bus_limit_destroy (&limit);
}

static void
s_test_eviction (void)
{
    bus_limit_t *limit = bus_limit_new (1, 2, 3);
    s_test_take (limit, "busy", 0, 2);
    s_test_take (limit, "idle1", 0, 1);
    s_test_take (limit, "idle2", 0, 1);
    assert (bus_limit_size (limit) == 3);
    //  a fourth key evicts one of the two fuller buckets, not "busy"
    s_test_take (limit, "new", 0, 1);
    assert (bus_limit_size (limit) == 3);
    s_test_refused (limit, "busy", 0, 1000);
    //  many keys: never more than max_keys tracked
    char key[BUS_LIMIT_KEY_MAX];
    for (int i = 0; i < 1000; i++) {
        snprintf (key, sizeof key, "T%d", i);
        s_test_take (limit, key, i, 1);
        assert (bus_limit_size (limit) <= 3);
    }
    assert (bus_limit_size (limit) == 3);
    bus_limit_destroy (&limit);
}

#define S_THREADS 8

static void *
s_test_hammer (void *arg)
{
    bus_limit_t *limit = arg;
    size_t allowed = 0;
    for (int i = 0; i < 1000; i++)
        if (bus_limit_take (limit, i % 2 ? "T1" : "T2", 42, NULL) == 0)
            allowed++;
    return (void *) allowed;
}

//  Concurrent takes at one instant: exactly burst allowed per key
static void
s_test_threads (void)
{
    bus_limit_t *limit = bus_limit_new (1, 100, 16);
    pthread_t threads[S_THREADS];
    for (int i = 0; i < S_THREADS; i++)
        assert (pthread_create (&threads[i], NULL, s_test_hammer, limit) == 0);
    size_t allowed = 0;
    for (int i = 0; i < S_THREADS; i++) {
        void *count;
        assert (pthread_join (threads[i], &count) == 0);
        allowed += (size_t) count;
    }
    assert (allowed == 2 * 100);
    bus_limit_destroy (&limit);
}

void
bus_limit_test (bool verbose)
{
    printf (" * bus_limit: ");
    s_test_bucket ();
    s_test_rates ();
    s_test_eviction ();
    s_test_threads ();
    printf ("OK\n");
}
