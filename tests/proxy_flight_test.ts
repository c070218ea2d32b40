// A collapsed miss's flight (src/proxy/_flight.ts): which bodies it keeps
// for its waiters, and that it lets them go.
import assert from "node:assert/strict";
import type { ResponseRecord } from "../src/http/record.ts";
import { Flight, KEPT_MAX } from "../src/proxy/_flight.ts";

const record: ResponseRecord = {
  requestTime: 0,
  responseTime: 0,
  seq: 0,
  cacheName: "",
  method: "GET",
  url: "http://o/c",
  requestHeaders: [],
  status: 200,
  statusText: "",
  responseUrl: "",
  responseHeaders: [],
  vary: [],
};

const body = (flight: Flight) => flight.kept((_, b) => b.slice());

/** A flight with `dropped` counted, storing `record`, `expected` long. */
function flight(expected = 0): [Flight, () => number] {
  let drops = 0;
  const f = new Flight("http://o/c", () => drops++);
  f.storing(record, expected);
  return [f, () => drops];
}

Deno.test("flight: keeps the body for waiters there at its first byte, byte-exact, until the last leaves", () => {
  const [f, drops] = flight(6);
  f.join();
  f.join();
  const chunk = new Uint8Array([1, 2, 3]);
  f.chunk(chunk);
  chunk.fill(9); // the producer reusing its buffer
  f.chunk(new Uint8Array([4, 5, 6, 7]));
  assert.equal(body(f), undefined, "not before the flight ends");
  f.settle("stored");
  assert.deepEqual(body(f), new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
  f.leave();
  assert.deepEqual(body(f), new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
  assert.equal(drops(), 0);
  f.leave();
  assert.equal(body(f), undefined);
  assert.equal(drops(), 1);
});

Deno.test("flight: keeps nothing without a waiter at the first byte", () => {
  const [f, drops] = flight();
  f.chunk(new Uint8Array(10));
  f.join();
  f.chunk(new Uint8Array(10));
  f.settle("stored");
  assert.equal(body(f), undefined);
  f.leave();
  assert.ok(drops() >= 1);
});

Deno.test("flight: an empty body is kept as no bytes", () => {
  const [f] = flight();
  f.join();
  f.settle("stored-variant");
  assert.deepEqual(body(f), new Uint8Array(0));
});

Deno.test("flight: keeps no body over KEPT_MAX, nor one of a failed or unstored flight, nor one dropped", () => {
  const [big] = flight();
  big.join();
  big.chunk(new Uint8Array(KEPT_MAX));
  big.chunk(new Uint8Array(1));
  big.settle("stored");
  assert.equal(body(big), undefined);

  const [declared] = flight(KEPT_MAX + 1);
  declared.join();
  declared.chunk(new Uint8Array(1));
  declared.settle("stored");
  assert.equal(body(declared), undefined);

  for (const end of ["failed", "not-stored"] as const) {
    const [f] = flight();
    f.join();
    f.chunk(new Uint8Array(1));
    f.settle(end);
    assert.equal(body(f), undefined, end);
  }

  const [dropped] = flight();
  dropped.join();
  dropped.chunk(new Uint8Array(1));
  dropped.settle("stored");
  dropped.drop(); // its URL invalidated
  assert.equal(body(dropped), undefined);
});
