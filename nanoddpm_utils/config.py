"""Run configuration as data: frozen dataclasses and named presets.

A preset differs from another in a few fields; print one in a notebook cell to
see everything a run depends on. ``Config.to_dict``/``from_dict`` round-trip
through JSON (checkpoints store the config beside the weights).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace

# The names a config may choose from; the modules that implement them import these tuples from here.
SCHEDULES = ("linear", "cosine")  # schedule.make_schedule
VARIANCES = ("fixedlarge", "fixedsmall")  # diffusion.p_mean_variance: sigma_t^2 = beta_t or beta-tilde_t
CONV_IMPLS = ("auto", "xla", "matmul")  # layers.resolve_conv_impl
COMPUTE_DTYPES = ("auto", "float32", "bfloat16")  # train.resolve_compute_dtype
# what the network learns: "eps", the noise of DDPM's path (Ho et al. 2020), or "flow", the velocity of the
# straight path x_t = (1 - t) x_0 + t eps (flow matching: Lipman et al. 2023; Liu et al. 2023); see flow.py
OBJECTIVES = ("eps", "flow")  # train.batch_loss
SPACINGS = ("uniform", "quadratic", "trailing")  # schedule.ddim_timesteps
# sample.sampling_loop: the first four sample a noise-predicting ("eps") model, euler and heun a velocity ("flow") one;
# the first of each objective's samplers is its default
SAMPLERS = ("ddpm", "ddim", "dpm++2m", "edm", "euler", "heun")
SAMPLERS_OF = {"eps": ("ddpm", "ddim", "dpm++2m", "edm"), "flow": ("euler", "heun")}


@dataclass(frozen=True)
class ModelConfig:
    """The UNet's shape (names as the official code's ``unet.model`` arguments)."""

    image_size: int = 32
    in_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.1
    num_groups: int = 32
    # "auto": an im2col matmul on CPU (fast inside lax.scan), XLA's convolution on GPU/TPU; see layers.py
    conv_impl: str = "auto"
    # class-conditional (Ho & Salimans 2022) when > 0: labels 0 .. num_classes-1, and num_classes means "no label"
    num_classes: int = 0

    def __post_init__(self):
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"unknown conv_impl {self.conv_impl!r}; choose one of {CONV_IMPLS}")
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(self.attn_resolutions))
        for name in ("image_size", "in_channels", "ch", "num_res_blocks", "num_groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.ch_mult or any(not isinstance(m, int) or m < 1 for m in self.ch_mult):
            raise ValueError(f"ch_mult must be a non-empty tuple of positive integers, got {self.ch_mult!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be an integer >= 0 (0: unconditional), got {self.num_classes!r}")
        factor = 2 ** (len(self.ch_mult) - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2^(levels-1) = {factor} "
                f"for ch_mult {self.ch_mult}; use fewer levels or another image size"
            )
        missing = sorted(set(self.attn_resolutions) - set(self.resolutions))
        if missing:
            raise ValueError(
                f"attention resolution(s) {missing} never occur; the resolutions of this UNet are {self.resolutions}"
            )
        widths = {self.ch * m for m in self.ch_mult}
        bad = sorted(w for w in widths if w % self.num_groups)
        if bad:
            raise ValueError(
                f"channel widths {bad} are not multiples of num_groups={self.num_groups}; change ch or num_groups"
            )

    @property
    def resolutions(self) -> tuple[int, ...]:
        """The feature-map side length at each level, e.g. (32, 16, 8, 4)."""
        return tuple(self.image_size // 2**i for i in range(len(self.ch_mult)))


@dataclass(frozen=True)
class DiffusionConfig:
    """The forward process and how the reverse process is sampled."""

    schedule: str = "linear"
    num_timesteps: int = 1000
    variance: str = "fixedlarge"  # sigma_t^2 = beta_t (the paper's CIFAR-10 choice) or "fixedsmall"
    clip_x0: bool = True
    objective: str = "eps"  # "flow": the straight path and its velocity; schedule and variance then go unused

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {OBJECTIVES}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if not isinstance(self.num_timesteps, int) or self.num_timesteps < 1:
            raise ValueError(f"num_timesteps must be an integer >= 1, got {self.num_timesteps!r}")
        if self.variance not in VARIANCES:
            raise ValueError(f"unknown variance {self.variance!r}; choose one of {VARIANCES}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (paper: Adam 2e-4, warmup 5000, clip 1.0, batch 128, EMA 0.9999)."""

    steps: int = 800_000
    batch_size: int = 128
    lr: float = 2e-4
    warmup_steps: int = 5000
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    random_flip: bool = True
    steps_per_call: int = 100  # K train steps inside one jitted lax.scan
    log_every: int = 100
    sample_every: int = 10_000
    ckpt_every: int = 10_000
    seed: int = 0
    # activations in the train step: "auto" is bfloat16 on TPUs and on GPUs with bfloat16 units (compute
    # capability >= 8.0), float32 elsewhere, e.g. a T4 or a CPU (parameters, optimizer state and the loss
    # stay float32 either way); see train.resolve_compute_dtype
    compute_dtype: str = "auto"
    # class-conditional models only: the probability that a training example's label is replaced by "no label",
    # so that one network learns both eps(x, t, c) and eps(x, t) (classifier-free guidance, Ho & Salimans 2022)
    label_dropout: float = 0.1

    def __post_init__(self):
        for name in ("steps", "batch_size", "steps_per_call", "log_every", "sample_every", "ckpt_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be > 0 and warmup_steps >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.label_dropout <= 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1], got {self.label_dropout!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"unknown compute_dtype {self.compute_dtype!r}; choose one of {COMPUTE_DTYPES}")


@dataclass(frozen=True)
class Config:
    name: str
    dataset: str  # "digits", "cifar10" or a folder of images
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        try:
            return cls(
                name=d["name"],
                dataset=d["dataset"],
                model=ModelConfig(**d["model"]),
                diffusion=DiffusionConfig(**d["diffusion"]),
                train=TrainConfig(**d["train"]),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a nanoddpm config ({e}); was it written by another version?") from None

    def replace(self, **sections) -> Config:
        """``cfg.replace(train={"steps": 10})`` returns a copy with those fields changed."""
        changes = {}
        for section, values in sections.items():
            if isinstance(values, dict):
                changes[section] = replace(getattr(self, section), **values)
            else:
                changes[section] = values
        return replace(self, **changes)


# --------------------------------------------------------------------------- presets
# scikit-learn's 8x8 digits, trained in about five minutes on a 2-core CPU (701k parameters).
# A short run wants many small steps and a short EMA (time constant 200 steps, not 10k).
_DIGITS = Config(
    name="digits",
    dataset="digits",
    model=ModelConfig(image_size=8, in_channels=1, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,)),
    train=TrainConfig(steps=3000, batch_size=64, lr=1e-3, warmup_steps=200, ema_decay=0.995, random_flip=False),
).replace(
    model={"dropout": 0.0, "num_groups": 8}, train={"steps_per_call": 50, "sample_every": 1000, "ckpt_every": 500}
)
# A few M parameters: trains to recognisable CIFAR-10 samples in about an hour on a Colab accelerator.
_NANO = Config(
    name="nano_cifar10",
    dataset="cifar10",
    model=ModelConfig(ch=64, ch_mult=(1, 2, 2)),
    train=TrainConfig(steps=30_000, warmup_steps=1000, ema_decay=0.9995, sample_every=5000, ckpt_every=2000),
)
PRESETS: dict[str, Config] = {
    # The paper's CIFAR-10 model: 35.7M parameters, 800k steps at batch 128.
    "paper_cifar10": Config(name="paper_cifar10", dataset="cifar10"),
    "nano_cifar10": _NANO,
    "digits": _DIGITS,
    # The digits with their labels: class-conditional, for classifier-free guidance (notebook 09). The same
    # UNet plus a label embedding (11 x 128: ten digits and "no label"); in the same 3000 steps it learns
    # eps(x, t, c) for ten classes and eps(x, t) at once.
    "digits_cond": _DIGITS.replace(name="digits_cond", model={"num_classes": 10}),
    # The digits by flow matching (notebook 10): the same UNet and training, the velocity of the straight path as
    # the target in place of the noise; sampled by integrating an ODE (sample --sampler euler or heun).
    "digits_fm": _DIGITS.replace(name="digits_fm", diffusion={"objective": "flow"}),
    # CIFAR-10's ten classes, conditional: nano_cifar10 plus a label embedding (10 + 1 rows of 256).
    "nano_cifar10_cond": _NANO.replace(name="nano_cifar10_cond", model={"num_classes": 10}),
    # Tiny, for tests: seconds to compile and run.
    "smoke": _DIGITS.replace(
        name="smoke",
        model={"ch": 8, "dropout": 0.1, "num_groups": 4},
        diffusion={"num_timesteps": 50},
        train={"steps": 20, "batch_size": 16, "warmup_steps": 5, "ema_decay": 0.9, "steps_per_call": 5},
    ).replace(train={"log_every": 5, "sample_every": 10, "ckpt_every": 10}),
}


def get_preset(name: str) -> Config:
    """Return the named preset (see ``PRESETS``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


# --------------------------------------------------------------------------- any field from the command line
SECTIONS = ("model", "diffusion", "train")
_TYPES = {"bool": bool, "int": int, "float": float, "str": str}  # the annotations' names; any other is tuple[int, ...]
_READS = {bool: "true or false", int: "a whole number", float: "a finite number", str: "text"}


def _read(text: str, kind, key: str):
    """``text`` as a value of the declared type ``kind`` (a tuple of ints is written ``1,2,2``)."""
    try:
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[text.lower()]
        if kind in (int, str):
            return kind(text)
        if kind is float:
            value = float(text)
            if value - value == 0:  # refuses inf and nan, which no check below would catch
                return value
            raise ValueError(text)
        return tuple(int(v) for v in text.split(",") if v.strip())  # tuple[int, ...]
    except (KeyError, ValueError):
        wanted = _READS.get(kind, "whole numbers separated by commas, e.g. 1,2,2")
        raise ValueError(f"{key}={text}: {key} takes {wanted}") from None


def apply_settings(config: Config, settings: list[str]) -> Config:
    """``config`` with each ``"section.field=value"`` applied in turn: ``["train.lr=2e-4", "model.ch_mult=1,2"]``.

    A value is read as its field's declared type and checked by the dataclass itself; the top-level fields are
    written without a section (``dataset=cifar10``). A mistake is a one-line ValueError naming the field and
    what it may be.
    """
    for setting in settings:
        key, sep, text = (s.strip() for s in setting.partition("="))
        section, _, name = key.rpartition(".")
        if not sep or (section and section not in SECTIONS):
            raise ValueError(
                f"{setting!r} is not section.field=value with a section of {', '.join(SECTIONS)} (e.g. train.lr=2e-4)"
            )
        part = getattr(config, section) if section else config
        kinds = {
            f.name: _TYPES.get(f.type, tuple) for f in dataclasses.fields(part) if section or f.name not in SECTIONS
        }
        if name not in kinds:
            raise ValueError(
                f"{key} is not a field; {section or 'the config'} has {', '.join(kinds)}"
                + ("" if section else f" (and the sections {', '.join(SECTIONS)})")
            )
        value = _read(text, kinds[name], key)
        try:
            config = config.replace(**{section: {name: value}}) if section else replace(config, **{name: value})
        except ValueError as e:
            raise ValueError(f"{key}={text}: {e}") from None
    return config
