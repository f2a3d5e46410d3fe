//! The deployment network's DNS: names the allowlist names resolve to the
//! proxy (clients that honour the proxy variables never ask); every other
//! name gets NXDOMAIN, so a client that ignores the proxy gets no address.
//! Only what that needs of RFC 1035: one question, A records, no recursion.

use std::net::Ipv4Addr;
use std::sync::Arc;
use tokio::net::UdpSocket;

use super::Allowlist;

const TTL_SECONDS: u32 = 30;
const TYPE_A: u16 = 1;
const NXDOMAIN: u8 = 3;
const FORMERR: u8 = 1;

/// The question of a query: its name and type, and where the question ends.
fn question(query: &[u8]) -> Option<(String, u16, usize)> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let (mut at, mut labels) = (12, Vec::new());
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression has no place in a question
        }
        labels.push(std::str::from_utf8(query.get(at..at + len)?).ok()?.to_string());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    Some((labels.join("."), qtype, at + 4))
}

/// The answer to one query, if it deserves one.
pub fn answer(query: &[u8], allow: &Allowlist, proxy: Ipv4Addr) -> Option<Vec<u8>> {
    let Some((name, qtype, end)) = question(query) else {
        if query.len() < 12 {
            return None;
        }
        let mut reply = query[..12].to_vec();
        reply[2] = 0x80 | (query[2] & 0x01);
        reply[3] = FORMERR;
        reply[4..12].fill(0);
        return Some(reply);
    };
    let allowed = allow.names(&name);
    let mut reply = query[..end.min(query.len())].to_vec();
    // A response to the same question: recursion desired copied, available not offered.
    reply[2] = 0x84 | (query[2] & 0x01);
    reply[3] = if allowed { 0 } else { NXDOMAIN };
    let answers: u16 = u16::from(allowed && qtype == TYPE_A);
    reply[6..8].copy_from_slice(&answers.to_be_bytes());
    reply[8..12].fill(0);
    if answers == 1 {
        reply.extend_from_slice(&[0xc0, 12]); // the question's name
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&1u16.to_be_bytes());
        reply.extend_from_slice(&TTL_SECONDS.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&proxy.octets());
    }
    Some(reply)
}

pub async fn serve(socket: UdpSocket, allow: Arc<Allowlist>, proxy: Ipv4Addr) {
    let mut buffer = [0u8; 512];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buffer).await else { continue };
        if let Some(reply) = answer(&buffer[..len], &allow, proxy) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    fn allow() -> Allowlist {
        Allowlist::parse(&["api.example.com".into(), "*.googleapis.com".into()]).unwrap()
    }

    #[test]
    fn allowed_names_resolve_to_the_proxy_and_others_do_not_exist() {
        let proxy = Ipv4Addr::new(172, 18, 3, 1);
        let reply = answer(&query("api.example.com", TYPE_A), &allow(), proxy).unwrap();
        assert_eq!((&reply[..2], reply[3] & 0x0f, reply[7]), (&[0x12, 0x34][..], 0, 1));
        assert_eq!(&reply[reply.len() - 4..], &[172, 18, 3, 1]);
        let reply = answer(&query("storage.googleapis.com", 28), &allow(), proxy).unwrap();
        assert_eq!((reply[3] & 0x0f, reply[7]), (0, 0), "AAAA: the name exists, with no v6 address");
        for name in ["evil.example.net", "googleapis.com", "example.com"] {
            let reply = answer(&query(name, TYPE_A), &allow(), proxy).unwrap();
            assert_eq!((reply[3] & 0x0f, reply[7]), (NXDOMAIN, 0), "{name}");
        }
    }

    #[test]
    fn garbage_gets_a_format_error_or_nothing() {
        assert_eq!(answer(&[1, 2, 3], &allow(), Ipv4Addr::LOCALHOST), None);
        let mut broken = query("api.example.com", TYPE_A);
        broken.truncate(20);
        assert_eq!(answer(&broken, &allow(), Ipv4Addr::LOCALHOST).unwrap()[3] & 0x0f, FORMERR);
    }
}
