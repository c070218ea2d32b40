import assert from "node:assert/strict";
import { type BackingStore, checkStore } from "../mod.ts";
import { normaliseKey, nsurlComponents } from "../src/key.ts";
import { bytesFor, FILE_SIZED, read, tempDir, tempStore } from "./_helpers.ts";

// Each encodes to the UTF-8 of "a\uFFFD" (lone surrogates become U+FFFD).
const ILL_FORMED = [
  "a\uD800",
  "a\uDC00",
  "\uDBFFa",
  "x\uD83D",
  "\uDE00x",
  "http://example.com/\uD800",
  "mailto:\uDC00@x",
];

Deno.test("normaliseKey rejects strings that are not well-formed UTF-16", () => {
  for (const k of ILL_FORMED) {
    assert.throws(
      () => normaliseKey(k),
      (e: unknown) =>
        e instanceof TypeError &&
        /^Cannot use key: not well-formed UTF-16/.test(e.message),
      JSON.stringify(k),
    );
  }
  assert.throws(() => normaliseKey("ab\uD800"), /lone surrogate at index 2/);
  assert.throws(() => normaliseKey("\u{1F600}\uDC00"), /at index 2/);
  // Well-formed: U+FFFD itself, surrogate pairs, other non-ASCII.
  for (const k of ["a\uFFFD", "a\u{1F600}", "\uD83D\uDE00", "ünïcode ✓"]) {
    assert.equal(normaliseKey(k).text, k);
  }
});

Deno.test("normaliseKey checks the text of URL objects, which percent-encode", () => {
  // WHATWG parsing has already replaced the surrogate: these are one URL.
  const a = normaliseKey(new URL("http://example.com/\uD800"));
  const b = normaliseKey(new URL("http://example.com/\uFFFD"));
  assert.equal(a.text, "http://example.com/%EF%BF%BD");
  assert.equal(b.text, a.text);
  // A subclass whose getters return ill-formed text is refused.
  class Odd extends URL {
    override get href(): string {
      return "urn:\uD800";
    }
  }
  assert.throws(() => normaliseKey(new Odd("urn:x")), TypeError);
});

async function throwsTypeError(what: string, f: () => Promise<unknown>) {
  await assert.rejects(f, TypeError, what);
}

Deno.test("every store API refuses ill-formed keys and leaves the store unchanged", async () => {
  await using s = await tempStore();
  const st: BackingStore = s.store;
  await st.store("a\uFFFD", bytesFor("fffd", 100));
  await st.storeEntry("b\uFFFD", bytesFor("b", 10), bytesFor("bm", 10));
  const before = st.stats();
  for (const k of ILL_FORMED) {
    const what = JSON.stringify(k);
    await throwsTypeError(what, () => st.store(k, bytesFor(k, 100)));
    await throwsTypeError(
      what,
      () => st.store(k, bytesFor(k, 10), { meta: true }),
    );
    await throwsTypeError(what, () => st.storeEntry(k, bytesFor(k, 10)));
    await throwsTypeError(
      what,
      () => st.storeEntry(k, bytesFor(k, 10), bytesFor(k, 5)),
    );
    await throwsTypeError(what, () => st.fetch(k));
    await throwsTypeError(what, () => st.fetch(k, { meta: true }));
    await throwsTypeError(what, () => st.fetchEntry(k));
    await throwsTypeError(what, () => st.invalidate(k));
  }
  // The same with the surrogate in the other entry's position.
  await throwsTypeError("b", () => st.invalidate("b\uD800"));
  await throwsTypeError("b", () => st.fetchEntry("b\uDC00"));
  const after = st.stats();
  assert.equal(after.entries, before.entries);
  assert.equal(after.stores, before.stores);
  assert.equal(after.invalidations, 0);
  assert.equal(after.hits + after.misses, 0, "no lookup was made");
  assert.deepEqual(await read(st, "a\uFFFD"), bytesFor("fffd", 100));
  using e = await st.fetchEntry("b\uFFFD");
  assert.deepEqual(e?.meta, bytesFor("bm", 10));
});

Deno.test("keys that differ only in UTF-16 never share an entry", async () => {
  await using s = await tempStore();
  const st = s.store;
  // Surrogate pairs and U+FFFD are distinct, well-formed keys.
  const keys = ["a\uFFFD", "a\u{1F600}", "a\u{10FFFF}", "a\uFFFD\uFFFD", "a"];
  for (const k of keys) await st.store(k, bytesFor(k, 50));
  assert.equal(st.stats().entries, keys.length);
  for (const k of keys) assert.deepEqual(await read(st, k), bytesFor(k, 50));
  assert.equal(await st.invalidate("a\u{1F600}"), true);
  for (const k of keys.filter((k) => k !== "a\u{1F600}")) {
    assert.deepEqual(await read(st, k), bytesFor(k, 50), JSON.stringify(k));
  }
});

// URLs without a host: their href is the key, as the same string is.
const HOSTLESS = [
  "mailto:x",
  "mailto:A@B.example",
  "data:text/plain,hi%20there",
  "urn:isbn:0451450523",
  "blob:https://example.com/0b1e7b63-2f0a-4e5a-9f4a-0d8f0e7c1a2b",
  "about:blank",
  "file:///tmp/a/b",
  "web+x:/p",
  "mailto:x#frag",
];
const HOSTED = [
  "https://example.com/a/b?c=d",
  "http://user:pw@host.example:8080/p%7e",
  "foo://h/p?q",
  "file://host/share/x",
];

Deno.test("normaliseKey gives a URL and its href one key and one nsurl hash", () => {
  for (const s of [...HOSTLESS, ...HOSTED]) {
    const url = new URL(s);
    const a = normaliseKey(url);
    const b = normaliseKey(url.href);
    assert.equal(a.text, b.text, s);
    assert.equal(a.url, b.url, s);
    assert.deepEqual(nsurlComponents(a), nsurlComponents(b), s);
    // What check-store sees is the text: it normalises alike.
    const c = normaliseKey(a.text);
    assert.equal(c.text, a.text, s);
    assert.equal(c.url, a.url, s);
    assert.deepEqual(nsurlComponents(c), nsurlComponents(a), s);
  }
  assert.equal(normaliseKey(new URL("mailto:x")).text, "mailto:x");
  assert.equal(normaliseKey(new URL("mailto:x")).url, false);
});

Deno.test("URL objects and strings are one entry in both hash modes, through check-store, repair and reopen", async (t) => {
  const { BackingStore } = await import("../mod.ts");
  for (const hash of ["nsurl", "siphash13"] as const) {
    await t.step(hash, async () => {
      await using tmp = await tempDir();
      const keys = [...HOSTLESS, ...HOSTED];
      // Small and large elements: slots and files both carry the key.
      const size = (j: number) => (j % 2 === 0 ? 300 : FILE_SIZED);
      {
        await using st = await BackingStore.open(tmp.path, {
          entryBits: 8,
          hash,
        });
        for (const [j, k] of keys.entries()) {
          await st.store(new URL(k), bytesFor(`url ${k}`, size(j)));
          // The string form replaces it: the same entry.
          await st.store(k, bytesFor(k, size(j)));
          await st.store(new URL(k), bytesFor(`meta ${k}`, 20), {
            meta: true,
          });
        }
        assert.equal(st.stats().entries, keys.length);
        for (const [j, k] of keys.entries()) {
          assert.deepEqual(await read(st, new URL(k)), bytesFor(k, size(j)));
          assert.deepEqual(await read(st, k), bytesFor(k, size(j)));
        }
      }
      const report = await checkStore(tmp.path);
      assert.deepEqual(report.problems, [], "check-store finds them healthy");
      const repaired = await checkStore(tmp.path, { repair: true });
      assert.deepEqual(repaired.problems, []);
      assert.equal(repaired.stats?.entries, keys.length);
      await using st = await BackingStore.open(tmp.path);
      assert.equal(st.stats().entries, keys.length);
      for (const [j, k] of keys.entries()) {
        assert.deepEqual(await read(st, k), bytesFor(k, size(j)), k);
        assert.deepEqual(await read(st, new URL(k)), bytesFor(k, size(j)), k);
        assert.deepEqual(
          await read(st, k, { meta: true }),
          bytesFor(`meta ${k}`, 20),
          k,
        );
      }
      // Invalidating through one form removes the entry for the other.
      assert.equal(await st.invalidate(new URL("mailto:x")), true);
      assert.equal(await read(st, "mailto:x"), undefined);
      assert.equal(await st.invalidate("urn:isbn:0451450523"), true);
      assert.equal(await read(st, new URL("urn:isbn:0451450523")), undefined);
    });
  }
});

Deno.test("normaliseKey is idempotent on random keys, as check-store needs", () => {
  // check-store sees only the stored text: normalising it again must give
  // the same text and the same nsurl components, or repair would drop a
  // healthy entry as KEY_HASH.
  const schemes = ["http", "https", "HTTP", "mailto", "data", "urn", "blob"];
  const more = ["about", "file", "foo", "web+x", "ws", "x-y.z", "C", ""];
  const tails = [
    "//example.com",
    "//EXAMPLE.com:80",
    "//u:p@h.example:8080",
    "///",
    "//",
    "/",
    "",
    "//[::1]",
    "//10.0.0.1",
    "//xn--nxasmq6b.example",
    "https://a.example",
  ];
  const alphabet = "abcXYZ019-._~!$&()*+,;=:@/?%#'\\ .é\u{1F600}\uFFFD";
  let seed = 20261202;
  const rnd = (n: number) =>
    (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  const pick = <T>(a: readonly T[]) => a[rnd(a.length)]!;
  const all = [...schemes, ...more];
  for (let i = 0; i < 20_000; i++) {
    let rest = "";
    for (let j = rnd(16); j > 0; j--) rest += pick([...alphabet]);
    const s = `${pick(all)}:${pick(tails)}${rest}`;
    const a = normaliseKey(s);
    const b = normaliseKey(a.text);
    assert.equal(b.text, a.text, s);
    assert.equal(b.url, a.url, s);
    assert.deepEqual(nsurlComponents(b), nsurlComponents(a), s);
    const url = URL.parse(s);
    if (url === null) continue;
    const u = normaliseKey(url);
    const h = normaliseKey(url.href);
    assert.equal(u.text, h.text, s);
    assert.equal(u.url, h.url, s);
    assert.deepEqual(nsurlComponents(u), nsurlComponents(h), s);
    const again = normaliseKey(u.text);
    assert.equal(again.text, u.text, s);
    assert.equal(again.url, u.url, s);
  }
});
