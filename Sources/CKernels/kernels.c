// Small-side matrix products (see CKernels.h). AVX2+FMA kernels chosen at run time on x86-64
// (function-level target attributes: no global -mavx2 flag, so the binary still runs on any
// x86-64), portable loops elsewhere that the compiler vectorises for the target (NEON on
// aarch64 boards).
#include "CKernels.h"

#include <pthread.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define MAESTRO_X86 1
#endif

// MARK: - Portable kernels

void maestro_gemm_nn_portable(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t ar, ptrdiff_t ac,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    for (ptrdiff_t i = 0; i < m; i++) {
        float *restrict row = c + i * ldc;
        if (beta == 0) {
            for (ptrdiff_t j = 0; j < n; j++) row[j] = 0;
        } else if (beta != 1) {
            for (ptrdiff_t j = 0; j < n; j++) row[j] *= beta;
        }
        for (ptrdiff_t p = 0; p < k; p++) {
            const float x = a[i * ar + p * ac];
            const float *restrict source = b + p * ldb;
            for (ptrdiff_t j = 0; j < n; j++) row[j] += x * source[j];
        }
    }
}

void maestro_gemm_nt_portable(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *b,
    ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    for (ptrdiff_t i = 0; i < m; i++) {
        for (ptrdiff_t j = 0; j < n; j++) {
            const float *restrict x = a + i * lda, *restrict y = b + j * ldb;
            // Eight partial sums: lets the compiler vectorise without reassociating.
            float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            ptrdiff_t p = 0;
            for (; p + 8 <= k; p += 8) {
                for (int l = 0; l < 8; l++) s[l] += x[p + l] * y[p + l];
            }
            float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            for (; p < k; p++) total += x[p] * y[p];
            c[i * ldc + j] = beta == 0 ? total : beta * c[i * ldc + j] + total;
        }
    }
}

// MARK: - Direct convolution, portable

void maestro_pad_planes(
    const float *source, ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w, ptrdiff_t pad,
    float *target) {
    const ptrdiff_t hp = h + 2 * pad, wp = w + 2 * pad;
    for (ptrdiff_t plane = 0; plane < planes; plane++) {
        const float *from = source + plane * h * w;
        float *to = target + plane * hp * wp;
        for (ptrdiff_t y = 0; y < hp; y++) {
            const ptrdiff_t sy = y - pad;
            for (ptrdiff_t x = 0; x < wp; x++) {
                const ptrdiff_t sx = x - pad;
                to[y * wp + x] = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? from[sy * w + sx] : 0;
            }
        }
    }
}

void maestro_convolve_portable(
    ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t ns, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *w, float *out) {
    const ptrdiff_t oh = hp - k + 1, ow = wp - k + 1;
    for (ptrdiff_t r = 0; r < rs; r++) {
        for (ptrdiff_t n = 0; n < ns; n++) {
            float *plane = out + (r * ns + n) * oh * ow;
            for (ptrdiff_t i = 0; i < oh * ow; i++) plane[i] = 0;
            for (ptrdiff_t oy = 0; oy < oh; oy++) {
                float *restrict row = plane + oy * ow;
                for (ptrdiff_t ky = 0; ky < k; ky++) {
                    for (ptrdiff_t kx = 0; kx < k; kx++) {
                        for (ptrdiff_t c = 0; c < cs; c++) {
                            const float weight = w[(r * k * k + ky * k + kx) * cs + c];
                            const float *restrict source =
                                in + ((c * ns + n) * hp + oy + ky) * wp + kx;
                            for (ptrdiff_t ox = 0; ox < ow; ox++) row[ox] += weight * source[ox];
                        }
                    }
                }
            }
        }
    }
}

void maestro_convolve_filter_gradient_portable(
    ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t ns, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *g, float *gw) {
    const ptrdiff_t oh = hp - k + 1, ow = wp - k + 1;
    for (ptrdiff_t r = 0; r < rs; r++) {
        for (ptrdiff_t ky = 0; ky < k; ky++) {
            for (ptrdiff_t kx = 0; kx < k; kx++) {
                for (ptrdiff_t c = 0; c < cs; c++) {
                    float total = 0;
                    for (ptrdiff_t n = 0; n < ns; n++) {
                        for (ptrdiff_t oy = 0; oy < oh; oy++) {
                            const float *restrict d = g + ((r * ns + n) * oh + oy) * ow;
                            const float *restrict x = in + ((c * ns + n) * hp + oy + ky) * wp + kx;
                            float s = 0;
                            for (ptrdiff_t ox = 0; ox < ow; ox++) s += d[ox] * x[ox];
                            total += s;
                        }
                    }
                    gw[(r * k * k + ky * k + kx) * cs + c] = total;
                }
            }
        }
    }
}

#if MAESTRO_X86

// MARK: - AVX2 + FMA kernels

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 scaled(float beta, const float *c, __m256 sum) {
    return beta == 0 ? sum : _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c), sum);
}

// Rows [0, R) of C over columns [0, 8·V): R·V accumulators, V loads of B and R broadcasts
// of A per step of the inner dimension (R = 6, V = 2 is the 6×16 register tile of BLIS's
// Haswell kernel, without its packing; fewer rows take more columns to keep ≥ 10 FMAs in
// flight).
__attribute__((target("avx2,fma"), always_inline)) static inline void nn_tile(
    const int R, const int V, ptrdiff_t k, const float *a, ptrdiff_t ar, ptrdiff_t ac,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    __m256 acc[6][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = _mm256_setzero_ps();
    for (ptrdiff_t p = 0; p < k; p++) {
        __m256 y[4];
        for (int v = 0; v < V; v++) y[v] = _mm256_loadu_ps(b + 8 * v);
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r * ar);
            for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(x, y[v], acc[r][v]);
        }
        a += ac;
        b += ldb;
    }
    for (int r = 0; r < R; r++) {
        float *q = c + r * ldc;
        for (int v = 0; v < V; v++) _mm256_storeu_ps(q + 8 * v, scaled(beta, q + 8 * v, acc[r][v]));
    }
}

// Columns per tile for R rows (see nn_tile).
static const int tile_vectors[7] = {0, 4, 4, 4, 3, 2, 2};

// Rows [i, i+R) of C, every column: full tiles, then the column tail with portable loops.
__attribute__((target("avx2,fma"))) static void nn_rows(
    const int R, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t ar, ptrdiff_t ac,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    const ptrdiff_t width = 8 * tile_vectors[R], wide = n - n % width;
    for (ptrdiff_t j = 0; j < wide; j += width) {
        switch (R) {
        case 1: nn_tile(1, 4, k, a, ar, ac, b + j, ldb, beta, c + j, ldc); break;
        case 2: nn_tile(2, 4, k, a, ar, ac, b + j, ldb, beta, c + j, ldc); break;
        case 3: nn_tile(3, 4, k, a, ar, ac, b + j, ldb, beta, c + j, ldc); break;
        case 4: nn_tile(4, 3, k, a, ar, ac, b + j, ldb, beta, c + j, ldc); break;
        case 5: nn_tile(5, 2, k, a, ar, ac, b + j, ldb, beta, c + j, ldc); break;
        default: nn_tile(6, 2, k, a, ar, ac, b + j, ldb, beta, c + j, ldc); break;
        }
    }
    if (wide < n) maestro_gemm_nn_portable(R, n - wide, k, a, ar, ac, b + wide, ldb, beta, c + wide, ldc);
}

AVX2 static void gemm_nn_avx2(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t ar, ptrdiff_t ac,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    // Column chunks of 96 (a multiple of every tile width): all rows pass over a chunk of B
    // while it is in L1.
    for (ptrdiff_t j = 0; j < n; j += 96) {
        const ptrdiff_t width = n - j < 96 ? n - j : 96;
        ptrdiff_t i = 0;
        for (; i + 6 <= m; i += 6) {
            nn_rows(6, width, k, a + i * ar, ar, ac, b + j, ldb, beta, c + i * ldc + j, ldc);
        }
        if (i < m) {
            nn_rows(
                (int)(m - i), width, k, a + i * ar, ar, ac, b + j, ldb, beta, c + i * ldc + j,
                ldc);
        }
    }
}

AVX2 static inline float horizontal_sum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

// Adds A·Bᵀ over columns [0, len) of a chunk to C, for A rows [i, i+4) and B rows [j, j+3)
// (rows past the end alias the last real one and their sums are dropped): twelve
// accumulators, seven loads per twelve FMAs.
AVX2 static void nt_tile4x3(
    ptrdiff_t len, ptrdiff_t rows_a, ptrdiff_t rows_b, const float *a, ptrdiff_t lda,
    const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    const float *a0 = a, *a1 = a + (rows_a > 1) * lda, *a2 = a + (rows_a > 2 ? 2 : 0) * lda,
                *a3 = a + (rows_a > 3 ? 3 : 0) * lda;
    const float *b0 = b, *b1 = b + (rows_b > 1) * ldb, *b2 = b + (rows_b > 2 ? 2 : 0) * ldb;
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
    __m256 s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
    const ptrdiff_t vectors = len - len % 8;
    for (ptrdiff_t p = 0; p < vectors; p += 8) {
        const __m256 y0 = _mm256_loadu_ps(b0 + p), y1 = _mm256_loadu_ps(b1 + p),
                     y2 = _mm256_loadu_ps(b2 + p);
        __m256 x;
        x = _mm256_loadu_ps(a0 + p);
        s00 = _mm256_fmadd_ps(x, y0, s00), s01 = _mm256_fmadd_ps(x, y1, s01);
        s02 = _mm256_fmadd_ps(x, y2, s02);
        x = _mm256_loadu_ps(a1 + p);
        s10 = _mm256_fmadd_ps(x, y0, s10), s11 = _mm256_fmadd_ps(x, y1, s11);
        s12 = _mm256_fmadd_ps(x, y2, s12);
        x = _mm256_loadu_ps(a2 + p);
        s20 = _mm256_fmadd_ps(x, y0, s20), s21 = _mm256_fmadd_ps(x, y1, s21);
        s22 = _mm256_fmadd_ps(x, y2, s22);
        x = _mm256_loadu_ps(a3 + p);
        s30 = _mm256_fmadd_ps(x, y0, s30), s31 = _mm256_fmadd_ps(x, y1, s31);
        s32 = _mm256_fmadd_ps(x, y2, s32);
    }
    const __m256 sums[4][3] = {
        {s00, s01, s02}, {s10, s11, s12}, {s20, s21, s22}, {s30, s31, s32}};
    const float *as[4] = {a0, a1, a2, a3}, *bs[3] = {b0, b1, b2};
    for (ptrdiff_t x = 0; x < rows_a; x++) {
        for (ptrdiff_t y = 0; y < rows_b; y++) {
            float s = horizontal_sum(sums[x][y]);
            for (ptrdiff_t p = vectors; p < len; p++) s += as[x][p] * bs[y][p];
            c[x * ldc + y] += s;
        }
    }
}

AVX2 static void gemm_nt_avx2(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *b,
    ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    for (ptrdiff_t i = 0; i < m; i++) {
        for (ptrdiff_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
    }
    // Chunks of the long side small enough that a chunk of all of A's rows stays in L1 and
    // one of B's in L2 while every tile passes over them.
    const ptrdiff_t chunk = 256;
    for (ptrdiff_t p0 = 0; p0 < k; p0 += chunk) {
        const ptrdiff_t len = k - p0 < chunk ? k - p0 : chunk;
        for (ptrdiff_t i = 0; i < m; i += 4) {
            for (ptrdiff_t j = 0; j < n; j += 3) {
                nt_tile4x3(
                    len, m - i < 4 ? m - i : 4, n - j < 3 ? n - j : 3, a + i * lda + p0, lda,
                    b + j * ldb + p0, ldb, c + i * ldc + j, ldc);
            }
        }
    }
}

// MARK: - Direct convolution, AVX2 + FMA

// Output channels [r0, r0+RB) of output rows [oy, oy+RY), columns [x0, x0 + 8·XV):
// RB·RY·XV accumulators (at most 12, so that with the RB broadcast weights and one input
// vector nothing spills). The FMA latency needs ~10 independent accumulators: low ranks
// (RB = 1, 2) take several rows at once instead. Loads run up to 8·XV + k − 1 floats past x0
// in each padded row: past the row's end they read the next row (or the slack), and those
// lanes are never stored.
__attribute__((target("avx2,fma"), always_inline)) static inline void convolve_tile(
    const int RB, const int RY, const int XV, ptrdiff_t cs, ptrdiff_t ns, ptrdiff_t hp,
    ptrdiff_t wp, ptrdiff_t k, const float *in, const float *w, ptrdiff_t r0, ptrdiff_t n,
    ptrdiff_t oy, ptrdiff_t x0, ptrdiff_t valid, float *out, ptrdiff_t oh, ptrdiff_t ow) {
    __m256 acc[3][4][4];
    for (int a = 0; a < RB; a++)
        for (int y = 0; y < RY; y++)
            for (int v = 0; v < XV; v++) acc[a][y][v] = _mm256_setzero_ps();
    for (ptrdiff_t c = 0; c < cs; c++) {
        for (ptrdiff_t ky = 0; ky < k; ky++) {
            const float *row = in + ((c * ns + n) * hp + oy + ky) * wp + x0;
            const float *tap = w + (r0 * k * k + ky * k) * cs + c;
            for (ptrdiff_t kx = 0; kx < k; kx++) {
                __m256 weight[3];
                for (int a = 0; a < RB; a++)
                    weight[a] = _mm256_broadcast_ss(tap + a * k * k * cs + kx * cs);
                for (int y = 0; y < RY; y++) {
                    for (int v = 0; v < XV; v++) {
                        const __m256 x = _mm256_loadu_ps(row + y * wp + kx + 8 * v);
                        for (int a = 0; a < RB; a++)
                            acc[a][y][v] = _mm256_fmadd_ps(weight[a], x, acc[a][y][v]);
                    }
                }
            }
        }
    }
    for (int a = 0; a < RB; a++) {
        for (int y = 0; y < RY; y++) {
            float *target = out + (((r0 + a) * ns + n) * oh + oy + y) * ow + x0;
            if (valid == 8 * XV) {
                for (int v = 0; v < XV; v++) _mm256_storeu_ps(target + 8 * v, acc[a][y][v]);
            } else {
                float lanes[32];
                for (int v = 0; v < XV; v++) _mm256_storeu_ps(lanes + 8 * v, acc[a][y][v]);
                for (ptrdiff_t i = 0; i < valid; i++) target[i] = lanes[i];
            }
        }
    }
}

#define CONVOLVE_CASE(RB, RY, XV)                                                          \
    case ((RB) * 8 + (RY)) * 8 + (XV):                                                     \
        convolve_tile(RB, RY, XV, cs, ns, hp, wp, k, in, w, r0, n, oy, x0, valid, out, oh, \
                      ow);                                                                 \
        break;

__attribute__((target("avx2,fma"))) static void convolve_avx2(
    ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t ns, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *w, float *out) {
    const ptrdiff_t oh = hp - k + 1, ow = wp - k + 1;
    for (ptrdiff_t n = 0; n < ns; n++) {
        for (ptrdiff_t x0 = 0; x0 < ow; x0 += 32) {
            const ptrdiff_t valid = ow - x0 < 32 ? ow - x0 : 32;
            const int xv = (int)((valid + 7) / 8);
            for (ptrdiff_t r0 = 0; r0 < rs; r0 += 3) {
                const int rb = rs - r0 < 3 ? (int)(rs - r0) : 3;
                // As many rows as keep the accumulators at 12 or fewer (at most 4).
                int rows = 12 / (rb * xv);
                rows = rows > 4 ? 4 : rows;
                for (ptrdiff_t oy = 0; oy < oh; oy += rows) {
                    const int ry = oh - oy < rows ? (int)(oh - oy) : rows;
                    switch ((rb * 8 + ry) * 8 + xv) {
                    CONVOLVE_CASE(1, 1, 1) CONVOLVE_CASE(1, 2, 1) CONVOLVE_CASE(1, 3, 1) CONVOLVE_CASE(1, 4, 1) \
                    CONVOLVE_CASE(1, 1, 2) CONVOLVE_CASE(1, 2, 2) CONVOLVE_CASE(1, 3, 2) CONVOLVE_CASE(1, 4, 2) \
                    CONVOLVE_CASE(1, 1, 3) CONVOLVE_CASE(1, 2, 3) CONVOLVE_CASE(1, 3, 3) CONVOLVE_CASE(1, 4, 3) \
                    CONVOLVE_CASE(1, 1, 4) CONVOLVE_CASE(1, 2, 4) CONVOLVE_CASE(1, 3, 4) CONVOLVE_CASE(1, 4, 4) \
                    CONVOLVE_CASE(2, 1, 1) CONVOLVE_CASE(2, 2, 1) CONVOLVE_CASE(2, 3, 1) CONVOLVE_CASE(2, 4, 1) \
                    CONVOLVE_CASE(2, 1, 2) CONVOLVE_CASE(2, 2, 2) CONVOLVE_CASE(2, 3, 2) CONVOLVE_CASE(2, 4, 2) \
                    CONVOLVE_CASE(2, 1, 3) CONVOLVE_CASE(2, 2, 3) CONVOLVE_CASE(2, 3, 3) CONVOLVE_CASE(2, 4, 3) \
                    CONVOLVE_CASE(2, 1, 4) CONVOLVE_CASE(2, 2, 4) CONVOLVE_CASE(2, 3, 4) CONVOLVE_CASE(2, 4, 4) \
                    CONVOLVE_CASE(3, 1, 1) CONVOLVE_CASE(3, 2, 1) CONVOLVE_CASE(3, 3, 1) CONVOLVE_CASE(3, 4, 1) \
                    CONVOLVE_CASE(3, 1, 2) CONVOLVE_CASE(3, 2, 2) CONVOLVE_CASE(3, 3, 2) CONVOLVE_CASE(3, 4, 2) \
                    CONVOLVE_CASE(3, 1, 3) CONVOLVE_CASE(3, 2, 3) CONVOLVE_CASE(3, 3, 3) CONVOLVE_CASE(3, 4, 3) \
                    CONVOLVE_CASE(3, 1, 4) CONVOLVE_CASE(3, 2, 4) CONVOLVE_CASE(3, 3, 4) CONVOLVE_CASE(3, 4, 4)
                    }
                }
            }
        }
    }
}

// The filter gradient for output channels [r0, r0+RB) and kernel columns [kx0, kx0+KB) of
// kernel row ky and input channel c: RB·KB accumulators; each gradient vector is loaded
// once and used for all KB columns.
//
// A row's tail (ow mod 8 columns) takes no masked loads (vmaskmovps measured ~7× slower on
// AMD Zen here, and a per-row bounds branch cost half of what it saved). With SHIFTED
// (ow ≥ 8), the tail is the row's last 8 columns, loaded in bounds, with the lanes already
// summed cleared in the gradient vector. Narrower rows copy the tail of each gradient row
// into a zero-filled vector, and clear the input lanes past the row's end.
__attribute__((target("avx2,fma"), always_inline)) static inline void filter_gradient_tile(
    const int RB, const int KB, const int SHIFTED, ptrdiff_t cs, ptrdiff_t ns, ptrdiff_t hp,
    ptrdiff_t wp, ptrdiff_t k, const float *in, const float *g, ptrdiff_t r0, ptrdiff_t c,
    ptrdiff_t ky, ptrdiff_t kx0, float *gw) {
    const ptrdiff_t oh = hp - k + 1, ow = wp - k + 1;
    const ptrdiff_t full = ow - ow % 8, rest = ow % 8;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // SHIFTED: lanes ≥ 8 − rest are the tail's; else lanes < rest are.
    const __m256 mask = SHIFTED
        ? _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)(7 - rest))))
        : _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), lane));
    __m256 acc[2][5];
    for (int a = 0; a < RB; a++)
        for (int b = 0; b < KB; b++) acc[a][b] = _mm256_setzero_ps();
    for (ptrdiff_t n = 0; n < ns; n++) {
        for (ptrdiff_t oy = 0; oy < oh; oy++) {
            const float *row = in + ((c * ns + n) * hp + oy + ky) * wp + kx0;
            const float *d[2];
            for (int a = 0; a < RB; a++) d[a] = g + (((r0 + a) * ns + n) * oh + oy) * ow;
            for (ptrdiff_t x = 0; x < full; x += 8) {
                __m256 dv[2];
                for (int a = 0; a < RB; a++) dv[a] = _mm256_loadu_ps(d[a] + x);
                for (int b = 0; b < KB; b++) {
                    const __m256 xv = _mm256_loadu_ps(row + x + b);
                    for (int a = 0; a < RB; a++) acc[a][b] = _mm256_fmadd_ps(dv[a], xv, acc[a][b]);
                }
            }
            if (rest && SHIFTED) {
                const ptrdiff_t x = ow - 8;
                __m256 dv[2];
                for (int a = 0; a < RB; a++) dv[a] = _mm256_and_ps(_mm256_loadu_ps(d[a] + x), mask);
                for (int b = 0; b < KB; b++) {
                    const __m256 xv = _mm256_loadu_ps(row + x + b);
                    for (int a = 0; a < RB; a++) acc[a][b] = _mm256_fmadd_ps(dv[a], xv, acc[a][b]);
                }
            } else if (rest) {
                // Past the row's end: the next padded row or the planes' slack.
                __m256 dv[2];
                for (int a = 0; a < RB; a++) {
                    float tail[8] = {0};
                    for (ptrdiff_t i = 0; i < rest; i++) tail[i] = d[a][i];
                    dv[a] = _mm256_loadu_ps(tail);
                }
                for (int b = 0; b < KB; b++) {
                    const __m256 xv = _mm256_and_ps(_mm256_loadu_ps(row + b), mask);
                    for (int a = 0; a < RB; a++) acc[a][b] = _mm256_fmadd_ps(dv[a], xv, acc[a][b]);
                }
            }
        }
    }
    for (int a = 0; a < RB; a++) {
        for (int b = 0; b < KB; b++) {
            gw[((r0 + a) * k * k + ky * k + kx0 + b) * cs + c] = horizontal_sum(acc[a][b]);
        }
    }
}

#define GRADIENT_CASE(RB, KB)                                                                    \
    case (RB) * 8 + (KB):                                                                        \
        if (shifted)                                                                             \
            filter_gradient_tile(RB, KB, 1, cs, ns, hp, wp, k, in, g, r0, c, ky, kx0, gw);       \
        else                                                                                     \
            filter_gradient_tile(RB, KB, 0, cs, ns, hp, wp, k, in, g, r0, c, ky, kx0, gw);       \
        break;

__attribute__((target("avx2,fma"))) static void convolve_filter_gradient_avx2(
    ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t ns, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *g, float *gw) {
    const int shifted = wp - k + 1 >= 8;
    for (ptrdiff_t r0 = 0; r0 < rs; r0 += 2) {
        const int rb = rs - r0 < 2 ? (int)(rs - r0) : 2;
        for (ptrdiff_t c = 0; c < cs; c++) {
            for (ptrdiff_t ky = 0; ky < k; ky++) {
                for (ptrdiff_t kx0 = 0; kx0 < k; kx0 += 5) {
                    const int kb = k - kx0 < 5 ? (int)(k - kx0) : 5;
                    switch (rb * 8 + kb) {
                        GRADIENT_CASE(1, 1) GRADIENT_CASE(1, 2) GRADIENT_CASE(1, 3)
                        GRADIENT_CASE(1, 4) GRADIENT_CASE(1, 5) GRADIENT_CASE(2, 1)
                        GRADIENT_CASE(2, 2) GRADIENT_CASE(2, 3) GRADIENT_CASE(2, 4)
                        GRADIENT_CASE(2, 5)
                    }
                }
            }
        }
    }
}

static int vectorized;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void detect(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return;
    const int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    if (!(fma && osxsave && avx)) return;
    // The operating system must save the YMM registers (XCR0 bits 1 and 2).
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return;
    vectorized = (ebx >> 5) & 1;
}

int maestro_kernels_vectorized(void) {
    pthread_once(&once, detect);
    return vectorized;
}

#else

int maestro_kernels_vectorized(void) { return 0; }

#endif

void maestro_gemm_nn(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t a_row, ptrdiff_t a_column,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return;
#if MAESTRO_X86
    if (maestro_kernels_vectorized()) {
        gemm_nn_avx2(m, n, k, a, a_row, a_column, b, ldb, beta, c, ldc);
        return;
    }
#endif
    maestro_gemm_nn_portable(m, n, k, a, a_row, a_column, b, ldb, beta, c, ldc);
}

void maestro_gemm_nt(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *b,
    ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return;
#if MAESTRO_X86
    if (maestro_kernels_vectorized()) {
        gemm_nt_avx2(m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    maestro_gemm_nt_portable(m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void maestro_convolve(
    ptrdiff_t r, ptrdiff_t c, ptrdiff_t n, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *w, float *out) {
    if (r <= 0 || n <= 0 || hp < k || wp < k) return;
#if MAESTRO_X86
    if (maestro_kernels_vectorized()) {
        convolve_avx2(r, c, n, hp, wp, k, in, w, out);
        return;
    }
#endif
    maestro_convolve_portable(r, c, n, hp, wp, k, in, w, out);
}

void maestro_convolve_filter_gradient(
    ptrdiff_t r, ptrdiff_t c, ptrdiff_t n, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *g, float *gw) {
    if (r <= 0 || c <= 0 || k <= 0) return;
#if MAESTRO_X86
    if (maestro_kernels_vectorized() && hp >= k && wp >= k) {
        convolve_filter_gradient_avx2(r, c, n, hp, wp, k, in, g, gw);
        return;
    }
#endif
    maestro_convolve_filter_gradient_portable(r, c, n, hp, wp, k, in, g, gw);
}
