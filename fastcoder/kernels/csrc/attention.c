/* Causal (optionally sliding-window) grouped-query attention over cached keys, batch-invariant:
   every (token, head) row gets the same arithmetic, over its keys in position order, whatever
   the number of tokens in the call or the heads computed beside it. Heads sharing a KV head are
   computed together so that each key and value row is read once for all of them. K and V are
   fp16 (the caches' storage type), widened to fp32 in registers; all arithmetic is fp32.
   Why: torch's bmm picks different kernels (and summation orders) for 1 query row and for 33 or
   512, and the int8 activation quantization of the next matmul turns those 1e-7 differences
   into 0.3-0.6 logit differences: decode, speculative verification and prefill then disagree on
   near-ties. Here a token's output does not depend on its batch. */
#include <math.h>
#include <stdlib.h>
#include <omp.h>
#include "common.h"
#include "qmatmul.h"

#define FC_INLINE static inline __attribute__((always_inline))
#define MAX_UNIT_HEADS 4 /* query heads of one KV head computed together (each key row read once) */
#define KEY_CHUNK 1024   /* keys per partial softmax: long rows split over threads by these */
#define KEY_BLOCK 16     /* keys whose value rows stay in L1 while a unit's heads read them */

#ifdef FC_AVX2
#include "simd.h"

/* 8 fp16 K/V elements widened to fp32 (exact). */
static inline __m256 load_kv(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Scores of NH heads (q rows NH x D, contiguous) against keys j.., KB keys at a time: each
   (key, head) dot product is its own FMA chain over d, in the same order whatever NH and KB,
   so a head's scores do not depend on which heads or keys share its loop. KB x NH independent
   chains hide the FMA latency that a single chain is bound by; each key row is loaded once for
   all NH heads. */
FC_INLINE int64_t score_keys(const int D, const int NH, const int KB, const float *q,
                             const uint16_t *k, const int64_t *offsets, int64_t j, int64_t num_keys,
                             float scale, float *scores, float *m) {
    for (; j + KB <= num_keys; j += KB) {
        const uint16_t *kp[KB];
        __m256 acc[KB][NH];
        for (int b = 0; b < KB; b++) {
            kp[b] = k + offsets[j + b];
            const __m256 k0 = load_kv(kp[b]);
            for (int h = 0; h < NH; h++) acc[b][h] = _mm256_mul_ps(_mm256_loadu_ps(q + h * D), k0);
        }
        for (int d = 8; d < D; d += 8) {
            #pragma GCC unroll 8
            for (int b = 0; b < KB; b++) {
                const __m256 kd = load_kv(kp[b] + d);
                #pragma GCC unroll 4
                for (int h = 0; h < NH; h++)
                    acc[b][h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * D + d), kd, acc[b][h]);
            }
        }
        for (int b = 0; b < KB; b++)
            for (int h = 0; h < NH; h++) {
                const float s = hsum8(acc[b][h]) * scale;
                scores[h * KEY_CHUNK + j + b] = s;
                if (s > m[h]) m[h] = s;
            }
    }
    return j;
}

/* Softmax state of NH heads of one token that share a KV head, over num_keys (<= KEY_CHUNK)
   keys given as element offsets into k and v in key position order: acc (NH x D) the values
   weighted by exp(score - m), unnormalised; m the max score and l the sum of the weights per
   head. Per head the arithmetic is exactly that of the head alone: scores, max, exp, then
   values summed in key order. */
FC_INLINE void partial_heads(const int D, const int NH, const float *q, const uint16_t *k,
                             const uint16_t *v, const int64_t *offsets, int64_t num_keys,
                             float scale, float *scores, float *acc_out, float *m, float *l) {
    const int64_t padded = (num_keys + 7) & ~(int64_t)7;
    for (int h = 0; h < NH; h++) { m[h] = -INFINITY; l[h] = 0.0f; }
    const int KB = NH == 1 ? 8 : NH == 2 ? 4 : 2;      /* >= 8 FMA chains in flight */
    int64_t j = score_keys(D, NH, KB, q, k, offsets, 0, num_keys, scale, scores, m);
    score_keys(D, NH, 1, q, k, offsets, j, num_keys, scale, scores, m);
    for (int h = 0; h < NH; h++) {
        float *p = scores + h * KEY_CHUNK;
        for (int64_t i = num_keys; i < padded; i++) p[i] = -INFINITY;
        const __m256 vm = _mm256_set1_ps(m[h]);
        for (int64_t i = 0; i < padded; i += 8)   /* elementwise: lane placement does not matter */
            _mm256_storeu_ps(p + i, exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(p + i), vm)));
        memset(acc_out + h * D, 0, sizeof(float) * (size_t)D);
    }
    /* Values: each 16-wide slice of a value row is widened once and added into every head's
       accumulators (2 x NH registers), keys in order; a weight of exactly 0 adds nothing. */
    for (int64_t j0 = 0; j0 < num_keys; j0 += KEY_BLOCK) {
        const int64_t j1 = j0 + KEY_BLOCK < num_keys ? j0 + KEY_BLOCK : num_keys;
        /* the next block's rows, requested now: this block's 16-wide passes go down the rows,
           a pattern the hardware prefetcher does not follow */
        for (int64_t i = j1; i < j1 + KEY_BLOCK && i < num_keys; i++)
            for (int d = 0; d < D; d += 32)
                _mm_prefetch((const char *)(v + offsets[i] + d), _MM_HINT_T0);
        for (int c = 0; c < D; c += 16) {
            __m256 acc[NH][2];
            for (int h = 0; h < NH; h++) {
                acc[h][0] = _mm256_loadu_ps(acc_out + h * D + c);
                acc[h][1] = _mm256_loadu_ps(acc_out + h * D + c + 8);
            }
            for (int64_t i = j0; i < j1; i++) {
                const uint16_t *vi = v + offsets[i] + c;
                const __m256 v0 = load_kv(vi), v1 = load_kv(vi + 8);
                #pragma GCC unroll 4
                for (int h = 0; h < NH; h++) {
                    const __m256 ph = _mm256_broadcast_ss(scores + h * KEY_CHUNK + i);
                    acc[h][0] = _mm256_fmadd_ps(ph, v0, acc[h][0]);
                    acc[h][1] = _mm256_fmadd_ps(ph, v1, acc[h][1]);
                }
            }
            for (int h = 0; h < NH; h++) {
                _mm256_storeu_ps(acc_out + h * D + c, acc[h][0]);
                _mm256_storeu_ps(acc_out + h * D + c + 8, acc[h][1]);
            }
        }
        for (int h = 0; h < NH; h++)
            for (int64_t i = j0; i < j1; i++) l[h] += scores[h * KEY_CHUNK + i];
    }
}

#define FC_HEADS(D) switch (num_heads) {                                                       \
    case 1: partial_heads(D, 1, q, k, v, offsets, num_keys, scale, scores, acc, m, l); return 1; \
    case 2: partial_heads(D, 2, q, k, v, offsets, num_keys, scale, scores, acc, m, l); return 1; \
    case 3: partial_heads(D, 3, q, k, v, offsets, num_keys, scale, scores, acc, m, l); return 1; \
    case 4: partial_heads(D, 4, q, k, v, offsets, num_keys, scale, scores, acc, m, l); return 1; \
    default: return 0; }

/* 1 when an AVX2 instance handles (head_dim, num_heads); constant D and NH keep the
   accumulators in registers. */
static int partial_avx2(int64_t D, int num_heads, const float *q, const uint16_t *k,
                        const uint16_t *v, const int64_t *offsets, int64_t num_keys,
                        float scale, float *scores,
                        float *acc, float *m, float *l) {
    switch (D) {
    case 16: FC_HEADS(16)
    case 32: FC_HEADS(32)
    case 64: FC_HEADS(64)
    case 128: FC_HEADS(128)
    case 256: FC_HEADS(256)
    default: return 0;
    }
}
#endif

/* Portable head: the same state in scalar code (libm expf). */
static void partial_scalar(int64_t D, const float *q, const uint16_t *k,
                           const uint16_t *v,
                           const int64_t *offsets, int64_t num_keys, float scale, float *scores,
                           float *acc, float *m, float *l) {
    *m = -INFINITY;
    *l = 0.0f;
    for (int64_t j = 0; j < num_keys; j++) {
        float s = 0.0f;
        for (int64_t d = 0; d < D; d++)
            s += q[d] * fc_f16_to_f32((const uint8_t *)(k + offsets[j] + d));
        scores[j] = s * scale;
        if (scores[j] > *m) *m = scores[j];
    }
    for (int64_t d = 0; d < D; d++) acc[d] = 0.0f;
    for (int64_t j = 0; j < num_keys; j++) {
        const float pj = expf(scores[j] - *m);
        *l += pj;
        for (int64_t d = 0; d < D; d++)
            acc[d] += pj * fc_f16_to_f32((const uint8_t *)(v + offsets[j] + d));
    }
}

/* num_heads (<= MAX_UNIT_HEADS) consecutive heads of one token sharing one KV head, over at
   most KEY_CHUNK keys; scores holds MAX_UNIT_HEADS rows of KEY_CHUNK. */
static void partial(int64_t D, int num_heads, const float *q, const uint16_t *k,
                    const uint16_t *v,
                    const int64_t *offsets, int64_t num_keys, float scale, float *scores,
                    float *acc, float *m, float *l) {
#ifdef FC_AVX2
    if (partial_avx2(D, num_heads, q, k, v, offsets, num_keys, scale, scores, acc, m, l)) return;
#endif
    for (int h = 0; h < num_heads; h++)
        partial_scalar(D, q + h * D, k, v, offsets, num_keys, scale, scores, acc + h * D, m + h,
                       l + h);
}

/* Folds the next chunk's state (pacc, pm, pl) into the running one, always in chunk order.
   noinline: the one copy of this arithmetic serves the sequential and the split paths. */
static __attribute__((noinline)) void merge(int64_t D, int num_heads, float *acc, float *m,
                                            float *l, const float *pacc, const float *pm,
                                            const float *pl) {
    for (int h = 0; h < num_heads; h++) {
        const float mx = pm[h] > m[h] ? pm[h] : m[h];
        const float a = expf(m[h] - mx), b = expf(pm[h] - mx);
        for (int64_t d = 0; d < D; d++) acc[h * D + d] = acc[h * D + d] * a + pacc[h * D + d] * b;
        l[h] = l[h] * a + pl[h] * b;
        m[h] = mx;
    }
}

static void normalise(int64_t D, int num_heads, float *acc, const float *l) {
    for (int h = 0; h < num_heads; h++) {
        const float inv = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
        for (int64_t d = 0; d < D; d++) acc[h * D + d] *= inv;
    }
}

/* State of one chunk as the split path stores it: acc (MAX_UNIT_HEADS x D), then m and l. */
static inline int64_t part_floats(int64_t D) { return MAX_UNIT_HEADS * (D + 2); }

/* One unit over all its keys, chunk by chunk, on one thread: out = softmax(q k) v. */
static void attend_unit(int64_t D, int num_heads, const float *q, const uint16_t *k,
                        const uint16_t *v,
                        const int64_t *offsets, int64_t num_keys, float scale, float *scores,
                        float *part, float *out) {
    float m[MAX_UNIT_HEADS], l[MAX_UNIT_HEADS];
    const int64_t first = num_keys < KEY_CHUNK ? num_keys : KEY_CHUNK;
    partial(D, num_heads, q, k, v, offsets, first, scale, scores, out, m, l);
    for (int64_t c0 = KEY_CHUNK; c0 < num_keys; c0 += KEY_CHUNK) {
        float *pm = part + MAX_UNIT_HEADS * D, *pl = pm + MAX_UNIT_HEADS;
        const int64_t n = num_keys - c0 < KEY_CHUNK ? num_keys - c0 : KEY_CHUNK;
        partial(D, num_heads, q, k, v, offsets + c0, n, scale, scores, part, pm, pl);
        merge(D, num_heads, out, m, l, part, pm, pl);
    }
    normalise(D, num_heads, out, l);
}

/* Work units: (token, KV head, chunk of that KV head's query heads), each split into
   chunks_per_unit key chunks only when there are fewer units than threads and the rows are
   long (a decode step: the key chunks then spread the reads over the threads). With short rows
   the heads are split instead. Neither split changes a head's arithmetic: results do not depend
   on the thread count or on the tokens computed beside it. */
typedef struct {
    int64_t group, heads_per_unit, units_per_group, num_units, chunks_per_unit;
} fc_units;

static fc_units plan_units(int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                           int64_t max_visible, int num_threads) {
    fc_units u;
    u.group = num_heads / num_kv_heads;
    u.chunks_per_unit = 1;
    const int64_t pairs = num_tokens * num_kv_heads;
    int64_t per = u.group < MAX_UNIT_HEADS ? u.group : MAX_UNIT_HEADS;
    const int64_t num_chunks = (max_visible + KEY_CHUNK - 1) / KEY_CHUNK;
    if (pairs * ((u.group + per - 1) / per) < num_threads) {
        if (num_chunks > 1) u.chunks_per_unit = num_chunks;
        else {
            const int64_t splits = (num_threads + pairs - 1) / pairs;
            per = (u.group + splits - 1) / splits;
        }
    }
    u.heads_per_unit = per;
    u.units_per_group = (u.group + per - 1) / per;
    u.num_units = pairs * u.units_per_group;
    return u;
}

/* First head (global index) and head count of unit `i`, its token and KV head. */
static inline void unit_heads(const fc_units *u, int64_t num_kv_heads, int64_t i,
                              int64_t *token, int64_t *kv_head, int64_t *first, int *count) {
    const int64_t per_token = num_kv_heads * u->units_per_group;
    const int64_t rest = i % per_token, chunk = rest % u->units_per_group;
    *token = i / per_token;
    *kv_head = rest / u->units_per_group;
    *first = *kv_head * u->group + chunk * u->heads_per_unit;
    const int64_t left = u->group - chunk * u->heads_per_unit;
    *count = (int)(left < u->heads_per_unit ? left : u->heads_per_unit);
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
        if (num_visible && key_positions[j] < keys[num_visible - 1].position) {
            descents++;
            cut = num_visible;
        }
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

/* Element offsets of the keys token t sees, in position order; returns their number. */
static int64_t token_keys(const fc_kv_view *kv, int64_t t, fc_key *keys, int64_t *offsets) {
    const int64_t qp = kv->query_positions[t];
    if (kv->key_positions)
        return visible_keys(kv->key_positions, kv->num_keys, kv->key_stride, qp, kv->window,
                            keys, offsets);
    const int64_t *seq_slots = kv->slots + kv->seq_slot_start[kv->token_seq[t]];
    const int64_t first = kv->window && qp - kv->window + 1 > 0 ? qp - kv->window + 1 : 0;
    int64_t n = 0;                                /* key j of a sequence is at position j */
    for (int64_t j = first; j <= qp; j++) offsets[n++] = seq_slots[j] * kv->slot_stride;
    return n;
}

void fc_attention_view(const float *q, int64_t num_tokens, int64_t num_heads, int64_t D,
                       int64_t num_kv_heads, const fc_kv_view *kv, int64_t max_keys,
                       float scale, float *out, int num_threads) {
    if (num_threads < 1) num_threads = 1;
    const int64_t max_visible = kv->window && kv->window < max_keys ? kv->window : max_keys;
    const fc_units u = plan_units(num_tokens, num_heads, num_kv_heads, max_visible, num_threads);
    const int64_t num_items = u.num_units * u.chunks_per_unit, split = u.chunks_per_unit > 1;
    if (num_threads > num_items) num_threads = (int)num_items;
    float *parts = split ? malloc(sizeof(float) * (size_t)(num_items * part_floats(D))) : NULL;
    int64_t *unit_keys = split ? malloc(sizeof(int64_t) * (size_t)u.num_units) : NULL;
    #pragma omp parallel num_threads(num_threads) if (num_threads > 1)
    {
        float *scores = malloc(sizeof(float) * MAX_UNIT_HEADS * KEY_CHUNK);
        float *part = malloc(sizeof(float) * (size_t)part_floats(D));
        int64_t *offsets = malloc(sizeof(int64_t) * (size_t)max_keys);
        fc_key *keys = kv->key_positions ? malloc(sizeof(fc_key) * (size_t)max_keys) : NULL;
        const int id = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t offsets_token = -1, num_visible = 0;
        for (int64_t i = num_items * id / n; i < num_items * (id + 1) / n; i++) {
            const int64_t unit = i / u.chunks_per_unit, c0 = (i % u.chunks_per_unit) * KEY_CHUNK;
            int64_t t, g, h;
            int count;
            unit_heads(&u, num_kv_heads, unit, &t, &g, &h, &count);
            if (t != offsets_token) {
                num_visible = token_keys(kv, t, keys, offsets);
                offsets_token = t;
            }
            const float *qu = q + (t * num_heads + h) * D;
            const uint16_t *k = kv->k + g * kv->kv_head_stride;
            const uint16_t *v = kv->v + g * kv->kv_head_stride;
            if (!split) {
                attend_unit(D, count, qu, k, v, offsets, num_visible, scale, scores, part,
                            out + (t * num_heads + h) * D);
                continue;
            }
            if (c0 == 0) unit_keys[unit] = num_visible;
            if (c0 >= num_visible && c0 > 0) continue;
            float *pacc = parts + i * part_floats(D), *pm = pacc + MAX_UNIT_HEADS * D;
            const int64_t len = num_visible - c0 < KEY_CHUNK ? num_visible - c0 : KEY_CHUNK;
            partial(D, count, qu, k, v, offsets + c0, len, scale, scores, pacc, pm,
                    pm + MAX_UNIT_HEADS);
        }
        if (split) {
            #pragma omp barrier
            for (int64_t unit = u.num_units * id / n; unit < u.num_units * (id + 1) / n; unit++) {
                int64_t t, g, h;
                int count;
                unit_heads(&u, num_kv_heads, unit, &t, &g, &h, &count);
                float *o = out + (t * num_heads + h) * D, m[MAX_UNIT_HEADS], l[MAX_UNIT_HEADS];
                const float *first = parts + unit * u.chunks_per_unit * part_floats(D);
                memcpy(o, first, sizeof(float) * (size_t)(count * D));
                memcpy(m, first + MAX_UNIT_HEADS * D, sizeof(float) * (size_t)count);
                memcpy(l, first + MAX_UNIT_HEADS * D + MAX_UNIT_HEADS,
                       sizeof(float) * (size_t)count);
                for (int64_t c = 1; c * KEY_CHUNK < unit_keys[unit]; c++) {
                    const float *pacc = first + c * part_floats(D), *pm = pacc + MAX_UNIT_HEADS * D;
                    merge(D, count, o, m, l, pacc, pm, pm + MAX_UNIT_HEADS);
                }
                normalise(D, count, o, l);
            }
        }
        free(keys);
        free(offsets);
        free(part);
        free(scores);
    }
    free(unit_keys);
    free(parts);
}

void fc_attention(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                  const uint16_t *k, const uint16_t *v, int64_t num_kv_heads, int64_t num_keys,
                  int64_t kv_head_stride, int64_t kv_key_stride, const int64_t *key_positions,
                  const int64_t *query_positions, int64_t window, float scale, float *out,
                  int num_threads) {
    if (num_tokens < 1 || num_keys < 1) return;
    const fc_kv_view kv = {.k = k, .v = v, .kv_head_stride = kv_head_stride,
                           .key_positions = key_positions, .num_keys = num_keys,
                           .key_stride = kv_key_stride, .query_positions = query_positions,
                           .window = window};
    fc_attention_view(q, num_tokens, num_heads, head_dim, num_kv_heads, &kv, num_keys, scale, out,
                      num_threads);
}

int64_t fc_paged_max_keys(const int64_t *token_seq, const int64_t *seq_slot_start,
                          int64_t num_tokens) {
    int64_t max_keys = 1;
    for (int64_t t = 0; t < num_tokens; t++) {
        const int64_t s = token_seq[t], n = seq_slot_start[s + 1] - seq_slot_start[s];
        if (n > max_keys) max_keys = n;
    }
    return max_keys;
}

void fc_attention_paged(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                        const uint16_t *k_cache, const uint16_t *v_cache, int64_t num_kv_heads,
                        const int64_t *token_seq, const int64_t *seq_slot_start,
                        const int64_t *slots, const int64_t *query_positions, int64_t window,
                        float scale, float *out, int num_threads) {
    if (num_tokens < 1) return;
    const int64_t max_keys = fc_paged_max_keys(token_seq, seq_slot_start, num_tokens);
    const fc_kv_view kv = {.k = k_cache, .v = v_cache, .kv_head_stride = head_dim,
                           .token_seq = token_seq, .seq_slot_start = seq_slot_start,
                           .slots = slots, .slot_stride = num_kv_heads * head_dim,
                           .query_positions = query_positions, .window = window};
    fc_attention_view(q, num_tokens, num_heads, head_dim, num_kv_heads, &kv, max_keys, scale, out,
                      num_threads);
}
