import { loadConfig } from "../../lib/config.ts";
const dir = await Deno.makeTempDir();
const base = `client_id = "oauth2client_x"\nclient_secret = "s"\nserver_addr = "0.0.0.0:8080"\nredirect_uri = "http://127.0.0.1:8080"\nauth_key = "abcdefghijklmnopq"\n`;
const cases: Record<string,string> = {
  ok: base,
  bad: "a = \n",
  bad2: base + "x = [1,\n",
  nl_redirect: base.replace('"http://127.0.0.1:8080"', '"not a url\\nsecond"'),
  nl_server: base.replace('"0.0.0.0:8080"', '"x\\ny"'),
  nl_key: base + '"a\\nb" = 1\n',
  poll: base + "poll_interval_minutes = 7\n",
  pollstr: base + 'poll_interval_minutes = "5"\n',
  pollbig: base + 'poll_interval_minutes = 99999999999999999999\n',
  timeout: base + "request_timeout_seconds = 0\n",
  timeout2: base + "request_timeout_seconds = 121\n",
  acc: base + 'account_id = "acc-bad"\n',
  cid: base.replace('"oauth2client_x"', '5'),
  ftp: base.replace('"http://127.0.0.1:8080"', '"ftp://x"'),
  zero: base.replace('"http://127.0.0.1:8080"', '"http://0.0.0.0:8080/"'),
  v6: base.replace('"http://127.0.0.1:8080"', '"http://[::]:8080/"'),
  v6b: base.replace('"http://127.0.0.1:8080"', '"http://[0:0:0:0:0:0:0:0]:8080/"'),
  short: base.replace('"abcdefghijklmnopq"', '"short"'),
  empty: base.replace('"abcdefghijklmnopq"', '"   "'),
  dup: base + 'client_id = "y"\n',
};
for (const [name, text] of Object.entries(cases)) {
  await Deno.writeTextFile(`${dir}/${name}.toml`, text);
  const r = await loadConfig(`${dir}/${name}.toml`);
  console.log(name, JSON.stringify(r.ok ? r.value : r.error));
}
const r = await loadConfig(`${dir}/nope.toml`); console.log(JSON.stringify(r));
await Deno.remove(dir, {recursive:true});
console.log(Date.parse("2026-12-01T10:00:00.123456789Z"));
