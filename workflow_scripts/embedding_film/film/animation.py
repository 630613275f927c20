"""Stage 7: the film. All frames in order (checkpoints, with interpolated frames between them) become an
animated GIF and/or an MP4.

In:  frames/{step}.png and frames/tween/{step}-{j}.png, in film order.
Out: animation.gif (an adaptive palette per frame, `loop`), animation.mp4 (H.264 through imageio's ffmpeg
     plugin; the binary ships in the imageio-ffmpeg wheel), each at `fps`, the last frame held `hold_last` s.

Frames are streamed one at a time, so memory stays flat with thousands of frames.
"""

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from embedding_film.film.common import UserError, atomic_path

log = logging.getLogger(__name__)


def frame_durations(n: int, fps: float, hold_last: float) -> list[int]:
    """Per-frame display time in ms (GIF delays are whole milliseconds; Pillow rounds to 10 ms)."""
    if n == 0:
        raise UserError("there are no frames to animate; check that the workflow produced frames/*.png.")
    each = round(1000 / fps)
    return [each] * (n - 1) + [each + round(1000 * hold_last)]


def _rgb(path: str) -> Any:
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def _frames(paths: Sequence[str]) -> Iterator[Any]:
    return map(_rgb, paths)


def _palette_frame(path: str) -> Any:
    """One frame reduced to an adaptive 256-colour palette (fast octree, no dithering: flat plot colours stay
    flat, which also compresses best): faster and smaller than Pillow's default conversion (RESULTS.md)."""
    from PIL import Image

    return _rgb(path).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def _palette_frames(paths: Sequence[str], threads: int = 1) -> Iterator[Any]:
    """The frames in order, decoded and reduced by `threads` threads (Pillow releases the GIL for both, most of
    a frame's cost), at most two per thread ahead, so memory stays flat."""
    if threads <= 1:
        yield from map(_palette_frame, paths)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        ahead: deque = deque()
        for path in paths:
            ahead.append(pool.submit(_palette_frame, path))
            if len(ahead) > 2 * threads:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def write_gif(
    frames: Sequence[str], out: str, fps: float, hold_last: float = 0.0, loop: int = 0, threads: int = 1
) -> None:
    """Assemble `frames` (PNG paths, in order) into an animated GIF, atomically; `threads` decode the frames
    while the GIF is encoded."""
    durations = frame_durations(len(frames), fps, hold_last)
    stream = _palette_frames(frames, threads)
    first = next(stream)
    with atomic_path(out) as tmp:
        first.save(
            tmp, format="GIF", save_all=True, append_images=stream, duration=durations, loop=loop, optimize=False
        )
    log.info("wrote %s: %d frames", out, len(frames))


def write_mp4(frames: Sequence[str], out: str, fps: float, hold_last: float = 0.0) -> None:
    """Assemble `frames` into an H.264 MP4 (yuv420p, plays everywhere), atomically."""
    import imageio.v2 as imageio
    import numpy as np

    frame_durations(len(frames), fps, hold_last)
    hold = round(hold_last * fps)
    with atomic_path(out) as tmp:
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            quality=8,
            pixelformat="yuv420p",
            macro_block_size=2,
            ffmpeg_log_level="error",
        )
        try:
            frame = None
            for frame in _frames(frames):
                writer.append_data(np.asarray(frame))
            for _ in range(hold):
                writer.append_data(np.asarray(frame))
        finally:
            writer.close()
    log.info("wrote %s: %d frames + %d held", out, len(frames), hold)


def warm_up() -> None:
    """Import the GIF and MP4 writers (a warm worker calls it before it forks the film's jobs)."""
    import imageio.v3  # noqa: F401
    import PIL.Image  # noqa: F401
