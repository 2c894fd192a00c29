#include "gaussian_ensemble.hpp"

#include <cmath>
#include <vector>

namespace wnsense {
namespace {

inline std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256++, seeded per row through splitmix64 of (seed, row).
class RowStream {
 public:
  RowStream(std::uint64_t seed, std::uint64_t row) {
    std::uint64_t x = seed ^ (0xD1B54A32D192ED03ULL * (row + 1));
    for (auto& w : s_) w = splitmix64(x);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in (0, 1], 53 bits.
  double uniform() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
  // Standard normals in pairs (Box-Muller).
  void normal_pair(double* a, double* b) {
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    const double angle = 6.283185307179586476925 * uniform();
    *a = radius * std::cos(angle);
    *b = radius * std::sin(angle);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// n standard normals of row `row` into buf.
void draw_normals(std::uint64_t seed, Index row, Index n, double* buf) {
  RowStream rs(seed, static_cast<std::uint64_t>(row));
  Index k = 0;
  for (; k + 1 < n; k += 2) rs.normal_pair(buf + k, buf + k + 1);
  if (k < n) {
    double spare;
    rs.normal_pair(buf + k, &spare);
  }
}

}  // namespace

template <class T>
void fill_gaussian_ensemble(T* data, Index m, const DenseLayout& L, bool symmetric,
                            const GaussianRows& rows, int n_threads) {
  const Index p = L.stored_per_row();
  const Index n_draw = symmetric ? L.d1 * (L.d1 + 1) / 2 : L.d1 * L.d2;
  const double scale = 1.0 / std::sqrt(static_cast<double>(rows.total));
  const double off_scale = scale * std::sqrt(0.5);
  // Small operators are drawn on one thread (a team costs more than it saves, and much more
  // when another process keeps a core busy: see dense_sensing.cpp); about 5 ns per number, so
  // 2^18 numbers is a millisecond. Each row is drawn from its own stream: same bits.
  const int team = team_for_work(n_threads, m * n_draw, Index{1} << 18);
#pragma omp parallel num_threads(team) if (team > 1)
  {
    std::vector<double> buf(n_draw);
#pragma omp for schedule(dynamic, 16)
    for (Index i = 0; i < m; ++i) {
      draw_normals(rows.seed, rows.offset + i, n_draw, buf.data());
      T* row = data + i * p;
      if (!symmetric) {
        for (Index k = 0; k < p; ++k) row[k] = static_cast<T>(scale * buf[k]);
        continue;
      }
      // Draws in packed upper-triangle order; written packed or mirrored into the full layout.
      Index t = 0;
      for (Index j = 0; j < L.d1; ++j) {
        for (Index k = j; k < L.d1; ++k, ++t) {
          const T value = static_cast<T>((j == k ? scale : off_scale) * buf[t]);
          if (L.packed) {
            row[t] = value;
          } else {
            row[j * L.d1 + k] = value;
            row[k * L.d1 + j] = value;
          }
        }
      }
    }
  }
}

template void fill_gaussian_ensemble<double>(double*, Index, const DenseLayout&, bool,
                                             const GaussianRows&, int);
template void fill_gaussian_ensemble<float>(float*, Index, const DenseLayout&, bool,
                                            const GaussianRows&, int);

}  // namespace wnsense
