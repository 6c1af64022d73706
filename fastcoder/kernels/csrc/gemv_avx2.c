/* Decode and small-batch kernels: integer dot products of 8 interleaved weight rows, read straight
   from the packed tiles, against the int8 activations of up to NT_MAX tokens at once (one fp32
   accumulator lane per row and token). Decode (GEMV) is the NT = 1 instance; 2..SMALL_MAX tokens
   (a speculative verify, a few batched decodes) apply each loaded and unpacked weight vector to
   every token of a group, with no unpack pass (gemm_avx2.c, for larger batches). Per (row, token)
   the int32 of every block and the fp32 operations are the same whatever NT: batch-invariant.
   Layouts: scalar.c / pack.py. */
#include "common.h"
#ifdef FC_AVX2
#include "simd.h"

#define NT_MAX 4
#define AI static inline __attribute__((always_inline))

/* Per-token pointers into the quantized activations of tokens t0 .. t0 + NT. */
typedef struct { const int8_t *q[NT_MAX]; const float *d[NT_MAX]; const int16_t *s[NT_MAX]; const int32_t *si[NT_MAX]; } tok_ptrs;

AI void tokens_at(const fc_act *a, int64_t t0, const int NT, tok_ptrs *p, __m256 *acc) {
    #pragma GCC unroll 16
    for (int t = 0; t < NT; t++) {
        p->q[t] = act_q(a, t0 + t); p->d[t] = act_d(a, t0 + t);
        p->s[t] = act_s(a, t0 + t); p->si[t] = act_si(a, t0 + t);
        acc[t] = _mm256_setzero_ps();
    }
}

AI void store_tokens(float *y, int64_t t0, const int NT, int64_t rows, int64_t tile, const __m256 *acc) {
    #pragma GCC unroll 16
    for (int t = 0; t < NT; t++) STORE_TILE(y + (t0 + t) * rows, tile, rows, acc[t]);
}

AI void tile_q8_0(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y) {
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1); (void)ones;
    const uint8_t *wt = w + tile * nb * 272;
    tok_ptrs p; __m256 acc[NT_MAX];
    tokens_at(a, t0, NT, &p, acc);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 272;
        prefetch_range(blk + FC_PREFETCH, 272);
        __m256i i32[NT_MAX];
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) i32[t] = _mm256_setzero_si256();
        #pragma GCC unroll 16
        for (int c = 0; c < 8; c++) {
            const __m256i W = LOADU(blk + 16 + 32 * c), AW = _mm256_sign_epi8(W, W);
            #pragma GCC unroll 16
            for (int t = 0; t < NT; t++) {
                const __m256i X = _mm256_sign_epi8(bcast4(p.q[t] + 32 * b + 4 * c), W);
#ifdef FC_VNNI
                i32[t] = DOT4(i32[t], AW, X);
#else
                i32[t] = _mm256_add_epi32(i32[t], _mm256_madd_epi16(_mm256_maddubs_epi16(AW, X), ones));
#endif
            }
        }
        const __m256 dw = load_f16x8(blk);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32[t]), _mm256_mul_ps(dw, _mm256_broadcast_ss(p.d[t] + b)), acc[t]);
    }
    store_tokens(y, t0, NT, rows, tile, acc);
}

AI void tile_q4_0(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y) {
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0F); (void)ones;
    const uint8_t *wt = w + tile * nb * 144;
    tok_ptrs p; __m256 acc[NT_MAX];
    tokens_at(a, t0, NT, &p, acc);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 144;
        prefetch_range(blk + FC_PREFETCH, 144);
        __m256i s[NT_MAX]; /* int16: 8 products of <= 3810 */
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
        #pragma GCC unroll 16
        for (int c = 0; c < 4; c++) {
            const __m256i Q = LOADU(blk + 16 + 32 * c);
            const __m256i lo = _mm256_and_si256(Q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4);
            #pragma GCC unroll 16
            for (int t = 0; t < NT; t++)
                s[t] = ACC_DOT(ACC_DOT(s[t], lo, bcast4(p.q[t] + 32 * b + 4 * c)), hi, bcast4(p.q[t] + 32 * b + 16 + 4 * c));
        }
        const __m256 D = load_f16x8(blk);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) { /* exact int32 of (q - 8) . xq; one fp32 FMA per block */
            const __m256i i32 = _mm256_sub_epi32(TO_I32(s[t], ones), _mm256_slli_epi32(bcast4(p.si[t] + b), 3));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(D, _mm256_broadcast_ss(p.d[t] + b)), acc[t]);
        }
    }
    store_tokens(y, t0, NT, rows, tile, acc);
}

AI void tile_q5_0(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y) {
    const int64_t nb = cols / 32;
    const __m256i ones = _mm256_set1_epi16(1); (void)ones;
    const uint8_t *wt = w + tile * nb * 176;
    tok_ptrs p; __m256 acc[NT_MAX];
    tokens_at(a, t0, NT, &p, acc);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 176;
        prefetch_range(blk + FC_PREFETCH, 176);
        const __m256i H = LOADU(blk + 16);
        __m256i slo[NT_MAX], shi[NT_MAX]; /* int16: 4 products of <= 7874 each */
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm256_setzero_si256();
        #pragma GCC unroll 16
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            q5_0_unpack(LOADU(blk + 48 + 32 * c), H, c, &lo, &hi);
            #pragma GCC unroll 16
            for (int t = 0; t < NT; t++) {
                slo[t] = ACC_DOT(slo[t], lo, bcast4(p.q[t] + 32 * b + 4 * c));
                shi[t] = ACC_DOT(shi[t], hi, bcast4(p.q[t] + 32 * b + 16 + 4 * c));
            }
        }
        const __m256 D = load_f16x8(blk);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) { /* exact int32 of (q - 16) . xq; one fp32 FMA per block */
            __m256i i32 = _mm256_add_epi32(TO_I32(slo[t], ones), TO_I32(shi[t], ones));
            i32 = _mm256_sub_epi32(i32, _mm256_slli_epi32(bcast4(p.si[t] + b), 4));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(D, _mm256_broadcast_ss(p.d[t] + b)), acc[t]);
        }
    }
    store_tokens(y, t0, NT, rows, tile, acc);
}

/* Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales/mins, activations in Q8_K blocks. Each
   sub-block's nibbles are unpacked once and applied to all NT tokens (lo, then hi: fewer live
   registers than both at once). */
AI void tile_qk45(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y, const int five) {
    const int64_t nb = cols / 256, tb = five ? 1408 : 1152;
    const int qs_off = five ? 384 : 128;
#ifdef FC_VNNI
    const int I = 8; /* int32 sums: one scale multiply per sub-block */
#else
    const int I = five ? 4 : 8; /* int16 steps: 4 x 7874 or 8 x 3810 */
#endif
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const uint8_t *wt = w + tile * nb * tb;
    tok_ptrs p; __m256 acc[NT_MAX];
    tokens_at(a, t0, NT, &p, acc);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * tb, *qs = blk + qs_off;
        prefetch_range(blk + FC_PREFETCH, tb);
        __m256i sc03, sc47, m03, m47;
        k4_scales(blk, &sc03, &sc47, &m03, &m47);
        __m256i i32[NT_MAX];
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) i32[t] = _mm256_setzero_si256();
        #pragma GCC unroll 16
        for (int j = 0; j < 8; j++) { /* sub-block j: group g = j / 2, low nibbles when j even */
            const int g = j / 2, high = j & 1;
            const __m256i sp = _mm256_shuffle_epi8(g < 2 ? sc03 : sc47, k4_pair_mask(j));
            #pragma GCC unroll 16
            for (int c0 = 0; c0 < 8; c0 += I) {
                __m256i s[NT_MAX];
                #pragma GCC unroll 16
                for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
                #pragma GCC unroll 16
                for (int c = c0; c < c0 + I; c++) {
                    const __m256i Q = LOADU(qs + 256 * g + 32 * c);
                    __m256i lo, hi;
                    if (five) q5_k_unpack(Q, LOADU(blk + 128 + 32 * c), g, &lo, &hi);
                    else { lo = _mm256_and_si256(Q, m4); hi = _mm256_and_si256(_mm256_srli_epi16(Q, 4), m4); }
                    const __m256i W = high ? hi : lo;
                    #pragma GCC unroll 16
                    for (int t = 0; t < NT; t++) s[t] = ACC_DOT(s[t], W, bcast4(p.q[t] + 256 * b + 32 * j + 4 * c));
                }
                #pragma GCC unroll 16
                for (int t = 0; t < NT; t++) i32[t] = _mm256_add_epi32(i32[t], SCALE_I32(s[t], sp));
            }
        }
        const __m256 D = load_f16x8(blk), Dm = load_f16x8(blk + 16);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) {
            const __m256i corr = k4_min_dot(m03, m47, p.s[t] + 8 * b);
            const __m256 dx = _mm256_broadcast_ss(p.d[t] + b);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(D, dx), _mm256_cvtepi32_ps(i32[t]), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(Dm, dx), _mm256_cvtepi32_ps(corr), acc[t]);
        }
    }
    store_tokens(y, t0, NT, rows, tile, acc);
}

AI void tile_q4_k(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y) { tile_qk45(w, tile, rows, cols, a, t0, NT, y, 0); }
AI void tile_q5_k(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y) { tile_qk45(w, tile, rows, cols, a, t0, NT, y, 1); }

/* Q6_K: 16 sub-blocks of 16 with int8 scales; values stored unsigned (q + 32), the 32 * sum(x)
   offset is taken off per sub-block through the activation sums. */
AI void tile_q6_k(const uint8_t *w, int64_t tile, int64_t rows, int64_t cols, const fc_act *a,
                  int64_t t0, const int NT, float *y) {
    const int64_t nb = cols / 256;
    const uint8_t *wt = w + tile * nb * 1680;
    tok_ptrs p; __m256 acc[NT_MAX];
    tokens_at(a, t0, NT, &p, acc);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wt + b * 1680;
        prefetch_range(blk + FC_PREFETCH, 1680);
        __m256i i32[NT_MAX], corr[NT_MAX];
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) i32[t] = corr[t] = _mm256_setzero_si256();
        #pragma GCC unroll 16
        for (int h = 0; h < 2; h++)
            #pragma GCC unroll 16
            for (int k = 0; k < 4; k++) {
                const int pi = 4 * h + k; /* sub-blocks 2 pi (l < 16) and 2 pi + 1 */
                const __m256i Wp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 16 + 16 * pi)));
                #pragma GCC unroll 16
                for (int t = 0; t < NT; t++)
                    corr[t] = _mm256_add_epi32(corr[t], _mm256_madd_epi16(Wp, bcast4(p.s[t] + 16 * b + 2 * pi)));
                #pragma GCC unroll 16
                for (int e = 0; e < 2; e++) {
                    const __m256i sp = _mm256_shuffle_epi8(Wp, q6_dup_mask(e));
                    #pragma GCC unroll 16
                    for (int u = 0; u < 2; u++) { /* int16: 2 x 16002 */
                        const int c0 = 4 * e + 2 * u;
                        const __m256i W0 = q6_unpack(blk, h, k, c0), W1 = q6_unpack(blk, h, k, c0 + 1);
                        #pragma GCC unroll 16
                        for (int t = 0; t < NT; t++) {
                            const int8_t *xb = p.q[t] + 256 * b + 128 * h + 32 * k + 4 * c0;
                            const __m256i s = ACC_DOT(ACC_DOT(_mm256_setzero_si256(), W0, bcast4(xb)), W1, bcast4(xb + 4));
                            i32[t] = _mm256_add_epi32(i32[t], SCALE_I32(s, sp));
                        }
                    }
                }
            }
        const __m256 D = load_f16x8(blk);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; t++) {
            const __m256i i = _mm256_sub_epi32(i32[t], _mm256_slli_epi32(corr[t], 5));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(D, _mm256_broadcast_ss(p.d[t] + b)), _mm256_cvtepi32_ps(i), acc[t]);
        }
    }
    store_tokens(y, t0, NT, rows, tile, acc);
}

/* gemv_T: one token over tiles [tile0, tile1). small_T: any number of tokens, in groups of
   NT_MAX per pass over each tile (the tile stays in L1/L2 between groups). */
#define DEFINE_KERNELS(T) \
    static void gemv_##T(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols, \
                         const fc_act *a, const float *x, int64_t num_tokens, float *y) { \
        (void)x; (void)num_tokens; \
        for (int64_t tile = tile0; tile < tile1; tile++) tile_##T(w, tile, rows, cols, a, 0, 1, y); \
    } \
    static void small_##T(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows, int64_t cols, \
                          const fc_act *a, const float *x, int64_t num_tokens, float *y) { \
        (void)x; \
        for (int64_t tile = tile0; tile < tile1; tile++) \
            for (int64_t t0 = 0; t0 < num_tokens; t0 += NT_MAX) \
                switch (num_tokens - t0 < NT_MAX ? (int)(num_tokens - t0) : NT_MAX) { \
                case 4: tile_##T(w, tile, rows, cols, a, t0, 4, y); break; \
                case 3: tile_##T(w, tile, rows, cols, a, t0, 3, y); break; \
                case 2: tile_##T(w, tile, rows, cols, a, t0, 2, y); break; \
                default: tile_##T(w, tile, rows, cols, a, t0, 1, y); break; \
                } \
    }
DEFINE_KERNELS(q8_0)
DEFINE_KERNELS(q4_0)
DEFINE_KERNELS(q5_0)
DEFINE_KERNELS(q4_k)
DEFINE_KERNELS(q5_k)
DEFINE_KERNELS(q6_k)

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

fc_kernel fc_avx2_small(int ggml_type) {
    switch (ggml_type) {
    case FC_Q4_0: return small_q4_0;
    case FC_Q5_0: return small_q5_0;
    case FC_Q8_0: return small_q8_0;
    case FC_Q4_K: return small_q4_k;
    case FC_Q5_K: return small_q5_k;
    case FC_Q6_K: return small_q6_k;
    default: return 0;
    }
}
#undef NT_MAX
#undef AI
#endif
