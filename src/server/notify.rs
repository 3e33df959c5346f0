//! Readiness and stopping notices for systemd (`Type=notify`, contrib/nestbox.service):
//! the sd_notify(3) protocol without a crate. systemd puts the path of a Unix datagram
//! socket in `$NOTIFY_SOCKET` (a leading `@` names an abstract socket); one datagram with
//! `READY=1` or `STOPPING=1` tells it the state. Without the variable nothing is sent.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::UnixDatagram;

/// A state change systemd is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Every listener is bound: clients may connect.
    Ready,
    /// Shutdown began.
    Stopping,
}

impl Notice {
    fn text(self) -> &'static str {
        match self {
            Notice::Ready => "READY=1",
            Notice::Stopping => "STOPPING=1",
        }
    }
}

/// Sends `notice` to `$NOTIFY_SOCKET` if set. A failure is logged, never fatal.
pub fn notify(notice: Notice) {
    if let Some(socket) = std::env::var_os("NOTIFY_SOCKET")
        && let Err(e) = notify_to(&socket, notice)
    {
        log::warn!("cannot notify systemd ({}): {e}", notice.text());
    }
}

/// Sends `notice` to the datagram socket `socket` (`@name`: abstract, Linux).
pub fn notify_to(socket: &OsStr, notice: Notice) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = notice.text().as_bytes();
    match socket.as_encoded_bytes().strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(bytes, &addr)?;
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract sockets are Linux only",
            ));
        }
        None => {
            sock.send_to(bytes, socket)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_to_sends_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), Notice::Ready).unwrap();
        notify_to(path.as_os_str(), Notice::Stopping).unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn notify_to_a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.sock");
        assert!(notify_to(missing.as_os_str(), Notice::Ready).is_err());
    }
}
