// Tokenizes files with a TextMate grammar the way VS Code does (vscode-textmate on
// the Oniguruma regex engine) and prints, as JSON, each file's tokens: for every
// line, each token's text and scopes. tests/test_editors.py reads the output.
//
//   node tokenize.js GRAMMAR.tmLanguage.json FILE...
"use strict";

const fs = require("fs");
const path = require("path");
const oniguruma = require("vscode-oniguruma");
const vsctm = require("vscode-textmate");

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  const wasm = fs.readFileSync(
    path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.length));
  const grammarText = fs.readFileSync(grammarPath, "utf8");
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async () => vsctm.parseRawGrammar(grammarText, grammarPath),
  });
  const grammar = await registry.loadGrammar(JSON.parse(grammarText).scopeName);
  const result = {};
  for (const file of files) {
    let stack = vsctm.INITIAL;
    result[file] = fs.readFileSync(file, "utf8").split(/\r?\n/).map((line) => {
      const { tokens, ruleStack } = grammar.tokenizeLine(line, stack);
      stack = ruleStack;
      return tokens.map((token) => ({
        text: line.slice(token.startIndex, token.endIndex),
        scopes: token.scopes,
      }));
    });
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
