// Guest upload page: tus uploads with per-file progress, live status from the server, in the guest's language.
// Built for phones on bad connections: a lost or stalled connection is a pause, never a failure (the
// page resumes by itself); the screen stays on while files go up; after a reload the page shows what
// this browser already sent and what is not finished; a file the owner already has from this browser
// is recognised by its SHA-1 (hashed in a worker, alongside sending) and not sent again.
// Plain script, no build step. All text reaches the page through textContent, never as HTML.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var T = function (key, params) { return I18N.t(key, params); };
  var queue = $("queue"), picker = $("picker"), filesPicker = $("picker-files"), drop = $("drop");
  var notice = $("notice"), summary = $("summary");
  var tuning = window.immichDropTuning || {};    // the browser tests shorten the waits
  var STALL_MS = tuning.stallMs || 20000;         // a PATCH that moves no byte this long is cut and resumed
  var HASH_WAIT_MS = tuning.hashWaitMs || 1000;   // how long sending waits for the "already there?" answer
  var PARALLEL = 3;
  var MIN_CHUNK = 256 * 1024;     // the smallest PATCH the page steps down to behind a strict proxy
  var chunkSize = 0;              // what a PATCH carries: CHUNK_SIZE, less once a proxy refused it (413)
  var config = null, info = null;
  var early = [];            // files chosen before the page had its settings
  var inviteMatch = location.pathname.match(/^\/i\/([^/]+)$/);
  var invite = inviteMatch ? decodeURIComponent(inviteMatch[1]) : null;
  var items = [];            // every file this page shows, in the order chosen (earlier ones first)
  var byUploadId = {};       // server upload id -> item
  var lastStatus = {};       // server upload id -> last event, for events that arrive before the id is known
  var snapshot = null;       // upload ids the status channel listed on connect, -> state
  var listing = false;       // true while the first snapshot is turned into "sent earlier" entries
  var paused = false, nextId = 1;
  var budget = { files: null, bytes: null };   // what the link still takes, kept current as files go

  // Kinds: what the guest sees per file. SENDING ones still need this page; SETTLED ones are over.
  var SENDING = { queued: 1, checking: 1, uploading: 1, offline: 1, stalled: 1, paused: 1 };
  var SETTLED = { done: 1, duplicate: 1, error: 1, cancelled: 1 };
  var SERVER_KIND = {
    received: "processing", hashing: "processing", uploading: "processing",
    retrying: "waiting", done: "done", duplicate: "duplicate", failed: "error"
  };
  // Refusals a second try cannot change: no Retry button for them.
  var FINAL = {
    empty: 1, too_large: 1, type_not_accepted: 1, no_extension: 1, photos_only: 1, videos_only: 1, not_media: 1,
    file_too_large: 1, limit_reached: 1, files_left: 1, bytes_left: 1, link_used: 1, link_invalid: 1,
    link_off: 1, link_expired: 1, link_deleted: 1, uploads_closed: 1, needs_password: 1, rejected: 1,
    cross_origin: 1, name_required: 1, text_too_long: 1
  };
  var BROKEN = { cross_origin: 1, rejected: 1 }; // final, but a fault, not the link's rules: "failed"
  var VIDEO = /\.(mp4|mov|m4v|3gp|3gpp|3g2|avi|mkv|webm|mts|m2ts|m2t|ts|mpg|mpeg|mpe|wmv|flv|hevc|insv|mxf|ogv|vob)$/i;

  // --- theme and language ----------------------------------------------------------------
  $("theme").addEventListener("click", function () {
    var root = document.documentElement;
    var dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    try { localStorage.setItem("theme", root.dataset.theme); } catch (e) { /* not persisted */ }
  });

  // --- one file on screen ----------------------------------------------------------------------
  function render(item) {
    var el = item.el, kind = item.kind;
    el.dataset.kind = kind;
    var chip = el.querySelector(".chip");
    chip.dataset.kind = kind;
    var percent = SETTLED[kind] || kind === "processing" || kind === "waiting" ? 100 : item.size ? (item.sent / item.size) * 100 : 0;
    if (kind === "error") percent = item.size ? (item.sent / item.size) * 100 : 0;
    if (kind === "cancelled") percent = 0; // its bytes are gone: a part-filled bar read as paused (re-walk)
    // a file the link or the page would not take is "not accepted", not "failed": nothing went wrong
    chip.textContent = kind === "uploading" ? I18N.formatPercent(percent) : T("guest.state." + shownKind(item));
    el.querySelector(".fill").style.width = percent + "%";
    var bar = el.querySelector(".progress");
    bar.setAttribute("aria-valuenow", String(Math.floor(percent)));
    bar.setAttribute("aria-label", T("guest.progress.file", { name: item.name }));
    el.querySelector(".detail").textContent = item.detail ? item.detail() : I18N.formatSize(item.size);
    var again = el.querySelector(".again-note");
    if (!again.hidden) again.textContent = T("guest.again"); // in a language chosen meanwhile
    var retry = el.querySelector(".retry");
    // a cancel is one tap beside the bar on a phone: its row offers the file again (guest walk)
    retry.hidden = !(kind === "error" && item.retryable) && !canSendAgain(item);
    retry.textContent = T(kind === "cancelled" ? "guest.send_again" : "guest.retry");
    var cancel = el.querySelector(".cancel");
    cancel.textContent = T("guest.cancel");
    cancel.hidden = !(SENDING[kind] || kind === "held") || item.earlier; // one on hold may be given up (re-walk)
    cancel.setAttribute("aria-label", T("guest.cancel_file", { name: item.name }));
  }

  // "Send again" only where the link would take the file: on a full link it stood beside "This link
  // takes no more files" and gave "not accepted" (guest walk). Asked again as the room changes.
  function canSendAgain(item) {
    return item.kind === "cancelled" && !!item.file && !item.earlier && !linkClosed() && !check(item.file, false);
  }
  function offerSendAgain() {
    items.forEach(function (it) { if (it.kind === "cancelled") it.el.querySelector(".retry").hidden = !canSendAgain(it); });
  }

  // "failed" only for what went wrong: a file the link's rules refused is "not accepted", one its
  // owner removed is "removed" (each read "failed", and counted so after it was sent again: walk)
  function shownKind(item) {
    return item.kind !== "error" ? item.kind : item.notTaken ? "refused" : item.ownerRemoved ? "removed" : "error";
  }

  function set(item, kind, detail) {
    if (SETTLED_KEY[kind] && item.file && !item.creating) Keys.forget(item); // else once it answers
    item.kind = kind;
    if (kind !== "error") item.notTaken = item.ownerRemoved = false;
    if (SENDING[kind]) item.before = false; // sent again (Retry): in this batch's bar
    if (detail !== undefined) item.detail = detail;
    if (kind === "error" && item.detail) item.reason = item.detail;
    render(item);
    refresh();
    if (linkClosed()) sayClosed(); // "files on hold go on..." only while some are (a cancelled one is not)
  }

  function text(key, params) { return function () { return T(key, params); }; }
  function refusal(body) { return function () { return I18N.server(body); }; }
  // A file stopped by its link (expired, turned off, deleted) says why; the notice says once that
  // such files go on by themselves from their last byte if the link opens again (each file said it,
  // and the notice told the guest to ask for a new link: which was it? guest walk). "Waiting for
  // server" over a full bar told neither (owner walk): its bar shows what was sent.
  // (a deleted link's files are gone with it; a used one's go on if its owner allows another browser)
  var REOPENS = { link_off: 1, link_expired: 1, link_paused: 1, link_used: 1, needs_password: 1 };

  // Each chosen file that has no upload URL yet (queued, or its creation unanswered), kept across a
  // reload: the page then lists it among the files to choose again (tus-js-client keeps only
  // uploads whose creation answered), and one whose creation was sent (`p`) goes under the same
  // key, so the server hands back the upload it made if the answer was lost.
  var SETTLED_KEY = { processing: 1, done: 1, duplicate: 1, error: 1, cancelled: 1 };
  var Keys = (function () {
    var NAME = "fileKeys", KEEP_MS = 24 * 3600 * 1000, MOST = 5000; // about 100 bytes an entry
    function load() { // only well-formed entries not too old: a bad one must not stop every upload
      var raw, all = {};
      try { raw = JSON.parse(localStorage.getItem(NAME) || "{}"); } catch (e) { return all; }
      Object.keys(raw && typeof raw === "object" ? raw : {}).forEach(function (n) {
        var entry = raw[n];
        if (entry && typeof entry.k === "string" && typeof entry.t === "number" && typeof entry.n === "string" &&
            Date.now() - entry.t < KEEP_MS) all[n] = entry;
      });
      return all;
    }
    function save(all) {
      var kept = {};
      Object.keys(all).sort(function (a, b) { return all[b].t - all[a].t; }).slice(0, MOST)
        .forEach(function (n) { kept[n] = all[n]; });
      try { localStorage.setItem(NAME, JSON.stringify(kept)); } catch (e) { /* this visit only */ }
    }
    function name(item) { return [invite || "", item.name, item.size, item.file.lastModified || ""].join("|"); }
    return {
      find: function (item) { return load()[name(item)] || null; },
      keep: function (list, sent) { // one read and one write for a whole choice of files
        var all = load();
        list.forEach(function (item) {
          all[name(item)] = { k: item.key, t: Date.now(), p: sent || item.posted, n: item.name, s: item.size, i: invite || "" };
        });
        save(all);
      },
      waiting: function () { // this link's files kept: [{n: name, s: size}]
        var all = load();
        return Object.keys(all).map(function (n) { return all[n]; })
          .filter(function (e) { return e.i === (invite || ""); });
      },
      forget: function (item) {
        var all = load();
        if (all[name(item)] && all[name(item)].k === item.key) { delete all[name(item)]; save(all); }
      }
    };
  })();

  // A long name is cut in its middle: its end (the camera's number, the extension) is what tells
  // "IMG_20240512_1412….jpg" from the next one, and the end was what a phone cut away (guest walk).
  // The two halves are one name to a reader: the title and the text are the whole of it.
  function showName(box, name) {
    var chars = Array.from(name), ext = (name.match(/\.[^.\s]{1,6}$/) || [""])[0];
    var keep = Math.min(Math.floor(chars.length / 2), Array.from(ext).length + 4);
    box.title = name;
    box.querySelector(".name-head").textContent = chars.slice(0, chars.length - keep).join("");
    box.querySelector(".name-tail").textContent = chars.slice(chars.length - keep).join("");
  }

  function newItem(name, size, file, earlier) {
    var el = $("item").content.firstElementChild.cloneNode(true);
    showName(el.querySelector(".name"), name);
    var item = { id: nextId++, file: file, name: name, size: size, el: el, upload: null, kind: "queued",
                 sent: 0, detail: null, earlier: !!earlier, slot: false, key: fileKey(), posted: false };
    var kept = file && !earlier ? Keys.find(item) : null;
    if (kept && !items.some(function (other) { return other.key === kept.k; })) { // chosen before a reload
      item.key = kept.k;
      item.posted = kept.p === true; // its creation was sent
    }
    el.querySelector(".retry").addEventListener("click", function () {
      if (item.kind === "cancelled") sendAgain(item); else restart(item);
    });
    el.querySelector(".cancel").addEventListener("click", function () {
      cancel(item);
      // the button is gone: focus goes to the next file's, or the overall bar's, not back to the top
      var next = items.filter(function (it) { return !it.el.querySelector(".cancel").hidden; })[0];
      (next ? next.el.querySelector(".cancel") : $("keep-open").hidden ? $("summary") : $("pause")).focus();
    });
    // files sent earlier stand above this page's own, in the order they were sent (the snapshot's)
    var firstOwn = earlier && items.filter(function (it) { return !it.earlier; })[0];
    if (firstOwn) queue.insertBefore(el, firstOwn.el); else queue.appendChild(el);
    items.push(item);
    return item;
  }

  // --- the whole batch ---------------------------------------------------------------------------
  function batch() { return items.filter(function (it) { return !it.earlier && !it.refused; }); }
  // by the kind a file shows: an "error" may read "refused" or "removed" (shownKind)
  function count(list, kind) { return list.filter(function (it) { return shownKind(it) === kind; }).length; }
  function sending() { return items.some(function (it) { return SENDING[it.kind]; }); }

  function refresh() {
    var all = batch().concat(items.filter(function (it) { return it.refused; }));
    var parts = [];
    var add = function (n, key) { if (n) parts.push(I18N.n(key, n)); }; // "1 enviado", "2 enviados"
    add(count(all, "done"), "guest.summary.sent");
    add(count(all, "duplicate"), "guest.summary.duplicate");
    add(all.filter(function (it) { return SENDING[it.kind] && !{ queued: 1, paused: 1, offline: 1, stalled: 1 }[it.kind]; })
      .length, "guest.summary.uploading");
    add(count(all, "offline"), "guest.summary.offline"); // no network, or a stalled one, is not "uploading" (guest walk)
    add(count(all, "stalled"), "guest.summary.stalled");
    add(count(all, "paused"), "guest.summary.paused"); // paused is not "uploading" (owner walk)
    add(count(all, "queued"), "guest.summary.queued"); // "10 uploading" counted 7 not yet begun
    add(count(all, "processing"), "guest.summary.processing");
    add(count(all, "waiting"), "guest.summary.waiting");
    add(count(all, "held"), "guest.summary.held");
    add(count(all, "error"), "guest.summary.failed");
    add(count(all, "refused"), "guest.summary.refused"); // as the finished line counts them (cold review)
    add(count(all, "removed"), "guest.summary.removed");
    add(count(all, "cancelled"), "guest.summary.cancelled");
    summary.textContent = parts.join(" · ");
    offerSendAgain();
    updateOverall();
    updateFinished(all);
    showDetails();
  }

  // Overall progress counts every file of the batch, finished ones included, and never goes back;
  // the time left comes from a rate smoothed over seconds, and says "stalled" when nothing moves.
  var meter = { total: 0, shown: 0, bytes: 0, at: 0, rate: 0, movedAt: 0 };

  // A file chosen again after a reload goes on from the server's offset: those bytes were sent
  // before, not now, and counted as speed they made "about 2 seconds left" of 12 (owner walk).
  function skipTo(item, offset) {
    if (!(offset > item.sent)) return;
    if (meter.at) meter.bytes += offset - item.sent;
    item.sent = offset;
  }

  function updateOverall() {
    var running = sending();
    // "Pause all" outlives nothing it paused: with its button gone, a file chosen next stood
    // "queued" for good (guest walk: paused, the one file cancelled, another chosen)
    if (!running) paused = false;
    $("keep-open").hidden = !running;
    $("pause").textContent = T(paused ? "guest.resume_all" : "guest.pause_all");
    if (!running) { // the next batch measures anew, from 0% (a file chosen again began at the last one's 40%)
      releaseScreen(); meter.at = 0; meter.rate = 0; meter.total = meter.shown = 0; return;
    }
    holdScreen();
    var total = 0, sent = 0;
    batch().forEach(function (it) {
      if (it.kind === "cancelled" || it.before) return;
      total += it.size;
      sent += SENDING[it.kind] || it.kind === "error" || it.kind === "held" ? it.sent : it.size;
    });
    var percent = total ? (sent / total) * 100 : 0;
    if (total === meter.total) percent = Math.max(percent, meter.shown); // a resend of a chunk is not progress lost
    meter.total = total; meter.shown = percent;
    var now = Date.now();
    var kinds = items.map(function (it) { return it.kind; });
    var halted = paused || kinds.indexOf("offline") >= 0 || kinds.indexOf("stalled") >= 0;
    if (!meter.at) { meter.at = now; meter.bytes = sent; meter.movedAt = now; meter.samples = 0; }
    if (sent > meter.bytes) meter.movedAt = now;
    if (now - meter.at >= 1000) {
      // Seconds offline, paused or stalled are not a speed: folded in, ten of them took "about 2
      // minutes" to "about 7" (guest walk). The estimate waits for three seconds of sending: the
      // first second's slow start alone said 7 minutes for 20 seconds. The first seconds are
      // averaged; later ones weigh a fifth.
      if (!(halted && sent <= meter.bytes)) {
        var speed = Math.max(0, sent - meter.bytes) / ((now - meter.at) / 1000);
        meter.samples += 1;
        var weight = Math.max(0.2, 1 / meter.samples);
        meter.rate = meter.rate * (1 - weight) + speed * weight;
      }
      meter.bytes = sent; meter.at = now;
    }
    $("overall-fill").style.width = percent + "%";
    $("overall-bar").setAttribute("aria-valuenow", String(Math.floor(percent)));
    var line = T("guest.overall.text", { percent: I18N.formatPercent(percent), total: I18N.formatSize(total) });
    if (paused) line += " · " + T("guest.overall.paused");
    else if (kinds.indexOf("offline") >= 0) line += " · " + T("guest.overall.offline");
    // "stalled" here when a row says it, not before (the bar said it 15 s before its files did: guest
    // walk); until then, bytes that stopped moving give no time left, which only grew ("about 5 … 6
    // … 11 seconds left")
    else if (kinds.indexOf("stalled") >= 0) line += " · " + T("guest.overall.stalled");
    else if (meter.rate > 0 && meter.samples >= 3 && total > sent && now - meter.movedAt < 3000) {
      line += " · " + T("guest.overall.left", { time: I18N.formatDuration((total - sent) / meter.rate) });
    }
    $("overall").textContent = line;
  }

  function updateFinished(all) {
    var settled = all.length > 0 && all.every(function (it) { return SETTLED[it.kind]; });
    $("finished").hidden = !settled;
    if (!settled) return;
    var failed = all.filter(function (it) { return it.kind === "error"; });
    // only the counts there are ("2 sent, 1 failed", not "2 sent, 0 already there, 1 failed")
    var counts = [["done", "guest.summary.sent"], ["duplicate", "guest.summary.duplicate"], ["error", "guest.summary.failed"],
      ["refused", "guest.summary.refused"], ["removed", "guest.summary.removed"], ["cancelled", "guest.summary.cancelled"]]
      .filter(function (c) { return count(all, c[0]); }).map(function (c) { return I18N.n(c[1], count(all, c[0])); });
    // the files listed as sent before a reload count too: "Finished: 2 sent" under 12 files done
    // read as if 10 had not arrived (guest walk)
    var earlier = items.filter(function (it) { return it.earlier && (it.kind === "done" || it.kind === "duplicate"); });
    if (earlier.length) counts.push(I18N.n("guest.summary.earlier", earlier.length));
    var lines = [T("guest.finished", { counts: counts.join(", ") || I18N.n("guest.summary.sent", 0) })];
    // one line per reason, naming its files (30 files on a one-file link made 29 lines of the same reason)
    var byReason = {}, reasons = [];
    failed.forEach(function (it) {
      var reason = it.reason ? it.reason() : T("guest.state.error");
      if (!byReason[reason]) { byReason[reason] = []; reasons.push(reason); }
      byReason[reason].push(it.name);
    });
    reasons.forEach(function (reason) {
      var names = byReason[reason];
      var shown = names.slice(0, 10).join(", ") + (names.length > 10 ? " (+" + I18N.formatNumber(names.length - 10) + ")" : "");
      lines.push(T("guest.finished.line", { names: shown, reason: reason }));
    });
    $("finished-text").textContent = lines.join("\n");
    $("retry-all").hidden = !failed.some(function (it) { return it.retryable; });
  }

  // --- keep the phone awake ---------------------------------------------------------------------
  var wakeLock = null, askingForLock = false;

  function holdScreen() {
    if (!sending() || wakeLock || askingForLock || !("wakeLock" in navigator) || document.visibilityState !== "visible") return;
    askingForLock = true; // one request at a time, or several locks would be taken and only one given back
    navigator.wakeLock.request("screen").then(function (lock) {
      askingForLock = false;
      wakeLock = lock;
      lock.addEventListener("release", function () { if (wakeLock === lock) wakeLock = null; });
      if (!sending()) releaseScreen();
    }).catch(function () {
      askingForLock = false; // refused (battery saver, iframe): the bar still asks to keep the page open
    });
  }

  function releaseScreen() {
    if (wakeLock && !sending()) { var lock = wakeLock; wakeLock = null; lock.release(); }
  }

  // --- choosing files: what the link takes is checked before a byte goes out ---------------------
  function addFiles(fileList, fromPhotoPicker) {
    if (!config || (invite && !info) || !storedRead) { // chosen before the page had its settings: keep them
      early.push([Array.prototype.slice.call(fileList), fromPhotoPicker]);
      return;
    }
    Who.take();
    if (!Who.ready()) { early.push([Array.prototype.slice.call(fileList), fromPhotoPicker]); Who.ask(); return; }
    // files chosen once the others are all done are a new batch: the overall bar is theirs (one
    // new photo at 15% read "90 % of 44.2 MB", the first batch counted in: walk)
    // (one still processing or waiting for Immich belongs to the batch before too: cold review)
    if (!sending()) items.forEach(function (it) { if (it.kind !== "held") it.before = true; });
    var chosen = [], first = null;
    Array.prototype.forEach.call(fileList, function (file) {
      var going = onItsWay(file);
      if (going) { pointAt(going); return; } // chosen twice: the one in the list already goes
      replaced(file);
      var item = newItem(file.name, file.size, file, false);
      first = first || item;
      Thumbs.add(item);
      // made on the server before a reload (its creation unanswered, or half sent): the link's count has it
      var counted = item.posted || !!resumable[file.name + "/" + file.size];
      var problem = check(file, counted);
      if (problem) { refuseHere(item, problem); return; }
      if (counted) item.reserved = item.counted = true;
      else take(item);
      chosen.push(item);
      set(item, "queued", null);
    });
    Keys.keep(chosen, false);
    pump();
    reveal(first);
  }

  // On a phone the list of files begins below the fold, and choosing them changed nothing on the
  // screen (guest walk): the overall bar, or the first new file, is brought into view.
  function reveal(item) {
    var target = !$("keep-open").hidden ? $("keep-open") : item && item.el;
    if (!target || !target.scrollIntoView) return;
    var box = target.getBoundingClientRect();
    if (box.top >= 0 && box.top < window.innerHeight * 0.75) return; // in sight already
    var calm = window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches;
    target.scrollIntoView({ behavior: calm ? "auto" : "smooth", block: "start" });
  }

  function onItsWay(file) {
    return items.filter(function (it) {
      return it.file && !it.earlier && !SETTLED[it.kind] && it.name === file.name && it.size === file.size &&
        it.file.lastModified === file.lastModified;
    })[0];
  }

  // A file chosen again keeps its one row, which says so a moment: nothing on the screen changed,
  // and the guest could not tell whether the choice was taken (guest walk).
  function pointAt(it) {
    var note = it.el.querySelector(".again-note");
    note.textContent = T("guest.again");
    note.hidden = false;
    it.el.classList.add("again");
    clearTimeout(it.againTimer);
    it.againTimer = setTimeout(function () { note.hidden = true; it.el.classList.remove("again"); }, 6000);
    if (it.el.scrollIntoView) it.el.scrollIntoView({ block: "nearest" });
  }

  // A file chosen again after it failed, was refused, removed or cancelled takes its row: the old
  // one stayed, "failed", and "3 failed" stood under the same three files sent (walk).
  // Only a row that holds nothing: not one whose creation is unanswered (its key would go to the
  // new row), nor one whose failure a Retry may mend (it holds its upload on the server).
  function replaced(file) {
    items.slice().forEach(function (it) {
      if (!it.file || it.earlier || !(it.kind === "error" || it.kind === "cancelled") || it.name !== file.name ||
          it.size !== file.size || it.file.lastModified !== file.lastModified) return;
      if (it.creating || it.upload || it.slot || it.retryable) return;
      it.el.remove();
      items.splice(items.indexOf(it), 1);
    });
  }

  function isVideo(file) { return /^video\//.test(file.type) || VIDEO.test(file.name); }

  function check(file, counted) {
    var limits = info ? info.limits : {};
    if (file.size === 0) return { code: "empty" };
    if (config.maxUploadSize && file.size > config.maxUploadSize) return { code: "too_large", params: { size: config.maxUploadSize } };
    var ext = (file.name.match(/\.[^.]+$/) || [""])[0].toLowerCase();
    if (config.extensions && config.extensions.length && config.extensions.indexOf(ext) < 0) {
      return ext ? { code: "type_not_accepted", params: { ext: ext } } : { code: "no_extension" };
    }
    if (limits.mediaKind === "photos" && isVideo(file)) return { code: "photos_only" };
    if (limits.mediaKind === "videos" && !isVideo(file)) return { code: "videos_only" };
    if (limits.maxFileSize && file.size > limits.maxFileSize) return { code: "file_too_large", params: { size: limits.maxFileSize } };
    if (counted) return null; // the link's count has it (the server answers for the rest)
    if (budget.files != null && budget.files <= 0) return { code: "limit_reached" };
    if (budget.bytes != null && file.size > budget.bytes) {
      return budget.bytes > 0 ? { code: "bytes_left", params: { size: budget.bytes } } : { code: "limit_reached" };
    }
    return null;
  }

  var budgetChanges = 0; // bumped by every local change the server's count may not have seen yet

  function take(item) {
    budgetChanges += 1;
    if (budget.files != null) budget.files -= 1;
    if (budget.bytes != null) budget.bytes -= item.size;
    item.reserved = true;
  }

  // The owner changed what the link takes (a smaller largest file, one kind only): a file on its way
  // that the link no longer takes stops now, deleted on the server (its place given back), and
  // says why. The server refuses its next PATCH anyway, but a photo is one PATCH: it went on to
  // "done" under the new limit (owner re-walk).
  function stopRefused() {
    var stopped = false;
    items.forEach(function (item) {
      if (item.earlier || !item.file || !(SENDING[item.kind] || item.kind === "held")) return;
      var refused = check(item.file, true);
      if (!refused) return;
      item.retryable = false;
      item.notTaken = true;
      unsent(item); // deleted on the server: an empty bar, as for the server's own refusal (cold review)
      giveUp(item, "error", refusal(refused));
      stopped = true;
    });
    if (stopped) pump();
  }

  function giveBack(item) { // a cancelled file, or one the server had already: the link takes another
    if (!item.reserved) return;
    budgetChanges += 1;
    item.reserved = false;
    if (item.counted) { item.counted = false; scheduleInfo(); return; } // never taken here: the server's count says
    if (budget.files != null) budget.files += 1;
    if (budget.bytes != null) budget.bytes += item.size;
    roomAgain();
  }

  // A file refused for the link's limit goes when a place comes back (a cancelled file, one Immich
  // had already): the page said "4 more files" beside it, failed with no Retry (guest walk). In the
  // order chosen; three times at most, so a count the server sees otherwise cannot make a loop.
  var ROOM = { limit_reached: 1, files_left: 1, bytes_left: 1 };
  var roomTimer = null;
  function roomAgain() {
    if (roomTimer) return;
    roomTimer = setTimeout(function () {
      roomTimer = null;
      items.forEach(function (item) {
        if (!item.waitsForRoom || item.kind !== "error" || (item.retakes || 0) >= 3 || check(item.file, false)) return;
        item.waitsForRoom = item.refused = false;
        item.retakes = (item.retakes || 0) + 1;
        take(item);
        set(item, "queued", null);
      });
      pump();
    }, 0);
  }

  // --- sending ---------------------------------------------------------------------------------
  function pump() {
    if (paused) return;
    var active = items.filter(function (it) { return it.slot; }).length;
    items.forEach(function (item) {
      if (item.kind === "queued" && active < PARALLEL) { active += 1; start(item); }
    });
  }

  function restart(item) {
    if (item.slot) return;
    item.retryable = false;
    set(item, "queued", null);
    pump();
  }

  // A cancelled file chosen again from its row: a new upload (the cancelled one is gone from the
  // server, and a late word about it must not reach this one), if the link still has room.
  // A file this page's own check refuses (`check`): not sent; one refused for the link's room
  // waits for a place to come back (roomAgain).
  function refuseHere(item, problem) {
    item.refused = item.notTaken = true;
    item.waitsForRoom = !!ROOM[problem.code];
    set(item, "error", refusal(problem));
  }

  function sendAgain(item) {
    if (item.uploadId) { delete byUploadId[item.uploadId]; item.uploadId = null; }
    item.key = fileKey();
    item.posted = item.refused = item.notTaken = false;
    unsent(item);
    var problem = check(item.file, false);
    if (problem) { refuseHere(item, problem); return; }
    take(item);
    Keys.keep([item], false);
    set(item, "queued", null);
    pump();
  }

  function start(item) {
    item.slot = true;
    item.lastMove = Date.now();
    if (item.upload) { // paused: resumed from its URL (or still being created: it goes on by itself)
      set(item, "uploading", null);
      if (!item.creating) item.upload.start();
      return;
    }
    if (item.removed) return;
    if (item.sha1 !== undefined || !Hasher.available()) { send(item); return; }
    set(item, "checking", null);
    var begun = false;
    var go = function () {
      if (begun || !item.slot || item.kind !== "checking") return;
      begun = true;
      send(item);
    };
    var timer = setTimeout(go, HASH_WAIT_MS); // a large video starts at once; the answer may stop it later
    Hasher.sha1(item.file).then(function (sha1) {
      item.sha1 = sha1;
      return sha1 && !item.removed ? askServer(item) : null;
    }).then(function (answer) {
      clearTimeout(timer);
      if (answer && answer.already) alreadyThere(item, answer);
      else go();
    }).catch(function () { clearTimeout(timer); go(); });
  }

  // Chosen again after a reload, a file this browser sent before (the status channel listed it as
  // "sent earlier", with its SHA-1) and that the server found "already there" for this link is not a
  // second row: it made 7 rows of 4 files, "1 sent, 3 already there" for files the guest did send
  // (guest walk). The new row goes; the earlier one stays, and is shown. The server decides first:
  // the earlier row may be another link's, or Immich may have lost the file since.
  // The same holds for a file this page sent and that is chosen again once done: it stood twice,
  // "Finished: 3 sent, 3 already there" for three files (guest walk).
  function sentEarlier(item) {
    return items.filter(function (it) {
      var known = it.uploadId && lastStatus[it.uploadId];
      // (by its name too: a copy named "IMG_1 (1).jpg" lost its row, on this page and after a reload)
      return it !== item && it.size === item.size && known && known.sha1 === item.sha1 && it.name === item.name &&
        (it.kind === "done" || it.kind === "duplicate");
    })[0];
  }

  function isTwin(item, twin) {
    var upload = item.upload; // a large file may have begun while it was hashed: as alreadyThere does
    item.upload = null;
    item.slot = false;
    item.removed = true;
    if (upload && !item.creating) deleteUpload(upload);
    giveBack(item);
    Keys.forget(item);
    item.el.remove();
    var at = items.indexOf(item);
    if (at >= 0) items.splice(at, 1);
    pointAt(twin);
    refresh();
    pump();
  }

  function askServer(item) {
    return fetch("/api/already", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ invite: invite || "", sha1: item.sha1, size: item.size, filename: item.name,
                             filetype: item.file.type || "", guestName: Who.name(), guestMessage: Who.message() })
    }).then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; });
  }

  function alreadyThere(item, answer) {
    if (item.kind === "cancelled" || item.removed) return;
    // the server names the earlier upload this file went through this link as: the row this page
    // has for it, under the same name, is the file's row, whatever that row has heard yet (a row still
    // "processing" after a reload, its "done" on the way, got a second row "already there": guest walk)
    var named = answer.id && byUploadId[answer.id];
    var same = named && named !== item && !named.removed && named.name === item.name && named.size === item.size;
    var twin = sentEarlier(item) || (same ? named : null);
    if (twin) { isTwin(item, twin); return; } // the server said so for this link: one row, not two
    var upload = item.upload;
    item.upload = null;
    item.slot = false;
    if (upload && !item.creating) deleteUpload(upload); // else once created
    giveBack(item);
    if (answer.id) remember(item, answer.id);
    item.skipped = true;
    set(item, "duplicate", text("guest.detail.already"));
    pump();
  }

  // The file's own key: a creation sent again (its answer lost on the network) names it, and the
  // server answers with the upload the first one made instead of a second one taking another place
  // in the link's limits.
  function fileKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function metadata(item) {
    var meta = {
      invite: invite || "", filename: item.name, uploadKey: item.key, filetype: item.file.type || "application/octet-stream",
      lastModified: String(item.file.lastModified || ""), tz: String(-new Date().getTimezoneOffset()),
      // the zone's name gives the server the offset in force at the file's own date (summer time)
      tzName: (Intl.DateTimeFormat().resolvedOptions().timeZone || "")
    };
    if (Who.name()) meta.guestName = Who.name();
    if (Who.message()) meta.guestMessage = Who.message();
    return meta;
  }

  function send(item) {
    set(item, "uploading", null);
    var upload = new tus.Upload(item.file, {
      endpoint: config.endpoint,
      chunkSize: chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      metadata: metadata(item),
      onProgress: function (sent) {
        item.lastMove = Date.now();
        if (sent > item.sent) item.sent = sent;
        if (item.kind === "stalled" || item.kind === "offline") set(item, "uploading", null);
        else if (item.kind === "uploading") { render(item); updateOverall(); }
      },
      onBeforeRequest: function (req) {
        if (req.getMethod() === "PATCH") item.patchSize = upload.options.chunkSize; // what a proxy may refuse
        if (req.getMethod() !== "POST") return;
        if (item.posted) req.setHeader("Immich-Drop-Retry", "1"); // the server may have made an earlier one
        item.posted = item.creating = true;
        Keys.keep([item], true);
      },
      onAfterResponse: function (req, res) {
        item.lastMove = Date.now();
        if (req.getMethod() === "HEAD") skipTo(item, parseInt(res.getHeader("Upload-Offset"), 10));
        if (req.getMethod() === "POST") item.creating = false;
        if (upload.url) remember(item, upload.url.split("/").pop()); // status events find this item early
      },
      onUploadUrlAvailable: function () {
        // cancelled or paused while being created: only now, with its URL and before its first
        // PATCH, can it be deleted or left to resume. Cut earlier, the server would keep it (and its
        // place in the link's limits), and a resume would create it again.
        Keys.forget(item); // tus-js-client keeps the URL from here on
        if (item.upload !== upload) deleteUpload(upload);
        else if (item.kind === "paused") upload.abort();
        else remember(item, upload.url.split("/").pop());
      },
      onSuccess: function () {
        item.slot = false;
        item.upload = null;
        item.sent = item.size;
        remember(item, upload.url.split("/").pop());
        if (item.kind === "uploading") set(item, "processing", null);
        listUnfinished();
        pump();
      },
      onError: function (error) { failed(item, upload, error); }
    });
    item.upload = upload;
    upload.findPreviousUploads().then(function (previous) {
      var mine = previous.filter(function (p) { return (p.metadata && p.metadata.invite || "") === (invite || ""); });
      if (!mine.length) return;
      upload.resumeFromPreviousUpload(mine[0]);
      // Its creation's key goes with it: should the server's answer to a HEAD make tus-js-client
      // take the upload for gone (a 408 for a head held in a frozen network), the creation it
      // sends again finds this upload instead of taking another place in the link's limits
      // (a new key after a reload: "limit reached" for good, or the whole file again: guest walk).
      var key = mine[0].metadata.uploadKey;
      if (typeof key === "string" && /^[A-Za-z0-9_-]{16,64}$/.test(key)) {
        item.key = upload.options.metadata.uploadKey = key;
        item.posted = true;
      }
    }).catch(function () { /* no stored uploads to look at: start afresh */ }).then(function () {
      if (item.upload !== upload || !item.slot) return; // cancelled, paused or already known meanwhile
      upload.start();
      listUnfinished();
    }).catch(function (error) { failed(item, upload, error); });
  }

  // A network problem is a pause (offline, or stalled and retried); only the server's answer is a failure.
  function failed(item, upload, error) {
    if (item.upload !== upload || !item.slot) return;
    var res = error && error.originalResponse;
    // no answer, or a 408 for a request whose head stalled on the way (an uplink that stopped while
    // answers came back): a pause, not a failure
    if (!res || res.getStatus() === 408) {
      if (navigator.onLine === false) { set(item, "offline", text("guest.detail.offline")); return; }
      set(item, "stalled", text("guest.detail.stalled"));
      setTimeout(function () { if (item.upload === upload && item.kind === "stalled" && !paused) resume(item); }, 5000);
      return;
    }
    var body = null;
    try { body = JSON.parse(res.getBody()); } catch (e) { /* not our JSON */ }
    var status = res.getStatus();
    // a link this page had open that is now unknown was deleted (as its banner says: cold review)
    if (status === 404 && info && body && body.code === "link_invalid") body = { code: "page.link_deleted" };
    var code = body && body.code;
    if (status === 413 && !code && smallerChunks(item, error)) { resume(item); return; }
    // A refusal without the server's own words came from something on the way: a hotel's or a
    // venue's Wi-Fi sign-in page answers 403 with HTML. It ended the file as the server's fault, and
    // nothing tried again (guest walk); the network's answer is a pause, tried again as a 5xx is.
    var intercepted = !code && status >= 400 && status < 500 && status !== 404 && status !== 409;
    // the server still holds a dead request, hiccups, or waits for this browser's other files to arrive
    if (status === 423 || (status >= 500 && code !== "link_paused") || code === "too_many_unfinished" || intercepted) {
      item.waits = Math.min((item.waits || 0) + 1, 6);
      // the server's own reason when it gave one (no room on its disk, say), else the network's
      set(item, "stalled", code && status !== 423 ? refusal(body)
        : text(intercepted ? "guest.detail.intercepted" : "guest.detail.stalled"));
      setTimeout(function () { if (item.upload === upload && item.kind === "stalled" && !paused) resume(item); }, 2500 * item.waits);
      return;
    }
    item.slot = false;
    if (item.kind === "error") { item.upload = null; pump(); return; } // the status channel already said why
    // its link closed, or its password changed: held like the others, to go on if it opens (or once
    // the new password is given: the form shows)
    if (code && (LINK_CLOSED[code] || code === "needs_password") && status < 500) {
      hold(item, body);
      loadInvite().catch(function () { /* offline: the next answer says */ }); // the page says so, and holds the rest
      return;
    }
    item.upload = null;
    item.retryable = !(code && FINAL[code]) && (status >= 500 || status === 404 || status === 409 || status === 423 || !code);
    if (code && FINAL[code]) {
      item.notTaken = !BROKEN[code]; // its rules said no (a page from the wrong address is a fault)
      giveBack(item);
      unsent(item);
    }
    item.waitsForRoom = !!(code && ROOM[code]); // the server's count said no: it may say yes when a place is back
    set(item, "error", body && (body.code || body.message) ? refusal(body) : text("guest.detail.server"));
    pump();
  }

  // A reverse proxy whose body limit is below CHUNK_SIZE (nginx's default is 1 MB) answers a PATCH
  // 413 with a page of its own, and the same PATCH would be refused forever: every upload of this
  // page goes on in PATCHes half as large as the refused one (uploads refused together halve once:
  // each halves from the size it sent, not from what an earlier refusal set), down to MIN_CHUNK.
  // False when none can be smaller.
  function smallerChunks(item, error) {
    var req = error.originalRequest, refused = item.patchSize || chunkSize;
    if (!req || req.getMethod() !== "PATCH" || refused <= MIN_CHUNK) return false;
    chunkSize = Math.min(chunkSize, Math.max(MIN_CHUNK, Math.floor(refused / 2)));
    items.forEach(function (it) { if (it.upload) it.upload.options.chunkSize = chunkSize; });
    return true;
  }

  function resume(item) { // the same tus upload again: it asks the server for its offset, then continues
    var upload = item.upload;
    if (!upload) return;
    item.lastMove = Date.now();
    upload.abort().then(function () { if (item.upload === upload && !paused) upload.start(); });
  }

  // The watchdog: tus-js-client waits forever on a connection that stopped moving; cut it and resume.
  setInterval(function () {
    var now = Date.now();
    items.forEach(function (item) {
      if (!item.upload || !item.slot || (item.kind !== "uploading" && item.kind !== "stalled")) return;
      // a creation is cut only as a last resort: the server may have made it, and a new one takes
      // another place in the link's limits
      if (now - item.lastMove < (item.creating ? 4 * STALL_MS : STALL_MS)) return;
      if (navigator.onLine === false) { set(item, "offline", text("guest.detail.offline")); return; }
      set(item, "stalled", text("guest.detail.stalled"));
      resume(item);
    });
    if (sending()) updateOverall();
  }, 1000);

  function cancel(item) {
    giveUp(item, "cancelled", null);
    pump();
  }

  // the server kept none of it: a full red bar read as "sent, then lost" (guest walk)
  function unsent(item) {
    if (meter.at) meter.bytes -= item.sent; // (not a second of speed 0 in the estimate)
    item.sent = 0;
  }

  // A file given up (cancelled, or one its link no longer takes): off the server, its place in the
  // link given back, not taken up again when a closed link opens.
  function giveUp(item, kind, detail) {
    var upload = item.upload;
    item.upload = null;
    item.slot = false;
    item.heldByLink = false;
    giveBack(item);
    set(item, kind, detail);
    // one being created is deleted once its creation answers (onAfterResponse)
    if (upload && !item.creating) deleteUpload(upload);
  }

  // Off the server (tus termination). Once the server has given its place back, the link is asked
  // again: a file refused for want of that place goes (roomAgain). The page's own count let it try
  // at once, and a DELETE slow to land (a loaded machine) had it refused three times; a one-time
  // link the page's browser has used up sends no word of a place given back (CI).
  function deleteUpload(upload) {
    upload.abort(true).then(scheduleInfo, function () { /* the server expires it */ });
  }

  $("pause").addEventListener("click", function () {
    paused = !paused;
    items.forEach(function (item) {
      if (paused && SENDING[item.kind]) {
        if (item.upload && !item.creating) item.upload.abort(); // else once created (onAfterResponse)
        item.slot = false;
        set(item, "paused", text("guest.detail.paused"));
      } else if (!paused && item.kind === "paused") {
        set(item, "queued", null);
      }
    });
    if (!paused) pump();
    refresh();
  });

  function remember(item, id) {
    if (byUploadId[id] === item) return;
    byUploadId[id] = item;
    item.uploadId = id;
    budgetChanges += 1;
    if (lastStatus[id]) applyServerEvent(lastStatus[id]);
  }

  // --- the status channel: the server's side of each file, and what this browser sent before ------
  function applyServerEvent(event) {
    if (event.type === "removed") { removed(event.id, event.why); return; }
    if (event.type !== "upload") return;
    lastStatus[event.id] = event;
    var item = byUploadId[event.id];
    if (!item && listing && event.state !== "receiving") { // only from the snapshot
      var twin = event.sha1 && items.filter(function (it) {
        var known = it.earlier && lastStatus[it.uploadId];
        return known && known !== event && known.sha1 === event.sha1 && it.size === event.size;
      })[0];
      if (twin) { byUploadId[event.id] = twin; return; } // the same file recorded again (another link, say): one row
      item = earlierItem(event);
    }
    if (!item || event.state === "receiving") return;
    if (item.kind === "cancelled" || (item.kind === "duplicate" && !item.earlier && event.state !== "duplicate")) return;
    var kind = SERVER_KIND[event.state] || "processing";
    var detail = item.earlier ? text("guest.detail.earlier") : null;
    if (kind === "waiting") detail = refusal({ code: event.code || "waiting" });
    if (kind === "error") {
      item.retryable = item.notTaken = false;
      // a file its owner's deleting the link stopped is theirs, not the guest's failure: "removed"
      // (it read "failed" in red, and "Finished: 1 sent, 1 failed": guest walk)
      item.ownerRemoved = event.code === "link_deleted";
      detail = refusal({ code: event.code || "rejected" });
    }
    // Immich had it (its answer after the bytes went, or the server's check before): "nothing had
    // to be sent" is said only where the page itself skipped the sending (alreadyThere)
    if (kind === "duplicate" && !item.earlier) {
      giveBack(item);
      detail = text(item.skipped ? "guest.detail.already" : "guest.detail.in_library");
    }
    if (kind === "done" || kind === "duplicate") scheduleInfo();
    set(item, kind, detail);
  }

  function earlierItem(event) {
    var item = newItem(event.filename, event.size, null, true);
    byUploadId[event.id] = item;
    item.uploadId = event.id;
    Thumbs.icon(item, event.filename);
    return item;
  }

  function removed(id, why) {
    var item = byUploadId[id];
    delete lastStatus[id];
    // the link's owner removed it (its log's Remove): said, and not sent again by a resume
    if (item && !item.earlier && why === "owner" && !SETTLED[item.kind]) {
      item.retryable = false;
      item.ownerRemoved = true;
      giveUp(item, "error", text("guest.detail.removed"));
    }
    if (item && item.earlier) {
      item.el.remove();
      items.splice(items.indexOf(item), 1);
      refresh();
    }
    forgetStored(function (uid) { return uid === id; });
  }

  // A dead network can leave the channel open but silent: the page pings, and reconnects when
  // nothing came back for a while (the new connection's snapshot catches up on what was missed).
  var backoff = 500, PING_MS = tuning.pingMs || 15000;
  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws"
      + (invite ? "?invite=" + encodeURIComponent(invite) : "?public=1")); // its own files, no other link's
    var listed = {}, heard = Date.now();
    var pinger = setInterval(function () {
      if (Date.now() - heard > 2 * PING_MS) {
        channelOpen = false; // silent: the page asks over HTTP until a new channel is ready
        clearInterval(pinger); ws.onclose = null; ws.close(); connect(); return;
      }
      if (ws.readyState === 1) ws.send("ping");
    }, PING_MS);
    ws.onopen = function () { backoff = 500; heard = Date.now(); };
    ws.onmessage = function (message) {
      heard = Date.now();
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.type === "ready") {
        channelOpen = true;
        var first = snapshot === null;
        snapshot = listed;
        if (!first && invite) loadInvite(); // the link may have changed while the channel was down
        if (first) {
          listing = true;
          Object.keys(listed).forEach(function (id) { if (!byUploadId[id]) applyServerEvent(lastStatus[id]); });
          listing = false;
          checkStored(listed);
        }
        return;
      }
      if (event.type === "link") { loadInvite(); return; } // its owner changed or deleted it: ask again
      if (event.type === "upload" && listed !== snapshot) { listed[event.id] = event.state; lastStatus[event.id] = event; }
      if (listed === snapshot || byUploadId[event.id] || event.type !== "upload") applyServerEvent(event);
    };
    ws.onclose = function () {
      channelOpen = false;
      clearInterval(pinger);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  // Without the status channel (a proxy or a mobile network that blocks WebSockets), the page asks
  // over HTTP every few seconds while a file of its own waits for the server's word.
  var channelOpen = false, POLL_MS = tuning.pollMs || 5000, heldAsked = 0;
  setInterval(function () {
    if (channelOpen || document.hidden) return;
    // files held by a closed link: no word comes over HTTP when it opens again, so the page asks
    // (a re-enabled link's file stayed held for good behind a proxy without WebSockets: re-walk)
    if (invite && items.some(function (it) { return it.heldByLink; }) && (heldAsked = (heldAsked + 1) % 3) === 0) {
      loadInvite().catch(function () { /* the next round asks again */ });
    }
    if (!items.some(function (it) { return it.uploadId && !it.earlier && (it.kind === "processing" || it.kind === "waiting"); })) return;
    askStatus();
  }, POLL_MS);

  function askStatus() {
    fetch("/api/status", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || channelOpen) return;
        body.events.forEach(function (event) { if (byUploadId[event.id]) applyServerEvent(event); });
        if (snapshot === null) { // the channel never got through: the stored uploads are checked here
          var listed = {};
          body.events.forEach(function (event) { listed[event.id] = event.state; });
          checkStored(listed);
        }
      }).catch(function () { /* the next round asks again */ });
  }
  // Stored "not finished" uploads the server no longer has (expired, removed) are forgotten, once,
  // by the first of the channel's snapshot and an HTTP answer: `listed` is upload id -> state.
  var storedChecked = false;
  function checkStored(listed) {
    if (storedChecked) return;
    storedChecked = true;
    // (this page's own: the channel lists only this link's files, and another link's half-sent file
    // keeps its way back)
    forgetStored(function (uid, kept) { return ours(kept) && listed[uid] !== "receiving"; });
  }
  function ours(kept) { return !!kept.metadata && (kept.metadata.invite || "") === (invite || ""); }
  setTimeout(function () { if (!channelOpen && snapshot === null) askStatus(); }, 3 * 1000);

  // --- unfinished files from an earlier visit ---------------------------------------------------
  function storage() { // tus-js-client's; with the browser's storage blocked it falls back to one that cannot list
    var kept = window.tus && tus.defaultOptions.urlStorage;
    return kept && typeof kept.findAllUploads === "function" ? kept : null;
  }

  function forgetStored(stale) {
    if (!storage()) return;
    storage().findAllUploads().then(function (stored) {
      var gone = stored.filter(function (s) { return s.uploadUrl && stale(s.uploadUrl.split("/").pop(), s); });
      return Promise.all(gone.map(function (s) { return storage().removeUpload(s.urlStorageKey); }));
    }).then(listUnfinished).catch(function () { /* storage blocked */ });
  }

  // This link's uploads tus-js-client can resume ("name/size"), as last read, and whether read yet.
  var resumable = {}, storedRead = false;

  function listUnfinished() {
    if (!storage()) { storedRead = true; return Promise.resolve(); }
    return storage().findAllUploads().then(function (stored) {
      var chosen = {};
      items.forEach(function (it) { if (!it.earlier) chosen[it.name + "/" + it.size] = true; });
      var mine = stored.filter(ours);
      resumable = {};
      mine.forEach(function (s) { resumable[s.metadata.filename + "/" + s.size] = true; });
      var names = mine.filter(function (s) { return !chosen[s.metadata.filename + "/" + s.size]; })
        .map(function (s) { return s.metadata.filename; });
      Keys.waiting().forEach(function (e) { // chosen, never sent a byte: as much to choose again
        if (!chosen[e.n + "/" + e.s] && !resumable[e.n + "/" + e.s] && names.indexOf(e.n) < 0) names.push(e.n);
      });
      var box = $("unfinished");
      box.hidden = names.length === 0;
      // a line, not a wall: ten names, then how many more ("…" alone ran into the sentence's full stop)
      var shown = names.slice(0, 10).join(", ") + (names.length > 10 ? " (+" + I18N.formatNumber(names.length - 10) + ")" : "");
      box.textContent = I18N.n("guest.unfinished", names.length, { names: shown });
      fitDrop();
    }).catch(function () { /* storage blocked: nothing to offer */ }).then(function () { storedRead = true; });
  }

  // --- phone survival --------------------------------------------------------------------------
  window.addEventListener("online", function () {
    items.forEach(function (item) { // at once, instead of waiting for the next retry delay
      if (item.upload && (item.kind === "offline" || item.kind === "stalled" || item.kind === "uploading")) {
        set(item, "uploading", null);
        resume(item);
      }
    });
  });
  window.addEventListener("offline", function () {
    items.forEach(function (item) { if (item.kind === "uploading" || item.kind === "stalled") set(item, "offline", text("guest.detail.offline")); });
  });
  document.addEventListener("visibilitychange", holdScreen);
  window.addEventListener("focus", holdScreen); // the file picker closing hands focus back
  window.addEventListener("beforeunload", function (e) {
    // files on hold too: they go on by themselves only while this page stays open (re-walk)
    if (!sending() && !items.some(function (it) { return it.kind === "held" && REOPENS[it.heldCode]; })) return undefined;
    e.preventDefault();
    e.returnValue = T("guest.leave");
    return e.returnValue;
  });
  $("retry-all").addEventListener("click", function () {
    items.forEach(function (item) { if (item.kind === "error" && item.retryable) restart(item); });
  });

  // --- wiring --------------------------------------------------------------------------------
  picker.addEventListener("change", function () { addFiles(picker.files, true); picker.value = ""; holdScreen(); });
  filesPicker.addEventListener("change", function () { addFiles(filesPicker.files, false); filesPicker.value = ""; holdScreen(); });
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { if (e.dataTransfer) addFiles(e.dataTransfer.files, false); });

  // iOS hands out JPEG copies of HEIC photos from its photo picker; the Files picker gives originals.
  // Said once, before choosing, and only on iPhones and iPads.
  function converted() {
    var apple = /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
    var seen = null;
    try { seen = localStorage.getItem("convertedSeen"); } catch (e) { /* ask every time */ }
    $("converted").hidden = !apple || !!seen || drop.hidden;
  }
  $("converted-ok").addEventListener("click", function () {
    try { localStorage.setItem("convertedSeen", "1"); } catch (e) { /* not remembered */ }
    $("converted").hidden = true;
  });

  // --- invite links ----------------------------------------------------------------------
  var infoTimer = null;
  function scheduleInfo() { // the "files left" line follows what the server counts
    if (!invite || infoTimer) return;
    infoTimer = setTimeout(function () { infoTimer = null; loadInvite(true); }, 300);
  }

  // Questions asked, and the latest one whose answer was shown: an answer overtaken by a later
  // one's is dropped (a later question that fails leaves this one's answer standing).
  var infoAsked = 0, infoShown = 0, fullShown = 0; // fullShown: the latest answer that set the page up
  function loadInvite(quiet) {
    var asked = budgetChanges, question = ++infoAsked;
    var answered = fetch("/api/i/" + encodeURIComponent(invite), { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; }); })
      .then(function (answer) {
        if (!quiet && question < fullShown) return; // a newer full answer (open or closed) decides
        if (!quiet) fullShown = question;
        if (!answer.ok) {
          if (quiet) return;
          // only the link's own refusal closes the page (404 gone, 410 closed); a hiccup (a 500, a
          // 429) did too, and its files stayed failed for good (cold review): asked again instead
          // a link this page had open that is now unknown was deleted: "not valid" read as a
          // mistake in the address while its files said "deleted" (guest walk)
          if (answer.status === 404 && info && answer.body && answer.body.code === "link_invalid") {
            block({ code: "page.link_deleted" });
          } else if (answer.status === 404 || answer.status === 410) block(answer.body);
          else setTimeout(function () { loadInvite(); }, 5000);
          return;
        }
        // An answer counted before a reservation or creation made since: stale, ask again.
        if (quiet && asked !== budgetChanges) { scheduleInfo(); return; }
        if (quiet && question < infoShown) return; // (the first look and an unlock always set the page up)
        infoShown = Math.max(infoShown, question);
        info = answer.body;
        // files this page took a place for that the server may not have counted yet; not one whose
        // creation is on its way (the server counts it on arrival: the link event its own file sent
        // on filling the link came back counting it, and a place given back then read "0 more")
        var waiting = items.filter(function (it) { return it.reserved && !it.uploadId && !it.counted && !it.posted; });
        budget.files = info.remaining.files == null ? null : info.remaining.files - waiting.length;
        budget.bytes = info.remaining.bytes == null ? null
          : info.remaining.bytes - waiting.reduce(function (sum, it) { return sum + it.size; }, 0);
        // the server's own count: a file that used its three tries on a place given back here before
        // the server had it back (a cancel's DELETE slow to land: CI) tries again on this word; so
        // does one whose last try is still on its way (the word came first: the full suite, loaded)
        items.forEach(function (it) { if (it.waitsForRoom || it.retakes) it.retakes = 0; });
        roomAgain();
        offerSendAgain();
        stopRefused();
        if (quiet) { showDetails(); return; }
        if (info.title) { $("title").textContent = info.title; document.title = info.title; $("title").removeAttribute("data-i18n"); }
        if (info.limits.mediaKind === "photos") picker.accept = "image/*";
        if (info.limits.mediaKind === "videos") picker.accept = "video/*";
        var locked = info.needsPassword && !info.unlocked;
        var shown = locked && $("unlock").hidden; // focused once, as it shows (asked again every 15 s
        $("unlock").hidden = !locked;             // without WebSockets, it took the focus each time)
        drop.hidden = locked;
        if (linkNotice) { notice.hidden = true; linkNotice = false; } // its owner turned it on again
        if (!locked) goOnAll(); // files held while it was closed (or refused in a quick off and on) go on
        if (info.paused) { notice.textContent = T("guest.paused"); notice.hidden = false; linkNotice = true; noticeBody = null; }
        if (shown) {
          $("password").value = ""; // the old one, still typed in, read "not right" when tapped (walk)
          $("password").focus();
          // its password changed: the files on their way stop now, not at their next PATCH's 401 (a
          // bar went on from 40% to 79% meanwhile, and 59-79% went again: walk)
          holdAll({ code: "needs_password" });
        }
        Who.setup(info.guestFields || "optional");
        showDetails();
        closeOnTime(info.expiresAt);
        converted();
      });
    return quiet ? answered.catch(function () { /* the next delivered file asks again */ }) : answered;
  }

  function showDetails() {
    if (!info) return;
    if (linkClosed()) { $("details").hidden = true; return; } // "open until" no longer holds
    var parts = [];
    if (info.albumName) parts.push(T("guest.details.album", { name: info.albumName }));
    if (info.limits.mediaKind === "photos") parts.push(T("guest.details.photos_only"));
    if (info.limits.mediaKind === "videos") parts.push(T("guest.details.videos_only"));
    if (info.limits.maxFileSize) parts.push(T("guest.details.max_size", { size: I18N.formatSize(info.limits.maxFileSize) }));
    if (budget.files != null) parts.push(I18N.n("guest.details.files_left", Math.max(0, budget.files)));
    if (budget.bytes != null) parts.push(T("guest.details.bytes_left", { size: I18N.formatSize(Math.max(0, budget.bytes)) }));
    if (info.expiresAt) parts.push(T("guest.details.open_until", { date: I18N.formatDate(info.expiresAt) }));
    $("details").textContent = parts.join(" · ");
    $("details").hidden = parts.length === 0;
    fitDrop();
  }

  // A link with no place left says so where the pickers were (every file chosen there would be
  // refused), unless a file not finished before a reload waits to be chosen again: the link's count
  // already holds it. A cancelled or refused file gives its place back, and the pickers return.
  // a phone or tablet: nothing to drag files from, so the zone does not offer it
  var TOUCH = window.matchMedia && matchMedia("(pointer: coarse)").matches && !matchMedia("(any-pointer: fine)").matches;
  function fitDrop() {
    var full = ((budget.files != null && budget.files <= 0) || (budget.bytes != null && budget.bytes <= 0))
      && $("unfinished").hidden;
    drop.querySelector(".pickers").hidden = full;
    if (Who) { if (full) $("who").hidden = true; else Who.redraw(); } // nothing to send: nobody to ask "who"
    // a link for photos (or videos) only says so on its hint and its first picker, not "photos and
    // videos" (owner walk: a video chosen there was refused after choosing)
    var only = info && info.limits && (info.limits.mediaKind === "photos" || info.limits.mediaKind === "videos")
      ? "_" + info.limits.mediaKind : "";
    var hint = $("drop-hint"), key = full ? "guest.drop.full" : (TOUCH ? "guest.drop.hint_touch" : "guest.drop.hint") + only;
    hint.setAttribute("data-i18n", key);
    hint.textContent = T(key);
    var pick = only ? "guest.pick" + only.replace("_", ".") : "guest.pick.media";
    $("pick-media").setAttribute("data-i18n", pick);
    $("pick-media").textContent = T(pick);
    // A one-time link's word stands where the hint would, above the pickers: a notice of its own put
    // them below the first screen of a 320x568 phone. With no place left, "takes no more files" says it.
    var oneTime = !full && !!(info && info.limits && info.limits.maxUses === 1);
    $("onetime").hidden = !oneTime;
    hint.hidden = oneTime;
    drop.setAttribute("aria-describedby", oneTime ? "onetime" : "drop-hint");
  }

  function addEarly() {
    if (!drop.hidden && Who.ready()) early.splice(0).forEach(function (pick) { addFiles(pick[0], pick[1]); });
  }

  // No word comes from the server when the link expires: at that moment the page asks it again, and
  // on its answer says so and takes no more files (it offered them, and each failed on its first
  // request). The server's word decides: the owner may have moved the expiry meanwhile, and this
  // phone's clock may be off (then it asks every 5 s until they agree).
  var expiryTimer = null;
  function closeOnTime(expiresAt) {
    clearTimeout(expiryTimer);
    if (!expiresAt) return;
    var wait = new Date(expiresAt).getTime() - Date.now();
    expiryTimer = setTimeout(function () {
      if (new Date(expiresAt).getTime() > Date.now()) { closeOnTime(expiresAt); return; } // beyond one timer's reach
      loadInvite().catch(function () { closeOnTime(expiresAt); }); // offline: ask again later
    }, wait > 0 ? Math.min(wait + 250, 2147483647) : 5000);
  }

  var linkNotice = false; // the notice says why the link takes nothing: gone when it takes files again
  var noticeBody = null; // the link's refusal, said again in a language chosen later
  function linkClosed() { return !!(linkNotice && noticeBody); } // (a paused link's notice has no body)
  function block(body) {
    noticeBody = body;
    $("details").hidden = true; // "open until ..." and "3 more files" no longer hold
    linkNotice = true;
    drop.hidden = true;
    Who.redraw(); // "Sending as Anna · Change" goes: nothing is sent now (re-walk)
    holdAll(body);
    sayClosed();
    notice.hidden = false;
  }
  function sayClosed() {
    var said = linkClosedText(noticeBody);
    if (notice.textContent !== said) notice.textContent = said; // (the notice is read out when it changes)
  }

  // The link closed (expired, turned off, deleted): files on their way stop at once, keeping what
  // the server has (a video went on to 99% for half a minute, then failed: guest walk), and say why.
  // If its owner opens it again, they go on by themselves from their last byte.
  // (link_used: this browser came after the link's last use; it opened before that, and went on
  // offering pickers and "3 more files" beside the refused file: guest walk)
  var LINK_CLOSED = { link_off: 1, link_expired: 1, link_invalid: 1, link_deleted: 1, link_paused: 1, link_used: 1,
    "page.link_deleted": 1 };
  // Why the link takes nothing, and for one that ended (not one turned off or paused, which its owner
  // may turn on again) what the guest can do: "Dieser Upload-Link ist abgelaufen." alone left them
  // with nothing to do (owner walk).
  var LINK_ENDED = { link_expired: 1, link_invalid: 1, link_deleted: 1, link_used: 1, "page.link_deleted": 1 };
  function linkClosedText(body) {
    var code = body && body.code, why = I18N.server(body, T("server.link_invalid"));
    var held = REOPENS[code] && items.some(function (it) { return it.kind === "held"; });
    // a used link opens again only if its owner allows one more browser, which is rare: asking for
    // a new link comes first there ("keep this page open" first read as a promise: walk)
    if (code === "link_used") return why + " " + T("server.page.new_link") + (held ? " " + T("guest.notice.held_used") : "");
    if (held) why += " " + T("guest.notice.held");
    return LINK_ENDED[code] || !code ? why + " " + T("server.page.new_link") : why;
  }
  function holdAll(body) {
    items.forEach(function (item) {
      if (item.earlier || !SENDING[item.kind]) return;
      if (item.upload && !item.creating) item.upload.abort(); // kept on the server: it may go on later
      item.slot = false;
      hold(item, body);
    });
    pump();
  }

  function hold(item, body) { // not "failed", nor "finished": the guest may keep the page open
    item.heldByLink = true;
    item.heldCode = body && body.code;
    item.retryable = false;
    set(item, "held", refusal(body));
  }

  function goOnAll() {
    items.forEach(function (item) {
      if (!item.heldByLink || (item.kind !== "held" && item.kind !== "error")) return;
      item.heldByLink = false;
      if (!item.reserved) take(item);
      set(item, paused ? "paused" : "queued", paused ? text("guest.detail.paused") : null);
    });
    pump();
  }

  $("unlock").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/i/" + encodeURIComponent(invite) + "/unlock", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: $("password").value })
    }).then(function (r) {
      if (r.ok) {
        $("unlock-error").textContent = "";
        return loadInvite().then(addEarly).then(function () { // the form is gone: the next step has the focus
          ($("who").hidden ? $("picker") : $("who-name")).focus();
        });
      }
      return r.json().then(function (body) { $("unlock-error").textContent = I18N.server(body, T("guest.password.failed")); });
    });
  });

  // --- the guest's name and message: asked once, remembered in this browser -----------------------
  var Who = (function () {
    var mode = "hidden", saved = null, said = null;
    // why the name is asked: said again in a language chosen later (it stayed English: re-walk); the
    // files kept meanwhile are news, not an error (it read red, as a refusal)
    function say(key) {
      said = key;
      var text = key ? T(key) : "";
      if ($("who-error").textContent !== text) $("who-error").textContent = text; // (an alert: read out when it changes)
      $("who-error").classList.toggle("error", key === "guest.who.required");
    }
    try { saved = JSON.parse(localStorage.getItem("guest") || "null"); } catch (e) { saved = null; }
    // The name goes with this browser; a message with the link it was written for: "Happy birthday
    // Grandma!" went on to every later link, another owner's too, unseen (owner walk).
    if (saved && typeof saved === "object" && (saved.link || "") !== (invite || "")) saved.message = "";
    if (saved && typeof saved !== "object") saved = null;
    // passed over in this tab: not asked again on a reload (the name card came back mid-upload:
    // guest walk), but on the next visit, as before
    try { if (!saved && sessionStorage.getItem("guest-passed") === (invite || "")) saved = { name: "", message: "" }; }
    catch (e) { /* asked again */ }
    function store() {
      saved.link = invite || "";
      try { localStorage.setItem("guest", JSON.stringify(saved)); } catch (e) { /* this visit only */ }
    }
    function show() {
      var asking = mode !== "hidden" && (!saved || (mode === "required" && !saved.name));
      var closed = linkClosed(); // nothing is sent while the link is closed
      $("who").hidden = closed || mode === "hidden" || !asking;
      $("who-done").hidden = closed || mode === "hidden" || asking;
      $("who-name-label").textContent = T(mode === "required" ? "guest.who.name" : "guest.who.name_optional");
      $("who-name").required = mode === "required";
      if (saved && saved.name) sayWithName($("who-as"), "guest.who.as", saved.name);
      else if (saved) $("who-as").textContent = T("guest.who.anonymous");
    }
    // The sentence around the name the guest typed, the name in a <bdi> of its own: direction marks
    // in it (a right-to-left override, say) cannot turn the words and the button after it around.
    function sayWithName(el, key, name) {
      el.textContent = "";
      T(key, { name: "\u0000" }).split("\u0000").forEach(function (part, i) {
        if (i) el.appendChild(document.createElement("bdi")).textContent = name;
        el.appendChild(document.createTextNode(part));
      });
    }
    function typed() {
      return { name: $("who-name").value.trim().slice(0, 100), message: $("who-message").value.trim().slice(0, 1000) };
    }
    $("who").addEventListener("submit", function (e) {
      e.preventDefault();
      saved = typed();
      if (mode === "required" && !saved.name) { say(early.length ? "guest.who.kept" : "guest.who.required"); return; }
      say(null);
      store();
      show();
      addEarly();
      if (!drop.hidden && !drop.querySelector(".pickers").hidden) $("picker").focus(); // the form is gone
    });
    // the message is one tap away, so the pickers stay in a phone's first screen
    function showMessage(on) {
      $("who-add-message").hidden = on;
      $("who-message").hidden = $("who-message").labels[0].hidden = !on;
    }
    $("who-add-message").addEventListener("click", function () { showMessage(true); $("who-message").focus(); });
    $("who-change").addEventListener("click", function () {
      $("who-name").value = saved ? saved.name : "";
      $("who-message").value = saved ? saved.message : "";
      showMessage(!!(saved && saved.message));
      saved = null;
      show();
      $("who-name").focus();
    });
    return {
      setup: function (fields) { mode = fields; show(); },
      // files chosen with a name typed but "Continue" not pressed (the natural way on a phone): the
      // typed name and message go with them, as if it had been pressed (they were dropped)
      take: function () {
        var now = typed();
        if (mode === "hidden" || saved || (mode === "required" && !now.name)) return;
        saved = now;
        if (!now.name && !now.message) { // passed over: folded away, asked again on the next visit
          try { sessionStorage.setItem("guest-passed", invite || ""); } catch (e) { /* asked again on a reload */ }
          show();
          return;
        }
        say(null);
        store();
        show();
      },
      ready: function () { return mode !== "required" || !!(saved && saved.name); },
      // the chosen files are kept, and the guest is told so: "before choosing files" sent them to
      // choose them again, which made a second row of each (walk)
      ask: function () { say("guest.who.kept"); $("who-name").focus(); },
      name: function () { return mode !== "hidden" && saved ? saved.name : ""; },
      message: function () { return mode !== "hidden" && saved ? saved.message : ""; },
      redraw: function () { show(); say(said); }
    };
  })();

  // --- start ----------------------------------------------------------------------------------
  $("title").addEventListener("click", function () { $("title").classList.toggle("whole"); }); // (cut on a phone)
  I18N.switcher($("lang"));
  I18N.onChange(function () {
    items.forEach(render); refresh(); Who.redraw(); listUnfinished();
    if (linkClosed()) sayClosed();
    else if (linkNotice) notice.textContent = T("guest.paused");
  });

  I18N.ready.then(function () {
    return fetch("/api/config", { credentials: "same-origin" });
  }).then(function (r) { return r.json(); }).then(function (c) {
    config = c;
    chunkSize = c.chunkSize;
    if (!window.tus || !tus.isSupported) {
      notice.textContent = T("guest.unsupported");
      notice.hidden = false;
    }
    var stored = listUnfinished(); // files chosen meanwhile wait for it: a half-sent one is counted already
    connect();
    if (invite) return Promise.all([loadInvite(), stored]).then(addEarly); // a locked link holds them
    converted();
    return stored.then(addEarly);
  }).catch(function () {
    notice.textContent = T("guest.unreachable");
    notice.hidden = false;
  });

  window.immichDrop = { items: items }; // for the browser tests
})();
