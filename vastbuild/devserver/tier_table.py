"""The tier table: which ``action`` a registration gets, from what the server held before.

The highest tier any changed field reaches decides the action:

========================================================  ====================
what differs from the deployment's current registration   action
========================================================  ====================
nothing                                                   ``exists``
only autoscaling settings, ``ttl``, ``version_label``      ``autoscale_update``
``file_hash`` (the code), nothing of the next row          ``soft_update``
image, env, search_params, storage, registry login         ``hard_update``
========================================================  ====================

A new (name, tag) for an account is ``created``. ``file_size`` is not compared:
the content hash names the content, and the same content packed by another
compressor may differ in size without being a change.
"""

from __future__ import annotations

from dataclasses import dataclass

from vastbuild.devserver.registration import Registration

CREATED = "created"
EXISTS = "exists"
AUTOSCALE_UPDATE = "autoscale_update"
SOFT_UPDATE = "soft_update"
HARD_UPDATE = "hard_update"

#: Fields whose change needs new containers (tier 3).
HARD_FIELDS: tuple[str, ...] = (
    "image", "env", "search_params", "storage",
    "docker_login_user", "docker_login_repo", "docker_login_pass_digest",
)
#: Fields whose change needs new code on the same containers (tier 2).
CODE_FIELDS: tuple[str, ...] = ("file_hash",)
#: Settings outside the autoscale block that count as tier 1.
SETTINGS_FIELDS: tuple[str, ...] = ("ttl", "version_label", "autoscaler_instance")


@dataclass(frozen=True)
class Decision:
    """The action and every field that differs (for the version history and for humans)."""

    action: str
    changed: tuple[str, ...]


def decide(current: Registration | None, new: Registration) -> Decision:
    """Name the action for registering ``new`` over ``current`` (None: no such deployment)."""
    if current is None:
        return Decision(CREATED, ())
    changed_hard = _differing(current, new, HARD_FIELDS)
    changed_code = _differing(current, new, CODE_FIELDS)
    changed_settings = _differing(current, new, SETTINGS_FIELDS) + tuple(
        name for name in new.autoscale if current.autoscale.get(name) != new.autoscale[name])
    changed = changed_hard + changed_code + changed_settings
    if changed_hard:
        return Decision(HARD_UPDATE, changed)
    if changed_code:
        return Decision(SOFT_UPDATE, changed)
    if changed_settings:
        return Decision(AUTOSCALE_UPDATE, changed)
    return Decision(EXISTS, ())


def _differing(current: Registration, new: Registration, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in names if getattr(current, name) != getattr(new, name))
