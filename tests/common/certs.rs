//! Test PKI generated at test time: a CA and a server certificate it signed, valid
//! for `IP:127.0.0.1` and `DNS:localhost`.

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
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().expect("dns name")),
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
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

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "oauth-mail-proxy test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn ca() -> CertifiedKey<KeyPair> {
    let signing_key = KeyPair::generate().expect("CA key");
    let cert = ca_params().self_signed(&signing_key).expect("self-sign CA");
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
