//! Flow 7, backups and restores: the organisation's backups, newest first, filtered by
//! database and age, a page at a time (`backups::history`) — size, duration, the
//! PostgreSQL and pg_dump versions, the SHA-256 of the stored object — and a managed
//! restore: choose the target database, confirm by typing its name, then watch the
//! restore's job page.
//!
//! Any member reads; a restore needs admin or owner, as the API's
//! `POST /api/v1/orgs/{org}/restores` (`backups::restores::create_with_passphrase`,
//! audited; a customer-sealed organisation's passphrase is asked for on the form).

use super::jobs::{database_names, name_of};
use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::backups::history::{self, After, BackupFilter, BackupRecord, PAGE_SIZE};
use crate::backups::restores;
use crate::error::Error;
use crate::http::AppState;
use crate::orgs::{self, KeyMode};
use crate::secrets::customer_seal::Passphrase;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, page};
use crate::web::session::Visitor;
use crate::web::units::{bytes, duration};
use crate::web::when;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;

/// The ages the list can be limited to: days, label.
const AGES: [(i64, &str); 4] = [
    (1, "the last day"),
    (7, "the last week"),
    (31, "the last month"),
    (366, "the last year"),
];

/// The list's filters and page.
#[derive(Debug, Default, Deserialize)]
pub struct BackupQuery {
    #[serde(default)]
    database: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    after: String,
}

fn filters(member: &Member, query: &BackupQuery, names: &[(String, String)]) -> Markup {
    html! {
        form.filters method="get" action=(member.path("backups")) {
            div.field {
                label for="database" { "Database" }
                select id="database" name="database" {
                    option value="" { "any" }
                    @for (id, name) in names {
                        option value=(id) selected[&query.database == id] { (name) }
                    }
                }
            }
            div.field {
                label for="days" { "Finished in" }
                select id="days" name="days" {
                    option value="" { "any time" }
                    @for (days, label) in AGES {
                        option value=(days) selected[query.days == days.to_string()] { (label) }
                    }
                }
            }
            div.actions { button type="submit" { "Show" } }
        }
    }
}

fn backup_rows(
    member: &Member,
    list: &[BackupRecord],
    names: &[(String, String)],
    now: i64,
) -> Markup {
    let may_restore = member.role >= Role::Admin;
    html! {
        table.stack {
            caption.hint { "Backups, newest first." }
            thead { tr {
                th scope="col" { "Finished" } th scope="col" { "Database" } th scope="col" { "Size" }
                th scope="col" { "Took" } th scope="col" { "Versions" } th scope="col" { "SHA-256" }
                @if may_restore { th scope="col" { "Action" } }
            } }
            tbody {
                @for b in list {
                    tr {
                        th scope="row" { (when::time(b.finished_at, now)) br; code.id { (b.id) } }
                        td data-label="Database" { (name_of(names, &b.database_id)) }
                        td data-label="Size" {
                            (bytes(b.size))
                            @if let Some(dump) = b.dump_size { br; span.hint { "dump " (bytes(dump)) } }
                            br; span.hint { @match b.globals_size {
                                Some(_) => "with roles",
                                None => "without roles",
                            } }
                        }
                        td data-label="Took" { (duration(b.duration_ms)) }
                        td data-label="Versions" { "server " (b.pg_server_version) br; (b.pg_dump_version) }
                        td data-label="SHA-256" { code.hash { (b.sha256) } }
                        @if may_restore {
                            td data-label="Action" {
                                @if b.deleted_at.is_some() { "deleted by retention" }
                                @else {
                                    a href=(member.path(&format!("backups/{}/restore", b.id))) {
                                        "Restore" span.visually-hidden { " " (b.id) } "…"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /orgs/{org}/backups`.
pub async fn list(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<BackupQuery>,
) -> Response {
    let names = match database_names(&state, &member).await {
        Ok(names) => names,
        Err(failed) => return failed,
    };
    let now = state.now();
    let after = After::parse(&query.after);
    let days: Option<i64> = query
        .days
        .parse()
        .ok()
        .filter(|d| AGES.iter().any(|(a, _)| a == d));
    let filter = BackupFilter {
        database_id: Some(query.database.as_str()).filter(|d| !d.is_empty()),
        since: days.map(|d| now - d * 86_400),
        after: after.as_ref(),
    };
    let list = match history::backups(&state.db, &member.org_id, &filter, PAGE_SIZE).await {
        Ok(list) => list,
        Err(e) => return layout::failure(&e),
    };
    let older = history::next_page(&list, PAGE_SIZE).map(|after| {
        member.path(&format!(
            "backups?database={}&days={}&after={}",
            query.database,
            query.days,
            after.token()
        ))
    });
    let body = html! {
        (org::org_nav(&member, "backups"))
        (filters(&member, &query, &names))
        @if list.is_empty() { p { "No backups match." } }
        @else { (backup_rows(&member, &list, &names, now)) }
        @if let Some(older) = older { p { a href=(older) { "Older backups" } } }
    };
    answer(
        StatusCode::OK,
        page("Backups", Some(org::nav(&visitor)), body),
    )
}

/// The restore form.
#[derive(Debug, Default, Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    target_database_id: String,
    #[serde(default)]
    confirm_name: String,
    #[serde(default)]
    passphrase: Option<SecretString>,
}

/// What the restore pages need: the member (admin or owner), the backup, the names.
struct Restoring {
    member: Member,
    backup: BackupRecord,
    names: Vec<(String, String)>,
    sealed: bool,
}

async fn restoring(state: &AppState, member: Member, id: &str) -> Result<Restoring, Response> {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return Err(refused);
    }
    let backup = history::backup(&state.db, &member.org_id, id)
        .await
        .map_err(|e| layout::failure(&e))?
        .ok_or_else(layout::not_found)?;
    let names = database_names(state, &member).await?;
    let sealed = orgs::key_mode(&state.db, &member.org_id)
        .await
        .map_err(|e| layout::failure(&e))?
        == KeyMode::CustomerSealed;
    Ok(Restoring {
        member,
        backup,
        names,
        sealed,
    })
}

fn passphrase_field() -> Markup {
    let mut passphrase = Field::new(
        "The organisation's passphrase",
        "passphrase",
        "password",
        "off",
    );
    passphrase.hint = Some(
        "This organisation's key is sealed with a passphrase only you hold; the restore needs it.",
    );
    field(passphrase)
}

fn restore_page(
    r: &Restoring,
    visitor: &Visitor,
    form: &RestoreForm,
    message: Option<Markup>,
    now: i64,
) -> Markup {
    let b = &r.backup;
    let mut confirm = Field::new(
        "Type the target database's name to confirm",
        "confirm_name",
        "text",
        "off",
    );
    confirm.value = Some(&form.confirm_name);
    confirm.hint = Some("Its tables are replaced by the backup's: what is there now is lost.");
    let chosen = if form.target_database_id.is_empty() {
        &b.database_id
    } else {
        &form.target_database_id
    };
    html! {
        (org::org_nav(&r.member, "backups"))
        @if let Some(message) = message { (message) }
        dl.facts {
            dt { "Backup" } dd { code { (b.id) } }
            dt { "Of" } dd { (name_of(&r.names, &b.database_id)) }
            dt { "Finished" } dd { (when::time(b.finished_at, now)) }
            dt { "Size" } dd { (bytes(b.size)) }
            dt { "SHA-256" } dd { code.hash { (b.sha256) } }
        }
        @if b.deleted_at.is_some() {
            (error_message("Retention deleted this backup: it cannot be restored."))
        } @else {
            form method="post" action=(r.member.path(&format!("backups/{}/restore", b.id))) {
                (csrf_field(&visitor.csrf))
                div.field {
                    label for="target_database_id" { "Restore into" }
                    select id="target_database_id" name="target_database_id" required {
                        @for (id, name) in &r.names {
                            option value=(id) selected[id == chosen] { (name) }
                        }
                    }
                }
                (field(confirm))
                @if r.sealed { (passphrase_field()) }
                div.actions {
                    button.danger type="submit" { "Restore" }
                    a href=(r.member.path("backups")) { "Cancel" }
                }
            }
        }
    }
}

/// `GET /orgs/{org}/backups/{backup}/restore`.
pub async fn restore_form(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let r = match restoring(&state, member, &id).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let body = restore_page(&r, &visitor, &RestoreForm::default(), None, state.now());
    answer(
        StatusCode::OK,
        page("Restore a backup", Some(org::nav(&visitor)), body),
    )
}

/// `POST /orgs/{org}/backups/{backup}/restore`: the typed name must be the target's;
/// then the restore is queued and its job page shown.
pub async fn restore(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
    Form(mut form): Form<RestoreForm>,
) -> Response {
    let r = match restoring(&state, member, &id).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let typed = form.passphrase.take();
    let queued = async {
        let target = r
            .names
            .iter()
            .find(|(i, _)| *i == form.target_database_id)
            .ok_or_else(|| Error::invalid("choose the database to restore into"))?;
        if form.confirm_name.trim() != target.1 {
            return Err(Error::invalid(format!(
                "type the target database's name, {}, to confirm: nothing was restored",
                target.1
            )));
        }
        let passphrase = typed
            .filter(|p| !p.expose_secret().is_empty())
            .map(Passphrase::new)
            .transpose()?;
        restores::create_with_passphrase(
            &state.db,
            restores::Access {
                keys: &state.keys,
                reach: &state.reach,
            },
            &r.member.org_id,
            &r.backup.id,
            &form.target_database_id,
            passphrase.as_ref(),
            &r.member.actor,
            state.now(),
        )
        .await
    }
    .await;
    match queued {
        Ok(job) => Redirect::to(&r.member.path(&format!("jobs/{job}"))).into_response(),
        Err(e) => {
            let (status, message) = layout::explain(&e);
            let body = restore_page(
                &r,
                &visitor,
                &form,
                Some(error_message(&message)),
                state.now(),
            );
            answer(
                status,
                page("Restore a backup", Some(org::nav(&visitor)), body),
            )
        }
    }
}
