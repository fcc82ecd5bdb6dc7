"""CI integration, each file checked by the tool that consumes it: the pre-commit
hooks by pre-commit itself (installing vastbuild from a git copy of this work
tree, as a user's pre-commit installs it from the repository), the GitHub Action
by actionlint, ShellCheck and the action metadata schema, and by running its
steps' scripts against the examples and the dev server; the GitLab example by
GitLab's schema and by running its check job; the ``vastbuild.toml`` schema
against the settings module that reads the file (docs/ci.md, docs/workspace.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import ROOT, RunningDevServer

from vastbuild.errors import VastbuildError
from vastbuild.settings import BY_NAME, SETTINGS_FILE, load_settings

BIN = Path(sys.executable).parent
ACTION = ROOT / "action.yml"
GITHUB_WORKFLOW = ROOT / "docs/examples/github-workflow.yml"
GITLAB_CI = ROOT / "docs/examples/gitlab-ci.yml"
SCHEMA = ROOT / "vastbuild/data/vastbuild-toml.schema.json"
#: where the example workflow names the action; a copy beside the workflow stands in
ACTION_REFERENCE = "OWNER/vastbuild@v0.1.0"
BROKEN_VASTFILE = "DEPLOYMENT broken\nFROM\n"
#: what `vastbuild check` says of BROKEN_VASTFILE written as broken/Vastfile
BROKEN_DIAGNOSTIC = "broken/Vastfile:2:5: error[E009]: FROM needs an image"
_GIT_IDENTITY = ("-c", "user.name=vastbuild tests", "-c", "user.email=tests@vastbuild.invalid",
                 "-c", "commit.gpgsign=false")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *_GIT_IDENTITY, *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def _committed(folder: Path) -> str:
    """``folder`` made a git repository with everything in it committed; the commit."""
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "snapshot")
    return _git(folder, "rev-parse", "HEAD").strip()


def _examples_workspace(dest: Path) -> Path:
    """A copy of examples/ (its Vastfiles COPY ../lib, so the whole folder) as a git
    work tree, with nothing the examples' own runs left behind."""
    shutil.copytree(ROOT / "examples", dest,
                    ignore=shutil.ignore_patterns("dist", "__pycache__", "*.egg-info"))
    _committed(dest)
    return dest


def _add_broken_vastfile(workspace: Path) -> None:
    (workspace / "broken").mkdir()
    (workspace / "broken/Vastfile").write_text(BROKEN_VASTFILE, encoding="utf-8")
    _git(workspace, "add", "-A")


# -- pre-commit ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This work tree as a clean git repository (what `git ls-files` tracks and the
    untracked files git does not ignore, committed): what pre-commit clones, so the
    hooks run the code and the hook file as they are now. Its path and commit."""
    repository = tmp_path_factory.mktemp("hook-repository")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is gone
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repository / name)
    return repository, _committed(repository)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit store for the module: vastbuild is installed into a hook
    environment once (pip's own cache stays on; byte-compiling is left to the first
    import), and every run after reuses it."""
    return tmp_path_factory.mktemp("pre-commit-home")


def _run_hook(workspace: Path, hook_repository: tuple[Path, str], home: Path,
              hook: str) -> subprocess.CompletedProcess[str]:
    """``pre-commit run HOOK --all-files`` in ``workspace``, configured as a user
    configures it: this repository at a commit, the hook by its id. (``pre-commit
    try-repo`` would install vastbuild into a new store on every call.)"""
    repository, commit = hook_repository
    config = {"repos": [{"repo": str(repository), "rev": commit, "hooks": [{"id": hook}]}]}
    (workspace / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    _git(workspace, "add", "-A")
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", hook, "--all-files",
                           "--color", "never"], cwd=workspace, capture_output=True, text=True,
                          env={**os.environ, "PRE_COMMIT_HOME": str(home),
                               "PIP_NO_COMPILE": "1"}, timeout=600)


def test_the_hook_manifest_is_valid() -> None:
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest",
                             str(ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert {hook["id"] for hook in hooks} == {"vastbuild-check", "vastbuild-fmt"}
    for hook in hooks:
        pattern = re.compile(hook["files"])
        assert all(pattern.search(name) for name in ("Vastfile", "services/llm/Vastfile",
                                                      "deploy/llm.vastfile",
                                                      "shared/gpu.vast"))
        assert not any(pattern.search(name) for name in ("Vastfile.example", "MyVastfile",
                                                          "vastfile.md"))


def test_pre_commit_check_passes_the_examples_and_stops_a_broken_vastfile(
        tmp_path: Path, hook_repository: tuple[Path, str], pre_commit_home: Path) -> None:
    workspace = _examples_workspace(tmp_path / "workspace")
    clean = _run_hook(workspace, hook_repository, pre_commit_home, "vastbuild-check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.search(r"^vastbuild check\.+Passed$", clean.stdout, re.MULTILINE), clean.stdout

    _add_broken_vastfile(workspace)
    broken = _run_hook(workspace, hook_repository, pre_commit_home, "vastbuild-check")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert BROKEN_DIAGNOSTIC in broken.stdout
    assert "Traceback" not in broken.stdout + broken.stderr


def test_pre_commit_try_repo_passes_the_examples_and_fails_a_broken_vastfile(
        tmp_path: Path, hook_repository: tuple[Path, str]) -> None:
    """The command a hook author runs, as written: ``pre-commit try-repo REPO
    vastbuild-check --all-files`` (REPO: this work tree, committed). It installs
    vastbuild into a new store each time, so it runs twice here and no more."""
    workspace = _examples_workspace(tmp_path / "workspace")

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo",
                               str(hook_repository[0]), "vastbuild-check", "--all-files",
                               "--color", "never"], cwd=workspace, capture_output=True,
                              text=True, env={**os.environ, "PIP_NO_COMPILE": "1"},
                              timeout=600)

    clean = try_repo()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.search(r"^vastbuild check\.+Passed$", clean.stdout, re.MULTILINE), clean.stdout
    _add_broken_vastfile(workspace)
    broken = try_repo()
    assert broken.returncode == 1 and BROKEN_DIAGNOSTIC in broken.stdout, broken.stdout


def test_pre_commit_fmt_rewrites_a_vastfile_and_reports_the_change(
        tmp_path: Path, hook_repository: tuple[Path, str], pre_commit_home: Path) -> None:
    workspace = _examples_workspace(tmp_path / "workspace")
    vastfile = workspace / "llm/Vastfile"
    canonical = vastfile.read_text(encoding="utf-8")
    vastfile.write_text(canonical.replace("DEPLOYMENT qwen-chat", "DEPLOYMENT    qwen-chat"),
                        encoding="utf-8")

    changed = _run_hook(workspace, hook_repository, pre_commit_home, "vastbuild-fmt")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "files were modified by this hook" in changed.stdout
    assert vastfile.read_text(encoding="utf-8") == canonical

    again = _run_hook(workspace, hook_repository, pre_commit_home, "vastbuild-fmt")
    assert again.returncode == 0, again.stdout + again.stderr


# -- the GitHub Action -----------------------------------------------------------


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return loaded


def _actionlint(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "actionlint"), "-no-color",
                           "-shellcheck", str(BIN / "shellcheck")],
                          cwd=folder, capture_output=True, text=True)


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """``path`` against a schema check-jsonschema carries (SchemaStore's copies)."""
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True)


def test_the_action_metadata_matches_githubs_schema() -> None:
    result = _check_jsonschema("vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _action()["runs"]["using"] == "composite"


def test_workflows_using_the_action_pass_actionlint(tmp_path: Path) -> None:
    """actionlint reads a local action's metadata for the workflows that use it: the
    inputs they give must exist, its expressions must parse. The example workflow
    uses the action by its release, here by a copy of it beside the workflow."""
    _git(tmp_path, "init", "-q")  # actionlint looks for the repository's root
    shutil.copy2(ACTION, tmp_path / "action.yml")
    workflows = tmp_path / ".github/workflows"
    workflows.mkdir(parents=True)
    example = GITHUB_WORKFLOW.read_text(encoding="utf-8")
    assert f"uses: {ACTION_REFERENCE}" in example
    (workflows / "example.yml").write_text(example.replace(ACTION_REFERENCE, "./"),
                                           encoding="utf-8")
    clean = _actionlint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    (workflows / "typo.yml").write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v5\n      - uses: ./\n        with:\n"
        "          target: //llm\n", encoding="utf-8")
    typo = _actionlint(tmp_path)
    assert typo.returncode == 1
    assert 'input "target" is not defined' in typo.stdout

    schema = _check_jsonschema("vendor.github-workflows", GITHUB_WORKFLOW)
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_the_action_scripts_pass_shellcheck_and_read_inputs_from_the_environment(
        tmp_path: Path) -> None:
    """An input pasted into a script by ``${{ }}`` would run as shell code (script
    injection): the scripts take everything from ``env``."""
    scripts = [step for step in _action()["runs"]["steps"] if "run" in step]
    assert scripts
    for number, step in enumerate(scripts):
        assert "${{" not in step["run"], step["name"]
        script = tmp_path / f"step-{number}.sh"
        script.write_text(step["run"], encoding="utf-8")
        result = subprocess.run([str(BIN / "shellcheck"), "--shell", "bash", str(script)],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout}"


def _run_step(name: str, workspace: Path, runner_temp: Path, inputs: Mapping[str, str],
              env: Mapping[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
    """The action's step ``name`` run as the runner runs it: its script in bash
    (``-e -o pipefail``) in its working directory, with ``env`` and its own ``env``
    (the inputs, defaults under ``inputs``, put in); its result and what it wrote to
    ``$GITHUB_OUTPUT``."""
    action = _action()
    given = {key: str(spec.get("default", "")) for key, spec in action["inputs"].items()}
    assert set(inputs) <= set(given), set(inputs) - set(given)
    given.update(inputs)

    def expand(value: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: given[m[1]], value)

    (step,) = [step for step in action["runs"]["steps"] if step.get("name") == name]
    output = runner_temp / "github-output"
    output.write_text("", encoding="utf-8")
    environment = {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                   "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(output),
                   **{key: expand(value) for key, value in step.get("env", {}).items()}}
    result = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c",
                             step["run"]], cwd=workspace / expand(step["working-directory"]),
                            env=environment, capture_output=True, text=True, timeout=300)
    return result, output.read_text(encoding="utf-8")


def test_the_action_checks_into_sarif_builds_and_deploys(
        tmp_path: Path, dev_server: RunningDevServer) -> None:
    workspace = _examples_workspace(tmp_path / "workspace")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    env = {"VASTBUILD_CACHE_DIR": str(tmp_path / "cache")}

    checked, output = _run_step("vastbuild check", workspace, runner_temp, {}, env)
    assert checked.returncode == 0 and output == "status=0\n", checked.stderr
    assert json.loads((runner_temp / "vastbuild.sarif").read_text())["runs"][0]["results"] == []

    _add_broken_vastfile(workspace)
    checked, output = _run_step("vastbuild check", workspace, runner_temp, {}, env)
    assert checked.returncode == 0 and output == "status=1\n", checked.stderr
    (result,) = json.loads((runner_temp / "vastbuild.sarif").read_text())["runs"][0]["results"]
    assert result["ruleId"] == "E009"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "broken/Vastfile"
    reported, _ = _run_step("Report the check's errors", workspace, runner_temp, {}, env)
    assert reported.returncode == 1 and BROKEN_DIAGNOSTIC in reported.stderr
    shutil.rmtree(workspace / "broken")

    outdir = tmp_path / "dist"
    unreachable = "http://127.0.0.1:1"  # the cache is used, and its failure is no error
    built, _ = _run_step("vastbuild build", workspace, runner_temp,
                         {"targets": "//embed", "outdir": str(outdir),
                          "remote-cache": unreachable}, env)
    assert built.returncode == 0, built.stderr
    assert f"cannot reach the remote cache {unreachable}" in built.stderr
    assert (outdir / "embeddings.tar.gz").is_file()

    deploy = {"targets": "//embed", "deploy": "true", "api-url": dev_server.url}
    refused, output = _run_step("vastbuild deploy", workspace, runner_temp, deploy, env)
    assert refused.returncode == 1 and output == ""
    assert "::error::deploy is true but api-key is empty" in refused.stdout
    deployed, output = _run_step("vastbuild deploy", workspace, runner_temp,
                                 {**deploy, "api-key": dev_server.keys[0]}, env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert output == "deployed=true\n"
    assert dev_server.keys[0] not in deployed.stdout + deployed.stderr


# -- GitLab CI -------------------------------------------------------------------


def test_the_gitlab_example_matches_gitlabs_schema() -> None:
    result = _check_jsonschema("vendor.gitlab-ci", GITLAB_CI)
    assert result.returncode == 0, result.stdout + result.stderr


def _run_gitlab_job(job: str, workspace: Path) -> subprocess.CompletedProcess[str]:
    """The example's ``job`` script as a GitLab runner runs it: one bash session,
    stopping at the first command that fails (its ``before_script``, which installs
    vastbuild, is this test run's vastbuild)."""
    script = yaml.safe_load(GITLAB_CI.read_text(encoding="utf-8"))[job]["script"]
    return subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c",
                           "\n".join(script)], cwd=workspace, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
                          timeout=300)


def test_the_gitlab_check_job_writes_a_code_quality_report(tmp_path: Path) -> None:
    workspace = _examples_workspace(tmp_path / "workspace")
    report = workspace / "gl-code-quality-report.json"
    clean = _run_gitlab_job("check", workspace)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(report.read_text(encoding="utf-8")) == []

    _add_broken_vastfile(workspace)
    broken = _run_gitlab_job("check", workspace)
    assert broken.returncode == 1
    assert BROKEN_DIAGNOSTIC in broken.stderr
    (issue,) = json.loads(report.read_text(encoding="utf-8"))
    assert issue["check_name"] == "E009" and issue["severity"] == "major"
    assert issue["location"] == {"path": "broken/Vastfile", "lines": {"begin": 2}}
    assert issue["description"] == "E009: FROM needs an image"
    assert re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"])


# -- the vastbuild.toml schema ---------------------------------------------------


def _schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_schema_is_generated_from_the_settings() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts/vastbuild_toml_schema.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_schema_knows_every_setting_and_no_other() -> None:
    properties = _schema_validator().schema["properties"]
    assert set(properties) == {*BY_NAME, "profile"}
    assert set(properties["profile"]["additionalProperties"]["properties"]) == set(BY_NAME)


def _toml_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", markdown.read_text(encoding="utf-8"), re.DOTALL)


def test_the_schema_accepts_the_examples_and_the_documented_file(tmp_path: Path) -> None:
    validator = _schema_validator()
    written = [(ROOT / "examples" / SETTINGS_FILE).read_text(encoding="utf-8"),
               *_toml_blocks(ROOT / "docs/workspace.md")]
    assert len(written) > 1
    for text in written:
        assert list(validator.iter_errors(tomllib.loads(text))) == [], text
        (tmp_path / SETTINGS_FILE).write_text(text, encoding="utf-8")
        load_settings(tmp_path, environ={})  # and vastbuild reads it


@pytest.mark.parametrize("text", [
    'jobs = "many"',
    "jobs = 0",
    "remote_cache_read_only = 1",
    'api_url = "ftp://console.vast.ai"',
    'remote_cache = "https://user:secret@cache.example.com"',
    'tag = "-staging"',
    "cache_dir = ''",
    'cache_dri = "x"',
    'api_key = "x"',
    "profile = 1",
    "[profile.ci]\njobs = true",
    "[profile.ci]\ncache_dri = 'x'",
])
def test_the_schema_refuses_what_vastbuild_refuses(tmp_path: Path, text: str) -> None:
    assert list(_schema_validator().iter_errors(tomllib.loads(text)))
    (tmp_path / SETTINGS_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(VastbuildError):
        load_settings(tmp_path, environ={})


#: values of every kind, for each setting
_PROBES: tuple[object, ...] = (
    True, False, 0, 1, 4, -1, 1.5, "", "4", "0", "true", "yes", "staging", "-x", "a b",
    "dist", "~/cache", "http://127.0.0.1:8765", "https://cache.example.com:9092/vastbuild",
    "HTTPS://RUN.VAST.AI/", "ftp://x", "http://", "http://h?q=1", "https://u:p@h", [], {},
)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_what_the_schema_accepts_vastbuild_takes(tmp_path: Path, name: str) -> None:
    """An editor must never approve a value vastbuild refuses (vastbuild takes a few
    more spellings, such as ``jobs = "4"``, than the schema shows)."""
    validator = _schema_validator()
    accepted = [value for value in _PROBES if validator.is_valid({name: value})]
    assert accepted
    for value in accepted:
        BY_NAME[name].parse(value, tmp_path)  # raises ValueError for a refused value


def test_the_documented_pre_commit_config_is_valid(tmp_path: Path) -> None:
    """docs/ci.md's `.pre-commit-config.yaml` names hooks the manifest defines."""
    (block,) = [block for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "docs/ci.md")
                                              .read_text(encoding="utf-8"), re.DOTALL)
                if block.startswith("repos:")]
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(block, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", str(config)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert {hook["id"] for hook in yaml.safe_load(block)["repos"][0]["hooks"]} == \
        {hook["id"] for hook in hooks}


def test_the_documented_workflow_step_is_the_examples() -> None:
    """docs/ci.md quotes the example workflow; every line it quotes is there."""
    (block,) = [block for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "docs/ci.md")
                                              .read_text(encoding="utf-8"), re.DOTALL)
                if ACTION_REFERENCE in block]
    example = GITHUB_WORKFLOW.read_text(encoding="utf-8").splitlines()
    quoted = [line for line in block.splitlines() if line != "..."]
    missing = [line for line in quoted if line not in example]
    assert not missing, missing
