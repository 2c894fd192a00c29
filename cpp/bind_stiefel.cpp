// Bindings for the Stiefel-manifold tools.
#include "bindings.hpp"
#include "stiefel.hpp"

namespace wnsense {
namespace {

void check_pair(const MatrixArg& X, const MatrixArg& G, const char* gname) {
  require(X.rows() >= X.cols() && X.cols() >= 1, "X must be d x r with 1 <= r <= d");
  require_shape(G, X.rows(), X.cols(), gname);
}

template <RowMatrixXd (*F)(const MatrixArg&, const MatrixArg&, double)>
RowMatrixXd retraction(MatrixArg X, MatrixArg G, double eta) {
  check_pair(X, G, "G");
  py::gil_scoped_release release;
  return F(X, G, eta);
}

}  // namespace

void bind_stiefel(py::module_& m) {
  m.def(
      "tangent_projection",
      [](MatrixArg X, MatrixArg G) {
        check_pair(X, G, "G");
        py::gil_scoped_release release;
        return tangent_projection(X, G);
      },
      py::arg("X").noconvert(), py::arg("G").noconvert());
  m.def("polar_retraction", &retraction<polar_retraction>, py::arg("X").noconvert(),
        py::arg("G").noconvert(), py::arg("eta"));
  m.def("qr_retraction", &retraction<qr_retraction>, py::arg("X").noconvert(),
        py::arg("G").noconvert(), py::arg("eta"));
  m.def("cayley_retraction", &retraction<cayley_retraction>, py::arg("X").noconvert(),
        py::arg("G").noconvert(), py::arg("eta"));
}

}  // namespace wnsense
