//! A raw IMAP/POP3 line client over TCP with read timeouts: send a line, read replies.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use super::IO_TIMEOUT;

/// A raw line client over loopback.
pub struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    /// Connects and reads the greeting, which must be `* OK` or `+OK`.
    pub fn connect(addr: SocketAddr) -> Raw {
        let (c, greeting) = Raw::open(addr);
        assert!(
            greeting.starts_with("* OK") || greeting.starts_with("+OK"),
            "{greeting}"
        );
        c
    }

    /// Connects and returns the first line, whatever it says (a refusal, say).
    pub fn open(addr: SocketAddr) -> (Raw, String) {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut c = Raw {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        let greeting = c.line();
        (c, greeting)
    }

    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    pub fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Sends an IMAP command and returns its tagged reply (untagged lines skipped).
    pub fn imap(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let tag = format!("{} ", cmd.split(' ').next().unwrap());
        loop {
            let l = self.line();
            assert!(
                !l.is_empty(),
                "connection closed before `{cmd}` was answered"
            );
            if l.starts_with(&tag) {
                return l;
            }
        }
    }

    pub fn pop3(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.line()
    }
}
