/* F32 / F16 weights (plain row-major): fp32 FMA dot products, 4 rows at a time. */
#include "common.h"
#ifdef FC_AVX2
#include "simd.h"

static inline __m256 load_w8(const uint8_t *w, int64_t idx, int f16) {
    return f16 ? load_f16x8(w + 2 * idx) : _mm256_loadu_ps((const float *)(const void *)w + idx);
}

static inline float load_w1(const uint8_t *w, int64_t idx, int f16) {
    return f16 ? fc_f16_to_f32(w + 2 * idx) : ((const float *)(const void *)w)[idx];
}

void fc_avx2_float_kernel(int ggml_type, const uint8_t *w, int64_t r0, int64_t r1, int64_t cols,
                          const float *x, int64_t num_tokens, int64_t rows, float *y) {
    const int f16 = ggml_type == FC_F16;
    const int64_t cv = cols & ~(int64_t)7;
    for (int64_t r = r0; r < r1; r += 4) {
        int64_t rr[4]; /* rows past r1 repeat the last row; their results are dropped */
        for (int i = 0; i < 4; i++) rr[i] = (r + i < r1 ? r + i : r1 - 1) * cols;
        for (int64_t t = 0; t < num_tokens; t++) {
            const float *xt = x + t * cols;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (int64_t c = 0; c < cv; c += 8) {
                const __m256 xv = _mm256_loadu_ps(xt + c);
                acc0 = _mm256_fmadd_ps(load_w8(w, rr[0] + c, f16), xv, acc0);
                acc1 = _mm256_fmadd_ps(load_w8(w, rr[1] + c, f16), xv, acc1);
                acc2 = _mm256_fmadd_ps(load_w8(w, rr[2] + c, f16), xv, acc2);
                acc3 = _mm256_fmadd_ps(load_w8(w, rr[3] + c, f16), xv, acc3);
            }
            float s[4] = {hsum8(acc0), hsum8(acc1), hsum8(acc2), hsum8(acc3)};
            for (int i = 0; i < 4 && r + i < r1; i++) {
                for (int64_t c = cv; c < cols; c++) s[i] += load_w1(w, rr[i] + c, f16) * xt[c];
                y[t * rows + r + i] = s[i];
            }
        }
    }
}
#endif
