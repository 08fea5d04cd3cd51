/* Checks the board's cblas_sgemm (tools/board/blas.c) against plain loops in double precision:
 * every transposition, alpha and beta of 1, 0 and others, odd shapes, leading dimensions wider
 * than the matrices. tools/package-client runs it before linking the board client, on the
 * machine (and so the kernels: AVX2+FMA or portable) it builds for.
 *
 *   clang -O2 -I Sources/CKernels/include -I Sources/CBLAS tools/board/blas-check.c \
 *       tools/board/blas.c Sources/CKernels/kernels.c -o blas-check && ./blas-check
 *
 * Prints one line per failing case and exits 1, or prints the count of cases and exits 0.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shim.h" /* -I Sources/CBLAS */


static uint64_t state = 0x5EED;

/* A uniform deviate in [-1, 1) from a fixed-seed xorshift generator. */
static float uniform(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (float)((double)(state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *random_matrix(int rows, int stride) {
    float *x = malloc(sizeof(float) * (size_t)(rows > 0 ? rows : 1) * (size_t)stride);
    for (int i = 0; i < rows * stride; i++) x[i] = uniform();
    return x;
}

/* Returns 1 when the case agrees within 1e-4·√k·4 of the operands' unit scale (the bound of
 * BLASKernel.sgemmMatchesReference) and padding columns of C are untouched. */
static int check(int ta, int tb, int m, int n, int k, float alpha, float beta) {
    const int pad = 3;
    const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    float *a = random_matrix(ta ? k : m, lda), *b = random_matrix(tb ? n : k, ldb);
    float *c = random_matrix(m, ldc);
    double *expected = malloc(sizeof(double) * (size_t)(m > 0 ? m : 1) * (size_t)ldc);
    for (int i = 0; i < m * ldc; i++) expected[i] = c[i];
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0;
            for (int p = 0; p < k; p++) {
                sum += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                       (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
            }
            const double old = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            expected[i * ldc + j] = old + (double)alpha * sum;
        }
    }
    cblas_sgemm(
        CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
        alpha, a, lda, b, ldb, beta, c, ldc);
    const double tolerance = 1e-4 * sqrt((double)(k > 0 ? k : 1)) * 4 * (fabs(alpha) + 1);
    int good = 1;
    for (int i = 0; i < m && good; i++) {
        for (int j = 0; j < ldc; j++) {
            const double error = fabs((double)c[i * ldc + j] - expected[i * ldc + j]);
            if (!(error <= (j < n ? tolerance : 0.0))) {
                printf(
                    "cblas_sgemm %c%c m %d n %d k %d alpha %g beta %g: C[%d][%d] = %.7g, "
                    "expected %.7g\n",
                    ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, beta, i, j,
                    c[i * ldc + j], expected[i * ldc + j]);
                good = 0;
                break;
            }
        }
    }
    free(a);
    free(b);
    free(c);
    free(expected);
    return good;
}

int main(void) {
    const int shapes[][3] = {
        {1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {129, 96, 200}, {64, 300, 784}, {6, 1000, 25},
        {3, 7, 0}, {0, 4, 5}};
    const float scalars[][2] = {{1, 0}, {1, 1}, {0.5f, 0}, {-2, 0.25f}};
    int cases = 0, failed = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                for (size_t x = 0; x < sizeof scalars / sizeof scalars[0]; x++) {
                    cases++;
                    failed += !check(
                        ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], scalars[x][0],
                        scalars[x][1]);
                }
            }
        }
    }
    if (failed) {
        printf("%d of %d cblas_sgemm cases failed\n", failed, cases);
        return 1;
    }
    printf("cblas_sgemm: %d cases agree with plain loops\n", cases);
    return 0;
}
