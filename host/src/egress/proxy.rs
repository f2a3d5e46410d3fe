//! The HTTP proxy a deployment's traffic leaves through: `CONNECT host:port`
//! (HTTPS and anything else over TLS; the authority is what is checked, TLS
//! is not intercepted) and plain-HTTP requests in absolute form. The name is
//! checked against the allowlist, resolved once, each address checked, and
//! the connection made to the address that was checked: no second lookup
//! for DNS to rebind.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Allowlist, Refusal};

/// A request head larger than this is refused.
const MAX_HEAD: usize = 16 * 1024;
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a deployment's proxy knows and reports to.
pub struct ProxyContext {
    pub deployment_id: String,
    pub allow: Arc<Allowlist>,
    /// Names the operator pinned to addresses (`runtime.egress.resolve`), checked as DNS answers are.
    pub pinned: Arc<std::collections::HashMap<String, IpAddr>>,
    pub report: Arc<dyn Fn(Attempt) + Send + Sync>,
}

/// One destination asked for, and what came of it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deployment_id: String,
    pub host: String,
    pub port: u16,
    /// The allowlist entry that let it through, or why it was refused.
    pub outcome: Result<String, String>,
}

pub async fn serve(listener: TcpListener, ctx: Arc<ProxyContext>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            handle(client, &ctx).await;
        });
    }
}

/// The request head (through the blank line) and whatever followed it.
async fn read_head(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buffer[..end + 4].to_vec()).ok()?;
            return Some((head, buffer[end + 4..].to_vec()));
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
    }
}

/// `host:port` of an authority, the port defaulting to `default`.
fn authority(text: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':').map_or(Some(default), |p| p.parse().ok())?;
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((text.to_string(), default)),
    }
}

async fn refuse(client: &mut TcpStream, status: &str, why: &str) {
    let body = format!("{why}\n");
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(answer.as_bytes()).await;
}

async fn handle(mut client: TcpStream, ctx: &ProxyContext) {
    let Some((head, rest)) = read_head(&mut client).await else { return };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target, version) = (request_line.next(), request_line.next(), request_line.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return refuse(&mut client, "400 Bad Request", "not an HTTP request").await;
    };
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let (host, port, path) = if connect {
        match authority(target, 443) {
            Some((host, port)) => (host, port, String::new()),
            None => return refuse(&mut client, "400 Bad Request", "CONNECT names host:port").await,
        }
    } else {
        let Some(rest) = target.strip_prefix("http://") else {
            let why = "only CONNECT, or http:// URLs in absolute form";
            return refuse(&mut client, "400 Bad Request", why).await;
        };
        let (authority_text, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        match authority(authority_text, 80) {
            Some((host, port)) => (host, port, path.to_string()),
            None => return refuse(&mut client, "400 Bad Request", "the URL names no host").await,
        }
    };
    let upstream = match open(ctx, &host, port).await {
        Ok(upstream) => upstream,
        Err(why) => return refuse(&mut client, "403 Forbidden", &format!("{host}:{port} refused: {why}")).await,
    };
    let mut upstream = upstream;
    if connect {
        if client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_err() {
            return;
        }
    } else {
        // Origin form, without hop-by-hop proxy headers; one request per connection.
        let mut forwarded = format!("{method} {path} {version}\r\n");
        for line in lines.filter(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
            if !matches!(name.as_str(), "proxy-connection" | "proxy-authorization" | "connection" | "keep-alive") {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("connection: close\r\n\r\n");
        if upstream.write_all(forwarded.as_bytes()).await.is_err() {
            return;
        }
    }
    if !rest.is_empty() && upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The system resolver's answer, asked again after a failure: under load it
/// answers "temporary failure" now and then, which must not refuse a build
/// or a server its one allowed host.
async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let mut tries = 3;
    loop {
        tries -= 1;
        match tokio::net::lookup_host((host, port)).await {
            Ok(found) => return Ok(found.collect()),
            Err(e) if tries == 0 => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// Checks the destination, resolves it, checks the addresses, and connects
/// to one that passed; reports the attempt either way.
async fn open(ctx: &ProxyContext, host: &str, port: u16) -> Result<TcpStream, String> {
    let report = |outcome: Result<String, String>| {
        (ctx.report)(Attempt { deployment_id: ctx.deployment_id.clone(), host: host.into(), port, outcome })
    };
    let refused = |r: Refusal| {
        let why = r.reason();
        report(Err(why.clone()));
        why
    };
    let entry = ctx.allow.allows(host, port).map_err(refused)?.to_string();
    let addresses: Vec<SocketAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        // A literal passed the allowlist as itself; in learn mode, where it leads is checked.
        Ok(ip) if ctx.allow.learns() => {
            ctx.allow.reachable(ip).map_err(refused)?;
            vec![SocketAddr::new(ip, port)]
        }
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let resolved: Vec<SocketAddr> = match ctx.pinned.get(&host.to_ascii_lowercase()) {
                Some(ip) => vec![SocketAddr::new(*ip, port)],
                None => resolve(host, port).await.map_err(|e| {
                    report(Err(format!("does not resolve: {e}")));
                    format!("does not resolve: {e}")
                })?,
            };
            // Every address must pass: one bad answer means the name points somewhere it must not.
            for address in &resolved {
                ctx.allow.reachable(address.ip()).map_err(refused)?;
                if is_own_address(address.ip()) && !ctx.allow.resolves_into(address.ip()) {
                    return Err(refused(Refusal::Resolved(address.ip())));
                }
            }
            resolved
        }
    };
    let mut last = "no address".to_string();
    for address in addresses {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                report(Ok(entry));
                return Ok(stream);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
    }
    // Allowed, but not reachable: not a refusal, yet worth the caller's knowing.
    Err(format!("cannot connect: {last}"))
}

/// Whether `ip` is one of this machine's own addresses (the Docker host's,
/// the runtime's): only a local address can be bound to. Public ones too —
/// a name may point at the host's public address as well as at loopback.
fn is_own_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_own_addresses_are_known_as_such() {
        assert!(is_own_address("127.0.0.1".parse().unwrap()));
        assert!(!is_own_address("192.0.2.200".parse().unwrap()), "TEST-NET-1 is nobody's");
    }

    #[test]
    fn authorities_keep_their_ports_or_take_the_default() {
        assert_eq!(authority("api.example.com:8443", 443), Some(("api.example.com".into(), 8443)));
        assert_eq!(authority("api.example.com", 80), Some(("api.example.com".into(), 80)));
        assert_eq!(authority("[fd00::1]:443", 80), Some(("fd00::1".into(), 443)));
        assert_eq!(authority("a.com:x", 80), None);
    }
}
