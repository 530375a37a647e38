/* GPT-2's tanh-approximated GELU, in place, for the decoder's MLP.

   One vectorised pass, written as x * sigmoid(2u) (u = sqrt(2/pi) (x + 0.044715 x^3)), which is
   0.5 x (1 + tanh u) without the cancellation of 1 + tanh u where tanh u is near -1.
   Built beside decode_attention.c by shopgen/text/native.py.
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
