/*  bus_file.h — a file a node writes that must be whole and private: a
    secret certificate, a TLS key, and their public halves.  */

#ifndef BUS_FILE_H_INCLUDED
#define BUS_FILE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Write len bytes of data to a new file at path, of exactly mode (the
    umask does not cut it), synced before it returns: never through a
    symbolic link, never over a file that is there (O_EXCL), and nothing
    left behind when a write fails.  0, or -1 with err set.  */
int bus_file_write_new (const char *path, const void *data, size_t len,
                        mode_t mode, char *err, size_t err_cap);

void bus_file_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
