// Bindings for the WN-LBFGS iteration algebra (cpp/wn_geometry.hpp). Sizes are checked before
// any native code touches memory; the GIL is released around the work.
#include "bindings.hpp"
#include "wn_geometry.hpp"

namespace wnsense {
namespace {

using Stack = py::array_t<double, py::array::c_style>;

// A (k, n, r) stack of packed tangent vectors (k may be 0).
Index check_stack(const Stack& V, Index n, Index r, const char* name) {
  if (V.ndim() != 3 || V.shape(1) != n || V.shape(2) != r)
    throw std::invalid_argument(std::string(name) + " must have shape (k, " + std::to_string(n) +
                                ", " + std::to_string(r) + ")");
  return V.shape(0);
}

void check_factor(const MatrixArg& X, const char* name) {
  require(X.cols() >= 1 && X.rows() >= X.cols(),
          std::string(name) + " must be d x r with 1 <= r <= d");
}

Index sym_rows(const MatrixArg& X) { return X.rows() + X.cols(); }
Index rect_rows(const MatrixArg& XL, const MatrixArg& XR) {
  return XL.rows() + XR.rows() + XL.cols();
}

void check_rect(const MatrixArg& XL, const MatrixArg& XR) {
  check_factor(XL, "X_L");
  check_factor(XR, "X_R");
  require(XR.cols() == XL.cols(), "X_L and X_R must have the same number of columns");
}

py::tuple direction(MatrixArg g, const Stack& S, const Stack& Y, Index theta_row,
                    double theta_weight, double curvature) {
  const Index k = check_stack(S, g.rows(), g.cols(), "S");
  require(check_stack(Y, g.rows(), g.cols(), "Y") == k, "S and Y must hold the same pairs");
  require(theta_row >= 0 && theta_row <= g.rows(), "theta_row out of range");
  require(curvature > 0, "curvature must be positive");
  bool reset = false;
  RowMatrixXd p;
  {
    py::gil_scoped_release release;
    p = lbfgs_direction(g, S.data(), Y.data(), k, TangentMetric{theta_row, theta_weight},
                        curvature, &reset);
  }
  return py::make_tuple(p, reset);
}

// The stack a transport writes: V itself when in_place (the solver's own scratch, built fresh
// each iteration: ~100 MB at d1 + d2 = 2e5, r = 10 with a memory of 5), else a copy of it.
Stack transport_output(const Stack& V, bool in_place) {
  if (in_place) {
    require(V.writeable(), "V must be writeable for in_place=True");
    return V;
  }
  Stack out({V.shape(0), V.shape(1), V.shape(2)});
  std::copy(V.data(), V.data() + V.size(), out.mutable_data());
  return out;
}

Stack transport_sym(MatrixArg X, MatrixArg Xn, const Stack& V, bool in_place) {
  check_factor(X, "X");
  require_shape(Xn, X.rows(), X.cols(), "X_new");
  const Index k = check_stack(V, sym_rows(X), X.cols(), "V");
  Stack out = transport_output(V, in_place);
  double* o = out.mutable_data();
  py::gil_scoped_release release;
  wn_transport_sym(X, Xn, o, k);
  return out;
}

Stack transport_rect(MatrixArg XL, MatrixArg XR, MatrixArg XLn, MatrixArg XRn, const Stack& V,
                     bool in_place) {
  check_rect(XL, XR);
  require_shape(XLn, XL.rows(), XL.cols(), "X_L_new");
  require_shape(XRn, XR.rows(), XR.cols(), "X_R_new");
  const Index k = check_stack(V, rect_rows(XL, XR), XL.cols(), "V");
  Stack out = transport_output(V, in_place);
  double* o = out.mutable_data();
  py::gil_scoped_release release;
  wn_transport_rect(XL, XR, XLn, XRn, o, k);
  return out;
}

}  // namespace

void bind_wn(py::module_& m) {
  m.def(
      "wn_gradient_sym",
      [](MatrixArg X, MatrixArg SX) {
        check_factor(X, "X");
        require_shape(SX, X.rows(), X.cols(), "SX");
        py::gil_scoped_release release;
        return wn_gradient_sym(X, SX);
      },
      py::arg("X").noconvert(), py::arg("SX").noconvert(),
      "Packed gradient [SX - X D; D], D = sym(X^T S X), of Z = X Theta X^T.");
  m.def(
      "wn_gradient_rect",
      [](MatrixArg XL, MatrixArg XR, MatrixArg EXR, MatrixArg EtXL) {
        check_rect(XL, XR);
        require_shape(EXR, XL.rows(), XL.cols(), "EXR");
        require_shape(EtXL, XR.rows(), XR.cols(), "EtXL");
        py::gil_scoped_release release;
        return wn_gradient_rect(XL, XR, EXR, EtXL);
      },
      py::arg("X_L").noconvert(), py::arg("X_R").noconvert(), py::arg("EXR").noconvert(),
      py::arg("EtXL").noconvert(),
      "Packed gradient [E X_R - X_L D; E^T X_L - X_R D^T; D], D = X_L^T E X_R.");
  m.def(
      "tangent_inner",
      [](MatrixArg a, MatrixArg b, Index theta_row, double theta_weight) {
        require_shape(b, a.rows(), a.cols(), "b");
        require(theta_row >= 0 && theta_row <= a.rows(), "theta_row out of range");
        return tangent_inner(a, b, TangentMetric{theta_row, theta_weight});
      },
      py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("theta_row"),
      py::arg("theta_weight"), "<a, b> in the packed tangent metric.");
  m.def("lbfgs_direction", &direction, py::arg("g").noconvert(), py::arg("S").noconvert(),
        py::arg("Y").noconvert(), py::arg("theta_row"), py::arg("theta_weight"),
        py::arg("curvature"),
        "(p, reset): the L-BFGS two-loop direction in the packed tangent metric.");
  m.def(
      "nystrom_retract_sym",
      [](MatrixArg X, MatrixArg Theta, MatrixArg v, double t, double lam) {
        check_factor(X, "X");
        require_shape(Theta, X.cols(), X.cols(), "Theta");
        require_shape(v, sym_rows(X), X.cols(), "v");
        RowMatrixXd Xn, Tn;
        {
          py::gil_scoped_release release;
          nystrom_retract_sym(X, Theta, v, t, lam, &Xn, &Tn);
        }
        return py::make_tuple(Xn, Tn);
      },
      py::arg("X").noconvert(), py::arg("Theta").noconvert(), py::arg("v").noconvert(),
      py::arg("t"), py::arg("lam"), "(X+, Theta+): the damped Nystrom retraction.");
  m.def(
      "nystrom_retract_rect",
      [](MatrixArg XL, MatrixArg Theta, MatrixArg XR, MatrixArg v, double t, double lam) {
        check_rect(XL, XR);
        require_shape(Theta, XL.cols(), XL.cols(), "Theta");
        require_shape(v, rect_rows(XL, XR), XL.cols(), "v");
        RowMatrixXd XLn, Tn, XRn;
        {
          py::gil_scoped_release release;
          nystrom_retract_rect(XL, Theta, XR, v, t, lam, &XLn, &Tn, &XRn);
        }
        return py::make_tuple(XLn, Tn, XRn);
      },
      py::arg("X_L").noconvert(), py::arg("Theta").noconvert(), py::arg("X_R").noconvert(),
      py::arg("v").noconvert(), py::arg("t"), py::arg("lam"),
      "(X_L+, Theta+, X_R+): the damped Nystrom retraction (rectangular).");
  m.def("wn_transport_sym", &transport_sym, py::arg("X").noconvert(),
        py::arg("X_new").noconvert(), py::arg("V").noconvert(), py::arg("in_place") = false,
        "Transport by projection of a (k, d+r, r) stack of tangent vectors (in_place: into V).");
  m.def("wn_transport_rect", &transport_rect, py::arg("X_L").noconvert(),
        py::arg("X_R").noconvert(), py::arg("X_L_new").noconvert(),
        py::arg("X_R_new").noconvert(), py::arg("V").noconvert(), py::arg("in_place") = false,
        "Transport by projection of a (k, d1+d2+r, r) stack of tangent vectors (in_place: into\n"
        "V).");
}

}  // namespace wnsense
