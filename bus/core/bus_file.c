/*  bus_file.c — a new file, whole and private (bus_file.h).  */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "orderbus/bus_error.h"
#include "orderbus/bus_file.h"

int
bus_file_write_new (const char *path, const void *data, size_t len, mode_t mode,
                    char *err, size_t err_cap)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (fd < 0)
        return bus_error_set (err, err_cap, -1, "cannot create %s: %s", path,
                              strerror (errno));
    //  The mode open gave is cut by the umask; this one is exact
    bool ok = fchmod (fd, mode) == 0 && write (fd, data, len) == (ssize_t) len
              && fsync (fd) == 0;
    int saved = errno;
    if (close (fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok)
        return 0;
    unlink (path);
    return bus_error_set (err, err_cap, -1, "cannot write %s: %s", path,
                          strerror (saved));
}

void
bus_file_test (bool verbose)
{
    if (verbose)
        printf (" * bus_file: ");
    char dir[] = "/tmp/bus_file_test.XXXXXX";
    assert (mkdtemp (dir));
    char path[64], link[64], err[256];
    snprintf (path, sizeof path, "%s/secret", dir);
    snprintf (link, sizeof link, "%s/link", dir);
    mode_t old = umask (077);
    assert (bus_file_write_new (path, "abc", 3, 0644, err, sizeof err) == 0);
    umask (old);
    struct stat info;
    assert (stat (path, &info) == 0 && (info.st_mode & 07777) == 0644
            && info.st_size == 3);
    //  Never over a file, never through a link
    assert (bus_file_write_new (path, "x", 1, 0600, err, sizeof err) == -1);
    assert (strstr (err, "cannot create") && strstr (err, "File exists"));
    assert (symlink (path, link) == 0);
    assert (bus_file_write_new (link, "x", 1, 0600, err, sizeof err) == -1);
    assert (stat (path, &info) == 0 && info.st_size == 3);
    unlink (link);
    unlink (path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
