//! aifn-postgres against a real PostgreSQL server that takes TLS only,
//! with client certificates (test-support's `PostgresServer::start_tls`).

mod tls;
