/*  fuzz_menu.c — the menu loader (bus_menu_new): the writer's --menu file,
    and the document every gateway gets from the writer's sync socket.

    A menu it accepts has items that follow the rules orders rely on (ids,
    names that render), finds each by its id, survives an 86 and being
    loaded again from its own re-serialized document, and an order priced
    from it renders.  */

#include <string.h>
#include <czmq.h>
#include "orderbus/bus_menu.h"
#include "fuzz.h"

static bus_order_t s_order;

//  An order of one of each item (up to the most lines), named and priced
//  as the writer prices from the menu
static void
s_order_of (const bus_menu_t *menu)
{
    memset (&s_order, 0, sizeof s_order);
    s_order.id = s_order.seq = s_order.version = 1;
    s_order.status = BUS_STATUS_PLACED;
    strcpy (s_order.table, "T1");
    strcpy (s_order.key, "k");
    strcpy (s_order.origin, "gw");
    size_t n = bus_menu_size (menu);
    for (size_t i = 0; i < n && i < BUS_LINES_MAX; i++) {
        const bus_menu_item_t *item = bus_menu_item (menu, i);
        bus_line_t *line = &s_order.lines[s_order.line_count++];
        line->line_id = (uint32_t) i + 1;
        line->qty = 1;
        strcpy (line->item_id, item->id);
        strcpy (line->name, item->name);
        strcpy (line->station, item->station);
        line->unit_cents = item->price_cents;
        line->mod_count =
            item->mod_count < BUS_MODS_MAX ? item->mod_count : BUS_MODS_MAX;
        for (uint32_t m = 0; m < line->mod_count; m++) {
            line->mods[m] = item->mods[m];
            line->unit_cents += item->mods[m].delta_cents;
        }
    }
    fuzz_render_order (&s_order);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[256];
    bus_menu_t *menu =
        bus_menu_new ((const char *) data, size, err, sizeof err);
    if (!menu) {
        FUZZ_CHECK (err[0]);
        return 0;
    }
    size_t n = bus_menu_size (menu);
    for (size_t i = 0; i < n; i++) {
        const bus_menu_item_t *item = bus_menu_item (menu, i);
        FUZZ_CHECK (bus_valid_item_id (item->id) && bus_valid_name (item->name)
                    && bus_valid_item_id (item->station));
        FUZZ_CHECK (bus_menu_find (menu, item->id) == item);
        for (uint32_t m = 0; m < item->mod_count; m++)
            FUZZ_CHECK (bus_valid_item_id (item->mods[m].id)
                        && bus_valid_name (item->mods[m].name));
    }
    s_order_of (menu);
    if (n > 0) {
        const bus_menu_item_t *first = bus_menu_item (menu, 0);
        FUZZ_CHECK (bus_menu_set_available (menu, first->id, false) == 0);
        FUZZ_CHECK (!first->available);
    }
    bus_menu_t *again = bus_menu_new (
        bus_menu_json (menu), bus_menu_json_len (menu), err, sizeof err);
    FUZZ_CHECK (again && bus_menu_size (again) == n);
    bus_menu_destroy (&again);
    bus_menu_destroy (&menu);
    return 0;
}
