"""The library API the README shows: what Python users import, used as they would."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

import vastbuild
import vastbuild.api

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_public_name_resolves() -> None:
    """Each name is the very object vastbuild.api exposes (Deployment: the model's, the
    version: the installed distribution's)."""
    from importlib.metadata import version

    from vastbuild.model import Deployment

    for name in vastbuild.__all__:
        if name == "__version__":
            assert vastbuild.__version__ == version("vastbuild")
        elif name == "Deployment":
            assert vastbuild.Deployment is Deployment
        else:
            assert getattr(vastbuild, name) is getattr(vastbuild.api, name), name
    with pytest.raises(AttributeError):
        vastbuild.no_such_thing  # noqa: B018


def test_load_build_and_hash_take_plain_strings(tmp_path: Path) -> None:
    deployment = vastbuild.load(str(EXAMPLES / "llm"))
    assert (deployment.name, deployment.tag) == ("qwen-chat", "default")
    [built] = vastbuild.build([deployment], cache_dir=str(tmp_path / "cache"), outdir=None)
    [hashed] = vastbuild.hash_targets([deployment], cache_dir=str(tmp_path / "cache"))
    assert built.hash == hashed.hash and hashed.built_steps == 0
    with tarfile.open(built.artifacts["gz"], "r:gz") as archive:
        assert "./deployment.py" in archive.getnames()


def test_errors_come_as_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "Vastfile").write_text("FROM img\nCODE missing.py\n")
    with pytest.raises(vastbuild.DiagnosticError) as caught:
        vastbuild.load(tmp_path)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.span.line, problem.span.col) == ("E027", 2, 6)
    report = vastbuild.api.check(tmp_path)
    assert report.model is None and report.diagnostics == caught.value.diagnostics


def test_the_package_names_are_the_api_names() -> None:
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(vastbuild.__path__)}
    assert not set(vastbuild.__all__) & modules, "a module would shadow the API's name"
    assert set(vastbuild.__all__) - {"__version__", "Deployment"} <= set(vastbuild.api.__all__)
