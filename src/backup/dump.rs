//! The database dump, taken in-process: per table `COPY (SELECT cols FROM t ORDER BY key) TO STDOUT` in
//! text format, inside one `REPEATABLE READ, READ ONLY` transaction, with pg_dump's portability settings.
//! No `pg_dump` binary; generated columns are left out (Postgres computes them again on load).

use crate::error::Result;
use sqlx::PgConnection;

/// The session settings under which dumps are written and loaded (pg_dump's).
pub const PORTABLE_SETTINGS: &str = "set local datestyle = 'ISO'; set local intervalstyle = 'postgres'; set local extra_float_digits = 3; \
     set local timezone = 'UTC'";

/// A table's dump statement and its columns.
#[derive(Debug, Clone)]
pub struct TableDump {
    /// The table.
    pub name: String,
    /// Its stored (not generated) columns, in order.
    pub columns: Vec<String>,
    /// The `COPY … TO STDOUT` statement.
    pub statement: String,
}

/// Quotes an identifier for SQL.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Reads `table`'s columns and key from the catalog and builds its dump statement.
pub fn describe<'a>(
    conn: &'a mut PgConnection,
    table: &'a str,
) -> futures::future::BoxFuture<'a, Result<TableDump>> {
    Box::pin(describe_inner(conn, table))
}

async fn describe_inner(conn: &mut PgConnection, table: &str) -> Result<TableDump> {
    let columns: Vec<String> = sqlx::query_scalar!(
        r#"select column_name as "name!" from information_schema.columns
           where table_schema = 'public' and table_name = $1 and is_generated = 'NEVER'
           order by ordinal_position"#,
        table
    )
    .fetch_all(&mut *conn)
    .await?;
    if columns.is_empty() {
        return Err(anyhow::anyhow!("the table {table} to back up does not exist").into());
    }
    let key: Vec<String> = sqlx::query_scalar!(
        r#"select a.attname::text as "name!"
           from pg_index i
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
           where i.indrelid = ('public.' || quote_ident($1))::regclass and i.indisprimary
           order by array_position(i.indkey::int2[], a.attnum)"#,
        table
    )
    .fetch_all(&mut *conn)
    .await?;
    // Without a primary key, every column orders the rows (the dump is then deterministic too).
    let order = if key.is_empty() { &columns } else { &key };
    let list = |names: &[String]| {
        names
            .iter()
            .map(|name| quote(name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let statement = format!(
        "copy (select {} from public.{} order by {}) to stdout",
        list(&columns),
        quote(table),
        list(order)
    );
    Ok(TableDump {
        name: table.to_owned(),
        columns,
        statement,
    })
}

/// The `COPY … FROM STDIN` statement that loads a dump of `columns` into `table`.
pub fn load_statement(table: &str, columns: &[String]) -> String {
    format!(
        "copy public.{} ({}) from stdin",
        quote(table),
        columns
            .iter()
            .map(|name| quote(name))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("users"), "\"users\"");
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            load_statement("pets", &["id".to_owned(), "name".to_owned()]),
            "copy public.\"pets\" (\"id\", \"name\") from stdin"
        );
    }
}
