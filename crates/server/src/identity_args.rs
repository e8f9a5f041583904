//! Server flags of invites (expiry, public URL, mailer) and OIDC login.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use maxcloud_api::mail::{HttpMailer, InviteSettings, Mailer, SmtpMailer, SmtpTls};
use maxcloud_api::oidc::OidcConfig;

#[derive(Args, Debug)]
pub struct IdentityArgs {
    /// How long an invite can be accepted: a number with a unit, s, m, h or d (e.g. 30m, 7d).
    #[arg(long, env = "MAXCLOUD_INVITE_TTL", default_value = "7d", value_parser = parse_ttl, help_heading = "Invites")]
    pub invite_ttl: Duration,
    /// The API's public base URL (e.g. https://api.maxcloud.example), put into the accept command of invite
    /// e-mails. Default: http://<listen address>.
    #[arg(long, env = "MAXCLOUD_PUBLIC_URL", value_name = "URL", help_heading = "Invites")]
    pub public_url: Option<String>,
    /// Send invite e-mails through this SMTP server: smtp://[user[:password]@]host[:port] (percent-encode
    /// special characters). Pass it by environment when it holds a password.
    #[arg(
        long,
        env = "MAXCLOUD_SMTP_URL",
        hide_env_values = true,
        value_name = "URL",
        conflicts_with = "mail_api_url",
        requires = "mail_from",
        help_heading = "Invites"
    )]
    pub smtp_url: Option<String>,
    /// TLS towards the SMTP server: starttls (required, port 587 by default), tls (implicit TLS, port 465) or
    /// none (only to a loopback host, port 25).
    #[arg(long, env = "MAXCLOUD_SMTP_TLS", default_value = "starttls", value_parser = ["starttls", "tls", "none"],
        help_heading = "Invites")]
    pub smtp_tls: String,
    /// PEM certificate of a private CA the SMTP server's certificate is signed by (trusted besides the public
    /// roots).
    #[arg(long, env = "MAXCLOUD_SMTP_CA_FILE", value_name = "FILE", requires = "smtp_url", help_heading = "Invites")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Send invite e-mails through an HTTP mail API: a JSON POST (see the README) to this URL.
    #[arg(long, env = "MAXCLOUD_MAIL_API_URL", value_name = "URL", requires = "mail_from", help_heading = "Invites")]
    pub mail_api_url: Option<String>,
    /// File holding the bearer token of the mail API (or MAXCLOUD_MAIL_API_TOKEN).
    #[arg(
        long,
        env = "MAXCLOUD_MAIL_API_TOKEN_FILE",
        value_name = "FILE",
        requires = "mail_api_url",
        help_heading = "Invites"
    )]
    pub mail_api_token_file: Option<PathBuf>,
    /// Sender of invite e-mails, e.g. "max-cloud <noreply@maxcloud.example>".
    #[arg(long, env = "MAXCLOUD_MAIL_FROM", value_name = "MAILBOX", help_heading = "Invites")]
    pub mail_from: Option<String>,

    /// Accept bearer JWTs of this OpenID Connect issuer (exactly its `iss`), verified against its JWKS.
    #[arg(
        long,
        env = "MAXCLOUD_OIDC_ISSUER",
        value_name = "URL",
        requires = "oidc_audience",
        help_heading = "OIDC login"
    )]
    pub oidc_issuer: Option<String>,
    /// A value the tokens' `aud` must contain (the client id or application id URI).
    #[arg(
        long,
        env = "MAXCLOUD_OIDC_AUDIENCE",
        value_name = "AUD",
        requires = "oidc_issuer",
        help_heading = "OIDC login"
    )]
    pub oidc_audience: Option<String>,
    /// Claim with values <prefix>:<organisation>:<admin|member> (Keycloak groups: groups; Entra ID app roles:
    /// roles).
    #[arg(long, env = "MAXCLOUD_OIDC_ROLES_CLAIM", default_value = "groups", help_heading = "OIDC login")]
    pub oidc_roles_claim: String,
    /// Prefix of those values.
    #[arg(long, env = "MAXCLOUD_OIDC_ROLE_PREFIX", default_value = "maxcloud", help_heading = "OIDC login")]
    pub oidc_role_prefix: String,
    /// Claim with the user's e-mail address (Entra ID without the optional `email` claim: preferred_username).
    #[arg(long, env = "MAXCLOUD_OIDC_EMAIL_CLAIM", default_value = "email", help_heading = "OIDC login")]
    pub oidc_email_claim: String,
    /// Seconds of clock skew allowed on exp and nbf.
    #[arg(long, env = "MAXCLOUD_OIDC_LEEWAY_SECONDS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(0..=300), help_heading = "OIDC login")]
    pub oidc_leeway_seconds: u64,
    /// Least seconds between two JWKS fetches caused by an unknown key id (key rotation).
    #[arg(long, env = "MAXCLOUD_OIDC_JWKS_REFETCH_SECONDS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "OIDC login")]
    pub oidc_jwks_refetch_seconds: u64,
}

/// `30s`, `15m`, `12h`, `7d`: at least 1 second, at most 365 days.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?}: expected a number with a unit s, m, h or d, e.g. 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    if !(1..=365 * 86_400).contains(&secs) {
        return Err(format!("{text:?}: must be between 1s and 365d"));
    }
    Ok(Duration::from_secs(secs))
}

impl IdentityArgs {
    pub fn invites(&self) -> anyhow::Result<InviteSettings> {
        let from = || self.mail_from.clone().context("--mail-from is required with a mailer");
        let mailer = match (&self.smtp_url, &self.mail_api_url) {
            (Some(url), _) => {
                let tls = SmtpTls::parse(&self.smtp_tls).map_err(anyhow::Error::msg).context("--smtp-tls")?;
                let ca = match &self.smtp_ca_file {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("cannot read --smtp-ca-file {}", path.display()))?,
                    ),
                    None => None,
                };
                Mailer::Smtp(SmtpMailer::new(url, tls, &from()?, ca.as_deref()).map_err(anyhow::Error::msg)?)
            }
            (None, Some(url)) => {
                let token = match &self.mail_api_token_file {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read --mail-api-token-file {}", path.display()))?,
                    ),
                    None => std::env::var("MAXCLOUD_MAIL_API_TOKEN").ok(),
                };
                Mailer::Http(HttpMailer::new(url, token, &from()?).map_err(anyhow::Error::msg)?)
            }
            (None, None) => Mailer::None,
        };
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                anyhow::bail!("--public-url must be an http(s) URL, got {url:?}");
            }
        }
        Ok(InviteSettings {
            ttl: self.invite_ttl,
            public_url: self.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
            mailer,
        })
    }

    pub fn oidc(&self) -> anyhow::Result<Option<OidcConfig>> {
        let (Some(issuer), Some(audience)) = (&self.oidc_issuer, &self.oidc_audience) else { return Ok(None) };
        let mut config = OidcConfig::new(issuer, audience);
        config.roles_claim = self.oidc_roles_claim.clone();
        config.role_prefix = self.oidc_role_prefix.clone();
        config.email_claim = self.oidc_email_claim.clone();
        config.leeway = self.oidc_leeway_seconds;
        config.refetch_interval = Duration::from_secs(self.oidc_jwks_refetch_seconds);
        // Checked now, so a bad flag stops the start instead of every login.
        maxcloud_api::oidc::Verifier::new(config.clone()).map_err(anyhow::Error::msg)?;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use std::time::Duration;

    #[test]
    fn ttl_units_and_bounds() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "7", "d", "0s", "366d", "3w", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
