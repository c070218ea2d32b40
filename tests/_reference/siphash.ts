/**
 * Reference SipHash-c-d with BigInt arithmetic, straight from the paper
 * (Aumasson & Bernstein, 2012), used only by tests and benches.
 * @module
 */

const M64 = (1n << 64n) - 1n;

function rotl(x: bigint, b: bigint): bigint {
  return ((x << b) | (x >> (64n - b))) & M64;
}

/**
 * SipHash with `c` compression and `d` finalisation rounds of `msg` under
 * the 16-byte `key`; the 64-bit result.
 */
export function sipHash(
  c: number,
  d: number,
  key: Uint8Array,
  msg: Uint8Array,
): bigint {
  const view = new DataView(key.buffer, key.byteOffset, 16);
  const k0 = view.getBigUint64(0, true);
  const k1 = view.getBigUint64(8, true);
  const v = [
    k0 ^ 0x736f6d6570736575n,
    k1 ^ 0x646f72616e646f6dn,
    k0 ^ 0x6c7967656e657261n,
    k1 ^ 0x7465646279746573n,
  ];
  const round = () => {
    v[0] = (v[0]! + v[1]!) & M64;
    v[1] = rotl(v[1]!, 13n) ^ v[0];
    v[0] = rotl(v[0], 32n);
    v[2] = (v[2]! + v[3]!) & M64;
    v[3] = rotl(v[3]!, 16n) ^ v[2];
    v[0] = (v[0] + v[3]) & M64;
    v[3] = rotl(v[3], 21n) ^ v[0];
    v[2] = (v[2] + v[1]) & M64;
    v[1] = rotl(v[1], 17n) ^ v[2];
    v[2] = rotl(v[2], 32n);
  };
  const blocks = Math.floor(msg.length / 8);
  for (let i = 0; i <= blocks; i++) {
    let m = 0n;
    if (i < blocks) {
      for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(msg[8 * i + j]!);
    } else {
      // Last block: remaining bytes, message length mod 256 in the top byte.
      m = BigInt(msg.length & 0xff) << 56n;
      for (let j = 8 * i; j < msg.length; j++) {
        m |= BigInt(msg[j]!) << BigInt(8 * (j - 8 * i));
      }
    }
    v[3]! ^= m;
    for (let r = 0; r < c; r++) round();
    v[0]! ^= m;
  }
  v[2]! ^= 0xffn;
  for (let r = 0; r < d; r++) round();
  return v[0]! ^ v[1]! ^ v[2]! ^ v[3]!;
}
