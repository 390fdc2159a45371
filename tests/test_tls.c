/*  test_tls — HTTPS and WSS on both HTTP servers (issue 14): real
    processes on loopback, the pair made by `orderbus tls new`.

      cli          tls new writes a key 0600 and a certificate; never over
                   a file without --force, never through a symlink
      gateway      a gateway on TLS (libmicrohttpd, GnuTLS) takes an order
                   over https: 201; a client trusting only the generated
                   certificate verifies it for 127.0.0.1; plain http gets
                   no HTTP answer
      edge         an edge on TLS (libmicrohttpd, GnuTLS; a WebSocket's
                   socket is one end of a pair libmicrohttpd encrypts)
                   delivers that order to a kitchen over wss, serves its
                   pages over https, answers plain http with nothing
      up           `orderbus up` on TLS: a page and the API over https,
                   nothing over plain http
      headers      security headers on API answers, pages and files of
                   each server; HSTS only on TLS
      refusals     a 0644 key, a key of another certificate, a missing
                   certificate: each refused at start,
                   naming the setting and the file, nothing listening
      handshake_deadline  a gateway on TLS cuts a connection that sends
                   no handshake, or half of one, at
                   http/request_deadline_ms
      wss_load     400 orders over https to 4 browsers on wss, pinged every
                   100 ms: each sees every event once, in order  */

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "testkit.h"

#define CHECK TK_CHECK

static char s_intake[TK_ENDPOINT_LEN], s_events[TK_ENDPOINT_LEN],
    s_sync[TK_ENDPOINT_LEN];
static char s_cert[600], s_key[600];   //  made by the cli case
static int s_gw_port, s_edge_port, s_plain_port, s_up_port;

#define S_MORE_ORDERS   40     //  orders after the first, each seen over wss
#define S_DEADLINE_MS   1000   //  handshake_deadline's http/request_deadline_ms
#define S_LOAD_ORDERS   400    //  wss_load's orders...
#define S_LOAD_BROWSERS 4      //  ...and browsers

//  ---------------------------------------------------------------------
//  Helpers

static void
s_path (char *buf, size_t cap, const char *name)
{
    snprintf (buf, cap, "%s/%s", tk_dir (), name);
}

static mode_t
s_mode (const char *path)
{
    struct stat st;
    CHECK (stat (path, &st) == 0, "stat %s: %s", path, strerror (errno));
    return st.st_mode & 07777;
}

//  GET path over TLS with OpenSSL, trusting only the file ca and checking
//  the certificate names 127.0.0.1: the HTTP status, or 0 if the
//  handshake or the verification failed.
static int
s_verified_get (int port, const char *path, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
    CHECK (ctx && SSL_CTX_load_verify_locations (ctx, ca, NULL) == 1,
           "OpenSSL client context with %s", ca);
    SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM_set1_ip_asc (SSL_CTX_get0_param (ctx), "127.0.0.1");
    int fd = tk_tcp_connect (NULL, port);
    SSL *ssl = SSL_new (ctx);
    int status = 0;
    if (fd >= 0 && ssl && SSL_set_fd (ssl, fd) == 1 && SSL_connect (ssl) == 1
        && SSL_get_verify_result (ssl) == X509_V_OK) {
        char request[256], answer[256] = "";
        int len = snprintf (request, sizeof request,
                            "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Connection: close\r\n\r\n",
                            path);
        if (SSL_write (ssl, request, len) == len
            && SSL_read (ssl, answer, sizeof answer - 1) > 12)
            sscanf (answer, "HTTP/1.1 %d", &status);
    }
    ERR_clear_error ();
    SSL_free (ssl);
    SSL_CTX_free (ctx);
    if (fd >= 0)
        close (fd);
    return status;
}

//  Plain HTTP to a TLS port: no HTTP answer comes back
static void
s_plain_refused (int port)
{
    const char *request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Connection: close\r\n\r\n";
    tk_response_t resp;
    tk_http_raw (port, request, strlen (request), &resp);
    CHECK (resp.status == 0 && !strstr (resp.body ? resp.body : "", "HTTP/"),
           "plain http to TLS port %d answered %d: %.80s", port, resp.status,
           resp.body ? resp.body : "");
    tk_response_free (&resp);
}

//  The security headers every answer has; HSTS only if tls
static void
s_security_headers (const tk_response_t *resp, bool tls, const char *what)
{
    char value[512];
    CHECK (tk_header (resp, "X-Content-Type-Options", value, sizeof value)
               && strcmp (value, "nosniff") == 0,
           "%s: X-Content-Type-Options", what);
    CHECK (tk_header (resp, "Content-Security-Policy", value, sizeof value)
               && strstr (value, "script-src 'self'")
               && strstr (value, "frame-ancestors 'none'")
               && !strstr (value, "unsafe-inline"),
           "%s: Content-Security-Policy '%s'", what, value);
    CHECK (tk_header (resp, "Referrer-Policy", value, sizeof value)
               && strcmp (value, "no-referrer") == 0,
           "%s: Referrer-Policy", what);
    bool hsts =
        tk_header (resp, "Strict-Transport-Security", value, sizeof value)
        != NULL;
    CHECK (hsts == tls, "%s: Strict-Transport-Security %s", what,
           hsts ? "sent without TLS" : "missing on TLS");
}

//  `orderbus args...` must fail, its output naming each of wants
static void
s_refused (const char *what, const char *want1, const char *want2, int port,
           ...)
{
    const char *argv[32] = { NULL };
    va_list ap;
    va_start (ap, port);
    int argc = 0;
    while (argc < 31 && (argv[argc] = va_arg (ap, const char *)))
        argc++;
    va_end (ap);
    argv[argc] = NULL;
    char *out = NULL;
    int rc = tk_run (&out, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
                     argv[6], argv[7], argv[8], argv[9], argv[10], argv[11],
                     argv[12], argv[13], argv[14], argv[15], NULL);
    CHECK (rc != 0 && strstr (out, want1) && strstr (out, want2),
           "%s: exit %d, wanted '%s' and '%s' in: %s", what, rc, want1, want2,
           out);
    free (out);
    //  nothing was started: the port takes no connection
    int fd = tk_tcp_connect (NULL, port);
    CHECK (fd < 0, "%s: port %d is listening", what, port);
    if (fd >= 0)
        close (fd);
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (cli)
{
    s_path (s_cert, sizeof s_cert, "server.crt");
    s_path (s_key, sizeof s_key, "server.key");
    char *out = NULL;
    int rc =
        tk_run (&out, "tls", "new", "--cert", s_cert, "--key", s_key, NULL);
    CHECK (rc == 0, "tls new: %d %s", rc, out);
    free (out);
    CHECK (s_mode (s_key) == 0600, "key mode %04o", s_mode (s_key));
    CHECK (s_mode (s_cert) == 0644, "cert mode %04o", s_mode (s_cert));
    //  not again over them
    rc = tk_run (&out, "tls", "new", "--cert", s_cert, "--key", s_key, NULL);
    CHECK (rc == 1 && strstr (out, "exists"), "tls new again: %d %s", rc, out);
    free (out);
    //  not through a symlink, even with --force
    char link[600], target[600], other[600];
    s_path (link, sizeof link, "link.key");
    s_path (target, sizeof target, "target.key");
    s_path (other, sizeof other, "other.crt");
    CHECK (symlink (target, link) == 0, "symlink");
    rc = tk_run (&out, "tls", "new", "--cert", other, "--key", link, "--force",
                 NULL);
    CHECK (rc == 1 && strstr (out, "symbolic link")
               && access (target, F_OK) != 0 && access (other, F_OK) != 0,
           "tls new through a symlink: %d %s", rc, out);
    free (out);
    rc = tk_run (&out, "tls", "new", "--help", NULL);
    CHECK (rc == 0 && strstr (out, "--name") && strstr (out, "--force"),
           "tls new --help: %d %s", rc, out);
    free (out);
    rc = tk_run (&out, "tls", "new", "--cert", other, NULL);
    CHECK (rc == 2 && strstr (out, "--key"), "tls new without --key: %d %s", rc,
           out);
    free (out);
}

TK_CASE (gateway)
{
    tk_endpoints (s_intake, s_events, s_sync);
    char data[600], menu[600], gw[16], plain[16];
    s_path (data, sizeof data, "data");
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    s_gw_port = tk_port ();
    s_plain_port = tk_port ();
    snprintf (gw, sizeof gw, "%d", s_gw_port);
    snprintf (plain, sizeof plain, "%d", s_plain_port);
    tk_spawn ("writer", "writer", "--data", data, "--menu", menu, "--intake",
              s_intake, "--events", s_events, "--sync", s_sync, NULL);
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", gw, "--name", "patio",
              "--tls-cert", s_cert, "--tls-key", s_key, NULL);
    //  the same without TLS, for the headers case
    tk_spawn ("plain", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", plain, "--name", "bar", NULL);
    tk_tls (true);
    CHECK (tk_wait_http (s_gw_port, "/healthz", 200, 15000),
           "gateway on TLS not healthy over https");
    CHECK (s_verified_get (s_gw_port, "/healthz", s_cert) == 200,
           "a client trusting only the generated certificate");
    tk_tls (false);
    CHECK (tk_wait_http (s_plain_port, "/healthz", 200, 15000),
           "plain gateway not healthy");
    s_plain_refused (s_gw_port);
}

TK_CASE (edge)
{
    char edge[16], web[600];
    s_edge_port = tk_port ();
    snprintf (edge, sizeof edge, "%d", s_edge_port);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_spawn ("edge", "edge", "--events", s_events, "--sync", s_sync,
              "--http-port", edge, "--web", web, "--tls-cert", s_cert,
              "--tls-key", s_key, NULL);
    tk_tls (true);
    CHECK (tk_wait_http (s_edge_port, "/healthz", 200, 15000),
           "edge on TLS not healthy over https");
    tk_ws_t *kitchen = tk_ws_open (s_edge_port, "/ws");
    CHECK (kitchen, "wss to the edge");
    json_t *snap = tk_ws_next (kitchen, 5000);
    CHECK (snap
               && strcmp (json_string_value (json_object_get (snap, "type")),
                          "snapshot")
                      == 0,
           "no snapshot over wss");
    json_decref (snap);
    tk_response_t resp;
    tk_post_order (s_gw_port, "tls-order-1",
                   "{\"table\":\"T7\",\"items\":[{\"item_id\":\"burger\","
                   "\"quantity\":1}]}",
                   &resp);
    CHECK (resp.status == 201, "order over https: %d %s", resp.status,
           resp.body ? resp.body : "");
    tk_response_free (&resp);
    json_t *event = tk_ws_next (kitchen, 5000);
    CHECK (event
               && strcmp (json_string_value (json_object_get (event, "type")),
                          "event")
                      == 0,
           "the order's event over wss");
    json_int_t seq = json_integer_value (json_object_get (event, "seq"));
    json_decref (event);
    //  more, written by the fan-out's sender threads through TLS while
    //  the connection's own thread reads: each arrives, in order
    for (int i = 0; i < S_MORE_ORDERS; i++) {
        char key[32], body[128];
        snprintf (key, sizeof key, "tls-order-more-%d", i);
        snprintf (body, sizeof body,
                  "{\"table\":\"T%d\",\"items\":[{\"item_id\":\"fries\","
                  "\"quantity\":1}]}",
                  i + 10);
        tk_post_order (s_gw_port, key, body, &resp);
        CHECK (resp.status == 201, "order %d over https: %d", i, resp.status);
        tk_response_free (&resp);
    }
    for (int i = 0; i < S_MORE_ORDERS; i++) {
        event = tk_ws_next (kitchen, 5000);
        json_int_t next = json_integer_value (json_object_get (event, "seq"));
        CHECK (event && next == seq + 1,
               "event %d over wss: seq %lld after %lld", i, (long long) next,
               (long long) seq);
        seq = next;
        json_decref (event);
    }
    tk_ws_close (&kitchen);
    CHECK (s_verified_get (s_edge_port, "/kitchen", s_cert) == 200,
           "the kitchen page to a client trusting only the certificate");
    tk_tls (false);
    s_plain_refused (s_edge_port);
}

TK_CASE (up)
{
    char data[600], port[16];
    s_path (data, sizeof data, "up-data");
    s_up_port = tk_port ();
    snprintf (port, sizeof port, "%d", s_up_port);
    tk_spawn ("up", "up", "--data", data, "--http-port", port, "--tls-cert",
              s_cert, "--tls-key", s_key, NULL);
    tk_tls (true);
    CHECK (tk_wait_http (s_up_port, "/healthz", 200, 15000),
           "up on TLS not healthy over https");
    tk_response_t resp;
    tk_http (s_up_port, "GET", "/pad", NULL, NULL, &resp);
    CHECK (resp.status == 200 && strstr (resp.body, "<html"),
           "a page over https: %d", resp.status);
    tk_response_free (&resp);
    //  up has its own secret: the API answers, and refuses the kit's token
    tk_http (s_up_port, "GET", "/api/v1/menu", NULL, NULL, &resp);
    CHECK (resp.status == 200 || resp.status == 401, "the API over https: %d",
           resp.status);
    CHECK (resp.json != NULL, "the API's JSON over https");
    tk_response_free (&resp);
    tk_tls (false);
    s_plain_refused (s_up_port);
}

TK_CASE (headers)
{
    struct {
        int port;
        const char *path;
        bool tls;
        const char *what;
    } answers[] = {
        { s_gw_port, "/api/v1/menu", true, "gateway API, TLS" },
        { s_gw_port, "/nothing", true, "gateway 404, TLS" },
        { s_plain_port, "/api/v1/menu", false, "gateway API, plain" },
        { s_edge_port, "/kitchen", true, "edge page" },
        { s_edge_port, "/kitchen.js", true, "edge static file" },
        { s_edge_port, "/", true, "edge redirect" },
        { s_edge_port, "/healthz", true, "edge /healthz" },
        { s_up_port, "/api/v1/stats", true, "up API" },
        { s_up_port, "/common.css", true, "up static file" },
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        tk_tls (answers[i].tls);
        tk_response_t resp;
        tk_http (answers[i].port, "GET", answers[i].path, NULL, NULL, &resp);
        CHECK (resp.status != 0, "%s: no answer", answers[i].what);
        s_security_headers (&resp, answers[i].tls, answers[i].what);
        tk_response_free (&resp);
    }
    tk_tls (false);
}

TK_CASE (refusals)
{
    char loose[600], other_cert[600], other_key[600], port[16];
    snprintf (port, sizeof port, "%d", tk_port ());
    int port_n = atoi (port);
    //  a key others may read
    s_path (loose, sizeof loose, "loose.key");
    char *out = NULL;
    char loose_cert[600];
    s_path (loose_cert, sizeof loose_cert, "loose.crt");
    int rc =
        tk_run (&out, "tls", "new", "--cert", loose_cert, "--key", loose, NULL);
    CHECK (rc == 0, "tls new: %s", out);
    free (out);
    CHECK (chmod (loose, 0644) == 0, "chmod");
    s_refused ("gateway, key 0644", "tls/key", "mode 0600", port_n, "gateway",
               "--intake", s_intake, "--events", s_events, "--sync", s_sync,
               "--http-port", port, "--tls-cert", loose_cert, "--tls-key",
               loose, NULL);
    s_refused ("edge, key 0644", "tls/key", loose, port_n, "edge", "--events",
               s_events, "--sync", s_sync, "--http-port", port, "--tls-cert",
               loose_cert, "--tls-key", loose, NULL);
    //  a key that is not the certificate's
    s_path (other_cert, sizeof other_cert, "other2.crt");
    s_path (other_key, sizeof other_key, "other2.key");
    rc = tk_run (&out, "tls", "new", "--cert", other_cert, "--key", other_key,
                 NULL);
    CHECK (rc == 0, "tls new: %s", out);
    free (out);
    s_refused ("gateway, mismatched", "is not the key of tls/cert", other_key,
               port_n, "gateway", "--intake", s_intake, "--events", s_events,
               "--sync", s_sync, "--http-port", port, "--tls-cert", s_cert,
               "--tls-key", other_key, NULL);
    s_refused ("edge, mismatched", "is not the key of tls/cert", other_key,
               port_n, "edge", "--events", s_events, "--sync", s_sync,
               "--http-port", port, "--tls-cert", s_cert, "--tls-key",
               other_key, NULL);
    //  a certificate that is not there; a key without a certificate
    s_refused ("gateway, no cert file", "tls/cert", "/nonexistent.crt", port_n,
               "gateway", "--intake", s_intake, "--events", s_events, "--sync",
               s_sync, "--http-port", port, "--tls-cert", "/nonexistent.crt",
               "--tls-key", s_key, NULL);
    s_refused ("edge, key only", "needs both", "tls/cert", port_n, "edge",
               "--events", s_events, "--sync", s_sync, "--http-port", port,
               "--tls-key", s_key, NULL);
}

//  Is fd closed by the server within ms?  (EOF or a reset; data is not
//  expected from a server waiting for a handshake)
static bool
s_closed_within (int fd, int ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    char byte;
    return poll (&pfd, 1, ms) == 1 && recv (fd, &byte, 1, 0) <= 0;
}

TK_CASE (handshake_deadline)
{
    char port[16], deadline[16];
    int port_n = tk_port ();
    snprintf (port, sizeof port, "%d", port_n);
    snprintf (deadline, sizeof deadline, "%d", S_DEADLINE_MS);
    tk_spawn ("slow-gw", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", port, "--name", "slow",
              "--request-deadline-ms", deadline, "--tls-cert", s_cert,
              "--tls-key", s_key, NULL);
    tk_tls (true);
    CHECK (tk_wait_http (port_n, "/healthz", 200, 15000),
           "gateway on TLS not healthy");
    tk_tls (false);
    //  one says nothing, one stops inside its ClientHello
    int silent = tk_tcp_connect (NULL, port_n);
    int half = tk_tcp_connect (NULL, port_n);
    const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x00, 0xc8, 0x01 };
    CHECK (silent >= 0 && half >= 0
               && send (half, hello, sizeof hello, MSG_NOSIGNAL)
                      == (ssize_t) sizeof hello,
           "connect to the gateway");
    int64_t start = tk_now_ms ();
    CHECK (s_closed_within (silent, 3 * S_DEADLINE_MS),
           "a connection with no handshake still open after %d ms",
           3 * S_DEADLINE_MS);
    CHECK (s_closed_within (half, 3 * S_DEADLINE_MS),
           "a half handshake still open after %d ms", 3 * S_DEADLINE_MS);
    CHECK (tk_now_ms () - start >= S_DEADLINE_MS / 2,
           "cut before the deadline: %lld ms",
           (long long) (tk_now_ms () - start));
    close (silent);
    close (half);
}

//  Browsers on wss under load: an edge pinging them every 100 ms, so the
//  connections' own threads read (their pongs) while the fan-out's
//  senders write events to the same TLS connections; four clients place
//  orders over https.  Every browser sees every event once, in order,
//  without a reconnect.
TK_CASE (wss_load)
{
    char port[16], web[600];
    int port_n = tk_port ();
    snprintf (port, sizeof port, "%d", port_n);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    tk_spawn ("edge-load", "edge", "--events", s_events, "--sync", s_sync,
              "--http-port", port, "--web", web, "--ws-ping-ms", "100",
              "--tls-cert", s_cert, "--tls-key", s_key, NULL);
    tk_tls (true);
    CHECK (tk_wait_http (port_n, "/healthz", 200, 15000),
           "edge on TLS not healthy");
    tk_follower_t *browsers[S_LOAD_BROWSERS];
    for (int i = 0; i < S_LOAD_BROWSERS; i++) {
        char name[32];
        snprintf (name, sizeof name, "wss browser %d", i);
        browsers[i] = tk_follower_new (port_n, name);
        CHECK (tk_follower_wait (browsers[i], 0, 10000), "%s: no snapshot",
               name);
    }
    tk_ledger_t *ledger = tk_ledger_new ();
    tk_load_opts_t opts = { .ports = &s_gw_port,
                            .port_count = 1,
                            .threads = 4,
                            .prefix = "wss",
                            .lines = 2,
                            .max_orders = S_LOAD_ORDERS,
                            .retry_ms = 30000 };
    tk_load_t *load = tk_load_start (ledger, &opts);
    tk_load_join (&load);
    tk_tally_t tally;
    CHECK (tk_ledger_tally (ledger, s_gw_port, 1000, &tally),
           "orders could be listed");
    CHECK (tally.acked == S_LOAD_ORDERS && tally.lost == 0
               && tally.duplicates == 0 && tally.unresolved == 0,
           "%zu of %d orders acknowledged over https (lost %zu)", tally.acked,
           S_LOAD_ORDERS, tally.lost);
    for (int i = 0; i < S_LOAD_BROWSERS; i++) {
        tk_follower_wait (browsers[i], tally.max_seq, 20000);
        tk_follower_stop (browsers[i]);
        tk_follower_print ("integration_tls", browsers[i]);
        tk_follow_stats_t st;
        tk_follower_stats (browsers[i], &st);
        CHECK (st.last == tally.max_seq && st.events >= S_LOAD_ORDERS
                   && st.gaps == 0 && st.duplicates == 0 && st.reconnects == 0
                   && st.snapshots == 0 && st.errors == 0,
               "browser %d over wss: last %lld of %lld, %zu events, gaps "
               "%zu, duplicates %zu, reconnects %zu, errors %zu",
               i, (long long) st.last, (long long) tally.max_seq, st.events,
               st.gaps, st.duplicates, st.reconnects, st.errors);
        tk_follower_destroy (&browsers[i]);
    }
    tk_ledger_destroy (&ledger);
    tk_tls (false);
}

static const tk_case_t s_cases[] = {
    TK_CASE_ENTRY (cli),
    TK_CASE_ENTRY (gateway),
    TK_CASE_ENTRY (edge),
    TK_CASE_ENTRY (up),
    TK_CASE_ENTRY (headers),
    TK_CASE_ENTRY (refusals),
    TK_CASE_ENTRY (handshake_deadline),
    TK_CASE_ENTRY (wss_load),
    { NULL, NULL },
};

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "tls");
    tk_run_cases (s_cases);
    return tk_done ();
}
