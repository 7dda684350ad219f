// SHA-1 of chosen files, computed in a Web Worker (hash-worker.js, with the vendored hash-wasm): window.Hasher.
//   Hasher.available()  false where workers or WebAssembly are missing (the page then just sends)
//   Hasher.sha1(file)   a Promise of the hex digest, or null if hashing failed
// One worker, files in the order asked: hashing competes with nothing but itself.
(function () {
  "use strict";
  var worker = null, waiting = {}, next = 1;
  try {
    if (window.Worker && window.WebAssembly) {
      worker = new Worker("/static/hash-worker.js");
      worker.onmessage = function (message) {
        var resolve = waiting[message.data.id];
        delete waiting[message.data.id];
        if (resolve) resolve(message.data.sha1 || null);
      };
      worker.onerror = function () {
        worker = null;
        Object.keys(waiting).forEach(function (id) { waiting[id](null); delete waiting[id]; });
      };
    }
  } catch (e) { worker = null; }

  window.Hasher = {
    available: function () { return !!worker; },
    sha1: function (file) {
      return new Promise(function (resolve) {
        if (!worker) { resolve(null); return; }
        var id = next++;
        waiting[id] = resolve;
        worker.postMessage({ id: id, file: file });
      });
    }
  };
})();
