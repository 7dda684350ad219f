// SHA-1 of chosen files, computed in a Web Worker (hash-worker.js, with the vendored hash-wasm): window.Hasher.
//   Hasher.available()  false where workers or WebAssembly are missing (the page then just sends)
//   Hasher.sha1(file)   a Promise of the hex digest, or null if hashing failed
// One worker, files in the order asked: hashing competes with nothing but itself.
(function () {
  "use strict";
  var worker = null, waiting = {}, next = 1, failures = 0;
  var MAX_FAILURES = 3; // a worker that cannot load (offline as the page opened) is made again for a later file
  function lost() {
    worker = null;
    failures += 1;
    Object.keys(waiting).forEach(function (id) { waiting[id](null); delete waiting[id]; });
  }
  function begin() {
    if (worker || failures >= MAX_FAILURES || !(window.Worker && window.WebAssembly)) return;
    try {
      worker = new Worker("/static/hash-worker.js");
      worker.onmessage = function (message) {
        if (message.data.unloaded) { lost(); return; }
        var resolve = waiting[message.data.id];
        delete waiting[message.data.id];
        if (resolve) resolve(message.data.sha1 || null);
      };
      worker.onerror = function (event) {
        if (event && event.preventDefault) event.preventDefault(); // handled: the page just sends
        lost();
      };
    } catch (e) { worker = null; failures = MAX_FAILURES; }
  }
  begin();

  window.Hasher = {
    available: function () { begin(); return !!worker; },
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
