/* One step of deep linear scalar-output networks, in one pass over each layer: plain gradient
 * descent (step), or AdaGrad, AdaDelta or Adam (adaptive_step, with optim.h's rules).
 *
 * The step in torch ops reads every layer three times and writes it once (backward chain, rank-1
 * update, forward chain), each pass over all runs' layers, which do not fit in cache. Here each
 * run is done whole by one thread: the backward chain and the update share one pass over a layer
 * (a row is read, dotted with c, updated, written), and the forward chain on the new weights then
 * reads the run's layers from cache.
 *
 * Numbers do not depend on the machine or on how runs are split between threads: sums run in a
 * fixed order (LANES partial sums, then a fixed tree) and the build turns off fused multiply-add
 * contraction, so vector and scalar code round alike.
 *
 * Layout, for R runs and N layers of sizes dims[0] = d, dims[1..N−1] = widths, dims[N] = 1:
 *   W[j]   (R, dims[j+1], dims[j])  layer j+1 of every run, row-major
 *   A[j]   (R, dims[j])             A[N] = 1, A[j] = A[j+1]·W[j], so A[0] = W_N⋯W_1 = W_e
 *   g      (R, d)                   ∇L¹(W_e), the depth-1 gradient
 *   scale  (R)                      −η per run;  decay (R) or NULL: 1 − ηλ per run
 *   work   (R, 2·max dims)          scratch for the backward chain
 * Runs are split between OpenMP threads. Built with -fopenmp and loaded into a process that has
 * torch, it uses torch's own OpenMP runtime (same soname, libgomp.so.1) and so its threads and
 * torch.set_num_threads(): a second runtime's threads would fight torch's for the cores. */

#include "lanes.h"
#include "optim.h"

#define DEFINE_KERNELS(T, SUFFIX)                                                                  \
static void forward_run_##SUFFIX(long r, long N, const long *dims, T *const *W, T *const *A) {    \
    for (long j = N - 1; j >= 0; j--) {                                                            \
        long rows = dims[j + 1], cols = dims[j];                                                   \
        const T *Wr = W[j] + r * rows * cols, *a = A[j + 1] + r * rows;                            \
        T *out = A[j] + r * cols;                                                                  \
        for (long k = 0; k < cols; k++) out[k] = 0;                                                \
        for (long i = 0; i < rows; i++) {                                                          \
            const T *row = Wr + i * cols;                                                          \
            T ai = a[i];                                                                           \
            for (long k = 0; k < cols; k++) out[k] += ai * row[k];                                 \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static void descend_run_##SUFFIX(long r, long N, const long *dims, T *const *W, T *const *A,      \
                                 const T *g, T scale, T decay, T *c, T *c_next) {                  \
    for (long k = 0; k < dims[0]; k++) c[k] = g[r * dims[0] + k];                                  \
    for (long j = 0; j < N; j++) {                                                                 \
        long rows = dims[j + 1], cols = dims[j];                                                   \
        T *Wr = W[j] + r * rows * cols;                                                            \
        const T *a = A[j + 1] + r * rows;                                                          \
        for (long i = 0; i < rows; i++) {                                                          \
            T *row = Wr + i * cols;                                                                \
            T step = scale * a[i];                                                                 \
            T p[LANES(T)] = {0};                                                                   \
            long k = 0;                                                                            \
            for (; k + LANES(T) <= cols; k += LANES(T))                                            \
                for (int l = 0; l < LANES(T); l++) {                                               \
                    p[l] += row[k + l] * c[k + l]; /* c_{j+1} = W_j c_j, before the update */      \
                    row[k + l] = row[k + l] * decay + step * c[k + l];                             \
                }                                                                                  \
            for (; k < cols; k++) {                                                                \
                p[k % LANES(T)] += row[k] * c[k];                                                  \
                row[k] = row[k] * decay + step * c[k];                                             \
            }                                                                                      \
            for (int half = LANES(T) / 2; half > 0; half /= 2)                                     \
                for (int l = 0; l < half; l++) p[l] += p[l + half];                                \
            c_next[i] = p[0];                                                                      \
        }                                                                                          \
        T *t = c; c = c_next; c_next = t;                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* One step of AdaGrad, AdaDelta or Adam (optim.h's rules) on run r: the backward chain and the   \
 * update share one pass over each layer as in descend_run (a row is dotted with c_j, then each   \
 * entry takes its gradient a_j[i]·c_j[k] through the rule), then the forward chain. S1[j], S2[j]:  \
 * the rule's moments of layer j (R, dims[j+1], dims[j]); S2 unused by AdaGrad. */                 \
static void adaptive_run_##SUFFIX(long r, long N, const long *dims, T *const *W, T *const *A,     \
                                  const T *g, int rule, T lr, const double *k, T *const *S1,      \
                                  T *const *S2, T *c, T *c_next) {                                 \
    for (long q = 0; q < dims[0]; q++) c[q] = g[r * dims[0] + q];                                  \
    for (long j = 0; j < N; j++) {                                                                 \
        long rows = dims[j + 1], cols = dims[j], offset = r * rows * cols;                         \
        const T *a = A[j + 1] + r * rows;                                                          \
        for (long i = 0; i < rows; i++) {                                                          \
            T *row = W[j] + offset + i * cols;                                                     \
            if (j + 1 < N) c_next[i] = dot_##SUFFIX(row, c, cols); /* before the update */        \
            rule_row_##SUFFIX(rule, cols, row, S1[j] + offset + i * cols,                          \
                              S2 ? S2[j] + offset + i * cols : 0, a[i], c, lr, k);                 \
        }                                                                                          \
        T *t = c; c = c_next; c_next = t;                                                          \
    }                                                                                              \
    forward_run_##SUFFIX(r, N, dims, W, A);                                                        \
}                                                                                                  \
                                                                                                   \
void adaptive_step_##SUFFIX(long R, long N, const long *dims, T *const *W, T *const *A,           \
                            const T *g, int rule, const T *lr, const double *k, T *const *S1,     \
                            T *const *S2, T *work) {                                               \
    long widest = 0;                                                                               \
    for (long j = 0; j <= N; j++) widest = dims[j] > widest ? dims[j] : widest;                    \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) {                                                                 \
        T *c = work + r * 2 * widest;                                                              \
        adaptive_run_##SUFFIX(r, N, dims, W, A, g, rule, lr[r], k, S1, S2, c, c + widest);         \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
void forward_##SUFFIX(long R, long N, const long *dims, T *const *W, T *const *A) {               \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) forward_run_##SUFFIX(r, N, dims, W, A);                           \
}                                                                                                  \
                                                                                                   \
void step_##SUFFIX(long R, long N, const long *dims, T *const *W, T *const *A,                    \
                   const T *g, const T *scale, const T *decay, T *work) {                          \
    long widest = 0;                                                                               \
    for (long j = 0; j <= N; j++) widest = dims[j] > widest ? dims[j] : widest;                    \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) {                                                                 \
        T *c = work + r * 2 * widest;                                                              \
        descend_run_##SUFFIX(r, N, dims, W, A, g, scale[r], decay ? decay[r] : (T)1, c, c + widest); \
        forward_run_##SUFFIX(r, N, dims, W, A);                                                    \
    }                                                                                              \
}

DEFINE_KERNELS(double, f64)
DEFINE_KERNELS(float, f32)
