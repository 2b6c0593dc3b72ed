//! HTTPS for `casebridge sim --tls`: a throw-away certificate authority and a server
//! certificate for `localhost`, `127.0.0.1` and `::1`, made when the simulator starts, and a
//! listener that completes each TLS handshake in its own task before axum sees the
//! connection.
//!
//! Clients trust the authority's certificate (written to a PEM file, see [`Tls::write_ca`])
//! with `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE` or `curl --cacert`.
//! A separate authority, rather than one self-signed server certificate, is what strict
//! verifiers accept: webpki refuses a certificate that is both anchor and end entity, and
//! Python 3.13's strict mode wants a CA with critical basic constraints and key identifiers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// The names the server certificate covers: every way a client on this machine reaches it.
pub const SERVER_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// How long a client may take over its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificates of one simulator run.
pub struct Tls {
    /// The authority's certificate, PEM: what clients trust.
    pub ca_pem: String,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Makes a new authority and a server certificate signed by it.
    pub fn generate() -> Result<Tls, String> {
        let fail = |what: &str, e: rcgen::Error| format!("cannot make the simulator's {what}: {e}");
        let today = Utc::now().date_naive();
        let (year, month, day) = (today.year(), today.month() as u8, today.day() as u8);
        let valid_from = rcgen::date_time_ymd(year - 1, month, day.min(28));
        let valid_to = rcgen::date_time_ymd(year + 1, month, day.min(28));

        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("authority", e))?;
        ca.distinguished_name.push(DnType::CommonName, "casebridge sim local authority");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        (ca.not_before, ca.not_after) = (valid_from, valid_to);
        let ca_key = KeyPair::generate().map_err(|e| fail("authority key", e))?;
        let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("authority", e))?;

        let names: Vec<String> = SERVER_NAMES.iter().map(|s| s.to_string()).collect();
        let mut server = CertificateParams::new(names).map_err(|e| fail("server certificate", e))?;
        server.distinguished_name.push(DnType::CommonName, "localhost");
        server.is_ca = IsCa::ExplicitNoCa;
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        (server.not_before, server.not_after) = (valid_from, valid_to);
        let server_key = KeyPair::generate().map_err(|e| fail("server key", e))?;
        let issuer = Issuer::from_params(&ca, &ca_key);
        let server_cert = server.signed_by(&server_key, &issuer).map_err(|e| fail("server certificate", e))?;

        let chain =
            vec![CertificateDer::from(server_cert.der().to_vec()), CertificateDer::from(ca_cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot configure TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("cannot configure TLS: {e}"))?;
        // The simulator serves HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { ca_pem: ca_cert.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) })
    }

    /// Writes the authority's certificate to `casebridge-sim-PORT-ca.pem` in `dir` and
    /// returns the file's path. A file left there by an earlier run on the same port is
    /// replaced, never written through (it could be a link planted in a shared `/tmp`).
    pub fn write_ca(&self, dir: &Path, port: u16) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let path = dir.join(format!("casebridge-sim-{port}-ca.pem"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        file.write_all(self.ca_pem.as_bytes())?;
        Ok(path)
    }

    /// Serves TLS on `listener`: handshakes run concurrently, each bounded in time, so a
    /// slow or broken client never holds up the others.
    pub fn listen(&self, listener: TcpListener) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(error = %e, "Simulator accept failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake with a client failed."),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, task })
    }
}

/// Accepted TLS connections, for `axum::serve`.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_certificate_is_pem() {
        let tls = Tls::generate().unwrap();
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"), "{}", tls.ca_pem);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("elsewhere"), "keep").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("casebridge-sim-4443-ca.pem"))
            .unwrap();
        let path = tls.write_ca(dir.path(), 4443).unwrap();
        assert!(path.ends_with("casebridge-sim-4443-ca.pem"));
        assert_eq!(std::fs::read_to_string(path).unwrap(), tls.ca_pem);
        assert_eq!(std::fs::read_to_string(dir.path().join("elsewhere")).unwrap(), "keep", "a link is not followed");
    }
}
