// Live approval requests for one device: the /device/v1/events Server-Sent Events stream read
// with fetch() (EventSource cannot send an Authorization header), with reconnection, backoff,
// Last-Event-ID, and polling of the pending list while the stream is unavailable.

import { ApiError, apiURL, noteResponse, pendingRequests } from './api.js';

/** An incremental parser of the text/event-stream format (WHATWG HTML, 9.2.6). */
export class SSEParser {
  constructor(onEvent, { onId = () => {}, onRetry = () => {} } = {}) {
    this.onEvent = onEvent;
    this.onId = onId;
    this.onRetry = onRetry;
    this.buffer = '';
    this.data = [];
    this.type = '';
    this.lastId = '';
    this.first = true;
  }

  push(chunk) {
    this.buffer += chunk;
    if (this.first && this.buffer.length > 0) {
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
      this.first = false;
    }
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    for (let m = eol.exec(this.buffer); m; m = eol.exec(this.buffer)) {
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return; // a comment, such as the server's keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastId = value;
          this.onId(value);
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
    }
  }

  dispatch() {
    if (this.data.length > 0) {
      this.onEvent({ type: this.type || 'message', data: this.data.join('\n'), lastEventId: this.lastId });
    }
    this.data = [];
    this.type = '';
  }
}

const POLL_EVERY = 5000; // while the stream is down
const RECHECK_EVERY = 30000; // while live, re-list if requests are on screen
const STALL_AFTER = 45000; // the server sends a keep-alive every 15 s
const MAX_BACKOFF = 60000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * DeviceFeed keeps one device's view of its pending requests current. Handlers:
 *   snapshot(list)        the complete list of pending requests
 *   request(view)         a request, new or changed (from the stream)
 *   state(s)              'connecting' | 'live' | 'polling' | 'offline'
 *   unauthorized(err)     the server no longer knows this device
 *   wantsRecheck()        whether requests of this device are on screen
 */
export class DeviceFeed {
  constructor(token, handlers) {
    this.token = token;
    this.h = handlers;
    this.running = false;
    this.lastId = '';
    this.retry = 2000;
    this.status = 'connecting';
  }

  /** Starts following the device: with the event stream, or (stream false) by polling only. */
  start(stream = true) {
    if (this.running) return;
    this.running = true;
    this.stop$ = new AbortController();
    if (stream) {
      this.loop();
      return;
    }
    this.refreshQuietly();
    this.startPolling();
    this.setState('polling');
  }

  stop() {
    this.running = false;
    if (this.stop$) this.stop$.abort();
    this.stopPolling();
  }

  /** Wakes a feed that waits to reconnect (e.g. when the browser comes back online). */
  wake() {
    if (this.waking) this.waking.abort();
  }

  setState(s) {
    if (this.status !== s) {
      this.status = s;
      this.h.state(s);
    }
  }

  async refresh() {
    const data = await pendingRequests(this.token, this.stop$.signal);
    if (this.running) this.h.snapshot(data.approval_requests || []);
  }

  async refreshQuietly() {
    try {
      await this.refresh();
      return true;
    } catch (err) {
      this.check(err);
      return false;
    }
  }

  check(err) {
    if (err instanceof ApiError && err.status === 401 && this.running) {
      this.stop();
      this.h.unauthorized(err);
    }
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(async () => {
      const ok = await this.refreshQuietly();
      if (!this.running || this.status === 'live') return;
      // The server answers again after an outage: try the stream now, not after the backoff.
      if (ok && this.status === 'offline') this.wake();
      this.setState(ok ? 'polling' : 'offline');
    }, POLL_EVERY);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  async loop() {
    let backoff = 1000;
    let failures = 0;
    while (this.running) {
      let opened = false;
      let listed = false;
      try {
        // Every (re)connection starts from the full list: the stream only reports changes of
        // requests it sent itself, so after a gap the list is the truth.
        await this.refresh();
        listed = true;
        await this.stream(() => {
          opened = true;
          failures = 0;
          backoff = this.retry;
          this.stopPolling();
          this.setState('live');
        });
      } catch (err) {
        this.check(err);
      }
      if (!this.running) return;
      if (!opened) {
        failures++;
        backoff = Math.min(backoff * 2, MAX_BACKOFF);
      }
      // After two failed tries, poll the list until the stream is back: requests still arrive
      // while, say, a proxy buffers or cuts event streams.
      if (failures >= 2) this.startPolling();
      this.setState(failures < 2 ? 'connecting' : listed ? 'polling' : 'offline');
      this.waking = new AbortController();
      await sleep(backoff * (0.75 + Math.random() * 0.5), AbortSignal.any([this.stop$.signal, this.waking.signal]));
    }
  }

  async stream(onOpen) {
    const ctl = new AbortController();
    const signal = AbortSignal.any([this.stop$.signal, ctl.signal]);
    const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${this.token}` };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    const res = await fetch(apiURL('device/v1/events'), { headers, cache: 'no-store', credentials: 'omit', signal });
    noteResponse(res);
    if (res.status === 401) throw new ApiError(401, await res.json().catch(() => null));
    if (!res.ok || !res.body || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      throw new Error(`event stream unavailable (${res.status})`);
    }
    onOpen();
    let stall = setTimeout(() => ctl.abort(), STALL_AFTER);
    const recheck = setInterval(() => {
      if (this.h.wantsRecheck()) this.refreshQuietly();
    }, RECHECK_EVERY);
    const parser = new SSEParser((ev) => this.dispatch(ev), {
      onId: (id) => {
        this.lastId = id;
      },
      onRetry: (ms) => {
        this.retry = Math.max(500, Math.min(ms, MAX_BACKOFF));
      },
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(stall);
        stall = setTimeout(() => ctl.abort(), STALL_AFTER);
        parser.push(value);
      }
    } catch (err) {
      if (!(err && err.name === 'AbortError')) throw err;
    } finally {
      clearTimeout(stall);
      clearInterval(recheck);
      reader.cancel().catch(() => {});
    }
  }

  dispatch(ev) {
    if (ev.type !== 'approval_request' && ev.type !== 'approval_request_update') return;
    let view;
    try {
      view = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (view && typeof view.uuid === 'string') this.h.request(view);
  }
}
