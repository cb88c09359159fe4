//! Unit tests of the app-password file: add, list, revoke, digests, old versions.

use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn add_list_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let live = AppPasswords::in_state_dir(&state);
    assert!(live.for_account("a").is_empty());
    let pw = add(&state, "a", "helpdesk").unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&pw).len(), 24);
    let mode = std::fs::metadata(path_in(&state))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(path_in(&state)).unwrap();
    assert!(!text.contains(secrecy::ExposeSecret::expose_secret(&pw)));
    assert!(matches!(
        add(&state, "a", "helpdesk"),
        Err(AppPasswordError::Exists { .. })
    ));
    assert!(matches!(
        add(&state, "a", "bad name"),
        Err(AppPasswordError::BadName)
    ));
    add(&state, "a", "scanner").unwrap();
    let names: Vec<_> = list(&state, "a")
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["helpdesk", "scanner"]);
    assert_eq!(live.for_account("a").len(), 2);
    revoke(&state, "a", "helpdesk").unwrap();
    assert!(matches!(
        revoke(&state, "a", "helpdesk"),
        Err(AppPasswordError::NotFound { .. })
    ));
    let live_names: Vec<_> = live.for_account("a").into_iter().map(|p| p.0).collect();
    assert_eq!(live_names, ["scanner"]);
    assert!(live.for_account("b").is_empty());
}

#[test]
fn stores_a_digest_of_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let live = AppPasswords::in_state_dir(dir.path());
    let pw = add(dir.path(), "a", "phone").unwrap();
    let stored = live.for_account("a");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, digest(pw.expose_secret().as_bytes()));
    assert_ne!(stored[0].1, digest(b"another password"));
    let text = std::fs::read_to_string(path_in(dir.path())).unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    assert!(text.contains(&hex(&stored[0].1)), "{text}");
    assert_eq!(unhex(&hex(&stored[0].1)), Some(stored[0].1));
    assert_eq!(unhex("zz"), None);
}

#[test]
fn refuses_a_version_1_file_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        path_in(dir.path()),
        r#"{"version":1,"accounts":{"a":[{"name":"x","hash":"$argon2id$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$ZmFrZQ","created":1}]}}"#,
    )
    .unwrap();
    let err = list(dir.path(), "a").unwrap_err().to_string();
    assert!(
        err.contains("version 1") && err.contains("app-password add"),
        "{err}"
    );
    let err = add(dir.path(), "a", "y").unwrap_err().to_string();
    assert!(err.contains("delete this file"), "{err}");
    // The running proxy counts it as no app passwords.
    assert!(
        AppPasswords::in_state_dir(dir.path())
            .for_account("a")
            .is_empty()
    );
}

#[test]
fn refuses_a_bad_digest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        path_in(dir.path()),
        r#"{"version":2,"accounts":{"a":[{"name":"x","sha256":"abc","created":1}]}}"#,
    )
    .unwrap();
    let err = list(dir.path(), "a").unwrap_err().to_string();
    assert!(err.contains("64 hex digits"), "{err}");
}
