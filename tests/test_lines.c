/*  test_lines — station routing with item-level state (issue 17): writer,
    gateway and edge as separate processes, driven through HTTP as a
    kitchen would, and watched on the WebSocket as a station screen.

    A station bump changes only its lines; an order is ready only when
    every line that is not voided is done; a recall takes it back; a void
    needs its reason and takes the line off the bill; the order-level
    routes apply to every line; bad input changes nothing; a restart of
    the writer (kill -9) keeps every line's state.  */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "testkit.h"

#define CHECK TK_CHECK

static char s_intake[64], s_events[64], s_sync[64], s_data[600], s_menu[600];
static int s_gw, s_edge;

static pid_t
s_writer (void)
{
    return tk_spawn ("writer", "writer", "--data", s_data, "--menu", s_menu,
                     "--intake", s_intake, "--events", s_events, "--sync",
                     s_sync, "--heartbeat-ms", "100", NULL);
}

static pid_t
s_start_nodes (void)
{
    char gw[16], edge[16], web[600];
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    snprintf (gw, sizeof gw, "%d", s_gw);
    snprintf (edge, sizeof edge, "%d", s_edge);
    pid_t writer = s_writer ();
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", gw, "--ack-timeout-ms", "1500",
              NULL);
    tk_spawn ("edge", "edge", "--events", s_events, "--sync", s_sync,
              "--http-port", edge, "--web", web, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
    return writer;
}

static const char *
s_str (json_t *obj, const char *key)
{
    const char *s = json_string_value (json_object_get (obj, key));
    return s ? s : "";
}

static json_int_t
s_int (json_t *obj, const char *key)
{
    return json_integer_value (json_object_get (obj, key));
}

//  POST path under /api/v1/orders/<id>/ with key and body; extra headers
//  (a token) may be added
static void
s_post (json_int_t id, const char *path, const char *key, const char *body,
        const char *extra, tk_response_t *r)
{
    char url[160], headers[700];
    snprintf (url, sizeof url, "/api/v1/orders/%lld/%s", (long long) id, path);
    snprintf (headers, sizeof headers,
              "Content-Type: application/json\r\nIdempotency-Key: %s\r\n%s",
              key, extra ? extra : "");
    tk_http (s_gw, "POST", url, headers, body, r);
}

//  Expect status (and, for an error, field) from a POST; frees r
static void
s_expect (tk_response_t *r, int status, const char *field, const char *what)
{
    CHECK (r->status == status, "%s: %d, want %d: %s", what, r->status, status,
           r->body ? r->body : "");
    if (field) {
        json_t *error = json_object_get (r->json, "error");
        CHECK (strcmp (s_str (error, "field"), field) == 0,
               "%s: field in %s, want %s", what, r->body, field);
    }
    tk_response_free (r);
}

//  The states of an order's lines as one string, "done,new,..."
static void
s_states (json_t *order, char *out, size_t cap)
{
    size_t i;
    json_t *line;
    *out = '\0';
    json_array_foreach (json_object_get (order, "items"), i, line)
        snprintf (out + strlen (out), cap - strlen (out), "%s%s", i ? "," : "",
                  s_str (line, "state"));
}

//  GET the order; its line states and status must be as given
static json_t *
s_check_order (json_int_t id, const char *states, const char *status,
               const char *what)
{
    char path[64], got[200];
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) id);
    json_t *order = tk_get_json (s_gw, path, 200);
    CHECK (order, "%s: GET order", what);
    s_states (order, got, sizeof got);
    CHECK (strcmp (got, states) == 0, "%s: lines %s, want %s", what, got,
           states);
    CHECK (strcmp (s_str (order, "status"), status) == 0,
           "%s: status %s, want %s", what, s_str (order, "status"), status);
    return order;
}

//  The next order event on the station screen's WebSocket: its lines
static void
s_check_event (tk_ws_t *ws, const char *states, const char *what)
{
    json_t *msg = tk_ws_next (ws, 5000);
    CHECK (msg && strcmp (s_str (msg, "type"), "event") == 0,
           "%s: no event on the WebSocket", what);
    CHECK (strcmp (s_str (msg, "event"), "order.status") == 0, "%s: event %s",
           what, s_str (msg, "event"));
    char got[200];
    s_states (json_object_get (msg, "order"), got, sizeof got);
    CHECK (strcmp (got, states) == 0, "%s: WebSocket lines %s, want %s", what,
           got, states);
    json_decref (msg);
}

//  burger (grill), calamari (fry), caesar (cold), steak-frites (grill)
static json_int_t
s_place (const char *key, tk_ws_t *ws)
{
    tk_response_t r;
    tk_post_order (s_gw, key,
                   "{\"table\":\"T4\",\"items\":["
                   "{\"item_id\":\"burger\",\"quantity\":1},"
                   "{\"item_id\":\"calamari\",\"quantity\":1},"
                   "{\"item_id\":\"caesar\",\"quantity\":2},"
                   "{\"item_id\":\"steak-frites\",\"quantity\":1}]}",
                   &r);
    CHECK (r.status == 201, "place: %d %s", r.status, r.body);
    json_int_t id = s_int (r.json, "id");
    tk_response_free (&r);
    if (ws) {
        json_t *msg = tk_ws_next (ws, 5000);
        CHECK (msg && strcmp (s_str (msg, "event"), "order.placed") == 0,
               "placed event");
        json_decref (msg);
    }
    return id;
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "lines");
    s_gw = tk_port ();
    s_edge = tk_port ();
    tk_endpoints (s_intake, s_events, s_sync);
    pid_t writer = s_start_nodes ();
    tk_ws_t *ws = tk_ws_open (s_edge, "/ws");
    CHECK (ws, "station screen's WebSocket");
    json_t *snap = tk_ws_next (ws, 5000);
    CHECK (snap && strcmp (s_str (snap, "type"), "snapshot") == 0, "snapshot");
    json_decref (snap);

    json_int_t id = s_place ("lines-1", ws);
    json_decref (s_check_order (id, "new,new,new,new", "placed", "placed"));
    tk_response_t r;

    //  Grill bumps: only its lines are done, the order is preparing
    s_post (id, "stations/grill/bump", "g-bump-1", "{\"version\":1}", NULL, &r);
    CHECK (r.status == 200 && s_int (r.json, "version") == 2,
           "grill bump: %d %s", r.status, r.body);
    tk_response_free (&r);
    s_check_event (ws, "done,new,new,done", "grill bump");
    json_decref (
        s_check_order (id, "done,new,new,done", "preparing", "grill bump"));
    //  The same request again: the same answer, not a second bump
    s_post (id, "stations/grill/bump", "g-bump-1", "{\"version\":1}", NULL, &r);
    char replayed[16];
    CHECK (
        r.status == 200
            && tk_header (&r, "Idempotent-Replayed", replayed, sizeof replayed),
        "replayed bump: %d", r.status);
    tk_response_free (&r);

    //  Bad input changes nothing
    s_post (id, "stations/grill/bump", "g-bump-2", "{}", NULL, &r);
    s_expect (&r, 409, "station", "grill bumped twice");
    s_post (id, "stations/fry/bump", "f-stale", "{\"version\":1}", NULL, &r);
    s_expect (&r, 409, "version", "stale version");
    s_post (id, "stations/pastry/bump", "p-bump", "{}", NULL, &r);
    s_expect (&r, 404, "station", "a station without lines");
    s_post (id, "stations/no%20such/bump", "p-bump2", "{}", NULL, &r);
    s_expect (&r, 404, "station", "not a station id");
    s_post (id, "lines/9/bump", "l9-bump", "{}", NULL, &r);
    s_expect (&r, 404, "line_id", "no line 9");
    s_post (id, "lines/2/void", "l2-void-0", "{}", NULL, &r);
    s_expect (&r, 400, "reason", "a void without a reason");
    s_post (id, "lines/2/void", "l2-void-1", "{\"reason\":\"\"}", NULL, &r);
    s_expect (&r, 400, "reason", "an empty reason");
    char body[300];
    snprintf (body, sizeof body, "{\"reason\":\"%0121d\"}", 0);
    s_post (id, "lines/2/void", "l2-void-2", body, NULL, &r);
    s_expect (&r, 400, "reason", "a reason of 121 bytes");
    s_post (id, "lines/2/bump", "l2-bump-x", "{\"reason\":\"x\"}", NULL, &r);
    s_expect (&r, 400, "reason", "a bump with a reason");
    s_post (id, "lines/2/unbump", "l2-unbump-x", "{\"to\":\"done\"}", NULL, &r);
    s_expect (&r, 400, "to", "a recall to done");
    //  A recall never moves a line forward: fry's line is new
    s_post (id, "lines/2/unbump", "l2-unbump-new", "{}", NULL, &r);
    s_expect (&r, 409, "line_id", "a new line recalled to cooking");
    s_post (id, "stations/fry/unbump", "f-unbump-new", "{}", NULL, &r);
    s_expect (&r, 409, "station", "a new station recalled to cooking");
    //  A key already used, for another line or station (the same body):
    //  409, as for any key reused with another request
    s_post (id, "stations/fry/bump", "g-bump-1", "{\"version\":1}", NULL, &r);
    s_expect (&r, 409, NULL, "g-bump-1 reused for fry");
    s_post (id, "lines/2/bump", "g-bump-1", "{\"version\":1}", NULL, &r);
    s_expect (&r, 409, NULL, "g-bump-1 reused for line 2");
    s_post (999, "lines/1/bump", "o999", "{}", NULL, &r);
    s_expect (&r, 404, "order_id", "no order 999");
    char *pad = tk_mint (tk_kit_secret_file (), "--table", "T4");
    char auth[600];
    snprintf (auth, sizeof auth, "Authorization: Bearer %s\r\n", pad);
    s_post (id, "lines/2/bump", "pad-bump", "{}", auth, &r);
    s_expect (&r, 403, NULL, "a pad bumping");
    free (pad);
    json_t *order =
        s_check_order (id, "done,new,new,done", "preparing", "after bad input");
    CHECK (s_int (order, "version") == 2, "version after bad input: %lld",
           (long long) s_int (order, "version"));
    json_int_t subtotal = s_int (order, "subtotal_cents");
    json_decref (order);

    //  Ready only when every line is done
    s_post (id, "lines/2/bump", "l2-bump", "{\"version\":2}", NULL, &r);
    s_expect (&r, 200, NULL, "fry line bump");
    s_check_event (ws, "done,done,new,done", "fry line bump");
    json_decref (
        s_check_order (id, "done,done,new,done", "preparing", "fry bumped"));
    s_post (id, "stations/cold/bump", "c-bump", "{}", NULL, &r);
    s_expect (&r, 200, NULL, "cold bump");
    s_check_event (ws, "done,done,done,done", "cold bump");
    json_decref (
        s_check_order (id, "done,done,done,done", "ready", "all done"));

    //  A recall (un-bump) brings grill's lines back, and the order
    s_post (id, "stations/grill/unbump", "g-unbump", "{}", NULL, &r);
    s_expect (&r, 200, NULL, "grill recall");
    s_check_event (ws, "cooking,done,done,cooking", "grill recall");
    order = s_check_order (id, "cooking,done,done,cooking", "preparing",
                           "recalled");
    CHECK (!json_object_get (json_object_get (order, "status_times"), "ready"),
           "a recalled order is not ready: %s",
           json_dumps (json_object_get (order, "status_times"), 0));
    json_decref (order);
    s_post (id, "lines/1/unbump", "l1-unbump", "{\"to\":\"new\"}", NULL, &r);
    s_expect (&r, 200, NULL, "line recall to new");
    s_check_event (ws, "new,done,done,cooking", "line recall to new");

    //  A void: its reason kept, the line off the bill, final
    s_post (id, "lines/4/void", "l4-void",
            "{\"reason\":\"guest changed mind\"}", NULL, &r);
    s_expect (&r, 200, NULL, "void line 4");
    s_check_event (ws, "new,done,done,voided", "void");
    order = s_check_order (id, "new,done,done,voided", "preparing", "voided");
    json_t *line4 = json_array_get (json_object_get (order, "items"), 3);
    CHECK (strcmp (s_str (line4, "void_reason"), "guest changed mind") == 0,
           "void reason: %s", s_str (line4, "void_reason"));
    CHECK (s_int (order, "subtotal_cents")
               == subtotal - s_int (line4, "line_cents"),
           "subtotal %lld after the void, from %lld",
           (long long) s_int (order, "subtotal_cents"), (long long) subtotal);
    json_decref (order);
    s_post (id, "lines/4/bump", "l4-bump", "{}", NULL, &r);
    s_expect (&r, 409, "line_id", "a voided line bumped");
    //  The last live line done: ready, the void aside
    s_post (id, "lines/1/bump", "l1-bump", "{}", NULL, &r);
    s_expect (&r, 200, NULL, "last line bump");
    s_check_event (ws, "done,done,done,voided", "last line");
    json_decref (
        s_check_order (id, "done,done,done,voided", "ready", "ready again"));

    //  Order-level routes apply to every line
    json_int_t id2 = s_place ("lines-2", ws);
    char path[64];
    snprintf (path, sizeof path, "/api/v1/orders/%lld/status", (long long) id2);
    const char *moves[] = { "accepted", "preparing", "ready" };
    const char *states[] = { "new,new,new,new",
                             "cooking,cooking,cooking,"
                             "cooking",
                             "done,done,done,done" };
    for (int i = 0; i < 3; i++) {
        char key[32], headers[200];
        snprintf (key, sizeof key, "o2-%s", moves[i]);
        snprintf (body, sizeof body, "{\"status\":\"%s\"}", moves[i]);
        snprintf (headers, sizeof headers,
                  "Content-Type: application/json\r\nIdempotency-Key: %s\r\n",
                  key);
        tk_http (s_gw, "POST", path, headers, body, &r);
        s_expect (&r, 200, NULL, moves[i]);
        s_check_event (ws, states[i], moves[i]);
        json_decref (s_check_order (id2, states[i], moves[i], moves[i]));
    }

    //  Every line voided: the order is cancelled
    json_int_t id3 = s_place ("lines-3", ws);
    for (int line = 1; line <= 4; line++) {
        char key[32], action[32];
        snprintf (key, sizeof key, "o3-void-%d", line);
        snprintf (action, sizeof action, "lines/%d/void", line);
        s_post (id3, action, key, "{\"reason\":\"table left\"}", NULL, &r);
        s_expect (&r, 200, NULL, "void every line");
    }
    order = s_check_order (id3, "voided,voided,voided,voided", "cancelled",
                           "all voided");
    CHECK (s_int (order, "subtotal_cents") == 0
               && s_int (order, "tax_cents") == 0
               && s_int (order, "total_cents") == 0,
           "all voided: totals %lld + %lld",
           (long long) s_int (order, "subtotal_cents"),
           (long long) s_int (order, "tax_cents"));
    json_decref (order);
    //  ... as the order route's cancel leaves them
    json_int_t id4 =
        s_place ("lines-4", NULL);   //  its event: queued, counted below
    snprintf (path, sizeof path, "/api/v1/orders/%lld/status", (long long) id4);
    tk_http (s_gw, "POST", path,
             "Content-Type: application/json\r\nIdempotency-Key: o4-cancel\r\n",
             "{\"status\":\"cancelled\"}", &r);
    s_expect (&r, 200, NULL, "cancel by the order route");
    order = s_check_order (id4, "voided,voided,voided,voided", "cancelled",
                           "cancelled");
    CHECK (s_int (order, "total_cents") == 0 && s_int (order, "tax_cents") == 0,
           "cancelled: total %lld", (long long) s_int (order, "total_cents"));
    json_decref (order);

    //  kill -9 the writer: every line's state is still there
    CHECK (tk_kill (writer, SIGKILL) == 128 + SIGKILL, "writer killed");
    CHECK (tk_wait_http (s_gw, "/healthz", 503, 5000),
           "gateway notices the writer is gone");
    writer = s_writer ();
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "writer back");
    order = s_check_order (id, "done,done,done,voided", "ready", "restarted");
    line4 = json_array_get (json_object_get (order, "items"), 3);
    CHECK (strcmp (s_str (line4, "void_reason"), "guest changed mind") == 0,
           "void reason after restart: %s", s_str (line4, "void_reason"));
    json_decref (order);
    json_decref (
        s_check_order (id2, "done,done,done,done", "ready", "restarted"));
    //  ...and the rules still apply to them
    s_post (id, "stations/fry/unbump", "f-unbump", "{}", NULL, &r);
    s_expect (&r, 200, NULL, "recall after restart");
    json_decref (s_check_order (id, "done,cooking,done,voided", "preparing",
                                "recall after restart"));
    //  The screen saw every change (read, so that none is left queued)
    int left = 0;
    for (json_t *msg; (msg = tk_ws_next (ws, 500)); left++)
        json_decref (msg);
    CHECK (left >= 6,
           "%d more events on the WebSocket, want the 4 voids, "
           "the cancel and the recall at least",
           left);
    tk_ws_close (&ws);
    printf ("lines: station bump, recall, void, order-level moves and a "
            "restart, as the writer stored them\n");
    return tk_done ();
}
