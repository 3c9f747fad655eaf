/* The adaptive optimizers' updates, element by element in torch.optim's order of operations
 * (engine/optim.py has the same maths in torch ops). torch's own element-wise kernels round
 * differently with and without AVX2 (fused multiply-adds, vectorised sqrt and division), so a run's
 * numbers would depend on the CPU; here every operation is one IEEE operation, built without FMA
 * contraction. Each run r has `n` entries and its own learning rate lr[r]; weight decay is
 * torch.optim's, g + λ·p. */

#include <math.h>

#define DEFINE_OPTIMIZERS(T, SUFFIX)                                                               \
void adagrad_update_##SUFFIX(long R, long n, T *P, const T *G, T *S, const T *lr,                 \
                             double wd, double eps) {                                              \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++)                                                                   \
        for (long i = r * n; i < (r + 1) * n; i++) {                                               \
            T g = wd != 0 ? G[i] + (T)wd * P[i] : G[i];                                            \
            S[i] = S[i] + g * g;                                                                   \
            T std = (T)sqrt(S[i]) + (T)eps;                                                        \
            P[i] = P[i] - lr[r] * (g / std);                                                       \
        }                                                                                          \
}                                                                                                  \
                                                                                                   \
void adadelta_update_##SUFFIX(long R, long n, T *P, const T *G, T *Sq, T *Acc, const T *lr,       \
                              double wd, double rho, double eps) {                                 \
    const T keep = (T)rho, take = (T)(1.0 - rho);                                                  \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++)                                                                   \
        for (long i = r * n; i < (r + 1) * n; i++) {                                               \
            T g = wd != 0 ? G[i] + (T)wd * P[i] : G[i];                                            \
            Sq[i] = Sq[i] * keep + take * g * g;                                                   \
            T std = (T)sqrt(Sq[i] + (T)eps);                                                       \
            T delta = (T)sqrt(Acc[i] + (T)eps) / std * g;                                          \
            Acc[i] = Acc[i] * keep + take * delta * delta;                                         \
            P[i] = P[i] - lr[r] * delta;                                                           \
        }                                                                                          \
}                                                                                                  \
                                                                                                   \
/* m.lerp_(g, 1 − β1) as torch computes lerp: m + w(g − m) for w < 0.5, else g − (g − m)(1 − w).  \
 * bc1 = 1 − β1^t and bc2 = √(1 − β2^t) come from the caller (one step count for all runs). */     \
void adam_update_##SUFFIX(long R, long n, T *P, const T *G, T *M, T *V, const T *lr, double wd,   \
                          double beta1, double beta2, double eps, double bc1, double bc2) {        \
    const T w = (T)(1.0 - beta1), keep = (T)beta2, take = (T)(1.0 - beta2);                        \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) {                                                                 \
        T step_size = lr[r] / (T)bc1;                                                              \
        for (long i = r * n; i < (r + 1) * n; i++) {                                               \
            T g = wd != 0 ? G[i] + (T)wd * P[i] : G[i];                                            \
            M[i] = w < (T)0.5 ? M[i] + w * (g - M[i]) : g - (g - M[i]) * ((T)1 - w);               \
            V[i] = V[i] * keep + take * g * g;                                                     \
            T denom = (T)sqrt(V[i]) / (T)bc2 + (T)eps;                                             \
            P[i] = P[i] - ((T)1 / denom) * M[i] * step_size;                                       \
        }                                                                                          \
    }                                                                                              \
}

DEFINE_OPTIMIZERS(double, f64)
DEFINE_OPTIMIZERS(float, f32)
