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
