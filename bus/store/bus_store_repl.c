/*  bus_store_repl.c — the store's side of replication: the changes walk
    on the writer, and following and applying on a replica
    (bus_store_repl.h).  The raw records are bus_store.c's
    (bus_store_private.h's hooks); the rules are here.  */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_store_repl.h"
#include "bus_store_private.h"

typedef struct {
    bus_store_change_fn *fn;
    void *arg;
} s_walk_t;

static int
s_change (uint64_t seq, const void *data, size_t size, const char *key,
          uint64_t fingerprint, void *arg)
{
    s_walk_t *walk = (s_walk_t *) arg;
    bus_store_change_t change = { seq, data, size, key, fingerprint };
    return walk->fn (&change, walk->arg);
}

int
bus_store_changes (bus_store_t *self, uint64_t from, uint32_t limit,
                   bus_store_change_fn *fn, void *arg, uint64_t *last_seq,
                   uint64_t *menu_version)
{
    s_walk_t walk = { fn, arg };
    return bus_store__walk_log (self, from ? from : 1, limit, s_change, &walk,
                                last_seq, menu_version);
}

int
bus_store_log_sum (bus_store_t *self, uint64_t seq, uint64_t *sum)
{
    return bus_store__log_sum (self, seq, sum);
}

int
bus_store_follow (bus_store_t *self, const bus_epoch_t *writer, char *why,
                  size_t why_cap)
{
    bus_epoch_t mine;   //  a batch earlier in this transaction may adopt
    bus_store__pending_epoch (self, &mine);
    if (!bus_valid_writer_id (writer->id) || writer->epoch == 0) {
        snprintf (why, why_cap, "the writer's history is not one");
        return BUS_ERR_INVALID;
    }
    if (!streq (mine.id, writer->id)) {
        if (!bus_store__empty (self)) {
            snprintf (why, why_cap,
                      "data dir holds store %s, writer is %s; move it aside",
                      mine.id, writer->id);
            return BUS_ERR_CONFLICT;
        }
        return bus_store__epoch_adopt (self, writer);
    }
    //  Fencing: an older epoch is a writer that no longer is one
    if (writer->epoch < mine.epoch) {
        snprintf (why, why_cap,
                  "epoch %016" PRIx64 " is older than %016" PRIx64
                  ", the one this store follows",
                  writer->epoch, mine.epoch);
        return BUS_ERR_FORBIDDEN;
    }
    return writer->epoch > mine.epoch ? bus_store__epoch_adopt (self, writer)
                                      : 0;
}

uint64_t
bus_store_applied_seq (bus_store_t *self)
{
    return bus_store__pending_seq (self);
}

int
bus_store_apply (bus_store_t *self, const bus_store_change_t *change, char *why,
                 size_t why_cap)
{
    uint64_t next = bus_store__pending_seq (self) + 1;
    if (change->seq != next) {
        snprintf (why, why_cap,
                  "change %" PRIu64 " where %" PRIu64 " comes next (%s)",
                  change->seq, next, change->seq > next ? "a gap" : "a repeat");
        return BUS_ERR_INVALID;
    }
    if (*change->key && !bus_valid_key (change->key)) {
        snprintf (why, why_cap, "change %" PRIu64 ": its key is not one",
                  change->seq);
        return BUS_ERR_INVALID;
    }
    bus_event_t *event = malloc (sizeof *event);
    if (!event)
        return BUS_ERR_NOMEM;
    int rc = bus_event_decode (change->event, change->size, event);
    if (rc != 0 || event->seq != change->seq) {
        snprintf (why, why_cap, "change %" PRIu64 ": %s", change->seq,
                  rc ? "its event does not decode"
                     : "its event has another seq");
        rc = BUS_ERR_MALFORMED;
    } else
        rc = bus_store__log_put (self, change->event, change->size, event);
    free (event);
    if (rc == 0 && *change->key)
        rc = bus_store_key_put (self, change->key, change->fingerprint,
                                change->seq);
    return rc;
}

int
bus_store_menu_adopt (bus_store_t *self, const char *json, size_t len,
                      uint64_t version)
{
    return version ? bus_store__menu_adopt (self, json, len, version)
                   : BUS_ERR_INVALID;
}
