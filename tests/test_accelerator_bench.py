"""bench/accelerator.py: sized by backend (each preset's own batch on an accelerator, small on a CPU); bad input
exits 2 with one line."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import accelerator  # noqa: E402

from nanoddpm_utils.config import PRESETS  # noqa: E402


def test_sizes_follow_the_backend():
    for name, config in PRESETS.items():
        on_accel = accelerator.sizes(name, on_cpu=False)
        assert on_accel["batch_size"] == config.train.batch_size and on_accel["sample_steps"] is None
        on_cpu = accelerator.sizes(name, on_cpu=True)
        assert on_cpu["batch_size"] <= 16 and on_cpu["steps"] <= 5


def test_bad_input_exits_2_with_one_line(capsys):
    assert accelerator.main(["--presets", "nope"]) == 2
    assert accelerator.main(["--num-images", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown preset" in err[0] and "choose from" in err[0]
