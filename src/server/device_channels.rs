//! The channel each guest char device is served on (spice-server's
//! `spicevmc_device_connect`): usbredir, port and webdav devices become spicevmc
//! channels that one client at a time may link.

use super::channels::{ChannelKind, Opening, Provider};
use super::char_device::{DeviceKind, GuestPort};
use crate::channel::spicevmc::{VmcChannel, VmcDevice};
use crate::proto::link::LinkError;
use crate::proto::msg::{channel as ch, spicevmc};
use std::sync::Arc;

/// The linkable channel for a device QEMU added, with channel id `id`; None for the
/// kinds not served by a channel of their own (the agent is served on the main channel;
/// the smartcard channel needs its VSC reader handling, not yet written). The device's
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
        DeviceKind::Agent | DeviceKind::Smartcard => return None,
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
