//! Every file in fixtures/config/valid (and config/*.toml) parses; each file in
//! fixtures/config/invalid fails with the message in its `# expect:` first line.

use std::path::{Path, PathBuf};

use oauth_mail_proxy::config::Config;
use secrecy::SecretString;

fn hash() -> String {
    oauth_mail_proxy::accounts::hash_password(&SecretString::from("test-only"))
}

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", dir.display());
    v
}

fn parse(path: &Path, hash: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("@HASH@", hash)
        .replace("REPLACE-WITH-OUTPUT-OF-hash-password", hash);
    Config::parse(&text, path).map_err(|e| e.to_string())
}

#[test]
fn valid_fixtures_and_examples_parse() {
    let h = hash();
    let mut all = files("tests/fixtures/config/valid");
    all.extend(files("config"));
    for f in all {
        if let Err(e) = parse(&f, &h) {
            panic!("{} should parse: {e}", f.display());
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_their_message() {
    let h = hash();
    for f in files("tests/fixtures/config/invalid") {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks a `# expect:` line", f.display()));
        match parse(&f, &h) {
            Ok(_) => panic!("{} should not parse", f.display()),
            Err(e) => {
                assert!(
                    e.contains(expect),
                    "{}: error {e:?} does not contain {expect:?}",
                    f.display()
                );
                assert!(
                    e.contains(&f.display().to_string()),
                    "error {e:?} does not name the file"
                );
            }
        }
    }
}

#[test]
fn resolved_values() {
    let h = hash();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = parse(&dir.join("tests/fixtures/config/valid/loopback.toml"), &h).unwrap();
    let l = &c.listeners[0];
    assert_eq!(l.bind.to_string(), "[::1]:1143");
    assert_eq!(l.upstream.servers[0].port, 10143);
    let (cert, _) = l.cert.as_ref().unwrap();
    assert!(cert.is_absolute() && cert.ends_with("tests/fixtures/config/valid/local.pem"));
    assert_eq!(c.proxy.state_dir, PathBuf::from("/tmp/omp-state"));
    assert_eq!(c.proxy.refresh_margin.as_secs(), 120);
    assert_eq!(c.proxy.refresh_token_warning.as_secs(), 3 * 24 * 3600);
    let a = &c.accounts[0];
    assert_eq!(a.upstream_username, "bob@example.com");
    assert_eq!(a.oauth.scopes, ["mail", "offline_access"]);

    let m = parse(&dir.join("tests/fixtures/config/valid/minimal.toml"), &h).unwrap();
    assert_eq!(m.listeners[0].bind.to_string(), "127.0.0.1:1143");
    assert_eq!(
        m.listeners[0].upstream.servers[0].port, 993,
        "implicit TLS default port"
    );
    assert!(
        m.proxy
            .state_dir
            .ends_with("tests/fixtures/config/valid/state")
    );
    assert_eq!(m.accounts[0].upstream_username, "alice@example.com");

    let all = parse(
        &dir.join("tests/fixtures/config/valid/all_protocols.toml"),
        &h,
    )
    .unwrap();
    let ports: Vec<(u16, u16)> = all
        .listeners
        .iter()
        .map(|l| (l.bind.port(), l.upstream.servers[0].port))
        .collect();
    assert_eq!(
        ports,
        [(1143, 143), (1110, 995), (1587, 587)],
        "default local and upstream ports"
    );
    let smtp = &all.listeners[2].upstream.servers;
    assert_eq!(smtp.len(), 2);
    assert_eq!(smtp[1].to_string(), "smtp2.example.com:2525");

    let ms = parse(&dir.join("config/microsoft.toml"), &h).unwrap();
    let o = &ms.accounts[0].oauth;
    assert_eq!(
        o.token_url.as_str(),
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    );
    assert!(o.scopes.iter().any(|s| s == "offline_access"));
    assert!(o.client_secret.is_none());
}

#[test]
fn secrets_do_not_show_in_debug() {
    let h = hash();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = parse(&dir.join("config/example.toml"), &h).unwrap();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("your-client-secret"),
        "client secret leaked into Debug output"
    );
}

#[test]
fn flow_keys_resolve() {
    use oauth_mail_proxy::config::Flow;
    let h = hash();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = parse(&dir.join("tests/fixtures/config/valid/flows.toml"), &h).unwrap();
    let a = &c.accounts[0].oauth;
    assert_eq!(a.flow, Flow::AuthorizationCode);
    assert_eq!(a.login_hint.as_deref(), Some("alice@contoso.com"));
    assert_eq!(a.prompt.as_deref(), Some("select_account"));
    assert_eq!(
        a.redirect_uri.as_ref().unwrap().as_str(),
        "http://localhost:8400/callback"
    );
    assert_eq!(a.refresh_url.as_str(), "https://login.example.com/refresh");
    assert_eq!(
        a.token_scopes.as_deref(),
        Some(&["offline_access".to_string()][..])
    );
    assert!(a.device_authorization_url.is_none());

    let d = &c.accounts[1].oauth;
    assert_eq!(d.flow, Flow::DeviceCode);
    assert_eq!(
        d.device_authorization_url.as_ref().unwrap().as_str(),
        "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"
    );
    assert_eq!(
        d.refresh_url, d.token_url,
        "refresh_url defaults to token_url"
    );
    assert!(d.login_hint.is_none() && d.token_scopes.is_none());
    use oauth_mail_proxy::config::EncryptWith;
    assert_eq!(
        c.accounts[0].encrypt_with,
        EncryptWith::StateKey,
        "the default"
    );
    assert_eq!(c.accounts[1].encrypt_with, EncryptWith::ClientPassword);

    let custom = &c.accounts[2].oauth;
    assert_eq!(
        custom.device_authorization_url.as_ref().unwrap().as_str(),
        "http://127.0.0.1:9000/device"
    );

    assert_eq!(
        c.accounts[4].oauth.redirect_uri.as_ref().unwrap().as_str(),
        "https://localhost:8443/callback",
        "https:// loopback redirects are accepted"
    );
    let cc = &c.accounts[3].oauth;
    assert_eq!(cc.flow, Flow::ClientCredentials);
    assert_eq!(cc.scopes, ["https://outlook.office365.com/.default"]);
    assert_eq!(
        cc.token_url.as_str(),
        "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token"
    );

    let google = "[[account]]\nusername = \"a\"\npassword_hash = \"@HASH@\"\nprovider = \"google\"\nclient_id = \"id\"\nflow = \"device_code\"\n"
        .replace("@HASH@", &h);
    let g = Config::parse(&google, Path::new("g.toml")).unwrap();
    let g = &g.accounts[0].oauth;
    assert_eq!(
        g.device_authorization_url.as_ref().unwrap().as_str(),
        "https://oauth2.googleapis.com/device/code"
    );
    assert_eq!(g.scopes, ["https://mail.google.com/"]);
}

#[test]
fn limits_resolve_with_listener_overrides() {
    use std::time::Duration;
    let h = hash();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = parse(&dir.join("tests/fixtures/config/valid/limits.toml"), &h).unwrap();
    assert_eq!(c.proxy.max_connections, 500);
    assert_eq!(c.proxy.max_connections_per_source, 0, "0 = unlimited");
    let (imap, pop3) = (&c.listeners[0], &c.listeners[1]);
    assert_eq!(imap.limits.max_line, 600, "the listener's key wins");
    assert_eq!(imap.limits.max_auth_failures, 1);
    assert_eq!(imap.preauth_timeout, Duration::from_secs(5));
    assert_eq!(imap.idle_timeout, Duration::from_secs(2));
    assert_eq!(imap.limits.max_literal, 2048, "not overridden: [proxy]'s");
    assert_eq!(imap.limits.max_errors, 4);
    assert_eq!(
        pop3.limits, c.proxy.limits,
        "no overrides: [proxy]'s limits"
    );
    assert_eq!(pop3.limits.max_line, 4096);
    assert_eq!(pop3.limits.max_sasl, 8192);
    assert_eq!(pop3.preauth_timeout, Duration::from_secs(30));
    assert_eq!(pop3.idle_timeout, Duration::from_secs(40 * 60));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("limits.toml:19: `listener.idle_timeout`: 2s is under 31 minutes"),
        "{:?}",
        c.warnings
    );

    let m = parse(&dir.join("tests/fixtures/config/valid/minimal.toml"), &h).unwrap();
    let l = &m.listeners[0];
    assert_eq!(l.limits, oauth_mail_proxy::proto::Limits::default());
    assert_eq!(
        (l.limits.max_line, l.limits.max_literal, l.limits.max_sasl),
        (8192, 4096, 12288)
    );
    assert_eq!((l.limits.max_auth_failures, l.limits.max_errors), (3, 5));
    assert_eq!(l.preauth_timeout, Duration::from_secs(60));
    assert_eq!(l.idle_timeout, Duration::from_secs(35 * 60));
    assert_eq!(m.proxy.max_connections, 10_000);
    assert_eq!(m.proxy.max_connections_per_source, 1_000);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn short_proxy_idle_timeout_warns_only_for_imap_listeners() {
    let h = hash();
    let text = "[proxy]\nidle_timeout = \"10m\"\n\n[[listener]]\nprotocol = \"smtp\"\nupstream = \"smtp.example.com\"\n\n[[listener]]\nprotocol = \"imap\"\nupstream = \"imap.example.com\"\n\n[[account]]\nusername = \"a\"\npassword_hash = \"@HASH@\"\nclient_id = \"id\"\nauthorize_url = \"https://a.example.com/a\"\ntoken_url = \"https://a.example.com/t\"\n"
        .replace("@HASH@", &h);
    let c = Config::parse(&text, Path::new("w.toml")).unwrap();
    assert_eq!(
        c.warnings,
        [
            "w.toml:2: `proxy.idle_timeout`: 10m is under 31 minutes: IMAP IDLE clients (which re-issue IDLE every 29 minutes) may be cut off"
        ]
    );
    let smtp_only = text
        .split("\n\n[[listener]]\nprotocol = \"imap\"")
        .next()
        .unwrap()
        .to_string()
        + "\n\n[[account]]\nusername = \"a\"\npassword_hash = \""
        + &h
        + "\"\nclient_id = \"id\"\nauthorize_url = \"https://a.example.com/a\"\ntoken_url = \"https://a.example.com/t\"\n";
    let c = Config::parse(&smtp_only, Path::new("w.toml")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn admin_keys_resolve() {
    let h = hash();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = parse(&dir.join("tests/fixtures/config/valid/admin.toml"), &h).unwrap();
    let a = c.proxy.admin.as_ref().expect("admin configured");
    assert_eq!(a.bind.to_string(), "127.0.0.1:8025");
    assert_eq!(a.password_hash.as_deref(), Some(h.as_str()));
    assert_eq!(c.proxy.drain_timeout, std::time::Duration::from_secs(10));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let m = parse(&dir.join("tests/fixtures/config/valid/minimal.toml"), &h).unwrap();
    assert!(m.proxy.admin.is_none(), "off when absent");
    assert_eq!(m.proxy.drain_timeout, std::time::Duration::from_secs(30));

    let probes_only = Config::parse("[proxy]\nadmin = \"[::1]:0\"\n", Path::new("w.toml")).unwrap();
    assert_eq!(probes_only.proxy.admin.unwrap().password_hash, None);
    assert_eq!(
        probes_only.warnings,
        ["w.toml:2: `proxy.admin`: no `admin_password_hash`: only /healthz and /readyz are usable"]
    );
    let remote = format!("[proxy]\nadmin = \"0.0.0.0:8025\"\nadmin_password_hash = \"{h}\"\n");
    let remote = Config::parse(&remote, Path::new("w.toml")).unwrap();
    assert!(
        remote.warnings[0].starts_with("w.toml:2: `proxy.admin`: the admin listener is reachable"),
        "{:?}",
        remote.warnings
    );
}

/// `*_env` keys and `OAUTH_MAIL_PROXY_CONFIG`, through the binary (the variables
/// are set on the child only).
#[test]
fn env_keys_and_config_path_from_the_environment() {
    use std::process::Command;
    let h = hash();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env.toml");
    std::fs::write(
        &file,
        "[proxy]\nadmin = \"127.0.0.1:0\"\nadmin_password_hash_env = \"OMP_T_ADMIN\"\n\n\
         [[account]]\nusername = \"svc@example.com\"\npassword_hash_env = \"OMP_T_HASH\"\n\
         client_id = \"id\"\nclient_secret_env = \"OMP_T_SECRET\"\nflow = \"client_credentials\"\n\
         token_url = \"https://a.example.com/t\"\n",
    )
    .unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-mail-proxy"));
        cmd.arg("check-config")
            .current_dir(dir.path())
            .env_remove("OMP_T_ADMIN")
            .env_remove("OMP_T_HASH")
            .env_remove("OMP_T_SECRET")
            .env("OAUTH_MAIL_PROXY_CONFIG", &file);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let all = [
        ("OMP_T_ADMIN", h.as_str()),
        ("OMP_T_HASH", h.as_str()),
        ("OMP_T_SECRET", "generated-at-test-time"),
    ];
    let (ok, out) = run(&all);
    assert!(ok, "{out}");
    assert!(
        out.contains("env.toml: ok (0 listener(s), 1 account(s))"),
        "{out}"
    );
    let (ok, out) = run(&all[..2]);
    assert!(!ok);
    assert!(
        out.contains(
            "env.toml:9: `account.client_secret_env`: environment variable OMP_T_SECRET is not set"
        ),
        "{out}"
    );
    let (ok, out) = run(&[all[0], all[2], ("OMP_T_HASH", "not-a-hash")]);
    assert!(!ok);
    assert!(out.contains("env.toml:7: `account.password_hash`"), "{out}");
    assert!(
        !out.contains("not-a-hash"),
        "the value is not echoed: {out}"
    );
}
