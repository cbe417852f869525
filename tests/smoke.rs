mod common;

use common::*;
use kmsim::proto as pb;

#[tokio::test]
async fn encrypt_then_decrypt() {
    let server = TestServer::start().await;
    let mut kms = server.kms().await;
    let key_id = create_key(&mut kms, "").await;
    let sealed = kms
        .encrypt(pb::EncryptRequest { key_id: key_id.clone(), plaintext: b"hi".to_vec(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let opened = kms
        .decrypt(pb::DecryptRequest { ciphertext_blob: sealed.ciphertext_blob, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.plaintext, b"hi");
    assert_eq!(opened.key_id, key_id);
    server.stop().await;
}
