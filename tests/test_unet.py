import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils.config import ModelConfig, get_preset
from nanoddpm_utils.unet import UNet, check_labels, count_params, make_model

SMOKE = get_preset("smoke").model


@pytest.fixture(scope="module")
def model():
    return make_model("smoke", key=jax.random.key(0))


def randomise(model, key):
    """The zero-initialised output layers make a fresh UNet ignore its input; perturb every weight."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [p + 0.1 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)


def test_paper_parameter_count_is_35_7M():
    # The paper reports 35.7M parameters for its CIFAR-10 model; pinned to the exact count.
    shapes = eqx.filter_eval_shape(make_model, "paper_cifar10", key=jax.random.key(0))
    n = count_params(shapes)
    assert n == 35_746_307
    assert abs(n - 35.7e6) / 35.7e6 < 0.005


def test_output_shape_equals_input_shape(model):
    x = jnp.zeros((8, 8, 1))
    assert model(x, jnp.array(3)).shape == (8, 8, 1)
    xb = jnp.zeros((5, 8, 8, 1))
    assert jax.vmap(model)(xb, jnp.arange(5)).shape == (5, 8, 8, 1)


def test_cifar_shape_and_attention_at_16():
    cfg = ModelConfig(
        image_size=32, in_channels=3, ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=(16,), dropout=0.0
    )
    m = UNet(cfg, key=jax.random.key(1))
    assert [a is not None for a in m.down[1].attns] == [True] and m.down[0].attns == [None]
    assert m(jnp.zeros((32, 32, 3)), jnp.array(0)).shape == (32, 32, 3)


def test_output_depends_on_t_and_x(model):
    m = randomise(model, jax.random.key(2))
    x = jax.random.normal(jax.random.key(3), (8, 8, 1))
    a, b = m(x, jnp.array(1)), m(x, jnp.array(40))
    assert float(jnp.abs(a - b).max()) > 1e-3
    assert float(jnp.abs(m(x + 1.0, jnp.array(1)) - a).max()) > 1e-3


def test_gradients_reach_every_parameter(model):
    m = randomise(model, jax.random.key(4))
    x = jax.random.normal(jax.random.key(5), (8, 8, 1))

    @eqx.filter_grad
    def grad(mm):
        return jnp.sum(mm(x, jnp.array(7), key=jax.random.key(6)) ** 2)

    g = grad(m)
    leaves = jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_inexact_array))
    assert len(leaves) == len(jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_inexact_array)))
    assert all(float(jnp.abs(leaf).max()) > 0 for leaf in leaves)


def test_dropout_only_with_key_and_not_in_inference(model):
    assert SMOKE.dropout > 0
    m = randomise(model, jax.random.key(7))
    x = jax.random.normal(jax.random.key(8), (8, 8, 1))
    t = jnp.array(3)
    k1, k2 = jax.random.key(9), jax.random.key(10)
    assert not np.allclose(m(x, t, key=k1), m(x, t, key=k2))  # training: stochastic
    np.testing.assert_array_equal(m(x, t), m(x, t))  # no key: deterministic
    inf = eqx.nn.inference_mode(m)
    np.testing.assert_array_equal(inf(x, t, key=k1), inf(x, t, key=k2))
    np.testing.assert_allclose(inf(x, t, key=k1), m(x, t), rtol=1e-6)


def test_fresh_model_predicts_zero():
    # conv_out starts at (near) zero, as in the official code, so training starts from eps_hat = 0.
    m = make_model("smoke", key=jax.random.key(0))
    assert float(jnp.abs(m(jnp.ones((8, 8, 1)), jnp.array(0))).max()) < 1e-3


def test_wrong_input_shape_is_a_clear_error(model):
    with pytest.raises(ValueError, match=r"expects ONE channels-last image of shape \(8, 8, 1\).*got \(1, 8, 8\)"):
        model(jnp.zeros((1, 8, 8)), jnp.array(0))
    with pytest.raises(ValueError, match="got \\(8, 8, 3\\)"):
        model(jnp.zeros((8, 8, 3)), jnp.array(0))
    with pytest.raises(ValueError, match="t must be a scalar"):
        model(jnp.zeros((8, 8, 1)), jnp.arange(2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=30, ch_mult=(1, 2, 2)), "image_size 30 is not divisible by 2\\^\\(levels-1\\) = 4"),
        (
            dict(image_size=32, attn_resolutions=(12,)),
            r"attention resolution\(s\) \[12\] never occur.*\(32, 16, 8, 4\)",
        ),
        (dict(ch=20), "not multiples of num_groups=32"),
        (dict(dropout=1.5), "dropout must lie in"),
        (dict(ch_mult=()), "ch_mult must be a non-empty"),
    ],
)
def test_bad_model_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose one of"):
        get_preset("huge")


def test_check_labels_takes_the_classes_and_refuses_the_rest_in_one_line():
    np.testing.assert_array_equal(check_labels(10, [0, 9, 3]), [0, 9, 3])
    for num_classes, labels, message in [
        (10, [3, 10], r"label\(s\) \[10\] outside this model's classes 0 \.\. 9"),
        (10, [-1], r"\[-1\] outside"),
        (10, [1.5], "integers in 0 .. 9"),
        (10, [], "non-empty"),
        (10, [[1]], "integers"),
        (0, [1], "unconditional"),
    ]:
        with pytest.raises(ValueError, match=message) as e:
            check_labels(num_classes, labels)
        assert "\n" not in str(e.value)
