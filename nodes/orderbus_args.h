/*  orderbus_args.h — options of the small subcommands (token, export).

    Each subcommand describes its options in a table; this reads argv
    into the subcommand's own struct of fields and prints the table for
    --help.  The node roles use bus_config instead: they also read files.  */

#ifndef ORDERBUS_ARGS_H_INCLUDED
#define ORDERBUS_ARGS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *flag; /* "--data"                                    */
    const char *arg;  /* "DIR"; NULL for a switch                    */
    size_t offset;    /* its field in the caller's struct: a const
                               char * set to the value, or for a switch a
                               bool set to true                           */
    const char *help; /* one line for --help                         */
} orderbus_option_t;

/*  Read argv[1..argc-1] ("--flag VALUE", "--flag=VALUE", switches) into
    the fields of args.  An unknown option, a stray argument, a missing or
    empty value, a value given to a switch or an option given twice is an
    error: returns -1 with a message naming the option in err[err_cap].
    Returns 0 otherwise.  */
int orderbus_args_parse (const orderbus_option_t *options, size_t count,
                         int argc, char **argv, void *args, char *err,
                         size_t err_cap);

/*  Print the option table, then -h/--help, flags padded to width.  */
void orderbus_args_usage (const orderbus_option_t *options, size_t count,
                          int width);

#endif
