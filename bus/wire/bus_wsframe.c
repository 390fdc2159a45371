/*  bus_wsframe.c — shared, reference-counted WebSocket frames.  */

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "orderbus/bus_wsframe.h"

struct _bus_wsframe_t {
    atomic_int refs;
    size_t size;            //  bytes in data
    unsigned char data[];   //  header, then payload
};

//  Header length for a payload of len bytes: 7-bit, 16-bit or 64-bit size
static size_t
s_header_size (size_t len)
{
    return len < 126 ? 2 : len <= UINT16_MAX ? 4 : 10;
}

bus_wsframe_t *
bus_wsframe_new (int opcode, const void *payload, size_t len)
{
    size_t header = s_header_size (len);
    bus_wsframe_t *self = malloc (sizeof *self + header + len);
    if (!self)
        return NULL;
    atomic_init (&self->refs, 1);
    self->size = header + len;
    unsigned char *h = self->data;
    h[0] = (unsigned char) (0x80 | (opcode & 0x0f));   //  FIN, no mask
    if (header == 2)
        h[1] = (unsigned char) len;
    else if (header == 4) {
        h[1] = 126;
        h[2] = (unsigned char) (len >> 8);
        h[3] = (unsigned char) len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char) ((uint64_t) len >> (56 - 8 * i));
    }
    if (len)
        memcpy (self->data + header, payload, len);
    return self;
}

bus_wsframe_t *
bus_wsframe_new_close (int code, const char *reason)
{
    unsigned char body[125];
    size_t len = strlen (reason);
    if (len > sizeof body - 2)
        len = sizeof body - 2;
    body[0] = (unsigned char) (code >> 8);
    body[1] = (unsigned char) code;
    memcpy (body + 2, reason, len);
    return bus_wsframe_new (BUS_WSFRAME_CLOSE, body, len + 2);
}

bus_wsframe_t *
bus_wsframe_ref (bus_wsframe_t *self)
{
    atomic_fetch_add (&self->refs, 1);
    return self;
}

void
bus_wsframe_unref (bus_wsframe_t **self_p)
{
    if (*self_p && atomic_fetch_sub (&(*self_p)->refs, 1) == 1)
        free (*self_p);
    *self_p = NULL;
}

const void *
bus_wsframe_data (const bus_wsframe_t *self)
{
    return self->data;
}

size_t
bus_wsframe_size (const bus_wsframe_t *self)
{
    return self->size;
}

//  ---------------------------------------------------------------------
//  Selftest

//  Check a frame of payload length len: its header bytes and its size.
static void
s_test_length (size_t len, const unsigned char *expect, size_t expect_len)
{
    char *payload = calloc (1, len + 1);
    assert (payload);
    memset (payload, 'x', len);
    bus_wsframe_t *frame = bus_wsframe_new (BUS_WSFRAME_TEXT, payload, len);
    assert (frame);
    assert (bus_wsframe_size (frame) == expect_len + len);
    assert (memcmp (bus_wsframe_data (frame), expect, expect_len) == 0);
    assert (len == 0
            || ((const char *) bus_wsframe_data (frame))[expect_len + len - 1]
                   == 'x');
    bus_wsframe_unref (&frame);
    assert (frame == NULL);
    free (payload);
}

void
bus_wsframe_test (bool verbose)
{
    if (verbose)
        printf (" * bus_wsframe: ");
    //  The three size encodings, at their edges (RFC 6455 5.2)
    s_test_length (0, (const unsigned char[]){ 0x81, 0 }, 2);
    s_test_length (125, (const unsigned char[]){ 0x81, 125 }, 2);
    s_test_length (126, (const unsigned char[]){ 0x81, 126, 0, 126 }, 4);
    s_test_length (65535, (const unsigned char[]){ 0x81, 126, 0xff, 0xff }, 4);
    s_test_length (65536,
                   (const unsigned char[]){ 0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0 },
                   10);

    //  Close: code big-endian, reason cut to fit a control frame
    bus_wsframe_t *close = bus_wsframe_new_close (4001, "slow");
    const unsigned char *c = bus_wsframe_data (close);
    assert (bus_wsframe_size (close) == 2 + 2 + 4);
    assert (c[0] == 0x88 && c[1] == 6 && c[2] == 0x0f && c[3] == 0xa1);
    assert (memcmp (c + 4, "slow", 4) == 0);
    bus_wsframe_unref (&close);
    char long_reason[300];
    memset (long_reason, 'r', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = 0;
    close = bus_wsframe_new_close (1001, long_reason);
    assert (bus_wsframe_size (close) == 2 + 125);
    bus_wsframe_unref (&close);

    //  Shared: the last reference frees; unref of NULL is harmless
    bus_wsframe_t *frame = bus_wsframe_new (BUS_WSFRAME_TEXT, "hi", 2);
    bus_wsframe_t *other = bus_wsframe_ref (frame);
    bus_wsframe_unref (&frame);
    assert (memcmp ((const char *) bus_wsframe_data (other) + 2, "hi", 2) == 0);
    bus_wsframe_unref (&other);
    bus_wsframe_unref (&other);
    if (verbose)
        printf ("OK\n");
}
