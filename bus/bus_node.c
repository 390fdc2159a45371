/*  bus_node.c — start a role, wait for a signal, stop it.  */

#include <signal.h>
#include <czmq.h>
#include "orderbus/bus_edge.h"
#include "orderbus/bus_gateway.h"
#include "orderbus/bus_http.h"
#include "orderbus/bus_node.h"
#include "orderbus/bus_writer.h"

typedef struct {
    const bus_config_t *config;
    bus_writer_t *writer;
    struct mg_context *http;
    bus_gateway_t *gateway;
    bus_edge_t *edge;
} s_node_t;

static bool
s_has (const s_node_t *node, bus_role_t role)
{
    return node->config->role == role || node->config->role == BUS_ROLE_UP;
}

static int
s_handle_health (struct mg_connection *conn, void *cbdata)
{
    s_node_t *node = (s_node_t *) cbdata;
    bool ok = true, part_ok;
    json_t *body = json_pack ("{s:s}", "role", bus_role_name (node->config->role));
    if (node->gateway) {
        json_object_set_new (body, "gateway",
                             bus_gateway_health (node->gateway, &part_ok));
        ok = ok && part_ok;
    }
    if (node->edge) {
        json_object_set_new (body, "edge", bus_edge_health (node->edge, &part_ok));
        ok = ok && part_ok;
    }
    json_object_set_new (body, "status", json_string (ok ? "ok" : "unavailable"));
    int status = bus_http_send_json (conn, ok ? 200 : 503, body, NULL);
    json_decref (body);
    return status;
}

static int
s_start (s_node_t *node, char *err, size_t err_cap)
{
    const bus_config_t *config = node->config;
    if (s_has (node, BUS_ROLE_WRITER)
        && !(node->writer = bus_writer_new (config, err, err_cap)))
        return -1;
    if (config->role == BUS_ROLE_WRITER)
        return 0;
    node->http = bus_http_start (config, config->role != BUS_ROLE_GATEWAY, err,
                                 err_cap);
    if (!node->http)
        return -1;
    if (s_has (node, BUS_ROLE_GATEWAY)
        && !(node->gateway = bus_gateway_new (config, node->http, err, err_cap)))
        return -1;
    if (s_has (node, BUS_ROLE_EDGE)
        && !(node->edge = bus_edge_new (config, node->http, err, err_cap)))
        return -1;
    mg_set_request_handler (node->http, "/healthz", s_handle_health, node);
    return 0;
}

//  The server goes first: its handlers use the gateway and the edge.
static void
s_stop (s_node_t *node)
{
    bus_http_stop (&node->http);
    bus_edge_destroy (&node->edge);
    bus_gateway_destroy (&node->gateway);
    bus_writer_destroy (&node->writer);
}

static void
s_print_urls (const bus_config_t *config)
{
    const char *host = config->http_listen;
    int port = config->http_port;
    printf ("orderbus is up.  Open:\n"
            "  kitchen display   http://%s:%d/kitchen\n"
            "  menu (JSON)       http://%s:%d/api/v1/menu\n"
            "  orders (JSON)     http://%s:%d/api/v1/orders\n"
            "  live events       ws://%s:%d/ws\n"
            "  health            http://%s:%d/healthz\n"
            "Data in %s.  Ctrl-C stops.\n",
            host, port, host, port, host, port, host, port, host, port,
            config->data_dir);
    fflush (stdout);
}

int
bus_node_run (const bus_config_t *config)
{
    s_node_t node = {config, NULL, NULL, NULL, NULL};
    char err[512] = "";
    if (s_start (&node, err, sizeof err) != 0) {
        fprintf (stderr, "orderbus %s: %s\n", bus_role_name (config->role), err);
        s_stop (&node);
        return 1;
    }
    if (config->role == BUS_ROLE_UP)
        s_print_urls (config);
    zsys_info ("%s: running", bus_role_name (config->role));
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    int sig = 0;
    sigwait (&signals, &sig);
    zsys_info ("%s: %s received, stopping", bus_role_name (config->role),
               sig == SIGINT ? "SIGINT" : "SIGTERM");
    s_stop (&node);
    return 0;
}
