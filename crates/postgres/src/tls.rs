//! rustls's client settings from a URL's TLS settings: the roots (a PEM
//! file, or the system's), the verifier `sslmode` asks for, and the
//! client certificate. Nothing here ever accepts a certificate unchecked.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::error::SettingsError;
use crate::settings::{SslMode, TlsSettings};

pub(crate) fn client_config(s: &TlsSettings) -> Result<ClientConfig, SettingsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(roots(s)?);
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(SettingsError::Tls)?;
    let builder = if s.mode == SslMode::VerifyCa {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| SettingsError::Invalid {
                reason: format!("sslrootcert: {e}"),
            })?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
    } else {
        builder.with_root_certificates(roots)
    };
    match (&s.client_cert, &s.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = certificates("sslcert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file("sslkey", key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(SettingsError::Tls)
        }
        (Some(_), None) | (None, Some(_)) => Err(SettingsError::Invalid {
            reason: "sslcert and sslkey go together: give both or neither".into(),
        }),
    }
}

/// The trust anchors: the `sslrootcert` file, or the system's store
/// (`/etc/ssl/certs` on Debian; `SSL_CERT_FILE` / `SSL_CERT_DIR` override).
fn roots(s: &TlsSettings) -> Result<RootCertStore, SettingsError> {
    let mut roots = RootCertStore::empty();
    if s.mode == SslMode::Disable {
        return Ok(roots);
    }
    match &s.root_cert {
        Some(path) => {
            for cert in certificates("sslrootcert", path)? {
                roots.add(cert).map_err(|e| file("sslrootcert", path, e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (_added, _unparsable) = roots.add_parsable_certificates(found.certs);
            // With TLS demanded, no roots at all can only end in a refusal
            // at every connection: say so now. `prefer` may never need them
            // (a Unix socket, a server without TLS).
            if roots.is_empty() && s.mode.requires_tls() {
                return Err(SettingsError::Invalid {
                    reason: "the system has no trusted root certificates: set sslrootcert to the \
                             server's CA file"
                        .into(),
                });
            }
        }
    }
    Ok(roots)
}

fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SettingsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file(setting, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(setting, path, e))?;
    if certs.is_empty() {
        return Err(file(setting, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn file(setting: &'static str, path: &Path, reason: impl std::fmt::Display) -> SettingsError {
    SettingsError::File {
        setting,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// `verify-ca`: the chain must lead to a trusted root and be valid now;
/// the host name is not compared. rustls checks the name only after the
/// chain, so a name error means the chain passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
