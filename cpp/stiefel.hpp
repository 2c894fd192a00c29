// Tools on the Stiefel manifold St(d, r) = {X in R^{d x r}: X^T X = I_r}.
#pragma once
#include "common.hpp"

namespace wnsense {

// G - X sym(X^T G): the tangent-space projection (embedded metric).
RowMatrixXd tangent_projection(const Eigen::Ref<const RowMatrixXd>& X,
                               const Eigen::Ref<const RowMatrixXd>& G);

// Polar retraction of the step X - eta G: Y (Y^T Y)^{-1/2}, Y = X - eta G, with the inverse square
// root from an r x r symmetric eigendecomposition (Y rescaled first if its entries would overflow
// or underflow in Y^T Y: the polar factor does not change under positive scaling). Ill-conditioned
// steps (cond(Y) > 10, e.g. a huge eta along a rank-deficient G) take an SVD instead, so the
// result is orthonormal to rounding for every input. For tangent G, Y^T Y = I + eta^2 G^T G exactly
// (the formula of the paper); forming Y^T Y keeps X on the manifold even if G drifts from the
// tangent space by rounding.
RowMatrixXd polar_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                             const Eigen::Ref<const RowMatrixXd>& G, double eta);

// Q factor of X - eta G (Householder), signs fixed so that diag(R) > 0 (rescaled like the polar
// retraction when the step is huge).
RowMatrixXd qr_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                          const Eigen::Ref<const RowMatrixXd>& G, double eta);

// Cayley retraction (Wen & Yin) with the Euclidean gradient Gt: W = Gt X^T - X Gt^T,
// X+ = (I + eta/2 W)^{-1} (I - eta/2 W) X, applied in low-rank form: W = Q S Q^T on an orthonormal
// basis Q of range [X, Gt] (a thin QR) with S skew 2r x 2r, and the transform of S from its real
// Schur form (exact 2 x 2 rotations): X+ is X times an orthogonal matrix to rounding for every
// step size (no d x d matrix is formed).
RowMatrixXd cayley_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                              const Eigen::Ref<const RowMatrixXd>& Gt, double eta);

}  // namespace wnsense
