//! Each service reads and writes only its own tables (ARCHITECTURE.md,
//! tenancy): every service crate's source (`services/<name>/src/**/*.rs`)
//! is scanned for the tables of other owners in the migrations' ownership
//! map, and every table the migrations create must have an owner there.
//!
//! What counts as naming a table, precisely enough that ordinary words do
//! not (a tag `"users"` in an OpenAPI attribute, "users" in prose):
//! - a string literal that is exactly the table's name where a table name
//!   goes: `Alias::new("t")`, `table_name = "t"`, `.table("t")`,
//!   `.from("t")`, `into_table("t")`, `from_table("t")`, a `const …: &str =
//!   "t"`, or a match arm `=> "t"`;
//! - SQL inside a string literal: the name right after `FROM`, `JOIN`,
//!   `INTO`, `UPDATE`, `TABLE` or `REFERENCES`;
//! - a path into another service's storage: `switchboard_<owner>::store`
//!   or `switchboard_<owner>::…::entities::…` (its entity modules).
//!
//! The binary (`services/switchboard`) is not scanned: it composes the
//! services and runs the migrations, and owns the platform's tables.

use std::path::{Path, PathBuf};

use switchboard_migrations::ownership::{Owner, TABLES, owner_of};

/// One place a service names a table it does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    table: String,
    owner: &'static str,
    how: &'static str,
}

/// A string literal of the source: its text, where it starts, and the code
/// just before it.
struct Literal {
    text: String,
    line: usize,
    before: String,
}

/// Splits Rust source into code (comments and literals blanked out) and
/// its string literals (plain, byte and raw). Char literals and lifetimes
/// are left in the code.
fn lex(source: &str) -> (String, Vec<Literal>) {
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let mut literals = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                code.push(' ');
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    code.push_str("  ");
                    i += 2;
                    continue;
                }
                if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    code.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                code.push(blank(chars[i]));
                i += 1;
            }
            continue;
        }
        // Raw strings: r"…", r#"…"#, br#"…"#.
        let raw_start = match (c, next) {
            ('r', Some('"' | '#')) => Some(i + 1),
            ('b', Some('r')) if matches!(chars.get(i + 2), Some('"' | '#')) => Some(i + 2),
            _ => None,
        };
        let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if let (Some(start), false) = (raw_start, ident_before) {
            let mut j = start;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let start_line = line;
                let before = code.clone();
                let mut text = String::new();
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    if chars[j] == '\n' {
                        line += 1;
                    }
                    text.push(chars[j]);
                    j += 1;
                }
                for &c in &chars[i..j.min(chars.len())] {
                    code.push(blank(c));
                }
                literals.push(Literal {
                    text,
                    line: start_line,
                    before: tail(&before),
                });
                i = j;
                continue;
            }
        }
        if c == '"' {
            let start_line = line;
            let before = code.clone();
            let mut text = String::new();
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    text.push(chars[j + 1]);
                    if chars[j + 1] == '\n' {
                        line += 1;
                    }
                    j += 2;
                    continue;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                text.push(chars[j]);
                j += 1;
            }
            for &c in &chars[i..=j.min(chars.len() - 1)] {
                code.push(blank(c));
            }
            literals.push(Literal {
                text,
                line: start_line,
                before: tail(&before),
            });
            i = j + 1;
            continue;
        }
        // A char literal such as '"' must not open a string.
        if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            code.push_str("   ");
            i += 3;
            continue;
        }
        if c == '\'' && next == Some('\\') {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(chars.len() - 1) {
                code.push(' ');
            }
            i = j + 1;
            continue;
        }
        if c == '\n' {
            line += 1;
        }
        code.push(c);
        i += 1;
    }
    (code, literals)
}

/// The last 80 characters of code before a literal, whitespace squeezed.
fn tail(code: &str) -> String {
    let squeezed: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = squeezed.len().saturating_sub(80);
    let mut start = start;
    while !squeezed.is_char_boundary(start) {
        start += 1;
    }
    squeezed[start..].to_owned()
}

/// Code that puts the literal right after it where a table name goes.
const TABLE_POSITIONS: &[&str] = &[
    "Alias::new(",
    "table_name =",
    ".table(",
    ".from(",
    "into_table(",
    "from_table(",
    "=>",
];

fn in_table_position(before: &str) -> bool {
    let before = before.trim_end();
    TABLE_POSITIONS
        .iter()
        .any(|position| before.ends_with(position))
        || (before.ends_with("&str =") && before.contains("const "))
}

const SQL_KEYWORDS: &[&str] = &["from", "join", "into", "update", "table", "references"];

/// Tables named in SQL text: the word after a keyword.
fn sql_tables(text: &str) -> Vec<String> {
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut tables = Vec::new();
    for pair in words.windows(2) {
        if SQL_KEYWORDS.contains(&pair[0].as_str()) {
            let mut name = pair[1].clone();
            // `… IF EXISTS t`, `… ONLY t`.
            if matches!(name.as_str(), "if" | "only") {
                continue;
            }
            name.retain(|c| c != '"');
            tables.push(name);
        }
    }
    tables
}

/// The tables of other owners that `source` (a file of service `service`)
/// names, by the rules of the module documentation.
fn violations(service: &str, file: &str, source: &str) -> Vec<Violation> {
    let foreign = |table: &str| -> Option<Owner> {
        owner_of(table).filter(|owner| owner.service() != Some(service))
    };
    let mut found = Vec::new();
    let (code, literals) = lex(source);
    for literal in &literals {
        if in_table_position(&literal.before)
            && let Some(owner) = foreign(&literal.text)
        {
            found.push(Violation {
                file: file.to_owned(),
                line: literal.line,
                table: literal.text.clone(),
                owner: owner.name(),
                how: "table name",
            });
        }
        for table in sql_tables(&literal.text) {
            if let Some(owner) = foreign(&table) {
                found.push(Violation {
                    file: file.to_owned(),
                    line: literal.line,
                    table,
                    owner: owner.name(),
                    how: "SQL",
                });
            }
        }
    }
    for (index, text) in code.lines().enumerate() {
        let squeezed: String = text.split_whitespace().collect();
        for owner in [Owner::Identity, Owner::Webhooks, Owner::Routing] {
            if owner.service() == Some(service) {
                continue;
            }
            let krate = format!("switchboard_{}::", owner.name());
            let Some(at) = squeezed.find(&krate) else {
                continue;
            };
            let path = &squeezed[at + krate.len()..];
            if path.starts_with("store") || path.contains("entities::") {
                found.push(Violation {
                    file: file.to_owned(),
                    line: index + 1,
                    table: path.chars().take(60).collect(),
                    owner: owner.name(),
                    how: "storage path",
                });
            }
        }
    }
    found
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn services_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../services")
}

#[test]
fn no_service_names_a_table_another_service_owns() {
    let mut all = Vec::new();
    let mut scanned = 0;
    for entry in std::fs::read_dir(services_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let service = dir.file_name().unwrap().to_string_lossy().into_owned();
        if service == "switchboard" || !dir.join("src").is_dir() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            let name = file.display().to_string();
            all.extend(violations(&service, &name, &source));
            scanned += 1;
        }
    }
    assert!(scanned > 50, "scanned only {scanned} files");
    assert!(
        all.is_empty(),
        "service crates name tables they do not own:\n{}",
        all.iter()
            .map(|v| format!(
                "  {}:{}: {} `{}` of {}",
                v.file, v.line, v.how, v.table, v.owner
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_scan_finds_each_way_of_naming_anothers_table() {
    let bad = r##"
use switchboard_identity::store::entities::{audit_event, client_org, tenant, user, user_client};
fn a() {
    let query = Query::select().from(Alias::new("users")).to_owned();
    let sql = "SELECT time_zone FROM tenants WHERE id = $1";
    let raw = r#"INSERT INTO audit_events (id) VALUES ($1)"#;
    const TABLE: &str = "webhook_deliveries";
}
"##;
    let found = violations("routing", "bad.rs", bad);
    let tables: Vec<(&str, &str)> = found.iter().map(|v| (v.table.as_str(), v.how)).collect();
    assert!(tables.contains(&("users", "table name")), "{found:?}");
    assert!(tables.contains(&("tenants", "SQL")), "{found:?}");
    assert!(tables.contains(&("audit_events", "SQL")), "{found:?}");
    assert!(
        tables.contains(&("webhook_deliveries", "table name")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|v| v.how == "storage path" && v.owner == "identity" && v.line == 2),
        "{found:?}"
    );
    assert_eq!(found.len(), 5, "{found:?}");
    // The event backbone's tables belong to crates/events alone.
    let found = violations(
        "webhooks",
        "bad.rs",
        r#"let q = "DELETE FROM processed_events";"#,
    );
    assert_eq!(found[0].owner, "events");
}

#[test]
fn ordinary_words_and_own_tables_are_not_violations() {
    let fine = r##"
// The users of the tenant: SELECT * FROM users (a comment).
/* FROM tenants */
#[utoipa::path(get, path = "/v1/users", tag = "users")]
fn b() {
    let message = "no such user in this tenant";
    let prose = "a queue's users and tenants";
    let own = Alias::new("routing_queues");
    let sql = "SELECT id FROM routing_directory_users WHERE tenant_id = $1";
    let c = '"';
    let s = "tenants";
}
"##;
    assert_eq!(violations("routing", "fine.rs", fine), []);
    // Identity names its own tables.
    let own = r#"#[sea_orm(table_name = "users")] pub struct Model;"#;
    assert_eq!(violations("identity", "own.rs", own), []);
    assert_eq!(violations("routing", "theirs.rs", own).len(), 1);
}

#[tokio::test]
async fn every_table_the_migrations_create_has_an_owner() {
    use switchboard_migrations::{Migrator, MigratorTrait};
    let (url, _dir) = switchboard_test_utils::fresh_sqlite_database();
    let db = sea_orm::Database::connect(&url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &db,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
    )
    .await
    .unwrap();
    let created: Vec<String> = rows
        .iter()
        .map(|row| row.try_get("", "name").unwrap())
        .collect();
    assert!(
        created.contains(&"routing_directory_users".to_owned()),
        "{created:?}"
    );
    let orphans: Vec<&String> = created
        .iter()
        .filter(|table| owner_of(table).is_none())
        .collect();
    assert!(
        orphans.is_empty(),
        "tables without an owner in ownership.rs: {orphans:?}"
    );
    for (table, _) in TABLES {
        assert!(
            created.contains(&(*table).to_owned()),
            "{table} is listed but no migration creates it"
        );
    }
}

#[test]
fn migrations_keep_their_names_and_order() {
    // A database knows its applied migrations by these names; grouping
    // the files by service must not change them.
    assert_eq!(
        switchboard_migrations::migration_names(),
        [
            "m20261123_000001_create_installation",
            "m20261123_000002_create_identity",
            "m20261123_000003_create_events",
            "m20261123_000004_create_webhooks",
            "m20261204_000005_create_routing",
            "m20261204_000006_relay_cursor",
            "m20261206_000007_brin_time_indexes",
            "m20261207_000008_least_privilege",
            "m20261207_000009_credential_rights",
            "m20261210_000010_identity_projection",
            "m20261214_000011_create_edge",
            "m20261215_000012_create_edge_trunks",
            "m20261216_000013_plan_call_limits",
            "m20261216_000014_edge_call_limits",
            "m20261217_000015_edge_trunk_registrations",
        ]
    );
}
