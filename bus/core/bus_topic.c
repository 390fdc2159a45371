/*  bus_topic.c — topic names on the writer's PUB socket.  */

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "orderbus/bus_topic.h"

static int
s_format (char *buf, size_t cap, const char *prefix, const char *name)
{
    size_t plen = strlen (prefix), nlen = strlen (name);
    if (plen + nlen + 2 > cap)
        return -1;
    memcpy (buf, prefix, plen);
    memcpy (buf + plen, name, nlen);
    memcpy (buf + plen + nlen, "/", 2);
    return 0;
}

int
bus_topic_event (char *buf, size_t cap, const char *table)
{
    return s_format (buf, cap, BUS_TOPIC_EVENTS, table);
}

int
bus_topic_ack (char *buf, size_t cap, const char *origin)
{
    return s_format (buf, cap, BUS_TOPIC_ACKS, origin);
}

void
bus_topic_test (bool verbose)
{
    char buf[BUS_TOPIC_MAX];
    assert (bus_topic_event (buf, sizeof buf, "T12") == 0);
    assert (strcmp (buf, "E/T12/") == 0);
    assert (strncmp (buf, BUS_TOPIC_EVENTS, strlen (BUS_TOPIC_EVENTS)) == 0);
    assert (bus_topic_ack (buf, sizeof buf, "gw1") == 0);
    assert (strcmp (buf, "A/gw1/") == 0);
    //  gw1's subscription must not match gw10's acks
    char other[BUS_TOPIC_MAX];
    assert (bus_topic_ack (other, sizeof other, "gw10") == 0);
    assert (strncmp (other, buf, strlen (buf)) != 0);
    char small[6];
    assert (bus_topic_ack (small, sizeof small, "gw10") == -1);
    if (verbose)
        printf ("topic: %s %s\n", buf, other);
}
