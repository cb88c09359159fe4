//! rustls configurations: the local server side (configured or generated
//! certificate) and the upstream client side (system roots plus an optional extra CA,
//! always verified). One crypto provider, ring, is used explicitly so the library
//! never depends on a process-wide default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, RootCertStore, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot write generated certificate to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_err(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads all certificates of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no CERTIFICATE found"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| pem_err(path, format!("no usable private key: {e}")))
}

/// Server config for the local side from a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert)?, load_key(key)?)?;
    Ok(Arc::new(cfg))
}

/// Where a generated self-signed pair for the local side lives.
pub fn generated_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("certs");
    (dir.join("local-cert.pem"), dir.join("local-key.pem"))
}

/// Returns the generated self-signed local certificate, creating it on first use
/// (SAN: localhost, 127.0.0.1, ::1). The key is written with mode 0600.
pub fn ensure_generated(state_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert, key) = generated_paths(state_dir);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let dir = cert.parent().expect("has a parent");
    let werr = |p: &Path, source| TlsError::Write {
        path: p.display().to_string(),
        source,
    };
    // The state dir holds secrets: never let this be the call that creates it 0755.
    crate::private_file::create_private_dir(state_dir).map_err(|e| werr(state_dir, e))?;
    std::fs::create_dir_all(dir).map_err(|e| werr(dir, e))?;
    crate::private_file::write_private_file(&key, ck.signing_key.serialize_pem().as_bytes())
        .map_err(|e| werr(&key, e))?;
    std::fs::write(&cert, ck.cert.pem()).map_err(|e| werr(&cert, e))?;
    Ok((cert, key))
}

/// Client config for upstream connections: the system's roots (webpki-roots when the
/// system has none), plus `extra_ca` when given. Certificates are always verified.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(ca) = extra_ca {
        for c in load_certs(ca)? {
            roots
                .add(c)
                .map_err(|e| pem_err(ca, format!("not a usable CA certificate: {e}")))?;
        }
    }
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A failed TLS handshake in words, for the log: rustls's reason when there is one,
/// with the usual certificate problems (unknown issuer, expired, wrong name) and a
/// refused protocol version (TLS 1.2 is the minimum) spelled out.
pub fn describe_handshake_error(e: &std::io::Error) -> String {
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    match err {
        rustls::Error::InvalidCertificate(c) => describe_certificate_error(c),
        other => {
            let text = other.to_string();
            if format!("{other:?}").contains("Version") {
                format!("TLS protocol version refused (TLS 1.2 is the minimum): {text}")
            } else {
                text
            }
        }
    }
}

fn describe_certificate_error(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "certificate rejected: unknown issuer (self-signed, \
            or not signed by a trusted CA; trust a private CA with upstream_ca)"
            .to_owned(),
        CertificateError::Expired => "certificate rejected: certificate expired".to_owned(),
        CertificateError::NotValidForName => {
            "certificate rejected: certificate not valid for name".to_owned()
        }
        other => format!("certificate rejected: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn handshake_errors_say_why() {
        let unknown = io(CertificateError::UnknownIssuer.into());
        assert!(describe_handshake_error(&unknown).contains("unknown issuer"));
        let expired = io(CertificateError::Expired.into());
        assert!(describe_handshake_error(&expired).contains("certificate expired"));
        let name = io(CertificateError::NotValidForName.into());
        assert!(describe_handshake_error(&name).contains("not valid for name"));
        let alert = io(rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion,
        ));
        assert!(describe_handshake_error(&alert).contains("TLS 1.2 is the minimum"));
        let other = std::io::Error::other("connection reset");
        assert_eq!(describe_handshake_error(&other), "connection reset");
    }
}
