/*  test_seats — an edge serves edge/max_clients WebSockets at once, no
    more, and keeps answering HTTP while it is full:

      - with --max-clients 3, three kitchens connect and get a snapshot;
      - a fourth is refused before the handshake with 503, and the body
        names edge/max_clients;
      - while the edge is full, /healthz and /kitchen answer at once (the
        http/threads workers are not taken by WebSockets);
      - the three still get every event;
      - when one leaves its seat is free: a new browser connects.  */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testkit.h"
#include "ws_client.h"

#define CHECK    TK_CHECK
#define SEATS    3
#define QUICK_MS 1000   //  "at once", generously for an ASan build

static void
s_start_nodes (int gw_port, int edge_port)
{
    char data[600], menu[600], web[600], gw[16], edge[16], seats[16];
    char intake[64], events[64], sync[64];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    snprintf (gw, sizeof gw, "%d", gw_port);
    snprintf (edge, sizeof edge, "%d", edge_port);
    snprintf (seats, sizeof seats, "%d", SEATS);
    tk_endpoints (intake, events, sync);
    tk_spawn ("writer", "writer", "--data", data, "--menu", menu, "--intake",
              intake, "--events", events, "--sync", sync, NULL);
    tk_spawn ("gateway", "gateway", "--intake", intake, "--events", events,
              "--sync", sync, "--http-port", gw, NULL);
    tk_spawn ("edge", "edge", "--events", events, "--sync", sync, "--http-port",
              edge, "--web", web, "--http-threads", "4", "--max-clients", seats,
              NULL);
    CHECK (tk_wait_http (gw_port, "/healthz", 200, 15000),
           "gateway not healthy");
    CHECK (tk_wait_http (edge_port, "/healthz", 200, 15000),
           "edge not healthy");
}

//  A kitchen connected and given its snapshot.
static tk_ws_t *
s_kitchen (int port, int which)
{
    tk_ws_t *ws = tk_ws_open (port, "/ws");
    CHECK (ws, "kitchen %d could not connect", which);
    json_t *snapshot = ws ? tk_ws_next (ws, 5000) : NULL;
    const char *type = json_string_value (json_object_get (snapshot, "type"));
    CHECK (type && strcmp (type, "snapshot") == 0, "kitchen %d: no snapshot",
           which);
    json_decref (snapshot);
    return ws;
}

//  GET path answers 200 within QUICK_MS.
static void
s_quick (int port, const char *path)
{
    int64_t start = tk_now_ms ();
    tk_response_t r;
    tk_http (port, "GET", path, NULL, NULL, &r);
    int64_t took = tk_now_ms () - start;
    CHECK (r.status == 200 && took < QUICK_MS,
           "GET %s on a full edge: %d after %lld ms", path, r.status,
           (long long) took);
    tk_response_free (&r);
}

//  Every kitchen gets the event of an order placed now.
static void
s_event_reaches (int gw, tk_ws_t **kitchens, int count, const char *key)
{
    tk_response_t r;
    char *body = tk_order_body ("T1", 1, false, 0);
    tk_post_order (gw, key, body, &r);
    free (body);
    CHECK (r.status == 201, "order %s: %d %s", key, r.status,
           r.body ? r.body : "");
    json_int_t id = tk_json_int (r.json, "id");
    tk_response_free (&r);
    for (int i = 0; i < count; i++) {
        json_t *event = tk_ws_next (kitchens[i], 5000);
        CHECK (event && tk_json_int (event, "order.id") == id,
               "kitchen %d did not get order %lld", i, (long long) id);
        json_decref (event);
    }
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "integration_seats");
    int gw = tk_port (), edge = tk_port ();
    s_start_nodes (gw, edge);

    tk_ws_t *kitchens[SEATS];
    for (int i = 0; i < SEATS; i++)
        kitchens[i] = s_kitchen (edge, i);
    json_t *health = tk_get_json (edge, "/healthz", 200);
    CHECK (tk_json_int (health, "edge.clients") == SEATS,
           "healthz clients %lld",
           (long long) tk_json_int (health, "edge.clients"));
    json_decref (health);

    //  Full: the next browser is refused before the handshake
    char upgrade[256];
    int upgrade_len = ws_client_request (upgrade, sizeof upgrade, "127.0.0.1",
                                         0, "/ws", WS_CLIENT_SAMPLE_KEY);
    assert (upgrade_len > 0);   //  it fits
    tk_response_t r;
    tk_http_raw (edge, upgrade, (size_t) upgrade_len, &r);
    CHECK (r.status == 503, "a browser over the limit: %d, not 503", r.status);
    CHECK (r.body && strstr (r.body, "edge/max_clients")
               && strstr (r.body, "edge_full"),
           "the 503 names edge/max_clients: %s", r.body ? r.body : "(none)");
    tk_response_free (&r);
    printf ("integration_seats: %d browsers connected, the next refused with "
            "503 edge_full\n",
            SEATS);

    //  Yet the edge answers HTTP, and its browsers get their events
    for (int i = 0; i < 5; i++) {
        s_quick (edge, "/healthz");
        s_quick (edge, "/kitchen");
    }
    s_event_reaches (gw, kitchens, SEATS, "seats-1");

    //  A seat is given back when a browser leaves
    tk_ws_close (&kitchens[0]);
    int64_t until = tk_now_ms () + 5000;
    json_int_t clients = SEATS;
    while (clients != SEATS - 1 && tk_now_ms () < until) {
        health = tk_get_json (edge, "/healthz", 200);
        clients = tk_json_int (health, "edge.clients");
        json_decref (health);
    }
    CHECK (clients == SEATS - 1, "clients after one left: %lld",
           (long long) clients);
    kitchens[0] = s_kitchen (edge, SEATS);
    s_event_reaches (gw, kitchens, SEATS, "seats-2");
    printf ("integration_seats: /healthz and /kitchen answered while full; a "
            "freed seat was taken again\n");
    for (int i = 0; i < SEATS; i++)
        tk_ws_close (&kitchens[i]);
    return tk_done ();
}
