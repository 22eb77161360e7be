// Twofold Authenticator service worker: the app shell from the cache (so codes work offline),
// the API from the network.
//
// The server replaces the version mark below with a hash of every file of the app, so any
// change makes a new worker, which caches the new shell and drops the old one.

const VERSION = '__TWOFOLD_VERSION__';
const CACHE = `twofold-shell-${VERSION}`;
const SHELL = [
  'index.html',
  'app.js',
  'accounts.js',
  'api.js',
  'events.js',
  'links.js',
  'requests.js',
  'store.js',
  'totp.js',
  'ui.js',
  'style.css',
  'manifest.webmanifest',
  'icon.svg',
  'icon-maskable.svg',
  'icon-192.png',
  'icon-512.png',
  'icon-maskable-512.png',
  'apple-touch-icon.png',
];

const scope = new URL(self.registration.scope);
const apiRoot = new URL('../', scope).pathname; // the API is at the server's root

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL.map((path) => new Request(new URL(path, scope), { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('twofold-shell-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function offline() {
  const body = JSON.stringify({ message: 'You are offline.', success: false, errors: { message: 'You are offline.' }, error_code: 'offline' });
  return new Response(body, { status: 503, headers: { 'Content-Type': 'application/json' } });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return; // answers and registrations go straight to the network
  const url = new URL(req.url);
  if (url.origin !== scope.origin) return;

  if (url.pathname.startsWith(scope.pathname)) {
    // The shell: cache first. A navigation (with or without #register=…) gets the page.
    event.respondWith((async () => {
      const key = req.mode === 'navigate' ? new URL('index.html', scope).href : req;
      const hit = await caches.match(key, { ignoreSearch: true, cacheName: CACHE });
      return hit || fetch(req);
    })());
    return;
  }

  if (url.pathname.startsWith(`${apiRoot}device/`)) {
    // The event stream is long-lived: leave it to the page, untouched.
    if (url.pathname.endsWith('/events')) return;
    // Network first. Answers carry a bearer token and live data, so they are never stored;
    // offline, the page gets an error in the API's own shape instead of a network failure.
    event.respondWith(fetch(req).catch(offline));
  }
});

// Web Push: a request arrived while no window of the app is in front. The payload holds only
// the uuid, the message and the app's name; the page fetches the rest and signs the answer.
self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    // not JSON: show a plain notice
  }
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window' });
    if (windows.some((w) => w.focused)) return; // the open page shows it live
    const title = data.app_name ? `Approve sign-in to ${data.app_name}?` : 'Sign-in request';
    await self.registration.showNotification(title, {
      body: data.message || 'Open Twofold to approve or deny.',
      tag: data.uuid || 'twofold-request',
      data: { uuid: data.uuid },
      icon: new URL('icon-192.png', scope).href,
      requireInteraction: true,
    });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of windows) {
      if (w.url.startsWith(scope.href)) return w.focus();
    }
    return self.clients.openWindow(scope.href);
  })());
});
