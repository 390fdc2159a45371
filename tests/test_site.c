/*  test_site — what an edge serves beside its API, on libmicrohttpd
    (bus_mhd_site.c, bus_mhd_ws.c), from a web root the test makes:

      - files: a script with its type, an ETag, and 304 (with the 200's
        Content-Length) when the browser has it; HEAD; the pages;
      - never served: a hidden file, a file reached through a symbolic
        link to a directory outside the root, a FIFO (answered at once,
        not waited on), a path with "..";
      - WebSockets: an upgrade over HTTP/1.0 is 400; a browser's close is
        answered with its code, and one with a code browsers may not
        send (1005) with 1002; at SIGTERM, a connected browser gets 1001
        before its connection ends, and so does one whose 101 had gone
        out but whose socket the server had not taken on yet (a Debug
        build's switch holds an upgrade in that window).  */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testkit.h"
#include "ws_client.h"

#define CHECK TK_CHECK

static int s_edge;
static pid_t s_edge_pid;
static char s_web[600], s_events[64], s_sync[64];

static void
s_write_file (const char *name, const char *text)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s", s_web, name);
    FILE *f = fopen (path, "w");
    CHECK (f && fputs (text, f) >= 0, "wrote %s", path);
    fclose (f);
}

TK_CASE (start)
{
    char data[600], menu[600], intake[64], port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (s_web, sizeof s_web, "%s/web", tk_dir ());
    CHECK (mkdir (s_web, 0755) == 0, "web root made");
    s_write_file ("kitchen.html", "<!doctype html><title>k</title>");
    s_write_file ("app.js", "console.log('app');\n");
    s_write_file (".secret", "hidden");
    char link[700], fifo[700], outside[700];
    snprintf (outside, sizeof outside, "%s/outside", tk_dir ());
    CHECK (mkdir (outside, 0755) == 0, "a directory outside the root");
    FILE *f = fopen (strcat (strcpy (link, outside), "/passwd"), "w");
    CHECK (f && fputs ("root:x:0:0", f) >= 0, "a file outside the root");
    fclose (f);
    snprintf (link, sizeof link, "%s/sub", s_web);
    CHECK (symlink (outside, link) == 0, "a link to it from the root");
    snprintf (fifo, sizeof fifo, "%s/pipe", s_web);
    CHECK (mkfifo (fifo, 0644) == 0, "a FIFO in the root");
    tk_endpoints (intake, s_events, s_sync);
    s_edge = tk_port ();
    snprintf (port, sizeof port, "%d", s_edge);
    tk_spawn ("writer", "writer", "--data", data, "--menu", menu, "--intake",
              intake, "--events", s_events, "--sync", s_sync, NULL);
    s_edge_pid = tk_spawn ("edge", "edge", "--events", s_events, "--sync",
                           s_sync, "--http-port", port, "--web", s_web, NULL);
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 15000), "edge healthy");
}

TK_CASE (files)
{
    tk_response_t r;
    char type[128], etag[64], length[32];
    tk_http (s_edge, "GET", "/app.js", NULL, NULL, &r);
    CHECK (r.status == 200 && r.body && strstr (r.body, "console.log"),
           "GET /app.js: %d", r.status);
    CHECK (tk_header (&r, "Content-Type", type, sizeof type)
               && strncmp (type, "application/javascript", 22) == 0,
           "its type: %s", type);
    CHECK (tk_header (&r, "ETag", etag, sizeof etag), "an ETag");
    tk_response_free (&r);
    char headers[128];
    snprintf (headers, sizeof headers, "If-None-Match: %s\r\n", etag);
    tk_http (s_edge, "GET", "/app.js", headers, NULL, &r);
    CHECK (r.status == 304, "the same ETag: %d, not 304", r.status);
    CHECK (tk_header (&r, "Content-Length", length, sizeof length)
               && atoi (length) == (int) strlen ("console.log('app');\n"),
           "the 304's Content-Length is the file's: %s", length);
    tk_response_free (&r);
    tk_http (s_edge, "HEAD", "/app.js", NULL, NULL, &r);
    CHECK (r.status == 200 && (!r.body || !*r.body), "HEAD: %d, no body",
           r.status);
    tk_response_free (&r);
    tk_http (s_edge, "GET", "/kitchen", NULL, NULL, &r);
    CHECK (r.status == 200 && r.body && strstr (r.body, "<title>k"),
           "the page /kitchen: %d", r.status);
    tk_response_free (&r);
}

TK_CASE (never_served)
{
    const char *paths[] = { "/.secret", "/sub/passwd", "/web/../outside/passwd",
                            "/%2e%2e/outside/passwd" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        tk_response_t r;
        tk_http (s_edge, "GET", paths[i], NULL, NULL, &r);
        CHECK (r.status == 404 && !(r.body && strstr (r.body, "root:x")),
               "GET %s: %d, not 404", paths[i], r.status);
        tk_response_free (&r);
    }
    int64_t start = tk_now_ms ();
    tk_response_t r;
    tk_http (s_edge, "GET", "/pipe", NULL, NULL, &r);
    CHECK (r.status == 404 && tk_now_ms () - start < 2000,
           "GET /pipe (a FIFO): %d after %lld ms", r.status,
           (long long) (tk_now_ms () - start));
    tk_response_free (&r);
    CHECK (tk_wait_http (s_edge, "/healthz", 200, 1000),
           "the edge still answers");
}

TK_CASE (websockets)
{
    //  HTTP/1.0 cannot upgrade: refused, not left hanging
    char request[1024];
    int len = ws_client_request (request, sizeof request, "127.0.0.1", s_edge,
                                 "/ws", WS_CLIENT_SAMPLE_KEY);
    CHECK (len > 0, "an upgrade request");
    char *version = strstr (request, "HTTP/1.1");
    CHECK (version, "written as HTTP/1.1");
    memcpy (version, "HTTP/1.0", 8);
    tk_response_t r;
    tk_http_raw (s_edge, request, (size_t) len, &r);
    CHECK (r.status == 400, "an HTTP/1.0 upgrade: %d, not 400", r.status);
    tk_response_free (&r);
    //  A close is answered with its code; 1005 is not one to send
    int codes[][2] = { { 1000, 1000 }, { 4000, 4000 }, { 1005, 1002 } };
    for (size_t i = 0; i < 3; i++) {
        int fd = tk_ws_raw_open (s_edge, "/ws", 0);
        CHECK (fd >= 0, "a WebSocket");
        unsigned char payload[2] = { (unsigned char) (codes[i][0] >> 8),
                                     (unsigned char) codes[i][0] };
        CHECK (tk_ws_raw_send (fd, 0x88, payload, 2, true) == 0, "close sent");
        tk_ws_raw_end_t end;
        tk_ws_raw_drain (fd, 5000, &end);
        close (fd);
        CHECK (end.close_code == codes[i][1], "close %d answered %d, not %d",
               codes[i][0], end.close_code, codes[i][1]);
    }
}

TK_CASE (goodbye)
{
    int fd = tk_ws_raw_open (s_edge, "/ws", 0);
    CHECK (fd >= 0, "a WebSocket");
    CHECK (kill (s_edge_pid, SIGTERM) == 0, "SIGTERM to the edge");
    tk_ws_raw_end_t end;
    tk_ws_raw_drain (fd, 10000, &end);
    close (fd);
    CHECK (end.close_code == 1001, "at SIGTERM: close %d, not 1001",
           end.close_code);
}

//  The stop between a browser's 101 and the server taking its socket on
//  (which the goodbye above fell into now and then, under load): it had
//  its 101, so it gets its 1001 too, not a bare hang-up
TK_CASE (goodbye_upgrading)
{
    char port[16], log[700];
    int http = tk_port ();
    snprintf (port, sizeof port, "%d", http);
    const char *env[] = { "ORDERBUS_DEBUG_UPGRADE_DELAY_MS=500", NULL };
    pid_t edge = tk_spawn_env ("edge-upgrading", env, "edge", "--events",
                               s_events, "--sync", s_sync, "--http-port", port,
                               "--web", s_web, NULL);
    CHECK (tk_wait_http (http, "/healthz", 200, 15000), "edge healthy");
    snprintf (log, sizeof log, "%s/edge-upgrading.log", tk_dir ());
    char *text = NULL;
    FILE *f = fopen (log, "r");
    size_t len = 0;
    if (f)
        getdelim (&text, &len, '\0', f);
    bool debug = text && strstr (text, "ORDERBUS_DEBUG_UPGRADE_DELAY_MS=500");
    free (text);
    if (f)
        fclose (f);
    if (!debug) {   //  not a Debug build: the switch is not compiled in
        printf ("integration_site: goodbye_upgrading needs a Debug build "
                "(ORDERBUS_DEBUG_UPGRADE_DELAY_MS): skipped\n");
        CHECK (tk_kill (edge, SIGTERM) == 0, "the edge stops");
        return;
    }
    int fd = tk_ws_raw_open (http, "/ws", 0);
    CHECK (fd >= 0, "a WebSocket");
    CHECK (kill (edge, SIGTERM) == 0, "SIGTERM to the edge");
    tk_ws_raw_end_t end;
    tk_ws_raw_drain (fd, 10000, &end);
    close (fd);
    CHECK (end.close_code == 1001, "at SIGTERM mid-upgrade: close %d, not 1001",
           end.close_code);
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (start),
                                     TK_CASE_ENTRY (files),
                                     TK_CASE_ENTRY (never_served),
                                     TK_CASE_ENTRY (websockets),
                                     TK_CASE_ENTRY (goodbye),
                                     TK_CASE_ENTRY (goodbye_upgrading),
                                     { NULL } };

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "integration_site");
    tk_run_cases (s_cases);
    return tk_done ();
}
