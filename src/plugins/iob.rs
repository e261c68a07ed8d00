//! stub
use super::Data;
use crate::live::properties::Doc;
pub fn property(_d: &Data, device: Doc) -> Doc {
    device
}
