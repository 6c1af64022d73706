/* A stack of pre-norm decoder layers in one C call (fc_decoder_layers, qmatmul.h). Inside a
   decode step the per-op path spends ~9 ms of a 30 ms Qwen2.5-0.5B token on Python and torch
   between the kernels (~10 calls per layer, each allocating its output); here the same kernels
   run back to back on preallocated scratch. Each op is the one the per-op path calls, with the
   same arguments and thread counts, so the results are bit-identical to it. */
#include <stdlib.h>
#include "common.h"
#include "qmatmul.h"

static int64_t max_segment_rows(const fc_linear *l) {
    int64_t m = 0;
    for (int s = 0; s < l->num_segments; s++) if (l->rows[s] > m) m = l->rows[s];
    return l->num_segments > 1 ? m : 0;
}

int64_t fc_decoder_scratch_floats(const fc_decoder_layer *layers, int64_t num_layers,
                                  const fc_decoder_dims *d, int64_t num_tokens) {
    const int64_t q_size = d->num_heads * d->head_dim;
    int64_t seg = 0;          /* staging: the widest weight run of any layer's split linears */
    for (int64_t i = 0; i < num_layers; i++) {
        const fc_linear *linears[4] = {&layers[i].qkv, &layers[i].o, &layers[i].gate_up,
                                       &layers[i].down};
        for (int j = 0; j < 4; j++) if (max_segment_rows(linears[j]) > seg) seg = max_segment_rows(linears[j]);
    }
    /* h, qkv, q, attention out, projection out, gate_up, activation, segment staging */
    const int64_t per_token = d->hidden + layers[0].qkv.out_features + 2 * q_size + d->hidden +
                              3 * d->ffn + seg;
    return per_token * num_tokens;
}

/* y [num_tokens, out_features] = x @ W^T + bias, as QuantLinear.forward computes it. */
static void linear(const fc_linear *l, const float *x, int64_t num_tokens, float *y, float *staging,
                   int num_threads) {
    if (l->num_segments == 1) {
        fc_matmul(l->ggml_type[0], l->w[0], l->rows[0], l->cols, x, num_tokens, y, num_threads);
    } else {
        int64_t offset = 0;
        for (int s = 0; s < l->num_segments; s++) {
            const int64_t rows = l->rows[s];
            /* one token: straight into its slice of y; more: [num_tokens, rows], then spread */
            float *out = num_tokens == 1 ? y + offset : staging;
            fc_matmul(l->ggml_type[s], l->w[s], rows, l->cols, x, num_tokens, out, num_threads);
            if (num_tokens > 1)
                for (int64_t t = 0; t < num_tokens; t++)
                    memcpy(y + t * l->out_features + offset, staging + t * rows, sizeof(float) * (size_t)rows);
            offset += rows;
        }
    }
    if (l->bias)
        for (int64_t t = 0; t < num_tokens; t++)
            for (int64_t r = 0; r < l->out_features; r++) y[t * l->out_features + r] += l->bias[r];
}

static void add_into(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void fc_decoder_layers(const fc_decoder_dims *d, const fc_decoder_layer *layers,
                       int64_t num_layers, const fc_decoder_step *step, float *x,
                       int64_t num_tokens, float *scratch, int matmul_threads,
                       int attention_threads) {
    if (num_tokens < 1 || num_layers < 1) return;
    const int64_t T = num_tokens, hidden = d->hidden, q_size = d->num_heads * d->head_dim;
    float *h = scratch, *qkv = h + T * hidden, *q = qkv + T * layers[0].qkv.out_features;
    float *attn = q + T * q_size, *proj = attn + T * q_size, *gate_up = proj + T * hidden;
    float *act = gate_up + T * 2 * d->ffn, *staging = act + T * d->ffn;
    const int64_t max_keys = step->key_positions ? step->num_keys
                             : fc_paged_max_keys(step->token_seq, step->seq_slot_start, T);
    for (int64_t i = 0; i < num_layers; i++) {
        const fc_decoder_layer *L = layers + i;
        uint16_t *k = step->k + L->cache_index * step->layer_stride;
        uint16_t *v = step->v + L->cache_index * step->layer_stride;
        fc_rms_norm(x, L->attn_norm, T, hidden, d->eps, h, attention_threads);
        linear(&L->qkv, h, T, qkv, staging, matmul_threads);
        fc_rope_store(qkv, T, L->qkv.out_features, d->num_heads, d->num_kv_heads, d->head_dim,
                      step->cos, step->sin, d->interleaved, q, k, v, step->store_slots,
                      step->slot_stride, step->head_stride);
        const fc_kv_view kv = {.k = k, .v = v, .kv_head_stride = step->kv_head_stride,
                               .key_positions = step->key_positions, .num_keys = step->num_keys,
                               .key_stride = step->key_stride, .token_seq = step->token_seq,
                               .seq_slot_start = step->seq_slot_start, .slots = step->slots,
                               .slot_stride = d->num_kv_heads * d->head_dim,
                               .query_positions = step->query_positions, .window = step->window};
        fc_attention_view(q, T, d->num_heads, d->head_dim, d->num_kv_heads, &kv, max_keys,
                          d->scale, attn, attention_threads);
        linear(&L->o, attn, T, proj, staging, matmul_threads);
        add_into(x, proj, T * hidden);
        fc_rms_norm(x, L->ffn_norm, T, hidden, d->eps, h, attention_threads);
        linear(&L->gate_up, h, T, gate_up, staging, matmul_threads);
        fc_silu_mul(gate_up, T, d->ffn, act);
        linear(&L->down, act, T, proj, staging, matmul_threads);
        add_into(x, proj, T * hidden);
    }
}
