"""vastbuild-template: an example vastbuild plugin.

It adds the directive ``TEMPLATE src dst KEY=VALUE...`` to the Vastfile
language (:mod:`vastbuild_template.directive`) and the ``template`` step kind
that renders it into the deployment tarball (:mod:`vastbuild_template.step`),
through the two entry point groups vastbuild reads, ``vastbuild.directives``
and ``vastbuild.steps``: vastbuild itself is not changed.
"""
