/* GPT-2's tanh-approximated GELU: in place for the decoder's MLP, and forward and backward for training.

   One vectorised pass, written as x * sigmoid(2u) (u = sqrt(2/pi) (x + 0.044715 x^3)), which is
   0.5 x (1 + tanh u) without the cancellation of 1 + tanh u where tanh u is near -1. Its derivative is
   s + 2 x s (1 - s) u' with s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
   Built beside decode_attention.c by shopgen/text/kernels.
*/
#include <stdint.h>

#include "fastmath.h"

static inline float gelu_one(float v)
{
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return v / (1.0f + exp_approx(-2.0f * u));
}

void shopgen_gelu_tanh(float *x, int64_t n)
{
    int64_t i = 0;
#if EXP_LANES
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    const __m256 minus_two = _mm256_set1_ps(-2.0f), one = _mm256_set1_ps(1.0f);
    for (; i + EXP_LANES <= n; i += EXP_LANES) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, v), _mm256_mul_ps(v, v), v));
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, exp_approx8(_mm256_mul_ps(minus_two, u)))));
    }
#endif
    for (; i < n; i++) x[i] = gelu_one(x[i]);
}

static inline float gelu_grad_one(float v, float g)
{
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    const float s = 1.0f / (1.0f + exp_approx(-2.0f * u));
    const float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * v * v);
    return g * (s + 2.0f * v * s * (1.0f - s) * du);
}

/* out[i] = gelu(x[i]) (grad == NULL) or grad[i] * gelu'(x[i]), over [lo, hi) */
static void gelu_span(const float *x, const float *grad, float *out, int64_t lo, int64_t hi)
{
    int64_t i = lo;
#if EXP_LANES
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    const __m256 k3 = _mm256_set1_ps(3.0f * 0.044715f), minus_two = _mm256_set1_ps(-2.0f);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    for (; i + EXP_LANES <= hi; i += EXP_LANES) {
        const __m256 v = _mm256_loadu_ps(x + i), v2 = _mm256_mul_ps(v, v);
        const __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, v), v2, v));
        const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp_approx8(_mm256_mul_ps(minus_two, u))));
        if (!grad) {
            _mm256_storeu_ps(out + i, _mm256_mul_ps(v, s));
            continue;
        }
        const __m256 du = _mm256_mul_ps(c, _mm256_fmadd_ps(k3, v2, one));
        const __m256 slope = _mm256_mul_ps(_mm256_mul_ps(two, v), _mm256_mul_ps(_mm256_mul_ps(s, _mm256_sub_ps(one, s)), du));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(grad + i), _mm256_add_ps(s, slope)));
    }
#endif
    for (; i < hi; i++) out[i] = grad ? gelu_grad_one(x[i], grad[i]) : gelu_one(x[i]);
}

/* Training's GELU: out = gelu(x), or with `grad`, out = grad * gelu'(x); `threads` share the values. */
void shopgen_gelu_tanh_train(const float *x, const float *grad, float *out, int64_t n, int threads)
{
    if (threads < 1) threads = 1;
    const int64_t per = (n / threads + 63) & ~(int64_t)63;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && n >= 65536)
    for (int t = 0; t < threads; t++) {
        const int64_t lo = t * per, hi = lo + per < n ? lo + per : n;
        if (lo < hi) gelu_span(x, grad, out, lo, hi);
    }
}
