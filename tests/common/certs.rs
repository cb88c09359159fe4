//! Test PKI generated at test time: a CA and a server certificate it signed, valid
//! for `IP:127.0.0.1` and `DNS:localhost`; and [`UpstreamPki`], the good and bad
//! upstream certificates of the TLS refusal tests.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedKey, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// PEM files `ca.pem`, `server.pem` and `server.key` in a directory, and their text.
#[derive(Debug)]
pub struct TestCerts {
    /// Owned temporary directory, when [`TestCerts::generate`] made one.
    _dir: Option<TempDir>,
    pub ca_path: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCerts {
    /// Generates a fresh CA and server certificate into a new temporary directory.
    pub fn generate() -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("omp-certs")
            .tempdir()
            .expect("tempdir");
        let mut certs = Self::write_to(dir.path());
        certs._dir = Some(dir);
        certs
    }

    /// Generates a fresh CA and server certificate and writes them into `dir`
    /// (`ca.pem`, `server.pem`, `server.key`; the key with mode 0600).
    pub fn write_to(dir: &Path) -> TestCerts {
        let CertifiedKey {
            cert: ca_cert,
            signing_key: ca_key,
        } = ca();
        let server_key = KeyPair::generate().expect("server key");
        let params = leaf_params("localhost");
        let issuer = Issuer::new(ca_params(), &ca_key);
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("sign server cert");

        let certs = TestCerts {
            _dir: None,
            ca_path: dir.join("ca.pem"),
            cert_path: dir.join("server.pem"),
            key_path: dir.join("server.key"),
            ca_pem: ca_cert.pem(),
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        };
        std::fs::write(&certs.ca_path, &certs.ca_pem).expect("write ca.pem");
        std::fs::write(&certs.cert_path, &certs.cert_pem).expect("write server.pem");
        write_private(&certs.key_path, certs.key_pem.as_bytes());
        certs
    }

    /// The server certificate chain and key, for a rustls server in a test.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let chain =
            vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("cert pem")];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key pem");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(cfg)
    }

    /// A rustls client configuration trusting only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(&self.ca_pem)
    }
}

/// A rustls client configuration (ring provider) trusting only the CA in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA pem")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Parameters of a server certificate for `name` (and `IP:127.0.0.1` when the name is
/// `localhost`).
fn leaf_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = vec![SanType::DnsName(name.try_into().expect("dns name"))];
    if name == "localhost" {
        let ip = SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST));
        params.subject_alt_names.insert(0, ip);
    }
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A server certificate (PEM) and its key.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServerCert {
    /// A rustls server configuration (TLS 1.2 and 1.3) presenting this certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let chain =
            vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("cert pem")];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("key pem");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(cfg)
    }

    /// Writes `NAME.pem` and `NAME.key` (mode 0600) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        write_private(&key, self.key_pem.as_bytes());
        (cert, key)
    }
}

/// Upstream certificates for `localhost`: one signed by the test CA (trusted through
/// `upstream_ca`), and the ones the proxy must refuse: signed by the test CA but for
/// another name, signed by it but expired, self-signed, and signed by a CA the proxy
/// does not know.
#[derive(Debug)]
pub struct UpstreamPki {
    _dir: TempDir,
    /// The test CA's certificate, for `upstream_ca`.
    pub ca_path: PathBuf,
    pub good: ServerCert,
    pub wrong_name: ServerCert,
    pub expired: ServerCert,
    pub self_signed: ServerCert,
    pub unknown_ca: ServerCert,
}

impl UpstreamPki {
    pub fn generate() -> UpstreamPki {
        let dir = tempfile::Builder::new()
            .prefix("omp-upstream-pki")
            .tempdir()
            .expect("tempdir");
        const OTHER: &str = "some other CA";
        let ca = ca();
        let other_ca = named_ca(OTHER);
        let sign = |params: CertificateParams, by: &CertifiedKey<KeyPair>, name: &str| {
            let key = KeyPair::generate().expect("leaf key");
            let issuer = Issuer::new(named_ca_params(name), &by.signing_key);
            let cert = params.signed_by(&key, &issuer).expect("sign leaf");
            ServerCert {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            }
        };
        let mut expired = leaf_params("localhost");
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let self_key = KeyPair::generate().expect("self-signed key");
        // Its own subject (not `CN=localhost`, which a system store may hold, e.g.
        // Debian's snakeoil certificate), so no trusted certificate could be its issuer.
        let mut own = leaf_params("localhost");
        own.distinguished_name = rcgen::DistinguishedName::new();
        own.distinguished_name
            .push(DnType::CommonName, "self-signed test server");
        let self_signed = own.self_signed(&self_key).expect("self-sign leaf");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert.pem()).expect("write ca.pem");
        UpstreamPki {
            ca_path,
            good: sign(leaf_params("localhost"), &ca, CA_NAME),
            wrong_name: sign(leaf_params("wrong.example.com"), &ca, CA_NAME),
            expired: sign(expired, &ca, CA_NAME),
            self_signed: ServerCert {
                cert_pem: self_signed.pem(),
                key_pem: self_key.serialize_pem(),
            },
            unknown_ca: sign(leaf_params("localhost"), &other_ca, OTHER),
            _dir: dir,
        }
    }

    /// A directory that lives as long as this PKI, for files of the test.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

fn ca_params() -> CertificateParams {
    named_ca_params(CA_NAME)
}

const CA_NAME: &str = "oauth-mail-proxy test CA";

fn named_ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn ca() -> CertifiedKey<KeyPair> {
    named_ca(CA_NAME)
}

fn named_ca(name: &str) -> CertifiedKey<KeyPair> {
    let signing_key = KeyPair::generate().expect("CA key");
    let cert = named_ca_params(name)
        .self_signed(&signing_key)
        .expect("self-sign CA");
    CertifiedKey { cert, signing_key }
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create key file");
    f.write_all(bytes).expect("write key file");
}
