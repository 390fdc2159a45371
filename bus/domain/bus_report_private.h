/*  bus_report_private.h — the report's helpers its selftest
    (bus_report_test.c) checks directly.  Not part of the public API: it
    lives next to the sources, not in include/.  */

#ifndef BUS_REPORT_PRIVATE_H_INCLUDED
#define BUS_REPORT_PRIVATE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/*  The nearest-rank p-th percentile of the n sorted values, as the report
    writes it: a JSON integer, or null when n is 0.  Caller owns the
    return value.  */
json_t *bus_report_percentile (const int64_t *sorted, size_t n, size_t p);

#endif
