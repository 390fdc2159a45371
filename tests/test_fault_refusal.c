/*  test_fault_refusal — a pad told "no" must never get an order anyway.

    The gateway resends a command until the writer answers.  Here the
    writer is frozen (SIGSTOP) while a pad orders an item that is 86'd and,
    a moment later, the kitchen brings the item back: the writer then sees
    the order, the un-86, and the order's resends, in that order.  The
    first copy is refused (item unavailable) and the pad is told so; the
    resends must get the same refusal rather than place the order now that
    the item is back.  */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK TK_CHECK

static int s_gw;

typedef struct {
    const char *path, *key, *body;
    int status;
    char code[32];
} s_post_t;

static void *
s_post (void *arg)
{
    s_post_t *post = (s_post_t *) arg;
    char headers[200];
    snprintf (headers, sizeof headers,
              "Content-Type: application/json\r\n"
              "Idempotency-Key: %s\r\n",
              post->key);
    tk_response_t r;
    tk_http (s_gw, "POST", post->path, headers, post->body, &r);
    post->status = r.status;
    const char *code = json_string_value (
        json_object_get (json_object_get (r.json, "error"), "code"));
    snprintf (post->code, sizeof post->code, "%s", code ? code : "");
    tk_response_free (&r);
    return NULL;
}

int
main (int argc, char **argv)
{
    tk_init (argc, argv, "fault_refusal");
    char data[600], menu[600], intake[64], events[64], sync[64], port[16];
    snprintf (data, sizeof data, "%s/data", tk_dir ());
    snprintf (menu, sizeof menu, "%s/config/demo-menu.json", tk_source ());
    tk_endpoints (intake, events, sync);
    s_gw = tk_port ();
    snprintf (port, sizeof port, "%d", s_gw);
    pid_t writer = tk_spawn_env ("writer", NULL, "writer", "--data", data,
                                 "--menu", menu, "--intake", intake, "--events",
                                 events, "--sync", sync, NULL);
    tk_spawn_env ("gateway", NULL, "gateway", "--intake", intake, "--events",
                  events, "--sync", sync, "--http-port", port, NULL);
    CHECK (tk_wait_http (s_gw, "/healthz", 200, 15000), "gateway healthy");

    s_post_t gone = { "/api/v1/menu/items/caesar/availability", "86-caesar",
                      "{\"available\":false}", 0, "" };
    s_post (&gone);
    CHECK (gone.status == 200, "86 caesar: %d", gone.status);
    //  The gateway's copy of the menu, so the order goes out at once
    tk_response_t menu_r;
    tk_http (s_gw, "GET", "/api/v1/menu", NULL, NULL, &menu_r);
    CHECK (menu_r.status == 200, "menu: %d", menu_r.status);
    tk_response_free (&menu_r);

    //  Freeze the writer; the order and the un-86 queue up behind it,
    //  and the gateway resends the order meanwhile (250 ms, 500 ms, ...)
    CHECK (kill (writer, SIGSTOP) == 0, "SIGSTOP writer");
    s_post_t order = {
        "/api/v1/orders", "refused-1",
        "{\"table\":\"T1\",\"items\":[{\"item_id\":\"caesar\",\"quantity\":1}]}",
        0, ""
    };
    s_post_t back = { "/api/v1/menu/items/caesar/availability", "back-caesar",
                      "{\"available\":true}", 0, "" };
    pthread_t order_thread, back_thread;
    pthread_create (&order_thread, NULL, s_post, &order);
    usleep (100 * 1000);
    pthread_create (&back_thread, NULL, s_post, &back);
    usleep (1200 * 1000);
    CHECK (kill (writer, SIGCONT) == 0, "SIGCONT writer");
    pthread_join (order_thread, NULL);
    pthread_join (back_thread, NULL);
    CHECK (order.status == 400 && strcmp (order.code, "item_unavailable") == 0,
           "the order is refused: %d %s", order.status, order.code);
    CHECK (back.status == 200, "caesar is back: %d", back.status);

    //  Give every resend time to reach the writer, then look
    usleep (1500 * 1000);
    tk_response_t r;
    tk_http (s_gw, "GET", "/api/v1/orders?table=T1", NULL, NULL, &r);
    CHECK (r.status == 200, "list: %d", r.status);
    size_t placed = json_array_size (json_object_get (r.json, "orders"));
    tk_response_free (&r);
    printf ("fault_refusal: refused 1 order, then %zu placed by its resends "
            "(want 0)\n",
            placed);
    CHECK (placed == 0, "a refused order was placed by a resend");
    return tk_done ();
}
