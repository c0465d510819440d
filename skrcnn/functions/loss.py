"""Softmax cross-entropy over per-pixel class scores, with ignored pixels."""

import numpy as np

from ..autograd import Function, Variable
from ..backend import get_array_module, is_gpu_array
from ._checks import check_array, check_same_dtype


class SoftmaxCrossEntropy(Function):
    def __init__(self, soft_weight=0.0):
        self.soft_weight = soft_weight

    def forward(self, scores, targets, class_weight=None, soft_targets=None):
        xp = get_array_module(scores)
        shifted = scores - scores.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_total = xp.log(total)
        valid = targets >= 0
        safe_targets = xp.where(valid, targets, 0)[:, None]
        log_p = (xp.take_along_axis(shifted, safe_targets, axis=1)
                 - log_total)[:, 0]
        weight = valid.astype(scores.dtype)
        if class_weight is not None:
            weight *= class_weight[safe_targets[:, 0]]
        if soft_targets is not None:
            # The target of a position is the mixture (1 - a) onehot + a p:
            # its cross-entropy mixes the two log-likelihoods alike. Zero
            # targets take no part (their log-probability may be -inf).
            a = scores.dtype.type(self.soft_weight)
            log_p = (1 - a) * log_p + a * (soft_targets * xp.where(
                soft_targets > 0, shifted - log_total, 0)).sum(axis=1)
        # Ignored positions take no part either (0 * -inf would be NaN).
        log_p = xp.where(valid, log_p, 0)
        # Sums in float32 at least: float16 ones overflow past 65504.
        wide = np.promote_types(scores.dtype, np.float32)
        total_weight = weight.sum(dtype=wide)
        # The normaliser of a weighted mean; 1 when no position counts,
        # which turns an all-ignored batch into a zero loss with zero
        # gradient.
        normaliser = xp.where(total_weight > 0, total_weight, 1)
        loss = ((weight * -log_p).sum(dtype=wide) / normaliser).astype(
            scores.dtype)
        if self.needs_input_grad[0]:
            self.saved = (exp / total, safe_targets,
                          (weight / normaliser).astype(scores.dtype),
                          soft_targets)
        return loss

    def backward(self, grad_loss):
        xp = get_array_module(grad_loss)
        probabilities, safe_targets, pixel_weight, soft_targets = self.saved
        classes = xp.arange(probabilities.shape[1]).reshape(
            (1, -1) + (1,) * (probabilities.ndim - 2))
        grad = probabilities
        if soft_targets is None:
            grad -= classes == safe_targets
        else:
            # d/ds of -sum_k t_k log p_k is p * sum_k t_k - t: the target
            # mixture's mass is 1 only when the soft targets sum to 1.
            a = grad.dtype.type(self.soft_weight)
            grad *= (1 - a) + a * soft_targets.sum(axis=1, keepdims=True)
            grad -= (1 - a) * (classes == safe_targets)
            grad -= a * soft_targets
        grad *= (pixel_weight * grad_loss)[:, None]
        return (grad, None, None, None)


def softmax_cross_entropy(scores, targets, class_weight=None,
                          soft_targets=None, soft_weight=0.5):
    """Mean negative log-likelihood of the softmax over class scores.

    Parameters
    ----------
    scores : Variable or ndarray of shape (N, K, ...)
        Unnormalised scores of K classes, e.g. (N, K, H, W) score maps or
        (N, K) for one output per example.
    targets : ndarray of int of shape (N, ...)
        Class index per position, in ``0..K-1``. Negative values mark
        unknown pixels: they contribute nothing to the loss and receive
        exactly zero gradient.
    class_weight : ndarray of shape (K,), optional
        Per-class weights, non-negative. The loss is then the weighted mean
        ``sum(w[t] * nll) / sum(w[t])`` over valid positions.
    soft_targets : ndarray of shape (N, K, ...), optional
        A class distribution per position, e.g. a teacher network's
        probabilities (knowledge distillation). The target of each valid
        position then becomes ``(1 - soft_weight) * onehot(target) +
        soft_weight * soft_targets``, and its loss that distribution's
        cross-entropy with the softmax; which positions count, and their
        weights, still come from ``targets``. Rows are used as given (the
        gradient is the loss's exact derivative even when they do not sum
        to 1).
    soft_weight : float in [0, 1], default=0.5
        The share of ``soft_targets`` in the targets (0: the hard targets
        alone).

    Returns
    -------
    Variable of shape ()
        The loss averaged over valid positions; 0 when there is none.

    Raises
    ------
    ValueError
        If shapes disagree or (for NumPy inputs) a target is >= K.
    """
    check_array("softmax_cross_entropy: scores", scores)
    if len(scores.shape) < 2:
        raise ValueError("softmax_cross_entropy: scores must have shape "
                         f"(N, K, ...), got {tuple(scores.shape)}")
    if isinstance(targets, Variable):
        targets = targets.data
    if not hasattr(targets, "dtype") or not np.issubdtype(
            np.dtype(targets.dtype), np.integer):
        raise TypeError("softmax_cross_entropy: targets must be an integer "
                        f"array, got {getattr(targets, 'dtype', type(targets))}")
    expected = (scores.shape[0],) + tuple(scores.shape[2:])
    if tuple(targets.shape) != expected:
        raise ValueError(f"softmax_cross_entropy: targets have shape "
                         f"{tuple(targets.shape)}, expected {expected} for "
                         f"scores of shape {tuple(scores.shape)}")
    n_classes = scores.shape[1]
    # Reading the maximum would synchronise a GPU; check on the host only.
    if not is_gpu_array(targets) and targets.size and targets.max() >= n_classes:
        raise ValueError(f"softmax_cross_entropy: targets contain class "
                         f"{int(targets.max())} but scores have only "
                         f"{n_classes} classes (0..{n_classes - 1})")
    if class_weight is not None:
        if isinstance(class_weight, Variable):
            class_weight = class_weight.data
        check_array("softmax_cross_entropy: class_weight", class_weight, 1)
        if class_weight.shape[0] != n_classes:
            raise ValueError(f"softmax_cross_entropy: class_weight has shape "
                             f"{tuple(class_weight.shape)}, expected "
                             f"({n_classes},)")
        check_same_dtype(scores=scores, class_weight=class_weight)
        if not is_gpu_array(class_weight) and not (
                class_weight >= 0).all():
            raise ValueError("softmax_cross_entropy: class_weight must be "
                             "non-negative (and not NaN), got "
                             f"{class_weight.tolist()}")
    if soft_targets is not None:
        if isinstance(soft_targets, Variable):
            soft_targets = soft_targets.data
        check_array("softmax_cross_entropy: soft_targets", soft_targets)
        if tuple(soft_targets.shape) != tuple(scores.shape):
            raise ValueError(f"softmax_cross_entropy: soft_targets have "
                             f"shape {tuple(soft_targets.shape)}, expected "
                             f"the shape of the scores "
                             f"{tuple(scores.shape)}")
        check_same_dtype(scores=scores, soft_targets=soft_targets)
        if not (isinstance(soft_weight, (int, float, np.floating))
                and 0 <= soft_weight <= 1):
            raise ValueError(f"softmax_cross_entropy: soft_weight must be in "
                             f"[0, 1], got {soft_weight!r}")
    # Targets, weights and soft targets go where the scores are (NumPy
    # arrays to the GPU; CuPy never converts them implicitly).
    xp = get_array_module(scores.data if isinstance(scores, Variable)
                          else scores)
    targets = xp.asarray(targets)
    if class_weight is not None:
        class_weight = xp.asarray(class_weight)
    if soft_targets is not None:
        soft_targets = xp.asarray(soft_targets)
    # Absent class weights and soft targets pass through as None.
    return SoftmaxCrossEntropy(soft_weight)(scores, targets, class_weight,
                                            soft_targets)
