/*  bench_util.c — clock, tags, templates, results, logging.  */

#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"

int64_t
bench_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  ---------------------------------------------------------------------
//  Tags

int
bench_tag_format (char *buf, size_t cap, uint32_t run, uint64_t n, int64_t t)
{
    int len = snprintf (buf, cap, "bk%08" PRIx32 ".%" PRIu64 ".%" PRId64 "e",
                        run, n, t);
    return len > 0 && (size_t) len < cap ? len : -1;
}

//  Read decimal digits at *p (not past end) into *value; false if none.
static bool
s_digits (const char **p, const char *end, uint64_t *value)
{
    const char *start = *p;
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *p - start < 19)
        v = v * 10 + (uint64_t) (*(*p)++ - '0');
    *value = v;
    return *p > start;
}

int
bench_tag_find (const char *data, size_t len, uint32_t run, uint64_t *n,
                int64_t *t)
{
    char prefix[16];
    int plen = snprintf (prefix, sizeof prefix, "bk%08" PRIx32 ".", run);
    const char *end = data + len;
    const char *at = data;
    while (at < end) {
        at = memmem (at, (size_t) (end - at), prefix, (size_t) plen);
        if (!at)
            return -1;
        const char *p = at + plen;
        uint64_t seq, when;
        if (s_digits (&p, end, &seq) && p < end && *p++ == '.'
            && s_digits (&p, end, &when) && p < end && *p == 'e') {
            *n = seq;
            *t = (int64_t) when;
            return 0;
        }
        at += plen;
    }
    return -1;
}

//  ---------------------------------------------------------------------
//  Templates

static int
s_put (char *buf, size_t cap, size_t *len, const char *text)
{
    size_t n = strlen (text);
    if (*len + n >= cap)
        return -1;
    memcpy (buf + *len, text, n);
    *len += n;
    return 0;
}

int
bench_expand (char *buf, size_t cap, const char *tmpl, const bench_vars_t *vars)
{
    size_t len = 0;
    char number[24];
    snprintf (number, sizeof number, "%" PRIu64, vars->n);
    for (const char *p = tmpl; *p;) {
        //  Text up to the next '{' as it is: the load generator shares the
        //  cores with the systems it measures, so it does not dawdle
        size_t plain = strcspn (p, "{");
        if (plain > 0) {
            if (len + plain >= cap)
                return -1;
            memcpy (buf + len, p, plain);
            len += plain;
            p += plain;
            continue;
        }
        const char *value = NULL;
        size_t skip = 0;
        if (strncmp (p, "{tag}", 5) == 0)
            value = vars->tag ? vars->tag : "", skip = 5;
        else if (strncmp (p, "{table}", 7) == 0)
            value = vars->table ? vars->table : "", skip = 7;
        else if (strncmp (p, "{room}", 6) == 0)
            value = vars->room ? vars->room : "", skip = 6;
        else if (strncmp (p, "{token}", 7) == 0)
            value = vars->token ? vars->token : "", skip = 7;
        else if (strncmp (p, "{n}", 3) == 0)
            value = number, skip = 3;
        if (value) {
            if (s_put (buf, cap, &len, value) != 0)
                return -1;
            p += skip;
        } else {
            if (len + 1 >= cap)
                return -1;
            buf[len++] = *p++;
        }
    }
    buf[len] = '\0';
    return (int) len;
}

int
bench_peer_payload (char *buf, size_t cap, int size, const char *tag,
                    const char *table)
{
    int len = snprintf (buf, cap,
                        "{\"type\":\"event\",\"event\":\"order.placed\","
                        "\"table\":\"%s\",\"idempotency_key\":\"%s\","
                        "\"items\":[{\"item_id\":\"burger\",\"quantity\":2},"
                        "{\"item_id\":\"soup\",\"quantity\":1}],\"note\":\"",
                        table, tag);
    if (len < 0 || (size_t) len + 3 > cap)
        return -1;
    int want = size > len + 2 ? size : len + 2;
    if ((size_t) want + 1 > cap)
        want = (int) cap - 1;
    while (len < want - 2)
        buf[len++] = 'x';
    buf[len++] = '"';
    buf[len++] = '}';
    buf[len] = '\0';
    return len;
}

//  ---------------------------------------------------------------------
//  Results

void
bench_result_init (bench_result_t *r)
{
    memset (r, 0, sizeof *r);
    r->lat = bench_hist_new ();
    r->delivery = bench_hist_new ();
    r->extra_json = json_object ();
}

void
bench_result_free (bench_result_t *r)
{
    bench_hist_destroy (&r->lat);
    bench_hist_destroy (&r->delivery);
    json_decref (r->extra_json);
    r->extra_json = NULL;
}

void
bench_log (const bench_opts_t *opts, const char *fmt, ...)
{
    if (opts->quiet)
        return;
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "orderbus-bench: ");
    vfprintf (stderr, fmt, args);
    fputc ('\n', stderr);
    va_end (args);
}
