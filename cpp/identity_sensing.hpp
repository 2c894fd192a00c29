// The population operator A = Id (y = vec(Z*)): the infinite-sample limit of the ensembles.
#pragma once
#include "common.hpp"
#include "dense_sensing.hpp"

namespace wnsense {

// r = vec(L R^T - Y) (Y = y as a row-major d1 x d2 matrix; y == nullptr: zero) written into r
// (d1 * d2 doubles), returns ||r||^2; with a request also the thin products of G = L R^T - Y
// (of sym(G) when req.symmetrize): AV = G @ right, AtU = G^T @ left (sym(G) @ left). One native
// call instead of a dozen small numpy ones: the population problems are where loop overhead shows.
double identity_residual(const Eigen::Ref<const RowMatrixXd>& L,
                         const Eigen::Ref<const RowMatrixXd>& R, const double* y, double* r,
                         const ThinRequest& req, RowMatrixXd* AV, RowMatrixXd* AtU);

}  // namespace wnsense
