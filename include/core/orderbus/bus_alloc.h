/*  bus_alloc.h — the memory allocator this build runs on, and the one
    setting orderbus changes in it.

    Optimised builds link jemalloc when it is installed (CMake option
    ORDERBUS_JEMALLOC; sanitizer builds keep the C library's malloc, which
    the sanitizers replace).  Why: the writer's frames are allocated by its
    intake thread and freed by ZeroMQ's I/O thread once sent, and glibc
    serializes those frees against the intake thread's next allocations on
    one arena lock: 11% of the writer's time went to waiting on it, and
    the writer commits ~30% more orders a second on jemalloc
    (bench/notes.md, section 3).  */

#ifndef BUS_ALLOC_H_INCLUDED
#define BUS_ALLOC_H_INCLUDED

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  "jemalloc 5.3.0-0-g54eaed1d..." or "glibc malloc": a static string.  */
const char *bus_alloc_name (void);

/*  Whether the calling thread keeps a cache of freed memory of its own
    (jemalloc's tcache; on for every thread from the start).  The edge
    turns it off on a civetweb thread while the thread holds a browser's
    WebSocket: that is hours, mostly asleep, and 10,000 such caches cost
    ~48 KiB each (measured); served without them the edge also used less
    CPU.  Threads answering requests keep theirs (the gateway measured
    17% slower per order without).  Does nothing with glibc.  */
void bus_alloc_thread_cache (bool on);

/*  Selftest.  */
void bus_alloc_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
