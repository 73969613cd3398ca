//! TLS of the gateway as an HTTP client, toward a backend or a policy's outbound host behind a
//! private PKI: the CA bundle the server's certificate is checked against, and a client
//! certificate for a server that asks for one (mTLS). Read and checked once, at load, so a
//! missing or broken file fails `validate` with its place.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::Secret;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM CA certificates: the only roots the server's certificate is checked against (the
    /// public roots are not trusted for it). A relative path is taken from the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain, sent to a server that asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The client certificate's PEM private key: a secret (`{file: ...}` or `{env: ...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
}

/// What an HTTP client is built from: PEM bytes, checked.
#[derive(Clone, Default)]
pub struct TlsMaterial {
    /// The CA bundle, when one replaces the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate chain followed by its key, as an identity reads them.
    pub identity_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity holds a private key: never printed.
        f.debug_struct("TlsMaterial").field("ca", &self.ca_pem.is_some()).field("client_certificate", &self.identity_pem.is_some()).finish()
    }
}

impl ClientTls {
    /// Takes relative paths from `dir`, the config file's directory.
    pub fn anchor(&mut self, dir: &Path) {
        for p in [&mut self.ca, &mut self.cert].into_iter().flatten() {
            if p.is_relative() && !dir.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        }
        if let Some(k) = &mut self.key {
            k.anchor(dir);
        }
    }

    /// Reads the files and checks they hold what they should; the error names the field.
    pub fn load(&self) -> Result<TlsMaterial, (&'static str, String)> {
        let mut out = TlsMaterial::default();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).map_err(|e| ("ca", format!("cannot read {}: {e}", ca.display())))?;
            certificates(&pem).map_err(|e| ("ca", format!("{}: {e}", ca.display())))?;
            out.ca_pem = Some(pem);
        }
        match (&self.cert, &self.key) {
            (None, None) => {}
            (Some(_), None) => return Err(("key", "a client certificate needs its `key`".into())),
            (None, Some(_)) => return Err(("cert", "a client `key` needs its certificate, `cert`".into())),
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert).map_err(|e| ("cert", format!("cannot read {}: {e}", cert.display())))?;
                certificates(&pem).map_err(|e| ("cert", format!("{}: {e}", cert.display())))?;
                let key = key.reveal().map_err(|e| ("key", e.to_string()))?;
                PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| ("key", "not a PEM private key".to_owned()))?;
                pem.push(b'\n');
                pem.extend_from_slice(key.as_bytes());
                out.identity_pem = Some(pem);
            }
        }
        Ok(out)
    }
}

fn certificates(pem: &[u8]) -> Result<(), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() { Err("holds no certificate".into()) } else { Ok(()) }
}

impl TlsMaterial {
    /// `builder` trusting this CA bundle alone (when there is one) and presenting this client
    /// certificate (when there is one).
    pub fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        if let Some(ca) = &self.ca_pem {
            // A private CA replaces the public roots for this client, not adds to them.
            builder = builder.tls_built_in_root_certs(false);
            for cert in reqwest::Certificate::from_pem_bundle(ca)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(id) = &self.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(id)?);
        }
        Ok(builder)
    }
}
