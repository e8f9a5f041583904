//! Invite e-mails: SMTP (lettre, on tokio with rustls), an HTTP mail API, or none.
//!
//! The mail carries the invite token and the command that accepts it against the server's public URL. The
//! token is never logged: errors name the transport and its reason only.
//!
//! HTTP mail API: `POST <--mail-api-url>` with `Authorization: Bearer <token>` (when one is configured) and
//! `Content-Type: application/json`; any 2xx answer counts as sent. The body:
//! ```json
//! { "from": "max-cloud <noreply@example.com>", "to": ["dev@example.com"], "subject": "…", "text": "…",
//!   "tags": {"kind": "invite", "organization": "acme", "role": "member", "invite_id": "…"} }
//! ```

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long an invite stays valid by default.
pub const DEFAULT_INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Invites: how long they last, where invitees accept them, how they are delivered.
#[derive(Clone, Debug)]
pub struct InviteSettings {
    pub ttl: Duration,
    /// The API's public base URL (`https://api.example`), put into the accept command of the mail. `None`: the
    /// server's own listen address.
    pub public_url: Option<String>,
    pub mailer: Mailer,
}

impl Default for InviteSettings {
    fn default() -> Self {
        InviteSettings { ttl: DEFAULT_INVITE_TTL, public_url: None, mailer: Mailer::None }
    }
}

/// How invite e-mails go out.
#[derive(Clone, Debug, Default)]
pub enum Mailer {
    /// No mail: the API answers with the token and a note.
    #[default]
    None,
    Smtp(SmtpMailer),
    Http(HttpMailer),
}

/// TLS towards the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, required (port 587 by default).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465 by default).
    Tls,
    /// No TLS at all: only to a loopback host (a relay on the same machine or pod).
    None,
}

impl SmtpTls {
    pub fn parse(text: &str) -> Result<SmtpTls, String> {
        match text {
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            "none" => Ok(SmtpTls::None),
            other => Err(format!("{other:?} is not one of: starttls, tls, none")),
        }
    }
}

#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `smtp://host:port (starttls)`, for messages (no credentials).
    describe: String,
}

#[derive(Clone)]
pub struct HttpMailer {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    from: Mailbox,
}

/// A failed send, with a reason fit for the admin and the log (never the token).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

/// What goes into an invite e-mail.
pub struct InviteMail<'a> {
    pub invite_id: &'a str,
    pub to: &'a str,
    pub organization_name: &'a str,
    pub organization_slug: &'a str,
    pub role: &'a str,
    pub invited_by: &'a str,
    pub token: &'a str,
    pub expires_at: &'a str,
    pub public_url: &'a str,
}

impl InviteMail<'_> {
    pub fn subject(&self) -> String {
        format!("You are invited to {} on max-cloud", self.organization_name)
    }

    pub fn text(&self) -> String {
        format!(
            "{inviter} invited you to the organisation \"{org}\" ({slug}) on max-cloud as {role}.\n\n\
             Accept the invitation with the max-cloud CLI:\n\n  \
             maxcloud --api-url {url} auth accept-invite {token}\n\n\
             or with the API: POST {url}/api/v1/auth/accept-invite with {{\"token\": \"{token}\"}}.\n\n\
             The invitation can be used once and expires at {expires}.\n\
             If you did not expect it, ignore this e-mail.\n",
            inviter = self.invited_by,
            org = self.organization_name,
            slug = self.organization_slug,
            role = self.role,
            url = self.public_url.trim_end_matches('/'),
            token = self.token,
            expires = self.expires_at,
        )
    }
}

// No credentials or tokens in debug output.
impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer").field("server", &self.describe).field("from", &self.from.to_string()).finish()
    }
}

impl std::fmt::Debug for HttpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMailer").field("url", &self.url).field("from", &self.from.to_string()).finish()
    }
}

fn mailbox(text: &str, what: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>().map_err(|e| format!("{what} {text:?} is not a mail address: {e}"))
}

impl SmtpMailer {
    /// From `smtp://[user[:password]@]host[:port]` (percent-encoded credentials), the TLS mode, the sender and
    /// an optional PEM certificate of a private CA to trust besides the public roots (an internal relay).
    pub fn new(url: &str, tls: SmtpTls, from: &str, ca_pem: Option<&[u8]>) -> Result<SmtpMailer, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--smtp-url is not a URL: {e}"))?;
        if parsed.scheme() != "smtp" {
            return Err(format!(
                "--smtp-url must look like smtp://user:password@host:port (TLS is chosen by --smtp-tls), got scheme {:?}",
                parsed.scheme()
            ));
        }
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or("--smtp-url has no host")?.to_string();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if tls == SmtpTls::None && !loopback {
            return Err(format!(
                "--smtp-tls none sends credentials and invite tokens in clear text: only allowed to a loopback host, not {host}"
            ));
        }
        let port = parsed.port().unwrap_or(match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let params = || {
            let mut builder = TlsParameters::builder(bare.to_string());
            if let Some(pem) = ca_pem {
                // lettre takes a file without any certificate silently.
                if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err("--smtp-ca-file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string());
                }
                let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
                    .map_err(|e| format!("--smtp-ca-file is not a PEM certificate: {e}"))?;
                builder = builder.add_root_certificate(cert);
            }
            builder.build_rustls().map_err(|e| format!("SMTP TLS setup: {e}"))
        };
        let tls_mode = match tls {
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Tls => Tls::Wrapper(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(bare)
            .port(port)
            .tls(tls_mode)
            .timeout(Some(Duration::from_secs(15)));
        if !parsed.username().is_empty() {
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            let user = decode(parsed.username());
            let password = decode(parsed.password().unwrap_or(""));
            builder = builder.credentials(Credentials::new(user, password));
        }
        let mode = match tls {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "no TLS",
        };
        Ok(SmtpMailer {
            transport: builder.build(),
            from: mailbox(from, "--mail-from")?,
            describe: format!("smtp://{host}:{port} ({mode})"),
        })
    }
}

impl HttpMailer {
    /// `url` receives the JSON body (module docs), with `token` as bearer when given.
    pub fn new(url: &str, token: Option<String>, from: &str) -> Result<HttpMailer, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--mail-api-url is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("--mail-api-url must be an http(s) URL".into());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpMailer {
            http,
            url: url.to_string(),
            token: token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            from: mailbox(from, "--mail-from")?,
        })
    }
}

impl Mailer {
    /// `none`, `smtp` or `http`, as the invite answer and list show it.
    pub fn is_configured(&self) -> bool {
        !matches!(self, Mailer::None)
    }

    /// Send the invite e-mail. `Ok` means the server or API took it.
    pub async fn send_invite(&self, mail: &InviteMail<'_>) -> Result<(), MailError> {
        match self {
            Mailer::None => Ok(()),
            Mailer::Smtp(smtp) => {
                let to = mailbox(mail.to, "the invitee's address").map_err(MailError)?;
                let message = Message::builder()
                    .from(smtp.from.clone())
                    .to(to)
                    .subject(mail.subject())
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.text())
                    .map_err(|e| MailError(format!("cannot build the invite e-mail: {e}")))?;
                smtp.transport.send(message).await.map(|_| ()).map_err(|e| {
                    MailError(format!("the SMTP server {} did not take the invite e-mail: {e}", smtp.describe))
                })
            }
            Mailer::Http(api) => {
                let body = serde_json::json!({
                    "from": api.from.to_string(),
                    "to": [mail.to],
                    "subject": mail.subject(),
                    "text": mail.text(),
                    "tags": {
                        "kind": "invite",
                        "organization": mail.organization_slug,
                        "role": mail.role,
                        "invite_id": mail.invite_id,
                    },
                });
                let mut req = api.http.post(&api.url).json(&body);
                if let Some(token) = &api.token {
                    req = req.bearer_auth(token);
                }
                let host = reqwest::Url::parse(&api.url).ok().and_then(|u| u.host_str().map(str::to_string));
                let host = host.unwrap_or_default();
                let resp = req
                    .send()
                    .await
                    .map_err(|e| MailError(format!("the mail API at {host} is unreachable: {}", deepest(&e))))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(MailError(format!("the mail API at {host} refused the invite e-mail: HTTP {}", resp.status())))
                }
            }
        }
    }
}

fn deepest(err: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_settings_are_checked() {
        let ok = |url: &str, tls| SmtpMailer::new(url, tls, "noreply@example.com", None);
        assert!(ok("smtp://user:p%40ss@mail.example.com", SmtpTls::StartTls).is_ok());
        assert!(ok("smtp://127.0.0.1:2525", SmtpTls::None).is_ok());
        assert!(ok("smtp://[::1]:2525", SmtpTls::None).is_ok());
        let err = ok("smtp://mail.example.com", SmtpTls::None).unwrap_err();
        assert!(err.contains("only allowed to a loopback host"), "{err}");
        assert!(ok("smtps://mail.example.com", SmtpTls::Tls).unwrap_err().contains("scheme"));
        assert!(ok("mail.example.com", SmtpTls::Tls).is_err());
        let bad_from = SmtpMailer::new("smtp://mail.example.com", SmtpTls::Tls, "not an address", None);
        assert!(bad_from.unwrap_err().contains("--mail-from"));
        let bad_ca = SmtpMailer::new("smtp://mail.example.com", SmtpTls::Tls, "a@b.example", Some(b"nope"));
        assert!(bad_ca.unwrap_err().contains("--smtp-ca-file"));
        let described = format!("{:?}", ok("smtp://user:secret@mail.example.com", SmtpTls::StartTls).unwrap());
        assert!(described.contains("mail.example.com:587") && !described.contains("secret"), "{described}");
        assert_eq!(SmtpTls::parse("tls"), Ok(SmtpTls::Tls));
        assert!(SmtpTls::parse("ssl").is_err());
    }

    #[test]
    fn invite_text_has_the_accept_command() {
        let mail = InviteMail {
            invite_id: "i",
            to: "dev@example.com",
            organization_name: "Acme Shop",
            organization_slug: "acme-shop",
            role: "member",
            invited_by: "boss@example.com",
            token: "mci_abc",
            expires_at: "2026-01-08T00:00:00Z",
            public_url: "https://api.example/",
        };
        assert_eq!(mail.subject(), "You are invited to Acme Shop on max-cloud");
        let text = mail.text();
        assert!(text.contains("maxcloud --api-url https://api.example auth accept-invite mci_abc"), "{text}");
        assert!(text.contains("boss@example.com invited you") && text.contains("2026-01-08T00:00:00Z"));
    }
}
