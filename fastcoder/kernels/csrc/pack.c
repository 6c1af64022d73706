/* Load-time repack of GGUF block rows into the kernels' 8-row tiles (fastcoder.kernels.pack):
   a gather whose map comes from the Python side, so the byte layouts keep one definition there;
   only Q5_0's bit-permuted high-bit word is built here. The numpy version of the same
   permutations took ~2.5 s of a 1.5B model's start-up (and 1.7 s for the 0.5B's Q5_0 bits). */
#include <omp.h>
#include "common.h"
#include "qmatmul.h"

/* Q5_0 tile block H (32 bytes at 16): byte 4r+i, bit c+4n = bit 16n+4c+i of row r's qh word
   (GGUF bytes 2..5 of its block), the 5th bit of weight 16n+4c+i. */
static void q5_0_high_bits(const uint8_t *src, int64_t row_bytes, int num_rows, uint8_t *dst) {
    memset(dst + 16, 0, 32);
    for (int r = 0; r < num_rows; r++) {
        uint32_t qh;
        memcpy(&qh, src + r * row_bytes + 2, 4);
        for (int i = 0; i < 4; i++) {
            uint8_t byte = 0;
            for (int n = 0; n < 2; n++)
                for (int c = 0; c < 4; c++) byte |= (uint8_t)(((qh >> (16 * n + 4 * c + i)) & 1u) << (c + 4 * n));
            dst[16 + 4 * r + i] = byte;
        }
    }
}

void fc_pack_tiles(int ggml_type, const uint8_t *raw, int64_t rows, int64_t row_bytes, int64_t type_size,
                   const int64_t *unit_offset, int64_t tile_block_bytes, uint8_t *out,
                   int num_threads) {
    const int64_t num_blocks = row_bytes / type_size, num_tiles = (rows + FC_TILE - 1) / FC_TILE;
    const int64_t num_units = tile_block_bytes / 2;
    if (num_threads < 1) num_threads = 1;
    #pragma omp parallel for num_threads(num_threads) schedule(static)
    for (int64_t t = 0; t < num_tiles; t++) {
        const uint8_t *tile = raw + t * FC_TILE * row_bytes;
        const int full = (t + 1) * FC_TILE <= rows;
        for (int64_t j = 0; j < num_blocks; j++) {
            uint8_t *dst = out + (t * num_blocks + j) * tile_block_bytes;
            const uint8_t *src = tile + j * type_size;
            for (int64_t i = 0; i < num_units; i++) {
                const int64_t s = unit_offset[i];           /* r * row_bytes + byte, or -1 */
                if (s < 0) continue;
                if (!full && t * FC_TILE + s / row_bytes >= rows) {    /* padding rows: 0 */
                    dst[2 * i] = dst[2 * i + 1] = 0;
                    continue;
                }
                memcpy(dst + 2 * i, src + s, 2);
            }
            if (ggml_type == FC_Q5_0)
                q5_0_high_bits(src, row_bytes, full ? FC_TILE : (int)(rows - t * FC_TILE), dst);
        }
    }
}
