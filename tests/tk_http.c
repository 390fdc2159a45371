/*  tk_http.c — the testkit's HTTP: requests through civetweb's client,
    raw bytes over a plain socket, JSON answers and order bodies.  */

#define _GNU_SOURCE   //  strcasestr, memmem
#include <civetweb.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <dlfcn.h>
#include "tk_internal.h"

//  ---------------------------------------------------------------------
//  HTTP

static bool s_tls;   //  tk_tls: the kit's clients speak TLS

//  Debian's civetweb 1.15 loads OpenSSL itself, at run time, with
//  dlopen ("libssl.so") and dlopen ("libcrypto.so"), and takes its
//  functions from them by name.  OpenSSL 3 lacks one of those names
//  (SSL_get_peer_certificate is a macro there): civetweb keeps a NULL
//  pointer for it and its first TLS connection calls it; and the two
//  unversioned names exist only where libssl-dev is installed.  So the
//  kit builds two shims (tests/tls_shim/), whose SONAMEs are those
//  names, which need libssl.so.3 and libcrypto.so.3, and the first of
//  which defines the missing function.  They are loaded here by full
//  path before civetweb starts TLS: glibc's dlopen matches a name
//  without a slash against the SONAMEs of what is loaded, so civetweb
//  gets the shims, and its dlsym finds the rest in OpenSSL 3 through
//  their dependencies.  (The nodes serve TLS with libmicrohttpd and
//  GnuTLS; only the kit's civetweb client needs this.)
static bool
s_civetweb_tls (void)
{
    static bool ready;
    const char *shims[] = { TK_TLS_SHIM_DIR "/orderbus-crypto-shim.so",
                            TK_TLS_SHIM_DIR "/orderbus-ssl-shim.so" };
    for (int i = 0; i < 2 && !ready; i++)
        TK_CHECK (dlopen (shims[i], RTLD_NOW | RTLD_GLOBAL),
                  "the kit's OpenSSL shim: %s", dlerror ());
    if (!ready)
        ready = mg_init_library (MG_FEATURES_TLS) & MG_FEATURES_TLS;
    return ready;
}

void
tk_tls (bool on)
{
    TK_CHECK (!on || s_civetweb_tls (),
              "civetweb's TLS could not load OpenSSL through the shims");
    s_tls = on;
}

int
tk__tls (void)
{
    return s_tls ? 1 : 0;
}

static void
s_read_response (struct mg_connection *conn, tk_response_t *resp)
{
    const struct mg_response_info *info = mg_get_response_info (conn);
    resp->status = info->status_code;
    size_t hcap = 4096, hlen = 0;
    resp->headers = calloc (1, hcap);
    for (int i = 0; i < info->num_headers; i++)
        hlen += (size_t) snprintf (resp->headers + hlen, hcap - hlen,
                                   "%s: %s\n", info->http_headers[i].name,
                                   info->http_headers[i].value);
    size_t cap = 4096, len = 0;
    resp->body = malloc (cap);
    int n;
    while ((n = mg_read (conn, resp->body + len, cap - len - 1)) > 0) {
        len += (size_t) n;
        if (cap - len < 2)
            resp->body = realloc (resp->body, cap *= 2);
    }
    resp->body[len] = '\0';
    resp->json = json_loadb (resp->body, len, 0, NULL);
}

void
tk_http (int port, const char *method, const char *path, const char *headers,
         const char *body, tk_response_t *resp)
{
    memset (resp, 0, sizeof *resp);
    char err[256] = "";
    struct mg_connection *conn = mg_connect_client (
        tk__port_addr (port), port, tk__tls (), err, sizeof err);
    if (!conn)
        return;
    //  The kit's token, unless the test brings its own (tk__auth_token)
    const char *token = tk__auth_token (port);
    if (headers && strcasestr (headers, "Authorization:"))
        token = NULL;
    mg_printf (conn,
               "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
               "%s%s%s%s",
               method, path, tk__port_addr (port), port,
               token ? "Authorization: Bearer " : "", token ? token : "",
               token ? "\r\n" : "", headers ? headers : "");
    if (body)
        mg_printf (conn, "Content-Length: %zu\r\n\r\n", strlen (body)),
            mg_write (conn, body, strlen (body));
    else
        mg_printf (conn, "\r\n");
    if (mg_get_response (conn, err, sizeof err, 15000) >= 0)
        s_read_response (conn, resp);
    mg_close_connection (conn);
}

void
tk_response_free (tk_response_t *resp)
{
    free (resp->body);
    free (resp->headers);
    json_decref (resp->json);
    memset (resp, 0, sizeof *resp);
}

const char *
tk_header (const tk_response_t *resp, const char *name, char *buf, size_t cap)
{
    size_t n = strlen (name);
    for (const char *line = resp->headers; line && *line;) {
        const char *end = strchr (line, '\n');
        if (strncasecmp (line, name, n) == 0 && line[n] == ':') {
            snprintf (buf, cap, "%.*s", (int) (end - line - n - 2),
                      line + n + 2);
            return buf;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

void
tk_post_order (int port, const char *key, const char *body, tk_response_t *resp)
{
    char headers[300];
    snprintf (headers, sizeof headers,
              "Content-Type: application/json\r\nIdempotency-Key: %s\r\n", key);
    tk_http (port, "POST", "/api/v1/orders", headers, body, resp);
}

bool
tk_wait_http (int port, const char *path, int want_status, int timeout_ms)
{
    for (int64_t end = tk_now_ms () + timeout_ms; tk_now_ms () < end;
         usleep (50000)) {
        tk_response_t resp;
        tk_http (port, "GET", path, NULL, NULL, &resp);
        int status = resp.status;
        tk_response_free (&resp);
        if (status == want_status)
            return true;
    }
    return false;
}

json_t *
tk_get_json (int port, const char *path, int want_status)
{
    tk_response_t r;
    tk_http (port, "GET", path, NULL, NULL, &r);
    json_t *json =
        r.status == want_status && r.json ? json_incref (r.json) : NULL;
    tk_response_free (&r);
    return json;
}

json_int_t
tk_json_int (json_t *json, const char *path)
{
    char name[128];
    while (json && *path) {
        size_t n = strcspn (path, ".");
        snprintf (name, sizeof name, "%.*s", (int) n, path);
        json = json_object_get (json, name);
        path += n + (path[n] == '.');
    }
    return json_is_integer (json) ? json_integer_value (json) : -1;
}

//  A TCP connection to port's address (tk__port_addr) from address from
//  (NULL: any), -1 on failure.  rcvbuf > 0 sets SO_RCVBUF first (it must be set before
//  connecting to bound the window).
static int
s_tcp_connect (const char *from, int port, int rcvbuf)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in source = { .sin_family = AF_INET };
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) port) };
    if (inet_pton (AF_INET, tk__port_addr (port), &addr.sin_addr) != 1
        || (from
            && (inet_pton (AF_INET, from, &source.sin_addr) != 1
                || bind (fd, (struct sockaddr *) &source, sizeof source) != 0))
        || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

//  Ports the kit's clients reach at another address than 127.0.0.1 (nodes
//  in the rig's hosts, tk_netns.c).  Written by one thread before the
//  count that publishes a row; read from any.
#define S_PORT_ADDRS 128
static struct {
    int port;
    char addr[INET_ADDRSTRLEN];
} s_port_addrs[S_PORT_ADDRS];
static _Atomic int s_port_addr_count;

void
tk_port_addr (int port, const char *addr)
{
    int count = atomic_load (&s_port_addr_count);
    int i = 0;
    while (i < count && s_port_addrs[i].port != port)
        i++;
    TK_CHECK (i < S_PORT_ADDRS, "too many ports with an address");
    snprintf (s_port_addrs[i].addr, sizeof s_port_addrs[i].addr, "%s", addr);
    s_port_addrs[i].port = port;
    if (i == count)
        atomic_store (&s_port_addr_count, count + 1);
}

const char *
tk__port_addr (int port)
{
    int count = atomic_load (&s_port_addr_count);
    for (int i = 0; i < count; i++)
        if (s_port_addrs[i].port == port)
            return s_port_addrs[i].addr;
    return "127.0.0.1";
}

int
tk__tcp_connect (int port, int rcvbuf)
{
    return s_tcp_connect (NULL, port, rcvbuf);
}

int
tk_tcp_connect (const char *from, int port)
{
    return s_tcp_connect (from, port, 0);
}

int
tk__send_all (int fd, const void *data, size_t len)
{
    const char *p = (const char *) data;
    while (len > 0) {
        ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

//  bytes with the kit's token in an Authorization header after the
//  request line, if port has one (tk__auth_token) and bytes are an HTTP
//  request that has none: a new buffer (caller frees) and its length in
//  *out_len, or NULL to send bytes as they are.
static char *
s_raw_with_token (int port, const char *bytes, size_t len, size_t *out_len)
{
    const char *token = tk__auth_token (port);
    const char *line_end = memmem (bytes, len, "\r\n", 2);
    size_t method = 0;   //  the request line starts "METHOD /"
    while (method < len && bytes[method] >= 'A' && bytes[method] <= 'Z')
        method++;
    const char *head_end = memmem (bytes, len, "\r\n\r\n", 4);
    if (!token || !line_end || method == 0 || method + 1 >= len
        || bytes[method] != ' ' || bytes[method + 1] != '/'
        || (head_end
            && memmem (bytes, (size_t) (head_end - bytes),
                       "\nAuthorization:", 15)))
        return NULL;
    char header[700];
    int n =
        snprintf (header, sizeof header, "Authorization: Bearer %s\r\n", token);
    size_t split = (size_t) (line_end - bytes) + 2;
    char *copy = malloc (len + (size_t) n);
    memcpy (copy, bytes, split);
    memcpy (copy + split, header, (size_t) n);
    memcpy (copy + split + n, bytes + split, len - split);
    *out_len = len + (size_t) n;
    return copy;
}

void
tk_http_raw (int port, const void *bytes, size_t len, tk_response_t *resp)
{
    memset (resp, 0, sizeof *resp);
    resp->body = calloc (1, 1);
    resp->headers = calloc (1, 1);
    int fd = tk__tcp_connect (port, 0);
    if (fd < 0)
        return;
    struct timeval tv = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t signed_len = 0;
    char *with_token = s_raw_with_token (port, bytes, len, &signed_len);
    //  the server may close before all is sent
    if (with_token)
        tk__send_all (fd, with_token, signed_len);
    else
        tk__send_all (fd, bytes, len);
    free (with_token);
    size_t cap = 4096, used = 0;
    char *buf = malloc (cap);
    ssize_t n;
    while ((n = recv (fd, buf + used, cap - used - 1, 0)) > 0) {
        used += (size_t) n;
        if (cap - used < 2)
            buf = realloc (buf, cap *= 2);
        buf[used] = '\0';
        //  A whole response is in: the server may keep the connection
        //  open (waiting for a body it was promised), so stop here
        char *end = strstr (buf, "\r\n\r\n");
        const char *length = NULL;
        for (char *p = buf; end && p < end && !length; p++)
            if (strncasecmp (p, "\r\nContent-Length:", 17) == 0)
                length = p + 17;
        if (length
            && used >= (size_t) (end + 4 - buf) + strtoul (length, NULL, 10))
            break;
    }
    buf[used] = '\0';
    close (fd);
    int status;
    if (sscanf (buf, "HTTP/1.%*d %d", &status) == 1)
        resp->status = status;
    char *body = strstr (buf, "\r\n\r\n");
    if (body) {
        free (resp->headers);
        resp->headers = strndup (buf, (size_t) (body - buf));
        free (resp->body);
        resp->body = strdup (body + 4);
        resp->json = json_loads (resp->body, 0, NULL);
    }
    free (buf);
}

char *
tk_order_body (const char *table, int lines, bool long_notes, int variant)
{
    static const char *const items[] = { "burger",  "fries",   "caesar",
                                         "soup",    "salmon",  "chicken",
                                         "risotto", "calamari" };
    char note[272];
    memset (note, 'n', 270);
    note[270] = '\0';
    size_t cap = 512 + (size_t) lines * 400, len = 0;
    char *body = malloc (cap);
    len += (size_t) snprintf (body + len, cap - len,
                              "{\"table\":\"%s\",\"items\":[", table);
    for (int i = 0; i < lines; i++) {
        note[0] = (char) ('a' + (variant + i) % 26);   //  notes differ too
        len += (size_t) snprintf (
            body + len, cap - len,
            "%s{\"item_id\":\"%s\",\"quantity\":%d%s%s%s}", i ? "," : "",
            items[(i + variant) % 8], (variant + i) % 9 + 1,
            long_notes ? ",\"note\":\"" : "", long_notes ? note : "",
            long_notes ? "\"" : "");
    }
    snprintf (body + len, cap - len, "]}");
    return body;
}
