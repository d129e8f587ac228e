//! What the control plane's audit log holds, as tests assert it.
//!
//! Why here, and why it reads the `audit_log` table instead of calling
//! `dbcrate_control::audit::rows`: the control plane's test binaries each asserted "these
//! actions are audited" with a copy of the same loop, and the kit cannot depend on the
//! control plane (whose tests depend on the kit). The columns read — the chain
//! (`org_id`), the `action`, the order of insertion (`id`) — are the audit log's
//! stable core, which the agent's tests already query directly too.

use sqlx::AnyPool;

/// The actions recorded in audit chain `chain` (an organisation id, or the instance
/// chain `_instance`), oldest first.
///
/// # Panics
/// When the audit log cannot be read.
pub async fn audited_actions(pool: &AnyPool, chain: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE org_id = $1 ORDER BY id")
        .bind(chain)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("reading audit chain {chain}: {e}"))
}

/// Asserts that audit chain `chain` holds every one of `actions` (in any order, among
/// others); the failure names the missing action and lists the chain's.
pub async fn assert_audited(pool: &AnyPool, chain: &str, actions: &[&str]) {
    let recorded = audited_actions(pool, chain).await;
    for action in actions {
        assert!(
            recorded.iter().any(|a| a == action),
            "no {action} in audit chain {chain}: {recorded:?}"
        );
    }
}
