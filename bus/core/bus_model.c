/*  bus_model.c — names and validation rules of the bus's nouns.  */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_model.h"

static const char *s_status_names[] = {
    NULL, "placed", "accepted", "preparing", "ready", "served", "cancelled",
};

const char *
bus_status_name (bus_status_t status)
{
    if (status < BUS_STATUS_PLACED || status > BUS_STATUS_CANCELLED)
        return NULL;
    return s_status_names[status];
}

int
bus_status_parse (const char *name, bus_status_t *status)
{
    for (int s = BUS_STATUS_PLACED; s <= BUS_STATUS_CANCELLED; s++)
        if (name && strcmp (name, s_status_names[s]) == 0) {
            *status = (bus_status_t) s;
            return 0;
        }
    return BUS_ERR_INVALID;
}

static const char *s_line_state_names[] = {
    NULL, "new", "cooking", "done", "voided",
};

const char *
bus_line_state_name (bus_line_state_t state)
{
    if (state < BUS_LINE_NEW || state > BUS_LINE_VOIDED)
        return NULL;
    return s_line_state_names[state];
}

bus_line_state_t
bus_line_state_in (const bus_line_t *line, bus_status_t status)
{
    if (line->state >= BUS_LINE_NEW && line->state <= BUS_LINE_VOIDED)
        return (bus_line_state_t) line->state;
    switch (status) {
        case BUS_STATUS_PREPARING: return BUS_LINE_COOKING;
        case BUS_STATUS_READY:
        case BUS_STATUS_SERVED: return BUS_LINE_DONE;
        case BUS_STATUS_CANCELLED: return BUS_LINE_VOIDED;
        default: return BUS_LINE_NEW;
    }
}

//  The status whose time is the implied line state's time
static int64_t
s_implied_ms (bus_line_state_t state, const bus_order_t *order)
{
    const int64_t *ms = order->status_ms;
    switch (state) {
        case BUS_LINE_COOKING: return ms[BUS_STATUS_PREPARING];
        case BUS_LINE_DONE:
            return ms[BUS_STATUS_READY] ? ms[BUS_STATUS_READY]
                                        : ms[BUS_STATUS_SERVED];
        case BUS_LINE_VOIDED: return ms[BUS_STATUS_CANCELLED];
        default: return ms[BUS_STATUS_PLACED];
    }
}

void
bus_line_read (const bus_line_t *line, const bus_order_t *order,
               bus_line_state_t *state, int64_t *state_ms, const char **reason)
{
    *state = bus_line_state_in (line, order->status);
    if (line->state) {
        *state_ms = line->state_ms;
        *reason = line->reason;
        return;
    }
    *state_ms = s_implied_ms (*state, order);
    *reason = *state == BUS_LINE_VOIDED ? BUS_REASON_CANCELLED : "";
}

bool
bus_line_is_implied (const bus_line_t *line, const bus_order_t *order)
{
    if (!line->state)
        return true;
    bus_line_t bare = *line;
    bare.state = 0;
    bus_line_state_t state;
    int64_t ms;
    const char *reason;
    bus_line_read (&bare, order, &state, &ms, &reason);
    return state == (bus_line_state_t) line->state && ms == line->state_ms
           && strncmp (reason, line->reason, sizeof line->reason) == 0;
}

int
bus_line_state_parse (const char *name, bus_line_state_t *state)
{
    for (int s = BUS_LINE_NEW; s <= BUS_LINE_VOIDED; s++)
        if (name && strcmp (name, s_line_state_names[s]) == 0) {
            *state = (bus_line_state_t) s;
            return 0;
        }
    return BUS_ERR_INVALID;
}

bool
bus_status_is_open (bus_status_t status)
{
    return status >= BUS_STATUS_PLACED && status <= BUS_STATUS_READY;
}

bool
bus_status_can_move (bus_status_t from, bus_status_t to)
{
    if (to == BUS_STATUS_CANCELLED)
        return from == BUS_STATUS_PLACED || from == BUS_STATUS_ACCEPTED;
    return from >= BUS_STATUS_PLACED && from < BUS_STATUS_SERVED
           && to == from + 1;
}

const char *
bus_event_type_name (bus_event_type_t type)
{
    switch (type) {
        case BUS_EVENT_ORDER_PLACED: return "order.placed";
        case BUS_EVENT_ORDER_STATUS: return "order.status";
        case BUS_EVENT_CART: return "cart.updated";
        case BUS_EVENT_MENU_ITEM: return "menu.item";
    }
    return NULL;
}

const char *
bus_storage_name (bus_storage_t storage)
{
    switch (storage) {
        case BUS_STORAGE_OK: return "ok";
        case BUS_STORAGE_FAILING: return "failing";
        case BUS_STORAGE_FULL: return "full";
    }
    return NULL;
}

/*  True if s is 1..cap-1 characters of [A-Za-z0-9_.-]: ids and node
    names, which go into topics, LMDB keys and log lines as they are.  */
static bool
s_id_chars (const char *s, size_t cap)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool
bus_valid_item_id (const char *s)
{
    return s_id_chars (s, BUS_ID_MAX);
}

bool
bus_valid_node (const char *s)
{
    return s_id_chars (s, BUS_NAME_MAX);
}

bool
bus_valid_writer_id (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n != BUS_WRITER_ID_MAX - 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool
bus_epoch_same (const bus_epoch_t *a, const bus_epoch_t *b)
{
    return a->epoch == b->epoch && strcmp (a->id, b->id) == 0;
}

bool
bus_epoch_continues (const bus_epoch_t *next, const bus_epoch_t *from,
                     uint64_t seq)
{
    return from->epoch && next->parent == from->epoch
           && strcmp (next->id, from->id) == 0 && seq <= next->base;
}

/*  Printable ASCII only: keys and table labels end up in topics, logs and
    LMDB keys, where invisible or multi-byte characters only cause grief. */
static bool
s_printable (const char *s, size_t cap)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e)
            return false;
    return true;
}

bool
bus_valid_table (const char *s)
{
    /* '/' is the topic separator, so it may not appear in a table label */
    return s_printable (s, BUS_TABLE_MAX) && strchr (s, '/') == NULL;
}

bool
bus_valid_key (const char *s)
{
    return s_printable (s, BUS_KEY_MAX);
}

size_t
bus_utf8_char (const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n = *p < 0x80   ? 1
               : *p < 0xC2 ? 0   //  continuation bytes, overlong C0 and C1
               : *p < 0xE0 ? 2
               : *p < 0xF0 ? 3
               : *p < 0xF5 ? 4
                           : 0;   //  F5..FF would be past U+10FFFF
    uint32_t cp = n == 2 ? *p & 0x1F : n == 3 ? *p & 0x0F : *p & 0x07;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;   //  truncated (a NUL stops here too)
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;   //  overlong, a surrogate, or past U+10FFFF
    return n;
}

/*  Length of s if it is text (bus_valid_text) shorter than cap bytes,
    else -1.  One pass: the codec runs it on every string of every
    command, on the writer's hot path, so ASCII takes the short way.  */
static long
s_text_len (const char *s, size_t cap)
{
    if (!s)
        return -1;
    const unsigned char *p = (const unsigned char *) s;
    while (*p && (size_t) (p - (const unsigned char *) s) < cap) {
        size_t n = 1;
        if (*p >= 0x80)
            n = bus_utf8_char ((const char *) p);
        else if (*p < 0x20 || *p == 0x7F)
            n = 0;
        if (n == 0)
            return -1;
        p += n;
    }
    size_t len = (size_t) (p - (const unsigned char *) s);
    return len < cap ? (long) len : -1;
}

bool
bus_valid_text (const char *s)
{
    return s_text_len (s, SIZE_MAX) >= 0;
}

bool
bus_valid_note (const char *s)
{
    return s_text_len (s, BUS_NOTE_MAX) >= 0;
}

bool
bus_valid_name (const char *s)
{
    return s_text_len (s, BUS_NAME_MAX) > 0;
}

//  The messages name the limits the capacities set
_Static_assert(BUS_ID_MAX == 33 && BUS_TABLE_MAX == 33 && BUS_KEY_MAX == 129
                   && BUS_NOTE_MAX == 281 && BUS_NAME_MAX == 81,
               "the BUS_RULE_* messages in bus_model.h name these limits");

//  ---------------------------------------------------------------------
//  A command's rules (bus_cmd_check)

/*  Fill why with "<field>: <rule>" and return BUS_ERR_INVALID.  */
static int
s_bad (char *why, size_t why_cap, const char *field, const char *rule)
{
    return bus_error_set (why, why_cap, BUS_ERR_INVALID, "%s: %s", field, rule);
}

/*  Each string of a command that fits its field (the codec and the JSON
    layer never give one that does not, but a struct may come from
    anywhere), and is text.  */
static bool
s_text_in (const char *s, size_t cap)
{
    return s_text_len (s, cap) >= 0;
}

/*  Line i of a command: what a client may state of it.  */
static int
s_check_line (const bus_line_t *line, uint32_t i, char *why, size_t why_cap)
{
    char field[48];
    const char *rule = NULL, *part = NULL;
    uint32_t bad_mod = BUS_MODS_MAX;
    if (!bus_valid_item_id (line->item_id))
        part = "item_id", rule = BUS_RULE_ID;
    else if (line->qty < 1 || line->qty > BUS_QTY_MAX)
        part = "quantity", rule = "must be an integer from 1 to 99";
    else if (!bus_valid_note (line->note))
        part = "note", rule = BUS_RULE_NOTE;
    else if (line->mod_count > BUS_MODS_MAX)
        part = "modifiers", rule = "must be an array of at most 6 modifiers";
    else if (*line->name && !bus_valid_name (line->name))
        part = "name", rule = BUS_RULE_NAME;
    for (uint32_t m = 0; !rule && m < line->mod_count; m++) {
        if (!bus_valid_item_id (line->mods[m].id))
            rule = BUS_RULE_ID;
        //  The same modifier twice is one choice charged twice
        for (uint32_t j = 0; !rule && j < m; j++)
            if (strcmp (line->mods[j].id, line->mods[m].id) == 0)
                rule = "must not repeat a modifier id";
        bad_mod = m;
    }
    if (!rule)
        return 0;
    if (part)
        snprintf (field, sizeof field, "lines[%u].%s", i, part);
    else
        snprintf (field, sizeof field, "lines[%u].modifiers[%u]", i, bad_mod);
    return s_bad (why, why_cap, field, rule);
}

/*  LINE_STATE: one order, a state to reach, and either one line or one
    station's lines; a void names one line and its reason, nothing else
    has a reason.  */
static int
s_check_line_state (const bus_cmd_t *cmd, char *why, size_t why_cap)
{
    if (cmd->order_id < 1)
        return s_bad (why, why_cap, "order", "must be an order id from 1");
    if (!bus_line_state_name ((bus_line_state_t) cmd->line_state))
        return s_bad (why, why_cap, "ls", "must be a line state");
    if ((cmd->line_id != 0) == (*cmd->station != '\0'))
        return s_bad (why, why_cap, "line",
                      "must name either a line or a station");
    if (*cmd->station && !bus_valid_item_id (cmd->station))
        return s_bad (why, why_cap, "stn", BUS_RULE_ID);
    bool void_ = cmd->line_state == BUS_LINE_VOIDED;
    if (void_ && !cmd->line_id)
        return s_bad (why, why_cap, "line", "a void names one line");
    if (void_ && (!*cmd->note || strlen (cmd->note) >= BUS_REASON_MAX))
        return s_bad (why, why_cap, "note", BUS_RULE_REASON);
    if (!void_ && *cmd->note)
        return s_bad (why, why_cap, "note", "only a void has a reason");
    return 0;
}

/*  The fields cmd's type uses, beyond what every command needs.  */
static int
s_check_type (const bus_cmd_t *cmd, char *why, size_t why_cap)
{
    bool tabled = cmd->type != BUS_CMD_SET_STATUS
                  && cmd->type != BUS_CMD_AVAILABILITY
                  && cmd->type != BUS_CMD_LINE_STATE;
    if (tabled && !bus_valid_table (cmd->table))
        return s_bad (why, why_cap, "table", BUS_RULE_TABLE);
    switch (cmd->type) {
        case BUS_CMD_PLACE:
            if (cmd->line_count < 1)
                return s_bad (why, why_cap, "lines", "must hold 1 to 50 lines");
            break;
        case BUS_CMD_CART_ADD:
            if (cmd->line_count != 1)
                return s_bad (why, why_cap, "lines", "must hold one line");
            break;
        case BUS_CMD_SET_STATUS:
            if (cmd->order_id < 1)
                return s_bad (why, why_cap, "order",
                              "must be an order id from 1");
            if (!bus_status_name ((bus_status_t) cmd->status))
                return s_bad (why, why_cap, "st", "must be a status");
            break;
        case BUS_CMD_CART_SET_QTY:
            if (cmd->line_id < 1)
                return s_bad (why, why_cap, "line", "must be a line id from 1");
            if (cmd->qty > BUS_QTY_MAX)
                return s_bad (why, why_cap, "qty",
                              "must be an integer from 0 to 99");
            break;
        case BUS_CMD_AVAILABILITY:
            if (!bus_valid_item_id (cmd->item_id))
                return s_bad (why, why_cap, "item", BUS_RULE_ID);
            break;
        case BUS_CMD_LINE_STATE: return s_check_line_state (cmd, why, why_cap);
        case BUS_CMD_CART_CLEAR:
        case BUS_CMD_CART_PLACE: break;
    }
    return 0;
}

int
bus_cmd_check (const bus_cmd_t *cmd, char *why, size_t why_cap)
{
    if (cmd->type < BUS_CMD_PLACE || cmd->type > BUS_CMD_LINE_STATE)
        return s_bad (why, why_cap, "type", "must be a command type");
    if (!bus_valid_key (cmd->key))
        return s_bad (why, why_cap, "key", BUS_RULE_KEY);
    //  The ack goes to A/<origin>/: a '/' in it would reach another
    //  gateway's topic
    if (!bus_valid_node (cmd->origin))
        return s_bad (why, why_cap, "origin", BUS_RULE_NODE);
    //  Fields a type does not use are not read, but they are stored and
    //  fingerprinted: text, like every other string
    if (!s_text_in (cmd->table, sizeof cmd->table))
        return s_bad (why, why_cap, "table", BUS_RULE_TEXT);
    if (!bus_valid_note (cmd->note))
        return s_bad (why, why_cap, "note", BUS_RULE_NOTE);
    if (!s_text_in (cmd->item_id, sizeof cmd->item_id))
        return s_bad (why, why_cap, "item", BUS_RULE_TEXT);
    if (!s_text_in (cmd->station, sizeof cmd->station))
        return s_bad (why, why_cap, "stn", BUS_RULE_TEXT);
    if (cmd->line_count > BUS_LINES_MAX)
        return s_bad (why, why_cap, "lines", "must hold at most 50 lines");
    for (uint32_t i = 0; i < cmd->line_count; i++) {
        int rc = s_check_line (&cmd->lines[i], i, why, why_cap);
        if (rc)
            return rc;
    }
    return s_check_type (cmd, why, why_cap);
}

int
bus_strlcpy (char *dst, const char *src, size_t cap)
{
    size_t n = src ? strlen (src) : 0;
    if (n >= cap) {
        dst[0] = '\0';
        return BUS_ERR_INVALID;
    }
    memcpy (dst, src ? src : "", n + 1);
    return 0;
}
