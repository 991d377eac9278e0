//! Message type numbers (`spice.proto`), grouped by channel.
// The whole table from spice.proto, the numbers no channel sends yet included.
#![allow(dead_code)]

/// Messages every channel may send or receive.
pub(crate) mod base {
    // server → client
    pub(crate) const MIGRATE: u16 = 1;
    pub(crate) const SET_ACK: u16 = 3;
    pub(crate) const PING: u16 = 4;
    pub(crate) const WAIT_FOR_CHANNELS: u16 = 5;
    pub(crate) const NOTIFY: u16 = 7;
    pub(crate) const LIST: u16 = 8;
    // client → server
    pub(crate) const C_ACK_SYNC: u16 = 1;
    pub(crate) const C_ACK: u16 = 2;
    pub(crate) const C_PONG: u16 = 3;
    pub(crate) const C_MIGRATE_FLUSH_MARK: u16 = 4;
    pub(crate) const C_MIGRATE_DATA: u16 = 5;
    pub(crate) const C_DISCONNECTING: u16 = 6;
}

pub(crate) mod main {
    pub(crate) const MIGRATE_BEGIN: u16 = 101;
    pub(crate) const INIT: u16 = 103;
    pub(crate) const CHANNELS_LIST: u16 = 104;
    pub(crate) const MOUSE_MODE: u16 = 105;
    pub(crate) const MULTI_MEDIA_TIME: u16 = 106;
    pub(crate) const AGENT_CONNECTED: u16 = 107;
    pub(crate) const AGENT_DISCONNECTED: u16 = 108;
    pub(crate) const AGENT_DATA: u16 = 109;
    pub(crate) const AGENT_TOKEN: u16 = 110;
    pub(crate) const NAME: u16 = 113;
    pub(crate) const UUID: u16 = 114;
    pub(crate) const AGENT_CONNECTED_TOKENS: u16 = 115;
    // client → server
    pub(crate) const C_CLIENT_INFO: u16 = 101;
    pub(crate) const C_MIGRATE_CONNECTED: u16 = 102;
    pub(crate) const C_MIGRATE_CONNECT_ERROR: u16 = 103;
    pub(crate) const C_ATTACH_CHANNELS: u16 = 104;
    pub(crate) const C_MOUSE_MODE_REQUEST: u16 = 105;
    pub(crate) const C_AGENT_START: u16 = 106;
    pub(crate) const C_AGENT_DATA: u16 = 107;
    pub(crate) const C_AGENT_TOKEN: u16 = 108;
    pub(crate) const C_MIGRATE_END: u16 = 109;
    pub(crate) const C_MIGRATE_DST_DO_SEAMLESS: u16 = 110;
    pub(crate) const C_MIGRATE_CONNECTED_SEAMLESS: u16 = 111;
    pub(crate) const C_QUALITY_INDICATOR: u16 = 112;

    /// Main channel caps (`SPICE_MAIN_CAP_*`).
    pub(crate) const CAP_SEMI_SEAMLESS_MIGRATE: u32 = 0;
    pub(crate) const CAP_NAME_AND_UUID: u32 = 1;
    pub(crate) const CAP_AGENT_CONNECTED_TOKENS: u32 = 2;
    pub(crate) const CAP_SEAMLESS_MIGRATE: u32 = 3;
}

pub(crate) mod display {
    pub(crate) const MARK: u16 = 102;
    pub(crate) const COPY_BITS: u16 = 104;
    pub(crate) const INVAL_LIST: u16 = 105;
    pub(crate) const INVAL_ALL_PIXMAPS: u16 = 106;
    pub(crate) const INVAL_PALETTE: u16 = 107;
    pub(crate) const INVAL_ALL_PALETTES: u16 = 108;
    pub(crate) const STREAM_CREATE: u16 = 122;
    pub(crate) const STREAM_DATA: u16 = 123;
    pub(crate) const STREAM_CLIP: u16 = 124;
    pub(crate) const STREAM_DESTROY: u16 = 125;
    pub(crate) const STREAM_DESTROY_ALL: u16 = 126;
    pub(crate) const DRAW_FILL: u16 = 302;
    pub(crate) const DRAW_OPAQUE: u16 = 303;
    pub(crate) const DRAW_COPY: u16 = 304;
    pub(crate) const DRAW_BLEND: u16 = 305;
    pub(crate) const DRAW_BLACKNESS: u16 = 306;
    pub(crate) const DRAW_WHITENESS: u16 = 307;
    pub(crate) const DRAW_INVERS: u16 = 308;
    pub(crate) const DRAW_ROP3: u16 = 309;
    pub(crate) const DRAW_STROKE: u16 = 310;
    pub(crate) const DRAW_TEXT: u16 = 311;
    pub(crate) const DRAW_TRANSPARENT: u16 = 312;
    pub(crate) const DRAW_ALPHA_BLEND: u16 = 313;
    pub(crate) const SURFACE_CREATE: u16 = 314;
    pub(crate) const SURFACE_DESTROY: u16 = 315;
    pub(crate) const STREAM_DATA_SIZED: u16 = 316;
    pub(crate) const MONITORS_CONFIG: u16 = 317;
    pub(crate) const DRAW_COMPOSITE: u16 = 318;
    pub(crate) const STREAM_ACTIVATE_REPORT: u16 = 319;
    // client → server
    pub(crate) const C_INIT: u16 = 101;
    pub(crate) const C_STREAM_REPORT: u16 = 102;
    pub(crate) const C_PREFERRED_COMPRESSION: u16 = 103;
    pub(crate) const C_GL_DRAW_DONE: u16 = 104;
    pub(crate) const C_PREFERRED_VIDEO_CODEC_TYPE: u16 = 105;

    /// Display channel caps (`SPICE_DISPLAY_CAP_*`).
    pub(crate) const CAP_SIZED_STREAM: u32 = 0;
    pub(crate) const CAP_MONITORS_CONFIG: u32 = 1;
    pub(crate) const CAP_COMPOSITE: u32 = 2;
    pub(crate) const CAP_A8_SURFACE: u32 = 3;
    pub(crate) const CAP_STREAM_REPORT: u32 = 4;
    pub(crate) const CAP_LZ4_COMPRESSION: u32 = 5;
    pub(crate) const CAP_PREF_COMPRESSION: u32 = 6;
    pub(crate) const CAP_GL_SCANOUT: u32 = 7;
    pub(crate) const CAP_MULTI_CODEC: u32 = 8;
    pub(crate) const CAP_CODEC_MJPEG: u32 = 9;
    pub(crate) const CAP_CODEC_VP8: u32 = 10;
    pub(crate) const CAP_CODEC_H264: u32 = 11;
    pub(crate) const CAP_PREF_VIDEO_CODEC_TYPE: u32 = 12;
    pub(crate) const CAP_CODEC_VP9: u32 = 13;
    pub(crate) const CAP_CODEC_H265: u32 = 14;
}

pub(crate) mod inputs {
    pub(crate) const INIT: u16 = 101;
    pub(crate) const KEY_MODIFIERS: u16 = 102;
    pub(crate) const MOUSE_MOTION_ACK: u16 = 111;
    // client → server
    pub(crate) const C_KEY_DOWN: u16 = 101;
    pub(crate) const C_KEY_UP: u16 = 102;
    pub(crate) const C_KEY_MODIFIERS: u16 = 103;
    pub(crate) const C_KEY_SCANCODE: u16 = 104;
    pub(crate) const C_MOUSE_MOTION: u16 = 111;
    pub(crate) const C_MOUSE_POSITION: u16 = 112;
    pub(crate) const C_MOUSE_PRESS: u16 = 113;
    pub(crate) const C_MOUSE_RELEASE: u16 = 114;

    pub(crate) const CAP_KEY_SCANCODE: u32 = 0;
    /// The client waits for an ack after this many motion messages.
    pub(crate) const MOTION_ACK_BUNCH: u32 = 4;
}

pub(crate) mod cursor {
    pub(crate) const INIT: u16 = 101;
    pub(crate) const RESET: u16 = 102;
    pub(crate) const SET: u16 = 103;
    pub(crate) const MOVE: u16 = 104;
    pub(crate) const HIDE: u16 = 105;
    pub(crate) const TRAIL: u16 = 106;
    pub(crate) const INVAL_ONE: u16 = 107;
    pub(crate) const INVAL_ALL: u16 = 108;
}

/// The spicevmc channels (usbredir, port, webdav; smartcard shares the data numbers).
pub(crate) mod spicevmc {
    pub(crate) const DATA: u16 = 101;
    pub(crate) const COMPRESSED_DATA: u16 = 102;
    /// Port and webdav channels only.
    pub(crate) const PORT_INIT: u16 = 201;
    pub(crate) const PORT_EVENT: u16 = 202;
    // client → server
    pub(crate) const C_DATA: u16 = 101;
    pub(crate) const C_COMPRESSED_DATA: u16 = 102;
    pub(crate) const C_PORT_EVENT: u16 = 201;

    /// `SPICE_SPICEVMC_CAP_DATA_COMPRESS_LZ4`.
    pub(crate) const CAP_DATA_COMPRESS_LZ4: u32 = 0;
    /// `SPICE_DATA_COMPRESSION_TYPE_*`.
    pub(crate) const COMPRESSION_NONE: u8 = 0;
    pub(crate) const COMPRESSION_LZ4: u8 = 1;
    /// `SPICE_PORT_EVENT_*`.
    pub(crate) const PORT_EVENT_OPENED: u8 = 0;
    pub(crate) const PORT_EVENT_CLOSED: u8 = 1;
    pub(crate) const PORT_EVENT_BREAK: u8 = 2;
}

/// The playback channel (guest audio to the client).
pub(crate) mod playback {
    pub(crate) const DATA: u16 = 101;
    pub(crate) const MODE: u16 = 102;
    pub(crate) const START: u16 = 103;
    pub(crate) const STOP: u16 = 104;
    pub(crate) const VOLUME: u16 = 105;
    pub(crate) const MUTE: u16 = 106;
    pub(crate) const LATENCY: u16 = 107;

    /// `SPICE_PLAYBACK_CAP_*`.
    pub(crate) const CAP_VOLUME: u32 = 1;
    pub(crate) const CAP_LATENCY: u32 = 2;
    pub(crate) const CAP_OPUS: u32 = 3;
}

/// The record channel (client audio to the guest).
pub(crate) mod record {
    pub(crate) const START: u16 = 101;
    pub(crate) const STOP: u16 = 102;
    pub(crate) const VOLUME: u16 = 103;
    pub(crate) const MUTE: u16 = 104;
    // client → server
    pub(crate) const C_DATA: u16 = 101;
    pub(crate) const C_MODE: u16 = 102;
    pub(crate) const C_START_MARK: u16 = 103;

    /// `SPICE_RECORD_CAP_*`.
    pub(crate) const CAP_VOLUME: u32 = 1;
    pub(crate) const CAP_OPUS: u32 = 2;
}

/// `SPICE_AUDIO_DATA_MODE_*` and `SPICE_AUDIO_FMT_*`.
pub(crate) mod audio {
    pub(crate) const MODE_RAW: u16 = 1;
    pub(crate) const MODE_CELT_0_5_1: u16 = 2;
    pub(crate) const MODE_OPUS: u16 = 3;
    pub(crate) const FMT_S16: u16 = 1;
}

/// Channel type numbers (`SPICE_CHANNEL_*`).
pub(crate) mod channel {
    pub(crate) const MAIN: u8 = 1;
    pub(crate) const DISPLAY: u8 = 2;
    pub(crate) const INPUTS: u8 = 3;
    pub(crate) const CURSOR: u8 = 4;
    pub(crate) const PLAYBACK: u8 = 5;
    pub(crate) const RECORD: u8 = 6;
    pub(crate) const SMARTCARD: u8 = 8;
    pub(crate) const USBREDIR: u8 = 9;
    pub(crate) const PORT: u8 = 10;
    pub(crate) const WEBDAV: u8 = 11;
}
