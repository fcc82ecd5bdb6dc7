"""``python -m vastbuild``: the same as the ``vastbuild`` console script."""

from vastbuild.cli import main

main()
