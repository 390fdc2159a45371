/*  fuzz.h — what the libFuzzer targets in tests/fuzz/ share.

    Each target feeds one kind of outside input (a ZeroMQ frame, a request
    body, a token, a WebSocket frame, a menu document) to the code that
    first reads it, and checks more than "no crash": that whatever is
    accepted follows the rules a reader after it relies on, and renders
    (docs/security-input.md, "Fuzzing").  A failed check aborts, which
    libFuzzer reports as a crash with the input that caused it.  */

#ifndef FUZZ_H_INCLUDED
#define FUZZ_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "orderbus/bus_model.h"

#define FUZZ_CHECK(cond)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf (stderr, "fuzz check failed: %s (%s:%d)\n", #cond, \
                     __FILE__, __LINE__);                              \
            abort ();                                                  \
        }                                                              \
    } while (0)

/*  libFuzzer's entry point, which every target defines.  */
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/*  An order as the API shows it (bus_json_order_write, equal to jansson's
    tree) and as the writer stores it (encoded, it decodes again).  */
void fuzz_render_order (const bus_order_t *order);

/*  A cart as the API and the edge show it, and stored.  */
void fuzz_render_cart (const bus_cart_t *cart);

/*  An event as the edge sends it: its JSON in a WebSocket text frame,
    read back with the tests' client codec; logged, it decodes again; its
    order or cart renders.  */
void fuzz_render_event (const bus_event_t *event);

/*  The events the writer could commit for cmd, a command the decoder
    accepted, rendered: an order placed from its lines and a cart holding
    them (for the types with a table), or the 86 of its item.  Names are
    the command's where it has them, else its ids (the menu's names are
    text, as bus_valid_name makes sure).  */
void fuzz_render_cmd (const bus_cmd_t *cmd);

#endif
