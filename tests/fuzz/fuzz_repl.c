/*  fuzz_repl.c — the replication socket's decoders (docs/replication.md):
    what a replica sends the writer (hello, confirm), and what the
    writer sends a replica (a batch's header, a change's key).  Each
    input goes to all three.

    Whatever one accepts encodes to bytes that decode to the same; a
    hello's name (logged by the writer) is printable ASCII, its store an
    identity or none; a batch never says more changes than a batch may
    hold, and names a history; a key is a key or none.  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "fuzz.h"

static bus_repl_up_t s_up, s_up_again;
static bus_repl_batch_t s_batch, s_batch_again;
static bus_repl_key_t s_key, s_key_again;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (bus_repl_up_decode (data, size, &s_up) == 0) {
        for (const char *c = s_up.name; *c; c++)   //  logged as it is
            FUZZ_CHECK (*c > 0x20 && *c < 0x7f);
        FUZZ_CHECK (!*s_up.store || bus_valid_writer_id (s_up.store));
        FUZZ_CHECK (s_up.op == BUS_REPL_HELLO || s_up.op == BUS_REPL_CONFIRM);
        zframe_t *frame = bus_repl_up_encode (&s_up);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_repl_up_decode (zframe_data (frame),
                                        zframe_size (frame), &s_up_again)
                    == 0);
        FUZZ_CHECK (memcmp (&s_up, &s_up_again, sizeof s_up) == 0);
        zframe_destroy (&frame);
    }
    if (bus_repl_batch_decode (data, size, &s_batch) == 0) {
        FUZZ_CHECK (s_batch.count <= BUS_REPL_BATCH_MAX);
        FUZZ_CHECK (bus_valid_writer_id (s_batch.writer.id)
                    && s_batch.writer.epoch >= 1);
        FUZZ_CHECK (bus_valid_text (s_batch.error) && s_batch.status <= 0);
        zframe_t *frame = bus_repl_batch_encode (&s_batch);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_repl_batch_decode (zframe_data (frame),
                                           zframe_size (frame), &s_batch_again)
                    == 0);
        FUZZ_CHECK (memcmp (&s_batch, &s_batch_again, sizeof s_batch) == 0);
        zframe_destroy (&frame);
    }
    if (bus_repl_key_decode (data, size, &s_key) == 0) {
        FUZZ_CHECK (!*s_key.key || bus_valid_key (s_key.key));
        zframe_t *frame = bus_repl_key_encode (&s_key);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_repl_key_decode (zframe_data (frame),
                                         zframe_size (frame), &s_key_again)
                    == 0);
        FUZZ_CHECK (memcmp (&s_key, &s_key_again, sizeof s_key) == 0);
        zframe_destroy (&frame);
    }
    return 0;
}
