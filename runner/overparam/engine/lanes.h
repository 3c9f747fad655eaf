/* The one summation order of the CPU kernels (fused_step.c, data_pass.c, end_to_end.c).
 *
 * A dot product of length d keeps LANES partial sums (one 64-byte vector's worth: 8 doubles, 16
 * floats): entry k goes to lane k % LANES, in increasing k; the lanes are then added in a fixed
 * tree (l += l + LANES/2, then l += l + LANES/4, …). The kernels are built without fused
 * multiply-add contraction, so vector and scalar code round alike and the result is the same on
 * every instruction set. Kernels that fuse other work into the same pass (fused_step.c's
 * descend_run, data_pass.c's dots) keep this order by hand. */

#ifndef OVERPARAM_LANES_H
#define OVERPARAM_LANES_H

#define LANES(T) ((int)(64 / sizeof(T)))

#define DEFINE_DOT(T, SUFFIX)                                                                      \
static inline T dot_##SUFFIX(const T *a, const T *b, long d) {                                     \
    T p[LANES(T)] = {0};                                                                           \
    long k = 0;                                                                                    \
    for (; k + LANES(T) <= d; k += LANES(T))                                                       \
        for (int l = 0; l < LANES(T); l++) p[l] += a[k + l] * b[k + l];                            \
    for (; k < d; k++) p[k % LANES(T)] += a[k] * b[k];                                             \
    for (int half = LANES(T) / 2; half > 0; half /= 2)                                             \
        for (int l = 0; l < half; l++) p[l] += p[l + half];                                        \
    return p[0];                                                                                   \
}

DEFINE_DOT(double, f64)
DEFINE_DOT(float, f32)

#endif
