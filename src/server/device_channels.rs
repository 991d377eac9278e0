//! The channel each guest char device is served on (spice-server's
//! `spicevmc_device_connect`, `smartcard_device_connect`): usbredir, port and webdav
//! devices become spicevmc channels that one client at a time may link; a smartcard
//! device becomes a smartcard channel whose reader id is its channel id.

use super::channels::{ChannelKind, Opening, Provider};
use super::char_device::{DeviceKind, GuestPort};
use crate::channel::smartcard::{SmartcardChannel, SmartcardDevice, MAX_READERS};
use crate::channel::spicevmc::{VmcChannel, VmcDevice};
use crate::proto::link::LinkError;
use crate::proto::msg::{channel as ch, spicevmc};
use std::sync::Arc;

/// The linkable channel for a device QEMU added, with channel id `id`; None for the
/// agent (served on the main channel) and for smartcard readers past `MAX_READERS`. The device's
/// sink is attached here, for the device's lifetime, so the guest's port state is known
/// before any client links.
pub(crate) fn channel_kind(
    kind: &DeviceKind,
    id: u8,
    port: Arc<dyn GuestPort>,
    wake: Arc<dyn Fn() + Send + Sync>,
) -> Option<ChannelKind> {
    let (channel_type, port_name) = match kind {
        DeviceKind::Usbredir => (ch::USBREDIR, None),
        DeviceKind::Webdav => (
            ch::WEBDAV,
            Some(super::char_device::WEBDAV_PORT_NAME.to_owned()),
        ),
        DeviceKind::Port(name) => (ch::PORT, Some(name.clone())),
        DeviceKind::Smartcard => return smartcard_kind(id, port, wake),
        DeviceKind::Agent => return None,
    };
    let device = VmcDevice::new(wake);
    port.attach(Some(device.clone()));
    Some(ChannelKind::new(
        channel_type,
        id,
        &[spicevmc::CAP_DATA_COMPRESS_LZ4],
        Provider::Device,
        move |request| {
            if !device.claim() {
                crate::log_warn!(
                    "channel {channel_type}:{id} is in use by another client (or its \
                     device is gone): refusing this connection"
                );
                return Err(LinkError::ChannelNotAvailable);
            }
            let lz4 = request.caps.has(spicevmc::CAP_DATA_COMPRESS_LZ4);
            Ok(Opening::new(VmcChannel::new(
                device.clone(),
                port.clone(),
                port_name.clone(),
                lz4,
            )))
        },
    ))
}

/// A smartcard reader's channel. Unlike a spicevmc channel it opens for any client (as
/// spice-server's does); only one at a time holds the reader.
fn smartcard_kind(
    id: u8,
    port: Arc<dyn GuestPort>,
    wake: Arc<dyn Fn() + Send + Sync>,
) -> Option<ChannelKind> {
    if id >= MAX_READERS {
        crate::log_warn!("smartcard: at most {MAX_READERS} readers are served");
        return None;
    }
    let device = SmartcardDevice::new(id, wake);
    port.attach(Some(device.clone()));
    Some(ChannelKind::new(
        ch::SMARTCARD,
        id,
        &[],
        Provider::Device,
        move |_request| {
            Ok(Opening::new(SmartcardChannel::open(
                device.clone(),
                port.clone(),
            )))
        },
    ))
}
