/*  bus_config.h — settings of a node: defaults, a ZPL config file (czmq's
    zconfig), then command-line flags, in that order of precedence.

    Config file (ZPL, see docs/configuration.md), every key optional:

      data = ./orderbus-data            LMDB environment directory (writer, up)
      menu = config/demo-menu.json      menu loaded at start (writer, up)
      endpoints
          intake = tcp://127.0.0.1:5555 writer PULL  (writer binds, gateways connect)
          events = tcp://127.0.0.1:5556 writer PUB   (writer binds, others connect)
          sync = tcp://127.0.0.1:5557   writer ROUTER (writer binds, others connect)
      link                              (every role)
          heartbeat_ms = 500            writer heartbeat / others' ping period, 50..60000
          timeout_ms = 2000             silence that means the other side is gone, 100..600000
          cert = FILE                   this node's secret CURVE certificate
                                        (writer, gateway, edge; none = plaintext
                                        links, local endpoints only)
          writer_key = KEY|FILE         the writer's public key or .cert: the
                                        only writer believed (gateway, edge)
          allow = DIR                   public certificates of the nodes the
                                        writer lets in (writer)
      writer
          batch_max = 4096              commands per group commit, 1..65536
          tax_bp = 0                    tax rate in basis points, 0..10000
          events_queue = 20000          messages queued for one subscriber of
                                        the events socket before its events
                                        are dropped (it resyncs), 100..1000000
      leader                            (writer; docs/leadership.md)
          etcd = URLS                   etcd endpoints, comma-separated: none
                                        = no leadership (a single box)
          group = NAME                  writer group (keys /orderbus/<group>/)
          name = NAME                   this writer's name in the group
          peers = EPS                   the other members' writer/replicate,
                                        comma-separated: a standby follows
                                        the leader there (docs/failover.md)
          ttl_s = 2                     leader lease TTL, 2..60
          etcd_ca = FILE                PEM CA of etcd's certificate
          etcd_cert = FILE              client certificate shown to etcd
          etcd_key = FILE               its private key
      http
          listen = 127.0.0.1            address the HTTP server binds
          port = 8080                   1..65535
          threads = 64                  threads for requests that wait for
                                        the writer (queries), 4..1024
          event_threads = 1             event threads, 1..64
          max_connections = 10000       connections at once, besides an
                                        edge's WebSockets, 1..10000
          max_per_ip = 64               ...from one address, WebSockets
                                        too, 1..60000
          request_deadline_ms = 10000   time for a connection to send a
                                        whole request, 500..600000
          web = <source>/web            static pages (edge, up)
      gateway
          name = gw-<pid>               ack topic of this gateway: unique per writer
          ack_timeout_ms = 3000         wait for a commit ack, 10..600000
          max_inflight = 256            orders waiting for acks at once, 1..100000
      edge
          ring = 10000                  events kept for replay, 16..10000000
          client_queue = 4096           messages queued per browser, 16..1000000
          ws_ping_ms = 5000             WebSocket ping period, 100..600000
          max_clients = 1000            WebSockets served at once, 1..60000
          staff_seats = auto            of those, kept for staff (kitchen,
                                        manager) tokens: pads and the seeds'
                                        feed may take the rest, 0..59999,
                                        below max_clients; auto: a tenth
                                        of max_clients, at most 50
          senders = 2                   threads writing to browsers, 1..64
      site
          name = main                   the site served: tokens of another
                                        get 403 (gateway, edge, up)
          file = FILE                   several sites, one section each
                                        (gateway, edge; bus_sites.h)
      auth
          secret_file = FILE            signs access tokens; up: <data>/secret,
                                        created if missing; a gateway or edge
                                        without one refuses to start
          insecure_no_auth = 0          1: a gateway or edge runs without a
                                        secret, OPEN to anyone (tests only)
      limits
          table_rate_per_s = 2          orders per second per table, 1..1000
          table_burst = 10              orders a table may place at once, 1..10000
          changes_per_s = 10            changes (cart, status, 86) per second
                                        per token, 1..1000
          change_burst = 60             changes a token may make at once,
                                        1..10000
      compat
          enabled = 0                   1: seed systems' routes, with tokens
          open_menu = 0                 1: any item name accepted

    Flags (each also --flag=value):
      --config FILE  --data DIR  --menu FILE  --intake EP  --events EP
      --sync EP  --batch-max N  --tax-bp BP  --heartbeat-ms N  --link-timeout-ms N
      --cert FILE  --writer-key KEY|FILE  --allow DIR  --insecure-plaintext-links
      --accept-restore  --leader-etcd URLS  --leader-group NAME
      --leader-name NAME  --leader-ttl-s S  --leader-etcd-ca FILE
      --leader-etcd-cert FILE  --leader-etcd-key FILE  --insecure-etcd
      --listen ADDR  --http-port N  --http-threads N  --http-event-threads N
      --web DIR  --name NAME
      --ack-timeout-ms N  --max-inflight N  --ring N  --client-queue N
      --ws-ping-ms N  --max-clients N  --senders N  --secret-file FILE
      --site NAME  --sites FILE  --insecure-no-auth  --table-rate N  --table-burst N
      --compat 0|1  --open-menu 0|1  -v/--verbose  -h/--help
    A flag or key that does not apply to the role is an error, not ignored.  */

#ifndef BUS_CONFIG_H_INCLUDED
#define BUS_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_PATH_MAX     1024
#define BUS_ENDPOINT_MAX 256

typedef enum {
    BUS_ROLE_UP = 1, /* all-in-one: writer + gateway + edge */
    BUS_ROLE_WRITER,
    BUS_ROLE_GATEWAY,
    BUS_ROLE_EDGE,
    BUS_ROLE_REPLICA
} bus_role_t;

/*  The fewest days store/key_retain_days may be (other than 0, for ever):
    longer than any client retries a request.  */
#define BUS_CONFIG_KEY_RETAIN_MIN 2

typedef struct {
    bus_role_t role;
    char config_path[BUS_PATH_MAX]; /* "" if none */
    char data_dir[BUS_PATH_MAX];
    char menu_path[BUS_PATH_MAX]; /* "" = keep the stored menu */
    char intake[BUS_ENDPOINT_MAX];
    char events[BUS_ENDPOINT_MAX];
    char sync[BUS_ENDPOINT_MAX];
    char replicate[BUS_ENDPOINT_MAX];    /* writer: ROUTER replicas follow ("":
                                         none); replica: the writer's     */
    char sync_replica[BUS_NAME_MAX];     /* writer: the replica that confirms
                                         every batch before its acks ("")  */
    int sync_timeout_ms;                 /* ...or, past this, orders get 503 */
    char sync_fallback[16];              /* "refuse" (default) or "async"    */
    char replica_sync[BUS_ENDPOINT_MAX]; /* replica: its read queries ("") */
    char reads[BUS_PATH_MAX];     /* gateway, edge: replicas' replica/sync
                                     endpoints, comma-separated ("": none) */
    char reads_key[BUS_PATH_MAX]; /* their public keys or .cert files,
                                     comma-separated, one or one each    */
    int batch_max;
    int events_queue; /* per subscriber: past it, its events are dropped */
    int tax_bp;
    int retain_days;     /* event log kept this long; 0 = for ever        */
    int key_retain_days; /* idempotency keys; at most retain_days (or 0) */
    int heartbeat_ms;
    int link_timeout_ms;
    char cert_file[BUS_PATH_MAX];  /* "" = plaintext links (bus_curve.h) */
    char writer_key[BUS_PATH_MAX]; /* Z85 key or the writer's .cert file */
    char allow_dir[BUS_PATH_MAX];  /* writer: allowed nodes' certificates */
    bool insecure_links;           /* --insecure-plaintext-links: plaintext off
                                  loopback */
    bool accept_restore; /* --accept-restore: an older data.mdb may start */
    char leader_etcd[BUS_PATH_MAX]; /* "" = no leadership (single box)   */
    char leader_group[BUS_NAME_MAX];
    char leader_name[BUS_NAME_MAX];
    char leader_peers[BUS_ENDPOINT_MAX]; /* the other members' replicate */
    int leader_ttl_s; /* lease TTL, 2..60 s                             */
    char leader_etcd_ca[BUS_PATH_MAX];   /* "" = the system's CAs          */
    char leader_etcd_cert[BUS_PATH_MAX]; /* client certificate, or ""      */
    char leader_etcd_key[BUS_PATH_MAX];  /* its key                        */
    bool insecure_etcd; /* --insecure-etcd: plain http:// off loopback   */
    char http_listen[64];
    int http_port;
    int http_threads;
    int http_event_threads;
    int http_max_connections;     /* a gateway's, at once */
    int http_max_per_ip;          /* ...from one address */
    int http_request_deadline_ms; /* to send a whole request */
    char web_root[BUS_PATH_MAX];
    char tls_cert[BUS_PATH_MAX]; /* "" = plain HTTP (bus_tls.h) */
    char tls_key[BUS_PATH_MAX];  /* its private key, mode 0600 */
    char name[BUS_NAME_MAX];
    int ack_timeout_ms;
    int max_inflight;
    int ring;
    int client_queue;
    int ws_ping_ms;
    int max_clients;
    int staff_seats; /* of max_clients, kept for staff tokens; -1: auto */
    int senders;
    char secret_file[BUS_PATH_MAX]; /* "" = none: see insecure_no_auth */
    char site[BUS_NAME_MAX];        /* the one site served (site/name) */
    char sites_file[BUS_PATH_MAX];  /* "" = one site; else many (bus_sites.h) */
    int insecure_no_auth; /* 1: a gateway or edge may run without one */
    int table_rate_per_s;
    int table_burst;
    int changes_per_s; /* cart edits, status moves, 86: per token */
    int change_burst;
    int compat;    /* 1: serve the seed-compatible routes */
    int open_menu; /* 1: they take any item name          */
    bool verbose;
    bool help; /* -h/--help was given */
} bus_config_t;

/*  Fill *config with the defaults of role.  web_root and menu_path
    default to the given directories' web/ and config/demo-menu.json when
    share_dir is not NULL (up only gets the demo menu by default).  */
void bus_config_defaults (bus_config_t *config, bus_role_t role,
                          const char *share_dir);

/*  Apply argv[1..argc-1] (the words after the subcommand).  A --config
    FILE among them is loaded first, wherever it stands, so flags always
    win over the file.  Returns 0, or BUS_ERR_CONFIG with a message in
    err[err_cap] that names the flag, key or value at fault.  */
int bus_config_parse (bus_config_t *config, int argc, char **argv, char *err,
                      size_t err_cap);

/*  Apply a ZPL file.  0 or BUS_ERR_CONFIG with a message naming the file
    and the key path (e.g. "orderbus.cfg: http/port: must be an integer
    from 1 to 65535").  */
int bus_config_load (bus_config_t *config, const char *path, char *err,
                     size_t err_cap);

/*  Apply one setting by its file key (e.g. "endpoints/sync"), checked
    as a file's key is; where names it in messages.  0 or BUS_ERR_CONFIG
    (config unchanged).  For files of another shape that hold settings
    (a node's sites: bus_sites.h).  */
int bus_config_set (bus_config_t *config, const char *key, const char *value,
                    const char *where, char *err, size_t err_cap);

/*  Print the usage of role's subcommand to stdout.  */
void bus_config_usage (bus_role_t role);

/*  Role name ("up", "writer", ...).  */
/*  Is -h or --help among argv[1..argc-1]?  It wins over everything
    else on a command line, errors included.  */
bool bus_config_help_wanted (int argc, char **argv);

/*  edge/staff_seats as it applies: the setting, or when it is not set
    (auto), a tenth of edge/max_clients, at most 50.  */
int bus_config_staff_seats (const bus_config_t *config);

const char *bus_role_name (bus_role_t role);

/*  Selftest.  */
void bus_config_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
