/* Internal helpers shared by the kernel translation units. */
#ifndef FASTCODER_COMMON_H
#define FASTCODER_COMMON_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define FC_AVX2 1
#include <immintrin.h>
#endif

enum {
    FC_F32 = 0, FC_F16 = 1, FC_Q4_0 = 2, FC_Q5_0 = 6, FC_Q8_0 = 8,
    FC_Q4_K = 12, FC_Q5_K = 13, FC_Q6_K = 14,
};
#define FC_TILE 8 /* weight rows interleaved per tile */

/* Bytes of one packed tile block (8 rows x one GGUF block) and weights per block. */
typedef struct { int block_size; int tile_block_bytes; } fc_format;
int fc_format_of(int ggml_type, fc_format *fmt);

/* Activations of one call quantized to int8: per token, cols int8 values `q`, one fp32 scale
   per `qb` values, and per group of `sg` values the integer sum, as int16 `s` and int32 `si`. */
typedef struct {
    int8_t *q; float *d; int16_t *s; int32_t *si;
    int64_t cols; int qb; int sg;
} fc_act;

static inline const int8_t *act_q(const fc_act *a, int64_t t) { return a->q + t * a->cols; }
static inline const float *act_d(const fc_act *a, int64_t t) { return a->d + t * (a->cols / a->qb); }
static inline const int16_t *act_s(const fc_act *a, int64_t t) { return a->s + t * (a->cols / a->sg); }
static inline const int32_t *act_si(const fc_act *a, int64_t t) { return a->si + t * (a->cols / a->sg); }

void fc_quantize_rows(const float *x, int64_t t0, int64_t t1, fc_act *a);

static inline float fc_f16_to_f32(const uint8_t *p) {
    uint16_t h; memcpy(&h, p, 2);
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) { bits = sign; }
        else { /* subnormal: renormalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) { bits = sign | 0x7F800000u | (man << 13); }
    else { bits = sign | ((exp + 127 - 15) << 23) | (man << 13); }
    float f; memcpy(&f, &bits, 4); return f;
}

/* Kernels compute output rows [8 * tile0, min(rows, 8 * tile1)) for tokens [0, num_tokens). */
typedef void (*fc_kernel)(const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows,
                          int64_t cols, const fc_act *a, const float *x, int64_t num_tokens,
                          float *y);

/* Writes the 8 lanes of a tile to y[r0 .. r0 + 8), clipped to `rows`. */
static inline void store_tile(float *y, int64_t r0, int64_t rows, const float *v8) {
    int64_t n = rows - r0 < FC_TILE ? rows - r0 : FC_TILE;
    for (int64_t i = 0; i < n; i++) y[r0 + i] = v8[i];
}

/* Scalar path: dequantizes one packed tile block into w[8][block_size] (exact). */
void fc_dequant_tile_block(int ggml_type, const uint8_t *blk, float *w);

#ifdef FC_AVX2
fc_kernel fc_avx2_gemv(int ggml_type);
fc_kernel fc_avx2_small(int ggml_type);
fc_kernel fc_avx2_gemm(int ggml_type);
fc_kernel fc_vnni_gemv(int ggml_type); /* the same kernels built for AVX-VNNI (kernels_vnni.c) */
fc_kernel fc_vnni_small(int ggml_type);
fc_kernel fc_vnni_gemm(int ggml_type);
void fc_avx2_float_kernel(int ggml_type, const uint8_t *w, int64_t r0, int64_t r1, int64_t cols,
                          const float *x, int64_t num_tokens, int64_t rows, float *y);
#endif
/* Where a token's keys are: a contiguous or ring cache (key_positions != NULL: key j of KV
   head g at k + g * kv_head_stride + j * key_stride) or a paged one (slots). */
typedef struct {
    const uint16_t *k, *v;                        /* fp16 bits */
    int64_t kv_head_stride;
    const int64_t *key_positions; int64_t num_keys, key_stride;
    const int64_t *token_seq, *seq_slot_start, *slots; int64_t slot_stride;
    const int64_t *query_positions; int64_t window;
} fc_kv_view;

/* Attention of q [num_tokens, num_heads, D] over the keys of `kv` (fc_attention's contract);
   max_keys bounds the number of keys any token sees. */
void fc_attention_view(const float *q, int64_t num_tokens, int64_t num_heads, int64_t D,
                       int64_t num_kv_heads, const fc_kv_view *kv, int64_t max_keys,
                       float scale, float *out, int num_threads);
/* The most keys any token of a paged batch sees (its sequence's slot count; at least 1). */
int64_t fc_paged_max_keys(const int64_t *token_seq, const int64_t *seq_slot_start,
                          int64_t num_tokens);
#endif
