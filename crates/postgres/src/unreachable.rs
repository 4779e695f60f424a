//! Which failures mean the database is not there for now (a connection
//! not had, lost, or a server going down or starting), as opposed to a
//! statement the server refused. The registry answers the first with 503
//! and the audit log retries it on a fresh connection.

use tokio_postgres::error::SqlState;

/// Whether `e` says the server is not there: no answer at all (I/O,
/// closed, TLS, timeout: no SQLSTATE) or one of [`unreachable_code`]'s.
pub fn unreachable(e: &tokio_postgres::Error) -> bool {
    e.is_closed() || e.code().is_none_or(unreachable_code)
}

/// SQLSTATEs of a server that is going away or not ready: class 08
/// (connection exception), 57P01-57P03 (shutdown, crash, starting up),
/// 53300 (too many connections).
pub fn unreachable_code(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_a_server_going_away_are_unreachable_and_refusals_are_not() {
        for code in [
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ] {
            assert!(unreachable_code(&code), "{code:?}");
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::T_R_SERIALIZATION_FAILURE,
        ] {
            assert!(!unreachable_code(&code), "{code:?}");
        }
    }
}
