/*  bus_etcd.h — a small, blocking client of one etcd cluster (v3 API).

    It speaks etcd's JSON gateway (HTTP POST /v3/kv/range, /v3/kv/txn,
    /v3/kv/deleterange, /v3/lease/grant, /v3/lease/keepalive,
    /v3/lease/revoke, /v3/watch; etcd 3.4 serves /v3/, keys and values
    base64) through libcurl, so it needs no gRPC stack.  It is what
    bus_leader.h builds leadership on; docs/leadership.md has the model.

    Endpoints: a list of base URLs ("http://127.0.0.1:2379,https://..."),
    tried in turn, starting from the last one that answered.  A plain
    http:// endpoint off loopback is refused unless insecure is set:
    anyone on that network could read and forge leadership.

    Every call takes a deadline (timeout_ms, for the whole call, all
    endpoints included) and returns 0 or a negative bus_err_t, with words
    in err[err_cap] when err is not NULL:
      BUS_ERR_UNAVAILABLE  no endpoint could be reached, or etcd answered
                           with an error (its message is in err)
      BUS_ERR_TIMEOUT      the deadline passed first
      BUS_ERR_MALFORMED    an answer that is not etcd's JSON, or whose
                           fields have the wrong types
      BUS_ERR_TOO_BIG      an answer over BUS_ETCD_BODY_MAX
      BUS_ERR_NOT_FOUND    the lease does not exist (keepalive, revoke)
      BUS_ERR_INVALID      a bad argument (empty key, TTL out of range)
    A failed compare of a transaction is not an error: the call returns
    0 with succeeded false (bus_etcd_result_t), and what the key holds.
    A call that fails leaves its result all zeros: a bad answer is never
    half read.

    Threads: a bus_etcd_t is used by one thread at a time (it owns one
    libcurl handle and its connections); make one per thread.
    bus_etcd_global_init must have been called once before any thread
    makes one (libcurl's global init is not thread-safe).  */

#ifndef BUS_ETCD_H_INCLUDED
#define BUS_ETCD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_etcd_t bus_etcd_t;

/*  The largest answer read (one watch message, too); more is TOO_BIG.  */
#define BUS_ETCD_BODY_MAX (64 * 1024)
/*  The largest key or value, before base64.  */
#define BUS_ETCD_VALUE_MAX 256
/*  Endpoints at most, and the longest one.  */
#define BUS_ETCD_ENDPOINTS_MAX 8
#define BUS_ETCD_URL_MAX       256

/*  Client TLS, for https:// endpoints (all optional: NULL or "" is the
    system's CA store and no client certificate).  */
typedef struct {
    const char *ca_file;   /* PEM CA that signed etcd's certificate */
    const char *cert_file; /* PEM client certificate, if etcd asks  */
    const char *key_file;  /* its private key                       */
} bus_etcd_tls_t;

/*  What a call found.  revision: etcd's header revision at the answer.
    For a key (get, the failure side of a txn): found, value, and the
    key's create_revision, mod_revision and lease (0 when absent).  */
typedef struct {
    int64_t revision;
    bool succeeded; /* txn: the compare held                 */
    bool found;
    char value[BUS_ETCD_VALUE_MAX + 1]; /* NUL-ended; "" when absent */
    int64_t create_revision;
    int64_t mod_revision;
    int64_t lease;
    int64_t ttl; /* lease calls: granted or remaining TTL, seconds */
} bus_etcd_result_t;

/*  Call once in main before any thread makes a client.  0 or
    BUS_ERR_UNAVAILABLE (libcurl could not start).  */
int bus_etcd_global_init (void);

/*  Check an endpoint list, as bus_etcd_new does, without a client:
    0 or BUS_ERR_CONFIG with words.  */
int bus_etcd_check_endpoints (const char *endpoints, bool insecure, char *err,
                              size_t err_cap);

/*  New client of endpoints (comma-separated base URLs, see above); tls
    may be NULL.  NULL, with words in err, for a bad list.  Connects
    lazily.  Caller owns.  */
bus_etcd_t *bus_etcd_new (const char *endpoints, bool insecure,
                          const bus_etcd_tls_t *tls, char *err, size_t err_cap);

/*  NULL-safe; nulls *self_p.  */
void bus_etcd_destroy (bus_etcd_t **self_p);

/*  Read key: found false (and 0) when it is absent.  */
int bus_etcd_get (bus_etcd_t *self, const char *key, int timeout_ms,
                  bus_etcd_result_t *result, char *err, size_t err_cap);

/*  Write key = value, attached to lease (0: none).  */
int bus_etcd_put (bus_etcd_t *self, const char *key, const char *value,
                  int64_t lease, int timeout_ms, bus_etcd_result_t *result,
                  char *err, size_t err_cap);

/*  Write key = value under lease only if key does not exist (compare
    create_revision == 0).  succeeded: written, its create_revision is
    result->revision; else found/value/... say what holds the key.  */
int bus_etcd_create (bus_etcd_t *self, const char *key, const char *value,
                     int64_t lease, int timeout_ms, bus_etcd_result_t *result,
                     char *err, size_t err_cap);

/*  Write key = value (lease 0: none) only if key's mod_revision is still
    mod_revision (0: only if absent).  succeeded, or what holds the key.  */
int bus_etcd_cas (bus_etcd_t *self, const char *key, const char *value,
                  int64_t lease, int64_t mod_revision, int timeout_ms,
                  bus_etcd_result_t *result, char *err, size_t err_cap);

/*  The general transaction the two above are made of, and what leader
    needs: write key = value under lease if every compare holds, each
    "cmp_key's create_revision (or, with by_mod, mod_revision) equals
    want" (want 0 with create_revision: absent).  On failure, what holds
    key.  */
typedef struct {
    const char *key;
    bool by_mod; /* compare mod_revision, not create_revision */
    int64_t want;
} bus_etcd_compare_t;
int bus_etcd_txn_put (bus_etcd_t *self, const bus_etcd_compare_t *compares,
                      size_t count, const char *key, const char *value,
                      int64_t lease, int timeout_ms, bus_etcd_result_t *result,
                      char *err, size_t err_cap);

/*  Delete key (succeeded: it existed).  */
int bus_etcd_delete (bus_etcd_t *self, const char *key, int timeout_ms,
                     bus_etcd_result_t *result, char *err, size_t err_cap);

/*  Grant a lease of ttl_s seconds (1..3600): result->lease is its id,
    result->ttl the TTL etcd granted (it may raise a short one to its
    minimum: use the one granted).  */
int bus_etcd_lease_grant (bus_etcd_t *self, int ttl_s, int timeout_ms,
                          bus_etcd_result_t *result, char *err, size_t err_cap);

/*  One keepalive of lease: result->ttl is its renewed TTL.  NOT_FOUND
    when etcd no longer has the lease (it expired or was revoked).  */
int bus_etcd_lease_keepalive (bus_etcd_t *self, int64_t lease, int timeout_ms,
                              bus_etcd_result_t *result, char *err,
                              size_t err_cap);

/*  Revoke lease: every key under it is deleted at once.  */
int bus_etcd_lease_revoke (bus_etcd_t *self, int64_t lease, int timeout_ms,
                           bus_etcd_result_t *result, char *err,
                           size_t err_cap);

/*  Wait until key changes after revision (an etcd watch from
    revision + 1, so no change in between is missed).  0 with the first
    change in result (found false and value "" for a delete;
    mod_revision: the change's revision), or BUS_ERR_TIMEOUT when
    nothing changed within timeout_ms.  A watch, not polling: it
    answers as soon as the change is committed and costs etcd nothing
    while the key is quiet.  */
int bus_etcd_wait (bus_etcd_t *self, const char *key, int64_t revision,
                   int timeout_ms, bus_etcd_result_t *result, char *err,
                   size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
