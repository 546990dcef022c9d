//! The edge as a node builds it from `[edge]`: every configured SIP
//! listener bound (TLS and WSS with the configured certificate), and a
//! certificate that cannot be used refused before anything listens.

use std::net::SocketAddr;

use std::sync::Arc;
use switchboard_config::Config;

use switchboard_edge::service::{EdgeService, EdgeServiceOptions, RoutingPeers};
use switchboard_platform::Backends;
use switchboard_routing_api::acd::RemoteRouting;
use switchboard_routing_api::calls::RemoteCallRouting;
use switchboard_rpc::Credentials;
use switchboard_test_utils::service_keys;

fn loopback() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[tokio::test]
async fn every_configured_transport_listens_and_tls_uses_the_configured_certificate() {
    let directory = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["sip.example.com".to_owned()]).unwrap();
    let chain = directory.path().join("sip.crt");
    let key = directory.path().join("sip.key");
    std::fs::write(&chain, cert.pem()).unwrap();
    std::fs::write(&key, signing_key.serialize_pem()).unwrap();

    let mut config = Config {
        data_dir: directory.path().join("data"),
        ..Config::default()
    };
    config.edge.sip_udp = loopback();
    config.edge.sip_tcp = loopback();
    config.edge.sip_tls = loopback();
    config.edge.sip_ws = loopback();
    config.edge.sip_wss = loopback();
    config.edge.tls_certificate_file = Some(chain.clone());
    config.edge.tls_key_file = Some(key.clone());
    config.validate().unwrap();
    let backends = Backends::connect(&config).await.unwrap();
    let options = EdgeServiceOptions::from_config(&config, vec![b"digest key".to_vec()]).unwrap();
    // Routing is not called here: a peer nobody listens at.
    let channel = tonic::transport::Channel::from_static("http://127.0.0.1:9").connect_lazy();
    let credentials = Credentials::new(service_keys("edge-test"), "edge");
    let routing = RoutingPeers {
        calls: Arc::new(RemoteCallRouting::new(channel.clone(), credentials.clone())),
        acd: Arc::new(RemoteRouting::new(channel, credentials)),
    };
    let edge = EdgeService::bind(options, &backends, service_keys("edge-test"), routing)
        .await
        .unwrap();
    let transports: Vec<&str> = edge.listening().iter().map(|(name, _)| *name).collect();
    assert_eq!(transports, ["udp", "tcp", "tls", "ws", "wss"]);
    assert!(
        edge.listening()
            .iter()
            .all(|(_, address)| address.port() != 0)
    );

    // Another certificate's key: refused before anything listens.
    let other = rcgen::generate_simple_self_signed(vec!["other.example.com".to_owned()]).unwrap();
    let wrong_key = directory.path().join("other.key");
    std::fs::write(&wrong_key, other.signing_key.serialize_pem()).unwrap();
    config.edge.tls_key_file = Some(wrong_key);
    assert!(EdgeServiceOptions::from_config(&config, vec![b"k".to_vec()]).is_err());
    // Trunks' extra roots: a missing file, or one with no certificate,
    // is refused naming it; the server certificate itself is taken.
    config.edge.tls_key_file = Some(key.clone());
    for (path, contents) in [("missing.pem", None), ("empty.pem", Some(""))] {
        let path = directory.path().join(path);
        if let Some(contents) = contents {
            std::fs::write(&path, contents).unwrap();
        }
        config.edge.trunk_ca_file = Some(path.clone());
        let error = EdgeServiceOptions::from_config(&config, vec![b"k".to_vec()])
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains(path.to_str().unwrap()), "{error}");
    }
    config.edge.trunk_ca_file = Some(chain.clone());
    assert!(EdgeServiceOptions::from_config(&config, vec![b"k".to_vec()]).is_ok());
    config.edge.trunk_ca_file = None;
    // TLS without files does not pass validation.
    config.edge.tls_key_file = None;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("edge.tls_certificate_file"), "{error}");
}
