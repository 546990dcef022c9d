//! SIP over TLS (RFC 3261 §26.2, `sips:`; Via transport `TLS`): the
//! listener's settings and the rustls configuration from PEM files.
//! Connections are framed as TCP's once the handshake is done.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A TLS listener: where, and the server's certificate and TLS settings
/// (see [`tls_server_config`]).
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub address: SocketAddr,
    pub config: Arc<ServerConfig>,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("reading certificates from {path}: {source}")]
    Certificates { path: PathBuf, source: pem::Error },
    #[error("no certificate in {path}")]
    NoCertificate { path: PathBuf },
    #[error("reading the private key from {path}: {source}")]
    Key { path: PathBuf, source: pem::Error },
    /// The key is not one rustls can use, or not the certificate's.
    #[error("the certificate and key are refused: {0}")]
    Refused(#[from] rustls::Error),
}

/// A server configuration from PEM files: `certificates` holds the chain
/// (the server's own certificate first, then the intermediates), `key` its
/// private key (PKCS #8, PKCS #1 or SEC1). TLS 1.2 and 1.3 on the process's
/// crypto provider (aws-lc-rs when none is installed); no client
/// certificates (phones authenticate with digest, RFC 3261 §22).
pub fn tls_server_config(
    certificates: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let chain = CertificateDer::pem_file_iter(certificates)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsConfigError::Certificates {
            path: certificates.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: certificates.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsConfigError::Key {
        path: key.to_owned(),
        source,
    })?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The configuration the edge connects to TLS servers (carriers' trunks)
/// with: the system's trusted roots (Debian's `ca-certificates`), plus
/// the certificates of `extra_roots` (a PEM file) when given, for a
/// carrier with a private CA. TLS 1.2 and 1.3; no client certificate.
pub fn tls_client_config(extra_roots: Option<&Path>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "a system root certificate could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system root certificates for TLS trunks");
    if let Some(path) = extra_roots {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|source| TlsConfigError::Certificates {
                path: path.to_owned(),
                source,
            })?;
        if certificates.is_empty() {
            return Err(TlsConfigError::NoCertificate {
                path: path.to_owned(),
            });
        }
        for certificate in certificates {
            roots.add(certificate)?;
        }
    }
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
