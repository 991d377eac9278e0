//! An encoder that hands over to another one (same codec) when it fails mid-stream: a
//! hardware encoder losing its device goes on in software, and the client sees no more
//! than a key frame.

use super::codecs::Codec;
use super::encoder::{EncodeError, Frame, Target, VideoEncoder};

pub(crate) type Opener = Box<dyn FnOnce() -> Result<Box<dyn VideoEncoder>, EncodeError> + Send>;

pub(crate) struct WithFallback {
    current: Box<dyn VideoEncoder>,
    fallback: Option<Opener>,
}

impl WithFallback {
    pub(crate) fn new(primary: Box<dyn VideoEncoder>, fallback: Opener) -> WithFallback {
        WithFallback {
            current: primary,
            fallback: Some(fallback),
        }
    }
}

impl VideoEncoder for WithFallback {
    fn codec(&self) -> Codec {
        self.current.codec()
    }

    fn encode(&mut self, frame: &Frame, target: Target) -> Result<Option<Vec<u8>>, EncodeError> {
        match self.current.encode(frame, target) {
            Err(EncodeError::Failed(why)) => {
                let Some(open) = self.fallback.take() else {
                    return Err(EncodeError::Failed(why));
                };
                crate::log_warn!("video: the encoder failed ({why}); going on in software");
                let mut next = open()?;
                if next.codec() != self.current.codec() {
                    return Err(EncodeError::Failed(why));
                }
                next.request_key_frame();
                self.current = next;
                self.current.encode(frame, target)
            }
            other => other,
        }
    }

    fn request_key_frame(&mut self) {
        self.current.request_key_frame();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted {
        fail: bool,
        keys: u32,
    }

    impl VideoEncoder for Scripted {
        fn codec(&self) -> Codec {
            Codec::H264
        }
        fn encode(&mut self, _: &Frame, _: Target) -> Result<Option<Vec<u8>>, EncodeError> {
            if self.fail {
                Err(EncodeError::Failed("device lost".into()))
            } else {
                Ok(Some(vec![self.keys as u8]))
            }
        }
        fn request_key_frame(&mut self) {
            self.keys += 1;
        }
    }

    fn frame() -> Frame {
        Frame::packed(2, 2, vec![0; 16], 0)
    }

    const TARGET: Target = Target {
        quality: 70,
        bitrate_bps: 1_000_000,
        fps: 30,
        scale: 1,
    };

    #[test]
    fn a_failing_encoder_hands_over_once_with_a_key_frame() {
        let primary = Box::new(Scripted {
            fail: true,
            keys: 0,
        });
        let mut e = WithFallback::new(
            primary,
            Box::new(|| {
                Ok(Box::new(Scripted {
                    fail: false,
                    keys: 0,
                }) as Box<dyn VideoEncoder>)
            }),
        );
        let out = e.encode(&frame(), TARGET).unwrap();
        assert_eq!(
            out,
            Some(vec![1]),
            "the same frame, from the fallback, as a key frame"
        );
        assert_eq!(e.encode(&frame(), TARGET).unwrap(), Some(vec![1]));
    }

    #[test]
    fn without_a_working_fallback_the_error_ends_the_stream() {
        let mut e = WithFallback::new(
            Box::new(Scripted {
                fail: true,
                keys: 0,
            }),
            Box::new(|| Err(EncodeError::Failed("none".into()))),
        );
        assert!(e.encode(&frame(), TARGET).is_err());
        assert!(e.encode(&frame(), TARGET).is_err(), "tried once only");
    }
}
