"""The plotting helpers: the schedule widget, the UNet drawing, the image grid (the widget mechanism under the
schedule widget is tested in test_widgets.py)."""

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
    c = ModelConfig(
        image_size=16, in_channels=3, ch=16, ch_mult=(1, 2, 4), num_res_blocks=1, attn_resolutions=(8,), num_groups=8
    )
    fig = viz.draw_unet(c)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("ResBlock + Attn  16→32") == 1  # the down block at 8x8
    # up blocks take their input's channels + the skip's: at 4x4 64 + 64 and 64 + 32 (the Downsample's output),
    # at 8x8 64 + 32 and 32 + 16, at 16x16 32 + 16 and 16 + 16 (conv_in's output)
    up = [
        "ResBlock  128→64",
        "ResBlock  96→64",
        "ResBlock + Attn  96→32",
        "ResBlock + Attn  48→32",
        "ResBlock  48→16",
        "ResBlock  32→16",
    ]
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
