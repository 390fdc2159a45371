/*  bus_menu_test.c — selftest of the menu (bus_menu.h), kept
    apart from bus_menu.c so the module reads as what it does: the demo
    menu, modifiers, availability (86) and its rewrite of the document,
    limits and rejected documents.  */

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

//  The checks below are asserts: keep them in release (NDEBUG) builds too
#undef NDEBUG
#include <assert.h>

#ifdef ORDERBUS_SHARE_DIR
#define S_TEST_MENU ORDERBUS_SHARE_DIR "/config/demo-menu.json"
#else
#define S_TEST_MENU "./config/demo-menu.json"
#endif

#define S_X10 "xxxxxxxxxx"
#define S_CAT(items) \
    "{\"categories\":[{\"id\":\"c\",\"name\":\"C\",\"items\":[" items "]}]}"

/*  An item "x" with the given modifiers, and one modifier option.  */
#define S_MOD(mods)                                          \
    S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1," \
           "\"modifiers\":[" mods "]}")
#define S_OPT(id, cents) \
    "{\"id\":\"" id "\",\"name\":\"N\",\"price_cents\":" #cents "}"

typedef struct {
    const char *doc;
    const char *expect; /* substring of the error message */
} s_broken_t;

static const s_broken_t s_broken[] = {
    { "{\"categories\": [", "(document): not valid JSON: " },
    { "", "(document): not valid JSON: " },
    { "[]", "(document): must be a JSON object" },
    { "{\"name\": 7, \"categories\": []}", "name: must be a string" },
    { "{}", "categories: must be a non-empty array of at most 64 categories" },
    { "{\"categories\": []}", "categories: must be a non-empty array" },
    { "{\"categories\": {}}", "categories: must be a non-empty array" },
    { "{\"categories\": [1]}", "categories[0]: must be an object" },
    { "{\"categories\": [{\"name\": \"A\", \"items\": []}]}",
      "categories[0].id: must be a string" },
    { "{\"categories\": [{\"id\": \"a\", \"items\": []}]}",
      "categories[0].name: must be a non-empty string" },
    { "{\"categories\": [{\"id\": \"a\", \"name\": \"A\"}]}",
      "categories[0].items: must be an array of at most 256 items" },
    { "{\"categories\": [{\"id\": \"a\", \"name\": \"A\", \"items\": []},"
      " {\"id\": \"b\", \"name\": \"B\", \"items\": [{\"id\": \"x\","
      " \"name\": \"X\"}]}]}",
      "categories[1].items[0].price_cents: must be an integer from 0 to 10000000" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":-1}"),
      "categories[0].items[0].price_cents: must be an integer" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":12.5}"),
      "categories[0].items[0].price_cents" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1250.0}"),
      "categories[0].items[0].price_cents" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":\"1250\"}"),
      "categories[0].items[0].price_cents" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":10000001}"),
      "categories[0].items[0].price_cents" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1e3}"),
      "categories[0].items[0].price_cents" },
    { "{\"categories\": [{\"id\": \"a\", \"name\": \"A\", \"items\": ["
      "{\"id\": \"burger\", \"name\": \"Burger\", \"price_cents\": 1}]},"
      "{\"id\": \"b\", \"name\": \"B\", \"items\": ["
      "{\"id\": \"fries\", \"name\": \"Fries\", \"price_cents\": 1},"
      "{\"id\": \"burger\", \"name\": \"Burger\", \"price_cents\": 1}]}]}",
      "categories[1].items[1].id: duplicate item id 'burger'" },
    { S_CAT ("{\"id\":\"bur ger\",\"name\":\"X\",\"price_cents\":1}"),
      "categories[0].items[0].id: must be a string" },
    { S_CAT ("{\"id\":\"x/y\",\"name\":\"X\",\"price_cents\":1}"),
      "categories[0].items[0].id" },
    { S_CAT ("{\"name\":\"X\",\"price_cents\":1}"),
      "categories[0].items[0].id" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"" S_X10 S_X10 S_X10 S_X10 S_X10 S_X10
                 S_X10 S_X10 "x\",\"price_cents\":1}"),
      "categories[0].items[0].name: must be a string of 1 to 80 bytes" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"\",\"price_cents\":1}"),
      "categories[0].items[0].name" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"a\\tb\",\"price_cents\":1}"),
      "categories[0].items[0].name" },
    { S_CAT (
          "{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1,\"description\":2}"),
      "categories[0].items[0].description: must be a string" },
    { S_CAT (
          "{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1,\"station\":\"a b\"}"),
      "categories[0].items[0].station" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1,\"available\":1}"),
      "categories[0].items[0].available: must be true or false" },
    { S_CAT ("\"x\""), "categories[0].items[0]: must be an object" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1,"
             "\"modifiers\":{}}"),
      "categories[0].items[0].modifiers: must be an array of at most 16 "
      "modifiers" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1,"
             "\"modifiers\":null}"),
      "categories[0].items[0].modifiers: must" },
    { S_MOD ("\"cheese\""), "categories[0].items[0].modifiers[0]: must be an "
                            "object" },
    { S_MOD (S_OPT ("a", 0) ", 7"), "categories[0].items[0].modifiers[1]: must "
                                    "be an object" },
    { S_MOD ("{\"name\":\"A\",\"price_cents\":0}"),
      "categories[0].items[0].modifiers[0].id: must be a string of 1 to 32 "
      "characters from A-Z, a-z, 0-9, '_', '.' and '-'" },
    { S_MOD (S_OPT ("a", 0) ", " S_OPT ("b c", 0)),
      "categories[0].items[0].modifiers[1].id: must be a string" },
    { S_MOD (S_OPT ("a", 0) ", " S_OPT ("b", 0) ", " S_OPT ("a", 5)),
      "categories[0].items[0].modifiers[2].id: duplicate modifier id 'a'" },
    { S_MOD ("{\"id\":\"a\",\"price_cents\":0}"),
      "categories[0].items[0].modifiers[0].name: must be a string of 1 to 80 "
      "bytes of UTF-8 text without control characters" },
    { S_MOD ("{\"id\":\"a\",\"name\":\"\",\"price_cents\":0}"),
      "categories[0].items[0].modifiers[0].name: must be a string of 1 to 80" },
    { S_MOD ("{\"id\":\"a\",\"name\":\"a\\nb\",\"price_cents\":0}"),
      "categories[0].items[0].modifiers[0].name: must be a string of 1 to 80" },
    { S_MOD ("{\"id\":\"a\",\"name\":\"" S_X10 S_X10 S_X10 S_X10 S_X10 S_X10
                 S_X10 S_X10 "x\",\"price_cents\":0}"),
      "categories[0].items[0].modifiers[0].name: must be a string of 1 to 80" },
    { S_MOD ("{\"id\":\"a\",\"name\":\"A\"}"),
      "categories[0].items[0].modifiers[0].price_cents: must be an integer "
      "from -100000 to 100000" },
    { S_MOD (S_OPT ("a", 0) ", " S_OPT ("b", -100001)),
      "categories[0].items[0].modifiers[1].price_cents: must be an integer "
      "from -100000 to 100000" },
    { S_MOD (S_OPT ("a", 100001)),
      "categories[0].items[0].modifiers[0].price_cents: must be an integer "
      "from -100000 to 100000" },
    { S_MOD ("{\"id\":\"a\",\"name\":\"A\",\"price_cents\":1.5}"),
      "categories[0].items[0].modifiers[0].price_cents: must be an integer" },
    { S_MOD ("{\"id\":\"a\",\"name\":\"A\",\"price_cents\":\"150\"}"),
      "categories[0].items[0].modifiers[0].price_cents: must be an integer" },
    //  The item's own fields are checked before its modifiers, and the
    //  next item's path carries nothing of the last one's modifiers
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":-1,"
             "\"modifiers\":[7]}"),
      "categories[0].items[0].price_cents: must be an integer from 0" },
    { S_CAT ("{\"id\":\"x\",\"name\":\"X\",\"price_cents\":1,"
             "\"modifiers\":[" S_OPT (
                 "a", 0) "]},"
                         "{\"id\":\"y\",\"name\":\"Y\",\"price_cents\":1,"
                         "\"modifiers\":[" S_OPT ("a", 0) "],\"available\":0}"),
      "categories[0].items[1].available: must be true or false" },
    { "{\"categories\": [], \"categories\": []}",
      "(document): not valid JSON" },
};

/*  A generated menu document with the given shape; caller frees.  */
static char *
s_test_menu_doc (size_t categories, size_t items_each)
{
    char *doc = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&doc, &size);
    assert (stream);
    fprintf (stream, "{\"categories\": [");
    for (size_t c = 0; c < categories; c++) {
        fprintf (stream, "%s{\"id\": \"c%zu\", \"name\": \"C\", \"items\": [",
                 c ? "," : "", c);
        for (size_t i = 0; i < items_each; i++)
            fprintf (stream,
                     "%s{\"id\": \"i%zu-%zu\", \"name\": \"Item\","
                     " \"price_cents\": %zu}",
                     i ? "," : "", c, i, i);
        fprintf (stream, "]}");
    }
    fprintf (stream, "]}");
    fclose (stream);
    return doc;
}

static void
s_test_reject (const char *doc, const char *expect, bool verbose)
{
    char err[512] = "";
    bus_menu_t *menu = bus_menu_new (doc, strlen (doc), err, sizeof err);
    if (verbose)
        printf ("   rejected: %s\n", err);
    assert (menu == NULL);
    assert (strstr (err, expect));
}

static void
s_test_demo (void)
{
    char err[512] = "";
    bus_menu_t *menu = bus_menu_load (S_TEST_MENU, err, sizeof err);
    if (!menu)
        fprintf (stderr, "bus_menu_test: %s\n", err);
    assert (menu);
    assert (bus_menu_size (menu) == 32);
    assert (bus_menu_item (menu, 32) == NULL);
    assert (streq (bus_menu_item (menu, 0)->id, "soup"));

    const bus_menu_item_t *burger = bus_menu_find (menu, "burger");
    assert (burger);
    assert (streq (burger->name, "Burger"));
    assert (streq (burger->category, "mains"));
    assert (streq (burger->station, "grill"));
    assert (burger->price_cents == 1650);
    assert (burger->available);
    assert (streq (bus_menu_find (menu, "ice-cream")->name, "Ice Cream"));
    assert (streq (bus_menu_find (menu, "soup")->station, "kitchen"));
    assert (streq (bus_menu_find (menu, "creme-brulee")->name, "Crème Brûlée"));
    const char *ids[] = { "fries", "salmon", "caesar", "cola" };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        assert (bus_menu_find (menu, ids[i]));
    assert (bus_menu_find (menu, "Burger") == NULL);
    assert (bus_menu_find (menu, "") == NULL);
    assert (bus_menu_find (menu, NULL) == NULL);

    size_t unavailable = 0;
    for (size_t i = 0; i < bus_menu_size (menu); i++)
        if (!bus_menu_item (menu, i)->available) {
            assert (streq (bus_menu_item (menu, i)->id, "asparagus"));
            unavailable++;
        }
    assert (unavailable == 1);

    //  Modifier options, and ids that repeat across items but not within
    assert (burger->mod_count == 7);
    const bus_mod_t *cheese = bus_menu_find_mod (burger, "cheese");
    assert (cheese && streq (cheese->name, "Extra cheese"));
    assert (cheese->delta_cents == 150);
    assert (bus_menu_find_mod (burger, "bacon")->delta_cents == 250);
    assert (bus_menu_find_mod (burger, "no-onions")->delta_cents == 0);
    assert (bus_menu_find_mod (burger, "large") == NULL);
    assert (bus_menu_find_mod (burger, "") == NULL);
    assert (bus_menu_find_mod (burger, NULL) == NULL);
    assert (bus_menu_find_mod (NULL, "cheese") == NULL);
    const bus_menu_item_t *fries = bus_menu_find (menu, "fries");
    assert (bus_menu_find_mod (fries, "large")->delta_cents == 200);
    assert (bus_menu_find_mod (fries, "cheese") == NULL);
    assert (bus_menu_find_mod (bus_menu_find (menu, "steak-frites"), "rare"));
    assert (bus_menu_find_mod (bus_menu_find (menu, "cola"), "no-ice"));
    assert (bus_menu_find_mod (bus_menu_find (menu, "cappuccino"), "oat-milk")
                ->delta_cents
            == 60);
    assert (bus_menu_find (menu, "salmon")->mod_count == 0);
    assert (bus_menu_find (menu, "asparagus")->mod_count == 0);

    const char *json = bus_menu_json (menu);
    assert (json[0] == '{');
    assert (strlen (json) == bus_menu_json_len (menu));
    assert (json[bus_menu_json_len (menu) - 1] == '\n');
    bus_menu_destroy (&menu);
    assert (menu == NULL);
    bus_menu_destroy (&menu);
}

static void
s_test_mods (void)
{
    //  Bounds of a delta, an empty list, and 16 options (the most allowed)
    const char *doc = S_CAT (
        "{\"id\":\"x\",\"name\":\"X\",\"price_cents\":0,\"modifiers\":["
        "{\"id\":\"lo\",\"name\":\"Lo\",\"price_cents\":-100000,\"k\":1},"
        "{\"id\":\"hi\",\"name\":\"H\\u00ef\",\"price_cents\":100000}]},"
        "{\"id\":\"y\",\"name\":\"Y\",\"price_cents\":0,\"modifiers\":[]},"
        "{\"id\":\"z\",\"name\":\"Z\",\"price_cents\":0,\"modifiers\":[" S_OPT ("m0", 0) "," S_OPT ("m1", 1) "," S_OPT ("m2", 2) "," S_OPT ("m3", 3) "," S_OPT ("m4", 4) "," S_OPT (
            "m5",
            5) "," S_OPT ("m6",
                          6) "," S_OPT ("m7",
                                        7) "," S_OPT ("m8",
                                                      8) "," S_OPT ("m9",
                                                                    9) "," S_OPT ("m10",
                                                                                  10) "," S_OPT ("m11",
                                                                                                 11) "," S_OPT ("m12",
                                                                                                                12) "," S_OPT ("m13",
                                                                                                                               13) "," S_OPT ("m14",
                                                                                                                                              14) "," S_OPT ("m15",
                                                                                                                                                             15) "]}");
    char err[512] = "";
    bus_menu_t *menu = bus_menu_new (doc, strlen (doc), err, sizeof err);
    assert (menu);
    const bus_menu_item_t *x = bus_menu_find (menu, "x");
    assert (x->mod_count == 2);
    assert (streq (x->mods[0].id, "lo") && streq (x->mods[0].name, "Lo"));
    assert (x->mods[0].delta_cents == -100000);
    assert (streq (x->mods[1].name, "H\xc3\xaf"));
    assert (bus_menu_find_mod (x, "hi") == &x->mods[1]);
    assert (bus_menu_find_mod (x, "hi")->delta_cents == 100000);
    assert (bus_menu_find (menu, "y")->mod_count == 0);
    const bus_menu_item_t *z = bus_menu_find (menu, "z");
    assert (z->mod_count == BUS_MENU_MODS_MAX);
    assert (bus_menu_find_mod (z, "m15")->delta_cents == 15);
    bus_menu_destroy (&menu);

    //  17 options is one too many
    doc = S_MOD (
        S_OPT ("m0", 0) "," S_OPT ("m1", 1) "," S_OPT ("m2", 2) "," S_OPT ("m3", 3) "," S_OPT ("m4", 4) "," S_OPT ("m5", 5) "," S_OPT ("m6", 6) "," S_OPT (
            "m7",
            7) "," S_OPT ("m8",
                          8) "," S_OPT ("m9",
                                        9) "," S_OPT ("m10",
                                                      10) "," S_OPT ("m11",
                                                                     11) "," S_OPT ("m12",
                                                                                    12) "," S_OPT ("m13",
                                                                                                   13) "," S_OPT ("m14",
                                                                                                                  14) "," S_OPT ("m15",
                                                                                                                                 15) "," S_OPT ("m16",
                                                                                                                                                16));
    assert (!bus_menu_new (doc, strlen (doc), err, sizeof err));
    assert (streq (err, "categories[0].items[0].modifiers: must be an array "
                        "of at most 16 modifiers"));
}

/*  The available flag of item id in a menu parsed back from menu's text.  */
static bool
s_test_reparsed_available (const bus_menu_t *menu, const char *id)
{
    bus_menu_t *copy =
        bus_menu_new (bus_menu_json (menu), bus_menu_json_len (menu), NULL, 0);
    assert (copy);
    assert (bus_menu_size (copy) == bus_menu_size (menu));
    bool available = bus_menu_find (copy, id)->available;
    bus_menu_destroy (&copy);
    return available;
}

static void *
s_test_no_malloc (size_t size)
{
    return NULL;
}

/*  Out of memory while marking an item: nothing changes, and the
    document is still whole for the next, successful, change.  */
static void
s_test_set_available_nomem (bus_menu_t *menu)
{
    const char *text = bus_menu_json (menu);
    assert (!bus_menu_find (menu, "cola")->available);
    //  cola has the key (the dump fails), burger does not (adding fails)
    json_set_alloc_funcs (s_test_no_malloc, free);
    int cola = bus_menu_set_available (menu, "cola", true);
    int burger = bus_menu_set_available (menu, "burger", false);
    json_set_alloc_funcs (malloc, free);
    assert (cola == BUS_ERR_NOMEM && burger == BUS_ERR_NOMEM);
    assert (bus_menu_json (menu) == text);
    assert (!bus_menu_find (menu, "cola")->available);
    assert (bus_menu_find (menu, "burger")->available);
    assert (bus_menu_set_available (menu, "pizza", true) == BUS_ERR_NOT_FOUND);
    assert (bus_menu_set_available (menu, "cola", true) == 0);
    assert (strstr (bus_menu_json (menu),
                    "\"station\":\"bar\",\"available\":"
                    "true,\"modifiers\":[{\"id\":\"no-ice\""));
    assert (!strstr (bus_menu_json (menu), "\"Well done\",\"price_cents\":0}],"
                                           "\"available\""));
    assert (s_test_reparsed_available (menu, "burger"));
}

static void
s_test_set_available (void)
{
    char err[512] = "";
    bus_menu_t *menu = bus_menu_load (S_TEST_MENU, err, sizeof err);
    assert (menu);
    //  Unknown ids change nothing, not even the text's address
    const char *original = bus_menu_json (menu);
    size_t original_len = bus_menu_json_len (menu);
    assert (bus_menu_set_available (menu, "pizza", false) == BUS_ERR_NOT_FOUND);
    assert (bus_menu_set_available (menu, NULL, false) == BUS_ERR_NOT_FOUND);
    assert (bus_menu_json (menu) == original);
    assert (bus_menu_json_len (menu) == original_len);

    //  A key the item did not have is added after its others
    assert (bus_menu_set_available (menu, "fries", false) == 0);
    assert (!bus_menu_find (menu, "fries")->available);
    assert (!s_test_reparsed_available (menu, "fries"));
    const char *json = bus_menu_json (menu);
    assert (strlen (json) == bus_menu_json_len (menu));
    assert (bus_menu_json_len (menu) < original_len);   //  now compact
    assert (strstr (json, "{\"name\":\"Bistro 92\",\"categories\":[{\"id\":"
                          "\"starters\",\"name\":\"Starters\",\"items\":[{"
                          "\"id\":\"soup\",\"name\":\"French Onion Soup\","
                          "\"description\":\"Slow-cooked onions, beef broth, "
                          "gruy\xc3\xa8re crouton\",\"price_cents\":950,")
            == json);
    assert (strstr (json, "{\"id\":\"no-salt\",\"name\":\"No salt\","
                          "\"price_cents\":0}],\"available\":false}"));

    //  A key the item had keeps its place
    assert (bus_menu_set_available (menu, "asparagus", true) == 0);
    assert (bus_menu_find (menu, "asparagus")->available);
    assert (s_test_reparsed_available (menu, "asparagus"));
    assert (strstr (bus_menu_json (menu), "\"price_cents\":800,\"station\":"
                                          "\"grill\",\"available\":true}"));
    assert (bus_menu_set_available (menu, "cola", false) == 0);
    assert (strstr (bus_menu_json (menu),
                    "\"station\":\"bar\",\"available\":"
                    "false,\"modifiers\":[{\"id\":\"no-ice\""));
    assert (!s_test_reparsed_available (menu, "cola"));

    //  Setting what is already set is harmless; the rest is untouched
    assert (bus_menu_set_available (menu, "fries", false) == 0);
    assert (bus_menu_set_available (menu, "fries", true) == 0);
    assert (bus_menu_find (menu, "fries")->available);
    assert (strstr (bus_menu_json (menu), "\"available\":true}"));
    assert (s_test_reparsed_available (menu, "fries"));
    assert (s_test_reparsed_available (menu, "burger"));
    assert (bus_menu_find_mod (bus_menu_find (menu, "burger"), "cheese"));
    s_test_set_available_nomem (menu);
    bus_menu_destroy (&menu);
}

static void
s_test_limits (bool verbose)
{
    //  8 x 256 is exactly the limit; 9 x 228 crosses it at item 2049
    char *doc = s_test_menu_doc (8, 256);
    bus_menu_t *menu = bus_menu_new (doc, strlen (doc), NULL, 0);
    assert (menu && bus_menu_size (menu) == BUS_MENU_ITEMS_MAX);
    assert (bus_menu_find (menu, "i7-255")->price_cents == 255);
    bus_menu_destroy (&menu);
    free (doc);

    doc = s_test_menu_doc (9, 228);
    s_test_reject (
        doc, "categories[8].items[224]: the menu has more than 2048 items",
        verbose);
    free (doc);
    doc = s_test_menu_doc (1, 257);
    s_test_reject (doc, "categories[0].items: must be an array of at most 256",
                   verbose);
    free (doc);
    doc = s_test_menu_doc (65, 0);
    s_test_reject (doc, "categories: must be a non-empty array", verbose);
    free (doc);
    doc = s_test_menu_doc (64, 0);
    menu = bus_menu_new (doc, strlen (doc), NULL, 0);
    assert (menu && bus_menu_size (menu) == 0);
    assert (bus_menu_item (menu, 0) == NULL);
    assert (bus_menu_find (menu, "x") == NULL);
    bus_menu_destroy (&menu);
    free (doc);
}

static void
s_test_files (bool verbose)
{
    char err[512] = "";
    assert (!bus_menu_load ("/nonexistent/menu.json", err, sizeof err));
    assert (strstr (err, "/nonexistent/menu.json: cannot open: "));

    char path[] = "/tmp/bus_menu_test.XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    assert (file);
    fputs ("{\"categories\": [{\"id\": \"c\", \"name\": \"C\", \"items\": ["
           "{\"id\": \"x\", \"name\": \"X\", \"price_cents\": -5}]}]}",
           file);
    fflush (file);
    assert (!bus_menu_load (path, err, sizeof err));
    char expect[128];
    snprintf (expect, sizeof expect,
              "%s: categories[0].items[0].price_cents: ", path);
    assert (strstr (err, expect) == err);

    //  A document of exactly the limit is read; one byte more is not
    rewind (file);
    fputs (
        "{\"categories\": [{\"id\": \"c\", \"name\": \"C\", \"items\": []}]}",
        file);
    for (long pos = ftell (file); pos < BUS_MENU_DOC_MAX; pos++)
        fputc (' ', file);
    fflush (file);
    bus_menu_t *menu = bus_menu_load (path, err, sizeof err);
    assert (menu && bus_menu_json_len (menu) == BUS_MENU_DOC_MAX);
    bus_menu_destroy (&menu);
    fputc (' ', file);
    fflush (file);
    assert (!bus_menu_load (path, err, sizeof err));
    assert (strstr (err, "file is larger than 1048576 bytes"));
    if (verbose)
        printf ("   rejected: %s\n", err);
    fclose (file);
    unlink (path);
}

void
bus_menu_test (bool verbose)
{
    if (verbose)
        printf (" * bus_menu:\n");
    s_test_demo ();

    //  The document need not be NUL-terminated and is copied as given
    const char *text = "{\"categories\": [{\"id\": \"c\", \"name\": \"C\", "
                       "\"items\": [{\"id\": \"x\", \"name\": \"X\", "
                       "\"price_cents\": 0, \"available\": false}]}]}trailing";
    size_t len = strlen (text) - strlen ("trailing");
    bus_menu_t *menu = bus_menu_new (text, len, NULL, 0);
    assert (menu);
    assert (bus_menu_json_len (menu) == len);
    assert (strlen (bus_menu_json (menu)) == len);
    assert (bus_menu_find (menu, "x")->price_cents == 0);
    assert (!bus_menu_find (menu, "x")->available);
    bus_menu_destroy (&menu);

    //  An 86 that would grow the document past BUS_MENU_DOC_MAX (a
    //  replica's frame limit) is refused, and changes nothing
    {
        const char *head = "{\"pad\":\"";
        const char *tail = "\",\"categories\":[{\"id\":\"c\",\"name\":\"C\","
                           "\"items\":[{\"id\":\"x\",\"name\":\"X\","
                           "\"price_cents\":1}]}]}";
        size_t size = BUS_MENU_DOC_MAX - 4;   //  room for 4 bytes more
        char *doc = malloc (size + 1);
        assert (doc);
        size_t pad = size - strlen (head) - strlen (tail);
        memcpy (doc, head, strlen (head));
        memset (doc + strlen (head), 'p', pad);
        strcpy (doc + strlen (head) + pad, tail);
        menu = bus_menu_new (doc, size, NULL, 0);
        assert (menu && bus_menu_json_len (menu) == size);
        assert (bus_menu_set_available (menu, "x", false) == BUS_ERR_TOO_BIG);
        assert (bus_menu_find (menu, "x")->available);
        assert (bus_menu_json_len (menu) == size
                && !strstr (bus_menu_json (menu), "available"));
        bus_menu_destroy (&menu);
        free (doc);
    }

    //  80 bytes is the longest name; 81 is among the broken documents
    const char *longest = S_CAT ("{\"id\":\"x\",\"name\":\"" S_X10 S_X10 S_X10
                                     S_X10 S_X10 S_X10 S_X10 S_X10 "\","
                                 "\"price_cents\":10000000}");
    menu = bus_menu_new (longest, strlen (longest), NULL, 0);
    assert (menu && strlen (bus_menu_find (menu, "x")->name) == 80);
    assert (bus_menu_find (menu, "x")->price_cents == 10000000);
    bus_menu_destroy (&menu);

    for (size_t i = 0; i < sizeof s_broken / sizeof s_broken[0]; i++)
        s_test_reject (s_broken[i].doc, s_broken[i].expect, verbose);
    //  A message cut short by a small buffer is still a string
    char small[16];
    assert (!bus_menu_new ("{}", 2, small, sizeof small));
    assert (streq (small, "categories: mus"));

    s_test_mods ();
    s_test_set_available ();
    s_test_limits (verbose);
    s_test_files (verbose);
    if (verbose)
        printf ("OK\n");
}
