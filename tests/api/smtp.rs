//! A small SMTP server for tests and the benchmark: real SMTP over TCP on
//! loopback (EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT),
//! keeping what it receives. It can refuse chosen recipients with a 550 and
//! be stopped and started again on the same port, to play an outage.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// A header's value (the first one; unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        unfolded
            .split("\r\n")
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    refused: HashSet<String>,
}

pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    tasks: Option<JoinSet<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::listen(0, Arc::default()).await
    }

    async fn listen(port: u16, state: Arc<Mutex<State>>) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .expect("binding the SMTP port");
        let listener = socket.listen(1024).expect("listening");
        let port = listener.local_addr().expect("an address").port();
        let mut tasks = JoinSet::new();
        let accept_state = state.clone();
        tasks.spawn(accept(listener, accept_state));
        Self {
            port,
            state,
            tasks: Some(tasks),
        }
    }

    /// Recipients to refuse with `550 5.1.1`.
    pub fn refuse(&self, address: &str) {
        self.state
            .lock()
            .unwrap()
            .refused
            .insert(address.to_owned());
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Closes the port and every open connection: an outage.
    pub async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub async fn restart(&mut self) {
        self.stop().await;
        let again = Self::listen(self.port, self.state.clone()).await;
        self.tasks = again.tasks;
    }

    /// Waits (polling, at most `secs`) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while self.count() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.received()
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) {
    // Connections live in this task's set: stopping the server drops them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, state.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 peil-test ESMTP\r\n").await.is_err() {
        return;
    }
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: Vec<u8> = if upper.starts_with("EHLO") {
            b"250-peil-test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n".to_vec()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n".to_vec()
        } else if upper.starts_with("MAIL FROM:") {
            from = address_in(&command);
            to.clear();
            b"250 OK\r\n".to_vec()
        } else if upper.starts_with("RCPT TO:") {
            let address = address_in(&command);
            if state.lock().unwrap().refused.contains(&address) {
                b"550 5.1.1 No such mailbox here\r\n".to_vec()
            } else {
                to.push(address);
                b"250 OK\r\n".to_vec()
            }
        } else if upper == "DATA" {
            if write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut data = Vec::new();
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.extend_from_slice(unstuffed.as_bytes());
            }
            state.lock().unwrap().received.push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n".to_vec()
        } else if upper.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n".to_vec()
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 Bye\r\n").await;
            return;
        } else {
            b"502 Command not implemented\r\n".to_vec()
        };
        if write.write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn address_in(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}
