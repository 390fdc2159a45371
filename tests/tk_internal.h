/*  tk_internal.h — what the testkit's files (tests/tk_*.c) share with each
    other and tests do not use.  Tests include testkit.h only.  */

#ifndef TK_INTERNAL_H_INCLUDED
#define TK_INTERNAL_H_INCLUDED

#include <stddef.h>
#include <time.h>
#include "testkit.h"

/*  The time timeout_ms from now on clock, for pthread_cond_timedwait.  */
void tk__deadline (clockid_t clock, int timeout_ms, struct timespec *ts);

/*  A TCP connection to 127.0.0.1:port, -1 on failure.  rcvbuf > 0 sets
    SO_RCVBUF first (it must be set before connecting to bound the
    window).  */
int tk__tcp_connect (int port, int rcvbuf);

/*  Send all len bytes (no SIGPIPE); 0, or -1 if the connection failed.  */
int tk__send_all (int fd, const void *data, size_t len);

/*  tk_ws_open without the complaint (a follower retries quietly while its
    edge is down), and answering pings; NULL on failure.  */
tk_ws_t *tk__ws_try_open (int port, const char *path);

#endif
