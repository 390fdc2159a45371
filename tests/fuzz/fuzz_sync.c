/*  fuzz_sync.c — the sync socket's decoders: requests (the writer reads
    them from any peer), reply headers, heartbeats and the history frame
    after each event (gateways, edges).  Each input goes to all four.

    Whatever one accepts encodes to bytes that decode to the same; the
    strings a request names (logged by the writer, a table it looks up)
    are text.  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "fuzz.h"

static bus_sync_req_t s_req, s_req_again;
static bus_sync_reply_t s_reply, s_reply_again;
static bus_heartbeat_t s_hb, s_hb_again;
static bus_epoch_t s_epoch, s_epoch_again;

//  A history a decoder accepted is one an edge may log and show
static void
s_writer_accepted (const bus_epoch_t *writer)
{
    FUZZ_CHECK (bus_valid_writer_id (writer->id) && writer->epoch >= 1);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (bus_sync_req_decode (data, size, &s_req) == 0) {
        FUZZ_CHECK (bus_valid_text (s_req.table) && bus_valid_text (s_req.role)
                    && bus_valid_text (s_req.name));
        for (const char *c = s_req.name; *c; c++)   //  logged as it is
            FUZZ_CHECK (*c > 0x20 && *c < 0x7f);
        zframe_t *frame = bus_sync_req_encode (&s_req);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_sync_req_decode (zframe_data (frame),
                                         zframe_size (frame), &s_req_again)
                    == 0);
        FUZZ_CHECK (memcmp (&s_req, &s_req_again, sizeof s_req) == 0);
        zframe_destroy (&frame);
    }
    if (bus_sync_reply_decode (data, size, &s_reply) == 0) {
        FUZZ_CHECK (bus_valid_text (s_reply.error));
        s_writer_accepted (&s_reply.writer);
        zframe_t *frame = bus_sync_reply_encode (&s_reply);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_sync_reply_decode (zframe_data (frame),
                                           zframe_size (frame), &s_reply_again)
                    == 0);
        FUZZ_CHECK (memcmp (&s_reply, &s_reply_again, sizeof s_reply) == 0);
        zframe_destroy (&frame);
    }
    if (bus_heartbeat_decode (data, size, &s_hb) == 0) {
        zframe_t *frame = bus_heartbeat_encode (&s_hb);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_heartbeat_decode (zframe_data (frame),
                                          zframe_size (frame), &s_hb_again)
                    == 0);
        FUZZ_CHECK (s_hb.seq == s_hb_again.seq && s_hb.ts_ms == s_hb_again.ts_ms
                    && bus_epoch_same (&s_hb.writer, &s_hb_again.writer));
        s_writer_accepted (&s_hb.writer);
        zframe_destroy (&frame);
    }
    if (bus_epoch_decode (data, size, &s_epoch) == 0) {
        s_writer_accepted (&s_epoch);
        zframe_t *frame = bus_epoch_encode (&s_epoch);
        FUZZ_CHECK (frame);
        FUZZ_CHECK (bus_epoch_decode (zframe_data (frame), zframe_size (frame),
                                      &s_epoch_again)
                    == 0);
        FUZZ_CHECK (bus_epoch_same (&s_epoch, &s_epoch_again));
        zframe_destroy (&frame);
    }
    return 0;
}
