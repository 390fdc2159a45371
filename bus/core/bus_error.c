/*  bus_error.c — messages and names for bus_err_t, both from the X-macro
    in bus_error.h.  */

#include <stdarg.h>
#include <stdio.h>
#include "orderbus/bus_error.h"

const char *
bus_strerror (int err)
{
    switch (err) {
#define BUS_ERR_MSG(name, value, short_name, msg) \
    case value: return msg;
        BUS_ERRNO_MAP (BUS_ERR_MSG)
#undef BUS_ERR_MSG
    }
    return "unknown error";
}

const char *
bus_errname (int err)
{
    switch (err) {
#define BUS_ERR_NAME(name, value, short_name, msg) \
    case value: return short_name;
        BUS_ERRNO_MAP (BUS_ERR_NAME)
#undef BUS_ERR_NAME
    }
    return "unknown";
}

int
bus_error_set (char *err, size_t err_cap, int rc, const char *format, ...)
{
    if (err && err_cap) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, err_cap, format, args);
        va_end (args);
    }
    return rc;
}
