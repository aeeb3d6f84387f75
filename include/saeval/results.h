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

#endif
