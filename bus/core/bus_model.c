/*  bus_model.c — names and validation rules of the bus's nouns.  */

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

bool
bus_valid_item_id (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n >= BUS_ID_MAX)
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

/*  Length of the UTF-8 sequence starting at p (1..4), 0 if invalid.  */
static size_t
s_utf8_len (const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = (p[0] & 0xe0) == 0xc0   ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && p[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

bool
bus_valid_note (const char *s)
{
    if (!s || strlen (s) >= BUS_NOTE_MAX)
        return false;
    const unsigned char *p = (const unsigned char *) s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        size_t n = s_utf8_len (p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
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
