/* Depth-1 models moved by other rules than gradient descent, one run per row, in a fixed order
 * of operations (so a run's numbers depend on nothing but the run, whatever the CPU, the thread
 * count or the runs beside it; sums as in lanes.h, no FMA contraction):
 *   rule12_step: the end-to-end rule (12) of a depth-N network (engine/end_to_end.py),
 *     w ← decay·w − η ‖w‖^{2−2/N} (g + (N−1)·(g·w/‖w‖²) w),   decay = 1 − ηλN;
 *   warmup_step: §3's warm-up form of GD on w = w₁·ω₂ (engine/models.py, WarmupForm).
 * ‖w‖^{2−2/N} is the C library's pow(), as portable as that library. */

#include <math.h>

#include "lanes.h"

#define DEFINE_END_TO_END(T, SUFFIX)                                                               \
void rule12_step_##SUFFIX(long R, long d, T *W, const T *G, const T *lr, const T *decay, long N) { \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) {                                                                 \
        T *w = W + r * d;                                                                          \
        const T *g = G + r * d;                                                                    \
        T norm_sq = dot_##SUFFIX(w, w, d), along = dot_##SUFFIX(g, w, d);                          \
        T coef = norm_sq > 0 ? along / norm_sq : 0; /* Pr_w(g) = 0 where w = 0 */                 \
        T factor = (T)pow((double)norm_sq, 1.0 - 1.0 / (double)N), others = (T)(N - 1);            \
        for (long k = 0; k < d; k++) {                                                             \
            T direction = factor * (g[k] + others * (coef * w[k]));                                \
            w[k] = w[k] * decay[r] - lr[r] * direction;                                            \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* ∂L/∂ω₂ = g·w/ω₂;  w ← w − ηω₂² g − (η ∂L/∂ω₂/ω₂) w;  ω₂ ← ω₂ − η ∂L/∂ω₂. */                      \
void warmup_step_##SUFFIX(long R, long d, T *W, T *omega, const T *G, const T *lr) {               \
    _Pragma("omp parallel for schedule(static)")                                                   \
    for (long r = 0; r < R; r++) {                                                                 \
        T *w = W + r * d;                                                                          \
        const T *g = G + r * d;                                                                    \
        T d_omega = dot_##SUFFIX(g, w, d) / omega[r];                                              \
        T rho = lr[r] * (omega[r] * omega[r]), gamma = lr[r] * d_omega / omega[r];                 \
        for (long k = 0; k < d; k++) w[k] = (w[k] - rho * g[k]) - gamma * w[k];                    \
        omega[r] -= lr[r] * d_omega;                                                               \
    }                                                                                              \
}

DEFINE_END_TO_END(double, f64)
DEFINE_END_TO_END(float, f32)
