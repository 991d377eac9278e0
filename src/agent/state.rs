//! The hub's state under its lock: the agent coming and going, device reads and their
//! pause, the client-to-agent writer, monitor configs and device info.

use super::*;

impl State {
    pub(super) fn mouse_offered(&self) -> bool {
        self.agent_mouse && self.connected
    }

    /// The agent is there: every client hears AGENT_CONNECTED and starts it anew.
    pub(super) fn agent_up(&mut self) {
        self.connected = true;
        self.broken = false;
        self.reader.reset();
        self.read_filter = Filter::new(self.policy, false);
        self.graphics_info = false;
        self.writer = None;
        self.paused = false;
        for c in self.clients.values_mut() {
            c.reconnect();
        }
    }

    /// The agent went (or broke the protocol): clients hear AGENT_DISCONNECTED, then
    /// the hub answers for the agent again.
    pub(super) fn agent_gone(&mut self, why: &str) {
        crate::log_info!("guest agent {why}: clients are told it disconnected");
        self.connected = false;
        self.reader.reset();
        self.writer = None;
        self.forwarded = None;
        self.pending_mouse = None;
        self.in_flight.clear();
        for c in self.clients.values_mut() {
            c.out.retain(|m| !matches!(m, ToClient::Data(_)));
            c.queued_cost = 0;
            c.to_device.clear();
            if !c.cut {
                c.out.push_back(ToClient::Disconnected);
            }
            c.reconnect();
        }
    }

    /// Bytes the device may hand over now.
    pub(super) fn room(&mut self, now: Instant) -> usize {
        if !self.connected || self.broken {
            return DRAIN;
        }
        let timeout = self.stuck_timeout;
        let mut room = DRAIN;
        for (id, c) in self.clients.iter_mut() {
            if !c.started || c.cut {
                continue;
            }
            let full = c.queued_cost >= QUEUE_BOUND;
            let starved = c.send_tokens == 0 && c.queued_cost > 0;
            if !(full || starved) {
                c.stuck_since = None;
                room = room.min((QUEUE_BOUND - c.queued_cost) / BYTE_COST);
                continue;
            }
            let since = *c.stuck_since.get_or_insert(now);
            if now.duration_since(since) >= timeout {
                crate::log_warn!(
                    "agent client {id} took no agent data for {timeout:?} ({} bytes queued, \
                     {} tokens): cut off from the agent",
                    c.queued_cost,
                    c.send_tokens
                );
                c.cut_off();
                continue;
            }
            room = 0;
        }
        room
    }

    /// After something freed room: the port to resume, if reads were paused.
    pub(super) fn check_resume(&mut self) -> Option<Arc<dyn GuestPort>> {
        if !self.paused || self.room(Instant::now()) == 0 {
            return None;
        }
        self.paused = false;
        self.device.clone()
    }

    pub(super) fn device_bytes(&mut self, data: &[u8]) {
        if !self.connected || self.broken {
            return;
        }
        let mut pieces = Vec::new();
        self.reader
            .push(data, |port, piece| pieces.push((port, piece)));
        for (port, mut piece) in pieces {
            match port {
                agent::PORT_CLIENT => {}
                agent::PORT_SERVER => continue,
                other => return self.agent_broke(&format!("a chunk for port {other}")),
            }
            let judged = match self.read_filter.judge(&piece) {
                Ok(j) => j,
                Err(e) => return self.agent_broke(&format!("{e:?}")),
            };
            if judged.verdict != Verdict::Forward {
                continue;
            }
            if judged.starts == Some(agent::ANNOUNCE_CAPABILITIES) {
                self.graphics_info = filter::adjust_capabilities(&mut piece, self.policy);
                self.send_device_info();
            }
            for c in self.clients.values_mut() {
                if !c.started || c.cut {
                    continue;
                }
                let take = judged.starts.is_some() || c.rx_mid;
                c.rx_mid = if judged.starts.is_some() {
                    !judged.ends
                } else {
                    c.rx_mid && !judged.ends
                };
                if take {
                    c.queued_cost += piece.len() + PIECE_COST;
                    c.out.push_back(ToClient::Data(piece.clone()));
                }
            }
        }
    }

    /// The agent's stream cannot be followed any more.
    pub(super) fn agent_broke(&mut self, what: &str) {
        crate::log_warn!("guest agent sent {what}: its data is ignored until it attaches again");
        self.agent_gone("broke the protocol");
        self.broken = true;
    }

    pub(super) fn client_data(
        &mut self,
        id: u64,
        piece: &[u8],
        after: &mut After,
    ) -> Result<(), String> {
        let connected = self.connected;
        let policy = self.policy;
        let Some(c) = self.clients.get_mut(&id) else {
            return Ok(());
        };
        if piece.len() > MAX_DATA_SIZE {
            return Err(format!("an agent data piece of {} bytes", piece.len()));
        }
        if !connected || c.cut {
            // Nobody to write to: the hub answers for the agent.
            c.give_back += 1;
            if !c.cut {
                c.answer_for_agent(piece, after);
            }
            return Ok(());
        }
        if c.outstanding >= WINDOW {
            return Err(format!(
                "agent data beyond its {WINDOW} tokens ({} not yet taken by the agent)",
                c.outstanding
            ));
        }
        let judged = c
            .filter
            .judge(piece)
            .map_err(|e| format!("agent data: {e:?}"))?;
        match judged.verdict {
            Verdict::Forward => {
                c.outstanding += 1;
                c.to_device
                    .push_back((agent::chunk(agent::PORT_CLIENT, piece), judged.ends));
                self.pump();
            }
            Verdict::Discard => {
                c.give_back += 1;
                let refused_xfer =
                    judged.starts == Some(agent::FILE_XFER_START) && c.started && !policy.file_xfer;
                if let (true, Some(id)) = (refused_xfer, piece.get(HEADER..HEADER + 4)) {
                    let id = u32::from_le_bytes(id.try_into().expect("4 bytes"));
                    crate::log_info!("file transfer {id} refused: disabled on this server");
                    let status = agent::file_xfer_status(id, agent::FILE_XFER_STATUS_DISABLED);
                    c.queued_cost += status.len() + PIECE_COST;
                    c.out.push_back(ToClient::Data(status));
                }
            }
            Verdict::MonitorsConfig => {
                c.give_back += 1;
                if judged.starts.is_some() {
                    c.monitors.clear();
                }
                if c.monitors.len() + piece.len() > HEADER + MAX_MONITORS_CONFIG {
                    c.monitors = Vec::new();
                    return Err("monitors config larger than 256 monitors".into());
                }
                c.monitors.extend_from_slice(piece);
                if judged.ends {
                    let config = std::mem::take(&mut c.monitors);
                    after.monitors.push(config[HEADER..].to_vec());
                }
            }
        }
        Ok(())
    }

    /// Moves waiting client chunks to the device, one client's message at a time.
    pub(super) fn pump(&mut self) {
        let Some(port) = self.device.clone() else {
            return;
        };
        loop {
            let writer = match self.writer {
                Some(w) => w,
                None => {
                    if let Some(whole) = self.forwarded.take() {
                        port.to_guest(whole, 0);
                    }
                    // Round robin: the first waiting client after the last writer.
                    let last = self.next_writer_after;
                    let waiting =
                        |(id, c): (&u64, &Client)| (!c.to_device.is_empty()).then_some(*id);
                    let next = self
                        .clients
                        .range(last + 1..)
                        .find_map(waiting)
                        .or_else(|| self.clients.iter().find_map(waiting));
                    let Some(next) = next else {
                        return;
                    };
                    self.writer = Some(next);
                    self.next_writer_after = next;
                    next
                }
            };
            let Some(c) = self.clients.get_mut(&writer) else {
                self.writer = None;
                continue;
            };
            while let Some((bytes, ends)) = c.to_device.pop_front() {
                let tag = self.next_tag;
                self.next_tag += 1;
                self.in_flight.insert(tag, writer);
                port.to_guest(bytes, tag);
                if ends {
                    self.writer = None;
                    break;
                }
            }
            if self.writer.is_some() {
                return; // the rest of its message has not come yet
            }
        }
    }

    pub(super) fn client_left(&mut self, id: u64) {
        let Some(c) = self.clients.remove(&id) else {
            return;
        };
        if self.writer == Some(id) {
            self.writer = None;
            let left = c.filter.left();
            match (self.device.clone(), left) {
                (Some(port), 1..=PAD_LIMIT) => {
                    crate::log_warn!(
                        "a client left in the middle of an agent message: {left} bytes of \
                         zeros complete it"
                    );
                    let mut padding = Vec::new();
                    let zeros = vec![0u8; MAX_DATA_SIZE];
                    let mut rest = left as usize;
                    while rest > 0 {
                        let n = rest.min(MAX_DATA_SIZE);
                        padding.extend(agent::chunk(agent::PORT_CLIENT, &zeros[..n]));
                        rest -= n;
                    }
                    port.to_guest(padding, 0);
                }
                (_, 0) => {}
                (_, left) => crate::log_warn!(
                    "a client left {left} bytes short of an agent message: the agent may \
                     misread what follows"
                ),
            }
        }
        self.in_flight.retain(|_, owner| *owner != id);
        if self.clients.is_empty() && self.connected {
            if let Some(port) = &self.device {
                let msg = agent::encode(agent::CLIENT_DISCONNECTED, &[]);
                port.to_guest(agent::chunk(agent::PORT_SERVER, &msg), 0);
            }
        }
        self.pump();
    }

    /// VD_AGENT_GRAPHICS_DEVICE_INFO, if the agent takes it.
    pub(super) fn send_device_info(&mut self) {
        if !self.connected || !self.graphics_info {
            return;
        }
        let mut displays = Vec::new();
        for (&qxl_id, (address, start, count)) in &self.displays {
            if address.is_empty() {
                continue;
            }
            for i in 0..*count {
                displays.push(DisplayInfo {
                    channel_id: qxl_id,
                    monitor_id: i,
                    device_display_id: start.saturating_add(i),
                    address: address.clone(),
                });
            }
        }
        if let Some(port) = &self.device {
            let msg = agent::graphics_device_info(&displays);
            port.to_guest(agent::chunk(agent::PORT_SERVER, &msg), 0);
        }
    }
}
