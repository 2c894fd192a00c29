// The per-iteration algebra of WN-LBFGS (weight-normalized Riemannian L-BFGS in the Gauss-Newton
// metric), as pure functions on thin matrices: everything here is d x r or r x r, so a whole
// iteration's small algebra is a handful of native calls instead of a hundred numpy calls.
//
// Tangent vectors are packed row-wise into one (n x r) row-major block:
//   symmetric   Z = X Theta X^T:      n = d + r,       rows [K; zeta],         X^T K = 0
//   rectangular Z = X_L Theta X_R^T:  n = d1 + d2 + r, rows [K_L; K_R; zeta]
// and the metric is <a, b> = <a_K, b_K> + w <a_zeta, b_zeta> with w = 1/2 (symmetric: then
// <v, v> = 1/2 ||DZ[v]||_F^2) or 1 (rectangular: <v, v> = ||DZ[v]||_F^2).
#pragma once
#include "common.hpp"

namespace wnsense {

struct TangentMetric {
  Index theta_row = 0;  // first row of the zeta block
  double theta_weight = 1.0;
};

double tangent_inner(const Eigen::Ref<const RowMatrixXd>& a, const Eigen::Ref<const RowMatrixXd>& b,
                     const TangentMetric& metric);

// L-BFGS two-loop recursion: the direction -H g from the k stored pairs (S[i], Y[i]) (each an
// n x r block of the (k, n, r) arrays, oldest first), H0 = gamma I with gamma = <s, y> / <y, y>
// of the newest pair; with no pairs, -g / curvature. *reset is set when the recursion did not
// give a descent direction (the caller drops the memory) and -g / curvature is returned.
RowMatrixXd lbfgs_direction(const Eigen::Ref<const RowMatrixXd>& g, const double* S,
                            const double* Y, Index k, const TangentMetric& metric,
                            double curvature, bool* reset);

// Gradient in the metric from one pass: symmetric [SX - X D; D], D = sym(X^T S X);
// rectangular [EX_R - X_L D; E^T X_L - X_R D^T; D], D = X_L^T E X_R.
RowMatrixXd wn_gradient_sym(const Eigen::Ref<const RowMatrixXd>& X,
                            const Eigen::Ref<const RowMatrixXd>& SX);
RowMatrixXd wn_gradient_rect(const Eigen::Ref<const RowMatrixXd>& XL,
                             const Eigen::Ref<const RowMatrixXd>& XR,
                             const Eigen::Ref<const RowMatrixXd>& EXR,
                             const Eigen::Ref<const RowMatrixXd>& EtXL);

// Damped Nystrom retraction along v with step t (symmetric): Theta_t = sym(Theta + t zeta) =
// W diag(w) W^T, xi = t K W diag(1 / (|w| + lam)) W^T, N = (I + xi^T xi)^{-1/2},
// X+ = (X + xi) N, Theta+ = sym(N^{-1} Theta_t N^{-1}), so Z+ = (X + xi) Theta_t (X + xi)^T.
void nystrom_retract_sym(const Eigen::Ref<const RowMatrixXd>& X,
                         const Eigen::Ref<const RowMatrixXd>& Theta,
                         const Eigen::Ref<const RowMatrixXd>& v, double t, double lam,
                         RowMatrixXd* X_new, RowMatrixXd* Theta_new);
// Rectangular: Theta_t = Theta + t zeta = U diag(s) V^T, xi_L = t K_L V diag(1/(s+lam)) U^T,
// xi_R = t K_R U diag(1/(s+lam)) V^T, X_L+ = (X_L + xi_L) N_L, X_R+ = (X_R + xi_R) N_R,
// Theta+ = N_L^{-1} Theta_t N_R^{-1}.
void nystrom_retract_rect(const Eigen::Ref<const RowMatrixXd>& XL,
                          const Eigen::Ref<const RowMatrixXd>& Theta,
                          const Eigen::Ref<const RowMatrixXd>& XR,
                          const Eigen::Ref<const RowMatrixXd>& v, double t, double lam,
                          RowMatrixXd* XL_new, RowMatrixXd* Theta_new, RowMatrixXd* XR_new);

// Vector transport by projection: DZ[v] at the old point, projected onto the tangent space at
// the new one (thin: DZ X+ = K (X^T X+) + X (K^T X+) + X zeta (X^T X+)); in place on each of
// the k blocks of V (k, n, r).
void wn_transport_sym(const Eigen::Ref<const RowMatrixXd>& X,
                      const Eigen::Ref<const RowMatrixXd>& X_new, double* V, Index k);
void wn_transport_rect(const Eigen::Ref<const RowMatrixXd>& XL,
                       const Eigen::Ref<const RowMatrixXd>& XR,
                       const Eigen::Ref<const RowMatrixXd>& XL_new,
                       const Eigen::Ref<const RowMatrixXd>& XR_new, double* V, Index k);

}  // namespace wnsense
