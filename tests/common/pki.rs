//! Certificates the tests make themselves: a CA, a server certificate for
//! localhost and 127.0.0.1, client certificates naming a credential.

use kmsim::frontends::grpc::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and its PEM private key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The server's certificate: localhost and 127.0.0.1.
    pub fn server(&self) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate whose subject common name is `common_name` (none for `None`).
    pub fn client(&self, common_name: Option<&str>) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "kmsim tests");
        if let Some(name) = common_name {
            params.distinguished_name.push(DnType::CommonName, name);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    pub fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// The server's CA and certificate, and (for mutual TLS) the client CA.
pub struct Pki {
    pub server_ca: Ca,
    pub server: Leaf,
    pub client_ca: Ca,
}

impl Pki {
    pub fn new() -> Pki {
        let server_ca = Ca::new("kmsim test server CA");
        let server = server_ca.server();
        Pki { server_ca, server, client_ca: Ca::new("kmsim test client CA") }
    }

    pub fn files(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert_pem: self.server.cert_pem.clone().into_bytes(),
            key_pem: self.server.key_pem.clone().into_bytes(),
            client_ca_pem: mutual.then(|| self.client_ca.pem().into_bytes()),
        }
    }
}

/// A gRPC channel over TLS to `addr`, trusting `ca` for the name localhost.
pub async fn tls_channel(addr: std::net::SocketAddr, ca: &Ca) -> Channel {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem())).domain_name("localhost");
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("a TLS channel")
}
