// Certificates made with the real openssl for the TLS tests: a CA, a server certificate it signs for
// 127.0.0.1 and localhost, and keys that belong to neither.

import { join } from "node:path";

/** The files {@link makeCertificates} wrote, and their text. */
export interface Certificates {
  readonly caCert: string;
  readonly caCertPath: string;
  readonly cert: string;
  readonly certPath: string;
  readonly key: string;
  readonly keyPath: string;
  /** A key that is not the certificate's. */
  readonly otherKeyPath: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const output = await new Deno.Command("openssl", { args, cwd: dir, stdout: "piped", stderr: "piped" }).output();
  if (!output.success) throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
}

/** Makes a CA and a server certificate it signs (names `prefix`-*.pem in `dir`). */
export async function makeCertificates(dir: string, prefix = "server"): Promise<Certificates> {
  const p = (name: string) => join(dir, `${prefix}-${name}`);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.pem"),
    "-days",
    "2",
    "-subj",
    `/CN=${prefix} test CA`,
  ]);
  await openssl(dir, ["req", ...ec, "-keyout", p("key.pem"), "-out", p("csr.pem"), "-subj", "/CN=127.0.0.1"]);
  await Deno.writeTextFile(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    p("csr.pem"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("cert.pem"),
    "-days",
    "2",
    "-extfile",
    p("ext.cnf"),
  ]);
  await openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p("other.pem")]);
  return {
    caCert: await Deno.readTextFile(p("ca.pem")),
    caCertPath: p("ca.pem"),
    cert: await Deno.readTextFile(p("cert.pem")),
    certPath: p("cert.pem"),
    key: await Deno.readTextFile(p("key.pem")),
    keyPath: p("key.pem"),
    otherKeyPath: p("other.pem"),
  };
}

/** A bcrypt hash made by Apache's htpasswd, as a user following the README makes one. */
export async function htpasswdHash(password: string, cost = 10): Promise<string> {
  const output = await new Deno.Command("htpasswd", { args: ["-nbBC", String(cost), "", password], stdout: "piped" })
    .output();
  if (!output.success) throw new Error("htpasswd failed");
  return new TextDecoder().decode(output.stdout).trim().replace(/^:/, "");
}

/** Whether openssl and htpasswd are installed. */
export function haveTools(): boolean {
  return ["/usr/bin/openssl", "/usr/bin/htpasswd"].every((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}
