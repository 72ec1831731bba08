"""The plotting helpers and widgets: what moving a control does, the static fallback, the UNet drawing."""

import base64
import sys

import equinox as eqx
import jax
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nanoddpm_utils import viz  # noqa: E402
from nanoddpm_utils.config import PRESETS, ModelConfig  # noqa: E402
from nanoddpm_utils.schedule import make_schedule  # noqa: E402
from nanoddpm_utils.unet import make_model  # noqa: E402

PNG = b"\x89PNG"


def line_figure(**values):
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, sum(hash(v) % 97 for v in values.values())])
    return fig


def test_controls_redraw_the_figure_with_the_new_values():
    calls = []
    fig = viz.interactive_figure(lambda **v: calls.append(dict(v)) or line_figure(**v),
                                 t=(0, 99, 1, 10), schedule=["linear", "cosine"])
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
    fig = viz.slider(lambda t: line_figure(t=t), max=9, value=3)
    bundle = fig._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view == {"version_major": 2, "version_minor": 0, "model_id": fig.widget.model_id}
    assert base64.b64decode(bundle["image/png"]) == fig.static_png and fig.static_png.startswith(PNG)


def test_without_ipywidgets_it_is_a_static_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails, as where it is not installed
    fig = viz.slider(lambda t: line_figure(t=t), max=9, value=3)
    assert fig.widget is None
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"}
    fig.update(t=5)  # still redraws on request
    assert fig.values == {"t": 5} and fig.png != fig.static_png


def test_bad_controls_are_refused():
    with pytest.raises(ValueError, match="min <= value <= max"):
        viz.interactive_figure(line_figure, t=(0, 9, 1, 10))
    with pytest.raises(ValueError, match="non-empty list"):
        viz.interactive_figure(line_figure, t="fast")
    with pytest.raises(ValueError, match="unknown control"):
        viz.interactive_figure(line_figure, t=(0, 9, 1, 0)).update(s=1)


def test_schedule_widget_draws_the_chosen_schedule():
    schedules = {"linear": make_schedule("linear", 100), "cosine": make_schedule("cosine", 100)}
    x0 = np.ones((4, 4, 1), np.float32) * 0.5
    noise = np.random.default_rng(0).standard_normal((4, 4, 1)).astype(np.float32)
    w = viz.schedule_widget(x0, noise, schedules, t=50)
    buttons, t_slider, image = w.children
    assert list(buttons.options) == ["linear", "cosine"] and (t_slider.max, t_slider.value) == (99, 50)
    linear_png = bytes(image.value)
    buttons.value = "cosine"
    assert bytes(image.value) != linear_png
    # the figure shows x_t of the chosen schedule and its SNR
    fig = viz.schedule_figure(x0, noise, schedules, "cosine", 50)
    abar = float(schedules["cosine"].alphas_cumprod[50])
    shown = fig.axes[1].images[0].get_array()
    expected = viz.to_uint8((np.sqrt(abar) * x0 + np.sqrt(1 - abar) * noise)[None])[0, ..., 0]
    np.testing.assert_array_equal(shown, expected)
    assert f"{abar / (1 - abar):.3g}" in fig.axes[2].get_title()
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_unet_layout_matches_the_model(name):
    """The drawing's blocks, channels and skips against the real UNet's weight shapes."""
    c = PRESETS[name].model
    model = eqx.filter_eval_shape(make_model, c, key=jax.random.key(0))
    layout = viz.unet_layout(c)
    down = [b for b in layout if b.side == "down" and b.name == "ResBlock"]
    up = [b for b in layout if b.side == "up"]
    real_down = [blk for level in model.down for blk in level.blocks]
    real_up = [blk for level in model.up for blk in level.blocks]
    assert len(down) == len(real_down) and len(up) == len(real_up)
    for b, blk in zip(down + up, real_down + real_up):
        assert blk.conv1.weight.shape[2:] == (b.in_ch, b.out_ch), (b, blk.conv1.weight.shape)
    real_attn = [a is not None for level in model.down + model.up for a in level.attns]
    assert [b.attn for b in down + up] == real_attn
    n_down = sum(level.resample is not None for level in model.down)
    assert sum(b.name == "Downsample" for b in layout) == n_down
    # each up block's skip is a distinct down output at the same resolution
    skips = [b.skip for b in up]
    assert len(set(skips)) == len(skips) == len(layout) - len(up) - 1
    assert all(layout[s].resolution == b.resolution and layout[s].side == "down" for s, b in zip(skips, up))


def test_draw_unet_labels_every_block():
    c = ModelConfig(image_size=16, in_channels=3, ch=16, ch_mult=(1, 2, 4), num_res_blocks=1,
                    attn_resolutions=(8,), num_groups=8)
    fig = viz.draw_unet(c)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("ResBlock + Attn  16→32") == 1  # the down block at 8x8
    # up blocks take their input's channels + the skip's: at 4x4 64 + 64 and 64 + 32 (the Downsample's output),
    # at 8x8 64 + 32 and 32 + 16, at 16x16 32 + 16 and 16 + 16 (conv_in's output)
    up = ["ResBlock  128→64", "ResBlock  96→64", "ResBlock + Attn  96→32", "ResBlock + Attn  48→32",
          "ResBlock  48→16", "ResBlock  32→16"]
    assert [t for t in texts if t.startswith("ResBlock")][-6:] == up
    assert sum("Downsample" in t for t in texts) == 2 and sum(t == "Upsample" for t in texts) == 2
    assert {"16×16", "8×8", "4×4"} <= set(texts)
    plt.close(fig)


def test_show_images_checks_its_input():
    fig = viz.show_images(np.zeros((3, 4, 4, 1), np.float32), ["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    plt.close(fig)
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        viz.show_images(np.zeros((3, 4, 4, 1), np.float32), ["a", "b"])
