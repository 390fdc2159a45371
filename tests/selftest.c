/*  selftest.c — runs module selftests by name: `selftest codec [-v]`,
    or all of them with `selftest all` (or no name).  The modules are
    listed once, in selftests.def, which CMake also reads to register each
    as its own ctest.  */

#include <stdio.h>
#include <string.h>
#include <czmq.h>

//  Each module's selftest, declared from the list (as its header does)
#define SELFTEST(name) void bus_##name##_test (bool verbose);
#include "selftests.def"
#undef SELFTEST

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

static const s_test_t s_tests[] = {
#define SELFTEST(name) { #name, bus_##name##_test },
#include "selftests.def"
#undef SELFTEST
};

int
main (int argc, char **argv)
{
    bool verbose = argc > 2 && streq (argv[2], "-v");
    size_t n = sizeof s_tests / sizeof s_tests[0];
    for (size_t i = 0; i < n; i++) {
        if (argc < 2 || streq (argv[1], s_tests[i].name)
            || streq (argv[1], "all")) {
            printf ("selftest %s ...\n", s_tests[i].name);
            s_tests[i].test (verbose);
            printf ("selftest %s OK\n", s_tests[i].name);
            if (argc >= 2 && !streq (argv[1], "all"))
                return 0;
        }
    }
    if (argc >= 2 && !streq (argv[1], "all")) {
        fprintf (stderr,
                 "selftest: no test named '%s'; the tests are:", argv[1]);
        for (size_t i = 0; i < n; i++)
            fprintf (stderr, " %s", s_tests[i].name);
        fprintf (stderr, " (or all)\n");
        return 1;
    }
    return 0;
}
