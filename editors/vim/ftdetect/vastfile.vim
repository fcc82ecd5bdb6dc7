" Vastfiles and the fragments they INCLUDE (docs/editors.md).
autocmd BufNewFile,BufRead Vastfile,*.vastfile,*.vast setfiletype vastfile
