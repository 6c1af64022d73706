/* Load-time repack of GGUF block rows into the kernels' 8-row tiles (fastcoder.kernels.pack):
   a gather whose map comes from the Python side, so the layouts keep one definition there. The
   numpy version of the same permutation took ~2.5 s of a 1.5B model's start-up. */
#include <omp.h>
#include "common.h"
#include "qmatmul.h"

void fc_pack_tiles(const uint8_t *raw, int64_t rows, int64_t row_bytes, int64_t type_size,
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
        }
    }
}
