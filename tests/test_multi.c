/*  test_multi — one writer, two gateways, two edges: orders placed
    through both gateways reach browsers on both edges as the same events
    in the same order, with consecutive sequence numbers.  */

#include <stdio.h>
#include <string.h>
#include "testkit.h"

#define CHECK  TK_CHECK
#define ORDERS 20

static char s_intake[64], s_events[64], s_sync[64];

static int
s_node (const char *role, const char *name)
{
    int port = tk_port ();
    char http[16], web[600];
    snprintf (http, sizeof http, "%d", port);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    if (strcmp (role, "gateway") == 0)
        tk_spawn (name, role, "--intake", s_intake, "--events", s_events,
                  "--sync", s_sync, "--http-port", http, "--name", name, NULL);
    else
        tk_spawn (name, role, "--events", s_events, "--sync", s_sync,
                  "--http-port", http, "--web", web, NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "%s healthy", name);
    return port;
}

//  Read ORDERS events after the snapshot; record seq and order id.
static void
s_collect (tk_ws_t *ws, json_int_t *seqs, json_int_t *ids)
{
    json_t *snap = tk_ws_next (ws, 5000);
    CHECK (snap
               && strcmp (json_string_value (json_object_get (snap, "type")),
                          "snapshot")
                      == 0,
           "snapshot first");
    json_int_t last = json_integer_value (json_object_get (snap, "seq"));
    json_decref (snap);
    for (int i = 0; i < ORDERS; i++) {
        json_t *msg = tk_ws_next (ws, 5000);
        CHECK (msg, "event %d of %d", i + 1, ORDERS);
        seqs[i] = json_integer_value (json_object_get (msg, "seq"));
        ids[i] = json_integer_value (
            json_object_get (json_object_get (msg, "order"), "id"));
        CHECK (seqs[i] == last + 1, "event seq %lld after %lld",
               (long long) seqs[i], (long long) last);
        last = seqs[i];
        json_decref (msg);
    }
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "multi");
    char data[600], menu[600];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    tk_spawn ("writer", "writer", "--data", data, "--menu", menu, "--intake",
              s_intake, "--events", s_events, "--sync", s_sync, NULL);
    int gw[2] = { s_node ("gateway", "terrace"), s_node ("gateway", "bar") };
    int edge[2] = { s_node ("edge", "edge-a"), s_node ("edge", "edge-b") };
    tk_ws_t *ws[2] = { tk_ws_open (edge[0], "/ws"),
                       tk_ws_open (edge[1], "/ws") };
    CHECK (ws[0] && ws[1], "both WebSockets open");

    json_int_t placed[ORDERS];
    for (int i = 0; i < ORDERS; i++) {
        char key[32], body[128];
        snprintf (key, sizeof key, "multi-%d", i);
        snprintf (
            body, sizeof body,
            "{\"table\":\"T%d\",\"items\":[{\"item_id\":\"caesar\",\"quantity\":1}]}",
            i);
        tk_response_t r;
        tk_post_order (gw[i % 2], key, body, &r);
        CHECK (r.status == 201, "order %d via gateway %d: %d %s", i, i % 2,
               r.status, r.body);
        placed[i] = json_integer_value (json_object_get (r.json, "id"));
        tk_response_free (&r);
    }
    json_int_t seqs[2][ORDERS], ids[2][ORDERS];
    s_collect (ws[0], seqs[0], ids[0]);
    s_collect (ws[1], seqs[1], ids[1]);
    for (int i = 0; i < ORDERS; i++) {
        CHECK (seqs[0][i] == seqs[1][i] && ids[0][i] == ids[1][i],
               "edges differ at event %d", i);
        CHECK (ids[0][i] == placed[i], "event %d is order %lld, want %lld", i,
               (long long) ids[0][i], (long long) placed[i]);
    }
    printf (
        "multi: sent %d through 2 gateways, each of 2 edges got %d in order, "
        "gaps 0, duplicates 0\n",
        ORDERS, ORDERS);
    tk_ws_close (&ws[0]);
    tk_ws_close (&ws[1]);
    return tk_done ();
}
