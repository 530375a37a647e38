/* Vectorisable math shared by the native kernels (native.py builds them into one library). */
#ifndef SHOPGEN_FASTMATH_H
#define SHOPGEN_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* e^x to about 2 ulp for |x| < 87 (a degree-6 polynomial on x - n ln 2, then 2^n from the exponent
   bits), with no library call, so loops calling it under `omp simd` vectorise. */
static inline float exp_approx(float x)
{
    x = x < -87.0f ? -87.0f : (x > 87.0f ? 87.0f : x);
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2) */
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;             /* x - n ln 2, in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = (p * r * r + r) + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
