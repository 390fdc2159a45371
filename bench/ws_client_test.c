/*  ws_client_test — the WebSocket client codec (ws_client.h) on buffers:
    the upgrade request byte for byte, the answer's check, and frames of
    every length class encoded, masked, then parsed whole and from every
    prefix (a partial read).  Registered as the ctest unit_ws_client.  */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ws_client.h"

static void
s_test_request (void)
{
    char buf[512];
    int len = ws_client_request (buf, sizeof buf, "127.0.0.1", 8080, "/ws?x=1",
                                 WS_CLIENT_SAMPLE_KEY);
    const char *want =
        "GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    assert (len == (int) strlen (want) && strcmp (buf, want) == 0);
    //  No port: Host alone
    len = ws_client_request (buf, sizeof buf, "127.0.0.1", 0, "/ws", "k");
    assert (len > 0 && strstr (buf, "\r\nHost: 127.0.0.1\r\n"));
    //  Too small a buffer
    assert (ws_client_request (buf, 40, "127.0.0.1", 1, "/ws", "k") == -1);
}

static void
s_test_response (void)
{
    const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                      "\r\n\r\n\x81\x02{}";
    size_t consumed = 0;
    assert (ws_client_response (ok, sizeof ok - 1, &consumed) == 1);
    assert (consumed == sizeof ok - 1 - 4);   //  the frame after it is not
    for (size_t n = 0; n < consumed; n++)
        assert (ws_client_response (ok, n, &consumed) == 0);
    const char no[] = "HTTP/1.1 503 Service Unavailable\r\n\r\n";
    assert (ws_client_response (no, sizeof no - 1, &consumed) == -1);
}

static void
s_test_frames (void)
{
    static const size_t sizes[] = { 0, 1, 125, 126, 127, 65535, 65536, 70000 };
    static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    unsigned char *wire = malloc (70000 + WS_CLIENT_HEAD_MAX);
    char *payload = malloc (70000);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (char) ('a' + i % 26);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int masked = 0; masked < 2; masked++) {
            size_t len = sizes[s];
            size_t h = ws_client_head_encode (
                wire, WS_CLIENT_FIN | WS_CLIENT_TEXT, len, masked ? key : NULL);
            assert (h == ws_client_head_size (wire[1]));
            //  Masked in two pieces, as the bench does in chunks
            size_t half = len / 2;
            if (masked) {
                ws_client_mask (wire + h, payload, half, key, 0);
                ws_client_mask (wire + h + half, payload + half, len - half,
                                key, half);
            } else
                memcpy (wire + h, payload, len);
            ws_client_frame_t f;
            size_t consumed;
            assert (ws_client_frame (wire, h + len, UINT64_MAX, &f, &consumed)
                    == 1);
            assert (consumed == h + len && f.len == len && f.fin
                    && f.opcode == WS_CLIENT_TEXT && f.rsv == 0
                    && f.masked == (masked == 1));
            if (masked)   //  unmask in place: the payload comes back
                ws_client_mask ((void *) f.payload, f.payload, f.len, key, 0);
            assert (memcmp (f.payload, payload, len) == 0);
            //  Every prefix is a partial read
            for (size_t n = 0; n < h + len; n += n < 16 ? 1 : 997)
                assert (ws_client_frame (wire, n, UINT64_MAX, &f, &consumed)
                        == 0);
            //  Over the caller's limit
            if (len > 0)
                assert (ws_client_frame (wire, h + len, len - 1, &f, &consumed)
                        == -1);
        }
    //  Two frames back to back, a fragment then its continuation
    unsigned char two[16];
    size_t h = ws_client_head_encode (two, WS_CLIENT_TEXT, 2, NULL);
    memcpy (two + h, "{\"", 2);
    size_t h2 = ws_client_head_encode (two + h + 2, WS_CLIENT_FIN, 1, NULL);
    two[h + 2 + h2] = '}';
    ws_client_frame_t f;
    size_t consumed;
    assert (ws_client_frame (two, sizeof two, 100, &f, &consumed) == 1);
    assert (!f.fin && f.opcode == WS_CLIENT_TEXT && consumed == h + 2);
    assert (ws_client_frame (two + consumed, h2 + 1, 100, &f, &consumed) == 1);
    assert (f.fin && f.opcode == WS_CLIENT_CONTINUATION && f.len == 1);
    free (wire);
    free (payload);
}

int
main (void)
{
    s_test_request ();
    s_test_response ();
    s_test_frames ();
    printf ("ws_client: OK\n");
    return 0;
}
