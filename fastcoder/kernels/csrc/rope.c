/* One call per layer between the q/k/v projection and attention: rotary embedding of q and k
   and the store of k and v into the fp16 KV cache, straight from the projection's output rows.
   Replaces ~25 small torch ops per layer (split, reshape, two rotations, two casts, two scatter
   writes), whose fixed costs inside a decode step grow 2-3x once the weight stream has evicted
   their code and data from L2.

   Rounding matches the torch ops it replaces, so results do not change: each product is rounded
   before the add or subtract (no FMA contraction in this file), and fp32 -> fp16 rounds to
   nearest even as torch's `.to(torch.float16)` does. */
#include "common.h"
#include "qmatmul.h"
#ifdef FC_AVX2
#include "simd.h"
#endif
#pragma GCC optimize("fp-contract=off")

/* fp32 -> fp16 bits, round to nearest even (IEEE; overflow to inf, NaN kept quiet). */
static uint16_t f32_to_f16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u, absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u : 0));
    if (absx >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);          /* rounds to >= 65536 */
    if (absx < 0x38800000u) {                                            /* fp16 subnormal or 0 */
        const int shift = 126 - (int)(absx >> 23);                       /* 14 .. */
        if (shift > 24) return (uint16_t)sign;
        const uint32_t man = (absx & 0x7FFFFFu) | 0x800000u;
        uint32_t h = man >> (shift), rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((absx - 0x38000000u) >> 13);                           /* rebias exponent */
    const uint32_t rem = absx & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static void store_f16(const float *src, int64_t n, uint16_t *dst) {
    int64_t i = 0;
#ifdef FC_AVX2
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) dst[i] = f32_to_f16(src[i]);
}

/* out = x rotated by angles with cos/sin c, s [D / 2]: NEOX halves (i, i + D/2) or adjacent
   pairs (2i, 2i + 1); out[first] = x1 * c - x2 * s, out[second] = x2 * c + x1 * s. */
static void rotate(const float *x, const float *c, const float *s, int64_t D, int interleaved,
                   float *out) {
    const int64_t half = D / 2;
    if (interleaved) {
        for (int64_t i = 0; i < half; i++) {
            const float x1 = x[2 * i], x2 = x[2 * i + 1];
            out[2 * i] = x1 * c[i] - x2 * s[i];
            out[2 * i + 1] = x2 * c[i] + x1 * s[i];
        }
    } else {
        for (int64_t i = 0; i < half; i++) {
            const float x1 = x[i], x2 = x[i + half];
            out[i] = x1 * c[i] - x2 * s[i];
            out[i + half] = x2 * c[i] + x1 * s[i];
        }
    }
}

void fc_rope_store(const float *qkv, int64_t num_tokens, int64_t row_stride, int64_t num_heads,
                   int64_t num_kv_heads, int64_t head_dim, const float *cos, const float *sin,
                   int interleaved, float *q_out, uint16_t *k_cache, uint16_t *v_cache,
                   const int64_t *slots, int64_t slot_stride, int64_t head_stride) {
    const int64_t half = head_dim / 2;
    float k_rot[512];                                     /* head_dim <= 512 (checked by caller) */
    for (int64_t t = 0; t < num_tokens; t++) {
        const float *row = qkv + t * row_stride, *c = cos + t * half, *s = sin + t * half;
        for (int64_t h = 0; h < num_heads; h++)
            rotate(row + h * head_dim, c, s, head_dim, interleaved, q_out + (t * num_heads + h) * head_dim);
        const float *k = row + num_heads * head_dim, *v = k + num_kv_heads * head_dim;
        for (int64_t g = 0; g < num_kv_heads; g++) {
            const int64_t dst = slots[t] * slot_stride + g * head_stride;
            rotate(k + g * head_dim, c, s, head_dim, interleaved, k_rot);
            store_f16(k_rot, head_dim, k_cache + dst);
            store_f16(v + g * head_dim, head_dim, v_cache + dst);
        }
    }
}
