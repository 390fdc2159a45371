/*  test_up — `orderbus up --http-port PORT --data DIR` as the README
    says: one port for API, WebSocket and pages, data kept across runs.  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testkit.h"

#define CHECK TK_CHECK

static char s_auth[700];   //  "Authorization: Bearer <manager token>\r\n"

//  `up` made its own secret in the data directory: mint a manager token.
static void
s_login (const char *data)
{
    char secret[700], *out;
    snprintf (secret, sizeof secret, "%s/secret", data);
    int rc = tk_run (&out, "token", "--secret-file", secret, "--staff",
                     "manager", NULL);
    CHECK (rc == 0, "orderbus token: %d %s", rc, out);
    //  stdout and stderr share the output: find the token itself
    char *token = strstr (out, "ob1.");
    CHECK (token, "no token in: %s", out);
    token[strcspn (token, "\n")] = '\0';
    snprintf (s_auth, sizeof s_auth, "Authorization: Bearer %s\r\n", token);
    free (out);
}

static pid_t
s_up (int port, const char *data)
{
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    pid_t pid =
        tk_spawn ("up", "up", "--http-port", http, "--data", data, NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "up is healthy");
    return pid;
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "up");
    int port = tk_port ();
    char data[600];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    pid_t up = s_up (port, data);
    s_login (data);

    tk_response_t r;
    tk_http (port, "GET", "/api/v1/menu", NULL, NULL, &r);
    CHECK (r.status == 401, "up runs with tokens: %d", r.status);
    tk_response_free (&r);
    //  civetweb found handlers ignoring case, so up always answered these
    tk_http (port, "GET", "/HEALTHZ", NULL, NULL, &r);
    CHECK (r.status == 200, "paths ignore case in up: /HEALTHZ %d", r.status);
    tk_response_free (&r);
    tk_http (port, "GET", "/API/v1/menu", s_auth, NULL, &r);
    CHECK (r.status == 404, "/API/v1/menu is the API's 404: %d", r.status);
    tk_response_free (&r);
    tk_http (port, "GET", "/api/v1/menu", s_auth, NULL, &r);
    CHECK (r.status == 200
               && json_array_size (json_object_get (r.json, "categories")) > 0,
           "demo menu served: %d", r.status);
    tk_response_free (&r);
    tk_http (port, "GET", "/kitchen", NULL, NULL, &r);
    CHECK (r.status == 200 && strstr (r.body, "kitchen.js"),
           "kitchen page on the same port");
    tk_response_free (&r);

    char ws_path[700];
    snprintf (ws_path, sizeof ws_path, "/ws?token=%s",
              s_auth + strlen ("Authorization: Bearer "));
    ws_path[strcspn (ws_path, "\r")] = '\0';
    tk_ws_t *ws = tk_ws_open (port, ws_path);
    json_t *snap = tk_ws_next (ws, 5000);
    CHECK (snap, "snapshot on /ws");
    json_decref (snap);
    char headers[900];
    snprintf (headers, sizeof headers,
              "%sContent-Type: application/json\r\n"
              "Idempotency-Key: up-1\r\n",
              s_auth);
    tk_http (
        port, "POST", "/api/v1/orders", headers,
        "{\"table\":\"T5\",\"items\":[{\"item_id\":\"ice-cream\",\"quantity\":2}]}",
        &r);
    CHECK (r.status == 201, "order through up: %d %s", r.status, r.body);
    json_int_t id = json_integer_value (json_object_get (r.json, "id"));
    tk_response_free (&r);
    json_t *event = tk_ws_next (ws, 5000);
    CHECK (event
               && json_integer_value (
                      json_object_get (json_object_get (event, "order"), "id"))
                      == id,
           "event for the order on /ws");
    json_decref (event);
    tk_ws_close (&ws);

    CHECK (tk_kill (up, SIGTERM) == 0, "up exits 0 on SIGTERM");
    char *out = NULL;
    FILE *f;
    char log[700];
    snprintf (log, sizeof log, "%s/up.log", tk_dir ());
    f = fopen (log, "r");
    out = calloc (1, 65536);
    if (f) {
        fread (out, 1, 65535, f);
        fclose (f);
    }
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/kitchen?token=", port);
    CHECK (strstr (out, url), "up prints the kitchen URL");
    free (out);

    up = s_up (port, data);
    char path[64];
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) id);
    tk_http (port, "GET", path, s_auth, NULL, &r);
    CHECK (r.status == 200,
           "order kept across restarts (and the same secret): %d", r.status);
    tk_response_free (&r);
    return tk_done ();
}
