/*  bus_curve_test.c — selftest of bus_curve: endpoints that count as
    local, certificate files and allow directories (good and each kind of
    bad), what bus_curve_new refuses, and real CURVE links on loopback: a
    known key gets through with its name, an unknown key, a plain socket
    and a client pinning the wrong writer key do not, and each refusal is
    counted.  And bus_sync's pooled sockets, which the watches keep
    usable: one whose handshake a plaintext process refused is replaced,
    and the next call after the writer is back is answered.  */

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_sync.h"

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

static void
s_copy (const char *from, const char *to)
{
    zchunk_t *chunk = zchunk_slurp (from, 0);
    assert (chunk);
    FILE *file = fopen (to, "w");
    assert (file);
    fwrite (zchunk_data (chunk), 1, zchunk_size (chunk), file);
    fclose (file);
    zchunk_destroy (&chunk);
}

static void
s_remove_tree (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir) {
        unlink (path);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, "..")) {
            char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
            s_remove_tree (child);
            zstr_free (&child);
        }
    closedir (dir);
    rmdir (path);
}

static void
s_expect (int rc, const char *err, const char *what, bool verbose)
{
    if (verbose)
        printf ("  refused: %s\n", err);
    assert (rc != 0);
    assert (strstr (err, what));
}

static void
s_test_endpoints (void)
{
    const char *local[] = { "inproc://x",
                            "ipc:///tmp/x",
                            "tcp://127.0.0.1:5",
                            "tcp://127.9.9.9:1",
                            "tcp://[::1]:5",
                            "tcp://localhost:5",
                            "tcp://10.0.0.1;127.0.0.1:5" };
    const char *remote[] = { "tcp://0.0.0.0:5555", "tcp://*:5555",
                             "tcp://10.0.0.5:5",   "tcp://[::]:5",
                             "tcp://eth0:5",       "tcp://lo:5",
                             "tcp://128.0.0.1:5",  "tcp://127.0.0.1;10.0.0.1:5",
                             "tcp://127.0.0.1",    "pgm://x" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        assert (bus_curve_endpoint_local (local[i]));
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
        assert (!bus_curve_endpoint_local (remote[i]));
}

static void
s_test_roles (void)
{
    bus_curve_role_t role;
    assert (bus_curve_role_parse ("edge", &role) == 0
            && role == BUS_CURVE_EDGE);
    assert (bus_curve_role_parse ("Edge", &role) != 0);
    assert (bus_curve_role_parse (NULL, &role) != 0);
    assert (streq (bus_curve_role_name (BUS_CURVE_REPLICA), "replica"));
    assert (streq (bus_curve_role_name ((bus_curve_role_t) 9), "unknown"));
}

//  Keys for writer w, gateways gw-a and gw-b, edge e1 in dir/keys
static void
s_test_keys (const char *dir, bus_curve_peer_t *w, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_curve_peer_t peer;
    char *keys = zsys_sprintf ("%s/keys", dir);
    assert (mkdir (keys, 0700) == 0);
    assert (bus_curve_keys_new (keys, "w", BUS_CURVE_WRITER, w, err, sizeof err)
            == 0);
    assert (strlen (w->key) == 40 && streq (w->name, "w"));
    const char *names[] = { "gw-a", "gw-b", "e1" };
    bus_curve_role_t roles[] = { BUS_CURVE_GATEWAY, BUS_CURVE_GATEWAY,
                                 BUS_CURVE_EDGE };
    for (int i = 0; i < 3; i++)
        assert (bus_curve_keys_new (keys, names[i], roles[i], &peer, err,
                                    sizeof err)
                == 0);
    struct stat info;
    char *path = zsys_sprintf ("%s/w.cert_secret", keys);
    assert (stat (path, &info) == 0 && (info.st_mode & 0777) == 0600);
    zstr_free (&path);
    path = zsys_sprintf ("%s/w.cert", keys);
    assert (stat (path, &info) == 0 && (info.st_mode & 0777) == 0644);
    zstr_free (&path);

    //  an existing pair is never overwritten; a bad name makes nothing
    int rc = bus_curve_keys_new (keys, "w", BUS_CURVE_WRITER, &peer, err,
                                 sizeof err);
    s_expect (rc, err, "File exists", verbose);
    rc = bus_curve_keys_new (keys, "a/b", BUS_CURVE_EDGE, &peer, err,
                             sizeof err);
    s_expect (rc, err, "name must be", verbose);
    path = zsys_sprintf ("%s/nowhere", dir);
    rc = bus_curve_keys_new (path, "x", BUS_CURVE_EDGE, &peer, err, sizeof err);
    s_expect (rc, err, "cannot create", verbose);
    zstr_free (&path);
    zstr_free (&keys);
}

static void
s_test_certs (const char *dir, const bus_curve_peer_t *w, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_curve_peer_t peer;
    zcert_t *cert = NULL;
    char *secret = zsys_sprintf ("%s/keys/w.cert_secret", dir);
    char *public = zsys_sprintf ("%s/keys/w.cert", dir);
    assert (bus_curve_cert_read (secret, true, &peer, &cert, err, sizeof err)
            == 0);
    assert (streq (peer.key, w->key) && streq (peer.name, "w"));
    assert (peer.role == BUS_CURVE_WRITER);
    assert (cert && streq (zcert_public_txt (cert), w->key));
    zcert_destroy (&cert);
    assert (bus_curve_cert_read (public, false, &peer, NULL, err, sizeof err)
            == 0);
    assert (streq (peer.key, w->key));

    int rc = bus_curve_cert_read (public, true, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "is a public certificate", verbose);
    assert (chmod (secret, 0640) == 0);
    rc = bus_curve_cert_read (secret, true, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "must be mode 0600, not 0640", verbose);
    assert (chmod (secret, 0600) == 0);

    char *bad = zsys_sprintf ("%s/bad", dir);
    rc = bus_curve_cert_read (bad, true, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "No such file", verbose);
    s_write (bad, "not = \"a cert\"\n");
    rc = bus_curve_cert_read (bad, false, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "no valid curve/public-key", verbose);
    s_write (bad, "   broken ZPL\n");
    rc = bus_curve_cert_read (bad, false, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "not a certificate", verbose);
    //  another key's secret under w's public key
    char other_public[41], other_secret[41];
    assert (zmq_curve_keypair (other_public, other_secret) == 0);
    char *text = zsys_sprintf ("metadata\n    name = \"w\"\n    role = "
                               "\"writer\"\ncurve\n    public-key = \"%s\"\n"
                               "    secret-key = \"%s\"\n",
                               w->key, other_secret);
    s_write (bad, text);
    chmod (bad, 0600);
    rc = bus_curve_cert_read (bad, true, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "does not belong", verbose);
    zstr_free (&text);
    text = zsys_sprintf ("metadata\n    name = \"w x\"\n    role = "
                         "\"writer\"\ncurve\n    public-key = \"%s\"\n",
                         w->key);
    s_write (bad, text);
    rc = bus_curve_cert_read (bad, false, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "metadata/name", verbose);
    zstr_free (&text);
    text = zsys_sprintf ("metadata\n    name = \"w\"\n    role = "
                         "\"boss\"\ncurve\n    public-key = \"%s\"\n",
                         w->key);
    s_write (bad, text);
    rc = bus_curve_cert_read (bad, false, &peer, NULL, err, sizeof err);
    s_expect (rc, err, "metadata/role", verbose);
    zstr_free (&text);
    unlink (bad);
    zstr_free (&bad);
    zstr_free (&secret);
    zstr_free (&public);
}

static void
s_count_peer (const bus_curve_peer_t *peer, const char *path, void *arg)
{
    char *names = (char *) arg;
    strcat (names, peer->name);
    strcat (names, " ");
    assert (strstr (path, peer->name));
}

//  dir/allow with gw-a, gw-b and e1's public certificates
static void
s_test_allow (const char *dir, bool verbose)
{
    char err[BUS_ERROR_MAX * 4], names[256] = "";
    char *allow = zsys_sprintf ("%s/allow", dir);
    assert (mkdir (allow, 0700) == 0);
    const char *nodes[] = { "gw-b", "e1", "gw-a" };
    for (int i = 0; i < 3; i++) {
        char *from = zsys_sprintf ("%s/keys/%s.cert", dir, nodes[i]);
        char *to = zsys_sprintf ("%s/%s.cert", allow, nodes[i]);
        s_copy (from, to);
        zstr_free (&from);
        zstr_free (&to);
    }
    char *hidden = zsys_sprintf ("%s/.gw-a.cert.swp", allow);
    s_write (hidden, "junk");
    int count =
        bus_curve_allow_read (allow, s_count_peer, names, err, sizeof err);
    assert (count == 3);
    assert (streq (names, "e1 gw-a gw-b "));   //  in file name order

    //  each bad file refuses the whole directory, naming the file
    struct {
        const char *from, *to, *why;
    } bad[] = {
        { "keys/e1.cert_secret", "e1.cert_secret", "is a secret certificate" },
        { "keys/w.cert", "w.cert", "is a writer's certificate" },
        { "allow/gw-a.cert", "gw-a2.cert", "key '" },
        { "keys/w.cert", "junk.cert", "no valid curve/public-key" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *from = zsys_sprintf ("%s/%s", dir, bad[i].from);
        char *to = zsys_sprintf ("%s/%s", allow, bad[i].to);
        if (streq (bad[i].to, "junk.cert"))
            s_write (to, "curve\n    public-key = \"short\"\n");
        else
            s_copy (from, to);
        names[0] = '\0';
        count =
            bus_curve_allow_read (allow, s_count_peer, names, err, sizeof err);
        s_expect (count, err, bad[i].why, verbose);
        assert (strstr (err, bad[i].to) && strstr (err, "link/allow"));
        assert (count == -1 && names[0] == '\0');
        unlink (to);
        zstr_free (&from);
        zstr_free (&to);
    }
    //  the same name under another key
    char *other = zsys_sprintf ("%s/other", dir);
    assert (mkdir (other, 0700) == 0);
    bus_curve_peer_t peer;
    assert (bus_curve_keys_new (other, "gw-a", BUS_CURVE_GATEWAY, &peer, err,
                                sizeof err)
            == 0);
    char *from = zsys_sprintf ("%s/gw-a.cert", other);
    char *to = zsys_sprintf ("%s/zz.cert", allow);
    s_copy (from, to);
    count = bus_curve_allow_read (allow, NULL, NULL, err, sizeof err);
    s_expect (count, err, "name 'gw-a' is allowed twice", verbose);
    unlink (to);
    zstr_free (&from);
    zstr_free (&to);
    zstr_free (&other);
    char *missing = zsys_sprintf ("%s/missing", dir);
    count = bus_curve_allow_read (missing, NULL, NULL, err, sizeof err);
    s_expect (count, err, "cannot read", verbose);
    zstr_free (&missing);
    zstr_free (&hidden);
    zstr_free (&allow);
}

//  A config of role with the test's files
static void
s_config (bus_config_t *config, bus_role_t role, const char *dir,
          const char *cert, const char *name)
{
    bus_config_defaults (config, role, NULL);
    if (cert)
        snprintf (config->cert_file, sizeof config->cert_file, "%s/%s", dir,
                  cert);
    if (name)
        snprintf (config->name, sizeof config->name, "%s", name);
}

static void
s_test_new (const char *dir, const bus_curve_peer_t *w, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_WRITER, dir, NULL, NULL);
    bus_curve_t *curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && !bus_curve_enabled (curve));   //  loopback: plaintext
    bus_curve_destroy (&curve);
    bus_curve_destroy (&curve);
    strcpy (config.sync, "tcp://0.0.0.0:5557");
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "endpoints/sync tcp://0.0.0.0:5557", verbose);
    assert (strstr (err, "--insecure-plaintext-links"));
    assert (strstr (err, "link/cert"));
    config.insecure_links = true;
    curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && !bus_curve_enabled (curve));
    bus_curve_destroy (&curve);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "link/allow (--allow) is set but link/cert",
              verbose);

    s_config (&config, BUS_ROLE_WRITER, dir, "keys/w.cert_secret", NULL);
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "link/allow (--allow DIR) is required", verbose);
    config.insecure_links = true;
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "choose one", verbose);
    s_config (&config, BUS_ROLE_WRITER, dir, "keys/gw-a.cert_secret", NULL);
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "gateway 'gw-a', not of a writer", verbose);

    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-b");
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "give --name gw-a", verbose);
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-a");
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "link/writer_key (--writer-key) is required",
              verbose);
    strcpy (config.writer_key, "not-a-key");
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "neither a 40-character Z85 key", verbose);
    snprintf (config.writer_key, sizeof config.writer_key, "%s/keys/e1.cert",
              dir);
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "edge 'e1', not of a writer", verbose);
    snprintf (config.writer_key, sizeof config.writer_key, "%s", w->key);
    curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && bus_curve_enabled (curve));
    assert (bus_curve_peer (curve, w->key) == NULL);   //  no allow-list
    bus_curve_destroy (&curve);

    s_config (&config, BUS_ROLE_EDGE, dir, "keys/e1.cert_secret", NULL);
    snprintf (config.writer_key, sizeof config.writer_key, "%s/keys/w.cert",
              dir);
    curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && bus_curve_enabled (curve));
    bus_curve_destroy (&curve);
    s_config (&config, BUS_ROLE_EDGE, dir, NULL, NULL);
    snprintf (config.writer_key, sizeof config.writer_key, "%s", w->key);
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "link/writer_key (--writer-key) is set", verbose);

    //  up links in-process: always plaintext
    s_config (&config, BUS_ROLE_UP, dir, NULL, NULL);
    curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && !bus_curve_enabled (curve));
    bus_curve_destroy (&curve);
    assert (!bus_curve_enabled (NULL) && bus_curve_refused (NULL) == 0);
    assert (bus_curve_peer (NULL, w->key) == NULL);
}

//  A PUSH of role's node connected to port with config's keys
static zsock_t *
s_client (const bus_curve_t *curve, int port)
{
    zsock_t *push = zsock_new (ZMQ_PUSH);
    assert (push);
    zsock_set_linger (push, 0);
    bus_curve_client (curve, push);
    assert (zsock_connect (push, "tcp://127.0.0.1:%d", port) == 0);
    zstr_send (push, "hello");
    return push;
}

//  The next message on pull within wait_ms: the sender's User-Id, or NULL
static char *
s_received (zsock_t *pull, int wait_ms)
{
    zsock_set_rcvtimeo (pull, wait_ms);
    zframe_t *frame = zframe_recv (pull);
    if (!frame)
        return NULL;
    const char *user = zframe_meta (frame, "User-Id");
    char *copy = strdup (user ? user : "");
    zframe_destroy (&frame);
    return copy;
}

static void
s_test_links (const char *dir, const bus_curve_peer_t *w, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_WRITER, dir, "keys/w.cert_secret", NULL);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    bus_curve_t *writer = bus_curve_new (&config, err, sizeof err);
    assert (writer && bus_curve_enabled (writer));
    zsock_t *pull = zsock_new (ZMQ_PULL);
    assert (bus_curve_server (writer, pull, "intake") == 0);
    int port = zsock_bind (pull, "tcp://127.0.0.1:*");
    assert (port > 0);

    //  an allowed gateway gets through, known by its key; it pins the
    //  writer by a certificate whose path is 40 characters of Z85's
    //  alphabet, as a key would be ("/tmp/orderbus-curve-XXXXXX/" is 27):
    //  read as the file it is, not taken for a key
    char pin[64], original[64];
    snprintf (pin, sizeof pin, "%s/writer40.cert", dir);
    snprintf (original, sizeof original, "%s/keys/w.cert", dir);
    assert (strlen (pin) == BUS_CURVE_KEY_LEN);
    zchunk_t *cert = zchunk_slurp (original, 0);
    assert (cert);
    FILE *copy = fopen (pin, "w");
    assert (copy
            && fwrite (zchunk_data (cert), 1, zchunk_size (cert), copy)
                   == zchunk_size (cert));
    fclose (copy);
    zchunk_destroy (&cert);
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-a");
    snprintf (config.writer_key, sizeof config.writer_key, "%s", pin);
    bus_curve_t *gateway = bus_curve_new (&config, err, sizeof err);
    assert (gateway);
    zsock_t *good = s_client (gateway, port);
    char *user = s_received (pull, 5000);
    assert (user);
    const bus_curve_peer_t *peer = bus_curve_peer (writer, user);
    assert (peer && streq (peer->name, "gw-a"));
    assert (peer->role == BUS_CURVE_GATEWAY);
    assert (bus_curve_peer (writer, w->key) == NULL);
    assert (bus_curve_peer (writer, NULL) == NULL);
    zstr_free (&user);

    //  a key not in the allow directory, a plain socket, and a gateway
    //  pinning another writer key: none is heard
    char *stranger_dir = zsys_sprintf ("%s/stranger", dir);
    assert (mkdir (stranger_dir, 0700) == 0);
    bus_curve_peer_t stranger;
    assert (bus_curve_keys_new (stranger_dir, "gw-x", BUS_CURVE_GATEWAY,
                                &stranger, err, sizeof err)
            == 0);
    snprintf (config.cert_file, sizeof config.cert_file, "%s/gw-x.cert_secret",
              stranger_dir);
    strcpy (config.name, "gw-x");
    bus_curve_t *unknown = bus_curve_new (&config, err, sizeof err);
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-b.cert_secret", "gw-b");
    snprintf (config.writer_key, sizeof config.writer_key, "%s", stranger.key);
    bus_curve_t *misled = bus_curve_new (&config, err, sizeof err);
    assert (unknown && misled);
    zsock_t *bad[3] = { s_client (unknown, port), s_client (NULL, port),
                        s_client (misled, port) };
    user = s_received (pull, 1000);
    assert (!user);
    //  the watcher saw each at least once (they keep retrying)
    int64_t until = zclock_mono () + 5000;
    while (bus_curve_refused (writer) < 3 && zclock_mono () < until)
        zclock_sleep (20);
    if (verbose)
        printf ("  refused %" PRIu64 " handshakes\n",
                bus_curve_refused (writer));
    assert (bus_curve_refused (writer) >= 3);

    for (int i = 0; i < 3; i++)
        zsock_destroy (&bad[i]);
    zsock_destroy (&good);
    zsock_destroy (&pull);
    bus_curve_destroy (&unknown);
    bus_curve_destroy (&misled);
    bus_curve_destroy (&gateway);
    bus_curve_destroy (&writer);
    zstr_free (&stranger_dir);
}

//  A writer's sync socket in small: answers every request on the ROUTER
//  it is given (and owns from then on) with an empty reply of its rid.
static void
s_answer_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = (zsock_t *) args;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zsock_signal (pipe, 0);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *id = zmsg_pop (msg), *body = zmsg_pop (msg);
        bus_sync_req_t req;
        if (body
            && bus_sync_req_decode (zframe_data (body), zframe_size (body),
                                    &req)
                   == 0) {
            bus_sync_reply_t reply = {
                .rid = req.rid,
                .writer = { .id = "0123456789abcdef0123456789abcdef",
                            .epoch = 1 }
            };
            zmsg_t *out = zmsg_new ();
            zmsg_append (out, &id);
            zframe_t *header = bus_sync_reply_encode (&reply);
            zmsg_append (out, &header);
            zmsg_send (&out, router);
        }
        zframe_destroy (&id);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  The writer's sync socket on port (0: any), answering; its port in *port
static zactor_t *
s_answering (bus_curve_t *writer, int *port)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router && bus_curve_server (writer, router, "sync") == 0);
    *port = *port ? zsock_bind (router, "tcp://127.0.0.1:%d", *port)
                  : zsock_bind (router, "tcp://127.0.0.1:*");
    assert (*port > 0);
    return zactor_new (s_answer_actor, router);
}

//  A plaintext ZeroMQ peer on port for wait_ms: every connection gets a
//  ZMTP 3.0 greeting with the NULL mechanism and is held open.  A CURVE
//  client reads it and gives the connection up for good (a protocol
//  error): always, where a real plaintext socket may hang up first.
static void
s_plaintext_rogue (int port, int wait_ms)
{
    int listener = socket (AF_INET, SOCK_STREAM, 0), on = 1;
    assert (listener >= 0);
    setsockopt (listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    //  libzmq closes the writer's listener a moment after its socket
    int rc = -1;
    for (int i = 0; i < 100 && rc != 0; i++)
        if ((rc = bind (listener, (struct sockaddr *) &addr, sizeof addr)))
            zclock_sleep (20);
    assert (rc == 0);
    assert (listen (listener, 8) == 0);
    unsigned char greeting[64] = { 0xff, [9] = 0x7f, [10] = 3 };
    memcpy (greeting + 12, "NULL", 4);
    int held[16], count = 0;
    for (int64_t end = zclock_mono () + wait_ms; zclock_mono () < end;) {
        struct pollfd p = { .fd = listener, .events = POLLIN };
        if (poll (&p, 1, 50) <= 0 || count == 16)
            continue;
        int fd = accept (listener, NULL, NULL);
        if (fd >= 0 && send (fd, greeting, sizeof greeting, MSG_NOSIGNAL) < 0)
            close (fd);
        else if (fd >= 0)
            held[count++] = fd;
    }
    for (int i = 0; i < count; i++)
        close (held[i]);
    close (listener);
}

static void
s_test_pooled (const char *dir, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_WRITER, dir, "keys/w.cert_secret", NULL);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    bus_curve_t *writer = bus_curve_new (&config, err, sizeof err);
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-a");
    snprintf (config.writer_key, sizeof config.writer_key, "%s/keys/w.cert",
              dir);
    bus_curve_t *gateway = bus_curve_new (&config, err, sizeof err);
    assert (writer && gateway);
    int port = 0;
    zactor_t *answering = s_answering (writer, &port);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    bus_sync_t *sync = bus_sync_new (endpoint, 1000, gateway);
    bus_sync_req_t req = { .op = BUS_SYNC_STATS };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    assert (bus_sync_call (sync, &req, &reply, &items) == 0);
    zmsg_destroy (&items);
    //  The writer goes; a plaintext process on its port refuses the
    //  pooled socket's handshake, then goes too; the writer comes back
    zactor_destroy (&answering);
    s_plaintext_rogue (port, 800);
    answering = s_answering (writer, &port);
    int64_t start = zclock_mono ();
    int rc = bus_sync_call (sync, &req, &reply, &items);
    if (verbose)
        printf ("  the first call after a plaintext peer: %s in %" PRId64
                " ms\n",
                rc ? bus_strerror (rc) : "answered", zclock_mono () - start);
    assert (rc == 0);
    zmsg_destroy (&items);
    bus_sync_destroy (&sync);
    zactor_destroy (&answering);
    bus_curve_destroy (&gateway);
    bus_curve_destroy (&writer);
}

void
bus_curve_test (bool verbose)
{
    printf (" * bus_curve: ");
    if (verbose)
        printf ("\n");
    s_test_endpoints ();
    s_test_roles ();
    char dir[] = "/tmp/orderbus-curve-XXXXXX";
    assert (mkdtemp (dir));
    bus_curve_peer_t writer;
    s_test_keys (dir, &writer, verbose);
    s_test_certs (dir, &writer, verbose);
    s_test_allow (dir, verbose);
    s_test_new (dir, &writer, verbose);
    s_test_links (dir, &writer, verbose);
    s_test_pooled (dir, verbose);
    s_remove_tree (dir);
    printf ("OK\n");
}
