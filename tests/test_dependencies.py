"""pyproject.toml is the one source of the dependency list: environment.yml repeats it with the same lower bounds,
constraints.txt pins each dependency within them, and Colab's preinstalled versions satisfy them."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# the extras the committed outputs were made with ([notebooks] is JupyterLab; [bench]'s torch only times the peer)
PINNED_EXTRAS = ("dev", "site")


def requirements(*extras: str) -> dict[str, Requirement]:
    lines = PROJECT["dependencies"] + [r for e in extras for r in PROJECT["optional-dependencies"][e]]
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in reqs}


def environment_yml() -> dict[str, str]:
    """name -> its version bound in environment.yml, conda and pip sections alike ("-e ." and "pip" left out)."""
    found = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.fullmatch(r"\s*-\s+([A-Za-z0-9_.\-]+)\s*([<>=!~].*)?", line.split("#")[0].rstrip())
        if m and m[1] not in ("pip", "conda-forge"):
            found[canonicalize_name(m[1])] = (m[2] or "").replace(" ", "")
    return found


def pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(n): v for n, v in (line.split("==") for line in lines if line and line[0] != "#")}


def test_environment_yml_lists_pyprojects_dependencies_with_the_same_bounds():
    env = environment_yml()
    assert env.pop("python") == PROJECT["requires-python"]
    want = {name: str(r.specifier) for name, r in requirements("dev").items()}
    assert env == want, {n: (env.get(n), want.get(n)) for n in env.keys() | want.keys() if env.get(n) != want.get(n)}


def test_constraints_pin_every_dependency_within_its_bound():
    pinned = pins(ROOT / "constraints.txt")
    assert "nanoddpm-utils" not in pinned
    for name, r in requirements(*PINNED_EXTRAS).items():
        assert name in pinned, f"constraints.txt does not pin {name}"
        assert r.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} is outside {r}"


def test_colabs_preinstalled_versions_satisfy_our_bounds():
    """colab_setup.sh holds Colab's packages at their versions: a bound of the package (what it installs there; the
    extras are never installed on Colab) above one of them could not be installed, on any runtime."""
    ours = requirements()
    for runtime in ("cpu_gpu", "tpu"):
        colab = pins(ROOT / "tests" / "colab" / f"colab_{runtime}_constraints.txt")
        shared = colab.keys() & ours.keys()
        assert {"jax", "numpy", "ipywidgets"} <= shared
        for name in shared:
            assert ours[name].specifier.contains(colab[name]), (
                f"Colab ({runtime}) ships {name}=={colab[name]}, we ask {ours[name]}"
            )
