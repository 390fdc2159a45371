/*  bus_alloc.c — the memory allocator this build runs on.  */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef ORDERBUS_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#include "orderbus/bus_alloc.h"

#ifdef ORDERBUS_JEMALLOC
static char s_name[96];

static void
s_name_init (void)
{
    const char *version = "?";
    size_t len = sizeof version;
    mallctl ("version", &version, &len, NULL, 0);
    snprintf (s_name, sizeof s_name, "jemalloc %s", version);
}
#endif

const char *
bus_alloc_name (void)
{
#ifdef ORDERBUS_JEMALLOC
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_name_init);
    return s_name;
#else
    return "glibc malloc";
#endif
}

void
bus_alloc_thread_cache (bool on)
{
#ifdef ORDERBUS_JEMALLOC
    mallctl ("thread.tcache.enabled", NULL, NULL, &on, sizeof on);
#else
    (void) on;
#endif
}

//  --------------------------------------------------------------------------
//  Selftest

#undef NDEBUG
#include <assert.h>

#ifdef ORDERBUS_JEMALLOC
static bool
s_cached (void)
{
    bool enabled = false;
    size_t len = sizeof enabled;
    assert (mallctl ("thread.tcache.enabled", &enabled, &len, NULL, 0) == 0);
    return enabled;
}

static void *
s_fresh_thread (void *arg)
{
    *(bool *) arg = s_cached ();
    return NULL;
}
#endif

void
bus_alloc_test (bool verbose)
{
    const char *name = bus_alloc_name ();
    if (verbose)
        printf ("  allocator: %s\n", name);
#ifdef ORDERBUS_JEMALLOC
    assert (strncmp (name, "jemalloc 5", 10) == 0);
    //  malloc itself is jemalloc's, not the C library's: the thread's
    //  allocation counter moves by what was asked
    uint64_t before = 0, after = 0;
    size_t len = sizeof before;
    assert (mallctl ("thread.allocated", &before, &len, NULL, 0) == 0);
    char *block = malloc (1000);
    assert (block);
    assert (mallctl ("thread.allocated", &after, &len, NULL, 0) == 0);
    free (block);
    assert (after - before >= 1000);
    //  the cache is per thread: a thread started meanwhile has its own,
    //  and the first gets its back
    assert (s_cached ());
    bus_alloc_thread_cache (false);
    assert (!s_cached ());
    bool fresh = false;
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_fresh_thread, &fresh) == 0);
    pthread_join (thread, NULL);
    assert (fresh);
    bus_alloc_thread_cache (true);
    assert (s_cached ());
#else
    assert (strcmp (name, "glibc malloc") == 0);
    bus_alloc_thread_cache (false);   //  harmless without jemalloc
    bus_alloc_thread_cache (true);
    void *block = malloc (16);
    assert (block);
    free (block);
#endif
}
