// Helpers shared by the binding files: argument checks that run before any native code touches
// memory, so that a wrong call raises TypeError/ValueError instead of crashing.
#pragma once
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "dense_sensing.hpp"

namespace wnsense {
namespace py = pybind11;

using MatrixArg = Eigen::Ref<const RowMatrixXd>;
using VectorArg = Eigen::Ref<const VectorXd>;
using IndexArray = py::array_t<std::int64_t, py::array::c_style>;

// A native index vector (orders, bounds) as a new int64 numpy array.
template <class Int>
IndexArray to_index_array(const std::vector<Int>& v) {
  IndexArray out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

inline void require_shape(const MatrixArg& a, Index rows, Index cols, const char* name) {
  if (a.rows() != rows || a.cols() != cols)
    throw std::invalid_argument(std::string(name) + " must have shape (" + std::to_string(rows) +
                                ", " + std::to_string(cols) + "), got (" +
                                std::to_string(a.rows()) + ", " + std::to_string(a.cols()) + ")");
}

inline void require_length(Index n, Index expected, const char* name) {
  if (n != expected)
    throw std::invalid_argument(std::string(name) + " must have length " +
                                std::to_string(expected) + ", got " + std::to_string(n));
}

// A thin-matrix (or vector) argument that may be None. The caster owns the view's referent
// for the lifetime of this object; no conversion: the Python layer passes float64 C-contiguous.
template <class Arg>
struct Optional {
  py::detail::make_caster<Arg> caster;
  bool present = false;
  Optional(const py::object& obj, const char* name) {
    if (obj.is_none()) return;
    if (!caster.load(obj, false))
      throw py::type_error(std::string(name) +
                           " must be None or a float64 C-contiguous array of the right rank");
    present = true;
  }
  Arg& get() { return static_cast<Arg&>(caster); }
  const double* data_or_null() { return present ? get().data() : nullptr; }
};

// The thin products one pass is asked for: A*(r) @ right (right has `right_rows` rows) and
// A*(r)^T @ left (`left_rows` rows), each optional; symmetrize: S = sym(A*(r)) on both sides.
struct Products {
  Optional<MatrixArg> right, left;
  ThinRequest req;
  Products(const py::object& right_, const py::object& left_, Index right_rows, Index left_rows,
           bool symmetrize)
      : right(right_, "right"), left(left_, "left") {
    if (right.present) {
      require_shape(right.get(), right_rows, right.get().cols(), "right");
      req.right = &right.get();
    }
    if (left.present) {
      require_shape(left.get(), left_rows, left.get().cols(), "left");
      req.left = &left.get();
    }
    req.symmetrize = symmetrize;
  }
  Products(const Products&) = delete;  // req points into the casters
  Products& operator=(const Products&) = delete;
};

inline py::object matrix_or_none(bool present, RowMatrixXd&& M) {
  if (!present) return py::none();
  return py::array_t<double>(py::cast(std::move(M)));
}

// _core.testing: what only the tests and benchmarks call (the library never does).
inline py::module_ testing_submodule(py::module_& m) {
  return m.def_submodule("testing", "Exports for the tests and benchmarks only.");
}

void bind_sensing(py::module_& m);
void bind_structured(py::module_& m);
void bind_wn(py::module_& m);
void bind_stiefel(py::module_& m);
void bind_bench(py::module_& m);
void bind_spectral(py::module_& m);

}  // namespace wnsense
