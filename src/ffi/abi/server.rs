//! `spice-server.h`: the server object and the enums/flags its configuration calls take.

use super::protocol::*;
use std::ffi::c_int;
use std::marker::{PhantomData, PhantomPinned};

/// `enum spice_compat_version_t`: features limited for migration to/from an older
/// spice-server (an integer here because C passes it in).
pub type spice_compat_version_t = u32;
/// Compatible with spice-server 0.4.
pub const SPICE_COMPAT_VERSION_0_4: spice_compat_version_t = 0;
/// Compatible with spice-server 0.6 and later.
pub const SPICE_COMPAT_VERSION_0_6: spice_compat_version_t = 1;
/// The newest compatibility level.
pub const SPICE_COMPAT_VERSION_CURRENT: spice_compat_version_t = SPICE_COMPAT_VERSION_0_6;

/// The server object behind `SpiceServer *` (created by `spice_server_new`). The
/// library casts its own allocation to this type; C only holds the pointer.
pub struct RedsState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `typedef struct RedsState SpiceServer;`
pub type SpiceServer = RedsState;

/// `spice_server_set_addr` flag: listen on IPv4 only.
pub const SPICE_ADDR_FLAG_IPV4_ONLY: c_int = 1 << 0;
/// `spice_server_set_addr` flag: listen on IPv6 only.
pub const SPICE_ADDR_FLAG_IPV6_ONLY: c_int = 1 << 1;
/// `spice_server_set_addr` flag: `addr` is a UNIX socket path (QEMU keys its `unix=`
/// option on this macro being defined).
pub const SPICE_ADDR_FLAG_UNIX_ONLY: c_int = 1 << 2;

/// Old name of `SpiceImageCompression`, kept for API compatibility.
pub type spice_image_compression_t = SpiceImageCompression;
/// Old name of `SPICE_IMAGE_COMPRESSION_INVALID`.
pub const SPICE_IMAGE_COMPRESS_INVALID: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_INVALID;
/// Old name of `SPICE_IMAGE_COMPRESSION_OFF`.
pub const SPICE_IMAGE_COMPRESS_OFF: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_OFF;
/// Old name of `SPICE_IMAGE_COMPRESSION_AUTO_GLZ`.
pub const SPICE_IMAGE_COMPRESS_AUTO_GLZ: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_AUTO_GLZ;
/// Old name of `SPICE_IMAGE_COMPRESSION_AUTO_LZ`.
pub const SPICE_IMAGE_COMPRESS_AUTO_LZ: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_AUTO_LZ;
/// Old name of `SPICE_IMAGE_COMPRESSION_QUIC`.
pub const SPICE_IMAGE_COMPRESS_QUIC: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_QUIC;
/// Old name of `SPICE_IMAGE_COMPRESSION_GLZ`.
pub const SPICE_IMAGE_COMPRESS_GLZ: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_GLZ;
/// Old name of `SPICE_IMAGE_COMPRESSION_LZ`.
pub const SPICE_IMAGE_COMPRESS_LZ: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_LZ;
/// Old name of `SPICE_IMAGE_COMPRESSION_LZ4`.
pub const SPICE_IMAGE_COMPRESS_LZ4: SpiceImageCompression = SPICE_IMAGE_COMPRESSION_LZ4;

/// `enum spice_wan_compression_t`: when to use JPEG / zlib-GLZ on WAN links (an
/// integer here because C passes it in).
pub type spice_wan_compression_t = u32;
pub const SPICE_WAN_COMPRESSION_INVALID: spice_wan_compression_t = 0;
/// Decide from the measured link.
pub const SPICE_WAN_COMPRESSION_AUTO: spice_wan_compression_t = 1;
pub const SPICE_WAN_COMPRESSION_ALWAYS: spice_wan_compression_t = 2;
pub const SPICE_WAN_COMPRESSION_NEVER: spice_wan_compression_t = 3;

/// `spice_server_set_channel_security`: allow the channel in plain text.
pub const SPICE_CHANNEL_SECURITY_NONE: c_int = 1 << 0;
/// `spice_server_set_channel_security`: allow the channel over TLS.
pub const SPICE_CHANNEL_SECURITY_SSL: c_int = 1 << 1;

/// `spice_server_set_streaming_video` values (C: an anonymous enum).
pub const SPICE_STREAM_VIDEO_INVALID: c_int = 0;
/// Never detect video streams.
pub const SPICE_STREAM_VIDEO_OFF: c_int = 1;
/// Stream every region that looks like video.
pub const SPICE_STREAM_VIDEO_ALL: c_int = 2;
/// Stream only regions that pass the video heuristics.
pub const SPICE_STREAM_VIDEO_FILTER: c_int = 3;

/// Video encoder families (C: an anonymous enum).
pub const SPICE_STREAMING_INVALID: c_int = 0;
/// The built-in MJPEG encoder.
pub const SPICE_STREAMING_SPICE: c_int = 1;
/// GStreamer encoders.
pub const SPICE_STREAMING_GSTREAMER: c_int = 2;
