"""A local stand-in for the Vast deployment API, for offline development and tests.

``vastbuild dev-server`` (or :class:`DevServer` in-process) serves the web API,
the autoscaler's routes (rolling updates, logs, workers) and S3-style blob
storage on one port, simulates workers on a clock, keeps its state under a data
folder, and keeps API keys apart: docs/dev-server.md.
"""

from vastbuild.devserver.context import DevServerOptions
from vastbuild.devserver.server import DevServer

__all__ = ["DevServer", "DevServerOptions"]
