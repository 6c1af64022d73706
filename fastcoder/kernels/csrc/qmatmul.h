/* Public C API of fastcoder's quantized matmul kernels (also the cffi cdef). */
#ifndef FASTCODER_QMATMUL_H
#define FASTCODER_QMATMUL_H
#include <stdint.h>

/* y[t, r] = sum_c W[r, c] * x[t, c] for t < num_tokens, r < rows.
   w: the weight in the packed layout of fastcoder.kernels.pack (8-row tiles for block types,
   plain row-major for F32/F16). x: [num_tokens, cols] float32; y: [num_tokens, rows] float32. */
void fc_matmul(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
               int64_t num_tokens, float *y, int num_threads);
/* y[s, r] = sum_c W[expert_ids[s] * expert_rows + r, c] * x[x_rows == 1 ? 0 : s, c] for the
   num_selected selected experts of an all-experts matrix (block types only; expert_rows % 8 == 0):
   reads only those experts' tiles, one parallel region for all of them. */
void fc_matmul_experts(int ggml_type, const uint8_t *w, int64_t expert_rows, int64_t cols,
                       const float *x, int64_t x_rows, const int32_t *expert_ids,
                       int64_t num_selected, float *y, int num_threads);
/* Same result through the portable scalar path (fp32 activations, no int8 quantization). */
void fc_matmul_scalar(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols,
                      const float *x, int64_t num_tokens, float *y, int num_threads);
/* 1 if fc_matmul's SIMD path may run on this CPU (built with AVX2 and the CPU has it),
   0 if built without SIMD (fc_matmul is then the scalar path), -1 if built with AVX2 but this
   CPU lacks AVX2/FMA/F16C (calling fc_matmul would fault). */
int fc_simd_level(void);
/* AVX-VNNI kernels (bit-identical to the AVX2 ones): enable = 1 turns them on where the CPU has
   them, 0 off, -1 only asks; returns whether they are used (default: on where supported, unless
   FASTCODER_VNNI=0). */
int fc_use_vnni(int enable);
/* 1 if ggml_type is handled by fc_matmul. */
int fc_supports(int ggml_type);
/* RMSNorm of rows x cols fp32 (contiguous) with weight w [cols], each row alone. */
void fc_rms_norm(const float *x, const float *w, int64_t rows, int64_t cols, float eps,
                 float *out, int num_threads);
/* Releases the calling thread's OpenMP worker threads (before another thread takes over the
   kernel calls: libgomp throttles spinning when it manages more threads than CPUs). */
void fc_release_threads(void);
/* Streams nbytes from p with num_threads threads; returns a checksum (read bandwidth probe). */
int64_t fc_stream_read(const uint8_t *p, int64_t nbytes, int num_threads);
/* Packs GGUF block rows raw [rows, row_bytes] into 8-row tiles out [num_tiles, num_blocks *
   tile_block_bytes]: 2-byte unit i of a tile block is the 2 bytes at unit_offset[i] (r *
   row_bytes + byte within block) from the tile's first row's block; -1: Q5_0's high-bit word,
   which is built from the rows' qh words. Rows past `rows` (the last tile's padding) read as
   zeros. */
void fc_pack_tiles(int ggml_type, const uint8_t *raw, int64_t rows, int64_t row_bytes, int64_t type_size,
                   const int64_t *unit_offset, int64_t tile_block_bytes, uint8_t *out,
                   int num_threads);
/* Causal attention, each (token, head) row on its own (batch-invariant). q: [num_tokens,
   num_heads, head_dim] contiguous fp32; k, v (fp16 bits): key j of kv head g at
   k + g * kv_head_stride + j * kv_key_stride; key_positions: [num_keys] (-1: empty slot);
   query_positions: [num_tokens]; a key is used when its position <= the query's and, with window > 0, > query - window;
   keys are summed in position order whatever their order in k.
   out: [num_tokens, num_heads * head_dim]. */
void fc_attention(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                  const uint16_t *k, const uint16_t *v, int64_t num_kv_heads, int64_t num_keys,
                  int64_t kv_head_stride, int64_t kv_key_stride, const int64_t *key_positions,
                  const int64_t *query_positions, int64_t window, float scale, float *out,
                  int num_threads);
/* The same over a paged cache, all sequences of a batch in one call: k_cache, v_cache:
   [slots, num_kv_heads, head_dim]; token t belongs to sequence token_seq[t], whose key at
   position j sits in slot slots[seq_slot_start[s] + j]. */
void fc_attention_paged(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                        const uint16_t *k_cache, const uint16_t *v_cache, int64_t num_kv_heads,
                        const int64_t *token_seq, const int64_t *seq_slot_start,
                        const int64_t *slots, const int64_t *query_positions, int64_t window,
                        float scale, float *out, int num_threads);
/* out[r, i] = silu(gate_up[r, i]) * gate_up[r, cols + i]: rows x 2 cols in, rows x cols out. */
void fc_silu_mul(const float *gate_up, int64_t rows, int64_t cols, float *out);
/* Rotary embedding of q and k plus the K/V store, from the q/k/v projection's rows qkv
   [num_tokens, row_stride] = [q (num_heads x head_dim) | k | v (num_kv_heads x head_dim each)]:
   cos, sin: [num_tokens, head_dim / 2]; interleaved: pairs (2i, 2i+1), else NEOX halves.
   q_out: [num_tokens, num_heads, head_dim] fp32; k and v of token t, kv head g go to fp16
   k_cache / v_cache + slots[t] * slot_stride + g * head_stride. head_dim <= 512. */
void fc_rope_store(const float *qkv, int64_t num_tokens, int64_t row_stride, int64_t num_heads,
                   int64_t num_kv_heads, int64_t head_dim, const float *cos, const float *sin,
                   int interleaved, float *q_out, uint16_t *k_cache, uint16_t *v_cache,
                   const int64_t *slots, int64_t slot_stride, int64_t head_stride);
/* A whole stack of pre-norm decoder layers (GQA attention with optional q/k/v biases, RoPE,
   SwiGLU FFN) in one call, for the few-token steps (decode, speculative verification, batched
   decode) whose cost is otherwise the Python between the kernels. It runs the same kernels in
   the same order as the per-op path, so results are bit-identical to it. */
#define FC_MAX_SEGMENTS 4
/* y = x [W_0; W_1; ...]^T + bias: runs of same-type rows written side by side. */
typedef struct {
    int num_segments;
    int ggml_type[FC_MAX_SEGMENTS];
    const uint8_t *w[FC_MAX_SEGMENTS];
    int64_t rows[FC_MAX_SEGMENTS];
    int64_t cols, out_features;
    const float *bias;                          /* [out_features] or NULL */
} fc_linear;
typedef struct {
    fc_linear qkv, o, gate_up, down;            /* gate_up: [gate | up], 2 * ffn rows */
    const float *attn_norm, *ffn_norm;          /* [hidden] */
    int64_t cache_index;                        /* K/V at step k/v + cache_index * layer_stride */
} fc_decoder_layer;
typedef struct {
    int64_t hidden, num_heads, num_kv_heads, head_dim, ffn;
    float eps, scale;
    int interleaved;                            /* RoPE on adjacent pairs instead of halves */
} fc_decoder_dims;
/* One forward's cache addressing: the store of the new K/V (fc_rope_store's slots and strides)
   and what attention reads, either a contiguous cache (key_positions != NULL, fc_attention's
   arguments) or a paged one (token_seq != NULL, fc_attention_paged's). */
typedef struct {
    const float *cos, *sin;                     /* [num_tokens, head_dim / 2] */
    uint16_t *k, *v;                            /* fp16 caches of every layer */
    int64_t layer_stride;
    const int64_t *store_slots;
    int64_t slot_stride, head_stride;
    int64_t kv_head_stride, key_stride, num_keys;
    const int64_t *key_positions;
    const int64_t *token_seq, *seq_slot_start, *slots;
    const int64_t *query_positions;
    int64_t window;
} fc_decoder_step;
/* x [num_tokens, hidden] (the residual stream) in place through num_layers layers. scratch:
   fc_decoder_scratch_floats(layers, num_layers, dims, num_tokens) floats. */
void fc_decoder_layers(const fc_decoder_dims *dims, const fc_decoder_layer *layers,
                       int64_t num_layers, const fc_decoder_step *step, float *x,
                       int64_t num_tokens, float *scratch, int matmul_threads,
                       int attention_threads);
int64_t fc_decoder_scratch_floats(const fc_decoder_layer *layers, int64_t num_layers,
                                  const fc_decoder_dims *dims, int64_t num_tokens);
#endif
