"""When a film-wide layout is refitted, and when an appended checkpoint is placed on the layout it has.

With `projection.fit: auto` (the default) the layout is fitted on the checkpoints there are when it is first
made. A checkpoint appended later is placed on that frozen layout by its own `project` job (one forward pass
of the learned map, one projection on the PCA basis), so no old frame is redrawn. The film's metrics job
then checks the placed checkpoints (`refit_due`): when one of them, or the film with them, misses a target
that the fitted checkpoints meet, film_metrics.json says so and why, and the next run refits the layout on
every checkpoint (`kept_fit_steps`, read when the workflow plans). A change of the layout's settings refits
it too.

Nothing here imports more than numpy: the planner runs it for every run at every Snakemake start.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FIRST_FIT = "the layout is fitted for the first time"  # the refit reason of a layout that had none before


def fingerprint(cfg: Mapping[str, Any]) -> str:
    """What a run's film-wide layout fit depends on (its method, seed, the methods' settings, the metrics' k
    and max_points), from the run's whole config, as one canonical JSON string. A layout fitted under
    another fingerprint is refitted."""
    projection = cfg["projection"]
    settings = {
        "method": projection["method"],
        "seed": cfg["seed"],
        "settings": {k: projection[k] for k in ("tsne", "param", "umap", "auto")},
        "metrics": {k: cfg["metrics"][k] for k in ("k", "max_points")},
    }
    return json.dumps(settings, sort_keys=True, default=str)


def kept_fit_steps(
    layout: str | os.PathLike[str], film_metrics: str | os.PathLike[str], steps: Sequence[int], current: str
) -> tuple[list[int] | None, str]:
    """The checkpoints to keep the layout fitted on, or None to fit it on all `steps`, and why.

    Keeps the existing layout's fit steps when it was made with the `current` fingerprint, all its fit steps
    are still checkpoints of the film, and the film made from it last (film_metrics.json, when newer than the
    layout) found no refit due.
    """
    path = Path(layout)
    if not path.is_file():
        return None, FIRST_FIT
    try:
        with np.load(path, allow_pickle=False) as data:
            fitted = [int(s) for s in data["fit_steps"]] if "fit_steps" in data else None
            made_with = str(data["fingerprint"]) if "fingerprint" in data else None
    except (OSError, ValueError, KeyError):
        return None, f"{path} cannot be read"
    if made_with != current or fitted is None:
        return None, "the layout's settings changed"
    gone = sorted(set(fitted) - set(int(s) for s in steps))
    if gone:
        return None, f"checkpoints {gone} the layout was fitted on are no longer in the film"
    metrics = Path(film_metrics)
    if metrics.is_file() and metrics.stat().st_mtime >= path.stat().st_mtime:
        try:
            due = (json.loads(metrics.read_text()).get("layout") or {}).get("refit_due")
        except (OSError, ValueError):
            due = None
        if due:
            return None, str(due)
    return fitted, "kept"


def refit_due(
    steps: Sequence[int],
    fit_steps: Sequence[int],
    trust: Sequence[float],
    stability_all: float,
    stability_fitted: float,
    targets: Mapping[str, float],
) -> str | None:
    """Why the layout should be refitted on every checkpoint, or None.

    In: the film's `steps` and the layout's `fit_steps`; each step's trustworthiness (`trust`, in step order);
    the film's stability with every checkpoint and with the fitted ones alone; `targets` min_stability,
    min_trust_mean, min_trust_worst (projection.auto's). A placed checkpoint calls for a refit when its frame
    misses the worst-frame target, or when the film with the placed checkpoints misses the stability or
    trustworthiness-mean target, each only where the fitted checkpoints alone meet it (else a refit would
    not help).
    """
    fitted = set(int(s) for s in fit_steps)
    placed = [i for i, s in enumerate(steps) if int(s) not in fitted]
    if not placed:
        return None
    own = [t for s, t in zip(steps, trust) if int(s) in fitted]
    worst_fitted = min(own) if own else math.inf
    reasons = []
    for i in placed:
        if trust[i] < targets["min_trust_worst"] <= worst_fitted:
            reasons.append(
                f"checkpoint {steps[i]}, placed on the layout, has trustworthiness {trust[i]:.3f} < "
                f"{targets['min_trust_worst']} (worst frame)"
            )
    mean_all, mean_fitted = float(np.mean(trust)), float(np.mean(own)) if own else math.inf
    if mean_all < targets["min_trust_mean"] <= mean_fitted:
        reasons.append(f"the film's trustworthiness mean falls to {mean_all:.3f} < {targets['min_trust_mean']}")
    if not math.isnan(stability_all) and stability_all < targets["min_stability"] <= _or_inf(stability_fitted):
        reasons.append(f"the film's stability falls to {stability_all:.3f} < {targets['min_stability']}")
    if not reasons:
        return None
    return "; ".join(reasons) + f" (fitted on {len(fitted)} checkpoints, {len(placed)} placed)"


def _or_inf(value: float) -> float:
    """An undefined stability (fewer than two fitted checkpoints) as one that meets any target."""
    return math.inf if math.isnan(value) else value
