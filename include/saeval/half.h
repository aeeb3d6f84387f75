/* IEEE binary16 and bfloat16 <-> float32 conversion (round to nearest even). */
#ifndef SAEVAL_HALF_H
#define SAEVAL_HALF_H
#include <stddef.h>
#include <stdint.h>

float sv_f16_to_f32(uint16_t h);
float sv_bf16_to_f32(uint16_t h);
uint16_t sv_f32_to_f16(float f);
uint16_t sv_f32_to_bf16(float f);
void sv_f16_to_f32_n(const uint16_t *in, float *out, size_t n);
void sv_bf16_to_f32_n(const uint16_t *in, float *out, size_t n);

#endif
