"""``vastbuild lsp``: the Vastfile language server (docs/lsp.md).

An editor gets what ``vastbuild check`` and ``vastbuild fmt`` say, while the user
types, plus what the language's own tables know: hover and completion take the
directive table (:mod:`vastbuild.directives` and the plugin registry), the query
catalog (:mod:`vastbuild.catalog`) and the AUTOSCALE settings (:mod:`vastbuild.model`),
so that the server never holds a second description of the language.

- :mod:`vastbuild.lsp.positions`: the parser's 1-based code point columns as the
  editor's 0-based (UTF-16) positions, and back;
- :mod:`vastbuild.lsp.vocabulary`: what a directive, a column, a GPU constant or an
  AUTOSCALE key means, and the words that may be written where;
- :mod:`vastbuild.lsp.cursor`: what the text before the cursor is in the middle of;
- :mod:`vastbuild.lsp.server`: the requests, answered over stdio with pygls.
"""
