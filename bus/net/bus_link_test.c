/*  bus_link_test.c — selftest of bus_link's epoch rule: an older epoch
    than the newest heard is ignored, until the newest's writer has been
    silent for link/timeout_ms.  */

#include <assert.h>
#include "orderbus/bus_link.h"

static bus_heartbeat_t
s_beat (uint64_t epoch)
{
    bus_heartbeat_t hb = { .seq = 1,
                           .writer = { .id = "0123456789abcdef0123"
                                             "456789abcdef",
                                       .epoch = epoch } };
    return hb;
}

void
bus_link_test (bool verbose)
{
    if (verbose)
        printf (" * bus_link:\n");
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
    snprintf (config.sync, sizeof config.sync, "inproc://link-test-none");
    config.heartbeat_ms = 100;
    config.link_timeout_ms = 300;
    bus_link_t *link = bus_link_new (&config, NULL, "test", "t");
    assert (link);
    //  A leader with a clock ahead leads briefly (epoch 9), then one
    //  whose epoch is numerically lower (5) takes over
    bus_heartbeat_t nine = s_beat (9), five = s_beat (5);
    assert (!bus_link_older (link, &nine.writer, "a heartbeat"));
    bus_link_heard (link, &nine, NULL);
    //  While 9 is heard from, 5 is a deposed writer's: ignored
    assert (bus_link_older (link, &five.writer, "a heartbeat"));
    //  9 silent for link/timeout_ms: forgotten, 5 is taken
    zclock_sleep (config.link_timeout_ms + 100);
    assert (!bus_link_older (link, &five.writer, "a heartbeat"));
    bus_link_heard (link, &five, NULL);
    bus_heartbeat_t four = s_beat (4);
    assert (bus_link_older (link, &four.writer, "a heartbeat"));
    bus_link_destroy (&link);
    if (verbose)
        printf ("   an older epoch ignored while the newest is heard, "
                "taken once it is silent: OK\n");
}
