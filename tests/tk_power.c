/*  tk_power.c — a power cut: a data file as the disk would hold it had
    the power gone when its writer was killed, from the undo log that
    tests/powerfs.c kept in the writer (tests/powerfs.h).  */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "powerfs.h"
#include "tk_internal.h"

typedef struct {
    powerfs_record_t head;
    off_t at;   //  where its old bytes are in the undo log
} s_entry_t;

//  The whole records of the undo log, oldest first; a record cut short by
//  the kill is left out (its write had not begun: the shim logs first).
static s_entry_t *
s_read_log (int fd, size_t *count)
{
    size_t cap = 64;
    s_entry_t *entries = malloc (cap * sizeof *entries);
    struct stat st;
    *count = 0;
    if (fstat (fd, &st) != 0)
        return entries;
    off_t at = 0;
    while (at + (off_t) sizeof (powerfs_record_t) <= st.st_size) {
        powerfs_record_t head;
        if (pread (fd, &head, sizeof head, at) != (ssize_t) sizeof head
            || head.magic != POWERFS_MAGIC)
            break;
        off_t next = at + (off_t) sizeof head;
        if (head.kind == POWERFS_UNDO)
            next += (off_t) head.length;
        if (next > st.st_size)
            break;
        if (*count == cap)
            entries = realloc (entries, (cap *= 2) * sizeof *entries);
        entries[(*count)++] = (s_entry_t){ head, at + (off_t) sizeof head };
        at = next;
    }
    return entries;
}

//  buf holds the old bytes of [from, to) for entries[i]: put back the
//  bytes a durable write logged after it wrote there (the disk has those
//  whatever happened to the older write).  false if they cannot be read.
static bool
s_keep_durable (int data, const s_entry_t *entries, size_t i, size_t count,
                unsigned char *buf, uint64_t from, uint64_t to)
{
    for (size_t j = i + 1; j < count; j++) {
        const powerfs_record_t *d = &entries[j].head;
        if (d->kind != POWERFS_DURABLE)
            continue;
        uint64_t lo = d->offset > from ? d->offset : from;
        uint64_t hi = d->offset + d->length < to ? d->offset + d->length : to;
        if (lo < hi
            && pread (data, buf + (lo - from), hi - lo, (off_t) lo)
                   != (ssize_t) (hi - lo))
            return false;
    }
    return true;
}

//  Undo entries[i], page by page: every page, or each at random if torn.
static bool
s_undo (int data, int log, const s_entry_t *entries, size_t i, size_t count,
        bool torn, unsigned *seed, tk_power_cut_t *cut)
{
    const powerfs_record_t *r = &entries[i].head;
    unsigned char page[POWERFS_PAGE];
    cut->writes++;
    for (uint64_t from = r->offset, end = r->offset + r->length; from < end;) {
        uint64_t to = (from / POWERFS_PAGE + 1) * POWERFS_PAGE;
        if (to > end)
            to = end;
        cut->pages++;
        if (!torn || rand_r (seed) % 2 == 0) {
            size_t len = (size_t) (to - from);
            if (pread (log, page, len,
                       entries[i].at + (off_t) (from - r->offset))
                != (ssize_t) len)
                return false;
            if (!s_keep_durable (data, entries, i, count, page, from, to)
                || pwrite (data, page, len, (off_t) from) != (ssize_t) len)
                return false;
            cut->lost++;
        }
        from = to;
    }
    return true;
}

bool
tk_power_cut (const char *data, const char *undo, bool torn, unsigned *seed,
              tk_power_cut_t *cut)
{
    memset (cut, 0, sizeof *cut);
    int log = open (undo, O_RDONLY);
    if (log < 0)   //  nothing was written since the last sync
        return errno == ENOENT;
    int fd = open (data, O_RDWR);
    if (fd < 0) {
        fprintf (stderr, "power cut: %s: %s\n", data, strerror (errno));
        close (log);
        return false;
    }
    size_t count;
    s_entry_t *entries = s_read_log (log, &count);
    bool ok = true;
    uint64_t synced_size = UINT64_MAX, durable_end = 0;
    //  Newest first, so that every byte ends as its oldest logged value
    for (size_t i = count; ok && i-- > 0;) {
        const powerfs_record_t *r = &entries[i].head;
        if (r->kind == POWERFS_DURABLE) {
            cut->durable++;
            if (r->offset + r->length > durable_end)
                durable_end = r->offset + r->length;
        } else {
            synced_size = r->size;
            ok = s_undo (fd, log, entries, i, count, torn, seed, cut);
        }
    }
    //  With every write undone the file has its size as of the last sync
    //  (torn, the zeros past it stand for blocks allocated but not written)
    if (ok && !torn && synced_size != UINT64_MAX) {
        if (durable_end > synced_size)
            synced_size = durable_end;
        struct stat st;
        if (fstat (fd, &st) == 0 && (uint64_t) st.st_size > synced_size)
            ok = ftruncate (fd, (off_t) synced_size) == 0;
    }
    if (!ok)
        fprintf (stderr, "power cut: %s from %s: %s\n", data, undo,
                 strerror (errno));
    free (entries);
    close (fd);
    close (log);
    return ok && unlink (undo) == 0;
}
