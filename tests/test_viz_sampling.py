"""The animations (viz.animated_png, viz.animate_images for notebook 05's reverse chain): animated PNGs, one
frame per step, each showing that step's images; their input checked.

The widgets of notebooks 05 and 07 are ``widgets.interactive_figure``, tested in test_widgets.py.
"""

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402

from nanoddpm_utils import viz  # noqa: E402


def decoded(png: bytes) -> list[np.ndarray]:
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG" and im.is_animated and im.info["loop"] == 0  # an APNG that loops forever
    return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]


def test_animated_png_holds_every_frame_with_its_timing():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    png = viz.animated_png(frames, duration=80, hold_last=900)
    back = decoded(png)
    assert len(back) == 5
    for got, want in zip(back, frames):
        np.testing.assert_array_equal(got, want)  # lossless, in order
    im = Image.open(io.BytesIO(png))
    durations = []
    for frame in ImageSequence.Iterator(im):
        durations.append(frame.info["duration"])
    assert durations == [80, 80, 80, 80, 900]


def test_animated_png_takes_figures_frames():
    fig, ax = plt.subplots(figsize=(1, 1))
    (line,) = ax.plot([0, 1], [0, 0])
    pngs = []
    for y in (0, 1):
        line.set_ydata([y, y])
        pngs.append(viz.frame_png(fig, dpi=50))
    plt.close(fig)
    a, b = decoded(viz.animated_png(pngs))
    assert a.shape == b.shape == (50, 50, 3) and not np.array_equal(a, b)


def test_animated_png_refuses_frames_of_different_sizes():
    with pytest.raises(ValueError, match="different sizes"):
        viz.animated_png([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)])
    with pytest.raises(ValueError, match="no frames"):
        viz.animated_png([])


def test_animate_images_shows_each_frame_of_the_chain():
    """Frame f of the animation shows the images of frames[f]: all black, then all white, then black again."""
    frames = np.stack([np.full((2, 8, 8, 1), v, np.float32) for v in (-1.0, 1.0, -1.0)])
    shown = viz.animate_images(frames, ["t = 2", "t = 1", "t = 0"], ncols=2, dpi=50)
    assert shown.format == "png" and plt.get_fignums() == []  # the animation only, no stray figure
    back = decoded(shown.data)
    assert len(back) == 3
    h, w, _ = back[0].shape
    centre = [f[int(0.55 * h), w // 4].mean() for f in back]  # the centre of the first image
    assert centre[0] < 50 and centre[1] > 200 and centre[2] < 50
    assert not np.array_equal(back[0][: h // 6], back[1][: h // 6])  # the title changes with the frame


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="titles"):
        viz.animate_images(np.zeros((3, 2, 8, 8, 1)), ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        viz.animate_images(np.zeros((3, 8, 8, 1)), ["a", "b", "c"])
