"""vastbuild: a compiler-style build tool for Vast.ai serverless deployments.

The library API (``load``, ``check_file`` ...) is what the CLI uses; Python
users import it the same way.
"""

__version__ = "0.1.0"
