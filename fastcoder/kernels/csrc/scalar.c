/* Portable path: exact dequantization of packed tile blocks and an fp32 matmul over them.
   The packed layouts are defined here and in fastcoder/kernels/pack.py (same spec). */
#include <stdlib.h>
#include "common.h"

int fc_format_of(int ggml_type, fc_format *fmt) {
    switch (ggml_type) {
    case FC_Q4_0: *fmt = (fc_format){32, 8 * 18}; return 1;
    case FC_Q5_0: *fmt = (fc_format){32, 8 * 22}; return 1;
    case FC_Q8_0: *fmt = (fc_format){32, 8 * 34}; return 1;
    case FC_Q4_K: *fmt = (fc_format){256, 8 * 144}; return 1;
    case FC_Q5_K: *fmt = (fc_format){256, 8 * 176}; return 1;
    case FC_Q6_K: *fmt = (fc_format){256, 8 * 210}; return 1;
    default: return 0;
    }
}

/* Byte i of the 4-byte group of row r in the 32-byte chunk at `chunk`. */
#define G4(chunk, r, i) ((chunk)[4 * (r) + (i)])

static void scale_min_k4(const uint8_t *blk, int r, int j, uint8_t *sc, uint8_t *mn) {
    const uint8_t *A = blk + 32 + 4 * r, *B = blk + 64 + 4 * r, *C = blk + 96 + 4 * r;
    if (j < 4) { *sc = A[j] & 63; *mn = B[j] & 63; }
    else {
        *sc = (C[j - 4] & 0x0F) | ((A[j - 4] >> 6) << 4);
        *mn = (C[j - 4] >> 4) | ((B[j - 4] >> 6) << 4);
    }
}

void fc_dequant_tile_block(int ggml_type, const uint8_t *blk, float *w) {
    for (int r = 0; r < FC_TILE; r++) {
        float *wr;
        float d = fc_f16_to_f32(blk + 2 * r);
        switch (ggml_type) {
        case FC_Q8_0:
            wr = w + 32 * r;
            for (int c = 0; c < 8; c++)
                for (int i = 0; i < 4; i++) wr[4 * c + i] = d * (float)(int8_t)G4(blk + 16 + 32 * c, r, i);
            break;
        case FC_Q4_0:
            wr = w + 32 * r;
            for (int c = 0; c < 4; c++)
                for (int i = 0; i < 4; i++) {
                    uint8_t q = G4(blk + 16 + 32 * c, r, i);
                    wr[4 * c + i] = d * (float)((q & 15) - 8);
                    wr[16 + 4 * c + i] = d * (float)((q >> 4) - 8);
                }
            break;
        case FC_Q5_0:
            wr = w + 32 * r;
            for (int c = 0; c < 4; c++)
                for (int i = 0; i < 4; i++) {
                    uint8_t q = G4(blk + 48 + 32 * c, r, i), h = G4(blk + 16, r, i);
                    int h0 = (h >> c) & 1, h1 = (h >> (4 + c)) & 1;
                    wr[4 * c + i] = d * (float)(((q & 15) | (h0 << 4)) - 16);
                    wr[16 + 4 * c + i] = d * (float)(((q >> 4) | (h1 << 4)) - 16);
                }
            break;
        case FC_Q4_K: case FC_Q5_K: {
            wr = w + 256 * r;
            float dmin = fc_f16_to_f32(blk + 16 + 2 * r);
            const uint8_t *qs = blk + (ggml_type == FC_Q4_K ? 128 : 384);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                scale_min_k4(blk, r, j, &sc, &mn);
                float d1 = d * sc, m1 = dmin * mn;
                int g = j / 2;
                for (int c = 0; c < 8; c++)
                    for (int i = 0; i < 4; i++) {
                        uint8_t q = G4(qs + 256 * g + 32 * c, r, i);
                        int v = (j & 1) ? q >> 4 : q & 15;
                        if (ggml_type == FC_Q5_K) v |= ((G4(blk + 128 + 32 * c, r, i) >> j) & 1) << 4;
                        wr[32 * j + 4 * c + i] = d1 * (float)v - m1;
                    }
            }
            break;
        }
        case FC_Q6_K:
            wr = w + 256 * r;
            for (int h = 0; h < 2; h++)
                for (int k = 0; k < 4; k++)
                    for (int c = 0; c < 8; c++)
                        for (int i = 0; i < 4; i++) {
                            int l = 4 * c + i, s = 8 * h + 2 * k + l / 16;
                            uint8_t ql = G4(blk + 144 + 512 * h + 256 * (k & 1) + 32 * c, r, i);
                            uint8_t qh = G4(blk + 1168 + 256 * h + 32 * c, r, i);
                            int v = ((k < 2 ? ql & 15 : ql >> 4) | (((qh >> (2 * k)) & 3) << 4)) - 32;
                            float sc = (float)(int8_t)blk[16 + 16 * (s / 2) + 2 * r + (s & 1)];
                            wr[128 * h + 32 * k + l] = d * sc * (float)v;
                        }
            break;
        }
    }
}

/* fp32 matmul over packed tiles or F32/F16 rows; y must be zeroed by the caller. */
void fc_scalar_kernel(int ggml_type, const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows,
                      int64_t cols, const float *x, int64_t num_tokens, float *y) {
    if (ggml_type == FC_F32 || ggml_type == FC_F16) {
        int64_t r1 = FC_TILE * tile1 < rows ? FC_TILE * tile1 : rows;
        for (int64_t r = FC_TILE * tile0; r < r1; r++)
            for (int64_t t = 0; t < num_tokens; t++) {
                double acc = 0; /* scalar path: accuracy over speed */
                for (int64_t c = 0; c < cols; c++) {
                    float wv = ggml_type == FC_F32 ? ((const float *)w)[r * cols + c]
                                                   : fc_f16_to_f32(w + 2 * (r * cols + c));
                    acc += (double)wv * x[t * cols + c];
                }
                y[t * rows + r] = (float)acc;
            }
        return;
    }
    fc_format fmt;
    if (!fc_format_of(ggml_type, &fmt)) return;
    int64_t nb = cols / fmt.block_size;
    float *wb = malloc(sizeof(float) * FC_TILE * fmt.block_size);
    for (int64_t tile = tile0; tile < tile1; tile++) {
        const uint8_t *wt = w + tile * nb * fmt.tile_block_bytes;
        for (int64_t b = 0; b < nb; b++) {
            fc_dequant_tile_block(ggml_type, wt + b * fmt.tile_block_bytes, wb);
            for (int64_t t = 0; t < num_tokens; t++) {
                const float *xb = x + t * cols + b * fmt.block_size;
                for (int r = 0; r < FC_TILE && FC_TILE * tile + r < rows; r++) {
                    float acc = 0;
                    for (int j = 0; j < fmt.block_size; j++) acc += wb[fmt.block_size * r + j] * xb[j];
                    y[t * rows + FC_TILE * tile + r] += acc;
                }
            }
        }
    }
    free(wb);
}
