/* Sparse-input gradient of a stack of tied toy models; interplab.toy_native compiles and loads it.

   A model of width d computes z = s ⊙ (A x + b) with A = WᵀW (F × F, symmetric) and is trained
   towards a scaled target t: L = Σ_b ‖ReLU(z_b) − t_b‖² / B. Written in A, the batch work is two
   products with the sparse input x (a feature is 0 with probability α), whatever d is. Per sample b:

       z_b = s ⊙ b + Σ_{k : x_bk ≠ 0} x_bk · D[k, :]          D = A · diag(s)
       g_b = (z_b − t_b) where z_b > 0, else 0
       P[k, :] += x_bk · g_b   for each k with x_bk ≠ 0

   so the work is ∝ the nonzeros of x, not B·F. The caller turns P into ∂L/∂W = W(Q + Qᵀ) with
   Q = (2/B)·P·diag(s), and Σ_b g_b into ∂L/∂b.

   Columns are processed in slabs of up to 4 vectors of 16 floats (F padded to Fp, a multiple of
   16, with zero columns). Several slabs (models) share one sweep over the samples, so each
   nonzero of x is read once per group and z of the whole group stays in vector registers.

   Every loop runs in a fixed order, so results are bit-for-bit repeatable on one machine. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

typedef float vf __attribute__((vector_size(64)));
typedef float vfu __attribute__((vector_size(64), aligned(4)));
typedef int vi __attribute__((vector_size(64)));

#define LANES 16
#define MAX_NV 4        /* vectors per slab: 64 columns */
#define MAX_REGS 12     /* accumulators per group (slabs × vectors); the other registers feed them */
#define UNROLL _Pragma("GCC unroll 12")  /* loops over a group's registers: fully, or z spills to memory */

static inline vf load(const float *p) { return *(const vfu *)p; }
static inline void store(float *p, vf v) { *(vfu *)p = v; }

/* One seed's input (x in CSR order) and scaled target. */
struct seed_data {
    int B, F, Fp;
    const int *row_start, *row_idx;   /* nonzeros of sample b: row_idx/row_val[row_start[b] .. row_start[b + 1]) */
    const float *row_val;
    const float *target;              /* [B, Fp] */
    int measure;                      /* whether to sum the loss */
};

/* A group of slabs with the same vector count: slab q covers columns col[q] .. col[q] + 16·nv. */
struct group {
    int n;
    const float *decoder[MAX_REGS];   /* D rows start here, row stride Fp */
    const float *bias[MAX_REGS];
    float *outer[MAX_REGS];           /* P rows start here, row stride Fp */
    float *grad_sum[MAX_REGS];
    double *loss[MAX_REGS];
    int col[MAX_REGS];
};

static inline __attribute__((always_inline)) void group_impl(const struct group *g, const struct seed_data *d,
                                                             const int NV, const int MB) {
    const int B = d->B, F = d->F, Fp = d->Fp;
    vf sums[MAX_REGS], losses[MAX_REGS];
    UNROLL
    for (int q = 0; q < MB; q++) {
        losses[q] = (vf){0};
        UNROLL
        for (int j = 0; j < NV; j++) sums[q * NV + j] = (vf){0};
        for (int k = 0; k < F; k++) memset(g->outer[q] + (size_t)k * Fp, 0, sizeof(vf) * NV);
    }
    for (int b = 0; b < B; b++) {
        const int first = d->row_start[b], last = d->row_start[b + 1];
        vf acc[MAX_REGS];
        UNROLL
        for (int q = 0; q < MB; q++)
            UNROLL
            for (int j = 0; j < NV; j++) acc[q * NV + j] = load(g->bias[q] + LANES * j);
        for (int e = first; e < last; e++) {
            const size_t row = (size_t)d->row_idx[e] * Fp;
            const float v = d->row_val[e];
            UNROLL
            for (int q = 0; q < MB; q++)
                UNROLL
                for (int j = 0; j < NV; j++) acc[q * NV + j] += v * load(g->decoder[q] + row + LANES * j);
        }
        const float *t = d->target + (size_t)b * Fp;
        UNROLL
        for (int q = 0; q < MB; q++)
            UNROLL
            for (int j = 0; j < NV; j++) {  /* acc turns from z into g */
                const vf tv = load(t + g->col[q] + LANES * j);
                const vi active = acc[q * NV + j] > 0.0f;
                const vf grad = (vf)((vi)(acc[q * NV + j] - tv) & active);
                if (d->measure) {
                    const vf err = (vf)((vi)grad | ((vi)(-tv) & ~active));  /* ReLU(z) − t */
                    losses[q] += err * err;
                }
                sums[q * NV + j] += grad;
                acc[q * NV + j] = grad;
            }
        for (int e = first; e < last; e++) {
            const size_t row = (size_t)d->row_idx[e] * Fp;
            const float v = d->row_val[e];
            UNROLL
            for (int q = 0; q < MB; q++)
                UNROLL
                for (int j = 0; j < NV; j++) {
                    float *p = g->outer[q] + row + LANES * j;
                    store(p, load(p) + v * acc[q * NV + j]);
                }
        }
    }
    UNROLL
    for (int q = 0; q < MB; q++) {
        double total = 0.0;
        for (int i = 0; i < LANES; i++) total += losses[q][i];
        *g->loss[q] += total;
        UNROLL
        for (int j = 0; j < NV; j++) store(g->grad_sum[q] + LANES * j, sums[q * NV + j]);
    }
}

typedef void (*group_fn)(const struct group *, const struct seed_data *);

#define GROUP(NV, MB) \
    static void group_##NV##_##MB(const struct group *g, const struct seed_data *d) { group_impl(g, d, NV, MB); }
GROUP(1, 1) GROUP(1, 2) GROUP(1, 3) GROUP(1, 4) GROUP(1, 5) GROUP(1, 6)
GROUP(1, 7) GROUP(1, 8) GROUP(1, 9) GROUP(1, 10) GROUP(1, 11) GROUP(1, 12)
GROUP(2, 1) GROUP(2, 2) GROUP(2, 3) GROUP(2, 4) GROUP(2, 5) GROUP(2, 6)
GROUP(3, 1) GROUP(3, 2) GROUP(3, 3) GROUP(3, 4)
GROUP(4, 1) GROUP(4, 2) GROUP(4, 3)

static const group_fn GROUP_FNS[MAX_NV][MAX_REGS] = {
    {group_1_1, group_1_2, group_1_3, group_1_4, group_1_5, group_1_6, group_1_7, group_1_8, group_1_9,
     group_1_10, group_1_11, group_1_12},
    {group_2_1, group_2_2, group_2_3, group_2_4, group_2_5, group_2_6},
    {group_3_1, group_3_2, group_3_3, group_3_4},
    {group_4_1, group_4_2, group_4_3},
};

/* x in CSR order from 32-bit random words: u = (w >> 8)·2⁻²⁴ is numpy's float32 uniform from the
   same words, and x = (u − α) / keep_share where u > α, else 0. Branch-free: at α ≈ 0.8 a branch
   per entry mispredicts often. row_idx and row_val need 16 entries of slack past B·F. */
static void build_rows(const uint32_t *words, int B, int F, float alpha, float keep_share, int *row_start,
                       int *row_idx, float *row_val) {
    const float unit = 1.0f / 16777216.0f;
    int n = 0;
    for (int b = 0; b < B; b++) {
        const uint32_t *wb = words + (size_t)b * F;
        row_start[b] = n;
#ifdef __AVX512F__
        const __m512 va = _mm512_set1_ps(alpha), vs = _mm512_set1_ps(keep_share), vu = _mm512_set1_ps(unit);
        const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int k = 0; k < F; k += LANES) {
            const __mmask16 valid = F - k >= LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << (F - k)) - 1);
            const __m512i w = _mm512_srli_epi32(_mm512_maskz_loadu_epi32(valid, wb + k), 8);
            const __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(w), vu);
            const __mmask16 keep = _mm512_mask_cmp_ps_mask(valid, u, va, _CMP_GT_OQ);
            const __m512 x = _mm512_div_ps(_mm512_sub_ps(u, va), vs);
            _mm512_storeu_ps(row_val + n, _mm512_maskz_compress_ps(keep, x));
            const __m512i index = _mm512_add_epi32(lane, _mm512_set1_epi32(k));
            _mm512_storeu_si512(row_idx + n, _mm512_maskz_compress_epi32(keep, index));
            n += __builtin_popcount(keep);
        }
#else
        for (int k = 0; k < F; k++) {
            const float u = (float)(wb[k] >> 8) * unit;
            row_idx[n] = k;
            row_val[n] = (u - alpha) / keep_share;
            n += u > alpha;
        }
#endif
    }
    row_start[B] = n;
}

/* Scaled targets of every sample: the teacher's s ⊙ ReLU(A_T x + b_T), or s ⊙ x. */
static void fill_target(const struct seed_data *d, const float *teacher, const float *teacher_bias,
                        const float *scale, float *target) {
    const int B = d->B, Fp = d->Fp;
    for (int b = 0; b < B; b++) {
        float *t = target + (size_t)b * Fp;
        if (!teacher) {
            memset(t, 0, sizeof(float) * Fp);
            for (int e = d->row_start[b]; e < d->row_start[b + 1]; e++)
                t[d->row_idx[e]] = scale[d->row_idx[e]] * d->row_val[e];
            continue;
        }
        for (int c = 0; c < Fp; c += LANES) {
            vf acc = load(teacher_bias + c);
            for (int e = d->row_start[b]; e < d->row_start[b + 1]; e++)
                acc += d->row_val[e] * load(teacher + (size_t)d->row_idx[e] * Fp + c);
            store(t + c, (vf)((vi)acc & (acc > 0.0f)));
        }
    }
}

/* Gradient pieces for S seeds × M models.
   words: S blocks of word_stride uint32 each, the first B·F of a block the seed's batch, drawn
   as x above (interplab.toy.FeatureStream turns the same words into the same x).
   decoder [S, M, F, Fp] = A·diag(s), zero-padded; bias [S, M, Fp] = s ⊙ b; teacher [S, F, Fp] and
   teacher_bias [S, Fp] likewise for the teacher, or NULL for the direct target s ⊙ x (scale [Fp]).
   Writes outer [S, M, F, Fp] = P, grad_sum [S, M, Fp] = Σ_b g_b and loss [S, M] = Σ_b ‖ReLU(z_b) − t_b‖² / B
   (zero unless `measure`: the loss is a third of the elementwise work and most steps do not record it).
   Returns 0, or −1 when scratch memory is short. */
int toy_sparse_grad(const uint32_t *words, long word_stride, float alpha, float keep_share, const float *teacher,
                    const float *teacher_bias, const float *scale, const float *decoder, const float *bias,
                    int S, int M, int B, int F, int Fp, int measure, float *outer, float *grad_sum, float *loss) {
    const int nv_total = Fp / LANES;
    const size_t entries = (size_t)B * F + LANES;  /* slack for build_rows' full-vector stores */
    int *row_start = malloc(sizeof(int) * (B + 1)), *row_idx = malloc(sizeof(int) * entries);
    float *row_val = malloc(sizeof(float) * entries);
    float *target = aligned_alloc(64, sizeof(vf) * (size_t)B * nv_total);
    double *loss_sum = calloc((size_t)S * M, sizeof(double));
    int status = 0;
    if (!row_start || !row_idx || !row_val || !target || !loss_sum) {
        status = -1;
        goto done;
    }
    for (int s = 0; s < S; s++) {
        build_rows(words + (size_t)s * word_stride, B, F, alpha, keep_share, row_start, row_idx, row_val);
        const struct seed_data d = {B, F, Fp, row_start, row_idx, row_val, target, measure};
        fill_target(&d, teacher ? teacher + (size_t)s * F * Fp : NULL, teacher ? teacher_bias + (size_t)s * Fp : NULL,
                    scale, target);
        /* Slabs: full 4-vector blocks of every model first, then each model's remainder block, so
           a group's slabs all have the same width; each group fills as many registers as it can. */
        for (int pass = 0; pass < 2; pass++) {
            const int nv = pass == 0 ? MAX_NV : nv_total % MAX_NV;
            const int blocks = pass == 0 ? nv_total / MAX_NV : (nv > 0);
            if (blocks == 0) continue;
            struct group g = {0};
            for (int m = 0; m < M; m++)
                for (int blk = 0; blk < blocks; blk++) {
                    const int col = pass == 0 ? blk * MAX_NV * LANES : (nv_total - nv) * LANES;
                    const size_t sm = (size_t)s * M + m;
                    g.decoder[g.n] = decoder + sm * F * Fp + col;
                    g.bias[g.n] = bias + sm * Fp + col;
                    g.outer[g.n] = outer + sm * F * Fp + col;
                    g.grad_sum[g.n] = grad_sum + sm * Fp + col;
                    g.loss[g.n] = loss_sum + sm;
                    g.col[g.n] = col;
                    if (++g.n == MAX_REGS / nv || (m == M - 1 && blk == blocks - 1)) {
                        GROUP_FNS[nv - 1][g.n - 1](&g, &d);
                        g.n = 0;
                    }
                }
        }
    }
    for (size_t i = 0; i < (size_t)S * M; i++) loss[i] = (float)(loss_sum[i] / B);
done:
    free(row_start); free(row_idx); free(row_val); free(target); free(loss_sum);
    return status;
}
