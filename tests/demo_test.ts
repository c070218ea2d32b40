// `deno task demo`, the README's first command: run as a child process
// with the task's own permissions, in a fresh directory, as in a new clone.
import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "./_helpers.ts";

/** The demo task's command line, with this Deno and the demo's path. */
async function demoCommand(): Promise<string[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  const words: string[] = config.tasks.demo.split(/\s+/);
  assert.equal(words[0], "deno");
  return words.slice(1).map((w) =>
    w === "demo.ts" ? new URL("../demo.ts", import.meta.url).pathname : w
  );
}

Deno.test("demo runs the proxy, restarts it and serves every request from the store", async () => {
  await using cwd = await tempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: await demoCommand(),
    cwd: cwd.path,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
  const line = (prefix: string) => {
    const found = text.split("\n").find((l) => l.startsWith(prefix));
    assert.ok(found !== undefined, `no "${prefix}" line in:\n${text}`);
    return found;
  };
  assert.match(
    line("round 1 (cold)"),
    /: 300 requests in \d+ ms, 0 hits \(0\.0%\), 300 origin requests, 300\/300 bodies byte-for-byte$/,
  );
  for (const round of ["round 2", "round 3 (after restart)"]) {
    assert.match(
      line(round),
      /: 300 requests in \d+ ms, 300 hits \(100\.0%\), 0 origin requests, 300\/300 bodies byte-for-byte$/,
    );
  }
  assert.equal(
    line("hit ratio"),
    "hit ratio 66.7% (600/900); origin requests saved 600 of 900",
  );
  const port = /proxy on http:\/\/127\.0\.0\.1:(\d+)\//.exec(text)?.[1];
  assert.ok(port !== undefined, text);
  assert.equal(
    line("status page"),
    `status page: http://127.0.0.1:${port}/_larder/`,
  );
  // The default store directory, relative to where the command ran.
  assert.ok((await Deno.stat(join(cwd.path, ".larder-demo"))).isDirectory);
});
