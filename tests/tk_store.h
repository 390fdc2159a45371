/*  tk_store.h — a node's store read from outside, read-only, while it
    runs or after it stopped (bus_store_open_readonly): what the
    failover tests compare across nodes.  Built into the tests that link
    the bus library (tests/CMakeLists.txt), like tk_etcd.c.  */

#ifndef TK_STORE_H_INCLUDED
#define TK_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "orderbus/bus_store.h"

/*  The store in dir's epoch and last seq; false if it does not open.  */
bool tk_store_epoch (const char *dir, bus_epoch_t *epoch, uint64_t *last);

/*  Wait (polling every 50 ms, up to timeout_ms) until the store in
    behind has not moved for 200 ms (cut off: nothing more in flight to
    it) and the one in ahead is past it: a leader cut from its standby
    has a tail the standby never got.  Under load a leader may commit
    nothing for a while (every client waiting on the held batch, until
    the sync timeout releases it), so a fixed sleep does not make the
    tail certain; and a standby merely lagging is not cut off.
    *ahead_last and *behind_last: the last reads.  */
bool tk_store_wait_ahead (const char *ahead, const char *behind, int timeout_ms,
                          uint64_t *ahead_last, uint64_t *behind_last);

/*  A leader (ahead, its store in ahead_dir) cut from its standby (behind,
    in behind_dir) at cut_ms (tk_now_ms) commits a tail the standby never
    gets: tk_store_wait_ahead for 5 s, or the test fails; both last seqs
    printed under what.  */
void tk_store_check_tail (const char *what, const char *ahead,
                          const char *ahead_dir, const char *behind,
                          const char *behind_dir, int64_t cut_ms);

/*  Every log entry's bytes, seq 1..*last, each preceded by its size
    (a size_t), into a malloc'd *bytes of *size; false if the store does
    not open or its log does not read.  Two nodes' logs agree byte for
    byte when these are equal.  */
bool tk_store_log (const char *dir, uint64_t *last, char **bytes, size_t *size);

#endif
