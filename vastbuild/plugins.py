"""One registry for directives and step kinds, vastbuild's own and installed plugins'.

vastbuild's own directives (:data:`vastbuild.directives.DIRECTIVES`) and step
kinds (:func:`builtin_step_kinds`) are registered in code, so a checkout runs
without being installed. A plugin adds either kind of thing through an entry
point: the group ``vastbuild.directives`` names a directive by its keyword,
``vastbuild.steps`` a step kind by its name. Both follow the same rules, and
break them with the same error codes:

- E052: a plugin may not take a name vastbuild uses (``COPY``, ``collect``),
  and two plugins may not take one name; the error names both claimants.
- E023: a plugin that does not import, is not what its group needs, or fails
  while checking a directive.

The entry points are read once per process, in one scan of the installed
distributions. A directive's object is imported only when a Vastfile uses its
keyword; step kinds are imported when a build is planned, since every kind is
asked whether it contributes files.
"""

from __future__ import annotations

import difflib
import sys
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint

from vastbuild.directives import BUILTIN_KEYWORDS, DirectivePlugin
from vastbuild.errors import VastbuildError
from vastbuild.steps.base import StepKind, require_kind_shape

DIRECTIVE_GROUP = "vastbuild.directives"
STEP_GROUP = "vastbuild.steps"
#: a plugin failed to load, is not what its group needs, or raised
LOAD_FAILED = "E023"
#: a plugin took a name that vastbuild or another plugin holds
NAME_TAKEN = "E052"


class PluginError(VastbuildError):
    """A plugin cannot be used; ``code`` is :data:`LOAD_FAILED` or :data:`NAME_TAKEN`."""

    def __init__(self, code: str, message: str, hint: str):
        super().__init__(f"[{code}] {message}", hint)
        self.code = code
        self.reason = message


def builtin_step_kinds() -> tuple[StepKind, ...]:
    """vastbuild's own step kinds."""
    from vastbuild.steps.assemble import Assemble
    from vastbuild.steps.collect import Collect
    from vastbuild.steps.compress import Compress
    from vastbuild.steps.config import Config

    return (Collect(), Config(), Compress(), Assemble())


#: the names of vastbuild's own step kinds (the registry checks it against the kinds)
BUILTIN_STEP_NAMES = ("collect", "config", "compress", "assemble")


@dataclass(frozen=True)
class Claim:
    """An entry point, as an error names it."""

    point: EntryPoint

    def __str__(self) -> str:
        dist = self.point.dist
        owner = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
        return f"{owner} (entry point `{self.point.name} = {self.point.value}`)"


def _claims(points: Iterable[EntryPoint], builtin: Iterable[str],
            what: str) -> dict[str, EntryPoint]:
    """Entry points by the name they claim; a built-in name or a name claimed twice
    is a :class:`PluginError` naming both claimants."""
    taken = set(builtin)
    found: dict[str, EntryPoint] = {}
    for point in sorted(points, key=lambda p: (p.name, p.value)):
        name = point.name.upper() if what == "directive" else point.name
        if name in taken:
            raise PluginError(
                NAME_TAKEN, f"the plugin {Claim(point)} registers the {what} `{name}`, which "
                "is vastbuild's own", "uninstall the plugin, or ask its authors to rename it")
        if name in found:
            raise PluginError(
                NAME_TAKEN, f"two plugins register the {what} `{name}`: {Claim(found[name])} "
                f"and {Claim(point)}", "uninstall one of the two")
        found[name] = point
    return found


class Registry:
    """The directives and step kinds of this process: built-ins, then installed plugins."""

    def __init__(self, directive_points: Iterable[EntryPoint] = (),
                 step_points: Iterable[EntryPoint] = ()):
        self._directive_points = _claims(directive_points, BUILTIN_KEYWORDS, "directive")
        self._step_points = _claims(step_points, BUILTIN_STEP_NAMES, "step kind")
        self._directives: dict[str, DirectivePlugin] = {}
        self._kinds: dict[str, StepKind] | None = None
        self._lock = threading.Lock()

    @classmethod
    def installed(cls) -> Registry:
        """The registry of what this Python environment has installed. Entry points of
        vastbuild's own distribution are not plugins (metadata an older version left)."""
        from importlib.metadata import entry_points

        def plugins_in(group: str) -> list[EntryPoint]:
            return [p for p in entry_points(group=group)
                    if p.dist is None or p.dist.name.lower() != "vastbuild"]

        return cls(plugins_in(DIRECTIVE_GROUP), plugins_in(STEP_GROUP))

    # -- directives --------------------------------------------------------------

    def plugin_keywords(self) -> tuple[str, ...]:
        """The keywords installed plugins add, sorted."""
        return tuple(sorted(self._directive_points))

    def known_keywords(self) -> tuple[str, ...]:
        """Every keyword a Vastfile may use here: built-ins, then plugins'."""
        return BUILTIN_KEYWORDS + self.plugin_keywords()

    def nearest_keyword(self, keyword: str) -> str | None:
        """The known keyword ``keyword`` was most likely meant to be (``FORM`` -> ``FROM``)."""
        matches = difflib.get_close_matches(keyword.upper(), self.known_keywords(), n=1,
                                            cutoff=0.6)
        return matches[0] if matches else None

    def directive(self, keyword: str) -> DirectivePlugin | None:
        """The plugin that claims ``keyword`` (upper case), imported on first use;
        None when no plugin does. Raises :class:`PluginError` when it cannot load."""
        point = self._directive_points.get(keyword)
        if point is None:
            return None
        with self._lock:
            if keyword not in self._directives:
                plugin = _load(point, "directive")
                if not isinstance(plugin, DirectivePlugin) or not callable(plugin.check) \
                        or str(plugin.keyword).upper() != keyword:
                    raise PluginError(
                        LOAD_FAILED, f"the plugin for {keyword} ({point.value}) has no "
                        f"`keyword = {keyword!r}` or no `check(node, context)`",
                        "reinstall the plugin, or remove the directive")
                self._directives[keyword] = plugin
            return self._directives[keyword]

    # -- step kinds ----------------------------------------------------------------

    def step_kinds(self) -> Mapping[str, StepKind]:
        """Every step kind, by name: built-ins first, then plugins' in name order."""
        with self._lock:
            if self._kinds is None:
                kinds = {kind.name: kind for kind in builtin_step_kinds()}
                assert tuple(kinds) == BUILTIN_STEP_NAMES
                for name, point in self._step_points.items():
                    loaded = _load(point, "step kind")
                    kind = loaded() if isinstance(loaded, type) else loaded
                    problem = require_kind_shape(kind)
                    if problem is None and getattr(kind, "name", None) != name:
                        problem = f"its `name` is not `{name}`"
                    if problem is not None or not isinstance(kind, StepKind):
                        raise PluginError(
                            LOAD_FAILED, f"the step kind {Claim(point)} cannot be used: "
                            f"{problem}", "reinstall or uninstall the plugin that provides it")
                    kinds[name] = kind
                self._kinds = kinds
            return self._kinds

    def step_kind(self, name: str) -> StepKind:
        found = self.step_kinds().get(name)
        if found is None:
            raise PluginError(LOAD_FAILED, f"no step kind `{name}` is installed",
                              "install the plugin that provides it")
        return found

    def plugin_step_kinds(self) -> list[StepKind]:
        """The installed plugins' step kinds, in name order."""
        kinds = self.step_kinds()
        return [kinds[name] for name in sorted(self._step_points)]

    def loaded_plugin_files(self) -> list[str]:
        """The source files of the plugins this process imported: what a result that
        used them depends on, besides the installed distributions."""
        objects: list[object] = [*self._directives.values()]
        if self._kinds is not None:
            objects += [self._kinds[name] for name in self._step_points]
        files = []
        for plugin in objects:
            module = plugin if isinstance(plugin, types.ModuleType) else \
                sys.modules.get(getattr(plugin, "__module__", None) or type(plugin).__module__)
            found = getattr(module, "__file__", None)
            if isinstance(found, str):
                files.append(found)
        return sorted(set(files))


def _load(point: EntryPoint, what: str) -> object:
    try:
        return point.load()
    except Exception as exc:  # any failure of third-party code is the plugin's
        raise PluginError(LOAD_FAILED, f"the plugin for the {what} `{point.name}` "
                          f"({point.value}) failed to import: {type(exc).__name__}: {exc}",
                          "reinstall the plugin, or uninstall it") from None


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """This process's registry, read from the installed entry points on first use."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = Registry.installed()
        return _registry


def use_registry(replacement: Registry | None) -> Registry | None:
    """Make ``replacement`` this process's registry (``None``: read the installed one
    again on next use); returns the one it replaces. For tests and embedders."""
    global _registry
    with _registry_lock:
        previous, _registry = _registry, replacement
        return previous
