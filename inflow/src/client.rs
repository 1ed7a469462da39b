//! Client subcommands: talk to a running server over HTTP.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Where the server is and who we are.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The server's URL.
    #[arg(
        long,
        env = "INFLOW_HOST",
        default_value = "http://127.0.0.1:8181",
        global = true
    )]
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
    /// Create a database.
    Database {
        /// The database name.
        name: String,
        /// How long rows are kept, such as 30d or 1y (default: forever).
        #[arg(long)]
        retention_period: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a table with its tags and typed fields.
    Table {
        /// The table name.
        name: String,
        /// The database.
        #[arg(long, short = 'd')]
        database: String,
        /// Tag columns, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Field columns as NAME:TYPE, comma-separated; TYPE is utf8, int64,
        /// uint64, float64 or bool.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// How long rows are kept (default: the database's).
        #[arg(long)]
        retention_period: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
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
    /// Delete a database: a soft delete unless --hard-delete-at says when to
    /// remove it for good (now, never, default or an ISO 8601 time).
    Database {
        /// The database name.
        name: String,
        /// now, never, default or an ISO 8601 time.
        #[arg(long)]
        hard_delete_at: Option<String>,
        /// Delete only the rows; keep the schema, tokens and caches.
        #[arg(long)]
        data_only: bool,
        /// With --data-only, remove the tables too.
        #[arg(long, requires = "data_only")]
        remove_tables: bool,
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
    /// List databases.
    Databases {
        /// Include soft-deleted databases.
        #[arg(long)]
        show_deleted: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "pretty")]
        format: OutputFormat,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn format_param(f: OutputFormat) -> &'static str {
    match f {
        OutputFormat::Pretty => "pretty",
        OutputFormat::Json => "json",
        OutputFormat::Csv => "csv",
    }
}

fn print_body(body: &str) {
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
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
    let r = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
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
        return Err(format!(
            "invalid --permission '{p}': expected TYPE:NAMES:ACTIONS, like db:mydb:read,write"
        ));
    };
    if !matches!(*kind, "db" | "system") {
        return Err(format!(
            "invalid --permission '{p}': the type is db or system"
        ));
    }
    let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    if names.is_empty()
        || actions.is_empty()
        || actions.iter().any(|a| !matches!(*a, "read" | "write"))
    {
        return Err(format!(
            "invalid --permission '{p}': give names (or *) and actions read and/or write"
        ));
    }
    Ok(json!({"resource_type": kind, "resource_names": names, "actions": actions}))
}

pub(crate) async fn create(cmd: CreateCommand) -> CliResult {
    let t = match cmd {
        CreateCommand::Token(t) => t,
        CreateCommand::Database {
            name,
            retention_period,
            client,
        } => {
            let mut body = json!({"db": name});
            if let Some(r) = retention_period {
                body["retention_period"] = json!(r);
            }
            send(request(&client, reqwest::Method::POST, "/api/v3/configure/database").json(&body))
                .await?;
            println!("Database '{name}' created");
            return Ok(());
        }
        CreateCommand::Table {
            name,
            database,
            tags,
            fields,
            retention_period,
            client,
        } => {
            let fields = fields
                .iter()
                .map(|f| match f.split_once(':') {
                    Some((n, t)) if !n.is_empty() && !t.is_empty() => {
                        Ok(json!({"name": n, "type": t}))
                    }
                    _ => Err(format!(
                        "invalid --fields entry '{f}': expected NAME:TYPE, like temp:float64"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({"db": database, "table": name, "tags": tags, "fields": fields});
            if let Some(r) = retention_period {
                body["retention_period"] = json!(r);
            }
            send(request(&client, reqwest::Method::POST, "/api/v3/configure/table").json(&body))
                .await?;
            println!("Table '{name}' created in database '{database}'");
            return Ok(());
        }
    };
    let c = &t.client;
    let req = if t.admin {
        let path = if t.regenerate {
            "/api/v3/configure/token/admin/regenerate"
        } else {
            "/api/v3/configure/token/admin"
        };
        request(c, reqwest::Method::POST, path)
    } else {
        let name = t
            .name
            .ok_or("give --admin, or --name (with --permission for a resource token)")?;
        if t.permission.is_empty() {
            request(
                c,
                reqwest::Method::POST,
                "/api/v3/configure/token/named_admin",
            )
            .json(&json!({"token_name": name, "expiry_secs": t.expiry}))
        } else {
            let permissions = t
                .permission
                .iter()
                .map(|p| parse_permission(p))
                .collect::<Result<Vec<_>, _>>()?;
            request(
                c,
                reqwest::Method::POST,
                "/api/v3/enterprise/configure/token",
            )
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
    match cmd {
        DeleteCommand::Token { name, client } => {
            send(
                request(&client, reqwest::Method::DELETE, "/api/v3/configure/token")
                    .query(&[("token_name", &name)]),
            )
            .await?;
            println!("Token '{name}' deleted");
        }
        DeleteCommand::Database {
            name,
            hard_delete_at,
            data_only,
            remove_tables,
            client,
        } => {
            let mut q: Vec<(&str, String)> = vec![("db", name.clone())];
            if let Some(h) = hard_delete_at {
                q.push(("hard_delete_at", h));
            }
            if data_only {
                q.push(("data_only", "true".into()));
            }
            if remove_tables {
                q.push(("remove_tables", "true".into()));
            }
            send(
                request(
                    &client,
                    reqwest::Method::DELETE,
                    "/api/v3/configure/database",
                )
                .query(&q),
            )
            .await?;
            println!("Database '{name}' deleted");
        }
    }
    Ok(())
}

pub(crate) async fn show(cmd: ShowCommand) -> CliResult {
    let (format, client) = match cmd {
        ShowCommand::Tokens { format, client } => (format, client),
        ShowCommand::Databases {
            show_deleted,
            format,
            client,
        } => {
            let q = [
                ("format", format_param(format).to_string()),
                ("show_deleted", show_deleted.to_string()),
            ];
            let body = send(
                request(&client, reqwest::Method::GET, "/api/v3/configure/database").query(&q),
            )
            .await?;
            print_body(&body);
            return Ok(());
        }
    };
    let format = format_param(format);
    let q = "SELECT token_id, name, admin, permissions, created_at, expiry FROM system.tokens ORDER BY token_id";
    let body = send(
        request(&client, reqwest::Method::GET, "/api/v3/query_sql").query(&[
            ("db", "_internal"),
            ("q", q),
            ("format", format),
        ]),
    )
    .await?;
    print_body(&body);
    Ok(())
}
