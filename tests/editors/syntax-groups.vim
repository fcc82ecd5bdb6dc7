" Writes, for each file in the argument list, the file type Vim detected and the
" syntax group of every run of characters, as JSON into g:output:
" {full path: {"filetype": ..., "lines": [[[text, group], ...], ...]}}.
" tests/test_editors.py runs it with `vim -es` after loading editors/vim.
let s:result = {}
for s:file in argv()
  execute 'edit ' . fnameescape(s:file)
  let s:lines = []
  for s:number in range(1, line('$'))
    let s:text = getline(s:number)
    let s:runs = []
    for s:col in range(1, len(s:text))
      let s:group = synIDattr(synID(s:number, s:col, 1), 'name')
      if !empty(s:runs) && s:runs[-1][1] ==# s:group
        let s:runs[-1][0] .= s:text[s:col - 1]
      else
        call add(s:runs, [s:text[s:col - 1], s:group])
      endif
    endfor
    call add(s:lines, s:runs)
  endfor
  let s:result[fnamemodify(s:file, ':p')] = {'filetype': &filetype, 'lines': s:lines}
endfor
call writefile([json_encode(s:result)], g:output)
