// Small previews of the chosen files, made in the browser: window.Thumbs.
//   Thumbs.add(item)        draws a photo into the item's .thumb canvas (one at a time, to spare a phone's
//                           memory), or shows an icon for videos and for photos the browser cannot decode
//   Thumbs.icon(item, name) the icon only (files listed from an earlier visit: no bytes here)
(function () {
  "use strict";
  var SIZE = 112; // canvas pixels; shown at 3.5rem
  var VIDEO = /\.(mp4|mov|m4v|3gp|3g2|avi|mkv|webm|mts|m2ts|mpg|mpeg|wmv|flv|hevc|insv|mxf|ogv|vob)$/i;
  var waiting = [], busy = false;

  function icon(item, name, type) {
    var box = item.el.querySelector(".thumb");
    box.dataset.icon = /^video\//.test(type || "") || VIDEO.test(name) ? "video" : "photo";
    box.dataset.ext = ((name.match(/\.([^.]{1,5})$/) || ["", ""])[1]).toUpperCase(); // HEIC, RAW...: said, not drawn
  }

  function next() {
    if (busy || !waiting.length) return;
    var item = waiting.shift();
    busy = true;
    var done = function () { busy = false; next(); };
    if (!window.createImageBitmap) { done(); return; }
    createImageBitmap(item.file).then(function (bitmap) {
      var canvas = item.el.querySelector(".thumb canvas");
      canvas.width = canvas.height = SIZE;
      var side = Math.min(bitmap.width, bitmap.height);  // the middle square, like a photo grid
      canvas.getContext("2d").drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, SIZE, SIZE);
      bitmap.close();
      item.el.querySelector(".thumb").dataset.icon = "";
      done();
    }).catch(done); // HEIC and friends: the icon stays
  }

  window.Thumbs = {
    add: function (item) {
      icon(item, item.name, item.file.type);
      if (/^image\//.test(item.file.type) && item.file.size < 60 * 1000 * 1000) { waiting.push(item); next(); }
    },
    icon: function (item, name) { icon(item, name, ""); }
  };
})();
