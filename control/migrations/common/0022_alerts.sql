-- Alerts: where an organisation is told (a channel: a webhook or a Slack-compatible
-- incoming webhook, its URL sealed like every credential, a webhook's signing key too;
-- or e-mail over SMTP, its settings in the clear and its password sealed),
-- what it is told about (one open alert per kind and subject; an event kind, such as a
-- failed job, is opened and closed at once and never repeats), and every delivery with
-- its attempts (the delivery log).
CREATE TABLE alert_channels (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    host TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    secret_id TEXT,
    signing_secret_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    summary TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    cleared_at BIGINT,
    last_sent_at BIGINT NOT NULL,
    repeats BIGINT NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (org_id, kind, subject) WHERE cleared_at IS NULL;
CREATE INDEX alerts_subject ON alerts (org_id, kind, subject);
CREATE TABLE alert_deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    alert_id TEXT,
    channel_id TEXT NOT NULL,
    channel_name TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('open', 'repeat', 'clear', 'test')),
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (state, next_attempt_at);
CREATE INDEX alert_deliveries_org ON alert_deliveries (org_id, created_at);
