/*  bus_config.c — settings of a node: defaults, a ZPL file, then flags.

    One table, s_settings, describes every setting once: its flag, its
    key in the config file, its type and range, the field it fills and the
    roles it applies to.  Flags and file keys both go through s_apply, so
    each check and each message exists exactly once.  */

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_error.h"

//  Where `orderbus --help` says web/ and the demo menu live by default
#ifdef ORDERBUS_SHARE_DIR
#define S_SHARE_DIR ORDERBUS_SHARE_DIR
#else
#define S_SHARE_DIR "<share>"
#endif

typedef enum {
    S_INT,        //  int field, value in [min, max]
    S_TEXT,       //  char[] field, length in [min, size - 1]
    S_ENDPOINT,   //  S_TEXT that starts with tcp://, ipc:// or inproc://
    S_NAME,       //  S_TEXT of [A-Za-z0-9_.-] (it goes into a topic)
    S_SWITCH,     //  bool field set by a flag that takes no value
    S_BOOL,       //  int field: a flag without a value sets it to 1; a
                  //  file key takes 0 or 1 (a switch a file can also set)
    S_CONFIG      //  --config: load the file named by the value
} s_type_t;

#define S_STAFF_SEATS_AUTO_MAX 50   //  edge/staff_seats, when not set

//  store/key_retain_days: a pad resends an order until it is answered,
//  and again when it is opened the next day; a key must outlive that
#define S_KEY_DAYS_MIN      BUS_CONFIG_KEY_RETAIN_MIN
#define S_KEY_DAYS_MIN_TEXT "2"
_Static_assert(S_KEY_DAYS_MIN == 2, "S_KEY_DAYS_MIN_TEXT says 2");

//  Roles as bits, so a setting lists the roles it applies to
#define S_ROLE(role) (1u << (role))
#define S_UP         S_ROLE (BUS_ROLE_UP)
#define S_WRITER     S_ROLE (BUS_ROLE_WRITER)
#define S_GATEWAY    S_ROLE (BUS_ROLE_GATEWAY)
#define S_EDGE       S_ROLE (BUS_ROLE_EDGE)
#define S_REPLICA    S_ROLE (BUS_ROLE_REPLICA)
#define S_ALL        (S_UP | S_WRITER | S_GATEWAY | S_EDGE | S_REPLICA)

#define S_FIELD(field) \
    offsetof (bus_config_t, field), sizeof (((bus_config_t *) 0)->field)

typedef struct {
    const char *flag;         //  long flag, "--http-port"
    const char *short_flag;   //  "-v", or NULL
    const char *key;          //  path in the config file, NULL if flag only
    s_type_t type;
    size_t offset;      //  field in bus_config_t
    size_t size;        //  sizeof that field
    long min, max;      //  S_INT: value range; texts: min length
    unsigned roles;     //  S_ROLE bits of the roles it applies to
    const char *arg;    //  placeholder of the value in --help
    const char *help;   //  meaning, for --help
} s_setting_t;

static const s_setting_t s_settings[] = {
    { "--config", NULL, NULL, S_CONFIG, S_FIELD (config_path), 0, 0, S_ALL,
      "FILE", "ZPL config file, loaded before all other flags" },
    { "--data", NULL, "data", S_TEXT, S_FIELD (data_dir), 1, 0,
      S_WRITER | S_UP | S_REPLICA, "DIR", "LMDB environment directory" },
    { "--menu", NULL, "menu", S_TEXT, S_FIELD (menu_path), 0, 0,
      S_WRITER | S_UP, "FILE",
      "menu JSON loaded at start (none: keep the stored one)" },
    { "--intake", NULL, "endpoints/intake", S_ENDPOINT, S_FIELD (intake), 1, 0,
      S_WRITER | S_GATEWAY | S_EDGE, "EP",
      "writer's PULL endpoint for commands" },
    { "--events", NULL, "endpoints/events", S_ENDPOINT, S_FIELD (events), 1, 0,
      S_WRITER | S_GATEWAY | S_EDGE, "EP",
      "writer's PUB endpoint for events and acks" },
    { "--sync", NULL, "endpoints/sync", S_ENDPOINT, S_FIELD (sync), 1, 0,
      S_WRITER | S_GATEWAY | S_EDGE, "EP",
      "writer's ROUTER endpoint for snapshots and replay" },
    { "--reads", NULL, "endpoints/reads", S_TEXT, S_FIELD (reads), 0, 0,
      S_GATEWAY | S_EDGE, "EPS",
      "replicas' replica/sync endpoints, comma-separated: lists, orders, "
      "reports, snapshots and replays go there (docs/replication.md)" },
    { "--replicate", NULL, "writer/replicate", S_ENDPOINT, S_FIELD (replicate),
      1, 0, S_WRITER, "EP",
      "ROUTER endpoint replicas follow the log from (none: no replicas)" },
    { "--sync-replica", NULL, "writer/sync_replica", S_NAME,
      S_FIELD (sync_replica), 1, 0, S_WRITER, "NAME",
      "replica that must confirm each batch durable before it is "
      "acknowledged (none: acknowledge on the writer's own commit)" },
    { "--sync-timeout-ms", NULL, "writer/sync_timeout_ms", S_INT,
      S_FIELD (sync_timeout_ms), 10, 600000, S_WRITER, "MS",
      "wait this long for the synchronous replica's confirmation" },
    { "--sync-fallback", NULL, "writer/sync_fallback", S_TEXT,
      S_FIELD (sync_fallback), 1, 0, S_WRITER, "refuse|async",
      "then: refuse (orders get 503) or async (acknowledge without it: "
      "an ack may be lost with this host's disk)" },
    { "--upstream", NULL, "replica/upstream", S_ENDPOINT, S_FIELD (replicate),
      1, 0, S_REPLICA, "EP", "the writer's writer/replicate endpoint" },
    { "--replica-name", NULL, "replica/name", S_NAME, S_FIELD (name), 1, 0,
      S_REPLICA, "NAME",
      "this replica's name (its certificate's, with CURVE)" },
    { "--serve", NULL, "replica/sync", S_ENDPOINT, S_FIELD (replica_sync), 1, 0,
      S_REPLICA, "EP",
      "ROUTER endpoint answering read queries from this store (none: off)" },
    { "--batch-max", NULL, "writer/batch_max", S_INT, S_FIELD (batch_max), 1,
      65536, S_WRITER | S_UP, "N", "commands per group commit" },
    { "--tax-bp", NULL, "writer/tax_bp", S_INT, S_FIELD (tax_bp), 0, 10000,
      S_WRITER | S_UP, "BP", "tax rate in basis points (875 = 8.75%)" },
    { "--events-queue", NULL, "writer/events_queue", S_INT,
      S_FIELD (events_queue), 100, 1000000, S_WRITER | S_UP, "N",
      "messages queued per subscriber before its events are dropped" },
    { "--retain-days", NULL, "store/retain_days", S_INT, S_FIELD (retain_days),
      0, 36500, S_WRITER | S_UP, "DAYS",
      "event log kept for replay (older: a snapshot instead); 0 = for ever" },
    { "--key-retain-days", NULL, "store/key_retain_days", S_INT,
      S_FIELD (key_retain_days), 0, 36500, S_WRITER | S_UP, "DAYS",
      "Idempotency-Keys remembered, " S_KEY_DAYS_MIN_TEXT
      " at least and at most store/retain_days; 0 = for ever" },
    { "--heartbeat-ms", NULL, "link/heartbeat_ms", S_INT,
      S_FIELD (heartbeat_ms), 50, 60000, S_ALL, "MS",
      "heartbeat period: the writer's beats, the others' pings" },
    { "--link-timeout-ms", NULL, "link/timeout_ms", S_INT,
      S_FIELD (link_timeout_ms), 100, 600000, S_ALL, "MS",
      "silence after which the other side counts as gone" },
    { "--cert", NULL, "link/cert", S_TEXT, S_FIELD (cert_file), 0, 0,
      S_WRITER | S_GATEWAY | S_EDGE | S_REPLICA, "FILE",
      "this node's secret CURVE certificate (orderbus keys new)" },
    { "--writer-key", NULL, "link/writer_key", S_TEXT, S_FIELD (writer_key), 0,
      0, S_WRITER | S_GATEWAY | S_EDGE | S_REPLICA, "KEYS|FILES",
      "the writer's public key or .cert file: no other writer is believed "
      "(a group: each member's, comma-separated in the order of the "
      "endpoints; on a member the others', in the order of leader/peers)" },
    { "--reads-key", NULL, "link/reads_key", S_TEXT, S_FIELD (reads_key), 0, 0,
      S_GATEWAY | S_EDGE, "KEYS|FILES",
      "with link/cert: the endpoints/reads replicas' public keys or .cert "
      "files, comma-separated, one for all or one each" },
    //  A flag only: a file that kept saying it would take any older
    //  data would defeat the check for good
    { "--accept-restore", NULL, NULL, S_SWITCH, S_FIELD (accept_restore), 0, 0,
      S_WRITER | S_UP, NULL,
      "start once on a data file older than what its directory last "
      "committed, or another store's (after a restore from a backup)" },
    { "--allow", NULL, "link/allow", S_TEXT, S_FIELD (allow_dir), 0, 0,
      S_WRITER | S_REPLICA, "DIR",
      "public certificates of the gateways and edges let in (a replica: "
      "to its replica/sync)" },
    //  A flag only: no file can turn it on behind the operator's back
    { "--insecure-plaintext-links", NULL, NULL, S_SWITCH,
      S_FIELD (insecure_links), 0, 0, S_WRITER | S_GATEWAY | S_EDGE | S_REPLICA,
      NULL, "links off loopback without CURVE: readable and forgeable" },
    //  Leadership through etcd (docs/leadership.md): none of it with no
    //  leader/etcd, as a single box needs none
    { "--leader-etcd", NULL, "leader/etcd", S_TEXT, S_FIELD (leader_etcd), 0, 0,
      S_WRITER, "URLS",
      "etcd endpoints, comma-separated (https://, or http:// on loopback): "
      "leadership of the writer group through etcd" },
    { "--leader-group", NULL, "leader/group", S_NAME, S_FIELD (leader_group), 1,
      0, S_WRITER, "NAME",
      "writer group: its keys are /orderbus/<group>/leader and /sync" },
    { "--leader-name", NULL, "leader/name", S_NAME, S_FIELD (leader_name), 1, 0,
      S_WRITER, "NAME", "this writer's name in the group: unique" },
    { "--leader-peers", NULL, "leader/peers", S_ENDPOINT,
      S_FIELD (leader_peers), 1, 0, S_WRITER, "EPS",
      "the other members' writer/replicate endpoints, comma-separated: a "
      "standby follows the leader through them" },
    { "--leader-ttl-s", NULL, "leader/ttl_s", S_INT, S_FIELD (leader_ttl_s), 2,
      60, S_WRITER, "S",
      "leader lease TTL: a lost leader steps down after 3/4 of it" },
    { "--leader-etcd-ca", NULL, "leader/etcd_ca", S_TEXT,
      S_FIELD (leader_etcd_ca), 0, 0, S_WRITER, "FILE",
      "PEM CA that signed etcd's certificate (none: the system's CAs)" },
    { "--leader-etcd-cert", NULL, "leader/etcd_cert", S_TEXT,
      S_FIELD (leader_etcd_cert), 0, 0, S_WRITER, "FILE",
      "PEM client certificate shown to etcd (--client-cert-auth)" },
    { "--leader-etcd-key", NULL, "leader/etcd_key", S_TEXT,
      S_FIELD (leader_etcd_key), 0, 0, S_WRITER, "FILE",
      "its PEM private key" },
    //  A flag only, as --insecure-plaintext-links
    { "--insecure-etcd", NULL, NULL, S_SWITCH, S_FIELD (insecure_etcd), 0, 0,
      S_WRITER, NULL,
      "plain http:// to etcd off loopback: anyone there may take leadership" },
    { "--listen", NULL, "http/listen", S_TEXT, S_FIELD (http_listen), 1, 0,
      S_GATEWAY | S_EDGE | S_UP, "ADDR", "address the HTTP server binds" },
    { "--http-port", NULL, "http/port", S_INT, S_FIELD (http_port), 1, 65535,
      S_GATEWAY | S_EDGE | S_UP, "PORT", "HTTP port" },
    { "--http-threads", NULL, "http/threads", S_INT, S_FIELD (http_threads), 4,
      1024, S_GATEWAY | S_EDGE | S_UP, "N",
      "threads for requests that wait for the writer (queries)" },
    { "--http-event-threads", NULL, "http/event_threads", S_INT,
      S_FIELD (http_event_threads), 1, 64, S_GATEWAY | S_EDGE | S_UP, "N",
      "HTTP event threads (each serves many connections)" },
    { "--max-connections", NULL, "http/max_connections", S_INT,
      S_FIELD (http_max_connections), 1, 10000, S_GATEWAY | S_EDGE | S_UP, "N",
      "HTTP connections at once, besides an edge's WebSockets (fewer if "
      "file descriptors are)" },
    { "--max-per-ip", NULL, "http/max_per_ip", S_INT, S_FIELD (http_max_per_ip),
      1, 60000, S_GATEWAY | S_EDGE | S_UP, "N",
      "connections at once from one address, WebSockets too; more are "
      "closed" },
    { "--request-deadline-ms", NULL, "http/request_deadline_ms", S_INT,
      S_FIELD (http_request_deadline_ms), 500, 600000,
      S_GATEWAY | S_EDGE | S_UP, "MS",
      "time for a connection to send a whole request" },
    { "--web", NULL, "http/web", S_TEXT, S_FIELD (web_root), 1, 0,
      S_EDGE | S_UP, "DIR", "static pages served over HTTP" },
    { "--tls-cert", NULL, "tls/cert", S_TEXT, S_FIELD (tls_cert), 0, 0,
      S_GATEWAY | S_EDGE | S_UP, "FILE",
      "PEM certificate (then chain): serve only HTTPS and WSS on the port" },
    { "--tls-key", NULL, "tls/key", S_TEXT, S_FIELD (tls_key), 0, 0,
      S_GATEWAY | S_EDGE | S_UP, "FILE",
      "its PEM private key, mode 0600 (orderbus tls new makes a test pair)" },
    { "--name", NULL, "gateway/name", S_NAME, S_FIELD (name), 1, 0,
      S_GATEWAY | S_UP, "NAME",
      "gateway name, its ack topic: unique per writer" },
    { "--ack-timeout-ms", NULL, "gateway/ack_timeout_ms", S_INT,
      S_FIELD (ack_timeout_ms), 10, 600000, S_GATEWAY | S_UP, "MS",
      "wait for the writer's commit ack" },
    { "--max-inflight", NULL, "gateway/max_inflight", S_INT,
      S_FIELD (max_inflight), 1, 100000, S_GATEWAY | S_UP, "N",
      "orders waiting for acks at once; more get 503 at once" },
    { "--ring", NULL, "edge/ring", S_INT, S_FIELD (ring), 16, 10000000,
      S_EDGE | S_UP, "N", "events kept in memory for replay" },
    { "--client-queue", NULL, "edge/client_queue", S_INT,
      S_FIELD (client_queue), 16, 1000000, S_EDGE | S_UP, "N",
      "messages queued per browser before it is cut off" },
    { "--ws-ping-ms", NULL, "edge/ws_ping_ms", S_INT, S_FIELD (ws_ping_ms), 100,
      600000, S_EDGE | S_UP, "MS",
      "ping a quiet WebSocket this often; 5 unanswered close it" },
    { "--max-clients", NULL, "edge/max_clients", S_INT, S_FIELD (max_clients),
      1, 60000, S_EDGE | S_UP, "N",
      "WebSockets served at once (each holds a thread)" },
    { "--staff-seats", NULL, "edge/staff_seats", S_INT, S_FIELD (staff_seats),
      0, 59999, S_EDGE | S_UP, "N",
      "of those, kept for staff tokens (auto: a tenth, at most 50)" },
    { "--senders", NULL, "edge/senders", S_INT, S_FIELD (senders), 1, 64,
      S_EDGE | S_UP, "N", "threads that write events out to browsers" },
    { "--secret-file", NULL, "auth/secret_file", S_TEXT, S_FIELD (secret_file),
      0, 0, S_GATEWAY | S_EDGE | S_UP, "FILE",
      "secret that signs access tokens (gateway, edge: required unless "
      "--insecure-no-auth)" },
    { "--site", NULL, "site/name", S_NAME, S_FIELD (site), 1, 0,
      S_GATEWAY | S_EDGE | S_UP, "NAME",
      "the site this node serves: a token of another gets 403" },
    { "--sites", NULL, "site/file", S_TEXT, S_FIELD (sites_file), 0, 0,
      S_GATEWAY | S_EDGE, "FILE",
      "several sites, a section each with its writer's endpoints, key and "
      "secret (docs/deployment.md); instead of site/name" },
    { "--insecure-no-auth", NULL, "auth/insecure_no_auth", S_BOOL,
      S_FIELD (insecure_no_auth), 0, 1, S_GATEWAY | S_EDGE, NULL,
      "INSECURE: no secret, every request may do anything (tests only)" },
    { "--table-rate", NULL, "limits/table_rate_per_s", S_INT,
      S_FIELD (table_rate_per_s), 1, 1000, S_GATEWAY | S_UP, "N",
      "orders per second a table may place on average" },
    { "--table-burst", NULL, "limits/table_burst", S_INT, S_FIELD (table_burst),
      1, 10000, S_GATEWAY | S_UP, "N",
      "orders a table may place at once before the rate applies" },
    { "--change-rate", NULL, "limits/changes_per_s", S_INT,
      S_FIELD (changes_per_s), 1, 1000, S_GATEWAY | S_UP, "N",
      "changes (cart, status, 86) per second one token may make on average" },
    { "--change-burst", NULL, "limits/change_burst", S_INT,
      S_FIELD (change_burst), 1, 10000, S_GATEWAY | S_UP, "N",
      "changes one token may make at once before the rate applies" },
    { "--compat", NULL, "compat/enabled", S_INT, S_FIELD (compat), 0, 1,
      S_GATEWAY | S_EDGE | S_UP, "0|1",
      "serve the seed systems' routes, behind tokens (docs/compat.md)" },
    { "--open-menu", NULL, "compat/open_menu", S_INT, S_FIELD (open_menu), 0, 1,
      S_GATEWAY | S_UP, "0|1",
      "seed routes take any item name (free-text lines)" },
    { "--verbose", "-v", NULL, S_SWITCH, S_FIELD (verbose), 0, 0, S_ALL, NULL,
      "log every message" },
    { "--help", "-h", NULL, S_SWITCH, S_FIELD (help), 0, 0, S_ALL, NULL,
      "show this help and exit" },
};

#define S_SETTINGS (sizeof s_settings / sizeof s_settings[0])
_Static_assert(S_SETTINGS <= 128, "s_loader_t.seen has a bit per setting");

static const char *s_role_names[] = { NULL,      "up",   "writer",
                                      "gateway", "edge", "replica" };

static const char *s_role_about[] = {
    NULL,
    "writer, gateway and edge in one process, linked in-process",
    "the single writer: commits orders to LMDB, publishes events",
    "HTTP intake for pads: replies once the writer acks the commit",
    "WebSocket bridge: streams events to browsers, serves web pages",
    "follows the writer's log into its own store, confirms it durable, "
    "answers read queries",
};

//  --------------------------------------------------------------------------
//  Table lookups

static bool
s_is_role (bus_role_t role)
{
    return role >= BUS_ROLE_UP && role <= BUS_ROLE_REPLICA;
}

static bool
s_applies (const s_setting_t *setting, bus_role_t role)
{
    return s_is_role (role) && (setting->roles & S_ROLE (role)) != 0;
}

//  True if name (may be NULL) is the first length bytes of word
static bool
s_names (const char *name, const char *word, size_t length)
{
    return name && strlen (name) == length && memcmp (name, word, length) == 0;
}

//  Setting whose flag is the first length bytes of word, or NULL
static const s_setting_t *
s_find_flag (const char *word, size_t length)
{
    for (size_t i = 0; i < S_SETTINGS; i++)
        if (s_names (s_settings[i].flag, word, length)
            || s_names (s_settings[i].short_flag, word, length))
            return &s_settings[i];
    return NULL;
}

//  Setting whose file key is path, or NULL
static const s_setting_t *
s_find_key (const char *path)
{
    for (size_t i = 0; i < S_SETTINGS; i++)
        if (s_settings[i].key && streq (s_settings[i].key, path))
            return &s_settings[i];
    return NULL;
}

//  True if path is a section of the file, i.e. some key starts "path/"
static bool
s_is_section (const char *path)
{
    size_t length = strlen (path);
    for (size_t i = 0; i < S_SETTINGS; i++) {
        const char *key = s_settings[i].key;
        if (key && strncmp (key, path, length) == 0 && key[length] == '/')
            return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Validation: each check and its message, once, for flags and keys alike

//  Full-string decimal in [min, max]; no leading blanks, no trailing junk
static bool
s_parse_int (const char *text, long min, long max, int *value)
{
    char *end;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (end == text || *end || errno || isspace ((unsigned char) *text)
        || number < min || number > max)
        return false;
    *value = (int) number;
    return true;
}

static bool
s_valid_endpoint (const char *text)
{
    static const char *schemes[] = { "tcp://", "ipc://", "inproc://" };
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t length = strlen (schemes[i]);
        if (strncmp (text, schemes[i], length) == 0 && text[length])
            return true;
    }
    return false;
}

//  Each item of a comma list an endpoint: an empty one ("a,,b") would
//  shift the keys link/writer_key pairs with the endpoints by order.
//  0, or BUS_ERR_CONFIG with err set.
static int
s_valid_endpoints (const char *list, const char *where, char *err,
                   size_t err_cap)
{
    int item = 1;
    for (const char *at = list;; item++) {
        size_t length = strcspn (at, ",");
        char one[BUS_ENDPOINT_MAX];
        if (length == 0)
            return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                                  "%s: item %d of the comma list is empty "
                                  "(got '%s')",
                                  where, item, list);
        if (length < sizeof one) {
            memcpy (one, at, length);
            one[length] = '\0';
        }
        if (length >= sizeof one || !s_valid_endpoint (one))
            return bus_error_set (
                err, err_cap, BUS_ERR_CONFIG,
                "%s: must be an endpoint starting with tcp://, ipc:// or "
                "inproc://, or a comma list of them (got '%s')",
                where, list);
        if (!at[length])
            return 0;
        at += length + 1;
    }
}

static bool
s_valid_name (const char *text, size_t cap)
{
    size_t length = strlen (text);
    if (length == 0 || length >= cap)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum ((unsigned char) text[i]) && !strchr ("_.-", text[i]))
            return false;
    return true;
}

static int
s_set_text (char *field, const s_setting_t *setting, const char *value,
            const char *where, char *err, size_t err_cap)
{
    size_t length = strlen (value);
    if (length < (size_t) setting->min)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "%s: must not be empty", where);
    if (length >= setting->size)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "%s: must be at most %zu bytes (got %zu)", where,
                              setting->size - 1, length);
    memcpy (field, value, length + 1);
    return 0;
}

static int
s_set_value (bus_config_t *config, const s_setting_t *setting,
             const char *value, const char *where, char *err, size_t err_cap)
{
    char *field = (char *) config + setting->offset;
    switch (setting->type) {
        case S_INT:
            if (!s_parse_int (value, setting->min, setting->max, (int *) field))
                return bus_error_set (
                    err, err_cap, BUS_ERR_CONFIG,
                    "%s: must be an integer from %ld to %ld (got '%s')", where,
                    setting->min, setting->max, value);
            return 0;
        case S_SWITCH: *(bool *) field = true; return 0;
        case S_BOOL:
            //  the flag says yes by being there; a file says 0 or 1
            if (!value) {
                *(int *) field = 1;
                return 0;
            }
            if (!s_parse_int (value, 0, 1, (int *) field))
                return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                                      "%s: must be 0 or 1 (got '%s')", where,
                                      value);
            return 0;
        case S_CONFIG: return bus_config_load (config, value, err, err_cap);
        case S_ENDPOINT: {
            //  A writer group's: one a member, comma-separated
            int rc = s_valid_endpoints (value, where, err, err_cap);
            if (rc != 0)
                return rc;
            break;
        }
        case S_NAME:
            if (!s_valid_name (value, setting->size))
                return bus_error_set (
                    err, err_cap, BUS_ERR_CONFIG,
                    "%s: must be 1 to %zu characters of A-Z a-z 0-9 "
                    "_ . - (got '%s')",
                    where, setting->size - 1, value);
            break;
        case S_TEXT: break;
    }
    return s_set_text (field, setting, value, where, err, err_cap);
}

//  Apply one setting from a flag or a key; where names it in messages
static int
s_apply (bus_config_t *config, const s_setting_t *setting, const char *value,
         const char *where, char *err, size_t err_cap)
{
    if (!s_applies (setting, config->role))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "%s: does not apply to '%s'", where,
                              bus_role_name (config->role));
    return s_set_value (config, setting, value, where, err, err_cap);
}

//  --------------------------------------------------------------------------
//  Config file

typedef struct {
    bus_config_t *config;
    const char *file;   //  path, as the messages name it
    uint64_t seen[2];   //  bit i set once s_settings[i] was set
    char *err;
    size_t err_cap;
} s_loader_t;

static int
s_load_key (s_loader_t *self, const s_setting_t *setting, const char *path,
            const char *value)
{
    char where[BUS_PATH_MAX + 256];
    snprintf (where, sizeof where, "%s: %s", self->file, path);
    size_t i = (size_t) (setting - s_settings);
    uint64_t bit = (uint64_t) 1 << (i % 64);
    if (self->seen[i / 64] & bit)
        return bus_error_set (self->err, self->err_cap, BUS_ERR_CONFIG,
                              "%s: set twice", where);
    self->seen[i / 64] |= bit;
    return s_apply (self->config, setting, value, where, self->err,
                    self->err_cap);
}

//  Apply node and its siblings, whose parent section is prefix ("" = top).
//  Children of a key are walked too, so each is reported as unknown.
static int
s_load_nodes (s_loader_t *self, zconfig_t *node, const char *prefix)
{
    for (; node; node = zconfig_next (node)) {
        char path[256];
        snprintf (path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "",
                  zconfig_name (node));
        const char *value = zconfig_value (node);
        const s_setting_t *setting = s_find_key (path);
        int rc = 0;
        if (setting)
            rc = s_load_key (self, setting, path, value);
        else if (!s_is_section (path))
            rc = bus_error_set (self->err, self->err_cap, BUS_ERR_CONFIG,
                                "%s: %s: unknown %s", self->file, path,
                                zconfig_child (node) ? "section" : "key");
        else if (*value)
            rc = bus_error_set (self->err, self->err_cap, BUS_ERR_CONFIG,
                                "%s: %s: is a section and takes no value",
                                self->file, path);
        if (rc == 0)
            rc = s_load_nodes (self, zconfig_child (node), path);
        if (rc)
            return rc;
    }
    return 0;
}

int
bus_config_load (bus_config_t *config, const char *path, char *err,
                 size_t err_cap)
{
    struct stat info;
    if (access (path, R_OK) != 0)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "cannot read config file '%s': %s", path,
                              strerror (errno));
    if (stat (path, &info) != 0 || !S_ISREG (info.st_mode))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "cannot read config file '%s': %s", path,
                              "not a regular file");
    //  Work on a copy: the whole file applies, or none of it
    bus_config_t copy = *config;
    if (bus_strlcpy (copy.config_path, path, sizeof copy.config_path))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "cannot read config file '%s': path too long",
                              path);
    //  Not zconfig_load: in czmq 4.2.1 it leaks its zfile_t when the text
    //  does not parse.  zconfig_chunk_load is the same parser.
    zchunk_t *chunk = zchunk_slurp (path, 0);
    zconfig_t *root = chunk ? zconfig_chunk_load (chunk) : NULL;
    zchunk_destroy (&chunk);
    if (!root)
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "cannot read config file '%s': not valid ZPL (indent "
            "4 spaces per level; zconfig logged the line)",
            path);
    s_loader_t loader = { &copy, path, { 0, 0 }, err, err_cap };
    int rc = s_load_nodes (&loader, zconfig_child (root), "");
    zconfig_destroy (&root);
    if (rc == 0)
        *config = copy;
    return rc;
}

//  --------------------------------------------------------------------------
//  Flags

//  A word that reads as an option, so never as the value of the one before;
//  "-5" is a (bad) number, not an option
static bool
s_is_option (const char *word)
{
    return word[0] == '-' && word[1] && !isdigit ((unsigned char) word[1]);
}

//  Read the option at argv[*index] and its value, advancing *index past
//  both.  0 with *setting and *value (NULL for a switch), or BUS_ERR_CONFIG.
static int
s_next_option (int argc, char **argv, int *index, const s_setting_t **setting,
               const char **value, char *err, size_t err_cap)
{
    const char *word = argv[(*index)++];
    if (!s_is_option (word))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "unexpected argument '%s'", word);
    const char *equals =
        strncmp (word, "--", 2) == 0 ? strchr (word, '=') : NULL;
    size_t length = equals ? (size_t) (equals - word) : strlen (word);
    *setting = s_find_flag (word, length);
    if (!*setting)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "unknown option '%.*s'", (int) length, word);
    *value = equals ? equals + 1 : NULL;
    if ((*setting)->type == S_SWITCH || (*setting)->type == S_BOOL)
        return equals ? bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                                       "%s: takes no value", (*setting)->flag)
                      : 0;
    if (!equals) {
        if (*index >= argc || s_is_option (argv[*index]))
            return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                                  "%s: missing value", (*setting)->flag);
        *value = argv[(*index)++];
    }
    return 0;
}

//  One pass over the flags: only --config when files is true, all the
//  others when false.  Both passes check every word's syntax.
static int
s_parse_pass (bus_config_t *config, int argc, char **argv, bool files,
              char *err, size_t err_cap)
{
    int index = 1;
    while (index < argc) {
        const s_setting_t *setting = NULL;
        const char *value = NULL;
        int rc =
            s_next_option (argc, argv, &index, &setting, &value, err, err_cap);
        if (rc == 0 && (setting->type == S_CONFIG) == files)
            rc = s_apply (config, setting, value, setting->flag, err, err_cap);
        if (rc)
            return rc;
    }
    return 0;
}

//  A retried request must find its key (a pad resends until answered,
//  and when it is opened again), and a key answers with its original
//  event, which must still be in the log.
static int
s_check_retention (const bus_config_t *config, char *err, size_t err_cap)
{
    int log = config->retain_days, keys = config->key_retain_days;
    if (keys > 0 && keys < S_KEY_DAYS_MIN)
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "store/key_retain_days (%d) must be at least %d: a pad resends "
            "an order until it is answered, also when it is opened again the "
            "next day, and a retry of a forgotten key places a new order",
            keys, S_KEY_DAYS_MIN);
    if (log > 0 && (keys == 0 || keys > log))
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "store/key_retain_days (%d%s) must not exceed store/retain_days "
            "(%d): a retry is answered with the original event, so a key "
            "cannot outlive the log",
            keys, keys ? "" : ", for ever", log);
    return 0;
}

//  leader/etcd needs a group and a name.  The endpoints themselves are
//  checked (https://, or http:// on loopback unless --insecure-etcd) by
//  bus_etcd_new, the one way to etcd, when leadership starts.
static int
s_check_leader (const bus_config_t *config, char *err, size_t err_cap)
{
    bool etcd = *config->leader_etcd != '\0';
    bool named = *config->leader_group && *config->leader_name;
    if (etcd && !named)
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "leader/etcd (--leader-etcd) needs leader/group (--leader-group) "
            "and leader/name (--leader-name): which writer group this writer "
            "campaigns in, and as whom");
    if (!*config->leader_etcd_cert != !*config->leader_etcd_key)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "leader/etcd_cert and leader/etcd_key go "
                              "together: give both or neither");
    if (!etcd && (*config->leader_group || *config->leader_name))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "leader/group and leader/name mean nothing "
                              "without leader/etcd (--leader-etcd)");
    //  A member runs as a standby replica of the leader when it is not
    //  the leader (bus_member.c): it must know where to follow, and be
    //  followed
    if (etcd && (!*config->leader_peers || !*config->replicate))
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "leader/etcd needs leader/peers (--leader-peers: the other "
            "members' writer/replicate endpoints) and writer/replicate "
            "(--replicate): a member that does not lead follows the leader");
    if (!etcd && *config->leader_peers)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "leader/peers means nothing without "
                              "leader/etcd (--leader-etcd)");
    //  On a member it lists the other members' keys (bus_curve.h)
    if (!etcd && config->role == BUS_ROLE_WRITER && *config->writer_key)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "link/writer_key on a writer names the other "
                              "members of its group: it means nothing "
                              "without leader/etcd (--leader-etcd)");
    //  Without a synchronous standby the leader acknowledges right after
    //  its own commit and /sync names nobody: a lagging member could win
    if (etcd && !*config->sync_replica)
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "leader/etcd needs writer/sync_replica (--sync-replica: the "
            "other member's leader/name): every acknowledged order must be "
            "on the member that may take over");
    if (etcd && streq (config->sync_replica, config->leader_name))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "writer/sync_replica names this member itself "
                              "(leader/name '%s'): name the other member",
                              config->leader_name);
    return 0;
}

//  What no single setting's range can say: settings checked together
static int
s_check (const bus_config_t *config, char *err, size_t err_cap)
{
    bool edge = config->role == BUS_ROLE_EDGE || config->role == BUS_ROLE_UP;
    if (edge && bus_config_staff_seats (config) >= config->max_clients)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "edge/staff_seats (%d) must be below "
                              "edge/max_clients (%d): pads need a seat too",
                              config->staff_seats, config->max_clients);
    if (!streq (config->sync_fallback, "refuse")
        && !streq (config->sync_fallback, "async"))
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "writer/sync_fallback: must be refuse or async "
                              "(got '%s')",
                              config->sync_fallback);
    if (config->role == BUS_ROLE_WRITER && *config->sync_replica
        && !*config->replicate)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "writer/sync_replica needs writer/replicate: "
                              "the replica has nowhere to connect");
    if (config->role == BUS_ROLE_REPLICA && !*config->replicate)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "replica/upstream: required (the writer's "
                              "writer/replicate endpoint)");
    int rc = s_check_retention (config, err, err_cap);
    return rc ? rc : s_check_leader (config, err, err_cap);
}

int
bus_config_set (bus_config_t *config, const char *key, const char *value,
                const char *where, char *err, size_t err_cap)
{
    const s_setting_t *setting = s_find_key (key);
    if (!setting)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG, "%s: unknown key",
                              where);
    return s_apply (config, setting, value, where, err, err_cap);
}

//  -h/--help anywhere wins over everything else, errors included
bool
bus_config_help_wanted (int argc, char **argv)
{
    for (int index = 1; index < argc; index++)
        if (streq (argv[index], "-h") || streq (argv[index], "--help"))
            return true;
    return false;
}

int
bus_config_parse (bus_config_t *config, int argc, char **argv, char *err,
                  size_t err_cap)
{
    if (bus_config_help_wanted (argc, argv)) {
        config->help = true;
        return 0;
    }
    bus_config_t copy = *config;
    int rc = s_parse_pass (&copy, argc, argv, true, err, err_cap);
    if (rc == 0)
        rc = s_parse_pass (&copy, argc, argv, false, err, err_cap);
    if (rc == 0)
        rc = s_check (&copy, err, err_cap);
    if (rc == 0)
        *config = copy;
    return rc;
}

//  --------------------------------------------------------------------------
//  Defaults, names and usage

void
bus_config_defaults (bus_config_t *config, bus_role_t role,
                     const char *share_dir)
{
    memset (config, 0, sizeof *config);
    config->role = role;
    strcpy (config->data_dir, "./orderbus-data");
    bool up = role == BUS_ROLE_UP;
    strcpy (config->intake,
            up ? "inproc://orderbus-intake" : "tcp://127.0.0.1:5555");
    strcpy (config->events,
            up ? "inproc://orderbus-events" : "tcp://127.0.0.1:5556");
    strcpy (config->sync,
            up ? "inproc://orderbus-sync" : "tcp://127.0.0.1:5557");
    config->batch_max = 4096;
    config->events_queue = 20000;
    config->retain_days = config->key_retain_days = 30;
    config->heartbeat_ms = 500;
    config->link_timeout_ms = 2000;
    config->max_inflight = 256;
    config->client_queue = 4096;
    config->ws_ping_ms = 5000;
    config->max_clients = 1000;
    config->staff_seats = -1;   //  auto: bus_config_staff_seats
    config->senders = 2;
    config->table_rate_per_s = 2;
    config->table_burst = 10;
    config->changes_per_s = 10;
    config->change_burst = 60;
    //  The seed systems' routes are off everywhere, `up` included: they
    //  are a way in that only a site with seed clients should open
    config->compat = config->open_menu = 0;
    strcpy (config->http_listen, "127.0.0.1");
    config->http_port = 8080;
    config->http_threads = 64;
    config->http_event_threads = 1;
    config->http_max_connections = 10000;
    config->http_max_per_ip = 64;
    config->http_request_deadline_ms = 10000;
    snprintf (config->web_root, sizeof config->web_root, "%s%sweb",
              share_dir ? share_dir : "", share_dir ? "/" : "");
    if (up && share_dir)
        snprintf (config->menu_path, sizeof config->menu_path,
                  "%s/config/demo-menu.json", share_dir);
    snprintf (config->name, sizeof config->name, "%s-%d",
              role == BUS_ROLE_REPLICA ? "replica" : "gw", (int) getpid ());
    strcpy (config->sync_fallback, "refuse");
    config->sync_timeout_ms = 2000;
    config->ack_timeout_ms = 3000;
    config->ring = 10000;
    strcpy (config->site, "main");   //  what `orderbus token` mints for
    config->leader_ttl_s = 2;        //  docs/leadership.md: takeover under 3 s
}

int
bus_config_staff_seats (const bus_config_t *config)
{
    if (config->staff_seats >= 0)
        return config->staff_seats;
    int tenth = config->max_clients / 10;
    return tenth < S_STAFF_SEATS_AUTO_MAX ? tenth : S_STAFF_SEATS_AUTO_MAX;
}

const char *
bus_role_name (bus_role_t role)
{
    return s_is_role (role) ? s_role_names[role] : "unknown";
}

//  An option in --help: flags and meaning, then its default and file key
static void
s_print_option (const s_setting_t *setting, const bus_config_t *defaults)
{
    char flags[48];
    snprintf (flags, sizeof flags, "%s%s%s %s",
              setting->short_flag ? setting->short_flag : "",
              setting->short_flag ? ", " : "    ", setting->flag,
              setting->arg ? setting->arg : "");
    printf ("  %-24s %s", flags, setting->help);
    const char *field = (const char *) defaults + setting->offset;
    if (setting->type == S_INT) {
        int value = *(const int *) field;
        printf (", %ld..%ld\n%27sdefault ", setting->min, setting->max, "");
        //  below the range: worked out from other settings (auto)
        if (value < setting->min)
            printf ("auto");
        else
            printf ("%d", value);
    } else if (setting->type != S_SWITCH && setting->type != S_BOOL)
        printf ("\n%27sdefault %s", "", *field ? field : "none");
    if (setting->key)
        printf ("; key %s", setting->key);
    printf ("\n");
}

void
bus_config_usage (bus_role_t role)
{
    assert (s_is_role (role));
    bus_config_t defaults;
    bus_config_defaults (&defaults, role, S_SHARE_DIR);
    strcpy (defaults.name,
            role == BUS_ROLE_REPLICA ? "replica-<pid>" : "gw-<pid>");
    printf ("orderbus %s - %s\n\n", bus_role_name (role), s_role_about[role]);
    printf ("Usage: orderbus %s [options]\n\nOptions:\n", bus_role_name (role));
    for (size_t i = 0; i < S_SETTINGS; i++)
        if (s_applies (&s_settings[i], role))
            s_print_option (&s_settings[i], &defaults);
    printf ("\nEach option also takes the form --option=VALUE, which a value "
            "starting with\n'-' needs.  Flags override the config file, "
            "which overrides the defaults.\nSee docs/configuration.md for "
            "every setting and example files.\n");
}

//  --------------------------------------------------------------------------
//  Selftest

//  Run bus_config_parse on a fresh config of role with the NULL-ended
//  words; returns its result, with the message in err[BUS_ERROR_MAX]
static int
s_test_parse (bus_config_t *config, bus_role_t role, char *err, ...)
{
    char *argv[32] = { "subcommand" };
    int argc = 1;
    va_list args;
    va_start (args, err);
    char *word;
    while ((word = va_arg (args, char *))) {
        assert (argc < 32);
        argv[argc++] = word;
    }
    va_end (args);
    bus_config_defaults (config, role, "/share");
    err[0] = '\0';
    return bus_config_parse (config, argc, argv, err, BUS_ERROR_MAX);
}

//  Assert that err is a config error containing both expected words
static void
s_test_error (int rc, const char *err, const char *what, const char *why,
              bool verbose)
{
    if (verbose)
        printf ("  error: %s\n", err);
    assert (rc == BUS_ERR_CONFIG);
    assert (strstr (err, what));
    assert (strstr (err, why));
}

//  Write text to dir/name; path gets the file's path
static void
s_test_write (const char *dir, const char *name, const char *text, char *path,
              size_t cap)
{
    snprintf (path, cap, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

static void
s_test_defaults (void)
{
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_UP, "/opt/ob");
    assert (config.role == BUS_ROLE_UP);
    assert (streq (config.intake, "inproc://orderbus-intake"));
    assert (streq (config.events, "inproc://orderbus-events"));
    assert (streq (config.sync, "inproc://orderbus-sync"));
    assert (streq (config.web_root, "/opt/ob/web"));
    assert (streq (config.menu_path, "/opt/ob/config/demo-menu.json"));
    assert (streq (config.config_path, ""));
    assert (streq (config.site, "main") && !*config.sites_file);
    assert (!config.verbose && !config.help);
    //  closed by default: no seed routes, even in the demo
    assert (config.compat == 0 && config.open_menu == 0);
    //  Staff seats when not set: a tenth of the seats, at most 50
    assert (bus_config_staff_seats (&config) == 50);
    config.max_clients = 30;
    assert (bus_config_staff_seats (&config) == 3);
    config.staff_seats = 0;
    assert (bus_config_staff_seats (&config) == 0);
    bus_config_defaults (&config, BUS_ROLE_UP, "/opt/ob");

    bus_config_defaults (&config, BUS_ROLE_WRITER, "/opt/ob");
    assert (streq (config.data_dir, "./orderbus-data"));
    assert (streq (config.menu_path, ""));
    assert (streq (config.intake, "tcp://127.0.0.1:5555"));
    assert (streq (config.events, "tcp://127.0.0.1:5556"));
    assert (streq (config.sync, "tcp://127.0.0.1:5557"));
    assert (config.batch_max == 4096 && config.heartbeat_ms == 500);

    bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
    assert (streq (config.http_listen, "127.0.0.1"));
    assert (config.http_port == 8080 && config.http_threads == 64);
    assert (config.http_event_threads == 1);
    assert (config.ack_timeout_ms == 3000);
    char name[BUS_NAME_MAX];
    snprintf (name, sizeof name, "gw-%d", (int) getpid ());
    assert (streq (config.name, name));

    bus_config_defaults (&config, BUS_ROLE_EDGE, NULL);
    assert (streq (config.web_root, "web"));
    assert (streq (config.menu_path, ""));
    assert (config.ring == 10000);

    assert (streq (bus_role_name (BUS_ROLE_UP), "up"));
    assert (streq (bus_role_name (BUS_ROLE_WRITER), "writer"));
    assert (streq (bus_role_name (BUS_ROLE_GATEWAY), "gateway"));
    assert (streq (bus_role_name (BUS_ROLE_EDGE), "edge"));
}

static void
s_test_flags (void)
{
    bus_config_t config;
    char err[BUS_ERROR_MAX];
    int rc = s_test_parse (&config, BUS_ROLE_UP, err, "--http-port", "9090",
                           "--http-threads=8", "-v", "--name=patio.1", "--ring",
                           "16", "--menu=", "--data", "/var/ob",
                           "--web=/srv/web", NULL);
    assert (rc == 0);
    assert (config.http_port == 9090 && config.http_threads == 8);
    assert (config.verbose && !config.help);
    assert (streq (config.name, "patio.1"));
    assert (config.ring == 16);
    assert (streq (config.menu_path, ""));
    assert (streq (config.data_dir, "/var/ob"));
    assert (streq (config.web_root, "/srv/web"));

    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--intake",
                       "tcp://*:6000", "--events=ipc:///tmp/ev",
                       "--sync=inproc://s", "--batch-max=65536",
                       "--heartbeat-ms", "50", "--verbose", NULL);
    assert (rc == 0);
    assert (streq (config.intake, "tcp://*:6000"));
    assert (streq (config.events, "ipc:///tmp/ev"));
    assert (streq (config.sync, "inproc://s"));
    assert (config.batch_max == 65536 && config.heartbeat_ms == 50);
    assert (config.verbose);

    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--listen", "0.0.0.0",
                       "--ack-timeout-ms=600000", "--http-event-threads", "4",
                       NULL);
    assert (rc == 0);
    assert (streq (config.http_listen, "0.0.0.0"));
    assert (config.ack_timeout_ms == 600000);
    assert (config.http_event_threads == 4);

    //  the links' keys (bus_curve.h checks the files themselves)
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--cert", "w.cert_secret",
                       "--allow=/etc/ob/allow", NULL);
    assert (rc == 0 && streq (config.cert_file, "w.cert_secret"));
    assert (streq (config.allow_dir, "/etc/ob/allow")
            && !config.insecure_links);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--writer-key", "w.cert",
                       "--insecure-plaintext-links", NULL);
    assert (rc == 0 && streq (config.writer_key, "w.cert"));
    assert (config.insecure_links);

    //  taking an older data file is a flag, never a file's key
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, NULL);
    assert (rc == 0 && !config.accept_restore);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--accept-restore", NULL);
    assert (rc == 0 && config.accept_restore);
    rc =
        s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--accept-restore", NULL);
    assert (rc != 0 && strstr (err, "--accept-restore")
            && strstr (err, "does not apply to 'gateway'"));

    //  running open is a flag of its own, for gateways and edges only
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, NULL);
    assert (rc == 0 && config.insecure_no_auth == 0);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--insecure-no-auth", NULL);
    assert (rc == 0 && config.insecure_no_auth == 1);

    //  the last of a repeated flag wins
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--ring=20", "--ring=30",
                       NULL);
    assert (rc == 0 && config.ring == 30);

    //  help wins wherever it stands, even after a bad flag
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--foo", "-h", NULL);
    assert (rc == 0 && config.help);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--help", NULL);
    assert (rc == 0 && config.help);
}

//  Leadership: nothing by default; etcd needs a group and a name; and,
//  until the writer's failover uses it, it is refused
static void
s_test_leader (bool verbose)
{
    bus_config_t config;
    char err[BUS_ERROR_MAX];
    int rc;
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, NULL);
    assert (rc == 0 && !*config.leader_etcd && config.leader_ttl_s == 2
            && !config.insecure_etcd);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-etcd",
                       "http://127.0.0.1:2379", NULL);
    s_test_error (rc, err, "leader/group", "leader/name", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-group", "g",
                       "--leader-name", "w1", NULL);
    s_test_error (rc, err, "leader/group", "without leader/etcd", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-etcd",
                       "http://127.0.0.1:2379", "--leader-group", "g",
                       "--leader-name", "w1", "--leader-ttl-s", "5",
                       "--insecure-etcd", NULL);
    s_test_error (rc, err, "leader/etcd", "leader/peers", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-etcd",
                       "http://127.0.0.1:2379", "--leader-group", "g",
                       "--leader-name", "w1", "--leader-peers",
                       "tcp://127.0.0.1:7001,tcp://127.0.0.1:7002",
                       "--replicate", "tcp://127.0.0.1:7000", NULL);
    s_test_error (rc, err, "leader/etcd", "writer/sync_replica", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-etcd",
                       "http://127.0.0.1:2379", "--leader-group", "g",
                       "--leader-name", "w1", "--leader-peers",
                       "tcp://127.0.0.1:7001", "--replicate",
                       "tcp://127.0.0.1:7000", "--sync-replica", "w1", NULL);
    s_test_error (rc, err, "writer/sync_replica", "this member itself",
                  verbose);
    rc = s_test_parse (
        &config, BUS_ROLE_WRITER, err, "--leader-etcd", "http://127.0.0.1:2379",
        "--leader-group", "g", "--leader-name", "w1", "--leader-peers",
        "tcp://127.0.0.1:7001,tcp://127.0.0.1:7002", "--replicate",
        "tcp://127.0.0.1:7000", "--sync-replica", "w2", NULL);
    assert (rc == 0 && config.leader_ttl_s == 2);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-peers",
                       "tcp://127.0.0.1:7001", NULL);
    s_test_error (rc, err, "leader/peers", "without leader/etcd", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-etcd-cert",
                       "w1.pem", NULL);
    s_test_error (rc, err, "leader/etcd_key", "both or neither", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-ttl-s", "1",
                       NULL);
    s_test_error (rc, err, "--leader-ttl-s", "from 2 to 60", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--leader-group", "a/b",
                       NULL);
    s_test_error (rc, err, "--leader-group", "A-Z a-z", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--insecure-etcd", NULL);
    s_test_error (rc, err, "--insecure-etcd", "does not apply", verbose);
}

static void
s_test_flag_errors (bool verbose)
{
    bus_config_t config;
    char err[BUS_ERROR_MAX];
    int rc = s_test_parse (&config, BUS_ROLE_UP, err, "--foo", NULL);
    s_test_error (rc, err, "unknown option", "'--foo'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--foo=1", NULL);
    s_test_error (rc, err, "unknown option", "'--foo'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "-x", NULL);
    s_test_error (rc, err, "unknown option", "'-x'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "x", NULL);
    s_test_error (rc, err, "unexpected argument", "'x'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--data", NULL);
    s_test_error (rc, err, "--data", "missing value", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--data", "-v", NULL);
    s_test_error (rc, err, "--data", "missing value", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--verbose=1", NULL);
    s_test_error (rc, err, "--verbose", "takes no value", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--insecure-no-auth=0",
                       NULL);
    s_test_error (rc, err, "--insecure-no-auth", "takes no value", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--insecure-no-auth", NULL);
    s_test_error (rc, err, "--insecure-no-auth", "does not apply to 'up'",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--insecure-no-auth",
                       NULL);
    s_test_error (rc, err, "--insecure-no-auth", "does not apply to 'writer'",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--http-port", "abc", NULL);
    s_test_error (rc, err, "--http-port: must be an integer from 1 to 65535",
                  "(got 'abc')", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--http-port=99999", NULL);
    s_test_error (rc, err, "--http-port: must be an integer from 1 to 65535",
                  "(got '99999')", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--http-port", "-5", NULL);
    s_test_error (rc, err, "--http-port", "(got '-5')", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--http-port= 80", NULL);
    s_test_error (rc, err, "--http-port", "must be an integer", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--ring=99999999999999999",
                       NULL);
    s_test_error (rc, err, "--ring", "from 16 to 10000000", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--http-threads=3", NULL);
    s_test_error (rc, err, "--http-threads", "from 4 to 1024", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--http-event-threads=0",
                       NULL);
    s_test_error (rc, err, "--http-event-threads", "from 1 to 64", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--max-per-ip=2", NULL);
    s_test_error (rc, err, "--max-per-ip", "does not apply to 'writer'",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--http-port=80", NULL);
    s_test_error (rc, err, "--http-port", "does not apply to 'writer'",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--intake=inproc://x", NULL);
    s_test_error (rc, err, "--intake", "does not apply to 'up'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--allow=d", NULL);
    s_test_error (rc, err, "--allow", "does not apply to 'gateway'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--writer-key=k", NULL);
    s_test_error (rc, err, "link/writer_key on a writer", "leader/etcd",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--cert=c", NULL);
    s_test_error (rc, err, "--cert", "does not apply to 'up'", verbose);
    //  Replication (docs/replication.md)
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--sync-fallback=maybe",
                       NULL);
    s_test_error (rc, err, "writer/sync_fallback", "refuse or async", verbose);
    rc =
        s_test_parse (&config, BUS_ROLE_WRITER, err, "--sync-replica=r1", NULL);
    s_test_error (rc, err, "writer/sync_replica", "needs writer/replicate",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_REPLICA, err, NULL);
    s_test_error (rc, err, "replica/upstream", "required", verbose);
    rc =
        s_test_parse (&config, BUS_ROLE_UP, err, "--replicate=tcp://x:1", NULL);
    s_test_error (rc, err, "--replicate", "does not apply to 'up'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--replicate",
                       "tcp://127.0.0.1:5558", "--sync-replica", "r1",
                       "--sync-fallback", "async", NULL);
    assert (rc == 0 && streq (config.sync_replica, "r1")
            && streq (config.sync_fallback, "async")
            && config.sync_timeout_ms == 2000);
    rc = s_test_parse (&config, BUS_ROLE_REPLICA, err, "--upstream",
                       "tcp://127.0.0.1:5558", "--replica-name", "r1", NULL);
    assert (rc == 0 && streq (config.replicate, "tcp://127.0.0.1:5558")
            && streq (config.name, "r1"));
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--insecure-plaintext-links",
                       NULL);
    s_test_error (rc, err, "--insecure-plaintext-links",
                  "does not apply to 'up'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err,
                       "--insecure-plaintext-links=1", NULL);
    s_test_error (rc, err, "--insecure-plaintext-links", "takes no value",
                  verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--web=w", NULL);
    s_test_error (rc, err, "--web", "does not apply to 'gateway'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--data=d", NULL);
    s_test_error (rc, err, "--data", "does not apply to 'edge'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--events", "http://x",
                       NULL);
    s_test_error (rc, err, "--events", "tcp://, ipc:// or inproc://", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--events=tcp://", NULL);
    s_test_error (rc, err, "--events", "got 'tcp://'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--name=gw/1", NULL);
    s_test_error (rc, err, "--name", "1 to 80 characters", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--name=", NULL);
    s_test_error (rc, err, "--name", "1 to 80 characters", verbose);
    char long_name[100];
    memset (long_name, 'a', 81);
    long_name[81] = '\0';
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--name", long_name,
                       NULL);
    s_test_error (rc, err, "--name", "1 to 80 characters", verbose);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--site=a/b", NULL);
    s_test_error (rc, err, "--site", "1 to 80 characters", verbose);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--sites=s.cfg", NULL);
    s_test_error (rc, err, "--sites", "does not apply to 'up'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--site=a", NULL);
    s_test_error (rc, err, "--site", "does not apply to 'writer'", verbose);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--site", "bistro-92",
                       "--sites=/etc/s.cfg", NULL);
    assert (rc == 0 && streq (config.site, "bistro-92"));
    assert (streq (config.sites_file, "/etc/s.cfg"));
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--data=", NULL);
    s_test_error (rc, err, "--data", "must not be empty", verbose);
    char long_path[BUS_PATH_MAX + 8];
    memset (long_path, 'p', BUS_PATH_MAX);
    long_path[BUS_PATH_MAX] = '\0';
    rc =
        s_test_parse (&config, BUS_ROLE_WRITER, err, "--data", long_path, NULL);
    s_test_error (rc, err, "--data", "at most 1023 bytes", verbose);

    //  a failed parse leaves the config as it was
    bus_config_t before = config;
    char *argv[] = { "writer", "--batch-max=7", "--batch-max=0" };
    assert (bus_config_parse (&config, 3, argv, err, sizeof err)
            == BUS_ERR_CONFIG);
    assert (memcmp (&before, &config, sizeof config) == 0);
}

static void
s_test_files (const char *dir, bool verbose)
{
    char writer[BUS_PATH_MAX], gateway[BUS_PATH_MAX];
    s_test_write (dir, "writer.cfg",
                  "#   writer host\n"
                  "data = /var/lib/orderbus    # LMDB\n"
                  "menu = \"/etc/orderbus/menu.json\"\n"
                  "endpoints\n"
                  "    intake = tcp://*:5555\n"
                  "    events = tcp://*:5556\n"
                  "    sync = tcp://*:5557\n"
                  "writer\n"
                  "    batch_max = 1024\n"
                  "link\n    heartbeat_ms = 250\n"
                  "    cert = /etc/orderbus/writer.cert_secret\n"
                  "    allow = /etc/orderbus/allow\n",
                  writer, sizeof writer);
    s_test_write (dir, "gateway.cfg",
                  "endpoints\n"
                  "    intake = tcp://10.0.0.5:5555\n"
                  "http\n"
                  "    port = 8081\n"
                  "    threads = 16\n"
                  "gateway\n"
                  "    name = patio\n",
                  gateway, sizeof gateway);
    char err[BUS_ERROR_MAX];
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_WRITER, NULL);
    assert (bus_config_load (&config, writer, err, sizeof err) == 0);
    assert (streq (config.config_path, writer));
    assert (streq (config.data_dir, "/var/lib/orderbus"));
    assert (streq (config.menu_path, "/etc/orderbus/menu.json"));
    assert (streq (config.intake, "tcp://*:5555"));
    assert (streq (config.sync, "tcp://*:5557"));
    assert (config.batch_max == 1024 && config.heartbeat_ms == 250);
    assert (streq (config.cert_file, "/etc/orderbus/writer.cert_secret"));
    assert (streq (config.allow_dir, "/etc/orderbus/allow"));

    //  flags win over the file, whether --config comes first or last
    int rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--config", gateway,
                           "--http-port=9000", NULL);
    assert (rc == 0);
    assert (config.http_port == 9000 && config.http_threads == 16);
    assert (streq (config.name, "patio"));
    assert (streq (config.intake, "tcp://10.0.0.5:5555"));
    assert (streq (config.config_path, gateway));
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--http-port", "9000",
                       "--name=bar", "--config", gateway, NULL);
    assert (rc == 0);
    assert (config.http_port == 9000 && config.http_threads == 16);
    assert (streq (config.name, "bar"));
    char flag[BUS_PATH_MAX + 16];
    snprintf (flag, sizeof flag, "--config=%s", gateway);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--http-port=1", flag,
                       NULL);
    assert (rc == 0 && config.http_port == 1 && config.http_threads == 16);

    //  a key that does not apply to the role names the file and the key
    rc =
        s_test_parse (&config, BUS_ROLE_WRITER, err, "--config", gateway, NULL);
    s_test_error (rc, err, "gateway.cfg: http/port",
                  "does not apply to 'writer'", verbose);
    unlink (writer);
    unlink (gateway);
}

//  Each bad file in turn, loaded for a role; the message must hold both
//  expected words, and the config must be left as it was
static void
s_test_file_errors (const char *dir, bool verbose)
{
    static const struct {
        const char *text;
        bus_role_t role;
        const char *what, *why;
    } cases[] = {
        { "http\n    portt = 1\n", BUS_ROLE_UP, "bad.cfg: http/portt",
          "unknown key" },
        { "htp\n    port = 1\n", BUS_ROLE_UP, "bad.cfg: htp",
          "unknown section" },
        { "port = 1\n", BUS_ROLE_UP, "bad.cfg: port", "unknown key" },
        { "http\n    port = abc\n", BUS_ROLE_UP,
          "bad.cfg: http/port: must be "
          "an integer from 1 to 65535",
          "(got 'abc')" },
        { "http\n    port = 0\n", BUS_ROLE_EDGE, "http/port", "(got '0')" },
        { "http\n    port = 1\n    port = 2\n", BUS_ROLE_UP, "http/port",
          "set twice" },
        { "http = on\n    port = 1\n", BUS_ROLE_UP, "bad.cfg: http",
          "is a section" },
        { "http\n    port = 1\n        x = 2\n", BUS_ROLE_UP, "http/port/x",
          "unknown key" },
        { "endpoints\n    sync = udp://x\n", BUS_ROLE_EDGE,
          "bad.cfg: endpoints/sync", "tcp://, ipc:// or inproc://" },
        { "leader\n    peers = tcp://a:1,,tcp://b:1\n", BUS_ROLE_WRITER,
          "bad.cfg: leader/peers", "item 2 of the comma list is empty" },
        { "endpoints\n    sync = tcp://a:1,\n", BUS_ROLE_EDGE,
          "bad.cfg: endpoints/sync", "item 2 of the comma list is empty" },
        { "endpoints\n    sync = ,tcp://a:1\n", BUS_ROLE_EDGE,
          "bad.cfg: endpoints/sync", "item 1 of the comma list is empty" },
        { "endpoints\n    sync = tcp://a:1,udp://b\n", BUS_ROLE_EDGE,
          "bad.cfg: endpoints/sync", "or a comma list of them" },
        { "endpoints\n    intake = tcp://x:1\n", BUS_ROLE_UP,
          "bad.cfg: endpoints/intake", "does not apply to 'up'" },
        { "gateway\n    name = a b\n", BUS_ROLE_GATEWAY,
          "bad.cfg: gateway/name", "1 to 80 characters" },
        { "data = /d\n", BUS_ROLE_EDGE, "bad.cfg: data",
          "does not apply to 'edge'" },
        { "http\n    web = /w\n", BUS_ROLE_GATEWAY, "bad.cfg: http/web",
          "does not apply to 'gateway'" },
        { "link\n    allow = /a\n", BUS_ROLE_EDGE, "bad.cfg: link/allow",
          "does not apply to 'edge'" },
        { "link\n    insecure_plaintext_links = 1\n", BUS_ROLE_WRITER,
          "bad.cfg: link/insecure_plaintext_links", "unknown key" },
        { "http\n   port = 1\n", BUS_ROLE_UP, "bad.cfg", "not valid ZPL" },
        { "auth\n    insecure_no_auth = 2\n", BUS_ROLE_GATEWAY,
          "bad.cfg: auth/insecure_no_auth", "must be 0 or 1 (got '2')" },
        { "auth\n    insecure_no_auth = 1\n", BUS_ROLE_UP,
          "bad.cfg: auth/insecure_no_auth", "does not apply to 'up'" },
    };
    char path[BUS_PATH_MAX], err[BUS_ERROR_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_test_write (dir, "bad.cfg", cases[i].text, path, sizeof path);
        bus_config_t config;
        bus_config_defaults (&config, cases[i].role, NULL);
        bus_config_t before = config;
        int rc = bus_config_load (&config, path, err, sizeof err);
        s_test_error (rc, err, cases[i].what, cases[i].why, verbose);
        assert (memcmp (&before, &config, sizeof config) == 0);
        unlink (path);
    }
    //  a key may also be written as its whole path; an empty file is valid
    bus_config_t config;
    s_test_write (dir, "path.cfg", "http/port = 81\n", path, sizeof path);
    int rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--config", path, NULL);
    assert (rc == 0 && config.http_port == 81);
    unlink (path);
    s_test_write (dir, "open.cfg", "auth\n    insecure_no_auth = 1\n", path,
                  sizeof path);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--config", path, NULL);
    assert (rc == 0 && config.insecure_no_auth == 1);
    unlink (path);
    s_test_write (dir, "closed.cfg", "auth\n    insecure_no_auth = 0\n", path,
                  sizeof path);
    rc = s_test_parse (&config, BUS_ROLE_GATEWAY, err, "--config", path, NULL);
    assert (rc == 0 && config.insecure_no_auth == 0);
    unlink (path);
    s_test_write (dir, "empty.cfg", "", path, sizeof path);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--config", path, NULL);
    assert (rc == 0 && streq (config.config_path, path));
    unlink (path);

    snprintf (path, sizeof path, "%s/missing.cfg", dir);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--config", path, NULL);
    s_test_error (rc, err, "cannot read config file", "missing.cfg", verbose);
    assert (strstr (err, "No such file"));
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--config", dir, NULL);
    s_test_error (rc, err, "cannot read config file", "not a regular file",
                  verbose);
}

//  Retention: safe defaults, "for ever" where it makes sense, and a key
//  retention that a retry outlives and the log outlasts, or a clear no
static void
s_test_retention (const char *dir, bool verbose)
{
    bus_config_t config;
    char err[BUS_ERROR_MAX], path[600];
    int rc = s_test_parse (&config, BUS_ROLE_WRITER, err, NULL);
    assert (rc == 0 && config.retain_days == 30);
    assert (config.key_retain_days == 30);
    rc = s_test_parse (&config, BUS_ROLE_UP, err, "--retain-days", "90",
                       "--key-retain-days", "2", NULL);
    assert (rc == 0 && config.retain_days == 90 && config.key_retain_days == 2);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--retain-days=0",
                       "--key-retain-days=0", NULL);
    assert (rc == 0 && config.retain_days == 0 && config.key_retain_days == 0);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--retain-days=0",
                       "--key-retain-days=400", NULL);
    assert (rc == 0 && config.key_retain_days == 400);

    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--key-retain-days=1",
                       NULL);
    s_test_error (rc, err, "store/key_retain_days (1)", "at least 2", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--retain-days=7",
                       "--key-retain-days=8", NULL);
    s_test_error (rc, err, "store/key_retain_days (8)",
                  "must not exceed store/retain_days (7)", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--key-retain-days=0",
                       NULL);
    s_test_error (rc, err, "store/key_retain_days (0, for ever)",
                  "cannot outlive the log", verbose);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--retain-days=-1", NULL);
    s_test_error (rc, err, "--retain-days", "from 0 to 36500", verbose);
    rc = s_test_parse (&config, BUS_ROLE_EDGE, err, "--retain-days=3", NULL);
    s_test_error (rc, err, "--retain-days", "does not apply to 'edge'",
                  verbose);

    //  The same from a file, and the same refusal naming the keys
    s_test_write (dir, "retain.cfg",
                  "store\n    retain_days = 14\n    key_retain_days = 3\n",
                  path, sizeof path);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--config", path, NULL);
    assert (rc == 0 && config.retain_days == 14 && config.key_retain_days == 3);
    s_test_write (dir, "retain.cfg", "store\n    key_retain_days = 31\n", path,
                  sizeof path);
    rc = s_test_parse (&config, BUS_ROLE_WRITER, err, "--config", path, NULL);
    s_test_error (rc, err, "store/key_retain_days (31)",
                  "store/retain_days (30)", verbose);
    unlink (path);
}

void
bus_config_test (bool verbose)
{
    printf (" * bus_config: ");
    if (verbose)
        printf ("\n");
    s_test_defaults ();
    s_test_flags ();
    s_test_leader (verbose);
    s_test_flag_errors (verbose);
    char dir[] = "/tmp/orderbus-config-XXXXXX";
    assert (mkdtemp (dir));
    s_test_files (dir, verbose);
    s_test_file_errors (dir, verbose);
    s_test_retention (dir, verbose);
    assert (rmdir (dir) == 0);
    if (verbose)
        for (int role = BUS_ROLE_UP; role <= BUS_ROLE_EDGE; role++) {
            bus_config_usage ((bus_role_t) role);
            printf ("\n");
        }
    printf ("OK\n");
}
