// The Vastfile extension's client: it runs `vastbuild lsp` (docs/lsp.md) on its
// stdin/stdout for every Vastfile VS Code opens, and restarts it when the
// `vastbuild.path` setting changes. Highlighting needs none of this: it comes from
// the grammar in syntaxes/, so it works even where vastbuild is not installed.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

const SECTION = "vastbuild";
let client;

// The program to run: the `vastbuild.path` setting, where `${workspaceFolder}` stands
// for the first workspace folder (VS Code does not expand variables in settings).
function program() {
  const configured = vscode.workspace.getConfiguration(SECTION).get("path") || "vastbuild";
  const folder = (vscode.workspace.workspaceFolders || [])[0];
  return folder ? configured.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath) : configured;
}

async function start() {
  const command = program();
  client = new LanguageClient(
    SECTION,
    "vastbuild",
    { command, args: ["lsp"], transport: TransportKind.stdio },
    { documentSelector: [{ language: "vastfile" }] },
  );
  try {
    await client.start();
  } catch (error) {
    client = undefined;
    vscode.window.showErrorMessage(
      `vastbuild: could not start \`${command} lsp\` (${error.message || error}). ` +
      "Install it with `pip install 'vastbuild[lsp]'`, or set `vastbuild.path` to the " +
      "vastbuild program of your virtual environment.");
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function activate(context) {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration(`${SECTION}.path`)) {
        await stop();
        await start();
      }
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
