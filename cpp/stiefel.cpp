#include "stiefel.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/LU>
#include <Eigen/QR>

namespace wnsense {

namespace {
using MatrixXd = Eigen::MatrixXd;
}

RowMatrixXd tangent_projection(const Eigen::Ref<const RowMatrixXd>& X,
                               const Eigen::Ref<const RowMatrixXd>& G) {
  const MatrixXd XtG = X.transpose() * G;
  const MatrixXd sym = 0.5 * (XtG + XtG.transpose());
  return G - X * sym;
}

RowMatrixXd polar_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                             const Eigen::Ref<const RowMatrixXd>& G, double eta) {
  const RowMatrixXd Y = X - eta * G;
  MatrixXd gram = Y.transpose() * Y;
  gram = 0.5 * (gram + gram.transpose());
  Eigen::SelfAdjointEigenSolver<MatrixXd> eig(gram);
  const VectorXd inv_sqrt = eig.eigenvalues().cwiseMax(1e-300).cwiseSqrt().cwiseInverse();
  const MatrixXd& Q = eig.eigenvectors();
  const MatrixXd gram_inv_sqrt = Q * inv_sqrt.asDiagonal() * Q.transpose();
  return Y * gram_inv_sqrt;
}

RowMatrixXd qr_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                          const Eigen::Ref<const RowMatrixXd>& G, double eta) {
  const Index d = X.rows(), r = X.cols();
  const MatrixXd Y = X - eta * G;
  Eigen::HouseholderQR<MatrixXd> qr(Y);
  MatrixXd Q = qr.householderQ() * MatrixXd::Identity(d, r);
  const auto& R = qr.matrixQR();
  for (Index j = 0; j < r; ++j)
    if (R(j, j) < 0) Q.col(j) *= -1.0;
  return Q;
}

RowMatrixXd cayley_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                              const Eigen::Ref<const RowMatrixXd>& Gt, double eta) {
  const Index d = X.rows(), r = X.cols();
  const double a = 0.5 * eta;
  RowMatrixXd U(d, 2 * r), V(d, 2 * r);
  U << Gt, X;
  V << X, -Gt;
  // B = (I - a U V^T) X
  const RowMatrixXd B = X - a * (U * (V.transpose() * X));
  // (I + a U V^T)^{-1} B = B - a U (I + a V^T U)^{-1} V^T B
  const MatrixXd small = MatrixXd::Identity(2 * r, 2 * r) + a * (V.transpose() * U);
  const MatrixXd VtB = V.transpose() * B;
  const MatrixXd solved = small.partialPivLu().solve(VtB);
  return B - a * (U * solved);
}

}  // namespace wnsense
