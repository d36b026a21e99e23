"""Export a trained ``MLP`` to ONNX, for inference without Python or without fastmlp.

``to_onnx(net)`` builds the network as a standard ONNX graph (default opset 17, operators of the
default domain only) in float32 or float64; ``export_file(model_path, out_path)`` does it for a
model file written by ``MLP.save``. The ``onnx`` package is an optional dependency, imported
only when a graph is built::

    pip install "fastmlp[onnx]"

The graph, for an input ``input`` of shape ``(N, n_in)`` (``N`` symbolic):

1. missing inputs, where fill values are given: ``Where(IsNaN(input), input_fill, input)``;
   input scaling, where given: ``Sub(., input_mean)``, then ``Div(., input_scale)``;
2. per weight layer ``l``: ``Gemm(a, W<l>, b<l>, transB=1)`` with ``W<l>`` stored as fastmlp
   holds it, ``(n_out, n_in)``; then the activation: ``Sigmoid``, ``Tanh``, ``Relu``; leaky relu
   (slope 0.01) is ``LeakyRelu`` in float32 and ``Where(z > 0, z, z * 0.01)`` in float64, since
   ``LeakyRelu``'s ``alpha`` attribute is a float32 and float32(0.01) is not 0.01; identity
   adds no node; the output layer's ``Sigmoid`` or ``Softmax`` (last axis);
3. target scaling (identity outputs), where given: ``Mul(., target_scale)``, then
   ``Add(., target_mean)``;
4. graph outputs: ``output`` ``(N, n_out)`` in the graph's dtype, ``net.predict`` of the scaled
   input (then unscaled); for sigmoid and softmax outputs also ``label``: ``net.predict_classes``
   as int64 (softmax: ``ArgMax``, shape ``(N,)``; sigmoid: ``output >= 0.5``, ``(N,)`` for one
   unit, else ``(N, n_out)``), or, given ``class_names`` for a softmax or a one-unit sigmoid,
   the class name (a string tensor, ``(N,)``).

The model's ``metadata_props`` hold JSON strings: ``fastmlp_version``, ``layer_sizes``,
``hidden``, ``output``, ``loss``, ``activations`` (hidden then output), ``dtype``,
``input_fill``, ``input_scaling`` and ``target_scaling`` (booleans), and, where given,
``feature_names`` and ``class_names``. ``metadata(model)`` reads them back.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _validation as V
from .model import MLP

if TYPE_CHECKING:  # pragma: no cover
    import onnx

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "LABEL_NAME",
    "MIN_OPSET",
    "OUTPUT_NAME",
    "export_file",
    "metadata",
    "to_onnx",
]

DEFAULT_OPSET = 17  # ONNX 1.12 (2022): run by onnxruntime >= 1.12 and most other runtimes
MIN_OPSET = 13  # Softmax over the last axis only, Squeeze's axes as an input
INPUT_NAME = "input"
OUTPUT_NAME = "output"
LABEL_NAME = "label"
LEAKY_SLOPE = 0.01  # fastmlp's leaky_relu slope (fastmlp._kernels.LEAKY_SLOPE)

_ELEMENTWISE = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def _import_onnx() -> Any:
    """Import ``onnx``, or raise an ImportError that says how to install it."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        raise ImportError(
            "fastmlp.export needs the onnx package (>= 1.16), which is not installed: "
            'pip install "fastmlp[onnx]"  (or: pip install onnx)'
        ) from exc
    return onnx


def _check_vector(name: str, value: ArrayLike, n: int, what: str, nonzero: bool) -> np.ndarray:
    """``value`` as a float64 ``(n,)`` array: a scalar is repeated, finite, non-zero if asked."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got an array of dtype {arr.dtype}.")
    if arr.shape not in ((), (n,)):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) ({what}), got {arr.shape}.")
    arr = np.broadcast_to(arr.astype(np.float64), (n,)).copy()
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {arr[bad[0]]} at index {bad[0]}.")
    zero = np.flatnonzero(arr == 0)
    if nonzero and zero.size:
        raise ValueError(
            f"{name} must be non-zero (it divides or multiplies), got 0 at index {zero[0]}."
        )
    return arr


def _check_names(name: str, value: object, n: int, what: str) -> list[str]:
    """``value`` as a list of ``n`` strings (each entry converted by ``str``)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of {n} names ({what}), got {value!r}.")
    names = [str(v) for v in value]
    if len(names) != n:
        raise ValueError(f"{name} must have {n} entries ({what}), got {len(names)}: {names}.")
    return names


def _n_class_names(net: MLP) -> tuple[int, str]:
    """How many class names ``net`` takes, and what they name."""
    n_out = net.layout.n_out
    if net.output == "softmax":
        return n_out, f"one per softmax unit, n_out={n_out}"
    if n_out == 1:
        return 2, "the classes of output < 0.5 and >= 0.5 of the one sigmoid unit"
    return n_out, f"one label per sigmoid unit, n_out={n_out}"


def _check_opset(onnx: Any, opset: object) -> int:
    if opset is None:
        return DEFAULT_OPSET
    latest = int(onnx.defs.onnx_opset_version())
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int in [{MIN_OPSET}, {latest}], got {opset!r}.")
    if not MIN_OPSET <= int(opset) <= latest:
        raise ValueError(
            f"opset must be in [{MIN_OPSET}, {latest}] (the installed onnx's latest), got {opset}."
        )
    return int(opset)


def _check_arguments(
    onnx: Any,
    net: object,
    dtype: DTypeLike | None,
    opset: object,
    input_name: object,
    feature_names: object,
    class_names: object,
    target_scaling: bool,
) -> tuple[np.dtype, int, list[str] | None, list[str] | None]:
    """``to_onnx``'s checks: the graph's dtype, the opset, the feature and class names."""
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a fastmlp.MLP, got {type(net).__name__}.")
    dt = net.dtype if dtype is None else V.check_dtype(dtype)
    opset = _check_opset(onnx, opset)
    if not isinstance(input_name, str) or not input_name:
        raise TypeError(f"input_name must be a non-empty string, got {input_name!r}.")
    if input_name in (OUTPUT_NAME, LABEL_NAME):
        raise ValueError(
            f"input_name must not be an output's name ({OUTPUT_NAME!r}, {LABEL_NAME!r}), got "
            f"{input_name!r}."
        )
    n_in = net.layout.n_in
    features = None
    if feature_names is not None:
        features = _check_names("feature_names", feature_names, n_in, f"n_in={n_in}")
    classes = None
    if class_names is not None:
        if net.output == "identity":
            raise ValueError(
                "class_names need a sigmoid or softmax output; this network's output is "
                "'identity' (regression)."
            )
        classes = _check_names("class_names", class_names, *_n_class_names(net))
    if target_scaling and net.output != "identity":
        raise ValueError(
            "target_mean/target_scale undo a standardisation of regression targets and need an "
            f"identity output; this network's output is {net.output!r}."
        )
    return dt, opset, features, classes


class _Graph:
    """The nodes and initializers of the graph being built, in the graph's dtype."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.dtype = dtype
        self.nodes: list = []
        self.initializers: list = []

    def constant(self, name: str, value: ArrayLike, dtype: DTypeLike | None = None) -> str:
        """Add the initializer ``name`` (in the graph's dtype unless given); return its name."""
        if dtype is None:
            with np.errstate(over="ignore"):  # float64 beyond float32's range: refused below
                arr = np.asarray(value, dtype=self.dtype)
            if not np.isfinite(arr).all():
                hint = (
                    f" (or beyond float32's range, +-{np.finfo(np.float32).max:.4g}: export "
                    "in float64)"
                    if self.dtype == np.float32
                    else ""
                )
                raise ValueError(f"{name} has values that are not finite in {self.dtype}: NaN "
                                 f"or inf{hint}.")  # fmt: skip
        else:
            arr = np.asarray(value, dtype=dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, **attrs: Any) -> str:
        """Add a node computing the tensor ``output`` (also the node's name); return it."""
        self.nodes.append(
            self.onnx.helper.make_node(op, list(inputs), [output], name=output, **attrs)
        )
        return output


def _activation(g: _Graph, name: str, z: str, layer: int) -> str:
    """Append activation ``name`` of layer ``layer`` to ``z``; return the activation's tensor."""
    if name == "identity":
        return z
    if name in _ELEMENTWISE:
        return g.node(_ELEMENTWISE[name], [z], f"a{layer}")
    if name == "softmax":
        return g.node("Softmax", [z], f"a{layer}", axis=-1)
    if name == "leaky_relu":
        if g.dtype == np.float32:  # the attribute is a float32: exactly the kernels' slope
            return g.node("LeakyRelu", [z], f"a{layer}", alpha=float(np.float32(LEAKY_SLOPE)))
        positive = g.node("Greater", [z, g.constant(f"zero{layer}", 0.0)], f"positive{layer}")
        scaled = g.node("Mul", [z, g.constant(f"slope{layer}", LEAKY_SLOPE)], f"leaky{layer}")
        return g.node("Where", [positive, z, scaled], f"a{layer}")
    raise ValueError(f"no ONNX form for activation {name!r}")  # pragma: no cover


def _label(g: _Graph, net: MLP, out: str, class_names: list[str] | None) -> tuple[str, list]:
    """Append the ``label`` nodes; return the label tensor's element type and shape."""
    onnx = g.onnx
    n_out = net.layout.n_out
    named = class_names is not None and (net.output == "softmax" or n_out == 1)
    index = LABEL_NAME if not named else "label_index"
    if net.output == "softmax":
        g.node("ArgMax", [out], index, axis=1, keepdims=0)
        shape: list = ["N"]
    else:
        high = g.node("GreaterOrEqual", [out, g.constant("half", 0.5)], "label_high")
        if n_out == 1:
            high = g.node("Cast", [high], "label_int", to=onnx.TensorProto.INT64)
            g.node("Squeeze", [high, g.constant("axis1", [1], np.int64)], index)
            shape = ["N"]
        else:
            g.node("Cast", [high], index, to=onnx.TensorProto.INT64)
            shape = ["N", n_out]
    if not named:
        return onnx.TensorProto.INT64, shape
    names = g.constant("class_names", np.array(class_names, dtype=object), dtype=object)
    g.node("Gather", [names, index], LABEL_NAME, axis=0)
    return onnx.TensorProto.STRING, shape


def to_onnx(
    net: MLP,
    path: str | os.PathLike[str] | None = None,
    *,
    dtype: DTypeLike | None = None,
    input_name: str = INPUT_NAME,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    input_mean: ArrayLike | None = None,
    input_scale: ArrayLike | None = None,
    input_fill: ArrayLike | None = None,
    target_mean: ArrayLike | None = None,
    target_scale: ArrayLike | None = None,
    opset: int | None = None,
) -> onnx.ModelProto:
    """Build ``net`` as an ONNX model, checked by ``onnx.checker``, and write it if asked.

    Parameters
    ----------
    net : MLP
        The network; its parameters are copied into the graph (rounded to ``dtype``).
    path : str or os.PathLike or None, default None
        Where to write the ``.onnx`` file (atomically: a temporary file renamed over it).
        ``None`` writes nothing.
    dtype : float32 or float64 or None, default None
        The graph's dtype (inputs, parameters, arithmetic and ``output``); ``None``: the net's.
    input_name : str, default "input"
        Name of the graph's input ``(N, n_in)``.
    feature_names : sequence of str (n_in,), optional
        Names of the input columns, stored in the metadata.
    class_names : sequence of str, optional
        Names of the classes, stored in the metadata: ``(n_out,)`` for a softmax output,
        ``(2,)`` for one sigmoid unit (the classes of ``output < 0.5`` and ``>= 0.5``), a
        name per unit ``(n_out,)`` for several sigmoid units (multilabel). For a softmax or a
        one-unit sigmoid, ``label`` is then the class name instead of its index. Refused for an
        identity output.
    input_mean, input_scale : array_like, scalar or (n_in,), optional
        Standardisation of the raw input, the graph's first nodes: ``(input - input_mean) /
        input_scale`` is what ``net`` sees. Either may be given alone; scales are non-zero.
    input_fill : array_like, scalar or (n_in,), optional
        Values for missing (NaN) raw inputs, put in before the scaling (e.g. the training
        means). Without them a NaN input gives NaN outputs.
    target_mean, target_scale : array_like, scalar or (n_out,), optional
        For an identity (regression) output: ``output = net_output * target_scale +
        target_mean``, the graph's last nodes. Either may be given alone.
    opset : int or None, default None
        Opset of the default ONNX domain, from 13 to the installed onnx's latest; ``None``:
        ``DEFAULT_OPSET`` (17).

    Returns
    -------
    onnx.ModelProto
        The model. Inputs: ``input_name`` ``(N, n_in)`` of ``dtype``. Outputs: ``output``
        ``(N, n_out)`` of ``dtype``; for sigmoid and softmax outputs also ``label``, int64
        (``(N,)``, or ``(N, n_out)`` for several sigmoid units) or a string ``(N,)`` given
        ``class_names``.

    Raises
    ------
    ImportError
        If the ``onnx`` package is not installed (``pip install "fastmlp[onnx]"``).
    TypeError, ValueError
        For an argument of the wrong type, shape or value, naming it.

    Examples
    --------
    >>> from fastmlp import MLP
    >>> from fastmlp.export import metadata, to_onnx
    >>> net = MLP((4, 8, 3), hidden="relu", output="softmax")
    >>> model = to_onnx(net, class_names=["a", "b", "c"])
    >>> [o.name for o in model.graph.output], [n.op_type for n in model.graph.node]
    (['output', 'label'], ['Gemm', 'Relu', 'Gemm', 'Softmax', 'ArgMax', 'Gather'])
    >>> metadata(model)["class_names"]
    ['a', 'b', 'c']
    """
    onnx = _import_onnx()
    dt, opset, features, classes = _check_arguments(
        onnx, net, dtype, opset, input_name, feature_names, class_names,
        target_mean is not None or target_scale is not None,
    )  # fmt: skip
    lay = net.layout
    n_in, n_out = lay.n_in, lay.n_out
    what_in, what_out = f"one per input, n_in={n_in}", f"one per output, n_out={n_out}"

    g = _Graph(onnx, dt)
    x = input_name
    if input_fill is not None:
        fill = _check_vector("input_fill", input_fill, n_in, what_in, nonzero=False)
        missing = g.node("IsNaN", [x], "input_missing")
        x = g.node("Where", [missing, g.constant("input_fill", fill), x], "input_filled")
    if input_mean is not None:
        mean = _check_vector("input_mean", input_mean, n_in, what_in, nonzero=False)
        x = g.node("Sub", [x, g.constant("input_mean", mean)], "input_centered")
    if input_scale is not None:
        scale = _check_vector("input_scale", input_scale, n_in, what_in, nonzero=True)
        x = g.node("Div", [x, g.constant("input_scale", scale)], "input_scaled")
    for l, (W, b, act) in enumerate(zip(net.weights, net.biases, net.activations, strict=True)):
        w, bias = g.constant(f"W{l}", W), g.constant(f"b{l}", b)
        x = _activation(g, act, g.node("Gemm", [x, w, bias], f"z{l}", transB=1), l)
    if target_scale is not None:
        scale = _check_vector("target_scale", target_scale, n_out, what_out, nonzero=True)
        x = g.node("Mul", [x, g.constant("target_scale", scale)], "output_scaled")
    if target_mean is not None:
        mean = _check_vector("target_mean", target_mean, n_out, what_out, nonzero=False)
        x = g.node("Add", [x, g.constant("target_mean", mean)], "output_shifted")
    # the last node writes the graph's output (an identity output ends on its Gemm)
    g.nodes[-1].output[0] = g.nodes[-1].name = OUTPUT_NAME

    elem = onnx.helper.np_dtype_to_tensor_dtype(dt)
    outputs = [
        onnx.helper.make_tensor_value_info(
            OUTPUT_NAME, elem, ["N", n_out], doc_string="the network's output, net.predict"
        )
    ]
    if net.output != "identity":
        label_type, label_shape = _label(g, net, OUTPUT_NAME, classes)
        doc = "the class name" if label_type == onnx.TensorProto.STRING else "predict_classes"
        outputs.append(
            onnx.helper.make_tensor_value_info(LABEL_NAME, label_type, label_shape, doc_string=doc)
        )
    taken = {n.output[0] for n in g.nodes} | {t.name for t in g.initializers}
    if input_name in taken:
        raise ValueError(
            f"input_name must not be the name of a tensor of the graph ({sorted(taken)}), got "
            f"{input_name!r}."
        )
    inputs = [onnx.helper.make_tensor_value_info(input_name, elem, ["N", n_in])]
    graph = onnx.helper.make_graph(g.nodes, "fastmlp_mlp", inputs, outputs, g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
        producer_name="fastmlp",
        producer_version=_version(),
        doc_string=repr(net),
    )
    meta: dict[str, Any] = {
        "fastmlp_version": _version(),
        "layer_sizes": list(lay.sizes),
        "hidden": list(net.hidden),
        "output": net.output,
        "loss": net.loss_name,
        "activations": list(net.activations),
        "dtype": dt.name,
        "input_fill": input_fill is not None,
        "input_scaling": input_mean is not None or input_scale is not None,
        "target_scaling": target_mean is not None or target_scale is not None,
    }
    if features is not None:
        meta["feature_names"] = features
    if classes is not None:
        meta["class_names"] = classes
    onnx.helper.set_model_props(model, {k: json.dumps(v) for k, v in meta.items()})
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        _write_atomic(path, model.SerializeToString())
    return model


def metadata(model: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """Read the ``metadata_props`` of an exported model, each value decoded from JSON.

    Parameters
    ----------
    model : onnx.ModelProto or str or os.PathLike
        A model returned by ``to_onnx``, or the path of an ``.onnx`` file.

    Returns
    -------
    dict of str to object
        E.g. ``{"layer_sizes": [4, 8, 3], "class_names": ["a", "b", "c"], ...}``; a value that
        is not JSON is returned as its string.
    """
    onnx = _import_onnx()
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model))
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except ValueError:
            out[prop.key] = prop.value
    return out


def export_file(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    dtype: DTypeLike | None = None,
    **kwargs: Any,
) -> onnx.ModelProto:
    """Load a saved model and write it as ONNX (``fastmlp export``).

    A model saved by ``fastmlp train`` (or with preprocessing) carries its feature names,
    class names and scaling into the graph; ``kwargs`` override them.

    Parameters
    ----------
    model_path : str or os.PathLike
        A ``.npz`` written by ``MLP.save`` or ``fastmlp train``.
    out_path : str or os.PathLike
        The ``.onnx`` file to write (replaced atomically if it exists).
    dtype : float32 or float64 or None, default None
        The graph's dtype; ``None``: the model's.
    **kwargs
        Further keyword arguments of ``to_onnx`` (``feature_names``, ``class_names``,
        ``input_mean``, ``input_scale``, ``target_mean``, ``target_scale``, ``opset``, ...).

    Returns
    -------
    onnx.ModelProto
        The model written.

    Raises
    ------
    ImportError
        If the ``onnx`` package is not installed.
    ValueError, FileNotFoundError
        As ``MLP.load`` raises them for a bad or missing file; ``to_onnx``'s for bad arguments.
    """
    from . import persistence

    _import_onnx()  # before reading the model: the missing package is the error to report
    net, pre = persistence.load_with_preprocessing(MLP, model_path)
    stored = {} if pre is None else pre.onnx_kwargs()  # the command line's scaling and names
    return to_onnx(net, out_path, dtype=dtype, **{**stored, **kwargs})


def _version() -> str:
    from . import __version__

    return __version__


def _write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it (as ``MLP.save``)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastmlp-onnx-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
