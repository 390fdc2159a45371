/*  orderbus_args.c — options of the small subcommands.  */

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "orderbus/bus_error.h"
#include "orderbus_args.h"

static const orderbus_option_t *
s_find (const orderbus_option_t *options, size_t count, const char *word,
        size_t length)
{
    for (size_t i = 0; i < count; i++)
        if (strlen (options[i].flag) == length
            && memcmp (options[i].flag, word, length) == 0)
            return &options[i];
    return NULL;
}

//  A word that reads as an option, so never as the value of the one
//  before; "-5" is a (bad) value, not an option
static bool
s_is_option (const char *word)
{
    return word[0] == '-' && word[1] && !isdigit ((unsigned char) word[1]);
}

int
orderbus_args_parse (const orderbus_option_t *options, size_t count, int argc,
                     char **argv, void *args, char *err, size_t err_cap)
{
    for (int index = 1; index < argc; index++) {
        const char *word = argv[index];
        const char *equals =
            strncmp (word, "--", 2) == 0 ? strchr (word, '=') : NULL;
        size_t length = equals ? (size_t) (equals - word) : strlen (word);
        const orderbus_option_t *option = s_find (options, count, word, length);
        if (!option)
            return s_is_option (word)
                       ? bus_error_set (err, err_cap, -1,
                                        "unknown option '%.*s'", (int) length,
                                        word)
                       : bus_error_set (err, err_cap, -1,
                                        "unexpected argument '%s'", word);
        char *field = (char *) args + option->offset;
        if (!option->arg) {
            if (equals)
                return bus_error_set (err, err_cap, -1, "%s: takes no value",
                                      option->flag);
            *(bool *) field = true;
            continue;
        }
        const char *value = equals ? equals + 1 : NULL;
        if (!value && (index + 1 >= argc || s_is_option (argv[index + 1])))
            return bus_error_set (err, err_cap, -1, "%s: missing value",
                                  option->flag);
        if (!value)
            value = argv[++index];
        if (*value == '\0')
            return bus_error_set (err, err_cap, -1, "%s: must not be empty",
                                  option->flag);
        //  twice is an error rather than a silent choice between the two
        if (*(const char **) field)
            return bus_error_set (err, err_cap, -1, "%s: given twice",
                                  option->flag);
        *(const char **) field = value;
    }
    return 0;
}

void
orderbus_args_usage (const orderbus_option_t *options, size_t count, int width)
{
    for (size_t i = 0; i < count; i++) {
        char flags[48];
        snprintf (flags, sizeof flags, "%s %s", options[i].flag,
                  options[i].arg ? options[i].arg : "");
        printf ("  %-*s %s\n", width, flags, options[i].help);
    }
    printf ("  %-*s %s\n", width, "-h, --help", "show this help and exit");
}
