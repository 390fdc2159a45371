/*  test_etcd — the etcd client (bus_etcd.h) against a real etcd, and
    against a fake one that answers what etcd never should.

      kv        get, put, create-if-absent, compare-and-swap on
                mod_revision, delete; header revisions only grow
      lease     grant, keepalive, a key under it, revoke (the key goes),
                keepalive and revoke of a lease that is gone: not_found
      wait      a watch from a revision sees the first change after it,
                one made while it waits, and times out when none comes
      endpoints a bad or plain off-loopback endpoint is refused unless
                insecure; a dead endpoint first in the list is skipped
      down      etcd unreachable: unavailable; etcd stopped: timeout, on
                the deadline
      garbage   not JSON, the wrong JSON, bad numbers, bad base64, an
                oversized answer, a deep one, an error object, silence,
                a slow answer: each a clear error, the result left empty,
                no crash (the test runs under ASan in the Debug build)
      tls       etcd on TLS with client certificates: the trusted and
                certified client is served, an untrusted server and a
                client without a certificate are refused

    Throughout, http_proxy and https_proxy name a dead proxy: the client
    must go straight to etcd.

    Skips (77) when there is no etcd binary (apt-get install etcd-server). */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_etcd.h"
#include <czmq.h>
#include "testkit.h"
#include "tk_etcd.h"

#define CHECK TK_CHECK
#define T     2000   //  deadline of a call that should answer

static tk_etcd_t s_etcd;
static bus_etcd_t *s_client;
static char s_err[256];

static bus_etcd_t *
s_new (const char *endpoints)
{
    bus_etcd_t *client =
        bus_etcd_new (endpoints, false, NULL, s_err, sizeof s_err);
    CHECK (client, "client of %s: %s", endpoints, s_err);
    return client;
}

TK_CASE (kv)
{
    bus_etcd_result_t r;
    CHECK (bus_etcd_get (s_client, "/t/a", T, &r, s_err, sizeof s_err) == 0,
           "get: %s", s_err);
    CHECK (!r.found && r.revision > 0 && !*r.value, "absent key");
    int64_t first = r.revision;
    CHECK (bus_etcd_put (s_client, "/t/a", "one", 0, T, &r, s_err, sizeof s_err)
                   == 0
               && r.succeeded && r.revision > first,
           "put: %s", s_err);
    int64_t put = r.revision;
    CHECK (bus_etcd_get (s_client, "/t/a", T, &r, NULL, 0) == 0 && r.found
               && streq (r.value, "one") && r.create_revision == put
               && r.mod_revision == put,
           "get after put: '%s' %lld", r.value, (long long) r.create_revision);
    //  create: only if absent
    CHECK (bus_etcd_create (s_client, "/t/a", "two", 0, T, &r, NULL, 0) == 0
               && !r.succeeded && r.found && streq (r.value, "one")
               && r.create_revision == put,
           "create over an existing key fails and says what is there");
    CHECK (bus_etcd_create (s_client, "/t/b", "b", 0, T, &r, NULL, 0) == 0
               && r.succeeded && r.revision > put,
           "create of an absent key");
    //  compare-and-swap on mod_revision
    CHECK (bus_etcd_cas (s_client, "/t/a", "three", 0, put - 1, T, &r, NULL, 0)
                   == 0
               && !r.succeeded && streq (r.value, "one"),
           "cas with a stale mod_revision fails");
    CHECK (bus_etcd_cas (s_client, "/t/a", "three", 0, put, T, &r, NULL, 0) == 0
               && r.succeeded,
           "cas with the current mod_revision");
    CHECK (bus_etcd_cas (s_client, "/t/c", "c", 0, 0, T, &r, NULL, 0) == 0
               && r.succeeded,
           "cas with 0: only if absent");
    CHECK (bus_etcd_get (s_client, "/t/a", T, &r, NULL, 0) == 0
               && streq (r.value, "three") && r.create_revision == put
               && r.mod_revision > put,
           "cas wrote");
    CHECK (bus_etcd_delete (s_client, "/t/a", T, &r, NULL, 0) == 0
               && r.succeeded,
           "delete");
    CHECK (bus_etcd_delete (s_client, "/t/a", T, &r, NULL, 0) == 0
               && !r.succeeded,
           "delete of an absent key");
    printf ("etcd: kv: revisions %lld..%lld\n", (long long) first,
            (long long) r.revision);
    CHECK (bus_etcd_get (s_client, "", T, &r, s_err, sizeof s_err)
               == BUS_ERR_INVALID,
           "empty key refused");
}

TK_CASE (lease)
{
    bus_etcd_result_t lease, r;
    CHECK (bus_etcd_lease_grant (s_client, 5, T, &lease, s_err, sizeof s_err)
                   == 0
               && lease.lease != 0 && lease.ttl >= 5,
           "grant: %s", s_err);
    CHECK (
        bus_etcd_put (s_client, "/t/leased", "x", lease.lease, T, &r, NULL, 0)
            == 0,
        "put under a lease");
    CHECK (bus_etcd_get (s_client, "/t/leased", T, &r, NULL, 0) == 0
               && r.lease == lease.lease,
           "the key carries its lease");
    CHECK (bus_etcd_lease_keepalive (s_client, lease.lease, T, &r, s_err,
                                     sizeof s_err)
                   == 0
               && r.ttl >= 4,
           "keepalive: %s", s_err);
    CHECK (bus_etcd_lease_revoke (s_client, lease.lease, T, &r, NULL, 0) == 0,
           "revoke");
    CHECK (bus_etcd_get (s_client, "/t/leased", T, &r, NULL, 0) == 0
               && !r.found,
           "the key went with its lease");
    CHECK (bus_etcd_lease_keepalive (s_client, lease.lease, T, &r, s_err,
                                     sizeof s_err)
               == BUS_ERR_NOT_FOUND,
           "keepalive of a revoked lease: %s", s_err);
    printf ("etcd: keepalive of a revoked lease: %s\n", s_err);
    CHECK (bus_etcd_lease_revoke (s_client, lease.lease, T, &r, s_err,
                                  sizeof s_err)
               == BUS_ERR_NOT_FOUND,
           "revoke again: %s", s_err);
    CHECK (bus_etcd_lease_grant (s_client, 0, T, &r, NULL, 0)
               == BUS_ERR_INVALID,
           "TTL 0 refused");
}

static void *
s_put_later (void *arg)
{
    (void) arg;
    usleep (300000);
    bus_etcd_t *other = bus_etcd_new (s_etcd.url, false, NULL, NULL, 0);
    bus_etcd_result_t r;
    bus_etcd_put (other, "/t/w", "later", 0, T, &r, NULL, 0);
    bus_etcd_destroy (&other);
    return NULL;
}

TK_CASE (wait)
{
    bus_etcd_result_t r, w;
    bus_etcd_put (s_client, "/t/w", "before", 0, T, &r, NULL, 0);
    int64_t before = r.revision;
    bus_etcd_put (s_client, "/t/w", "after", 0, T, &r, NULL, 0);
    CHECK (bus_etcd_wait (s_client, "/t/w", before, T, &w, s_err, sizeof s_err)
                   == 0
               && streq (w.value, "after") && w.mod_revision == r.revision,
           "wait from an older revision: the change after it at once: %s",
           s_err);
    bus_etcd_delete (s_client, "/t/w", T, &r, NULL, 0);
    CHECK (bus_etcd_wait (s_client, "/t/w", r.revision - 1, T, &w, NULL, 0) == 0
               && !w.found && w.mod_revision == r.revision,
           "a delete is seen as one");
    pthread_t thread;
    pthread_create (&thread, NULL, s_put_later, NULL);
    int64_t start = tk_now_ms ();
    int rc = bus_etcd_wait (s_client, "/t/w", r.revision, 5000, &w, s_err,
                            sizeof s_err);
    int64_t took = tk_now_ms () - start;
    pthread_join (thread, NULL);
    CHECK (rc == 0 && streq (w.value, "later") && took >= 250 && took < 2000,
           "a change made while waiting: rc %d in %lld ms: %s", rc,
           (long long) took, s_err);
    printf ("etcd: wait: a change made 300 ms in seen after %lld ms\n",
            (long long) took);
    start = tk_now_ms ();
    rc = bus_etcd_wait (s_client, "/t/w", w.mod_revision, 300, &w, s_err,
                        sizeof s_err);
    took = tk_now_ms () - start;
    CHECK (rc == BUS_ERR_TIMEOUT && took >= 280 && took < 1000,
           "no change: timeout on time (%d in %lld ms)", rc, (long long) took);
}

TK_CASE (endpoints)
{
    static const struct {
        const char *list;
        bool insecure;
        bool good;
    } lists[] = {
        { "http://127.0.0.1:2379", false, true },
        { "http://localhost:2379,http://[::1]:2379", false, true },
        { "https://10.0.0.1:2379", false, true },
        { "http://10.0.0.1:2379", false, false },
        { "http://10.0.0.1:2379", true, true },
        { "http://127.0.0.1.evil.example:2379", false, false },
        { "http://localhost.evil.example:2379", false, false },
        { "ftp://127.0.0.1:2379", false, false },
        { "http://", false, false },
        { "", false, false },
        { "http://127.0.0.1:1,,http://127.0.0.1:2", false, false },
        { "http://127.0.0.1:2379 ", false, false },
        { "http://a:1,http://a:2,http://a:3,http://a:4,http://a:5,"
          "http://a:6,http://a:7,http://a:8,http://a:9",
          true, false },
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        s_err[0] = '\0';
        int rc = bus_etcd_check_endpoints (lists[i].list, lists[i].insecure,
                                           s_err, sizeof s_err);
        CHECK ((rc == 0) == lists[i].good, "'%s' insecure %d: %d %s",
               lists[i].list, lists[i].insecure, rc, s_err);
        if (rc)
            printf ("etcd: refused '%s': %s\n", lists[i].list, s_err);
    }
    //  A dead endpoint first: the next one answers
    char list[256];
    snprintf (list, sizeof list, "http://127.0.0.1:%d,%s", tk_port (),
              s_etcd.url);
    bus_etcd_t *client = s_new (list);
    bus_etcd_result_t r;
    CHECK (bus_etcd_get (client, "/t/x", T, &r, s_err, sizeof s_err) == 0,
           "the second endpoint answers: %s", s_err);
    bus_etcd_destroy (&client);
}

TK_CASE (down)
{
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", tk_port ());
    bus_etcd_t *client = s_new (url);
    bus_etcd_result_t r;
    int rc = bus_etcd_get (client, "/t/x", T, &r, s_err, sizeof s_err);
    CHECK (rc == BUS_ERR_UNAVAILABLE, "nothing there: %d %s", rc, s_err);
    printf ("etcd: unreachable: %s\n", s_err);
    bus_etcd_destroy (&client);
    //  etcd stopped: the connection is made, no answer comes
    tk_etcd_freeze (&s_etcd, true);
    int64_t start = tk_now_ms ();
    rc = bus_etcd_get (s_client, "/t/x", 400, &r, s_err, sizeof s_err);
    int64_t took = tk_now_ms () - start;
    tk_etcd_freeze (&s_etcd, false);
    CHECK (rc == BUS_ERR_TIMEOUT && took >= 380 && took < 1000,
           "a stopped etcd: %d after %lld ms: %s", rc, (long long) took, s_err);
    printf ("etcd: stopped: %s after %lld ms\n", s_err, (long long) took);
    CHECK (bus_etcd_get (s_client, "/t/x", T, &r, s_err, sizeof s_err) == 0,
           "answers again once it runs: %s", s_err);
}

//  --------------------------------------------------------------------------
//  Garbage: what the fake answers comes from s_answer

static const char *s_answer_body;   //  NULL: close without a word
static int s_answer_status = 200;
static int s_answer_delay_ms;
static size_t s_answer_repeat;   //  > 0: the body is this many 'x'

static char *
s_fake (void *arg, const char *path, const char *body)
{
    (void) arg;
    (void) path;
    (void) body;
    if (s_answer_delay_ms)
        usleep ((useconds_t) s_answer_delay_ms * 1000);
    if (s_answer_repeat) {
        char *big = malloc (s_answer_repeat + 1);
        memset (big, '[', s_answer_repeat);
        big[s_answer_repeat] = '\0';
        char *raw = tk_fake_answer (s_answer_status, big);
        free (big);
        return raw;
    }
    return s_answer_body ? tk_fake_answer (s_answer_status, s_answer_body)
                         : NULL;
}

typedef enum { S_GET, S_TXN, S_GRANT, S_KEEPALIVE, S_DELETE, S_WAIT } s_op_t;

static int
s_do (bus_etcd_t *client, s_op_t op, bus_etcd_result_t *r)
{
    s_err[0] = '\0';
    switch (op) {
        case S_GET: return bus_etcd_get (client, "/k", 500, r, s_err, 256);
        case S_TXN:
            return bus_etcd_create (client, "/k", "v", 0, 500, r, s_err, 256);
        case S_GRANT:
            return bus_etcd_lease_grant (client, 2, 500, r, s_err, 256);
        case S_KEEPALIVE:
            return bus_etcd_lease_keepalive (client, 7, 500, r, s_err, 256);
        case S_DELETE:
            return bus_etcd_delete (client, "/k", 500, r, s_err, 256);
        case S_WAIT: return bus_etcd_wait (client, "/k", 1, 500, r, s_err, 256);
    }
    return 0;
}

TK_CASE (garbage)
{
    static const struct {
        const char *body;
        int status;
        s_op_t op;
        int want;
    } cases[] = {
        { "hello", 200, S_GET, BUS_ERR_MALFORMED },
        { "", 200, S_GET, BUS_ERR_MALFORMED },
        { "[1,2]", 200, S_GET, BUS_ERR_MALFORMED },
        { "{}", 200, S_GET, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"abc\"}}", 200, S_GET,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"-3\"}}", 200, S_GET, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":[1]}}", 200, S_GET, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"99999999999999999999\"}}", 200, S_GET,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"99999999999999999999999\"}}", 200, S_GET,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"kvs\":{}}", 200, S_GET,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"value\":\"***\"}]}",
          200, S_GET, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"value\":7}]}", 200,
          S_GET, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"value\":\"YQ==\","
          "\"mod_revision\":\"x\"}]}",
          200, S_GET, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"kvs\":[7]}", 200, S_GET,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"header\":{}}", 200, S_GET,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"succeeded\":\"yes\"}", 200, S_TXN,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"succeeded\":1,\"responses\":"
          "[{\"response_range\":{}}]}",
          200, S_TXN, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"}}", 200, S_TXN, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"responses\":[{}]}", 200, S_TXN,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"}}", 200, S_GRANT,
          BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"ID\":\"1\",\"TTL\":\"z\"}", 200,
          S_GRANT, BUS_ERR_MALFORMED },
        { "{\"header\":{\"revision\":\"5\"},\"ID\":\"1\",\"TTL\":\"2\"}", 200,
          S_KEEPALIVE, BUS_ERR_MALFORMED },
        { "{\"result\":{\"header\":{\"revision\":\"5\"},\"ID\":\"7\"}}", 200,
          S_KEEPALIVE, BUS_ERR_NOT_FOUND },
        { "{\"header\":{\"revision\":\"5\"},\"deleted\":true}", 200, S_DELETE,
          BUS_ERR_MALFORMED },
        { "{\"error\":\"requested lease not found\",\"code\":5}", 404,
          S_KEEPALIVE, BUS_ERR_NOT_FOUND },
        { "{\"error\":\"etcdserver: no leader\",\"code\":14}", 503, S_GET,
          BUS_ERR_UNAVAILABLE },
        { "<html>bad gateway</html>", 502, S_GET, BUS_ERR_UNAVAILABLE },
        { "garbage\n", 200, S_WAIT, BUS_ERR_MALFORMED },
        { "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":"
          "{\"value\":\"%%%\"}}]}}\n",
          200, S_WAIT, BUS_ERR_MALFORMED },
        { "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n",
          200, S_WAIT, BUS_ERR_UNAVAILABLE },
        { NULL, 200, S_GET, BUS_ERR_UNAVAILABLE },
        { NULL, 200, S_TXN, BUS_ERR_UNAVAILABLE },
    };
    tk_fake_t *fake = tk_fake_new (s_fake, NULL);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", tk_fake_port (fake));
    bus_etcd_t *client = s_new (url);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_answer_body = cases[i].body;
        s_answer_status = cases[i].status;
        bus_etcd_result_t r;
        int rc = s_do (client, cases[i].op, &r);
        CHECK (rc == cases[i].want, "answer %zu '%s': %d (%s), want %d", i,
               cases[i].body ? cases[i].body : "(none)", rc, s_err,
               cases[i].want);
        CHECK (!r.found && !*r.value && !r.succeeded && !r.create_revision,
               "answer %zu: the result holds nothing", i);
        CHECK (*s_err, "answer %zu: words", i);
    }
    printf ("etcd: %zu bad answers, each an error, e.g. '%s'\n",
            sizeof cases / sizeof cases[0], s_err);
    //  Oversized, and deep: cut at the limit, not parsed
    s_answer_repeat = BUS_ETCD_BODY_MAX + 10;
    bus_etcd_result_t r;
    CHECK (s_do (client, S_GET, &r) == BUS_ERR_TOO_BIG, "oversized: %s", s_err);
    printf ("etcd: oversized: %s\n", s_err);
    s_answer_repeat = BUS_ETCD_BODY_MAX - 200;
    CHECK (s_do (client, S_GET, &r) == BUS_ERR_MALFORMED, "deep: %s", s_err);
    s_answer_repeat = BUS_ETCD_BODY_MAX + 10;
    CHECK (s_do (client, S_WAIT, &r) == BUS_ERR_TOO_BIG,
           "an endless watch line: %s", s_err);
    s_answer_repeat = 0;
    //  Slow: the deadline holds
    s_answer_body = "{\"header\":{\"revision\":\"5\"}}";
    s_answer_delay_ms = 900;
    int64_t start = tk_now_ms ();
    int rc = s_do (client, S_GET, &r);
    int64_t took = tk_now_ms () - start;
    CHECK (rc == BUS_ERR_TIMEOUT && took < 800, "slow: %d after %lld ms", rc,
           (long long) took);
    s_answer_delay_ms = 0;
    bus_etcd_destroy (&client);
    tk_fake_destroy (&fake);
}

//  A CA, and etcd's and a client's certificates it signed, by the openssl
//  command; false if there is none (the client-certificate part is then
//  skipped).  etcd 3.4's JSON gateway calls etcd's own gRPC port with
//  etcd's certificate, so that one must be good for clientAuth too.
static bool
s_make_certs (const char *dir)
{
    if (access ("/usr/bin/openssl", X_OK) != 0)
        return false;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    char command[4096];
    snprintf (
        command, sizeof command,
        "cd %s && "
        "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
        "clientAuth\\n' > server.ext && "
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
        "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
        "-subj /CN=tk-ca && "
        "openssl req %s -keyout server.key -out server.csr -subj /CN=etcd && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out server.pem -days 2 -extfile server.ext && "
        "openssl req %s -keyout client.key -out client.csr -subj /CN=w1 && "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out client.pem -days 2 -extfile client.ext "
        "> openssl.log 2>&1",
        dir, ec, ec, ec);
    return system (command) == 0;
}

//  path[600] = dir/name
static const char *
s_path (char *path, const char *name)
{
    snprintf (path, 600, "%s/%s", tk_dir (), name);
    return path;
}

TK_CASE (tls)
{
    static char cert[600], key[600], ca[600], client[600], client_key[600];
    bool client_certs = s_make_certs (tk_dir ());
    if (client_certs) {
        s_path (cert, "server.pem");
        s_path (key, "server.key");
        s_path (ca, "ca.pem");
    } else {   //  a self-signed pair: its own authority
        s_path (cert, "etcd-tls.pem");
        s_path (key, "etcd-tls.key");
        s_path (ca, "etcd-tls.pem");
        char *out = NULL;
        int rc =
            tk_run (&out, "tls", "new", "--cert", cert, "--key", key, NULL);
        CHECK (rc == 0, "orderbus tls new: %s", out);
        free (out);
    }
    s_path (client, "client.pem");
    s_path (client_key, "client.key");
    static tk_etcd_t etcd;
    etcd.cert = cert;
    etcd.key = key;
    etcd.client_ca = client_certs ? ca : NULL;
    etcd.ca = ca;
    tk_etcd_start (&etcd, "etcd-tls");
    CHECK (strncmp (etcd.url, "https://", 8) == 0, "%s", etcd.url);
    bus_etcd_tls_t trust = { ca, client_certs ? client : NULL,
                             client_certs ? client_key : NULL };
    bus_etcd_t *good =
        bus_etcd_new (etcd.url, false, &trust, s_err, sizeof s_err);
    bus_etcd_result_t r;
    CHECK (bus_etcd_put (good, "/t/tls", "yes", 0, T, &r, s_err, sizeof s_err)
               == 0,
           "over TLS, trusting etcd's CA%s: %s",
           client_certs ? ", with a client certificate" : "", s_err);
    bus_etcd_destroy (&good);
    //  etcd's certificate is checked: not trusted, no answer
    bus_etcd_tls_t system_cas = { NULL, trust.cert_file, trust.key_file };
    bus_etcd_t *doubting = bus_etcd_new (etcd.url, false, &system_cas, NULL, 0);
    int rc = bus_etcd_get (doubting, "/t/tls", T, &r, s_err, sizeof s_err);
    CHECK (rc == BUS_ERR_UNAVAILABLE && !r.found,
           "a certificate no CA we trust vouches for is refused: %d %s", rc,
           s_err);
    printf ("etcd: tls: untrusted server: %s\n", s_err);
    bus_etcd_destroy (&doubting);
    if (client_certs) {
        bus_etcd_tls_t anonymous = { ca, NULL, NULL };
        bus_etcd_t *stranger =
            bus_etcd_new (etcd.url, false, &anonymous, NULL, 0);
        rc = bus_etcd_get (stranger, "/t/tls", T, &r, s_err, sizeof s_err);
        CHECK (rc == BUS_ERR_UNAVAILABLE && !r.found,
               "etcd asks for a client certificate: %d %s", rc, s_err);
        printf ("etcd: tls: no client certificate: %s\n", s_err);
        bus_etcd_destroy (&stranger);
    } else
        printf ("etcd: tls: no openssl command: client certificates not "
                "tried\n");
    tk_etcd_stop (&etcd);
}

int
main (int argc, char **argv)
{
    if (!tk_etcd_binary ()) {
        printf ("SKIP integration_etcd: no etcd binary (/usr/bin/etcd; "
                "apt-get install etcd-server, or set ETCD)\n");
        return 77;
    }
    tk_init (argc, argv, "etcd");
    //  A proxy in the environment is never used: every call below would
    //  fail through this dead one
    setenv ("http_proxy", "http://127.0.0.1:1", 1);
    setenv ("https_proxy", "http://127.0.0.1:1", 1);
    bus_etcd_global_init ();
    tk_etcd_start (&s_etcd, "etcd1");
    s_client = s_new (s_etcd.url);
    static const tk_case_t cases[] = {
        TK_CASE_ENTRY (kv),   TK_CASE_ENTRY (lease),
        TK_CASE_ENTRY (wait), TK_CASE_ENTRY (endpoints),
        TK_CASE_ENTRY (down), TK_CASE_ENTRY (garbage),
        TK_CASE_ENTRY (tls),  { 0 },
    };
    tk_run_cases (cases);
    bus_etcd_destroy (&s_client);
    tk_etcd_stop (&s_etcd);
    return tk_done ();
}
