//! People and how they prove who they are: accounts and their passwords, signing in
//! with sessions and second factors, membership of organisations with a role,
//! invitations, API tokens for automation, and the throttle that counts failed
//! attempts.
//!
//! Lower modules never reach up: [`passwords`] and [`roles`] depend on nothing here;
//! [`users`] and [`sessions`] build on them; [`members`] and [`invitations`] share the
//! rules of who may grant what in [`roles`].

pub mod api_tokens;
pub mod invitations;
pub mod members;
pub mod memberships;
pub mod passwords;
pub mod roles;
pub mod second_factor;
pub mod sessions;
pub mod throttle;
pub mod totp;
pub mod users;
