/*  bus_wsread.h — a browser's WebSocket frames as a server reads them
    (RFC 6455 5: masked, perhaps fragmented, control frames between the
    fragments), with a cap on what a message may weigh.

    The cap is checked on each frame's header, before its payload is
    read: a browser that announces a frame past it costs the server
    nothing more than the header, and is answered close 1009.

    One reader per connection, used by one thread.  */

#ifndef BUS_WSREAD_H_INCLUDED
#define BUS_WSREAD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_WSREAD_PROTOCOL 1002 /* close code: a frame breaks RFC 6455 */
#define BUS_WSREAD_TOO_BIG  1009 /* close code: a message past the cap  */
#define BUS_WSREAD_NOMEM    1011 /* close code: out of memory           */

typedef struct _bus_wsread_t bus_wsread_t;

/*  A reader for messages of at most max_message bytes; it holds only
    what it has been sent.  NULL if out of memory.  */
bus_wsread_t *bus_wsread_new (size_t max_message);

/*  NULL-safe; nulls *self_p.  */
void bus_wsread_destroy (bus_wsread_t **self_p);

/*  Take len bytes as received.  0, or -1 if out of memory (the
    connection should end: 1011).  */
int bus_wsread_feed (bus_wsread_t *self, const void *data, size_t len);

/*  The next whole message or control frame: 1 with its opcode
    (BUS_WSFRAME_TEXT, binary 0x2, close 0x8, ping 0x9, pong 0xA), its
    payload in *data[*len] (unmasked; valid until the next call), 0 if
    more bytes are needed, or the close code the connection must end
    with: BUS_WSREAD_PROTOCOL (unmasked, reserved bits or opcodes, a
    control frame fragmented or over 125 bytes, a 64-bit length with its
    top bit set, a continuation with no message, a message begun inside
    another), BUS_WSREAD_TOO_BIG, or BUS_WSREAD_NOMEM.
    After an error the reader returns it again.  */
int bus_wsread_next (bus_wsread_t *self, int *opcode, const char **data,
                     size_t *len);

void bus_wsread_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
