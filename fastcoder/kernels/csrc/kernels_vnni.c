/* The decode and prefill kernels compiled again for AVX-VNNI, chosen at run time (qmatmul.c) when
   the CPU has it. vpdpbusd forms the same exact int32 dot products as the AVX2 maddubs/madd
   sequences (their int16 sums never saturate), and every fp32 operation is unchanged: results
   are bit-identical to the AVX2 kernels, only fewer instructions per weight. */
#include "common.h"
#ifdef FC_AVX2
#pragma GCC target("avxvnni")
#define FC_VNNI 1
#define fc_avx2_gemv fc_vnni_gemv
#define fc_avx2_small fc_vnni_small
#define fc_avx2_gemm fc_vnni_gemm
#include "gemv_avx2.c"
#include "gemm_avx2.c"
#endif
