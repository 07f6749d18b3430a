// The fused per-member trainer's kernel (mtlmech/engine/fused.py builds it with torch's extension
// machinery and calls it through ctypes): each member's whole run (all epochs, halt checks,
// snapshots, stopping) for a one-hidden-layer full-batch net, members one after another.
//
// Layout: activations and data are feature-major, (width, rows), rows padded with zero-weight
// rows to a multiple of the vector length L, so every loop works on whole vectors (GCC vector
// extensions: no remainder loops, no runtime alias checks). Layer products are register tiles
// (U units x R row vectors accumulating over the inputs); weight gradients are I x J tiles of row
// vectors whose lanes are summed by a shuffle tree, always the same pairwise tree. Reduction
// orders are fixed by the code, so a member's numbers depend on nothing but its own inputs, and
// not on how the products are tiled. Only the outputs a member trains are computed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifndef MTL_VEC_BYTES
#define MTL_VEC_BYTES 64
#endif

namespace {

template <class T> struct Lanes;
template <> struct Lanes<float> {
    typedef float V __attribute__((vector_size(MTL_VEC_BYTES)));
    typedef int32_t I __attribute__((vector_size(MTL_VEC_BYTES)));
};
template <> struct Lanes<double> {
    typedef double V __attribute__((vector_size(MTL_VEC_BYTES)));
    typedef int64_t I __attribute__((vector_size(MTL_VEC_BYTES)));
};

template <class T> using V = typename Lanes<T>::V;
template <class T> constexpr int64_t L = MTL_VEC_BYTES / sizeof(T);

template <class T> inline V<T> load(const T* p) { V<T> v; std::memcpy(&v, p, sizeof v); return v; }
template <class T> inline void store(T* p, V<T> v) { std::memcpy(p, &v, sizeof v); }
// A loaded vector kept in a register: GCC otherwise reads it again from memory in every multiply-add
// that uses it, and the gradient tiles become bound by loads instead of multiply-adds.
template <class T> inline V<T> in_register(V<T> v) {
#if MTL_VEC_BYTES == 64 && defined(__AVX512F__)
    asm("" : "+v"(v));
#endif
    return v;
}
template <class T> inline V<T> splat(T x) {
    return x - V<T>{};   // a broadcast: x - 0 is x for every x (x + 0 is not, for x = -0)
}

enum Act { SIGMOID = 0, TANH = 1, LINEAR = 2 };

#if MTL_VEC_BYTES == 64 && defined(__AVX512F__)
// 2^u, u clamped to [-126, 126], NaN passes: u = n + j/32 + r, |r| <= 1/64, 2^(j/32) from a
// 32-entry table (one permute of two registers), 2^r by a degree-2 minimax polynomial (relative
// error 5.3e-8), and the product scaled by 2^n.
inline V<float> exp2v(V<float> u) {
    const __m512 x = _mm512_max_ps(_mm512_set1_ps(-126.0f), _mm512_min_ps(_mm512_set1_ps(126.0f), (__m512)u));
    const __m512 magic = _mm512_set1_ps(393216.0f);   // 1.5 * 2^18: adding it rounds to a multiple of 1/32
    const __m512 k = _mm512_add_ps(x, magic);
    const __m512 kr = _mm512_sub_ps(k, magic);          // n + j/32
    const V<float> r = (V<float>)_mm512_sub_ps(x, kr);
    static const float table[32] = {
        1.0f, 1.02189714865411668f, 1.04427378242741384f, 1.06714040067682361f, 1.09050773266525766f,
        1.11438674259589254f, 1.13878863475669165f, 1.16372485877757748f, 1.18920711500272107f,
        1.21524735998046895f, 1.24185781207348405f, 1.26905095719173322f, 1.29683955465100967f,
        1.32523664315974130f, 1.35425554693689273f, 1.38390988196383202f, 1.41421356237309505f,
        1.44518080697704663f, 1.47682614593949931f, 1.50916442759342273f, 1.54221082540794082f,
        1.57598084510788649f, 1.61049033194925430f, 1.64575547815396484f, 1.68179283050742908f,
        1.71861929812247792f, 1.75625216037329948f, 1.79470907500310719f, 1.83400808640934246f,
        1.87416763411029990f, 1.91520656139714729f, 1.95714412417540026f};
    const __m512 t = _mm512_permutex2var_ps(_mm512_loadu_ps(table), _mm512_castps_si512(k), _mm512_loadu_ps(table + 16));
    const V<float> q = r * (r * 0.24022676f + 0.6931573f);
    const __m512 y = (__m512)((V<float>)t * q + (V<float>)t);
    return (V<float>)_mm512_scalef_ps(y, kr);            // y * 2^floor(kr) = y * 2^n
}
#else
// 2^u, u clamped to [-126, 126], NaN passes: u = n + f, |f| <= 1/2, Cephes exp2f on f (where
// there is no AVX-512: numbers then differ from AVX-512 machines by rounding).
inline V<float> exp2v(V<float> u) {
    const V<float> hi = splat(126.0f), lo = splat(-126.0f);
    u = u > hi ? hi : u;
    u = u < lo ? lo : u;
    const V<float> magic = splat(12582912.0f);   // 1.5 * 2^23: adding it rounds to an integer (ties to even)
    V<float> n = (u + magic) - magic;
    V<float> f = u - n;
    V<float> p = splat(1.535336188319500e-4f);
    p = p * f + 1.339887440266574e-3f;
    p = p * f + 9.618437357674640e-3f;
    p = p * f + 5.550332471162809e-2f;
    p = p * f + 2.402264791363012e-1f;
    p = p * f + 6.931472028550421e-1f;
    Lanes<float>::I e = (__builtin_convertvector(n, Lanes<float>::I) + 127) << 23;
    return (p * f + 1.0f) * (V<float>)e;
}
#endif

// 1 / d: the hardware's reciprocal estimate and one Newton step where there is one (≤ 2 ulp).
inline V<float> reciprocal(V<float> d) {
#if MTL_VEC_BYTES == 64 && defined(__AVX512F__)
    V<float> r = (V<float>)_mm512_maskz_rcp14_ps(0xFFFF, (__m512)d);
    return r * (2.0f - d * r);
#elif MTL_VEC_BYTES == 32 && defined(__AVX__)
    V<float> r = (V<float>)_mm256_rcp_ps((__m256)d);
    return r * (2.0f - d * r);
#else
    return 1.0f / d;
#endif
}

inline V<float> activate(V<float> z, int kind) {
    if (kind == SIGMOID) {
        return reciprocal(1.0f + exp2v(z * -1.44269504088896341f));
    }
    if (kind == TANH) {
        V<float> a = z < 0.0f ? -z : z;
        V<float> s = z * z;
        V<float> p = splat(-5.70498872745e-3f);
        p = p * s + 2.06390887954e-2f;
        p = p * s - 5.37397155531e-2f;
        p = p * s + 1.33314422036e-1f;
        p = p * s - 3.33332819422e-1f;
        V<float> small = p * s * z + z;
        V<float> t = exp2v(a * -2.88539008177792681f);
        V<float> big = (1.0f - t) / (1.0f + t);
        big = z >= 0.0f ? big : -big;
        V<float> out = a < 0.625f ? small : big;
        return z == z ? out : z;
    }
    return z;
}

inline V<double> activate(V<double> z, int kind) {
    if (kind == SIGMOID) {
        for (int64_t l = 0; l < L<double>; ++l) {
            double t = std::exp(-std::fabs(z[l]));
            double s = 1.0 / (1.0 + t);
            z[l] = z[l] >= 0.0 ? s : t * s;
        }
    } else if (kind == TANH) {
        for (int64_t l = 0; l < L<double>; ++l) z[l] = std::tanh(z[l]);
    }
    return z;
}

// f'(z) written with the activation a = f(z).
template <class T> inline V<T> derivative(V<T> a, int kind) {
    if (kind == SIGMOID) return (T(1) - a) * a;
    if (kind == TANH) return T(1) - a * a;
    return splat<T>(T(1));
}

// z[j, :] = f(b[j] + sum_i w[i*si + j*sj] * a[i, :]) for units j0..j0+U, rows of U x R vectors.
// With deriv != nullptr the epilogue multiplies by f'(deriv[j, :]) instead (backpropagation, b unused).
template <class T, int U, int R>
inline void tile(const T* __restrict__ a, int64_t n_in, int64_t np, const T* __restrict__ w, int64_t si,
                 int64_t sj, const T* __restrict__ b, T* __restrict__ z, int64_t j0, int64_t r0, int kind,
                 const T* __restrict__ deriv) {
    V<T> acc[U][R];
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[u][r] = splat<T>(b ? b[j0 + u] : T(0));
    for (int64_t i = 0; i < n_in; ++i) {
        V<T> x[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) x[r] = load(a + i * np + r0 + r * L<T>);
#pragma GCC unroll 8
        for (int u = 0; u < U; ++u) {
            V<T> c = splat<T>(w[i * si + (j0 + u) * sj]);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[u][r] += c * x[r];
        }
    }
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u)
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            T* dst = z + (j0 + u) * np + r0 + r * L<T>;
            if (deriv) store(dst, acc[u][r] * derivative<T>(load(deriv + (j0 + u) * np + r0 + r * L<T>), kind));
            else store(dst, activate(acc[u][r], kind));
        }
}

template <class T, int U>
inline void unit_block(const T* a, int64_t n_in, int64_t np, const T* w, int64_t si, int64_t sj, const T* b, T* z,
                       int64_t j0, int kind, const T* deriv) {
    constexpr int R = U >= 8 ? 1 : U >= 4 ? 2 : 4;
    int64_t r0 = 0;
    for (; r0 + R * L<T> <= np; r0 += R * L<T>) tile<T, U, R>(a, n_in, np, w, si, sj, b, z, j0, r0, kind, deriv);
    for (; r0 < np; r0 += L<T>) tile<T, U, 1>(a, n_in, np, w, si, sj, b, z, j0, r0, kind, deriv);
}

// A whole layer: units in blocks of 8, then 4, 2, 1.
template <class T>
void layer(const T* a, int64_t n_in, int64_t np, const T* w, int64_t si, int64_t sj, const T* b, T* z,
           int64_t n_units, int kind, const T* deriv) {
    int64_t j = 0;
    for (; j + 8 <= n_units; j += 8) unit_block<T, 8>(a, n_in, np, w, si, sj, b, z, j, kind, deriv);
    if (j + 4 <= n_units) { unit_block<T, 4>(a, n_in, np, w, si, sj, b, z, j, kind, deriv); j += 4; }
    if (j + 2 <= n_units) { unit_block<T, 2>(a, n_in, np, w, si, sj, b, z, j, kind, deriv); j += 2; }
    if (j < n_units) unit_block<T, 1>(a, n_in, np, w, si, sj, b, z, j, kind, deriv);
}

// Lane-wise sums of N vectors at once: pairs of vectors are folded into one by adding their
// even and odd lanes, each level one level of the pairwise tree over every vector's lanes. Fewer
// than L vectors go on folding with themselves until each total is whole, so every total is the
// same pairwise tree whatever N is (tile shapes cannot change a sum).
template <class T> inline V<T> fold(V<T> a, V<T> b) {
    typedef typename Lanes<T>::I Mask;
    Mask even, odd;
    for (int64_t l = 0; l < L<T>; ++l) { even[l] = 2 * l; odd[l] = 2 * l + 1; }
    return __builtin_shuffle(a, b, even) + __builtin_shuffle(a, b, odd);
}

// out[v] = sum of v[v]'s lanes, for N vectors (N a power of two).
template <class T, int N> inline void sums(V<T>* v, T* out) {
    int n = N;
    int64_t group = L<T>;                         // lanes per source vector
#pragma GCC unroll 8
    while (n > 1 && group > 1) {
#pragma GCC unroll 16
        for (int p = 0; p < n / 2; ++p) v[p] = fold<T>(v[2 * p], v[2 * p + 1]);
        n /= 2;
        group /= 2;
    }
#pragma GCC unroll 8
    for (; group > 1; group /= 2) v[0] = fold<T>(v[0], v[0]);   // n is 1 here
    for (int q = 0; q < n; ++q)
        for (int64_t s = 0; s < L<T> && q * L<T> + s < N; ++s) out[q * L<T> + s] = v[q][s];
}

// g[i * ld + j] = sum_r a[i, r] * d[j, r], I x J accumulators of whole row vectors (I * J a power of two).
template <class T, int I, int J>
inline void grad_tile(const T* __restrict__ a, const T* __restrict__ d, int64_t np, int64_t ld, T* __restrict__ g,
                      int64_t i0, int64_t j0) {
    V<T> acc[I * J];
#pragma GCC unroll 16
    for (int q = 0; q < I * J; ++q) acc[q] = splat<T>(T(0));
    for (int64_t r = 0; r < np; r += L<T>) {
        V<T> x[I], y[J];
#pragma GCC unroll 8
        for (int i = 0; i < I; ++i) x[i] = in_register<T>(load(a + (i0 + i) * np + r));
#pragma GCC unroll 4
        for (int j = 0; j < J; ++j) y[j] = in_register<T>(load(d + (j0 + j) * np + r));
#pragma GCC unroll 8
        for (int i = 0; i < I; ++i)
#pragma GCC unroll 4
            for (int j = 0; j < J; ++j) acc[i * J + j] += x[i] * y[j];
    }
    T s[I * J];
    sums<T, I * J>(acc, s);
#pragma GCC unroll 8
    for (int i = 0; i < I; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < J; ++j) g[(i0 + i) * ld + j0 + j] = s[i * J + j];
}

template <class T, int I>
inline void grad_rows(const T* a, const T* d, int64_t np, int64_t n_d, int64_t ld, T* g, int64_t i0) {
    int64_t j = 0;
    for (; j + 4 <= n_d; j += 4) grad_tile<T, I, 4>(a, d, np, ld, g, i0, j);
    if (j + 2 <= n_d) { grad_tile<T, I, 2>(a, d, np, ld, g, i0, j); j += 2; }
    if (j < n_d) grad_tile<T, I, 1>(a, d, np, ld, g, i0, j);
}

// g (n_a x ld, the first n_d columns written) = a (n_a, np) times d (n_d, np) transposed.
template <class T>
void weight_grad(const T* a, int64_t n_a, const T* d, int64_t n_d, int64_t np, int64_t ld, T* g) {
    int64_t i = 0;
    if (n_d < 4)
        for (; i + 8 <= n_a; i += 8) grad_rows<T, 8>(a, d, np, n_d, ld, g, i);
    for (; i + 4 <= n_a; i += 4) grad_rows<T, 4>(a, d, np, n_d, ld, g, i);
    for (; i + 2 <= n_a; i += 2) grad_rows<T, 2>(a, d, np, n_d, ld, g, i);
    for (; i < n_a; ++i) grad_rows<T, 1>(a, d, np, n_d, ld, g, i);
}

// g[j] = sum_r d[j, r], four rows at a time.
template <class T>
void row_sums(const T* __restrict__ d, int64_t n_d, int64_t np, T* __restrict__ g) {
    int64_t j = 0;
    for (; j + 4 <= n_d; j += 4) {
        V<T> s[4];
        for (int q = 0; q < 4; ++q) s[q] = splat<T>(T(0));
        for (int64_t r = 0; r < np; r += L<T>)
            for (int q = 0; q < 4; ++q) s[q] += load(d + (j + q) * np + r);
        sums<T, 4>(s, g + j);
    }
    for (; j < n_d; ++j) {
        V<T> s[1] = {splat<T>(T(0))};
        for (int64_t r = 0; r < np; r += L<T>) s[0] += load(d + j * np + r);
        sums<T, 1>(s, g + j);
    }
}

// Outputs (K, np) → output deltas in place; the loss over the n real rows if asked.
template <class T>
T output_delta(T* __restrict__ out, const T* __restrict__ y, const T* __restrict__ wt, int64_t K, int64_t n,
               int64_t np, int out_kind, int loss_kind, bool with_value) {
    T value = 0;
    for (int64_t k = 0; k < K; ++k) {
        T* o = out + k * np;
        const T* yk = y + k * np;
        const T* wk = wt + k * np;
        if (with_value) {
            T s = 0;
            if (loss_kind == 0) {
                for (int64_t r = 0; r < n; ++r) { T e = o[r] - yk[r]; s += wk[r] * e * e; }
                value += s * T(0.5);
            } else {
                const T tiny = std::numeric_limits<T>::min();
                for (int64_t r = 0; r < n; ++r)
                    s += wk[r] * (yk[r] * std::log(o[r] + tiny) + (T(1) - yk[r]) * std::log(T(1) - o[r] + tiny));
                value -= s;
            }
        }
        for (int64_t r = 0; r < np; r += L<T>) {
            V<T> ov = load(o + r), e = (ov - load(yk + r)) * load(wk + r);
            if (loss_kind == 0 && out_kind == SIGMOID) e = e * (T(1) - ov) * ov;
            store(o + r, e);
        }
        for (int64_t r = n; r < np; ++r) o[r] = 0;   // padding rows carry no gradient
    }
    return value;
}

template <class T>
void metric(const T* __restrict__ out, const T* __restrict__ y, const T* __restrict__ mask, const T* count, int64_t K,
            int64_t n, int64_t np, int kind, T* __restrict__ h) {
    for (int64_t k = 0; k < K; ++k) {
        const T *o = out + k * np, *yk = y + k * np, *mk = mask + k * np;
        T s = 0;
        if (kind == 0) {
            for (int64_t r = 0; r < n; ++r) { T e = o[r] - yk[r]; s += mk[r] * (e * e); }
        } else {
            for (int64_t r = 0; r < n; ++r) s += ((o[r] > T(0.5)) != (yk[r] > T(0.5))) ? mk[r] : T(0);
        }
        h[k] = s / count[k];
    }
}

template <class T>
void sgd(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ v, int64_t n, T step, T momentum, T decay,
         bool with_decay) {
    if (with_decay) {
        for (int64_t i = 0; i < n; ++i) {
            T gi = g[i] + decay * p[i];
            T vi = momentum * v[i] + gi;
            v[i] = vi;
            p[i] = p[i] - step * vi;
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            T vi = momentum * v[i] + g[i];
            v[i] = vi;
            p[i] = p[i] - step * vi;
        }
    }
}

}  // namespace

// Everything one call needs; Python fills it (mtlmech.engine.fused). Data arrays are (1 or B, width, np).
struct Args {
    int64_t n_members, n_in, n_hid, n_out;
    int64_t n, np, batched_x, batched_y;                 // training rows, padded rows
    int64_t nh, nhp, batched_hx, batched_hy, batched_hm;  // halt rows (0: none), padded rows, 1: one per member
    int64_t nt, ntp, batched_tx, batched_ty, batched_tm;  // the same for the test rows
    int64_t epochs, eval_every, act, out_kind, loss_kind, metric, patience, curves, n_curve;
    double momentum, min_delta;
    void *xt, *yt, *wt, *hx, *hy, *hm, *tx, *ty, *tm;
    void *w1s, *b1s, *w2s, *b2s, *step1, *step2, *decay, *trained;
    void *snap_w1, *snap_b1, *snap_w2, *snap_b2, *sh_w1, *sh_b1, *sh_w2, *sh_b2;
    int64_t *best_epoch, *shared_epoch, *diverged_epoch, *stop_epoch;
    void *best_halt, *shared_best, *loss_curve, *halt_curve, *test_curve;
    bool *diverged;
    int8_t* stopped_by;
};

template <class T>
static void train(const Args& A, const int64_t* members, int64_t n_members) {
    const int64_t d = A.n_in, H = A.n_hid, K = A.n_out, np = A.np, nhp = A.nhp, ntp = A.ntp;
    const T mom = T(A.momentum), min_delta = T(A.min_delta);
    // Output-side buffers hold the outputs in a member's own order, those it trains first (`order`).
    std::vector<T> hid(H * np), back(H * np), out(K * np), g_w1(d * H), g_b1(H), g_w2(H * K), g_b2(K), w2(H * K),
        b2(K), y(K * np), wgt(K * np), hy(K * nhp), hm(K * nhp), ty(K * ntp), tm(K * ntp);
    std::vector<T> v_w1(d * H), v_b1(H), v_w2(H * K), v_b2(K), h_hid(H * nhp), h_out(K * nhp), t_hid(H * ntp),
        t_out(K * ntp), h_count(K), h(K), t_count(K), t_h(K), res(K), ref(K);
    std::vector<int64_t> last_improved(K), order(K);
    const T inf = std::numeric_limits<T>::infinity();
    auto P = [](void* p) { return static_cast<T*>(p); };
    auto gather = [&](const T* src, int64_t npad, T* dst) {   // rows in the member's order
        for (int64_t k = 0; k < K; ++k) std::copy(src + order[k] * npad, src + (order[k] + 1) * npad, dst + k * npad);
    };
    auto count_mask = [&](const T* m, int64_t n_rows, int64_t npad, T* count) {
        for (int64_t k = 0; k < K; ++k) {
            T s = 0;
            for (int64_t r = 0; r < n_rows; ++r) s += m[k * npad + r];
            count[k] = s > T(1) ? s : T(1);
        }
    };
    // The metric of the first n_eval outputs (member's order) on a halt or test set, into res (task order).
    auto evaluate = [&](const T* x, const T* y, const T* m, const T* count, int64_t n_rows, int64_t npad,
                        int64_t n_eval, T* w1, T* b1, T* hb, T* ob, T* into) {
        layer<T>(x, d, npad, w1, H, 1, b1, hb, H, int(A.act), nullptr);
        layer<T>(hb, H, npad, w2.data(), K, 1, b2.data(), ob, n_eval, int(A.out_kind), nullptr);
        metric<T>(ob, y, m, count, n_eval, n_rows, npad, int(A.metric), t_h.data());
        for (int64_t k = 0; k < K; ++k) into[order[k]] = k < n_eval ? t_h[k] : T(0);
    };
    for (int64_t mi = 0; mi < n_members; ++mi) {
        const int64_t m = members[mi];
        const T* x = P(A.xt) + (A.batched_x ? m : 0) * d * np;
        T *w1 = P(A.w1s) + m * d * H, *b1 = P(A.b1s) + m * H, *w2_m = P(A.w2s) + m * H * K, *b2_m = P(A.b2s) + m * K;
        const T* trained = P(A.trained) + m * K;
        // Only the outputs a member trains are computed (an STL member: one of K); the others get zero
        // gradients, so they only decay, and are evaluated only for curves.
        int64_t n_act = 0;
        for (int64_t k = 0; k < K; ++k)
            if (trained[k] > T(0)) order[n_act++] = k;
        for (int64_t k = 0, j = n_act; k < K; ++k)
            if (!(trained[k] > T(0))) order[j++] = k;
        const int64_t n_out = n_act > 0 ? n_act : K, n_halt_out = A.curves ? K : n_out;
        for (int64_t i = 0; i < H; ++i)
            for (int64_t k = 0; k < K; ++k) w2[i * K + k] = w2_m[i * K + order[k]];
        for (int64_t k = 0; k < K; ++k) b2[k] = b2_m[order[k]];
        gather(P(A.yt) + (A.batched_y ? m : 0) * K * np, np, y.data());
        gather(P(A.wt) + m * K * np, np, wgt.data());
        std::fill(v_w1.begin(), v_w1.end(), T(0));
        std::fill(v_b1.begin(), v_b1.end(), T(0));
        std::fill(v_w2.begin(), v_w2.end(), T(0));
        std::fill(v_b2.begin(), v_b2.end(), T(0));
        std::fill(g_w2.begin(), g_w2.end(), T(0));   // the untrained outputs' columns stay zero
        std::fill(g_b2.begin(), g_b2.end(), T(0));
        const T *hxm = nullptr, *txm = nullptr;
        if (A.nh > 0) {
            hxm = P(A.hx) + (A.batched_hx ? m : 0) * d * nhp;
            gather(P(A.hy) + (A.batched_hy ? m : 0) * K * nhp, nhp, hy.data());
            gather(P(A.hm) + (A.batched_hm ? m : 0) * K * nhp, nhp, hm.data());
            count_mask(hm.data(), A.nh, nhp, h_count.data());
        }
        if (A.nt > 0) {
            txm = P(A.tx) + (A.batched_tx ? m : 0) * d * ntp;
            gather(P(A.ty) + (A.batched_ty ? m : 0) * K * ntp, ntp, ty.data());
            gather(P(A.tm) + (A.batched_tm ? m : 0) * K * ntp, ntp, tm.data());
            count_mask(tm.data(), A.nt, ntp, t_count.data());
        }
        T* best_halt = P(A.best_halt) + m * K;
        int64_t* best_epoch = A.best_epoch + m * K;
        auto output_layer = [&](T* sw2, T* sb2) {   // in task order
            for (int64_t i = 0; i < H; ++i)
                for (int64_t k = 0; k < K; ++k) sw2[i * K + order[k]] = w2[i * K + k];
            for (int64_t k = 0; k < K; ++k) sb2[order[k]] = b2[k];
        };
        auto snapshot = [&](T* sw1, T* sb1, T* sw2, T* sb2) {
            std::copy(w1, w1 + d * H, sw1);
            std::copy(b1, b1 + H, sb1);
            output_layer(sw2, sb2);
        };
        auto task_snapshot = [&](int64_t k) {
            snapshot(P(A.snap_w1) + (m * K + k) * d * H, P(A.snap_b1) + (m * K + k) * H,
                     P(A.snap_w2) + (m * K + k) * H * K, P(A.snap_b2) + (m * K + k) * K);
        };
        for (int64_t k = 0; k < K; ++k) {
            best_halt[k] = inf;
            best_epoch[k] = 0;
            ref[k] = inf;
            last_improved[k] = 0;
            task_snapshot(k);
        }
        snapshot(P(A.sh_w1) + m * d * H, P(A.sh_b1) + m * H, P(A.sh_w2) + m * H * K, P(A.sh_b2) + m * K);
        T& shared_best = P(A.shared_best)[m];
        shared_best = inf;
        A.shared_epoch[m] = 0;
        A.diverged[m] = false;
        A.diverged_epoch[m] = 0;
        A.stop_epoch[m] = A.epochs;
        A.stopped_by[m] = 0;
        const T s1 = P(A.step1)[m], s2 = P(A.step2)[m], lam = P(A.decay)[m];
        const T n_div = T(std::max<int64_t>(n_act, 1));
        int64_t row = 0;
        for (int64_t epoch = 1; epoch <= A.epochs; ++epoch) {
            const bool evaluating = epoch % A.eval_every == 0 || epoch == A.epochs;
            layer<T>(x, d, np, w1, H, 1, b1, hid.data(), H, int(A.act), nullptr);
            layer<T>(hid.data(), H, np, w2.data(), K, 1, b2.data(), out.data(), n_out, int(A.out_kind), nullptr);
            const T value = output_delta<T>(out.data(), y.data(), wgt.data(), n_out, A.n, np, int(A.out_kind),
                                            int(A.loss_kind), evaluating);
            weight_grad<T>(hid.data(), H, out.data(), n_out, np, K, g_w2.data());
            row_sums<T>(out.data(), n_out, np, g_b2.data());
            layer<T>(out.data(), n_out, np, w2.data(), 1, K, nullptr, back.data(), H, int(A.act), hid.data());
            weight_grad<T>(x, d, back.data(), H, np, H, g_w1.data());
            row_sums<T>(back.data(), H, np, g_b1.data());
            sgd<T>(w1, g_w1.data(), v_w1.data(), d * H, s1, mom, lam, true);
            sgd<T>(b1, g_b1.data(), v_b1.data(), H, s1, mom, lam, false);
            sgd<T>(w2.data(), g_w2.data(), v_w2.data(), H * K, s2, mom, lam, true);
            sgd<T>(b2.data(), g_b2.data(), v_b2.data(), K, s2, mom, lam, false);
            if (!evaluating) continue;
            if (!std::isfinite(value) && !A.diverged[m]) {
                A.diverged[m] = true;
                A.diverged_epoch[m] = epoch;
            }
            if (hxm) {
                evaluate(hxm, hy.data(), hm.data(), h_count.data(), A.nh, nhp, n_halt_out, w1, b1, h_hid.data(),
                         h_out.data(), h.data());
                T total = 0;
                for (int64_t k = 0; k < K; ++k) {
                    total += h[k] * trained[k];
                    if (trained[k] > T(0) && h[k] < best_halt[k]) {
                        best_halt[k] = h[k];
                        best_epoch[k] = epoch;
                        task_snapshot(k);
                    }
                }
                const T mean_h = total / n_div;
                if (mean_h < shared_best) {
                    shared_best = mean_h;
                    A.shared_epoch[m] = epoch;
                    snapshot(P(A.sh_w1) + m * d * H, P(A.sh_b1) + m * H, P(A.sh_w2) + m * H * K,
                             P(A.sh_b2) + m * K);
                }
                for (int64_t k = 0; k < K; ++k)
                    if (trained[k] > T(0) && h[k] < ref[k] - min_delta) {
                        ref[k] = h[k];
                        last_improved[k] = epoch;
                    }
            }
            if (A.curves) {
                P(A.loss_curve)[m * A.n_curve + row] = value;
                if (hxm) std::copy(h.begin(), h.end(), P(A.halt_curve) + (m * A.n_curve + row) * K);
                if (txm) {
                    evaluate(txm, ty.data(), tm.data(), t_count.data(), A.nt, ntp, K, w1, b1, t_hid.data(),
                             t_out.data(), res.data());
                    std::copy(res.begin(), res.end(), P(A.test_curve) + (m * A.n_curve + row) * K);
                }
            }
            ++row;
            if (A.patience >= 0 && epoch != A.epochs) {   // at the cap the reason stays "cap"
                if (A.diverged[m]) {
                    A.stop_epoch[m] = epoch;
                    A.stopped_by[m] = 2;
                    break;
                }
                bool waited = true;
                for (int64_t k = 0; k < K; ++k)
                    if (trained[k] > T(0) && epoch - last_improved[k] < A.patience * A.eval_every) waited = false;
                if (waited) {
                    A.stop_epoch[m] = epoch;
                    A.stopped_by[m] = 1;
                    break;
                }
            }
        }
        output_layer(w2_m, b2_m);
    }
}

extern "C" {
// The kernel's activation, in place over n values (n a multiple of the lanes), for tests.
void mtl_activate_f32(float* z, int64_t n, int64_t kind) {
    for (int64_t r = 0; r < n; r += L<float>) store(z + r, activate(load(z + r), int(kind)));
}
int64_t mtl_lanes(int64_t double_precision) { return double_precision ? L<double> : L<float>; }
void mtl_train_f32(const Args* a, const int64_t* members, int64_t n) { train<float>(*a, members, n); }
void mtl_train_f64(const Args* a, const int64_t* members, int64_t n) { train<double>(*a, members, n); }
}
