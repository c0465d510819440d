"""Layer lists of the paper's networks and the geometry derived from them.

An instance network is a tuple of layer specs:

- ``("conv", out_channels, kernel_size)``: a convolution with bias, stride 1,
  no padding. ``out_channels`` may be ``"classes"`` for the layer that
  outputs one score plane per class (the last layer).
- ``("pool", size)``: ``size x size`` max-pooling with stride ``size``.
- ``("tanh",)``.

Patch sizes and strides are always computed from the layer list (the paper's
Eq. 1 read backwards, ``in = d * out + (k - d)``), never hard-coded.
"""

import numbers

CLASSES = "classes"

ARCHITECTURES = {
    # CNN2, the instance of rCNN2: patches 23 / 67 / 155 for 1 / 2 / 3 instances.
    "rcnn2": (("conv", 25, 8), ("pool", 2), ("tanh",),
              ("conv", 50, 8), ("tanh",), ("conv", CLASSES, 1)),
    # CNN1, the instance of rCNN1: patches 25 / 121 for 1 / 2 instances.
    "rcnn1": (("conv", 25, 8), ("pool", 2), ("tanh",),
              ("conv", 100, 8), ("pool", 2), ("tanh",), ("conv", CLASSES, 1)),
    # The paper's "plain" network (Stanford sizes): one instance, patch 133.
    "plain": (("conv", 25, 6), ("pool", 8), ("tanh",),
              ("conv", 50, 3), ("pool", 2), ("tanh",), ("conv", CLASSES, 7)),
}


def _positive_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(
        value, bool) and value >= 1


def resolve_layers(architecture):
    """Return the layer tuple for a preset name or check an explicit one.

    Parameters
    ----------
    architecture : {"rcnn1", "rcnn2", "plain"} or tuple of layer specs

    Returns
    -------
    tuple of tuples

    Raises
    ------
    ValueError
        For an unknown name or a malformed layer list, naming the layer.
    """
    if isinstance(architecture, str):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of "
                             f"{sorted(ARCHITECTURES)} or a tuple of layer "
                             f"specs, got {architecture!r}")
        return ARCHITECTURES[architecture]
    try:
        layers = tuple(tuple(layer) for layer in architecture)
    except TypeError:
        raise ValueError(f"architecture must be a name or a sequence of "
                         f"layer specs, got {architecture!r}") from None
    if not layers:
        raise ValueError("architecture: the layer list is empty")
    for index, layer in enumerate(layers):
        kind = layer[0] if layer else None
        ok = ((kind == "conv" and len(layer) == 3 and _positive_int(layer[2])
               and (layer[1] == CLASSES or _positive_int(layer[1])))
              or (kind == "pool" and len(layer) == 2 and _positive_int(layer[1]))
              or (kind == "tanh" and len(layer) == 1))
        if not ok:
            raise ValueError(
                f"architecture layer {index} is {layer!r}; expected "
                "('conv', out_channels or 'classes', kernel), ('pool', size) "
                "or ('tanh',)")
    last = layers[-1]
    if last[0] != "conv" or last[1] != CLASSES:
        raise ValueError("architecture: the last layer must be "
                         f"('conv', 'classes', kernel), got {last!r}")
    if layers[0][0] != "conv":
        raise ValueError(f"architecture: the first layer must be a "
                         f"convolution, got {layers[0]!r}")
    if sum(1 for layer in layers if layer[1:2] == (CLASSES,)) != 1:
        raise ValueError("architecture: only the last convolution may output "
                         "'classes'")
    # Plain ints (not NumPy's): sizes are compared and summed as such.
    return tuple((layer[0],) + tuple(
        value if isinstance(value, str) else int(value)
        for value in layer[1:]) for layer in layers)


def instance_stride(layers):
    """Total pooling stride of one instance (its output grid spacing)."""
    stride = 1
    for layer in layers:
        if layer[0] == "pool":
            stride *= layer[1]
    return stride


def instance_input_size(layers, output_size=1):
    """Input size one instance needs to produce ``output_size`` outputs."""
    size = output_size
    for layer in reversed(layers):
        if layer[0] == "conv":
            size += layer[2] - 1
        elif layer[0] == "pool":
            size *= layer[1]
    return size


def instance_output_size(layers, input_size):
    """Output size of one instance on an input of ``input_size`` (0 if none)."""
    size = input_size
    for layer in layers:
        if layer[0] == "conv":
            size -= layer[2] - 1
        elif layer[0] == "pool":
            size //= layer[1]
        if size < 1:
            return 0
    return size


def patch_size(layers, n_instances):
    """Side of the square context patch that ``n_instances`` need for one
    output pixel (rcnn2: 23, 67, 155)."""
    size = 1
    for _ in range(n_instances):
        size = instance_input_size(layers, size)
    return size


def rgb_crop_offset(pooled_size, target_size):
    """Offset of the centred crop of the downscaled RGB to the previous
    instance's output grid (rounded up: 5 for 33->23, 8 for 38->23)."""
    return (pooled_size - target_size + 1) // 2
