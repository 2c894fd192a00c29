// Seeded generation of the Gaussian sensing ensembles, written straight into the chosen storage.
//
// Row i is drawn from its own counter-based stream (seed, i), so the operator is the same whatever
// the number of threads, and the same realization appears in float64/float32 and full/packed
// storage (values are drawn in float64 and rounded once when stored as float32).
#pragma once
#include "common.hpp"
#include "dense_sensing.hpp"

namespace wnsense {

// Symmetric ensemble M_i = (G_i + G_i^T) / (2 sqrt(m)): diagonal N(0, 1/m), off-diagonal
// N(0, 1/(2m)). Rectangular ensemble (symmetric == false): M_i = G_i / sqrt(m).
// Which rows to draw: rows [offset, offset + m) of an ensemble of `total` rows (the scale
// 1/sqrt(total) depends on the whole ensemble), so that a shard can generate its own rows.
struct GaussianRows {
  std::uint64_t seed = 0;
  Index offset = 0;
  Index total = 0;
};

template <class T>
void fill_gaussian_ensemble(T* data, Index m, const DenseLayout& layout, bool symmetric,
                            const GaussianRows& rows, int n_threads);

}  // namespace wnsense
