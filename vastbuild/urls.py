"""The URLs vastbuild speaks to: Vast's defaults, and how a URL given is checked.

Apart from :mod:`vastbuild.wire` so that a warm ``vastbuild hash``, which checks
its URL options before anything else, imports nothing of the wire formats.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from vastbuild.errors import InvalidArgument

DEFAULT_API_URL = "https://console.vast.ai"
#: the production autoscaler, the one the SDK reports to unless told otherwise
DEFAULT_AUTOSCALER_URL = "https://run.vast.ai"


def check_url(value: str, setting: str) -> str:
    """An http(s) URL with a host, without a trailing slash; :class:`InvalidArgument`
    naming ``setting`` (``api_url``, ``autoscaler_url``) otherwise. Credentials, a
    query string or a fragment are refused: the API key travels in a header only."""
    shown = _without_credentials(value)
    wrong = InvalidArgument(f"{shown!r} is not an http(s)://host[:port] URL",
                            "write the URL as http(s)://host[:port]", setting=setting)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
        if not parts.hostname:
            raise wrong
        parts.hostname.encode("idna")  # raises UnicodeError for an empty or too long label
    except (ValueError, UnicodeError):
        raise wrong from None
    if parts.scheme.lower() not in ("http", "https"):
        raise wrong
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidArgument(
            f"the URL {shown!r} holds credentials, a query string or a "
            "fragment", "give the URL without them; the API key is read from the "
            "environment or a file, and travels in a header only", setting=setting)
    return value.rstrip("/")


def _without_credentials(value: str) -> str:
    """A URL fit for an error message: what stands before an ``@`` is hidden."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "the URL" if "@" in value else value
    if "@" not in parts.netloc:
        return value
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
