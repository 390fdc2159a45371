/*  bench_proc.c — watching the processes under test.

    RSS and thread count come from /proc/PID/status, CPU time from
    /proc/PID/stat.  Disk syncs are counted with `perf stat` on the
    syscall tracepoints, attached to the pid for the loaded period: that
    is how the report can say, for every system, how many acknowledged
    writes shared one fsync, from the kernel's own count rather than from
    a configuration file.  */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench.h"

static int64_t
s_status_field (pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    int64_t value = -1;
    size_t flen = strlen (field);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, field, flen) == 0 && line[flen] == ':') {
            value = strtoll (line + flen + 1, NULL, 10);
            break;
        }
    fclose (file);
    return value;
}

int64_t
bench_proc_rss_kb (pid_t pid)
{
    return s_status_field (pid, "VmRSS");
}

//  utime + stime of pid in clock ticks, -1 if gone.
static int64_t
s_cpu_ticks (pid_t pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, file);
    fclose (file);
    buf[n] = '\0';
    //  The command name may hold spaces: fields are counted after ')'
    char *p = strrchr (buf, ')');
    if (!p)
        return -1;
    long long utime = 0, stime = 0;
    //  after ')': state(3) ... utime is field 14, stime 15
    if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
                &utime, &stime)
        != 2)
        return -1;
    return utime + stime;
}

int
bench_watch_add (bench_watches_t *w, const char *spec)
{
    const char *colon = strrchr (spec, ':');
    if (!colon || w->count >= BENCH_WATCH_MAX || colon == spec
        || (size_t) (colon - spec) >= sizeof w->list[0].name)
        return -1;
    bench_watch_t *watch = &w->list[w->count];
    memset (watch, 0, sizeof *watch);
    memcpy (watch->name, spec, (size_t) (colon - spec));
    watch->pid = (pid_t) atoi (colon + 1);
    watch->syncs = -1;
    if (watch->pid <= 0)
        return -1;
    w->count++;
    return 0;
}

int
bench_watch_profile (bench_watches_t *w, const char *spec)
{
    const char *colon = strchr (spec, ':');
    if (!colon || atoi (spec) <= 0 || !colon[1])
        return -1;
    w->profile_pid = (pid_t) atoi (spec);
    w->profile_out = colon + 1;
    return 0;
}

//  Run perf with argv, its input and output on /dev/null.  The child's
//  pid, or 0 if it could not be started.
static pid_t
s_perf_spawn (const char *argv[])
{
    pid_t child = fork ();
    if (child == 0) {
        int null = open ("/dev/null", O_RDWR);
        dup2 (null, 0);
        dup2 (null, 1);
        dup2 (null, 2);
        execvp ("perf", (char *const *) argv);   //  exec does not write it
        _exit (127);
    }
    return child > 0 ? child : 0;
}

//  perf record the whole machine; the report picks the profiled pid
//  (perf report --pid).  Not -p: that opens descriptors per thread of
//  the process, and an edge with 10,000 browsers has 10,000 threads.
//  cpu-clock is the event that works in VMs without hardware counters.
static void
s_profile_start (bench_watches_t *w)
{
    const char *argv[] = { "perf", "record",       "-F",        "499",
                           "-g",   "-e",           "cpu-clock", "-a",
                           "-o",   w->profile_out, NULL };
    w->profile_child = s_perf_spawn (argv);
}

static void
s_profile_stop (bench_watches_t *w)
{
    if (!w->profile_child)
        return;
    kill (w->profile_child, SIGINT);
    waitpid (w->profile_child, NULL, 0);
    w->profile_child = 0;
}

void
bench_watch_idle (bench_watches_t *w)
{
    for (int i = 0; i < w->count; i++)
        w->list[i].rss_idle_kb = bench_proc_rss_kb (w->list[i].pid);
}

void
bench_watch_connected (bench_watches_t *w)
{
    for (int i = 0; i < w->count; i++)
        w->list[i].rss_conn_kb = bench_proc_rss_kb (w->list[i].pid);
}

//  Start `perf stat` on the watched pid; its output goes to a file.
static void
s_perf_start (bench_watch_t *watch)
{
    snprintf (watch->perf_out, sizeof watch->perf_out,
              "/tmp/orderbus-bench-perf-%d-%d.txt", (int) getpid (),
              (int) watch->pid);
    char pid[16];
    snprintf (pid, sizeof pid, "%d", (int) watch->pid);
    const char *argv[] = {
        "perf",
        "stat",
        "-x",
        ",",
        "-o",
        watch->perf_out,
        "-e",
        "syscalls:sys_enter_fsync,"
        "syscalls:sys_enter_fdatasync,syscalls:sys_enter_msync",
        "-p",
        pid,
        NULL
    };
    watch->perf_pid = s_perf_spawn (argv);
}

//  Stop perf and add up the sync calls it counted; -1 if it could not.
static int64_t
s_perf_stop (bench_watch_t *watch)
{
    if (!watch->perf_pid)
        return -1;
    kill (watch->perf_pid, SIGINT);
    int status = 0;
    waitpid (watch->perf_pid, &status, 0);
    watch->perf_pid = 0;
    FILE *file = fopen (watch->perf_out, "r");
    if (!file)
        return -1;
    char line[512];
    int64_t total = -1;
    while (fgets (line, sizeof line, file)) {
        if (!strstr (line, "syscalls:sys_enter_"))
            continue;
        char *end;
        long long count = strtoll (line, &end, 10);
        if (end == line || *end != ',')
            continue;   //  "<not supported>" and friends
        total = (total < 0 ? 0 : total) + count;
    }
    fclose (file);
    unlink (watch->perf_out);
    return total;
}

//  The machine's busy, stolen and total jiffies so far (all CPUs).
static void
s_machine (int64_t out[3])
{
    out[0] = out[1] = out[2] = 0;
    FILE *file = fopen ("/proc/stat", "r");
    if (!file)
        return;
    long long v[10] = { 0 };
    //  cpu  user nice system idle iowait irq softirq steal guest guest_nice
    int n = fscanf (
        file, "cpu %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &v[0],
        &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose (file);
    if (n < 8)
        return;
    out[0] = v[0] + v[1] + v[2] + v[5] + v[6];
    out[1] = v[7];
    out[2] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

void
bench_watch_arm (bench_watches_t *w)
{
    if (w->profile_pid)
        s_profile_start (w);
    for (int i = 0; w->count_syncs && i < w->count; i++) {
        if (w->list[i].pid == getpid ())
            continue;   //  our own syncs are not the question
        w->list[i].perf_t0 = bench_now ();
        s_perf_start (&w->list[i]);
    }
}

void
bench_watch_start (bench_watches_t *w)
{
    s_machine (w->stat_start);
    for (int i = 0; i < w->count; i++) {
        bench_watch_t *watch = &w->list[i];
        watch->ticks_start = s_cpu_ticks (watch->pid);
        watch->rss_load_kb = bench_proc_rss_kb (watch->pid);
    }
}

void
bench_watch_sample (bench_watches_t *w)
{
    for (int i = 0; i < w->count; i++) {
        int64_t rss = bench_proc_rss_kb (w->list[i].pid);
        if (rss > w->list[i].rss_load_kb)
            w->list[i].rss_load_kb = rss;
    }
}

void
bench_watch_stop (bench_watches_t *w)
{
    s_machine (w->stat_end);
    s_profile_stop (w);
    long hz = sysconf (_SC_CLK_TCK);
    for (int i = 0; i < w->count; i++) {
        bench_watch_t *watch = &w->list[i];
        bench_watch_sample (w);
        int64_t ticks = s_cpu_ticks (watch->pid);
        watch->cpu_s = ticks >= 0 && watch->ticks_start >= 0
                           ? (double) (ticks - watch->ticks_start) / (double) hz
                           : -1;
        watch->threads = s_status_field (watch->pid, "Threads");
        watch->syncs = s_perf_stop (watch);
        double s = (double) (bench_now () - watch->perf_t0) / 1e9;
        watch->sync_rate =
            watch->syncs >= 0 && s > 0 ? (double) watch->syncs / s : -1;
    }
}

json_t *
bench_watch_json (const bench_watches_t *w, double seconds)
{
    json_t *list = json_array ();
    for (int i = 0; i < w->count; i++) {
        const bench_watch_t *watch = &w->list[i];
        //  rss_end is read now: after the load, before the process stops
        json_t *item = json_pack (
            "{s:s, s:i, s:I, s:I, s:I, s:I, s:f, s:I}", "name", watch->name,
            "pid", (int) watch->pid, "rss_idle_kb",
            (json_int_t) watch->rss_idle_kb, "rss_conn_kb",
            (json_int_t) (watch->rss_conn_kb ? watch->rss_conn_kb
                                             : watch->rss_idle_kb),
            "rss_load_kb", (json_int_t) watch->rss_load_kb, "rss_end_kb",
            (json_int_t) bench_proc_rss_kb (watch->pid), "cpu_pct",
            seconds > 0 && watch->cpu_s >= 0 ? 100.0 * watch->cpu_s / seconds
                                             : -1.0,
            "threads", (json_int_t) watch->threads);
        if (watch->syncs >= 0) {
            json_object_set_new (item, "syncs", json_integer (watch->syncs));
            json_object_set_new (item, "syncs_per_s",
                                 json_real (watch->sync_rate));
        }
        json_array_append_new (list, item);
    }
    return list;
}

json_t *
bench_machine_json (const bench_watches_t *w, double seconds)
{
    //  In "% of one core", like the processes: a 2-core machine has 200%
    double total = (double) (w->stat_end[2] - w->stat_start[2]);
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    if (total <= 0 || seconds <= 0)
        return json_object ();
    double busy =
        100.0 * cores * (double) (w->stat_end[0] - w->stat_start[0]) / total;
    double steal =
        100.0 * cores * (double) (w->stat_end[1] - w->stat_start[1]) / total;
    double ours = 0;
    for (int i = 0; i < w->count; i++)
        if (w->list[i].cpu_s > 0)
            ours += 100.0 * w->list[i].cpu_s / seconds;
    double load = 0;
    FILE *file = fopen ("/proc/loadavg", "r");
    if (file) {
        if (fscanf (file, "%lf", &load) != 1)
            load = 0;
        fclose (file);
    }
    return json_pack ("{s:i, s:f, s:f, s:f, s:f}", "cores", (int) cores,
                      "busy_pct", busy, "steal_pct", steal, "others_pct",
                      busy > ours ? busy - ours : 0.0, "loadavg", load);
}
