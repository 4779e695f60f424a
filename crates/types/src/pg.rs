//! PostgreSQL columns of the shared types (the `postgres` feature), as the
//! SQLite ones: names and states are TEXT, times RFC 3339 TEXT (their
//! `Display` form), and a column read back is validated like any other
//! input, so a corrupt row is an error, never a value that skipped the rules.

use std::error::Error;

use bytes::BytesMut;
use postgres_types::{FromSql, IsNull, ToSql, Type, accepts, to_sql_checked};

use crate::{ExecutionId, FunctionName, Role, Subject, TenantId, Timestamp, VersionState};

type BoxError = Box<dyn Error + Sync + Send>;

macro_rules! text_column {
    ($($ty:ty),* $(,)?) => {$(
        impl ToSql for $ty {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
                self.to_string().as_str().to_sql(ty, out)
            }
            accepts!(TEXT, VARCHAR);
            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $ty {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                Ok(<&str as FromSql<'_>>::from_sql(ty, raw)?.parse::<$ty>()?)
            }
            accepts!(TEXT, VARCHAR);
        }
    )*};
}

text_column!(
    FunctionName,
    TenantId,
    Subject,
    ExecutionId,
    Role,
    VersionState,
    Timestamp
);
