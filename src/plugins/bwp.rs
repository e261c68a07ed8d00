//! stub
use super::Data;
use crate::live::properties::Doc;
pub fn property(_d: &Data, _iob: Option<&Doc>) -> Doc {
    Doc::new()
}
