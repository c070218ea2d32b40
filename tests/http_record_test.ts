import assert from "node:assert/strict";
import {
  decodeResponseRecord,
  encodeResponseRecord,
  RECORD_VERSION,
  RecordError,
  type ResponseRecord,
  varyNames,
} from "../src/http/record.ts";

function sample(): ResponseRecord {
  return {
    requestTime: 1_700_000_000_000,
    responseTime: 1_700_000_000_250.5,
    seq: 2 ** 40 + 3,
    cacheName: "v1 ✓",
    method: "GET",
    url: "https://example.com/a?b=1#frag",
    requestHeaders: [["accept", "text/html"], ["x-dup", "1"], ["x-dup", "2"]],
    status: 200,
    statusText: "OK",
    responseUrl: "https://example.com/a?b=1",
    responseHeaders: [
      ["set-cookie", "a=1"],
      ["content-type", "text/html"],
      ["set-cookie", "b=2"],
      ["vary", "Accept, X-Dup"],
    ],
    vary: ["accept", "x-dup"],
  };
}

Deno.test("response record round-trips every field, header order and duplicates kept", () => {
  const record = sample();
  const bytes = encodeResponseRecord(record);
  assert.equal(bytes[0], RECORD_VERSION);
  assert.equal(bytes[1], 0);
  assert.deepEqual(decodeResponseRecord(bytes), record);
  const empty = {
    ...record,
    requestHeaders: [],
    responseHeaders: [],
    vary: [],
    responseUrl: "",
    statusText: "",
  };
  assert.deepEqual(decodeResponseRecord(encodeResponseRecord(empty)), empty);
});

Deno.test("response record layout matches FORMAT.md §11.1", () => {
  const record = {
    ...sample(),
    requestHeaders: [],
    responseHeaders: [],
    vary: [],
  };
  const bytes = encodeResponseRecord(record);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getFloat64(2, true), record.requestTime);
  assert.equal(view.getFloat64(10, true), record.responseTime);
  assert.equal(view.getFloat64(18, true), record.seq);
  assert.equal(view.getUint16(26, true), 200);
  const nameLen = view.getUint32(28, true);
  assert.equal(
    new TextDecoder().decode(bytes.subarray(32, 32 + nameLen)),
    "v1 ✓",
  );
});

Deno.test("response record decode refuses damage with a RecordError", async (t) => {
  const good = encodeResponseRecord(sample());
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "MALFORMED"],
    ["unknown version", Uint8Array.of(2, ...good.subarray(1)), "VERSION"],
    [
      "reserved byte set",
      Uint8Array.of(1, 1, ...good.subarray(2)),
      "MALFORMED",
    ],
    ["trailing byte", Uint8Array.of(...good, 0), "MALFORMED"],
  ];
  for (let cut = 1; cut < good.length; cut += 7) {
    cases.push([`truncated at ${cut}`, good.subarray(0, cut), "MALFORMED"]);
  }
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(28, 0xffffffff, true);
  cases.push(["string length past the end", huge, "MALFORMED"]);
  const badUtf8 = encodeResponseRecord({ ...sample(), cacheName: "ab" });
  badUtf8[32] = 0xff;
  cases.push(["bad UTF-8", badUtf8, "MALFORMED"]);
  const badStatus = good.slice();
  new DataView(badStatus.buffer).setUint16(26, 42, true);
  cases.push(["status out of range", badStatus, "MALFORMED"]);
  const nan = good.slice();
  new DataView(nan.buffer).setFloat64(2, NaN, true);
  cases.push(["time not a number", nan, "MALFORMED"]);
  const frac = good.slice();
  new DataView(frac.buffer).setFloat64(18, 1.5, true);
  cases.push(["seq not an integer", frac, "MALFORMED"]);
  for (const [name, bytes, code] of cases) {
    await t.step(name, () => {
      assert.throws(() => decodeResponseRecord(bytes), (err: unknown) => {
        assert.ok(err instanceof RecordError);
        assert.equal(err.code, code);
        assert.match(err.message, /^Cannot decode response record/);
        return true;
      });
    });
  }
  await t.step(
    "every single-byte corruption is refused or decodes to a valid record",
    () => {
      for (let i = 0; i < good.length; i++) {
        const bad = good.slice();
        bad[i] = bad[i]! ^ 0x80;
        try {
          const r = decodeResponseRecord(bad);
          assert.deepEqual(decodeResponseRecord(encodeResponseRecord(r)), r);
        } catch (err) {
          assert.ok(err instanceof RecordError, String(err));
        }
      }
    },
  );
});

Deno.test("response record encode refuses invalid fields with TypeError", async (t) => {
  const cases: [string, Partial<ResponseRecord>][] = [
    ["method not a token", { method: "GE T" }],
    ["relative url", { url: "/a" }],
    ["header name not a token", { requestHeaders: [["a b", "1"]] }],
    ["header value with CR LF", { responseHeaders: [["a", "1\r\nb: 2"]] }],
    ["status 99", { status: 99 }],
    ["negative time", { requestTime: -1 }],
    ["bad Vary name", { vary: ["a b"] }],
  ];
  for (const [name, patch] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => encodeResponseRecord({ ...sample(), ...patch }),
        TypeError,
      );
    });
  }
});

Deno.test("varyNames splits, trims and lower-cases every Vary field", () => {
  assert.deepEqual(
    varyNames([["Vary", "Accept, , X-A"], ["content-type", "x"], [
      "vary",
      "*",
    ]]),
    [
      "accept",
      "x-a",
      "*",
    ],
  );
  assert.deepEqual(varyNames(new Headers({ vary: "Accept-Encoding" })), [
    "accept-encoding",
  ]);
});
