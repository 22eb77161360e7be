// What a pasted, scanned or opened link asks for.
//
//   {kind: 'register', token, appHint}   a Twofold registration token (tfr_…), from an enrolment
//                                        link https://host/authenticator/#register=tfr_… or bare
//   {kind: 'register', jwt}              an Authy-style authy://account?token=JWT
//   {kind: 'otpauth', key}               an otpauth://totp/ URI: an offline account
//   {kind: 'elsewhere', url, origin}     an enrolment link for another Twofold server

import { parseOtpauth } from './totp.js';

const TOKEN = /^tfr_[A-Za-z0-9_-]{8,200}$/;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Reads the registration fields of a URL fragment such as "#register=tfr_…&app=Shop". */
export function fromFragment(hash) {
  const params = new URLSearchParams(String(hash).replace(/^#/, ''));
  const token = (params.get('register') || '').trim();
  if (!token) return null;
  if (!TOKEN.test(token)) throw new Error('This enrolment link is damaged: its token is not valid. Ask the site for a new link.');
  return { kind: 'register', token, appHint: (params.get('app') || '').trim().slice(0, 60) };
}

// The Authy tutorials put the application's name in the JWT's iss claim. It is shown (never
// trusted) before the server has checked the token.
function jwtIssuer(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '=')), (c) => c.charCodeAt(0))));
    return typeof claims.iss === 'string' ? claims.iss.trim().slice(0, 60) : '';
  } catch {
    return '';
  }
}

export function classify(raw, here = window.location) {
  const text = String(raw).trim();
  if (!text) throw new Error('Paste a link or scan a QR code first.');
  if (/^otpauth:/i.test(text)) return { kind: 'otpauth', key: parseOtpauth(text) };
  if (/^authy:/i.test(text)) {
    const m = /^authy:\/\/account\/?\?(.*)$/is.exec(text);
    const jwt = m ? new URLSearchParams(m[1]).get('token') : null;
    if (!jwt || !JWT.test(jwt)) throw new Error('This authy:// link has no valid token.');
    return { kind: 'register', jwt, appHint: jwtIssuer(jwt) };
  }
  if (TOKEN.test(text)) return { kind: 'register', token: text, appHint: '' };
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new Error("That doesn't look like an enrolment link, an authy:// link or an otpauth:// link.");
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('Only https:// enrolment links are supported.');
  const link = fromFragment(url.hash);
  if (!link) throw new Error("This link has no enrolment token. Use the enrolment link or QR code the site showed you.");
  if (url.origin !== here.origin) return { kind: 'elsewhere', url: url.href, origin: url.origin, host: url.host };
  return link;
}
