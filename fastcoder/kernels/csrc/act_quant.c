/* Activation quantization: fp32 rows -> int8 blocks with fp32 scales and group sums. */
#include "common.h"

#ifdef FC_AVX2
/* round(x[0..32) * mul) to int8, in order */
static inline __m256i quant32(const float *x, __m256 mul) {
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), mul));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), mul));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), mul));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), mul));
    i0 = _mm256_packs_epi32(i0, i1); /* pack works per 128-bit lane: fix the order after */
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    return _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float amax_f32(const float *x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* sums of bytes [0, 16) and [16, 32) of q */
static inline void sums16(__m256i q, int *s0, int *s1) {
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
    s = _mm256_hadd_epi32(s, s);
    s = _mm256_hadd_epi32(s, s);
    *s0 = _mm256_extract_epi32(s, 0);
    *s1 = _mm256_extract_epi32(s, 4);
}

void fc_quantize_rows(const float *x, int64_t t0, int64_t t1, fc_act *a) {
    const int64_t cols = a->cols;
    for (int64_t t = t0; t < t1; t++) {
        const float *xr = x + t * cols;
        int8_t *q = a->q + t * cols;
        float *d = a->d + t * (cols / a->qb);
        int16_t *s = a->s + t * (cols / a->sg);
        int32_t *si = a->si + t * (cols / a->sg);
        for (int64_t b = 0; b < cols / a->qb; b++) {
            const float amax = amax_f32(xr + b * a->qb, a->qb);
            const float db = amax / 127.0f;
            const __m256 mul = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
            d[b] = db;
            for (int j = 0; j < a->qb; j += 32) {
                const int64_t c = b * a->qb + j;
                const __m256i v = quant32(xr + c, mul);
                _mm256_storeu_si256((__m256i *)(q + c), v);
                int s0, s1;
                sums16(v, &s0, &s1);
                if (a->sg == 16) {
                    s[c / 16] = (int16_t)s0; s[c / 16 + 1] = (int16_t)s1;
                    si[c / 16] = s0; si[c / 16 + 1] = s1;
                } else {
                    s[c / 32] = (int16_t)(s0 + s1);
                    si[c / 32] = s0 + s1;
                }
            }
        }
    }
}
#endif
