/* File utilities every layer may use: path join, whole-file read, mkdir -p
 * and the one temp-file-then-rename writer. Depends only on error.h. */
#include "saeval/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *sv_path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir || !dir[0]) return sv_strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = sv_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

sv_rc sv_read_file(const char *path, char **out, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) { fclose(fp); return sv_fail(SV_EINPUT, "%s: cannot seek", path); }
    long sz = ftell(fp);
    if (sz < 0) { fclose(fp); return sv_fail(SV_EINPUT, "%s: cannot size", path); }
    rewind(fp);
    char *buf = sv_malloc((size_t)sz + 1);
    if (!buf) { fclose(fp); return SV_EINTERNAL; }
    if (fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        free(buf);
        fclose(fp);
        return sv_fail(SV_EINPUT, "%s: short read", path);
    }
    fclose(fp);
    buf[sz] = '\0';
    *out = buf;
    if (len) *len = (size_t)sz;
    return SV_OK;
}

char *sv_tmp_path(const char *path)
{
    /* Same directory (rename stays atomic), pid-unique (two writers of one
     * file never share a temporary). */
    size_t n = strlen(path) + 32;
    char *tmp = sv_malloc(n);
    if (tmp) snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    return tmp;
}

/* Removes a temporary file after a failure. A directory that lost its
 * write permission keeps it: then the message says so and names it. */
static void discard_tmp(const char *tmp, char *note, size_t n)
{
    note[0] = '\0';
    if (unlink(tmp) != 0 && errno != ENOENT)
        snprintf(note, n, "; its temporary file %s is left (cannot remove it: %s)", tmp, strerror(errno));
}

sv_rc sv_tmp_commit(const char *tmp, const char *path)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        char note[4200];
        discard_tmp(tmp, note, sizeof note);
        return sv_fail(SV_EINTERNAL, "%s: cannot finish writing: %s%s", path, strerror(e), note);
    }
    return SV_OK;
}

sv_rc sv_mkdir_p(const char *path)
{
    char *p = sv_strdup(path);
    if (!p) return SV_EINTERNAL;
    for (char *q = p + 1; ; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                sv_rc rc = sv_fail(SV_EINPUT, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return rc;
            }
            *q = c;
            if (c == '\0') break;
        }
    }
    free(p);
    return SV_OK;
}

/* 1 when path already holds exactly these bytes. */
static int same_content(const char *path, const char *buf, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0 || (size_t)st.st_size != len) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char chunk[65536];
    size_t off = 0, n;
    int same = 1;
    while (same && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (off + n > len || memcmp(chunk, buf + off, n) != 0) same = 0;
        off += n;
    }
    fclose(f);
    return same && off == len;
}

sv_rc sv_write_atomic(const char *path, const char *buf, size_t len)
{
    /* An unchanged file keeps its mtime: a resubmitted, finished sweep
     * touches nothing. */
    if (same_content(path, buf, len)) return SV_OK;
    char *tmp = sv_tmp_path(path);
    if (!tmp) return SV_EINTERNAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        sv_rc rc = sv_fail(SV_EINPUT, "%s: cannot write: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            char note[4200];
            close(fd);
            discard_tmp(tmp, note, sizeof note);
            sv_rc rc = sv_fail(SV_EINTERNAL, "%s: write failed: %s%s", tmp, strerror(e), note);
            free(tmp);
            return rc;
        }
        off += (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        char note[4200];
        discard_tmp(tmp, note, sizeof note);
        sv_rc rc = sv_fail(SV_EINTERNAL, "%s: cannot finish writing: %s%s", path, strerror(e), note);
        free(tmp);
        return rc;
    }
    sv_rc rc = sv_tmp_commit(tmp, path);
    free(tmp);
    return rc;
}

