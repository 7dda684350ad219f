// Translations for the pages: window.I18N. Plain script, no build step; load it before the page's own script.
//
// Catalogs are flat JSON files beside this one (i18n/<lang>.json: key -> text with {name} placeholders);
// English is always loaded too, as the fallback. The language is the guest's remembered pick, else the
// first of navigator.languages we have, else English.
//
//   I18N.ready                  a Promise, resolved once the catalogs are in (always resolves)
//   I18N.t(key, params)         the text, placeholders filled; plural forms live under key.one / key.other
//   I18N.n(key, count, params)  the plural form for `count` (Intl.PluralRules), {count} filled in
//   I18N.locale()               what Intl is asked in: the language, "pt-PT" for Portuguese (the catalog's;
//                               Intl's "pt" is Brazil's, where 0 files is singular: "mais 0 ficheiro", walk)
//   I18N.server(body)           a server refusal ({code, params, message}) in the reader's language
//   I18N.formatSize / formatDate / formatDuration / formatPercent   via Intl, in the page's language
//   I18N.apply(root)            translates [data-i18n] (textContent, never HTML) and
//                               [data-i18n-attr="attr:key;attr:key"]; sets <html lang>
//   I18N.switcher(select)       fills a <select> with the languages; choosing one switches and remembers it
//   I18N.onChange(fn)           fn() after every switch, to redraw what a script wrote itself
(function () {
  "use strict";

  var NAMES = { en: "English", de: "Deutsch", fr: "Français", es: "Español", it: "Italiano", nl: "Nederlands", pt: "Português" };
  var base = "/static/i18n/";
  var catalog = {}, fallback = {}, listeners = [];

  function remembered() {
    try { return localStorage.getItem("lang"); } catch (e) { return null; }
  }

  function choose() {
    var saved = remembered();
    if (saved && NAMES[saved]) return saved;
    var wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < wanted.length; i++) {
      var code = String(wanted[i] || "").toLowerCase().split("-")[0];
      if (NAMES[code]) return code;
    }
    return "en";
  }

  function load(lang) {
    return fetch(base + lang + ".json", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); });
  }

  function fill(text, params) {
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return params && params[name] != null ? String(params[name]) : whole;
    });
  }

  var I18N = {
    lang: choose(),
    languages: NAMES,

    t: function (key, params) {
      var text = catalog[key] != null ? catalog[key] : fallback[key];
      return text == null ? key : fill(text, params);
    },

    locale: function () { return I18N.lang === "pt" ? "pt-PT" : I18N.lang; },

    has: function (key) { return catalog[key] != null || fallback[key] != null; },

    n: function (key, count, params) {
      var form = "other";
      try { form = new Intl.PluralRules(I18N.locale()).select(count); } catch (e) { /* old browser: "other" */ }
      var full = {};
      for (var name in params || {}) full[name] = params[name];
      full.count = I18N.formatNumber(count);
      var chosen = key + "." + form;
      if (!I18N.has(chosen)) chosen = key + ".other";
      return I18N.t(chosen, full);
    },

    server: function (body, otherwise) {
      // (a count picks its plural form: "server.<code>.one", "server.<code>.other")
      var counted = body && body.code && typeof (body.params || {}).count === "number" && I18N.has("server." + body.code + ".other");
      if (counted || (body && body.code && I18N.has("server." + body.code))) {
        var params = {}, given = body.params || {};
        for (var name in given) {
          var value = given[name];
          params[name] = typeof value !== "number" ? value
            : name === "size" ? I18N.formatSize(value)
            : name === "wait" ? I18N.formatWait(value) : I18N.formatNumber(value);
        }
        // a one-time link's "already used" (the sentence for many browsers puzzled its guest: walk)
        var key = body.code === "link_used" && given.max === 1 ? "server.link_used_once" : "server." + body.code;
        if (counted) return I18N.n(key, given.count, params);
        return I18N.t(I18N.has(key) ? key : "server." + body.code, params);
      }
      return otherwise || (body && body.message) || I18N.t("server.bad_request");
    },

    formatNumber: function (value) {
      try { return new Intl.NumberFormat(I18N.locale()).format(value); } catch (e) { return String(value); }
    },

    // A wait given in seconds, as people say it: "45 seconds", "15 minutes" (rounded up: never shorter).
    formatWait: function (seconds) {
      var minutes = seconds >= 90, value = minutes ? Math.ceil(seconds / 60) : Math.max(1, Math.ceil(seconds));
      try {
        return new Intl.NumberFormat(I18N.locale(), { style: "unit", unit: minutes ? "minute" : "second", unitDisplay: "long" })
          .format(value);
      } catch (e) { return value + (minutes ? " min" : " s"); }
    },

    // Decimal units (1 MB = 1,000,000 bytes), as phones and cameras count them.
    formatSize: function (bytes) {
      var units = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"], i = 0, value = Number(bytes) || 0;
      while (value >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
      try {
        return new Intl.NumberFormat(I18N.locale(), {
          style: "unit", unit: units[i], unitDisplay: i ? "short" : "long", maximumFractionDigits: i ? 1 : 0
        }).format(value);
      } catch (e) {
        return (i ? value.toFixed(1) : value) + " " + ["B", "KB", "MB", "GB", "TB"][i];
      }
    },

    formatDuration: function (seconds) {
      var unit = "second", value = Math.max(1, Math.round(seconds));
      if (seconds >= 3600) { unit = "hour"; value = Math.round(seconds / 360) / 10; }
      else if (seconds >= 60) { unit = "minute"; value = Math.round(seconds / 60); }
      try {
        return new Intl.NumberFormat(I18N.locale(), { style: "unit", unit: unit, unitDisplay: "long", maximumFractionDigits: 1 }).format(value);
      } catch (e) {
        return value + " " + unit.charAt(0);
      }
    },

    formatPercent: function (percent) {
      try {
        return new Intl.NumberFormat(I18N.locale(), { style: "percent", maximumFractionDigits: 0 }).format(Math.floor(percent) / 100);
      } catch (e) {
        return Math.floor(percent) + "%";
      }
    },

    formatDate: function (date) {
      var moment = date instanceof Date ? date : new Date(date);
      try {
        return new Intl.DateTimeFormat(I18N.locale(), { dateStyle: "medium", timeStyle: "short" }).format(moment);
      } catch (e) {
        return moment.toLocaleString();
      }
    },

    apply: function (root) {
      root = root || document;
      document.documentElement.lang = I18N.lang;
      Array.prototype.forEach.call(root.querySelectorAll("[data-i18n]"), function (el) {
        var key = el.getAttribute("data-i18n");
        if (I18N.has(key)) el.textContent = I18N.t(key);
      });
      Array.prototype.forEach.call(root.querySelectorAll("[data-i18n-attr]"), function (el) {
        el.getAttribute("data-i18n-attr").split(";").forEach(function (pair) {
          var parts = pair.split(":");
          if (parts.length === 2 && I18N.has(parts[1].trim())) el.setAttribute(parts[0].trim(), I18N.t(parts[1].trim()));
        });
      });
    },

    use: function (lang) {
      if (!NAMES[lang]) return Promise.resolve();
      return (lang === "en" ? Promise.resolve(fallback) : load(lang)).then(function (found) {
        catalog = found;
        I18N.lang = lang;
        try { localStorage.setItem("lang", lang); } catch (e) { /* not remembered */ }
        I18N.apply();
        listeners.forEach(function (fn) { fn(); });
      });
    },

    switcher: function (select) {
      if (!select) return;
      select.textContent = "";
      Object.keys(NAMES).forEach(function (code) {
        var option = document.createElement("option");
        option.value = code;
        option.lang = code;
        option.textContent = NAMES[code];
        select.appendChild(option);
      });
      select.value = I18N.lang;
      select.addEventListener("change", function () { I18N.use(select.value); });
    },

    onChange: function (fn) { listeners.push(fn); }
  };

  I18N.ready = load("en").then(function (en) {
    fallback = en;
    return I18N.lang === "en" ? en : load(I18N.lang).catch(function () { I18N.lang = "en"; return en; });
  }).then(function (found) {
    catalog = found;
  }).catch(function () { /* catalogs unreachable: keys fall back to the English already in the page */ })
    .then(function () {
      if (document.readyState === "loading") {
        return new Promise(function (resolve) { document.addEventListener("DOMContentLoaded", resolve); });
      }
      return undefined;
    }).then(function () { I18N.apply(); });

  window.I18N = I18N;
})();
