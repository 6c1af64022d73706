/* Causal (optionally sliding-window) grouped-query attention over cached keys, batch-invariant:
   every (token, head) row is computed alone, over its keys in position order, with the same instructions whatever
   the number of tokens in the call. torch's bmm picks different kernels (and summation orders)
   for 1 query row and for 33 or 512, and the int8 activation quantization of the next matmul
   turns those 1e-7 differences into 0.3-0.6 logit differences: decode, speculative verification
   and prefill then disagree on near-ties. Here a token's output does not depend on its batch. */
#include <math.h>
#include <stdlib.h>
#include <omp.h>
#include "common.h"
#include "qmatmul.h"

#ifdef FC_AVX2
#include <immintrin.h>

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

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One (token, head) row over the keys it may see, given as element offsets into k and v in key
   position order. D is a compile-time constant where the caller can make it one. */
static inline void attend_row(const int D, const float *q, const float *k, const float *v,
                              const int64_t *offsets, int64_t num_keys, float scale,
                              float *scores, float *out) {
    float m = -INFINITY;
    for (int64_t j = 0; j < num_keys; j++) {
        const float *kj = k + offsets[j];
        __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(kj));
        for (int d = 8; d < D; d += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kj + d), acc);
        const float s = hsum(acc) * scale;
        scores[j] = s;
        if (s > m) m = s;
    }
    const int64_t padded = (num_keys + 7) & ~(int64_t)7;
    for (int64_t j = num_keys; j < padded; j++) scores[j] = -INFINITY;
    const __m256 vm = _mm256_set1_ps(m);
    for (int64_t j = 0; j < padded; j += 8)     /* elementwise: lane placement does not matter */
        _mm256_storeu_ps(scores + j, exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vm)));
    float sum = 0.0f;
    __m256 acc[D / 8];
    for (int d = 0; d < D / 8; d++) acc[d] = _mm256_setzero_ps();
    for (int64_t j = 0; j < num_keys; j++) {     /* in key order, skipping exact zeros */
        const float pj = scores[j];
        if (pj == 0.0f) continue;
        sum += pj;
        const __m256 vp = _mm256_set1_ps(pj);
        const float *vj = v + offsets[j];
        for (int d = 0; d < D / 8; d++) acc[d] = _mm256_fmadd_ps(vp, _mm256_loadu_ps(vj + 8 * d), acc[d]);
    }
    const __m256 inv = _mm256_set1_ps(sum > 0.0f ? 1.0f / sum : 0.0f);
    for (int d = 0; d < D / 8; d++) _mm256_storeu_ps(out + 8 * d, _mm256_mul_ps(acc[d], inv));
}
#endif

/* Portable row: the same order of operations in scalar code (libm expf). */
static void attend_row_scalar(int64_t D, const float *q, const float *k, const float *v,
                              const int64_t *offsets, int64_t num_keys, float scale,
                              float *scores, float *out) {
    float m = -INFINITY;
    for (int64_t j = 0; j < num_keys; j++) {
        float s = 0.0f;
        for (int64_t d = 0; d < D; d++) s += q[d] * k[offsets[j] + d];
        scores[j] = s * scale;
        if (scores[j] > m) m = scores[j];
    }
    float sum = 0.0f;
    for (int64_t d = 0; d < D; d++) out[d] = 0.0f;
    for (int64_t j = 0; j < num_keys; j++) {
        const float pj = expf(scores[j] - m);
        sum += pj;
        for (int64_t d = 0; d < D; d++) out[d] += pj * v[offsets[j] + d];
    }
    for (int64_t d = 0; d < D; d++) out[d] = sum > 0.0f ? out[d] / sum : 0.0f;
}

static void attend(int64_t D, const float *q, const float *k, const float *v,
                   const int64_t *offsets, int64_t num_keys, float scale, float *scores,
                   float *out) {
#ifdef FC_AVX2
    switch (D) {   /* constant D: the accumulators stay in registers */
    case 16: attend_row(16, q, k, v, offsets, num_keys, scale, scores, out); return;
    case 32: attend_row(32, q, k, v, offsets, num_keys, scale, scores, out); return;
    case 64: attend_row(64, q, k, v, offsets, num_keys, scale, scores, out); return;
    case 128: attend_row(128, q, k, v, offsets, num_keys, scale, scores, out); return;
    case 256: attend_row(256, q, k, v, offsets, num_keys, scale, scores, out); return;
    default: break;
    }
#endif
    attend_row_scalar(D, q, k, v, offsets, num_keys, scale, scores, out);
}

static inline int visible(int64_t key_pos, int64_t query_pos, int64_t window) {
    return key_pos >= 0 && key_pos <= query_pos && (!window || key_pos > query_pos - window);
}

typedef struct { int64_t position, offset; } fc_key;

static int by_position(const void *a, const void *b) {
    const int64_t x = ((const fc_key *)a)->position, y = ((const fc_key *)b)->position;
    return (x > y) - (x < y);
}

/* The keys token t sees, ordered by position (the order the paged kernel uses too, so every
   cache layout sums in the same order): a ring lists them as one rotation of ascending order. */
static int64_t visible_keys(const int64_t *key_positions, int64_t num_keys, int64_t key_stride,
                            int64_t query_pos, int64_t window, fc_key *keys, int64_t *offsets) {
    int64_t num_visible = 0, descents = 0, cut = 0;
    for (int64_t j = 0; j < num_keys; j++) {
        if (!visible(key_positions[j], query_pos, window)) continue;
        keys[num_visible].position = key_positions[j];
        keys[num_visible].offset = j * key_stride;
        if (num_visible && key_positions[j] < keys[num_visible - 1].position) { descents++; cut = num_visible; }
        num_visible++;
    }
    if (descents == 1 && keys[num_visible - 1].position < keys[0].position) {
        for (int64_t i = 0; i < num_visible; i++) offsets[i] = keys[(cut + i) % num_visible].offset;
        return num_visible;
    }
    if (descents) qsort(keys, (size_t)num_visible, sizeof(fc_key), by_position);
    for (int64_t i = 0; i < num_visible; i++) offsets[i] = keys[i].offset;
    return num_visible;
}

void fc_attention(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                  const float *k, const float *v, int64_t num_kv_heads, int64_t num_keys,
                  int64_t kv_head_stride, int64_t kv_key_stride, const int64_t *key_positions,
                  const int64_t *query_positions, int64_t window, float scale, float *out,
                  int num_threads) {
    if (num_tokens < 1 || num_keys < 1) return;
    const int64_t group = num_heads / num_kv_heads, num_rows = num_tokens * num_heads;
    if (num_threads < 1) num_threads = 1;
    if (num_threads > num_rows) num_threads = (int)num_rows;
    #pragma omp parallel num_threads(num_threads) if (num_threads > 1)
    {
        float *scores = malloc(sizeof(float) * (size_t)((num_keys + 7) & ~(int64_t)7));
        int64_t *offsets = malloc(sizeof(int64_t) * (size_t)num_keys);
        fc_key *keys = malloc(sizeof(fc_key) * (size_t)num_keys);
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t offsets_token = -1, num_visible = 0;
        for (int64_t r = num_rows * id / n; r < num_rows * (id + 1) / n; r++) {
            const int64_t t = r / num_heads, h = r % num_heads;
            if (t != offsets_token) {
                num_visible = visible_keys(key_positions, num_keys, kv_key_stride,
                                           query_positions[t], window, keys, offsets);
                offsets_token = t;
            }
            const int64_t kv = (h / group) * kv_head_stride;
            attend(head_dim, q + r * head_dim, k + kv, v + kv, offsets, num_visible, scale,
                   scores, out + r * head_dim);
        }
        free(keys);
        free(offsets);
        free(scores);
    }
}

void fc_attention_paged(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                        const float *k_cache, const float *v_cache, int64_t num_kv_heads,
                        const int64_t *token_seq, const int64_t *seq_slot_start,
                        const int64_t *slots, const int64_t *query_positions, int64_t window,
                        float scale, float *out, int num_threads) {
    if (num_tokens < 1) return;
    const int64_t group = num_heads / num_kv_heads, num_rows = num_tokens * num_heads;
    const int64_t slot_stride = num_kv_heads * head_dim;
    int64_t max_keys = 1;
    for (int64_t t = 0; t < num_tokens; t++) {
        const int64_t s = token_seq[t], n = seq_slot_start[s + 1] - seq_slot_start[s];
        if (n > max_keys) max_keys = n;
    }
    if (num_threads < 1) num_threads = 1;
    if (num_threads > num_rows) num_threads = (int)num_rows;
    #pragma omp parallel num_threads(num_threads) if (num_threads > 1)
    {
        float *scores = malloc(sizeof(float) * (size_t)((max_keys + 7) & ~(int64_t)7));
        int64_t *offsets = malloc(sizeof(int64_t) * (size_t)max_keys);
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t offsets_token = -1, num_visible = 0;
        for (int64_t r = num_rows * id / n; r < num_rows * (id + 1) / n; r++) {
            const int64_t t = r / num_heads, h = r % num_heads;
            if (t != offsets_token) {             /* key j of a sequence is at position j */
                const int64_t *seq_slots = slots + seq_slot_start[token_seq[t]];
                const int64_t qp = query_positions[t];
                const int64_t first = window && qp - window + 1 > 0 ? qp - window + 1 : 0;
                num_visible = 0;
                for (int64_t j = first; j <= qp; j++) offsets[num_visible++] = seq_slots[j] * slot_stride;
                offsets_token = t;
            }
            const int64_t kv = (h / group) * head_dim;
            attend(head_dim, q + r * head_dim, k_cache + kv, v_cache + kv, offsets, num_visible,
                   scale, scores, out + r * head_dim);
        }
        free(offsets);
        free(scores);
    }
}
