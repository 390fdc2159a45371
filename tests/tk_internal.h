/*  tk_internal.h — what the testkit's files (tests/tk_*.c) share with each
    other and tests do not use.  Tests include testkit.h only.  */

#ifndef TK_INTERNAL_H_INCLUDED
#define TK_INTERNAL_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include "testkit.h"

/*  The time timeout_ms from now on clock, for pthread_cond_timedwait.  */
void tk__deadline (clockid_t clock, int timeout_ms, struct timespec *ts);

/*  A TCP connection to 127.0.0.1:port, -1 on failure.  rcvbuf > 0 sets
    SO_RCVBUF first (it must be set before connecting to bound the
    window).  */
int tk__tcp_connect (int port, int rcvbuf);

/*  The address the kit's clients reach port at: "127.0.0.1" unless
    tk_port_addr gave it another.  */
const char *tk__port_addr (int port);

/*  Like tk_spawn_env (env NULL: as tk_spawn), the child first moved into
    the network namespace netns_fd (-1: stays in the caller's): the rig's
    hosts (tk_netns.c).  first and ap are the arguments.  */
pid_t tk__vspawn (int netns_fd, const char *name, const char *const *env,
                  const char *first, va_list ap);

/*  SIGKILL every process the kit started, async-signal-safe (the rig's
    signal handler, before it deletes the namespaces they run in).  */
void tk__kill_all (void);

/*  Send all len bytes (no SIGPIPE); 0, or -1 if the connection failed.  */
int tk__send_all (int fd, const void *data, size_t len);

/*  tk_ws_open without the complaint (a follower retries quietly while its
    edge is down), and answering pings; NULL on failure.  */
tk_ws_t *tk__ws_try_open (int port, const char *path);

/*  1 if the kit's clients speak TLS (tk_tls), else 0: civetweb's
    use_ssl argument.  */
int tk__tls (void);

/*  The kit's access token for requests to port, or NULL.  A gateway or
    edge the kit starts gets the kit's secret (--secret-file, unless the
    test gives its own, --insecure-no-auth or --config), as a real site
    must; requests the tests make to it (and to a proxy in front of it)
    then carry a manager token minted from that secret, unless they bring
    an Authorization header or a token= of their own.  */
const char *tk__auth_token (int port);

/*  Requests to port go to target_port (a proxy): they carry its token.  */
void tk__auth_alias (int port, int target_port);

/*  path with "token=<the kit's token>" added to its query when port has
    one and path has none, into buf[cap].  Returns buf or path.  */
const char *tk__auth_path (int port, const char *path, char *buf, size_t cap);

#endif
