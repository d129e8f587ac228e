//! The database every case backs up: the test suite's varied schema (schemas and
//! tables with non-ASCII names, enums, arrays, jsonb, a trigger, a partitioned table,
//! sequences, a view, large objects) plus what a release must also carry: bytea holding
//! every byte value, row-level security, and the contrib extensions every gated major
//! ships, used by a table.

use crate::common;

/// The SQL that fills the source database.
pub fn sql() -> String {
    format!("{}\n{EXTRA}", common::varied_schema(500))
}

const EXTRA: &str = r#"
CREATE SCHEMA gate;
CREATE TABLE gate.bytes (b int PRIMARY KEY, v bytea NOT NULL);
INSERT INTO gate.bytes SELECT g, set_byte('\x00'::bytea, 0, g) FROM generate_series(0, 255) g;
INSERT INTO gate.bytes
SELECT 256, string_agg(set_byte('\x00'::bytea, 0, g), ''::bytea ORDER BY g)
FROM generate_series(0, 255) g;

CREATE TABLE gate.tenant_rows (tenant text NOT NULL, secret text NOT NULL);
ALTER TABLE gate.tenant_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE gate.tenant_rows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gate.tenant_rows
    USING (tenant = current_setting('gate.tenant', true));
INSERT INTO gate.tenant_rows VALUES ('a', 'première'), ('b', 'zweite'), ('c', '第三');

CREATE EXTENSION hstore;
CREATE EXTENSION citext;
CREATE EXTENSION ltree;
CREATE EXTENSION pgcrypto;
CREATE TABLE gate.extension_types (
    id int PRIMARY KEY, h hstore, c citext, l ltree, digest bytea
);
INSERT INTO gate.extension_types
SELECT g, hstore('k' || g, 'wert ' || g), 'Ünïcode ' || g, ('top.n' || g)::ltree,
       digest('row ' || g, 'sha256')
FROM generate_series(1, 200) g;
"#;
