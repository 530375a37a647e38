/* One decoding step of GPT attention for every slot and head, the KV-cache write fused in.

   Each (slot, head) reads exactly its own history: no padding to a group's span, no masks, no gathers,
   one call per layer. Built at first use by shopgen/text/kernels (cc -O3 -march=native -fopenmp); the
   parallel loop runs on the OpenMP runtime torch already loaded (same soname), so it shares torch's threads.

   The cache holds int8 keys and values, each (slot, head, position) vector with its own float scale
   (absmax / 127): a step reads every slot's whole history from memory, and at 256 slots that read, not the
   arithmetic, was most of the attention's time (fp16, the previous cache, streamed at ~16-20 GB/s on one
   thread). A vector's rounding error is at most 1/254 of its largest entry. While one (slot, head) is
   computed, the next one's history is prefetched.

   B rows, each fed to one slot of the cache; only those slots are read or written, so a step costs
   the rows it runs, not the cache's size.
   qkv:    (B, 3*H*D)   the c_attn output of the token fed to each row (q | k | v, heads inside each)
   k, v:   (N, H, S, D) this layer's cache of N slots, int8; cells 0..pos[b]-1 of row b's slot hold its history
   ks, vs: (N, H, S)    each cell's scale: the cell holds round(x / scale)
   pos:    (B,)         the cell row b's token takes
   slot:   (B,) or NULL the slot of row b (NULL: slot b)
   out:    (B, H*D)     softmax(q k^T * scale) v per head: the layout c_proj takes
   Returns how many (row, head) pairs had no cell left (pos >= S); those are not written.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastmath.h"

typedef int8_t q8;

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define DENORMALS_OFF const unsigned csr = _mm_getcsr(); _mm_setcsr(csr | 0x8040); /* FTZ and DAZ */
#define DENORMALS_RESTORE _mm_setcsr(csr);
#else
#define DENORMALS_OFF
#define DENORMALS_RESTORE
#endif

/* x (D floats) as int8 in out; returns the scale (absmax / 127; 0 for a zero vector). Rounds to nearest,
   ties to even, by adding and subtracting 1.5 * 2^23 (|x * inv| <= 127), as torch.round does: loops
   without a libm call, which GCC vectorises. */
static inline float quantize(const float *restrict x, q8 *restrict out, int64_t D)
{
    float top = 0.0f;
    for (int64_t j = 0; j < D; j++) {
        const float a = fabsf(x[j]);
        top = a > top ? a : top;
    }
    const float inv = top > 0.0f ? 127.0f / top : 0.0f;
    for (int64_t j = 0; j < D; j++) {
        const float shifted = x[j] * inv + EXP_SHIFT;
        out[j] = (q8)(int32_t)(shifted - EXP_SHIFT);
    }
    return top / 127.0f;
}

/* exp(score - best) over scores[0..n-1] in place; returns their sum (the softmax's denominator). */
static inline float softmax_unnormalised(float *restrict scores, int64_t n, float best)
{
    float total = 0.0f;
    int64_t t = 0;
#if EXP_LANES
    const __m256 top = _mm256_set1_ps(best);
    __m256 sum = _mm256_setzero_ps();
    for (; t + EXP_LANES <= n; t += EXP_LANES) {
        const __m256 e = exp_approx8(_mm256_sub_ps(_mm256_loadu_ps(scores + t), top));
        _mm256_storeu_ps(scores + t, e);
        sum = _mm256_add_ps(sum, e);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    total = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
#endif
    for (; t < n; t++) {
        const float e = exp_approx(scores[t] - best);
        scores[t] = e;
        total += e;
    }
    return total;
}

/* The general path (no AVX2, or D not a multiple of 8). */
static inline void attend_scalar(const float *restrict q, const q8 *restrict kc, const q8 *restrict vc,
                                 const float *restrict ks, const float *restrict vs, int64_t n, int64_t D,
                                 float scale, float *restrict scores, float *restrict o)
{
    float best = -INFINITY;
    for (int64_t t = 0; t < n; t++) {
        float s = 0.0f;
        for (int64_t j = 0; j < D; j++) s += q[j] * (float)kc[t * D + j];
        s *= ks[t] * scale;
        scores[t] = s;
        best = s > best ? s : best;
    }
    const float inv = 1.0f / softmax_unnormalised(scores, n, best);
    for (int64_t j = 0; j < D; j++) o[j] = 0.0f;
    for (int64_t t = 0; t < n; t++) {
        const float p = scores[t] * vs[t] * inv;
        for (int64_t j = 0; j < D; j++) o[j] += p * (float)vc[t * D + j];
    }
}

#if defined(__AVX2__) && defined(__FMA__)
#define Q8_LANES 8
#define MAX_VECS 16 /* head sizes up to 64 keep q and the output in registers; up to 128, in L1 */

static inline __m256 load_q8x8(const q8 *x)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)x)));
}

/* The four sums of a, b, c, d's lanes, in that order. */
static inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* attend_scalar for D = 8 * V (V <= MAX_VECS, a constant where inlined): the scaled query and the output
   live in registers for the whole history, and keys are scored four at a time, so four independent
   chains of multiply-adds run and one horizontal reduction serves four scores. */
static inline void attend_vec(const float *restrict q, const q8 *restrict kc, const q8 *restrict vc,
                              const float *restrict ks, const float *restrict vs, int64_t n, const int V,
                              float scale, float *restrict scores, float *restrict o)
{
    const int64_t D = 8 * V;
    __m256 qv[MAX_VECS], ov[MAX_VECS];
    const __m256 sc = _mm256_set1_ps(scale);
    for (int j = 0; j < V; j++) qv[j] = _mm256_mul_ps(_mm256_loadu_ps(q + 8 * j), sc);
    __m128 best4 = _mm_set1_ps(-INFINITY);
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
        const q8 *k0 = kc + t * D;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
        for (int j = 0; j < V; j++) {
            a = _mm256_fmadd_ps(qv[j], load_q8x8(k0 + 8 * j), a);
            b = _mm256_fmadd_ps(qv[j], load_q8x8(k0 + D + 8 * j), b);
            c = _mm256_fmadd_ps(qv[j], load_q8x8(k0 + 2 * D + 8 * j), c);
            d = _mm256_fmadd_ps(qv[j], load_q8x8(k0 + 3 * D + 8 * j), d);
        }
        const __m128 s = _mm_mul_ps(sum4(a, b, c, d), _mm_loadu_ps(ks + t));
        _mm_storeu_ps(scores + t, s);
        best4 = _mm_max_ps(best4, s);
    }
    best4 = _mm_max_ps(best4, _mm_movehl_ps(best4, best4));
    float best = _mm_cvtss_f32(_mm_max_ss(best4, _mm_movehdup_ps(best4)));
    for (; t < n; t++) {
        __m256 a = _mm256_setzero_ps();
        for (int j = 0; j < V; j++) a = _mm256_fmadd_ps(qv[j], load_q8x8(kc + t * D + 8 * j), a);
        const float s = _mm_cvtss_f32(sum4(a, a, a, a)) * ks[t]; /* every lane holds a's sum */
        scores[t] = s;
        best = s > best ? s : best;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / softmax_unnormalised(scores, n, best));
    for (int j = 0; j < V; j++) ov[j] = _mm256_setzero_ps();
    for (t = 0; t < n; t++) {
        const __m256 p = _mm256_set1_ps(scores[t] * vs[t]);
        for (int j = 0; j < V; j++) ov[j] = _mm256_fmadd_ps(p, load_q8x8(vc + t * D + 8 * j), ov[j]);
    }
    for (int j = 0; j < V; j++) _mm256_storeu_ps(o + 8 * j, _mm256_mul_ps(ov[j], inv));
}
#else
#define Q8_LANES 0
#endif

static inline void attend_one(const float *restrict q, const q8 *restrict kc, const q8 *restrict vc,
                              const float *restrict ks, const float *restrict vs, int64_t n, int64_t D,
                              float scale, float *restrict scores, float *restrict o)
{
#if Q8_LANES
    switch (D) { /* constant trip counts: the loops over j unroll and qv, ov stay in registers */
    case 32: attend_vec(q, kc, vc, ks, vs, n, 4, scale, scores, o); return;
    case 64: attend_vec(q, kc, vc, ks, vs, n, 8, scale, scores, o); return;
    case 128: attend_vec(q, kc, vc, ks, vs, n, 16, scale, scores, o); return;
    default:
        if (D % 8 == 0 && D / 8 <= MAX_VECS) {
            attend_vec(q, kc, vc, ks, vs, n, (int)(D / 8), scale, scores, o);
            return;
        }
    }
#endif
    attend_scalar(q, kc, vc, ks, vs, n, D, scale, scores, o);
}

static inline int64_t slot_of(const int64_t *slot, int64_t b) { return slot ? slot[b] : b; }

static inline void prefetch_bytes(const char *p, int64_t bytes)
{
    for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

/* Ask for the cached history of (row, head) i, to arrive while the one before it is computed. */
static inline void prefetch_history(const q8 *k, const q8 *v, const float *ks, const float *vs, const int64_t *pos,
                                    const int64_t *slot, int64_t i, int64_t H, int64_t D, int64_t S)
{
    const int64_t at = pos[i / H];
    if (at <= 0 || at >= S)
        return;
    const int64_t cache = slot_of(slot, i / H) * H + i % H;
    prefetch_bytes((const char *)(k + cache * S * D), at * D);
    prefetch_bytes((const char *)(v + cache * S * D), at * D);
    prefetch_bytes((const char *)(ks + cache * S), at * (int64_t)sizeof(float));
    prefetch_bytes((const char *)(vs + cache * S), at * (int64_t)sizeof(float));
}

int64_t shopgen_decode_attention(const float *qkv, q8 *k, q8 *v, float *ks, float *vs, const int64_t *pos,
                                 const int64_t *slot, float *out, int64_t B, int64_t H, int64_t D, int64_t S,
                                 float scale, int threads)
{
    int64_t overflow = 0;
#pragma omp parallel num_threads(threads) reduction(+ : overflow)
    {
    /* Weights far below the softmax's largest (exp clamps at e^-87) times a value's scale fall under
       float's normal range, where the multiply-adds run ~100x slower: flush them to zero in here. */
    DENORMALS_OFF
#pragma omp for schedule(static)
    for (int64_t i = 0; i < B * H; i++) {
        if (i + 1 < B * H)
            prefetch_history(k, v, ks, vs, pos, slot, i + 1, H, D, S);
        const int64_t b = i / H, h = i % H, at = pos[b], n = at + 1;
        if (at < 0 || at >= S) {
            overflow++;
            continue;
        }
        const float *q = qkv + b * 3 * H * D + h * D;
        const int64_t cache = slot_of(slot, b) * H + h;
        q8 *kc = k + cache * S * D, *vc = v + cache * S * D;
        float *kscale = ks + cache * S, *vscale = vs + cache * S;
        kscale[at] = quantize(q + H * D, kc + at * D, D);
        vscale[at] = quantize(q + 2 * H * D, vc + at * D, D);
        float scores[n];
        attend_one(q, kc, vc, kscale, vscale, n, D, scale, scores, out + b * H * D + h * D);
    }
    DENORMALS_RESTORE
    }
    return overflow;
}
