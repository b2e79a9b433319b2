// Offline use: after one visit, the page, its wasm module, the workers and the
// demo model come from this cache, with or without a network. The build
// (scripts/offline-manifest.sh) writes the list of files and a version, the
// hash of their contents: a new build is a new service worker, which caches
// the new files and deletes the old cache once it takes over.
const VERSION = '/*VERSION*/';
const FILES = ['./', /*FILES*/];
const CACHE = `promoscope-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('promoscope-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// The cached copy when there is one (the query string, e.g. ?backend=cpu, is
// the page's own), else the network.
self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(request, { ignoreSearch: true }))
    .then((hit) => hit || fetch(request)));
});
