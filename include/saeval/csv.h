/* CSV cells (RFC 4180): the one place that quotes text and formats numbers
 * for all_eval_results.csv and generalization.csv. */
#ifndef SAEVAL_CSV_H
#define SAEVAL_CSV_H
#include "saeval/json.h"

/* Append s as one cell: verbatim, or in double quotes (inner quotes doubled)
 * when it holds a comma, a quote or a line break. */
void sv_csv_cell(sv_jw *b, const char *s);
/* Append v as %.17g (round-trips the JSON value); nothing for NaN/inf. */
void sv_csv_num(sv_jw *b, double v);

#endif
