//! A bare TCP relay on a thread of its own: the floor any extra hop costs on
//! this machine (two more sockets and the copying between them, no parsing,
//! no auth), measured beside the proxy so its ratio reads against what no
//! proxy could beat here.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// Starts relaying a loopback port to `upstream`; its address.
pub fn start(upstream: SocketAddr) -> SocketAddr {
    let (bound, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.send(listener.local_addr().unwrap()).unwrap();
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
    });
    address.recv().unwrap()
}
