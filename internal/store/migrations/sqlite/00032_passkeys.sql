-- +goose Up
-- Passkeys (WebAuthn, issue 21). An application's relying party: its id (a domain), the
-- origins its pages run at (space-separated; empty: https://<rp id>), its user-verification
-- policy and whether usernameless sign-in is allowed.
ALTER TABLE apps ADD COLUMN passkey_rp_id TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN passkey_origins TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN passkey_uv TEXT NOT NULL DEFAULT 'preferred';
ALTER TABLE apps ADD COLUMN passkey_usernameless INTEGER NOT NULL DEFAULT 0;

-- Each user's WebAuthn user handle: random, opaque, never the Authy id. A discoverable
-- credential's assertion names its user by it.
CREATE TABLE passkey_handles (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    app_id  INTEGER NOT NULL,
    handle  BLOB    NOT NULL,
    UNIQUE (app_id, handle)
);

-- A user's registered passkeys (credential records).
CREATE TABLE passkeys (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id          TEXT    NOT NULL UNIQUE,   -- 32 hex digits: the wire's id
    app_id             INTEGER NOT NULL,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               TEXT    NOT NULL,
    credential_id      BLOB    NOT NULL,
    public_key         BLOB    NOT NULL,          -- COSE key
    sign_count         INTEGER NOT NULL,
    backup_eligible    INTEGER NOT NULL,
    backup_state       INTEGER NOT NULL,
    transports         TEXT    NOT NULL,          -- space-separated
    aaguid             BLOB    NOT NULL,
    attestation_format TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL,          -- 0: never
    UNIQUE (app_id, credential_id)
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, id);

-- A registration or authentication ceremony begun and not yet finished: the go-webauthn
-- session (challenge, rp id, user handle, allowed credentials) as JSON. Finishing consumes it
-- with one compare-and-set (used_at = 0), so a challenge is answered once.
CREATE TABLE passkey_ceremonies (
    id         TEXT    PRIMARY KEY,               -- 32 hex digits: the wire's ceremony
    app_id     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,                  -- users.public_id; 0: usernameless sign-in
    kind       TEXT    NOT NULL,                  -- registration, authentication
    session    BLOB    NOT NULL,
    name       TEXT    NOT NULL,                  -- a registration's passkey name
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_by_app ON passkey_ceremonies (app_id);

-- +goose Down
DROP TABLE passkey_ceremonies;
DROP TABLE passkeys;
DROP TABLE passkey_handles;
ALTER TABLE apps DROP COLUMN passkey_usernameless;
ALTER TABLE apps DROP COLUMN passkey_uv;
ALTER TABLE apps DROP COLUMN passkey_origins;
ALTER TABLE apps DROP COLUMN passkey_rp_id;
