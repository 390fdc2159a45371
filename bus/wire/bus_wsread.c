/*  bus_wsread.c — a browser's WebSocket frames, read with a cap.

    Bytes received are kept in `in` until a whole frame is there; a data
    frame's payload is then moved to `message`, where the fragments of
    one message are gathered.  Both are bounded by the cap: a frame is
    judged by its header, so a payload past the cap is never waited for,
    let alone stored.  Frames are taken from `in` by moving `start` on;
    what is left is moved to the front once per feed, not once per
    frame (many tiny frames in one read would cost a copy each).
    `message` grows with what a browser sends: most send nothing but
    pongs, and thousands of them are connected at once.  */

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "orderbus/bus_wsframe.h"
#include "orderbus/bus_wsread.h"

#define S_HEADER_MAX 14   //  2 + 8 (64-bit length) + 4 (mask)

struct _bus_wsread_t {
    size_t max;          //  the cap on a message
    unsigned char *in;   //  received: in[start..in_len) not yet taken
    size_t start, in_len, in_cap;
    char *message;   //  fragments so far of a data message
    size_t message_len, message_cap;
    int message_opcode;   //  0: no message begun
    bool finished;        //  the last message was handed out
    int error;            //  once set, returned for ever
};

bus_wsread_t *
bus_wsread_new (size_t max_message)
{
    bus_wsread_t *self = calloc (1, sizeof *self);
    if (self)
        self->max = max_message;
    return self;
}

void
bus_wsread_destroy (bus_wsread_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->in);
    free ((*self_p)->message);
    free (*self_p);
    *self_p = NULL;
}

//  The message handed out last call is done with.
static void
s_message_done (bus_wsread_t *self)
{
    if (self->finished) {
        self->message_len = 0;
        self->message_opcode = 0;
        self->finished = false;
    }
}

int
bus_wsread_feed (bus_wsread_t *self, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    //  What was taken goes; the rest moves to the front
    if (self->start) {
        memmove (self->in, self->in + self->start, self->in_len - self->start);
        self->in_len -= self->start;
        self->start = 0;
    }
    if (self->in_len + len > self->in_cap) {
        //  More than a frame's worth is kept only until the frame it
        //  belongs to is judged: a frame past the cap is an error first
        size_t cap = self->in_len + len;
        unsigned char *in = realloc (self->in, cap);
        if (!in)
            return -1;
        self->in = in;
        self->in_cap = cap;
    }
    memcpy (self->in + self->in_len, data, len);
    self->in_len += len;
    return 0;
}

//  The header at in: its opcode, flags, payload length and size.  0 if
//  more bytes are needed, 1 if whole, or a close code.
static int
s_header (bus_wsread_t *self, int *opcode, bool *fin, uint64_t *payload,
          size_t *header)
{
    const unsigned char *h = self->in + self->start;
    size_t have = self->in_len - self->start;
    if (have < 2)
        return 0;
    *fin = h[0] & 0x80;
    *opcode = h[0] & 0x0f;
    if ((h[0] & 0x70) || !(h[1] & 0x80))   //  no extensions; browsers mask
        return BUS_WSREAD_PROTOCOL;
    size_t size = (h[1] & 0x7f) < 126 ? 2 : (h[1] & 0x7f) == 126 ? 4 : 10;
    if (have < size)
        return 0;
    if (size == 10 && (h[2] & 0x80))
        return BUS_WSREAD_PROTOCOL;   //  the top bit must be 0 (5.2)
    *payload = h[1] & 0x7f;
    if (size == 4)
        *payload = (uint64_t) h[2] << 8 | h[3];
    else if (size == 10) {
        *payload = 0;
        for (int i = 0; i < 8; i++)
            *payload = *payload << 8 | h[2 + i];
    }
    *header = size + 4;
    bool control = *opcode & 0x08;
    if (control && (!*fin || *payload > 125))
        return BUS_WSREAD_PROTOCOL;
    if (!control && *opcode > 0x2)
        return BUS_WSREAD_PROTOCOL;   //  reserved data opcodes
    if (control && *opcode > 0xA)
        return BUS_WSREAD_PROTOCOL;   //  reserved control opcodes
    return 1;
}

//  Judge the frame's header against the message under way.
static int
s_check (bus_wsread_t *self, int opcode, uint64_t payload)
{
    if (opcode & 0x08)
        return 0;
    if (opcode == 0 && !self->message_opcode)
        return BUS_WSREAD_PROTOCOL;   //  a continuation of nothing
    if (opcode != 0 && self->message_opcode)
        return BUS_WSREAD_PROTOCOL;   //  a message inside another
    if (payload > self->max - self->message_len)
        return BUS_WSREAD_TOO_BIG;
    //  Room for what the message will have, once it is known to fit
    size_t need = self->message_len + (size_t) payload + 1;
    if (need > self->message_cap) {
        size_t cap = need < 256 ? 256 : need;
        char *message = realloc (self->message, cap);
        if (!message)
            return BUS_WSREAD_NOMEM;
        self->message = message;
        self->message_cap = cap;
    }
    return 0;
}

int
bus_wsread_next (bus_wsread_t *self, int *opcode, const char **data,
                 size_t *len)
{
    if (self->error)
        return self->error;
    s_message_done (self);
    while (true) {
        int op;
        bool fin;
        uint64_t payload;
        size_t header;
        int rc = s_header (self, &op, &fin, &payload, &header);
        if (rc == 1)
            rc = s_check (self, op, payload);
        else if (rc == 0)
            return 0;
        if (rc != 0)
            return self->error = rc;
        if (self->in_len - self->start < header + payload)
            return 0;   //  judged, and within the cap: wait for the rest
        unsigned char *body = self->in + self->start + header;
        const unsigned char *mask = body - 4;
        for (size_t i = 0; i < payload; i++)
            body[i] ^= mask[i % 4];
        self->start += header + (size_t) payload;
        if (op & 0x08) {   //  a control frame, perhaps between fragments
            *opcode = op;
            *data = (const char *) body;
            *len = (size_t) payload;
            return 1;
        }
        memcpy (self->message + self->message_len, body, (size_t) payload);
        self->message_len += (size_t) payload;
        if (op != 0)
            self->message_opcode = op;
        if (fin) {
            self->message[self->message_len] = '\0';
            self->finished = true;
            *opcode = self->message_opcode;
            *data = self->message;
            *len = self->message_len;
            return 1;
        }
    }
}

//  ---------------------------------------------------------------------
//  Selftest

//  A masked client frame: header, mask, masked payload, into out.
static size_t
s_frame (unsigned char *out, int first, const char *payload, size_t len)
{
    const unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    size_t n = 0;
    out[n++] = (unsigned char) first;
    if (len < 126)
        out[n++] = (unsigned char) (0x80 | len);
    else if (len <= UINT16_MAX) {
        out[n++] = 0x80 | 126;
        out[n++] = (unsigned char) (len >> 8);
        out[n++] = (unsigned char) len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[n++] = (unsigned char) ((uint64_t) len >> (56 - 8 * i));
    }
    memcpy (out + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = (unsigned char) payload[i] ^ mask[i % 4];
    return n + len;
}

//  Feed bytes one at a time, as a slow network would, checking that
//  nothing is handed out before the last one.
static int
s_feed_slowly (bus_wsread_t *r, const unsigned char *bytes, size_t n,
               int *opcode, const char **data, size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        assert (bus_wsread_feed (r, bytes + i, 1) == 0);
        int rc = bus_wsread_next (r, opcode, data, len);
        if (rc != 0 || i == n - 1)
            return rc;
    }
    return 0;
}

void
bus_wsread_test (bool verbose)
{
    if (verbose)
        printf (" * bus_wsread: ");
    unsigned char buf[70000 + S_HEADER_MAX];
    int op;
    const char *data;
    size_t len;

    //  A text message, whole and then a byte at a time
    bus_wsread_t *r = bus_wsread_new (100);
    size_t n = s_frame (buf, 0x81, "hello", 5);
    assert (bus_wsread_feed (r, buf, n) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 1);
    assert (op == BUS_WSFRAME_TEXT && len == 5
            && memcmp (data, "hello", 5) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 0);
    assert (s_feed_slowly (r, buf, n, &op, &data, &len) == 1 && len == 5);

    //  Fragments, with a ping between them; then two frames in one read
    n = s_frame (buf, 0x01, "ab", 2);
    n += s_frame (buf + n, 0x89, "p", 1);
    n += s_frame (buf + n, 0x80, "cd", 2);
    n += s_frame (buf + n, 0x8A, "", 0);
    assert (bus_wsread_feed (r, buf, n) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 1 && op == 0x9);
    assert (len == 1 && data[0] == 'p');
    assert (bus_wsread_next (r, &op, &data, &len) == 1 && op == 0x1);
    assert (len == 4 && memcmp (data, "abcd", 4) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 1 && op == 0xA);
    assert (len == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 0);

    //  At the cap, and one byte past it: refused on the header alone
    memset (buf + 20, 'x', 101);
    unsigned char frame[200];
    n = s_frame (frame, 0x82, (const char *) buf + 20, 100);
    assert (bus_wsread_feed (r, frame, n) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 1 && len == 100);
    n = s_frame (frame, 0x82, (const char *) buf + 20, 101);
    assert (bus_wsread_feed (r, frame, 4) == 0);   //  header only
    assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_TOO_BIG);
    assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_TOO_BIG);
    bus_wsread_destroy (&r);

    //  Fragments that add up past the cap; a 2^63 length
    r = bus_wsread_new (100);
    n = s_frame (buf, 0x01, (const char *) buf + 20, 60);
    assert (bus_wsread_feed (r, buf, n) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == 0);
    n = s_frame (buf, 0x80, "0123456789012345678901234567890123456789x", 41);
    assert (bus_wsread_feed (r, buf, n) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_TOO_BIG);
    bus_wsread_destroy (&r);
    r = bus_wsread_new (100);
    const unsigned char huge[] = { 0x82, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0 };
    assert (bus_wsread_feed (r, huge, sizeof huge) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_TOO_BIG);
    bus_wsread_destroy (&r);
    r = bus_wsread_new (100);   //  a length with its top bit set: 1002
    const unsigned char top[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0 };
    assert (bus_wsread_feed (r, top, sizeof top) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_PROTOCOL);
    bus_wsread_destroy (&r);

    //  Protocol errors, each on a fresh reader
    struct {
        unsigned char first;
        const char *payload;
        size_t len;
        bool unmasked;
    } bad[] = {
        { 0x81, "x", 1, true },    //  not masked
        { 0xC1, "x", 1, false },   //  reserved bit (no extension agreed)
        { 0x83, "x", 1, false },   //  reserved data opcode
        { 0x8B, "x", 1, false },   //  reserved control opcode
        { 0x09, "x", 1, false },   //  a fragmented ping
        { 0x80, "x", 1, false },   //  a continuation of nothing
        { 0x89, (const char *) buf + 20, 126, false },   //  ping > 125
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = bus_wsread_new (1000);
        n = s_frame (buf + 300, bad[i].first, bad[i].payload, bad[i].len);
        if (bad[i].unmasked)
            buf[301] &= 0x7f;
        assert (bus_wsread_feed (r, buf + 300, n) == 0);
        assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_PROTOCOL);
        bus_wsread_destroy (&r);
    }
    //  A message begun inside another
    r = bus_wsread_new (1000);
    n = s_frame (buf, 0x01, "a", 1);
    n += s_frame (buf + n, 0x81, "b", 1);
    assert (bus_wsread_feed (r, buf, n) == 0);
    assert (bus_wsread_next (r, &op, &data, &len) == BUS_WSREAD_PROTOCOL);
    bus_wsread_destroy (&r);
    bus_wsread_destroy (&r);   //  NULL-safe
    if (verbose)
        printf ("OK\n");
}
