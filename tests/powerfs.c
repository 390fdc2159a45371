/*  powerfs.c — an LD_PRELOAD shim that remembers what the writer has not
    synced yet, so that a test can cut the power (tests/powerfs.h has the
    log's format, tk_power.c the cut, test_fault_power.c the test).

    Environment:
      POWERFS_FILE           the data.mdb to watch (the same file by device
                             and inode; other files pass straight through)
      POWERFS_UNDO           the undo log to keep
      POWERFS_SYNC_DELAY_US  optional: sleep this long before each sync,
                             as a slow disk would; a cut then lands more
                             often while writes wait for their sync

    Writes go through to the file as usual: the page cache and the mmap
    LMDB reads through see them, as they would on a real machine until the
    power goes.  Before each write that is not durable yet (pwrite, pwritev,
    write, writev on a descriptor without O_DSYNC) the bytes it overwrites
    are appended to the undo log; a successful fdatasync or fsync of the
    file empties the log (everything before it is on disk); a write through
    an O_DSYNC descriptor, LMDB's meta page, is durable once it returns and
    is logged after it as such.  A lock makes each logged write and each
    sync with its truncation one step, so a write can never slip between a
    sync and the truncation and be taken for synced.  A kill between a
    sync and its truncation makes the cut undo writes that were synced:
    stricter than a disk, and harmless, as only a transaction whose meta
    page is not written yet can have written them (LMDB syncs the data
    pages, then writes the meta page).

    Not covered, as LMDB without MDB_WRITEMAP does not use them for
    data.mdb: msync, sync_file_range, O_DIRECT, fallocate, ftruncate.
    Not built with the sanitizers: it sits in front of the ASan runtime's
    own interceptors (as tests/faultfs.c does).  */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include "powerfs.h"

//  The next definition of name after this library, resolved once.
#define S_REAL(type, name, params) \
    static type (*real) params;    \
    if (!real)                     \
    *(void **) &real = dlsym (RTLD_NEXT, name)

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool s_known;   //  s_dev and s_ino are set
static dev_t s_dev;
static ino_t s_ino;
static int s_undo = -1;   //  the undo log, opened on first use; s_lock

static ssize_t (*s_real_write) (int, const void *, size_t);

static void
s_die (const char *what)
{
    //  A test on a log that misses writes would prove nothing: stop loudly
    fprintf (stderr, "powerfs: %s: %s\n", what, strerror (errno));
    abort ();
}

//  Is fd the watched data file?
static bool
s_is_data (int fd)
{
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
        return false;
    if (!atomic_load (&s_known)) {
        const char *path = getenv ("POWERFS_FILE");
        struct stat data;
        if (!path || stat (path, &data) != 0)
            return false;   //  not made yet: no write can be to it
        pthread_mutex_lock (&s_lock);
        s_dev = data.st_dev;
        s_ino = data.st_ino;
        atomic_store (&s_known, true);
        pthread_mutex_unlock (&s_lock);
    }
    return st.st_dev == s_dev && st.st_ino == s_ino;
}

//  Append len bytes to the undo log, whole.  Lock held.
static void
s_append (const void *data, size_t len)
{
    if (s_undo < 0) {
        const char *path = getenv ("POWERFS_UNDO");
        if (!path)
            s_die ("POWERFS_UNDO is not set");
        s_undo = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s_undo < 0)
            s_die (path);
        *(void **) &s_real_write = dlsym (RTLD_NEXT, "write");
    }
    for (const char *p = data; len > 0;) {
        ssize_t n = s_real_write (s_undo, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            s_die ("undo log write");
        p += n;
        len -= (size_t) n;
    }
}

//  Before a write of length bytes at offset to the data file: log what
//  they hold now.  Returns true if the write is durable by itself
//  (O_DSYNC), which is logged by s_after instead.  Lock held.
static bool
s_before (int fd, off_t offset, size_t length)
{
    int flags = fcntl (fd, F_GETFL);
    if (flags >= 0 && (flags & O_DSYNC))
        return true;
    struct stat st;
    if (fstat (fd, &st) != 0 || offset < 0)
        s_die ("data file offset");
    powerfs_record_t head = { POWERFS_MAGIC, POWERFS_UNDO, (uint64_t) offset,
                              length, (uint64_t) st.st_size };
    unsigned char *record = calloc (1, sizeof head + length);
    if (!record)
        s_die ("undo record");
    memcpy (record, &head, sizeof head);
    //  Bytes past the end of the file held nothing: they stay zeros
    if (offset < st.st_size) {
        size_t old = (size_t) (st.st_size - offset);
        if (old > length)
            old = length;
        for (size_t got = 0; got < old;) {
            ssize_t n = pread (fd, record + sizeof head + got, old - got,
                               offset + (off_t) got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t) n;
        }
    }
    s_append (record, sizeof head + length);
    free (record);
    return false;
}

//  After a write that was durable by itself.  Lock held.
static void
s_after (bool durable, off_t offset, ssize_t written)
{
    if (!durable || written <= 0)
        return;
    powerfs_record_t head = { POWERFS_MAGIC, POWERFS_DURABLE, (uint64_t) offset,
                              (uint64_t) written, 0 };
    s_append (&head, sizeof head);
}

static size_t
s_iov_length (const struct iovec *iov, int iovcnt)
{
    size_t length = 0;
    for (int i = 0; i < iovcnt; i++)
        length += iov[i].iov_len;
    return length;
}

//  A write to the data file begins: take the lock and log it.  *at < 0
//  means the descriptor's offset (write, writev), read under the lock.
//  Returns whether the write is durable by itself, for s_end.
static bool
s_begin (int fd, off_t *at, size_t length)
{
    pthread_mutex_lock (&s_lock);
    if (*at < 0)
        *at = lseek (fd, 0, SEEK_CUR);
    return s_before (fd, *at, length);
}

//  The write returned written: log it if it was durable, release the
//  lock, and return written with the write's errno.
static ssize_t
s_end (bool durable, off_t at, ssize_t written)
{
    int saved = errno;
    s_after (durable, at, written);
    pthread_mutex_unlock (&s_lock);
    errno = saved;
    return written;
}

ssize_t
write (int fd, const void *buf, size_t count)
{
    S_REAL (ssize_t, "write", (int, const void *, size_t));
    if (!s_is_data (fd))
        return real (fd, buf, count);
    off_t at = -1;
    bool durable = s_begin (fd, &at, count);
    return s_end (durable, at, real (fd, buf, count));
}

ssize_t
pwrite (int fd, const void *buf, size_t count, off_t offset)
{
    S_REAL (ssize_t, "pwrite", (int, const void *, size_t, off_t));
    if (!s_is_data (fd) || offset < 0)
        return real (fd, buf, count, offset);
    bool durable = s_begin (fd, &offset, count);
    return s_end (durable, offset, real (fd, buf, count, offset));
}

ssize_t
pwrite64 (int fd, const void *buf, size_t count, off_t offset)
{
    S_REAL (ssize_t, "pwrite64", (int, const void *, size_t, off_t));
    if (!s_is_data (fd) || offset < 0)
        return real (fd, buf, count, offset);
    bool durable = s_begin (fd, &offset, count);
    return s_end (durable, offset, real (fd, buf, count, offset));
}

ssize_t
writev (int fd, const struct iovec *iov, int iovcnt)
{
    S_REAL (ssize_t, "writev", (int, const struct iovec *, int) );
    if (!s_is_data (fd))
        return real (fd, iov, iovcnt);
    off_t at = -1;
    bool durable = s_begin (fd, &at, s_iov_length (iov, iovcnt));
    return s_end (durable, at, real (fd, iov, iovcnt));
}

ssize_t
pwritev (int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    S_REAL (ssize_t, "pwritev", (int, const struct iovec *, int, off_t));
    if (!s_is_data (fd) || offset < 0)
        return real (fd, iov, iovcnt, offset);
    bool durable = s_begin (fd, &offset, s_iov_length (iov, iovcnt));
    return s_end (durable, offset, real (fd, iov, iovcnt, offset));
}

ssize_t
pwritev64 (int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    S_REAL (ssize_t, "pwritev64", (int, const struct iovec *, int, off_t));
    if (!s_is_data (fd) || offset < 0)
        return real (fd, iov, iovcnt, offset);
    bool durable = s_begin (fd, &offset, s_iov_length (iov, iovcnt));
    return s_end (durable, offset, real (fd, iov, iovcnt, offset));
}

//  A sync of the data file, through any descriptor: once it succeeds,
//  every write before it is on disk and the undo log is emptied.
static int
s_sync (int fd, int (*real) (int))
{
    pthread_mutex_lock (&s_lock);
    const char *delay = getenv ("POWERFS_SYNC_DELAY_US");
    if (delay && atoi (delay) > 0)
        usleep ((useconds_t) atoi (delay));
    int rc = real (fd);
    int saved = errno;
    if (rc == 0 && s_undo >= 0 && ftruncate (s_undo, 0) != 0)
        s_die ("undo log truncate");
    pthread_mutex_unlock (&s_lock);
    errno = saved;
    return rc;
}

int
fdatasync (int fd)
{
    S_REAL (int, "fdatasync", (int) );
    return s_is_data (fd) ? s_sync (fd, real) : real (fd);
}

int
fsync (int fd)
{
    S_REAL (int, "fsync", (int) );
    return s_is_data (fd) ? s_sync (fd, real) : real (fd);
}
