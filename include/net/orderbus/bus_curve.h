/*  bus_curve.h — CURVE on the links between nodes: who a node is, which
    writer it believes, and whom the writer lets in.

    Every node has a keypair, kept in a certificate made by `orderbus keys
    new` (czmq's zcert format, ZPL):

      NAME.cert         public: metadata name and role, curve/public-key;
                        goes into the writer's allow directory
      NAME.cert_secret  secret: the same, plus curve/secret-key; mode 0600,
                        stays on the node's host (link/cert)

    The writer's sockets are CURVE servers with the writer's secret key.
    Gateways and edges are CURVE clients with their own keys and the
    writer's public key (link/writer_key): a process that does not hold
    the writer's secret key cannot complete a handshake with them, so a
    rogue writer is never heard.  With a writer group, link/writer_key
    lists each member's key, in the order of the endpoint lists: each
    connection pins its own member (libzmq copies the server key at
    connect time, so it is set before each connect: bus_link_connect).

    A writer group's members (leader/etcd, docs/failover.md) each keep
    their own writer certificate, named leader/name.  A member's allow
    directory holds the other members' public writer certificates beside
    the gateways', and its link/writer_key the other members' keys in
    the order of leader/peers: its standby (a replica inside the member)
    is a CURVE client under the member's own writer key, pinning the
    leader's.  The writer runs a ZAP handler of its own (RFC 27) on a
    table of the allow directory's certificates: a peer whose key is not
    there, or that does not speak CURVE, is refused at the handshake,
    and so is a writer's key (a group member's) anywhere but on the
    replicate socket (ZAP domain "replicate"): it may only replicate.  Every refused handshake on the writer's
    sockets is counted and logged (a few lines of each kind a minute).

    A connected peer's key reaches the writer with each of its messages
    (the "User-Id" property the ZAP handler sets, zmq_msg_gets); bus_curve_peer
    maps it to the name and role its certificate gave it.  What each role
    may do is the writer's rule (bus_writer.c): only gateways send
    commands, and only under their own name.

    Without link/cert a node runs its links in plaintext, which is allowed
    only where no other host can reach them: inproc://, ipc:// and tcp://
    on a loopback address.  Anything else fails closed, unless
    --insecure-plaintext-links says otherwise (bus_curve_new).

    Threads: bus_curve_new, _destroy and _server belong to the thread that
    builds the node.  bus_curve_client, _peer, _enabled and _refused may
    be called from any thread at once: they read what _new built and never
    change it (the table is not a zhashx, whose lookups write a cache).  */

#ifndef BUS_CURVE_H_INCLUDED
#define BUS_CURVE_H_INCLUDED

#include <czmq.h>
#include "orderbus/bus_config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_CURVE_KEY_LEN  40 /* a Z85 public key, without its NUL   */
#define BUS_CURVE_PINS_MAX 16 /* keys in link/writer_key's comma list */

typedef struct _bus_curve_t bus_curve_t;

typedef enum {
    BUS_CURVE_WRITER = 1,
    BUS_CURVE_GATEWAY,
    BUS_CURVE_EDGE,
    BUS_CURVE_REPLICA
} bus_curve_role_t;

/*  What a certificate says about its node.  */
typedef struct {
    char key[BUS_CURVE_KEY_LEN + 1]; /* public key, Z85                   */
    char name[BUS_NAME_MAX];         /* [A-Za-z0-9_.-]{1,80}              */
    bus_curve_role_t role;
} bus_curve_peer_t;

/*  The links of config's node.  With link/cert set: loads the node's
    secret certificate (which must be mode 0600 or stricter, name the
    node's role, and for a gateway, gateway/name), then for a writer the
    allow directory (link/allow, required) and starts the ZAP handler on
    it, for a
    gateway or edge the writer's key (link/writer_key, required: one
    key or .cert file for all endpoints, or a comma list of one per
    endpoint of each endpoint list, in the same order).  A group member
    (leader/etcd; its standby is role replica with leader/etcd set) runs
    under its writer certificate, whose name must be leader/name, and
    pins one key per leader/peers entry, each a writer's certificate in
    its allow directory and not its own.
    Without it: a plaintext object, if every endpoint is local or
    config->insecure_links is set.  A replica with link/allow runs the ZAP handler
    on that directory too, for its read socket (replica/sync).
    Returns the object, or NULL with a message naming the setting at
    fault in err[err_cap].  Caller owns.  A process runs at most one
    writer's bus_curve_t with CURVE on (ZAP is one handler a process).  */
bus_curve_t *bus_curve_new (const bus_config_t *config, char *err,
                            size_t err_cap);

/*  Stop the ZAP handler and the refusal watcher.  Destroy the sockets given to
    bus_curve_server first.  NULL-safe; nulls *self_p.  */
void bus_curve_destroy (bus_curve_t **self_p);

/*  True if the links are CURVE (false for a plaintext object or NULL).  */
bool bus_curve_enabled (const bus_curve_t *self);

//  A CURVE server drops a connection whose handshake is not done by then
#define BUS_CURVE_HANDSHAKE_MS 5000

/*  Make sock a CURVE server under the writer's key, in ZAP domain name,
    and watch its handshakes: call before binding.  Does nothing for a
    plaintext object or NULL.  0, or -1 if the watcher could not take
    the socket's monitor (out of memory).  */
int bus_curve_server (bus_curve_t *self, zsock_t *sock, const char *name);

/*  A client-only copy of self (enabled) pinning a replica's key instead
    of the writer's: value is a Z85 key or a replica's .cert file (its
    role is checked).  For the sockets of endpoints/reads.  Returns it,
    or NULL with err set (naming link/reads_key).  Caller owns.  */
bus_curve_t *bus_curve_pin (const bus_curve_t *self, const char *value,
                            char *err, size_t err_cap);

/*  Make sock a CURVE client of the pinned writer, under this node's key:
    call before connecting.  Does nothing for a plaintext object or NULL.
    Pins the first key of link/writer_key: with several, set the key of
    each endpoint before connecting it (bus_curve_client_at).  */
void bus_curve_client (const bus_curve_t *self, zsock_t *sock);

/*  Pin the key of endpoint index of a comma list (the only key if
    link/writer_key has one) on sock, which bus_curve_client made a
    client: call right before connecting that endpoint.  Does nothing for
    a plaintext object or NULL.  */
void bus_curve_client_at (const bus_curve_t *self, zsock_t *sock, int index);

/*  How many keys link/writer_key pinned (0 for plaintext or NULL).  */
int bus_curve_pins (const bus_curve_t *self);

/*  A client socket's handshakes, watched by the thread that owns the
    socket.  libzmq gives up a connection for good, without ever
    retrying, when its handshake fails on a protocol or auth error: a
    plaintext process on the writer's port (a rogue, or a writer started
    without keys), or a writer that did not allow this key yet.  The
    watch notices and dials again a second later, so a node recovers by
    itself once the real writer is back.  With a comma list of endpoints
    (a writer group) each is watched apart: only the one whose handshake
    failed is dialled again, with its own key.  */
typedef struct _bus_curve_watch_t bus_curve_watch_t;

/*  Watch sock, which will connect to endpoint (a comma list: each of
    them), with the keys of self: call before connecting.
    NULL for a plaintext object or NULL (nothing to watch), if out of
    memory, or if endpoint lists more than BUS_CURVE_PINS_MAX.  Caller
    owns; destroy it before sock and self (it redials with self's keys).  */
bus_curve_watch_t *bus_curve_watch_new (const bus_curve_t *self, zsock_t *sock,
                                        const char *endpoint);

/*  NULL-safe; nulls *self_p.  */
void bus_curve_watch_destroy (bus_curve_watch_t **self_p);

/*  The socket to poll for the watch's events (NULL-safe: NULL).  */
zsock_t *bus_curve_watch_socket (bus_curve_watch_t *self);

/*  Read the events waiting on bus_curve_watch_socket; a given-up
    connection schedules a new dial.  On the owner's thread.  */
void bus_curve_watch_read (bus_curve_watch_t *self);

/*  Dial again if one is due at now (zclock_mono); true if it did.  On
    the owner's thread (or under the lock that guards the socket).
    NULL-safe.  */
bool bus_curve_watch_redial (bus_curve_watch_t *self, int64_t now);

/*  Read the events waiting on bus_curve_watch_socket, quietly; true if
    a connection was given up since the last read.  Schedules no dial:
    for a socket its owner replaces rather than redials (bus_sync's
    pooled sockets, idle until a call takes one).  On the owner's
    thread.  NULL-safe: false.  */
bool bus_curve_watch_refused (bus_curve_watch_t *self);

/*  The allowed peer with Z85 public key user_id (NULL-safe), or NULL.
    Borrowed; valid until bus_curve_destroy.  One hash lookup.  */
const bus_curve_peer_t *bus_curve_peer (const bus_curve_t *self,
                                        const char *user_id);

/*  The sender of a message on one of the writer's CURVE servers: the
    allowed peer with key user_id (zmq_msg_gets "User-Id"), or NULL
    unless token (zmq_msg_gets BUS_CURVE_ZAP_TOKEN) is the one this
    writer's ZAP handler gives every connection it admits.  A client's
    own "User-Id" metadata stands when no handler answered (libzmq 4.3
    lets CURVE in then): this tells the two apart.  NULL-safe: NULL.  */
#define BUS_CURVE_ZAP_TOKEN "X-Orderbus-Zap"
const bus_curve_peer_t *bus_curve_sender (const bus_curve_t *self,
                                          const char *user_id,
                                          const char *token);

/*  Handshakes the writer's sockets refused so far.  */
uint64_t bus_curve_refused (const bus_curve_t *self);

/*  "writer", "gateway", "edge", "replica"; "unknown" otherwise.  */
const char *bus_curve_role_name (bus_curve_role_t role);

/*  Parse a role name; 0 and *role, or -1.  */
int bus_curve_role_parse (const char *name, bus_curve_role_t *role);

//  ---------------------------------------------------------------------
//  Certificate files (the node and `orderbus keys` share these)

/*  Make a keypair for name and role and write DIR/NAME.cert (public,
    mode 0644) and DIR/NAME.cert_secret (mode 0600); neither may exist
    yet.  *peer gets what was written.  0, or -1 with err set (nothing is
    left behind).  */
int bus_curve_keys_new (const char *dir, const char *name,
                        bus_curve_role_t role, bus_curve_peer_t *peer,
                        char *err, size_t err_cap);

/*  Read the certificate at path into *peer.  With secret set, it must be
    a secret certificate of mode 0600 or stricter whose secret key gives
    its public key, and *cert (if not NULL) gets a zcert_t of the pair
    (caller owns).  0, or -1 with err set.  */
int bus_curve_cert_read (const char *path, bool secret, bus_curve_peer_t *peer,
                         zcert_t **cert, char *err, size_t err_cap);

/*  Called with each certificate of an allow directory, in file name
    order; path is its file.  */
typedef void (bus_curve_allow_fn) (const bus_curve_peer_t *peer,
                                   const char *path, void *arg);

/*  Read every certificate of the allow directory dir (files whose name
    starts with a dot are skipped), as the writer does: each must be a
    public certificate of role gateway, edge or replica, names and keys
    unique.  member_key NULL: a lone writer's (or a replica's) directory.
    Not NULL: a group member's, which may also hold the other members'
    writer certificates (they replicate from it when it leads), but not
    one of key member_key (its own; "" checks none: `orderbus keys
    list`).  Calls fn (may be NULL) for each.  Returns how many, or -1
    with err naming the file at fault (fn has then been called for
    none).  */
int bus_curve_allow_read (const char *dir, const char *member_key,
                          bus_curve_allow_fn *fn, void *arg, char *err,
                          size_t err_cap);

/*  True if endpoint can be reached only from this host: inproc://,
    ipc://, or tcp:// on 127.0.0.0/8, ::1 or localhost.  "*", 0.0.0.0
    and interface names are not.  */
bool bus_curve_endpoint_local (const char *endpoint);

/*  Selftest.  */
void bus_curve_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
