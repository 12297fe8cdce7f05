"use strict";
// Log proofs (docs/transparency.md, "Readers"), in the same order and with the
// same codes as bundles/tlog/reader.py: a `.tlog-proof` file (c2sp.org/tlog-proof),
// its checkpoint (c2sp.org/tlog-checkpoint) as a signed note (c2sp.org/signed-note,
// Ed25519) with witness cosignatures (c2sp.org/tlog-cosignature, type 0x04), the
// root's witness policy (c2sp.org/tlog-policy) and RFC 6962 inclusion. No DOM.
// It uses core.js's byte helpers (utf8, concat, bytesEq, hex, B64_RE,
// checkPublicKey, verifySig). Codes: no-log, no-proof, bad-proof, no-quorum.
const TLOG_SKEW = 300n;
const TLOG_MAX_PROOF = 65536;
const TLOG_MAX_HASHES = 64;
const TLOG_MAX_SIGS = 64;
const TLOG_U64 = (1n << 64n) - 1n;
const TLOG_HEADER = "c2sp.org/tlog-proof@v1";
const TLOG_SIG_PREFIX = "\u2014 ";
const TLOG_CONTROL = /[\x00-\x09\x0b-\x1f]/;
const TLOG_SPACE = /[\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const TLOG_DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/;
const TLOG_EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

class LogFail extends Error {
  constructor(code, reason) {
    super(code + " (" + (reason || code) + ")");
    this.code = code;
    this.reason = reason || code;
  }
}
function tlogFail(reason) {
  throw new LogFail("bad-proof", reason);
}
function tlogB64(text, reason) {
  if (!B64_RE.test(text)) tlogFail(reason);
  const bin = atob(text);
  if (btoa(bin) !== text) tlogFail(reason);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
async function tlogSha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
function tlogValidName(name) {
  return name.length > 0 && !name.includes("+") && !TLOG_SPACE.test(name) && !TLOG_CONTROL.test(name) &&
    !name.includes("\x7f");
}
async function tlogKeyId(name, type, pub) {
  return (await tlogSha256(concat([utf8(name + "\n"), new Uint8Array([type]), pub]))).subarray(0, 4);
}

// -- signed notes (bundles/tlog/note.py Note.parse) ---------------------------
function tlogParseNote(bytes) {
  let s;
  try {
    s = new TextDecoder("utf-8", {fatal: true, ignoreBOM: true}).decode(bytes);
  } catch (e) {
    tlogFail("bad-note");
  }
  if (TLOG_CONTROL.test(s)) tlogFail("bad-note");
  const split = s.lastIndexOf("\n\n");
  if (split < 0) tlogFail("bad-note");
  const text = s.slice(0, split + 1), block = s.slice(split + 2);
  if (!block.endsWith("\n")) tlogFail("bad-note");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > TLOG_MAX_SIGS) tlogFail("bad-note");
  const sigs = [], seen = new Set();
  for (const line of lines) {
    if (!line.startsWith(TLOG_SIG_PREFIX)) tlogFail("bad-note");
    const rest = line.slice(TLOG_SIG_PREFIX.length), sp = rest.indexOf(" ");
    const name = sp < 0 ? rest : rest.slice(0, sp), sig64 = sp < 0 ? "" : rest.slice(sp + 1);
    if (sp < 0 || !sig64 || !tlogValidName(name)) tlogFail("bad-note");
    const raw = tlogB64(sig64, "bad-note");
    if (raw.length < 5) tlogFail("bad-note");
    const key = name + " " + sig64;
    if (seen.has(key)) continue;
    seen.add(key);
    sigs.push({name, keyId: raw.subarray(0, 4), sig: raw.subarray(4)});
  }
  return {text, sigs};
}
// A checkpoint body (bundles/tlog/checkpoint.py Checkpoint.parse).
function tlogParseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) tlogFail("bad-checkpoint");
  const [origin, size, root64] = lines;
  if (!origin) tlogFail("bad-checkpoint");
  if (!TLOG_DECIMAL.test(size) || BigInt(size) > TLOG_U64) tlogFail("bad-checkpoint");
  const root = tlogB64(root64, "bad-checkpoint");
  if (root.length !== 32) tlogFail("bad-checkpoint");
  const ext = lines.slice(3);
  if (ext.some((e) => !e)) tlogFail("bad-checkpoint");
  if (BigInt(size) === 0n && hex(root) !== TLOG_EMPTY_ROOT) tlogFail("bad-checkpoint");
  return {origin, size: BigInt(size), root, ext};
}

// -- proof files (bundles/tlog/proof_file.py ProofFile.parse) -------------------
function tlogParseProof(bytes) {
  if (bytes.length > TLOG_MAX_PROOF) tlogFail("too-large");
  let cut = -1;
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i + 1] === 10) {
      cut = i;
      break;
    }
  }
  if (cut < 0) tlogFail("bad-proof-file");
  const head = bytes.subarray(0, cut), checkpoint = bytes.subarray(cut + 2);
  for (const b of head) if (b > 127) tlogFail("bad-proof-file");
  const lines = String.fromCharCode.apply(null, head).split("\n");
  if (lines[0] !== TLOG_HEADER) tlogFail("bad-proof-file");
  let i = 1, extra = null;
  if (i < lines.length && lines[i].startsWith("extra ")) extra = tlogB64(lines[i++].slice(6), "bad-proof-file");
  const m = i < lines.length ? /^index (0|[1-9][0-9]{0,19})$/.exec(lines[i]) : null;
  if (!m || BigInt(m[1]) > TLOG_U64) tlogFail("bad-proof-file");
  const hashes = lines.slice(i + 1).map((l) => tlogB64(l, "bad-proof-file"));
  tlogParseCheckpoint(tlogParseNote(checkpoint).text); // syntax only, as ProofFile.parse
  // Then ProofFile.__post_init__: the hashes, then the extra data.
  if (hashes.length > TLOG_MAX_HASHES || hashes.some((h) => h.length !== 32)) tlogFail("bad-proof-file");
  if (extra !== null && !extra.length) tlogFail("bad-proof-file");
  return {index: BigInt(m[1]), hashes, checkpoint};
}

// -- verifier keys and the policy (bundles/tlog/note.py, policy.py, trust.py) -----
async function tlogWitnessKey(vkey) {
  const parts = vkey.split("+");
  if (parts.length < 3) throw new Error("vkey");
  const name = parts[0], hexId = parts[1], key64 = parts.slice(2).join("+");
  if (!tlogValidName(name) || !/^[0-9a-f]{8}$/.test(hexId)) throw new Error("vkey");
  const raw = tlogB64(key64, "bad-vkey");
  if (raw.length < 2) throw new Error("vkey");
  const type = raw[0], pub = raw.slice(1);
  if (hex(await tlogKeyId(name, type, pub)) !== hexId) throw new Error("vkey");
  if (type !== 0x04 || pub.length !== 32) throw new Error("vkey");
  checkPublicKey(pub, 0);
  return {name, keyId: hex(await tlogKeyId(name, 0x04, pub)), type: 0x04, key: {raw: pub, handle: null}};
}
// The root's log trust: log keys (purpose log, not revoked) named like the
// origin, and the policy's witnesses, groups and quorum. Throws no-log.
async function tlogTrust(root) {
  if (!root.tlog) throw new LogFail("no-log");
  try {
    const origin = root.tlog.origin, logs = [];
    const ids = [...root.signing.keys()].filter((id) => root.signing.get(id).purposes.includes("log") &&
      !root.revoked.has(id)).sort();
    if (!ids.length) throw new Error("no log key");
    if (!tlogValidName(origin)) throw new Error("origin");
    for (const id of ids) {
      const raw = root.signing.get(id).key.raw;
      logs.push({name: origin, keyId: hex(await tlogKeyId(origin, 0x01, raw)), type: 0x01,
        key: {raw, handle: null}});
    }
    const witnesses = new Map(), groups = new Map(), used = new Set();
    let quorum = null, haveQuorum = false;
    for (const line of root.tlog.policy.split("\n")) {
      const items = line.split(/[ \t]+/).filter((x) => x);
      if (!items.length || items[0].startsWith("#")) continue;
      const [kw, ...args] = items;
      const fresh = (n) => n !== "none" && !witnesses.has(n) && !groups.has(n);
      if (kw === "witness") {
        if (args.length < 2 || args.length > 3 || !fresh(args[0])) throw new Error("witness");
        const w = await tlogWitnessKey(args[1]);
        for (const o of witnesses.values()) if (bytesEq(o.key.raw, w.key.raw)) throw new Error("duplicate");
        witnesses.set(args[0], {...w, policyName: args[0]});
        if (witnesses.size > 256) throw new Error("too many");
      } else if (kw === "group") {
        if (args.length < 3 || !fresh(args[0])) throw new Error("group");
        const members = args.slice(2);
        for (const m of members) {
          if ((!witnesses.has(m) && !groups.has(m)) || used.has(m)) throw new Error("member");
          used.add(m);
        }
        const k = args[1];
        const threshold = k === "any" ? 1 : k === "all" ? members.length
          : /^[1-9][0-9]{0,5}$/.test(k) && Number(k) <= members.length ? Number(k) : 0;
        if (!threshold) throw new Error("threshold");
        groups.set(args[0], {threshold, members});
        if (groups.size > 256) throw new Error("too many");
      } else if (kw === "quorum") {
        if (args.length !== 1 || haveQuorum) throw new Error("quorum");
        if (args[0] !== "none" && !witnesses.has(args[0]) && !groups.has(args[0])) throw new Error("quorum");
        haveQuorum = true;
        quorum = args[0] === "none" ? null : args[0];
      } else {
        throw new Error("keyword");
      }
    }
    if (!haveQuorum) throw new Error("no quorum");
    return {origin, logs, witnesses, groups, quorum};
  } catch (e) {
    if (e instanceof LogFail && e.code === "no-log") throw e;
    throw new LogFail("no-log", "bad-log-policy");
  }
}
function tlogSatisfied(trust, have) {
  if (trust.quorum === null) return true;
  const memo = new Map();
  const ok = (name) => {
    if (!memo.has(name)) {
      const g = trust.groups.get(name);
      memo.set(name, g ? g.members.filter(ok).length >= g.threshold : have.has(name));
    }
    return memo.get(name);
  };
  return ok(trust.quorum);
}

// -- opening the checkpoint (bundles/tlog/checkpoint.py open_checkpoint) ----------
async function tlogVerifyOne(v, sig, body) {
  if (v.type === 0x01) return {ok: await verifySig(v.key, sig, body), time: null};
  if (sig.length !== 72) return {ok: false, time: null};
  let t = 0n;
  for (let i = 0; i < 8; i++) t = (t << 8n) | BigInt(sig[i]);
  const msg = concat([utf8("cosignature/v1\ntime " + t.toString() + "\n"), body]);
  return {ok: await verifySig(v.key, sig.subarray(8), msg), time: t};
}
async function tlogOpenCheckpoint(bytes, trust) {
  const note = tlogParseNote(bytes);
  const cp = tlogParseCheckpoint(note.text);
  if (cp.origin !== trust.origin) tlogFail("origin-mismatch");
  if (cp.ext.length) tlogFail("bad-checkpoint");
  const known = new Map();
  for (const v of [...trust.logs, ...trust.witnesses.values()]) {
    const k = v.name + " " + v.keyId, o = known.get(k);
    if (o && !(o.type === v.type && bytesEq(o.key.raw, v.key.raw))) tlogFail("ambiguous-key");
    known.set(k, v);
  }
  const body = utf8(note.text), verified = [];
  for (const s of note.sigs) {
    const v = known.get(s.name + " " + hex(s.keyId));
    if (!v) continue;
    const r = await tlogVerifyOne(v, s.sig, body);
    if (!r.ok) tlogFail("bad-note-signature");
    verified.push({v, time: r.time});
  }
  if (!verified.length) tlogFail("unverified-note");
  if (!verified.some((x) => x.v.type === 0x01 && x.v.name === cp.origin)) tlogFail("no-log-signature");
  return {cp, cosigs: verified.filter((x) => x.v.type === 0x04)};
}

// -- RFC 6962 inclusion (bundles/tlog/proofs.py root_from_inclusion_proof) ---------
async function tlogNode(l, r) {
  return tlogSha256(concat([new Uint8Array([1]), l, r]));
}
async function tlogInclusionRoot(leaf, index, size, proof) {
  if (index >= size) tlogFail("bad-proof");
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of proof) {
    if (sn === 0n) tlogFail("bad-proof");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await tlogNode(p, r);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await tlogNode(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) tlogFail("bad-proof");
  return r;
}

// -- the check (bundles/tlog/reader.py check_log_proof) ----------------------------
// `root` is the newest root of the verified chain; `proof` the file's bytes or
// null; `now` UNIX seconds. Returns {index, size, origin, witnesses: Map name ->
// seconds, asOf (seconds or null)} or throws LogFail.
async function checkLogProof(bundleId, proof, root, now) {
  const trust = await tlogTrust(root);
  if (proof === null || proof === undefined) throw new LogFail("no-proof");
  const leafBytes = new Uint8Array(34);
  leafBytes[0] = 1;
  leafBytes[1] = 1;
  for (let i = 0; i < 32; i++) leafBytes[2 + i] = parseInt(bundleId.slice(2 * i, 2 * i + 2), 16);
  const leaf = await tlogSha256(concat([new Uint8Array([0]), leafBytes]));
  const pf = tlogParseProof(proof);
  const {cp, cosigs} = await tlogOpenCheckpoint(pf.checkpoint, trust);
  if (!bytesEq(await tlogInclusionRoot(leaf, pf.index, cp.size, pf.hashes), cp.root)) tlogFail("bad-proof");
  const limit = BigInt(Math.floor(now)) + TLOG_SKEW, byKey = new Map();
  for (const c of cosigs) {
    if (c.time <= limit && (!byKey.has(c.v) || c.time >= byKey.get(c.v))) byKey.set(c.v, c.time);
  }
  const witnesses = new Map();
  for (const [name, w] of trust.witnesses) if (byKey.has(w)) witnesses.set(name, Number(byKey.get(w)));
  if (!tlogSatisfied(trust, new Set(witnesses.keys()))) throw new LogFail("no-quorum");
  let asOf = null;
  if (trust.quorum !== null) {
    for (const t of [...new Set(witnesses.values())].sort((a, b) => b - a)) {
      if (tlogSatisfied(trust, new Set([...witnesses].filter(([, ts]) => ts >= t).map(([n]) => n)))) {
        asOf = t;
        break;
      }
    }
  }
  return {index: Number(pf.index), size: Number(cp.size), origin: cp.origin, witnesses, asOf};
}
