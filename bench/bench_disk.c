/*  bench_disk.c — what one synchronous write costs on this disk.

    Writes 4 KiB blocks with pwrite and makes each durable with fdatasync
    before the next, the way a database without group commit would: the
    rate it reaches is the ceiling of "one fsync per acknowledged write",
    and the ratio of a system's durable writes/s to it shows how much
    that system gains from batching.  */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"

#define S_BLOCK       4096
#define S_FILE_BLOCKS 2560   //  a 10 MiB file written round and round

int
bench_disk_run (bench_opts_t *opts, bench_result_t *result)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/orderbus-bench-fsync-%d.dat",
              opts->dir ? opts->dir : "/tmp", (int) getpid ());
    int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror (path);
        return -1;
    }
    bench_watch_idle (&opts->watches);
    char block[S_BLOCK];
    memset (block, 'o', sizeof block);
    //  Allocate the file first: the measured writes overwrite, as a log
    //  that has been preallocated (LMDB, SQLite WAL) mostly does
    for (int i = 0; i < S_FILE_BLOCKS; i++)
        if (pwrite (fd, block, sizeof block, (off_t) i * S_BLOCK) != S_BLOCK)
            break;
    fsync (fd);
    int64_t start = bench_now ();
    int64_t win_start = start + (int64_t) (opts->warmup * 1e9);
    int64_t end = win_start + (int64_t) (opts->duration * 1e9);
    uint64_t i = 0;
    int64_t now;
    bool started = false;
    while ((now = bench_now ()) < end) {
        if (!started && now >= win_start) {
            bench_watch_start (&opts->watches);
            started = true;
        }
        block[0] = (char) i;
        bool ok = pwrite (fd, block, sizeof block,
                          (off_t) (i % S_FILE_BLOCKS) * S_BLOCK)
                      == S_BLOCK
                  && fdatasync (fd) == 0;
        int64_t done = bench_now ();
        if (now >= win_start) {
            result->sent++;
            if (ok) {
                result->ok++;
                bench_hist_record (result->lat, done - now);
            } else
                result->errors++;
        }
        i++;
    }
    if (!started)
        bench_watch_start (&opts->watches);
    bench_watch_stop (&opts->watches);
    close (fd);
    unlink (path);
    result->seconds = opts->duration;
    json_object_set_new (result->extra_json, "throughput_per_s",
                         json_real ((double) result->ok / opts->duration));
    json_object_set_new (result->extra_json, "file", json_string (path));
    return 0;
}
