//! Finding a carrier's servers (RFC 3263 §4 with RFC 2782's SRV order)
//! against a real DNS exchange: a small authoritative server on loopback,
//! written with hickory-proto, answers the edge's resolver.

#[path = "support/dns.rs"]
mod dns;

use std::collections::HashMap;
use std::net::SocketAddr;

use dns::{a, dns_server, srv};
use hickory_proto::rr::RecordType;
use switchboard_edge::trunks::OutboundTarget;
use switchboard_edge::trunks::reach::Locator;
use switchboard_edge::trunks::spec::OutboundTransport;

fn target(host: &str, port: u16, transport: OutboundTransport) -> OutboundTarget {
    OutboundTarget {
        trunk: "carrier".into(),
        host: host.into(),
        port,
        transport,
        username: None,
        password: None,
        caller_id: None,
    }
}

#[tokio::test]
async fn a_trunk_is_found_by_srv_in_priority_order_or_by_its_host() {
    let zone = HashMap::from([
        (
            ("_sip._udp.carrier.test.".to_owned(), RecordType::SRV),
            vec![
                srv(20, 0, 5090, "backup.carrier.test."),
                srv(10, 60, 5080, "east.carrier.test."),
                srv(10, 40, 5081, "west.carrier.test."),
            ],
        ),
        (
            ("_sip._tcp.carrier.test.".to_owned(), RecordType::SRV),
            // "." : not offered over TCP.
            vec![srv(10, 0, 0, ".")],
        ),
        (
            ("east.carrier.test.".to_owned(), RecordType::A),
            vec![a([127, 0, 0, 11])],
        ),
        (
            ("west.carrier.test.".to_owned(), RecordType::A),
            vec![a([127, 0, 0, 12])],
        ),
        (
            ("backup.carrier.test.".to_owned(), RecordType::A),
            vec![a([127, 0, 0, 13])],
        ),
        (
            ("carrier.test.".to_owned(), RecordType::A),
            vec![a([127, 0, 0, 2])],
        ),
    ]);
    let locator = Locator::with_name_server(dns_server(zone).await);
    let found = |addresses: Vec<SocketAddr>| -> Vec<String> {
        addresses.iter().map(ToString::to_string).collect()
    };

    // Port 0: SRV. Priority 10 before 20; within 10, both, by weight.
    let mut east_first = 0;
    for _ in 0..40 {
        let addresses = found(
            locator
                .addresses(&target("carrier.test", 0, OutboundTransport::Udp))
                .await
                .unwrap(),
        );
        assert_eq!(addresses.len(), 3, "{addresses:?}");
        assert_eq!(addresses[2], "127.0.0.13:5090", "{addresses:?}");
        let mut first_two = addresses[..2].to_vec();
        first_two.sort();
        assert_eq!(first_two, ["127.0.0.11:5080", "127.0.0.12:5081"]);
        if addresses[0] == "127.0.0.11:5080" {
            east_first += 1;
        }
    }
    // 60 against 40: east comes first most often, west sometimes.
    assert!(
        (10..40).contains(&east_first),
        "east first {east_first} times of 40"
    );

    // SRV says "not here" over TCP, and TLS has no records: the host's own
    // address, at the transport's default port.
    assert_eq!(
        found(
            locator
                .addresses(&target("carrier.test", 0, OutboundTransport::Tcp))
                .await
                .unwrap()
        ),
        ["127.0.0.2:5060"]
    );
    assert_eq!(
        found(
            locator
                .addresses(&target("carrier.test", 0, OutboundTransport::Tls))
                .await
                .unwrap()
        ),
        ["127.0.0.2:5061"]
    );
    // A port given: the host's addresses, no SRV.
    assert_eq!(
        found(
            locator
                .addresses(&target("carrier.test", 5070, OutboundTransport::Udp))
                .await
                .unwrap()
        ),
        ["127.0.0.2:5070"]
    );
    // An address is itself.
    assert_eq!(
        found(
            locator
                .addresses(&target("192.0.2.7", 0, OutboundTransport::Tls))
                .await
                .unwrap()
        ),
        ["192.0.2.7:5061"]
    );
    // A name nobody holds is an error naming it.
    let error = locator
        .addresses(&target("nowhere.test", 5060, OutboundTransport::Udp))
        .await
        .unwrap_err();
    assert!(error.contains("nowhere.test"), "{error}");
}
