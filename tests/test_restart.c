/*  test_restart — kill -9 the writer, restart it on the same data: every
    acknowledged order is still there and the sequence goes on.  While it
    is down a pad gets 503 with Retry-After within the deadline, and an
    order sent just before it comes back is committed by the gateway's
    resends, once.  */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK  TK_CHECK
#define ORDERS 30

static char s_data[600], s_menu[600], s_intake[64], s_events[64], s_sync[64];

static pid_t
s_writer (void)
{
    return tk_spawn ("writer", "writer", "--data", s_data, "--menu", s_menu,
                     "--intake", s_intake, "--events", s_events, "--sync",
                     s_sync, "--heartbeat-ms", "100", NULL);
}

static json_int_t
s_int (json_t *obj, const char *key)
{
    return json_integer_value (json_object_get (obj, key));
}

static void
s_order (int gw, int n, json_int_t *id, json_int_t *seq)
{
    char key[32], body[128];
    snprintf (key, sizeof key, "restart-%d", n);
    snprintf (
        body, sizeof body,
        "{\"table\":\"T%d\",\"items\":[{\"item_id\":\"fries\",\"quantity\":%d}]}",
        n % 7 + 1, n % 5 + 1);
    tk_response_t r;
    tk_post_order (gw, key, body, &r);
    CHECK (r.status == 201, "order %d: %d %s", n, r.status, r.body);
    *id = s_int (r.json, "id");
    *seq = s_int (r.json, "seq");
    tk_response_free (&r);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "restart");
    int gw = tk_port ();
    char port[16];
    snprintf (port, sizeof port, "%d", gw);
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    pid_t writer = s_writer ();
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", port, "--ack-timeout-ms", "1500",
              NULL);
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "gateway healthy");

    json_int_t ids[ORDERS], seq = 0;
    for (int i = 0; i < ORDERS; i++)
        s_order (gw, i, &ids[i], &seq);
    CHECK (seq >= ORDERS, "sequence after %d orders: %lld", ORDERS,
           (long long) seq);

    //  kill -9 right after the last 201: nothing acknowledged may be lost
    CHECK (tk_kill (writer, SIGKILL) == 128 + SIGKILL, "writer killed");
    CHECK (tk_wait_http (gw, "/healthz", 503, 5000),
           "gateway notices the writer is gone");
    tk_response_t r;
    tk_post_order (
        gw, "while-down",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
        &r);
    char retry[16];
    CHECK (r.status == 503
               && tk_header (&r, "Retry-After", retry, sizeof retry),
           "503 with Retry-After while the writer is down: %d", r.status);
    tk_response_free (&r);

    writer = s_writer ();
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "writer back");
    for (int i = 0; i < ORDERS; i++) {
        char path[64];
        snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) ids[i]);
        tk_http (gw, "GET", path, NULL, NULL, &r);
        CHECK (r.status == 200, "order %lld after kill -9: %d",
               (long long) ids[i], r.status);
        tk_response_free (&r);
    }
    //  The command the pad retries now: committed once, seq continues
    tk_post_order (
        gw, "while-down",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
        &r);
    CHECK (r.status == 201, "retry after restart: %d %s", r.status, r.body);
    json_int_t retried_seq = s_int (r.json, "seq");
    tk_response_free (&r);
    CHECK (retried_seq == seq + 1, "sequence continues: %lld after %lld",
           (long long) retried_seq, (long long) seq);
    tk_http (gw, "GET", "/api/v1/orders?limit=1000", NULL, NULL, &r);
    size_t stored = json_array_size (json_object_get (r.json, "orders"));
    CHECK (stored == ORDERS + 1,
           "stored %zu orders, want %d (no loss, no double)", stored,
           ORDERS + 1);
    tk_response_free (&r);

    //  A clean stop (SIGTERM) and restart keeps everything too
    CHECK (tk_kill (writer, SIGTERM) == 0, "writer exits 0 on SIGTERM");
    writer = s_writer ();
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "writer back again");
    json_int_t id, next_seq;
    s_order (gw, 1000, &id, &next_seq);
    CHECK (next_seq == retried_seq + 1,
           "seq %lld after clean restart, want %lld", (long long) next_seq,
           (long long) (retried_seq + 1));
    printf ("restart: sent %d, acknowledged %d, stored %zu, duplicates 0\n",
            ORDERS + 2, ORDERS + 2, stored + 1);
    return tk_done ();
}
