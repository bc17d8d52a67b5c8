//! TLS 1.3: the server's certificate and the acceptor.
//!
//! Without `--tls-cert/--tls-key`, the server generates a self-signed
//! certificate and key into the data directory on first start and reuses
//! them afterwards, so clients that pinned its fingerprint (trust on first
//! use, like ssh) keep trusting it across restarts.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;
use tokio_rustls::TlsAcceptor;

use crate::TlsMode;

/// File names of the generated certificate and key in the data directory.
pub const CERT_FILE: &str = "server-cert.pem";
/// See [`CERT_FILE`].
pub const KEY_FILE: &str = "server-key.pem";

/// Builds the acceptor for `mode`, or `None` for plaintext.
pub fn acceptor(config: Option<&Arc<ServerConfig>>) -> Option<TlsAcceptor> {
    config.map(|c| TlsAcceptor::from(c.clone()))
}

/// Builds the TLS 1.3 configuration for `mode` (TCP's; QUIC adds its ALPN
/// to a copy), or `None` for plaintext.
pub fn server_config(mode: &TlsMode, data_dir: &Path) -> Result<Option<Arc<ServerConfig>>, String> {
    let (cert, key) = match mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files { cert, key } => (cert.clone(), key.clone()),
        TlsMode::SelfSigned => {
            let cert = data_dir.join(CERT_FILE);
            let key = data_dir.join(KEY_FILE);
            if !cert.exists() || !key.exists() {
                generate(&cert, &key)?;
            }
            (cert, key)
        }
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("no certificate in {}", cert.display()));
    };
    // What clients that trust on first use will be shown: operators can
    // tell their users what to expect.
    tracing::info!(
        fingerprint = %format!("SHA256:{}", hex::encode(sha2::Sha256::digest(leaf.as_ref()))),
        cert = %cert.display(),
        "TLS certificate"
    );
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    // One explicit provider: with two crypto back-ends in the build,
    // `ServerConfig::builder()` would panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS certificate and key do not match: {e}"))?;
    Ok(Some(Arc::new(config)))
}

/// Writes a new self-signed certificate for `localhost` and its key (the
/// key readable by its owner only).
fn generate(cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot generate a certificate: {e}"))?;
    write_private(key_path, ck.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, ck.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
