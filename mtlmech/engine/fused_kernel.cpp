// The fused per-member trainer's kernel (mtlmech/engine/fused.py loads it through ctypes; mtlmech/engine/fused_build.py
// compiles it): each member's whole run (all epochs, halt checks, snapshots, stopping) for a
// one-hidden-layer full-batch net, members one after another.
//
// One declared arithmetic ("fused-v4"), bitwise the same on every target it is built for:
//  * a virtual vector of 64 bytes (16 float32 / 8 float64 rows) on every target: one zmm register
//    with AVX-512 (x86-64-v4), two ymm registers with AVX2 (x86-64-v3), a GCC generic vector
//    elsewhere ("generic", no intrinsics); rows are padded to whole virtual vectors;
//  * only per-lane IEEE-754 operations, round to nearest: +, -, *, / (true division, never a
//    reciprocal estimate), comparisons and selects, exact integer/bit operations, and fma() where a
//    multiply-add is wanted: written out, never contracted by the compiler (-ffp-contract=off);
//  * one exp2/sigmoid/tanh algorithm (a table-free polynomial) for every target, the same clamping;
//    float64 and the loss's logarithm use this file's own polynomials, never libm;
//  * every sum over the lanes of a vector is the same fixed pairwise tree on every target: lanes
//    (l, l+8), then (l, l+4), (l, l+2), (l, l+1) for float32; (l, l+4), (l, l+2), (l, l+1) for float64;
//  * the floating-point environment is set on entry (MXCSR: round to nearest, all exceptions
//    masked, flush-to-zero and denormals-are-zero when the caller asks) and restored on exit.
//
// Layout: activations and data are feature-major, (width, rows). Layer products are register tiles
// (U units x R row vectors accumulating over the inputs); weight gradients are I x J tiles of row
// vectors whose lanes are summed by the tree above. Reduction orders are fixed by the code, so a
// member's numbers depend on nothing but its own inputs, and not on how the products are tiled.
// Only the outputs a member trains are computed.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__SSE__)
#define MTL_ARITHMETIC "fused-v4"
#else
#define MTL_ARITHMETIC "fused-v4-noftz"   // no MXCSR: subnormals are not flushed, a different arithmetic
#endif

#if defined(MTL_GENERIC)
#define MTL_PARTS 1          // generic vectors, per-lane fma: the reference build of the arithmetic
#elif defined(__AVX512F__) && defined(__AVX512DQ__)
#define MTL_AVX512 1
#define MTL_PARTS 1          // one zmm register per virtual vector
#elif defined(__AVX2__) && defined(__FMA__)
#define MTL_AVX2 1
#define MTL_PARTS 2          // two ymm registers per virtual vector
#else
#define MTL_PARTS 1
#endif

#ifndef MTL_TARGET
#define MTL_TARGET "unnamed"
#endif
#ifndef MTL_BUILD_KEY
#define MTL_BUILD_KEY "none"
#endif

namespace {

constexpr int VBYTES = 64;                      // the virtual vector, every target
constexpr int NBYTES = VBYTES / MTL_PARTS;      // one native part

template <class T> struct Types;
template <> struct Types<float> {
    typedef float N __attribute__((vector_size(NBYTES)));
    typedef int32_t NI __attribute__((vector_size(NBYTES)));
    typedef float H __attribute__((vector_size(32)));
};
template <> struct Types<double> {
    typedef double N __attribute__((vector_size(NBYTES)));
    typedef int64_t NI __attribute__((vector_size(NBYTES)));
    typedef double H __attribute__((vector_size(32)));
};
template <class T> using N = typename Types<T>::N;    // a native part
template <class T> using H = typename Types<T>::H;    // half a virtual vector (lane sums)
template <class T> constexpr int64_t L = VBYTES / sizeof(T);          // lanes of a virtual vector
template <class T> constexpr int NL = NBYTES / sizeof(T);             // lanes of a part
template <class T> constexpr int HL = 32 / sizeof(T);                 // lanes of a half

template <class T> struct V { N<T> p[MTL_PARTS]; };   // the virtual vector

template <class T> inline N<T> nsplat(T x) { return x - N<T>{}; }   // x - 0 is x for every x (x + 0 is not, for -0)

// fma on one part: one rounding, so every implementation gives the same bits.
inline N<float> nfma(N<float> a, N<float> b, N<float> c) {
#if defined(MTL_AVX512)
    return (N<float>)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(MTL_AVX2)
    return (N<float>)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    N<float> r;
    for (int l = 0; l < NL<float>; ++l) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
    return r;
#endif
}
inline N<double> nfma(N<double> a, N<double> b, N<double> c) {
#if defined(MTL_AVX512)
    return (N<double>)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(MTL_AVX2)
    return (N<double>)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
    N<double> r;
    for (int l = 0; l < NL<double>; ++l) r[l] = __builtin_fma(a[l], b[l], c[l]);
    return r;
#endif
}

#define MTL_EACH for (int i_ = 0; i_ < MTL_PARTS; ++i_)
template <class T> inline V<T> load(const T* p) { V<T> v; std::memcpy(&v, p, sizeof v); return v; }
template <class T> inline void store(T* p, V<T> v) { std::memcpy(p, &v, sizeof v); }
template <class T> inline V<T> splat(T x) { V<T> v; MTL_EACH v.p[i_] = nsplat<T>(x); return v; }
template <class T> inline V<T> operator+(V<T> a, V<T> b) { MTL_EACH a.p[i_] = a.p[i_] + b.p[i_]; return a; }
template <class T> inline V<T> operator-(V<T> a, V<T> b) { MTL_EACH a.p[i_] = a.p[i_] - b.p[i_]; return a; }
template <class T> inline V<T> operator*(V<T> a, V<T> b) { MTL_EACH a.p[i_] = a.p[i_] * b.p[i_]; return a; }
template <class T> inline V<T> operator*(V<T> a, T b) { MTL_EACH a.p[i_] = a.p[i_] * b; return a; }
template <class T> inline V<T> operator-(T a, V<T> b) { MTL_EACH b.p[i_] = a - b.p[i_]; return b; }
template <class T> inline V<T> fma(V<T> a, V<T> b, V<T> c) { MTL_EACH a.p[i_] = nfma(a.p[i_], b.p[i_], c.p[i_]); return a; }
// A loaded vector kept in a register: GCC otherwise reads it again from memory in every multiply-add
// that uses it, and the gradient tiles become bound by loads instead of multiply-adds.
template <class T> inline V<T> in_register(V<T> v) {
#if defined(MTL_AVX512) || defined(MTL_AVX2)
    MTL_EACH asm("" : "+v"(v.p[i_]));
#endif
    return v;
}

enum Act { SIGMOID = 0, TANH = 1, LINEAR = 2 };

// ---- float32 activations, on one native part (every operation per lane) ----

// 2^u: u clamped to [-126, 126] (NaN passes), u = n + f with n an integer (ties to even) and
// |f| <= 1/2, 2^f by the Cephes exp2f polynomial (Horner with fma), scaled by 2^n built in the
// exponent bits. Relative error below 2e-7; no table, no vscalefps, the same on every target.
inline N<float> exp2n(N<float> u) {
    typedef Types<float>::NI I;
    const N<float> hi = nsplat(126.0f), lo = nsplat(-126.0f), magic = nsplat(12582912.0f);   // 1.5 * 2^23
    u = u > hi ? hi : u;
    u = u < lo ? lo : u;
    N<float> n = (u + magic) - magic;
    const N<float> f = u - n;
    N<float> p = nsplat(1.535336188319500e-4f);
    p = nfma(p, f, nsplat(1.339887440266574e-3f));
    p = nfma(p, f, nsplat(9.618437357674640e-3f));
    p = nfma(p, f, nsplat(5.550332471162809e-2f));
    p = nfma(p, f, nsplat(2.402264791363012e-1f));
    p = nfma(p, f, nsplat(6.931472028550421e-1f));
    p = nfma(p, f, nsplat(1.0f));
    n = n == n ? n : nsplat(0.0f);                  // NaN lanes: p is NaN already; no conversion of NaN
    const I e = (__builtin_convertvector(n, I) + 127) << 23;
    return p * (N<float>)e;
}

inline N<float> activate_n(N<float> z, int kind) {
    if (kind == SIGMOID) return nsplat(1.0f) / (nsplat(1.0f) + exp2n(z * -1.44269504088896341f));
    if (kind == TANH) {   // Cephes tanhf below 0.625, (1 - 2^u) / (1 + 2^u) with u = -2|z|/ln 2 above
        const N<float> zero = nsplat(0.0f), one = nsplat(1.0f);
        const N<float> a = z < zero ? -z : z;
        const N<float> s = z * z;
        N<float> p = nsplat(-5.70498872745e-3f);
        p = nfma(p, s, nsplat(2.06390887954e-2f));
        p = nfma(p, s, nsplat(-5.37397155531e-2f));
        p = nfma(p, s, nsplat(1.33314422036e-1f));
        p = nfma(p, s, nsplat(-3.33332819422e-1f));
        const N<float> small = nfma(p * s, z, z);
        const N<float> t = exp2n(a * -2.88539008177792681f);
        N<float> big = (one - t) / (one + t);
        big = z >= zero ? big : -big;
        const N<float> out = a < nsplat(0.625f) ? small : big;
        return z == z ? out : z;
    }
    return z;
}

inline V<float> activate(V<float> z, int kind) {
    MTL_EACH z.p[i_] = activate_n(z.p[i_], kind);
    return z;
}

// ---- float64 activations and logarithms: scalar, this file's own polynomials (never libm) ----

inline double bits_to_double(uint64_t b) { double d; std::memcpy(&d, &b, 8); return d; }
inline uint64_t double_to_bits(double d) { uint64_t b; std::memcpy(&b, &d, 8); return b; }

// e^x: x clamped to [-708, 709] (so 2^k stays a normal number), NaN passes; x = k ln2 + r with
// |r| <= ln2/2 (ln2 in two parts), e^r by its Taylor series to r^13 (Horner with fma): <= 1 ulp or so.
inline double exp_d(double x) {
    if (x != x) return x;
    x = x > 709.0 ? 709.0 : x;
    x = x < -708.0 ? -708.0 : x;
    const double magic = 6755399441055744.0;   // 1.5 * 2^52
    const double k = (x * 1.4426950408889634 + magic) - magic;
    double r = __builtin_fma(-k, 6.93147180369123816490e-01, x);
    r = __builtin_fma(-k, 1.90821492927058770002e-10, r);
    static const double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                               1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                               1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    double p = c[0];
    for (int i = 1; i < 14; ++i) p = __builtin_fma(p, r, c[i]);
    return p * bits_to_double(uint64_t(int64_t(k) + 1023) << 52);
}

// tanh: Cephes tanh (rational, |x| < 0.625), 1 - 2 / (e^2|x| + 1) beyond.
inline double tanh_d(double x) {
    const double a = x < 0 ? -x : x;
    if (a > 0.625) {
        const double s = exp_d(2.0 * a);
        const double z = 1.0 - 2.0 / (s + 1.0);
        return x < 0 ? -z : z;
    }
    if (a == 0.0) return x;
    const double z = x * x;
    const double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3;
    const double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3;
    return x + x * (z * p / q);
}

// natural logarithm (the cross-entropy loss's value): x = 2^e m, m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(f), f = (m - 1) / (m + 1), by its series to f^25.
inline double log_d(double x) {
    if (x != x || x < 0.0) return std::numeric_limits<double>::quiet_NaN();
    if (x == 0.0) return -std::numeric_limits<double>::infinity();
    if (x == std::numeric_limits<double>::infinity()) return x;
    int64_t e = 0;
    if (x < 2.2250738585072014e-308) { x *= 18014398509481984.0; e = -54; }   // subnormal: scale by 2^54
    uint64_t b = double_to_bits(x);
    e += int64_t(b >> 52) - 1023;
    double m = bits_to_double((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);   // [1, 2)
    if (m > 1.4142135623730951) { m *= 0.5; e += 1; }
    const double f = (m - 1.0) / (m + 1.0), s = f * f;
    double p = 1.0 / 25.0;
    for (int k = 23; k >= 1; k -= 2) p = __builtin_fma(p, s, 1.0 / k);
    const double ed = double(e);
    return __builtin_fma(ed, 6.93147180369123816490e-01, __builtin_fma(2.0 * f, p, ed * 1.90821492927058770002e-10));
}
inline float log_of(float x) { return float(log_d(double(x))); }
inline double log_of(double x) { return log_d(x); }

inline V<double> activate(V<double> z, int kind) {
    double v[L<double>];
    std::memcpy(v, &z, sizeof v);
    if (kind == SIGMOID) {
        for (int64_t l = 0; l < L<double>; ++l) {
            const double t = exp_d(v[l] < 0 ? v[l] : -v[l]);   // e^-|z|
            const double s = 1.0 / (1.0 + t);
            v[l] = v[l] >= 0.0 ? s : t * s;
        }
    } else if (kind == TANH) {
        for (int64_t l = 0; l < L<double>; ++l) v[l] = tanh_d(v[l]);
    }
    std::memcpy(&z, v, sizeof v);
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
            const V<T> c = splat<T>(w[i * si + (j0 + u) * sj]);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[u][r] = fma(c, x[r], acc[u][r]);
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

// Lane sums: every total is the same pairwise tree on every target. A virtual vector's halves are
// added first (lanes l and l + L/2); then pairs of half vectors are folded into one, each fold one
// level of the tree over both sources' lanes, (l, l + g/2) within groups of g partial sums, until
// each source's total is whole. Fewer sources than lanes go on folding with themselves, which
// repeats the same additions, so how many sums are taken at once (tile shapes) cannot change one.
template <class T> inline H<T> halves_sum(V<T> v) {
#if MTL_PARTS == 2
    return v.p[0] + v.p[1];
#else
    H<T> lo, hi;
    std::memcpy(&lo, &v, 32);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + 32, 32);
    return lo + hi;
#endif
}

// One level on two half vectors whose lanes hold groups of G partial sums; the masks are those of
// vperm2f128 / vshufps / vunpck{l,h}pd, and the same wherever they compile to something else.
template <class T, int G> inline H<T> fold(H<T> a, H<T> b);
typedef int32_t M8 __attribute__((vector_size(32)));
typedef int64_t M4 __attribute__((vector_size(32)));
template <> inline H<float> fold<float, 8>(H<float> a, H<float> b) {
    return __builtin_shuffle(a, b, M8{0, 1, 2, 3, 8, 9, 10, 11}) + __builtin_shuffle(a, b, M8{4, 5, 6, 7, 12, 13, 14, 15});
}
template <> inline H<float> fold<float, 4>(H<float> a, H<float> b) {
    return __builtin_shuffle(a, b, M8{0, 1, 8, 9, 4, 5, 12, 13}) + __builtin_shuffle(a, b, M8{2, 3, 10, 11, 6, 7, 14, 15});
}
template <> inline H<float> fold<float, 2>(H<float> a, H<float> b) {
    return __builtin_shuffle(a, b, M8{0, 2, 8, 10, 4, 6, 12, 14}) + __builtin_shuffle(a, b, M8{1, 3, 9, 11, 5, 7, 13, 15});
}
template <> inline H<double> fold<double, 4>(H<double> a, H<double> b) {
    return __builtin_shuffle(a, b, M4{0, 1, 4, 5}) + __builtin_shuffle(a, b, M4{2, 3, 6, 7});
}
template <> inline H<double> fold<double, 2>(H<double> a, H<double> b) {
    return __builtin_shuffle(a, b, M4{0, 4, 2, 6}) + __builtin_shuffle(a, b, M4{1, 5, 3, 7});
}

template <class T, int G, int n> inline void fold_levels(H<T>* h) {
    if constexpr (G > 1) {
        constexpr int m = n > 1 ? n / 2 : 1;
#pragma GCC unroll 16
        for (int p = 0; p < m; ++p) h[p] = fold<T, G>(h[2 * p], h[n > 1 ? 2 * p + 1 : 2 * p]);
        fold_levels<T, G / 2, m>(h);
    }
}

// out[s] = the sum of v[s]'s lanes, for N vectors (N a power of two). After the folds, source s's
// total sits in half vector s / HL, lane (s % 2) * HL / 2 + (s % HL) / 2.
template <class T, int N> inline void sums(V<T>* v, T* out) {
    constexpr int M = HL<T>;
    H<T> h[N];
#pragma GCC unroll 16
    for (int s = 0; s < N; ++s) h[s] = halves_sum<T>(v[s]);
    fold_levels<T, M, N>(h);
#pragma GCC unroll 16
    for (int s = 0; s < N; ++s) out[s] = h[s / M][(s % 2) * (M / 2) + (s % M) / 2];
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
            for (int j = 0; j < J; ++j) acc[i * J + j] = fma(x[i], y[j], acc[i * J + j]);
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
            for (int q = 0; q < 4; ++q) s[q] = s[q] + load(d + (j + q) * np + r);
        sums<T, 4>(s, g + j);
    }
    for (; j < n_d; ++j) {
        V<T> s[1] = {splat<T>(T(0))};
        for (int64_t r = 0; r < np; r += L<T>) s[0] = s[0] + load(d + j * np + r);
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
                    s += wk[r] * (yk[r] * log_of(o[r] + tiny) + (T(1) - yk[r]) * log_of(T(1) - o[r] + tiny));
                value -= s;
            }
        }
        for (int64_t r = 0; r < np; r += L<T>) {
            const V<T> ov = load(o + r);
            V<T> e = (ov - load<T>(yk + r)) * load<T>(wk + r);
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
    int64_t flush;                                       // 1: flush-to-zero and denormals-are-zero
    int64_t per_task;                                    // 1: each task's snapshot freezes when its own patience runs out
    double momentum, min_delta;
    void *xt, *yt, *wt, *hx, *hy, *hm, *tx, *ty, *tm;
    void *w1s, *b1s, *w2s, *b2s, *step1, *step2, *decay, *trained;
    void *snap_w1, *snap_b1, *snap_w2, *snap_b2, *sh_w1, *sh_b1, *sh_w2, *sh_b2;
    int64_t *best_epoch, *shared_epoch, *diverged_epoch, *stop_epoch, *frozen_epoch;
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
    std::vector<char> frozen(K);
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
            frozen[k] = 0;
            A.frozen_epoch[m * K + k] = 0;
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
            if (!(value - value == T(0)) && !A.diverged[m]) {
                A.diverged[m] = true;
                A.diverged_epoch[m] = epoch;
            }
            if (hxm) {
                evaluate(hxm, hy.data(), hm.data(), h_count.data(), A.nh, nhp, n_halt_out, w1, b1, h_hid.data(),
                         h_out.data(), h.data());
                T total = 0;
                for (int64_t k = 0; k < K; ++k) {
                    total += h[k] * trained[k];
                    if (trained[k] > T(0) && !frozen[k] && h[k] < best_halt[k]) {
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
                    if (trained[k] > T(0) && !frozen[k] && h[k] < ref[k] - min_delta) {
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
                // all_tasks (v2): stop when every trained task is stale at once. per_task: a stale task
                // freezes for good (its snapshot and best epoch no longer move); stop when all are frozen.
                bool waited = true;
                for (int64_t k = 0; k < K; ++k) {
                    if (!(trained[k] > T(0))) continue;
                    const bool stale = frozen[k] || epoch - last_improved[k] >= A.patience * A.eval_every;
                    if (A.per_task && stale && !frozen[k]) {
                        frozen[k] = 1;
                        A.frozen_epoch[m * K + k] = epoch;
                    }
                    if (!stale) waited = false;
                }
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

// The floating-point environment of a call, on the calling thread: round to nearest, every exception
// masked, and flush-to-zero + denormals-are-zero if asked; the caller's is restored on return.
class FpEnv {
#if defined(__SSE__)
    unsigned saved_;
public:
    explicit FpEnv(int64_t flush) : saved_(_mm_getcsr()) { _mm_setcsr(0x1F80u | (flush ? 0x8040u : 0u)); }
    ~FpEnv() { _mm_setcsr(saved_); }
#else
public:
    explicit FpEnv(int64_t) {}
#endif
};

extern "C" {
// The kernel's activation, in place over n values (n a multiple of the lanes), for tests.
void mtl_activate_f32(float* z, int64_t n, int64_t kind, int64_t flush) {
    FpEnv env(flush);
    for (int64_t r = 0; r < n; r += L<float>) store(z + r, activate(load(z + r), int(kind)));
}
void mtl_activate_f64(double* z, int64_t n, int64_t kind, int64_t flush) {
    FpEnv env(flush);
    for (int64_t r = 0; r < n; r += L<double>) store(z + r, activate(load(z + r), int(kind)));
}
// The lane sums of n_vectors (1, 2, 4, 8 or 16) whole vectors at v, into out, for tests.
void mtl_lane_sums_f32(const float* v, int64_t n_vectors, float* out) {
    V<float> w[16];
    for (int64_t i = 0; i < n_vectors; ++i) w[i] = load(v + i * L<float>);
    switch (n_vectors) {
        case 1: sums<float, 1>(w, out); break;
        case 2: sums<float, 2>(w, out); break;
        case 4: sums<float, 4>(w, out); break;
        case 8: sums<float, 8>(w, out); break;
        case 16: sums<float, 16>(w, out); break;
    }
}
void mtl_lane_sums_f64(const double* v, int64_t n_vectors, double* out) {
    V<double> w[16];
    for (int64_t i = 0; i < n_vectors; ++i) w[i] = load(v + i * L<double>);
    switch (n_vectors) {
        case 1: sums<double, 1>(w, out); break;
        case 2: sums<double, 2>(w, out); break;
        case 4: sums<double, 4>(w, out); break;
        case 8: sums<double, 8>(w, out); break;
        case 16: sums<double, 16>(w, out); break;
    }
}
int64_t mtl_lanes(int64_t double_precision) { return double_precision ? L<double> : L<float>; }
// What this build is: the arithmetic it implements, its target, the key of its source and flags,
// and the compiler that built it.
const char* mtl_arithmetic() { return MTL_ARITHMETIC; }
const char* mtl_target() { return MTL_TARGET; }
const char* mtl_build_key() { return MTL_BUILD_KEY; }
const char* mtl_compiler() {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}
void mtl_train_f32(const Args* a, const int64_t* members, int64_t n) { FpEnv env(a->flush); train<float>(*a, members, n); }
void mtl_train_f64(const Args* a, const int64_t* members, int64_t n) { FpEnv env(a->flush); train<double>(*a, members, n); }
}
