//! A minimal HTTP/1.1 client for the runtime test's probes: a status code, with an optional
//! Host header and basic-auth credentials, as a kubelet probe or a curl would send them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;

/// A request to `127.0.0.1:port`.
#[derive(Debug, Clone, Default)]
pub struct Get<'a> {
    pub port: u16,
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub auth: Option<(&'a str, &'a str)>,
}

impl Get<'_> {
    /// The answer's status code and body; `None` when nothing answers.
    pub fn send(&self) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let host = self
            .host
            .map(str::to_owned)
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.port));
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
            self.path
        );
        if let Some((user, password)) = self.auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    }

    pub fn status(&self) -> Option<u16> {
        self.send().map(|(s, _)| s)
    }
}
