/*  tk_etcd.h — a real etcd for the leadership tests, and a fake one.

    tk_etcd_start runs Debian's etcd (etcd-server) on loopback, with a
    data dir in the test's work dir and two ports from tk_port, as one of
    the kit's processes.  A test calls tk_etcd_binary first and exits 77
    (ctest's SKIP_RETURN_CODE) with a message when there is none.

    tk_fake_t answers HTTP requests with whatever its handler says: the
    garbage, oversized and slow answers a real etcd never gives.  */

#ifndef TK_ETCD_H_INCLUDED
#define TK_ETCD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "tk_netns.h"

/*  The etcd binary (ETCD env, else /usr/bin/etcd), or NULL if there is
    none to run.  */
const char *tk_etcd_binary (void);

typedef struct {
    char name[32];
    pid_t pid;
    int client_port, peer_port;
    char url[64]; /* http(s)://127.0.0.1:<client_port> */
    /*  Set before the first start for TLS on the client port (NULL: none) */
    const char *cert, *key; /* etcd's certificate and key            */
    const char *client_ca;  /* etcd asks clients for a certificate
                               from this CA (the kit's readiness check
                               shows cert and key: good for clientAuth
                               too, as etcd's own gateway needs)    */
    const char *ca;         /* what the kit's readiness check trusts */
    const char *addr;       /* listen here instead of 127.0.0.1 (set
                               by tk_etcd_start_on)                  */
} tk_etcd_t;

/*  Start etcd called name (or start it again on the same ports and
    data), and wait until it answers (10 s at most, else a failed
    check).  */
void tk_etcd_start (tk_etcd_t *etcd, const char *name);

/*  The same on a host of the multi-host rig (tk_netns.h): etcd runs in
    host's network and listens on its address, so its url is
    http://<host's address>:<port>.  The calling thread is back in its
    own network when it returns.  */
void tk_etcd_start_on (tk_etcd_t *etcd, const char *name, tk_host_t *host);

/*  Freeze it (SIGSTOP) and wait until the kernel says it is stopped (a
    signal is delivered asynchronously: a request sent at once might
    still be answered), or thaw it (SIGCONT).  */
void tk_etcd_freeze (tk_etcd_t *etcd, bool frozen);

/*  Stop it with SIGTERM (after a SIGCONT, in case it was stopped).  */
void tk_etcd_stop (tk_etcd_t *etcd);

/*  A fake HTTP server on loopback, one connection at a time.  For each
    request, handler gets the path and the body and returns the whole raw
    answer (status line, headers, body: malloc'd, the fake frees it), or
    NULL to close the connection without a word.  */
typedef char *(tk_fake_fn) (void *arg, const char *path, const char *body);
typedef struct _tk_fake_t tk_fake_t;
tk_fake_t *tk_fake_new (tk_fake_fn *handler, void *arg);
int tk_fake_port (tk_fake_t *fake);
void tk_fake_destroy (tk_fake_t **fake_p);

/*  A raw answer: status, then body with its Content-Length (malloc'd).  */
char *tk_fake_answer (int status, const char *body);

#endif
