"""The animation of notebook 05 (viz.animate_images): one embedded PNG per frame, its input checked.

The widgets of notebooks 05 and 07 are ``viz.interactive_figure``, tested in test_viz.py.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nanoddpm_utils import viz  # noqa: E402


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="titles"):
        viz.animate_images(np.zeros((3, 2, 8, 8, 1)), ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        viz.animate_images(np.zeros((3, 8, 8, 1)), ["a", "b", "c"])


def test_animation_holds_one_png_per_frame():
    frames = np.linspace(-1, 1, 4 * 2 * 8 * 8).reshape(4, 2, 8, 8, 1)
    html = viz.animate_images(frames, [f"t = {t}" for t in range(4)], ncols=2).data
    assert html.count("data:image/png;base64,") == 4
    assert "<script" in html and plt.get_fignums() == []  # the player only, no stray figure


def test_the_player_loads_nothing_from_the_internet():
    html = viz.animate_images(np.zeros((2, 1, 8, 8, 1)), ["a", "b"]).data
    # matplotlib's player links Font Awesome from a CDN for its buttons: gone, each icon a text symbol
    assert "<link" not in html and "font-awesome" not in html and 'class="fa' not in html
    assert "&#x25B6;</button>" in html.replace("\n", "").replace(" ", "")  # the play button
