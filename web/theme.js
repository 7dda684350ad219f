// Applies the saved colour theme before the page paints (a separate file: the CSP allows no inline script).
(function () {
  var saved = null;
  try { saved = localStorage.getItem("theme"); } catch (e) { /* storage blocked: follow the system */ }
  if (saved === "dark" || saved === "light") document.documentElement.dataset.theme = saved;
})();
