/*  test_domain — the restaurant rules through the real HTTP and WebSocket
    interfaces of `orderbus up`: prices with modifiers and tax, the order
    lifecycle and its versions, two pads sharing a cart and racing to
    order, an 86 refused by the writer, tokens and roles, the per-table
    rate limit.  */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK  TK_CHECK
#define TAX_BP 875

static int s_port;
static char s_secret[700];
static char *s_kitchen, *s_manager, *s_pad5, *s_pad6;
static int s_key;

//  A token from `orderbus token` (caller frees).
static char *
s_mint (const char *who, const char *ttl)
{
    char *out;
    bool staff = strcmp (who, "kitchen") == 0 || strcmp (who, "manager") == 0;
    int rc = tk_run (&out, "token", "--secret-file", s_secret,
                     staff ? "--staff" : "--table", who, "--ttl", ttl, NULL);
    CHECK (rc == 0, "orderbus token %s: %d %s", who, rc, out);
    //  stdout and stderr share the output: find the token itself
    char *token = strstr (out, "ob1.");
    CHECK (token, "no token in: %s", out);
    token = strndup (token, strcspn (token, "\n"));
    free (out);
    return token;
}

//  A request with token (may be NULL) and, for changes, a fresh key.
static void
s_call (const char *method, const char *path, const char *token,
        const char *body, tk_response_t *resp)
{
    char headers[1024] = "";
    if (token)
        snprintf (headers, sizeof headers, "Authorization: Bearer %s\r\n",
                  token);
    if (strcmp (method, "GET") != 0)
        snprintf (headers + strlen (headers), sizeof headers - strlen (headers),
                  "Idempotency-Key: domain-%d\r\n%s", ++s_key,
                  body ? "Content-Type: application/json\r\n" : "");
    tk_http (s_port, method, path, headers, body, resp);
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

static void
s_expect (tk_response_t *r, int status, const char *code)
{
    json_t *error = r->json ? json_object_get (r->json, "error") : NULL;
    CHECK (r->status == status, "status %d, want %d: %s", r->status, status,
           r->body ? r->body : "");
    if (code) {
        CHECK (error && strcmp (s_str (error, "code"), code) == 0,
               "code in %s, want %s", r->body, code);
        CHECK (strlen (s_str (error, "message")) > 0, "a reason in %s",
               r->body);
    }
}

//  Price of item (and of one of its modifiers, when mod is not NULL).
static json_int_t
s_menu_price (json_t *menu, const char *id, const char *mod)
{
    size_t i, j, k;
    json_t *category, *item, *option;
    json_array_foreach (json_object_get (menu, "categories"), i, category)
        json_array_foreach (json_object_get (category, "items"), j, item)
    {
        if (strcmp (s_str (item, "id"), id) != 0)
            continue;
        if (!mod)
            return s_int (item, "price_cents");
        json_array_foreach (json_object_get (item, "modifiers"), k,
                            option) if (strcmp (s_str (option, "id"), mod)
                                        == 0) return s_int (option,
                                                            "price_cents");
    }
    return -1000000;
}

static void
s_check_pricing (void)
{
    tk_response_t r;
    s_call ("GET", "/api/v1/menu", s_pad5, NULL, &r);
    CHECK (r.status == 200, "menu: %d", r.status);
    json_int_t burger = s_menu_price (r.json, "burger", NULL);
    json_int_t cheese = s_menu_price (r.json, "burger", "cheese");
    json_int_t bacon = s_menu_price (r.json, "burger", "bacon");
    json_int_t fries = s_menu_price (r.json, "fries", NULL);
    json_int_t large = s_menu_price (r.json, "fries", "large");
    CHECK (burger > 0 && cheese > 0 && bacon > 0 && fries > 0 && large > 0,
           "demo menu has burger+cheese+bacon, fries+large");
    char etag[64];
    CHECK (tk_header (&r, "ETag", etag, sizeof etag), "menu has an ETag");
    tk_response_free (&r);
    char headers[700];
    snprintf (headers, sizeof headers,
              "Authorization: Bearer %s\r\n"
              "If-None-Match: %s\r\n",
              s_pad5, etag);
    tk_http (s_port, "GET", "/api/v1/menu", headers, NULL, &r);
    CHECK (r.status == 304, "unchanged menu: 304, got %d", r.status);
    tk_response_free (&r);

    s_call (
        "POST", "/api/v1/orders", s_pad5,
        "{\"table\":\"T5\",\"items\":["
        "{\"item_id\":\"burger\",\"quantity\":2,\"modifiers\":[\"cheese\",\"bacon\"]},"
        "{\"item_id\":\"fries\",\"quantity\":3,\"modifiers\":[\"large\"]}]}",
        &r);
    CHECK (r.status == 201, "priced order: %d %s", r.status, r.body);
    json_int_t subtotal = 2 * (burger + cheese + bacon) + 3 * (fries + large);
    json_int_t tax = (subtotal * TAX_BP + 5000) / 10000;
    CHECK (s_int (r.json, "subtotal_cents") == subtotal,
           "subtotal %lld, want %lld",
           (long long) s_int (r.json, "subtotal_cents"), (long long) subtotal);
    CHECK (s_int (r.json, "tax_cents") == tax, "tax %lld, want %lld",
           (long long) s_int (r.json, "tax_cents"), (long long) tax);
    CHECK (s_int (r.json, "total_cents") == subtotal + tax, "total");
    json_t *line = json_array_get (json_object_get (r.json, "items"), 0);
    CHECK (s_int (line, "unit_cents") == burger + cheese + bacon, "unit price");
    CHECK (json_array_size (json_object_get (line, "modifiers")) == 2,
           "modifiers kept");
    tk_response_free (&r);

    s_call (
        "POST", "/api/v1/orders", s_pad5,
        "{\"table\":\"T5\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1,"
        "\"modifiers\":[\"bacon\"]}]}",
        &r);
    s_expect (&r, 400, "invalid_field");
    CHECK (strcmp (s_str (json_object_get (r.json, "error"), "field"),
                   "items[0].modifiers[0]")
               == 0,
           "bad modifier named: %s", r.body);
    tk_response_free (&r);
}

//  Place an order for T6 with the kitchen token; returns its id.
static json_int_t
s_new_order (void)
{
    tk_response_t r;
    s_call (
        "POST", "/api/v1/orders", s_kitchen,
        "{\"table\":\"T6\",\"items\":[{\"item_id\":\"salmon\",\"quantity\":1}]}",
        &r);
    CHECK (r.status == 201, "order: %d %s", r.status, r.body);
    json_int_t id = s_int (r.json, "id");
    tk_response_free (&r);
    return id;
}

//  Move order id to status with version (0: none); expect status code.
static void
s_move (json_int_t id, const char *status, int version, int want,
        const char *code)
{
    char path[64], body[96];
    snprintf (path, sizeof path, "/api/v1/orders/%lld/status", (long long) id);
    if (version)
        snprintf (body, sizeof body, "{\"status\":\"%s\",\"version\":%d}",
                  status, version);
    else
        snprintf (body, sizeof body, "{\"status\":\"%s\"}", status);
    tk_response_t r;
    s_call ("POST", path, s_kitchen, body, &r);
    s_expect (&r, want, code);
    if (want == 200)
        CHECK (strcmp (s_str (r.json, "status"), status) == 0, "now %s",
               status);
    tk_response_free (&r);
}

static void
s_check_lifecycle (void)
{
    json_int_t id = s_new_order ();
    s_move (id, "ready", 0, 409, "conflict");      //  skipping a step
    s_move (id, "accepted", 2, 409, "conflict");   //  stale version
    s_move (id, "accepted", 1, 200, NULL);
    s_move (id, "preparing", 2, 200, NULL);
    s_move (id, "cancelled", 0, 409, "conflict");   //  too late to cancel
    s_move (id, "ready", 0, 200, NULL);
    s_move (id, "served", 4, 200, NULL);
    s_move (id, "placed", 0, 409, "conflict");   //  never backwards
    s_move (id, "served", 0, 409, "conflict");
    char path[64];
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) id);
    tk_response_t r;
    s_call ("GET", path, s_kitchen, NULL, &r);
    json_t *times = json_object_get (r.json, "status_times");
    CHECK (s_int (r.json, "version") == 5, "version 5 after four moves");
    CHECK (json_object_size (times) == 5
               && s_int (times, "served") >= s_int (times, "placed"),
           "five ticket times: %s", r.body);
    tk_response_free (&r);

    json_int_t other = s_new_order ();
    s_move (other, "cancelled", 0, 200, NULL);   //  placed -> cancelled
    s_move (999999, "accepted", 0, 404, "not_found");
    s_move (other, "eaten", 0, 400, "invalid_field");
    snprintf (path, sizeof path, "/api/v1/orders/%lld/status",
              (long long) other);
    s_call ("POST", path, s_pad6, "{\"status\":\"accepted\"}", &r);
    s_expect (&r, 403, "forbidden");   //  pads cannot
    tk_response_free (&r);
}

//  Next message of type "event" on ws, skipping others; NULL on timeout.
static json_t *
s_next_event (tk_ws_t *ws)
{
    json_t *msg;
    while ((msg = tk_ws_next (ws, 3000))) {
        if (strcmp (s_str (msg, "type"), "event") == 0)
            return msg;
        json_decref (msg);
    }
    return NULL;
}

static tk_ws_t *
s_watch (const char *token)
{
    char path[600];
    snprintf (path, sizeof path, "/ws?token=%s", token);
    tk_ws_t *ws = tk_ws_open (s_port, path);
    CHECK (ws, "WebSocket with token");
    json_t *snap = tk_ws_next (ws, 5000);
    CHECK (snap && strcmp (s_str (snap, "type"), "snapshot") == 0, "snapshot");
    json_decref (snap);
    return ws;
}

typedef struct {
    const char *token;
    int status;
} s_racer_t;

static void *
s_race (void *arg)
{
    s_racer_t *racer = (s_racer_t *) arg;
    tk_response_t r;
    s_call ("POST", "/api/v1/tables/T7/cart/order", racer->token, "{}", &r);
    racer->status = r.status;
    tk_response_free (&r);
    return NULL;
}

static void
s_check_cart (void)
{
    char *pad7a = s_mint ("T7", "1h"), *pad7b = s_mint ("T7", "1h");
    tk_ws_t *other_pad = s_watch (pad7b), *kitchen = s_watch (s_kitchen);
    tk_response_t r;
    s_call (
        "POST", "/api/v1/tables/T7/cart/items", pad7a,
        "{\"item_id\":\"burger\",\"quantity\":1,\"modifiers\":[\"cheese\"]}",
        &r);
    CHECK (r.status == 200 && s_int (r.json, "version") == 1, "cart add: %d %s",
           r.status, r.body);
    json_int_t line = s_int (
        json_array_get (json_object_get (r.json, "items"), 0), "line_id");
    tk_response_free (&r);
    json_t *event = s_next_event (other_pad);
    CHECK (event && strcmp (s_str (event, "event"), "cart.updated") == 0,
           "the other pad at the table sees the cart change");
    json_decref (event);
    s_call ("POST", "/api/v1/tables/T7/cart/items", pad7b,
            "{\"item_id\":\"cola\",\"quantity\":2}", &r);
    tk_response_free (&r);
    char path[96];
    snprintf (path, sizeof path, "/api/v1/tables/T7/cart/items/%lld",
              (long long) line);
    s_call ("PATCH", path, pad7b, "{\"quantity\":3}", &r);
    CHECK (r.status == 200 && s_int (r.json, "version") == 3, "quantity: %s",
           r.body);
    tk_response_free (&r);
    s_call ("PATCH", "/api/v1/tables/T7/cart/items/99", pad7b,
            "{\"quantity\":1}", &r);
    s_expect (&r, 404, "not_found");
    tk_response_free (&r);
    s_call ("GET", "/api/v1/tables/T6/cart", pad7a, NULL, &r);
    s_expect (&r, 403, "forbidden");   //  not its table
    tk_response_free (&r);

    //  Two pads press "order" at once: one order, the cart emptied
    s_racer_t racers[2] = { { pad7a, 0 }, { pad7b, 0 } };
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create (&threads[i], NULL, s_race, &racers[i]);
    for (int i = 0; i < 2; i++)
        pthread_join (threads[i], NULL);
    CHECK ((racers[0].status == 201) + (racers[1].status == 201) == 1,
           "exactly one order from the race: %d and %d", racers[0].status,
           racers[1].status);
    CHECK (racers[0].status == 409 || racers[1].status == 409,
           "the other: 409");
    s_call ("GET", "/api/v1/tables/T7", pad7a, NULL, &r);
    json_t *orders = json_object_get (r.json, "orders");
    CHECK (json_array_size (orders) == 1, "one open order at T7: %s", r.body);
    json_t *items = json_object_get (json_array_get (orders, 0), "items");
    CHECK (json_array_size (items) == 2
               && s_int (json_array_get (items, 0), "quantity") == 3,
           "the order has the cart's lines");
    CHECK (json_array_size (
               json_object_get (json_object_get (r.json, "cart"), "items"))
               == 0,
           "the cart is empty");
    tk_response_free (&r);

    //  The kitchen saw the order and none of the cart traffic
    event = s_next_event (kitchen);
    CHECK (
        event && strcmp (s_str (event, "event"), "order.placed") == 0
            && strcmp (s_str (json_object_get (event, "order"), "table"), "T7")
                   == 0,
        "kitchen's first event is T7's order, not a cart change");
    json_decref (event);
    tk_ws_close (&other_pad);
    tk_ws_close (&kitchen);
    free (pad7a);
    free (pad7b);
}

//  86 fries: pads see it live; the writer refuses the next order for them
//  even though the gateway's copy of the menu (fetched a moment ago) still
//  says they are available.
static void
s_check_86 (void)
{
    tk_ws_t *pad = s_watch (s_pad6);
    tk_response_t r;
    s_call ("GET", "/api/v1/menu", s_pad6, NULL,
            &r);   //  warm the gateway's copy
    tk_response_free (&r);
    s_call ("POST", "/api/v1/menu/items/fries/availability", s_pad6,
            "{\"available\":false}", &r);
    s_expect (&r, 403, "forbidden");
    tk_response_free (&r);
    s_call ("POST", "/api/v1/menu/items/fries/availability", s_kitchen,
            "{\"available\":false}", &r);
    CHECK (r.status == 200, "86 fries: %d %s", r.status, r.body);
    tk_response_free (&r);
    json_t *event = s_next_event (pad);
    json_t *item = event ? json_object_get (event, "item") : NULL;
    CHECK (item && strcmp (s_str (item, "id"), "fries") == 0
               && json_is_false (json_object_get (item, "available")),
           "the pad sees fries go");
    json_decref (event);
    s_call (
        "POST", "/api/v1/orders", s_pad6,
        "{\"table\":\"T6\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        &r);
    s_expect (&r, 400, "item_unavailable");
    tk_response_free (&r);
    s_call ("POST", "/api/v1/menu/items/fries/availability", s_manager,
            "{\"available\":true}", &r);
    tk_response_free (&r);
    s_call (
        "POST", "/api/v1/orders", s_pad6,
        "{\"table\":\"T6\",\"items\":[{\"item_id\":\"fries\",\"quantity\":1}]}",
        &r);
    CHECK (r.status == 201, "fries are back: %d", r.status);
    tk_response_free (&r);
    tk_ws_close (&pad);
}

static void
s_check_tokens (void)
{
    tk_response_t r;
    s_call ("GET", "/api/v1/menu", NULL, NULL, &r);
    s_expect (&r, 401, "unauthorized");
    tk_response_free (&r);
    char *tampered = strdup (s_pad5);
    size_t n = strlen (tampered);
    tampered[n - 2] = tampered[n - 2] == 'A' ? 'B' : 'A';
    s_call ("GET", "/api/v1/menu", tampered, NULL, &r);
    s_expect (&r, 401, "unauthorized");
    tk_response_free (&r);
    free (tampered);
    char *brief = s_mint ("T5", "1s");
    usleep (1200 * 1000);
    s_call ("GET", "/api/v1/menu", brief, NULL, &r);
    s_expect (&r, 401, "token_expired");
    tk_response_free (&r);
    free (brief);
    s_call (
        "POST", "/api/v1/orders", s_pad5,
        "{\"table\":\"T6\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
        &r);
    s_expect (&r, 403, "forbidden");   //  another table
    tk_response_free (&r);
    s_call ("GET", "/api/v1/orders", s_pad5, NULL, &r);
    s_expect (&r, 403, "forbidden");   //  all tables
    tk_response_free (&r);
    s_call ("GET", "/api/v1/orders?table=T5", s_pad5, NULL, &r);
    CHECK (r.status == 200, "a pad lists its own table: %d", r.status);
    tk_response_free (&r);
    s_call ("GET", "/api/v1/stats", s_pad5, NULL, &r);
    s_expect (&r, 403, "forbidden");
    tk_response_free (&r);
    char path[600];
    snprintf (path, sizeof path, "/ws?token=%s&table=T6", s_pad5);
    tk_ws_t *ws = tk_ws_open (s_port, path);
    CHECK (!ws, "a pad cannot watch another table");
    tk_ws_close (&ws);
}

//  limits: burst 5 at 2 per second.  T9 is fresh, so its sixth order in a
//  row is refused, with a Retry-After.
static void
s_check_rate (void)
{
    char *pad9 = s_mint ("T9", "1h");
    tk_response_t r;
    int placed = 0, limited = 0;
    for (int i = 0; i < 8; i++) {
        s_call (
            "POST", "/api/v1/orders", pad9,
            "{\"table\":\"T9\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
            &r);
        placed += r.status == 201;
        if (r.status == 429) {
            char retry[16];
            limited++;
            CHECK (tk_header (&r, "Retry-After", retry, sizeof retry)
                       && atoi (retry) >= 1,
                   "429 has Retry-After");
            s_expect (&r, 429, "rate_limited");
        }
        tk_response_free (&r);
    }
    CHECK (placed >= 5 && placed <= 6 && limited == 8 - placed,
           "burst of 5 then 429: placed %d, limited %d", placed, limited);
    free (pad9);
}

//  Two pads of different tables send orders under one key at once: one is
//  placed, the other is a 409, and neither gets the other's order.
typedef struct {
    const char *token, *table;
    int status;
    char got_table[40];
} s_twin_t;

static int s_twin_round;   //  each round a fresh shared key

static void *
s_twin (void *arg)
{
    s_twin_t *twin = (s_twin_t *) arg;
    char headers[700], body[128];
    snprintf (
        headers, sizeof headers,
        "Authorization: Bearer %s\r\n"
        "Idempotency-Key: twin-key-%d\r\nContent-Type: application/json\r\n",
        twin->token, s_twin_round);
    snprintf (body, sizeof body,
              "{\"table\":\"%s\",\"items\":[{\"item_id\":"
              "\"cola\",\"quantity\":1}]}",
              twin->table);
    tk_response_t r;
    tk_http (s_port, "POST", "/api/v1/orders", headers, body, &r);
    twin->status = r.status;
    snprintf (twin->got_table, sizeof twin->got_table, "%s",
              s_str (r.json, "table"));
    tk_response_free (&r);
    return NULL;
}

static void
s_check_key_twins (void)
{
    s_twin_t twins[2] = { { s_pad5, "T5", 0, "" }, { s_pad6, "T6", 0, "" } };
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create (&threads[i], NULL, s_twin, &twins[i]);
    for (int i = 0; i < 2; i++)
        pthread_join (threads[i], NULL);
    CHECK ((twins[0].status == 201) + (twins[1].status == 201) == 1
               && (twins[0].status == 409) + (twins[1].status == 409) == 1,
           "one key, two requests: %d and %d", twins[0].status,
           twins[1].status);
    for (int i = 0; i < 2; i++)
        CHECK (twins[i].status != 201
                   || strcmp (twins[i].got_table, twins[i].table) == 0,
               "table %s's pad got table %s's order", twins[i].table,
               twins[i].got_table);
}

static volatile bool s_inserting;

static void *
s_insert (void *arg)
{
    for (int i = 0; s_inserting && i < 200; i++) {
        char body[128];
        snprintf (
            body, sizeof body,
            "{\"table\":\"C%d\",\"items\":[{\"item_id\":\"cola\",\"quantity\":1}]}",
            i);
        tk_response_t r;
        s_call ("POST", "/api/v1/orders", s_kitchen, body, &r);
        tk_response_free (&r);
    }
    return NULL;
}

//  Page newest-first three at a time while orders keep coming: every
//  order that existed before the first page shows up exactly once.
static void
s_check_pagination (void)
{
    tk_response_t r;
    s_call ("GET", "/api/v1/orders?limit=1", s_kitchen, NULL, &r);
    json_int_t top =
        s_int (json_array_get (json_object_get (r.json, "orders"), 0), "id");
    tk_response_free (&r);
    CHECK (top >= 10, "enough orders to page through: %lld", (long long) top);
    char *seen = calloc ((size_t) top + 1, 1);
    s_inserting = true;
    pthread_t inserter;
    pthread_create (&inserter, NULL, s_insert, NULL);
    char path[96];
    snprintf (path, sizeof path, "/api/v1/orders?limit=3&cursor=%lld",
              (long long) top + 1);
    int pages = 0;
    while (*path) {
        s_call ("GET", path, s_kitchen, NULL, &r);
        CHECK (r.status == 200, "page %d: %d", pages, r.status);
        size_t i;
        json_t *order;
        json_array_foreach (json_object_get (r.json, "orders"), i, order)
        {
            json_int_t id = s_int (order, "id");
            CHECK (id >= 1 && id <= top && !seen[id], "order %lld once",
                   (long long) id);
            seen[id] = 1;
        }
        json_t *next = json_object_get (r.json, "next_cursor");
        if (json_is_string (next))
            snprintf (path, sizeof path, "/api/v1/orders?limit=3&cursor=%s",
                      json_string_value (next));
        else
            path[0] = '\0';
        tk_response_free (&r);
        pages++;
        usleep (5000);
    }
    s_inserting = false;
    pthread_join (inserter, NULL);
    for (json_int_t id = 1; id <= top; id++)
        CHECK (seen[id], "order %lld was skipped", (long long) id);
    printf ("domain: paged %lld orders in %d pages during inserts: 0 skipped, "
            "0 repeated\n",
            (long long) top, pages);
    free (seen);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "domain");
    s_port = tk_port ();
    char http[16], data[600], tax[16];
    snprintf (http, sizeof http, "%d", s_port);
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (tax, sizeof tax, "%d", TAX_BP);
    snprintf (s_secret, sizeof s_secret, "%s/secret", data);
    tk_spawn ("up", "up", "--http-port", http, "--data", data, "--tax-bp", tax,
              "--table-rate", "2", "--table-burst", "5", NULL);
    CHECK (tk_wait_http (s_port, "/healthz", 200, 15000), "up is healthy");
    s_kitchen = s_mint ("kitchen", "1h");
    s_manager = s_mint ("manager", "1h");
    s_pad5 = s_mint ("T5", "1h");
    s_pad6 = s_mint ("T6", "1h");

    s_check_pricing ();
    s_check_lifecycle ();
    s_check_cart ();
    s_check_86 ();
    s_check_tokens ();
    s_check_rate ();
    for (s_twin_round = 0; s_twin_round < 5; s_twin_round++)
        s_check_key_twins ();
    s_check_pagination ();
    free (s_kitchen);
    free (s_manager);
    free (s_pad5);
    free (s_pad6);
    return tk_done ();
}
