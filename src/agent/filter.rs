//! What may pass between a client and the agent, one piece at a time (spice-server's
//! agent-msg-filter). A piece is one AGENT_DATA body, or one read of a device chunk: a
//! message starts a piece (header first) and its payload may run over later pieces.

use crate::proto::agent::{self, HEADER, MAX_DATA_SIZE, PROTOCOL};

/// Largest agent message passed on (its declared size). Clients allocate a message's
/// declared size before its data arrives (spice-gtk: `g_malloc0(size)`), so a guest
/// announcing gigabytes could bring a client down; spice-gtk's own clipboard limit
/// (`max-clipboard`) is 100 MiB.
pub(crate) const MAX_MESSAGE_SIZE: u32 = 128 << 20;

/// What happens to a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Forward,
    Discard,
    /// A piece of a client's MONITORS_CONFIG: the server takes it.
    MonitorsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterError {
    TooLarge(usize),
    IncompleteHeader(usize),
    BadProtocol(u32),
    /// A piece longer than what its message's header left to read.
    Overrun {
        len: usize,
        left: u32,
    },
}

/// The settings a filter applies (`disable-copy-paste`, `disable-agent-file-xfer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub copy_paste: bool,
    pub file_xfer: bool,
    /// MONITORS_CONFIG from a client goes to the server (client to agent only).
    pub take_monitors_config: bool,
}

/// One direction's filter state: where the current message is and what it was judged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filter {
    pub policy: Policy,
    /// Everything is dropped (no client started the agent, or none is there to read).
    pub discard_all: bool,
    left: u32,
    verdict: Verdict,
}

/// A judged piece: the verdict, and whether it began a message (of which type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judged {
    pub verdict: Verdict,
    /// The message type when this piece starts a message.
    pub starts: Option<u32>,
    /// True when this piece ends its message.
    pub ends: bool,
}

impl Filter {
    pub(crate) fn new(policy: Policy, discard_all: bool) -> Filter {
        Filter {
            policy,
            discard_all,
            left: 0,
            verdict: Verdict::Discard,
        }
    }

    /// Bytes of the current message not yet seen.
    pub(crate) fn left(&self) -> u32 {
        self.left
    }

    /// Judges one piece. An error leaves the stream out of step: the caller drops the
    /// peer (client) or the agent.
    pub(crate) fn judge(&mut self, piece: &[u8]) -> Result<Judged, FilterError> {
        if piece.len() > MAX_DATA_SIZE {
            return Err(FilterError::TooLarge(piece.len()));
        }
        if self.left > 0 {
            let len = piece.len() as u32;
            if len > self.left {
                return Err(FilterError::Overrun {
                    len: piece.len(),
                    left: self.left,
                });
            }
            self.left -= len;
            return Ok(Judged {
                verdict: self.verdict,
                starts: None,
                ends: self.left == 0,
            });
        }
        let Some((protocol, kind, size)) = agent::header(piece) else {
            return Err(FilterError::IncompleteHeader(piece.len()));
        };
        if protocol != PROTOCOL {
            return Err(FilterError::BadProtocol(protocol));
        }
        let body = (piece.len() - HEADER) as u32;
        if body > size {
            return Err(FilterError::Overrun {
                len: piece.len() - HEADER,
                left: size,
            });
        }
        self.verdict = if self.discard_all {
            Verdict::Discard
        } else if size > MAX_MESSAGE_SIZE {
            crate::log_warn!(
                "agent message of type {kind} announces {size} bytes (limit \
                 {MAX_MESSAGE_SIZE}): dropped"
            );
            Verdict::Discard
        } else {
            self.classify(kind)
        };
        self.left = size - body;
        Ok(Judged {
            verdict: self.verdict,
            starts: Some(kind),
            ends: self.left == 0,
        })
    }

    fn classify(&self, kind: u32) -> Verdict {
        let p = self.policy;
        match kind {
            agent::CLIPBOARD
            | agent::CLIPBOARD_GRAB
            | agent::CLIPBOARD_REQUEST
            | agent::CLIPBOARD_RELEASE
                if !p.copy_paste =>
            {
                Verdict::Discard
            }
            agent::FILE_XFER_START | agent::FILE_XFER_STATUS | agent::FILE_XFER_DATA
                if !p.file_xfer =>
            {
                Verdict::Discard
            }
            agent::MONITORS_CONFIG if p.take_monitors_config => Verdict::MonitorsConfig,
            _ => Verdict::Forward,
        }
    }
}

/// Clears the capabilities the server refuses from an agent's ANNOUNCE_CAPABILITIES
/// (the first piece of the message, edited in place), as spice-server does; returns
/// whether the agent takes GRAPHICS_DEVICE_INFO.
pub(crate) fn adjust_capabilities(piece: &mut [u8], policy: Policy) -> bool {
    // Header, u32 request, then the capability words.
    let words_at = HEADER + 4;
    let mut word = |bit: u32, set: Option<bool>| -> bool {
        let at = words_at + (bit / 32) as usize * 4;
        let Some(bytes) = piece.get_mut(at..at + 4) else {
            return false;
        };
        let mut w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let had = w & (1 << (bit % 32)) != 0;
        match set {
            Some(true) => w |= 1 << (bit % 32),
            Some(false) => w &= !(1 << (bit % 32)),
            None => {}
        }
        bytes.copy_from_slice(&w.to_le_bytes());
        had
    };
    if !policy.copy_paste {
        for bit in [
            agent::CAP_CLIPBOARD,
            agent::CAP_CLIPBOARD_BY_DEMAND,
            agent::CAP_CLIPBOARD_SELECTION,
        ] {
            word(bit, Some(false));
        }
    }
    if !policy.file_xfer {
        word(agent::CAP_FILE_XFER_DISABLED, Some(true));
    }
    word(agent::CAP_GRAPHICS_DEVICE_INFO, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::agent::encode;

    const ALL: Policy = Policy {
        copy_paste: true,
        file_xfer: true,
        take_monitors_config: true,
    };

    #[test]
    fn a_message_over_three_pieces() {
        let mut f = Filter::new(ALL, false);
        let msg = encode(agent::CLIPBOARD, &[7; 3000]);
        let pieces: Vec<&[u8]> = msg.chunks(MAX_DATA_SIZE).collect();
        let first = f.judge(pieces[0]).unwrap();
        assert_eq!(
            first,
            Judged {
                verdict: Verdict::Forward,
                starts: Some(agent::CLIPBOARD),
                ends: false
            }
        );
        let last = f.judge(pieces[1]).unwrap();
        assert!(last.ends && last.starts.is_none());
        assert_eq!(f.left(), 0);
    }

    #[test]
    fn policy_decides_clipboard_file_xfer_and_monitors() {
        let mut f = Filter::new(
            Policy {
                copy_paste: false,
                file_xfer: false,
                take_monitors_config: true,
            },
            false,
        );
        let verdict = |f: &mut Filter, kind| f.judge(&encode(kind, &[1])).unwrap().verdict;
        assert_eq!(verdict(&mut f, agent::CLIPBOARD_GRAB), Verdict::Discard);
        assert_eq!(verdict(&mut f, agent::FILE_XFER_START), Verdict::Discard);
        assert_eq!(
            verdict(&mut f, agent::MONITORS_CONFIG),
            Verdict::MonitorsConfig
        );
        assert_eq!(verdict(&mut f, 3), Verdict::Forward);
        f.discard_all = true;
        assert_eq!(verdict(&mut f, 3), Verdict::Discard);
    }

    #[test]
    fn a_message_announcing_gigabytes_is_dropped_not_forwarded() {
        let mut f = Filter::new(ALL, false);
        let mut huge = encode(agent::CLIPBOARD, &[9; 100]);
        huge[16..20].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let first = f.judge(&huge).unwrap();
        assert_eq!(first.verdict, Verdict::Discard);
        assert_eq!(f.judge(&[9; 2048]).unwrap().verdict, Verdict::Discard);
        assert_eq!(f.left(), (1 << 30) - 100 - 2048);
        let mut at_limit = Filter::new(ALL, false);
        huge[16..20].copy_from_slice(&MAX_MESSAGE_SIZE.to_le_bytes());
        assert_eq!(at_limit.judge(&huge).unwrap().verdict, Verdict::Forward);
    }

    #[test]
    fn lies_are_errors() {
        let mut f = Filter::new(ALL, false);
        assert_eq!(
            f.judge(&[0; 2049]),
            Err(FilterError::TooLarge(2049)),
            "more than VD_AGENT_MAX_DATA_SIZE"
        );
        assert_eq!(f.judge(&[1, 0, 0]), Err(FilterError::IncompleteHeader(3)));
        let mut bad = encode(agent::CLIPBOARD, &[]);
        bad[0] = 2;
        assert_eq!(f.judge(&bad), Err(FilterError::BadProtocol(2)));
        // A header that says 4 bytes follow, then a piece of 10.
        let mut short = encode(agent::CLIPBOARD, &[0; 2]);
        short[16] = 4;
        f.judge(&short).unwrap();
        assert_eq!(
            f.judge(&[0; 10]),
            Err(FilterError::Overrun { len: 10, left: 2 })
        );
        // A header whose own piece carries more than it says.
        let mut f = Filter::new(ALL, false);
        let mut long = encode(agent::CLIPBOARD, &[0; 8]);
        long[16] = 2;
        assert_eq!(
            f.judge(&long),
            Err(FilterError::Overrun { len: 8, left: 2 })
        );
    }

    #[test]
    fn capabilities_are_adjusted() {
        let caps = (1 << agent::CAP_CLIPBOARD) | (1 << agent::CAP_GRAPHICS_DEVICE_INFO);
        let mut msg = agent::announce_capabilities(false, &[caps]);
        let policy = Policy {
            copy_paste: false,
            file_xfer: false,
            take_monitors_config: true,
        };
        assert!(adjust_capabilities(&mut msg, policy));
        let word = u32::from_le_bytes(msg[24..28].try_into().unwrap());
        assert_eq!(
            word,
            (1 << agent::CAP_FILE_XFER_DISABLED) | (1 << agent::CAP_GRAPHICS_DEVICE_INFO)
        );
        let mut empty = agent::announce_capabilities(false, &[]);
        assert!(
            !adjust_capabilities(&mut empty, policy),
            "no words: nothing"
        );
    }
}
