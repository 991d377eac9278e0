//! One client's side of the hub: its main channel's handle (`AgentClient`) and what the
//! hub keeps for it (`Client`): tokens, queue, the no-agent answers.

use super::device::resume_if;
use super::*;
use crate::channel::Outbox;

/// One client's main channel, as the hub sees it. Dropping it is the client leaving.
pub(crate) struct AgentClient {
    pub(super) hub: Arc<AgentHub>,
    pub(super) id: u64,
}

impl AgentClient {
    /// INIT's agent fields: an agent is always "connected" (the hub answers while none
    /// is attached), with `WINDOW` tokens.
    pub(crate) fn init(&self) -> (bool, u32) {
        (true, WINDOW)
    }

    /// C_AGENT_START: the client talks to the agent and grants us `tokens`.
    pub(crate) fn start(&self, tokens: u32) {
        let mut s = self.hub.state.lock();
        let connected = s.connected;
        let Some(c) = s.clients.get_mut(&self.id) else {
            return;
        };
        c.started = true;
        c.send_tokens = u64::from(tokens);
        c.filter = Filter::new(c.filter.policy, false);
        if connected {
            s.send_device_info();
        }
        let resume = s.check_resume();
        drop(s);
        resume_if(resume);
        (self.hub.wake)();
    }

    /// C_AGENT_TOKEN: more AGENT_DATA may go to the client.
    pub(crate) fn tokens(&self, tokens: u32) {
        let mut s = self.hub.state.lock();
        if let Some(c) = s.clients.get_mut(&self.id) {
            c.send_tokens = c.send_tokens.saturating_add(u64::from(tokens));
        }
        let resume = s.check_resume();
        drop(s);
        resume_if(resume);
        (self.hub.wake)();
    }

    /// C_AGENT_DATA. An error means the client broke the protocol: drop it.
    pub(crate) fn data(&self, piece: &[u8]) -> Result<(), String> {
        let mut after = After {
            wake: true,
            ..After::default()
        };
        let result = self
            .hub
            .state
            .lock()
            .client_data(self.id, piece, &mut after);
        self.hub.finish(after);
        result
    }

    /// Queues what is due for the client: connect/disconnect notices, agent data as far
    /// as its tokens and `OUTBOX_BOUND` allow, and tokens given back.
    pub(crate) fn produce(&self, out: &mut Outbox) {
        let mut s = self.hub.state.lock();
        if let Some(c) = s.clients.get_mut(&self.id) {
            while let Some(front) = c.out.front() {
                if let ToClient::Data(_) = front {
                    if c.send_tokens == 0 || out.pending() >= OUTBOX_BOUND {
                        break;
                    }
                }
                match c.out.pop_front().expect("front exists") {
                    ToClient::Connected => out.send(&MainMessage::AgentConnected),
                    ToClient::ConnectedTokens(n) => out.send(&MainMessage::AgentConnectedTokens(n)),
                    ToClient::Disconnected => out.send(&MainMessage::AgentDisconnected),
                    ToClient::Data(piece) => {
                        c.send_tokens -= 1;
                        c.queued_cost -= piece.len() + PIECE_COST;
                        out.send(&MainMessage::AgentData(&piece));
                    }
                }
            }
            if c.give_back > 0 {
                out.send(&MainMessage::AgentToken(c.give_back));
                c.give_back = 0;
            }
        }
        let resume = s.check_resume();
        drop(s);
        resume_if(resume);
    }
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        let resume = {
            let mut s = self.hub.state.lock();
            s.client_left(self.id);
            s.check_resume()
        };
        resume_if(resume);
    }
}

impl Client {
    /// A new agent (or the hub answering again): the client restarts it.
    pub(super) fn reconnect(&mut self) {
        self.started = false;
        self.rx_mid = false;
        self.filter = Filter::new(self.filter.policy, true);
        self.monitors.clear();
        self.fallback = AgentReader::default();
        self.stuck_since = None;
        if self.cut {
            return;
        }
        if self.tokens_cap {
            // Its window starts again at WINDOW: pieces in flight are not returned.
            self.outstanding = 0;
            self.give_back = 0;
            self.out.push_back(ToClient::ConnectedTokens(WINDOW));
        } else {
            self.give_back += std::mem::take(&mut self.outstanding);
            self.out.push_back(ToClient::Connected);
        }
    }

    /// Cut off from the agent: its queue goes, it is told the agent left.
    pub(super) fn cut_off(&mut self) {
        self.out.retain(|m| !matches!(m, ToClient::Data(_)));
        self.queued_cost = 0;
        self.stuck_since = None;
        self.cut = true;
        self.out.push_back(ToClient::Disconnected);
    }

    /// No agent: capabilities are answered, monitor configs go to the displays.
    pub(super) fn answer_for_agent(&mut self, piece: &[u8], after: &mut After) {
        let messages = match self.fallback.push(piece) {
            Ok(m) => m,
            Err(e) => {
                crate::log_warn!("malformed agent data from a client (no agent): {e:?}");
                return;
            }
        };
        for msg in messages {
            match msg.kind {
                agent::ANNOUNCE_CAPABILITIES => {
                    // Monitor configs only. File transfer is said to be disabled, so a
                    // client refuses a copy at once instead of waiting for an answer
                    // nobody sends; without the clipboard caps it grabs nothing.
                    let caps =
                        [1 << agent::CAP_MONITORS_CONFIG | 1 << agent::CAP_FILE_XFER_DISABLED];
                    let reply = agent::announce_capabilities(false, &caps);
                    self.queued_cost += reply.len() + PIECE_COST;
                    self.out.push_back(ToClient::Data(reply));
                }
                agent::MONITORS_CONFIG => after.monitors.push(msg.payload),
                other => crate::log_debug!("agent message {other} dropped: no guest agent"),
            }
        }
    }
}
