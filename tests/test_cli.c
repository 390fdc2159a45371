/*  test_cli — every program answers --help, and refuses bad flags, bad
    config files, bad menus and busy ports with a message that names the
    problem and a non-zero exit, before changing anything.  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testkit.h"

#define CHECK TK_CHECK

//  Run orderbus with up to four arguments; check status and output.
static void
s_expect (int status, const char *needle, const char *a, const char *b,
          const char *c, const char *d)
{
    char *out;
    int rc = tk_run (&out, a, b, c, d, NULL);
    CHECK (rc == status, "orderbus %s %s %s: exit %d, want %d; output:\n%s",
           a ? a : "", b ? b : "", c ? c : "", rc, status, out);
    CHECK (strstr (out, needle), "orderbus %s %s %s: output lacks '%s':\n%s",
           a ? a : "", b ? b : "", c ? c : "", needle, out);
    free (out);
}

static void
s_write (const char *path, const char *text)
{
    FILE *f = fopen (path, "w");
    CHECK (f, "cannot write %s", path);
    fputs (text, f);
    fclose (f);
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "cli");
    s_expect (0, "usage: orderbus <command>", "--help", NULL, NULL, NULL);
    s_expect (2, "usage: orderbus <command>", NULL, NULL, NULL, NULL);
    s_expect (2, "unknown command 'frobnicate'", "frobnicate", NULL, NULL,
              NULL);
    const char *roles[] = { "up", "writer", "gateway", "edge" };
    for (int i = 0; i < 4; i++) {
        char usage[64];
        snprintf (usage, sizeof usage, "orderbus %s [options]", roles[i]);
        s_expect (0, usage, roles[i], "--help", NULL, NULL);
    }
    s_expect (2, "--http-port", "gateway", "--http-port", "99999", NULL);
    s_expect (2, "does not apply to 'writer'", "writer", "--http-port", "8080",
              NULL);
    s_expect (2, "unknown option '--bogus'", "up", "--bogus", NULL, NULL);
    s_expect (2, "missing value", "up", "--data", NULL, NULL);
    s_expect (0, "verify    check every record", "--help", NULL, NULL, NULL);
    s_expect (0, "Exit status: 0 sound, 1 damaged", "verify", "--help", NULL,
              NULL);
    s_expect (2, "--data: required", "verify", NULL, NULL, NULL);
    s_expect (2, "does not apply to 'gateway'", "gateway", "--accept-restore",
              NULL, NULL);
    char none[700];
    snprintf (none, sizeof none, "%s/no-such-data", tk_dir ());
    s_expect (3, "not an orderbus data directory", "verify", "--data", none,
              NULL);

    char cfg[700], menu[700], data[700];
    snprintf (cfg, sizeof cfg, "%s/bad.cfg", tk_dir ());
    s_expect (2, "cannot read config file", "edge", "--config", cfg, NULL);
    s_write (cfg, "http\n    port = eighty\n");
    s_expect (2, "http/port", "edge", "--config", cfg, NULL);

    //  A broken menu stops the writer before it opens anything for writing
    snprintf (menu, sizeof menu, "%s/menu.json", tk_dir ());
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    s_write (menu, "{\"categories\": [{\"id\": \"mains\", \"name\": \"Mains\", "
                   "\"items\": [{\"id\": \"burger\", \"name\": \"Burger\", "
                   "\"price_cents\": -5}]}]}");
    char menu_flag[760];
    snprintf (menu_flag, sizeof menu_flag, "--menu=%s", menu);
    char data_flag[760];
    snprintf (data_flag, sizeof data_flag, "--data=%s", data);
    s_expect (1, "price_cents", "writer", data_flag, menu_flag, NULL);

    //  A busy port is named
    int port = tk_port ();
    char http[16], busy_data[760];
    snprintf (http, sizeof http, "%d", port);
    snprintf (busy_data, sizeof busy_data, "--data=%s/up", tk_dir ());
    tk_spawn ("up", "up", "--http-port", http, busy_data, NULL);
    CHECK (tk_wait_http (port, "/healthz", 200, 15000), "first up running");
    s_expect (1, "cannot start HTTP server", "gateway", "--http-port", http,
              NULL);
    return tk_done ();
}
