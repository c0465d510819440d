"""Give a fitted rcnn2 more hidden units without changing what it computes.

rcnn2 trained for hours on this CPU fits its training images little better
than its test images (benchmarks/RESULTS.md, session 15), so capacity may be
what it lacks, but a wider network trained from scratch needs hours to catch
up. Widening the trained network instead keeps every learnt weight and adds
units whose outgoing weights are zero, so the widened model labels exactly as
before and training on starts from there (the zero-initialised extension of
Net2Net, Chen et al. 2016). benchmarks/RESULTS.md ("More hidden units") has
what 100 units in conv 2 gave.

For conv 1 -> n1, conv 2 -> n2, conv 3 -> classes:

* conv 1 gains ``n1' - n1`` filters, taken from a freshly initialised
  network of the new widths;
* conv 2 gains ``n2' - n2`` filters, taken likewise, over all ``n1'``
  inputs; its old filters read the new conv 1 units with zero weights;
* conv 3 reads the new conv 2 units with zero weights.

New incoming weights are random (not zero) so that the new units differ from
each other once their outgoing weights start to move.
"""

import copy

from sklearn.utils import check_random_state

from skrcnn.network import RecurrentNetwork


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
        and weight average cleared (the optimiser's moments do not fit the
        new shapes), every other fitted attribute kept.
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
    wide = copy.deepcopy(model)
    wide.set_params(hidden_sizes=new)
    wide.layers_ = wide._layers()
    # A fresh network of the new widths supplies the new units' weights,
    # drawn the way every network is initialised.
    fresh = RecurrentNetwork.initialise(wide.layers_, w3.shape[0],
                                        check_random_state(random_state))
    grown1, grown_b1, grown2, grown_b2, grown3, grown_b3 = (
        p.data.astype(w1.dtype) for p in fresh.params)
    grown1[:old[0]], grown_b1[:old[0]] = w1, b1
    grown2[:old[1], :old[0]], grown2[:old[1], old[0]:] = w2, 0
    grown_b2[:old[1]] = b2
    grown3[:, :old[1]], grown3[:, old[1]:] = w3, 0
    grown_b3[:] = b3
    wide.coefs_ = [grown1, grown2, grown3]
    wide.intercepts_ = [grown_b1, grown_b2, grown_b3]
    wide._solver_state = None
    # Training goes on from the weights the model predicts with (an average
    # of its training weights, with weight_averaging); a new average starts.
    wide._training_weights = None
    wide._averaged = None
    return wide

