// Runs the VS Code extension's activate/deactivate (editors/vscode/extension.js)
// against stand-ins for the `vscode` API and the language client, and prints as
// JSON what it did: each server it started (command, arguments, documents) and
// each client it stopped. tests/test_editors.py reads the output.
//
//   node extension-client.js EXTENSION.js
"use strict";

const Module = require("module");

const settings = {};
const listeners = [];
const events = [];

class LanguageClient {
  constructor(id, name, server, options) {
    this.server = server;
    events.push({ event: "create", id, command: server.command, args: server.args,
                  transport: server.transport, documents: options.documentSelector });
  }
  async start() { events.push({ event: "start", command: this.server.command }); }
  async stop() { events.push({ event: "stop", command: this.server.command }); }
}

const standIns = {
  vscode: {
    workspace: {
      getConfiguration: (section) => ({ get: (key) => settings[`${section}.${key}`] }),
      workspaceFolders: [{ uri: { fsPath: "/projects/llm" } }],
      onDidChangeConfiguration: (listener) => {
        listeners.push(listener);
        return { dispose() {} };
      },
    },
    window: { showErrorMessage: (message) => events.push({ event: "error", message }) },
  },
  "vscode-languageclient/node": { LanguageClient, TransportKind: { stdio: "stdio" } },
};

const load = Module._load;
Module._load = function (request, ...rest) {
  return request in standIns ? standIns[request] : load.call(this, request, ...rest);
};

async function main() {
  const extension = require(require("path").resolve(process.argv[2]));
  const context = { subscriptions: [] };
  await extension.activate(context);
  settings["vastbuild.path"] = "${workspaceFolder}/.venv/bin/vastbuild";
  const changed = { affectsConfiguration: (name) => name === "vastbuild.path" };
  for (const listener of listeners) await listener(changed);
  await extension.deactivate();
  process.stdout.write(JSON.stringify(
    { events, subscriptions: context.subscriptions.length }));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
