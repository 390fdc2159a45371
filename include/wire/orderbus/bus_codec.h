/*  bus_codec.h — MessagePack encoding of the bus's messages.

    Pure functions on buffers, testable without sockets.  Every decoder
    enforces explicit limits before it trusts anything:
      - the input is at most BUS_FRAME_MAX bytes (else BUS_ERR_TOO_BIG);
      - the object tree is at most BUS_DEPTH_MAX levels deep (BUS_ERR_TOO_DEEP);
      - maps and arrays hold at most BUS_COUNT_MAX entries (BUS_ERR_TOO_BIG);
      - the input is exactly one msgpack object, no trailing bytes;
      - every field has the documented type and fits its bus_model.h
        capacity; unknown map keys are ignored so newer writers can add
        fields (BUS_ERR_INVALID / BUS_ERR_MALFORMED otherwise);
      - every string is text (bus_valid_text: valid UTF-8 without control
        characters) and follows its field's rule (bus_model.h), the same
        rules the JSON layer applies to request bodies, so that whatever
        a decoder accepts every reader can store and render
        (BUS_ERR_INVALID).
    Before decoding and on error every field of the output is zeroed,
    except the slots of line arrays past their line count, which mean
    nothing (they are 60 KB of a struct and not worth the time).

    Wire shapes (maps with short string keys, "v" is the format version 2;
    a decoder rejects any other version):
      line (in a cmd):   [item_id, qty, note, [mod_id, ...], name]
                         (note and the modifier list may be left off; the
                         name is there only for an open-menu line)
      line (in order/cart): [line_id, item_id, qty, note, name, station,
                             unit_cents, [[mod_id, mod_name, delta_cents]...]]
                         then, for an order's line whose state says more
                         than its order's status (bus_line_is_implied;
                         issue 17), state (1..4), state_ms, reason (text
                         of 0..120 bytes): 11 elements; every other line
                         (a cart's, an implied one, one stored before) has
                         8, the old format, and reads with state 0
      cmd:   {v, type, key, origin, table, note, order, st, ver, line, qty,
              item, avail, open, stn, ls, lines: [line...]}   every key
              always written but "open", written only when true, and
              "stn" and "ls" (LINE_STATE's station and line state),
              written only when set
      order: {id, seq, ver, st, table, key, origin, note, cms, ums,
              sms: [7 ints, indexed by bus_status_t], sub, tax, total,
              lines: [line...]}
      cart:  {table, ver, next, ums, sub, lines: [line...]}
      event: {v, seq, ts, type, order: <order>}      ORDER_PLACED/STATUS
             {v, seq, ts, type, cart: <cart>}        CART
             {v, seq, ts, type, item, avail}         MENU_ITEM
      ack:   {v, key, fp, st, dup, err, wid, ep, pep, base,
              event: <event map>}  (event iff st == 0; fp is the
             fingerprint of the command it answers; wid..base, the
             writer's history, all four or none: a writer before them
             wrote none, read as epoch 0)
      hb:    {v, seq, ts, wid, ep, pep, base, storage, refusing}
             (refusing only when true)
      epoch: {v, wid, ep, pep, base}   the frame after each event on the
                            events socket; wid, ep, pep and base are the
                            writer's history (bus_epoch_t: store identity,
                            epoch, parent epoch, base seq), all required
                            wherever they appear (an ack's: all or
                            none), ep >= 1
      sync request: {v, op, rid, from, limit, id, status, table, role, name,
                     from_ms, to_ms}
      sync reply header: {v, rid, st, err, seq, next, n, wid, ep, pep, base,
                          wseq, hms}  (wseq and hms: a replica's only)
    Command rules checked by bus_cmd_decode (bus_cmd_check; the writer
    relies on them): key: bus_valid_key; origin: bus_valid_node; table:
    bus_valid_table for every type but SET_STATUS and AVAILABILITY; note:
    bus_valid_note; every other string text; every line: item_id valid,
    qty 1..99, a note, 0..6 distinct valid modifier ids, no name or
    bus_valid_name; PLACE: 1..50 lines; CART_ADD: exactly 1 line;
    SET_STATUS: order id >= 1, a valid status; CART_SET_QTY: line id >= 1,
    qty 0..99; AVAILABILITY: a valid item id; LINE_STATE: order id >= 1,
    a valid line state, either a line id or a valid station id (not
    both), a void names a line and its reason (note, 1..120 bytes), any
    other state no note; stn is text for every type.
    Strings of the writer's messages: an order's table, key, origin and
    note, a line's item and modifier ids and note, a cart's table, an
    event's item, an ack's key follow their rules; a station is empty or
    an id; a sync request's table, role and name are empty or a table, an
    id, printable ASCII without spaces; every other string (display
    names, errors) is text.  */

#ifndef BUS_CODEC_H_INCLUDED
#define BUS_CODEC_H_INCLUDED

#include <czmq.h>
#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_FRAME_MAX (256 * 1024) /* largest accepted frame, bytes */
#define BUS_DEPTH_MAX \
    7                    /* deepest accepted nesting: an ack's
                                      event, order, lines, line, mods, mod */
#define BUS_COUNT_MAX 64 /* largest accepted map/array    */

/*  Each encoder returns a new frame holding the encoding, or NULL if out
    of memory.  Caller owns the return value.  */
zframe_t *bus_cmd_encode (const bus_cmd_t *cmd);
zframe_t *bus_order_encode (const bus_order_t *order);
zframe_t *bus_cart_encode (const bus_cart_t *cart);
zframe_t *bus_event_encode (const bus_event_t *event);
zframe_t *bus_ack_encode (const bus_ack_t *ack);

/*  Each decoder reads size bytes at data into *out; returns 0 or a
    bus_err_t as described above.  */
int bus_cmd_decode (const void *data, size_t size, bus_cmd_t *out);
/*  A command's types and capacities only, none of its rules: what
    bus_cmd_decode reads before it calls bus_cmd_check.  The writer reads
    a command so, to tell the sender of one that breaks a rule why
    (bus_cmd_check), with the fingerprint of what it asked for; nothing
    else may use a command read so.  */
int bus_cmd_read (const void *data, size_t size, bus_cmd_t *out);
int bus_order_decode (const void *data, size_t size, bus_order_t *out);
int bus_cart_decode (const void *data, size_t size, bus_cart_t *out);
int bus_event_decode (const void *data, size_t size, bus_event_t *out);
int bus_ack_decode (const void *data, size_t size, bus_ack_t *out);

/*  A stable 64-bit fingerprint of what a command asks for (every field
    but key and origin).  The writer stores it with the idempotency key:
    the same key with another fingerprint is a conflict.  */
uint64_t bus_cmd_fingerprint (const bus_cmd_t *cmd);

/*  Heartbeat, writer -> all: the writer's last committed sequence, the
    history it belongs to, and its storage state ("storage", 0..2, refused
    otherwise; absent, from a writer before it, reads as BUS_STORAGE_OK).  */
typedef struct {
    uint64_t seq;
    int64_t ts_ms;
    bus_epoch_t writer;
    bus_storage_t storage;
    bool refusing; /* "refusing", written only when true: its synchronous
                      replica is not confirming (writer/sync_fallback
                      refuse), so orders get 503                       */
} bus_heartbeat_t;

/*  The writer's history, a frame of its own after each event: an event's
    encoding is the bytes its log holds, written once under the epoch of
    its day, while the epoch is the one it is published or replayed
    under.  */
zframe_t *bus_epoch_encode (const bus_epoch_t *epoch);
int bus_epoch_decode (const void *data, size_t size, bus_epoch_t *out);

zframe_t *bus_heartbeat_encode (const bus_heartbeat_t *hb);
int bus_heartbeat_decode (const void *data, size_t size, bus_heartbeat_t *out);

/*  Sync socket (writer ROUTER <-> client DEALER).
    Request: one frame, a bus_sync_req_t.
    Reply:   [header frame][item frame]...  with header.count items, each an
             encoded order (SNAPSHOT, GET, LIST, TABLE), cart (TABLE, CARTS),
             event (REPLAY), the menu JSON text (MENU), the counters as
             JSON text (STATS) or the report as JSON text (REPORT).  SNAPSHOT's items are the open orders,
             then the carts that have lines; its header's `next` says how
             many of the items are orders.  */
typedef enum {
    BUS_SYNC_SNAPSHOT = 1, /* open orders + the seq they are consistent at */
    BUS_SYNC_REPLAY,       /* events with seq >= from, at most limit       */
    BUS_SYNC_GET,          /* one order by id                              */
    BUS_SYNC_LIST,         /* orders newest first, filtered, paginated     */
    BUS_SYNC_MENU,         /* the current menu document                    */
    BUS_SYNC_PING,         /* "role name is alive"; no items               */
    BUS_SYNC_STATS,        /* the writer's counters, one JSON item         */
    BUS_SYNC_TABLE,        /* a table: its open orders, then its cart (an
                              encoded cart, always the last item)          */
    BUS_SYNC_REPORT        /* the report of [from_ms, to_ms) (bus_report.h),
                              one JSON item                                */
} bus_sync_op_t;

typedef struct {
    bus_sync_op_t op;
    uint64_t rid;              /* request id, echoed in the reply            */
    uint64_t from;             /* REPLAY: first seq; LIST: cursor (0 = top)  */
    uint32_t limit;            /* REPLAY, LIST: max items (1..1000)          */
    uint64_t id;               /* GET: order id                              */
    uint32_t status;           /* LIST: bus_status_t filter, 0 = any         */
    char table[BUS_TABLE_MAX]; /* LIST: table filter, "" = any             */
    char role[16];             /* PING: "gateway" or "edge"                  */
    char name[BUS_NAME_MAX];   /* PING: the pinging node's name              */
    int64_t from_ms;           /* LIST: created at or after, 0 = any;
                                REPORT: start of the range               */
    int64_t to_ms;             /* LIST: created before, 0 = any;
                                REPORT: end of the range (excluded)      */
} bus_sync_req_t;

typedef struct {
    uint64_t rid;
    int status; /* 0 or bus_err_t                             */
    char error[BUS_ERROR_MAX];
    uint64_t seq;        /* writer's last committed seq at read time   */
    uint64_t next;       /* LIST: cursor for the next page, 0 = end;
                                REPLAY: next seq to ask for;
                                SNAPSHOT: how many items are orders       */
    uint32_t count;      /* item frames that follow                    */
    bus_epoch_t writer;  /* the history seq and the items belong to   */
    uint64_t writer_seq; /* a replica's answer: the writer's last seq it
                            has heard of (how far behind: writer_seq -
                            seq); 0 in the writer's own answers       */
    uint64_t heard_ms;   /* a replica's answer: ms since it last heard
                            the writer (at least 1; since it started if
                            never), which writer_seq cannot say: a
                            replica cut off still counts itself caught
                            up.  0: not said (the writer's own answers,
                            a replica before it)                      */
} bus_sync_reply_t;

zframe_t *bus_sync_req_encode (const bus_sync_req_t *req);
int bus_sync_req_decode (const void *data, size_t size, bus_sync_req_t *out);
zframe_t *bus_sync_reply_encode (const bus_sync_reply_t *reply);
int bus_sync_reply_decode (const void *data, size_t size,
                           bus_sync_reply_t *out);

/*  Replication socket (writer ROUTER <-> replica DEALER,
    docs/replication.md).
    Replica -> writer: one frame, a bus_repl_up_t: HELLO {name, its
    store's identity ("" for none), its last seq and that entry's
    checksum}, then CONFIRM {seq: everything up to it is durable}.
    Writer -> replica: [header][event][key]...[menu]: a bus_repl_batch_t,
    then count changes of two frames each (the event's bytes as logged,
    and a bus_repl_key_t), then the menu JSON text if menu_version is not
    0.  A header whose status is not 0 is an ERROR: it carries no changes,
    and its error says why in words.  */
typedef enum { BUS_REPL_HELLO = 1, BUS_REPL_CONFIRM } bus_repl_op_t;

typedef struct {
    bus_repl_op_t op;
    char name[BUS_NAME_MAX];       /* HELLO: the replica's node name        */
    char store[BUS_WRITER_ID_MAX]; /* HELLO: its store's identity, or ""    */
    uint64_t seq;                  /* HELLO: its last seq; CONFIRM: durable */
    uint64_t sum;                  /* HELLO: checksum of its entry seq      */
} bus_repl_up_t;

typedef struct {
    int status;                /* 0, or the bus_err_t of an ERROR           */
    char error[BUS_ERROR_MAX]; /* an ERROR's reason                         */
    bus_epoch_t writer;        /* the history the changes belong to         */
    uint64_t first;            /* seq of the first change                   */
    uint32_t count;            /* changes that follow (two frames each)     */
    uint64_t last;             /* the writer's last committed seq           */
    int64_t ts_ms;             /* the writer's clock when it sent this      */
    uint64_t menu_version;     /* the menu frame's version; 0: none follows */
} bus_repl_batch_t;

/*  The second frame of a change: its idempotency key ("" if none) and
    that key's fingerprint.  */
typedef struct {
    char key[BUS_KEY_MAX];
    uint64_t fingerprint;
} bus_repl_key_t;

/*  Changes per batch, at most: a batch is at most this many changes of
    at most BUS_FRAME_MAX each.  */
#define BUS_REPL_BATCH_MAX 512

zframe_t *bus_repl_up_encode (const bus_repl_up_t *up);
int bus_repl_up_decode (const void *data, size_t size, bus_repl_up_t *out);
zframe_t *bus_repl_batch_encode (const bus_repl_batch_t *batch);
int bus_repl_batch_decode (const void *data, size_t size,
                           bus_repl_batch_t *out);
zframe_t *bus_repl_key_encode (const bus_repl_key_t *key);
int bus_repl_key_decode (const void *data, size_t size, bus_repl_key_t *out);

/*  Selftest.  */
void bus_codec_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
