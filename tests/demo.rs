//! The README's first command: `oauth-mail-proxy demo` runs the whole chain (test
//! authorization server, PKCE login, proxy, XOAUTH2-only upstream) and a legacy LOGIN
//! fetches the demo message through it.

use std::process::Command;

#[test]
fn demo_logs_in_through_the_proxy() {
    let out = Command::new(env!("CARGO_BIN_EXE_oauth-mail-proxy"))
        .args(["demo", "--once", "--bind", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("code_challenge_method=S256"), "{stdout}");
    assert!(stdout.contains("a1 OK [CAPABILITY"), "{stdout}");
    assert!(
        stdout.contains("the server only accepts OAuth 2.0. It worked."),
        "{stdout}"
    );
    assert!(
        stdout.contains("The upstream saw 1 OAuth login(s)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("LOGIN demo@example.com demo"),
        "the password is masked: {stdout}"
    );
}
