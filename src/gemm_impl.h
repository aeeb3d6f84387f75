/* Backend rows of the GEMM table (gemm.h), one per src/gemm_<name>.c. */
#ifndef SAEVAL_GEMM_IMPL_H
#define SAEVAL_GEMM_IMPL_H
#include "saeval/gemm.h"

extern const sv_gemm_backend sv_gemm_openblas_backend;
extern const sv_gemm_backend sv_gemm_blis_backend;
extern const sv_gemm_backend sv_gemm_onednn_backend;

#endif
