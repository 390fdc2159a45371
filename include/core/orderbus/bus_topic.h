/*  bus_topic.h — topic names on the writer's PUB socket.

    Topics are the first frame of every published message and are chosen
    so that ZeroMQ's own prefix filtering does the routing:
      "E/<table>/"   a committed order or cart event of that table
      "E//menu/"     a committed menu event (no table label is empty, so
                     it cannot collide); "E/" = all events
      "A/<origin>/"  commit acks for the gateway named origin
      "H/"           writer heartbeat
    The trailing '/' keeps "A/gw1/" from matching "A/gw10/".  */

#ifndef BUS_TOPIC_H_INCLUDED
#define BUS_TOPIC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_TOPIC_EVENTS    "E/"
#define BUS_TOPIC_MENU      "E//menu/"
#define BUS_TOPIC_ACKS      "A/"
#define BUS_TOPIC_HEARTBEAT "H/"
#define BUS_TOPIC_MAX       128

/*  Write the topic of table's events / origin's acks into buf[cap].
    0, or -1 if it does not fit.  */
int bus_topic_event (char *buf, size_t cap, const char *table);
int bus_topic_ack (char *buf, size_t cap, const char *origin);

/*  Selftest.  */
void bus_topic_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
