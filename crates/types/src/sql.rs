//! SQLite columns of the shared types (the `rusqlite` feature): names and
//! states are stored as their text, times as RFC 3339 text. Reading a
//! column validates it like any other input, so a corrupt row is an error,
//! never a value that skipped the rules.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::{ExecutionId, FunctionName, Role, Subject, TenantId, Timestamp, VersionState};

macro_rules! text_column {
    ($($ty:ty),* $(,)?) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )*};
}

text_column!(
    FunctionName,
    TenantId,
    Subject,
    ExecutionId,
    Role,
    VersionState
);

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Timestamp::parse(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn round_trip<T: ToSql + FromSql>(v: &T) -> (String, T) {
        let conn = Connection::open_in_memory().expect("db");
        conn.query_row("SELECT ?1, ?1", [v], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("round trip")
    }

    #[test]
    fn columns_are_the_text_forms_and_read_back() {
        let name = FunctionName::new("echo").expect("name");
        assert_eq!(round_trip(&name), ("echo".to_owned(), name));
        let t = TenantId::new("acme").expect("tenant");
        assert_eq!(round_trip(&t), ("acme".to_owned(), t));
        let s = Subject::new("alice@example.com").expect("subject");
        assert_eq!(round_trip(&s).1, s);
        let e = ExecutionId::new("0123abcd").expect("id");
        assert_eq!(round_trip(&e).1, e);
        assert_eq!(
            round_trip(&Role::Approver),
            ("approver".to_owned(), Role::Approver)
        );
        assert_eq!(
            round_trip(&VersionState::Superseded),
            ("superseded".to_owned(), VersionState::Superseded)
        );
        let ts = Timestamp::from_unix_ms(1_795_341_600_123).expect("time");
        assert_eq!(round_trip(&ts), ("2026-11-22T10:00:00.123Z".to_owned(), ts));
    }

    #[test]
    fn invalid_stored_text_is_an_error_not_a_value() {
        let conn = Connection::open_in_memory().expect("db");
        let bad = |sql: &str| -> bool {
            conn.query_row(sql, [], |r| {
                Ok((
                    r.get::<_, FunctionName>(0).is_err(),
                    r.get::<_, Role>(0).is_err(),
                    r.get::<_, VersionState>(0).is_err(),
                    r.get::<_, Timestamp>(0).is_err(),
                    r.get::<_, TenantId>(0).is_err(),
                ))
            })
            .map(|(a, b, c, d, e)| a && b && c && d && e)
            .expect("query")
        };
        assert!(bad("SELECT 'Not A Name!'"));
        assert!(bad("SELECT 42"));
        let ok = conn
            .query_row("SELECT 'active'", [], |r| r.get::<_, VersionState>(0))
            .expect("a state");
        assert_eq!(ok, VersionState::Active);
    }
}
