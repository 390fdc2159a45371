/*  bus_sites_test.c — bus_sites' file of sites: what it reads, and every
    refusal naming the file, the site and the key.  No part is started.  */

#include <czmq.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_sites.h"

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

//  The sites file text for a and b, secrets in dir
static void
s_site_text (char *text, size_t cap, const char *dir, const char *extra)
{
    snprintf (text, cap,
              "a\n"
              "    endpoints\n"
              "        intake = tcp://127.0.0.1:6555\n"
              "        events = tcp://127.0.0.1:6556\n"
              "        sync = tcp://127.0.0.1:6557\n"
              "    auth\n"
              "        secret_file = %s/a.secret\n"
              "b.bistro\n"
              "    endpoints/intake = tcp://127.0.0.1:7555\n"
              "    endpoints/events = tcp://127.0.0.1:7556\n"
              "    endpoints/sync = tcp://127.0.0.1:7557\n"
              "    link\n"
              "        writer_key = %s/b.cert\n"
              "    auth/secret_file = %s/b.secret\n"
              "%s",
              dir, dir, dir, extra);
}

static void
s_test_good (const char *dir, const char *file)
{
    char text[2048], err[BUS_ERROR_MAX];
    s_site_text (text, sizeof text, dir, "");
    s_write (file, text);
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
    snprintf (config.sites_file, sizeof config.sites_file, "%s", file);
    config.http_port = 9123;
    bus_sites_t *sites = bus_sites_new (&config, err, sizeof err);
    if (!sites)
        fprintf (stderr, "%s\n", err);
    assert (sites && bus_sites_count (sites) == 2);
    const bus_config_t *a = bus_sites_config (sites, 0);
    const bus_config_t *b = bus_sites_config (sites, 1);
    assert (streq (a->site, "a") && streq (b->site, "b.bistro"));
    assert (streq (a->intake, "tcp://127.0.0.1:6555"));
    assert (streq (b->sync, "tcp://127.0.0.1:7557"));
    assert (a->writer_key[0] == '\0' && strstr (b->writer_key, "b.cert"));
    assert (strstr (a->secret_file, "a.secret"));
    assert (a->http_port == 9123 && b->http_port == 9123);   //  the node's
    bus_auth_t *auth = bus_sites_auth (sites);
    assert (bus_auth_site_count (auth) == 2);
    assert (bus_auth_site_index (auth, "b.bistro") == 1);
    assert (bus_auth_site_index (auth, "main") == -1);
    assert (bus_sites_config (sites, 2) == NULL);
    bus_sites_destroy (&sites);
    bus_sites_destroy (&sites);

    //  One site: the node's own settings, its site/name
    bus_config_defaults (&config, BUS_ROLE_EDGE, NULL);
    snprintf (config.secret_file, sizeof config.secret_file, "%s/a.secret",
              dir);
    sites = bus_sites_new (&config, err, sizeof err);
    assert (sites && bus_sites_count (sites) == 1);
    assert (streq (bus_auth_site_name (bus_sites_auth (sites), 0), "main"));
    bus_sites_destroy (&sites);
}

//  Each bad file (or setting) refused with both words in the message
static void
s_test_refusals (const char *dir, const char *file, bool verbose)
{
    static const struct {
        const char *extra;   //  after a and b.bistro
        bool replace;        //  the whole file instead
        const char *what, *why;
    } cases[] = {
        { "c\n    http\n        port = 1\n", false, "site 'c': http/port",
          "not a key of a site" },
        { "c\n    endpoints/intake = tcp://x:1\n    endpoints/events = "
          "tcp://x:2\n    auth/secret_file = /nope\n",
          false, "site 'c': endpoints/sync", "missing" },
        { "c\n    endpoints/events = udp://x\n", false,
          "site 'c': endpoints/events", "tcp://, ipc:// or inproc://" },
        { "c/d\n    endpoints/sync = tcp://x:1\n", true, "site 'c/d'",
          "1 to 80" },
        { "a\n    endpoints/sync = tcp://x:1\n", false, "site 'a'",
          "given twice" },
        { "c\n    endpoints\n        intake = tcp://x:1\n        intake = "
          "tcp://x:2\n",
          false, "site 'c': endpoints/intake", "set twice" },
        { "c\n    endpoints/intake = tcp://x:1\n    endpoints/events = "
          "tcp://x:2\n    endpoints/sync = tcp://x:3\n    auth/secret_file "
          "= /nonexistent/c.secret\n",
          false, "site 'c': auth/secret_file: /nonexistent/c.secret",
          "cannot read secret file" },
        { "", true, "0 sites", "1 to 256" },
        { "a = 1\n", true, "site 'a'", "takes no value" },
        { "c\n    endpoints = x\n        sync = tcp://x:1\n", false,
          "site 'c': endpoints", "is a section and takes no value" },
        { "a\n  endpoints\n", true, "site/file", "cannot read" },
    };
    char text[4096], err[BUS_ERROR_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].replace)
            snprintf (text, sizeof text, "%s", cases[i].extra);
        else
            s_site_text (text, sizeof text, dir, cases[i].extra);
        s_write (file, text);
        bus_config_t config;
        bus_config_defaults (&config, BUS_ROLE_GATEWAY, NULL);
        snprintf (config.sites_file, sizeof config.sites_file, "%s", file);
        assert (bus_sites_new (&config, err, sizeof err) == NULL);
        if (verbose)
            printf ("    %s\n", err);
        if (!strstr (err, cases[i].what) || !strstr (err, cases[i].why))
            fprintf (stderr, "case %zu: %s\n", i, err);
        assert (strstr (err, cases[i].what) && strstr (err, cases[i].why));
    }
    //  257 sites: more than a node serves
    char *big = malloc (257 * 40 + 1);
    assert (big);
    big[0] = '\0';
    for (int i = 0; i < 257; i++)
        sprintf (big + strlen (big), "s%d\n    endpoints/sync = tcp://x:1\n",
                 i);
    s_write (file, big);
    free (big);
    bus_config_t config;
    bus_config_defaults (&config, BUS_ROLE_EDGE, NULL);
    snprintf (config.sites_file, sizeof config.sites_file, "%s", file);
    assert (bus_sites_new (&config, err, sizeof err) == NULL);
    assert (strstr (err, "257 sites") && strstr (err, "1 to 256"));

    //  The node's own secret, or running open, beside the file: no
    s_site_text (text, sizeof text, dir, "");
    s_write (file, text);
    snprintf (config.secret_file, sizeof config.secret_file, "%s/a.secret",
              dir);
    assert (bus_sites_new (&config, err, sizeof err) == NULL);
    assert (strstr (err, "auth/secret_file") && strstr (err, "contradict"));
    config.secret_file[0] = '\0';
    config.insecure_no_auth = 1;
    assert (bus_sites_new (&config, err, sizeof err) == NULL);
    assert (strstr (err, "auth/insecure_no_auth")
            && strstr (err, "contradict"));
}

void
bus_sites_test (bool verbose)
{
    printf (" * bus_sites: ");
    if (verbose)
        printf ("\n");
    char dir[] = "/tmp/orderbus-sites-test-XXXXXX";
    assert (mkdtemp (dir));
    char path[256], file[256], err[BUS_ERROR_MAX];
    snprintf (path, sizeof path, "%s/a.secret", dir);
    assert (bus_secret_create (path, err, sizeof err) == 0);
    snprintf (path, sizeof path, "%s/b.secret", dir);
    assert (bus_secret_create (path, err, sizeof err) == 0);
    snprintf (file, sizeof file, "%s/sites.cfg", dir);
    s_test_good (dir, file);
    s_test_refusals (dir, file, verbose);
    zdir_t *tree = zdir_new (dir, NULL);
    assert (tree);
    zdir_remove (tree, true);
    zdir_destroy (&tree);
    printf ("OK\n");
}
