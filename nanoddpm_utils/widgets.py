"""Controls above a matplotlib figure that is redrawn when they change: ``interactive_figure`` and ``slider``.

It works with ipywidgets 7.7 (Colab) and 8 (JupyterLab), and carries a static PNG (its first figure, or one
drawn for the purpose), which is what a viewer without a widget front end (GitHub, nbviewer, a headless run) shows.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np


def _png(fig: plt.Figure | None, dpi: int) -> bytes:
    fig = fig if isinstance(fig, plt.Figure) else plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)  # shown through the widget (or its PNG) only, never again as a cell output
    return buf.getvalue()


def _is_labelled(option) -> bool:
    return isinstance(option, tuple) and len(option) == 2 and isinstance(option[0], str)


def _control_spec(name: str, spec) -> tuple[str, object, object]:
    """``(kind, args, first value)`` of one control; see ``interactive_figure`` for the forms."""
    if isinstance(spec, list) and spec:
        labelled = [_is_labelled(o) for o in spec]
        if any(labelled) and not all(labelled):
            raise ValueError(f"control {name}={spec!r}: give every option as (label, value) or none of them")
        return "buttons", list(spec), spec[0][1] if labelled[0] else spec[0]
    if isinstance(spec, tuple) and len(spec) == 4 and all(isinstance(v, (int, np.integer)) for v in spec):
        lo, hi, step, value = (int(v) for v in spec)
        if not lo <= value <= hi or step < 1:
            raise ValueError(f"control {name}={spec}: need min <= value <= max and step >= 1")
        return "int", (lo, hi, step), value
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], (list, tuple, range)):
        values, value = list(spec[0]), spec[1]
        if value not in values:
            raise ValueError(f"control {name}: the starting value {value!r} is not one of {values}")
        return "values", values, value
    raise ValueError(
        f"control {name}={spec!r}: use (min, max, step, value) for an integer slider, "
        "([v1, v2, ...], value) for a slider over those values, "
        "or a non-empty list of options (or of (label, option) pairs) for buttons"
    )


class InteractiveFigure:
    """Controls above a figure that ``draw(**values)`` redraws; see ``interactive_figure``.

    ``values`` holds the current control values and ``png`` the current figure; ``static_png`` is
    what a viewer without a widget front end shows. ``widget`` is the ipywidgets
    ``VBox([*controls, image])``, or None where ipywidgets is not installed. Leave the object last
    in a cell to display it: a widget front end shows the live widget, any other viewer the PNG.
    """

    def __init__(
        self,
        draw: Callable[..., plt.Figure | None],
        controls: dict,
        dpi: int = 100,
        static: Callable[[], plt.Figure | None] | None = None,
    ):
        if not controls:
            raise ValueError("give at least one control, e.g. t=(0, 999, 1, 250) or schedule=['linear', 'cosine']")
        self.draw, self.dpi = draw, dpi
        self.specs = {name: _control_spec(name, spec) for name, spec in controls.items()}
        self.values = {name: spec[2] for name, spec in self.specs.items()}
        self.png = _png(draw(**self.values), dpi)
        self.static_png = self.png if static is None else _png(static(), dpi)
        self.widget = self._build_widget()

    def _build_widget(self):
        try:
            import ipywidgets as widgets
        except ImportError:
            return None
        if "google.colab" in sys.modules:  # Colab renders ipywidgets 8 only through its custom widget manager
            from google.colab import output

            output.enable_custom_widget_manager()
        self.controls = {}
        for name, (kind, args, value) in self.specs.items():
            if kind == "int":
                lo, hi, step = args
                control = widgets.IntSlider(
                    value=value,
                    min=lo,
                    max=hi,
                    step=step,
                    description=name,
                    continuous_update=False,
                    layout=widgets.Layout(width="95%"),
                )
            elif kind == "values":
                control = widgets.SelectionSlider(
                    options=[(str(v), v) for v in args],
                    value=value,
                    description=name,
                    continuous_update=False,
                    layout=widgets.Layout(width="95%"),
                )
            else:
                control = widgets.ToggleButtons(options=args, value=value, description=name)
            control.observe(lambda change, name=name: self.update(**{name: change["new"]}), names="value")
            self.controls[name] = control
        # The figure as a PNG in an Image widget rather than captured by an Output widget: headless
        # runners (nbclient, hence nbmake) mimic Output widgets with a race that can hang (jupyter/nbclient#312).
        self.image = widgets.Image(value=self.png, format="png")
        return widgets.VBox([*self.controls.values(), self.image])

    def update(self, **values):
        """Set some control values and redraw (what moving a control does)."""
        unknown = set(values) - set(self.specs)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; the controls are {list(self.specs)}")
        self.values.update(values)
        self.png = _png(self.draw(**self.values), self.dpi)
        if self.widget is not None:
            self.image.value = self.png

    @property
    def children(self):
        """The widget's children, ``[*controls, image]`` (as for an ipywidgets box)."""
        return self.widget.children

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": f"<figure with controls {self.values}>"}
        if "google.colab" not in sys.modules:  # Colab always has a widget front end
            bundle["image/png"] = base64.b64encode(self.static_png).decode("ascii")
        if self.widget is not None:
            # the same view message ipywidgets 7 and 8 send (widget protocol 2); front ends prefer it to the PNG
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            }
        return bundle


def interactive_figure(
    draw: Callable[..., plt.Figure | None],
    *,
    static: Callable[[], plt.Figure | None] | None = None,
    dpi: int = 100,
    **controls,
) -> InteractiveFigure:
    """A figure ``draw(**values)`` with one control per keyword, redrawn whenever a control moves.

    ``name=(min, max, step, value)`` makes an integer slider; ``name=([v1, v2, ...], value)`` a
    slider over those values; ``name=[option, ...]`` toggle buttons starting at the first option
    (``[(label, option), ...]`` to label the buttons). ``draw`` makes a matplotlib figure and
    returns it (or leaves it current); it runs once straight away. A viewer without a widget front
    end shows that first figure, or the figure ``static()`` makes (all the choices at once, say).
    """
    return InteractiveFigure(draw, controls, dpi, static)


def slider(
    fn: Callable[[int], plt.Figure | None],
    *,
    min: int = 0,
    max: int = 999,
    step: int = 1,
    value: int | None = None,
    description: str = "t",
    dpi: int = 100,
) -> InteractiveFigure:
    """One integer slider over the figure ``fn(value)`` (``interactive_figure`` with a single slider)."""
    return interactive_figure(
        lambda **v: fn(v[description]), dpi=dpi, **{description: (min, max, step, min if value is None else value)}
    )
