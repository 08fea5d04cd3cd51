// Sums in double precision over long float rows (the normalisations' statistics and their
// gradients' sums; see CKernels.h). Eight partial sums, lane l taking elements 8·i + l,
// combined as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), then the tail in order:
// the AVX2 and the portable versions give the same bits. Products and sums are separate
// statements, so that no compiler contracts them into fused multiply-adds.
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double combined(const double s[8]) {
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void sums_portable(
    const float *a, const float *b, ptrdiff_t n, double mean, double *sum, double *second) {
    double s[8] = {0}, t[8] = {0};
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            const double x = (double)a[i + l] - mean;
            const double y = b ? (double)b[i + l] : x;
            const double p = x * y;
            s[l] += x;
            t[l] += p;
        }
    }
    double total = combined(s), products = combined(t);
    for (; i < n; i++) {
        const double x = (double)a[i] - mean;
        const double y = b ? (double)b[i] : x;
        const double p = x * y;
        total += x;
        products += p;
    }
    *sum = total;
    *second = products;
}


static void normalized_sums_portable(
    const float *dy, const float *gate, const float *x, ptrdiff_t n, float mean, float inverse,
    double *sum, double *dot) {
    double s[8] = {0}, t[8] = {0};
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            const float g = gate && gate[i + l] <= 0 ? 0 : dy[i + l];
            const float v = (x[i + l] - mean) * inverse;
            const double d = (double)g;
            const double p = d * (double)v;
            s[l] += d;
            t[l] += p;
        }
    }
    double total = combined(s), products = combined(t);
    for (; i < n; i++) {
        const float g = gate && gate[i] <= 0 ? 0 : dy[i];
        const float v = (x[i] - mean) * inverse;
        const double d = (double)g;
        const double p = d * (double)v;
        total += d;
        products += p;
    }
    *sum = total;
    *dot = products;
}

#if defined(__x86_64__)

// The eight lanes of (s0, s1) and of (t0, t1), each combined as `combined` combines them.
__attribute__((target("avx2"))) static inline void combined_lanes(
    __m256d s0, __m256d s1, __m256d t0, __m256d t1, double *total, double *products) {
    double s[8], t[8];
    _mm256_storeu_pd(s, s0);
    _mm256_storeu_pd(s + 4, s1);
    _mm256_storeu_pd(t, t0);
    _mm256_storeu_pd(t + 4, t1);
    *total = combined(s);
    *products = combined(t);
}

__attribute__((target("avx2"))) static void sums_avx2(
    const float *a, const float *b, ptrdiff_t n, double mean, double *sum, double *second) {
    const __m256d m = _mm256_set1_pd(mean);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, t0 = s0, t1 = s0;
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 va = _mm256_loadu_ps(a + i);
        const __m256d x0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(va)), m);
        const __m256d x1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(va, 1)), m);
        __m256d y0 = x0, y1 = x1;
        if (b) {
            const __m256 vb = _mm256_loadu_ps(b + i);
            y0 = _mm256_cvtps_pd(_mm256_castps256_ps128(vb));
            y1 = _mm256_cvtps_pd(_mm256_extractf128_ps(vb, 1));
        }
        const __m256d p0 = _mm256_mul_pd(x0, y0), p1 = _mm256_mul_pd(x1, y1);
        s0 = _mm256_add_pd(s0, x0);
        s1 = _mm256_add_pd(s1, x1);
        t0 = _mm256_add_pd(t0, p0);
        t1 = _mm256_add_pd(t1, p1);
    }
    double total, products;
    combined_lanes(s0, s1, t0, t1, &total, &products);
    for (; i < n; i++) {
        const double x = (double)a[i] - mean;
        const double y = b ? (double)b[i] : x;
        const double p = x * y;
        total += x;
        products += p;
    }
    *sum = total;
    *second = products;
}


__attribute__((target("avx2"))) static void normalized_sums_avx2(
    const float *dy, const float *gate, const float *x, ptrdiff_t n, float mean, float inverse,
    double *sum, double *dot) {
    const __m256 m = _mm256_set1_ps(mean), inv = _mm256_set1_ps(inverse);
    const __m256 zero = _mm256_setzero_ps();
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, t0 = s0, t1 = s0;
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(dy + i);
        // Kept where the gate is > 0 or NaN (not ≤ 0), as the ReLU's backward keeps it.
        if (gate) g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(gate + i), zero, _CMP_NLE_UQ));
        const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), inv);
        const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(g));
        const __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(g, 1));
        const __m256d p0 = _mm256_mul_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        const __m256d p1 = _mm256_mul_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        s0 = _mm256_add_pd(s0, d0);
        s1 = _mm256_add_pd(s1, d1);
        t0 = _mm256_add_pd(t0, p0);
        t1 = _mm256_add_pd(t1, p1);
    }
    double total, products;
    combined_lanes(s0, s1, t0, t1, &total, &products);
    for (; i < n; i++) {
        const float g = gate && gate[i] <= 0 ? 0 : dy[i];
        const float v = (x[i] - mean) * inverse;
        const double d = (double)g;
        const double p = d * (double)v;
        total += d;
        products += p;
    }
    *sum = total;
    *dot = products;
}

#endif

void maestro_double_sums(
    const float *a, const float *b, ptrdiff_t n, double mean, double *sum, double *second,
    int portable) {
#if defined(__x86_64__)
    if (!portable && maestro_kernels_vectorized()) {
        sums_avx2(a, b, n, mean, sum, second);
        return;
    }
#endif
    sums_portable(a, b, n, mean, sum, second);
}

void maestro_normalized_sums(
    const float *dy, const float *gate, const float *x, ptrdiff_t n, float mean, float inverse,
    double *sum, double *dot, int portable) {
#if defined(__x86_64__)
    if (!portable && maestro_kernels_vectorized()) {
        normalized_sums_avx2(dy, gate, x, n, mean, inverse, sum, dot);
        return;
    }
#endif
    normalized_sums_portable(dy, gate, x, n, mean, inverse, sum, dot);
}
