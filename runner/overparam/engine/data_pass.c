/* The pass over the data of ℓp regression, owned here so that its numbers are the same on every
 * CPU: BLAS libraries pick their summation order by vendor, instruction set and thread count
 * (MKL's reproducible mode is not honoured on every CPU), and the data pass feeds every step.
 *
 * For R runs w_r (rows of W, R × d) and data X (n × d, row-major), y (n):
 *   r_ri = x_i·w_r − y_i,   L_r = (1/n) Σ_i |r_ri|^p,   g_r = scale · Σ_i |r_ri|^{p−1} sign(r_ri) x_i
 * with scale = p/n (the step loop's ∇L¹). One pass over X per block of BLOCK runs: each row is
 * read once, dotted with the block's weights, and added into the block's gradients while it is in
 * L1. Every sum runs in a fixed order: dot products over LANES partial sums then a fixed tree (as
 * in lanes.h), the gradient over i in row order, the loss over i in row order in double. The
 * build turns off fused multiply-add contraction. Runs are split between OpenMP threads by whole
 * runs, so neither the thread count nor the block a run falls in changes its numbers.
 *
 * p: integer p ≥ 2 is taken by repeated multiplication (exact IEEE operations, the same on every
 * machine); any other p calls the C library's pow(), which is as portable as that library. */

#include <math.h>
#include <string.h>

#include "lanes.h"

#define BLOCK 4  /* runs per pass over the data (dots and accumulate are written out for 4) */
#define ROWS 16  /* rows per chunk: a chunk stays in L1 between the dot products and the gradient */

/* Half of LANES as one 32-byte vector (GCC/Clang vector extensions: element-wise IEEE operations, \
 * lowered to whatever vector width the CPU has, so the numbers do not depend on it). */          \
#define DEFINE_DATA_PASS(T, SUFFIX)                                                                \
typedef T V_##SUFFIX __attribute__((vector_size(32)));                                             \
static inline V_##SUFFIX load_##SUFFIX(const T *from) {                                            \
    V_##SUFFIX v;                                                                                  \
    memcpy(&v, from, sizeof v);                                                                    \
    return v;                                                                                      \
}                                                                                                  \
static inline void store_##SUFFIX(T *to, V_##SUFFIX v) { memcpy(to, &v, sizeof v); }               \
                                                                                                   \
/* x·w_q for the BLOCK = 4 weights at once (x is loaded once for all), each in dot()'s order: the \
 * LANES partial sums are two half vectors, lo (lanes 0…LANES/2−1) and hi. Named accumulators,  \
 * not an array: GCC keeps an array of vectors on the stack. */                                   \
static void dots_##SUFFIX(const T *x, T *const *w, long d, T *out) {                               \
    const T *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];                                        \
    const int H = LANES(T) / 2;                                                                    \
    V_##SUFFIX l0 = {0}, l1 = {0}, l2 = {0}, l3 = {0}, h0 = {0}, h1 = {0}, h2 = {0}, h3 = {0};      \
    long k = 0;                                                                                    \
    for (; k + LANES(T) <= d; k += LANES(T)) {                                                     \
        V_##SUFFIX xl = load_##SUFFIX(x + k), xh = load_##SUFFIX(x + k + H);                       \
        l0 += xl * load_##SUFFIX(w0 + k); h0 += xh * load_##SUFFIX(w0 + k + H);                    \
        l1 += xl * load_##SUFFIX(w1 + k); h1 += xh * load_##SUFFIX(w1 + k + H);                    \
        l2 += xl * load_##SUFFIX(w2 + k); h2 += xh * load_##SUFFIX(w2 + k + H);                    \
        l3 += xl * load_##SUFFIX(w3 + k); h3 += xh * load_##SUFFIX(w3 + k + H);                    \
    }                                                                                              \
    V_##SUFFIX lo[BLOCK] = {l0, l1, l2, l3}, hi[BLOCK] = {h0, h1, h2, h3};                         \
    for (int q = 0; q < BLOCK; q++) {                                                              \
        if (k < d) { /* d not a multiple of LANES: the tail goes to lane j % LANES */              \
            T p[LANES(T)];                                                                         \
            for (int l = 0; l < H; l++) p[l] = lo[q][l], p[l + H] = hi[q][l];                      \
            for (long j = k; j < d; j++) p[j % LANES(T)] += x[j] * w[q][j];                        \
            for (int l = 0; l < H; l++) lo[q][l] = p[l], hi[q][l] = p[l + H];                      \
        }                                                                                          \
        V_##SUFFIX t = lo[q] + hi[q]; /* the tree's first level, p[l] += p[l + H] */               \
        for (int half = H / 2; half > 0; half /= 2)                                                \
            for (int l = 0; l < half; l++) t[l] += t[l + half];                                    \
        out[q] = t[0];                                                                             \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* |r|^m · sign(r) for the integer m = p − 1 (r·r·r for p = 4, as torch's pow(3)), or via pow()  \
 * when p is not an integer (m < 0). */                                                           \
static T signed_power_##SUFFIX(T r, int m, double p) {                                             \
    if (m < 0) return (T)copysign(pow(fabs((double)r), p - 1.0), (double)r);                       \
    T factor = m % 2 == 1 ? r : (T)fabs((double)r), t = r;                                         \
    for (int q = 1; q < m; q++) t *= factor;                                                       \
    return t;                                                                                      \
}                                                                                                  \
                                                                                                   \
/* G_q += Σ_{i in chunk} s_qi x_i for the BLOCK runs: per entry, the chunk's sum in row order     \
 * from zero, then added to G (so the order is fixed by ROWS alone). */                           \
static void accumulate_##SUFFIX(const T *X, long rows, long d, T s[BLOCK][ROWS], T *const *G) {   \
    const int H = LANES(T) / 2;                                                                    \
    long k0 = 0;                                                                                   \
    for (; k0 + 2 * H <= d; k0 += 2 * H) { /* two half vectors: eight independent sums */          \
        V_##SUFFIX a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};  \
        for (long i = 0; i < rows; i++) {                                                          \
            V_##SUFFIX xa = load_##SUFFIX(X + i * d + k0), xb = load_##SUFFIX(X + i * d + k0 + H);  \
            a0 += s[0][i] * xa; b0 += s[0][i] * xb;                                                \
            a1 += s[1][i] * xa; b1 += s[1][i] * xb;                                                \
            a2 += s[2][i] * xa; b2 += s[2][i] * xb;                                                \
            a3 += s[3][i] * xa; b3 += s[3][i] * xb;                                                \
        }                                                                                          \
        V_##SUFFIX sums[2 * BLOCK] = {a0, a1, a2, a3, b0, b1, b2, b3};                             \
        for (int q = 0; q < BLOCK; q++) {                                                          \
            store_##SUFFIX(G[q] + k0, load_##SUFFIX(G[q] + k0) + sums[q]);                         \
            store_##SUFFIX(G[q] + k0 + H, load_##SUFFIX(G[q] + k0 + H) + sums[BLOCK + q]);         \
        }                                                                                          \
    }                                                                                              \
    for (long k = k0; k < d; k++)                                                                  \
        for (int q = 0; q < BLOCK; q++) {                                                          \
            T acc = 0;                                                                             \
            for (long i = 0; i < rows; i++) acc += s[q][i] * X[i * d + k];                         \
            G[q][k] += acc;                                                                        \
        }                                                                                          \
}                                                                                                  \
                                                                                                   \
void lp_pass_##SUFFIX(long R, long n, long d, const T *X, const T *y, const T *W, double p,       \
                      T scale, int with_loss, T *G, double *loss, T *scratch) {                    \
    int m = (p == floor(p) && p >= 2 && p <= 64) ? (int)p - 1 : -1;                                \
    long blocks = (R + BLOCK - 1) / BLOCK;                                                         \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long blk = 0; blk < blocks; blk++) {                                                      \
        /* A block short of BLOCK runs fills up with dummy runs in its scratch rows: every run's \
         * numbers are computed alone, so they do not change the others. */                       \
        long r0 = blk * BLOCK, b = R - r0 < BLOCK ? R - r0 : BLOCK;                                \
        T *w[BLOCK], *g[BLOCK], *spare = scratch + blk * 2 * BLOCK * d;                            \
        for (int q = 0; q < BLOCK; q++) {                                                          \
            w[q] = q < b ? (T *)W + (r0 + q) * d : spare + q * d;                                  \
            g[q] = q < b ? G + (r0 + q) * d : spare + (BLOCK + q) * d;                             \
            if (q >= b) memset(w[q], 0, (size_t)d * sizeof(T));                                    \
            memset(g[q], 0, (size_t)d * sizeof(T));                                                \
        }                                                                                          \
        double total[BLOCK] = {0};                                                                 \
        T s[BLOCK][ROWS], dots[BLOCK];                                                             \
        for (long i0 = 0; i0 < n; i0 += ROWS) {                                                    \
            long rows = n - i0 < ROWS ? n - i0 : ROWS;                                             \
            for (long i = 0; i < rows; i++) {                                                      \
                dots_##SUFFIX(X + (i0 + i) * d, w, d, dots);                                       \
                for (int q = 0; q < BLOCK; q++) {                                                  \
                    T r = dots[q] - y[i0 + i];                                                     \
                    s[q][i] = signed_power_##SUFFIX(r, m, p);                                      \
                    if (with_loss) total[q] += m >= 0 ? (double)(s[q][i] * r) : pow(fabs((double)r), p); \
                }                                                                                  \
            }                                                                                      \
            accumulate_##SUFFIX(X + i0 * d, rows, d, s, g);                                        \
        }                                                                                          \
        for (long q = 0; q < b; q++) {                                                             \
            for (long k = 0; k < d; k++) g[q][k] *= scale;                                         \
            if (with_loss) loss[r0 + q] = total[q] / (double)n;                                    \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* ℓ2 through the moments, G = XᵀX/n (d × d, symmetric), b = Xᵀy/n, c = yᵀy/n:                   \
 * L_r = w_r·(G w_r − 2b) + c,  g_r = 2(G w_r − b). O(d²) per run. */                             \
void gram_pass_##SUFFIX(long R, long d, const T *Gm, const T *bm, T c, const T *W,                 \
                        int with_loss, T *G, double *loss) {                                       \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) {                                                                 \
        const T *w = W + r * d;                                                                    \
        T *g = G + r * d;                                                                          \
        for (long k = 0; k < d; k++) g[k] = dot_##SUFFIX(Gm + k * d, w, d); /* G w */              \
        if (with_loss) {                                                                           \
            T p[LANES(T)] = {0};                                                                   \
            for (long k = 0; k < d; k++) p[k % LANES(T)] += w[k] * (g[k] - (T)2 * bm[k]);          \
            for (int half = LANES(T) / 2; half > 0; half /= 2)                                     \
                for (int l = 0; l < half; l++) p[l] += p[l + half];                                \
            loss[r] = (double)(p[0] + c);                                                          \
        }                                                                                          \
        for (long k = 0; k < d; k++) g[k] = (T)2 * (g[k] - bm[k]);                                 \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* The moments of the data for gram_pass: sums over i in row order, then divided by n. */        \
void moments_##SUFFIX(long n, long d, const T *X, const T *y, T *Gm, T *bm, T *c) {               \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long j = 0; j < d; j++) {                                                                 \
        T *row = Gm + j * d;                                                                       \
        for (long k = 0; k < d; k++) row[k] = 0;                                                   \
        for (long i = 0; i < n; i++) {                                                             \
            T xij = X[i * d + j];                                                                  \
            for (long k = 0; k < d; k++) row[k] += xij * X[i * d + k];                             \
        }                                                                                          \
        for (long k = 0; k < d; k++) row[k] /= (T)n;                                               \
    }                                                                                              \
    for (long k = 0; k < d; k++) bm[k] = 0;                                                        \
    T yy = 0;                                                                                      \
    for (long i = 0; i < n; i++) {                                                                 \
        for (long k = 0; k < d; k++) bm[k] += y[i] * X[i * d + k];                                 \
        yy += y[i] * y[i];                                                                         \
    }                                                                                              \
    for (long k = 0; k < d; k++) bm[k] /= (T)n;                                                    \
    *c = yy / (T)n;                                                                                \
}

DEFINE_DATA_PASS(double, f64)
DEFINE_DATA_PASS(float, f32)
