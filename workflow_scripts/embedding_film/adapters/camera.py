"""Stage 5d (camera.mode lookahead): every frame's view of the layout at once (rule camera; workflow_scripts/embedding_film/film/camera.py).

In:  every checkpoint's projection/{step}.npy.
Out: projection/camera.json: {"<step>": {"x": [x0, x1], "y": [y0, y1], "zoom": z, "spread": s}, ...}.
"""

from __future__ import annotations

from embedding_film.adapters import Job
from embedding_film.film.camera import plan_camera, views


def main(job: Job) -> None:
    """Rule camera (lookahead): every frame's view in camera.json."""
    from embedding_film.film.common import load_npy, save_json

    p = job.params
    frames = [load_npy(path) for path in job.input.projections]
    s = p.settings
    cameras = plan_camera(
        frames, p.mode, s["min_spread"], s["max_spread"], s["max_zoom_change"], s["max_shift"], p.margin, s["window"]
    )
    save_json(job.output.camera, views(frames, cameras, p.steps))
