/*  orderbus_args.c — options of the small subcommands.  */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "orderbus_args.h"

static int
s_fail (char *err, size_t err_cap, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_cap, format, args);
    va_end (args);
    return -1;
}

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
orderbus_args_parse (const orderbus_option_t *options, size_t count,
                     int argc, char **argv, void *args, char *err,
                     size_t err_cap)
{
    for (int index = 1; index < argc; index++) {
        const char *word = argv[index];
        const char *equals = strncmp (word, "--", 2) == 0 ? strchr (word, '=')
                                                          : NULL;
        size_t length = equals ? (size_t) (equals - word) : strlen (word);
        const orderbus_option_t *option = s_find (options, count, word, length);
        if (!option)
            return s_is_option (word)
                       ? s_fail (err, err_cap, "unknown option '%.*s'",
                                 (int) length, word)
                       : s_fail (err, err_cap, "unexpected argument '%s'", word);
        char *field = (char *) args + option->offset;
        if (!option->arg) {
            if (equals)
                return s_fail (err, err_cap, "%s: takes no value", option->flag);
            *(bool *) field = true;
            continue;
        }
        const char *value = equals ? equals + 1 : NULL;
        if (!value && (index + 1 >= argc || s_is_option (argv[index + 1])))
            return s_fail (err, err_cap, "%s: missing value", option->flag);
        if (!value)
            value = argv[++index];
        if (*value == '\0')
            return s_fail (err, err_cap, "%s: must not be empty", option->flag);
        //  twice is an error rather than a silent choice between the two
        if (*(const char **) field)
            return s_fail (err, err_cap, "%s: given twice", option->flag);
        *(const char **) field = value;
    }
    return 0;
}

void
orderbus_args_usage (const orderbus_option_t *options, size_t count,
                     int width)
{
    for (size_t i = 0; i < count; i++) {
        char flags[48];
        snprintf (flags, sizeof flags, "%s %s", options[i].flag,
                  options[i].arg ? options[i].arg : "");
        printf ("  %-*s %s\n", width, flags, options[i].help);
    }
    printf ("  %-*s %s\n", width, "-h, --help", "show this help and exit");
}
