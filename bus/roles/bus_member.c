/*  bus_member.c — a writer-group member (bus_member.h, docs/failover.md).

    Threads:
      caller    bus_member_new / bus_member_destroy
      member    the actor: campaigns, runs the writer or the replica,
                watches the lease and the leader key (s_actor)
      intake    the writer's: s_may_publish (an atomic load and a clock
                read), s_may_go_async (an etcd call, under lock)
      keepalive bus_leader's own: s_lost (an atomic store)  */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <unistd.h>
#include <czmq.h>
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_leader.h"
#include "orderbus/bus_member.h"
#include "orderbus/bus_replica.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_writer.h"

#define S_TICK_MS     50            //  the lease is looked at this often
#define S_CALL_MS     1000          //  each etcd call's deadline
#define S_RESTART_MS  500           //  a failed standby is started again after
#define S_FAIL_LOG_MS 5000          //  an unreachable etcd is logged this often
#define S_RESYNCING   "resyncing"   //  in data_dir while copying again
#define S_ASIDE_KEEP  3             //  moved-aside dirs kept, newest

struct _bus_member_t {
    bus_config_t config;    //  the writer's settings
    bus_config_t standby;   //  the same, as the replica it follows as
    bus_leader_t *leader;   //  actor's, but for s_may_* (under lock)
    pthread_mutex_t lock;   //  guards the leader's etcd calls
    zactor_t *actor;
    bus_writer_t *writer;     //  actor only: while leading
    bus_replica_t *replica;   //  actor only: while not
    //  Under lock: /sync names the peer; may_go_async calls this run
    //  (the writer is asynchronous while its sync_recovered is lower);
    //  what the peer must confirm before it is named (the log at start)
    bool named_peer;
    uint64_t async_gen;
    uint64_t peer_need;
    atomic_bool lost;   //  the lease went (keepalive thread)
    atomic_bool failed;
    char why[BUS_ERROR_MAX];   //  written once, before failed is set
};

//  ---------------------------------------------------------------------
//  Hooks the writer calls on its intake thread

static bool
s_may_publish (void *arg)
{
    bus_member_t *self = (bus_member_t *) arg;
    return bus_leader_is_leader (self->leader);
}

//  The standby is not confirming and sync_fallback is async: before a
//  single acknowledgement goes out without it, /sync must name this node,
//  so that the standby, which lacks what is acknowledged next, cannot
//  take over.  False (keep refusing) if etcd does not take it.
static bool
s_may_go_async (void *arg)
{
    bus_member_t *self = (bus_member_t *) arg;
    char err[BUS_ERROR_MAX];
    pthread_mutex_lock (&self->lock);
    //  Before it returns true: s_name_peer, under this lock, sees that
    //  the writer is (about to be) asynchronous
    self->async_gen++;
    int rc = bus_leader_set_sync (self->leader, self->config.leader_name,
                                  S_CALL_MS, err, sizeof err);
    if (rc == 0)
        self->named_peer = false;
    else   //  not asynchronous after all: the writer refuses, and asks
        self->async_gen--;   //  again each sync timeout (one count an outage)
    pthread_mutex_unlock (&self->lock);
    if (rc != 0)
        zsys_error ("member %s: cannot name itself the sync standby (%s): "
                    "refusing orders rather than acknowledging without %s",
                    self->config.leader_name, err, self->config.sync_replica);
    else
        zsys_warning ("member %s: /sync names %s itself: %s is not "
                      "confirming, orders are acknowledged without it",
                      self->config.leader_name, self->config.leader_name,
                      self->config.sync_replica);
    return rc == 0;
}

static void
s_lost (void *arg)
{
    bus_member_t *self = (bus_member_t *) arg;
    atomic_store (&self->lost, true);
}

//  ---------------------------------------------------------------------
//  The actor's states

static void
s_fail (bus_member_t *self, const char *why)
{
    snprintf (self->why, sizeof self->why, "%s", why);
    atomic_store (&self->failed, true);
    zsys_error ("member %s: stopped: %s", self->config.leader_name, why);
    kill (getpid (), SIGTERM);   //  main's sigwait takes it
}

//  Name the configured standby in /sync once everything acknowledged is
//  on it: it confirmed the log as it was when this writer started (what
//  earlier leaders acknowledged), and the writer is not asynchronous
//  (every may_go_async call was followed by a "confirming again", for
//  which the writer checked confirmed >= last).  Until then /sync names
//  this node (s_lead), so the standby cannot take over.  Under the lock
//  may_go_async takes, so the two cannot interleave.
static void
s_name_peer (bus_member_t *self)
{
    pthread_mutex_lock (&self->lock);
    bus_writer_sync_t sync = bus_writer_sync (self->writer);
    bus_writer_stats_t stats = bus_writer_stats (self->writer);
    if (!self->named_peer && !stats.sync_down
        && sync.recovered >= self->async_gen
        && sync.confirmed >= self->peer_need) {
        char err[BUS_ERROR_MAX];
        if (bus_leader_set_sync (self->leader, self->config.sync_replica,
                                 S_CALL_MS, err, sizeof err)
            == 0) {
            self->named_peer = true;
            zsys_info ("member %s: /sync names %s (confirmed seq %" PRIu64 ")",
                       self->config.leader_name, self->config.sync_replica,
                       sync.confirmed);
        }
    }
    pthread_mutex_unlock (&self->lock);
}

//  Won: stop following after the last commit, start the writer on the
//  same store with an epoch carrying the fencing token.
static void
s_lead (bus_member_t *self)
{
    //  A lease that lapsed since the campaign leaves no fencing token:
    //  an epoch without one would not order after the next leader's
    int64_t fence = bus_leader_fence (self->leader);
    if (fence == 0) {
        char err[BUS_ERROR_MAX];
        zsys_warning ("member %s: won the lease but it lapsed before the "
                      "writer started (no fencing token): campaigning again",
                      self->config.leader_name);
        bus_leader_resign (self->leader, S_CALL_MS, err, sizeof err);
        return;
    }
    bus_replica_destroy (&self->replica);
    atomic_store (&self->lost, false);
    bus_writer_lead_t lead = { s_may_publish, s_may_go_async, self, fence };
    char err[BUS_ERROR_MAX];
    //  /sync names this node until the standby has what it has
    pthread_mutex_lock (&self->lock);
    self->named_peer = false;
    self->async_gen = 0;
    int rc = bus_leader_set_sync (self->leader, self->config.leader_name,
                                  S_CALL_MS, err, sizeof err);
    pthread_mutex_unlock (&self->lock);
    if (rc != 0) {
        zsys_error ("member %s: won the lease but cannot name itself in "
                    "/sync (%s); resigning",
                    self->config.leader_name, err);
        bus_leader_resign (self->leader, S_CALL_MS, err, sizeof err);
        zclock_sleep (S_RESTART_MS);
        return;
    }
    self->writer = bus_writer_new_led (&self->config, &lead, err, sizeof err);
    if (!self->writer) {
        //  Leading without a writer helps nobody: let another lead
        zsys_error ("member %s: won the lease but cannot start the writer: "
                    "%s; resigning",
                    self->config.leader_name, err);
        bus_leader_resign (self->leader, S_CALL_MS, err, sizeof err);
        zclock_sleep (S_RESTART_MS);
        return;
    }
    pthread_mutex_lock (&self->lock);
    self->peer_need = bus_writer_sync (self->writer).last;
    pthread_mutex_unlock (&self->lock);
    zsys_info ("member %s: leading group %s, fencing token %" PRId64
               "; /sync names it until %s confirms seq %" PRIu64,
               self->config.leader_name, self->config.leader_group, fence,
               self->config.sync_replica, self->peer_need);
    s_name_peer (self);
}

//  The lease went: close the writer's sockets at once, and follow.
static void
s_step_down (bus_member_t *self)
{
    zsys_warning ("member %s: lost the lease: stopping the writer, "
                  "following the new leader",
                  self->config.leader_name);
    bus_writer_destroy (&self->writer);
    char err[BUS_ERROR_MAX];
    bus_leader_resign (self->leader, S_CALL_MS, err, sizeof err);
}

//  fsync the directory that holds path, so that a rename in it is
//  durable.  0 or -1 (errno).
static int
s_sync_parent (const char *path)
{
    char copy[BUS_PATH_MAX];
    bus_strlcpy (copy, path, sizeof copy);
    int fd = open (dirname (copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

//  The moved-aside time (ms) of a "<base>.discarded-<epoch>-<ms>" name,
//  or -1 if name is not one of base's
static int64_t
s_aside_ms (const char *name, const char *base)
{
    size_t len = strlen (base);
    if (strncmp (name, base, len) || strncmp (name + len, ".discarded-", 11))
        return -1;
    const char *dash = strrchr (name, '-');
    return dash ? strtoll (dash + 1, NULL, 10) : -1;
}

//  Keep the newest S_ASIDE_KEEP moved-aside directories of data_dir: a
//  member that flaps would fill the disk with copies otherwise.
static void
s_prune_aside (bus_member_t *self)
{
    char copy[BUS_PATH_MAX], parent[BUS_PATH_MAX];
    bus_strlcpy (copy, self->config.data_dir, sizeof copy);
    bus_strlcpy (parent, dirname (copy), sizeof parent);
    bus_strlcpy (copy, self->config.data_dir, sizeof copy);
    const char *base = basename (copy);
    for (bool again = true; again;) {
        again = false;
        int count = 0;
        int64_t oldest = INT64_MAX;
        char victim[BUS_PATH_MAX + 256] = "";
        DIR *dir = opendir (parent);
        struct dirent *entry;
        while (dir && (entry = readdir (dir))) {
            int64_t ms = s_aside_ms (entry->d_name, base);
            if (ms < 0)
                continue;
            count++;
            if (ms < oldest) {
                oldest = ms;
                snprintf (victim, sizeof victim, "%s/%s", parent,
                          entry->d_name);
            }
        }
        if (dir)
            closedir (dir);
        if (count <= S_ASIDE_KEEP || !*victim)
            break;
        //  An LMDB directory: files only (data.mdb, lock.mdb, a marker)
        DIR *old = opendir (victim);
        while (old && (entry = readdir (old))) {
            char file[sizeof victim + 256];
            snprintf (file, sizeof file, "%s/%s", victim, entry->d_name);
            if (*entry->d_name != '.')
                unlink (file);
        }
        if (old)
            closedir (old);
        again = rmdir (victim) == 0;
        if (again)
            zsys_info ("member %s: removed %s (the newest %d moved-aside "
                       "directories are kept)",
                       self->config.leader_name, victim, S_ASIDE_KEEP);
        else
            zsys_warning ("member %s: cannot remove %s: %s",
                          self->config.leader_name, victim, strerror (errno));
    }
}

//  Move the data directory aside, kept: its tail was never acknowledged
//  (the leader, which holds every acknowledged order, calls it ahead or
//  diverged).  0, or -1 with the member failed.
static int
s_discard (bus_member_t *self, const char *why)
{
    char aside[BUS_PATH_MAX + 64];
    bus_epoch_t epoch = { 0 };
    uint64_t last = 0;
    int rc;
    bus_store_t *store = bus_store_open_readonly (self->config.data_dir, &rc);
    if (store) {
        bus_store_epoch (store, &epoch);
        last = bus_store_last_seq (store);
        bus_store_destroy (&store);
    }
    snprintf (aside, sizeof aside, "%s.discarded-%016" PRIx64 "-%" PRId64,
              self->config.data_dir, epoch.epoch, (int64_t) zclock_time ());
    if (rename (self->config.data_dir, aside) != 0) {
        char reason[BUS_ERROR_MAX];
        bus_error_set (reason, sizeof reason, -1,
                       "cannot move the data directory aside to %s: %s", aside,
                       strerror (errno));
        s_fail (self, reason);
        return -1;
    }
    if (s_sync_parent (aside) != 0)
        zsys_warning ("member %s: cannot fsync the directory of %s: %s",
                      self->config.leader_name, aside, strerror (errno));
    zsys_warning ("member %s: DISCARDED its unacknowledged tail: data "
                  "directory (epoch %016" PRIx64 ", log up to seq %" PRIu64
                  ") moved aside to %s (%s); following the leader from "
                  "scratch",
                  self->config.leader_name, epoch.epoch, last, aside, why);
    //  Until it has the leader's log again it must not lead, even if it
    //  was the named standby and the leader dies (or this process
    //  restarts) mid-copy: the marker survives both
    char marker[BUS_PATH_MAX + 16];
    snprintf (marker, sizeof marker, "%s/" S_RESYNCING, self->config.data_dir);
    FILE *file = NULL;
    if ((mkdir (self->config.data_dir, 0700) != 0 && errno != EEXIST)
        || !(file = fopen (marker, "w")) || fclose (file) != 0) {
        char reason[BUS_ERROR_MAX];
        bus_error_set (reason, sizeof reason, -1, "cannot write %s: %s", marker,
                       strerror (errno));
        s_fail (self, reason);
        return -1;
    }
    s_prune_aside (self);
    return 0;
}

//  True while the data directory holds the marker of s_discard: it is
//  removed once the standby has caught up with a leader it hears.
static bool
s_resyncing (bus_member_t *self)
{
    char marker[BUS_PATH_MAX + 16];
    snprintf (marker, sizeof marker, "%s/" S_RESYNCING, self->config.data_dir);
    if (access (marker, F_OK) != 0)
        return false;
    if (!self->replica)
        return true;
    bus_replica_stats_t stats = bus_replica_stats (self->replica);
    bool caught_up = stats.seq >= stats.writer_seq && stats.heard_ms_ago >= 0
                     && stats.heard_ms_ago < self->config.link_timeout_ms;
    if (!caught_up || unlink (marker) != 0)
        return true;
    zsys_info ("member %s: caught up at seq %" PRIu64 " after a resync: "
               "may lead again",
               self->config.leader_name, stats.seq);
    return false;
}

//  Not leading: the standby runs; restarted from scratch if its log is
//  the leader's no more.
static void
s_follow (bus_member_t *self)
{
    char why[BUS_ERROR_MAX + 64];
    bus_replica_failure_t failure =
        bus_replica_failed (self->replica, why, sizeof why);
    if (failure) {
        bus_replica_destroy (&self->replica);
        if (failure != BUS_REPLICA_DIVERGED) {
            s_fail (self, why);   //  another store, or a pruned history
            return;
        }
        if (s_discard (self, why) != 0)
            return;
    }
    if (self->replica)
        return;
    char err[BUS_ERROR_MAX];
    self->replica =
        bus_replica_new_standby (&self->standby, true, err, sizeof err);
    if (!self->replica) {
        zsys_error ("member %s: cannot follow: %s", self->config.leader_name,
                    err);
        zclock_sleep (S_RESTART_MS);
    }
}

//  One campaign, and the wait for the leader key to change if lost.
static void
s_campaign (bus_member_t *self, int64_t *failing_logged)
{
    bus_leader_state_t state;
    char err[BUS_ERROR_MAX];
    if (s_resyncing (self)) {   //  a partial copy never campaigns
        s_follow (self);
        zclock_sleep (S_TICK_MS * 4);
        return;
    }
    pthread_mutex_lock (&self->lock);
    int rc =
        bus_leader_campaign (self->leader, S_CALL_MS, &state, err, sizeof err);
    pthread_mutex_unlock (&self->lock);
    if (rc != 0) {
        if (zclock_mono () - *failing_logged > S_FAIL_LOG_MS) {
            zsys_error ("member %s: cannot campaign: %s",
                        self->config.leader_name, err);
            *failing_logged = zclock_mono ();
        }
        //  Cut off from etcd, a standby still follows whoever leads
        s_follow (self);
        zclock_sleep (S_TICK_MS * 4);
        return;
    }
    if (state.leader) {
        s_lead (self);
        return;
    }
    s_follow (self);
    //  A watch from what the campaign read: nothing in between is missed
    rc = bus_leader_wait (self->leader, S_TICK_MS * 10, err, sizeof err);
    if (rc != 0 && rc != BUS_ERR_TIMEOUT)
        zclock_sleep (S_TICK_MS);
}

static bool
s_pipe_term (zsock_t *pipe)
{
    zmsg_t *msg = zmsg_recv_nowait (pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr (msg);
    bool term = command && streq (command, "$TERM");
    free (command);
    zmsg_destroy (&msg);
    return term;
}

static void
s_actor (zsock_t *pipe, void *args)
{
    bus_member_t *self = (bus_member_t *) args;
    zsock_signal (pipe, 0);
    int64_t failing_logged = 0;
    zpoller_t *poller = zpoller_new (pipe, NULL);
    while (!atomic_load (&self->failed)) {
        if (zpoller_wait (poller, 0) == pipe && s_pipe_term (pipe))
            break;
        if (self->writer) {
            if (atomic_load (&self->lost)
                || !bus_leader_is_leader (self->leader))
                s_step_down (self);
            else {
                s_name_peer (self);
                if (zpoller_wait (poller, S_TICK_MS) == pipe
                    && s_pipe_term (pipe))
                    break;
            }
            continue;
        }
        s_campaign (self, &failing_logged);
    }
    zpoller_destroy (&poller);
    bus_writer_destroy (&self->writer);
    bus_replica_destroy (&self->replica);
}

//  ---------------------------------------------------------------------

bus_member_t *
bus_member_new (const bus_config_t *config, char *err, size_t err_cap)
{
    bus_member_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    self->config = *config;
    //  As a standby: a replica named as in the group, following the
    //  other members' replicate endpoints (only the leader binds one)
    self->standby = *config;
    self->standby.role = BUS_ROLE_REPLICA;
    bus_strlcpy (self->standby.name, config->leader_name,
                 sizeof self->standby.name);
    bus_strlcpy (self->standby.replicate, config->leader_peers,
                 sizeof self->standby.replicate);
    *self->standby.replica_sync = '\0';
    //  The keys are checked now, not at the first takeover (the writer's
    //  allow-list with them when it leads: bus_curve_new again)
    bus_curve_t *keys = bus_curve_new (&self->standby, err, err_cap);
    if (!keys) {
        bus_member_destroy (&self);
        return NULL;
    }
    bus_curve_destroy (&keys);
    bus_etcd_tls_t tls = { config->leader_etcd_ca, config->leader_etcd_cert,
                           config->leader_etcd_key };
    bool has_tls = *config->leader_etcd_ca || *config->leader_etcd_cert;
    bus_leader_config_t leader = {
        config->leader_etcd,  config->insecure_etcd, has_tls ? &tls : NULL,
        config->leader_group, config->leader_name,   config->leader_ttl_s,
    };
    self->leader = bus_leader_new (&leader, err, err_cap);
    if (!self->leader) {
        bus_member_destroy (&self);
        return NULL;
    }
    bus_leader_on_lost (self->leader, s_lost, self);
    zsys_info ("member %s: group %s, etcd %s, peers %s", config->leader_name,
               config->leader_group, config->leader_etcd, config->leader_peers);
    self->actor = zactor_new (s_actor, self);
    if (!self->actor) {
        snprintf (err, err_cap, "cannot start the member's thread");
        bus_member_destroy (&self);
        return NULL;
    }
    return self;
}

void
bus_member_destroy (bus_member_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_member_t *self = *self_p;
    zactor_destroy (&self->actor);
    bus_leader_destroy (&self->leader);   //  resigns if leader
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

bool
bus_member_failed (bus_member_t *self, char *why, size_t why_cap)
{
    if (!self || !atomic_load (&self->failed))
        return false;
    snprintf (why, why_cap, "%s", self->why);
    return true;
}
