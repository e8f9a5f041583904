//! The command tree (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::output::Format;

/// The command-line client of max-cloud, the GitOps serverless container platform.
///
/// Credentials come from flags, then the environment (MAXCLOUD_API_URL, MAXCLOUD_API_KEY), then the
/// credentials file written by `maxcloud auth register`
/// ($XDG_CONFIG_HOME/maxcloud/credentials or ~/.config/maxcloud/credentials).
#[derive(Debug, Parser)]
#[command(name = "maxcloud", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Base URL of the max-cloud API [default: from the credentials file, else http://127.0.0.1:8080]
    #[arg(long, env = "MAXCLOUD_API_URL", global = true, value_name = "URL", help_heading = "Global options")]
    pub api_url: Option<String>,

    /// API key sent as bearer token [default: from the credentials file]
    #[arg(
        long,
        env = "MAXCLOUD_API_KEY",
        global = true,
        value_name = "KEY",
        hide_env_values = true,
        help_heading = "Global options"
    )]
    pub api_key: Option<String>,

    /// Organisation (tenant slug) to act in, for a single sign-on token that grants several; sent as
    /// X-Maxcloud-Tenant [default: the one of the credentials file, when its key or token is used]
    #[arg(long, env = "MAXCLOUD_TENANT", global = true, value_name = "SLUG", help_heading = "Global options")]
    pub tenant: Option<String>,

    /// Output format; json and yaml print exactly one document on stdout
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true, help_heading = "Global options")]
    pub output: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register, show who you are, manage API keys, invite members
    #[command(subcommand)]
    Auth(AuthCommand),

    /// Deploy a container image as a serverless service (an App order)
    Deploy(DeployArgs),

    /// List services
    #[command(visible_alias = "ls")]
    List,

    /// Show a service and its latest order
    Status {
        /// Service name
        name: String,
        /// Follow the service's latest order live until it is ready or failed (merged when no cluster is
        /// connected), printing each state; ends with the service (and its URL) or the error
        #[arg(long)]
        watch: bool,
        /// Seconds to follow with --watch
        #[arg(long, value_name = "SECS", default_value_t = 300, requires = "watch")]
        timeout: u64,
    },

    /// Delete a service (opens a removal order)
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),

    /// List a service's revisions (one per deploy) with their images, traffic shares and tags
    Revisions {
        /// Service name
        name: String,
    },

    /// Split a service's requests between its revisions: `maxcloud traffic shop r1=90,r2=10`
    Traffic(TrafficArgs),

    /// Send all of a service's requests to one of its revisions again
    Rollback {
        /// Service name
        name: String,
        /// Revision name, as `maxcloud revisions NAME` lists it
        revision: String,
        #[command(flatten)]
        wait: WaitArgs,
    },

    /// Add, verify, list or remove a service's custom domains (ownership proven by a DNS TXT record)
    #[command(subcommand)]
    Domains(DomainsCommand),

    /// List orders (--pending: those waiting for review), or show / approve / reject one
    #[command(args_conflicts_with_subcommands = true)]
    Orders(OrdersArgs),

    /// Order any catalog service type: `maxcloud order App shop --set image=nginx`
    Order(OrderArgs),

    /// List orderable service types, or show the parameters of one
    Catalog {
        /// Kind (e.g. App) or plural (apps), case-insensitive
        kind: Option<String>,
    },

    /// List the tenant's resources of every kind
    Resources,

    /// Show what the organisation's services used (requested vCPU and memory × running time) and what it costs
    Usage(UsageArgs),

    /// Show the organisation's audit log: who did what, when, from where, with what result (admins)
    Audit(AuditArgs),

    /// Show the organisation's quotas (limits set by the platform team) and what is in use
    Quotas,

    /// Show a service's container logs (all revisions, oldest first); --follow streams new lines
    Logs(LogsArgs),

    /// Set, list or delete the organisation's secrets (encrypted for the cluster; values are never shown again)
    #[command(subcommand)]
    Secrets(SecretsCommand),

    /// Push a local image (OCI image layout directory or tar, or a `docker save` archive) to your organization's
    /// registry as <registry>/<org>/NAME:TAG; no Docker needed
    Push(PushArgs),

    /// List your organization's images in the registry, with their tags
    Images,

    /// Show the organisation's merge policies (auto-merge or review, per kind and action), or set / reset one
    Policies {
        #[command(subcommand)]
        command: Option<PoliciesCommand>,
    },

    /// Print a shell completion script to stdout
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Create a user and organization; stores the API key in the credentials file
    Register {
        /// Your e-mail address
        #[arg(long)]
        email: String,
        /// Organization name, e.g. "Acme Shop" (its slug becomes the tenant name)
        #[arg(long = "org", value_name = "NAME")]
        org: String,
    },
    /// Show the user, organization and API key in use
    Status,
    /// Invite someone into your organization (admins); prints a one-time token
    Invite {
        /// Their e-mail address
        #[arg(long)]
        email: String,
        /// Their role
        #[arg(long, default_value = "member", value_parser = ["member", "admin"])]
        role: String,
    },
    /// Join an organization with an invite token; stores the new API key in the credentials file
    AcceptInvite {
        /// The `mci_…` token from `maxcloud auth invite`
        token: String,
    },
    /// List your organization's invites with their state: pending, accepted, expired, revoked (admins)
    Invites,
    /// Revoke a pending invite so its token no longer works (admins)
    #[command(visible_alias = "invites-delete")]
    RevokeInvite {
        /// Invite ID (from `maxcloud auth invites`)
        id: String,
    },
    /// Sign in with a token of your organization's identity provider (OIDC single sign-on); the token is
    /// checked and stored in the credentials file like an API key
    Login {
        /// The identity provider's access or ID token (a JWT)
        #[arg(long, env = "MAXCLOUD_TOKEN", hide_env_values = true, value_name = "JWT")]
        token: String,
    },
    /// List the members of your organization
    Members,
    /// Manage API keys
    #[command(subcommand, name = "api-keys", visible_alias = "api-key", alias = "keys")]
    ApiKeys(ApiKeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key (shown only once)
    Create {
        /// A name to recognise the key by
        #[arg(long)]
        name: Option<String>,
    },
    /// List API keys (prefixes only)
    #[command(visible_alias = "ls")]
    List,
    /// Revoke an API key
    #[command(visible_alias = "rm")]
    Delete {
        /// API key ID (from `maxcloud auth api-keys list`)
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Visibility {
    Public,
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Internal => "internal",
        }
    }
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait until the order is ready (or merged, when the server has no cluster connected)
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Container image, e.g. ghcr.io/acme/shop:1.2
    pub image: String,
    /// Service name (DNS-1123 label)
    #[arg(long)]
    pub name: String,
    /// Container port
    #[arg(long)]
    pub port: Option<i64>,
    /// Command (entrypoint) element; repeat for several. Each value is ONE element, with no shell
    /// splitting: use `--command sh --command -c`, not `--command "sh -c"`
    #[arg(long = "command", value_name = "C", allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Argument element; repeat for several (one element each, no shell splitting)
    #[arg(long = "args", visible_alias = "arg", value_name = "A", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Environment variable KEY=VALUE (the value may contain '='); repeat for several
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Environment variable read from a secret (`maxcloud secrets`): VAR=SECRET:KEY; repeat for several
    #[arg(long = "secret-env", value_name = "VAR=SECRET:KEY")]
    pub secret_env: Vec<String>,
    /// Minimum instances (0 = scale to zero)
    #[arg(long)]
    pub min_scale: Option<i64>,
    /// Maximum instances
    #[arg(long)]
    pub max_scale: Option<i64>,
    /// Concurrent requests per instance (0 = unlimited)
    #[arg(long)]
    pub concurrency: Option<i64>,
    /// CPU request, e.g. 500m or 1
    #[arg(long, value_name = "Q")]
    pub cpu: Option<String>,
    /// Memory request, e.g. 256Mi
    #[arg(long, value_name = "Q")]
    pub memory: Option<String>,
    /// Who can reach the service
    #[arg(long, value_enum)]
    pub visibility: Option<Visibility>,
    /// Name of the revision this deploy creates (new for the service; the revision is <name>-<revision>)
    /// [default: r<N>, one above the highest so far]
    #[arg(long, value_name = "NAME")]
    pub revision: Option<String>,
    /// Keep the traffic where it is: the new revision gets 0% (see `maxcloud traffic`)
    #[arg(long)]
    pub no_traffic: bool,
    /// Tag the new revision: it gets its own URL <tag>-<name>.<domain>, also with --no-traffic
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// Service name
    pub name: String,
    /// Shares per revision adding up to 100, e.g. r1=90,r2=10; LATEST=N for whatever revision is the latest
    #[arg(value_name = "REV=PERCENT,...")]
    pub split: Option<String>,
    /// Send everything to the latest revision (tags stay reachable at 0%)
    #[arg(long)]
    pub to_latest: bool,
    /// Give REV its own URL <tag>-<name>.<domain> (REV gets 0% if the split does not name it); repeat for several
    #[arg(long, value_name = "REV=TAG")]
    pub tag: Vec<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Add a custom domain; ordered at once if its TXT record is there, else prints the record to create
    Add {
        /// Service name
        name: String,
        /// Host name, e.g. shop.example.com
        domain: String,
    },
    /// Check the domain's TXT record and order the domain once it holds your token
    Verify {
        /// Service name
        name: String,
        /// Host name
        domain: String,
    },
    /// List the service's domains: pending (with the record to create), verified, active
    #[command(visible_alias = "ls")]
    List {
        /// Service name
        name: String,
    },
    /// Remove a custom domain (an order taking it off the service, if it was ordered)
    #[command(visible_alias = "rm")]
    Remove {
        /// Service name
        name: String,
        /// Host name
        domain: String,
    },
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Service name
    pub name: String,
    /// Wait until the service is gone
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct OrdersArgs {
    /// Show at most this many orders (newest first)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Only the orders waiting for a review, with their pull requests (oldest first)
    #[arg(long)]
    pub pending: bool,
    #[command(subcommand)]
    pub command: Option<OrdersCommand>,
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Show one order with its pull request and history
    #[command(visible_alias = "get")]
    Show {
        /// Order ID
        id: String,
    },
    /// Approve (merge) an order's pull request that awaits review
    Approve {
        /// Order ID
        id: String,
    },
    /// Reject an order's pull request that awaits review (the PR is closed, nothing is merged)
    Reject {
        /// Order ID
        id: String,
        /// Why, recorded on the order
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Start of the window: an RFC 3339 time (2026-01-01T00:00:00Z) or a date (2026-01-01, midnight UTC)
    /// [default: start of the current UTC month]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<i64>,
    /// End of the window, exclusive, like --from [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<i64>,
    /// Show a month's invoice instead (YYYY-MM; the current month without a value): a line per service, net, VAT
    /// and gross (admins)
    #[arg(long, value_name = "MONTH", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["from", "to"])]
    pub invoice: Option<String>,
    /// With --invoice: print it as CSV
    #[arg(long, requires = "invoice")]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// OCI image layout directory, a tar of one (`docker save` since Docker 25, `skopeo copy … oci-archive:`), or a
    /// classic `docker save` archive; gzip-compressed tars too
    #[arg(value_name = "LOCAL-IMAGE")]
    pub image: std::path::PathBuf,
    /// Repository name below your organization, with an optional tag: `web`, `tools/builder:1.2` (default tag
    /// latest)
    #[arg(long, value_name = "NAME[:TAG]")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Service name
    pub name: String,
    /// Keep streaming new lines (also of revisions started later) until interrupted
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Show the last N lines first (1–10000)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub tail: u32,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create or replace a secret: it holds exactly the given keys afterwards. Apps read a key with
    /// `maxcloud deploy --secret-env VAR=NAME:KEY`
    Set {
        /// Secret name (DNS-1123 label)
        name: String,
        /// KEY=VALUE (the value may contain '='); repeat for several. Prefer --from-file for sensitive values:
        /// command lines are visible to other users of this machine
        #[arg(value_name = "KEY=VALUE")]
        values: Vec<String>,
        /// KEY=PATH: the key's value is the file's content; repeat for several
        #[arg(long = "from-file", value_name = "KEY=PATH")]
        from_file: Vec<String>,
    },
    /// List secrets with their keys (never values)
    #[command(visible_alias = "ls")]
    List,
    /// Delete a secret (its Secret is removed from the cluster)
    #[command(visible_alias = "rm")]
    Delete {
        /// Secret name
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries at or after this RFC 3339 time or date
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Only entries before this RFC 3339 time or date
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<i64>,
    /// Only this action, e.g. orders.create
    #[arg(long)]
    pub action: Option<String>,
    /// At most this many entries, newest first (1–1000)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Export as JSON lines (one entry per line), e.g. for a SIEM
    #[arg(long)]
    pub jsonl: bool,
}

/// An RFC 3339 time or a date (midnight UTC), as seconds since the Unix epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .or_else(|_| time::Date::parse(text, &date).map(|d| d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| "expected an RFC 3339 time (2026-01-01T00:00:00Z) or a date (2026-01-01)".to_string())
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Set the policy of one kind and action (admins): `maxcloud policies set Database delete review --reviewer dba`
    Set {
        /// Kind (e.g. Database) or plural, case-insensitive
        kind: String,
        action: Action,
        policy: MergePolicyArg,
        /// Git provider login that must approve (repeatable; review only)
        #[arg(long = "reviewer", value_name = "LOGIN")]
        reviewers: Vec<String>,
        /// Approving reviews needed (review only; default 1, at least the number of reviewers)
        #[arg(long, value_name = "N")]
        approvals: Option<i64>,
    },
    /// Return one kind and action to the catalog's default (admins)
    Reset { kind: String, action: Action },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MergePolicyArg {
    /// Merged as soon as the pull request is open
    Auto,
    /// Merged once approved on the pull request
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Catalog kind (App, Database, ...) or plural
    pub kind: String,
    /// Resource name (DNS-1123 label)
    pub name: String,
    /// Set a parameter: dotted key, `[N]` for array elements (`scaling.maxScale=5`, `env[0].name=FOO`).
    /// The value is JSON when it parses as JSON (5, true, null, "5", [..], {..}), else a string
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Parameters file, YAML or JSON (`-` = stdin); --set values apply on top
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// What to do with the resource
    #[arg(long, value_enum, default_value_t = Action::Create)]
    pub action: Action,
    /// Idempotency key: repeating an order with the same key returns the first order
    #[arg(long, value_name = "K")]
    pub idempotency_key: Option<String>,
    /// Show the monthly price estimate (and validate the parameters) without ordering
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("maxcloud").chain(args.iter().copied()))
    }

    /// The global organisation flag does not take `auth register --org NAME` (the new organisation's name).
    #[test]
    fn tenant_is_global_and_register_keeps_its_org() {
        let cli = parse(&["auth", "register", "--email", "a@b.example", "--org", "Acme Shop"]).unwrap();
        assert!(cli.tenant.is_none());
        assert!(matches!(cli.command, Command::Auth(AuthCommand::Register { ref org, .. }) if org == "Acme Shop"));
        let cli = parse(&["list", "--tenant", "acme-shop"]).unwrap();
        assert_eq!(cli.tenant.as_deref(), Some("acme-shop"));
        let cli = parse(&["--tenant", "b", "auth", "register", "--email", "a@b.example", "--org", "Acme"]).unwrap();
        assert_eq!(cli.tenant.as_deref(), Some("b"));
    }

    #[test]
    fn api_key_alias_and_orders_forms() {
        for alias in ["api-keys", "api-key"] {
            let cli = parse(&["auth", alias, "create", "--name", "ci"]).unwrap();
            assert!(matches!(
                cli.command,
                Command::Auth(AuthCommand::ApiKeys(ApiKeysCommand::Create { name: Some(ref n) })) if n == "ci"
            ));
        }
        let cli = parse(&["orders", "--limit", "5"]).unwrap();
        assert!(matches!(cli.command, Command::Orders(OrdersArgs { limit: Some(5), pending: false, command: None })));
        let cli = parse(&["orders", "--pending"]).unwrap();
        assert!(matches!(cli.command, Command::Orders(OrdersArgs { pending: true, command: None, .. })));
        let cli = parse(&["orders", "show", "ord_1"]).unwrap();
        assert!(matches!(cli.command, Command::Orders(OrdersArgs { command: Some(OrdersCommand::Show { .. }), .. })));
        let cli = parse(&["-o", "json", "orders", "approve", "ord_1"]).unwrap();
        assert_eq!(cli.output, Format::Json);
    }

    #[test]
    fn deploy_repeated_flags_and_hyphen_values() {
        let cli = parse(&[
            "deploy",
            "nginx",
            "--name",
            "shop",
            "--command",
            "sh",
            "--command",
            "-c",
            "--args",
            "echo hi",
            "--env",
            "A=1",
            "-e",
            "B=x=y",
            "--visibility",
            "internal",
            "--wait",
            "--timeout",
            "5",
            "-o",
            "yaml",
        ])
        .unwrap();
        assert_eq!(cli.output, Format::Yaml);
        let Command::Deploy(d) = cli.command else { panic!("not deploy") };
        assert_eq!(d.command, ["sh", "-c"]);
        assert_eq!(d.args, ["echo hi"]);
        assert_eq!(d.env, ["A=1", "B=x=y"]);
        assert_eq!(d.visibility, Some(Visibility::Internal));
        assert!(d.wait.wait);
        assert_eq!(d.wait.timeout, 5);
        assert!(parse(&["deploy", "nginx"]).is_err(), "--name is required");
        assert!(parse(&["deploy", "nginx", "--name", "x", "--visibility", "world"]).is_err());
    }

    #[test]
    fn usage_times_are_rfc3339_or_dates() {
        let cli = parse(&["usage", "--from", "2026-01-01", "--to", "2026-01-01T01:00:00+01:00"]).unwrap();
        let Command::Usage(u) = cli.command else { panic!("not usage") };
        assert_eq!((u.from, u.to), (Some(1_767_225_600), Some(1_767_225_600)));
        let err = parse(&["usage", "--to", "yesterday"]).unwrap_err().to_string();
        assert!(err.contains("--to") && err.contains("RFC 3339"), "{err}");
        assert!(parse(&["usage", "--from", "2026-13-01"]).is_err());
    }

    #[test]
    fn order_flags() {
        let cli = parse(&["order", "App", "shop", "--set", "image=nginx", "-f", "-", "--action", "update"]).unwrap();
        let Command::Order(o) = cli.command else { panic!("not order") };
        assert_eq!(o.action, Action::Update);
        assert_eq!(o.file.as_deref(), Some("-"));
        assert_eq!(o.set, ["image=nginx"]);
    }
}
