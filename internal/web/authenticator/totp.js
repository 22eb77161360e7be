// RFC 4226 / RFC 6238 one-time passwords with WebCrypto, base32 and otpauth:// URIs.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export const ALGORITHMS = { SHA1: 'SHA-1', SHA256: 'SHA-256', SHA512: 'SHA-512' };

/** Normalises a base32 secret as people type or paste it: upper case, no spaces or padding. */
export function normaliseSecret(text) {
  return String(text).toUpperCase().replace(/[\s-]+/g, '').replace(/=+$/, '');
}

/** Decodes RFC 4648 base32 (case-insensitive, spaces and padding ignored). */
export function base32Decode(text) {
  const s = normaliseSecret(text);
  if (!/^[A-Z2-7]*$/.test(s)) throw new Error('The secret key is not valid base32 (letters A–Z and digits 2–7).');
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let i = 0;
  for (const c of s) {
    value = (value << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[i++] = (value >>> bits) & 0xff;
      value &= (1 << bits) - 1;
    }
  }
  return out;
}

/** Imports a seed as a non-extractable HMAC key: it can make codes but never be read back. */
export function importSeed(seed, algorithm = 'SHA-1') {
  return crypto.subtle.importKey('raw', seed, { name: 'HMAC', hash: algorithm }, false, ['sign']);
}

/** HOTP value of counter for an HMAC key (RFC 4226 dynamic truncation). */
export async function hotp(key, counter, digits) {
  const msg = new ArrayBuffer(8);
  const view = new DataView(msg);
  view.setUint32(0, Math.floor(counter / 2 ** 32));
  view.setUint32(4, counter >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, msg));
  const off = mac[mac.length - 1] & 0x0f;
  const bin = (((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3]) >>> 0;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** The RFC 6238 time step of a moment in milliseconds. */
export function timeStep(ms, period) {
  return Math.floor(ms / 1000 / period);
}

// Codes of short steps change too fast to read and type: Authy's app showed its 10-second codes
// for 20 s. A server that accepts codes of `window` steps either side of its now accepts each
// code for (2·window + 1) steps, so a code can stay on screen for longer than its step, as long
// as it stays inside that time with a margin each side (for a clock a little off, and for
// typing the code after it went).
const SHOW_FOR = 20000;
const MARGIN = 5000;

/**
 * Which step's code to show at a moment (ms), and for how long: {step, length, left}, the times
 * in milliseconds. With window 0 (or an unknown one, as for other services' accounts), each
 * step's code is shown for its own period, as every authenticator does. With 10-second steps
 * and Twofold's default window of 1, the code of step 2j+1 is shown from 5 s into step 2j for
 * 20 s; the server accepts it from the start of step 2j to the end of step 2j+2.
 */
export function display(ms, period, window = 0) {
  const p = period * 1000;
  const accepted = (2 * Math.max(0, window) + 1) * p;
  const steps = Math.max(1, Math.min(Math.ceil(SHOW_FOR / p), Math.floor((accepted - 2 * MARGIN) / p)));
  const length = steps * p;
  const lead = (accepted - length) / 2;
  const j = Math.floor((ms - lead) / length);
  return { step: j * steps + Math.max(0, window), length, left: length - (ms - lead - j * length) };
}

/** Groups a code for reading: 123 456, 123 4567, 1234 5678. */
export function groupCode(code) {
  const n = code.length;
  if (n <= 5) return code;
  if (n === 9) return `${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`;
  const cut = Math.floor(n / 2);
  return `${code.slice(0, cut)} ${code.slice(cut)}`;
}

function intParam(q, name, def, lo, hi) {
  const v = q.get(name);
  if (v === null || v === '') return def;
  if (!/^\d+$/.test(v) || +v < lo || +v > hi) throw new Error(`The link's ${name} must be a number from ${lo} to ${hi}.`);
  return +v;
}

/**
 * Parses an otpauth://totp/ URI (Google's Key URI Format) into
 * {issuer, account, secret (normalised base32), digits, period, algorithm (WebCrypto name)}.
 */
export function parseOtpauth(text) {
  const m = /^otpauth:\/\/([a-z]+)\/([^?#]*)(?:\?([^#]*))?/i.exec(String(text).trim());
  if (!m) throw new Error('That is not a valid otpauth:// link.');
  const type = m[1].toLowerCase();
  if (type === 'hotp') throw new Error('Counter-based (HOTP) codes are not supported here; only time-based (TOTP) codes.');
  if (type !== 'totp') throw new Error(`Unknown kind of otpauth link: ${type}.`);
  let label;
  try {
    label = decodeURIComponent(m[2]);
  } catch {
    throw new Error('The account name in the link is not properly encoded.');
  }
  const q = new URLSearchParams(m[3] || '');
  let issuer = (q.get('issuer') || '').trim();
  let account = label.trim();
  const colon = label.indexOf(':');
  if (colon >= 0) {
    const prefix = label.slice(0, colon).trim();
    account = label.slice(colon + 1).trim();
    if (!issuer) issuer = prefix;
  }
  const secretText = q.get('secret') || '';
  if (!secretText) throw new Error('The link has no secret key.');
  if (base32Decode(secretText).length < 10) throw new Error('The secret key is too short to be safe (under 80 bits).');
  const alg = (q.get('algorithm') || 'SHA1').toUpperCase();
  const algorithm = ALGORITHMS[alg];
  if (!algorithm) throw new Error(`Unsupported algorithm ${alg}.`);
  return {
    issuer: issuer.slice(0, 100),
    account: account.slice(0, 200),
    secret: normaliseSecret(secretText),
    digits: intParam(q, 'digits', 6, 6, 10),
    period: intParam(q, 'period', 30, 5, 300),
    algorithm,
  };
}
