/* sv_fmt_i64 and sv_fmt_g against glibc's snprintf ("%lld", "%.*g"), the
 * reference they must reproduce byte for byte: random doubles over the
 * whole exponent range, float32 values (what the report writes), exact
 * ties at every precision, values next to the fixed/exponent switch and
 * to powers of ten, subnormals, extremes, signed zeros. */
#define TEST_NAME "test_numfmt"
#define TU_CHECK
#include "testutil.h"
#include "saeval/numfmt.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long n_cmp;

static void one(double v, int prec)
{
    char a[64], b[64];
    int na = sv_fmt_g(a, v, prec), nb = snprintf(b, sizeof b, "%.*g", prec, v);
    n_cmp++;
    CHECK(na == nb && strcmp(a, b) == 0, "%%.%dg of %a: '%s' vs printf '%s'", prec, v, a, b);
}

static void all_prec(double v)
{
    for (int p = 1; p <= 17; p++) { one(v, p); one(-v, p); }
}

int main(void)
{
    /* integers */
    const int64_t ints[] = {0, 1, -1, 9, 10, -10, 99, 100, 123456789, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char a[32], b[32];
        sv_fmt_i64(a, ints[i]);
        snprintf(b, sizeof b, "%lld", (long long)ints[i]);
        CHECK(strcmp(a, b) == 0, "%s vs %s", a, b);
    }
    for (int i = 0; i < 100000; i++) {
        const int64_t v = (int64_t)next() >> (next() % 64);
        char a[32], b[32];
        sv_fmt_i64(a, v);
        snprintf(b, sizeof b, "%lld", (long long)v);
        CHECK(strcmp(a, b) == 0, "%s vs %s", a, b);
    }
    /* edges */
    const double edge[] = {0.0, -0.0, 1, 0.5, 1.5, 2.5, 0.125, 1.125, 12.5, 125, 1250, 0.0625, 9.995, 99.95, 999.5,
                           9.5, 0.95, 0.0001, 0.00001, 9.9999e-5, 0.000099995, 1e-5, 1e16, 1e17, 1e22, 1e23,
                           123456789012345678.0, DBL_MAX, DBL_MIN, DBL_TRUE_MIN, FLT_MAX, FLT_MIN, 5e-324,
                           0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 100, 1000, 1e5, 1e6, 999999.5, 9999995, 0.5e-4};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) all_prec(edge[i]);
    /* exact ties: (2k+1)/2 * 2^j at every precision */
    for (int k = 0; k < 2000; k++)
        for (int j = -12; j <= 12; j += 3) all_prec(ldexp((double)(2 * k + 1), j - 1));
    /* random doubles over the exponent range, and float32 values */
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = next();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (isfinite(v)) one(v, (int)(next() % 17) + 1);
        const float f = (float)ldexp((double)(next() >> 11) * 0x1.0p-53, (int)(next() % 60) - 40);
        one(f, (int)(next() % 9) + 1);
        one(f, 3);
    }
    /* the report's range: activations 1e-6 .. 1e4 at 3 and 6..9 digits */
    for (int i = 0; i < 200000; i++) {
        const float f = (float)(exp((double)(next() % 23000) / 1000.0 - 13.8));
        one(f, 3);
        one(f, 6 + (int)(next() % 4));
    }
    printf(TEST_NAME ": %ld formats compared with snprintf, %d differ\n", n_cmp, tu_failures());
    return tu_failures() != 0;
}
