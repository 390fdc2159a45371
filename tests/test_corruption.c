/*  test_corruption — a writer's data damaged each way issue 15 lists,
    by this test, between runs of a real writer (docs/delivery.md, "What
    happens to damaged data"):

      sound       the undamaged copy: verify says sound, the writer
                  serves every order; verify beside a running writer
      truncated   data.mdb cut to 0 bytes, then to half: the writer
                  refuses (empty: a new store where one was; half: cut
                  short), export refuses, verify finds it
      zeroed      64 KiB zeroed, and 200 random bytes, at three places
                  each: the writer refuses exactly when verify finds
                  damage, or starts and serves every acknowledged order;
                  at least one place of each is found
      meta        the newest meta page invalidated (LMDB falls back to
                  the one before): refused, seq went back; verify finds it
      older       an older copy of data.mdb: refused (by `up` too); verify
                  finds it; with --accept-restore it starts, with what the
                  copy has
      emptied     data.mdb removed: refused; verify finds it
      read        order c-7's key changed in the file under a running
                  writer (it still decodes): the API answers 500
                  storage_damaged for it and for a list through it, never
                  59 of 60; the writer counts it; verify finds it, and
                  the writer refuses the file at its next start

    After each, the copy is put back.  No case lets the writer start on
    less than it acknowledged without --accept-restore: so no
    acknowledged order is lost or its id reused.  */

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK  TK_CHECK
#define ORDERS 60   //  the first half before the older copy is taken

static char s_data[600], s_good[600], s_older[600], s_menu[600];
static char s_intake[64], s_events[64], s_sync[64];
static int s_gw;
static pid_t s_writer_pid;
static json_int_t s_ids[ORDERS], s_last_seq;
static int s_runs;   //  writer runs, for their log names

//  ---------------------------------------------------------------------
//  Files

static void s_sh (const char *format, ...)
    __attribute__ ((format (printf, 1, 2)));

static void
s_sh (const char *format, ...)
{
    char cmd[3000];
    va_list args;
    va_start (args, format);
    vsnprintf (cmd, sizeof cmd, format, args);
    va_end (args);
    CHECK (system (cmd) == 0, "%s", cmd);
}

static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    char *text = calloc (1, 1 << 20);
    if (file) {
        size_t got = fread (text, 1, (1 << 20) - 1, file);
        text[got] = '\0';
        fclose (file);
    }
    return text;
}

static long
s_size (const char *dir)
{
    char path[700];
    struct stat st;
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    return stat (path, &st) == 0 ? (long) st.st_size : -1;
}

//  Put the undamaged data directory back (data.mdb and committed).
static void
s_restore (void)
{
    s_sh ("rm -rf '%s' && mkdir -m 0700 '%s'", s_data, s_data);
    s_sh ("cp '%s'/data.mdb '%s'/", s_good, s_data);
    s_sh ("cp '%s'/committed '%s'/", s_good, s_data);
}

//  Write len bytes of fill (or random ones, seeded, if fill < 0) at
//  offset of data.mdb.
static void
s_damage (long offset, size_t len, int fill, unsigned seed)
{
    char path[700];
    snprintf (path, sizeof path, "%s/data.mdb", s_data);
    unsigned char *bytes = malloc (len);
    srand (seed);
    for (size_t i = 0; i < len; i++)
        bytes[i] = fill >= 0 ? (unsigned char) fill : (unsigned char) rand ();
    int fd = open (path, O_WRONLY);
    CHECK (fd >= 0 && pwrite (fd, bytes, len, offset) == (ssize_t) len
               && close (fd) == 0,
           "damage %s", path);
    free (bytes);
}

static void
s_truncate (long size)
{
    char path[700];
    snprintf (path, sizeof path, "%s/data.mdb", s_data);
    CHECK (truncate (path, size) == 0, "truncate %s", path);
}

//  ---------------------------------------------------------------------
//  Runs

//  Start the writer (with one more flag, or NULL); its log's name.
static const char *
s_writer_spawn (const char *flag)
{
    static char name[32];
    snprintf (name, sizeof name, "writer-%d", ++s_runs);
    s_writer_pid =
        tk_spawn (name, "writer", "--data", s_data, "--menu", s_menu,
                  "--intake", s_intake, "--events", s_events, "--sync", s_sync,
                  "--heartbeat-ms", "100", flag, NULL);
    return name;
}

static bool
s_log_has (const char *name, const char *what)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s.log", tk_dir (), name);
    char *text = s_slurp (path);
    bool found = strstr (text, what) != NULL;
    free (text);
    return found;
}

//  The writer refuses to start: exits 1 by itself, its log naming the
//  file and saying each of what (NULL-terminated).
static void
s_writer_refuses (const char *why, const char *flag, ...)
{
    const char *name = s_writer_spawn (flag);
    int status = tk_kill (s_writer_pid, 0);   //  waits for it to exit
    CHECK (status == 1, "%s: the writer exits 1, not %d (-1: it runs)", why,
           status);
    CHECK (s_log_has (name, "data.mdb"), "%s: the message names the file", why);
    va_list args;
    va_start (args, flag);
    for (const char *what = va_arg (args, const char *); what;
         what = va_arg (args, const char *))
        CHECK (s_log_has (name, what), "%s: the writer says '%s' (%s.log)", why,
               what, name);
    va_end (args);
}

//  `orderbus verify` exits want, saying what.  Its output is printed.
static void
s_verify (const char *why, int want, const char *what)
{
    char *out;
    int status = tk_run (&out, "verify", "--data", s_data, NULL);
    printf ("--- verify, %s: exit %d\n%s", why, status, out);
    CHECK (status == want, "%s: verify exits %d, want %d", why, status, want);
    CHECK (!what || strstr (out, what), "%s: verify says '%s'", why, what);
    free (out);
}

static json_int_t
s_int (json_t *obj, const char *key)
{
    return json_integer_value (json_object_get (obj, key));
}

static void
s_order (const char *key, int variant, json_int_t *id, json_int_t *seq)
{
    char *body = tk_order_body ("T3", 12, true, variant);
    tk_response_t r;
    tk_post_order (s_gw, key, body, &r);
    free (body);
    CHECK (r.status == 201, "order %s: %d %s", key, r.status, r.body);
    *id = s_int (r.json, "id");
    *seq = s_int (r.json, "seq");
    tk_response_free (&r);
}

static void
s_writer_stop (void)
{
    CHECK (tk_kill (s_writer_pid, SIGTERM) == 0, "writer exits 0");
    CHECK (tk_wait_http (s_gw, "/healthz", 503, 5000),
           "the gateway notices the writer is gone");
}

//  The writer starts and serves the first `count` acknowledged orders,
//  each as acknowledged; a new order gets the next id and seq (none
//  reused) when count is all of them.  Then it is stopped.
static void
s_writer_serves (const char *why, int count, const char *flag)
{
    s_writer_spawn (flag);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 20000), "%s: writer up", why);
    for (int i = 0; i < count; i++) {
        char path[64], key[32];
        snprintf (path, sizeof path, "/api/v1/orders/%lld",
                  (long long) s_ids[i]);
        snprintf (key, sizeof key, "c-%d", i);
        tk_response_t r;
        tk_http (s_gw, "GET", path, NULL, NULL, &r);
        const char *got =
            json_string_value (json_object_get (r.json, "idempotency_key"));
        CHECK (r.status == 200 && got && strcmp (got, key) == 0,
               "%s: order %lld as acknowledged: %d %s", why,
               (long long) s_ids[i], r.status, got ? got : "");
        tk_response_free (&r);
    }
    if (count == ORDERS) {
        char key[64];
        snprintf (key, sizeof key, "after-%d", s_runs);
        json_int_t id, seq;
        s_order (key, 0, &id, &seq);
        CHECK (id == s_ids[ORDERS - 1] + 1 && seq == s_last_seq + 1,
               "%s: the next order is id %lld seq %lld, none reused", why,
               (long long) id, (long long) seq);
    }
    s_writer_stop ();
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (orders)
{
    s_writer_spawn (NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 20000), "writer up");
    json_int_t seq = 0;
    for (int i = 0; i < ORDERS; i++) {
        char key[32];
        snprintf (key, sizeof key, "c-%d", i);
        s_order (key, i, &s_ids[i], &seq);
        if (i == ORDERS / 2 - 1) {   //  the older copy: writer stopped
            s_writer_stop ();
            s_sh ("mkdir -p '%s' && cp '%s'/data.mdb '%s'/", s_older, s_data,
                  s_older);
            s_writer_spawn (NULL);
            CHECK (tk_wait_http (s_gw, "/healthz", 200, 20000), "writer up");
        }
    }
    s_last_seq = seq;
    s_writer_stop ();
    s_sh ("mkdir -p '%s' && cp '%s'/data.mdb '%s'/", s_good, s_data, s_good);
    s_sh ("cp '%s'/committed '%s'/", s_data, s_good);
    printf ("data.mdb: %ld bytes, %d orders, last seq %lld\n", s_size (s_data),
            ORDERS, (long long) s_last_seq);
}

TK_CASE (sound)
{
    s_restore ();
    s_verify ("sound", 0, "orders:        60 ");
    s_writer_serves ("sound", ORDERS, NULL);
    //  verify reads beside a running writer, which it never blocks
    s_writer_spawn (NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 20000), "writer up");
    s_verify ("beside the writer", 0, "sound");
    json_int_t id, seq;
    s_order ("beside-verify", 0, &id, &seq);
    s_writer_stop ();
}

TK_CASE (truncated)
{
    s_restore ();
    s_truncate (0);
    s_verify ("truncated to 0", 1, "is empty");
    s_writer_refuses ("truncated to 0", NULL, "is empty (a new store)",
                      "--accept-restore", NULL);
    s_restore ();
    s_truncate (s_size (s_data) / 2);
    s_verify ("cut to half", 1, "cut short");
    s_writer_refuses ("cut to half", NULL, "cut short", "Restore", NULL);
    char *out;
    int status = tk_run (&out, "export", "--data", s_data, NULL);
    CHECK (status == 1 && strstr (out, "damaged"),
           "export refuses a file cut short, without a crash: %d %s", status,
           out);
    free (out);
}

//  Damage at three places each way; where verify finds it, the writer
//  refuses, and where it does not (free pages), the writer serves all.
static void
s_damage_each (const char *why, int fill, size_t len)
{
    int found = 0;
    for (int place = 1; place <= 3; place++) {
        s_restore ();
        long offset = s_size (s_data) * place / 4 / 4096 * 4096 + 100;
        s_damage (offset, len, fill, (unsigned) place);
        char *out;
        int status = tk_run (&out, "verify", "--data", s_data, NULL);
        printf ("--- verify, %s at %ld: exit %d\n%s", why, offset, status, out);
        free (out);
        CHECK (status == 0 || status == 1, "%s at %ld: verify exits %d", why,
               offset, status);
        if (status == 1) {
            found++;
            s_writer_refuses (why, NULL, "damaged", "Restore", NULL);
        } else
            s_writer_serves (why, ORDERS, NULL);
    }
    CHECK (found > 0, "%s: verify finds at least one of three places", why);
}

TK_CASE (zeroed)
{
    s_damage_each ("64 KiB zeroed", 0, 64 * 1024);
    s_damage_each ("200 random bytes", -1, 200);
}

TK_CASE (meta)
{
    s_restore ();
    //  LMDB's two meta pages (pages 0 and 1) each hold the id of their
    //  transaction, 144 bytes into the page; the higher one is the newest
    char path[700];
    snprintf (path, sizeof path, "%s/data.mdb", s_data);
    long page = sysconf (_SC_PAGESIZE);
    int fd = open (path, O_RDWR);
    uint64_t txn[2];
    CHECK (fd >= 0 && pread (fd, &txn[0], 8, 144) == 8
               && pread (fd, &txn[1], 8, page + 144) == 8,
           "meta pages read");
    close (fd);
    s_damage ((txn[1] > txn[0] ? page : 0) + 144, 8, 0, 0);
    s_writer_refuses ("newest meta page invalidated", NULL,
                      "older than what was acknowledged", "--accept-restore",
                      NULL);
    s_verify ("newest meta page invalidated", 1, "last committed");
}

TK_CASE (older)
{
    s_restore ();
    s_sh ("cp '%s'/data.mdb '%s'/", s_older, s_data);
    s_writer_refuses ("an older copy", NULL, "older than what was acknowledged",
                      "--accept-restore", NULL);
    s_verify ("an older copy", 1, "is older");
    //  orderbus up holds a writer too, and refuses the same
    char port[16];
    snprintf (port, sizeof port, "%d", tk_port ());
    pid_t up = tk_spawn ("up-refused", "up", "--data", s_data, "--http-port",
                         port, NULL);
    CHECK (tk_kill (up, 0) == 1 && s_log_has ("up-refused", "--accept-restore"),
           "orderbus up refuses the older copy too");
    //  The operator restores it on purpose: it starts, with what it has
    const char *name = s_writer_spawn ("--accept-restore");
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 20000),
           "--accept-restore starts it");
    CHECK (s_log_has (name, "accepted (--accept-restore)"),
           "the writer logs what it accepted");
    s_writer_stop ();
    s_writer_serves ("restored on purpose", ORDERS / 2, NULL);
    s_verify ("restored on purpose", 0, "sound");
}

TK_CASE (emptied)
{
    s_restore ();
    s_sh ("rm '%s'/data.mdb", s_data);
    s_verify ("data.mdb removed", 1, "is missing");
    s_writer_refuses ("data.mdb removed", NULL, "is empty (a new store)",
                      "--accept-restore", NULL);
}

//  Change every stored copy of order c-7's key to c-8 in data.mdb, under
//  a running writer (its map shares the page cache): the order's record
//  and its event still decode, only their checksums tell.
static void
s_change_key_under_writer (void)
{
    char path[700];
    snprintf (path, sizeof path, "%s/data.mdb", s_data);
    long size = s_size (s_data);
    unsigned char *bytes = malloc (size);
    int fd = open (path, O_RDWR);
    CHECK (fd >= 0 && pread (fd, bytes, size, 0) == size, "read %s", path);
    int changed = 0;
    //  MessagePack's fixstr of 3 bytes: 0xa3 'c' '-' '7'
    for (long at = 0; at + 4 <= size; at++)
        if (memcmp (bytes + at,
                    "\xa3"
                    "c-7",
                    4)
            == 0) {
            CHECK (pwrite (fd, "8", 1, at + 3) == 1, "write %s", path);
            changed++;
        }
    close (fd);
    free (bytes);
    CHECK (changed == 2, "the order and its event changed: %d", changed);
}

TK_CASE (read)
{
    s_restore ();
    s_writer_spawn (NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 20000), "writer up");
    s_change_key_under_writer ();
    char path[64];
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) s_ids[7]);
    tk_response_t r;
    tk_http (s_gw, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 500 && strstr (r.body, "storage_damaged"),
           "the damaged order: 500 storage_damaged, not %d %s", r.status,
           r.body);
    tk_response_free (&r);
    tk_http (s_gw, "GET", "/api/v1/orders?limit=100", NULL, NULL, &r);
    CHECK (r.status == 500 && strstr (r.body, "storage_damaged"),
           "a list through it: 500 storage_damaged, never 59 of 60: %d",
           r.status);
    tk_response_free (&r);
    snprintf (path, sizeof path, "/api/v1/orders/%lld", (long long) s_ids[6]);
    tk_http (s_gw, "GET", path, NULL, NULL, &r);
    CHECK (r.status == 200, "an undamaged order is served: %d", r.status);
    tk_response_free (&r);
    json_t *stats = tk_get_json (s_gw, "/api/v1/stats", 200);
    CHECK (tk_json_int (stats, "writer.damaged_reads") >= 2,
           "the writer counts the damaged reads: %lld",
           (long long) tk_json_int (stats, "writer.damaged_reads"));
    json_decref (stats);
    s_writer_stop ();
    s_verify ("a key changed", 1, "fails its checksum");
    s_writer_refuses ("a key changed", NULL, "fails its checksum", "Restore",
                      NULL);
}

static const tk_case_t s_cases[] = {
    TK_CASE_ENTRY (orders),  TK_CASE_ENTRY (sound), TK_CASE_ENTRY (truncated),
    TK_CASE_ENTRY (zeroed),  TK_CASE_ENTRY (meta),  TK_CASE_ENTRY (older),
    TK_CASE_ENTRY (emptied), TK_CASE_ENTRY (read),  { 0 },
};

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "corruption");
    s_gw = tk_port ();
    char port[16];
    snprintf (port, sizeof port, "%d", s_gw);
    snprintf (s_data, sizeof s_data, "%s/data", tk_dir ());
    snprintf (s_good, sizeof s_good, "%s/good", tk_dir ());
    snprintf (s_older, sizeof s_older, "%s/older", tk_dir ());
    snprintf (s_menu, sizeof s_menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (s_intake, s_events, s_sync);
    tk_spawn ("gateway", "gateway", "--intake", s_intake, "--events", s_events,
              "--sync", s_sync, "--http-port", port, "--ack-timeout-ms", "3000",
              NULL);
    tk_run_cases (s_cases);
    return tk_done ();
}
