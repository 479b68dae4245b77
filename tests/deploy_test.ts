// deploy/Dockerfile, .dockerignore and deploy/systemd/monzo-exporter.service, checked as far as this
// machine allows: images cannot be pulled here and systemd is not running, so the image's build stage is
// replayed on a copy of the build context, its command and health check are run with the real program,
// and the unit goes through `systemd-analyze verify` and `systemd-analyze security`.

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseCli } from "../lib/config/cli.ts";
import { parseListenAddress } from "../lib/config/listen_address.ts";
import { parse as parseYaml } from "yaml";
import { binaryExists, explainSkip, freePort, get, PROGRAM, ROOT, spawn, waitFor } from "./helpers/e2e.ts";
import { AUTH_KEY, CLIENT_ID, CLIENT_SECRET, withTempDir } from "./helpers/harness.ts";
import { projectFiles } from "./helpers/project_copy.ts";

const DOCKERFILE = join(ROOT, "deploy/Dockerfile");
const UNIT = join(ROOT, "deploy/systemd/monzo-exporter.service");
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
/** `systemd-analyze security` scored the unit 3.2 ("OK") with systemd 252; more means protection was lost. */
const MAX_EXPOSURE = 3.5;

// ---- Dockerfile ----

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly stage: number;
}

/** The Dockerfile's instructions (continuation lines joined, comments dropped), numbered by stage. */
function dockerInstructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, " ").split("\n").map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  let stage = -1;
  return joined.map((line) => {
    const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === "FROM") stage++;
    return { keyword: keyword.toUpperCase(), args, stage };
  });
}

/** An exec-form (JSON array) argument list; the image has no shell, so shell form is refused. */
function execForm(args: string): string[] {
  assert.match(args, /^\[.*\]$/, `not exec form (the image has no shell): ${args}`);
  return JSON.parse(args);
}

/** `--flag value` pairs and the rest of an instruction's words. */
function flagsOf(args: string): { flags: Map<string, string>; words: string[] } {
  const flags = new Map<string, string>();
  const words: string[] = [];
  for (const word of args.split(/\s+/)) {
    const flag = /^--([\w-]+)=(.*)$/.exec(word);
    if (flag) flags.set(flag[1], flag[2]);
    else words.push(word);
  }
  return { flags, words };
}

/**
 * Whether .dockerignore leaves `path` out of the build context, with Docker's rules: the last pattern that
 * matches the path or one of its parent folders decides; `!` lets back in. Only `*` and `?` are supported.
 */
function dockerIgnores(patterns: readonly string[], path: string): boolean {
  let ignored = false;
  const parts = path.split("/");
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, "");
    assert.doesNotMatch(pattern, /[\[\\]|\*\*/, `this test does not understand the pattern ${raw}`);
    const regex = new RegExp(
      `^${pattern.replace(/[.+^${}()|]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`,
    );
    if (candidates.some((candidate) => regex.test(candidate))) ignored = !negated;
  }
  return ignored;
}

async function dockerignorePatterns(): Promise<string[]> {
  return (await Deno.readTextFile(join(ROOT, ".dockerignore"))).split("\n").map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

Deno.test(".dockerignore keeps secrets, state and tests out of the build context (the matcher itself checked too)", async () => {
  const patterns = await dockerignorePatterns();
  for (
    const path of [
      "config.toml",
      "tokens.json",
      "monzo-exporter.kv",
      "tests/app_test.ts",
      ".git/config",
      "monzo-exporter",
    ]
  ) {
    assert.ok(dockerIgnores(patterns, path), `${path} would be sent to the Docker daemon`);
  }
  for (const path of ["main.ts", "deno.json", "deno.lock", "lib/http/app.ts", "lib/fake_monzo/mod.ts"]) {
    assert.ok(!dockerIgnores(patterns, path), `${path} is left out of the build context`);
  }
  // Docker's rules, which the matcher must follow for the checks above to mean anything.
  assert.ok(dockerIgnores(["*"], "lib/http/app.ts"), "a parent folder's match must count");
  assert.ok(!dockerIgnores(["*", "!lib"], "lib/http/app.ts"));
  assert.ok(dockerIgnores(["*", "!lib", "lib/secret.ts"], "lib/secret.ts"), "the last match must win");
});

Deno.test("the image's build stage, replayed on the build context: its COPYs bring all the compile needs", async () => {
  const instructions = dockerInstructions(await Deno.readTextFile(DOCKERFILE));
  const patterns = await dockerignorePatterns();
  const context = (await projectFiles()).filter((file) => !dockerIgnores(patterns, file));
  const build = instructions.filter((i) => i.stage === 0);
  assert.match(build[0].args, /^denoland\/deno:\S+ AS build$/i);

  await withTempDir(async (dir) => {
    const root = join(dir, "rootfs");
    let workdir = "/";
    const compiled: string[] = [];
    for (const instruction of build.slice(1)) {
      if (instruction.keyword === "WORKDIR") {
        workdir = instruction.args;
        await Deno.mkdir(join(root, workdir), { recursive: true });
      } else if (instruction.keyword === "COPY") {
        const { flags, words } = flagsOf(instruction.args);
        assert.equal(flags.size, 0, `COPY ${instruction.args}: this replay copies from the context only`);
        const dest = join(root, workdir, words.at(-1) ?? "");
        for (const source of words.slice(0, -1)) {
          const prefix = source.replace(/\/$/, "");
          const matched = context.filter((file) => file === prefix || file.startsWith(`${prefix}/`));
          assert.ok(matched.length > 0, `COPY ${source}: not in the build context (.dockerignore?)`);
          for (const file of matched) {
            // A file copied into a folder keeps its own name, as Docker does.
            const target = file === prefix
              ? join(dest, file.split("/").at(-1) ?? file)
              : join(dest, file.slice(prefix.length + 1));
            await Deno.mkdir(join(target, ".."), { recursive: true });
            await Deno.copyFile(join(ROOT, file), target);
          }
        }
      } else if (instruction.keyword === "RUN" && instruction.args.startsWith("deno task ")) {
        // Deno's image would download the runtime; this machine's Deno stands in for it.
        const output = await new Deno.Command("bash", {
          args: ["-e", "-c", instruction.args],
          cwd: join(root, workdir),
          env: { DENORT_BIN: Deno.execPath(), NO_COLOR: "1" },
          stdin: "null",
        }).output();
        const said = new TextDecoder().decode(output.stderr);
        assert.equal(output.code, 0, `RUN ${instruction.args} failed in the replayed context:\n${said}`);
        compiled.push(instruction.args);
      }
    }
    assert.ok(compiled.length > 0, "the build stage compiles nothing");
    // What the final stage takes from the build stage and was made by the replayed steps is there.
    const fromBuild = instructions.filter((i) =>
      i.stage === 1 && i.keyword === "COPY" && i.args.includes("--from=build")
    );
    const binary = flagsOf(fromBuild[0].args).words[0];
    assert.ok(Deno.statSync(join(root, binary)).isFile, `${binary} was not built`);
  });
});

Deno.test("the image runs as non-root on distroless, exec form only, with the release workflow's and .ci/run's Deno", async () => {
  const instructions = dockerInstructions(await Deno.readTextFile(DOCKERFILE));
  const final = instructions.filter((i) => i.stage === Math.max(...instructions.map((x) => x.stage)));
  assert.equal(final[0].args, "gcr.io/distroless/cc-debian12:nonroot");
  const user = final.find((i) => i.keyword === "USER")?.args ?? "";
  assert.doesNotMatch(user, /^(0|root)(:|$)/, `runs as ${user}`);
  for (const keyword of ["ENTRYPOINT", "CMD"]) execForm(final.find((i) => i.keyword === keyword)?.args ?? "");
  const healthcheck = final.find((i) => i.keyword === "HEALTHCHECK")?.args ?? "";
  execForm(healthcheck.slice(healthcheck.indexOf("CMD ") + 4));

  const workflow = parseYaml(await Deno.readTextFile(join(ROOT, ".github/workflows/release.yml"))) as {
    jobs: { build: { steps: { uses?: string; with?: { "deno-version"?: string } }[] } };
  };
  const setup = workflow.jobs.build.steps.find((s) => s.uses?.startsWith("denoland/setup-deno"));
  const tag = /^denoland\/deno:(\S+) /.exec(instructions[0].args)?.[1];
  assert.match(tag ?? "", /^2\.\d+\.\d+$/, "the build stage's Deno is not a pinned 2.x");
  assert.equal(setup?.with?.["deno-version"], `v${tag}`, "the image and the release binaries use different Denos");
  // .ci/run installs and runs the tests with the same Deno.
  const ci = await Deno.readTextFile(join(ROOT, ".ci/run"));
  assert.equal(/^DENO_VERSION=(\S+)$/m.exec(ci)?.[1], tag, ".ci/run pins another Deno than the image");
});

Deno.test("the image's command and health check, run with the real program: it serves, --healthcheck says 0, SIGTERM ends it with 0", async () => {
  const instructions = dockerInstructions(await Deno.readTextFile(DOCKERFILE));
  const final = instructions.filter((i) => i.stage === 1);
  const entrypoint = execForm(final.find((i) => i.keyword === "ENTRYPOINT")?.args ?? "");
  const command = execForm(final.find((i) => i.keyword === "CMD")?.args ?? "");
  const healthcheck = final.find((i) => i.keyword === "HEALTHCHECK")?.args ?? "";
  const probe = execForm(healthcheck.slice(healthcheck.indexOf("CMD ") + 4));
  const workdir = final.find((i) => i.keyword === "WORKDIR")?.args;
  const exposed = Number(final.find((i) => i.keyword === "EXPOSE")?.args);
  const volume = JSON.parse(final.find((i) => i.keyword === "VOLUME")?.args ?? "[]");
  assert.equal(workdir, "/data");
  assert.deepEqual(volume, ["/data"]);
  assert.equal(entrypoint[0], "/monzo-exporter");
  assert.equal(probe[0], entrypoint[0], "the health check runs another program than the image's");

  // The port the image exposes is the one the example config (and the demo) listens on.
  const example = await Deno.readTextFile(join(ROOT, "config.example.toml"));
  const serverAddr = /^server_addr = "(.+)"$/m.exec(example)?.[1] ?? "";
  const listen = parseListenAddress(serverAddr);
  assert.ok(listen.ok && listen.value.port === exposed, `EXPOSE ${exposed} but config.example.toml has ${serverAddr}`);

  await withTempDir(async (data) => {
    // /data is this temporary folder; the port is a free one instead of the exposed one.
    const port = freePort();
    await Deno.writeTextFile(
      join(data, "config.toml"),
      [
        `server_addr = "0.0.0.0:${port}"`,
        `redirect_uri = "http://127.0.0.1:${port}"`,
        // Nothing here may reach the real Monzo: no login exists, and these go nowhere.
        `api_url = "http://127.0.0.1:9"`,
        `auth_url = "http://127.0.0.1:9"`,
      ].join("\n") + "\n",
    );
    const env = { MONZO_CLIENT_ID: CLIENT_ID, MONZO_CLIENT_SECRET: CLIENT_SECRET, MONZO_AUTH_KEY: AUTH_KEY };
    const args = command.map((word) => word.replace(/^\/data(?=\/|$)/, data));
    const program = [...PROGRAM.slice(0, -1), "--config", join(ROOT, "deno.json"), join(ROOT, "main.ts")];
    const exporter = spawn(Deno.execPath(), [...program, ...args], { cwd: data, env });
    try {
      await waitFor(
        "the exporter to answer /healthz",
        async () => (await get(`http://127.0.0.1:${port}/healthz`)).status === 200,
      );
      // HEALTHCHECK runs in WORKDIR with the image's environment and no arguments beyond its own.
      const checked = await new Deno.Command(Deno.execPath(), {
        args: [...program, ...probe.slice(1)],
        cwd: data,
        env,
        stdin: "null",
      }).output();
      assert.equal(checked.code, 0, new TextDecoder().decode(checked.stderr));
      // The transaction store lands in /data, beside the config (tokens.json too, at the first login).
      assert.ok(Deno.statSync(join(data, "monzo-exporter.kv")).isFile, "the transaction store is not in /data");
      const status = await exporter.stop("SIGTERM");
      assert.equal(status.code, 0, exporter.stderr.text);
    } finally {
      await exporter.stop("SIGKILL");
    }
  });
});

// ---- systemd ----

/** The unit's `Key=value` lines, per key in order (a key may repeat). */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) keys.set(match[1], [...keys.get(match[1]) ?? [], match[2]]);
  }
  return keys;
}

/** Runs `systemd-analyze verify` on a copy of the unit whose ExecStart names an executable that exists here. */
async function verifyUnit(text: string, dir: string): Promise<{ code: number; said: string }> {
  const executable = join(dir, "monzo-exporter");
  await Deno.writeTextFile(executable, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  await Deno.chmod(executable, 0o755);
  const path = join(dir, "monzo-exporter.service");
  await Deno.writeTextFile(path, text.replace(/^ExecStart=\S+/m, `ExecStart=${executable}`));
  const output = await new Deno.Command(SYSTEMD_ANALYZE, { args: ["verify", path], stdin: "null" }).output();
  const decoder = new TextDecoder();
  return { code: output.code, said: (decoder.decode(output.stdout) + decoder.decode(output.stderr)).trim() };
}

const noAnalyze = !binaryExists(SYSTEMD_ANALYZE);
if (noAnalyze) explainSkip(SYSTEMD_ANALYZE, "the systemd unit checks");

Deno.test({
  name: "systemd-analyze verify accepts the unit without a word, and does complain about a misspelt key",
  ignore: noAnalyze,
  fn: async () => {
    const text = await Deno.readTextFile(UNIT);
    await withTempDir(async (dir) => {
      const verified = await verifyUnit(text, dir);
      assert.equal(verified.code, 0, verified.said);
      assert.equal(verified.said, "", "systemd-analyze verify warned");
      // systemd only warns (exit 0) about an unknown key, so silence is what proves the unit right.
      const misspelt = await verifyUnit(text.replace("ProtectSystem=", "ProtectSytem="), dir);
      assert.match(misspelt.said, /Unknown key/);
    });
  },
});

Deno.test({
  name: `systemd-analyze security rates the unit's exposure at most ${MAX_EXPOSURE}`,
  ignore: noAnalyze,
  fn: async () => {
    const text = await Deno.readTextFile(UNIT);
    await withTempDir(async (dir) => {
      const path = join(dir, "monzo-exporter.service");
      await Deno.writeTextFile(path, text);
      const output = await new Deno.Command(SYSTEMD_ANALYZE, {
        args: ["security", "--offline=true", "--no-pager", path],
        env: { SYSTEMD_COLORS: "0" },
        stdin: "null",
      }).output();
      const said = new TextDecoder().decode(output.stdout);
      const level = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(said)?.[1]);
      assert.ok(Number.isFinite(level), `no exposure level in:\n${said}`);
      assert.ok(level <= MAX_EXPOSURE, `exposure ${level}:\n${said}`);
    });
  },
});

Deno.test("the unit: a dynamic user with a state folder, the hardening asked for, no MemoryDenyWriteExecute, flags the program takes", async () => {
  const keys = unitKeys(await Deno.readTextFile(UNIT));
  const expected: Record<string, string> = {
    DynamicUser: "yes",
    StateDirectory: "monzo-exporter",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    NoNewPrivileges: "yes",
    RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
    CapabilityBoundingSet: "",
    EnvironmentFile: "/etc/monzo-exporter/secrets.env",
  };
  for (const [key, value] of Object.entries(expected)) assert.deepEqual(keys.get(key), [value], key);
  // V8's JIT needs writable and executable memory: with this the binary dies at start.
  assert.ok(!keys.has("MemoryDenyWriteExecute"));
  const [program, ...args] = keys.get("ExecStart")?.[0].split(" ") ?? [];
  assert.equal(program, "/usr/local/bin/monzo-exporter");
  const parsed = parseCli(args);
  assert.ok(parsed.ok && parsed.value.configPath === "/etc/monzo-exporter/config.toml", JSON.stringify(parsed));
});
