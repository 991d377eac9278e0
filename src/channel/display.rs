//! The display channel: the primary surface and its damage, sent as draw-copy images
//! in the codec `image::choose` picks (GLZ with the client's dictionary, LZ, LZ4, QUIC
//! or raw; on a slow link JPEG for photographs and GLZ deflated).

use super::delivery::{time_on_link, DeliveryRate};
use super::{malformed, AckWindow, Channel, ChannelError, Outbox, ACK_WINDOW};
use crate::display::draw::DrawImage;
use crate::display::streams::VideoUpdate;
use crate::display::{Pending, Screen, Update, ViewerId};
use crate::geometry::{Area, Rect};
use crate::image::choose::{self, ClientCodecs, Codec, ImageCompression, ImageSettings};
use crate::image::glz::SharedDictionary;
use crate::image::jpeg::{self, Jpeg};
use crate::image::lz::{self, LzType};
use crate::image::quic::{self, QuicType};
use crate::image::zlib;
use crate::proto::caps::Caps;
use crate::proto::display::{self as wire, DisplayInit, DisplayMessage, ImageData};
use crate::proto::msg::display as m;
use crate::video::select;
use std::borrow::Cow;

pub(crate) struct DisplayChannel {
    screen: Screen,
    viewer: ViewerId,
    caps: Caps,
    initialized: bool,
    generation: u64,
    has_surface: bool,
    /// MARK is due after the first full picture of a surface.
    mark_due: bool,
    next_image_id: u64,
    max_monitors: u16,
    /// The monitors generation last sent.
    monitors_seen: Option<u64>,
    /// Drawings sent as themselves, by message type, and areas sent as pixels (logged
    /// at debug level when the channel closes).
    sent_draws: std::collections::BTreeMap<u16, u64>,
    sent_pixel_areas: u64,
    sent_frames: u64,
    /// (stream id, report id) of the reports asked for.
    report_ids: Vec<(u32, u32)>,
    next_report_id: u32,
    codec_preference: Option<Vec<u8>>,
    /// The server's image compression and the clients' GLZ dictionaries.
    images: ImageSettings,
    /// The client session this channel belongs to (whose GLZ dictionary it shares).
    session_id: u32,
    /// `PREFERRED_COMPRESSION`: the client's choice, over the server's.
    preferred_compression: Option<ImageCompression>,
    glz: Option<SharedDictionary>,
    /// Images sent, by codec, and their bytes (logged when the channel closes).
    sent_images: std::collections::BTreeMap<&'static str, (u64, u64)>,
    /// Photographs may go JPEG (`jpeg-wan-compression` for this client's link).
    lossy_images: bool,
    /// The session's measured link rate as last passed to the screen (video streams
    /// start from it).
    link_rate: Option<u64>,
    /// What the socket takes while output waits for it (the link's rate now), and the
    /// time base of its looks.
    delivery: DeliveryRate,
    opened: std::time::Instant,
    /// The kernel's cap on unsent bytes asked for (`want_unsent`).
    unsent: u32,
    /// GLZ images are deflated when that makes them smaller (`zlib-glz-wan-compression`).
    zlib_glz: bool,
}

impl DisplayChannel {
    pub(crate) fn new(
        screen: Screen,
        viewer: ViewerId,
        client_caps: Caps,
        max_monitors: u16,
    ) -> DisplayChannel {
        DisplayChannel {
            screen,
            viewer,
            caps: client_caps,
            initialized: false,
            generation: 0,
            has_surface: false,
            mark_due: false,
            next_image_id: 1,
            max_monitors,
            monitors_seen: None,
            sent_draws: Default::default(),
            sent_pixel_areas: 0,
            sent_frames: 0,
            report_ids: Vec::new(),
            next_report_id: 0,
            codec_preference: None,
            images: ImageSettings::default(),
            session_id: 0,
            preferred_compression: None,
            glz: None,
            sent_images: Default::default(),
            lossy_images: false,
            link_rate: None,
            delivery: DeliveryRate::default(),
            opened: std::time::Instant::now(),
            unsent: DISPLAY_UNSENT,
            zlib_glz: false,
        }
    }

    /// The server's image settings, and the client session whose GLZ dictionary this
    /// channel shares.
    pub(crate) fn with_images(mut self, images: ImageSettings, session_id: u32) -> Self {
        self.images = images;
        self.session_id = session_id;
        self
    }

    /// Sends the monitor layout when it changed (the guest's, or one head covering the
    /// surface when the guest gave none).
    fn push_monitors(&mut self, out: &mut Outbox) {
        if !self.caps.has(m::CAP_MONITORS_CONFIG) || !self.has_surface {
            return;
        }
        let layout = self.screen.monitors();
        if self.monitors_seen == Some(layout.generation) {
            return;
        }
        self.monitors_seen = Some(layout.generation);
        out.send(&DisplayMessage::MonitorsConfig {
            heads: &layout.heads,
            max_allowed: layout.max_allowed.min(self.max_monitors),
        });
    }

    fn draw(&mut self, area: Area, pixels: &[u8], out: &mut Outbox) {
        let (width, height) = (area.width(), area.height());
        if width == 0 || height == 0 {
            return;
        }
        let id = self.next_image_id;
        self.next_image_id += 1;
        // The top byte is padding in a 32-bit surface: masked here, the pixels are what
        // GLZ keeps in its window.
        let masked: Vec<u32> = pixels
            .chunks_exact(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
            .collect();
        // Pixels from our surface: C sends its plain copies (which our damage path
        // carries) lossy; the graduality test keeps text-like areas lossless.
        let encoded = self.encode(width, height, Cow::Owned(masked), false, true, true);
        if self.lossy_images && !matches!(encoded, Encoded::Jpeg(_)) {
            self.screen.sent_lossless(self.viewer, area);
        }
        let lz4;
        let data = match &encoded {
            Encoded::Raw => ImageData::Raw(pixels),
            Encoded::Lz4(_) => {
                lz4 = wire::lz4_payload(pixels);
                ImageData::Lz4(&lz4)
            }
            other => other.data(),
        };
        self.tally(encoded.name(), data.len());
        out.send(&DisplayMessage::DrawCopy {
            surface_id: 0,
            dest: Rect::from(area),
            image_id: id,
            data,
        });
    }

    /// A forwarded drawing's image in this client's codec: its bytes (descriptor and
    /// data), or `None` when those the drawing carries already are.
    fn draw_image(&mut self, image: &DrawImage, lossy_source: bool) -> Option<Vec<u8>> {
        let (width, height) = (image.width, image.height);
        let format = if image.alpha {
            wire::BITMAP_FMT_RGBA
        } else {
            wire::BITMAP_FMT_32BIT
        };
        let lossy_ok = lossy_source && self.lossy_images;
        let encoded = self.encode(
            width,
            height,
            Cow::Borrowed(&image.pixels),
            image.alpha,
            lossy_ok,
            !image.maybe_undecoded,
        );
        let bgra = || -> Vec<u8> { image.pixels.iter().flat_map(|p| p.to_le_bytes()).collect() };
        let (raw, lz4_payload);
        let data = match &encoded {
            // What the drawing carries: raw (small images) or LZ4 (when the client
            // takes LZ4).
            Encoded::Lz4(_) if image.lz4 => return self.tally_kept(image),
            Encoded::Lz4(_) | Encoded::Raw if !image.lz4 => return self.tally_kept(image),
            Encoded::Lz4(_) => {
                lz4_payload = wire::lz4_payload_of(&bgra(), format);
                ImageData::Lz4(&lz4_payload)
            }
            Encoded::Raw => {
                raw = bgra();
                ImageData::Raw(&raw)
            }
            other => other.data(),
        };
        let mut w = crate::proto::wire::Writer::default();
        wire::image(&mut w, image.id, width, height, format, data);
        let bytes = w.into_inner();
        self.tally(encoded.name(), bytes.len());
        Some(bytes)
    }

    fn tally_kept(&mut self, image: &DrawImage) -> Option<Vec<u8>> {
        let name = if image.lz4 { "lz4" } else { "raw" };
        self.tally(name, image.size());
        None
    }

    fn tally(&mut self, name: &'static str, bytes: usize) {
        let entry = self.sent_images.entry(name).or_default();
        *entry = (entry.0 + 1, entry.1 + bytes as u64);
    }

    /// The codec for an image, and the GLZ dictionary when it is GLZ (only for images
    /// without alpha: our GLZ codes RGB32). `lossy_ok`: the image may go JPEG.
    fn codec_for(
        &self,
        width: u32,
        height: u32,
        pixels: &[u32],
        glz_allowed: bool,
        lossy_ok: bool,
    ) -> (Codec, Option<SharedDictionary>) {
        let setting = self
            .preferred_compression
            .unwrap_or_else(|| self.images.compression());
        let glz = self
            .glz
            .clone()
            .filter(|dict| glz_allowed && dict.lock().takes(pixels.len()));
        let client = ClientCodecs {
            lz4: self.caps.has(m::CAP_LZ4_COMPRESSION),
            glz: glz.is_some(),
            jpeg: lossy_ok && self.lossy_images,
        };
        let codec = choose::choose(setting, width, height, pixels, client);
        (codec, glz.filter(|_| codec == Codec::Glz))
    }

    /// An image (`alpha`: RGBA, else RGB32) in the codec chosen for it, falling back as
    /// C does: JPEG that is no smaller than the pixels to QUIC, QUIC to raw, GLZ without
    /// room to LZ. A GLZ image, once encoded, is in the dictionary and must be sent
    /// (the client's window counts on every id). Owned pixels go into the GLZ window
    /// as they are. `dictionary_ok`: the client surely decodes it (else no GLZ).
    fn encode(
        &mut self,
        width: u32,
        height: u32,
        pixels: Cow<'_, [u32]>,
        alpha: bool,
        lossy_ok: bool,
        dictionary_ok: bool,
    ) -> Encoded {
        let (mut codec, glz) =
            self.codec_for(width, height, &pixels, !alpha && dictionary_ok, lossy_ok);
        dump_for_replay(width, height, &pixels);
        if codec == Codec::Jpeg {
            match jpeg::encode(width, height, &pixels, alpha) {
                Some(data) => return Encoded::Jpeg(data),
                None => codec = Codec::Quic,
            }
        }
        let (lz_kind, quic_kind) = if alpha {
            (LzType::Rgba, QuicType::Rgba)
        } else {
            (LzType::Rgb32, QuicType::Rgb32)
        };
        match codec {
            Codec::Raw => Encoded::Raw,
            Codec::Lz4 => Encoded::Lz4(Vec::new()),
            Codec::Quic | Codec::Jpeg => match quic_or_raw(quic_kind, width, height, &pixels) {
                Some(data) => Encoded::Quic(data),
                None => Encoded::Raw,
            },
            Codec::Lz => Encoded::Lz(lz::encode(lz_kind, width, height, &pixels)),
            Codec::Glz => match glz_encode(glz, width, height, pixels) {
                Ok(data) if self.zlib_glz => match zlib::wrap(&data) {
                    Some(deflated) => Encoded::ZlibGlz {
                        glz_size: data.len() as u32,
                        data: deflated,
                    },
                    None => Encoded::Glz(data),
                },
                Ok(data) => Encoded::Glz(data),
                Err(pixels) => Encoded::Lz(lz::encode(lz_kind, width, height, &pixels)),
            },
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// The link's rate at `now_ms`: what the socket took while output waited, else the
    /// session's network test.
    fn link_at(&self, now_ms: u64) -> Option<u64> {
        self.delivery.bps(now_ms).or(self.link_rate)
    }

    /// How long (ms) what waits ahead of the next message takes on a link of
    /// `link_bps`: the outbox and the kernel's unsent bytes (where the socket does not
    /// tell, at their cap), plus what a queue on the path adds. The playout delay rises
    /// to cover it and the path's one-way time.
    fn expect_queue_ahead(&self, out: &Outbox, link_bps: Option<u64>) -> Option<u64> {
        let socket = out.send_queue();
        let unsent = socket.map_or(self.unsent, |q| q.unsent_bytes);
        let ahead = out.pending() as u64 + u64::from(unsent);
        let ms = time_on_link(ahead, link_bps?)? + socket.map_or(0, |q| q.path_queue_ms());
        let path = ms + socket.map_or(0, |q| q.one_way_ms());
        self.screen
            .video()
            .clock
            .expect_path(u32::try_from(path).unwrap_or(u32::MAX));
        Some(ms)
    }

    /// The kernel's cap on unsent bytes follows the link's rate (changed only by more
    /// than a quarter: every change is a system call).
    fn follow_link(&mut self, out: &mut Outbox, link: Option<u64>) {
        let cap = send_ahead(link, UNSENT_AHEAD_MS, DISPLAY_UNSENT as usize);
        let cap = u32::try_from(cap).unwrap_or(DISPLAY_UNSENT);
        if cap.saturating_mul(5) < self.unsent.saturating_mul(4)
            || cap.saturating_mul(4) > self.unsent.saturating_mul(5)
        {
            self.unsent = cap;
            out.want_unsent(cap);
        }
    }

    /// Sends the `MARK` a new surface's first picture is due, once.
    fn mark_shown(&mut self, out: &mut Outbox) {
        if std::mem::take(&mut self.mark_due) {
            out.send(&DisplayMessage::Mark);
        }
    }

    /// Follows the session's network test and the WAN settings: whether photographs may
    /// go JPEG and GLZ images deflated for this client.
    fn follow_wan(&mut self) {
        let rate = self.images.links.rate(self.session_id);
        if rate != self.link_rate {
            self.link_rate = rate;
            self.screen.set_link_rate(self.viewer, rate);
        }
        let (jpeg, zlib_glz) = self.images.wan_at(rate);
        self.zlib_glz = zlib_glz;
        if jpeg != self.lossy_images {
            self.lossy_images = jpeg;
            self.screen.set_lossy_images(self.viewer, jpeg);
            crate::log_info!(
                "display viewer {}: JPEG for photographs {}, zlib over GLZ {}",
                self.viewer,
                if jpeg { "on" } else { "off" },
                if zlib_glz { "on" } else { "off" }
            );
        }
    }
}

/// GLZ data for an image, or its pixels back when the dictionary has no room for it.
fn glz_encode<'a>(
    dict: Option<SharedDictionary>,
    width: u32,
    height: u32,
    pixels: Cow<'a, [u32]>,
) -> Result<Vec<u8>, Cow<'a, [u32]>> {
    let Some(dict) = dict else {
        return Err(pixels);
    };
    let mut dict = dict.lock();
    match pixels {
        Cow::Owned(owned) => dict.encode_owned(width, height, owned).map_err(Cow::Owned),
        Cow::Borrowed(borrowed) => dict
            .encode(width, height, borrowed)
            .ok_or(Cow::Borrowed(borrowed)),
    }
}

/// A debug aid for encoder work: with `SPICE_RS_DUMP_IMAGES=dir` each band sent as pixels
/// is written there (u32 LE width, height, then its BGRX pixels), in the order encoded,
/// for `examples/image_replay.rs` to time the encoders on a real session's images.
fn dump_for_replay(width: u32, height: u32, pixels: &[u32]) {
    static DIR: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = DIR.get_or_init(|| std::env::var("SPICE_RS_DUMP_IMAGES").ok()) else {
        return;
    };
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut file = width.to_le_bytes().to_vec();
    file.extend_from_slice(&height.to_le_bytes());
    file.extend(pixels.iter().flat_map(|p| p.to_le_bytes()));
    if let Err(e) = std::fs::write(format!("{dir}/{n:06}.img"), file) {
        crate::log_warn!("SPICE_RS_DUMP_IMAGES: {e}");
    }
}

/// An image's data in its codec (`Lz4`'s payload is made by the caller, from bytes it
/// has).
enum Encoded {
    Raw,
    Lz4(Vec<u8>),
    Lz(Vec<u8>),
    Glz(Vec<u8>),
    ZlibGlz { glz_size: u32, data: Vec<u8> },
    Quic(Vec<u8>),
    Jpeg(Jpeg),
}

impl Encoded {
    fn name(&self) -> &'static str {
        match self {
            Encoded::Raw => "raw",
            Encoded::Lz4(_) => "lz4",
            Encoded::Lz(_) => "lz",
            Encoded::Glz(_) => "glz",
            Encoded::ZlibGlz { .. } => "zlib-glz",
            Encoded::Quic(_) => "quic",
            Encoded::Jpeg(Jpeg::Opaque(_)) => "jpeg",
            Encoded::Jpeg(Jpeg::Alpha { .. }) => "jpeg-alpha",
        }
    }

    /// The wire form of a compressed image (raw and LZ4 are the caller's).
    fn data(&self) -> ImageData<'_> {
        match self {
            Encoded::Raw => ImageData::Raw(&[]),
            Encoded::Lz4(payload) => ImageData::Lz4(payload),
            Encoded::Lz(data) => ImageData::Lz(data),
            Encoded::Glz(data) => ImageData::Glz(data),
            Encoded::ZlibGlz { glz_size, data } => ImageData::ZlibGlz {
                glz_size: *glz_size,
                data,
            },
            Encoded::Quic(data) => ImageData::Quic(data),
            Encoded::Jpeg(Jpeg::Opaque(data)) => ImageData::Jpeg(data),
            Encoded::Jpeg(Jpeg::Alpha { jpeg_size, data }) => ImageData::JpegAlpha {
                jpeg_size: *jpeg_size,
                data,
            },
        }
    }
}

/// QUIC data for an image, or `None` when it would be larger than the raw pixels (noise),
/// which then go raw, as in C.
fn quic_or_raw(kind: QuicType, width: u32, height: u32, pixels: &[u32]) -> Option<Vec<u8>> {
    let data = quic::encode(kind, width, height, pixels);
    (data.len() <= pixels.len() * 4).then_some(data)
}

/// Unsent bytes a display channel's kernel queue may hold beyond what is in flight
/// (the reactor sets it): a slow link's backlog stays in the outbox, where video frames
/// are paced and dropped.
pub(crate) const DISPLAY_UNSENT: u32 = 16 << 10;
/// Most bytes queued for the socket before another video frame is taken: about a
/// frame, so on a slow link the next frame waits in its slot (where a newer one
/// replaces it, and the encoder skips frames meanwhile) instead of in the outbox.
const VIDEO_SEND_AHEAD: usize = 16 << 10;
/// Bytes queued past which no more pixels are taken from the screen (a slice at most
/// goes past it).
const PIXELS_SEND_AHEAD: usize = 64 << 10;
/// On a link measured slower (the session's network test), what those bytes take on it
/// at most (ms), down to a floor: 64 KiB of pixels ahead of a frame are a second at
/// 0.5 Mbit/s, and a frame a second late is dropped by the client.
const VIDEO_AHEAD_MS: u64 = 100;
const PIXELS_AHEAD_MS: u64 = 250;
const LEAST_SEND_AHEAD: usize = 4 << 10;

/// What the kernel's unsent bytes take on a link measured slower (ms), at most
/// `DISPLAY_UNSENT`: 16 KiB are a quarter of a second at 0.5 Mbit/s in front of every
/// frame, on top of what is in flight.
const UNSENT_AHEAD_MS: u64 = 50;

/// Bytes that take `ms` on a link of `link_bps` (none measured: `most`), within
/// `LEAST_SEND_AHEAD..=most`.
fn send_ahead(link_bps: Option<u64>, ms: u64, most: usize) -> usize {
    link_bps.map_or(most, |bps| {
        let bytes = bps.saturating_mul(ms) / 8000;
        usize::try_from(bytes)
            .unwrap_or(most)
            .clamp(LEAST_SEND_AHEAD, most)
    })
}

impl DisplayChannel {
    /// Stream messages come before drawings and pixels: a stream's end must reach the
    /// client before the lossless pixels of its area.
    /// `now_ms` and `link`: the time and the link's rate of this `produce`.
    fn produce_video(&mut self, out: &mut Outbox, now_ms: u64, link: Option<u64>) {
        // A frame waits in its slot (where a newer one replaces it) rather than in the
        // outbox: a slow link then drops frames instead of piling up latency.
        let ahead = send_ahead(link, VIDEO_AHEAD_MS, VIDEO_SEND_AHEAD);
        let room = out.has_room() && out.pending() < ahead;
        for update in self.screen.next_video(self.viewer, room) {
            match update {
                VideoUpdate::Create(info) => {
                    let dest = Rect::from(info.dest);
                    out.send(&DisplayMessage::StreamCreate {
                        id: info.id,
                        codec_type: select::codec_type(info.codec),
                        dest,
                    });
                    // On a thin link what is queued ahead takes a while: the first
                    // frames are shown that much later, not dropped as late.
                    self.expect_queue_ahead(out, self.link_rate);
                    if self.caps.has(m::CAP_STREAM_REPORT) {
                        self.next_report_id = self.next_report_id.wrapping_add(1);
                        let unique = self.next_report_id;
                        self.report_ids.retain(|(id, _)| *id != info.id);
                        self.report_ids.push((info.id, unique));
                        out.send(&DisplayMessage::StreamActivateReport {
                            id: info.id,
                            unique_id: unique,
                        });
                    }
                }
                VideoUpdate::Frame { frame, stream } => {
                    let backlogged = out.pending() > 0;
                    out.send(&DisplayMessage::StreamData {
                        id: frame.stream,
                        mm_time: frame.mm_time,
                        data: &frame.data,
                    });
                    // The link just narrowed: the frames queued ahead of this one take
                    // longer than the playout delay allows. The delay covers them now,
                    // not after reports of frames dropped as late, which a client busy
                    // receiving the queue sends only a second or more later.
                    // (Where the socket does not tell its queue, it is at its cap
                    // behind a backlog.)
                    let delivered = self.delivery.bps(now_ms);
                    let path = if backlogged || out.send_queue().is_some() {
                        self.expect_queue_ahead(out, delivered)
                    } else {
                        None
                    };
                    stream.on_sent(self.viewer, frame.data.len(), delivered, path);
                    self.sent_frames += 1;
                }
                VideoUpdate::Destroy(id) => {
                    self.report_ids.retain(|(s, _)| *s != id);
                    out.send(&DisplayMessage::StreamDestroy { id });
                }
            }
        }
    }
}

impl Channel for DisplayChannel {
    fn start(&mut self, out: &mut Outbox) {
        out.ack = Some(AckWindow::new(ACK_WINDOW));
        out.send(&DisplayMessage::SetAck {
            generation: 1,
            window: ACK_WINDOW,
        });
    }

    fn on_message(
        &mut self,
        msg_type: u16,
        body: &[u8],
        out: &mut Outbox,
    ) -> Result<(), ChannelError> {
        match msg_type {
            m::C_INIT => {
                let init = DisplayInit::parse(body).map_err(malformed(msg_type))?;
                if !self.initialized {
                    self.initialized = true;
                    self.glz = self
                        .images
                        .dictionaries
                        .get(self.session_id, init.glz_window_size);
                    self.screen.add_viewer_with(self.viewer, self.caps.clone());
                    // spice-gtk may state its codec preference before its INIT.
                    if let Some(preference) = self.codec_preference.clone() {
                        self.screen.set_codec_preference(self.viewer, preference);
                    }
                    out.send(&DisplayMessage::InvalAllPalettes);
                }
            }
            m::C_STREAM_REPORT => {
                let report = wire::StreamReport::parse(body).map_err(malformed(msg_type))?;
                if self
                    .report_ids
                    .contains(&(report.stream_id, report.unique_id))
                {
                    self.screen.stream_report(self.viewer, &report);
                }
            }
            m::C_PREFERRED_VIDEO_CODEC_TYPE => {
                if let Some(preference) = select::parse_preferred_codecs(body) {
                    if self.initialized {
                        self.screen
                            .set_codec_preference(self.viewer, preference.clone());
                    }
                    self.codec_preference = Some(preference);
                }
            }
            m::C_PREFERRED_COMPRESSION => {
                let value = *body.first().ok_or(ChannelError::BadMessage {
                    msg_type,
                    reason: "empty preferred compression",
                })?;
                match ImageCompression::from_c(i32::from(value)) {
                    Some(preferred) => self.preferred_compression = Some(preferred),
                    None => crate::log_warn!(
                        "display viewer {}: preferred compression {value} is not one we know",
                        self.viewer
                    ),
                }
            }
            m::C_GL_DRAW_DONE => {}
            _ => {
                return Err(ChannelError::BadMessage {
                    msg_type,
                    reason: "unknown display message",
                })
            }
        }
        Ok(())
    }

    fn produce(&mut self, out: &mut Outbox) {
        // Called right after a write: bytes still waiting mean the socket was full.
        let now = self.now_ms();
        self.delivery.look(now, out.taken(), out.pending());
        let link = self.link_at(now);
        self.follow_link(out, link);
        if !self.initialized {
            return;
        }
        if self.has_surface {
            self.produce_video(out, now, link);
        }
        self.follow_wan();
        // Pixels only while little is queued: on a slow link the damage waits in the
        // screen's region (newest pixels, bounded), not in front of the video.
        let ahead = send_ahead(link, PIXELS_AHEAD_MS, PIXELS_SEND_AHEAD);
        while out.has_room() && out.pending() < ahead {
            match self.screen.next_update(self.viewer, self.generation) {
                Update::Nothing => {
                    // Nothing left as pixels (video may cover all of it): complete too.
                    self.mark_shown(out);
                    self.push_monitors(out);
                    break;
                }
                Update::NewSurface {
                    generation,
                    width,
                    height,
                } => {
                    if self.has_surface {
                        out.send(&DisplayMessage::SurfaceDestroy { id: 0 });
                    }
                    self.generation = generation;
                    self.has_surface = true;
                    self.mark_due = true;
                    out.send(&DisplayMessage::SurfaceCreate {
                        id: 0,
                        width,
                        height,
                        primary: true,
                    });
                    self.push_monitors(out);
                }
                Update::SurfaceGone { generation } => {
                    self.generation = generation;
                    if self.has_surface {
                        out.send(&DisplayMessage::SurfaceDestroy { id: 0 });
                        self.has_surface = false;
                    }
                }
                Update::Draw(Pending {
                    draws,
                    parts,
                    picture_complete,
                }) => {
                    for op in draws {
                        *self.sent_draws.entry(op.msg.msg_type).or_default() += 1;
                        let lossy_source = op.lossy_source;
                        match op
                            .msg
                            .with_images(|image| self.draw_image(image, lossy_source))
                        {
                            Some(msg) => out.send(&msg),
                            None => out.send(&*op.msg),
                        }
                    }
                    self.sent_pixel_areas += parts.len() as u64;
                    for (area, pixels) in parts {
                        self.draw(area, &pixels, out);
                    }
                    // The client shows the display once its first picture is whole.
                    if picture_complete {
                        self.mark_shown(out);
                    }
                }
            }
        }
    }

    fn closed(&mut self) {
        crate::log_debug!(
            "display viewer {}: sent {} areas as pixels (images by codec: count, bytes {:?}), {} video frames, drawings by message type {:?}",
            self.viewer,
            self.sent_pixel_areas,
            self.sent_images,
            self.sent_frames,
            self.sent_draws
        );
        self.screen.remove_viewer(self.viewer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::framebuffer::Framebuffer;
    use crate::channel::testing::drain;
    use crate::display::Forward;
    use crate::proto::frame::{HeaderKind, Message};
    use crate::proto::msg::base;

    fn types(msgs: &[Message]) -> Vec<u16> {
        msgs.iter().map(|m| m.msg_type).collect()
    }

    #[test]
    fn what_waits_ahead_of_a_frame_is_a_time_on_a_thin_link() {
        assert_eq!(send_ahead(None, 100, 16 << 10), 16 << 10, "not measured");
        assert_eq!(
            send_ahead(Some(500_000), 250, 64 << 10),
            15_625,
            "0.5 Mbit/s"
        );
        assert_eq!(send_ahead(Some(100_000), 100, 16 << 10), LEAST_SEND_AHEAD);
        assert_eq!(send_ahead(Some(20_000_000), 250, 64 << 10), 64 << 10);
        assert_eq!(send_ahead(Some(u64::MAX), 250, 64 << 10), 64 << 10);
    }

    /// A channel that has shown an 8x8 surface and has nothing left to send.
    fn showing(screen: &Screen) -> (DisplayChannel, Outbox) {
        screen.create_surface(8, 8);
        let mut ch = DisplayChannel::new(screen.clone(), 1, Caps::default(), 1);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        ch.produce(&mut out);
        drain(&mut out);
        (ch, out)
    }

    fn init_body() -> Vec<u8> {
        let mut w = crate::proto::wire::Writer::default();
        w.u8(1).u64(1 << 20).u8(1).i32(1 << 20);
        w.into_inner()
    }

    /// The image of a `DRAW_COPY` body: its type, and the data after its u32 size.
    fn image_of(body: &[u8]) -> (u8, &[u8]) {
        let size = u32::from_le_bytes(body[75..79].try_into().unwrap()) as usize;
        (body[57 + 8], &body[79..79 + size])
    }

    #[test]
    fn images_go_in_the_codec_the_server_and_the_client_ask_for() {
        use crate::image::decode;
        let screen = Screen::default();
        screen.create_surface(64, 48);
        let text: Vec<u8> = (0..64 * 48 * 4)
            .map(|i| if (i / 4) % 7 == 0 { 0 } else { 0xee })
            .collect();
        screen.draw(Area::new(0, 0, 64, 48), &text, 64 * 4);
        let want: Vec<u32> = text
            .chunks(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
            .collect();
        let images = ImageSettings::default();
        let caps = Caps::from_bits(&[m::CAP_LZ4_COMPRESSION]);
        let mut ch = DisplayChannel::new(screen.clone(), 1, caps, 1).with_images(images.clone(), 7);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let copy = msgs.iter().find(|m| m.msg_type == m::DRAW_COPY).unwrap();
        let (kind, data) = image_of(&copy.body);
        assert_eq!(kind, wire::IMAGE_TYPE_GLZ_RGB);
        let mut window = decode::GlzWindow::default();
        assert_eq!(window.decode(data).unwrap().1.pixels, want);

        // The same picture again: GLZ finds it in the dictionary.
        screen.draw(Area::new(0, 0, 64, 48), &text, 64 * 4);
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let (kind, data) = image_of(&msgs[0].body);
        assert_eq!(kind, wire::IMAGE_TYPE_GLZ_RGB);
        assert!(data.len() < 64, "{} bytes", data.len());
        assert_eq!(window.decode(data).unwrap().1.pixels, want);

        images.set_compression(ImageCompression::Lz);
        screen.draw(Area::new(0, 0, 64, 48), &text, 64 * 4);
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let (kind, data) = image_of(&msgs[0].body);
        assert_eq!(kind, wire::IMAGE_TYPE_LZ_RGB);
        assert_eq!(decode::lz(data).unwrap().pixels, want);

        // The client's preference wins over the server's setting.
        for (preferred, expected) in [
            (ImageCompression::Lz4, wire::IMAGE_TYPE_LZ4),
            (ImageCompression::Off, wire::IMAGE_TYPE_BITMAP),
            (ImageCompression::AutoGlz, wire::IMAGE_TYPE_GLZ_RGB),
        ] {
            ch.on_message(m::C_PREFERRED_COMPRESSION, &[preferred as u8], &mut out)
                .unwrap();
            screen.draw(Area::new(0, 0, 64, 48), &text, 64 * 4);
            ch.produce(&mut out);
            let msgs = drain(&mut out);
            assert_eq!(msgs[0].body[57 + 8], expected, "{preferred:?}");
        }
        // An unknown value is ignored; an empty message is an error.
        ch.on_message(m::C_PREFERRED_COMPRESSION, &[42], &mut out)
            .unwrap();
        assert!(ch
            .on_message(m::C_PREFERRED_COMPRESSION, &[], &mut out)
            .is_err());
    }

    #[test]
    fn photographs_go_quic_under_auto_and_everything_under_quic() {
        use crate::image::decode_quic;
        let screen = Screen::default();
        screen.create_surface(64, 48);
        let photo: Vec<u8> = (0..64 * 48u32)
            .flat_map(|i| {
                let (x, y) = (i % 64, i / 64);
                [
                    (x * 3 + y) as u8,
                    (y * 2 + x / 2) as u8,
                    ((x + y * 3) / 2) as u8,
                    0,
                ]
            })
            .collect();
        let want = |bgrx: &[u8]| -> Vec<u32> {
            bgrx.chunks(4)
                .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
                .collect()
        };
        let images = ImageSettings::default();
        let mut ch = DisplayChannel::new(screen.clone(), 1, Caps::default(), 1)
            .with_images(images.clone(), 7);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        ch.produce(&mut out);
        drain(&mut out);
        for setting in [
            ImageCompression::AutoGlz,
            ImageCompression::AutoLz,
            ImageCompression::Quic,
        ] {
            images.set_compression(setting);
            screen.draw(Area::new(0, 0, 64, 48), &photo, 64 * 4);
            ch.produce(&mut out);
            let msgs = drain(&mut out);
            let (kind, data) = image_of(&msgs[0].body);
            assert_eq!(kind, wire::IMAGE_TYPE_QUIC, "{setting:?}");
            assert_eq!(decode_quic::quic(data).unwrap().pixels, want(&photo));
        }
        // Text under `quic` is QUIC too.
        let text: Vec<u8> = (0..64 * 48 * 4)
            .map(|i| if (i / 4) % 7 == 0 { 0 } else { 0xee })
            .collect();
        screen.draw(Area::new(0, 0, 64, 48), &text, 64 * 4);
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let (kind, data) = image_of(&msgs[0].body);
        assert_eq!(kind, wire::IMAGE_TYPE_QUIC);
        assert_eq!(decode_quic::quic(data).unwrap().pixels, want(&text));
    }

    fn photo_bgrx(width: u32, height: u32) -> Vec<u8> {
        (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                [
                    (x * 3 + y) as u8,
                    (y * 2 + x / 2) as u8,
                    ((x + y * 3) / 2) as u8,
                    0,
                ]
            })
            .collect()
    }

    /// A display channel of session `session` with its first picture drained.
    fn linked(screen: &Screen, images: &ImageSettings, session: u32) -> (DisplayChannel, Outbox) {
        let mut ch = DisplayChannel::new(screen.clone(), session.into(), Caps::default(), 1)
            .with_images(images.clone(), session);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        ch.produce(&mut out);
        drain(&mut out);
        (ch, out)
    }

    #[test]
    fn photographs_go_jpeg_to_slow_links_only_and_text_stays_lossless() {
        use crate::image::choose::WanCompression;
        let screen = Screen::default();
        screen.create_surface(64, 48);
        let images = ImageSettings::default();
        let photo = photo_bgrx(64, 48);
        let text: Vec<u8> = (0..64 * 48 * 4)
            .map(|i| if (i / 4) % 7 == 0 { 0 } else { 0xee })
            .collect();
        // Session 1 tested slow, session 2 fast, session 3 not tested yet.
        images.links.set(1, 2_000_000);
        images.links.set(2, 100_000_000);
        let (mut slow, mut out1) = linked(&screen, &images, 1);
        let (mut fast, mut out2) = linked(&screen, &images, 2);
        let (mut untested, mut out3) = linked(&screen, &images, 3);
        let kind_sent = |ch: &mut DisplayChannel, out: &mut Outbox, pixels: &[u8]| {
            screen.draw(Area::new(0, 0, 64, 48), pixels, 64 * 4);
            ch.produce(out);
            image_of(&drain(out)[0].body).0
        };
        // auto: by the network test.
        assert_eq!(
            kind_sent(&mut slow, &mut out1, &photo),
            wire::IMAGE_TYPE_JPEG
        );
        assert_eq!(
            kind_sent(&mut fast, &mut out2, &photo),
            wire::IMAGE_TYPE_QUIC
        );
        assert_eq!(
            kind_sent(&mut untested, &mut out3, &photo),
            wire::IMAGE_TYPE_QUIC
        );
        assert_eq!(
            kind_sent(&mut slow, &mut out1, &text),
            wire::IMAGE_TYPE_GLZ_RGB,
            "text is never JPEG"
        );
        images.set_wan(WanCompression::Always, WanCompression::Never);
        assert_eq!(
            kind_sent(&mut fast, &mut out2, &photo),
            wire::IMAGE_TYPE_JPEG
        );
        images.set_wan(WanCompression::Never, WanCompression::Never);
        assert_eq!(
            kind_sent(&mut slow, &mut out1, &photo),
            wire::IMAGE_TYPE_QUIC
        );
        // JPEG replaces QUIC only: under `lz`, photographs stay LZ.
        images.set_wan(WanCompression::Always, WanCompression::Never);
        images.set_compression(ImageCompression::Lz);
        assert_eq!(
            kind_sent(&mut slow, &mut out1, &photo),
            wire::IMAGE_TYPE_LZ_RGB
        );
        images.set_compression(ImageCompression::Quic);
        assert_eq!(
            kind_sent(&mut slow, &mut out1, &text),
            wire::IMAGE_TYPE_JPEG
        );
    }

    #[test]
    fn glz_is_deflated_for_slow_links_when_that_is_smaller() {
        use crate::image::choose::WanCompression;
        use crate::image::decode;
        let screen = Screen::default();
        screen.create_surface(64, 48);
        let images = ImageSettings::default();
        images.set_wan(WanCompression::Never, WanCompression::Always);
        let mut ch = DisplayChannel::new(screen.clone(), 1, Caps::default(), 1)
            .with_images(images.clone(), 1);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        ch.produce(&mut out);
        // The first picture (black) goes as plain GLZ, too small to deflate.
        let mut window = decode::GlzWindow::default();
        for msg in drain(&mut out)
            .iter()
            .filter(|m| m.msg_type == m::DRAW_COPY)
        {
            let (kind, data) = image_of(&msg.body);
            assert_eq!(kind, wire::IMAGE_TYPE_GLZ_RGB);
            window.decode(data).unwrap();
        }
        // Two colours at random: GLZ finds few matches, and its literals, two values
        // repeated, deflate well.
        let mut x = 0x2545_f491u32;
        let text: Vec<u8> = (0..64 * 48)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x & 1 == 0 {
                    [0u8; 4]
                } else {
                    [0xee, 0xee, 0xee, 0]
                }
            })
            .collect();
        screen.draw(Area::new(0, 0, 64, 48), &text, 64 * 4);
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let body = &msgs[0].body;
        assert_eq!(body[57 + 8], wire::IMAGE_TYPE_ZLIB_GLZ_RGB);
        let at = 57 + 18;
        let glz_size = u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
        let size = u32::from_le_bytes(body[at + 4..at + 8].try_into().unwrap()) as usize;
        let glz = crate::image::zlib::unwrap(&body[at + 8..at + 8 + size], glz_size).unwrap();
        assert_eq!(glz.len(), glz_size);
        let want: Vec<u32> = text
            .chunks(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0]))
            .collect();
        assert_eq!(window.decode(&glz).unwrap().1.pixels, want);
    }

    #[test]
    fn an_rgba_copy_goes_jpeg_alpha_and_an_xor_over_it_comes_back_as_pixels() {
        use crate::image::choose::WanCompression;
        use crate::qxl::draw::{Draw, Op, Source};
        use crate::qxl::image::{Image, Pixels};
        let screen = Screen::default();
        screen.create_surface(64, 64);
        let images = ImageSettings::default();
        images.set_wan(WanCompression::Always, WanCompression::Never);
        let (mut ch, mut out) = linked(&screen, &images, 1);
        let photo: Vec<u32> = photo_bgrx(40, 40)
            .chunks(4)
            .map(|p| u32::from_le_bytes([p[0], p[1], p[2], 0x80]))
            .collect();
        let rect = |r: i32| Rect {
            top: 0,
            left: 0,
            bottom: r,
            right: r,
        };
        // Scaled from 40x40 to 32x32, so it is forwarded with its image.
        let draw = Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: rect(32),
            clip: None,
            op: Op::AlphaBlend {
                src: Source {
                    image: Image::Pixels(Pixels {
                        width: 40,
                        height: 40,
                        data: photo,
                        alpha: true,
                        format: 9,
                    }),
                    area: rect(40),
                    scale_mode: 0,
                },
                alpha: 255,
                src_has_alpha: true,
                dest_has_alpha: false,
            },
        };
        let blend = crate::display::forward::for_client(&draw).unwrap();
        assert!(blend.lossy_source);
        screen.forward(Some(blend), paint(Area::new(0, 0, 32, 32)));
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        assert_eq!(msgs[0].msg_type, m::DRAW_ALPHA_BLEND);
        assert!(
            msgs[0]
                .body
                .windows(2)
                .any(|w| w == [wire::IMAGE_TYPE_JPEG_ALPHA, 0]),
            "its image is JPEG_ALPHA"
        );
        // A drawing reading its destination over that lossy area is not forwarded: the
        // client gets our exact pixels instead.
        screen.forward(
            Some(op(m::DRAW_FILL, Area::new(8, 8, 16, 16), None, false)),
            paint(Area::new(8, 8, 16, 16)),
        );
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        assert_eq!(types(&msgs), vec![m::DRAW_COPY]);
        // Elsewhere it is.
        screen.forward(
            Some(op(m::DRAW_FILL, Area::new(40, 40, 48, 48), None, false)),
            paint(Area::new(40, 40, 48, 48)),
        );
        ch.produce(&mut out);
        assert_eq!(types(&drain(&mut out)), vec![m::DRAW_FILL]);
    }

    #[test]
    fn nothing_before_init_then_surface_picture_and_mark() {
        let screen = Screen::default();
        screen.create_surface(64, 48);
        let caps = Caps::from_bits(&[m::CAP_MONITORS_CONFIG, m::CAP_LZ4_COMPRESSION]);
        let mut ch = DisplayChannel::new(screen.clone(), 1, caps, 1);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.start(&mut out);
        ch.produce(&mut out);
        assert_eq!(types(&drain(&mut out)), vec![base::SET_ACK]);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        assert_eq!(
            types(&msgs),
            vec![
                m::INVAL_ALL_PALETTES,
                m::SURFACE_CREATE,
                m::MONITORS_CONFIG,
                m::DRAW_COPY,
                m::MARK
            ]
        );
        // A black 64x48 surface compresses: with QEMU's default (auto_glz) and the
        // client's GLZ window, the image is GLZ.
        assert_eq!(msgs[3].body[57 + 8], wire::IMAGE_TYPE_GLZ_RGB);
        screen.draw(Area::new(0, 0, 2, 2), &[7u8; 16], 8);
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        assert_eq!(types(&msgs), vec![m::DRAW_COPY]);
        assert_eq!(
            msgs[0].body[57 + 8],
            wire::IMAGE_TYPE_BITMAP,
            "16 bytes go raw"
        );
    }

    /// A forwarded drawing of `bbox` (its body only names it).
    fn op(msg_type: u16, bbox: Area, reads: Option<Area>, opaque: bool) -> Forward {
        let msg = crate::display::draw::DrawMessage {
            msg_type,
            body: bbox.left.to_le_bytes().to_vec(),
            images: Vec::new(),
        };
        Forward {
            msg: std::sync::Arc::new(msg),
            bbox,
            reads,
            opaque,
            lossy_source: false,
        }
    }

    fn paint(area: Area) -> impl FnOnce(&mut Framebuffer) -> Option<Area> {
        move |fb| {
            let n = area.pixels() as usize * 4;
            Some(fb.blit(area, &vec![7; n], area.width() as usize * 4))
        }
    }

    #[test]
    fn drawings_go_out_as_themselves_before_newer_pixels() {
        let screen = Screen::default();
        let (mut ch, mut out) = showing(&screen);
        let bbox = Area::new(0, 0, 4, 4);
        screen.forward(Some(op(m::DRAW_INVERS, bbox, None, false)), paint(bbox));
        screen.draw(Area::new(6, 6, 7, 7), &[1; 4], 4);
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        assert_eq!(types(&msgs), vec![m::DRAW_INVERS, m::DRAW_COPY]);
    }

    /// A forwarded DRAW_COPY of a 40x40 text-like image, as `display::draw` encodes it.
    fn copy_with_image() -> (Forward, Vec<u32>) {
        use crate::qxl::draw::{Draw, Op, Source};
        use crate::qxl::image::{Image, Pixels};
        let data: Vec<u32> = (0..40 * 40)
            .map(|i| if i % 5 == 0 { 0 } else { 0x00ee_eeee })
            .collect();
        let pixels = Pixels {
            width: 40,
            height: 40,
            data: data.clone(),
            alpha: false,
            format: 8,
        };
        let rect = Rect {
            top: 0,
            left: 0,
            bottom: 40,
            right: 40,
        };
        let draw = Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: rect,
            clip: None,
            op: Op::Copy {
                src: Source {
                    image: Image::Pixels(pixels),
                    area: rect,
                    scale_mode: 0,
                },
                rop: crate::proto::display::ROPD_OP_PUT,
                mask: None,
            },
        };
        let msg = crate::display::draw::encode(0, &draw).unwrap();
        let bbox = Area::new(0, 0, 40, 40);
        let op = Forward {
            msg: std::sync::Arc::new(msg),
            bbox,
            reads: None,
            opaque: true,
            lossy_source: true,
        };
        (op, data)
    }

    /// The type and data of the image a forwarded DRAW_COPY points at.
    fn forwarded_image(body: &[u8]) -> (u8, Vec<u8>) {
        let at = u32::from_le_bytes(body[21..25].try_into().unwrap()) as usize;
        let size = u32::from_le_bytes(body[at + 18..at + 22].try_into().unwrap()) as usize;
        (body[at + 8], body[at + 22..at + 22 + size].to_vec())
    }

    #[test]
    fn forwarded_images_go_in_each_clients_codec() {
        use crate::image::decode;
        let screen = Screen::default();
        screen.create_surface(64, 64);
        let images = ImageSettings::default();
        // One client with LZ4 and a GLZ window, one without either.
        let mut glz_client = DisplayChannel::new(
            screen.clone(),
            1,
            Caps::from_bits(&[m::CAP_LZ4_COMPRESSION]),
            1,
        )
        .with_images(images.clone(), 1);
        let mut plain = DisplayChannel::new(screen.clone(), 2, Caps::default(), 1)
            .with_images(images.clone(), 2);
        let mut no_window = init_body();
        no_window[10..14].copy_from_slice(&0i32.to_le_bytes());
        let (mut out1, mut out2) = (Outbox::new(HeaderKind::Mini), Outbox::new(HeaderKind::Mini));
        glz_client
            .on_message(m::C_INIT, &init_body(), &mut out1)
            .unwrap();
        plain.on_message(m::C_INIT, &no_window, &mut out2).unwrap();
        glz_client.produce(&mut out1);
        plain.produce(&mut out2);
        let mut window = decode::GlzWindow::default();
        for msg in drain(&mut out1)
            .iter()
            .filter(|m| m.msg_type == m::DRAW_COPY)
        {
            window.decode(image_of(&msg.body).1).unwrap();
        }
        drain(&mut out2);

        let (copy, want) = copy_with_image();
        let want: Vec<u32> = want.iter().map(|p| p & 0x00ff_ffff).collect();
        screen.forward(Some(copy.clone()), paint(Area::new(0, 0, 40, 40)));
        glz_client.produce(&mut out1);
        plain.produce(&mut out2);
        let (kind, data) = forwarded_image(&drain(&mut out1)[0].body);
        assert_eq!(kind, wire::IMAGE_TYPE_GLZ_RGB);
        assert_eq!(window.decode(&data).unwrap().1.pixels, want);
        let (kind, data) = forwarded_image(&drain(&mut out2)[0].body);
        assert_eq!(kind, wire::IMAGE_TYPE_LZ_RGB, "no GLZ window: LZ");
        assert_eq!(decode::lz(&data).unwrap().pixels, want);

        // lz4: only to the client that has the cap; the other gets LZ.
        images.set_compression(ImageCompression::Lz4);
        screen.forward(Some(copy), paint(Area::new(0, 0, 40, 40)));
        glz_client.produce(&mut out1);
        plain.produce(&mut out2);
        assert_eq!(
            forwarded_image(&drain(&mut out1)[0].body).0,
            wire::IMAGE_TYPE_LZ4
        );
        assert_eq!(
            forwarded_image(&drain(&mut out2)[0].body).0,
            wire::IMAGE_TYPE_LZ_RGB
        );
    }

    #[test]
    fn copy_bits_is_forwarded_only_over_an_up_to_date_source() {
        let screen = Screen::default();
        let (mut ch, mut out) = showing(&screen);
        let dest = Area::new(0, 4, 8, 8);
        let copy = op(m::COPY_BITS, dest, Some(Area::new(0, 0, 8, 4)), true);
        screen.forward(Some(copy.clone()), paint(dest));
        ch.produce(&mut out);
        assert_eq!(types(&drain(&mut out)), vec![m::COPY_BITS]);
        // Undelivered pixels in the source: the client could not copy them.
        screen.draw(Area::new(1, 1, 2, 2), &[9; 4], 4);
        screen.forward(Some(copy), paint(dest));
        ch.produce(&mut out);
        assert_eq!(
            types(&drain(&mut out)),
            vec![m::DRAW_COPY, m::DRAW_COPY],
            "both areas as pixels"
        );
    }

    #[test]
    fn covered_drawings_are_not_sent() {
        let screen = Screen::default();
        let (mut ch, mut out) = showing(&screen);
        let small = Area::new(1, 1, 3, 3);
        let big = Area::new(0, 0, 6, 6);
        screen.forward(Some(op(m::DRAW_INVERS, small, None, false)), paint(small));
        screen.forward(Some(op(m::DRAW_FILL, big, None, true)), paint(big));
        ch.produce(&mut out);
        assert_eq!(
            types(&drain(&mut out)),
            vec![m::DRAW_FILL],
            "the fill hides the invert"
        );

        // A drawing later read by a COPY_BITS must still be sent, even under a fill.
        let source = Area::new(0, 0, 2, 2);
        screen.forward(Some(op(m::DRAW_INVERS, source, None, false)), paint(source));
        let copy = op(m::COPY_BITS, Area::new(4, 4, 6, 6), Some(source), true);
        screen.forward(Some(copy.clone()), paint(Area::new(4, 4, 6, 6)));
        let over_source = Area::new(0, 0, 3, 3);
        screen.forward(
            Some(op(m::DRAW_FILL, over_source, None, true)),
            paint(over_source),
        );
        ch.produce(&mut out);
        assert_eq!(
            types(&drain(&mut out)),
            vec![m::DRAW_INVERS, m::COPY_BITS, m::DRAW_FILL]
        );
        // Once the copy is hidden as well, its source is not needed either.
        screen.forward(Some(op(m::DRAW_INVERS, source, None, false)), paint(source));
        screen.forward(Some(copy), paint(Area::new(4, 4, 6, 6)));
        screen.forward(Some(op(m::DRAW_FILL, big, None, true)), paint(big));
        ch.produce(&mut out);
        assert_eq!(types(&drain(&mut out)), vec![m::DRAW_FILL]);

        // Pixels about to be sent cover a drawing too.
        screen.forward(Some(op(m::DRAW_INVERS, small, None, false)), paint(small));
        screen.draw(big, &[3; 6 * 6 * 4], 6 * 4);
        ch.produce(&mut out);
        assert_eq!(types(&drain(&mut out)), vec![m::DRAW_COPY]);
    }

    #[test]
    fn the_queue_is_bounded_and_the_rest_become_damage() {
        let screen = Screen::default();
        let (mut ch, mut out) = showing(&screen);
        for i in 0..300u32 {
            // The first 256 fill the queue; the others land on another row as pixels.
            let row = if i < 256 { 0 } else { 5 };
            let at = Area::new(i % 8, row, i % 8 + 1, row + 1);
            screen.forward(Some(op(m::DRAW_INVERS, at, None, false)), paint(at));
        }
        ch.produce(&mut out);
        let msgs = drain(&mut out);
        let draws = msgs.iter().filter(|m| m.msg_type == m::DRAW_INVERS).count();
        assert_eq!(draws, 256, "the queue is bounded");
        assert_eq!(
            msgs.last().map(|m| m.msg_type),
            Some(m::DRAW_COPY),
            "the rest went as pixels"
        );
    }

    #[test]
    fn a_new_surface_goes_in_slices_and_is_marked_shown_after_the_last() {
        let screen = Screen::default();
        screen.create_surface(1024, 1024);
        let mut ch = DisplayChannel::new(screen, 1, Caps::default(), 1);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        let mut msgs = vec![];
        for _ in 0..64 {
            ch.produce(&mut out);
            let got = drain(&mut out);
            if got.is_empty() {
                break;
            }
            msgs.extend(got);
        }
        let copies: Vec<usize> = (0..msgs.len())
            .filter(|&i| msgs[i].msg_type == m::DRAW_COPY)
            .collect();
        let marks: Vec<usize> = (0..msgs.len())
            .filter(|&i| msgs[i].msg_type == m::MARK)
            .collect();
        assert_eq!(
            copies.len() as u64,
            1024 * 1024 / crate::display::MAX_TAKE_PIXELS,
            "slices of whole rows"
        );
        assert_eq!(marks.len(), 1);
        assert!(
            marks[0] > *copies.last().unwrap(),
            "marked after the last slice"
        );
    }

    #[test]
    fn a_closed_ack_window_stops_production() {
        let screen = Screen::default();
        screen.create_surface(8, 8);
        let mut ch = DisplayChannel::new(screen.clone(), 1, Caps::default(), 1);
        let mut out = Outbox::new(HeaderKind::Mini);
        ch.start(&mut out);
        ch.on_message(m::C_INIT, &init_body(), &mut out).unwrap();
        for i in 0..100u8 {
            screen.draw(Area::new(0, 0, 1, 1), &[i; 4], 4);
            ch.produce(&mut out);
        }
        let sent = drain(&mut out).len();
        assert!(
            sent <= 2 * ACK_WINDOW as usize + 4,
            "sent {sent} messages without acks"
        );
    }
}
