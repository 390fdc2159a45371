/*  bench_stats.c — `orderbus-bench stats`: the counters of a writer (or
    a replica) from its sync socket, for run.sh's replica phase.

      orderbus-bench stats EP                  print the STATS JSON once
      orderbus-bench stats EP --caught-up S    wait (at most S seconds)
                                               until every replica has
                                               confirmed the writer's last
                                               seq, then print; exit 1 if
                                               one never does

    The writer refreshes its replicas' figures once a heartbeat, so a
    replica counts as caught up once a refresh says so: `confirmed` equal
    to the writer's `seq`.  A writer without replicas is never caught up
    (the phase asking for it wants one).  */

#define _GNU_SOURCE
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "orderbus/bus_sync.h"

//  One STATS query; the reply's JSON (caller owns) or NULL.
static json_t *
s_query (bus_sync_t *sync)
{
    bus_sync_req_t req = { .op = BUS_SYNC_STATS };
    bus_sync_reply_t reply;
    zmsg_t *items = NULL;
    json_t *stats = NULL;
    if (bus_sync_call (sync, &req, &reply, &items) == 0 && reply.status == 0
        && zmsg_size (items) == 1) {
        zframe_t *frame = zmsg_first (items);
        stats = json_loadb ((const char *) zframe_data (frame),
                            zframe_size (frame), 0, NULL);
    }
    zmsg_destroy (&items);
    return stats;
}

//  True when stats names at least one replica and each has confirmed
//  the writer's seq; else false, with the first one behind in why.
static bool
s_caught_up (json_t *stats, char *why, size_t why_cap)
{
    json_int_t seq = json_integer_value (json_object_get (stats, "seq"));
    json_t *replicas =
        json_object_get (json_object_get (stats, "replication"), "replicas");
    if (json_array_size (replicas) == 0) {
        snprintf (why, why_cap,
                  "the writer (seq %" JSON_INTEGER_FORMAT
                  ") has no replica attached",
                  seq);
        return false;
    }
    size_t i;
    json_t *replica;
    json_array_foreach (replicas, i, replica)
    {
        json_int_t confirmed =
            json_integer_value (json_object_get (replica, "confirmed"));
        if (confirmed != seq) {
            snprintf (why, why_cap,
                      "replica %s confirmed seq %" JSON_INTEGER_FORMAT
                      ", the writer is at %" JSON_INTEGER_FORMAT,
                      json_string_value (json_object_get (replica, "name")),
                      confirmed, seq);
            return false;
        }
    }
    return true;
}

int
bench_stats_main (int argc, char **argv)
{
    double wait_s = -1;
    if (argc == 4 && strcmp (argv[2], "--caught-up") == 0)
        wait_s = atof (argv[3]);
    else if (argc != 2) {
        fprintf (stderr, "usage: orderbus-bench stats EP [--caught-up S]\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    bus_sync_t *sync = bus_sync_new (argv[1], 2000, NULL);
    int64_t deadline = zclock_mono () + (int64_t) (wait_s * 1000);
    char why[256] = "";
    json_t *stats = NULL;
    int rc = 1;
    while (sync) {
        json_decref (stats);
        stats = s_query (sync);
        if (!stats)
            snprintf (why, sizeof why, "%s did not answer STATS", argv[1]);
        else if (wait_s < 0 || s_caught_up (stats, why, sizeof why)) {
            rc = 0;
            break;
        }
        if (wait_s < 0 || zclock_mono () >= deadline)
            break;
        zclock_sleep (100);
    }
    if (stats) {
        char *text = json_dumps (stats, JSON_COMPACT);
        if (text)
            puts (text);
        free (text);
    }
    if (rc != 0)
        fprintf (stderr, "orderbus-bench stats: %s%s\n", why,
                 wait_s >= 0 ? " (not caught up in time: it fell behind "
                               "or fell over)"
                             : "");
    json_decref (stats);
    bus_sync_destroy (&sync);
    zsys_shutdown ();
    return rc;
}
