// Bindings for the dense sensing operators (float64/float32, full/packed) and the native Gaussian
// generator. Every call releases the GIL around native work.
#include "bindings.hpp"
#include "dense_kernels.hpp"
#include "dense_sensing.hpp"
#include "gaussian_ensemble.hpp"

namespace wnsense {
namespace {


// A validated view of a dense operator's storage block.
struct DenseData {
  const void* ptr = nullptr;
  void* mutable_ptr = nullptr;
  bool is_float32 = false;
  Index m = 0;
  DenseLayout layout;
};

DenseData check_dense(const py::array& data, Index d1, Index d2, bool packed, bool writable) {
  DenseData out;
  // equivalence, not identity of the dtype objects: an array unpickled (or deserialized on a
  // Dask worker) carries its own float64 descriptor instance
  if (py::isinstance<py::array_t<double>>(data)) {
    out.is_float32 = false;
  } else if (py::isinstance<py::array_t<float>>(data)) {
    out.is_float32 = true;
  } else {
    throw py::type_error("data must be float64 or float32");
  }
  if (data.ndim() != 2) throw std::invalid_argument("data must be 2-D (m, p)");
  if (!(data.flags() & py::array::c_style))
    throw std::invalid_argument("data must be C-contiguous");
  require(d1 >= 1 && d2 >= 1, "d1 and d2 must be positive");
  require(!packed || d1 == d2, "packed storage needs a square (symmetric) operator");
  out.layout = DenseLayout{d1, d2, packed};
  out.m = data.shape(0);
  require_length(data.shape(1), out.layout.stored_per_row(), "data row");
  if (writable) {
    if (!data.writeable()) throw std::invalid_argument("data must be writable");
    out.mutable_ptr = const_cast<void*>(data.data());
  }
  out.ptr = data.data();
  return out;
}

template <class F>
auto with_storage(const DenseData& D, F&& f) {
  if (D.is_float32) return f(static_cast<const float*>(D.ptr));
  return f(static_cast<const double*>(D.ptr));
}

py::array_t<double> dense_forward_py(const py::array& data, Index d1, Index d2, bool packed,
                                  MatrixArg Z, int n_threads) {
  const DenseData D = check_dense(data, d1, d2, packed, false);
  require_shape(Z, d1, d2, "Z");
  py::array_t<double> out(D.m);
  Eigen::Map<VectorXd> o(out.mutable_data(), D.m);
  {
    py::gil_scoped_release release;
    with_storage(D, [&](auto* p) { dense_forward(p, D.m, D.layout, Z, o, n_threads); });
  }
  return out;
}

py::array_t<double> dense_adjoint_py(const py::array& data, Index d1, Index d2, bool packed,
                                  VectorArg v, int n_threads) {
  const DenseData D = check_dense(data, d1, d2, packed, false);
  require_length(v.size(), D.m, "v");
  py::array_t<double> out({d1, d2});
  Eigen::Map<RowMatrixXd> G(out.mutable_data(), d1, d2);
  {
    py::gil_scoped_release release;
    with_storage(D, [&](auto* p) { dense_adjoint(p, D.m, D.layout, v, G, n_threads); });
  }
  return out;
}

// The arguments of one residual pass, checked before any native code touches memory.
struct PassArgs {
  DenseData D;
  Optional<VectorArg> y;
  Products products;
  ThinRequest& req;
  PassArgs(const py::array& data, Index d1, Index d2, bool packed, const MatrixArg& L,
           const MatrixArg& R, const py::object& y_, const py::object& right_,
           const py::object& left_, bool symmetrize)
      : D(check_dense(data, d1, d2, packed, false)),
        y(y_, "y"),
        products(right_, left_, d2, d1, symmetrize),
        req(products.req) {
    require(!symmetrize || d1 == d2, "symmetrize needs a square operator");
    require_shape(L, d1, L.cols(), "L");
    require_shape(R, d2, L.cols(), "R");
    if (y.present) require_length(y.get().size(), D.m, "y");
  }
  // the weights of Z = L R^T (Z has the size of one measurement)
  VectorXd weights(const MatrixArg& L, const MatrixArg& R) const {
    const RowMatrixXd Z = L * R.transpose();
    VectorXd w(D.layout.stored_per_row());
    matrix_to_weights(D.layout, Z, w);
    return w;
  }
  SliceResults run(const VectorXd& w, const std::vector<Index>& bounds, double* r,
                   int n_threads) {
    SliceResults out;
    const double* yp = y.data_or_null();
    with_storage(D, [&](auto* p) {
      dense_residual_slices(p, D.layout, bounds, w, yp, r, req, &out, n_threads);
    });
    return out;
  }
};

py::tuple dense_residual(const py::array& data, Index d1, Index d2, bool packed, MatrixArg L,
                         MatrixArg R, const py::object& y, const py::object& right,
                         const py::object& left, bool symmetrize, int n_threads) {
  PassArgs a(data, d1, d2, packed, L, R, y, right, left, symmetrize);
  py::array_t<double> r(a.D.m);
  double sumsq;
  RowMatrixXd AV, AtU;
  {
    py::gil_scoped_release release;
    const VectorXd w = a.weights(L, R);
    SliceResults parts = a.run(w, slice_bounds(a.D.m), r.mutable_data(), n_threads);
    sumsq = fold_sumsq(parts.sumsq);
    if (a.req.right) AV = fold_products(parts.AV);
    if (a.req.left) AtU = fold_products(parts.AtU);
  }
  return py::make_tuple(r, sumsq, matrix_or_none(a.req.right, std::move(AV)),
                        matrix_or_none(a.req.left, std::move(AtU)));
}

// (n, rows, cols) stack of per-slice partials, or None.
py::object stack_or_none(const std::vector<RowMatrixXd>& parts, bool present, Index rows,
                         Index cols) {
  if (!present) return py::none();
  const Index n = static_cast<Index>(parts.size());
  py::array_t<double> out({n, rows, cols});
  double* o = out.mutable_data();
  for (Index s = 0; s < n; ++s)
    Eigen::Map<RowMatrixXd>(o + s * rows * cols, rows, cols) = parts[s];
  return std::move(out);
}

// bounds of slices relative to a block of m rows: 1-D, from 0 to m, non-decreasing
std::vector<Index> block_bounds(const IndexArray& bounds_arr, Index m) {
  const Index n = bounds_arr.size();
  require(bounds_arr.ndim() == 1 && n >= 2, "bounds must be 1-D with at least 2 entries");
  std::vector<Index> bounds(bounds_arr.data(), bounds_arr.data() + n);
  require(bounds.front() == 0 && bounds.back() == m,
          "bounds must start at 0 and end at the number of rows of data");
  for (Index s = 0; s + 1 < n; ++s) require(bounds[s] <= bounds[s + 1], "bounds must not decrease");
  return bounds;
}

py::tuple dense_residual_slices_py(const py::array& data, Index d1, Index d2, bool packed,
                                   MatrixArg L, MatrixArg R, const py::object& y,
                                   const py::object& right, const py::object& left,
                                   bool symmetrize, const IndexArray& bounds_arr, int n_threads) {
  PassArgs a(data, d1, d2, packed, L, R, y, right, left, symmetrize);
  const std::vector<Index> bounds = block_bounds(bounds_arr, a.D.m);
  const Index n = static_cast<Index>(bounds.size());
  py::array_t<double> r(a.D.m);
  SliceResults parts;
  {
    py::gil_scoped_release release;
    const VectorXd w = a.weights(L, R);
    parts = a.run(w, bounds, r.mutable_data(), n_threads);
  }
  py::array_t<double> sumsq(n - 1);
  std::copy(parts.sumsq.begin(), parts.sumsq.end(), sumsq.mutable_data());
  const Index kr = a.req.right ? a.req.right->cols() : 0, kl = a.req.left ? a.req.left->cols() : 0;
  return py::make_tuple(r, sumsq, stack_or_none(parts.AV, a.req.right, d1, kr),
                        stack_or_none(parts.AtU, a.req.left, a.req.symmetrize ? d1 : d2, kl));
}

py::tuple dense_adjoint_slices_py(const py::array& data, Index d1, Index d2, bool packed,
                                  VectorArg v, const py::object& right, const py::object& left,
                                  bool symmetrize, const IndexArray& bounds_arr, int n_threads) {
  const DenseData D = check_dense(data, d1, d2, packed, false);
  require_length(v.size(), D.m, "v");
  require(!symmetrize || d1 == d2, "symmetrize needs a square operator");
  Products pr(right, left, d2, d1, symmetrize);
  const std::vector<Index> bounds = block_bounds(bounds_arr, D.m);
  SliceResults parts;
  {
    py::gil_scoped_release release;
    with_storage(D, [&](auto* p) {
      dense_adjoint_slices(p, D.layout, bounds, v.data(), pr.req, &parts, n_threads);
    });
  }
  const Index kr = pr.req.right ? pr.req.right->cols() : 0;
  const Index kl = pr.req.left ? pr.req.left->cols() : 0;
  return py::make_tuple(stack_or_none(parts.AV, pr.req.right, d1, kr),
                        stack_or_none(parts.AtU, pr.req.left, symmetrize ? d1 : d2, kl));
}

void fill_gaussian(py::array& data, Index d1, Index d2, bool packed, bool symmetric,
                   std::uint64_t seed, int n_threads, Index row_offset, Index m_total) {
  const DenseData D = check_dense(data, d1, d2, packed, true);
  require(!symmetric || d1 == d2, "a symmetric ensemble needs d1 == d2");
  require(!packed || symmetric, "packed storage holds symmetric ensembles only");
  if (m_total <= 0) m_total = D.m;
  require(row_offset >= 0 && row_offset + D.m <= m_total,
          "rows [row_offset, row_offset + len(data)) must lie in the m_total rows of the ensemble");
  const GaussianRows rows{seed, row_offset, m_total};
  py::gil_scoped_release release;
  if (D.is_float32)
    fill_gaussian_ensemble(static_cast<float*>(D.mutable_ptr), D.m, D.layout, symmetric, rows,
                           n_threads);
  else
    fill_gaussian_ensemble(static_cast<double*>(D.mutable_ptr), D.m, D.layout, symmetric, rows,
                           n_threads);
}


}  // namespace

void bind_sensing(py::module_& m) {
  m.def("dense_forward", &dense_forward_py, py::arg("data"), py::arg("d1"), py::arg("d2"),
        py::arg("packed"), py::arg("Z").noconvert(), py::arg("n_threads") = 0,
        "A(Z)_i = <M_i, Z> over a stored (m, p) block.");
  m.def("dense_adjoint", &dense_adjoint_py, py::arg("data"), py::arg("d1"), py::arg("d2"),
        py::arg("packed"), py::arg("v").noconvert(), py::arg("n_threads") = 0,
        "A*(v) = sum_i v_i M_i as a (d1, d2) array.");
  m.def("dense_residual", &dense_residual, py::arg("data"), py::arg("d1"), py::arg("d2"),
        py::arg("packed"), py::arg("L").noconvert(), py::arg("R").noconvert(), py::arg("y"),
        py::arg("right"), py::arg("left"), py::arg("symmetrize"), py::arg("n_threads") = 0,
        "(r, ||r||^2, A*(r) @ right or None, A*(r)^T @ left or None) for Z = L R^T and\n"
        "r = A(Z) - y (y None: zero), in one pass over the data; symmetrize: S = sym(A*(r))\n"
        "on both sides. Per-slice products folded in slice order.");
  m.def("dense_residual_slices", &dense_residual_slices_py, py::arg("data"), py::arg("d1"),
        py::arg("d2"), py::arg("packed"), py::arg("L").noconvert(), py::arg("R").noconvert(),
        py::arg("y"), py::arg("right"), py::arg("left"), py::arg("symmetrize"),
        py::arg("bounds"), py::arg("n_threads") = 0,
        "As dense_residual over slices [bounds[s], bounds[s+1]) of the block, unfolded:\n"
        "(r, per-slice ||r||^2 (n,), (n, d1, k) products or None, (n, ., k') or None).");
  m.def("dense_adjoint_slices", &dense_adjoint_slices_py, py::arg("data"), py::arg("d1"),
        py::arg("d2"), py::arg("packed"), py::arg("v").noconvert(), py::arg("right"),
        py::arg("left"), py::arg("symmetrize"), py::arg("bounds"), py::arg("n_threads") = 0,
        "Per-slice thin products of A_s*(v_s) over slices [bounds[s], bounds[s+1]) of the\n"
        "block, unfolded: ((n, d1, k) or None, (n, ., k') or None).");
  m.def(
      "slice_bounds",
      [](Index m) { return to_index_array(slice_bounds(m)); },
      py::arg("m"),
        "Row bounds of the reduction slices of an m-row pass (fixed by m alone).");
  m.def("fill_gaussian", &fill_gaussian, py::arg("data"), py::arg("d1"), py::arg("d2"),
        py::arg("packed"), py::arg("symmetric"), py::arg("seed"), py::arg("n_threads") = 0,
        py::arg("row_offset") = 0, py::arg("m_total") = 0,
        "Fill a preallocated block with rows [row_offset, row_offset + len) of a seeded\n"
        "Gaussian ensemble of m_total rows (0: the block's own length).");
  m.def("kernel_isa", &dense_kernel_isa, "Instruction set of the streaming kernels in use.");
  testing_submodule(m).def("reduction_slices", &reduction_slices, py::arg("m"));
}

}  // namespace wnsense
