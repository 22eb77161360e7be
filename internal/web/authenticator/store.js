// Persistence in IndexedDB.
//
// "keys" holds this browser's sealing key: a non-extractable AES-256-GCM CryptoKey that script
// can use but never read. "accounts" holds one record per account; its secrets (the TOTP seed
// and, for Twofold devices, the access token) exist only sealed under that key, bound to the
// record's id. A device's ECDSA signing key is stored as a non-extractable CryptoKey too.

const DB_NAME = 'twofold-authenticator';
const DB_VERSION = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

let dbPromise = null;

function openDB() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('keys')) db.createObjectStore('keys');
        if (!db.objectStoreNames.contains('accounts')) db.createObjectStore('accounts', { keyPath: 'id' });
      };
      req.onsuccess = () => {
        const db = req.result;
        db.onversionchange = () => {
          db.close();
          dbPromise = null;
        };
        resolve(db);
      };
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('Another tab holds an older version of the authenticator open. Close it and reload.'));
    });
    dbPromise.catch(() => {
      dbPromise = null;
    });
  }
  return dbPromise;
}

// run performs one request in its own transaction and resolves when the transaction commits.
async function run(storeName, mode, fn) {
  const db = await openDB();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, mode);
    let result;
    const req = fn(tx.objectStore(storeName));
    req.onsuccess = () => {
      result = req.result;
    };
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error || req.error);
    tx.onabort = () => reject(tx.error || new Error('The browser storage refused the change.'));
  });
}

export function listAccounts() {
  return run('accounts', 'readonly', (s) => s.getAll());
}

export function saveAccount(record) {
  return run('accounts', 'readwrite', (s) => s.put(record));
}

export function removeAccount(id) {
  return run('accounts', 'readwrite', (s) => s.delete(id));
}

let sealKeyPromise = null;

// sealKey returns this browser's AES-GCM key, creating it on first use. Two tabs may race to
// create it: the loser of the add() reads the winner's key.
function sealKey() {
  if (!sealKeyPromise) {
    sealKeyPromise = (async () => {
      const existing = await run('keys', 'readonly', (s) => s.get('seal'));
      if (existing) return existing;
      const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
      try {
        await run('keys', 'readwrite', (s) => s.add(key, 'seal'));
        return key;
      } catch (err) {
        if (err && err.name === 'ConstraintError') return run('keys', 'readonly', (s) => s.get('seal'));
        throw err;
      }
    })();
    sealKeyPromise.catch(() => {
      sealKeyPromise = null;
    });
  }
  return sealKeyPromise;
}

const boundTo = (id) => enc.encode(`twofold-account:${id}`);

/** Encrypts a JSON value for the account id; the result can be opened only for that id. */
export async function seal(id, value) {
  const key = await sealKey();
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: boundTo(id) }, key, enc.encode(JSON.stringify(value)));
  return { iv, ct: new Uint8Array(ct) };
}

/** Decrypts what seal() made for the same account id. */
export async function unseal(id, box) {
  const key = await sealKey();
  const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: box.iv, additionalData: boundTo(id) }, key, box.ct);
  return JSON.parse(dec.decode(pt));
}

/** Asks the browser not to evict this origin's storage under pressure (best effort). */
export async function persist() {
  try {
    if (navigator.storage && navigator.storage.persist && !(await navigator.storage.persisted())) {
      await navigator.storage.persist();
    }
  } catch {
    // not supported: nothing to do
  }
}
