/*  bus_codec_private.h — the parts of bus_codec.c its selftest needs.

    Not an API: only bus_codec.c and bus_codec_test.c include this.  The
    selftest packs frames by hand with the encoder's own packer, so that
    a frame it breaks differs from a real one only where it means to.  */

#ifndef BUS_CODEC_PRIVATE_H_INCLUDED
#define BUS_CODEC_PRIVATE_H_INCLUDED

#include <msgpack.h>
#include "orderbus/bus_codec.h"

#define BUS_CODEC_VERSION      2  /* the "v" every message carries        */
#define BUS_CODEC_ORDER_FIELDS 15 /* keys in an order's map               */

/*  A packer writing into a growing buffer.  Every write goes through
    bus_codec__write, which remembers an out-of-memory failure, so the
    pack calls themselves need no checks.  */
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    bool failed;
} bus_codec__writer_t;

void bus_codec__writer_init (bus_codec__writer_t *self);
/*  msgpack-c's write callback; data is the writer.  Returns 0 or -1.  */
int bus_codec__write (void *data, const char *buf, size_t len);
/*  Returns the written bytes as a new frame, or NULL if a write failed;
    frees the buffer either way.  Caller owns the return value.  */
zframe_t *bus_codec__writer_frame (bus_codec__writer_t *self);

/*  A string of at most cap bytes (strnlen), and a key.  */
void bus_codec__pack_str (msgpack_packer *pk, const char *s, size_t cap);
void bus_codec__pack_key (msgpack_packer *pk, const char *key);

/*  A key and its value.  */
void bus_codec__put_uint (msgpack_packer *pk, const char *key, uint64_t value);
void bus_codec__put_int (msgpack_packer *pk, const char *key, int64_t value);
void bus_codec__put_str (msgpack_packer *pk, const char *key, const char *s,
                         size_t cap);
void bus_codec__put_bool (msgpack_packer *pk, const char *key, bool value);

/*  An order's map; its first ten fields (id to ums) and its last four
    (sub to lines), to pack one with a broken "sms" between them.  */
void bus_codec__pack_order (msgpack_packer *pk, const bus_order_t *order);
void bus_codec__pack_order_head (msgpack_packer *pk, const bus_order_t *order);
void bus_codec__pack_order_tail (msgpack_packer *pk, const bus_order_t *order);
/*  A cart's map.  */
void bus_codec__pack_cart (msgpack_packer *pk, const bus_cart_t *cart);

/*  True if an event of this type carries an order.  */
bool bus_codec__event_has_order (bus_event_type_t type);

#endif
