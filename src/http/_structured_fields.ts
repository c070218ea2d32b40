/**
 * Parsing of Structured Field Dictionaries (RFC 8941 §4.2.2, with the Date
 * and Display String types of RFC 9651), the syntax of targeted cache
 * control fields such as `CDN-Cache-Control` (RFC 9213 §2.2). Strict: any
 * deviation from the grammar fails the whole field, because RFC 8941
 * §4.2 makes a recipient discard a field it cannot parse.
 *
 * @module
 */

/** A bare item's value (RFC 8941 §3.3). */
export type BareItem =
  | { type: "integer"; value: number }
  | { type: "decimal"; value: number }
  | { type: "string"; value: string }
  | { type: "token"; value: string }
  | { type: "binary"; value: Uint8Array }
  | { type: "boolean"; value: boolean }
  | { type: "date"; value: number }
  | { type: "displaystring"; value: string };

/** Parameters of an item or inner list, in order. */
export type Parameters = Map<string, BareItem>;

/** A dictionary member: an item or an inner list, with its parameters. */
export type Member =
  | { kind: "item"; item: BareItem; params: Parameters }
  | {
    kind: "list";
    items: { item: BareItem; params: Parameters }[];
    params: Parameters;
  };

class Fail extends Error {}

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  // A method, not a getter: TypeScript would keep narrowing a property
  // across the index moving on.
  ch(): string | undefined {
    return this.s[this.i];
  }

  is(re: RegExp): boolean {
    const c = this.ch();
    return c !== undefined && re.test(c);
  }

  fail(): never {
    throw new Fail();
  }

  sp(): void {
    while (this.ch() === " ") this.i++;
  }

  ows(): void {
    while (this.ch() === " " || this.ch() === "\t") this.i++;
  }

  key(): string {
    const c = this.ch();
    if (c === undefined || !(/[a-z*]/.test(c))) this.fail();
    const start = this.i;
    while (this.is(/[a-z0-9_\-.*]/)) this.i++;
    return this.s.slice(start, this.i);
  }

  params(): Parameters {
    const out: Parameters = new Map();
    while (this.ch() === ";") {
      this.i++;
      this.sp();
      const k = this.key();
      let v: BareItem = { type: "boolean", value: true };
      if (this.ch() === "=") {
        this.i++;
        v = this.bare();
      }
      out.delete(k); // a later duplicate overwrites, in the later position
      out.set(k, v);
    }
    return out;
  }

  bare(): BareItem {
    const c = this.ch();
    if (c === undefined) this.fail();
    if (c === "-" || /[0-9]/.test(c)) return this.number();
    if (c === '"') return this.string();
    if (c === ":") return this.binary();
    if (c === "?") return this.boolean();
    if (c === "@") {
      this.i++;
      const n = this.number();
      if (n.type !== "integer") this.fail();
      return { type: "date", value: n.value };
    }
    if (c === "%") return this.displayString();
    if (/[A-Za-z*]/.test(c)) return this.token();
    this.fail();
  }

  number(): BareItem {
    let sign = 1;
    if (this.ch() === "-") {
      sign = -1;
      this.i++;
    }
    let int = "";
    while (this.is(/[0-9]/)) {
      int += this.ch();
      this.i++;
      if (int.length > 15) this.fail();
    }
    if (int === "") this.fail();
    if (this.ch() !== ".") {
      return { type: "integer", value: sign * Number(int) };
    }
    if (int.length > 12) this.fail();
    this.i++;
    let frac = "";
    while (this.is(/[0-9]/)) {
      frac += this.ch();
      this.i++;
      if (frac.length > 3) this.fail();
    }
    if (frac === "") this.fail();
    return { type: "decimal", value: sign * Number(`${int}.${frac}`) };
  }

  string(): BareItem {
    this.i++; // the opening quote
    let out = "";
    for (;;) {
      const c = this.ch();
      if (c === undefined) this.fail();
      this.i++;
      if (c === "\\") {
        const e = this.ch();
        if (e !== '"' && e !== "\\") this.fail();
        out += e;
        this.i++;
      } else if (c === '"') {
        return { type: "string", value: out };
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) this.fail();
        out += c;
      }
    }
  }

  token(): BareItem {
    const start = this.i;
    this.i++;
    while (
      this.is(/[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/)
    ) this.i++;
    return { type: "token", value: this.s.slice(start, this.i) };
  }

  binary(): BareItem {
    this.i++;
    const start = this.i;
    while (this.is(/[A-Za-z0-9+/=]/)) this.i++;
    if (this.ch() !== ":") this.fail();
    const text = this.s.slice(start, this.i);
    this.i++;
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
    } catch {
      this.fail();
    }
    return { type: "binary", value: bytes };
  }

  boolean(): BareItem {
    this.i++;
    const c = this.ch();
    if (c !== "0" && c !== "1") this.fail();
    this.i++;
    return { type: "boolean", value: c === "1" };
  }

  displayString(): BareItem {
    this.i++;
    if (this.ch() !== '"') this.fail();
    this.i++;
    const bytes: number[] = [];
    for (;;) {
      const c = this.ch();
      if (c === undefined) this.fail();
      this.i++;
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) this.fail();
      if (c === "%") {
        const hex = this.s.slice(this.i, this.i + 2);
        if (!/^[0-9a-f]{2}$/.test(hex)) this.fail();
        bytes.push(parseInt(hex, 16));
        this.i += 2;
      } else if (c === '"') {
        try {
          const value = new TextDecoder("utf-8", { fatal: true })
            .decode(new Uint8Array(bytes));
          return { type: "displaystring", value };
        } catch {
          this.fail();
        }
      } else {
        bytes.push(code);
      }
    }
  }

  innerList(): Member {
    this.i++; // "("
    const items: { item: BareItem; params: Parameters }[] = [];
    for (;;) {
      this.sp();
      if (this.ch() === ")") {
        this.i++;
        return { kind: "list", items, params: this.params() };
      }
      const item = this.bare();
      items.push({ item, params: this.params() });
      if (this.ch() !== " " && this.ch() !== ")") this.fail();
    }
  }

  member(): Member {
    if (this.ch() === "(") return this.innerList();
    const item = this.bare();
    return { kind: "item", item, params: this.params() };
  }
}

/**
 * Parses a Dictionary field value (RFC 8941 §4.2.2).
 *
 * @param value The combined field value (`Headers.get` joins field lines
 *   with ", ", as RFC 8941 §4.2 combines them).
 * @returns The members by key, in order (a repeated key keeps its last
 *   value), or `undefined` when the value does not parse.
 * @example Directives of a targeted cache control field
 * ```ts ignore
 * const d = parseDictionary("max-age=60, no-cache");
 * // d.get("max-age") is { kind: "item", item: { type: "integer", value: 60 }, ... }
 * ```
 */
export function parseDictionary(
  value: string,
): Map<string, Member> | undefined {
  const p = new Parser(value);
  const out = new Map<string, Member>();
  try {
    p.sp();
    while (p.ch() !== undefined) {
      const k = p.key();
      let m: Member;
      if (p.ch() === "=") {
        p.i++;
        m = p.member();
      } else {
        m = {
          kind: "item",
          item: { type: "boolean", value: true },
          params: p.params(),
        };
      }
      out.delete(k);
      out.set(k, m);
      p.ows();
      if (p.ch() === undefined) break;
      if (p.ch() !== ",") p.fail();
      p.i++;
      p.ows();
      if (p.ch() === undefined) p.fail(); // a trailing comma
    }
  } catch (err) {
    if (err instanceof Fail) return undefined;
    throw err;
  }
  return out;
}
