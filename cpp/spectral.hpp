// The spectral activation of the Spectral Neural Network (SNN; Chu, Ghosh, Lam, Mukherjee,
// arXiv 2402.17595) and the network's forward / backward passes (SPEC 3.2).
//
//   Gamma(Q) = P tanh(Sigma) R^T            for the SVD Q = P Sigma R^T (square d x d Q)
//   X^(0)_k  = U_k V_k^T                                     k = 1..d_1
//   X^(l)_j  = sum_k alpha^(l)_{kj} Gamma(X^(l-1)_k)         l = 1..L, j = 1..d_{l+1}
//   X        = X^(L)_1                                       (d_{L+1} = 1)
//
// Gamma is well defined whatever the SVD's sign and basis choices (tanh is odd, and a spectral
// function of repeated singular values does not depend on the basis of their subspace).
//
// Backward of Gamma: given G = dL/dGamma, with Gh = P^T G R and f = tanh,
//   D_ii = f'(s_i) Gh_ii,
//   D_ij = (f(s_i)-f(s_j))/(s_i-s_j) (Gh_ij+Gh_ji)/2 + (f(s_i)+f(s_j))/(s_i+s_j) (Gh_ij-Gh_ji)/2,
//   dL/dQ = P D R^T.
// The two divided differences are evaluated through the tanh addition theorem,
//   (tanh a - tanh b)/(a - b) = (1 - tanh a tanh b) tanhc(a - b),
//   (tanh a + tanh b)/(a + b) = (1 + tanh a tanh b) tanhc(a + b),     tanhc(x) = tanh(x)/x,
// which is exact, free of cancellation when a ~ b, and reduces to the derivative limits
// f'(s) = 1 - tanh(s)^2 (a = b) and f'(0) = 1 (a = b = 0) without any branch: the near-equal and
// rank-deficient cases need no threshold.
#pragma once
#include <vector>

#include "common.hpp"

namespace wnsense {

// Q = P diag(s) R^T, s sorted non-increasing, s >= 0; P, R orthogonal d x d.
struct SpectralSVD {
  RowMatrixXd P;
  VectorXd s;
  RowMatrixXd R;
};

// SVD of a square matrix (Jacobi: accurate for the small d x d blocks of the SNN). A non-finite
// Q gives NaN factors (no SVD is attempted).
SpectralSVD spectral_svd(const Eigen::Ref<const RowMatrixXd>& Q);

// Gamma(Q) = P tanh(diag s) R^T from the SVD.
RowMatrixXd spectral_apply(const SpectralSVD& f);

// dL/dQ from dL/dGamma(Q) = G (the formula above).
RowMatrixXd spectral_backward(const SpectralSVD& f, const Eigen::Ref<const RowMatrixXd>& G);

// tanh(x)/x, with its limit 1 at 0.
double tanhc(double x);

// Everything the backward pass needs from one forward pass of the network. Owns copies of the
// (small) parameters, so that a tape is self-consistent whatever the caller does afterwards.
struct SnnTape {
  Index d = 0;
  RowMatrixXd U, V;                            // (d_1 d) x d: U_k, V_k stacked by rows
  std::vector<RowMatrixXd> alpha;              // alpha^(l): d_l x d_{l+1}, l = 1..L
  std::vector<std::vector<SpectralSVD>> svd;   // svd[l-1][k]: SVD of X^(l-1)_k
  std::vector<std::vector<RowMatrixXd>> act;   // act[l-1][k] = Gamma(X^(l-1)_k)
  RowMatrixXd X;                               // the output X^(L)_1
};

struct SnnGradients {
  RowMatrixXd U, V;                // (d_1 d) x d
  std::vector<RowMatrixXd> alpha;  // same shapes as the alphas
};

// Forward pass. Shapes must already be checked (see check_snn_shapes).
SnnTape snn_forward(const Eigen::Ref<const RowMatrixXd>& U, const Eigen::Ref<const RowMatrixXd>& V,
                    std::vector<RowMatrixXd> alpha);

// Backward pass: the gradients of L given GX = dL/dX (d x d).
SnnGradients snn_backward(const SnnTape& tape, const Eigen::Ref<const RowMatrixXd>& GX);

// Throws std::invalid_argument unless U, V are (d_1 d) x d stacks of the same shape and the
// alphas chain d_1 x d_2, d_2 x d_3, ..., d_L x 1.
void check_snn_shapes(Index U_rows, Index U_cols, Index V_rows, Index V_cols,
                      const std::vector<RowMatrixXd>& alpha);

}  // namespace wnsense
