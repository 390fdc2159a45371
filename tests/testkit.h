/*  testkit.h — what the integration tests need to drive real processes
    through their real interfaces: spawn and kill nodes, HTTP requests and
    WebSocket sessions (civetweb's client), and checks that say what
    failed.  Every failed check stops the test with a non-zero exit after
    killing the processes it started.

    The one header tests include; the kit is built from one file per
    concern (the testkit library, tests/CMakeLists.txt):

      tk_proc.c    the work dir, processes, ports, checks and named cases
      tk_http.c    HTTP requests, raw bytes, JSON answers, order bodies
      tk_ws.c      WebSocket: civetweb's client, and one by hand on
                   bench/ws_client.h's codec
      tk_ledger.c  the ledger of orders sent and every operation, its
                   tally and the history check
      tk_load.c    load from many clients, and followers of /ws
      tk_proxy.c   a TCP proxy to freeze, cut or slow down a link
      tk_netns.c   the multi-host rig (its own header, tk_netns.h)

    Built only into the tests that link the bus library, each with a
    header of its own: tk_etcd.c (etcd), tk_store.c (a node's store read
    from outside), tk_curve.c (a CURVE client of a node's socket).  */

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

/*  Kill every spawned process, print their logs' tails (and the case that
    failed, if cases are running), exit(1).  */
void tk_fail (void);

/*  Named cases (libuv's TEST_IMPL, in small): a test is a list of cases
    run in order, sharing the processes they start, so a failure names its
    case.

        TK_CASE (menu) { ... }
        static const tk_case_t s_cases[] = {TK_CASE_ENTRY (menu), ..., {0}};
        ...  tk_run_cases (s_cases);  */
typedef struct {
    const char *name; /* NULL ends the list                          */
    void (*fn) (void);
} tk_case_t;

#define TK_CASE(name) static void tk_case_##name (void)
#define TK_CASE_ENTRY(name)   \
    {                         \
#name, tk_case_##name \
    }

/*  Run each case in order, printing "case <name> ..." before it and
    "case <name> OK" after it.  A failed check ends the test there.  */
void tk_run_cases (const tk_case_t *cases);

/*  Stop every spawned process with SIGTERM, check each exits 0, and print
    "name: N passed, 0 failed".  Returns 0 for main to return.  */
int tk_done (void);

/*  The orderbus binary, the work dir, the repository's source dir.  */
const char *tk_bin (void);
const char *tk_dir (void);
const char *tk_source (void);

/*  A TCP port that was free a moment ago.  */
int tk_port (void);

/*  A writer's three endpoints, each tcp://127.0.0.1:<a tk_port ()>, in
    this order: --intake, --events and --sync (the writer's ROUTER:
    snapshots, replay, queries).  */
#define TK_ENDPOINT_LEN 64
void tk_endpoints (char intake[TK_ENDPOINT_LEN], char events[TK_ENDPOINT_LEN],
                   char sync[TK_ENDPOINT_LEN]);

/*  The kit's secret: a gateway or edge refuses to start without one, so
    every gateway or edge the kit starts (tk_spawn, tk_spawn_env, tk_run)
    gets the kit's own (--secret-file) unless its arguments hold
    --secret-file, --insecure-no-auth or --config; HTTP and WebSocket
    requests the kit makes to it (tk_http, tk_http_raw, tk_ws_open, ...)
    then carry a manager token from that secret unless they bring an
    Authorization header or a token= of their own.  tk_kit_secret (false)
    stops giving it to nodes started afterwards (to test a node without
    a secret); true gives it again.  The secret's path: tk_kit_secret_file.  */
void tk_kit_secret (bool on);
const char *tk_kit_secret_file (void);

/*  Start `orderbus <args...>` (NULL-terminated), output to <dir>/<name>.log.  */
pid_t tk_spawn (const char *name, ...);

/*  Send sig to pid and reap it; returns its exit status, 128+signal if it
    was killed, or -1 if it did not exit within 10 s.  */
int tk_kill (pid_t pid, int sig);

/*  A spawned process's log (<dir>/<name>.log), all of it (malloc'd; ""
    if there is none), and its size now.  */
char *tk_log_text (const char *name);
size_t tk_log_size (const char *name);

/*  Wait until text appears in name's log past its first from bytes (a
    restarted node appends to its log: from = tk_log_size before it);
    false after timeout_ms.  */
bool tk_log_wait (const char *name, const char *text, size_t from,
                  int timeout_ms);

/*  Run `orderbus <args...>` to completion; returns its exit status and
    its stdout+stderr in *output (caller frees).  */
int tk_run (char **output, ...);

/*  `orderbus keys new --name name --role role --out dir`, dir made
    (0700) if missing; a failure fails the test.  */
void tk_keys_new (const char *dir, const char *name, const char *role);

/*  Copy the file from to to (made, or emptied first); a failure fails
    the test.  */
void tk_copy_file (const char *from, const char *to);

/*  From now on the kit's clients (tk_http, tk_ws_open, tk_tcp_connect,
    proxies, and what uses them) reach port at addr (a dotted IPv4
    address) instead of 127.0.0.1: a node in one of the rig's hosts
    (tk_netns.h).  Ports are told apart by number alone, so a test gives
    each node its own port even on different hosts.  */
void tk_port_addr (int port, const char *addr);

/*  A TCP connection to 127.0.0.1:port from address from (NULL: any; any
    127.x.y.z is this host's loopback, so a test can be several clients
    by address), -1 on failure.  The caller closes it.  */
int tk_tcp_connect (const char *from, int port);

/*  A token from `orderbus token --secret-file secret --create-secret
    flag who` (flag "--table" or "--staff"); the secret is made if it is
    not there.  Checks it was made.  Caller frees.  */
char *tk_mint (const char *secret, const char *flag, const char *who);

typedef struct {
    int status;    /* HTTP status, 0 if no response              */
    char *body;    /* response body, NUL-terminated               */
    json_t *json;  /* parsed body, or NULL if it is not JSON      */
    char *headers; /* "Name: value\n" lines                       */
} tk_response_t;

/*  One HTTP/1.1 request on a new connection.  headers is NULL or
    CRLF-terminated lines; body NULL for none.  */
void tk_http (int port, const char *method, const char *path,
              const char *headers, const char *body, tk_response_t *resp);
void tk_response_free (tk_response_t *resp);

/*  The value of a response header (case-insensitive name) in buf.  */
const char *tk_header (const tk_response_t *resp, const char *name, char *buf,
                       size_t cap);

/*  POST an order to /api/v1/orders with an Idempotency-Key.  */
void tk_post_order (int port, const char *key, const char *body,
                    tk_response_t *resp);

/*  Poll GET path until it answers want_status; false after timeout_ms. */
bool tk_wait_http (int port, const char *path, int want_status, int timeout_ms);

/*  From now on the kit's clients (tk_http, tk_ws_open and what uses
    them) speak TLS (on: https, wss) or plain HTTP (off, the default).
    They do not check the server's certificate: test_tls does that with
    OpenSSL itself.  The first call loads civetweb's OpenSSL shims
    (tk_http.c says why) and fails the test if it cannot.  */
void tk_tls (bool on);

typedef struct _tk_ws_t tk_ws_t;

/*  Open a WebSocket to ws://127.0.0.1:port<path>; NULL on failure.  */
tk_ws_t *tk_ws_open (int port, const char *path);

/*  Next text message as JSON (caller decrefs), NULL after timeout_ms.  */
json_t *tk_ws_next (tk_ws_t *ws, int timeout_ms);

/*  True once the server has closed the connection.  */
bool tk_ws_closed (tk_ws_t *ws);

void tk_ws_close (tk_ws_t **ws_p);

//  ---------------------------------------------------------------------
//  Fault-test helpers (tests/test_fault_*.c): processes with an
//  environment, a ledger of every order a test sends, load from many
//  concurrent clients, WebSocket followers that reconnect with
//  resume_from, hand-made WebSocket sockets and a TCP proxy to cut.

#include <stddef.h>
#include <stdint.h>

/*  Monotonic milliseconds (the clock every helper below stamps with).  */
int64_t tk_now_ms (void);

/*  Like tk_spawn, with env: NULL or a NULL-terminated list of
    "NAME=value" strings set in the child's environment.  The child
    inherits no descriptor but its log, so sockets the test closes are
    closed (tk_spawn's children inherit whatever is open).  */
pid_t tk_spawn_env (const char *name, const char *const *env, ...);

/*  Start another program: argv[0] is its path (execv, no PATH search),
    the rest its arguments up to a NULL; output to <dir>/<name>.log.  It
    is one of the kit's processes: killed on a failure, stopped by
    tk_done, reaped by tk_kill.  */
pid_t tk_spawn_prog (const char *name, char *const *argv);

/*  VmRSS of pid in KiB, from /proc/PID/status; -1 if unknown.  */
long tk_rss_kb (pid_t pid);

/*  GET path; its JSON body (caller decrefs) if it answered want_status
    with JSON, else NULL.  */
json_t *tk_get_json (int port, const char *path, int want_status);

/*  The integer at a dotted path ("writer.dropped") in json, or -1.  */
json_int_t tk_json_int (json_t *json, const char *path);

/*  Send len raw bytes to port as they are (any HTTP, or none) and read
    until the server closes or 10 s pass; resp->status is 0 if nothing
    that looks like an HTTP response came back.  */
void tk_http_raw (int port, const void *bytes, size_t len, tk_response_t *resp);

/*  Like tk_ws_next, also giving the time the message arrived.  */
json_t *tk_ws_next_at (tk_ws_t *ws, int timeout_ms, int64_t *arrived_ms);

/*  Send one frame (MG_WEBSOCKET_OPCODE_*) from a tk_ws client; 0 or -1. */
int tk_ws_send (tk_ws_t *ws, int opcode, const void *data, size_t len);

/*  A JSON order body with `lines` lines (1..50) for table; long_notes
    gives every line a 270-byte note (50 lines ~ a 15 KB event).  variant
    changes quantities so different keys get different bodies.  Returns a
    new string (caller frees).  */
char *tk_order_body (const char *table, int lines, bool long_notes,
                     int variant);

//  The ledger: every order a test sends, and what it was told.
typedef struct _tk_ledger_t tk_ledger_t;

tk_ledger_t *tk_ledger_new (void);
void tk_ledger_destroy (tk_ledger_t **ledger_p);

/*  Place one order as a pad does: POST key+body to ports[*current],
    and on 5xx, 429, a connection failure or no response retry the SAME
    key and body (moving *current on to the next gateway, if there are
    several) until a 201 or a 4xx comes back or retry_ms pass.  The key
    is recorded as sent before the first attempt.  Thread-safe.  Returns
    the final status (0 if no answer at all).  */
int tk_ledger_place (tk_ledger_t *ledger, const int *ports, int port_count,
                     int *current, const char *key, const char *table,
                     const char *body, int retry_ms);

/*  When key's 201 came back (tk_now_ms), or -1 if it did not.  */
int64_t tk_ledger_acked_ms (tk_ledger_t *ledger, const char *key);

/*  A takeover seen by the clients: a new leader's store continues the
    old one's log from seq base (bus_epoch_t.base), so an order placed
    at or below base (not a replay) was acknowledged by the old leader,
    and one above base by the new.  *last_old_ms: the last such 201 of
    the old, *first_new_ms: the first of the new (tk_now_ms; -1 if
    none).  */
void tk_ledger_takeover (tk_ledger_t *ledger, json_int_t base,
                         int64_t *last_old_ms, int64_t *first_new_ms);

/*  A pad's late retry: POST every step-th acknowledged key again, with
    its body, to port.  Each must answer 201 with Idempotent-Replayed:
    true and the id and seq of its first 201 (exactly once).  Returns how
    many did not (the first is printed); *retried says how many were
    posted.  Call once no load runs.  */
size_t tk_ledger_retry_acked (tk_ledger_t *ledger, int port, size_t step,
                              size_t *retried);

typedef struct {
    size_t sent;        /* keys sent                                    */
    size_t acked;       /* keys answered 201                            */
    size_t replayed;    /* ... of which with Idempotent-Replayed: true  */
    size_t refused;     /* keys finally answered 4xx                    */
    size_t unresolved;  /* keys with neither within the retry bound     */
    size_t attempts;    /* POSTs in all                                 */
    size_t busy;        /* 5xx answers that were retried                */
    size_t no_answer;   /* connection failures that were retried        */
    size_t throttled;   /* 429s (rate limited) that were retried        */
    int64_t slowest_ms; /* longest from an order's first POST to its
                             final answer                                 */
    size_t stored;      /* orders in the database                       */
    size_t duplicates;  /* stored orders whose key was already stored   */
    size_t unknown;     /* stored orders with a key nobody sent         */
    size_t lost;        /* acknowledged keys that are not stored        */
    size_t mismatched;  /* stored with another id/table than the 201    */
    size_t seq_gaps;    /* numbers of 1..max seq no order has           */
    size_t seq_dups;    /* orders sharing a seq                         */
    json_int_t max_seq;
    char first_retry[300]; /* the first 5xx/no answer retried: "503 {...}" */
} tk_tally_t;

/*  Read every order from the gateway at port (pages of page_limit via
    next_cursor) and compare them with the ledger.  false if the list
    could not be read.  */
bool tk_ledger_tally (tk_ledger_t *ledger, int port, int page_limit,
                      tk_tally_t *tally);

/*  One line with every count, prefixed by what.  */
void tk_tally_print (const char *what, const tk_tally_t *tally);

/*  Check the store against the 201s exactly: nothing refused, unresolved,
    lost, stored twice, unknown or different from its 201, and the placed
    orders' seqs exactly 1..N.  */
void tk_tally_check_exact (const tk_tally_t *t);

/*  The history check, Jepsen's in small.  The ledger records every client
    operation (each POST of tk_ledger_place: its key, gateway, times and
    result: 201, 409, other 4xx, 429, 5xx, or no answer for a connection
    failure or timeout); tk_ledger_history reads the final store from the
    gateway at port (as tk_ledger_tally) and compares.  */
typedef struct {
    size_t count; /* 201s measured                                */
    int64_t p50_ms, p99_ms, max_ms;
} tk_latency_t;

typedef struct {
    size_t ops;         /* operations (POSTs)                           */
    size_t ok;          /* ... answered 201                             */
    size_t conflict;    /* ... 409                                      */
    size_t refused;     /* ... another 4xx                              */
    size_t throttled;   /* ... 429                                      */
    size_t unavailable; /* ... 5xx                                      */
    size_t no_answer;   /* ... no answer: connection failure, timeout   */
    size_t keys;        /* keys sent                                    */
    size_t keys_acked;  /* ... with a 201                               */
    size_t acked_missing, acked_doubled; /* acknowledged, stored 0 or 2+ */
    size_t unacked_stored;  /* never acknowledged, stored once (allowed) */
    size_t unacked_absent;  /* ... not stored (allowed)                 */
    size_t unacked_doubled; /* ... stored twice or more                 */
    size_t stored;          /* orders in the store                      */
    size_t unsent;          /* ... whose key no client sent             */
    tk_latency_t latency;   /* of every 201                             */
} tk_history_t;

bool tk_ledger_history (tk_ledger_t *ledger, int port, int page_limit,
                        tk_history_t *history);

/*  One line with every count, prefixed by what.  */
void tk_history_print (const char *what, const tk_history_t *history);

/*  Acknowledged => stored exactly once; never acknowledged => stored at
    most once; nothing stored that no client sent.  */
void tk_history_check (const tk_history_t *history);

/*  Read the store through the gateway at port: the history check and
    the tally, each printed under what (a failed read fails the test);
    the tally in tally, for the caller's own checks of it.  */
void tk_ledger_check (tk_ledger_t *ledger, int port, int page_limit,
                      const char *what, tk_tally_t *tally);

/*  The 201s' round trips (the POST that got the 201) among operations
    begun in [from_ms, to_ms) of tk_now_ms.  */
void tk_ledger_latency (tk_ledger_t *ledger, int64_t from_ms, int64_t to_ms,
                        tk_latency_t *latency);

//  Load: concurrent clients placing orders through the ledger.
typedef struct {
    const int *ports; /* gateways, in failover order                  */
    int port_count;
    int threads;        /* concurrent clients                           */
    const char *prefix; /* key prefix, unique per load                  */
    int lines;          /* lines per order, 1..50                       */
    bool long_notes;    /* see tk_order_body                            */
    int max_orders;     /* stop after this many in all; 0 = no limit    */
    int retry_ms;       /* per-order retry bound                        */
} tk_load_opts_t;

typedef struct _tk_load_t tk_load_t;

tk_load_t *tk_load_start (tk_ledger_t *ledger, const tk_load_opts_t *opts);

/*  Orders finished (201, 4xx or given up) so far.  */
size_t tk_load_done (tk_load_t *load);

/*  Stop: every client finishes the order it is placing (retrying it to
    the end), then the threads are joined.  NULL-safe.  */
void tk_load_stop (tk_load_t **load_p);

/*  Wait until the clients have placed max_orders in all, then as
    tk_load_stop.  */
void tk_load_join (tk_load_t **load_p);

/*  count loads (loads[count]), load i starting on ports[i] and failing
    over to the next ones in turn (ports[count], count at most 8); opts
    gives the rest (its ports are not read), its prefix followed by a
    number new to every load of the process: "h" gives "h1", "h2", ...  */
void tk_loads_start (tk_ledger_t *ledger, tk_load_t **loads, const int *ports,
                     int count, const tk_load_opts_t *opts);

//  A browser that follows /ws and reconnects with resume_from=<last seq>
//  whenever its connection ends.
typedef struct {
    json_int_t seq, id; /* event seq and its order's id                 */
    char *key;          /* the order's idempotency_key                  */
    int64_t arrived_ms; /* tk_now_ms when the frame arrived             */
} tk_event_t;

typedef struct {
    json_int_t start;  /* seq of the first snapshot, -1 before it      */
    json_int_t last;   /* last seq applied, -1 before the snapshot     */
    size_t events;     /* events applied                               */
    size_t gaps;       /* seqs skipped, by an event or a snapshot      */
    size_t duplicates; /* events at or below last (and seqs a snapshot
                             went back over)                              */
    size_t snapshots;  /* snapshots after the first one                */
    size_t reconnects; /* connections after the first one              */
    size_t errors;     /* error messages, events before any snapshot   */
} tk_follow_stats_t;

typedef struct _tk_follower_t tk_follower_t;

tk_follower_t *tk_follower_new (int port, const char *name);
void tk_follower_stats (tk_follower_t *follower, tk_follow_stats_t *stats);

/*  Wait until the follower has applied seq (0: has its first snapshot). */
bool tk_follower_wait (tk_follower_t *follower, json_int_t seq, int timeout_ms);

/*  Print "what: name: start S, last L, events ..., gaps G, ...".  */
void tk_follower_print (const char *what, tk_follower_t *follower);

/*  A kitchen: a follower of the edge at port, named "kitchen on <edge>",
    once it has its first snapshot (in 15 s, or the test fails).  */
tk_follower_t *tk_kitchen_new (int port, const char *edge);

/*  The kitchen reaches seq within 20 s, printed under what, with no gap,
    duplicate or error and no snapshot after its first (no resync).  */
void tk_kitchen_check (const char *what, tk_follower_t *kitchen,
                       json_int_t seq);

/*  Disconnect and stop following; the events stay readable.  */
void tk_follower_stop (tk_follower_t *follower);

/*  The events applied, in order (after tk_follower_stop).  */
const tk_event_t *tk_follower_events (tk_follower_t *follower, size_t *count);
void tk_follower_destroy (tk_follower_t **follower_p);

//  WebSocket by hand, for clients civetweb's would not be.

/*  Connect (with SO_RCVBUF rcvbuf if > 0, set before connecting so the
    window stays small), send the upgrade request for path and read the
    response headers, nothing more.  The fd, or -1 if no 101 came.  */
int tk_ws_raw_open (int port, const char *path, int rcvbuf);

/*  Send one frame: first_byte is FIN|RSV|opcode as it goes on the wire;
    masked as a client must (false to break the protocol).  0 or -1.  */
int tk_ws_raw_send (int fd, unsigned char first_byte, const void *data,
                    size_t len, bool masked);

typedef struct {
    size_t frames; /* frames read before the end                   */
    size_t text_frames;
    size_t bytes;
    int close_code;    /* code of a close frame, 0 if it had none, -1
                             if no close frame came                       */
    bool garbled;      /* a frame header made no sense (RSV bits set,
                             unknown opcode, a text frame that is not a
                             JSON object): the stream lost its framing,
                             e.g. a partly written frame was followed by
                             another; reading stopped there              */
    size_t garbled_at; /* byte offset of that header                   */
    bool eof;          /* the server closed the connection             */
    bool reset;        /* ... abruptly (ECONNRESET)                    */
    bool timeout;      /* neither within timeout_ms                    */
} tk_ws_raw_end_t;

/*  Read exactly one whole frame (header byte by byte, then its payload,
    so nothing after it is consumed); its opcode, or -1 on EOF or
    timeout.  *len is its payload size; up to cap - 1 bytes of the payload
    are copied to buf (if not NULL), NUL-terminated.  */
int tk_ws_raw_read_frame (int fd, int timeout_ms, char *buf, size_t cap,
                          size_t *len);

/*  Read and parse server frames until a close frame, EOF or timeout_ms
    without any data.  */
void tk_ws_raw_drain (int fd, int timeout_ms, tk_ws_raw_end_t *end);

//  Power cuts (tests/powerfs.c keeps the undo log in the writer;
//  tests/powerfs.h says what it holds).
typedef struct {
    size_t writes;  /* writes not yet synced, undone or torn        */
    size_t pages;   /* 4 KiB pages they covered                     */
    size_t lost;    /* ... of which the cut threw away              */
    size_t durable; /* O_DSYNC writes after them, never undone      */
} tk_power_cut_t;

/*  Make data, the data.mdb of a writer just killed with SIGKILL, what
    the disk would hold had the power gone at that moment, from the undo
    log at undo: every write not yet synced is undone and the file cut
    back to its synced size (torn false), or each 4 KiB page of those
    writes is undone or kept at random from *seed (torn true: the disk
    wrote some pages and not others).  Then removes undo.  false, saying
    why on stderr, if a file could not be read or written.  */
bool tk_power_cut (const char *data, const char *undo, bool torn,
                   unsigned *seed, tk_power_cut_t *cut);

//  A TCP proxy on loopback in front of target_port, to lose a link.
typedef struct _tk_proxy_t tk_proxy_t;

tk_proxy_t *tk_proxy_new (int target_port);

/*  The same listening on addr (a rig host's, tk_netns.h: create it from
    a thread in that host, tk_host_enter); the kit's clients then reach
    its port there (tk_port_addr).  */
tk_proxy_t *tk_proxy_new_on (const char *addr, int target_port);

/*  Slow the link down, both ways, for data read from now on: every chunk
    read is sent delay_ms later, and loss_pct of them are "lost".  A proxy
    of TCP streams cannot drop bytes without breaking the stream, so a
    lost chunk is what a lost segment costs a TCP application: it (and
    all behind it on that direction) is held S_STALL_MS = 200 ms more,
    Linux's minimum retransmission timeout.  0, 0 ends it.  */
void tk_proxy_impair (tk_proxy_t *proxy, int delay_ms, int loss_pct);

/*  Chunks "lost" (stalled) so far.  */
size_t tk_proxy_stalls (tk_proxy_t *proxy);
int tk_proxy_port (tk_proxy_t *proxy);

/*  Frozen: nothing is forwarded either way and nothing is closed, as
    when a Wi-Fi link dies silently.  */
void tk_proxy_freeze (tk_proxy_t *proxy, bool frozen);

/*  Reset every connection through the proxy (RST both ways); new ones
    are still accepted.  Returns when done.  */
void tk_proxy_cut (tk_proxy_t *proxy);
void tk_proxy_destroy (tk_proxy_t **proxy_p);

#endif
