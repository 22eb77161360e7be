// Twofold's device API (/device/v1) and the device's signing key.
//
// The API lives at the server root, one level above /authenticator/, which also holds when the
// server is published under a path prefix.

export const API_ROOT = new URL('../', import.meta.url);

/** An error answer of the API, in the Authy envelope: {message, error_code}. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered with status ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.code = (body && String(body.error_code || '')) || '';
  }
}

/** The server could not be reached at all. */
export class NetworkError extends Error {
  constructor() {
    super("Couldn't reach the Twofold server. Check your connection and try again.");
    this.name = 'NetworkError';
  }
}

// The server's clock, learned from the Date header of its answers. Answers are signed with a
// timestamp the server checks (±5 minutes) and the device's codes depend on the time, so a
// phone whose clock is off still works. Date has whole seconds: small offsets are ignored.
let clockOffset = 0;

function noteClock(res) {
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(date)) return;
  const off = date - Date.now();
  clockOffset = Math.abs(off) > 3000 ? off : 0;
}

/** Milliseconds since the epoch by the server's clock, as far as we know it. */
export function serverNow() {
  return Date.now() + clockOffset;
}

export function apiURL(path) {
  return new URL(path, API_ROOT);
}

async function call(method, path, { token, body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(apiURL(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal,
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new NetworkError();
  }
  noteClock(res);
  let data = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: only the status tells
  }
  if (!res.ok || (data && data.success === false)) throw new ApiError(res.status, data);
  return data;
}

export function registerDevice(body) {
  return call('POST', 'device/v1/registrations', { body });
}

export function pendingRequests(token, signal) {
  return call('GET', 'device/v1/approval_requests?status=pending', { token, signal });
}

export function answerRequest(token, uuid, body) {
  return call('POST', `device/v1/approval_requests/${encodeURIComponent(uuid)}`, { token, body });
}

export function deviceInfo(token) {
  return call('GET', 'device/v1/device', { token });
}

export function getRequest(token, uuid) {
  return call('GET', `device/v1/approval_requests/${encodeURIComponent(uuid)}`, { token });
}

export function removeDevice(token) {
  return call('DELETE', 'device/v1/device', { token });
}

function fromBase64url(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// subscribePush asks, once, to notify this browser of requests while the app is closed (Web Push).
// It is best effort: without permission or a push service the app still gets requests live and
// by polling while it is open.
export async function subscribePush(token) {
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return false;
  if (Notification.permission === 'default' && (await Notification.requestPermission()) !== 'granted') return false;
  if (Notification.permission !== 'granted') return false;
  const reg = await navigator.serviceWorker.ready;
  const { public_key: key } = await call('GET', 'device/v1/push/vapid', { token });
  const sub = (await reg.pushManager.getSubscription()) ||
    (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64url(key) }));
  const j = sub.toJSON();
  await call('POST', 'device/v1/push', { token, body: { kind: 'webpush', endpoint: j.endpoint, keys: j.keys } });
  return true;
}

export function noteResponse(res) {
  noteClock(res);
}

// --- keys and signatures ---

function base64(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

/** A new ECDSA P-256 key pair whose private half can sign but never leave the browser. */
export function newDeviceKey() {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
}

/** The public key as the server wants it: base64 of its SPKI (PKIX) DER. */
export async function publicKeyBase64(publicKey) {
  return base64(await crypto.subtle.exportKey('spki', publicKey));
}

/** The exact text a device signs to answer a request (see onetouch.AnswerMessage). */
export function answerMessage(uuid, status, timestamp, number, reason) {
  return ['twofold-onetouch-v1', uuid, status, String(timestamp), number || '', reason || ''].join('\n');
}

/** Signs an answer: ECDSA-SHA256, WebCrypto's raw r||s (64 bytes), base64. */
export async function signAnswer(privateKey, uuid, status, timestamp, number, reason) {
  const msg = new TextEncoder().encode(answerMessage(uuid, status, timestamp, number, reason));
  return base64(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, msg));
}

/** A name for this browser as a device, such as "Chrome on Android". */
export function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /OPR\//.test(ua)
        ? 'Opera'
        : /Chrom(e|ium)\//.test(ua)
          ? 'Chrome'
          : /Safari\//.test(ua)
            ? 'Safari'
            : 'Web browser';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad|iPod/.test(ua)
      ? 'iOS'
      : /Mac OS X/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Linux/.test(ua)
              ? 'Linux'
              : '';
  return os ? `${browser} on ${os}` : browser;
}
