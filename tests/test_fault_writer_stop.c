/*  test_fault_writer_stop — the writer freezes (SIGSTOP) and comes back
    (SIGCONT), as a process stuck on a dying disk or a paused VM would:

      - POSTs already waiting when it froze end within the deadline
        (--ack-timeout-ms) with a 201 or a 503, never hang;
      - with --max-inflight 2, a third POST while two wait is refused at
        once: 503 {"error":{"code":"overloaded"}} with Retry-After;
      - once the gateway knows the writer is gone (no heartbeat for
        --link-timeout-ms), a new POST gets 503 "unavailable" with
        Retry-After at once, well under the ack timeout;
      - after SIGCONT, retries with the same keys and bodies get 201, and
        each order is stored once;
      - a POST waiting through a short freeze (shorter than the link
        timeout) completes with 201 when the writer continues.

    The gateway's stats count what happened (overloaded, unreachable).  */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK           TK_CHECK
#define ACK_TIMEOUT_MS  3000
#define LINK_TIMEOUT_MS 2000
#define FAST_MS         1000   //  "at once", generously, on a busy machine
#define SLACK_MS        2000   //  on top of the deadline, for scheduling

static int s_gw;

typedef struct {
    const char *key;
    const char *table;
    int status;
    char code[32];
    bool retry_after;
    int64_t took_ms;
    pthread_t thread;
} s_post_t;

static void
s_post_now (s_post_t *post)
{
    char *body =
        tk_order_body (post->table, 2, false, (int) strlen (post->key));
    int64_t start = tk_now_ms ();
    tk_response_t r;
    tk_post_order (s_gw, post->key, body, &r);
    post->took_ms = tk_now_ms () - start;
    post->status = r.status;
    const char *code = json_string_value (
        json_object_get (json_object_get (r.json, "error"), "code"));
    snprintf (post->code, sizeof post->code, "%s", code ? code : "");
    char value[16];
    post->retry_after =
        tk_header (&r, "Retry-After", value, sizeof value) != NULL;
    tk_response_free (&r);
    free (body);
}

static void *
s_post_thread (void *arg)
{
    s_post_now ((s_post_t *) arg);
    return NULL;
}

static void
s_post_start (s_post_t *post)
{
    pthread_create (&post->thread, NULL, s_post_thread, post);
}

static void
s_post_join (s_post_t *post, const char *what)
{
    pthread_join (post->thread, NULL);
    printf ("fault_writer_stop: %s (%s): %d %s in %lld ms\n", what, post->key,
            post->status, post->code, (long long) post->took_ms);
}

//  The same key and body again, as the pad retries: 201.
static void
s_retry (tk_ledger_t *ledger, s_post_t *post)
{
    char *body =
        tk_order_body (post->table, 2, false, (int) strlen (post->key));
    int current = 0;
    int status = tk_ledger_place (ledger, &s_gw, 1, &current, post->key,
                                  post->table, body, 15000);
    free (body);
    CHECK (status == 201, "retry of %s after SIGCONT: %d", post->key, status);
}

static json_int_t
s_stat (const char *path)
{
    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    json_int_t n = tk_json_int (stats, path);
    json_decref (stats);
    return n;
}

//  What the cases share besides s_gw: the writer, the ledger, the POSTs
//  made while it was frozen, the gateway's counters before
static pid_t s_writer;
static tk_ledger_t *s_ledger;
static s_post_t s_a = { .key = "stop-a", .table = "T2" };
static s_post_t s_b = { .key = "stop-b", .table = "T3" };
static s_post_t s_c = { .key = "stop-c", .table = "T4" };
static s_post_t s_d = { .key = "stop-d", .table = "T5" };
static json_int_t s_overloaded0, s_unreachable0;

TK_CASE (start)
{
    char data[600], menu[600], intake[64], events[64], sync[64], port[16];
    char ack[16], link[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (intake, events, sync);
    snprintf (ack, sizeof ack, "%d", ACK_TIMEOUT_MS);
    snprintf (link, sizeof link, "%d", LINK_TIMEOUT_MS);
    s_gw = tk_port ();
    snprintf (port, sizeof port, "%d", s_gw);
    s_writer = tk_spawn_env ("writer", NULL, "writer", "--data", data, "--menu",
                             menu, "--intake", intake, "--events", events,
                             "--sync", sync, "--heartbeat-ms", "100", NULL);
    tk_spawn_env ("gateway", NULL, "gateway", "--table-rate", "1000",
                  "--table-burst", "10000", "--intake", intake, "--events",
                  events, "--sync", sync, "--http-port", port, "--heartbeat-ms",
                  "100", "--link-timeout-ms", link, "--ack-timeout-ms", ack,
                  "--max-inflight", "2", NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    s_ledger = tk_ledger_new ();
    s_post_t warm = { .key = "stop-warm", .table = "T1" };
    s_retry (s_ledger, &warm);
    s_overloaded0 = s_stat ("gateway.overloaded");
    s_unreachable0 = s_stat ("gateway.unreachable");
    CHECK (s_overloaded0 >= 0 && s_unreachable0 >= 0, "gateway stats answer");
}

//  1. Freeze.  Two POSTs wait for the frozen writer; a third finds the
//  gateway full while the writer still counts as reachable
TK_CASE (frozen_gateway_full)
{
    CHECK (kill (s_writer, SIGSTOP) == 0, "SIGSTOP writer");
    int64_t frozen_at = tk_now_ms ();
    s_post_start (&s_a);
    s_post_start (&s_b);
    usleep (500 * 1000);   //  a and b are waiting by now
    s_post_now (&s_c);
    printf (
        "fault_writer_stop: third POST while two wait (%s): %d %s in %lld ms\n",
        s_c.key, s_c.status, s_c.code, (long long) s_c.took_ms);
    CHECK (
        tk_now_ms () - frozen_at < LINK_TIMEOUT_MS,
        "the third POST came %lld ms after the freeze, past the link timeout: "
        "the machine is too slow for this check",
        (long long) (tk_now_ms () - frozen_at));
    CHECK (s_c.status == 503 && strcmp (s_c.code, "overloaded") == 0
               && s_c.retry_after,
           "third POST: %d %s (Retry-After %d), want 503 overloaded",
           s_c.status, s_c.code, s_c.retry_after);
    CHECK (s_c.took_ms < FAST_MS, "overloaded answer took %lld ms",
           (long long) s_c.took_ms);

    //  The two waiting POSTs end within the deadline, 201 or 503
    s_post_join (&s_a, "waiting POST");
    s_post_join (&s_b, "waiting POST");
    CHECK ((s_a.status == 201 || s_a.status == 503)
               && (s_b.status == 201 || s_b.status == 503),
           "waiting POSTs ended %d and %d", s_a.status, s_b.status);
    CHECK (s_a.took_ms <= ACK_TIMEOUT_MS + SLACK_MS
               && s_b.took_ms <= ACK_TIMEOUT_MS + SLACK_MS,
           "waiting POSTs took %lld and %lld ms (deadline %d ms)",
           (long long) s_a.took_ms, (long long) s_b.took_ms, ACK_TIMEOUT_MS);
}

//  2. The writer is known gone: a new POST is refused at once
TK_CASE (writer_known_gone)
{
    CHECK (tk_wait_http (s_gw, "/healthz", 503, LINK_TIMEOUT_MS + 5000),
           "gateway /healthz notices the frozen writer");
    s_post_now (&s_d);
    printf (
        "fault_writer_stop: POST while the writer is known gone (%s): %d %s "
        "in %lld ms\n",
        s_d.key, s_d.status, s_d.code, (long long) s_d.took_ms);
    CHECK (s_d.status == 503 && strcmp (s_d.code, "unavailable") == 0
               && s_d.retry_after,
           "POST to a gateway whose writer is gone: %d %s (Retry-After %d)",
           s_d.status, s_d.code, s_d.retry_after);
    CHECK (s_d.took_ms < FAST_MS,
           "unavailable answer took %lld ms (ack timeout %d)",
           (long long) s_d.took_ms, ACK_TIMEOUT_MS);
}

//  3. Thaw: every retry with the same key and body gets its 201
TK_CASE (thaw_retries)
{
    CHECK (kill (s_writer, SIGCONT) == 0, "SIGCONT writer");
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000),
           "gateway sees the writer back");
    s_post_t *all[] = { &s_a, &s_b, &s_c, &s_d };
    for (int i = 0; i < 4; i++)
        s_retry (s_ledger, all[i]);
}

//  4. A short freeze: the waiting POST is answered 201 once it thaws
TK_CASE (short_freeze)
{
    CHECK (kill (s_writer, SIGSTOP) == 0, "SIGSTOP writer again");
    s_post_t e = { .key = "stop-e", .table = "T6" };
    s_post_start (&e);
    usleep (700 * 1000);
    CHECK (kill (s_writer, SIGCONT) == 0, "SIGCONT writer again");
    s_post_join (&e, "POST through a short freeze");
    CHECK (e.status == 201, "POST through a 700 ms freeze: %d %s", e.status,
           e.code);
    CHECK (e.took_ms <= ACK_TIMEOUT_MS + SLACK_MS, "it took %lld ms",
           (long long) e.took_ms);
    s_retry (s_ledger, &e);   //  the same key again: the same order
}

TK_CASE (store_and_stats)
{
    tk_tally_t t;
    CHECK (tk_ledger_tally (s_ledger, s_gw, 1000, &t),
           "orders could be listed");
    tk_tally_print ("fault_writer_stop", &t);
    CHECK (t.stored == 6 && t.acked == 6 && t.duplicates == 0 && t.lost == 0
               && t.unknown == 0 && t.mismatched == 0,
           "want the 6 orders stored once each");
    CHECK (t.seq_gaps == 0 && t.seq_dups == 0 && t.max_seq == 6, "seqs 1..6");
    json_int_t overloaded = s_stat ("gateway.overloaded");
    json_int_t unreachable = s_stat ("gateway.unreachable");
    printf (
        "fault_writer_stop: gateway stats: overloaded +%lld, unreachable +%lld, "
        "timeouts %lld\n",
        (long long) (overloaded - s_overloaded0),
        (long long) (unreachable - s_unreachable0),
        (long long) s_stat ("gateway.timeouts"));
    CHECK (overloaded - s_overloaded0 >= 1, "gateway.overloaded did not count");
    CHECK (unreachable - s_unreachable0 >= 1,
           "gateway.unreachable did not count");
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (frozen_gateway_full),
                                     TK_CASE_ENTRY (writer_known_gone),
                                     TK_CASE_ENTRY (thaw_retries),
                                     TK_CASE_ENTRY (short_freeze),
                                     TK_CASE_ENTRY (store_and_stats),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_writer_stop");
    tk_run_cases (s_cases);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
