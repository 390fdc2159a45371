/*  testkit.h — what the integration tests need to drive real processes
    through their real interfaces: spawn and kill nodes, HTTP requests and
    WebSocket sessions (civetweb's client), and checks that say what
    failed.  Every failed check stops the test with a non-zero exit after
    killing the processes it started.  */

#ifndef TESTKIT_H_INCLUDED
#define TESTKIT_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/*  Checks passed so far; every test ends by printing it.  */
extern int tk_checks;

#define TK_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if ((cond))                                                          \
            tk_checks++;                                                     \
        else {                                                               \
            fprintf (stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf (stderr, __VA_ARGS__);                                   \
            fputc ('\n', stderr);                                            \
            tk_fail ();                                                      \
        }                                                                    \
    } while (0)

/*  Call first: argv[1] is the orderbus binary; creates a fresh work dir
    named after the test under the current directory.  */
void tk_init (int argc, char **argv, const char *test_name);

/*  Kill every spawned process, print their logs' tails, exit(1).  */
void tk_fail (void);

/*  Stop every spawned process with SIGTERM, check each exits 0, and print
    "name: N passed, 0 failed".  Returns 0 for main to return.  */
int tk_done (void);

/*  The orderbus binary, the work dir, the repository's source dir.  */
const char *tk_bin (void);
const char *tk_dir (void);
const char *tk_source (void);

/*  A TCP port that was free a moment ago.  */
int tk_port (void);

/*  Start `orderbus <args...>` (NULL-terminated), output to <dir>/<name>.log.  */
pid_t tk_spawn (const char *name, ...);

/*  Send sig to pid and reap it; returns its exit status, 128+signal if it
    was killed, or -1 if it did not exit within 10 s.  */
int tk_kill (pid_t pid, int sig);

/*  Run `orderbus <args...>` to completion; returns its exit status and
    its stdout+stderr in *output (caller frees).  */
int tk_run (char **output, ...);

typedef struct {
    int status;          /* HTTP status, 0 if no response              */
    char *body;          /* response body, NUL-terminated               */
    json_t *json;        /* parsed body, or NULL if it is not JSON      */
    char *headers;       /* "Name: value\n" lines                       */
} tk_response_t;

/*  One HTTP/1.1 request on a new connection.  headers is NULL or
    CRLF-terminated lines; body NULL for none.  */
void tk_http (int port, const char *method, const char *path,
              const char *headers, const char *body, tk_response_t *resp);
void tk_response_free (tk_response_t *resp);

/*  The value of a response header (case-insensitive name) in buf.  */
const char *tk_header (const tk_response_t *resp, const char *name,
                       char *buf, size_t cap);

/*  POST an order to /api/v1/orders with an Idempotency-Key.  */
void tk_post_order (int port, const char *key, const char *body,
                    tk_response_t *resp);

/*  Poll GET path until it answers want_status; false after timeout_ms. */
bool tk_wait_http (int port, const char *path, int want_status,
                   int timeout_ms);

typedef struct _tk_ws_t tk_ws_t;

/*  Open a WebSocket to ws://127.0.0.1:port<path>; NULL on failure.  */
tk_ws_t *tk_ws_open (int port, const char *path);

/*  Next text message as JSON (caller decrefs), NULL after timeout_ms.  */
json_t *tk_ws_next (tk_ws_t *ws, int timeout_ms);

/*  True once the server has closed the connection.  */
bool tk_ws_closed (tk_ws_t *ws);

void tk_ws_close (tk_ws_t **ws_p);

#endif
