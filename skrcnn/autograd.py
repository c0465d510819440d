"""A small define-by-run automatic differentiation core.

A :class:`Variable` wraps an array (NumPy or CuPy) and, once backward has run,
its gradient. Calling a :class:`Function` on variables computes the result
eagerly and, when gradients are wanted, records the function as the result's
``creator``. :meth:`Variable.backward` then walks the recorded graph in reverse
topological order (a heap keyed by generation, no recursion) and applies each
function's ``backward``. Gradients add up where a value was used more than
once, which is what makes shared weights (the recurrent network applies the
same weights in every instance) exact.

Every function has exactly one output; this is all the networks need and it
keeps the core small.
"""

import contextlib
import heapq
import itertools
import threading
import weakref

from .backend import get_array_module

_state = threading.local()


def grad_enabled():
    """Return True when operations record the graph for backward."""
    return getattr(_state, "enable_grad", True)


@contextlib.contextmanager
def no_grad():
    """Context manager under which operations record nothing.

    Use it for inference: no function keeps its inputs alive, so memory is
    released as soon as each intermediate result goes out of scope.
    """
    previous = grad_enabled()
    _state.enable_grad = False
    try:
        yield
    finally:
        _state.enable_grad = previous


class Variable:
    """An array in the computational graph.

    Parameters
    ----------
    data : ndarray
        NumPy or CuPy array. It is stored as is, not copied.
    requires_grad : bool, default=False
        Whether a gradient should be computed for this variable. Results of
        functions applied to such variables require gradients too.
    name : str, optional
        A label used in ``repr`` and error messages.

    Attributes
    ----------
    data : ndarray
        The value.
    grad : ndarray or None
        For a leaf variable (one not produced by a function), the gradient
        accumulated over calls of :meth:`backward`; ``None`` until then.
        Intermediate results keep their gradient only with
        ``backward(retain_grad=True)``.
    creator : Function or None
        The function that produced this variable while recording.
    """

    __slots__ = ("data", "grad", "creator", "requires_grad", "name",
                 "generation", "__weakref__")

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Variable):
            raise TypeError("data is already a Variable; pass its .data")
        self.data = data
        self.grad = None
        self.creator = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.generation = 0

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return (f"Variable{label}(shape={tuple(self.shape)}, "
                f"dtype={self.dtype}, requires_grad={self.requires_grad})")

    def zero_grad(self):
        """Forget the accumulated gradient."""
        self.grad = None

    def backward(self, grad=None, retain_grad=False):
        """Compute gradients of this variable with respect to the graph's leaves.

        Parameters
        ----------
        grad : ndarray, optional
            Gradient of the final objective with respect to this variable.
            May be omitted for a single-element variable (a loss): it is 1.
        retain_grad : bool, default=False
            Keep ``grad`` on intermediate variables too (for inspection).
            Leaves always receive theirs, added to any gradient already
            there.

        Notes
        -----
        The graph is consumed: each function drops its saved arrays once its
        backward has run, so memory is released as backward proceeds. Run the
        forward computation again before another backward.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"{self!r} does not require grad: no input of the computation "
                "that produced it requires grad, or it ran under no_grad()")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"grad must be given for a variable of shape {self.shape}; "
                    "it may be omitted only for a single-element variable")
            grad = xp.ones_like(self.data)
        else:
            if not hasattr(grad, "shape") or not hasattr(grad, "dtype"):
                raise TypeError(f"grad must be an array of shape "
                                f"{self.shape}, got {type(grad).__name__}")
            if grad.shape != self.shape:
                raise ValueError(f"grad has shape {grad.shape}, variable has "
                                 f"shape {self.shape}")
            # A copy in the variable's dtype: leaves' gradients may be views
            # of it, and must neither alias the caller's array nor take its
            # dtype or read-only flag.
            grad = xp.array(grad, dtype=self.dtype)
        _backward_from(self, grad, retain_grad)


def as_variable(value):
    """Return ``value`` as a Variable (arrays are wrapped, not copied)."""
    return value if isinstance(value, Variable) else Variable(value)


def _accumulate(variable, grad, pending):
    key = id(variable)
    if key in pending:
        pending[key] = (variable, pending[key][1] + grad)
    else:
        pending[key] = (variable, grad)


def _backward_from(output, grad, retain_grad):
    pending = {}  # id(variable) -> (variable, gradient summed so far)
    # Leaves' gradients are added to their .grad only once the whole walk
    # has succeeded: a backward that fails half-way changes no leaf.
    leaf_grads = {}
    queued = set()
    heap = []
    order = itertools.count()  # tie-breaker: functions never compare

    def visit(variable, variable_grad):
        if variable.creator is None:
            _accumulate(variable, variable_grad, leaf_grads)
            return
        _accumulate(variable, variable_grad, pending)
        function = variable.creator
        if id(function) not in queued:
            queued.add(id(function))
            heapq.heappush(heap, (-function.generation, next(order), function))

    visit(output, grad)
    while heap:
        _, _, function = heapq.heappop(heap)
        # All consumers of this function's output have larger generations,
        # so its gradient is complete when the function is popped.
        out = function.output()
        _, out_grad = pending.pop(id(out))
        if retain_grad:
            out.grad = out_grad
        if function.inputs is None:
            raise RuntimeError(
                f"backward through {type(function).__name__} a second time: "
                "the graph was consumed by an earlier backward; run the "
                "forward computation again")
        input_grads = function.backward(out_grad)
        inputs = function.inputs
        function.release()
        for variable, input_grad in zip(inputs, input_grads):
            if variable.requires_grad and input_grad is not None:
                visit(variable, input_grad)
    for variable, leaf_grad in leaf_grads.values():
        variable.grad = (leaf_grad if variable.grad is None
                         else variable.grad + leaf_grad)


class Function:
    """One operation of the graph: a forward on arrays and its backward.

    Subclasses implement :meth:`forward` (arrays in, one array out) and
    :meth:`backward` (the output's gradient in, one gradient per input out,
    ``None`` for inputs that need none). Before ``forward`` runs,
    ``self.needs_input_grad`` tells which inputs will need a gradient, so
    that a function saves only what its backward will use.
    """

    needs_input_grad = ()
    inputs = None
    generation = 0
    _output_ref = None

    def __call__(self, *inputs):
        variables = [as_variable(x) for x in inputs]
        record = grad_enabled() and any(v.requires_grad for v in variables)
        self.needs_input_grad = tuple(record and v.requires_grad
                                      for v in variables)
        output = Variable(self.forward(*[v.data for v in variables]))
        if record:
            self.inputs = variables
            self.generation = max(v.generation for v in variables)
            output.creator = self
            output.requires_grad = True
            output.generation = self.generation + 1
            # A weak reference: the output owns its creator, not the reverse,
            # so dropping the output frees the whole graph without cycles.
            self._output_ref = weakref.ref(output)
        return output

    def output(self):
        """Return the output variable, which is alive during backward."""
        return self._output_ref()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def release(self):
        """Drop the inputs and everything saved for backward."""
        self.inputs = None
        self.__dict__.pop("saved", None)
