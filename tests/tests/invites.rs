//! Invites end to end: list, revoke and accept with their bad-input and cross-tenant matrix, single use under
//! concurrency, expiry (short `--invite-ttl`), and the invite e-mail through a real SMTP server on loopback
//! (mailin-embedded) and through an HTTP mail API (an axum receiver), including a failed send.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maxcloud_store::Store;
use maxcloud_tests::{cli_command, Api, Options, Server};
use serde_json::{json, Value};

fn env(pairs: &[(&str, &str)]) -> Options {
    Options { env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Options::default() }
}

async fn counts(server: &Server) -> std::collections::BTreeMap<String, i64> {
    let store = Store::connect(&server.sqlite_url()).await.unwrap();
    let counts = store.table_counts().await.unwrap();
    store.close().await;
    counts
}

fn error(body: &Value) -> (&str, Option<&str>) {
    (body["error"]["code"].as_str().unwrap_or_default(), body["error"]["field"].as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn invites_list_revoke_accept_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let anon = Api::new(&server);
    let (key_a, _) = anon.register("boss@a.example", "Org A").await;
    let (key_b, _) = anon.register("boss@b.example", "Org B").await;
    let a = anon.with_key(&key_a);
    let b = anon.with_key(&key_b);

    // No mailer: the token is in the answer, with a note.
    let (status, created) = a.post("/auth/invites", &json!({"email": "Member@A.example"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["mail"].as_str(), created["role"].as_str()), (Some("none"), Some("member")));
    assert!(created["note"].as_str().unwrap().contains("no mail was sent"), "{created}");
    let member_token = created["token"].as_str().unwrap().to_string();
    let (_, admin_inv) = a.post("/auth/invites", &json!({"email": "second@a.example", "role": "admin"})).await;
    let (_, to_revoke) = a.post("/auth/invites", &json!({"email": "later@a.example"})).await;
    let revoke_id = to_revoke["id"].as_str().unwrap().to_string();
    let revoked_token = to_revoke["token"].as_str().unwrap().to_string();
    let (_, b_inv) = b.post("/auth/invites", &json!({"email": "x@b.example"})).await;
    let b_id = b_inv["id"].as_str().unwrap().to_string();

    // The member joins; the admin's list shows states, never a token.
    let (status, joined) = anon.post("/auth/accept-invite", &json!({"token": member_token})).await;
    assert_eq!(status, 201, "{joined}");
    let member = anon.with_key(joined["api_key"].as_str().unwrap());
    let (status, list) = a.get("/auth/invites").await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "only the own organisation's invites: {list:?}");
    assert!(list.iter().all(|i| i.get("token").is_none()), "never the token");
    let by_email = |e: &str| list.iter().find(|i| i["email"] == e).unwrap().clone();
    let accepted = by_email("member@a.example");
    assert_eq!(
        (accepted["state"].as_str(), accepted["invited_by"].as_str()),
        (Some("accepted"), Some("boss@a.example"))
    );
    assert!(accepted["accepted_at"].is_string());
    assert_eq!(by_email("second@a.example")["role"], "admin");
    assert_eq!(by_email("later@a.example")["state"], "pending");
    assert_eq!(by_email("later@a.example")["mail"], "none");

    // Revoke: another tenant's id is 404 (and stays pending there); a member may not; then 204, then 409.
    let before = counts(&server).await;
    let (status, body) = a.delete(&format!("/auth/invites/{b_id}")).await;
    assert_eq!((status, error(&body)), (404, ("not_found", Some("id"))), "{body}");
    let (status, body) = a.delete("/auth/invites/not-a-uuid").await;
    assert_eq!((status, error(&body).1), (404, Some("id")));
    let (status, body) = member.delete(&format!("/auth/invites/{revoke_id}")).await;
    assert_eq!((status, error(&body).0), (403, "forbidden"), "{body}");
    let (status, _) = anon.delete(&format!("/auth/invites/{revoke_id}")).await;
    assert_eq!(status, 401);
    let (status, body) = a.delete(&format!("/auth/invites/{}", accepted["id"].as_str().unwrap())).await;
    assert_eq!((status, error(&body).1), (409, Some("id")), "an accepted invite cannot be revoked: {body}");
    assert_eq!(counts(&server).await, before, "refused revokes write nothing");
    let (_, b_list) = b.get("/auth/invites").await;
    assert_eq!(b_list[0]["state"], "pending", "B's invite untouched");
    let (status, _) = a.delete(&format!("/auth/invites/{revoke_id}")).await;
    assert_eq!(status, 204);
    let (status, body) = a.delete(&format!("/auth/invites/{revoke_id}")).await;
    assert_eq!((status, body["error"]["message"].as_str().unwrap().contains("already revoked")), (409, true));

    // Accept refusals: distinct codes, all naming the token, nothing written.
    let before = counts(&server).await;
    for (token, code) in [(member_token.as_str(), "invite_used"), (revoked_token.as_str(), "invite_revoked")] {
        let (status, body) = anon.post("/auth/accept-invite", &json!({"token": token})).await;
        assert_eq!((status, error(&body)), (410, (code, Some("token"))), "{body}");
    }
    let bad: Vec<(Value, u16, &str)> = vec![
        (json!({"token": "mci_0000"}), 404, "token"),
        (json!({"token": "mc_notaninvite"}), 422, "token"),
        (json!({"token": 7}), 422, "token"),
        (json!({}), 422, "token"),
        (json!({"token": "mci_x", "extra": 1}), 400, "extra"),
    ];
    for (body, want, field) in bad {
        let (status, resp) = anon.post("/auth/accept-invite", &body).await;
        assert_eq!((status, error(&resp).1), (want, Some(field)), "{body} → {resp}");
    }
    // Member calls on admin endpoints; bad create input.
    let (status, _) = member.get("/auth/invites").await;
    assert_eq!(status, 403);
    let (status, _) = member.post("/auth/invites", &json!({"email": "y@a.example"})).await;
    assert_eq!(status, 403);
    let (status, _) = anon.get("/auth/invites").await;
    assert_eq!(status, 401);
    for (body, want, field) in [
        (json!({"email": "no-at-sign"}), 422, "email"),
        (json!({"email": "z@a.example", "role": "owner"}), 422, "role"),
        (json!({"email": "z@a.example", "ttl": 5}), 400, "ttl"),
        (json!({"email": "boss@a.example"}), 409, "email"),
    ] {
        let (status, resp) = a.post("/auth/invites", &body).await;
        assert_eq!((status, error(&resp).1), (want, Some(field)), "{body} → {resp}");
    }
    assert_eq!(counts(&server).await, before, "refused calls write nothing");

    // Concurrent double accept: exactly one wins.
    let token = admin_inv["token"].as_str().unwrap().to_string();
    let tries: Vec<_> = (0..6)
        .map(|_| {
            let anon = anon.clone();
            let token = token.clone();
            tokio::spawn(async move { anon.post("/auth/accept-invite", &json!({"token": token})).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        let (status, body) = t.await.unwrap();
        if status != 201 {
            assert_eq!(error(&body), ("invite_used", Some("token")), "{body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [201, 410, 410, 410, 410, 410]);
    let (_, members) = a.get("/auth/members").await;
    assert_eq!(members.as_array().unwrap().len(), 3);

    // Revokes and invites are in the audit log.
    let (_, audit) = a.get("/audit?limit=50").await;
    let targets: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["target"].as_str()).collect();
    assert!(targets.contains(&format!("invite/{revoke_id}").as_str()), "{targets:?}");

    // The OpenAPI document describes the endpoints.
    let (_, doc) = anon.get("/openapi.json").await;
    for (path, method) in [
        ("/api/v1/auth/invites", "get"),
        ("/api/v1/auth/invites", "post"),
        ("/api/v1/auth/invites/{id}", "delete"),
        ("/api/v1/auth/accept-invite", "post"),
    ] {
        assert!(doc["paths"][path].get(method).is_some(), "OpenAPI lacks {method} {path}");
    }
    assert!(doc["components"]["schemas"]["Invite"]["properties"].get("state").is_some());

    // The CLI: list, revoke, and the member refused.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = cli_command(&home, &server, Some(&key_a)).args(["auth", "invites"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("STATE") && text.contains("revoked") && text.contains("accepted"),
        "{text}"
    );
    let (_, pending) = a.post("/auth/invites", &json!({"email": "cli@a.example"})).await;
    let pid = pending["id"].as_str().unwrap();
    let out = cli_command(&home, &server, Some(&key_a)).args(["auth", "revoke-invite", pid]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("revoked invite {pid}")));
    let out = cli_command(&home, &server, Some(&key_a)).args(["auth", "revoke-invite", &b_id]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no invite") && err.contains("(field: id)"), "{err}");
    let out = cli_command(&home, &server, Some(joined["api_key"].as_str().unwrap()))
        .args(["auth", "invites", "-o", "json"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("admin"));
    let out = cli_command(&home, &server, Some(&key_a)).args(["auth", "invites", "-o", "json"]).output().unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn invites_expire_after_the_configured_ttl() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), env(&[("MAXCLOUD_INVITE_TTL", "2s")]));
    let anon = Api::new(&server);
    let (key, _) = anon.register("boss@a.example", "Org A").await;
    let a = anon.with_key(&key);
    let (status, inv) = a.post("/auth/invites", &json!({"email": "late@a.example"})).await;
    assert_eq!(status, 201);
    let created = time_of(&inv["expires_at"]);
    let (_, list) = a.get("/auth/invites").await;
    let made = time_of(&list[0]["created_at"]);
    assert_eq!(created - made, 2, "expires 2 s after creation");
    assert_eq!(list[0]["state"], "pending");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (_, list) = a.get("/auth/invites").await;
    assert_eq!(list[0]["state"], "expired");
    let before = counts(&server).await;
    let (status, body) = anon.post("/auth/accept-invite", &json!({"token": inv["token"]})).await;
    assert_eq!((status, error(&body)), (410, ("invite_expired", Some("token"))), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"));
    assert_eq!(counts(&server).await, before);
    // An expired invite can still be revoked (cleaned up); the CLI refuses a bad TTL flag.
    let (status, _) = a.delete(&format!("/auth/invites/{}", inv["id"].as_str().unwrap())).await;
    assert_eq!(status, 204);
    let out = std::process::Command::new(maxcloud_tests::bin("maxcloud-server"))
        .args(["dev", "--invite-ttl", "3w"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("s, m, h or d"));
}

fn time_of(v: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    t.unix_timestamp()
}

/// Mails as received: (recipients, message text).
type Mails = Arc<Mutex<Vec<(Vec<String>, String)>>>;
/// AUTH PLAIN logins as received: (user, password).
type Logins = Arc<Mutex<Vec<(String, String)>>>;
/// Mail API calls as received: (Authorization header, JSON body).
type Calls = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// Collects what the SMTP server received.
#[derive(Clone, Default)]
struct Inbox {
    current: Vec<u8>,
    rcpt: Vec<String>,
    mails: Mails,
    logins: Logins,
}

impl mailin_embedded::Handler for Inbox {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> mailin_embedded::Response {
        self.current.clear();
        self.rcpt = to.to_vec();
        mailin_embedded::response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        let text = String::from_utf8_lossy(&self.current).into_owned();
        self.mails.lock().unwrap().push((self.rcpt.clone(), text));
        mailin_embedded::response::OK
    }
    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> mailin_embedded::Response {
        self.logins.lock().unwrap().push((user.to_string(), password.to_string()));
        if (user, password) == ("mailer", "p@ss word") {
            mailin_embedded::response::AUTH_OK
        } else {
            mailin_embedded::response::INVALID_CREDENTIALS
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (PEM files in `dir`): (ca, cert, key) paths.
fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};
    let name = |cn: &str| {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", cn).unwrap();
        n.build()
    };
    let ca_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut ca = X509::builder().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
    ca.set_subject_name(&name("test mail CA")).unwrap();
    ca.set_issuer_name(&name("test mail CA")).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    ca.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    ca.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    ca.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap()).unwrap();
    cert.set_subject_name(&name("127.0.0.1")).unwrap();
    cert.set_issuer_name(ca.subject_name()).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    let san = SubjectAlternativeName::new().ip("127.0.0.1").build(&cert.x509v3_context(Some(&ca), None)).unwrap();
    cert.append_extension(san).unwrap();
    cert.append_extension(BasicConstraints::new().build().unwrap()).unwrap();
    cert.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();
    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.to_pem().unwrap()).unwrap();
    std::fs::write(&paths.1, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&paths.2, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    paths
}

/// A real SMTP server on loopback that offers STARTTLS with `cert`/`key` and AUTH PLAIN after it.
fn smtp_server_starttls(cert: &std::path::Path, key: &std::path::Path) -> (u16, Mails, Logins) {
    let inbox = Inbox::default();
    let (mails, logins) = (inbox.mails.clone(), inbox.logins.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(inbox);
    let ssl = mailin_embedded::SslConfig::SelfSigned {
        cert_path: cert.to_str().unwrap().into(),
        key_path: key.to_str().unwrap().into(),
    };
    server
        .with_name("smtp.test")
        .with_num_threads(2)
        .with_auth(mailin_embedded::AuthMechanism::Plain)
        .with_tcp_listener(listener)
        .with_ssl(ssl)
        .unwrap();
    std::thread::spawn(move || {
        let _ = server.serve().map_err(|e| e.to_string());
    });
    (port, mails, logins)
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_mail_goes_through_smtp_with_starttls_and_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(tmp.path());
    let (port, mails, logins) = smtp_server_starttls(&cert, &key);
    // The password percent-encoded in the URL: "p@ss word".
    let smtp_url = format!("smtp://mailer:p%40ss%20word@127.0.0.1:{port}");
    let server = Server::start(
        &tmp.path().join("data"),
        env(&[
            ("MAXCLOUD_SMTP_URL", smtp_url.as_str()),
            ("MAXCLOUD_SMTP_TLS", "starttls"),
            ("MAXCLOUD_SMTP_CA_FILE", ca.to_str().unwrap()),
            ("MAXCLOUD_MAIL_FROM", "noreply@maxcloud.test"),
        ]),
    );
    let anon = Api::new(&server);
    let (key_a, _) = anon.register("boss@a.example", "Org A").await;
    let a = anon.with_key(&key_a);
    let (status, inv) = a.post("/auth/invites", &json!({"email": "dev@a.example"})).await;
    assert_eq!((status, inv["mail"].as_str()), (201, Some("sent")), "{inv}");
    assert_eq!(logins.lock().unwrap().as_slice(), [("mailer".to_string(), "p@ss word".to_string())]);
    let (rcpt, text) = mails.lock().unwrap().pop().expect("the mail arrived over TLS");
    assert_eq!(rcpt, ["dev@a.example"]);
    let (status, _) = anon.post("/auth/accept-invite", &json!({"token": token_in(&text)})).await;
    assert_eq!(status, 201);
    assert!(!server.log().contains("p@ss"), "no SMTP password in the log");

    // Without the private CA the server's certificate is not trusted: 502, nothing kept, nothing sent.
    let untrusting = Server::start(
        &tmp.path().join("data2"),
        env(&[
            ("MAXCLOUD_SMTP_URL", smtp_url.as_str()),
            ("MAXCLOUD_SMTP_TLS", "starttls"),
            ("MAXCLOUD_MAIL_FROM", "noreply@maxcloud.test"),
        ]),
    );
    let anon2 = Api::new(&untrusting);
    let (key2, _) = anon2.register("boss@a.example", "Org A").await;
    let before = counts(&untrusting).await;
    let (status, body) = anon2.with_key(&key2).post("/auth/invites", &json!({"email": "dev@a.example"})).await;
    assert_eq!((status, error(&body).0), (502, "mail_failed"), "{body}");
    assert_eq!(counts(&untrusting).await, before);
    assert_eq!(logins.lock().unwrap().len(), 1, "no credentials sent to an untrusted server");
}

/// A real SMTP server on a loopback port (threads; it lives as long as the test process).
fn smtp_server() -> (u16, Mails) {
    let inbox = Inbox::default();
    let mails = inbox.mails.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(inbox);
    server.with_name("smtp.test").with_num_threads(2).with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve().map_err(|e| e.to_string());
    });
    (port, mails)
}

/// The `mci_…` token in a mail body (quoted-printable may wrap lines with `=`).
fn token_in(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let start = joined.find("mci_").expect("token in the mail");
    joined[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_mail_goes_through_smtp() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, mails) = smtp_server();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let server = Server::start(
        &tmp.path().join("data"),
        env(&[
            ("MAXCLOUD_SMTP_URL", smtp_url.as_str()),
            ("MAXCLOUD_SMTP_TLS", "none"),
            ("MAXCLOUD_MAIL_FROM", "max-cloud <noreply@maxcloud.test>"),
            ("MAXCLOUD_PUBLIC_URL", "https://api.maxcloud.test"),
        ]),
    );
    let anon = Api::new(&server);
    let (key, _) = anon.register("boss@a.example", "Org A").await;
    let a = anon.with_key(&key);
    let (status, inv) = a.post("/auth/invites", &json!({"email": "dev@a.example", "role": "admin"})).await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["mail"], "sent");
    assert!(inv.get("token").is_none(), "the token went to the invitee only: {inv}");
    let (rcpt, text) = mails.lock().unwrap().pop().expect("the mail arrived");
    assert_eq!(rcpt, ["dev@a.example"]);
    assert!(text.contains("From: max-cloud <noreply@maxcloud.test>"), "{text}");
    assert!(text.contains("Subject: You are invited to Org A on max-cloud"), "{text}");
    let token = token_in(&text);
    assert!(token.len() > 20, "{token}");
    let unfolded = text.replace("=\r\n", "").replace("=\n", "");
    assert!(
        unfolded.contains(&format!("maxcloud --api-url https://api.maxcloud.test auth accept-invite {token}")),
        "{unfolded}"
    );
    let (_, list) = a.get("/auth/invites").await;
    assert_eq!((list[0]["mail"].as_str(), list[0]["state"].as_str()), (Some("sent"), Some("pending")));
    // The mailed token works once, and never lands in the server log.
    let (status, joined) = anon.post("/auth/accept-invite", &json!({"token": token})).await;
    assert_eq!((status, joined["user"]["email"].as_str()), (201, Some("dev@a.example")));
    assert!(!server.log().contains(&token), "the token must not be logged");
    // The CLI says where the invite went.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out =
        cli_command(&home, &server, Some(&key)).args(["auth", "invite", "--email", "qa@a.example"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("e-mailed"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(mails.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_smtp_send_keeps_no_invite() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let smtp_url = format!("smtp://127.0.0.1:{closed}");
    let server = Server::start(
        &tmp.path().join("data"),
        env(&[
            ("MAXCLOUD_SMTP_URL", smtp_url.as_str()),
            ("MAXCLOUD_SMTP_TLS", "none"),
            ("MAXCLOUD_MAIL_FROM", "noreply@maxcloud.test"),
        ]),
    );
    let anon = Api::new(&server);
    let (key, _) = anon.register("boss@a.example", "Org A").await;
    let a = anon.with_key(&key);
    let before = counts(&server).await;
    let (status, body) = a.post("/auth/invites", &json!({"email": "dev@a.example"})).await;
    assert_eq!((status, error(&body)), (502, ("mail_failed", Some("email"))), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no invite was created") && message.contains("SMTP"), "{message}");
    assert_eq!(counts(&server).await, before, "no dangling invite");
    assert_eq!(a.get("/auth/invites").await.1, json!([]));
    // The refusal is audited.
    let (_, all) = a.get("/audit").await;
    assert!(all.as_array().unwrap().iter().any(|e| e["status"] == 502), "audit: {all}");
    // `--smtp-tls none` to a host that is not loopback is refused at start.
    let out = std::process::Command::new(maxcloud_tests::bin("maxcloud-server"))
        .args(["dev", "--data-dir"])
        .arg(tmp.path().join("other"))
        .args(["--smtp-url", "smtp://mail.example.com", "--smtp-tls", "none", "--mail-from", "a@b.example"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only allowed to a loopback host"));
}

/// An HTTP mail API: records each request's bearer and body; answers 500 for recipients at fail.example.
async fn mail_api() -> (String, Calls) {
    let seen: Calls = Default::default();
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/v1/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let store = store.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                let fail = body["to"][0].as_str().unwrap_or_default().ends_with("@fail.example");
                store.lock().unwrap().push((auth, body));
                if fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_mail_goes_through_an_http_mail_api() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, seen) = mail_api().await;
    let token_file = tmp.path().join("mail-token");
    std::fs::write(&token_file, "secret-mail-api-token\n").unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        env(&[
            ("MAXCLOUD_MAIL_API_URL", url.as_str()),
            ("MAXCLOUD_MAIL_API_TOKEN_FILE", token_file.to_str().unwrap()),
            ("MAXCLOUD_MAIL_FROM", "max-cloud <noreply@maxcloud.test>"),
        ]),
    );
    let anon = Api::new(&server);
    let (key, _) = anon.register("boss@a.example", "Org A").await;
    let a = anon.with_key(&key);
    let (status, inv) = a.post("/auth/invites", &json!({"email": "dev@a.example"})).await;
    assert_eq!((status, inv["mail"].as_str()), (201, Some("sent")), "{inv}");
    let (auth, body) = seen.lock().unwrap().pop().expect("the mail API was called");
    assert_eq!(auth.as_deref(), Some("Bearer secret-mail-api-token"));
    assert_eq!(body["to"], json!(["dev@a.example"]));
    assert_eq!(body["from"], "max-cloud <noreply@maxcloud.test>");
    assert_eq!(body["tags"]["organization"], "org-a");
    assert_eq!(body["tags"]["invite_id"], inv["id"]);
    let text = body["text"].as_str().unwrap();
    let token = token_in(text);
    assert!(text.contains(&format!("maxcloud --api-url {} auth accept-invite {token}", server.url)), "{text}");
    let (status, _) = anon.post("/auth/accept-invite", &json!({"token": token})).await;
    assert_eq!(status, 201);

    // The API refuses the mail: 502, and no invite is left behind.
    let before = counts(&server).await;
    let (status, body) = a.post("/auth/invites", &json!({"email": "x@fail.example"})).await;
    assert_eq!((status, error(&body)), (502, ("mail_failed", Some("email"))), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("HTTP 500"), "{body}");
    assert_eq!(counts(&server).await, before);
    let (_, list) = a.get("/auth/invites").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!server.log().contains(&token));

    // Re-inviting after the failure works once the address is right.
    let started = Instant::now();
    let (status, _) = a.post("/auth/invites", &json!({"email": "x@ok.example"})).await;
    assert_eq!(status, 201);
    assert!(started.elapsed() < Duration::from_secs(10));
}
