/*  orderbus_keys.c — `orderbus keys`: the CURVE keys of a site's nodes.

      orderbus keys new --name NAME --role ROLE --out DIR
      orderbus keys public --cert FILE
      orderbus keys list --allow DIR

    `new` writes DIR/NAME.cert (public: copy it to the writer's allow
    directory, or give the writer's to its gateways and edges) and
    DIR/NAME.cert_secret (mode 0600: stays on the node's host, its
    link/cert).  `public` prints a certificate's public key, the value of
    link/writer_key.  `list` reads an allow directory as a group
    member's writer would (writers' certificates too: a lone writer
    refuses those at start) and prints who is in it.  Results go to stdout, notes and errors to
    stderr.  Exit status: 0 done, 1 a file could not be made or read, 2
    bad arguments.  docs/security.md walks through a site.  */

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <czmq.h>
#include "orderbus/bus_config.h"
#include "orderbus/bus_curve.h"
#include "orderbus/bus_error.h"
#include "orderbus_args.h"

#define S_ERR_MAX 1024

int orderbus_keys_main (int argc, char **argv);

typedef struct {
    const char *name;
    const char *role;
    const char *out;
    const char *cert;
    const char *allow;
} s_args_t;

static const orderbus_option_t s_new_options[] = {
    { "--name", "NAME", offsetof (s_args_t, name),
      "the node's name, [A-Za-z0-9_.-]{1,80}; a gateway's is its\n"
      "                    gateway/name (required)" },
    { "--role", "ROLE", offsetof (s_args_t, role),
      "writer, gateway, edge or replica (required)" },
    { "--out", "DIR", offsetof (s_args_t, out),
      "directory to write NAME.cert and NAME.cert_secret in (required)" },
};

static const orderbus_option_t s_public_options[] = {
    { "--cert", "FILE", offsetof (s_args_t, cert),
      "a certificate, public or secret (required)" },
};

static const orderbus_option_t s_list_options[] = {
    { "--allow", "DIR", offsetof (s_args_t, allow),
      "the writer's link/allow directory (required)" },
};

typedef struct {
    const char *name;
    const orderbus_option_t *options;
    size_t count;
    const char *usage;
    const char *about;
    int (*run) (const s_args_t *args, char *err);
} s_command_t;

//  ---------------------------------------------------------------------
//  The commands: each 0, or 1 with err set

static int
s_new (const s_args_t *args, char *err)
{
    bus_curve_role_t role = BUS_CURVE_WRITER;
    bus_curve_role_parse (args->role, &role);   //  s_check checked it
    bus_curve_peer_t peer;
    if (bus_curve_keys_new (args->out, args->name, role, &peer, err, S_ERR_MAX)
        != 0)
        return 1;
    printf ("%s\n", peer.key);
    fprintf (stderr,
             "orderbus keys: %s %s: wrote %s/%s.cert (public) and "
             "%s/%s.cert_secret (secret, mode 0600)\n",
             args->role, args->name, args->out, args->name, args->out,
             args->name);
    if (role == BUS_CURVE_WRITER)
        fprintf (stderr,
                 "  give %s.cert (or the key above) to every gateway "
                 "and edge: their link/writer_key\n",
                 args->name);
    else
        fprintf (stderr,
                 "  copy %s.cert into the writer's link/allow "
                 "directory, and restart the writer\n",
                 args->name);
    return 0;
}

static int
s_public (const s_args_t *args, char *err)
{
    bus_curve_peer_t peer;
    if (bus_curve_cert_read (args->cert, false, &peer, NULL, err, S_ERR_MAX)
        != 0)
        return 1;
    printf ("%s\n", peer.key);
    fprintf (stderr, "orderbus keys: %s %s\n", bus_curve_role_name (peer.role),
             peer.name);
    return 0;
}

static void
s_list_one (const bus_curve_peer_t *peer, const char *path, void *arg)
{
    (void) arg;
    printf ("%-20s %-8s %s  %s\n", peer->name, bus_curve_role_name (peer->role),
            peer->key, path);
}

static int
s_list (const s_args_t *args, char *err)
{
    printf ("%-20s %-8s %-40s  %s\n", "NAME", "ROLE", "PUBLIC KEY", "FILE");
    int count = bus_curve_allow_read (args->allow, "", s_list_one, NULL, err,
                                      S_ERR_MAX);
    if (count < 0)
        return 1;
    fprintf (stderr, "orderbus keys: %d allowed in %s\n", count, args->allow);
    return 0;
}

//  ---------------------------------------------------------------------
//  Arguments

//  What a command needs beyond the syntax; 0, or -1 with err set
static int
s_check (const s_command_t *command, const s_args_t *args, char *err)
{
    bus_curve_role_t role;
    if (command->run == s_new && (!args->name || !args->role || !args->out))
        return bus_error_set (err, S_ERR_MAX, -1,
                              "--name, --role and --out are required");
    if (command->run == s_new && bus_curve_role_parse (args->role, &role) != 0)
        return bus_error_set (err, S_ERR_MAX, -1,
                              "--role: must be writer, gateway, edge or "
                              "replica (got '%s')",
                              args->role);
    if (command->run == s_public && !args->cert)
        return bus_error_set (err, S_ERR_MAX, -1, "--cert: required");
    if (command->run == s_list && !args->allow)
        return bus_error_set (err, S_ERR_MAX, -1, "--allow: required");
    return 0;
}

static const s_command_t s_commands[] = {
    { "new", s_new_options, sizeof s_new_options / sizeof s_new_options[0],
      "new --name NAME --role ROLE --out DIR",
      "make a node's keypair: NAME.cert (public) and NAME.cert_secret "
      "(mode 0600)",
      s_new },
    { "public", s_public_options,
      sizeof s_public_options / sizeof s_public_options[0],
      "public --cert FILE",
      "print a certificate's public key (a node's link/writer_key)", s_public },
    { "list", s_list_options, sizeof s_list_options / sizeof s_list_options[0],
      "list --allow DIR",
      "check an allow directory as the writer does; print who is in it",
      s_list },
};

#define S_COMMANDS (sizeof s_commands / sizeof s_commands[0])

static void
s_usage (FILE *out)
{
    fprintf (out, "orderbus keys - CURVE keys for the links between nodes\n\n"
                  "Usage:\n");
    for (size_t i = 0; i < S_COMMANDS; i++)
        fprintf (out, "  orderbus keys %-40s %s\n", s_commands[i].usage,
                 s_commands[i].about);
    fprintf (out,
             "\n'orderbus keys <command> --help' shows a command's options.  "
             "The writer\nruns with --cert and --allow DIR, each gateway "
             "and edge with --cert and\n--writer-key; docs/security.md "
             "shows a three-host site step by step.\n");
}

static void
s_command_usage (const s_command_t *command)
{
    printf ("orderbus keys %s - %s\n\nUsage: orderbus keys %s\n\nOptions:\n",
            command->name, command->about, command->usage);
    orderbus_args_usage (command->options, command->count, 17);
    printf ("\nEach option also takes the form --option=VALUE.\n");
}

int
orderbus_keys_main (int argc, char **argv)
{
    zsys_set_logstream (stderr);
    if (argc < 2 || streq (argv[1], "-h") || streq (argv[1], "--help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const s_command_t *command = NULL;
    for (size_t i = 0; i < S_COMMANDS; i++)
        if (streq (argv[1], s_commands[i].name))
            command = &s_commands[i];
    if (!command) {
        fprintf (stderr,
                 "orderbus keys: unknown command '%s' (try 'orderbus keys "
                 "--help')\n",
                 argv[1]);
        return 2;
    }
    if (bus_config_help_wanted (argc - 1, argv + 1)) {
        s_command_usage (command);
        return 0;
    }
    s_args_t args = { 0 };
    char err[S_ERR_MAX];
    if (orderbus_args_parse (command->options, command->count, argc - 1,
                             argv + 1, &args, err, sizeof err)
            != 0
        || s_check (command, &args, err) != 0) {
        fprintf (stderr,
                 "orderbus keys %s: %s\n(try 'orderbus keys %s --help')\n",
                 command->name, err, command->name);
        return 2;
    }
    if (command->run (&args, err) != 0) {
        fprintf (stderr, "orderbus keys %s: %s\n", command->name, err);
        return 1;
    }
    return 0;
}
