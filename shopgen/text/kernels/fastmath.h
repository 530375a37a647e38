/* Math shared by the native kernels (shopgen/text/kernels builds them into one library).

   exp_approx: e^x to about 2 ulp for |x| < 87 (a degree-6 polynomial on x - n ln 2, then 2^n from the
   exponent bits), with no library call. GCC does not vectorise its clamp without -ffinite-math-only (which
   draw.c's -inf logits rule out), so where AVX2 and FMA are there, exp_approx8 is the same steps on 8 lanes
   and the loops over many values call it: a scalar loop left the GELU at ~11 cycles a value.
*/
#ifndef SHOPGEN_FASTMATH_H
#define SHOPGEN_FASTMATH_H

#include <stdint.h>
#include <string.h>

#define EXP_CLAMP 87.0f
#define EXP_SHIFT 12582912.0f /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_C6 1.9875691500e-4f
#define EXP_C5 1.3981999507e-3f
#define EXP_C4 8.3334519073e-3f
#define EXP_C3 4.1665795894e-2f
#define EXP_C2 1.6666665459e-1f
#define EXP_C1 5.0000001201e-1f

static inline float exp_approx(float x)
{
    x = x < -EXP_CLAMP ? -EXP_CLAMP : (x > EXP_CLAMP ? EXP_CLAMP : x);
    const float n = (x * LOG2E + EXP_SHIFT) - EXP_SHIFT; /* round(x / ln 2) */
    const float r = (x - n * LN2_HI) - n * LN2_LO;       /* x - n ln 2, in two parts */
    float p = EXP_C6;
    p = p * r + EXP_C5;
    p = p * r + EXP_C4;
    p = p * r + EXP_C3;
    p = p * r + EXP_C2;
    p = p * r + EXP_C1;
    p = (p * r * r + r) + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define EXP_LANES 8

static inline __m256 exp_approx8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-EXP_CLAMP)), _mm256_set1_ps(EXP_CLAMP));
    const __m256 shift = _mm256_set1_ps(EXP_SHIFT);
    const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(LOG2E), shift), shift);
    const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x));
    __m256 p = _mm256_set1_ps(EXP_C6);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C1));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}
#else
#define EXP_LANES 0
#endif

#endif
