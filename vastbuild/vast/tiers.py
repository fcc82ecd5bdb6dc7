"""Update tiers: what a deploy will do to a live endpoint, and why.

Pure functions. The desired deployment (a :class:`Snapshot` of what would be
registered) is compared with what the server holds (its deployment record,
its endpoint's autoscaling settings, its version history) and, for detail the
server does not keep, with the local record of the last deploy. The server is
authoritative: the local record only names *which* files or requirements
changed, and only when it describes the very version the server holds. Where
neither source can answer, the plan says so (``certain=False``) rather than
guess.

Tiers (docs/deploy.md has the table): 0 nothing changed, 1 autoscaling (and
TTL, VERSION), 2 content (code, copies, requirements, config.json), 3 image,
docker options, secrets, registry login, offer search or storage, 4 a new
deployment or tag. The
highest tier any change reaches is the tier of the deploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vastbuild.model import AUTOSCALE_SETTINGS, DEFAULT_STORAGE_GB
from vastbuild.secret_values import LOGIN_PASSWORD, same_key
from vastbuild.units import int_or_none
from vastbuild.wire import split_secrets

#: The server's ``action`` for each tier.
ACTIONS: dict[int, str] = {
    0: "exists",
    1: "autoscale_update",
    2: "soft_update",
    3: "hard_update",
    4: "created",
}

#: Content components: a change in any is a Tier 2 soft update.
CONTENT_COMPONENTS = ("code", "copies", "requirements", "config")
#: The worker's config.json keys that come from the requirements component.
REQUIREMENT_KEYS = ("pip_installs", "apt_gets")


@dataclass(frozen=True)
class Snapshot:
    """One deployment as vastbuild would register it (or last registered it).

    ``config`` is the body of ``PUT /api/v0/deployments/``; ``components`` the
    per-concern hashes of the build; ``manifest`` each tarball member's digest;
    ``worker_config`` the decoded ``config.json``; ``code_name`` how CODE is
    called in the source tree (``app.py``, ``embedder``), for messages;
    ``secrets`` each secret's fingerprint by name (``""``: its value was not
    given), never its value: ``config`` holds no secret either.
    """

    name: str
    tag: str
    file_hash: str
    config: Mapping[str, Any]
    components: Mapping[str, str] = field(default_factory=dict)
    manifest: Mapping[str, str] = field(default_factory=dict)
    worker_config: Mapping[str, Any] = field(default_factory=dict)
    code_name: str = "CODE"
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerView:
    """What the server holds for a (name, tag).

    ``record`` is ``GET /api/v0/deployment/{id}/``'s deployment, ``None`` when
    the server has no deployment for this name and tag; ``endpoint`` the
    matching entry of ``/api/v0/endptjobs/``; ``versions`` the version
    history; ``tags`` the tags the server holds under the same name. The
    record's ``env`` shows secrets as ``-e NAME=***``; ``secrets`` holds, for
    each secret in the server's ``env``, the fingerprint of its value, or None
    when the server hides it (``None`` for the whole map: no ``env`` reported).
    """

    record: Mapping[str, Any] | None
    endpoint: Mapping[str, Any] | None = None
    versions: tuple[Mapping[str, Any], ...] | None = None
    tags: tuple[str, ...] = ()
    secrets: Mapping[str, str | None] | None = None


@dataclass(frozen=True)
class TierDecision:
    """The tier of a deploy, the action the server should answer with, and every reason.

    ``certain`` is false when some setting could not be compared: the tier is
    then the least the deploy will be.
    """

    tier: int
    action: str
    reasons: tuple[str, ...]
    certain: bool


@dataclass
class _Findings:
    tier: int = 0
    reasons: list[str] = field(default_factory=list)
    certain: bool = True

    def add(self, tier: int, reason: str) -> None:
        self.tier = max(self.tier, tier)
        self.reasons.append(reason)

    def unknown(self, reason: str) -> None:
        self.certain = False
        self.reasons.append(reason)


def decide_tier(desired: Snapshot, server: ServerView, last: Snapshot | None = None,
                last_deployment_id: int | None = None) -> TierDecision:
    """Name the tier of deploying ``desired`` over what ``server`` holds.

    ``last`` is the local record of the last deploy of this (name, tag) to the
    same API, and ``last_deployment_id`` the deployment it went to.
    """
    record = server.record
    if record is None:
        if server.tags:
            reason = (f"new tag: {desired.tag} (the server has {desired.name} under "
                      f"{', '.join(sorted(server.tags))})")
        else:
            reason = f"new deployment: {desired.name}:{desired.tag} is not on the server"
        return TierDecision(4, ACTIONS[4], (reason,), True)

    found = _Findings()
    # the local record speaks for the server's version only if it is that version
    same_deployment = last is not None and last_deployment_id is not None and \
        int_or_none(record.get("id")) == last_deployment_id
    _compare_infrastructure(desired, record, last if same_deployment else None, found)
    _compare_secrets(desired, server, last if same_deployment else None, found)
    _compare_content(desired, record, last, found)
    _compare_scaling(desired, server, last if same_deployment else None, found)
    if not found.reasons:
        found.reasons.append("nothing changed")
    return TierDecision(found.tier, ACTIONS[found.tier], tuple(found.reasons), found.certain)


def action_mismatch(predicted: TierDecision, action: str) -> str | None:
    """A warning when the server's action differs from the plan's, else None."""
    if action == predicted.action:
        return None
    tiers = {name: tier for tier, name in ACTIONS.items()}
    server_tier = f"Tier {tiers[action]}" if action in tiers else "an unknown tier"
    return (f"the server answered '{action}' ({server_tier}) where the plan expected "
            f"'{predicted.action}' (Tier {predicted.tier})")


# -- Tier 3: what the workers' machines and images are ------------------------------------

def _compare_infrastructure(desired: Snapshot, record: Mapping[str, Any],
                            last: Snapshot | None, found: _Findings) -> None:
    checks = (("image", "image", _plain_change),
              ("env", "docker options", _env_change),
              ("search_params", "search", _search_change),
              ("storage", "storage", _storage_change),
              ("docker_login_user", "registry login user", _plain_change),
              ("docker_login_repo", "registry login host", _plain_change))
    for key, label, describe in checks:
        want = desired.config.get(key)
        if key in record:  # null is an answer too: the server holds no such option
            have, source = record[key], ""
        elif last is not None and key in last.config:
            have, source = last.config[key], " (per the local record of the last deploy)"
        else:
            if want is not None:
                found.unknown(f"{label}: cannot compare (the server does not report it and "
                              "there is no local record of the last deploy)")
            continue
        change = describe(have, want)
        if change:
            found.add(3, f"{label} changed: {change}{source}")


def _compare_secrets(desired: Snapshot, server: ServerView, last: Snapshot | None,
                     found: _Findings) -> None:
    """Secrets by name, their values by fingerprint: added, removed or changed is Tier 3.

    The server's ``env`` names the secrets it holds; their values come as
    fingerprints when it shows them, else from the local record of the last
    deploy. Nothing here ever holds a value, so no reason can print one.
    """
    on_server = server.secrets
    if on_server is None and last is not None:
        on_server = {name: None for name in last.secrets if name != LOGIN_PASSWORD}
    source = " (per the local record of the last deploy)" if server.secrets is None else ""
    if on_server is None:
        if any(name != LOGIN_PASSWORD for name in desired.secrets):
            found.unknown("secrets: cannot compare (the server does not report its docker "
                          "options and there is no local record of the last deploy)")
    else:
        for name in desired.secrets:
            if name != LOGIN_PASSWORD and name not in on_server:
                found.add(3, f"secret {name} added{source}")
        for name in on_server:
            if name not in desired.secrets:
                found.add(3, f"secret {name} removed{source}")
    for name, want in desired.secrets.items():
        if name != LOGIN_PASSWORD and (on_server is None or name not in on_server):
            continue  # unknown or added: said above
        have = (on_server or {}).get(name)
        if have is None and last is not None:
            have = last.secrets.get(name)
        what = "registry password" if name == LOGIN_PASSWORD else f"secret {name}"
        if not want:
            found.unknown(f"{what}: cannot compare (no value given)")
        elif not have or not same_key(have, want):
            found.unknown(f"{what}: cannot compare (the server hides it and the local record "
                          "of the last deploy has no fingerprint made with this machine's key)")
        elif have != want:
            found.add(3, f"{what} changed")


def _plain_change(have: Any, want: Any) -> str | None:
    return None if have == want else f"{have} → {want}"


def _storage_change(have: Any, want: Any) -> str | None:
    try:
        if float(have) == float(want if want is not None else DEFAULT_STORAGE_GB):
            return None
    except (TypeError, ValueError):
        pass
    return f"{_number(have)} → {_number(want)} GB"


def _env_change(have: Any, want: Any) -> str | None:
    """Docker options without the secrets (compared by :func:`_compare_secrets`)."""
    return _set_change(split_secrets(str(have or ""))[0], split_secrets(str(want or ""))[0])


def _search_change(have: Any, want: Any) -> str | None:
    return _set_change(_terms(str(have or "")), _terms(str(want or "")))


def _set_change(have: list[str], want: list[str]) -> str | None:
    if have == want:
        return None
    added = [item for item in want if item not in have]
    removed = [item for item in have if item not in want]
    parts = []
    if added:
        parts.append("+ " + ", ".join(added))
    if removed:
        parts.append("- " + ", ".join(removed))
    return "; ".join(parts) or "same items, new order"


def _terms(search: str) -> list[str]:
    """Search terms; ``gpu_name in A,B`` is one term though it holds spaces."""
    terms: list[str] = []
    words = search.split()
    i = 0
    while i < len(words):
        if i + 2 < len(words) and words[i + 1] in ("in", "notin"):
            terms.append(" ".join(words[i:i + 3]))
            i += 3
        else:
            terms.append(words[i])
            i += 1
    return terms


# -- Tier 2: what the tarball holds --------------------------------------------------------

def _compare_content(desired: Snapshot, record: Mapping[str, Any], last: Snapshot | None,
                     found: _Findings) -> None:
    have = record.get("file_hash")
    if not have:
        found.unknown("content: cannot compare (the server reports no file_hash)")
        return
    if have == desired.file_hash:
        return
    if last is None or last.file_hash != have:
        found.add(2, f"content changed: file_hash {_short(have)} → {_short(desired.file_hash)} "
                     "(which files changed is unknown: the server's version was not "
                     "deployed from here)")
        return
    before = len(found.reasons)
    _manifest_reasons(desired, last, found)
    _worker_config_reasons(desired, last, found)
    if len(found.reasons) == before:
        found.add(2, f"content changed: file_hash {_short(have)} → {_short(desired.file_hash)}")


def _manifest_reasons(desired: Snapshot, last: Snapshot, found: _Findings) -> None:
    for arcname in sorted(set(desired.manifest) | set(last.manifest)):
        if arcname.removeprefix("./") == "config.json":
            continue  # its meaning is compared key by key below
        old, new = last.manifest.get(arcname), desired.manifest.get(arcname)
        if old == new:
            continue
        verb = "added" if old is None else "removed" if new is None else "changed"
        found.add(2, f"{_describe_member(arcname, desired.code_name)} {verb}")


def _describe_member(arcname: str, code_name: str) -> str:
    """``deployment.py`` is CODE's file; ``deployment/x.py`` a file of CODE's package;
    anything else arrived by COPY."""
    path = arcname.removeprefix("./")
    if path == "deployment.py":
        return f"code: {code_name}"
    if path.startswith("deployment/"):
        return f"code: {code_name.rstrip('/')}/{path.removeprefix('deployment/')}"
    return f"copy: {path}"


def _worker_config_reasons(desired: Snapshot, last: Snapshot, found: _Findings) -> None:
    new, old = desired.worker_config, last.worker_config
    if not new or not old:
        if desired.components.get("config") != last.components.get("config") or \
                desired.components.get("requirements") != last.components.get("requirements"):
            found.add(2, "config.json changed")
        return
    for key, label in (("pip_installs", "pip"), ("apt_gets", "apt")):
        change = _set_change(list(old.get(key, [])), list(new.get(key, [])))
        if change:
            found.add(2, f"requirements: {label} {change}")
    old_env, new_env = dict(map(tuple, old.get("envs", []))), dict(map(tuple, new.get("envs", [])))
    for name in sorted(set(old_env) | set(new_env)):
        # names only: an ENV value may be a secret and a plan is printed
        if name not in old_env:
            found.add(2, f"config: ENV {name} added")
        elif name not in new_env:
            found.add(2, f"config: ENV {name} removed")
        elif old_env[name] != new_env[name]:
            found.add(2, f"config: ENV {name} changed")
    if list(old.get("runs", [])) != list(new.get("runs", [])):
        found.add(2, "config: RUN steps changed")
    if old.get("name") != new.get("name"):
        found.add(2, f"config: name {old.get('name')!r} → {new.get('name')!r}")


# -- Tier 1: how the endpoint scales ------------------------------------------------------

def _compare_scaling(desired: Snapshot, server: ServerView, last: Snapshot | None,
                     found: _Findings) -> None:
    wanted = [s.name for s in AUTOSCALE_SETTINGS if s.name in desired.config]
    endpoint = server.endpoint
    for key in wanted:
        if endpoint is not None and endpoint.get(key) is not None:
            have, source = endpoint[key], ""
        elif last is not None and key in last.config:
            have, source = last.config[key], " (per the local record of the last deploy)"
        else:
            found.unknown(f"autoscale: cannot compare {key} (the server does not report the "
                          "endpoint's settings)")
            continue
        if not _same_number(have, desired.config[key]):
            found.add(1, f"autoscale: {key} {_number(have)} → "
                         f"{_number(desired.config[key])}{source}")
    for setting in AUTOSCALE_SETTINGS:
        # a registration declares the whole endpoint (assumed, as the dev server
        # does): a setting it leaves out returns to the server's default
        key = setting.name
        if key in desired.config:
            continue
        if endpoint is not None and key in endpoint:
            have = endpoint[key]
        elif last is not None and key in last.config:
            have = last.config[key]
        else:
            continue
        default = setting.default
        if not _same_number(have, default):
            found.add(1, f"autoscale: {key} {_number(have)} → {_number(default)} (not set in "
                         "the Vastfile: the server's default)")

    record = server.record or {}
    want_ttl = desired.config.get("ttl")
    if "ttl" in record:
        if not _same_number(record["ttl"], want_ttl):
            found.add(1, f"ttl: {_number(record['ttl'])} → {_number(want_ttl)}")
    elif last is not None:
        if not _same_number(last.config.get("ttl"), want_ttl):
            found.add(1, f"ttl: {_number(last.config.get('ttl'))} → {_number(want_ttl)}"
                         " (per the local record of the last deploy)")
    elif want_ttl is not None:
        found.unknown("ttl: cannot compare (the server does not report it)")

    want_label = desired.config.get("version_label")
    have_label, known = _server_version_label(server)
    source = ""
    if not known and last is not None:
        have_label, known = last.config.get("version_label"), True
        source = " (per the local record of the last deploy)"
    if known:
        if (have_label or None) != (want_label or None):
            found.add(1, f"version: {have_label or 'none'} → {want_label or 'none'}{source}")
    elif want_label is not None:
        found.unknown("version: cannot compare (the server's versions carry no label)")


def _server_version_label(server: ServerView) -> tuple[Any, bool]:
    """The label of the version the server serves, and whether it is known."""
    if not server.versions or server.record is None:
        return None, False
    current = int_or_none(server.record.get("current_version_id"))
    chosen = next((v for v in server.versions if int_or_none(v.get("id")) == current),
                  server.versions[-1])
    if "version_label" not in chosen:
        return None, False
    return chosen["version_label"], True


# -- helpers -------------------------------------------------------------------------------

def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return bool(a == b)


def _number(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _short(digest: Any) -> str:
    return str(digest)[:12]  # the server's file_hash may be anything
