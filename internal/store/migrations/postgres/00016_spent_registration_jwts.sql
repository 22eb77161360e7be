-- +goose Up
-- Spent registration JWTs, by the MACs of what they mean (devices.RegisterWithJWT). They were
-- rows of registration_tokens, which go with their user: once the customer removed the user, the
-- JWT could be spent again until it expired, making the user again with the replayer's device.
-- Here they stay until the token has expired (the sweep) or the application is deleted. The used rows of registration_tokens that
-- have not expired come along, as they may be JWTs spent (by their text) before this table.
CREATE TABLE spent_registration_jwts (
    mac        BYTEA   PRIMARY KEY,
    app_id     BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    spent_at   BIGINT  NOT NULL
);
CREATE INDEX spent_registration_jwts_by_expiry ON spent_registration_jwts (expires_at);
INSERT INTO spent_registration_jwts (mac, app_id, expires_at, spent_at)
    SELECT mac, app_id, expires_at, used_at FROM registration_tokens
    WHERE used_at IS NOT NULL AND expires_at > EXTRACT(EPOCH FROM now())::BIGINT
        AND app_id IN (SELECT id FROM apps);

-- +goose Down
DROP TABLE spent_registration_jwts;
