/*  bus_curve_test.c — selftest of bus_curve: endpoints that count as
    local, certificate files and allow directories (good and each kind of
    bad), what bus_curve_new refuses, and real CURVE links on loopback: a
    known key gets through with its name, an unknown key, a plain socket
    and a client pinning the wrong writer key do not, and each refusal is
    counted.  And bus_sync's pooled sockets, which the watches keep
    usable: one whose handshake a plaintext process refused is replaced,
    and the next call after the writer is back is answered.  */

#include <dirent.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_link.h"
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
    int count = bus_curve_allow_read (allow, NULL, s_count_peer, names, err,
                                      sizeof err);
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
        count = bus_curve_allow_read (allow, NULL, s_count_peer, names, err,
                                      sizeof err);
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
    count = bus_curve_allow_read (allow, NULL, NULL, NULL, err, sizeof err);
    s_expect (count, err, "name 'gw-a' is allowed twice", verbose);
    unlink (to);
    zstr_free (&from);
    zstr_free (&to);
    zstr_free (&other);
    char *missing = zsys_sprintf ("%s/missing", dir);
    count = bus_curve_allow_read (missing, NULL, NULL, NULL, err, sizeof err);
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

//  A writer group's keys: writers m1, m2, m3 in dir/keys; dir/gallow is
//  m1's allow directory (gateway gw-a and member m2)
static void
s_group_files (const char *dir)
{
    char err[BUS_ERROR_MAX * 4];
    bus_curve_peer_t peer;
    char *keys = zsys_sprintf ("%s/keys", dir);
    const char *names[] = { "m1", "m2", "m3" };
    for (int i = 0; i < 3; i++)
        assert (bus_curve_keys_new (keys, names[i], BUS_CURVE_WRITER, &peer,
                                    err, sizeof err)
                == 0);
    assert (bus_curve_keys_new (keys, "r1", BUS_CURVE_REPLICA, &peer, err,
                                sizeof err)
            == 0);
    char *allow = zsys_sprintf ("%s/gallow", dir);
    assert (mkdir (allow, 0700) == 0);
    const char *nodes[] = { "gw-a", "m2" };
    for (int i = 0; i < 2; i++) {
        char *from = zsys_sprintf ("%s/%s.cert", keys, nodes[i]);
        char *to = zsys_sprintf ("%s/%s.cert", allow, nodes[i]);
        s_copy (from, to);
        zstr_free (&from);
        zstr_free (&to);
    }
    zstr_free (&allow);
    zstr_free (&keys);
}

//  Member m1 of a group (role writer, or replica: its standby)
static void
s_member_config (bus_config_t *config, bus_role_t role, const char *dir,
                 const char *writer_key)
{
    s_config (config, role, dir, "keys/m1.cert_secret", NULL);
    if (role == BUS_ROLE_REPLICA)   //  as bus_member.c makes its standby
        snprintf (config->name, sizeof config->name, "m1");
    snprintf (config->allow_dir, sizeof config->allow_dir, "%s/gallow", dir);
    snprintf (config->leader_etcd, sizeof config->leader_etcd,
              "http://127.0.0.1:2379");
    snprintf (config->leader_name, sizeof config->leader_name, "m1");
    snprintf (config->leader_peers, sizeof config->leader_peers,
              "tcp://127.0.0.1:5560");
    snprintf (config->replicate, sizeof config->replicate, "%s",
              role == BUS_ROLE_REPLICA ? config->leader_peers
                                       : "tcp://127.0.0.1:5561");
    snprintf (
        config->writer_key, sizeof config->writer_key, "%s%s%s",
        writer_key && *writer_key != '/' && strlen (writer_key) != 40 ? dir
                                                                      : "",
        writer_key && *writer_key != '/' && strlen (writer_key) != 40 ? "/"
                                                                      : "",
        writer_key ? writer_key : "");
}

//  The rules of a group's keys: writer certificates in a member's allow
//  directory (not its own), a member's pins, a node's list of pins
static void
s_test_group (const char *dir, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    s_group_files (dir);
    char *allow = zsys_sprintf ("%s/gallow", dir);
    bus_curve_peer_t m1, m2;
    char *path = zsys_sprintf ("%s/keys/m1.cert", dir);
    assert (bus_curve_cert_read (path, false, &m1, NULL, err, sizeof err) == 0);
    zstr_free (&path);
    path = zsys_sprintf ("%s/keys/m2.cert", dir);
    assert (bus_curve_cert_read (path, false, &m2, NULL, err, sizeof err) == 0);
    zstr_free (&path);

    //  the allow directory: a writer's certificate only for a member,
    //  and never the member's own
    int count = bus_curve_allow_read (allow, NULL, NULL, NULL, err, sizeof err);
    s_expect (count, err, "m2.cert is a writer's certificate", verbose);
    assert (strstr (err, "leader/etcd"));
    assert (bus_curve_allow_read (allow, m1.key, NULL, NULL, err, sizeof err)
            == 2);
    assert (bus_curve_allow_read (allow, "", NULL, NULL, err, sizeof err) == 2);
    count = bus_curve_allow_read (allow, m2.key, NULL, NULL, err, sizeof err);
    s_expect (count, err, "is this member's own certificate", verbose);

    //  m1's standby: its writer certificate, pinning m2
    bus_config_t config;
    s_member_config (&config, BUS_ROLE_REPLICA, dir, "keys/m2.cert");
    bus_curve_t *curve = bus_curve_new (&config, err, sizeof err);
    if (!curve)
        printf ("%s\n", err);
    assert (curve && bus_curve_enabled (curve) && bus_curve_pins (curve) == 1);
    bus_curve_destroy (&curve);
    s_member_config (&config, BUS_ROLE_REPLICA, dir, m2.key);
    curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && bus_curve_pins (curve) == 1);
    bus_curve_destroy (&curve);
    //  ... and its writer, whose allow-list lets m2 in
    s_member_config (&config, BUS_ROLE_WRITER, dir, "keys/m2.cert");
    curve = bus_curve_new (&config, err, sizeof err);
    assert (curve && bus_curve_enabled (curve));
    const bus_curve_peer_t *peer = bus_curve_peer (curve, m2.key);
    assert (peer && peer->role == BUS_CURVE_WRITER && streq (peer->name, "m2"));
    bus_curve_destroy (&curve);

    //  what a member refuses, as its writer and as its standby
    struct {
        const char *key, *peers, *name, *why;
    } bad[] = {
        { NULL, NULL, NULL, "is required on a group member" },
        { "keys/m1.cert", NULL, NULL, "key 1 is this member's own" },
        { "keys/m3.cert", NULL, NULL,
          "is not a writer's certificate in link/allow" },
        { "keys/m2.cert", "tcp://127.0.0.1:5560,tcp://127.0.0.1:5562", NULL,
          "has 1 key but leader/peers lists 2 endpoints" },
        { "keys/gw-a.cert", NULL, NULL, "gateway 'gw-a', not of a writer" },
        { "keys/m2.cert", NULL, "mx", "leader/name is 'mx' but link/cert" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int standby = 0; standby < 2; standby++) {
            bus_role_t role = standby ? BUS_ROLE_REPLICA : BUS_ROLE_WRITER;
            s_member_config (&config, role, dir, bad[i].key);
            if (bad[i].peers)
                snprintf (config.leader_peers, sizeof config.leader_peers, "%s",
                          bad[i].peers);
            if (bad[i].name)
                snprintf (config.leader_name, sizeof config.leader_name, "%s",
                          bad[i].name);
            curve = bus_curve_new (&config, err, sizeof err);
            s_expect (!curve, err, bad[i].why, verbose);
        }
    //  a lone writer: no writer certificate allowed, no key pinned
    s_member_config (&config, BUS_ROLE_WRITER, dir, NULL);
    config.leader_etcd[0] = config.leader_name[0] = '\0';
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "m2.cert is a writer's certificate", verbose);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    snprintf (config.writer_key, sizeof config.writer_key, "%s", m2.key);
    curve = bus_curve_new (&config, err, sizeof err);
    s_expect (!curve, err, "it needs leader/etcd", verbose);

    //  a gateway and an edge of the group: one key for all endpoints, or
    //  one per endpoint, lined up with every list
    const char *two = "tcp://127.0.0.1:1,tcp://127.0.0.1:2";
    struct {
        bus_role_t role;
        const char *keys, *intake, *events, *why;
    } lists[] = {
        { BUS_ROLE_GATEWAY, "m1,m2", NULL, NULL, NULL },
        { BUS_ROLE_GATEWAY, "m1", NULL, NULL, NULL },
        { BUS_ROLE_EDGE, "m1,m2", NULL, NULL, NULL },
        { BUS_ROLE_GATEWAY, "m1,m2", "tcp://127.0.0.1:1", NULL,
          "has 2 keys but endpoints/intake lists 1 endpoint" },
        { BUS_ROLE_EDGE, "m1,m2",
          "tcp://127.0.0.1:1,tcp://127.0.0.1:2,tcp://127.0.0.1:3", NULL,
          NULL },   //  an edge has no intake
        { BUS_ROLE_EDGE, "m1,m2,m3", NULL, NULL,
          "has 3 keys but endpoints/events lists 2 endpoints" },
        { BUS_ROLE_GATEWAY, "m1,,m2", NULL, NULL,
          "key 2 of the comma list is empty" },
        { BUS_ROLE_GATEWAY, "m1,", NULL, NULL,
          "key 2 of the comma list is empty" },
        { BUS_ROLE_GATEWAY, "m1,m1", NULL, NULL, "keys 1 and 2 are the same" },
        { BUS_ROLE_GATEWAY, "m1,gw-a", NULL, NULL,
          "gateway 'gw-a', not of a writer" },
        //  a read replica following the group: replica/upstream
        { BUS_ROLE_REPLICA, "m1,m2", NULL, NULL, NULL },
        { BUS_ROLE_REPLICA, "m1,m2,m3", NULL, NULL,
          "has 3 keys but replica/upstream lists 2 endpoints" },
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        bool gateway = lists[i].role == BUS_ROLE_GATEWAY;
        bool replica = lists[i].role == BUS_ROLE_REPLICA;
        s_config (&config, lists[i].role, dir,
                  gateway   ? "keys/gw-a.cert_secret"
                  : replica ? "keys/r1.cert_secret"
                            : "keys/e1.cert_secret",
                  gateway   ? "gw-a"
                  : replica ? "r1"
                            : NULL);
        snprintf (config.replicate, sizeof config.replicate, "%s", two);
        snprintf (config.intake, sizeof config.intake, "%s",
                  lists[i].intake ? lists[i].intake : two);
        snprintf (config.events, sizeof config.events, "%s",
                  lists[i].events ? lists[i].events : two);
        snprintf (config.sync, sizeof config.sync, "%s", two);
        //  "m1,m2" as .cert files
        char keys[BUS_PATH_MAX] = "";
        char names[64];
        snprintf (names, sizeof names, "%s", lists[i].keys);
        char *save = NULL;
        size_t at = 0;
        for (char *one = strtok_r (names, ",", &save); one;
             one = strtok_r (NULL, ",", &save))
            at += (size_t) snprintf (keys + at, sizeof keys - at,
                                     "%s%s/keys/%s.cert", at ? "," : "", dir,
                                     one);
        if (strstr (lists[i].keys, ",,"))   //  keep the empty one
            snprintf (keys, sizeof keys, "%s/keys/m1.cert,,%s/keys/m2.cert",
                      dir, dir);
        else if (lists[i].keys[strlen (lists[i].keys) - 1] == ',')
            snprintf (keys, sizeof keys, "%s/keys/m1.cert,", dir);
        snprintf (config.writer_key, sizeof config.writer_key, "%s", keys);
        curve = bus_curve_new (&config, err, sizeof err);
        if (!lists[i].why) {
            if (!curve)
                printf ("unexpected: %s\n", err);
            assert (curve);
            assert (bus_curve_pins (curve)
                    == (strchr (lists[i].keys, ',') ? 2 : 1));
            bus_curve_destroy (&curve);
        } else
            s_expect (!curve, err, lists[i].why, verbose);
    }
    assert (bus_curve_pins (NULL) == 0);
    zstr_free (&allow);
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

#ifndef ZMQ_METADATA
#define ZMQ_METADATA 95   //  a draft in zmq.h; libzmq 4.3 has it
#endif

//  A TCP connection that never says a word to a CURVE server is closed
//  after BUS_CURVE_HANDSHAKE_MS, not libzmq's 30 s
static void
s_test_handshake_ivl (const char *dir, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_WRITER, dir, "keys/w.cert_secret", NULL);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    bus_curve_t *writer = bus_curve_new (&config, err, sizeof err);
    assert (writer);
    zsock_t *pull = zsock_new (ZMQ_PULL);
    assert (bus_curve_server (writer, pull, "intake") == 0);
    int port = zsock_bind (pull, "tcp://127.0.0.1:*");
    assert (port > 0);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET,
                              .sin_port = htons ((uint16_t) port),
                              .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (fd >= 0 && connect (fd, (struct sockaddr *) &to, sizeof to) == 0);
    int64_t start = zclock_mono ();
    char buffer[256];
    ssize_t got = 1;
    //  libzmq's greeting comes first; then the end, or nothing for 8 s
    while (got > 0 && zclock_mono () - start < 8000) {
        struct pollfd one = { .fd = fd, .events = POLLIN };
        if (poll (&one, 1, 500) == 1)
            got = recv (fd, buffer, sizeof buffer, 0);
    }
    int64_t took = zclock_mono () - start;
    if (verbose)
        printf ("  a silent connection closed after %" PRId64 " ms\n", took);
    assert (got == 0 && took < BUS_CURVE_HANDSHAKE_MS + 2000);
    close (fd);
    zsock_destroy (&pull);
    bus_curve_destroy (&writer);
}

//  A plaintext listener where the writer should be refuses every
//  handshake, and the watch dials again each second: it says so three
//  times a minute per endpoint, not every second
static void
s_test_client_log (const char *dir, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-a");
    snprintf (config.writer_key, sizeof config.writer_key, "%s/keys/w.cert",
              dir);
    bus_curve_t *gateway = bus_curve_new (&config, err, sizeof err);
    assert (gateway);
    zsock_t *plain = zsock_new (ZMQ_PULL);
    zsock_set_linger (plain, 0);
    int port = zsock_bind (plain, "tcp://127.0.0.1:*");
    assert (port > 0);
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    FILE *log = tmpfile ();
    assert (log);
    zsys_set_logstream (log);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_set_linger (push, 0);
    bus_curve_watch_t *watch = bus_curve_watch_new (gateway, push, endpoint);
    assert (watch);
    assert (bus_link_connect (push, endpoint, gateway) == 0);
    int dials = 0;
    zpoller_t *poller = zpoller_new (bus_curve_watch_socket (watch), NULL);
    for (int64_t end = zclock_mono () + 5500; zclock_mono () < end;) {
        if (zpoller_wait (poller, 100))
            bus_curve_watch_read (watch);
        dials += bus_curve_watch_redial (watch, zclock_mono ());
    }
    zpoller_destroy (&poller);
    zsys_set_logstream (stdout);
    rewind (log);
    char line[512];
    int refused = 0, dialled = 0;
    while (fgets (line, sizeof line, log)) {
        refused += strstr (line, "handshake refused") != NULL;
        dialled += strstr (line, "dialled again") != NULL;
    }
    fclose (log);
    if (verbose)
        printf ("  %d dials, %d lines of refusal, %d of dialling\n", dials,
                refused, dialled);
    assert (dials >= 4);
    assert (refused == 3 && dialled <= 3);
    bus_curve_watch_destroy (&watch);
    zsock_destroy (&push);
    zsock_destroy (&plain);
    bus_curve_destroy (&gateway);
}

//  A writer certificate in a member's allow directory that its
//  link/writer_key does not list (m3's): a warning at start, naming it
static void
s_test_group_stray (const char *dir, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    char *from = zsys_sprintf ("%s/keys/m3.cert", dir);
    char *to = zsys_sprintf ("%s/gallow/m3.cert", dir);
    s_copy (from, to);
    FILE *log = tmpfile ();
    assert (log);
    zsys_set_logstream (log);
    bus_config_t config;
    s_member_config (&config, BUS_ROLE_REPLICA, dir, "keys/m2.cert");
    bus_curve_t *curve = bus_curve_new (&config, err, sizeof err);
    zsys_set_logstream (stdout);
    assert (curve);
    rewind (log);
    char line[1024];
    int m2 = 0, m3 = 0;
    while (fgets (line, sizeof line, log)) {
        m2 += strstr (line, "writer certificate 'm2'") != NULL;
        m3 += strstr (line, "writer certificate 'm3'") != NULL
              && strstr (line, "not in link/writer_key");
    }
    fclose (log);
    if (verbose)
        printf ("  a stray writer certificate warned of: %d\n", m3);
    assert (m3 == 1 && m2 == 0);
    bus_curve_destroy (&curve);
    assert (unlink (to) == 0);
    zstr_free (&from);
    zstr_free (&to);
}

//  A writer made again and again in one process (a member leading
//  again): each one's monitors get endpoints of their own, though its
//  address may be a freed one's whose closed monitor libzmq still holds
static void
s_test_relead (const char *dir)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_WRITER, dir, "keys/w.cert_secret", NULL);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    for (int i = 0; i < 20; i++) {
        bus_curve_t *writer = bus_curve_new (&config, err, sizeof err);
        assert (writer);
        zsock_t *socks[2] = { zsock_new (ZMQ_PULL), zsock_new (ZMQ_ROUTER) };
        assert (bus_curve_server (writer, socks[0], "intake") == 0);
        assert (bus_curve_server (writer, socks[1], "sync") == 0);
        zsock_destroy (&socks[0]);
        zsock_destroy (&socks[1]);
        bus_curve_destroy (&writer);
    }
}

//  The next message on pull within wait_ms (which must come): the
//  sender's User-Id and token (BUS_CURVE_ZAP_TOKEN), each "" if none
static void
s_received_token (zsock_t *pull, char *user, char *token)
{
    zsock_set_rcvtimeo (pull, 5000);
    zframe_t *frame = zframe_recv (pull);
    assert (frame);
    const char *value = zframe_meta (frame, "User-Id");
    snprintf (user, BUS_CURVE_KEY_LEN + 1, "%s", value ? value : "");
    value = zframe_meta (frame, BUS_CURVE_ZAP_TOKEN);
    snprintf (token, BUS_CURVE_KEY_LEN + 1, "%s", value ? value : "");
    zframe_destroy (&frame);
}

//  A client's own metadata never passes for the ZAP handler's answer.
//  With no handler bound, libzmq 4.3 lets any CURVE client in, and its
//  metadata stands: a stranger's token is refused under any User-Id.
//  With the handler, its token wins over the one a client sends.
static void
s_test_forged (const char *dir, const bus_curve_peer_t *w, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    const char *fake = "0123456789abcdefghij0123456789abcdefghij";
    char metadata[80];
    snprintf (metadata, sizeof metadata, "%s:%s", BUS_CURVE_ZAP_TOKEN, fake);
    bus_config_t config;
    s_config (&config, BUS_ROLE_GATEWAY, dir, "stranger/gw-x.cert_secret",
              "gw-x");
    snprintf (config.writer_key, sizeof config.writer_key, "%s", w->key);
    bus_curve_t *stranger = bus_curve_new (&config, err, sizeof err);
    assert (stranger);
    //  the writer's key, and no handler bound
    zsock_t *open = zsock_new (ZMQ_PULL);
    zsock_set_linger (open, 0);
    bus_curve_peer_t peer_w;
    zcert_t *cert = NULL;
    char *path = zsys_sprintf ("%s/keys/w.cert_secret", dir);
    assert (bus_curve_cert_read (path, true, &peer_w, &cert, err, sizeof err)
            == 0);
    zstr_free (&path);
    zcert_apply (cert, open);
    zcert_destroy (&cert);
    zsock_set_curve_server (open, 1);
    int port = zsock_bind (open, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_set_linger (push, 0);
    bus_curve_client (stranger, push);
    assert (zmq_setsockopt (zsock_resolve (push), ZMQ_METADATA, metadata,
                            strlen (metadata))
            == 0);
    assert (zsock_connect (push, "tcp://127.0.0.1:%d", port) == 0);
    zstr_send (push, "forged");
    char user[BUS_CURVE_KEY_LEN + 1], token[BUS_CURVE_KEY_LEN + 1];
    s_received_token (open, user, token);   //  the hole: let in
    assert (streq (token, fake));
    zsock_destroy (&push);
    zsock_destroy (&open);

    s_config (&config, BUS_ROLE_WRITER, dir, "keys/w.cert_secret", NULL);
    snprintf (config.allow_dir, sizeof config.allow_dir, "%s/allow", dir);
    bus_curve_t *writer = bus_curve_new (&config, err, sizeof err);
    assert (writer);
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-a");
    snprintf (config.writer_key, sizeof config.writer_key, "%s", w->key);
    bus_curve_t *gateway = bus_curve_new (&config, err, sizeof err);
    assert (gateway);
    zsock_t *pull = zsock_new (ZMQ_PULL);
    zsock_set_linger (pull, 0);
    assert (bus_curve_server (writer, pull, "intake") == 0);
    port = zsock_bind (pull, "tcp://127.0.0.1:*");
    assert (port > 0);
    push = zsock_new (ZMQ_PUSH);
    zsock_set_linger (push, 0);
    bus_curve_client (gateway, push);
    assert (zmq_setsockopt (zsock_resolve (push), ZMQ_METADATA, metadata,
                            strlen (metadata))
            == 0);
    assert (zsock_connect (push, "tcp://127.0.0.1:%d", port) == 0);
    zstr_send (push, "allowed");
    s_received_token (pull, user, token);
    assert (!streq (token, fake));   //  the handler's, not the client's
    const bus_curve_peer_t *peer = bus_curve_sender (writer, user, token);
    assert (peer && streq (peer->name, "gw-a"));
    assert (bus_curve_peer (writer, user) == peer);
    assert (bus_curve_sender (writer, user, fake) == NULL);
    assert (bus_curve_sender (writer, user, NULL) == NULL);
    assert (bus_curve_sender (writer, user, "") == NULL);
    assert (bus_curve_sender (NULL, user, token) == NULL);
    if (verbose)
        printf ("  a client's token refused; the handler's %.8s... stands\n",
                token);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    bus_curve_destroy (&gateway);
    bus_curve_destroy (&writer);
    bus_curve_destroy (&stranger);
}

//  A PULL bound on loopback as a CURVE server with the secret
//  certificate at dir/keys/name.cert_secret (name NULL: plaintext).  No
//  ZAP handler runs by now, so libzmq lets any CURVE client in: what is
//  tested is the client's pin.  *port gets its port.
static zsock_t *
s_server (const char *dir, const char *name, const int *port)
{
    zsock_t *pull = zsock_new (ZMQ_PULL);
    assert (pull);
    zsock_set_linger (pull, 0);
    if (name) {
        char err[BUS_ERROR_MAX * 4];
        bus_curve_peer_t peer;
        zcert_t *cert = NULL;
        char *path = zsys_sprintf ("%s/keys/%s.cert_secret", dir, name);
        assert (bus_curve_cert_read (path, true, &peer, &cert, err, sizeof err)
                == 0);
        zcert_apply (cert, pull);
        zsock_set_curve_server (pull, 1);
        zcert_destroy (&cert);
        zstr_free (&path);
    }
    //  The port was just given up by the test: it may linger a moment
    int64_t end = zclock_mono () + 5000;
    while (zsock_bind (pull, "tcp://127.0.0.1:%d", *port) < 0
           && zclock_mono () < end)
        zclock_sleep (20);
    return pull;
}

//  Wait (up to 5 s) until each of pulls has a message from push, which
//  sends one every 20 ms; the watch (may be NULL) is read and redials
static bool
s_both_hear (zsock_t *push, zsock_t *pulls[2], bus_curve_watch_t *watch)
{
    bool heard[2] = { false, false };
    zsock_set_sndtimeo (push, 0);
    zpoller_t *poller = zpoller_new (pulls[0], pulls[1], NULL);
    if (watch)
        zpoller_add (poller, bus_curve_watch_socket (watch));
    for (int64_t end = zclock_mono () + 5000;
         !(heard[0] && heard[1]) && zclock_mono () < end;) {
        zstr_sendx (push, "hi", NULL);   //  dropped while nobody is up
        void *which = zpoller_wait (poller, 20);
        for (int i = 0; i < 2; i++)
            if (which == pulls[i]) {
                char *text = zstr_recv (pulls[i]);
                zstr_free (&text);
                heard[i] = true;
            }
        if (watch && which == bus_curve_watch_socket (watch))
            bus_curve_watch_read (watch);
        bus_curve_watch_redial (watch, zclock_mono ());
    }
    zpoller_destroy (&poller);
    return heard[0] && heard[1];
}

//  A gateway of a two-member group: each connection pins its member's
//  key (libzmq copies it at connect); a member whose handshake failed
//  (a plaintext process on its port, then the real member) is dialled
//  again by the watch with its own key
//  host "127.0.0.1", or "localhost": libzmq's events then name the
//  resolved address, not the one connected to
static void
s_test_group_links (const char *dir, const char *host, bool verbose)
{
    char err[BUS_ERROR_MAX * 4];
    bus_config_t config;
    s_config (&config, BUS_ROLE_GATEWAY, dir, "keys/gw-a.cert_secret", "gw-a");
    int ports[2];
    zsock_t *pulls[2];
    for (int i = 0; i < 2; i++) {   //  two free ports, told apart
        pulls[i] = zsock_new (ZMQ_PULL);
        ports[i] = zsock_bind (pulls[i], "tcp://127.0.0.1:*");
        assert (ports[i] > 0);
    }
    for (int i = 0; i < 2; i++)
        zsock_destroy (&pulls[i]);
    char endpoints[128];
    snprintf (endpoints, sizeof endpoints, "tcp://%s:%d,tcp://%s:%d", host,
              ports[0], host, ports[1]);
    snprintf (config.intake, sizeof config.intake, "%s", endpoints);
    snprintf (config.events, sizeof config.events, "%s", endpoints);
    snprintf (config.sync, sizeof config.sync, "%s", endpoints);
    snprintf (config.writer_key, sizeof config.writer_key,
              "%s/keys/m1.cert,%s/keys/m2.cert", dir, dir);
    bus_curve_t *gateway = bus_curve_new (&config, err, sizeof err);
    assert (gateway && bus_curve_pins (gateway) == 2);

    //  m1 and m2 both heard
    pulls[0] = s_server (dir, "m1", &ports[0]);
    pulls[1] = s_server (dir, "m2", &ports[1]);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_set_linger (push, 0);
    assert (bus_link_connect (push, endpoints, gateway) == 0);
    assert (s_both_hear (push, pulls, NULL));
    zsock_destroy (&push);
    zsock_destroy (&pulls[0]);

    //  m1's port held by a plaintext process first: libzmq gives that
    //  connection up; the watch dials m1 again with m1's key once it is
    //  the real m1 (the socket's key option is m2's by then: the last
    //  connect's)
    pulls[0] = s_server (dir, NULL, &ports[0]);
    //  m2's connections, counted: the redial must leave m2's alone
    assert (zmq_socket_monitor (zsock_resolve (pulls[1]), "inproc://curve-m2",
                                ZMQ_EVENT_ACCEPTED)
            == 0);
    zsock_t *accepts = zsock_new_pair (">inproc://curve-m2");
    assert (accepts);
    push = zsock_new (ZMQ_PUSH);
    zsock_set_linger (push, 0);
    //  an empty item would shift the keys: no watch, not a silent one
    assert (!bus_curve_watch_new (gateway, push,
                                  "tcp://127.0.0.1:1,,tcp://127.0.0.1:2"));
    bus_curve_watch_t *watch = bus_curve_watch_new (gateway, push, endpoints);
    assert (watch);
    assert (bus_link_connect (push, endpoints, gateway) == 0);
    zpoller_t *poller = zpoller_new (bus_curve_watch_socket (watch), NULL);
    assert (zpoller_wait (poller, 5000));   //  the refused handshake
    zpoller_destroy (&poller);
    zsock_destroy (&pulls[0]);
    pulls[0] = s_server (dir, "m1", &ports[0]);
    assert (s_both_hear (push, pulls, watch));
    zclock_sleep (300);   //  a needless redial of m2 would be back by now
    zsock_set_rcvtimeo (accepts, 0);
    int accepted = 0;
    zmsg_t *event;
    while ((event = zmsg_recv (accepts))) {
        accepted++;
        zmsg_destroy (&event);
    }
    if (verbose)
        printf ("  %s: both members heard, m1 after a redial; m2 accepted "
                "%d connection(s)\n",
                host, accepted);
    assert (accepted == 1);
    zmq_socket_monitor (zsock_resolve (pulls[1]), NULL, 0);
    zsock_destroy (&accepts);
    bus_curve_watch_destroy (&watch);
    zsock_destroy (&push);
    for (int i = 0; i < 2; i++)
        zsock_destroy (&pulls[i]);
    bus_curve_destroy (&gateway);
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
    s_test_forged (dir, &writer, verbose);
    s_test_relead (dir);
    s_test_handshake_ivl (dir, verbose);
    s_test_client_log (dir, verbose);
    s_test_group (dir, verbose);
    s_test_group_stray (dir, verbose);
    s_test_group_links (dir, "127.0.0.1", verbose);
    s_test_group_links (dir, "localhost", verbose);
    s_test_pooled (dir, verbose);
    s_remove_tree (dir);
    printf ("OK\n");
}
