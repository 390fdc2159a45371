/*  bus_error.h — the one error vocabulary of orderbus.

    Every fallible bus_* function returns 0 on success or a negative
    bus_err_t.  LMDB, ZeroMQ and msgpack failures are mapped to these codes
    where they happen; raw library numbers never reach a user.  */

#ifndef BUS_ERROR_H_INCLUDED
#define BUS_ERROR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

/*  X-macro: name, value, message.  Keep values stable: they travel in acks. */
#define BUS_ERRNO_MAP(X)                                                     \
    X (OK, 0, "success")                                                     \
    X (MALFORMED, -1, "malformed message")                                   \
    X (TOO_BIG, -2, "message exceeds size limit")                            \
    X (TOO_DEEP, -3, "message exceeds nesting limit")                        \
    X (INVALID, -4, "invalid field")                                         \
    X (UNKNOWN_ITEM, -5, "unknown menu item")                                \
    X (NOT_FOUND, -6, "not found")                                           \
    X (CONFLICT, -7, "idempotency key reused with a different request")      \
    X (STORAGE, -8, "storage failure")                                       \
    X (MAP_FULL, -9, "storage map full")                                     \
    X (TIMEOUT, -10, "timed out")                                            \
    X (UNAVAILABLE, -11, "service unavailable")                              \
    X (NOMEM, -12, "out of memory")                                          \
    X (CONFIG, -13, "invalid configuration")                                 \
    X (UNAVAILABLE_ITEM, -14, "menu item unavailable")                      \
    X (UNAUTHORIZED, -15, "missing or invalid token")                        \
    X (FORBIDDEN, -16, "not allowed for this token")                         \
    X (EXPIRED, -17, "token expired")                                        \
    X (RATE_LIMITED, -18, "too many requests")                               \
    X (OVERLOADED, -19, "too many requests waiting")

typedef enum {
#define BUS_ERR_ENUM(name, value, msg) BUS_ERR_##name = value,
    BUS_ERRNO_MAP (BUS_ERR_ENUM)
#undef BUS_ERR_ENUM
} bus_err_t;

/*  Return a static, human-readable description of a bus_err_t.
    Unknown codes give "unknown error".  */
const char *bus_strerror (int err);

/*  Return the stable short name of a code ("malformed", "not_found", ...),
    used as the "code" field of JSON error bodies.  */
const char *bus_errname (int err);

#ifdef __cplusplus
}
#endif
#endif
