// Loads the UI's stylesheet and script from the CDN edge named on this tag (data-edge, or on a
// page served over HTTPS data-edge-tls when the edge has an HTTPS listener), each falling back to
// this origin's copy when the edge fails: served only when the topology has an edge
// (src/app/web.cc), from the origin itself, so a page can always run it.
(function () {
  'use strict';
  const me = document.currentScript;
  const edge = location.protocol === 'https:' && me.dataset.edgeTls ? me.dataset.edgeTls
    : me.dataset.edge;
  function load(tag, attr, path, props) {
    const el = document.createElement(tag);
    Object.assign(el, props);
    el.addEventListener('error', () => {
      const again = document.createElement(tag);
      Object.assign(again, props);
      again[attr] = path;
      document.head.appendChild(again);
    }, { once: true });
    el[attr] = edge + path;
    document.head.appendChild(el);
  }
  load('link', 'href', me.dataset.css, { rel: 'stylesheet' });
  // The script expects the page parsed, as `defer` gave it.
  const js = () => load('script', 'src', me.dataset.js, { async: false });
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', js, { once: true });
  } else {
    js();
  }
})();
