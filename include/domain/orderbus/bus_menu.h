/*  bus_menu.h — the menu: parsed from its JSON document, looked up by id.

    Document shape (unknown keys are ignored so later versions can add
    fields):
      {
        "name": "Bistro 92",                 optional string
        "categories": [                      1..64 categories
          { "id": "mains", "name": "Mains",
            "items": [                       0..256 items per category
              { "id": "burger",              bus_valid_item_id, unique
                "name": "Classic Burger",    1..80 chars
                "description": "...",        optional string
                "price_cents": 1250,         integer 0..10000000
                "station": "grill",          optional, default "kitchen"
                "available": true,           optional, default true
                "modifiers": [               optional, 0..16 per item
                  { "id": "cheese",          bus_valid_item_id, unique in the item
                    "name": "Extra cheese",  1..80 chars
                    "price_cents": 150 } ] } integer -100000..100000 (a delta)
            ] }
        ]
      }
    A document that breaks any rule is rejected whole with a message that
    names the offending path, e.g. "categories[1].items[0].price_cents:
    must be an integer from 0 to 10000000".  */

#ifndef BUS_MENU_H_INCLUDED
#define BUS_MENU_H_INCLUDED

#include "orderbus/bus_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_MENU_ITEMS_MAX 2048
#define BUS_MENU_MODS_MAX  16            /* modifier options per item */
#define BUS_MENU_DOC_MAX   (1024 * 1024) /* largest menu document, bytes */

typedef struct {
    char id[BUS_ID_MAX];
    char name[BUS_NAME_MAX];
    char category[BUS_ID_MAX];
    char station[BUS_ID_MAX];
    int64_t price_cents;
    bool available;
    uint32_t mod_count;
    bus_mod_t mods[BUS_MENU_MODS_MAX]; /* delta_cents = the option's price */
} bus_menu_item_t;

typedef struct _bus_menu_t bus_menu_t;

/*  Parse a menu document of len bytes.  Returns a new menu, or NULL with a
    message naming the problem in err[err_cap].  Caller owns the menu.  */
bus_menu_t *bus_menu_new (const char *json, size_t len, char *err,
                          size_t err_cap);

/*  Read and parse the file at path (at most BUS_MENU_DOC_MAX bytes).
    Returns a new menu or NULL with the reason (prefixed by the path).  */
bus_menu_t *bus_menu_load (const char *path, char *err, size_t err_cap);

/*  NULL-safe; sets *self_p to NULL.  */
void bus_menu_destroy (bus_menu_t **self_p);

/*  Find an item by id; NULL if there is none.  Borrowed pointer, valid
    for the menu's life.  */
const bus_menu_item_t *bus_menu_find (const bus_menu_t *self, const char *id);

/*  Find an item by its display name, ignoring case ("burger" finds
    "Burger"); NULL if there is none.  Borrowed.  */
const bus_menu_item_t *bus_menu_find_name (const bus_menu_t *self,
                                           const char *name);

/*  Find a modifier option of item by id; NULL if there is none.  */
const bus_mod_t *bus_menu_find_mod (const bus_menu_item_t *item,
                                    const char *mod_id);

/*  Mark item id available or not ("86" it), in the item and in the
    document bus_menu_json returns (re-serialized with jansson, keys in
    their original order).  0, BUS_ERR_NOT_FOUND, BUS_ERR_TOO_BIG (the
    document would grow past BUS_MENU_DOC_MAX: nothing changed), or
    BUS_ERR_NOMEM.  */
int bus_menu_set_available (bus_menu_t *self, const char *id, bool available);

/*  Number of items, and the i-th item (0-based, NULL past the end).  */
size_t bus_menu_size (const bus_menu_t *self);
const bus_menu_item_t *bus_menu_item (const bus_menu_t *self, size_t index);

/*  The document the menu was parsed from (as updated by
    bus_menu_set_available), NUL-terminated, and its length.  Borrowed:
    valid until the next bus_menu_set_available.  */
const char *bus_menu_json (const bus_menu_t *self);
size_t bus_menu_json_len (const bus_menu_t *self);

/*  Selftest.  */
void bus_menu_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
