/*  bench_jetstream.c — durable intake into NATS JetStream (libnats).

    A file-storage stream with subject "orders.>" is (re)created, then
    orders are published asynchronously with their tag as Nats-Msg-Id, so
    the server dedupes retries the way orderbus dedupes idempotency keys.
    The PubAck arrives once the server has stored the message in its file
    store.  Whether that store was synced to disk is not the client's to
    know: see RESULTS.md for what nats-server 2.9 does (it does not fsync
    per message) and the sync counts perf took from the server.

    Closed loop: libnats' MaxPending keeps at most `inflight` publishes
    outstanding (the publish call stalls until an ack frees a slot).  Open
    loop: paced sends, latency from the intended time.  */

#define _GNU_SOURCE
#include <inttypes.h>
#ifdef BENCH_HAVE_NATS
#include <nats/nats.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "bench_sub.h"

#ifdef BENCH_HAVE_NATS

typedef struct {
    bench_opts_t *opts;
    bench_result_t *res;
    pthread_mutex_t lock;   //  the ack handler runs on a libnats thread
    int64_t win_start, win_end;
    uint64_t outstanding_win;
    uint64_t completed_win;
} s_js_t;

//  One answer: its latency and outcome, if it belongs to the window.
static void
s_record (s_js_t *self, natsMsg *msg, bool ok)
{
    int64_t now = bench_now ();
    uint64_t n;
    int64_t t;
    bool tagged = bench_tag_find (natsMsg_GetData (msg),
                                  (size_t) natsMsg_GetDataLength (msg),
                                  self->opts->run, &n, &t)
                  == 0;
    pthread_mutex_lock (&self->lock);
    if (tagged && t >= self->win_start && t < self->win_end) {
        if (self->outstanding_win > 0)
            self->outstanding_win--;
        if (ok) {
            self->res->ok++;
            bench_hist_record (self->res->lat, now - t);
        } else
            self->res->errors++;
    }
    if (ok && now >= self->win_start && now < self->win_end)
        self->completed_win++;
    pthread_mutex_unlock (&self->lock);
}

static void
s_on_ack (jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
          void *closure)
{
    s_record ((s_js_t *) closure, msg, pa && !pae);
    natsMsg_Destroy (msg);
}

//  Create the stream afresh.  0 or -1.
static int
s_stream (jsCtx *js, const char *name)
{
    jsErrCode jerr = 0;
    js_DeleteStream (js, name, NULL, &jerr);   //  absent is fine
    jsStreamConfig cfg;
    jsStreamConfig_Init (&cfg);
    const char *subjects[] = { "orders.>" };
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = 120LL * 1000000000;   //  dedupe window for Nats-Msg-Id
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream (&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy (si);
    if (s != NATS_OK) {
        fprintf (stderr, "orderbus-bench: cannot create stream %s: %s (%d)\n",
                 name, natsStatus_GetText (s), (int) jerr);
        return -1;
    }
    return 0;
}

//  Publish request n with tag time t.  0 or -1.
static int
s_publish (s_js_t *self, jsCtx *js, uint64_t n, int64_t t)
{
    char tag[BENCH_TAG_MAX], table[16], subject[32], payload[16384];
    bench_tag_format (tag, sizeof tag, self->opts->run, n, t);
    bench_table_label ((int) (n % 100), table, sizeof table);
    snprintf (subject, sizeof subject, "orders.%s", table);
    int len = bench_peer_payload (payload, sizeof payload, self->opts->payload,
                                  tag, table);
    natsMsg *msg = NULL;
    if (len < 0
        || natsMsg_Create (&msg, subject, NULL, payload, len) != NATS_OK)
        return -1;
    natsMsgHeader_Set (msg, "Nats-Msg-Id", tag);
    bool in_window = t >= self->win_start && t < self->win_end;
    pthread_mutex_lock (&self->lock);
    if (in_window) {
        self->res->sent++;
        self->outstanding_win++;
    }
    pthread_mutex_unlock (&self->lock);
    natsStatus s;
    if (self->opts->rate <= 0 && self->opts->inflight == 1) {
        //  One at a time: the synchronous call, so that no async machinery
        //  of the client adds to the server's latency
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        s = js_PublishMsg (&pa, js, msg, NULL, &jerr);
        jsPubAck_Destroy (pa);
        s_record (self, msg, s == NATS_OK);
        natsMsg_Destroy (msg);
        return s == NATS_OK ? 0 : -1;
    }
    //  Stalls while MaxPending publishes are unacknowledged
    int guard = 100;
    while ((s = js_PublishMsgAsync (js, &msg, NULL)) == NATS_TIMEOUT
           && guard-- > 0)
        ;
    if (s != NATS_OK) {
        natsMsg_Destroy (msg);
        pthread_mutex_lock (&self->lock);
        if (in_window) {
            self->outstanding_win--;
            self->res->errors++;
        }
        pthread_mutex_unlock (&self->lock);
        return -1;
    }
    return 0;
}

static void
s_load (s_js_t *self, jsCtx *js, int64_t t0)
{
    bench_opts_t *opts = self->opts;
    uint64_t n = 0;
    bool started = false;
    int64_t next_tick = t0, now;
    while ((now = bench_now ()) < self->win_end) {
        if (!started && now >= self->win_start) {
            bench_watch_start (&opts->watches);
            started = true;
        }
        if (now >= next_tick && started) {
            bench_watch_sample (&opts->watches);
            next_tick = now + 100000000;
        }
        int64_t t = now;
        if (opts->rate > 0) {
            t = t0 + (int64_t) ((double) n * 1e9 / opts->rate);
            if (t > now) {
                int64_t wait = t - now;
                usleep (
                    (useconds_t) (wait / 1000 > 10000 ? 10000 : wait / 1000));
                continue;
            }
        }
        s_publish (self, js, n++, t);
    }
    if (!started)
        bench_watch_start (&opts->watches);
    bench_watch_stop (&opts->watches);
}

int
bench_jetstream_run (bench_opts_t *opts, bench_result_t *result)
{
    s_js_t self = { .opts = opts, .res = result };
    pthread_mutex_init (&self.lock, NULL);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init (&jo);
    jo.PublishAsync.MaxPending = opts->rate > 0 ? 1000000 : opts->inflight;
    jo.PublishAsync.AckHandler = s_on_ack;
    jo.PublishAsync.AckHandlerClosure = &self;
    jo.PublishAsync.StallWait = opts->timeout_ms;
    int rc = -1;
    const char *stream = opts->stream ? opts->stream : "ORDERS";
    bench_watch_idle (&opts->watches);
    if (natsConnection_ConnectTo (&nc, opts->nats_url) != NATS_OK) {
        fprintf (stderr, "orderbus-bench: cannot connect to NATS at %s\n",
                 opts->nats_url);
        goto done;
    }
    if (natsConnection_JetStream (&js, nc, &jo) != NATS_OK
        || s_stream (js, stream) != 0)
        goto done;
    bench_watch_arm (&opts->watches);
    int64_t t0 = bench_now ();
    self.win_start = t0 + (int64_t) (opts->warmup * 1e9);
    self.win_end = self.win_start + (int64_t) (opts->duration * 1e9);
    s_load (&self, js, t0);
    jsPubOptions po;
    jsPubOptions_Init (&po);
    po.MaxWait = opts->timeout_ms;
    js_PublishAsyncComplete (js, &po);
    pthread_mutex_lock (&self.lock);
    result->errors += self.outstanding_win;
    self.outstanding_win = 0;
    json_object_set_new (
        result->extra_json, "throughput_per_s",
        json_real ((double) self.completed_win / opts->duration));
    pthread_mutex_unlock (&self.lock);
    result->seconds = opts->duration;
    rc = 0;
done:
    //  Unacked messages are handed back to us by jsCtx_Destroy's cleanup
    jsCtx_Destroy (js);
    natsConnection_Destroy (nc);
    nats_Close ();
    pthread_mutex_destroy (&self.lock);
    return rc;
}

#else

int
bench_jetstream_run (bench_opts_t *opts, bench_result_t *result)
{
    fprintf (stderr, "orderbus-bench: built without libnats: no JetStream\n");
    return -1;
}

#endif
