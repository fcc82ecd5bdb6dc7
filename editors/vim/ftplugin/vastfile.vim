" Comments in Vastfiles are `#` lines (docs/vastfile.md), so that gc/gq and
" 'formatoptions' treat them as comments.
if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1
setlocal comments=:# commentstring=#\ %s
let b:undo_ftplugin = "setlocal comments< commentstring<"
