/*  bus_query.c — the sync socket's read queries, answered from a store
    (bus_query.h).  */

#include <inttypes.h>
#include <jansson.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_query.h"
#include "orderbus/bus_report.h"

static int
s_add_item (const void *data, size_t size, void *arg)
{
    return zmsg_addmem ((zmsg_t *) arg, data, size);
}

static int
s_limit (const bus_sync_req_t *req, bus_sync_reply_t *reply)
{
    if (req->limit >= 1 && req->limit <= BUS_QUERY_LIMIT_MAX)
        return 0;
    reply->status = BUS_ERR_INVALID;
    snprintf (reply->error, sizeof reply->error, "limit must be from 1 to %d",
              BUS_QUERY_LIMIT_MAX);
    return -1;
}

static int
s_sync_get (bus_store_t *store, const bus_sync_req_t *req, zmsg_t *items)
{
    bus_order_t *order = malloc (sizeof *order);
    if (!order)
        return BUS_ERR_NOMEM;
    int rc = bus_store_get_order (store, req->id, order);
    if (rc == 0) {
        zframe_t *frame = bus_order_encode (order);
        zmsg_append (items, &frame);
    }
    free (order);
    return rc;
}

static int
s_sync_menu (bus_store_t *store, zmsg_t *items, uint64_t *version)
{
    char *json;
    size_t len;
    int rc = bus_store_menu_get (store, &json, &len, version);
    if (rc == 0) {
        zmsg_addmem (items, json, len);
        free (json);
    }
    return rc;
}

static int
s_sync_list (bus_store_t *store, const bus_sync_req_t *req, zmsg_t *items,
             uint64_t *next)
{
    bus_store_filter_t filter = { req->status, req->table, req->from_ms,
                                  req->to_ms };
    return bus_store_list (store, &filter, req->from, req->limit, s_add_item,
                           items, next);
}

//  The report of [from_ms, to_ms) as one JSON item, all its orders read
//  in one read transaction.
static int
s_sync_report (bus_store_t *store, const bus_sync_req_t *req, zmsg_t *items)
{
    bus_report_t *report = bus_report_new (req->from_ms, req->to_ms);
    if (!report)
        return BUS_ERR_INVALID;
    int rc = bus_report_load (report, store);
    json_t *json = rc == 0 ? bus_report_json (report) : NULL;
    char *text = json ? json_dumps (json, JSON_COMPACT) : NULL;
    if (text)
        zmsg_addstr (items, text);
    else if (rc == 0)
        rc = BUS_ERR_NOMEM;
    free (text);
    json_decref (json);
    bus_report_destroy (&report);
    return rc;
}

bool
bus_query_is_read (bus_sync_op_t op)
{
    return op != BUS_SYNC_PING && op != BUS_SYNC_STATS;
}

void
bus_query_answer (bus_store_t *store, int retain_days,
                  const bus_sync_req_t *req, bus_sync_reply_t *reply,
                  zmsg_t *items)
{
    int rc = 0;
    reply->seq = bus_store_last_seq (store);
    switch (req->op) {
        case BUS_SYNC_SNAPSHOT: {
            uint32_t orders = 0;
            rc = bus_store_snapshot (store, s_add_item, items, &reply->seq,
                                     &orders);
            reply->next = orders;
            break;
        }
        case BUS_SYNC_REPLAY:
            if (s_limit (req, reply) != 0)
                return;
            rc = bus_store_replay (store, req->from, req->limit, s_add_item,
                                   items, &reply->seq);
            //  the log starts at seq 1, so from 0 reads from 1 as well
            reply->next = (req->from ? req->from : 1) + zmsg_size (items);
            if (rc == BUS_ERR_PRUNED)   //  where the log starts now
                reply->next = bus_store_first_seq (store);
            break;
        case BUS_SYNC_GET: rc = s_sync_get (store, req, items); break;
        case BUS_SYNC_LIST:
            if (s_limit (req, reply) != 0)
                return;
            rc = s_sync_list (store, req, items, &reply->next);
            break;
        case BUS_SYNC_MENU:
            rc = s_sync_menu (store, items, &reply->next);
            break;
        case BUS_SYNC_TABLE:
            rc = bus_valid_table (req->table)
                     ? bus_store_table (store, req->table, s_add_item, items)
                     : BUS_ERR_INVALID;
            break;
        case BUS_SYNC_REPORT: rc = s_sync_report (store, req, items); break;
        default: rc = BUS_ERR_INVALID; break;
    }
    if (rc == BUS_ERR_PRUNED) {
        reply->status = rc;
        snprintf (reply->error, sizeof reply->error,
                  "the log starts at seq %" PRIu64 " (store/retain_days %d): "
                  "take a snapshot instead",
                  reply->next, retain_days);
    } else if (rc != 0) {
        reply->status = rc;
        bus_strlcpy (reply->error, bus_strerror (rc), sizeof reply->error);
    }
}

void
bus_query_send (zsock_t *sock, zframe_t **identity, bus_sync_reply_t *reply,
                zmsg_t **items)
{
    if (reply->status != 0) {   //  a failed query carries no items
        zmsg_destroy (items);
        *items = zmsg_new ();
    }
    reply->count = (uint32_t) zmsg_size (*items);
    zframe_t *header = bus_sync_reply_encode (reply);
    zmsg_prepend (*items, &header);
    zmsg_prepend (*items, identity);
    zmsg_send (items, sock);
}
