/*  selftest.c — runs one module's selftest by name: `selftest codec`.
    CMake registers each module as its own ctest.  */

#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_cart.h"
#include "orderbus/bus_codec.h"
#include "orderbus/bus_compat.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_edge.h"
#include "orderbus/bus_fanout.h"
#include "orderbus/bus_wsframe.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_limit.h"
#include "orderbus/bus_menu.h"
#include "orderbus/bus_order.h"
#include "orderbus/bus_report.h"
#include "orderbus/bus_store.h"
#include "orderbus/bus_token.h"
#include "orderbus/bus_topic.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

static const s_test_t s_tests[] = {
    {"codec", bus_codec_test},   {"json", bus_json_test},
    {"menu", bus_menu_test},     {"store", bus_store_test},
    {"config", bus_config_test}, {"topic", bus_topic_test},
    {"order", bus_order_test},   {"cart", bus_cart_test},
    {"token", bus_token_test},   {"limit", bus_limit_test},
    {"compat", bus_compat_test}, {"report", bus_report_test},
    {"wsframe", bus_wsframe_test},   {"fanout", bus_fanout_test},
    {"alloc", bus_alloc_test},   {"edge", bus_edge_test},
};

int
main (int argc, char **argv)
{
    bool verbose = argc > 2 && streq (argv[2], "-v");
    size_t n = sizeof s_tests / sizeof s_tests[0];
    for (size_t i = 0; i < n; i++) {
        if (argc < 2 || streq (argv[1], s_tests[i].name) || streq (argv[1], "all")) {
            printf ("selftest %s ...\n", s_tests[i].name);
            s_tests[i].test (verbose);
            printf ("selftest %s OK\n", s_tests[i].name);
            if (argc >= 2 && !streq (argv[1], "all"))
                return 0;
        }
    }
    if (argc >= 2 && !streq (argv[1], "all")) {
        fprintf (stderr, "selftest: no test named '%s'\n", argv[1]);
        return 1;
    }
    return 0;
}
