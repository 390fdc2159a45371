/*  fuzz_event.c — the decoders of what the writer publishes and serves:
    events (edges, replicas), acks (gateways), orders and carts (sync
    replies).  Each input goes to all four.

    Whatever one accepts renders as the API and the edge show it
    (fuzz_render_*) and encodes to bytes that decode again.  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"
#include "fuzz.h"

static bus_event_t s_event;
static bus_ack_t s_ack, s_ack_again;
static bus_order_t s_order;
static bus_cart_t s_cart;

static void
s_ack_accepted (const bus_ack_t *ack)
{
    FUZZ_CHECK (bus_valid_key (ack->key) && bus_valid_text (ack->error));
    //  A gateway answers a refusal with the ack's error in a JSON body
    json_t *body = bus_json_error ("invalid", ack->error, NULL);
    char *text = bus_json_dump (body);
    FUZZ_CHECK (text);
    free (text);
    json_decref (body);
    if (ack->status == 0)
        fuzz_render_event (&ack->event);
    zframe_t *frame = bus_ack_encode (ack);
    FUZZ_CHECK (frame);
    FUZZ_CHECK (
        bus_ack_decode (zframe_data (frame), zframe_size (frame), &s_ack_again)
        == 0);
    zframe_destroy (&frame);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (bus_event_decode (data, size, &s_event) == 0)
        fuzz_render_event (&s_event);
    if (bus_ack_decode (data, size, &s_ack) == 0)
        s_ack_accepted (&s_ack);
    if (bus_order_decode (data, size, &s_order) == 0)
        fuzz_render_order (&s_order);
    if (bus_cart_decode (data, size, &s_cart) == 0)
        fuzz_render_cart (&s_cart);
    return 0;
}
