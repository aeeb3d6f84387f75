/* Pair claims between runs sharing an output directory (see claim.h). */
#define _DEFAULT_SOURCE
#include "saeval/claim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void sv_claim_me(sv_claim_owner *me)
{
    memset(me, 0, sizeof *me);
    if (gethostname(me->host, sizeof me->host - 1) != 0) strcpy(me->host, "?");
    me->pid = (long)getpid();
    const char *aj = getenv("SLURM_ARRAY_JOB_ID"), *at = getenv("SLURM_ARRAY_TASK_ID");
    const char *j = getenv("SLURM_JOB_ID");
    if (aj && at) snprintf(me->job, sizeof me->job, "%.30s_%.30s", aj, at);
    else snprintf(me->job, sizeof me->job, "%.60s", j && *j ? j : "-");
    me->started = (long)time(NULL);
    snprintf(me->token, sizeof me->token, "%.16s-%ld-%ld", me->host, me->pid, me->started);
}

static void path_of(char *buf, size_t n, const char *dir, const char *name, const char *suffix)
{
    snprintf(buf, n, "%s/%s.claim%s", dir, name, suffix);
}

/* One line: "host pid job started token\n"; fields never contain spaces
 * (hostnames and job ids do not; anything odd is replaced). */
static void format_owner(char *buf, size_t n, const sv_claim_owner *o)
{
    char host[256], job[64];
    snprintf(host, sizeof host, "%s", o->host);
    snprintf(job, sizeof job, "%s", o->job);
    for (char *p = host; *p; p++) if (*p <= ' ') *p = '_';
    for (char *p = job; *p; p++) if (*p <= ' ') *p = '_';
    snprintf(buf, n, "saeval-claim %s %ld %s %ld %s\n", host, o->pid, job, o->started, o->token);
}

/* 0 on success, -1 if the content is not a claim (then it is treated as stale). */
static int parse_owner(const char *text, sv_claim_owner *o)
{
    memset(o, 0, sizeof *o);
    char host[256], job[64], token[40];
    long pid, started;
    if (sscanf(text, "saeval-claim %255s %ld %63s %ld %39s", host, &pid, job, &started, token) != 5)
        return -1;
    snprintf(o->host, sizeof o->host, "%s", host);
    snprintf(o->job, sizeof o->job, "%s", job);
    snprintf(o->token, sizeof o->token, "%s", token);
    o->pid = pid;
    o->started = started;
    return 0;
}

static int read_owner(const char *path, sv_claim_owner *o, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -2; /* gone */
    char buf[512];
    ssize_t k = read(fd, buf, sizeof buf - 1);
    if (st && fstat(fd, st) != 0) memset(st, 0, sizeof *st);
    close(fd);
    if (k < 0) return -1;
    buf[k] = '\0';
    return parse_owner(buf, o);
}

/* A pid that is gone, or a zombie nobody has reaped yet (a killed rank
 * whose launcher exited first), is not alive. */
static int pid_alive(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 1; /* no procfs: trust kill() */
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static void alive_path(char *buf, size_t n, const char *dir, const char *token)
{
    snprintf(buf, n, "%s/%s.alive", dir, token);
}

/* The owner's heartbeat is the mtime of DIR/TOKEN.alive (one file per run,
 * refreshed by sv_claim_refresh); a claim without one counts from its own
 * mtime. */
static int is_stale(const char *dir, const sv_claim_owner *o, int parsed, const struct stat *st, double lease_s)
{
    if (parsed != 0) return 1; /* not a claim we can read: take it */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    if (strcmp(host, o->host) == 0 && o->pid > 0 && !pid_alive((pid_t)o->pid)) return 1;
    char ap[4200];
    alive_path(ap, sizeof ap, dir, o->token);
    struct stat as;
    time_t beat = stat(ap, &as) == 0 && as.st_mtime > st->st_mtime ? as.st_mtime : st->st_mtime;
    return difftime(time(NULL), beat) > lease_s;
}

/* 0: written; 1: exists (excl only); -1: error (message set). */
static int write_claim(const char *path, const sv_claim_owner *me, int excl)
{
    char line[512];
    format_owner(line, sizeof line, me);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0644);
    if (fd < 0) {
        if (excl && errno == EEXIST) return 1;
        sv_fail(SV_EINTERNAL, "%s: cannot create claim: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(line);
    ssize_t w = write(fd, line, len);
    int err = errno;
    if (close(fd) != 0 && w == (ssize_t)len) { w = -1; err = errno; }
    if (w != (ssize_t)len) {
        unlink(path);
        sv_fail(SV_EINTERNAL, "%s: cannot write claim: %s", path, w < 0 ? strerror(err) : "short write");
        return -1;
    }
    return 0;
}

sv_rc sv_claim_try(const char *dir, const char *name, const sv_claim_owner *me,
                   double lease_s, sv_claim_state *state, sv_claim_owner *holder)
{
    if (lease_s <= 0) lease_s = SV_CLAIM_LEASE_S;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return sv_fail(SV_EINTERNAL, "%s: cannot create claims directory: %s", dir, strerror(errno));
    char path[4096], lockp[4096];
    path_of(path, sizeof path, dir, name, "");
    /* Checking a claim and replacing a stale one must be one step, or two
     * runs could both judge it stale and both take it: every claim attempt
     * holds an flock on DIR/.lock (held for microseconds). */
    snprintf(lockp, sizeof lockp, "%s/.lock", dir);
    int lk = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lk < 0) return sv_fail(SV_EINTERNAL, "%s: cannot open claims lock: %s", lockp, strerror(errno));
    while (flock(lk, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(lk);
        return sv_fail(SV_EINTERNAL, "%s: cannot lock (flock: %s); the output directory's file system "
                       "must support flock", lockp, strerror(e));
    }
    sv_rc rc = SV_OK;
    int w = write_claim(path, me, 1);
    if (w == 0) { *state = SV_CLAIM_TAKEN; goto out; }
    if (w < 0) { rc = SV_EINTERNAL; goto out; }
    sv_claim_owner o;
    struct stat st;
    int parsed = read_owner(path, &o, &st);
    if (parsed == 0 && strcmp(o.token, me->token) == 0) { *state = SV_CLAIM_TAKEN; goto out; }
    if (parsed != -2 && !is_stale(dir, &o, parsed, &st, lease_s)) {
        *state = SV_CLAIM_HELD_BY_OTHER;
        if (holder) *holder = o;
        goto out;
    }
    /* Stale (or released meanwhile): replace it. */
    if (unlink(path) != 0 && errno != ENOENT) {
        rc = sv_fail(SV_EINTERNAL, "%s: cannot remove stale claim: %s", path, strerror(errno));
        goto out;
    }
    w = write_claim(path, me, 1);
    if (w == 0) *state = SV_CLAIM_TAKEN;
    else rc = sv_fail(SV_EINTERNAL, "%s: cannot create claim after removing a stale one", path);
out:
    flock(lk, LOCK_UN);
    close(lk);
    return rc;
}

sv_rc sv_claim_refresh(const char *dir, const sv_claim_owner *me)
{
    char ap[4200];
    alive_path(ap, sizeof ap, dir, me->token);
    int fd = open(ap, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return sv_fail(SV_EINTERNAL, "%s: cannot refresh the run's heartbeat: %s", ap, strerror(errno));
    int ok = futimens(fd, NULL) == 0;
    close(fd);
    if (!ok) return sv_fail(SV_EINTERNAL, "%s: cannot refresh the run's heartbeat: %s", ap, strerror(errno));
    return SV_OK;
}

void sv_claim_done(const char *dir, const sv_claim_owner *me)
{
    char ap[4200];
    alive_path(ap, sizeof ap, dir, me->token);
    unlink(ap);
}

void sv_claim_release(const char *dir, const char *name, const sv_claim_owner *me)
{
    char path[4096];
    path_of(path, sizeof path, dir, name, "");
    sv_claim_owner o;
    if (read_owner(path, &o, NULL) == 0 && strcmp(o.token, me->token) == 0) unlink(path);
}

const char *sv_claim_describe(const sv_claim_owner *o)
{
    static char buf[512];
    time_t t = (time_t)o->started;
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(buf, sizeof buf, "host %s, pid %ld, SLURM job %s, since %s", o->host, o->pid, o->job, when);
    return buf;
}
