// SHA-1 of a File, in a Web Worker so the page stays smooth: {id, file} in, {id, sha1} or {id, error} out.
// Reads 4 MiB at a time; uses the vendored hash-wasm (same origin: the CSP allows nothing else).
/* global hashwasm */
// Loaded as the page opens: a phone whose network drops then cannot load it. Said to the page
// (hasher.js makes the worker again for a later file) instead of an error thrown at it.
try {
  importScripts("/static/vendor/hash-wasm/sha1.umd.min.js");
} catch (error) {
  self.postMessage({ unloaded: true });
  self.close();
}

var PIECE = 4 * 1024 * 1024;

self.onmessage = function (message) {
  var id = message.data.id, file = message.data.file;
  hashwasm.createSHA1().then(function (hasher) {
    hasher.init();
    var offset = 0;
    function next() {
      if (offset >= file.size) { self.postMessage({ id: id, sha1: hasher.digest("hex") }); return undefined; }
      var end = Math.min(offset + PIECE, file.size);
      return file.slice(offset, end).arrayBuffer().then(function (buffer) {
        hasher.update(new Uint8Array(buffer));
        offset = end;
        return next();
      });
    }
    return next();
  }).catch(function (error) {
    self.postMessage({ id: id, error: String(error && error.message || error) });
  });
};
