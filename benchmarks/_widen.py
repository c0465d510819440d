"""Give a fitted rcnn2 more hidden units without changing what it computes.

rcnn2 trained for hours on this CPU fits its training images little better
than its test images (README, "Stanford Background"), so capacity may be
what it lacks, but a wider network trained from scratch needs hours to catch
up. Widening the trained network instead keeps every learnt weight and adds
units whose outgoing weights are zero, so the widened model labels exactly as
before and training on starts from there (the zero-initialised extension of
Net2Net, Chen et al. 2016). README has what 100 units in conv 2 gave.

For conv 1 -> n1, conv 2 -> n2, conv 3 -> classes:

* conv 1 gains ``n1' - n1`` filters, drawn as a fresh network's would be;
* conv 2 gains ``n2' - n2`` filters, drawn likewise over all ``n1'``
  inputs; its old filters read the new conv 1 units with zero weights;
* conv 3 reads the new conv 2 units with zero weights.

New incoming weights are random (not zero) so that the new units differ from
each other once their outgoing weights start to move.
"""

import copy

import numpy as np
from sklearn.utils import check_random_state


def widen(model, hidden_sizes, random_state=0):
    """A copy of a fitted rcnn2 ``model`` with ``hidden_sizes`` hidden units.

    Parameters
    ----------
    model : fitted RecurrentCNNSegmenter (architecture "rcnn2")
    hidden_sizes : (int, int)
        New widths of conv 1 and conv 2, each at least the current one.
    random_state : int or RandomState
        Draws the new units' incoming weights.

    Returns
    -------
    RecurrentCNNSegmenter
        Same predictions as ``model`` (to float32 rounding); solver state
        cleared (the optimiser's moments do not fit the new shapes), every
        other fitted attribute kept.
    """
    if model.architecture != "rcnn2":
        raise ValueError(f"only rcnn2 can be widened, got "
                         f"{model.architecture!r}")
    (w1, w2, w3), (b1, b2, b3) = model.coefs_, model.intercepts_
    old = (w1.shape[0], w2.shape[0])
    new = tuple(int(n) for n in hidden_sizes)
    if len(new) != 2 or new[0] < old[0] or new[1] < old[1]:
        raise ValueError(f"hidden_sizes must be 2 widths no smaller than the "
                         f"model's {old}, got {tuple(hidden_sizes)}")
    rng = check_random_state(random_state)

    def draw(shape):
        # Torch7's initialisation, as RecurrentNetwork.initialise uses.
        bound = 1.0 / np.sqrt(np.prod(shape[1:]))
        return rng.uniform(-bound, bound, size=shape).astype(w1.dtype)

    grown1 = np.concatenate([w1, draw((new[0] - old[0],) + w1.shape[1:])])
    grown_b1 = np.concatenate([b1, np.zeros(new[0] - old[0], b1.dtype)])
    grown2 = np.zeros((new[1], new[0]) + w2.shape[2:], w2.dtype)
    grown2[:old[1], :old[0]] = w2
    grown2[old[1]:] = draw((new[1] - old[1],) + grown2.shape[1:])
    grown_b2 = np.concatenate([b2, np.zeros(new[1] - old[1], b2.dtype)])
    grown3 = np.zeros((w3.shape[0], new[1]) + w3.shape[2:], w3.dtype)
    grown3[:, :old[1]] = w3

    wide = copy.deepcopy(model)
    wide.set_params(hidden_sizes=new)
    wide.coefs_ = [grown1, grown2, grown3]
    wide.intercepts_ = [grown_b1, grown_b2, b3.copy()]
    wide.layers_ = wide._layers()
    wide._solver_state = None
    wide._predictor = None
    return wide

