/*  bus_curve.c — CURVE keys, the allow-list and the writer's ZAP handler.

    Threads, and what each owns:

      builder   bus_curve_new, _server and _destroy: the node's thread
                that makes and closes the sockets
      zap       the ZAP handler (s_zap): reads the peer table, as any
                thread may
      watcher   the monitor sockets of the writer's CURVE servers: logs
                and counts each refused handshake
      any       _client, _peer, _enabled, _refused: reads of what _new
                built, never changed after it

    Why our own certificate reader and not zcert_load: zcert_load quietly
    prefers FILE_secret to FILE, cuts paths at 255 bytes, and takes any
    metadata, which czmq's zauth copied into a 512-byte buffer without a
    bound (our ZAP handler, s_zap, returns none).
    Ours reads exactly the file named, checks the secret key against the
    public one, and keeps only a valid name and role.  */

#include <arpa/inet.h>
#include <netdb.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_file.h"

#define S_CERT_SIZE_MAX 16384   //  a certificate file is under 1 KiB
#define S_ALLOW_MAX     1024    //  certificates in an allow directory
#define S_WATCH_MAX     8       //  sockets one watcher can watch
#define S_ZAP_ENDPOINT  "inproc://zeromq.zap.01"   //  libzmq's, RFC 27
#define S_ZAP_TOKEN     BUS_CURVE_ZAP_TOKEN        //  see s_zap_metadata
#define S_SECRET_SUFFIX "_secret"
#define S_PUBLIC_SUFFIX ".cert"

#define S_LOG_WINDOW_MS  60000   //  each kind of refusal is logged
#define S_LOG_PER_WINDOW 3       //  this often per socket per window

typedef struct {
    zsock_t *pair;       //  reads the socket's monitor
    char name[16];       //  "intake", ... for the log
    int64_t window_ms;   //  when the log window began
    int logged[4];       //  lines per kind in the window
} s_watch_t;

struct _bus_curve_t {
    bool enabled;    //  false: plaintext links
    zcert_t *cert;   //  this node's keypair
    //  pinned, on clients: one for all endpoints, or one per endpoint
    char pins[BUS_CURVE_PINS_MAX][BUS_CURVE_KEY_LEN + 1];
    int pin_count;
    bus_curve_peer_t *peers;   //  the allow-list (writer)
    size_t peer_count;
    uint32_t *slots;    //  open addressing: peer index + 1, 0 = empty
    size_t slot_mask;   //  slot count - 1, a power of two minus one
    zactor_t *auth;     //  the ZAP handler, on a writer with CURVE
    zsock_t *zap;       //  its socket, until its thread takes it
    bool zap_running;   //  its thread polls (set before its signal)
    char zap_token[BUS_CURVE_KEY_LEN + 1];   //  see bus_curve_sender
    zactor_t *watcher;              //  refusal watcher, on a writer with CURVE
    const char *who;                //  "writer" or "replica", for the log
    atomic_uint_fast64_t refused;   //  handshakes refused
};

static const char *s_role_names[] = { NULL, "writer", "gateway", "edge",
                                      "replica" };

const char *
bus_curve_role_name (bus_curve_role_t role)
{
    return role >= BUS_CURVE_WRITER && role <= BUS_CURVE_REPLICA
               ? s_role_names[role]
               : "unknown";
}

int
bus_curve_role_parse (const char *name, bus_curve_role_t *role)
{
    for (int i = BUS_CURVE_WRITER; name && i <= BUS_CURVE_REPLICA; i++)
        if (streq (name, s_role_names[i])) {
            *role = (bus_curve_role_t) i;
            return 0;
        }
    return -1;
}

//  ---------------------------------------------------------------------
//  Keys and names

//  A Z85 key of 40 characters that decodes; bin (if not NULL) gets it
static bool
s_key_valid (const char *text, byte *bin)
{
    byte scratch[32];
    return text && strlen (text) == BUS_CURVE_KEY_LEN
           && zmq_z85_decode (bin ? bin : scratch, text) != NULL;
}

//  The same rule as gateway/name: it is compared with a command's origin
//  and names an ack topic
static bool
s_name_valid (const char *name)
{
    size_t length = name ? strlen (name) : 0;
    if (length == 0 || length >= BUS_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum ((unsigned char) name[i]) && !strchr ("_.-", name[i]))
            return false;
    return true;
}

static bool
s_ends_with (const char *text, const char *suffix)
{
    size_t length = strlen (text), tail = strlen (suffix);
    return length >= tail && streq (text + length - tail, suffix);
}

static bool s_one_local (const char *endpoint);

//  A comma list (one endpoint per member of a writer group): local only
//  if every one is
bool
bus_curve_endpoint_local (const char *endpoint)
{
    const char *comma = strchr (endpoint, ',');
    if (!comma)
        return s_one_local (endpoint);
    char one[BUS_ENDPOINT_MAX];
    size_t length = (size_t) (comma - endpoint);
    if (length >= sizeof one)
        return false;
    memcpy (one, endpoint, length);
    one[length] = '\0';
    return s_one_local (one) && bus_curve_endpoint_local (comma + 1);
}

static bool
s_one_local (const char *endpoint)
{
    if (strncmp (endpoint, "inproc://", 9) == 0
        || strncmp (endpoint, "ipc://", 6) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    //  "tcp://source;host:port" connects from source: the host counts
    const char *host = strrchr (endpoint, ';');
    host = host ? host + 1 : endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon)
        return false;
    char name[64];
    size_t length = (size_t) (colon - host);
    if (length >= 2 && host[0] == '[' && host[length - 1] == ']')
        host++, length -= 2;
    if (length == 0 || length >= sizeof name)
        return false;
    memcpy (name, host, length);
    name[length] = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton (AF_INET, name, &v4) == 1)
        return (ntohl (v4.s_addr) >> 24) == 127;
    if (inet_pton (AF_INET6, name, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK (&v6);
    return streq (name, "localhost");
}

//  ---------------------------------------------------------------------
//  Certificate files

//  What one certificate file holds
typedef struct {
    bus_curve_peer_t peer;
    byte public_bin[32];
    byte secret_bin[32];
    bool has_secret;
} s_cert_t;

//  The file's text, parsed, and its mode; NULL with err set
static zconfig_t *
s_cert_load (const char *path, mode_t *mode, char *err, size_t err_cap)
{
    struct stat info;
    if (stat (path, &info) != 0) {
        bus_error_set (err, err_cap, -1, "%s: %s", path, strerror (errno));
        return NULL;
    }
    if (!S_ISREG (info.st_mode) || info.st_size > S_CERT_SIZE_MAX) {
        bus_error_set (err, err_cap, -1, "%s: not a certificate file", path);
        return NULL;
    }
    *mode = info.st_mode & 0777;
    zchunk_t *chunk = zchunk_slurp (path, S_CERT_SIZE_MAX);
    zconfig_t *root = chunk ? zconfig_chunk_load (chunk) : NULL;
    zchunk_destroy (&chunk);
    if (!root)
        bus_error_set (err, err_cap, -1, "%s: %s", path,
                       access (path, R_OK) ? strerror (errno)
                                           : "not a certificate (ZPL) file");
    return root;
}

//  Read the certificate at path into *cert; 0, or -1 with err set
static int
s_cert_read (const char *path, bool secret, s_cert_t *cert, char *err,
             size_t err_cap)
{
    memset (cert, 0, sizeof *cert);
    mode_t mode;
    zconfig_t *root = s_cert_load (path, &mode, err, err_cap);
    if (!root)
        return -1;
    const char *public_txt = zconfig_get (root, "/curve/public-key", NULL);
    const char *secret_txt = zconfig_get (root, "/curve/secret-key", NULL);
    const char *name = zconfig_get (root, "/metadata/name", NULL);
    const char *role = zconfig_get (root, "/metadata/role", NULL);
    const char *why = NULL;
    char derived[BUS_CURVE_KEY_LEN + 1], mode_why[96];
    cert->has_secret = secret_txt != NULL;
    if (!s_key_valid (public_txt, cert->public_bin))
        why = "no valid curve/public-key (40 characters of Z85)";
    else if (!s_name_valid (name))
        why = "metadata/name must be 1 to 80 of A-Z a-z 0-9 _ . -";
    else if (bus_curve_role_parse (role, &cert->peer.role) != 0)
        why = "metadata/role must be writer, gateway, edge or replica";
    else if (secret && !secret_txt)
        why = "is a public certificate; give the secret one "
              "(its name ends in _secret)";
    else if (secret && (mode & 077)) {
        snprintf (mode_why, sizeof mode_why,
                  "a secret certificate must be mode 0600, not %04o "
                  "(chmod 600 it)",
                  (unsigned) mode);
        why = mode_why;
    } else if (secret_txt && !s_key_valid (secret_txt, cert->secret_bin))
        why = "curve/secret-key is not a valid key";
    else if (secret_txt
             && (zmq_curve_public (derived, secret_txt) != 0
                 || !streq (derived, public_txt)))
        why = "curve/secret-key does not belong to its curve/public-key";
    if (!why) {
        memcpy (cert->peer.key, public_txt, BUS_CURVE_KEY_LEN + 1);
        bus_strlcpy (cert->peer.name, name, sizeof cert->peer.name);
    }
    zconfig_destroy (&root);
    if (why)
        return bus_error_set (err, err_cap, -1, "%s: %s", path, why);
    return 0;
}

int
bus_curve_cert_read (const char *path, bool secret, bus_curve_peer_t *peer,
                     zcert_t **cert_p, char *err, size_t err_cap)
{
    s_cert_t cert;
    if (s_cert_read (path, secret, &cert, err, err_cap) != 0)
        return -1;
    *peer = cert.peer;
    if (secret && cert_p) {
        *cert_p = zcert_new_from (cert.public_bin, cert.secret_bin);
        if (!*cert_p)
            return bus_error_set (err, err_cap, -1, "out of memory");
        zcert_set_meta (*cert_p, "name", "%s", cert.peer.name);
        zcert_set_meta (*cert_p, "role", "%s",
                        bus_curve_role_name (cert.peer.role));
    }
    return 0;
}

//  The ZPL text of a certificate; caller frees
static char *
s_cert_text (const bus_curve_peer_t *peer, const char *secret_txt)
{
    zconfig_t *root = zconfig_new ("root", NULL);
    if (!root)
        return NULL;
    const char *role = bus_curve_role_name (peer->role);
    if (secret_txt)
        zconfig_set_comment (root,
                             "   orderbus SECRET certificate of %s %s: keep "
                             "it on its host, mode 0600",
                             role, peer->name);
    else
        zconfig_set_comment (root,
                             "   orderbus public certificate of %s %s: "
                             "goes into the writer's link/allow directory",
                             role, peer->name);
    zconfig_put (root, "/metadata/name", peer->name);
    zconfig_put (root, "/metadata/role", role);
    zconfig_put (root, "/curve/public-key", peer->key);
    if (secret_txt)
        zconfig_put (root, "/curve/secret-key", secret_txt);
    char *text = zconfig_str_save (root);
    zconfig_destroy (&root);
    return text;
}

int
bus_curve_keys_new (const char *dir, const char *name, bus_curve_role_t role,
                    bus_curve_peer_t *peer, char *err, size_t err_cap)
{
    if (!s_name_valid (name))
        return bus_error_set (err, err_cap, -1,
                              "name must be 1 to 80 of A-Z a-z 0-9 _ . - "
                              "(got '%s')",
                              name);
    if (!zsys_has_curve ())
        return bus_error_set (err, err_cap, -1,
                              "this libzmq was built without CURVE");
    char secret_txt[BUS_CURVE_KEY_LEN + 1];
    memset (peer, 0, sizeof *peer);
    bus_strlcpy (peer->name, name, sizeof peer->name);
    peer->role = role;
    if (zmq_curve_keypair (peer->key, secret_txt) != 0)
        return bus_error_set (err, err_cap, -1, "cannot make a keypair: %s",
                              zmq_strerror (zmq_errno ()));
    char *public_path = zsys_sprintf ("%s/%s" S_PUBLIC_SUFFIX, dir, name);
    char *secret_path =
        zsys_sprintf ("%s/%s" S_PUBLIC_SUFFIX S_SECRET_SUFFIX, dir, name);
    char *public_text = s_cert_text (peer, NULL);
    char *secret_text = s_cert_text (peer, secret_txt);
    int rc = -1;
    if (!public_path || !secret_path || !public_text || !secret_text)
        bus_error_set (err, err_cap, -1, "out of memory");
    else if (bus_file_write_new (secret_path, secret_text, strlen (secret_text),
                                 0600, err, err_cap)
             == 0) {
        rc = bus_file_write_new (public_path, public_text, strlen (public_text),
                                 0644, err, err_cap);
        if (rc != 0)
            unlink (secret_path);
    }
    memset (secret_txt, 0, sizeof secret_txt);
    free (public_text);
    if (secret_text)
        memset (secret_text, 0, strlen (secret_text));
    free (secret_text);
    free (public_path);
    free (secret_path);
    return rc;
}

//  ---------------------------------------------------------------------
//  The allow directory

//  The file names of dir worth reading, sorted; NULL with err set
static zlistx_t *
s_allow_files (const char *dir, char *err, size_t err_cap)
{
    DIR *handle = opendir (dir);
    if (!handle) {
        bus_error_set (err, err_cap, -1, "link/allow: cannot read %s: %s", dir,
                       strerror (errno));
        return NULL;
    }
    zlistx_t *files = zlistx_new ();
    zlistx_set_destructor (files, (czmq_destructor *) zstr_free);
    zlistx_set_comparator (files, (czmq_comparator *) strcmp);
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (entry->d_name[0] != '.')
            zlistx_add_end (files, zsys_sprintf ("%s/%s", dir, entry->d_name));
    closedir (handle);
    zlistx_sort (files);
    return files;
}

//  Check one certificate of an allow directory against those before it.
//  A writer's certificate only in a group member's directory (member_key
//  not NULL), and never the member's own: the other members replicate
//  from it when it leads (bus_writer_repl.c lets their role do only that)
static int
s_allow_check (const s_cert_t *cert, const bus_curve_peer_t *peers,
               size_t count, const char *path, const char *member_key,
               char *err, size_t err_cap)
{
    if (cert->has_secret || s_ends_with (path, S_SECRET_SUFFIX))
        return bus_error_set (err, err_cap, -1,
                              "link/allow: %s is a secret certificate: copy "
                              "only the public .cert file to the writer",
                              path);
    if (cert->peer.role == BUS_CURVE_WRITER && !member_key)
        return bus_error_set (err, err_cap, -1,
                              "link/allow: %s is a writer's certificate; "
                              "allow gateways, edges and replicas (a "
                              "writer's only in a group member's, with "
                              "leader/etcd)",
                              path);
    if (member_key && streq (cert->peer.key, member_key))
        return bus_error_set (err, err_cap, -1,
                              "link/allow: %s is this member's own "
                              "certificate (%s '%s'): allow the other "
                              "members' writer certificates only",
                              path, bus_curve_role_name (cert->peer.role),
                              cert->peer.name);
    for (size_t i = 0; i < count; i++)
        if (streq (peers[i].name, cert->peer.name)
            || streq (peers[i].key, cert->peer.key))
            return bus_error_set (
                err, err_cap, -1, "link/allow: %s: %s '%s' is allowed twice",
                path, streq (peers[i].key, cert->peer.key) ? "key" : "name",
                streq (peers[i].key, cert->peer.key) ? cert->peer.key
                                                     : cert->peer.name);
    return 0;
}

//  Read dir into a new array *peers_p (caller frees); count or -1
static int
s_allow_load (const char *dir, const char *member_key,
              bus_curve_peer_t **peers_p, zlistx_t **paths_p, char *err,
              size_t err_cap)
{
    zlistx_t *files = s_allow_files (dir, err, err_cap);
    if (!files)
        return -1;
    size_t count = 0, cap = zlistx_size (files);
    bus_curve_peer_t *peers = calloc (cap ? cap : 1, sizeof *peers);
    int rc = peers ? 0 : bus_error_set (err, err_cap, -1, "out of memory");
    if (rc == 0 && cap > S_ALLOW_MAX)
        rc = bus_error_set (err, err_cap, -1,
                            "link/allow: %s holds %zu files, more than %d", dir,
                            cap, S_ALLOW_MAX);
    for (const char *path = (const char *) zlistx_first (files);
         rc == 0 && path; path = (const char *) zlistx_next (files)) {
        s_cert_t cert;
        rc = s_cert_read (path, false, &cert, err, err_cap);
        if (rc != 0) {
            char why[2048];
            snprintf (why, sizeof why, "%s", err);
            bus_error_set (err, err_cap, -1, "link/allow: %s", why);
        } else
            rc = s_allow_check (&cert, peers, count, path, member_key, err,
                                err_cap);
        if (rc == 0)
            peers[count++] = cert.peer;
    }
    if (rc != 0) {
        free (peers);
        zlistx_destroy (&files);
        return -1;
    }
    *peers_p = peers;
    if (paths_p)
        *paths_p = files;
    else
        zlistx_destroy (&files);
    return (int) count;
}

int
bus_curve_allow_read (const char *dir, const char *member_key,
                      bus_curve_allow_fn *fn, void *arg, char *err,
                      size_t err_cap)
{
    bus_curve_peer_t *peers = NULL;
    zlistx_t *paths = NULL;
    int count = s_allow_load (dir, member_key, &peers, &paths, err, err_cap);
    const char *path = paths ? (const char *) zlistx_first (paths) : NULL;
    for (int i = 0; i < count && fn; i++) {
        fn (&peers[i], path, arg);
        path = (const char *) zlistx_next (paths);
    }
    free (peers);
    zlistx_destroy (&paths);
    return count;
}

//  ---------------------------------------------------------------------
//  The peer table: a key's lookup costs one hash of 40 bytes and, nearly
//  always, one comparison.  Built once; read by any thread.

static uint32_t
s_hash (const char *key)
{
    uint32_t hash = 2166136261u;   //  FNV-1a
    for (size_t i = 0; i < BUS_CURVE_KEY_LEN && key[i]; i++)
        hash = (hash ^ (unsigned char) key[i]) * 16777619u;
    return hash;
}

static int
s_table_build (bus_curve_t *self)
{
    size_t slots = 8;
    while (slots < 2 * self->peer_count)
        slots *= 2;
    self->slots = calloc (slots, sizeof *self->slots);
    if (!self->slots)
        return -1;
    self->slot_mask = slots - 1;
    for (size_t i = 0; i < self->peer_count; i++) {
        size_t slot = s_hash (self->peers[i].key) & self->slot_mask;
        while (self->slots[slot])
            slot = (slot + 1) & self->slot_mask;
        self->slots[slot] = (uint32_t) i + 1;
    }
    return 0;
}

const bus_curve_peer_t *
bus_curve_peer (const bus_curve_t *self, const char *user_id)
{
    if (!self || !self->slots || !user_id)
        return NULL;
    size_t slot = s_hash (user_id) & self->slot_mask;
    //  At most half the slots are taken, so an empty one ends the probe
    while (self->slots[slot]) {
        const bus_curve_peer_t *peer = &self->peers[self->slots[slot] - 1];
        if (streq (peer->key, user_id))
            return peer;
        slot = (slot + 1) & self->slot_mask;
    }
    return NULL;
}

const bus_curve_peer_t *
bus_curve_sender (const bus_curve_t *self, const char *user_id,
                  const char *token)
{
    //  The token proves the handler answered this connection: a User-Id
    //  without it is the client's own word (no handler was bound)
    if (!self || !*self->zap_token || !token
        || strlen (token) != BUS_CURVE_KEY_LEN
        || !streq (token, self->zap_token))
        return NULL;
    return bus_curve_peer (self, user_id);
}

//  ---------------------------------------------------------------------
//  The refusal watcher: one actor reads the monitors of the writer's
//  sockets.  It is the only place a refused handshake can be seen: the
//  ZAP handler answers libzmq and tells nobody, and a peer that does not
//  speak CURVE never reaches it at all.

static void
s_watch_event (bus_curve_t *self, s_watch_t *watch)
{
    zmsg_t *msg = zmsg_recv (watch->pair);
    zframe_t *head = msg ? zmsg_first (msg) : NULL;
    if (!head || zframe_size (head) != 6) {
        zmsg_destroy (&msg);
        return;
    }
    uint16_t event;
    uint32_t value;
    memcpy (&event, zframe_data (head), 2);
    memcpy (&value, zframe_data (head) + 2, 4);
    zmsg_destroy (&msg);
    char why[80];
    int kind = 0;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf (why, sizeof why,
                  "its key is not in link/allow (or not for this socket: "
                  "ZAP %u)",
                  value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
             && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        snprintf (why, sizeof why, "it does not speak CURVE");
        kind = 1;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        snprintf (why, sizeof why,
                  "bad handshake (ZMTP error 0x%x; a wrong writer key?)",
                  value);
        kind = 2;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        kind = 3;
        snprintf (why, sizeof why,
                  "handshake failed (%s): not CURVE, or hung up",
                  strerror ((int) value));
    } else
        return;
    uint64_t n = atomic_fetch_add (&self->refused, 1) + 1;
    //  A few lines of each kind a minute: a peer retrying every 100 ms
    //  must not fill the log, nor hide another kind of refusal
    int64_t now = zclock_mono ();
    if (now - watch->window_ms >= S_LOG_WINDOW_MS) {
        watch->window_ms = now;
        memset (watch->logged, 0, sizeof watch->logged);
    }
    if (watch->logged[kind]++ < S_LOG_PER_WINDOW)
        zsys_warning ("%s: %s: refused a peer: %s [%" PRIu64 " refused so far]",
                      self->who, watch->name, why, n);
}

//  "WATCH" name pair: take pair over and poll it
static void
s_watch_add (zsock_t *pipe, zmsg_t *msg, zpoller_t *poller, s_watch_t *watches,
             int *count)
{
    char *name = zmsg_popstr (msg);
    zframe_t *frame = zmsg_pop (msg);
    int rc = -1;
    if (name && frame && zframe_size (frame) == sizeof (zsock_t *)
        && *count < S_WATCH_MAX) {
        s_watch_t *watch = &watches[*count];
        memset (watch, 0, sizeof *watch);
        watch->window_ms = zclock_mono ();
        memcpy (&watch->pair, zframe_data (frame), sizeof watch->pair);
        snprintf (watch->name, sizeof watch->name, "%s", name);
        rc = zpoller_add (poller, watch->pair);
        if (rc == 0)
            (*count)++;   //  else the caller keeps the pair
    }
    zstr_free (&name);
    zframe_destroy (&frame);
    zsock_signal (pipe, rc == 0 ? 0 : 1);
}

static void
s_watcher (zsock_t *pipe, void *args)
{
    bus_curve_t *self = (bus_curve_t *) args;
    s_watch_t watches[S_WATCH_MAX];
    int count = 0;
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zsock_signal (pipe, 0);
    while (poller) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = msg ? zmsg_popstr (msg) : NULL;
            bool term = !command || streq (command, "$TERM");
            if (!term && streq (command, "WATCH"))
                s_watch_add (pipe, msg, poller, watches, &count);
            zstr_free (&command);
            zmsg_destroy (&msg);
            if (term)
                break;
        }
        for (int i = 0; which && i < count; i++)
            if (which == watches[i].pair)
                s_watch_event (self, &watches[i]);
        if (!which && zpoller_terminated (poller))
            break;
    }
    for (int i = 0; i < count; i++)
        zsock_destroy (&watches[i].pair);
    zpoller_destroy (&poller);
}

//  A monitor's inproc endpoint, new each call in the process.  Numbered,
//  not named by address: a pooled socket's watch is made and freed
//  often, and a writer made again (a member leading again) may get a
//  freed one's address back while libzmq still holds the closed
//  monitor's endpoint
static void
s_monitor_endpoint (char *endpoint, size_t cap)
{
    static atomic_uint_fast64_t made;
    snprintf (endpoint, cap, "inproc://orderbus-curve-monitor-%" PRIu64,
              (uint64_t) atomic_fetch_add (&made, 1));
}

int
bus_curve_server (bus_curve_t *self, zsock_t *sock, const char *name)
{
    if (!bus_curve_enabled (self))
        return 0;
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, name);
    //  A connection that does not finish its handshake is dropped after
    //  this, not libzmq's 30 s: a flood of idle connections holds less
    zsock_set_handshake_ivl (sock, BUS_CURVE_HANDSHAKE_MS);
    char endpoint[96];
    s_monitor_endpoint (endpoint, sizeof endpoint);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                 | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    zsock_t *pair = NULL;
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, events) == 0)
        pair = zsock_new (ZMQ_PAIR);
    if (!pair || zsock_connect (pair, "%s", endpoint) != 0) {
        zsock_destroy (&pair);
        return -1;
    }
    //  Handed over with a full barrier (the pipe's send and the wait)
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "WATCH");
    zmsg_addstr (msg, name);
    zmsg_addmem (msg, &pair, sizeof pair);
    if (zmsg_send (&msg, self->watcher) != 0 || zsock_wait (self->watcher)) {
        zmsg_destroy (&msg);
        zsock_destroy (&pair);   //  not taken
        return -1;
    }
    return 0;
}

void
bus_curve_client (const bus_curve_t *self, zsock_t *sock)
{
    if (!bus_curve_enabled (self))
        return;
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, self->pins[0]);
}

void
bus_curve_client_at (const bus_curve_t *self, zsock_t *sock, int index)
{
    if (!bus_curve_enabled (self))
        return;
    //  bus_curve_new checked that a list has a key per endpoint
    bool one = self->pin_count <= 1 || index < 0 || index >= self->pin_count;
    zsock_set_curve_serverkey (sock, self->pins[one ? 0 : index]);
}

int
bus_curve_pins (const bus_curve_t *self)
{
    return bus_curve_enabled (self) ? self->pin_count : 0;
}

//  ---------------------------------------------------------------------
//  Client watches

#define S_REDIAL_MS 1000   //  a given-up connection is dialled again after
//  The events after which libzmq gives a connection up for good
#define S_WATCH_GIVE_UP \
    (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

typedef struct {
    char endpoint[BUS_ENDPOINT_MAX];   //  one of the comma list
    char resolved[80];                 //  tcp://IP:port of a host name's, or ""
    bool up;                 //  its handshake succeeded, not lost since
    int64_t redial_at;       //  zclock_mono of the next dial, 0 = none
    int64_t log_window_ms;   //  when its log window began
    int logged;              //  give-ups logged in the window
} s_dial_t;

struct _bus_curve_watch_t {
    zsock_t *pair;              //  reads sock's monitor
    zsock_t *sock;              //  borrowed: the owner's client socket
    const bus_curve_t *curve;   //  borrowed: its keys, for a redial
    s_dial_t dials[BUS_CURVE_PINS_MAX];   //  the endpoints, in list order
    int dial_count;
};

//  A tcp:// endpoint by host name: its IPv4 address too (libzmq's, with
//  ZMQ_IPV6 off), as a monitor event may name the connection by it
static void
s_dial_resolve (s_dial_t *dial)
{
    const char *host = dial->endpoint + strlen ("tcp://");
    const char *colon = strrchr (dial->endpoint, ':');
    if (strncmp (dial->endpoint, "tcp://", 6) != 0 || colon < host
        || strchr (host, ';') || (size_t) (colon - host) >= 64)
        return;
    char name[64];
    memcpy (name, host, (size_t) (colon - host));
    name[colon - host] = '\0';
    struct addrinfo hints = { .ai_family = AF_INET,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    char ip[INET_ADDRSTRLEN];
    if (getaddrinfo (name, NULL, &hints, &found) == 0 && found
        && inet_ntop (AF_INET,
                      &((struct sockaddr_in *) found->ai_addr)->sin_addr, ip,
                      sizeof ip)
        && !streq (ip, name))
        snprintf (dial->resolved, sizeof dial->resolved, "tcp://%s%s", ip,
                  colon);
    if (found)
        freeaddrinfo (found);
}

//  Split endpoints into self's dials; false if there are too many, or
//  one is empty or too long
static bool
s_watch_split (bus_curve_watch_t *self, const char *endpoints)
{
    const char *at = endpoints;
    while (self->dial_count < BUS_CURVE_PINS_MAX) {
        size_t length = strcspn (at, ",");
        s_dial_t *dial = &self->dials[self->dial_count++];
        if (length == 0 || length >= sizeof dial->endpoint)
            return false;
        memcpy (dial->endpoint, at, length);
        dial->endpoint[length] = '\0';
        s_dial_resolve (dial);
        if (!at[length])
            return true;
        at += length + 1;
    }
    return false;
}

bus_curve_watch_t *
bus_curve_watch_new (const bus_curve_t *curve, zsock_t *sock,
                     const char *endpoint)
{
    if (!bus_curve_enabled (curve))
        return NULL;
    bus_curve_watch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sock = sock;
    self->curve = curve;
    char monitor[96];
    s_monitor_endpoint (monitor, sizeof monitor);
    int events = S_WATCH_GIVE_UP | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                 | ZMQ_EVENT_DISCONNECTED;
    if (s_watch_split (self, endpoint)
        && zmq_socket_monitor (zsock_resolve (sock), monitor, events) == 0)
        self->pair = zsock_new (ZMQ_PAIR);
    if (!self->pair || zsock_connect (self->pair, "%s", monitor) != 0) {
        //  Never silent: a link nobody watches is not redialled
        zsys_error ("link to %s: cannot watch its handshakes (%s)", endpoint,
                    self->dial_count && !self->pair
                        ? zmq_strerror (zmq_errno ())
                        : "more endpoints than keys, or an empty one");
        bus_curve_watch_destroy (&self);
    } else
        zsock_set_rcvtimeo (self->pair, 0);   //  read what is there
    return self;
}

void
bus_curve_watch_destroy (bus_curve_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_curve_watch_t *self = *self_p;
    if (self->pair)   //  stop the monitor before its reader goes
        zmq_socket_monitor (zsock_resolve (self->sock), NULL, 0);
    zsock_destroy (&self->pair);
    free (self);
    *self_p = NULL;
}

zsock_t *
bus_curve_watch_socket (bus_curve_watch_t *self)
{
    return self ? self->pair : NULL;
}

//  Schedule dial for a new connection.  A few lines a minute per
//  endpoint: a rogue listener on a member's port refuses every second
static void
s_watch_due (s_dial_t *dial)
{
    if (dial->redial_at)
        return;
    dial->redial_at = zclock_mono () + S_REDIAL_MS;
    int64_t now = zclock_mono ();
    if (now - dial->log_window_ms >= S_LOG_WINDOW_MS) {
        dial->log_window_ms = now;
        dial->logged = 0;
    }
    if (dial->logged++ < S_LOG_PER_WINDOW)
        zsys_warning ("link to %s: handshake refused (not CURVE, or not the "
                      "writer's key, or ours not allowed): dialling again in "
                      "%d ms",
                      dial->endpoint, S_REDIAL_MS);
}

//  The next event on self's monitor: its number (0 if none), and the
//  dial it names (by the address connected to, or its IP), or -1
static int
s_watch_next (bus_curve_watch_t *self, int *which)
{
    zmsg_t *msg = zmsg_recv (self->pair);
    if (!msg)
        return 0;
    zframe_t *head = zmsg_first (msg);
    zframe_t *address = zmsg_next (msg);
    uint16_t event = 0;
    if (head && zframe_size (head) >= 2)
        memcpy (&event, zframe_data (head), 2);
    *which = -1;
    for (int i = 0; address && i < self->dial_count; i++)
        if (zframe_streq (address, self->dials[i].endpoint)
            || (*self->dials[i].resolved
                && zframe_streq (address, self->dials[i].resolved)))
            *which = i;
    zmsg_destroy (&msg);
    return event ? event : -1;
}

void
bus_curve_watch_read (bus_curve_watch_t *self)
{
    int event, found;
    while (self && (event = s_watch_next (self, &found)) != 0) {
        if (found >= 0 && event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            self->dials[found].up = true;
        else if (found >= 0 && event == ZMQ_EVENT_DISCONNECTED)
            self->dials[found].up = false;   //  libzmq reconnects it
        if (event < 0 || !(event & S_WATCH_GIVE_UP))
            continue;
        //  An address we did not give: every endpoint whose connection
        //  is not up is due; one whose handshake succeeds before then
        //  (its event may come after this one) is left alone after all
        if (found >= 0)
            self->dials[found].up = false;
        for (int i = 0; i < self->dial_count; i++)
            if (found == i || (found < 0 && !self->dials[i].up))
                s_watch_due (&self->dials[i]);
    }
}

bool
bus_curve_watch_refused (bus_curve_watch_t *self)
{
    bool refused = false;
    int event, found;
    while (self && (event = s_watch_next (self, &found)) != 0)
        refused |= event > 0 && (event & S_WATCH_GIVE_UP);
    return refused;
}

bool
bus_curve_watch_redial (bus_curve_watch_t *self, int64_t now)
{
    bool dialled = false;
    for (int i = 0; self && i < self->dial_count; i++) {
        s_dial_t *dial = &self->dials[i];
        if (!dial->redial_at || now < dial->redial_at)
            continue;
        dial->redial_at = 0;
        if (dial->up)   //  never a healthy connection (the leader's)
            continue;
        //  A connect to an endpoint the socket still lists does nothing:
        //  the given-up connection is forgotten first.  The server key is
        //  copied at connect: this endpoint's, again
        zsock_disconnect (self->sock, "%s", dial->endpoint);
        bus_curve_client_at (self->curve, self->sock, i);
        int rc = zsock_connect (self->sock, "%s", dial->endpoint);
        if (rc != 0 || dial->logged <= S_LOG_PER_WINDOW)   //  as s_watch_due
            zsys_info ("link to %s: dialled again%s%s", dial->endpoint,
                       rc == 0 ? "" : ": ",
                       rc == 0 ? "" : zmq_strerror (zmq_errno ()));
        dialled |= rc == 0;
    }
    return dialled;
}

bool
bus_curve_enabled (const bus_curve_t *self)
{
    return self && self->enabled;
}

uint64_t
bus_curve_refused (const bus_curve_t *self)
{
    return self ? atomic_load (&self->refused) : 0;
}

//  ---------------------------------------------------------------------
//  Construction

//  The endpoints role's node binds or connects to, with their keys
typedef struct {
    const char *key;
    const char *value;
} s_endpoint_t;

static int
s_endpoints (const bus_config_t *config, s_endpoint_t *out)
{
    int count = 0;
    if (config->role == BUS_ROLE_REPLICA) {
        out[count++] = (s_endpoint_t){ "replica/upstream", config->replicate };
        if (*config->replica_sync)
            out[count++] =
                (s_endpoint_t){ "replica/sync", config->replica_sync };
        return count;
    }
    if (config->role != BUS_ROLE_EDGE)
        out[count++] = (s_endpoint_t){ "endpoints/intake", config->intake };
    out[count++] = (s_endpoint_t){ "endpoints/events", config->events };
    out[count++] = (s_endpoint_t){ "endpoints/sync", config->sync };
    if (config->role == BUS_ROLE_WRITER && *config->replicate)
        out[count++] = (s_endpoint_t){ "writer/replicate", config->replicate };
    if (config->role == BUS_ROLE_WRITER && *config->leader_peers)
        out[count++] = (s_endpoint_t){ "leader/peers", config->leader_peers };
    return count;
}

//  Plaintext links: allowed where only this host reaches them, or when
//  the operator said so by name.  0, or -1 with err set.
static int
s_plain_check (const bus_config_t *config, char *err, size_t err_cap)
{
    if (*config->allow_dir || *config->writer_key)
        return bus_error_set (err, err_cap, -1,
                              "%s is set but link/cert "
                              "(--cert) is not: give this "
                              "node its secret certificate",
                              *config->allow_dir ? "link/allow (--allow)"
                                                 : "link/writer_key "
                                                   "(--writer-key)");
    if (config->role == BUS_ROLE_UP)
        return 0;
    s_endpoint_t endpoints[5];
    int count = s_endpoints (config, endpoints);
    for (int i = 0; i < count; i++)
        if (bus_curve_endpoint_local (endpoints[i].value))
            continue;
        else if (config->insecure_links) {
            zsys_warning ("%s: links in plaintext to %s and beyond: anyone "
                          "on the network can read and forge them "
                          "(--insecure-plaintext-links)",
                          bus_role_name (config->role), endpoints[i].value);
            return 0;
        } else
            return bus_error_set (
                err, err_cap, -1,
                "%s %s can be reached from other hosts, but link/cert "
                "(--cert) is not set: the links would be neither encrypted "
                "nor authenticated.  Make keys with `orderbus keys new` "
                "(docs/security.md), or pass --insecure-plaintext-links",
                endpoints[i].key, endpoints[i].value);
    return 0;
}

//  A writer group's member, as its writer or as its standby (a replica
//  inside the member: bus_member.c keeps leader/etcd in its config)
static bool
s_member (const bus_config_t *config)
{
    return *config->leader_etcd
           && (config->role == BUS_ROLE_WRITER
               || config->role == BUS_ROLE_REPLICA);
}

//  The node's own certificate: the role it runs, and a gateway's name
static int
s_own_cert (bus_curve_t *self, const bus_config_t *config, char *err,
            size_t err_cap)
{
    bus_curve_peer_t me;
    char why[BUS_ERROR_MAX + 300];
    if (bus_curve_cert_read (config->cert_file, true, &me, &self->cert, why,
                             sizeof why)
        != 0)
        return bus_error_set (err, err_cap, -1, "link/cert: %s", why);
    bool member = s_member (config);
    bus_curve_role_t want =
        config->role == BUS_ROLE_WRITER || member ? BUS_CURVE_WRITER
        : config->role == BUS_ROLE_GATEWAY        ? BUS_CURVE_GATEWAY
        : config->role == BUS_ROLE_REPLICA        ? BUS_CURVE_REPLICA
                                                  : BUS_CURVE_EDGE;
    if (me.role != want)
        return bus_error_set (err, err_cap, -1,
                              "link/cert: %s is the certificate of %s '%s', "
                              "not of a%s %s",
                              config->cert_file, bus_curve_role_name (me.role),
                              me.name, want == BUS_CURVE_EDGE ? "n" : "",
                              bus_curve_role_name (want));
    //  The leader checks the standby's hello (leader/name) against it
    if (member && !streq (me.name, config->leader_name))
        return bus_error_set (err, err_cap, -1,
                              "leader/name is '%s' but link/cert %s is "
                              "writer '%s''s: a member's certificate is "
                              "named after it (orderbus keys new --name %s "
                              "--role writer)",
                              config->leader_name, config->cert_file, me.name,
                              config->leader_name);
    //  The writer checks a command's origin (a replica's hello) against
    //  this name
    if (want == BUS_CURVE_REPLICA && !streq (me.name, config->name))
        return bus_error_set (err, err_cap, -1,
                              "replica/name is '%s' but link/cert %s is "
                              "replica '%s's: give --replica-name %s",
                              config->name, config->cert_file, me.name,
                              me.name);
    if (want == BUS_CURVE_GATEWAY && !streq (me.name, config->name))
        return bus_error_set (err, err_cap, -1,
                              "gateway/name is '%s' but link/cert %s is "
                              "gateway '%s's: give --name %s",
                              config->name, config->cert_file, me.name,
                              me.name);
    return 0;
}

//  A pin into key[]: a Z85 key, or the certificate of a node of role
//  want; setting names the setting at fault.  0, or -1 with err set.
static int
s_pin (const char *value, bus_curve_role_t want, const char *setting, char *key,
       char *err, size_t err_cap)
{
    //  A file first: a path can be 40 characters of Z85's alphabet too
    //  ("/tmp/orderbus-bench-run/keys/writer.cert" is), and was once
    //  taken for a key
    struct stat info;
    if (stat (value, &info) != 0 && s_key_valid (value, NULL)) {
        bus_strlcpy (key, value, BUS_CURVE_KEY_LEN + 1);
        return 0;
    }
    bus_curve_peer_t peer;
    char why[BUS_ERROR_MAX + 300];
    if (bus_curve_cert_read (value, false, &peer, NULL, why, sizeof why) != 0)
        return bus_error_set (err, err_cap, -1,
                              "%s: neither a 40-character Z85 "
                              "key nor a readable certificate: %s",
                              setting, why);
    if (peer.role != want)
        return bus_error_set (err, err_cap, -1,
                              "%s: %s is the certificate of %s "
                              "'%s', not of a %s",
                              setting, value, bus_curve_role_name (peer.role),
                              peer.name, bus_curve_role_name (want));
    bus_strlcpy (key, peer.key, BUS_CURVE_KEY_LEN + 1);
    return 0;
}

static int
s_list_count (const char *list)
{
    int count = 1;
    for (const char *at = list; (at = strchr (at, ',')); at++)
        count++;
    return count;
}

//  link/writer_key's comma list into self->pins, each a Z85 key or a
//  writer's .cert file.  0, or -1 with err set.
static int
s_pin_list (bus_curve_t *self, const char *value, char *err, size_t err_cap)
{
    self->pin_count = 0;
    for (const char *at = value;;) {
        size_t length = strcspn (at, ",");
        char one[BUS_PATH_MAX];
        if (self->pin_count == BUS_CURVE_PINS_MAX)
            return bus_error_set (err, err_cap, -1,
                                  "link/writer_key: more than %d keys",
                                  BUS_CURVE_PINS_MAX);
        if (length == 0 || length >= sizeof one)
            return bus_error_set (err, err_cap, -1,
                                  "link/writer_key: key %d of the comma list "
                                  "is %s",
                                  self->pin_count + 1,
                                  length ? "too long" : "empty");
        memcpy (one, at, length);
        one[length] = '\0';
        char *key = self->pins[self->pin_count];
        if (s_pin (one, BUS_CURVE_WRITER, "link/writer_key", key, err, err_cap)
            != 0)
            return -1;
        //  Each member has a key of its own: twice is a slip of the pen
        for (int i = 0; i < self->pin_count; i++)
            if (streq (self->pins[i], key))
                return bus_error_set (err, err_cap, -1,
                                      "link/writer_key: keys %d and %d are "
                                      "the same key %s: each member of a "
                                      "writer group has its own",
                                      i + 1, self->pin_count + 1, key);
        self->pin_count++;
        if (!at[length])
            return 0;
        at += length + 1;
    }
}

//  The pins line up with every endpoint list the node connects to: one
//  key for all, or one per endpoint in the same order.  A member lists
//  a key per leader/peers entry (each member has its own).
static int
s_pins_align (const bus_curve_t *self, const bus_config_t *config, char *err,
              size_t err_cap)
{
    s_endpoint_t lists[5];
    int count = 0;
    if (s_member (config))
        lists[count++] = (s_endpoint_t){ "leader/peers", config->leader_peers };
    else if (config->role == BUS_ROLE_REPLICA)   //  replica/sync binds
        lists[count++] =
            (s_endpoint_t){ "replica/upstream", config->replicate };
    else
        count = s_endpoints (config, lists);
    for (int i = 0; i < count; i++) {
        int endpoints = s_list_count (lists[i].value);
        if (endpoints == self->pin_count
            || (self->pin_count == 1 && !s_member (config)))
            continue;
        return bus_error_set (
            err, err_cap, -1,
            "link/writer_key has %d key%s but %s lists %d endpoint%s (%s): "
            "%s",
            self->pin_count, self->pin_count == 1 ? "" : "s", lists[i].key,
            endpoints, endpoints == 1 ? "" : "s", lists[i].value,
            s_member (config)
                ? "give each other member's writer key (or .cert file), in "
                  "the order of leader/peers"
                : "give one key for all, or one per endpoint in the same "
                  "order (docs/failover.md)");
    }
    return 0;
}

//  A gateway's, edge's or replica's pins: Z85 keys, or writers' .cert
//  files
static int
s_writer_key (bus_curve_t *self, const bus_config_t *config, char *err,
              size_t err_cap)
{
    if (!*config->writer_key)
        return bus_error_set (err, err_cap, -1,
                              "link/writer_key (--writer-key) is required "
                              "with link/cert: the writer's public key, or "
                              "its .cert file (a writer group: each "
                              "member's, comma-separated)");
    if (s_pin_list (self, config->writer_key, err, err_cap) != 0)
        return -1;
    return s_pins_align (self, config, err, err_cap);
}

//  A group member's pins: the other members' writer keys, one per
//  leader/peers entry, none its own, each allowed in its link/allow (or
//  the other could not follow this member when it leads).  Its standby
//  pins the leader with them; its writer only checks them.
static int
s_member_init (bus_curve_t *self, const bus_config_t *config, char *err,
               size_t err_cap)
{
    if (!*config->writer_key)
        return bus_error_set (err, err_cap, -1,
                              "link/writer_key (--writer-key) is required "
                              "on a group member with link/cert: the other "
                              "members' writer keys or .cert files, in the "
                              "order of leader/peers");
    if (!*config->allow_dir)
        return bus_error_set (err, err_cap, -1,
                              "link/allow (--allow DIR) is required with "
                              "link/cert on a group member: the other "
                              "members' and the nodes' public certificates");
    if (s_pin_list (self, config->writer_key, err, err_cap) != 0
        || s_pins_align (self, config, err, err_cap) != 0)
        return -1;
    const char *own = zcert_public_txt (self->cert);
    bus_curve_peer_t *allowed = NULL;
    int count =
        s_allow_load (config->allow_dir, own, &allowed, NULL, err, err_cap);
    if (count < 0)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < self->pin_count; i++) {
        bool found = false;
        for (int j = 0; j < count; j++)
            found |= streq (allowed[j].key, self->pins[i])
                     && allowed[j].role == BUS_CURVE_WRITER;
        if (streq (self->pins[i], own))
            rc = bus_error_set (err, err_cap, -1,
                                "link/writer_key: key %d is this member's "
                                "own (link/cert): list the other members'",
                                i + 1);
        else if (!found)
            rc = bus_error_set (err, err_cap, -1,
                                "link/writer_key: key %d (%s) is not a "
                                "writer's certificate in link/allow %s: put "
                                "that member's public .cert there too, or it "
                                "cannot follow this member when it leads",
                                i + 1, self->pins[i], config->allow_dir);
    }
    //  A writer's certificate that is not another member's may replicate
    //  from this member when it leads: a left-over, or a member missing
    //  from link/writer_key
    for (int j = 0; rc == 0 && j < count; j++) {
        bool pinned = false;
        for (int i = 0; i < self->pin_count; i++)
            pinned |= streq (allowed[j].key, self->pins[i]);
        if (allowed[j].role == BUS_CURVE_WRITER && !pinned
            && !streq (allowed[j].key, own))
            zsys_warning ("link/allow %s holds writer certificate '%s' (%s), "
                          "not in link/writer_key: it may replicate from "
                          "this member; remove it unless it is a member",
                          config->allow_dir, allowed[j].name, allowed[j].key);
    }
    free (allowed);
    return rc;
}

bus_curve_t *
bus_curve_pin (const bus_curve_t *self, const char *value, char *err,
               size_t err_cap)
{
    bus_curve_t *pin = calloc (1, sizeof *pin);
    if (!pin) {
        bus_error_set (err, err_cap, -1, "out of memory");
        return NULL;
    }
    pin->enabled = true;
    pin->pin_count = 1;
    pin->cert = zcert_dup (self->cert);
    if (!pin->cert)
        bus_error_set (err, err_cap, -1, "out of memory");
    if (!pin->cert
        || s_pin (value, BUS_CURVE_REPLICA, "link/reads_key", pin->pins[0], err,
                  err_cap)
               != 0)
        bus_curve_destroy (&pin);
    return pin;
}

//  ---------------------------------------------------------------------
//  The ZAP handler (RFC 27): whose handshake completes, on which socket.
//  Not czmq's zauth, which cannot tell the sockets apart: a group
//  member's key is let in on the replicate socket (ZAP domain
//  "replicate") and nowhere else.  The User-Id it returns is the Z85 key
//  (bus_curve_peer looks it up, as with zauth).

//  The reply's metadata (ZMTP's encoding): on a 200, the process's token
//  under S_ZAP_TOKEN, which bus_curve_sender checks.  libzmq puts the
//  handler's properties before the client's own, so a client's
//  "User-Id" or token never stands beside a handler's answer; and
//  without one, the client cannot know the token.
static void
s_zap_metadata (const bus_curve_t *self, zmsg_t *reply, bool ok)
{
    byte data[1 + sizeof S_ZAP_TOKEN + 4 + BUS_CURVE_KEY_LEN];
    size_t name = strlen (S_ZAP_TOKEN);
    data[0] = (byte) name;
    memcpy (data + 1, S_ZAP_TOKEN, name);
    uint32_t length = htonl (BUS_CURVE_KEY_LEN);
    memcpy (data + 1 + name, &length, 4);
    memcpy (data + 1 + name + 4, self->zap_token, BUS_CURVE_KEY_LEN);
    zmsg_addmem (reply, data, ok ? 1 + name + 4 + BUS_CURVE_KEY_LEN : 0);
}

static void
s_zap_answer (bus_curve_t *self, zsock_t *handler)
{
    zmsg_t *request = zmsg_recv (handler);
    if (!request)
        return;
    zframe_t *version = zmsg_pop (request);
    zframe_t *sequence = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    zframe_destroy (&version);
    for (int i = 0; i < 2; i++) {   //  address, routing id: not used
        zframe_t *unused = zmsg_pop (request);
        zframe_destroy (&unused);
    }
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    char text[BUS_CURVE_KEY_LEN + 1] = "";
    const bus_curve_peer_t *peer = NULL;
    if (mechanism && streq (mechanism, "CURVE") && key
        && zframe_size (key) == 32
        && zmq_z85_encode (text, zframe_data (key), 32))
        peer = bus_curve_peer (self, text);
    bool ok = peer
              && (peer->role != BUS_CURVE_WRITER
                  || (domain && streq (domain, "replicate")));
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (sequence)
        zmsg_append (reply, &sequence);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, ok ? "200" : "400");
    zmsg_addstr (reply, ok     ? "OK"
                        : peer ? "a group member's key only replicates"
                               : "not allowed");
    zmsg_addstr (reply, ok ? text : "");
    s_zap_metadata (self, reply, ok);
    zmsg_send (&reply, handler);
    zframe_destroy (&sequence);
    zframe_destroy (&key);
    zstr_free (&domain);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
}

//  The handler's end, other than on $TERM: fail closed.  libzmq 4.3
//  lets every CURVE client in when nothing is bound at the ZAP endpoint
//  (ZMQ_ZAP_ENFORCE_DOMAIN is a draft), and the client's own "User-Id"
//  metadata then stands: a writer must not run one moment without its
//  handler.  Aborted here, before the socket is closed, so that no
//  handshake completes in between (libzmq waits on a bound, silent one).
static void
s_zap_died (const char *why)
{
    zsys_error ("CURVE: the ZAP handler stopped (%s) while the node runs: "
                "aborting, as any key would get in without it",
                why);
    abort ();
}

#ifdef ORDERBUS_DEBUG_ZAP_EXIT_MS
//  A Debug build's test switch: ORDERBUS_DEBUG_ZAP_EXIT_MS=MS (1 to
//  60000) ends the handler's loop that long after it starts, as a bug
//  would, so that a test sees the node abort rather than let keys in
static int64_t
s_zap_debug_exit_at (void)
{
    const char *text = getenv ("ORDERBUS_DEBUG_ZAP_EXIT_MS");
    int ms = text ? atoi (text) : 0;
    if (ms < 1 || ms > 60000)
        return 0;
    zsys_warning ("CURVE: ORDERBUS_DEBUG_ZAP_EXIT_MS=%d (a Debug build's "
                  "test switch): the ZAP handler ends early",
                  ms);
    return zclock_mono () + ms;
}
#endif

//  "$TERM" on pipe (or pipe gone): true
static bool
s_zap_term (zsock_t *pipe)
{
    zmsg_t *msg = zmsg_recv (pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    bool term = !command || streq (command, "$TERM");
    zstr_free (&command);
    zmsg_destroy (&msg);
    return term;
}

static void
s_zap (zsock_t *pipe, void *args)
{
    bus_curve_t *self = (bus_curve_t *) args;
    zsock_t *handler = self->zap;   //  taken, with zactor_new's barrier
    self->zap = NULL;
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    //  zactor_new ignores the signal's status: the flag, set before the
    //  signal's barrier, tells s_writer_init
    self->zap_running = poller != NULL;
    if (poller)   //  answers until $TERM, not until zsys_interrupted
        zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, poller ? 0 : 1);
    int64_t exit_at = 0;
#ifdef ORDERBUS_DEBUG_ZAP_EXIT_MS
    exit_at = s_zap_debug_exit_at ();
#endif
    const char *why = "its poller could not be made";
    while (poller) {
        void *which = zpoller_wait (poller, exit_at ? 100 : -1);
        if (exit_at && zclock_mono () >= exit_at) {
            why = "ORDERBUS_DEBUG_ZAP_EXIT_MS";
            break;
        }
        if (which == handler)
            s_zap_answer (self, handler);
        else if (which == pipe && s_zap_term (pipe)) {
            why = NULL;
            break;
        } else if (!which && zpoller_terminated (poller)) {
            //  czmq built on zmq_poll (Debian's 4.2.1) says terminated
            //  after ANY failed wait, nonstop or not: only ETERM (the
            //  context ends, no handshake can complete now) is an end;
            //  EINTR is a wait to do again; anything else is the
            //  handler failing, and the node must not outlive it
            int error = zmq_errno ();
            if (error == ETERM) {
                why = NULL;
                break;
            }
            if (error != EINTR) {
                why = "its wait failed";
                break;
            }
        }
        //  else a timeout or an interrupted wait (EINTR, a signal to the
        //  process, or zsys's SIGINT flag): the node's other threads see
        //  to its end and send $TERM; the handler answers until then
    }
    if (why && self->zap_running)
        s_zap_died (why);
    zpoller_destroy (&poller);
    //  Unbound now, not when libzmq reaps the closed socket: the next
    //  writer of this process (a member leading again) binds it at once
    zsock_unbind (handler, S_ZAP_ENDPOINT);
    zsock_destroy (&handler);
}

//  The writer's allow-list, its table, the ZAP handler, and the watcher
static int
s_writer_init (bus_curve_t *self, const bus_config_t *config, char *err,
               size_t err_cap)
{
    if (!*config->allow_dir)
        return bus_error_set (err, err_cap, -1,
                              "link/allow (--allow DIR) is required with "
                              "link/cert on the writer: the public "
                              "certificates of its gateways and edges");
    //  (a replica comes here only with link/allow: for its read socket)
    //  A member's may hold the other members' writer certificates
    const char *member_key =
        s_member (config) ? zcert_public_txt (self->cert) : NULL;
    int count = s_allow_load (config->allow_dir, member_key, &self->peers, NULL,
                              err, err_cap);
    if (count < 0)
        return -1;
    self->peer_count = (size_t) count;
    self->who = bus_role_name (config->role);
    if (s_table_build (self) != 0)
        return bus_error_set (err, err_cap, -1, "out of memory");
    //  The handler must answer before the first bind, since libzmq lets
    //  any CURVE client in when no ZAP handler is bound: bound here, so
    //  that a failure is this call's, then handed to its thread
    char unused[BUS_CURVE_KEY_LEN + 1];   //  a secret key: 32 random bytes
    if (zmq_curve_keypair (unused, self->zap_token) != 0)
        return bus_error_set (err, err_cap, -1,
                              "cannot make the ZAP handler's token: %s",
                              zmq_strerror (zmq_errno ()));
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, S_ZAP_ENDPOINT) != 0) {
        zsock_destroy (&self->zap);
        return bus_error_set (err, err_cap, -1,
                              "cannot bind the ZAP handler %s (one a "
                              "process): %s",
                              S_ZAP_ENDPOINT, zmq_strerror (zmq_errno ()));
    }
    self->auth = zactor_new (s_zap, self);
    if (self->auth && !self->zap_running)
        return bus_error_set (err, err_cap, -1,
                              "cannot start the ZAP handler (its poller): "
                              "without it any key would get in");
    self->watcher = zactor_new (s_watcher, self);
    if (!self->auth || !self->watcher)
        return bus_error_set (err, err_cap, -1,
                              "cannot start the CURVE threads");
    zsys_info ("%s: CURVE on, %zu peers allowed from %s",
               bus_role_name (config->role), self->peer_count,
               config->allow_dir);
    return 0;
}

bus_curve_t *
bus_curve_new (const bus_config_t *config, char *err, size_t err_cap)
{
    bus_curve_t *self = calloc (1, sizeof *self);
    if (!self) {
        bus_error_set (err, err_cap, -1, "out of memory");
        return NULL;
    }
    int rc = 0;
    if (!*config->cert_file || config->role == BUS_ROLE_UP)
        rc = s_plain_check (config, err, err_cap);
    else if (config->insecure_links)
        rc = bus_error_set (err, err_cap, -1,
                            "link/cert and --insecure-plaintext-links are "
                            "both given: choose one");
    else if (!zsys_has_curve ())
        rc = bus_error_set (err, err_cap, -1,
                            "link/cert is set but this libzmq has no CURVE");
    else {
        self->enabled = true;
        bool member = s_member (config);
        rc = s_own_cert (self, config, err, err_cap);
        if (rc == 0 && config->role == BUS_ROLE_WRITER)
            rc = s_writer_init (self, config, err, err_cap);
        if (rc == 0 && member)   //  a member's writer, or its standby
            rc = s_member_init (self, config, err, err_cap);
        else if (rc == 0 && config->role == BUS_ROLE_WRITER
                 && *config->writer_key)
            rc = bus_error_set (err, err_cap, -1,
                                "link/writer_key on a writer names the other "
                                "members of its group: it needs leader/etcd "
                                "(a lone writer pins no key)");
        else if (rc == 0 && config->role != BUS_ROLE_WRITER)
            rc = s_writer_key (self, config, err, err_cap);
        //  A replica's read socket is a server of its own (ZAP is one
        //  handler a process, and a replica runs no writer's); a member's
        //  standby serves nothing, and its writer runs the handler
        if (rc == 0 && config->role == BUS_ROLE_REPLICA && *config->allow_dir
            && !member)
            rc = s_writer_init (self, config, err, err_cap);
    }
    if (rc != 0)
        bus_curve_destroy (&self);
    return self;
}

void
bus_curve_destroy (bus_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_curve_t *self = *self_p;
    zactor_destroy (&self->watcher);
    zactor_destroy (&self->auth);
    if (self->zap) {   //  its thread never took it
        zsock_unbind (self->zap, S_ZAP_ENDPOINT);
        zsock_destroy (&self->zap);
    }
    zcert_destroy (&self->cert);
    free (self->peers);
    free (self->slots);
    free (self);
    *self_p = NULL;
}
