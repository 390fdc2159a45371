/*  bus_etcd.c — a blocking etcd v3 client over its JSON gateway.

    One request = one HTTP POST of a JSON body, answered by one JSON
    object (the watch: a stream of them, one a line).  int64 fields
    travel as decimal strings, bytes as base64, and proto3 leaves out
    every field whose value is the default (false, 0, ""), so an absent
    field reads as its default.  */

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_etcd.h"

struct _bus_etcd_t {
    CURL *curl;                   //  one handle, reused
    struct curl_slist *headers;   //  Content-Type
    char urls[BUS_ETCD_ENDPOINTS_MAX][BUS_ETCD_URL_MAX];
    size_t count;                           //  urls in use
    size_t current;                         //  tried first
    char *ca_file, *cert_file, *key_file;   //  NULL: none
};

//  What the write callback gathers: the body, or (stream) one line at a
//  time handed to line_fn, which returns true when it has what it wants
typedef struct {
    char *data;
    size_t size;
    bool too_big;
    bool (*line_fn) (void *arg, const char *line, size_t length);
    void *line_arg;
    bool done;   //  line_fn said so: the transfer was cut on purpose
} s_body_t;

//  --------------------------------------------------------------------------
//  Endpoints

//  True if the host of url (after "scheme://") is a loopback address
//  (an address, not a name that starts like one: 127.0.0.1.example.com)
static bool
s_loopback_host (const char *host)
{
    size_t length = strcspn (host, ":/");
    if (host[0] == '[')   //  [::1]:2379
        return strncmp (host, "[::1]", 5) == 0
               && (host[5] == ':' || host[5] == '/' || host[5] == '\0');
    if (length == 9 && strncmp (host, "localhost", 9) == 0)
        return true;
    return strncmp (host, "127.", 4) == 0
           && strspn (host, "0123456789.") == length;
}

//  Check one URL of length bytes; fills url (NUL-ended) when it is good
static int
s_check_url (const char *text, size_t length, bool insecure, char *url,
             char *err, size_t err_cap)
{
    if (length == 0 || length >= BUS_ETCD_URL_MAX)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "etcd endpoint '%.*s': empty or longer than %d "
                              "bytes",
                              (int) length, text, BUS_ETCD_URL_MAX - 1);
    memcpy (url, text, length);
    url[length] = '\0';
    for (size_t i = 0; i < length; i++)
        if (!isgraph ((unsigned char) url[i]))
            return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                                  "etcd endpoint '%s': blank or control "
                                  "character",
                                  url);
    bool tls = strncmp (url, "https://", 8) == 0;
    bool plain = strncmp (url, "http://", 7) == 0;
    const char *host = url + (tls ? 8 : 7);
    if ((!tls && !plain) || !*host || *host == ':' || *host == '/')
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "etcd endpoint '%s': must be http://HOST:PORT "
                              "or https://HOST:PORT",
                              url);
    if (plain && !insecure && !s_loopback_host (host))
        return bus_error_set (
            err, err_cap, BUS_ERR_CONFIG,
            "etcd endpoint '%s': plain http:// off loopback lets anyone on "
            "the network take leadership; use https:// (or "
            "--insecure-etcd, tests only)",
            url);
    return 0;
}

//  Split the comma-separated list into urls (may be NULL: check only)
static int
s_parse_endpoints (const char *list, bool insecure,
                   char urls[][BUS_ETCD_URL_MAX], size_t *count, char *err,
                   size_t err_cap)
{
    char scratch[BUS_ETCD_URL_MAX];
    *count = 0;
    if (!list || !*list)
        return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                              "no etcd endpoint given");
    for (const char *at = list;; at++) {
        size_t length = strcspn (at, ",");
        if (*count == BUS_ETCD_ENDPOINTS_MAX)
            return bus_error_set (err, err_cap, BUS_ERR_CONFIG,
                                  "more than %d etcd endpoints",
                                  BUS_ETCD_ENDPOINTS_MAX);
        char *url = urls ? urls[*count] : scratch;
        int rc = s_check_url (at, length, insecure, url, err, err_cap);
        if (rc)
            return rc;
        (*count)++;
        at += length;
        if (!*at)
            return 0;
    }
}

int
bus_etcd_check_endpoints (const char *endpoints, bool insecure, char *err,
                          size_t err_cap)
{
    size_t count;
    return s_parse_endpoints (endpoints, insecure, NULL, &count, err, err_cap);
}

//  --------------------------------------------------------------------------
//  Lifecycle

int
bus_etcd_global_init (void)
{
    return curl_global_init (CURL_GLOBAL_DEFAULT) == CURLE_OK
               ? 0
               : BUS_ERR_UNAVAILABLE;
}

static char *
s_dup_or_null (const char *text)
{
    return text && *text ? strdup (text) : NULL;
}

bus_etcd_t *
bus_etcd_new (const char *endpoints, bool insecure, const bus_etcd_tls_t *tls,
              char *err, size_t err_cap)
{
    bus_etcd_t *self = calloc (1, sizeof *self);
    if (!self) {
        bus_error_set (err, err_cap, BUS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (s_parse_endpoints (endpoints, insecure, self->urls, &self->count, err,
                           err_cap)) {
        free (self);
        return NULL;
    }
    self->curl = curl_easy_init ();
    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (tls) {
        self->ca_file = s_dup_or_null (tls->ca_file);
        self->cert_file = s_dup_or_null (tls->cert_file);
        self->key_file = s_dup_or_null (tls->key_file);
    }
    if (!self->curl || !self->headers) {
        bus_error_set (err, err_cap, BUS_ERR_NOMEM, "libcurl: out of memory");
        bus_etcd_destroy (&self);
    }
    return self;
}

void
bus_etcd_destroy (bus_etcd_t **self_p)
{
    assert (self_p);
    bus_etcd_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    curl_slist_free_all (self->headers);
    free (self->ca_file);
    free (self->cert_file);
    free (self->key_file);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  HTTP: one POST, tried on each endpoint in turn within one deadline

static size_t
s_on_data (char *bytes, size_t one, size_t count, void *arg)
{
    s_body_t *body = arg;
    size_t length = one * count;
    if (body->size + length > BUS_ETCD_BODY_MAX) {
        body->too_big = true;
        return 0;   //  cuts the transfer
    }
    char *data = realloc (body->data, body->size + length + 1);
    if (!data)
        return 0;
    body->data = data;
    memcpy (body->data + body->size, bytes, length);
    body->size += length;
    body->data[body->size] = '\0';
    //  Stream: hand each complete line over, keep the rest
    char *newline;
    while (body->line_fn && !body->done
           && (newline = memchr (body->data, '\n', body->size))) {
        size_t line = (size_t) (newline - body->data);
        body->done = body->line_fn (body->line_arg, body->data, line);
        body->size -= line + 1;
        memmove (body->data, newline + 1, body->size + 1);
    }
    return body->done ? 0 : length;
}

//  Set the handle up for one POST of request to url within timeout_ms
static void
s_setup (bus_etcd_t *self, const char *url, const char *request,
         long timeout_ms, s_body_t *body)
{
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);   //  threads: no alarm()
    //  Straight to etcd: never through a proxy named in the environment
    //  (http_proxy, ...), which would see, and could forge, leadership
    curl_easy_setopt (curl, CURLOPT_PROXY, "");
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, request);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, body);
    if (self->ca_file)
        curl_easy_setopt (curl, CURLOPT_CAINFO, self->ca_file);
    if (self->cert_file)
        curl_easy_setopt (curl, CURLOPT_SSLCERT, self->cert_file);
    if (self->key_file)
        curl_easy_setopt (curl, CURLOPT_SSLKEY, self->key_file);
}

//  etcd's error answer: {"error": "...", "code": N} (a stream's:
//  {"error": {"grpc_code": N, "message": "..."}}).  gRPC code 5 is
//  NOT_FOUND (a lease that is gone).
static int
s_etcd_error (json_t *root, long status, char *err, size_t err_cap)
{
    json_t *error = json_object_get (root, "error");
    json_t *code = json_object_get (root, "code");
    const char *message = json_string_value (error);
    if (json_is_object (error)) {
        code = json_object_get (error, "grpc_code");
        message = json_string_value (json_object_get (error, "message"));
    }
    if (!message)
        message = "no message";
    int rc = json_integer_value (code) == 5 ? BUS_ERR_NOT_FOUND
                                            : BUS_ERR_UNAVAILABLE;
    return bus_error_set (err, err_cap, rc, "etcd: %s (HTTP %ld)", message,
                          status);
}

//  Parse body as one JSON object into *root; an error object (or a
//  status other than 200) is etcd's error
static int
s_parse_answer (const s_body_t *body, long status, json_t **root, char *err,
                size_t err_cap)
{
    json_error_t json_err;
    *root = json_loadb (body->data ? body->data : "", body->size,
                        JSON_REJECT_DUPLICATES, &json_err);
    if (!json_is_object (*root)) {
        json_decref (*root);
        *root = NULL;
        return bus_error_set (
            err, err_cap,
            status == 200 ? BUS_ERR_MALFORMED : BUS_ERR_UNAVAILABLE,
            "etcd: answer (HTTP %ld) is not a JSON object", status);
    }
    if (status != 200 || json_object_get (*root, "error")) {
        int rc = s_etcd_error (*root, status, err, err_cap);
        json_decref (*root);
        *root = NULL;
        return rc;
    }
    return 0;
}

//  POST request to path on each endpoint in turn until one answers or
//  timeout_ms pass.  0 with the answer in *root (caller owns), or an
//  error.  With line_fn (a stream), 0 and *root NULL once line_fn took
//  what it wanted.
static int
s_post (bus_etcd_t *self, const char *path, json_t *request_json,
        int timeout_ms, json_t **root, s_body_t *body, char *err,
        size_t err_cap)
{
    char *request = json_dumps (request_json, JSON_COMPACT);
    if (!request)
        return bus_error_set (err, err_cap, BUS_ERR_NOMEM, "out of memory");
    int64_t deadline = zclock_mono () + timeout_ms;
    int rc = 1;   //  no endpoint tried: the time was up
    for (size_t tried = 0; tried < self->count; tried++) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        size_t index = (self->current + tried) % self->count;
        char url[BUS_ETCD_URL_MAX + 64];
        snprintf (url, sizeof url, "%s%s", self->urls[index], path);
        body->size = 0;
        body->too_big = body->done = false;
        s_setup (self, url, request, (long) left, body);
        CURLcode code = curl_easy_perform (self->curl);
        long status = 0;
        curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &status);
        if (body->too_big) {
            rc = bus_error_set (err, err_cap, BUS_ERR_TOO_BIG,
                                "etcd %s: answer over %d bytes", url,
                                BUS_ETCD_BODY_MAX);
            break;
        }
        if (body->done) {
            self->current = index;
            rc = 0;
            break;
        }
        if (code == CURLE_OPERATION_TIMEDOUT) {
            rc = bus_error_set (err, err_cap, BUS_ERR_TIMEOUT,
                                "etcd %s: no answer within %d ms", url,
                                timeout_ms);
            break;
        }
        if (code != CURLE_OK) {   //  unreachable: try the next one
            rc = bus_error_set (err, err_cap, BUS_ERR_UNAVAILABLE,
                                "etcd %s: %s", url, curl_easy_strerror (code));
            continue;
        }
        self->current = index;
        if (body->line_fn && body->size == 0)
            rc = bus_error_set (err, err_cap, BUS_ERR_UNAVAILABLE,
                                "etcd %s: the stream ended", url);
        else
            rc = s_parse_answer (body, status, root, err, err_cap);
        break;
    }
    free (request);
    if (rc == 1)
        rc = bus_error_set (err, err_cap, BUS_ERR_TIMEOUT,
                            "etcd: no answer within %d ms", timeout_ms);
    return rc;
}

//  POST and parse one answer; result's revision from its header
static int
s_call (bus_etcd_t *self, const char *path, json_t *request, int timeout_ms,
        json_t **root, char *err, size_t err_cap)
{
    s_body_t body = { 0 };
    *root = NULL;
    int rc = request
                 ? s_post (self, path, request, timeout_ms, root, &body, err,
                           err_cap)
                 : bus_error_set (err, err_cap, BUS_ERR_NOMEM, "out of memory");
    json_decref (request);
    free (body.data);
    return rc;
}

//  --------------------------------------------------------------------------
//  JSON fields

//  An int64 field: absent (proto3's default) is 0; a decimal string or a
//  JSON integer.  -1 for anything else.
static int
s_i64 (json_t *object, const char *name, int64_t *value)
{
    json_t *field = json_object_get (object, name);
    *value = 0;
    if (!field)
        return 0;
    if (json_is_integer (field)) {
        *value = json_integer_value (field);
        return 0;
    }
    const char *text = json_string_value (field);
    if (!text || !*text || strlen (text) > 20)
        return -1;
    char *end;
    errno = 0;
    long long number = strtoll (text, &end, 10);
    if (*end || errno || !(isdigit ((unsigned char) *text) || *text == '-'))
        return -1;
    *value = number;
    return 0;
}

//  The header's revision (every answer has one, above 0)
static int
s_header (json_t *root, bus_etcd_result_t *result, char *err, size_t err_cap)
{
    json_t *header = json_object_get (root, "header");
    if (!json_is_object (header)
        || s_i64 (header, "revision", &result->revision)
        || result->revision <= 0)
        return bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                              "etcd: answer without a header revision");
    return 0;
}

static char *
s_base64 (const char *text)
{
    size_t length = strlen (text);
    size_t cap =
        sodium_base64_ENCODED_LEN (length, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc (cap);
    if (b64)
        sodium_bin2base64 (b64, cap, (const unsigned char *) text, length,
                           sodium_base64_VARIANT_ORIGINAL);
    return b64;
}

//  A key's fields from kv ({"key", "value", "create_revision", ...})
static int
s_kv (json_t *kv, bus_etcd_result_t *result, char *err, size_t err_cap)
{
    const char *b64 = "";
    json_t *value = json_object_get (kv, "value");
    if (value && !(b64 = json_string_value (value)))
        b64 = NULL;
    size_t length = 0;
    if (!json_is_object (kv) || !b64
        || sodium_base642bin ((unsigned char *) result->value,
                              BUS_ETCD_VALUE_MAX, b64, strlen (b64), NULL,
                              &length, NULL, sodium_base64_VARIANT_ORIGINAL)
        || s_i64 (kv, "create_revision", &result->create_revision)
        || s_i64 (kv, "mod_revision", &result->mod_revision)
        || s_i64 (kv, "lease", &result->lease)) {
        memset (result->value, 0, sizeof result->value);
        result->create_revision = result->mod_revision = result->lease = 0;
        return bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                              "etcd: a key-value that does not read");
    }
    result->value[length] = '\0';
    result->found = true;
    return 0;
}

//  The first of a range answer's "kvs", if any
static int
s_range (json_t *range, bus_etcd_result_t *result, char *err, size_t err_cap)
{
    json_t *kvs = json_object_get (range, "kvs");
    if (!kvs || json_array_size (kvs) == 0)
        return kvs && !json_is_array (kvs) ? bus_error_set (
                   err, err_cap, BUS_ERR_MALFORMED, "etcd: kvs is not a list")
                                           : 0;
    return s_kv (json_array_get (kvs, 0), result, err, err_cap);
}

static bool
s_key_ok (const char *key, const char *value)
{
    return key && *key && strlen (key) <= BUS_ETCD_VALUE_MAX
           && (!value || strlen (value) <= BUS_ETCD_VALUE_MAX);
}

static int
s_bad_key (char *err, size_t err_cap)
{
    return bus_error_set (err, err_cap, BUS_ERR_INVALID,
                          "etcd: empty key, or key or value over %d bytes",
                          BUS_ETCD_VALUE_MAX);
}

//  Every public call ends here: a failed call leaves an empty result
static int
s_done (bus_etcd_result_t *result, int rc)
{
    if (rc)
        memset (result, 0, sizeof *result);
    return rc;
}

//  --------------------------------------------------------------------------
//  Key-value calls

int
bus_etcd_get (bus_etcd_t *self, const char *key, int timeout_ms,
              bus_etcd_result_t *result, char *err, size_t err_cap)
{
    memset (result, 0, sizeof *result);
    if (!s_key_ok (key, NULL))
        return s_bad_key (err, err_cap);
    char *b64 = s_base64 (key);
    json_t *root;
    int rc = s_call (self, "/v3/kv/range", json_pack ("{s:s?}", "key", b64),
                     timeout_ms, &root, err, err_cap);
    free (b64);
    if (rc == 0)
        rc = s_header (root, result, err, err_cap);
    if (rc == 0)
        rc = s_range (root, result, err, err_cap);
    json_decref (root);
    return s_done (result, rc);
}

int
bus_etcd_put (bus_etcd_t *self, const char *key, const char *value,
              int64_t lease, int timeout_ms, bus_etcd_result_t *result,
              char *err, size_t err_cap)
{
    //  A put is a txn without compares: one way to write
    return bus_etcd_txn_put (self, NULL, 0, key, value, lease, timeout_ms,
                             result, err, err_cap);
}

int
bus_etcd_create (bus_etcd_t *self, const char *key, const char *value,
                 int64_t lease, int timeout_ms, bus_etcd_result_t *result,
                 char *err, size_t err_cap)
{
    bus_etcd_compare_t absent = { key, false, 0 };
    return bus_etcd_txn_put (self, &absent, 1, key, value, lease, timeout_ms,
                             result, err, err_cap);
}

int
bus_etcd_cas (bus_etcd_t *self, const char *key, const char *value,
              int64_t lease, int64_t mod_revision, int timeout_ms,
              bus_etcd_result_t *result, char *err, size_t err_cap)
{
    //  mod_revision 0 would never match a key that exists; for "only if
    //  absent" compare the create_revision, which is 0 then
    bus_etcd_compare_t same = { key, mod_revision != 0, mod_revision };
    return bus_etcd_txn_put (self, &same, 1, key, value, lease, timeout_ms,
                             result, err, err_cap);
}

//  {"key": b64, "target": "CREATE"|"MOD", "result": "EQUAL", field: "N"}
static json_t *
s_compare (const bus_etcd_compare_t *compare)
{
    char *b64 = s_base64 (compare->key);
    char want[24];
    snprintf (want, sizeof want, "%lld", (long long) compare->want);
    json_t *json =
        json_pack ("{s:s?, s:s, s:s, s:s}", "key", b64, "target",
                   compare->by_mod ? "MOD" : "CREATE", "result", "EQUAL",
                   compare->by_mod ? "mod_revision" : "create_revision", want);
    free (b64);
    return json;
}

static json_t *
s_txn_request (const bus_etcd_compare_t *compares, size_t count,
               const char *key, const char *value, int64_t lease)
{
    char *key64 = s_base64 (key), *value64 = s_base64 (value);
    char lease_text[24];
    snprintf (lease_text, sizeof lease_text, "%lld", (long long) lease);
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++)
        json_array_append_new (list, s_compare (&compares[i]));
    json_t *request = json_pack (
        "{s:o, s:[{s:{s:s?, s:s?, s:s}}], s:[{s:{s:s?}}]}", "compare", list,
        "success", "request_put", "key", key64, "value", value64, "lease",
        lease_text, "failure", "request_range", "key", key64);
    free (key64);
    free (value64);
    return request;
}

//  A txn's answer: succeeded, or the failure side's range of key
static int
s_txn_answer (json_t *root, bus_etcd_result_t *result, char *err,
              size_t err_cap)
{
    json_t *succeeded = json_object_get (root, "succeeded");
    if (succeeded && !json_is_boolean (succeeded))
        return bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                              "etcd: txn answer without a boolean succeeded");
    result->succeeded = json_is_true (succeeded);
    if (result->succeeded)
        return 0;
    json_t *responses = json_object_get (root, "responses");
    json_t *range =
        json_object_get (json_array_get (responses, 0), "response_range");
    if (!json_is_object (range))
        return bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                              "etcd: failed txn answer without its range");
    return s_range (range, result, err, err_cap);
}

int
bus_etcd_txn_put (bus_etcd_t *self, const bus_etcd_compare_t *compares,
                  size_t count, const char *key, const char *value,
                  int64_t lease, int timeout_ms, bus_etcd_result_t *result,
                  char *err, size_t err_cap)
{
    memset (result, 0, sizeof *result);
    if (!s_key_ok (key, value))
        return s_bad_key (err, err_cap);
    for (size_t i = 0; i < count; i++)
        if (!s_key_ok (compares[i].key, NULL))
            return s_bad_key (err, err_cap);
    json_t *root;
    int rc = s_call (self, "/v3/kv/txn",
                     s_txn_request (compares, count, key, value, lease),
                     timeout_ms, &root, err, err_cap);
    if (rc == 0)
        rc = s_header (root, result, err, err_cap);
    if (rc == 0)
        rc = s_txn_answer (root, result, err, err_cap);
    json_decref (root);
    return s_done (result, rc);
}

int
bus_etcd_delete (bus_etcd_t *self, const char *key, int timeout_ms,
                 bus_etcd_result_t *result, char *err, size_t err_cap)
{
    memset (result, 0, sizeof *result);
    if (!s_key_ok (key, NULL))
        return s_bad_key (err, err_cap);
    char *b64 = s_base64 (key);
    json_t *root;
    int rc =
        s_call (self, "/v3/kv/deleterange", json_pack ("{s:s?}", "key", b64),
                timeout_ms, &root, err, err_cap);
    free (b64);
    int64_t deleted = 0;
    if (rc == 0)
        rc = s_header (root, result, err, err_cap);
    if (rc == 0 && s_i64 (root, "deleted", &deleted))
        rc = bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                            "etcd: deleted is not a number");
    result->succeeded = rc == 0 && deleted > 0;
    json_decref (root);
    return s_done (result, rc);
}

//  --------------------------------------------------------------------------
//  Leases

//  A lease answer: {"header", "ID", "TTL"}, or the same in "result" (the
//  keepalive is a stream of one answer here)
static int
s_lease_answer (json_t *root, bool in_result, bus_etcd_result_t *result,
                char *err, size_t err_cap)
{
    json_t *answer = in_result ? json_object_get (root, "result") : root;
    if (!json_is_object (answer) || s_header (answer, result, err, err_cap))
        return bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                              "etcd: lease answer without a header");
    if (s_i64 (answer, "ID", &result->lease)
        || s_i64 (answer, "TTL", &result->ttl))
        return bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                              "etcd: lease answer with a bad ID or TTL");
    return 0;
}

int
bus_etcd_lease_grant (bus_etcd_t *self, int ttl_s, int timeout_ms,
                      bus_etcd_result_t *result, char *err, size_t err_cap)
{
    memset (result, 0, sizeof *result);
    if (ttl_s < 1 || ttl_s > 3600)
        return bus_error_set (err, err_cap, BUS_ERR_INVALID,
                              "etcd: lease TTL %d s is not in 1..3600", ttl_s);
    json_t *root;
    int rc = s_call (self, "/v3/lease/grant", json_pack ("{s:i}", "TTL", ttl_s),
                     timeout_ms, &root, err, err_cap);
    if (rc == 0)
        rc = s_lease_answer (root, false, result, err, err_cap);
    if (rc == 0 && (result->lease == 0 || result->ttl <= 0))
        rc = bus_error_set (err, err_cap, BUS_ERR_MALFORMED,
                            "etcd: granted a lease without an ID or TTL");
    json_decref (root);
    return s_done (result, rc);
}

int
bus_etcd_lease_keepalive (bus_etcd_t *self, int64_t lease, int timeout_ms,
                          bus_etcd_result_t *result, char *err, size_t err_cap)
{
    memset (result, 0, sizeof *result);
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long) lease);
    json_t *root;
    int rc = s_call (self, "/v3/lease/keepalive", json_pack ("{s:s}", "ID", id),
                     timeout_ms, &root, err, err_cap);
    if (rc == 0)
        rc = s_lease_answer (root, true, result, err, err_cap);
    //  A lease that is gone answers with a TTL of 0 (left out)
    if (rc == 0 && result->ttl <= 0)
        rc = bus_error_set (err, err_cap, BUS_ERR_NOT_FOUND,
                            "etcd: lease %lld is gone (expired or revoked)",
                            (long long) lease);
    json_decref (root);
    return s_done (result, rc);
}

int
bus_etcd_lease_revoke (bus_etcd_t *self, int64_t lease, int timeout_ms,
                       bus_etcd_result_t *result, char *err, size_t err_cap)
{
    memset (result, 0, sizeof *result);
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long) lease);
    json_t *root;
    int rc = s_call (self, "/v3/lease/revoke", json_pack ("{s:s}", "ID", id),
                     timeout_ms, &root, err, err_cap);
    if (rc == 0)
        rc = s_header (root, result, err, err_cap);
    json_decref (root);
    return s_done (result, rc);
}

//  --------------------------------------------------------------------------
//  Watch

typedef struct {
    bus_etcd_result_t *result;
    int rc;   //  of the message that ended the watch
    char *err;
    size_t err_cap;
} s_watch_t;

//  One message of the watch stream: true once it has an event (or an
//  error, or a compaction: the caller must read the key again)
static bool
s_watch_line (void *arg, const char *line, size_t length)
{
    s_watch_t *watch = arg;
    json_t *root = json_loadb (line, length, JSON_REJECT_DUPLICATES, NULL);
    json_t *answer = json_object_get (root, "result");
    bool done = true;
    int64_t compacted = 0;
    if (!json_is_object (answer)) {
        watch->rc =
            json_object_get (root, "error")
                ? s_etcd_error (root, 200, watch->err, watch->err_cap)
                : bus_error_set (watch->err, watch->err_cap, BUS_ERR_MALFORMED,
                                 "etcd: a watch message that does not "
                                 "read");
    } else if (s_header (answer, watch->result, watch->err, watch->err_cap)
               || s_i64 (answer, "compact_revision", &compacted)) {
        watch->rc = BUS_ERR_MALFORMED;
    } else if (compacted > 0
               || json_is_true (json_object_get (answer, "canceled"))) {
        watch->rc = 0;   //  mod_revision 0: something may have changed
    } else {
        json_t *event = json_array_get (json_object_get (answer, "events"), 0);
        done = event != NULL;
        if (event) {
            bool deleted =
                json_is_string (json_object_get (event, "type"))
                && streq (json_string_value (json_object_get (event, "type")),
                          "DELETE");
            watch->rc = s_kv (json_object_get (event, "kv"), watch->result,
                              watch->err, watch->err_cap);
            if (watch->rc == 0 && deleted) {
                watch->result->found = false;
                watch->result->value[0] = '\0';
                watch->result->create_revision = watch->result->lease = 0;
            }
        }
    }
    json_decref (root);
    return done;
}

int
bus_etcd_wait (bus_etcd_t *self, const char *key, int64_t revision,
               int timeout_ms, bus_etcd_result_t *result, char *err,
               size_t err_cap)
{
    memset (result, 0, sizeof *result);
    if (!s_key_ok (key, NULL))
        return s_bad_key (err, err_cap);
    char *b64 = s_base64 (key);
    char start[24];
    snprintf (start, sizeof start, "%lld", (long long) revision + 1);
    json_t *request = json_pack ("{s:{s:s?, s:s}}", "create_request", "key",
                                 b64, "start_revision", start);
    free (b64);
    if (!request)
        return bus_error_set (err, err_cap, BUS_ERR_NOMEM, "out of memory");
    s_watch_t watch = { result, 0, err, err_cap };
    s_body_t body = { .line_fn = s_watch_line, .line_arg = &watch };
    json_t *root = NULL;
    int rc = s_post (self, "/v3/watch", request, timeout_ms, &root, &body, err,
                     err_cap);
    json_decref (request);
    json_decref (root);
    free (body.data);
    if (rc == 0 && !body.done)   //  the stream ended without an event
        rc = bus_error_set (err, err_cap, BUS_ERR_UNAVAILABLE,
                            "etcd: the watch ended without a change");
    return s_done (result, rc ? rc : watch.rc);
}
