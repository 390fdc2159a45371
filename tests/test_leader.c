/*  test_leader — the leader lease (bus_leader.h) on a real etcd.

      campaign  two candidates: one wins, the other sees the holder and
                its fencing token
      keepalive the leader stays leader past several TTLs, renewing
      resign    the other takes over at once (it was watching), with a
                higher fencing token
      sync      only the standby named in /sync may take over; another
                candidate is refused; a deposed leader cannot name one
      stop      etcd stopped (SIGSTOP): the leader steps down at
                TTL - margin after the SEND of its last renewal, before
                the lease can expire; its lost callback runs
      partition etcd alive, the leader cut off (a frozen proxy): it steps
                down before etcd expires its key, as an observer sees it
      revoked   the leader's lease revoked from outside: it steps down at
                its next renewal, not at its deadline
      slow      a fake etcd that answers each renewal 400 ms late: the
                step-down still counts from the send, not the answer
      restart   etcd killed and started again: the named standby
                campaigns again and wins, with a higher token

    Skips (77) when there is no etcd binary (apt-get install etcd-server). */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_leader.h"
#include <czmq.h>
#include "testkit.h"
#include "tk_etcd.h"

#define CHECK TK_CHECK
#define T     2000   //  deadline of a call that should answer
#define TTL_S 2
//  How late the test's poller may notice a step-down on a busy box (the
//  mutants it must catch are 400 and 500 ms late)
#define SLACK_MS 150

static tk_etcd_t s_etcd;
static bus_leader_t *s_a, *s_b, *s_c;
static char s_err[256];
static int64_t s_fence_a, s_fence_b;

static bus_leader_t *
s_candidate (const char *endpoints, const char *group, const char *name)
{
    bus_leader_config_t config = {
        .endpoints = endpoints, .group = group, .name = name, .ttl_s = TTL_S
    };
    bus_leader_t *leader = bus_leader_new (&config, s_err, sizeof s_err);
    CHECK (leader, "candidate %s: %s", name, s_err);
    return leader;
}

static bus_leader_state_t
s_campaign (bus_leader_t *leader)
{
    bus_leader_state_t state;
    int rc = bus_leader_campaign (leader, T, &state, s_err, sizeof s_err);
    CHECK (rc == 0, "campaign: %d %s", rc, s_err);
    return state;
}

TK_CASE (campaign)
{
    s_a = s_candidate (s_etcd.url, "g1", "a");
    s_b = s_candidate (s_etcd.url, "g1", "b");
    s_c = s_candidate (s_etcd.url, "g1", "c");
    CHECK (!bus_leader_is_leader (s_a) && bus_leader_fence (s_a) == 0,
           "nobody leads before a campaign");
    bus_leader_state_t a = s_campaign (s_a);
    CHECK (a.leader && a.fence > 0 && streq (a.holder, "a") && !*a.sync,
           "a wins");
    CHECK (bus_leader_is_leader (s_a) && bus_leader_fence (s_a) == a.fence,
           "a leads, token %lld", (long long) a.fence);
    CHECK (bus_leader_ttl_ms (s_a) == TTL_S * 1000, "TTL granted %d ms",
           bus_leader_ttl_ms (s_a));
    bus_leader_state_t b = s_campaign (s_b);
    CHECK (!b.leader && !b.refused && streq (b.holder, "a")
               && b.fence == a.fence,
           "b sees a (holder '%s', token %lld)", b.holder, (long long) b.fence);
    CHECK (!bus_leader_is_leader (s_b), "b does not lead");
    bus_leader_state_t again = s_campaign (s_a);
    CHECK (again.leader && again.fence == a.fence, "a campaigning again: same");
    s_fence_a = a.fence;
    printf ("leader: a leads with token %lld; b sees holder %s\n",
            (long long) a.fence, b.holder);
    bus_leader_t *bad = NULL;
    bus_leader_config_t config = {
        .endpoints = s_etcd.url, .group = "g/1", .name = "a", .ttl_s = 2
    };
    CHECK (!(bad = bus_leader_new (&config, s_err, sizeof s_err)),
           "a group with a slash refused");
    config.group = "g1";
    config.endpoints = "http://192.0.2.1:2379";
    CHECK (!(bad = bus_leader_new (&config, s_err, sizeof s_err)),
           "plain http off loopback refused");
    printf ("leader: %s\n", s_err);
}

TK_CASE (keepalive)
{
    int64_t start = tk_now_ms (), first = bus_leader_renewed_at (s_a);
    int renewals = 0;
    int64_t last = first;
    while (tk_now_ms () - start < 3 * TTL_S * 1000) {
        CHECK (bus_leader_is_leader (s_a), "a still leads after %lld ms",
               (long long) (tk_now_ms () - start));
        int64_t at = bus_leader_renewed_at (s_a);
        if (at != last)
            renewals++;
        last = at;
        usleep (20000);
    }
    CHECK (renewals >= 7, "renewed every TTL/3: %d renewals in 3 TTLs",
           renewals);
    bus_leader_state_t b = s_campaign (s_b);
    CHECK (!b.leader && streq (b.holder, "a"), "b still sees a");
    printf ("leader: a led for %d ms (3 TTLs), %d renewals\n", 3 * TTL_S * 1000,
            renewals);
}

TK_CASE (resign)
{
    bus_leader_state_t b = s_campaign (s_b);
    CHECK (!b.leader, "b waits");
    int64_t start = tk_now_ms ();
    CHECK (bus_leader_resign (s_a, T, s_err, sizeof s_err) == 0, "resign: %s",
           s_err);
    CHECK (!bus_leader_is_leader (s_a) && bus_leader_fence (s_a) == 0,
           "a no longer leads");
    CHECK (bus_leader_wait (s_b, 5000, s_err, sizeof s_err) == 0,
           "b sees the key go: %s", s_err);
    b = s_campaign (s_b);
    int64_t took = tk_now_ms () - start;
    CHECK (b.leader && b.fence > s_fence_a, "b takes over, token %lld > %lld",
           (long long) b.fence, (long long) s_fence_a);
    CHECK (took < 1000, "at once, not after the TTL: %lld ms",
           (long long) took);
    s_fence_b = b.fence;
    printf ("leader: a resigned, b leads %lld ms later with token %lld\n",
            (long long) took, (long long) b.fence);
}

TK_CASE (sync)
{
    char name[80];
    CHECK (bus_leader_sync_name (s_b, name, sizeof name, T, NULL, 0) == 0
               && !*name,
           "no sync standby yet");
    CHECK (bus_leader_set_sync (s_a, "c", T, s_err, sizeof s_err)
               == BUS_ERR_FORBIDDEN,
           "a, not leader, cannot name the standby: %s", s_err);
    CHECK (bus_leader_set_sync (s_b, "c", T, s_err, sizeof s_err) == 0,
           "b names c: %s", s_err);
    CHECK (bus_leader_set_sync (s_b, "c/d", T, NULL, 0) == BUS_ERR_INVALID,
           "a bad name refused");
    CHECK (bus_leader_sync_name (s_a, name, sizeof name, T, NULL, 0) == 0
               && streq (name, "c"),
           "everyone reads c");
    CHECK (bus_leader_resign (s_b, T, NULL, 0) == 0, "b resigns");
    bus_leader_state_t a = s_campaign (s_a);
    CHECK (!a.leader && a.refused && !*a.holder && streq (a.sync, "c"),
           "a is refused: c is the standby");
    bus_leader_state_t c = s_campaign (s_c);
    CHECK (c.leader && c.fence > s_fence_b, "c takes over, token %lld",
           (long long) c.fence);
    CHECK (bus_leader_set_sync (s_b, "b", T, s_err, sizeof s_err)
               == BUS_ERR_FORBIDDEN,
           "deposed b cannot name a standby: %s", s_err);
    printf ("leader: sync names c: a refused, c leads with token %lld\n",
            (long long) c.fence);
}

static atomic_int s_lost_calls;

static void
s_on_lost (void *arg)
{
    (void) arg;
    s_lost_calls++;
}

static void
s_on_lost_count (void *arg)
{
    atomic_int *count = arg;
    (*count)++;
}

//  Poll leader until it steps down (at most max_ms); returns the time it
//  did, and in *renewed the send time of its last renewal
static int64_t
s_watch_step_down (bus_leader_t *leader, int max_ms, int64_t *renewed)
{
    int64_t end = tk_now_ms () + max_ms;
    while (tk_now_ms () < end) {
        int64_t at = bus_leader_renewed_at (leader);
        if (!bus_leader_is_leader (leader))
            return tk_now_ms ();
        *renewed = at;
        usleep (1000);
    }
    CHECK (false, "no step-down within %d ms", max_ms);
    return 0;
}

TK_CASE (stop)
{
    bus_leader_state_t c = s_campaign (s_c);
    CHECK (c.leader, "c leads");
    //  A fresh leadership, so the lost callback is set before it starts
    CHECK (bus_leader_resign (s_c, T, NULL, 0) == 0, "c resigns");
    bus_leader_on_lost (s_c, s_on_lost, NULL);
    c = s_campaign (s_c);
    CHECK (c.leader, "c leads again");
    usleep (1000 * 1000);   //  a few renewals
    tk_etcd_freeze (&s_etcd, true);
    int64_t stopped = tk_now_ms (), renewed = 0;
    int64_t down = s_watch_step_down (s_c, 3000, &renewed);
    int ttl = bus_leader_ttl_ms (s_c);
    int64_t after = down - renewed;
    int64_t want = ttl - BUS_LEADER_MARGIN (ttl);
    printf ("leader: etcd stopped; c stepped down %lld ms after its last "
            "renewal was sent (%lld ms after the stop); the lease expires "
            "%d ms after etcd got it at the earliest\n",
            (long long) after, (long long) (down - stopped), ttl);
    CHECK (after >= want && after <= want + SLACK_MS,
           "steps down at TTL - margin = %lld ms after the send (%lld)",
           (long long) want, (long long) after);
    CHECK (after < ttl - 100, "well before the TTL");
    //  The keeper notices by the deadline and says so
    for (int64_t end = tk_now_ms () + 1500;
         !s_lost_calls && tk_now_ms () < end;)
        usleep (5000);
    CHECK (s_lost_calls == 1, "lost callback once (%d)", (int) s_lost_calls);
    tk_etcd_freeze (&s_etcd, false);
}

TK_CASE (partition)
{
    //  d reaches etcd through a proxy, the observer e directly
    tk_proxy_t *proxy = tk_proxy_new (s_etcd.client_port);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", tk_proxy_port (proxy));
    bus_leader_t *d = s_candidate (url, "g2", "d");
    bus_leader_t *e = s_candidate (s_etcd.url, "g2", "e");
    CHECK (s_campaign (d).leader, "d leads g2");
    bus_leader_state_t seen = s_campaign (e);
    CHECK (!seen.leader && streq (seen.holder, "d"), "e sees d");
    usleep (1000 * 1000);
    tk_proxy_freeze (proxy, true);
    int64_t frozen = tk_now_ms (), renewed = 0;
    int64_t down = s_watch_step_down (d, 3000, &renewed);
    CHECK (bus_leader_wait (e, 5000, s_err, sizeof s_err) == 0,
           "e sees d's key expire: %s", s_err);
    int64_t expired = tk_now_ms ();
    printf ("leader: d cut off from etcd: stepped down %lld ms after its "
            "last renewal's send, etcd expired its key %lld ms after it "
            "(%lld ms after the cut)\n",
            (long long) (down - renewed), (long long) (expired - renewed),
            (long long) (expired - frozen));
    CHECK (down < expired, "d stepped down before its key expired");
    bus_leader_state_t e_state = s_campaign (e);
    CHECK (e_state.leader, "e takes over");
    bus_leader_destroy (&e);
    bus_leader_destroy (&d);   //  its revoke times out: the proxy is frozen
    tk_proxy_destroy (&proxy);
}

TK_CASE (revoked)
{
    //  Someone with access to etcd revokes the leader's lease: the next
    //  renewal hears the lease is gone, and the leader steps down then,
    //  not at its deadline
    bus_leader_t *g = s_candidate (s_etcd.url, "g4", "g");
    static atomic_int lost;
    bus_leader_on_lost (g, s_on_lost_count, &lost);
    CHECK (s_campaign (g).leader, "g leads g4");
    bus_etcd_t *admin = bus_etcd_new (s_etcd.url, false, NULL, NULL, 0);
    bus_etcd_result_t key, r;
    CHECK (bus_etcd_get (admin, "/orderbus/g4/leader", T, &key, NULL, 0) == 0
               && key.found && key.lease != 0,
           "the leader key carries a lease");
    CHECK (bus_etcd_lease_revoke (admin, key.lease, T, &r, NULL, 0) == 0,
           "revoked from outside");
    int64_t revoked = tk_now_ms ();
    int64_t end = revoked + 3000;
    while (bus_leader_is_leader (g) && tk_now_ms () < end)
        usleep (1000);
    int64_t took = tk_now_ms () - revoked;
    int ttl = bus_leader_ttl_ms (g);
    printf ("leader: lease revoked from outside: g stepped down %lld ms "
            "later (a renewal every %d ms)\n",
            (long long) took, ttl / 3);
    CHECK (took <= ttl / 3 + SLACK_MS,
           "at the next renewal, not the deadline: %lld ms", (long long) took);
    //  is_leader turns false first, then the callback runs
    for (end = tk_now_ms () + 1000; !lost && tk_now_ms () < end;)
        usleep (1000);
    CHECK (lost == 1, "lost callback (%d)", (int) lost);
    bus_etcd_destroy (&admin);
    bus_leader_destroy (&g);
}

//  --------------------------------------------------------------------------
//  A fake etcd whose renewals are answered late

#define S_SLOW_MS 400

static _Atomic int64_t s_slow_arrived;   //  last renewal answered: arrival
static atomic_int s_slow_answered;

static char *
s_slow_etcd (void *arg, const char *path, const char *body)
{
    (void) arg;
    (void) body;
    const char *header = "\"header\":{\"revision\":\"9\"}";
    char answer[256];
    if (streq (path, "/v3/lease/keepalive")) {
        int64_t arrived = tk_now_ms ();
        if (s_slow_answered >= 3) {
            usleep (2500 * 1000);   //  and then no answer at all
            return NULL;
        }
        usleep (S_SLOW_MS * 1000);
        s_slow_arrived = arrived;
        s_slow_answered++;
        snprintf (answer, sizeof answer,
                  "{\"result\":{%s,\"ID\":\"77\",\"TTL\":\"2\"}}", header);
    } else if (streq (path, "/v3/lease/grant"))
        snprintf (answer, sizeof answer, "{%s,\"ID\":\"77\",\"TTL\":\"2\"}",
                  header);
    else if (streq (path, "/v3/kv/txn"))
        snprintf (answer, sizeof answer, "{%s,\"succeeded\":true}", header);
    else
        snprintf (answer, sizeof answer, "{%s}", header);
    return tk_fake_answer (200, answer);
}

TK_CASE (slow)
{
    tk_fake_t *fake = tk_fake_new (s_slow_etcd, NULL);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", tk_fake_port (fake));
    bus_leader_t *f = s_candidate (url, "g3", "f");
    CHECK (s_campaign (f).leader, "f leads on the fake");
    int64_t renewed = 0;
    int64_t down = s_watch_step_down (f, 6000, &renewed);
    int ttl = bus_leader_ttl_ms (f);
    int64_t after = down - s_slow_arrived;
    int64_t want = ttl - BUS_LEADER_MARGIN (ttl);
    printf ("leader: renewals answered %d ms late: f stepped down %lld ms "
            "after etcd got its last one (TTL - margin = %lld)\n",
            S_SLOW_MS, (long long) after, (long long) want);
    CHECK (s_slow_answered == 3, "three renewals answered (%d)",
           (int) s_slow_answered);
    CHECK (after <= want + SLACK_MS,
           "counted from the send, not the answer: %lld ms <= %lld",
           (long long) after, (long long) want + SLACK_MS);
    bus_leader_destroy (&f);
    tk_fake_destroy (&fake);
}

TK_CASE (restart)
{
    bus_leader_state_t c = s_campaign (s_c);
    CHECK (c.leader, "c leads again (%s)", s_err);
    int64_t before = c.fence;
    tk_kill (s_etcd.pid, SIGKILL);
    s_etcd.pid = 0;
    int64_t renewed = 0;
    s_watch_step_down (s_c, 3000, &renewed);
    tk_etcd_start (&s_etcd, "etcd1");
    //  The old lease outlives the restart for a TTL: campaign until won
    int64_t start = tk_now_ms ();
    bus_leader_state_t state = { 0 };
    while (!state.leader && tk_now_ms () - start < 15000) {
        int rc = bus_leader_campaign (s_c, T, &state, s_err, sizeof s_err);
        if (rc == 0 && !state.leader)
            bus_leader_wait (s_c, 3000, NULL, 0);
        else if (rc)
            usleep (100000);
    }
    CHECK (state.leader && state.fence > before,
           "c leads after the restart, token %lld > %lld",
           (long long) state.fence, (long long) before);
    bus_leader_state_t a = s_campaign (s_a);
    CHECK (!a.leader && streq (a.holder, "c"), "a sees c");
    printf ("leader: etcd restarted: c leads again %lld ms later, token "
            "%lld\n",
            (long long) (tk_now_ms () - start), (long long) state.fence);
}

int
main (int argc, char **argv)
{
    if (!tk_etcd_binary ()) {
        printf ("SKIP integration_leader: no etcd binary (/usr/bin/etcd; "
                "apt-get install etcd-server, or set ETCD)\n");
        return 77;
    }
    tk_init (argc, argv, "leader");
    bus_etcd_global_init ();
    tk_etcd_start (&s_etcd, "etcd1");
    static const tk_case_t cases[] = {
        TK_CASE_ENTRY (campaign), TK_CASE_ENTRY (keepalive),
        TK_CASE_ENTRY (resign),   TK_CASE_ENTRY (sync),
        TK_CASE_ENTRY (stop),     TK_CASE_ENTRY (partition),
        TK_CASE_ENTRY (revoked),  TK_CASE_ENTRY (slow),
        TK_CASE_ENTRY (restart),  { 0 },
    };
    tk_run_cases (cases);
    bus_leader_destroy (&s_a);
    bus_leader_destroy (&s_b);
    bus_leader_destroy (&s_c);
    tk_etcd_stop (&s_etcd);
    return tk_done ();
}
