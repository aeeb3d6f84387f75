/* IEEE binary16 and bfloat16 <-> float32 conversion.
 *
 * Pure bit manipulation so that results do not depend on the FPU rounding
 * mode or on F16C being available; the array variants are plain loops over
 * inline scalar code so gcc can vectorize them. */
#include "saeval/half.h"

#include <string.h>

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Branch-free widening (so the array loop vectorizes): rebias the exponent;
 * inf/NaN get exponent 255 with the payload kept; subnormals are built as
 * 1.m * 2^-14 (exponent 113) minus 2^-14, which is exact. Cases are merged
 * with masks rather than branches. */
static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = (uint32_t)(h & 0x7fffu) << 13; /* exponent+mantissa in f32 slots */
    uint32_t exp = em & 0x0f800000u;
    uint32_t is_special = 0u - (uint32_t)(exp == 0x0f800000u);
    uint32_t is_sub = 0u - (uint32_t)(exp == 0);
    uint32_t normal = em + (112u << 23) + (is_special & (112u << 23));
    uint32_t sub = f2u(u2f(em + (113u << 23)) - u2f(113u << 23));
    return u2f(((normal & ~is_sub) | (sub & is_sub)) | sign);
}

float sv_f16_to_f32(uint16_t h) { return f16_to_f32(h); }

float sv_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t sv_f32_to_f16(float f)
{
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;

    if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return sign | 0x7e00u | (uint16_t)((ax >> 13) & 0x3ffu);
    if (ax >= 0x477ff000u) /* >= 65520 (halfway above 65504) rounds to inf */
        return sign | 0x7c00u;
    if (ax < 0x38800000u) {
        /* Below 2^-14: result is the subnormal m = round(|f| * 2^24).
         * |f| = mant * 2^(e-150), so m = mant >> (126 - e), rounded. */
        uint32_t e = ax >> 23;
        uint32_t shift = 126 - e;
        if (shift > 24) return sign; /* < 2^-25: rounds to zero */
        uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t r = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++; /* may carry into 0x400: fine */
        return sign | (uint16_t)r;
    }
    /* Normal: rebias and round the 13 dropped bits to nearest even. A carry
     * out of the mantissa correctly bumps the exponent. */
    uint32_t r = ax - (112u << 23);
    r += 0xfffu + ((r >> 13) & 1);
    return sign | (uint16_t)(r >> 13);
}

uint16_t sv_f32_to_bf16(float f)
{
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);         /* nearest even; overflows to inf */
    return (uint16_t)(x >> 16);
}

void sv_f16_to_f32_n(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(in[i]);
}

void sv_bf16_to_f32_n(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = u2f((uint32_t)in[i] << 16);
}
