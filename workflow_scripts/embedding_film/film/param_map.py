"""A learned (parametric) global map for the film: one small network f: R^D -> R^2 applied to every checkpoint.

Every checkpoint's frame is f(embeddings): one smooth function for the whole film, so an image that does not
move in embedding space does not move on screen, and placing a new checkpoint is one forward pass that
changes no fitted frame. f is trained on the checkpoints' embeddings pooled (all rows, or a seeded subsample
of `max_fit_rows`) with two terms:

  neighbourhoods  parametric t-SNE (van der Maaten 2009): the t-SNE objective KL(P || Q) with openTSNE's
           perplexity affinities P on the pooled rows; the attraction is summed over a minibatch of P's edges
           (sampled in proportion to p_ij), the normaliser Z of Q is estimated from all pairs of a minibatch
           of uniformly drawn rows. `exaggeration` multiplies the attraction, as in openTSNE.
  movement (weight `movement`): for each image and consecutive checkpoints, the log of its 2-D displacement
           minus the log of its embedding displacement should be the same for all images and transitions;
           the term is the variance of that log ratio over a minibatch of (image, transition) pairs: a smooth
           surrogate of the film's stability (metrics.temporal_stability's Spearman).

The network sees the embeddings centred on the pooled mean, reduced to `pca_dims` principal components of
the pooled rows and divided by one global scale (the rms row norm). f(x) = exp(log_scale) * (x[:2] + MLP(x)):
with the MLP's last layer initialised to zero (`pca_init`), the training starts from the global PCA film.
Training runs on the job's threads (`threads: null`: torch's count, which the job runtime sets from the
rule's `threads:`; the layout rule asks for every core) and stops when the objective stops improving (`tol`,
`patience`), then anneals the learning rate over `anneal` iterations. UMAP, autoencoder and stress losses
and per-checkpoint affinities were measured worse on every run and removed (benchmarks/RESULTS.md).

A fitted map is a dict of plain arrays (layout.save_layout / load_layout write and read it without pickle):
  method            str "param"
  settings          str JSON of the settings as used
  mean              float64 [D]          pooled mean of the embeddings
  components        float64 [d, D]       principal axes the input is reduced to (d = pca_dims, or D)
  scale             float64 []           the reduced rows are divided by this (rms norm of the fitted rows)
  log_scale         float32 []           output scale (learned)
  w0, b0, w1, b1, ...  float32           the MLP's layers, torch.nn.Linear's layout (w: [out, in], b: [out])
  fit_steps         int64 [F]            the checkpoints the map was fitted on
  loss_trace        float32 [T, 3]       (iteration, neighbourhood loss, movement loss) every 50 iterations
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embedding_film.film.common import UserError, per_checkpoint, progress
from embedding_film.film.metrics import movements
from embedding_film.film.projection import principal_axes

DEFAULTS: dict[str, Any] = {
    "perplexity": 30.0,  # openTSNE perplexity of the affinities P (the neighbours the map keeps)
    "exaggeration": 1.0,  # attraction multiplier
    "early_exaggeration": 4.0,  # attraction multiplier of the first `early_iterations`
    "early_iterations": 250,
    "negatives": 512,  # rows whose pairs estimate Z
    "pca_dims": 50,  # reduce the embeddings to this many principal components first
    "max_fit_rows": 10000,  # pooled rows of the affinity graph (seeded subsample)
    "hidden": 64,
    "layers": 2,
    "iterations": 2000,  # at most: the fit stops once the objective stops improving (tol, patience)
    "batch": 1024,  # edges per iteration
    "learning_rate": 0.04,
    "cosine_decay": False,  # decay the learning rate along a half cosine over `iterations` (with tol 0)
    "tol": 0.03,  # stop when the objective improved by less than this share over `patience`
    "patience": 50,  # iterations
    "anneal": 50,  # iterations over which the learning rate then falls to zero; 0: none
    "movement": 3.0,  # weight of the movement term (0: the neighbourhood loss alone)
    "movement_batch": 1024,  # (image, transition) pairs per iteration
    "pca_init": True,  # start from the global PCA map (MLP's last layer zero)
    "threads": None,  # torch threads; null: the job's (its rule's `threads:`, capped by --cores)
}


def resolve(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """`settings` completed with DEFAULTS; unknown keys are refused."""
    unknown = set(settings or {}) - set(DEFAULTS)
    if unknown:
        raise UserError(f"projection.param has unknown keys {sorted(unknown)}; known keys are {sorted(DEFAULTS)}.")
    return {**DEFAULTS, **(settings or {})}


# ------------------------------------------------------------------------------------------------ network


def _mlp(d_in: int, hidden: int, layers: int, d_out: int) -> Any:
    import torch

    mods: list[Any] = []
    width = d_in
    for _ in range(layers):
        mods += [torch.nn.Linear(width, hidden), torch.nn.GELU()]
        width = hidden
    mods.append(torch.nn.Linear(width, d_out))
    return torch.nn.Sequential(*mods)


def _linears(net: Any) -> list[Any]:
    import torch

    return [m for m in net if isinstance(m, torch.nn.Linear)]


def _weights(net: Any, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, lin in enumerate(_linears(net)):
        out[f"{prefix}w{i}"] = lin.weight.detach().numpy().astype(np.float32).copy()
        out[f"{prefix}b{i}"] = lin.bias.detach().numpy().astype(np.float32).copy()
    return out


# ------------------------------------------------------------------------------------------------ fitting


def _reduce_fit(rows: np.ndarray, pca_dims: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean [D] and principal axes [d, D] (all D axes, rotated, when pca_dims >= D)."""
    rows = np.asarray(rows, dtype=np.float64)
    return principal_axes(rows, min(int(pca_dims or rows.shape[1]), rows.shape[1], len(rows)))


def reduce(model: Mapping[str, np.ndarray], embeddings: np.ndarray) -> np.ndarray:
    """What the network sees of `embeddings` [n, D]: centred, reduced, scaled (float32 [n, d])."""
    x = (np.asarray(embeddings, dtype=np.float64) - model["mean"]) @ model["components"].T
    return (x / float(model["scale"])).astype(np.float32)


def _affinities(
    rows: np.ndarray, perplexity: float, seed: int, threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """openTSNE's symmetric perplexity affinities of `rows` as edges (i [E], j [E], p [E], p summing to 1), on
    exact neighbours. The neighbour index is built here and handed over (`knn_index`): given only the rows,
    openTSNE imports pynndescent (numba, seconds) to choose an index, even for the exact one."""
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.nearest_neighbors import Sklearn

    perplexity = min(perplexity, (len(rows) - 1) / 3)
    index = Sklearn(
        rows,
        k=min(len(rows) - 1, int(3 * perplexity)),  # openTSNE's own choice
        metric="euclidean",
        n_jobs=threads,
        random_state=seed,
        verbose=False,
        knn_kwargs={"algorithm": "brute"},
    )
    P = PerplexityBasedNN(perplexity=perplexity, n_jobs=threads, knn_index=index).P.tocoo()
    keep = P.row != P.col
    p = P.data[keep].astype(np.float64)
    return P.row[keep].astype(np.int64), P.col[keep].astype(np.int64), p / p.sum()


def fit(
    embeddings_by_step: Sequence[np.ndarray],
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    steps: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Train the map on a film's checkpoints (arguments and result: _fit)."""
    return _fit(embeddings_by_step, settings, seed, steps)[0]


def fit_and_place(
    embeddings_by_step: Sequence[np.ndarray],
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    steps: Sequence[int] | None = None,
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """fit, and every fitted checkpoint's frame, the same as `place` gives it: from the rows the fit reduced
    for its movement term (it reads every checkpoint), so the checkpoints are not read and reduced again."""
    model, reduced = _fit(embeddings_by_step, settings, seed, steps)
    if reduced:
        return model, per_checkpoint(lambda x: _placed(model, x), reduced, "placing")
    return model, per_checkpoint(lambda e: place(model, np.asarray(e)), embeddings_by_step, "placing")


def _fit(
    embeddings_by_step: Sequence[np.ndarray],
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    steps: Sequence[int] | None = None,
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Train the map on a film's checkpoints.

    In: `embeddings_by_step[i]` is one checkpoint's [N, D] array (memory-mapped is fine: each checkpoint is
    read a few times, one at a time), in step order; `settings` overrides DEFAULTS; `seed` fixes the
    subsample, the network's initialisation and the minibatches (byte-identical results across processes
    with the same number of torch threads); `steps` (optional) the checkpoints' step numbers, recorded as
    fit_steps.
    Out: the map's arrays (module docstring), and each checkpoint's reduced rows (`reduce`'s) where the
    movement term needed them (else []). Frames: `place(model, embeddings)`.
    """
    import torch

    s = resolve(settings)
    threads = _threads(s["threads"])
    torch.set_num_threads(threads)  # the same count in every process: the same floating-point sums
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_steps, (n, width) = len(embeddings_by_step), np.shape(embeddings_by_step[0])
    if n_steps < 1 or any(np.shape(e) != (n, width) for e in embeddings_by_step):
        raise UserError(
            "every checkpoint must embed the same eval images with the same width; re-run embed for all checkpoints."
        )

    # fitted rows: a seeded subsample of the pooled rows (flat index = checkpoint * n + image)
    total = n_steps * n
    flat = (
        np.arange(total)
        if total <= int(s["max_fit_rows"])
        else np.sort(rng.choice(total, int(s["max_fit_rows"]), replace=False))
    )
    which, img = np.divmod(flat, n)
    raw = np.concatenate(
        [np.asarray(embeddings_by_step[t][img[which == t]], dtype=np.float64) for t in np.unique(which)]
    )
    mean, components = _reduce_fit(raw, s["pca_dims"])
    model: dict[str, np.ndarray] = {"mean": mean, "components": components, "scale": np.array(1.0)}
    fit_rows = reduce(model, raw)
    scale = float(np.sqrt((fit_rows.astype(np.float64) ** 2).sum(axis=1).mean()))
    model["scale"] = np.array(scale)
    fit_rows = (fit_rows / np.float32(scale)).astype(np.float32)
    del raw

    # movement pairs: every image at every checkpoint, reduced, and the log of each embedding displacement
    reduced: list[np.ndarray] = []
    pair_row, log_len = np.empty(0, dtype=np.int64), None
    if s["movement"] > 0 and n_steps > 1:

        def reduced_and_moved(t: int) -> tuple[np.ndarray, np.ndarray | None]:
            cur = np.asarray(embeddings_by_step[t], dtype=np.float64)
            if t == 0:
                return reduce(model, cur), None
            return reduce(model, cur), movements(embeddings_by_step[t - 1], cur)

        parts = per_checkpoint(reduced_and_moved, range(n_steps), "reducing", threads)
        reduced = [rows for rows, _ in parts]
        lengths = np.stack([moved for _, moved in parts[1:]])
        del parts
        pair_t, pair_i = np.nonzero(lengths > 0)
        log_len = torch.from_numpy(np.log(lengths[pair_t, pair_i]).astype(np.float32))
        pair_row = len(fit_rows) + pair_t * n + pair_i  # the pair's first row in `rows`; its second is n further
    rows = torch.from_numpy(np.concatenate([fit_rows, *reduced]))  # the fitted rows, then every (checkpoint, image)
    reduced = list(rows.numpy()[len(fit_rows) :].reshape(len(reduced), n, -1)) if reduced else []  # views, no copy

    # neighbourhood edges of the fitted rows, drawn in proportion to their probabilities
    gi, gj, p = _affinities(fit_rows, float(s["perplexity"]), seed, threads)
    cdf = np.cumsum(p)
    m = len(fit_rows)

    net = _mlp(rows.shape[1], int(s["hidden"]), int(s["layers"]), 2)
    if s["pca_init"]:
        with torch.no_grad():
            _linears(net)[-1].weight.zero_()
            _linears(net)[-1].bias.zero_()
    log_scale = torch.nn.Parameter(torch.tensor(0.0))
    opt = _Adam([*net.parameters(), log_scale])

    iterations, batch, negatives = int(s["iterations"]), int(s["batch"]), int(s["negatives"])
    mb = int(s["movement_batch"]) if len(pair_row) else 0
    early = int(s["early_iterations"])
    plateau = _Plateau(float(s["tol"]), int(s["patience"]), int(s["anneal"]))
    trace = []
    for it in progress(range(iterations), desc="fitting the learned map"):
        exaggeration = float(s["early_exaggeration"] if it < early else s["exaggeration"])
        # sorted draws walk the cumulative sums in order (cache-friendly); the loss is a mean, order-free
        e = np.minimum(np.searchsorted(cdf, np.sort(rng.random(batch)) * cdf[-1]), len(cdf) - 1)
        parts = [gi[e], gj[e], rng.integers(0, m, negatives)]
        if mb:
            k = rng.integers(0, len(pair_row), mb)
            parts += [pair_row[k], pair_row[k] + n]
        x = rows[torch.from_numpy(np.concatenate(parts))]
        y = torch.exp(log_scale) * (x[:, :2] + net(x))
        yi, yj, yn = y[:batch], y[batch : 2 * batch], y[2 * batch : 2 * batch + negatives]
        attract = torch.log1p(((yi - yj) ** 2).sum(dim=1)).mean()  # -log w_ij, w = 1 / (1 + d^2)
        loss_nb = exaggeration * attract + log_z(yn)
        loss_mv = torch.zeros(())
        if mb:
            at = 2 * batch + negatives
            dy2 = ((y[at + mb :] - y[at : at + mb]) ** 2).sum(dim=1)
            loss_mv = (0.5 * torch.log(dy2 + 1e-12 * dy2.detach().mean()) - log_len[k]).var()
        loss = loss_nb + float(s["movement"]) * loss_mv
        opt.zero_grad()
        loss.backward()
        factor = plateau.step(it, float(loss.detach()), watching=it >= early)
        if s["cosine_decay"] and plateau.stop_at is None:
            factor *= 0.5 * (1 + math.cos(math.pi * it / iterations))
        opt.step(factor * float(s["learning_rate"]))
        last = plateau.done(it) or it == iterations - 1
        if it % 50 == 0 or last:
            trace.append((it, float(loss_nb.detach()), float(loss_mv.detach())))
        if plateau.done(it):
            break
    model.update(_weights(net))
    model["log_scale"] = np.array(float(log_scale.detach()), dtype=np.float32)
    model.update(
        method=np.array("param"),
        settings=np.array(json.dumps(s)),
        fit_steps=np.asarray(steps if steps is not None else range(n_steps), dtype=np.int64),
        loss_trace=np.asarray(trace, dtype=np.float32),
    )
    return model, reduced


def log_z(y: Any) -> Any:
    """log of the mean Student-t kernel 1 / (1 + |y_i - y_j|^2) over the distinct pairs of the rows of `y`
    [m, 2]: the estimate of log Z, t-SNE's normaliser, from a minibatch. The same value and gradient as
    autograd of the pairwise formula, without its chain of m x m intermediates: the kernel is made once, from
    one matrix product, and the backward pass is one product with its square (timings: benchmarks/RESULTS.md)."""
    return _log_z_function().apply(y)


@functools.cache
def _log_z_function() -> Any:
    """log_z's autograd function (made on first use: torch is imported when a map is fitted, not before)."""
    import torch

    class LogZ(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, y: Any) -> Any:
            m = y.shape[0]
            yc = y - y.mean(dim=0)  # centred: |y_i|^2 + |y_j|^2 - 2 y_i.y_j loses less to rounding
            sq = (yc * yc).sum(dim=1)
            q = torch.addmm(sq[:, None] + sq[None, :], yc, yc.T, alpha=-2.0).clamp_(min=0).add_(1).reciprocal_()
            total = q.sum() - m  # every pair's kernel, less the self-pairs (1 each)
            ctx.save_for_backward(yc, q, total)
            return torch.log(total / (m * (m - 1)))

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            # d sum_ij q_ij / d y_i = -4 sum_j q_ij^2 (y_i - y_j); the centring passes it on unchanged (the
            # sum is translation-invariant, so the gradient sums to zero)
            yc, q, total = ctx.saved_tensors
            w = q * q
            return grad * (4.0 / total) * (w @ yc - yc * w.sum(dim=1, keepdim=True))

    return LogZ


class _Plateau:
    """When the fit stops: the objective's mean over each `window` iterations has improved by less than `tol`
    (a share of it) for `patience` iterations. The learning rate then falls linearly to zero over `anneal`
    iterations and the fit ends. `tol` 0: never (the whole schedule runs)."""

    def __init__(self, tol: float, patience: int, anneal: int, window: int = 50) -> None:
        self.tol, self.patience, self.anneal, self.window = tol, patience, max(1, anneal), window
        self.total, self.count, self.best, self.best_at = 0.0, 0, math.inf, 0
        self.stop_at: int | None = None

    def step(self, it: int, loss: float, watching: bool) -> float:
        """The learning-rate factor of iteration `it`, given its loss."""
        if self.stop_at is not None:
            return max(0.0, 1 - (it - self.stop_at) / self.anneal)
        if not watching or self.tol <= 0:
            return 1.0
        self.total, self.count = self.total + loss, self.count + 1
        if self.count == self.window:
            mean, self.total, self.count = self.total / self.window, 0.0, 0
            if not math.isfinite(self.best) or mean < self.best - self.tol * abs(self.best):
                self.best, self.best_at = mean, it
            elif it - self.best_at >= self.patience:
                self.stop_at = it
        return 1.0

    def done(self, it: int) -> bool:
        return self.stop_at is not None and it - self.stop_at >= self.anneal


class _Adam:
    """torch.optim.Adam's step on the CPU (its single-tensor form; betas 0.9 / 0.999, eps 1e-8, no weight decay),
    the same bits, without constructing a torch.optim optimiser: that imports torch._dynamo (its parameter
    groups are guarded against compilation), seconds of CPU in every process that fits the map or warms it
    up (benchmarks/RESULTS.md). Tested against torch.optim.Adam."""

    def __init__(self, params: list[Any], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        import torch

        self.params, self.betas, self.eps, self.steps = params, betas, eps, 0
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self, lr: float) -> None:
        import torch

        beta1, beta2 = self.betas
        self.steps += 1
        step_size = lr / (1 - beta1**self.steps)
        correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        with torch.no_grad():
            for p, (mean, square) in zip(self.params, self.moments):
                if p.grad is None:  # (as torch.optim: a parameter that got no gradient keeps still)
                    continue
                mean.lerp_(p.grad, 1 - beta1)
                square.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                p.addcdiv_(mean, (square.sqrt() / correction2_sqrt).add_(self.eps), value=-step_size)


_warmed_up = False


def warm_up() -> None:
    """Import torch and what it loads on the first training step (autograd's engine, the kernels' set-up) by
    fitting two steps on a few random rows, on one thread (no thread outlives it: a worker forks). A warm
    worker's successor calls it once a run that may need the map has started its first analysis job
    (adapters/layout.py, warm_ahead_key), so the layout job, a barrier of the film, does not. Once per process:
    later calls return at once."""
    global _warmed_up
    if _warmed_up:
        return
    rng = np.random.default_rng(0)
    tiny = [rng.normal(size=(40, 8)).astype(np.float32) for _ in range(2)]
    fit(tiny, {"iterations": 2, "threads": 1, "pca_dims": 4, "negatives": 16, "batch": 16, "movement_batch": 16})
    _warmed_up = True


def warmed_up() -> bool:
    """Whether warm_up has run in this process."""
    return _warmed_up


def _threads(value: Any) -> int:
    """torch threads: the setting, or (null) torch's own count, which a job holds to its rule's `threads:`."""
    import torch

    return int(value) if value else torch.get_num_threads()


# ------------------------------------------------------------------------------------------------ placing


def place(model: Mapping[str, np.ndarray], embeddings: np.ndarray) -> np.ndarray:
    """One checkpoint's frame [N, 2] float32: the fitted map applied to its embeddings [N, D] (rows alone:
    placing any set of rows gives each row the position it gets in any other set)."""
    return _placed(model, reduce(model, embeddings))


def _placed(model: Mapping[str, np.ndarray], reduced: np.ndarray) -> np.ndarray:
    """The frame of rows already reduced (`reduce`'s float32 [N, d]), on one torch thread."""
    import torch

    torch.set_num_threads(1)
    net = _mlp(
        model["components"].shape[0],
        model["w0"].shape[0],
        sum(1 for k in model if k[:1] == "w" and k[1:].isdigit()) - 1,
        2,
    )
    with torch.no_grad():
        for i, lin in enumerate(_linears(net)):
            lin.weight.copy_(torch.from_numpy(np.asarray(model[f"w{i}"])))
            lin.bias.copy_(torch.from_numpy(np.asarray(model[f"b{i}"])))
        x = torch.from_numpy(reduced)
        y = float(np.exp(np.float64(model["log_scale"]))) * (x[:, :2] + net(x))
    return y.numpy().astype(np.float32)
