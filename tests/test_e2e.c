/*  test_e2e — writer, gateway and edge as separate processes on loopback
    tcp, driven through HTTP and WebSocket as a pad and a kitchen would. */

#include <stdio.h>
#include <string.h>
#include "testkit.h"

#define CHECK TK_CHECK

static char s_intake[64], s_events[64], s_sync[64];

static void
s_start_nodes (int gw_port, int edge_port)
{
    char data[600], menu[600], gw[16], edge[16], web[600];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    snprintf (gw, sizeof gw, "%d", gw_port);
    snprintf (edge, sizeof edge, "%d", edge_port);
    tk_spawn ("writer", "writer", "--data", data, "--menu", menu, "--intake",
              s_intake, "--events", s_events, "--sync", s_sync, NULL);
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", gw, "--name", "patio", NULL);
    tk_spawn ("edge", "edge", "--events", s_events, "--sync", s_sync,
              "--http-port", edge, "--web", web, NULL);
    CHECK (tk_wait_http (gw_port, "/healthz", 200, 15000),
           "gateway not healthy");
    CHECK (tk_wait_http (edge_port, "/healthz", 200, 15000),
           "edge not healthy");
}

//  Price of a menu item, from the served menu document.
static json_int_t
s_price (json_t *menu, const char *id)
{
    size_t i, j;
    json_t *category, *item;
    json_array_foreach (json_object_get (menu, "categories"), i, category)
        json_array_foreach (json_object_get (category, "items"), j, item) if (
            strcmp (json_string_value (json_object_get (item, "id")), id)
            == 0) return json_integer_value (json_object_get (item,
                                                              "price_cents"));
    return -1;
}

static json_int_t
s_int (json_t *obj, const char *key)
{
    return json_integer_value (json_object_get (obj, key));
}

static const char *
s_str (json_t *obj, const char *key)
{
    const char *s = json_string_value (json_object_get (obj, key));
    return s ? s : "";
}

//  Expect the next WebSocket message to be the event with seq and order id.
static void
s_expect_event (tk_ws_t *ws, json_int_t seq, json_int_t id)
{
    json_t *msg = tk_ws_next (ws, 5000);
    CHECK (msg, "no event %lld on the WebSocket", (long long) seq);
    CHECK (strcmp (s_str (msg, "type"), "event") == 0, "type %s",
           s_str (msg, "type"));
    CHECK (s_int (msg, "seq") == seq, "event seq %lld, want %lld",
           (long long) s_int (msg, "seq"), (long long) seq);
    CHECK (s_int (json_object_get (msg, "order"), "id") == id, "order id");
    CHECK (strcmp (s_str (msg, "event"), "order.placed") == 0, "event name");
    json_decref (msg);
}

//  Expect a 4xx with an error body naming code and field.
static void
s_expect_error (tk_response_t *resp, int status, const char *code,
                const char *field)
{
    json_t *error = resp->json ? json_object_get (resp->json, "error") : NULL;
    CHECK (resp->status == status, "status %d, want %d: %s", resp->status,
           status, resp->body ? resp->body : "");
    CHECK (error && strcmp (s_str (error, "code"), code) == 0,
           "error code in %s, want %s", resp->body, code);
    CHECK (strlen (s_str (error, "message")) > 0, "no message in %s",
           resp->body);
    if (field)
        CHECK (strcmp (s_str (error, "field"), field) == 0,
               "field in %s, want %s", resp->body, field);
    tk_response_free (resp);
}

static void
s_check_bad_input (int gw)
{
    tk_response_t r;
    tk_post_order (gw, "bad-1", "{\"table\": \"T1\", \"items\": [", &r);
    s_expect_error (&r, 400, "malformed", NULL);
    tk_post_order (
        gw, "bad-2",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"unicorn\",\"quantity\":1}]}",
        &r);
    s_expect_error (&r, 400, "unknown_item", "items[0].item_id");
    tk_post_order (
        gw, "bad-3",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"burger\",\"quantity\":0}]}",
        &r);
    s_expect_error (&r, 400, "invalid_field", "items[0].quantity");
    tk_post_order (
        gw, "bad-4",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"burger\",\"quantiy\":1}]}",
        &r);
    s_expect_error (&r, 400, "invalid_field", "items[0].quantiy");
    tk_post_order (gw, "bad-5",
                   "{\"items\":[{\"item_id\":\"burger\",\"quantity\":1}]}", &r);
    s_expect_error (&r, 400, "invalid_field", "table");
    tk_http (
        gw, "POST", "/api/v1/orders", "Content-Type: application/json\r\n",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"burger\",\"quantity\":1}]}",
        &r);
    s_expect_error (&r, 400, "invalid_field", "Idempotency-Key");
    tk_http (gw, "POST", "/api/v1/orders",
             "Content-Type: text/plain\r\nIdempotency-Key: bad-6\r\n", "hello",
             &r);
    s_expect_error (&r, 415, "unsupported_media_type", NULL);
    char *big = malloc (70000);
    memset (big, ' ', 69999);
    big[69999] = '\0';
    big[0] = '{';
    big[69998] = '}';
    tk_post_order (gw, "bad-7", big, &r);
    free (big);
    s_expect_error (&r, 413, "too_big", NULL);
    tk_http (gw, "DELETE", "/api/v1/orders", NULL, NULL, &r);
    char allow[64];
    CHECK (tk_header (&r, "Allow", allow, sizeof allow)
               && strcmp (allow, "GET, POST") == 0,
           "Allow header: %s", r.headers);
    s_expect_error (&r, 405, "method_not_allowed", NULL);
    tk_http (gw, "GET", "/api/v1/nothing-here", NULL, NULL, &r);
    s_expect_error (&r, 404, "not_found", NULL);
    tk_http (gw, "GET", "/api/v1/orders?colour=red", NULL, NULL, &r);
    s_expect_error (&r, 400, "invalid_field", "colour");
    tk_http (gw, "GET", "/api/v1/orders?limit=0", NULL, NULL, &r);
    s_expect_error (&r, 400, "invalid_field", "limit");
    tk_http (gw, "GET", "/api/v1/orders?status=eaten", NULL, NULL, &r);
    s_expect_error (&r, 400, "invalid_field", "status");
    tk_http (gw, "GET", "/api/v1/orders/999999", NULL, NULL, &r);
    s_expect_error (&r, 404, "not_found", NULL);
}

static json_t *
s_get_json (int port, const char *path, int want)
{
    tk_response_t r;
    tk_http (port, "GET", path, NULL, NULL, &r);
    CHECK (r.status == want && r.json, "GET %s: %d %s", path, r.status,
           r.body ? r.body : "");
    json_t *json = json_incref (r.json);
    tk_response_free (&r);
    return json;
}

//  Walk the list with limit=1 pages; the ids must come newest first, each
//  once, and the last page must have no next cursor.
static void
s_check_pagination (int gw, json_int_t *ids, int count)
{
    char path[128] = "/api/v1/orders?limit=1";
    for (int i = count - 1; i >= 0; i--) {
        json_t *page = s_get_json (gw, path, 200);
        json_t *orders = json_object_get (page, "orders");
        CHECK (json_array_size (orders) == 1, "page size");
        CHECK (s_int (json_array_get (orders, 0), "id") == ids[i],
               "page %d has order %lld, want %lld", count - 1 - i,
               (long long) s_int (json_array_get (orders, 0), "id"),
               (long long) ids[i]);
        json_t *next = json_object_get (page, "next_cursor");
        CHECK (i == 0 ? json_is_null (next) : json_is_string (next),
               "next_cursor on page %d", count - 1 - i);
        if (json_is_string (next))
            snprintf (path, sizeof path, "/api/v1/orders?limit=1&cursor=%s",
                      json_string_value (next));
        json_decref (page);
    }
}

//  What the cases share: the nodes' ports, the menu's prices, the
//  kitchens and the orders placed so far
static int s_gw, s_edge;
static json_int_t s_burger, s_fries;
static tk_ws_t *s_kitchen, *s_late, *s_resumed, *s_after;
static json_int_t s_seq0, s_id1, s_id2, s_id3;
static const char s_body1[] =
    "{\"table\":\"T12\",\"note\":\"birthday\",\"items\":["
    "{\"item_id\":\"burger\",\"quantity\":2,\"note\":\"no onions\"},"
    "{\"item_id\":\"fries\",\"quantity\":1}]}";

TK_CASE (start)
{
    s_gw = tk_port ();
    s_edge = tk_port ();
    tk_endpoints (s_intake, s_events, s_sync);
    s_start_nodes (s_gw, s_edge);
}

TK_CASE (menu)
{
    json_t *menu = s_get_json (s_gw, "/api/v1/menu", 200);
    s_burger = s_price (menu, "burger");
    s_fries = s_price (menu, "fries");
    CHECK (s_burger > 0 && s_fries > 0, "menu has burger and fries");
    json_decref (menu);
}

//  A kitchen connects first: an empty snapshot
TK_CASE (empty_snapshot)
{
    s_kitchen = tk_ws_open (s_edge, "/ws");
    CHECK (s_kitchen, "kitchen WebSocket");
    json_t *snap = tk_ws_next (s_kitchen, 5000);
    CHECK (snap && strcmp (s_str (snap, "type"), "snapshot") == 0,
           "snapshot first");
    s_seq0 = s_int (snap, "seq");
    CHECK (json_array_size (json_object_get (snap, "orders")) == 0,
           "no orders yet");
    json_decref (snap);
}

TK_CASE (place_orders)
{
    tk_response_t r;
    tk_post_order (s_gw, "pad-7-0001", s_body1, &r);
    CHECK (r.status == 201, "POST: %d %s", r.status, r.body);
    s_id1 = s_int (r.json, "id");
    CHECK (s_int (r.json, "total_cents") == 2 * s_burger + s_fries,
           "total %lld", (long long) s_int (r.json, "total_cents"));
    CHECK (s_int (r.json, "seq") == s_seq0 + 1, "seq of the first order");
    CHECK (strcmp (s_str (r.json, "status"), "placed") == 0, "status placed");
    char location[64], want[64];
    snprintf (want, sizeof want, "/api/v1/orders/%lld", (long long) s_id1);
    CHECK (tk_header (&r, "Location", location, sizeof location)
               && strcmp (location, want) == 0,
           "Location header");
    tk_response_free (&r);
    s_expect_event (s_kitchen, s_seq0 + 1, s_id1);

    tk_post_order (
        s_gw, "pad-3-0001",
        "{\"table\":\"T3\",\"items\":[{\"item_id\":\"cola\",\"quantity\":3}]}",
        &r);
    CHECK (r.status == 201, "second POST: %d %s", r.status, r.body);
    s_id2 = s_int (r.json, "id");
    tk_response_free (&r);
    s_expect_event (s_kitchen, s_seq0 + 2, s_id2);
}

//  Retry with the same key: the original result, and no new event
TK_CASE (idempotent_retry)
{
    tk_response_t r;
    tk_post_order (s_gw, "pad-7-0001", s_body1, &r);
    char replayed[16];
    CHECK (r.status == 201 && s_int (r.json, "id") == s_id1,
           "retry gives the original");
    CHECK (tk_header (&r, "Idempotent-Replayed", replayed, sizeof replayed),
           "retry is marked as replayed");
    tk_response_free (&r);
    tk_post_order (
        s_gw, "pad-7-0001",
        "{\"table\":\"T12\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        &r);
    s_expect_error (&r, 409, "conflict", NULL);

    tk_post_order (
        s_gw, "pad-12-0001",
        "{\"table\":\"T12\",\"items\":[{\"item_id\":\"salmon\",\"quantity\":1}]}",
        &r);
    s_id3 = s_int (r.json, "id");
    tk_response_free (&r);
    s_expect_event (s_kitchen, s_seq0 + 3,
                    s_id3);   //  seq + 3: nothing for the retries
}

TK_CASE (bad_input)
{
    s_check_bad_input (s_gw);
}

TK_CASE (read_back)
{
    char want[64];
    snprintf (want, sizeof want, "/api/v1/orders/%lld", (long long) s_id1);
    json_t *order = s_get_json (s_gw, want, 200);
    CHECK (strcmp (s_str (order, "table"), "T12") == 0, "table read back");
    CHECK (json_array_size (json_object_get (order, "items")) == 2,
           "two lines");
    CHECK (strcmp (s_str (json_array_get (json_object_get (order, "items"), 0),
                          "note"),
                   "no onions")
               == 0,
           "line note read back");
    json_decref (order);
    json_int_t ids[] = { s_id1, s_id2, s_id3 };
    s_check_pagination (s_gw, ids, 3);
    json_t *list = s_get_json (s_gw, "/api/v1/orders?table=T12", 200);
    CHECK (json_array_size (json_object_get (list, "orders")) == 2,
           "T12 has 2 orders");
    json_decref (list);
}

//  A late joiner gets everything in its snapshot; a resuming client
//  gets just what it missed
TK_CASE (late_and_resumed)
{
    s_late = tk_ws_open (s_edge, "/ws");
    json_t *snap = tk_ws_next (s_late, 5000);
    CHECK (snap && s_int (snap, "seq") == s_seq0 + 3, "late snapshot seq");
    CHECK (json_array_size (json_object_get (snap, "orders")) == 3,
           "late snapshot orders");
    json_decref (snap);
    char path[64];
    snprintf (path, sizeof path, "/ws?resume_from=%lld",
              (long long) (s_seq0 + 1));
    s_resumed = tk_ws_open (s_edge, path);
    s_expect_event (s_resumed, s_seq0 + 2, s_id2);
    s_expect_event (s_resumed, s_seq0 + 3, s_id3);
}

//  after_seq, resume_from's new name, means the same: the last seq the
//  client has, so it gets the events after it (and both at once agree,
//  or are refused before the handshake)
TK_CASE (after_seq)
{
    char path[96];
    snprintf (path, sizeof path, "/ws?after_seq=%lld", (long long) s_seq0);
    s_after = tk_ws_open (s_edge, path);
    CHECK (s_after, "open %s", path);
    s_expect_event (s_after, s_seq0 + 1, s_id1);
    s_expect_event (s_after, s_seq0 + 2, s_id2);
    s_expect_event (s_after, s_seq0 + 3, s_id3);
    tk_ws_close (&s_after);
    snprintf (path, sizeof path, "/ws?after_seq=%lld&resume_from=%lld",
              (long long) (s_seq0 + 2), (long long) (s_seq0 + 2));
    s_after = tk_ws_open (s_edge, path);
    CHECK (s_after, "open %s", path);
    s_expect_event (s_after, s_seq0 + 3, s_id3);
    tk_ws_close (&s_after);
    //  The off-by-one the old name invited, made a clear error
    snprintf (path, sizeof path, "/ws?after_seq=%lld&resume_from=%lld",
              (long long) (s_seq0 + 1), (long long) (s_seq0 + 2));
    char upgrade[512];
    int len = snprintf (upgrade, sizeof upgrade,
                        "GET %s HTTP/1.1\r\nHost: x\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n",
                        path);
    tk_response_t r;
    tk_http_raw (s_edge, upgrade, (size_t) len, &r);
    s_expect_error (&r, 400, "invalid_field", "after_seq");
}

TK_CASE (pages_and_health)
{
    tk_response_t r;
    tk_http (s_edge, "GET", "/kitchen", NULL, NULL, &r);
    CHECK (r.status == 200 && strstr (r.body, "<html"), "kitchen page");
    tk_response_free (&r);
    tk_http (s_edge, "GET", "/", NULL, NULL, &r);
    CHECK (r.status == 302, "/ redirects: %d", r.status);
    tk_response_free (&r);
    json_t *health = s_get_json (s_gw, "/healthz", 200);
    CHECK (strcmp (s_str (health, "status"), "ok") == 0, "gateway health");
    json_decref (health);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (menu),
                                     TK_CASE_ENTRY (empty_snapshot),
                                     TK_CASE_ENTRY (place_orders),
                                     TK_CASE_ENTRY (idempotent_retry),
                                     TK_CASE_ENTRY (bad_input),
                                     TK_CASE_ENTRY (read_back),
                                     TK_CASE_ENTRY (late_and_resumed),
                                     TK_CASE_ENTRY (after_seq),
                                     TK_CASE_ENTRY (pages_and_health),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "e2e");
    tk_run_cases (s_cases);
    tk_ws_close (&s_kitchen);
    tk_ws_close (&s_late);
    tk_ws_close (&s_resumed);
    tk_ws_close (&s_after);
    return tk_done ();
}
