"""Class-conditional UNet, label dropout and classifier-free guidance (Ho & Salimans 2022).

The unconditional models stay exactly what they were; the guided eps is checked against an inline
version of the formula; w = 0 and w = 1 give the unconditional and the conditional model, also
through whole DDPM and DDIM sampling runs.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.config import Config, get_preset
from nanoddpm_utils.guidance import Guided, check_guidance, guided_eps, sample_guided
from nanoddpm_utils.sample import sample_images
from nanoddpm_utils.schedule import make_schedule
from nanoddpm_utils.train import batch_loss
from nanoddpm_utils.unet import count_params, make_model

SMOKE = get_preset("smoke")
COND = SMOKE.replace(model={"num_classes": 10}, diffusion={"num_timesteps": 8})


def _perturbed(model):
    """The model with every float weight moved off its init (conv_out starts at zero: outputs would all be 0)."""

    def move(a):
        return a + 0.05 * jnp.sin(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape)) if eqx.is_inexact_array(a) else a

    return jax.tree_util.tree_map(move, model)


# --------------------------------------------------------------------------- unconditional models unchanged
def _arrays(model):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))]


def test_init_is_the_seeds_and_conditioning_only_adds_its_embedding():
    """The weights are a function of the seed alone; a conditional UNet is the unconditional one of the same key,
    weight for weight, plus a label embedding drawn from a key of its own: the unconditional models stay as they were
    (the shipped weights keep loading into them)."""
    model = make_model(SMOKE, key=jax.random.key(0))
    assert model.label_emb is None
    again, other = _arrays(make_model(SMOKE, key=jax.random.key(0))), _arrays(make_model(SMOKE, key=jax.random.key(1)))
    for a, b, c in zip(_arrays(model), again, other):
        np.testing.assert_array_equal(a, b)
        assert a.std() == 0 or not np.array_equal(a, c)  # every random weight (not the constant inits) moves
    cond = make_model(COND, key=jax.random.key(0))
    assert cond.label_emb.weight.shape == (COND.model.num_classes + 1, 4 * COND.model.ch)  # one row for "no label"
    without = eqx.tree_at(lambda m: m.label_emb, cond, None)
    for a, b in zip(_arrays(model), _arrays(without), strict=True):
        np.testing.assert_array_equal(a, b)
    for name in ("paper_cifar10", "nano_cifar10", "digits", "smoke"):
        assert get_preset(name).model.num_classes == 0
    paper = eqx.filter_eval_shape(make_model, "paper_cifar10", key=jax.random.key(0))
    assert count_params(paper) == 35_746_307


def test_unconditional_output_is_the_conditional_one_with_a_silent_label_and_label_refused():
    """Conditioning adds the label's embedding to the time embedding and nothing else: with that embedding at zero,
    the conditional UNet computes exactly what the unconditional one does, whatever the label."""
    model = _perturbed(make_model(SMOKE, key=jax.random.key(0)))
    cond = _perturbed(make_model(COND, key=jax.random.key(0)))
    cond = eqx.tree_at(lambda m: m.label_emb.weight, cond, jnp.zeros_like(cond.label_emb.weight))
    x = jax.random.normal(jax.random.key(1), (8, 8, 1))
    out = np.asarray(model(x, 7))
    assert np.isfinite(out).all() and np.abs(out).sum() > 0
    for label in (None, 0, 9):
        np.testing.assert_array_equal(np.asarray(cond(x, 7, label)), out)
    with pytest.raises(ValueError, match="unconditional"):
        model(x, 7, 3)


def test_old_config_without_the_new_fields_loads():
    d = get_preset("digits").to_dict()
    del d["model"]["num_classes"], d["train"]["label_dropout"]
    config = Config.from_dict(d)
    assert config.model.num_classes == 0 and config == get_preset("digits")


def test_conditional_model_shapes_and_no_label():
    cond = _perturbed(make_model(COND, key=jax.random.key(0)))
    assert cond.label_emb.weight.shape == (11, 4 * COND.model.ch)  # ten classes + "no label"
    assert count_params(cond) == count_params(make_model(SMOKE, key=jax.random.key(0))) + 11 * 4 * COND.model.ch
    x = jax.random.normal(jax.random.key(1), (8, 8, 1))
    np.testing.assert_array_equal(cond(x, 3), cond(x, 3, 10))  # no label = the extra row, index num_classes
    assert not np.allclose(cond(x, 3, 2), cond(x, 3, 5))  # the label changes the prediction


# --------------------------------------------------------------------------- label dropout
class _LabelEcho(eqx.Module):
    """A stand-in network whose eps is its label everywhere: the loss then reveals which labels it was given."""

    null_label: int = 10

    def __call__(self, x, t, label=None, *, key=None):
        return jnp.zeros_like(x) + label


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3])
def test_training_drops_labels_at_the_configured_rate(p):
    # eps = label: the loss is E[(noise - c)^2] = 1 + E[c^2]; all labels 1, dropped ones 10: 1 + (1-p) + 100 p
    B = 4096
    x0 = jnp.zeros((B, 2, 2, 1))
    labels = jnp.ones((B,), jnp.int32)
    loss = float(batch_loss(_LabelEcho(), make_schedule("linear", 10), x0, jax.random.key(0), jnp.float32, labels, p))
    expected = 1 + (1 - p) + 100 * p
    se = 99 * np.sqrt(p * (1 - p) / B) + 0.05  # the dropout draw, plus the noise's own spread
    assert abs(loss - expected) <= 5 * se


# --------------------------------------------------------------------------- the guidance formula
def test_guided_eps_matches_the_formula_and_its_two_ends():
    model = eqx.nn.inference_mode(_perturbed(make_model(COND, key=jax.random.key(0))))
    x = jax.random.normal(jax.random.key(1), (8, 8, 1))
    t, c = 4, 7
    eps_c, eps_u = model(x, t, c), model(x, t)  # inline: two separate calls
    for w in (0.0, 0.5, 1.0, 3.0):
        np.testing.assert_allclose(guided_eps(model, x, t, c, w), eps_u + w * (eps_c - eps_u), rtol=1e-5, atol=1e-6)
    # a batch of two computes each row as the single calls do, up to float32 rounding (~1e-7 here)
    np.testing.assert_allclose(guided_eps(model, x, t, c, 0.0), eps_u, rtol=0, atol=1e-6)  # w = 0: unconditional
    np.testing.assert_allclose(guided_eps(model, x, t, c, 1.0), eps_c, rtol=0, atol=1e-6)  # w = 1: conditional
    np.testing.assert_allclose(Guided(model, jnp.int32(c), jnp.float32(3.0))(x, t), guided_eps(model, x, t, c, 3.0))


def test_both_branches_in_one_forward_pass():
    model = eqx.nn.inference_mode(make_model(COND, key=jax.random.key(0)))
    x = jnp.zeros((8, 8, 1))

    def convs(fn):
        text = str(jax.make_jaxpr(fn)(x))
        return text.count("conv_general_dilated") + text.count("dot_general")

    one = convs(lambda x: model(x, 3, 2))
    assert convs(lambda x: guided_eps(model, x, 3, 2, 2.0)) == one  # one batched pass of 2, not two passes


# --------------------------------------------------------------------------- whole sampling runs
class _WithLabel(eqx.Module):
    """A conditional model with its label fixed, called as model(x, t): plain conditional sampling."""

    model: eqx.Module
    label: int = eqx.field(static=True)

    def __call__(self, x, t, *, key=None):
        return self.model(x, t, self.label)


@pytest.mark.parametrize("sampler", [{"sampler": "ddpm"}, {"sampler": "ddim", "steps": 4}])
def test_sampling_with_w0_is_unconditional_and_w1_conditional(sampler):
    model = _perturbed(make_model(COND, key=jax.random.key(0)))
    key, labels = jax.random.key(5), [3, 8]
    keys = jax.random.split(key, len(labels))  # sample_guided gives image i the key split(key, n)[i]
    w0 = sample_guided(COND, model, key, labels, 0.0, **sampler)
    w1 = sample_guided(COND, model, key, labels, 1.0, **sampler)
    w3 = sample_guided(COND, model, key, labels, 3.0, **sampler)
    for i, c in enumerate(labels):
        uncond = sample_images(COND, model, keys[i], 1, **sampler)[0]  # no label: the "no label" row
        cond = sample_images(COND, _WithLabel(model, c), keys[i], 1, **sampler)[0]
        np.testing.assert_allclose(w0[i], uncond, atol=1e-4)
        np.testing.assert_allclose(w1[i], cond, atol=1e-4)
        assert not np.allclose(w3[i], cond, atol=1e-3)  # guidance beyond w = 1 changes the sample
    assert not np.allclose(w1[0], w0[0], atol=1e-3)


def test_check_guidance_refuses_what_a_model_cannot_use():
    check_guidance(COND, [0, 9], 3.0)
    with pytest.raises(ValueError, match="unconditional"):
        check_guidance(SMOKE, [1], None)
    with pytest.raises(ValueError, match="unconditional"):
        check_guidance(SMOKE, None, 2.0)
    with pytest.raises(ValueError, match=r"\[10\] outside .* 0 \.\. 9"):
        check_guidance(COND, [3, 10], 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        check_guidance(COND, [3], -0.5)
    with pytest.raises(ValueError, match=">= 0"):
        check_guidance(COND, [3], float("nan"))


# --------------------------------------------------------------------------- the command line
def _cli(capsys, argv):
    from nanoddpm_utils.__main__ import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors
        code = e.code
    return code, capsys.readouterr()


@pytest.fixture
def runs(tmp_path):
    from nanoddpm_utils import checkpoint
    from nanoddpm_utils.state import init_state

    cond = COND.replace(name="smoke_cond")
    checkpoint.save(tmp_path / "uncond", init_state(SMOKE, 0), SMOKE)
    state = init_state(cond, 0)
    state = eqx.tree_at(lambda s: s.ema, state, _perturbed(state.ema))
    checkpoint.save(tmp_path / "cond", state, cond)
    return tmp_path


@pytest.mark.parametrize(
    "run, flags, words",
    [
        ("uncond", ["--label", "7"], ["unconditional", "--label"]),
        ("uncond", ["--label", "all"], ["unconditional"]),
        ("uncond", ["--guidance", "2"], ["unconditional", "--guidance"]),
        ("cond", ["--label", "10"], ["[10] outside", "0 .. 9"]),
        ("cond", ["--label", "3,12", "--guidance", "2"], ["[12] outside"]),
        ("cond", ["--label", "3", "--guidance", "-1"], ["--guidance", ">= 0"]),
        ("cond", ["--label", "3", "--guidance", "nan"], ["--guidance", ">= 0"]),
        ("cond", ["--label", "seven"], ["--label", "not a class number"]),
        ("cond", ["--label", "-1"], ["--label", ">= 0"]),
        ("cond", ["--guidance", "3"], ["--guidance needs --label"]),
    ],
)
def test_cli_refuses_labels_and_guidance_it_cannot_use(runs, capsys, run, flags, words):
    out = runs / "out.npz"
    code, io_ = _cli(capsys, ["sample", "--run", runs / run, "--out", out, "--num", 2, *flags])
    line = io_.err.strip()
    assert code == 2 and line.startswith("error: ") and "\n" not in line, io_.err
    for word in words:
        assert word in line, line
    assert not out.exists()


def test_cli_samples_a_label_a_list_and_all(runs, capsys):
    from nanoddpm_utils.images import image_grid

    one = runs / "seven.npz"
    assert (
        _cli(capsys, ["sample", "--run", runs / "cond", "--out", one, "--num", 3, "--label", 7, "--guidance", 2.5])[0]
        == 0
    )
    with np.load(one) as f:
        assert f["samples"].shape == (3, 8, 8, 1) and f["labels"].tolist() == [7, 7, 7] and f["guidance"] == 2.5
    # the same images as the package's guided sampler from the same seed
    config, model = (
        COND.replace(name="smoke_cond"),
        _perturbed(make_model(COND, key=jax.random.split(jax.random.key(0))[0])),
    )
    ref = sample_guided(config, model, jax.random.key(0), [7, 7, 7], 2.5)
    np.testing.assert_allclose(np.load(one)["samples"], np.clip((np.asarray(ref) + 1) / 2, 0, 1), atol=1e-5)

    grid = runs / "all.npz"
    assert _cli(capsys, ["sample", "--run", runs / "cond", "--out", grid, "--num", 2, "--label", "all"])[0] == 0
    with np.load(grid) as f:
        assert f["labels"].tolist() == [c for c in range(10) for _ in range(2)] and f["guidance"] == 1.0
        rows = image_grid(f["samples"] * 2 - 1, nrow=2)
    from PIL import Image

    png = np.asarray(Image.open(grid.with_suffix(".png")))
    assert png.shape[0] / png.shape[1] == pytest.approx(rows.shape[0] / rows.shape[1])  # ten rows of two
    lst = runs / "list.npz"
    assert (
        _cli(capsys, ["sample", "--run", runs / "cond", "--out", lst, "--num", 1, "--label", "0,3,5", "--guidance", 0])[
            0
        ]
        == 0
    )
    assert np.load(lst)["labels"].tolist() == [0, 3, 5]
