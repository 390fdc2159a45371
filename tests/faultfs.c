/*  faultfs.c — an LD_PRELOAD shim that makes the disk fail on demand.

    While the file named by $FAULTFS_TRIGGER exists, every write or sync
    of a file whose path ends in "data.mdb" (LMDB's data file) fails and
    writes nothing: with ENOSPC if the trigger file's content begins with
    "ENOSPC" (a full disk), else with EIO (a dying disk, or a full thin
    volume).
    Everything else, and everything while the trigger is absent, goes to
    the real functions (found with dlsym (RTLD_NEXT, ...)).

    The hooks cover what LMDB uses to commit: pwrite/pwritev (page and
    meta-page writes), write/writev (after lseek, when pwritev is not
    used) and fdatasync/fsync (the durable sync).  Not built with the
    sanitizers: it sits in front of the ASan runtime's own interceptors.
    A test sees the faults through the writer's own counters
    (storage_failures), which is what it means to check.  */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_SUFFIX "data.mdb"

//  The errno the trigger file asks for: ENOSPC if it says so, else EIO.
//  Read with open/read, which this library leaves alone.
static int
s_trigger_errno (const char *trigger)
{
    char text[16] = "";
    int fd = open (trigger, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return EIO;
    ssize_t n = read (fd, text, sizeof text - 1);
    close (fd);
    return n >= 6 && strncmp (text, "ENOSPC", 6) == 0 ? ENOSPC : EIO;
}

//  The errno a write or sync on fd should fail with now, 0 if none.
static int
s_fault (int fd)
{
    const char *trigger = getenv ("FAULTFS_TRIGGER");
    if (!trigger || !*trigger || fd < 0)
        return 0;
    char link[64], path[4096];
    snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink (link, path, sizeof path - 1);
    if (n < (ssize_t) strlen (S_SUFFIX))
        return 0;
    path[n] = '\0';
    if (strcmp (path + n - strlen (S_SUFFIX), S_SUFFIX) != 0)
        return 0;
    return access (trigger, F_OK) == 0 ? s_trigger_errno (trigger) : 0;
}

//  The next definition of name after this library, resolved once.
#define S_REAL(type, name, params) \
    static type (*real) params;    \
    if (!real)                     \
    *(void **) &real = dlsym (RTLD_NEXT, name)

#define S_FAIL_IF_FAULTED(fd)     \
    do {                          \
        int saved = errno;        \
        int fault = s_fault (fd); \
        if (fault) {              \
            errno = fault;        \
            return -1;            \
        }                         \
        errno = saved;            \
    } while (0)

ssize_t
write (int fd, const void *buf, size_t count)
{
    S_REAL (ssize_t, "write", (int, const void *, size_t));
    S_FAIL_IF_FAULTED (fd);
    return real (fd, buf, count);
}

ssize_t
pwrite (int fd, const void *buf, size_t count, off_t offset)
{
    S_REAL (ssize_t, "pwrite", (int, const void *, size_t, off_t));
    S_FAIL_IF_FAULTED (fd);
    return real (fd, buf, count, offset);
}

ssize_t
pwrite64 (int fd, const void *buf, size_t count, off_t offset)
{
    S_REAL (ssize_t, "pwrite64", (int, const void *, size_t, off_t));
    S_FAIL_IF_FAULTED (fd);
    return real (fd, buf, count, offset);
}

ssize_t
writev (int fd, const struct iovec *iov, int iovcnt)
{
    S_REAL (ssize_t, "writev", (int, const struct iovec *, int) );
    S_FAIL_IF_FAULTED (fd);
    return real (fd, iov, iovcnt);
}

ssize_t
pwritev (int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    S_REAL (ssize_t, "pwritev", (int, const struct iovec *, int, off_t));
    S_FAIL_IF_FAULTED (fd);
    return real (fd, iov, iovcnt, offset);
}

ssize_t
pwritev64 (int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    S_REAL (ssize_t, "pwritev64", (int, const struct iovec *, int, off_t));
    S_FAIL_IF_FAULTED (fd);
    return real (fd, iov, iovcnt, offset);
}

int
fdatasync (int fd)
{
    S_REAL (int, "fdatasync", (int) );
    S_FAIL_IF_FAULTED (fd);
    return real (fd);
}

int
fsync (int fd)
{
    S_REAL (int, "fsync", (int) );
    S_FAIL_IF_FAULTED (fd);
    return real (fd);
}
