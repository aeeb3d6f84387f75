/* LD_PRELOAD shim that makes one file system look slow: every read of
 * SLOWFS_MIN_BYTES (default 65536) or more from a file whose path contains
 * SLOWFS_MATCH sleeps SLOWFS_DELAY_MS (default 3000) first, for the first
 * SLOWFS_COUNT (default 1) such reads of the process. Used by
 * tests/faults.sh (stall) to check that a stalled read is reported by the
 * watchdog instead of looking like a hang; saeval's code is not changed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void maybe_stall(int fd, size_t n)
{
    const char *m = getenv("SLOWFS_MATCH");
    if (!m || !*m) return;
    const char *mb = getenv("SLOWFS_MIN_BYTES");
    if (n < (size_t)(mb ? atol(mb) : 65536)) return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, path, sizeof path - 1);
    if (k <= 0) return;
    path[k] = '\0';
    if (!strstr(path, m)) return;
    static int stalls; /* only the first SLOWFS_COUNT (default 1) reads */
    const char *c = getenv("SLOWFS_COUNT");
    if (stalls >= (c ? atoi(c) : 1)) return;
    stalls++;
    const char *d = getenv("SLOWFS_DELAY_MS");
    long ms = d ? atol(d) : 3000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*preadv_fn)(int, const struct iovec *, int, off_t);
#define REAL(name, type) static type real_##name; if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    REAL(pread, pread_fn);
    maybe_stall(fd, n);
    return real_pread(fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    REAL(pread64, pread_fn);
    maybe_stall(fd, n);
    return real_pread64(fd, buf, n, off);
}
ssize_t read(int fd, void *buf, size_t n)
{
    REAL(read, read_fn);
    maybe_stall(fd, n);
    return real_read(fd, buf, n);
}
ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(preadv, preadv_fn);
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    maybe_stall(fd, n);
    return real_preadv(fd, iov, cnt, off);
}
ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(preadv64, preadv_fn);
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    maybe_stall(fd, n);
    return real_preadv64(fd, iov, cnt, off);
}
