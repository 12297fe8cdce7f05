// The page: inputs, verdict, then the signed notices and the articles, read
// from verified bytes only. Nothing is fetched; nothing is stored unless the
// reader ticks "remember".
(function () {
  const FRAME_CSS = "{{FRAME_CSS}}";
  const FRAME_CSS_HASH = "{{FRAME_CSS_HASH}}";
  const STORE_KEY = "k";
  const T = {
    en: {
      doctitle: "Check a file", h1: "Check a bundle", langName: "English", lang: "Language",
      intro: "This page checks on your device that a bundle comes unchanged from its publisher. It works offline and sends nothing.",
      keyLabel: "Publisher's root key id",
      keyHelp: "64 characters, 0–9 and a–f, from the publisher or from a link or QR code you trust.",
      keyBad: "A root key id has 64 characters, 0–9 and a–f.",
      keyFromLink: "The key was filled in from the link you opened.",
      keyDiffers: "Careful: the link names a different key from the one saved on this device.",
      remember: "Remember this key on this device",
      rememberHelp: "Off by default: then nothing is stored.",
      fileLabel: "Bundle file (.zip)", drop: "…or drop the file on this page.",
      needKey: "Enter the publisher's root key id to check this file.",
      checking: "Checking…", step: "step {n}",
      unsupported: "This browser cannot check bundles; nothing was checked. Use a recent browser, or on a computer: tamizdat verify FILE --root-key KEY",
      valid: "Valid. Signed by {publisher}",
      validText: "Every file in this bundle is exactly what the publisher signed.",
      invalid: "Not valid: do not trust this file",
      invalidText: "Nothing from this file is shown.",
      error: "The file could not be read. Nothing was shown.",
      dBundle: "Bundle id", dCreated: "Created", dKey: "Signing key", dRoot: "Root version",
      notices: "Notice from the publisher", signedBy: "Signed by {publisher} on {date}.",
      regions: "Applies in: {list}.", everywhere: "Applies everywhere.",
      articles: "Articles", published: "Published", updated: "Updated",
      links: "Links are shown as text, never opened.",
      cantShow: "This article could not be shown.", clear: "Close and forget the file",
      footer: "Stores nothing unless you tick “remember”; sends nothing. A copy of this page from an untrusted source could lie: compare its SHA-256 with the publisher's.",
      r_incomplete: "The file is incomplete or is not a bundle. Download it again.",
      r_large: "The file goes beyond the size limits of a bundle.",
      r_archive: "The file is not laid out exactly as bundles are written: it was altered or damaged.",
      r_control: "The signed list of contents or the publisher's key documents are missing, or extra ones are present.",
      r_corrupt: "Part of the file is damaged.",
      r_keys: "A key document of the publisher inside the bundle is malformed.",
      r_notpinned: "This bundle is not signed by the publisher whose key you entered. Check the key.",
      r_chain: "The chain of the publisher's keys inside the bundle is broken or forged.",
      r_sig: "The list of contents is not signed by a key of this publisher.",
      r_manifest: "The signed list of contents is malformed.",
      r_revoked: "It was signed with a key that the publisher has revoked.",
      r_purpose: "It was signed with a key that may not sign bundles.",
      r_window: "It was signed outside the period in which its signing key was valid.",
      r_publisher: "The list of contents names a different publisher.",
      r_files: "Files were added to or removed from the bundle after it was signed.",
      r_changed: "The contents were changed after they were signed.",
      proofLabel: "Log proof (.tlog-proof), optional",
      proofHelp: "A proof that the publisher's public log lists this file, confirmed by independent mirrors. It usually sits next to the bundle.",
      logOk: "In the publisher's public log as entry #{index} of {size}, confirmed by {witnesses} as of {time}.",
      logOkAlone: "In the publisher's public log as entry #{index} of {size} (the publisher asks for no confirmation by mirrors).",
      logNone: "The publisher keeps no public log.",
      logNoProof: "Not checked against the publisher's public log: no proof file was given.",
      logBad: "Warning: this proof does not show the file in the publisher's public log. The signature is valid, but be careful: a file signed with a stolen key would look like this.",
      logNoQuorum: "Warning: too few of the publisher's mirrors have confirmed this proof (or their confirmations are dated in the future).",
    },
    ru: {
      doctitle: "Проверка файла", h1: "Проверка пакета", langName: "Русский", lang: "Язык",
      intro: "Эта страница проверяет на вашем устройстве, что пакет пришёл от издателя без изменений. Она работает без сети и ничего не отправляет.",
      keyLabel: "Id корневого ключа издателя",
      keyHelp: "64 символа, 0–9 и a–f, от издателя или из ссылки или QR-кода, которым вы доверяете.",
      keyBad: "В id корневого ключа 64 символа, 0–9 и a–f.",
      keyFromLink: "Ключ взят из ссылки, которую вы открыли.",
      keyDiffers: "Осторожно: в ссылке указан не тот ключ, что сохранён на этом устройстве.",
      remember: "Запомнить ключ на этом устройстве",
      rememberHelp: "По умолчанию выключено: тогда ничего не сохраняется.",
      fileLabel: "Файл пакета (.zip)", drop: "…или перетащите файл на эту страницу.",
      needKey: "Введите id корневого ключа издателя, чтобы проверить файл.",
      checking: "Проверка…", step: "шаг {n}",
      unsupported: "Этот браузер не может проверять пакеты; ничего не проверено. Откройте свежий браузер или на компьютере: tamizdat verify ФАЙЛ --root-key КЛЮЧ",
      valid: "Файл подлинный. Подписано: {publisher}",
      validText: "Каждый файл в пакете в точности тот, что подписал издатель.",
      invalid: "Файл не прошёл проверку: не доверяйте ему",
      invalidText: "Ничего из этого файла не показано.",
      error: "Не удалось прочитать файл. Ничего не показано.",
      dBundle: "Id пакета", dCreated: "Создан", dKey: "Ключ подписи", dRoot: "Версия корня",
      notices: "Предупреждение издателя", signedBy: "Подписано: {publisher}, {date}.",
      regions: "Касается: {list}.", everywhere: "Касается всех стран.",
      articles: "Статьи", published: "Опубликовано", updated: "Обновлено",
      links: "Ссылки показаны текстом и не открываются.",
      cantShow: "Эту статью не удалось показать.", clear: "Закрыть и забыть файл",
      footer: "Ничего не сохраняет без «запомнить», ничего не отправляет. Копия страницы из ненадёжного источника может лгать: сверьте её SHA-256 с издательским.",
      r_incomplete: "Файл неполный или это не пакет. Скачайте его ещё раз.",
      r_large: "Файл превышает допустимые размеры пакета.",
      r_archive: "Файл устроен не так, как пишутся пакеты: он изменён или повреждён.",
      r_control: "Нет подписанного списка содержимого или документов с ключами издателя, либо есть лишние.",
      r_corrupt: "Часть файла повреждена.",
      r_keys: "Документ с ключами издателя внутри пакета испорчен.",
      r_notpinned: "Пакет подписан не тем издателем, чей ключ вы ввели. Проверьте ключ.",
      r_chain: "Цепочка ключей издателя в пакете нарушена или подделана.",
      r_sig: "Список содержимого не подписан ключом этого издателя.",
      r_manifest: "Подписанный список содержимого испорчен.",
      r_revoked: "Пакет подписан ключом, который издатель отозвал.",
      r_purpose: "Пакет подписан ключом, которому не разрешено подписывать пакеты.",
      r_window: "Пакет подписан вне срока действия ключа подписи.",
      r_publisher: "В списке содержимого указан другой издатель.",
      r_files: "После подписи в пакет добавили файлы или удалили их из него.",
      r_changed: "Содержимое изменено после подписи.",
      proofLabel: "Доказательство записи в журнале (.tlog-proof), необязательно",
      proofHelp: "Доказательство того, что файл внесён в открытый журнал издателя и это подтвердили независимые зеркала. Обычно лежит рядом с пакетом.",
      logOk: "Есть в открытом журнале издателя: запись №{index} из {size}; подтвердили {witnesses} по состоянию на {time}.",
      logOkAlone: "Есть в открытом журнале издателя: запись №{index} из {size} (издатель не требует подтверждения зеркал).",
      logNone: "Издатель не ведёт открытого журнала.",
      logNoProof: "Не сверено с открытым журналом издателя: файл доказательства не выбран.",
      logBad: "Внимание: это доказательство не показывает файл в открытом журнале издателя. Подпись верна, но будьте осторожны: так выглядел бы файл, подписанный украденным ключом.",
      logNoQuorum: "Внимание: слишком мало зеркал издателя подтвердили это доказательство (или их подтверждения датированы будущим).",
    },
    uk: {
      doctitle: "Перевірка файлу", h1: "Перевірка пакета", langName: "Українська", lang: "Мова",
      intro: "Ця сторінка перевіряє на вашому пристрої, що пакет надійшов від видавця без змін. Вона працює без мережі й нічого не надсилає.",
      keyLabel: "Id кореневого ключа видавця",
      keyHelp: "64 символи, 0–9 і a–f, від видавця або з посилання чи QR-коду, яким ви довіряєте.",
      keyBad: "В id кореневого ключа 64 символи, 0–9 і a–f.",
      keyFromLink: "Ключ узято з посилання, яке ви відкрили.",
      keyDiffers: "Обережно: у посиланні вказано інший ключ, ніж збережений на цьому пристрої.",
      remember: "Запам'ятати ключ на цьому пристрої",
      rememberHelp: "Типово вимкнено: тоді нічого не зберігається.",
      fileLabel: "Файл пакета (.zip)", drop: "…або перетягніть файл на цю сторінку.",
      needKey: "Введіть id кореневого ключа видавця, щоб перевірити файл.",
      checking: "Перевірка…", step: "крок {n}",
      unsupported: "Цей браузер не може перевіряти пакети; нічого не перевірено. Відкрийте новий браузер або на комп'ютері: tamizdat verify ФАЙЛ --root-key КЛЮЧ",
      valid: "Файл справжній. Підписано: {publisher}",
      validText: "Кожен файл у пакеті саме той, що підписав видавець.",
      invalid: "Файл не пройшов перевірку: не довіряйте йому",
      invalidText: "Нічого з цього файлу не показано.",
      error: "Не вдалося прочитати файл. Нічого не показано.",
      dBundle: "Id пакета", dCreated: "Створено", dKey: "Ключ підпису", dRoot: "Версія кореня",
      notices: "Попередження видавця", signedBy: "Підписано: {publisher}, {date}.",
      regions: "Стосується: {list}.", everywhere: "Стосується всіх країн.",
      articles: "Статті", published: "Опубліковано", updated: "Оновлено",
      links: "Посилання показано текстом, вони не відкриваються.",
      cantShow: "Цю статтю не вдалося показати.", clear: "Закрити й забути файл",
      footer: "Нічого не зберігає без «запам'ятати», нічого не надсилає. Копія сторінки з ненадійного джерела може брехати: звірте її SHA-256 з видавцевим.",
      r_incomplete: "Файл неповний або це не пакет. Завантажте його ще раз.",
      r_large: "Файл перевищує допустимі розміри пакета.",
      r_archive: "Файл влаштований не так, як пишуться пакети: його змінено або пошкоджено.",
      r_control: "Немає підписаного списку вмісту або документів із ключами видавця, або є зайві.",
      r_corrupt: "Частину файлу пошкоджено.",
      r_keys: "Документ із ключами видавця всередині пакета зіпсовано.",
      r_notpinned: "Пакет підписав не той видавець, чий ключ ви ввели. Перевірте ключ.",
      r_chain: "Ланцюжок ключів видавця в пакеті порушено або підроблено.",
      r_sig: "Список вмісту не підписано ключем цього видавця.",
      r_manifest: "Підписаний список вмісту зіпсовано.",
      r_revoked: "Пакет підписано ключем, який видавець відкликав.",
      r_purpose: "Пакет підписано ключем, якому не дозволено підписувати пакети.",
      r_window: "Пакет підписано поза строком дії ключа підпису.",
      r_publisher: "У списку вмісту вказано іншого видавця.",
      r_files: "Після підписання до пакета додали файли або вилучили їх із нього.",
      r_changed: "Вміст змінено після підписання.",
      proofLabel: "Доказ запису в журналі (.tlog-proof), необов'язково",
      proofHelp: "Доказ того, що файл внесено до відкритого журналу видавця і це підтвердили незалежні дзеркала. Зазвичай лежить поруч із пакетом.",
      logOk: "Є у відкритому журналі видавця: запис №{index} із {size}; підтвердили {witnesses} станом на {time}.",
      logOkAlone: "Є у відкритому журналі видавця: запис №{index} із {size} (видавець не вимагає підтвердження дзеркал).",
      logNone: "Видавець не веде відкритого журналу.",
      logNoProof: "Не звірено з відкритим журналом видавця: файл доказу не вибрано.",
      logBad: "Увага: цей доказ не показує файл у відкритому журналі видавця. Підпис правильний, але будьте обережні: так виглядав би файл, підписаний викраденим ключем.",
      logNoQuorum: "Увага: замало дзеркал видавця підтвердили цей доказ (або їхні підтвердження датовано майбутнім).",
    },
    fa: {
      doctitle: "بررسی فایل", h1: "بررسی بسته", langName: "فارسی", lang: "زبان",
      intro: "این صفحه روی دستگاه شما بررسی می‌کند که بسته بدون تغییر از ناشرش رسیده است. بدون اینترنت کار می‌کند و چیزی نمی‌فرستد.",
      keyLabel: "شناسهٔ کلید ریشهٔ ناشر",
      keyHelp: "۶۴ نویسه، 0 تا 9 و a تا f، از ناشر یا از پیوند یا کد QR مورد اعتمادتان.",
      keyBad: "شناسهٔ کلید ریشه ۶۴ نویسه دارد، 0 تا 9 و a تا f.",
      keyFromLink: "کلید از پیوندی که باز کردید برداشته شد.",
      keyDiffers: "مراقب باشید: این پیوند کلیدی متفاوت با کلید ذخیره‌شده روی این دستگاه دارد.",
      remember: "این کلید را روی این دستگاه به خاطر بسپار",
      rememberHelp: "به‌طور پیش‌فرض خاموش است: در این صورت چیزی ذخیره نمی‌شود.",
      fileLabel: "فایل بسته (.zip)", drop: "…یا فایل را روی این صفحه رها کنید.",
      needKey: "برای بررسی این فایل، شناسهٔ کلید ریشهٔ ناشر را وارد کنید.",
      checking: "در حال بررسی…", step: "مرحلهٔ {n}",
      unsupported: "این مرورگر نمی‌تواند بسته‌ها را بررسی کند؛ چیزی بررسی نشد. از مرورگری تازه استفاده کنید یا روی رایانه: tamizdat verify FILE --root-key KEY",
      valid: "معتبر است. امضاکننده: {publisher}",
      validText: "همهٔ فایل‌های این بسته دقیقاً همان است که ناشر امضا کرده است.",
      invalid: "معتبر نیست: به این فایل اعتماد نکنید",
      invalidText: "هیچ چیز از این فایل نمایش داده نمی‌شود.",
      error: "فایل خوانده نشد. چیزی نمایش داده نشد.",
      dBundle: "شناسهٔ بسته", dCreated: "تاریخ ساخت", dKey: "کلید امضا", dRoot: "نسخهٔ ریشه",
      notices: "هشدار ناشر", signedBy: "امضاشده توسط {publisher} در {date}.",
      regions: "مربوط به: {list}.", everywhere: "مربوط به همه‌جا.",
      articles: "مقاله‌ها", published: "انتشار", updated: "به‌روزرسانی",
      links: "پیوندها به صورت متن نمایش داده می‌شوند و باز نمی‌شوند.",
      cantShow: "این مقاله قابل نمایش نبود.", clear: "بستن و فراموش کردن فایل",
      footer: "بدون «به خاطر بسپار» چیزی ذخیره نمی‌کند و چیزی نمی‌فرستد. نسخه‌ای از این صفحه از منبعی نامطمئن ممکن است دروغ بگوید: SHA-256 آن را با نسخهٔ ناشر مقایسه کنید.",
      r_incomplete: "فایل ناقص است یا بسته نیست. دوباره آن را دریافت کنید.",
      r_large: "فایل از محدودیت‌های اندازهٔ بسته فراتر می‌رود.",
      r_archive: "ساختار فایل دقیقاً مانند بسته‌ها نیست: تغییر کرده یا آسیب دیده است.",
      r_control: "فهرست امضاشدهٔ محتوا یا سندهای کلید ناشر نیست، یا موارد اضافی هست.",
      r_corrupt: "بخشی از فایل آسیب دیده است.",
      r_keys: "یکی از سندهای کلید ناشر درون بسته خراب است.",
      r_notpinned: "این بسته را ناشری که کلیدش را وارد کردید امضا نکرده است. کلید را بررسی کنید.",
      r_chain: "زنجیرهٔ کلیدهای ناشر در بسته شکسته یا جعلی است.",
      r_sig: "فهرست محتوا با کلیدی از این ناشر امضا نشده است.",
      r_manifest: "فهرست امضاشدهٔ محتوا خراب است.",
      r_revoked: "با کلیدی امضا شده که ناشر آن را باطل کرده است.",
      r_purpose: "با کلیدی امضا شده که اجازهٔ امضای بسته ندارد.",
      r_window: "بیرون از دورهٔ اعتبار کلید امضا، امضا شده است.",
      r_publisher: "فهرست محتوا ناشر دیگری را نام می‌برد.",
      r_files: "پس از امضا، فایل‌هایی به بسته افزوده یا از آن حذف شده است.",
      r_changed: "محتوا پس از امضا تغییر کرده است.",
      proofLabel: "مدرک ثبت در دفتر (.tlog-proof)، اختیاری",
      proofHelp: "مدرکی که نشان می‌دهد این فایل در دفتر عمومی ناشر ثبت شده و آینه‌های مستقل آن را تأیید کرده‌اند. معمولاً کنار بسته قرار دارد.",
      logOk: "در دفتر عمومی ناشر ثبت شده است: مدخل شمارهٔ {index} از {size}؛ تأییدشده توسط {witnesses} تا {time}.",
      logOkAlone: "در دفتر عمومی ناشر ثبت شده است: مدخل شمارهٔ {index} از {size} (ناشر تأیید آینه‌ها را لازم نمی‌داند).",
      logNone: "ناشر دفتر عمومی ندارد.",
      logNoProof: "با دفتر عمومی ناشر مقایسه نشد: فایل مدرکی انتخاب نشده است.",
      logBad: "هشدار: این مدرک نشان نمی‌دهد که فایل در دفتر عمومی ناشر ثبت شده است. امضا معتبر است، اما مراقب باشید: فایلی که با کلید دزدیده‌شده امضا شده باشد همین‌طور به نظر می‌رسد.",
      logNoQuorum: "هشدار: تعداد کافی از آینه‌های ناشر این مدرک را تأیید نکرده‌اند (یا تأییدشان تاریخ آینده دارد).",
    },
  };
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
  for (const l of Object.keys(T)) sel.append(el("option", {value: l, lang: l}, T[l].langName));
  sel.addEventListener("change", () => {
    lang = sel.value;
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
  lang = pickLang();
  applyLang();
  document.body.classList.add("js");
})();
