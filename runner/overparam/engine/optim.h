/* The adaptive optimizers' rules for one entry, in torch.optim's order of operations
 * (engine/optim.py has the same maths in torch ops). torch's own element-wise kernels round
 * differently with and without AVX2 (fused multiply-adds, vectorised sqrt and division), so a run's
 * numbers would depend on the CPU; here every operation is one IEEE operation, built without FMA
 * contraction. `g` is the entry's gradient before weight decay, which is torch.optim's: g + λ·p.
 * fused_step.c's adaptive_step applies them to every entry of a deep net, fed `k`, the rule's
 * constants in the order optim.py's `scalars` gives them after λ:
 *   AdaGrad   k = {λ, eps}
 *   AdaDelta  k = {λ, ρ, eps}
 *   Adam      k = {λ, β1, β2, eps, bc1 = 1 − β1^t, bc2 = √(1 − β2^t)}  (one step count for all runs)
 *   Adam ε̂   the same k, TensorFlow 1's form: α = lr·bc2/bc1, P −= (m·α)/(√v + ε̂) */

#ifndef OVERPARAM_OPTIM_H
#define OVERPARAM_OPTIM_H

#include <math.h>

enum { RULE_ADAGRAD = 1, RULE_ADADELTA = 2, RULE_ADAM = 3, RULE_ADAM_HAT = 4 };

/* Each rule's constants, read from k once per row: k could alias the weights (both double), so a \
 * loop that read k[·] inside would neither hoist them nor vectorise. */                          \
#define DEFINE_RULES(T, SUFFIX)                                                                    \
static inline T decayed_##SUFFIX(T g, T p, T wd, int decays) { return decays ? g + wd * p : g; }  \
                                                                                                   \
static inline void adagrad_row_##SUFFIX(long cols, T *P, T *S, T ai, const T *c, T lr,            \
                                        const double *k) {                                         \
    const int decays = k[0] != 0;                                                                  \
    const T wd = (T)k[0], eps = (T)k[1];                                                           \
    for (long q = 0; q < cols; q++) {                                                              \
        T g = decayed_##SUFFIX(ai * c[q], P[q], wd, decays);                                       \
        S[q] = S[q] + g * g;                                                                       \
        T std = (T)sqrt(S[q]) + eps;                                                               \
        P[q] = P[q] - lr * (g / std);                                                              \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static inline void adadelta_row_##SUFFIX(long cols, T *P, T *Sq, T *Acc, T ai, const T *c, T lr,  \
                                         const double *k) {                                        \
    const int decays = k[0] != 0;                                                                  \
    const T wd = (T)k[0], keep = (T)k[1], take = (T)(1.0 - k[1]), eps = (T)k[2];                   \
    for (long q = 0; q < cols; q++) {                                                              \
        T g = decayed_##SUFFIX(ai * c[q], P[q], wd, decays);                                       \
        Sq[q] = Sq[q] * keep + take * g * g;                                                       \
        T std = (T)sqrt(Sq[q] + eps);                                                              \
        T delta = (T)sqrt(Acc[q] + eps) / std * g;                                                 \
        Acc[q] = Acc[q] * keep + take * delta * delta;                                             \
        P[q] = P[q] - lr * delta;                                                                  \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* m.lerp_(g, 1 − β1) as torch computes lerp: m + w(g − m) for w < 0.5, else g − (g − m)(1 − w). */ \
static inline void adam_row_##SUFFIX(long cols, T *P, T *M, T *V, T ai, const T *c, T lr,         \
                                     const double *k) {                                            \
    const int decays = k[0] != 0;                                                                  \
    const T wd = (T)k[0], w = (T)(1.0 - k[1]), keep = (T)k[2], take = (T)(1.0 - k[2]);             \
    const T eps = (T)k[3], bc2 = (T)k[5], step_size = lr / (T)k[4];                                \
    if (w < (T)0.5)                                                                                \
        for (long q = 0; q < cols; q++) {                                                          \
            T g = decayed_##SUFFIX(ai * c[q], P[q], wd, decays);                                   \
            M[q] = M[q] + w * (g - M[q]);                                                          \
            V[q] = V[q] * keep + take * g * g;                                                     \
            T denom = (T)sqrt(V[q]) / bc2 + eps;                                                   \
            P[q] = P[q] - ((T)1 / denom) * M[q] * step_size;                                       \
        }                                                                                          \
    else                                                                                           \
        for (long q = 0; q < cols; q++) {                                                          \
            T g = decayed_##SUFFIX(ai * c[q], P[q], wd, decays);                                   \
            M[q] = g - (g - M[q]) * ((T)1 - w);                                                    \
            V[q] = V[q] * keep + take * g * g;                                                     \
            T denom = (T)sqrt(V[q]) / bc2 + eps;                                                   \
            P[q] = P[q] - ((T)1 / denom) * M[q] * step_size;                                       \
        }                                                                                          \
}                                                                                                  \
                                                                                                   \
/* TensorFlow 1's AdamOptimizer: the moments as above, then α = lr·bc2/bc1 (per run) and        \
 * P −= (m·α)/(√v + ε̂): ε̂ is added before the bias correction. */                                 \
static inline void adam_hat_row_##SUFFIX(long cols, T *P, T *M, T *V, T ai, const T *c, T lr,     \
                                         const double *k) {                                        \
    const int decays = k[0] != 0;                                                                  \
    const T wd = (T)k[0], w = (T)(1.0 - k[1]), keep = (T)k[2], take = (T)(1.0 - k[2]);             \
    const T eps = (T)k[3], alpha = lr * (T)k[5] / (T)k[4];                                         \
    for (long q = 0; q < cols; q++) {                                                              \
        T g = decayed_##SUFFIX(ai * c[q], P[q], wd, decays);                                       \
        M[q] = w < (T)0.5 ? M[q] + w * (g - M[q]) : g - (g - M[q]) * ((T)1 - w);                   \
        V[q] = V[q] * keep + take * g * g;                                                         \
        P[q] = P[q] - M[q] * alpha / ((T)sqrt(V[q]) + eps);                                        \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* One row of a layer: P[q] takes the rule with gradient a_i·c[q], for every column q. */        \
static inline void rule_row_##SUFFIX(int rule, long cols, T *P, T *S1, T *S2, T ai, const T *c,   \
                                     T lr, const double *k) {                                      \
    if (rule == RULE_ADAGRAD) adagrad_row_##SUFFIX(cols, P, S1, ai, c, lr, k);                     \
    else if (rule == RULE_ADADELTA) adadelta_row_##SUFFIX(cols, P, S1, S2, ai, c, lr, k);          \
    else if (rule == RULE_ADAM) adam_row_##SUFFIX(cols, P, S1, S2, ai, c, lr, k);                  \
    else adam_hat_row_##SUFFIX(cols, P, S1, S2, ai, c, lr, k);                                     \
}

DEFINE_RULES(double, f64)
DEFINE_RULES(float, f32)

#endif
