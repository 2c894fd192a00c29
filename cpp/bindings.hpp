// Helpers shared by the binding files: argument checks that run before any native code touches
// memory, so that a wrong call raises TypeError/ValueError instead of crashing.
#pragma once
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common.hpp"

namespace wnsense {
namespace py = pybind11;

using MatrixArg = Eigen::Ref<const RowMatrixXd>;
using VectorArg = Eigen::Ref<const VectorXd>;

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

void bind_sensing(py::module_& m);
void bind_stiefel(py::module_& m);
void bind_bench(py::module_& m);
void bind_spectral(py::module_& m);

}  // namespace wnsense
