// Fused per-coordinate selection for byzsim's coordinate-wise rules.
//
// The [n, d] input is read once, in blocks of consecutive coordinates: the n
// values of each coordinate of a block are sorted by the eager path's
// comparator network (Batcher's odd-even merge sort, pruned to the positions
// needed) and reduced to one output value, without leaving the core. Each
// compare-exchange is a min and a max over 64 bytes of lanes (one AVX-512
// register, two AVX2 ones). Blocks run in parallel on torch's OpenMP threads.
//
// Two kernels share this code (aggregators/kernels.py builds them):
// - the generic one takes n, the statistic and the comparator list at run time
//   and keeps a block (n rows x 32 floats) in an L1 buffer;
// - a specialised one is generated for one (dtype, n, statistic, trim, k): its
//   network is straight-line code with constant indices, so the n rows of a
//   block (16 floats each) stay in registers. It is built on request.
//
// Results are bit for bit those of aggregators.coordinatewise's eager path:
// - a coordinate holding a NaN or an infinity comes out NaN: the caller
//   computes it again on its finite values (they are missing values, see
//   aggregators.coordinatewise); every other output is + z, where z, the sum
//   of 0 * v over the column, is a zero and leaves the output's bits as they are;
// - sums run sequentially over the kept sorted values in ascending order and
//   are divided by their count, as the eager path does;
// - every output gets + 0, so a zero result is +0 whatever order the network
//   left equal zeros in (the only place where the two paths could differ).
//
// Plain C ABI, loaded with ctypes: no torch headers, so a build takes about a
// second. Compiled without -ffast-math and with -ffp-contract=off.
#include <cstdint>
#include <cstring>
#include <limits>

#define BYZSIM_SELECT_ABI 3

namespace {

// 64 bytes of T, allowed to alias T. The kernels are written on these explicit
// vectors: GCC 12's auto-vectorizer miscompiled plain loops over double lanes.
template <typename T> struct Vec;
template <> struct Vec<float> { typedef float type __attribute__((vector_size(64), may_alias)); };
template <> struct Vec<double> { typedef double type __attribute__((vector_size(64), may_alias)); };

enum Stat : int { MEDIAN = 0, TRMEAN = 1, CLOSEST_TO_MEDIAN = 2, CLOSEST_TO_TRMEAN = 3 };

// What to compute: n rows, the statistic, values trimmed at each end, values kept around the centre.
struct Runtime {
  int64_t n;
  int stat;
  int64_t trim, k;
};
template <int N, int STAT, int TRIM, int K>
struct Fixed {  // the same, known at compile time: every loop below then unrolls
  static constexpr int64_t n = N, trim = TRIM, k = K;
  static constexpr int stat = STAT;
};

template <typename V>
inline __attribute__((always_inline)) void exchange(V& a, V& b) {
  const V u = a, v = b;
  const auto less = u < v;
  a = less ? u : v;
  b = less ? v : u;
}

// Sorted rows r[0], r[stride], ... r[(n-1) stride] of one vector of lanes -> the statistic.
template <typename T>
typename Vec<T>::type row_mean(const typename Vec<T>::type* r, int stride, int64_t lo, int64_t hi) {
  typename Vec<T>::type acc = r[lo * stride];
#pragma GCC unroll 128
  for (int64_t i = lo + 1; i < hi; ++i) acc += r[i * stride];
  return acc / static_cast<T>(hi - lo);
}

template <typename T, class Shape>
typename Vec<T>::type median_of(const typename Vec<T>::type* r, int stride, const Shape& s) {
  const typename Vec<T>::type lo = r[((s.n - 1) / 2) * stride];
  if (s.n % 2) return lo;
  return (lo + r[(s.n / 2) * stride]) / T(2);
}

// Mean of the k sorted values closest to c: the window r[i..i+k-1] whose larger distance
// to c is smallest (first on ties), the cost as torch.maximum + nan_to_num_(nan=inf),
// summed from +0 in ascending order.
template <typename T, class Shape>
typename Vec<T>::type closest_mean(const typename Vec<T>::type* r, int stride, const Shape& s,
                                   typename Vec<T>::type c) {
  typedef typename Vec<T>::type Lanes;
  const Lanes zero = Lanes{}, inf = zero + std::numeric_limits<T>::infinity();
  const Lanes big = zero + std::numeric_limits<T>::max();
  Lanes best = inf, start = zero;
#pragma GCC unroll 128
  for (int64_t i = 0; i + s.k <= s.n; ++i) {
    const Lanes a = c - r[i * stride], b = r[(i + s.k - 1) * stride] - c;
    Lanes m = a < b ? b : a;
    m = m == inf ? big : (m == -inf ? -big : m);
    m = (a != a) | (b != b) ? inf : m;
    const auto better = m < best;
    best = better ? m : best;
    start = better ? zero + static_cast<T>(i) : start;
  }
  Lanes acc = zero;
#pragma GCC unroll 128
  for (int64_t j = 0; j < s.n; ++j)  // row j lies in the windows starting at j-k+1..j
    acc += (start >= static_cast<T>(j - s.k + 1)) & (start <= static_cast<T>(j)) ? r[j * stride] : zero;
  return acc / static_cast<T>(s.k);
}

template <typename T, class Shape>
typename Vec<T>::type statistic(const typename Vec<T>::type* r, int stride, const Shape& s) {
  typename Vec<T>::type out;
  switch (s.stat) {
    case MEDIAN: out = median_of<T>(r, stride, s); break;
    case TRMEAN: out = row_mean<T>(r, stride, s.trim, s.n - s.trim); break;
    case CLOSEST_TO_MEDIAN: out = closest_mean<T>(r, stride, s, median_of<T>(r, stride, s)); break;
    default: out = closest_mean<T>(r, stride, s, row_mean<T>(r, stride, s.trim, s.n - s.trim)); break;
  }
  return out + T(0);  // a zero result is +0
}

// Runs block(c0) over every block of W coordinates, on `threads` OpenMP threads when the input is large.
template <int W, class Block>
void for_each_block(int64_t n, int64_t d, int threads, const Block& block) {
  const int64_t blocks = (d + W - 1) / W;
  if (threads < 1 || n * d < (int64_t(1) << 16)) threads = 1;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t b = 0; b < blocks; ++b) block(b * W);
}

// ---- The specialised kernel: one vector of L lanes per row, in registers. ----

template <typename T, class Shape, class Net>
void fixed_block(const T* x, int64_t ld, T* out) {
  typedef typename Vec<T>::type Lanes;
  constexpr int L = 64 / sizeof(T), N = Shape::n;
  Lanes r[N];
#pragma GCC unroll 128
  for (int i = 0; i < N; ++i) std::memcpy(&r[i], x + i * ld, 64);
  Lanes z = r[0] * T(0);  // NaN in the lanes holding a NaN or an infinity, a zero elsewhere
#pragma GCC unroll 128
  for (int i = 1; i < N; ++i) z += r[i] * T(0);
  Net::apply(r);
  const Lanes o = statistic<T>(r, 1, Shape()) + z;
  std::memcpy(out, &o, 64);
}

template <typename T, class Shape, class Net>
void run_fixed(const T* x, int64_t d, int64_t ld, T* out, int threads) {
  constexpr int L = 64 / sizeof(T), N = Shape::n;
  for_each_block<L>(N, d, threads, [&](int64_t c0) {
    if (c0 + L <= d) return fixed_block<T, Shape, Net>(x + c0, ld, out + c0);
    T pad[N * L], tail[L];  // the last, partial block: zero-padded copy
    const int64_t width = d - c0;
    for (int i = 0; i < N; ++i)
      for (int w = 0; w < L; ++w) pad[i * L + w] = w < width ? x[i * ld + c0 + w] : T(0);
    fixed_block<T, Shape, Net>(pad, L, tail);
    std::memcpy(out + c0, tail, sizeof(T) * width);
  });
}

// ---- The generic kernel: a block of n rows x W lanes in an L1 buffer, comparators from a list. ----

template <typename T, int W>
void generic_block(const T* x, int64_t ld, int64_t width, const Runtime& s, const int32_t* pairs,
                   int64_t npairs, T* out) {
  typedef typename Vec<T>::type Lanes;
  constexpr int L = 64 / sizeof(T), per_row = W / L;
  alignas(64) T buf[128 * W];
  for (int64_t i = 0; i < s.n; ++i)
    for (int w = 0; w < W; ++w) buf[i * W + w] = w < width ? x[i * ld + w] : T(0);
  Lanes* rows = reinterpret_cast<Lanes*>(buf);
  Lanes z[per_row] = {};  // NaN in the lanes holding a NaN or an infinity, a zero elsewhere
  for (int64_t i = 0; i < s.n; ++i)
    for (int q = 0; q < per_row; ++q) z[q] += rows[i * per_row + q] * T(0);
  for (int64_t p = 0; p < npairs; ++p) {
    Lanes* a = rows + pairs[2 * p] * per_row;
    Lanes* b = rows + pairs[2 * p + 1] * per_row;
    for (int q = 0; q < per_row; ++q) exchange(a[q], b[q]);
  }
  alignas(64) T result[W];
  for (int q = 0; q < per_row; ++q)
    *reinterpret_cast<Lanes*>(result + q * L) = statistic<T>(rows + q, per_row, s) + z[q];
  std::memcpy(out, result, sizeof(T) * width);
}

template <typename T, int W>
void run_generic(const T* x, int64_t d, int64_t ld, T* out, const Runtime& s, const int32_t* pairs,
                 int64_t npairs, int threads) {
  for_each_block<W>(s.n, d, threads, [&](int64_t c0) {
    generic_block<T, W>(x + c0, ld, d - c0 < W ? d - c0 : W, s, pairs, npairs, out + c0);
  });
}

}  // namespace

#ifndef BYZSIM_SPECIALISED
extern "C" {

int byzsim_select_abi() { return BYZSIM_SELECT_ABI; }

// dtype: 0 float32, 1 float64. Returns 0, or -1 when the arguments are out of range.
int byzsim_select(int dtype, const void* x, int64_t n, int64_t d, int64_t ld, void* out,
                  const int32_t* pairs, int64_t npairs, int stat, int64_t trim, int64_t k, int threads) {
  if (n < 1 || n > 128 || d < 1 || ld < d || stat < 0 || stat > 3 || trim < 0 || 2 * trim >= n || k < 1 || k > n)
    return -1;
  const Runtime s{n, stat, trim, k};
  if (dtype == 0)
    run_generic<float, 32>(static_cast<const float*>(x), d, ld, static_cast<float*>(out), s, pairs, npairs, threads);
  else if (dtype == 1)
    run_generic<double, 16>(static_cast<const double*>(x), d, ld, static_cast<double*>(out), s, pairs, npairs,
                            threads);
  else
    return -1;
  return 0;
}

}  // extern "C"
#endif
