/* Result files of one pair in the output directory: the JSON result
 * (written atomically; a written result clears an old failure note) and
 * the error note that says why a pair has no result. */
#ifndef SAEVAL_RESULTS_H
#define SAEVAL_RESULTS_H
#include <stddef.h>
#include "saeval/error.h"

/* Path of a pair's error note (why it failed). Caller frees. */
char *sv_error_note_path(const char *out_dir, const char *sae_id, const char *dataset);
/* Write the pair's result file (text of n bytes) and remove its old note. */
sv_rc sv_results_write_pair(const char *out_dir, const char *sae_id, const char *dataset, const char *text, size_t n);
/* Record a pair's failure message in its note. Best effort. */
void sv_results_note_failure(const char *out_dir, const char *sae_id, const char *dataset, const char *msg);

/* The scalar part of a complete pair result file: its text up to the
 * top-level "feature_metrics" key (the last key of the object, as
 * sv_pair_json writes it), closed into an object of its own ("...\n}").
 * Only the file's head (and its last bytes, to know the file is whole) is
 * read unless the head is unusually long, so resume and merge stay cheap
 * however many latents an SAE has. A file without that layout (not
 * written by saeval, cut short, hand-edited) is SV_EINPUT. Caller frees. */
sv_rc sv_result_head(const char *path, char **head, size_t *len);
/* The same on text already in memory (n bytes): *cut is the length of the
 * scalar part (the text to keep before adding "\n}"); 0 if the text is not
 * a complete result. */
size_t sv_result_head_cut(const char *text, size_t n, int whole);

#endif
