/*  fuzz_json.c — the gateway's parsers of request bodies (bus_json.h):
    the first byte picks one of the six, the rest is the body.

    A body a parser accepts, completed as its route completes it (the key
    and the gateway's name, the table or id from the path), is a command
    the writer's decoder accepts after encoding, asking the same
    (fingerprint), and whose events render: what the gateway lets
    through, the writer takes.  A refused body is answered with a 400
    whose JSON renders, naming a field.  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_codec.h"
#include "orderbus/bus_error.h"
#include "orderbus/bus_json.h"
#include "fuzz.h"

typedef int (s_parse_fn) (const char *body, size_t len, bus_cmd_t *cmd,
                          bus_json_error_t *error);

//  Each parser, and whether its route takes the table from the path
static const struct {
    s_parse_fn *parse;
    bool path_table;
} s_parsers[] = {
    { bus_json_place_cmd, false },        { bus_json_line_cmd, true },
    { bus_json_status_cmd, false },       { bus_json_qty_cmd, true },
    { bus_json_availability_cmd, false }, { bus_json_cart_place_cmd, true },
};

static bus_cmd_t s_cmd, s_decoded;

//  What the route adds to a parsed body (bus_api.c)
static void
s_complete (bus_cmd_t *cmd, bool path_table)
{
    bus_strlcpy (cmd->key, "pad-7-0001", sizeof cmd->key);
    bus_strlcpy (cmd->origin, "gw-1", sizeof cmd->origin);
    if (path_table)
        bus_strlcpy (cmd->table, "T12", sizeof cmd->table);
    if (cmd->type == BUS_CMD_SET_STATUS)
        cmd->order_id = 12;
    if (cmd->type == BUS_CMD_CART_SET_QTY)
        cmd->line_id = 2;
    if (cmd->type == BUS_CMD_AVAILABILITY)
        bus_strlcpy (cmd->item_id, "burger", sizeof cmd->item_id);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t which = data[0] % (sizeof s_parsers / sizeof s_parsers[0]);
    memset (&s_cmd, 0, sizeof s_cmd);
    bus_json_error_t error;
    int rc = s_parsers[which].parse ((const char *) data + 1, size - 1, &s_cmd,
                                     &error);
    if (rc != 0) {
        FUZZ_CHECK (rc == BUS_ERR_INVALID || rc == BUS_ERR_MALFORMED);
        json_t *body = bus_json_error ("invalid", error.message, error.field);
        char *text = bus_json_dump (body);
        FUZZ_CHECK (text);
        free (text);
        json_decref (body);
        return 0;
    }
    s_complete (&s_cmd, s_parsers[which].path_table);
    char why[BUS_ERROR_MAX] = "";
    if (bus_cmd_check (&s_cmd, why, sizeof why) != 0) {
        fprintf (stderr, "the gateway accepts what the writer refuses: %s\n",
                 why);
        FUZZ_CHECK (false);
    }
    zframe_t *frame = bus_cmd_encode (&s_cmd);
    FUZZ_CHECK (frame);
    FUZZ_CHECK (
        bus_cmd_decode (zframe_data (frame), zframe_size (frame), &s_decoded)
        == 0);
    FUZZ_CHECK (bus_cmd_fingerprint (&s_decoded)
                == bus_cmd_fingerprint (&s_cmd));
    zframe_destroy (&frame);
    fuzz_render_cmd (&s_decoded);
    return 0;
}
