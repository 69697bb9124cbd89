/**
 * The app's service worker: after one online visit the app shell (HTML, scripts, workers, styles, icons) loads
 * offline. Model packages are not cached here: installed models live in IndexedDB and the engine reads them from
 * there, so they keep working offline without a second copy in the Cache API.
 *
 * __PRECACHE_MANIFEST__ is replaced at build time (scripts/pwa-plugin.ts) with the build's files and a version
 * derived from their content, so every new build installs a new cache and drops the old one.
 */
/// <reference lib="webworker" />
declare const __PRECACHE_MANIFEST__: { version: string; files: string[] };

const sw = self as unknown as ServiceWorkerGlobalScope;
const { version, files } = __PRECACHE_MANIFEST__;
const CACHE_PREFIX = 'llama-webgpu-shell-';
const CACHE = CACHE_PREFIX + version;
const base = new URL(sw.registration.scope);
const shellUrls = files.map((f) => new URL(f, base).href);
const indexUrl = new URL('index.html', base).href;

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(shellUrls.map((u) => new Request(u, { cache: 'reload' })));
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      // The previous build's cache stays one more version: a page opened before this update may still load its
      // (differently named) worker or lazy chunks. caches.keys() lists caches in creation order.
      const shells = (await caches.keys()).filter((k) => k.startsWith(CACHE_PREFIX) && k !== CACHE);
      for (const key of shells.slice(0, -1)) await caches.delete(key);
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== base.origin) return;
  if (req.mode === 'navigate') {
    // Network first so an online visit always gets the newest page; the cached shell when offline.
    event.respondWith(
      fetch(req).catch(
        async () => (await caches.match(req, { ignoreSearch: true, ignoreVary: true })) ?? (await caches.match(indexUrl, { ignoreVary: true })) ?? Response.error(),
      ),
    );
    return;
  }
  if (shellUrls.includes(url.href) || url.pathname.startsWith(new URL('assets/', base).pathname)) {
    // Build files have content hashes in their names: a cached copy (this build's or the previous one's) is always
    // the right one. ignoreVary: servers answer with "Vary: Origin", and a module script's request carries an
    // Origin header that the precache's did not.
    event.respondWith(caches.match(req, { ignoreVary: true }).then((hit) => hit ?? fetch(req)));
  }
});
