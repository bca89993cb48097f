"""The one door to torch and pykan: reading, running and training a network.

Every other KAN module works on numpy arrays, sympy expressions and plain floats; this
module is where a pykan ``MultKAN`` (pykan 0.2.8) and its tensors turn into those:

- reading a trained network: each edge's inputs and outputs on the data, its masks, the
  formula of an edge fixed symbolic, the affine maps of a layer as floats;
- running it: the network's output, and each layer's spline post-activations (from which
  :mod:`llmlex._kan_assembly` builds the numerical replica and the sensitivities);
- making and training one for :class:`llmlex.kan.KANLEX`: creation, seeded training with
  pykan's output silenced, pruning, datasets.

torch and pykan are imported inside the functions (:func:`import_kan`), so importing this
module is cheap, and a missing extra raises
:class:`~llmlex.exceptions.MissingDependencyError` naming it.  Nothing else in llmlex
imports torch or pykan, except the torch exporter :func:`llmlex.export.to_torch`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlex._kan_types import EdgeStatus, Key
from llmlex.exceptions import MissingDependencyError

if TYPE_CHECKING:
    import sympy

__all__ = [
    "as_2d",
    "as_float_array",
    "cached_inputs",
    "create_dataset",
    "dataset_from_arrays",
    "extract_edges",
    "holdout_loss",
    "import_kan",
    "input_columns",
    "layer_affines",
    "masks",
    "network_output",
    "new_model",
    "prune",
    "quiet",
    "spline_postacts",
    "symbolic_evaluator",
    "to_numpy",
    "train",
]

# One logger for the KAN door: callers tune "llmlex.kan" (the examples do).
log = logging.getLogger("llmlex.kan")

#: ``(status, x_edge, y_edge, sympy_or_None)`` of one edge, see :func:`extract_edges`.
RawEdge = tuple[EdgeStatus, np.ndarray, np.ndarray, Any]


def import_kan() -> tuple[Any, Any]:
    """Import torch and pykan, or raise :class:`MissingDependencyError` naming the extra.

    Returns
    -------
    tuple
        The ``torch`` module and pykan's ``MultKAN`` class.
    """
    try:
        import torch
        from kan import MultKAN
    except ImportError as err:
        raise MissingDependencyError(
            f"KAN support needs torch and pykan ({err}); install them with "
            '`pip install "llmlex[kan]"`'
        ) from err
    return torch, MultKAN


# ----------------------------------------------------------------------------- arrays


def to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as a float64 numpy array."""
    return t.detach().cpu().numpy().astype(float)


def as_float_array(a: Any) -> np.ndarray:
    """A tensor or array-like as a float64 array, shape unchanged."""
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def as_2d(a: Any) -> np.ndarray:
    """A tensor or array-like as a float64 array with samples in rows: ``(n,)`` -> ``(n, 1)``."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=float)
    return a[:, None] if a.ndim == 1 else a


def _floats(t: Any) -> list[float]:
    return [float(v) for v in t.detach().cpu().reshape(-1)]


# ----------------------------------------------------------------------------- reading


def input_columns(model: Any) -> list[int]:
    """The data columns the network reads, in order (pykan's ``input_id``)."""
    return [int(k) for k in model.input_id]


def layer_affines(
    model: Any, layer: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Subnode scales and biases, node scales and biases of ``layer``, as floats."""
    return (
        _floats(model.subnode_scale[layer]),
        _floats(model.subnode_bias[layer]),
        _floats(model.node_scale[layer]),
        _floats(model.node_bias[layer]),
    )


def masks(model: Any, layer: int, i: int, j: int) -> tuple[float, float]:
    """(numerical mask, symbolic mask) of an edge, as pykan's forward applies them."""
    mask_n = float(model.act_fun[layer].mask[i, j])
    mask_s = float(model.symbolic_fun[layer].mask[j, i]) if model.symbolic_enabled else 0.0
    return mask_n, mask_s


def _symbolic_edge(model: Any, layer: int, i: int, j: int, mask_s: float) -> sympy.Expr:
    """pykan's own formula ``mask*(c*f(a*x+b)+d)`` of a symbolic edge, in the symbol x."""
    import sympy

    from llmlex._symbolic import X

    sf = model.symbolic_fun[layer]
    a, b, c, d = (float(v) for v in sf.affine[j, i].detach().cpu())
    inner = sympy.Float(a) * X + sympy.Float(b)
    out = sympy.Float(c) * sympy.sympify(sf.funs_sympy[j][i](inner)) + sympy.Float(d)
    return out if mask_s == 1.0 else sympy.Float(mask_s) * out


def symbolic_evaluator(
    model: Any, layer: int, i: int, j: int, mask_s: float
) -> Callable[[np.ndarray], np.ndarray]:
    """pykan's torch function of a symbolic edge as a numpy callable (float64)."""
    torch, _ = import_kan()
    sf = model.symbolic_fun[layer]

    def evaluate(x: np.ndarray) -> np.ndarray:
        with torch.no_grad(), deterministic():
            xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
            a, b, c, d = sf.affine[j, i].detach().to(torch.float64)
            out = c * sf.funs[j][i](a * xt + b) + d
        return mask_s * out.numpy()

    return evaluate


def extract_edges(model: Any, x: Any = None) -> dict[Key, RawEdge]:
    """Inputs and outputs of every edge of ``model`` on the inputs ``x``.

    The training inputs are run through the model first, because pykan keeps only the
    activations of its *last* forward pass (often a test batch).

    Parameters
    ----------
    model : kan.MultKAN
        A trained pykan model.
    x : array_like or torch.Tensor, optional
        Inputs, shape ``(n, n_var)``; default: the model's cached last input.

    Returns
    -------
    dict
        ``(layer, i, j) -> (status, x_edge, y_edge, sympy_or_None)``: status ``fitted``
        (to be regressed), ``symbolic`` (with pykan's formula), ``zero`` or ``pruned``.
    """
    torch, _ = import_kan()
    if x is None:
        if model.cache_data is None:
            raise ValueError("the model has not been run yet: pass the training inputs as x")
        xt = model.cache_data
        log.warning("no inputs given: using the model's last forward input")
    else:
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x)
        xt = xt.to(dtype=torch.get_default_dtype(), device=model.device)
    save_act = model.save_act
    model.save_act = True
    try:
        with torch.no_grad(), benign(), deterministic():
            model(xt)
    finally:
        model.save_act = save_act
    out: dict[Key, RawEdge] = {}
    for layer in range(model.depth):
        acts = to_numpy(model.acts[layer])
        post = to_numpy(model.spline_postacts[layer])
        for i in range(model.width_in[layer]):
            for j in range(model.width_out[layer + 1]):
                mask_n, mask_s = masks(model, layer, i, j)
                xe, ye = acts[:, i], post[:, j, i]
                if mask_n == 0.0 and mask_s == 0.0:
                    out[(layer, i, j)] = ("pruned", xe, ye, None)
                elif mask_n == 0.0:
                    name = model.symbolic_fun[layer].funs_name[j][i]
                    if name == "0":
                        out[(layer, i, j)] = ("zero", xe, ye, None)
                    else:
                        sym = _symbolic_edge(model, layer, i, j, mask_s)
                        out[(layer, i, j)] = ("symbolic", xe, ye, sym)
                elif not np.any(np.abs(ye) > 1e-12 * max(1.0, float(np.max(np.abs(acts))))):
                    out[(layer, i, j)] = ("zero", xe, ye, None)
                else:
                    out[(layer, i, j)] = ("fitted", xe, ye, None)
    return out


def cached_inputs(model: Any) -> Any:
    """The input of the model's last forward pass (a tensor), or None."""
    return model.cache_data


# ----------------------------------------------------------------------------- running


def spline_postacts(model: Any) -> Callable[[int, np.ndarray], np.ndarray]:
    """``post(layer, H) -> (n, out, in)``: the layer's own edge outputs on inputs ``H``."""
    torch, _ = import_kan()

    def post(layer: int, h: np.ndarray) -> np.ndarray:
        ht = torch.as_tensor(h, dtype=torch.get_default_dtype(), device=model.device)
        with torch.no_grad(), deterministic():
            total = model.act_fun[layer](ht)[2]
            if model.symbolic_enabled:
                total = total + model.symbolic_fun[layer](ht)[1]
        return to_numpy(total)

    return post


def network_output(model: Any, X: np.ndarray) -> np.ndarray:
    """The network's output on the inputs ``X`` (``(n, n_out)``, float64)."""
    torch, _ = import_kan()
    xt = torch.as_tensor(X, dtype=torch.get_default_dtype(), device=model.device)
    with torch.no_grad(), benign(), deterministic():
        return to_numpy(model(xt))


# ----------------------------------------------------------------------------- training


@contextlib.contextmanager
def benign() -> Iterator[None]:
    """Silence pykan's warnings that say nothing about the user's data: a forward pass on
    fewer than two points takes ``torch.std`` of one value (pykan records the spread of
    each layer's activations on every pass)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"std\(\): degrees of freedom", category=UserWarning
        )
        yield


@contextlib.contextmanager
def quiet(enabled: bool) -> Iterator[None]:
    """Silence pykan's prints and progress bar (it offers no switch for either)."""
    if not enabled:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """torch's deterministic algorithms for the block (the caller's setting restored
    after).  Without them, the same seed trains a different network from one run to the
    next, even on one CPU thread (measured: initial coefficients differing in the ninth
    digit, and LBFGS carrying that to 30% in the loss after 20 steps), so the same data
    and seed gave different formulas."""
    torch, _ = import_kan()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def new_model(
    width: Sequence[Any],
    grid: int,
    k: int,
    seed: int,
    device: str,
    ckpt_path: str,
    options: Mapping[str, Any],
) -> Any:
    """A fresh ``MultKAN`` that writes its checkpoints (if any) under ``ckpt_path``."""
    _, MultKAN = import_kan()
    with quiet(True), deterministic():
        return MultKAN(
            width=copy.deepcopy(list(width)),
            grid=grid,
            k=k,
            seed=seed,
            device=device,
            auto_save=False,
            ckpt_path=ckpt_path,
            **options,
        )


def create_dataset(
    f: Callable[[Any], Any],
    n_var: int,
    ranges: Any,
    train_num: int,
    test_num: int,
    device: str,
    seed: int,
    **options: Any,
) -> dict[str, Any]:
    """pykan's ``create_dataset`` (``f`` is a torch function of ``x[:, k]``)."""
    import_kan()
    from kan.utils import create_dataset as pykan_create_dataset

    return pykan_create_dataset(
        f,
        n_var=n_var,
        ranges=ranges,
        train_num=train_num,
        test_num=test_num,
        device=device,
        seed=seed,
        **options,
    )


def dataset_from_arrays(
    X_train: Any, y_train: Any, X_test: Any, y_test: Any, device: str
) -> dict[str, Any]:
    """A pykan dataset dictionary from numpy data (``X`` of shape ``(n, n_var)``)."""
    torch, _ = import_kan()

    def t(a: Any) -> Any:
        return torch.as_tensor(as_2d(a), dtype=torch.get_default_dtype(), device=device)

    return {
        "train_input": t(X_train),
        "train_label": t(y_train),
        "test_input": t(X_test),
        "test_label": t(y_test),
    }


def train(
    model: Any,
    ds: dict[str, Any],
    seed: int,
    steps: int,
    opt: str,
    lamb: float,
    verbose: int,
    fit_options: Mapping[str, Any],
    *,
    weights: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Train ``model`` in place (an Adam warm-up first if asked); return the last train
    RMSE and pykan's history of the (last) ``model.fit`` (``train_loss``, ``test_loss``,
    ``reg``: lists of floats).

    ``fit_options`` may hold ``warmup`` (Adam steps before an LBFGS run) and
    ``warmup_lr``; the rest goes to ``model.fit``.  ``weights`` (per training and test
    sample, e.g. ``1/sigma**2`` normalised to mean 1) make the loss the weighted mean
    squared error ``mean(w * (f - y)**2)``; the RMSE returned is then weighted too.

    Raises
    ------
    ValueError
        ``weights`` together with a ``loss_fn`` of the caller's.
    """
    torch, _ = import_kan()
    # pykan draws its batches from numpy's global generator: seed it for this run
    # and give the caller's state back afterwards.
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    options = dict(fit_options)
    warmup = int(options.pop("warmup", 0))
    warmup_lr = float(options.pop("warmup_lr", 0.01))
    data = ds
    if weights is not None:
        if "loss_fn" in options:
            raise ValueError("error bars weight the loss: a loss_fn of its own cannot be given")
        data, options["loss_fn"] = _weighted_loss(ds, weights)
    try:
        with quiet(verbose == 0), deterministic():
            if warmup > 0 and opt == "LBFGS":
                model.fit(data, opt="Adam", lr=warmup_lr, steps=warmup, lamb=lamb, log=1, **options)
            res = model.fit(data, opt=opt, steps=steps, lamb=lamb, log=1, **options)
    finally:
        np.random.set_state(state)
    history = {k: [float(v) for v in vals] for k, vals in res.items() if isinstance(vals, list)}
    losses = history.get("train_loss", [])
    return (losses[-1] if losses else math.nan), history


def _weighted_loss(
    ds: dict[str, Any], weights: tuple[np.ndarray, np.ndarray]
) -> tuple[dict[str, Any], Callable[[Any, Any], Any]]:
    """A dataset whose labels carry each sample's weight in an extra column, and its loss.

    pykan hands ``loss_fn`` only predictions and labels, of a permutation of the samples
    it draws itself; a weight that travels in the label's row stays with its sample.
    """
    torch, _ = import_kan()

    def with_weights(label: Any, w: np.ndarray) -> Any:
        column = torch.as_tensor(np.asarray(w, dtype=float), dtype=label.dtype)
        return torch.cat([label, column.to(label.device)[:, None]], dim=1)

    n_out = ds["train_label"].shape[1]

    def loss(pred: Any, label: Any) -> Any:
        return torch.mean(label[:, n_out:] * (pred - label[:, :n_out]) ** 2)

    data = {
        **ds,
        "train_label": with_weights(ds["train_label"], weights[0]),
        "test_label": with_weights(ds["test_label"], weights[1]),
    }
    return data, loss


def holdout_loss(model: Any, ds: dict[str, Any], weights: np.ndarray | None = None) -> float:
    """The network's RMSE on the dataset's test part (``inf`` if not finite).

    With ``weights`` (one per test sample), the weighted RMSE ``sqrt(mean(w * r**2))``.
    """
    torch, _ = import_kan()
    with torch.no_grad(), benign(), deterministic():
        r2 = (model(ds["test_input"]) - ds["test_label"]) ** 2
        if weights is not None:
            w = torch.as_tensor(np.asarray(weights, dtype=float), dtype=r2.dtype)
            r2 = r2 * w.to(r2.device)[:, None]
        loss = float(torch.sqrt(torch.mean(r2)))
    return loss if math.isfinite(loss) else math.inf


def prune(model: Any, ds: dict[str, Any], node_th: float, edge_th: float, verbose: int) -> Any:
    """pykan's pruning of ``model`` (judged on the training inputs); a new model."""
    torch, _ = import_kan()
    with torch.no_grad(), deterministic():
        model(ds["train_input"])
    with quiet(verbose == 0), deterministic():
        pruned = model.prune(node_th=node_th, edge_th=edge_th)
    pruned.auto_save = False
    return pruned
