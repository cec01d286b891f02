"""SSD's multibox loss (Liu et al. 2016, equation 1) with hard negative mining; backward written out.

Layout. loc (N, A, 4): predicted offsets of each default box (see `match.encode_offsets`).
conf (N, A, C + 1): raw class scores, class 0 background. loc_t (N, A, 4) and conf_t (N, A)
(int, 0 = background, c + 1 = object class c): the targets `match` gives, one image per row.

Positives: priors with conf_t > 0; P_n of them in image n, P = Σ_n P_n.
Hard negatives: in image n, the min(floor(neg_pos_ratio·P_n), A − P_n) non-positive priors
with the largest background loss ℓ_bg = logsumexp(conf) − conf[0], ties to the lower prior
index; an image without positives has none (it would otherwise teach only "background").
The loss, with CE(a) = logsumexp(conf[a]) − conf[a, conf_t[a]] the softmax cross-entropy and
smooth-L1 (β = 1) h(x) = 0.5x² if |x| < 1 else |x| − 0.5:
    conf term = Σ over positives and hard negatives of CE / P,
    loc term  = alpha · Σ over positives, Σ over the 4 offsets of h(loc − loc_t) / P,
and 0 when P = 0. The selection of negatives is a constant of the step, as YOLO's
responsible predictor is: `forward(..., negatives=mask)` holds it fixed (for a gradient
check), and `backward` differentiates with the selection used by `forward`:
    dconf = (softmax(conf) − onehot(conf_t)) / P on selected priors, 0 elsewhere,
    dloc  = alpha · clip(loc − loc_t, −1, 1) / P on positives, 0 elsewhere.

Everything runs with `xp = get_array_module(conf)`: on CuPy the mining (a stable sort per
image) and the gradients stay on the device and only the scalar parts go to the host.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module


def logsumexp(x, xp):
    """log Σ exp over the last axis, shifted by the maximum so it never overflows."""
    top = x.max(axis=-1, keepdims=True)
    return (top + xp.log(xp.exp(x - top).sum(axis=-1, keepdims=True)))[..., 0]


def background_loss(conf):
    """ℓ_bg (N, A) = logsumexp(conf) − conf[..., 0]: the cross-entropy if the prior were background."""
    xp = get_array_module(conf)
    return logsumexp(conf, xp) - conf[..., 0]


def hard_negatives(bg_loss, positive, neg_pos_ratio: float = 3.0):
    """The hard-negative mask (N, A) bool from ℓ_bg (N, A) and the positives (N, A) bool.

    Per image: the k = min(floor(neg_pos_ratio·P_n), A − P_n) non-positives of largest ℓ_bg,
    ties to the lower index (a stable sort of −ℓ_bg, positives pushed to the end).
    """
    xp = get_array_module(bg_loss)
    a = bg_loss.shape[1]
    num_pos = positive.sum(axis=1)
    num_neg = xp.minimum(xp.floor(neg_pos_ratio * num_pos).astype(num_pos.dtype), a - num_pos)
    key = xp.where(positive, xp.inf, -bg_loss)             # ascending: largest loss first
    # Stable, so equal losses keep index order; CuPy's sort is always stable and takes no `kind`.
    stable = {"kind": "stable"} if xp is np else {}
    order = xp.argsort(key, axis=1, **stable)
    rank = xp.argsort(order, axis=1, **stable)              # rank[n, a]: place of prior a in its image
    return (rank < num_neg[:, None]) & ~positive


class MultiboxLoss:
    """MultiboxLoss(neg_pos_ratio=3.0, alpha=1.0); see the module docstring.

    After `forward`: `components` {"loc", "conf"} (floats, each divided by P, summing to the
    loss), `negatives` (N, A) bool (the hard negatives used), `num_positives` (P, a 0-d array
    on the loss's device).
    """

    def __init__(self, neg_pos_ratio: float = 3.0, alpha: float = 1.0):
        if neg_pos_ratio < 0 or alpha < 0:
            raise ValueError(f"MultiboxLoss: neg_pos_ratio and alpha must be >= 0, got {neg_pos_ratio}, {alpha}")
        self.neg_pos_ratio, self.alpha = float(neg_pos_ratio), float(alpha)
        self.components, self.negatives, self.num_positives = {}, None, 0
        self._cache = None

    @staticmethod
    def _check(loc, conf, loc_t, conf_t, negatives):
        def shape(x):
            return tuple(getattr(x, "shape", ())) or type(x).__name__

        if getattr(loc, "ndim", None) != 3 or loc.shape[2] != 4:
            raise ValueError(f"MultiboxLoss: loc must have shape (N, A, 4), got {shape(loc)}")
        n, a = loc.shape[:2]
        if getattr(conf, "ndim", None) != 3 or conf.shape[:2] != (n, a) or conf.shape[2] < 2:
            raise ValueError(f"MultiboxLoss: conf must have shape ({n}, {a}, C + 1) with C >= 1 to go with "
                             f"loc {shape(loc)}, got {shape(conf)}")
        if getattr(loc_t, "shape", None) != (n, a, 4):
            raise ValueError(f"MultiboxLoss: loc_t must have shape ({n}, {a}, 4) like loc, got {shape(loc_t)}")
        if getattr(conf_t, "shape", None) != (n, a):
            raise ValueError(f"MultiboxLoss: conf_t must have shape ({n}, {a}), got {shape(conf_t)}")
        if conf_t.dtype.kind not in "iu":
            raise ValueError(f"MultiboxLoss: conf_t must hold integer classes, got dtype {conf_t.dtype}")
        for name, x in (("loc", loc), ("conf", conf), ("loc_t", loc_t)):
            if x.dtype.kind != "f":
                raise ValueError(f"MultiboxLoss: {name} must be floating point, got dtype {x.dtype}")
        if isinstance(conf_t, np.ndarray) and conf_t.size and not 0 <= conf_t.min() <= conf_t.max() < conf.shape[2]:
            # Checked on the host only: on the device it would cost a synchronisation per step.
            raise ValueError(f"MultiboxLoss: conf_t must lie in [0, {conf.shape[2]}) for conf {shape(conf)}, "
                             f"got values from {conf_t.min()} to {conf_t.max()}")
        if negatives is not None and (getattr(negatives, "shape", None) != (n, a) or negatives.dtype.kind != "b"):
            raise ValueError(f"MultiboxLoss: negatives must be a bool array of shape ({n}, {a}), got "
                             f"{shape(negatives)} {getattr(negatives, 'dtype', '')}")

    def forward(self, loc, conf, loc_t, conf_t, negatives=None) -> float:
        """The loss (a float); `negatives` (N, A) bool holds the hard negatives fixed."""
        self._check(loc, conf, loc_t, conf_t, negatives)
        xp = get_array_module(conf)
        dtype = conf.dtype
        loc_t = xp.asarray(loc_t).astype(loc.dtype, copy=False)
        conf_t = xp.asarray(conf_t)
        positive = conf_t > 0
        if negatives is None:
            negatives = hard_negatives(background_loss(conf), positive, self.neg_pos_ratio)
        else:
            negatives = xp.asarray(negatives) & ~positive
        selected = positive | negatives
        num_pos = positive.sum()
        scale = 1.0 / xp.maximum(num_pos, 1).astype(dtype)     # on the device; P = 0 gives a 0 loss
        lse = logsumexp(conf, xp)
        picked = xp.take_along_axis(conf, xp.clip(conf_t, 0, conf.shape[2] - 1)[..., None], axis=-1)[..., 0]
        ce = xp.where(selected, lse - picked, 0)
        diff = xp.where(positive[..., None], loc - loc_t, 0)
        absd = xp.abs(diff)
        smooth = xp.where(absd < 1, 0.5 * diff * diff, absd - 0.5)
        conf_term = ce.sum() * scale
        loc_term = self.alpha * smooth.sum() * scale
        # The two parts are the only values copied to the host (one scalar each).
        self.components = {"loc": float(loc_term), "conf": float(conf_term)}
        self.negatives, self.num_positives = negatives, num_pos
        self._cache = (conf, lse, conf_t, selected, diff, scale)
        return self.components["loc"] + self.components["conf"]

    def backward(self):
        """(dloc (N, A, 4), dconf (N, A, C + 1)): the gradient of the last `forward`'s loss."""
        if self._cache is None:
            raise RuntimeError("MultiboxLoss.backward called before MultiboxLoss.forward")
        conf, lse, conf_t, selected, diff, scale = self._cache
        xp = get_array_module(conf)
        dconf = xp.exp(conf - lse[..., None])                                  # softmax
        _subtract_one(dconf, conf_t, xp)
        dconf *= (selected * scale)[..., None]
        dloc = (self.alpha * scale) * xp.clip(diff, -1, 1)                     # 0 off the positives
        return dloc.astype(conf.dtype, copy=False), dconf.astype(conf.dtype, copy=False)

    __call__ = forward


def _subtract_one(dconf, conf_t, xp):
    """dconf[n, a, conf_t[n, a]] -= 1 in place, by a flat index (the same on NumPy and CuPy)."""
    flat = dconf.reshape(-1, dconf.shape[-1])
    flat[xp.arange(flat.shape[0]), conf_t.reshape(-1)] -= 1
