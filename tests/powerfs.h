/*  powerfs.h — the undo log that tests/powerfs.c (an LD_PRELOAD shim in
    the writer) keeps and tk_power.c (the test kit) reads to make a
    "power cut".

    The shim writes through to the file as usual.  Before each write to
    LMDB's data.mdb that is not yet durable it appends an UNDO record:
    where the write goes and what those bytes held before it.  A sync of
    the file (fdatasync, fsync) makes every write before it durable: the
    log is emptied.  A write through a descriptor opened O_DSYNC (LMDB's
    meta-page descriptor) is durable when it returns: it is logged as a
    DURABLE record, after it, so that rolling back an older write never
    undoes it.

    So after the writer is killed, the log holds exactly the writes a
    power cut at that moment could lose, newest last.  Records are native
    endian, for the same machine.  */

#ifndef POWERFS_H_INCLUDED
#define POWERFS_H_INCLUDED

#include <stdint.h>

#define POWERFS_MAGIC   0x50575246u   //  "PWRF"
#define POWERFS_UNDO    1u            //  followed by length bytes
#define POWERFS_DURABLE 2u            //  nothing follows
#define POWERFS_PAGE    4096          //  a disk writes pages whole or not

typedef struct {
    uint32_t magic;    //  POWERFS_MAGIC
    uint32_t kind;     //  POWERFS_UNDO or POWERFS_DURABLE
    uint64_t offset;   //  where the write went in the file
    uint64_t length;   //  how many bytes it wrote
    uint64_t size;     //  the file's size before it: bytes at or past
                       //  it held nothing (an UNDO record has zeros)
} powerfs_record_t;

#endif
