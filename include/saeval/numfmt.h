/* Number formatting without printf. glibc's printf is slow here (a
 * library that registers a printf handler sends every call down its
 * positional path), and the report writes millions of numbers. The output
 * is byte for byte what snprintf gives for the same format (test
 * numfmt_vs_printf): sv_fmt_g is "%.*g" with the exact binary value
 * rounded half to even, computed in 128-bit integers, falling back to
 * snprintf where those could overflow (very large or small magnitudes). */
#ifndef SAEVAL_NUMFMT_H
#define SAEVAL_NUMFMT_H
#include <stddef.h>
#include <stdint.h>

/* "%lld" of v into out (at least 21 bytes); returns the length. */
int sv_fmt_i64(char *out, int64_t v);
/* "%.*g" of v with precision prec (1..17) into out (at least 32 bytes);
 * returns the length. */
int sv_fmt_g(char *out, double v, int prec);

#endif
