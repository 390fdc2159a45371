/*  bus_limit.h — per-key rate limiter (a token bucket per key).

    Each key (a table, say) has a bucket of burst tokens that refills at
    rate_per_s; a request takes one token or is refused with the time until
    one is back.  A refused request takes nothing, so a client that keeps
    retrying early is not pushed further back.

    Memory is bounded: at most max_keys keys are tracked.  A new key when
    the table is full evicts the key whose bucket is the fullest (the one
    least recently limited); once a bucket has refilled completely,
    forgetting it changes nothing.  Thread-safe.  */

#ifndef BUS_LIMIT_H_INCLUDED
#define BUS_LIMIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_LIMIT_KEY_MAX 256 /* longest key, bytes with NUL */

typedef struct _bus_limit_t bus_limit_t;

/*  New limiter: rate_per_s in (0, 1e6], burst >= 1 tokens, max_keys >= 1
    (asserted: they come from validated settings).  NULL if out of memory.  */
bus_limit_t *bus_limit_new (double rate_per_s, double burst, size_t max_keys);

/*  NULL-safe; sets *self_p to NULL.  */
void bus_limit_destroy (bus_limit_t **self_p);

/*  Take one token from key's bucket at now_ms, which must come from a
    monotonic clock (zclock_mono): time going backwards only delays refill.
    Returns 0 (allowed), BUS_ERR_RATE_LIMITED with *retry_after_ms > 0 the
    wait until a token is back (HTTP Retry-After wants whole seconds: round
    up), or BUS_ERR_INVALID if key is empty or not shorter than
    BUS_LIMIT_KEY_MAX.  retry_after_ms may be NULL; it is set to 0 unless
    limited.  */
int bus_limit_take (bus_limit_t *self, const char *key, int64_t now_ms,
                    int64_t *retry_after_ms);

/*  Keys tracked now, at most max_keys.  */
size_t bus_limit_size (bus_limit_t *self);

/*  Selftest.  */
void bus_limit_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
