/*  bus_mhd_site.c — what an edge serves beside routes: its WebSocket
    endpoints, its pages (/kitchen is <web>/kitchen.html), redirects, and
    the static files under the web root (/kitchen.js), on libmicrohttpd.

    Endpoints are put on the site before the server starts and never
    change, so the event threads read them without a lock.

    Static files: only GET and HEAD, only regular files, and never a
    path with a segment that starts with '.' (no "..", no hidden files)
    or one that goes through a symbolic link: a file is opened with
    openat2 beneath the web root's directory, refusing links at any
    level (Linux 5.6; elsewhere nothing is served from the root, and the
    log says why).  Opening never blocks (a FIFO put there would hold
    the event thread).  Screens run all shift and must
    fetch new pages after an upgrade, so every file is sent with an ETag
    (its mtime and size) and "Cache-Control: no-cache": the browser asks
    again each time and mostly gets a 304.  */

#include <assert.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ctype.h>
#include <stdatomic.h>
#include <czmq.h>
#include "bus_mhd_private.h"

#define S_ENDPOINTS_MAX 16
#define S_PATH_MAX      128

typedef enum { S_WEBSOCKET, S_PAGE, S_REDIRECT } s_kind_t;

typedef struct {
    s_kind_t kind;
    char path[S_PATH_MAX];   //  exact; '*' is one non-empty segment
    const bus_http_ws_handler_t *handler;   //  a WebSocket's
    const char *text;   //  a page's root, a redirect's location
} s_endpoint_t;

struct _bus_mhd_site_t {
    char web_root[BUS_PATH_MAX];
    int root_fd;        //  the web root's directory, -1 if none
    bool ignore_case;   //  up's paths, as civetweb matched them
    s_endpoint_t endpoints[S_ENDPOINTS_MAX];
    int endpoint_count;
    bus_mhd_ws_hub_t *hub;
};

bus_mhd_site_t *
bus_mhd_site_new (const bus_config_t *config)
{
    bus_mhd_site_t *self = calloc (1, sizeof *self);
    if (self)
        self->hub = bus_mhd_ws_hub_new (config);
    if (!self || !self->hub) {
        free (self);
        return NULL;
    }
    snprintf (self->web_root, sizeof self->web_root, "%s", config->web_root);
    self->root_fd =
        config->web_root[0]
            ? open (config->web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            : -1;
    if (config->web_root[0] && self->root_fd < 0)
        zsys_warning ("http: cannot open the web root %s (%s): no pages or "
                      "files will be served",
                      config->web_root, strerror (errno));
    self->ignore_case = config->role == BUS_ROLE_UP;
    return self;
}

void
bus_mhd_site_destroy (bus_mhd_site_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_mhd_ws_hub_destroy (&(*self_p)->hub);
    if ((*self_p)->root_fd >= 0)
        close ((*self_p)->root_fd);
    free (*self_p);
    *self_p = NULL;
}

bool
bus_mhd_site_stop (bus_mhd_site_t *self, int wait_ms)
{
    return bus_mhd_ws_hub_stop (self->hub, wait_ms);
}

void
bus_mhd_site_abandon (bus_mhd_site_t *self, uint64_t pending)
{
    if (pending)
        bus_mhd_ws_abandon (self->hub, pending);
}

//  ---------------------------------------------------------------------
//  Putting endpoints on the site (bus_http_ws_router_t)

static void
s_add (bus_mhd_site_t *self, s_kind_t kind, const char *path,
       const bus_http_ws_handler_t *handler, const char *text)
{
    //  The edge's own few paths: running out is a bug, not bad input
    assert (self->endpoint_count < S_ENDPOINTS_MAX
            && strlen (path) < S_PATH_MAX);
    s_endpoint_t *endpoint = &self->endpoints[self->endpoint_count++];
    endpoint->kind = kind;
    snprintf (endpoint->path, sizeof endpoint->path, "%s", path);
    endpoint->handler = handler;
    endpoint->text = text;
}

static void
s_websocket_add (void *server, const char *path,
                 const bus_http_ws_handler_t *handler)
{
    s_add ((bus_mhd_site_t *) server, S_WEBSOCKET, path, handler, NULL);
}

static void
s_page_add (void *server, const char *path, const char *root)
{
    bus_mhd_site_t *self = (bus_mhd_site_t *) server;
    //  Pages are served from the web root, under its protections
    assert (streq (root, self->web_root));
    s_add (self, S_PAGE, path, NULL, root);
}

static void
s_redirect_add (void *server, const char *path, const char *location)
{
    s_add ((bus_mhd_site_t *) server, S_REDIRECT, path, NULL, location);
}

bus_http_ws_router_t
bus_mhd_site_router (bus_mhd_site_t *self)
{
    return (bus_http_ws_router_t){ s_websocket_add, s_page_add, s_redirect_add,
                                   self };
}

//  ---------------------------------------------------------------------
//  Serving

//  Does path match pattern, segment by segment ('*': any one non-empty)?
static bool
s_matches (const char *pattern, const char *path, bool ignore_case)
{
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t seg = strcspn (path, "/");
            if (seg == 0)
                return false;
            path += seg;
            pattern++;
        } else if (ignore_case ? tolower ((unsigned char) *pattern++)
                                     != tolower ((unsigned char) *path++)
                               : *pattern++ != *path++)
            return false;
    }
    return !*pattern && !*path;
}

//  A file's type, by its extension; what the web root holds.
static const char *
s_content_type (const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "application/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
        { ".txt", "text/plain; charset=utf-8" },
        { ".md", "text/plain; charset=utf-8" },
        { ".webmanifest", "application/manifest+json" },
        { ".woff2", "font/woff2" },
    };
    const char *dot = strrchr (path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp (dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

//  May path be looked for under the web root?  No empty, hidden or
//  parent segment, nothing but printable ASCII.
static bool
s_safe_path (const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f
            || *p == '\\' || (p[0] == '/' && (p[1] == '.' || p[1] == '/')))
            return false;
    return true;
}

//  Open path (relative) beneath the directory root_fd, never through a
//  symbolic link, never blocking.  The descriptor, or -1.
static int
s_open_beneath (int root_fd, const char *path)
{
    struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
                                       | RESOLVE_NO_MAGICLINKS };
    int fd = (int) syscall (SYS_openat2, root_fd, path, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) {
        static atomic_flag logged = ATOMIC_FLAG_INIT;
        if (!atomic_flag_test_and_set (&logged))
            zsys_error ("http: this kernel has no openat2 (Linux 5.6): no "
                        "files are served from the web root");
    }
    return fd;
}

//  The file at path + suffix under the web root, or BUS_MHD_SITE_NONE if
//  there is none to send.  A request whose ETag still matches gets 304,
//  with the length the 200 would have (RFC 9110 8.6) and no body.
static int
s_send_file (bus_mhd_site_t *self, struct MHD_Connection *conn,
             const char *path, const char *suffix,
             struct MHD_Response **response, unsigned *status)
{
    char file[S_PATH_MAX + 16];
    int len = snprintf (file, sizeof file, "%s%s", path + 1, suffix);
    if (self->root_fd < 0 || len <= 0 || (size_t) len >= sizeof file)
        return BUS_MHD_SITE_NONE;
    int fd = s_open_beneath (self->root_fd, file);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
        if (fd >= 0)
            close (fd);
        return BUS_MHD_SITE_NONE;
    }
    char etag[64];
    snprintf (etag, sizeof etag, "\"%llx-%llx\"",
              (unsigned long long) st.st_mtime,
              (unsigned long long) st.st_size);
    const char *asked =
        MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "If-None-Match");
    *response = MHD_create_response_from_fd ((uint64_t) st.st_size, fd);
    if (!*response) {
        close (fd);
        return BUS_MHD_SITE_NONE;
    }
    MHD_add_response_header (*response, "Content-Type", s_content_type (file));
    MHD_add_response_header (*response, "ETag", etag);
    MHD_add_response_header (*response, "Cache-Control", "no-cache");
    *status =
        asked && streq (asked, etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    return BUS_MHD_SITE_RESPONSE;
}

static int
s_redirect (const char *location, struct MHD_Response **response,
            unsigned *status)
{
    *response =
        MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!*response)
        return BUS_MHD_SITE_NONE;
    MHD_add_response_header (*response, "Location", location);
    *status = MHD_HTTP_FOUND;
    return BUS_MHD_SITE_RESPONSE;
}

int
bus_mhd_site_endpoint (bus_mhd_site_t *self, struct MHD_Connection *conn,
                       bus_req_t *req, const char *version,
                       struct MHD_Response **response, unsigned *status,
                       uint64_t *pending)
{
    const s_endpoint_t *endpoint = NULL;
    for (int i = 0; i < self->endpoint_count && !endpoint; i++)
        if (s_matches (self->endpoints[i].path, req->path, self->ignore_case))
            endpoint = &self->endpoints[i];
    if (!endpoint)
        return BUS_MHD_SITE_NONE;
    if (endpoint->kind == S_WEBSOCKET)
        return bus_mhd_ws_upgrade (self->hub, conn, req, version,
                                   endpoint->handler, response, status,
                                   pending);
    //  Pages and redirects answer any method as GET (docs/openapi.json)
    if (endpoint->kind == S_REDIRECT)
        return s_redirect (endpoint->text, response, status);
    //  Pages live in the web root (the edge's `root` is config's web root)
    char path[S_PATH_MAX];
    snprintf (path, sizeof path, "%s", endpoint->path);
    return s_send_file (self, conn, path, ".html", response, status);
}

int
bus_mhd_site_file (bus_mhd_site_t *self, struct MHD_Connection *conn,
                   bus_req_t *req, struct MHD_Response **response,
                   unsigned *status)
{
    if (!self->web_root[0]
        || !(streq (req->method, "GET") || streq (req->method, "HEAD"))
        || !s_safe_path (req->path))
        return BUS_MHD_SITE_NONE;
    return s_send_file (self, conn, req->path, "", response, status);
}
