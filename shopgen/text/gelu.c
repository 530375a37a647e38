/* GPT-2's tanh-approximated GELU, in place, for the decoder's MLP.

   One vectorised pass, written as x * sigmoid(2u) (u = sqrt(2/pi) (x + 0.044715 x^3)), which is
   0.5 x (1 + tanh u) without the cancellation of 1 + tanh u where tanh u is near -1.
   Built beside decode_attention.c by shopgen/text/native.py.
*/
#include <stdint.h>

#include "fastmath.h"

void shopgen_gelu_tanh(float *x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + exp_approx(-2.0f * u));
    }
}
