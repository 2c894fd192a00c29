// Bindings for the sensing operators: dense (float64/float32, full/packed), entry sampling,
// rank-one, and the native Gaussian generator. Every call releases the GIL around native work.
#include "bindings.hpp"
#include "dense_kernels.hpp"
#include "dense_sensing.hpp"
#include "gaussian_ensemble.hpp"
#include "structured_sensing.hpp"

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
  if (data.dtype().is(py::dtype::of<double>())) {
    out.is_float32 = false;
  } else if (data.dtype().is(py::dtype::of<float>())) {
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

py::tuple dense_residual(const py::array& data, Index d1, Index d2, bool packed, MatrixArg Z,
                         VectorArg y, bool with_gradient, int n_threads) {
  const DenseData D = check_dense(data, d1, d2, packed, false);
  require_shape(Z, d1, d2, "Z");
  require_length(y.size(), D.m, "y");
  py::array_t<double> r(D.m);
  Eigen::Map<VectorXd> rr(r.mutable_data(), D.m);
  RowMatrixXd G;
  double sumsq;
  {
    py::gil_scoped_release release;
    sumsq = with_storage(D, [&](auto* p) {
      return dense_residual_adjoint(p, D.m, D.layout, Z, y, rr, with_gradient ? &G : nullptr,
                                    n_threads);
    });
  }
  if (!with_gradient) return py::make_tuple(r, sumsq, py::none());
  return py::make_tuple(r, sumsq, py::array_t<double>(py::cast(std::move(G))));
}

void fill_gaussian(py::array& data, Index d1, Index d2, bool packed, bool symmetric,
                   std::uint64_t seed, int n_threads) {
  const DenseData D = check_dense(data, d1, d2, packed, true);
  require(!symmetric || d1 == d2, "a symmetric ensemble needs d1 == d2");
  require(!packed || symmetric, "packed storage holds symmetric ensembles only");
  py::gil_scoped_release release;
  if (D.is_float32)
    fill_gaussian_ensemble(static_cast<float*>(D.mutable_ptr), D.m, D.layout, symmetric, seed,
                           n_threads);
  else
    fill_gaussian_ensemble(static_cast<double*>(D.mutable_ptr), D.m, D.layout, symmetric, seed,
                           n_threads);
}

using IndexArray = py::array_t<std::int64_t, py::array::c_style>;

void check_entries(const IndexArray& rows, const IndexArray& cols, Index d1, Index d2) {
  require(rows.ndim() == 1 && cols.ndim() == 1, "rows and cols must be 1-D");
  require_length(cols.shape(0), rows.shape(0), "cols");
  auto rr = rows.unchecked<1>();
  auto cc = cols.unchecked<1>();
  for (Index i = 0; i < rows.shape(0); ++i)
    require(rr(i) >= 0 && rr(i) < d1 && cc(i) >= 0 && cc(i) < d2, "entry index out of range");
}

py::array_t<double> entry_forward_py(const IndexArray& rows, const IndexArray& cols, double scale,
                                     bool symmetric, MatrixArg Z) {
  check_entries(rows, cols, Z.rows(), Z.cols());
  require(!symmetric || Z.rows() == Z.cols(), "symmetric entry sampling needs a square Z");
  const Index m = rows.shape(0);
  py::array_t<double> out(m);
  double* o = out.mutable_data();
  py::gil_scoped_release release;
  entry_forward(rows.data(), cols.data(), m, scale, symmetric, Z, o);
  return out;
}

py::array_t<double> entry_adjoint_py(const IndexArray& rows, const IndexArray& cols, double scale,
                                     bool symmetric, VectorArg v, Index d1, Index d2) {
  check_entries(rows, cols, d1, d2);
  require_length(v.size(), rows.shape(0), "v");
  py::array_t<double> out({d1, d2});
  Eigen::Map<RowMatrixXd> G(out.mutable_data(), d1, d2);
  py::gil_scoped_release release;
  entry_adjoint(rows.data(), cols.data(), rows.shape(0), scale, symmetric, v.data(), G);
  return out;
}

py::array_t<double> rank_one_forward_py(MatrixArg A, double scale, MatrixArg L, MatrixArg R) {
  require_shape(L, A.cols(), L.cols(), "L");
  require_shape(R, A.cols(), L.cols(), "R");
  py::array_t<double> out(A.rows());
  double* o = out.mutable_data();
  py::gil_scoped_release release;
  rank_one_forward_factored(A, scale, L, R, o);
  return out;
}

py::array_t<double> rank_one_adjoint_py(MatrixArg A, double scale, VectorArg v) {
  require_length(v.size(), A.rows(), "v");
  const Index d = A.cols();
  py::array_t<double> out({d, d});
  Eigen::Map<RowMatrixXd> G(out.mutable_data(), d, d);
  py::gil_scoped_release release;
  rank_one_adjoint(A, scale, v.data(), G);
  return out;
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
        py::arg("packed"), py::arg("Z").noconvert(), py::arg("y").noconvert(),
        py::arg("with_gradient"), py::arg("n_threads") = 0,
        "(r, ||r||^2, A*(r) or None) with r = A(Z) - y, in one pass over the data.");
  m.def("fill_gaussian", &fill_gaussian, py::arg("data"), py::arg("d1"), py::arg("d2"),
        py::arg("packed"), py::arg("symmetric"), py::arg("seed"), py::arg("n_threads") = 0,
        "Fill a preallocated (m, p) block with a seeded Gaussian ensemble.");
  m.def("entry_forward", &entry_forward_py, py::arg("rows"), py::arg("cols"), py::arg("scale"),
        py::arg("symmetric"), py::arg("Z").noconvert());
  m.def("entry_adjoint", &entry_adjoint_py, py::arg("rows"), py::arg("cols"), py::arg("scale"),
        py::arg("symmetric"), py::arg("v").noconvert(), py::arg("d1"), py::arg("d2"));
  m.def("rank_one_forward", &rank_one_forward_py, py::arg("A").noconvert(), py::arg("scale"),
        py::arg("L").noconvert(), py::arg("R").noconvert(),
        "<a_i a_i^T scale, L R^T> without forming d x d matrices.");
  m.def("rank_one_adjoint", &rank_one_adjoint_py, py::arg("A").noconvert(), py::arg("scale"),
        py::arg("v").noconvert());
  m.def("kernel_isa", &dense_kernel_isa, "Instruction set of the streaming kernels in use.");
  m.def("reduction_slices", &reduction_slices, py::arg("m"));
}

}  // namespace wnsense
