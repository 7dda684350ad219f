// Guest upload page: tus uploads with per-file progress, live status from the server, dark mode.
// Plain script, no build step. All text reaches the page through textContent, never as HTML.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var queue = $("queue"), picker = $("picker"), drop = $("drop"), notice = $("notice"), summary = $("summary");
  var config = null;
  var inviteMatch = location.pathname.match(/^\/i\/([^/]+)$/);
  var invite = inviteMatch ? decodeURIComponent(inviteMatch[1]) : null;
  var items = [];            // every file this page knows, in the order chosen
  var byUploadId = {};       // server upload id -> item
  var lastStatus = {};       // server upload id -> last event, for events that arrive before the id is known
  var active = 0;
  var PARALLEL = 3;

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
    item.el.querySelector(".detail").textContent = detail || "";
    item.el.querySelector(".retry").hidden = kind !== "error";
    updateSummary();
  }

  function updateSummary() {
    var counts = {};
    items.forEach(function (it) { counts[it.kind] = (counts[it.kind] || 0) + 1; });
    var parts = [];
    if (counts.done) parts.push(counts.done + " sent");
    if (counts.duplicate) parts.push(counts.duplicate + " already there");
    if (counts.uploading || counts.queued) parts.push(((counts.uploading || 0) + (counts.queued || 0)) + " uploading");
    if (counts.processing) parts.push(counts.processing + " processing");
    if (counts.waiting) parts.push(counts.waiting + " waiting for server");
    if (counts.error) parts.push(counts.error + " failed");
    summary.textContent = parts.join(" · ");
  }

  function applyServerEvent(event) {
    if (event.type !== "upload") return;
    lastStatus[event.id] = event;
    var item = byUploadId[event.id];
    if (!item) return;
    var kind = SERVER_KIND[event.state] || "processing";
    if (kind === "uploading") return; // the tus progress events tell this better
    show(item, kind, event.message, kind === "processing" || kind === "waiting" ? 100 : null);
  }

  // --- uploads -------------------------------------------------------------------------------
  function addFiles(fileList) {
    if (!config) return;
    Array.prototype.forEach.call(fileList, function (file) {
      var el = $("item").content.firstElementChild.cloneNode(true);
      el.querySelector(".name").textContent = file.name;
      el.querySelector(".name").title = file.name;
      var item = { file: file, el: el, upload: null, kind: "queued" };
      el.querySelector(".retry").addEventListener("click", function () { start(item); });
      queue.appendChild(el);
      items.push(item);
      show(item, "queued", formatSize(file.size), 0);
    });
    pump();
  }

  function pump() {
    items.forEach(function (item) {
      if (item.kind === "queued" && !item.upload && active < PARALLEL) start(item);
    });
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
        tz: String(-new Date().getTimezoneOffset())
      },
      onProgress: function (sent, total) {
        if (item.kind === "uploading") show(item, "uploading", formatSize(total), total ? (sent / total) * 100 : 0);
      },
      onAfterResponse: function (req, res) {
        // Learn the server's id as soon as the upload exists, so status events find this item.
        if (upload.url) remember(item, upload.url);
      },
      onSuccess: function () {
        active -= 1;
        remember(item, upload.url);
        if (item.kind === "uploading") show(item, "processing", "", 100);
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
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
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
        if (body && body.message) return body.message;
      } catch (e) { /* not our JSON */ }
      return "The server answered " + res.getStatus() + ".";
    }
    return navigator.onLine === false ? "You are offline." : "The connection failed.";
  }

  function formatSize(bytes) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

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
  picker.addEventListener("change", function () { addFiles(picker.files); picker.value = ""; });
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { if (e.dataTransfer) addFiles(e.dataTransfer.files); });

  // --- invite links ----------------------------------------------------------------------
  function loadInvite() {
    return fetch("/api/i/" + encodeURIComponent(invite), { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        if (!answer.ok) { block(answer.body.message || "This upload link is not valid."); return; }
        var info = answer.body;
        if (info.label) { $("title").textContent = info.label; document.title = info.label; }
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
      if (r.ok) { $("unlock-error").textContent = ""; return loadInvite(); }
      return r.json().then(function (body) { $("unlock-error").textContent = body.message || "Not unlocked."; });
    });
  });

  fetch("/api/config", { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (c) {
      config = c;
      if (invite) loadInvite();
      if (!window.tus || !tus.isSupported) {
        notice.textContent = "This browser cannot upload here. Please try a current browser.";
        notice.hidden = false;
      }
      connect();
    })
    .catch(function () {
      notice.textContent = "The server cannot be reached. Check your connection and reload.";
      notice.hidden = false;
    });

  window.immichDrop = { items: items }; // for the browser tests
})();
