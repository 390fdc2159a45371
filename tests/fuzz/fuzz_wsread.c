/*  fuzz_wsread.c — a browser's WebSocket frames as the edge reads them
    (bus_wsread.c): bytes off the wire, in pieces.

    The first byte sets the size of the pieces the rest arrives in (1 to
    256 bytes: every prefix a partial read, as a slow network gives it).
    Whatever the reader hands out must be what RFC 6455 allows and the
    cap bounds: a data message of at most the cap, a control frame of at
    most 125 bytes; and once it has said the connection must end (1002,
    1009) it keeps saying so.  */

#include <string.h>
#include "orderbus/bus_wsframe.h"
#include "orderbus/bus_wsread.h"
#include "fuzz.h"

#define S_CAP 1024

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t) data[0] + 1;
    data++, size--;
    bus_wsread_t *reader = bus_wsread_new (S_CAP);
    FUZZ_CHECK (reader);
    int error = 0;
    for (size_t at = 0; at < size && !error; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        FUZZ_CHECK (bus_wsread_feed (reader, data + at, n) == 0);
        int opcode, rc;
        const char *payload;
        size_t len;
        while ((rc = bus_wsread_next (reader, &opcode, &payload, &len)) == 1) {
            if (opcode & 0x08)
                FUZZ_CHECK ((opcode == BUS_WSFRAME_CLOSE || opcode == 0x9
                             || opcode == 0xA)
                            && len <= 125);
            else
                FUZZ_CHECK ((opcode == BUS_WSFRAME_TEXT || opcode == 0x2)
                            && len <= S_CAP && payload[len] == '\0');
            //  The payload is readable to its end
            volatile char sum = 0;
            for (size_t i = 0; i < len; i++)
                sum ^= payload[i];
            (void) sum;
        }
        FUZZ_CHECK (rc == 0 || rc == BUS_WSREAD_PROTOCOL
                    || rc == BUS_WSREAD_TOO_BIG);
        error = rc;
    }
    if (error) {
        int opcode;
        const char *payload;
        size_t len;
        FUZZ_CHECK (bus_wsread_next (reader, &opcode, &payload, &len) == error);
    }
    bus_wsread_destroy (&reader);
    return 0;
}
