/* Small helpers shared by the benchmarks (bench.c, bench_scale.c). */
#ifndef SAEVAL_BENCHUTIL_H
#define SAEVAL_BENCHUTIL_H
#include <stdint.h>

/* Uniform [0, 1) from a xorshift64 state: benchmark data only has to be
 * realistic in scale, not in structure. */
double sv_bench_urand(uint64_t *state);

#endif
