/* One decoding step of GPT attention for every slot and head, the KV-cache write fused in.

   Each (slot, head) reads exactly its own history: no padding to a group's span, no masks, no gathers,
   one call per layer. Built at first use by shopgen/text/native.py (cc -O3 -march=native -fopenmp); the
   parallel loop runs on the OpenMP runtime torch already loaded (same soname), so it shares torch's threads.

   qkv:  (B, 3*H*D)   the c_attn output of the token fed to each slot (q | k | v, heads inside each)
   k, v: (B, H, S, D) this layer's cache; cells 0..pos[b]-1 of slot b hold its history
   pos:  (B,)         the cell the fed token takes
   out:  (B, H*D)     softmax(q k^T * scale) v per head: the layout c_proj takes
   Returns how many (slot, head) pairs had no cell left (pos >= S); those are not written.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline void attend_one(const float *restrict q, const float *restrict kc, const float *restrict vc,
                              int64_t n, int64_t D, float scale, float *restrict scores, float *restrict o)
{
    float best = -INFINITY;
    for (int64_t t = 0; t < n; t++) {
        const float *restrict kt = kc + t * D;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < D; j++) s += q[j] * kt[j];
        s *= scale;
        scores[t] = s;
        best = s > best ? s : best;
    }
    float total = 0.0f;
    for (int64_t t = 0; t < n; t++) {
        float e = expf(scores[t] - best);
        scores[t] = e;
        total += e;
    }
    for (int64_t j = 0; j < D; j++) o[j] = 0.0f;
    for (int64_t t = 0; t < n; t++) {
        const float *restrict vt = vc + t * D;
        const float p = scores[t];
#pragma omp simd
        for (int64_t j = 0; j < D; j++) o[j] += p * vt[j];
    }
    const float inv = 1.0f / total;
#pragma omp simd
    for (int64_t j = 0; j < D; j++) o[j] *= inv;
}

/* Head sizes of the presets get a constant trip count, so the inner loops unroll into registers. */
#define ATTEND(DIM) attend_one(q, kc, vc, n, DIM, scale, scores, o)

int64_t shopgen_decode_attention(const float *qkv, float *k, float *v, const int64_t *pos, float *out, int64_t B,
                                 int64_t H, int64_t D, int64_t S, float scale, int threads)
{
    int64_t overflow = 0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) reduction(+ : overflow)
    for (int64_t i = 0; i < B * H; i++) {
        const int64_t b = i / H, h = i % H, at = pos[b], n = at + 1;
        if (at < 0 || at >= S) {
            overflow++;
            continue;
        }
        const float *q = qkv + b * 3 * H * D + h * D;
        float *kc = k + (b * H + h) * S * D, *vc = v + (b * H + h) * S * D;
        float *o = out + b * H * D + h * D;
        memcpy(kc + at * D, q + H * D, (size_t)D * sizeof(float));
        memcpy(vc + at * D, q + 2 * H * D, (size_t)D * sizeof(float));
        float scores[n];
        switch (D) {
        case 32: ATTEND(32); break;
        case 64: ATTEND(64); break;
        case 128: ATTEND(128); break;
        default: ATTEND(D);
        }
    }
    return overflow;
}
