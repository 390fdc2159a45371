/*  tk_ledger.c — every order a test sends and what it was told, and the
    tally of the ledger against the store.  */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tk_internal.h"

//  ---------------------------------------------------------------------
//  Ledger

typedef struct {
    char *key, *table, *body;
    int status;   //  final status, 0 while pending / no answer
    bool replayed;
    json_int_t id, seq;   //  from the 201
    int64_t acked_ms;
    int64_t waited_ms;   //  first attempt to final answer
} s_entry_t;

//  One client operation of the history: a POST and what came of it
typedef struct {
    const s_entry_t *entry;
    int status;   //  0: no answer (connection failed or timed out)
    int port;
    int64_t start_ms, end_ms;
} s_op_t;

struct _tk_ledger_t {
    pthread_mutex_t lock;
    s_entry_t **entries;
    size_t count, cap;
    s_op_t *ops;   //  every attempt, in the order they ended
    size_t op_count, op_cap;
    size_t attempts, busy, no_answer, throttled;
    char first_retry[300];   //  the first answer that was retried, to report
    bool sorted;             //  entries sorted by key (after tallying)
};

tk_ledger_t *
tk_ledger_new (void)
{
    tk_ledger_t *self = calloc (1, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
tk_ledger_destroy (tk_ledger_t **ledger_p)
{
    tk_ledger_t *self = *ledger_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->entries[i]->key);
        free (self->entries[i]->table);
        free (self->entries[i]->body);
        free (self->entries[i]);
    }
    free (self->entries);
    free (self->ops);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *ledger_p = NULL;
}

static s_entry_t *
s_ledger_add (tk_ledger_t *self, const char *key, const char *table,
              const char *body)
{
    s_entry_t *entry = calloc (1, sizeof *entry);
    entry->key = strdup (key);
    entry->table = strdup (table);
    entry->body = strdup (body);
    entry->acked_ms = -1;
    pthread_mutex_lock (&self->lock);
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 256;
        self->entries =
            realloc (self->entries, self->cap * sizeof *self->entries);
    }
    self->entries[self->count++] = entry;
    self->sorted = false;
    pthread_mutex_unlock (&self->lock);
    return entry;
}

//  Record one operation.  Lock held.
static void
s_ledger_op (tk_ledger_t *self, const s_entry_t *entry, int status, int port,
             int64_t start_ms)
{
    if (self->op_count == self->op_cap) {
        self->op_cap = self->op_cap ? self->op_cap * 2 : 1024;
        self->ops = realloc (self->ops, self->op_cap * sizeof *self->ops);
    }
    self->ops[self->op_count++] =
        (s_op_t){ entry, status, port, start_ms, tk_now_ms () };
}

int
tk_ledger_place (tk_ledger_t *self, const int *ports, int port_count,
                 int *current, const char *key, const char *table,
                 const char *body, int retry_ms)
{
    s_entry_t *entry = s_ledger_add (self, key, table, body);
    int64_t start = tk_now_ms (), end = start + retry_ms;
    int status = 0;
    while (true) {
        tk_response_t r;
        int port = ports[*current % port_count];
        int64_t sent_ms = tk_now_ms ();
        tk_post_order (port, key, body, &r);
        status = r.status;
        //  A gateway killed mid-answer can leave a status line without its
        //  body: as a pad would, take that as no answer and retry the key
        if (status == 201
            && json_integer_value (json_object_get (r.json, "id")) < 1)
            status = 0;
        char replayed[16];
        pthread_mutex_lock (&self->lock);
        self->attempts++;
        s_ledger_op (self, entry, status, port, sent_ms);
        if (status == 201) {
            entry->id = json_integer_value (json_object_get (r.json, "id"));
            entry->seq = json_integer_value (json_object_get (r.json, "seq"));
            entry->replayed =
                tk_header (&r, "Idempotent-Replayed", replayed, sizeof replayed)
                && strcmp (replayed, "true") == 0;
            entry->acked_ms = tk_now_ms ();
        } else if (status == 0)
            self->no_answer++;
        else if (status >= 500)
            self->busy++;
        else if (status == 429)
            self->throttled++;
        bool retry = status == 0 || status >= 500 || status == 429;
        if (retry && !*self->first_retry)
            snprintf (self->first_retry, sizeof self->first_retry, "%d %s",
                      status, r.body ? r.body : "(no answer)");
        if (!retry)
            entry->status = status;
        pthread_mutex_unlock (&self->lock);
        tk_response_free (&r);
        if (!retry || tk_now_ms () >= end) {
            pthread_mutex_lock (&self->lock);
            entry->waited_ms = tk_now_ms () - start;
            pthread_mutex_unlock (&self->lock);
            break;
        }
        //  A pad would wait Retry-After (1 s); retrying sooner keeps the
        //  load on while the fault lasts.  A dead gateway: try the next.
        if (port_count > 1)
            *current = (*current + 1) % port_count;
        usleep (50 * 1000);
    }
    return status;
}

static int
s_entry_cmp (const void *a, const void *b)
{
    return strcmp ((*(s_entry_t *const *) a)->key,
                   (*(s_entry_t *const *) b)->key);
}

//  Entry for key in the sorted ledger, or NULL.  Lock held.
static s_entry_t *
s_ledger_find (tk_ledger_t *self, const char *key)
{
    if (!self->sorted) {
        qsort (self->entries, self->count, sizeof *self->entries, s_entry_cmp);
        self->sorted = true;
    }
    s_entry_t probe = { .key = (char *) key }, *pp = &probe;
    s_entry_t **found = bsearch (&pp, self->entries, self->count,
                                 sizeof *self->entries, s_entry_cmp);
    return found ? *found : NULL;
}

int64_t
tk_ledger_acked_ms (tk_ledger_t *self, const char *key)
{
    pthread_mutex_lock (&self->lock);
    s_entry_t *entry = s_ledger_find (self, key);
    int64_t ms = entry ? entry->acked_ms : -1;
    pthread_mutex_unlock (&self->lock);
    return ms;
}

void
tk_ledger_takeover (tk_ledger_t *self, json_int_t base, int64_t *last_old_ms,
                    int64_t *first_new_ms)
{
    *last_old_ms = *first_new_ms = -1;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->count; i++) {
        const s_entry_t *e = self->entries[i];
        if (e->acked_ms < 0)
            continue;
        //  A replayed 201 at or below base may come from either leader
        if (e->seq <= base && !e->replayed && e->acked_ms > *last_old_ms)
            *last_old_ms = e->acked_ms;
        if (e->seq > base && (*first_new_ms < 0 || e->acked_ms < *first_new_ms))
            *first_new_ms = e->acked_ms;
    }
    pthread_mutex_unlock (&self->lock);
}

//  One late retry of entry; true if it answered as its first 201 did
//  (if not, says how when loud).
static bool
s_retry_same (const s_entry_t *entry, int port, bool loud)
{
    tk_response_t r;
    tk_post_order (port, entry->key, entry->body, &r);
    char replayed[16];
    bool same =
        r.status == 201
        && tk_header (&r, "Idempotent-Replayed", replayed, sizeof replayed)
        && strcmp (replayed, "true") == 0
        && json_integer_value (json_object_get (r.json, "id")) == entry->id
        && json_integer_value (json_object_get (r.json, "seq")) == entry->seq;
    if (!same && loud)
        fprintf (stderr,
                 "retry of acknowledged key %s (order %lld seq %lld) "
                 "answered %d %s\n",
                 entry->key, (long long) entry->id, (long long) entry->seq,
                 r.status, r.body ? r.body : "");
    tk_response_free (&r);
    return same;
}

size_t
tk_ledger_retry_acked (tk_ledger_t *self, int port, size_t step,
                       size_t *retried)
{
    size_t differ = 0;
    *retried = 0;
    pthread_mutex_lock (&self->lock);
    size_t count = self->count;
    s_entry_t **entries = self->entries;
    pthread_mutex_unlock (&self->lock);
    //  No load runs: the entries stay as they are while they are posted
    for (size_t i = 0, acked = 0; i < count; i++) {
        if (entries[i]->acked_ms < 0 || acked++ % (step ? step : 1) != 0)
            continue;
        ++*retried;
        if (!s_retry_same (entries[i], port, differ == 0))
            differ++;
    }
    return differ;
}

typedef struct {
    char *key, *table;
    json_int_t id, seq;
} s_stored_t;

static int
s_stored_cmp (const void *a, const void *b)
{
    return strcmp (((const s_stored_t *) a)->key,
                   ((const s_stored_t *) b)->key);
}

static int
s_jint_cmp (const void *a, const void *b)
{
    json_int_t x = *(const json_int_t *) a, y = *(const json_int_t *) b;
    return (x > y) - (x < y);
}

//  Every stored order, read page by page; NULL if a page failed.
static s_stored_t *
s_read_store (int port, int page_limit, size_t *count)
{
    size_t cap = 1024;
    s_stored_t *stored = malloc (cap * sizeof *stored);
    *count = 0;
    char path[128];
    snprintf (path, sizeof path, "/api/v1/orders?limit=%d", page_limit);
    while (true) {
        json_t *page = NULL;
        for (int attempt = 0; !page && attempt < 20; attempt++)
            if (!(page = tk_get_json (port, path, 200)))
                usleep (250 * 1000);
        if (!page) {
            free (stored);   //  keys are freed by the caller's loop below
            return NULL;
        }
        size_t i;
        json_t *order;
        json_array_foreach (json_object_get (page, "orders"), i, order)
        {
            if (*count == cap)
                stored = realloc (stored, (cap *= 2) * sizeof *stored);
            s_stored_t *s = &stored[(*count)++];
            const char *key =
                json_string_value (json_object_get (order, "idempotency_key"));
            const char *table =
                json_string_value (json_object_get (order, "table"));
            s->key = strdup (key ? key : "");
            s->table = strdup (table ? table : "");
            s->id = json_integer_value (json_object_get (order, "id"));
            s->seq = json_integer_value (json_object_get (order, "seq"));
        }
        json_t *next = json_object_get (page, "next_cursor");
        bool more = json_is_string (next);
        if (more)
            snprintf (path, sizeof path, "/api/v1/orders?limit=%d&cursor=%s",
                      page_limit, json_string_value (next));
        json_decref (page);
        if (!more)
            return stored;
    }
}

bool
tk_ledger_tally (tk_ledger_t *self, int port, int page_limit, tk_tally_t *t)
{
    memset (t, 0, sizeof *t);
    size_t count;
    s_stored_t *stored = s_read_store (port, page_limit, &count);
    if (!stored)
        return false;
    t->stored = count;
    qsort (stored, count, sizeof *stored, s_stored_cmp);
    json_int_t *seqs = calloc (count ? count : 1, sizeof *seqs);
    pthread_mutex_lock (&self->lock);
    t->sent = self->count;
    t->attempts = self->attempts;
    t->busy = self->busy;
    t->no_answer = self->no_answer;
    t->throttled = self->throttled;
    snprintf (t->first_retry, sizeof t->first_retry, "%s", self->first_retry);
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *e = self->entries[i];
        t->acked += e->acked_ms >= 0;
        t->replayed += e->acked_ms >= 0 && e->replayed;
        t->refused += e->status >= 400 && e->status < 500 && e->status != 0;
        t->unresolved +=
            e->acked_ms < 0 && (e->status == 0 || e->status == 429);
        if (e->waited_ms > t->slowest_ms)
            t->slowest_ms = e->waited_ms;
    }
    for (size_t i = 0; i < count; i++) {
        s_stored_t *s = &stored[i];
        seqs[i] = s->seq;
        if (i > 0 && strcmp (s->key, stored[i - 1].key) == 0) {
            t->duplicates++;
            continue;
        }
        s_entry_t *e = s_ledger_find (self, s->key);
        if (!e)
            t->unknown++;
        else if (strcmp (e->table, s->table) != 0
                 || (e->acked_ms >= 0
                     && (e->id != s->id || e->seq != s->seq))) {
            if (t->mismatched++ == 0)
                fprintf (stderr,
                         "mismatch: key %s: the 201 said order %lld seq "
                         "%lld table %s; the store has order %lld seq %lld "
                         "table %s\n",
                         s->key, (long long) e->id, (long long) e->seq,
                         e->table, (long long) s->id, (long long) s->seq,
                         s->table);
        }
    }
    //  Acknowledged keys missing from the store
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *e = self->entries[i];
        s_stored_t probe = { .key = e->key };
        if (e->acked_ms >= 0
            && !bsearch (&probe, stored, count, sizeof *stored, s_stored_cmp))
            t->lost++;
    }
    pthread_mutex_unlock (&self->lock);
    //  Orders are only ever placed, so their seqs must be exactly 1..N
    qsort (seqs, count, sizeof *seqs, s_jint_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && seqs[i] == seqs[i - 1])
            t->seq_dups++;
        else if (seqs[i] >= 1)
            distinct++;
    }
    t->max_seq = count ? seqs[count - 1] : 0;
    t->seq_gaps = (size_t) t->max_seq - distinct;
    for (size_t i = 0; i < count; i++) {
        free (stored[i].key);
        free (stored[i].table);
    }
    free (stored);
    free (seqs);
    return true;
}

void
tk_tally_check_exact (const tk_tally_t *t)
{
    TK_CHECK (t->refused == 0,
              "%zu orders refused with a 4xx (a retry with "
              "the same key and body must never be refused)",
              t->refused);
    TK_CHECK (t->unresolved == 0,
              "%zu orders got no 201 within 30 s of "
              "retrying",
              t->unresolved);
    TK_CHECK (t->lost == 0, "%zu acknowledged orders are not stored", t->lost);
    TK_CHECK (t->duplicates == 0, "%zu orders stored twice", t->duplicates);
    TK_CHECK (t->unknown == 0, "%zu stored orders with keys nobody sent",
              t->unknown);
    TK_CHECK (t->mismatched == 0, "%zu stored orders differ from their 201",
              t->mismatched);
    TK_CHECK (t->stored == t->acked, "stored %zu, acknowledged %zu", t->stored,
              t->acked);
    TK_CHECK (
        t->seq_gaps == 0 && t->seq_dups == 0
            && t->max_seq == (json_int_t) t->stored,
        "order seqs are not exactly 1..%zu: max %lld, gaps %zu, doubled %zu",
        t->stored, (long long) t->max_seq, t->seq_gaps, t->seq_dups);
}

void
tk_tally_print (const char *what, const tk_tally_t *t)
{
    printf ("%s: sent %zu, acknowledged %zu (replayed %zu), refused %zu, "
            "unresolved %zu; attempts %zu (retried after 5xx %zu, after no "
            "answer %zu, after 429 %zu; slowest order %lld ms); stored %zu, "
            "duplicates %zu, unknown %zu, lost %zu, mismatched %zu; seq max "
            "%lld, gaps %zu, doubled %zu\n",
            what, t->sent, t->acked, t->replayed, t->refused, t->unresolved,
            t->attempts, t->busy, t->no_answer, t->throttled,
            (long long) t->slowest_ms, t->stored, t->duplicates, t->unknown,
            t->lost, t->mismatched, (long long) t->max_seq, t->seq_gaps,
            t->seq_dups);
    if (*t->first_retry)
        printf ("%s: the first answer retried was: %s\n", what, t->first_retry);
    fflush (stdout);
}

//  ---------------------------------------------------------------------
//  The history check (Jepsen's, in small): every operation and its
//  result against what the store holds at the end.

static int
s_i64_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  Percentiles of the 201s' round trips among ops that began in
//  [from_ms, to_ms).  Lock held.
static void
s_latency (tk_ledger_t *self, int64_t from_ms, int64_t to_ms, tk_latency_t *lat)
{
    memset (lat, 0, sizeof *lat);
    int64_t *ms = malloc ((self->op_count ? self->op_count : 1) * sizeof *ms);
    for (size_t i = 0; i < self->op_count; i++) {
        const s_op_t *op = &self->ops[i];
        if (op->status == 201 && op->start_ms >= from_ms
            && op->start_ms < to_ms)
            ms[lat->count++] = op->end_ms - op->start_ms;
    }
    if (lat->count) {
        qsort (ms, lat->count, sizeof *ms, s_i64_cmp);
        lat->p50_ms = ms[(lat->count - 1) * 50 / 100];
        lat->p99_ms = ms[(lat->count - 1) * 99 / 100];
        lat->max_ms = ms[lat->count - 1];
    }
    free (ms);
}

void
tk_ledger_latency (tk_ledger_t *self, int64_t from_ms, int64_t to_ms,
                   tk_latency_t *lat)
{
    pthread_mutex_lock (&self->lock);
    s_latency (self, from_ms, to_ms, lat);
    pthread_mutex_unlock (&self->lock);
}

//  How many stored orders have key (stored sorted by key)
static size_t
s_stored_times (const s_stored_t *stored, size_t count, const char *key)
{
    s_stored_t probe = { .key = (char *) key };
    const s_stored_t *hit =
        bsearch (&probe, stored, count, sizeof *stored, s_stored_cmp);
    if (!hit)
        return 0;
    while (hit > stored && strcmp (hit[-1].key, key) == 0)
        hit--;
    size_t n = 0;
    while (hit + n < stored + count && strcmp (hit[n].key, key) == 0)
        n++;
    return n;
}

bool
tk_ledger_history (tk_ledger_t *self, int port, int page_limit, tk_history_t *h)
{
    memset (h, 0, sizeof *h);
    size_t count;
    s_stored_t *stored = s_read_store (port, page_limit, &count);
    if (!stored)
        return false;
    qsort (stored, count, sizeof *stored, s_stored_cmp);
    pthread_mutex_lock (&self->lock);
    h->ops = self->op_count;
    for (size_t i = 0; i < self->op_count; i++) {
        int status = self->ops[i].status;
        h->ok += status == 201;
        h->conflict += status == 409;
        h->throttled += status == 429;
        h->refused +=
            status >= 400 && status < 500 && status != 409 && status != 429;
        h->unavailable += status >= 500;
        h->no_answer += status == 0;
    }
    for (size_t i = 0; i < self->count; i++) {
        const s_entry_t *e = self->entries[i];
        size_t times = s_stored_times (stored, count, e->key);
        h->keys++;
        if (e->acked_ms >= 0) {
            h->keys_acked++;
            h->acked_missing += times == 0;
            h->acked_doubled += times > 1;
        } else {
            h->unacked_stored += times == 1;
            h->unacked_absent += times == 0;
            h->unacked_doubled += times > 1;
        }
    }
    for (size_t i = 0; i < count; i++) {
        bool first = i == 0 || strcmp (stored[i].key, stored[i - 1].key) != 0;
        h->stored++;
        if (first && !s_ledger_find (self, stored[i].key))
            h->unsent++;
    }
    s_latency (self, 0, INT64_MAX, &h->latency);
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; i < count; i++) {
        free (stored[i].key);
        free (stored[i].table);
    }
    free (stored);
    return true;
}

void
tk_history_print (const char *what, const tk_history_t *h)
{
    printf ("%s: history: %zu operations: 201 %zu, 409 %zu, other 4xx %zu, "
            "429 %zu, 5xx %zu, no answer/timeout %zu; %zu keys, %zu "
            "acknowledged (missing %zu, stored twice %zu), %zu never "
            "acknowledged (stored once %zu, absent %zu, stored twice %zu); "
            "%zu stored, %zu with a key no client sent; 201 round trip p50 "
            "%lld ms, p99 %lld ms, max %lld ms\n",
            what, h->ops, h->ok, h->conflict, h->refused, h->throttled,
            h->unavailable, h->no_answer, h->keys, h->keys_acked,
            h->acked_missing, h->acked_doubled, h->keys - h->keys_acked,
            h->unacked_stored, h->unacked_absent, h->unacked_doubled, h->stored,
            h->unsent, (long long) h->latency.p50_ms,
            (long long) h->latency.p99_ms, (long long) h->latency.max_ms);
    fflush (stdout);
}

void
tk_history_check (const tk_history_t *h)
{
    TK_CHECK (h->acked_missing == 0 && h->acked_doubled == 0,
              "acknowledged means present exactly once: %zu missing, %zu "
              "stored twice",
              h->acked_missing, h->acked_doubled);
    TK_CHECK (h->unacked_doubled == 0,
              "never acknowledged means present at most once: %zu stored "
              "twice",
              h->unacked_doubled);
    TK_CHECK (h->unsent == 0, "%zu stored orders no client sent", h->unsent);
}

void
tk_ledger_check (tk_ledger_t *self, int port, int page_limit, const char *what,
                 tk_tally_t *tally)
{
    tk_history_t h;
    TK_CHECK (tk_ledger_history (self, port, page_limit, &h),
              "%s: read the store through port %d", what, port);
    tk_history_print (what, &h);
    tk_history_check (&h);
    TK_CHECK (tk_ledger_tally (self, port, page_limit, tally),
              "%s: tally through port %d", what, port);
    tk_tally_print (what, tally);
}
