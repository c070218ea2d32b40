// The hash kernels against references in tests/_reference, with known
// answers: both hashes are persisted as entry idents, so these must never
// change.
import assert from "node:assert/strict";
import { IndexMemory, MAX_KEY_BYTES } from "../src/index_memory.ts";
import { fnv1Signed, nsurlHash } from "./_reference/nsurl.ts";
import { sipHash } from "./_reference/siphash.ts";
import { randomBytes, rng } from "./_reference/rng.ts";

const enc = new TextEncoder();
const mem = new IndexMemory({ entryBits: 8, identBits: 9 });
const KEY = Uint8Array.from({ length: 16 }, (_, i) => i); // 00 01 .. 0f

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// [lo, hi] words as the little-endian bytes the vectors are written in.
function leHex(lo: number, hi: number): string {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, lo, true);
  v.setUint32(4, hi, true);
  return hex(b);
}

function toLeHex(x: bigint): string {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, x, true);
  return hex(b);
}

/** SipHash of raw bytes through the key region (they need not be UTF-8). */
function sipOfBytes(bytes: Uint8Array): string {
  mem.loadKey(bytes);
  const [lo, hi] = mem.hashSip(bytes.length);
  return leHex(lo, hi);
}

// SipHash-1-3 with key 00..0f of the messages 00, 00 01, .. (lengths
// 0..63), output bytes little-endian: the vectors of Rust's
// library/core/tests/hash/sip.rs (test_siphash_1_3).
const SIP13_VECTORS = [
  "dcc40f055801acab",
  "93ca577df39bf4c9",
  "4dd4c74d029bcb82",
  "fbf7dde7b80af88b",
  "2883d388605775cf",
  "673b53492fd5f9de",
  "a7229fc5502b0dc5",
  "4011b19b987d92d3",
  "8e9a298d11959036",
  "e43d066cb38ea425",
  "7f09ff92ee85de79",
  "52c34df9c118c170",
  "a2d9b457b184a378",
  "a7ff29120c766f30",
  "345df9c011a15a60",
  "5699512a6dd820d3",
  "668b907d1add4fcc",
  "0cd8db639068f29c",
  "3ee673b49c38fc8f",
  "1c7d298de59d1ff2",
  "40e0cca6462fdcc0",
  "44f8452bfeab92b9",
  "2e8720a39b7bfe7f",
  "23c1e6da7f0e5a52",
  "8c9c3467b2ae64f4",
  "79095b702859cd45",
  "a51399cae3353e3a",
  "353bde4a4ec71da9",
  "0dd06cef02ed0bfb",
  "f4e1b14ab43cd988",
  "63e6c543d6110f54",
  "bcd1218c1fdd7023",
  "0db6a7166c7b1581",
  "bff98f7ae5b9544d",
  "3e752a1f78129f75",
  "916b18bfbea3a1ce",
  "0662a2add308f52c",
  "5730c3a32d1c10b6",
  "a1363aae9674f4b3",
  "9283107b54576b62",
  "3115e4993236d2c1",
  "44d91a3f92c17c66",
  "258813c8fe4f7065",
  "a64989c2d180f224",
  "6b87f8faed1ccac2",
  "9621049ffc4b16c2",
  "23d6b168939c6ea1",
  "fd14518b9c16fb49",
  "464c07dff843319f",
  "b386cc1224affdc6",
  "8f09520ad149af7e",
  "9a2f299d5513f31c",
  "121ff4a2dd304ac4",
  "d01ea74389e9fa36",
  "e6bcf0734cb38f31",
  "80e9a77036bf7aa2",
  "756d3c24dbc0bcb4",
  "1315b7fd52d8f823",
  "088a7da64d5f038f",
  "48f1e8b7e5d09cd8",
  "ee44a6f7bce6f4f6",
  "f237180fd89ac5ae",
  "e094664b15f6b2c3",
  "a8b3bbb76290199d",
];

// The first SipHash-2-4 vectors of the same file (the paper's), to show
// the BigInt reference is SipHash before it is trusted for 1-3.
const SIP24_VECTORS = [
  "310e0edd47db6f72",
  "fd67dc93c539f874",
  "5a4fa9d909806c0d",
  "2d7efbd796666785",
  "b7877127e09427cf",
  "8da699cd64557618",
  "cee3fe586e46c9cb",
  "37d1018bf50002ab",
];

// Frozen from the BigInt reference (key 00..0f): idents on disk.
const URL_KAT = "2a98541bb12dc3a0";
const LONG_KAT = "6e606b428fc36d57";
// nsurl of the one component "é" (UTF-8 c3 a9, both sign-extended).
const NSURL_E_KAT = 0x16769ffd;

const message = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);

Deno.test("siphash reference matches the published SipHash-2-4 and 1-3 vectors", () => {
  SIP24_VECTORS.forEach((want, n) =>
    assert.equal(toLeHex(sipHash(2, 4, KEY, message(n))), want)
  );
  SIP13_VECTORS.forEach((want, n) =>
    assert.equal(toLeHex(sipHash(1, 3, KEY, message(n))), want)
  );
});

Deno.test("siphash13 kernel matches known answers", async (t) => {
  mem.setSipKey(KEY);
  await t.step("published vectors, one key a call", () => {
    SIP13_VECTORS.forEach((want, n) =>
      assert.equal(sipOfBytes(message(n)), want, `length ${n}`)
    );
  });
  await t.step("a URL and a long key", () => {
    const url = "https://example.com:8080/index.html?a=1&b=2";
    assert.equal(
      sipOfBytes(enc.encode(url)),
      toLeHex(sipHash(1, 3, KEY, enc.encode(url))),
    );
    assert.equal(sipOfBytes(enc.encode(url)), URL_KAT);
    const long = message(1000).map((b) => (b * 7) & 0xff);
    assert.equal(sipOfBytes(long), LONG_KAT);
  });
  await t.step("zero key, empty message", () => {
    mem.setSipKey(new Uint8Array(16));
    assert.equal(sipOfBytes(new Uint8Array(0)), "2c530c1562a7fbd1");
    mem.setSipKey(KEY);
  });
});

Deno.test("siphash13 kernel equals the reference on random keys", () => {
  const rand = rng(0x51b);
  for (let round = 0; round < 300; round++) {
    const key = randomBytes(rand, 16);
    mem.setSipKey(key);
    const msg = randomBytes(rand, rand(round < 200 ? 80 : 3000));
    assert.equal(
      sipOfBytes(msg),
      toLeHex(sipHash(1, 3, key, msg)),
      `round ${round}`,
    );
  }
});

function randomKey(rand: (n: number) => number): string {
  const pieces = [
    "https://",
    "cdn.example.com/",
    "a",
    "é",
    "ключ",
    "/",
    "?q=",
    "😀",
    "\ud800",
    "%7E",
  ];
  let s = "";
  const n = rand(12);
  for (let i = 0; i < n; i++) s += pieces[rand(pieces.length)];
  return s;
}

Deno.test("hashSipMany equals hashSip key by key", async (t) => {
  const rand = rng(0xba7c);
  mem.setSipKey(randomBytes(rand, 16));
  const one = (key: string): [number, number] =>
    mem.hashSip(mem.encodeKey(key));
  const check = (keys: string[]) => {
    const many = mem.hashSipMany(keys);
    keys.forEach((key, i) => {
      const [lo, hi] = one(key);
      assert.equal(many[2 * i], lo, `key ${i}`);
      assert.equal(many[2 * i + 1], hi, `key ${i}`);
    });
  };
  await t.step("empty list", () => assert.equal(mem.hashSipMany([]).length, 0));
  await t.step("ASCII URLs across batches", () => {
    check(
      Array.from(
        { length: 9000 },
        (_, i) => `https://h${i % 13}.example.com/p/${i}?x=${i * 31}`,
      ),
    );
  });
  await t.step("mixed UTF-8, lone surrogates, empty keys", () => {
    check(Array.from({ length: 3000 }, () => randomKey(rand)));
  });
  await t.step("keys filling more than the stage", () => {
    check(
      Array.from(
        { length: 100 },
        (_, i) => String.fromCharCode(97 + (i % 26)).repeat(MAX_KEY_BYTES - i),
      ),
    );
    check(
      Array.from({ length: 40 }, (_, i) => "é".repeat(MAX_KEY_BYTES / 2 - i)),
    );
  });
  await t.step("into a caller's array", () => {
    const out = new Uint32Array(4);
    assert.equal(mem.hashSipMany(["a", "b"], out), out);
    assert.deepEqual([out[0], out[1]], one("a"));
  });
  await t.step("rejects a key over MAX_KEY_BYTES and a short output", () => {
    assert.throws(
      () => mem.hashSipMany(["ok", "x".repeat(MAX_KEY_BYTES + 1)]),
      RangeError,
    );
    assert.throws(
      () => mem.hashSipMany(["é".repeat(MAX_KEY_BYTES / 2 + 1)]),
      RangeError,
    );
    assert.throws(
      () => mem.hashSipMany(["a", "b"], new Uint32Array(3)),
      RangeError,
    );
  });
});

Deno.test("nsurl kernel matches NetSurf's known answers", async (t) => {
  // Normalised components as NetSurf hashes them (src/key.ts produces
  // them; tests/key_test.ts checks that side).
  const cases: [string, string[], number][] = [
    ["http://www.netsurf-browser.org/", [
      "http",
      "www.netsurf-browser.org",
      "/",
    ], 0x43cb6fe7],
    [
      "https://example.com:8080/index.html?a=1&b=2#frag",
      ["https", "example.com", "8080", "/index.html", "a=1&b=2"],
      0xfc2bd7f1,
    ],
    [
      "http://user:pass@Example.COM:80/a%7Eb/c?q",
      ["http", "user", "pass", "example.com", "/a~b/c", "q"],
      0x48a7c802,
    ],
  ];
  for (const [url, comps, want] of cases) {
    await t.step(url, () => {
      assert.equal(mem.hashNsurl(comps), want);
      assert.equal(mem.hashNsurlMany([comps])[0], want);
      assert.equal(nsurlHash(comps), want);
    });
  }
  await t.step("signed chars: bytes 0x80..0xff are sign-extended", () => {
    // FNV-1 of the single byte 0xe9 differs from its unsigned reading.
    assert.equal(fnv1Signed(Uint8Array.of(0xe9)), 0xfaf3a2f6); // unsigned: 0x050c5df6
    assert.equal(mem.hashNsurl(["é"]), nsurlHash(["é"]));
    assert.equal(mem.hashNsurl(["é"]), NSURL_E_KAT);
  });
});

Deno.test("nsurl kernel equals the reference on random components", () => {
  const rand = rng(0x25a1);
  const lists: string[][] = [];
  for (let i = 0; i < 5000; i++) {
    lists.push(Array.from({ length: 1 + rand(7) }, () => randomKey(rand)));
  }
  // Empty lists and empty components, inside groups of four and at the end.
  for (const at of [0, 5, 10, 11, 4001]) {
    lists.splice(at, 0, [], [""], ["", ""]);
  }
  lists.push([], [""], ["", ""]);
  const many = mem.hashNsurlMany(lists);
  lists.forEach((comps, i) => {
    const want = nsurlHash(comps);
    assert.equal(many[i], want, `list ${i}`);
    if (i % 10 === 0) assert.equal(mem.hashNsurl(comps), want, `list ${i}`);
  });
  const big = Array.from(
    { length: 90 },
    (_, i) => ["http", "h", "/" + "p".repeat(12000 + i)],
  );
  assert.deepEqual([...mem.hashNsurlMany(big)], big.map(nsurlHash));
  assert.throws(() => mem.hashNsurlMany([Array(8).fill("a")]), RangeError);
  assert.throws(
    () => mem.hashNsurlMany([["x".repeat(MAX_KEY_BYTES + 1)]]),
    RangeError,
  );
});
