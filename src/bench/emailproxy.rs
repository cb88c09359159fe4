//! email-oauth2-proxy (`pip install emailproxy`) as a child process for the
//! comparison mode: a generated config with one `[IMAP-PORT]` server (plain locally,
//! implicit TLS to the MiniImap upstream, which it verifies against the upstream
//! certificate through `SSL_CERT_FILE`) and one account whose tokens are stored the
//! way emailproxy stores them (Fernet, key = PBKDF2-SHA256 of the account password
//! with `token_salt`, 1.2 M iterations).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::env::{Env, PASSWORD, USER};
use super::served::Served;

/// Is `emailproxy` importable by `python3`?
pub fn available() -> bool {
    Command::new("python3")
        .args(["-c", "import emailproxy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes emailproxy's INI config; every value comes from the environment.
const WRITE_CONFIG: &str = r#"
import base64, configparser, os
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
e = os.environ
salt, iterations = os.urandom(16), 1200000
key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt,
                 iterations=iterations).derive(e['EP_PASSWORD'].encode())
f = Fernet(base64.urlsafe_b64encode(key))
c = configparser.ConfigParser(interpolation=None)
c['IMAP-' + e['EP_PORT']] = {'server_address': '127.0.0.1', 'server_port': e['EP_UP_PORT'],
                             'local_address': '127.0.0.1'}
c[e['EP_USER']] = {
    'permission_url': e['EP_AUTHORIZE_URL'], 'token_url': e['EP_TOKEN_URL'],
    'oauth2_scope': 'mail', 'redirect_uri': 'http://localhost',
    'client_id': e['EP_CLIENT_ID'], 'client_secret': e['EP_CLIENT_SECRET'],
    'token_salt': base64.b64encode(salt).decode(), 'token_iterations': str(iterations),
    'access_token': f.encrypt(e['EP_ACCESS'].encode()).decode(),
    'access_token_expiry': e['EP_EXPIRY'],
    'refresh_token': f.encrypt(e['EP_REFRESH'].encode()).decode(),
}
with open(e['EP_CONFIG'], 'w') as out:
    c.write(out)
"#;

pub struct EmailProxy {
    process: Served,
    pub addr: SocketAddr,
}

impl EmailProxy {
    /// Generates the config and starts `python3 -m emailproxy --no-gui`; waits until
    /// it accepts connections.
    pub fn start(env: &Env) -> Result<EmailProxy, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = env.dir.path().join("emailproxy");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let config = dir.join("emailproxy.config");
        let (access, refresh) = env.auth.mint_tokens(USER);
        let expiry = oauth_mail_proxy::oauth::outcome::unix_now() + 3600;
        let c = env.auth.config();
        let status = Command::new("python3")
            .args(["-c", WRITE_CONFIG])
            .env("EP_PASSWORD", PASSWORD)
            .env("EP_PORT", port.to_string())
            .env("EP_UP_PORT", env.imaps.addr().port().to_string())
            .env("EP_USER", USER)
            .env("EP_AUTHORIZE_URL", env.auth.authorize_url())
            .env("EP_TOKEN_URL", env.auth.token_url())
            .env("EP_CLIENT_ID", &c.client_id)
            .env("EP_CLIENT_SECRET", &c.client_secret)
            .env("EP_ACCESS", access)
            .env("EP_REFRESH", refresh)
            .env("EP_EXPIRY", expiry.to_string())
            .env("EP_CONFIG", &config)
            .status()
            .map_err(|e| format!("python3: {e}"))?;
        if !status.success() {
            return Err(format!("writing the emailproxy config failed: {status}"));
        }
        let mut cmd = super::proc::command_under_test("python3");
        cmd.args(["-m", "emailproxy", "--no-gui", "--config-file"])
            .arg(&config)
            .arg("--log-file")
            .arg(dir.join("emailproxy.log"))
            .env("SSL_CERT_FILE", env.upstream_ca())
            .current_dir(&dir);
        let addr = ([127, 0, 0, 1], port).into();
        let process = Served::spawn(
            cmd,
            "emailproxy",
            &dir.join("stderr.log"),
            &[addr],
            Duration::from_secs(30),
        )?;
        Ok(EmailProxy { process, addr })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
    pub fn cpu(&self) -> f64 {
        self.process.cpu()
    }
    pub fn rss_kib(&self) -> u64 {
        self.process.rss_kib()
    }
    pub fn hwm_kib(&self) -> u64 {
        self.process.hwm_kib()
    }
}
