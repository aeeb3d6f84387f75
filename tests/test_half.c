/* half.h: exhaustive f16/bf16 widening, round trips and rounding cases. */
#include "saeval/half.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            if (failures < 30) {                                              \
                fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond); \
                fprintf(stderr, __VA_ARGS__);                                 \
                fprintf(stderr, "\n");                                        \
            }                                                                 \
        }                                                                     \
    } while (0)

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Independent reference: the binary16 value by its definition. */
static double f16_ref(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double sign = s ? -1.0 : 1.0;
    if (e == 31) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * ldexp(m / 1024.0, -14);
    return sign * ldexp(1.0 + m / 1024.0, e - 15);
}

static void test_f16_exhaustive(void)
{
    uint16_t in[65536];
    float out[65536];
    for (uint32_t i = 0; i < 65536; i++) in[i] = (uint16_t)i;
    sv_f16_to_f32_n(in, out, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = sv_f16_to_f32(h);
        double r = f16_ref(h);
        CHECK(bits(out[i]) == bits(f), "_n differs from scalar at 0x%04x", h);
        if (isnan(r)) {
            CHECK(isnan(f), "0x%04x should be NaN, got %g", h, f);
            uint16_t back = sv_f32_to_f16(f);
            CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff) && (back & 0x200),
                  "NaN 0x%04x -> 0x%04x not a quiet NaN", h, back);
            CHECK((back & 0x8000) == (h & 0x8000), "NaN sign lost 0x%04x", h);
        } else {
            CHECK((double)f == r, "0x%04x -> %.9g, want %.9g", h, f, r);
            CHECK(!signbit(f) == !signbit(r), "0x%04x sign", h);
            uint16_t back = sv_f32_to_f16(f);
            CHECK(back == h, "round trip 0x%04x -> %g -> 0x%04x", h, f, back);
        }
    }
}

static void test_bf16_exhaustive(void)
{
    uint16_t in[65536];
    float out[65536];
    for (uint32_t i = 0; i < 65536; i++) in[i] = (uint16_t)i;
    sv_bf16_to_f32_n(in, out, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = sv_bf16_to_f32(h);
        CHECK(bits(f) == (uint32_t)h << 16, "bf16 0x%04x widened wrongly", h);
        CHECK(bits(out[i]) == bits(f), "bf16 _n differs at 0x%04x", h);
        uint16_t back = sv_f32_to_bf16(f);
        if (isnan(f))
            CHECK(isnan(sv_bf16_to_f32(back)) && (back & 0x40) && (back & 0x8000) == (h & 0x8000),
                  "bf16 NaN 0x%04x -> 0x%04x", h, back);
        else
            CHECK(back == h, "bf16 round trip 0x%04x -> 0x%04x", h, back);
    }
}

static void test_f16_rounding(void)
{
    /* Ties to even between 1 and 1+2^-10: 1+2^-11 goes down, 1+3*2^-11 up. */
    CHECK(sv_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00, "tie down to even");
    CHECK(sv_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02, "tie up to even");
    CHECK(sv_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)) == 0x3c01, "above tie rounds up");
    CHECK(sv_f32_to_f16(1.0f + ldexpf(1, -11) - ldexpf(1, -20)) == 0x3c00, "below tie rounds down");
    CHECK(sv_f32_to_f16(-1.0f - ldexpf(1, -11)) == 0xbc00, "negative tie to even");
    /* Mantissa carry bumps the exponent: 2 - 2^-12 -> 2. */
    CHECK(sv_f32_to_f16(2.0f - ldexpf(1, -12)) == 0x4000, "carry into exponent");
    /* Max finite, overflow boundary at 65520 (tie, 65504 is odd -> inf). */
    CHECK(sv_f32_to_f16(65504.0f) == 0x7bff, "max finite");
    CHECK(sv_f32_to_f16(65519.0f) == 0x7bff, "just below overflow tie");
    CHECK(sv_f32_to_f16(65520.0f) == 0x7c00, "overflow tie -> inf");
    CHECK(sv_f32_to_f16(1e10f) == 0x7c00, "overflow -> inf");
    CHECK(sv_f32_to_f16(-1e10f) == 0xfc00, "neg overflow -> -inf");
    CHECK(sv_f32_to_f16(INFINITY) == 0x7c00, "inf");
    CHECK(sv_f32_to_f16(-INFINITY) == 0xfc00, "-inf");
    CHECK(sv_f32_to_f16(0.0f) == 0x0000 && sv_f32_to_f16(-0.0f) == 0x8000, "signed zero");
    /* Subnormals: smallest is 2^-24; 2^-25 is a tie -> 0 (even); just above -> 1. */
    float tiny = ldexpf(1, -24);
    CHECK(sv_f32_to_f16(tiny) == 0x0001, "smallest subnormal");
    CHECK(sv_f32_to_f16(ldexpf(1, -25)) == 0x0000, "half smallest ties to zero");
    CHECK(sv_f32_to_f16(fbits(bits(ldexpf(1, -25)) + 1)) == 0x0001, "above half smallest");
    CHECK(sv_f32_to_f16(-ldexpf(1, -25)) == 0x8000, "neg tie to -0");
    CHECK(sv_f32_to_f16(3 * ldexpf(1, -25)) == 0x0002, "1.5 ulp subnormal ties to even 2");
    CHECK(sv_f32_to_f16(5 * ldexpf(1, -25)) == 0x0002, "2.5 ulp subnormal ties to even 2");
    CHECK(sv_f32_to_f16(ldexpf(1, -30)) == 0x0000, "far below -> 0");
    CHECK(sv_f32_to_f16(fbits(1)) == 0x0000, "f32 denormal -> 0");
    /* Largest subnormal + half ulp rounds (tie, odd) up into smallest normal. */
    CHECK(sv_f32_to_f16(ldexpf(1023, -24) + ldexpf(1, -25)) == 0x0400, "subnormal carry to normal");
    CHECK(sv_f32_to_f16(ldexpf(1, -14)) == 0x0400, "smallest normal");
    CHECK(sv_f32_to_f16(NAN) != 0 && isnan(sv_f16_to_f32(sv_f32_to_f16(NAN))), "NaN stays NaN");
    /* A signalling f32 NaN whose payload lives only in low bits must stay NaN. */
    uint16_t q = sv_f32_to_f16(fbits(0x7f800001));
    CHECK((q & 0x7c00) == 0x7c00 && (q & 0x200), "low-payload sNaN -> quiet NaN, got 0x%04x", q);

    /* Every f32 between consecutive f16 values: compare against nearest by
     * brute force on a sample (exact halfway handled above). */
    for (uint32_t h = 0; h < 0x7bff; h += 7) {
        double a = f16_ref((uint16_t)h), b = f16_ref((uint16_t)(h + 1));
        float lo = (float)(a + (b - a) * 0.25), hi = (float)(a + (b - a) * 0.75);
        CHECK(sv_f32_to_f16(lo) == h, "quarter above 0x%04x", h);
        CHECK(sv_f32_to_f16(hi) == h + 1, "three quarters above 0x%04x", h);
    }
}

static void test_bf16_rounding(void)
{
    /* 1 + 2^-8 is halfway between 1 and 1+2^-7: to even (1). */
    CHECK(sv_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80, "bf16 tie down");
    CHECK(sv_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)) == 0x3f82, "bf16 tie up");
    CHECK(sv_f32_to_bf16(1.0f + ldexpf(1, -8) + ldexpf(1, -20)) == 0x3f81, "bf16 above tie");
    CHECK(sv_f32_to_bf16(3.4028235e38f) == 0x7f80, "bf16 FLT_MAX rounds to inf");
    CHECK(sv_f32_to_bf16(fbits(0x7f7f7fff)) == 0x7f7f, "bf16 max finite stays");
    CHECK(sv_f32_to_bf16(-INFINITY) == 0xff80, "bf16 -inf");
    CHECK(sv_f32_to_bf16(fbits(0x00000001)) == 0x0000, "bf16 tiny denormal -> 0");
    CHECK(sv_f32_to_bf16(fbits(0x00008000)) == 0x0000, "bf16 denormal tie to even 0");
    CHECK(sv_f32_to_bf16(fbits(0x00018000)) == 0x0002, "bf16 denormal tie to even 2");
    uint16_t q = sv_f32_to_bf16(fbits(0x7f800001));
    CHECK(isnan(sv_bf16_to_f32(q)), "bf16 low-payload NaN stays NaN, got 0x%04x", q);
}

int main(void)
{
    test_f16_exhaustive();
    test_bf16_exhaustive();
    test_f16_rounding();
    test_bf16_rounding();
    if (failures) {
        fprintf(stderr, "test_half: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_half: ok\n");
    return 0;
}
