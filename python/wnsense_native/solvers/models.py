"""The parameterizations (models) every method, diagnostic and backend uses: ``p -> Z = L R^T``,
the Euclidean gradient of the loss from the operator's thin products, and their derivatives (the
JVPs the Hessian diagnostics need); also the two Stiefel helpers written once in numpy (the
tangent projection and the sign-fixed QR factor).

Loss convention (SPEC 3): ``f = 1/4 ||A(Z) - y||^2`` for the symmetric family (``S = sym(A*(r))``)
and ``f = 1/2 ||A(Z) - y||^2`` for the rectangular one (``E = A*(r)``).
"""
from __future__ import annotations

import numpy as np

from ..targets import qf

__all__ = ["sym", "qf", "tangent_projection", "SymmetricFactor", "AsymmetricFactor",
           "WeightNormalized", "RectangularWeightNormalized", "ColumnNormalized", "model_for"]


def sym(B: np.ndarray) -> np.ndarray:
    """``(B + B^T) / 2``."""
    return 0.5 * (B + B.T)


def tangent_projection(X, B):
    """``B - X sym(X^T B)``: the component of ``B`` tangent to ``St(d, r)`` at ``X`` (numpy; the
    native kernel is ``_core.tangent_projection``)."""
    return B - X @ sym(X.T @ B)


# ---------------------------------------------------------------------------------------------
# the parameterizations: model Z = L R^T, gradient of the loss from thin products of A*(r), and
# their derivatives

class _Model:
    """One parameterization ``p -> Z`` (keys of ``res.factors``), in the thin-factor protocol.

    ``model(p) -> (L, R)`` with ``Z = L R^T``. ``probes(p) -> (right, left)``: the thin matrices
    the gradient needs products with; ``gradient(p, AV, AtU)`` the Euclidean gradient of the
    problem's loss from ``AV = A*(r) @ right`` and ``AtU = A*(r)^T @ left`` (``sym(A*(r))`` in the
    symmetric family; linear in ``A*(r)``). ``model_jvp(p, D) -> (L, R)`` with ``dZ = L R^T`` the
    derivative along ``D``; ``jvp_probes(p, D)`` and ``gradient_jvp(p, D, AV, AtU)`` the
    derivative of the gradient in ``p`` along ``D`` at fixed ``A*(r)``, from the products of
    ``A*(r)`` with those probes. ``stiefel``: factors on a Stiefel manifold;
    ``symmetric_factors``: factors restricted to symmetric matrices.
    """

    names: tuple = ()
    stiefel: tuple = ()
    symmetric_factors: tuple = ()
    left = right = None          # the factors whose column spaces "alignment" compares

    @staticmethod
    def model(p):
        raise NotImplementedError

    @staticmethod
    def probes(p):
        raise NotImplementedError

    @staticmethod
    def gradient(p, AV, AtU):
        raise NotImplementedError

    @staticmethod
    def model_jvp(p, D):
        raise NotImplementedError

    @staticmethod
    def jvp_probes(p, D):
        raise NotImplementedError

    @staticmethod
    def gradient_jvp(p, D, AV, AtU):
        raise NotImplementedError


class SymmetricFactor(_Model):
    """``Z = Y Y^T``, ``f = 1/4 ||A(Z) - y||^2``: ``grad_Y = S Y``, ``S = sym(A*(r))``."""

    names, left = ("Y",), "Y"

    @staticmethod
    def model(p):
        return p["Y"], p["Y"]

    @staticmethod
    def probes(p):
        return p["Y"], None

    @staticmethod
    def gradient(p, SY, _):
        return {"Y": SY}

    @staticmethod
    def model_jvp(p, D):       # dZ = D Y^T + Y D^T
        Y, DY = p["Y"], D["Y"]
        return np.hstack([DY, Y]), np.hstack([Y, DY])

    @staticmethod
    def jvp_probes(p, D):
        return D["Y"], None

    @staticmethod
    def gradient_jvp(p, D, SDY, _):
        return {"Y": SDY}


class AsymmetricFactor(_Model):
    """``Z = U V^T``, ``f = 1/2 ||A(Z) - y||^2``: ``grad_U = E V``, ``grad_V = E^T U``."""

    names, left, right = ("U", "V"), "U", "V"

    @staticmethod
    def model(p):
        return p["U"], p["V"]

    @staticmethod
    def probes(p):
        return p["V"], p["U"]

    @staticmethod
    def gradient(p, EV, EtU):
        return {"U": EV, "V": EtU}

    @staticmethod
    def model_jvp(p, D):       # dZ = D_U V^T + U D_V^T
        return np.hstack([D["U"], p["U"]]), np.hstack([p["V"], D["V"]])

    @staticmethod
    def jvp_probes(p, D):
        return D["V"], D["U"]

    @staticmethod
    def gradient_jvp(p, D, EDV, EtDU):
        return {"U": EDV, "V": EtDU}


class WeightNormalized(_Model):
    """``Z = X Theta X^T`` (WN-RGD), ``f = 1/4 ||A(Z) - y||^2``:
    ``grad_X = S X Theta``, ``grad_Theta = 1/2 X^T S X``."""

    names, left = ("X", "Theta"), "X"
    stiefel, symmetric_factors = ("X",), ("Theta",)

    @staticmethod
    def model(p):
        return p["X"] @ p["Theta"], p["X"]

    @staticmethod
    def probes(p):
        return p["X"], None

    @staticmethod
    def gradient(p, SX, _):
        return {"X": SX @ p["Theta"], "Theta": 0.5 * (p["X"].T @ SX)}

    @staticmethod
    def model_jvp(p, D):       # dZ = (D_X Theta + X D_Theta) X^T + X Theta D_X^T
        X, T, DX, DT = p["X"], p["Theta"], D["X"], D["Theta"]
        return np.hstack([DX @ T + X @ DT, X @ T]), np.hstack([X, DX])

    @staticmethod
    def jvp_probes(p, D):
        return np.hstack([p["X"], D["X"]]), None

    @staticmethod
    def gradient_jvp(p, D, products, _):
        X, T, DX, DT = p["X"], p["Theta"], D["X"], D["Theta"]
        SX, SDX = np.hsplit(products, 2)
        return {"X": SDX @ T + SX @ DT, "Theta": 0.5 * (DX.T @ SX + X.T @ SDX)}


class RectangularWeightNormalized(_Model):
    """``Z = X_L Theta X_R^T`` (rectangular WN-RGD), ``f = 1/2 ||A(Z) - y||^2``:
    ``grad_XL = E X_R Theta^T``, ``grad_XR = E^T X_L Theta``, ``grad_Theta = X_L^T E X_R``."""

    names, left, right = ("X_L", "Theta", "X_R"), "X_L", "X_R"
    stiefel = ("X_L", "X_R")

    @staticmethod
    def model(p):
        return p["X_L"] @ p["Theta"], p["X_R"]

    @staticmethod
    def probes(p):
        return p["X_R"], p["X_L"]

    @staticmethod
    def gradient(p, EXR, EtXL):
        XL, T = p["X_L"], p["Theta"]
        return {"X_L": EXR @ T.T, "Theta": XL.T @ EXR, "X_R": EtXL @ T}

    @staticmethod
    def model_jvp(p, D):       # dZ = (D_L Theta + X_L D_Theta) X_R^T + X_L Theta D_R^T
        XL, T, XR = p["X_L"], p["Theta"], p["X_R"]
        return np.hstack([D["X_L"] @ T + XL @ D["Theta"], XL @ T]), np.hstack([XR, D["X_R"]])

    @staticmethod
    def jvp_probes(p, D):
        return np.hstack([p["X_R"], D["X_R"]]), np.hstack([p["X_L"], D["X_L"]])

    @staticmethod
    def gradient_jvp(p, D, right_products, left_products):
        XL, T = p["X_L"], p["Theta"]
        DL, DT = D["X_L"], D["Theta"]
        EXR, EDR = np.hsplit(right_products, 2)
        EtXL, EtDL = np.hsplit(left_products, 2)
        return {"X_L": EDR @ T.T + EXR @ DT.T,
                "Theta": DL.T @ EXR + XL.T @ EDR,
                "X_R": EtDL @ T + EtXL @ DT}


class ColumnNormalized(_Model):
    """Column-wise weight normalization ``Y = W diag(g_j / ||w_j||)``, ``Z = Y Y^T``,
    ``f = 1/4 ||A(Z) - y||^2``. With ``v_j = w_j / ||w_j||``, ``c_j = g_j / ||w_j||`` and
    ``H = S Y``: ``grad_g_j = v_j^T h_j``, ``grad_w_j = c_j (h_j - v_j v_j^T h_j)``."""

    names, left = ("W", "g"), "W"

    @staticmethod
    def parts(p):
        """``(v, c, Y)``: unit columns, column scales ``g / ||w||`` and the factor ``Y``."""
        W, g = p["W"], p["g"].ravel()
        n = np.sqrt(np.sum(W * W, axis=0))
        V, c = W / n, g / n
        return V, c, V * g

    @classmethod
    def model(cls, p):
        Y = cls.parts(p)[2]
        return Y, Y

    @classmethod
    def probes(cls, p):
        return cls.parts(p)[2], None

    @classmethod
    def gradient(cls, p, H, _):
        V, c, _Y = cls.parts(p)                         # H = S Y
        gg = np.sum(V * H, axis=0)                      # v_j^T h_j
        return {"W": (H - V * gg) * c, "g": gg.reshape(p["g"].shape)}

    @classmethod
    def factor_jvp(cls, p, D):
        """``dY = V diag(dg) + (D_W - V diag(v^T D_W)) diag(c)``."""
        V, c, Y = cls.parts(p)
        DW, dg = D["W"], D["g"].ravel()
        return V * dg + (DW - V * np.sum(V * DW, axis=0)) * c

    @classmethod
    def model_jvp(cls, p, D):
        Y, dY = cls.parts(p)[2], cls.factor_jvp(p, D)
        return np.hstack([dY, Y]), np.hstack([Y, dY])

    @classmethod
    def jvp_probes(cls, p, D):
        return np.hstack([cls.parts(p)[2], cls.factor_jvp(p, D)]), None

    @classmethod
    def gradient_jvp(cls, p, D, products, _):
        # derivative of (grad_g, grad_W)(w, g; h) with h = S y(w, g) also moving (S fixed)
        W, g = p["W"], p["g"].ravel()
        n = np.sqrt(np.sum(W * W, axis=0))
        V, c = W / n, g / n
        H, dH = np.hsplit(products, 2)                  # S Y, S dY
        DW, dg = D["W"], D["g"].ravel()
        dn = np.sum(V * DW, axis=0)                     # d||w_j||
        dV = (DW - V * dn) / n
        dc = (dg - c * dn) / n
        vh = np.sum(V * H, axis=0)
        dvh = np.sum(dV * H, axis=0) + np.sum(V * dH, axis=0)
        dgrad_W = (H - V * vh) * dc + (dH - dV * vh - V * dvh) * c
        return {"W": dgrad_W, "g": dvh.reshape(p["g"].shape)}


_MODELS = {frozenset(m.names): m for m in (SymmetricFactor, AsymmetricFactor, WeightNormalized,
                                           RectangularWeightNormalized, ColumnNormalized)}


def model_for(factor_names) -> type[_Model]:
    """The parameterization whose factors have these names."""
    try:
        return _MODELS[frozenset(factor_names)]
    except KeyError:
        raise ValueError(f"no diagnostics for a model with factors "
                         f"{sorted(factor_names)}") from None
