/* Entry point: activation quantization into a per-thread scratch buffer, then one OpenMP
   region that splits the output rows (8-row tiles) into one contiguous range per thread. */
#include <stdlib.h>
#include <omp.h>
#include "common.h"
#include "qmatmul.h"

void fc_scalar_kernel(int ggml_type, const uint8_t *w, int64_t tile0, int64_t tile1, int64_t rows,
                      int64_t cols, const float *x, int64_t num_tokens, float *y);

int fc_supports(int ggml_type) {
    fc_format fmt;
    return ggml_type == FC_F32 || ggml_type == FC_F16 || fc_format_of(ggml_type, &fmt);
}

int fc_simd_level(void) {
#ifdef FC_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : -1;
#else
    return 0;
#endif
}

static void matmul_scalar(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols,
                          const float *x, int64_t num_tokens, float *y, int num_threads) {
    const int64_t num_tiles = (rows + FC_TILE - 1) / FC_TILE;
    memset(y, 0, sizeof(float) * (size_t)(rows * num_tokens));
    #pragma omp parallel num_threads(num_threads)
    {
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        fc_scalar_kernel(ggml_type, w, num_tiles * id / n, num_tiles * (id + 1) / n, rows, cols,
                         x, num_tokens, y);
    }
}

void fc_matmul_scalar(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols,
                      const float *x, int64_t num_tokens, float *y, int num_threads) {
    matmul_scalar(ggml_type, w, rows, cols, x, num_tokens, y, num_threads < 1 ? 1 : num_threads);
}

#ifdef FC_AVX2
/* AVX-VNNI kernels when the CPU has them (bit-identical to the AVX2 ones, faster); -1: not yet
   decided. FASTCODER_VNNI=0 in the environment keeps the AVX2 kernels. */
static int vnni_state = -1;

static int cpu_has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avxvnni") != 0;
}

int fc_use_vnni(int enable) {
    if (enable >= 0) vnni_state = enable && cpu_has_vnni();
    else if (vnni_state < 0) {
        const char *env = getenv("FASTCODER_VNNI");
        vnni_state = !(env && env[0] == '0') && cpu_has_vnni();
    }
    return vnni_state;
}

/* Up to this many tokens the small-batch kernels read the packed tiles directly; beyond, the
   GEMM kernels' unpack pass pays for itself (FASTCODER_SMALL_MAX overrides it, for tuning). */
static int64_t small_max = -1;

static fc_kernel pick_kernel(int ggml_type, int64_t num_tokens) {
    if (small_max < 0) { const char *e = getenv("FASTCODER_SMALL_MAX"); small_max = e ? atoi(e) : 4; }
    const int vnni = fc_use_vnni(-1);
    if (num_tokens == 1) return vnni ? fc_vnni_gemv(ggml_type) : fc_avx2_gemv(ggml_type);
    /* Q8_0 has nothing to unpack (signed bytes, read as stored): the tile kernel at any size */
    if (num_tokens <= small_max || ggml_type == FC_Q8_0)
        return vnni ? fc_vnni_small(ggml_type) : fc_avx2_small(ggml_type);
    return vnni ? fc_vnni_gemm(ggml_type) : fc_avx2_gemm(ggml_type);
}

/* Grow-only scratch for quantized activations, one per calling thread. */
static __thread void *scratch_buf;
static __thread size_t scratch_cap;

static void *scratch(size_t nbytes) {
    if (nbytes > scratch_cap) {
        free(scratch_buf);
        scratch_cap = (nbytes + 4095) & ~(size_t)4095;
        scratch_buf = aligned_alloc(64, scratch_cap);
    }
    return scratch_buf;
}

static void act_layout(int ggml_type, int64_t cols, int64_t num_tokens, fc_act *a) {
    a->cols = cols;
    a->qb = ggml_type == FC_Q4_K || ggml_type == FC_Q5_K || ggml_type == FC_Q6_K ? 256 : 32;
    a->sg = ggml_type == FC_Q6_K ? 16 : 32;
    const size_t nq = (size_t)(num_tokens * cols), nd = nq / a->qb, ns = nq / a->sg;
    const size_t oq = 0, od = (oq + nq + 63) & ~(size_t)63, os = (od + 4 * nd + 63) & ~(size_t)63,
                 ods = (os + 2 * ns + 63) & ~(size_t)63;
    char *base = scratch(ods + 4 * ns);
    a->q = (int8_t *)(base + oq); a->d = (float *)(void *)(base + od);
    a->s = (int16_t *)(void *)(base + os); a->si = (int32_t *)(void *)(base + ods);
}

#ifndef FC_STREAMS
#define FC_STREAMS 2
#endif
/* Decode: walks [tile0, tile1) as FC_STREAMS interleaved sequential streams, one tile of each in
   turn, so the hardware prefetchers track several streams per core (more bytes in flight). */
static void run_streams(fc_kernel kernel, const uint8_t *w, int64_t tile0, int64_t tile1,
                        int64_t rows, int64_t cols, const fc_act *a, const float *x, float *y) {
    const int64_t n = tile1 - tile0;
    if (FC_STREAMS <= 1 || n < 4 * FC_STREAMS) { kernel(w, tile0, tile1, rows, cols, a, x, 1, y); return; }
    int64_t start[FC_STREAMS + 1];
    for (int s = 0; s <= FC_STREAMS; s++) start[s] = tile0 + n * s / FC_STREAMS;
    for (int64_t i = 0; i < (n + FC_STREAMS - 1) / FC_STREAMS; i++)
        for (int s = 0; s < FC_STREAMS; s++)
            if (start[s] + i < start[s + 1]) kernel(w, start[s] + i, start[s] + i + 1, rows, cols, a, x, 1, y);
}

void fc_matmul(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
               int64_t num_tokens, float *y, int num_threads) {
    if (num_threads < 1) num_threads = 1;
    if (num_tokens < 1 || rows < 1) return;
    if (ggml_type == FC_F32 || ggml_type == FC_F16) {
        const int64_t num_groups = (rows + 3) / 4;
        #pragma omp parallel num_threads(num_threads) if (num_threads > 1)
        {
            const int id = omp_get_thread_num(), n = omp_get_num_threads();
            const int64_t g0 = num_groups * id / n, g1 = num_groups * (id + 1) / n;
            const int64_t r1 = 4 * g1 < rows ? 4 * g1 : rows;
            if (4 * g0 < r1) fc_avx2_float_kernel(ggml_type, w, 4 * g0, r1, cols, x, num_tokens, rows, y);
        }
        return;
    }
    fc_act a;
    act_layout(ggml_type, cols, num_tokens, &a);
    const fc_kernel kernel = pick_kernel(ggml_type, num_tokens);
    if (!kernel) return;
    const int64_t num_tiles = (rows + FC_TILE - 1) / FC_TILE;
    /* small activations: quantizing them serially is cheaper than a barrier */
    const int serial_quant = num_threads == 1 || num_tokens * cols <= 32768;
    if (serial_quant) fc_quantize_rows(x, 0, num_tokens, &a);
    if (num_threads == 1) {
        if (num_tokens == 1) run_streams(kernel, w, 0, num_tiles, rows, cols, &a, x, y);
        else kernel(w, 0, num_tiles, rows, cols, &a, x, num_tokens, y);
        return;
    }
    #pragma omp parallel num_threads(num_threads)
    {
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        if (!serial_quant) {
            fc_quantize_rows(x, num_tokens * id / n, num_tokens * (id + 1) / n, &a);
            #pragma omp barrier
        }
        const int64_t t0 = num_tiles * id / n, t1 = num_tiles * (id + 1) / n;
        if (t0 < t1 && num_tokens == 1) run_streams(kernel, w, t0, t1, rows, cols, &a, x, y);
        else if (t0 < t1) kernel(w, t0, t1, rows, cols, &a, x, num_tokens, y);
    }
}

/* Decode over selected experts: w holds experts of expert_rows rows each (expert_rows % 8 == 0,
   so expert e is tiles [e * tpe, (e + 1) * tpe)). The num_selected * tpe tiles are split evenly
   over the threads whatever expert they belong to; x has one row shared by all (x_rows == 1) or
   one row per selected expert. y: [num_selected, expert_rows]. */
void fc_matmul_experts(int ggml_type, const uint8_t *w, int64_t expert_rows, int64_t cols,
                       const float *x, int64_t x_rows, const int32_t *expert_ids,
                       int64_t num_selected, float *y, int num_threads) {
    fc_format fmt;
    if (num_selected < 1 || !fc_format_of(ggml_type, &fmt) || expert_rows % FC_TILE) return;
    if (num_threads < 1) num_threads = 1;
    fc_act a;
    act_layout(ggml_type, cols, x_rows, &a);
    fc_quantize_rows(x, 0, x_rows, &a);                  /* at most top_k rows: serial */
    const fc_kernel kernel = pick_kernel(ggml_type, 1);
    if (!kernel) return;
    const int64_t tpe = expert_rows / FC_TILE, total = num_selected * tpe;
    const int64_t expert_bytes = tpe * (cols / fmt.block_size) * fmt.tile_block_bytes;
    #pragma omp parallel num_threads(num_threads) if (num_threads > 1)
    {
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        const int64_t g0 = total * id / n, g1 = total * (id + 1) / n;
        for (int64_t g = g0; g < g1;) {
            const int64_t s = g / tpe, t0 = g - s * tpe;
            const int64_t t1 = (s + 1) * tpe < g1 ? tpe : g1 - s * tpe;
            const int64_t r = x_rows == 1 ? 0 : s;
            fc_act as = a;                                /* this expert's input row */
            as.q = a.q + r * cols; as.d = a.d + r * (cols / a.qb);
            as.s = a.s + r * (cols / a.sg); as.si = a.si + r * (cols / a.sg);
            run_streams(kernel, w + (int64_t)expert_ids[s] * expert_bytes, t0, t1, expert_rows,
                        cols, &as, x + r * cols, y + s * expert_rows);
            g += t1 - t0;
        }
    }
}
#else
int fc_use_vnni(int enable) { (void)enable; return 0; }

void fc_matmul(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
               int64_t num_tokens, float *y, int num_threads) {
    matmul_scalar(ggml_type, w, rows, cols, x, num_tokens, y, num_threads < 1 ? 1 : num_threads);
}

void fc_matmul_experts(int ggml_type, const uint8_t *w, int64_t expert_rows, int64_t cols,
                       const float *x, int64_t x_rows, const int32_t *expert_ids,
                       int64_t num_selected, float *y, int num_threads) {
    fc_format fmt;
    if (!fc_format_of(ggml_type, &fmt) || expert_rows % FC_TILE) return;
    const int64_t expert_bytes = expert_rows / FC_TILE * (cols / fmt.block_size) * fmt.tile_block_bytes;
    for (int64_t s = 0; s < num_selected; s++)
        matmul_scalar(ggml_type, w + (int64_t)expert_ids[s] * expert_bytes, expert_rows, cols,
                      x + (x_rows == 1 ? 0 : s) * cols, 1, y + s * expert_rows,
                      num_threads < 1 ? 1 : num_threads);
}
#endif

/* Releases the calling thread's OpenMP worker threads. libgomp stops spin-waiting (a futex sleep
   and wake, ~70 us, per parallel region) as soon as it manages more threads than there are CPUs,
   so a pool left behind by the thread that loaded the model makes every kernel call of the
   engine thread slow; releasing it first keeps the engine's region start at ~1 us. */
void fc_release_threads(void) { omp_pause_resource_all(omp_pause_soft); }

int64_t fc_stream_read(const uint8_t *p, int64_t nbytes, int num_threads) {
    const int64_t n = nbytes / 8;
    const uint64_t *v = (const uint64_t *)(const void *)p;
    uint64_t total = 0;
    #pragma omp parallel for num_threads(num_threads < 1 ? 1 : num_threads) schedule(static) reduction(+ : total)
    for (int64_t i = 0; i < n; i++) total += v[i];
    return (int64_t)total;
}
