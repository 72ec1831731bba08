"""Plotting helpers: image grids, the schedule widget, the UNet drawn from its config, animations.

Images are channels-last, ``(N, H, W, C)`` (or ``(N, H, W)`` for grey), either floats in [-1, 1] (the model's
range) or uint8 in [0, 255] (the datasets' range). Animations are animated PNGs (``animated_png``,
``animate_images``): images, not scripts, so every viewer shows them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from IPython import display
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from PIL import Image

from . import widgets
from .images import to_uint8


def show_images(
    images,
    titles: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    size: float = 1.6,
    suptitle: str | None = None,
) -> plt.Figure:
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
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if suptitle else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=255, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the schedule widget
def schedule_figure(x0, noise, schedules: dict, schedule: str, t: int) -> plt.Figure:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps under one of ``schedules`` (name -> Schedule) at the
    0-indexed step ``t``, beside every schedule's log-SNR curve, the chosen one marked at ``t``."""
    s = schedules[schedule]
    abar = np.asarray(s.alphas_cumprod, np.float64)
    x_t = np.sqrt(abar[t]) * np.asarray(x0) + np.sqrt(1.0 - abar[t]) * np.asarray(noise)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1, 2.2]})
    for ax, img, title in ((axes[0], x0, "$x_0$"), (axes[1], x_t, f"$x_{{{t + 1}}}$, {schedule}")):
        img = to_uint8(np.asarray(img)[None])[0]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    steps = np.arange(1, len(abar) + 1)
    for name, other in schedules.items():
        a = np.asarray(other.alphas_cumprod, np.float64)
        axes[2].plot(
            steps,
            np.log10(a / (1.0 - a)),
            lw=2.5 if name == schedule else 1,
            alpha=1 if name == schedule else 0.5,
            label=name,
        )
    snr = abar[t] / (1.0 - abar[t])
    axes[2].plot([t + 1], [np.log10(snr)], "ko")
    axes[2].set(
        title=f"SNR at t = {t + 1}: {snr:.3g} (signal kept: {abar[t]:.1%})",
        xlabel="t",
        ylabel=r"$\log_{10}\,\mathrm{SNR}(t)$",
    )
    axes[2].legend()
    fig.tight_layout()
    return fig


def schedule_widget(x0, noise, schedules: dict, t: int = 250, *, dpi: int = 100) -> widgets.InteractiveFigure:
    """Buttons to choose a schedule and a slider over t, above ``schedule_figure``."""
    T = len(next(iter(schedules.values())).betas)
    return widgets.interactive_figure(
        lambda schedule, t: schedule_figure(x0, noise, schedules, schedule, t),
        dpi=dpi,
        schedule=list(schedules),
        t=(0, T - 1, 1, t),
    )


# --------------------------------------------------------------------------- the UNet, drawn from its config
@dataclass(frozen=True)
class UNetBlock:
    """One block of the UNet as ``draw_unet`` lays it out: ``side`` is "down", "mid" or "up"; ``level`` the
    resolution level (0 = full size); ``row`` its row within the level; ``skip`` (up blocks only) the index
    in the layout of the down block whose output it concatenates."""

    name: str
    side: str
    level: int
    row: int
    in_ch: int
    out_ch: int
    resolution: int
    attn: bool = False
    skip: int | None = None


def unet_layout(model_config) -> list[UNetBlock]:
    """The UNet's blocks in the order they run, with channels, resolutions and skip connections,
    derived from a ``ModelConfig`` (the same walk as ``unet.UNet``: each down output is pushed on a
    stack, each up ResBlock pops one)."""
    c = model_config
    blocks, stack = [UNetBlock("conv_in", "down", 0, 0, c.in_channels, c.ch, c.image_size)], [0]
    ch = c.ch
    for i, (mult, res) in enumerate(zip(c.ch_mult, c.resolutions)):
        for r in range(c.num_res_blocks):
            blocks.append(UNetBlock("ResBlock", "down", i, r + 1, ch, c.ch * mult, res, res in c.attn_resolutions))
            ch = c.ch * mult
            stack.append(len(blocks) - 1)
        if i < len(c.ch_mult) - 1:
            blocks.append(UNetBlock("Downsample", "down", i + 1, 0, ch, ch, c.resolutions[i + 1]))
            stack.append(len(blocks) - 1)
    last = len(c.ch_mult) - 1
    blocks.append(UNetBlock("middle", "mid", last, -1, ch, ch, c.resolutions[last], True))
    for i in reversed(range(len(c.ch_mult))):
        for _ in range(c.num_res_blocks + 1):
            skip = stack.pop()
            out = c.ch * c.ch_mult[i]
            blocks.append(
                UNetBlock(
                    "ResBlock",
                    "up",
                    i,
                    blocks[skip].row,
                    ch + blocks[skip].out_ch,
                    out,
                    c.resolutions[i],
                    c.resolutions[i] in c.attn_resolutions,
                    skip,
                )
            )
            ch = out
    assert not stack, "every skip is used exactly once"
    return blocks


def draw_unet(model_config, ax=None) -> plt.Figure:
    """Draw the UNet of a ``ModelConfig``: the down path on the left, the up path on the right, one row per
    skip connection (horizontal arrows), resolution levels from top (full size) to bottom."""
    c = model_config
    blocks = unet_layout(c)
    rows_per_level = c.num_res_blocks + 1
    n_rows = len(c.ch_mult) * rows_per_level + 1  # + the middle block's row
    if ax is None:  # at twice the usual resolution, so that the small labels stay legible
        fig, ax = plt.subplots(figsize=(10, 0.55 * n_rows + 1.2), dpi=2 * plt.rcParams["figure.dpi"])
    else:
        fig = ax.figure
    colors = {"conv_in": "#dddddd", "ResBlock": "#9ecae1", "Downsample": "#fdae6b", "middle": "#c7e9c0"}

    def y_of(b):
        return -(b.level * rows_per_level + (rows_per_level if b.side == "mid" else b.row))

    def box(x, y, text, color, w=3.0):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - 0.35), w, 0.7, boxstyle="round,pad=0.02", fc=color, ec="k", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=8)

    def arrow(p, q, **kw):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=10, lw=kw.pop("lw", 1), **kw))

    x_of = {"down": 0.0, "mid": 3.5, "up": 7.0}
    prev = {}
    for k, b in enumerate(blocks):
        x, y = x_of[b.side], y_of(b)
        attn = " + Attn" if b.attn else ""
        if b.name == "middle":
            text = f"ResBlock, Attn, ResBlock  {b.in_ch}→{b.out_ch}"
        elif b.name == "Downsample":
            text = f"Downsample  {b.in_ch}"
        elif b.name == "conv_in":
            text = f"conv_in  {b.in_ch}→{b.out_ch}"
        else:
            text = f"ResBlock{attn}  {b.in_ch}→{b.out_ch}"
        color = colors[b.name] if not b.attn or b.name == "middle" else "#bcbddc"
        box(x, y, text, color, w=4.2 if b.name == "middle" else 3.0)
        if b.side == "mid":  # from the bottom of the down path, on to the bottom of the up path
            arrow((prev["down"][0] + 1.5, prev["down"][1]), (x - 1.0, y + 0.35))
            prev["up"] = (x + 1.0, y + 0.35, b.level)
        elif b.side == "up" and blocks[k - 1].side == "mid":
            arrow(prev["up"][:2], (x - 1.5, y))
        elif b.side in prev:  # the main path: each block feeds the next on its side
            px, py, plevel = prev[b.side]
            if b.side == "up" and plevel != b.level:  # up one level: nearest-neighbour Upsample, then this block
                arrow((px, py + 0.35), (x, y - 0.35), color="#e6550d", lw=2)
                ax.text(x + 0.15, (py + y) / 2, "Upsample", fontsize=7, color="#e6550d", va="center")
            else:
                dy = 0.35 if b.side == "down" else -0.35
                arrow((px, py - dy), (x, y + dy))
        if b.side != "mid":
            prev[b.side] = (x, y, b.level)
        if b.skip is not None:
            sx, sy = x_of["down"], y_of(blocks[b.skip])
            arrow((sx + 1.5, sy), (x - 1.5, y), color="0.55", lw=0.8, linestyle="--")
    for i, res in enumerate(c.resolutions):
        y = -(i * rows_per_level + rows_per_level / 2 - 0.5)
        ax.text(-2.0, y, f"{res}×{res}", ha="right", va="center", fontsize=10, fontweight="bold")
        if i:
            ax.axhline(-(i * rows_per_level) + 0.5, color="0.85", lw=0.8, zorder=0)
    top, size = 0.9, f"({c.image_size}×{c.image_size}×{c.in_channels})"
    ax.text(0, top, f"$x_t$  {size}", ha="center", fontsize=9)
    eps = rf"$\epsilon_\theta(x_t, t)$  {size}" "\nafter GroupNorm, swish, conv_out"
    ax.text(7.0, top, eps, ha="center", fontsize=9)
    temb = f"t → sinusoids → MLP → a {4 * c.ch}-vector\ninto every ResBlock"
    ax.text(3.5, top, temb, ha="center", fontsize=8, color="0.3")
    notes = {7.0: "dashed: skip connections (concatenated on channels)", 0.0: "purple: with self-attention"}
    for x, note in notes.items():
        ax.text(x, -n_rows - 0.3, note, ha="center", fontsize=8, color="0.45")
    ax.set_xlim(-3.2, 8.8)
    ax.set_ylim(-n_rows - 0.6, top + 0.9)
    ax.axis("off")
    ax.set_title(
        f"UNet: ch = {c.ch}, ch_mult = {c.ch_mult}, {c.num_res_blocks} ResBlock(s) per level, "
        f"attention at {c.attn_resolutions}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- animations
def animated_png(frames, *, duration: int = 120, hold_last: int = 1500) -> bytes:
    """An animated PNG (APNG) of ``frames``, each PNG bytes (``frame_png``) or a uint8 array (H, W, 3 or 4),
    all the same size; every frame shows for ``duration`` ms, the last for ``hold_last`` ms; loops forever.

    Show it with ``IPython.display.Image(data=..., format="png")``: GitHub, nbviewer, the site and Colab play it.
    """
    images = [Image.open(io.BytesIO(f)) if isinstance(f, bytes) else Image.fromarray(np.asarray(f)) for f in frames]
    if not images:
        raise ValueError("no frames to animate")
    if len({im.size for im in images}) != 1:
        raise ValueError(f"frames of different sizes: {sorted({im.size for im in images})}")
    buf = io.BytesIO()
    images = [im.convert("RGB") for im in images]
    images[0].save(
        buf,
        format="PNG",
        save_all=True,
        append_images=images[1:],
        loop=0,
        duration=[duration] * (len(images) - 1) + [hold_last],
    )
    return buf.getvalue()


def frame_png(fig: plt.Figure, dpi: int = 100) -> bytes:
    """The figure as it is now, as PNG bytes: one frame of an animation (the figure stays open for the next)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def animate_images(
    frames,
    frame_titles: Sequence[str],
    *,
    ncols: int | None = None,
    size: float = 1.0,
    duration: int = 120,
    dpi: int = 100,
):
    """An animated PNG (in an ``IPython.display.Image``) of ``frames`` (F, N, H, W, C): frame f shows the N
    images of ``frames[f]`` in a grid, titled ``frame_titles[f]``."""
    frames = to_uint8(frames)
    if frames.ndim != 5:
        raise ValueError(f"expected frames of shape (F, N, H, W, C), got {frames.shape}")
    if len(frame_titles) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(frame_titles)} titles")
    fig = show_images(frames[0], ncols=ncols, size=size, suptitle=frame_titles[0])
    (title,), shown = fig.texts, [ax.images[0] for ax in fig.axes if ax.images]  # the suptitle, the images
    frames = frames[..., 0] if frames.shape[-1] == 1 else frames  # as show_images draws them
    pngs = []
    for f in range(len(frames)):
        for i, im in enumerate(shown):
            im.set_data(frames[f, i])
        title.set_text(frame_titles[f])
        pngs.append(frame_png(fig, dpi))
    plt.close(fig)  # the animation only, not a static copy of the last frame
    return display.Image(data=animated_png(pngs, duration=duration), format="png")
