//! TLS for the one port (rustls): the server's certificate and key, and
//! optionally a CA that client certificates must chain to (mutual TLS). ALPN
//! offers h2 and HTTP/1.1, so gRPC and the HTTP/1.1 front ends share the
//! port over TLS as they do without it. With a client CA, a client without a
//! certificate from it is refused during the handshake, and a certificate's
//! subject common name may name a credential (an AccessKey or ClientKey id)
//! that the call is then authenticated as (see [`credentials`](super::credentials)).

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// PEM files as read from `--tls-cert`, `--tls-key` and `--tls-client-ca`.
#[derive(Clone)]
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    // The private key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles").field("client_ca", &self.client_ca_pem.is_some()).finish_non_exhaustive()
    }
}

impl TlsFiles {
    /// The rustls configuration the listener accepts with; an error names the file at fault.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let certificates = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--tls-cert: {e}"))?;
        if certificates.is_empty() {
            return Err("--tls-cert: no PEM certificate in the file".into());
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| format!("--tls-key: {e}"))?;
        let builder = ServerConfig::builder();
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for certificate in CertificateDer::pem_slice_iter(ca) {
                    roots
                        .add(certificate.map_err(|e| format!("--tls-client-ca: {e}"))?)
                        .map_err(|e| format!("--tls-client-ca: {e}"))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder(roots.into()).build().map_err(|e| format!("--tls-client-ca: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder.with_single_cert(certificates, key).map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The subject common name of a DER certificate, if it has one.
pub fn common_name(der: &[u8]) -> Option<String> {
    const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];
    let (_, certificate, _) = tlv(der)?;
    let (_, mut tbs, _) = tlv(certificate)?;
    // version [0] (optional), serial, signature algorithm, issuer, validity, then subject.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (_, mut subject, _) = tlv(tbs)?;
    while !subject.is_empty() {
        let (_, mut rdn, rest) = tlv(subject)?;
        subject = rest;
        while !rdn.is_empty() {
            let (_, attribute, rest) = tlv(rdn)?;
            rdn = rest;
            let (oid_tag, oid, value) = tlv(attribute)?;
            if oid_tag == 0x06 && oid == COMMON_NAME_OID {
                let (_, text, _) = tlv(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

/// One DER tag-length-value: (tag, content, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_name_is_read_from_a_real_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "kmsim tests");
        params.distinguished_name.push(rcgen::DnType::CommonName, "LTAI5tExampleAccessKey01");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()).as_deref(), Some("LTAI5tExampleAccessKey01"));

        let nameless = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let mut nameless = nameless;
        nameless.distinguished_name = rcgen::DistinguishedName::new();
        let cert = nameless.self_signed(&key).unwrap();
        assert_eq!(common_name(cert.der()), None);
    }

    #[test]
    fn truncated_or_garbage_input_is_no_name_not_a_panic() {
        for input in [&[][..], &[0x30], &[0x30, 0x85, 1, 1, 1, 1, 1], &[0x30, 0x05, 0x30, 0x03, 0x02, 0x01], b"not der"]
        {
            assert_eq!(common_name(input), None);
        }
    }
}
