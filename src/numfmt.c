/* printf-free formatting of integers and "%.*g" (numfmt.h). */
#include "saeval/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

int sv_fmt_i64(char *out, int64_t v)
{
    char t[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
    do { t[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    int k = 0;
    if (v < 0) out[k++] = '-';
    while (n) out[k++] = t[--n];
    out[k] = '\0';
    return k;
}

static const uint64_t pow10_u64[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                       100000000ull, 1000000000ull, 10000000000ull, 100000000000ull,
                                       1000000000000ull, 10000000000000ull, 100000000000000ull,
                                       1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
                                       1000000000000000000ull, 10000000000000000000ull};

/* 10^e as a 128-bit integer, e <= 38; bits: its bit length (0: too big). */
static int pow10_128(int e, u128 *p)
{
    if (e < 0 || e > 38) return 0;
    *p = e < 20 ? (u128)pow10_u64[e] : (u128)pow10_u64[19] * pow10_u64[e - 19];
    return 1;
}

static int bitlen(u128 x)
{
    const uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

/* x = m * 2^q (m < 2^53): N = round_half_even(x * 10^s). 0 when the
 * integers would not fit (the caller falls back). */
static int scaled_round(uint64_t m, int q, int s, uint64_t *N)
{
    u128 A = m, B = 1, p;
    if (s >= 0) { if (!pow10_128(s, &p) || bitlen(A) + bitlen(p) > 124) return 0; A *= p; }
    else { if (!pow10_128(-s, &p)) return 0; B = p; }
    if (q >= 0) { if (bitlen(A) + q > 124) return 0; A <<= q; }
    else { if (bitlen(B) - q > 124) return 0; B <<= -q; }
    u128 n = A / B, r = A - n * B;
    if (2 * r > B || (2 * r == B && (n & 1))) n++;
    if (n > (u128)UINT64_MAX) return 0;
    *N = (uint64_t)n;
    return 1;
}

int sv_fmt_g(char *out, double v, int prec)
{
    if (prec < 1) prec = 1;
    if (prec > 17 || !isfinite(v)) return snprintf(out, 32, "%.*g", prec, v);
    if (v == 0) return snprintf(out, 32, signbit(v) ? "-0" : "0");
    const int neg = v < 0;
    const double x = fabs(v);
    int q;
    const double fr = frexp(x, &q); /* x = fr * 2^q, fr in [0.5, 1) */
    const uint64_t m = (uint64_t)ldexp(fr, 53);
    q -= 53;
    /* E: the decimal exponent of x rounded to prec digits. */
    int E = (int)floor(log10(x));
    uint64_t N = 0;
    for (int tries = 0;; tries++) {
        if (tries > 4 || !scaled_round(m, q, prec - 1 - E, &N)) return snprintf(out, 32, "%.*g", prec, v);
        if (N >= pow10_u64[prec]) E++;
        else if (N < pow10_u64[prec - 1]) E--;
        else break;
    }
    /* N = 10^(prec-1) also comes from rounding up a value just below 10^E
     * when the estimate of E was one too high: its own exponent may hold
     * all prec digits without a carry. */
    if (N == pow10_u64[prec - 1]) {
        uint64_t N1;
        if (!scaled_round(m, q, prec - E, &N1)) return snprintf(out, 32, "%.*g", prec, v);
        if (N1 < pow10_u64[prec]) { N = N1; E--; }
    }
    /* digits of N, trailing zeros dropped (no '#' flag) */
    char dg[20];
    int nd = prec;
    for (int i = prec - 1; i >= 0; i--) { dg[i] = (char)('0' + N % 10); N /= 10; }
    while (nd > 1 && dg[nd - 1] == '0') nd--;
    int k = 0;
    if (neg) out[k++] = '-';
    if (E >= -4 && E < prec) { /* fixed */
        if (E >= 0) {
            for (int i = 0; i <= E; i++) out[k++] = i < nd ? dg[i] : '0';
            if (nd > E + 1) {
                out[k++] = '.';
                for (int i = E + 1; i < nd; i++) out[k++] = dg[i];
            }
        } else {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -E - 1; i++) out[k++] = '0';
            for (int i = 0; i < nd; i++) out[k++] = dg[i];
        }
    } else { /* exponent */
        out[k++] = dg[0];
        if (nd > 1) {
            out[k++] = '.';
            for (int i = 1; i < nd; i++) out[k++] = dg[i];
        }
        out[k++] = 'e';
        out[k++] = E < 0 ? '-' : '+';
        int ae = E < 0 ? -E : E;
        if (ae >= 100) out[k++] = (char)('0' + ae / 100);
        out[k++] = (char)('0' + ae / 10 % 10);
        out[k++] = (char)('0' + ae % 10);
    }
    out[k] = '\0';
    return k;
}
