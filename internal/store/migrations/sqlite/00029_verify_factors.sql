-- +goose Up
-- Verify v2 factors and challenges (issue 20). An entity is not a table: it is the application's
-- user whose custom_user_id is the entity's Identity, so the Authy API reaches the same user.
--
-- verify_factors: a factor of an entity in one service. A totp factor keeps its secret sealed
-- (bound to the factor's public id) and the last time step a code of it was spent at
-- (last_step: a code is accepted once); failures counts wrong codes while it is unverified. A
-- push factor keeps the device's public key there (not secret). device_id is the Twofold device
-- (devices.id) a push factor is, for a user enrolled with Twofold's authenticator: such factors
-- are made by the server, one per device and service, and go with the device.
CREATE TABLE verify_factors (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id     TEXT    NOT NULL UNIQUE,       -- 32 hex digits; YF… on the wire
    app_id        INTEGER NOT NULL,
    service_id    INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,              -- users.public_id
    factor_type   TEXT    NOT NULL,              -- totp, push
    name          TEXT    NOT NULL,
    status        TEXT    NOT NULL,              -- unverified, verified
    secret_sealed BLOB    NOT NULL,
    config        TEXT    NOT NULL,              -- JSON
    metadata      TEXT    NOT NULL,              -- JSON
    last_step     INTEGER NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    device_id     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX verify_factors_by_entity ON verify_factors (service_id, user_id, id);
CREATE UNIQUE INDEX verify_factors_one_per_device ON verify_factors (service_id, device_id) WHERE device_id <> 0;

-- verify_challenges: a challenge to one factor. Its status changes once, from pending;
-- an unanswered one past expires_at reads as expired. approval_uuid is the OneTouch approval
-- request a challenge of a device's factor is (approval_requests.uuid), answered by the device.
CREATE TABLE verify_challenges (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id        TEXT    NOT NULL UNIQUE,    -- 32 hex digits; YC… on the wire
    app_id           INTEGER NOT NULL,
    service_id       INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    factor_id        INTEGER NOT NULL,
    status           TEXT    NOT NULL,           -- pending, approved, denied
    responded_reason TEXT    NOT NULL DEFAULT 'none',
    details          TEXT    NOT NULL,           -- JSON
    hidden_details   TEXT    NOT NULL,           -- JSON
    failures         INTEGER NOT NULL DEFAULT 0,
    approval_uuid    TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    responded_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX verify_challenges_by_entity ON verify_challenges (service_id, user_id, id);
CREATE INDEX verify_challenges_by_factor ON verify_challenges (factor_id);

-- +goose Down
DROP TABLE verify_challenges;
DROP TABLE verify_factors;
