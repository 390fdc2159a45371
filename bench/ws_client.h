/*  ws_client.h — the client side of WebSocket (RFC 6455) as pure functions
    on the caller's buffers: the upgrade request and the check of its
    answer, frame headers out (masked, as a client must) and in, and the
    masking itself.  Nothing here allocates or touches a socket.

    One codec for every client orderbus has of its own: the bench's
    (bench/bench_net.c: 10,000 connections, so the per-frame functions
    are inline) and the tests' hand-made ones (tests/tk_ws.c,
    tests/test_seats.c).  The server side is bus/wire/bus_wsframe.c.

    Parsers work like picohttpparser's: they return what they consumed,
    0 when the bytes so far are a prefix of something valid (read more
    and call again with the whole buffer), -1 when they never will be.  */

#ifndef WS_CLIENT_H_INCLUDED
#define WS_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Opcodes (the low nibble of a frame's first byte)
#define WS_CLIENT_CONTINUATION 0
#define WS_CLIENT_TEXT         1
#define WS_CLIENT_BINARY       2
#define WS_CLIENT_CLOSE        8
#define WS_CLIENT_PING         9
#define WS_CLIENT_PONG         10

//  The first byte of a final (unfragmented) frame with opcode
#define WS_CLIENT_FIN 0x80

//  The longest frame header: 2 + 8 bytes of length + 4 of mask key
#define WS_CLIENT_HEAD_MAX 14

//  A valid Sec-WebSocket-Key, for clients that need no other (RFC 6455's
//  own example)
#define WS_CLIENT_SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="

/*  Format the upgrade request for path (with any query) into buf: Host is
    host, with ":port" when port > 0; key is the 24-character base64 of 16
    bytes.  Returns its length, or -1 if it does not fit in cap.  */
int ws_client_request (char *buf, size_t cap, const char *host, int port,
                       const char *path, const char *key);

/*  Check the upgrade response at data[0..len): 1 if it is a complete
    "HTTP/1.1 101" head (*consumed = its size, the frames follow), 0 if
    the head is not complete yet (and under 16 KiB), -1 if it was refused
    or is not HTTP.  */
int ws_client_response (const char *data, size_t len, size_t *consumed);

typedef struct {
    bool fin;            /* the last frame of a message                 */
    int rsv;             /* RSV1-3 as on the wire (first byte & 0x70);
                             0 unless an extension was negotiated        */
    int opcode;          /* WS_CLIENT_*                                 */
    bool masked;         /* a server must never mask: callers decide    */
    const char *payload; /* into the caller's buffer; still masked if
                             masked (ws_client_frame only)               */
    size_t len;          /* payload bytes                               */
} ws_client_frame_t;

/*  The size of a frame header (2..14) whose second byte is b1: how many
    bytes to read before ws_client_head can parse it.  */
static inline size_t
ws_client_head_size (unsigned char b1)
{
    size_t n = b1 & 0x7f;
    return 2 + (n == 126 ? 2 : n == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
}

/*  Parse the frame header at data[0..len) into *frame (all but payload)
    and *payload_len.  Returns the header's size, or 0 if more bytes are
    needed.  */
static inline size_t
ws_client_head (const void *data, size_t len, ws_client_frame_t *frame,
                uint64_t *payload_len)
{
    const unsigned char *p = (const unsigned char *) data;
    if (len < 2)
        return 0;
    size_t head = 2;
    uint64_t n = p[1] & 0x7f;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = ((uint64_t) p[2] << 8) | p[3];
        head = 4;
    } else if (n == 127) {
        if (len < 10)
            return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | p[2 + i];
        head = 10;
    }
    frame->masked = (p[1] & 0x80) != 0;
    if (frame->masked)
        head += 4;
    if (len < head)
        return 0;
    frame->fin = (p[0] & 0x80) != 0;
    frame->rsv = p[0] & 0x70;
    frame->opcode = p[0] & 0x0f;
    *payload_len = n;
    return head;
}

/*  Parse one whole frame at data[0..len): 1 with *frame (its payload
    points into data) and *consumed (header + payload), 0 if it is not
    all there yet (a partial read: call again with more), -1 if its
    payload is longer than max.  Fragments (fin false, continuation
    frames) come out one by one, as they are on the wire.  */
static inline int
ws_client_frame (const void *data, size_t len, uint64_t max,
                 ws_client_frame_t *frame, size_t *consumed)
{
    uint64_t n;
    size_t head = ws_client_head (data, len, frame, &n);
    if (head == 0)
        return 0;
    if (n > max)
        return -1;
    if (len - head < n)
        return 0;
    frame->payload = (const char *) data + head;
    frame->len = (size_t) n;
    *consumed = head + (size_t) n;
    return 1;
}

/*  Write the header of a frame carrying len bytes into out: first_byte is
    FIN|RSV|opcode as it goes on the wire; key is the 4-byte mask key (it
    is copied into the header), or NULL for an unmasked frame, which no
    client may send (tests use it to break the protocol).  Returns the
    header's size.  */
static inline size_t
ws_client_head_encode (unsigned char out[WS_CLIENT_HEAD_MAX],
                       unsigned char first_byte, uint64_t len,
                       const unsigned char *key)
{
    size_t h = 0;
    unsigned char mask_bit = key ? 0x80 : 0;
    out[h++] = first_byte;
    if (len < 126)
        out[h++] = (unsigned char) (mask_bit | len);
    else if (len < 65536) {
        out[h++] = mask_bit | 126;
        out[h++] = (unsigned char) (len >> 8);
        out[h++] = (unsigned char) len;
    } else {
        out[h++] = mask_bit | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (unsigned char) (len >> (8 * i));
    }
    for (int i = 0; key && i < 4; i++)
        out[h++] = key[i];
    return h;
}

/*  Mask (or unmask) n bytes of a payload: dst[i] = src[i] ^ key[(offset +
    i) % 4], where offset is where src starts in the payload.  dst may be
    src.  */
static inline void
ws_client_mask (void *dst, const void *src, size_t n,
                const unsigned char key[4], size_t offset)
{
    unsigned char *d = (unsigned char *) dst;
    const unsigned char *s = (const unsigned char *) src;
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char) (s[i] ^ key[(offset + i) & 3]);
}

#endif
