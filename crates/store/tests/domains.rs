//! Custom domain claims (migration 0012) and a resource's order history, on SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `MAXCLOUD_TEST_POSTGRES_URL` like the store suite; without it the PostgreSQL half
//! fails loudly.

use std::sync::Arc;

use maxcloud_store::{NewOrder, Observation, Store, StoreError};

mod common;

use common::{key, slug};

on_both!(claims_verify_once_across_tenants, racing_verifications_leave_one_owner, orders_of_a_resource_in_order);

fn conflict_on_domain(e: StoreError) -> String {
    match e {
        StoreError::Conflict { field: "domain", message } => message,
        other => panic!("expected a conflict on domain, got {other:?}"),
    }
}

async fn claims_verify_once_across_tenants(store: Store) {
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "Beta", slug("beta"), key("b")).await.unwrap();
    let (ta, tb) = (&a.tenant.id, &b.tenant.id);
    // The services the claims are for (a verified claim counts while its service exists).
    let svc_a = store.accept_order(order(ta, "create", "shop", "r1")).await.unwrap().order().resource_id.clone();
    let svc_b = store.accept_order(order(tb, "create", "web", "r1")).await.unwrap().order().resource_id.clone();
    let (svc_a, svc_b) = (svc_a.as_str(), svc_b.as_str());

    // Both may claim a domain nobody has verified, each with its own token; a second claim returns the first.
    let ca = store.claim_domain(ta, "shop.example.com", svc_a, "shop", "tok-a").await.unwrap();
    assert_eq!((ca.verified_at, ca.order_id.as_deref(), ca.token.as_str()), (None, None, "tok-a"));
    let again = store.claim_domain(ta, "shop.example.com", svc_a, "shop", "tok-other").await.unwrap();
    assert_eq!(again.token, "tok-a", "the stored claim, not a new token");
    store.claim_domain(tb, "shop.example.com", svc_b, "web", "tok-b").await.unwrap();
    // The same tenant cannot put it on a second service.
    let m =
        conflict_on_domain(store.claim_domain(ta, "shop.example.com", "svc-other", "admin", "t").await.unwrap_err());
    assert!(m.contains("already added to service \"shop\""), "{m}");

    // A verifies; B can neither verify nor claim it any more; A's claim lists as verified with its order.
    let v = store.verify_domain(ta, "shop.example.com").await.unwrap();
    assert!(v.verified_at.is_some());
    let m = conflict_on_domain(store.verify_domain(tb, "shop.example.com").await.unwrap_err());
    assert!(m.contains("another organisation"), "{m}");
    store.remove_domain(tb, "shop.example.com").await.unwrap();
    let m = conflict_on_domain(store.claim_domain(tb, "shop.example.com", svc_b, "web", "tok-b").await.unwrap_err());
    assert!(m.contains("another organisation"), "{m}");
    store.set_domain_order(ta, "shop.example.com", "order-1").await.unwrap();
    let listed = store.domain_claims(ta, svc_a).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].order_id.as_deref(), Some("order-1"));
    assert!(store.domain_claims(tb, svc_a).await.unwrap().is_empty(), "claims are per tenant");
    assert!(store.domain_claim(tb, "shop.example.com").await.unwrap().is_none());

    // Undoing a verification (its order was refused) and removing free the domain for others.
    store.unverify_domain(ta, "shop.example.com").await.unwrap();
    let back = store.domain_claim(ta, "shop.example.com").await.unwrap().unwrap();
    assert_eq!((back.verified_at, back.order_id), (None, None));
    store.verify_domain(ta, "shop.example.com").await.unwrap();
    assert!(store.remove_domain(ta, "shop.example.com").await.unwrap());
    assert!(!store.remove_domain(ta, "shop.example.com").await.unwrap());
    store.claim_domain(tb, "shop.example.com", svc_b, "web", "tok-b2").await.unwrap();
    store.verify_domain(tb, "shop.example.com").await.unwrap();
    assert!(matches!(store.verify_domain(ta, "nothing.example.com").await, Err(StoreError::NotFound("domain"))));
    assert_eq!(store.table_counts().await.unwrap()["custom_domains"], 1);

    // A verified claim whose service is gone does not hold the domain: the next claim drops it.
    store.claim_domain(ta, "old.example.com", "deleted-service", "old", "tok-old").await.unwrap();
    store.verify_domain(ta, "old.example.com").await.unwrap();
    assert_eq!(store.domain_owner("old.example.com").await.unwrap(), None);
    assert_eq!(store.domain_owner("shop.example.com").await.unwrap().as_deref(), Some(tb.as_str()));
    store.claim_domain(tb, "old.example.com", svc_b, "web", "tok-new").await.unwrap();
    assert!(store.domain_claim(ta, "old.example.com").await.unwrap().is_none());
    store.verify_domain(tb, "old.example.com").await.unwrap();
}

async fn racing_verifications_leave_one_owner(store: Store) {
    let store = Arc::new(store);
    let mut tenants = Vec::new();
    for i in 0..6 {
        let r =
            store.register(&format!("u{i}@example.com"), &format!("Org {i}"), slug("org"), key(&i.to_string())).await;
        let t = r.unwrap().tenant.id;
        store.claim_domain(&t, "race.example.com", "svc", "web", &format!("tok-{i}")).await.unwrap();
        tenants.push(t);
    }
    let mut tasks = Vec::new();
    for t in tenants.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.verify_domain(&t, "race.example.com").await }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(c) => {
                assert!(c.verified_at.is_some());
                won += 1;
            }
            Err(e) => {
                conflict_on_domain(e);
            }
        }
    }
    assert_eq!(won, 1, "exactly one organisation owns the domain");
    let mut verified = 0;
    for t in &tenants {
        verified += store.domain_claim(t, "race.example.com").await.unwrap().unwrap().verified_at.is_some() as i32;
    }
    assert_eq!(verified, 1);
}

fn order(tenant_id: &str, action: &str, name: &str, revision: &str) -> NewOrder {
    NewOrder {
        parameters: format!(r#"{{"image":"nginx:1.27","revision":"{revision}"}}"#),
        ..common::new_order(tenant_id, action, name)
    }
}

async fn orders_of_a_resource_in_order(store: Store) {
    let a = store.register("a@example.com", "Acme", slug("acme"), key("a")).await.unwrap();
    let b = store.register("b@example.com", "Beta", slug("beta"), key("b")).await.unwrap();
    let (ta, tb) = (&a.tenant.id, &b.tenant.id);
    let first = store.accept_order(order(ta, "create", "shop", "r1")).await.unwrap().order().clone();
    store.accept_order(order(ta, "create", "other", "r1")).await.unwrap();
    store.accept_order(order(tb, "create", "shop", "r1")).await.unwrap();
    let second = store.accept_order(order(ta, "update", "shop", "r2")).await.unwrap().order().clone();
    let third = store.accept_order(order(ta, "update", "shop", "r3")).await.unwrap().order().clone();
    let orders = store.resource_orders(ta, &first.resource_id).await.unwrap();
    let ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str(), second.id.as_str(), third.id.as_str()]);
    assert!(orders[2].parameters.contains("\"r3\""));
    assert!(store.resource_orders(tb, &first.resource_id).await.unwrap().is_empty(), "another tenant sees none");

    // What the cluster serves of its revisions, as the aggregator records it.
    assert_eq!(store.served(ta, &first.resource_id).await.unwrap(), None);
    let served = r#"{"latestReadyRevision":"shop-r2"}"#.to_string();
    let obs = Observation {
        tenant: "acme".into(),
        kind: "App".into(),
        name: "shop".into(),
        status: "ready".into(),
        url: None,
        message: None,
        order_id: None,
        served: Some(served.clone()),
    };
    store.record_observation(&obs).await.unwrap();
    assert_eq!(store.served(ta, &first.resource_id).await.unwrap(), Some(served.clone()));
    assert_eq!(store.served(tb, &first.resource_id).await.unwrap(), None, "another tenant reads nothing");
    // An observation without revision fields leaves the last report.
    store.record_observation(&Observation { served: None, status: "progressing".into(), ..obs }).await.unwrap();
    assert_eq!(store.served(ta, &first.resource_id).await.unwrap(), Some(served));
}
