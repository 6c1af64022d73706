/* AVX2 building blocks shared by the decode (gemv) and prefill (gemm) kernels. */
#ifndef FASTCODER_SIMD_H
#define FASTCODER_SIMD_H
#include "common.h"

#define LOADU(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* 4 bytes at p broadcast to all 8 int32 lanes (one vpbroadcastd: a load, no shuffle port) */
static inline __m256i bcast4(const void *p) { int32_t v; memcpy(&v, p, 4); return _mm256_set1_epi32(v); }

#ifdef FC_VNNI
/* acc + the 4 products u8 x s8 of each int32 lane (vpdpbusd): the same exact int32 that the
   AVX2 path forms with maddubs, int16 sums and madd, in one instruction. */
#define DOT4(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
/* int32 lanes of the (s, s) int16 scale pairs that the AVX2 path feeds to madd */
static inline __m256i pair_scale32(__m256i sp) { return _mm256_srai_epi32(sp, 16); }
#endif

/* The kernels' integer steps for both ISAs. ACC_DOT: s + u . x per lane, exact int32 (VNNI) or
   int16 sums whose callers bound the step count; TO_I32: those sums as int32 (madd by ones);
   SCALE_I32: sums times the (s, s) int16 scale pairs sp, as int32. */
#ifdef FC_VNNI
#define ACC_DOT(s, u, x) DOT4(s, u, x)
#define TO_I32(s, ones) (s)
#define SCALE_I32(s, sp) _mm256_mullo_epi32(s, pair_scale32(sp))
#else
#define ACC_DOT(s, u, x) _mm256_add_epi16(s, _mm256_maddubs_epi16(u, x))
#define TO_I32(s, ones) _mm256_madd_epi16(s, ones)
#define SCALE_I32(s, sp) _mm256_madd_epi16(s, sp)
#endif

/* exp(x) for x <= 0 (Cephes expf, as in avx_mathfun): ~1 ulp. Lanes below -87.3 give 0. */
static inline __m256 exp_nonpositive(__m256 x) {
    const __m256 zero_below = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, z, x);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i n = _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127));
    const __m256 pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(n, 23));
    return _mm256_and_ps(_mm256_mul_ps(y, pow2n), zero_below);
}

/* Sum of the 8 lanes, always in the same order: ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static inline __m256 load_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

#define STORE_TILE(y, tile, rows, v) do { \
        if (FC_TILE * (tile) + FC_TILE <= (rows)) _mm256_storeu_ps((y) + FC_TILE * (tile), v); \
        else { float tmp_[8]; _mm256_storeu_ps(tmp_, v); store_tile(y, FC_TILE * (tile), rows, tmp_); } \
    } while (0)

/* Software prefetch distance of the decode kernels (bytes ahead in the weight stream). */
#ifndef FC_PREFETCH
#define FC_PREFETCH 2048
#endif

/* Prefetches the cache lines of [p, p + n) (n a constant after inlining). */
static inline void prefetch_range(const uint8_t *p, int n) {
#ifndef FC_PREFETCH_HINT
#define FC_PREFETCH_HINT _MM_HINT_T0
#endif
#if FC_PREFETCH > 0
    for (int off = 0; off < n; off += 64) _mm_prefetch((const char *)p + off, FC_PREFETCH_HINT);
#else
    (void)p; (void)n;
#endif
}

/* Shifts 16-bit lanes left by n (right by -n); n is a constant after inlining. */
static inline __m256i shift16(__m256i v, int n) {
    return n > 0 ? _mm256_slli_epi16(v, n) : n < 0 ? _mm256_srli_epi16(v, -n) : v;
}

/* Q5_0 chunk c: low nibbles | 5th bit (bit c of H) and high nibbles | 5th bit (bit 4 + c). */
static inline void q5_0_unpack(__m256i Q, __m256i H, int c, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    const __m256i T = _mm256_srli_epi16(H, c);
    *lo = _mm256_or_si256(_mm256_and_si256(Q, m4), _mm256_and_si256(_mm256_slli_epi16(T, 4), m10));
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(Q, 4), m4), _mm256_and_si256(T, m10));
}

/* Q5_K group g: sub-blocks 2g / 2g + 1 take their 5th bit from bits 2g / 2g + 1 of QH. */
static inline void q5_k_unpack(__m256i Q, __m256i QH, int g, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    *lo = _mm256_or_si256(_mm256_and_si256(Q, m4), _mm256_and_si256(shift16(QH, 4 - 2 * g), m10));
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(Q, 4), m4), _mm256_and_si256(shift16(QH, 3 - 2 * g), m10));
}

/* The 12 scale bytes of 8 rows (A, B, C chunks) -> per row lane: sc[0..3], sc[4..7], m[0..3],
   m[4..7] as bytes (get_scale_min_k4 for 8 rows at once). */
static inline void k4_scales(const uint8_t *blk, __m256i *sc03, __m256i *sc47, __m256i *m03, __m256i *m47) {
    const __m256i A = LOADU(blk + 32), B = LOADU(blk + 64), C = LOADU(blk + 96);
    const __m256i m3f = _mm256_set1_epi8(0x3F), m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    *sc03 = _mm256_and_si256(A, m3f);
    *m03 = _mm256_and_si256(B, m3f);
    *sc47 = _mm256_or_si256(_mm256_and_si256(C, m0f), _mm256_and_si256(_mm256_srli_epi32(A, 2), m30));
    *m47 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(C, 4), m0f), _mm256_and_si256(_mm256_srli_epi32(B, 2), m30));
}

/* pshufb mask: int32 lane k -> int16 pair (byte j & 3, byte j & 3) of that lane, zero-extended */
static inline __m256i k4_pair_mask(int j) {
    const __m256i base = _mm256_setr_epi8(0, -128, 0, -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12, -128,
                                          0, -128, 0, -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12, -128);
    return _mm256_add_epi8(base, _mm256_set1_epi8((char)(j & 3)));
}

/* sum_j m[r, j] * bs[j] for the 8 sub-blocks; bs: int16 activation sums per 32 */
static inline __m256i k4_min_dot(__m256i m03, __m256i m47, const int16_t *bs) {
    const __m256i p01 = _mm256_setr_epi8(0, -128, 1, -128, 4, -128, 5, -128, 8, -128, 9, -128, 12, -128, 13, -128,
                                         0, -128, 1, -128, 4, -128, 5, -128, 8, -128, 9, -128, 12, -128, 13, -128);
    const __m256i p23 = _mm256_add_epi8(p01, _mm256_set1_epi8(2));
    __m256i s = _mm256_madd_epi16(_mm256_shuffle_epi8(m03, p01), bcast4(bs));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_shuffle_epi8(m03, p23), bcast4(bs + 2)));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_shuffle_epi8(m47, p01), bcast4(bs + 4)));
    return _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_shuffle_epi8(m47, p23), bcast4(bs + 6)));
}

/* pshufb mask: int16 pairs (s0, s1) -> (se, se) */
static inline __m256i q6_dup_mask(int e) {
    const __m256i base = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13,
                                          0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    return _mm256_add_epi8(base, _mm256_set1_epi8((char)(2 * e)));
}

/* Q6_K: unsigned 6-bit values (0..63) of quarter k, chunk c of half h, 8 rows x 4 weights */
static inline __m256i q6_unpack(const uint8_t *blk, int h, int k, int c) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i QL = LOADU(blk + 144 + 512 * h + 256 * (k & 1) + 32 * c);
    const __m256i QH = LOADU(blk + 1168 + 256 * h + 32 * c);
    const __m256i lo = k < 2 ? _mm256_and_si256(QL, m4) : _mm256_and_si256(_mm256_srli_epi16(QL, 4), m4);
    return _mm256_or_si256(lo, _mm256_and_si256(shift16(QH, 4 - 2 * k), m30));
}
#endif
