/*  test_hosts — today's topology on many hosts (issue 16's rig): a
    writer, three gateways, two edges and a client host, each in a
    network namespace of its own (tests/tk_netns.h), every link CURVE,
    every node on its host's address.  Each case runs load from the
    client host, kitchens following both edges, and ends with the
    history check (tk_ledger_history: acknowledged => stored exactly once,
    never acknowledged => at most once, nothing no client sent) and the
    exact tally (tk_tally_check_exact: every order acknowledged, seqs
    1..N):

      load        three loads, one starting on each gateway
      cut_gateway gateway 1's link cut for 5 s under load, then healed
      cut_pair    only gateway 2 <-> writer cut for 5 s, then healed
      delay_loss  the pads' link through a proxy host ("wifi") that
                  delays every chunk 20 ms and "loses" 3 % (see
                  tk_proxy_impair): latency p50/p99 of the 201s
      join        a new gateway host and a new edge host started at run
                  time: orders through the new gateway are acknowledged,
                  and the new edge's kitchen sees the same events as the
                  old ones from its snapshot on

    Before the rig starts, a fake stale run (a namespace named for a
    process that is gone, a sleeper in it, as a crashed run's etcd):
    tk_rig_init's sweep must kill the sleeper and delete the namespace.

    Without root or namespaces the test exits 77: ctest says SKIP.  */

#define _GNU_SOURCE   //  setns
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testkit.h"
#include "tk_netns.h"

#define CHECK    TK_CHECK
#define CUT_MS   5000
#define RETRY_MS 30000   //  per order: a client retries its key this long
#define PAGE     500

//  The writer's ports on its host; gateways' and edges' HTTP ports are
//  8081.. and 8181.. (each its own number: tk_port_addr maps by number)
#define INTAKE_PORT 5551
#define EVENTS_PORT 5552
#define SYNC_PORT   5553

//  Every gateway and edge this test may start, known to the writer from
//  the start: the writer reads link/allow once (docs/security.md), so a
//  node added later must be allowed when the writer starts
static const char *const s_gateway_names[] = { "gw1", "gw2", "gw3", "gw4" };
static const char *const s_edge_names[] = { "edge1", "edge2", "edge3" };

static char s_keys[600];
static char s_intake[TK_ENDPOINT_LEN], s_events[TK_ENDPOINT_LEN],
    s_sync[TK_ENDPOINT_LEN];
static tk_node_t s_writer, s_gw[4], s_edge[3];
static int s_gw_count, s_edge_count;
static tk_host_t *s_clients, *s_wifi;
static tk_ledger_t *s_ledger;
static tk_follower_t *s_kitchen[3];

//  ---------------------------------------------------------------------
//  The topology: a node is one call, its host made with it

static char *
s_key_path (const char *name, const char *ext)
{
    char *path = malloc (700);
    snprintf (path, 700, "%s/%s.%s", s_keys, name, ext);
    return path;
}

static void
s_keys_new (const char *name, const char *role)
{
    tk_keys_new (s_keys, name, role);
}

//  Keys for every node; the gateways' and edges' public certificates
//  into the writer's allow directory
static void
s_make_keys (const char *allow)
{
    mkdir (s_keys, 0700);
    mkdir (allow, 0700);
    s_keys_new ("writer", "writer");
    for (size_t i = 0; i < 4; i++)
        s_keys_new (s_gateway_names[i], "gateway");
    for (size_t i = 0; i < 3; i++)
        s_keys_new (s_edge_names[i], "edge");
    const char *const *lists[] = { s_gateway_names, s_edge_names };
    size_t sizes[] = { 4, 3 };
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < sizes[l]; i++) {
            char *from = s_key_path (lists[l][i], "cert"), to[700];
            snprintf (to, sizeof to, "%s/%s.cert", allow, lists[l][i]);
            CHECK (link (from, to) == 0, "allow %s", from);
            free (from);
        }
}

static void
s_start_writer (void)
{
    char data[600], menu[600], allow[600];
    snprintf (data, sizeof data, "%s/writer-data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    snprintf (allow, sizeof allow, "%s/allow", tk_dir ());
    s_make_keys (allow);
    s_writer.host = tk_host_add ("writer");
    tk_host_endpoint (s_writer.host, INTAKE_PORT, s_intake);
    tk_host_endpoint (s_writer.host, EVENTS_PORT, s_events);
    tk_host_endpoint (s_writer.host, SYNC_PORT, s_sync);
    char *cert = s_key_path ("writer", "cert_secret");
    s_writer.pid = tk_host_spawn (s_writer.host, "writer", "writer", "--data",
                                  data, "--menu", menu, "--intake", s_intake,
                                  "--events", s_events, "--sync", s_sync,
                                  "--cert", cert, "--allow", allow, NULL);
    free (cert);
}

//  A new host called name with a gateway or an edge on it, healthy as
//  seen from the client host
static tk_node_t
s_start_node (const char *role, const char *name, int port)
{
    tk_node_t node = { .host = tk_host_add (name), .port = port };
    char http[16], web[600];
    snprintf (http, sizeof http, "%d", port);
    snprintf (web, sizeof web, "%s/web", tk_source ());
    char *cert = s_key_path (name, "cert_secret");
    char *writer_key = s_key_path ("writer", "cert");
    const char *addr = tk_host_addr (node.host);
    if (strcmp (role, "gateway") == 0)
        node.pid = tk_host_spawn (
            node.host, name, "gateway", "--intake", s_intake, "--events",
            s_events, "--sync", s_sync, "--listen", addr, "--http-port", http,
            "--name", name, "--cert", cert, "--writer-key", writer_key,
            "--ack-timeout-ms", "1500", NULL);
    else
        node.pid = tk_host_spawn (node.host, name, "edge", "--events", s_events,
                                  "--sync", s_sync, "--listen", addr,
                                  "--http-port", http, "--web", web, "--cert",
                                  cert, "--writer-key", writer_key, NULL);
    free (cert);
    free (writer_key);
    tk_node_wait (&node, name);
    return node;
}

static void
s_add_gateway (void)
{
    int i = s_gw_count++;
    s_gw[i] = s_start_node ("gateway", s_gateway_names[i], 8081 + i);
}

static void
s_add_edge (void)
{
    int i = s_edge_count++;
    s_edge[i] = s_start_node ("edge", s_edge_names[i], 8181 + i);
    s_kitchen[i] = tk_kitchen_new (s_edge[i].port, s_edge_names[i]);
}

//  ---------------------------------------------------------------------
//  Load and the checks every case ends with

//  threads clients per gateway in ports, each load starting on its own
//  gateway and failing over to the next; max_orders per load (0: until
//  tk_load_stop)
static void
s_loads_start (tk_load_t **loads, const int *ports, int count, int threads,
               int max_orders)
{
    tk_load_opts_t o = { .threads = threads,
                         .prefix = "h",
                         .lines = 2,
                         .max_orders = max_orders,
                         .retry_ms = RETRY_MS };
    tk_loads_start (s_ledger, loads, ports, count, &o);
}

static int *
s_gateway_ports (int *ports)
{
    for (int i = 0; i < s_gw_count; i++)
        ports[i] = s_gw[i].port;
    return ports;
}

//  The history and the tally against the store, and every kitchen at the
//  last seq with no gap and no duplicate
static void
s_check_all (const char *what)
{
    tk_tally_t t;
    tk_ledger_check (s_ledger, s_gw[0].port, PAGE, what, &t);
    tk_tally_check_exact (&t);
    for (int i = 0; i < s_edge_count; i++)
        tk_kitchen_check (what, s_kitchen[i], t.max_seq);
}

//  Load on every gateway while fault (cut) and heal run CUT_MS apart
static void
s_under_load (const char *what, void (*fault) (bool cut))
{
    int ports[4];
    tk_load_t *loads[4];
    s_loads_start (loads, s_gateway_ports (ports), s_gw_count, 2, 0);
    usleep (1000 * 1000);
    size_t before = 0, during = 0;
    for (int i = 0; i < s_gw_count; i++)
        before += tk_load_done (loads[i]);
    fault (true);
    int64_t start = tk_now_ms ();
    usleep (CUT_MS * 1000);
    int64_t cut_ms = tk_now_ms () - start;
    fault (false);
    for (int i = 0; i < s_gw_count; i++)
        during += tk_load_done (loads[i]);
    printf ("%s: cut (and checked) for %lld ms more; orders finished before "
            "it %zu, by the heal %zu\n",
            what, (long long) cut_ms, before, during);
    usleep (2000 * 1000);   //  healed, under load
    for (int i = 0; i < s_gw_count; i++)
        tk_load_stop (&loads[i]);
    s_check_all (what);
}

//  ---------------------------------------------------------------------
//  Cases

TK_CASE (load)
{
    int ports[4];
    tk_load_t *loads[4];
    int64_t start = tk_now_ms ();
    s_loads_start (loads, s_gateway_ports (ports), s_gw_count, 2, 100);
    for (int i = 0; i < s_gw_count; i++)
        tk_load_join (&loads[i]);
    int64_t ms = tk_now_ms () - start;
    tk_latency_t lat;
    tk_ledger_latency (s_ledger, start, INT64_MAX, &lat);
    printf ("load: %d orders from the client host through %d gateways in "
            "%lld ms; 201 round trip p50 %lld ms, p99 %lld ms\n",
            100 * s_gw_count, s_gw_count, (long long) ms,
            (long long) lat.p50_ms, (long long) lat.p99_ms);
    s_check_all ("load");
}

//  Does a TCP connection to port (at its host's address) open within ms?
static bool
s_reachable (int port, int ms)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) port) };
    bool open = false;
    for (int i = 0; i < s_gw_count; i++)
        if (s_gw[i].port == port)
            inet_pton (AF_INET, tk_host_addr (s_gw[i].host), &addr.sin_addr);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0)
        open = true;
    else if (errno == EINPROGRESS) {
        struct pollfd p = { fd, POLLOUT, 0 };
        int err = 0;
        socklen_t len = sizeof err;
        open = poll (&p, 1, ms) == 1
               && getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0
               && err == 0;
    }
    close (fd);
    return open;
}

static void
s_cut_gw1 (bool cut)
{
    tk_host_link (s_gw[0].host, !cut);
    //  The cut is real: gw1 cannot be reached from the client host
    //  (after the heal within 5 s: a SYN or an ARP request sent as the
    //  link comes up may be lost, and is sent again 1 s later)
    CHECK (s_reachable (s_gw[0].port, cut ? 1000 : 5000) == !cut,
           "gw1 %s from the client host with its link %s",
           cut ? "reachable" : "unreachable", cut ? "cut" : "healed");
}

TK_CASE (cut_gateway)
{
    s_under_load ("cut_gateway", s_cut_gw1);
    CHECK (tk_wait_http (s_gw[0].port, "/healthz", 200, 10000),
           "gw1 healthy after the heal");
}

static void
s_cut_gw2_writer (bool cut)
{
    tk_host_pair (s_gw[1].host, s_writer.host, !cut);
    if (cut) {
        //  The cut is real and only that pair's: gw2 still answers the
        //  clients and says the writer is unreachable, gw1 is fine
        int64_t start = tk_now_ms ();
        CHECK (tk_wait_http (s_gw[1].port, "/healthz", 503, CUT_MS),
               "gw2 says the writer is unreachable");
        printf ("cut_pair: gw2's /healthz said 503 after %lld ms\n",
                (long long) (tk_now_ms () - start));
        CHECK (tk_wait_http (s_gw[0].port, "/healthz", 200, 1000),
               "gw1 healthy while gw2 is cut from the writer");
    }
}

TK_CASE (cut_pair)
{
    s_under_load ("cut_pair", s_cut_gw2_writer);
    CHECK (tk_wait_http (s_gw[1].port, "/healthz", 200, 10000),
           "gw2 healthy after the heal");
}

TK_CASE (delay_loss)
{
    //  A proxy per gateway on the "wifi" host: the pads' link
    tk_proxy_t *proxies[4];
    int ports[4];
    tk_host_enter (s_wifi);
    for (int i = 0; i < s_gw_count; i++) {
        proxies[i] = tk_proxy_new_on (tk_host_addr (s_wifi), s_gw[i].port);
        ports[i] = tk_proxy_port (proxies[i]);
    }
    tk_host_enter (s_clients);
    tk_load_t *loads[4];
    int64_t clear_at = tk_now_ms ();
    s_loads_start (loads, ports, s_gw_count, 2, 40);
    for (int i = 0; i < s_gw_count; i++)
        tk_load_join (&loads[i]);
    int64_t impaired_at = tk_now_ms ();
    for (int i = 0; i < s_gw_count; i++)
        tk_proxy_impair (proxies[i], 20, 3);
    s_loads_start (loads, ports, s_gw_count, 2, 60);
    for (int i = 0; i < s_gw_count; i++)
        tk_load_join (&loads[i]);
    int64_t end = tk_now_ms ();
    size_t stalls = 0;
    for (int i = 0; i < s_gw_count; i++) {
        stalls += tk_proxy_stalls (proxies[i]);
        tk_proxy_destroy (&proxies[i]);
    }
    tk_latency_t clear, slow;
    tk_ledger_latency (s_ledger, clear_at, impaired_at, &clear);
    tk_ledger_latency (s_ledger, impaired_at, end, &slow);
    printf ("delay_loss: through the wifi host, clear: %zu 201s, p50 %lld "
            "ms, p99 %lld ms; 20 ms delay each way + 3%% chunks stalled "
            "200 ms (%zu stalls): %zu 201s, p50 %lld ms, p99 %lld ms, max "
            "%lld ms\n",
            clear.count, (long long) clear.p50_ms, (long long) clear.p99_ms,
            stalls, slow.count, (long long) slow.p50_ms,
            (long long) slow.p99_ms, (long long) slow.max_ms);
    //  a request and its answer each cross the proxy once
    CHECK (slow.p50_ms >= 40, "impaired p50 %lld ms < the 40 ms added",
           (long long) slow.p50_ms);
    CHECK (stalls > 0, "no chunk was stalled");
    CHECK (slow.max_ms >= 240, "slowest impaired 201 %lld ms: no stall showed",
           (long long) slow.max_ms);
    s_check_all ("delay_loss");
}

TK_CASE (join)
{
    s_add_gateway ();
    s_add_edge ();
    printf ("join: gw4 on %s and edge3 on %s started at run time\n",
            tk_host_addr (s_gw[3].host), tk_host_addr (s_edge[2].host));
    //  Every order through the new gateway, then load on all four
    int ports[4];
    tk_load_t *loads[4];
    s_loads_start (loads, &s_gw[3].port, 1, 2, 60);
    tk_load_join (&loads[0]);
    s_loads_start (loads, s_gateway_ports (ports), s_gw_count, 2, 30);
    for (int i = 0; i < s_gw_count; i++)
        tk_load_join (&loads[i]);
    s_check_all ("join");
    //  The new kitchen saw exactly the old ones' events from its start on
    for (int i = 0; i < s_edge_count; i++)
        tk_follower_stop (s_kitchen[i]);
    tk_follow_stats_t st;
    tk_follower_stats (s_kitchen[2], &st);
    size_t ref_count, count;
    const tk_event_t *ref = tk_follower_events (s_kitchen[0], &ref_count);
    for (int k = 1; k < s_edge_count; k++) {
        tk_follower_stats (s_kitchen[k], &st);
        const tk_event_t *ev = tk_follower_events (s_kitchen[k], &count);
        size_t from = 0;
        while (from < ref_count && ref[from].seq <= st.start)
            from++;
        CHECK (count == ref_count - from,
               "kitchen on %s has %zu events from seq %lld, edge1's %zu",
               s_edge_names[k], count, (long long) st.start, ref_count - from);
        size_t i = 0;
        while (i < count && ev[i].seq == ref[from + i].seq
               && ev[i].id == ref[from + i].id
               && strcmp (ev[i].key, ref[from + i].key) == 0)
            i++;
        CHECK (i == count,
               "kitchen on %s event %zu: seq %lld order %lld, edge1's seq "
               "%lld order %lld",
               s_edge_names[k], i, (long long) ev[i].seq, (long long) ev[i].id,
               (long long) ref[from + i].seq, (long long) ref[from + i].id);
        printf ("join: kitchen on %s: %zu events from seq %lld, the same as "
                "edge1's\n",
                s_edge_names[k], count, (long long) st.start);
    }
}

//  ---------------------------------------------------------------------
//  A crashed run's leftovers

//  `ip netns add ns`, quiet; whether it worked
static bool
s_ip_netns_add (const char *ns)
{
    pid_t pid = fork ();
    if (pid == 0) {
        int fd = open ("/dev/null", O_WRONLY);
        dup2 (fd, 1);
        dup2 (fd, 2);
        execl ("/usr/sbin/ip", "ip", "netns", "add", ns, (char *) NULL);
        execl ("/sbin/ip", "ip", "netns", "add", ns, (char *) NULL);
        execlp ("ip", "ip", "netns", "add", ns, (char *) NULL);
        _exit (127);
    }
    int status;
    return pid > 0 && waitpid (pid, &status, 0) == pid && WIFEXITED (status)
           && WEXITSTATUS (status) == 0;
}

//  Whether pid's network namespace is the one mounted at path
static bool
s_pid_in (pid_t pid, const char *path)
{
    char net[64];
    snprintf (net, sizeof net, "/proc/%d/ns/net", (int) pid);
    struct stat a, b;
    return stat (net, &a) == 0 && stat (path, &b) == 0 && a.st_ino == b.st_ino
           && a.st_dev == b.st_dev;
}

//  A fake stale run: namespace tkr<a gone pid>-stale (into path), a
//  sleeper in it; the sleeper's pid, or 0 if `ip` cannot make it (not
//  root, no namespaces: tk_rig_init then skips)
static pid_t
s_stale_plant (char *path, size_t cap)
{
    if (geteuid () != 0)
        return 0;
    pid_t gone = fork ();
    if (gone == 0)
        _exit (0);
    if (gone < 0 || waitpid (gone, NULL, 0) != gone)
        return 0;
    char ns[48];
    snprintf (ns, sizeof ns, "tkr%d-stale", (int) gone);
    int n = snprintf (path, cap, "/run/netns/%s", ns);
    if (n < 0 || (size_t) n >= cap || !s_ip_netns_add (ns))
        return 0;
    pid_t sleeper = fork ();
    if (sleeper == 0) {
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns (fd, CLONE_NEWNET) != 0)
            _exit (1);
        execlp ("sleep", "sleep", "600", (char *) NULL);
        _exit (127);
    }
    bool in = false;
    for (int i = 0; sleeper > 0 && !in && i < 100; i++, usleep (20 * 1000))
        in = s_pid_in (sleeper, path);
    TK_CHECK (in, "the stale run's sleeper %d runs in %s", (int) sleeper, ns);
    return sleeper;
}

//  After tk_rig_init: the sleeper killed, its namespace gone
static void
s_stale_check (pid_t sleeper, const char *path)
{
    int status = 0;
    pid_t got = 0;
    for (int i = 0; got == 0 && i < 250; i++) {
        got = waitpid (sleeper, &status, WNOHANG);
        if (got == 0)
            usleep (20 * 1000);
    }
    if (got != sleeper)
        kill (sleeper, SIGKILL);   //  not left running if the check fails
    printf ("stale: a sleeper in %s: %s, its namespace %s\n", path,
            got == sleeper && WIFSIGNALED (status) ? "killed by the sweep"
                                                   : "STILL RUNNING",
            access (path, F_OK) != 0 ? "deleted" : "STILL THERE");
    TK_CHECK (got == sleeper && WIFSIGNALED (status)
                  && WTERMSIG (status) == SIGKILL,
              "the sweep killed the stale run's sleeper %d", (int) sleeper);
    TK_CHECK (access (path, F_OK) != 0, "the sweep deleted %s", path);
}

static const tk_case_t s_cases[] = {
    TK_CASE_ENTRY (load),     TK_CASE_ENTRY (cut_gateway),
    TK_CASE_ENTRY (cut_pair), TK_CASE_ENTRY (delay_loss),
    TK_CASE_ENTRY (join),     { 0 }
};

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "hosts");
    char stale[128];
    pid_t sleeper = s_stale_plant (stale, sizeof stale);
    tk_rig_init ();
    if (sleeper > 0)
        s_stale_check (sleeper, stale);
    snprintf (s_keys, sizeof s_keys, "%s/keys", tk_dir ());
    s_ledger = tk_ledger_new ();
    s_start_writer ();
    s_clients = tk_host_add ("clients");
    s_wifi = tk_host_add ("wifi");
    //  This thread is a client from here on: the load, the followers and
    //  the checks' reads all speak from the client host
    tk_host_enter (s_clients);
    for (int i = 0; i < 3; i++)
        s_add_gateway ();
    for (int i = 0; i < 2; i++)
        s_add_edge ();
    printf ("hosts: writer %s, gateways %s %s %s, edges %s %s, clients %s, "
            "wifi %s; every link CURVE\n",
            tk_host_addr (s_writer.host), tk_host_addr (s_gw[0].host),
            tk_host_addr (s_gw[1].host), tk_host_addr (s_gw[2].host),
            tk_host_addr (s_edge[0].host), tk_host_addr (s_edge[1].host),
            tk_host_addr (s_clients), tk_host_addr (s_wifi));
    tk_run_cases (s_cases);
    for (int i = 0; i < s_edge_count; i++)
        tk_follower_destroy (&s_kitchen[i]);
    tk_ledger_destroy (&s_ledger);
    return tk_done ();
}
