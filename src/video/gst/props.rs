//! Setting element properties without the panics of `set_property*`: an element version
//! may lack a property or an enum value, and a number may be out of the property's
//! range. Numbers are clamped to the range; anything else that does not fit is an
//! error the caller logs and moves past.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

/// A property value as the element tables write them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// Enum/flags nick, boolean or anything `gst_value_deserialize` reads. Several
    /// `|`-free choices may be given as `a,b`: the first the element knows is used.
    Text(&'a str),
    Number(i64),
}

fn writable_now(pspec: &glib::ParamSpec) -> bool {
    let flags = pspec.flags();
    flags.contains(glib::ParamFlags::WRITABLE) && !flags.contains(glib::ParamFlags::CONSTRUCT_ONLY)
}

/// Whether the element applies a change of `name` while it is encoding.
pub(super) fn changeable_while_playing(element: &gst::Element, name: &str) -> bool {
    element
        .find_property(name)
        .is_some_and(|p| p.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING))
}

/// `value` as the property's own numeric type, clamped to its range.
fn number_value(pspec: &glib::ParamSpec, value: i64) -> Option<glib::Value> {
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        let v = value.clamp(i64::from(p.minimum()), i64::from(p.maximum()));
        return Some((v as u32).to_value());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        let v = value.clamp(i64::from(p.minimum()), i64::from(p.maximum()));
        return Some((v as i32).to_value());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        let v = (value.max(0) as u64).clamp(p.minimum(), p.maximum());
        return Some(v.to_value());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt64>() {
        return Some(value.clamp(p.minimum(), p.maximum()).to_value());
    }
    None
}

/// A text value for the property: numbers go through [`number_value`] (so through its
/// clamping), anything else through `gst_value_deserialize`, which refuses unknown
/// enum and flag nicks.
fn text_value(pspec: &glib::ParamSpec, text: &str) -> Option<glib::Value> {
    if let Ok(n) = text.parse::<i64>() {
        if let Some(v) = number_value(pspec, n) {
            return Some(v);
        }
    }
    if number_value(pspec, 0).is_some() {
        return None;
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        let v: f64 = text.parse().ok()?;
        return Some(v.clamp(p.minimum(), p.maximum()).to_value());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFloat>() {
        let v: f32 = text.parse().ok()?;
        return Some(v.clamp(p.minimum(), p.maximum()).to_value());
    }
    glib::Value::deserialize_with_pspec(text, pspec).ok()
}

/// Sets `name` to `value`; an error says why it was not set (the element is left as it
/// was).
pub(super) fn set(element: &gst::Element, name: &str, value: Value<'_>) -> Result<(), String> {
    let pspec = element
        .find_property(name)
        .ok_or_else(|| format!("{} has no property {name}", element_factory(element)))?;
    if !writable_now(&pspec) {
        return Err(format!("{name} is not writable"));
    }
    let v = match value {
        Value::Number(n) => {
            number_value(&pspec, n).ok_or_else(|| format!("{name} is not a number"))?
        }
        Value::Text(choices) => choices
            .split(',')
            .find_map(|choice| text_value(&pspec, choice.trim()))
            .ok_or_else(|| format!("{name} takes none of '{choices}'"))?,
    };
    element.set_property_from_value(name, &v);
    Ok(())
}

/// The element's factory name, for messages.
pub(super) fn element_factory(element: &gst::Element) -> String {
    element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_else(|| element.name().to_string())
}
