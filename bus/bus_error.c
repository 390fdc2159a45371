/*  bus_error.c — messages and names for bus_err_t, both from the X-macro
    in bus_error.h.  */

#include "orderbus/bus_error.h"

const char *
bus_strerror (int err)
{
    switch (err) {
#define BUS_ERR_MSG(name, value, short_name, msg)                            \
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
#define BUS_ERR_NAME(name, value, short_name, msg)                           \
    case value:                                                              \
        return short_name;
        BUS_ERRNO_MAP (BUS_ERR_NAME)
#undef BUS_ERR_NAME
    }
    return "unknown";
}
