/* File utilities below every other module: path join, whole-file read,
 * mkdir -p and the one temp-file-then-rename writer. */
#ifndef SAEVAL_FSUTIL_H
#define SAEVAL_FSUTIL_H
#include <stddef.h>
#include "saeval/error.h"

/* dir/rel, or rel itself when it is absolute or dir is empty. Caller frees. */
char *sv_path_join(const char *dir, const char *rel);
/* Read a whole (small) file into a NUL-terminated buffer. */
sv_rc sv_read_file(const char *path, char **out, size_t *len);
sv_rc sv_mkdir_p(const char *path);

/* The temp-then-rename protocol, for writers that stream (HDF5, safetensors):
 * write to sv_tmp_path(path), then sv_tmp_commit(tmp, path) renames it into
 * place (and removes tmp when that fails). Readers see the old or the new
 * complete file, never a partial one. */
char *sv_tmp_path(const char *path);
sv_rc sv_tmp_commit(const char *tmp, const char *path);
/* Write buf to path through sv_tmp_path + fsync + sv_tmp_commit. An
 * unchanged file is left alone (keeps its mtime). */
sv_rc sv_write_atomic(const char *path, const char *buf, size_t len);

#endif
