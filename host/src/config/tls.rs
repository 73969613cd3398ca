//! TLS for the client listener, with rustls. Certificates are read once at start; a bad file
//! fails `validate` and `serve` like any other config problem.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::TlsConfig;

/// Builds the acceptor, or says what is wrong with the files.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .map_err(|e| format!("cannot read certificate file {}: {e}", cfg.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate file {} is not PEM: {e}", cfg.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("certificate file {} holds no certificate", cfg.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| format!("cannot read a private key from {}: {e}", cfg.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not make a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
