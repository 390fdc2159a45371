/*  tk_load.c — load from many concurrent clients (through the ledger),
    and followers: browsers that follow /ws and reconnect.  */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tk_internal.h"

//  ---------------------------------------------------------------------
//  Load

struct _tk_load_t {
    tk_ledger_t *ledger;
    tk_load_opts_t opts;   //  ports and prefix point into the copies below
    int *ports;
    char *prefix;
    pthread_t *threads;
    atomic_bool stop;
    atomic_int started;   //  orders begun, for max_orders
    atomic_size_t done;
};

typedef struct {
    tk_load_t *load;
    int index;
} s_client_arg_t;

static void *
s_load_client (void *arg_)
{
    s_client_arg_t *arg = (s_client_arg_t *) arg_;
    tk_load_t *load = arg->load;
    const tk_load_opts_t *o = &load->opts;
    int current = 0;   //  every client starts on the first gateway
    for (int n = 0; !atomic_load (&load->stop); n++) {
        if (o->max_orders
            && atomic_fetch_add (&load->started, 1) >= o->max_orders)
            break;
        char key[128], table[16];
        snprintf (key, sizeof key, "%s-%d-%d", o->prefix, arg->index, n);
        snprintf (table, sizeof table, "T%d", (arg->index * 7 + n) % 40 + 1);
        char *body = tk_order_body (table, o->lines, o->long_notes,
                                    arg->index * 1000 + n);
        tk_ledger_place (load->ledger, o->ports, o->port_count, &current, key,
                         table, body, o->retry_ms);
        free (body);
        atomic_fetch_add (&load->done, 1);
    }
    free (arg);
    return NULL;
}

tk_load_t *
tk_load_start (tk_ledger_t *ledger, const tk_load_opts_t *opts)
{
    tk_load_t *self = calloc (1, sizeof *self);
    self->ledger = ledger;
    self->opts = *opts;
    //  The caller's array and string may not outlive this call
    self->ports = malloc ((size_t) opts->port_count * sizeof (int));
    memcpy (self->ports, opts->ports, (size_t) opts->port_count * sizeof (int));
    self->opts.ports = self->ports;
    self->prefix = strdup (opts->prefix);
    self->opts.prefix = self->prefix;
    self->threads = calloc ((size_t) opts->threads, sizeof (pthread_t));
    for (int i = 0; i < opts->threads; i++) {
        s_client_arg_t *arg = malloc (sizeof *arg);
        arg->load = self;
        arg->index = i;
        pthread_create (&self->threads[i], NULL, s_load_client, arg);
    }
    return self;
}

size_t
tk_load_done (tk_load_t *self)
{
    return atomic_load (&self->done);
}

void
tk_load_stop (tk_load_t **load_p)
{
    if (*load_p)
        atomic_store (&(*load_p)->stop, true);
    tk_load_join (load_p);
}

void
tk_load_join (tk_load_t **load_p)
{
    tk_load_t *self = *load_p;
    if (!self)
        return;
    for (int i = 0; i < self->opts.threads; i++)
        pthread_join (self->threads[i], NULL);
    free (self->threads);
    free (self->ports);
    free (self->prefix);
    free (self);
    *load_p = NULL;
}

void
tk_loads_start (tk_ledger_t *ledger, tk_load_t **loads, const int *ports,
                int count, const tk_load_opts_t *opts)
{
    //  One numbering for the process: no two loads share a key prefix
    static int round;
    TK_CHECK (count > 0 && count <= 8, "tk_loads_start: %d loads", count);
    for (int i = 0; i < count; i++) {
        int order[8];
        for (int k = 0; k < count; k++)
            order[k] = ports[(i + k) % count];
        char prefix[32];
        snprintf (prefix, sizeof prefix, "%s%d", opts->prefix, ++round);
        tk_load_opts_t o = *opts;
        o.ports = order;
        o.port_count = count;
        o.prefix = prefix;
        loads[i] = tk_load_start (ledger, &o);   //  copies ports and prefix
    }
}

//  ---------------------------------------------------------------------
//  Follower

struct _tk_follower_t {
    int port;
    char name[64];
    pthread_t thread;
    atomic_bool stop;
    bool running;
    pthread_mutex_t lock;   //  guards below
    pthread_cond_t cond;
    tk_follow_stats_t stats;
    tk_event_t *events;
    size_t cap;
};

static void
s_follow_event (tk_follower_t *self, json_t *msg, int64_t at)
{
    tk_follow_stats_t *st = &self->stats;
    json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
    if (st->start < 0) {
        st->errors++;   //  an event before any snapshot: nothing to apply to
        return;
    }
    if (seq <= st->last) {
        st->duplicates++;
        return;
    }
    if (seq > st->last + 1)
        st->gaps += (size_t) (seq - st->last - 1);
    if (st->events == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 1024;
        self->events = realloc (self->events, self->cap * sizeof *self->events);
    }
    json_t *order = json_object_get (msg, "order");
    const char *key =
        json_string_value (json_object_get (order, "idempotency_key"));
    tk_event_t *e = &self->events[st->events++];
    e->seq = seq;
    e->id = json_integer_value (json_object_get (order, "id"));
    e->key = strdup (key ? key : "");
    e->arrived_ms = at;
    st->last = seq;
}

static void
s_follow_apply (tk_follower_t *self, json_t *msg, int64_t at)
{
    const char *type = json_string_value (json_object_get (msg, "type"));
    tk_follow_stats_t *st = &self->stats;
    pthread_mutex_lock (&self->lock);
    if (type && strcmp (type, "snapshot") == 0) {
        json_int_t seq = json_integer_value (json_object_get (msg, "seq"));
        if (st->start < 0)
            st->start = seq;
        else {
            //  A snapshot after the first: whatever lay between our last
            //  event and it reached this browser as state, not as events
            st->snapshots++;
            if (seq > st->last)
                st->gaps += (size_t) (seq - st->last);
            else
                st->duplicates += (size_t) (st->last - seq);
        }
        st->last = seq;
    } else if (type && strcmp (type, "event") == 0)
        s_follow_event (self, msg, at);
    else
        st->errors++;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
}

static void *
s_follower_run (void *arg)
{
    tk_follower_t *self = (tk_follower_t *) arg;
    tk_ws_t *ws = NULL;
    bool connected_once = false;
    while (!atomic_load (&self->stop)) {
        if (!ws) {
            char path[64] = "/ws";
            pthread_mutex_lock (&self->lock);
            if (self->stats.start >= 0)
                snprintf (path, sizeof path, "/ws?resume_from=%lld",
                          (long long) self->stats.last);
            pthread_mutex_unlock (&self->lock);
            ws = tk__ws_try_open (self->port, path);
            if (!ws) {
                usleep (200 * 1000);   //  as a browser's reconnect delay
                continue;
            }
            pthread_mutex_lock (&self->lock);
            self->stats.reconnects += connected_once;
            pthread_mutex_unlock (&self->lock);
            connected_once = true;
        }
        int64_t at = 0;
        json_t *msg = tk_ws_next_at (ws, 100, &at);
        if (msg) {
            s_follow_apply (self, msg, at);
            json_decref (msg);
        } else if (tk_ws_closed (ws)) {
            tk_ws_close (&ws);
            usleep (200 * 1000);
        }
    }
    tk_ws_close (&ws);
    return NULL;
}

tk_follower_t *
tk_follower_new (int port, const char *name)
{
    tk_follower_t *self = calloc (1, sizeof *self);
    self->port = port;
    snprintf (self->name, sizeof self->name, "%s", name);
    self->stats.start = self->stats.last = -1;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_create (&self->thread, NULL, s_follower_run, self);
    self->running = true;
    return self;
}

void
tk_follower_stats (tk_follower_t *self, tk_follow_stats_t *stats)
{
    pthread_mutex_lock (&self->lock);
    *stats = self->stats;
    pthread_mutex_unlock (&self->lock);
}

bool
tk_follower_wait (tk_follower_t *self, json_int_t seq, int timeout_ms)
{
    struct timespec ts;
    tk__deadline (CLOCK_MONOTONIC, timeout_ms, &ts);
    pthread_mutex_lock (&self->lock);
    while (self->stats.last < seq
           && pthread_cond_timedwait (&self->cond, &self->lock, &ts)
                  != ETIMEDOUT)
        ;
    bool reached = self->stats.last >= seq;
    pthread_mutex_unlock (&self->lock);
    return reached;
}

void
tk_follower_print (const char *what, tk_follower_t *self)
{
    tk_follow_stats_t st;
    tk_follower_stats (self, &st);
    printf ("%s: %s: from seq %lld to %lld, events %zu, gaps %zu, "
            "duplicates %zu, snapshots after the first %zu, reconnects %zu, "
            "errors %zu\n",
            what, self->name, (long long) st.start, (long long) st.last,
            st.events, st.gaps, st.duplicates, st.snapshots, st.reconnects,
            st.errors);
    fflush (stdout);
}

void
tk_follower_stop (tk_follower_t *self)
{
    if (!self->running)
        return;
    atomic_store (&self->stop, true);
    pthread_join (self->thread, NULL);
    self->running = false;
}

const tk_event_t *
tk_follower_events (tk_follower_t *self, size_t *count)
{
    *count = self->stats.events;
    return self->events;
}

void
tk_follower_destroy (tk_follower_t **follower_p)
{
    tk_follower_t *self = *follower_p;
    if (!self)
        return;
    tk_follower_stop (self);
    for (size_t i = 0; i < self->stats.events; i++)
        free (self->events[i].key);
    free (self->events);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->cond);
    free (self);
    *follower_p = NULL;
}

tk_follower_t *
tk_kitchen_new (int port, const char *edge)
{
    char name[64];
    snprintf (name, sizeof name, "kitchen on %s", edge);
    tk_follower_t *self = tk_follower_new (port, name);
    TK_CHECK (tk_follower_wait (self, 0, 15000), "%s: its snapshot", name);
    return self;
}

void
tk_kitchen_check (const char *what, tk_follower_t *self, json_int_t seq)
{
    TK_CHECK (tk_follower_wait (self, seq, 20000), "%s: %s reaches seq %lld",
              what, self->name, (long long) seq);
    tk_follower_print (what, self);
    tk_follow_stats_t st;
    tk_follower_stats (self, &st);
    TK_CHECK (st.gaps == 0 && st.duplicates == 0 && st.errors == 0
                  && st.snapshots == 0,
              "%s: %s: gaps %zu, duplicates %zu, errors %zu, snapshots after "
              "the first %zu",
              what, self->name, st.gaps, st.duplicates, st.errors,
              st.snapshots);
}
