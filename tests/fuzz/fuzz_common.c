/*  fuzz_common.c — the readers every fuzz target checks accepted input
    against (fuzz.h).  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_json.h"
#include "orderbus/bus_wsframe.h"
#include "fuzz.h"
#include "ws_client.h"

//  Scratch for decoding again: the structs are tens of KB
static bus_order_t s_order;
static bus_cart_t s_cart;
static bus_event_t s_event;

void
fuzz_render_order (const bus_order_t *order)
{
    json_t *json = bus_json_order (order);
    FUZZ_CHECK (json);
    char *text = bus_json_dump (json);
    FUZZ_CHECK (text);
    size_t len = bus_json_order_write (order, NULL, 0);
    FUZZ_CHECK (len == strlen (text));
    char *buf = malloc (len);
    FUZZ_CHECK (buf && bus_json_order_write (order, buf, len) == len);
    FUZZ_CHECK (memcmp (buf, text, len) == 0);
    free (buf);
    free (text);
    json_decref (json);
    zframe_t *frame = bus_order_encode (order);
    FUZZ_CHECK (frame);
    FUZZ_CHECK (
        bus_order_decode (zframe_data (frame), zframe_size (frame), &s_order)
        == 0);
    zframe_destroy (&frame);
}

void
fuzz_render_cart (const bus_cart_t *cart)
{
    json_t *json = bus_json_cart (cart);
    char *text = json ? bus_json_dump (json) : NULL;
    FUZZ_CHECK (text);
    free (text);
    json_decref (json);
    zframe_t *frame = bus_cart_encode (cart);
    FUZZ_CHECK (frame);
    FUZZ_CHECK (
        bus_cart_decode (zframe_data (frame), zframe_size (frame), &s_cart)
        == 0);
    zframe_destroy (&frame);
}

void
fuzz_render_event (const bus_event_t *event)
{
    json_t *json = bus_json_event (event);
    char *text = json ? bus_json_dump (json) : NULL;
    FUZZ_CHECK (text);
    bus_wsframe_t *frame =
        bus_wsframe_new (BUS_WSFRAME_TEXT, text, strlen (text));
    FUZZ_CHECK (frame);
    ws_client_frame_t read;
    size_t consumed = 0;
    FUZZ_CHECK (ws_client_frame (bus_wsframe_data (frame),
                                 bus_wsframe_size (frame), UINT64_MAX, &read,
                                 &consumed)
                == 1);
    FUZZ_CHECK (consumed == bus_wsframe_size (frame) && read.fin
                && read.opcode == WS_CLIENT_TEXT && read.len == strlen (text)
                && memcmp (read.payload, text, read.len) == 0);
    bus_wsframe_unref (&frame);
    free (text);
    json_decref (json);
    zframe_t *logged = bus_event_encode (event);
    FUZZ_CHECK (logged);
    FUZZ_CHECK (
        bus_event_decode (zframe_data (logged), zframe_size (logged), &s_event)
        == 0);
    zframe_destroy (&logged);
    if (event->type == BUS_EVENT_ORDER_PLACED
        || event->type == BUS_EVENT_ORDER_STATUS)
        fuzz_render_order (&event->order);
    else if (event->type == BUS_EVENT_CART)
        fuzz_render_cart (&event->cart);
}

//  A command's lines as the writer stores them
static void
s_lines_of (const bus_cmd_t *cmd, bus_line_t *lines)
{
    for (uint32_t i = 0; i < cmd->line_count; i++) {
        bus_line_t *line = &lines[i];
        *line = cmd->lines[i];
        line->line_id = i + 1;
        if (!*line->name)
            bus_strlcpy (line->name, line->item_id, sizeof line->name);
        bus_strlcpy (line->station, "kitchen", sizeof line->station);
        for (uint32_t m = 0; m < line->mod_count; m++)
            bus_strlcpy (line->mods[m].name, line->mods[m].id,
                         sizeof line->mods[m].name);
    }
}

void
fuzz_render_cmd (const bus_cmd_t *cmd)
{
    static bus_event_t event;
    memset (&event, 0, sizeof event);
    event.seq = 1;
    event.ts_ms = 1767225600000;
    if (cmd->type == BUS_CMD_AVAILABILITY) {
        event.type = BUS_EVENT_MENU_ITEM;
        bus_strlcpy (event.item_id, cmd->item_id, sizeof event.item_id);
        event.available = cmd->available;
        fuzz_render_event (&event);
        return;
    }
    if (cmd->type == BUS_CMD_SET_STATUS)
        return;   //  it names an order the writer has: nothing of its own
    bus_order_t *order = &event.order;
    order->id = order->seq = order->version = 1;
    order->status = BUS_STATUS_PLACED;
    memcpy (order->table, cmd->table, sizeof order->table);
    memcpy (order->key, cmd->key, sizeof order->key);
    memcpy (order->origin, cmd->origin, sizeof order->origin);
    memcpy (order->note, cmd->note, sizeof order->note);
    order->line_count = cmd->line_count;
    s_lines_of (cmd, order->lines);
    event.type = BUS_EVENT_ORDER_PLACED;
    fuzz_render_event (&event);

    bus_cart_t *cart = &event.cart;
    memcpy (cart->table, cmd->table, sizeof cart->table);
    cart->version = 1;
    cart->line_count = cmd->line_count;
    s_lines_of (cmd, cart->lines);
    event.type = BUS_EVENT_CART;
    fuzz_render_event (&event);
}
