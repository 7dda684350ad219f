// Admin console: sign in, create and edit invite links, share them (copy, Web Share, QR), watch them live,
// set notification addresses. Plain script over the JSON API in routes/admin.py, routes/invites.py and
// routes/notifications.py. All text comes from the catalogs (web/i18n, window.I18N) and goes in as textContent.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var t = function (key, params) { return I18N.t(key, params); };
  var csrf = "", serverMax = null, albums = [], cards = {}, socket = null;
  var MB = 1000 * 1000, GB = 1000 * MB;
  var FIELD_CLASS = { label: "f-label", title: "f-title", album: "f-album", maxUses: "f-uses", expiresAt: "f-expiry",
    password: "f-password", maxFileSize: "f-max-file", maxTotalBytes: "f-max-total", maxFiles: "f-max-files",
    mediaKind: "f-kind", guestFields: "f-guest-fields", archive: "f-archive" };
  // Fields with a second input shown for one choice (a new album's name, a number of browsers, a
  // date): while it is shown, a refusal is about what was typed there, and stands under it.
  var DETAIL = { album: "w-new-album", maxUses: "w-uses-n", expiresAt: "w-expiry-date" };

  // --- plumbing ------------------------------------------------------------------------------
  // requests whose refusal loses no change of the owner's ("not saved" is for those that do)
  var LOSES_NOTHING = { "/api/logout": 1, "/api/notifications/test": 1 };
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
        // one word, at the sign-in form, saying what became of the click: "Sign in first." stood
        // above it beside "Your session has ended", and an edit was gone without a word (owner walk).
        // A change refused is said even when the console learned of the end first (its channel).
        var lost = method !== "GET" && !LOSES_NOTHING[path];
        if (r.status === 401 && path !== "/api/login" && (lost || !$("main-view").hidden)) {
          showLogin(lost ? "unsaved" : true);
          var ended = new Error(""); ended.status = 401; ended.body = data; throw ended;
        }
        if (r.status === 401 && path !== "/api/login") showLogin(false);
        if (!r.ok) { var err = new Error(I18N.server(data)); err.status = r.status; err.body = data; throw err; }
        return data;
      });
    }, function () { throw new Error(t("admin.unreachable")); });
  }

  // The line under the header: a server's answer as it came, or a catalog `key`, said again in a
  // language chosen later; `fade`, for news that needs no answer ("Changes saved." stayed for good,
  // and in English after a switch to German: owner walk).
  var flashed = null, flashTimer = null;
  // a catalog text, its plural form where `params.count` is a number; `key` may list [key, params]
  // pairs, said one after the other
  function said(key, params) {
    if (Array.isArray(key)) return key.map(function (part) { return said(part[0], part[1]); }).join(" ");
    return params && typeof params.count === "number" ? I18N.n(key, params.count, params) : t(key, params);
  }
  function flash(text, key, params, fade) {
    clearTimeout(flashTimer);
    flashed = key ? { key: key, params: params } : null;
    $("flash").textContent = key ? said(key, params) : text;
    $("flash").hidden = !$("flash").textContent;
    if (fade) flashTimer = setTimeout(function () { flash(""); }, 8000);
  }

  function size(bytes) { return bytes == null ? "" : I18N.formatSize(bytes); }
  // the server's largest file, in the field's own unit and rounded down: "at most 53.7 GB" stood in
  // an MB field, and 53,700 MB was then refused (the limit is 50 GiB: 53,687 MB)
  // digits only, as the field takes them ("at most 53,687 MB" read as a hint the field refused)
  // in the language's own unit ("53687 Mo" in French: "MB" stood under a field labelled "(Mo)": owner walk)
  function megabytes(bytes) {
    try {
      return new Intl.NumberFormat(I18N.locale(), { style: "unit", unit: "megabyte", unitDisplay: "short",
        maximumFractionDigits: 0, useGrouping: false }).format(Math.floor(bytes / MB));
    } catch (e) { return Math.floor(bytes / MB) + " MB"; }
  }
  var GROUPED = /^[1-9]\d{0,2}([.,\u00a0\u202f ]\d{3})+$/;
  function when(iso) { return iso ? I18N.formatDate(iso) : ""; }

  // What a number field holds, for the server: null when empty, a number when it reads as one, else
  // the text as typed, which the server refuses under the field. Plain text inputs, read here: a
  // browser's number input hands "2,5" (German for 2.5), "1e" or "--5" over as "" (no limit) or as 25.
  // A size may have a decimal comma or point; a count is digits only (2.5 files was saved as 3).
  function number(input, factor) {
    var v = input.value.trim();
    if (v === "") return null;
    // a count is whole: "1,000", "1.000" or "1 000" can only be a thousand
    if (factor === 1 && GROUPED.test(v)) v = v.replace(/\D/g, "");
    if (!(factor === 1 ? /^\d+$/ : /^\d+([.,]\d+)?$|^[.,]\d+$/).test(v)) return v;
    // a size of "1,000" or "2.000": a thousands separator or a decimal one? Asked, not guessed (it
    // saved 1 MB): the server names the problem under the field
    if (factor !== 1 && GROUPED.test(v)) return v;
    var n = Number(v.replace(",", "."));
    // beyond what a number holds exactly, the largest that does: the server then answers under the
    // field ("at most ..."), not "reload the page"
    return Math.min(factor === 1 ? n : Math.round(n * factor), Number.MAX_SAFE_INTEGER);
  }

  // A size as its field shows it, with the language's decimal sign: a German form reopened with
  // "1.5" where the owner had typed "1,5", the same form that asks whether "1.000" is a thousand
  // (owner walk). "1,125" would be asked about so: written "1,1250".
  // (up to 9 decimals: a GB field's byte is its ninth, and 6 saved 5 GiB as 5,368,709,000: cold review)
  function decimal(value) {
    var text;
    try { text = new Intl.NumberFormat(I18N.locale(), { useGrouping: false, maximumFractionDigits: 9 }).format(value); }
    catch (e) { text = String(value); }
    return GROUPED.test(text) ? text + "0" : text;
  }

  function localInput(iso) {  // an ISO moment as a datetime-local value, seconds kept
    if (!iso) return "";
    var d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  }

  // --- theme and language ----------------------------------------------------------------------
  $("theme").addEventListener("click", function () {
    var root = document.documentElement;
    var dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    try { localStorage.setItem("theme", root.dataset.theme); } catch (e) { /* not persisted */ }
  });

  // --- session -------------------------------------------------------------------------------
  // `ended`: a signed-in console whose session ran out (the server said 401, or its time came) says
  // so; it went back to the sign-in form without a word, and the owner's click did nothing.
  function showLogin(ended) {
    clearTimeout(sessionTimer);
    if (ended === true || ended === "unsaved") {
      $("login-error").textContent = t(ended === true ? "admin.session_ended" : "admin.session_ended_unsaved");
    }
    $("login-view").hidden = false;
    $("main-view").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    // nothing of the owner's stays for the next person at this screen: the last link created stood
    // above the sign-in form (owner walk), and a one-time link without a password is anyone's
    flash("");
    blankCreate();
    clearError($("create"));
    lastFailure = null; // (the next owner's is read at their sign-in)
    $("notify-failed").hidden = true;
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
  }

  // No word comes when the session's time is up: at that moment the console asks the server, and
  // on its 401 says so (a clock that is off only moves the question).
  var sessionTimer = null;
  function endOnTime(expiresAt) {
    clearTimeout(sessionTimer);
    var wait = new Date(expiresAt).getTime() - Date.now();
    if (!(wait >= 0)) wait = 0;
    sessionTimer = setTimeout(function () {
      if (new Date(expiresAt).getTime() > Date.now()) { endOnTime(expiresAt); return; } // beyond one timer's reach
      api("GET", "/api/session").then(function (s) { endOnTime(s.expiresAt); }).catch(function (err) {
        if (err.status !== 401) sessionTimer = setTimeout(function () { endOnTime(expiresAt); }, 30000);
      });
    }, Math.min(wait + 1000, 2147483647));
  }

  function showMain(session) {
    csrf = session.csrfToken;
    if (session.expiresAt) endOnTime(session.expiresAt);
    $("login-error").textContent = "";
    $("who").textContent = session.user.email;
    $("login-view").hidden = true;
    $("main-view").hidden = false;
    $("logout").hidden = false;
    $("key-warning").hidden = session.keyValid !== false;
    listen();
    loadAlbums();
    loadNotify();
  }

  function signIn(form, errorId, body) {
    body.lang = I18N.lang;  // the owner's notifications are written in the language the console shows
    // one try's answer at a time: the password form's refusal stood on beside the key form's (owner walk)
    $("login-error").textContent = $("key-error").textContent = "";
    api("POST", "/api/login", body).then(function () {
      form.reset();
      $(errorId).textContent = "";
      return api("GET", "/api/session").then(showMain);
    }).catch(function (err) {
      $(errorId).textContent = err.message;
      // under the field on a small phone it lay below the screen (or the keyboard): brought into view
      if ($(errorId).scrollIntoView) $(errorId).scrollIntoView({ block: "nearest" });
    });
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

  // --- live: the status channel tells this admin's consoles about their own links --------------------
  function listen(delay) {
    if (socket) return;
    socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.type === "ready") loadInvites();
      if (event.type === "invite" && cards[event.id]) {
        var card = cards[event.id];
        ["state", "uses", "files", "bytes", "maxUses", "lastUploadAt"].forEach(function (k) { card.invite[k] = event[k]; });
        describe(card.el, card.invite);
        if (!card.el.querySelector(".log-wrap").hidden) showLog(card.el, card.invite);
      }
    };
    socket.onclose = function () {
      socket = null;
      var next = Math.min((delay || 500) * 2, 30000);
      setTimeout(function () { if (!$("main-view").hidden) listen(next); }, delay || 500);
    };
  }

  // --- the fields of a link (new-link form and Edit forms) -----------------------------------------------
  function fieldsInto(form) {
    var box = form.querySelector(".fields");
    box.appendChild($("invite-fields").content.cloneNode(true));
    I18N.apply(box);
    var q = function (c) { return form.querySelector("." + c); };
    var shows = [["f-album", "__new", "w-new-album"], ["f-uses", "n", "w-uses-n"], ["f-expiry", "custom", "w-expiry-date"]];
    shows.forEach(function (s) {
      q(s[0]).addEventListener("change", function () { q(s[2]).hidden = q(s[0]).value !== s[1]; clearError(form, s[0]); });
    });
    q("f-password-show").addEventListener("click", function () {
      var shown = q("f-password").type === "text";
      q("f-password").type = shown ? "password" : "text";
      q("f-password-show").setAttribute("aria-pressed", String(!shown));
      q("f-password-show").setAttribute("data-i18n", shown ? "admin.field.show" : "admin.field.hide"); // kept on a language switch
      q("f-password-show").textContent = t(shown ? "admin.field.show" : "admin.field.hide");
    });
    q("f-password-remove").addEventListener("change", function () { q("f-password").disabled = q("f-password-remove").checked; });
    if (serverMax) q("f-max-file").placeholder = t("admin.field.max_file_hint", { size: megabytes(serverMax) });
    fillAlbums(q("f-album"));
    return q;
  }

  function fillAlbums(select) {
    var keep = select.value;
    while (select.options.length > 2) select.remove(2);
    albums.forEach(function (album) {
      var option = document.createElement("option");
      option.value = album.id;
      option.textContent = album.albumName + " (" + I18N.formatNumber(album.assetCount) + ")";
      select.appendChild(option);
    });
    if (keep) select.value = keep;
  }

  // The body for POST/PATCH from what is shown; hidden fields are not read, so they never block.
  function readFields(q, original) {
    var body = { label: q("f-label").value, title: q("f-title").value, mediaKind: q("f-kind").value,
      guestFields: q("f-guest-fields").value,
      maxFileSize: number(q("f-max-file"), MB), maxTotalBytes: number(q("f-max-total"), GB),
      maxFiles: number(q("f-max-files"), 1), archive: q("f-archive").checked };
    var album = q("f-album").value;
    var chosen = album === "" ? null : album === "__new" ? { name: q("f-new-album").value } : { id: album };
    if (!original || album === "__new" || album !== (original.albumId || "")) body.album = chosen;
    var uses = q("f-uses").value;
    body.maxUses = uses === "" ? null : uses === "1" ? 1 : number(q("f-uses-n"), 1) === null ? "" : number(q("f-uses-n"), 1);
    var expiry = q("f-expiry").value, date = q("f-expiry-date").value;
    if (expiry === "custom") {
      var unchanged = original && original.expiresAt && date === localInput(original.expiresAt);
      if (!unchanged) body.expiresAt = date ? new Date(date).toISOString() : "";  // "" is refused: pick a date
    } else if (expiry === "") {
      body.expiresAt = null;
    } else if (expiry === "hour") {  // from this moment, as a date: the server counts only in days
      body.expiresAt = new Date(Date.now() + 3600 * 1000).toISOString();
    } else {
      body.expiresInDays = parseInt(expiry, 10);
    }
    if (q("f-password-remove").checked) body.password = null;
    else if (q("f-password").value || !original) body.password = q("f-password").value || null;
    return body;
  }

  // A limit lowered to what the link already has closes it to new browsers or files, and the
  // card only said "2 of 2 uses" afterwards (owner walk): said before it is saved, with the choice.
  // Only a limit this edit changes: renaming a full link asks nothing.
  function closes(invite, body) {
    var said = [], l = invite.limits;
    if (typeof body.maxUses === "number" && body.maxUses !== invite.maxUses && invite.uses >= body.maxUses) {
      said.push(I18N.n("admin.edit.closes_uses", invite.uses, { max: I18N.formatNumber(body.maxUses) }));
    }
    if (body.maxFiles && body.maxFiles !== l.maxFiles && invite.files >= body.maxFiles) {
      said.push(I18N.n("admin.edit.closes_files", invite.files, { max: I18N.formatNumber(body.maxFiles) }));
    }
    if (body.maxTotalBytes && body.maxTotalBytes !== l.maxTotalBytes && invite.bytes >= body.maxTotalBytes) {
      said.push(t("admin.edit.closes_bytes", { size: size(invite.bytes), max: size(body.maxTotalBytes) }));
    }
    return said.length ? said.join("\n") + "\n\n" + t("admin.edit.closes_confirm") : "";
  }

  function fillFields(q, invite) {
    q("f-label").value = invite.label;
    q("f-title").value = invite.title;
    q("f-album").value = invite.albumId && albums.some(function (a) { return a.id === invite.albumId; }) ? invite.albumId : "";
    q("f-uses").value = invite.maxUses === 1 ? "1" : invite.maxUses ? "n" : "";
    q("f-uses-n").value = invite.maxUses && invite.maxUses > 1 ? invite.maxUses : 5;
    q("f-expiry").value = invite.expiresAt ? "custom" : "";
    q("f-expiry-date").value = localInput(invite.expiresAt);
    q("f-max-file").value = invite.limits.maxFileSize ? decimal(invite.limits.maxFileSize / MB) : "";
    q("f-max-total").value = invite.limits.maxTotalBytes ? decimal(invite.limits.maxTotalBytes / GB) : "";
    q("f-max-files").value = invite.limits.maxFiles || "";
    q("f-kind").value = invite.limits.mediaKind;
    q("f-guest-fields").value = invite.guestFields || "optional";
    q("f-archive").checked = invite.archive;
    q("l-password").setAttribute("data-i18n", invite.hasPassword ? "admin.field.password_new" : "admin.field.password");
    q("l-password").textContent = t(invite.hasPassword ? "admin.field.password_new" : "admin.field.password");
    q("w-password-remove").hidden = !invite.hasPassword;
    q("f-password-remove").checked = false;
    q("f-password").disabled = false;
    q("f-password").value = "";
    [["f-album", "__new", "w-new-album"], ["f-uses", "n", "w-uses-n"], ["f-expiry", "custom", "w-expiry-date"]]
      .forEach(function (s) { q(s[2]).hidden = q(s[0]).value !== s[1]; });
  }

  function clearError(form, fieldClass) {
    Object.keys(FIELD_CLASS).forEach(function (field) {
      if (fieldClass && FIELD_CLASS[field] !== fieldClass) return;
      var note = form.querySelector('.field-error[data-for="' + field + '"]');
      if (note) { note.textContent = ""; note.error = null; }
      form.querySelector("." + FIELD_CLASS[field]).removeAttribute("aria-invalid");
      if (DETAIL[field]) form.querySelector("." + DETAIL[field] + " input").removeAttribute("aria-invalid");
    });
    if (!fieldClass) form.querySelector(".form-error").textContent = "";
  }

  function errorText(error) {
    var params = {};
    Object.keys(error.params || {}).forEach(function (k) {
      var value = error.params[k];
      params[k] = k === "max" && error.code === "limit_above_server" ? megabytes(value)
        : typeof value === "number" ? I18N.formatNumber(value) : value;
    });
    var key = "admin.error." + error.code;
    return I18N.has(key) ? t(key, params) : error.message;
  }

  // A refusal shown where it belongs: next to each field it names, else under the form. Never raw JSON.
  function showErrors(form, err) {
    var errors = err.body && err.body.errors;
    form.querySelector(".form-error").seeFields = !!errors;
    if (!errors) { form.querySelector(".form-error").textContent = err.message; return; }
    form.querySelector(".form-error").textContent = t("admin.error.see_fields");
    var first = null;
    Object.keys(errors).forEach(function (field) {
      var note = form.querySelector('.field-error[data-for="' + field + '"]');
      var input = form.querySelector("." + (FIELD_CLASS[field] || "f-label"));
      var detail = DETAIL[field] && form.querySelector("." + DETAIL[field]);
      if (detail && !detail.hidden) input = detail.querySelector("input");
      // in the cell of the input it is about (the note moves between a field and its detail)
      if (note && input.parentNode.tagName === "LABEL") input.parentNode.appendChild(note);
      if (note) { note.error = errors[field]; note.textContent = errorText(errors[field]); }
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    });
    if (first) first.focus();
  }

  // --- albums --------------------------------------------------------------------------------
  // A list read again before the last read answered draws only the newest answer: the channel's
  // "ready" and a new link's form both read the links, and an answer read before the link (or its
  // new album) was made could land last and draw the list without it (CI). An older failure is
  // not said either.
  // What it returns resolves once the newest read is drawn (or said to have failed), an older
  // read's caller included: "Link created" was told to a card the newest answer then replaced.
  function newestOnly(path, draw) {
    var asked = 0, waiting = [];
    var settle = function () { waiting.splice(0).forEach(function (resolve) { resolve(); }); };
    return function () {
      var ask = ++asked;
      var drawn = new Promise(function (resolve) { waiting.push(resolve); });
      api("GET", path).then(function (answer) { if (ask === asked) { draw(answer); settle(); } })
        .catch(function (err) { if (ask === asked) { flash(err.message); settle(); } });
      return drawn;
    };
  }

  var loadAlbums = newestOnly("/api/albums", function (found) {
    albums = found;
    Array.prototype.forEach.call(document.querySelectorAll(".f-album"), fillAlbums);
  });

  // --- create ----------------------------------------------------------------------------------
  var create = fieldsInto($("create"));
  function blankCreate() {
    $("create").reset();
    fillFields(create, { label: "", title: "", albumId: null, maxUses: null, expiresAt: null, archive: false,
      hasPassword: false, guestFields: "optional", limits: { mediaKind: "all" } });
    create("f-expiry").value = "7";
    create("w-expiry-date").hidden = true;
  }
  $("create").addEventListener("submit", function (e) {
    e.preventDefault();
    clearError($("create"));
    flash(""); // the last link's "created" line would read as this attempt's answer
    api("POST", "/api/invites", readFields(create)).then(function (invite) {
      blankCreate();
      flash(null, "admin.create.done", { link: invite.link });
      loadAlbums();
      return loadInvites().then(function () { tellOn(invite.id, "admin.card.created"); });
    }).catch(function (err) { showErrors($("create"), err); });
  });

  // --- invites ---------------------------------------------------------------------------------
  var loadInvites = newestOnly("/api/invites", function (invites) {
    // an Uploads log the owner has open stays open, read afresh (turning the link off closed it,
    // and its "stopped at …" with Remove went unseen: re-walk)
    var logsOpen = Object.keys(cards).filter(function (id) { return !cards[id].el.querySelector(".log-wrap").hidden; });
    var list = $("invites");
    list.textContent = "";
    cards = {};
    $("empty").hidden = invites.length > 0;
    $("main-view").classList.toggle("has-links", invites.length > 0); // a phone shows them first (admin.css)
    invites.forEach(function (invite) { list.appendChild(renderInvite(invite)); });
    logsOpen.forEach(function (id) { if (cards[id]) showLog(cards[id].el, cards[id].invite); });
  });

  // A card's own word (created, saved), and the card brought into view: on a phone the console's
  // line stood 2,000 px above, and a saved edit closed its form, which left the new-link form on
  // the screen (owner walk)
  function tellOn(id, key) {
    var card = cards[id];
    if (!card) return;
    var note = card.el.querySelector(".card-note");
    note.setAttribute("data-i18n", key); // and in the language chosen next
    note.textContent = t(key);
    note.hidden = false;
    setTimeout(function () { note.hidden = true; }, 8000); // as the console's own line fades
    if (card.el.scrollIntoView) card.el.scrollIntoView({ block: "nearest" });
  }

  function facts(invite) {
    var parts = [];
    parts.push(invite.maxUses === 1 ? t("admin.card.one_time", { uses: I18N.formatNumber(invite.uses) })
      : invite.maxUses ? I18N.n("admin.card.uses_of", invite.maxUses, { uses: I18N.formatNumber(invite.uses) })
      : I18N.n("admin.card.uses", invite.uses));
    parts.push(I18N.n("admin.card.files", invite.files, { size: size(invite.bytes) }));
    if (invite.albumName) parts.push(t("admin.card.album", { name: invite.albumName }));
    var past = invite.expiresAt && new Date(invite.expiresAt).getTime() <= Date.now(); // "expires" of a past date misread
    parts.push(!invite.expiresAt ? t("admin.card.never")
      : t(past ? "admin.card.expired_at" : "admin.card.expires", { date: when(invite.expiresAt) }));
    if (invite.hasPassword) parts.push(t("admin.card.password"));
    // what guests are asked, when not the default (the card did not say a name was required: owner walk)
    if (invite.guestFields === "required") parts.push(t("admin.field.guest_fields_required"));
    if (invite.guestFields === "hidden") parts.push(t("admin.card.guest_fields_hidden"));
    if (invite.archive) parts.push(t("admin.card.archive"));
    if (invite.lastUploadAt) parts.push(t("admin.card.last", { date: when(invite.lastUploadAt) }));
    if (invite.ownerMustSignIn) parts.push(t("admin.card.paused"));
    return parts.join(" · ");
  }

  function limits(invite) {
    var l = invite.limits, parts = [];
    if (l.maxFileSize) parts.push(t("admin.card.limit_file", { size: size(l.maxFileSize) }));
    if (l.maxTotalBytes) parts.push(t("admin.card.limit_total", { size: size(l.maxTotalBytes) }));
    if (l.maxFiles) parts.push(I18N.n("admin.card.limit_files", l.maxFiles));
    if (l.mediaKind !== "all") parts.push(t("admin.field.kind_" + l.mediaKind));
    return parts.length ? t("admin.card.limits", { limits: parts.join(" · ") }) : t("admin.card.no_limits");
  }

  function describe(el, invite) {
    var q = function (sel) { return el.querySelector(sel); };
    // without a label, what else tells it apart: its title, its album, the day it was made
    // ("Untitled link" five times could not be told apart: owner walk)
    q(".label").textContent = invite.label || invite.title || invite.albumName
      || t("admin.card.untitled_made", { date: when(invite.createdAt) });
    // (not when the title already names the card: it stood twice, once under itself)
    var seen = invite.title && invite.label;
    q(".guest-title").textContent = seen ? t("admin.card.guests_see", { title: invite.title }) : "";
    q(".guest-title").hidden = !seen;
    q(".chip").textContent = t("admin.state." + invite.state.replace(" ", "_"));
    q(".chip").dataset.kind = invite.state;
    q(".facts").textContent = facts(invite);
    q(".limits").textContent = limits(invite);
    q(".toggle").textContent = t(invite.disabled ? "admin.card.enable" : "admin.card.disable");
    expireOnTime(el, invite);
  }

  // No event comes when a link reaches its expiry: the card turns "expired" at that moment by the
  // server's own rule (disabled comes first; expired before full and used up), not at the next reload.
  var EXPIRING = { active: 1, full: 1, "used up": 1 };
  function expireOnTime(el, invite) {
    clearTimeout(el.expiryTimer);
    if (!invite.expiresAt || !EXPIRING[invite.state]) return;
    var wait = new Date(invite.expiresAt).getTime() - Date.now();
    el.expiryTimer = setTimeout(function () {
      if (new Date(invite.expiresAt).getTime() <= Date.now()) invite.state = "expired";
      describe(el, invite); // or, for a date beyond what one timer can wait, wait again
    }, Math.min(Math.max(wait, 0) + 250, 2147483647));
  }

  function renderInvite(invite) {
    var el = $("invite-item").content.firstElementChild.cloneNode(true);
    I18N.apply(el);
    var q = function (sel) { return el.querySelector(sel); };
    el.dataset.id = invite.id;
    cards[invite.id] = { el: el, invite: invite };
    describe(el, invite);
    q(".link").value = invite.link;
    q(".link").addEventListener("click", function () { this.select(); }); // the whole link, to copy by hand
    var copyTimer = null;
    q(".copy").addEventListener("click", function () {
      var done = function () {
        q(".copy").textContent = t("admin.card.copied");
        clearTimeout(copyTimer);
        copyTimer = setTimeout(function () { q(".copy").textContent = t("admin.card.copy"); }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(invite.link).then(done);
      else { q(".link").select(); document.execCommand("copy"); done(); }
    });
    if (navigator.share) {
      q(".share").hidden = false;
      q(".share").addEventListener("click", function () {
        navigator.share({ title: invite.title || document.title, url: invite.link }).catch(function () { /* closed */ });
      });
    }
    q(".qr").addEventListener("click", function () {
      var box = q(".qr-box");
      if (box.hidden) {
        q(".qr-box img").src = "/api/invites/" + invite.id + "/qr.svg";
        q(".png").href = "/api/invites/" + invite.id + "/qr.png?lang=" + encodeURIComponent(I18N.lang);
      }
      box.hidden = !box.hidden;
    });
    q(".toggle").addEventListener("click", function () {
      api("PATCH", "/api/invites/" + invite.id, { disabled: !invite.disabled }).then(loadInvites)
        .catch(function (err) { flash(err.message); });
    });
    q(".delete").addEventListener("click", function () {
      if (!confirm(t("admin.card.delete_confirm"))) return;
      api("DELETE", "/api/invites/" + invite.id).then(function () {
        flash(null, "admin.card.deleted", null, true); // said, not only a card gone ("Changes saved." stood on: owner walk)
        loadInvites();
      }).catch(function (err) { flash(err.message); });
    });
    var edit = null;
    q(".edit").addEventListener("click", function () {
      var form = q(".edit-box");
      if (!edit) edit = fieldsInto(form);
      if (form.hidden) { fillFields(edit, invite); clearError(form); }
      form.hidden = !form.hidden;
    });
    q(".cancel").addEventListener("click", function () { q(".edit-box").hidden = true; });
    q(".edit-box").addEventListener("submit", function (e) {
      e.preventDefault();
      clearError(q(".edit-box"));
      var body = readFields(edit, invite), closing = closes(invite, body);
      if (closing && !confirm(closing)) return;
      api("PATCH", "/api/invites/" + invite.id, body).then(function () {
        flash(""); // an earlier line up there is not this edit's answer
        loadAlbums();
        return loadInvites().then(function () { tellOn(invite.id, "admin.card.saved"); });
      }).catch(function (err) { showErrors(q(".edit-box"), err); });
    });
    q(".log").addEventListener("click", function () {
      var wrap = q(".log-wrap");
      if (!wrap.hidden) { wrap.hidden = true; el.logAsked = (el.logAsked || 0) + 1; el.logNote = null; return; } // an answer on its way stays unseen
      showLog(el, invite);
    });
    return el;
  }

  function logState(row) {
    if (row.state === "refused") {
      return t("admin.log.refused", { reason: I18N.has("admin.reason." + row.code) ? t("admin.reason." + row.code) : row.message });
    }
    if (row.state === "receiving" && row.size) { // how far, and whether it still moves (owner walk)
      var percent = I18N.formatPercent(Math.floor(100 * (row.received || 0) / row.size));
      return t(row.stopped ? "admin.log.stopped_at" : "admin.log.arriving_at", { percent: percent });
    }
    var state = t("admin.log.state_" + row.state);
    return row.message && row.state === "failed" ? state + ": " + row.message : state;
  }

  function showLog(el, invite) {
    var wrap = el.querySelector(".log-wrap");
    // each live event asks again; answers can come back out of order, and only the latest is shown
    var asked = el.logAsked = (el.logAsked || 0) + 1;
    // asked again every 5 s while a file is on its way, stopped or not (see the end)
    function again() {
      clearTimeout(el.logTimer);
      el.logTimer = setTimeout(function () { if (el.isConnected && !wrap.hidden) showLog(el, invite); }, 5000);
    }
    api("GET", "/api/invites/" + invite.id + "/uploads").then(function (rows) {
      if (asked !== el.logAsked) return;
      var arriving = rows.some(function (row) { return row.state === "receiving"; });
      // drawn anew only when something changed: each redraw took the focus off a Remove button,
      // and read the note out again (cold review)
      var drawn = JSON.stringify([rows, I18N.lang, el.logNote || null, !!el.removing]);
      if (!wrap.hidden && drawn === el.logDrawn) { if (arriving) again(); return; }
      el.logDrawn = drawn;
      var body = wrap.querySelector("tbody");
      body.textContent = "";
      // every file stopped on its way at once: one guest's creations that never sent a byte can
      // fill a link's places, a click each (attack run)
      var stopped = rows.filter(function (row) { return row.stopped; }).length;
      // what a Remove did, here beside it: the line at the top of the page was out of sight of an
      // owner scrolled down to the log (re-walk); said again in a language chosen later
      var note = wrap.querySelector(".log-note"), told = el.logNote;
      note.textContent = !told ? "" : told.body ? I18N.server(told.body) : said(told.parts);
      note.hidden = !told;
      var all = wrap.querySelector(".remove-stopped");
      all.hidden = stopped < 2;
      all.disabled = !!el.removing; // (not made clickable again by a redraw while it works)
      all.textContent = I18N.n("admin.log.remove_stopped", stopped);
      all.onclick = function () {
        if (!confirm(I18N.n("admin.log.remove_stopped_confirm", stopped))) return;
        all.disabled = el.removing = true; // one request: a second click flashed over the first one's answer
        api("DELETE", "/api/invites/" + invite.id + "/uploads").then(function (answer) {
          var parts = [["admin.log.removed", { count: answer.removed }]];
          if (answer.moving) parts.push(["admin.log.moving", { count: answer.moving }]); // "0 removed" said why
          el.logNote = { parts: parts };
        }).catch(function (err) { el.logNote = { body: err.body || { message: err.message } }; })
          .then(function () { el.removing = false; showLog(el, invite); });
      };
      rows.forEach(function (row) {
        var tr = document.createElement("tr");
        tr.dataset.state = row.state;
        [row.filename || "—", row.guestName || "—", size(row.size), when(row.createdAt), logState(row)]
          .forEach(function (text, column) {
            var td = document.createElement("td");
            td.textContent = text;
            if (column < 2) td.dir = "auto"; // a name in Arabic or Hebrew reads right to left
            tr.appendChild(td);
          });
        if (row.stopped) { // a file stopped on its way holds a place in the link's limits: the owner may end it
          var remove = document.createElement("button");
          remove.type = "button";
          remove.className = "link remove-upload";
          remove.textContent = t("admin.log.remove");
          remove.addEventListener("click", function () {
            if (!confirm(t("admin.log.remove_confirm", { name: row.filename }))) return;
            api("DELETE", "/api/invites/" + invite.id + "/uploads/" + encodeURIComponent(row.id))
              .then(function () { el.logNote = { parts: [["admin.log.removed", { count: 1 }]] }; showLog(el, invite); })
              .catch(function (err) { el.logNote = { body: err.body || { message: err.message } }; showLog(el, invite); });
          });
          tr.children[4].appendChild(document.createTextNode(" "));
          tr.children[4].appendChild(remove);
        }
        if (row.guestMessage) { // what the guest wrote, under their name (it also became the photo's description)
          var said = document.createElement("div");
          said.className = "guest-message";
          said.textContent = row.guestMessage;
          tr.children[1].appendChild(said);
        }
        body.appendChild(tr);
      });
      if (!rows.length) {
        var tr = document.createElement("tr"), td = document.createElement("td");
        // after a Remove took the last rows, "Nothing uploaded yet" was untrue (walk)
        td.colSpan = 5; td.textContent = t(el.logNote && el.logNote.parts ? "admin.log.none_left" : "admin.log.empty"); tr.appendChild(td); body.appendChild(tr);
      }
      wrap.hidden = false;
      // bytes arriving send no event: "arriving (0%)" stood while the guest's page said 19% (walk);
      // a stopped file may move again (its guest back): "stopped" stood over a file at 77% (re-walk)
      clearTimeout(el.logTimer);
      if (arriving) again();
    }).catch(function (err) {
      if (asked !== el.logAsked) return;
      flash(err.message);
      if (!wrap.hidden) again(); // a hiccup does not end the live log
    });
  }

  // --- notifications -----------------------------------------------------------------------------
  function showUrls(data) {
    var list = $("notify-urls");
    list.textContent = "";
    data.urls.forEach(function (item) {
      var li = document.createElement("li"), code = document.createElement("code"), remove = document.createElement("button");
      code.textContent = item.shown;
      remove.type = "button";
      remove.className = "ghost";
      remove.textContent = t("admin.notify.remove");
      remove.addEventListener("click", function () {
        // with what this tab shows there: another tab may have changed the list since (cold review)
        api("DELETE", "/api/notifications/" + item.index + "?shown=" + encodeURIComponent(item.shown)).then(showUrls)
          .catch(function (err) { flash(err.message); if (err.status === 409 || err.status === 404) loadNotify(); });
      });
      li.appendChild(code);
      li.appendChild(remove);
      list.appendChild(li);
    });
    $("notify-test").disabled = !data.urls.length;
    if (data.lastFailure !== undefined) lastFailure = data.lastFailure;
    sayFailure();
  }

  // The last notification that some address did not take: every digest failed, and the console said
  // nothing (owner walk). Gone once one reaches them all.
  var lastFailure = null;
  function sayFailure() {
    var line = $("notify-failed");
    line.hidden = !lastFailure;
    if (lastFailure) {
      line.textContent = t("admin.notify.last_failed", { date: when(lastFailure.at), addresses: lastFailure.addresses.join(", ") });
    }
  }

  function loadNotify() {
    api("GET", "/api/notifications").then(showUrls).catch(function (err) { flash(err.message); });
  }

  $("notify").addEventListener("submit", function (e) {
    e.preventDefault();
    var note = $("notify").querySelector(".field-error");
    note.textContent = "";
    api("POST", "/api/notifications", { url: $("notify-url").value }).then(function (data) {
      $("notify-url").value = "";
      showUrls(data);
    }).catch(function (err) {
      var bad = err.body && err.body.errors && err.body.errors.url;
      note.textContent = bad ? errorText(bad) : err.message;
    });
  });
  // What the test button's line says, kept to be said again in a language chosen later (re-walk):
  // a catalog key, or the server's refusal (which names the addresses that failed), in red.
  var notifySaid = null;
  function sayNotify(said) {
    notifySaid = said;
    var status = $("notify-status");
    status.textContent = said.key ? t(said.key) : said.body ? I18N.server(said.body, said.text) : said.text;
    status.classList.toggle("error", !said.key); // a refusal, not grey text (owner walk)
  }
  $("notify-test").addEventListener("click", function () {
    sayNotify({ key: "admin.notify.sending" });
    api("POST", "/api/notifications/test").then(function () { sayNotify({ key: "admin.notify.sent" }); lastFailure = null; sayFailure(); })
      .catch(function (err) { sayNotify({ body: err.body, text: err.message }); });
  });

  // --- start -----------------------------------------------------------------------------------
  I18N.ready.then(function () {
    I18N.switcher($("lang"));
    I18N.apply();
    I18N.onChange(function () {
      if (flashed) $("flash").textContent = said(flashed.key, flashed.params);
      if (notifySaid) sayNotify(notifySaid);
      sayFailure();
      // refusals already shown under fields, and the line under their form, in the new language
      Array.prototype.forEach.call(document.querySelectorAll(".field-error"), function (note) {
        if (note.error) note.textContent = errorText(note.error);
      });
      Array.prototype.forEach.call(document.querySelectorAll(".form-error"), function (line) {
        if (line.seeFields && line.textContent) line.textContent = t("admin.error.see_fields");
      });
      if (serverMax) document.querySelectorAll(".f-max-file").forEach(function (input) {
        input.placeholder = t("admin.field.max_file_hint", { size: megabytes(serverMax) });
      });
      Object.keys(cards).forEach(function (id) {
        var card = cards[id];
        I18N.apply(card.el);
        describe(card.el, card.invite);
        if (!card.el.querySelector(".log-wrap").hidden) showLog(card.el, card.invite); // its rows too
      });
    });
    return fetch("/api/config", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (config) { serverMax = config.maxUploadSize; create("f-max-file").placeholder = t("admin.field.max_file_hint", { size: megabytes(serverMax) }); })
      .catch(function () { /* no hint */ });
  }).then(function () {
    return fetch("/api/session", { credentials: "same-origin" });
  }).then(function (r) {
    if (r.ok) return r.json().then(showMain);
    showLogin();
  }).catch(function () { flash(null, "admin.unreachable"); });
})();
