//! The schema's own refusals of raw SQL, the counterparts of the SQLite
//! tamper tests: every rule the registry keeps is kept again by the
//! database, whatever writes to it.

use aifn_test_support::psql_at;
use aifn_types::{Role, VersionState};

use super::{accepted, refused};
use crate::{postgres_fixture, principal, sha256_hex, subject, target, tenant, upload};

#[test]
fn the_schema_refuses_tampering() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let other = sha256_hex(b"other");
    // Activation without an approve decision bound to the hash.
    refused(url, "UPDATE versions SET state = 'active'");
    // A decision bound to another hash.
    refused(
        url,
        &format!(
            "INSERT INTO decisions (version_id, action, actor, at, notes, sha256) \
             SELECT id, 'approve', 'eve', 'now', 'x', '{other}' FROM versions"
        ),
    );
    // Swapping the module of a version, or its bytes; even a no-op write.
    refused(url, &format!("UPDATE versions SET sha256 = '{other}'"));
    refused(url, "UPDATE versions SET report = report");
    refused(url, "UPDATE modules SET bytes = '\\x00'::bytea");
    // Skipping the state machine; deleting.
    refused(url, "UPDATE versions SET state = 'bogus'");
    refused(url, "UPDATE versions SET state = 'superseded'");
    refused(url, "DELETE FROM versions");
    refused(url, "TRUNCATE versions CASCADE");
    // A version with no module, or not starting pending.
    refused(
        url,
        &format!(
            "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, manifest, report) \
             SELECT function_id, 2, '{other}', 'eve', 'now', 'pending', '', '{{}}', '{{}}' FROM versions"
        ),
    );
    refused(
        url,
        "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, manifest, report) \
         SELECT function_id, 2, sha256, 'eve', 'now', 'active', '', '{}', '{}' FROM versions",
    );
    // A decided activation goes in; a second active version of the function
    // does not (the one-active index), even with its decision.
    let decide = |version: u32| {
        format!(
            "INSERT INTO decisions (version_id, action, actor, at, notes, sha256) \
             SELECT id, 'approve', 'eve', '2030-01-01T00:00:00Z', 'x', sha256 FROM versions WHERE version = {version}; \
             UPDATE versions SET state = 'active' WHERE version = {version}"
        )
    };
    accepted(
        url,
        "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, manifest, report) \
         SELECT function_id, 2, sha256, author, uploaded_at, 'pending', description, manifest, report FROM versions",
    );
    accepted(url, &decide(1));
    refused(url, &decide(2));
    // Decisions are append-only.
    refused(url, "UPDATE decisions SET notes = 'other'");
    refused(url, "DELETE FROM decisions");
    let after = f.reg.get_version(&v.tenant, &v.name, 1).expect("get");
    assert_eq!(
        (after.state, after.sha256.as_str(), after.decisions.len()),
        (VersionState::Active, v.sha256.as_str(), 1)
    );
    assert_eq!(
        f.reg.get_version(&v.tenant, &v.name, 2).expect("v2").state,
        VersionState::Pending
    );
}

#[test]
fn the_schema_keeps_keys_policies_and_settings_to_their_rules() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    let key = f
        .reg
        .create_key(
            &tenant("acme"),
            Role::Agent,
            &subject("bot"),
            &subject("cli"),
        )
        .expect("key");
    refused(url, "UPDATE api_keys SET role = 'admin'");
    refused(url, "UPDATE api_keys SET secret_sha256 = secret_sha256");
    refused(url, "UPDATE api_keys SET revoked_at = 'now'");
    accepted(
        url,
        "UPDATE api_keys SET revoked_at = 'now', revoked_by = 'eve'",
    );
    refused(
        url,
        "UPDATE api_keys SET revoked_at = 'later', revoked_by = 'eve'",
    );
    assert!(f.reg.authenticate(&key.secret).is_err(), "revoked");
    let history = |version: u32| {
        format!(
            "INSERT INTO policy_history (tenant, subject, version, policy, updated_at, updated_by) \
             VALUES ('acme', 'bot', {version}, '{{}}', 'now', 'carol')"
        )
    };
    refused(url, &history(2));
    accepted(url, &history(1));
    refused(url, &history(1));
    refused(url, &history(3));
    accepted(url, &history(2));
    refused(url, "UPDATE policy_history SET policy = '[]'");
    refused(url, "DELETE FROM policy_history");
    refused(url, "TRUNCATE policy_history CASCADE");
    refused(
        url,
        "INSERT INTO agent_policies (tenant, subject, version) VALUES ('acme', 'bot', 7)",
    );
    let settings = "INSERT INTO tenant_settings (tenant, settings, version, updated_at, updated_by) \
                    VALUES ('acme', '{}', VERSION, 'now', 'carol')";
    refused(url, &settings.replace("VERSION", "2"));
    accepted(url, &settings.replace("VERSION", "1"));
    refused(url, "UPDATE tenant_settings SET version = 3");
    refused(
        url,
        "UPDATE tenant_settings SET tenant = 'other', version = 2",
    );
    accepted(url, "UPDATE tenant_settings SET version = 2");
}

#[test]
fn the_database_refuses_an_approval_of_failing_tests_without_the_override() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    let failing = crate::source_and_tests::upload_tested(&f.reg, "a", &[("rounds", false)]);
    let insert = |version: u32, flag: &str| {
        format!(
            "INSERT INTO decisions (version_id, action, actor, at, notes, sha256, override_failing_tests) \
             SELECT v.id, 'approve', 'eve', '2030-01-01T00:00:00Z', 'x', v.sha256, {flag} \
             FROM versions v WHERE v.version = {version}"
        )
    };
    let (ok, out) = psql_at(url, &insert(1, "false"));
    assert!(
        !ok && out.contains("ERROR:  23000") && out.contains("needs the override"),
        "{out}"
    );
    // With the override it goes in (the code path would also record it).
    accepted(url, &insert(1, "true"));
    // A version whose tests pass needs none.
    crate::source_and_tests::upload_tested(&f.reg, "b", &[("adds", true)]);
    accepted(url, &insert(2, "false"));
    let read = f
        .reg
        .get_version(&failing.tenant, &failing.name, 1)
        .expect("get");
    assert!(read.decisions[0].override_failing_tests);
}

#[test]
fn the_schema_keeps_sources_whole_and_immutable() {
    let f = postgres_fixture();
    let url = f.url.as_deref().expect("postgres");
    let v = upload(
        &f.reg,
        &principal("acme", Role::Author, "alice"),
        "calc",
        "x",
    );
    let sha = sha256_hex(b"text");
    refused(
        url,
        &format!(
            "UPDATE versions SET source_language = 'wat', source = 'text', source_sha256 = '{sha}'"
        ),
    );
    let insert = |language: &str, text: &str, sha256: &str| {
        format!(
            "INSERT INTO versions (function_id, version, sha256, author, uploaded_at, state, description, \
             manifest, report, source_language, source, source_sha256) \
             SELECT function_id, 2, sha256, 'eve', 'now', 'pending', '', '{{}}', '{{}}', {language}, {text}, {sha256} \
             FROM versions"
        )
    };
    let quoted = format!("'{sha}'");
    refused(url, &insert("'wat'", "NULL", "NULL"));
    refused(url, &insert("NULL", "'text'", &quoted));
    refused(url, &insert("'wat'", "'text'", "NULL"));
    refused(url, &insert("'c'", "'text'", &quoted));
    refused(url, &insert("'wat'", "'text'", "'ABC'"));
    // Schema 4 knows JavaScript too; a whole source of it is accepted.
    accepted(
        url,
        &format!(
            "BEGIN; {}; ROLLBACK;",
            insert("'javascript'", "'text'", &quoted)
        ),
    );
    assert_eq!(f.reg.source(&target(&v)).expect("untouched"), None);
    assert_eq!(f.reg.next_version(&v.tenant, &v.name).expect("next"), 2);
}
