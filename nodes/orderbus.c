/*  orderbus — one program, one subcommand per role.

      orderbus up       all-in-one: writer + gateway + edge, one port
      orderbus writer   the LMDB writer
      orderbus gateway  HTTP API for pads
      orderbus edge     WebSocket bridge and pages for browsers
      orderbus token / export / keys / tls / verify   tools (their own
                        files)  */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_alloc.h"
#include "orderbus/bus_config.h"
#include "orderbus/bus_node.h"

//  `orderbus token`, in orderbus_token.c; `orderbus export`, in
//  orderbus_export.c; `orderbus keys`, in orderbus_keys.c; `orderbus
//  tls`, in orderbus_tls.c
int orderbus_token_main (int argc, char **argv, const char *share_dir);
int orderbus_export_main (int argc, char **argv);
int orderbus_keys_main (int argc, char **argv);
int orderbus_tls_main (int argc, char **argv);
int orderbus_verify_main (int argc, char **argv);

static void
s_usage (FILE *out)
{
    fprintf (out,
             "orderbus %s — a brokerless real-time order bus for restaurants\n"
             "\n"
             "usage: orderbus <command> [options]\n"
             "\n"
             "commands:\n"
             "  up        run writer, gateway and edge in one process (demo)\n"
             "  writer    run the LMDB writer (one per site)\n"
             "  gateway   run an HTTP gateway for table pads\n"
             "  edge      run a WebSocket edge for browsers\n"
             "  replica   follow the writer's log into a store of its own\n"
             "  token     mint an access token for a pad or a staff screen\n"
             "  export    write the orders of a time range as CSV\n"
             "  keys      make and list the CURVE keys of the node links\n"
             "  tls       make a self-signed HTTPS certificate for a test\n"
             "  verify    check every record of a data directory\n"
             "\n"
             "'orderbus <command> --help' lists a command's options;\n"
             "docs/configuration.md describes them all.\n",
             ORDERBUS_VERSION);
}

static int
s_role (const char *name, bus_role_t *role)
{
    static const bus_role_t roles[] = { BUS_ROLE_UP, BUS_ROLE_WRITER,
                                        BUS_ROLE_GATEWAY, BUS_ROLE_EDGE,
                                        BUS_ROLE_REPLICA };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (streq (name, bus_role_name (roles[i]))) {
            *role = roles[i];
            return 0;
        }
    return -1;
}

int
main (int argc, char **argv)
{
    if (argc < 2 || streq (argv[1], "-h") || streq (argv[1], "--help")
        || streq (argv[1], "help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (streq (argv[1], "--version")) {
        printf ("orderbus %s (%s)\n", ORDERBUS_VERSION, bus_alloc_name ());
        return 0;
    }
    if (streq (argv[1], "token"))
        return orderbus_token_main (argc - 1, argv + 1, ORDERBUS_SHARE_DIR);
    if (streq (argv[1], "export"))
        return orderbus_export_main (argc - 1, argv + 1);
    if (streq (argv[1], "keys"))
        return orderbus_keys_main (argc - 1, argv + 1);
    if (streq (argv[1], "tls"))
        return orderbus_tls_main (argc - 1, argv + 1);
    if (streq (argv[1], "verify"))
        return orderbus_verify_main (argc - 1, argv + 1);
    bus_role_t role;
    if (s_role (argv[1], &role) != 0) {
        fprintf (stderr,
                 "orderbus: unknown command '%s' (try 'orderbus --help')\n",
                 argv[1]);
        return 2;
    }
    bus_config_t config;
    char err[512];
    bus_config_defaults (&config, role, ORDERBUS_SHARE_DIR);
    if (bus_config_parse (&config, argc - 1, argv + 1, err, sizeof err) != 0) {
        fprintf (stderr, "orderbus %s: %s\n(try 'orderbus %s --help')\n",
                 argv[1], err, argv[1]);
        return 2;
    }
    if (config.help) {
        bus_config_usage (role);
        return 0;
    }
    //  Only bus_node_run's sigwait receives these: every thread started
    //  from here on inherits the mask.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);
    zsys_set_logstream (stderr);
    zsys_set_logident (argv[1]);
    if (!config.verbose)
        zsys_set_logsender (NULL);
    int status = bus_node_run (&config);
    zsys_shutdown ();
    return status;
}
