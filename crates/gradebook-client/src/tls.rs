//! The client side of TLS 1.3: trusting the server by a certificate
//! authority, or by its certificate's fingerprint (trust on first use).

use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::ClientError;

/// How the client decides to trust the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates signed by this authority (a PEM file).
    CaFile(std::path::PathBuf),
    /// Exactly the certificate with this fingerprint (`SHA256:hex`).
    Fingerprint(String),
    /// Any certificate; its fingerprint is reported so the caller can ask
    /// the user and remember it (trust on first use, like ssh).
    Tofu,
}

/// The fingerprint of a DER certificate: `SHA256:` and 64 hex digits.
pub fn fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(Sha256::digest(der)))
}

/// Normalises a fingerprint typed by a person (case, colons, prefix).
fn normalise(fp: &str) -> String {
    let hex: String = fp
        .trim()
        .trim_start_matches("SHA256:")
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    format!("SHA256:{}", hex.to_ascii_lowercase())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a handshake records of the server's certificate: its fingerprint,
/// once the verifier has seen it (to tell a changed certificate apart from
/// other failures).
pub(crate) type Seen = Arc<Mutex<Option<String>>>;

/// The TLS 1.3 client configuration that trusts as `trust` says, for TCP
/// and (with its ALPN added) for QUIC.
pub(crate) fn client_config(trust: &Trust) -> Result<(ClientConfig, Seen), ClientError> {
    let seen: Seen = Arc::new(Mutex::new(None));
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let config = match trust {
        Trust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?
            {
                let cert =
                    cert.map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Fingerprint(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                expected: Some(normalise(fp)),
                seen: seen.clone(),
                provider: provider(),
            }))
            .with_no_client_auth(),
        Trust::Tofu => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                expected: None,
                seen: seen.clone(),
                provider: provider(),
            }))
            .with_no_client_auth(),
    };
    Ok((config, seen))
}

/// The server name to verify the certificate against: the host of
/// `HOST:PORT` (`[::1]:7302` gives `::1`).
pub(crate) fn server_name(address: &str) -> Result<ServerName<'static>, ClientError> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| ClientError::Tls(format!("bad server name '{host}': {e}")))
}

/// The error for a failed handshake: a pinned certificate that changed
/// says so, whatever the TLS library's words.
pub(crate) fn handshake_error(
    trust: &Trust,
    seen: &Seen,
    e: impl std::fmt::Display,
) -> ClientError {
    changed(trust, seen).unwrap_or_else(|| ClientError::Tls(e.to_string()))
}

/// The error for a pinned certificate that is not the one seen, if so.
fn changed(trust: &Trust, seen: &Seen) -> Option<ClientError> {
    let got = seen.lock().ok().and_then(|s| s.clone())?;
    match trust {
        Trust::Fingerprint(expected) if normalise(expected) != got => {
            Some(ClientError::Tls(format!(
                "the server's certificate changed: expected {}, got {got}",
                normalise(expected)
            )))
        }
        _ => None,
    }
}

/// Completes the handshake; returns the stream and the server
/// certificate's fingerprint.
pub(crate) async fn connect(
    tcp: TcpStream,
    address: &str,
    trust: &Trust,
) -> Result<(TlsStream<TcpStream>, String), ClientError> {
    let (config, seen) = client_config(trust)?;
    let name = server_name(address)?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            changed(trust, &seen).unwrap_or_else(|| {
                // A plaintext server answers a ClientHello with a line of
                // JSON, whose first byte is no TLS record type: callers
                // can then suggest plaintext, and only then.
                if is_invalid_content_type(&e) {
                    ClientError::NotTls(e.to_string())
                } else {
                    ClientError::Tls(e.to_string())
                }
            })
        })?;
    let fp = match stream.get_ref().1.peer_certificates() {
        Some([leaf, ..]) => fingerprint(leaf),
        _ => return Err(ClientError::Tls("the server sent no certificate".into())),
    };
    Ok((stream, fp))
}

/// Whether a failed handshake read a record that is not TLS at all.
fn is_invalid_content_type(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

/// Accepts the one certificate with the expected fingerprint, or any
/// (recording it) when none is expected. Handshake signatures are still
/// verified, so the server must hold the certificate's private key.
#[derive(Debug)]
struct Pinned {
    expected: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(fp.clone());
        }
        match &self.expected {
            Some(expected) if *expected != fp => Err(rustls::Error::General(format!(
                "certificate fingerprint {fp} is not the expected {expected}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
