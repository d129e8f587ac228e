//! Flow 10, the invited person's side: the inviter's page says where to go; a newcomer
//! creates their account with the token (twice the same password, the token never put
//! back into the form) and joins; the token works once; a signed-in account with
//! another address is refused; an address that has an account signs in first and joins
//! from its organisations page.

use crate::harness::{Dashboard, Pages, ORG};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::browser::Browser;
use serde_json::json;

const NEWCOMER_PASSWORD: &str = "the newcomer's own passphrase";

/// Invites `email` as `role` from the members page; answers the token shown once.
fn invite(d: &Dashboard, b: &Browser, email: &str, role: &str) -> String {
    b.goto(&d.url(&format!("/orgs/{}/members", d.org_id)))
        .unwrap();
    b.fill_in("#email", email).unwrap();
    b.choose("#invite-role", role).unwrap();
    b.submit("form[action$='/members'] button").unwrap();
    let shown = b.text_of("main").unwrap();
    assert!(shown.contains("/invitations/accept"), "{shown}");
    b.text_of("pre.command code").unwrap()
}

/// Fills the signed-out form and sends it.
fn create_account(b: &Browser, token: &str, password: &str, repeat: &str) {
    b.fill_in("#token", token).unwrap();
    b.fill_in("#new_password", password).unwrap();
    b.fill_in("#repeat_password", repeat).unwrap();
    b.submit("main form button[type=submit]").unwrap();
}

fn alert(b: &Browser) -> String {
    b.text_of("[role=alert]").unwrap()
}

#[test]
fn flow_10_invitations_are_accepted_in_the_browser_by_new_and_existing_accounts() {
    let d = Dashboard::start();
    let admin = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let elsewhere = d.other_org();
    let existing = d.add_person("existing@example.com", Role::Viewer, &elsewhere);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow10-invitations");
    let accept = d.url("/invitations/accept");
    d.sign_in(&b, "admin@example.com", &admin);
    let newcomer_token = invite(&d, &b, "newcomer@example.com", "operator");
    let existing_token = invite(&d, &b, "existing@example.com", "viewer");

    // Signed in as someone else: the token is refused, and stays good.
    b.goto(&accept).unwrap();
    assert_eq!(b.title().unwrap(), "Accept an invitation · dbcrate");
    pages.check("accept-signed-in");
    b.fill_in("#token", &newcomer_token).unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(
        alert(&b).contains("another e-mail address"),
        "{}",
        alert(&b)
    );
    pages.check("accept-other-address");
    b.submit("form.sign-out button").unwrap();

    // Signed out: a new account. Passwords that differ change nothing.
    b.goto(&accept).unwrap();
    pages.check("accept-signed-out");
    create_account(
        &b,
        &newcomer_token,
        NEWCOMER_PASSWORD,
        "something else entirely",
    );
    assert!(alert(&b).contains("differ"), "{}", alert(&b));
    let token_value = b
        .execute("return document.querySelector('#token').value;", json!([]))
        .unwrap();
    assert_eq!(token_value, json!(""), "the token is not put back");
    create_account(&b, &newcomer_token, NEWCOMER_PASSWORD, NEWCOMER_PASSWORD);
    assert_eq!(b.title().unwrap(), format!("You joined {ORG} · dbcrate"));
    let joined = b.text_of("[role=status]").unwrap();
    assert!(
        joined.contains(&format!("You are now an operator of {ORG}")),
        "{joined}"
    );
    pages.check("accept-joined-new-account");

    // The token worked once.
    b.goto(&accept).unwrap();
    create_account(&b, &newcomer_token, NEWCOMER_PASSWORD, NEWCOMER_PASSWORD);
    assert!(
        !alert(&b).is_empty(),
        "a used token is refused: {}",
        b.text_of("main").unwrap()
    );
    d.sign_in(&b, "newcomer@example.com", NEWCOMER_PASSWORD);
    let row = b.text_of("tbody tr").unwrap();
    assert!(row.contains(ORG) && row.contains("operator"), "{row}");
    b.submit("form.sign-out button").unwrap();

    // An address with an account cannot make a second one: it signs in and accepts.
    b.goto(&accept).unwrap();
    create_account(&b, &existing_token, NEWCOMER_PASSWORD, NEWCOMER_PASSWORD);
    assert!(alert(&b).contains("sign in as it"), "{}", alert(&b));
    d.sign_in(&b, "existing@example.com", &existing);
    b.click_through(&b.find("a[href='/invitations/accept']").unwrap())
        .unwrap();
    b.fill_in("#token", &existing_token).unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(
        b.text_of("[role=status]")
            .unwrap()
            .contains(&format!("You are now a viewer of {ORG}")),
        "{}",
        b.text_of("main").unwrap()
    );
    pages.check("accept-joined-existing-account");
    b.click_through(&b.find(&format!("a[href='/orgs/{}']", d.org_id)).unwrap())
        .unwrap();
    assert_eq!(b.title().unwrap(), format!("{ORG} · dbcrate"));

    let actions = d.audited_actions();
    let count = |action: &str| actions.iter().filter(|a| *a == action).count();
    assert_eq!(count("invitation.accept"), 2, "{actions:?}");
    assert!(count("invitation.refused") >= 2, "{actions:?}");
}
