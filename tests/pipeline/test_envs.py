"""The conda environment and the pip requirements must list the same packages."""

import re
import tomllib

import yaml


def _name(req: str) -> str:
    name = re.split(r"[\[<>=!~ ;]", req.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def test_conda_env_lists_the_pip_requirements(repo_root):
    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    pip_names = {_name(d) for d in deps}
    env = yaml.safe_load((repo_root / "envs/seasonal-c2rcc.yaml").read_text())
    conda, pip = set(), set()
    for d in env["dependencies"]:
        if isinstance(d, dict):
            pip |= {_name(x) for x in d["pip"]}
        else:
            conda.add(_name(d.split("=")[0]))
    conda -= {"python", "pip", "pygments"}  # the interpreter, the installer, snakemake[reports]
    assert conda | pip == pip_names, {
        "only in conda env": (conda | pip) - pip_names,
        "only in pyproject": pip_names - (conda | pip),
    }


def test_pinned_versions_agree(repo_root):
    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    env_text = (repo_root / "envs/seasonal-c2rcc.yaml").read_text()
    for d in deps:
        if "==" in d:
            name, version = _name(d), d.split("==")[1]
            assert re.search(rf"{name}[=]=?{re.escape(version)}", env_text), d
