#include "structured_sensing.hpp"

#include <string>

namespace wnsense {

namespace {
// Stable counting sort of the nonzeros by key: group g holds order[ptr[g] .. ptr[g+1]) in
// increasing nonzero index, so sums over a group run in a fixed order.
void group_by(const std::int64_t* keys, Index nnz, Index n_keys, std::vector<std::int64_t>* ptr,
              std::vector<std::int64_t>* order) {
  ptr->assign(n_keys + 1, 0);
  for (Index t = 0; t < nnz; ++t) ++(*ptr)[keys[t] + 1];
  for (Index g = 0; g < n_keys; ++g) (*ptr)[g + 1] += (*ptr)[g];
  order->resize(nnz);
  std::vector<std::int64_t> next(ptr->begin(), ptr->end() - 1);
  for (Index t = 0; t < nnz; ++t) (*order)[next[keys[t]]++] = t;
}

void check_indices(const std::int64_t* idx, Index n, Index bound, const char* name) {
  for (Index t = 0; t < n; ++t)
    if (idx[t] < 0 || idx[t] >= bound)
      throw std::invalid_argument(std::string(name) + " index out of range: " +
                                  std::to_string(idx[t]) + " not in [0, " +
                                  std::to_string(bound) + ")");
}
}  // namespace

SparseMeasurements::SparseMeasurements(Index m, Index d1, Index d2, Index nnz,
                                       const std::int64_t* ptr, const std::int64_t* rows,
                                       const std::int64_t* cols, const double* vals, double scale,
                                       bool symmetric)
    : m_(m), d1_(d1), d2_(d2), nnz_(nnz), ptr_(ptr), rows_(rows), cols_(cols), vals_(vals),
      scale_(scale), symmetric_(symmetric) {
  require(m >= 1 && d1 >= 1 && d2 >= 1 && nnz >= 0, "sizes must be positive");
  require(!symmetric || d1 == d2, "symmetric measurements need d1 == d2");
  if (ptr) {
    require(ptr[0] == 0 && ptr[m] == nnz, "indptr must start at 0 and end at nnz");
    meas_.resize(nnz);
    for (Index i = 0; i < m; ++i) {
      require(ptr[i] <= ptr[i + 1], "indptr must not decrease");
      for (Index t = ptr[i]; t < ptr[i + 1]; ++t) meas_[t] = i;
    }
  } else {
    require(nnz == m, "one nonzero per measurement needs nnz == m");
  }
  check_indices(rows, nnz, d1, "row");
  check_indices(cols, nnz, d2, "column");
  group_by(rows, nnz, d1, &row_ptr_, &by_row_);
  group_by(cols, nnz, d2, &col_ptr_, &by_col_);
}

int SparseMeasurements::team(int n_threads, Index work) const {
  return work < (Index{1} << 15) ? 1 : resolve_threads(n_threads);
}

double SparseMeasurements::residual(const Eigen::Ref<const RowMatrixXd>& L,
                                    const Eigen::Ref<const RowMatrixXd>& R, const double* y,
                                    double* r, const ThinRequest& req, RowMatrixXd* AV,
                                    RowMatrixXd* AtU, int n_threads) const {
  const int nt = team(n_threads, (nnz_ + m_) * (L.cols() + 1));
  const std::vector<Index> bounds = slice_bounds(m_);
  const Index n_slices = static_cast<Index>(bounds.size()) - 1;
  std::vector<double> sumsq(n_slices, 0.0);
  auto entry = [&](Index t) {  // <e_j e_k^T, L R^T> (symmetrized)
    const auto j = rows_[t], k = cols_[t];
    const double z = L.row(j).dot(R.row(k));
    return symmetric_ ? 0.5 * (z + L.row(k).dot(R.row(j))) : z;
  };
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index s = 0; s < n_slices; ++s) {
    double ss = 0.0;
    for (Index i = bounds[s]; i < bounds[s + 1]; ++i) {
      double z = 0.0;
      if (ptr_) {
        for (Index t = ptr_[i]; t < ptr_[i + 1]; ++t) z += value(t) * entry(t);
      } else {
        z = value(i) * entry(i);
      }
      const double ri = y ? z - y[i] : z;
      r[i] = ri;
      ss += ri * ri;
    }
    sumsq[s] = ss;
  }
  if (req.any()) products(weights(r, nt), req, AV, AtU, nt);
  return fold_sumsq(sumsq);
}

void SparseMeasurements::adjoint_products(const double* v, const ThinRequest& req,
                                          RowMatrixXd* AV, RowMatrixXd* AtU,
                                          int n_threads) const {
  const Index k = (req.right ? req.right->cols() : 0) + (req.left ? req.left->cols() : 0);
  const int nt = team(n_threads, nnz_ * (k + 1));
  products(weights(v, nt), req, AV, AtU, nt);
}

std::vector<double> SparseMeasurements::weights(const double* v, int nt) const {
  std::vector<double> w(nnz_);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index t = 0; t < nnz_; ++t) w[t] = value(t) * v[measurement(t)];
  return w;
}

void SparseMeasurements::grouped(const std::vector<std::int64_t>& group_ptr,
                                 const std::vector<std::int64_t>& order,
                                 const std::int64_t* other, const std::vector<double>& w,
                                 const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out,
                                 int nt) const {
  const Index n_groups = static_cast<Index>(group_ptr.size()) - 1;
  out->setZero(n_groups, B.cols());
  // dynamic: rows of real data (users, items) have very different numbers of entries; each
  // output row is still summed by one thread in group order, so the result does not change
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
  for (Index g = 0; g < n_groups; ++g) {
    auto row = out->row(g);
    for (Index q = group_ptr[g]; q < group_ptr[g + 1]; ++q) {
      const Index t = order[q];
      row.noalias() += w[t] * B.row(other[t]);
    }
  }
}

void SparseMeasurements::products(const std::vector<double>& w, const ThinRequest& req,
                                  RowMatrixXd* AV, RowMatrixXd* AtU, int nt) const {
  // A*(v) @ B: row j sums the nonzeros of row j (w_t B[col_t]); A*(v)^T @ B: row k sums the
  // nonzeros of column k (w_t B[row_t]); sym(A*(v)) @ B is the mean of the two.
  auto apply = [&](const Eigen::Ref<const RowMatrixXd>& B, bool transposed, RowMatrixXd* out) {
    if (!symmetric_) {
      if (transposed)
        grouped(col_ptr_, by_col_, rows_, w, B, out, nt);
      else
        grouped(row_ptr_, by_row_, cols_, w, B, out, nt);
      return;
    }
    RowMatrixXd by_cols;
    grouped(row_ptr_, by_row_, cols_, w, B, out, nt);
    grouped(col_ptr_, by_col_, rows_, w, B, &by_cols, nt);
    *out = 0.5 * (*out + by_cols);
  };
  if (req.right) apply(*req.right, false, AV);
  if (req.left) apply(*req.left, true, AtU);
}

void SparseMeasurements::forward_dense(const Eigen::Ref<const RowMatrixXd>& Z, double* out) const {
  auto entry = [&](Index t) {
    const auto j = rows_[t], k = cols_[t];
    return symmetric_ ? 0.5 * (Z(j, k) + Z(k, j)) : Z(j, k);
  };
  for (Index i = 0; i < m_; ++i) {
    double z = 0.0;
    if (ptr_) {
      for (Index t = ptr_[i]; t < ptr_[i + 1]; ++t) z += value(t) * entry(t);
    } else {
      z = value(i) * entry(i);
    }
    out[i] = z;
  }
}

void SparseMeasurements::adjoint_dense(const double* v, Eigen::Ref<RowMatrixXd> G) const {
  G.setZero();
  // Sequential scatter: repeated entries add up in index order (deterministic).
  for (Index t = 0; t < nnz_; ++t) {
    const double c = value(t) * v[measurement(t)];
    const auto j = rows_[t], k = cols_[t];
    if (symmetric_) {
      G(j, k) += 0.5 * c;
      G(k, j) += 0.5 * c;
    } else {
      G(j, k) += c;
    }
  }
}

double rank_one_residual(const Eigen::Ref<const RowMatrixXd>& A, double scale,
                         const Eigen::Ref<const RowMatrixXd>& L,
                         const Eigen::Ref<const RowMatrixXd>& R, const double* y, double* r,
                         const ThinRequest& req, RowMatrixXd* AV, RowMatrixXd* AtU,
                         int n_threads) {
  const Index m = A.rows();
  const std::vector<Index> bounds = slice_bounds(m);
  const Index n_slices = static_cast<Index>(bounds.size()) - 1;
  const int nt = m * A.cols() < (Index{1} << 15)
                     ? 1
                     : static_cast<int>(std::min<Index>(resolve_threads(n_threads), n_slices));
  std::vector<double> sumsq(n_slices, 0.0);
  std::vector<RowMatrixXd> PV(req.right ? n_slices : 0), PU(req.left ? n_slices : 0);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index s = 0; s < n_slices; ++s) {
    const Index b = bounds[s], n = bounds[s + 1] - b;
    const auto As = A.middleRows(b, n);
    const RowMatrixXd AL = As * L, AR = As * R;
    VectorXd c(n);  // scale * r_i: the weight of a_i a_i^T in A*(r)
    double ss = 0.0;
    for (Index i = 0; i < n; ++i) {
      const double z = scale * AL.row(i).dot(AR.row(i));
      const double ri = y ? z - y[b + i] : z;
      r[b + i] = ri;
      ss += ri * ri;
      c[i] = scale * ri;
    }
    sumsq[s] = ss;
    // sum_i c_i a_i (a_i^T B) = A_s^T diag(c) A_s B
    auto product = [&](const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out) {
      RowMatrixXd W = As * B;
      W = c.asDiagonal() * W;
      out->noalias() = As.transpose() * W;
    };
    if (req.right) product(*req.right, &PV[s]);
    if (req.left) product(*req.left, &PU[s]);
  }
  if (req.right) *AV = fold_products(PV);
  if (req.left) *AtU = fold_products(PU);
  return fold_sumsq(sumsq);
}

void rank_one_adjoint(const Eigen::Ref<const RowMatrixXd>& A, double scale, const double* v,
                      Eigen::Ref<RowMatrixXd> G) {
  const Eigen::Map<const VectorXd> vv(v, A.rows());
  RowMatrixXd VA = vv.asDiagonal() * A;
  G.noalias() = scale * (A.transpose() * VA);
}

}  // namespace wnsense
