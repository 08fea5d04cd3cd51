// Matrix products at the shapes of small-channel convolutions, where BLAS cannot pay off:
// one side has a few rows (channels, ranks) and the other tens of thousands of columns
// (positions). No packing: the long side is streamed in place.
#pragma once

#include <stddef.h>

/// C = β·C + A·B. C is `m×n` (row stride `ldc`), B is `k×n` row-major (row stride `ldb`),
/// and A's element (i, p) is at `a[i·a_row + p·a_column]`, so Aᵀ needs no copy. With β = 0,
/// C is not read (it may hold garbage).
void maestro_gemm_nn(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t a_row, ptrdiff_t a_column,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);

/// C = β·C + A·Bᵀ: a reduction over the long side. A is `m×k` (row stride `lda`), B is `n×k`
/// (row stride `ldb`), C is `m×n` (row stride `ldc`). With β = 0, C is not read.
void maestro_gemm_nt(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *b,
    ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);

/// 1 when the AVX2+FMA kernels run on this CPU, 0 when the portable ones do.
int maestro_kernels_vectorized(void);

/// Copies `planes` planes of `h×w` floats into planes of `(h+2·pad)×(w+2·pad)`, the input
/// at offset (pad, pad) and zeros around it (a negative `pad` crops). The direct
/// convolutions below read from such padded planes.
void maestro_pad_planes(
    const float *source, ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w, ptrdiff_t pad,
    float *target);

/// Floats the direct convolutions may read past the end of their padded input (its last
/// row's vector tail); allocate and zero them.
#define MAESTRO_DIRECT_SLACK 64

/// Direct convolution, stride 1, on channel-major data, for few output channels:
/// out[r][n][oy][ox] = Σ_{ky,kx,c} w[(r·k·k + ky·k + kx)·C + c] · in[c][n][oy+ky][ox+kx],
/// `in` being `C×N` padded planes of `hp×wp` (see `maestro_pad_planes`) and `out` `R×N`
/// planes of `(hp−k+1)×(wp−k+1)`.
void maestro_convolve(
    ptrdiff_t r, ptrdiff_t c, ptrdiff_t n, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *w, float *out);

/// The filter gradient of `maestro_convolve`:
/// gw[(r·k·k + ky·k + kx)·C + c] = Σ_{n,oy,ox} g[r][n][oy][ox] · in[c][n][oy+ky][ox+kx].
void maestro_convolve_filter_gradient(
    ptrdiff_t r, ptrdiff_t c, ptrdiff_t n, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *g, float *gw);

/// The portable versions of the four kernels above (what an ARM board runs), callable on any
/// CPU so that tests on x86 cover them too.
void maestro_gemm_nn_portable(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t a_row, ptrdiff_t a_column,
    const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);
void maestro_gemm_nt_portable(
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, const float *b,
    ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc);
void maestro_convolve_portable(
    ptrdiff_t r, ptrdiff_t c, ptrdiff_t n, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *w, float *out);
void maestro_convolve_filter_gradient_portable(
    ptrdiff_t r, ptrdiff_t c, ptrdiff_t n, ptrdiff_t hp, ptrdiff_t wp, ptrdiff_t k,
    const float *in, const float *g, float *gw);

/// Double-precision sums over `n` floats: `*sum = Σ (a[i] − mean)` and
/// `*second = Σ (a[i] − mean)·b[i]`, or `Σ (a[i] − mean)²` when `b` is NULL. A fixed order
/// (eight partial sums, see reductions.c): the vectorized and the portable (`portable` ≠ 0)
/// versions give the same bits.
void maestro_double_sums(
    const float *a, const float *b, ptrdiff_t n, double mean, double *sum, double *second,
    int portable);

/// Group normalisation's backward sums over one plane of `n` floats, in double precision and
/// the order of `maestro_double_sums`: `*sum = Σ d[i]` and `*dot = Σ d[i]·x̂[i]`, where
/// `x̂[i] = (x[i] − mean)·inverse` is recomputed in single precision (the bits the forward
/// pass normalised with) and `d[i]` is `dy[i]`, or 0 where `gate[i] ≤ 0` when `gate` is not
/// NULL (the output of a ReLU run fused after the normalisation).
void maestro_normalized_sums(
    const float *dy, const float *gate, const float *x, ptrdiff_t n, float mean, float inverse,
    double *sum, double *dot, int portable);
