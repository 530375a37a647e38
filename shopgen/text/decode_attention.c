/* One decoding step of GPT attention for every slot and head, the KV-cache write fused in.

   Each (slot, head) reads exactly its own history: no padding to a group's span, no masks, no gathers,
   one call per layer. Built at first use by shopgen/text/native.py (cc -O3 -march=native -fopenmp); the
   parallel loop runs on the OpenMP runtime torch already loaded (same soname), so it shares torch's threads.

   The cache is half precision (IEEE fp16: 11 significant bits; keys and values of a LayerNorm'd model sit far
   inside its range): a step reads every slot's whole history from memory, and at 256 slots that read, not
   the arithmetic, was most of the attention's time. While one (slot, head) is computed, the next one's
   history is prefetched.

   B rows, each fed to one slot of the cache; only those slots are read or written, so a step costs
   the rows it runs, not the cache's size.
   qkv:   (B, 3*H*D)      the c_attn output of the token fed to each row (q | k | v, heads inside each)
   k, v:  (N, H, S, D)    this layer's cache of N slots, fp16; cells 0..pos[b]-1 of row b's slot hold its history
   pos:   (B,)            the cell row b's token takes
   slot:  (B,) or NULL    the slot of row b (NULL: slot b)
   out:   (B, H*D)        softmax(q k^T * scale) v per head: the layout c_proj takes
   Returns how many (row, head) pairs had no cell left (pos >= S); those are not written.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastmath.h"

typedef uint16_t half; /* IEEE binary16 bits */

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define HALF_LANES 8
static inline __m256 load_half8(const half *x) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x)); }
#ifdef __FMA__
#define MADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#else
#define MADD(a, b, c) _mm256_add_ps(_mm256_mul_ps(a, b), c)
#endif
static inline float half_to_float(half h) { return _cvtsh_ss(h); }
static inline half float_to_half(float f) { return (half)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
#else
#define HALF_LANES 0
/* Portable conversions (round to nearest even; no vector path): machines without F16C. */
static inline float half_to_float(half h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000 | (man << 13);
    else if (exp)
        bits = sign | ((exp + 112) << 23) | (man << 13);
    else {
        const float f = (float)man * 5.9604644775390625e-8f; /* 2^-24: zero and subnormals */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
static inline half float_to_half(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    const uint32_t sign = (bits >> 16) & 0x8000;
    const float a = fabsf(f);
    if (!(a < 65520.0f))
        return (half)(sign | (a != a ? 0x7e00 : 0x7c00));
    if (a < 6.103515625e-05f) /* 2^-14: subnormal, in units of 2^-24 */
        return (half)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
    uint32_t u = bits & 0x7fffffff;
    u += 0xfff + ((u >> 13) & 1); /* round the 13 dropped bits to nearest even */
    return (half)(sign | ((u >> 13) - (112 << 10)));
}
#endif

/* q . k over D, with k in half precision (the scalar path: no F16C, or D not a multiple of 8). */
static inline float dot_half(const float *restrict q, const half *restrict k, int64_t D)
{
    float s = 0.0f;
    for (int64_t j = 0; j < D; j++) s += q[j] * half_to_float(k[j]);
    return s;
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

static inline void attend_scalar(const float *restrict q, const half *restrict kc, const half *restrict vc,
                                 int64_t n, int64_t D, float scale, float *restrict scores, float *restrict o)
{
    float best = -INFINITY;
    for (int64_t t = 0; t < n; t++) {
        const float s = dot_half(q, kc + t * D, D) * scale;
        scores[t] = s;
        best = s > best ? s : best;
    }
    const float inv = 1.0f / softmax_unnormalised(scores, n, best);
    for (int64_t j = 0; j < D; j++) o[j] = 0.0f;
    for (int64_t t = 0; t < n; t++) {
        const float p = scores[t] * inv;
        const half *vt = vc + t * D;
        for (int64_t j = 0; j < D; j++) o[j] += p * half_to_float(vt[j]);
    }
}

#if HALF_LANES
#define MAX_VECS 16 /* head sizes up to 64 keep q and the output in registers; up to 128, in L1 */

/* The four sums of a, b, c, d's lanes, in that order. */
static inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* attend_scalar for D = 8 * V (V <= MAX_VECS, a constant where inlined): the scaled query and the output
   live in registers for the whole history, and keys are scored four at a time, so four independent
   chains of multiply-adds run and one horizontal reduction serves four scores. */
static inline void attend_vec(const float *restrict q, const half *restrict kc, const half *restrict vc,
                              int64_t n, const int V, float scale, float *restrict scores, float *restrict o)
{
    const int64_t D = 8 * V;
    __m256 qv[MAX_VECS], ov[MAX_VECS];
    const __m256 sc = _mm256_set1_ps(scale);
    for (int j = 0; j < V; j++) qv[j] = _mm256_mul_ps(_mm256_loadu_ps(q + 8 * j), sc);
    __m128 best4 = _mm_set1_ps(-INFINITY);
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
        const half *k0 = kc + t * D;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
        for (int j = 0; j < V; j++) {
            a = MADD(qv[j], load_half8(k0 + 8 * j), a);
            b = MADD(qv[j], load_half8(k0 + D + 8 * j), b);
            c = MADD(qv[j], load_half8(k0 + 2 * D + 8 * j), c);
            d = MADD(qv[j], load_half8(k0 + 3 * D + 8 * j), d);
        }
        const __m128 s = sum4(a, b, c, d);
        _mm_storeu_ps(scores + t, s);
        best4 = _mm_max_ps(best4, s);
    }
    best4 = _mm_max_ps(best4, _mm_movehl_ps(best4, best4));
    float best = _mm_cvtss_f32(_mm_max_ss(best4, _mm_movehdup_ps(best4)));
    for (; t < n; t++) {
        __m256 a = _mm256_setzero_ps();
        for (int j = 0; j < V; j++) a = MADD(qv[j], load_half8(kc + t * D + 8 * j), a);
        const float s = _mm_cvtss_f32(sum4(a, a, a, a)); /* every lane holds a's sum */
        scores[t] = s;
        best = s > best ? s : best;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / softmax_unnormalised(scores, n, best));
    for (int j = 0; j < V; j++) ov[j] = _mm256_setzero_ps();
    for (t = 0; t < n; t++) {
        const __m256 p = _mm256_set1_ps(scores[t]);
        for (int j = 0; j < V; j++) ov[j] = MADD(p, load_half8(vc + t * D + 8 * j), ov[j]);
    }
    for (int j = 0; j < V; j++) _mm256_storeu_ps(o + 8 * j, _mm256_mul_ps(ov[j], inv));
}
#endif

static inline void attend_one(const float *restrict q, const half *restrict kc, const half *restrict vc,
                              int64_t n, int64_t D, float scale, float *restrict scores, float *restrict o)
{
#if HALF_LANES
    switch (D) { /* constant trip counts: the loops over j unroll and qv, ov stay in registers */
    case 32: attend_vec(q, kc, vc, n, 4, scale, scores, o); return;
    case 64: attend_vec(q, kc, vc, n, 8, scale, scores, o); return;
    case 128: attend_vec(q, kc, vc, n, 16, scale, scores, o); return;
    default:
        if (D % 8 == 0 && D / 8 <= MAX_VECS) {
            attend_vec(q, kc, vc, n, (int)(D / 8), scale, scores, o);
            return;
        }
    }
#endif
    attend_scalar(q, kc, vc, n, D, scale, scores, o);
}

static inline int64_t slot_of(const int64_t *slot, int64_t b) { return slot ? slot[b] : b; }

/* Ask for the cached history of (row, head) i, to arrive while the one before it is computed. */
static inline void prefetch_history(const half *k, const half *v, const int64_t *pos, const int64_t *slot, int64_t i,
                                    int64_t H, int64_t D, int64_t S)
{
    const int64_t at = pos[i / H];
    if (at <= 0 || at >= S)
        return;
    const int64_t cache = slot_of(slot, i / H) * H + i % H;
    const char *kc = (const char *)(k + cache * S * D), *vc = (const char *)(v + cache * S * D);
    const int64_t bytes = at * D * (int64_t)sizeof(half);
    for (int64_t off = 0; off < bytes; off += 64) {
        __builtin_prefetch(kc + off);
        __builtin_prefetch(vc + off);
    }
}

int64_t shopgen_decode_attention(const float *qkv, half *k, half *v, const int64_t *pos, const int64_t *slot,
                                 float *out, int64_t B, int64_t H, int64_t D, int64_t S, float scale, int threads)
{
    int64_t overflow = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : overflow)
    for (int64_t i = 0; i < B * H; i++) {
        if (i + 1 < B * H)
            prefetch_history(k, v, pos, slot, i + 1, H, D, S);
        const int64_t b = i / H, h = i % H, at = pos[b], n = at + 1;
        if (at < 0 || at >= S) {
            overflow++;
            continue;
        }
        const float *q = qkv + b * 3 * H * D + h * D;
        half *kc = k + (slot_of(slot, b) * H + h) * S * D, *vc = v + (slot_of(slot, b) * H + h) * S * D;
        float *o = out + b * H * D + h * D;
        for (int64_t j = 0; j < D; j++) {
            kc[at * D + j] = float_to_half(q[H * D + j]);
            vc[at * D + j] = float_to_half(q[2 * H * D + j]);
        }
        float scores[n];
        attend_one(q, kc, vc, n, D, scale, scores, o);
    }
    return overflow;
}
