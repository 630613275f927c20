"""Stage 9b: one frame of the comparison film per tick of its common clock (rule compare_frame).

In:  results/compare/{name}/layout.npz (each run's coordinates and panel limits), for every run the OOD
     scores and metrics of the checkpoint its panel shows at this tick, every run's train_log.csv, the eval
     labels and class names (the same eval images in every run).
Out: results/compare/{name}/frames/{tick}.png: one panel per run (its checkpoint at this tick, coloured by
     class, its top-k outliers ringed, its step, loss and accuracies above), one shared colour legend, the
     tick and what the layout means in the title.
"""

import numpy as np

from embedding_film.adapters import Job
from embedding_film.film.checkpoints import read_train_log
from embedding_film.film.common import load_json, load_npy
from embedding_film.film.compare import loss_at, panel_caption, render_comparison
from embedding_film.film.render import warm_up


def warm(job: Job | None = None) -> None:
    warm_up()


def main(job: Job) -> None:
    i, p = job.input, job.params
    runs = list(p.steps)
    with np.load(i.layout, allow_pickle=False) as layout:
        coords = [layout[f"coords_{r}"] for r in range(len(runs))]
        limits, note = layout["limits"], str(layout["note"])
    scores, metrics = iter(i.scores), iter(i.metrics)
    panels = []
    for r, (run, log) in enumerate(zip(runs, i.loss_logs)):
        step = p.shown[run]
        if step is None:
            panels.append({"run": run, "coords": None, "limits": limits[r], "caption": f"{run}: not started"})
            continue
        values = load_json(next(metrics))
        loss = loss_at(read_train_log(log).get("loss", []), step)
        panels.append(
            {
                "run": run,
                "coords": coords[r][p.steps[run].index(step)],
                "limits": limits[r],
                "scores": load_npy(next(scores)),
                "caption": panel_caption(run, step, p.last_steps[run], loss, values),
            }
        )
    clock = "the same training step" if p.clock == "step" else "the same fraction of each run's training"
    render_comparison(
        panels,
        load_npy(i.labels),
        list(load_json(i.classes)["names"]),
        f"{p.tick}  ({clock})",
        note,
        job.output.frame,
        top_k=p.top_k,
        **p.style,
    )
