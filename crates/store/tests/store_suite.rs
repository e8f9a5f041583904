//! The store suite: every test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL comes from `MAXCLOUD_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test.sh` starts a server and sets it. Each
//! test gets a database of its own. Without the variable the PostgreSQL half fails loudly instead of
//! passing silently.

use maxcloud_store::{
    Accepted, Logged, NewPullRequest, Observation, PodUsage, Recorded, ServiceUsage, Store, StoreError, GIB,
};

mod common;

use common::{key, new_order, pr, slug};

on_both!(
    register_and_slugs,
    api_keys_hashed_and_revocable,
    order_lifecycle_auto_merge,
    order_conflicts_and_idempotency,
    review_and_approval,
    review_rejection,
    forge_reviews_and_closing,
    merge_policies_per_tenant,
    invites_add_members,
    failure_undoes_resource_effect,
    tenants_are_isolated,
    audit_log_records_entries,
    migrations_are_idempotent,
    observations_move_orders_and_resources,
    pod_usage_adds_up_exactly,
    sops_keys_one_per_tenant,
);

async fn register_and_slugs(store: Store) {
    let a = store.register("a@example.com", "Acme Shop", slug("acme-shop"), key("a")).await.unwrap();
    assert_eq!(a.tenant.slug, "acme-shop");
    assert_eq!(a.tenant.name, "Acme Shop");
    let b = store.register("b@example.com", "ACME shop", slug("acme-shop"), key("b")).await.unwrap();
    assert_eq!(b.tenant.slug, "acme-shop-2", "a clashing slug gets a suffix");
    let c = store.register("c@example.com", "Acme  Shop", slug("acme-shop"), key("c")).await.unwrap();
    assert_eq!(c.tenant.slug, "acme-shop-3");
    let err = store.register("a@example.com", "Other", slug("other"), key("d")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "email", .. }), "{err:?}");
    assert!(store.tenant_by_slug("other").await.unwrap().is_none(), "a refused registration stores nothing");
    let found = store.tenant_by_slug("acme-shop-2").await.unwrap().unwrap();
    assert_eq!(found.id, b.tenant.id);
    assert_eq!(store.tenants().await.unwrap().len(), 3);
}

async fn api_keys_hashed_and_revocable(store: Store) {
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("first")).await.unwrap();
    let p = store.principal_by_key_hash("hash-first").await.unwrap().unwrap();
    assert_eq!(p.tenant.id, reg.tenant.id);
    assert_eq!(p.user.email, "a@example.com");
    assert_eq!(p.role.as_str(), "admin");
    assert!(store.principal_by_key_hash("mc_first").await.unwrap().is_none(), "lookup is by hash only");
    let second = store.create_api_key(&reg.tenant.id, &reg.user.id, key("second")).await.unwrap();
    assert_eq!(store.api_keys(&reg.tenant.id).await.unwrap().len(), 2);
    let other = store.register("b@example.com", "Other", slug("other"), key("other")).await.unwrap();
    assert!(!store.revoke_api_key(&other.tenant.id, &second.id).await.unwrap(), "no revoking across tenants");
    assert!(store.revoke_api_key(&reg.tenant.id, &second.id).await.unwrap());
    assert!(!store.revoke_api_key(&reg.tenant.id, &second.id).await.unwrap(), "revoking twice reports false");
    assert!(store.principal_by_key_hash("hash-second").await.unwrap().is_none());
    assert_eq!(store.api_keys(&reg.tenant.id).await.unwrap().len(), 1);
    let (_, _) = store.create_git_token(&reg.tenant.id, "git-hash").await.unwrap();
    assert_eq!(store.tenant_by_git_token_hash("git-hash").await.unwrap().as_deref(), Some(reg.tenant.id.as_str()));
    assert!(store.tenant_by_git_token_hash("nope").await.unwrap().is_none());
}

async fn order_lifecycle_auto_merge(store: Store) {
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let t = &reg.tenant.id;
    let order = store.accept_order(new_order(t, "create", "shop")).await.unwrap();
    let Accepted::Created(order) = order else { panic!("expected a new order") };
    assert_eq!(order.state, "accepted");
    let res = store.resource(t, &order.resource_id).await.unwrap().unwrap();
    assert_eq!((res.status.as_str(), res.name.as_str()), ("pending", "shop"));
    assert_eq!(store.tenants_with_pending_orders().await.unwrap(), vec![t.clone()]);
    let pending = store.pending_orders(t, 10).await.unwrap();
    assert_eq!(pending.len(), 1);

    let opened = store.record_pr_opened(&order, pr(&order.id, "c1")).await.unwrap();
    assert_eq!((opened.number, opened.state.as_str()), (1, "open"));
    let again = store.record_pr_opened(&order, pr(&order.id, "c1")).await.unwrap();
    assert_eq!(again.id, opened.id, "opening twice returns the same PR");
    let merged = store.record_merged(&order, pr(&order.id, "c1"), "c1", None).await.unwrap();
    assert_eq!((merged.state.as_str(), merged.merge_commit.as_deref()), ("merged", Some("c1")));
    let stored = store.order(t, &order.id).await.unwrap().unwrap();
    assert_eq!(stored.state, "merged");
    let states: Vec<_> = store.order_events(&order.id).await.unwrap().into_iter().map(|e| e.state).collect();
    assert_eq!(states, ["accepted", "pr_open", "merged"]);
    assert!(store.pending_orders(t, 10).await.unwrap().is_empty());

    // A second order merged in one step gets the next PR number.
    let Accepted::Created(del) = store.accept_order(new_order(t, "delete", "shop")).await.unwrap() else { panic!() };
    assert_eq!(store.resource(t, &del.resource_id).await.unwrap().unwrap().status, "deleting");
    let merged = store.record_merged(&del, pr(&del.id, "c2"), "c2", Some("fast-forward")).await.unwrap();
    assert_eq!(merged.number, 2);
    assert!(store.resource(t, &del.resource_id).await.unwrap().is_none(), "a merged delete removes the resource");
    assert_eq!(store.pull_requests(t).await.unwrap().len(), 2);
    let listed = store.orders(t, 10).await.unwrap();
    assert_eq!(listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [del.id.as_str(), order.id.as_str()]);
    let detailed = store.orders_with_details(t, 1).await.unwrap();
    assert_eq!(detailed.len(), 1, "the limit applies");
    let (o, pr, history) = &detailed[0];
    assert_eq!((o.id.as_str(), pr.as_ref().map(|p| p.number)), (del.id.as_str(), Some(2)));
    assert_eq!(history.iter().map(|e| e.state.as_str()).collect::<Vec<_>>(), ["accepted", "pr_open", "merged"]);
}

async fn order_conflicts_and_idempotency(store: Store) {
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let t = &reg.tenant.id;
    let mut first = new_order(t, "create", "shop");
    first.idempotency_key = Some("k1".into());
    first.request_hash = Some("h1".into());
    let Accepted::Created(created) = store.accept_order(first.clone()).await.unwrap() else { panic!() };
    let mut replay = first.clone();
    replay.id = uuid::Uuid::new_v4().to_string();
    let Accepted::Replayed(replayed) = store.accept_order(replay.clone()).await.unwrap() else {
        panic!("same key and request must replay")
    };
    assert_eq!(replayed.id, created.id);
    replay.request_hash = Some("h2".into());
    let err = store.accept_order(replay).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "Idempotency-Key", .. }), "{err:?}");
    let err = store.accept_order(new_order(t, "create", "shop")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "name", .. }), "{err:?}");
    let err = store.accept_order(new_order(t, "update", "nope")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("resource")), "{err:?}");
    let err = store.accept_order(new_order(t, "delete", "nope")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("resource")), "{err:?}");
    store.accept_order(new_order(t, "delete", "shop")).await.unwrap();
    let err = store.accept_order(new_order(t, "delete", "shop")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "name", .. }), "deleting twice: {err:?}");
    let counts = store.table_counts().await.unwrap();
    assert_eq!(counts["orders"], 2);
    assert_eq!(counts["resources"], 1);
}

async fn review_and_approval(store: Store) {
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let t = &reg.tenant.id;
    let mut o = new_order(t, "create", "db");
    o.merge_policy = "review".into();
    let Accepted::Created(order) = store.accept_order(o).await.unwrap() else { panic!() };
    store.record_pr_opened(&order, pr(&order.id, "c1")).await.unwrap();
    assert!(store.pending_orders(t, 10).await.unwrap().is_empty(), "an unapproved review PR waits");
    assert_eq!(store.pending_reviews(t).await.unwrap().len(), 1);
    // A newer order on the resource supersedes the waiting one; as the resource never reached main, it still
    // creates it.
    let mut newer = new_order(t, "update", "db");
    assert_eq!(newer.merge_policy, "auto", "an update would be merged at once…");
    newer.parameters = r#"{"image":"nginx:2"}"#.into();
    let Accepted::Superseding { order: newer, .. } = store.accept_order(newer).await.unwrap() else { panic!() };
    assert_eq!((newer.action.as_str(), newer.resource_id.as_str()), ("create", order.resource_id.as_str()));
    assert_eq!(newer.merge_policy, "review", "…but it replaces an order in review, so it needs review too");
    let old = store.order(t, &order.id).await.unwrap().unwrap();
    assert_eq!(old.state, "superseded");
    assert_eq!(old.error.as_deref(), Some(format!("superseded by order {}", newer.id).as_str()));
    assert_eq!(store.pull_request_for(&order.id).await.unwrap().unwrap().state, "closed");
    let resource = store.resource(t, &order.resource_id).await.unwrap().unwrap();
    assert_eq!((resource.spec.as_str(), resource.order_id.as_str()), (r#"{"image":"nginx:2"}"#, newer.id.as_str()));
    let order = newer;
    let opened = store.record_pr_opened(&order, pr(&order.id, "c2")).await.unwrap();
    assert_eq!(opened.review_state.as_deref(), Some("pending"));
    let approved = store.approve_order(t, &order.id, "a@example.com").await.unwrap();
    assert!(approved.approved);
    let pr_row = store.pull_request_for(&order.id).await.unwrap().unwrap();
    assert_eq!(
        (pr_row.review_state.as_deref(), pr_row.reviewed_by.clone()),
        (Some("approved"), vec!["a@example.com".to_string()])
    );
    // An approved order is about to be merged: it is not superseded.
    let err = store.accept_order(new_order(t, "update", "db")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "name", .. }), "{err:?}");
    assert_eq!(store.pending_orders(t, 10).await.unwrap().len(), 1);
    let err = store.approve_order(t, &order.id, "a@example.com").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err:?}");
    let Accepted::Created(auto) = store.accept_order(new_order(t, "create", "web")).await.unwrap() else { panic!() };
    let err = store.approve_order(t, &auto.id, "a@example.com").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err:?}");
}

async fn review_rejection(store: Store) {
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let t = &reg.tenant.id;
    let mut o = new_order(t, "create", "db");
    o.merge_policy = "review".into();
    let Accepted::Created(order) = store.accept_order(o).await.unwrap() else { panic!() };
    let err = store.reject_order(t, &order.id, "not yet").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "no PR yet: {err:?}");
    store.record_pr_opened(&order, pr(&order.id, "c1")).await.unwrap();
    let rejected = store.reject_order(t, &order.id, "too expensive").await.unwrap();
    assert_eq!((rejected.state.as_str(), rejected.error.as_deref()), ("rejected", Some("too expensive")));
    assert_eq!(store.pull_request_for(&order.id).await.unwrap().unwrap().state, "closed");
    assert!(store.resource(t, &order.resource_id).await.unwrap().is_none(), "a rejected create leaves no resource");
    assert!(store.pending_orders(t, 10).await.unwrap().is_empty());
    let err = store.reject_order(t, &order.id, "again").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err:?}");
    let err = store.approve_order(t, &order.id, "a@example.com").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err:?}");
    // The name is free again.
    store.accept_order(new_order(t, "create", "db")).await.unwrap();

    // Withdrawing a create that waits for review by deleting: nothing is left to do in Git.
    let mut o = new_order(t, "create", "cache");
    o.merge_policy = "review".into();
    let Accepted::Created(waiting) = store.accept_order(o).await.unwrap() else { panic!() };
    let Accepted::Superseding { order: delete, .. } =
        store.accept_order(new_order(t, "delete", "cache")).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(delete.state, "ready");
    assert!(delete_message(&store, &delete.id).await.contains(&waiting.id));
    assert_eq!(store.order(t, &waiting.id).await.unwrap().unwrap().state, "superseded");
    assert!(store.resource(t, &waiting.resource_id).await.unwrap().is_none());
}

async fn delete_message(store: &Store, order_id: &str) -> String {
    store.order_events(order_id).await.unwrap().into_iter().filter_map(|e| e.message).collect::<Vec<_>>().join(" | ")
}

async fn forge_reviews_and_closing(store: Store) {
    use maxcloud_store::ReviewUpdate;
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let t = &reg.tenant.id;
    let mut o = new_order(t, "create", "db");
    o.merge_policy = "review".into();
    o.reviewers = vec!["dba".into(), "lead".into()];
    o.required_approvals = 2;
    let Accepted::Created(order) = store.accept_order(o).await.unwrap() else { panic!() };
    assert_eq!((order.reviewers.clone(), order.required_approvals), (vec!["dba".to_string(), "lead".to_string()], 2));
    let forge_pr = NewPullRequest {
        number: Some(41),
        url: Some("https://git.example/t/acme/pulls/41".into()),
        ..pr(&order.id, "c1")
    };
    let row = store.record_pr_opened(&order, forge_pr).await.unwrap();
    assert_eq!((row.number, row.url.as_deref()), (41, Some("https://git.example/t/acme/pulls/41")));
    let (found, _) = store.order_by_pull_request(t, 41).await.unwrap().unwrap();
    assert_eq!(found.id, order.id);
    assert!(store.order_by_pull_request(t, 42).await.unwrap().is_none());
    assert_eq!(store.open_forge_pull_requests(10).await.unwrap().len(), 1);

    let changes = ReviewUpdate { state: "changes_requested".into(), reviewed_by: vec!["dba".into()] };
    let now = store.record_review(&order, &changes, false).await.unwrap();
    assert!(!now.approved);
    let approved = ReviewUpdate { state: "approved".into(), reviewed_by: vec!["dba".into(), "lead".into()] };
    let now = store.record_review(&order, &approved, true).await.unwrap();
    assert!(now.approved);
    let messages = delete_message(&store, &order.id).await;
    assert!(
        messages.contains("changes requested by dba") && messages.contains("approved by dba,lead on the pull request"),
        "{messages}"
    );
    let row = store.pull_request_for(&order.id).await.unwrap().unwrap();
    assert_eq!((row.review_state.as_deref(), row.reviewed_by.len()), (Some("approved"), 2));
    // Recording the same review again changes nothing.
    let before = store.order_events(&order.id).await.unwrap().len();
    store.record_review(&order, &approved, true).await.unwrap();
    assert_eq!(store.order_events(&order.id).await.unwrap().len(), before);

    // Closed on the forge: rejected, the resource of the create is gone; a second close is a no-op.
    let mut o = new_order(t, "create", "web");
    o.merge_policy = "review".into();
    let Accepted::Created(web) = store.accept_order(o).await.unwrap() else { panic!() };
    store
        .record_pr_opened(&web, NewPullRequest { number: Some(43), url: Some("u".into()), ..pr(&web.id, "c3") })
        .await
        .unwrap();
    let closed = store.record_pr_closed(&web, "closed by alice without merging").await.unwrap().unwrap();
    assert_eq!((closed.state.as_str(), closed.error.as_deref()), ("rejected", Some("closed by alice without merging")));
    assert!(store.resource(t, &web.resource_id).await.unwrap().is_none());
    assert!(store.record_pr_closed(&web, "again").await.unwrap().is_none());
    assert_eq!(store.pull_request_for(&web.id).await.unwrap().unwrap().state, "closed");

    // Webhook deliveries: the first time only.
    assert!(store.record_delivery("gitea", "d-1", "pull_request").await.unwrap());
    assert!(!store.record_delivery("gitea", "d-1", "pull_request").await.unwrap());
    assert!(store.record_delivery("github", "d-1", "pull_request").await.unwrap());
}

async fn merge_policies_per_tenant(store: Store) {
    use maxcloud_store::MergePolicyRow;
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "Beta", slug("beta"), key("b")).await.unwrap();
    let row = MergePolicyRow {
        tenant_id: a.tenant.id.clone(),
        kind: "App".into(),
        action: "create".into(),
        policy: "review".into(),
        reviewers: vec!["lead".into()],
        required_approvals: 1,
        updated_by: "a@example.com".into(),
        updated_at: 1,
    };
    store.set_merge_policy(&row).await.unwrap();
    store.set_merge_policy(&MergePolicyRow { required_approvals: 2, ..row.clone() }).await.unwrap();
    let got = store.merge_policy(&a.tenant.id, "App", "create").await.unwrap().unwrap();
    assert_eq!(got.required_approvals, 2);
    assert_eq!(store.merge_policies(&a.tenant.id).await.unwrap().len(), 1);
    assert!(store.merge_policies(&b.tenant.id).await.unwrap().is_empty(), "policies are per tenant");
    assert!(store.merge_policy(&b.tenant.id, "App", "create").await.unwrap().is_none());
    assert!(store.delete_merge_policy(&a.tenant.id, "App", "create").await.unwrap());
    assert!(!store.delete_merge_policy(&a.tenant.id, "App", "create").await.unwrap());
}

async fn invites_add_members(store: Store) {
    use maxcloud_store::Role;
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "Beta", slug("beta"), key("b")).await.unwrap();
    let t = &a.tenant.id;
    let day = 86_400_000_000;
    let err = store.create_invite(t, &a.user.id, "a@example.com", Role::Member, "inv-x", day).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { field: "email", .. }), "already a member: {err:?}");
    store.create_invite(t, &a.user.id, "new@example.com", Role::Member, "inv-1", day).await.unwrap();
    let joined = store.accept_invite("inv-1", key("new")).await.unwrap();
    assert_eq!((joined.tenant.id.as_str(), joined.role), (t.as_str(), Role::Member));
    let p = store.principal_by_key_hash("hash-new").await.unwrap().unwrap();
    assert_eq!((p.user.email.as_str(), p.role, p.tenant.id.as_str()), ("new@example.com", Role::Member, t.as_str()));
    let err = store.accept_invite("inv-1", key("again")).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "used once: {err:?}");
    assert!(matches!(store.accept_invite("nope", key("x")).await.unwrap_err(), StoreError::NotFound("invite")));
    store.create_invite(t, &a.user.id, "late@example.com", Role::Admin, "inv-2", -1).await.unwrap();
    assert!(matches!(store.accept_invite("inv-2", key("late")).await.unwrap_err(), StoreError::InvalidState(_)));
    // An existing user of another organisation joins with the same account.
    store.create_invite(t, &a.user.id, "b@example.com", Role::Admin, "inv-3", day).await.unwrap();
    let joined = store.accept_invite("inv-3", key("b2")).await.unwrap();
    assert_eq!(joined.user.id, b.user.id);
    let members = store.members(t).await.unwrap();
    let emails: Vec<_> = members.iter().map(|m| (m.user.email.as_str(), m.role)).collect();
    assert_eq!(
        emails,
        [("a@example.com", Role::Admin), ("new@example.com", Role::Member), ("b@example.com", Role::Admin)]
    );
    assert_eq!(store.members(&b.tenant.id).await.unwrap().len(), 1, "memberships stay per organisation");
    let pb = store.principal_by_key_hash("hash-b").await.unwrap().unwrap();
    assert_eq!(pb.tenant.id, b.tenant.id, "the old key still acts in its own organisation");
}

async fn failure_undoes_resource_effect(store: Store) {
    let reg = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let t = &reg.tenant.id;
    let Accepted::Created(create) = store.accept_order(new_order(t, "create", "shop")).await.unwrap() else { panic!() };
    store.record_pr_opened(&create, pr(&create.id, "c1")).await.unwrap();
    store.record_failed(&create, "failed", "git exploded").await.unwrap();
    let o = store.order(t, &create.id).await.unwrap().unwrap();
    assert_eq!((o.state.as_str(), o.error.as_deref()), ("failed", Some("git exploded")));
    assert_eq!(store.pull_request_for(&create.id).await.unwrap().unwrap().state, "closed");
    assert_eq!(store.resource(t, &create.resource_id).await.unwrap().unwrap().status, "failed");
}

async fn tenants_are_isolated(store: Store) {
    let a = store.register("a@example.com", "A", slug("a"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "B", slug("b"), key("b")).await.unwrap();
    let Accepted::Created(order) = store.accept_order(new_order(&a.tenant.id, "create", "shop")).await.unwrap() else {
        panic!()
    };
    assert!(store.order(&b.tenant.id, &order.id).await.unwrap().is_none());
    assert!(store.resource(&b.tenant.id, &order.resource_id).await.unwrap().is_none());
    assert!(store.orders(&b.tenant.id, 10).await.unwrap().is_empty());
    assert!(store.resources(&b.tenant.id, None).await.unwrap().is_empty());
    let err = store.approve_order(&b.tenant.id, &order.id, "b@example.com").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("order")));
    // Same name in another tenant is fine.
    store.accept_order(new_order(&b.tenant.id, "create", "shop")).await.unwrap();
}

async fn audit_log_records_entries(store: Store) {
    let a = store.register("a@example.com", "A", slug("a"), key("a")).await.unwrap();
    let entry = maxcloud_store::AuditEntry {
        tenant_id: Some(a.tenant.id.clone()),
        actor: Some("a@example.com".into()),
        method: "POST".into(),
        path: "/api/v1/orders".into(),
        status: 422,
        action: "order.create".into(),
        target: Some("App/shop".into()),
        detail: Some("scaling.maxScale: must be at most 100".into()),
        source: Some("203.0.113.7".into()),
    };
    store.audit(&entry).await.unwrap();
    store.audit(&maxcloud_store::AuditEntry { status: 401, tenant_id: None, ..entry.clone() }).await.unwrap();
    let rows = store.audit_log(Some(&a.tenant.id), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].entry.status, 422);
    assert_eq!(rows[0].entry.detail, entry.detail);
    assert_eq!(rows[0].entry.source.as_deref(), Some("203.0.113.7"));
    assert_eq!(store.audit_log(None, 10).await.unwrap().len(), 1);

    // Queries: a tenant's window and action, newest first, bounded.
    let b = store.register("b@example.com", "B", slug("b"), key("b")).await.unwrap();
    store.audit(&maxcloud_store::AuditEntry { tenant_id: Some(b.tenant.id.clone()), ..entry.clone() }).await.unwrap();
    let approve = maxcloud_store::AuditEntry { action: "orders.approve".into(), status: 200, ..entry.clone() };
    store.audit(&approve).await.unwrap();
    let all = maxcloud_store::AuditQuery { limit: 100, ..Default::default() };
    let mine = store.audit_query(&a.tenant.id, &all).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.entry.action.as_str()).collect::<Vec<_>>(), ["orders.approve", "order.create"]);
    assert!(mine.iter().all(|r| r.entry.tenant_id.as_deref() == Some(a.tenant.id.as_str())), "only tenant a's");
    let only = maxcloud_store::AuditQuery { action: Some("orders.approve".into()), ..all.clone() };
    assert_eq!(store.audit_query(&a.tenant.id, &only).await.unwrap().len(), 1);
    let newest = mine[0].at;
    let before = maxcloud_store::AuditQuery { until_us: Some(newest), ..all.clone() };
    assert!(store.audit_query(&a.tenant.id, &before).await.unwrap().iter().all(|r| r.at < newest));
    let after = maxcloud_store::AuditQuery { since_us: Some(newest), ..all.clone() };
    assert!(store.audit_query(&a.tenant.id, &after).await.unwrap().iter().all(|r| r.at >= newest));
    let one = maxcloud_store::AuditQuery { limit: 1, ..all };
    assert_eq!(store.audit_query(&a.tenant.id, &one).await.unwrap().len(), 1);
}

async fn migrations_are_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let counts = store.table_counts().await.unwrap();
    assert!(counts.values().all(|n| *n == 0), "{counts:?}");
}

async fn observations_move_orders_and_resources(store: Store) {
    let reg = store.register("o@example.com", "Observed", slug("observed"), key("o")).await.unwrap();
    let t = &reg.tenant.id;
    let Accepted::Created(order) = store.accept_order(new_order(t, "create", "web")).await.unwrap() else { panic!() };
    let obs = |status: &str, url: Option<&str>, message: Option<&str>| Observation {
        tenant: "observed".into(),
        kind: "App".into(),
        name: "web".into(),
        status: status.into(),
        url: url.map(Into::into),
        message: message.map(Into::into),
        order_id: Some(order.id.clone()),
        served: None,
    };
    // Not merged yet: the resource row follows the cluster, the order does not jump ahead.
    let recorded = store.record_observation(&obs("progressing", None, None)).await.unwrap();
    assert_eq!(recorded, Recorded::Resource { tenant_id: t.clone(), changed: true, order: None });
    assert_eq!(store.resource(t, &order.resource_id).await.unwrap().unwrap().status, "progressing");
    store.record_merged(&order, pr(&order.id, "c1"), "c1", None).await.unwrap();
    // Flux applied a revision with the merge commit: merged -> applied, once.
    assert_eq!(store.merged_awaiting_apply("observed").await.unwrap(), vec![(order.id.clone(), "c1".to_string())]);
    let moved = store.record_applied(std::slice::from_ref(&order.id), "main@sha1:c1").await.unwrap();
    assert_eq!(moved, vec![(t.clone(), order.id.clone(), "App".into(), "web".into())]);
    assert!(store.record_applied(std::slice::from_ref(&order.id), "main@sha1:c1").await.unwrap().is_empty());
    assert!(store.merged_awaiting_apply("observed").await.unwrap().is_empty());
    // Ready with its URL: the order is ready, once.
    let ready = obs("ready", Some("https://web.example"), None);
    let recorded = store.record_observation(&ready).await.unwrap();
    assert_eq!(
        recorded,
        Recorded::Resource { tenant_id: t.clone(), changed: true, order: Some((order.id.clone(), "ready".into())) }
    );
    let res = store.resource(t, &order.resource_id).await.unwrap().unwrap();
    assert_eq!((res.status.as_str(), res.url.as_deref()), ("ready", Some("https://web.example")));
    assert_eq!(store.order(t, &order.id).await.unwrap().unwrap().state, "ready");
    let again = store.record_observation(&ready).await.unwrap();
    assert_eq!(again, Recorded::Resource { tenant_id: t.clone(), changed: false, order: None }, "no second transition");
    let states: Vec<_> = store.order_events(&order.id).await.unwrap().into_iter().map(|e| e.state).collect();
    assert_eq!(states, ["accepted", "pr_open", "merged", "applied", "ready"]);
    // One live-event log: order and service events interleaved by sequence, each once; paging is exact.
    let log = store.events_since(t, 0, 100).await.unwrap();
    let seen: Vec<String> = log
        .iter()
        .map(|e| match &e.what {
            Logged::Order { state, .. } => format!("order {state}"),
            Logged::Service { status, url, .. } => format!("service {status} {}", url.as_deref().unwrap_or("-")),
        })
        .collect();
    assert_eq!(
        seen,
        [
            "order accepted",
            "service progressing -",
            "order pr_open",
            "order merged",
            "order applied",
            "service ready https://web.example",
            "order ready"
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    let page: Vec<i64> = store.events_since(t, log[1].seq, 3).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(page, log[2..5].iter().map(|e| e.seq).collect::<Vec<_>>());
    assert_eq!(store.last_event_seq().await.unwrap(), log[6].seq);

    // A failure of a merged order carries its message.
    let Accepted::Created(update) = store.accept_order(new_order(t, "update", "web")).await.unwrap() else { panic!() };
    store.record_merged(&update, pr(&update.id, "c2"), "c2", None).await.unwrap();
    let failed = Observation { order_id: Some(update.id.clone()), ..obs("failed", None, Some("image pull failed")) };
    store.record_observation(&failed).await.unwrap();
    let stored = store.order(t, &update.id).await.unwrap().unwrap();
    assert_eq!((stored.state.as_str(), stored.error.as_deref()), ("failed", Some("image pull failed")));

    // Objects nobody ordered, and other tenants' names, are unmanaged.
    let stray = Observation { name: "kubectl-made".into(), order_id: None, ..obs("ready", None, None) };
    assert_eq!(store.record_observation(&stray).await.unwrap(), Recorded::Unmanaged);
    let other = Observation { tenant: "someone-else".into(), ..obs("ready", None, None) };
    assert_eq!(store.record_observation(&other).await.unwrap(), Recorded::Unmanaged);
}

async fn pod_usage_adds_up_exactly(store: Store) {
    let reg = store.register("m@example.com", "Metered", slug("metered"), key("m")).await.unwrap();
    let other = store.register("x@example.com", "Other", slug("other"), key("x")).await.unwrap();
    let t = &reg.tenant.id;
    const T: i64 = 1_700_000_000;
    const MI: i64 = 1 << 20;
    let pod = |uid: &str, name: &str, cpu: i64, memory: i64, started: i64, ended: Option<i64>| PodUsage {
        uid: uid.into(),
        tenant: "metered".into(),
        kind: "App".into(),
        name: name.into(),
        namespace: "mc-metered".into(),
        pod: format!("{name}-{uid}"),
        cpu_millis: cpu,
        memory_bytes: memory,
        started_at: started,
        ended_at: ended,
    };
    let a = pod("a", "web", 500, 256 * MI, T, Some(T + 3600));
    let b = pod("b", "web", 250, 1024 * MI, T + 1800, None);
    let job = PodUsage { kind: "Database".into(), ..pod("c", "db", 1000, 512 * MI, T, Some(T + 90)) };
    for p in [&a, &b, &job] {
        assert!(store.record_pod_usage(p).await.unwrap());
    }
    let stray = PodUsage { tenant: "nobody".into(), ..pod("d", "web", 1000, MI, T, None) };
    assert!(!store.record_pod_usage(&stray).await.unwrap(), "a pod of an unknown tenant is ignored");

    let usage = |from: i64, to: i64| {
        let store = store.clone();
        let t = t.clone();
        async move { store.usage(&t, from, to).await.unwrap() }
    };
    let service = |kind: &str, name: &str, pods: u64, cpu_ms: u128, byte_s: u128| ServiceUsage {
        kind: kind.into(),
        name: name.into(),
        pods,
        cpu_milli_seconds: cpu_ms,
        memory_byte_seconds: byte_s,
    };
    let mi = MI as u128;
    let hour = usage(T, T + 3600).await;
    assert_eq!(
        hour,
        [
            service("App", "web", 2, 500 * 3600 + 250 * 1800, 256 * mi * 3600 + 1024 * mi * 1800),
            service("Database", "db", 1, 1000 * 90, 512 * mi * 90),
        ]
    );
    assert_eq!((hour[0].vcpu_seconds(), hour[0].gib_seconds()), (1800.0 + 450.0, 900.0 + 1800.0));
    assert_eq!(hour[1].memory_byte_seconds, 45 * GIB, "512Mi for 90 s");
    // Clipped to the window; pods outside it do not count.
    assert_eq!(
        usage(T + 60, T + 120).await,
        [service("App", "web", 1, 500 * 60, 256 * mi * 60), service("Database", "db", 1, 1000 * 30, 512 * mi * 30)]
    );
    assert!(usage(T - 100, T).await.is_empty());
    // The running pod counts up to the window's end.
    assert_eq!(usage(T + 3600, T + 7200).await, [service("App", "web", 1, 250 * 3600, 1024 * mi * 3600)]);

    // Replays change nothing; an ended interval does not reopen or grow, its end and the start only move earlier.
    for replay in
        [a.clone(), PodUsage { ended_at: None, ..a.clone() }, PodUsage { ended_at: Some(T + 9999), ..a.clone() }]
    {
        assert!(store.record_pod_usage(&replay).await.unwrap());
    }
    assert_eq!(usage(T, T + 3600).await, hour);
    store.record_pod_usage(&PodUsage { started_at: T + 10, ended_at: Some(T + 1800), ..a.clone() }).await.unwrap();
    let recorded = store.pod_usages(t).await.unwrap();
    assert_eq!(recorded.iter().map(|p| p.uid.as_str()).collect::<Vec<_>>(), ["a", "c", "b"]);
    assert_eq!((recorded[0].started_at, recorded[0].ended_at), (T, Some(T + 1800)));

    // Pods that went while nobody watched are ended explicitly.
    assert_eq!(store.running_pods().await.unwrap(), ["b"]);
    assert_eq!(store.end_pods(&["b".into()], T + 7200).await.unwrap(), 1);
    assert_eq!(store.end_pods(&["b".into()], T + 9000).await.unwrap(), 0, "already ended");
    assert!(store.running_pods().await.unwrap().is_empty());
    assert_eq!(
        usage(T + 3600, T + 100_000).await,
        [service("App", "web", 1, 250 * 3600, 1024 * mi * 3600)],
        "ended at T+7200"
    );

    // Tenants see only their own usage.
    assert!(store.usage(&other.tenant.id, T, T + 100_000).await.unwrap().is_empty());
    assert!(store.pod_usages(&other.tenant.id).await.unwrap().is_empty());
}

async fn sops_keys_one_per_tenant(store: Store) {
    use maxcloud_store::SealedKey;
    let a = store.register("a@example.com", "A", slug("a"), key("a")).await.unwrap().tenant;
    let b = store.register("b@example.com", "B", slug("b"), key("b")).await.unwrap().tenant;
    assert_eq!(store.sops_key(&a.id).await.unwrap(), None);
    let first = SealedKey { recipient: "age1first".into(), sealed: "sealed-first".into() };
    assert_eq!(store.insert_sops_key(&a.id, first.clone()).await.unwrap(), first);
    // A second creation (a racing request) gets the key in force, not its own.
    let second = SealedKey { recipient: "age1second".into(), sealed: "sealed-second".into() };
    assert_eq!(store.insert_sops_key(&a.id, second).await.unwrap(), first);
    assert_eq!(store.sops_key(&a.id).await.unwrap(), Some(first));
    assert_eq!(store.sops_key(&b.id).await.unwrap(), None, "keys are per tenant");
}
