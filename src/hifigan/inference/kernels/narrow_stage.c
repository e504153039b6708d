/* Multi-receptive-field fusion for the generator's narrow (few-channel), full-rate stages.
 *
 * Why this file exists: oneDNN vectorises a convolution over its channels. With 8 or 16
 * channels most lanes of an AVX-512 register stay idle, and its dilated kernels are slower
 * still (docs/inference.md measures 15-45% of the fp32 peak on those stages). Here the time
 * axis is the vector axis: each register block holds 8 output channels x 3 vectors of time,
 * so every lane does useful work whatever the channel count.
 *
 * Layout: activations are float32 [C][stride] arrays (time contiguous). Inside a stage, a
 * tile of L positions sits at a fixed offset of each scratch row with zeros on both sides, so
 * "same" padding needs no bounds checks: each tile is computed as a sequence of its own, and
 * its halo (the stage's receptive field) makes the kept centre exact, as in fast.py.
 *
 * Threads: the tiles of a stage are independent, so each thread takes every n-th tile with
 * scratch of its own; nothing is shared but the read-only input and disjoint output columns.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef __AVX512F__
#define VL 16
#else
#define VL 8
#endif
#define COB 8 /* output channels per register block */
#define TB 3  /* vectors of time per register block */
#define BLOCK (VL * TB)
#define TB1 8 /* vectors of time per block of a single-output convolution (conv_post) */
#define SLACK (BLOCK > VL * TB1 ? BLOCK : VL * TB1) /* a last block reads this far past L */

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int vi __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));

/* One convolution, weights packed as [ceil(cout / 8)][cin][k][8] (zeros past cout). */
typedef struct {
    const float *w;
    const float *b;
    int cin, cout, k, d, p;
} hg_conv;

/* One stage: input x -> out, n positions each. A tensor is either channels-first ([C][n], time
 * contiguous) or, with its *_cl flag set, channels-last ([n][C], channels contiguous: the
 * layout oneDNN's upsampling convolutions read and write fastest). */
typedef struct {
    const float *x;
    int x_cl;
    float *out;
    int out_cl;
    long n;
    const hg_conv *convs; /* nblocks * per_block convolutions, block by block */
    int nblocks, per_block, resblock1, channels;
    const hg_conv *post; /* conv_post after the last stage, else NULL */
    long tile, past, future;
    float slope, post_slope;
    int nthreads;
} hg_stage;

static inline vf lrelu_v(vf v, float slope)
{
    vf s = v * slope;
    vi keep = v > s; /* max(v, slope * v) is leaky ReLU for 0 < slope < 1 */
    return (vf)(((vi)v & keep) | ((vi)s & ~keep));
}

/* y[co][t] = b[co] + sum_{ci,j} w[co][ci][j] x[ci][t + j*d - p] (+ r[co][t]), then leaky ReLU
 * if lrelu; acc[co][t] += y[co][t] if acc. t in [0, L); every row has stride s. r may be y.
 * Inlined with k a constant for the common kernel sizes: unrolling the tap loop is worth
 * 5-25% (more for k = 3). */
static inline __attribute__((always_inline)) void
conv_body(const hg_conv *c, const int k, const float *x, float *y, const float *r, float *acc,
          long s, long L, int lrelu, float slope)
{
    const int cin = c->cin, d = c->d;
    for (int cb = 0; cb < c->cout; cb += COB) {
        const float *wb = c->w + (long)cb * cin * k;
        const int nc = c->cout - cb < COB ? c->cout - cb : COB;
        for (long t = 0; t < L; t += BLOCK) {
            vf a[COB][TB];
            for (int o = 0; o < COB; o++)
                for (int j = 0; j < TB; j++) a[o][j] = (vf){} + (o < nc ? c->b[cb + o] : 0.f);
            for (int ci = 0; ci < cin; ci++) {
                const float *xr = x + ci * s + t - c->p;
                const float *wc = wb + (long)ci * k * COB;
                for (int kk = 0; kk < k; kk++) {
                    vf xv[TB];
                    for (int j = 0; j < TB; j++) xv[j] = *(const vfu *)(xr + kk * d + j * VL);
                    for (int o = 0; o < COB; o++) {
                        const float w = wc[kk * COB + o];
                        for (int j = 0; j < TB; j++) a[o][j] += w * xv[j];
                    }
                }
            }
            const long valid = L - t < BLOCK ? L - t : BLOCK;
            for (int o = 0; o < nc; o++) {
                const long row = (long)(cb + o) * s + t;
                for (int j = 0; j < TB; j++) {
                    if (r) a[o][j] += *(const vfu *)(r + row + j * VL);
                    if (lrelu) a[o][j] = lrelu_v(a[o][j], slope);
                }
                if (valid == BLOCK) {
                    for (int j = 0; j < TB; j++) {
                        *(vfu *)(y + row + j * VL) = a[o][j];
                        if (acc) *(vfu *)(acc + row + j * VL) += a[o][j];
                    }
                } else { /* must not write past L: the zeros there are padding */
                    float out[BLOCK];
                    for (int j = 0; j < TB; j++) *(vfu *)(out + j * VL) = a[o][j];
                    for (long i = 0; i < valid; i++) {
                        y[row + i] = out[i];
                        if (acc) acc[row + i] += out[i];
                    }
                }
            }
        }
    }
}

static void conv_tile(const hg_conv *c, const float *x, float *y, const float *r, float *acc,
                      long s, long L, int lrelu, float slope)
{
    switch (c->k) {
    case 3: conv_body(c, 3, x, y, r, acc, s, L, lrelu, slope); break;
    case 5: conv_body(c, 5, x, y, r, acc, s, L, lrelu, slope); break;
    case 7: conv_body(c, 7, x, y, r, acc, s, L, lrelu, slope); break;
    case 11: conv_body(c, 11, x, y, r, acc, s, L, lrelu, slope); break;
    default: conv_body(c, c->k, x, y, r, acc, s, L, lrelu, slope);
    }
}

/* A convolution with one output channel (conv_post): padding it to a block of 8 would do 8x
 * its work, so its register block runs along time only. Same contract as conv_tile. */
static void conv_single(const hg_conv *c, const float *x, float *y, long s, long L)
{
    const int cin = c->cin, k = c->k, d = c->d;
    for (long t = 0; t < L; t += VL * TB1) {
        vf a[TB1];
        for (int j = 0; j < TB1; j++) a[j] = (vf){} + c->b[0];
        for (int ci = 0; ci < cin; ci++) {
            const float *xr = x + ci * s + t - c->p;
            const float *wc = c->w + (long)ci * k * COB; /* output channel 0 of the block */
            for (int kk = 0; kk < k; kk++) {
                const float w = wc[kk * COB];
                for (int j = 0; j < TB1; j++) a[j] += w * *(const vfu *)(xr + kk * d + j * VL);
            }
        }
        const long valid = L - t < VL * TB1 ? L - t : VL * TB1;
        if (valid == VL * TB1) {
            for (int j = 0; j < TB1; j++) *(vfu *)(y + t + j * VL) = a[j];
        } else {
            float out[VL * TB1];
            for (int j = 0; j < TB1; j++) *(vfu *)(out + j * VL) = a[j];
            memcpy(y + t, out, valid * sizeof(float));
        }
    }
}

static void lrelu_tile(const float *x, float *y, int channels, long s, long L, float slope)
{
    for (int c = 0; c < channels; c++) {
        const float *xr = x + c * s;
        float *yr = y + c * s;
        long t = 0;
        for (; t + VL <= L; t += VL) *(vfu *)(yr + t) = lrelu_v(*(const vfu *)(xr + t), slope);
        for (; t < L; t++) yr[t] = xr[t] > 0 ? xr[t] : xr[t] * slope;
    }
}

/* dst[c * dc + t * dt] = src[c * sc + t * st] for c < C, t < L: channels-last [L][C] to rows
 * [C][stride] and back, in 16 x 16 blocks so that reads and writes both stay within a few cache
 * lines (element by element, transposing took 5-8% of V3's 32-channel stage). */
#define TBLK 16
static void transpose(const float *src, long sc, long st, float *dst, long dc, long dt, int C,
                      long L)
{
    for (long t0 = 0; t0 < L; t0 += TBLK) {
        const long t1 = t0 + TBLK < L ? t0 + TBLK : L;
        for (int c0 = 0; c0 < C; c0 += TBLK) {
            const int c1 = c0 + TBLK < C ? c0 + TBLK : C;
            for (int c = c0; c < c1; c++)
                for (long t = t0; t < t1; t++) dst[c * dc + t * dt] = src[c * sc + t * st];
        }
    }
}

enum { X, S, A, Y, TOT, H, NBUF }; /* H (residual block 1 only) last: not allocated for 2 */

typedef struct {
    const hg_stage *st;
    int index;
    int failed;
} worker_arg;

static long reach(const hg_conv *c)
{
    long right = (long)c->d * (c->k - 1) - c->p;
    return c->p > right ? c->p : right;
}

static void *worker(void *arg_)
{
    worker_arg *arg = arg_;
    const hg_stage *st = arg->st;
    const int C = st->channels;
    long margin = 0;
    for (int i = 0; i < st->nblocks * st->per_block; i++)
        margin = reach(&st->convs[i]) > margin ? reach(&st->convs[i]) : margin;
    if (st->post && reach(st->post) > margin) margin = reach(st->post);
    margin = (margin + 15) / 16 * 16;
    const long width = st->tile + st->past + st->future;
    const long s = (margin + width + margin + SLACK + 15) / 16 * 16;
    const int nbuf = st->resblock1 ? NBUF : NBUF - 1;
    float *mem = calloc((size_t)nbuf * C * s, sizeof(float));
    if (!mem) {
        arg->failed = 1;
        return NULL;
    }
    float *buf[NBUF] = {0};
    for (int b = 0; b < nbuf; b++) buf[b] = mem + (long)b * C * s + margin;

    const int steps = st->resblock1 ? st->per_block / 2 : st->per_block;
    for (long start = arg->index * st->tile; start < st->n; start += st->nthreads * st->tile) {
        const long end = start + st->tile < st->n ? start + st->tile : st->n;
        const long lo = start - st->past > 0 ? start - st->past : 0;
        const long hi = end + st->future < st->n ? end + st->future : st->n;
        const long L = hi - lo;
        for (int b = 0; b < nbuf; b++) /* a longer earlier tile left data where padding goes */
            for (int c = 0; c < C; c++) memset(buf[b] + c * s + L, 0, margin * sizeof(float));
        if (st->x_cl)
            transpose(st->x + lo * C, 1, C, buf[X], s, 1, C, L);
        else
            for (int c = 0; c < C; c++)
                memcpy(buf[X] + c * s, st->x + c * st->n + lo, L * sizeof(float));
        lrelu_tile(buf[X], buf[S], C, s, L, st->slope); /* shared by every block's first conv */

        for (int blk = 0; blk < st->nblocks; blk++) {
            const hg_conv *convs = st->convs + blk * st->per_block;
            for (int i = 0; i < steps; i++) {
                const float *in = buf[S];
                if (i > 0) {
                    lrelu_tile(buf[Y], buf[A], C, s, L, st->slope);
                    in = buf[A];
                }
                const hg_conv *last = &convs[i];
                if (st->resblock1) {
                    conv_tile(&convs[2 * i], in, buf[H], NULL, NULL, s, L, 1, st->slope);
                    in = buf[H];
                    last = &convs[2 * i + 1];
                }
                const int final = i == steps - 1;
                float *y = blk == 0 && final ? buf[TOT] : buf[Y];
                const float *r = i == 0 ? buf[X] : buf[Y];
                float *acc = blk > 0 && final ? buf[TOT] : NULL;
                conv_tile(last, in, y, r, acc, s, L, 0, 0.f);
            }
        }

        const float *result = buf[TOT];
        int rows = C;
        if (st->post) {
            lrelu_tile(buf[TOT], buf[A], C, s, L, st->post_slope);
            if (st->post->cout == 1)
                conv_single(st->post, buf[A], buf[Y], s, L);
            else
                conv_tile(st->post, buf[A], buf[Y], NULL, NULL, s, L, 0, 0.f);
            result = buf[Y];
            rows = st->post->cout;
        }
        const float *kept = result + (start - lo);
        if (st->out_cl)
            transpose(kept, s, 1, st->out + start * rows, 1, rows, rows, end - start);
        else
            for (int c = 0; c < rows; c++)
                memcpy(st->out + c * st->n + start, kept + c * s, (end - start) * sizeof(float));
    }
    free(mem);
    return NULL;
}

/* Run one stage; returns 0, or -1 when scratch memory or a thread could not be had. */
int hg_narrow_stage(const hg_stage *st)
{
    enum { MAX_THREADS = 256 };
    const long tiles = (st->n + st->tile - 1) / st->tile;
    int n = st->nthreads < tiles ? st->nthreads : (int)tiles;
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    hg_stage local = *st;
    local.nthreads = n;
    worker_arg args[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 0; i < n; i++) args[i] = (worker_arg){&local, i, 0};
    for (int i = 1; i < n; i++) started[i] = pthread_create(&threads[i], NULL, worker, &args[i]) == 0;
    int failed = 0;
    for (int i = 1; i < n; i++)
        if (!started[i]) { /* run its share here rather than lose it */
            worker(&args[i]);
        }
    worker(&args[0]);
    for (int i = 1; i < n; i++)
        if (started[i]) pthread_join(threads[i], NULL);
    for (int i = 0; i < n; i++) failed |= args[i].failed;
    return failed ? -1 : 0;
}
