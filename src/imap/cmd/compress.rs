//! COMPRESS (RFC 4978): the command only. The DEFLATE layer itself is
//! `crate::net::deflate`, put over the stream by the driver
//! (`crate::imap::server`, [`Action::Compress`]) where STARTTLS puts TLS.

use super::super::grammar::{CompressMechanism, Syntax};
use super::super::response::{Code, ImapError, Status};
use super::super::session::{Action, Outcome, Session};

impl Session {
    /// RFC 4978 §3. Valid in Authenticated and Selected state (its §5 adds it to
    /// `command-auth`; the state check answers BAD before login). An unknown mechanism
    /// never gets here: the grammar answers it BAD.
    pub(in super::super) fn compress(
        &mut self,
        tag: &str,
        mechanism: CompressMechanism,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        if !self.ctx.config.imap.compress {
            // Not advertised (`imap.compress: false`): as if unknown.
            return Err(Syntax::Unknown("command").into());
        }
        if self.compressed {
            // RFC 4978 §3 (and its example): NO [COMPRESSIONACTIVE].
            return Err(ImapError::no(
                Code::CompressionActive,
                "DEFLATE is already active",
            ));
        }
        match mechanism {
            CompressMechanism::Deflate => {
                Status::ok("DEFLATE active").encode(Some(tag), out);
                self.compressed = true;
                Ok(Outcome::Action(Action::Compress))
            }
        }
    }
}
