//! A small SMTP server for tests and the benchmark: real SMTP over TCP on
//! loopback (EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT),
//! keeping what it receives. It can refuse chosen recipients with a 550 and
//! be stopped and started again on the same port, to play an outage. With
//! a certificate from [`TestCa`] it speaks STARTTLS or implicit TLS.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// How the server secures its connections.
#[derive(Clone)]
pub enum Security {
    Plain,
    /// Offers STARTTLS and upgrades when asked; mail is taken either way.
    Starttls(TlsAcceptor),
    /// TLS from the first byte.
    Implicit(TlsAcceptor),
}

/// A throwaway certificate authority and a certificate it signed for
/// `127.0.0.1` and `localhost`, made fresh for each test.
pub struct TestCa {
    /// The CA's certificate, to trust (`mail.smtp.ca_file`).
    pub pem: String,
    pub acceptor: TlsAcceptor,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Peil test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("a CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .expect("a TLS server configuration");
        Self {
            pem: ca_cert.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }
}

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Whether it came over TLS.
    pub secure: bool,
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
    security: Security,
    tasks: Option<JoinSet<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_with(Security::Plain).await
    }

    pub async fn start_with(security: Security) -> Self {
        Self::listen(0, Arc::default(), security).await
    }

    async fn listen(port: u16, state: Arc<Mutex<State>>, security: Security) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .expect("binding the SMTP port");
        let listener = socket.listen(1024).expect("listening");
        let port = listener.local_addr().expect("an address").port();
        let mut tasks = JoinSet::new();
        tasks.spawn(accept(listener, state.clone(), security.clone()));
        Self {
            port,
            state,
            security,
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
        let again = Self::listen(self.port, self.state.clone(), self.security.clone()).await;
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

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>, security: Security) {
    // Connections live in this task's set: stopping the server drops them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(session(stream, state.clone(), security.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client's connection, in the server's security mode.
async fn session(stream: TcpStream, state: Arc<Mutex<State>>, security: Security) {
    match security {
        Security::Plain => {
            serve(stream, &state, Stage::Plain).await;
        }
        Security::Implicit(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve(tls, &state, Stage::Tls { greet: true }).await;
            }
        }
        Security::Starttls(acceptor) => {
            if let Some(plain) = serve(stream, &state, Stage::BeforeStarttls).await
                && let Ok(tls) = acceptor.accept(plain).await
            {
                // No new greeting after STARTTLS: the client says EHLO again.
                serve(tls, &state, Stage::Tls { greet: false }).await;
            }
        }
    }
}

/// Where a connection is: plain, plain with STARTTLS on offer, or in TLS
/// (greeting first for implicit TLS; not again after STARTTLS).
#[derive(Clone, Copy)]
enum Stage {
    Plain,
    BeforeStarttls,
    Tls { greet: bool },
}

/// Speaks SMTP on `stream` until QUIT or a hang-up; returns the stream when
/// the client asked for STARTTLS (offered only `BeforeStarttls`), to be
/// wrapped in TLS.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    state: &Mutex<State>,
    stage: Stage,
) -> Option<S> {
    let greet = !matches!(stage, Stage::Tls { greet: false });
    let starttls = matches!(stage, Stage::BeforeStarttls);
    let secure = matches!(stage, Stage::Tls { .. });
    let mut stream = BufReader::new(stream);
    if greet && !send(&mut stream, b"220 peil-test ESMTP\r\n").await {
        return None;
    }
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: Vec<u8> = if upper.starts_with("EHLO") {
            let offer: &[u8] = if starttls { b"250-STARTTLS\r\n" } else { b"" };
            [
                b"250-peil-test\r\n".as_slice(),
                offer,
                b"250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n",
            ]
            .concat()
        } else if starttls && upper == "STARTTLS" {
            if !send(&mut stream, b"220 2.0.0 Ready to start TLS\r\n").await {
                return None;
            }
            // Nothing is buffered: the client waits for that reply.
            return Some(stream.into_inner());
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
            if !send(&mut stream, b"354 End data with <CR><LF>.<CR><LF>\r\n").await {
                return None;
            }
            let mut data = Vec::new();
            loop {
                line.clear();
                match stream.read_line(&mut line).await {
                    Ok(0) | Err(_) => return None,
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
                secure,
            });
            b"250 OK queued\r\n".to_vec()
        } else if upper.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n".to_vec()
        } else if upper.starts_with("QUIT") {
            send(&mut stream, b"221 Bye\r\n").await;
            return None;
        } else {
            b"502 Command not implemented\r\n".to_vec()
        };
        if !send(&mut stream, &reply).await {
            return None;
        }
    }
}

/// Writes a reply and flushes it (TLS buffers what it is given).
async fn send<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>, reply: &[u8]) -> bool {
    let out = stream.get_mut();
    out.write_all(reply).await.is_ok() && out.flush().await.is_ok()
}

fn address_in(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}
