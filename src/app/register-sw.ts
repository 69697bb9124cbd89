/**
 * Registers the service worker that keeps the app shell available offline. Built app only: under the dev server
 * (where import.meta.hot exists) modules change on every edit and must not be cached.
 */
export function registerServiceWorker(): void {
  if (import.meta.hot || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`, { scope: import.meta.env.BASE_URL }).catch((e: unknown) => {
    console.warn('Offline support is off: the service worker did not register.', e);
  });
}
