/*  test_security_closed — nothing runs open by default (issue 14): real
    processes on loopback, one case per defence of docs/security-defaults.md.

      closed_gateway, closed_edge   no secret: refuses to start, naming
                                    auth/secret_file and --secret-file
      closed_config                 ... nor when a config file leaves it out
      insecure_flag                 --insecure-no-auth: starts, says so
      contradiction                 a secret and --insecure-no-auth
      secret_mode                   a secret group or others may read
      file_modes                    data directory 0700, LMDB files and
                                    the secret 0600; a loose one tightened
      compat_off                    `up` serves no seed route by default
      compat_tokens                 seed routes behind tokens, the token
                                    in a /compat/<token>/ prefix
      export_refusals               export never writes through a symlink
                                    nor over a file without --force  */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK TK_CHECK

static char s_intake[TK_ENDPOINT_LEN], s_events[TK_ENDPOINT_LEN],
    s_sync[TK_ENDPOINT_LEN];
static char s_writer_data[600];   //  the writer's data directory
static char s_up_data[600];       //  `up`'s, with compat on
static int s_up_port;
static char s_kitchen[700], s_pad[700];   //  tokens of `up`'s secret

//  ---------------------------------------------------------------------
//  Helpers

static mode_t
s_mode (const char *dir, const char *name)
{
    char path[800];
    snprintf (path, sizeof path, "%s%s%s", dir, *name ? "/" : "", name);
    struct stat st;
    CHECK (stat (path, &st) == 0, "stat %s: %s", path, strerror (errno));
    return st.st_mode & 07777;
}

//  The whole of file path (caller frees), "" if it cannot be read.
static char *
s_slurp (const char *path)
{
    char *text = calloc (1, 1 << 16);
    FILE *file = fopen (path, "r");
    if (file) {
        size_t n = fread (text, 1, (1 << 16) - 1, file);
        text[n] = '\0';
        fclose (file);
    }
    return text;
}

static bool
s_log_has (const char *name, const char *what)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s.log", tk_dir (), name);
    char *text = s_slurp (path);
    bool found = strstr (text, what) != NULL;
    free (text);
    return found;
}

static void
s_write_file (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    CHECK (file && fputs (text, file) >= 0 && fclose (file) == 0,
           "cannot write %s", path);
    CHECK (chmod (path, mode) == 0, "chmod %s", path);
}

//  A token minted from secret with args (--table T or --staff ROLE)
static void
s_mint (const char *secret, const char *flag, const char *value, char *token,
        size_t cap)
{
    char *out;
    int rc = tk_run (&out, "token", "--secret-file", secret, flag, value, NULL);
    const char *found = strstr (out, "ob1.");
    CHECK (rc == 0 && found, "orderbus token: %d %s", rc, out);
    snprintf (token, cap, "%.*s", (int) strcspn (found, "\n"), found);
    free (out);
}

//  Start a node that must refuse to start: it exits by itself within
//  10 s (one that runs is a failure, not a hang), not with 0, its message
//  holds each of the NULL-ended words, and its port stays shut.
static void
s_expect_refusal (const char *what, int port, char **args, ...)
{
    static int count;
    char name[32], log[700];
    snprintf (name, sizeof name, "refused-%d", ++count);
    snprintf (log, sizeof log, "%s/%s.log", tk_dir (), name);
    pid_t pid =
        tk_spawn (name, args[0], args[1], args[2], args[3], args[4], args[5],
                  args[6], args[7], args[8], args[9], args[10], args[11], NULL);
    int rc = tk_kill (pid, 0);   //  signal 0: only wait for its exit
    char *out = s_slurp (log);
    CHECK (rc != -1, "%s: it started and runs: %s", what, out);
    CHECK (rc != 0, "%s: started (exit %d): %s", what, rc, out);
    va_list words;
    va_start (words, args);
    for (const char *word; (word = va_arg (words, const char *));)
        CHECK (strstr (out, word), "%s: the message does not name '%s': %s",
               what, word, out);
    va_end (words);
    tk_response_t r;
    tk_http (port, "GET", "/healthz", NULL, NULL, &r);
    CHECK (r.status == 0, "%s: something answers on its port: %d", what,
           r.status);
    tk_response_free (&r);
    printf ("  %s: exit %d: %.*s\n", what, rc, (int) strcspn (out, "\n"), out);
    free (out);
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (closed_gateway)
{
    tk_kit_secret (false);
    int port = tk_port ();
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    char *args[12] = { "gateway",  "--http-port", http,
                       "--intake", s_intake,      "--events",
                       s_events,   "--sync",      s_sync };
    s_expect_refusal ("gateway without a secret", port, args,
                      "auth/secret_file", "--secret-file", "--insecure-no-auth",
                      "orderbus token", NULL);
    tk_kit_secret (true);
}

TK_CASE (closed_edge)
{
    tk_kit_secret (false);
    int port = tk_port ();
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    char *args[12] = { "edge",   "--http-port", http,  "--events",
                       s_events, "--sync",      s_sync };
    s_expect_refusal ("edge without a secret", port, args, "auth/secret_file",
                      "--secret-file", "--insecure-no-auth", NULL);
    tk_kit_secret (true);
}

//  config/orderbus.cfg before issue 14 had no auth section: such a file
//  no longer starts a gateway
TK_CASE (closed_config)
{
    int port = tk_port ();
    char cfg[700], text[1200];
    snprintf (cfg, sizeof cfg, "%s/gateway.cfg", tk_dir ());
    snprintf (text, sizeof text,
              "endpoints\n    intake = %s\n    events = %s\n    sync = %s\n"
              "http\n    port = %d\n",
              s_intake, s_events, s_sync, port);
    s_write_file (cfg, text, 0644);
    char *args[12] = { "gateway", "--config", cfg };
    s_expect_refusal ("gateway from a config without auth", port, args,
                      "auth/secret_file", NULL);
    snprintf (text + strlen (text), sizeof text - strlen (text),
              "auth\n    insecure_no_auth = 0\n");
    s_write_file (cfg, text, 0644);
    s_expect_refusal ("gateway with insecure_no_auth = 0", port, args,
                      "auth/secret_file", NULL);
}

//  Running open takes the flag named for it, and is said loudly
TK_CASE (insecure_flag)
{
    int gw = tk_port (), edge = tk_port ();
    char gw_http[16], edge_http[16];
    snprintf (gw_http, sizeof gw_http, "%d", gw);
    snprintf (edge_http, sizeof edge_http, "%d", edge);
    pid_t gateway = tk_spawn ("open-gateway", "gateway", "--insecure-no-auth",
                              "--http-port", gw_http, "--intake", s_intake,
                              "--events", s_events, "--sync", s_sync, NULL);
    pid_t edge_pid =
        tk_spawn ("open-edge", "edge", "--insecure-no-auth", "--http-port",
                  edge_http, "--events", s_events, "--sync", s_sync, NULL);
    CHECK (tk_wait_http (gw, "/healthz", 200, 15000), "open gateway is up");
    CHECK (tk_wait_http (edge, "/healthz", 200, 15000), "open edge is up");
    CHECK (s_log_has ("open-gateway", "INSECURE")
               && s_log_has ("open-gateway", "--insecure-no-auth"),
           "the gateway says it runs open");
    CHECK (s_log_has ("open-edge", "INSECURE"), "the edge says it runs open");
    //  and it is open: a manager's route without a token
    tk_response_t r;
    tk_http (gw, "GET", "/api/v1/stats", NULL, NULL, &r);
    CHECK (r.status == 200, "open gateway: /api/v1/stats %d", r.status);
    tk_response_free (&r);
    CHECK (tk_kill (gateway, SIGTERM) == 0, "open gateway stops");
    CHECK (tk_kill (edge_pid, SIGTERM) == 0, "open edge stops");
}

TK_CASE (contradiction)
{
    int port = tk_port ();
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    char *args[12] = { "gateway",
                       "--secret-file",
                       (char *) tk_kit_secret_file (),
                       "--insecure-no-auth",
                       "--http-port",
                       http,
                       "--intake",
                       s_intake };
    s_expect_refusal ("a secret and --insecure-no-auth", port, args,
                      "contradict", NULL);
}

//  A secret others may read is refused, wherever it is used
TK_CASE (secret_mode)
{
    char secret[700];
    snprintf (secret, sizeof secret, "%s/loose-secret", tk_dir ());
    char *out;
    int rc = tk_run (&out, "token", "--secret-file", secret, "--create-secret",
                     "--staff", "kitchen", NULL);
    CHECK (rc == 0, "create a secret: %s", out);
    free (out);
    CHECK (s_mode (secret, "") == 0600, "a new secret is 0600: %04o",
           (unsigned) s_mode (secret, ""));
    CHECK (chmod (secret, 0644) == 0, "chmod");
    int port = tk_port ();
    char http[16];
    snprintf (http, sizeof http, "%d", port);
    char *gateway[12] = { "gateway", "--secret-file", secret,  "--http-port",
                          http,      "--intake",      s_intake };
    s_expect_refusal ("gateway with a 0644 secret", port, gateway, "mode 0644",
                      "chmod 600", NULL);
    char *edge[12] = { "edge", "--secret-file", secret,  "--http-port",
                       http,   "--events",      s_events };
    s_expect_refusal ("edge with a 0644 secret", port, edge, "mode 0644", NULL);
    rc = tk_run (&out, "token", "--secret-file", secret, "--staff", "kitchen",
                 NULL);
    CHECK (rc != 0 && strstr (out, "mode 0644") && !strstr (out, "ob1."),
           "orderbus token with a 0644 secret: %d %s", rc, out);
    free (out);
    //  up's own secret, made loose
    char data[700], up_secret[720];
    snprintf (data, sizeof data, "%s/loose-up", tk_dir ());
    CHECK (mkdir (data, 0700) == 0, "mkdir %s", data);
    snprintf (up_secret, sizeof up_secret, "%s/secret", data);
    CHECK (chmod (secret, 0600) == 0 && rename (secret, up_secret) == 0
               && chmod (up_secret, 0640) == 0,
           "move the secret");
    char *up[12] = { "up", "--http-port", http, "--data", data };
    s_expect_refusal ("up with a 0640 secret", port, up, "mode 0640",
                      "chmod 600", NULL);
}

//  What a local user could read: nothing of a node's files
TK_CASE (file_modes)
{
    //  The writer started with the suite (a new directory), and up's
    CHECK (s_mode (s_writer_data, "") == 0700, "writer data dir %04o",
           (unsigned) s_mode (s_writer_data, ""));
    CHECK (s_mode (s_writer_data, "data.mdb") == 0600, "data.mdb %04o",
           (unsigned) s_mode (s_writer_data, "data.mdb"));
    CHECK (s_mode (s_writer_data, "lock.mdb") == 0600, "lock.mdb %04o",
           (unsigned) s_mode (s_writer_data, "lock.mdb"));
    CHECK (s_mode (s_up_data, "") == 0700, "up data dir %04o",
           (unsigned) s_mode (s_up_data, ""));
    CHECK (s_mode (s_up_data, "secret") == 0600, "up secret %04o",
           (unsigned) s_mode (s_up_data, "secret"));
    CHECK (s_mode (s_up_data, "data.mdb") == 0600, "up data.mdb %04o",
           (unsigned) s_mode (s_up_data, "data.mdb"));

    //  An older install's loose directory and files are tightened, and
    //  the writer says so
    char data[700];
    snprintf (data, sizeof data, "%s/old-install", tk_dir ());
    char in[TK_ENDPOINT_LEN], ev[TK_ENDPOINT_LEN], sy[TK_ENDPOINT_LEN];
    tk_endpoints (in, ev, sy);
    pid_t writer = tk_spawn ("old-writer", "writer", "--data", data, "--intake",
                             in, "--events", ev, "--sync", sy, NULL);
    for (int64_t end = tk_now_ms () + 10000;
         tk_now_ms () < end && !s_log_has ("old-writer", "running");)
        usleep (20000);
    CHECK (tk_kill (writer, SIGTERM) == 0, "writer stops");
    char file[800];
    snprintf (file, sizeof file, "%s/data.mdb", data);
    CHECK (chmod (data, 0755) == 0 && chmod (file, 0644) == 0, "loosen");
    writer = tk_spawn ("old-writer", "writer", "--data", data, "--intake", in,
                       "--events", ev, "--sync", sy, NULL);
    //  The directory is tightened first, then the files, then it runs
    for (int64_t end = tk_now_ms () + 10000;
         tk_now_ms () < end
         && (s_mode (data, "") != 0700 || s_mode (data, "data.mdb") != 0600);)
        usleep (20000);
    CHECK (s_mode (data, "") == 0700, "an old data dir is tightened: %04o",
           (unsigned) s_mode (data, ""));
    CHECK (s_mode (data, "data.mdb") == 0600, "an old data.mdb: %04o",
           (unsigned) s_mode (data, "data.mdb"));
    CHECK (s_log_has ("old-writer", "had mode 0755"),
           "the writer logs the directory it tightened");
    CHECK (tk_kill (writer, SIGTERM) == 0, "writer stops");
}

//  The seed routes are a way in that only a site with seed clients opens
TK_CASE (compat_off)
{
    int port = tk_port ();
    char http[16], data[700];
    snprintf (http, sizeof http, "%d", port);
    snprintf (data, sizeof data, "%s/plain-up", tk_dir ());
    pid_t up =
        tk_spawn ("plain-up", "up", "--http-port", http, "--data", data, NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "up is healthy");
    tk_response_t r;
    tk_http (port, "POST", "/api/order", "Content-Type: application/json\r\n",
             "{\"table\":\"T1\",\"items\":[{\"name\":\"lobster\","
             "\"quantity\":1}]}",
             &r);
    CHECK (r.status == 404, "up without --compat: POST /api/order %d",
           r.status);
    tk_response_free (&r);
    tk_http (port, "GET", "/menu_items", NULL, NULL, &r);
    CHECK (r.status == 404, "up without --compat: GET /menu_items %d",
           r.status);
    tk_response_free (&r);
    CHECK (tk_kill (up, SIGTERM) == 0, "up stops");
}

//  Seed orders: how many GET /api/orders lists, as the kitchen sees it
static size_t
s_seed_count (void)
{
    char path[800];
    snprintf (path, sizeof path, "/compat/%s/api/orders", s_kitchen);
    json_t *orders = tk_get_json (s_up_port, path, 200);
    CHECK (json_is_array (orders), "GET %s", path);
    size_t count = json_array_size (orders);
    json_decref (orders);
    return count;
}

//  POST path with a seed 002 order for table; its status, body checked
//  for a JSON detail when refused
static int
s_seed_order (const char *path, const char *table, const char *headers)
{
    char body[200], all_headers[900];
    snprintf (body, sizeof body,
              "{\"table\":\"%s\",\"items\":[{\"name\":\"lobster\","
              "\"quantity\":1}]}",
              table);
    snprintf (all_headers, sizeof all_headers,
              "Content-Type: application/json\r\n%s", headers ? headers : "");
    tk_response_t r;
    tk_http (s_up_port, "POST", path, all_headers, body, &r);
    int status = r.status;
    if (status == 401 || status == 403)
        CHECK (json_is_string (json_object_get (r.json, "detail")),
               "%s %d: a JSON detail: %s", path, status, r.body);
    if (status == 401)
        CHECK (strstr (r.body, "/compat/<token>/api/order"),
               "the 401 says where the token goes: %s", r.body);
    tk_response_free (&r);
    return status;
}

TK_CASE (compat_tokens)
{
    size_t before = s_seed_count ();
    CHECK (s_seed_order ("/api/order", "T1", NULL) == 401,
           "POST /api/order without a token");
    CHECK (s_seed_order ("/compat/garbage/api/order", "T1", NULL) == 401,
           "POST /compat/garbage/api/order");
    char path[900], tampered[700];
    snprintf (tampered, sizeof tampered, "%s", s_pad);
    tampered[strlen (tampered) - 2] ^= 1;   //  one bit of its MAC
    snprintf (path, sizeof path, "/compat/%s/api/order", tampered);
    CHECK (s_seed_order (path, "T1", NULL) == 401, "a tampered token");
    CHECK (s_seed_count () == before, "refused orders are not stored");

    //  A pad token in the prefix: its own table only
    snprintf (path, sizeof path, "/compat/%s/api/order", s_pad);
    CHECK (s_seed_order (path, "T2", NULL) == 403, "a pad for another table");
    CHECK (s_seed_order (path, "T1", NULL) == 201, "a pad for its table");
    CHECK (s_seed_count () == before + 1, "one order stored");
    //  every table's orders need staff
    snprintf (path, sizeof path, "/compat/%s/api/orders", s_pad);
    tk_response_t r;
    tk_http (s_up_port, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 403, "a pad reading every order: %d", r.status);
    tk_response_free (&r);
    tk_http (s_up_port, "GET", "/api/orders", NULL, NULL, &r);
    CHECK (r.status == 401, "GET /api/orders without a token: %d", r.status);
    tk_response_free (&r);

    //  /ws/orders: refused before the handshake without a staff token
    char upgrade[] = "GET /ws/orders HTTP/1.1\r\nHost: x\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n";
    tk_http_raw (s_up_port, upgrade, sizeof upgrade - 1, &r);
    CHECK (r.status == 401 && strstr (r.body, "/compat/<token>/ws/orders"),
           "/ws/orders without a token: %d %s", r.status, r.body);
    tk_response_free (&r);
    snprintf (path, sizeof path, "/compat/%s/ws/orders", s_pad);
    CHECK (tk_ws_open (s_up_port, path) == NULL, "/ws/orders with a pad token");
    snprintf (path, sizeof path, "/compat/%s/ws/orders", s_kitchen);
    tk_ws_t *ws = tk_ws_open (s_up_port, path);
    CHECK (ws, "/compat/<kitchen>/ws/orders opens");
    json_t *initial = tk_ws_next (ws, 5000);
    CHECK (initial
               && json_array_size (json_object_get (initial, "orders"))
                      == before + 1,
           "its initial list holds every order");
    json_decref (initial);
    tk_ws_close (&ws);
}

TK_CASE (export_refusals)
{
    char out_path[700], victim[700], link_path[700];
    snprintf (out_path, sizeof out_path, "%s/orders.csv", tk_dir ());
    snprintf (victim, sizeof victim, "%s/victim.txt", tk_dir ());
    snprintf (link_path, sizeof link_path, "%s/link.csv", tk_dir ());
    char *out;
    //  A new file: written, the owner's alone
    int rc = tk_run (&out, "export", "--data", s_writer_data, "--output",
                     out_path, NULL);
    CHECK (rc == 0, "export to a new file: %d %s", rc, out);
    free (out);
    CHECK (s_mode (out_path, "") == 0600, "the export is 0600: %04o",
           (unsigned) s_mode (out_path, ""));
    //  An existing file: refused, untouched, unless --force
    s_write_file (out_path, "keep me\n", 0644);
    rc = tk_run (&out, "export", "--data", s_writer_data, "--output", out_path,
                 NULL);
    CHECK (rc == 1 && strstr (out, "exists") && strstr (out, "--force"),
           "export over a file: %d %s", rc, out);
    free (out);
    char *text = s_slurp (out_path);
    CHECK (strcmp (text, "keep me\n") == 0, "the file is untouched: %s", text);
    free (text);
    rc = tk_run (&out, "export", "--data", s_writer_data, "--output", out_path,
                 "--force", NULL);
    CHECK (rc == 0, "export --force over a file: %d %s", rc, out);
    free (out);
    text = s_slurp (out_path);
    CHECK (strncmp (text, "order_id", 8) == 0, "--force replaced it: %.40s",
           text);
    free (text);
    //  A symbolic link: never followed, --force or not
    s_write_file (victim, "precious\n", 0600);
    CHECK (symlink (victim, link_path) == 0, "symlink");
    const char *force[] = { NULL, "--force" };
    for (int i = 0; i < 2; i++) {
        rc = tk_run (&out, "export", "--data", s_writer_data, "--output",
                     link_path, force[i], NULL);
        CHECK (rc == 1 && strstr (out, "symbolic link"),
               "export through a symlink%s: %d %s", force[i] ? " --force" : "",
               rc, out);
        free (out);
        text = s_slurp (victim);
        CHECK (strcmp (text, "precious\n") == 0, "its target is untouched: %s",
               text);
        free (text);
    }
    //  A dangling link (where O_CREAT alone would create the target)
    char dangling[700], target[700];
    snprintf (target, sizeof target, "%s/created-by-export", tk_dir ());
    snprintf (dangling, sizeof dangling, "%s/dangling.csv", tk_dir ());
    CHECK (symlink (target, dangling) == 0, "symlink");
    rc = tk_run (&out, "export", "--data", s_writer_data, "--output", dangling,
                 NULL);
    CHECK (rc == 1 && access (target, F_OK) != 0,
           "export through a dangling symlink: %d %s", rc, out);
    free (out);
    rc = tk_run (&out, "export", "--data", s_writer_data, "--force", NULL);
    CHECK (rc == 2 && strstr (out, "--force: only with --output"),
           "--force alone: %d %s", rc, out);
    free (out);
}

//  ---------------------------------------------------------------------

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (closed_gateway),
                                     TK_CASE_ENTRY (closed_edge),
                                     TK_CASE_ENTRY (closed_config),
                                     TK_CASE_ENTRY (insecure_flag),
                                     TK_CASE_ENTRY (contradiction),
                                     TK_CASE_ENTRY (secret_mode),
                                     TK_CASE_ENTRY (file_modes),
                                     TK_CASE_ENTRY (compat_off),
                                     TK_CASE_ENTRY (compat_tokens),
                                     TK_CASE_ENTRY (export_refusals),
                                     { 0 } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "security_closed");
    tk_endpoints (s_intake, s_events, s_sync);
    snprintf (s_writer_data, sizeof s_writer_data, "%s/writer-data", tk_dir ());
    char menu[700];
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    tk_spawn ("writer", "writer", "--data", s_writer_data, "--menu", menu,
              "--intake", s_intake, "--events", s_events, "--sync", s_sync,
              NULL);

    //  up with the seed routes on, and tokens from its own secret
    s_up_port = tk_port ();
    char http[16], secret[700];
    snprintf (http, sizeof http, "%d", s_up_port);
    snprintf (s_up_data, sizeof s_up_data, "%s/up-data", tk_dir ());
    tk_spawn ("up", "up", "--http-port", http, "--data", s_up_data, "--compat",
              "1", "--open-menu", "1", NULL);
    CHECK (tk_wait_http (s_up_port, "/healthz", 200, 15000), "up is healthy");
    snprintf (secret, sizeof secret, "%s/secret", s_up_data);
    s_mint (secret, "--staff", "kitchen", s_kitchen, sizeof s_kitchen);
    s_mint (secret, "--table", "T1", s_pad, sizeof s_pad);

    tk_run_cases (s_cases);
    return tk_done ();
}
