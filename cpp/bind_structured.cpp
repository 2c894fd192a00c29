// Bindings for the matrix-free operators: sparse measurements (observed entries, entry sampling,
// a user's sparse measurement matrix) and rank-one measurements. Every call releases the GIL
// around native work and checks sizes before any native code touches memory.
#include <deque>
#include <memory>

#include "bindings.hpp"
#include "identity_sensing.hpp"
#include "structured_sensing.hpp"

namespace wnsense {
namespace {

using ValueArray = py::array_t<double, py::array::c_style>;

// A list of thin matrices (each float64 C-contiguous with `rows` rows), kept as views for the
// lifetime of this object.
struct ThinList {
  std::deque<Optional<MatrixArg>> items;
  std::vector<const MatrixArg*> ptrs;
  ThinList(const py::list& list, Index rows, const char* name) {
    for (const py::handle h : list) {
      items.emplace_back(py::reinterpret_borrow<py::object>(h), name);
      if (!items.back().present) throw py::type_error(std::string(name) + " must hold arrays");
      require_shape(items.back().get(), rows, items.back().get().cols(), name);
      ptrs.push_back(&items.back().get());
    }
  }
  ThinList(const ThinList&) = delete;
  ThinList& operator=(const ThinList&) = delete;
};

py::list matrices(std::vector<RowMatrixXd>&& ms) {
  py::list out;
  for (auto& M : ms) out.append(py::array_t<double>(py::cast(std::move(M))));
  return out;
}

// A read-only numpy view of an array `owner` holds (the view keeps `owner` alive).
template <class T>
py::array readonly_view(const std::vector<T>& v, const py::object& owner) {
  if (v.empty()) return py::array_t<T>(0);
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()), v.data(), owner);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(a);
}

// The native sparse operator. It copies the arrays it is given (SparseMeasurements owns them),
// so nothing the caller does to its arrays afterwards reaches the operator.
struct PySparse {
  std::unique_ptr<SparseMeasurements> core;

  PySparse(Index m, Index d1, Index d2, IndexArray rows, IndexArray cols, py::object ptr_,
           py::object vals_, double scale, bool symmetric) {
    require(rows.ndim() == 1 && cols.ndim() == 1, "rows and cols must be 1-D");
    require(m >= 1 && d1 >= 1 && d2 >= 1, "m, d1 and d2 must be positive");
    const Index nnz = rows.shape(0);
    require_length(cols.shape(0), nnz, "cols");
    const std::int64_t* p = nullptr;
    const double* v = nullptr;
    IndexArray ptr;
    ValueArray vals;
    if (!ptr_.is_none()) {
      ptr = py::cast<IndexArray>(ptr_);
      require(ptr.ndim() == 1, "indptr must be 1-D");
      require_length(ptr.shape(0), m + 1, "indptr");
      p = ptr.data();
    }
    if (!vals_.is_none()) {
      vals = py::cast<ValueArray>(vals_);
      require(vals.ndim() == 1, "values must be 1-D");
      require_length(vals.shape(0), nnz, "values");
      v = vals.data();
    }
    const std::int64_t* r = rows.data();
    const std::int64_t* c = cols.data();
    py::gil_scoped_release release;
    core = std::make_unique<SparseMeasurements>(m, d1, d2, nnz, p, r, c, v, scale, symmetric);
  }

  py::tuple residual(MatrixArg L, MatrixArg R, const py::object& y_, const py::object& right,
                     const py::object& left, int n_threads) {
    const auto& S = *core;
    require_shape(L, S.d1(), L.cols(), "L");
    require_shape(R, S.d2(), L.cols(), "R");
    Optional<VectorArg> y(y_, "y");
    if (y.present) require_length(y.get().size(), S.m(), "y");
    Products pr(right, left, S.d2(), S.d1(), S.symmetric());
    py::array_t<double> r(S.m());
    RowMatrixXd AV, AtU;
    double sumsq;
    {
      py::gil_scoped_release release;
      sumsq = S.residual(L, R, y.data_or_null(), r.mutable_data(), pr.req, &AV, &AtU, n_threads);
    }
    return py::make_tuple(r, sumsq, matrix_or_none(pr.right.present, std::move(AV)),
                          matrix_or_none(pr.left.present, std::move(AtU)));
  }

  // what every pass in the sorted layout checks: one nonzero per measurement, L and R of the
  // operator's sizes, y (when given) of length m
  void check_sorted_pass(const MatrixArg& L, const MatrixArg& R, Optional<VectorArg>& y) const {
    const auto& S = *core;
    require(S.one_per_measurement(), "the sorted pass needs one nonzero per measurement");
    require_shape(L, S.d1(), L.cols(), "L");
    require_shape(R, S.d2(), L.cols(), "R");
    if (y.present) require_length(y.get().size(), S.m(), "y");
  }

  // the pass in the sorted layout: y_sorted = y[order], r returned in that order
  py::tuple residual_sorted(MatrixArg L, MatrixArg R, const py::object& y_, const py::object& right,
                            const py::object& left, int n_threads, const py::object& y_by_col_,
                            bool return_r) {
    const auto& S = *core;
    Optional<VectorArg> y(y_, "y");
    check_sorted_pass(L, R, y);
    Optional<VectorArg> y_by_col(y_by_col_, "y_by_col");
    if (y_by_col.present) {
      require(y.present, "y_by_col needs y");
      require_length(y_by_col.get().size(), S.m(), "y_by_col");
    }
    Products pr(right, left, S.d2(), S.d1(), S.symmetric());
    py::array_t<double> r(return_r ? S.m() : 0);
    RowMatrixXd AV, AtU;
    double sumsq;
    {
      py::gil_scoped_release release;
      sumsq = S.residual_sorted(L, R, y.data_or_null(), return_r ? r.mutable_data() : nullptr,
                                pr.req, &AV, &AtU, n_threads, y_by_col.data_or_null());
    }
    return py::make_tuple(return_r ? py::object(r) : py::object(py::none()), sumsq,
                          matrix_or_none(pr.right.present, std::move(AV)),
                          matrix_or_none(pr.left.present, std::move(AtU)));
  }

  // residual_sorted's unreduced pieces (SparseMeasurements::residual_sides)
  py::tuple residual_sides(MatrixArg L, MatrixArg R, const py::object& y_, const py::list& row_B,
                           const py::list& col_B, int n_threads) {
    const auto& S = *core;
    Optional<VectorArg> y(y_, "y");
    check_sorted_pass(L, R, y);
    const ThinList rb(row_B, S.d2(), "row_B"), cb(col_B, S.d1(), "col_B");
    py::array_t<double> r(S.m());
    std::vector<double> row_sumsq;
    std::vector<RowMatrixXd> ro, co;
    {
      py::gil_scoped_release release;
      S.residual_sides(L, R, y.data_or_null(), r.mutable_data(), &row_sumsq, rb.ptrs, &ro,
                       cb.ptrs, &co, n_threads);
    }
    py::array_t<double> ss(static_cast<py::ssize_t>(row_sumsq.size()));
    std::copy(row_sumsq.begin(), row_sumsq.end(), ss.mutable_data());
    return py::make_tuple(r, ss, matrices(std::move(ro)), matrices(std::move(co)));
  }

  py::tuple adjoint_sides(VectorArg v, const py::list& row_B, const py::list& col_B,
                          int n_threads) {
    const auto& S = *core;
    require(S.one_per_measurement(), "the sorted layout needs one nonzero per measurement");
    require_length(v.size(), S.m(), "v");
    const ThinList rb(row_B, S.d2(), "row_B"), cb(col_B, S.d1(), "col_B");
    std::vector<RowMatrixXd> ro, co;
    {
      py::gil_scoped_release release;
      S.adjoint_sides(v.data(), rb.ptrs, &ro, cb.ptrs, &co, n_threads);
    }
    return py::make_tuple(matrices(std::move(ro)), matrices(std::move(co)));
  }

  IndexArray col_order() const { return to_index_array(core->col_order()); }
  IndexArray order() const { return to_index_array(core->order()); }

  py::tuple adjoint_products(VectorArg v, const py::object& right, const py::object& left,
                             int n_threads) {
    const auto& S = *core;
    require_length(v.size(), S.m(), "v");
    Products pr(right, left, S.d2(), S.d1(), S.symmetric());
    RowMatrixXd AV, AtU;
    {
      py::gil_scoped_release release;
      S.adjoint_products(v.data(), pr.req, &AV, &AtU, n_threads);
    }
    return py::make_tuple(matrix_or_none(pr.right.present, std::move(AV)),
                          matrix_or_none(pr.left.present, std::move(AtU)));
  }

  py::array_t<double> forward(MatrixArg Z) {
    require_shape(Z, core->d1(), core->d2(), "Z");
    py::array_t<double> out(core->m());
    double* o = out.mutable_data();
    py::gil_scoped_release release;
    core->forward_dense(Z, o);
    return out;
  }

  py::array_t<double> adjoint(VectorArg v) {
    require_length(v.size(), core->m(), "v");
    py::array_t<double> out({core->d1(), core->d2()});
    Eigen::Map<RowMatrixXd> G(out.mutable_data(), core->d1(), core->d2());
    py::gil_scoped_release release;
    core->adjoint_dense(v.data(), G);
    return out;
  }
};

py::tuple rank_one_residual_py(MatrixArg A, double scale, MatrixArg L, MatrixArg R,
                               const py::object& y_, const py::object& right,
                               const py::object& left, int n_threads) {
  const Index d = A.cols();
  require_shape(L, d, L.cols(), "L");
  require_shape(R, d, L.cols(), "R");
  Optional<VectorArg> y(y_, "y");
  if (y.present) require_length(y.get().size(), A.rows(), "y");
  Products pr(right, left, d, d, true);
  py::array_t<double> r(A.rows());
  RowMatrixXd AV, AtU;
  double sumsq;
  {
    py::gil_scoped_release release;
    sumsq = rank_one_residual(A, scale, L, R, y.data_or_null(), r.mutable_data(), pr.req, &AV,
                              &AtU, n_threads);
  }
  return py::make_tuple(r, sumsq, matrix_or_none(pr.right.present, std::move(AV)),
                        matrix_or_none(pr.left.present, std::move(AtU)));
}

// The population operator's pass (the kernel: identity_sensing.cpp).
py::tuple identity_residual_py(MatrixArg L, MatrixArg R, const py::object& y_,
                               const py::object& right, const py::object& left, bool symmetric) {
  const Index d1 = L.rows(), d2 = R.rows();
  require(R.cols() == L.cols(), "L and R must have the same number of columns");
  require(!symmetric || d1 == d2, "the symmetric family needs d1 == d2");
  Optional<VectorArg> y(y_, "y");
  if (y.present) require_length(y.get().size(), d1 * d2, "y");
  Products pr(right, left, d2, d1, symmetric);
  py::array_t<double> r(d1 * d2);
  RowMatrixXd AV, AtU;
  double sumsq;
  {
    py::gil_scoped_release release;
    sumsq = identity_residual(L, R, y.data_or_null(), r.mutable_data(), pr.req, &AV, &AtU);
  }
  return py::make_tuple(r, sumsq, matrix_or_none(pr.right.present, std::move(AV)),
                        matrix_or_none(pr.left.present, std::move(AtU)));
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

void bind_structured(py::module_& m) {
  py::class_<PySparse>(m, "SparseMeasurements",
                       "Sparse measurements M_i = sum_t vals[t] e_{rows[t]} e_{cols[t]}^T over the\n"
                       "nonzeros t in [indptr[i], indptr[i+1]) (indptr None: one per measurement;\n"
                       "values None: every value is `scale`), symmetrized when `symmetric`.")
      .def(py::init<Index, Index, Index, IndexArray, IndexArray, py::object, py::object, double,
                    bool>(),
           py::arg("m"), py::arg("d1"), py::arg("d2"), py::arg("rows").noconvert(),
           py::arg("cols").noconvert(), py::arg("indptr") = py::none(),
           py::arg("values") = py::none(), py::arg("scale") = 1.0, py::arg("symmetric") = false)
      .def("residual", &PySparse::residual, py::arg("L").noconvert(), py::arg("R").noconvert(),
           py::arg("y"), py::arg("right"), py::arg("left"), py::arg("n_threads") = 0,
           "(r, ||r||^2, A*(r) @ right or None, A*(r)^T @ left or None) for Z = L R^T.")
      .def("residual_sorted", &PySparse::residual_sorted, py::arg("L").noconvert(),
           py::arg("R").noconvert(), py::arg("y"), py::arg("right"), py::arg("left"),
           py::arg("n_threads") = 0, py::arg("y_by_col") = py::none(),
           py::arg("return_r") = true,
           "The pass in the row-sorted layout (one nonzero per measurement): y and r in the\n"
           "order of `order()`. y_by_col = y[col_order()] lets the column side recompute r\n"
           "in column order (the same bits, no gather); return_r=False: r is None.")
      .def("residual_sides", &PySparse::residual_sides, py::arg("L").noconvert(),
           py::arg("R").noconvert(), py::arg("y"), py::arg("row_B"), py::arg("col_B"),
           py::arg("n_threads") = 0,
           "residual_sorted's pieces, unreduced (sharded operators reassemble them):\n"
           "(r in sorted order, per-row ||r||^2 (d1,), [row side of w @ B for B in row_B],\n"
           "[column side for B in col_B]); never symmetrized or halved.")
      .def("adjoint_sides", &PySparse::adjoint_sides, py::arg("v").noconvert(),
           py::arg("row_B"), py::arg("col_B"), py::arg("n_threads") = 0,
           "The row and column sides of A*(v) for v in sorted order.")
      .def_property_readonly("rows", [](py::object self) {
             return readonly_view(self.cast<const PySparse&>().core->rows_array(), self);
           }, "The operator's own copy of rows (read-only).")
      .def_property_readonly("cols", [](py::object self) {
             return readonly_view(self.cast<const PySparse&>().core->cols_array(), self);
           }, "The operator's own copy of cols (read-only).")
      .def_property_readonly("indptr", [](py::object self) -> py::object {
             const auto& S = *self.cast<const PySparse&>().core;
             if (S.one_per_measurement()) return py::none();
             return readonly_view(S.indptr_array(), self);
           }, "The operator's own copy of indptr (read-only), or None.")
      .def_property_readonly("values", [](py::object self) -> py::object {
             const auto& S = *self.cast<const PySparse&>().core;
             if (S.one_per_measurement()) return py::none();
             return readonly_view(S.values_array(), self);
           }, "The operator's own copy of values (read-only), or None.")
      .def("order", &PySparse::order, "Row-sorted position -> measurement index (stable).")
      .def("col_order", &PySparse::col_order,
           "Column-ordered position -> row-sorted position (one nonzero per measurement).")
      .def_property_readonly("one_per_measurement",
                             [](const PySparse& s) { return s.core->one_per_measurement(); })
      .def("adjoint_products", &PySparse::adjoint_products, py::arg("v").noconvert(),
           py::arg("right"), py::arg("left"), py::arg("n_threads") = 0)
      .def("forward", &PySparse::forward, py::arg("Z").noconvert())
      .def("adjoint", &PySparse::adjoint, py::arg("v").noconvert())
      .def_property_readonly("nnz", [](const PySparse& s) { return s.core->nnz(); });
  // thread resolution (common.hpp): the solve's thread count on this thread, and the fork state
  m.def("set_scope_threads", [](int n_threads) {
          const int previous = threads::scope_threads;
          threads::scope_threads = n_threads;
          return previous;
        }, py::arg("n_threads"),
        "Set what n_threads <= 0 means for kernels called from this thread (0: OpenMP's\n"
        "default); returns the previous value. Used around a solve.");
  m.def("forked_after_team", [] { return threads::forked_after_team.load(); },
        "True in a process forked after a multi-threaded pass: kernels run on one thread.");
  m.def("rank_one_residual", &rank_one_residual_py, py::arg("A").noconvert(), py::arg("scale"),
        py::arg("L").noconvert(), py::arg("R").noconvert(), py::arg("y"), py::arg("right"),
        py::arg("left"), py::arg("n_threads") = 0,
        "(r, ||r||^2, S @ right or None, S @ left or None) for M_i = scale a_i a_i^T, Z = L R^T.");
  m.def("identity_residual", &identity_residual_py, py::arg("L").noconvert(),
        py::arg("R").noconvert(), py::arg("y"), py::arg("right"), py::arg("left"),
        py::arg("symmetric"), "The population operator's pass (A = Id, y = vec(Z*)).");
  m.def("rank_one_adjoint", &rank_one_adjoint_py, py::arg("A").noconvert(), py::arg("scale"),
        py::arg("v").noconvert());
}

}  // namespace wnsense
