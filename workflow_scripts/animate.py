"""Stage 7: the film. All frames in step order become one animated GIF.

In:  frames/{step}.png (in step order).
Out: animation.gif with `frame_duration_ms` per frame, `hold_last_ms` more on the last one, `loop`.

Frames are streamed into Pillow's GIF writer one at a time, so memory stays flat with thousands of frames.
"""


import logging
from typing import Any, Iterator, Sequence

from workflow_scripts.common import UserError, atomic_path, run_job

log = logging.getLogger(__name__)


def frame_durations(n: int, frame_duration_ms: int, hold_last_ms: int) -> list[int]:
    if n == 0:
        raise UserError("there are no frames to animate; check that the workflow produced frames/*.png.")
    return [frame_duration_ms] * (n - 1) + [frame_duration_ms + hold_last_ms]


def write_gif(frames: Sequence[str], out: str, frame_duration_ms: int, hold_last_ms: int = 0, loop: int = 0) -> None:
    """Assemble `frames` (PNG paths, in order) into an animated GIF, atomically."""
    from PIL import Image

    durations = frame_durations(len(frames), frame_duration_ms, hold_last_ms)

    def rest() -> Iterator[Any]:
        for path in frames[1:]:
            with Image.open(path) as im:
                yield im.convert("RGB")

    with Image.open(frames[0]) as first, atomic_path(out) as tmp:
        first.convert("RGB").save(
            tmp, format="GIF", save_all=True, append_images=rest(), duration=durations, loop=loop, optimize=False
        )
    log.info("wrote %s with %d frames", out, len(frames))


def _main(snakemake: Any) -> None:
    p = snakemake.params
    write_gif(list(snakemake.input.frames), snakemake.output.gif, p.frame_duration_ms, p.hold_last_ms, p.loop)


if __name__ == "__main__":
    run_job(snakemake, _main)  # noqa: F821 - injected by Snakemake's script: directive
