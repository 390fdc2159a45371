/*  bench.h — orderbus-bench: shared pieces of the load generators.

    The tool measures a system from the outside, through the interfaces a
    deployment uses (ZeroMQ intake, HTTP, WebSocket, and the peers' own
    protocols), so the same code measures orderbus and the systems it is
    compared with.  Every latency is taken on one clock (CLOCK_MONOTONIC)
    in this process: a request's send and its answer or delivery.

    Open loop: requests are scheduled at a fixed rate and each latency is
    counted from the request's *intended* send time, so a stall of the
    system under test shows up in the percentiles instead of silently
    slowing the generator down (coordinated omission).
    Closed loop: a fixed number of requests in flight; latency from the
    actual send.  */

#ifndef BENCH_H_INCLUDED
#define BENCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

//  ---------------------------------------------------------------------
//  Time

/*  Monotonic nanoseconds.  */
int64_t bench_now (void);

//  ---------------------------------------------------------------------
//  Latency histogram (bench_hist.c): log-linear buckets, 128 per power
//  of two, so a reported value is within 0.8% of the true one, from 1 ns
//  to ~18 minutes.  Fixed size, no allocation while recording.

typedef struct _bench_hist_t bench_hist_t;

bench_hist_t *bench_hist_new (void);
void bench_hist_destroy (bench_hist_t **self_p);
void bench_hist_record (bench_hist_t *self, int64_t ns);
void bench_hist_merge (bench_hist_t *self, const bench_hist_t *other);
void bench_hist_reset (bench_hist_t *self);
uint64_t bench_hist_count (const bench_hist_t *self);
/*  Value at percentile p (0..100) in ns: the highest value of the bucket
    that holds it, so it never understates; exact for min (p=0) and max
    (p=100).  0 if empty.  */
int64_t bench_hist_percentile (const bench_hist_t *self, double p);
double bench_hist_mean (const bench_hist_t *self);
/*  New JSON object: count, mean, min, p50, p90, p99, p99.9, max (ms) and
    a "curve" of [percentile, ms] pairs for plots.  Caller owns.  */
json_t *bench_hist_json (const bench_hist_t *self);

//  ---------------------------------------------------------------------
//  Tags (bench_util.c).  Every request carries a tag naming the run, its
//  sequence number and its intended send time:  bk<run>.<n>.<t>e
//  A receiver finds the tag inside an opaque payload (the bench does not
//  parse the systems' JSON, so the cost per message is the same for all
//  of them) and gets the latency without any shared table.

#define BENCH_TAG_MAX 64

int bench_tag_format (char *buf, size_t cap, uint32_t run, uint64_t n,
                      int64_t t);
/*  Find this run's first tag in data[len]; 0 with *n and *t, or -1.  */
int bench_tag_find (const char *data, size_t len, uint32_t run, uint64_t *n,
                    int64_t *t);

//  ---------------------------------------------------------------------
//  Text templates: "{tag}", "{table}", "{n}", "{room}", "{token}" replaced.

typedef struct {
    const char *tag;
    const char *table;
    const char *room;
    const char *token;
    uint64_t n;
} bench_vars_t;

/*  Expand tmpl into buf[cap]; returns the length, or -1 if it does not
    fit.  */
int bench_expand (char *buf, size_t cap, const char *tmpl,
                  const bench_vars_t *vars);

/*  The JSON event the peers carry (NATS, Redis, Socket.IO): the fields of
    an orderbus order event, padded to size bytes so that every system
    moves messages of the same size.  Returns the length or -1.  */
int bench_peer_payload (char *buf, size_t cap, int size, const char *tag,
                        const char *table);

//  ---------------------------------------------------------------------
//  Processes watched during a run (bench_proc.c): RSS and CPU from /proc,
//  and the number of fsync/fdatasync calls counted by perf.

#define BENCH_WATCH_MAX 8

typedef struct {
    char name[32];
    pid_t pid;
    int64_t rss_idle_kb;   //  before the load starts
    int64_t rss_conn_kb;   //  with the clients connected, no load
    int64_t rss_load_kb;   //  highest sample during the load
    int64_t rss_end_kb;    //  after the load
    double cpu_s;          //  user+system seconds during the load
    int64_t ticks_start;
    pid_t perf_pid;   //  perf stat counting this pid's syncs
    char perf_out[256];
    int64_t perf_t0;    //  when perf was started
    int64_t syncs;      //  fsync + fdatasync while perf ran, -1 n/a
    double sync_rate;   //  syncs per second while perf ran
    int64_t threads;    //  threads at the end of the load
} bench_watch_t;

typedef struct {
    bench_watch_t list[BENCH_WATCH_MAX];
    int count;
    bool count_syncs;
    pid_t profile_pid;         //  perf record this pid over the load
    const char *profile_out;   //  ...into this perf.data file
    pid_t profile_child;
    int64_t stat_start[3];   //  /proc/stat jiffies: busy, steal, total
    int64_t stat_end[3];
} bench_watches_t;

/*  "name:pid"; 0 or -1.  */
int bench_watch_add (bench_watches_t *w, const char *spec);
/*  "pid:file": sample pid's stacks with perf record over the loaded
    period (warmup and window) into file.  0 or -1.  */
int bench_watch_profile (bench_watches_t *w, const char *spec);
void bench_watch_idle (bench_watches_t *w);
/*  After the subscribers have connected, before the load.  */
void bench_watch_connected (bench_watches_t *w);
/*  Start of the loaded period (before warmup): perf attached, so that
    it is counting by the time the measured window opens.  */
void bench_watch_arm (bench_watches_t *w);
/*  Start of the measured window: CPU and RSS baselines.  */
void bench_watch_start (bench_watches_t *w);
/*  A sample during the load (call every ~100 ms).  */
void bench_watch_sample (bench_watches_t *w);
/*  End of the measured window: CPU, syncs.  */
void bench_watch_stop (bench_watches_t *w);
json_t *bench_watch_json (const bench_watches_t *w, double seconds);
/*  The whole machine over the measured window: busy and stolen CPU, and
    the CPU used by processes that are not watched (others' load), in %
    of one core; the 1-minute load average at the end.  */
json_t *bench_machine_json (const bench_watches_t *w, double seconds);
int64_t bench_proc_rss_kb (pid_t pid);

//  ---------------------------------------------------------------------
//  Options, shared by every mode

typedef struct {
    const char *mode;
    const char *label;   //  system under test, for the report
    const char *json_path;
    double duration;   //  measured seconds
    double warmup;     //  seconds run before measuring
    double rate;       //  open loop when > 0: requests/s
    int inflight;      //  closed loop: requests in flight
    int clients;       //  connections carrying the requests
    int timeout_ms;    //  a request unanswered this long is an error
    int threads;       //  subscriber threads (fanout)
    uint32_t run;      //  run id in every tag
    bool quiet;
    bool check;   //  exit 3 unless ok > 0 and errors == 0

    //  intake
    const char *target;   //  orderbus | redis | nats
    const char *intake_ep;
    const char *events_ep;
    const char *origin;
    const char *cert;         //  CURVE: our secret certificate, or NULL
    const char *writer_key;   //  CURVE: the writer's key or .cert
    const char *redis_addr;   //  host:port
    const char *nats_url;
    const char *stream;
    const char *dir;           //  disk mode: where to write
    const char *log_path;      //  retry mode: one line per order
    double retry_for;          //  retry mode: seconds an order is retried
    const char *secret_file;   //  mint tokens from this site secret
    const char *token;         //  or use this one token for everything

    //  http / e2e / fanout publisher
    const char *urls[16];   //  base URLs, round robin over connections
    int url_count;
    const char *path;
    const char *body;
    const char *headers[8];
    int header_count;
    int expect;       //  HTTP status that counts as success
    bool tls;         //  https (--tls, or --ca)
    const char *ca;   //  the certificate to trust; NULL: check nothing

    //  e2e / fanout subscribers
    const char *pub;   //  intake | http | socketio | nats | redis
    const char *pub_url;
    const char *sub;        //  ws | socketio | nats | redis
    const char *sub_url;    //  template with {room}
    const char *pad_room;   //  template with {table}
    const char *kitchen_room;
    int tables;
    int pads;   //  per table
    int kitchens;
    int payload;        //  bytes of a peer's event payload
    int connect_rate;   //  new subscriber connections per second
    double settle;      //  seconds between connecting and publishing
    double drain;       //  seconds to wait for late deliveries

    bench_watches_t watches;
} bench_opts_t;

//  ---------------------------------------------------------------------
//  Results

typedef struct {
    bench_hist_t *lat;         //  ack / response latency
    bench_hist_t *delivery;    //  e2e / fanout delivery latency
    uint64_t sent;             //  requests sent during the window
    uint64_t ok;               //  successful answers during the window
    uint64_t errors;           //  failed or unanswered
    uint64_t backlog;          //  open loop: scheduled but never sent
    uint64_t deliveries;       //  relevant deliveries in the window
    uint64_t extra;            //  deliveries a client did not need
    uint64_t missing;          //  relevant events a client never got
    uint64_t dups;             //  deliveries beyond what was published
    uint64_t connected;        //  subscriber clients connected
    uint64_t connect_failed;   //  refused, timed out, or never tried
    uint64_t not_tried;        //  of those: not tried, the deadline passed
    uint64_t disconnected;     //  dropped during the run
    double connect_s;          //  time to connect them all
    double seconds;            //  measured window
    json_t *extra_json;        //  mode-specific details (object)
} bench_result_t;

void bench_result_init (bench_result_t *r);
void bench_result_free (bench_result_t *r);

//  ---------------------------------------------------------------------
//  Modes

int bench_pubsub_run (bench_opts_t *opts, bench_result_t *result);
int bench_jetstream_run (bench_opts_t *opts, bench_result_t *result);
int bench_disk_run (bench_opts_t *opts, bench_result_t *result);
/*  Orders at --rate, each retried with its key until 201 (bench_retry.c).  */
int bench_retry_run (bench_opts_t *opts, bench_result_t *result);
/*  `orderbus-bench stats EP [--caught-up S]` (bench_stats.c): argv[0] is
    "stats".  0, 1 (no answer, or a replica not caught up) or 2 (usage).  */
int bench_stats_main (int argc, char **argv);

//  ---------------------------------------------------------------------
//  Tokens (bench_auth.c), for systems that ask for them

/*  Mint a pad token for each of tables tables and a kitchen token from
    opts->secret_file, or take opts->token.  0 or -1.  */
int bench_auth_init (const bench_opts_t *opts, int tables);
/*  The token of table index table's pad (-1: the kitchen's), or NULL when
    the run uses no tokens.  */
const char *bench_auth_token (int table);
void bench_auth_destroy (void);

//  ---------------------------------------------------------------------
//  Logging

void bench_log (const bench_opts_t *opts, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
