// Guest upload page: tus uploads with per-file progress, live status from the server, dark mode.
// Built for phones on bad connections: the screen stays on while files go up, a lost connection
// resumes by itself when the phone is back online, and after a reload the page lists what is not
// finished so the same files, chosen again, continue from where they stopped.
// Plain script, no build step. All text reaches the page through textContent, never as HTML.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var queue = $("queue"), picker = $("picker"), filesPicker = $("picker-files"), drop = $("drop");
  var notice = $("notice"), summary = $("summary");
  var config = null;
  var early = [];            // files chosen before /api/config answered
  var inviteMatch = location.pathname.match(/^\/i\/([^/]+)$/);
  var invite = inviteMatch ? decodeURIComponent(inviteMatch[1]) : null;
  var items = [];            // every file this page knows, in the order chosen
  var byUploadId = {};       // server upload id -> item
  var lastStatus = {};       // server upload id -> last event, for events that arrive before the id is known
  var active = 0;
  var PARALLEL = 3;
  var RUNNING = { queued: 1, uploading: 1 };

  // --- theme -------------------------------------------------------------------------------
  $("theme").addEventListener("click", function () {
    var root = document.documentElement;
    var dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    try { localStorage.setItem("theme", root.dataset.theme); } catch (e) { /* not persisted */ }
  });

  // --- status chips --------------------------------------------------------------------------
  var LABELS = {
    queued: "queued", uploading: "uploading", processing: "processing", done: "done",
    duplicate: "duplicate", waiting: "waiting for server", error: "error"
  };
  var SERVER_KIND = {
    receiving: "uploading", received: "processing", hashing: "processing", uploading: "processing",
    retrying: "waiting", done: "done", duplicate: "duplicate", failed: "error"
  };

  function show(item, kind, detail, percent) {
    item.kind = kind;
    item.el.dataset.kind = kind;
    var chip = item.el.querySelector(".chip");
    chip.dataset.kind = kind;
    chip.textContent = kind === "uploading" && percent != null ? Math.floor(percent) + "%" : LABELS[kind];
    if (percent != null) {
      item.el.querySelector(".fill").style.width = percent + "%";
      item.el.querySelector(".progress").setAttribute("aria-valuenow", String(Math.floor(percent)));
    }
    if (kind === "done" || kind === "duplicate") item.el.querySelector(".fill").style.width = "100%";
    if (detail != null) item.el.querySelector(".detail").textContent = detail;
    item.el.querySelector(".retry").hidden = kind !== "error";
    if (kind === "error") item.reason = detail;
    updateSummary();
  }

  function count(kind) {
    return items.filter(function (it) { return it.kind === kind; }).length;
  }

  function updateSummary() {
    var parts = [];
    if (count("done")) parts.push(count("done") + " sent");
    if (count("duplicate")) parts.push(count("duplicate") + " already there");
    if (count("uploading") + count("queued")) parts.push((count("uploading") + count("queued")) + " uploading");
    if (count("processing")) parts.push(count("processing") + " processing");
    if (count("waiting")) parts.push(count("waiting") + " waiting for server");
    if (count("error")) parts.push(count("error") + " failed");
    summary.textContent = parts.join(" · ");
    updateOverall();
    updateFinished();
  }

  function applyServerEvent(event) {
    if (event.type !== "upload") return;
    lastStatus[event.id] = event;
    var item = byUploadId[event.id];
    if (!item) return;
    var kind = SERVER_KIND[event.state] || "processing";
    if (kind === "uploading") return; // the tus progress events tell this better
    show(item, kind, event.message || "", kind === "processing" || kind === "waiting" ? 100 : null);
  }

  // --- keep the phone awake, tell the guest how long ------------------------------------------
  var wakeLock = null, askingForLock = false;
  var rate = { bytes: 0, at: 0, perSecond: 0 };

  function uploading() {
    return items.some(function (it) { return RUNNING[it.kind]; });
  }

  function holdScreen() {
    if (!uploading() || wakeLock || askingForLock || !("wakeLock" in navigator) || document.visibilityState !== "visible") return;
    askingForLock = true; // one request at a time, or several locks would be taken and only one given back
    navigator.wakeLock.request("screen").then(function (lock) {
      askingForLock = false;
      wakeLock = lock;
      lock.addEventListener("release", function () { if (wakeLock === lock) wakeLock = null; });
      if (!uploading()) releaseScreen();
    }).catch(function () {
      askingForLock = false; // refused (battery saver, iframe): the hint still asks to keep the page open
    });
  }

  function releaseScreen() {
    if (wakeLock && !uploading()) { var lock = wakeLock; wakeLock = null; lock.release(); }
  }

  function updateOverall() {
    var running = items.filter(function (it) { return RUNNING[it.kind]; });
    $("keep-open").hidden = running.length === 0;
    if (!running.length) { releaseScreen(); return; }
    holdScreen();
    var total = 0, sent = 0;
    running.forEach(function (it) { total += it.file.size; sent += it.sent || 0; });
    var now = Date.now();
    if (rate.at && now - rate.at > 1000) {
      var speed = Math.max(0, sent - rate.bytes) / ((now - rate.at) / 1000);
      rate.perSecond = rate.perSecond ? rate.perSecond * 0.7 + speed * 0.3 : speed;
      rate.bytes = sent; rate.at = now;
    } else if (!rate.at) { rate.bytes = sent; rate.at = now; }
    var percent = total ? (sent / total) * 100 : 0;
    $("overall-fill").style.width = percent + "%";
    var text = Math.floor(percent) + "% of " + formatSize(total);
    if (rate.perSecond > 0 && total > sent) text += " · about " + duration((total - sent) / rate.perSecond) + " left";
    $("overall").textContent = text;
  }

  function duration(seconds) {
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function updateFinished() {
    var settled = items.length > 0 && items.every(function (it) {
      return it.kind === "done" || it.kind === "duplicate" || it.kind === "error";
    });
    $("finished").hidden = !settled;
    if (!settled) return;
    var failed = items.filter(function (it) { return it.kind === "error"; });
    var text = "Finished: " + count("done") + " sent, " + count("duplicate") + " already there, " + failed.length + " failed.";
    failed.forEach(function (it) { text += "\n" + it.file.name + ": " + (it.reason || "failed"); });
    $("finished-text").textContent = text;
    $("retry-all").hidden = failed.length === 0;
  }

  // --- uploads -------------------------------------------------------------------------------
  function addFiles(fileList, fromPhotoPicker) {
    if (!config) { // chosen before the page had its settings: keep them, add them when it does
      early.push([Array.prototype.slice.call(fileList), fromPhotoPicker]);
      return;
    }
    Array.prototype.forEach.call(fileList, function (file) {
      var el = $("item").content.firstElementChild.cloneNode(true);
      el.querySelector(".name").textContent = file.name;
      el.querySelector(".name").title = file.name;
      var item = { file: file, el: el, upload: null, kind: "queued", sent: 0 };
      el.querySelector(".retry").addEventListener("click", function () { restart(item); });
      queue.appendChild(el);
      items.push(item);
      show(item, "queued", formatSize(file.size), 0);
      if (fromPhotoPicker && looksConverted(file)) $("converted").hidden = false;
    });
    pump();
  }

  // iOS hands out JPEG copies of HEIC photos from its photo picker; the Files picker gives originals.
  function looksConverted(file) {
    var apple = /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
    return apple && /\.jpe?g$/i.test(file.name) && file.type === "image/jpeg";
  }

  function pump() {
    items.forEach(function (item) {
      if (item.kind === "queued" && !item.upload && active < PARALLEL) start(item);
    });
  }

  function restart(item) {
    if (item.upload) return;
    show(item, "queued", "", 0);
    pump();
  }

  function start(item) {
    active += 1;
    show(item, "uploading", formatSize(item.file.size), 0);
    var upload = new tus.Upload(item.file, {
      endpoint: config.endpoint,
      chunkSize: config.chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
      removeFingerprintOnSuccess: true,
      metadata: {
        invite: invite || "",
        filename: item.file.name,
        filetype: item.file.type || "application/octet-stream",
        lastModified: String(item.file.lastModified || ""),
        tz: String(-new Date().getTimezoneOffset()),
        // the zone's name gives the server the offset in force at the file's own date (summer time)
        tzName: (Intl.DateTimeFormat().resolvedOptions().timeZone || "")
      },
      onProgress: function (sent, total) {
        item.sent = sent;
        if (item.kind === "uploading") show(item, "uploading", null, total ? (sent / total) * 100 : 0);
      },
      onAfterResponse: function () {
        // Learn the server's id as soon as the upload exists, so status events find this item.
        if (upload.url) remember(item, upload.url);
      },
      onSuccess: function () {
        active -= 1;
        item.upload = null;
        item.sent = item.file.size;
        remember(item, upload.url);
        if (item.kind === "uploading") show(item, "processing", "", 100);
        listUnfinished();
        pump();
      },
      onError: function (error) {
        active -= 1;
        item.upload = null;
        show(item, "error", describe(error), null);
        pump();
      }
    });
    item.upload = upload;
    upload.findPreviousUploads().then(function (previous) {
      var mine = previous.filter(function (p) { return (p.metadata && p.metadata.invite || "") === (invite || ""); });
      if (mine.length) upload.resumeFromPreviousUpload(mine[0]);
      upload.start();
      listUnfinished();
    });
  }

  function remember(item, url) {
    var id = url.split("/").pop();
    if (byUploadId[id] === item) return;
    byUploadId[id] = item;
    if (lastStatus[id]) applyServerEvent(lastStatus[id]);
  }

  function describe(error) {
    var res = error && error.originalResponse;
    if (res) {
      try {
        var body = JSON.parse(res.getBody());
        if (body && (body.code || body.message)) return window.I18N ? I18N.server(body) : body.message;
      } catch (e) { /* not our JSON */ }
      return "The server answered " + res.getStatus() + ".";
    }
    return navigator.onLine === false ? "You are offline. It continues when you are back online." : "The connection failed.";
  }

  function formatSize(bytes) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  // --- unfinished files from an earlier visit ---------------------------------------------------
  function listUnfinished() {
    if (!window.tus || !tus.defaultOptions.urlStorage) return;
    tus.defaultOptions.urlStorage.findAllUploads().then(function (stored) {
      var chosen = {};
      items.forEach(function (it) { chosen[it.file.name + "/" + it.file.size] = true; });
      var names = stored.filter(function (s) {
        var meta = s.metadata || {};
        return (meta.invite || "") === (invite || "") && !chosen[meta.filename + "/" + s.size];
      }).map(function (s) { return s.metadata.filename; });
      var box = $("unfinished");
      box.hidden = names.length === 0;
      box.textContent = names.length === 1
        ? "1 file not finished: " + names[0] + ". Choose it again to continue where it stopped."
        : names.length + " files not finished: " + names.join(", ") + ". Choose them again to continue where they stopped.";
    }).catch(function () { /* storage blocked: nothing to offer */ });
  }

  // --- phone survival --------------------------------------------------------------------------
  window.addEventListener("online", function () {
    // Resume at once instead of waiting for the next retry delay; failed network uploads start again.
    items.forEach(function (item) {
      if (item.upload && item.kind === "uploading") {
        var upload = item.upload;
        upload.abort().then(function () { upload.start(); });
      } else if (item.kind === "error" && !item.reason) {
        restart(item);
      } else if (item.kind === "error" && /offline|connection/i.test(item.reason)) {
        item.reason = "";
        restart(item);
      }
    });
  });
  document.addEventListener("visibilitychange", holdScreen);
  window.addEventListener("focus", holdScreen); // the file picker closing hands focus back
  window.addEventListener("beforeunload", function (e) {
    if (!uploading()) return undefined;
    e.preventDefault();
    e.returnValue = "Files are still uploading.";
    return e.returnValue;
  });
  $("retry-all").addEventListener("click", function () {
    items.forEach(function (item) { if (item.kind === "error") restart(item); });
  });

  // --- status channel ------------------------------------------------------------------------
  var backoff = 500;
  function connect() {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = function () { backoff = 500; };
    ws.onmessage = function (message) {
      try { applyServerEvent(JSON.parse(message.data)); } catch (e) { /* ignore malformed */ }
    };
    ws.onclose = function () {
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

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

  // --- invite links ----------------------------------------------------------------------
  function loadInvite() {
    return fetch("/api/i/" + encodeURIComponent(invite), { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        if (!answer.ok) { block(answer.body.message || "This upload link is not valid."); return; }
        var info = answer.body;
        if (info.title) { $("title").textContent = info.title; document.title = info.title; }
        var parts = [];
        if (info.albumName) parts.push("Album: " + info.albumName);
        if (info.limits.mediaKind !== "all") parts.push(info.limits.mediaKind + " only");
        if (info.limits.maxFileSize) parts.push("up to " + formatSize(info.limits.maxFileSize) + " a file");
        if (info.remaining.files != null) parts.push(info.remaining.files + " more files");
        if (info.remaining.bytes != null) parts.push(formatSize(info.remaining.bytes) + " left");
        if (info.expiresAt) parts.push("open until " + new Date(info.expiresAt).toLocaleString());
        $("details").textContent = parts.join(" · ");
        $("details").hidden = parts.length === 0;
        if (info.limits.mediaKind === "photos") picker.accept = "image/*";
        if (info.limits.mediaKind === "videos") picker.accept = "video/*";
        var locked = info.needsPassword && !info.unlocked;
        $("unlock").hidden = !locked;
        drop.hidden = locked;
        if (info.paused) { notice.textContent = "This link is paused until its owner signs in again."; notice.hidden = false; }
        if (locked) $("password").focus();
      });
  }

  function addEarly() {
    if (!drop.hidden) early.splice(0).forEach(function (pick) { addFiles(pick[0], pick[1]); });
  }

  function block(message) {
    notice.textContent = message;
    notice.hidden = false;
    drop.hidden = true;
  }

  $("unlock").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/i/" + encodeURIComponent(invite) + "/unlock", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: $("password").value })
    }).then(function (r) {
      if (r.ok) { $("unlock-error").textContent = ""; return loadInvite().then(addEarly); }
      return r.json().then(function (body) { $("unlock-error").textContent = body.message || "Not unlocked."; });
    });
  });

  fetch("/api/config", { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (c) {
      config = c;
      if (invite) loadInvite().then(addEarly); // after the link's state: a locked link holds them
      if (!window.tus || !tus.isSupported) {
        notice.textContent = "This browser cannot upload here. Please try a current browser.";
        notice.hidden = false;
      }
      listUnfinished();
      connect();
      if (!invite) addEarly();
    })
    .catch(function () {
      notice.textContent = "The server cannot be reached. Check your connection and reload.";
      notice.hidden = false;
    });

  if (window.I18N) I18N.switcher($("lang"));
  window.immichDrop = { items: items }; // for the browser tests
})();
