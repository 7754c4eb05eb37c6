-- Sessions of the web console (docs/console.md). The cookie holds a random
-- 32-byte token; only its SHA-256 is kept here, like api_keys.key_hash. A
-- session is as good as its key: the key is checked on every request, and a
-- deleted key takes its sessions with it. csrf_token is the value a
-- cookie-authenticated write must echo in X-CSRF-Token (useless without the
-- cookie, so kept as is). Expired rows are deleted when someone signs in.
CREATE TABLE console_sessions (
    token_hash text        PRIMARY KEY CHECK (token_hash <> ''),
    key_id     uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token text        NOT NULL CHECK (csrf_token <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_key_idx ON console_sessions (key_id);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
