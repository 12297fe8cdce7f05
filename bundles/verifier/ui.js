// The page: inputs, verdict, then the signed notices and the articles, read
// from verified bytes only. Nothing is fetched; nothing is stored unless the
// reader ticks "remember".
(function () {
  const FRAME_CSS = "{{FRAME_CSS}}";
  const FRAME_CSS_HASH = "{{FRAME_CSS_HASH}}";
  const STORE_KEY = "k";
  // Interface strings (strings.json): English inline, the other languages deflated (docs/verifier.md).
  const T = {en: "{{STRINGS_EN}}"};
  const PACKED = "{{STRINGS_PACKED}}";
  // What an engine that cannot inflate PACKED still says in the reader's language (it cannot check bundles either).
  const FALLBACK = "{{STRINGS_FALLBACK}}";
  const RTL = ["ar", "fa", "he", "ur", "ps", "ckb", "yi", "dv", "ug"];
  const $ = (id) => document.getElementById(id);
  const keyInput = $("root-key"), fileInput = $("bundle"), remember = $("remember"), verdict = $("verdict");
  const proofInput = $("proof");
  let lang = "en", file = null, proofFile = null, state = null, run = 0, supported = null, urls = [], current = 0;

  function t(key, vars) {
    let s = (T[lang] && T[lang][key]) || T.en[key] || key;
    for (const k in vars || {}) s = s.split("{" + k + "}").join(vars[k]);
    return s;
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const bdi = (text) => el("bdi", {dir: "ltr"}, text);
  const dirOf = (tag) => (RTL.includes(String(tag).split("-")[0].toLowerCase()) ? "rtl" : "ltr");
  function fmtTime(seconds) {
    try {
      return new Intl.DateTimeFormat(lang, {dateStyle: "long", timeStyle: "short", timeZone: "UTC"})
        .format(new Date(seconds * 1000)) + " UTC";
    } catch (e) {
      return new Date(seconds * 1000).toISOString();
    }
  }
  function fmtDate(iso) {
    try {
      return new Intl.DateTimeFormat(lang, {dateStyle: "long", timeZone: "UTC"}).format(new Date(iso));
    } catch (e) {
      return iso.slice(0, 10);
    }
  }
  function store(op, value) {
    try {
      if (op === "get") return localStorage.getItem(STORE_KEY);
      if (op === "set") localStorage.setItem(STORE_KEY, value);
      if (op === "del") localStorage.removeItem(STORE_KEY);
    } catch (e) {
      return null;
    }
    return null;
  }
  const normKey = (v) => v.trim().toLowerCase();
  const isKey = (v) => /^[0-9a-f]{64}$/.test(v);

  function reasonKey(step, code) {
    if (["zip-truncated", "zip-no-end-record"].includes(code)) return "r_incomplete";
    if (/too-large|entry-count|zip-ratio/.test(code)) return "r_large";
    if (code === "entry-corrupt") return "r_corrupt";
    if (step <= 10) return "r_archive";
    if (step === 11) return "r_control";
    if (step === 12) return "r_keys";
    if (code === "root-not-pinned") return "r_notpinned";
    if (step <= 15) return "r_chain";
    if (step === 17) return "r_sig";
    if (step === 16 || step === 18) return "r_manifest";
    if (code === "key-revoked") return "r_revoked";
    if (code === "key-outside-window") return "r_window";
    if (step === 19) return "r_purpose";
    if (step === 20) return "r_publisher";
    if (step === 21) return "r_files";
    return "r_changed";
  }

  // -- static text and language ---------------------------------------------
  function applyLang() {
    document.documentElement.lang = lang;
    document.documentElement.dir = dirOf(lang);
    document.title = t("doctitle");
    for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.getAttribute("data-t"));
    $("lang").value = lang;
    showKeyNote();
    render();
  }
  function pickLang() {
    for (const l of navigator.languages || [navigator.language || "en"]) {
      const p = String(l).split("-")[0].toLowerCase();
      if (T[p]) return p;
    }
    return "en";
  }

  // -- the key --------------------------------------------------------------
  let keyNote = null;
  function showKeyNote() {
    const v = normKey(keyInput.value), note = $("key-note");
    note.textContent = v && !isKey(v) ? t("keyBad") : keyNote ? t(keyNote) : "";
    note.className = v && !isKey(v) ? "warn" : keyNote === "keyDiffers" ? "warn" : "";
  }
  function fromFragment() {
    const k = new URLSearchParams(location.hash.slice(1)).get("k");
    if (!k || !isKey(normKey(k))) return;
    const saved = store("get");
    keyInput.value = normKey(k);
    keyNote = saved && saved !== normKey(k) ? "keyDiffers" : "keyFromLink";
  }

  // -- verdict --------------------------------------------------------------
  function setVerdict(kind, step, code, log) {
    verdict.removeAttribute("data-log");
    verdict.removeAttribute("data-log-reason");
    if (log) {
      verdict.setAttribute("data-log", log.status);
      verdict.setAttribute("data-log-reason", log.reason || log.status);
    }
    verdict.setAttribute("data-verdict", kind);
    if (step) {
      verdict.setAttribute("data-step", String(step));
      verdict.setAttribute("data-code", code);
    } else {
      verdict.removeAttribute("data-step");
      verdict.removeAttribute("data-code");
    }
  }
  function render() {
    verdict.textContent = "";
    $("reading").hidden = true;
    if (!state) {
      verdict.removeAttribute("data-verdict");
      return;
    }
    const s = state;
    if (s.kind === "checking") {
      verdict.append(el("p", {}, t("checking") + (s.step ? " " + t("step", {n: s.step}) : "") +
        (s.total ? " (" + s.done + "/" + s.total + ")" : "")));
    } else if (s.kind === "need-key" || s.kind === "unsupported" || s.kind === "error") {
      verdict.append(el("p", {}, t(s.kind === "need-key" ? "needKey" : s.kind)));
    } else if (s.kind === "invalid") {
      verdict.append(el("h2", {}, t("invalid")), el("p", {}, t(reasonKey(s.step, s.code))),
        el("p", {}, t("invalidText")), el("p", {class: "code"}, bdi(t("step", {n: s.step}) + " · " + s.code)));
    } else if (s.kind === "valid") {
      const r = s.result, m = r.manifest;
      const dl = el("dl", {});
      for (const [k, v] of [["dBundle", r.bundleId], ["dCreated", m.created], ["dKey", r.signingKeyid],
        ["dRoot", String(r.rootVersion)]]) dl.append(el("dt", {}, t(k)), el("dd", {}, bdi(v)));
      const head = el("h2", {}), parts = t("valid", {publisher: "\u0000"}).split("\u0000");
      head.append(parts[0], el("bdi", {}, m.publisher), parts[1] || "");
      verdict.append(head, el("p", {}, t("validText")), dl, logLine(s.log));
      showReading(r);
    }
  }

  // The log line: "logged as #i of N, witnessed by X, Y at T", or why not.
  function logLine(log) {
    const p = el("p", {id: "log-line"});
    if (log.status === "logged") {
      const v = log.verdict, vars = {index: String(v.index), size: String(v.size)};
      if (v.asOf !== null) {
        vars.witnesses = [...v.witnesses.keys()].sort().join(", ");
        vars.time = fmtTime(v.asOf);
      }
      p.append(t(v.asOf === null ? "logOkAlone" : "logOk", vars));
      return p;
    }
    const key = {"no-log": "logNone", "no-proof": "logNoProof", "no-quorum": "logNoQuorum"}[log.status] || "logBad";
    p.append(t(key));
    if (key === "logBad" || key === "logNoQuorum") {
      p.className = "warn";
      p.append(" ", el("span", {class: "code"}, bdi(log.status + " · " + log.reason)));
    }
    return p;
  }
  async function checkLog(result, gen) {
    try {
      const bytes = proofFile ? new Uint8Array(await proofFile.slice(0, 65537).arrayBuffer()) : null;
      if (gen !== run) return null;
      const root = result.chain[result.chain.length - 1];
      return {status: "logged", verdict: await checkLogProof(result.bundleId, bytes, root, Date.now() / 1000)};
    } catch (e) {
      if (e instanceof LogFail) return {status: e.code, reason: e.reason};
      return {status: "bad-proof", reason: "unreadable"};
    }
  }

  // -- reading: notices first, then the articles ----------------------------
  function showReading(r) {
    const m = r.manifest, notices = $("notices"), toc = $("toc");
    notices.textContent = "";
    toc.textContent = "";
    for (const n of m.notices) {
      const box = el("section", {class: "notice"});
      const langs = Object.keys(n.text);
      const pick = langs.includes(lang) ? [lang] : langs.includes(m.articles[0].lang) ? [m.articles[0].lang] : langs;
      for (const l of pick) box.append(el("p", {lang: l, dir: dirOf(l)}, n.text[l]));
      const signed = t("signedBy", {publisher: "\u0000", date: fmtDate(m.created)}).split("\u0000");
      box.append(el("p", {class: "small"}, signed[0], el("bdi", {}, m.publisher), signed[1] || ""));
      const regions = n.regions.filter((g) => g !== "*");
      box.append(el("p", {class: "small"}, regions.length && !n.regions.includes("*")
        ? t("regions", {list: regions.join(", ")}) : t("everywhere")));
      notices.append(box);
    }
    $("notices-h").hidden = !m.notices.length;
    if (m.title) toc.append(el("p", {class: "edition", dir: "auto"}, m.title));
    m.articles.forEach((a, i) => {
      const b = el("button", {type: "button", lang: a.lang, dir: dirOf(a.lang)}, a.title);
      if (i === current) b.setAttribute("aria-current", "true");
      b.addEventListener("click", () => {
        current = i;
        for (const x of toc.querySelectorAll("button")) x.removeAttribute("aria-current");
        b.setAttribute("aria-current", "true");
        openArticle(r, a);
      });
      toc.append(el("p", {}, b));
    });
    $("reading").hidden = false;
    openArticle(r, m.articles[Math.min(current, m.articles.length - 1)]);
  }

  const ALLOWED = {p: [], br: [], hr: [], h2: [], h3: [], h4: [], h5: [], h6: [], blockquote: [], ul: [], ol: ["start"],
    li: [], em: [], strong: [], del: [], s: [], code: [], pre: [], a: ["title"], table: [], thead: [], tbody: [],
    tr: [], th: ["align"], td: ["align"], sup: [], sub: [], abbr: ["title"], q: [], cite: []};
  // Copy sanitised HTML into the reading frame: an allow-list of text tags
  // (anything else is dropped with its content: the publisher's sanitiser
  // already unwrapped it); links keep their text and show their address, but
  // are never followed.
  function cleanInto(from, to, doc) {
    for (const n of Array.from(from.childNodes)) {
      if (n.nodeType === 3) {
        to.append(doc.createTextNode(n.data));
      } else if (n.nodeType === 1) {
        const tag = n.localName;
        if (!Object.prototype.hasOwnProperty.call(ALLOWED, tag) || n.namespaceURI !== document.documentElement.namespaceURI) {
          continue;
        }
        const e = doc.createElement(tag);
        for (const name of ALLOWED[tag]) if (n.hasAttribute(name)) e.setAttribute(name, n.getAttribute(name));
        cleanInto(n, e, doc);
        to.append(e);
        const href = tag === "a" ? n.getAttribute("href") : null;
        if (href && /^(https?:|mailto:)/i.test(href)) {
          const u = doc.createElement("span");
          u.className = "url";
          u.append(" <", doc.createElement("bdi"), ">");
          u.childNodes[1].setAttribute("dir", "ltr");
          u.childNodes[1].textContent = href;
          to.append(u);
        }
      }
    }
  }
  function addHTML(html, to, doc) {
    if (typeof html !== "string") return;
    const parsed = new DOMParser().parseFromString(html, "text/html"); // inert: nothing runs or loads
    cleanInto(parsed.body, to, doc);
  }
  const str = (v) => (typeof v === "string" && v ? v : null);

  async function openArticle(r, a) {
    const gen = run, box = $("frame-box");
    for (const u of urls) URL.revokeObjectURL(u);
    urls = [];
    box.textContent = "";
    let data;
    try {
      data = core.parseJSON(await core.readVerified(src, r, a.data), 22);
      if (!data || typeof data !== "object" || Array.isArray(data)) throw new Error("not an object");
    } catch (e) {
      if (gen === run) box.append(el("p", {class: "warn"}, t("cantShow")));
      return;
    }
    const images = [];
    for (const im of Array.isArray(data.images) ? data.images : []) {
      const f = im && typeof im.path === "string" ? r.files.get(im.path) : null;
      if (!f || !/^image\/(jpeg|png|webp)$/.test(f.type)) continue;
      try {
        const bytes = await core.readVerified(src, r, im.path);
        images.push([im, URL.createObjectURL(new Blob([bytes], {type: f.type}))]);
      } catch (e) {
        continue;
      }
    }
    if (gen !== run) return;
    for (const [, u] of images) urls.push(u);
    const alang = /^[A-Za-z0-9-]{1,35}$/.test(a.lang) ? a.lang : "und";
    const frame = el("iframe", {sandbox: "allow-same-origin", title: a.title, referrerpolicy: "no-referrer"});
    frame.srcdoc = "<!doctype html><html lang=\"" + alang + "\" dir=\"" + dirOf(alang) + "\"><head>" +
      "<meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; " +
      "img-src blob:; style-src '" + FRAME_CSS_HASH + "'\"><style>" + FRAME_CSS + "</style></head><body></body></html>";
    box.append(frame);
    await new Promise((ok) => frame.addEventListener("load", ok, {once: true}));
    const doc = frame.contentDocument;
    if (gen !== run || !doc) return;
    const fit = () => {
      if (frame.isConnected && frame.contentDocument) {
        frame.style.height = frame.contentDocument.documentElement.scrollHeight + 4 + "px";
      }
    };
    const mk = (tag, cls, text) => {
      const e = doc.createElement(tag);
      if (cls) e.className = cls;
      if (text) e.textContent = text;
      return e;
    };
    const art = mk("article");
    art.append(mk("h1", "", str(data.title) || a.title));
    if (str(data.summary)) art.append(mk("p", "summary", data.summary));
    const meta = mk("p", "meta");
    const when = [str(data.byline), str(data.published) && t("published") + " " + fmtDate(data.published),
      str(data.updated) && t("updated") + " " + fmtDate(data.updated)].filter(Boolean);
    meta.textContent = when.join(" · ");
    art.append(meta);
    for (const [im, u] of images) {
      const fig = mk("figure"), img = doc.createElement("img");
      img.src = u;
      img.alt = str(im.alt) || "";
      if (Number.isInteger(im.width) && Number.isInteger(im.height)) {
        img.width = im.width;
        img.height = im.height;
      }
      img.addEventListener("load", fit);
      fig.append(img);
      if (str(im.caption) || str(im.credit)) {
        const cap = mk("figcaption", "", str(im.caption) || "");
        if (str(im.credit)) cap.append(" ", mk("span", "credit", im.credit));
        fig.append(cap);
      }
      art.append(fig);
    }
    const body = mk("div", "body");
    addHTML(data.body_html, body, doc);
    art.append(body);
    for (const s of Array.isArray(data.sections) ? data.sections : []) {
      if (!s || typeof s !== "object") continue;
      const sec = mk("section");
      if (str(s.heading)) sec.append(mk("h2", "", s.heading));
      addHTML(s.html, sec, doc);
      art.append(sec);
    }
    doc.body.append(art);
    fit();
    setTimeout(fit, 50);
  }

  // -- running a check --------------------------------------------------------
  let src = null;
  async function check() {
    const gen = ++run;
    current = 0;
    $("frame-box").textContent = "";
    for (const u of urls) URL.revokeObjectURL(u);
    urls = [];
    if (!file) {
      state = null;
      return render();
    }
    const key = normKey(keyInput.value);
    if (!isKey(key)) {
      state = {kind: "need-key"};
      setVerdict("need-key");
      return render();
    }
    if (supported === null) supported = await core.selfTest();
    if (gen !== run) return;
    if (!supported) {
      state = {kind: "unsupported"};
      setVerdict("unsupported");
      return render();
    }
    state = {kind: "checking"};
    setVerdict("checking");
    render();
    src = core.fileSource(file);
    let last = 0;
    const t0 = performance.now();
    try {
      const result = await core.verifyBundle(src, key, (step, done, total) => {
        const now = Date.now();
        if (gen !== run || now - last < 150) return;
        last = now;
        state = {kind: "checking", step, done, total};
        render();
      });
      if (gen !== run) return;
      const log = await checkLog(result, gen);
      if (gen !== run) return;
      verdict.setAttribute("data-ms", (performance.now() - t0).toFixed(1));
      state = {kind: "valid", result, log};
      setVerdict("valid", null, null, log);
    } catch (e) {
      if (gen !== run) return;
      verdict.setAttribute("data-ms", (performance.now() - t0).toFixed(1));
      if (e instanceof core.Rejected) {
        state = {kind: "invalid", step: e.step, code: e.code};
        setVerdict("invalid", e.step, e.code);
      } else {
        state = {kind: "error"};
        setVerdict("error");
      }
    }
    render();
  }
  function reset() {
    run++;
    file = null;
    proofFile = null;
    src = null;
    fileInput.value = "";
    proofInput.value = "";
    state = null;
    for (const u of urls) URL.revokeObjectURL(u);
    urls = [];
    $("frame-box").textContent = "";
    render();
  }

  // -- wiring -------------------------------------------------------------------
  const core = {verifyBundle, readVerified, selfTest, parseJSON, fileSource, Rejected};
  const sel = $("lang");
  let picked = false;
  sel.addEventListener("change", () => {
    lang = sel.value;
    picked = true;
    applyLang();
  });
  const saved = store("get");
  if (saved && isKey(saved)) {
    keyInput.value = saved;
    remember.checked = true;
  }
  fromFragment();
  window.addEventListener("hashchange", () => {
    fromFragment();
    showKeyNote();
    check();
  });
  keyInput.addEventListener("input", () => {
    keyNote = null;
    showKeyNote();
    const v = normKey(keyInput.value);
    if (remember.checked && isKey(v)) store("set", v);
    if (file && (isKey(v) || !v)) check();
  });
  remember.addEventListener("change", () => {
    const v = normKey(keyInput.value);
    if (remember.checked && isKey(v)) store("set", v);
    if (!remember.checked) store("del");
  });
  fileInput.addEventListener("change", () => {
    file = fileInput.files && fileInput.files[0] ? fileInput.files[0] : null;
    check();
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  proofInput.addEventListener("change", () => {
    proofFile = proofInput.files && proofInput.files[0] ? proofInput.files[0] : null;
    if (file) check();
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    const dropped = e.dataTransfer && e.dataTransfer.files ? Array.from(e.dataTransfer.files) : [];
    for (const f of dropped) {
      if (/\.tlog-proof$/i.test(f.name)) proofFile = f;
      else file = f;
    }
    if (dropped.length && file) check();
  });
  $("clear").addEventListener("click", reset);
  window.addEventListener("resize", () => {
    const f = document.querySelector("#frame-box iframe");
    if (f && f.contentDocument) f.style.height = f.contentDocument.documentElement.scrollHeight + 4 + "px";
  });
  function listLanguages() {
    sel.textContent = "";
    for (const l of Object.keys(T)) sel.append(el("option", {value: l, lang: l}, T[l].langName));
  }
  // The other languages arrive a moment later: inflated from PACKED with the page's own
  // DecompressionStream. An engine that cannot do that gets FALLBACK: the language names and the
  // "cannot check here" verdict in each language, the rest in English.
  async function loadLanguages() {
    try {
      const bytes = Uint8Array.from(atob(PACKED), (c) => c.charCodeAt(0));
      const text = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"))).text();
      const more = JSON.parse(text);
      for (const l of Object.keys(more)) if (!T[l]) T[l] = more[l];
    } catch (e) {
      for (const l of Object.keys(FALLBACK)) if (!T[l]) T[l] = FALLBACK[l];
    }
    listLanguages();
    if (!picked) lang = pickLang();
    applyLang();
  }
  listLanguages();
  lang = pickLang();
  applyLang();
  document.body.classList.add("js");
  loadLanguages();
})();
