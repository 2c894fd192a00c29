#include "identity_sensing.hpp"

namespace wnsense {

double identity_residual(const Eigen::Ref<const RowMatrixXd>& L,
                         const Eigen::Ref<const RowMatrixXd>& R, const double* y, double* r,
                         const ThinRequest& req, RowMatrixXd* AV, RowMatrixXd* AtU) {
  const Index d1 = L.rows(), d2 = R.rows();
  Eigen::Map<RowMatrixXd> G(r, d1, d2);
  G.noalias() = L * R.transpose();
  if (y) G -= Eigen::Map<const RowMatrixXd>(y, d1, d2);
  const double sumsq = G.squaredNorm();
  if (req.any()) {
    const bool symmetric = req.symmetrize;
    RowMatrixXd S = symmetric ? RowMatrixXd(0.5 * (G + G.transpose())) : RowMatrixXd(G);
    if (req.right) AV->noalias() = S * (*req.right);
    if (req.left) {
      if (symmetric)
        AtU->noalias() = S * (*req.left);
      else
        AtU->noalias() = S.transpose() * (*req.left);
    }
  }
  return sumsq;
}

}  // namespace wnsense
