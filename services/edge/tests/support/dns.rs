//! A small authoritative DNS server on loopback, written with
//! hickory-proto, for the tests that find carriers' servers (RFC 3263).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The records a server answers from: (name, type) → records.
pub type Zone = Arc<Mutex<HashMap<(String, RecordType), Vec<RData>>>>;

/// Answers from `zone` ((name, type) → records); NXDOMAIN for a name it
/// does not hold, an empty answer for a type the name lacks.
pub async fn dns_server(zone: HashMap<(String, RecordType), Vec<RData>>) -> SocketAddr {
    serve_zone(Arc::new(Mutex::new(zone))).await
}

/// As [`dns_server`], answering from what `zone` holds at each query:
/// a test may fill it once the server runs.
pub async fn serve_zone(zone: Zone) -> SocketAddr {
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
                let zone = zone.lock().unwrap().clone();
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

pub fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(
        priority,
        weight,
        port,
        Name::from_ascii(target).unwrap(),
    ))
}

pub fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}
