/*  fuzz_wsframe.c — WebSocket frames: the server's builder
    (bus_wsframe.c, every event a browser gets) and the one frame parser
    in the tree, the client codec the tests and the bench read the edge
    with (bench/ws_client.h).  (A browser's frames to the edge are read
    by bus_wsread: fuzz_wsread.c.)

    The first byte picks what the rest is: the payload of a frame to
    build (the byte's high bits the opcode, or a close frame whose code
    is the next two bytes), which must parse back to exactly what went
    in; or bytes off the wire, parsed frame after frame the way the tests
    read a socket, every prefix as a partial read.  */

#include <string.h>
#include "orderbus/bus_wsframe.h"
#include "fuzz.h"
#include "ws_client.h"

static void
s_build (uint8_t how, const uint8_t *data, size_t size)
{
    bool close = (how & 0x10) && size >= 2;
    bus_wsframe_t *frame;
    char reason[256] = "";
    if (close) {
        size_t len =
            size - 2 < sizeof reason - 1 ? size - 2 : sizeof reason - 1;
        memcpy (reason, data + 2, len);
        reason[len] = '\0';
        frame = bus_wsframe_new_close (data[0] << 8 | data[1], reason);
    } else
        frame = bus_wsframe_new (how >> 4 & 0x0F ? how >> 4 : BUS_WSFRAME_TEXT,
                                 data, size);
    FUZZ_CHECK (frame);
    ws_client_frame_t read;
    size_t consumed = 0;
    FUZZ_CHECK (ws_client_frame (bus_wsframe_data (frame),
                                 bus_wsframe_size (frame), UINT64_MAX, &read,
                                 &consumed)
                == 1);
    FUZZ_CHECK (consumed == bus_wsframe_size (frame) && read.fin && !read.masked
                && read.rsv == 0);
    if (close) {
        size_t len = strlen (reason) < 123 ? strlen (reason) : 123;
        FUZZ_CHECK (read.opcode == WS_CLIENT_CLOSE && read.len == 2 + len);
        FUZZ_CHECK ((uint8_t) read.payload[0] == data[0]
                    && (uint8_t) read.payload[1] == data[1]);
        FUZZ_CHECK (memcmp (read.payload + 2, reason, len) == 0);
    } else {
        FUZZ_CHECK (read.len == size);
        FUZZ_CHECK (size == 0 || memcmp (read.payload, data, size) == 0);
    }
    //  Every prefix is a partial read, never a frame
    for (size_t cut = 0; cut < bus_wsframe_size (frame) && cut < 16; cut++)
        FUZZ_CHECK (ws_client_frame (bus_wsframe_data (frame), cut, UINT64_MAX,
                                     &read, &consumed)
                    == 0);
    bus_wsframe_unref (&frame);
}

//  Frames off the wire, one after the other, as a reader of a socket
static void
s_parse (const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (at < size) {
        ws_client_frame_t frame;
        size_t consumed = 0;
        int rc =
            ws_client_frame (data + at, size - at, 1 << 20, &frame, &consumed);
        if (rc != 1)
            break;
        FUZZ_CHECK (consumed >= 2 && consumed <= size - at);
        FUZZ_CHECK (frame.payload >= (const char *) data + at
                    && frame.payload + frame.len
                           == (const char *) data + at + consumed);
        if (frame.masked) {   //  unmasking stays inside the payload
            char copy[64];
            size_t n = frame.len < sizeof copy ? frame.len : sizeof copy;
            static const unsigned char key[4] = { 1, 2, 3, 4 };
            ws_client_mask (copy, frame.payload, n, key, 0);
        }
        at += consumed;
    }
    size_t head = 0;
    (void) ws_client_response ((const char *) data, size, &head);
    FUZZ_CHECK (head <= size);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        s_build (data[0], data + 1, size - 1);
    else
        s_parse (data + 1, size - 1);
    return 0;
}
