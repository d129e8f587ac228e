//! PostgreSQL: the connection URL, the server's version and size, the matching
//! `pg_dump`/`pg_restore`, and the roles and objects a restore finds already there.

pub mod conninfo;
pub mod roles;
pub mod row_counts;
pub mod server;
pub mod statements;
pub mod target;
pub mod tools;

pub use conninfo::DatabaseUrl;
pub use server::ServerInfo;
pub use tools::PgTool;
