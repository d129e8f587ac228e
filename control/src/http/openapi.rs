//! The OpenAPI document of both listeners, generated from the handlers' own request and
//! answer types (`#[utoipa::path]` on each handler, `ToSchema` on each type), so the
//! document cannot describe a shape the code does not have. It is built once, when the
//! first router is made, and served at `/api/v1/openapi.json`; `control/openapi.json`
//! is the same text checked in for readers, and the API tests keep the two equal and
//! validate every documented answer against a real one (`control/tests/api/openapi.rs`).
//!
//! The error answers every route shares are in [`super::error_doc`].

use super::error_doc::ErrorBody;
use super::{
    account_api, agent_admin_api, agent_api, alert_api, audit_api, backup_api, database_api,
    drill_api, invitation_api, member_api, org_api, schedule_api, session_api, token_api,
};
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

/// Adds the security schemes the operations name.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "the session cookie set by POST /api/v1/session; state-changing requests \
                 also send its CSRF token in X-CSRF-Token",
            ))),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("an API token, dbct_…".into());
        components.add_security_scheme("token", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "agentCertificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "the agent's client certificate, on the agent listener \
                     (DBCRATE_AGENT_LISTEN)"
                        .into(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    }
}

/// The document: every route of [`super::router`] and [`super::agent_router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dbcrate control plane API",
        version = "1",
        description = "JSON over HTTPS. Errors are {\"error\": {\"code\", \"message\"}} with a \
            stable code. Browsers authenticate with the session cookie and must send \
            X-CSRF-Token on POST/PATCH/DELETE; programs send Authorization: Bearer dbct_…. \
            Another organisation's objects are 404, like missing ones. Unknown JSON fields are \
            refused (except by the agent routes, whose peers upgrade on their own schedule); \
            bodies are capped at 64 KiB. Generated from the control plane's code.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "https://localhost:8443")),
    security(("session" = []), ("token" = [])),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    paths(
        super::openapi_document,
        session_api::sign_in,
        session_api::current,
        session_api::sign_out,
        session_api::step_up,
        account_api::change_password,
        account_api::begin_second_factor,
        account_api::confirm_second_factor,
        account_api::disable_second_factor,
        org_api::list,
        org_api::show,
        org_api::export_recovery_key,
        org_api::enable_customer_seal,
        org_api::disable_customer_seal,
        member_api::list,
        member_api::add,
        member_api::change_role,
        member_api::remove,
        member_api::reset_password,
        invitation_api::list,
        invitation_api::revoke,
        invitation_api::accept,
        invitation_api::create_account,
        token_api::list,
        token_api::create,
        token_api::revoke,
        audit_api::query,
        agent_admin_api::create_enrolment_token,
        agent_admin_api::list,
        agent_admin_api::revoke,
        database_api::list_databases,
        database_api::create_database,
        database_api::show_database,
        database_api::update_database,
        schedule_api::list_schedules,
        schedule_api::create_schedule,
        schedule_api::update_schedule,
        backup_api::list_destinations,
        backup_api::create_destination,
        schedule_api::run_schedule_now,
        schedule_api::set_schedule_grace,
        drill_api::set_schedule_drills,
        drill_api::stop_schedule_drills,
        drill_api::list_drills,
        backup_api::list_backups,
        backup_api::create_restore,
        alert_api::create_channel,
        alert_api::list_channels,
        alert_api::delete_channel,
        alert_api::test_channel,
        alert_api::list_alerts,
        alert_api::list_deliveries,
        agent_api::enroll,
        agent_api::renew,
        agent_api::config,
        agent_api::crl,
        agent_api::next_job,
        agent_api::job_credentials,
        agent_api::job_progress,
        agent_api::job_complete,
    )
)]
pub struct ApiDoc;

/// The document as served: pretty JSON with a final newline, made once.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        text.push('\n');
        text
    });
    &DOCUMENT
}
