// Bindings for the spectral activation and the SNN forward / backward passes.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "spectral.hpp"

namespace wnsense {
namespace {

void check_square(const MatrixArg& Q, const char* name) {
  require(Q.rows() >= 1 && Q.rows() == Q.cols(),
          std::string(name) + " must be a non-empty square matrix, got (" +
              std::to_string(Q.rows()) + ", " + std::to_string(Q.cols()) + ")");
}

}  // namespace

void bind_spectral(py::module_& m) {
  m.def(
      "spectral_svd",
      [](MatrixArg Q) {
        check_square(Q, "Q");
        SpectralSVD f;
        {
          py::gil_scoped_release release;
          f = spectral_svd(Q);
        }
        return py::make_tuple(f.P, f.s, f.R);
      },
      py::arg("Q").noconvert(),
      "SVD Q = P diag(s) R^T of a square matrix (s non-increasing): returns (P, s, R).");
  py::module_ t = testing_submodule(m);  // the activation alone: its tests only
  t.def(
      "spectral_activation",
      [](MatrixArg Q) {
        check_square(Q, "Q");
        py::gil_scoped_release release;
        return spectral_apply(spectral_svd(Q));
      },
      py::arg("Q").noconvert(), "Gamma(Q) = P tanh(Sigma) R^T for the SVD Q = P Sigma R^T.");
  t.def(
      "spectral_activation_backward",
      [](MatrixArg Q, MatrixArg G) {
        check_square(Q, "Q");
        require_shape(G, Q.rows(), Q.cols(), "G");
        py::gil_scoped_release release;
        return spectral_backward(spectral_svd(Q), G);
      },
      py::arg("Q").noconvert(), py::arg("G").noconvert(),
      "dL/dQ given G = dL/dGamma(Q) (the backward pass of the spectral activation).");

  py::class_<SnnTape>(m, "SnnTape",
                      "One forward pass of the spectral neural network (for snn_backward).")
      .def_property_readonly("x", [](const SnnTape& t) { return t.X; },
                             "The network output X = X^(L)_1 (a copy).");
  m.def(
      "snn_forward",
      [](MatrixArg U, MatrixArg V, std::vector<RowMatrixXd> alphas) {
        check_snn_shapes(U.rows(), U.cols(), V.rows(), V.cols(), alphas);
        py::gil_scoped_release release;
        return snn_forward(U, V, std::move(alphas));
      },
      py::arg("U").noconvert(), py::arg("V").noconvert(), py::arg("alphas"),
      "Forward pass. U, V: (d_1 * d, d) stacks of U_k, V_k; alphas: list of the mixing "
      "matrices alpha^(l) (d_l x d_{l+1}, the last one d_L x 1). Returns an SnnTape.");
  m.def(
      "snn_backward",
      [](const SnnTape& tape, MatrixArg GX) {
        require_shape(GX, tape.d, tape.d, "GX");
        SnnGradients g;
        {
          py::gil_scoped_release release;
          g = snn_backward(tape, GX);
        }
        return py::make_tuple(g.U, g.V, g.alpha);
      },
      py::arg("tape"), py::arg("GX").noconvert(),
      "Backward pass given GX = dL/dX: returns (dL/dU, dL/dV, [dL/dalpha^(l)]).");
}

}  // namespace wnsense
