"""Plotting helpers and the one widget the notebooks share.

Images are channels-last, ``(N, H, W, C)`` (or ``(N, H, W)`` for grey), either
floats in [-1, 1] (the model's range) or uint8 in [0, 255] (the datasets' range).
"""

from __future__ import annotations

import io
import sys
from typing import Callable, Sequence

import matplotlib.pyplot as plt

from .data import to_uint8


def show_images(images, titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = 1.6, suptitle: str | None = None) -> plt.Figure:
    """Draw ``N`` images side by side (wrapping after ``ncols``) and return the figure."""
    images = to_uint8(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]  # grey: (N, H, W)
    if images.ndim not in (3, 4):
        raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, C), got {images.shape}")
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    ncols = min(n, ncols or n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=255,
                      interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def slider(fn: Callable[[int], plt.Figure | None], *, min: int = 0, max: int = 999, step: int = 1,
           value: int | None = None, description: str = "t", dpi: int = 100):
    """An ``IntSlider`` over ``t`` with the figure ``fn(t)`` draws below it, redrawn whenever the slider moves.

    ``fn(t)`` draws with matplotlib and returns its figure (or leaves it current). The figure is
    shown as a PNG in an ``ipywidgets.Image`` rather than captured by an ``Output`` widget: headless
    runners (nbclient, hence nbmake) mimic ``Output`` widgets with a race that can hang a run
    (jupyter/nbclient#312). ``fn`` runs once straight away. Returns ``VBox([slider, image])``;
    leave it last in a cell to display it.
    """
    import ipywidgets as widgets

    if "google.colab" in sys.modules:  # Colab renders ipywidgets 8 only through its custom widget manager
        from google.colab import output

        output.enable_custom_widget_manager()
    s = widgets.IntSlider(value=min if value is None else value, min=min, max=max, step=step,
                          description=description, continuous_update=False, layout=widgets.Layout(width="95%"))
    image = widgets.Image(format="png")

    def draw(t: int):
        fig = fn(t)
        fig = fig if isinstance(fig, plt.Figure) else plt.gcf()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)  # shown through the widget only, never again as a cell output
        image.value = buf.getvalue()

    s.observe(lambda change: draw(change["new"]), names="value")
    draw(s.value)
    return widgets.VBox([s, image])


# --------------------------------------------------------------------------- animation and widgets (notebooks 05, 07)
def has_widget_frontend() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed: where a widget can be shown at all.

    A kernel cannot tell whether a browser is watching, so this only rules out plain Python
    (a script, the test suite) and a missing ipywidgets; there the widgets below draw a static figure.
    """
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _figure_png(fig: plt.Figure | None, dpi: int) -> bytes:
    fig = fig if isinstance(fig, plt.Figure) else plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)  # shown through the widget only, never again as a cell output
    return buf.getvalue()


def _widget_box(controls: list, fn: Callable[..., plt.Figure | None], read: Callable[[], dict], dpi: int):
    """``VBox([*controls, image])``: the image is ``fn(**read())`` as a PNG, redrawn when a control changes.

    A PNG in an ``ipywidgets.Image`` rather than an ``Output`` widget (see ``slider``); the same
    calls work in ipywidgets 7.7 (Colab) and 8 (JupyterLab).
    """
    import ipywidgets as widgets

    if "google.colab" in sys.modules:
        from google.colab import output

        output.enable_custom_widget_manager()
    image = widgets.Image(format="png")

    def draw(_change=None):
        image.value = _figure_png(fn(**read()), dpi)

    for c in controls:
        c.observe(draw, names="value")
    draw()
    return widgets.VBox([*controls, image])


def toggles(fn: Callable[..., plt.Figure | None], options: dict[str, Sequence[tuple[str, object]]], *,
            static: Callable[[], plt.Figure] | None = None, dpi: int = 100):
    """A row of ``ToggleButtons`` per keyword of ``fn``, and the figure ``fn(**choice)`` below them.

    ``options`` maps each keyword to its ``(label, value)`` pairs; the first pair is selected at
    the start. Without a widget front end (``has_widget_frontend``) it returns the figure
    ``static()`` instead (default: ``fn`` at the first choices), so a script still shows something.
    """
    if not options or any(len(v) == 0 for v in options.values()):
        raise ValueError(f"every option needs at least one (label, value) pair, got {options!r}")
    if not has_widget_frontend():
        return static() if static is not None else fn(**{k: v[0][1] for k, v in options.items()})
    import ipywidgets as widgets

    buttons = {k: widgets.ToggleButtons(options=list(v), value=v[0][1], description=k) for k, v in options.items()}
    return _widget_box(list(buttons.values()), fn, lambda: {k: b.value for k, b in buttons.items()}, dpi)


def choice_slider(fn: Callable[[object], plt.Figure | None], values: Sequence, *, value=None, description: str = "",
                  static: Callable[[], plt.Figure] | None = None, dpi: int = 100):
    """A ``SelectionSlider`` over ``values`` (a few step counts, say) with the figure ``fn(v)`` below it.

    Redrawn when the slider is released. Without a widget front end it returns ``static()``
    (default: ``fn(value)``).
    """
    values = list(values)
    if not values:
        raise ValueError("choice_slider needs at least one value")
    value = values[0] if value is None else value
    if value not in values:
        raise ValueError(f"the starting value {value!r} is not one of {values}")
    if not has_widget_frontend():
        return static() if static is not None else fn(value)
    import ipywidgets as widgets

    s = widgets.SelectionSlider(options=[(str(v), v) for v in values], value=value, description=description,
                                continuous_update=False, layout=widgets.Layout(width="95%"))
    return _widget_box([s], lambda v: fn(v), lambda: {"v": s.value}, dpi)


def animate_images(frames, frame_titles: Sequence[str], *, ncols: int | None = None, size: float = 1.0,
                   interval: int = 120, dpi: int = 60):
    """An animation of ``frames`` (F, N, H, W, C): frame f shows the N images of ``frames[f]`` in a grid.

    Returns an ``IPython.display.HTML`` player (matplotlib's JavaScript HTML: play, pause, scrub),
    which a notebook shows when it is the last value of a cell; no widget front end needed. The
    PNG frames are embedded, so keep F, N and ``dpi`` small.
    """
    from IPython.display import HTML
    from matplotlib import animation

    frames = to_uint8(frames)
    if frames.ndim != 5:
        raise ValueError(f"expected frames of shape (F, N, H, W, C), got {frames.shape}")
    if len(frame_titles) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(frame_titles)} titles")
    grey = frames.shape[-1] == 1
    frames = frames[..., 0] if grey else frames
    n = frames.shape[1]
    ncols = min(n, ncols or n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.35), squeeze=False)
    shown = []
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            shown.append(ax.imshow(frames[0, i], cmap="gray" if grey else None, vmin=0, vmax=255,
                                   interpolation="nearest"))
    title = fig.suptitle(frame_titles[0])
    fig.tight_layout()

    def update(f):
        for i, im in enumerate(shown):
            im.set_data(frames[f, i])
        title.set_text(frame_titles[f])
        return [*shown, title]

    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    fig.set_dpi(dpi)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)  # the player only, not a static copy of the last frame
    return HTML(html)
