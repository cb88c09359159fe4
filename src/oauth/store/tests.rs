use std::os::unix::fs::PermissionsExt;

use secrecy::ExposeSecret;

use super::*;

fn record(account: &str, access: &str) -> TokenRecord {
    TokenRecord {
        account: account.to_string(),
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from("refresh-secret")),
        expires_at: Some(1_900_000_000),
        scopes: vec!["mail".into(), "offline".into()],
        obtained_at: 1_700_000_000,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn roundtrip_and_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let store = TokenStore::open(&state).unwrap_or_else(|e| {
        // The environment may carry a key; the key-file path is tested separately.
        panic!("open: {e}")
    });
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(store.dir()), 0o700);

    assert!(store.load("alice").unwrap().is_none());
    let mut rec = record("alice", "access-1");
    rec.needs_login = Some("refresh token rejected".into());
    rec.last_refresh = Some(1_800_000_000);
    rec.refresh_expires_at = Some(1_950_000_000);
    store.save("alice", &rec).unwrap();
    let back = store.load("alice").unwrap().unwrap();
    assert_eq!(back.account, "alice");
    assert_eq!(back.access_token.expose_secret(), "access-1");
    assert_eq!(
        back.refresh_token.unwrap().expose_secret(),
        "refresh-secret"
    );
    assert_eq!(back.expires_at, Some(1_900_000_000));
    assert_eq!(back.scopes, rec.scopes);
    assert_eq!(back.obtained_at, 1_700_000_000);
    assert_eq!(back.last_refresh, Some(1_800_000_000));
    assert_eq!(back.refresh_expires_at, Some(1_950_000_000));
    assert_eq!(back.needs_login.as_deref(), Some("refresh token rejected"));

    let file = store.path_for("alice");
    assert_eq!(mode(&file), 0o600);
    // Nothing readable on disk.
    let raw = fs::read(&file).unwrap();
    for needle in [&b"access-1"[..], b"refresh-secret", b"alice"] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn wrong_key_fails_clearly_and_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let good = TokenStore::open_with_key(tmp.path(), TokenKey::generate()).unwrap();
    good.save("alice", &record("alice", "a")).unwrap();
    let before = fs::read(good.path_for("alice")).unwrap();

    let bad = TokenStore::open_with_key(tmp.path(), TokenKey::generate()).unwrap();
    let err = bad.load("alice").unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&good.path_for("alice").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("wrong key"), "{msg}");
    assert!(bad.list().is_err());

    let err = bad.save("alice", &record("alice", "b")).unwrap_err();
    assert!(matches!(err, StoreError::WouldOverwrite { .. }), "{err:?}");
    assert_eq!(fs::read(good.path_for("alice")).unwrap(), before);

    // delete works regardless, after which save does.
    assert!(bad.delete("alice").unwrap());
    assert!(!bad.delete("alice").unwrap());
    bad.save("alice", &record("alice", "b")).unwrap();
}

#[test]
fn swapped_file_between_accounts_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::open_with_key(tmp.path(), TokenKey::generate()).unwrap();
    store.save("alice", &record("alice", "a")).unwrap();
    store.save("mallory", &record("mallory", "m")).unwrap();
    fs::copy(store.path_for("mallory"), store.path_for("alice")).unwrap();
    let err = store.load("alice").unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    assert!(store.load("mallory").unwrap().is_some());
}

#[test]
fn corrupt_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::open_with_key(tmp.path(), TokenKey::generate()).unwrap();
    let path = store.path_for("alice");
    for junk in [&b""[..], b"garbage", b"OMPTOK1\nshort"] {
        fs::write(&path, junk).unwrap();
        let err = store.load("alice").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }
    // A flipped ciphertext bit is a decryption failure.
    store.delete("alice").unwrap();
    store.save("alice", &record("alice", "a")).unwrap();
    let mut data = fs::read(&path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 1;
    fs::write(&path, data).unwrap();
    assert!(matches!(
        store.load("alice"),
        Err(StoreError::Decrypt { .. })
    ));
}

#[test]
fn atomic_writes_leave_no_temp_files_and_list_works() {
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::open_with_key(tmp.path(), TokenKey::generate()).unwrap();
    for i in 0..5 {
        store
            .save("alice", &record("alice", &format!("a{i}")))
            .unwrap();
    }
    store.save("../../etc/passwd", &record("x", "x")).unwrap();
    store.save("bob@example.com", &record("bob", "b")).unwrap();
    let names = file_names(store.dir());
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| unhex32(n).is_some()), "{names:?}");
    assert_eq!(
        store.list().unwrap(),
        vec!["../../etc/passwd", "alice", "bob@example.com"]
    );
    assert_eq!(
        store
            .load("alice")
            .unwrap()
            .unwrap()
            .access_token
            .expose_secret(),
        "a4"
    );
    // Stray files are ignored by list.
    fs::write(store.dir().join(".tmp-leftover"), b"x").unwrap();
    assert_eq!(store.list().unwrap().len(), 3);
    assert!(store.delete("alice").unwrap());
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn debug_is_redacted() {
    let rec = record("alice", "access-very-secret");
    let dbg = format!("{rec:?}");
    assert!(!dbg.contains("access-very-secret") && !dbg.contains("refresh-secret"));
}

fn keyed_store(dir: &Path) -> TokenStore {
    TokenStore::open_with_key(dir, TokenKey::generate()).unwrap()
}

#[test]
fn client_password_roundtrip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = keyed_store(tmp.path());
    let pw = SecretString::from("correct horse battery");
    store
        .save_with_password("alice", &record("alice", "access-pw-1"), &pw)
        .unwrap();
    let data = fs::read(store.path_for("alice")).unwrap();
    assert!(data.starts_with(MAGIC_PW), "the client-password format");
    assert!(!contains(&data, b"access-pw-1") && !contains(&data, b"alice"));

    let back = store.load_with_password("alice", &pw).unwrap().unwrap();
    assert_eq!(back.access_token.expose_secret(), "access-pw-1");
    assert_eq!(
        back.refresh_token.unwrap().expose_secret(),
        "refresh-secret"
    );
    // Without the password: said so, nothing else; `list` skips the sealed record.
    assert!(matches!(
        store.load("alice"),
        Err(StoreError::PasswordRequired { .. })
    ));
    assert!(store.list().unwrap().is_empty());
    // A handle bound to the password reads and writes it like the plain API; the
    // salt is kept (one derivation per save), the nonce is fresh.
    let bound = store.with_password("alice", pw.clone());
    bound
        .save("alice", &record("alice", "access-pw-2"))
        .unwrap();
    let again = fs::read(store.path_for("alice")).unwrap();
    assert_eq!(again[..8 + SALT_LEN], data[..8 + SALT_LEN]);
    assert_ne!(again, data);
    let back = bound.load("alice").unwrap().unwrap();
    assert_eq!(back.access_token.expose_secret(), "access-pw-2");
    // A second key-file-less store (another state key) still opens it: the key is
    // the password alone.
    let other = keyed_store(tmp.path());
    assert!(other.load_with_password("alice", &pw).unwrap().is_some());
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn client_password_wrong_password_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = keyed_store(tmp.path());
    let pw = SecretString::from("right password");
    let wrong = SecretString::from("wrong password");
    store
        .save_with_password("alice", &record("alice", "access-1"), &pw)
        .unwrap();
    let path = store.path_for("alice");
    let before = fs::read(&path).unwrap();

    let e = store.load_with_password("alice", &wrong).unwrap_err();
    assert!(matches!(e, StoreError::Decrypt { .. }), "{e}");
    assert!(!e.to_string().contains("access-1"));
    let e = store
        .save_with_password("alice", &record("alice", "evil"), &wrong)
        .unwrap_err();
    assert!(matches!(e, StoreError::WouldOverwrite { .. }), "{e}");
    // The state key cannot replace it either.
    let e = store.save("alice", &record("alice", "evil")).unwrap_err();
    assert!(matches!(e, StoreError::WouldOverwrite { .. }), "{e}");
    assert_eq!(fs::read(&path).unwrap(), before, "file untouched");
    assert_eq!(file_names(store.dir()).len(), 1, "no stray temp file");
    assert!(store.load_with_password("alice", &pw).unwrap().is_some());
}

#[test]
fn client_password_tamper_and_swap_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = keyed_store(tmp.path());
    let pw = SecretString::from("pw");
    store
        .save_with_password("alice", &record("alice", "a"), &pw)
        .unwrap();
    store
        .save_with_password("bob", &record("bob", "b"), &pw)
        .unwrap();
    let path = store.path_for("alice");
    let good = fs::read(&path).unwrap();
    // Any flipped byte (salt, nonce or ciphertext) fails; a truncated file too.
    for i in [8, 8 + SALT_LEN, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 1;
        fs::write(&path, &bad).unwrap();
        assert!(store.load_with_password("alice", &pw).is_err(), "byte {i}");
    }
    fs::write(&path, &good[..20]).unwrap();
    assert!(matches!(
        store.load_with_password("alice", &pw),
        Err(StoreError::Corrupt { .. })
    ));
    // Bob's file copied over Alice's (same password) fails: the AAD binds the account.
    fs::copy(store.path_for("bob"), &path).unwrap();
    assert!(matches!(
        store.load_with_password("alice", &pw),
        Err(StoreError::Decrypt { .. })
    ));
}

#[test]
fn state_key_record_migrates_to_client_password() {
    let tmp = tempfile::tempdir().unwrap();
    let store = keyed_store(tmp.path());
    let pw = SecretString::from("pw");
    store.save("alice", &record("alice", "old")).unwrap();
    let rec = store.load_with_password("alice", &pw).unwrap().unwrap();
    assert_eq!(rec.access_token.expose_secret(), "old");
    store.save_with_password("alice", &rec, &pw).unwrap();
    assert!(
        fs::read(store.path_for("alice"))
            .unwrap()
            .starts_with(MAGIC_PW)
    );
    assert!(store.load_with_password("alice", &pw).unwrap().is_some());
}
