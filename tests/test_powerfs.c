/*  test_powerfs — the power-cut machinery itself (tests/powerfs.c and
    tk_power_cut), on a file of its own, since fault_power's verdict is
    only as true as it is.  A child process with the shim preloaded
    writes, syncs and is killed; the parent cuts the power and checks
    the file byte by byte:

      - a write synced by fdatasync stays;
      - a write not synced is undone, and the file is cut back to its
        synced size (torn false);
      - an O_DSYNC write (as LMDB's meta page) stays even over an older
        unsynced write of the same bytes;
      - torn, every 4 KiB page holds either its old or its new bytes,
        never a mix, and over many seeds both happen.  */

#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testkit.h"

#define CHECK TK_CHECK
#define PAGE  4096

static char s_file[700], s_undo[700];

//  In the child, under the shim: two pages of 'A' synced, then 'B' over
//  both and a third page of 'D' past the end (not synced), 'C' over 100
//  bytes of the first page through an O_DSYNC descriptor; then killed.
static void
s_child (void)
{
    static char buf[2 * PAGE];
    int fd = open (s_file, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int meta = open (s_file, O_WRONLY | O_DSYNC);
    memset (buf, 'A', sizeof buf);
    if (fd < 0 || meta < 0 || pwrite (fd, buf, 2 * PAGE, 0) != 2 * PAGE
        || fdatasync (fd) != 0)
        _exit (2);
    memset (buf, 'B', sizeof buf);
    if (pwrite (fd, buf, 2 * PAGE, 0) != 2 * PAGE)
        _exit (3);
    memset (buf, 'C', 100);
    if (pwrite (meta, buf, 100, 10) != 100)
        _exit (4);
    memset (buf, 'D', PAGE);
    if (pwrite (fd, buf, PAGE, 2 * PAGE) != PAGE)
        _exit (5);
    raise (SIGKILL);
}

//  Run the child (this program again) under the shim on a new file; it
//  must die of SIGKILL
static void
s_run_child (void)
{
    unlink (s_file);
    unlink (s_undo);
    pid_t pid = fork ();
    if (pid == 0) {
        setenv ("LD_PRELOAD", POWERFS_LIBRARY, 1);
        setenv ("POWERFS_FILE", s_file, 1);
        setenv ("POWERFS_UNDO", s_undo, 1);
        const char *asan = getenv ("ASAN_OPTIONS");
        char opts[600];
        snprintf (opts, sizeof opts, "%s%sverify_asan_link_order=0",
                  asan ? asan : "", asan && *asan ? ":" : "");
        setenv ("ASAN_OPTIONS", opts, 1);
        execl ("/proc/self/exe", "test_powerfs", "child", s_file, s_undo,
               (char *) NULL);
        _exit (127);
    }
    int status;
    CHECK (waitpid (pid, &status, 0) == pid && WIFSIGNALED (status)
               && WTERMSIG (status) == SIGKILL,
           "the child wrote and was killed (status %d)", status);
}

static void
s_read (unsigned char *buf, size_t cap, size_t *size)
{
    int fd = open (s_file, O_RDONLY);
    CHECK (fd >= 0, "open %s", s_file);
    ssize_t n = read (fd, buf, cap);
    close (fd);
    *size = n > 0 ? (size_t) n : 0;
}

//  What byte i of page p must be if the page's new write was kept or not
static char
s_expected (size_t i, bool kept)
{
    if (i >= 10 && i < 110)
        return 'C';   //  durable: never undone
    if (i >= 2 * PAGE)
        return kept ? 'D' : 0;
    return kept ? 'B' : 'A';
}

TK_CASE (all_undone)
{
    s_run_child ();
    unsigned seed = 1;
    tk_power_cut_t cut;
    CHECK (tk_power_cut (s_file, s_undo, false, &seed, &cut), "cut");
    CHECK (cut.writes == 2 && cut.pages == 3 && cut.lost == 3
               && cut.durable == 1,
           "cut: %zu writes, %zu pages, %zu lost, %zu durable", cut.writes,
           cut.pages, cut.lost, cut.durable);
    CHECK (access (s_undo, F_OK) != 0, "the undo log is removed");
    static unsigned char buf[4 * PAGE];
    size_t size;
    s_read (buf, sizeof buf, &size);
    CHECK (size == 2 * PAGE, "file cut back to its synced size: %zu", size);
    for (size_t i = 0; i < size; i++)
        CHECK (buf[i] == s_expected (i, false), "byte %zu is %c", i, buf[i]);
}

TK_CASE (torn_at_pages)
{
    size_t kept = 0, undone = 0;
    for (unsigned seed = 1; seed <= 8; seed++) {
        s_run_child ();
        tk_power_cut_t cut;
        unsigned s = seed;
        CHECK (tk_power_cut (s_file, s_undo, true, &s, &cut), "torn cut");
        static unsigned char buf[4 * PAGE];
        size_t size;
        s_read (buf, sizeof buf, &size);
        CHECK (size == 3 * PAGE, "a torn cut keeps the size: %zu", size);
        for (size_t page = 0; page < 3; page++) {
            //  The page's last byte says which; all of it must agree
            bool is_new = buf[page * PAGE + PAGE - 1] == (page < 2 ? 'B' : 'D');
            kept += is_new;
            undone += !is_new;
            for (size_t i = page * PAGE; i < (page + 1) * PAGE; i++)
                CHECK (buf[i] == s_expected (i, is_new),
                       "seed %u: page %zu mixes old and new at byte %zu (%c)",
                       seed, page, i, buf[i]);
        }
    }
    printf ("powerfs: 8 torn cuts: %zu pages kept, %zu undone\n", kept, undone);
    CHECK (kept > 0 && undone > 0, "torn cuts keep some pages and undo others");
}

static const tk_case_t s_cases[] = { TK_CASE_ENTRY (all_undone),
                                     TK_CASE_ENTRY (torn_at_pages),
                                     { NULL, NULL } };

int
main (int argc, char **argv)
{
    if (argc == 4 && strcmp (argv[1], "child") == 0) {
        snprintf (s_file, sizeof s_file, "%s", argv[2]);
        snprintf (s_undo, sizeof s_undo, "%s", argv[3]);
        s_child ();
        return 1;
    }
    tk_init (argc, argv, "powerfs");
    snprintf (s_file, sizeof s_file, "%s/data.mdb", tk_dir ());
    snprintf (s_undo, sizeof s_undo, "%s/powerfs.undo", tk_dir ());
    tk_run_cases (s_cases);
    return tk_done ();
}
