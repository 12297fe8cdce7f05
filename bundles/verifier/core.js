"use strict";
// tamizdat bundle verification, docs/format.md steps 1-22, in the same order
// and with the same codes as the Python verifier (bundles/verify.py). No DOM.
// A source is {size, read(offset, length) -> Promise<Uint8Array>}.
const MiB = 1048576;
const LIMITS = {bundle: 256 * MiB, entry: 32 * MiB, total: 256 * MiB, ratio: 100, entries: 10000,
  name: 255, control: MiB, articles: 1000, rootBytes: 262144, chain: 1000, jsonDepth: 512};
const ROOT_TYPE = "application/vnd.tamizdat.root+json";
const BUNDLE_TYPE = "application/vnd.tamizdat.bundle+json";
const MANIFEST = "meta/manifest.dsse.json";
const MAX_SAFE = 9007199254740991;
const MEDIA_TYPES = {".html": "text/html", ".json": "application/json", ".css": "text/css",
  ".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"};
const NAME_RE = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;
const ROOT_NAME_RE = /^meta\/roots\/([1-9][0-9]{0,5})\.json$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const LANG_RE = /^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/;
const REGION_RE = /^(?:[A-Z]{2}|\*)$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

class Rejected extends Error {
  constructor(step, code, detail) {
    super("step " + step + ": " + code + (detail ? " (" + detail + ")" : ""));
    this.step = step;
    this.code = code;
  }
}
function fail(step, code, detail) {
  throw new Rejected(step, code, detail);
}

// -- bytes ------------------------------------------------------------------
function u16(b, o) {
  return b[o] | (b[o + 1] << 8);
}
function u32(b, o) {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 16777216;
}
function isSig(b, o, kind) {
  return b[o] === 0x50 && b[o + 1] === 0x4b && b[o + 2] === kind && b[o + 3] === kind + 1;
}
function bytesEq(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.length;
  }
  return out;
}
const utf8 = (s) => new TextEncoder().encode(s);
function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}
async function sha256hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

// CRC-32 (zlib's), sixteen bytes a step through 32-bit loads where the
// platform is little-endian (every browser in use), bytewise otherwise.
const CRC_T = (() => {
  const t = new Int32Array(4096);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 16; k++) {
      c = t[c & 255] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();
const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function crc32(b) {
  const T = CRC_T, n = b.length;
  let c = -1, i = 0;
  if (LITTLE && n >= 32) {
    while ((b.byteOffset + i) & 3) c = T[(c ^ b[i++]) & 255] ^ (c >>> 8);
    const w = new Int32Array(b.buffer, b.byteOffset + i, (n - i) >> 2), m = w.length & ~3;
    for (let j = 0; j < m; j += 4) {
      const a = c ^ w[j], x = w[j + 1], y = w[j + 2], z = w[j + 3];
      c = T[3840 + (a & 255)] ^ T[3584 + ((a >>> 8) & 255)] ^ T[3328 + ((a >>> 16) & 255)] ^ T[3072 + (a >>> 24)]
        ^ T[2816 + (x & 255)] ^ T[2560 + ((x >>> 8) & 255)] ^ T[2304 + ((x >>> 16) & 255)] ^ T[2048 + (x >>> 24)]
        ^ T[1792 + (y & 255)] ^ T[1536 + ((y >>> 8) & 255)] ^ T[1280 + ((y >>> 16) & 255)] ^ T[1024 + (y >>> 24)]
        ^ T[768 + (z & 255)] ^ T[512 + ((z >>> 8) & 255)] ^ T[256 + ((z >>> 16) & 255)] ^ T[z >>> 24];
    }
    i += m * 4;
  }
  for (; i < n; i++) c = T[(c ^ b[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

// A source over a File, never loaded whole. Each slice read costs a few
// milliseconds however small, so reads go through a window: small where the
// walk jumps (headers), growing to 4 MiB while reads run on (entry data).
function fileSource(file) {
  const BIG = 4 * MiB, SMALL = 256 * 1024;
  let start = 0, win = null, ahead = null;
  const direct = (off, end) => file.slice(off, end).arrayBuffer().then((b) => new Uint8Array(b));
  return {
    size: file.size,
    // Start reading a large range now (the next entry), so that it arrives while the current one is hashed.
    readAhead(off, len) {
      const end = Math.min(off + len, file.size);
      if (end - off >= BIG) {
        ahead = {off, end, data: direct(off, end)};
        ahead.data.catch(() => {});
      }
    },
    async read(off, len) {
      const end = Math.min(off + len, file.size);
      if (off >= end) return new Uint8Array(0);
      if (win && off >= start && end <= start + win.length) return win.subarray(off - start, end - start);
      const onward = win && off >= start && off <= start + win.length;
      if (ahead && ahead.off === off && ahead.end === end) {
        const a = ahead;
        ahead = null;
        return a.data;
      }
      if (end - off >= BIG) return direct(off, end);
      start = off;
      win = new Uint8Array(await file.slice(off, Math.min(off + Math.max(onward ? BIG : SMALL, end - off), file.size))
        .arrayBuffer());
      return win.subarray(0, end - off);
    },
  };
}

// -- strings and strict JSON (keys/strictjson.py) --------------------------
function cpLen(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
// Python compares strings by code point; JS by UTF-16 unit (they differ only with surrogates).
function cpCmp(a, b) {
  if (!/[\ud800-\udfff]/.test(a + b)) return a < b ? -1 : a > b ? 1 : 0;
  const x = Array.from(a, (c) => c.codePointAt(0)), y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
function strictlyIncreasing(list) {
  for (let i = 1; i < list.length; i++) if (cpCmp(list[i - 1], list[i]) >= 0) return false;
  return true;
}

function parseJSON(bytes, step) {
  let s;
  try {
    s = new TextDecoder("utf-8", {fatal: true, ignoreBOM: true}).decode(bytes);
  } catch (e) {
    fail(step, "json-bad-utf8");
  }
  if (s.charCodeAt(0) === 0xfeff) fail(step, "json-syntax");
  const n = s.length;
  let i = 0;
  const syntax = () => fail(step, "json-syntax");
  const digit = (k) => k < n && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57;
  const ws = () => {
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
    }
  };
  const hex4 = (k) => {
    if (k + 4 > n || !/^[0-9a-fA-F]{4}$/.test(s.slice(k, k + 4))) syntax();
    return parseInt(s.slice(k, k + 4), 16);
  };
  function str() {
    i++;
    let out = "", st = i;
    for (;;) {
      if (i >= n) syntax();
      const c = s.charCodeAt(i);
      if (c === 34) {
        out += s.slice(st, i++);
        return out;
      }
      if (c < 32) syntax();
      if (c !== 92) {
        i++;
        continue;
      }
      out += s.slice(st, i);
      const e = s[i + 1];
      if (e === "u") {
        const hi = hex4(i + 2);
        i += 6;
        if (hi >= 0xd800 && hi <= 0xdbff && i + 6 < n && s[i] === "\\" && s[i + 1] === "u") {
          const lo = hex4(i + 2);
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            out += String.fromCharCode(hi, lo);
            i += 6;
            st = i;
            continue;
          }
        }
        out += String.fromCharCode(hi);
      } else {
        const m = {"\"": "\"", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t"}[e];
        if (m === undefined || i + 1 >= n) syntax();
        out += m;
        i += 2;
      }
      st = i;
    }
  }
  function num() {
    const st = i;
    if (s[i] === "-") i++;
    if (s[i] === "0") i++;
    else if (i < n && s[i] >= "1" && s[i] <= "9") while (digit(i)) i++;
    else syntax();
    let float = false;
    if (s[i] === "." && digit(i + 1)) {
      i += 2;
      while (digit(i)) i++;
      float = true;
    }
    if ((s[i] === "e" || s[i] === "E") && i + 1 < n) {
      let j = i + 1;
      if ((s[j] === "+" || s[j] === "-") && j + 1 < n) j++;
      if (digit(j)) {
        while (digit(j)) j++;
        i = j;
        float = true;
      }
    }
    if (float) fail(step, "json-bad-number");
    const t = s.slice(st, i), d = t[0] === "-" ? t.slice(1) : t;
    if (d.length > 4300) syntax(); // Python's int() digit limit raises ValueError
    if (d.length > 16 || (d.length === 16 && d > "9007199254740991")) fail(step, "json-bad-number");
    return Number(t);
  }
  function value(depth) {
    if (i >= n) syntax();
    const c = s[i];
    if (c === "\"") return str();
    if (c === "{" || c === "[") {
      if (depth >= LIMITS.jsonDepth) syntax();
      return c === "{" ? obj(depth + 1) : arr(depth + 1);
    }
    for (const [word, v] of [["null", null], ["true", true], ["false", false]]) {
      if (s.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    if (s.startsWith("NaN", i) || s.startsWith("Infinity", i) || s.startsWith("-Infinity", i)) {
      fail(step, "json-bad-number");
    }
    return num();
  }
  function obj(depth) {
    i++;
    ws();
    const keys = [], vals = [];
    if (s[i] !== "}") {
      for (;;) {
        if (s[i] !== "\"") syntax();
        keys.push(str());
        ws();
        if (s[i] !== ":") syntax();
        i++;
        ws();
        vals.push(value(depth));
        ws();
        if (s[i] === "}") break;
        if (s[i] !== ",") syntax();
        i++;
        ws();
      }
    }
    i++;
    const o = Object.create(null);
    for (let k = 0; k < keys.length; k++) {
      if (Object.prototype.hasOwnProperty.call(o, keys[k])) fail(step, "json-duplicate-key");
      o[keys[k]] = vals[k];
    }
    return o;
  }
  function arr(depth) {
    i++;
    ws();
    const out = [];
    if (s[i] === "]") {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(depth));
      ws();
      if (s[i] === "]") {
        i++;
        return out;
      }
      if (s[i] !== ",") syntax();
      i++;
      ws();
    }
  }
  ws();
  const v = value(0);
  ws();
  if (i !== n) syntax();
  return v;
}

// -- schema helpers (keys/schema.py Reader) ---------------------------------
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isKeyid = (v) => typeof v === "string" && SHA_RE.test(v);

function reader(doc, step, code, required, optional) {
  const bad = () => fail(step, code);
  if (!isObj(doc)) bad();
  for (const k of required) if (!has(doc, k)) bad();
  for (const k of Object.keys(doc)) if (!required.includes(k) && !(optional || []).includes(k)) bad();
  const r = {
    doc,
    fail: bad,
    text(k, max, min) {
      const v = doc[k];
      if (typeof v !== "string") bad();
      const len = cpLen(v);
      if (len < (min === undefined ? 1 : min) || len > max || v.includes("\0")) bad();
      return v;
    },
    optText: (k, max) => (has(doc, k) ? r.text(k, max) : null),
    integer(k, lo, hi) {
      const v = doc[k];
      if (typeof v !== "number" || v < (lo || 0) || v > (hi === undefined ? MAX_SAFE : hi)) bad();
      return v;
    },
    time: (k) => parseTime(doc[k], step),
    optTime: (k) => (has(doc, k) ? parseTime(doc[k], step) : null),
    items(k, max, min) {
      const v = doc[k];
      if (!Array.isArray(v) || v.length < (min || 0) || v.length > max) bad();
      return v;
    },
    strings(k, max, maxLen, min) {
      const v = r.items(k, max, min);
      for (const x of v) if (typeof x !== "string" || cpLen(x) < 1 || cpLen(x) > maxLen) bad();
      if (new Set(v).size !== v.length) bad();
      return v;
    },
  };
  return r;
}

// Times stay strings: the one allowed spelling sorts like the moment it names.
function parseTime(v, step) {
  const m = typeof v === "string" ? TIME_RE.exec(v) : null;
  if (!m) fail(step, "bad-time");
  const [y, mo, d, h, mi, sec] = m.slice(1).map(Number);
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (y < 1 || !days || d < 1 || d > days || h > 23 || mi > 59 || sec > 59) fail(step, "bad-time");
  return v;
}

// -- keys, DSSE (keys/ed25519.py, keys/dsse.py) -----------------------------
function b64decode(text, step) {
  if (typeof text !== "string" || !B64_RE.test(text)) fail(step, "bad-base64");
  const bin = atob(text);
  if (btoa(bin) !== text) fail(step, "bad-base64");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
const P25519 = (1n << 255n) - 19n;
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
const SMALL_Y = [0n, 1n, P25519 - 1n, Y8, P25519 - Y8];
function checkPublicKey(raw, step) {
  if (raw.length !== 32) fail(step, "bad-public-key");
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? raw[i] & 0x7f : raw[i]);
  if (y >= P25519) fail(step, "bad-public-key");
  if (SMALL_Y.includes(y)) fail(step, "bad-public-key");
}
async function publicKey(doc, step) {
  const r = reader(doc, step, "bad-root", ["keyid", "public"]);
  const raw = b64decode(doc.public, step);
  checkPublicKey(raw, step);
  const keyid = await sha256hex(raw);
  if (doc.keyid !== keyid) r.fail();
  return {keyid, raw, handle: null};
}
async function verifySig(key, sig, message) {
  if (sig.length !== 64) return false;
  try {
    if (!key.handle) key.handle = await crypto.subtle.importKey("raw", key.raw, {name: "Ed25519"}, false, ["verify"]);
    return await crypto.subtle.verify({name: "Ed25519"}, key.handle, sig, message);
  } catch (e) {
    return false;
  }
}
function pae(type, payload) {
  const t = utf8(type);
  return concat([utf8("DSSEv1 " + t.length + " "), t, utf8(" " + payload.length + " "), payload]);
}
function parseEnvelope(bytes, type, step) {
  const doc = parseJSON(bytes, step);
  const keys = isObj(doc) ? Object.keys(doc) : [];
  if (keys.length !== 3 || !["payloadType", "payload", "signatures"].every((k) => has(doc, k))) {
    fail(step, "bad-envelope");
  }
  if (doc.payloadType !== type) fail(step, "wrong-payload-type");
  const payload = b64decode(doc.payload, step);
  const list = doc.signatures;
  if (!Array.isArray(list) || list.length < 1 || list.length > 16) fail(step, "bad-envelope");
  const sigs = [];
  for (const it of list) {
    if (!isObj(it) || Object.keys(it).length !== 2 || !has(it, "keyid") || !has(it, "sig")) fail(step, "bad-envelope");
    if (!isKeyid(it.keyid)) fail(step, "bad-envelope");
    sigs.push({keyid: it.keyid, sig: b64decode(it.sig, step)});
  }
  return {type, payload, sigs};
}
// Key ids of `keys` (a Map id -> key) with a valid signature; each id counts once.
async function signedBy(env, keys) {
  const message = pae(env.type, env.payload);
  const good = new Set();
  for (const s of env.sigs) {
    const key = keys.get(s.keyid);
    if (key && !good.has(s.keyid) && (await verifySig(key, s.sig, message))) good.add(s.keyid);
  }
  return good;
}
async function threshold(env, keys, needed, step, code) {
  if ((await signedBy(env, keys)).size < needed) fail(step, code);
}

// -- root documents and the chain (keys/root.py) ----------------------------
const PURPOSES = ["bundle", "index", "log"];
const ORIGIN_RE = /^[!-*,-~]{1,255}$/;
const POLICY_RE = /^[ -~\t\n]*\n$/;
// The optional `tlog` section (keys/root.py LogSettings): only its shape; the
// policy grammar is checked where checkpoints are (bundles/verifier/tlog.js).
function parseLogSettings(doc, step) {
  const t = reader(doc, step, "bad-root", ["origin", "policy", "max_age"]);
  const {origin, policy} = doc, maxAge = doc.max_age;
  if (typeof origin !== "string" || typeof policy !== "string" || !Number.isInteger(maxAge)) t.fail();
  if (!ORIGIN_RE.test(origin)) t.fail();
  if (policy.length > 65536 || !POLICY_RE.test(policy)) t.fail();
  for (const line of policy.split("\n")) if (line.split(/[ \t]+/).filter((x) => x)[0] === "log") t.fail();
  if (maxAge < 3600 || maxAge > 31622400) t.fail();
  return {origin, policy, maxAge};
}
async function parseRoot(payload, step) {
  const doc = parseJSON(payload, step);
  const r = reader(doc, step, "bad-root", ["format", "version", "publisher", "created", "expires",
    "root_keys", "threshold", "signing_keys", "revoked"], ["tlog"]);
  if (r.integer("format") !== 1) r.fail();
  const rootKeys = new Map();
  for (const it of r.items("root_keys", 64, 1)) {
    const key = await publicKey(it, step);
    if (rootKeys.has(key.keyid)) r.fail();
    rootKeys.set(key.keyid, key);
  }
  const signing = new Map();
  for (const it of r.items("signing_keys", 64)) {
    const k = reader(it, step, "bad-root", ["keyid", "public", "purposes", "not_before", "not_after"]);
    const key = await publicKey({keyid: it.keyid, public: it.public}, step);
    const purposes = k.strings("purposes", PURPOSES.length, 200, 1);
    if (purposes.some((p) => !PURPOSES.includes(p)) || !strictlyIncreasing(purposes)) k.fail();
    if (signing.has(key.keyid)) r.fail();
    signing.set(key.keyid, {key, purposes, notBefore: k.time("not_before"), notAfter: k.time("not_after")});
  }
  const revoked = new Map();
  for (const it of r.items("revoked", 640)) {
    const v = reader(it, step, "bad-root", ["keyid", "revoked_at", "reason"]);
    if (!isKeyid(it.keyid) || revoked.has(it.keyid)) v.fail();
    revoked.set(it.keyid, {at: v.time("revoked_at"), reason: v.text("reason", 1000)});
  }
  const tlog = has(doc, "tlog") ? parseLogSettings(doc.tlog, step) : null;
  const root = {
    version: r.integer("version", 1),
    publisher: r.text("publisher", 200),
    created: r.time("created"),
    expires: r.time("expires"),
    rootKeys,
    threshold: r.integer("threshold", 1, 64),
    signing,
    revoked,
    tlog,
  };
  if (root.threshold > rootKeys.size) r.fail();
  for (const id of signing.keys()) if (rootKeys.has(id)) r.fail();
  for (const e of signing.values()) if (e.notBefore >= e.notAfter) r.fail();
  if (root.created >= root.expires) r.fail();
  return root;
}
async function verifyRootChain(docs, pinned) {
  // Step 12: every carried root parses.
  if (docs.length > LIMITS.chain) fail(12, "root-chain");
  const parsed = [];
  for (const d of docs) {
    if (d.length > LIMITS.rootBytes) fail(12, "bad-root");
    const env = parseEnvelope(d, ROOT_TYPE, 12);
    parsed.push([env, await parseRoot(env.payload, 12)]);
  }
  // Step 13: the anchor is the lowest root listing the pinned key and signed by it.
  let start = -1;
  for (let i = 0; i < parsed.length && start < 0; i++) {
    const [env, root] = parsed[i];
    if (root.rootKeys.has(pinned) && (await signedBy(env, root.rootKeys)).has(pinned)) start = i;
  }
  if (start < 0) fail(13, "root-not-pinned");
  await threshold(parsed[start][0], parsed[start][1].rootKeys, parsed[start][1].threshold, 13, "root-bad-signature");
  const chain = [parsed[start][1]];
  // Every carried root below the anchor verifies too, walking down: exactly one version older
  // (step 14), its keys' threshold on the version above and on itself (step 15).
  for (let i = start - 1; i >= 0; i--) {
    const [env, prev] = parsed[i];
    if (prev.version !== chain[0].version - 1) fail(14, "root-chain-gap");
    await threshold(parsed[i + 1][0], prev.rootKeys, prev.threshold, 15, "root-chain-signature");
    await threshold(env, prev.rootKeys, prev.threshold, 15, "root-chain-signature");
    chain.unshift(prev);
  }
  for (const [env, root] of parsed.slice(start + 1)) {
    const prev = chain[chain.length - 1];
    // Step 14: exactly one version newer. Step 15: signed by both versions' thresholds.
    if (root.version !== prev.version + 1) fail(14, "root-chain-gap");
    await threshold(env, prev.rootKeys, prev.threshold, 15, "root-chain-signature");
    await threshold(env, root.rootKeys, root.threshold, 15, "root-chain-signature");
    chain.push(root);
  }
  return chain;
}

// -- the manifest (bundles/manifest.py) -------------------------------------
function parseManifest(payload) {
  const S = 18;
  const doc = parseJSON(payload, S);
  const rd = (d, req, opt) => reader(d, S, "bad-manifest", req, opt);
  const r = rd(doc, ["format", "publisher", "root_keyid", "created", "kind", "articles", "notices", "supersedes",
    "files"], ["title"]);
  const bad = r.fail;
  if (r.integer("format") !== 1) bad();
  const files = r.items("files", LIMITS.entries, 1).map((it) => {
    const f = rd(it, ["path", "size", "sha256", "type"]);
    return {path: f.text("path", 255), size: f.integer("size"), sha256: f.text("sha256", 64), type: f.text("type", 100)};
  });
  const notices = r.items("notices", 64).map((it) => {
    const n = rd(it, ["id", "regions", "text"]);
    const text = it.text;
    if (!isObj(text) || !Object.values(text).every((v) => typeof v === "string" && cpLen(v) > 0 && cpLen(v) <= 20000)) {
      n.fail();
    }
    return {id: n.text("id", 128), regions: n.strings("regions", 300, 2), text};
  });
  const articles = r.items("articles", LIMITS.articles, 1).map((it) => {
    const a = rd(it, ["id", "version", "lang", "title", "published", "path", "data", "notices"],
      ["summary", "byline", "updated"]);
    return {id: a.text("id", 128), version: a.integer("version", 1), lang: a.text("lang", 35),
      title: a.text("title", 500), summary: a.optText("summary", 2000), byline: a.optText("byline", 500),
      published: a.time("published"), updated: a.optTime("updated"), path: a.text("path", 255),
      data: a.text("data", 255), notices: a.strings("notices", 64, 128)};
  });
  const m = {publisher: r.text("publisher", 200), rootKeyid: r.text("root_keyid", 64), created: r.time("created"),
    kind: r.text("kind", 20), title: r.optText("title", 500), articles, notices,
    supersedes: r.strings("supersedes", 1000, 64), files};
  // Self-consistency, in Manifest.__post_init__'s order.
  if (m.kind !== "article" && m.kind !== "edition") bad();
  if (!isKeyid(m.rootKeyid)) bad();
  if (m.kind === "article" && articles.length !== 1) bad();
  const paths = files.map((f) => f.path);
  if (!strictlyIncreasing(paths)) bad();
  const listed = new Set(paths);
  for (const f of files) {
    if (!(NAME_RE.test(f.path) && f.path.length <= 255) || f.path.startsWith("meta/")) bad();
    const last = f.path.slice(f.path.lastIndexOf("/") + 1);
    const ext = last.includes(".") ? f.path.slice(f.path.lastIndexOf(".")) : "";
    if (!has(MEDIA_TYPES, ext) || MEDIA_TYPES[ext] !== f.type) bad();
    if (!SHA_RE.test(f.sha256) || f.size > LIMITS.entry) bad();
  }
  const noticeIds = notices.map((x) => x.id);
  if (new Set(noticeIds).size !== noticeIds.length) bad();
  for (const x of notices) {
    if (!ID_RE.test(x.id) || !Object.keys(x.text).length) bad();
    if (x.regions.some((g) => !REGION_RE.test(g)) || !strictlyIncreasing(x.regions)) bad();
    if (Object.keys(x.text).some((l) => !LANG_RE.test(l))) bad();
  }
  const seen = new Set();
  for (const a of articles) {
    if (!ID_RE.test(a.id) || !LANG_RE.test(a.lang) || a.version < 1) bad();
    const key = a.id + "\n" + a.version;
    if (seen.has(key)) bad();
    seen.add(key);
    if (!listed.has(a.path) || !a.path.endsWith(".html")) bad();
    if (!listed.has(a.data) || !a.data.endsWith(".json")) bad();
    if (a.notices.some((x) => !noticeIds.includes(x))) bad();
    if (a.updated !== null && a.updated < a.published) bad();
  }
  if (new Set(m.supersedes).size !== m.supersedes.length || m.supersedes.some((x) => !SHA_RE.test(x))) bad();
  if (!listed.has("index.html")) bad();
  return m;
}

// -- the archive (bundles/zipstrict.py) ------------------------------------
async function readStructure(src) {
  const size = src.size;
  // Step 1: overall size.
  if (size > LIMITS.bundle) fail(1, "zip-too-large");
  if (size < 22) fail(1, "zip-truncated");
  // Step 2: the end record is the last 22 bytes.
  const tl = Math.min(size, 22 + 0xffff);
  const tail = await src.read(size - tl, tl);
  const e = tl - 22;
  if (!isSig(tail, e, 5)) {
    let pos = -1;
    for (let i = tl - 4; i >= 0 && pos < 0; i--) if (isSig(tail, i, 5)) pos = i;
    if (pos < 0) fail(2, "zip-no-end-record");
    const clen = pos + 22 <= tl ? u16(tail, pos + 20) : 0;
    if (clen && pos + 22 + clen === tl) fail(2, "zip-comment");
    fail(2, "zip-trailing-data");
  }
  const nDisk = u16(tail, e + 8), nTotal = u16(tail, e + 10), cdSize = u32(tail, e + 12), cdOff = u32(tail, e + 16);
  if (u16(tail, e + 20)) fail(2, "zip-bad-end-record");
  if (nDisk === 0xffff || nTotal === 0xffff || cdSize === 0xffffffff || cdOff === 0xffffffff) {
    fail(2, "zip64-unsupported");
  }
  if (u16(tail, e + 4) || u16(tail, e + 6) || nDisk !== nTotal) fail(2, "zip-bad-end-record");
  if (nTotal === 0 || nTotal > LIMITS.entries) fail(2, "zip-entry-count");
  // Step 3: the central directory ends at the end record and parses exactly.
  const eocdOff = size - 22;
  if (cdOff + cdSize !== eocdOff) fail(3, cdOff + cdSize < eocdOff ? "zip-trailing-data" : "zip-bad-central");
  if (cdSize > nTotal * (46 + LIMITS.name)) fail(3, "zip-bad-central");
  const cd = await src.read(cdOff, cdSize);
  const heads = [];
  let p = 0;
  for (let k = 0; k < nTotal; k++) {
    if (p + 46 > cd.length || !isSig(cd, p, 1)) fail(3, "zip-bad-central");
    const end = p + 46 + u16(cd, p + 28) + u16(cd, p + 30) + u16(cd, p + 32);
    if (end > cd.length) fail(3, "zip-bad-central");
    heads.push(p);
    p = end;
  }
  if (p !== cd.length) fail(3, "zip-bad-central");
  const raw = heads.map((o) => {
    const h = {made: u16(cd, o + 4), needed: u16(cd, o + 6), flags: u16(cd, o + 8), method: u16(cd, o + 10),
      mtime: u16(cd, o + 12), mdate: u16(cd, o + 14), crc: u32(cd, o + 16), csize: u32(cd, o + 20),
      size: u32(cd, o + 24), nlen: u16(cd, o + 28), xlen: u16(cd, o + 30), clen: u16(cd, o + 32),
      disk: u16(cd, o + 34), iattr: u16(cd, o + 36), eattr: u32(cd, o + 38), off: u32(cd, o + 42)};
    h.nameBytes = cd.subarray(o + 46, o + 46 + h.nlen);
    h.name = String.fromCharCode.apply(null, h.nameBytes); // latin-1, as Python decodes it
    return h;
  });
  for (const h of raw) {
    // Step 4: no encryption. Step 5: stored or deflated. Step 6: regular files.
    if (h.flags & 0x41) fail(4, "zip-encrypted");
    if (h.method !== 0 && h.method !== 8) fail(5, "zip-method");
    const type = (h.eattr >>> 16) & 0o170000;
    if (type === 0o120000) fail(6, "zip-symlink");
    if (type !== 0o100000 || h.eattr & 0xffff) fail(6, "zip-not-file");
    // Step 7: canonical header fields.
    if (h.made !== 0x0314 || h.needed !== 20 || h.flags || h.mtime || h.mdate !== 0x21 || h.xlen || h.clen ||
        h.disk || h.iattr || h.eattr !== 0x81a40000) fail(7, "zip-not-canonical");
    if (h.method === 0 && h.csize !== h.size) fail(7, "zip-not-canonical");
    if (h.method !== (/\.(jpg|png|webp)$/.test(h.name) ? 0 : 8)) fail(7, "zip-not-canonical");
  }
  // Step 8: unique, safe, sorted names.
  const seen = new Set(), folded = new Set();
  for (const h of raw) {
    if (seen.has(h.name)) fail(8, "zip-duplicate-name");
    const f = h.name.toLowerCase().replace(/\u00df/g, "ss").replace(/\u00b5/g, "\u03bc"); // str.casefold on latin-1
    if (folded.has(f)) fail(8, "zip-case-collision");
    seen.add(h.name);
    folded.add(f);
  }
  for (const h of raw) if (h.name.length > LIMITS.name || !NAME_RE.test(h.name)) fail(8, "zip-bad-name");
  for (let k = 1; k < raw.length; k++) if (raw[k - 1].name > raw[k].name) fail(8, "zip-not-sorted");
  // Step 9: contiguous from 0 to the central directory; local headers repeat central ones.
  const entries = [];
  let expected = 0;
  for (const h of raw) {
    if (h.off !== expected) {
      if (!entries.length && h.off > 0) fail(9, "zip-prepended-data");
      fail(9, h.off < expected ? "zip-overlap" : "zip-gap");
    }
    const loc = await src.read(h.off, 30 + h.nlen);
    if (loc.length < 30 + h.nlen || !isSig(loc, 0, 3) || u16(loc, 4) !== h.needed || u16(loc, 6) !== h.flags ||
        u16(loc, 8) !== h.method || u16(loc, 10) !== h.mtime || u16(loc, 12) !== h.mdate || u32(loc, 14) !== h.crc ||
        u32(loc, 18) !== h.csize || u32(loc, 22) !== h.size || u16(loc, 26) !== h.nlen || u16(loc, 28) !== 0 ||
        !bytesEq(loc.subarray(30), h.nameBytes)) fail(9, "zip-local-mismatch");
    const dataOff = h.off + 30 + h.nlen;
    expected = dataOff + h.csize;
    if (expected > cdOff) fail(9, "zip-overlap");
    entries.push({name: h.name, method: h.method, crc: h.crc, csize: h.csize, size: h.size, dataOff});
  }
  if (expected !== cdOff) fail(9, "zip-gap");
  // Step 10: size limits and compression ratio.
  let total = 0;
  for (const en of entries) {
    if (en.size > LIMITS.entry) fail(10, "zip-entry-too-large");
    if (en.method === 8 && en.size > LIMITS.ratio * Math.max(en.csize, 1)) fail(10, "zip-ratio");
    total += en.size;
  }
  if (total > LIMITS.total) fail(10, "zip-total-too-large");
  return entries;
}

// An entry's bytes, checked against its declared size (entry-corrupt at `step`);
// entryBytes also checks the CRC. Deflated data is fed 16 KiB at a time and
// kept only up to the declared size.
async function entryData(src, en, step) {
  let out;
  if (en.method === 0) {
    out = await src.read(en.dataOff, en.csize);
  } else {
    out = new Uint8Array(en.size);
    let n = 0, err = null;
    const ds = new DecompressionStream("deflate-raw");
    const w = ds.writable.getWriter(), r = ds.readable.getReader();
    const reading = (async () => {
      try {
        for (;;) {
          const {value, done} = await r.read();
          if (done) return;
          if (n + value.length > en.size) throw new Error("inflates beyond its size");
          out.set(value, n);
          n += value.length;
        }
      } catch (x) {
        err = err || x;
        w.abort(x).catch(() => {});
        r.cancel(x).catch(() => {});
      }
    })();
    try {
      const CH = 16384;
      for (let pos = 0; pos < en.csize && !err; pos += CH) {
        const chunk = await src.read(en.dataOff + pos, Math.min(CH, en.csize - pos));
        if (err) break;
        await w.write(chunk);
      }
      if (!err) await w.close();
    } catch (x) {
      err = err || x;
    }
    await reading;
    if (err) fail(step, "entry-corrupt");
    out = out.subarray(0, n);
  }
  if (out.length !== en.size) fail(step, "entry-corrupt");
  return out;
}
async function entryBytes(src, en, step) {
  const out = await entryData(src, en, step);
  if (crc32(out) !== en.crc) fail(step, "entry-corrupt");
  return out;
}

// -- the whole verification (bundles/verify.py) ----------------------------
async function verifyBundle(src, pinned, progress) {
  const note = progress || (() => {});
  note(1, 0, 0);
  const entries = await readStructure(src);
  const byName = new Map(entries.map((e) => [e.name, e]));
  // Step 11: control entries.
  note(11, 0, 0);
  const roots = new Map();
  for (const e of entries) {
    if (!e.name.startsWith("meta/") || e.name === MANIFEST) continue;
    const m = ROOT_NAME_RE.exec(e.name);
    if (!m) fail(11, "bad-control-entry");
    roots.set(Number(m[1]), e);
  }
  if (!byName.has(MANIFEST)) fail(11, "manifest-missing");
  if (!roots.size) fail(11, "root-missing");
  const versions = [...roots.keys()].sort((a, b) => a - b);
  if (versions.some((v, k) => v !== k + 1)) fail(11, "root-missing");
  const control = [byName.get(MANIFEST), ...versions.map((v) => roots.get(v))];
  for (const e of control) if (e.size > LIMITS.control) fail(11, "control-too-large");
  const docs = [];
  for (const e of control) docs.push(await entryBytes(src, e, 11));
  // Steps 12-15: the root chain from the pinned id.
  note(12, 0, 0);
  const chain = await verifyRootChain(docs.slice(1), pinned);
  const root = chain[chain.length - 1];
  // Step 16: the manifest envelope.
  const env = parseEnvelope(docs[0], BUNDLE_TYPE, 16);
  // Step 17: signed by a key the newest root delegates; bytes checked before parsing.
  const delegated = new Map([...root.signing].map(([id, k]) => [id, k.key]));
  const signers = [...(await signedBy(env, delegated))].sort();
  if (!signers.length) fail(17, "manifest-bad-signature");
  // Step 18: the payload parses strictly and is self-consistent.
  const manifest = parseManifest(env.payload);
  // Step 19: the signing key is not revoked, may sign bundles, and was valid at `created`.
  let signingKeyid = null, first = null;
  for (const id of signers) {
    const k = root.signing.get(id);
    const code = root.revoked.has(id) ? "key-revoked" : !k ? "key-unknown" : !k.purposes.includes("bundle")
      ? "key-purpose" : manifest.created < k.notBefore || manifest.created > k.notAfter ? "key-outside-window" : null;
    if (!code) {
      signingKeyid = id;
      break;
    }
    first = first || code;
  }
  if (!signingKeyid) fail(19, first);
  // Step 20: the manifest names this publisher.
  const known = new Set(), publishers = new Set();
  for (const r of chain) {
    for (const id of r.rootKeys.keys()) known.add(id);
    publishers.add(r.publisher);
  }
  if (!known.has(manifest.rootKeyid) || !publishers.has(manifest.publisher)) fail(20, "manifest-root-mismatch");
  // Step 21: exactly the listed files plus the control entries.
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const controlNames = new Set(control.map((e) => e.name));
  for (const e of entries) if (!controlNames.has(e.name) && !listed.has(e.name)) fail(21, "entry-not-in-manifest");
  for (const name of listed.keys()) if (!byName.has(name)) fail(21, "entry-missing");
  // Step 22: every listed entry's size, CRC and SHA-256, in archive order.
  // SHA-256 runs on WebCrypto's own thread: an entry's hash is awaited only
  // after the next entry is read and its CRC computed, and a failure of that
  // next entry is reported only once this one's hash is known to match.
  const todo = entries.filter((e) => listed.has(e.name));
  let done = 0, pending = null;
  const settle = async () => {
    const p = pending;
    pending = null;
    if (p && (await p.digest) !== p.sha256) fail(22, "entry-hash-mismatch");
  };
  for (const e of todo) {
    const f = listed.get(e.name), next = todo[done + 1];
    note(22, done++, todo.length);
    let digest = null, err = null;
    try {
      if (e.size !== f.size) fail(22, "entry-size-mismatch");
      const data = await entryData(src, e, 22);
      if (next && next.method === 0 && src.readAhead) src.readAhead(next.dataOff, next.csize);
      digest = sha256hex(data);
      if (crc32(data) !== e.crc) fail(22, "entry-corrupt");
    } catch (x) {
      err = x;
    }
    await settle();
    if (err) throw err;
    pending = {digest, sha256: f.sha256};
  }
  await settle();
  return {bundleId: await sha256hex(env.payload), manifest, chain, rootVersion: root.version, signingKeyid,
    size: src.size, byName, files: listed};
}

// Bytes of a listed file, read again and checked against the verified manifest
// before anything is shown (the file on disk could have changed since).
async function readVerified(src, result, path) {
  const e = result.byName.get(path), f = result.files.get(path);
  if (!e || !f) throw new Error("not a listed file");
  const data = await entryBytes(src, e, 22);
  if ((await sha256hex(data)) !== f.sha256) fail(22, "entry-hash-mismatch");
  return data;
}

// Can this browser check a bundle? Known answers, not just feature names.
async function selfTest() {
  try {
    const unhex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
    // RFC 8032, test 1 (empty message).
    const key = {raw: unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), handle: null};
    const sig = unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39" +
      "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    if (!(await verifySig(key, sig, new Uint8Array(0)))) return false;
    sig[0] ^= 1;
    if (await verifySig(key, sig, new Uint8Array(0))) return false;
    if ((await sha256hex(utf8("abc"))).slice(0, 8) !== "ba7816bf") return false;
    // "hello" deflated; then with junk after the end, then cut short: both must fail.
    const hello = [0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    const src = (b) => ({size: b.length, read: async (o, l) => b.subarray(o, o + l)});
    const en = (b, size) => ({method: 8, csize: b.length, size, crc: 0x3610a686, dataOff: 0});
    const ok = await entryBytes(src(new Uint8Array(hello)), en(hello, 5), 0);
    if (new TextDecoder().decode(ok) !== "hello") return false;
    for (const b of [[...hello, 0, 1], hello.slice(0, 4)]) {
      try {
        await entryBytes(src(new Uint8Array(b)), en(b, 5), 0);
        return false;
      } catch (x) {
        if (!(x instanceof Rejected)) return false;
      }
    }
    return typeof BigInt === "function";
  } catch (e) {
    return false;
  }
}

// @node-only: the build stops here (quick checks in Node.js load this file directly).
if (typeof module === "object" && module.exports) {
  module.exports = {verifyBundle, readVerified, selfTest, parseJSON, parseManifest, readStructure, fileSource, crc32,
    Rejected, LIMITS};
}
