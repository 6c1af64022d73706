/* Prefill kernels (many tokens, compute-bound). Each 8-row tile is unpacked once per block of
   tokens into unsigned 4-weight steps plus integer scales/offsets and fp32 block scales, then a
   register-blocked kernel runs maddubs (vpdpbusd with AVX-VNNI) over 4 tokens per weight load.
   Q8_0, with nothing to unpack, always runs the tile kernels of gemv_avx2.c.

   Batch invariance: per (row, token) these kernels perform exactly the same integer dot products
   and the same fp32 operations, in the same order, as the decode kernels of gemv_avx2.c (one
   exact int32 per GGUF block, integer sub-block scales and offsets included, then the same one or
   two fp32 FMAs per block into one accumulator lane). So a token's result does not depend on
   num_tokens, on the other tokens of the batch or on the thread count. Keep the two in step. */
#include <stdlib.h>
#include "common.h"
#ifdef FC_AVX2
#include "simd.h"

#define NT_MAX 4

enum { K_Q4_0, K_Q5_0, K_K45, K_Q6K }; /* how a block's offset term is formed */

typedef struct {
    uint8_t *q;    /* [cols / 4][32]: step s = 8 rows x columns 4s .. 4s + 3, unsigned */
    __m256i *sc;   /* [cols / G]: int16 scale pairs per row for madd (K-quants) */
    __m256i *mc;   /* [nb][NC]: integer offset coefficients per block (K-quants) */
    float *D, *Dm; /* [nb][8]: fp32 block scale d (and dmin) per row */
} unpacked;

static void unpack_q4_0(const uint8_t *wt, int64_t nb, unpacked *u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 144;
        _mm256_storeu_ps(u->D + 8 * b, load_f16x8(blk));
        #pragma GCC unroll 16
        for (int c = 0; c < 4; c++) {
            const __m256i Q = LOADU(blk + 16 + 32 * c);
            _mm256_storeu_si256((__m256i *)(u->q + 32 * (8 * b + c)), _mm256_and_si256(Q, m4));
            _mm256_storeu_si256((__m256i *)(u->q + 32 * (8 * b + 4 + c)), _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4));
        }
    }
}

static void unpack_q5_0(const uint8_t *wt, int64_t nb, unpacked *u) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 176;
        _mm256_storeu_ps(u->D + 8 * b, load_f16x8(blk));
        const __m256i H = LOADU(blk + 16);
        #pragma GCC unroll 16
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            q5_0_unpack(LOADU(blk + 48 + 32 * c), H, c, &lo, &hi);
            _mm256_storeu_si256((__m256i *)(u->q + 32 * (8 * b + c)), lo);
            _mm256_storeu_si256((__m256i *)(u->q + 32 * (8 * b + 4 + c)), hi);
        }
    }
}

static inline void unpack_qk45(const uint8_t *wt, int64_t nb, unpacked *u, const int five) {
    const int64_t tb = five ? 1408 : 1152;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * tb, *qs = blk + (five ? 384 : 128);
        _mm256_storeu_ps(u->D + 8 * b, load_f16x8(blk));
        _mm256_storeu_ps(u->Dm + 8 * b, load_f16x8(blk + 16));
        __m256i sc03, sc47, m03, m47;
        k4_scales(blk, &sc03, &sc47, &m03, &m47);
        #pragma GCC unroll 16
        for (int j = 0; j < 8; j++)
            _mm256_storeu_si256(u->sc + 8 * b + j, _mm256_shuffle_epi8(j < 4 ? sc03 : sc47, k4_pair_mask(j)));
        _mm256_storeu_si256(u->mc + 2 * b, m03);
        _mm256_storeu_si256(u->mc + 2 * b + 1, m47);
        #pragma GCC unroll 16
        for (int g = 0; g < 4; g++)
            #pragma GCC unroll 16
            for (int c = 0; c < 8; c++) {
                const __m256i Q = LOADU(qs + 256 * g + 32 * c);
                __m256i lo, hi;
                if (five) q5_k_unpack(Q, LOADU(blk + 128 + 32 * c), g, &lo, &hi);
                else { lo = _mm256_and_si256(Q, m4); hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4); }
                _mm256_storeu_si256((__m256i *)(u->q + 32 * (64 * b + 16 * g + c)), lo);
                _mm256_storeu_si256((__m256i *)(u->q + 32 * (64 * b + 16 * g + 8 + c)), hi);
            }
    }
}
static void unpack_q4_k(const uint8_t *wt, int64_t nb, unpacked *u) { unpack_qk45(wt, nb, u, 0); }
static void unpack_q5_k(const uint8_t *wt, int64_t nb, unpacked *u) { unpack_qk45(wt, nb, u, 1); }

static void unpack_q6_k(const uint8_t *wt, int64_t nb, unpacked *u) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 1680;
        _mm256_storeu_ps(u->D + 8 * b, load_f16x8(blk));
        #pragma GCC unroll 16
        for (int p = 0; p < 8; p++) {
            const __m256i Wp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 16 + 16 * p)));
            _mm256_storeu_si256(u->mc + 8 * b + p, Wp);
            _mm256_storeu_si256(u->sc + 16 * b + 2 * p, _mm256_shuffle_epi8(Wp, q6_dup_mask(0)));
            _mm256_storeu_si256(u->sc + 16 * b + 2 * p + 1, _mm256_shuffle_epi8(Wp, q6_dup_mask(1)));
        }
        #pragma GCC unroll 16
        for (int h = 0; h < 2; h++)
            #pragma GCC unroll 16
            for (int k = 0; k < 4; k++)
                #pragma GCC unroll 16
                for (int c = 0; c < 8; c++)
                    _mm256_storeu_si256((__m256i *)(u->q + 32 * (64 * b + 32 * h + 8 * k + c)), q6_unpack(blk, h, k, c));
    }
}

/* 8 rows x NT tokens over all blocks of BS columns (groups of G columns with one integer scale
   each); int16 sums hold `I` steps (no overflow: I * 2 * max_q * 127 <= 32767). The block's
   int32 and its fp32 update are those of the matching gemv kernel. Writes y[t0 + t][8 * tile ...]. */
static inline __attribute__((always_inline)) void unpacked_dot(
        const unpacked *u, int64_t cols, const int KIND, const int BS, const int G, const int I,
        const fc_act *a, int64_t t0, const int NT, float *y, int64_t rows, int64_t tile) {
    const __m256i ones = _mm256_set1_epi16(1);
    const int steps = G / 4, gpb = BS / G;
    __m256 acc[NT_MAX];
    const int8_t *xq[NT_MAX]; const float *xd[NT_MAX]; const int16_t *xs[NT_MAX]; const int32_t *xsi[NT_MAX];
    #pragma GCC unroll 16
    for (int t = 0; t < NT; t++) {
        acc[t] = _mm256_setzero_ps();
        xq[t] = act_q(a, t0 + t); xd[t] = act_d(a, t0 + t); xs[t] = act_s(a, t0 + t); xsi[t] = act_si(a, t0 + t);
    }
    for (int64_t b = 0; b < cols / BS; b++) {
        __m256i i32[NT_MAX];
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) i32[t] = _mm256_setzero_si256();
        for (int j = 0; j < gpb; j++) {
            const int64_t g = b * gpb + j;
            const __m256i SC = KIND <= K_Q5_0 ? ones : _mm256_loadu_si256(u->sc + g);
#ifdef FC_VNNI
            /* int32 sums of the whole group (no int16 stage), scaled once per group */
            __m256i sub[NT_MAX];
            #pragma GCC unroll 16
            for (int t = 0; t < NT; t++) sub[t] = KIND <= K_Q5_0 ? i32[t] : _mm256_setzero_si256();
            #pragma GCC unroll 16
            for (int v = 0; v < steps; v++) {
                const __m256i W = _mm256_load_si256((const __m256i *)(u->q + 32 * (g * steps + v)));
                #pragma GCC unroll 16
                for (int t = 0; t < NT; t++) sub[t] = DOT4(sub[t], W, bcast4(xq[t] + g * G + 4 * v));
            }
            #pragma GCC unroll 16
            for (int t = 0; t < NT; t++)
                i32[t] = KIND <= K_Q5_0 ? sub[t] : _mm256_add_epi32(i32[t], SCALE_I32(sub[t], SC));
            (void)I;
#else
            for (int v0 = 0; v0 < steps; v0 += I) {
                __m256i s16[NT_MAX];
                #pragma GCC unroll 16
                for (int t = 0; t < NT; t++) s16[t] = _mm256_setzero_si256();
                #pragma GCC unroll 16
                for (int v = v0; v < v0 + I; v++) {
                    const __m256i W = _mm256_load_si256((const __m256i *)(u->q + 32 * (g * steps + v)));
                    #pragma GCC unroll 16
                    for (int t = 0; t < NT; t++)
                        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(W, bcast4(xq[t] + g * G + 4 * v)));
                }
                #pragma GCC unroll 16
                for (int t = 0; t < NT; t++) i32[t] = _mm256_add_epi32(i32[t], _mm256_madd_epi16(s16[t], SC));
            }
#endif
        }
        const __m256 D = _mm256_loadu_ps(u->D + 8 * b);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) {
            const __m256 dx = _mm256_broadcast_ss(xd[t] + b);
            if (KIND <= K_Q5_0) { /* gemv_q4_0 / gemv_q5_0: offset 8 or 16 times sum(xq) */
                const int sh = KIND == K_Q5_0 ? 4 : 3;
                const __m256i i = _mm256_sub_epi32(i32[t], _mm256_slli_epi32(bcast4(xsi[t] + b), sh));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(D, dx), acc[t]);
            } else if (KIND == K_K45) { /* gemv_qk45 */
                const __m256i corr = k4_min_dot(_mm256_loadu_si256(u->mc + 2 * b), _mm256_loadu_si256(u->mc + 2 * b + 1), xs[t] + 8 * b);
                const __m256 dm = _mm256_mul_ps(_mm256_loadu_ps(u->Dm + 8 * b), dx);
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(D, dx), _mm256_cvtepi32_ps(i32[t]), acc[t]);
                acc[t] = _mm256_fnmadd_ps(dm, _mm256_cvtepi32_ps(corr), acc[t]);
            } else { /* gemv_q6_k */
                __m256i corr = _mm256_setzero_si256();
                #pragma GCC unroll 16
                for (int p = 0; p < 8; p++)
                    corr = _mm256_add_epi32(corr, _mm256_madd_epi16(_mm256_loadu_si256(u->mc + 8 * b + p), bcast4(xs[t] + 16 * b + 2 * p)));
                const __m256i i = _mm256_sub_epi32(i32[t], _mm256_slli_epi32(corr, 5));
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(D, dx), _mm256_cvtepi32_ps(i), acc[t]);
            }
        }
    }
    #pragma GCC unroll 16
    for (int t = 0; t < NT; t++) STORE_TILE(y + (t0 + t) * rows, tile, rows, acc[t]);
}

#define DEFINE_DOT(name, KIND, BS, G, I) \
    static void name(const unpacked *u, int64_t cols, const fc_act *a, int64_t t0, int nt, \
                     float *y, int64_t rows, int64_t tile) { \
        switch (nt) { \
        case 4: unpacked_dot(u, cols, KIND, BS, G, I, a, t0, 4, y, rows, tile); break; \
        case 3: unpacked_dot(u, cols, KIND, BS, G, I, a, t0, 3, y, rows, tile); break; \
        case 2: unpacked_dot(u, cols, KIND, BS, G, I, a, t0, 2, y, rows, tile); break; \
        default: unpacked_dot(u, cols, KIND, BS, G, I, a, t0, 1, y, rows, tile); break; \
        } \
    }
DEFINE_DOT(dot_q4_0, K_Q4_0, 32, 32, 8) /* 4-bit: 8 x 2 x 15 x 127 = 30480 */
DEFINE_DOT(dot_q5_0, K_Q5_0, 32, 32, 4) /* 5-bit: 4 x 2 x 31 x 127 = 31496 */
DEFINE_DOT(dot_q4_k, K_K45, 256, 32, 8)
DEFINE_DOT(dot_q5_k, K_K45, 256, 32, 4)
DEFINE_DOT(dot_q6_k, K_Q6K, 256, 16, 2) /* 6-bit: 2 x 2 x 63 x 127 = 32004 */

typedef void (*unpack_fn)(const uint8_t *, int64_t, unpacked *);
typedef void (*dot_fn)(const unpacked *, int64_t, const fc_act *, int64_t, int, float *, int64_t, int64_t);

/* Tokens per pass over the tiles: keeps that many activation rows in L2. */
static int64_t token_block(int64_t cols, int64_t num_tokens) {
    int64_t tb = ((256 * 1024) / cols) & ~(int64_t)3;
    if (tb < 8) tb = 8;
    return tb < num_tokens ? tb : num_tokens;
}

static void *alloc64(size_t n) { return aligned_alloc(64, (n + 63) & ~(size_t)63); }

static void gemm_unpacked(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols,
                          const fc_act *a, int64_t num_tokens, float *y, int block_size,
                          int tile_block_bytes, unpack_fn unpack, dot_fn dot) {
    const int64_t nb = cols / block_size, tb = token_block(cols, num_tokens);
    unpacked u;
    u.q = alloc64((size_t)cols * 8);
    u.sc = alloc64((size_t)(cols / 16) * 32); /* groups of >= 16 columns */
    u.mc = alloc64((size_t)nb * 8 * 32);      /* <= 8 vectors per block */
    u.D = alloc64((size_t)nb * 32);
    u.Dm = alloc64((size_t)nb * 32);
    for (int64_t tk = 0; tk < num_tokens; tk += tb) {
        const int64_t tk1 = tk + tb < num_tokens ? tk + tb : num_tokens;
        for (int64_t tile = tile0; tile < tile1; tile++) {
            unpack(w + tile * nb * tile_block_bytes, nb, &u);
            for (int64_t t = tk; t < tk1; t += NT_MAX) {
                const int nt = tk1 - t < NT_MAX ? (int)(tk1 - t) : NT_MAX;
                dot(&u, cols, a, t, nt, y, rows, tile);
            }
        }
    }
    free(u.q); free(u.sc); free(u.mc); free(u.D); free(u.Dm);
}

#define DEFINE_GEMM(name, bs, tbb, unpack, dot) \
    static void name(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols, \
                     const fc_act *a, const float *x, int64_t num_tokens, float *y) { \
        (void)x; \
        gemm_unpacked(w, tile0, tile1, rows, cols, a, num_tokens, y, bs, tbb, unpack, dot); \
    }
DEFINE_GEMM(gemm_q4_0, 32, 144, unpack_q4_0, dot_q4_0)
DEFINE_GEMM(gemm_q5_0, 32, 176, unpack_q5_0, dot_q5_0)
DEFINE_GEMM(gemm_q4_k, 256, 1152, unpack_q4_k, dot_q4_k)
DEFINE_GEMM(gemm_q5_k, 256, 1408, unpack_q5_k, dot_q5_k)
DEFINE_GEMM(gemm_q6_k, 256, 1680, unpack_q6_k, dot_q6_k)

fc_kernel fc_avx2_gemm(int ggml_type) {
    switch (ggml_type) {
    case FC_Q4_0: return gemm_q4_0;
    case FC_Q5_0: return gemm_q5_0;
    case FC_Q4_K: return gemm_q4_k;
    case FC_Q5_K: return gemm_q5_k;
    case FC_Q6_K: return gemm_q6_k;
    default: return 0;
    }
}
#endif
