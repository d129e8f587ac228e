//! An organisation's objects of one kind (databases, destinations) as listed and looked
//! up: the same two queries over each kind's table, scoped to the organisation.

use crate::db::Db;
use crate::error::{is_id, Result};
use sqlx::any::AnyRow;

/// Where one kind of an organisation's objects is stored.
pub(super) struct Objects {
    /// The table.
    pub table: &'static str,
    /// The columns an object's info is read from.
    pub columns: &'static str,
    /// What its ids start with (`dbs`, `dst`).
    pub id_prefix: &'static str,
}

impl Objects {
    /// The organisation's objects, by name.
    pub async fn list<T>(&self, db: &Db, org_id: &str) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
    {
        let (columns, table) = (self.columns, self.table);
        let sql = format!("SELECT {columns} FROM {table} WHERE org_id = $1 ORDER BY name");
        Ok(sqlx::query_as(&sql)
            .bind(org_id)
            .fetch_all(db.pool())
            .await?)
    }

    /// One object of the organisation: none for another organisation's, or for an id of
    /// another kind.
    pub async fn get<T>(&self, db: &Db, org_id: &str, id: &str) -> Result<Option<T>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
    {
        if !is_id(id, self.id_prefix) {
            return Ok(None);
        }
        let (columns, table) = (self.columns, self.table);
        let sql = format!("SELECT {columns} FROM {table} WHERE org_id = $1 AND id = $2");
        Ok(sqlx::query_as(&sql)
            .bind(org_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?)
    }
}
