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

// Valid from well in the past to well in the future: Prometheus (a Go program) reads the real clock even
// when the tests run under faketime, and must agree with the faked clock of Deno and openssl that the
// certificates are valid (tools/date_matrix.sh). UTCTime, which every TLS stack reads, ends in 2049.
const NOT_BEFORE = "20000101000000Z";
const NOT_AFTER = "20491231235959Z";

// `openssl ca` is the only openssl 3.0 command that takes a start date: its smallest config.
const CA_CONFIG = `[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = any_name
copy_extensions = none
unique_subject = no
[any_name]
commonName = supplied
[ca_cert]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_cert]
basicConstraints = CA:false
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
`;

/** Makes a CA and a server certificate it signs (names `prefix`-*.pem in `dir`), valid from 2000 to 2049. */
export async function makeCertificates(dir: string, prefix = "server"): Promise<Certificates> {
  const p = (name: string) => join(dir, `${prefix}-${name}`);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  // Each prefix has its own CA database, so that two sets in one folder do not share serials.
  const caDir = await Deno.makeTempDir({ dir, prefix: `${prefix}-ca-` });
  await Deno.writeTextFile(join(caDir, "ca.cnf"), CA_CONFIG);
  await Deno.writeTextFile(join(caDir, "index.txt"), "");
  await Deno.writeTextFile(join(caDir, "serial.txt"), "1000\n");
  const sign = (request: string, out: string, extensions: string, signer: string[]) =>
    openssl(caDir, [
      "ca",
      "-batch",
      "-notext",
      "-config",
      "ca.cnf",
      ...signer,
      "-keyfile",
      p("ca.key"),
      "-in",
      request,
      "-out",
      out,
      "-startdate",
      NOT_BEFORE,
      "-enddate",
      NOT_AFTER,
      "-extensions",
      extensions,
    ]);
  await openssl(dir, ["req", ...ec, "-keyout", p("ca.key"), "-out", p("ca.csr"), "-subj", `/CN=${prefix} test CA`]);
  await sign(p("ca.csr"), p("ca.pem"), "ca_cert", ["-selfsign"]);
  await openssl(dir, ["req", ...ec, "-keyout", p("key.pem"), "-out", p("csr.pem"), "-subj", "/CN=127.0.0.1"]);
  await sign(p("csr.pem"), p("cert.pem"), "server_cert", ["-cert", p("ca.pem")]);
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
