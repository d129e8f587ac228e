//! PostgreSQL: the connection URL, the server's version and size, and the matching
//! `pg_dump`/`pg_restore`.

pub mod conninfo;
pub mod server;
pub mod tools;

pub use conninfo::DatabaseUrl;
pub use server::ServerInfo;
pub use tools::PgTool;
