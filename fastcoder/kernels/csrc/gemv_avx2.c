/* Decode kernels (one token): integer dot products of 8 interleaved weight rows against int8
   activations, one fp32 accumulator lane per row. Layouts: scalar.c / pack.py. */
#include "common.h"
#ifdef FC_AVX2
#include "simd.h"

static void gemv_q8_0(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                      const fc_act *a, const float *x, int64_t num_tokens, float *y) {
    (void)x; (void)num_tokens;
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1); (void)ones; /* unused by VNNI */
    for (int64_t tile = tile0; tile < tile1; tile++) {
        const uint8_t *wt = w + tile * nb * 272;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = wt + b * 272;
            prefetch_range(blk + FC_PREFETCH, 272);
            const int8_t *xb = a->q + 32 * b;
            __m256i i32 = _mm256_setzero_si256();
            #pragma GCC unroll 16
            for (int c = 0; c < 8; c++) {
                const __m256i W = LOADU(blk + 16 + 32 * c), X = bcast4(xb + 4 * c);
#ifdef FC_VNNI
                i32 = DOT4(i32, _mm256_sign_epi8(W, W), _mm256_sign_epi8(X, W));
#else
                const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(W, W), _mm256_sign_epi8(X, W));
                i32 = _mm256_add_epi32(i32, _mm256_madd_epi16(p, ones));
#endif
            }
            const __m256 dw = _mm256_mul_ps(load_f16x8(blk), _mm256_broadcast_ss(a->d + b));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), dw, acc);
        }
        STORE_TILE(y, tile, rows, acc);
    }
}

static void gemv_q4_0(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                      const fc_act *a, const float *x, int64_t num_tokens, float *y) {
    (void)x; (void)num_tokens;
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F); (void)ones;
    for (int64_t tile = tile0; tile < tile1; tile++) {
        const uint8_t *wt = w + tile * nb * 144;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = wt + b * 144;
            prefetch_range(blk + FC_PREFETCH, 144);
            const int8_t *xb = a->q + 32 * b;
            __m256i s = _mm256_setzero_si256(); /* int16: 8 products of <= 3810 (int32 with VNNI) */
            #pragma GCC unroll 16
            for (int c = 0; c < 4; c++) {
                const __m256i Q = LOADU(blk + 16 + 32 * c);
                const __m256i lo = _mm256_and_si256(Q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4);
#ifdef FC_VNNI
                s = DOT4(DOT4(s, lo, bcast4(xb + 4 * c)), hi, bcast4(xb + 16 + 4 * c));
#else
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo, bcast4(xb + 4 * c)));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi, bcast4(xb + 16 + 4 * c)));
#endif
            }
#ifndef FC_VNNI
            s = _mm256_madd_epi16(s, ones);
#endif
            /* exact int32 of (q - 8) . xq; one fp32 FMA per block, as gemm_q4_0 does */
            const __m256i i32 = _mm256_sub_epi32(s, _mm256_slli_epi32(bcast4(a->si + b), 3));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(load_f16x8(blk), _mm256_broadcast_ss(a->d + b)), acc);
        }
        STORE_TILE(y, tile, rows, acc);
    }
}

static void gemv_q5_0(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                      const fc_act *a, const float *x, int64_t num_tokens, float *y) {
    (void)x; (void)num_tokens;
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1); (void)ones; /* unused by VNNI */
    for (int64_t tile = tile0; tile < tile1; tile++) {
        const uint8_t *wt = w + tile * nb * 176;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = wt + b * 176;
            prefetch_range(blk + FC_PREFETCH, 176);
            const int8_t *xb = a->q + 32 * b;
            const __m256i H = LOADU(blk + 16);
            __m256i slo = _mm256_setzero_si256(), shi = _mm256_setzero_si256(); /* 4 x 7874 */
#define Q5_0_STEP(c) do { \
                __m256i lo, hi; q5_0_unpack(LOADU(blk + 48 + 32 * (c)), H, c, &lo, &hi); \
                slo = ACC_DOT(slo, lo, bcast4(xb + 4 * (c))); \
                shi = ACC_DOT(shi, hi, bcast4(xb + 16 + 4 * (c))); \
            } while (0)
#ifdef FC_VNNI
#define ACC_DOT(s, u, x) DOT4(s, u, x)
#else
#define ACC_DOT(s, u, x) _mm256_add_epi16(s, _mm256_maddubs_epi16(u, x))
#endif
            Q5_0_STEP(0); Q5_0_STEP(1); Q5_0_STEP(2); Q5_0_STEP(3);
#undef Q5_0_STEP
#undef ACC_DOT
            /* exact int32 of (q - 16) . xq; one fp32 FMA per block, as gemm_q5_0 does */
#ifdef FC_VNNI
            __m256i i32 = _mm256_add_epi32(slo, shi);
#else
            __m256i i32 = _mm256_add_epi32(_mm256_madd_epi16(slo, ones), _mm256_madd_epi16(shi, ones));
#endif
            i32 = _mm256_sub_epi32(i32, _mm256_slli_epi32(bcast4(a->si + b), 4));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(load_f16x8(blk), _mm256_broadcast_ss(a->d + b)), acc);
        }
        STORE_TILE(y, tile, rows, acc);
    }
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales/mins, activations in Q8_K blocks. */
static inline void gemv_qk45(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows,
                             int64_t cols, const fc_act *a, float *y, const int five) {
    const int64_t nb = cols / 256, tb = five ? 1408 : 1152;
    const int qs_off = five ? 384 : 128;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t tile = tile0; tile < tile1; tile++) {
        const uint8_t *wt = w + tile * nb * tb;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = wt + b * tb, *qs = blk + qs_off;
            prefetch_range(blk + FC_PREFETCH, tb);
            const int8_t *xb = a->q + 256 * b;
            __m256i sc03, sc47, m03, m47;
            k4_scales(blk, &sc03, &sc47, &m03, &m47);
            __m256i i32 = _mm256_setzero_si256();
            #pragma GCC unroll 16
            for (int g = 0; g < 4; g++) {
                const __m256i scv = g < 2 ? sc03 : sc47;
                const __m256i sp0 = _mm256_shuffle_epi8(scv, k4_pair_mask(2 * g)), sp1 = _mm256_shuffle_epi8(scv, k4_pair_mask(2 * g + 1));
#ifdef FC_VNNI
                __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(); /* int32 */
                #pragma GCC unroll 16
                for (int c = 0; c < 8; c++) {
                    const __m256i Q = LOADU(qs + 256 * g + 32 * c);
                    __m256i lo, hi;
                    if (five) q5_k_unpack(Q, LOADU(blk + 128 + 32 * c), g, &lo, &hi);
                    else { lo = _mm256_and_si256(Q, m4); hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4); }
                    s0 = DOT4(s0, lo, bcast4(xb + 64 * g + 4 * c));
                    s1 = DOT4(s1, hi, bcast4(xb + 64 * g + 32 + 4 * c));
                }
                i32 = add_scaled(add_scaled(i32, s0, sp0), s1, sp1);
#else
                if (!five) {
                    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(); /* 8 x 3810 */
                    #pragma GCC unroll 16
                    for (int c = 0; c < 8; c++) {
                        const __m256i Q = LOADU(qs + 256 * g + 32 * c);
                        const __m256i lo = _mm256_and_si256(Q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4);
                        s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(lo, bcast4(xb + 64 * g + 4 * c)));
                        s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(hi, bcast4(xb + 64 * g + 32 + 4 * c)));
                    }
                    i32 = _mm256_add_epi32(i32, _mm256_add_epi32(_mm256_madd_epi16(s0, sp0), _mm256_madd_epi16(s1, sp1)));
                } else {
                    #pragma GCC unroll 16
                    for (int half = 0; half < 2; half++) { /* 4 x 7874 per int16 sum */
                        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
                        #pragma GCC unroll 16
                        for (int c = 4 * half; c < 4 * half + 4; c++) {
                            __m256i lo, hi;
                            q5_k_unpack(LOADU(qs + 256 * g + 32 * c), LOADU(blk + 128 + 32 * c), g, &lo, &hi);
                            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(lo, bcast4(xb + 64 * g + 4 * c)));
                            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(hi, bcast4(xb + 64 * g + 32 + 4 * c)));
                        }
                        i32 = _mm256_add_epi32(i32, _mm256_add_epi32(_mm256_madd_epi16(s0, sp0), _mm256_madd_epi16(s1, sp1)));
                    }
                }
#endif
            }
            const __m256i corr = k4_min_dot(m03, m47, a->s + 8 * b);
            const __m256 dx = _mm256_broadcast_ss(a->d + b);
            const __m256 d = _mm256_mul_ps(load_f16x8(blk), dx), dm = _mm256_mul_ps(load_f16x8(blk + 16), dx);
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(i32), acc);
            acc = _mm256_fnmadd_ps(dm, _mm256_cvtepi32_ps(corr), acc);
        }
        STORE_TILE(y, tile, rows, acc);
    }
}

static void gemv_q4_k(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                      const fc_act *a, const float *x, int64_t num_tokens, float *y) {
    (void)x; (void)num_tokens;
    gemv_qk45(w, tile0, tile1, rows, cols, a, y, 0);
}

static void gemv_q5_k(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                      const fc_act *a, const float *x, int64_t num_tokens, float *y) {
    (void)x; (void)num_tokens;
    gemv_qk45(w, tile0, tile1, rows, cols, a, y, 1);
}

static void gemv_q6_k(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                      const fc_act *a, const float *x, int64_t num_tokens, float *y) {
    (void)x; (void)num_tokens;
    const int64_t nb = cols / 256;
    for (int64_t tile = tile0; tile < tile1; tile++) {
        const uint8_t *wt = w + tile * nb * 1680;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = wt + b * 1680;
            prefetch_range(blk + FC_PREFETCH, 1680);
            const int8_t *xb = a->q + 256 * b;
            const int16_t *bs = a->s + 16 * b;
            __m256i i32 = _mm256_setzero_si256(), corr = _mm256_setzero_si256();
            #pragma GCC unroll 16
            for (int h = 0; h < 2; h++)
                #pragma GCC unroll 16
                for (int k = 0; k < 4; k++) {
                    const int p = 4 * h + k; /* sub-blocks 2p (l < 16) and 2p + 1 */
                    const __m256i Wp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 16 + 16 * p)));
                    corr = _mm256_add_epi32(corr, _mm256_madd_epi16(Wp, bcast4(bs + 2 * p)));
                    #pragma GCC unroll 16
                    for (int e = 0; e < 2; e++) {
                        const __m256i sp = _mm256_shuffle_epi8(Wp, q6_dup_mask(e));
#ifdef FC_VNNI
                        __m256i sub = _mm256_setzero_si256();
                        #pragma GCC unroll 16
                        for (int c = 4 * e; c < 4 * e + 4; c++)
                            sub = DOT4(sub, q6_unpack(blk, h, k, c), bcast4(xb + 128 * h + 32 * k + 4 * c));
                        i32 = add_scaled(i32, sub, sp);
#else
                        __m256i t[2];
                        #pragma GCC unroll 16
                        for (int u = 0; u < 2; u++) { /* 2 x 16002 per int16 sum */
                            const int c0 = 4 * e + 2 * u;
                            t[u] = _mm256_add_epi16(
                                _mm256_maddubs_epi16(q6_unpack(blk, h, k, c0), bcast4(xb + 128 * h + 32 * k + 4 * c0)),
                                _mm256_maddubs_epi16(q6_unpack(blk, h, k, c0 + 1), bcast4(xb + 128 * h + 32 * k + 4 * c0 + 4)));
                        }
                        i32 = _mm256_add_epi32(i32, _mm256_add_epi32(_mm256_madd_epi16(t[0], sp), _mm256_madd_epi16(t[1], sp)));
#endif
                    }
                }
            i32 = _mm256_sub_epi32(i32, _mm256_slli_epi32(corr, 5));
            const __m256 d = _mm256_mul_ps(load_f16x8(blk), _mm256_broadcast_ss(a->d + b));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(i32), acc);
        }
        STORE_TILE(y, tile, rows, acc);
    }
}

fc_kernel fc_avx2_gemv(int ggml_type) {
    switch (ggml_type) {
    case FC_Q4_0: return gemv_q4_0;
    case FC_Q5_0: return gemv_q5_0;
    case FC_Q8_0: return gemv_q8_0;
    case FC_Q4_K: return gemv_q4_k;
    case FC_Q5_K: return gemv_q5_k;
    case FC_Q6_K: return gemv_q6_k;
    default: return 0;
    }
}
#endif
