"""A learned (parametric) global map for the film: one small network f: R^D -> R^2 applied to every checkpoint.

Every checkpoint's frame is f(embeddings): one smooth function for the whole film, so an image that does not
move in embedding space does not move on screen, and placing a new checkpoint is one forward pass that
changes no fitted frame. f is trained on the checkpoints' embeddings pooled (all rows, or a seeded subsample
of `max_fit_rows`) with a neighbourhood loss, and optionally a movement term:

  tsne     parametric t-SNE (van der Maaten 2009): the t-SNE objective KL(P || Q) with openTSNE's perplexity
           affinities P on the pooled rows; the attraction is summed over a minibatch of P's edges (sampled
           in proportion to p_ij), the normaliser Z of Q is estimated from all pairs of a minibatch of
           uniformly drawn rows. `exaggeration` multiplies the attraction, as in openTSNE.
  umap     UMAP's cross-entropy (parametric UMAP, Sainburg et al. 2021) on the same edges with the Cauchy
           kernel 1 / (1 + d^2): -log w on the edges, -log(1 - w) on `negatives` random pairs per edge.
  ae       an autoencoder D -> 2 -> D (Vernier et al. 2020's learned map): mean squared reconstruction error
           of the reduced embeddings, plus `neighbour_weight` x the tsne loss on the code.
  stress   a local metric MDS: on P's edges and on random pairs, (|y_i - y_j| - s d_ij)^2 / d_ij^2 with the
           scale s fitted in closed form (random pairs weighted by `far_weight`).

  movement (any loss, weight `movement`): for each image and consecutive checkpoints, the log of its 2-D
           displacement minus the log of its embedding displacement should be the same for all images and
           transitions; the term is the variance of that log ratio over a minibatch of (image, transition)
           pairs: a smooth surrogate of the film's stability (metrics.temporal_stability's Spearman).

The network sees the embeddings centred on the pooled mean, reduced to `pca_dims` principal components of
the pooled rows and divided by one global scale (the rms row norm). f(x) = exp(log_scale) * (x[:2] + MLP(x)):
with the MLP's last layer initialised to zero (`pca_init`), the training starts from the global PCA film.

A fitted map is a dict of plain arrays (layout.save_layout / load_layout write and read it without pickle):
  method            str "param"
  settings          str JSON of the settings as used
  mean              float64 [D]          pooled mean of the embeddings
  components        float64 [d, D]       principal axes the input is reduced to (d = pca_dims, or D)
  scale             float64 []           the reduced rows are divided by this (rms norm of the fitted rows)
  log_scale         float32 []           output scale (learned)
  w0, b0, w1, b1, ...  float32           the MLP's layers, torch.nn.Linear's layout (w: [out, in], b: [out])
  decoder_w0, ...   float32              the autoencoder's decoder (loss ae only; place does not use it)
  fit_steps         int64 [F]            the checkpoints the map was fitted on
  loss_trace        float32 [T, 3]       (iteration, neighbourhood loss, movement loss) every 50 iterations
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np

from workflow_scripts.common import UserError, progress

LOSSES = ("tsne", "umap", "ae", "stress")

DEFAULTS: dict[str, Any] = {
    "loss": "tsne",
    "perplexity": 30.0,         # openTSNE perplexity of the affinities P (the neighbours the map keeps)
    "affinities": "pooled",     # pooled: P of all fitted rows together; per_step: each checkpoint's own P
    "groups": 4,                # per_step: checkpoints per iteration (edges and negatives from each)
    "exaggeration": 1.0,        # attraction multiplier (tsne, ae's neighbourhood term)
    "early_exaggeration": 4.0,  # during the first `early_fraction` of the iterations
    "early_fraction": 0.25,
    "negatives": 512,           # tsne/ae: rows whose pairs estimate Z; umap: negative pairs per edge batch x 5
    "far_weight": 0.1,          # stress: weight of the random pairs against the edges
    "neighbour_weight": 1.0,    # ae: weight of the tsne term on the code
    "pca_dims": 50,             # reduce the embeddings to this many principal components first
    "max_fit_rows": 20000,      # pooled rows of the affinity graph (seeded subsample)
    "hidden": 256,
    "layers": 2,
    "iterations": 2000,
    "batch": 1024,              # edges per iteration
    "learning_rate": 3e-3,
    "cosine_decay": True,       # decay the learning rate to 0 along a half cosine
    "movement": 3.0,            # weight of the movement term (0: the neighbourhood loss alone)
    "movement_batch": 1024,     # (image, transition) pairs per iteration
    "pca_init": True,           # start from the global PCA map (MLP's last layer zero)
    "threads": 1,
}


def resolve(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """`settings` completed with DEFAULTS; unknown keys are refused."""
    unknown = set(settings or {}) - set(DEFAULTS)
    if unknown:
        raise UserError(f"projection.param has unknown keys {sorted(unknown)}; known keys are {sorted(DEFAULTS)}.")
    s = {**DEFAULTS, **(settings or {})}
    if s["loss"] not in LOSSES:
        raise UserError(f"projection.param.loss {s['loss']!r} is unknown; use one of {LOSSES}.")
    return s


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
    from sklearn.decomposition import PCA

    rows = np.asarray(rows, dtype=np.float64)
    d = min(int(pca_dims or rows.shape[1]), rows.shape[1], len(rows))
    solver = "covariance_eigh" if len(rows) > 4 * rows.shape[1] else "full"
    pca = PCA(n_components=d, svd_solver=solver).fit(rows)
    return pca.mean_, pca.components_


def reduce(model: Mapping[str, np.ndarray], embeddings: np.ndarray) -> np.ndarray:
    """What the network sees of `embeddings` [n, D]: centred, reduced, scaled (float32 [n, d])."""
    x = (np.asarray(embeddings, dtype=np.float64) - model["mean"]) @ model["components"].T
    return (x / float(model["scale"])).astype(np.float32)


def _affinities(rows: np.ndarray, perplexity: float, seed: int, threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """openTSNE's symmetric perplexity affinities of `rows` as edges (i [E], j [E], p [E], p summing to 1)."""
    from openTSNE.affinity import PerplexityBasedNN

    perplexity = min(perplexity, (len(rows) - 1) / 3)
    P = PerplexityBasedNN(
        rows, perplexity=perplexity, method="exact", n_jobs=threads, random_state=seed,
        knn_kwargs={"algorithm": "brute"}, verbose=False,
    ).P.tocoo()
    keep = P.row != P.col
    p = P.data[keep].astype(np.float64)
    return P.row[keep].astype(np.int64), P.col[keep].astype(np.int64), p / p.sum()


def fit(embeddings_by_step: Sequence[np.ndarray], settings: Mapping[str, Any] | None = None, seed: int = 0,
        steps: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Train the map on a film's checkpoints.

    In: `embeddings_by_step[i]` is one checkpoint's [N, D] array (memory-mapped is fine; every checkpoint
    is read once), in step order; `settings` overrides DEFAULTS; `seed` fixes the subsample, the network's
    initialisation and the minibatches (one torch thread: byte-identical results across processes);
    `steps` (optional) the checkpoints' step numbers, recorded as fit_steps.
    Out: the map's arrays (module docstring). Frames: `place(model, embeddings)`.
    """
    import torch

    s = resolve(settings)
    torch.set_num_threads(int(s["threads"]))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_steps, (n, width) = len(embeddings_by_step), np.shape(embeddings_by_step[0])
    if n_steps < 1 or any(np.shape(e) != (n, width) for e in embeddings_by_step):
        raise UserError("every checkpoint must embed the same eval images with the same width; re-run embed for all checkpoints.")

    # fitted rows: a seeded subsample of the pooled rows (flat index = checkpoint * n + image)
    total = n_steps * n
    flat = np.arange(total) if total <= int(s["max_fit_rows"]) else np.sort(rng.choice(total, int(s["max_fit_rows"]), replace=False))
    which, img = np.divmod(flat, n)
    raw = np.concatenate([np.asarray(embeddings_by_step[t][img[which == t]], dtype=np.float64) for t in np.unique(which)])
    mean, components = _reduce_fit(raw, s["pca_dims"])
    model: dict[str, np.ndarray] = {"mean": mean, "components": components, "scale": np.array(1.0)}
    fit_rows = reduce(model, raw)
    scale = float(np.sqrt((fit_rows.astype(np.float64) ** 2).sum(axis=1).mean()))
    model["scale"] = np.array(scale)
    fit_rows = (fit_rows / np.float32(scale)).astype(np.float32)
    del raw

    # movement pairs: every image at every checkpoint, reduced; raw displacement lengths for the targets
    moves = s["movement"] > 0 and n_steps > 1
    if moves:
        all_rows = np.stack([reduce(model, np.asarray(e)) for e in embeddings_by_step])  # [S, N, d]
        prev = np.asarray(embeddings_by_step[0], dtype=np.float64)
        lengths = np.empty((n_steps - 1, n))
        for t in range(1, n_steps):
            cur = np.asarray(embeddings_by_step[t], dtype=np.float64)
            lengths[t - 1] = np.linalg.norm(cur - prev, axis=1)
            prev = cur
        pair_t, pair_i = np.nonzero(lengths > 0)
        log_len = np.log(lengths[pair_t, pair_i]).astype(np.float32)

    # neighbourhood edges (flat indices into fit_rows) and their probabilities, in groups: one group of
    # all fitted rows (pooled), or one per checkpoint (per_step: each checkpoint's own affinities)
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (i, j, cdf, rows)
    if s["loss"] != "ae" or s["neighbour_weight"] > 0:
        if s["affinities"] == "per_step":
            bounds = np.concatenate([[0], np.cumsum([np.count_nonzero(which == t) for t in np.unique(which)])])
            for a, b in zip(bounds[:-1], bounds[1:]):
                if b - a >= 4:
                    i, j, p = _affinities(fit_rows[a:b], float(s["perplexity"]), seed, int(s["threads"]))
                    groups.append((i + a, j + a, np.cumsum(p), np.arange(a, b)))
        else:
            i, j, p = _affinities(fit_rows, float(s["perplexity"]), seed, int(s["threads"]))
            groups.append((i, j, np.cumsum(p), np.arange(len(fit_rows))))

    d = fit_rows.shape[1]
    net = _mlp(d, int(s["hidden"]), int(s["layers"]), 2)
    if s["pca_init"]:
        with torch.no_grad():
            _linears(net)[-1].weight.zero_()
            _linears(net)[-1].bias.zero_()
    log_scale = torch.nn.Parameter(torch.tensor(0.0))
    params = list(net.parameters()) + [log_scale]
    decoder = None
    if s["loss"] == "ae":
        decoder = _mlp(2, int(s["hidden"]), int(s["layers"]), d)
        params += list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=float(s["learning_rate"]))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(s["iterations"])) if s["cosine_decay"] else None

    X = torch.from_numpy(fit_rows)

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(log_scale) * (x[:, :2] + net(x))

    iterations, batch, negatives = int(s["iterations"]), int(s["batch"]), int(s["negatives"])
    per_iter = min(int(s["groups"]), len(groups)) if s["affinities"] == "per_step" else len(groups)
    trace = []
    for it in progress(range(iterations), desc="fitting the learned map"):
        exaggeration = float(s["early_exaggeration"] if it < s["early_fraction"] * iterations else s["exaggeration"])
        # one forward pass over every row this iteration needs: edges' heads and tails, negatives, movement pairs
        parts: list[np.ndarray] = []
        drawn = []
        for g in (rng.choice(len(groups), per_iter, replace=False) if per_iter < len(groups) else range(len(groups))):
            gi, gj, cdf, rows = groups[g]
            e = np.minimum(np.searchsorted(cdf, rng.random(batch // per_iter) * cdf[-1]), len(cdf) - 1)
            m = negatives // per_iter
            neg = rng.choice(rows, m, replace=False) if m < len(rows) else rows
            drawn.append((len(e), len(neg)))
            parts += [gi[e], gj[e], neg]
        if decoder is not None:
            parts.append(rng.choice(len(fit_rows), batch, replace=False) if batch < len(fit_rows) else np.arange(len(fit_rows)))
        x_fit = X[np.concatenate(parts)] if parts else X[:0]
        if moves:
            k = rng.integers(0, len(pair_t), int(s["movement_batch"]))
            x_all = torch.cat([x_fit, torch.from_numpy(all_rows[pair_t[k], pair_i[k]]), torch.from_numpy(all_rows[pair_t[k] + 1, pair_i[k]])])
        else:
            x_all = x_fit
        y_all = f(x_all)
        at = 0
        losses = []
        for n_e, n_neg in drawn:
            yi, yj, yn = y_all[at: at + n_e], y_all[at + n_e: at + 2 * n_e], y_all[at + 2 * n_e: at + 2 * n_e + n_neg]
            xi, xj, xn = x_all[at: at + n_e], x_all[at + n_e: at + 2 * n_e], x_all[at + 2 * n_e: at + 2 * n_e + n_neg]
            losses.append(_neighbour_loss(s, exaggeration, yi, yj, yn, xi, xj, xn, rng))
            at += 2 * n_e + n_neg
        loss_nb = torch.stack(losses).mean() if losses else torch.zeros(())
        if decoder is not None:
            rows_x, rows_y = x_all[at: at + len(parts[-1])], y_all[at: at + len(parts[-1])]
            at += len(parts[-1])
            recon = ((decoder(rows_y) - rows_x) ** 2).sum(dim=1).mean()
            loss_nb = recon + float(s["neighbour_weight"]) * loss_nb
        loss_mv = torch.zeros(())
        if moves:
            mb = int(s["movement_batch"])
            dy2 = ((y_all[at + mb: at + 2 * mb] - y_all[at: at + mb]) ** 2).sum(dim=1)
            ratio = 0.5 * torch.log(dy2 + 1e-12 * dy2.detach().mean()) - torch.from_numpy(log_len[k])
            loss_mv = ratio.var()
        loss = loss_nb + float(s["movement"]) * loss_mv
        opt.zero_grad()
        loss.backward()
        opt.step()
        if schedule is not None:
            schedule.step()
        if it % 50 == 0 or it == iterations - 1:
            trace.append((it, float(loss_nb.detach()), float(loss_mv.detach())))
    model.update(_weights(net))
    model["log_scale"] = np.array(float(log_scale.detach()), dtype=np.float32)
    if decoder is not None:
        model.update(_weights(decoder, "decoder_"))
    model.update(
        method=np.array("param"), settings=np.array(json.dumps(s)),
        fit_steps=np.asarray(steps if steps is not None else range(n_steps), dtype=np.int64),
        loss_trace=np.asarray(trace, dtype=np.float32),
    )
    return model


def _neighbour_loss(s: Mapping[str, Any], exaggeration: float, yi: Any, yj: Any, yn: Any, xi: Any, xj: Any, xn: Any,
                    rng: np.random.Generator) -> Any:
    import torch

    loss = s["loss"]
    if loss in ("tsne", "ae"):
        attract = torch.log1p(((yi - yj) ** 2).sum(dim=1)).mean()  # -log w_ij, w = 1 / (1 + d^2)
        d2 = torch.cdist(yn, yn) ** 2
        off = ~torch.eye(len(yn), dtype=torch.bool)
        log_z = torch.log((1.0 / (1.0 + d2[off])).mean())
        return exaggeration * attract + log_z
    if loss == "umap":
        attract = torch.log1p(((yi - yj) ** 2).sum(dim=1)).mean()
        # negatives: each edge's head against random rows
        m = 5
        idx = torch.from_numpy(rng.integers(0, len(yn), (len(yi), m)))
        dn2 = ((yi[:, None, :] - yn[idx]) ** 2).sum(dim=2)
        w = 1.0 / (1.0 + dn2)
        repel = -torch.log((1.0 - w).clamp_min(1e-4)).sum(dim=1).mean()
        return exaggeration * attract + repel
    if loss == "stress":
        dh = torch.linalg.norm(xi - xj, dim=1).clamp_min(1e-6)
        dl = torch.linalg.norm(yi - yj, dim=1)
        k = min(len(xn), len(xi))
        dh_far = torch.linalg.norm(xn[:k] - xn.roll(1, 0)[:k], dim=1).clamp_min(1e-6)
        dl_far = torch.linalg.norm(yn[:k] - yn.roll(1, 0)[:k], dim=1)
        hi = torch.cat([dh, dh_far])
        lo = torch.cat([dl, dl_far])
        wt = torch.cat([torch.ones_like(dh), torch.full_like(dh_far, float(s["far_weight"]))]) / hi**2
        scale = ((wt * lo * hi).sum() / (wt * hi * hi).sum()).detach()
        return (wt * (lo / scale - hi) ** 2).sum() / wt.sum()
    raise ValueError(loss)


# ------------------------------------------------------------------------------------------------ placing


def place(model: Mapping[str, np.ndarray], embeddings: np.ndarray) -> np.ndarray:
    """One checkpoint's frame [N, 2] float32: the fitted map applied to its embeddings [N, D] (rows alone:
    placing any set of rows gives each row the position it gets in any other set)."""
    import torch

    torch.set_num_threads(1)
    net = _mlp(model["components"].shape[0], model["w0"].shape[0], sum(1 for k in model if k[:1] == "w" and k[1:].isdigit()) - 1, 2)
    with torch.no_grad():
        for i, lin in enumerate(_linears(net)):
            lin.weight.copy_(torch.from_numpy(np.asarray(model[f"w{i}"])))
            lin.bias.copy_(torch.from_numpy(np.asarray(model[f"b{i}"])))
        x = torch.from_numpy(reduce(model, embeddings))
        y = float(np.exp(np.float64(model["log_scale"]))) * (x[:, :2] + net(x))
    return y.numpy().astype(np.float32)
