/**
 * Registers the service worker that keeps the app shell available offline (built app only: the dev server's
 * modules change on every edit and must not be cached).
 */
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`, { scope: import.meta.env.BASE_URL }).catch((e: unknown) => {
    console.warn('Offline support is off: the service worker did not register.', e);
  });
}
