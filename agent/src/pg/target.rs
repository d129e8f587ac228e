//! What a restore target already holds.

use super::conninfo::DatabaseUrl;
use super::server::{connect, failure, within_timeout};
use crate::error::Result;
use sqlx::Connection;

/// Schemas other than `public` and the system's, and relations (tables, views,
/// sequences, …) in any schema but the system's: what a backup's restore could collide
/// or mix with.
const USER_OBJECTS: &str = "SELECT \
     (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public', 'pg_catalog', \
       'information_schema') AND nspname NOT LIKE 'pg\\_toast%' \
       AND nspname NOT LIKE 'pg\\_temp\\_%') \
   + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%')";

/// How many user schemas and relations the database at `url` has (0: empty).
pub async fn user_objects(url: &DatabaseUrl) -> Result<i64> {
    let mut conn = connect(url).await?;
    within_timeout(url, async {
        let n: i64 = sqlx::query_scalar(USER_OBJECTS)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| failure(url, "looking for existing objects in", e))?;
        let _ = conn.close().await;
        Ok(n)
    })
    .await
}
