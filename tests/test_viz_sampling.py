"""The widgets and the animation of notebooks 05 and 07 (viz.toggles, viz.choice_slider, viz.animate_images).

The notebooks only show them; their wiring is checked here: a control's change redraws the figure
with the new choice, and without a widget front end (as in this test process) a static figure is drawn.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nanoddpm_utils import viz  # noqa: E402


def _recorder():
    calls = []

    def fn(**kw):
        calls.append(kw)
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title(repr(sorted(kw.items())))  # a different picture for every choice
        return fig

    return fn, calls


@pytest.fixture
def frontend(monkeypatch):
    monkeypatch.setattr(viz, "has_widget_frontend", lambda: True)


def test_no_frontend_in_plain_python():
    assert viz.has_widget_frontend() is False


def test_toggles_redraw_with_the_chosen_values(frontend):
    fn, calls = _recorder()
    box = viz.toggles(fn, {"variance": [("beta", "fixedlarge"), ("beta-tilde", "fixedsmall")],
                           "clip": [("clip", True), ("no clip", False)]})
    variance, clip, image = box.children
    assert calls == [{"variance": "fixedlarge", "clip": True}]  # drawn once, at the first choices
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")
    variance.value = "fixedsmall"  # what a click does
    assert calls[-1] == {"variance": "fixedsmall", "clip": True}
    clip.value = False
    assert calls[-1] == {"variance": "fixedsmall", "clip": False} and len(calls) == 3
    assert bytes(image.value) != first
    assert variance.label == "beta-tilde" and clip.label == "no clip"  # the labels shown on the buttons


def test_choice_slider_redraws_with_the_chosen_value(frontend):
    seen = []

    def fn(v):
        seen.append(v)
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title(str(v))
        return fig

    box = viz.choice_slider(fn, [1, 10, 100], value=10, description="steps")
    s, image = box.children
    assert seen == [10] and s.value == 10 and bytes(image.value).startswith(b"\x89PNG")
    first = bytes(image.value)
    s.value = 100
    assert seen == [10, 100] and bytes(image.value) != first


def test_static_fallback_without_frontend():
    fn, calls = _recorder()
    fig = viz.toggles(fn, {"a": [("one", 1), ("two", 2)]})
    assert isinstance(fig, plt.Figure) and calls == [{"a": 1}]  # fn at the first choice
    sentinel = plt.figure()
    assert viz.toggles(fn, {"a": [("one", 1)]}, static=lambda: sentinel) is sentinel
    assert viz.choice_slider(lambda v: sentinel if v == 5 else None, [1, 5], value=5) is sentinel
    plt.close("all")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        viz.toggles(lambda **k: None, {"a": []})
    with pytest.raises(ValueError, match="not one of"):
        viz.choice_slider(lambda v: None, [1, 2], value=3)
    with pytest.raises(ValueError, match="titles"):
        viz.animate_images(np.zeros((3, 2, 8, 8, 1)), ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        viz.animate_images(np.zeros((3, 8, 8, 1)), ["a", "b", "c"])


def test_animation_holds_one_png_per_frame():
    frames = np.linspace(-1, 1, 4 * 2 * 8 * 8).reshape(4, 2, 8, 8, 1)
    html = viz.animate_images(frames, [f"t = {t}" for t in range(4)], ncols=2).data
    assert html.count("data:image/png;base64,") == 4
    assert "<script" in html and plt.get_fignums() == []  # the player only, no stray figure
