/*  bus_error.c — messages and names for bus_err_t.  */

#include "orderbus/bus_error.h"

const char *
bus_strerror (int err)
{
    switch (err) {
#define BUS_ERR_MSG(name, value, msg)                                        \
    case value:                                                              \
        return msg;
        BUS_ERRNO_MAP (BUS_ERR_MSG)
#undef BUS_ERR_MSG
    }
    return "unknown error";
}

const char *
bus_errname (int err)
{
    switch (err) {
    case BUS_ERR_OK: return "ok";
    case BUS_ERR_MALFORMED: return "malformed";
    case BUS_ERR_TOO_BIG: return "too_big";
    case BUS_ERR_TOO_DEEP: return "too_deep";
    case BUS_ERR_INVALID: return "invalid_field";
    case BUS_ERR_UNKNOWN_ITEM: return "unknown_item";
    case BUS_ERR_NOT_FOUND: return "not_found";
    case BUS_ERR_CONFLICT: return "conflict";
    case BUS_ERR_STORAGE: return "storage";
    case BUS_ERR_MAP_FULL: return "map_full";
    case BUS_ERR_TIMEOUT: return "timeout";
    case BUS_ERR_UNAVAILABLE: return "unavailable";
    case BUS_ERR_NOMEM: return "nomem";
    case BUS_ERR_CONFIG: return "config";
    case BUS_ERR_UNAVAILABLE_ITEM: return "item_unavailable";
    case BUS_ERR_UNAUTHORIZED: return "unauthorized";
    case BUS_ERR_FORBIDDEN: return "forbidden";
    case BUS_ERR_EXPIRED: return "token_expired";
    case BUS_ERR_RATE_LIMITED: return "rate_limited";
    case BUS_ERR_OVERLOADED: return "overloaded";
    }
    return "unknown";
}
