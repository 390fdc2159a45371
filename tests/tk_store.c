/*  tk_store.c — a node's store read from outside (tk_store.h).  */

#include "tk_store.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define S_POLL_MS     50
#define S_STILL_POLLS 4   //  behind unchanged this long: nothing in flight

bool
tk_store_epoch (const char *dir, bus_epoch_t *epoch, uint64_t *last)
{
    int rc;
    bus_store_t *store = bus_store_open_readonly (dir, &rc);
    if (!store)
        return false;
    bus_store_epoch (store, epoch);
    *last = bus_store_last_seq (store);
    bus_store_destroy (&store);
    return true;
}

bool
tk_store_wait_ahead (const char *ahead, const char *behind, int timeout_ms,
                     uint64_t *ahead_last, uint64_t *behind_last)
{
    bus_epoch_t epoch;
    uint64_t before = UINT64_MAX;
    int still = 0;   //  polls behind's last seq has not moved
    for (int waited = 0;; waited += S_POLL_MS) {
        bool read = tk_store_epoch (behind, &epoch, behind_last)
                    && tk_store_epoch (ahead, &epoch, ahead_last);
        still = read && *behind_last == before ? still + 1 : 0;
        before = *behind_last;
        if (still >= S_STILL_POLLS && *ahead_last > *behind_last)
            return true;
        if (waited >= timeout_ms)
            return false;
        usleep (S_POLL_MS * 1000);
    }
}

void
tk_store_check_tail (const char *what, const char *ahead, const char *ahead_dir,
                     const char *behind, const char *behind_dir, int64_t cut_ms)
{
    uint64_t ahead_last = 0, behind_last = 0;
    TK_CHECK (tk_store_wait_ahead (ahead_dir, behind_dir, 5000, &ahead_last,
                                   &behind_last),
              "%s: %s committed past what %s holds: %s at %" PRIu64
              ", %s at %" PRIu64,
              what, ahead, behind, ahead, ahead_last, behind, behind_last);
    printf ("%s: %s still at seq %" PRIu64 ", %s at %" PRIu64
            " %lld ms after the cut\n",
            what, behind, behind_last, ahead, ahead_last,
            (long long) (tk_now_ms () - cut_ms));
}

typedef struct {
    char *bytes;
    size_t size, cap;
} s_buf_t;

static void
s_put (s_buf_t *buf, const void *data, size_t size)
{
    if (buf->size + size > buf->cap) {
        while (buf->size + size > buf->cap)
            buf->cap = buf->cap ? buf->cap * 2 : 65536;
        buf->bytes = realloc (buf->bytes, buf->cap);
    }
    memcpy (buf->bytes + buf->size, data, size);
    buf->size += size;
}

static int
s_keep (const void *data, size_t size, void *arg)
{
    s_put ((s_buf_t *) arg, &size, sizeof size);
    s_put ((s_buf_t *) arg, data, size);
    return 0;
}

bool
tk_store_log (const char *dir, uint64_t *last, char **bytes, size_t *size)
{
    int rc;
    bus_store_t *store = bus_store_open_readonly (dir, &rc);
    if (!store)
        return false;
    *last = bus_store_last_seq (store);
    s_buf_t buf = { 0 };
    uint64_t at = 0;
    rc = *last
             ? bus_store_replay (store, 1, (uint32_t) *last, s_keep, &buf, &at)
             : 0;
    bus_store_destroy (&store);
    if (rc != 0) {
        free (buf.bytes);
        return false;
    }
    *bytes = buf.bytes;
    *size = buf.size;
    return true;
}
