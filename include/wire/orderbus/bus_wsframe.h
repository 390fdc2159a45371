/*  bus_wsframe.h — a WebSocket frame as a server sends it (RFC 6455 5.2:
    final, unmasked), built once and shared by reference.

    The edge turns each event into one frame and queues that same frame
    for every browser that should get it, so the bytes on the wire are
    produced once per event, not once per browser.  */

#ifndef BUS_WSFRAME_H_INCLUDED
#define BUS_WSFRAME_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _bus_wsframe_t bus_wsframe_t;

#define BUS_WSFRAME_TEXT  0x1
#define BUS_WSFRAME_CLOSE 0x8

/*  New frame of opcode carrying len bytes of payload, with one reference
    held by the caller; NULL if out of memory.  */
bus_wsframe_t *bus_wsframe_new (int opcode, const void *payload, size_t len);

/*  New close frame with status code and reason (cut to fit a control
    frame's 125 bytes); NULL if out of memory.  */
bus_wsframe_t *bus_wsframe_new_close (int code, const char *reason);

/*  Take one more reference; returns self.  Thread-safe.  */
bus_wsframe_t *bus_wsframe_ref (bus_wsframe_t *self);

/*  Drop the caller's reference; the last one frees.  NULL-safe; nulls
    *self_p.  Thread-safe.  */
void bus_wsframe_unref (bus_wsframe_t **self_p);

/*  The whole frame, header and payload, as it goes on the wire.  */
const void *bus_wsframe_data (const bus_wsframe_t *self);
size_t bus_wsframe_size (const bus_wsframe_t *self);

void bus_wsframe_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
