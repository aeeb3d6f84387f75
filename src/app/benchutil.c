/* Helpers shared by the benchmarks; see benchutil.h. */
#include "benchutil.h"

double sv_bench_urand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (double)(x >> 11) * 0x1.0p-53;
}
