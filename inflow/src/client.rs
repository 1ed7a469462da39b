//! Client subcommands: talk to a running server over HTTP.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Where the server is and who we are.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The server's URL.
    #[arg(long, env = "INFLOW_HOST", default_value = "http://127.0.0.1:8181", global = true)]
    host: String,
    /// The token to authenticate with (an admin token for these commands).
    #[arg(long, env = "INFLOW_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

/// Output formats of client commands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Human-readable text.
    Pretty,
    /// JSON.
    Json,
    /// CSV.
    Csv,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CreateCommand {
    /// Create a token: `--admin` for the operator token, or `--name` with
    /// `--permission` for a resource token (`--name` alone makes a named admin token).
    Token(CreateToken),
}

#[derive(Debug, Args)]
pub(crate) struct CreateToken {
    /// Create the operator admin token (works without --token only while none exists).
    #[arg(long, conflicts_with_all = ["name", "permission"])]
    admin: bool,
    /// Regenerate the operator admin token; the old one stops working.
    #[arg(long, requires = "admin")]
    regenerate: bool,
    /// The token's name.
    #[arg(long)]
    name: Option<String>,
    /// A permission: `db:NAME[,NAME...]:read[,write]`, `db:*:write` or
    /// `system:*:read`. Repeat for more.
    #[arg(long, requires = "name")]
    permission: Vec<String>,
    /// Seconds until the token expires (default: never).
    #[arg(long)]
    expiry: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "pretty")]
    format: OutputFormat,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeleteCommand {
    /// Delete (revoke) a token by name.
    Token {
        /// The token's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ShowCommand {
    /// List tokens (never their secrets).
    Tokens {
        /// Output format.
        #[arg(long, value_enum, default_value = "pretty")]
        format: OutputFormat,
        #[command(flatten)]
        client: ClientArgs,
    },
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn request(c: &ClientArgs, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let url = format!("{}{}", c.host.trim_end_matches('/'), path);
    let req = reqwest::Client::new().request(method, url);
    match &c.token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

async fn send(req: reqwest::RequestBuilder) -> Result<String, Box<dyn std::error::Error>> {
    let r = req.send().await.map_err(|e| format!("cannot reach the server: {e}"))?;
    let status = r.status();
    let body = r.text().await?;
    if !status.is_success() {
        let msg = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(body);
        return Err(format!("server answered {status}: {msg}").into());
    }
    Ok(body)
}

/// Parses `db:a,b:read,write` into the API's permission object.
fn parse_permission(p: &str) -> Result<Value, String> {
    let parts: Vec<&str> = p.split(':').collect();
    let [kind, names, actions] = parts.as_slice() else {
        return Err(format!("invalid --permission '{p}': expected TYPE:NAMES:ACTIONS, like db:mydb:read,write"));
    };
    if !matches!(*kind, "db" | "system") {
        return Err(format!("invalid --permission '{p}': the type is db or system"));
    }
    let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    if names.is_empty() || actions.is_empty() || actions.iter().any(|a| !matches!(*a, "read" | "write")) {
        return Err(format!("invalid --permission '{p}': give names (or *) and actions read and/or write"));
    }
    Ok(json!({"resource_type": kind, "resource_names": names, "actions": actions}))
}

pub(crate) async fn create(cmd: CreateCommand) -> CliResult {
    let CreateCommand::Token(t) = cmd;
    let c = &t.client;
    let req = if t.admin {
        let path = if t.regenerate {
            "/api/v3/configure/token/admin/regenerate"
        } else {
            "/api/v3/configure/token/admin"
        };
        request(c, reqwest::Method::POST, path)
    } else {
        let name = t.name.ok_or("give --admin, or --name (with --permission for a resource token)")?;
        if t.permission.is_empty() {
            request(c, reqwest::Method::POST, "/api/v3/configure/token/named_admin")
                .json(&json!({"token_name": name, "expiry_secs": t.expiry}))
        } else {
            let permissions = t
                .permission
                .iter()
                .map(|p| parse_permission(p))
                .collect::<Result<Vec<_>, _>>()?;
            request(c, reqwest::Method::POST, "/api/v3/enterprise/configure/token")
                .json(&json!({"token_name": name, "permissions": permissions, "expiry_secs": t.expiry}))
        }
    };
    let body = send(req).await?;
    let v: Value = serde_json::from_str(&body)?;
    match t.format {
        OutputFormat::Json => println!("{body}"),
        OutputFormat::Pretty | OutputFormat::Csv => {
            println!("Token: {}", v["token"].as_str().unwrap_or_default());
            println!("Name: {}", v["name"].as_str().unwrap_or_default());
            if let Some(e) = v["expiry"].as_str() {
                println!("Expires: {e}");
            }
            eprintln!("Store the token now: it is not shown again.");
        }
    }
    Ok(())
}

pub(crate) async fn delete(cmd: DeleteCommand) -> CliResult {
    let DeleteCommand::Token { name, client } = cmd;
    send(request(&client, reqwest::Method::DELETE, "/api/v3/configure/token").query(&[("token_name", &name)])).await?;
    println!("Token '{name}' deleted");
    Ok(())
}

pub(crate) async fn show(cmd: ShowCommand) -> CliResult {
    let ShowCommand::Tokens { format, client } = cmd;
    let format = match format {
        OutputFormat::Pretty => "pretty",
        OutputFormat::Json => "json",
        OutputFormat::Csv => "csv",
    };
    let q = "SELECT token_id, name, admin, permissions, created_at, expiry FROM system.tokens ORDER BY token_id";
    let body = send(
        request(&client, reqwest::Method::GET, "/api/v3/query_sql").query(&[("db", "_internal"), ("q", q), ("format", format)]),
    )
    .await?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(())
}
