/* The BLAS entry points Maestro calls, for the board client only (tools/package-client).
 *
 * Debian's static OpenBLAS is built for every x86 (or ARM) core at once: its dispatch tables
 * pull every kernel of every precision into a static executable (about 20 MB), where the
 * client calls one routine, single-precision GEMM. The board build links this file, as
 * `libopenblas.a`, instead: `cblas_sgemm` runs on Maestro's own matrix kernels (CKernels:
 * AVX2+FMA where the CPU has them, portable C elsewhere, as on ARM boards), single-threaded
 * as every maestro process runs BLAS. LAPACK's `sgesdd_` (the SVD of a model's first
 * initialisation, which only a coordinator does) comes from Debian's reference LAPACK.
 *
 * Only the layouts Maestro uses are offered: row-major operands. Anything else is refused
 * on standard error and leaves C unchanged, as reference BLAS's argument checks do.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "CKernels.h" /* -I Sources/CKernels/include */
#include "shim.h"     /* -I Sources/CBLAS: the declarations Tensors calls */



/* C = beta·C + op(A)·op(B), row-major, through the kernels (transposing B when both
 * operands are transposed). Returns 0, or -1 when out of memory. */
static int product(
    int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a,
    ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    /* op(A)(i, p) is a[i·lda + p], or a[p·lda + i] transposed. */
    const ptrdiff_t a_row = trans_a ? 1 : lda, a_column = trans_a ? lda : 1;
    if (!trans_b) {
        maestro_gemm_nn(m, n, k, a, a_row, a_column, b, ldb, beta, c, ldc);
        return 0;
    }
    if (!trans_a) {
        maestro_gemm_nt(m, n, k, a, lda, b, ldb, beta, c, ldc);
        return 0;
    }
    float *bt = malloc(sizeof(float) * (size_t)k * (size_t)n);
    if (!bt) return -1;
    for (ptrdiff_t j = 0; j < n; j++) {
        for (ptrdiff_t p = 0; p < k; p++) bt[p * n + j] = b[j * ldb + p];
    }
    maestro_gemm_nn(m, n, k, a, a_row, a_column, bt, n, beta, c, ldc);
    free(bt);
    return 0;
}

void cblas_sgemm(
    enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, int m,
    int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
    float *c, int ldc) {
    if (order != CblasRowMajor || m < 0 || n < 0 || k < 0) {
        fprintf(stderr, "maestro: cblas_sgemm: only row-major products of sizes >= 0 "
                        "(order %d, m %d, n %d, k %d)\n", (int)order, m, n, k);
        return;
    }
    if (m == 0 || n == 0) return;
    const int ta = trans_a == CblasTrans, tb = trans_b == CblasTrans;
    if (alpha == 1.0f && k > 0) {
        if (product(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc) == 0) return;
        fprintf(stderr, "maestro: cblas_sgemm: out of memory (%d×%d×%d)\n", m, n, k);
        return;
    }
    /* C = beta·C + alpha·T with T = op(A)·op(B) computed on its own. */
    float *t = malloc(sizeof(float) * (size_t)m * (size_t)n);
    if (!t) {
        fprintf(stderr, "maestro: cblas_sgemm: out of memory (%d×%d×%d)\n", m, n, k);
        return;
    }
    if (k > 0) {
        if (product(ta, tb, m, n, k, a, lda, b, ldb, 0.0f, t, n) != 0) {
            fprintf(stderr, "maestro: cblas_sgemm: out of memory (%d×%d×%d)\n", m, n, k);
            free(t);
            return;
        }
    } else {
        for (ptrdiff_t x = 0; x < (ptrdiff_t)m * n; x++) t[x] = 0.0f;
    }
    for (ptrdiff_t i = 0; i < m; i++) {
        for (ptrdiff_t j = 0; j < n; j++) {
            float *cij = c + i * ldc + j;
            *cij = (beta == 0.0f ? 0.0f : beta * *cij) + alpha * t[i * n + j];
        }
    }
    free(t);
}

/* The kernels are single-threaded, as every maestro process asks BLAS to be. */
void openblas_set_num_threads(int threads) { (void)threads; }

char *openblas_get_corename(void) {
    return maestro_kernels_vectorized() ? "maestro-avx2" : "maestro-portable";
}

char *openblas_get_config(void) {
    return "Maestro board kernels (CKernels sgemm, reference LAPACK), single-threaded";
}
