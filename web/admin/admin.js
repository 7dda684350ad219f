// Admin console: sign in, create invite links, share them (copy, QR), watch and manage them.
// Plain script over the JSON API in routes/admin.py and routes/invites.py. All text goes in as textContent.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var csrf = "";
  var MB = 1000 * 1000, GB = 1000 * MB;

  // --- plumbing ------------------------------------------------------------------------------
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (r) {
      if (r.status === 204) return null;
      return r.json().then(function (data) {
        if (r.status === 401 && path !== "/api/login") { showLogin(); }
        if (!r.ok) { var err = new Error(data.message || ("Error " + r.status)); err.status = r.status; throw err; }
        return data;
      });
    });
  }

  function flash(text) {
    $("flash").textContent = text;
    $("flash").hidden = !text;
  }

  function formatSize(bytes) {
    if (bytes == null) return "";
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  function number(input, factor) {
    var v = input.value.trim();
    return v === "" ? null : Math.round(parseFloat(v) * factor);
  }

  function localInput(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  // --- theme ---------------------------------------------------------------------------------
  $("theme").addEventListener("click", function () {
    var root = document.documentElement;
    var dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    try { localStorage.setItem("theme", root.dataset.theme); } catch (e) { /* not persisted */ }
  });

  // --- session -------------------------------------------------------------------------------
  function showLogin() {
    $("login-view").hidden = false;
    $("main-view").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
  }

  function showMain(session) {
    csrf = session.csrfToken;
    $("who").textContent = session.user.email;
    $("login-view").hidden = true;
    $("main-view").hidden = false;
    $("logout").hidden = false;
    $("key-warning").hidden = session.keyValid !== false;
    loadAlbums();
    loadInvites();
  }

  function signIn(form, errorId, body) {
    api("POST", "/api/login", body).then(function () {
      form.reset();
      $(errorId).textContent = "";
      return api("GET", "/api/session").then(showMain);
    }).catch(function (err) { $(errorId).textContent = err.message; });
  }

  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    signIn($("login"), "login-error", { email: $("email").value, password: $("pass").value });
  });
  $("login-key").addEventListener("submit", function (e) {
    e.preventDefault();
    signIn($("login-key"), "key-error", { apiKey: $("apikey").value });
  });
  $("logout").addEventListener("click", function () {
    api("POST", "/api/logout").then(showLogin).catch(function (err) { flash(err.message); });
  });

  // --- albums --------------------------------------------------------------------------------
  function loadAlbums() {
    api("GET", "/api/albums").then(function (albums) {
      var select = $("album");
      while (select.options.length > 2) select.remove(2);
      albums.forEach(function (album) {
        var option = document.createElement("option");
        option.value = album.id;
        option.textContent = album.albumName + " (" + album.assetCount + ")";
        select.appendChild(option);
      });
    }).catch(function (err) { flash(err.message); });
  }

  // --- create ----------------------------------------------------------------------------------
  function toggle(selectId, value, wrapId) {
    $(selectId).addEventListener("change", function () { $(wrapId).hidden = $(selectId).value !== value; });
  }
  toggle("album", "__new", "new-album-wrap");
  toggle("uses", "n", "uses-n-wrap");
  toggle("expiry", "custom", "expiry-date-wrap");

  $("create").addEventListener("submit", function (e) {
    e.preventDefault();
    var body = {
      label: $("label").value,
      mediaKind: $("kind").value,
      maxFileSize: number($("max-file"), MB),
      maxTotalBytes: number($("max-total"), GB),
      maxFiles: number($("max-files"), 1),
      password: $("invite-pass").value || null
    };
    var album = $("album").value;
    body.album = album === "" ? null : album === "__new" ? { name: $("new-album").value } : { id: album };
    var uses = $("uses").value;
    body.maxUses = uses === "" ? null : uses === "n" ? parseInt($("uses-n").value, 10) : 1;
    var expiry = $("expiry").value;
    if (expiry === "custom") body.expiresAt = $("expiry-date").value ? new Date($("expiry-date").value).toISOString() : null;
    else if (expiry === "") body.expiresAt = null;
    else body.expiresInDays = parseInt(expiry, 10);
    api("POST", "/api/invites", body).then(function (invite) {
      $("create-error").textContent = "";
      $("create").reset();
      ["new-album-wrap", "uses-n-wrap", "expiry-date-wrap"].forEach(function (id) { $(id).hidden = true; });
      flash("Link created: " + invite.link);
      loadAlbums();
      loadInvites();
    }).catch(function (err) { $("create-error").textContent = err.message; });
  });

  // --- invites ---------------------------------------------------------------------------------
  function loadInvites() {
    api("GET", "/api/invites").then(function (invites) {
      var list = $("invites");
      list.textContent = "";
      $("empty").hidden = invites.length > 0;
      invites.forEach(function (invite) { list.appendChild(renderInvite(invite)); });
    }).catch(function (err) { flash(err.message); });
  }

  function facts(invite) {
    var parts = [];
    parts.push(invite.maxUses === 1 ? "one-time" : invite.maxUses ? invite.uses + " of " + invite.maxUses + " uses" : invite.uses + " uses");
    parts.push(invite.files + " files, " + formatSize(invite.bytes));
    if (invite.albumName) parts.push("album " + invite.albumName);
    parts.push(invite.expiresAt ? "expires " + when(invite.expiresAt) : "never expires");
    if (invite.hasPassword) parts.push("password");
    if (invite.lastUploadAt) parts.push("last upload " + when(invite.lastUploadAt));
    if (invite.ownerMustSignIn) parts.push("paused: sign in again");
    return parts.join(" · ");
  }

  function renderInvite(invite) {
    var el = $("invite-item").content.firstElementChild.cloneNode(true);
    var q = function (sel) { return el.querySelector(sel); };
    el.dataset.id = invite.id;
    q(".label").textContent = invite.label || "Untitled link";
    q(".chip").textContent = invite.state;
    q(".chip").dataset.kind = invite.state;
    q(".facts").textContent = facts(invite);
    q(".link").value = invite.link;
    q(".toggle").textContent = invite.disabled ? "Enable" : "Disable";

    q(".copy").addEventListener("click", function () {
      var done = function () { q(".copy").textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(invite.link).then(done);
      else { q(".link").select(); document.execCommand("copy"); done(); }
    });
    q(".qr").addEventListener("click", function () {
      var box = q(".qr-box");
      if (box.hidden) {
        q(".qr-box img").src = "/api/invites/" + invite.id + "/qr.svg";
        q(".png").href = "/api/invites/" + invite.id + "/qr.png";
      }
      box.hidden = !box.hidden;
    });
    q(".toggle").addEventListener("click", function () {
      api("PATCH", "/api/invites/" + invite.id, { disabled: !invite.disabled }).then(loadInvites)
        .catch(function (err) { flash(err.message); });
    });
    q(".delete").addEventListener("click", function () {
      if (!confirm("Delete this link? Files not yet delivered through it are removed.")) return;
      api("DELETE", "/api/invites/" + invite.id).then(loadInvites).catch(function (err) { flash(err.message); });
    });
    q(".edit").addEventListener("click", function () {
      var form = q(".edit-box");
      q(".e-expiry").value = localInput(invite.expiresAt);
      q(".e-max-file").value = invite.limits.maxFileSize ? invite.limits.maxFileSize / MB : "";
      q(".e-max-total").value = invite.limits.maxTotalBytes ? invite.limits.maxTotalBytes / GB : "";
      q(".e-max-files").value = invite.limits.maxFiles || "";
      form.hidden = !form.hidden;
    });
    q(".edit-box").addEventListener("submit", function (e) {
      e.preventDefault();
      var expiry = q(".e-expiry").value;
      api("PATCH", "/api/invites/" + invite.id, {
        expiresAt: expiry ? new Date(expiry).toISOString() : null,
        maxFileSize: number(q(".e-max-file"), MB),
        maxTotalBytes: number(q(".e-max-total"), GB),
        maxFiles: number(q(".e-max-files"), 1)
      }).then(loadInvites).catch(function (err) { flash(err.message); });
    });
    q(".log").addEventListener("click", function () {
      var table = q(".log-box");
      if (!table.hidden) { table.hidden = true; return; }
      api("GET", "/api/invites/" + invite.id + "/uploads").then(function (rows) {
        var body = table.querySelector("tbody");
        body.textContent = "";
        rows.forEach(function (row) {
          var tr = document.createElement("tr");
          [row.filename, formatSize(row.size), when(row.createdAt), row.state + (row.message ? ": " + row.message : "")]
            .forEach(function (text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); });
          body.appendChild(tr);
        });
        if (!rows.length) {
          var tr = document.createElement("tr"), td = document.createElement("td");
          td.colSpan = 4; td.textContent = "Nothing uploaded yet."; tr.appendChild(td); body.appendChild(tr);
        }
        table.hidden = false;
      }).catch(function (err) { flash(err.message); });
    });
    return el;
  }

  // --- start -----------------------------------------------------------------------------------
  fetch("/api/session", { credentials: "same-origin" }).then(function (r) {
    if (r.ok) return r.json().then(showMain);
    showLogin();
  }).catch(function () { flash("The server cannot be reached."); });
})();
