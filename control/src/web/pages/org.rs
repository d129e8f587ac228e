//! What every page of one organisation (`/orgs/{org}/…`) starts with: the person's
//! membership, checked like the API checks it (`accounts::members::role_of`), and the
//! organisation's own navigation.
//!
//! Not a member, no such organisation and a malformed id are the same "no such page"
//! (404), so a page never tells an outsider that an organisation exists. A member below
//! the role a page or form needs gets a 403 page that says which role it needs; pages
//! also leave out every control the person's role cannot use, so the refusal is for
//! hand-made requests.

use crate::accounts::members;
use crate::accounts::roles::Role;
use crate::error::is_id;
use crate::http::AppState;
use crate::web::layout::{self, Area, Nav};
use crate::web::session::{Person, Visitor};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

/// The areas of an organisation, in navigation order: path under `/orgs/{org}/`, label,
/// and the lowest role that may use the page (a link nobody below it sees). Later flows
/// (overview, members, …) add theirs here.
pub const ORG_NAV: [(&str, &str, Role); 11] = [
    ("", "Overview", Role::Viewer),
    ("agents", "Agents", Role::Viewer),
    ("databases", "Databases", Role::Viewer),
    ("destinations", "Destinations", Role::Viewer),
    ("schedules", "Schedules", Role::Viewer),
    ("backups", "Backups", Role::Viewer),
    ("jobs", "Jobs", Role::Viewer),
    ("alerts", "Alerts", Role::Viewer),
    ("members", "Members", Role::Admin),
    ("audit", "Audit", Role::Admin),
    ("recovery-key", "Recovery key", Role::Owner),
];

/// A signed-in person's standing in the organisation a page is about.
#[derive(Debug, Clone)]
pub struct Member {
    /// `org_…`.
    pub org_id: String,
    /// The organisation's name.
    pub org_name: String,
    /// Their role there.
    pub role: Role,
    /// The audit actor (`user:…`), as the API records it.
    pub actor: String,
}

impl Member {
    /// The 403 page when the person's role is below `min`; none when it is enough.
    pub fn refused_below(&self, min: Role) -> Option<Response> {
        if self.role >= min {
            return None;
        }
        Some(layout::refused(
            StatusCode::FORBIDDEN,
            &format!(
                "This needs the {min} role or higher in {}; you are {}. Nothing was changed.",
                self.org_name, self.role
            ),
        ))
    }

    /// The member as the members and invitations modules want an actor.
    pub fn as_actor<'a>(&'a self, user_id: &'a str) -> crate::accounts::roles::Actor<'a> {
        crate::accounts::roles::Actor {
            name: &self.actor,
            user_id: Some(user_id),
            role: self.role,
        }
    }

    /// The path of one of the organisation's pages (its overview for `""`).
    pub fn path(&self, rest: &str) -> String {
        if rest.is_empty() {
            return format!("/orgs/{}", self.org_id);
        }
        format!("/orgs/{}/{rest}", self.org_id)
    }
}

/// The person's membership of `org_id`, or the page that refuses them.
pub async fn member(state: &AppState, visitor: &Visitor, org_id: &str) -> Result<Member, Response> {
    if !is_id(org_id, "org") {
        return Err(layout::not_found());
    }
    let user_id = &visitor.session.user_id;
    let role = members::role_of(&state.db, org_id, user_id)
        .await
        .map_err(|e| layout::failure(&e))?
        .ok_or_else(layout::not_found)?;
    let org = crate::orgs::get(&state.db, org_id)
        .await
        .map_err(|e| layout::failure(&e))?
        .ok_or_else(layout::not_found)?;
    Ok(Member {
        org_id: org.id,
        org_name: org.name,
        role,
        actor: crate::http::auth::Caller::Person(visitor.session.clone()).actor(),
    })
}

/// A signed-in person on one of an organisation's pages (`/orgs/{org}/…`): who they
/// are, and their membership of the path's organisation — or, as the rejection, the
/// page that refuses them ([`member`]). Handlers then check only the role they need.
#[derive(Debug, Clone)]
pub struct OrgPage {
    /// Who is signed in.
    pub visitor: Visitor,
    /// Their standing in the organisation of the path.
    pub member: Member,
}

impl FromRequestParts<AppState> for OrgPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Person(visitor) = Person::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| e.into_response())?;
        let org_id = params
            .iter()
            .find(|(name, _)| *name == "org")
            .map(|(_, value)| value.to_string())
            .ok_or_else(layout::not_found)?;
        let member = member(state, &visitor, &org_id).await?;
        Ok(Self { visitor, member })
    }
}

/// The site header's navigation for an organisation's page.
pub fn nav(visitor: &Visitor) -> Nav<'_> {
    Nav {
        email: &visitor.email,
        csrf: &visitor.csrf,
        current: Some(Area::Organisations),
        menu: true,
    }
}

/// The organisation's own navigation, `current` marked.
pub fn org_nav(member: &Member, current: &str) -> Markup {
    html! {
        nav.org aria-label=(format!("{} (your role: {})", member.org_name, member.role)) {
            p.org-name { (member.org_name) " · " span.hint { "your role: " (member.role) } }
            ul {
                @for (path, label, _) in ORG_NAV.iter().filter(|(_, _, min)| member.role >= *min) {
                    li {
                        @if *path == current {
                            a href=(member.path(path)) aria-current="page" { (label) }
                        } @else {
                            a href=(member.path(path)) { (label) }
                        }
                    }
                }
            }
        }
    }
}
