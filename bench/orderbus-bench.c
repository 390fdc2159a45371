/*  orderbus-bench — throughput and latency of orderbus and its peers.

      orderbus-bench intake  --target orderbus|redis|nats ...
      orderbus-bench http    --url http://127.0.0.1:8080 ...
      orderbus-bench e2e     --url ... --sub ws --sub-url ws://.../ws
      orderbus-bench fanout  --pub intake|http|socketio|nats|redis ...
      orderbus-bench disk    --dir DIR
      orderbus-bench retry   --url ... --rate R --log FILE
      orderbus-bench stats   EP [--caught-up S]

    Every mode prints a summary table on stdout and, with --json FILE,
    writes the full result (percentile curves, process memory, CPU and
    disk syncs) for bench/report.py.  `orderbus-bench --help` lists the
    options.  */

#define _GNU_SOURCE
#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: orderbus-bench MODE [options]\n"
        "\n"
        "modes:\n"
        "  intake   durable writes straight into a log: --target orderbus (writer\n"
        "           PULL + ack topic), redis (XADD, appendfsync always), nats\n"
        "           (JetStream file stream)\n"
        "  http     POST orders over keep-alive connections (any JSON API)\n"
        "  e2e      POST orders and time their arrival on WebSocket client(s)\n"
        "  fanout   many subscribers, events published at --rate\n"
        "  disk     4 KiB pwrite + fdatasync, one at a time (the disk's sync rate)\n"
        "  retry    POST orders at --rate, each retried with its Idempotency-Key\n"
        "           until 201 (a writer group failing over); new orders stop after\n"
        "           --duration or at SIGTERM; one line per order in --log\n"
        "           (bench_retry.c)\n"
        "  port     print a TCP port that is free on 127.0.0.1 (for scripts)\n"
        "  stats    EP [--caught-up S]: print the STATS JSON of the writer (or\n"
        "           replica) whose sync socket is EP; with --caught-up, first\n"
        "           wait up to S s until every replica confirmed the writer's\n"
        "           last seq, exit 1 if one never does (bench_stats.c)\n"
        "\n"
        "load (every mode):\n"
        "  --duration S       measured seconds (10)        --warmup S   before (2)\n"
        "  --rate R           open loop: R requests/s, latency from intended send\n"
        "  --inflight N       closed loop: N requests in flight (default 1)\n"
        "  --clients N        connections carrying the requests (1)\n"
        "  --timeout MS       unanswered after MS = error (5000)\n"
        "  --label NAME       system under test, for the report\n"
        "  --json FILE        write the result as JSON\n"
        "  --watch NAME:PID   report RSS/CPU/threads of a process (repeatable)\n"
        "  --count-syncs      count fsync/fdatasync of watched pids with perf\n"
        "  --profile PID:FILE perf record the machine over the loaded period into\n"
        "                     FILE (read it with perf report --pid PID)\n"
        "  --quiet            no progress on stderr\n"
        "  --check            exit 3 unless some requests succeeded and none failed\n"
        "                     (a functional check for tests, not a performance one)\n"
        "\n"
        "intake:\n"
        "  --target T         orderbus | redis | nats\n"
        "  --intake EP        writer PULL (tcp://127.0.0.1:5555)\n"
        "  --events EP        writer PUB  (tcp://127.0.0.1:5556)\n"
        "  --origin NAME      ack topic A/NAME/ (bench-<pid>)\n"
        "  --cert FILE        CURVE: a gateway's secret certificate named --origin\n"
        "  --writer-key K     CURVE: the writer's public key or its .cert file\n"
        "  --redis HOST:PORT  (127.0.0.1:6379)     --nats URL  (nats://127.0.0.1:4222)\n"
        "  --stream NAME      Redis stream / JetStream stream\n"
        "\n"
        "http, e2e (and fanout with --pub http):\n"
        "  --url URL          base URL, repeat for several gateways (round robin)\n"
        "  --tls              speak https (checking nothing; --ca FILE trusts that\n"
        "                     certificate only and checks the URL's host is in it)\n"
        "  --path P           (/api/v1/orders)     --expect STATUS  (201)\n"
        "  --body TEMPLATE    JSON body; {tag} {table} {n} are replaced\n"
        "  --header 'N: V'    extra header, templated (default Idempotency-Key: {tag})\n"
        "  --secret-file F    mint tokens from the site secret F: each order goes with\n"
        "                     its table's pad token, each pad WebSocket with its own,\n"
        "                     kitchens with a kitchen token (Authorization: Bearer,\n"
        "                     ?token= on WebSocket URLs)\n"
        "  --token T          or send this one token everywhere\n"
        "\n"
        "e2e, fanout subscribers:\n"
        "  --sub KIND         ws | socketio | nats | redis\n"
        "  --sub-url URL      ws://host:port/path ({room} replaced), nats://, redis://\n"
        "  --kitchens K       clients that see every order (e2e: 1)\n"
        "  --tables T --pads P  P clients per table, each needing its table only\n"
        "  --pad-room TMPL    room of a pad ({table}); --kitchen-room ROOM\n"
        "  --threads N        subscriber threads (1)\n"
        "  --connect-rate R   new client connections per second (2000)\n"
        "  --settle S         wait between connecting and publishing (1)\n"
        "  --drain S          wait for late deliveries (2)\n"
        "  --pub KIND         fanout publisher: intake | http | socketio | nats | redis\n"
        "  --pub-url URL      publisher endpoint for socketio | nats | redis\n"
        "  --payload BYTES    size of a peer's event payload (560)\n"
        "\n"
        "disk:\n"
        "  --dir DIR          directory on the disk to measure (/tmp)\n"
        "\n"
        "retry (also --url, --secret-file, --tables, --body, --timeout):\n"
        "  --log FILE         one line per order as it resolves (required)\n"
        "  --retry-for S      an order is retried until S s after its first\n"
        "                     send (60)\n");
}

enum {
    OPT_DURATION = 256,
    OPT_WARMUP,
    OPT_RATE,
    OPT_INFLIGHT,
    OPT_CLIENTS,
    OPT_TIMEOUT,
    OPT_LABEL,
    OPT_JSON,
    OPT_WATCH,
    OPT_SYNCS,
    OPT_QUIET,
    OPT_TARGET,
    OPT_INTAKE,
    OPT_EVENTS,
    OPT_ORIGIN,
    OPT_CERT,
    OPT_WRITER_KEY,
    OPT_REDIS,
    OPT_NATS,
    OPT_STREAM,
    OPT_URL,
    OPT_TLS,
    OPT_CA,
    OPT_PATH,
    OPT_EXPECT,
    OPT_BODY,
    OPT_HEADER,
    OPT_SUB,
    OPT_SUB_URL,
    OPT_KITCHENS,
    OPT_TABLES,
    OPT_PADS,
    OPT_PAD_ROOM,
    OPT_KITCHEN_ROOM,
    OPT_THREADS,
    OPT_CONNECT_RATE,
    OPT_SETTLE,
    OPT_DRAIN,
    OPT_PUB,
    OPT_PUB_URL,
    OPT_PAYLOAD,
    OPT_DIR,
    OPT_CHECK,
    OPT_SECRET,
    OPT_TOKEN,
    OPT_PROFILE,
    OPT_LOG,
    OPT_RETRY_FOR,
    OPT_HELP
};

static const struct option s_options[] = {
    { "duration", 1, 0, OPT_DURATION },
    { "warmup", 1, 0, OPT_WARMUP },
    { "rate", 1, 0, OPT_RATE },
    { "inflight", 1, 0, OPT_INFLIGHT },
    { "clients", 1, 0, OPT_CLIENTS },
    { "timeout", 1, 0, OPT_TIMEOUT },
    { "label", 1, 0, OPT_LABEL },
    { "json", 1, 0, OPT_JSON },
    { "watch", 1, 0, OPT_WATCH },
    { "count-syncs", 0, 0, OPT_SYNCS },
    { "quiet", 0, 0, OPT_QUIET },
    { "target", 1, 0, OPT_TARGET },
    { "intake", 1, 0, OPT_INTAKE },
    { "events", 1, 0, OPT_EVENTS },
    { "origin", 1, 0, OPT_ORIGIN },
    { "cert", 1, 0, OPT_CERT },
    { "writer-key", 1, 0, OPT_WRITER_KEY },
    { "redis", 1, 0, OPT_REDIS },
    { "nats", 1, 0, OPT_NATS },
    { "stream", 1, 0, OPT_STREAM },
    { "url", 1, 0, OPT_URL },
    { "tls", 0, 0, OPT_TLS },
    { "ca", 1, 0, OPT_CA },
    { "path", 1, 0, OPT_PATH },
    { "expect", 1, 0, OPT_EXPECT },
    { "body", 1, 0, OPT_BODY },
    { "header", 1, 0, OPT_HEADER },
    { "sub", 1, 0, OPT_SUB },
    { "sub-url", 1, 0, OPT_SUB_URL },
    { "kitchens", 1, 0, OPT_KITCHENS },
    { "tables", 1, 0, OPT_TABLES },
    { "pads", 1, 0, OPT_PADS },
    { "pad-room", 1, 0, OPT_PAD_ROOM },
    { "kitchen-room", 1, 0, OPT_KITCHEN_ROOM },
    { "threads", 1, 0, OPT_THREADS },
    { "connect-rate", 1, 0, OPT_CONNECT_RATE },
    { "settle", 1, 0, OPT_SETTLE },
    { "drain", 1, 0, OPT_DRAIN },
    { "pub", 1, 0, OPT_PUB },
    { "pub-url", 1, 0, OPT_PUB_URL },
    { "payload", 1, 0, OPT_PAYLOAD },
    { "dir", 1, 0, OPT_DIR },
    { "secret-file", 1, 0, OPT_SECRET },
    { "token", 1, 0, OPT_TOKEN },
    { "profile", 1, 0, OPT_PROFILE },
    { "check", 0, 0, OPT_CHECK },
    { "log", 1, 0, OPT_LOG },
    { "retry-for", 1, 0, OPT_RETRY_FOR },
    { "help", 0, 0, OPT_HELP },
    { 0, 0, 0, 0 }
};

static void
s_defaults (bench_opts_t *o, const char *mode)
{
    static char origin[64];
    memset (o, 0, sizeof *o);
    o->mode = mode;
    o->label = "orderbus";
    o->duration = 10;
    o->warmup = 2;
    o->clients = 1;
    o->timeout_ms = 5000;
    o->threads = 1;
    o->target = "orderbus";
    o->intake_ep = "tcp://127.0.0.1:5555";
    o->events_ep = "tcp://127.0.0.1:5556";
    snprintf (origin, sizeof origin, "bench-%d", (int) getpid ());
    o->origin = origin;
    o->redis_addr = "127.0.0.1:6379";
    o->nats_url = "nats://127.0.0.1:4222";
    o->path = "/api/v1/orders";
    o->body = "{\"table\":\"{table}\",\"items\":[{\"item_id\":\"burger\","
              "\"quantity\":2},{\"item_id\":\"soup\",\"quantity\":1}]}";
    o->expect = 201;
    o->sub = "ws";
    o->payload = 560;
    o->connect_rate = 2000;
    o->settle = 1;
    o->drain = 2;
    o->retry_for = 60;
    //  A run id from the clock and pid: tags of an earlier run that are
    //  still in a system's snapshot never match this one
    o->run = (uint32_t) (bench_now () ^ ((int64_t) getpid () << 20));
}

static double
s_num (const char *flag, const char *text, double min, double max)
{
    char *end;
    double v = strtod (text, &end);
    if (end == text || *end || v < min || v > max) {
        fprintf (stderr,
                 "orderbus-bench: --%s: must be a number from %g to %g "
                 "(got '%s')\n",
                 flag, min, max, text);
        exit (2);
    }
    return v;
}

//  Apply one option; 0, or -1 if it is not known.
static int
s_option (bench_opts_t *o, int c, const char *arg)
{
    switch (c) {
        case OPT_DURATION:
            o->duration = s_num ("duration", arg, 0.1, 86400);
            break;
        case OPT_WARMUP: o->warmup = s_num ("warmup", arg, 0, 3600); break;
        case OPT_RATE: o->rate = s_num ("rate", arg, 0, 1e7); break;
        case OPT_INFLIGHT:
            o->inflight = (int) s_num ("inflight", arg, 1, 1e6);
            break;
        case OPT_CLIENTS:
            o->clients = (int) s_num ("clients", arg, 1, 100000);
            break;
        case OPT_TIMEOUT:
            o->timeout_ms = (int) s_num ("timeout", arg, 1, 600000);
            break;
        case OPT_LABEL: o->label = arg; break;
        case OPT_JSON: o->json_path = arg; break;
        case OPT_WATCH:
            if (bench_watch_add (&o->watches, arg) != 0) {
                fprintf (stderr,
                         "orderbus-bench: --watch wants NAME:PID (got '%s')\n",
                         arg);
                exit (2);
            }
            break;
        case OPT_SYNCS: o->watches.count_syncs = true; break;
        case OPT_QUIET: o->quiet = true; break;
        case OPT_CHECK: o->check = true; break;
        case OPT_SECRET: o->secret_file = arg; break;
        case OPT_TOKEN: o->token = arg; break;
        case OPT_PROFILE:
            if (bench_watch_profile (&o->watches, arg) != 0) {
                fprintf (
                    stderr,
                    "orderbus-bench: --profile wants PID:FILE (got '%s')\n",
                    arg);
                exit (2);
            }
            break;
        case OPT_TARGET: o->target = arg; break;
        case OPT_INTAKE: o->intake_ep = arg; break;
        case OPT_EVENTS: o->events_ep = arg; break;
        case OPT_ORIGIN: o->origin = arg; break;
        case OPT_CERT: o->cert = arg; break;
        case OPT_WRITER_KEY: o->writer_key = arg; break;
        case OPT_REDIS: o->redis_addr = arg; break;
        case OPT_NATS: o->nats_url = arg; break;
        case OPT_STREAM: o->stream = arg; break;
        case OPT_TLS: o->tls = true; break;
        case OPT_CA:
            o->tls = true;
            o->ca = arg;
            break;
        case OPT_URL:
            if (o->url_count < 16)
                o->urls[o->url_count++] = arg;
            break;
        case OPT_PATH: o->path = arg; break;
        case OPT_EXPECT:
            o->expect = (int) s_num ("expect", arg, 100, 599);
            break;
        case OPT_BODY: o->body = arg; break;
        case OPT_HEADER:
            if (o->header_count < 8)
                o->headers[o->header_count++] = arg;
            break;
        case OPT_SUB: o->sub = arg; break;
        case OPT_SUB_URL: o->sub_url = arg; break;
        case OPT_KITCHENS:
            o->kitchens = (int) s_num ("kitchens", arg, 0, 1e6);
            break;
        case OPT_TABLES: o->tables = (int) s_num ("tables", arg, 0, 1e6); break;
        case OPT_PADS: o->pads = (int) s_num ("pads", arg, 0, 1000); break;
        case OPT_PAD_ROOM: o->pad_room = arg; break;
        case OPT_KITCHEN_ROOM: o->kitchen_room = arg; break;
        case OPT_THREADS:
            o->threads = (int) s_num ("threads", arg, 1, 64);
            break;
        case OPT_CONNECT_RATE:
            o->connect_rate = (int) s_num ("connect-rate", arg, 1, 1e6);
            break;
        case OPT_SETTLE: o->settle = s_num ("settle", arg, 0, 600); break;
        case OPT_DRAIN: o->drain = s_num ("drain", arg, 0, 600); break;
        case OPT_PUB: o->pub = arg; break;
        case OPT_PUB_URL: o->pub_url = arg; break;
        case OPT_PAYLOAD:
            o->payload = (int) s_num ("payload", arg, 0, 15000);
            break;
        case OPT_DIR: o->dir = arg; break;
        case OPT_LOG: o->log_path = arg; break;
        case OPT_RETRY_FOR:
            o->retry_for = s_num ("retry-for", arg, 0, 3600);
            break;
        default: return -1;
    }
    return 0;
}

//  Fill in what the mode implies.  0 or -1 with a message.
static int
s_prepare (bench_opts_t *o)
{
    static const char *key_header = "Idempotency-Key: {tag}";
    static char redis_url[160];
    bool http_pub = strcmp (o->mode, "http") == 0
                    || strcmp (o->mode, "e2e") == 0
                    || strcmp (o->mode, "retry") == 0
                    || (o->pub && strcmp (o->pub, "http") == 0);
    if (http_pub && o->header_count == 0
        && strcmp (o->path, "/api/v1/orders") == 0)
        o->headers[o->header_count++] = key_header;
    if (http_pub && o->url_count == 0)
        o->urls[o->url_count++] = "http://127.0.0.1:8080";
    if (strcmp (o->mode, "intake") == 0) {
        if (strcmp (o->target, "orderbus") == 0)
            o->pub = "intake";
        else if (strcmp (o->target, "redis") == 0) {
            snprintf (redis_url, sizeof redis_url, "redis://%s", o->redis_addr);
            o->pub = "xadd";
            o->pub_url = redis_url;
        } else if (strcmp (o->target, "nats") != 0) {
            fprintf (stderr, "orderbus-bench: unknown --target '%s'\n",
                     o->target);
            return -1;
        }
        return 0;
    }
    if (strcmp (o->mode, "retry") == 0
        && (o->rate <= 0 || !o->log_path || o->url_count != 1)) {
        fprintf (stderr, "orderbus-bench: retry needs --rate R, --log FILE "
                         "and one --url\n");
        return -1;
    }
    if (strcmp (o->mode, "http") == 0 || strcmp (o->mode, "retry") == 0)
        o->pub = "http";
    else if (strcmp (o->mode, "e2e") == 0) {
        o->pub = "http";
        if (o->kitchens == 0 && o->pads == 0)
            o->kitchens = 1;
    } else if (strcmp (o->mode, "fanout") == 0 && !o->pub)
        o->pub = "intake";
    if (o->pads > 0 && o->tables == 0) {
        fprintf (stderr, "orderbus-bench: --pads needs --tables\n");
        return -1;
    }
    if ((o->kitchens > 0 || o->pads > 0) && !o->sub_url) {
        fprintf (stderr, "orderbus-bench: %s needs --sub-url\n", o->mode);
        return -1;
    }
    if (o->pub && strcmp (o->pub, "intake") != 0 && strcmp (o->pub, "http") != 0
        && !o->pub_url) {
        fprintf (stderr, "orderbus-bench: --pub %s needs --pub-url\n", o->pub);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Output

static double
s_ms (const bench_hist_t *h, double p)
{
    return (double) bench_hist_percentile (h, p) / 1e6;
}

static void
s_print_hist (const char *what, const bench_hist_t *h)
{
    if (bench_hist_count (h) == 0) {
        printf ("  %-10s  (none timed)\n", what);
        return;
    }
    printf ("  %-10s  %10" PRIu64 "  %8.3f %8.3f %8.3f %8.3f %8.3f %9.3f\n",
            what, bench_hist_count (h), s_ms (h, 0), s_ms (h, 50), s_ms (h, 90),
            s_ms (h, 99), s_ms (h, 99.9), s_ms (h, 100));
}

static void
s_print (const bench_opts_t *o, const bench_result_t *r)
{
    json_t *thr = json_object_get (r->extra_json, "throughput_per_s");
    printf ("\n%s %s  (%s, %.1f s measured)\n", o->mode, o->label,
            o->rate > 0 ? "open loop" : "closed loop", r->seconds);
    if (o->rate > 0)
        printf ("  offered %.0f/s", o->rate);
    else
        printf ("  in flight %d", o->inflight);
    printf ("   sent %" PRIu64 "  ok %" PRIu64 "  errors %" PRIu64
            "  backlog %" PRIu64 "  throughput %.0f/s\n",
            r->sent, r->ok, r->errors, r->backlog,
            thr ? json_real_value (thr) : 0);
    printf ("  %-10s  %10s  %8s %8s %8s %8s %8s %9s  (ms)\n", "latency",
            "count", "min", "p50", "p90", "p99", "p99.9", "max");
    s_print_hist ("ack", r->lat);
    if (r->connected || r->connect_failed) {
        s_print_hist ("delivery", r->delivery);
        printf ("  clients %" PRIu64 " connected, %" PRIu64 " failed (%" PRIu64
                " not tried), %" PRIu64
                " dropped (connect %.1f s);  deliveries %.0f/s"
                "  missing %" PRIu64 "  extra %" PRIu64 "  dups %" PRIu64 "\n",
                r->connected, r->connect_failed, r->not_tried, r->disconnected,
                r->connect_s,
                r->seconds > 0 ? (double) r->deliveries / r->seconds : 0,
                r->missing, r->extra, r->dups);
    }
    json_t *machine = bench_machine_json (&o->watches, r->seconds);
    printf (
        "  machine     busy %.0f%% of %d cores x 100%%, of which other processes "
        "%.0f%%; steal %.0f%%\n",
        json_real_value (json_object_get (machine, "busy_pct")),
        (int) json_integer_value (json_object_get (machine, "cores")),
        json_real_value (json_object_get (machine, "others_pct")),
        json_real_value (json_object_get (machine, "steal_pct")));
    json_decref (machine);
    for (int i = 0; i < o->watches.count; i++) {
        const bench_watch_t *w = &o->watches.list[i];
        printf ("  %-10s  rss idle %.1f MB, connected %.1f MB, load %.1f MB;"
                "  cpu %.0f%%;  threads %" PRId64,
                w->name, w->rss_idle_kb / 1024.0,
                (w->rss_conn_kb ? w->rss_conn_kb : w->rss_idle_kb) / 1024.0,
                w->rss_load_kb / 1024.0,
                r->seconds > 0 ? 100 * w->cpu_s / r->seconds : 0, w->threads);
        if (w->syncs >= 0)
            printf (";  syncs %.0f/s", w->sync_rate);
        printf ("\n");
    }
    fflush (stdout);
}

static char *
s_command (int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen (argv[i]) * 4 + 3;
    char *cmd = calloc (1, len);
    for (int i = 0; cmd && i < argc; i++) {
        bool quote = strpbrk (argv[i], " \"'{}*$>") != NULL;
        if (i)
            strcat (cmd, " ");
        if (quote) {   //  single quotes, with ' written as '\''
            strcat (cmd, "'");
            for (const char *p = argv[i]; *p; p++)
                strcat (cmd, *p == '\'' ? "'\\''" : (char[]){ *p, 0 });
            strcat (cmd, "'");
        } else
            strcat (cmd, argv[i]);
    }
    return cmd;
}

static int
s_write_json (const bench_opts_t *o, const bench_result_t *r,
              const char *command)
{
    json_t *root = json_pack (
        "{s:s, s:s, s:s, s:I, s:{s:f, s:f, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:s?, s:s?}}",
        "mode", o->mode, "label", o->label, "command", command, "time",
        (json_int_t) time (NULL), "params", "duration", o->duration, "warmup",
        o->warmup, "rate", o->rate, "inflight", o->inflight, "clients",
        o->clients, "kitchens", o->kitchens, "tables", o->tables, "pads",
        o->pads, "payload", o->payload, "pub", o->pub, "sub",
        (o->kitchens || o->tables) ? o->sub : NULL);
    json_t *res = json_pack (
        "{s:I, s:I, s:I, s:I, s:f, s:o, s:o}", "sent", (json_int_t) r->sent,
        "ok", (json_int_t) r->ok, "errors", (json_int_t) r->errors, "backlog",
        (json_int_t) r->backlog, "seconds", r->seconds, "latency",
        bench_hist_json (r->lat), "delivery", bench_hist_json (r->delivery));
    if (r->connected || r->connect_failed)
        json_object_set_new (
            res, "clients_detail",
            json_pack ("{s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}",
                       "connected", (json_int_t) r->connected, "failed",
                       (json_int_t) r->connect_failed, "not_tried",
                       (json_int_t) r->not_tried, "dropped",
                       (json_int_t) r->disconnected, "connect_s", r->connect_s,
                       "deliveries_per_s",
                       r->seconds > 0 ? (double) r->deliveries / r->seconds : 0,
                       "missing", (json_int_t) r->missing, "extra",
                       (json_int_t) r->extra, "dups", (json_int_t) r->dups));
    json_object_update (res, r->extra_json);
    json_object_set_new (root, "result", res);
    json_object_set_new (root, "processes",
                         bench_watch_json (&o->watches, r->seconds));
    json_object_set_new (root, "machine",
                         bench_machine_json (&o->watches, r->seconds));
    int rc =
        json_dump_file (root, o->json_path, JSON_INDENT (1) | JSON_SORT_KEYS);
    json_decref (root);
    if (rc != 0)
        fprintf (stderr, "orderbus-bench: cannot write %s\n", o->json_path);
    return rc;
}

//  Print a port the kernel hands out for 127.0.0.1 right now.
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0
        || getsockname (fd, (struct sockaddr *) &addr, &len) != 0)
        return 1;
    printf ("%d\n", ntohs (addr.sin_port));
    close (fd);
    return 0;
}

//  Thousands of client sockets need as many descriptors.
static void
s_raise_nofile (void)
{
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
}

int
main (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv[1], "--help") == 0
        || strcmp (argv[1], "-h") == 0) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp (argv[1], "port") == 0)
        return s_free_port ();
    if (strcmp (argv[1], "stats") == 0)
        return bench_stats_main (argc - 1, argv + 1);
    bench_opts_t opts;
    s_defaults (&opts, argv[1]);
    int c;
    optind = 2;
    while ((c = getopt_long (argc, argv, "", s_options, NULL)) != -1) {
        if (c == OPT_HELP) {
            s_usage (stdout);
            return 0;
        }
        if (s_option (&opts, c, optarg) != 0) {
            fprintf (stderr, "orderbus-bench: try --help\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "orderbus-bench: unexpected argument '%s'\n",
                 argv[optind]);
        return 2;
    }
    if (s_prepare (&opts) != 0)
        return 2;
    //  The generator watches itself too: a result is only as good as the
    //  headroom the load generator had
    char self_watch[32];
    snprintf (self_watch, sizeof self_watch, "bench:%d", (int) getpid ());
    bench_watch_add (&opts.watches, self_watch);
    signal (SIGPIPE, SIG_IGN);
    s_raise_nofile ();
    zsys_init ();
    zsys_set_logstream (stderr);
    bench_result_t result;
    bench_result_init (&result);
    int rc;
    //  Orders spread over tables T0..T<n-1>: --tables, else 100
    if (bench_auth_init (&opts, opts.tables > 0 ? opts.tables : 100) != 0)
        return 1;
    if (strcmp (opts.mode, "disk") == 0)
        rc = bench_disk_run (&opts, &result);
    else if (strcmp (opts.mode, "retry") == 0)
        rc = bench_retry_run (&opts, &result);
    else if (strcmp (opts.mode, "intake") == 0
             && strcmp (opts.target, "nats") == 0)
        rc = bench_jetstream_run (&opts, &result);
    else if (strcmp (opts.mode, "intake") == 0
             || strcmp (opts.mode, "http") == 0
             || strcmp (opts.mode, "e2e") == 0
             || strcmp (opts.mode, "fanout") == 0)
        rc = bench_pubsub_run (&opts, &result);
    else {
        fprintf (stderr, "orderbus-bench: unknown mode '%s' (try --help)\n",
                 opts.mode);
        return 2;
    }
    if (rc == 0) {
        s_print (&opts, &result);
        char *command = s_command (argc, argv);
        if (opts.json_path)
            rc = s_write_json (&opts, &result, command ? command : "");
        free (command);
        if (opts.check && (result.ok == 0 || result.errors > 0)) {
            fprintf (stderr,
                     "orderbus-bench: check failed: %" PRIu64 " ok, %" PRIu64
                     " errors\n",
                     result.ok, result.errors);
            rc = 3;
        }
    }
    bench_result_free (&result);
    bench_auth_destroy ();
    zsys_shutdown ();
    return rc == 0 ? 0 : rc == 3 ? 3 : 1;
}
