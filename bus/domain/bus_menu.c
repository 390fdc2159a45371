/*  bus_menu.c — the menu: a validated JSON document, indexed by item id.

    The whole document is checked before a menu exists, so the writer never
    prices an order from a half-loaded menu.  Errors name the JSON path of
    the first problem found, in document order.

    The parsed document is kept: marking an item available or not ("86")
    edits it and re-serializes it, so every other key, and the order of
    keys, survives for the clients that render the menu.  */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <czmq.h>
#include <jansson.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_menu.h"

#define S_CATEGORIES_MAX     64
#define S_CATEGORY_ITEMS_MAX 256
#define S_PRICE_MAX          10000000
#define S_DELTA_MAX          100000
#define S_DEFAULT_STATION    "kitchen"

struct _bus_menu_t {
    char *json; /* the document, NUL-terminated copy       */
    size_t json_len;
    json_t *root;           /* the parsed document                     */
    bus_menu_item_t *items; /* document order                          */
    json_t **nodes;         /* items[i]'s object in root (borrowed)    */
    size_t size;
    size_t capacity;
    zhashx_t *index; /* item id -> item; keys point into items  */
};

/*  Where the parser is, for error messages.  */
typedef struct {
    bus_menu_t *menu;
    char *err;
    size_t err_cap;
    char path[64]; /* "" or "categories[3].items[12]" or
                                   "categories[3].items[12].modifiers[2]" */
} s_parser_t;

/*  Write "<path>.<field>: <message>" into the caller's buffer; the document
    itself is called "(document)".  Returns -1 so callers can return it.  */
static int
s_fail (s_parser_t *p, const char *field, const char *format, ...)
{
    if (!p->err || p->err_cap == 0)
        return -1;
    const char *path = *p->path || field ? p->path : "(document)";
    const char *dot = *p->path && field ? "." : "";
    int n = snprintf (p->err, p->err_cap, "%s%s%s: ", path, dot,
                      field ? field : "");
    if (n >= 0 && (size_t) n < p->err_cap) {
        va_list args;
        va_start (args, format);
        vsnprintf (p->err + n, p->err_cap - n, format, args);
        va_end (args);
    }
    return -1;
}

/*  Parse one modifier option into item->mods[item->mod_count]; p->path
    names the option.  */
static int
s_parse_mod (s_parser_t *p, json_t *obj, bus_menu_item_t *item)
{
    if (!json_is_object (obj))
        return s_fail (p, NULL, "must be an object");
    const char *id = json_string_value (json_object_get (obj, "id"));
    if (!bus_valid_item_id (id))
        return s_fail (p, "id", "%s", BUS_RULE_ID);
    if (bus_menu_find_mod (item, id))
        return s_fail (p, "id", "duplicate modifier id '%s'", id);
    const char *name = json_string_value (json_object_get (obj, "name"));
    if (!bus_valid_name (name))
        return s_fail (p, "name", "%s", BUS_RULE_NAME);
    json_t *price = json_object_get (obj, "price_cents");
    if (!json_is_integer (price) || json_integer_value (price) < -S_DELTA_MAX
        || json_integer_value (price) > S_DELTA_MAX)
        return s_fail (p, "price_cents", "must be an integer from %d to %d",
                       -S_DELTA_MAX, S_DELTA_MAX);

    bus_mod_t *mod = &item->mods[item->mod_count++];
    bus_strlcpy (mod->id, id, sizeof mod->id);
    bus_strlcpy (mod->name, name, sizeof mod->name);
    mod->delta_cents = json_integer_value (price);
    return 0;
}

/*  Parse the item's optional "modifiers" into item.  */
static int
s_parse_mods (s_parser_t *p, json_t *obj, bus_menu_item_t *item)
{
    json_t *mods = json_object_get (obj, "modifiers");
    if (!mods)
        return 0;
    if (!json_is_array (mods) || json_array_size (mods) > BUS_MENU_MODS_MAX)
        return s_fail (p, "modifiers",
                       "must be an array of at most %d "
                       "modifiers",
                       BUS_MENU_MODS_MAX);
    //  Each option's path extends the item's, which is put back after
    size_t item_path = strlen (p->path);
    for (size_t i = 0; i < json_array_size (mods); i++) {
        snprintf (p->path + item_path, sizeof p->path - item_path,
                  ".modifiers[%zu]", i);
        if (s_parse_mod (p, json_array_get (mods, i), item))
            return -1;
    }
    p->path[item_path] = '\0';
    return 0;
}

static int
s_parse_item (s_parser_t *p, json_t *obj, const char *category)
{
    if (!json_is_object (obj))
        return s_fail (p, NULL, "must be an object");
    const char *id = json_string_value (json_object_get (obj, "id"));
    if (!bus_valid_item_id (id))
        return s_fail (p, "id", "%s", BUS_RULE_ID);
    if (zhashx_lookup (p->menu->index, id))
        return s_fail (p, "id", "duplicate item id '%s'", id);
    const char *name = json_string_value (json_object_get (obj, "name"));
    if (!bus_valid_name (name))
        return s_fail (p, "name", "%s", BUS_RULE_NAME);
    json_t *description = json_object_get (obj, "description");
    if (description && !json_is_string (description))
        return s_fail (p, "description", "must be a string");

    json_t *price = json_object_get (obj, "price_cents");
    if (!json_is_integer (price) || json_integer_value (price) < 0
        || json_integer_value (price) > S_PRICE_MAX)
        return s_fail (p, "price_cents", "must be an integer from 0 to %d",
                       S_PRICE_MAX);
    json_t *station = json_object_get (obj, "station");
    const char *station_id =
        station ? json_string_value (station) : S_DEFAULT_STATION;
    if (!bus_valid_item_id (station_id))
        return s_fail (p, "station", "%s", BUS_RULE_ID);
    json_t *available = json_object_get (obj, "available");
    if (available && !json_is_boolean (available))
        return s_fail (p, "available", "must be true or false");

    //  The slot is only counted once the item is whole; a failure here
    //  discards the menu, so a half-filled slot is never seen
    bus_menu_item_t *item = &p->menu->items[p->menu->size];
    if (s_parse_mods (p, obj, item))
        return -1;
    //  Every string was length-checked above, so the copies cannot fail
    p->menu->nodes[p->menu->size++] = obj;
    bus_strlcpy (item->id, id, sizeof item->id);
    bus_strlcpy (item->name, name, sizeof item->name);
    bus_strlcpy (item->category, category, sizeof item->category);
    bus_strlcpy (item->station, station_id, sizeof item->station);
    item->price_cents = json_integer_value (price);
    item->available = !available || json_is_true (available);
    zhashx_insert (p->menu->index, item->id, item);
    return 0;
}

static int
s_parse_category (s_parser_t *p, json_t *obj, size_t index)
{
    snprintf (p->path, sizeof p->path, "categories[%zu]", index);
    if (!json_is_object (obj))
        return s_fail (p, NULL, "must be an object");
    const char *id = json_string_value (json_object_get (obj, "id"));
    if (!bus_valid_item_id (id))
        return s_fail (p, "id", "%s", BUS_RULE_ID);
    const char *name = json_string_value (json_object_get (obj, "name"));
    if (!name || !*name)
        return s_fail (p, "name", "must be a non-empty string");
    json_t *items = json_object_get (obj, "items");
    if (!json_is_array (items)
        || json_array_size (items) > S_CATEGORY_ITEMS_MAX)
        return s_fail (p, "items", "must be an array of at most %d items",
                       S_CATEGORY_ITEMS_MAX);

    for (size_t i = 0; i < json_array_size (items); i++) {
        snprintf (p->path, sizeof p->path, "categories[%zu].items[%zu]", index,
                  i);
        if (p->menu->size == p->menu->capacity)
            return s_fail (p, NULL, "the menu has more than %d items",
                           BUS_MENU_ITEMS_MAX);
        if (s_parse_item (p, json_array_get (items, i), id))
            return -1;
    }
    return 0;
}

/*  Items the document declares, at most BUS_MENU_ITEMS_MAX: enough room
    for all of them, so item pointers (and the index's keys) never move.
    Malformed categories count 0 and are reported by s_parse_category.  */
static size_t
s_count_items (json_t *categories)
{
    size_t count = 0;
    for (size_t i = 0; i < json_array_size (categories); i++) {
        json_t *category = json_array_get (categories, i);
        count += json_array_size (json_object_get (category, "items"));
    }
    return count < BUS_MENU_ITEMS_MAX ? count : BUS_MENU_ITEMS_MAX;
}

static int
s_parse_document (s_parser_t *p, json_t *root)
{
    if (!json_is_object (root))
        return s_fail (p, NULL, "must be a JSON object");
    json_t *name = json_object_get (root, "name");
    if (name && !json_is_string (name))
        return s_fail (p, "name", "must be a string");
    json_t *categories = json_object_get (root, "categories");
    if (!json_is_array (categories) || json_array_size (categories) == 0
        || json_array_size (categories) > S_CATEGORIES_MAX)
        return s_fail (p, "categories",
                       "must be a non-empty array of at "
                       "most %d categories",
                       S_CATEGORIES_MAX);

    p->menu->capacity = s_count_items (categories);
    if (p->menu->capacity) {
        p->menu->items = calloc (p->menu->capacity, sizeof *p->menu->items);
        p->menu->nodes = calloc (p->menu->capacity, sizeof *p->menu->nodes);
        if (!p->menu->items || !p->menu->nodes)
            return s_fail (p, NULL, "out of memory");
    }
    for (size_t i = 0; i < json_array_size (categories); i++)
        if (s_parse_category (p, json_array_get (categories, i), i))
            return -1;
    return 0;
}

bus_menu_t *
bus_menu_new (const char *json, size_t len, char *err, size_t err_cap)
{
    s_parser_t parser = { .err = err, .err_cap = err_cap };
    bus_menu_t *self = calloc (1, sizeof *self);
    if (!self || !(self->json = malloc (len + 1))
        || !(self->index = zhashx_new ())) {
        s_fail (&parser, NULL, "out of memory");
        goto fail;
    }
    //  Keys are the ids stored in items, which outlive the index
    zhashx_set_key_duplicator (self->index, NULL);
    zhashx_set_key_destructor (self->index, NULL);
    if (len)
        memcpy (self->json, json, len);
    self->json[len] = '\0';
    self->json_len = len;
    parser.menu = self;

    //  Objects keep their keys in document order (jansson >= 2.8), so a
    //  re-serialized document reads like the original
    json_error_t jerr;
    self->root =
        json_loadb (json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!self->root) {
        s_fail (&parser, NULL, "not valid JSON: %s at line %d column %d",
                jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    if (s_parse_document (&parser, self->root))
        goto fail;
    return self;

fail:
    bus_menu_destroy (&self);
    return NULL;
}

/*  Read the whole file into a new buffer.  Returns 0, or -1 with the
    reason in err.  */
static int
s_read_file (const char *path, char **doc, size_t *len, char *err,
             size_t err_cap)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        snprintf (err, err_cap, "cannot open: %s", strerror (errno));
        return -1;
    }
    //  One byte more than allowed tells a full-size file from a larger one
    *doc = malloc (BUS_MENU_DOC_MAX + 1);
    *len = *doc ? fread (*doc, 1, BUS_MENU_DOC_MAX + 1, file) : 0;
    int rc = -1;
    if (!*doc)
        snprintf (err, err_cap, "out of memory");
    else if (ferror (file))
        snprintf (err, err_cap, "cannot read: %s", strerror (errno));
    else if (*len > BUS_MENU_DOC_MAX)
        snprintf (err, err_cap, "file is larger than %d bytes",
                  BUS_MENU_DOC_MAX);
    else
        rc = 0;
    fclose (file);
    return rc;
}

bus_menu_t *
bus_menu_load (const char *path, char *err, size_t err_cap)
{
    assert (path);
    char reason[512] = "";
    char *doc = NULL;
    size_t len = 0;
    bus_menu_t *self = NULL;
    if (s_read_file (path, &doc, &len, reason, sizeof reason) == 0)
        self = bus_menu_new (doc, len, reason, sizeof reason);
    if (!self && err && err_cap)
        snprintf (err, err_cap, "%s: %s", path, reason);
    free (doc);
    return self;
}

void
bus_menu_destroy (bus_menu_t **self_p)
{
    if (self_p && *self_p) {
        bus_menu_t *self = *self_p;
        zhashx_destroy (&self->index);
        json_decref (self->root);
        free (self->nodes);
        free (self->items);
        free (self->json);
        free (self);
        *self_p = NULL;
    }
}

const bus_menu_item_t *
bus_menu_find (const bus_menu_t *self, const char *id)
{
    assert (self);
    return id ? (const bus_menu_item_t *) zhashx_lookup (self->index, id)
              : NULL;
}

const bus_menu_item_t *
bus_menu_find_name (const bus_menu_t *self, const char *name)
{
    //  Only the seed-compatible routes ask by name: a scan will do
    for (size_t i = 0; name && i < self->size; i++)
        if (strcasecmp (self->items[i].name, name) == 0)
            return &self->items[i];
    return NULL;
}

const bus_mod_t *
bus_menu_find_mod (const bus_menu_item_t *item, const char *mod_id)
{
    if (!item || !mod_id)
        return NULL;
    //  At most 16 options: a scan beats any index
    for (uint32_t i = 0; i < item->mod_count && i < BUS_MENU_MODS_MAX; i++)
        if (strcmp (item->mods[i].id, mod_id) == 0)
            return &item->mods[i];
    return NULL;
}

/*  Set or add node's "available"; return 0 or BUS_ERR_NOMEM, and the old
    value (NULL if it had none) in *previous, with a reference.  */
static int
s_node_set (json_t *node, bool available, json_t **previous)
{
    *previous = json_incref (json_object_get (node, "available"));
    if (json_object_set_new (node, "available", json_boolean (available))) {
        json_decref (*previous);
        return BUS_ERR_NOMEM;
    }
    return 0;
}

/*  Put back what s_node_set replaced, releasing previous.  */
static void
s_node_restore (json_t *node, json_t *previous)
{
    if (previous)
        json_object_set_new (node, "available", previous);
    else
        json_object_del (node, "available");
}

int
bus_menu_set_available (bus_menu_t *self, const char *id, bool available)
{
    assert (self);
    bus_menu_item_t *item = id ? zhashx_lookup (self->index, id) : NULL;
    if (!item)
        return BUS_ERR_NOT_FOUND;
    json_t *node = self->nodes[item - self->items];
    json_t *previous;
    if (s_node_set (node, available, &previous))
        return BUS_ERR_NOMEM;
    //  Compact: the text travels in sync replies and is stored in LMDB
    char *json = json_dumps (self->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    //  Past the largest document a replica takes (its frame limit, and
    //  bus_menu_load's): refused, so the menu stays one every node can
    //  read, rather than one a replica is disconnected for
    int rc = !json                              ? BUS_ERR_NOMEM
             : strlen (json) > BUS_MENU_DOC_MAX ? BUS_ERR_TOO_BIG
                                                : 0;
    if (rc != 0) {
        //  Item, document and text must keep telling the same story
        free (json);
        s_node_restore (node, previous);
        return rc;
    }
    json_decref (previous);
    free (self->json);
    self->json = json;
    self->json_len = strlen (json);
    item->available = available;
    return 0;
}

size_t
bus_menu_size (const bus_menu_t *self)
{
    assert (self);
    return self->size;
}

const bus_menu_item_t *
bus_menu_item (const bus_menu_t *self, size_t index)
{
    assert (self);
    return index < self->size ? &self->items[index] : NULL;
}

const char *
bus_menu_json (const bus_menu_t *self)
{
    assert (self);
    return self->json;
}

size_t
bus_menu_json_len (const bus_menu_t *self)
{
    assert (self);
    return self->json_len;
}
