//! The egress proxy's added latency per request: an HTTP server on loopback
//! reached directly and through the proxy (CONNECT), each over one kept
//! connection and over a new connection per request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use mcp_runtime::egress::EgressProxies;

use crate::percentile;

const REQUESTS: usize = 2000;
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// Answers every request on every connection, as fast as it can.
async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" && reader.get_mut().write_all(ANSWER).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    at
}

async fn request(stream: &mut TcpStream) {
    stream.write_all(b"GET / HTTP/1.1\r\nhost: sentinel.bench\r\n\r\n").await.unwrap();
    let mut answer = [0u8; ANSWER.len()];
    stream.read_exact(&mut answer).await.unwrap();
}

/// A connection to the server: direct, or a tunnel through the proxy.
async fn connect(server: SocketAddr, proxy: Option<SocketAddr>) -> TcpStream {
    let mut stream = TcpStream::connect(proxy.unwrap_or(server)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    if proxy.is_some() {
        let connect = format!("CONNECT sentinel.bench:{} HTTP/1.1\r\n\r\n", server.port());
        stream.write_all(connect.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    }
    stream
}

async fn p50(server: SocketAddr, proxy: Option<SocketAddr>, fresh: bool) -> Duration {
    let mut samples = Vec::with_capacity(REQUESTS);
    let mut kept = connect(server, proxy).await;
    for _ in 0..REQUESTS {
        let start = Instant::now();
        if fresh {
            let mut stream = connect(server, proxy).await;
            request(&mut stream).await;
        } else {
            request(&mut kept).await;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    percentile(&samples, 0.5)
}

pub async fn figures() {
    let server = server().await;
    let pinned = [("sentinel.bench".to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))].into_iter().collect();
    let proxies = EgressProxies::new(pinned, Default::default());
    let allowlist = [format!("sentinel.bench:{}", server.port())];
    // The sentinel's name may lead to this host's loopback, as a package index's may.
    let loopback = [(IpAddr::V4(Ipv4Addr::LOCALHOST), 32)];
    let proxy =
        proxies.open("bench", "bench", Ipv4Addr::new(127, 0, 0, 7), &allowlist, false, &loopback).await.unwrap();
    println!("egress proxy ({REQUESTS} sequential requests, p50):");
    for (what, fresh) in [("one kept connection", false), ("a new connection each", true)] {
        let direct = p50(server, None, fresh).await;
        let proxied = p50(server, Some(proxy), fresh).await;
        println!(
            "  {what:<22} direct {direct:>9.1?}  through the proxy {proxied:>9.1?}  (+{:.0} µs, {:.2}×)",
            proxied.saturating_sub(direct).as_secs_f64() * 1e6,
            proxied.as_secs_f64() / direct.as_secs_f64()
        );
    }
    proxies.close("bench");
}
