/*  test_staff_seats — an edge keeps edge/staff_seats of its seats for
    staff tokens, so guests' pads cannot take the kitchen's screens:

      - with --max-clients 4 --staff-seats 2, two pads connect and the
        third is refused before the handshake with 503 naming
        edge/staff_seats, while /healthz counts two guests;
      - the kitchen still gets both of its seats, and the next kitchen is
        refused (the edge is full), its 503 naming edge/max_clients;
      - a kept seat that is free is still no pad's, but a pad's seat that
        is free may be a kitchen's;
      - settings that leave pads no seat are refused at start.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"
#include "ws_client.h"

#define CHECK       TK_CHECK
#define SEATS       4
#define STAFF_SEATS 2

static char s_secret[700];

static void
s_start_nodes (int edge_port)
{
    char data[600], menu[600], web[600], port[16], seats[16], staff[16];
    char intake[64], events[64], sync[64];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (web, sizeof web, "%s/web", tk_source ());
    snprintf (port, sizeof port, "%d", edge_port);
    snprintf (seats, sizeof seats, "%d", SEATS);
    snprintf (staff, sizeof staff, "%d", STAFF_SEATS);
    tk_endpoints (intake, events, sync);
    tk_spawn ("writer", "writer", "--data", data, "--menu", menu, "--intake",
              intake, "--events", events, "--sync", sync, NULL);
    tk_spawn ("edge", "edge", "--events", events, "--sync", sync, "--http-port",
              port, "--web", web, "--secret-file", s_secret, "--max-clients",
              seats, "--staff-seats", staff, NULL);
    CHECK (tk_wait_http (edge_port, "/healthz", 200, 15000),
           "edge not healthy");
}

//  A browser with token, connected and given its snapshot.
static tk_ws_t *
s_browser (int port, const char *token, const char *who)
{
    char path[1024];
    snprintf (path, sizeof path, "/ws?token=%s", token);
    tk_ws_t *ws = tk_ws_open (port, path);
    CHECK (ws, "%s could not connect", who);
    json_t *snapshot = tk_ws_next (ws, 5000);
    const char *type = json_string_value (json_object_get (snapshot, "type"));
    CHECK (type && strcmp (type, "snapshot") == 0, "%s: no snapshot", who);
    json_decref (snapshot);
    return ws;
}

//  A browser with token is refused before the handshake: 503 naming
//  setting.
static void
s_refused (int port, const char *token, const char *setting, const char *who)
{
    char path[1024];
    snprintf (path, sizeof path, "/ws?token=%s", token);
    char upgrade[1200];
    int len = ws_client_request (upgrade, sizeof upgrade, "127.0.0.1", 0, path,
                                 WS_CLIENT_SAMPLE_KEY);
    CHECK (len > 0, "the upgrade request fits");
    tk_response_t r;
    tk_http_raw (port, upgrade, (size_t) len, &r);
    CHECK (r.status == 503, "%s: %d, not 503", who, r.status);
    CHECK (r.body && strstr (r.body, setting) && strstr (r.body, "edge_full"),
           "%s: the 503 names %s: %s", who, setting, r.body ? r.body : "");
    tk_response_free (&r);
}

static json_int_t
s_health (int port, const char *field)
{
    json_t *health = tk_get_json (port, "/healthz", 200);
    json_int_t value = tk_json_int (health, field);
    json_decref (health);
    return value;
}

//  Wait until /healthz counts clients browsers.
static void
s_wait_clients (int port, json_int_t clients)
{
    int64_t until = tk_now_ms () + 5000;
    while (s_health (port, "edge.clients") != clients && tk_now_ms () < until)
        usleep (50 * 1000);
    CHECK (s_health (port, "edge.clients") == clients, "clients %lld, not %lld",
           (long long) s_health (port, "edge.clients"), (long long) clients);
}

static void
s_bad_settings (void)
{
    char *out;
    int rc =
        tk_run (&out, "edge", "--max-clients", "4", "--staff-seats", "4", NULL);
    CHECK (rc == 2 && strstr (out, "edge/staff_seats")
               && strstr (out, "edge/max_clients"),
           "staff seats = max clients: exit %d, %s", rc, out);
    free (out);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "integration_staff_seats");
    snprintf (s_secret, sizeof s_secret, "%s/secret", tk_dir ());
    char *pad = tk_mint (s_secret, "--table", "T1");
    char *kitchen = tk_mint (s_secret, "--staff", "kitchen");
    int edge = tk_port ();
    s_start_nodes (edge);

    tk_ws_t *pads[SEATS - STAFF_SEATS], *kitchens[STAFF_SEATS];
    for (int i = 0; i < SEATS - STAFF_SEATS; i++)
        pads[i] = s_browser (edge, pad, "pad");
    s_refused (edge, pad, "edge/staff_seats", "a pad over the guest seats");
    CHECK (s_health (edge, "edge.guests") == SEATS - STAFF_SEATS,
           "healthz guests %lld", (long long) s_health (edge, "edge.guests"));
    for (int i = 0; i < STAFF_SEATS; i++)
        kitchens[i] = s_browser (edge, kitchen, "kitchen");
    s_refused (edge, kitchen, "edge/max_clients", "a kitchen on a full edge");
    printf ("integration_staff_seats: %d pads and %d kitchens connected; the "
            "next pad and the next kitchen refused with 503\n",
            SEATS - STAFF_SEATS, STAFF_SEATS);

    //  A kept seat, given back, is not a pad's; a pad's seat is a kitchen's
    tk_ws_close (&kitchens[0]);
    s_wait_clients (edge, SEATS - 1);
    s_refused (edge, pad, "edge/staff_seats", "a pad with a kept seat free");
    tk_ws_close (&pads[0]);
    s_wait_clients (edge, SEATS - 2);
    kitchens[0] = s_browser (edge, kitchen, "a kitchen back on its seat");
    tk_ws_t *third = s_browser (edge, kitchen, "a kitchen on a pad's seat");
    CHECK (s_health (edge, "edge.guests") == SEATS - STAFF_SEATS - 1,
           "healthz guests %lld", (long long) s_health (edge, "edge.guests"));

    s_bad_settings ();
    tk_ws_close (&third);
    tk_ws_close (&kitchens[0]);
    tk_ws_close (&kitchens[1]);
    tk_ws_close (&pads[1]);
    free (pad);
    free (kitchen);
    return tk_done ();
}
