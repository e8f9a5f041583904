//! Invites (list, revoke, single-use accept under concurrency) and OIDC identities, on SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `MAXCLOUD_TEST_POSTGRES_URL` like the store suite; without it the PostgreSQL half
//! fails loudly.

use maxcloud_store::{InviteRefused, OidcLogin, Revoked, Role, Store, StoreError};

mod common;

use common::{key, slug};

on_both!(invites_listed_revoked_and_refused, accept_is_single_use_under_concurrency, oidc_identities_follow_claims);

const DAY: i64 = 86_400_000_000;

async fn invites_listed_revoked_and_refused(store: Store) {
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "Beta", slug("beta"), key("b")).await.unwrap();
    let t = &a.tenant.id;
    let pending = store.create_invite(t, &a.user.id, "p@example.com", Role::Member, "inv-p", DAY).await.unwrap();
    let expired = store.create_invite(t, &a.user.id, "e@example.com", Role::Admin, "inv-e", -1).await.unwrap();
    let revoked = store.create_invite(t, &a.user.id, "r@example.com", Role::Member, "inv-r", DAY).await.unwrap();
    let used =
        store.create_invite_with_mail(t, &a.user.id, "u@example.com", Role::Member, "inv-u", DAY, "pending").await;
    let used = used.unwrap();
    store.set_invite_mail(t, &used.id, "sent").await.unwrap();
    store.accept_invite("inv-u", key("u")).await.unwrap();

    // Revoking: another tenant's id is not found and changes nothing; accepted ones cannot be revoked.
    assert_eq!(store.revoke_invite(&b.tenant.id, &revoked.id).await.unwrap(), Revoked::NotFound);
    assert_eq!(store.revoke_invite(t, "no-such-id").await.unwrap(), Revoked::NotFound);
    assert_eq!(store.revoke_invite(t, &revoked.id).await.unwrap(), Revoked::Done);
    assert_eq!(store.revoke_invite(t, &revoked.id).await.unwrap(), Revoked::AlreadyRevoked);
    assert_eq!(store.revoke_invite(t, &used.id).await.unwrap(), Revoked::AlreadyAccepted);

    let list = store.invites(t).await.unwrap();
    let states: Vec<(&str, &str, &str, &str)> = list
        .iter()
        .map(|i| (i.invite.email.as_str(), i.state, i.invite.mail.as_str(), i.invited_by.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("u@example.com", "accepted", "sent", "a@example.com"),
            ("r@example.com", "revoked", "none", "a@example.com"),
            ("e@example.com", "expired", "none", "a@example.com"),
            ("p@example.com", "pending", "none", "a@example.com"),
        ],
        "newest first, each with its state"
    );
    assert!(list.iter().any(|i| i.invite.id == pending.id && i.invite.revoked_at.is_none()));
    assert!(list.iter().any(|i| i.invite.id == expired.id && i.invite.accepted_at.is_none()));
    assert!(store.invites(&b.tenant.id).await.unwrap().is_empty(), "invites are per organisation");

    // Each refusal says why, and writes nothing.
    let before = store.table_counts().await.unwrap();
    for (hash, why) in [
        ("inv-u", InviteRefused::Accepted),
        ("inv-e", InviteRefused::Expired),
        ("inv-r", InviteRefused::Revoked),
        ("inv-none", InviteRefused::Unknown),
    ] {
        let got = store.try_accept_invite(hash, key(&format!("x-{hash}"))).await.unwrap();
        assert_eq!(got.err(), Some(why), "{hash}");
    }
    assert_eq!(store.table_counts().await.unwrap(), before, "a refused accept writes nothing");
    assert!(
        matches!(store.accept_invite("inv-r", key("r2")).await.unwrap_err(), StoreError::InvalidState(m) if m.contains("revoked"))
    );

    // An unsent invite can be removed (the mail failed); an accepted one cannot.
    assert!(store.delete_unsent_invite(t, &pending.id).await.unwrap());
    assert!(!store.delete_unsent_invite(t, &used.id).await.unwrap());
    assert_eq!(store.invites(t).await.unwrap().len(), 3);
}

async fn accept_is_single_use_under_concurrency(store: Store) {
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    store.create_invite(&a.tenant.id, &a.user.id, "n@example.com", Role::Member, "inv-c", DAY).await.unwrap();
    let tries: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.try_accept_invite("inv-c", key(&format!("c{i}"))).await })
        })
        .collect();
    let mut won = 0;
    let mut used = 0;
    for t in tries {
        match t.await.unwrap().unwrap() {
            Ok(j) => {
                won += 1;
                assert_eq!(j.user.email, "n@example.com");
            }
            Err(InviteRefused::Accepted) => used += 1,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!((won, used), (1, 7), "exactly one accept wins");
    let members = store.members(&a.tenant.id).await.unwrap();
    assert_eq!(members.len(), 2);
    let counts = store.table_counts().await.unwrap();
    assert_eq!((counts["api_keys"], counts["users"]), (2, 2), "one key and one user from the invite");
}

fn login(sub: &str, email: &str, grants: &[(&str, Role)]) -> OidcLogin {
    OidcLogin {
        issuer: "https://idp.example/realms/acme".into(),
        subject: sub.into(),
        email: email.into(),
        email_verified: false,
        grants: grants.iter().map(|(s, r)| (s.to_string(), *r)).collect(),
    }
}

async fn oidc_identities_follow_claims(store: Store) {
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "Beta", slug("beta"), key("b")).await.unwrap();

    // A first login whose claims grant no existing organisation creates nothing.
    let before = store.table_counts().await.unwrap();
    let err = store.oidc_sync(&login("sub-0", "ghost@example.com", &[("nope", Role::Admin)])).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("organisation")), "{err:?}");
    assert_eq!(store.table_counts().await.unwrap(), before);

    // First login creates the user and the memberships the claims grant; unknown organisations are reported.
    let first = store
        .oidc_sync(&login("sub-1", "sso@example.com", &[("acme", Role::Admin), ("nope", Role::Member)]))
        .await
        .unwrap();
    assert_eq!(first.user.email, "sso@example.com");
    assert_eq!(first.tenants.iter().map(|(t, r)| (t.slug.as_str(), *r)).collect::<Vec<_>>(), [("acme", Role::Admin)]);
    assert_eq!(first.unknown, ["nope"]);
    let members = store.members(&a.tenant.id).await.unwrap();
    assert!(members.iter().any(|m| m.user.email == "sso@example.com" && m.role == Role::Admin));

    // The same identity again: the same user, nothing written.
    let before = store.table_counts().await.unwrap();
    let again = store.oidc_sync(&login("sub-1", "sso@example.com", &[("acme", Role::Admin)])).await.unwrap();
    assert_eq!(again.user.id, first.user.id);
    assert_eq!(store.table_counts().await.unwrap(), before);

    // The role follows the claim; a removed grant removes the membership; a new one adds it.
    store
        .oidc_sync(&login("sub-1", "sso@example.com", &[("acme", Role::Member), ("beta", Role::Member)]))
        .await
        .unwrap();
    let role_in =
        |members: Vec<maxcloud_store::Member>| members.into_iter().find(|m| m.user.id == first.user.id).map(|m| m.role);
    assert_eq!(role_in(store.members(&a.tenant.id).await.unwrap()), Some(Role::Member));
    assert_eq!(role_in(store.members(&b.tenant.id).await.unwrap()), Some(Role::Member));
    let none = store.oidc_sync(&login("sub-1", "sso@example.com", &[("beta", Role::Member)])).await.unwrap();
    assert_eq!(none.tenants.len(), 1);
    assert_eq!(role_in(store.members(&a.tenant.id).await.unwrap()), None, "the IdP removed the role");
    assert_eq!(role_in(store.members(&b.tenant.id).await.unwrap()), Some(Role::Member));

    // Another identity with a registered user's e-mail: refused unless the IdP asserts it verified.
    let err = store.oidc_sync(&login("sub-2", "b@example.com", &[("acme", Role::Member)])).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "email", .. }), "{err:?}");
    let mut verified = login("sub-2", "b@example.com", &[("acme", Role::Member)]);
    verified.email_verified = true;
    let linked = store.oidc_sync(&verified).await.unwrap();
    assert_eq!(linked.user.id, b.user.id, "linked to the existing user");
    // Removing the claim removes only the membership the claim granted, not b's own organisation.
    let mut dropped = verified.clone();
    dropped.grants.clear();
    store.oidc_sync(&dropped).await.unwrap();
    assert_eq!(role_in(store.members(&b.tenant.id).await.unwrap()), Some(Role::Member), "sub-1 untouched");
    assert!(store.members(&b.tenant.id).await.unwrap().iter().any(|m| m.user.id == b.user.id && m.role == Role::Admin));
    assert!(!store.members(&a.tenant.id).await.unwrap().iter().any(|m| m.user.id == b.user.id));
}
