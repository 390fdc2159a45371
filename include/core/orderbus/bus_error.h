/*  bus_error.h — the one error vocabulary of orderbus.

    Every fallible bus_* function returns 0 on success or a negative
    bus_err_t.  LMDB, ZeroMQ and msgpack failures are mapped to these codes
    where they happen; raw library numbers never reach a user.  */

#ifndef BUS_ERROR_H_INCLUDED
#define BUS_ERROR_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  X-macro: name, value, short name (bus_errname), message (bus_strerror).
    Keep values and short names stable: values travel in acks, short names
    are the "code" of JSON error bodies.  */
#define BUS_ERRNO_MAP(X)                                                   \
    X (OK, 0, "ok", "success")                                             \
    X (MALFORMED, -1, "malformed", "malformed message")                    \
    X (TOO_BIG, -2, "too_big", "message exceeds size limit")               \
    X (TOO_DEEP, -3, "too_deep", "message exceeds nesting limit")          \
    X (INVALID, -4, "invalid_field", "invalid field")                      \
    X (UNKNOWN_ITEM, -5, "unknown_item", "unknown menu item")              \
    X (NOT_FOUND, -6, "not_found", "not found")                            \
    X (CONFLICT, -7, "conflict",                                           \
       "idempotency key reused with a different request")                  \
    X (STORAGE, -8, "storage", "storage failure")                          \
    X (MAP_FULL, -9, "map_full", "storage map full")                       \
    X (TIMEOUT, -10, "timeout", "timed out")                               \
    X (UNAVAILABLE, -11, "unavailable", "service unavailable")             \
    X (NOMEM, -12, "nomem", "out of memory")                               \
    X (CONFIG, -13, "config", "invalid configuration")                     \
    X (UNAVAILABLE_ITEM, -14, "item_unavailable", "menu item unavailable") \
    X (UNAUTHORIZED, -15, "unauthorized", "missing or invalid token")      \
    X (FORBIDDEN, -16, "forbidden", "not allowed for this token")          \
    X (EXPIRED, -17, "token_expired", "token expired")                     \
    X (RATE_LIMITED, -18, "rate_limited", "too many requests")             \
    X (OVERLOADED, -19, "overloaded", "too many requests waiting")         \
    X (PRUNED, -20, "snapshot_instead",                                    \
       "older events were pruned (retention): take a snapshot instead")    \
    X (DAMAGED, -21, "storage_damaged",                                    \
       "stored data is damaged: restore the data directory from a backup") \
    X (ROLLED_BACK, -22, "storage_rolled_back",                            \
       "the data is older than what its directory last committed")         \
    X (WRONG_SITE, -23, "wrong_site",                                      \
       "the token is for a site this node does not serve")

typedef enum {
#define BUS_ERR_ENUM(name, value, short_name, msg) BUS_ERR_##name = value,
    BUS_ERRNO_MAP (BUS_ERR_ENUM)
#undef BUS_ERR_ENUM
} bus_err_t;

/*  The lowest code.  Codes are 0, -1, -2, ... with no gaps, so a status
    read off the wire below this one is none of ours (decoders refuse it).  */
#define BUS_ERR_COUNT_ONE(name, value, short_name, msg) +1
#define BUS_ERR_MIN                                     ((int) (1 - (0 BUS_ERRNO_MAP (BUS_ERR_COUNT_ONE))))

/*  Return a static, human-readable description of a bus_err_t.
    Unknown codes give "unknown error".  */
const char *bus_strerror (int err);

/*  Return the stable short name of a code ("malformed", "not_found", ...),
    used as the "code" field of JSON error bodies.  */
const char *bus_errname (int err);

/*  Writes a message, formatted as by printf, into err[err_cap], cut to
    fit; writes nothing if err is NULL or err_cap is 0.  Returns rc, so a
    failing function can end with
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG, "%s: ...", x);
    and a caller that reports -1 passes -1.  */
int bus_error_set (char *err, size_t err_cap, int rc, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

#ifdef __cplusplus
}
#endif
#endif
