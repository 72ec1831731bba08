"""``config.apply_settings``: any config field from text (the command line's ``--set section.field=value``)."""

import pytest

from nanoddpm_utils.config import apply_settings, get_preset

DIGITS = get_preset("digits")


def test_each_value_is_read_as_its_fields_type():
    c = apply_settings(
        DIGITS,
        [
            "train.lr=2e-4",
            "train.steps=10",
            "model.ch_mult=1,2,2",
            "model.image_size=16",
            "train.random_flip=true",
            "diffusion.clip_x0=no",
            "dataset=cifar10",
        ],
    )
    assert c.train.lr == 2e-4 and isinstance(c.train.lr, float)
    assert c.train.steps == 10 and isinstance(c.train.steps, int)
    assert c.model.ch_mult == (1, 2, 2)
    assert c.train.random_flip is True and c.diffusion.clip_x0 is False and c.dataset == "cifar10"
    assert (
        c.replace(
            train={"lr": DIGITS.train.lr, "steps": DIGITS.train.steps, "random_flip": False},
            model={"ch_mult": (1, 2), "image_size": 8},
            diffusion={"clip_x0": True},
            dataset="digits",
        )
        == DIGITS
    )  # nothing else changed
    assert apply_settings(DIGITS, []) is DIGITS


def test_settings_apply_in_turn():
    assert apply_settings(DIGITS, ["train.lr=1e-3", "train.lr=3e-4"]).train.lr == 3e-4
    assert apply_settings(DIGITS, ["model.attn_resolutions="]).model.attn_resolutions == ()  # no attention


@pytest.mark.parametrize(
    "setting, message",
    [
        ("train.lrr=1", "train.lrr is not a field; train has steps, batch_size, lr,"),
        ("lr=1", "lr is not a field; the config has name, dataset (and the sections model, diffusion, train)"),
        ("optimizer.lr=1", "'optimizer.lr=1' is not section.field=value with a section of model, diffusion, train"),
        ("train.lr", "is not section.field=value"),
        ("train.lr=fast", "train.lr=fast: train.lr takes a finite number"),
        ("train.lr=nan", "train.lr takes a finite number"),
        ("train.steps=1.5", "train.steps takes a whole number"),
        ("train.random_flip=maybe", "train.random_flip takes true or false"),
        ("model.ch_mult=1,two", "model.ch_mult takes whole numbers separated by commas"),
        ("model.dropout=1.5", "model.dropout=1.5: dropout must lie in [0, 1)"),
        ("model.ch_mult=1,2,2,2,2", "image_size 8 is not divisible"),
        ("diffusion.variance=tiny", "unknown variance 'tiny'; choose one of"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_field(setting, message):
    with pytest.raises(ValueError) as e:
        apply_settings(DIGITS, [setting])
    assert message in str(e.value) and "\n" not in str(e.value)
