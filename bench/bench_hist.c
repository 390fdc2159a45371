/*  bench_hist.c — latency histogram with bounded relative error.

    The HdrHistogram idea, written small: values below 2^S_SUB_BITS get a
    bucket each; above that every power of two is cut into 2^S_SUB_BITS
    equal buckets, so a bucket is never wider than 1/128 of its values.
    Recording is an index computation and an increment: cheap enough to
    record every single request of a 100,000/s run.  */

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define S_SUB_BITS 7
#define S_SUB      (1 << S_SUB_BITS)
#define S_TOP_BIT  40   //  2^40 ns ~ 18 min
#define S_BUCKETS  ((S_TOP_BIT - S_SUB_BITS + 2) * S_SUB)

struct _bench_hist_t {
    uint64_t counts[S_BUCKETS];
    uint64_t total;
    int64_t min, max;   //  exact
    double sum;         //  for the mean
};

static int
s_index (int64_t value)
{
    uint64_t v = value < 0 ? 0 : (uint64_t) value;
    if (v >= (1ULL << S_TOP_BIT))
        v = (1ULL << S_TOP_BIT) - 1;
    if (v < S_SUB)
        return (int) v;
    int msb = 63 - __builtin_clzll (v);
    int shift = msb - S_SUB_BITS;
    return (shift + 1) * S_SUB + (int) ((v >> shift) - S_SUB);
}

//  Highest value that falls into bucket i.
static int64_t
s_bucket_high (int i)
{
    if (i < S_SUB)
        return i;
    int shift = i / S_SUB - 1;
    uint64_t sub = (uint64_t) (i % S_SUB + S_SUB);
    return (int64_t) (((sub + 1) << shift) - 1);
}

bench_hist_t *
bench_hist_new (void)
{
    bench_hist_t *self = calloc (1, sizeof *self);
    if (self)
        bench_hist_reset (self);
    return self;
}

void
bench_hist_destroy (bench_hist_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
bench_hist_reset (bench_hist_t *self)
{
    memset (self, 0, sizeof *self);
    self->min = INT64_MAX;
}

void
bench_hist_record (bench_hist_t *self, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    self->counts[s_index (ns)]++;
    self->total++;
    self->sum += (double) ns;
    if (ns < self->min)
        self->min = ns;
    if (ns > self->max)
        self->max = ns;
}

void
bench_hist_merge (bench_hist_t *self, const bench_hist_t *other)
{
    for (int i = 0; i < S_BUCKETS; i++)
        self->counts[i] += other->counts[i];
    self->total += other->total;
    self->sum += other->sum;
    if (other->min < self->min)
        self->min = other->min;
    if (other->max > self->max)
        self->max = other->max;
}

uint64_t
bench_hist_count (const bench_hist_t *self)
{
    return self->total;
}

double
bench_hist_mean (const bench_hist_t *self)
{
    return self->total ? self->sum / (double) self->total : 0;
}

int64_t
bench_hist_percentile (const bench_hist_t *self, double p)
{
    if (self->total == 0)
        return 0;
    if (p <= 0)
        return self->min;
    if (p >= 100)
        return self->max;
    //  The rank of the value at p: ceil, so p99 of 100 values is the 99th
    uint64_t rank = (uint64_t) ceil (p / 100.0 * (double) self->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < S_BUCKETS; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            int64_t high = s_bucket_high (i);
            return high > self->max ? self->max : high;
        }
    }
    return self->max;
}

static double
s_ms (int64_t ns)
{
    return (double) ns / 1e6;
}

json_t *
bench_hist_json (const bench_hist_t *self)
{
    //  The curve's percentiles are spaced for a log(1/(1-p)) axis
    static const double curve[] = { 0,     10,    25,     50,     75,
                                    90,    95,    99,     99.5,   99.9,
                                    99.95, 99.99, 99.995, 99.999, 100 };
    json_t *points = json_array ();
    for (size_t i = 0; i < sizeof curve / sizeof curve[0]; i++)
        json_array_append_new (
            points, json_pack ("[f, f]", curve[i],
                               s_ms (bench_hist_percentile (self, curve[i]))));
    return json_pack ("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "count",
                      (json_int_t) self->total, "mean_ms",
                      bench_hist_mean (self) / 1e6, "min_ms",
                      s_ms (self->total ? self->min : 0), "p50_ms",
                      s_ms (bench_hist_percentile (self, 50)), "p90_ms",
                      s_ms (bench_hist_percentile (self, 90)), "p99_ms",
                      s_ms (bench_hist_percentile (self, 99)), "p999_ms",
                      s_ms (bench_hist_percentile (self, 99.9)), "max_ms",
                      s_ms (self->max), "curve", points);
}
