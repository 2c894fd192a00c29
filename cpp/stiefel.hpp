// Tools on the Stiefel manifold St(d, r) = {X in R^{d x r}: X^T X = I_r}.
#pragma once
#include "common.hpp"

namespace wnsense {

// G - X sym(X^T G): the tangent-space projection (embedded metric).
RowMatrixXd tangent_projection(const Eigen::Ref<const RowMatrixXd>& X,
                               const Eigen::Ref<const RowMatrixXd>& G);

// Polar retraction of the step X - eta G: Y (Y^T Y)^{-1/2}, Y = X - eta G, with the inverse square
// root from an r x r symmetric eigendecomposition. For tangent G, Y^T Y = I + eta^2 G^T G exactly
// (the formula of the paper); forming Y^T Y keeps X on the manifold even if G drifts from the
// tangent space by rounding.
RowMatrixXd polar_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                             const Eigen::Ref<const RowMatrixXd>& G, double eta);

// Q factor of X - eta G (Householder), signs fixed so that diag(R) > 0.
RowMatrixXd qr_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                          const Eigen::Ref<const RowMatrixXd>& G, double eta);

// Cayley retraction (Wen & Yin) with the Euclidean gradient Gt: W = Gt X^T - X Gt^T,
// X+ = (I + eta/2 W)^{-1} (I - eta/2 W) X, applied through W = U V^T (U = [Gt, X],
// V = [X, -Gt]) and the Woodbury identity: only a 2r x 2r system is solved.
RowMatrixXd cayley_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                              const Eigen::Ref<const RowMatrixXd>& Gt, double eta);

}  // namespace wnsense
