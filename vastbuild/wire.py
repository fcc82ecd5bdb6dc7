"""The Vast wire formats, computed from a checked :class:`~vastbuild.model.Deployment`.

Three things leave vastbuild for Vast: the ``config.json`` the worker bootstrap
reads from the tarball, the docker options string (``env``), and the offer
search string (``search_params``) — the last two inside the body of
``PUT /api/v0/deployments/``. They are pure functions of the model so that
``plan``, ``build`` and ``deploy`` agree on them byte for byte, and so that the
tier decision can compare them with what the server holds. Where vastbuild
differs from the vastai SDK on purpose, docs/wire.md says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from vastbuild.canonical import JsonValue
from vastbuild.catalog import catalog
from vastbuild.model import AUTOSCALE_SETTINGS, Deployment, RunStep, Scalar, SearchTerm
from vastbuild.units import exact
from vastbuild.urls import DEFAULT_API_URL


def config_json(d: Deployment) -> bytes:
    """The bytes of ``./config.json`` in the tarball.

    The worker bootstrap reads it to export ``envs``, install ``apt_gets`` and
    ``pip_installs``, execute ``runs`` and look up the deployment by ``name``.
    The spelling (key order, ``", "``/``": "`` separators, ASCII escapes) is the
    one the SDK writes, so the same deployment packaged by either tool carries
    the same file.
    """
    document = {
        "name": d.config_name,
        "pip_installs": list(d.pip_installs),
        "apt_gets": list(d.apt_gets),
        "envs": [[key, value] for key, value in d.envs],
        "runs": [_run_entry(run) for run in d.runs],
    }
    return json.dumps(document).encode("utf-8")


def _run_entry(run: RunStep) -> str | list[str]:
    """A shell-form RUN stays a string (``sh -c``); an exec form becomes a list."""
    return run if isinstance(run, str) else list(run)


#: the variables vastbuild's own docker options set for the worker bootstrap; every
#: other ``-e NAME=value`` in ``env`` is a SECRET's
BOOTSTRAP_VARIABLES = frozenset({"REPORT_ADDR", "VAST_API_URL", "USE_SYSTEM_PYTHON",
                                 "UV_SYSTEM_PYTHON", "UV_BREAK_SYSTEM_PACKAGES", "ENV_PATH"})


def docker_env(d: Deployment, api_url: str, autoscaler_url: str) -> str:
    """The docker options string (``env`` in the registration body).

    Ports come from the model already sorted, so the string is the same on
    every run (the server treats a changed ``env`` as a hard update).
    """
    options = [f"-p {number}:{number}/{protocol}" for number, protocol in d.ports]
    options.append(f"-e REPORT_ADDR={autoscaler_url}")
    if api_url != DEFAULT_API_URL:
        options.append(f"-e VAST_API_URL={api_url}")
    if d.venv == "":
        options += [
            "-e USE_SYSTEM_PYTHON=true",
            "-e UV_SYSTEM_PYTHON=1",
            "-e UV_BREAK_SYSTEM_PACKAGES=1",
        ]
    elif d.venv is not None:
        options.append(f"-e ENV_PATH={d.venv}")
    return " ".join(options)


def docker_options(env: str) -> list[str]:
    """Docker options as ``-p 8000:8000/tcp`` / ``-e KEY=VALUE`` pairs."""
    options: list[str] = []
    for word in env.split():
        if word.startswith("-") and not word[1:2].isdigit():
            options.append(word)
        elif options and options[-1].startswith("-") and " " not in options[-1]:
            options[-1] += " " + word
        else:
            options.append(word)
    return options


def split_secrets(env: str) -> tuple[list[str], dict[str, str]]:
    """``env``'s options without the secrets' ``-e NAME=value``, and those values by
    name: what may be shown, and what may only be compared."""
    public: list[str] = []
    secrets: dict[str, str] = {}
    for option in docker_options(env):
        flag, _, assignment = option.partition(" ")
        name, equals, value = assignment.partition("=")
        if flag == "-e" and equals and name not in BOOTSTRAP_VARIABLES:
            secrets[name] = value
        else:
            public.append(option)
    return public, secrets


def masked_env(env: str) -> str:
    """``env`` fit to show: each secret's value replaced by ``***``."""
    public, secrets = split_secrets(env)
    return " ".join([*public, *(f"-e {name}=***" for name in secrets)])


def with_secrets(body: Mapping[str, JsonValue], d: Deployment,
                 values: Mapping[str, str]) -> dict[str, JsonValue]:
    """The registration body as sent: each SECRET appended to ``env`` as ``-e
    NAME=value`` (in Vastfile order) and the registry password as
    ``docker_login_pass`` (after ``docker_login_user``, the SDK's field order).
    ``values`` holds every secret the deployment names. The result is for the
    request alone: it is never written, cached or shown."""
    sent: dict[str, JsonValue] = {}
    for key, value in body.items():
        if key == "env" and d.secrets:
            extra = " ".join(f"-e {s.name}={values[s.name]}" for s in d.secrets)
            value = f"{value} {extra}" if value else extra
        sent[key] = value
        if key == "docker_login_user" and d.login is not None:
            sent["docker_login_pass"] = values[d.login.password.name]
    return sent


def search_params(d: Deployment) -> str:
    """The offer search string: ``column OP value`` terms joined by spaces.

    ``d.search`` already holds the defaults first and the REQUIRE terms in
    source order; values are in the units the server expects (GB, days).
    """
    return " ".join(search_term(term) for term in d.search)


def search_term(term: SearchTerm) -> str:
    """One term as the server's query parser reads it (``gpu_name in RTX_4090,L40S``)."""
    facts = catalog()
    # only the columns the server rescales (GB, days) get the whole-number spelling
    unit_column = facts.canonical(term.column) in facts.unit_multipliers
    if isinstance(term.value, tuple):
        value = ",".join(_scalar(item, unit_column) for item in term.value)
    else:
        value = _scalar(term.value, unit_column)
    return f"{term.column}{facts.operator_spelling[term.op]}{value}"


def _scalar(value: Scalar, unit_column: bool) -> str:
    """Spell one value: ``true``/``false``, ``_`` for spaces in text, numbers as
    Python prints them, except that a whole GB or day count drops its ``.0``
    (``gpu_ram>=48`` whether the Vastfile said ``48``, ``48GB`` or ``48000MB``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.replace(" ", "_")
    if isinstance(value, float) and unit_column:
        # a unit conversion (MB -> GB, hours -> days) can leave binary noise
        return str(exact(round(value, 9)))
    return str(value)


def deployment_config(
    d: Deployment,
    *,
    file_hash: str,
    file_size: int,
    api_url: str,
    autoscaler_url: str,
) -> dict[str, JsonValue]:
    """The JSON body of ``PUT /api/v0/deployments/``.

    Field order is the SDK's DeploymentConfig order and fields without a value
    are left out, as the SDK does, so the server sees the request it knows.
    ``file_hash`` and ``file_size`` describe the tarball that will be uploaded.
    """
    body: dict[str, JsonValue] = {
        "name": d.name,
        "image": d.image,
        "file_hash": file_hash,
        "file_size": file_size,
        "env": docker_env(d, api_url, autoscaler_url),
        "tag": d.tag,
        "search_params": search_params(d),
        "storage": d.storage,
    }
    if d.ttl is not None:
        body["ttl"] = d.ttl
    if d.version_label is not None:
        body["version_label"] = d.version_label
    if d.login is not None:  # the password joins at deploy time (with_secrets)
        body["docker_login_user"] = d.login.user
        body["docker_login_repo"] = d.login.registry
    settings = dict(d.autoscale)
    for setting in AUTOSCALE_SETTINGS:
        if setting.name in settings:
            body[setting.name] = settings[setting.name]
    return body
