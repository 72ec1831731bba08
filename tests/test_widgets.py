"""The widget mechanism (``widgets.interactive_figure``, which ``slider`` and ``viz.schedule_widget`` build on):
what moving each kind of control does, the static PNG a viewer without a widget front end sees, bad controls."""

import base64
import sys

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nanoddpm_utils import widgets  # noqa: E402

PNG = b"\x89PNG"


def line_figure(**values):
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, sum(hash(v) % 97 for v in values.values())])
    return fig


def test_controls_redraw_the_figure_with_the_new_values():
    calls = []
    fig = widgets.interactive_figure(
        lambda **v: calls.append(dict(v)) or line_figure(**v), t=(0, 99, 1, 10), schedule=["linear", "cosine"]
    )
    assert calls == [{"t": 10, "schedule": "linear"}]
    t_slider, buttons, image = fig.children
    assert (t_slider.min, t_slider.max, t_slider.value, t_slider.description) == (0, 99, 10, "t")
    assert list(buttons.options) == ["linear", "cosine"] and buttons.value == "linear"
    first = bytes(image.value)
    assert first.startswith(PNG)
    buttons.value = "cosine"  # what clicking does
    t_slider.value = 70  # what dragging does
    assert calls[1:] == [{"t": 10, "schedule": "cosine"}, {"t": 70, "schedule": "cosine"}]
    assert fig.values == {"t": 70, "schedule": "cosine"}
    assert bytes(image.value).startswith(PNG) and bytes(image.value) != first
    assert fig.png == bytes(image.value)


def test_mimebundle_offers_the_widget_and_a_static_png():
    fig = widgets.slider(lambda t: line_figure(t=t), max=9, value=3)
    bundle = fig._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view == {"version_major": 2, "version_minor": 0, "model_id": fig.widget.model_id}
    assert base64.b64decode(bundle["image/png"]) == fig.static_png and fig.static_png.startswith(PNG)


def test_without_ipywidgets_it_is_a_static_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails, as where it is not installed
    fig = widgets.slider(lambda t: line_figure(t=t), max=9, value=3)
    assert fig.widget is None
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"}
    fig.update(t=5)  # still redraws on request
    assert fig.values == {"t": 5} and fig.png != fig.static_png


def recorder():
    """A draw function that records its calls and draws a different picture for every choice."""
    calls = []

    def fn(**kw):
        calls.append(kw)
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title(repr(sorted(kw.items())))
        return fig

    return fn, calls


def test_labelled_buttons_redraw_with_the_chosen_values():
    fn, calls = recorder()
    fig = widgets.interactive_figure(
        fn, variance=[("beta", "fixedlarge"), ("beta-tilde", "fixedsmall")], clip=[("clip", True), ("no clip", False)]
    )
    variance, clip, image = fig.children
    assert calls == [{"variance": "fixedlarge", "clip": True}]  # drawn once, at the first choices
    first = bytes(image.value)
    assert first.startswith(PNG)
    variance.value = "fixedsmall"  # what a click does
    assert calls[-1] == {"variance": "fixedsmall", "clip": True}
    clip.value = False
    assert calls[-1] == {"variance": "fixedsmall", "clip": False} and len(calls) == 3
    assert bytes(image.value) != first
    assert variance.label == "beta-tilde" and clip.label == "no clip"  # the labels shown on the buttons


def test_a_slider_over_given_values_redraws_with_the_chosen_value():
    fn, calls = recorder()
    fig = widgets.interactive_figure(fn, S=([1, 10, 100], 10))
    s, image = fig.children
    assert calls == [{"S": 10}] and s.value == 10 and bytes(image.value).startswith(PNG)
    first = bytes(image.value)
    s.value = 100
    assert calls == [{"S": 10}, {"S": 100}] and bytes(image.value) != first and s.label == "100"
    assert fig.values == {"S": 100}


def test_the_static_png_is_the_first_figure_or_the_static_one():
    """What a viewer without a widget front end sees: the first figure, or the one ``static`` draws."""
    fn, calls = recorder()
    fig = widgets.interactive_figure(fn, a=[("one", 1), ("two", 2)])
    assert calls == [{"a": 1}] and fig.static_png == fig.png  # fn at the first choice
    fig.update(a=2)
    assert fig.static_png != fig.png  # the static picture stays the first one
    static = widgets.interactive_figure(fn, static=lambda: fn(everything=True), a=[("one", 1), ("two", 2)])
    assert calls[-2:] == [{"a": 1}, {"everything": True}]
    assert static.static_png == widgets._png(fn(everything=True), 100) != static.png
    assert base64.b64decode(static._repr_mimebundle_()["image/png"]) == static.static_png
    values = widgets.interactive_figure(lambda S: fn(S=S), S=([1, 5], 5))
    assert values.static_png == widgets._png(fn(S=5), 100)  # a slider over values: fn at the starting value
    assert plt.get_fignums() == []  # every figure went into a PNG, none is left to show again


def test_executed_notebooks_show_the_static_png():
    """make executed replaces a widget output by a picture: the static PNG an interactive figure carries."""
    import importlib.util
    from pathlib import Path

    import nbformat

    path = Path(__file__).resolve().parents[1] / "tools" / "execute_notebooks.py"
    spec = importlib.util.spec_from_file_location("execute_notebooks", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    fn, _ = recorder()
    fig = widgets.interactive_figure(fn, static=lambda: fn(everything=True), a=[1, 2])
    bundle = fig._repr_mimebundle_()
    assert bundle[ex.WIDGET_VIEW]["model_id"] == fig.widget.model_id
    image_id = fig.image.model_id  # the widget state a kernel reports: the box and its Image, with the PNG
    state = {
        fig.widget.model_id: {"_model_name": "VBoxModel", "children": [f"IPY_MODEL_{image_id}"]},
        image_id: {"_model_name": "ImageModel"},
    }
    buffers = {image_id: {("value",): {"data": base64.b64encode(fig.png).decode("ascii")}}}
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data=bundle)])]
    )
    ex.widgets_to_pictures(nb, state, buffers)
    data = nb.cells[0].outputs[0]["data"]
    assert ex.WIDGET_VIEW not in data and base64.b64decode(data["image/png"]) == fig.static_png != fig.png
    # a widget that carries no PNG of its own shows the picture its Image holds
    del bundle["image/png"]
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    ex.widgets_to_pictures(nb, state, buffers)
    assert base64.b64decode(nb.cells[0].outputs[0]["data"]["image/png"]) == fig.png


def test_bad_controls_are_refused():
    with pytest.raises(ValueError, match="min <= value <= max"):
        widgets.interactive_figure(line_figure, t=(0, 9, 1, 10))
    with pytest.raises(ValueError, match="non-empty list"):
        widgets.interactive_figure(line_figure, t="fast")
    with pytest.raises(ValueError, match="non-empty list"):
        widgets.interactive_figure(line_figure, a=[])
    with pytest.raises(ValueError, match="every option"):
        widgets.interactive_figure(line_figure, a=[("one", 1), 2])
    with pytest.raises(ValueError, match="not one of"):
        widgets.interactive_figure(line_figure, S=([1, 2], 3))
    with pytest.raises(ValueError, match="at least one control"):
        widgets.interactive_figure(line_figure)
    with pytest.raises(ValueError, match="unknown control"):
        widgets.interactive_figure(line_figure, t=(0, 9, 1, 0)).update(s=1)
