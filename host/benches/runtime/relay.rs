//! A bare TCP relay on a thread of its own: the floor any extra hop costs on
//! this machine (two more sockets and the copying between them, no parsing,
//! no auth), measured beside the proxy so its ratio reads against what no
//! proxy could beat here.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// A relay running: where it listens, and the thread that does all its work.
pub struct Relay {
    pub address: SocketAddr,
    /// `/proc/self/task/<tid>`: the relay's thread, whose CPU time is the relay's.
    task: String,
}

impl Relay {
    /// CPU time the relay has used so far.
    pub fn cpu_time(&self) -> std::time::Duration {
        crate::host_process::task_cpu_time(&self.task).expect("the relay runs")
    }
}

/// Starts relaying a loopback port to `upstream`.
pub fn start(upstream: SocketAddr) -> Relay {
    let (bound, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let task = std::fs::read_link("/proc/thread-self").unwrap().display().to_string();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.send((listener.local_addr().unwrap(), task)).unwrap();
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
    });
    let (address, task) = address.recv().unwrap();
    Relay { address, task: format!("/proc/{task}") }
}
