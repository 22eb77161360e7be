-- +goose Up
-- The hosted second-factor step (internal/hostedstep). A step client is a relying party that
-- sends users to the step (an identity provider through OIDC or an Auth0 Action, or an
-- application): it belongs to one application, whose users it may name.
CREATE TABLE step_clients (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id           INTEGER NOT NULL REFERENCES apps (id),
    client_id        TEXT    NOT NULL UNIQUE,
    name             TEXT    NOT NULL,
    redirect_uris    TEXT    NOT NULL,            -- JSON array; a redirect must match one exactly
    factors          TEXT    NOT NULL,            -- JSON array of the factors offered, in order
    user_match       TEXT    NOT NULL,            -- how a hinted name finds the user: id, custom_id, email
    allow_login_hint INTEGER NOT NULL DEFAULT 0,  -- an unsigned login_hint may name the user
    hint_jwks_url    TEXT    NOT NULL DEFAULT '', -- the IdP's keys, for a signed id_token_hint
    hint_issuer      TEXT    NOT NULL DEFAULT '', -- the iss such a hint must have
    client_jwks_url  TEXT    NOT NULL DEFAULT '', -- the client's keys: private_key_jwt, signed requests
    auth0_domain     TEXT    NOT NULL DEFAULT '', -- the Auth0 tenant an Action sends users from
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX step_clients_by_app ON step_clients (app_id, id);

-- A client's secrets, sealed: its client_secret (kind 'client') and the secret it shares with an
-- Auth0 tenant's Action (kind 'auth0'). Both are needed in clear (HS256 signatures), so they are
-- sealed rather than hashed; the additional data names the row.
CREATE TABLE step_client_secrets (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id     INTEGER NOT NULL REFERENCES step_clients (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    secret_sealed BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (client_id, kind)
);

-- One user's pass through the step. The page's URL holds a random handle (handle_mac is its
-- keyed hash) and the browser that started it a cookie (browser_mac); request is what the client
-- asked (redirect URI, state, nonce, PKCE challenge, response type and mode), as JSON. Once a
-- factor passed, the OIDC code flow's authorization code is code_mac, spent once (code_used_at).
CREATE TABLE step_sessions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    handle_mac      BLOB    NOT NULL UNIQUE,
    client_id       INTEGER NOT NULL REFERENCES step_clients (id) ON DELETE CASCADE,
    app_id          INTEGER NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser_mac     BLOB    NOT NULL,
    request         TEXT    NOT NULL,
    status          TEXT    NOT NULL,            -- pending, passed, failed, done
    factor          TEXT    NOT NULL DEFAULT '', -- the factor that passed
    approval_uuid   TEXT    NOT NULL DEFAULT '', -- the push approval request it waits on
    sent_channel    TEXT    NOT NULL DEFAULT '', -- the channel of the last code sent (sms, call, email)
    passed_at       INTEGER NOT NULL DEFAULT 0,
    code_mac        BLOB    UNIQUE,
    code_expires_at INTEGER NOT NULL DEFAULT 0,
    code_used_at    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX step_sessions_by_expiry ON step_sessions (expires_at);
CREATE INDEX step_sessions_by_user ON step_sessions (user_id, id);

-- A client may name users by email (user_match 'email'), as identity providers know them.
CREATE INDEX users_by_email ON users (app_id, lower(email)) WHERE email <> '';

-- +goose Down
DROP INDEX users_by_email;
DROP TABLE step_sessions;
DROP TABLE step_client_secrets;
DROP TABLE step_clients;
