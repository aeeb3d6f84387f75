/* SV_MULTIARCH: hot element-wise loops get AVX-512 and AVX2 clones chosen at load
 * time (the default build targets baseline x86-64). -ffp-contract=off
 * keeps FMA out, so every clone computes the same bits. */
#ifndef SAEVAL_MULTIARCH_H
#define SAEVAL_MULTIARCH_H
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SV_MULTIARCH __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SV_MULTIARCH
#endif
#endif
