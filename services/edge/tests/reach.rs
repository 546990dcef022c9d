//! Finding a carrier's servers (RFC 3263 §4 with RFC 2782's SRV order)
//! against a real DNS exchange: a small authoritative server on loopback,
//! written with hickory-proto, answers the edge's resolver.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use switchboard_edge::trunks::OutboundTarget;
use switchboard_edge::trunks::reach::Locator;
use switchboard_edge::trunks::spec::OutboundTransport;

/// Answers from `zone` ((name, type) → records); NXDOMAIN for a name it
/// does not hold, an empty answer for a type the name lacks.
async fn dns_server(zone: HashMap<(String, RecordType), Vec<RData>>) -> SocketAddr {
    let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            let Ok((read, from)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buffer[..read]) else {
                continue;
            };
            let mut answer = Message::new(
                query.metadata.id,
                MessageType::Response,
                query.metadata.op_code,
            );
            answer.metadata.authoritative = true;
            answer.metadata.recursion_desired = query.metadata.recursion_desired;
            for question in &query.queries {
                answer.add_query(question.clone());
                let name = question.name().to_ascii().to_ascii_lowercase();
                let known = zone.keys().any(|(held, _)| *held == name);
                if !known {
                    answer.metadata.response_code = ResponseCode::NXDomain;
                }
                for data in zone
                    .get(&(name.clone(), question.query_type()))
                    .into_iter()
                    .flatten()
                {
                    answer.add_answer(Record::from_rdata(
                        question.name().clone(),
                        60,
                        data.clone(),
                    ));
                }
            }
            let _ = socket.send_to(&answer.to_vec().unwrap(), from).await;
        }
    });
    address
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(
        priority,
        weight,
        port,
        Name::from_ascii(target).unwrap(),
    ))
}

fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}

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
